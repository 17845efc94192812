/* dist.c — the collectives of data-parallel training (dist.h), over MPI when built with
 * DBT_WITH_MPI (the Makefile defines it, with the include path, for this file only, when
 * pkg-config finds ompi-c; `make MPI=0` leaves it out), else over one rank.
 *
 * MPI is initialized only under a launcher: a plain `distilbert finetune` never touches it, so
 * it starts as fast as without MPI (an MPI singleton start costs ~0.3 s here and forks a
 * helper), and prints nothing. */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"

/* The launcher's environment names a rank: Open MPI's mpirun, PMIx (Open MPI 5, srun
 * --mpi=pmix), PMI-1/2 (MPICH's hydra, srun --mpi=pmi2). */
static int launched_world_size(void) {
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof size_vars / sizeof size_vars[0]; i++) {
        const char *v = getenv(size_vars[i]);
        if (v && *v) return atoi(v) > 0 ? atoi(v) : 1;
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0; /* a launcher, size unknown */
}

static int g_together; /* the failure being handled is every rank's */

void dbt_dist_fail_together(void) { g_together = 1; }
int dbt_dist_failed_together(void) { return g_together; }

#ifdef DBT_WITH_MPI
#include <limits.h>
#include <mpi.h>

static int g_active;     /* MPI is in use (initialized here or by the program) */
static int g_we_init;    /* MPI_Init was ours: so is MPI_Finalize */
static int g_rank, g_size = 1, g_local = 1;

const char *dbt_dist_backend(void) { return "mpi"; }

int dbt_dist_init(int *argc, char ***argv) {
    if (g_active) return g_size;
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (finalized) return dbt_set_error("MPI was already finalized");
    if (!inited) {
        if (!launched_world_size()) return 1; /* a plain run: one rank, MPI untouched */
        int provided;
        /* FUNNELED: the GEMM worker threads never call MPI, only the main thread does */
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return dbt_set_error("MPI_Init failed");
        g_we_init = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &g_local);
        MPI_Comm_free(&node);
    }
    g_active = 1;
    return g_size;
}

void dbt_dist_finalize(int status) {
    if (!g_active) return;
    if (status != 0 && g_size > 1 && !g_together) {
        /* Only this rank failed: the others may be waiting for it in a collective, and
         * MPI_Finalize would wait for them. End the job. */
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    g_active = 0;
    if (g_we_init) MPI_Finalize();
}

int dbt_dist_rank(void) { return g_rank; }
int dbt_dist_size(void) { return g_size; }
int dbt_dist_local_size(void) { return g_local; }

int dbt_dist_allreduce_sum(float *x, int64_t n) {
    if (g_size == 1) return 0;
    for (int64_t i = 0; i < n; i += INT_MAX / 2) { /* counts are ints */
        const int k = (int)(n - i < INT_MAX / 2 ? n - i : INT_MAX / 2);
        if (MPI_Allreduce(MPI_IN_PLACE, x + i, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return dbt_set_error("MPI_Allreduce failed");
    }
    return 0;
}

int dbt_dist_allreduce_sum_f64(double *x, int64_t n) {
    if (g_size == 1) return 0;
    for (int64_t i = 0; i < n; i += INT_MAX / 2) {
        const int k = (int)(n - i < INT_MAX / 2 ? n - i : INT_MAX / 2);
        if (MPI_Allreduce(MPI_IN_PLACE, x + i, k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return dbt_set_error("MPI_Allreduce failed");
    }
    return 0;
}

int dbt_dist_allreduce_sum_i64(int64_t *x, int64_t n) {
    if (g_size == 1) return 0;
    for (int64_t i = 0; i < n; i += INT_MAX / 2) {
        const int k = (int)(n - i < INT_MAX / 2 ? n - i : INT_MAX / 2);
        if (MPI_Allreduce(MPI_IN_PLACE, x + i, k, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return dbt_set_error("MPI_Allreduce failed");
    }
    return 0;
}

int dbt_dist_bcast(void *buf, size_t bytes, int root) {
    if (g_size == 1) return 0;
    for (size_t i = 0; i < bytes; i += INT_MAX / 2) {
        const int k = (int)(bytes - i < INT_MAX / 2 ? bytes - i : INT_MAX / 2);
        if (MPI_Bcast((char *)buf + i, k, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS)
            return dbt_set_error("MPI_Bcast failed");
    }
    return 0;
}

int dbt_dist_barrier(void) {
    if (g_size == 1) return 0;
    return MPI_Barrier(MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : dbt_set_error("MPI_Barrier failed");
}

static int allreduce_max_int(int *x, int n) {
    if (g_size == 1) return 0;
    return MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD) == MPI_SUCCESS
               ? 0 : dbt_set_error("MPI_Allreduce failed");
}

/* 1 when h is the same on every rank. */
static int same_everywhere(uint64_t h) {
    if (g_size == 1) return 1;
    uint64_t v[2] = {h, ~h}; /* max(h) and max(~h) = ~min(h) */
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    return v[0] == h && v[1] == ~h;
}

#else /* one rank: the build without MPI */

const char *dbt_dist_backend(void) { return "none"; }

int dbt_dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* N copies of a single-process trainer would all write the same output folder */
    if (launched_world_size() > 1)
        return dbt_set_error("started by an MPI launcher with several ranks, but this build has no MPI "
                             "(install libopenmpi-dev and rebuild: make clean && make)");
    return 1;
}

void dbt_dist_finalize(int status) { (void)status; }
int dbt_dist_rank(void) { return 0; }
int dbt_dist_size(void) { return 1; }
int dbt_dist_local_size(void) { return 1; }
int dbt_dist_allreduce_sum(float *x, int64_t n) { (void)x; (void)n; return 0; }
int dbt_dist_allreduce_sum_f64(double *x, int64_t n) { (void)x; (void)n; return 0; }
int dbt_dist_allreduce_sum_i64(int64_t *x, int64_t n) { (void)x; (void)n; return 0; }
int dbt_dist_bcast(void *buf, size_t bytes, int root) { (void)buf; (void)bytes; (void)root; return 0; }
int dbt_dist_barrier(void) { return 0; }
static int allreduce_max_int(int *x, int n) { (void)x; (void)n; return 0; }
static int same_everywhere(uint64_t h) { (void)h; return 1; }

#endif

/* ---- built on the transport ------------------------------------------------------------------ */

int dbt_dist_any(int flag) {
    int v = flag != 0;
    if (allreduce_max_int(&v, 1)) return 1; /* cannot tell: stopping is the safe answer */
    return v;
}

int dbt_dist_agree(int rc) {
    if (dbt_dist_size() == 1) return rc ? -1 : 0;
    int v = rc ? dbt_dist_rank() + 1 : 0;
    if (allreduce_max_int(&v, 1)) return -1;
    if (!v) return 0;
    dbt_dist_fail_together();
    if (!rc) dbt_set_error("rank %d of %d failed (its message is above)", v - 1, dbt_dist_size());
    return -1;
}

void dbt_dist_shard(int64_t n_global, int per_rank, int64_t *lo, int *n) {
    const int64_t start = (int64_t)dbt_dist_rank() * per_rank;
    const int64_t left = n_global - start;
    *lo = start;
    *n = left <= 0 ? 0 : (int)(left < per_rank ? left : per_rank);
}

dbt_rng *dbt_dist_rng(dbt_rng *shared, dbt_rng *own, uint64_t key) {
    if (dbt_dist_size() == 1) return shared;
    uint64_t x = key * 0x9E3779B97F4A7C15ull ^ ((uint64_t)dbt_dist_rank() + 1) * 0xD1B54A32D192ED03ull;
    for (int i = 0; i < 4; i++) x = (x ^ shared->s[i]) * 0xBF58476D1CE4E5B9ull + (uint64_t)i;
    dbt_rng_seed(own, x); /* splitmix64 inside scatters the mixed word over the whole state */
    return own;
}

int dbt_dist_bcast_train(dbt_params *p, dbt_adamw *opt, dbt_train_state *st) {
    if (dbt_dist_size() == 1) return 0;
    if (dbt_dist_bcast(p->data, (size_t)p->total * sizeof *p->data, 0) ||
        dbt_dist_bcast(opt->m, (size_t)p->total * sizeof *opt->m, 0) ||
        dbt_dist_bcast(opt->v, (size_t)p->total * sizeof *opt->v, 0) || dbt_dist_bcast(&opt->step, sizeof opt->step, 0) ||
        dbt_dist_bcast(st, sizeof *st, 0))
        return -1;
    return 0;
}

int dbt_dist_sync_grads(dbt_params *p) {
    /* Each rank's loss was already weighted by its share of the global batch (see dist.h), so
     * the sum is the global batch's gradient: no division by the number of ranks here. */
    return dbt_dist_allreduce_sum(p->grad, p->total);
}

static uint64_t hash_floats(uint64_t h, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b);
        h = (h ^ b) * 0x100000001B3ull;
        h ^= h >> 29;
    }
    return h;
}

int dbt_dist_check_weights(dbt_params *p, dbt_adamw *opt) {
    if (dbt_dist_size() == 1) return 0;
    uint64_t h = hash_floats(0xCBF29CE484222325ull, p->data, p->total);
    h = hash_floats(h, opt->m, p->total);
    h = hash_floats(h, opt->v, p->total);
    if (same_everywhere(h)) return 0;
    if (dbt_dist_bcast(p->data, (size_t)p->total * sizeof *p->data, 0) ||
        dbt_dist_bcast(opt->m, (size_t)p->total * sizeof *opt->m, 0) ||
        dbt_dist_bcast(opt->v, (size_t)p->total * sizeof *opt->v, 0))
        return -1;
    return 1;
}
