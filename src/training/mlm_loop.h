/* mlm_loop.h — the masked-LM training loop that `pretrain` and `distill` share: a corpus of
 * token sequences, batches of similar lengths, dynamic masking every step, a student trained on
 * the distillation loss (plain masked-LM when there is no teacher), checkpoints, resume. */
#ifndef DBT_MLM_LOOP_H
#define DBT_MLM_LOOP_H

#include <stdint.h>

#include "distill.h"
#include "distilbert.h"

/* The training sequences, as the reference's LmSeqsDataset leaves them: each corpus line is
 * encoded as [CLS] … [SEP]; a sequence longer than max_length is cut into pieces of
 * max_length − 2 tokens, each wrapped in [CLS]/[SEP] where it lacks them; sequences of fewer
 * than 12 tokens, and those that are at least half [UNK], are dropped. In a data-parallel job
 * (dist.h) rank r tokenizes lines r, r + N, r + 2N, … and the ranks exchange their sequences:
 * every rank ends with this same corpus, for 1/N of the tokenizing (a collective call). */
typedef struct {
    int32_t *ids;       /* every sequence, back to back */
    int64_t *start;     /* n + 1 offsets into ids */
    int64_t n;
    int64_t *counts;    /* occurrences of each id in the kept sequences (vocab entries) */
    int64_t n_lines, n_split, n_short, n_unknown; /* read, split, dropped short, dropped [UNK] */
} dbt_lm_corpus;

int dbt_lm_corpus_read(const dbt_tokenizer *tok, int vocab, const char *const *paths, int n_paths, int max_length,
                       dbt_lm_corpus *c);
void dbt_lm_corpus_free(dbt_lm_corpus *c);

/* The batch order of one epoch, as the reference's GroupedBatchSampler draws it: a (seed,
 * epoch) shuffle, each sequence going to the bucket of its length (bins 3, 7, 11, … below
 * max_length); a bucket that fills up becomes the next batch; what is left at the end is
 * concatenated bucket by bucket and cut into batches. Every batch but the last holds
 * batch_size sequences: batch b is order[b·batch_size …]. */
int dbt_lm_epoch_order(const dbt_lm_corpus *c, int batch_size, int max_length, uint64_t seed, int64_t epoch,
                       int64_t *order);

/* One run of the loop. */
typedef struct {
    dbt_model *student;          /* loaded for training with its MLM head */
    dbt_model *teacher;          /* NULL: masked-LM only */
    const dbt_tokenizer *tok;    /* encodes the corpus */
    dbt_distill_cfg loss;
    const dbt_mlm_train_opts *o;
    const char *title;           /* "distillation", "pretraining": log and plot */
    int resume;                  /* the student was loaded from o->out_dir's checkpoint */
} dbt_mlm_run;

/* Trains; saves out_dir as checkpoints go. 0, 1 when interrupted by SIGINT (saved), -1. */
int dbt_mlm_train(const dbt_mlm_run *r);

/* dbt_mlm_train_opts with the distiller's defaults. */
dbt_mlm_train_opts dbt_mlm_train_opts_default(void);
/* Checks the options common to both commands. */
int dbt_mlm_train_opts_check(const dbt_mlm_train_opts *o);
/* out_dir holds a state that --resume can continue (error otherwise, when o->resume). Returns
 * 1 to resume, 0 for a fresh run, -1 on error. */
int dbt_mlm_resume_state(const dbt_mlm_train_opts *o);
/* Prepares out_dir for a fresh run: creates it, removes a previous run's training state. */
int dbt_mlm_prepare_out(const char *out_dir);

#endif
