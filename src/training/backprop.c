/* backprop.c — forward with caches and backward, layer by layer, side by side.
 *
 * Where dropout sits follows transformers exactly:
 *   both:        embeddings → LayerNorm → dropout; attention probabilities → dropout;
 *                FFN: lin1 → act → lin2 → dropout → LayerNorm(+x)
 *   BERT only:   attention output dense → dropout → LayerNorm(+x)
 *   heads:       DistilBERT seq-cls: pre_classifier → ReLU → dropout(seq_classif_dropout) → classifier
 *                BERT seq-cls: pooler(tanh) → dropout(classifier_dropout) → classifier
 *                token-cls: dropout → classifier; QA: DistilBERT dropout(qa_dropout), BERT none; MLM none
 * A dropout mask is stored as the multiplier itself (0 or 1/(1-p)), so backward is one product.
 */
#include "backprop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../kernels/kernels.h"

typedef struct {
    float *x_in;              /* R×D  layer input */
    float *q, *k, *v;         /* R×D */
    float *probs;             /* Σ_s nh·T_s²: softmax output */
    float *probs_drop;        /* the same after dropout (NULL when no dropout) */
    float *att_mask;          /* dropout multipliers of probs (NULL when none) */
    float *ctx;               /* R×D */
    float *drop1;             /* R×D BERT attention-output dropout multipliers (NULL when none) */
    float *xhat1, *rstd1;     /* LayerNorm after attention */
    float *x1;                /* R×D */
    float *h_pre, *h_act;     /* R×H */
    float *drop2;             /* R×D FFN-output dropout multipliers (NULL when none) */
    float *xhat2, *rstd2;     /* LayerNorm after the FFN */
} layer_cache;

struct dbt_train_cache {
    int n;
    int32_t *row_start;
    int32_t R;
    int64_t att_total;
    int64_t *att_off;         /* n: offset of sequence s's nh·T² block */
    int32_t *ids, *types, *pos;
    float *xhat0, *rstd0, *drop0;
    layer_cache *layers;
    float *hidden;            /* R×D */
    /* head */
    float *cls;               /* n×D: the first row of each sequence */
    float *pre, *pre_act, *head_drop, *head_in; /* head intermediates (see head_forward) */
    float *mlm_t_pre, *mlm_xhat, *mlm_rstd, *mlm_t; /* MLM transform */
    int32_t *mlm_rows;
    int32_t n_sel;
    float *logits;
    int logits_rows, logits_cols;
    void **allocs;
    int n_allocs;
    int failed;
};

static float *alloc_f(dbt_train_cache *c, int64_t n) {
    if (c->failed) return NULL;
    void **a = realloc(c->allocs, ((size_t)c->n_allocs + 1) * sizeof *a);
    if (!a) { c->failed = 1; return NULL; }
    c->allocs = a;
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) { c->failed = 1; return NULL; }
    c->allocs[c->n_allocs++] = p;
    return p;
}

void dbt_train_cache_free(dbt_train_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n_allocs; i++) free(c->allocs[i]);
    free(c->allocs);
    free(c->layers);
    free(c->row_start);
    free(c->att_off);
    free(c->ids);
    free(c->types);
    free(c->pos);
    free(c->mlm_rows);
    free(c);
}

/* Fills mult with dropout multipliers (0 or 1/(1-p)) and applies them to x; NULL when p == 0. */
static float *dropout(dbt_train_cache *c, float *x, int64_t n, float p, int train, dbt_rng *rng) {
    if (!train || p <= 0) return NULL;
    float *mult = alloc_f(c, n);
    if (!mult) return NULL;
    const float keep = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) {
        mult[i] = dbt_rng_uniform(rng) < p ? 0.0f : keep;
        x[i] *= mult[i];
    }
    return mult;
}

static void mul_inplace(float *x, const float *mult, int64_t n) {
    if (mult)
        for (int64_t i = 0; i < n; i++) x[i] *= mult[i];
}

/* ---- attention ------------------------------------------------------------------------- */

static void attention_forward(const dbt_config *cf, dbt_train_cache *c, layer_cache *L, int train, dbt_rng *rng) {
    const int D = cf->dim, nh = cf->n_heads, dh = D / nh;
    const float scale = 1.0f / sqrtf((float)dh);
    L->att_mask = NULL;
    L->probs_drop = NULL;
    if (train && cf->attention_dropout > 0) {
        L->probs_drop = alloc_f(c, c->att_total);
        L->att_mask = alloc_f(c, c->att_total);
        if (!L->att_mask) return;
    }
    const float keep = 1.0f / (1.0f - cf->attention_dropout);
    for (int s = 0; s < c->n; s++) {
        const int64_t r0 = c->row_start[s];
        const int T = c->row_start[s + 1] - c->row_start[s];
        for (int h = 0; h < nh; h++) {
            float *P = L->probs + c->att_off[s] + (int64_t)h * T * T;
            dbt_sgemm_nt(T, T, dh, scale, L->q + r0 * D + h * dh, D, L->k + r0 * D + h * dh, D, 0.0f, P, T);
            dbt_softmax_rows(P, T, T, T);
            const float *use = P;
            if (L->att_mask) {
                float *Pd = L->probs_drop + c->att_off[s] + (int64_t)h * T * T;
                float *M = L->att_mask + c->att_off[s] + (int64_t)h * T * T;
                for (int64_t i = 0; i < (int64_t)T * T; i++) {
                    M[i] = dbt_rng_uniform(rng) < cf->attention_dropout ? 0.0f : keep;
                    Pd[i] = P[i] * M[i];
                }
                use = Pd;
            }
            dbt_sgemm_nn(T, dh, T, 1.0f, use, T, L->v + r0 * D + h * dh, D, 0.0f, L->ctx + r0 * D + h * dh, D);
        }
    }
}

/* dctx → dq, dk, dv (written). scratch: max T² floats. */
static void attention_backward(const dbt_config *cf, const dbt_train_cache *c, const layer_cache *L,
                               const float *dctx, float *dq, float *dk, float *dv, float *scratch) {
    const int D = cf->dim, nh = cf->n_heads, dh = D / nh;
    const float scale = 1.0f / sqrtf((float)dh);
    for (int s = 0; s < c->n; s++) {
        const int64_t r0 = c->row_start[s];
        const int T = c->row_start[s + 1] - c->row_start[s];
        for (int h = 0; h < nh; h++) {
            const int64_t off = c->att_off[s] + (int64_t)h * T * T;
            const float *P = L->probs + off, *Pd = L->probs_drop ? L->probs_drop + off : P;
            const float *dC = dctx + r0 * D + h * dh;
            float *dP = scratch;
            /* ctx = Pd·V: dPd = dC·Vᵀ, dV = Pdᵀ·dC */
            dbt_sgemm_nt(T, T, dh, 1.0f, dC, D, L->v + r0 * D + h * dh, D, 0.0f, dP, T);
            dbt_sgemm_tn(T, dh, T, 1.0f, Pd, T, dC, D, 0.0f, dv + r0 * D + h * dh, D);
            if (L->att_mask) mul_inplace(dP, L->att_mask + off, (int64_t)T * T);
            dbt_softmax_backward_rows(P, dP, T, T); /* dP now holds dS */
            /* S = scale·Q·Kᵀ: dQ = scale·dS·K, dK = scale·dSᵀ·Q */
            dbt_sgemm_nn(T, dh, T, scale, dP, T, L->k + r0 * D + h * dh, D, 0.0f, dq + r0 * D + h * dh, D);
            dbt_sgemm_tn(T, dh, T, scale, dP, T, L->q + r0 * D + h * dh, D, 0.0f, dk + r0 * D + h * dh, D);
        }
    }
}

/* ---- one layer ------------------------------------------------------------------------- */

static void layer_forward(const dbt_config *cf, const dbt_layer *W, dbt_train_cache *c, layer_cache *L, float *x,
                          float *tmp, int train, dbt_rng *rng) {
    const int D = cf->dim, H = cf->hidden_dim, R = c->R;
    const int bert = cf->arch == DBT_ARCH_BERT;
    memcpy(L->x_in, x, (size_t)R * D * sizeof *x);
    dbt_linear_forward(x, R, D, W->q.w, W->q.b, D, L->q);
    dbt_linear_forward(x, R, D, W->k.w, W->k.b, D, L->k);
    dbt_linear_forward(x, R, D, W->v.w, W->v.b, D, L->v);
    attention_forward(cf, c, L, train, rng);
    dbt_linear_forward(L->ctx, R, D, W->o.w, W->o.b, D, tmp);
    L->drop1 = bert ? dropout(c, tmp, (int64_t)R * D, cf->dropout, train, rng) : NULL;
    dbt_layernorm_forward_train(tmp, L->x_in, R, D, W->ln_attn.gamma, W->ln_attn.beta, cf->layer_norm_eps, L->x1,
                                L->xhat1, L->rstd1);
    dbt_linear_forward(L->x1, R, D, W->ff1.w, W->ff1.b, H, L->h_pre);
    memcpy(L->h_act, L->h_pre, (size_t)R * H * sizeof(float));
    dbt_activation_forward(cf->activation, L->h_act, (int64_t)R * H);
    dbt_linear_forward(L->h_act, R, H, W->ff2.w, W->ff2.b, D, tmp);
    L->drop2 = dropout(c, tmp, (int64_t)R * D, cf->dropout, train, rng);
    dbt_layernorm_forward_train(tmp, L->x1, R, D, W->ln_ffn.gamma, W->ln_ffn.beta, cf->layer_norm_eps, x, L->xhat2,
                                L->rstd2);
}

/* dx: gradient of the layer's output on entry, of its input on return. */
static void layer_backward(const dbt_config *cf, const dbt_layer *W, dbt_layer *G, const dbt_train_cache *c,
                           const layer_cache *L, float *dx, float *t1, float *t2, float *t3, float *dh,
                           float *scratch) {
    const int D = cf->dim, H = cf->hidden_dim, R = c->R;
    /* out = LN2(drop(ff2(act(ff1(x1)))) + x1) */
    float *dsum = t1;
    dbt_layernorm_backward(dx, L->xhat2, L->rstd2, W->ln_ffn.gamma, R, D, dsum, G->ln_ffn.gamma, G->ln_ffn.beta);
    float *dx1 = dx; /* the residual branch: dx1 = dsum + (FFN path) */
    memcpy(dx1, dsum, (size_t)R * D * sizeof *dx1);
    mul_inplace(dsum, L->drop2, (int64_t)R * D);
    dbt_linear_backward(L->h_act, dsum, R, H, D, W->ff2.w, dh, 0, G->ff2.w, G->ff2.b);
    dbt_activation_backward(cf->activation, L->h_pre, dh, dh, (int64_t)R * H);
    dbt_linear_backward(L->x1, dh, R, D, H, W->ff1.w, dx1, 1, G->ff1.w, G->ff1.b);
    /* x1 = LN1(drop(o(ctx)) + x_in) */
    dbt_layernorm_backward(dx1, L->xhat1, L->rstd1, W->ln_attn.gamma, R, D, dsum, G->ln_attn.gamma, G->ln_attn.beta);
    memcpy(dx, dsum, (size_t)R * D * sizeof *dx); /* residual: dx_in starts as dsum */
    mul_inplace(dsum, L->drop1, (int64_t)R * D);
    float *dctx = t2;
    dbt_linear_backward(L->ctx, dsum, R, D, D, W->o.w, dctx, 0, G->o.w, G->o.b);
    float *dq = t1, *dk = t3, *dv = dh; /* dh (R×H, H >= D in every BERT) is free again */
    attention_backward(cf, c, L, dctx, dq, dk, dv, scratch);
    dbt_linear_backward(L->x_in, dq, R, D, D, W->q.w, dx, 1, G->q.w, G->q.b);
    dbt_linear_backward(L->x_in, dk, R, D, D, W->k.w, dx, 1, G->k.w, G->k.b);
    dbt_linear_backward(L->x_in, dv, R, D, D, W->v.w, dx, 1, G->v.w, G->v.b);
}

/* ---- the whole model ------------------------------------------------------------------- */

int dbt_train_forward(dbt_model *m, const dbt_encoding *encs, int n, const uint8_t *mlm_select, int train,
                      dbt_rng *rng, dbt_train_cache **cache_out, dbt_train_out *out) {
    const dbt_config *cf = &m->cfg;
    const dbt_weights *w = &m->w;
    const int D = cf->dim, H = cf->hidden_dim;
    memset(out, 0, sizeof *out);
    *cache_out = NULL;
    if (n <= 0) return dbt_set_error("the batch is empty");
    if (H < D) return dbt_set_error("training needs hidden_dim >= dim");
    dbt_train_cache *c = calloc(1, sizeof *c);
    if (!c) return dbt_set_error("out of memory");
    c->n = n;
    c->row_start = malloc(((size_t)n + 1) * sizeof *c->row_start);
    c->att_off = malloc((size_t)n * sizeof *c->att_off);
    if (!c->row_start || !c->att_off) { dbt_train_cache_free(c); return dbt_set_error("out of memory"); }
    int32_t R = 0, Tmax = 0;
    int64_t att = 0;
    for (int s = 0; s < n; s++) {
        int T = encs[s].n;
        if (T < 1 || T > cf->max_position_embeddings) {
            dbt_train_cache_free(c);
            return dbt_set_error("sequence %d has %d tokens (1..%d allowed)", s, T, cf->max_position_embeddings);
        }
        c->row_start[s] = R;
        c->att_off[s] = att;
        R += T;
        att += (int64_t)cf->n_heads * T * T;
        if (T > Tmax) Tmax = T;
    }
    c->row_start[n] = R;
    c->R = R;
    c->att_total = att;
    c->ids = malloc((size_t)R * sizeof *c->ids);
    c->types = malloc((size_t)R * sizeof *c->types);
    c->pos = malloc((size_t)R * sizeof *c->pos);
    c->layers = calloc((size_t)cf->n_layers, sizeof *c->layers);
    if (!c->ids || !c->types || !c->pos || !c->layers) { dbt_train_cache_free(c); return dbt_set_error("out of memory"); }

    /* embeddings */
    float *x = c->hidden = alloc_f(c, (int64_t)R * D);
    float *tmp = alloc_f(c, (int64_t)R * D);
    c->xhat0 = alloc_f(c, (int64_t)R * D);
    c->rstd0 = alloc_f(c, R);
    if (c->failed) { dbt_train_cache_free(c); return dbt_set_error("out of memory"); }
    for (int s = 0; s < n; s++)
        for (int t = 0; t < encs[s].n; t++) {
            int32_t r = c->row_start[s] + t, id = encs[s].ids[t], ty = encs[s].type_ids ? encs[s].type_ids[t] : 0;
            if (id < 0 || id >= cf->vocab_size || (w->type_emb && (ty < 0 || ty >= cf->type_vocab_size))) {
                dbt_train_cache_free(c);
                return dbt_set_error("token id %d (type %d) is outside the model's tables", id, ty);
            }
            c->ids[r] = id;
            c->types[r] = ty;
            c->pos[r] = t;
            float *xr = tmp + (int64_t)r * D;
            const float *we = w->word_emb + (int64_t)id * D, *pe = w->pos_emb + (int64_t)t * D;
            for (int i = 0; i < D; i++) xr[i] = we[i] + pe[i];
            if (w->type_emb)
                for (int i = 0; i < D; i++) xr[i] += w->type_emb[(int64_t)ty * D + i];
        }
    dbt_layernorm_forward_train(tmp, NULL, R, D, w->ln_emb.gamma, w->ln_emb.beta, cf->layer_norm_eps, x, c->xhat0,
                                c->rstd0);
    c->drop0 = dropout(c, x, (int64_t)R * D, cf->dropout, train, rng);

    for (int l = 0; l < cf->n_layers; l++) {
        layer_cache *L = &c->layers[l];
        L->x_in = alloc_f(c, (int64_t)R * D);
        L->q = alloc_f(c, (int64_t)R * D);
        L->k = alloc_f(c, (int64_t)R * D);
        L->v = alloc_f(c, (int64_t)R * D);
        L->probs = alloc_f(c, att);
        L->ctx = alloc_f(c, (int64_t)R * D);
        L->xhat1 = alloc_f(c, (int64_t)R * D);
        L->rstd1 = alloc_f(c, R);
        L->x1 = alloc_f(c, (int64_t)R * D);
        L->h_pre = alloc_f(c, (int64_t)R * H);
        L->h_act = alloc_f(c, (int64_t)R * H);
        L->xhat2 = alloc_f(c, (int64_t)R * D);
        L->rstd2 = alloc_f(c, R);
        if (c->failed) { dbt_train_cache_free(c); return dbt_set_error("out of memory"); }
        layer_forward(cf, &w->layers[l], c, L, x, tmp, train, rng);
        if (c->failed) { dbt_train_cache_free(c); return dbt_set_error("out of memory"); }
    }

    /* head */
    const dbt_head head = m->info.head;
    c->cls = alloc_f(c, (int64_t)n * D);
    if (c->failed) { dbt_train_cache_free(c); return dbt_set_error("out of memory"); }
    for (int s = 0; s < n; s++) memcpy(c->cls + (int64_t)s * D, x + (int64_t)c->row_start[s] * D, (size_t)D * sizeof(float));
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
        c->head_drop = dropout(c, c->head_in, (int64_t)n * D, cf->classifier_dropout, train, rng);
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
        c->head_drop = dropout(c, c->head_in, (int64_t)R * D, p, train, rng);
        dbt_linear_forward(c->head_in, R, D, lin->w, lin->b, cols, c->logits);
        c->logits_rows = R;
        c->logits_cols = cols;
        break;
    }
    case DBT_HEAD_MLM: {
        const int V = cf->vocab_size;
        int32_t n_sel = 0;
        for (int32_t r = 0; r < R; r++) n_sel += !mlm_select || mlm_select[r];
        c->mlm_rows = malloc((size_t)(n_sel ? n_sel : 1) * sizeof *c->mlm_rows);
        if (!c->mlm_rows) { c->failed = 1; break; }
        for (int32_t r = 0, i = 0; r < R; r++)
            if (!mlm_select || mlm_select[r]) c->mlm_rows[i++] = r;
        c->n_sel = n_sel;
        c->head_in = alloc_f(c, (int64_t)n_sel * D);
        c->mlm_t_pre = alloc_f(c, (int64_t)n_sel * D);
        c->pre_act = alloc_f(c, (int64_t)n_sel * D);
        c->mlm_xhat = alloc_f(c, (int64_t)n_sel * D);
        c->mlm_rstd = alloc_f(c, n_sel);
        c->mlm_t = alloc_f(c, (int64_t)n_sel * D);
        c->logits = alloc_f(c, (int64_t)n_sel * V);
        if (c->failed) break;
        for (int32_t i = 0; i < n_sel; i++)
            memcpy(c->head_in + (int64_t)i * D, x + (int64_t)c->mlm_rows[i] * D, (size_t)D * sizeof(float));
        dbt_linear_forward(c->head_in, n_sel, D, w->mlm_transform.w, w->mlm_transform.b, D, c->mlm_t_pre);
        memcpy(c->pre_act, c->mlm_t_pre, (size_t)n_sel * D * sizeof(float));
        dbt_activation_forward(cf->activation, c->pre_act, (int64_t)n_sel * D);
        dbt_layernorm_forward_train(c->pre_act, NULL, n_sel, D, w->mlm_ln.gamma, w->mlm_ln.beta, cf->layer_norm_eps,
                                    c->mlm_t, c->mlm_xhat, c->mlm_rstd);
        dbt_linear_forward(c->mlm_t, n_sel, D, w->mlm_decoder, w->mlm_bias, V, c->logits);
        c->logits_rows = n_sel;
        c->logits_cols = V;
        break;
    }
    default:
        break;
    }
    if (c->failed) { dbt_train_cache_free(c); return dbt_set_error("out of memory"); }
    out->n_seqs = n;
    out->row_start = c->row_start;
    out->n_rows = R;
    out->dim = D;
    out->hidden = c->hidden;
    out->logits = c->logits;
    out->logits_rows = c->logits_rows;
    out->logits_cols = c->logits_cols;
    out->mlm_rows = c->mlm_rows;
    *cache_out = c;
    return 0;
}

int dbt_train_backward(dbt_model *m, dbt_params *p, dbt_train_cache *c, const float *d_logits,
                       const float *d_hidden) {
    const dbt_config *cf = &m->cfg;
    const dbt_weights *w = &m->w;
    dbt_weights *g = &p->g;
    const int D = cf->dim, H = cf->hidden_dim, R = c->R, n = c->n;
    int32_t Tmax = 0;
    for (int s = 0; s < n; s++)
        if (c->row_start[s + 1] - c->row_start[s] > Tmax) Tmax = c->row_start[s + 1] - c->row_start[s];
    float *dx = calloc((size_t)R * D, sizeof *dx);
    float *t1 = malloc((size_t)R * D * sizeof *t1), *t2 = malloc((size_t)R * D * sizeof *t2);
    float *t3 = malloc((size_t)R * D * sizeof *t3), *dh = malloc((size_t)R * H * sizeof *dh);
    float *scratch = malloc((size_t)Tmax * Tmax * sizeof *scratch);
    float *dcls = calloc((size_t)n * D, sizeof *dcls);
    int rc = 0;
    if (!dx || !t1 || !t2 || !t3 || !dh || !scratch || !dcls) { rc = dbt_set_error("out of memory"); goto done; }
    if (d_hidden) memcpy(dx, d_hidden, (size_t)R * D * sizeof *dx);

    /* head */
    const dbt_head head = m->info.head;
    if (d_logits) switch (head) {
    case DBT_HEAD_SEQ_CLS: {
        const int L = cf->n_labels;
        float *dhead = t1, *dpre = t2;
        dbt_linear_backward(c->head_in, d_logits, n, D, L, w->classifier.w, dhead, 0, g->classifier.w, g->classifier.b);
        mul_inplace(dhead, c->head_drop, (int64_t)n * D);
        if (cf->arch == DBT_ARCH_DISTILBERT) {
            dbt_activation_backward(DBT_ACT_RELU, c->pre, dhead, dpre, (int64_t)n * D);
            dbt_linear_backward(c->cls, dpre, n, D, D, w->pre_classifier.w, dcls, 0, g->pre_classifier.w, g->pre_classifier.b);
        } else {
            dbt_activation_backward(DBT_ACT_TANH, c->pre, dhead, dpre, (int64_t)n * D);
            dbt_linear_backward(c->cls, dpre, n, D, D, w->pooler.w, dcls, 0, g->pooler.w, g->pooler.b);
        }
        for (int s = 0; s < n; s++) {
            float *row = dx + (int64_t)c->row_start[s] * D;
            for (int i = 0; i < D; i++) row[i] += dcls[(int64_t)s * D + i];
        }
        break;
    }
    case DBT_HEAD_TOKEN_CLS:
    case DBT_HEAD_QA: {
        const int cols = c->logits_cols;
        const dbt_linear *lin = head == DBT_HEAD_QA ? &w->qa : &w->classifier;
        dbt_linear *glin = head == DBT_HEAD_QA ? &g->qa : &g->classifier;
        float *dhead = t1;
        dbt_linear_backward(c->head_in, d_logits, R, D, cols, lin->w, dhead, 0, glin->w, glin->b);
        mul_inplace(dhead, c->head_drop, (int64_t)R * D);
        for (int64_t i = 0; i < (int64_t)R * D; i++) dx[i] += dhead[i];
        break;
    }
    case DBT_HEAD_MLM: {
        const int V = cf->vocab_size, ns = c->n_sel;
        float *dt = malloc((size_t)(ns ? ns : 1) * D * sizeof *dt), *dpre = malloc((size_t)(ns ? ns : 1) * D * sizeof *dpre);
        if (!dt || !dpre) { free(dt); free(dpre); rc = dbt_set_error("out of memory"); goto done; }
        dbt_linear_backward(c->mlm_t, d_logits, ns, D, V, w->mlm_decoder, dt, 0, g->mlm_decoder, g->mlm_bias);
        dbt_layernorm_backward(dt, c->mlm_xhat, c->mlm_rstd, w->mlm_ln.gamma, ns, D, dpre, g->mlm_ln.gamma, g->mlm_ln.beta);
        dbt_activation_backward(cf->activation, c->mlm_t_pre, dpre, dpre, (int64_t)ns * D);
        dbt_linear_backward(c->head_in, dpre, ns, D, D, w->mlm_transform.w, dt, 0, g->mlm_transform.w, g->mlm_transform.b);
        for (int32_t i = 0; i < ns; i++) {
            float *row = dx + (int64_t)c->mlm_rows[i] * D;
            for (int k = 0; k < D; k++) row[k] += dt[(int64_t)i * D + k];
        }
        free(dt);
        free(dpre);
        break;
    }
    default:
        break;
    }

    for (int l = cf->n_layers - 1; l >= 0; l--)
        layer_backward(cf, &w->layers[l], &g->layers[l], c, &c->layers[l], dx, t1, t2, t3, dh, scratch);

    /* embeddings: dropout → LayerNorm → scatter into the tables */
    mul_inplace(dx, c->drop0, (int64_t)R * D);
    dbt_layernorm_backward(dx, c->xhat0, c->rstd0, w->ln_emb.gamma, R, D, t1, g->ln_emb.gamma, g->ln_emb.beta);
    for (int32_t r = 0; r < R; r++) {
        const float *d = t1 + (int64_t)r * D;
        float *gw = g->word_emb + (int64_t)c->ids[r] * D, *gp = g->pos_emb + (int64_t)c->pos[r] * D;
        for (int i = 0; i < D; i++) { gw[i] += d[i]; gp[i] += d[i]; }
        if (g->type_emb) {
            float *gt = g->type_emb + (int64_t)c->types[r] * D;
            for (int i = 0; i < D; i++) gt[i] += d[i];
        }
    }
done:
    free(dx);
    free(t1);
    free(t2);
    free(t3);
    free(dh);
    free(scratch);
    free(dcls);
    return rc;
}
