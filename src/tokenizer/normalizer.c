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

/* One run [s, e) of two or more non-starters: a stable sort of the code points by combining
 * class, with the offsets handed out as tokenizers' NFD hands them out. Its decomposer sorts
 * (character, change) pairs, change 0 for a character that replaces the next input character and
 * 1 for the extra pieces of a decomposition; alignments are then given in output order: a
 * change-0 character takes the alignment of the next input character, a change-1 character that of
 * the last input character taken. So the offsets stay in place while the marks move. Pieces of one
 * decomposition share their input character's index, which tells the extra pieces apart. */
static int reorder_run(dbt_nchar *v, size_t s, size_t e) {
    typedef struct {
        int32_t cp, orig; /* orig: -1 for an extra piece of a decomposition */
        int ccc;
    } mark;
    mark small[32], *m = small;
    int32_t small_origs[32], *origs = small_origs;
    size_t r = e - s, n_origs = 0;
    if (r > 32) {
        m = malloc(r * sizeof *m);
        origs = malloc(r * sizeof *origs);
        if (!m || !origs) {
            free(m);
            free(origs);
            return -1;
        }
    }
    for (size_t k = 0; k < r; k++) {
        const dbt_nchar *x = &v[s + k];
        int extra = s + k > 0 && x[-1].orig == x->orig;
        m[k].cp = x->cp;
        m[k].orig = extra ? -1 : x->orig;
        m[k].ccc = dbt_uc_combining_class(x->cp);
        if (!extra) origs[n_origs++] = x->orig;
    }
    if (m == small) { /* stable insertion sort: runs are short */
        for (size_t k = 1; k < r; k++) {
            mark t = m[k];
            size_t j = k;
            while (j > 0 && m[j - 1].ccc > t.ccc) {
                m[j] = m[j - 1];
                j--;
            }
            m[j] = t;
        }
    } else { /* a long run (hostile text): stable counting sort, linear */
        mark *sorted = malloc(r * sizeof *sorted);
        if (!sorted) {
            free(m);
            free(origs);
            return -1;
        }
        size_t start[257] = {0};
        for (size_t k = 0; k < r; k++) start[m[k].ccc + 1]++;
        for (int c = 1; c < 257; c++) start[c] += start[c - 1];
        for (size_t k = 0; k < r; k++) sorted[start[m[k].ccc]++] = m[k];
        free(m);
        m = sorted;
    }
    int32_t last = s > 0 ? v[s - 1].orig : (n_origs ? origs[0] : 0);
    size_t taken = 0;
    for (size_t k = 0; k < r; k++) {
        if (m[k].orig >= 0) last = origs[taken++];
        v[s + k].cp = m[k].cp;
        v[s + k].orig = last;
    }
    if (m != small) {
        free(m);
        free(origs);
    }
    return 0;
}

/* Canonical ordering: within each run of non-starters, a stable sort by combining class. */
static int canonical_reorder(dbt_nchar *v, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (v[i].cp < 0x300 || dbt_uc_combining_class(v[i].cp) == 0) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < n && v[i].cp >= 0x300 && dbt_uc_combining_class(v[i].cp) != 0) i++;
        if (i - s >= 2 && reorder_run(v, s, i)) return -1;
    }
    return 0;
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
        if (cfg->strip_accents) { /* NFD now; marks go after the canonical reordering */
            nd = dbt_uc_decompose(c, dec, 8);
            for (int k = 0; k < nd; k++)
                if (dbt_nbuf_push(out, dec[k], orig)) return -1;
            if (chinese && dbt_nbuf_push(out, ' ', orig)) return -1;
            continue;
        }
        for (int k = 0; k < nd; k++) {
            int32_t d = dec[k];
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
    /* strip_accents, as tokenizers does it: NFD of the whole text (decomposition above, then the
     * canonical reordering), then drop Mn, then lowercase. Marks must go after the reordering:
     * an Mn of class 0 between two marks that survive (Mc, or Mn that the oracle does not know)
     * keeps them apart, so dropping it first could let them swap. */
    if (cfg->strip_accents && non_ascii) {
        if (canonical_reorder(out->v, out->n)) return -1;
        size_t w = 0;
        for (size_t r = 0; r < out->n; r++) {
            dbt_nchar x = out->v[r];
            if (x.cp >= 0x80) {
                if (dbt_uc_is_nonspacing_mark(x.cp)) continue;
                /* Lowercasing is one-to-one here: U+0130, the only code point whose full
                 * lowercase is two, has been decomposed. */
                if (cfg->lowercase) {
                    int32_t low[2];
                    dbt_uc_lowercase(x.cp, low);
                    x.cp = low[0];
                }
            } else if (cfg->lowercase && x.cp >= 'A' && x.cp <= 'Z') { /* from a decomposition */
                x.cp += 32;
            }
            out->v[w++] = x;
        }
        out->n = w;
    }
    return 0;
}
