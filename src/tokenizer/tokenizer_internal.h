/* tokenizer_internal.h — the tokenizer object and the stages of its pipeline.
 *
 *   text ──utf8──▶ code points ──added tokens──▶ segments ──normalizer──▶ (cp, original index)
 *        ──pre-tokenizer──▶ words ──WordPiece──▶ pieces ──truncation, template──▶ dbt_encoding
 */
#ifndef DBT_TOKENIZER_INTERNAL_H
#define DBT_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/strmap.h"
#include "distilbert.h"

#define DBT_MAX_VOCAB 1000000         /* far above the 250k of multilingual models */
#define DBT_MAX_TOKENIZER_FILE (256u << 20)

/* A normalized code point and the index of the original code point it came from. */
typedef struct {
    int32_t cp;
    int32_t orig;
} dbt_nchar;

typedef struct {
    dbt_nchar *v;
    size_t n, cap;
} dbt_nbuf;

typedef struct {
    int clean_text;
    int handle_chinese_chars;
    int strip_accents;
    int lowercase;
} dbt_normalizer_cfg;

/* A token matched in the text before WordPiece ([CLS], [MASK], user-added words). */
typedef struct {
    char *content;
    int32_t *cps;      /* content as code points (normalized form when `normalized`) */
    int32_t n_cps;
    int32_t id;
    int special;       /* skipped by decode(skip_special_tokens) */
    int normalized;    /* matched in normalized text rather than in the raw text */
    int lstrip, rstrip, single_word;
} dbt_added_token;

/* A post-processor template such as "[CLS]:0 $A:0 [SEP]:0". */
typedef struct {
    int is_sequence; /* 1: $A or $B; 0: a special token */
    int seq;         /* 0 = A, 1 = B (when is_sequence) */
    int32_t id;      /* the special token's id (when !is_sequence) */
    int32_t type_id;
} dbt_template_piece;

typedef struct {
    dbt_template_piece *pieces;
    int n;
} dbt_template;

struct dbt_tokenizer {
    /* vocabulary: id → token, and the WordPiece model's token → id */
    char **id_to_token;
    int32_t n_vocab;           /* model vocabulary plus added tokens */
    char *pool;                /* storage of the token strings */
    dbt_strmap model_vocab;
    int max_key_len;           /* longest vocabulary entry in bytes: bounds WordPiece's search */

    dbt_normalizer_cfg norm;
    int has_normalizer;
    int has_pretokenizer;      /* BertPreTokenizer: split on whitespace, isolate punctuation */

    /* WordPiece */
    int32_t unk_id;
    char prefix[32];           /* continuing_subword_prefix, "##" */
    int prefix_len;
    int max_input_chars_per_word;

    /* post-processor */
    int has_post;
    dbt_template single, pair;

    dbt_added_token *added;
    int n_added;
    uint8_t *is_special;       /* per id: a special added token */

    /* truncation stored in tokenizer.json (0: none), the default of dbt_encode_opts */
    int32_t trunc_max_length, trunc_stride;
    dbt_truncation trunc_strategy;

    dbt_special_ids special;
    int32_t pad_type_id;
    /* padding stored in tokenizer.json ("padding"), or padding_side of tokenizer_config.json:
     * the defaults of dbt_pad_opts */
    int pad_enabled;
#define DBT_MAX_PAD_LENGTH (1 << 24)
    dbt_pad_opts pad_default;
    int32_t model_max_length;
};

/* normalizer.c */
int dbt_normalize(const dbt_normalizer_cfg *cfg, const int32_t *cps, int32_t n, int32_t orig_base,
                  dbt_nbuf *out);
int dbt_nbuf_push(dbt_nbuf *b, int32_t cp, int32_t orig);

/* encode.c: BertPreTokenizer over normalized characters. Calls fn(start, end) for each word of
 * v[0..n): whitespace separates words and is dropped, each punctuation character is a word of
 * its own. A nonzero return from fn stops the split and is returned. */
typedef int (*dbt_span_fn)(const dbt_nchar *v, size_t start, size_t end, void *user);
int dbt_pretokenize(const dbt_nchar *v, size_t n, dbt_span_fn fn, void *user);

/* words.c: text → the words that WordPiece would see (BertNormalizer with cfg, then
 * BertPreTokenizer), for vocabulary training. fn receives each word's UTF-8 bytes (not
 * NUL-terminated); a nonzero return stops the split and is returned. Returns 0, or -1 when out
 * of memory. The scratch buffers are reused across calls; zero-initialize, free once. */
typedef int (*dbt_word_fn)(const char *word, size_t len, void *user);
typedef struct {
    dbt_nbuf norm;
    int32_t *cps;
    size_t cps_cap;
    char *bytes;
    size_t bytes_cap;
} dbt_word_scratch;
int dbt_split_words(const dbt_normalizer_cfg *cfg, const char *text, size_t len, dbt_word_scratch *s,
                    dbt_word_fn fn, void *user);
void dbt_word_scratch_free(dbt_word_scratch *s);

/* decode.c: the WordPiece decoder on token strings (tokenizer.convert_tokens_to_string): after
 * the first token, the "##" prefix is removed, any other token gets a space in front, and each
 * piece is cleaned up (" ." → "." ...). malloc'd, or NULL when out of memory. */
char *dbt_wordpiece_join(const dbt_tokenizer *tok, const char *const *tokens, int n);

/* tokenizer_load.c helpers shared with tokenizer_json.c */
int dbt_tokenizer_add_token(dbt_tokenizer *t, const char *content, int special, int normalized,
                            int lstrip, int rstrip, int single_word, int32_t id);
int dbt_tokenizer_finish(dbt_tokenizer *t);
int dbt_tokenizer_set_vocab(dbt_tokenizer *t, char **tokens, int32_t n, char *pool);
dbt_tokenizer *dbt_tokenizer_from_json(const char *path, const dbt_tokenizer_opts *opts);
void dbt_template_bert(dbt_tokenizer *t, int32_t cls, int32_t sep);

#endif
