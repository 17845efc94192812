/* config.c — reading config.json the way transformers' DistilBertConfig and BertConfig do: every
 * key has the class default when absent; model_type must say which of the two it is. Values
 * that cannot describe a model (zero heads, dim not divisible by heads, ...) are refused here,
 * before any weight is touched. */
#include "config.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/file.h"
#include "../common/strmap.h"

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static int get_int(const cJSON *o, const char *k, int def, int *out) {
    const cJSON *v = get(o, k);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    /* range first: converting an out-of-range double to int is undefined (found by fuzz_config) */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= INT_MIN && v->valuedouble <= INT_MAX) ||
        v->valuedouble != (double)(int)v->valuedouble)
        return dbt_set_error("config.json: \"%s\" must be an integer", k);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_float(const cJSON *o, const char *k, float def, float *out) {
    const cJSON *v = get(o, k);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsNumber(v)) return dbt_set_error("config.json: \"%s\" must be a number", k);
    *out = (float)v->valuedouble;
    return 0;
}

static int parse_activation(const char *s, dbt_activation *a) {
    static const struct { const char *name; dbt_activation act; } table[] = {
        {"gelu", DBT_ACT_GELU},           {"relu", DBT_ACT_RELU},
        {"gelu_new", DBT_ACT_GELU_TANH},  {"gelu_pytorch_tanh", DBT_ACT_GELU_TANH},
        {"gelu_fast", DBT_ACT_GELU_FAST}, {"quick_gelu", DBT_ACT_QUICK_GELU},
        {"silu", DBT_ACT_SILU},           {"swish", DBT_ACT_SILU},
        {"tanh", DBT_ACT_TANH},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(s, table[i].name)) { *a = table[i].act; return 0; }
    return dbt_set_error("config.json: activation \"%s\" is not supported", s);
}

const char *dbt_activation_name(dbt_activation a) {
    switch (a) {
    case DBT_ACT_GELU: return "gelu";
    case DBT_ACT_RELU: return "relu";
    case DBT_ACT_GELU_TANH: return "gelu_new";
    case DBT_ACT_GELU_FAST: return "gelu_fast";
    case DBT_ACT_QUICK_GELU: return "quick_gelu";
    case DBT_ACT_SILU: return "silu";
    case DBT_ACT_TANH: return "tanh";
    }
    return "gelu";
}

static dbt_head head_of(const char *arch) {
    static const struct { const char *suffix; dbt_head head; } table[] = {
        {"ForMaskedLM", DBT_HEAD_MLM},
        {"ForPreTraining", DBT_HEAD_MLM},
        {"ForSequenceClassification", DBT_HEAD_SEQ_CLS},
        {"ForTokenClassification", DBT_HEAD_TOKEN_CLS},
        {"ForQuestionAnswering", DBT_HEAD_QA},
    };
    size_t n = strlen(arch);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t m = strlen(table[i].suffix);
        if (n >= m && !strcmp(arch + n - m, table[i].suffix)) return table[i].head;
    }
    return DBT_HEAD_NONE;
}

static int parse_labels(dbt_config *c, const cJSON *j) {
    const cJSON *id2label = get(j, "id2label");
    int n = -1;
    if (get_int(j, "num_labels", -1, &n)) return -1;
    if (cJSON_IsObject(id2label) && cJSON_GetArraySize(id2label) > 0) n = cJSON_GetArraySize(id2label);
    if (n < 0) n = 2; /* PretrainedConfig's default */
    if (n == 0 || n > 100000) return dbt_set_error("config.json: %d labels", n);
    c->n_labels = n;
    c->id2label = calloc((size_t)n, sizeof *c->id2label);
    if (!c->id2label) return dbt_set_error("out of memory");
    if (cJSON_IsObject(id2label)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, id2label) {
            char *end;
            long id = strtol(e->string, &end, 10);
            if (*end || id < 0 || id >= n || !cJSON_IsString(e))
                return dbt_set_error("config.json: id2label has a bad entry \"%s\"", e->string);
            if (c->id2label[id]) return dbt_set_error("config.json: id2label repeats id %ld", id);
            c->id2label[id] = strdup(e->valuestring);
            if (!c->id2label[id]) return dbt_set_error("out of memory");
        }
    }
    for (int i = 0; i < n; i++)
        if (!c->id2label[i]) {
            char buf[32];
            snprintf(buf, sizeof buf, "LABEL_%d", i);
            c->id2label[i] = strdup(buf);
            if (!c->id2label[i]) return dbt_set_error("out of memory");
        }
    const cJSON *pt = get(j, "problem_type");
    c->problem_type = DBT_PROBLEM_DEFAULT;
    if (cJSON_IsString(pt)) {
        if (!strcmp(pt->valuestring, "regression")) c->problem_type = DBT_PROBLEM_REGRESSION;
        else if (!strcmp(pt->valuestring, "single_label_classification")) c->problem_type = DBT_PROBLEM_SINGLE_LABEL;
        else if (!strcmp(pt->valuestring, "multi_label_classification")) c->problem_type = DBT_PROBLEM_MULTI_LABEL;
        else return dbt_set_error("config.json: unknown problem_type \"%s\"", pt->valuestring);
    }
    return 0;
}

int dbt_config_parse(dbt_config *c, const char *json, size_t len) {
    memset(c, 0, sizeof *c);
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return dbt_set_error("config.json is not a JSON object");
    }
    int rc = -1;
    const cJSON *mt = get(j, "model_type");
    if (!cJSON_IsString(mt)) { dbt_set_error("config.json has no \"model_type\""); goto done; }
    const cJSON *archs = get(j, "architectures");
    const cJSON *a0 = cJSON_GetArrayItem(archs, 0);
    if (cJSON_IsString(a0)) snprintf(c->architecture, sizeof c->architecture, "%s", a0->valuestring);
    c->head = head_of(c->architecture);
    const char *act = "gelu";
    if (!strcmp(mt->valuestring, "distilbert")) {
        c->arch = DBT_ARCH_DISTILBERT;
        if (get_int(j, "vocab_size", 30522, &c->vocab_size) || get_int(j, "dim", 768, &c->dim) ||
            get_int(j, "n_layers", 6, &c->n_layers) || get_int(j, "n_heads", 12, &c->n_heads) ||
            get_int(j, "hidden_dim", 3072, &c->hidden_dim) ||
            get_int(j, "max_position_embeddings", 512, &c->max_position_embeddings) ||
            get_int(j, "pad_token_id", 0, &c->pad_token_id) ||
            get_float(j, "dropout", 0.1f, &c->dropout) ||
            get_float(j, "attention_dropout", 0.1f, &c->attention_dropout) ||
            get_float(j, "seq_classif_dropout", 0.2f, &c->classifier_dropout) ||
            get_float(j, "qa_dropout", 0.1f, &c->qa_dropout) ||
            get_float(j, "initializer_range", 0.02f, &c->initializer_range))
            goto done;
        const cJSON *s = get(j, "sinusoidal_pos_embds");
        c->sinusoidal_pos_embds = cJSON_IsTrue(s);
        const cJSON *a = get(j, "activation");
        if (cJSON_IsString(a)) act = a->valuestring;
        c->layer_norm_eps = 1e-12f; /* DistilBERT's LayerNorms are built with eps=1e-12 */
        c->type_vocab_size = 0;
    } else if (!strcmp(mt->valuestring, "bert")) {
        c->arch = DBT_ARCH_BERT;
        if (get_int(j, "vocab_size", 30522, &c->vocab_size) || get_int(j, "hidden_size", 768, &c->dim) ||
            get_int(j, "num_hidden_layers", 12, &c->n_layers) ||
            get_int(j, "num_attention_heads", 12, &c->n_heads) ||
            get_int(j, "intermediate_size", 3072, &c->hidden_dim) ||
            get_int(j, "max_position_embeddings", 512, &c->max_position_embeddings) ||
            get_int(j, "type_vocab_size", 2, &c->type_vocab_size) ||
            get_int(j, "pad_token_id", 0, &c->pad_token_id) ||
            get_float(j, "hidden_dropout_prob", 0.1f, &c->dropout) ||
            get_float(j, "attention_probs_dropout_prob", 0.1f, &c->attention_dropout) ||
            get_float(j, "layer_norm_eps", 1e-12f, &c->layer_norm_eps) ||
            get_float(j, "initializer_range", 0.02f, &c->initializer_range))
            goto done;
        const cJSON *cd = get(j, "classifier_dropout");
        c->classifier_dropout = cJSON_IsNumber(cd) ? (float)cd->valuedouble : c->dropout;
        c->qa_dropout = c->dropout;
        const cJSON *a = get(j, "hidden_act");
        if (cJSON_IsString(a)) act = a->valuestring;
        const cJSON *pe = get(j, "position_embedding_type");
        if (cJSON_IsString(pe) && strcmp(pe->valuestring, "absolute") != 0) {
            dbt_set_error("config.json: position_embedding_type \"%s\" is not supported (only absolute)",
                          pe->valuestring);
            goto done;
        }
    } else {
        dbt_set_error("config.json: model_type \"%s\" is not supported (distilbert or bert)", mt->valuestring);
        goto done;
    }
    if (parse_activation(act, &c->activation)) goto done;
    if (c->vocab_size <= 0 || c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->hidden_dim <= 0 ||
        c->max_position_embeddings <= 0 || c->type_vocab_size < 0) {
        dbt_set_error("config.json: sizes must be positive (vocab %d, dim %d, layers %d, heads %d, ffn %d, positions %d)",
                      c->vocab_size, c->dim, c->n_layers, c->n_heads, c->hidden_dim, c->max_position_embeddings);
        goto done;
    }
    if (c->dim % c->n_heads) {
        dbt_set_error("config.json: dim %d is not a multiple of the %d heads", c->dim, c->n_heads);
        goto done;
    }
    if (c->vocab_size > 10000000 || c->dim > 65536 || c->hidden_dim > 262144 || c->n_layers > 1000 ||
        c->max_position_embeddings > 1 << 20) {
        dbt_set_error("config.json: sizes are implausibly large");
        goto done;
    }
    if (c->layer_norm_eps <= 0) { dbt_set_error("config.json: layer_norm_eps must be positive"); goto done; }
    if (parse_labels(c, j)) goto done;
    if (!(c->raw_json = strndup(json, len))) { dbt_set_error("out of memory"); goto done; }
    rc = 0;
done:
    cJSON_Delete(j);
    if (rc) dbt_config_free(c);
    return rc;
}

int dbt_config_load(dbt_config *c, const char *path) {
    size_t len;
    char *text = dbt_read_file(path, 16u << 20, &len);
    if (!text) return -1;
    int rc = dbt_config_parse(c, text, len);
    free(text);
    if (rc) dbt_prefix_error("%s", path);
    return rc;
}

void dbt_config_free(dbt_config *c) {
    if (c->id2label)
        for (int i = 0; i < c->n_labels; i++) free(c->id2label[i]);
    free(c->id2label);
    c->id2label = NULL;
    c->n_labels = 0;
    free(c->raw_json);
    c->raw_json = NULL;
}

int dbt_config_set_labels(dbt_config *c, int n, const char *const *names) {
    char **l = calloc((size_t)n, sizeof *l);
    if (!l) return dbt_set_error("out of memory");
    for (int i = 0; i < n; i++)
        if (!(l[i] = strdup(names[i]))) {
            for (int k = 0; k < i; k++) free(l[k]);
            free(l);
            return dbt_set_error("out of memory");
        }
    for (int i = 0; i < c->n_labels; i++) free(c->id2label[i]);
    free(c->id2label);
    c->id2label = l;
    c->n_labels = n;
    return 0;
}

/* A float config value as the decimal it was written as (0.1, not 0.10000000149). */
static cJSON *num_f(float f) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", f);
    return cJSON_CreateNumber(strtod(b, NULL));
}

static void put(cJSON *o, const char *k, cJSON *v) {
    if (cJSON_GetObjectItemCaseSensitive(o, k)) cJSON_ReplaceItemInObjectCaseSensitive(o, k, v);
    else cJSON_AddItemToObject(o, k, v);
}

char *dbt_config_to_json(const dbt_config *c, const char *architecture) {
    cJSON *j = c->raw_json ? cJSON_Parse(c->raw_json) : NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
    }
    if (!j) return NULL;
    cJSON *archs = cJSON_CreateArray();
    cJSON_AddItemToArray(archs, cJSON_CreateString(architecture));
    put(j, "architectures", archs);
    const char *act = dbt_activation_name(c->activation);
    if (c->arch == DBT_ARCH_DISTILBERT) {
        put(j, "model_type", cJSON_CreateString("distilbert"));
        put(j, "vocab_size", cJSON_CreateNumber(c->vocab_size));
        put(j, "dim", cJSON_CreateNumber(c->dim));
        put(j, "n_layers", cJSON_CreateNumber(c->n_layers));
        put(j, "n_heads", cJSON_CreateNumber(c->n_heads));
        put(j, "hidden_dim", cJSON_CreateNumber(c->hidden_dim));
        put(j, "max_position_embeddings", cJSON_CreateNumber(c->max_position_embeddings));
        put(j, "sinusoidal_pos_embds", cJSON_CreateBool(c->sinusoidal_pos_embds));
        put(j, "activation", cJSON_CreateString(act));
        put(j, "dropout", num_f(c->dropout));
        put(j, "attention_dropout", num_f(c->attention_dropout));
        put(j, "seq_classif_dropout", num_f(c->classifier_dropout));
        put(j, "qa_dropout", num_f(c->qa_dropout));
    } else {
        put(j, "model_type", cJSON_CreateString("bert"));
        put(j, "vocab_size", cJSON_CreateNumber(c->vocab_size));
        put(j, "hidden_size", cJSON_CreateNumber(c->dim));
        put(j, "num_hidden_layers", cJSON_CreateNumber(c->n_layers));
        put(j, "num_attention_heads", cJSON_CreateNumber(c->n_heads));
        put(j, "intermediate_size", cJSON_CreateNumber(c->hidden_dim));
        put(j, "max_position_embeddings", cJSON_CreateNumber(c->max_position_embeddings));
        put(j, "type_vocab_size", cJSON_CreateNumber(c->type_vocab_size));
        put(j, "hidden_act", cJSON_CreateString(act));
        put(j, "hidden_dropout_prob", num_f(c->dropout));
        put(j, "attention_probs_dropout_prob", num_f(c->attention_dropout));
        put(j, "layer_norm_eps", num_f(c->layer_norm_eps));
        put(j, "position_embedding_type", cJSON_CreateString("absolute"));
    }
    put(j, "initializer_range", num_f(c->initializer_range));
    put(j, "pad_token_id", cJSON_CreateNumber(c->pad_token_id));
    cJSON *i2l = cJSON_CreateObject(), *l2i = cJSON_CreateObject();
    dbt_strmap seen; /* label2id keeps a repeated label's first id; a hash keeps this linear */
    int have_seen = dbt_strmap_init(&seen, (size_t)c->n_labels) == 0;
    for (int i = 0; i < c->n_labels; i++) {
        char k[32];
        snprintf(k, sizeof k, "%d", i);
        cJSON_AddItemToObject(i2l, k, cJSON_CreateString(c->id2label[i]));
        size_t len = strlen(c->id2label[i]);
        if (have_seen ? dbt_strmap_get(&seen, c->id2label[i], len) < 0
                      : !cJSON_GetObjectItemCaseSensitive(l2i, c->id2label[i])) {
            cJSON_AddItemToObject(l2i, c->id2label[i], cJSON_CreateNumber(i));
            if (have_seen && dbt_strmap_put(&seen, c->id2label[i], len, i)) {
                dbt_strmap_free(&seen);
                have_seen = 0;
            }
        }
    }
    if (have_seen) dbt_strmap_free(&seen);
    put(j, "id2label", i2l);
    put(j, "label2id", l2i);
    cJSON_DeleteItemFromObjectCaseSensitive(j, "num_labels"); /* id2label says it */
    static const char *const problems[] = {NULL, "single_label_classification", "multi_label_classification", "regression"};
    if (c->problem_type != DBT_PROBLEM_DEFAULT) put(j, "problem_type", cJSON_CreateString(problems[c->problem_type]));
    put(j, "torch_dtype", cJSON_CreateString("float32")); /* we write F32 tensors */
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

char *dbt_tokenizer_config_for(const char *src, size_t len, dbt_arch arch) {
    cJSON *j = src ? cJSON_ParseWithLength(src, len) : cJSON_CreateObject();
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        dbt_set_error("tokenizer_config.json is not a JSON object");
        return NULL;
    }
    if (arch == DBT_ARCH_DISTILBERT) {
        const char *names[] = {"input_ids", "attention_mask"};
        cJSON *list = cJSON_CreateStringArray(names, 2);
        if (!list || (cJSON_HasObjectItem(j, "model_input_names") ? !cJSON_ReplaceItemInObjectCaseSensitive(j, "model_input_names", list)
                                                                   : !cJSON_AddItemToObject(j, "model_input_names", list))) {
            cJSON_Delete(j);
            dbt_set_error("out of memory");
            return NULL;
        }
    }
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    if (!out) dbt_set_error("out of memory");
    return out;
}

int dbt_copy_tokenizer_config(const char *src_dir, const char *dst_dir, dbt_arch arch,
                              int (*write)(const char *path, const void *data, size_t n)) {
    char from[4096], to[4096];
    if (!dbt_file_exists(dbt_path_join(from, sizeof from, src_dir, "tokenizer_config.json"))) return 0;
    size_t n;
    char *text = dbt_read_file(from, 1u << 24, &n);
    if (!text) return -1;
    char *out = dbt_tokenizer_config_for(text, n, arch);
    free(text);
    if (!out) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", dbt_last_error());
        return dbt_set_error("%s: %s", from, msg);
    }
    int rc = write(dbt_path_join(to, sizeof to, dst_dir, "tokenizer_config.json"), out, strlen(out));
    free(out);
    return rc;
}
