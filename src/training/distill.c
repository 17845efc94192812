/* distill.c — dynamic masking and the distillation loss, as the reference distiller computes
 * them (examples/research_projects/distillation/distiller.py), on packed rows: our batches
 * have no padding, so the distiller's "positions where attention_mask is 1" are simply all rows.
 *
 * Every reduction runs in double; torch runs them in float32, which is within the 1e-5 the
 * parity test (tests/test_distill.py) allows. */
#include "distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/file.h"
#include "losses.h"

/* ---- masking ------------------------------------------------------------------------------ */

int dbt_mask_cfg_check(const dbt_mask_cfg *c) {
    if (!(c->mask_prop >= 0 && c->mask_prop <= 1)) return dbt_set_error("mlm_mask_prop must be in [0, 1]");
    if (c->word_mask < 0 || c->word_keep < 0 || c->word_rand < 0 ||
        fabs(c->word_mask + c->word_keep + c->word_rand - 1.0) > 1e-6)
        return dbt_set_error("word_mask + word_keep + word_rand must be 1 (each >= 0)");
    if (!(c->smoothing >= 0)) return dbt_set_error("mlm_smoothing must be >= 0");
    return 0;
}

void dbt_mlm_token_probs(const int64_t *counts, int V, double smoothing, const dbt_special_ids *sp, double *probs) {
    for (int v = 0; v < V; v++) {
        double n = counts && counts[v] > 1 ? (double)counts[v] : 1.0;
        probs[v] = pow(n, -smoothing);
    }
    const int32_t special[] = {sp->pad, sp->unk, sp->cls, sp->sep, sp->mask};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (special[i] >= 0 && special[i] < V) probs[special[i]] = 0.0;
}

typedef struct {
    double key;
    int64_t row;
} keyed_row;

/* Largest key first; the row breaks ties so that the order never depends on qsort. */
static int by_key_desc(const void *a, const void *b) {
    const keyed_row *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? 1 : -1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Uniform in [0, 1) with 53 random bits, and in (0, 1] (never 0, so that its log is finite). */
static double uniform01(dbt_rng *rng) { return (double)(dbt_rng_next(rng) >> 11) * 0x1p-53; }
static double uniform_open0(dbt_rng *rng) { return 1.0 - uniform01(rng); }

int64_t dbt_mlm_mask(const dbt_mask_cfg *c, const double *probs, int V, int32_t mask_id, const int32_t *ids,
                     int64_t R, dbt_rng *rng, int32_t *out_ids, int32_t *labels) {
    /* torch.multinomial(p, n, replacement=False) draws one position after another, each with
     * probability ∝ its weight among those left. The same law in one pass (Efraimidis &
     * Spirakis): key = log(u)/w, keep the n largest keys. */
    keyed_row *k = malloc((size_t)(R > 0 ? R : 1) * sizeof *k);
    if (!k) return dbt_set_error("out of memory");
    int64_t m = 0;
    for (int64_t r = 0; r < R; r++) {
        double w = ids[r] >= 0 && ids[r] < V ? probs[ids[r]] : 0.0;
        if (w > 0) k[m++] = (keyed_row){log(uniform_open0(rng)) / w, r};
    }
    int64_t n = (int64_t)ceil(c->mask_prop * (double)R);
    if (n > m) n = m;
    qsort(k, (size_t)m, sizeof *k, by_key_desc);
    memcpy(out_ids, ids, (size_t)R * sizeof *ids);
    for (int64_t r = 0; r < R; r++) labels[r] = DBT_IGNORE_INDEX;
    for (int64_t i = 0; i < n; i++) labels[k[i].row] = ids[k[i].row];
    free(k);
    /* what each drawn token becomes, in position order */
    for (int64_t r = 0; r < R; r++) {
        if (labels[r] == DBT_IGNORE_INDEX) continue;
        double u = uniform01(rng);
        if (u < c->word_mask) out_ids[r] = mask_id;
        else if (u >= c->word_mask + c->word_keep) out_ids[r] = (int32_t)dbt_rng_below(rng, (uint32_t)V);
    }
    return n;
}

/* ---- the teacher -------------------------------------------------------------------------- */

dbt_model *dbt_distill_load_teacher(const char *dir) {
    dbt_config cfg;
    char path[4096];
    if (dbt_config_load(&cfg, dbt_path_join(path, sizeof path, dir, "config.json"))) return NULL;
    dbt_head head = cfg.head == DBT_HEAD_MLM ? DBT_HEAD_MLM : DBT_HEAD_NONE;
    dbt_config_free(&cfg);
    return dbt_model_load(dir, head);
}

/* ---- the loss ----------------------------------------------------------------------------- */

void dbt_distill_logit_rows(const dbt_distill_cfg *c, int teacher_logits, const int32_t *labels, int32_t R,
                            uint8_t *sel) {
    const int soft = teacher_logits && (c->alpha_ce > 0 || c->alpha_mse > 0);
    const int all = soft && !c->restrict_ce_to_mask;
    const int masked = soft || c->alpha_mlm > 0;
    for (int32_t r = 0; r < R; r++) sel[r] = all || (masked && labels[r] != DBT_IGNORE_INDEX);
}

/* Masked-LM cross-entropy over the logits rows that carry a label (it writes d: the first
 * term), and the share of them predicted right. */
static int mlm_term(const dbt_distill_cfg *c, const dbt_train_out *s, const int32_t *labels, float scale,
                    const dbt_distill_norm *norm, float *d, dbt_distill_terms *terms) {
    const int V = s->logits_cols;
    const int32_t ns = s->logits_rows;
    int32_t *lab = malloc((size_t)(ns ? ns : 1) * sizeof *lab);
    if (!lab) return dbt_set_error("out of memory");
    int64_t right = 0;
    for (int32_t i = 0; i < ns; i++) {
        lab[i] = labels[s->mlm_rows[i]];
        if (lab[i] == DBT_IGNORE_INDEX) continue;
        const float *x = s->logits + (int64_t)i * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (x[v] > x[best]) best = v;
        right += best == lab[i];
    }
    int64_t count = 0;
    for (int32_t i = 0; i < ns; i++) count += lab[i] != DBT_IGNORE_INDEX;
    /* a slice of a larger batch: the loss divides by the slice's count, the batch's is wanted */
    const double share = norm ? (norm->masked ? (double)count / (double)norm->masked : 0.0) : 1.0;
    terms->mlm = dbt_loss_cross_entropy(s->logits, ns, V, lab, norm ? (float)(c->alpha_mlm * scale * share)
                                                                      : c->alpha_mlm * scale, d, NULL) * share;
    free(lab);
    terms->n_masked = count;
    const int64_t total = norm ? norm->masked : count;
    terms->mlm_acc = total ? (double)right / (double)total : 0.0;
    return 0;
}

/* The logits rows that the soft-target terms compare: all, or the masked ones. */
static int soft_row(const dbt_distill_cfg *c, const dbt_train_out *s, const int32_t *labels, int32_t i) {
    return !c->restrict_ce_to_mask || labels[s->mlm_rows[i]] != DBT_IGNORE_INDEX;
}

/* One row of the soft-target loss: KL(softmax(t/T) ‖ softmax(s/T))·T², adding k·T·(p_s − p_t)
 * to d (when d). Over every token of a batch this is the costliest part of a step, so the
 * tempered exponentials are float (expf, as torch's float32) and only the sums and the KL are
 * double: KL = Σ p_t·((t − s)/T − (lse_t − lse_s)). tmp: 2·V floats. */
static double kl_row(const float *s, const float *t, int V, float T, float k, float *d, float *tmp) {
    float *es = tmp, *et = tmp + V;
    const float inv = 1.0f / T;
    float ms = s[0], mt = t[0];
    for (int v = 1; v < V; v++) {
        ms = s[v] > ms ? s[v] : ms;
        mt = t[v] > mt ? t[v] : mt;
    }
    ms *= inv; /* the largest of s/T, since scaling by 1/T > 0 keeps the order */
    mt *= inv;
    for (int v = 0; v < V; v++) { /* a loop the compiler vectorizes but for expf */
        es[v] = expf(s[v] * inv - ms);
        et[v] = expf(t[v] * inv - mt);
    }
    /* four running sums each: independent additions instead of one long dependency chain */
    double zs[4] = {0}, zt[4] = {0}, q[4] = {0};
    int v = 0;
    for (; v + 4 <= V; v += 4)
        for (int j = 0; j < 4; j++) {
            zs[j] += es[v + j];
            zt[j] += et[v + j];
            q[j] += et[v + j] * ((double)t[v + j] - s[v + j]);
        }
    for (; v < V; v++) {
        zs[0] += es[v];
        zt[0] += et[v];
        q[0] += et[v] * ((double)t[v] - s[v]);
    }
    const double Zs = zs[0] + zs[1] + zs[2] + zs[3], Zt = zt[0] + zt[1] + zt[2] + zt[3];
    /* Σ p_t·((t − s)/T − (lse_t − lse_s)), with Σ p_t = 1 */
    const double kl = (q[0] + q[1] + q[2] + q[3]) / Zt / T - ((mt + log(Zt)) - (ms + log(Zs)));
    if (d) {
        const float a = (float)(1.0 / Zs), b = (float)(1.0 / Zt), kt = k * T;
        for (v = 0; v < V; v++) d[v] += kt * (es[v] * a - et[v] * b);
    }
    return kl * T * T;
}

/* KLDivLoss(batchmean)(log_softmax(s/T), softmax(t/T))·T² and MSELoss(sum)/rows over the
 * selected rows; gradients added to d. The teacher's logits are full rows (n_rows × V). */
static int logit_terms(const dbt_distill_cfg *c, const dbt_train_out *s, const dbt_output *t,
                       const int32_t *labels, float scale, const dbt_distill_norm *norm, float *d,
                       dbt_distill_terms *terms) {
    const int V = s->logits_cols;
    int64_t n = 0;
    for (int32_t i = 0; i < s->logits_rows; i++) n += soft_row(c, s, labels, i);
    if (n == 0) return 0;
    if (norm) n = norm->soft; /* the rows the whole batch compares */
    float *tmp = malloc((size_t)V * 2 * sizeof *tmp);
    if (!tmp) return dbt_set_error("out of memory");
    for (int32_t i = 0; i < s->logits_rows; i++) {
        if (!soft_row(c, s, labels, i)) continue;
        const float *sr = s->logits + (int64_t)i * V, *tr = t->logits + (int64_t)s->mlm_rows[i] * V;
        float *dr = d ? d + (int64_t)i * V : NULL;
        if (c->alpha_ce > 0) terms->ce += kl_row(sr, tr, V, c->temperature, c->alpha_ce * scale / (float)n, dr, tmp);
        if (c->alpha_mse > 0) {
            const float k = 2.0f * c->alpha_mse * scale / (float)n;
            for (int v = 0; v < V; v++) {
                double e = (double)sr[v] - tr[v];
                terms->mse += e * e;
                if (dr) dr[v] += k * (float)e;
            }
        }
    }
    free(tmp);
    terms->ce /= (double)n;
    terms->mse /= (double)n;
    return 0;
}

/* CosineEmbeddingLoss(mean, target 1) = mean over rows of 1 − cos(s, t), with torch's
 * cos = s·t / sqrt((|s|² + 1e-12)(|t|² + 1e-12)); and, for a teacher without logits,
 * MSELoss(sum)/rows of the hidden states. Gradients written to dh (R × D). */
static void hidden_terms(const dbt_distill_cfg *c, const dbt_train_out *s, const dbt_output *t, int mse, float scale,
                         const dbt_distill_norm *norm, float *dh, dbt_distill_terms *terms) {
    const int D = s->dim;
    const int32_t n_rows = s->n_rows;
    const int64_t R = norm ? norm->rows : n_rows; /* the mean is over the batch's rows */
    for (int32_t r = 0; r < n_rows; r++) {
        const float *x = s->hidden + (int64_t)r * D, *y = t->hidden + (int64_t)r * D;
        float *g = dh ? dh + (int64_t)r * D : NULL;
        if (c->alpha_cos > 0) {
            double xy = 0, xx = 1e-12, yy = 1e-12;
            for (int i = 0; i < D; i++) {
                xy += (double)x[i] * y[i];
                xx += (double)x[i] * x[i];
                yy += (double)y[i] * y[i];
            }
            double den = sqrt(xx * yy), cs = xy / den;
            terms->cos += 1.0 - cs;
            if (g) { /* d(1 − cos)/dx = −(y/den − cos·x/|x|²) */
                const double k = -(double)c->alpha_cos * scale / R;
                for (int i = 0; i < D; i++) g[i] += (float)(k * (y[i] / den - cs * x[i] / xx));
            }
        }
        if (mse)
            for (int i = 0; i < D; i++) {
                double e = (double)x[i] - y[i];
                terms->mse += e * e;
                if (g) g[i] += (float)(2.0 * c->alpha_mse * scale / R * e);
            }
    }
    terms->cos /= R;
    if (mse) terms->mse /= R;
}

int dbt_distill_loss(const dbt_distill_cfg *c, const dbt_train_out *s, const dbt_output *t, const int32_t *labels,
                     float scale, float *d_logits, float *d_hidden, dbt_distill_terms *terms) {
    return dbt_distill_loss_part(c, s, t, labels, scale, NULL, d_logits, d_hidden, terms);
}

int dbt_distill_loss_part(const dbt_distill_cfg *c, const dbt_train_out *s, const dbt_output *t, const int32_t *labels,
                          float scale, const dbt_distill_norm *norm, float *d_logits, float *d_hidden,
                          dbt_distill_terms *terms) {
    memset(terms, 0, sizeof *terms);
    const int t_logits = t && t->logits;
    if (c->alpha_ce > 0 && !t_logits) return dbt_set_error("the soft-target loss (alpha_ce) needs a teacher with an MLM head");
    if ((c->alpha_cos > 0 || c->alpha_mse > 0) && !t) return dbt_set_error("alpha_cos and alpha_mse need a teacher");
    if (t && (t->n_rows != s->n_rows || ((c->alpha_cos > 0 || (c->alpha_mse > 0 && !t_logits)) && t->dim != s->dim)))
        return dbt_set_error("the teacher's outputs do not match the student's (rows %d vs %d, dim %d vs %d)",
                             t->n_rows, s->n_rows, t->dim, s->dim);
    if (t_logits && s->logits_rows && t->logits_cols != s->logits_cols)
        return dbt_set_error("the teacher's vocabulary (%d) differs from the student's (%d)", t->logits_cols, s->logits_cols);
    if (d_logits && s->logits_rows) memset(d_logits, 0, (size_t)s->logits_rows * s->logits_cols * sizeof *d_logits);
    if (d_hidden) memset(d_hidden, 0, (size_t)s->n_rows * s->dim * sizeof *d_hidden);
    if (c->alpha_mlm > 0 && s->logits_rows && mlm_term(c, s, labels, scale, norm, d_logits, terms)) return -1;
    if (t_logits && s->logits_rows && (c->alpha_ce > 0 || c->alpha_mse > 0) &&
        logit_terms(c, s, t, labels, scale, norm, d_logits, terms))
        return -1;
    if (t && (c->alpha_cos > 0 || (c->alpha_mse > 0 && !t_logits)))
        hidden_terms(c, s, t, c->alpha_mse > 0 && !t_logits, scale, norm, d_hidden, terms);
    terms->loss = c->alpha_ce * terms->ce + c->alpha_mlm * terms->mlm + c->alpha_mse * terms->mse +
                  c->alpha_cos * terms->cos;
    return 0;
}
