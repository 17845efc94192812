/* tokenizer_load.c — building a tokenizer from vocab.txt (+ tokenizer_config.json), choosing
 * between the file kinds, and the small accessors of the public API.
 *
 * From vocab.txt we build what transformers' BertTokenizerFast builds: BertNormalizer
 * (lowercase per do_lower_case, strip_accents following it unless set, CJK padding, clean
 * text), BertPreTokenizer, WordPiece with "[UNK]", "##" and 100 characters per word, the
 * [CLS] A [SEP] B [SEP] template, and the special tokens as added tokens matched in raw text. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/file.h"
#include "../common/utf8.h"
#include "tokenizer_internal.h"

static int32_t *to_cps(const char *s, int32_t *n_out) {
    size_t len = strlen(s), n = 0, i = 0;
    int32_t *cps = malloc((len + 1) * sizeof *cps);
    if (!cps) return NULL;
    while (i < len) i += dbt_utf8_decode((const unsigned char *)s + i, len - i, &cps[n++]);
    *n_out = (int32_t)n;
    return cps;
}

int dbt_tokenizer_set_vocab(dbt_tokenizer *t, char **tokens, int32_t n, char *pool) {
    if (n <= 0) return dbt_set_error("the vocabulary is empty");
    if (n > DBT_MAX_VOCAB) return dbt_set_error("the vocabulary has %d entries (limit %d)", n,
                                                DBT_MAX_VOCAB);
    t->id_to_token = tokens;
    t->n_vocab = n;
    t->pool = pool;
    if (dbt_strmap_init(&t->model_vocab, (size_t)n)) return dbt_set_error("out of memory");
    t->max_key_len = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!tokens[i]) continue;
        size_t len = strlen(tokens[i]);
        if ((int)len > t->max_key_len) t->max_key_len = (int)len;
        if (dbt_strmap_put(&t->model_vocab, tokens[i], len, i)) return dbt_set_error("out of memory");
    }
    return 0;
}

/* Registers an added token. id < 0: use the vocabulary's id for it, or append a new id. */
int dbt_tokenizer_add_token(dbt_tokenizer *t, const char *content, int special, int normalized,
                            int lstrip, int rstrip, int single_word, int32_t id) {
    if (!content || !*content) return dbt_set_error("an added token is empty");
    for (int k = 0; k < t->n_added; k++) /* already known: refresh its flags */
        if (strcmp(t->added[k].content, content) == 0) {
            t->added[k].special |= special;
            return 0;
        }
    if (id < 0) id = dbt_strmap_get(&t->model_vocab, content, strlen(content));
    if (id < 0) id = t->n_vocab;
    if (id >= DBT_MAX_VOCAB) return dbt_set_error("added token id %d is out of range", id);
    if (id >= t->n_vocab) { /* grow id_to_token with the new id (gaps stay NULL) */
        char **v = realloc(t->id_to_token, ((size_t)id + 1) * sizeof *v);
        if (!v) return dbt_set_error("out of memory");
        for (int32_t i = t->n_vocab; i <= id; i++) v[i] = NULL;
        t->id_to_token = v;
        t->n_vocab = id + 1;
    }
    dbt_added_token *a = realloc(t->added, ((size_t)t->n_added + 1) * sizeof *a);
    if (!a) return dbt_set_error("out of memory");
    t->added = a;
    dbt_added_token *x = &a[t->n_added];
    memset(x, 0, sizeof *x);
    x->content = strdup(content);
    if (!x->content) return dbt_set_error("out of memory");
    t->n_added++;
    x->id = id;
    x->special = special;
    x->normalized = normalized;
    x->lstrip = lstrip;
    x->rstrip = rstrip;
    x->single_word = single_word;
    if (!t->id_to_token[id]) t->id_to_token[id] = x->content;
    return 0;
}

void dbt_template_bert(dbt_tokenizer *t, int32_t cls, int32_t sep) {
    dbt_template_piece *s = calloc(3, sizeof *s), *p = calloc(5, sizeof *p);
    if (!s || !p) { free(s); free(p); return; }
    s[0] = (dbt_template_piece){0, 0, cls, 0};
    s[1] = (dbt_template_piece){1, 0, 0, 0};
    s[2] = (dbt_template_piece){0, 0, sep, 0};
    p[0] = s[0]; p[1] = s[1]; p[2] = s[2];
    p[3] = (dbt_template_piece){1, 1, 0, 1};
    p[4] = (dbt_template_piece){0, 0, sep, 1};
    free(t->single.pieces);
    free(t->pair.pieces);
    t->single = (dbt_template){s, 3};
    t->pair = (dbt_template){p, 5};
    t->has_post = 1;
}

/* Derived state once all tokens are known: normalized forms of added tokens, the special-id
 * table and the per-id special flags. */
int dbt_tokenizer_finish(dbt_tokenizer *t) {
    for (int k = 0; k < t->n_added; k++) {
        dbt_added_token *a = &t->added[k];
        int32_t n;
        int32_t *cps = to_cps(a->content, &n);
        if (!cps) return dbt_set_error("out of memory");
        if (a->normalized && t->has_normalizer) { /* match the token as the normalizer writes it */
            dbt_nbuf nb = {0};
            if (dbt_normalize(&t->norm, cps, n, 0, &nb)) { free(cps); return dbt_set_error("out of memory"); }
            int32_t *m = realloc(cps, (nb.n + 1) * sizeof *m);
            if (!m) { free(cps); free(nb.v); return dbt_set_error("out of memory"); }
            cps = m;
            for (size_t i = 0; i < nb.n; i++) cps[i] = nb.v[i].cp;
            n = (int32_t)nb.n;
            free(nb.v);
        }
        free(a->cps);
        a->cps = cps;
        a->n_cps = n;
    }
    free(t->is_special);
    t->is_special = calloc((size_t)t->n_vocab, 1);
    if (!t->is_special) return dbt_set_error("out of memory");
    for (int k = 0; k < t->n_added; k++)
        if (t->added[k].special) t->is_special[t->added[k].id] = 1;
    return 0;
}

/* The string of a special-token entry in tokenizer_config.json: "x" or {"content": "x"}. */
static const char *token_string(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

static int json_bool(const cJSON *o, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return def;
}

static dbt_tokenizer *from_vocab_txt(const char *vocab_path, const cJSON *config,
                                     const dbt_tokenizer_opts *opts) {
    size_t len;
    char *pool = dbt_read_file(vocab_path, DBT_MAX_TOKENIZER_FILE, &len);
    if (!pool) return NULL;
    int32_t n = 0;
    for (size_t i = 0; i < len; i++) n += pool[i] == '\n';
    if (len && pool[len - 1] != '\n') n++;
    if (n == 0 || n > DBT_MAX_VOCAB) {
        free(pool);
        dbt_set_error("%s: %s vocabulary (%d lines)", vocab_path, n ? "oversized" : "empty", n);
        return NULL;
    }
    char **tokens = malloc((size_t)n * sizeof *tokens);
    dbt_tokenizer *t = calloc(1, sizeof *t);
    if (!tokens || !t) { free(pool); free(tokens); free(t); dbt_set_error("out of memory"); return NULL; }
    int32_t k = 0;
    char *line = pool;
    for (size_t i = 0; i <= len && k < n; i++) {
        if (i == len || pool[i] == '\n') {
            pool[i] = '\0';
            tokens[k++] = line;
            line = pool + i + 1;
        }
    }
    if (dbt_tokenizer_set_vocab(t, tokens, n, pool)) goto fail;

    int lower = config ? json_bool(config, "do_lower_case", 1) : 1;
    if (opts && opts->lowercase >= 0) lower = opts->lowercase;
    int strip = lower; /* strip_accents: None follows lowercase */
    const cJSON *sa = config ? cJSON_GetObjectItemCaseSensitive(config, "strip_accents") : NULL;
    if (cJSON_IsBool(sa)) strip = cJSON_IsTrue(sa);
    if (opts && opts->strip_accents >= 0) strip = opts->strip_accents;
    t->has_normalizer = 1;
    t->norm.clean_text = 1;
    t->norm.handle_chinese_chars = config ? json_bool(config, "tokenize_chinese_chars", 1) : 1;
    t->norm.lowercase = lower;
    t->norm.strip_accents = strip;
    t->has_pretokenizer = 1;
    memcpy(t->prefix, "##", 3);
    t->prefix_len = 2;
    t->max_input_chars_per_word = 100;

    /* Special tokens: the config's names (or BERT's defaults), then added_tokens_decoder. */
    static const char *const keys[] = {"unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
    static const char *const defaults[] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};
    const char *names[5];
    const cJSON *atd = config ? cJSON_GetObjectItemCaseSensitive(config, "added_tokens_decoder") : NULL;
    if (cJSON_IsObject(atd)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, atd) {
            char *endp;
            long id = strtol(e->string, &endp, 10);
            const char *c = token_string(e);
            if (*endp || id < 0 || id >= DBT_MAX_VOCAB || !c) {
                dbt_set_error("tokenizer_config.json: bad added_tokens_decoder entry \"%s\"", e->string);
                goto fail;
            }
            if (dbt_tokenizer_add_token(t, c, json_bool(e, "special", 0), json_bool(e, "normalized", 0),
                                        json_bool(e, "lstrip", 0), json_bool(e, "rstrip", 0),
                                        json_bool(e, "single_word", 0), (int32_t)id))
                goto fail;
        }
    }
    for (int i = 0; i < 5; i++) {
        const cJSON *v = config ? cJSON_GetObjectItemCaseSensitive(config, keys[i]) : NULL;
        names[i] = v ? token_string(v) : defaults[i];
        if (!names[i]) names[i] = defaults[i];
        if (dbt_tokenizer_add_token(t, names[i], 1, 0, 0, 0, 0, -1)) goto fail;
    }
    t->unk_id = dbt_tokenizer_token_to_id(t, names[0]);
    dbt_template_bert(t, dbt_tokenizer_token_to_id(t, names[3]), dbt_tokenizer_token_to_id(t, names[1]));
    if (!t->has_post) { dbt_set_error("out of memory"); goto fail; }
    t->special.unk = t->unk_id;
    t->special.sep = dbt_tokenizer_token_to_id(t, names[1]);
    t->special.pad = dbt_tokenizer_token_to_id(t, names[2]);
    t->special.cls = dbt_tokenizer_token_to_id(t, names[3]);
    t->special.mask = dbt_tokenizer_token_to_id(t, names[4]);
    const cJSON *mml = config ? cJSON_GetObjectItemCaseSensitive(config, "model_max_length") : NULL;
    if (cJSON_IsNumber(mml) && mml->valuedouble > 0 && mml->valuedouble < INT_MAX)
        t->model_max_length = (int32_t)mml->valuedouble;
    if (dbt_tokenizer_finish(t)) goto fail;
    return t;
fail:
    dbt_prefix_error("%s", vocab_path);
    dbt_tokenizer_free(t);
    return NULL;
}

static cJSON *read_json(const char *path) {
    size_t len;
    char *text = dbt_read_file(path, DBT_MAX_TOKENIZER_FILE, &len);
    if (!text) return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) dbt_set_error("%s: invalid JSON near byte %zu", path, end ? (size_t)(end - text) : 0);
    free(text);
    return j;
}

/* tokenizer_config.json's "padding_side" ("right" or "left"): where transformers puts padding. */
static int padding_side(dbt_tokenizer *t, const cJSON *config) {
    const cJSON *side = cJSON_GetObjectItemCaseSensitive(config, "padding_side");
    if (!side || cJSON_IsNull(side)) return 0;
    if (!cJSON_IsString(side) || (strcmp(side->valuestring, "left") && strcmp(side->valuestring, "right")))
        return dbt_set_error("tokenizer_config.json: padding_side must be \"right\" or \"left\"");
    t->pad_default.left = strcmp(side->valuestring, "left") == 0;
    return 0;
}

dbt_tokenizer *dbt_tokenizer_load(const char *path, const dbt_tokenizer_opts *opts) {
    if (!path) { dbt_set_error("no tokenizer path given"); return NULL; }
    char buf[4096];
    if (dbt_is_dir(path)) {
        cJSON *config = NULL;
        if (dbt_file_exists(dbt_path_join(buf, sizeof buf, path, "tokenizer_config.json"))) {
            config = read_json(buf);
            if (!config) return NULL;
        }
        dbt_tokenizer *t = NULL;
        if (dbt_file_exists(dbt_path_join(buf, sizeof buf, path, "tokenizer.json"))) {
            /* transformers' BertTokenizerFast lets tokenizer_config.json (or its defaults)
             * override the normalizer flags stored in tokenizer.json. */
            dbt_tokenizer_opts o = {-1, -1};
            if (opts) o = *opts;
            if (o.lowercase < 0) o.lowercase = config ? json_bool(config, "do_lower_case", 1) : 1;
            if (o.strip_accents < 0 && config) {
                const cJSON *sa = cJSON_GetObjectItemCaseSensitive(config, "strip_accents");
                if (cJSON_IsBool(sa)) o.strip_accents = cJSON_IsTrue(sa);
            }
            t = dbt_tokenizer_from_json(buf, &o);
            if (t && config) {
                t->norm.handle_chinese_chars = json_bool(config, "tokenize_chinese_chars",
                                                         t->norm.handle_chinese_chars);
                const cJSON *mml = cJSON_GetObjectItemCaseSensitive(config, "model_max_length");
                if (cJSON_IsNumber(mml) && mml->valuedouble > 0 && mml->valuedouble < INT_MAX)
                    t->model_max_length = (int32_t)mml->valuedouble;
            }
        } else if (dbt_file_exists(dbt_path_join(buf, sizeof buf, path, "vocab.txt"))) {
            t = from_vocab_txt(buf, config, opts);
        } else {
            dbt_set_error("%s: no tokenizer.json or vocab.txt in this folder", path);
        }
        if (t && config && padding_side(t, config)) {
            dbt_prefix_error("%s", path);
            dbt_tokenizer_free(t);
            t = NULL;
        }
        cJSON_Delete(config);
        return t;
    }
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) return dbt_tokenizer_from_json(path, opts);
    return from_vocab_txt(path, NULL, opts);
}

void dbt_tokenizer_free(dbt_tokenizer *t) {
    if (!t) return;
    for (int k = 0; k < t->n_added; k++) {
        free(t->added[k].content);
        free(t->added[k].cps);
    }
    free(t->added);
    free(t->id_to_token);
    free(t->pool);
    dbt_strmap_free(&t->model_vocab);
    free(t->single.pieces);
    free(t->pair.pieces);
    free(t->is_special);
    free(t);
}

int32_t dbt_tokenizer_vocab_size(const dbt_tokenizer *t) { return t->n_vocab; }

const char *dbt_tokenizer_id_to_token(const dbt_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->id_to_token[id] : NULL;
}

int32_t dbt_tokenizer_token_to_id(const dbt_tokenizer *t, const char *token) {
    for (int k = 0; k < t->n_added; k++)
        if (strcmp(t->added[k].content, token) == 0) return t->added[k].id;
    return dbt_strmap_get(&t->model_vocab, token, strlen(token));
}

dbt_special_ids dbt_tokenizer_special_ids(const dbt_tokenizer *t) { return t->special; }

int32_t dbt_tokenizer_model_max_length(const dbt_tokenizer *t) { return t->model_max_length; }
