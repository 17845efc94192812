/* train_util.c — SIGINT flag and epoch shuffles for the training loops. */
#include "train_util.h"

#include <string.h>

#include "../common/rng.h"

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

void dbt_sigint_begin(dbt_sigint_guard *g) {
    struct sigaction sa;
    g_interrupted = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    g->installed = sigaction(SIGINT, &sa, &g->old) == 0;
    /* mpirun kills its ranks on Ctrl-C, but forwards SIGUSR1 to all of them: under MPI,
     * `kill -USR1 <mpirun pid>` is the Ctrl-C that saves */
    g->installed_usr1 = sigaction(SIGUSR1, &sa, &g->old_usr1) == 0;
}

int dbt_sigint_pending(void) { return g_interrupted != 0; }

void dbt_sigint_end(dbt_sigint_guard *g) {
    if (g->installed) sigaction(SIGINT, &g->old, NULL);
    if (g->installed_usr1) sigaction(SIGUSR1, &g->old_usr1, NULL);
    g->installed = g->installed_usr1 = 0;
}

void dbt_epoch_shuffle(int64_t *order, int64_t n, uint64_t seed, int64_t epoch) {
    dbt_rng r;
    dbt_rng_seed(&r, seed * 1000003u + (uint64_t)epoch);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = dbt_rng_below(&r, (uint32_t)(i + 1));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}
