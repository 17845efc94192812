/* utf8.h — UTF-8 decoding that never fails, and encoding. */
#ifndef DBT_UTF8_H
#define DBT_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define DBT_REPLACEMENT_CHAR 0xFFFD

/* Decodes one code point at s[0..len) (len >= 1). Ill-formed input yields U+FFFD and consumes
 * the maximal subpart of the ill-formed sequence (at least one byte), as Unicode §3.9 and
 * Python's errors="replace" do. Returns the number of bytes consumed. */
size_t dbt_utf8_decode(const unsigned char *s, size_t len, int32_t *cp);

/* Encodes cp (must be a valid scalar value) into out[0..4). Returns the byte count. */
size_t dbt_utf8_encode(int32_t cp, char *out);

/* Number of code points in s[0..len) as dbt_utf8_decode counts them. */
size_t dbt_utf8_count(const char *s, size_t len);

#endif
