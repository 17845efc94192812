/* cli.h — the subcommands of the `distilbert` program and the helpers they share.
 * Each cmd_*.c parses its flags, calls the library, and prints JSON; nothing else. */
#ifndef DBT_CLI_H
#define DBT_CLI_H

#include <stdio.h>

#include "distilbert.h"

#define CLI_MAX_LINE (16u << 20) /* longest accepted input line: 16 MiB */

int cmd_tokenize(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_forward(int argc, char **argv);

/* --head NAME → dbt_head. Returns 0 for an unknown name. */
int cli_parse_head(const char *s, dbt_head *h);
/* Keeps freed memory in the heap (training reuses the same large buffers every step). */
void cli_keep_freed_memory(void);
/* Prints the model's loading notes to stderr, as transformers logs them. */
void cli_print_warnings(const dbt_model *m);

/* Reading stdin lines in batches and encoding them. */
typedef struct {
    int batch_size, pair;
    long lineno;             /* of the last line read */
    char **texts;            /* the batch's raw lines (for pipelines that need the text) */
    size_t *lens;
    int n;                   /* sequences in the batch */
    dbt_encoding *encs;
    char *line;
    size_t cap;
    int done;
} cli_batch;
void cli_batch_init(cli_batch *b, int batch_size, int pair);
/* Reads and encodes up to batch_size lines (truncated to o->max_length, with a warning on
 * stderr when that cuts a text). Returns the batch size (> 0), 0 at the end of input, or -1
 * after printing an error. */
int cli_batch_next(cli_batch *b, const char *cmd, const dbt_tokenizer *tok, const dbt_encode_opts *o);
void cli_batch_free(cli_batch *b);

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

/* The subcommands that run a pipeline share one loop (cli_pipeline.c). */
typedef enum {
    CLI_INPUT_TEXT = 0, /* one text per line (or a JSON record {"text": ...}) */
    CLI_INPUT_PAIRS,    /* a text, or "first<TAB>second" (or {"text", "text_pair"}) */
    CLI_INPUT_QA,       /* {"question": ..., "context": ...} per line */
} cli_input_mode;

typedef struct {
    const char *model;
    dbt_task task;
    dbt_pipeline_opts opts;
    cli_input_mode input;
    char **texts;          /* inputs given as arguments (n_texts of them) */
    int n_texts;
    const char *question, *context; /* qa: one input from flags */
    int threads;
    const char *dtype;     /* --dtype, or NULL: as loaded */
} cli_pipeline_args;

int cli_pipeline(const char *cmd, const cli_pipeline_args *a);
/* The getopt_long entries every task subcommand shares: --model, --max-length, --raw,
 * --batch-size, --threads, --dtype, --help. */
/* --dtype NAME applied to a loaded model; returns 0, or prints the error and returns -1. */
int cli_apply_dtype(const char *cmd, dbt_model *m, const char *dtype);
#define CLI_PIPELINE_OPTIONS                                                                    \
    {"model", required_argument, 0, 'm'}, {"max-length", required_argument, 0, 'L'},            \
    {"raw", no_argument, 0, 'r'}, {"batch-size", required_argument, 0, 'b'},                     \
    {"threads", required_argument, 0, 't'}, {"dtype", required_argument, 0, 'D'},                \
    {"help", no_argument, 0, 'h'}
/* The help lines of the options every model subcommand (the pipelines and forward) shares last. */
#define CLI_HELP_BATCH_DTYPE_THREADS                                                            \
    "  --batch-size N     sequences per forward pass (default 32)\n"                               \
    "  --dtype T          fp32 | bf16 | int8: precision of the encoder's Linear layers (default: the\n" \
    "                     folder's: fp32, or int8 for a `distilbert quantize` folder)\n"             \
    "  --threads N        threads (default: all cores)\n"
/* Handles option c if it is one of CLI_PIPELINE_OPTIONS: returns -1 to go on, or the exit
 * status (0 after --help, 2 for a bad value or an unknown option, with `help` printed). */
int cli_pipeline_option(int c, const char *arg, cli_pipeline_args *a, const char *help);
int cmd_classify(int argc, char **argv);
int cmd_fill_mask(int argc, char **argv);
int cmd_ner(int argc, char **argv);
int cmd_qa(int argc, char **argv);
int cmd_embed(int argc, char **argv);
/* The training subcommands in an MPI job (cli_dist.c). begin: joins the job when started by a
 * launcher (and, unless --threads is given, gives each rank its share of the machine's cores);
 * returns -1 to go on, or an exit status. end: reports dbt_finetune/distill/pretrain's result
 * (rc) once, leaves the job (aborting it when only this rank failed), returns the exit status. */
int cli_dist_begin(const char *cmd, int argc, char **argv);
int cli_dist_end(const char *cmd, int rc, const char *out);
int cmd_finetune(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_vocab(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_quantize(int argc, char **argv);

#endif
