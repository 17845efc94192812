/* backprop.c — forward with caches and backward, layer by layer, side by side.
 *
 * Where dropout sits follows transformers exactly:
 *   both:        embeddings → LayerNorm → dropout; attention probabilities → dropout;
 *                FFN: lin1 → act → lin2 → dropout → LayerNorm(+x)
 *   BERT only:   attention output dense → dropout → LayerNorm(+x)
 *   heads:       DistilBERT seq-cls: pre_classifier → ReLU → dropout(seq_classif_dropout) → classifier
 *                BERT seq-cls: pooler(tanh) → dropout(classifier_dropout) → classifier
 *                token-cls: dropout → classifier; QA: DistilBERT dropout(qa_dropout), BERT none; MLM none
 * A dropout's mask is a hash of (key, element index) (dbt_dropout): only the key is kept, drawn
 * from the caller's generator (one draw per dropout), and backward regenerates the mask.
 *
 * The cache is a workspace kept across steps: the forward and backward passes ask for their
 * buffers in the same order every step, so after the first step nothing is allocated. Attention
 * runs per (sequence, head) on the pool's threads; the other element-wise and row-wise passes
 * split in fixed blocks — every result is the same for any thread count.
 */
#include "backprop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../kernels/kernels.h"
#include "../kernels/threadpool.h"

/* A dropout: the mask is a function of (key, element index) (dbt_dropout), so only the key is
 * kept and backward regenerates the mask. p == 0: none. */
typedef struct {
    uint64_t key;
    float p;
} drop_t;

typedef struct {
    const float *x_in;        /* R×D  layer input (the previous layer's output, not a copy) */
    /* The query side: every row (Rq = R, xq = x_in, q_start = row_start), or, in the last layer
     * of a sequence classifier, only the [CLS] rows (Rq = n, xq their copy, q_start[s] = s): the
     * logits depend on nothing else, so the rest of that layer (the other rows' queries,
     * attention output, FFN) need not run. Keys and values always cover every row. */
    int Rq;
    const float *xq;          /* Rq×D */
    const int32_t *q_start;   /* n+1: sequence s's query rows */
    const int64_t *att_off;   /* n: offset of sequence s's nh·Tq·T block of probs */
    float *q;                 /* Rq×D */
    float *k, *v;             /* R×D */
    float *probs;             /* Σ_s nh·T_s²: softmax output (before dropout) */
    drop_t att_drop;          /* dropout of the attention probabilities */
    float *ctx;               /* Rq×D */
    drop_t drop1;             /* BERT attention-output dropout */
    float *xhat1, *rstd1;     /* LayerNorm after attention */
    float *x1;                /* Rq×D */
    float *h_pre, *h_act;     /* Rq×H */
    drop_t drop2;             /* FFN-output dropout */
    float *xhat2, *rstd2;     /* LayerNorm after the FFN */
} layer_cache;

/* A float buffer the cache keeps between steps: slot k is the k-th buffer a pass asks for. The
 * passes ask for their buffers in the same order every step, so after the first step each slot
 * is large enough and a step allocates (and page-faults) nothing. */
typedef struct {
    float *p;
    int64_t cap;
} slot;

struct dbt_train_cache {
    int n;
    int32_t *row_start;
    int32_t R, Tmax;
    int64_t att_total;
    int64_t *att_off;         /* n: offset of sequence s's nh·T² block */
    int32_t *cls_start;       /* n+1: s (one query row per sequence: the [CLS]-only layer) */
    int64_t *cls_off;         /* n: offset of sequence s's nh·T block (the [CLS]-only layer) */
    int cls_only;             /* the last layer runs on the [CLS] rows only (SEQ_CLS) */
    int32_t *ids, *types, *pos;
    int cap_n, cap_R;         /* capacities of the int arrays above */
    float *xhat0, *rstd0;
    drop_t drop0;
    layer_cache *layers;
    int n_layers;
    float *hidden;            /* R×D */
    /* head */
    float *cls;               /* n×D: the first row of each sequence */
    float *pre, *head_in;     /* head intermediates (see dbt_train_forward) */
    drop_t head_drop;
    float *mlm_t_pre, *mlm_xhat, *mlm_rstd, *mlm_t; /* MLM transform */
    int32_t *mlm_rows;
    int32_t n_sel, cap_sel;
    float *logits;
    int logits_rows, logits_cols;
    slot *slots;
    int n_slots, next_slot;
    int fwd_slots;            /* slots the forward pass took; backward's come after */
    int failed;
};

static float *alloc_f(dbt_train_cache *c, int64_t n) {
    if (c->failed) return NULL;
    if (c->next_slot == c->n_slots) {
        slot *s = realloc(c->slots, ((size_t)c->n_slots + 16) * sizeof *s);
        if (!s) { c->failed = 1; return NULL; }
        memset(s + c->n_slots, 0, 16 * sizeof *s);
        c->slots = s;
        c->n_slots += 16;
    }
    slot *s = &c->slots[c->next_slot++];
    if (n < 1) n = 1;
    if (s->cap < n) {
        free(s->p);
        s->p = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) & ~(size_t)63);
        s->cap = s->p ? n : 0;
        if (!s->p) { c->failed = 1; return NULL; }
    }
    return s->p;
}

void dbt_train_cache_free(dbt_train_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n_slots; i++) free(c->slots[i].p);
    free(c->slots);
    free(c->layers);
    free(c->row_start);
    free(c->att_off);
    free(c->cls_start);
    free(c->cls_off);
    free(c->ids);
    free(c->types);
    free(c->pos);
    free(c->mlm_rows);
    free(c);
}

/* ---- element-wise passes on the pool ----------------------------------------------------- *
 * Blocks of EW_BLOCK elements dealt round-robin to the threads; an element's result does not
 * depend on its block (a dropout mask is a function of the element's index, GELU is computed
 * the same way wherever an element sits), so any thread count gives the same bits. */
#define EW_BLOCK (1 << 15)

typedef struct {
    int op;                   /* 0: dropout (key, p), 1: copy + activation in place */
    uint64_t key;
    float p;
    dbt_activation act;
    const float *x;
    float *y;
    int64_t n;
} ew_job;

static void ew_part(void *arg, int t, int nt) {
    const ew_job *j = arg;
    for (int64_t i0 = (int64_t)t * EW_BLOCK; i0 < j->n; i0 += (int64_t)nt * EW_BLOCK) {
        const int64_t m = j->n - i0 < EW_BLOCK ? j->n - i0 : EW_BLOCK;
        if (j->op == 0) {
            dbt_dropout(j->key, j->p, i0, j->x + i0, j->y + i0, m);
        } else {
            if (j->y != j->x) memcpy(j->y + i0, j->x + i0, (size_t)m * sizeof(float));
            dbt_activation_forward(j->act, j->y + i0, m);
        }
    }
}

static void ew_run(const ew_job *j) {
    const int64_t blocks = (j->n + EW_BLOCK - 1) / EW_BLOCK;
    const int nt = dbt_pool_threads();
    dbt_pool_run(ew_part, (void *)j, (int)(blocks < nt ? blocks : nt));
}

/* y = act(x) (y may alias x), split over the pool. */
static void activation(dbt_activation act, const float *x, float *y, int64_t n) {
    ew_job j = {.op = 1, .act = act, .x = x, .y = y, .n = n};
    ew_run(&j);
}

/* Applies a fresh dropout (key drawn from rng) to x in place; p == 0 in the result when none. */
static drop_t dropout(float *x, int64_t n, float p, int train, dbt_rng *rng) {
    drop_t d = {0, 0.0f};
    if (!train || p <= 0) return d;
    d.key = dbt_rng_next(rng);
    d.p = p;
    ew_job j = {.op = 0, .key = d.key, .p = p, .x = x, .y = x, .n = n};
    ew_run(&j);
    return d;
}

/* Backward of a dropout: the same mask on the gradient, from x to y (may alias). */
static void dropout_backward(const drop_t *d, const float *x, float *y, int64_t n) {
    if (d->p > 0) {
        ew_job j = {.op = 0, .key = d->key, .p = d->p, .x = x, .y = y, .n = n};
        ew_run(&j);
    } else if (x != y) {
        memcpy(y, x, (size_t)n * sizeof *y);
    }
}

/* ---- attention ------------------------------------------------------------------------- */

/* Per sequence and head (the pool's threads take (s, h) items in turn; each item's small GEMMs
 * run inline in its thread). scratch: 2·Tmax² floats per thread. */
typedef struct {
    const dbt_config *cf;
    const dbt_train_cache *c;
    const layer_cache *L;
    const float *dctx;
    float *dq, *dk, *dv;
    float *ctx_out, *probs_out;
    float *scratch;
    int64_t scratch_per;
} att_job;

static void attention_forward_part(void *arg, int t, int nt) {
    const att_job *j = arg;
    const dbt_config *cf = j->cf;
    const dbt_train_cache *c = j->c;
    const layer_cache *L = j->L;
    const int D = cf->dim, nh = cf->n_heads, dh = D / nh;
    const float scale = 1.0f / sqrtf((float)dh);
    float *Pd = j->scratch + (int64_t)t * j->scratch_per;
    for (int item = t; item < c->n * nh; item += nt) {
        const int s = item / nh, h = item % nh;
        const int64_t r0 = c->row_start[s], q0 = L->q_start[s];
        const int T = c->row_start[s + 1] - c->row_start[s], Tq = L->q_start[s + 1] - L->q_start[s];
        const int64_t off = L->att_off[s] + (int64_t)h * Tq * T;
        float *P = j->probs_out + off;
        dbt_sgemm_nt(Tq, T, dh, scale, L->q + q0 * D + h * dh, D, L->k + r0 * D + h * dh, D, 0.0f, P, T);
        dbt_softmax_rows(P, Tq, T, T);
        const float *use = P;
        if (L->att_drop.p > 0) {
            dbt_dropout(L->att_drop.key, L->att_drop.p, off, P, Pd, (int64_t)Tq * T);
            use = Pd;
        }
        dbt_sgemm_nn(Tq, dh, T, 1.0f, use, T, L->v + r0 * D + h * dh, D, 0.0f, j->ctx_out + q0 * D + h * dh, D);
    }
}

static void attention_forward(const dbt_config *cf, dbt_train_cache *c, layer_cache *L, float *scratch, int nt,
                              int train, dbt_rng *rng) {
    L->att_drop.p = 0;
    if (train && cf->attention_dropout > 0) {
        L->att_drop.key = dbt_rng_next(rng);
        L->att_drop.p = cf->attention_dropout;
    }
    att_job j = {cf, c, L, NULL, NULL, NULL, NULL, L->ctx, L->probs, scratch, 2 * (int64_t)c->Tmax * c->Tmax};
    dbt_pool_run(attention_forward_part, &j, nt);
}

/* dctx → dq, dk, dv (written). */
static void attention_backward_part(void *arg, int t, int nt) {
    const att_job *j = arg;
    const dbt_config *cf = j->cf;
    const dbt_train_cache *c = j->c;
    const layer_cache *L = j->L;
    const int D = cf->dim, nh = cf->n_heads, dh = D / nh;
    const float scale = 1.0f / sqrtf((float)dh);
    float *dP = j->scratch + (int64_t)t * j->scratch_per, *Pd = dP + (int64_t)c->Tmax * c->Tmax;
    for (int item = t; item < c->n * nh; item += nt) {
        const int s = item / nh, h = item % nh;
        const int64_t r0 = c->row_start[s], q0 = L->q_start[s];
        const int T = c->row_start[s + 1] - c->row_start[s], Tq = L->q_start[s + 1] - L->q_start[s];
        const int64_t off = L->att_off[s] + (int64_t)h * Tq * T;
        const float *P = L->probs + off, *use = P;
        const float *dC = j->dctx + q0 * D + h * dh;
        /* ctx = Pd·V: dPd = dC·Vᵀ, dV = Pdᵀ·dC; dP = dPd·mask */
        dbt_sgemm_nt(Tq, T, dh, 1.0f, dC, D, L->v + r0 * D + h * dh, D, 0.0f, dP, T);
        if (L->att_drop.p > 0) { /* the mask again from the key: the dropped probabilities, and dP */
            dbt_dropout2(L->att_drop.key, L->att_drop.p, off, P, Pd, dP, dP, (int64_t)Tq * T);
            use = Pd;
        }
        dbt_sgemm_tn(T, dh, Tq, 1.0f, use, T, dC, D, 0.0f, j->dv + r0 * D + h * dh, D);
        dbt_softmax_backward_rows(P, dP, Tq, T); /* dP now holds dS */
        /* S = scale·Q·Kᵀ: dQ = scale·dS·K, dK = scale·dSᵀ·Q */
        dbt_sgemm_nn(Tq, dh, T, scale, dP, T, L->k + r0 * D + h * dh, D, 0.0f, j->dq + q0 * D + h * dh, D);
        dbt_sgemm_tn(T, dh, Tq, scale, dP, T, L->q + q0 * D + h * dh, D, 0.0f, j->dk + r0 * D + h * dh, D);
    }
}

static void attention_backward(const dbt_config *cf, const dbt_train_cache *c, const layer_cache *L,
                               const float *dctx, float *dq, float *dk, float *dv, float *scratch, int nt) {
    att_job j = {cf, c, L, dctx, dq, dk, dv, NULL, NULL, scratch, 2 * (int64_t)c->Tmax * c->Tmax};
    dbt_pool_run(attention_backward_part, &j, nt);
}

/* ---- one layer ------------------------------------------------------------------------- */

/* x (R×D) → out (Rq×D, distinct from x: x stays as the layer's cached input). L's query side
 * (Rq, xq, q_start, att_off) is set by the caller. */
static void layer_forward(const dbt_config *cf, const dbt_layer *W, dbt_train_cache *c, layer_cache *L, const float *x,
                          float *out, float *tmp, float *scratch, int nt, int train, dbt_rng *rng) {
    const int D = cf->dim, H = cf->hidden_dim, R = c->R, Rq = L->Rq;
    const int bert = cf->arch == DBT_ARCH_BERT;
    L->x_in = x;
    dbt_linear_forward(L->xq, Rq, D, W->q.w, W->q.b, D, L->q);
    dbt_linear_forward(x, R, D, W->k.w, W->k.b, D, L->k);
    dbt_linear_forward(x, R, D, W->v.w, W->v.b, D, L->v);
    attention_forward(cf, c, L, scratch, nt, train, rng);
    dbt_linear_forward(L->ctx, Rq, D, W->o.w, W->o.b, D, tmp);
    L->drop1 = bert ? dropout(tmp, (int64_t)Rq * D, cf->dropout, train, rng) : (drop_t){0, 0.0f};
    dbt_layernorm_forward_train(tmp, L->xq, Rq, D, W->ln_attn.gamma, W->ln_attn.beta, cf->layer_norm_eps, L->x1,
                                L->xhat1, L->rstd1);
    dbt_linear_forward(L->x1, Rq, D, W->ff1.w, W->ff1.b, H, L->h_pre);
    activation(cf->activation, L->h_pre, L->h_act, (int64_t)Rq * H);
    dbt_linear_forward(L->h_act, Rq, H, W->ff2.w, W->ff2.b, D, tmp);
    L->drop2 = dropout(tmp, (int64_t)Rq * D, cf->dropout, train, rng);
    dbt_layernorm_forward_train(tmp, L->x1, Rq, D, W->ln_ffn.gamma, W->ln_ffn.beta, cf->layer_norm_eps, out, L->xhat2,
                                L->rstd2);
}

/* dy (Rq×D): the gradient of the layer's output on entry (overwritten); dx (R×D): the gradient
 * of its input on return. dy == dx when the layer runs on every row. */
static void layer_backward(const dbt_config *cf, const dbt_layer *W, dbt_layer *G, const dbt_train_cache *c,
                           const layer_cache *L, float *dy, float *dx_in, float *t1, float *t2, float *t3, float *dh,
                           float *scratch, int nt) {
    const int D = cf->dim, H = cf->hidden_dim, R = L->Rq; /* the rows below are the query side's */
    const int64_t RD = (int64_t)R * D;
    float *dx = dy;
    /* out = LN2(drop(ff2(act(ff1(x1)))) + x1): dx becomes d(sum), which is also the residual
     * branch's dx1 = dsum + (FFN path); the FFN path gets dsum through the dropout */
    dbt_layernorm_backward(dx, L->xhat2, L->rstd2, W->ln_ffn.gamma, R, D, dx, G->ln_ffn.gamma, G->ln_ffn.beta);
    float *dff = dx;
    if (L->drop2.p > 0) dropout_backward(&L->drop2, dx, dff = t1, RD);
    dbt_linear_backward(L->h_act, dff, R, H, D, W->ff2.w, dh, 0, G->ff2.w, G->ff2.b);
    dbt_activation_backward(cf->activation, L->h_pre, dh, dh, (int64_t)R * H);
    dbt_linear_backward(L->x1, dh, R, D, H, W->ff1.w, dx, 1, G->ff1.w, G->ff1.b);
    /* x1 = LN1(drop(o(ctx)) + x_in): the same again, dx_in = dsum + (attention path) */
    dbt_layernorm_backward(dx, L->xhat1, L->rstd1, W->ln_attn.gamma, R, D, dx, G->ln_attn.gamma, G->ln_attn.beta);
    float *dout = dx;
    if (L->drop1.p > 0) dropout_backward(&L->drop1, dx, dout = t1, RD);
    float *dctx = t2;
    dbt_linear_backward(L->ctx, dout, R, D, D, W->o.w, dctx, 0, G->o.w, G->o.b);
    float *dq = t1, *dk = t3, *dv = dh; /* dh (R×H, H >= D in every BERT) is free again */
    attention_backward(cf, c, L, dctx, dq, dk, dv, scratch, nt);
    dbt_linear_backward(L->xq, dq, R, D, D, W->q.w, dx, 1, G->q.w, G->q.b);
    if (dx_in == dx) {
        dbt_linear_backward(L->x_in, dk, c->R, D, D, W->k.w, dx, 1, G->k.w, G->k.b);
        dbt_linear_backward(L->x_in, dv, c->R, D, D, W->v.w, dx, 1, G->v.w, G->v.b);
    } else { /* [CLS] rows only: every row gets the key and value paths, the [CLS] rows the rest */
        dbt_linear_backward(L->x_in, dk, c->R, D, D, W->k.w, dx_in, 0, G->k.w, G->k.b);
        dbt_linear_backward(L->x_in, dv, c->R, D, D, W->v.w, dx_in, 1, G->v.w, G->v.b);
        for (int s = 0; s < c->n; s++) dbt_vec_add(dx_in + (int64_t)c->row_start[s] * D, dx + (int64_t)s * D, D);
    }
}

/* ---- the whole model ------------------------------------------------------------------- */

/* On any error the cache is freed (*cache_out = NULL) and the error set. */
#define FAIL(...)                                                                                                  \
    do {                                                                                                           \
        dbt_train_cache_free(c);                                                                                   \
        *cache_out = NULL;                                                                                         \
        return dbt_set_error(__VA_ARGS__);                                                                         \
    } while (0)

int dbt_train_forward(dbt_model *m, const dbt_encoding *encs, int n, const uint8_t *mlm_select, int train,
                      dbt_rng *rng, dbt_train_cache **cache_out, dbt_train_out *out) {
    const dbt_config *cf = &m->cfg;
    const dbt_weights *w = &m->w;
    const int D = cf->dim, H = cf->hidden_dim;
    memset(out, 0, sizeof *out);
    dbt_train_cache *c = *cache_out;
    if (n <= 0) FAIL("the batch is empty");
    if (H < D) FAIL("training needs hidden_dim >= dim");
    if (!c && !(c = calloc(1, sizeof *c))) FAIL("out of memory");
    c->next_slot = 0;
    c->failed = 0;
    c->n = n;
    if (c->cap_n < n + 1) {
        free(c->row_start);
        free(c->att_off);
        free(c->cls_start);
        free(c->cls_off);
        c->row_start = malloc(((size_t)n + 1) * sizeof *c->row_start);
        c->att_off = malloc(((size_t)n + 1) * sizeof *c->att_off);
        c->cls_start = malloc(((size_t)n + 1) * sizeof *c->cls_start);
        c->cls_off = malloc(((size_t)n + 1) * sizeof *c->cls_off);
        c->cap_n = c->row_start && c->att_off && c->cls_start && c->cls_off ? n + 1 : 0;
        if (!c->cap_n) FAIL("out of memory");
    }
    int32_t R = 0, Tmax = 0;
    int64_t att = 0, att_cls = 0;
    for (int s = 0; s < n; s++) {
        int T = encs[s].n;
        if (T < 1 || T > cf->max_position_embeddings)
            FAIL("sequence %d has %d tokens (1..%d allowed)", s, T, cf->max_position_embeddings);
        c->row_start[s] = R;
        c->att_off[s] = att;
        c->cls_start[s] = s;
        c->cls_off[s] = att_cls;
        R += T;
        att += (int64_t)cf->n_heads * T * T;
        att_cls += (int64_t)cf->n_heads * T;
        if (T > Tmax) Tmax = T;
    }
    c->row_start[n] = R;
    c->cls_start[n] = n;
    /* a sequence classifier's logits read the last layer at the [CLS] rows only */
    c->cls_only = m->info.head == DBT_HEAD_SEQ_CLS && cf->n_layers > 0;
    c->R = R;
    c->Tmax = Tmax;
    c->att_total = att;
    if (c->cap_R < R) {
        free(c->ids);
        free(c->types);
        free(c->pos);
        c->ids = malloc((size_t)R * sizeof *c->ids);
        c->types = malloc((size_t)R * sizeof *c->types);
        c->pos = malloc((size_t)R * sizeof *c->pos);
        c->cap_R = c->ids && c->types && c->pos ? R : 0;
        if (!c->cap_R) FAIL("out of memory");
    }
    if (c->n_layers != cf->n_layers) {
        free(c->layers);
        c->layers = calloc((size_t)cf->n_layers, sizeof *c->layers);
        c->n_layers = c->layers ? cf->n_layers : 0;
        if (!c->layers) FAIL("out of memory");
    }
    const int nt = dbt_pool_threads();
    float *scratch = alloc_f(c, (int64_t)nt * 2 * Tmax * Tmax);

    /* embeddings; the hidden states chain through one buffer per layer boundary (each layer's
     * input stays cached as it is, no copy) */
    float *xl[64 + 1];
    if (cf->n_layers > 64) FAIL("training supports at most 64 layers");
    for (int l = 0; l <= cf->n_layers; l++) xl[l] = alloc_f(c, (int64_t)R * D);
    float *tmp = alloc_f(c, (int64_t)R * D);
    c->xhat0 = alloc_f(c, (int64_t)R * D);
    c->rstd0 = alloc_f(c, R);
    if (c->failed) FAIL("out of memory");
    for (int s = 0; s < n; s++)
        for (int t = 0; t < encs[s].n; t++) {
            int32_t r = c->row_start[s] + t, id = encs[s].ids[t], ty = encs[s].type_ids ? encs[s].type_ids[t] : 0;
            if (id < 0 || id >= cf->vocab_size || (w->type_emb && (ty < 0 || ty >= cf->type_vocab_size)))
                FAIL("token id %d (type %d) is outside the model's tables", id, ty);
            c->ids[r] = id;
            c->types[r] = ty;
            c->pos[r] = t;
            float *xr = tmp + (int64_t)r * D;
            const float *we = w->word_emb + (int64_t)id * D, *pe = w->pos_emb + (int64_t)t * D;
            for (int i = 0; i < D; i++) xr[i] = we[i] + pe[i];
            if (w->type_emb)
                for (int i = 0; i < D; i++) xr[i] += w->type_emb[(int64_t)ty * D + i];
        }
    dbt_layernorm_forward_train(tmp, NULL, R, D, w->ln_emb.gamma, w->ln_emb.beta, cf->layer_norm_eps, xl[0], c->xhat0,
                                c->rstd0);
    c->drop0 = dropout(xl[0], (int64_t)R * D, cf->dropout, train, rng);

    c->cls = alloc_f(c, (int64_t)n * D);
    if (c->failed) FAIL("out of memory");
    for (int l = 0; l < cf->n_layers; l++) {
        layer_cache *L = &c->layers[l];
        const int last_cls = c->cls_only && l == cf->n_layers - 1;
        const int Rq = last_cls ? n : R;
        L->Rq = Rq;
        L->q_start = last_cls ? c->cls_start : c->row_start;
        L->att_off = last_cls ? c->cls_off : c->att_off;
        float *xq = last_cls ? alloc_f(c, (int64_t)n * D) : NULL;
        L->q = alloc_f(c, (int64_t)Rq * D);
        L->k = alloc_f(c, (int64_t)R * D);
        L->v = alloc_f(c, (int64_t)R * D);
        L->probs = alloc_f(c, last_cls ? att_cls : att);
        L->ctx = alloc_f(c, (int64_t)Rq * D);
        L->xhat1 = alloc_f(c, (int64_t)Rq * D);
        L->rstd1 = alloc_f(c, Rq);
        L->x1 = alloc_f(c, (int64_t)Rq * D);
        L->h_pre = alloc_f(c, (int64_t)Rq * H);
        L->h_act = alloc_f(c, (int64_t)Rq * H);
        L->xhat2 = alloc_f(c, (int64_t)Rq * D);
        L->rstd2 = alloc_f(c, Rq);
        if (c->failed) FAIL("out of memory");
        if (last_cls) /* the queries of the [CLS] rows; the layer's output goes to c->cls */
            for (int s = 0; s < n; s++)
                memcpy(xq + (int64_t)s * D, xl[l] + (int64_t)c->row_start[s] * D, (size_t)D * sizeof(float));
        L->xq = last_cls ? xq : xl[l];
        layer_forward(cf, &w->layers[l], c, L, xl[l], last_cls ? c->cls : xl[l + 1], tmp, scratch, nt, train, rng);
    }
    /* the last hidden state (every row); a sequence classifier has its [CLS] rows only (in cls) */
    float *x = c->hidden = c->cls_only ? NULL : xl[cf->n_layers];

    /* head */
    const dbt_head head = m->info.head;
    c->head_drop.p = 0;
    if (!c->cls_only)
        for (int s = 0; s < n; s++)
            memcpy(c->cls + (int64_t)s * D, x + (int64_t)c->row_start[s] * D, (size_t)D * sizeof(float));
    switch (head) {
    case DBT_HEAD_SEQ_CLS: {
        const int L = cf->n_labels;
        c->pre = alloc_f(c, (int64_t)n * D);
        c->head_in = alloc_f(c, (int64_t)n * D);
        c->logits = alloc_f(c, (int64_t)n * L);
        if (c->failed) break;
        if (cf->arch == DBT_ARCH_DISTILBERT) { /* pre → ReLU → dropout → classifier */
            dbt_linear_forward(c->cls, n, D, w->pre_classifier.w, w->pre_classifier.b, D, c->pre);
            memcpy(c->head_in, c->pre, (size_t)n * D * sizeof(float));
            dbt_activation_forward(DBT_ACT_RELU, c->head_in, (int64_t)n * D);
        } else { /* pooler(tanh) → dropout → classifier */
            dbt_linear_forward(c->cls, n, D, w->pooler.w, w->pooler.b, D, c->pre);
            memcpy(c->head_in, c->pre, (size_t)n * D * sizeof(float));
            dbt_activation_forward(DBT_ACT_TANH, c->head_in, (int64_t)n * D);
        }
        c->head_drop = dropout(c->head_in, (int64_t)n * D, cf->classifier_dropout, train, rng);
        dbt_linear_forward(c->head_in, n, D, w->classifier.w, w->classifier.b, L, c->logits);
        c->logits_rows = n;
        c->logits_cols = L;
        break;
    }
    case DBT_HEAD_TOKEN_CLS:
    case DBT_HEAD_QA: {
        const int cols = head == DBT_HEAD_QA ? 2 : cf->n_labels;
        const dbt_linear *lin = head == DBT_HEAD_QA ? &w->qa : &w->classifier;
        float p = head == DBT_HEAD_QA ? (cf->arch == DBT_ARCH_DISTILBERT ? cf->qa_dropout : 0.0f)
                                      : (cf->arch == DBT_ARCH_DISTILBERT ? cf->dropout : cf->classifier_dropout);
        c->head_in = alloc_f(c, (int64_t)R * D);
        c->logits = alloc_f(c, (int64_t)R * cols);
        if (c->failed) break;
        memcpy(c->head_in, x, (size_t)R * D * sizeof(float));
        c->head_drop = dropout(c->head_in, (int64_t)R * D, p, train, rng);
        dbt_linear_forward(c->head_in, R, D, lin->w, lin->b, cols, c->logits);
        c->logits_rows = R;
        c->logits_cols = cols;
        break;
    }
    case DBT_HEAD_MLM: {
        const int V = cf->vocab_size;
        int32_t n_sel = 0;
        for (int32_t r = 0; r < R; r++) n_sel += !mlm_select || mlm_select[r];
        if (c->cap_sel < n_sel || !c->mlm_rows) {
            free(c->mlm_rows);
            c->mlm_rows = malloc((size_t)(n_sel ? n_sel : 1) * sizeof *c->mlm_rows);
            c->cap_sel = c->mlm_rows ? n_sel : 0;
            if (!c->mlm_rows) { c->failed = 1; break; }
        }
        for (int32_t r = 0, i = 0; r < R; r++)
            if (!mlm_select || mlm_select[r]) c->mlm_rows[i++] = r;
        c->n_sel = n_sel;
        c->head_in = alloc_f(c, (int64_t)n_sel * D);
        c->mlm_t_pre = alloc_f(c, (int64_t)n_sel * D);
        c->pre = alloc_f(c, (int64_t)n_sel * D); /* the activation's output */
        c->mlm_xhat = alloc_f(c, (int64_t)n_sel * D);
        c->mlm_rstd = alloc_f(c, n_sel);
        c->mlm_t = alloc_f(c, (int64_t)n_sel * D);
        c->logits = alloc_f(c, (int64_t)n_sel * V);
        if (c->failed) break;
        for (int32_t i = 0; i < n_sel; i++)
            memcpy(c->head_in + (int64_t)i * D, x + (int64_t)c->mlm_rows[i] * D, (size_t)D * sizeof(float));
        dbt_linear_forward(c->head_in, n_sel, D, w->mlm_transform.w, w->mlm_transform.b, D, c->mlm_t_pre);
        activation(cf->activation, c->mlm_t_pre, c->pre, (int64_t)n_sel * D);
        dbt_layernorm_forward_train(c->pre, NULL, n_sel, D, w->mlm_ln.gamma, w->mlm_ln.beta, cf->layer_norm_eps,
                                    c->mlm_t, c->mlm_xhat, c->mlm_rstd);
        dbt_linear_forward(c->mlm_t, n_sel, D, w->mlm_decoder, w->mlm_bias, V, c->logits);
        c->logits_rows = n_sel;
        c->logits_cols = V;
        break;
    }
    default:
        c->logits = NULL;
        c->logits_rows = c->logits_cols = 0;
        break;
    }
    if (c->failed) FAIL("out of memory");
    c->fwd_slots = c->next_slot;
    out->n_seqs = n;
    out->row_start = c->row_start;
    out->n_rows = R;
    out->dim = D;
    out->hidden = c->cls_only ? c->cls : c->hidden;
    out->logits = c->logits;
    out->logits_rows = c->logits_rows;
    out->logits_cols = c->logits_cols;
    out->mlm_rows = head == DBT_HEAD_MLM ? c->mlm_rows : NULL;
    *cache_out = c;
    return 0;
}

int dbt_train_backward(dbt_model *m, dbt_params *p, dbt_train_cache *c, const float *d_logits,
                       const float *d_hidden) {
    const dbt_config *cf = &m->cfg;
    const dbt_weights *w = &m->w;
    dbt_weights *g = &p->g;
    const int D = cf->dim, H = cf->hidden_dim, R = c->R, n = c->n;
    const int64_t RD = (int64_t)R * D;
    const int nt = dbt_pool_threads();
    /* the backward's buffers: the slots after the forward's, reused from step to step */
    c->next_slot = c->fwd_slots;
    c->failed = 0;
    float *dx = alloc_f(c, RD), *t1 = alloc_f(c, RD), *t2 = alloc_f(c, RD), *t3 = alloc_f(c, RD);
    float *dh = alloc_f(c, (int64_t)R * H);
    float *scratch = alloc_f(c, (int64_t)nt * 2 * c->Tmax * c->Tmax);
    float *dcls = alloc_f(c, (int64_t)n * D);
    if (c->failed) return dbt_set_error("out of memory");
    if (d_hidden && c->cls_only)
        return dbt_set_error("a sequence classifier's training pass has no last hidden state to take a gradient");
    if (d_hidden) memcpy(dx, d_hidden, (size_t)RD * sizeof *dx);
    else memset(dx, 0, (size_t)RD * sizeof *dx);
    memset(dcls, 0, (size_t)n * D * sizeof *dcls);

    /* head */
    const dbt_head head = m->info.head;
    if (d_logits) switch (head) {
    case DBT_HEAD_SEQ_CLS: {
        const int L = cf->n_labels;
        float *dhead = t1, *dpre = t2;
        dbt_linear_backward(c->head_in, d_logits, n, D, L, w->classifier.w, dhead, 0, g->classifier.w, g->classifier.b);
        dropout_backward(&c->head_drop, dhead, dhead, (int64_t)n * D);
        if (cf->arch == DBT_ARCH_DISTILBERT) {
            dbt_activation_backward(DBT_ACT_RELU, c->pre, dhead, dpre, (int64_t)n * D);
            dbt_linear_backward(c->cls, dpre, n, D, D, w->pre_classifier.w, dcls, 0, g->pre_classifier.w, g->pre_classifier.b);
        } else {
            dbt_activation_backward(DBT_ACT_TANH, c->pre, dhead, dpre, (int64_t)n * D);
            dbt_linear_backward(c->cls, dpre, n, D, D, w->pooler.w, dcls, 0, g->pooler.w, g->pooler.b);
        }
        if (!c->cls_only) /* (else dcls is the last layer's output gradient, below) */
            for (int s = 0; s < n; s++) dbt_vec_add(dx + (int64_t)c->row_start[s] * D, dcls + (int64_t)s * D, D);
        break;
    }
    case DBT_HEAD_TOKEN_CLS:
    case DBT_HEAD_QA: {
        const int cols = c->logits_cols;
        const dbt_linear *lin = head == DBT_HEAD_QA ? &w->qa : &w->classifier;
        dbt_linear *glin = head == DBT_HEAD_QA ? &g->qa : &g->classifier;
        float *dhead = t1;
        dbt_linear_backward(c->head_in, d_logits, R, D, cols, lin->w, dhead, 0, glin->w, glin->b);
        dropout_backward(&c->head_drop, dhead, dhead, RD);
        dbt_vec_add(dx, dhead, RD);
        break;
    }
    case DBT_HEAD_MLM: {
        const int V = cf->vocab_size, ns = c->n_sel;
        float *dt = alloc_f(c, (int64_t)ns * D), *dpre = alloc_f(c, (int64_t)ns * D);
        if (c->failed) return dbt_set_error("out of memory");
        dbt_linear_backward(c->mlm_t, d_logits, ns, D, V, w->mlm_decoder, dt, 0, g->mlm_decoder, g->mlm_bias);
        dbt_layernorm_backward(dt, c->mlm_xhat, c->mlm_rstd, w->mlm_ln.gamma, ns, D, dpre, g->mlm_ln.gamma, g->mlm_ln.beta);
        dbt_activation_backward(cf->activation, c->mlm_t_pre, dpre, dpre, (int64_t)ns * D);
        dbt_linear_backward(c->head_in, dpre, ns, D, D, w->mlm_transform.w, dt, 0, g->mlm_transform.w, g->mlm_transform.b);
        for (int32_t i = 0; i < ns; i++) dbt_vec_add(dx + (int64_t)c->mlm_rows[i] * D, dt + (int64_t)i * D, D);
        break;
    }
    default:
        break;
    }

    for (int l = cf->n_layers - 1; l >= 0; l--) {
        const int last_cls = c->cls_only && l == cf->n_layers - 1;
        layer_backward(cf, &w->layers[l], &g->layers[l], c, &c->layers[l], last_cls ? dcls : dx, dx, t1, t2, t3, dh,
                       scratch, nt);
    }

    /* embeddings: dropout → LayerNorm → scatter into the tables */
    dropout_backward(&c->drop0, dx, dx, RD);
    dbt_layernorm_backward(dx, c->xhat0, c->rstd0, w->ln_emb.gamma, R, D, t1, g->ln_emb.gamma, g->ln_emb.beta);
    for (int32_t r = 0; r < R; r++) {
        const float *d = t1 + (int64_t)r * D;
        dbt_vec_add(g->word_emb + (int64_t)c->ids[r] * D, d, D);
        dbt_vec_add(g->pos_emb + (int64_t)c->pos[r] * D, d, D);
        if (g->type_emb) dbt_vec_add(g->type_emb + (int64_t)c->types[r] * D, d, D);
    }
    return 0;
}
