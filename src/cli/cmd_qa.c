/* cmd_qa.c — `distilbert qa`: the question-answering pipeline. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char *const HELP =
    "usage: distilbert qa --model DIR [options] [--question Q --context C]\n"
    "\n"
    "Answers each {\"question\": ..., \"context\": ...} JSON line of stdin (or --question/--context)\n"
    "with the span of the context that the model scores best, as transformers' question-answering\n"
    "pipeline: {\"score\",\"start\",\"end\",\"answer\"} (a list with --top-k K > 1). start/end are\n"
    "character offsets into the context. Long contexts are read in overlapping windows.\n"
    "\n"
    "  --model DIR                  a ...ForQuestionAnswering folder\n"
    "  --question Q --context C     one input from the command line\n"
    "  --top-k K                    answers per input (default 1)\n"
    "  --max-answer-len N           longest answer in tokens (default 15)\n"
    "  --doc-stride N               tokens shared by consecutive windows (default min(max_len/2, 128))\n"
    "  --max-question-len N         (default 64)\n"
    "  --handle-impossible-answer   allow the empty answer\n"
    "  --max-length N     truncate to N tokens (default 384)\n"
    "  --raw              wrap as {\"result\": ..., \"logits\": [...]}\n"
    CLI_HELP_BATCH_DTYPE_THREADS;

int cmd_qa(int argc, char **argv) {
    static const struct option longopts[] = {
        {"top-k", required_argument, 0, 'k'}, {"question", required_argument, 0, 'q'},
        {"context", required_argument, 0, 'c'}, {"max-answer-len", required_argument, 0, 'A'},
        {"doc-stride", required_argument, 0, 'S'}, {"max-question-len", required_argument, 0, 'Q'},
        {"handle-impossible-answer", no_argument, 0, 'I'},
        CLI_PIPELINE_OPTIONS, {0, 0, 0, 0}};
    cli_pipeline_args a = {0};
    a.task = DBT_TASK_QA;
    a.opts = dbt_pipeline_opts_default(a.task);
    a.input = CLI_INPUT_QA;
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': if (!cli_int("--top-k", optarg, 1, 1 << 20, &v)) return 2; a.opts.top_k = (int)v; break;
        case 'q': a.question = optarg; break;
        case 'c': a.context = optarg; break;
        case 'A': if (!cli_int("--max-answer-len", optarg, 1, 1 << 20, &v)) return 2; a.opts.max_answer_len = (int)v; break;
        case 'S': if (!cli_int("--doc-stride", optarg, 0, 1 << 20, &v)) return 2; a.opts.doc_stride = (int)v; break;
        case 'Q': if (!cli_int("--max-question-len", optarg, 1, 1 << 20, &v)) return 2; a.opts.max_question_len = (int)v; break;
        case 'I': a.opts.handle_impossible_answer = 1; break;
        default: {
            int r = cli_pipeline_option(c, optarg, &a, HELP);
            if (r >= 0) return r;
        }
        }
    }
    a.texts = argv + optind;
    a.n_texts = argc - optind;
    return cli_pipeline("qa", &a);
}
