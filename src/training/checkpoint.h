/* checkpoint.h — saving a model as a Hugging Face folder that transformers loads back, and the
 * training state that lets a run resume where it stopped. Every save is atomic: the folder is
 * written beside the target, synced, and swapped in with one rename, so a crash leaves either
 * the old checkpoint or the new one, never a mix. */
#ifndef DBT_CHECKPOINT_H
#define DBT_CHECKPOINT_H

#include "optimizer.h"
#include "params.h"
#include "../common/rng.h"

typedef struct {
    int64_t step;          /* optimizer updates done */
    int64_t epoch;         /* epochs completed */
    int64_t cursor;        /* batches of the current epoch already consumed */
    dbt_rng rng;           /* the generator as it is at this point */
    uint64_t seed;
    double best_metric;
} dbt_train_state;

/* Writes dir/config.json, dir/model.safetensors and the tokenizer files of src_dir (copied),
 * plus, when opt/state are given, dir/optimizer.safetensors and dir/trainer_state.json. */
int dbt_save_checkpoint(const dbt_model *m, const dbt_params *p, const char *src_dir, const char *dir,
                        const dbt_adamw *opt, const dbt_train_state *state);
/* Reads the optimizer moments and the training state saved with a checkpoint. */
int dbt_load_train_state(const char *dir, const dbt_params *p, dbt_adamw *opt, dbt_train_state *state);

#endif
