/* cmd_vocab.c — `distilbert vocab`: trains a WordPiece vocabulary on text files and writes a
 * tokenizer folder that transformers and tokenizers load. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/json_writer.h"
#include "cli.h"

static const char *const HELP =
    "usage: distilbert vocab --corpus FILE [--corpus FILE ...] --size N --out DIR [options]\n"
    "\n"
    "Trains a WordPiece vocabulary as tokenizers' BertWordPieceTokenizer.train does: each line is\n"
    "normalized and split as BERT does, words are counted, and the most frequent pair of adjacent\n"
    "pieces is merged until the vocabulary has N entries ([PAD] [UNK] [CLS] [SEP] [MASK] first).\n"
    "Writes DIR/vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json, and\n"
    "prints a summary as one JSON object. Corpus files are plain text or gzip (.gz); - is stdin.\n"
    "\n"
    "  --corpus FILE         a training text, one or more lines of text (repeatable)\n"
    "  --size N              vocabulary size, special tokens included\n"
    "  --out DIR             the tokenizer folder (created if needed)\n"
    "  --cased               keep case and accents (default: lowercase and strip accents)\n"
    "  --min-frequency N     do not merge pairs seen fewer than N times (2)\n"
    "  --limit-alphabet N    keep the N most frequent characters (1000; 0: all)\n"
    "  --model-max-length N  model_max_length in tokenizer_config.json (512)\n";

int cmd_vocab(int argc, char **argv) {
    enum { O_CORPUS = 256, O_SIZE, O_OUT, O_CASED, O_MINF, O_LIMIT, O_MML, O_HELP };
    static const struct option longopts[] = {
        {"corpus", required_argument, 0, O_CORPUS},       {"size", required_argument, 0, O_SIZE},
        {"out", required_argument, 0, O_OUT},             {"cased", no_argument, 0, O_CASED},
        {"min-frequency", required_argument, 0, O_MINF},  {"limit-alphabet", required_argument, 0, O_LIMIT},
        {"model-max-length", required_argument, 0, O_MML}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    dbt_vocab_train_opts o = dbt_vocab_train_opts_default();
    const char **corpus = calloc((size_t)argc + 1, sizeof *corpus);
    if (!corpus) return cli_fail("vocab", "out of memory");
    int n_corpus = 0, c, size_given = 0;
    const char *out = NULL;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_CORPUS: corpus[n_corpus++] = optarg; break;
        case O_SIZE:
            if (!cli_int("--size", optarg, 1, 10000000, &v)) goto usage_error;
            o.vocab_size = (int)v;
            size_given = 1;
            break;
        case O_OUT: out = optarg; break;
        case O_CASED: o.lowercase = 0; break;
        case O_MINF:
            if (!cli_int("--min-frequency", optarg, 0, 1L << 62, &v)) goto usage_error;
            o.min_frequency = v;
            break;
        case O_LIMIT:
            if (!cli_int("--limit-alphabet", optarg, 0, 0x110000, &v)) goto usage_error;
            o.limit_alphabet = (int)v;
            break;
        case O_MML:
            if (!cli_int("--model-max-length", optarg, 1, 1 << 30, &v)) goto usage_error;
            o.model_max_length = (int)v;
            break;
        case 'h': fputs(HELP, stdout); free(corpus); return 0;
        default: goto usage_error;
        }
    }
    if (optind < argc) {
        free(corpus);
        return cli_fail("vocab", "unexpected argument \"%s\" (corpus files go after --corpus)", argv[optind]);
    }
    if (!n_corpus || !size_given || !out) {
        free(corpus);
        fputs(HELP, stderr);
        return cli_fail("vocab", "--corpus, --size and --out are required");
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dbt_vocab_train_stats st;
    int rc = dbt_train_vocab(corpus, n_corpus, &o, out, &st);
    free(corpus);
    if (rc) return cli_fail("vocab", "%s", dbt_last_error());
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    dbt_jw w = {0};
    dbt_jw_lit(&w, "{\"out\":");
    dbt_jw_str(&w, out, strlen(out));
    char tail[512];
    snprintf(tail, sizeof tail,
             ",\"vocab_size\":%d,\"alphabet\":%d,\"merges\":%d,\"lines\":%lld,\"words\":%lld,"
             "\"distinct_words\":%lld,\"seconds\":%.3f}\n",
             st.vocab_size, st.alphabet_size, st.n_merges, (long long)st.n_lines, (long long)st.n_words,
             (long long)st.n_distinct_words, secs);
    dbt_jw_lit(&w, tail);
    if (!w.oom) fwrite(w.s, 1, w.n, stdout);
    dbt_jw_free(&w);
    if (st.vocab_size < o.vocab_size)
        fprintf(stderr, "distilbert vocab: only %d tokens (no pair left that is seen at least %lld times)\n",
                st.vocab_size, (long long)(o.min_frequency > 1 ? o.min_frequency : 1));
    return 0;
usage_error:
    free(corpus);
    fputs(HELP, stderr);
    return 2;
}
