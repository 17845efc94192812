/* tokenizer_json.c — reading a Hugging Face tokenizer.json of the BERT family: BertNormalizer,
 * BertPreTokenizer, WordPiece, TemplateProcessing or BertProcessing, added tokens, truncation,
 * padding.
 * Components outside that family are refused with a message that names them. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/file.h"
#include "tokenizer_internal.h"

static const cJSON *get(const cJSON *o, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int get_bool(const cJSON *o, const char *key, int def) {
    const cJSON *v = get(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

/* A JSON number as an int32, or def when it is not one or is out of range (the cast would be
 * undefined; found by fuzz_tokenizer_json). */
static int32_t num_i32(const cJSON *v, int32_t def) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= INT32_MIN && v->valuedouble <= INT32_MAX)) return def;
    return (int32_t)v->valuedouble;
}

static const char *type_of(const cJSON *o) {
    const cJSON *t = get(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static int load_vocab(dbt_tokenizer *t, const cJSON *vocab) {
    if (!cJSON_IsObject(vocab)) return dbt_set_error("model.vocab is not an object");
    int32_t n = 0;
    size_t bytes = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= DBT_MAX_VOCAB ||
            e->valuedouble != (double)(int32_t)e->valuedouble)
            return dbt_set_error("model.vocab: bad id for token \"%.40s\"", e->string);
        if ((int32_t)e->valuedouble + 1 > n) n = (int32_t)e->valuedouble + 1;
        bytes += strlen(e->string) + 1;
    }
    if (n == 0) return dbt_set_error("model.vocab is empty");
    char **tokens = calloc((size_t)n, sizeof *tokens);
    char *pool = malloc(bytes ? bytes : 1);
    if (!tokens || !pool) { free(tokens); free(pool); return dbt_set_error("out of memory"); }
    char *p = pool;
    cJSON_ArrayForEach(e, vocab) {
        int32_t id = (int32_t)e->valuedouble;
        size_t len = strlen(e->string) + 1;
        memcpy(p, e->string, len);
        if (tokens[id]) { free(tokens); free(pool); return dbt_set_error("model.vocab: id %d is used twice", id); }
        tokens[id] = p;
        p += len;
    }
    if (dbt_tokenizer_set_vocab(t, tokens, n, pool)) {
        free(tokens);
        free(pool);
        return -1;
    }
    return 0;
}

static int load_normalizer(dbt_tokenizer *t, const cJSON *n, const dbt_tokenizer_opts *opts) {
    if (!n || cJSON_IsNull(n)) return 0;
    const char *type = type_of(n);
    if (strcmp(type, "BertNormalizer") != 0)
        return dbt_set_error("normalizer \"%s\" is not supported (only BertNormalizer)", type);
    t->has_normalizer = 1;
    t->norm.clean_text = get_bool(n, "clean_text", 1);
    t->norm.handle_chinese_chars = get_bool(n, "handle_chinese_chars", 1);
    t->norm.lowercase = get_bool(n, "lowercase", 1);
    const cJSON *sa = get(n, "strip_accents");
    int strip_set = cJSON_IsBool(sa);
    if (opts && opts->lowercase >= 0) t->norm.lowercase = opts->lowercase;
    t->norm.strip_accents = strip_set ? cJSON_IsTrue(sa) : t->norm.lowercase;
    if (opts && opts->strip_accents >= 0) t->norm.strip_accents = opts->strip_accents;
    return 0;
}

static int load_pretokenizer(dbt_tokenizer *t, const cJSON *p) {
    if (!p || cJSON_IsNull(p)) return 0;
    const char *type = type_of(p);
    if (strcmp(type, "Sequence") == 0) { /* accept a Sequence that holds just BertPreTokenizer */
        const cJSON *list = get(p, "pretokenizers");
        if (cJSON_GetArraySize(list) == 1) return load_pretokenizer(t, cJSON_GetArrayItem(list, 0));
    }
    if (strcmp(type, "BertPreTokenizer") != 0)
        return dbt_set_error("pre_tokenizer \"%s\" is not supported (only BertPreTokenizer)", type);
    t->has_pretokenizer = 1;
    return 0;
}

static int load_model(dbt_tokenizer *t, const cJSON *m) {
    const char *type = type_of(m);
    if (strcmp(type, "WordPiece") != 0 && !(type[0] == '\0' && get(m, "continuing_subword_prefix")))
        return dbt_set_error("model \"%s\" is not supported (only WordPiece)", type);
    if (load_vocab(t, get(m, "vocab"))) return -1;
    const cJSON *prefix = get(m, "continuing_subword_prefix");
    const char *pre = cJSON_IsString(prefix) ? prefix->valuestring : "##";
    if (strlen(pre) >= sizeof t->prefix) return dbt_set_error("continuing_subword_prefix is too long");
    strcpy(t->prefix, pre);
    t->prefix_len = (int)strlen(pre);
    const cJSON *mx = get(m, "max_input_chars_per_word");
    t->max_input_chars_per_word = !cJSON_IsNumber(mx) || mx->valuedouble < 0 ? 100 : num_i32(mx, INT32_MAX);
    const cJSON *unk = get(m, "unk_token");
    const char *u = cJSON_IsString(unk) ? unk->valuestring : "[UNK]";
    t->unk_id = dbt_strmap_get(&t->model_vocab, u, strlen(u));
    return 0;
}

static int32_t special_id(const cJSON *specials, const char *name) {
    const cJSON *s = get(specials, name);
    const cJSON *ids = get(s, "ids");
    if (cJSON_GetArraySize(ids) != 1) return -1;
    const cJSON *id = cJSON_GetArrayItem(ids, 0);
    return num_i32(id, -1);
}

static int load_template(dbt_template *out, const cJSON *list, const cJSON *specials, int32_t n_vocab) {
    int n = cJSON_GetArraySize(list);
    if (!cJSON_IsArray(list) || n <= 0) return dbt_set_error("post_processor template is empty");
    dbt_template_piece *p = calloc((size_t)n, sizeof *p);
    if (!p) return dbt_set_error("out of memory");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        const cJSON *seq = get(e, "Sequence"), *sp = get(e, "SpecialToken");
        const cJSON *body = seq ? seq : sp;
        const cJSON *id = get(body, "id"), *ty = get(body, "type_id");
        if (!body || !cJSON_IsString(id)) { free(p); return dbt_set_error("bad post_processor template piece"); }
        p[i].type_id = num_i32(ty, 0);
        if (seq) {
            p[i].is_sequence = 1;
            p[i].seq = strcmp(id->valuestring, "B") == 0;
        } else {
            p[i].id = special_id(specials, id->valuestring);
            if (p[i].id < 0 || p[i].id >= n_vocab) {
                free(p);
                return dbt_set_error("post_processor: special token \"%s\" must map to one id of the vocabulary",
                                     id->valuestring);
            }
        }
        i++;
    }
    free(out->pieces);
    out->pieces = p;
    out->n = n;
    return 0;
}

static int load_post(dbt_tokenizer *t, const cJSON *p) {
    if (!p || cJSON_IsNull(p)) return 0;
    const char *type = type_of(p);
    if (strcmp(type, "TemplateProcessing") == 0) {
        const cJSON *sp = get(p, "special_tokens");
        if (load_template(&t->single, get(p, "single"), sp, t->n_vocab) ||
            load_template(&t->pair, get(p, "pair"), sp, t->n_vocab))
            return -1;
        t->has_post = 1;
        return 0;
    }
    if (strcmp(type, "BertProcessing") == 0) {
        const cJSON *cls = get(p, "cls"), *sep = get(p, "sep");
        const cJSON *ci = cJSON_GetArrayItem(cls, 1), *si = cJSON_GetArrayItem(sep, 1);
        int32_t c = num_i32(ci, -1), s = num_i32(si, -1);
        if (c < 0 || c >= t->n_vocab || s < 0 || s >= t->n_vocab) return dbt_set_error("bad BertProcessing");
        dbt_template_bert(t, c, s);
        return t->has_post ? 0 : dbt_set_error("out of memory");
    }
    return dbt_set_error("post_processor \"%s\" is not supported", type);
}

static int load_added(dbt_tokenizer *t, const cJSON *list) {
    if (!list || cJSON_IsNull(list)) return 0;
    if (!cJSON_IsArray(list)) return dbt_set_error("added_tokens is not a list");
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        const cJSON *id = get(e, "id"), *c = get(e, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(c) || id->valuedouble < 0 || id->valuedouble >= DBT_MAX_VOCAB)
            return dbt_set_error("added_tokens: an entry lacks id or content");
        if (dbt_tokenizer_add_token(t, c->valuestring, get_bool(e, "special", 0),
                                    get_bool(e, "normalized", 1), get_bool(e, "lstrip", 0),
                                    get_bool(e, "rstrip", 0), get_bool(e, "single_word", 0),
                                    (int32_t)id->valuedouble))
            return -1;
    }
    return 0;
}

static int load_truncation(dbt_tokenizer *t, const cJSON *tr) {
    if (!tr || cJSON_IsNull(tr)) return 0;
    const cJSON *ml = get(tr, "max_length"), *st = get(tr, "stride"), *sg = get(tr, "strategy");
    if (!cJSON_IsNumber(ml) || ml->valuedouble < 0) return dbt_set_error("truncation.max_length is missing");
    t->trunc_max_length = ml->valuedouble > 1e9 ? 0 : (int32_t)ml->valuedouble;
    t->trunc_stride = num_i32(st, 0);
    const char *s = cJSON_IsString(sg) ? sg->valuestring : "LongestFirst";
    t->trunc_strategy = strcmp(s, "OnlyFirst") == 0    ? DBT_TRUNCATE_ONLY_FIRST
                        : strcmp(s, "OnlySecond") == 0 ? DBT_TRUNCATE_ONLY_SECOND
                                                       : DBT_TRUNCATE_LONGEST_FIRST;
    return 0;
}

/* "padding": {"strategy": "BatchLongest" | {"Fixed": n}, "direction": "Right" | "Left",
 *             "pad_to_multiple_of": null | m, "pad_id", "pad_type_id", "pad_token"} or null.
 * The pad token's string is the vocabulary's entry for pad_id (what the encodings carry). */
static int load_padding(dbt_tokenizer *t, const cJSON *pad) {
    if (!pad || cJSON_IsNull(pad)) return 0;
    if (!cJSON_IsObject(pad)) return dbt_set_error("padding must be an object or null");
    const cJSON *pi = get(pad, "pad_id"), *pt = get(pad, "pad_type_id"), *sg = get(pad, "strategy"),
                *dir = get(pad, "direction"), *mult = get(pad, "pad_to_multiple_of");
    if (cJSON_IsNumber(pi)) t->special.pad = num_i32(pi, -1);
    if (cJSON_IsNumber(pt)) t->pad_type_id = num_i32(pt, 0);
    if (t->special.pad >= t->n_vocab) t->special.pad = -1; /* not an id of the vocabulary */
    if (cJSON_IsObject(sg)) {
        const cJSON *fixed = get(sg, "Fixed");
        if (!cJSON_IsNumber(fixed) || fixed->valuedouble < 0 || fixed->valuedouble > DBT_MAX_PAD_LENGTH)
            return dbt_set_error("padding.strategy.Fixed must be a length from 0 to %d", DBT_MAX_PAD_LENGTH);
        t->pad_default.length = (int)fixed->valuedouble;
    } else if (sg && !(cJSON_IsString(sg) && strcmp(sg->valuestring, "BatchLongest") == 0)) {
        return dbt_set_error("padding.strategy must be \"BatchLongest\" or {\"Fixed\": n}");
    }
    if (dir && !cJSON_IsNull(dir)) {
        if (!cJSON_IsString(dir) || (strcmp(dir->valuestring, "Left") && strcmp(dir->valuestring, "Right")))
            return dbt_set_error("padding.direction must be \"Left\" or \"Right\"");
        t->pad_default.left = strcmp(dir->valuestring, "Left") == 0;
    }
    if (mult && !cJSON_IsNull(mult)) {
        if (!cJSON_IsNumber(mult) || mult->valuedouble < 0 || mult->valuedouble > DBT_MAX_PAD_LENGTH)
            return dbt_set_error("padding.pad_to_multiple_of must be null or a number from 0 to %d",
                                 DBT_MAX_PAD_LENGTH);
        t->pad_default.multiple_of = (int)mult->valuedouble;
    }
    t->pad_enabled = 1;
    return 0;
}

static int32_t find_special(const dbt_tokenizer *t, const char *name) {
    for (int k = 0; k < t->n_added; k++)
        if (strcmp(t->added[k].content, name) == 0) return t->added[k].id;
    return dbt_strmap_get(&t->model_vocab, name, strlen(name));
}

dbt_tokenizer *dbt_tokenizer_from_json(const char *path, const dbt_tokenizer_opts *opts) {
    size_t len;
    char *text = dbt_read_file(path, DBT_MAX_TOKENIZER_FILE, &len);
    if (!text) return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) {
        dbt_set_error("%s: invalid JSON near byte %zu", path, end ? (size_t)(end - text) : 0);
        free(text);
        return NULL;
    }
    free(text);
    dbt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { cJSON_Delete(j); dbt_set_error("out of memory"); return NULL; }
    t->unk_id = -1;
    const cJSON *model = get(j, "model");
    if (!cJSON_IsObject(j) || !cJSON_IsObject(model)) {
        dbt_set_error("not a tokenizer.json (no \"model\" object)");
        goto fail;
    }
    if (load_model(t, model) || load_normalizer(t, get(j, "normalizer"), opts) ||
        load_pretokenizer(t, get(j, "pre_tokenizer")) || load_added(t, get(j, "added_tokens")) ||
        load_post(t, get(j, "post_processor")) || load_truncation(t, get(j, "truncation")))
        goto fail;
    t->special.pad = find_special(t, "[PAD]");
    if (load_padding(t, get(j, "padding"))) goto fail;
    t->special.unk = t->unk_id;
    t->special.cls = find_special(t, "[CLS]");
    t->special.sep = find_special(t, "[SEP]");
    t->special.mask = find_special(t, "[MASK]");
    if (dbt_tokenizer_finish(t)) goto fail;
    cJSON_Delete(j);
    return t;
fail:
    dbt_prefix_error("%s", path);
    cJSON_Delete(j);
    dbt_tokenizer_free(t);
    return NULL;
}
