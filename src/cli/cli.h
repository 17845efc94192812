/* cli.h — the subcommands of the `distilbert` program and the helpers they share.
 * Each cmd_*.c parses its flags, calls the library, and prints JSON; nothing else. */
#ifndef DBT_CLI_H
#define DBT_CLI_H

#include <stdio.h>

#include "distilbert.h"

#define CLI_MAX_LINE (16u << 20) /* longest accepted input line: 16 MiB */

int cmd_tokenize(int argc, char **argv);
int cmd_decode(int argc, char **argv);

/* Reads one line without its '\n'. Returns its length, -1 at end of input, -2 when the line is
 * longer than CLI_MAX_LINE (the rest of it is skipped). */
long cli_read_line(FILE *f, char **buf, size_t *cap);
/* Parses a decimal integer flag value within [min, max]; prints an error and returns 0 when it
 * is not one. */
int cli_int(const char *flag, const char *value, long min, long max, long *out);
/* Prints "distilbert <cmd>: message" to stderr. Returns 1 (the exit status). */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Loading a tokenizer from --model DIR, --vocab FILE or --tokenizer FILE (exactly one). */
typedef struct {
    const char *model, *vocab, *tokenizer;
    int cased;
} cli_tokenizer_args;
dbt_tokenizer *cli_load_tokenizer(const char *cmd, const cli_tokenizer_args *a);

#endif
