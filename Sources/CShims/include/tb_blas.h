// OpenBLAS opened at run time, so that OPENBLAS_CORETYPE can be chosen before it loads.
// Swift (TrickbookTensor/BLAS.swift) decides the core type; this file only opens, resolves and calls.
#ifndef TB_BLAS_H
#define TB_BLAS_H
#include <stddef.h>

/// Opens the first loadable OpenBLAS among the usual names. Returns 0 on success; otherwise
/// writes a message into err and returns -1.
int tb_blas_open(char *err, size_t errlen);
/// Closes the library so that a later tb_blas_open reloads it (and re-reads OPENBLAS_CORETYPE).
void tb_blas_close(void);
/// The loaded file's path, or "" when nothing is loaded.
const char *tb_blas_path(void);
/// OpenBLAS's kernel family ("SkylakeX", "Prescott", ...) or "unknown".
const char *tb_blas_corename(void);
void tb_blas_set_threads(int n);
int tb_blas_get_threads(void);

/// Row-major C = alpha * op(A) * op(B) + beta * C through the loaded library.
void tb_sgemm(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/// The same product computed by plain loops: the reference the loaded kernels are checked against,
/// and the fallback when no library can be used.
void tb_sgemm_reference(int transA, int transB, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/// CPU features, as the compiler's runtime detection reports them (it checks OS support too).
int tb_cpu_has_avx512(void);
int tb_cpu_has_avx2_fma(void);

#endif
