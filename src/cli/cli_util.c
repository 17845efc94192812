/* cli_util.c — line reading, flag values and error printing for the subcommands. */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

long cli_read_line(FILE *f, char **buf, size_t *cap) {
    size_t n = 0;
    int c, too_long = 0;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (n >= CLI_MAX_LINE) { too_long = 1; continue; }
        if (n + 2 > *cap) {
            size_t nc = *cap ? *cap * 2 : 4096;
            char *p = realloc(*buf, nc);
            if (!p) { too_long = 1; continue; }
            *buf = p;
            *cap = nc;
        }
        (*buf)[n++] = (char)c;
    }
    if (c == EOF && n == 0 && !too_long) return -1;
    if (too_long) return -2;
    if (!*buf) {
        *buf = malloc(1);
        if (!*buf) return -2;
        *cap = 1;
    }
    (*buf)[n] = '\0';
    return (long)n;
}

int cli_int(const char *flag, const char *value, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < min || v > max) {
        fprintf(stderr, "distilbert: %s expects an integer in [%ld, %ld], got \"%s\"\n", flag, min,
                max, value);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "distilbert %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

dbt_tokenizer *cli_load_tokenizer(const char *cmd, const cli_tokenizer_args *a) {
    int given = !!a->model + !!a->vocab + !!a->tokenizer;
    if (given != 1) {
        cli_fail(cmd, "give exactly one of --model DIR, --vocab FILE, --tokenizer FILE");
        return NULL;
    }
    dbt_tokenizer_opts o = {a->cased ? 0 : -1, -1};
    const char *path = a->model ? a->model : a->vocab ? a->vocab : a->tokenizer;
    dbt_tokenizer *t = dbt_tokenizer_load(path, &o);
    if (!t) cli_fail(cmd, "%s", dbt_last_error());
    return t;
}

void cli_print_warnings(const dbt_model *m) {
    const char *w = dbt_model_warnings(m);
    if (*w) fprintf(stderr, "%s", w);
}

void cli_batch_init(cli_batch *b, int batch_size, int pair) {
    memset(b, 0, sizeof *b);
    b->batch_size = batch_size;
    b->pair = pair;
    b->texts = calloc((size_t)batch_size, sizeof *b->texts);
    b->lens = calloc((size_t)batch_size, sizeof *b->lens);
    b->encs = calloc((size_t)batch_size, sizeof *b->encs);
}

static void batch_clear(cli_batch *b) {
    for (int i = 0; i < b->n; i++) {
        free(b->texts[i]);
        b->texts[i] = NULL;
        free(b->encs[i].ids);
        memset(&b->encs[i], 0, sizeof b->encs[i]);
    }
    b->n = 0;
}

int cli_batch_next(cli_batch *b, const char *cmd, const dbt_tokenizer *tok, const dbt_encode_opts *o) {
    batch_clear(b);
    if (!b->texts || !b->lens || !b->encs) { cli_fail(cmd, "out of memory"); return -1; }
    dbt_encode_opts eo = *o;
    eo.return_overflowing = 1; /* to notice truncation; only the first window is kept */
    eo.stride = 0;
    while (!b->done && b->n < b->batch_size) {
        long len = cli_read_line(stdin, &b->line, &b->cap);
        if (len == -1) { b->done = 1; break; }
        b->lineno++;
        if (len == -2) { cli_fail(cmd, "line %ld is longer than %u bytes", b->lineno, CLI_MAX_LINE); return -1; }
        char *text = malloc((size_t)len + 1);
        if (!text) { cli_fail(cmd, "out of memory"); return -1; }
        memcpy(text, b->line, (size_t)len + 1);
        b->texts[b->n] = text;
        b->lens[b->n] = (size_t)len;
        const char *second = NULL;
        size_t alen = (size_t)len, blen = 0;
        if (b->pair) {
            char *tab = memchr(text, '\t', (size_t)len);
            if (!tab) { b->n++; cli_fail(cmd, "line %ld: --pair needs two texts separated by a TAB", b->lineno); return -1; }
            alen = (size_t)(tab - text);
            second = tab + 1;
            blen = (size_t)len - alen - 1;
        }
        dbt_encoding *encs;
        int nw = dbt_encode(tok, text, alen, second, blen, &eo, &encs);
        b->n++;
        if (nw < 0) { cli_fail(cmd, "line %ld: %s", b->lineno, dbt_last_error()); return -1; }
        if (nw > 1)
            fprintf(stderr, "distilbert %s: line %ld is longer than %d tokens and was truncated\n", cmd, b->lineno,
                    eo.max_length);
        b->encs[b->n - 1] = encs[0];
        for (int k = 1; k < nw; k++) free(encs[k].ids);
        free(encs);
    }
    return b->n;
}

void cli_batch_free(cli_batch *b) {
    batch_clear(b);
    free(b->texts);
    free(b->lens);
    free(b->encs);
    free(b->line);
    memset(b, 0, sizeof *b);
}

/* Training allocates the same large activation buffers every step; served from the heap instead
 * of fresh mappings, they skip the page faults and unmapping that otherwise cost as much as the
 * arithmetic on small models (measured: 16-22% of a step's cycles in the kernel). */
void cli_keep_freed_memory(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
