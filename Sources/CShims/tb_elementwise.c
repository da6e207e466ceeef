// Elementwise passes in C so that they run in AVX-512 where the CPU has it (chosen at run time):
// Swift code is built for baseline x86-64, and its loops vectorize to 128-bit SSE only.
#include "tb_elementwise.h"
#include "tb_cpu.h"

TB_ALWAYS void binary(tb_binary_op op, const float *a, const float *b, float *o, int64_t first, int64_t last) {
    switch (op) {
    case TB_ADD: for (int64_t i = first; i < last; i++) o[i] = a[i] + b[i]; break;
    case TB_SUB: for (int64_t i = first; i < last; i++) o[i] = a[i] - b[i]; break;
    case TB_MUL: for (int64_t i = first; i < last; i++) o[i] = a[i] * b[i]; break;
    case TB_RELU_GRAD:
        for (int64_t i = first; i < last; i++) {
            const float g = a[i], m = b[i];  // both loaded: the choice is a blend, not a branch
            o[i] = m > 0 ? g : 0;
        }
        break;
    case TB_ADD_RELU:
        for (int64_t i = first; i < last; i++) {
            const float s = a[i] + b[i];
            o[i] = 0.0f >= s ? 0.0f : s;  // Swift.max(s, 0) exactly: NaN stays NaN, -0 becomes 0
        }
        break;
    }
}

TB_AVX512 static void binary_avx512(tb_binary_op op, const float *a, const float *b, float *o, int64_t first,
                                    int64_t last) {
    binary(op, a, b, o, first, last);
}

void tb_binary(tb_binary_op op, const float *a, const float *b, float *o, int64_t first, int64_t last) {
    if (TB_HAS_AVX512()) binary_avx512(op, a, b, o, first, last);
    else binary(op, a, b, o, first, last);
}
