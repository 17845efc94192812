/* forward.c — the encoder and its heads, fp32, on a packed batch.
 *
 * Sequences are laid row after row with no padding (sequence i owns rows row_start[i] ..
 * row_start[i+1]-1), so every Linear runs once over all real tokens and attention runs per
 * sequence over exactly its own tokens: no mask is needed and no work is spent on padding.
 *
 * Activations (one block, allocated per call and freed at its end):
 *   x     R×D   the residual stream; ends as the last hidden state (copied to out->hidden)
 *   q,k,v R×D   attention projections
 *   ctx   R×D   attention output before out_lin
 *   tmp   R×D   a Linear's output before the residual LayerNorm
 *   ffn   R×H   the feed-forward hidden layer
 *   att   T×T   one head's scores (T = the longest sequence)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/error.h"
#include "../kernels/kernels.h"
#include "model_internal.h"

static int g_threads = 0;

void dbt_set_num_threads(int n) {
    if (n < 1) n = 1;
    g_threads = n;
    dbt_gemm_set_threads(n);
}

int dbt_get_num_threads(void) {
    if (g_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        dbt_set_num_threads(n > 0 ? (int)n : 1);
    }
    return g_threads;
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

/* Multi-head self-attention of each sequence over its own rows: ctx = softmax(QKᵀ/√d)V. */
static void attention(const dbt_config *c, int n, const int32_t *row_start, const float *q, const float *k,
                      const float *v, float *ctx, float *att) {
    const int D = c->dim, nh = c->n_heads, dh = D / nh;
    const float scale = 1.0f / sqrtf((float)dh);
    for (int s = 0; s < n; s++) {
        const int64_t r0 = row_start[s];
        const int T = row_start[s + 1] - row_start[s];
        for (int h = 0; h < nh; h++) {
            const float *qh = q + r0 * D + h * dh, *kh = k + r0 * D + h * dh, *vh = v + r0 * D + h * dh;
            dbt_sgemm_nt(T, T, dh, scale, qh, D, kh, D, 0.0f, att, T);
            dbt_softmax_rows(att, T, T, T);
            dbt_sgemm_nn(T, dh, T, 1.0f, att, T, vh, D, 0.0f, ctx + r0 * D + h * dh, D);
        }
    }
}

static void layer_forward(const dbt_config *c, const dbt_layer *L, int n, const int32_t *row_start, float *x,
                          float *q, float *k, float *v, float *ctx, float *tmp, float *ffn, float *att) {
    const int D = c->dim, H = c->hidden_dim;
    const int R = row_start[n];
    dbt_linear_forward(x, R, D, L->q.w, L->q.b, D, q);
    dbt_linear_forward(x, R, D, L->k.w, L->k.b, D, k);
    dbt_linear_forward(x, R, D, L->v.w, L->v.b, D, v);
    attention(c, n, row_start, q, k, v, ctx, att);
    dbt_linear_forward(ctx, R, D, L->o.w, L->o.b, D, tmp);
    dbt_layernorm_forward(tmp, x, R, D, L->ln_attn.gamma, L->ln_attn.beta, c->layer_norm_eps, x);
    /* bias and activation applied as each tile of the product is produced (same bits as apart) */
    dbt_linear_forward_ex(x, R, D, L->ff1.w, NULL, L->ff1.b, H, (int)c->activation, ffn);
    dbt_linear_forward(ffn, R, H, L->ff2.w, L->ff2.b, D, tmp);
    dbt_layernorm_forward(tmp, x, R, D, L->ln_ffn.gamma, L->ln_ffn.beta, c->layer_norm_eps, x);
}

/* MLM logits for the selected rows: decoder(LayerNorm(act(transform(h)))) + bias. */
static int mlm_head(const dbt_model *m, const float *hidden, int32_t R, const uint8_t *rows, float *logits) {
    const dbt_config *c = &m->cfg;
    const dbt_weights *w = &m->w;
    const int D = c->dim, V = c->vocab_size;
    int32_t n_sel = 0;
    for (int32_t r = 0; r < R; r++) n_sel += !rows || rows[r];
    float *sel = malloc((size_t)(n_sel ? n_sel : 1) * D * 2 * sizeof *sel);
    float *logit_sel = malloc((size_t)(n_sel ? n_sel : 1) * V * sizeof *logit_sel);
    if (!sel || !logit_sel) { free(sel); free(logit_sel); return dbt_set_error("out of memory"); }
    float *t = sel + (size_t)n_sel * D;
    for (int32_t r = 0, i = 0; r < R; r++)
        if (!rows || rows[r]) memcpy(sel + (int64_t)i++ * D, hidden + (int64_t)r * D, (size_t)D * sizeof *sel);
    dbt_linear_forward(sel, n_sel, D, w->mlm_transform.w, w->mlm_transform.b, D, t);
    dbt_activation_forward(c->activation, t, (int64_t)n_sel * D);
    dbt_layernorm_forward(t, NULL, n_sel, D, w->mlm_ln.gamma, w->mlm_ln.beta, c->layer_norm_eps, t);
    dbt_linear_forward(t, n_sel, D, w->mlm_decoder, w->mlm_bias, V, logit_sel);
    for (int32_t r = 0, i = 0; r < R; r++)
        if (!rows || rows[r]) memcpy(logits + (int64_t)r * V, logit_sel + (int64_t)i++ * V, (size_t)V * sizeof *logits);
    free(sel);
    free(logit_sel);
    return 0;
}

int dbt_model_forward(dbt_model *m, const dbt_encoding *encs, int n, const dbt_forward_opts *opts,
                      dbt_output *out) {
    memset(out, 0, sizeof *out);
    dbt_forward_opts o = {1, NULL};
    if (opts) o = *opts;
    const dbt_config *c = &m->cfg;
    const dbt_weights *w = &m->w;
    const int D = c->dim, H = c->hidden_dim;
    dbt_get_num_threads(); /* applies the default thread count once */
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

    size_t act = (size_t)R * D * 5 + (size_t)R * H + (size_t)T * T;
    float *block = malloc(act * sizeof *block);
    out->hidden = malloc((size_t)R * D * sizeof *out->hidden);
    if (!block || !out->hidden) { free(block); dbt_output_free(out); return dbt_set_error("out of memory"); }
    float *x = out->hidden, *q = block, *k = q + (size_t)R * D, *v = k + (size_t)R * D, *ctx = v + (size_t)R * D,
          *tmp = ctx + (size_t)R * D, *ffn = tmp + (size_t)R * D, *att = ffn + (size_t)R * H;

    if (embed(m, encs, n, out->row_start, x)) { free(block); dbt_output_free(out); return -1; }
    for (int l = 0; l < c->n_layers; l++)
        layer_forward(c, &w->layers[l], n, out->row_start, x, q, k, v, ctx, tmp, ffn, att);

    /* The first token ([CLS]) of each sequence feeds the pooler and sequence classification. */
    float *cls = tmp;
    for (int s = 0; s < n; s++)
        memcpy(cls + (int64_t)s * D, x + (int64_t)out->row_start[s] * D, (size_t)D * sizeof *cls);
    if (w->pooler.w) {
        out->pooled = malloc((size_t)n * D * sizeof *out->pooled);
        if (!out->pooled) { free(block); dbt_output_free(out); return dbt_set_error("out of memory"); }
        dbt_linear_forward(cls, n, D, w->pooler.w, w->pooler.b, D, out->pooled);
        dbt_activation_forward(DBT_ACT_TANH, out->pooled, (int64_t)n * D);
    }

    int rc = 0;
    dbt_head head = m->info.head;
    if (o.head_logits && head != DBT_HEAD_NONE) {
        int cols = head == DBT_HEAD_MLM ? c->vocab_size : head == DBT_HEAD_QA ? 2 : c->n_labels;
        int64_t rows = head == DBT_HEAD_SEQ_CLS ? n : R;
        out->logits_cols = cols;
        out->logits = calloc((size_t)rows * (size_t)cols, sizeof *out->logits);
        if (!out->logits) { free(block); dbt_output_free(out); return dbt_set_error("out of memory"); }
        switch (head) {
        case DBT_HEAD_MLM:
            rc = mlm_head(m, x, R, o.mlm_rows, out->logits);
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
    free(block);
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
