/* cli_pipeline.c — the loop every task subcommand shares: gather inputs (arguments, stdin lines,
 * JSONL records), run the pipeline a batch at a time, print one JSON result per input.
 * An input the pipeline rejects gets {"error": "..."} on its line, and the exit status is 1. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_writer.h"
#include "cli.h"

/* The library numbers inputs within one dbt_pipeline_run call ("input 2 is longer than ..."); the
 * user numbers them in the whole stream (from 0, as the library does). `first` is the stream
 * number of the call's first input, and messages are renumbered with it. A batch with one bad
 * input runs again input by input, which would warn again about each truncated input: `warned`
 * is the last input a warning named, and the library warns about its inputs in order, so a
 * warning that names no later input was printed already. */
typedef struct {
    const char *cmd;
    long first;
    long warned; /* -1: none yet */
} log_ctx;

/* msg with a leading "input N" made "input first+N", into buf; *input gets first+N (-1: none). */
static const char *renumber(const char *msg, long first, long *input, char *buf, size_t cap) {
    int i, used = 0;
    *input = -1;
    if (sscanf(msg, "input %d%n", &i, &used) != 1 || used == 0) return msg;
    *input = first + i;
    snprintf(buf, cap, "input %ld%s", *input, msg + used);
    return buf;
}

static void log_to_stderr(const char *msg, void *ud) {
    log_ctx *lc = ud;
    char buf[1100];
    long input;
    msg = renumber(msg, lc->first, &input, buf, sizeof buf);
    if (input >= 0) {
        if (input <= lc->warned) return;
        lc->warned = input;
    }
    fprintf(stderr, "distilbert %s: %s\n", lc->cmd, msg);
}

/* Fills in->text / in->text_pair from one input line. JSON object lines are records with
 * "text" (or "inputs"/"question") and optional "text_pair" (or "context"). Strings are copied
 * into *owned (two NUL-terminated strings). */
static int parse_line(const char *line, cli_input_mode mode, dbt_input *in, char **owned, char *err, size_t errlen) {
    *owned = NULL;
    const char *a = line, *b = NULL;
    size_t alen = strlen(line), blen = 0;
    cJSON *j = NULL;
    if (line[0] == '{' && (j = cJSON_Parse(line)) && cJSON_IsObject(j)) {
        const char *ka[] = {"text", "inputs", "question", "sentence"}, *kb[] = {"text_pair", "context", "sentence2"};
        const cJSON *va = NULL, *vb = NULL;
        for (size_t i = 0; i < 4 && !cJSON_IsString(va); i++) va = cJSON_GetObjectItemCaseSensitive(j, ka[i]);
        for (size_t i = 0; i < 3 && !cJSON_IsString(vb); i++) vb = cJSON_GetObjectItemCaseSensitive(j, kb[i]);
        if (!cJSON_IsString(va) || (vb && !cJSON_IsString(vb))) {
            snprintf(err, errlen, mode == CLI_INPUT_QA ? "a record needs string fields \"question\" and \"context\""
                                                       : "a record needs a string field \"text\"");
            cJSON_Delete(j);
            return -1;
        }
        a = va->valuestring;
        alen = strlen(a);
        if (cJSON_IsString(vb)) { b = vb->valuestring; blen = strlen(b); }
    } else if (mode == CLI_INPUT_QA) {
        cJSON_Delete(j);
        snprintf(err, errlen, "question answering reads JSON lines {\"question\": ..., \"context\": ...}");
        return -1;
    } else if (mode == CLI_INPUT_PAIRS) {
        const char *tab = strchr(line, '\t');
        if (tab) { alen = (size_t)(tab - line); b = tab + 1; blen = strlen(b); }
    }
    if (mode == CLI_INPUT_QA && !b) {
        cJSON_Delete(j);
        snprintf(err, errlen, "a record needs string fields \"question\" and \"context\"");
        return -1;
    }
    char *s = malloc(alen + blen + 2);
    if (!s) { cJSON_Delete(j); snprintf(err, errlen, "out of memory"); return -1; }
    memcpy(s, a, alen);
    s[alen] = '\0';
    in->text = s;
    in->text_pair = NULL;
    if (b) {
        memcpy(s + alen + 1, b, blen);
        s[alen + 1 + blen] = '\0';
        in->text_pair = s + alen + 1;
    }
    *owned = s;
    cJSON_Delete(j);
    return 0;
}

/* Runs one batch, inputs first .. first+n-1 of the stream; on failure retries input by input so
 * that only the bad ones get an error. */
static int run_batch(const char *cmd, log_ctx *lc, long first, dbt_model *m, dbt_task task,
                     const dbt_pipeline_opts *o, dbt_input *in, char **errors, int n) {
    int status = 0;
    char **out = calloc((size_t)n, sizeof *out);
    if (!out) return cli_fail(cmd, "out of memory");
    int any_error = 0;
    for (int i = 0; i < n; i++) any_error |= errors[i] != NULL;
    lc->first = first;
    int ok_all = !any_error && dbt_pipeline_run(m, task, in, n, o, out) == 0;
    for (int i = 0; i < n; i++) {
        if (errors[i]) { /* could not even be parsed */
            dbt_jw w = {0};
            dbt_jw_lit(&w, "{\"error\":");
            dbt_jw_str(&w, errors[i], strlen(errors[i]));
            dbt_jw_lit(&w, "}\n");
            fputs(w.s ? w.s : "{\"error\":\"out of memory\"}\n", stdout);
            dbt_jw_free(&w);
            status = 1;
            continue;
        }
        char *one = NULL;
        lc->first = first + i;
        if (ok_all) one = out[i];
        else if (dbt_pipeline_run(m, task, &in[i], 1, o, &one) != 0) one = NULL;
        if (one) {
            fputs(one, stdout);
            fputc('\n', stdout);
            free(one);
        } else {
            char buf[1100];
            long input;
            const char *e = renumber(dbt_last_error(), first + i, &input, buf, sizeof buf);
            dbt_jw w = {0};
            dbt_jw_lit(&w, "{\"error\":");
            dbt_jw_str(&w, e, strlen(e));
            dbt_jw_lit(&w, "}\n");
            fputs(w.s ? w.s : "{\"error\":\"out of memory\"}\n", stdout);
            dbt_jw_free(&w);
            fprintf(stderr, "distilbert %s: %s\n", cmd, e);
            status = 1;
        }
    }
    free(out);
    fflush(stdout);
    return status;
}

int cli_pipeline(const char *cmd, const cli_pipeline_args *a) {
    if (!a->model) return cli_fail(cmd, "--model DIR is required");
    if (a->threads) dbt_set_num_threads(a->threads);
    dbt_model *m = dbt_model_load(a->model, dbt_task_head(a->task));
    if (!m) return cli_fail(cmd, "%s", dbt_last_error());
    cli_print_warnings(m);
    if (cli_apply_dtype(cmd, m, a->dtype)) { dbt_model_free(m); return 1; }
    if (!dbt_model_tokenizer(m)) {
        dbt_model_free(m);
        return cli_fail(cmd, "%s has no tokenizer (vocab.txt or tokenizer.json)", a->model);
    }
    const int bs = a->opts.batch_size > 0 ? a->opts.batch_size : 32;
    dbt_input *in = calloc((size_t)bs, sizeof *in);
    char **owned = calloc((size_t)bs, sizeof *owned), **errors = calloc((size_t)bs, sizeof *errors);
    int status = 0, n = 0;
    if (!in || !owned || !errors) { dbt_model_free(m); return cli_fail(cmd, "out of memory"); }
    log_ctx lc = {cmd, 0, -1};
    dbt_set_log(log_to_stderr, &lc);

    if (a->n_texts > 0 || a->question) { /* inputs from the command line */
        int total = a->question ? 1 : a->n_texts;
        for (int i = 0; i < total; i++) {
            n = 0;
            in[0].text = a->question ? a->question : a->texts[i];
            in[0].text_pair = a->question ? a->context : NULL;
            if (a->task == DBT_TASK_QA && !in[0].text_pair) { status = cli_fail(cmd, "--question needs --context"); break; }
            status |= run_batch(cmd, &lc, i, m, a->task, &a->opts, in, errors, 1);
        }
    } else {
        char *line = NULL, err[256];
        size_t cap = 0;
        long len, lineno = 0;
        for (;;) {
            len = cli_read_line(stdin, &line, &cap);
            if (len >= 0 || len == -2) {
                lineno++;
                errors[n] = NULL;
                if (len == -2) {
                    snprintf(err, sizeof err, "line %ld is longer than %u bytes", lineno, CLI_MAX_LINE);
                    errors[n] = strdup(err);
                    in[n].text = "";
                    in[n].text_pair = NULL;
                    owned[n] = NULL;
                } else if (parse_line(line, a->input, &in[n], &owned[n], err, sizeof err)) {
                    errors[n] = strdup(err);
                    in[n].text = "";
                    in[n].text_pair = NULL;
                }
                n++;
            }
            if (n == bs || (len == -1 && n > 0)) {
                /* run_batch prints an error line for inputs that failed to parse and gives the
                 * pipeline the rest; a batch with such an input runs line by line to keep order */
                int any_error = 0;
                for (int i = 0; i < n; i++) any_error |= errors[i] != NULL;
                long first = lineno - n; /* the stream number of in[0] */
                if (!any_error) status |= run_batch(cmd, &lc, first, m, a->task, &a->opts, in, errors, n);
                else
                    for (int i = 0; i < n; i++)
                        status |= run_batch(cmd, &lc, first + i, m, a->task, &a->opts, &in[i], &errors[i], 1);
                for (int i = 0; i < n; i++) {
                    free(owned[i]);
                    owned[i] = NULL;
                    free(errors[i]);
                    errors[i] = NULL;
                }
                n = 0;
            }
            if (len == -1) break;
        }
        free(line);
    }
    free(in);
    free(owned);
    free(errors);
    dbt_model_free(m);
    dbt_set_log(NULL, NULL); /* lc is going away */
    return status;
}

int cli_apply_dtype(const char *cmd, dbt_model *m, const char *dtype) {
    dbt_compute_dtype d;
    if (!dtype) return 0;
    if (dbt_compute_dtype_parse(dtype, &d)) { cli_fail(cmd, "unknown --dtype \"%s\" (fp32, bf16 or int8)", dtype); return -1; }
    if (dbt_model_set_dtype(m, d)) { cli_fail(cmd, "%s", dbt_last_error()); return -1; }
    return 0;
}

int cli_pipeline_option(int c, const char *arg, cli_pipeline_args *a, const char *help) {
    long v;
    switch (c) {
    case 'm': a->model = arg; return -1;
    case 'L': if (!cli_int("--max-length", arg, 1, 1 << 20, &v)) return 2; a->opts.max_length = (int)v; return -1;
    case 'r': a->opts.raw = 1; return -1;
    case 'b': if (!cli_int("--batch-size", arg, 1, 4096, &v)) return 2; a->opts.batch_size = (int)v; return -1;
    case 't': if (!cli_int("--threads", arg, 1, 1024, &v)) return 2; a->threads = (int)v; return -1;
    case 'D': {
        dbt_compute_dtype d;
        if (dbt_compute_dtype_parse(arg, &d)) { fprintf(stderr, "unknown --dtype \"%s\" (fp32, bf16 or int8)\n", arg); return 2; }
        a->dtype = arg;
        return -1;
    }
    case 'h': fputs(help, stdout); return 0;
    default: fputs(help, stderr); return 2;
    }
}
