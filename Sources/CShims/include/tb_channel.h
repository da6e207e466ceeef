// Batch norm's two per-channel passes over oneDNN's nChw16c blocks (see ChannelKernels.swift).
#ifndef TB_CHANNEL_H
#define TB_CHANNEL_H

#include <stdint.h>

/// Which operands hold BF16 (the others FP32), for the calls below.
enum { TB_U_BF16 = 1, TB_V_BF16 = 2, TB_MASK_BF16 = 4, TB_OUT_BF16 = 8 };

/// For images [first, last) of a [N, blocks·16, s] tensor held in blocks of sixteen channels:
/// adds Σ u and Σ u·(v − center[ch]) over each image's positions (summed in FP32 per image, in
/// order) to sum1[ch] and sum2[ch]. v = u when NULL; with a mask, u counts where mask > 0.
void tb_channel_sums16(const void *u, const void *v, const void *mask, unsigned types, const float *center,
                       int64_t blocks, int64_t s, int64_t first, int64_t last, double *sum1, double *sum2);

/// For blocks [first, last) (image-major): out = a[ch]·u' + b[ch]·v + k[ch], u' = u, or u where
/// mask > 0 and 0 elsewhere; the v term only when v and b are given; max(out, 0) when relu is set.
void tb_channel_affine16(const void *u, const void *v, const void *mask, void *out, unsigned types, const float *a,
                         const float *b, const float *k, int relu, int64_t blocks, int64_t s, int64_t first,
                         int64_t last);

#endif
