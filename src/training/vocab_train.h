/* vocab_train.h — WordPiece vocabulary training (dbt_train_vocab in distilbert.h) in two
 * halves that tests can drive separately: training from counted words, and writing a folder. */
#ifndef DBT_VOCAB_TRAIN_H
#define DBT_VOCAB_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "distilbert.h"

/* A trained vocabulary: id → token, the special tokens first. */
typedef struct {
    char **tokens; /* n malloc'd strings */
    int32_t n;
    int alphabet_size;
    int n_merges;
} dbt_vocab;

/* The trainer proper (tokenizers' BpeTrainer::do_train with continuing_subword_prefix "##"):
 * words[i] (UTF-8, len lens[i], already normalized and pre-tokenized) was seen counts[i] times.
 * Words are distinct. Fills *out; returns 0 or -1. */
int dbt_vocab_train_words(const char *const *words, const size_t *lens, const int64_t *counts, int64_t n_words,
                          const dbt_vocab_train_opts *o, dbt_vocab *out);
void dbt_vocab_free(dbt_vocab *v);

/* Writes vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json into
 * out_dir (created with its parents if needed), each through a temporary file, fsync and
 * rename. Returns 0 or -1. */
int dbt_vocab_write(const dbt_vocab *v, const dbt_vocab_train_opts *o, const char *out_dir);

#endif
