/* student_init.c — making a masked-LM model folder before training: a DistilBERT student from
 * the teacher's layers (as extract_distilbert.py does), or random weights (as transformers'
 * _init_weights makes them). The folder is an ordinary Hugging Face one, so training then
 * starts by loading it like any other model. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/error.h"
#include "../common/file.h"
#include "../model/config.h"
#include "../model/safetensors.h"
#include "distill.h"
#include "params.h"

void dbt_layer_map_default(int n_teacher, int n_student, int *map) {
    for (int i = 0; i < n_student; i++)
        map[i] = n_student == 1 ? 0 : (int)floor((double)i * (n_teacher - 1) / (n_student - 1) + 0.5);
}

/* ---- random weights ----------------------------------------------------------------------- */

typedef struct {
    float *next;
    dbt_rng rng;
    float std;
} init_cursor;

static float *take_normal(init_cursor *c, int64_t n) {
    float *p = c->next;
    for (int64_t i = 0; i < n; i++) p[i] = c->std * dbt_rng_normal(&c->rng);
    c->next += n;
    return p;
}

static float *take_const(init_cursor *c, int64_t n, float v) {
    float *p = c->next;
    for (int64_t i = 0; i < n; i++) p[i] = v;
    c->next += n;
    return p;
}

static void init_linear(init_cursor *c, dbt_linear *l, int n_out, int n_in) {
    l->n_out = n_out;
    l->n_in = n_in;
    l->w = take_normal(c, (int64_t)n_out * n_in);
    l->b = take_const(c, n_out, 0.0f);
}

static void init_layernorm(init_cursor *c, dbt_layernorm *ln, int n) {
    ln->n = n;
    ln->gamma = take_const(c, n, 1.0f);
    ln->beta = take_const(c, n, 0.0f);
}

int dbt_init_random_weights(const dbt_config *cf, uint64_t seed, dbt_weights *w, float **storage) {
    const int64_t V = cf->vocab_size, D = cf->dim, H = cf->hidden_dim, P = cf->max_position_embeddings;
    const int64_t TV = cf->arch == DBT_ARCH_BERT ? cf->type_vocab_size : 0;
    const int64_t per_layer = 4 * (D * D + D) + 2 * (H * D) + H + D + 4 * D;
    const int64_t total = (V + P + TV) * D + 2 * D + cf->n_layers * per_layer + D * D + D + 2 * D + V;
    memset(w, 0, sizeof *w);
    *storage = malloc((size_t)total * sizeof(float));
    w->layers = calloc((size_t)cf->n_layers, sizeof *w->layers);
    if (!*storage || !w->layers) {
        free(*storage);
        free(w->layers);
        *storage = NULL;
        w->layers = NULL;
        return dbt_set_error("out of memory");
    }
    init_cursor c = {*storage, {{0}}, cf->initializer_range};
    dbt_rng_seed(&c.rng, seed);
    w->word_emb = take_normal(&c, V * D);
    if (cf->pad_token_id >= 0 && cf->pad_token_id < V) /* nn.Embedding(padding_idx): a zero row */
        memset(w->word_emb + (int64_t)cf->pad_token_id * D, 0, (size_t)D * sizeof(float));
    w->pos_emb = take_normal(&c, P * D);
    if (TV) w->type_emb = take_normal(&c, TV * D);
    init_layernorm(&c, &w->ln_emb, (int)D);
    for (int l = 0; l < cf->n_layers; l++) {
        dbt_layer *L = &w->layers[l];
        init_linear(&c, &L->q, (int)D, (int)D);
        init_linear(&c, &L->k, (int)D, (int)D);
        init_linear(&c, &L->v, (int)D, (int)D);
        init_linear(&c, &L->o, (int)D, (int)D);
        init_layernorm(&c, &L->ln_attn, (int)D);
        init_linear(&c, &L->ff1, (int)H, (int)D);
        init_linear(&c, &L->ff2, (int)D, (int)H);
        init_layernorm(&c, &L->ln_ffn, (int)D);
    }
    init_linear(&c, &w->mlm_transform, (int)D, (int)D);
    init_layernorm(&c, &w->mlm_ln, (int)D);
    w->mlm_decoder = w->word_emb; /* tie_word_embeddings */
    w->mlm_bias = take_const(&c, V, 0.0f);
    return 0;
}

void dbt_student_from_teacher(const dbt_weights *t, const int *map, int n_layers, dbt_weights *s) {
    const int tied = s->mlm_decoder == s->word_emb; /* s's own head stays tied when it is kept */
    s->word_emb = t->word_emb;
    s->pos_emb = t->pos_emb; /* the student may use only its first rows */
    s->type_emb = NULL;      /* DistilBERT has no token types */
    s->ln_emb = t->ln_emb;
    for (int i = 0; i < n_layers; i++) s->layers[i] = t->layers[map[i]];
    if (t->mlm_transform.w) {
        s->mlm_transform = t->mlm_transform;
        s->mlm_ln = t->mlm_ln;
        s->mlm_decoder = t->mlm_decoder == t->word_emb ? s->word_emb : t->mlm_decoder;
        s->mlm_bias = t->mlm_bias;
    } else if (tied) {
        s->mlm_decoder = s->word_emb;
    }
}

/* ---- writing the folder ------------------------------------------------------------------- */

typedef struct {
    dbt_st_write_tensor *t;
    char (*names)[160];
    int n;
} tensor_list;

static void add(tensor_list *l, const char *name, const float *data, int64_t d0, int64_t d1) {
    dbt_st_write_tensor *x = &l->t[l->n];
    snprintf(l->names[l->n], sizeof l->names[l->n], "%s", name);
    x->name = l->names[l->n++];
    x->dtype = DBT_DT_F32;
    x->ndim = d1 ? 2 : 1;
    x->shape[0] = d0;
    x->shape[1] = d1;
    x->data = data;
}

static void add_linear(tensor_list *l, const char *name, const dbt_linear *lin) {
    char n[160];
    snprintf(n, sizeof n, "%s.weight", name);
    add(l, n, lin->w, lin->n_out, lin->n_in);
    snprintf(n, sizeof n, "%s.bias", name);
    add(l, n, lin->b, lin->n_out, 0);
}

static void add_layernorm(tensor_list *l, const char *name, const dbt_layernorm *ln) {
    char n[160];
    snprintf(n, sizeof n, "%s.weight", name);
    add(l, n, ln->gamma, ln->n, 0);
    snprintf(n, sizeof n, "%s.bias", name);
    add(l, n, ln->beta, ln->n, 0);
}

/* Every tensor of a ...ForMaskedLM model under the names transformers saves (params.c names the
 * same set for training). */
static void list_mlm_tensors(const dbt_config *c, const dbt_weights *w, tensor_list *l) {
    static const char *const distil[8] = {"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                                          "sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"};
    static const char *const bert[8] = {"attention.self.query", "attention.self.key", "attention.self.value",
                                        "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                                        "output.dense", "output.LayerNorm"};
    const int is_bert = c->arch == DBT_ARCH_BERT, D = c->dim;
    const char *base = is_bert ? "bert" : "distilbert";
    const char *const *sub = is_bert ? bert : distil;
    char n[160];
    snprintf(n, sizeof n, "%s.embeddings.word_embeddings.weight", base);
    add(l, n, w->word_emb, c->vocab_size, D);
    snprintf(n, sizeof n, "%s.embeddings.position_embeddings.weight", base);
    add(l, n, w->pos_emb, c->max_position_embeddings, D);
    if (is_bert && w->type_emb) {
        snprintf(n, sizeof n, "%s.embeddings.token_type_embeddings.weight", base);
        add(l, n, w->type_emb, c->type_vocab_size, D);
    }
    snprintf(n, sizeof n, "%s.embeddings.LayerNorm", base);
    add_layernorm(l, n, &w->ln_emb);
    for (int i = 0; i < c->n_layers; i++) {
        const dbt_layer *L = &w->layers[i];
        const dbt_linear *lin[8] = {&L->q, &L->k, &L->v, &L->o, NULL, &L->ff1, &L->ff2, NULL};
        for (int k = 0; k < 8; k++) {
            snprintf(n, sizeof n, "%s.%s.%d.%s", base, is_bert ? "encoder.layer" : "transformer.layer", i, sub[k]);
            if (lin[k]) add_linear(l, n, lin[k]);
            else add_layernorm(l, n, k == 4 ? &L->ln_attn : &L->ln_ffn);
        }
    }
    add_linear(l, is_bert ? "cls.predictions.transform.dense" : "vocab_transform", &w->mlm_transform);
    add_layernorm(l, is_bert ? "cls.predictions.transform.LayerNorm" : "vocab_layer_norm", &w->mlm_ln);
    if (w->mlm_decoder != w->word_emb)
        add(l, is_bert ? "cls.predictions.decoder.weight" : "vocab_projector.weight", w->mlm_decoder, c->vocab_size, D);
    add(l, is_bert ? "cls.predictions.bias" : "vocab_projector.bias", w->mlm_bias, c->vocab_size, 0);
}

/* A temporary file beside the target, synced, then renamed over it: never a half-written file. */
int dbt_write_file_atomic(const char *path, const void *data, size_t n) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return dbt_set_error("cannot write %s", tmp);
    int ok = fwrite(data, 1, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return dbt_set_error("cannot write %s", path);
    }
    return 0;
}

/* config.json for c, saying whether the decoder is tied to the word embeddings. */
static char *config_text(const dbt_config *c, int tied) {
    char *s = dbt_config_to_json(c, dbt_architecture_name(c->arch, DBT_HEAD_MLM));
    if (!s || tied) return s;
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(j, "tie_word_embeddings");
    cJSON_AddItemToObject(j, "tie_word_embeddings", cJSON_CreateFalse());
    s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

int dbt_write_mlm_folder(const char *dir, const dbt_config *c, const dbt_weights *w) {
    char path[4096];
    const int cap = 16 + 20 * c->n_layers;
    tensor_list l = {calloc((size_t)cap, sizeof *l.t), calloc((size_t)cap, sizeof *l.names), 0};
    char *cfg = config_text(c, w->mlm_decoder == w->word_emb);
    int rc = -1;
    if (!l.t || !l.names || !cfg) { dbt_set_error("out of memory"); goto done; }
    list_mlm_tensors(c, w, &l);
    if (dbt_write_file_atomic(dbt_path_join(path, sizeof path, dir, "config.json"), cfg, strlen(cfg))) goto done;
    rc = dbt_st_write(dbt_path_join(path, sizeof path, dir, "model.safetensors"), l.t, l.n, "{\"format\": \"pt\"}");
done:
    free(l.t);
    free(l.names);
    free(cfg);
    return rc;
}

int dbt_copy_file(const char *from, const char *to) {
    size_t n;
    char *data = dbt_read_file(from, 1u << 30, &n);
    if (!data) return -1;
    int rc = dbt_write_file_atomic(to, data, n);
    free(data);
    return rc;
}

int dbt_copy_tokenizer_files(const char *src_dir, const char *dst_dir, dbt_arch arch) {
    static const char *const files[] = {"vocab.txt", "tokenizer.json", "special_tokens_map.json"};
    char from[4096], to[4096];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (dbt_file_exists(dbt_path_join(from, sizeof from, src_dir, files[i])) &&
            dbt_copy_file(from, dbt_path_join(to, sizeof to, dst_dir, files[i])))
            return -1;
    }
    return dbt_copy_tokenizer_config(src_dir, dst_dir, arch, dbt_write_file_atomic);
}
