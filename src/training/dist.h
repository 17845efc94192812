/* dist.h — data-parallel training: the few collective operations the training loops need, over
 * MPI when the library is built with it (pkg-config ompi-c found; `make MPI=0` builds without),
 * else over one rank. dist.c is the only file that includes <mpi.h>.
 *
 * The scheme (public part in distilbert.h): every rank holds the whole data set and the same
 * weights (rank 0's, broadcast at the start); a global batch is N × batch_size sequences taken
 * exactly as one process with batch N·batch_size takes them, and rank r trains on its slice
 * [r·batch_size, (r+1)·batch_size) of it. Each rank weights its loss by its share of the global
 * batch's normalizer (examples, labelled tokens, masked tokens, rows: whatever the loss divides
 * by), so the sum of the ranks' gradients is the gradient of the global batch's loss, and every
 * rank applies the same AdamW step to the same summed gradient.
 *
 * Collectives must be called by every rank in the same order: the loops call them at points
 * that depend only on the step counters, never on a rank's own data. */
#ifndef DBT_DIST_H
#define DBT_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "distilbert.h"
#include "checkpoint.h"
#include "../common/rng.h"

/* ---- transport (no-ops on one rank) -------------------------------------------------------- */

int dbt_dist_allreduce_sum(float *x, int64_t n);      /* in place, every rank gets the sum */
int dbt_dist_allreduce_sum_f64(double *x, int64_t n);
int dbt_dist_allreduce_sum_i64(int64_t *x, int64_t n);
int dbt_dist_bcast(void *buf, size_t bytes, int root);
int dbt_dist_barrier(void);
/* 1 on every rank when flag is nonzero on any rank (a logical OR). */
int dbt_dist_any(int flag);

/* ---- what the training loops share ----------------------------------------------------------- */

/* A failure all ranks take together (the loss became NaN everywhere, an agreed stop): the
 * ranks can then finalize cleanly instead of aborting the job. */
void dbt_dist_fail_together(void); /* dbt_dist_failed_together() then says so */
/* Collective: 0 when rc == 0 on every rank; else -1 on every rank, the failure taken together.
 * A rank that failed keeps its own message; the others get one naming the (highest) rank that
 * failed, whose message is in the job's output. */
int dbt_dist_agree(int rc);

/* Rank r's slice of a global batch of n_global items when each rank takes per_rank of them:
 * [*lo, *lo + *n), *n possibly 0 at the end of an epoch. */
void dbt_dist_shard(int64_t n_global, int per_rank, int64_t *lo, int *n);

/* The generator this rank's dropout draws from for global micro-batch `key`. One rank: the
 * shared one itself (a plain run draws exactly as before). Several: a stream derived from the
 * shared state, the key and the rank, so that ranks drop different units, deterministically,
 * without moving the shared generator (which masking keeps identical on every rank, and which
 * checkpoints save). */
dbt_rng *dbt_dist_rng(dbt_rng *shared, dbt_rng *own, uint64_t key);

/* Rank 0's weights, and when resuming its AdamW moments and training state, to every rank. */
int dbt_dist_bcast_train(dbt_params *p, dbt_adamw *opt, dbt_train_state *st);
/* The hook between the gradients of an update and clipping / AdamW: sums p->grad over ranks. */
int dbt_dist_sync_grads(dbt_params *p);
/* Collective check that every rank holds the same weights and moments (a hash of their bits);
 * where they differ, rank 0's are broadcast. Returns 1 when it had to re-synchronize, 0 when
 * they agreed, -1 on error. Called at checkpoints: summed gradients are identical on every
 * rank with MPI's reductions, so this should never fire; it bounds the damage if it does. */
int dbt_dist_check_weights(dbt_params *p, dbt_adamw *opt);

#endif
