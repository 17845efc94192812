/* request.c — JSON bodies → srv_request. The shapes follow text-embeddings-inference (TEI) for
 * /embed, /predict, /tokenize and /v1/embeddings, and the Hugging Face Inference API for
 * /fill-mask, /ner and /qa ({"inputs": ..., "parameters": {...}}). Unknown top-level keys are
 * ignored (as serde does); unknown "parameters" are refused, since ignoring them would silently
 * change the meaning of a request. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

int srv_fail(srv_error *err, int status, const char *type, const char *fmt, ...) {
    err->status = status;
    err->type = type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

int srv_utf8_valid(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t n;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) n = 1;
        else if (c == 0xE0) { n = 2; lo = 0xA0; }
        else if (c >= 0xE1 && c <= 0xEC) n = 2;
        else if (c == 0xED) { n = 2; hi = 0x9F; }
        else if (c >= 0xEE && c <= 0xEF) n = 2;
        else if (c == 0xF0) { n = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) n = 3;
        else if (c == 0xF4) { n = 3; hi = 0x8F; }
        else return 0;
        if (len - i <= n) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += n + 1;
    }
    return 1;
}

#define INVALID(...) srv_fail(err, 422, "invalid_request", __VA_ARGS__)

/* A JSON string that is valid UTF-8. */
static int text_of(const cJSON *v, const char *what, const char **out, srv_error *err) {
    if (!cJSON_IsString(v) || !v->valuestring) return INVALID("%s must be a string", what);
    if (!srv_utf8_valid(v->valuestring, strlen(v->valuestring))) return INVALID("%s is not valid UTF-8", what);
    *out = v->valuestring;
    return 0;
}

/* An optional boolean: absent or null → def. */
static int opt_bool(const cJSON *o, const char *key, int def, int *out, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsBool(v)) return INVALID("`%s` must be a boolean", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* An optional integer in [min, max]: absent or null → leaves *out. */
static int opt_int(const cJSON *o, const char *key, long min, long max, int *out, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= (double)min && d <= (double)max) || d != floor(d))
        return INVALID("`%s` must be an integer in [%ld, %ld]", key, min, max);
    *out = (int)d;
    return 0;
}

static int alloc_inputs(srv_request *r, int n, srv_error *err) {
    r->in = calloc((size_t)(n > 0 ? n : 1), sizeof *r->in);
    if (!r->in) return srv_fail(err, 503, "overloaded", "out of memory");
    r->n = n;
    return 0;
}

static int check_count(int n, const srv_parse_limits *lim, srv_error *err) {
    if (n == 0) return srv_fail(err, 400, "empty", "`inputs` cannot be empty");
    if (lim && lim->max_client_batch_size > 0 && n > lim->max_client_batch_size)
        return srv_fail(err, 413, "validation", "batch size %d > maximum allowed batch size %d", n,
                        lim->max_client_batch_size);
    return 0;
}

/* str | [str]: the inputs of /embed, /tokenize, /v1/embeddings, /fill-mask, /ner. */
static int parse_texts(srv_request *r, const cJSON *v, const char *key, const srv_parse_limits *lim, srv_error *err) {
    if (!v) return INVALID("missing field `%s`", key);
    if (cJSON_IsString(v)) {
        char what[32];
        snprintf(what, sizeof what, "`%s`", key);
        r->single = 1;
        if (alloc_inputs(r, 1, err)) return -1;
        return text_of(v, what, &r->in[0].text, err);
    }
    if (!cJSON_IsArray(v)) return INVALID("`%s` must be a string or a list of strings", key);
    int n = cJSON_GetArraySize(v);
    if (check_count(n, lim, err)) return -1;
    if (alloc_inputs(r, n, err)) return -1;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (cJSON_IsNumber(e) || cJSON_IsArray(e))
            return INVALID("`%s`: token-id inputs are not supported; send text", key);
        char what[64];
        snprintf(what, sizeof what, "`%s[%d]`", key, i);
        if (text_of(e, what, &r->in[i].text, err)) return -1;
        i++;
    }
    return 0;
}

/* TEI's PredictInput: "a" | ["a", "b"] (one pair) | [["a"], ["a", "b"], ...] (a batch). */
static int parse_sequence(const cJSON *a, int idx, dbt_input *in, srv_error *err) {
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (n != 1 && n != 2)
        return INVALID("`inputs[%d]` must be [string] or [string, string] (a batch mixes single texts and pairs)", idx);
    if (text_of(cJSON_GetArrayItem(a, 0), "`inputs` text", &in->text, err)) return -1;
    if (n == 2 && text_of(cJSON_GetArrayItem(a, 1), "`inputs` text", &in->text_pair, err)) return -1;
    return 0;
}

static int parse_predict_inputs(srv_request *r, const cJSON *v, const srv_parse_limits *lim, srv_error *err) {
    if (!v) return INVALID("missing field `inputs`");
    if (cJSON_IsString(v)) {
        r->single = 1;
        if (alloc_inputs(r, 1, err)) return -1;
        return text_of(v, "`inputs`", &r->in[0].text, err);
    }
    if (!cJSON_IsArray(v))
        return INVALID("`inputs` must be a string, a pair of strings [string, string] or a batch "
                       "[[string], [string, string], ...]");
    int n = cJSON_GetArraySize(v);
    if (n == 0) return srv_fail(err, 400, "empty", "`inputs` cannot be empty");
    const cJSON *first = cJSON_GetArrayItem(v, 0);
    if (cJSON_IsString(first)) { /* one text, or one pair */
        if (n > 2) return INVALID("`inputs`: a pair has two strings; a batch is [[string], [string, string], ...]");
        r->single = 1;
        if (alloc_inputs(r, 1, err)) return -1;
        if (text_of(first, "`inputs[0]`", &r->in[0].text, err)) return -1;
        if (n == 2 && text_of(cJSON_GetArrayItem(v, 1), "`inputs[1]`", &r->in[0].text_pair, err)) return -1;
        return 0;
    }
    if (check_count(n, lim, err)) return -1;
    if (alloc_inputs(r, n, err)) return -1;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (parse_sequence(e, i, &r->in[i], err)) return -1;
        i++;
    }
    return 0;
}

/* /qa: {"question", "context"} | [{...}, ...]. */
static int parse_qa_one(const cJSON *o, int idx, dbt_input *in, srv_error *err) {
    if (!cJSON_IsObject(o)) return INVALID("`inputs[%d]` must be an object {\"question\": ..., \"context\": ...}", idx);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "question"), *c = cJSON_GetObjectItemCaseSensitive(o, "context");
    if (!q || !c) return INVALID("`inputs` needs string fields \"question\" and \"context\"");
    if (text_of(q, "`question`", &in->text, err) || text_of(c, "`context`", &in->text_pair, err)) return -1;
    return 0;
}

static int parse_qa_inputs(srv_request *r, const cJSON *root, const srv_parse_limits *lim, srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!v && cJSON_GetObjectItemCaseSensitive(root, "question")) v = root; /* {"question", "context"} bare */
    if (!v) return INVALID("missing field `inputs`");
    if (cJSON_IsObject(v)) {
        r->single = 1;
        if (alloc_inputs(r, 1, err)) return -1;
        return parse_qa_one(v, 0, &r->in[0], err);
    }
    if (!cJSON_IsArray(v)) return INVALID("`inputs` must be {\"question\": ..., \"context\": ...} or a list of them");
    int n = cJSON_GetArraySize(v);
    if (check_count(n, lim, err)) return -1;
    if (alloc_inputs(r, n, err)) return -1;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (parse_qa_one(e, i, &r->in[i], err)) return -1;
        i++;
    }
    return 0;
}

/* Refuses the keys of "parameters" that the route does not know. */
static int known_keys(const cJSON *params, const char *const *keys, srv_error *err) {
    const cJSON *e;
    cJSON_ArrayForEach(e, params) {
        int ok = 0;
        for (const char *const *k = keys; *k && !ok; k++) ok = e->string && !strcmp(e->string, *k);
        if (!ok) return INVALID("unsupported parameter `%s`", e->string ? e->string : "");
    }
    return 0;
}

static int parse_parameters(srv_request *r, const cJSON *root, srv_error *err) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (!p || cJSON_IsNull(p)) return 0;
    if (!cJSON_IsObject(p)) return INVALID("`parameters` must be an object");
    dbt_pipeline_opts *o = &r->opts;
    if (r->route == SRV_FILL_MASK) {
        static const char *const keys[] = {"top_k", NULL};
        if (known_keys(p, keys, err)) return -1;
        return opt_int(p, "top_k", 1, 1000000, &o->top_k, err);
    }
    if (r->route == SRV_NER) {
        static const char *const keys[] = {"aggregation_strategy", NULL};
        if (known_keys(p, keys, err)) return -1;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(p, "aggregation_strategy");
        if (!a || cJSON_IsNull(a)) return 0;
        static const struct { const char *name; dbt_aggregation agg; } aggs[] = {
            {"none", DBT_AGG_NONE}, {"simple", DBT_AGG_SIMPLE}, {"first", DBT_AGG_FIRST},
            {"average", DBT_AGG_AVERAGE}, {"max", DBT_AGG_MAX}};
        if (cJSON_IsString(a))
            for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++)
                if (!strcmp(a->valuestring, aggs[i].name)) { o->aggregation = aggs[i].agg; return 0; }
        return INVALID("`aggregation_strategy` must be one of none, simple, first, average, max");
    }
    if (r->route == SRV_QA) {
        static const char *const keys[] = {"top_k", "doc_stride", "max_answer_len", "max_question_len",
                                           "max_seq_len", "handle_impossible_answer", NULL};
        if (known_keys(p, keys, err)) return -1;
        if (opt_int(p, "top_k", 1, 1000, &o->top_k, err) || opt_int(p, "doc_stride", 0, 1 << 20, &o->doc_stride, err) ||
            opt_int(p, "max_answer_len", 1, 1 << 20, &o->max_answer_len, err) ||
            opt_int(p, "max_question_len", 1, 1 << 20, &o->max_question_len, err) ||
            opt_int(p, "max_seq_len", 1, 1 << 20, &r->max_seq_len, err))
            return -1;
        return opt_bool(p, "handle_impossible_answer", o->handle_impossible_answer, &o->handle_impossible_answer, err);
    }
    return INVALID("this route takes no `parameters`");
}

/* TEI's optional truncation_direction and prompt_name: only the defaults are served. */
static int tei_options(const cJSON *root, srv_error *err) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "truncation_direction");
    if (d && !cJSON_IsNull(d)) {
        if (!cJSON_IsString(d) || (strcmp(d->valuestring, "right") && strcmp(d->valuestring, "Right") &&
                                   strcmp(d->valuestring, "left") && strcmp(d->valuestring, "Left")))
            return INVALID("`truncation_direction` must be \"right\" or \"left\"");
        if (d->valuestring[0] != 'r' && d->valuestring[0] != 'R')
            return INVALID("`truncation_direction` \"left\" is not supported");
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt_name");
    if (p && !cJSON_IsNull(p)) return INVALID("`prompt_name` is not supported (the model has no prompts)");
    return 0;
}

static int parse_body(srv_request *r, cJSON *root, const srv_parse_limits *lim, srv_error *err) {
    if (!cJSON_IsObject(root)) return INVALID("the request body must be a JSON object");
    switch (r->route) {
    case SRV_EMBED:
        if (tei_options(root, err) || opt_bool(root, "truncate", 0, &r->truncate, err) ||
            opt_bool(root, "normalize", 1, &r->normalize, err))
            return -1;
        return parse_texts(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"), "inputs", lim, err);
    case SRV_PREDICT:
        if (tei_options(root, err) || opt_bool(root, "truncate", 0, &r->truncate, err) ||
            opt_bool(root, "raw_scores", 0, &r->raw_scores, err))
            return -1;
        return parse_predict_inputs(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"), lim, err);
    case SRV_TOKENIZE:
        if (tei_options(root, err) || opt_bool(root, "add_special_tokens", 1, &r->add_special_tokens, err)) return -1;
        return parse_texts(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"), "inputs", lim, err);
    case SRV_OPENAI: {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model"), *u = cJSON_GetObjectItemCaseSensitive(root, "user");
        if (m && !cJSON_IsNull(m) && !cJSON_IsString(m)) return INVALID("`model` must be a string");
        if (u && !cJSON_IsNull(u) && !cJSON_IsString(u)) return INVALID("`user` must be a string");
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
        if (f && !cJSON_IsNull(f)) {
            if (cJSON_IsString(f) && !strcmp(f->valuestring, "base64")) r->base64 = 1;
            else if (!cJSON_IsString(f) || strcmp(f->valuestring, "float"))
                return INVALID("`encoding_format` must be \"float\" or \"base64\"");
        }
        const cJSON *dims = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
        if (dims && !cJSON_IsNull(dims)) return INVALID("`dimensions` is not supported");
        r->normalize = 1;
        return parse_texts(r, cJSON_GetObjectItemCaseSensitive(root, "input"), "input", lim, err);
    }
    case SRV_FILL_MASK:
    case SRV_NER:
        if (opt_bool(root, "truncate", 0, &r->truncate, err) || parse_parameters(r, root, err)) return -1;
        return parse_texts(r, cJSON_GetObjectItemCaseSensitive(root, "inputs"), "inputs", lim, err);
    case SRV_QA:
        if (opt_bool(root, "truncate", 0, &r->truncate, err) || parse_parameters(r, root, err)) return -1;
        return parse_qa_inputs(r, root, lim, err);
    default: return srv_fail(err, 404, "not_found", "unknown route");
    }
}

static dbt_task route_task(srv_route r) {
    switch (r) {
    case SRV_PREDICT: return DBT_TASK_CLASSIFY;
    case SRV_FILL_MASK: return DBT_TASK_FILL_MASK;
    case SRV_NER: return DBT_TASK_NER;
    case SRV_QA: return DBT_TASK_QA;
    default: return DBT_TASK_EMBED;
    }
}

int srv_parse_request(srv_route route, const char *body, size_t len, const srv_parse_limits *lim,
                      srv_request *req, srv_error *err) {
    memset(req, 0, sizeof *req);
    req->route = route;
    req->normalize = 1;
    req->add_special_tokens = 1;
    req->opts = dbt_pipeline_opts_default(route_task(route));
    if ((unsigned)route >= SRV_N_ROUTES) return srv_fail(err, 404, "not_found", "unknown route");
    if (!body || len == 0) return INVALID("the request needs a JSON body");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (root) { /* only whitespace may follow the value */
        size_t off = (size_t)(end - body);
        while (off < len && (body[off] == ' ' || body[off] == '\t' || body[off] == '\n' || body[off] == '\r')) off++;
        if (off < len) {
            cJSON_Delete(root);
            return INVALID("invalid JSON: trailing characters at byte %zu", off);
        }
    } else {
        size_t off = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return INVALID("invalid JSON at byte %zu", off);
    }
    req->json = root;
    if (parse_body(req, root, lim, err)) {
        srv_request_free(req);
        return -1;
    }
    if (route == SRV_EMBED || route == SRV_PREDICT || route == SRV_TOKENIZE || route == SRV_OPENAI)
        for (int i = 0; i < req->n; i++) /* TEI refuses empty texts */
            if (!req->in[i].text[0] && (!req->in[i].text_pair || !req->in[i].text_pair[0])) {
                srv_request_free(req);
                return srv_fail(err, 400, "empty", "`inputs` cannot be empty");
            }
    return 0;
}

void srv_request_free(srv_request *req) {
    free(req->in);
    cJSON_Delete(req->json);
    req->in = NULL;
    req->json = NULL;
    req->n = 0;
}
