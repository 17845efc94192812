/* unicode.c — character classes for the BERT normalizer and pre-tokenizer.
 *
 * Categories, decompositions and case mappings come from utf8proc. What is spelled out here are
 * definitions, not tables: the White_Space property (a fixed list of 25 code points that
 * utf8proc does not expose), ASCII punctuation, the CJK blocks that BERT names, and the one
 * unconditional full-lowercase mapping (U+0130) that differs from the simple mapping. */
#include "unicode.h"

#include <utf8proc.h>

static utf8proc_category_t category(int32_t cp) {
    return (utf8proc_category_t)utf8proc_category(cp);
}

int dbt_uc_is_whitespace(int32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return 1;
    if (cp < 0x85) return 0;
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

int dbt_uc_is_control(int32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return 0;
    if (cp < 0x20 || cp == 0x7F) return 1;
    if (cp < 0x80) return 0;
    switch (category(cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CS:
        return 1;
    default:
        return 0;
    }
}

int dbt_uc_is_punctuation(int32_t cp) {
    if (cp < 0x80)
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
               (cp >= 123 && cp <= 126);
    switch (category(cp)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return 1;
    default:
        return 0;
    }
}

/* The blocks as tokenizers' BertNormalizer lists them (its Extension E range starts at
 * 0x2B920, not 0x2B820 as in Google's BERT; we follow the implementation we must match). */
int dbt_uc_is_chinese(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

int dbt_uc_is_nonspacing_mark(int32_t cp) {
    return cp >= 0x300 && category(cp) == UTF8PROC_CATEGORY_MN;
}

int dbt_uc_lowercase(int32_t cp, int32_t out[2]) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    if (cp == 0x130) { /* LATIN CAPITAL LETTER I WITH DOT ABOVE → i + COMBINING DOT ABOVE */
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    out[0] = utf8proc_tolower(cp);
    return 1;
}

int dbt_uc_decompose(int32_t cp, int32_t *out, int cap) {
    if (cp < 0xC0) { out[0] = cp; return 1; } /* nothing below U+00C0 decomposes canonically */
    int last_boundclass = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(cp, out, cap, UTF8PROC_DECOMPOSE,
                                                 &last_boundclass);
    if (n <= 0 || n > cap) { out[0] = cp; return 1; }
    return (int)n;
}

int dbt_uc_combining_class(int32_t cp) {
    if (cp < 0x300) return 0;
    return utf8proc_get_property(cp)->combining_class;
}
