/* metrics_cli.c — drives src/training/metrics.c from tests/test_metrics_reference.py.
 *
 * Reads one JSON request, or an array of them, on stdin and prints the result(s) as one line of
 * JSON (an array for an array). Doubles are printed so that they read back exactly; NaN is null.
 *
 *   {"metric": "accuracy" | "prf_binary" | "prf_macro" | "mcc", "pred": [int], "gold": [int],
 *    "pos_label": int (prf_binary, default 1)}
 *   {"metric": "pearson" | "spearman", "pred": [num], "gold": [num]}     (x = pred, y = gold)
 *   {"metric": "rankdata", "x": [num]}
 *   {"metric": "entities", "tags": [str]}                     → [[type, start, end], ...]
 *   {"metric": "seqeval", "pred": [[str]], "gold": [[str]]}   → {"micro", "macro", "weighted",
 *                                                               "types": {name: row}}
 *   {"metric": "squad", "pred": [str | null], "gold": [[str]]} → {"exact_match", "f1", "em_q", "f1_q"}
 *   {"metric": "normalize" | "lower", "texts": [str]}          → [str]
 *
 * A failing metric gives {"error": message}. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distilbert.h"
#include "training/metrics.h"

/* cJSON prints 15 significant digits whenever they read back within an epsilon, which can lose
 * the last bit; these numbers go out as raw %.17g text (null for NaN/inf) instead. */
static cJSON *num(double v) {
    char buf[40];
    if (!isfinite(v)) return cJSON_CreateNull();
    snprintf(buf, sizeof buf, "%.17g", v);
    return cJSON_CreateRaw(buf);
}

static void add_num(cJSON *o, const char *key, double v) { cJSON_AddItemToObject(o, key, num(v)); }

static char *read_all(FILE *f) {
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    for (size_t k; s && (k = fread(s + n, 1, cap - n - 1, f)) > 0;) {
        n += k;
        if (n + 1 == cap) s = realloc(s, cap *= 2);
    }
    if (s) s[n] = '\0';
    return s;
}

static int *ints(const cJSON *a, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(a);
    int *v = malloc((*n ? *n : 1) * sizeof *v);
    size_t i = 0;
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next) v[i++] = (int)e->valuedouble;
    return v;
}

static double *doubles(const cJSON *a, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(a);
    double *v = malloc((*n ? *n : 1) * sizeof *v);
    size_t i = 0;
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next) v[i++] = e->valuedouble;
    return v;
}

/* The strings of a (null → NULL), appended to *v. */
static void strings(const cJSON *a, const char ***v, size_t *n, size_t *cap) {
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next) {
        if (*n == *cap) *v = realloc(*v, (*cap = *cap ? 2 * *cap : 64) * sizeof **v);
        (*v)[(*n)++] = cJSON_IsString(e) ? e->valuestring : NULL;
    }
}

static cJSON *error(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", dbt_last_error());
    return o;
}

static cJSON *prf_json(const dbt_prf *p) {
    cJSON *o = cJSON_CreateObject();
    add_num(o, "precision", p->precision);
    add_num(o, "recall", p->recall);
    add_num(o, "f1", p->f1);
    return o;
}

static cJSON *row_json(const dbt_seqeval_row *r) {
    cJSON *o = cJSON_CreateObject();
    add_num(o, "precision", r->precision);
    add_num(o, "recall", r->recall);
    add_num(o, "f1-score", r->f1);
    add_num(o, "support", (double)r->support);
    return o;
}

static cJSON *run(const cJSON *req) {
    const char *metric = cJSON_GetStringValue(cJSON_GetObjectItem(req, "metric"));
    const cJSON *pred = cJSON_GetObjectItem(req, "pred"), *gold = cJSON_GetObjectItem(req, "gold");
    if (!metric) return cJSON_CreateString("no metric");
    cJSON *res = NULL;
    size_t n, m;
    if (!strcmp(metric, "accuracy") || !strcmp(metric, "prf_binary") || !strcmp(metric, "prf_macro") ||
        !strcmp(metric, "mcc")) {
        int *p = ints(pred, &n), *g = ints(gold, &m);
        if (n != m) res = cJSON_CreateString("length mismatch");
        else if (!strcmp(metric, "accuracy")) res = num(dbt_metric_accuracy(p, g, n));
        else if (!strcmp(metric, "mcc")) res = num(dbt_metric_mcc(p, g, n));
        else {
            dbt_prf out;
            const cJSON *pl = cJSON_GetObjectItem(req, "pos_label");
            int rc = !strcmp(metric, "prf_macro") ? dbt_metric_prf_macro(p, g, n, &out)
                                                  : dbt_metric_prf_binary(p, g, n, pl ? (int)pl->valuedouble : 1, &out);
            res = rc ? error() : prf_json(&out);
        }
        free(p), free(g);
    } else if (!strcmp(metric, "pearson") || !strcmp(metric, "spearman")) {
        double *x = doubles(pred, &n), *y = doubles(gold, &m);
        if (n != m) res = cJSON_CreateString("length mismatch");
        else res = num(!strcmp(metric, "pearson") ? dbt_metric_pearson(x, y, n) : dbt_metric_spearman(x, y, n));
        free(x), free(y);
    } else if (!strcmp(metric, "rankdata")) {
        double *x = doubles(cJSON_GetObjectItem(req, "x"), &n), *r = malloc((n ? n : 1) * sizeof *r);
        dbt_metric_rankdata(x, n, r);
        res = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(res, num(r[i]));
        free(x), free(r);
    } else if (!strcmp(metric, "entities")) {
        const char **tags = NULL;
        size_t cap = 0;
        n = 0;
        strings(cJSON_GetObjectItem(req, "tags"), &tags, &n, &cap);
        dbt_entity *e;
        int64_t k = dbt_seqeval_entities(tags, n, &e);
        if (k < 0) res = error();
        else {
            res = cJSON_CreateArray();
            for (int64_t i = 0; i < k; i++) {
                cJSON *t = cJSON_CreateArray();
                char *name = strndup(e[i].type, e[i].type_len);
                cJSON_AddItemToArray(t, cJSON_CreateString(name));
                cJSON_AddItemToArray(t, num((double)e[i].start));
                cJSON_AddItemToArray(t, num((double)e[i].end));
                cJSON_AddItemToArray(res, t);
                free(name);
            }
            free(e);
        }
        free(tags);
    } else if (!strcmp(metric, "seqeval")) {
        const char **p = NULL, **g = NULL;
        size_t np_ = 0, ng = 0, cp = 0, cg = 0, ns = (size_t)cJSON_GetArraySize(gold), s = 0;
        size_t *len = malloc((ns ? ns : 1) * sizeof *len);
        int bad = cJSON_GetArraySize(pred) != (int)ns;
        for (const cJSON *a = pred ? pred->child : NULL, *b = gold ? gold->child : NULL; a && b; a = a->next, b = b->next, s++) {
            len[s] = (size_t)cJSON_GetArraySize(b);
            bad |= cJSON_GetArraySize(a) != (int)len[s];
            strings(a, &p, &np_, &cp);
            strings(b, &g, &ng, &cg);
        }
        dbt_seqeval_report r;
        if (bad) res = cJSON_CreateString("length mismatch");
        else if (dbt_seqeval_evaluate(p, g, len, ns, &r)) res = error();
        else {
            res = cJSON_CreateObject();
            cJSON_AddItemToObject(res, "micro", row_json(&r.micro));
            cJSON_AddItemToObject(res, "macro", row_json(&r.macro));
            cJSON_AddItemToObject(res, "weighted", row_json(&r.weighted));
            cJSON *types = cJSON_AddObjectToObject(res, "types");
            cJSON *order = cJSON_AddArrayToObject(res, "order");
            for (int i = 0; i < r.n_types; i++) {
                cJSON_AddItemToObject(types, r.types[i].name, row_json(&r.types[i].row));
                cJSON_AddItemToArray(order, cJSON_CreateString(r.types[i].name));
            }
            dbt_seqeval_report_free(&r);
        }
        free(p), free(g), free(len);
    } else if (!strcmp(metric, "squad")) {
        const char **p = NULL, **g = NULL;
        size_t np_ = 0, ng = 0, cp = 0, cg = 0, nq = (size_t)cJSON_GetArraySize(gold), q = 0;
        size_t *counts = malloc((nq ? nq : 1) * sizeof *counts);
        strings(pred, &p, &np_, &cp);
        for (const cJSON *b = gold ? gold->child : NULL; b; b = b->next, q++) {
            counts[q] = (size_t)cJSON_GetArraySize(b);
            strings(b, &g, &ng, &cg);
        }
        double em, f1;
        if (np_ != nq) res = cJSON_CreateString("length mismatch");
        else if (dbt_squad_evaluate(p, g, counts, nq, &em, &f1)) res = error();
        else {
            res = cJSON_CreateObject();
            add_num(res, "exact_match", em);
            add_num(res, "f1", f1);
            cJSON *emq = cJSON_AddArrayToObject(res, "em_q"), *f1q = cJSON_AddArrayToObject(res, "f1_q");
            for (size_t i = 0, at = 0; i < nq; at += counts[i], i++) {
                int e = p[i] ? dbt_squad_exact_match(p[i], g + at, counts[i]) : 0;
                double f = p[i] ? dbt_squad_f1(p[i], g + at, counts[i]) : 0;
                cJSON_AddItemToArray(emq, num(e));
                cJSON_AddItemToArray(f1q, num(f));
            }
        }
        free(p), free(g), free(counts);
    } else if (!strcmp(metric, "normalize") || !strcmp(metric, "lower")) {
        res = cJSON_CreateArray();
        for (const cJSON *e = cJSON_GetObjectItem(req, "texts")->child; e; e = e->next) {
            const char *t = e->valuestring;
            char *o = !strcmp(metric, "lower") ? dbt_py_lower(t, strlen(t)) : dbt_squad_normalize(t, strlen(t));
            cJSON_AddItemToArray(res, cJSON_CreateString(o));
            free(o);
        }
    } else {
        res = cJSON_CreateString("unknown metric");
    }
    return res;
}

int main(void) {
    char *text = read_all(stdin);
    cJSON *in = text ? cJSON_Parse(text) : NULL;
    if (!in) {
        fprintf(stderr, "metrics_cli: invalid JSON on stdin\n");
        return 2;
    }
    cJSON *out;
    if (cJSON_IsArray(in)) {
        out = cJSON_CreateArray();
        for (const cJSON *r = in->child; r; r = r->next) cJSON_AddItemToArray(out, run(r));
    } else {
        out = run(in);
    }
    char *s = cJSON_PrintUnformatted(out);
    puts(s);
    free(s), free(text);
    cJSON_Delete(in), cJSON_Delete(out);
    return 0;
}
