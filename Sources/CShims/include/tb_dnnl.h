// Convolutions through oneDNN, opened at run time (see tb_dnnl.c).
#ifndef TB_DNNL_H
#define TB_DNNL_H

#include <stddef.h>
#include <stdint.h>

/// One convolution's sizes, as trickbook's ConvGeometry has them (dilation d ≥ 1; oh, ow the output).
typedef struct {
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow, bias;
} tb_conv_shape;

typedef struct tb_dnnl_conv tb_dnnl_conv;

/// Opens libdnnl.so.2 once, its OpenMP threads set to `threads` (0: OpenMP's default); whether it
/// loaded. Later calls, and tb_dnnl_available, only answer.
int tb_dnnl_load(int threads);
/// Whether libdnnl.so.2 loaded; if not, why.
int tb_dnnl_available(void);
const char *tb_dnnl_load_error(void);
/// Runs body(ctx, i) for i in 0..<iterations on OpenMP's threads (the pool oneDNN uses), `threads`
/// of them, iterations dealt round-robin; 0 when oneDNN has not been loaded (nothing ran).
int tb_omp_perform(long iterations, int threads, void *ctx, void (*body)(void *, long));
/// The instruction set oneDNN dispatches to here ("avx512_core_bf16", "avx512_core_amx", ...).
const char *tb_dnnl_isa(void);

/// The three primitives of one convolution shape, in FP32 or (low != 0) with BF16 inputs, outputs,
/// weights and activation gradients, and FP32 weight gradients. NULL with a message in err when oneDNN has none.
/// With relu set: a forward pass for inference alone, applying ReLU to its output (no backward).
tb_dnnl_conv *tb_dnnl_conv_create(const tb_conv_shape *shape, int low, int relu, char *err, size_t errlen);
void tb_dnnl_conv_destroy(tb_dnnl_conv *c);
/// Bytes of workspace pass 0 (forward), 1 (backward-data) or 2 (backward-weights) needs.
size_t tb_dnnl_conv_workspace(const tb_dnnl_conv *c, int pass);

/// What argument `slot` of `pass` (its place in the calls below) takes besides plain FP32: an
/// nChw16c FP32 buffer (TB_DNNL_F32: as it is when TB_DNNL_F32_AS_IS is set too, else through one
/// reorder to or from BF16), an nChw16c BF16 buffer as it is (TB_DNNL_BF16_AS_IS).
enum { TB_DNNL_F32 = 1, TB_DNNL_F32_AS_IS = 2, TB_DNNL_BF16_AS_IS = 4 };
int tb_dnnl_conv_blocked16(const tb_dnnl_conv *c, int pass, int slot);

/// Each returns 0, or oneDNN's status. Every buffer is required (b and db only when the shape has a
/// bias) and plain NCHW / OIHW FP32, except those whose bit (1 << slot) is set in `held`: they are
/// nChw16c, FP32 or (bit set in `bf16` too) BF16, where tb_dnnl_conv_blocked16 allows it.
int tb_dnnl_conv_forward(tb_dnnl_conv *c, const void *x, const float *w, const float *b, void *y, unsigned held,
                         unsigned bf16, void *ws);
int tb_dnnl_conv_backward_data(tb_dnnl_conv *c, const void *dy, const float *w, void *dx, unsigned held,
                               unsigned bf16, void *ws);
int tb_dnnl_conv_backward_weights(tb_dnnl_conv *c, const void *x, const void *dy, float *dw, float *db, unsigned held,
                                  unsigned bf16, void *ws);

#endif
