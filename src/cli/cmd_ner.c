/* cmd_ner.c — `distilbert ner`: the token-classification (NER) pipeline. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char *const HELP =
    "usage: distilbert ner --model DIR [options] [TEXT ...]\n"
    "\n"
    "Finds the entities in each TEXT argument or stdin line and writes one JSON list per input:\n"
    "  [{\"entity\",\"score\",\"index\",\"word\",\"start\",\"end\"}...]            (--aggregation none)\n"
    "  [{\"entity_group\",\"score\",\"word\",\"start\",\"end\"}...]              (simple, first, average, max)\n"
    "start/end are character offsets into the input. Tokens labelled O are left out.\n"
    "\n"
    "  --model DIR        a ...ForTokenClassification folder\n"
    "  --aggregation A    none (default) | simple | first | average | max\n"
    "  --max-length N     truncate to N tokens (default: the model's limit)\n"
    "  --raw              wrap as {\"result\": ..., \"logits\": [...]}\n"
    CLI_HELP_BATCH_DTYPE_THREADS;

int cmd_ner(int argc, char **argv) {
    static const struct option longopts[] = {
        {"aggregation", required_argument, 0, 'g'},
        CLI_PIPELINE_OPTIONS, {0, 0, 0, 0}};
    cli_pipeline_args a = {0};
    a.task = DBT_TASK_NER;
    a.opts = dbt_pipeline_opts_default(a.task);
    a.input = CLI_INPUT_TEXT;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
            if (!strcmp(optarg, "none")) a.opts.aggregation = DBT_AGG_NONE;
            else if (!strcmp(optarg, "simple")) a.opts.aggregation = DBT_AGG_SIMPLE;
            else if (!strcmp(optarg, "first")) a.opts.aggregation = DBT_AGG_FIRST;
            else if (!strcmp(optarg, "average")) a.opts.aggregation = DBT_AGG_AVERAGE;
            else if (!strcmp(optarg, "max")) a.opts.aggregation = DBT_AGG_MAX;
            else return cli_fail("ner", "unknown --aggregation \"%s\"", optarg);
            break;
        default: {
            int r = cli_pipeline_option(c, optarg, &a, HELP);
            if (r >= 0) return r;
        }
        }
    }
    a.texts = argv + optind;
    a.n_texts = argc - optind;
    return cli_pipeline("ner", &a);
}
