/* json_writer.c — JSON output without a DOM: the CLI streams one object per input line. */
#include "json_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dbt_jw_raw(dbt_jw *w, const char *s, size_t n) {
    if (w->oom) return;
    if (w->n + n + 1 > w->cap) {
        size_t cap = (w->n + n + 1) * 2;
        char *p = realloc(w->s, cap);
        if (!p) { w->oom = 1; return; }
        w->s = p;
        w->cap = cap;
    }
    memcpy(w->s + w->n, s, n);
    w->n += n;
    w->s[w->n] = '\0';
}

void dbt_jw_lit(dbt_jw *w, const char *s) { dbt_jw_raw(w, s, strlen(s)); }

void dbt_jw_str(dbt_jw *w, const char *s, size_t n) {
    dbt_jw_raw(w, "\"", 1);
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        dbt_jw_raw(w, s + run, i - run);
        char esc[8];
        switch (c) {
        case '"': dbt_jw_raw(w, "\\\"", 2); break;
        case '\\': dbt_jw_raw(w, "\\\\", 2); break;
        case '\n': dbt_jw_raw(w, "\\n", 2); break;
        case '\r': dbt_jw_raw(w, "\\r", 2); break;
        case '\t': dbt_jw_raw(w, "\\t", 2); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); dbt_jw_raw(w, esc, 6);
        }
        run = i + 1;
    }
    dbt_jw_raw(w, s + run, n - run);
    dbt_jw_raw(w, "\"", 1);
}

void dbt_jw_int(dbt_jw *w, long long v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", v);
    dbt_jw_raw(w, b, (size_t)n);
}

void dbt_jw_float(dbt_jw *w, double v) {
    if (!isfinite(v)) { dbt_jw_lit(w, "null"); return; } /* JSON has no NaN or infinity */
    char b[40];
    int n = snprintf(b, sizeof b, "%.9g", v);
    dbt_jw_raw(w, b, (size_t)n);
}

void dbt_jw_double(dbt_jw *w, double v) {
    if (!isfinite(v)) { dbt_jw_lit(w, "null"); return; }
    char b[40];
    int n = snprintf(b, sizeof b, "%.17g", v);
    dbt_jw_raw(w, b, (size_t)n);
}

void dbt_jw_ints(dbt_jw *w, const int32_t *v, int n) {
    dbt_jw_raw(w, "[", 1);
    for (int i = 0; i < n; i++) {
        if (i) dbt_jw_raw(w, ",", 1);
        dbt_jw_int(w, v[i]);
    }
    dbt_jw_raw(w, "]", 1);
}

void dbt_jw_reset(dbt_jw *w) {
    w->n = 0;
    w->oom = 0;
    if (w->s) w->s[0] = '\0';
}

void dbt_jw_free(dbt_jw *w) {
    free(w->s);
    w->s = NULL;
    w->n = w->cap = 0;
}
