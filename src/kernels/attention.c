/* attention.c — multi-head self-attention of a packed batch: for each sequence s and head h,
 *   ctx_h = softmax(scale · Q_h K_hᵀ) V_h      over the rows of s only (no padding, no mask).
 *
 * Work is split over the thread pool by (sequence, head, block of query rows): each unit is
 * small (T×T×64 multiply-adds twice) and independent, so every worker runs its units' GEMMs
 * inline on one core (threadpool.h: dbt_pool_in_task) instead of splitting each tiny product
 * across cores as one threaded GEMM per head would, with a pool wake-up per product.
 *
 * A unit computes its block of scores (rows × T) with the scale in the GEMM's epilogue, takes
 * the softmax of each row while the block is in L1/L2, and multiplies it by V_h (read in place).
 * Scores live in the worker's own block of the scratch buffer: at most BLOCK_FLOATS per worker,
 * never a whole T×T matrix for long sequences.
 *
 * Units are handed out through an atomic counter (the pool's parts cost unequal time on
 * sequences of unequal length, and a core shared with other processes can be late); which
 * worker computes a unit never changes how it is computed, so results depend neither on the
 * thread count nor on which other sequences share the batch. */
#include <math.h>
#include <stdatomic.h>

#include "kernels.h"
#include "threadpool.h"

/* At most this many scores per worker (256 kB): a block of query rows × T stays in L2. */
#define BLOCK_FLOATS (64 * 1024)
/* Below this many multiply-adds over the whole batch attention runs on the calling thread:
 * about 20 µs of work, where waking the pool would cost a fair part of it. */
#define MIN_PARALLEL_MACS (512 * 1024)

/* Query rows per unit for a sequence of T tokens: all of them up to T = 256, then blocks. */
static int block_rows(int T) {
    int rb = BLOCK_FLOATS / T;
    if (rb < 16) rb = 16;
    return rb < T ? rb : T;
}

size_t dbt_attention_scratch_floats(int max_len, int n_workers) {
    if (max_len < 1) max_len = 1;
    if (n_workers < 1) n_workers = 1;
    /* each worker's block rounded up to whole cache lines, so that workers never share a line */
    const size_t per = ((size_t)block_rows(max_len) * max_len + 15) / 16 * 16;
    return per * (size_t)n_workers;
}

typedef struct {
    int n_seqs, n_heads, dh, ld;
    const int32_t *row_start;
    const float *q, *k, *v;
    float *ctx, *scratch;
    size_t per_worker;
    float scale;
    atomic_int next;
} att_job;

static int units_of(const att_job *j, int s) {
    const int T = j->row_start[s + 1] - j->row_start[s];
    return T > 0 ? j->n_heads * ((T + block_rows(T) - 1) / block_rows(T)) : 0;
}

static void att_part(void *arg, int t, int nt) {
    (void)nt;
    att_job *j = arg;
    float *S = j->scratch + j->per_worker * (size_t)t;
    /* Claimed units only increase, so the sequence they fall in is found by walking forward. */
    int s = 0, base = 0;
    for (;;) {
        const int u = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        while (s < j->n_seqs && u >= base + units_of(j, s)) base += units_of(j, s++);
        if (s == j->n_seqs) break;
        const int64_t r0 = j->row_start[s];
        const int T = j->row_start[s + 1] - j->row_start[s], rb = block_rows(T);
        const int nb = (T + rb - 1) / rb, h = (u - base) / nb, i0 = (u - base) % nb * rb;
        const int rows = T - i0 < rb ? T - i0 : rb;
        const int64_t col = (int64_t)h * j->dh;
        const float *qh = j->q + (r0 + i0) * j->ld + col, *kh = j->k + r0 * j->ld + col,
                    *vh = j->v + r0 * j->ld + col;
        dbt_sgemm_nt(rows, T, j->dh, j->scale, qh, j->ld, kh, j->ld, 0.0f, S, T);
        for (int i = 0; i < rows; i++) dbt_softmax_row(S + (int64_t)i * T, T);
        dbt_sgemm_nn(rows, j->dh, T, 1.0f, S, T, vh, j->ld, 0.0f, j->ctx + (r0 + i0) * j->ld + col, j->ld);
    }
}

void dbt_attention_forward(int n_seqs, const int32_t *row_start, int n_heads, int head_dim, const float *q,
                           const float *k, const float *v, int ld, float *ctx, float *scratch, int n_workers) {
    att_job j = {.n_seqs = n_seqs, .n_heads = n_heads, .dh = head_dim, .ld = ld, .row_start = row_start,
                 .q = q, .k = k, .v = v, .ctx = ctx, .scratch = scratch,
                 .scale = 1.0f / sqrtf((float)head_dim)};
    int max_len = 1, units = 0;
    double macs = 0;
    for (int s = 0; s < n_seqs; s++) {
        const int T = row_start[s + 1] - row_start[s];
        if (T > max_len) max_len = T;
        units += units_of(&j, s);
        macs += 2.0 * n_heads * T * T * head_dim;
    }
    if (units == 0) return;
    j.per_worker = dbt_attention_scratch_floats(max_len, 1);
    atomic_init(&j.next, 0);
    int nt = n_workers < dbt_pool_threads() ? n_workers : dbt_pool_threads();
    if (macs < MIN_PARALLEL_MACS || nt < 1) nt = 1;
    if (nt > units) nt = units;
    dbt_pool_run(att_part, &j, nt);
}
