// Max pooling over oneDNN's nChw16c blocks (a convolution's output, as in ResNet-50's stem).
#ifndef TB_POOL_H
#define TB_POOL_H

#include <stdint.h>

/// One pooling's sizes, as trickbook's PoolGeometry has them (dilation d >= 1; oh, ow the output).
typedef struct {
    int64_t h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
} tb_pool_shape;

/// Blocks [first, last) of sixteen channels of one image each: dst gets each window's maximum
/// and argmax its position (iy * w + ix; -1 for a window with no element), the first maximum or
/// the first NaN of the window, as the plain pass chooses. Positions must fit in 32 bits. With
/// bf16 set, src and dst hold BF16 (a maximum of BF16 values is one: nothing is rounded).
void tb_maxpool16_forward(const void *src, void *dst, int bf16, int32_t *argmax, const tb_pool_shape *g,
                          int64_t first, int64_t last);

#endif
