/* pipeline.c — dispatch of dbt_pipeline_run, defaults, and the helpers every task shares:
 * encoding a batch of inputs, running the model in chunks, softmax and sorting as transformers'
 * pipelines do them. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "tasks.h"

static void (*g_log)(const char *, void *);
static void *g_log_ud;

void dbt_set_log(void (*fn)(const char *msg, void *user_data), void *user_data) {
    g_log = fn;
    g_log_ud = user_data;
}

void dbt_log(const char *fmt, ...) {
    if (!g_log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log(buf, g_log_ud);
}

dbt_pipeline_opts dbt_pipeline_opts_default(dbt_task task) {
    dbt_pipeline_opts o;
    memset(&o, 0, sizeof o);
    o.top_k = task == DBT_TASK_FILL_MASK ? 5 : 1;
    o.function = DBT_FN_DEFAULT;
    o.aggregation = DBT_AGG_NONE;
    o.max_length = 0;
    o.doc_stride = -1;
    o.max_answer_len = 15;
    o.max_question_len = 64;
    o.pooling = DBT_POOL_DEFAULT;
    o.normalize = -1;
    o.batch_size = 32;
    return o;
}

dbt_head dbt_task_head(dbt_task task) {
    switch (task) {
    case DBT_TASK_FILL_MASK: return DBT_HEAD_MLM;
    case DBT_TASK_CLASSIFY: return DBT_HEAD_SEQ_CLS;
    case DBT_TASK_NER: return DBT_HEAD_TOKEN_CLS;
    case DBT_TASK_QA: return DBT_HEAD_QA;
    default: return DBT_HEAD_NONE;
    }
}

int dbt_pipeline_run(dbt_model *m, dbt_task task, const dbt_input *in, int n, const dbt_pipeline_opts *opts,
                     char **json_out) {
    dbt_pipeline_opts o = opts ? *opts : dbt_pipeline_opts_default(task);
    if (o.batch_size <= 0) o.batch_size = 32;
    if (!m->tok) return dbt_set_error("the model folder has no tokenizer (vocab.txt or tokenizer.json)");
    dbt_head need = dbt_task_head(task);
    if (task != DBT_TASK_EMBED && m->info.head != need)
        return dbt_set_error("this task needs a model loaded with its head (%s has architecture \"%s\")",
                             m->dir, m->info.architecture);
    for (int i = 0; i < n; i++) {
        json_out[i] = NULL;
        if (!in[i].text) return dbt_set_error("input %d has no text", i);
    }
    switch (task) {
    case DBT_TASK_FILL_MASK: return dbt_task_fill_mask(m, in, n, &o, json_out);
    case DBT_TASK_CLASSIFY: return dbt_task_classify(m, in, n, &o, json_out);
    case DBT_TASK_NER: return dbt_task_ner(m, in, n, &o, json_out);
    case DBT_TASK_QA: return dbt_task_qa(m, in, n, &o, json_out);
    case DBT_TASK_EMBED: return dbt_task_embed(m, in, n, &o, json_out);
    }
    return dbt_set_error("unknown task %d", (int)task);
}

int dbt_task_encode(const dbt_model *m, const dbt_input *in, int n, int max_length, dbt_encoding **encs_out) {
    dbt_encode_opts eo = dbt_encode_opts_default(m->tok);
    eo.max_length = max_length > 0 ? max_length : m->info.max_position_embeddings;
    eo.truncation = DBT_TRUNCATE_LONGEST_FIRST;
    eo.return_overflowing = 1; /* to notice truncation; only the first window is kept */
    eo.stride = 0;
    dbt_encoding *encs = calloc((size_t)(n > 0 ? n : 1), sizeof *encs);
    if (!encs) return dbt_set_error("out of memory");
    for (int i = 0; i < n; i++) {
        dbt_encoding *w;
        const char *p = in[i].text_pair;
        int nw = dbt_encode(m->tok, in[i].text, strlen(in[i].text), p, p ? strlen(p) : 0, &eo, &w);
        if (nw < 0) {
            dbt_encodings_free(encs, i);
            return dbt_prefix_error("input %d", i);
        }
        if (nw > 1) dbt_log("input %d is longer than %d tokens and was truncated", i, eo.max_length);
        encs[i] = w[0];
        for (int k = 1; k < nw; k++) free(w[k].ids);
        free(w);
    }
    *encs_out = encs;
    return 0;
}

int dbt_task_forward(dbt_model *m, const dbt_encoding *encs, int n, int batch_size, const dbt_forward_opts *fo,
                     dbt_output *out) {
    if (n <= batch_size) return dbt_model_forward(m, encs, n, fo, out);
    memset(out, 0, sizeof *out);
    int32_t rows = 0;
    for (int i = 0; i < n; i++) rows += encs[i].n;
    out->n_seqs = n;
    out->n_rows = rows;
    out->dim = m->info.dim;
    out->row_start = malloc(((size_t)n + 1) * sizeof *out->row_start);
    out->hidden = malloc((size_t)rows * out->dim * sizeof *out->hidden);
    if (!out->row_start || !out->hidden) { dbt_output_free(out); return dbt_set_error("out of memory"); }
    for (int s = 0, r = 0; s <= n; s++) {
        out->row_start[s] = r;
        if (s < n) r += encs[s].n;
    }
    for (int b = 0; b < n; b += batch_size) {
        int nb = n - b < batch_size ? n - b : batch_size;
        dbt_forward_opts sub = fo ? *fo : (dbt_forward_opts){1, NULL};
        if (sub.mlm_rows) sub.mlm_rows += out->row_start[b];
        dbt_output part;
        if (dbt_model_forward(m, encs + b, nb, &sub, &part)) { dbt_output_free(out); return -1; }
        int32_t r0 = out->row_start[b];
        memcpy(out->hidden + (int64_t)r0 * out->dim, part.hidden, (size_t)part.n_rows * out->dim * sizeof(float));
        if (part.pooled) {
            if (!out->pooled && !(out->pooled = malloc((size_t)n * out->dim * sizeof(float)))) {
                dbt_output_free(&part);
                dbt_output_free(out);
                return dbt_set_error("out of memory");
            }
            memcpy(out->pooled + (int64_t)b * out->dim, part.pooled, (size_t)nb * out->dim * sizeof(float));
        }
        if (part.logits) {
            int per_seq = m->info.head == DBT_HEAD_SEQ_CLS;
            int64_t total = per_seq ? n : rows, off = per_seq ? b : r0, cnt = per_seq ? nb : part.n_rows;
            out->logits_cols = part.logits_cols;
            if (!out->logits && !(out->logits = calloc((size_t)total * part.logits_cols, sizeof(float)))) {
                dbt_output_free(&part);
                dbt_output_free(out);
                return dbt_set_error("out of memory");
            }
            memcpy(out->logits + off * part.logits_cols, part.logits, (size_t)cnt * part.logits_cols * sizeof(float));
        }
        dbt_output_free(&part);
    }
    return 0;
}

void dbt_task_softmax(float *v, int n) {
    float mx = v[0];
    for (int i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    float sum = 0;
    for (int i = 0; i < n; i++) {
        v[i] = expf(v[i] - mx);
        sum += v[i];
    }
    for (int i = 0; i < n; i++) v[i] /= sum;
}

static int cmp_desc(const void *a, const void *b, void *keys) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = ((const float *)keys)[i], y = ((const float *)keys)[j];
    if (x != y) return x > y ? -1 : 1;
    return i - j; /* stable */
}

int *dbt_task_argsort_desc(const float *v, int n) {
    int *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
    if (!idx) return NULL;
    for (int i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, (size_t)n, sizeof *idx, cmp_desc, (void *)v);
    return idx;
}

char *dbt_task_take(dbt_jw *w) {
    if (w->oom) { dbt_jw_free(w); return NULL; }
    char *s = w->s ? w->s : strdup("null");
    w->s = NULL;
    w->n = w->cap = 0;
    return s;
}

void dbt_task_json_floats(dbt_jw *w, const float *v, int n) {
    dbt_jw_lit(w, "[");
    for (int i = 0; i < n; i++) {
        if (i) dbt_jw_lit(w, ",");
        dbt_jw_float(w, v[i]);
    }
    dbt_jw_lit(w, "]");
}
