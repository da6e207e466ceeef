// The elementwise passes of every training step, in AVX-512 where the CPU has it.
#ifndef TB_ELEMENTWISE_H
#define TB_ELEMENTWISE_H

#include <stdint.h>

/// What tb_binary computes for each i: a + b, a - b, a * b, b > 0 ? a : 0 (ReLU's gradient, b its
/// input or output), max(a + b, 0) (a residual sum and its ReLU).
typedef enum { TB_ADD, TB_SUB, TB_MUL, TB_RELU_GRAD, TB_ADD_RELU } tb_binary_op;

/// o[i] = op(a[i], b[i]) for i in [first, last); o may be a or b.
void tb_binary(tb_binary_op op, const float *a, const float *b, float *o, int64_t first, int64_t last);

#endif
