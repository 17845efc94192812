/*
 * distilbert.h — the public face of libdistilbert.
 *
 * DistilBERT and BERT in C: a WordPiece tokenizer identical to Hugging Face's fast tokenizer,
 * and (as the project grows) the encoder, its task heads, fine-tuning and distillation.
 *
 * Conventions
 *   - Every function that can fail returns NULL or a negative number and leaves a message in
 *     dbt_last_error() (thread-local). Nothing in the library prints or exits.
 *   - Objects returned by *_load / *_new are freed by the matching *_free; NULL is accepted.
 *   - Text is UTF-8. Invalid UTF-8 never fails: each maximal ill-formed subsequence is read as
 *     one U+FFFD (the Unicode "maximal subpart" practice, as Python's errors="replace"), and
 *     U+FFFD is then removed by the BERT normalizer. Offsets count code points of that text.
 */
#ifndef DISTILBERT_H
#define DISTILBERT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DBT_VERSION "0.1.0"

/* The message of the last failure in this thread ("" if none). */
const char *dbt_last_error(void);

/* ------------------------------------------------------------------------------------------ */
/* Tokenizer: BertTokenizerFast semantics (BertNormalizer → BertPreTokenizer → WordPiece →     */
/* [CLS] A [SEP] (B [SEP]) post-processing), loaded from vocab.txt or tokenizer.json.         */
/* ------------------------------------------------------------------------------------------ */

typedef struct dbt_tokenizer dbt_tokenizer;

/* Overrides applied on top of what the files say; -1 means "as the files say". */
typedef struct {
    int lowercase;     /* do_lower_case; a bare vocab.txt defaults to 1 (uncased) */
    int strip_accents; /* -1 with lowercase unset in files: follows lowercase, like HF */
} dbt_tokenizer_opts;

/* path is one of
 *   - a model folder: tokenizer.json if present, else vocab.txt (+ tokenizer_config.json);
 *   - a tokenizer.json file;
 *   - a vocab.txt file (one token per line, id = line number).
 * opts may be NULL. */
dbt_tokenizer *dbt_tokenizer_load(const char *path, const dbt_tokenizer_opts *opts);
void dbt_tokenizer_free(dbt_tokenizer *tok);

int32_t dbt_tokenizer_vocab_size(const dbt_tokenizer *tok);  /* including added tokens */
const char *dbt_tokenizer_id_to_token(const dbt_tokenizer *tok, int32_t id); /* NULL if out of range */
int32_t dbt_tokenizer_token_to_id(const dbt_tokenizer *tok, const char *token); /* -1 if absent */
/* Ids of the special tokens, -1 when the vocabulary has none. */
typedef struct { int32_t pad, unk, cls, sep, mask; } dbt_special_ids;
dbt_special_ids dbt_tokenizer_special_ids(const dbt_tokenizer *tok);
int32_t dbt_tokenizer_model_max_length(const dbt_tokenizer *tok); /* 0 when unknown */

typedef enum {
    DBT_TRUNCATE_NONE = 0,
    DBT_TRUNCATE_LONGEST_FIRST,
    DBT_TRUNCATE_ONLY_FIRST,
    DBT_TRUNCATE_ONLY_SECOND,
} dbt_truncation;

typedef struct {
    int add_special_tokens;    /* [CLS] ... [SEP]; default 1 */
    int max_length;            /* total length including special tokens; 0 = unlimited */
    int stride;                /* tokens shared by consecutive overflow windows */
    dbt_truncation truncation; /* used when max_length > 0 */
    int return_overflowing;    /* 1: also return the windows past the first */
} dbt_encode_opts;

/* The defaults: add special tokens, no truncation, unless tok (may be NULL) was loaded from a
 * tokenizer.json that sets truncation. */
dbt_encode_opts dbt_encode_opts_default(const dbt_tokenizer *tok);

/* One encoded sequence (or window). All arrays have n entries and live in one allocation. */
typedef struct {
    int32_t n;
    int32_t *ids;
    int32_t *type_ids;
    int32_t *attention_mask;
    int32_t *special_tokens_mask;
    int32_t *word_ids;     /* word index within its sequence, -1 for special/padding tokens */
    int32_t *sequence_ids; /* 0 or 1, -1 for special/padding tokens */
    int32_t *offsets;      /* 2n: [start, end) in code points of the token's own input text */
} dbt_encoding;

/* Encodes text (and pair, if not NULL). Returns the number of windows (1 + overflow windows)
 * and stores a malloc'd array of them in *out, or -1 on error (e.g. stride >= room left). */
int dbt_encode(const dbt_tokenizer *tok, const char *text, size_t text_len, const char *pair,
               size_t pair_len, const dbt_encode_opts *opts, dbt_encoding **out);
void dbt_encodings_free(dbt_encoding *encs, int n);

/* Pads each encoding to `length` (0: to the longest of the batch) with [PAD], type id 0,
 * mask 0, offsets (0,0), on the right. Returns 0, or -1 on allocation failure. */
int dbt_encodings_pad(const dbt_tokenizer *tok, dbt_encoding *encs, int n, int length);

/* Ids → text like HF's decode: WordPiece "##" joining, optional removal of special tokens and
 * clean_up_tokenization_spaces. Returns a malloc'd string, or NULL if an id is out of range. */
char *dbt_decode(const dbt_tokenizer *tok, const int32_t *ids, int n, int skip_special_tokens,
                 int clean_up_tokenization_spaces);

#ifdef __cplusplus
}
#endif
#endif /* DISTILBERT_H */
