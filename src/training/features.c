/* features.c — tokenization of training examples. */
#include "features.h"

#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/utf8.h"
#include "losses.h"

static int push(dbt_features *fs, int64_t *cap, dbt_feature f) {
    if (fs->n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        dbt_feature *p = realloc(fs->f, (size_t)*cap * sizeof *p);
        if (!p) return dbt_set_error("out of memory");
        fs->f = p;
    }
    fs->f[fs->n++] = f;
    return 0;
}

void dbt_features_free(dbt_features *fs) {
    for (int64_t i = 0; i < fs->n; i++) {
        free(fs->f[i].enc.ids);
        free(fs->f[i].token_labels);
    }
    free(fs->f);
    memset(fs, 0, sizeof *fs);
}

/* Encodes with truncation, keeping the first window. */
static int encode_one(const dbt_tokenizer *tok, const char *a, const char *b, int max_length, dbt_encoding *out) {
    dbt_encode_opts o = dbt_encode_opts_default(NULL);
    o.max_length = max_length;
    o.truncation = DBT_TRUNCATE_LONGEST_FIRST;
    dbt_encoding *e;
    int n = dbt_encode(tok, a, strlen(a), b, b ? strlen(b) : 0, &o, &e);
    if (n < 0) return -1;
    *out = e[0];
    for (int k = 1; k < n; k++) free(e[k].ids);
    free(e);
    return 0;
}

int dbt_features_cls(const dbt_tokenizer *tok, const dbt_cls_data *d, int max_length, dbt_features *out) {
    memset(out, 0, sizeof *out);
    int64_t cap = 0;
    for (int64_t i = 0; i < d->n; i++) {
        dbt_feature f = {0};
        if (encode_one(tok, d->ex[i].text, d->ex[i].pair, max_length, &f.enc)) {
            dbt_features_free(out);
            return dbt_prefix_error("example %lld", (long long)i);
        }
        f.label = d->ex[i].label;
        f.target = d->ex[i].target;
        f.example = i;
        if (push(out, &cap, f)) { free(f.enc.ids); dbt_features_free(out); return -1; }
    }
    return 0;
}

/* One allocation holding the arrays of an n-token encoding (the layout dbt_encode uses). */
static int alloc_encoding(dbt_encoding *e, int32_t n) {
    int32_t *b = calloc((size_t)(n > 0 ? n : 1) * 8, sizeof *b);
    if (!b) return dbt_set_error("out of memory");
    e->n = n;
    e->ids = b;
    e->type_ids = b + n;
    e->attention_mask = b + 2 * (size_t)n;
    e->special_tokens_mask = b + 3 * (size_t)n;
    e->word_ids = b + 4 * (size_t)n;
    e->sequence_ids = b + 5 * (size_t)n;
    e->offsets = b + 6 * (size_t)n;
    return 0;
}

int dbt_encode_words(const dbt_tokenizer *tok, char *const *words, int n_words, int max_length, dbt_encoding *out) {
    dbt_special_ids sp = dbt_tokenizer_special_ids(tok);
    dbt_encode_opts o = dbt_encode_opts_default(NULL);
    o.add_special_tokens = 0;
    int32_t cap = 64, n = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids), *wid = malloc((size_t)cap * sizeof *wid);
    if (!ids || !wid) { free(ids); free(wid); return dbt_set_error("out of memory"); }
    for (int w = 0; w < n_words; w++) {
        dbt_encoding *e;
        int k = dbt_encode(tok, words[w], strlen(words[w]), NULL, 0, &o, &e);
        if (k < 0) { free(ids); free(wid); return -1; }
        if (n + e[0].n > cap) {
            cap = (n + e[0].n) * 2;
            int32_t *a = realloc(ids, (size_t)cap * sizeof *a), *b = a ? realloc(wid, (size_t)cap * sizeof *b) : NULL;
            if (!a || !b) { free(a ? a : ids); free(wid); dbt_encodings_free(e, k); return dbt_set_error("out of memory"); }
            ids = a;
            wid = b;
        }
        for (int t = 0; t < e[0].n; t++) { ids[n] = e[0].ids[t]; wid[n++] = w; }
        dbt_encodings_free(e, k);
    }
    int32_t keep = max_length > 2 && n > max_length - 2 ? max_length - 2 : n;
    if (alloc_encoding(out, keep + 2)) { free(ids); free(wid); return -1; }
    out->ids[0] = sp.cls;
    out->ids[keep + 1] = sp.sep;
    out->word_ids[0] = out->word_ids[keep + 1] = -1;
    out->sequence_ids[0] = out->sequence_ids[keep + 1] = -1;
    out->special_tokens_mask[0] = out->special_tokens_mask[keep + 1] = 1;
    for (int32_t t = 0; t < keep + 2; t++) out->attention_mask[t] = 1;
    for (int32_t t = 0; t < keep; t++) {
        out->ids[t + 1] = ids[t];
        out->word_ids[t + 1] = wid[t];
        out->sequence_ids[t + 1] = 0;
    }
    free(ids);
    free(wid);
    return 0;
}

int dbt_features_ner(const dbt_tokenizer *tok, const dbt_ner_data *d, int max_length, dbt_features *out) {
    memset(out, 0, sizeof *out);
    int64_t cap = 0;
    for (int64_t i = 0; i < d->n; i++) {
        const dbt_ner_sentence *s = &d->s[i];
        dbt_feature f = {0};
        f.example = i;
        if (dbt_encode_words(tok, s->words, s->n, max_length, &f.enc)) { dbt_features_free(out); return -1; }
        f.token_labels = malloc((size_t)f.enc.n * sizeof *f.token_labels);
        if (!f.token_labels) { free(f.enc.ids); dbt_features_free(out); return dbt_set_error("out of memory"); }
        int32_t prev = -1;
        for (int t = 0; t < f.enc.n; t++) { /* the label on the first sub-token of each word */
            int32_t w = f.enc.word_ids[t];
            f.token_labels[t] = w >= 0 && w != prev ? s->tags[w] : DBT_IGNORE_INDEX;
            prev = w;
        }
        if (push(out, &cap, f)) { free(f.enc.ids); free(f.token_labels); dbt_features_free(out); return -1; }
    }
    return 0;
}

int dbt_features_qa(const dbt_tokenizer *tok, const dbt_qa_data *d, int max_length, int doc_stride, dbt_features *out) {
    memset(out, 0, sizeof *out);
    int64_t cap = 0;
    dbt_encode_opts o = dbt_encode_opts_default(NULL);
    o.max_length = max_length;
    o.stride = doc_stride;
    o.truncation = DBT_TRUNCATE_ONLY_SECOND;
    o.return_overflowing = 1;
    const int32_t cls = dbt_tokenizer_special_ids(tok).cls;
    for (int64_t i = 0; i < d->n; i++) {
        const dbt_qa_example *x = &d->ex[i];
        const char *q = x->question;
        while (*q == ' ' || *q == '\t' || *q == '\n') q++; /* run_qa strips the question's left side */
        dbt_encoding *w;
        int nw = dbt_encode(tok, q, strlen(q), x->context, strlen(x->context), &o, &w);
        if (nw < 0) { dbt_features_free(out); return dbt_prefix_error("question %s", x->id); }
        int32_t sc = -1, ec = -1;
        if (x->n_answers > 0) {
            sc = x->starts[0];
            ec = sc + (int32_t)dbt_utf8_count(x->answers[0], strlen(x->answers[0]));
        }
        for (int k = 0; k < nw; k++) {
            dbt_feature f = {0};
            f.enc = w[k];
            f.example = i;
            const dbt_encoding *e = &w[k];
            int32_t cls_index = 0;
            for (int t = 0; t < e->n; t++)
                if (e->ids[t] == cls) { cls_index = t; break; }
            f.start = f.end = cls_index;
            if (sc >= 0) {
                int ts = 0, te = e->n - 1;
                while (ts < e->n && e->sequence_ids[ts] != 1) ts++;
                while (te >= 0 && e->sequence_ids[te] != 1) te--;
                if (ts <= te && e->offsets[2 * ts] <= sc && e->offsets[2 * te + 1] >= ec) {
                    while (ts < e->n && e->offsets[2 * ts] <= sc) ts++;
                    f.start = ts - 1;
                    while (te >= 0 && e->offsets[2 * te + 1] >= ec) te--;
                    f.end = te + 1;
                }
            }
            if (push(out, &cap, f)) {
                for (int r = k; r < nw; r++) free(w[r].ids);
                free(w);
                dbt_features_free(out);
                return -1;
            }
        }
        free(w);
    }
    return 0;
}
