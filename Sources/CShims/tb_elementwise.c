// Elementwise passes in C so that they run in AVX-512 where the CPU has it (chosen at run time):
// Swift code is built for baseline x86-64, and its loops vectorize to 128-bit SSE only.
#include "tb_elementwise.h"
#include "tb_cpu.h"

#pragma STDC FP_CONTRACT OFF  // the same roundings as the separate ops, on every CPU

TB_ALWAYS float apply(tb_binary_op op, float x, float y) {
    switch (op) {
    case TB_ADD: return x + y;
    case TB_SUB: return x - y;
    case TB_MUL: return x * y;
    case TB_RELU_GRAD: return y > 0 ? x : 0;  // both loaded: the choice is a blend, not a branch
    case TB_ADD_RELU: {
        const float s = x + y;
        return 0.0f >= s ? 0.0f : s;  // Swift.max(s, 0) exactly: NaN stays NaN, -0 becomes 0
    }
    case TB_RELU: return 0.0f >= x ? 0.0f : x;
    }
    return 0;
}

TB_ALWAYS void binary_f32(tb_binary_op op, const float *a, const float *b, float *o, int64_t first, int64_t last) {
    switch (op) {  // one loop per op, so that each vectorizes on its own
    case TB_ADD: for (int64_t i = first; i < last; i++) o[i] = apply(TB_ADD, a[i], b[i]); break;
    case TB_SUB: for (int64_t i = first; i < last; i++) o[i] = apply(TB_SUB, a[i], b[i]); break;
    case TB_MUL: for (int64_t i = first; i < last; i++) o[i] = apply(TB_MUL, a[i], b[i]); break;
    case TB_RELU_GRAD: for (int64_t i = first; i < last; i++) o[i] = apply(TB_RELU_GRAD, a[i], b[i]); break;
    case TB_ADD_RELU: for (int64_t i = first; i < last; i++) o[i] = apply(TB_ADD_RELU, a[i], b[i]); break;
    case TB_RELU: for (int64_t i = first; i < last; i++) o[i] = apply(TB_RELU, a[i], 0); break;
    }
}

// Sixteen at a time through FP32, each op its own loop with a constant width so that it vectorizes.
TB_ALWAYS void binary_mixed(tb_binary_op op, const void *a, const void *b, void *o, unsigned types, int64_t first,
                            int64_t last) {
    const int ab = types & TB_A_BF16, bb = types & TB_B_BF16, ob = types & TB_O_BF16;
    int64_t i = first;
    float x[16], y[16], r[16];
#define TB_CHUNKS(OP)                                                                   \
    for (; i + 16 <= last; i += 16) {                                                   \
        tb_load(a, ab, i, 16, x);                                                       \
        if (OP != TB_RELU) tb_load(b, bb, i, 16, y);                                    \
        for (int j = 0; j < 16; j++) r[j] = apply(OP, x[j], OP != TB_RELU ? y[j] : 0);  \
        tb_store(o, ob, i, 16, r);                                                      \
    }
    switch (op) {
    case TB_ADD: TB_CHUNKS(TB_ADD) break;
    case TB_SUB: TB_CHUNKS(TB_SUB) break;
    case TB_MUL: TB_CHUNKS(TB_MUL) break;
    case TB_RELU_GRAD: TB_CHUNKS(TB_RELU_GRAD) break;
    case TB_ADD_RELU: TB_CHUNKS(TB_ADD_RELU) break;
    case TB_RELU: TB_CHUNKS(TB_RELU) break;
    }
#undef TB_CHUNKS
    if (i < last) {  // the tail
        const int n = (int)(last - i);
        tb_load(a, ab, i, n, x);
        if (op != TB_RELU) tb_load(b, bb, i, n, y);
        for (int j = 0; j < n; j++) r[j] = apply(op, x[j], op != TB_RELU ? y[j] : 0);
        tb_store(o, ob, i, n, r);
    }
}

TB_ALWAYS void binary(tb_binary_op op, const void *a, const void *b, void *o, unsigned types, int64_t first,
                      int64_t last) {
    if (types) binary_mixed(op, a, b, o, types, first, last);
    else binary_f32(op, a, b, o, first, last);
}

TB_AVX512 static void binary_avx512(tb_binary_op op, const void *a, const void *b, void *o, unsigned types,
                                    int64_t first, int64_t last) {
    binary(op, a, b, o, types, first, last);
}

void tb_binary(tb_binary_op op, const void *a, const void *b, void *o, unsigned types, int64_t first, int64_t last) {
    if (TB_HAS_AVX512()) binary_avx512(op, a, b, o, types, first, last);
    else binary(op, a, b, o, types, first, last);
}

TB_ALWAYS void sgd(float *p, const float *g, const float *old, float *b_out, float lr, float momentum, float wd,
                   int nesterov, int64_t first, int64_t last) {
    const float step = -lr;
    for (int64_t i = first; i < last; i++) {
        float d = g[i];
        if (wd != 0) d = d + p[i] * wd;
        if (momentum != 0) {
            const float b = old ? old[i] * momentum + d : d;
            b_out[i] = b;
            d = nesterov ? d + b * momentum : b;
        }
        p[i] = p[i] + step * d;
    }
}

TB_AVX512 static void sgd_avx512(float *p, const float *g, const float *old, float *b_out, float lr, float momentum,
                                 float wd, int nesterov, int64_t first, int64_t last) {
    sgd(p, g, old, b_out, lr, momentum, wd, nesterov, first, last);
}

void tb_sgd_update(float *p, const float *g, const float *old, float *b_out, float lr, float momentum, float wd,
                   int nesterov, int64_t first, int64_t last) {
    if (TB_HAS_AVX512()) sgd_avx512(p, g, old, b_out, lr, momentum, wd, nesterov, first, last);
    else sgd(p, g, old, b_out, lr, momentum, wd, nesterov, first, last);
}

TB_ALWAYS int unscale(float *g, int64_t n, float inv, uint32_t zero_limit, int64_t *zeros) {
    int64_t z = 0;
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &g[i], 4);
        u &= 0x7fffffff;
        bad |= u >= 0x7f800000;
        z += (u != 0) & (u <= zero_limit);
        g[i] = g[i] * inv;
    }
    *zeros = z;
    return !bad;
}

TB_AVX512 static int unscale_avx512(float *g, int64_t n, float inv, uint32_t zero_limit, int64_t *zeros) {
    return unscale(g, n, inv, zero_limit, zeros);
}

int tb_unscale(float *g, int64_t n, float inv, int fp16, int64_t *zeros) {
    // A value rounds to zero in FP16 when |x| <= 2^-25 (half the smallest subnormal, a tie going to
    // the even zero), in BF16 when its bits are at most 0x8000 (the same rule sixteen bits down).
    const uint32_t limit = fp16 ? 0x33000000u : 0x8000u;
    return TB_HAS_AVX512() ? unscale_avx512(g, n, inv, limit, zeros) : unscale(g, n, inv, limit, zeros);
}

void tb_from_bf16_n(const uint16_t *src, float *dst, int64_t count) {
    for (int64_t i = 0; i < count; i++) dst[i] = tb_from_bf16(src[i]);
}
