// Direct convolution kernels for AVX-512 CPUs: 16 output channels live in one vector register, and
// each weight vector is reused across a row of output pixels held in registers. For the few
// channels of small-image ResNets these beat im2col + sgemm, whose packing costs more than the
// arithmetic there. Swift (Ops/Conv.swift) decides when to use them.
#ifndef TB_CONV_H
#define TB_CONV_H

/// 1 when the CPU (and OS) can run the kernels below.
int tb_conv_direct_available(void);

/// One image. xpad [C, HP, WP] is the input with its padding already applied; wpack [O/16][C·kh·kw][16]
/// holds weight[o][c][i][j] at [o / 16][(c·kh + i)·kw + j][o % 16]; bias [O] or NULL.
/// out [O, OH, OW] = Σ wpack · xpad at stride (sh, sw), dilation (dh, dw).
void tb_conv_direct_forward(const float *xpad, int C, int HP, int WP, const float *wpack, int O, int kh, int kw,
                            int sh, int sw, int dh, int dw, const float *bias, float *out, int OH, int OW);

/// One image. doutT [O/16][OH·OW][16] is the output gradient with channels innermost;
/// dwpack (laid out as wpack) += Σ over output pixels of doutT · xpad.
void tb_conv_direct_weight_grad(const float *xpad, int C, int HP, int WP, const float *doutT, int O, int kh, int kw,
                                int sh, int sw, int dh, int dw, int OH, int OW, float *dwpack);
#endif
