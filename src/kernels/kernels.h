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
/* Threads the GEMMs may use (a persistent pool; the calling thread is one of them). */
void dbt_gemm_set_threads(int n);

/* y[M×N] = x[M×K] · W[N×K]ᵀ + b (b may be NULL). */
void dbt_linear_forward(const float *x, int M, int K, const float *W, const float *b, int N, float *y);

/* A Linear's weight W[N×K] packed once into the GEMM kernel's layout (constant weights need not
 * be repacked on every call; measured gain is small once M ≥ 128, see gemm.c). Keeps a pointer
 * to W, which must outlive it. NULL when out of memory. */
typedef struct dbt_packed_b dbt_packed_b;
dbt_packed_b *dbt_pack_weights(const float *W, int N, int K);
void dbt_packed_free(dbt_packed_b *p);

/* y = act(x · Wᵀ + b), with the bias and the activation applied as each tile of y is produced.
 * Wp (may be NULL) is W packed by dbt_pack_weights; W may be NULL when Wp is given. act is a
 * dbt_activation or DBT_GEMM_NO_ACT. */
#define DBT_GEMM_NO_ACT (-1)
void dbt_linear_forward_ex(const float *x, int M, int K, const float *W, const dbt_packed_b *Wp, const float *b,
                           int N, int act, float *y);

/* The micro-kernel in use: "avx512", "avx2" or "scalar". The default is the best the CPU runs;
 * the environment variable DBT_KERNEL (read at the first GEMM) or dbt_gemm_use_kernel (tests,
 * benchmarks) forces one. dbt_gemm_use_kernel returns -1 when that kernel is not available. */
const char *dbt_gemm_kernel_name(void);
int dbt_gemm_use_kernel(const char *name);

/* y = LayerNorm(x + residual) over rows of n (residual may be NULL); y may alias x. */
void dbt_layernorm_forward(const float *x, const float *residual, int rows, int n, const float *gamma,
                           const float *beta, float eps, float *y);

/* In place: x = act(x). */
void dbt_activation_forward(dbt_activation act, float *x, int64_t n);

/* Vectorized (vmath.c), on the instruction set of the GEMM kernel in use. In place:
 * x = x·Φ(x), the exact GELU to within 1e-7·|x| (scalar path: erff); a softmax of one row. */
void dbt_gelu_forward(float *x, int64_t n);
void dbt_softmax_row(float *x, int n);

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
