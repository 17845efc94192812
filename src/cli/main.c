/* main.c — `distilbert <command> ...`: a thin shell over libdistilbert. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"tokenize", "text lines → token ids, tokens, type ids, offsets (JSON lines)", cmd_tokenize},
    {"decode", "token ids (JSON lines) → text", cmd_decode},
    {"fill-mask", "predict [MASK] tokens", cmd_fill_mask},
    {"classify", "text classification (sentiment, topics, pairs): label and score", cmd_classify},
    {"ner", "token classification: named entities with character offsets", cmd_ner},
    {"qa", "extractive question answering over a context", cmd_qa},
    {"embed", "sentence embeddings (mean/cls/max pooling, sentence-transformers folders)", cmd_embed},
    {"forward", "raw model outputs: hidden states, pooler output, logits", cmd_forward},
    {"finetune", "fine-tune for classify, ner or qa (AdamW, warmup, checkpoints, resume)", cmd_finetune},
    {"eval", "metrics on a dev set: accuracy/F1/MCC, Pearson/Spearman, seqeval, SQuAD", cmd_eval},
    {"distill", "knowledge distillation of a BERT teacher into a DistilBERT student", cmd_distill},
    {"pretrain", "masked-LM pretraining from scratch (or of an existing model)", cmd_pretrain},
    {"vocab", "train a WordPiece vocabulary on text files (a tokenizer folder)", cmd_vocab},
    {"quantize", "int8 / bf16 / f16 copy of a model folder (int8 runs with dynamic quantization)", cmd_quantize},
    {"serve", "HTTP service (TEI-style /embed, /predict, /tokenize, /v1/embeddings; pipelines)", cmd_serve},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "distilbert %s — DistilBERT and BERT in C\n\n"
               "usage: distilbert <command> [options]   (distilbert <command> --help)\n\n"
               "commands:\n", DBT_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  --version    print the version\n  --help       this text\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) { usage(stdout); return 0; }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) { printf("distilbert %s\n", DBT_VERSION); return 0; }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "distilbert: unknown command \"%s\"\n\n", name);
    usage(stderr);
    return 2;
}
