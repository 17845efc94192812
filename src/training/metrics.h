/* metrics.h — evaluation metrics, each computed the way its reference implementation does it,
 * down to the order of floating-point operations where that is practical (tests compare against
 * the references on random inputs: tests/test_metrics_reference.py).
 *
 * References (the versions the oracle venv pins): scikit-learn 1.2, scipy 1.10, numpy 1.24,
 * seqeval 1.2.2, and the official SQuAD v1.1 evaluate-v1.1.py. Plain functions, no state.
 * Functions returning int return 0 on success and -1 (message in dbt_last_error()) where the
 * reference raises an exception, or on allocation failure.
 */
#ifndef DBT_METRICS_H
#define DBT_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* ---- classification (integer labels) ------------------------------------------------------ */

/* sklearn.metrics.accuracy_score: the fraction of i with pred[i] == gold[i]; NaN when n == 0
 * (numpy's mean of an empty array). */
double dbt_metric_accuracy(const int *pred, const int *gold, size_t n);

typedef struct {
    double precision, recall, f1;
} dbt_prf;

/* sklearn.metrics.precision_recall_fscore_support(gold, pred, average="binary",
 * pos_label=pos_label) with zero_division="warn" (the default: an undefined ratio counts as 0,
 * sklearn only adds a warning). f1 = 2·p·r / (p + r), 0 when p + r == 0 (sklearn 1.2's formula).
 * Fails like sklearn when the labels are not binary (more than two distinct values in pred ∪
 * gold), or when pos_label is not among two present labels. One present label other than
 * pos_label, or n == 0, gives all zeros. */
int dbt_metric_prf_binary(const int *pred, const int *gold, size_t n, int pos_label, dbt_prf *out);

/* The same with average="macro": per-label precision, recall and F1 over the sorted distinct
 * labels of pred ∪ gold (undefined ratios are 0), then their unweighted mean as numpy computes
 * it (pairwise summation). n == 0 gives NaN (the mean of no labels). */
int dbt_metric_prf_macro(const int *pred, const int *gold, size_t n, dbt_prf *out);

/* sklearn.metrics.matthews_corrcoef, the multiclass formula (Gorodkin's R_K) on the confusion
 * matrix of pred ∪ gold labels:
 *   cov(t,p) = n_correct·n − Σ_k t_k·p_k, cov(p,p) = n² − Σ p_k², cov(t,t) = n² − Σ t_k²,
 *   MCC = cov(t,p) / sqrt(cov(t,t)·cov(p,p)), and 0.0 when cov(t,t)·cov(p,p) == 0.
 * Returns NaN only on allocation failure. */
double dbt_metric_mcc(const int *pred, const int *gold, size_t n);

/* ---- regression / correlation -------------------------------------------------------------- */

/* scipy.stats.pearsonr(x, y).statistic (scipy 1.10): NaN if n < 2 (scipy raises) or an input is
 * constant; sign(x1−x0)·sign(y1−y0) when n == 2; otherwise the centered vectors (numpy means)
 * are divided by their 2-norms and dotted, clipped to [−1, 1]. All in double. */
double dbt_metric_pearson(const double *x, const double *y, size_t n);

/* scipy.stats.spearmanr(x, y).statistic (scipy 1.10): Pearson's r of the average ranks (ties get
 * the mean of their 1-based positions, like scipy.stats.rankdata(method="average")) computed as
 * numpy.corrcoef does; NaN if n <= 1, an input is constant, or an input contains NaN. */
double dbt_metric_spearman(const double *x, const double *y, size_t n);

/* scipy.stats.rankdata(v, method="average") into ranks[0..n). 0, or -1 on allocation failure. */
int dbt_metric_rankdata(const double *v, size_t n, double *ranks);

/* numpy's float64 sum of v[0..n) (np.add.reduce: 0.0 + pairwise summation with 8 accumulators
 * in blocks of 128), so that means match numpy bit for bit. */
double dbt_metric_numpy_sum(const double *v, size_t n);

/* ---- entity-level sequence labeling (seqeval 1.2.2, default non-strict mode) -------------- */

/* One chunk as seqeval.metrics.sequence_labeling.get_entities returns it: (type, start, end),
 * end inclusive. type points into the tag it came from (type_len bytes), or to "_". */
typedef struct {
    const char *type;
    size_t type_len;
    int64_t start, end;
} dbt_entity;

/* get_entities(seq) for one flat sequence of n tags (suffix=False): each tag's first character
 * is its chunk tag, the type is what follows the first '-' after it ("B-PER" → PER; no '-': the
 * rest of the tag; empty → "_"), and chunks end/start by seqeval's end_of_chunk/start_of_chunk
 * rules (conlleval's: I- after O or after a different type starts a chunk; E-/S- end one).
 * A virtual 'O' is appended at the end, as seqeval does. *out is malloc'd (NULL when there are
 * none); returns the number of entities, or -1. Entities come in increasing `end` order. */
int64_t dbt_seqeval_entities(const char *const *tags, size_t n, dbt_entity **out);

typedef struct {
    double precision, recall, f1;
    int64_t support;        /* number of gold entities */
    int64_t n_pred, n_true_positive;
} dbt_seqeval_row;

typedef struct {
    char *name;             /* entity type, NUL-terminated, malloc'd */
    dbt_seqeval_row row;
} dbt_seqeval_type;

/* seqeval.metrics.classification_report(gold, pred, output_dict=True) in default mode, plus the
 * scores precision_score/recall_score/f1_score return (the micro row).
 *   micro:    totals over types (precision_score etc. with average="micro", the default)
 *   macro:    unweighted numpy mean over types (NaN when there are no types, as numpy gives)
 *   weighted: mean weighted by support (all 0 when there is no gold entity, seqeval's special
 *             case with zero_division="warn")
 *   types:    one row per entity type of pred ∪ gold, sorted by name (Python's str order).
 * Undefined ratios are 0 (zero_division="warn"). */
typedef struct {
    dbt_seqeval_row micro, macro, weighted;
    int n_types;
    dbt_seqeval_type *types;
} dbt_seqeval_report;

/* Sentences are concatenated as seqeval does with lists of lists (an 'O' after each one).
 * pred and gold hold the tags of all sentences back to back; sent_len[s] is the length of
 * sentence s (the same for pred and gold). 0 or -1 (with *out zeroed): n_sent == 0 fails, as
 * seqeval raises TypeError on an empty list, and so does an empty tag (IndexError there). */
int dbt_seqeval_evaluate(const char *const *pred, const char *const *gold, const size_t *sent_len,
                         size_t n_sent, dbt_seqeval_report *out);
void dbt_seqeval_report_free(dbt_seqeval_report *r);

/* ---- SQuAD v1.1 (the official evaluate-v1.1.py) -------------------------------------------- */

/* Python's str.lower() on UTF-8 text: full lowercase mapping (U+0130 → "i\u0307") and the
 * Final_Sigma rule for U+03A3, simple mappings (utf8proc_tolower) otherwise. Invalid UTF-8 is
 * read as U+FFFD. Returns a malloc'd NUL-terminated string, or NULL on allocation failure. */
char *dbt_py_lower(const char *s, size_t len);

/* normalize_answer(s): lower() → drop ASCII punctuation (string.punctuation) → replace each
 * whole word "a", "an", "the" by a space (re's Unicode \b: word characters are str.isalnum()
 * ones and '_') → ' '.join(s.split()) (Python's Unicode whitespace). Returns a malloc'd string,
 * or NULL on allocation failure. */
char *dbt_squad_normalize(const char *s, size_t len);

/* exact_match_score / f1_score maximized over n_gold ground truths
 * (metric_max_over_ground_truths). f1 = 2·p·r/(p + r) on the bag of normalized tokens, 0 when
 * no token is shared. n_gold == 0 (Python's max() of nothing raises) and allocation failures
 * give -1. */
int dbt_squad_exact_match(const char *pred, const char *const *gold, size_t n_gold);
double dbt_squad_f1(const char *pred, const char *const *gold, size_t n_gold);

/* evaluate(dataset, predictions) of evaluate-v1.1.py over n_q questions: question q has
 * n_gold[q] ground truths, taken in order from gold[]; pred[q] == NULL is an unanswered
 * question (0 for both, still counted). *em and *f1 are ×100 averages, summed in question order
 * as the script does. 0, or -1 if an answered question has no ground truth (the script
 * raises), if n_q == 0 (division by zero) or on allocation failure. */
int dbt_squad_evaluate(const char *const *pred, const char *const *gold, const size_t *n_gold,
                       size_t n_q, double *em, double *f1);

#endif
