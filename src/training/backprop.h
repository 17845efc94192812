/* backprop.h — the training forward pass (keeping what backward needs, with dropout) and the
 * backward pass, for the encoder and every head.
 *
 * A step is: dbt_train_forward → a loss on out->logits / out->hidden (losses.h, or the
 * distiller's) giving d_logits (and optionally d_hidden) → dbt_train_backward, which adds the
 * parameter gradients into params->grad. The same packed layout as inference: sequence i owns
 * rows row_start[i] .. row_start[i+1]-1, no padding anywhere. */
#ifndef DBT_BACKPROP_H
#define DBT_BACKPROP_H

#include <stdint.h>

#include "params.h"
#include "../common/rng.h"

typedef struct dbt_train_cache dbt_train_cache;

typedef struct {
    int n_seqs;
    const int32_t *row_start; /* n_seqs + 1 (owned by the cache) */
    int32_t n_rows;
    int dim;
    const float *hidden;      /* n_rows × dim, the last hidden state; SEQ_CLS: n_seqs × dim, the
                                 first ([CLS]) row of each sequence only, since the logits read
                                 nothing else the last layer runs on those rows alone */
    float *logits;            /* the head's logits (NULL for DBT_HEAD_NONE):
                                 MLM       n_sel × vocab (rows listed in mlm_rows)
                                 SEQ_CLS   n_seqs × n_labels
                                 TOKEN_CLS n_rows × n_labels
                                 QA        n_rows × 2 */
    int logits_rows, logits_cols;
    const int32_t *mlm_rows;  /* MLM: the packed row of each logits row */
} dbt_train_out;

/* Runs the model in training mode (dropout on when `train`, drawn from rng). For the MLM head,
 * mlm_select (n_rows flags, NULL = all rows) picks the rows whose logits are computed.
 * *cache is NULL, or the cache of an earlier step, whose memory is then reused: a training loop
 * keeps one across its steps (its buffers grow to the largest batch seen and a step allocates
 * nothing). On return *cache holds this pass; out's arrays live in it until the next
 * dbt_train_forward on it or dbt_train_cache_free. On an error the cache is freed and *cache is
 * NULL. */
int dbt_train_forward(dbt_model *m, const dbt_encoding *encs, int n, const uint8_t *mlm_select, int train,
                      dbt_rng *rng, dbt_train_cache **cache, dbt_train_out *out);
/* Backpropagates d_logits (shaped like out->logits; may be NULL) and d_hidden (n_rows × dim,
 * added to the gradient of the last hidden state; may be NULL, and must be for SEQ_CLS), adding
 * into p->grad. */
int dbt_train_backward(dbt_model *m, dbt_params *p, dbt_train_cache *cache, const float *d_logits,
                       const float *d_hidden);
void dbt_train_cache_free(dbt_train_cache *c);

#endif
