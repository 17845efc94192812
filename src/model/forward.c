/* forward.c — the encoder and its heads, fp32, on a packed batch.
 *
 * Sequences are laid row after row with no padding (sequence i owns rows row_start[i] ..
 * row_start[i+1]-1), so every Linear runs once over all real tokens and attention runs per
 * sequence over exactly its own tokens: no mask is needed and no work is spent on padding.
 *
 * Activations live in the model's arena (m->arena), sized from the config and the batch and
 * grown only when a bigger batch comes, so a steady stream of batches allocates nothing but
 * the outputs it returns. A call that finds the arena in use by a concurrent call on the same
 * model allocates its own block instead (so dbt_model_forward stays reentrant):
 *   x     R×D   the residual stream; ends as the last hidden state (copied to out->hidden)
 *   q,k,v R×D   attention projections
 *   ctx   R×D   attention output before out_lin
 *   tmp   R×D   a Linear's output before the residual LayerNorm
 *   ffn   R×H   the feed-forward hidden layer
 *   att         one block of scores per attention worker (attention.c)
 *
 * A model loaded for inference (dbt_model_load) also packs its Linear weights into the GEMM's
 * layout at its first forward pass and keeps them (gemm.c, dbt_packed_set): at small batches
 * packing W on every call was most of the time. A model loaded for training never does, its
 * weights change at every step.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../common/error.h"
#include "../kernels/kernels.h"
#include "model_internal.h"

/* The thread count: set explicitly, or the number of online CPUs on first use. The lock makes
 * the lazy default and a concurrent dbt_set_num_threads agree on one value (and on the pool's). */
static pthread_mutex_t g_threads_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_threads;

void dbt_set_num_threads(int n) {
    if (n < 1) n = 1;
    pthread_mutex_lock(&g_threads_lock);
    dbt_gemm_set_threads(n);
    atomic_store(&g_threads, n);
    pthread_mutex_unlock(&g_threads_lock);
}

int dbt_get_num_threads(void) {
    int n = atomic_load(&g_threads);
    if (n) return n;
    pthread_mutex_lock(&g_threads_lock);
    if (!(n = atomic_load(&g_threads))) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
        dbt_gemm_set_threads(n);
        atomic_store(&g_threads, n);
    }
    pthread_mutex_unlock(&g_threads_lock);
    return n;
}

/* x[rows] = word[id] + pos[position] (+ type[type id]), then LayerNorm. */
static int embed(const dbt_model *m, const dbt_encoding *encs, int n, const int32_t *row_start, float *x) {
    const dbt_config *c = &m->cfg;
    const dbt_weights *w = &m->w;
    const int D = c->dim;
    for (int s = 0; s < n; s++) {
        const dbt_encoding *e = &encs[s];
        for (int t = 0; t < e->n; t++) {
            int32_t id = e->ids[t], ty = e->type_ids ? e->type_ids[t] : 0;
            if (id < 0 || id >= c->vocab_size)
                return dbt_set_error("token id %d is outside the model's vocabulary (%d)", id, c->vocab_size);
            if (w->type_emb && (ty < 0 || ty >= c->type_vocab_size))
                return dbt_set_error("token type id %d is outside [0, %d)", ty, c->type_vocab_size);
            float *xr = x + (int64_t)(row_start[s] + t) * D;
            const float *we = w->word_emb + (int64_t)id * D, *pe = w->pos_emb + (int64_t)t * D;
            for (int i = 0; i < D; i++) xr[i] = we[i] + pe[i];
            if (w->type_emb) {
                const float *te = w->type_emb + (int64_t)ty * D;
                for (int i = 0; i < D; i++) xr[i] += te[i];
            }
        }
    }
    int32_t R = row_start[n];
    dbt_layernorm_forward(x, NULL, R, D, w->ln_emb.gamma, w->ln_emb.beta, c->layer_norm_eps, x);
    return 0;
}

/* Multi-head self-attention of each sequence over its own rows: ctx = softmax(QKᵀ/√d)V, on the
 * thread pool by (sequence, head) (attention.c); att holds n_workers blocks of scores. */
static void attention(const dbt_config *c, int n, const int32_t *row_start, const float *q, const float *k,
                      const float *v, float *ctx, float *att, int n_workers) {
    dbt_attention_forward(n, row_start, c->n_heads, c->dim / c->n_heads, q, k, v, c->dim, ctx, att, n_workers);
}

static void layer_forward(const dbt_config *c, const dbt_layer *L, int n, const int32_t *row_start, float *x,
                          float *q, float *k, float *v, float *ctx, float *tmp, float *ffn, float *att,
                          int n_workers) {
    const int D = c->dim;
    const int R = row_start[n];
    dbt_linear_apply(&L->q, x, R, DBT_GEMM_NO_ACT, q);
    dbt_linear_apply(&L->k, x, R, DBT_GEMM_NO_ACT, k);
    dbt_linear_apply(&L->v, x, R, DBT_GEMM_NO_ACT, v);
    attention(c, n, row_start, q, k, v, ctx, att, n_workers);
    dbt_linear_apply(&L->o, ctx, R, DBT_GEMM_NO_ACT, tmp);
    dbt_layernorm_forward(tmp, x, R, D, L->ln_attn.gamma, L->ln_attn.beta, c->layer_norm_eps, x);
    /* bias and activation applied as each tile of the product is produced (same bits as apart) */
    dbt_linear_apply(&L->ff1, x, R, (int)c->activation, ffn);
    dbt_linear_apply(&L->ff2, ffn, R, DBT_GEMM_NO_ACT, tmp);
    dbt_layernorm_forward(tmp, x, R, D, L->ln_ffn.gamma, L->ln_ffn.beta, c->layer_norm_eps, x);
}

/* MLM logits for the selected rows: decoder(LayerNorm(act(transform(h)))) + bias, into logits
 * (R × V, zeroed). sel and t are R×D scratch. With a selection, the decoder writes the n_sel
 * logit rows packed together at the end of `logits` and each is then moved up to its row: no
 * buffer of n_sel × V (94 MB at 1 k rows of bert-base) is needed. */
static void mlm_head(const dbt_model *m, const float *hidden, int32_t R, const uint8_t *rows, float *logits,
                     float *sel, float *t) {
    const dbt_config *c = &m->cfg;
    const dbt_weights *w = &m->w;
    const int D = c->dim, V = c->vocab_size;
    int32_t n_sel = 0;
    for (int32_t r = 0; r < R; r++) n_sel += !rows || rows[r];
    if (n_sel == 0) return;
    const float *src = hidden;
    if (rows) {
        for (int32_t r = 0, i = 0; r < R; r++)
            if (rows[r]) memcpy(sel + (int64_t)i++ * D, hidden + (int64_t)r * D, (size_t)D * sizeof *sel);
        src = sel;
    }
    dbt_linear_forward(src, n_sel, D, w->mlm_transform.w, w->mlm_transform.b, D, t);
    dbt_activation_forward(c->activation, t, (int64_t)n_sel * D);
    dbt_layernorm_forward(t, NULL, n_sel, D, w->mlm_ln.gamma, w->mlm_ln.beta, c->layer_norm_eps, t);
    float *packed = logits + (int64_t)(R - n_sel) * V;
    dbt_linear_forward(t, n_sel, D, w->mlm_decoder, w->mlm_bias, V, packed);
    if (!rows) return;
    /* The i-th selected row r_i satisfies i ≤ r_i ≤ R − n_sel + i: moving in increasing i never
     * overwrites a packed row not yet moved. Then the unselected rows of the tail are cleared. */
    for (int32_t r = 0, i = 0; r < R; r++)
        if (rows[r]) {
            if (r != R - n_sel + i)
                memmove(logits + (int64_t)r * V, packed + (int64_t)i * V, (size_t)V * sizeof *logits);
            i++;
        }
    for (int32_t r = R - n_sel; r < R; r++)
        if (!rows[r]) memset(logits + (int64_t)r * V, 0, (size_t)V * sizeof *logits);
}

/* ---- the model's reusable state ------------------------------------------------------------ */

static float *alloc_floats(size_t n) {
    return aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
}

/* `floats` of 64-byte aligned scratch: the model's arena when no other call holds it (grown if
 * too small), else a block of the caller's own (*own, freed by arena_release). */
static float *arena_acquire(dbt_model *m, size_t floats, float **own) {
    *own = NULL;
    if (atomic_exchange_explicit(&m->arena_busy, 1, memory_order_acquire)) return *own = alloc_floats(floats);
    if (floats > m->arena_cap) {
        free(m->arena);
        /* a quarter more than asked: batches of slowly growing size do not regrow every time */
        const size_t cap = floats + floats / 4;
        m->arena = alloc_floats(cap);
        m->arena_cap = m->arena ? cap : 0;
        if (!m->arena) { atomic_store_explicit(&m->arena_busy, 0, memory_order_release); return NULL; }
    }
    return m->arena;
}

static void arena_release(dbt_model *m, float *own) {
    if (own) free(own);
    else atomic_store_explicit(&m->arena_busy, 0, memory_order_release);
}

/* The packed copy of w (bytes long) replaces it in every product: when w lies in a file mapping
 * (read-only, so nothing can be lost), its whole pages are handed back to the OS. The resident
 * size then grows by the packing's padding only, not by a second copy of the weights; a later
 * read of w (another kernel forced) faults the pages in again from the file. */
static void release_original(const dbt_model *m, const float *w, size_t bytes) {
#ifdef MADV_DONTNEED
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = (uintptr_t)w, hi = lo + bytes;
    for (int f = 0; f < m->st.n_files; f++) {
        const uintptr_t map = (uintptr_t)m->st.files[f].map, end = map + m->st.files[f].map_len;
        if (lo < map || hi > end) continue;
        const uintptr_t a = (lo + page - 1) & ~(page - 1), b = hi & ~(page - 1);
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
    }
#else
    (void)m, (void)w, (void)bytes;
#endif
}

/* Packs the Linear weights of a model loaded for inference, once (the caller holds the arena,
 * so one call does it). DBT_PREPACK=0 turns it off (benchmarks; the bits are the same). A
 * failure to allocate only means running without: no error. */
static void prepack(dbt_model *m) {
    static atomic_int enabled = -1; /* read once per process */
    if (atomic_load_explicit(&enabled, memory_order_relaxed) < 0) {
        const char *e = getenv("DBT_PREPACK");
        atomic_store_explicit(&enabled, !(e && !strcmp(e, "0")), memory_order_relaxed);
    }
    if (!m->frozen || !atomic_load_explicit(&enabled, memory_order_relaxed) || atomic_load_explicit(&m->packed, memory_order_acquire)) return;
    const dbt_config *c = &m->cfg;
    const dbt_weights *w = &m->w;
    const int cap = 6 * c->n_layers + 6;
    const float **W = malloc((size_t)cap * sizeof *W);
    int *N = malloc((size_t)cap * sizeof *N), *K = malloc((size_t)cap * sizeof *K), n = 0;
    if (W && N && K) {
/* a Linear set to bf16 or int8 (linear.c) reads its own packed form, not w */
#define ADD(lin) \
    if ((lin).w && (lin).dtype == DBT_DTYPE_FP32) W[n] = (lin).w, N[n] = (lin).n_out, K[n] = (lin).n_in, n++;
        for (int l = 0; l < c->n_layers; l++) {
            const dbt_layer *L = &w->layers[l];
            ADD(L->q) ADD(L->k) ADD(L->v) ADD(L->o) ADD(L->ff1) ADD(L->ff2)
        }
        ADD(w->pooler) ADD(w->mlm_transform) ADD(w->pre_classifier) ADD(w->classifier) ADD(w->qa)
#undef ADD
        const int n_linear = n; /* the decoder, when tied, is also the embedding table: kept */
        if (w->mlm_decoder) W[n] = w->mlm_decoder, N[n] = c->vocab_size, K[n] = c->dim, n++;
        dbt_packed_set *set = dbt_packed_set_new(W, N, K, n);
        atomic_store_explicit(&m->packed, set, memory_order_release);
        for (int i = 0; set && i < n; i++)
            if (i < n_linear || w->mlm_decoder != w->word_emb)
                release_original(m, W[i], (size_t)N[i] * K[i] * sizeof(float));
    }
    free(W);
    free(N);
    free(K);
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

int dbt_model_forward(dbt_model *m, const dbt_encoding *encs, int n, const dbt_forward_opts *opts,
                      dbt_output *out) {
    memset(out, 0, sizeof *out);
    dbt_forward_opts o = {1, NULL};
    if (opts) o = *opts;
    const dbt_config *c = &m->cfg;
    const dbt_weights *w = &m->w;
    const int D = c->dim, H = c->hidden_dim;
    const int n_workers = dbt_get_num_threads(); /* also applies the default thread count once */
    if (n <= 0) return dbt_set_error("the batch is empty");

    out->n_seqs = n;
    out->dim = D;
    out->row_start = malloc(((size_t)n + 1) * sizeof *out->row_start);
    if (!out->row_start) return dbt_set_error("out of memory");
    int32_t R = 0, T = 0;
    for (int s = 0; s < n; s++) {
        if (encs[s].n < 1) { dbt_output_free(out); return dbt_set_error("sequence %d is empty", s); }
        if (encs[s].n > c->max_position_embeddings) {
            dbt_output_free(out);
            return dbt_set_error("sequence %d has %d tokens; the model takes at most %d (truncate it)", s,
                                 encs[s].n, c->max_position_embeddings);
        }
        out->row_start[s] = R;
        R += encs[s].n;
        if (encs[s].n > T) T = encs[s].n;
    }
    out->row_start[n] = R;
    out->n_rows = R;

    const size_t RD = round16((size_t)R * D), RH = round16((size_t)R * H);
    float *own, *block = arena_acquire(m, 5 * RD + RH + dbt_attention_scratch_floats(T, n_workers), &own);
    out->hidden = malloc((size_t)R * D * sizeof *out->hidden);
    if (!block || !out->hidden) {
        if (block) arena_release(m, own);
        dbt_output_free(out);
        return dbt_set_error("out of memory");
    }
    if (!own) prepack(m);
    const dbt_packed_set *outer_scope = dbt_packed_set_scope(atomic_load_explicit(&m->packed, memory_order_acquire));
    float *x = out->hidden, *q = block, *k = q + RD, *v = k + RD, *ctx = v + RD, *tmp = ctx + RD, *ffn = tmp + RD,
          *att = ffn + RH;

    int rc = embed(m, encs, n, out->row_start, x);
    for (int l = 0; l < c->n_layers && !rc; l++)
        layer_forward(c, &w->layers[l], n, out->row_start, x, q, k, v, ctx, tmp, ffn, att, n_workers);

    /* The first token ([CLS]) of each sequence feeds the pooler and sequence classification. */
    float *cls = tmp;
    if (!rc)
        for (int s = 0; s < n; s++)
            memcpy(cls + (int64_t)s * D, x + (int64_t)out->row_start[s] * D, (size_t)D * sizeof *cls);
    if (!rc && w->pooler.w) {
        out->pooled = malloc((size_t)n * D * sizeof *out->pooled);
        if (!out->pooled) rc = dbt_set_error("out of memory");
        else {
            dbt_linear_forward(cls, n, D, w->pooler.w, w->pooler.b, D, out->pooled);
            dbt_activation_forward(DBT_ACT_TANH, out->pooled, (int64_t)n * D);
        }
    }

    dbt_head head = m->info.head;
    if (!rc && o.head_logits && head != DBT_HEAD_NONE) {
        int cols = head == DBT_HEAD_MLM ? c->vocab_size : head == DBT_HEAD_QA ? 2 : c->n_labels;
        int64_t rows = head == DBT_HEAD_SEQ_CLS ? n : R;
        out->logits_cols = cols;
        out->logits = calloc((size_t)rows * (size_t)cols, sizeof *out->logits);
        if (!out->logits) rc = dbt_set_error("out of memory");
        else switch (head) {
        case DBT_HEAD_MLM: /* q and k are free by now: the gathered rows and the transform */
            mlm_head(m, x, R, o.mlm_rows, out->logits, q, k);
            break;
        case DBT_HEAD_SEQ_CLS:
            if (c->arch == DBT_ARCH_DISTILBERT) { /* pre_classifier → ReLU → classifier on [CLS] */
                dbt_linear_forward(cls, n, D, w->pre_classifier.w, w->pre_classifier.b, D, q);
                dbt_activation_forward(DBT_ACT_RELU, q, (int64_t)n * D);
                dbt_linear_forward(q, n, D, w->classifier.w, w->classifier.b, cols, out->logits);
            } else { /* BERT: classifier on the pooled output */
                dbt_linear_forward(out->pooled, n, D, w->classifier.w, w->classifier.b, cols, out->logits);
            }
            break;
        case DBT_HEAD_TOKEN_CLS:
            dbt_linear_forward(x, R, D, w->classifier.w, w->classifier.b, cols, out->logits);
            break;
        case DBT_HEAD_QA:
            dbt_linear_forward(x, R, D, w->qa.w, w->qa.b, 2, out->logits);
            break;
        default:
            break;
        }
    }
    dbt_packed_set_scope(outer_scope);
    arena_release(m, own);
    if (rc) dbt_output_free(out);
    return rc;
}

void dbt_output_free(dbt_output *out) {
    free(out->row_start);
    free(out->hidden);
    free(out->pooled);
    free(out->logits);
    memset(out, 0, sizeof *out);
}
