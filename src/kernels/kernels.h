/* kernels.h — the numeric building blocks of the encoder, on row-major fp32 matrices.
 * Forward and (as training lands) backward of each op sit side by side in its file. */
#ifndef DBT_KERNELS_H
#define DBT_KERNELS_H

#include <stddef.h>
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

/* Packed copies of a model's constant weights: dbt_packed_set_new packs W[i] (N[i]×K[i]) for
 * i < n, on the pool's threads (NULL when out of memory). dbt_packed_set_scope(s) makes s the
 * calling thread's set and returns the previous one (restore it after): while it is in scope,
 * dbt_linear_forward and dbt_linear_forward_ex (Wp NULL) use the packed copy of any W in it —
 * the same bits, without packing W on every call. */
typedef struct dbt_packed_set dbt_packed_set;
dbt_packed_set *dbt_packed_set_new(const float *const *W, const int *N, const int *K, int n);
void dbt_packed_set_free(dbt_packed_set *s);
size_t dbt_packed_set_bytes(const dbt_packed_set *s);
const dbt_packed_set *dbt_packed_set_scope(const dbt_packed_set *s);

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

/* ---- reduced precision Linear layers (gemm_bf16.c, gemm_int8.c) ----
 *
 * Both compute y[M×N] = act(x[M×K] · Wᵀ + b) from fp32 x and fp32 y, with W packed once into the
 * kernel's layout. The kernel is picked at run time like the fp32 one: the best this CPU runs,
 * unless the environment variable DBT_KERNEL_BF16 / DBT_KERNEL_INT8 (read at first use) or
 * dbt_gemm_{bf16,int8}_use_kernel (tests, benchmarks) forces one; that returns -1 when the
 * named kernel is not available. Every kernel of a type reads the same packed weights and gives
 * the same bits (except that AVX512_BF16 flushes bf16 subnormals to zero), and results do not
 * depend on the thread count. act is a dbt_activation or DBT_GEMM_NO_ACT. */

/* bfloat16: x and W rounded to bf16 (round to nearest even), products exact, sums in fp32
 * (VDPBF16PS order: for each pair of K steps, acc += a₁b₁ then acc += a₀b₀). Kernels:
 * "avx512bf16", "avx512" and "avx2" (widen bf16 and FMA: same bits), "scalar". */
typedef struct dbt_bf16_weights dbt_bf16_weights;
/* Packs W (fp32, rounded to bf16 here) or, with W == NULL, Wbf16 (bf16 bit patterns). NULL when
 * out of memory. The packed copy owns its data. */
dbt_bf16_weights *dbt_bf16_pack(const float *W, const uint16_t *Wbf16, int N, int K);
void dbt_bf16_free(dbt_bf16_weights *w);
void dbt_linear_bf16(const float *x, int M, int K, const dbt_bf16_weights *W, const float *b, int N, int act,
                     float *y);
uint16_t dbt_fp32_to_bf16(float f); /* round to nearest even; NaN stays NaN */
const char *dbt_gemm_bf16_kernel_name(void);
int dbt_gemm_bf16_use_kernel(const char *name);

/* int8 dynamic quantization (ONNX Runtime's MatMulInteger scheme):
 *   W  int8, symmetric, per output channel: W[j,k] ≈ sw[j]·Wq[j,k], Wq in [−127, 127];
 *   x  uint8, asymmetric, per row (token), quantized at run time: x[i,k] ≈ sx[i]·(xq[i,k] − zx[i])
 *      over the row's range extended to include 0, so that 0 is exact (dbt_quantize_row_u8);
 *   y[i,j] = (float)(Σ_k xq·Wq − zx[i]·Σ_k Wq[j,k]) · (sx[i]·sw[j]) + b[j], the sum exact in int32.
 * Unsigned activations with a zero point because VPDPBUSD multiplies u8 by s8, and because a row
 * after GELU (the FFN's second input) is nearly all ≥ 0: an asymmetric range spends all 256
 * levels on it where a symmetric s8 one would waste half. Kernels: "avx512vnni", "avxvnni" (the
 * same on 8 lanes), "avx2" (int16 products, VPMADDWD), "scalar". */
typedef struct dbt_int8_weights dbt_int8_weights;
/* Wq[j,k] = round(W[j,k] / sw[j]) with sw[j] = max_k |W[j,k]| / 127 (1 for an all-zero row). */
void dbt_quantize_weights_s8(const float *W, int N, int K, int8_t *Wq, float *sw);
/* The row's scale, zero point and levels (q[k] = clamp(rint(x[k]·(1/scale)) + zp, 0, 255)). */
void dbt_quantize_row_u8(const float *x, int K, uint8_t *q, float *scale, int32_t *zp);
/* Packs quantized weights (copied). NULL when out of memory or K > 32768 (int32 headroom). */
dbt_int8_weights *dbt_int8_pack(const int8_t *Wq, const float *sw, int N, int K);
void dbt_int8_free(dbt_int8_weights *w);
void dbt_linear_int8(const float *x, int M, int K, const dbt_int8_weights *W, const float *b, int N, int act,
                     float *y);
const char *dbt_gemm_int8_kernel_name(void);
int dbt_gemm_int8_use_kernel(const char *name);

/* y = LayerNorm(x + residual) over rows of n (residual may be NULL); y may alias x. Vectorized
 * and split by rows across the pool (layernorm.c). */
void dbt_layernorm_forward(const float *x, const float *residual, int rows, int n, const float *gamma,
                           const float *beta, float eps, float *y);

/* In place: x = act(x). */
void dbt_activation_forward(dbt_activation act, float *x, int64_t n);

/* Vectorized (vmath.c), on the instruction set of the GEMM kernel in use. In place:
 * x = x·Φ(x), the exact GELU to within 1e-7·|x| (scalar path: erff); a softmax of one row. */
void dbt_gelu_forward(float *x, int64_t n);
void dbt_softmax_row(float *x, int n);

/* Multi-head self-attention of a packed batch (attention.c): sequence s owns rows
 * [row_start[s], row_start[s+1]) of q, k, v and ctx (row stride ld; head h at columns
 * [h·head_dim, (h+1)·head_dim)); ctx = softmax(QKᵀ/√head_dim)·V per sequence and head.
 * Runs on up to n_workers pool threads; scratch holds dbt_attention_scratch_floats(longest
 * sequence, n_workers) floats, 64-byte aligned. */
size_t dbt_attention_scratch_floats(int max_len, int n_workers);
void dbt_attention_forward(int n_seqs, const int32_t *row_start, int n_heads, int head_dim, const float *q,
                           const float *k, const float *v, int ld, float *ctx, float *scratch, int n_workers);

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
/* Vectorized (vmath.c), on the GEMM kernel's instruction set: dx = dy·GELU'(pre) (dx may alias
 * dy), within ~1e-7 of the erf formula's derivative (scalar path: that formula). */
void dbt_gelu_backward(const float *pre, const float *dy, float *dx, int64_t n);
/* Dropout with a mask that is a function of (key, element index): y[i] = x[i]·(1/(1−p)), or 0
 * for the dropped elements (probability p), where element i has index base + i (mod 2³²). Every
 * instruction set draws the same mask; the backward pass is the same call on the gradient. y may
 * alias x. */
void dbt_dropout(uint64_t key, float p, int64_t base, const float *x, float *y, int64_t n);
/* The same mask applied to two arrays in one pass: y = x·mask, y2 = x2·mask (x2 may be NULL). */
void dbt_dropout2(uint64_t key, float p, int64_t base, const float *x, float *y, const float *x2, float *y2,
                  int64_t n);
/* Row kernels of the above (vmath.c; vectorized on AVX-512): one row of n of the training
 * LayerNorm forward (y may alias x) and backward (dx may alias dy; dγ, dβ added to when dgamma
 * is not NULL, dbeta then too), and of the softmax backward (in place). */
void dbt_layernorm_train_row(const float *x, const float *residual, int n, const float *gamma, const float *beta,
                             float eps, float *y, float *xhat, float *rstd);
void dbt_layernorm_backward_row(const float *dy, const float *xhat, float rstd, const float *gamma, int n, float *dx,
                                float *dgamma, float *dbeta);
void dbt_softmax_backward_row(const float *p, float *dy, int n);
/* y += x, element-wise (the same sums on every path). */
void dbt_vec_add(float *y, const float *x, int64_t n);
/* db[j] += Σ_i dy[i·N + j] over M rows (each column summed in row order, on every path). */
void dbt_col_sum_add(float *db, const float *dy, int M, int N);

#endif
