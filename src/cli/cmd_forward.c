/* cmd_forward.c — `distilbert forward`: the raw outputs of the model (last hidden state, pooler
 * output, head logits) for each input line, as transformers' model(**inputs) returns them. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_writer.h"
#include "cli.h"

static const char *const HELP =
    "usage: distilbert forward --model DIR [options] < texts\n"
    "\n"
    "Runs the model on each input line (with --pair: first TAB second) and writes one JSON object\n"
    "per line: {\"tokens\":[...],\"last_hidden_state\":[[...],...],\"pooler_output\":[...],\"logits\":...}\n"
    "(pooler_output for BERT models with a pooler; logits when the model has a head).\n"
    "\n"
    "  --model DIR        a Hugging Face folder (config.json, model.safetensors, tokenizer files)\n"
    "  --head H           auto (default: what config.json names) | none | mlm | seq-cls | token-cls | qa\n"
    "  --pair             each line is a pair of texts separated by a TAB\n"
    "  --max-length N     truncate to N tokens (default: the model's max_position_embeddings)\n"
    "  --no-hidden        omit last_hidden_state\n"
    CLI_HELP_BATCH_DTYPE_THREADS;

int cli_parse_head(const char *s, dbt_head *h) {
    static const struct { const char *name; dbt_head head; } t[] = {
        {"auto", DBT_HEAD_AUTO}, {"none", DBT_HEAD_NONE}, {"mlm", DBT_HEAD_MLM},
        {"seq-cls", DBT_HEAD_SEQ_CLS}, {"token-cls", DBT_HEAD_TOKEN_CLS}, {"qa", DBT_HEAD_QA}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].name)) { *h = t[i].head; return 1; }
    return 0;
}

static void write_floats(dbt_jw *w, const float *v, int n) {
    dbt_jw_lit(w, "[");
    for (int i = 0; i < n; i++) {
        if (i) dbt_jw_lit(w, ",");
        dbt_jw_float(w, v[i]);
    }
    dbt_jw_lit(w, "]");
}

static void write_rows(dbt_jw *w, const float *v, int rows, int cols) {
    dbt_jw_lit(w, "[");
    for (int r = 0; r < rows; r++) {
        if (r) dbt_jw_lit(w, ",");
        write_floats(w, v + (int64_t)r * cols, cols);
    }
    dbt_jw_lit(w, "]");
}

int cmd_forward(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},      {"head", required_argument, 0, 'H'},
        {"pair", no_argument, 0, 'p'},             {"max-length", required_argument, 0, 'L'},
        {"batch-size", required_argument, 0, 'b'}, {"no-hidden", no_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'},    {"help", no_argument, 0, 'h'},
        {"dtype", required_argument, 0, 'D'},
        {0, 0, 0, 0}};
    const char *model_dir = NULL, *dtype = NULL;
    dbt_head head = DBT_HEAD_AUTO;
    int pair = 0, hidden = 1, c;
    long max_length = 0, batch = 32, threads = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'H': if (!cli_parse_head(optarg, &head)) return cli_fail("forward", "unknown --head \"%s\"", optarg); break;
        case 'p': pair = 1; break;
        case 'L': if (!cli_int("--max-length", optarg, 1, 1 << 20, &max_length)) return 2; break;
        case 'b': if (!cli_int("--batch-size", optarg, 1, 4096, &batch)) return 2; break;
        case 'n': hidden = 0; break;
        case 't': if (!cli_int("--threads", optarg, 1, 1024, &threads)) return 2; break;
        case 'D': dtype = optarg; break;
        case 'h': fputs(HELP, stdout); return 0;
        default: fputs(HELP, stderr); return 2;
        }
    }
    if (!model_dir) return cli_fail("forward", "--model DIR is required");
    if (threads) dbt_set_num_threads((int)threads);
    dbt_model *m = dbt_model_load(model_dir, head);
    if (!m) return cli_fail("forward", "%s", dbt_last_error());
    cli_print_warnings(m);
    if (cli_apply_dtype("forward", m, dtype)) { dbt_model_free(m); return 1; }
    const dbt_tokenizer *tok = dbt_model_tokenizer(m);
    const dbt_model_info *info = dbt_model_get_info(m);
    if (!tok) { dbt_model_free(m); return cli_fail("forward", "%s has no tokenizer (vocab.txt or tokenizer.json)", model_dir); }
    dbt_encode_opts eo = dbt_encode_opts_default(tok);
    eo.max_length = max_length ? (int)max_length : info->max_position_embeddings;

    cli_batch b;
    int status = 0, got;
    dbt_jw w = {0};
    cli_batch_init(&b, (int)batch, pair);
    while ((got = cli_batch_next(&b, "forward", tok, &eo)) > 0) {
        dbt_output out;
        if (dbt_model_forward(m, b.encs, b.n, NULL, &out)) { status = cli_fail("forward", "%s", dbt_last_error()); break; }
        for (int s = 0; s < b.n; s++) {
            const dbt_encoding *e = &b.encs[s];
            int32_t r0 = out.row_start[s];
            dbt_jw_reset(&w);
            dbt_jw_lit(&w, "{\"tokens\":[");
            for (int i = 0; i < e->n; i++) {
                const char *t = dbt_tokenizer_id_to_token(tok, e->ids[i]);
                if (i) dbt_jw_lit(&w, ",");
                dbt_jw_str(&w, t ? t : "", t ? strlen(t) : 0);
            }
            dbt_jw_lit(&w, "]");
            if (hidden) {
                dbt_jw_lit(&w, ",\"last_hidden_state\":");
                write_rows(&w, out.hidden + (int64_t)r0 * out.dim, e->n, out.dim);
            }
            if (out.pooled) {
                dbt_jw_lit(&w, ",\"pooler_output\":");
                write_floats(&w, out.pooled + (int64_t)s * out.dim, out.dim);
            }
            if (out.logits) {
                dbt_jw_lit(&w, ",\"logits\":");
                if (info->head == DBT_HEAD_SEQ_CLS) write_floats(&w, out.logits + (int64_t)s * out.logits_cols, out.logits_cols);
                else write_rows(&w, out.logits + (int64_t)r0 * out.logits_cols, e->n, out.logits_cols);
            }
            dbt_jw_lit(&w, "}\n");
            if (w.oom) { status = cli_fail("forward", "out of memory"); break; }
            fwrite(w.s, 1, w.n, stdout);
        }
        dbt_output_free(&out);
        if (status) break;
    }
    if (got < 0) status = 1;
    cli_batch_free(&b);
    dbt_jw_free(&w);
    dbt_model_free(m);
    return status;
}
