/* bench_tokenizer.c — tokenizer throughput of libdistilbert on one thread.
 *
 *   bench_tokenizer [--vocab FILE] --input FILE [--reps N] [--warmup N] [--cased]
 *   bench_tokenizer [--vocab FILE] --input FILE --dump [--cased]
 *
 * Reads the input file as lines (split on '\n', the newline itself is not part of a text and not
 * counted), loads the vocabulary, encodes every line once per warm-up round, then times `reps`
 * rounds over all lines. Each line is one dbt_encode call with the defaults: [CLS] ... [SEP],
 * no truncation; ids, type ids, masks, word ids and offsets are always computed, and every
 * result is freed, as an application would. Prints one JSON object on stdout:
 *   {"impl":..., "lines":..., "bytes":..., "tokens":..., "times_s":[...], "median_s":...,
 *    "mb_per_s":..., "tokens_per_s":..., "checksum":...}
 * MB/s counts input bytes (UTF-8) in millions; tokens include the special tokens.
 * --dump writes, instead, one {"ids":[...],"offsets":[[s,e],...]} line per input line (what
 * check_same.py compares with Hugging Face); --cased turns lowercasing (and accent stripping) off. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distilbert.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) { free(buf); buf = NULL; break; }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    fclose(f);
    *len = n;
    return buf;
}

typedef struct { const char *s; size_t n; } line;

/* One round over all lines; returns the number of tokens, or -1 on error. Folds ids and
 * offsets into *sum so that nothing can be optimized away and runs can be compared. */
static long long encode_all(const dbt_tokenizer *tok, const dbt_encode_opts *o, const line *lines,
                            size_t n_lines, uint64_t *sum) {
    long long tokens = 0;
    uint64_t h = 0;
    for (size_t i = 0; i < n_lines; i++) {
        dbt_encoding *encs;
        int n = dbt_encode(tok, lines[i].s, lines[i].n, NULL, 0, o, &encs);
        if (n < 1) {
            fprintf(stderr, "bench_tokenizer: line %zu: %s\n", i + 1, dbt_last_error());
            return -1;
        }
        tokens += encs[0].n;
        for (int32_t k = 0; k < encs[0].n; k++)
            h = h * 1000003u + (uint64_t)encs[0].ids[k] * 31u + (uint64_t)encs[0].offsets[2 * k + 1];
        dbt_encodings_free(encs, n);
    }
    *sum = h;
    return tokens;
}

int main(int argc, char **argv) {
    const char *vocab = "data/vocab/bert-base-uncased/vocab.txt";
    const char *input = NULL;
    int reps = 5, warmup = 1, dump = 0, cased = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--vocab") && v) { vocab = v; i++; }
        else if (!strcmp(a, "--input") && v) { input = v; i++; }
        else if (!strcmp(a, "--reps") && v) { reps = atoi(v); i++; }
        else if (!strcmp(a, "--warmup") && v) { warmup = atoi(v); i++; }
        else if (!strcmp(a, "--dump")) dump = 1;
        else if (!strcmp(a, "--cased")) cased = 1;
        else {
            fprintf(stderr, "usage: %s [--vocab FILE] --input FILE [--reps N] [--warmup N] "
                    "[--dump] [--cased]\n", argv[0]);
            return 2;
        }
    }
    if (!input || reps < 1 || warmup < 0) {
        fprintf(stderr, "bench_tokenizer: --input FILE is required; --reps >= 1, --warmup >= 0\n");
        return 2;
    }

    size_t len;
    char *text = read_file(input, &len);
    if (!text) { fprintf(stderr, "bench_tokenizer: cannot read %s\n", input); return 1; }
    size_t n_lines = 0, cap = 1024, bytes = 0;
    line *lines = malloc(cap * sizeof *lines);
    for (size_t p = 0; p < len && lines;) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - text) : len;
        if (n_lines == cap) {
            line *l = realloc(lines, (cap *= 2) * sizeof *lines);
            if (!l) { free(lines); lines = NULL; break; }
            lines = l;
        }
        lines[n_lines++] = (line){text + p, e - p};
        bytes += e - p;
        p = e + 1;
    }
    if (!lines) { fprintf(stderr, "bench_tokenizer: out of memory\n"); return 1; }

    dbt_tokenizer_opts topts = {cased ? 0 : -1, -1};
    dbt_tokenizer *tok = dbt_tokenizer_load(vocab, &topts);
    if (!tok) { fprintf(stderr, "bench_tokenizer: %s\n", dbt_last_error()); return 1; }
    dbt_encode_opts o = dbt_encode_opts_default(tok);
    o.add_special_tokens = 1;
    if (dump) {
        for (size_t i = 0; i < n_lines; i++) {
            dbt_encoding *encs;
            int n = dbt_encode(tok, lines[i].s, lines[i].n, NULL, 0, &o, &encs);
            if (n < 1) {
                fprintf(stderr, "bench_tokenizer: line %zu: %s\n", i + 1, dbt_last_error());
                return 1;
            }
            fputs("{\"ids\":[", stdout);
            for (int32_t k = 0; k < encs[0].n; k++) printf("%s%d", k ? "," : "", encs[0].ids[k]);
            fputs("],\"offsets\":[", stdout);
            for (int32_t k = 0; k < encs[0].n; k++)
                printf("%s[%d,%d]", k ? "," : "", encs[0].offsets[2 * k], encs[0].offsets[2 * k + 1]);
            fputs("]}\n", stdout);
            dbt_encodings_free(encs, n);
        }
        dbt_tokenizer_free(tok);
        free(lines);
        free(text);
        return fflush(stdout) ? 1 : 0;
    }

    uint64_t sum = 0, sum0 = 0;
    long long tokens = 0;
    for (int w = 0; w < warmup; w++)
        if ((tokens = encode_all(tok, &o, lines, n_lines, &sum0)) < 0) return 1;
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        tokens = encode_all(tok, &o, lines, n_lines, &sum);
        t[r] = now_s() - t0;
        if (tokens < 0) return 1;
        if (warmup && sum != sum0) { fprintf(stderr, "bench_tokenizer: runs differ\n"); return 1; }
    }
    double *sorted = malloc((size_t)reps * sizeof *sorted);
    memcpy(sorted, t, (size_t)reps * sizeof *t);
    qsort(sorted, (size_t)reps, sizeof *sorted, cmp_double);
    double med = reps % 2 ? sorted[reps / 2] : 0.5 * (sorted[reps / 2 - 1] + sorted[reps / 2]);

    printf("{\"impl\":\"distilbert.c dbt_encode\",\"vocab\":\"%s\",\"input\":\"%s\",\"lines\":%zu,"
           "\"bytes\":%zu,\"tokens\":%lld,\"reps\":%d,\"warmup\":%d,\"times_s\":[",
           vocab, input, n_lines, bytes, tokens, reps, warmup);
    for (int r = 0; r < reps; r++) printf("%s%.6f", r ? "," : "", t[r]);
    printf("],\"median_s\":%.6f,\"mb_per_s\":%.3f,\"tokens_per_s\":%.1f,\"checksum\":\"%016llx\"}\n",
           med, (double)bytes / med / 1e6, (double)tokens / med, (unsigned long long)sum);

    free(sorted);
    free(t);
    dbt_tokenizer_free(tok);
    free(lines);
    free(text);
    return 0;
}
