/* bench_model.c — forward-pass timing of libdistilbert, driven over a pipe by bench/model/bench.py.
 *
 *   bench_model --model DIR [--threads N] [--dtype fp32|bf16|int8]
 *
 * Loads the model folder (dbt_model_load with the head config.json names), sets the thread count
 * with dbt_set_num_threads, runs one (1, 16) forward pass (the "first forward", which also pages
 * in the memory-mapped weights), prints one JSON line and then answers commands on stdin, one
 * JSON line each:
 *
 *   run B S N W L   W untimed warm-up passes, then N timed passes over B sequences of exactly S
 *                   tokens: {"times_ms":[...]} (+ "logits":[B×labels] of the last pass if L is 1)
 *   stats           {"rss_mb":..., "peak_rss_mb":...}
 *   quit            exits
 *
 * The inputs are those of bench/model/common.py: token t of sequence b is [CLS] (101) at t = 0,
 * [SEP] (102) at t = S-1, else 1000 + (7919·b + 104729·t) mod 28000; type ids 0, mask 1. One timed
 * pass is dbt_model_forward + dbt_output_free (what an application pays per batch); the
 * encodings are built before the clock starts, as the peers build their tensors before theirs.
 * Only the public API (include/distilbert.h) is used. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "distilbert.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Resident set now and at its peak (VmRSS, VmHWM), in MiB; -1 when /proc cannot tell. */
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

typedef struct {
    dbt_encoding *encs;
    int32_t *buf;
    int b, s;
} batch;

static void batch_free(batch *x) {
    free(x->encs);
    free(x->buf);
    memset(x, 0, sizeof *x);
}

static int batch_make(batch *x, int b, int s) {
    batch_free(x);
    x->encs = calloc((size_t)b, sizeof *x->encs);
    x->buf = malloc((size_t)b * (size_t)s * 8 * sizeof(int32_t));
    if (!x->encs || !x->buf) { batch_free(x); return -1; }
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
            int32_t id = t == 0 ? 101 : t == s - 1 ? 102
                                               : 1000 + (int32_t)((7919LL * i + 104729LL * t) % 28000);
            int special = t == 0 || t == s - 1;
            e->ids[t] = id;
            e->type_ids[t] = 0;
            e->attention_mask[t] = 1;
            e->special_tokens_mask[t] = special;
            e->word_ids[t] = special ? -1 : t - 1;
            e->sequence_ids[t] = special ? -1 : 0;
            e->offsets[2 * t] = special ? 0 : 2 * (t - 1);
            e->offsets[2 * t + 1] = special ? 0 : 2 * (t - 1) + 1;
        }
    }
    return 0;
}

/* One forward pass; returns its time in ms, or < 0 on error. Keeps the logits when keep != NULL. */
static double forward(dbt_model *m, const batch *x, dbt_output *keep) {
    dbt_output out;
    double t0 = now_ms();
    if (dbt_model_forward(m, x->encs, x->b, NULL, &out) < 0) return -1;
    if (keep) {
        *keep = out;
        return now_ms() - t0;
    }
    dbt_output_free(&out);
    return now_ms() - t0;
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
    const char *dir = NULL, *dtype = NULL;
    int threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--model") && v) { dir = v; i++; }
        else if (!strcmp(a, "--threads") && v) { threads = atoi(v); i++; }
        else if (!strcmp(a, "--dtype") && v) { dtype = v; i++; }
        else {
            fprintf(stderr, "usage: %s --model DIR [--threads N] [--dtype fp32|bf16|int8]\n", argv[0]);
            return 2;
        }
    }
    if (!dir || threads < 1) {
        fprintf(stderr, "bench_model: --model DIR is required, --threads >= 1\n");
        return 2;
    }
    double rss0, peak0;
    rss_mb(&rss0, &peak0);
    dbt_set_num_threads(threads);
    double t0 = now_ms();
    dbt_model *m = dbt_model_load(dir, DBT_HEAD_AUTO);
    double load_ms = now_ms() - t0;
    if (!m) { print_error("load"); return 1; }
    /* reduced precision: the encoder's Linear layers converted once, here (part of load_ms) */
    dbt_compute_dtype dt;
    if (dtype && (dbt_compute_dtype_parse(dtype, &dt) || dbt_model_set_dtype(m, dt))) { print_error("dtype"); return 1; }
    load_ms = now_ms() - t0;
    const dbt_model_info *info = dbt_model_get_info(m);
    double rss_load, peak_load;
    rss_mb(&rss_load, &peak_load);
    batch x = {0};
    if (batch_make(&x, 1, 16) < 0) { fprintf(stderr, "bench_model: out of memory\n"); return 1; }
    double first_ms = forward(m, &x, NULL);
    if (first_ms < 0) { print_error("forward"); return 1; }
    double rss_first, peak_first;
    rss_mb(&rss_first, &peak_first);
    /* Which OpenBLAS kernels the library's sgemm runs on, if it still links OpenBLAS. */
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    printf("{\"ready\":true,\"impl\":\"distilbert.c %s\",\"arch\":\"%s\",\"head\":%d,\"n_layers\":%d,"
           "\"dim\":%d,\"hidden_dim\":%d,\"n_labels\":%d,\"n_params\":%lld,\"threads\":%d,"
           "\"dtype\":\"%s\",\"load_ms\":%.3f,\"first_forward_ms\":%.3f,\"rss_before_load_mb\":%.1f,"
           "\"rss_after_load_mb\":%.1f,\"rss_after_first_forward_mb\":%.1f,\"openblas_core\":%s%s%s}\n",
           DBT_VERSION, info->architecture, (int)info->head, info->n_layers, info->dim, info->hidden_dim,
           info->n_labels, (long long)info->n_params, dbt_get_num_threads(), dbt_compute_dtype_name(info->dtype), load_ms, first_ms, rss0,
           rss_load, rss_first, corename ? "\"" : "", corename ? corename() : "null", corename ? "\"" : "");
    fflush(stdout);

    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        int b, s, n, w, l = 0;
        if (!strncmp(line, "quit", 4)) break;
        if (!strncmp(line, "stats", 5)) {
            double r, p;
            rss_mb(&r, &p);
            printf("{\"rss_mb\":%.1f,\"peak_rss_mb\":%.1f}\n", r, p);
            fflush(stdout);
            continue;
        }
        if (sscanf(line, "run %d %d %d %d %d", &b, &s, &n, &w, &l) < 4 || b < 1 || s < 2 || n < 1 || w < 0) {
            printf("{\"error\":\"bad command\"}\n");
            fflush(stdout);
            continue;
        }
        if ((x.b != b || x.s != s) && batch_make(&x, b, s) < 0) {
            printf("{\"error\":\"out of memory\"}\n");
            fflush(stdout);
            continue;
        }
        int ok = 1;
        for (int i = 0; i < w && ok; i++) ok = forward(m, &x, NULL) >= 0;
        double *times = malloc((size_t)n * sizeof *times);
        dbt_output last = {0};
        for (int i = 0; i < n && ok && times; i++) {
            times[i] = forward(m, &x, i == n - 1 && l ? &last : NULL);
            ok = times[i] >= 0;
        }
        if (!ok || !times) {
            free(times);
            print_error("forward");
            continue;
        }
        printf("{\"times_ms\":[");
        for (int i = 0; i < n; i++) printf("%s%.4f", i ? "," : "", times[i]);
        printf("]");
        if (l && last.logits) {
            printf(",\"logits\":[");
            int k = last.n_seqs * last.logits_cols;
            for (int i = 0; i < k; i++) printf("%s%.7g", i ? "," : "", last.logits[i]);
            printf("]");
        }
        printf("}\n");
        fflush(stdout);
        if (l) dbt_output_free(&last);
        free(times);
    }
    batch_free(&x);
    dbt_model_free(m);
    return 0;
}
