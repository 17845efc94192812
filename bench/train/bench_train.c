/* bench_train.c — training-step timing of libdistilbert, driven over a pipe by
 * bench/train/train_bench.py (the line protocol of bench/model/bench_model.c).
 *
 *   bench_train --model DIR [--threads N] [--seed S]
 *
 * Loads a model folder with a sequence-classification head (dbt_model_load, DBT_HEAD_AUTO),
 * copies its weights into a trainable buffer (dbt_params_init) and sets up AdamW as the peer's
 * torch.optim.AdamW: lr 5e-5 (constant), betas (0.9, 0.999), eps 1e-8, weight decay 0.01 on
 * everything but biases and LayerNorm weights (transformers' Trainer groups), clipping at global
 * norm 1.0. Prints one JSON line, then answers commands on stdin, one JSON line each:
 *
 *   check B T       one full step with dropout off on the batch (B, T), then one more forward
 *                   pass (dropout off) after the update: {"loss":..,"grad_norm":..,"loss_after":..}
 *                   — sent first, on the weights as loaded, so that it compares with the peer's
 *   run B T N W L   W untimed warm-up steps, then N timed steps (dropout on): {"times_ms":[...],
 *                   "cpu_ms":[...]} (wall and process CPU time of each step; + "losses":[...] of the
 *                   timed steps when L is 1)
 *   phases B T N    N steps (dropout on), each split in its phases: {"times_ms":[...],...,"phases_ms":
 *                   {"zero_grad":[...],"forward_loss":[...],"backward":[...],"free_cache":[...],
 *                   "clip_adamw":[...]}} — where the time goes, next to the peer's split
 *   stats           {"rss_mb":..., "peak_rss_mb":...}
 *   quit            exits
 *
 * One timed step is what a training loop pays per batch: zero the gradients, dbt_train_forward
 * (train = 1: dropout drawn from the driver's generator) on the workspace kept from the previous
 * step, cross-entropy on the logits, dbt_train_backward, dbt_adamw_step (clip, decoupled decay,
 * update). The batch
 * (bench/train/train_common.py: B sequences of exactly T tokens, [CLS] random ids [SEP], random
 * labels in {0, 1}) is built before the clock starts.
 * Uses the library's internal training API (src/training/), as tests/tools/train_step.c does. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/rng.h"
#include "distilbert.h"
#include "training/backprop.h"
#include "training/losses.h"
#include "training/optimizer.h"
#include "training/params.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* CPU time of the whole process (all its threads), for the share of its CPUs it got. */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void rss_mb(double *now, double *peak) {
    *now = *peak = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            long kb;
            if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) *now = kb / 1024.0;
            else if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) *peak = kb / 1024.0;
        }
        fclose(f);
    }
    if (*peak < 0) {
        struct rusage ru;
        if (!getrusage(RUSAGE_SELF, &ru)) *peak = ru.ru_maxrss / 1024.0;
    }
}

/* splitmix64 of (i + 1)·golden + seed: the generator train_common.py uses for ids and labels. */
static uint64_t mix(uint64_t seed, uint64_t i) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ULL + seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

typedef struct {
    dbt_encoding *encs;
    int32_t *buf, *labels;
    float *d_logits;
    int b, s;
} batch;

static void batch_free(batch *x) {
    free(x->encs);
    free(x->buf);
    free(x->labels);
    free(x->d_logits);
    memset(x, 0, sizeof *x);
}

/* B sequences of exactly S tokens: [CLS] (101), S-2 ids 1000 + mix(seed, b·S + t) mod 28000,
 * [SEP] (102); label of sequence b: mix(seed, 2^40 + b) & 1 (n_labels must be 2). */
static int batch_make(batch *x, int b, int s, int n_labels, uint64_t seed) {
    batch_free(x);
    x->encs = calloc((size_t)b, sizeof *x->encs);
    x->buf = malloc((size_t)b * (size_t)s * 8 * sizeof(int32_t));
    x->labels = malloc((size_t)b * sizeof *x->labels);
    x->d_logits = malloc((size_t)b * (size_t)n_labels * sizeof *x->d_logits);
    if (!x->encs || !x->buf || !x->labels || !x->d_logits) { batch_free(x); return -1; }
    x->b = b;
    x->s = s;
    for (int i = 0; i < b; i++) {
        int32_t *p = x->buf + (size_t)i * (size_t)s * 8;
        dbt_encoding *e = &x->encs[i];
        e->n = s;
        e->ids = p;
        e->type_ids = p + s;
        e->attention_mask = p + 2 * s;
        e->special_tokens_mask = p + 3 * s;
        e->word_ids = p + 4 * s;
        e->sequence_ids = p + 5 * s;
        e->offsets = p + 6 * s;
        for (int t = 0; t < s; t++) {
            int special = t == 0 || t == s - 1;
            e->ids[t] = t == 0 ? 101 : t == s - 1 ? 102
                                              : 1000 + (int32_t)(mix(seed, (uint64_t)i * (uint64_t)s + (uint64_t)t) % 28000);
            e->type_ids[t] = 0;
            e->attention_mask[t] = 1;
            e->special_tokens_mask[t] = special;
            e->word_ids[t] = special ? -1 : t - 1;
            e->sequence_ids[t] = special ? -1 : 0;
            e->offsets[2 * t] = special ? 0 : 2 * (t - 1);
            e->offsets[2 * t + 1] = special ? 0 : 2 * (t - 1) + 1;
        }
        x->labels[i] = (int32_t)(mix(seed, (1ULL << 40) + (uint64_t)i) & 1);
    }
    return 0;
}

typedef struct {
    dbt_model *m;
    dbt_params p;
    dbt_adamw opt;
    dbt_rng rng;
    dbt_train_cache *cache; /* the training pass's workspace, kept across steps as a training loop keeps it */
    int n_labels;
} trainer;

enum { PH_ZERO, PH_FORWARD, PH_BACKWARD, PH_FREE, PH_OPTIM, N_PHASES };
static const char *const PHASE_NAMES[N_PHASES] = {"zero_grad", "forward_loss", "backward", "free_cache",
                                                  "clip_adamw"};

/* The loss of a forward pass; with backward, also the gradients and one AdamW update. When ph is
 * not NULL, it receives the time of each phase (ms). */
static int step(trainer *tr, batch *x, int train, int backward, double *loss, double *norm, double *ph) {
    dbt_train_out out;
    double t[N_PHASES + 1];
    t[0] = ph ? now_ms() : 0;
    if (backward) dbt_params_zero_grad(&tr->p);
    t[1] = ph ? now_ms() : 0;
    if (dbt_train_forward(tr->m, x->encs, x->b, NULL, train, &tr->rng, &tr->cache, &out)) return -1;
    *loss = dbt_loss_cross_entropy(out.logits, x->b, out.logits_cols, x->labels, 1.0f, x->d_logits, NULL);
    t[2] = ph ? now_ms() : 0;
    int rc = 0;
    if (backward) rc = dbt_train_backward(tr->m, &tr->p, tr->cache, x->d_logits, NULL);
    t[3] = ph ? now_ms() : 0;
    /* the cache is kept for the next step (freed at exit): nothing to free here any more; the
     * phase stays in the protocol so that results compare with older runs */
    t[4] = ph ? now_ms() : 0;
    if (rc) return -1;
    if (backward) *norm = dbt_adamw_step(&tr->opt, &tr->p);
    t[5] = ph ? now_ms() : 0;
    if (ph)
        for (int i = 0; i < N_PHASES; i++) ph[i] = t[i + 1] - t[i];
    return 0;
}

static void print_error(const char *what) {
    printf("{\"error\":\"%s: ", what);
    for (const char *p = dbt_last_error(); *p; p++)
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if ((unsigned char)*p >= 0x20) putchar(*p);
    printf("\"}\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    int threads = 1;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--model") && v) { dir = v; i++; }
        else if (!strcmp(a, "--threads") && v) { threads = atoi(v); i++; }
        else if (!strcmp(a, "--seed") && v) { seed = strtoull(v, NULL, 10); i++; }
        else {
            fprintf(stderr, "usage: %s --model DIR [--threads N] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    if (!dir || threads < 1) {
        fprintf(stderr, "bench_train: --model DIR is required, --threads >= 1\n");
        return 2;
    }
    double rss0, peak0;
    rss_mb(&rss0, &peak0);
    dbt_set_num_threads(threads);
    trainer tr;
    memset(&tr, 0, sizeof tr);
    double t0 = now_ms();
    tr.m = dbt_model_load(dir, DBT_HEAD_AUTO);
    if (!tr.m) { print_error("load"); return 1; }
    const dbt_model_info *info = dbt_model_get_info(tr.m);
    if (info->head != DBT_HEAD_SEQ_CLS || info->n_labels != 2) {
        printf("{\"error\":\"the model needs a 2-label sequence-classification head\"}\n");
        return 1;
    }
    tr.n_labels = info->n_labels;
    if (dbt_params_init(&tr.p, tr.m)) { print_error("params"); return 1; }
    dbt_adamw_cfg cfg = dbt_adamw_defaults();
    cfg.lr = 5e-5f;
    cfg.weight_decay = 0.01f;
    cfg.max_grad_norm = 1.0f;
    if (dbt_adamw_init(&tr.opt, &tr.p, &cfg)) { print_error("optimizer"); return 1; }
    dbt_rng_seed(&tr.rng, 42);
    double load_ms = now_ms() - t0;
    double rss_load, peak_load;
    rss_mb(&rss_load, &peak_load);
    printf("{\"ready\":true,\"impl\":\"distilbert.c %s\",\"arch\":\"%s\",\"n_layers\":%d,\"dim\":%d,"
           "\"hidden_dim\":%d,\"n_labels\":%d,\"n_params\":%lld,\"trainable\":%lld,\"threads\":%d,"
           "\"load_ms\":%.3f,\"rss_before_load_mb\":%.1f,\"rss_after_load_mb\":%.1f}\n",
           DBT_VERSION, info->architecture, info->n_layers, info->dim, info->hidden_dim, info->n_labels,
           (long long)info->n_params, (long long)tr.p.total, dbt_get_num_threads(), load_ms, rss0, rss_load);
    fflush(stdout);

    batch x;
    memset(&x, 0, sizeof x);
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        int b, s, n = 0, w = 0, l = 0;
        if (!strncmp(line, "quit", 4)) break;
        if (!strncmp(line, "stats", 5)) {
            double r, p;
            rss_mb(&r, &p);
            printf("{\"rss_mb\":%.1f,\"peak_rss_mb\":%.1f}\n", r, p);
            fflush(stdout);
            continue;
        }
        int check = !strncmp(line, "check", 5), phases = !strncmp(line, "phases", 6);
        if ((check ? sscanf(line, "check %d %d", &b, &s) < 2
                   : phases ? sscanf(line, "phases %d %d %d", &b, &s, &n) < 3 || n < 1
                            : sscanf(line, "run %d %d %d %d %d", &b, &s, &n, &w, &l) < 4 || n < 1 || w < 0) ||
            b < 1 || s < 2) {
            printf("{\"error\":\"bad command\"}\n");
            fflush(stdout);
            continue;
        }
        if ((x.b != b || x.s != s) && batch_make(&x, b, s, tr.n_labels, seed) < 0) {
            printf("{\"error\":\"out of memory\"}\n");
            fflush(stdout);
            continue;
        }
        double loss = 0, norm = 0;
        if (check) {
            double after = 0, unused = 0;
            if (step(&tr, &x, 0, 1, &loss, &norm, NULL) || step(&tr, &x, 0, 0, &after, &unused, NULL)) {
                print_error("check");
                continue;
            }
            printf("{\"loss\":%.9g,\"grad_norm\":%.9g,\"loss_after\":%.9g}\n", loss, norm, after);
            fflush(stdout);
            continue;
        }
        int ok = 1;
        for (int i = 0; i < w && ok; i++) ok = !step(&tr, &x, 1, 1, &loss, &norm, NULL);
        double *times = malloc((size_t)n * sizeof *times), *losses = malloc((size_t)n * sizeof *losses);
        double (*ph)[N_PHASES] = malloc((size_t)n * sizeof *ph), *cpu = malloc((size_t)n * sizeof *cpu);
        for (int i = 0; i < n && ok && times && losses && ph && cpu; i++) {
            double c1 = cpu_ms(), t1 = now_ms();
            ok = !step(&tr, &x, 1, 1, &losses[i], &norm, phases ? ph[i] : NULL);
            times[i] = now_ms() - t1;
            cpu[i] = cpu_ms() - c1;
        }
        if (!ok || !times || !losses || !ph || !cpu) {
            free(cpu);
            free(times);
            free(losses);
            free(ph);
            print_error("step");
            continue;
        }
        printf("{\"times_ms\":[");
        for (int i = 0; i < n; i++) printf("%s%.4f", i ? "," : "", times[i]);
        printf("],\"cpu_ms\":[");
        for (int i = 0; i < n; i++) printf("%s%.4f", i ? "," : "", cpu[i]);
        printf("]");
        if (phases) {
            printf(",\"phases_ms\":{");
            for (int k = 0; k < N_PHASES; k++) {
                printf("%s\"%s\":[", k ? "," : "", PHASE_NAMES[k]);
                for (int i = 0; i < n; i++) printf("%s%.4f", i ? "," : "", ph[i][k]);
                printf("]");
            }
            printf("}");
        }
        if (l) {
            printf(",\"losses\":[");
            for (int i = 0; i < n; i++) printf("%s%.7g", i ? "," : "", losses[i]);
            printf("]");
        }
        printf("}\n");
        fflush(stdout);
        free(times);
        free(losses);
        free(ph);
        free(cpu);
    }
    batch_free(&x);
    dbt_train_cache_free(tr.cache);
    dbt_adamw_free(&tr.opt);
    dbt_params_free(&tr.p);
    dbt_model_free(tr.m);
    return 0;
}
