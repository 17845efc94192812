/* cmd_decode.c — `distilbert decode`: ids → text, the reverse of `distilbert tokenize`. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_writer.h"
#include "cli.h"

static const char *const HELP =
    "usage: distilbert decode (--model DIR | --vocab FILE | --tokenizer FILE) [options] < ids\n"
    "\n"
    "Reads one sequence of ids per line — a JSON array [101, 7592, 102], a JSON object with an\n"
    "\"ids\" array (what `distilbert tokenize` writes), or integers separated by spaces — and writes\n"
    "the decoded text, one line each, as transformers' tokenizer.decode does.\n"
    "\n"
    "  --skip-special-tokens  drop [CLS], [SEP], [PAD], ...\n"
    "  --no-clean-up          keep spaces before punctuation and contractions\n"
    "  --json                 write each text as a JSON string\n";

/* Parses a line into ids. Returns the count, or -1 with a message in err. */
static int parse_ids(const char *line, int32_t **ids, char *err, size_t errlen) {
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    int n = 0, cap = 0;
    *ids = NULL;
    if (*p == '[' || *p == '{') {
        cJSON *j = cJSON_Parse(line);
        const cJSON *arr = j;
        if (cJSON_IsObject(j)) arr = cJSON_GetObjectItemCaseSensitive(j, "ids");
        if (!cJSON_IsArray(arr)) {
            snprintf(err, errlen, "expected a JSON array of ids or an object with \"ids\"");
            cJSON_Delete(j);
            return -1;
        }
        int m = cJSON_GetArraySize(arr);
        *ids = malloc(((size_t)m + 1) * sizeof **ids);
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int32_t)e->valuedouble) {
                snprintf(err, errlen, "ids must be integers");
                cJSON_Delete(j);
                return -1;
            }
            (*ids)[n++] = (int32_t)e->valuedouble;
        }
        cJSON_Delete(j);
        return n;
    }
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < INT32_MIN || v > INT32_MAX) {
            snprintf(err, errlen, "not an integer at \"%.20s\"", p);
            return -1;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            int32_t *q = realloc(*ids, (size_t)cap * sizeof *q);
            if (!q) { snprintf(err, errlen, "out of memory"); return -1; }
            *ids = q;
        }
        (*ids)[n++] = (int32_t)v;
        p = end;
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
    }
    return n;
}

int cmd_decode(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},     {"vocab", required_argument, 0, 'v'},
        {"tokenizer", required_argument, 0, 't'}, {"cased", no_argument, 0, 'c'},
        {"skip-special-tokens", no_argument, 0, 'S'}, {"no-clean-up", no_argument, 0, 'C'},
        {"json", no_argument, 0, 'j'},            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    cli_tokenizer_args ta = {0};
    int skip = 0, clean = 1, json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': ta.model = optarg; break;
        case 'v': ta.vocab = optarg; break;
        case 't': ta.tokenizer = optarg; break;
        case 'c': ta.cased = 1; break;
        case 'S': skip = 1; break;
        case 'C': clean = 0; break;
        case 'j': json = 1; break;
        case 'h': fputs(HELP, stdout); return 0;
        default: fputs(HELP, stderr); return 2;
        }
    }
    if (optind < argc) return cli_fail("decode", "unexpected argument \"%s\" (ids come on stdin)", argv[optind]);
    dbt_tokenizer *tok = cli_load_tokenizer("decode", &ta);
    if (!tok) return 1;
    char *line = NULL, err[128];
    size_t cap = 0;
    long len, lineno = 0;
    int status = 0;
    dbt_jw w = {0};
    while ((len = cli_read_line(stdin, &line, &cap)) != -1) {
        lineno++;
        if (len == -2) { status = cli_fail("decode", "line %ld is longer than %u bytes", lineno, CLI_MAX_LINE); break; }
        int32_t *ids;
        int n = parse_ids(line, &ids, err, sizeof err);
        if (n < 0) { free(ids); status = cli_fail("decode", "line %ld: %s", lineno, err); break; }
        char *text = dbt_decode(tok, ids, n, skip, clean);
        free(ids);
        if (!text) { status = cli_fail("decode", "line %ld: %s", lineno, dbt_last_error()); break; }
        if (json) {
            dbt_jw_reset(&w);
            dbt_jw_str(&w, text, strlen(text));
            fputs(w.s ? w.s : "\"\"", stdout);
        } else {
            fputs(text, stdout);
        }
        fputc('\n', stdout);
        free(text);
    }
    if (fflush(stdout) != 0 && !status) status = cli_fail("decode", "cannot write the output");
    dbt_jw_free(&w);
    free(line);
    dbt_tokenizer_free(tok);
    return status;
}
