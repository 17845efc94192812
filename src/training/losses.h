/* losses.h — the task losses of transformers' models, each returning the loss and writing its
 * gradient with respect to the logits (scaled by `scale`, e.g. 1/accumulation steps). */
#ifndef DBT_LOSSES_H
#define DBT_LOSSES_H

#include <stdint.h>

#define DBT_IGNORE_INDEX (-100)

/* Mean cross-entropy over rows whose label is not DBT_IGNORE_INDEX (torch's CrossEntropyLoss).
 * *count receives the rows that counted; with none, the loss is 0 and d is 0. */
double dbt_loss_cross_entropy(const float *logits, int rows, int cols, const int32_t *labels, float scale, float *d,
                              int64_t *count);
/* Mean squared error (regression with one label): mean over rows of (x − t)². */
double dbt_loss_mse(const float *x, const float *t, int n, float scale, float *d);
/* Mean binary cross-entropy with logits over all n elements (multi-label). */
double dbt_loss_bce_logits(const float *x, const float *t, int64_t n, float scale, float *d);
/* Question answering: (CE(start) + CE(end)) / 2 over sequences; logits are packed rows × 2 with
 * sequence s owning rows row_start[s]..row_start[s+1]-1; positions index within the sequence,
 * clamped to [0, T] and ignored when equal to T. The softmax runs over the sequence's own T
 * tokens; transformers' runs over the batch's padded length (padding logits included), which
 * is the same only when nothing is padded. */
double dbt_loss_qa(const float *logits, int n_seqs, const int32_t *row_start, const int32_t *start_pos,
                   const int32_t *end_pos, float scale, float *d);

/* Knowledge distillation's soft-target loss, as the DistilBERT distiller computes it:
 * KLDivLoss(reduction="batchmean")(log_softmax(s/T), softmax(t/T)) · T², i.e. the mean over rows
 * of KL(p_t ‖ p_s). The gradient T·(p_s − p_t)/rows·scale is ADDED to d (when d). Rows are
 * `stride` floats apart (cols contiguous). */
double dbt_loss_kl_soft(const float *s, const float *t, int rows, int cols, int64_t stride, float T, float scale,
                        float *d);

/* Task distillation's soft-target loss for question answering, as Hugging Face's
 * run_squad_w_distillation.py (DistilBERT's SQuAD step) computes it: for the start logits and for
 * the end logits separately, KLDivLoss(reduction="batchmean")(log_softmax(s/T), softmax(t/T))·T²
 * (a mean over sequences of KL(p_t ‖ p_s), each softmax over one sequence's positions), then
 * (start + end) / 2. s and t are packed rows × 2 (start, end) laid out as for dbt_loss_qa; the
 * softmaxes run over each sequence's own tokens (see dbt_loss_qa on padding). The gradient,
 * times scale, is ADDED to d (when d). */
double dbt_loss_qa_soft(const float *s, const float *t, int n_seqs, const int32_t *row_start, float T, float scale,
                        float *d);

#endif
