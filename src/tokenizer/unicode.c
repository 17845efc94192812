/* unicode.c — character classes for the BERT normalizer and pre-tokenizer.
 *
 * Categories, decompositions and case mappings come from utf8proc. What is spelled out here are
 * definitions, not tables: the White_Space property (a fixed list of 25 code points that
 * utf8proc does not expose), ASCII punctuation, the CJK blocks that BERT names, and the one
 * unconditional full-lowercase mapping (U+0130) that differs from the simple mapping — plus the
 * exception lists below, where the oracle's older Unicode tables disagree with utf8proc's. */
#include "unicode.h"

#include <stddef.h>
#include <utf8proc.h>

static utf8proc_category_t category(int32_t cp) {
    return (utf8proc_category_t)utf8proc_category(cp);
}

/* ---- Where the oracle's Unicode is older than utf8proc's --------------------------------------
 *
 * tokenizers 0.20.3 (the implementation we must match) does not take these answers from Rust's
 * standard library (Unicode 15+, which it uses only for White_Space and lowercasing, and which
 * agrees with utf8proc 2.8 / Unicode 15.0 on every code point): the general categories behind
 * "control" (Cc Cf Co Cs), "punctuation" (P*) and "nonspacing mark" (Mn) come from the
 * `unicode_categories` crate, whose tables are Unicode 8.0, and NFD with its combining classes
 * comes from `unicode-normalization-alignments`, whose tables are Unicode 9.0. Characters
 * assigned after those versions are unassigned (Cn, combining class 0, no decomposition) for the
 * oracle, and a few characters changed category since (U+166D and U+111C9 were Po, U+1734 was
 * Mn, U+11938 gained a decomposition).
 *
 * Every entry below is DERIVED FROM THE ORACLE, not written from the Unicode data files:
 * `tests/oracle/make_tokenizer_fixtures.py --unicode-exceptions` asks tokenizers' own
 * BertNormalizer, NFD normalizer and BertPreTokenizer about every code point, compares the answer
 * with utf8proc's (the definitions in this file), and prints these tables. The exhaustive
 * per-code-point test in tests/test_tokenizer_oracle.py checks the result end to end. Only the
 * classes the tokenizer asks about are listed; everything else comes from utf8proc unchanged. */

typedef struct {
    int32_t lo, hi;
} uc_range;

/* Cf in Unicode 15, unassigned (so kept) for the oracle (20 code points) */
static const uc_range oracle_not_control[] = {
    {0x0890, 0x0891}, {0x08E2, 0x08E2}, {0x110CD, 0x110CD}, {0x13430, 0x1343F},
};
/* P* in Unicode 15, not punctuation for the oracle (127 code points) */
static const uc_range oracle_not_punct[] = {
    {0x061D, 0x061D}, {0x09FD, 0x09FD}, {0x0A76, 0x0A76}, {0x0C77, 0x0C77}, {0x0C84, 0x0C84},
    {0x1B7D, 0x1B7E}, {0x2E43, 0x2E4F}, {0x2E52, 0x2E5D}, {0x10EAD, 0x10EAD},
    {0x10F55, 0x10F59}, {0x10F86, 0x10F89}, {0x1144B, 0x1144F}, {0x1145A, 0x1145B},
    {0x1145D, 0x1145D}, {0x11660, 0x1166C}, {0x116B9, 0x116B9}, {0x1183B, 0x1183B},
    {0x11944, 0x11946}, {0x119E2, 0x119E2}, {0x11A3F, 0x11A46}, {0x11A9A, 0x11A9C},
    {0x11A9E, 0x11AA2}, {0x11B00, 0x11B09}, {0x11C41, 0x11C45}, {0x11C70, 0x11C71},
    {0x11EF7, 0x11EF8}, {0x11F43, 0x11F4F}, {0x11FFF, 0x11FFF}, {0x12FF1, 0x12FF2},
    {0x16E97, 0x16E9A}, {0x16FE2, 0x16FE2}, {0x1E95E, 0x1E95F},
};
/* not P* in Unicode 15, punctuation (Po) for the oracle (2 code points) */
static const uc_range oracle_punct[] = {
    {0x166D, 0x166D}, {0x111C9, 0x111C9},
};
/* Mn in Unicode 15, not stripped by the oracle (419 code points) */
static const uc_range oracle_not_mn[] = {
    {0x07FD, 0x07FD}, {0x0898, 0x089F}, {0x08CA, 0x08E1}, {0x09FE, 0x09FE}, {0x0AFA, 0x0AFF},
    {0x0B55, 0x0B55}, {0x0C04, 0x0C04}, {0x0C3C, 0x0C3C}, {0x0D00, 0x0D00}, {0x0D3B, 0x0D3C},
    {0x0D81, 0x0D81}, {0x0EBA, 0x0EBA}, {0x0ECE, 0x0ECE}, {0x180F, 0x180F}, {0x1885, 0x1886},
    {0x1ABF, 0x1ACE}, {0x1DF6, 0x1DFB}, {0xA82C, 0xA82C}, {0xA8C5, 0xA8C5}, {0xA8FF, 0xA8FF},
    {0xA9BD, 0xA9BD}, {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF},
    {0x10F46, 0x10F50}, {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x11073, 0x11074},
    {0x110C2, 0x110C2}, {0x111C9, 0x111C9}, {0x111CF, 0x111CF}, {0x1123E, 0x1123E},
    {0x11241, 0x11241}, {0x1133B, 0x1133B}, {0x11438, 0x1143F}, {0x11442, 0x11444},
    {0x11446, 0x11446}, {0x1145E, 0x1145E}, {0x1182F, 0x11837}, {0x11839, 0x1183A},
    {0x1193B, 0x1193C}, {0x1193E, 0x1193E}, {0x11943, 0x11943}, {0x119D4, 0x119D7},
    {0x119DA, 0x119DB}, {0x119E0, 0x119E0}, {0x11A01, 0x11A0A}, {0x11A33, 0x11A38},
    {0x11A3B, 0x11A3E}, {0x11A47, 0x11A47}, {0x11A51, 0x11A56}, {0x11A59, 0x11A5B},
    {0x11A8A, 0x11A96}, {0x11A98, 0x11A99}, {0x11C30, 0x11C36}, {0x11C38, 0x11C3D},
    {0x11C3F, 0x11C3F}, {0x11C92, 0x11CA7}, {0x11CAA, 0x11CB0}, {0x11CB2, 0x11CB3},
    {0x11CB5, 0x11CB6}, {0x11D31, 0x11D36}, {0x11D3A, 0x11D3A}, {0x11D3C, 0x11D3D},
    {0x11D3F, 0x11D45}, {0x11D47, 0x11D47}, {0x11D90, 0x11D91}, {0x11D95, 0x11D95},
    {0x11D97, 0x11D97}, {0x11EF3, 0x11EF4}, {0x11F00, 0x11F01}, {0x11F36, 0x11F3A},
    {0x11F40, 0x11F40}, {0x11F42, 0x11F42}, {0x13440, 0x13440}, {0x13447, 0x13455},
    {0x16F4F, 0x16F4F}, {0x16FE4, 0x16FE4}, {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46},
    {0x1E000, 0x1E006}, {0x1E008, 0x1E018}, {0x1E01B, 0x1E021}, {0x1E023, 0x1E024},
    {0x1E026, 0x1E02A}, {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE},
    {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF}, {0x1E944, 0x1E94A},
};
/* not Mn in Unicode 15, stripped (Mn) by the oracle (1 code points) */
static const uc_range oracle_mn[] = {
    {0x1734, 0x1734},
};
/* decomposes in Unicode 15, not for the oracle (1 code points) */
static const uc_range oracle_no_nfd[] = {
    {0x11938, 0x11938},
};
/* combining class > 0 in Unicode 15, 0 for the oracle (108 code points) */
static const uc_range oracle_ccc0[] = {
    {0x07FD, 0x07FD}, {0x0898, 0x089F}, {0x08CA, 0x08D3}, {0x09FE, 0x09FE}, {0x0C3C, 0x0C3C},
    {0x0D3B, 0x0D3C}, {0x0EBA, 0x0EBA}, {0x1715, 0x1715}, {0x1ABF, 0x1ACE}, {0x1DF6, 0x1DFA},
    {0xA82C, 0xA82C}, {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF},
    {0x10F46, 0x10F50}, {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x1133B, 0x1133B},
    {0x1145E, 0x1145E}, {0x11839, 0x1183A}, {0x1193D, 0x1193E}, {0x11943, 0x11943},
    {0x119E0, 0x119E0}, {0x11A34, 0x11A34}, {0x11A47, 0x11A47}, {0x11A99, 0x11A99},
    {0x11D42, 0x11D42}, {0x11D44, 0x11D45}, {0x11D97, 0x11D97}, {0x11F41, 0x11F42},
    {0x16FF0, 0x16FF1}, {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE},
    {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF},
};

static int in_ranges(const uc_range *r, size_t n, int32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}
#define IN(table, cp) in_ranges(table, sizeof table / sizeof table[0], cp)

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
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CS:
        return 1;
    case UTF8PROC_CATEGORY_CF:
        return !IN(oracle_not_control, cp);
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
        return !IN(oracle_not_punct, cp);
    default:
        return IN(oracle_punct, cp);
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
    if (cp < 0x300) return 0;
    if (category(cp) == UTF8PROC_CATEGORY_MN) return !IN(oracle_not_mn, cp);
    return IN(oracle_mn, cp);
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
    if (n <= 0 || n > cap || (n > 1 && IN(oracle_no_nfd, cp))) { out[0] = cp; return 1; }
    return (int)n;
}

int dbt_uc_combining_class(int32_t cp) {
    if (cp < 0x300) return 0;
    int ccc = utf8proc_get_property(cp)->combining_class;
    return ccc && IN(oracle_ccc0, cp) ? 0 : ccc;
}
