// The elementwise passes of every training step, in AVX-512 where the CPU has it.
#ifndef TB_ELEMENTWISE_H
#define TB_ELEMENTWISE_H

#include <stdint.h>

/// What tb_binary computes for each i: a + b, a - b, a * b, b > 0 ? a : 0 (ReLU's gradient, b its
/// input or output), max(a + b, 0) (a residual sum and its ReLU), max(a, 0) (b unread).
typedef enum { TB_ADD, TB_SUB, TB_MUL, TB_RELU_GRAD, TB_ADD_RELU, TB_RELU } tb_binary_op;

/// Which operands hold BF16 (the others FP32); the arithmetic is FP32.
enum { TB_A_BF16 = 1, TB_B_BF16 = 2, TB_O_BF16 = 4 };

/// o[i] = op(a[i], b[i]) for i in [first, last); o may be a or b.
void tb_binary(tb_binary_op op, const void *a, const void *b, void *o, unsigned types, int64_t first, int64_t last);

/// One SGD step on elements [first, last) of a parameter, as the separate ops compute it:
/// d = g + p·wd; b = old·momentum + d (d when old is NULL), written to b_out; d = nesterov ? d + b·momentum
/// : b (with momentum; b_out unused without); p = p + (−lr)·d.
void tb_sgd_update(float *p, const float *g, const float *old, float *b_out, float lr, float momentum, float wd,
                   int nesterov, int64_t first, int64_t last);

/// The loss scaler's pass over n gradient values: g[i] *= inv, *zeros = how many non-zero values
/// (before scaling) round to zero in FP16 (fp16 != 0) or BF16; 0 if any value is inf or NaN.
int tb_unscale(float *g, int64_t n, float inv, int fp16, int64_t *zeros);

/// count BF16 values as FP32.
void tb_from_bf16_n(const uint16_t *src, float *dst, int64_t count);

#endif
