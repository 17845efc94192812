/* cmd_finetune.c — `distilbert finetune` and `distilbert eval`. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const HELP =
    "usage: distilbert finetune --task classify|ner|qa --model DIR --train FILE [--dev FILE] --out DIR [options]\n"
    "\n"
    "Fine-tunes a model folder (a head missing from it is initialized and reported) and writes a\n"
    "Hugging Face folder that transformers loads, with train_log.jsonl (step metrics and\n"
    "evaluations) and training.svg (loss and dev metric). Data:\n"
    "  classify  TSV/CSV with a header (GLUE: sentence, sentence1/sentence2, #1 String, label, score...),\n"
    "            TSV without header (CoLA, or text<TAB>label), or JSON lines; .gz is read too\n"
    "  ner       CoNLL: a token and its tag per line (tag last), blank lines between sentences\n"
    "  qa        SQuAD v1.1 JSON\n"
    "\n"
    "  --epochs N (3)  --lr X (5e-5)  --batch-size N (32)  --grad-accum N (1)  --max-length N (128; qa 384)\n"
    "  --warmup-ratio X (0)  --weight-decay X (0)  --max-grad-norm X (1)  --seed N (42)  --max-steps N\n"
    "  --doc-stride N (qa: 128)  --log-every N (10)  --eval-every N (steps; default once per epoch)\n"
    "  --text-column C  --pair-column C  --label-column C  (names or 0-based indices)  --regression\n"
    "  --resume          continue from the state saved in --out (after an interruption)\n"
    "  --teacher DIR     task distillation: loss = alpha_task·task + alpha_ce·KL(teacher‖student)·T²\n"
    "                    (batchmean; qa: the mean of the start and end terms, as run_squad_w_distillation.py)\n"
    "  --alpha-ce X (0.5)  --alpha-task X (0.5)  --temperature T (2)\n"
    "  --no-progress     no progress bar      --threads N\n"
    "Ctrl-C saves the current state and exits; --resume picks it up.\n"
    "Data-parallel over MPI: mpirun -np N distilbert finetune ... (each rank takes --batch-size of a\n"
    "global batch of N x batch size; rank 0 writes and evaluates; see README, \"Many machines\").\n";

static const char *const EVAL_HELP =
    "usage: distilbert eval --task classify|ner|qa|mlm --model DIR --data FILE [--max-length N] [--batch-size N]\n"
    "                       [--dtype fp32|bf16|int8] [--threads N]\n"
    "\n"
    "Prints the metrics as one JSON object: accuracy, f1 (binary) or macro_f1, mcc for classification;\n"
    "pearson, spearmanr, mse for regression; seqeval precision, recall, f1 (+ per type) for ner;\n"
    "SQuAD v1.1 exact_match and f1 for qa. Data formats as for finetune.\n"
    "mlm: a model with its MLM head on held-out text (one sequence per line, as pretrain reads it):\n"
    "loss (mean cross-entropy over the masked tokens), perplexity, accuracy; 15% of the tokens masked\n"
    "uniformly, 80/10/10, drawn from --seed (42), the same for every model. --save-masks FILE writes\n"
    "the masked input_ids and labels, one JSON line per sequence.\n"
    "--dtype runs the encoder's Linear layers in that precision (as classify --dtype; default: as\n"
    "the folder is stored), so the metrics are those of the reduced-precision model.\n";

static int parse_task(const char *s, dbt_task *t) {
    if (!strcmp(s, "classify")) *t = DBT_TASK_CLASSIFY;
    else if (!strcmp(s, "ner")) *t = DBT_TASK_NER;
    else if (!strcmp(s, "qa")) *t = DBT_TASK_QA;
    else if (!strcmp(s, "mlm") || !strcmp(s, "fill-mask")) *t = DBT_TASK_FILL_MASK;
    else return 0;
    return 1;
}

static int parse_float(const char *flag, const char *v, float *out) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) {
        fprintf(stderr, "distilbert: %s expects a number, got \"%s\"\n", flag, v);
        return 0;
    }
    *out = (float)x;
    return 1;
}

enum {
    O_TASK = 256, O_MODEL, O_TRAIN, O_DEV, O_OUT, O_EPOCHS, O_LR, O_BS, O_ACC, O_MAXLEN, O_WARM, O_WD, O_CLIP,
    O_SEED, O_STEPS, O_STRIDE, O_LOG, O_EVAL, O_TEXT, O_PAIR, O_LABEL, O_REG, O_RESUME, O_TEACHER, O_ACE, O_ATASK,
    O_TEMP, O_NOPROG, O_THREADS, O_DATA, O_DTYPE, O_MASKS, O_HELP
};

static const struct option LONGOPTS[] = {
    {"task", required_argument, 0, O_TASK},        {"model", required_argument, 0, O_MODEL},
    {"train", required_argument, 0, O_TRAIN},      {"dev", required_argument, 0, O_DEV},
    {"out", required_argument, 0, O_OUT},          {"epochs", required_argument, 0, O_EPOCHS},
    {"lr", required_argument, 0, O_LR},            {"batch-size", required_argument, 0, O_BS},
    {"grad-accum", required_argument, 0, O_ACC},   {"max-length", required_argument, 0, O_MAXLEN},
    {"warmup-ratio", required_argument, 0, O_WARM}, {"weight-decay", required_argument, 0, O_WD},
    {"max-grad-norm", required_argument, 0, O_CLIP}, {"seed", required_argument, 0, O_SEED},
    {"max-steps", required_argument, 0, O_STEPS},  {"doc-stride", required_argument, 0, O_STRIDE},
    {"log-every", required_argument, 0, O_LOG},    {"eval-every", required_argument, 0, O_EVAL},
    {"text-column", required_argument, 0, O_TEXT}, {"pair-column", required_argument, 0, O_PAIR},
    {"label-column", required_argument, 0, O_LABEL}, {"regression", no_argument, 0, O_REG},
    {"resume", no_argument, 0, O_RESUME},          {"teacher", required_argument, 0, O_TEACHER},
    {"alpha-ce", required_argument, 0, O_ACE},     {"alpha-task", required_argument, 0, O_ATASK},
    {"temperature", required_argument, 0, O_TEMP}, {"no-progress", no_argument, 0, O_NOPROG},
    {"threads", required_argument, 0, O_THREADS},  {"data", required_argument, 0, O_DATA},
    {"dtype", required_argument, 0, O_DTYPE},      {"save-masks", required_argument, 0, O_MASKS},
    {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0}};

/* Shared flag parsing; returns -1 to continue, or an exit status. */
static int parse(int argc, char **argv, const char *cmd, const char *help, dbt_finetune_opts *o, const char **data,
                 const char **dtype, const char **masks, int *task_given) {
    long v;
    float f;
    int c;
    dbt_task task = DBT_TASK_CLASSIFY;
    /* Options do not depend on their order: a first pass finds --task (the last one given), whose
     * defaults (--max-length) the second pass starts from, and applies every other option to. */
    const int opterr0 = opterr;
    opterr = 0;
    optind = 0; /* 0, not 1: glibc and musl then reset all their scanning state */
    while ((c = getopt_long(argc, argv, "h", LONGOPTS, NULL)) != -1)
        if (c == O_TASK && parse_task(optarg, &task)) *task_given = 1;
    opterr = opterr0;
    *o = dbt_finetune_opts_default(task);
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", LONGOPTS, NULL)) != -1) {
        switch (c) {
        case O_TASK: {
            dbt_task t;
            if (!parse_task(optarg, &t) || (t == DBT_TASK_FILL_MASK && !masks))
                return cli_fail(cmd, "unknown --task \"%s\" (classify, ner, qa%s)", optarg,
                                masks ? ", mlm" : "; masked-LM training is distilbert pretrain");
            *task_given = 1;
            break;
        }
        case O_MODEL: o->model_dir = optarg; break;
        case O_TRAIN: o->train_path = optarg; break;
        case O_DEV: o->dev_path = optarg; break;
        case O_OUT: o->out_dir = optarg; break;
        case O_DATA: *data = optarg; break;
        case O_MASKS:
            if (!masks) return cli_fail(cmd, "--save-masks is an option of eval --task mlm");
            *masks = optarg;
            break;
        case O_DTYPE: {
            dbt_compute_dtype d;
            if (!dtype) { /* eval only: training runs in fp32 */
                fprintf(stderr, "distilbert %s: --dtype is an eval option (training runs in fp32)\n", cmd);
                return 2;
            }
            if (dbt_compute_dtype_parse(optarg, &d)) {
                fprintf(stderr, "distilbert %s: unknown --dtype \"%s\" (fp32, bf16 or int8)\n", cmd, optarg);
                return 2;
            }
            *dtype = optarg;
            break;
        }
        case O_EPOCHS: if (!cli_int("--epochs", optarg, 1, 100000, &v)) return 2; o->epochs = (int)v; break;
        case O_LR: if (!parse_float("--lr", optarg, &o->lr)) return 2; break;
        case O_BS: if (!cli_int("--batch-size", optarg, 1, 65536, &v)) return 2; o->batch_size = (int)v; break;
        case O_ACC: if (!cli_int("--grad-accum", optarg, 1, 65536, &v)) return 2; o->grad_accum = (int)v; break;
        case O_MAXLEN: if (!cli_int("--max-length", optarg, 8, 1 << 20, &v)) return 2; o->max_length = (int)v; break;
        case O_WARM: if (!parse_float("--warmup-ratio", optarg, &o->warmup_ratio)) return 2; break;
        case O_WD: if (!parse_float("--weight-decay", optarg, &o->weight_decay)) return 2; break;
        case O_CLIP: if (!parse_float("--max-grad-norm", optarg, &o->max_grad_norm)) return 2; break;
        case O_SEED: if (!cli_int("--seed", optarg, 0, 0x7fffffffL, &v)) return 2; o->seed = (uint64_t)v; break;
        case O_STEPS: if (!cli_int("--max-steps", optarg, 1, 0x7fffffffL, &v)) return 2; o->max_steps = v; break;
        case O_STRIDE: if (!cli_int("--doc-stride", optarg, 0, 1 << 20, &v)) return 2; o->doc_stride = (int)v; break;
        case O_LOG: if (!cli_int("--log-every", optarg, 1, 1 << 30, &v)) return 2; o->log_every = (int)v; break;
        case O_EVAL: if (!cli_int("--eval-every", optarg, 1, 1 << 30, &v)) return 2; o->eval_every = v; break;
        case O_TEXT: o->text_column = optarg; break;
        case O_PAIR: o->pair_column = optarg; break;
        case O_LABEL: o->label_column = optarg; break;
        case O_REG: o->regression = 1; break;
        case O_RESUME: o->resume = 1; break;
        case O_TEACHER: o->teacher_dir = optarg; break;
        case O_ACE: if (!parse_float("--alpha-ce", optarg, &f)) return 2; o->alpha_ce = f; break;
        case O_ATASK: if (!parse_float("--alpha-task", optarg, &f)) return 2; o->alpha_task = f; break;
        case O_TEMP: if (!parse_float("--temperature", optarg, &f)) return 2; o->temperature = f; break;
        case O_NOPROG: o->progress = 0; break;
        case O_THREADS: if (!cli_int("--threads", optarg, 1, 1024, &v)) return 2; dbt_set_num_threads((int)v); break;
        case 'h': case O_HELP: fputs(help, stdout); return 0;
        default: fputs(help, stderr); return 2;
        }
    }
    if (optind < argc) return cli_fail(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!*task_given) return cli_fail(cmd, "--task classify|ner|qa%s is required", masks ? "|mlm" : "");
    if (masks && *masks && task != DBT_TASK_FILL_MASK) return cli_fail(cmd, "--save-masks is an option of --task mlm");
    return -1;
}

int cmd_finetune(int argc, char **argv) {
    dbt_finetune_opts o = dbt_finetune_opts_default(DBT_TASK_CLASSIFY);
    const char *data = NULL;
    int task_given = 0;
    int r = parse(argc, argv, "finetune", HELP, &o, &data, NULL, NULL, &task_given);
    if (r >= 0) return r;
    if (!o.model_dir || !o.train_path || !o.out_dir) return cli_fail("finetune", "--model, --train and --out are required");
    cli_keep_freed_memory();
    if ((r = cli_dist_begin("finetune", argc, argv)) >= 0) return r;
    return cli_dist_end("finetune", dbt_finetune(&o), o.out_dir);
}

int cmd_eval(int argc, char **argv) {
    dbt_finetune_opts o = dbt_finetune_opts_default(DBT_TASK_CLASSIFY);
    const char *data = NULL, *dtype = NULL, *masks = NULL;
    int task_given = 0;
    int r = parse(argc, argv, "eval", EVAL_HELP, &o, &data, &dtype, &masks, &task_given);
    if (r >= 0) return r;
    if (!o.model_dir || !data) return cli_fail("eval", "--model and --data are required");
    dbt_model *m = dbt_model_load(o.model_dir, dbt_task_head(o.task));
    if (!m) return cli_fail("eval", "%s", dbt_last_error());
    if (!dbt_model_tokenizer(m)) { dbt_model_free(m); return cli_fail("eval", "%s has no tokenizer", o.model_dir); }
    if (cli_apply_dtype("eval", m, dtype)) { dbt_model_free(m); return 1; }
    char *json = NULL;
    r = o.task == DBT_TASK_FILL_MASK ? dbt_evaluate_mlm(m, data, &o, masks, &json)
                                     : dbt_evaluate_model(m, o.task, data, &o, &json);
    dbt_model_free(m);
    if (r) return cli_fail("eval", "%s", dbt_last_error());
    printf("%s\n", json);
    free(json);
    return 0;
}
