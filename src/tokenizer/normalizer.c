/* normalizer.c — Hugging Face's BertNormalizer, keeping for every output code point the index
 * of the input code point it came from (that is how offsets survive normalization).
 *
 * Order, as in tokenizers: clean text (drop NUL, U+FFFD and control characters; whitespace →
 * ' '), pad CJK ideographs with spaces, strip accents (NFD, then drop Mn), lowercase. */
#include <stdlib.h>

#include "../common/utf8.h"
#include "tokenizer_internal.h"
#include "unicode.h"

int dbt_nbuf_push(dbt_nbuf *b, int32_t cp, int32_t orig) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        dbt_nchar *v = realloc(b->v, cap * sizeof *v);
        if (!v) return -1;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n].cp = cp;
    b->v[b->n].orig = orig;
    b->n++;
    return 0;
}

/* Canonical ordering: within each run of non-starters, a stable sort by combining class. */
static void canonical_reorder(dbt_nchar *v, size_t n) {
    for (size_t i = 1; i < n; i++) {
        int cc = dbt_uc_combining_class(v[i].cp);
        if (cc == 0) continue;
        size_t j = i;
        while (j > 0) {
            int pc = dbt_uc_combining_class(v[j - 1].cp);
            if (pc <= cc) break;
            dbt_nchar tmp = v[j];
            v[j] = v[j - 1];
            v[j - 1] = tmp;
            j--;
        }
    }
}

int dbt_normalize(const dbt_normalizer_cfg *cfg, const int32_t *cps, int32_t n, int32_t orig_base,
                  dbt_nbuf *out) {
    out->n = 0;
    int non_ascii = 0; /* only code points >= U+0300 can have a combining class */
    for (int32_t i = 0; i < n; i++) {
        int32_t c = cps[i], orig = orig_base + i;
        if (c >= 0x20 && c < 0x7F) { /* printable ASCII: clean_text keeps it as it is */
            if (cfg->lowercase && c >= 'A' && c <= 'Z') c += 32;
            if (out->n < out->cap) {
                out->v[out->n].cp = c;
                out->v[out->n].orig = orig;
                out->n++;
            } else if (dbt_nbuf_push(out, c, orig)) {
                return -1;
            }
            continue;
        }
        if (cfg->clean_text) {
            if (c == 0 || c == DBT_REPLACEMENT_CHAR || dbt_uc_is_control(c)) continue;
            if (dbt_uc_is_whitespace(c)) c = ' ';
        }
        if (c < 0x80) { /* ASCII: nothing below can change it except lowercasing */
            if (cfg->lowercase && c >= 'A' && c <= 'Z') c += 32;
            if (dbt_nbuf_push(out, c, orig)) return -1;
            continue;
        }
        non_ascii = 1;
        int chinese = cfg->handle_chinese_chars && dbt_uc_is_chinese(c);
        if (chinese && dbt_nbuf_push(out, ' ', orig)) return -1;
        int32_t dec[8];
        int nd = 1;
        dec[0] = c;
        if (cfg->strip_accents) nd = dbt_uc_decompose(c, dec, 8);
        for (int k = 0; k < nd; k++) {
            int32_t d = dec[k];
            if (cfg->strip_accents && dbt_uc_is_nonspacing_mark(d)) continue;
            if (cfg->lowercase) {
                int32_t low[2];
                int nl = dbt_uc_lowercase(d, low);
                for (int j = 0; j < nl; j++)
                    if (dbt_nbuf_push(out, low[j], orig)) return -1;
            } else if (dbt_nbuf_push(out, d, orig)) {
                return -1;
            }
        }
        if (chinese && dbt_nbuf_push(out, ' ', orig)) return -1;
    }
    /* Reordering only matters for marks that survive (no strip_accents, or Mc/Me marks). */
    if (cfg->strip_accents && non_ascii) canonical_reorder(out->v, out->n);
    return 0;
}
