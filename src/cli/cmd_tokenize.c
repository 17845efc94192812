/* cmd_tokenize.c — `distilbert tokenize`: one text per stdin line → one JSON object per line
 * (one per window when --stride asks for overflow windows). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_writer.h"
#include "cli.h"

static const char *const HELP =
    "usage: distilbert tokenize (--model DIR | --vocab FILE | --tokenizer FILE) [options] < texts\n"
    "\n"
    "Reads one text per line (with --pair: first TAB second) and writes one JSON object per line:\n"
    "  {\"ids\":[...],\"tokens\":[...],\"type_ids\":[...],\"offsets\":[[start,end],...]}\n"
    "Offsets count code points of the input line; special tokens have [0,0].\n"
    "\n"
    "  --model DIR          a model folder (tokenizer.json, or vocab.txt + tokenizer_config.json)\n"
    "  --vocab FILE         a vocab.txt; uncased (lowercase, strip accents) unless --cased\n"
    "  --tokenizer FILE     a tokenizer.json\n"
    "  --cased              do not lowercase or strip accents\n"
    "  --pair               each line is a pair of texts separated by a TAB\n"
    "  --max-length N       truncate to N tokens, special tokens included\n"
    "  --truncation S       longest_first (default) | only_first | only_second\n"
    "  --stride N           also emit the overflowing windows, each sharing N tokens with the\n"
    "                       previous one; every line then carries \"window\": k (0 = first)\n"
    "  --no-special-tokens  no [CLS]/[SEP]\n"
    "  --word-ids           add \"word_ids\" (null for special tokens)\n"
    "  --attention-mask     add \"attention_mask\" and \"special_tokens_mask\"\n"
    "  --pad-to N           pad each text (and its windows) to N tokens; 0: to its longest window.\n"
    "                       The side and rounding come from the tokenizer's files; a tokenizer.json\n"
    "                       with \"padding\" pads without this option, as the tokenizers library does\n";

static void write_encoding(dbt_jw *w, const dbt_tokenizer *tok, const dbt_encoding *e, int window,
                           int word_ids, int masks) {
    dbt_jw_lit(w, "{\"ids\":");
    dbt_jw_ints(w, e->ids, e->n);
    dbt_jw_lit(w, ",\"tokens\":[");
    for (int i = 0; i < e->n; i++) {
        if (i) dbt_jw_lit(w, ",");
        const char *t = dbt_tokenizer_id_to_token(tok, e->ids[i]);
        dbt_jw_str(w, t ? t : "", t ? strlen(t) : 0);
    }
    dbt_jw_lit(w, "],\"type_ids\":");
    dbt_jw_ints(w, e->type_ids, e->n);
    dbt_jw_lit(w, ",\"offsets\":[");
    for (int i = 0; i < e->n; i++) {
        if (i) dbt_jw_lit(w, ",");
        dbt_jw_lit(w, "[");
        dbt_jw_int(w, e->offsets[2 * i]);
        dbt_jw_lit(w, ",");
        dbt_jw_int(w, e->offsets[2 * i + 1]);
        dbt_jw_lit(w, "]");
    }
    dbt_jw_lit(w, "]");
    if (word_ids) {
        dbt_jw_lit(w, ",\"word_ids\":[");
        for (int i = 0; i < e->n; i++) {
            if (i) dbt_jw_lit(w, ",");
            if (e->word_ids[i] < 0) dbt_jw_lit(w, "null");
            else dbt_jw_int(w, e->word_ids[i]);
        }
        dbt_jw_lit(w, "]");
    }
    if (masks) {
        dbt_jw_lit(w, ",\"attention_mask\":");
        dbt_jw_ints(w, e->attention_mask, e->n);
        dbt_jw_lit(w, ",\"special_tokens_mask\":");
        dbt_jw_ints(w, e->special_tokens_mask, e->n);
    }
    if (window >= 0) {
        dbt_jw_lit(w, ",\"window\":");
        dbt_jw_int(w, window);
    }
    dbt_jw_lit(w, "}\n");
}

int cmd_tokenize(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},     {"vocab", required_argument, 0, 'v'},
        {"tokenizer", required_argument, 0, 't'}, {"cased", no_argument, 0, 'c'},
        {"pair", no_argument, 0, 'p'},            {"max-length", required_argument, 0, 'L'},
        {"stride", required_argument, 0, 's'},    {"truncation", required_argument, 0, 'T'},
        {"no-special-tokens", no_argument, 0, 'N'}, {"word-ids", no_argument, 0, 'w'},
        {"attention-mask", no_argument, 0, 'a'},  {"pad-to", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    cli_tokenizer_args ta = {0};
    int pair = 0, word_ids = 0, masks = 0, c;
    long max_length = -1, stride = -1, pad_to = -1;
    const char *truncation = NULL;
    int no_special = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': ta.model = optarg; break;
        case 'v': ta.vocab = optarg; break;
        case 't': ta.tokenizer = optarg; break;
        case 'c': ta.cased = 1; break;
        case 'p': pair = 1; break;
        case 'L': if (!cli_int("--max-length", optarg, 1, 1 << 30, &max_length)) return 2; break;
        case 's': if (!cli_int("--stride", optarg, 0, 1 << 30, &stride)) return 2; break;
        case 'T': truncation = optarg; break;
        case 'N': no_special = 1; break;
        case 'w': word_ids = 1; break;
        case 'a': masks = 1; break;
        case 'P': if (!cli_int("--pad-to", optarg, 0, 1 << 24, &pad_to)) return 2; break;
        case 'h': fputs(HELP, stdout); return 0;
        default: fputs(HELP, stderr); return 2;
        }
    }
    if (optind < argc) return cli_fail("tokenize", "unexpected argument \"%s\" (texts come on stdin)", argv[optind]);
    dbt_tokenizer *tok = cli_load_tokenizer("tokenize", &ta);
    if (!tok) return 1;

    dbt_encode_opts o = dbt_encode_opts_default(tok);
    o.add_special_tokens = !no_special;
    if (max_length > 0) o.max_length = (int)max_length;
    if (truncation) {
        if (!strcmp(truncation, "longest_first")) o.truncation = DBT_TRUNCATE_LONGEST_FIRST;
        else if (!strcmp(truncation, "only_first")) o.truncation = DBT_TRUNCATE_ONLY_FIRST;
        else if (!strcmp(truncation, "only_second")) o.truncation = DBT_TRUNCATE_ONLY_SECOND;
        else { dbt_tokenizer_free(tok); return cli_fail("tokenize", "unknown --truncation \"%s\"", truncation); }
    }
    if (stride >= 0) {
        o.stride = (int)stride;
        o.return_overflowing = 1;
    }

    int pad = dbt_tokenizer_pads_by_default(tok) || pad_to >= 0;
    dbt_pad_opts pad_opts = dbt_pad_opts_default(tok);
    if (pad_to >= 0) pad_opts.length = (int)pad_to;

    char *line = NULL;
    size_t cap = 0;
    long len, lineno = 0;
    int status = 0;
    dbt_jw w = {0};
    while ((len = cli_read_line(stdin, &line, &cap)) != -1) {
        lineno++;
        if (len == -2) { status = cli_fail("tokenize", "line %ld is longer than %u bytes", lineno, CLI_MAX_LINE); break; }
        const char *b = NULL;
        size_t alen = (size_t)len, blen = 0;
        if (pair) {
            char *tab = memchr(line, '\t', (size_t)len);
            if (!tab) { status = cli_fail("tokenize", "line %ld: --pair needs two texts separated by a TAB", lineno); break; }
            alen = (size_t)(tab - line);
            b = tab + 1;
            blen = (size_t)len - alen - 1;
        }
        dbt_encoding *encs;
        int n = dbt_encode(tok, line, alen, b, blen, &o, &encs);
        if (n < 0) { status = cli_fail("tokenize", "line %ld: %s", lineno, dbt_last_error()); break; }
        /* a tokenizer.json with "padding" pads each text and its windows, as `tokenizers` does */
        if (pad && dbt_encodings_pad(tok, encs, n, &pad_opts)) {
            dbt_encodings_free(encs, n);
            status = cli_fail("tokenize", "line %ld: %s", lineno, dbt_last_error());
            break;
        }
        dbt_jw_reset(&w);
        for (int k = 0; k < n; k++)
            write_encoding(&w, tok, &encs[k], o.return_overflowing ? k : -1, word_ids, masks);
        dbt_encodings_free(encs, n);
        if (w.oom) { status = cli_fail("tokenize", "out of memory"); break; }
        fwrite(w.s, 1, w.n, stdout);
    }
    if (fflush(stdout) != 0 && !status) status = cli_fail("tokenize", "cannot write the output");
    dbt_jw_free(&w);
    free(line);
    dbt_tokenizer_free(tok);
    return status;
}
