#include "tb_blas.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*corename_fn)(void);

static void *handle;
static sgemm_fn p_sgemm;
static set_threads_fn p_set_threads;
static get_threads_fn p_get_threads;
static corename_fn p_corename;
static char loaded_path[256];

int tb_blas_open(char *err, size_t errlen) {
    static const char *names[] = {"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0",
                                  "libopenblas.dylib"};
    const char *last = "no library name tried";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) { last = dlerror(); continue; }
        sgemm_fn g = (sgemm_fn)dlsym(h, "cblas_sgemm");
        if (!g) { last = "cblas_sgemm not found"; dlclose(h); continue; }
        handle = h;
        p_sgemm = g;
        p_set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
        p_get_threads = (get_threads_fn)dlsym(h, "openblas_get_num_threads");
        p_corename = (corename_fn)dlsym(h, "openblas_get_corename");
        snprintf(loaded_path, sizeof loaded_path, "%s", names[i]);
        return 0;
    }
    snprintf(err, errlen, "%s", last ? last : "unknown dlopen error");
    return -1;
}

void tb_blas_close(void) {
    if (handle) dlclose(handle);
    handle = NULL;
    p_sgemm = NULL;
    p_set_threads = NULL;
    p_get_threads = NULL;
    p_corename = NULL;
    loaded_path[0] = 0;
}

const char *tb_blas_path(void) { return loaded_path; }
const char *tb_blas_corename(void) { return p_corename ? p_corename() : "unknown"; }
void tb_blas_set_threads(int n) { if (p_set_threads) p_set_threads(n); }
int tb_blas_get_threads(void) { return p_get_threads ? p_get_threads() : 1; }

void tb_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (!p_sgemm) {
        tb_sgemm_reference(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    p_sgemm(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, M, N, K, alpha, A, lda,
            B, ldb, beta, C, ldc);
}

void tb_sgemm_reference(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                        int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f) for (int j = 0; j < N; j++) c[j] *= beta;
        for (int k = 0; k < K; k++) {
            float a = alpha * (transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
            if (!transB) {
                const float *b = B + (size_t)k * ldb;
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (int j = 0; j < N; j++) c[j] += a * B[(size_t)j * ldb + k];
            }
        }
    }
}

int tb_cpu_has_avx512(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

int tb_cpu_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}
