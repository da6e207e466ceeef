// Batch norm's passes on nChw16c blocks, sixteen channels in one AVX-512 register where the CPU
// has it (chosen at run time; Swift's loops stay 128-bit SSE). Each operand is FP32 or BF16 (a
// low-precision convolution's output); the arithmetic is FP32. Products are not fused into FMAs:
// the results are the same on every CPU and with every thread count.
#include "tb_channel.h"
#include "tb_cpu.h"

#pragma STDC FP_CONTRACT OFF

// The sixteen lanes of a position are the vector: left to itself the compiler vectorized across
// positions instead, with gathers and scatters (slower than Swift's SSE loops).
#define TB_LANES _Pragma("clang loop vectorize(disable) interleave(disable)")

TB_ALWAYS void sums(const void *u, const void *v, const void *mask, unsigned types, const float *center,
                    int64_t blocks, int64_t s, int64_t first, int64_t last, double *sum1, double *sum2) {
    const int ub = types & TB_U_BF16, vb = v ? types & TB_V_BF16 : ub, mb = types & TB_MASK_BF16;
    if (!v) v = u;
    for (int64_t b = first; b < last; b++) {
        for (int64_t blk = 0; blk < blocks; blk++) {
            const int64_t base = (b * blocks + blk) * s * 16;
            const float *mu = center + blk * 16;
            float a[16] = {0}, q[16] = {0};
            TB_LANES for (int64_t i = 0; i < s; i++) {
                float g[16], x[16], m[16];
                tb_load(u, ub, base + i * 16, 16, g);
                tb_load(v, vb, base + i * 16, 16, x);
                if (mask) {
                    tb_load(mask, mb, base + i * 16, 16, m);
                    for (int j = 0; j < 16; j++) g[j] = m[j] > 0 ? g[j] : 0;
                }
                for (int j = 0; j < 16; j++) {
                    a[j] += g[j];
                    q[j] += g[j] * (x[j] - mu[j]);
                }
            }
            for (int j = 0; j < 16; j++) {
                sum1[blk * 16 + j] += (double)a[j];
                sum2[blk * 16 + j] += (double)q[j];
            }
        }
    }
}

TB_ALWAYS void affine(const void *u, const void *v, const void *mask, void *out, unsigned types, const float *a,
                      const float *b, const float *k, int relu, int64_t blocks, int64_t s, int64_t first,
                      int64_t last) {
    const int ub = types & TB_U_BF16, vb = types & TB_V_BF16, mb = types & TB_MASK_BF16, ob = types & TB_OUT_BF16;
    if (!b) v = 0;
    for (int64_t bb = first; bb < last; bb++) {
        const int64_t blk = bb % blocks, at = bb * s * 16;
        const float *al = a + blk * 16, *kl = k + blk * 16, *bl = b ? b + blk * 16 : 0;
        TB_LANES for (int64_t i = 0; i < s; i++) {
            const int64_t e = at + i * 16;
            float g[16], x[16], m[16], y[16];
            tb_load(u, ub, e, 16, g);
            if (mask) {
                tb_load(mask, mb, e, 16, m);
                for (int j = 0; j < 16; j++) g[j] = m[j] > 0 ? g[j] : 0;
            }
            if (v) {
                tb_load(v, vb, e, 16, x);
                for (int j = 0; j < 16; j++) y[j] = al[j] * g[j] + bl[j] * x[j] + kl[j];
            } else {
                for (int j = 0; j < 16; j++) y[j] = al[j] * g[j] + kl[j];
            }
            if (relu)
                for (int j = 0; j < 16; j++) y[j] = 0.0f >= y[j] ? 0.0f : y[j];  // Swift.max(y, 0): NaN stays NaN
            tb_store(out, ob, e, 16, y);
        }
    }
}

TB_AVX512 static void sums_avx512(const void *u, const void *v, const void *mask, unsigned types, const float *center,
                                  int64_t blocks, int64_t s, int64_t first, int64_t last, double *sum1, double *sum2) {
    sums(u, v, mask, types, center, blocks, s, first, last, sum1, sum2);
}

TB_AVX512 static void affine_avx512(const void *u, const void *v, const void *mask, void *out, unsigned types,
                                    const float *a, const float *b, const float *k, int relu, int64_t blocks,
                                    int64_t s, int64_t first, int64_t last) {
    affine(u, v, mask, out, types, a, b, k, relu, blocks, s, first, last);
}

void tb_channel_sums16(const void *u, const void *v, const void *mask, unsigned types, const float *center,
                       int64_t blocks, int64_t s, int64_t first, int64_t last, double *sum1, double *sum2) {
    if (TB_HAS_AVX512()) sums_avx512(u, v, mask, types, center, blocks, s, first, last, sum1, sum2);
    else sums(u, v, mask, types, center, blocks, s, first, last, sum1, sum2);
}

void tb_channel_affine16(const void *u, const void *v, const void *mask, void *out, unsigned types, const float *a,
                         const float *b, const float *k, int relu, int64_t blocks, int64_t s, int64_t first,
                         int64_t last) {
    if (TB_HAS_AVX512()) affine_avx512(u, v, mask, out, types, a, b, k, relu, blocks, s, first, last);
    else affine(u, v, mask, out, types, a, b, k, relu, blocks, s, first, last);
}
