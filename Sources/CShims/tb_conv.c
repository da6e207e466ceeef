#include "tb_conv.h"
#include <stddef.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define TB_AVX512 __attribute__((target("avx512f")))
#define TB_INLINE static inline __attribute__((always_inline))

int tb_conv_direct_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

enum { MAX_PIXELS = 14, MAX_TAPS = 12 };

// R output pixels × 16 channels in R registers; R is a constant at every call site, so the loops
// over r unroll and acc stays in registers.
TB_AVX512 TB_INLINE void forward_tile(const int R, const float *restrict xp, size_t plane, int WP, int C, int kh,
                                      int kw, int sw, int dh, int dw, const float *restrict wp, __m512 init,
                                      float *restrict tile) {
    __m512 acc[MAX_PIXELS];
    for (int r = 0; r < R; r++) acc[r] = init;
    for (int c = 0; c < C; c++) {
        const float *xc = xp + (size_t)c * plane;
        for (int i = 0; i < kh; i++) {
            const float *xrow = xc + (size_t)i * dh * WP;
            for (int j = 0; j < kw; j++) {
                const __m512 w = _mm512_loadu_ps(wp);
                wp += 16;
                const float *xs = xrow + j * dw;
                for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(xs[r * sw]), w, acc[r]);
            }
        }
    }
    for (int r = 0; r < R; r++) _mm512_storeu_ps(tile + 16 * r, acc[r]);
}

TB_AVX512 void tb_conv_direct_forward(const float *xpad, int C, int HP, int WP, const float *wpack, int O, int kh,
                                      int kw, int sh, int sw, int dh, int dw, const float *bias, float *out, int OH,
                                      int OW) {
    const size_t plane = (size_t)HP * WP, K = (size_t)C * kh * kw, opl = (size_t)OH * OW;
    float tile[MAX_PIXELS * 16];
    for (int ob = 0; ob < O / 16; ob++) {
        const float *wp = wpack + (size_t)ob * K * 16;
        const __m512 init = bias ? _mm512_loadu_ps(bias + 16 * ob) : _mm512_setzero_ps();
        float *ob_out = out + (size_t)ob * 16 * opl;
        for (int oy = 0; oy < OH; oy++) {
            for (int ox = 0; ox < OW; ox += MAX_PIXELS) {
                const int R = OW - ox < MAX_PIXELS ? OW - ox : MAX_PIXELS;
                const float *xp = xpad + (size_t)oy * sh * WP + (size_t)ox * sw;
                switch (R) {
#define TILE(n) case n: forward_tile(n, xp, plane, WP, C, kh, kw, sw, dh, dw, wp, init, tile); break;
                    TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6) TILE(7)
                    TILE(8) TILE(9) TILE(10) TILE(11) TILE(12) TILE(13) TILE(14)
#undef TILE
                }
                // tile [R][16] → out[ob·16 + ch][oy][ox + r]
                for (int ch = 0; ch < 16; ch++) {
                    float *dst = ob_out + ch * opl + (size_t)oy * OW + ox;
                    for (int r = 0; r < R; r++) dst[r] = tile[16 * r + ch];
                }
            }
        }
    }
}

// T (channel, tap) pairs at once, each with its own accumulator, so that T independent FMA chains
// hide the FMA latency; T is a constant at every call site.
TB_AVX512 TB_INLINE void weight_grad_taps(const int T, const float *restrict xpad, const size_t *restrict offsets,
                                          const float *restrict g, int WP, int sh, int sw, int OH, int OW,
                                          float *restrict dw) {
    __m512 acc[MAX_TAPS];
    size_t off[MAX_TAPS];
    for (int t = 0; t < T; t++) { acc[t] = _mm512_setzero_ps(); off[t] = offsets[t]; }
    for (int oy = 0; oy < OH; oy++) {
        const float *row = xpad + (size_t)oy * sh * WP;
        const float *grow = g + (size_t)oy * OW * 16;
        for (int ox = 0; ox < OW; ox++) {
            const __m512 gv = _mm512_loadu_ps(grow + 16 * ox);
            const float *base = row + (size_t)ox * sw;
            for (int t = 0; t < T; t++) acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(base[off[t]]), gv, acc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(dw + 16 * t, _mm512_add_ps(_mm512_loadu_ps(dw + 16 * t), acc[t]));
}

TB_AVX512 void tb_conv_direct_weight_grad(const float *xpad, int C, int HP, int WP, const float *doutT, int O, int kh,
                                          int kw, int sh, int sw, int dh, int dw, int OH, int OW, float *dwpack) {
    const size_t plane = (size_t)HP * WP, K = (size_t)C * kh * kw, opl = (size_t)OH * OW;
    size_t offsets[MAX_TAPS];
    for (int ob = 0; ob < O / 16; ob++) {
        const float *g = doutT + (size_t)ob * opl * 16;
        float *dwp = dwpack + (size_t)ob * K * 16;
        for (size_t k0 = 0; k0 < K; k0 += MAX_TAPS) {
            const int T = K - k0 < MAX_TAPS ? (int)(K - k0) : MAX_TAPS;
            for (int t = 0; t < T; t++) {
                const size_t k = k0 + t, c = k / (kh * kw), i = (k / kw) % kh, j = k % kw;
                offsets[t] = c * plane + i * dh * WP + j * dw;
            }
            switch (T) {
#define TAPS(n) case n: weight_grad_taps(n, xpad, offsets, g, WP, sh, sw, OH, OW, dwp + 16 * k0); break;
                TAPS(1) TAPS(2) TAPS(3) TAPS(4) TAPS(5) TAPS(6) TAPS(7) TAPS(8) TAPS(9) TAPS(10) TAPS(11) TAPS(12)
#undef TAPS
            }
        }
    }
}

#else
int tb_conv_direct_available(void) { return 0; }
void tb_conv_direct_forward(const float *xpad, int C, int HP, int WP, const float *wpack, int O, int kh, int kw,
                            int sh, int sw, int dh, int dw, const float *bias, float *out, int OH, int OW) {}
void tb_conv_direct_weight_grad(const float *xpad, int C, int HP, int WP, const float *doutT, int O, int kh, int kw,
                                int sh, int sw, int dh, int dw, int OH, int OW, float *dwpack) {}
#endif
