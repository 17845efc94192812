/* distill.h — the pieces of DistilBERT's distillation (Sanh et al. 2019, and Hugging Face's
 * examples/research_projects/distillation) restated in C, shared by `distilbert distill`,
 * `distilbert pretrain` and the parity driver tests/tools/distill_step.c:
 *
 *   - dynamic masking: which tokens to predict and how to corrupt them (the distiller's
 *     prepare_batch_mlm);
 *   - the student: a DistilBERT built from the teacher's embeddings and every other layer (the
 *     extract_distilbert.py script), or randomly initialized as transformers' _init_weights does;
 *   - the triple loss: soft-target KL·T² + masked-LM cross-entropy + cosine of the last hidden
 *     states (+ the optional MSE on logits), and its gradient. */
#ifndef DBT_DISTILL_H
#define DBT_DISTILL_H

#include <stddef.h>
#include <stdint.h>

#include "../model/model_internal.h"
#include "backprop.h"

/* ---- masking ------------------------------------------------------------------------------ */

typedef struct {
    double mask_prop;                    /* share of a batch's tokens to predict: 0.15 */
    double word_mask, word_keep, word_rand; /* what becomes of them: [MASK] 0.8, kept 0.1, random 0.1 */
    double smoothing;                    /* sampling weight max(count,1)^-smoothing: 0.7 */
} dbt_mask_cfg;

/* Checks the proportions (0 <= mask_prop <= 1, the three word_* sum to 1, smoothing >= 0). */
int dbt_mask_cfg_check(const dbt_mask_cfg *c);

/* probs[v] = max(counts[v], 1)^-smoothing for v < V; 0 for the special tokens (never masked).
 * counts may be NULL (every count is 1: uniform over the non-special tokens). */
void dbt_mlm_token_probs(const int64_t *counts, int V, double smoothing, const dbt_special_ids *sp, double *probs);

/* Dynamic masking of R packed tokens: n = ceil(mask_prop·R) positions drawn without
 * replacement with probability ∝ probs[id] (positions of weight 0 are never drawn; n is capped
 * at their number), each then replaced by [MASK] / kept / replaced by a token uniform in
 * [0, V) in the word_* proportions. out_ids: the corrupted ids; labels: the original id at the
 * drawn positions, DBT_IGNORE_INDEX elsewhere. Returns the number drawn, or -1. */
int64_t dbt_mlm_mask(const dbt_mask_cfg *c, const double *probs, int V, int32_t mask_id, const int32_t *ids,
                     int64_t R, dbt_rng *rng, int32_t *out_ids, int32_t *labels);

/* ---- the student -------------------------------------------------------------------------- */

/* The teacher's layer behind each of the n_student layers: evenly spaced including the first
 * and the last (round(i·(n_teacher−1)/(n_student−1))), which for 12 → 6 is the reference's
 * [0, 2, 4, 7, 9, 11]. */
void dbt_layer_map_default(int n_teacher, int n_student, int *map);

/* Random weights for a model of config c with an MLM head, as transformers' _init_weights makes
 * them: normal(0, initializer_range) for Linear and Embedding weights, zero biases, LayerNorm
 * 1/0, the padding row of the word embeddings zero; the decoder is tied to the word
 * embeddings. w's arrays (and layers) live in *storage: free(*storage), free(w->layers). */
int dbt_init_random_weights(const dbt_config *c, uint64_t seed, dbt_weights *w, float **storage);

/* Points s at the teacher's tensors under the layer map (no copy): embeddings (word, position,
 * LayerNorm; token types dropped), layer i = teacher layer map[i], and the MLM head when the
 * teacher has one (else s keeps its own head). s->layers must hold n_layers entries. */
void dbt_student_from_teacher(const dbt_weights *t, const int *map, int n_layers, dbt_weights *s);

/* Writes dir/config.json and dir/model.safetensors of a ...ForMaskedLM model (config c, weights
 * w: BERT or DistilBERT names as transformers saves them; the decoder only when it is not tied
 * to the word embeddings, then with "tie_word_embeddings": false). Each file is written
 * atomically. */
int dbt_write_mlm_folder(const char *dir, const dbt_config *c, const dbt_weights *w);

/* Writes data to path through a temporary file and a rename: readers see all of it or none. */
int dbt_write_file_atomic(const char *path, const void *data, size_t n);
int dbt_copy_file(const char *from, const char *to);

/* Copies the tokenizer files of src_dir (vocab.txt, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json: those present) into dst_dir. */
int dbt_copy_tokenizer_files(const char *src_dir, const char *dst_dir, dbt_arch arch);

/* The teacher as distillation uses it: frozen, with its MLM head when config.json names one
 * (…ForMaskedLM / …ForPreTraining), else the bare encoder. */
dbt_model *dbt_distill_load_teacher(const char *dir);

/* ---- the loss ----------------------------------------------------------------------------- */

typedef struct {
    float temperature;      /* T of the soft targets: 2 */
    float alpha_ce;         /* KLDivLoss(batchmean)(log_softmax(s/T), softmax(t/T))·T² */
    float alpha_mlm;        /* CrossEntropy(student logits, masked-LM labels) */
    float alpha_mse;        /* MSELoss(sum)(s, t) / rows: logits (hidden states when the teacher has no head) */
    float alpha_cos;        /* CosineEmbeddingLoss(target 1) of the last hidden states */
    int restrict_ce_to_mask; /* ce and mse on the masked tokens only (else every token) */
} dbt_distill_cfg;

typedef struct {
    double loss;                    /* Σ alpha·term */
    double ce, mlm, mse, cos;       /* each term, unweighted (0 when its alpha is 0) */
    double mlm_acc;                 /* share of masked tokens whose argmax is the label */
    int64_t n_masked;
} dbt_distill_terms;

/* Flags the packed rows whose MLM logits the loss needs (sel: R bytes), for the student's
 * dbt_train_forward and the teacher's dbt_model_forward: every row when ce or mse compare
 * logits over all tokens, else the masked rows (labels != -100) when any logit term is on. */
void dbt_distill_logit_rows(const dbt_distill_cfg *c, int teacher_logits, const int32_t *labels, int32_t R,
                            uint8_t *sel);

/* The loss of one micro-batch: s from dbt_train_forward (logits on the rows sel flagged), t from
 * the teacher's dbt_model_forward on the same ids (NULL: no teacher, masked-LM only), labels per
 * packed row. Writes d_logits (shaped like s->logits) and, when d_hidden is given, the gradient
 * of the last hidden state (R × dim, zero unless cos or hidden-state mse are on), both scaled by
 * `scale` (1 / accumulation steps). Returns 0 or -1 (a term needs what is missing). */
int dbt_distill_loss(const dbt_distill_cfg *c, const dbt_train_out *s, const dbt_output *t, const int32_t *labels,
                     float scale, float *d_logits, float *d_hidden, dbt_distill_terms *terms);

/* The batch a loss is averaged over when the rows at hand are one slice of it (a rank's share
 * of a data-parallel global batch): its token rows (cos, hidden-state mse), its masked tokens
 * (mlm), and the rows the soft-target terms compare (ce, logit mse: every row, or the masked
 * ones with restrict_ce_to_mask — as dbt_distill_logit_rows selects them). */
typedef struct {
    int64_t rows, masked, soft;
} dbt_distill_norm;

/* dbt_distill_loss over a slice of the batch `norm` describes: every term (and mlm_acc) is
 * divided by the whole batch's count instead of the slice's, so each term, each gradient, is
 * the slice's share of the batch's, and summing them over the slices gives the batch's. norm
 * NULL: the slice is the batch (dbt_distill_loss). */
int dbt_distill_loss_part(const dbt_distill_cfg *c, const dbt_train_out *s, const dbt_output *t, const int32_t *labels,
                          float scale, const dbt_distill_norm *norm, float *d_logits, float *d_hidden,
                          dbt_distill_terms *terms);

#endif
