/* gemm.c — matrix products. For now they are OpenBLAS's sgemm (a well-kept library made for the
 * job); every caller goes through these three functions so that a faster kernel can replace it
 * in one place. */
#include <cblas.h>

#include "kernels.h"

void dbt_gemm_set_threads(int n) { openblas_set_num_threads(n); }

void dbt_sgemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void dbt_sgemm_nn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void dbt_sgemm_tn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void dbt_linear_forward(const float *x, int M, int K, const float *W, const float *b, int N, float *y) {
    if (b) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) y[(int64_t)i * N + j] = b[j];
        dbt_sgemm_nt(M, N, K, 1.0f, x, K, W, K, 1.0f, y, N);
    } else {
        dbt_sgemm_nt(M, N, K, 1.0f, x, K, W, K, 0.0f, y, N);
    }
}
