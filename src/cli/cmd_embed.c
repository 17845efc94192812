/* cmd_embed.c — `distilbert embed`: the sentence-embedding pipeline. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char *const HELP =
    "usage: distilbert embed --model DIR [options] [TEXT ...]\n"
    "\n"
    "Embeds each TEXT argument or stdin line: {\"embedding\": [...]} per input. A sentence-transformers\n"
    "folder's modules.json and pooling config decide pooling and normalization (and\n"
    "sentence_bert_config.json the length limit); otherwise mean pooling, not normalized.\n"
    "\n"
    "  --model DIR        a model folder (any head; the encoder's last hidden state is pooled)\n"
    "  --pooling P        mean | cls | max (overrides the folder's pooling config)\n"
    "  --normalize        L2-normalize;  --no-normalize: do not\n"
    "  --max-length N     truncate to N tokens (default: the model's limit)\n"
    "  --raw              no effect: an embedding has no logits to add (the output stays {\"embedding\"})\n"
    CLI_HELP_BATCH_DTYPE_THREADS;

int cmd_embed(int argc, char **argv) {
    static const struct option longopts[] = {
        {"pooling", required_argument, 0, 'p'}, {"normalize", no_argument, 0, 'n'},
        {"no-normalize", no_argument, 0, 'N'},
        CLI_PIPELINE_OPTIONS, {0, 0, 0, 0}};
    cli_pipeline_args a = {0};
    a.task = DBT_TASK_EMBED;
    a.opts = dbt_pipeline_opts_default(a.task);
    a.input = CLI_INPUT_TEXT;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (!strcmp(optarg, "mean")) a.opts.pooling = DBT_POOL_MEAN;
            else if (!strcmp(optarg, "cls")) a.opts.pooling = DBT_POOL_CLS;
            else if (!strcmp(optarg, "max")) a.opts.pooling = DBT_POOL_MAX;
            else return cli_fail("embed", "unknown --pooling \"%s\"", optarg);
            break;
        case 'n': a.opts.normalize = 1; break;
        case 'N': a.opts.normalize = 0; break;
        default: {
            int r = cli_pipeline_option(c, optarg, &a, HELP);
            if (r >= 0) return r;
        }
        }
    }
    a.texts = argv + optind;
    a.n_texts = argc - optind;
    return cli_pipeline("embed", &a);
}
