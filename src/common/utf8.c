/* utf8.c — a strict decoder following Unicode's Table 3-7 (well-formed byte sequences).
 * Bytes that cannot start a sequence, truncated sequences, overlongs and surrogates all become
 * U+FFFD, one per maximal subpart, so the code point count of a text is well defined. */
#include "utf8.h"

size_t dbt_utf8_decode(const unsigned char *s, size_t len, int32_t *cp) {
    unsigned char b0 = s[0];
    if (b0 < 0x80) { *cp = b0; return 1; }
    int need;        /* continuation bytes that follow */
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    int32_t c;
    if (b0 >= 0xC2 && b0 <= 0xDF) { need = 1; c = b0 & 0x1F; }
    else if (b0 == 0xE0) { need = 2; c = 0; lo = 0xA0; }
    else if (b0 >= 0xE1 && b0 <= 0xEC) { need = 2; c = b0 & 0x0F; }
    else if (b0 == 0xED) { need = 2; c = 0x0D; hi = 0x9F; }     /* no surrogates */
    else if (b0 >= 0xEE && b0 <= 0xEF) { need = 2; c = b0 & 0x0F; }
    else if (b0 == 0xF0) { need = 3; c = 0; lo = 0x90; }
    else if (b0 >= 0xF1 && b0 <= 0xF3) { need = 3; c = b0 & 0x07; }
    else if (b0 == 0xF4) { need = 3; c = 4; hi = 0x8F; }         /* <= U+10FFFF */
    else { *cp = DBT_REPLACEMENT_CHAR; return 1; }              /* 80..C1, F5..FF */
    size_t i = 1;
    for (int k = 0; k < need; k++, i++) {
        if (i >= len) { *cp = DBT_REPLACEMENT_CHAR; return i; }
        unsigned char b = s[i];
        unsigned char l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
        if (b < l || b > h) { *cp = DBT_REPLACEMENT_CHAR; return i; }
        c = (c << 6) | (b & 0x3F);
    }
    *cp = c;
    return i;
}

size_t dbt_utf8_encode(int32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = 0xC0 | (cp >> 6); o[1] = 0x80 | (cp & 0x3F); return 2; }
    if (cp < 0x10000) {
        o[0] = 0xE0 | (cp >> 12); o[1] = 0x80 | ((cp >> 6) & 0x3F); o[2] = 0x80 | (cp & 0x3F);
        return 3;
    }
    o[0] = 0xF0 | (cp >> 18); o[1] = 0x80 | ((cp >> 12) & 0x3F);
    o[2] = 0x80 | ((cp >> 6) & 0x3F); o[3] = 0x80 | (cp & 0x3F);
    return 4;
}

size_t dbt_utf8_count(const char *s, size_t len) {
    size_t n = 0, i = 0;
    int32_t cp;
    while (i < len) { i += dbt_utf8_decode((const unsigned char *)s + i, len - i, &cp); n++; }
    return n;
}
