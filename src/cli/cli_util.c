/* cli_util.c — line reading, flag values and error printing for the subcommands. */
#include <errno.h>
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
