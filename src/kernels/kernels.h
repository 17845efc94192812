/* kernels.h — the numeric building blocks of the encoder, on row-major fp32 matrices.
 * Forward and (as training lands) backward of each op sit side by side in its file. */
#ifndef DBT_KERNELS_H
#define DBT_KERNELS_H

#include <stdint.h>

#include "distilbert.h"

/* C[M×N] = alpha · A[M×K] · B[N×K]ᵀ + beta · C  (B in PyTorch's Linear layout: out × in). */
void dbt_sgemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc);
/* C[M×N] = alpha · A[M×K] · B[K×N] + beta · C */
void dbt_sgemm_nn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc);
/* C[M×N] = alpha · A[K×M]ᵀ · B[K×N] + beta · C */
void dbt_sgemm_tn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc);
void dbt_gemm_set_threads(int n);

/* y[M×N] = x[M×K] · W[N×K]ᵀ + b (b may be NULL). */
void dbt_linear_forward(const float *x, int M, int K, const float *W, const float *b, int N, float *y);

/* y = LayerNorm(x + residual) over rows of n (residual may be NULL); y may alias x. */
void dbt_layernorm_forward(const float *x, const float *residual, int rows, int n, const float *gamma,
                           const float *beta, float eps, float *y);

/* In place: x = act(x). */
void dbt_activation_forward(dbt_activation act, float *x, int64_t n);

/* In place softmax over each row of length n, considering only the first `valid` entries
 * (the rest are set to 0). */
void dbt_softmax_rows(float *x, int rows, int n, int valid);

/* ---- training (forward and backward side by side in ops.c) ---- */

/* LayerNorm forward that also keeps x̂ (rows×n) and 1/σ (rows) for the backward pass. */
void dbt_layernorm_forward_train(const float *x, const float *residual, int rows, int n, const float *gamma,
                                 const float *beta, float eps, float *y, float *xhat, float *rstd);
void dbt_layernorm_backward(const float *dy, const float *xhat, const float *rstd, const float *gamma, int rows,
                            int n, float *dx, float *dgamma, float *dbeta);
void dbt_activation_backward(dbt_activation act, const float *pre, const float *dy, float *dx, int64_t n);
void dbt_softmax_backward_rows(const float *p, float *dy, int rows, int n);
void dbt_linear_backward(const float *x, const float *dy, int M, int K, int N, const float *W, float *dx,
                         int accumulate, float *dW, float *db);

#endif
