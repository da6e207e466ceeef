// Batch norm's passes on nChw16c blocks, sixteen channels in one AVX-512 register where the CPU
// has it (chosen at run time; Swift's loops stay 128-bit SSE). Products are not fused into FMAs:
// the results are the same on every CPU and with every thread count.
#include "tb_channel.h"
#include "tb_cpu.h"

#pragma STDC FP_CONTRACT OFF

// The sixteen lanes of a position are the vector: left to itself the compiler vectorized across
// positions instead, with gathers and scatters (slower than Swift's SSE loops).
#define TB_LANES _Pragma("clang loop vectorize(disable) interleave(disable)")

TB_ALWAYS void sums(const float *u, const float *v, const float *mask, const float *center, int64_t blocks, int64_t s,
                    int64_t first, int64_t last, double *sum1, double *sum2) {
    if (!v) v = u;
    for (int64_t b = first; b < last; b++) {
        for (int64_t blk = 0; blk < blocks; blk++) {
            const int64_t base = (b * blocks + blk) * s * 16;
            const float *ur = u + base, *vr = v + base, *mu = center + blk * 16;
            float a[16] = {0}, q[16] = {0};
            if (mask) {
                const float *mr = mask + base;
                TB_LANES for (int64_t i = 0; i < s; i++)
                    for (int j = 0; j < 16; j++) {
                        const float g = ur[i * 16 + j], m = mr[i * 16 + j];
                        const float x = m > 0 ? g : 0;
                        a[j] += x;
                        q[j] += x * (vr[i * 16 + j] - mu[j]);
                    }
            } else {
                TB_LANES for (int64_t i = 0; i < s; i++)
                    for (int j = 0; j < 16; j++) {
                        const float x = ur[i * 16 + j];
                        a[j] += x;
                        q[j] += x * (vr[i * 16 + j] - mu[j]);
                    }
            }
            for (int j = 0; j < 16; j++) {
                sum1[blk * 16 + j] += (double)a[j];
                sum2[blk * 16 + j] += (double)q[j];
            }
        }
    }
}

TB_ALWAYS void affine(const float *u, const float *v, const float *mask, float *out, const float *a, const float *b,
                      const float *k, int relu, int64_t blocks, int64_t s, int64_t first, int64_t last) {
    for (int64_t bb = first; bb < last; bb++) {
        const int64_t blk = bb % blocks, at = bb * s * 16;
        const float *al = a + blk * 16, *kl = k + blk * 16, *bl = b ? b + blk * 16 : 0;
        const float *ur = u + at, *vr = v ? v + at : 0, *mr = mask ? mask + at : 0;
        float *o = out + at;
        if (vr && bl && mr) {
            TB_LANES for (int64_t i = 0; i < s; i++)
                for (int j = 0; j < 16; j++) {
                    const int64_t e = i * 16 + j;
                    const float g = ur[e], m = mr[e];
                    o[e] = al[j] * (m > 0 ? g : 0) + bl[j] * vr[e] + kl[j];
                }
        } else if (vr && bl) {
            TB_LANES for (int64_t i = 0; i < s; i++)
                for (int j = 0; j < 16; j++) o[i * 16 + j] = al[j] * ur[i * 16 + j] + bl[j] * vr[i * 16 + j] + kl[j];
        } else if (mr) {
            TB_LANES for (int64_t i = 0; i < s; i++)
                for (int j = 0; j < 16; j++) {
                    const int64_t e = i * 16 + j;
                    const float g = ur[e], m = mr[e];
                    o[e] = al[j] * (m > 0 ? g : 0) + kl[j];
                }
        } else if (relu) {
            TB_LANES for (int64_t i = 0; i < s; i++)
                for (int j = 0; j < 16; j++) {
                    const float y = al[j] * ur[i * 16 + j] + kl[j];
                    o[i * 16 + j] = 0.0f >= y ? 0.0f : y;  // Swift.max(y, 0): NaN stays NaN
                }
        } else {
            TB_LANES for (int64_t i = 0; i < s; i++)
                for (int j = 0; j < 16; j++) o[i * 16 + j] = al[j] * ur[i * 16 + j] + kl[j];
        }
    }
}

TB_AVX512 static void sums_avx512(const float *u, const float *v, const float *mask, const float *center,
                                  int64_t blocks, int64_t s, int64_t first, int64_t last, double *sum1, double *sum2) {
    sums(u, v, mask, center, blocks, s, first, last, sum1, sum2);
}

TB_AVX512 static void affine_avx512(const float *u, const float *v, const float *mask, float *out, const float *a,
                                    const float *b, const float *k, int relu, int64_t blocks, int64_t s,
                                    int64_t first, int64_t last) {
    affine(u, v, mask, out, a, b, k, relu, blocks, s, first, last);
}

void tb_channel_sums16(const float *u, const float *v, const float *mask, const float *center, int64_t blocks,
                       int64_t s, int64_t first, int64_t last, double *sum1, double *sum2) {
    if (TB_HAS_AVX512()) sums_avx512(u, v, mask, center, blocks, s, first, last, sum1, sum2);
    else sums(u, v, mask, center, blocks, s, first, last, sum1, sum2);
}

void tb_channel_affine16(const float *u, const float *v, const float *mask, float *out, const float *a,
                         const float *b, const float *k, int relu, int64_t blocks, int64_t s, int64_t first,
                         int64_t last) {
    if (TB_HAS_AVX512()) affine_avx512(u, v, mask, out, a, b, k, relu, blocks, s, first, last);
    else affine(u, v, mask, out, a, b, k, relu, blocks, s, first, last);
}
