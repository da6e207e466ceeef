// Max pooling on nChw16c blocks. The sixteen lanes of a block go together, in one AVX-512
// register where the CPU has it (chosen at run time; Swift code is built for baseline x86-64,
// where the same loop took 10% of ResNet-50's training step).
#include "tb_pool.h"
#include "tb_cpu.h"

#include <math.h>

TB_ALWAYS void pool_blocks(const void *src, void *dst, int bf16, int32_t *argmax, const tb_pool_shape *g,
                           int64_t first, int64_t last) {
    const int64_t s = g->h * g->w, os = g->oh * g->ow;
    for (int64_t bb = first; bb < last; bb++) {
        const int64_t x = bb * s * 16, y = bb * os * 16;
        int32_t *am = argmax + bb * os * 16;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            for (int64_t ox = 0; ox < g->ow; ox++) {
                float best[16];
                int32_t at[16];
                for (int j = 0; j < 16; j++) { best[j] = -INFINITY; at[j] = -1; }
                for (int64_t ki = 0; ki < g->kh; ki++) {
                    const int64_t iy = oy * g->sh - g->ph + ki * g->dh;
                    if (iy < 0 || iy >= g->h) continue;
                    for (int64_t kj = 0; kj < g->kw; kj++) {
                        const int64_t ix = ox * g->sw - g->pw + kj * g->dw;
                        if (ix < 0 || ix >= g->w) continue;
                        float v[16];
                        tb_load(src, bf16, x + (iy * g->w + ix) * 16, 16, v);
                        const int32_t index = (int32_t)(iy * g->w + ix);
                        for (int j = 0; j < 16; j++) {
                            const float e = v[j];
                            const int take = (e > best[j]) | ((e != e) & (best[j] == best[j])) | (at[j] < 0);
                            best[j] = take ? e : best[j];
                            at[j] = take ? index : at[j];
                        }
                    }
                }
                const int64_t o = (oy * g->ow + ox) * 16;
                tb_store(dst, bf16, y + o, 16, best);
                for (int j = 0; j < 16; j++) am[o + j] = at[j];
            }
        }
    }
}

TB_AVX512 static void pool_avx512(const void *src, void *dst, int bf16, int32_t *argmax, const tb_pool_shape *g,
                                  int64_t first, int64_t last) {
    pool_blocks(src, dst, bf16, argmax, g, first, last);
}

void tb_maxpool16_forward(const void *src, void *dst, int bf16, int32_t *argmax, const tb_pool_shape *g,
                          int64_t first, int64_t last) {
    if (TB_HAS_AVX512()) pool_avx512(src, dst, bf16, argmax, g, first, last);
    else pool_blocks(src, dst, bf16, argmax, g, first, last);
}
