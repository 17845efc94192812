/* cli_dist.c — the training subcommands in a data-parallel job (`mpirun -np N distilbert
 * finetune|distill|pretrain ...`): joining the job, sharing a machine's cores between its ranks,
 * and leaving the job with one report and no rank left waiting. */
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* 1 when argv sets the flag (alone or as --flag=value). */
static int has_flag(int argc, char **argv, const char *flag) {
    const size_t n = strlen(flag);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], flag, n) && (argv[i][n] == '\0' || argv[i][n] == '=')) return 1;
    return 0;
}

int cli_dist_begin(const char *cmd, int argc, char **argv) {
    const int n = dbt_dist_init(NULL, NULL);
    if (n < 0) return cli_fail(cmd, "%s", dbt_last_error());
    if (n > 1 && !has_flag(argc, argv, "--threads")) {
        /* The cores this rank may use (the one mpirun binds it to, its default for up to two
         * ranks; a socket for more; all when unbound), but no more than its share of the
         * machine: GEMM threads beyond the cores would slow every rank down. */
        cpu_set_t set;
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        const int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
        const int share = (int)(online / dbt_dist_local_size());
        const int threads = mine < share ? mine : share;
        dbt_set_num_threads(threads > 0 ? threads : 1);
    }
    return -1;
}

int cli_dist_end(const char *cmd, int rc, const char *out) {
    const int many = dbt_dist_size() > 1, rank = dbt_dist_rank();
    int status = 0;
    if (rc < 0) {
        status = 1;
        /* a failure every rank took together is reported once; a rank's own, with its rank */
        if (!many) cli_fail(cmd, "%s", dbt_last_error());
        else if (!dbt_dist_failed_together()) cli_fail(cmd, "(rank %d of %d) %s", rank, dbt_dist_size(), dbt_last_error());
        else if (rank == 0) cli_fail(cmd, "%s", dbt_last_error());
    } else if (rc == 1) {
        status = 130; /* interrupted, state saved (every rank stopped at the same update) */
    } else if (rank == 0) {
        fprintf(stderr, "distilbert %s: saved %s\n", cmd, out);
    }
    dbt_dist_finalize(rc < 0 ? 1 : 0);
    return status;
}
