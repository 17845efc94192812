/* config.h — a model's config.json, for model_type "distilbert" and "bert". */
#ifndef DBT_CONFIG_H
#define DBT_CONFIG_H

#include "distilbert.h"

typedef struct {
    dbt_arch arch;
    int vocab_size;
    int dim;                     /* hidden_size */
    int n_layers;
    int n_heads;
    int hidden_dim;              /* intermediate_size (FFN) */
    int max_position_embeddings;
    int type_vocab_size;         /* BERT only; 0 for DistilBERT */
    int sinusoidal_pos_embds;    /* DistilBERT option */
    dbt_activation activation;
    float layer_norm_eps;
    int pad_token_id;
    /* dropout probabilities (training) */
    float dropout, attention_dropout, classifier_dropout, qa_dropout;
    float initializer_range;
    /* head */
    dbt_head head;               /* from architectures[0] */
    char architecture[96];
    int n_labels;
    char **id2label;             /* n_labels strings */
    dbt_problem_type problem_type;
    char *raw_json;              /* the text it was parsed from: unknown keys survive a save */
} dbt_config;

/* Parses config.json text. Returns 0, or -1 with dbt_last_error() set. */
int dbt_config_parse(dbt_config *c, const char *json, size_t len);
int dbt_config_load(dbt_config *c, const char *path);
void dbt_config_free(dbt_config *c);
/* config.json text for c (the keys transformers writes for the architecture, over the keys of
 * raw_json), with "architectures" = [architecture]. malloc'd, or NULL. */
char *dbt_config_to_json(const dbt_config *c, const char *architecture);
/* Replaces the labels (n names, copied). */
int dbt_config_set_labels(dbt_config *c, int n, const char *const *names);
const char *dbt_activation_name(dbt_activation a);
/* tokenizer_config.json text for a model of architecture `arch`, from the source folder's (src,
 * may be NULL: then "{}"). DistilBERT takes no token_type_ids, but transformers' tokenizers pass
 * them unless "model_input_names" says otherwise — and a BERT folder's "tokenizer_class":
 * "BertTokenizer" makes them — so for DistilBERT the list is set to input_ids and
 * attention_mask (what DistilBertTokenizer declares). BERT: the text is kept as it is.
 * malloc'd, or NULL with the error set (src is not a JSON object, or out of memory). */
char *dbt_tokenizer_config_for(const char *src, size_t len, dbt_arch arch);
/* Writes dst_dir/tokenizer_config.json from src_dir's (if src_dir has one) as above; `write`
 * is the caller's atomic writer. 0, or -1 with the error set. */
int dbt_copy_tokenizer_config(const char *src_dir, const char *dst_dir, dbt_arch arch,
                              int (*write)(const char *path, const void *data, size_t n));

#endif
