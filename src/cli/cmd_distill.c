/* cmd_distill.c — `distilbert distill` and `distilbert pretrain`: flags → dbt_distill_opts /
 * dbt_pretrain_opts. The training flags (corpus, masking, optimization) are shared. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const TRAIN_FLAGS =
    "  --corpus FILE       text, one sequence per line (.gz read too); repeat for more files.\n"
    "                      Longer lines are split at --max-length, sequences under 12 tokens dropped\n"
    "  --max-length N (128)  --batch-size N (16)  --grad-accum N (1)  --epochs N (3)  --max-steps N\n"
    "  --lr X (5e-4)  --warmup-ratio X (0.05)  --weight-decay X (0)  --max-grad-norm X (5)  --seed N (42)\n"
    "  --mlm-mask-prop X (0.15)  --word-mask X (0.8)  --word-keep X (0.1)  --word-rand X (0.1)\n"
    "  --mlm-smoothing X (0.7: masked tokens drawn with weight count^-X; 0 uniform)\n"
    "  --log-every N (10)  --save-every N (steps; default once per epoch)  --resume  --no-progress  --threads N\n"
    "Batches group sequences of similar length; masks are drawn anew every step. Ctrl-C saves the\n"
    "state and exits (status 130); --resume continues it exactly.\n"
    "Data-parallel over MPI: mpirun -np N distilbert ... (each rank takes --batch-size of a global\n"
    "batch of N x batch size; rank 0 writes; kill -USR1 <mpirun pid> saves and stops; see README).\n";

static const char *const DISTILL_HELP =
    "usage: distilbert distill --teacher DIR --out DIR --corpus FILE [options]\n"
    "\n"
    "Knowledge distillation (DistilBERT, Sanh et al. 2019) of a BERT (or DistilBERT) teacher with a\n"
    "masked-LM head into a DistilBERT student, with the reference distiller's loss:\n"
    "  alpha_ce·KL(softmax(t/T) ‖ softmax(s/T))·T² + alpha_mlm·CE(masked tokens)\n"
    "  + alpha_cos·(1 − cos(student, teacher last hidden states)) + alpha_mse·MSE(logits)\n"
    "The student starts as the teacher's embeddings and every other layer. Writes a\n"
    "DistilBertForMaskedLM folder with the teacher's tokenizer, train_log.jsonl (each loss term) and\n"
    "training.svg.\n"
    "\n"
    "  --student-layers N    (half the teacher's)       --student-config FILE  a DistilBERT config.json\n"
    "  --layer-map 0,2,4,7,9,11  teacher layer of each student layer (default: evenly spaced, first and last)\n"
    "  --from-scratch        random student weights     --init-only  write the initialized student and stop\n"
    "  --temperature T (2)  --alpha-ce X (5)  --alpha-mlm X (2)  --alpha-cos X (1)  --alpha-mse X (0)\n"
    "  --restrict-ce-to-mask the KL (and MSE) terms on the masked tokens only\n"
    "A teacher without an MLM head gives no soft targets: --alpha-ce 0, and --alpha-mse then compares\n"
    "hidden states.\n";

static const char *const PRETRAIN_HELP =
    "usage: distilbert pretrain --out DIR --corpus FILE (--vocab FILE | --tokenizer DIR | --model DIR) [options]\n"
    "\n"
    "Masked-LM training from scratch (random weights as transformers initializes them) or of an\n"
    "existing folder (--model DIR). Writes a BertForMaskedLM / DistilBertForMaskedLM folder that\n"
    "transformers loads and `distill --teacher` accepts.\n"
    "\n"
    "  --vocab FILE [--cased]   a vocab.txt (lowercased unless --cased)\n"
    "  --tokenizer DIR|FILE     a tokenizer folder, or a tokenizer.json\n"
    "  --config FILE            the model's config.json, or its sizes:\n"
    "  --model-type bert|distilbert (bert)  --layers N (12)  --dim N (768)  --heads N (12)\n"
    "  --hidden-dim N (3072)  --max-positions N (512)\n";

enum {
    O_TEACHER = 256, O_OUT, O_CORPUS, O_SLAYERS, O_SCONFIG, O_MAP, O_SCRATCH, O_INIT, O_TEMP, O_ACE, O_AMLM, O_ACOS,
    O_AMSE, O_RESTRICT, O_PROP, O_WMASK, O_WKEEP, O_WRAND, O_SMOOTH, O_MAXLEN, O_BS, O_ACC, O_EPOCHS, O_STEPS, O_LR,
    O_WARM, O_WD, O_CLIP, O_SEED, O_LOG, O_SAVE, O_RESUME, O_NOPROG, O_THREADS, O_VOCAB, O_CASED, O_TOKENIZER,
    O_MODEL, O_CONFIG, O_TYPE, O_LAYERS, O_DIM, O_HEADS, O_HIDDEN, O_POS, O_HELP
};

static const struct option LONGOPTS[] = {
    {"teacher", required_argument, 0, O_TEACHER},      {"out", required_argument, 0, O_OUT},
    {"corpus", required_argument, 0, O_CORPUS},        {"student-layers", required_argument, 0, O_SLAYERS},
    {"student-config", required_argument, 0, O_SCONFIG}, {"layer-map", required_argument, 0, O_MAP},
    {"from-scratch", no_argument, 0, O_SCRATCH},       {"init-only", no_argument, 0, O_INIT},
    {"temperature", required_argument, 0, O_TEMP},     {"alpha-ce", required_argument, 0, O_ACE},
    {"alpha-mlm", required_argument, 0, O_AMLM},       {"alpha-cos", required_argument, 0, O_ACOS},
    {"alpha-mse", required_argument, 0, O_AMSE},       {"restrict-ce-to-mask", no_argument, 0, O_RESTRICT},
    {"mlm-mask-prop", required_argument, 0, O_PROP},   {"word-mask", required_argument, 0, O_WMASK},
    {"word-keep", required_argument, 0, O_WKEEP},      {"word-rand", required_argument, 0, O_WRAND},
    {"mlm-smoothing", required_argument, 0, O_SMOOTH}, {"max-length", required_argument, 0, O_MAXLEN},
    {"batch-size", required_argument, 0, O_BS},        {"grad-accum", required_argument, 0, O_ACC},
    {"epochs", required_argument, 0, O_EPOCHS},        {"max-steps", required_argument, 0, O_STEPS},
    {"lr", required_argument, 0, O_LR},                {"warmup-ratio", required_argument, 0, O_WARM},
    {"weight-decay", required_argument, 0, O_WD},      {"max-grad-norm", required_argument, 0, O_CLIP},
    {"seed", required_argument, 0, O_SEED},            {"log-every", required_argument, 0, O_LOG},
    {"save-every", required_argument, 0, O_SAVE},      {"resume", no_argument, 0, O_RESUME},
    {"no-progress", no_argument, 0, O_NOPROG},         {"threads", required_argument, 0, O_THREADS},
    {"vocab", required_argument, 0, O_VOCAB},          {"cased", no_argument, 0, O_CASED},
    {"tokenizer", required_argument, 0, O_TOKENIZER},  {"model", required_argument, 0, O_MODEL},
    {"config", required_argument, 0, O_CONFIG},        {"model-type", required_argument, 0, O_TYPE},
    {"layers", required_argument, 0, O_LAYERS},        {"dim", required_argument, 0, O_DIM},
    {"heads", required_argument, 0, O_HEADS},          {"hidden-dim", required_argument, 0, O_HIDDEN},
    {"max-positions", required_argument, 0, O_POS},    {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0}};

static int parse_double(const char *flag, const char *v, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) {
        fprintf(stderr, "distilbert: %s expects a number, got \"%s\"\n", flag, v);
        return 0;
    }
    *out = x;
    return 1;
}

static int parse_float(const char *flag, const char *v, float *out) {
    double x;
    if (!parse_double(flag, v, &x)) return 0;
    *out = (float)x;
    return 1;
}

/* "0,2,4" → ints (at most cap). Returns the count, or -1. */
static int parse_map(const char *s, int *map, int cap) {
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 100000 || n == cap || (*end && *end != ',')) return -1;
        map[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return n ? n : -1;
}

/* The flags both commands take. Returns 1 when c was one of them, 0 when not, -1 on a bad value. */
static int train_flag(int c, const char *arg, dbt_mlm_train_opts *t, const char **corpus, int *n_corpus) {
    long v;
    switch (c) {
    case O_OUT: t->out_dir = arg; return 1;
    case O_CORPUS: corpus[(*n_corpus)++] = arg; return 1;
    case O_PROP: return parse_double("--mlm-mask-prop", arg, &t->mask_prop) ? 1 : -1;
    case O_WMASK: return parse_double("--word-mask", arg, &t->word_mask) ? 1 : -1;
    case O_WKEEP: return parse_double("--word-keep", arg, &t->word_keep) ? 1 : -1;
    case O_WRAND: return parse_double("--word-rand", arg, &t->word_rand) ? 1 : -1;
    case O_SMOOTH: return parse_double("--mlm-smoothing", arg, &t->smoothing) ? 1 : -1;
    case O_LR: return parse_float("--lr", arg, &t->lr) ? 1 : -1;
    case O_WARM: return parse_float("--warmup-ratio", arg, &t->warmup_ratio) ? 1 : -1;
    case O_WD: return parse_float("--weight-decay", arg, &t->weight_decay) ? 1 : -1;
    case O_CLIP: return parse_float("--max-grad-norm", arg, &t->max_grad_norm) ? 1 : -1;
    case O_MAXLEN: if (!cli_int("--max-length", arg, 12, 1 << 20, &v)) return -1; t->max_length = (int)v; return 1;
    case O_BS: if (!cli_int("--batch-size", arg, 1, 65536, &v)) return -1; t->batch_size = (int)v; return 1;
    case O_ACC: if (!cli_int("--grad-accum", arg, 1, 65536, &v)) return -1; t->grad_accum = (int)v; return 1;
    case O_EPOCHS: if (!cli_int("--epochs", arg, 1, 100000, &v)) return -1; t->epochs = (int)v; return 1;
    case O_STEPS: if (!cli_int("--max-steps", arg, 1, 0x7fffffffL, &v)) return -1; t->max_steps = v; return 1;
    case O_SEED: if (!cli_int("--seed", arg, 0, 0x7fffffffL, &v)) return -1; t->seed = (uint64_t)v; return 1;
    case O_LOG: if (!cli_int("--log-every", arg, 1, 1 << 30, &v)) return -1; t->log_every = (int)v; return 1;
    case O_SAVE: if (!cli_int("--save-every", arg, 1, 1 << 30, &v)) return -1; t->save_every = v; return 1;
    case O_RESUME: t->resume = 1; return 1;
    case O_NOPROG: t->progress = 0; return 1;
    case O_THREADS: if (!cli_int("--threads", arg, 1, 1024, &v)) return -1; dbt_set_num_threads((int)v); return 1;
    default: return 0;
    }
}


/* Runs the parsed command's result: 0, 130 when interrupted (state saved), 1 on error. */
static int finish(const char *cmd, int rc, const char *out) { return cli_dist_end(cmd, rc, out); }

int cmd_distill(int argc, char **argv) {
    dbt_distill_opts o = dbt_distill_opts_default();
    const char **corpus = calloc((size_t)argc + 1, sizeof *corpus);
    int *map = calloc(1024, sizeof *map), n_corpus = 0, c, r = -1;
    long v;
    if (!corpus || !map) { free(corpus); free(map); return cli_fail("distill", "out of memory"); }
    optind = 1;
    while (r < 0 && (c = getopt_long(argc, argv, "h", LONGOPTS, NULL)) != -1) {
        int t = train_flag(c, optarg, &o.train, corpus, &n_corpus);
        if (t < 0) r = 2;
        if (t != 0) continue;
        switch (c) {
        case O_TEACHER: o.teacher_dir = optarg; break;
        case O_SLAYERS: if (!cli_int("--student-layers", optarg, 1, 1000, &v)) r = 2; o.student_layers = (int)v; break;
        case O_SCONFIG: o.student_config = optarg; break;
        case O_MAP:
            o.n_layer_map = parse_map(optarg, map, 1024);
            if (o.n_layer_map < 0) r = cli_fail("distill", "--layer-map expects layer numbers like 0,2,4,7,9,11");
            o.layer_map = map;
            break;
        case O_SCRATCH: o.from_scratch = 1; break;
        case O_INIT: o.init_only = 1; break;
        case O_TEMP: if (!parse_float("--temperature", optarg, &o.temperature)) r = 2; break;
        case O_ACE: if (!parse_float("--alpha-ce", optarg, &o.alpha_ce)) r = 2; break;
        case O_AMLM: if (!parse_float("--alpha-mlm", optarg, &o.alpha_mlm)) r = 2; break;
        case O_ACOS: if (!parse_float("--alpha-cos", optarg, &o.alpha_cos)) r = 2; break;
        case O_AMSE: if (!parse_float("--alpha-mse", optarg, &o.alpha_mse)) r = 2; break;
        case O_RESTRICT: o.restrict_ce_to_mask = 1; break;
        case 'h': case O_HELP: printf("%s%s", DISTILL_HELP, TRAIN_FLAGS); r = 0; break;
        default: fprintf(stderr, "%s%s", DISTILL_HELP, TRAIN_FLAGS); r = 2; break;
        }
    }
    if (r < 0 && optind < argc) r = cli_fail("distill", "unexpected argument \"%s\"", argv[optind]);
    if (r < 0 && (!o.teacher_dir || !o.train.out_dir || (!n_corpus && !o.init_only)))
        r = cli_fail("distill", "--teacher, --out and --corpus are required");
    if (r < 0) {
        o.train.corpus = corpus;
        o.train.n_corpus = n_corpus;
        cli_keep_freed_memory();
        if ((r = cli_dist_begin("distill", argc, argv)) < 0) r = finish("distill", dbt_distill(&o), o.train.out_dir);
    }
    free(corpus);
    free(map);
    return r;
}

int cmd_pretrain(int argc, char **argv) {
    dbt_pretrain_opts o = dbt_pretrain_opts_default();
    const char **corpus = calloc((size_t)argc + 1, sizeof *corpus);
    int n_corpus = 0, c, r = -1;
    long v;
    if (!corpus) return cli_fail("pretrain", "out of memory");
    optind = 1;
    while (r < 0 && (c = getopt_long(argc, argv, "h", LONGOPTS, NULL)) != -1) {
        int t = train_flag(c, optarg, &o.train, corpus, &n_corpus);
        if (t < 0) r = 2;
        if (t != 0) continue;
        switch (c) {
        case O_VOCAB: o.vocab_path = optarg; break;
        case O_CASED: o.cased = 1; break;
        case O_TOKENIZER: o.tokenizer_path = optarg; break;
        case O_MODEL: o.model_dir = optarg; break;
        case O_CONFIG: o.config_path = optarg; break;
        case O_TYPE:
            if (!strcmp(optarg, "bert")) o.arch = DBT_ARCH_BERT;
            else if (!strcmp(optarg, "distilbert")) o.arch = DBT_ARCH_DISTILBERT;
            else r = cli_fail("pretrain", "--model-type is bert or distilbert, not \"%s\"", optarg);
            break;
        case O_LAYERS: if (!cli_int("--layers", optarg, 1, 1000, &v)) r = 2; o.n_layers = (int)v; break;
        case O_DIM: if (!cli_int("--dim", optarg, 1, 65536, &v)) r = 2; o.dim = (int)v; break;
        case O_HEADS: if (!cli_int("--heads", optarg, 1, 1024, &v)) r = 2; o.n_heads = (int)v; break;
        case O_HIDDEN: if (!cli_int("--hidden-dim", optarg, 1, 262144, &v)) r = 2; o.hidden_dim = (int)v; break;
        case O_POS: if (!cli_int("--max-positions", optarg, 12, 1 << 20, &v)) r = 2; o.max_positions = (int)v; break;
        case 'h': case O_HELP: printf("%s%s", PRETRAIN_HELP, TRAIN_FLAGS); r = 0; break;
        default: fprintf(stderr, "%s%s", PRETRAIN_HELP, TRAIN_FLAGS); r = 2; break;
        }
    }
    if (r < 0 && optind < argc) r = cli_fail("pretrain", "unexpected argument \"%s\"", argv[optind]);
    if (r < 0 && (!o.train.out_dir || !n_corpus)) r = cli_fail("pretrain", "--out and --corpus are required");
    if (r < 0) {
        o.train.corpus = corpus;
        o.train.n_corpus = n_corpus;
        cli_keep_freed_memory();
        if ((r = cli_dist_begin("pretrain", argc, argv)) < 0) r = finish("pretrain", dbt_pretrain(&o), o.train.out_dir);
    }
    free(corpus);
    return r;
}
