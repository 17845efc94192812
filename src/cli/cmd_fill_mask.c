/* cmd_fill_mask.c — `distilbert fill-mask`: the fill-mask pipeline. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char *const HELP =
    "usage: distilbert fill-mask --model DIR [options] [TEXT ...]\n"
    "\n"
    "Predicts the [MASK] tokens of each TEXT argument or stdin line and writes one JSON result per\n"
    "input: [{\"score\",\"token\",\"token_str\",\"sequence\"}...] for one mask, a list of such lists\n"
    "for several.\n"
    "\n"
    "  --model DIR        a ...ForMaskedLM folder\n"
    "  --top-k K          predictions per mask (default 5)\n"
    "  --max-length N     truncate to N tokens (default: the model's limit)\n"
    "  --raw              wrap as {\"result\": ..., \"logits\": [...]}\n"
    CLI_HELP_BATCH_DTYPE_THREADS;

int cmd_fill_mask(int argc, char **argv) {
    static const struct option longopts[] = {
        {"top-k", required_argument, 0, 'k'},
        CLI_PIPELINE_OPTIONS, {0, 0, 0, 0}};
    cli_pipeline_args a = {0};
    a.task = DBT_TASK_FILL_MASK;
    a.opts = dbt_pipeline_opts_default(a.task);
    a.input = CLI_INPUT_TEXT;
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': if (!cli_int("--top-k", optarg, 1, 1 << 24, &v)) return 2; a.opts.top_k = (int)v; break;
        default: {
            int r = cli_pipeline_option(c, optarg, &a, HELP);
            if (r >= 0) return r;
        }
        }
    }
    a.texts = argv + optind;
    a.n_texts = argc - optind;
    return cli_pipeline("fill-mask", &a);
}
