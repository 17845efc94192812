/* unicode.h — the character classes of Hugging Face's BERT normalizer and pre-tokenizer,
 * answered from utf8proc's Unicode tables. */
#ifndef DBT_UNICODE_H
#define DBT_UNICODE_H

#include <stdint.h>

/* White_Space property, plus \t \n \r (as Rust's char::is_whitespace, which tokenizers uses). */
int dbt_uc_is_whitespace(int32_t cp);
/* "Other" categories (Cc, Cf, Co, Cs) except \t \n \r: removed by clean_text. */
int dbt_uc_is_control(int32_t cp);
/* ASCII punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) or a Unicode P* category. */
int dbt_uc_is_punctuation(int32_t cp);
/* The CJK ideograph blocks that BERT surrounds with spaces. */
int dbt_uc_is_chinese(int32_t cp);
/* Mn: what strip_accents removes after NFD. */
int dbt_uc_is_nonspacing_mark(int32_t cp);
/* Full lowercase mapping (Rust's char::to_lowercase): writes 1 or 2 code points to out. */
int dbt_uc_lowercase(int32_t cp, int32_t out[2]);
/* Canonical decomposition (NFD of one code point, not yet reordered): returns the count
 * written to out (cap >= 4 is enough for every code point), at least 1. */
int dbt_uc_decompose(int32_t cp, int32_t *out, int cap);
/* Canonical combining class. */
int dbt_uc_combining_class(int32_t cp);

#endif
