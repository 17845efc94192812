/* words.c — a text as the words a BERT tokenizer's model sees (BertNormalizer, then
 * BertPreTokenizer: dbt_pretokenize, shared with encode.c), without WordPiece: what the
 * vocabulary trainer counts. */
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/utf8.h"
#include "tokenizer_internal.h"
#include "unicode.h"

void dbt_word_scratch_free(dbt_word_scratch *s) {
    free(s->norm.v);
    free(s->cps);
    free(s->bytes);
    memset(s, 0, sizeof *s);
}

typedef struct {
    dbt_word_scratch *s;
    dbt_word_fn fn;
    void *user;
} emit_ctx;

/* Hands the word v[start..end) to the caller as UTF-8. */
static int emit(const dbt_nchar *all, size_t start, size_t end, void *ctx) {
    emit_ctx *c = ctx;
    dbt_word_scratch *s = c->s;
    const dbt_nchar *v = all + start;
    size_t n = end - start;
    if (n * 4 > s->bytes_cap) {
        size_t cap = n * 8 + 64;
        char *b = realloc(s->bytes, cap);
        if (!b) return dbt_set_error("out of memory");
        s->bytes = b;
        s->bytes_cap = cap;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].cp < 0x80) s->bytes[len++] = (char)v[i].cp;
        else len += dbt_utf8_encode(v[i].cp, s->bytes + len);
    }
    return c->fn(s->bytes, len, c->user);
}

int dbt_split_words(const dbt_normalizer_cfg *cfg, const char *text, size_t len, dbt_word_scratch *s,
                    dbt_word_fn fn, void *user) {
    if (len + 1 > s->cps_cap) {
        size_t cap = len * 2 + 64;
        int32_t *c = realloc(s->cps, cap * sizeof *c);
        if (!c) return dbt_set_error("out of memory");
        s->cps = c;
        s->cps_cap = cap;
    }
    size_t n = 0, i = 0;
    const unsigned char *u = (const unsigned char *)text;
    while (i < len) {
        if (u[i] < 0x80) s->cps[n++] = u[i++];
        else i += dbt_utf8_decode(u + i, len - i, &s->cps[n++]);
    }
    if (dbt_normalize(cfg, s->cps, (int32_t)n, 0, &s->norm)) return dbt_set_error("out of memory");
    emit_ctx c = {s, fn, user};
    return dbt_pretokenize(s->norm.v, s->norm.n, emit, &c);
}
