// Elementwise passes in C so that they run in AVX-512 where the CPU has it (chosen at run time):
// Swift code is built for baseline x86-64, and its loops vectorize to 128-bit SSE only.
#include "tb_elementwise.h"
#include "tb_cpu.h"

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

TB_ALWAYS void binary(tb_binary_op op, const void *a, const void *b, void *o, unsigned types, int64_t first,
                      int64_t last) {
    if (!types) {
        binary_f32(op, a, b, o, first, last);
        return;
    }
    for (int64_t i = first; i < last; i += 16) {  // sixteen at a time through FP32
        const int n = last - i < 16 ? (int)(last - i) : 16;
        float x[16], y[16], r[16];
        tb_load(a, types & TB_A_BF16, i, n, x);
        tb_load(b, types & TB_B_BF16, i, n, y);
        for (int j = 0; j < n; j++) r[j] = apply(op, x[j], y[j]);
        tb_store(o, types & TB_O_BF16, i, n, r);
    }
}

TB_AVX512 static void binary_avx512(tb_binary_op op, const void *a, const void *b, void *o, unsigned types,
                                    int64_t first, int64_t last) {
    binary(op, a, b, o, types, first, last);
}

void tb_binary(tb_binary_op op, const void *a, const void *b, void *o, unsigned types, int64_t first, int64_t last) {
    if (TB_HAS_AVX512()) binary_avx512(op, a, b, o, types, first, last);
    else binary(op, a, b, o, types, first, last);
}

void tb_from_bf16_n(const uint16_t *src, float *dst, int64_t count) {
    for (int64_t i = 0; i < count; i++) dst[i] = tb_from_bf16(src[i]);
}
