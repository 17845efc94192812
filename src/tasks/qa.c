/* qa.c — the extractive question-answering pipeline, as transformers 4.46.3's
 * QuestionAnsweringPipeline does it with a fast tokenizer:
 *
 *   1. the question and the context are encoded as a pair, question first, truncating only the
 *      context to max_seq_len tokens, the overflow read in windows that share doc_stride tokens;
 *   2. every window goes through the model, batch_size windows at a time across inputs;
 *   3. per window: logits outside the context (but [CLS]) are set to -10000, start and end get a
 *      float32 softmax, the null score start[0]·end[0] is kept, [CLS] is zeroed, and the best
 *      spans (s ≤ e < s + max_answer_len) of the outer product start·endᵀ are picked;
 *   4. each span grows to whole words of the context and becomes a slice of it in code points;
 *   5. the answers of all windows (and the null answer with handle_impossible_answer) are
 *      sorted by score and the top k kept: one answer is an object, otherwise a list.
 *
 * Picking "the best spans" in step 3 is numpy: argmax for k = 1, else argpartition then argsort.
 * When fewer than k spans have a non-zero score (a short context, a small max_answer_len), the
 * zeros that fill the k places — spans with end < start, too long, or from [CLS] — depend on
 * the order numpy's introselect and introsort leave equal elements in, and transformers keeps
 * those whose start and end are context tokens. numpy 1.24's algorithms are reproduced below
 * (the oracle's numpy; later releases dispatch to x86-simd-sort, whose ties fall otherwise) so
 * that even these answers, score 0, come out the same. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/utf8.h"
#include "tasks.h"

/* ------------------------------------------------------------------------------------------ */
/* numpy 1.24 for float32: pairwise sum, argsort (introsort), argpartition (introselect).      */
/* Values never hold NaN here, so numpy's NaN-aware less-than is a plain <.                    */
/* ------------------------------------------------------------------------------------------ */

/* npy_get_msb: floor(log2(n)) for n ≥ 1. */
static int np_msb(int64_t n) {
    int d = 0;
    while (n >>= 1) d++;
    return d;
}

/* numpy's pairwise summation of float32 (blocks of 128, 8 accumulators). */
static float np_pairwise_sum(const float *a, int64_t n) {
    if (n < 8) {
        float res = 0.f;
        for (int64_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        float r[8];
        int64_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_pairwise_sum(a, n2) + np_pairwise_sum(a + n2, n - n2);
}

/* arr.sum() of a float32 array: the reduction starts from add's identity 0, then adds the
 * pairwise sum of all elements (checked against numpy bit for bit). */
static float np_sum(const float *a, int64_t n) { return 0.f + np_pairwise_sum(a, n); }

#define SW(i, j) do { int64_t t_ = ts[i]; ts[i] = ts[j]; ts[j] = t_; } while (0)

/* aheapsort_ (the introsort fallback), on tosort[0..n) keyed by v. */
static void np_aheapsort(const float *v, int64_t *tosort, int64_t n) {
    int64_t *a = tosort - 1; /* 1-based heap indexing, as numpy */
    int64_t i, j, l, tmp;
    for (l = n >> 1; l > 0; --l) {
        tmp = a[l];
        for (i = l, j = l << 1; j <= n;) {
            if (j < n && v[a[j]] < v[a[j + 1]]) j += 1;
            if (v[tmp] < v[a[j]]) { a[i] = a[j]; i = j; j += j; }
            else break;
        }
        a[i] = tmp;
    }
    for (; n > 1;) {
        tmp = a[n];
        a[n] = a[1];
        n -= 1;
        for (i = 1, j = 2; j <= n;) {
            if (j < n && v[a[j]] < v[a[j + 1]]) j++;
            if (v[tmp] < v[a[j]]) { a[i] = a[j]; i = j; j += j; }
            else break;
        }
        a[i] = tmp;
    }
}

/* np.argsort(v) (kind quicksort = aquicksort_: median-of-3 introsort, insertion sort below 16
 * elements, heapsort past 2·log2(n) levels). tosort must hold 0..num-1 on entry. */
static void np_argsort(const float *v, int64_t *tosort, int64_t num) {
    enum { SMALL_QUICKSORT = 15, STACK = 128 };
    int64_t *pl = tosort, *pr = tosort + num - 1;
    int64_t *stack[STACK], **sptr = stack;
    int64_t *pm, *pi, *pj, *pk, vi, tmp;
    int depth[STACK], *psdepth = depth;
    int cdepth = np_msb(num) * 2;
    float vp;
    if (num < 2) return;
    for (;;) {
        if (cdepth < 0) {
            np_aheapsort(v, pl, pr - pl + 1);
            goto stack_pop;
        }
        while ((pr - pl) > SMALL_QUICKSORT) {
            pm = pl + ((pr - pl) >> 1);
            if (v[*pm] < v[*pl]) { tmp = *pm; *pm = *pl; *pl = tmp; }
            if (v[*pr] < v[*pm]) { tmp = *pr; *pr = *pm; *pm = tmp; }
            if (v[*pm] < v[*pl]) { tmp = *pm; *pm = *pl; *pl = tmp; }
            vp = v[*pm];
            pi = pl;
            pj = pr - 1;
            tmp = *pm; *pm = *pj; *pj = tmp;
            for (;;) {
                do ++pi; while (v[*pi] < vp);
                do --pj; while (vp < v[*pj]);
                if (pi >= pj) break;
                tmp = *pi; *pi = *pj; *pj = tmp;
            }
            pk = pr - 1;
            tmp = *pi; *pi = *pk; *pk = tmp;
            if (pi - pl < pr - pi) { /* push the larger partition */
                *sptr++ = pi + 1;
                *sptr++ = pr;
                pr = pi - 1;
            } else {
                *sptr++ = pl;
                *sptr++ = pi - 1;
                pl = pi + 1;
            }
            *psdepth++ = --cdepth;
        }
        for (pi = pl + 1; pi <= pr; ++pi) { /* insertion sort */
            vi = *pi;
            vp = v[vi];
            pj = pi;
            pk = pi - 1;
            while (pj > pl && vp < v[*pk]) *pj-- = *pk--;
            *pj = vi;
        }
    stack_pop:
        if (sptr == stack) break;
        pr = *(--sptr);
        pl = *(--sptr);
        cdepth = *(--psdepth);
    }
}

static void np_introselect(const float *v, int64_t *ts, int64_t num, int64_t kth);

/* Median of 3 to ts[low], the smallest of the three to ts[low + 1]. */
static void np_median3_swap(const float *v, int64_t *ts, int64_t low, int64_t mid, int64_t high) {
    if (v[ts[high]] < v[ts[mid]]) SW(high, mid);
    if (v[ts[high]] < v[ts[low]]) SW(high, low);
    if (v[ts[low]] < v[ts[mid]]) SW(low, mid);
    SW(mid, low + 1);
}

static int64_t np_median5(const float *v, int64_t *ts) {
    if (v[ts[1]] < v[ts[0]]) SW(1, 0);
    if (v[ts[4]] < v[ts[3]]) SW(4, 3);
    if (v[ts[3]] < v[ts[0]]) SW(3, 0);
    if (v[ts[4]] < v[ts[1]]) SW(4, 1);
    if (v[ts[2]] < v[ts[1]]) SW(2, 1);
    if (v[ts[3]] < v[ts[2]]) return v[ts[3]] < v[ts[1]] ? 1 : 3;
    return 2;
}

static void np_unguarded_partition(const float *v, int64_t *ts, float pivot, int64_t *ll, int64_t *hh) {
    for (;;) {
        do (*ll)++; while (v[ts[*ll]] < pivot);
        do (*hh)--; while (pivot < v[ts[*hh]]);
        if (*hh < *ll) break;
        SW(*ll, *hh);
    }
}

static int64_t np_median_of_median5(const float *v, int64_t *ts, int64_t num) {
    int64_t nmed = num / 5;
    for (int64_t i = 0, subleft = 0; i < nmed; i++, subleft += 5) {
        int64_t m = np_median5(v, ts + subleft);
        SW(subleft + m, i);
    }
    if (nmed > 2) np_introselect(v, ts, nmed, nmed / 2);
    return nmed / 2;
}

static void np_dumb_select(const float *v, int64_t *ts, int64_t num, int64_t kth) {
    for (int64_t i = 0; i <= kth; i++) {
        int64_t minidx = i;
        float minval = v[ts[i]];
        for (int64_t k = i + 1; k < num; k++)
            if (v[ts[k]] < minval) { minidx = k; minval = v[ts[k]]; }
        SW(i, minidx);
    }
}

/* np.argpartition(v, kth) (introselect_ without a pivot stack): afterwards ts[kth] holds the
 * element of rank kth, ts[0..kth) the smaller ones. ts must hold 0..num-1 on entry. */
static void np_introselect(const float *v, int64_t *ts, int64_t num, int64_t kth) {
    int64_t low = 0, high = num - 1;
    if (kth - low < 3) {
        np_dumb_select(v, ts + low, high - low + 1, kth - low);
        return;
    }
    if (kth == num - 1) { /* numpy's shortcut for the maximum of inexact types */
        int64_t maxidx = low;
        float maxval = v[ts[low]];
        for (int64_t k = low + 1; k < num; k++)
            if (!(v[ts[k]] < maxval)) { maxidx = k; maxval = v[ts[k]]; }
        SW(kth, maxidx);
        return;
    }
    int depth_limit = np_msb(num) * 2;
    while (low + 1 < high) {
        int64_t ll = low + 1, hh = high;
        if (depth_limit > 0 || hh - ll < 5) {
            np_median3_swap(v, ts, low, low + (high - low) / 2, high);
        } else { /* slow progress: median of medians of 5 for a linear worst case */
            int64_t mid = ll + np_median_of_median5(v, ts + ll, hh - ll);
            SW(mid, low);
            ll--;
            hh++;
        }
        depth_limit--;
        np_unguarded_partition(v, ts, v[ts[low]], &ll, &hh);
        SW(low, hh);
        if (hh >= kth) high = hh - 1;
        if (hh <= kth) low = ll;
    }
    if (high == low + 1 && v[ts[high]] < v[ts[low]]) SW(high, low);
}

#undef SW

/* ------------------------------------------------------------------------------------------ */
/* The pipeline.                                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    double score; /* a float32 value, or the null score */
    int start, end; /* code points of the context */
    int order;      /* position in transformers' list before sorting (for a stable sort) */
} qa_answer;

typedef struct {
    qa_answer *v;
    int n, cap;
} qa_answers;

static int answers_push(qa_answers *a, double score, int start, int end) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        qa_answer *v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) return dbt_set_error("out of memory");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n] = (qa_answer){score, start, end, a->n};
    a->n++;
    return 0;
}

/* sorted(answers, key=score, reverse=True): Python's sort is stable, reverse included. */
static int cmp_answer(const void *pa, const void *pb) {
    const qa_answer *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->order - b->order;
}

/* Scratch buffers for one window, grown to the longest window. */
typedef struct {
    float *start, *end;  /* L probabilities */
    uint8_t *desired;    /* L: context token, [CLS], or position 0 (see decode_spans) */
    float *neg;          /* L·L: -scores_flat */
    int64_t *idx;        /* L·L */
    float *kvals;        /* top_k */
    int64_t *korder;     /* top_k */
    int64_t cap_l, cap_ll;
} qa_scratch;

static void scratch_free(qa_scratch *s) {
    free(s->start);
    free(s->end);
    free(s->desired);
    free(s->neg);
    free(s->idx);
    free(s->kvals);
    free(s->korder);
}

static int scratch_grow(qa_scratch *s, int64_t L, int top_k, int need_flat) {
    if (L > s->cap_l) {
        free(s->start);
        free(s->end);
        free(s->desired);
        s->start = malloc((size_t)L * sizeof(float));
        s->end = malloc((size_t)L * sizeof(float));
        s->desired = malloc((size_t)L);
        s->cap_l = L;
        if (!s->start || !s->end || !s->desired) { s->cap_l = 0; return dbt_set_error("out of memory"); }
    }
    if (need_flat && L * L > s->cap_ll) {
        free(s->neg);
        free(s->idx);
        s->neg = malloc((size_t)(L * L) * sizeof(float));
        s->idx = malloc((size_t)(L * L) * sizeof(int64_t));
        s->cap_ll = L * L;
        if (!s->neg || !s->idx) { s->cap_ll = 0; return dbt_set_error("out of memory"); }
    }
    if (need_flat && !s->kvals) {
        s->kvals = malloc((size_t)top_k * sizeof(float));
        s->korder = malloc((size_t)top_k * sizeof(int64_t));
        if (!s->kvals || !s->korder) return dbt_set_error("out of memory");
    }
    return 0;
}

/* Softmax over a window the way select_starts_ends writes it in numpy float32:
 * exp(x - x.max()) / sum. */
static void np_softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) x[i] = expf(x[i] - mx);
    float sum = np_sum(x, n);
    for (int i = 0; i < n; i++) x[i] /= sum;
}

/* Encoding.word_to_chars(word, sequence_index=1) of tokenizers: the tokens of `word` among the
 * context tokens of this window, scanned until a later word shows up. 0 when it has none. */
static int word_to_chars(const dbt_encoding *e, int32_t word, int *cstart, int *cend) {
    int first = -1, last = -1;
    for (int t = 0; t < e->n; t++) {
        if (e->sequence_ids[t] != 1) continue;
        if (e->word_ids[t] > word) break;
        if (e->word_ids[t] == word) {
            if (first < 0) first = t;
            last = t;
        }
    }
    if (first < 0) return 0;
    *cstart = e->offsets[2 * first];
    *cend = e->offsets[2 * last + 1];
    return 1;
}

/* get_indices with align_to_words=True: the span grows to the words of its first and last
 * tokens. token_to_word gives a word index within the token's own sequence, and it is looked
 * up in the context whichever sequence it came from (a literal "[CLS]" in the question is a
 * candidate too). Any failure (a special token has no word) falls back to the token offsets. */
static void span_to_chars(const dbt_encoding *e, int s, int t, int *cstart, int *cend) {
    int a, b, c, d;
    if (e->word_ids[s] >= 0 && e->word_ids[t] >= 0 && word_to_chars(e, e->word_ids[s], &a, &b) &&
        word_to_chars(e, e->word_ids[t], &c, &d)) {
        *cstart = a;
        *cend = d;
        return;
    }
    *cstart = e->offsets[2 * s];
    *cend = e->offsets[2 * t + 1];
}

/* select_starts_ends + decode_spans + get_indices for one window: appends its answers.
 * logits: L rows of (start, end). */
static int window_answers(const dbt_encoding *e, const float *logits, int32_t cls_id, const dbt_pipeline_opts *o,
                          qa_scratch *sc, double *min_null_score, qa_answers *out) {
    const int64_t L = e->n, LL = L * L;
    const int top_k = o->top_k, mal = o->max_answer_len;
    if (scratch_grow(sc, L, top_k, top_k > 1)) return -1;
    /* p_mask is 1 off the context; [CLS] tokens (wherever they are) are unmasked. The tokens
     * that may hold the answer: unmasked and attended. */
    int any = 0;
    for (int64_t t = 0; t < L; t++) {
        sc->desired[t] = (e->sequence_ids[t] == 1 || e->ids[t] == cls_id) && e->attention_mask[t];
        any |= sc->desired[t];
        sc->start[t] = sc->desired[t] ? logits[2 * t] : -10000.0f;
        sc->end[t] = sc->desired[t] ? logits[2 * t + 1] : -10000.0f;
    }
    /* decode_spans tests np.isin(starts, undesired_tokens.nonzero()): that array is 2-D, so
     * nonzero() also yields its row indices, all 0, and position 0 always passes. */
    if (any) sc->desired[0] = 1;
    np_softmax(sc->start, (int)L);
    np_softmax(sc->end, (int)L);
    if (o->handle_impossible_answer) {
        double null = (double)(sc->start[0] * sc->end[0]);
        if (null < *min_null_score) *min_null_score = null;
    }
    sc->start[0] = sc->end[0] = 0.f;
    const float *st = sc->start, *en = sc->end;

    /* candidates = tril(triu(outer(start, end)), max_answer_len - 1), flattened */
#define CAND(s, t) ((t) >= (s) && (t) - (s) < mal ? st[s] * en[t] : 0.f)
    if (top_k == 1) { /* np.argmax: the first maximum in row-major order */
        float best = 0.f;
        int64_t bi = 0;
        for (int64_t s = 0; s < L; s++)
            for (int64_t t = s; t < L && t - s < mal; t++) {
                float c = st[s] * en[t];
                if (c > best) { best = c; bi = s * L + t; }
            }
        int64_t s = bi / L, t = bi % L;
        if (sc->desired[s] && sc->desired[t]) {
            int cs, ce;
            span_to_chars(e, (int)s, (int)t, &cs, &ce);
            if (answers_push(out, (double)best, cs, ce)) return -1;
        }
        return 0;
    }
    for (int64_t s = 0; s < L; s++)
        for (int64_t t = 0; t < L; t++) sc->neg[s * L + t] = -CAND(s, t);
    for (int64_t f = 0; f < LL; f++) sc->idx[f] = f;
    int64_t k;
    if (LL < top_k) {
        np_argsort(sc->neg, sc->idx, LL);
        k = LL;
    } else if (LL == top_k) {
        return dbt_set_error("kth(=%d) out of bounds (%lld)", top_k, (long long)LL); /* numpy's */
    } else { /* idx = argpartition(-flat, k)[:k]; idx[argsort(-flat[idx])] */
        np_introselect(sc->neg, sc->idx, LL, top_k);
        k = top_k;
        for (int64_t j = 0; j < k; j++) {
            sc->kvals[j] = sc->neg[sc->idx[j]];
            sc->korder[j] = j;
        }
        np_argsort(sc->kvals, sc->korder, k);
        for (int64_t j = 0; j < k; j++) sc->korder[j] = sc->idx[sc->korder[j]];
        memcpy(sc->idx, sc->korder, (size_t)k * sizeof *sc->idx);
    }
    for (int64_t j = 0; j < k; j++) {
        int64_t s = sc->idx[j] / L, t = sc->idx[j] % L;
        if (!sc->desired[s] || !sc->desired[t]) continue;
        int cs, ce;
        span_to_chars(e, (int)s, (int)t, &cs, &ce);
        if (answers_push(out, (double)CAND(s, t), cs, ce)) return -1;
    }
#undef CAND
    return 0;
}

/* context[start:end] with Python's slicing of code points (an empty string when end <= start).
 * The slice is re-encoded so that ill-formed UTF-8 comes out as the U+FFFD the tokenizer read. */
static void json_slice(dbt_jw *w, const char *text, int start, int end) {
    const size_t len = strlen(text);
    size_t i = 0, b0 = len, b1 = len;
    for (int cp_i = 0; i < len && end > start; cp_i++) {
        if (cp_i == start) b0 = i;
        if (cp_i == end) { b1 = i; break; }
        int32_t cp;
        i += dbt_utf8_decode((const unsigned char *)text + i, len - i, &cp);
    }
    if (end <= start || b0 >= b1) { dbt_jw_str(w, "", 0); return; }
    char *buf = malloc((b1 - b0) * 3 + 4); /* one byte of input gives at most 3 of U+FFFD */
    if (!buf) { w->oom = 1; return; }
    size_t n = 0;
    for (i = b0; i < b1;) {
        int32_t cp;
        i += dbt_utf8_decode((const unsigned char *)text + i, b1 - i, &cp);
        n += dbt_utf8_encode(cp, buf + n);
    }
    dbt_jw_str(w, buf, n);
    free(buf);
}

static void json_answer(dbt_jw *w, const qa_answer *a, const char *context) {
    dbt_jw_lit(w, "{\"score\":");
    dbt_jw_float(w, a->score);
    dbt_jw_lit(w, ",\"start\":");
    dbt_jw_int(w, a->start);
    dbt_jw_lit(w, ",\"end\":");
    dbt_jw_int(w, a->end);
    dbt_jw_lit(w, ",\"answer\":");
    json_slice(w, context, a->start, a->end);
    dbt_jw_lit(w, "}");
}

int dbt_task_qa(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out) {
    const dbt_tokenizer *tok = m->tok;
    /* _sanitize_parameters */
    if (o->top_k < 1) return dbt_set_error("top_k parameter should be >= 1 (got %d)", o->top_k);
    if (o->max_answer_len < 1)
        return dbt_set_error("max_answer_len parameter should be >= 1 (got %d)", o->max_answer_len);
    /* preprocess: max_seq_len = min(model_max_length, 384) unless given; max_question_len is
     * only read by the slow tokenizers' path, so it changes nothing here */
    int max_seq_len = o->max_length;
    if (max_seq_len <= 0) {
        int32_t mml = dbt_tokenizer_model_max_length(tok); /* 0: unknown, i.e. very large */
        max_seq_len = mml > 0 && mml < 384 ? mml : 384;
    }
    int doc_stride = o->doc_stride >= 0 ? o->doc_stride : (max_seq_len / 2 < 128 ? max_seq_len / 2 : 128);
    if (doc_stride > max_seq_len)
        return dbt_set_error("`doc_stride` (%d) is larger than `max_seq_len` (%d)", doc_stride, max_seq_len);
    for (int i = 0; i < n; i++) {
        if (!in[i].text_pair) return dbt_set_error("input %d: `context` cannot be None", i);
        if (!in[i].text[0]) return dbt_set_error("input %d: `question` cannot be empty", i);
        if (!in[i].text_pair[0]) return dbt_set_error("input %d: `context` cannot be empty", i);
    }
    const int32_t cls_id = dbt_tokenizer_special_ids(tok).cls;

    /* Every window of every input, in order; input i owns windows [first[i], first[i+1]). */
    dbt_encode_opts eo = dbt_encode_opts_default(tok);
    eo.add_special_tokens = 1;
    eo.max_length = max_seq_len;
    eo.stride = doc_stride;
    eo.truncation = DBT_TRUNCATE_ONLY_SECOND;
    eo.return_overflowing = 1;
    int *first = malloc(((size_t)n + 1) * sizeof *first);
    dbt_encoding *wins = NULL;
    int nw = 0, capw = 0, rc = 0;
    if (!first) return dbt_set_error("out of memory");
    for (int i = 0; i < n && rc == 0; i++) {
        dbt_encoding *w;
        const char *q = in[i].text, *c = in[i].text_pair;
        int k = dbt_encode(tok, q, strlen(q), c, strlen(c), &eo, &w);
        if (k < 0) { rc = dbt_prefix_error("input %d", i); break; }
        if (nw + k > capw) {
            int cap = capw ? capw * 2 : 16;
            while (cap < nw + k) cap *= 2;
            dbt_encoding *grown = realloc(wins, (size_t)cap * sizeof *grown);
            if (!grown) { dbt_encodings_free(w, k); rc = dbt_set_error("out of memory"); break; }
            wins = grown;
            capw = cap;
        }
        first[i] = nw;
        memcpy(wins + nw, w, (size_t)k * sizeof *w); /* the arrays move with the structs */
        free(w);
        nw += k;
    }
    first[n] = nw;
    if (rc) { dbt_encodings_free(wins, nw); free(first); return -1; }

    /* The windows go through the model batch_size at a time and are scored as they come, so
     * that a very long context never holds the hidden states of all its windows at once. */
    qa_scratch sc = {0};
    qa_answers *ans = calloc((size_t)(n > 0 ? n : 1), sizeof *ans);
    double *min_null_score = malloc((size_t)(n > 0 ? n : 1) * sizeof *min_null_score);
    int64_t *raw_at = o->raw ? malloc(((size_t)nw + 1) * sizeof *raw_at) : NULL;
    float *raw = NULL; /* --raw: each window's (start, end) logit rows, windows back to back */
    if (!ans || !min_null_score || (o->raw && !raw_at)) rc = dbt_set_error("out of memory");
    if (rc == 0 && o->raw) {
        raw_at[0] = 0;
        for (int k = 0; k < nw; k++) raw_at[k + 1] = raw_at[k] + 2 * (int64_t)wins[k].n;
        if (!(raw = malloc((size_t)(raw_at[nw] > 0 ? raw_at[nw] : 1) * sizeof *raw))) rc = dbt_set_error("out of memory");
    }
    for (int i = 0; i < n && rc == 0; i++) min_null_score[i] = 1000000; /* large and positive, as transformers */
    for (int b = 0, i = 0; b < nw && rc == 0; b += o->batch_size) {
        int nb = nw - b < o->batch_size ? nw - b : o->batch_size;
        dbt_output out;
        if (dbt_task_forward(m, wins + b, nb, o->batch_size, NULL, &out)) { rc = -1; break; }
        for (int k = b; k < b + nb && rc == 0; k++) {
            while (k >= first[i + 1]) i++; /* the input that owns window k */
            const float *lg = out.logits + (int64_t)out.row_start[k - b] * 2;
            if (o->raw) memcpy(raw + raw_at[k], lg, (size_t)wins[k].n * 2 * sizeof *raw);
            rc = window_answers(&wins[k], lg, cls_id, o, &sc, &min_null_score[i], &ans[i]);
        }
        dbt_output_free(&out);
    }

    for (int i = 0; i < n && rc == 0; i++) {
        qa_answers *a = &ans[i];
        if (o->handle_impossible_answer && answers_push(a, min_null_score[i], 0, 0)) { rc = -1; break; }
        qsort(a->v, (size_t)a->n, sizeof *a->v, cmp_answer);
        int keep = a->n < o->top_k ? a->n : o->top_k;

        dbt_jw w = {0};
        if (o->raw) dbt_jw_lit(&w, "{\"result\":");
        if (keep == 1) json_answer(&w, &a->v[0], in[i].text_pair); /* one answer: not a list */
        else {
            dbt_jw_lit(&w, "[");
            for (int j = 0; j < keep; j++) {
                if (j) dbt_jw_lit(&w, ",");
                json_answer(&w, &a->v[j], in[i].text_pair);
            }
            dbt_jw_lit(&w, "]");
        }
        if (o->raw) { /* the model's start and end logits of each window, before any masking */
            dbt_jw_lit(&w, ",\"logits\":[");
            for (int k = first[i]; k < first[i + 1]; k++) {
                const float *lg = raw + raw_at[k];
                dbt_jw_lit(&w, k > first[i] ? ",{\"start\":[" : "{\"start\":[");
                for (int t = 0; t < wins[k].n; t++) {
                    if (t) dbt_jw_lit(&w, ",");
                    dbt_jw_float(&w, lg[2 * t]);
                }
                dbt_jw_lit(&w, "],\"end\":[");
                for (int t = 0; t < wins[k].n; t++) {
                    if (t) dbt_jw_lit(&w, ",");
                    dbt_jw_float(&w, lg[2 * t + 1]);
                }
                dbt_jw_lit(&w, "]}");
            }
            dbt_jw_lit(&w, "]}");
        }
        if (!(json_out[i] = dbt_task_take(&w))) rc = dbt_set_error("out of memory");
    }
    if (rc)
        for (int i = 0; i < n; i++) { free(json_out[i]); json_out[i] = NULL; }
    for (int i = 0; ans && i < n; i++) free(ans[i].v);
    free(ans);
    free(min_null_score);
    free(raw_at);
    free(raw);
    scratch_free(&sc);
    dbt_encodings_free(wins, nw);
    free(first);
    return rc;
}
