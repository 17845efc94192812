/* train_util.h — pieces every training loop shares: stopping cleanly on Ctrl-C, and the
 * reproducible order of an epoch's examples. */
#ifndef DBT_TRAIN_UTIL_H
#define DBT_TRAIN_UTIL_H

#include <signal.h>
#include <stdint.h>

/* SIGINT (or SIGUSR1, which mpirun forwards to its ranks) during training only raises a flag:
 * the loop finishes the update it is in, saves a checkpoint and returns, so that --resume can
 * continue exactly there. */
typedef struct {
    struct sigaction old, old_usr1;
    int installed, installed_usr1;
} dbt_sigint_guard;

void dbt_sigint_begin(dbt_sigint_guard *g); /* installs the handler, clears the flag */
int dbt_sigint_pending(void);               /* 1 once Ctrl-C was pressed since begin */
void dbt_sigint_end(dbt_sigint_guard *g);   /* restores the previous handler */

/* order[0..n) = a permutation of 0..n-1 that depends on (seed, epoch) only (Fisher–Yates), so a
 * resumed run sees the same order as an uninterrupted one. */
void dbt_epoch_shuffle(int64_t *order, int64_t n, uint64_t seed, int64_t epoch);

#endif
