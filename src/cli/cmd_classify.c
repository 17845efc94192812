/* cmd_classify.c — `distilbert classify`: the text-classification pipeline. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char *const HELP =
    "usage: distilbert classify --model DIR [options] [TEXT ...]\n"
    "\n"
    "Classifies each TEXT argument, or each stdin line (\"first<TAB>second\" for a text pair, or a\n"
    "JSON record {\"text\": ..., \"text_pair\": ...}), and writes one JSON result per input:\n"
    "  {\"label\": \"POSITIVE\", \"score\": 0.99}      (or a list with --top-k K / --all)\n"
    "Labels come from config.json's id2label.\n"
    "\n"
    "  --model DIR        a ...ForSequenceClassification folder\n"
    "  --top-k K          the K best labels, as a list sorted by score\n"
    "  --all              every label, sorted by score\n"
    "  --function F       softmax | sigmoid | none (default: as transformers picks from the config)\n"
    "  --max-length N     truncate to N tokens (default: the model's limit)\n"
    "  --raw              wrap as {\"result\": ..., \"logits\": [...]}\n"
    CLI_HELP_BATCH_DTYPE_THREADS;

int cmd_classify(int argc, char **argv) {
    static const struct option longopts[] = {
        {"top-k", required_argument, 0, 'k'},
        {"all", no_argument, 0, 'a'},              {"function", required_argument, 0, 'f'},
        CLI_PIPELINE_OPTIONS, {0, 0, 0, 0}};
    cli_pipeline_args a = {0};
    a.task = DBT_TASK_CLASSIFY;
    a.opts = dbt_pipeline_opts_default(a.task);
    a.input = CLI_INPUT_PAIRS;
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': if (!cli_int("--top-k", optarg, 1, 1 << 20, &v)) return 2; a.opts.top_k = (int)v; break;
        case 'a': a.opts.top_k = -1; break;
        case 'f':
            if (!strcmp(optarg, "softmax")) a.opts.function = DBT_FN_SOFTMAX;
            else if (!strcmp(optarg, "sigmoid")) a.opts.function = DBT_FN_SIGMOID;
            else if (!strcmp(optarg, "none")) a.opts.function = DBT_FN_NONE;
            else return cli_fail("classify", "unknown --function \"%s\"", optarg);
            break;
        default: {
            int r = cli_pipeline_option(c, optarg, &a, HELP);
            if (r >= 0) return r;
        }
        }
    }
    a.texts = argv + optind;
    a.n_texts = argc - optind;
    return cli_pipeline("classify", &a);
}
