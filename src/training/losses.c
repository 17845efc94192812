/* losses.c — log-softmax in double per row, so that the loss of a near-certain prediction does not
 * round to zero before it is averaged. */
#include "losses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* log Σ exp(x) of one row, and the row's softmax written to p (when p). */
static double logsumexp(const float *x, int n, float *p) {
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    double lse = mx + log(s);
    if (p)
        for (int i = 0; i < n; i++) p[i] = (float)exp((double)x[i] - lse);
    return lse;
}

double dbt_loss_cross_entropy(const float *logits, int rows, int cols, const int32_t *labels, float scale, float *d,
                              int64_t *count) {
    int64_t cnt = 0;
    for (int r = 0; r < rows; r++) cnt += labels[r] != DBT_IGNORE_INDEX;
    if (count) *count = cnt;
    if (d) memset(d, 0, (size_t)rows * cols * sizeof *d);
    if (cnt == 0) return 0.0;
    double loss = 0;
    for (int r = 0; r < rows; r++) {
        int32_t y = labels[r];
        if (y == DBT_IGNORE_INDEX) continue;
        const float *x = logits + (int64_t)r * cols;
        float *dr = d ? d + (int64_t)r * cols : NULL;
        double lse = logsumexp(x, cols, dr);
        loss += lse - x[y];
        if (dr) {
            for (int i = 0; i < cols; i++) dr[i] *= scale / (float)cnt;
            dr[y] -= scale / (float)cnt;
        }
    }
    return loss / (double)cnt;
}

double dbt_loss_mse(const float *x, const float *t, int n, float scale, float *d) {
    double loss = 0;
    for (int i = 0; i < n; i++) {
        double e = (double)x[i] - t[i];
        loss += e * e;
        if (d) d[i] = (float)(2.0 * e / n) * scale;
    }
    return n ? loss / n : 0.0;
}

double dbt_loss_bce_logits(const float *x, const float *t, int64_t n, float scale, float *d) {
    double loss = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        /* max(v,0) − v·t + log(1 + e^−|v|): the stable form torch uses */
        loss += (v > 0 ? v : 0) - v * t[i] + log1p(exp(-fabs(v)));
        if (d) d[i] = (float)((1.0 / (1.0 + exp(-v)) - t[i]) / (double)n) * scale;
    }
    return n ? loss / (double)n : 0.0;
}

double dbt_loss_qa(const float *logits, int n_seqs, const int32_t *row_start, const int32_t *start_pos,
                   const int32_t *end_pos, float scale, float *d) {
    const int32_t R = row_start[n_seqs];
    if (d) memset(d, 0, (size_t)R * 2 * sizeof *d);
    int32_t Tmax = 1;
    for (int s = 0; s < n_seqs; s++)
        if (row_start[s + 1] - row_start[s] > Tmax) Tmax = row_start[s + 1] - row_start[s];
    float *x = malloc((size_t)Tmax * 2 * sizeof *x);
    if (!x) return NAN;
    float *p = x + Tmax;
    double total = 0;
    for (int which = 0; which < 2; which++) { /* 0: start, 1: end */
        const int32_t *pos = which ? end_pos : start_pos;
        int cnt = 0;
        for (int s = 0; s < n_seqs; s++) {
            int T = row_start[s + 1] - row_start[s];
            cnt += (pos[s] < 0 ? 0 : pos[s]) < T;
        }
        if (!cnt) continue;
        double loss = 0;
        for (int s = 0; s < n_seqs; s++) {
            int T = row_start[s + 1] - row_start[s];
            int y = pos[s] < 0 ? 0 : pos[s];
            if (y >= T) continue; /* clamped to T and ignored */
            for (int t = 0; t < T; t++) x[t] = logits[(int64_t)(row_start[s] + t) * 2 + which];
            double lse = logsumexp(x, T, p);
            loss += lse - x[y];
            if (d) {
                const float k = 0.5f * scale / (float)cnt;
                for (int t = 0; t < T; t++) d[(int64_t)(row_start[s] + t) * 2 + which] = p[t] * k;
                d[(int64_t)(row_start[s] + y) * 2 + which] -= k;
            }
        }
        total += 0.5 * loss / cnt;
    }
    free(x);
    return total;
}

double dbt_loss_kl_soft(const float *s, const float *t, int rows, int cols, int64_t stride, float T, float scale,
                        float *d) {
    if (rows <= 0) return 0.0;
    double total = 0;
    float *ps = malloc((size_t)cols * 2 * sizeof *ps);
    if (!ps) return NAN;
    float *pt = ps + cols;
    for (int r = 0; r < rows; r++) {
        const float *sr = s + r * stride, *tr = t + r * stride;
        /* log-softmax of the tempered logits, in double */
        double ms = -INFINITY, mt = -INFINITY, zs = 0, zt = 0;
        for (int i = 0; i < cols; i++) { ms = fmax(ms, sr[i] / T); mt = fmax(mt, tr[i] / T); }
        for (int i = 0; i < cols; i++) { zs += exp(sr[i] / T - ms); zt += exp(tr[i] / T - mt); }
        double ls = ms + log(zs), lt = mt + log(zt), kl = 0;
        for (int i = 0; i < cols; i++) {
            double lps = sr[i] / T - ls, lpt = tr[i] / T - lt;
            double p = exp(lpt);
            if (p > 0) kl += p * (lpt - lps);
            ps[i] = (float)exp(lps);
            pt[i] = (float)p;
        }
        total += kl;
        if (d)
            for (int i = 0; i < cols; i++) d[r * stride + i] += T * (ps[i] - pt[i]) / (float)rows * scale;
    }
    free(ps);
    return total / rows * (double)T * T;
}

double dbt_loss_qa_soft(const float *s, const float *t, int n_seqs, const int32_t *row_start, float T, float scale,
                        float *d) {
    if (n_seqs <= 0) return 0.0;
    int32_t Tmax = 1;
    for (int i = 0; i < n_seqs; i++)
        if (row_start[i + 1] - row_start[i] > Tmax) Tmax = row_start[i + 1] - row_start[i];
    float *sv = malloc((size_t)Tmax * 3 * sizeof *sv);
    if (!sv) return NAN;
    float *tv = sv + Tmax, *dv = tv + Tmax;
    double total = 0;
    for (int c = 0; c < 2; c++) /* 0: start, 1: end */
        for (int i = 0; i < n_seqs; i++) {
            const int32_t r0 = row_start[i], n = row_start[i + 1] - r0;
            for (int k = 0; k < n; k++) {
                sv[k] = s[(int64_t)(r0 + k) * 2 + c];
                tv[k] = t[(int64_t)(r0 + k) * 2 + c];
                dv[k] = 0;
            }
            /* batchmean over the sequences, then the mean of start and end */
            total += dbt_loss_kl_soft(sv, tv, 1, n, n, T, 0.5f * scale / (float)n_seqs, d ? dv : NULL);
            if (d)
                for (int k = 0; k < n; k++) d[(int64_t)(r0 + k) * 2 + c] += dv[k];
        }
    free(sv);
    return total * 0.5 / n_seqs;
}
