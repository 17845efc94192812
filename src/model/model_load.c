/* model_load.c — from a Hugging Face folder to dbt_weights: find each tensor under the names
 * transformers uses (with or without the "distilbert."/"bert." prefix, old gamma/beta names),
 * check its shape, widen F16/BF16, tie the MLM decoder to the word embeddings when the file
 * leaves it out, and report what was not used. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/file.h"
#include "../common/rng.h"
#include "../common/strmap.h"
#include "../kernels/kernels.h"
#include "model_internal.h"

static void *own(dbt_model *m, size_t bytes) {
    void **o = realloc(m->owned, ((size_t)m->n_owned + 1) * sizeof *o);
    if (!o) return NULL;
    m->owned = o;
    void *p = calloc(1, bytes ? bytes : 1);
    if (p) m->owned[m->n_owned++] = p;
    return p;
}

static void warn(dbt_model *m, const char *fmt, ...) {
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t old = m->warnings ? strlen(m->warnings) : 0;
    char *w = realloc(m->warnings, old + strlen(line) + 2);
    if (!w) return;
    strcpy(w + old, line);
    strcat(w, "\n");
    m->warnings = w;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalize */
            float f = ldexpf((float)man, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Lists of tensor names in a message: the first NAMES_SHOWN, then how many more. A checkpoint of
 * another model can miss (or add) hundreds of tensors; the count and the first few names are what
 * a reader can use, on one line. */
enum { NAMES_SHOWN = 10 };

static void list_name(char **list, int *n, const char *name) {
    if ((*n)++ >= NAMES_SHOWN) return;
    size_t old = *list ? strlen(*list) : 0;
    char *l = realloc(*list, old + strlen(name) + 3);
    if (!l) return; /* the count stays right; the list is for reading */
    snprintf(l + old, strlen(name) + 3, "%s%s", old ? ", " : "", name);
    *list = l;
}

/* ", ... and K more" when n names did not all fit the list, else "". */
static const char *list_rest(char *buf, size_t cap, int n) {
    if (n <= NAMES_SHOWN) return "";
    snprintf(buf, cap, ", ... and %d more", n - NAMES_SHOWN);
    return buf;
}

/* A size the config implies, and the config key it comes from (NULL: fixed by the architecture),
 * so that a shape error names the key that disagrees with the file. */
typedef struct {
    int64_t n;
    const char *key;
} cfg_size;

static const cfg_size NO_SIZE = {0, NULL}; /* the second size of a 1-D tensor */

/* Finds `name` as transformers would: with the base model's prefix or bare, and for LayerNorms
 * also under the TF-era gamma/beta spellings. */
static dbt_st_tensor *find_tensor(dbt_model *m, const char *name) {
    const char *prefix = m->cfg.arch == DBT_ARCH_DISTILBERT ? "distilbert." : "bert.";
    const char *forms[2] = {name, NULL};
    char legacy[256], full[300];
    size_t n = strlen(name);
    if (n > 16 && !strcmp(name + n - 16, "LayerNorm.weight")) {
        snprintf(legacy, sizeof legacy, "%.*sLayerNorm.gamma", (int)(n - 16), name);
        forms[1] = legacy;
    } else if (n > 14 && !strcmp(name + n - 14, "LayerNorm.bias")) {
        snprintf(legacy, sizeof legacy, "%.*sLayerNorm.beta", (int)(n - 14), name);
        forms[1] = legacy;
    }
    dbt_st_tensor *t = NULL;
    for (int f = 0; f < 2 && !t && forms[f]; f++) {
        snprintf(full, sizeof full, "%s%s", prefix, forms[f]);
        t = dbt_st_find(&m->st, full);
        if (!t) t = dbt_st_find(&m->st, forms[f]);
    }
    return t;
}

/* Notes a missing tensor under the name this checkpoint would give it: the base model's tensors
 * (embeddings, encoder / transformer, pooler) carry "distilbert." or "bert." in a checkpoint
 * saved with a head and nothing in a bare model's; a head's own tensors never do. */
static void note_missing(dbt_model *m, const char *name) {
    const char *prefix = m->cfg.arch == DBT_ARCH_DISTILBERT ? "distilbert." : "bert.";
    static const char *const base[] = {"embeddings.", "encoder.", "transformer.", "pooler."};
    int in_base = 0, prefixed = 0;
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) in_base |= !strncmp(name, base[i], strlen(base[i]));
    for (int i = 0; i < m->st.n_tensors && in_base && !prefixed; i++)
        prefixed = !strncmp(m->st.tensors[i].name, prefix, strlen(prefix));
    char full[320];
    snprintf(full, sizeof full, "%s%s", prefixed ? prefix : "", name);
    list_name(&m->missing, &m->n_missing, full);
}

/* Sets *out to the tensor `name` as F32. One that is missing leaves *out NULL and is noted in
 * m->missing, so that binding goes on and every missing name is reported at once (as
 * transformers lists its missing keys); `optional`: missing is expected, and not noted.
 * Returns -1 (error set) only for a tensor that is there but unusable: misshapen, or of a type
 * that is not a float. */
static int tensor(dbt_model *m, float **out, const char *name, int optional, int ndim, cfg_size d0, cfg_size d1) {
    *out = NULL;
    dbt_st_tensor *t = find_tensor(m, name);
    if (!t) {
        if (!optional) note_missing(m, name);
        return 0;
    }
    if (t->ndim != ndim || t->shape[0] != d0.n || (ndim == 2 && t->shape[1] != d1.n)) {
        char got[96] = "", want[64] = "", keys[96] = "";
        const cfg_size *d[2] = {&d0, &d1};
        for (int k = 0; k < t->ndim; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? ", " : "", (long long)t->shape[k]);
        for (int k = 0; k < ndim; k++) {
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? ", " : "", (long long)d[k]->n);
            if (d[k]->key) snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", k ? " × " : "", d[k]->key);
            else snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%lld", k ? " × " : "", (long long)d[k]->n);
        }
        return dbt_set_error("tensor \"%s\" has shape [%s], the config implies [%s] (%s)", t->name, got, want, keys);
    }
    t->used = 1;
    if (t->dtype == DBT_DT_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = (float *)t->data;
        return 0;
    }
    float *f = own(m, (size_t)t->numel * sizeof(float));
    if (!f) return dbt_set_error("out of memory");
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case DBT_DT_F32:
        memcpy(f, src, (size_t)t->numel * 4);
        break;
    case DBT_DT_F16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            f[i] = half_to_float(h);
        }
        break;
    case DBT_DT_BF16:
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&f[i], &bits, 4);
        }
        break;
    default:
        return dbt_set_error("tensor \"%s\" has dtype %s; weights must be F32, F16 or BF16", t->name, t->dtype_name);
    }
    *out = f;
    return 0;
}

/* `optional`: the layer may be absent as a whole (a checkpoint without a pooler). */
static int linear(dbt_model *m, dbt_linear *l, const char *name, cfg_size n_out, cfg_size n_in, int optional) {
    char wn[200], bn[200];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    l->n_out = (int)n_out.n;
    l->n_in = (int)n_in.n;
    if (tensor(m, &l->w, wn, optional, 2, n_out, n_in)) return -1;
    if (!l->w && optional) return 0;
    return tensor(m, &l->b, bn, 0, 1, n_out, NO_SIZE);
}

/* An encoder Linear (q, k, v, o, ff1, ff2): a float weight as any other, or an I8 one with its
 * per-row scales "<name>.weight_scale" (F32 [n_out]) from a folder dbt_quantize_folder wrote.
 * Those int8 weights are packed for the kernel as stored; the fp32 w (Wq·scale) is made only for
 * what reads fp32 (another compute dtype, training: dbt_linear_dequantize), so that a model run in
 * int8 holds a quarter of the memory. */
static int encoder_linear(dbt_model *m, dbt_linear *l, const char *name, cfg_size out, cfg_size in) {
    const int n_out = (int)out.n, n_in = (int)in.n;
    char wn[200], sn[220], bn[200];
    snprintf(wn, sizeof wn, "%s.weight", name);
    dbt_st_tensor *t = find_tensor(m, wn);
    if (!t || t->dtype != DBT_DT_I8) return linear(m, l, name, out, in, 0);
    if (t->ndim != 2 || t->shape[0] != n_out || t->shape[1] != n_in)
        return dbt_set_error("int8 tensor \"%s\" has %d dimensions (%lld × %lld); the config implies [%d, %d]", t->name,
                             t->ndim, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), n_out, n_in);
    snprintf(sn, sizeof sn, "%s.weight_scale", name);
    dbt_st_tensor *s = find_tensor(m, sn);
    if (!s) return dbt_set_error("int8 tensor \"%s\" has no scales: \"%s\" (F32 [%d]) is missing", t->name, sn, n_out);
    if (s->dtype != DBT_DT_F32 || s->ndim != 1 || s->shape[0] != n_out)
        return dbt_set_error("the scales \"%s\" must be F32 [%d] (one per output row), not %s with %d dimensions", s->name,
                             n_out, s->dtype_name, s->ndim);
    float *scale = own(m, (size_t)n_out * sizeof *scale);
    if (!scale) return dbt_set_error("out of memory");
    memcpy(scale, s->data, (size_t)n_out * sizeof *scale); /* the mapping need not be aligned */
    for (int j = 0; j < n_out; j++)
        if (!isfinite(scale[j]) || !(scale[j] > 0.0f))
            return dbt_set_error("the scales \"%s\" must be finite and positive; row %d has %g", s->name, j, (double)scale[j]);
    const int8_t *q = t->data;
    l->w = NULL;
    l->q8 = q;
    l->q8_scale = scale;
    if (!(l->i8 = dbt_int8_pack(q, scale, n_out, n_in)))
        return dbt_set_error(n_in > 32768 ? "int8 tensor \"%s\": more than 32768 inputs overflow the int32 sums"
                                          : "out of memory (%s)", t->name);
    t->used = s->used = 1;
    l->n_out = n_out;
    l->n_in = n_in;
    l->i8_from_file = 1; /* run in int8 by dbt_model_load (training loads keep fp32: w changes) */
    snprintf(bn, sizeof bn, "%s.bias", name);
    return tensor(m, &l->b, bn, 0, 1, out, NO_SIZE);
}

/* A folder with int8 Linear weights (run in INT8 by dbt_model_load): all six of every layer must
 * be int8 (and then config.json must say so), or none (and then config.json must not claim int8). */
static int check_quantized(dbt_model *m) {
    int n_i8 = 0, total = 6 * m->cfg.n_layers;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const dbt_layer *L = &m->w.layers[l];
        n_i8 += L->q.i8_from_file + L->k.i8_from_file + L->v.i8_from_file + L->o.i8_from_file + L->ff1.i8_from_file +
                L->ff2.i8_from_file;
    }
    int claims = 0;
    cJSON *j = m->cfg.raw_json ? cJSON_Parse(m->cfg.raw_json) : NULL;
    const cJSON *qc = j ? cJSON_GetObjectItemCaseSensitive(j, "quantization_config") : NULL;
    const cJSON *meth = qc ? cJSON_GetObjectItemCaseSensitive(qc, "quant_method") : NULL;
    const cJSON *dt = qc ? cJSON_GetObjectItemCaseSensitive(qc, "dtype") : NULL;
    if (cJSON_IsString(meth) && !strcmp(meth->valuestring, "distilbert.c")) {
        if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "int8")) {
            cJSON_Delete(j);
            return dbt_set_error("config.json: quantization_config \"distilbert.c\" needs \"dtype\": \"int8\"");
        }
        claims = 1;
    }
    cJSON_Delete(j);
    if (n_i8 != 0 && n_i8 != total)
        return dbt_set_error("inconsistent quantized checkpoint: %d of the %d encoder Linear weights are I8 (all or none)",
                             n_i8, total);
    if (claims && n_i8 == 0)
        return dbt_set_error("config.json says the model is quantized to int8, but its Linear weights are not I8");
    if (n_i8 && !claims)
        return dbt_set_error("the checkpoint has I8 Linear weights but config.json has no quantization_config "
                             "{\"quant_method\": \"distilbert.c\", \"dtype\": \"int8\"}");
    return 0;
}

/* A head tensor that the checkpoint lacks, created as transformers' _init_weights does. */
static float *fresh(dbt_model *m, dbt_rng *rng, const char *name, int64_t numel, float value, int normal) {
    float *p = own(m, (size_t)numel * sizeof *p);
    if (!p) { dbt_set_error("out of memory"); return NULL; }
    for (int64_t i = 0; i < numel; i++) p[i] = normal ? m->cfg.initializer_range * dbt_rng_normal(rng) : value;
    warn(m, "newly initialized (not in the checkpoint): %s", name);
    return p;
}

static int head_linear(dbt_model *m, dbt_linear *l, const char *name, cfg_size n_out, cfg_size n_in) {
    char wn[200], bn[200];
    snprintf(wn, sizeof wn, "%s.weight", name);
    if (!m->init_head || find_tensor(m, wn)) return linear(m, l, name, n_out, n_in, 0);
    dbt_rng rng;
    dbt_rng_seed(&rng, m->init_seed ^ dbt_strmap_hash(name, strlen(name)));
    snprintf(bn, sizeof bn, "%s.bias", name);
    l->n_out = (int)n_out.n;
    l->n_in = (int)n_in.n;
    l->w = fresh(m, &rng, wn, n_out.n * n_in.n, 0, 1);
    l->b = l->w ? fresh(m, &rng, bn, n_out.n, 0, 0) : NULL;
    return l->b ? 0 : -1;
}

static int layernorm(dbt_model *m, dbt_layernorm *ln, const char *name, cfg_size n) {
    char wn[200], bn[200];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    ln->n = (int)n.n;
    return tensor(m, &ln->gamma, wn, 0, 1, n, NO_SIZE) || tensor(m, &ln->beta, bn, 0, 1, n, NO_SIZE) ? -1 : 0;
}

static int head_layernorm(dbt_model *m, dbt_layernorm *ln, const char *name, cfg_size n) {
    char wn[200], bn[200];
    snprintf(wn, sizeof wn, "%s.weight", name);
    if (!m->init_head || find_tensor(m, wn)) return layernorm(m, ln, name, n);
    snprintf(bn, sizeof bn, "%s.bias", name);
    ln->n = (int)n.n;
    ln->gamma = fresh(m, NULL, wn, n.n, 1.0f, 0);
    ln->beta = ln->gamma ? fresh(m, NULL, bn, n.n, 0.0f, 0) : NULL;
    return ln->beta ? 0 : -1;
}

/* DistilBERT's fixed sinusoidal table: even columns sin(pos/10000^(j/dim)), odd columns cos. */
static float *sinusoidal(dbt_model *m, int n_pos, int dim) {
    float *p = own(m, (size_t)n_pos * (size_t)dim * sizeof *p);
    if (!p) return NULL;
    for (int pos = 0; pos < n_pos; pos++)
        for (int j = 0; j < dim; j++) {
            double angle = pos / pow(10000.0, 2.0 * (j / 2) / dim);
            p[(int64_t)pos * dim + j] = (float)(j % 2 ? cos(angle) : sin(angle));
        }
    return p;
}

/* Binding returns -1 only for a tensor that is there but unusable (tensor()); missing ones are
 * noted in m->missing as it goes, and dbt_model_load_for_training reports them together. */
static int bind_distilbert(dbt_model *m, dbt_head head) {
    const dbt_config *c = &m->cfg;
    dbt_weights *w = &m->w;
    const cfg_size V = {c->vocab_size, "vocab_size"}, D = {c->dim, "dim"}, H = {c->hidden_dim, "hidden_dim"},
                   P = {c->max_position_embeddings, "max_position_embeddings"}, LABELS = {c->n_labels, "num_labels"},
                   SPAN = {2, NULL} /* start, end */;
    if (tensor(m, &w->word_emb, "embeddings.word_embeddings.weight", 0, 2, V, D) ||
        tensor(m, &w->pos_emb, "embeddings.position_embeddings.weight", c->sinusoidal_pos_embds, 2, P, D))
        return -1;
    if (!w->pos_emb && c->sinusoidal_pos_embds && !(w->pos_emb = sinusoidal(m, c->max_position_embeddings, c->dim)))
        return dbt_set_error("out of memory");
    if (layernorm(m, &w->ln_emb, "embeddings.LayerNorm", D)) return -1;
    for (int l = 0; l < c->n_layers; l++) {
        dbt_layer *L = &w->layers[l];
        char p[128], n[160];
#define NAME(s) (snprintf(n, sizeof n, "%s.%s", p, s), n)
        snprintf(p, sizeof p, "transformer.layer.%d", l);
        if (encoder_linear(m, &L->q, NAME("attention.q_lin"), D, D) || encoder_linear(m, &L->k, NAME("attention.k_lin"), D, D) ||
            encoder_linear(m, &L->v, NAME("attention.v_lin"), D, D) || encoder_linear(m, &L->o, NAME("attention.out_lin"), D, D) ||
            layernorm(m, &L->ln_attn, NAME("sa_layer_norm"), D) || encoder_linear(m, &L->ff1, NAME("ffn.lin1"), H, D) ||
            encoder_linear(m, &L->ff2, NAME("ffn.lin2"), D, H) || layernorm(m, &L->ln_ffn, NAME("output_layer_norm"), D))
            return -1;
#undef NAME
    }
    switch (head) {
    case DBT_HEAD_MLM:
        if (head_linear(m, &w->mlm_transform, "vocab_transform", D, D) || head_layernorm(m, &w->mlm_ln, "vocab_layer_norm", D) ||
            tensor(m, &w->mlm_decoder, "vocab_projector.weight", 1, 2, V, D) ||
            tensor(m, &w->mlm_bias, "vocab_projector.bias", m->init_head, 1, V, NO_SIZE))
            return -1;
        if (!w->mlm_decoder) w->mlm_decoder = w->word_emb; /* tie_word_embeddings */
        if (!w->mlm_bias && m->init_head && !(w->mlm_bias = fresh(m, NULL, "vocab_projector.bias", c->vocab_size, 0, 0)))
            return -1;
        break;
    case DBT_HEAD_SEQ_CLS:
        if (head_linear(m, &w->pre_classifier, "pre_classifier", D, D) || head_linear(m, &w->classifier, "classifier", LABELS, D))
            return -1;
        break;
    case DBT_HEAD_TOKEN_CLS:
        if (head_linear(m, &w->classifier, "classifier", LABELS, D)) return -1;
        break;
    case DBT_HEAD_QA:
        if (head_linear(m, &w->qa, "qa_outputs", SPAN, D)) return -1;
        break;
    default:
        break;
    }
    return 0;
}

static int bind_bert(dbt_model *m, dbt_head head) {
    const dbt_config *c = &m->cfg;
    dbt_weights *w = &m->w;
    const cfg_size V = {c->vocab_size, "vocab_size"}, D = {c->dim, "hidden_size"}, H = {c->hidden_dim, "intermediate_size"},
                   P = {c->max_position_embeddings, "max_position_embeddings"}, T = {c->type_vocab_size, "type_vocab_size"},
                   LABELS = {c->n_labels, "num_labels"}, SPAN = {2, NULL} /* start, end */;
    if (tensor(m, &w->word_emb, "embeddings.word_embeddings.weight", 0, 2, V, D) ||
        tensor(m, &w->pos_emb, "embeddings.position_embeddings.weight", 0, 2, P, D) ||
        (c->type_vocab_size > 0 && tensor(m, &w->type_emb, "embeddings.token_type_embeddings.weight", 0, 2, T, D)) ||
        layernorm(m, &w->ln_emb, "embeddings.LayerNorm", D))
        return -1;
    for (int l = 0; l < c->n_layers; l++) {
        dbt_layer *L = &w->layers[l];
        char p[128], n[160];
#define NAME(s) (snprintf(n, sizeof n, "%s.%s", p, s), n)
        snprintf(p, sizeof p, "encoder.layer.%d", l);
        if (encoder_linear(m, &L->q, NAME("attention.self.query"), D, D) ||
            encoder_linear(m, &L->k, NAME("attention.self.key"), D, D) ||
            encoder_linear(m, &L->v, NAME("attention.self.value"), D, D) ||
            encoder_linear(m, &L->o, NAME("attention.output.dense"), D, D) ||
            layernorm(m, &L->ln_attn, NAME("attention.output.LayerNorm"), D) ||
            encoder_linear(m, &L->ff1, NAME("intermediate.dense"), H, D) ||
            encoder_linear(m, &L->ff2, NAME("output.dense"), D, H) || layernorm(m, &L->ln_ffn, NAME("output.LayerNorm"), D))
            return -1;
#undef NAME
    }
    /* The pooler exists in BertModel and BertForSequenceClassification only. */
    if (head == DBT_HEAD_NONE || head == DBT_HEAD_SEQ_CLS) {
        if (head == DBT_HEAD_NONE ? linear(m, &w->pooler, "pooler.dense", D, D, 1) : head_linear(m, &w->pooler, "pooler.dense", D, D))
            return -1;
    }
    float *decoder_bias;
    switch (head) {
    case DBT_HEAD_MLM:
        if (head_linear(m, &w->mlm_transform, "cls.predictions.transform.dense", D, D) ||
            head_layernorm(m, &w->mlm_ln, "cls.predictions.transform.LayerNorm", D) ||
            tensor(m, &w->mlm_decoder, "cls.predictions.decoder.weight", 1, 2, V, D) ||
            tensor(m, &w->mlm_bias, "cls.predictions.bias", m->init_head, 1, V, NO_SIZE) ||
            tensor(m, &decoder_bias, "cls.predictions.decoder.bias", 1, 1, V, NO_SIZE)) /* tied to the bias: checked, used */
            return -1;
        if (!w->mlm_decoder) w->mlm_decoder = w->word_emb; /* tie_word_embeddings */
        if (!w->mlm_bias && m->init_head && !(w->mlm_bias = fresh(m, NULL, "cls.predictions.bias", c->vocab_size, 0, 0)))
            return -1;
        break;
    case DBT_HEAD_SEQ_CLS:
        if (head_linear(m, &w->classifier, "classifier", LABELS, D)) return -1;
        break;
    case DBT_HEAD_TOKEN_CLS:
        if (head_linear(m, &w->classifier, "classifier", LABELS, D)) return -1;
        break;
    case DBT_HEAD_QA:
        if (head_linear(m, &w->qa, "qa_outputs", SPAN, D)) return -1;
        break;
    default:
        break;
    }
    return 0;
}

static const char *head_name(dbt_head h) {
    switch (h) {
    case DBT_HEAD_MLM: return "masked-LM";
    case DBT_HEAD_SEQ_CLS: return "sequence classification";
    case DBT_HEAD_TOKEN_CLS: return "token classification";
    case DBT_HEAD_QA: return "question answering";
    default: return "none";
    }
}

static int64_t count_params(const dbt_model *m) {
    const dbt_config *c = &m->cfg;
    const dbt_weights *w = &m->w;
    int64_t D = c->dim, H = c->hidden_dim;
    int64_t n = (int64_t)c->vocab_size * D + (int64_t)c->max_position_embeddings * D + 2 * D;
    if (w->type_emb) n += (int64_t)c->type_vocab_size * D;
    n += (int64_t)c->n_layers * (4 * (D * D + D) + 2 * (H * D) + H + D + 4 * D);
    if (w->pooler.w) n += D * D + D;
    if (w->mlm_transform.w) {
        n += D * D + D + 2 * D + c->vocab_size;
        if (w->mlm_decoder != w->word_emb) n += (int64_t)c->vocab_size * D;
    }
    if (w->pre_classifier.w) n += D * D + D;
    if (w->classifier.w) n += (int64_t)c->n_labels * D + c->n_labels;
    if (w->qa.w) n += 2 * D + 2;
    return n;
}

static dbt_model *load(const char *dir, dbt_head head, int n_labels, const char *const *labels, int init_head,
                       uint64_t seed, int inference);

dbt_model *dbt_model_load(const char *dir, dbt_head head) {
    dbt_model *m = load(dir, head, 0, NULL, 0, 0, 1);
    if (m) m->frozen = 1; /* no API changes its weights: forward may keep packed copies */
    /* a folder written by dbt_quantize_folder(..., "int8") runs in int8 (its stored weights) */
    if (m && m->cfg.n_layers > 0 && m->w.layers[0].q.i8_from_file && dbt_model_set_dtype(m, DBT_DTYPE_INT8)) {
        dbt_model_free(m);
        return NULL;
    }
    return m;
}

dbt_model *dbt_model_load_for_training(const char *dir, dbt_head head, int n_labels, const char *const *labels,
                                       int init_head, uint64_t seed) {
    return load(dir, head, n_labels, labels, init_head, seed, 0);
}

static dbt_model *load(const char *dir, dbt_head head, int n_labels, const char *const *labels, int init_head,
                       uint64_t seed, int inference) {
    dbt_model *m = calloc(1, sizeof *m);
    if (!m) { dbt_set_error("out of memory"); return NULL; }
    char path[4096];
    if (!dbt_is_dir(dir)) { dbt_set_error("%s is not a folder", dir); free(m); return NULL; }
    if (dbt_config_load(&m->cfg, dbt_path_join(path, sizeof path, dir, "config.json"))) { free(m); return NULL; }
    dbt_config *c = &m->cfg;
    m->init_head = init_head;
    m->init_seed = seed;
    if (n_labels > 0 && dbt_config_set_labels(c, n_labels, labels)) { dbt_model_free(m); return NULL; }
    if (head == DBT_HEAD_AUTO) head = c->head;
    if (!(m->dir = strdup(dir))) { dbt_set_error("out of memory"); goto fail; }
    if (dbt_st_open_dir(&m->st, dir)) goto fail;
    m->w.layers = calloc((size_t)c->n_layers, sizeof *m->w.layers);
    if (!m->w.layers) { dbt_set_error("out of memory"); goto fail; }
    int bound = c->arch == DBT_ARCH_DISTILBERT ? bind_distilbert(m, head) : bind_bert(m, head);
    char rest[64];
    if (bound == 0 && m->n_missing)
        bound = dbt_set_error("the checkpoint is missing %d tensor%s the config needs: %s%s", m->n_missing,
                              m->n_missing == 1 ? "" : "s", m->missing ? m->missing : "",
                              list_rest(rest, sizeof rest, m->n_missing));
    if (bound) {
        dbt_prefix_error("%s: cannot load the %s model with a %s head", dir,
                         c->arch == DBT_ARCH_DISTILBERT ? "DistilBERT" : "BERT", head_name(head));
        goto fail;
    }
    if (check_quantized(m)) { dbt_prefix_error("%s", dir); goto fail; }
    /* training changes w: an int8 folder trains from its dequantized weights */
    if (!inference && dbt_model_dequantize(m)) goto fail;
    /* What the checkpoint has and the model does not use, as transformers reports it: one line. */
    char *unused = NULL;
    int n_unused = 0;
    for (int i = 0; i < m->st.n_tensors; i++) {
        const char *n = m->st.tensors[i].name;
        if (!m->st.tensors[i].used && !strstr(n, "position_ids")) list_name(&unused, &n_unused, n);
    }
    if (n_unused)
        warn(m, "the checkpoint has %d tensor%s the model does not use: %s%s", n_unused, n_unused == 1 ? "" : "s",
             unused ? unused : "", list_rest(rest, sizeof rest, n_unused));
    free(unused);

    if (dbt_file_exists(dbt_path_join(path, sizeof path, dir, "tokenizer.json")) ||
        dbt_file_exists(dbt_path_join(path, sizeof path, dir, "vocab.txt"))) {
        m->tok = dbt_tokenizer_load(dir, NULL);
        if (!m->tok) goto fail;
        /* transformers loads such a pair and fails at the first id past the embedding table
         * (an IndexError in the forward pass); refusing it here says why. */
        if (dbt_tokenizer_vocab_size(m->tok) > c->vocab_size) {
            dbt_set_error("%s: the tokenizer has %d tokens but the model's vocab_size is %d (ids %d and up have no "
                          "embedding)", dir, dbt_tokenizer_vocab_size(m->tok), c->vocab_size, c->vocab_size);
            goto fail;
        }
    }
    dbt_model_info *info = &m->info;
    info->arch = c->arch;
    info->head = head;
    info->vocab_size = c->vocab_size;
    info->dim = c->dim;
    info->n_layers = c->n_layers;
    info->n_heads = c->n_heads;
    info->hidden_dim = c->hidden_dim;
    info->max_position_embeddings = c->max_position_embeddings;
    info->type_vocab_size = c->type_vocab_size;
    info->activation = c->activation;
    info->layer_norm_eps = c->layer_norm_eps;
    info->n_labels = c->n_labels;
    info->id2label = (const char *const *)c->id2label;
    info->problem_type = c->problem_type;
    info->architecture = c->architecture;
    info->n_params = count_params(m);
    info->dtype = DBT_DTYPE_FP32;
    return m;
fail:
    dbt_model_free(m);
    return NULL;
}

void dbt_model_free(dbt_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    dbt_model_free_lowp(m);
    free(m->w.layers);
    dbt_st_close(&m->st);
    dbt_config_free(&m->cfg);
    dbt_tokenizer_free(m->tok);
    free(m->warnings);
    free(m->missing);
    free(m->dir);
    free(m->arena);
    dbt_packed_set_free(m->packed);
    free(m);
}

const dbt_model_info *dbt_model_get_info(const dbt_model *m) { return &m->info; }
const dbt_tokenizer *dbt_model_tokenizer(const dbt_model *m) { return m->tok; }
const char *dbt_model_warnings(const dbt_model *m) { return m->warnings ? m->warnings : ""; }
