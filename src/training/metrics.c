/* metrics.c — evaluation metrics as scikit-learn 1.2, scipy 1.10, seqeval 1.2.2 and the official
 * SQuAD v1.1 script compute them. See metrics.h for each function's reference; comments here
 * quote the reference code where the order of operations matters. */
#include "metrics.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "../common/error.h"
#include "../common/utf8.h"

/* ---- numpy helpers ------------------------------------------------------------------------- */

/* numpy/core/src/umath/loops_utils.h.src: DOUBLE_pairwise_sum. */
static double pairwise_sum(const double *a, size_t n) {
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        size_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* np.add.reduce on float64: the output starts at the identity 0.0, then += the pairwise sum. */
double dbt_metric_numpy_sum(const double *v, size_t n) { return 0.0 + pairwise_sum(v, n); }

/* np.mean(v) = np.add.reduce(v) / n (NaN for n == 0, as numpy's 0/0). */
static double numpy_mean(const double *v, size_t n) { return dbt_metric_numpy_sum(v, n) / (double)n; }

/* sklearn's F-beta with beta = 1 on precision and recall already zero_division-ed:
 *   denom = beta2 * precision + recall; denom[denom == 0.0] = 1
 *   f_score = (1 + beta2) * precision * recall / denom */
static double f1_of(double p, double r) {
    double denom = 1.0 * p + r;
    if (denom == 0.0) denom = 1;
    return 2.0 * p * r / denom;
}

/* _prf_divide with zero_division="warn": numerator / denominator, 0.0 where denominator == 0. */
static double prf_divide(int64_t num, int64_t den) { return den == 0 ? 0.0 : (double)num / (double)den; }

/* ---- classification ------------------------------------------------------------------------ */

double dbt_metric_accuracy(const int *pred, const int *gold, size_t n) {
    /* _weighted_sum(y_true == y_pred, None, normalize=True) = np.average(bool array): the count
     * of matches (exact) over n. */
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += pred[i] == gold[i];
    return (double)ok / (double)n;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The sorted distinct values of pred ∪ gold (sklearn's unique_labels / LabelEncoder classes_).
 * Returns a malloc'd array (NULL with *k = 0 when n == 0), or NULL with *k = SIZE_MAX on OOM. */
static int *sorted_labels(const int *pred, const int *gold, size_t n, size_t *k) {
    *k = 0;
    if (n == 0) return NULL;
    int *u = malloc(2 * n * sizeof *u);
    if (!u) {
        *k = SIZE_MAX;
        dbt_set_error("out of memory");
        return NULL;
    }
    memcpy(u, pred, n * sizeof *u);
    memcpy(u + n, gold, n * sizeof *u);
    qsort(u, 2 * n, sizeof *u, cmp_int);
    size_t m = 0;
    for (size_t i = 0; i < 2 * n; i++)
        if (m == 0 || u[m - 1] != u[i]) u[m++] = u[i];
    *k = m;
    return u;
}

static size_t label_index(const int *labels, size_t k, int v) {
    const int *p = bsearch(&v, labels, k, sizeof *labels, cmp_int);
    return (size_t)(p - labels);
}

int dbt_metric_prf_binary(const int *pred, const int *gold, size_t n, int pos_label, dbt_prf *out) {
    memset(out, 0, sizeof *out);
    /* _check_set_wise_labels: type_of_target is "multiclass" with more than two distinct
     * values; pos_label must be present when two labels are. */
    int seen[3];
    int n_seen = 0, has_pos = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        int v = i < n ? pred[i] : gold[i - n];
        int known = 0;
        for (int j = 0; j < n_seen; j++) known |= seen[j] == v;
        if (!known) {
            if (n_seen == 2)
                return dbt_set_error("Target is multiclass but average='binary'. Please choose another average setting");
            seen[n_seen++] = v;
        }
        has_pos |= v == pos_label;
    }
    if (!has_pos && n_seen >= 2)
        return dbt_set_error("pos_label=%d is not a valid label. It should be one of [%d, %d]", pos_label,
                             seen[0] < seen[1] ? seen[0] : seen[1], seen[0] < seen[1] ? seen[1] : seen[0]);
    int64_t tp = 0, pred_sum = 0, true_sum = 0;
    for (size_t i = 0; i < n; i++) {
        pred_sum += pred[i] == pos_label;
        true_sum += gold[i] == pos_label;
        tp += pred[i] == pos_label && gold[i] == pos_label;
    }
    out->precision = prf_divide(tp, pred_sum);
    out->recall = prf_divide(tp, true_sum);
    out->f1 = f1_of(out->precision, out->recall);
    return 0;
}

int dbt_metric_prf_macro(const int *pred, const int *gold, size_t n, dbt_prf *out) {
    memset(out, 0, sizeof *out);
    size_t k;
    int *labels = sorted_labels(pred, gold, n, &k);
    if (k == SIZE_MAX) return -1;
    int64_t *cnt = calloc(3 * (k ? k : 1), sizeof *cnt);
    double *prf = malloc(3 * (k ? k : 1) * sizeof *prf);
    if (!cnt || !prf) {
        free(labels), free(cnt), free(prf);
        return dbt_set_error("out of memory");
    }
    int64_t *tp = cnt, *ps = cnt + k, *ts = cnt + 2 * k;
    for (size_t i = 0; i < n; i++) {
        size_t a = label_index(labels, k, pred[i]), b = label_index(labels, k, gold[i]);
        ps[a]++;
        ts[b]++;
        tp[a] += a == b;
    }
    double *p = prf, *r = prf + k, *f = prf + 2 * k;
    for (size_t j = 0; j < k; j++) {
        p[j] = prf_divide(tp[j], ps[j]);
        r[j] = prf_divide(tp[j], ts[j]);
        f[j] = f1_of(p[j], r[j]);
    }
    out->precision = numpy_mean(p, k);
    out->recall = numpy_mean(r, k);
    out->f1 = numpy_mean(f, k);
    free(labels), free(cnt), free(prf);
    return 0;
}

double dbt_metric_mcc(const int *pred, const int *gold, size_t n) {
    size_t k;
    int *labels = sorted_labels(pred, gold, n, &k);
    if (k == SIZE_MAX) return NAN;
    double *sums = calloc(2 * (k ? k : 1), sizeof *sums);
    if (!sums) {
        free(labels);
        dbt_set_error("out of memory");
        return NAN;
    }
    double *t_sum = sums, *p_sum = sums + k, n_correct = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = label_index(labels, k, pred[i]), b = label_index(labels, k, gold[i]);
        p_sum[a] += 1;
        t_sum[b] += 1;
        n_correct += a == b;
    }
    /* cov_ytyp = n_correct * n_samples - np.dot(t_sum, p_sum)
     * cov_ypyp = n_samples**2 - np.dot(p_sum, p_sum)
     * cov_ytyt = n_samples**2 - np.dot(t_sum, t_sum)
     * All integer-valued, exact in double below 2^53. */
    double n_samples = dbt_metric_numpy_sum(p_sum, k), tp = 0, pp = 0, tt = 0;
    for (size_t j = 0; j < k; j++) {
        tp += t_sum[j] * p_sum[j];
        pp += p_sum[j] * p_sum[j];
        tt += t_sum[j] * t_sum[j];
    }
    free(labels), free(sums);
    double cov_ytyp = n_correct * n_samples - tp;
    double cov_ypyp = n_samples * n_samples - pp;
    double cov_ytyt = n_samples * n_samples - tt;
    if (cov_ypyp * cov_ytyt == 0) return 0.0;
    return cov_ytyp / sqrt(cov_ytyt * cov_ypyp);
}

/* ---- correlation --------------------------------------------------------------------------- */

static int all_equal_first(const double *v, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (!(v[i] == v[0])) return 0;
    return v[0] == v[0]; /* (x == x[0]).all() is False for a NaN x[0] */
}

static double sign(double v) { return v > 0 ? 1.0 : v < 0 ? -1.0 : v; /* np.sign: NaN stays NaN, ±0 → 0 */ }

/* Clips like Python's max(min(r, 1.0), -1.0): a NaN stays NaN. */
static double clip1(double r) {
    if (1.0 < r) r = 1.0;
    if (-1.0 > r) r = -1.0;
    return r;
}

/* The 2-norm (scipy.linalg.norm → BLAS nrm2) without overflow: the sum of squares in long double
 * (wider exponent range, more bits), rounded once. */
static double norm2(const double *v, size_t n) {
    long double s = 0;
    for (size_t i = 0; i < n; i++) s += (long double)v[i] * v[i];
    return (double)sqrtl(s);
}

double dbt_metric_pearson(const double *x, const double *y, size_t n) {
    if (n < 2) return NAN; /* scipy raises ValueError */
    if (all_equal_first(x, n) || all_equal_first(y, n)) return NAN; /* ConstantInputWarning */
    if (n == 2) return sign(x[1] - x[0]) * sign(y[1] - y[0]);
    double xmean = numpy_mean(x, n), ymean = numpy_mean(y, n);
    double *xm = malloc(2 * n * sizeof *xm);
    if (!xm) {
        dbt_set_error("out of memory");
        return NAN;
    }
    double *ym = xm + n;
    for (size_t i = 0; i < n; i++) {
        xm[i] = x[i] - xmean;
        ym[i] = y[i] - ymean;
    }
    double normxm = norm2(xm, n), normym = norm2(ym, n);
    /* r = np.dot(xm/normxm, ym/normym) */
    double r = 0;
    for (size_t i = 0; i < n; i++) r += (xm[i] / normxm) * (ym[i] / normym);
    free(xm);
    return clip1(r);
}

typedef struct {
    double v;
    size_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

int dbt_metric_rankdata(const double *v, size_t n, double *ranks) {
    for (size_t i = 0; i < n; i++)
        if (isnan(v[i])) { /* nan_policy="propagate" */
            for (size_t j = 0; j < n; j++) ranks[j] = NAN;
            return 0;
        }
    ranked *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return dbt_set_error("out of memory");
    for (size_t i = 0; i < n; i++) s[i] = (ranked){v[i], i};
    qsort(s, n, sizeof *s, cmp_ranked);
    /* Ties at sorted positions [a, b) get .5 * (count[dense] + count[dense - 1] + 1)
     * = .5 * (b + a + 1), the mean of the 1-based ranks a+1..b. */
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && s[b].v == s[a].v; b++) {}
        double rank = .5 * ((double)b + (double)a + 1);
        for (size_t j = a; j < b; j++) ranks[s[j].i] = rank;
    }
    free(s);
    return 0;
}

double dbt_metric_spearman(const double *x, const double *y, size_t n) {
    if (n <= 1) return NAN;
    if (all_equal_first(x, n) || all_equal_first(y, n)) return NAN;
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]) || isnan(y[i])) return NAN;
    double *rx = malloc(2 * n * sizeof *rx);
    if (!rx) {
        dbt_set_error("out of memory");
        return NAN;
    }
    double *ry = rx + n;
    if (dbt_metric_rankdata(x, n, rx) || dbt_metric_rankdata(y, n, ry)) {
        free(rx);
        return NAN;
    }
    /* np.corrcoef: X -= mean(X, axis=1); c = dot(X, X.T) * (1 / (n - 1));
     * stddev = sqrt(diag(c)); c /= stddev[:, None]; c /= stddev[None, :]; clip to [-1, 1]. */
    double mx = numpy_mean(rx, n), my = numpy_mean(ry, n), sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double a = rx[i] - mx, b = ry[i] - my;
        sxx += a * a;
        syy += b * b;
        sxy += a * b;
    }
    free(rx);
    double fact = 1.0 / (double)(n - 1);
    double c00 = sxx * fact, c11 = syy * fact, c01 = sxy * fact;
    return clip1(c01 / sqrt(c00) / sqrt(c11));
}

/* ---- seqeval ------------------------------------------------------------------------------- */

typedef struct {
    int32_t tag;       /* chunk[0] */
    const char *type;  /* chunk[1:].split('-', maxsplit=1)[-1] or '_' */
    size_t type_len;
} chunk_tag;

static int parse_tag(const char *s, chunk_tag *c) {
    size_t len = strlen(s);
    if (len == 0) return dbt_set_error("seqeval: an empty tag (Python's chunk[0] raises IndexError)");
    size_t k = dbt_utf8_decode((const unsigned char *)s, len, &c->tag);
    const char *rest = s + k, *dash = memchr(rest, '-', len - k);
    c->type = dash ? dash + 1 : rest;
    c->type_len = (size_t)(s + len - c->type);
    if (c->type_len == 0) c->type = "_", c->type_len = 1;
    return 0;
}

static int same_type(const char *a, size_t na, const char *b, size_t nb) {
    return na == nb && memcmp(a, b, na) == 0;
}

/* seqeval.metrics.sequence_labeling.end_of_chunk, verbatim. */
static int end_of_chunk(int32_t prev_tag, int32_t tag, int type_differs) {
    int chunk_end = 0;
    if (prev_tag == 'E') chunk_end = 1;
    if (prev_tag == 'S') chunk_end = 1;
    if (prev_tag == 'B' && tag == 'B') chunk_end = 1;
    if (prev_tag == 'B' && tag == 'S') chunk_end = 1;
    if (prev_tag == 'B' && tag == 'O') chunk_end = 1;
    if (prev_tag == 'I' && tag == 'B') chunk_end = 1;
    if (prev_tag == 'I' && tag == 'S') chunk_end = 1;
    if (prev_tag == 'I' && tag == 'O') chunk_end = 1;
    if (prev_tag != 'O' && prev_tag != '.' && type_differs) chunk_end = 1;
    return chunk_end;
}

/* seqeval.metrics.sequence_labeling.start_of_chunk, verbatim. */
static int start_of_chunk(int32_t prev_tag, int32_t tag, int type_differs) {
    int chunk_start = 0;
    if (tag == 'B') chunk_start = 1;
    if (tag == 'S') chunk_start = 1;
    if (prev_tag == 'E' && tag == 'E') chunk_start = 1;
    if (prev_tag == 'E' && tag == 'I') chunk_start = 1;
    if (prev_tag == 'S' && tag == 'E') chunk_start = 1;
    if (prev_tag == 'S' && tag == 'I') chunk_start = 1;
    if (prev_tag == 'O' && tag == 'E') chunk_start = 1;
    if (prev_tag == 'O' && tag == 'I') chunk_start = 1;
    if (tag != 'O' && tag != '.' && type_differs) chunk_start = 1;
    return chunk_start;
}

int64_t dbt_seqeval_entities(const char *const *tags, size_t n, dbt_entity **out) {
    *out = NULL;
    size_t cap = 0;
    int64_t m = 0;
    dbt_entity *e = NULL;
    /* prev_tag = 'O'; prev_type = ''; begin_offset = 0 */
    chunk_tag prev = {'O', "", 0}, cur;
    int64_t begin = 0;
    for (size_t i = 0; i <= n; i++) { /* for i, chunk in enumerate(seq + ['O']) */
        if (parse_tag(i < n ? tags[i] : "O", &cur)) {
            free(e);
            return -1;
        }
        int differs = !same_type(prev.type, prev.type_len, cur.type, cur.type_len);
        if (end_of_chunk(prev.tag, cur.tag, differs)) {
            if ((size_t)m == cap) {
                cap = cap ? 2 * cap : 16;
                dbt_entity *grown = realloc(e, cap * sizeof *e);
                if (!grown) {
                    free(e);
                    return dbt_set_error("out of memory");
                }
                e = grown;
            }
            e[m++] = (dbt_entity){prev.type, prev.type_len, begin, (int64_t)i - 1};
        }
        if (start_of_chunk(prev.tag, cur.tag, differs)) begin = (int64_t)i;
        prev = cur;
    }
    *out = e;
    return m;
}

/* Python's str order (code points) is UTF-8 byte order. */
static int cmp_bytes(const char *a, size_t na, const char *b, size_t nb) {
    int c = memcmp(a, b, na < nb ? na : nb);
    return c ? c : (na > nb) - (na < nb);
}

static int cmp_entity_type(const void *a, const void *b) {
    const dbt_entity *x = a, *y = b;
    return cmp_bytes(x->type, x->type_len, y->type, y->type_len);
}

/* Index of an entity's type among the sorted unique types. */
static size_t type_index(const dbt_entity *types, size_t k, const dbt_entity *e) {
    size_t lo = 0, hi = k;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_entity_type(&types[mid], e) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void fill_row(dbt_seqeval_row *row, int64_t tp, int64_t n_pred, int64_t n_true) {
    row->n_true_positive = tp;
    row->n_pred = n_pred;
    row->support = n_true;
    row->precision = prf_divide(tp, n_pred);
    row->recall = prf_divide(tp, n_true);
    row->f1 = f1_of(row->precision, row->recall);
}

void dbt_seqeval_report_free(dbt_seqeval_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n_types; i++) free(r->types[i].name);
    free(r->types);
    memset(r, 0, sizeof *r);
}

int dbt_seqeval_evaluate(const char *const *pred, const char *const *gold, const size_t *sent_len,
                         size_t n_sent, dbt_seqeval_report *out) {
    memset(out, 0, sizeof *out);
    /* check_consistent_length: an empty list of sentences is "without list of list". */
    if (n_sent == 0) return dbt_set_error("seqeval: no sentences (seqeval raises TypeError)");
    size_t total = 0;
    for (size_t s = 0; s < n_sent; s++) total += sent_len[s];
    /* seq = [item for sublist in seq for item in sublist + ['O']] */
    const char **joined = malloc((total + n_sent + 1) * 2 * sizeof *joined);
    dbt_entity *et = NULL, *ep = NULL, *types = NULL;
    double *tmp = NULL;
    int64_t *cnt = NULL;
    int rc = -1;
    if (!joined) goto oom;
    const char **jp = joined, **jg = joined + total + n_sent + 1;
    size_t at = 0, pos = 0;
    for (size_t s = 0; s < n_sent; s++) {
        for (size_t i = 0; i < sent_len[s]; i++, at++, pos++) jp[pos] = pred[at], jg[pos] = gold[at];
        jp[pos] = jg[pos] = "O";
        pos++;
    }
    int64_t nt = dbt_seqeval_entities(jg, pos, &et);
    if (nt < 0) goto fail;
    int64_t np_ = dbt_seqeval_entities(jp, pos, &ep);
    if (np_ < 0) goto fail;

    /* target_names = sorted(set(entities_true.keys()) | set(entities_pred.keys())) */
    size_t k = 0, n_all = (size_t)(nt + np_);
    types = malloc((n_all ? n_all : 1) * sizeof *types);
    if (!types) goto oom;
    if (nt) memcpy(types, et, (size_t)nt * sizeof *et);
    if (np_) memcpy(types + nt, ep, (size_t)np_ * sizeof *ep);
    qsort(types, n_all, sizeof *types, cmp_entity_type);
    for (size_t i = 0; i < n_all; i++)
        if (k == 0 || cmp_entity_type(&types[k - 1], &types[i]) != 0) types[k++] = types[i];

    cnt = calloc(3 * (k ? k : 1), sizeof *cnt);
    tmp = malloc(4 * (k ? k : 1) * sizeof *tmp);
    out->types = calloc(k ? k : 1, sizeof *out->types);
    if (!cnt || !tmp || !out->types) goto oom;
    int64_t *tp = cnt, *ps = cnt + k, *ts = cnt + 2 * k;
    for (int64_t i = 0; i < nt; i++) ts[type_index(types, k, &et[i])]++;
    for (int64_t i = 0; i < np_; i++) ps[type_index(types, k, &ep[i])]++;
    /* len(entities_true_type & entities_pred_type): get_entities emits at most one chunk per
     * position, in increasing `end`, so a chunk is identified by its end; merge on it. */
    for (int64_t i = 0, j = 0; i < nt && j < np_;) {
        if (et[i].end < ep[j].end) i++;
        else if (et[i].end > ep[j].end) j++;
        else {
            if (et[i].start == ep[j].start && cmp_entity_type(&et[i], &ep[j]) == 0) tp[type_index(types, k, &et[i])]++;
            i++, j++;
        }
    }
    int64_t tp_all = 0, ps_all = 0, ts_all = 0;
    double *p = tmp, *r = tmp + k, *f = tmp + 2 * k, *w = tmp + 3 * k;
    for (size_t j = 0; j < k; j++) {
        dbt_seqeval_type *t = &out->types[j];
        t->name = malloc(types[j].type_len + 1);
        if (!t->name) goto oom;
        out->n_types = (int)j + 1;
        memcpy(t->name, types[j].type, types[j].type_len);
        t->name[types[j].type_len] = '\0';
        fill_row(&t->row, tp[j], ps[j], ts[j]);
        p[j] = t->row.precision, r[j] = t->row.recall, f[j] = t->row.f1;
        tp_all += tp[j], ps_all += ps[j], ts_all += ts[j];
    }
    /* micro: the sums, then the same division. */
    fill_row(&out->micro, tp_all, ps_all, ts_all);
    /* macro: np.average(x) = np.mean (NaN for no types). */
    out->macro = (dbt_seqeval_row){numpy_mean(p, k), numpy_mean(r, k), numpy_mean(f, k), ts_all, ps_all, tp_all};
    /* weighted: weights = true_sum; if weights.sum() == 0 all scores are 0 (zero_division
     * "warn"); else np.average(x, weights=w) = np.multiply(x, w).sum() / w.sum(). */
    out->weighted = (dbt_seqeval_row){0, 0, 0, ts_all, ps_all, tp_all};
    if (ts_all != 0) {
        for (size_t j = 0; j < k; j++) w[j] = (double)ts[j];
        double scl = dbt_metric_numpy_sum(w, k);
        double *prod = malloc((k ? k : 1) * sizeof *prod);
        if (!prod) goto oom;
        double *src[3] = {p, r, f}, res[3];
        for (int m = 0; m < 3; m++) {
            for (size_t j = 0; j < k; j++) prod[j] = src[m][j] * w[j];
            res[m] = dbt_metric_numpy_sum(prod, k) / scl;
        }
        free(prod);
        out->weighted.precision = res[0], out->weighted.recall = res[1], out->weighted.f1 = res[2];
    }
    rc = 0;
    goto done;
oom:
    dbt_set_error("out of memory");
fail:
    dbt_seqeval_report_free(out);
done:
    free(joined), free(et), free(ep), free(types), free(cnt), free(tmp);
    return rc;
}

/* ---- SQuAD v1.1 ---------------------------------------------------------------------------- */

/* Python's str.isspace(): bidirectional class WS, B or S, or category Zs. */
static int py_isspace(int32_t c) {
    if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* re's Unicode word character: str.isalnum() (categories L* and N*) or '_'. */
static int py_isword(int32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    utf8proc_category_t k = utf8proc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

/* Unicode's Case_Ignorable: Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter / MidNumLet /
 * Single_Quote. */
static int case_ignorable(int32_t c) {
    switch (c) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4: case 0x2018:
    case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07:
    case 0xFF0E: case 0xFF1A:
        return 1;
    default:
        break;
    }
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

/* Unicode's Cased (Lowercase ∪ Uppercase ∪ Lt), as far as Final_Sigma can tell (i.e. for
 * characters that are not case-ignorable): Lu/Ll/Lt, anything with a case mapping (Roman
 * numerals, circled letters), and the Other_Lowercase/Other_Uppercase letters without one. */
static int cased(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return 1;
    if (utf8proc_tolower(c) != c || utf8proc_toupper(c) != c) return 1;
    return c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
           (c >= 0x1F170 && c <= 0x1F189);
}

/* CPython's handle_capital_sigma: U+03A3 becomes final ς when preceded by a cased letter (skipping
 * case-ignorables) and not followed by one (again skipping case-ignorables). */
static int32_t lower_sigma(const int32_t *s, size_t n, size_t i) {
    int32_t c = 0;
    ptrdiff_t j;
    for (j = (ptrdiff_t)i - 1; j >= 0; j--) {
        c = s[j];
        if (!case_ignorable(c)) break;
    }
    int final_sigma = j >= 0 && cased(c);
    if (final_sigma && i + 1 < n) {
        size_t k;
        for (k = i + 1; k < n; k++)
            if (!case_ignorable(s[k])) break;
        final_sigma = k == n || !cased(s[k]);
    }
    return final_sigma ? 0x3C2 : 0x3C3;
}

/* Decodes s (invalid UTF-8 read as U+FFFD). *out: malloc'd, capacity for 2 code points per
 * decoded one (lower() may double). Returns the count, or SIZE_MAX on OOM. */
static size_t decode_cps(const char *s, size_t len, int32_t **out) {
    *out = malloc((2 * len + 1) * sizeof **out);
    if (!*out) {
        dbt_set_error("out of memory");
        return SIZE_MAX;
    }
    size_t n = 0;
    for (size_t i = 0; i < len;) i += dbt_utf8_decode((const unsigned char *)s + i, len - i, &(*out)[n++]);
    return n;
}

/* lower() from in[0..n) into out (capacity 2n). Returns the new count. */
static size_t lower_cps(const int32_t *in, size_t n, int32_t *out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = in[i];
        if (c < 0x80) out[m++] = c >= 'A' && c <= 'Z' ? c + 32 : c;
        else if (c == 0x130) out[m++] = 'i', out[m++] = 0x307; /* SpecialCasing: İ → i̇ */
        else if (c == 0x3A3) out[m++] = lower_sigma(in, n, i);
        else out[m++] = utf8proc_tolower(c);
    }
    return m;
}

static char *encode_cps(const int32_t *cp, size_t n) {
    char *s = malloc(4 * n + 1);
    if (!s) {
        dbt_set_error("out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += dbt_utf8_encode(cp[i], s + k);
    s[k] = '\0';
    return s;
}

char *dbt_py_lower(const char *s, size_t len) {
    int32_t *cp;
    size_t n = decode_cps(s, len, &cp);
    if (n == SIZE_MAX) return NULL;
    int32_t *lo = malloc((2 * n + 1) * sizeof *lo);
    if (!lo) {
        free(cp);
        dbt_set_error("out of memory");
        return NULL;
    }
    char *r = encode_cps(lo, lower_cps(cp, n, lo));
    free(cp), free(lo);
    return r;
}

/* c in string.punctuation: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ */
static int is_ascii_punct(int32_t c) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

char *dbt_squad_normalize(const char *s, size_t len) {
    int32_t *a, *b;
    size_t n = decode_cps(s, len, &a);
    if (n == SIZE_MAX) return NULL;
    b = malloc((2 * n + 1) * sizeof *b);
    if (!b) {
        free(a);
        dbt_set_error("out of memory");
        return NULL;
    }
    /* lower(text) */
    n = lower_cps(a, n, b);
    /* remove_punc: ''.join(ch for ch in text if ch not in set(string.punctuation)) */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_ascii_punct(b[i])) a[m++] = b[i];
    /* remove_articles: re.sub(r'\b(a|an|the)\b', ' ', text): the pattern is all word characters
     * between two \b, so it matches exactly a whole maximal run of word characters. */
    n = 0;
    for (size_t i = 0, j; i < m; i = j) {
        if (!py_isword(a[i])) {
            b[n++] = a[i];
            j = i + 1;
            continue;
        }
        for (j = i; j < m && py_isword(a[j]); j++) {}
        size_t w = j - i;
        int article = (w == 1 && a[i] == 'a') || (w == 2 && a[i] == 'a' && a[i + 1] == 'n') ||
                      (w == 3 && a[i] == 't' && a[i + 1] == 'h' && a[i + 2] == 'e');
        if (article) b[n++] = ' ';
        else for (size_t t = i; t < j; t++) b[n++] = a[t];
    }
    /* white_space_fix: ' '.join(text.split()) */
    m = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && py_isspace(b[i])) i++;
        if (i == n) break;
        if (m) a[m++] = ' ';
        while (i < n && !py_isspace(b[i])) a[m++] = b[i++];
    }
    char *r = encode_cps(a, m);
    free(a), free(b);
    return r;
}

typedef struct {
    const char *p;
    size_t len;
} token;

static int cmp_token(const void *a, const void *b) {
    const token *x = a, *y = b;
    return cmp_bytes(x->p, x->len, y->p, y->len);
}

/* normalized.split(): the normalized text has single ' ' separators and no other whitespace.
 * Returns the count; *out malloc'd (sorted), or SIZE_MAX on OOM. */
static size_t split_sorted(const char *s, token **out) {
    size_t n = 0, len = strlen(s);
    for (size_t i = 0; i < len; i++) n += s[i] == ' ';
    n = len ? n + 1 : 0;
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) {
        dbt_set_error("out of memory");
        return SIZE_MAX;
    }
    size_t k = 0;
    for (const char *p = s; k < n; k++) {
        const char *e = strchr(p, ' ');
        if (!e) e = s + len;
        (*out)[k] = (token){p, (size_t)(e - p)};
        p = e + 1;
    }
    qsort(*out, n, sizeof **out, cmp_token);
    return n;
}

/* f1_score(prediction, ground_truth) on normalized texts:
 *   common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
 *   num_same = sum(common.values()); 0 if num_same == 0
 *   precision = 1.0 * num_same / len(prediction_tokens); recall likewise
 *   f1 = (2 * precision * recall) / (precision + recall) */
static double token_f1(const token *pt, size_t np_, const token *gt, size_t ng) {
    size_t same = 0;
    for (size_t i = 0, j = 0; i < np_ && j < ng;) {
        int c = cmp_token(&pt[i], &gt[j]);
        if (c < 0) i++;
        else if (c > 0) j++;
        else same++, i++, j++; /* sorted bags: each matched pair counts once → min of counts */
    }
    if (same == 0) return 0;
    double precision = 1.0 * (double)same / (double)np_;
    double recall = 1.0 * (double)same / (double)ng;
    return (2 * precision * recall) / (precision + recall);
}

/* Both scores of one question: em (0/1) and f1, maximized over its ground truths. */
static int squad_question(const char *pred, const char *const *gold, size_t n_gold, int *em, double *f1) {
    if (n_gold == 0) return dbt_set_error("SQuAD: a question without ground truth (max() of nothing)");
    char *np = dbt_squad_normalize(pred, strlen(pred));
    token *pt = NULL;
    size_t npt = np ? split_sorted(np, &pt) : SIZE_MAX;
    if (npt == SIZE_MAX) {
        free(np);
        return -1;
    }
    int best_em = 0;
    double best_f1 = 0;
    int rc = 0;
    for (size_t g = 0; g < n_gold; g++) {
        char *ng = dbt_squad_normalize(gold[g], strlen(gold[g]));
        token *gt = NULL;
        size_t ngt = ng ? split_sorted(ng, &gt) : SIZE_MAX;
        if (ngt == SIZE_MAX) {
            free(ng);
            rc = -1;
            break;
        }
        int e = strcmp(np, ng) == 0;
        double f = token_f1(pt, npt, gt, ngt);
        /* max(scores): the first maximum; equal values are indistinguishable anyway. */
        if (g == 0 || e > best_em) best_em = e;
        if (g == 0 || f > best_f1) best_f1 = f;
        free(ng), free(gt);
    }
    free(np), free(pt);
    *em = best_em;
    *f1 = best_f1;
    return rc;
}

int dbt_squad_exact_match(const char *pred, const char *const *gold, size_t n_gold) {
    int em;
    double f1;
    return squad_question(pred, gold, n_gold, &em, &f1) ? -1 : em;
}

double dbt_squad_f1(const char *pred, const char *const *gold, size_t n_gold) {
    int em;
    double f1;
    return squad_question(pred, gold, n_gold, &em, &f1) ? -1 : f1;
}

int dbt_squad_evaluate(const char *const *pred, const char *const *gold, const size_t *n_gold,
                       size_t n_q, double *em, double *f1) {
    *em = *f1 = 0;
    if (n_q == 0) return dbt_set_error("SQuAD: no questions (division by zero)");
    int64_t em_sum = 0;
    double f1_sum = 0;
    size_t at = 0;
    for (size_t q = 0; q < n_q; at += n_gold[q], q++) {
        if (!pred[q]) continue; /* unanswered: receives score 0 */
        int e;
        double f;
        if (squad_question(pred[q], gold + at, n_gold[q], &e, &f)) return -1;
        em_sum += e;
        f1_sum += f;
    }
    /* exact_match = 100.0 * exact_match / total; f1 = 100.0 * f1 / total */
    *em = 100.0 * (double)em_sum / (double)n_q;
    *f1 = 100.0 * f1_sum / (double)n_q;
    return 0;
}
