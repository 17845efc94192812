/* params.c — one walk over the weight structs names every tensor once; everything that needs the
 * list (materializing, gradients, saving, weight-decay groups) is built from it. */
#include "params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../kernels/threadpool.h"

typedef void (*visit_fn)(void *ctx, const char *name, float **w, float **g, int ndim, int64_t d0, int64_t d1,
                         int decay);

static void linear(void *ctx, visit_fn f, const char *name, dbt_linear *w, dbt_linear *g) {
    char n[160];
    if (!w->w) return;
    snprintf(n, sizeof n, "%s.weight", name);
    f(ctx, n, &w->w, g ? &g->w : NULL, 2, w->n_out, w->n_in, 1);
    if (w->b) {
        snprintf(n, sizeof n, "%s.bias", name);
        f(ctx, n, &w->b, g ? &g->b : NULL, 1, w->n_out, 0, 0);
    }
}

static void layernorm(void *ctx, visit_fn f, const char *name, dbt_layernorm *w, dbt_layernorm *g) {
    char n[160];
    snprintf(n, sizeof n, "%s.weight", name);
    f(ctx, n, &w->gamma, g ? &g->gamma : NULL, 1, w->n, 0, 0);
    snprintf(n, sizeof n, "%s.bias", name);
    f(ctx, n, &w->beta, g ? &g->beta : NULL, 1, w->n, 0, 0);
}

/* Visits every trainable tensor of the model (w) with its twin in g (NULL: none), in a fixed
 * order, under the names transformers gives them for this architecture and head. */
static void walk(const dbt_model *m, dbt_weights *w, dbt_weights *g, void *ctx, visit_fn f) {
    const dbt_config *c = &m->cfg;
    const dbt_head head = m->info.head;
    const int distil = c->arch == DBT_ARCH_DISTILBERT;
    const char *base = head == DBT_HEAD_NONE ? "" : distil ? "distilbert." : "bert.";
    const int D = c->dim;
    const int tied = w->mlm_decoder == w->word_emb; /* decided before any field is rebound */
    char n[160], p[128];
    snprintf(n, sizeof n, "%sembeddings.word_embeddings.weight", base);
    f(ctx, n, &w->word_emb, g ? &g->word_emb : NULL, 2, c->vocab_size, D, 1);
    snprintf(n, sizeof n, "%sembeddings.position_embeddings.weight", base);
    f(ctx, n, &w->pos_emb, g ? &g->pos_emb : NULL, 2, c->max_position_embeddings, D, 1);
    if (w->type_emb) {
        snprintf(n, sizeof n, "%sembeddings.token_type_embeddings.weight", base);
        f(ctx, n, &w->type_emb, g ? &g->type_emb : NULL, 2, c->type_vocab_size, D, 1);
    }
    snprintf(n, sizeof n, "%sembeddings.LayerNorm", base);
    layernorm(ctx, f, n, &w->ln_emb, g ? &g->ln_emb : NULL);
    for (int l = 0; l < c->n_layers; l++) {
        dbt_layer *L = &w->layers[l], *G = g ? &g->layers[l] : NULL;
#define SUB(s) (snprintf(n, sizeof n, "%s%s", p, s), n)
        if (distil) {
            snprintf(p, sizeof p, "%stransformer.layer.%d.", base, l);
            linear(ctx, f, SUB("attention.q_lin"), &L->q, G ? &G->q : NULL);
            linear(ctx, f, SUB("attention.k_lin"), &L->k, G ? &G->k : NULL);
            linear(ctx, f, SUB("attention.v_lin"), &L->v, G ? &G->v : NULL);
            linear(ctx, f, SUB("attention.out_lin"), &L->o, G ? &G->o : NULL);
            layernorm(ctx, f, SUB("sa_layer_norm"), &L->ln_attn, G ? &G->ln_attn : NULL);
            linear(ctx, f, SUB("ffn.lin1"), &L->ff1, G ? &G->ff1 : NULL);
            linear(ctx, f, SUB("ffn.lin2"), &L->ff2, G ? &G->ff2 : NULL);
            layernorm(ctx, f, SUB("output_layer_norm"), &L->ln_ffn, G ? &G->ln_ffn : NULL);
        } else {
            snprintf(p, sizeof p, "%sencoder.layer.%d.", base, l);
            linear(ctx, f, SUB("attention.self.query"), &L->q, G ? &G->q : NULL);
            linear(ctx, f, SUB("attention.self.key"), &L->k, G ? &G->k : NULL);
            linear(ctx, f, SUB("attention.self.value"), &L->v, G ? &G->v : NULL);
            linear(ctx, f, SUB("attention.output.dense"), &L->o, G ? &G->o : NULL);
            layernorm(ctx, f, SUB("attention.output.LayerNorm"), &L->ln_attn, G ? &G->ln_attn : NULL);
            linear(ctx, f, SUB("intermediate.dense"), &L->ff1, G ? &G->ff1 : NULL);
            linear(ctx, f, SUB("output.dense"), &L->ff2, G ? &G->ff2 : NULL);
            layernorm(ctx, f, SUB("output.LayerNorm"), &L->ln_ffn, G ? &G->ln_ffn : NULL);
        }
#undef SUB
    }
    if (w->pooler.w) {
        snprintf(n, sizeof n, "%spooler.dense", base);
        linear(ctx, f, n, &w->pooler, g ? &g->pooler : NULL);
    }
    switch (head) {
    case DBT_HEAD_MLM:
        linear(ctx, f, distil ? "vocab_transform" : "cls.predictions.transform.dense", &w->mlm_transform,
               g ? &g->mlm_transform : NULL);
        layernorm(ctx, f, distil ? "vocab_layer_norm" : "cls.predictions.transform.LayerNorm", &w->mlm_ln,
                  g ? &g->mlm_ln : NULL);
        if (!tied) /* untied checkpoints keep their own decoder */
            f(ctx, distil ? "vocab_projector.weight" : "cls.predictions.decoder.weight", &w->mlm_decoder,
              g ? &g->mlm_decoder : NULL, 2, c->vocab_size, D, 1);
        f(ctx, distil ? "vocab_projector.bias" : "cls.predictions.bias", &w->mlm_bias, g ? &g->mlm_bias : NULL, 1,
          c->vocab_size, 0, 0);
        break;
    case DBT_HEAD_SEQ_CLS:
        if (distil) linear(ctx, f, "pre_classifier", &w->pre_classifier, g ? &g->pre_classifier : NULL);
        linear(ctx, f, "classifier", &w->classifier, g ? &g->classifier : NULL);
        break;
    case DBT_HEAD_TOKEN_CLS:
        linear(ctx, f, "classifier", &w->classifier, g ? &g->classifier : NULL);
        break;
    case DBT_HEAD_QA:
        linear(ctx, f, "qa_outputs", &w->qa, g ? &g->qa : NULL);
        break;
    default:
        break;
    }
}

typedef struct {
    dbt_params *p;
    int oom;
} build_ctx;

static void count_visit(void *ctx, const char *name, float **w, float **g, int ndim, int64_t d0, int64_t d1,
                        int decay) {
    build_ctx *b = ctx;
    dbt_params *p = b->p;
    dbt_param *l = realloc(p->list, ((size_t)p->n + 1) * sizeof *l);
    if (!l) { b->oom = 1; return; }
    p->list = l;
    dbt_param *x = &l[p->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->ndim = ndim;
    x->shape[0] = d0;
    x->shape[1] = d1;
    x->numel = ndim == 2 ? d0 * d1 : d0;
    x->offset = p->total;
    x->decay = decay;
    p->total += (x->numel + 15) / 16 * 16; /* 64-byte aligned tensors */
    (void)w;
    (void)g;
}

typedef struct {
    dbt_params *p;
    int i;
} bind_ctx;

static void bind_visit(void *ctx, const char *name, float **w, float **g, int ndim, int64_t d0, int64_t d1,
                       int decay) {
    bind_ctx *b = ctx;
    dbt_param *x = &b->p->list[b->i++];
    memcpy(b->p->data + x->offset, *w, (size_t)x->numel * sizeof(float));
    *w = b->p->data + x->offset;
    if (g) *g = b->p->grad + x->offset;
    (void)name; (void)ndim; (void)d0; (void)d1; (void)decay;
}

int dbt_params_init(dbt_params *p, dbt_model *m) {
    memset(p, 0, sizeof *p);
    build_ctx bc = {p, 0};
    walk(m, &m->w, NULL, &bc, count_visit);
    if (bc.oom) { dbt_params_free(p); return dbt_set_error("out of memory"); }
    p->data = aligned_alloc(64, (size_t)p->total * sizeof(float));
    p->grad = aligned_alloc(64, (size_t)p->total * sizeof(float));
    p->g_layers = calloc((size_t)m->cfg.n_layers, sizeof *p->g_layers);
    if (!p->data || !p->grad || !p->g_layers) { dbt_params_free(p); return dbt_set_error("out of memory"); }
    memset(p->data, 0, (size_t)p->total * sizeof(float));
    memset(p->grad, 0, (size_t)p->total * sizeof(float));
    memset(&p->g, 0, sizeof p->g);
    p->g.layers = p->g_layers;
    int tied = m->w.mlm_decoder && m->w.mlm_decoder == m->w.word_emb;
    bind_ctx bi = {p, 0};
    walk(m, &m->w, &p->g, &bi, bind_visit);
    if (tied) { /* the decoder is the word embedding matrix: same weights, same gradient */
        m->w.mlm_decoder = m->w.word_emb;
        p->g.mlm_decoder = p->g.word_emb;
    }
    return 0;
}

void dbt_params_free(dbt_params *p) {
    free(p->data);
    free(p->grad);
    free(p->list);
    free(p->g_layers);
    memset(p, 0, sizeof *p);
}

/* Zeroing ~100 MB (a base model) is memory-bound: each pool thread clears its share. */
static void zero_part(void *arg, int t, int nt) {
    const dbt_params *p = arg;
    const int64_t per = (p->total + nt - 1) / nt, i0 = (int64_t)t * per;
    if (i0 < p->total) memset(p->grad + i0, 0, (size_t)(p->total - i0 < per ? p->total - i0 : per) * sizeof(float));
}

void dbt_params_zero_grad(dbt_params *p) { dbt_pool_run(zero_part, p, dbt_pool_threads()); }

const char *dbt_architecture_name(dbt_arch arch, dbt_head head) {
    static const char *const names[2][5] = {
        {"DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
         "DistilBertForTokenClassification", "DistilBertForQuestionAnswering"},
        {"BertModel", "BertForMaskedLM", "BertForSequenceClassification", "BertForTokenClassification",
         "BertForQuestionAnswering"}};
    int h = head < 0 || head > DBT_HEAD_QA ? 0 : (int)head;
    return names[arch == DBT_ARCH_BERT][h];
}
