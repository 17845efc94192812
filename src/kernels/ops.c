/* ops.c — element-wise and row-wise ops: activations, softmax, the training LayerNorm. Sums are
 * taken in double where a row's statistics are formed, so results do not drift with the row length. */
#include <math.h>
#include <stdlib.h>

#include "kernels.h"
#include "threadpool.h"

/* dbt_layernorm_forward (inference, vectorized and threaded) is in layernorm.c. */

void dbt_activation_forward(dbt_activation act, float *x, int64_t n) {
    switch (act) {
    case DBT_ACT_GELU: /* vectorized (vmath.c): erff per element is most of a forward's non-GEMM time */
        dbt_gelu_forward(x, n);
        break;
    case DBT_ACT_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case DBT_ACT_GELU_TANH: /* 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        }
        break;
    case DBT_ACT_GELU_FAST: /* 0.5·x·(1 + tanh(x·0.7978845608·(1 + 0.044715·x²))) */
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(v * 0.7978845608f * (1.0f + 0.044715f * v * v)));
        }
        break;
    case DBT_ACT_QUICK_GELU: /* x·σ(1.702·x) */
        for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
        break;
    case DBT_ACT_SILU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    case DBT_ACT_TANH:
        for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        break;
    }
}

void dbt_softmax_rows(float *x, int rows, int n, int valid) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (int64_t)r * n;
        dbt_softmax_row(xr, valid); /* vectorized (vmath.c) */
        for (int i = valid; i < n; i++) xr[i] = 0;
    }
}

/* ---- training: forward variants that keep what backward needs, and the backward passes ---- */

/* The training ops run on the pool, split in fixed blocks (of rows, or of elements) that do not
 * depend on the thread count: each block's arithmetic is the same whichever thread runs it, so
 * results are identical with 1 or N threads (and inside a pool task, where the pool runs every
 * part in the calling thread). */
#define ROW_BLOCK 32           /* LayerNorm: rows per block */
#define ELEM_BLOCK (1 << 15)   /* element-wise ops: elements per block */

typedef void (*block_fn)(void *ctx, int64_t b);
typedef struct {
    block_fn fn;
    void *ctx;
    int64_t n_blocks;
} blocks_job;

static void blocks_part(void *arg, int t, int n) {
    const blocks_job *j = arg;
    for (int64_t b = t; b < j->n_blocks; b += n) j->fn(j->ctx, b);
}

/* fn(ctx, b) for b in [0, n_blocks), on the pool (blocks dealt round-robin). */
static void run_blocks(block_fn fn, void *ctx, int64_t n_blocks) {
    if (n_blocks <= 1 || dbt_pool_threads() == 1) {
        for (int64_t b = 0; b < n_blocks; b++) fn(ctx, b);
        return;
    }
    blocks_job j = {fn, ctx, n_blocks};
    dbt_pool_run(blocks_part, &j, (int)(n_blocks < dbt_pool_threads() ? n_blocks : dbt_pool_threads()));
}

typedef struct {
    const float *x, *residual, *gamma, *beta, *dy, *xhat, *rstd_in;
    float *y, *xhat_out, *rstd, *dx, *partial;
    int rows, n;
    float eps;
} ln_job;

static void ln_forward_block(void *arg, int64_t blk) {
    const ln_job *j = arg;
    const int n = j->n, r1 = (int)((blk + 1) * ROW_BLOCK < j->rows ? (blk + 1) * ROW_BLOCK : j->rows);
    for (int r = (int)blk * ROW_BLOCK; r < r1; r++)
        dbt_layernorm_train_row(j->x + (int64_t)r * n, j->residual ? j->residual + (int64_t)r * n : NULL, n, j->gamma,
                                j->beta, j->eps, j->y + (int64_t)r * n, j->xhat_out + (int64_t)r * n, &j->rstd[r]);
}

void dbt_layernorm_forward_train(const float *x, const float *residual, int rows, int n, const float *gamma,
                                 const float *beta, float eps, float *y, float *xhat, float *rstd) {
    ln_job j = {.x = x, .residual = residual, .gamma = gamma, .beta = beta, .y = y, .xhat_out = xhat,
                .rstd = rstd, .rows = rows, .n = n, .eps = eps};
    run_blocks(ln_forward_block, &j, (rows + ROW_BLOCK - 1) / ROW_BLOCK);
}

/* One block of rows: dx, and the block's own Σ dy·x̂ and Σ dy in partial[blk] (2n floats). */
static void ln_backward_block(void *arg, int64_t blk) {
    const ln_job *j = arg;
    const int n = j->n, r1 = (int)((blk + 1) * ROW_BLOCK < j->rows ? (blk + 1) * ROW_BLOCK : j->rows);
    float *pg = j->partial ? j->partial + blk * 2 * n : NULL, *pb = pg ? pg + n : NULL;
    if (pg)
        for (int i = 0; i < 2 * n; i++) pg[i] = 0;
    for (int r = (int)blk * ROW_BLOCK; r < r1; r++)
        dbt_layernorm_backward_row(j->dy + (int64_t)r * n, j->xhat + (int64_t)r * n, j->rstd_in[r], j->gamma, n,
                                   j->dx + (int64_t)r * n, pg, pb);
}

/* y = γ·x̂ + β with x̂ = (x − μ)·rstd. Then dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) where g = dy·γ;
 * dγ += Σ dy·x̂, dβ += Σ dy (summed per block of rows, then the blocks in order). dx is written
 * (not accumulated); it may alias dy. */
void dbt_layernorm_backward(const float *dy, const float *xhat, const float *rstd, const float *gamma, int rows,
                            int n, float *dx, float *dgamma, float *dbeta) {
    const int64_t n_blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
    /* per-block partial sums: a buffer kept per thread, grown as needed */
    static _Thread_local float *partial;
    static _Thread_local int64_t cap;
    float *part = NULL;
    if (dgamma || dbeta) {
        if (cap < n_blocks * 2 * n) {
            free(partial);
            cap = n_blocks * 2 * n;
            partial = malloc((size_t)cap * sizeof *partial);
            if (!partial) cap = 0;
        }
        part = partial;
    }
    ln_job j = {.dy = dy, .xhat = xhat, .rstd_in = rstd, .gamma = gamma, .dx = dx, .partial = part, .rows = rows,
                .n = n};
    run_blocks(ln_backward_block, &j, n_blocks);
    if (part) {
        for (int64_t b = 0; b < n_blocks; b++)
            for (int i = 0; i < n; i++) {
                if (dgamma) dgamma[i] += part[b * 2 * n + i];
                if (dbeta) dbeta[i] += part[b * 2 * n + n + i];
            }
    } else if (dgamma || dbeta) { /* out of memory for the partial sums: one pass, serially */
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < n; i++) {
                const float d = dy[(int64_t)r * n + i];
                if (dgamma) dgamma[i] += d * xhat[(int64_t)r * n + i];
                if (dbeta) dbeta[i] += d;
            }
    }
}

static void activation_backward_serial(dbt_activation act, const float *pre, const float *dy, float *dx, int64_t n) {
    if (act == DBT_ACT_GELU) { /* vectorized (vmath.c): erff + expf per element dominated the backward's non-GEMM time */
        dbt_gelu_backward(pre, dy, dx, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float x = pre[i], d;
        switch (act) {
        case DBT_ACT_RELU: d = x > 0 ? 1.0f : 0.0f; break;
        case DBT_ACT_GELU_TANH:
        case DBT_ACT_GELU_FAST: {
            const float c = 0.7978845608028654f;
            float u = c * (x + 0.044715f * x * x * x), t = tanhf(u);
            d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);
            break;
        }
        case DBT_ACT_QUICK_GELU: {
            float s = 1.0f / (1.0f + expf(-1.702f * x));
            d = s + x * 1.702f * s * (1.0f - s);
            break;
        }
        case DBT_ACT_SILU: {
            float s = 1.0f / (1.0f + expf(-x));
            d = s * (1.0f + x * (1.0f - s));
            break;
        }
        case DBT_ACT_TANH: {
            float t = tanhf(x);
            d = 1.0f - t * t;
            break;
        }
        default: d = 1.0f;
        }
        dx[i] = dy[i] * d;
    }
}

typedef struct {
    dbt_activation act;
    const float *pre, *dy;
    float *dx;
    int64_t n;
} act_job;

static void act_backward_block(void *arg, int64_t b) {
    const act_job *j = arg;
    const int64_t i0 = b * ELEM_BLOCK, m = j->n - i0 < ELEM_BLOCK ? j->n - i0 : ELEM_BLOCK;
    activation_backward_serial(j->act, j->pre + i0, j->dy + i0, j->dx + i0, m);
}

/* dx = dy · act'(pre) (written; dx may alias dy), for the activations of the forward pass. */
void dbt_activation_backward(dbt_activation act, const float *pre, const float *dy, float *dx, int64_t n) {
    act_job j = {act, pre, dy, dx, n};
    run_blocks(act_backward_block, &j, (n + ELEM_BLOCK - 1) / ELEM_BLOCK);
}

/* Softmax rows p; dx = p·(dy − Σ dy·p), written in place of dy. */
void dbt_softmax_backward_rows(const float *p, float *dy, int rows, int n) {
    for (int r = 0; r < rows; r++) dbt_softmax_backward_row(p + (int64_t)r * n, dy + (int64_t)r * n, n);
}

/* Linear backward for y = x·Wᵀ + b: dx = dy·W (added to dx when accumulate, else written; skipped
 * when dx is NULL), dW += dyᵀ·x, db += Σ_rows dy. */
void dbt_linear_backward(const float *x, const float *dy, int M, int K, int N, const float *W, float *dx,
                         int accumulate, float *dW, float *db) {
    if (dx) dbt_sgemm_nn(M, K, N, 1.0f, dy, N, W, K, accumulate ? 1.0f : 0.0f, dx, K);
    if (dW) dbt_sgemm_tn(N, K, M, 1.0f, dy, N, x, K, 1.0f, dW, K);
    if (db) dbt_col_sum_add(db, dy, M, N);
}
