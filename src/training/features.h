/* features.h — examples turned into model inputs with their targets, the way transformers'
 * example scripts prepare them (run_glue, run_ner, run_qa). */
#ifndef DBT_FEATURES_H
#define DBT_FEATURES_H

#include "data.h"
#include "distilbert.h"

typedef struct {
    dbt_encoding enc;      /* owned */
    int32_t label;         /* classification */
    float target;          /* regression */
    int32_t *token_labels; /* NER: enc.n labels, -100 except on each word's first token */
    int32_t start, end;    /* QA: answer token span in the window ([CLS] index when absent) */
    int64_t example;       /* the example it came from */
} dbt_feature;

typedef struct {
    dbt_feature *f;
    int64_t n;
} dbt_features;

int dbt_features_cls(const dbt_tokenizer *tok, const dbt_cls_data *d, int max_length, dbt_features *out);
/* Words are tokenized one by one (is_split_into_words), labels on first sub-tokens. */
int dbt_features_ner(const dbt_tokenizer *tok, const dbt_ner_data *d, int max_length, dbt_features *out);
/* Encodes words as one sequence with [CLS]/[SEP]; word_ids give the word of each token. */
int dbt_encode_words(const dbt_tokenizer *tok, char *const *words, int n_words, int max_length, dbt_encoding *out);
/* Question/context windows with doc_stride overlap; answer spans mapped to tokens. */
int dbt_features_qa(const dbt_tokenizer *tok, const dbt_qa_data *d, int max_length, int doc_stride, dbt_features *out);
void dbt_features_free(dbt_features *f);

#endif
