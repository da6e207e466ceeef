// Run-time choice of AVX-512 for the C loops: each is written once, inlined into a copy built
// for AVX-512 (TB_AVX512) and a baseline copy, and TB_HAS_AVX512() picks one per call.
#ifndef TB_CPU_H
#define TB_CPU_H

#define TB_ALWAYS static inline __attribute__((always_inline))

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define TB_AVX512 __attribute__((target("avx512f")))
#define TB_HAS_AVX512() (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"))
#else
#define TB_AVX512
#define TB_HAS_AVX512() 0
#endif

#include <stdint.h>
#include <string.h>

/// FP32 to BF16, rounding to nearest even (NaN stays a quiet NaN). oneDNN's converter does the
/// same except that the hardware instruction flushes FP32 denormals to zero.
TB_ALWAYS uint16_t tb_to_bf16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7fffffff) > 0x7f800000) return (uint16_t)((b >> 16) | 0x40);
    return (uint16_t)((b + 0x7fff + ((b >> 16) & 1)) >> 16);
}

TB_ALWAYS float tb_from_bf16(uint16_t h) {
    const uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/// n <= 16 elements from index e of a buffer of FP32 (bf16 = 0) or BF16 values, as FP32.
TB_ALWAYS void tb_load(const void *base, int bf16, int64_t e, int n, float *dst) {
    if (bf16) {
        const uint16_t *p = (const uint16_t *)base + e;
        for (int j = 0; j < n; j++) dst[j] = tb_from_bf16(p[j]);
    } else {
        const float *p = (const float *)base + e;
        for (int j = 0; j < n; j++) dst[j] = p[j];
    }
}

TB_ALWAYS void tb_store(void *base, int bf16, int64_t e, int n, const float *src) {
    if (bf16) {
        uint16_t *p = (uint16_t *)base + e;
        for (int j = 0; j < n; j++) p[j] = tb_to_bf16(src[j]);
    } else {
        float *p = (float *)base + e;
        for (int j = 0; j < n; j++) p[j] = src[j];
    }
}

#endif
