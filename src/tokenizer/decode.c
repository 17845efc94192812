/* decode.c — ids → text, as transformers' decode does for BERT's fast tokenizer: the WordPiece
 * decoder (pieces joined by spaces, "##" glued to the previous piece, with its per-token
 * cleanup), then clean_up_tokenization over the whole string when asked. */
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "tokenizer_internal.h"

typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

static int sb_put(strbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p) return -1;
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

/* Replaces every occurrence of `from` by `to` (to is never longer), in place. */
static void replace_all(char *s, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to);
    char *r = s, *w = s;
    while (*r) {
        if (strncmp(r, from, fl) == 0) {
            memcpy(w, to, tl);
            w += tl;
            r += fl;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* The contractions and punctuation that English detokenization glues back. `do_not` is part of
 * the WordPiece decoder's list but not of transformers' clean_up_tokenization. */
static void cleanup(char *s, int do_not) {
    replace_all(s, " .", ".");
    replace_all(s, " ?", "?");
    replace_all(s, " !", "!");
    replace_all(s, " ,", ",");
    replace_all(s, " ' ", "'");
    replace_all(s, " n't", "n't");
    replace_all(s, " 'm", "'m");
    if (do_not) replace_all(s, " do not", " don't");
    replace_all(s, " 's", "'s");
    replace_all(s, " 've", "'ve");
    replace_all(s, " 're", "'re");
}

char *dbt_wordpiece_join(const dbt_tokenizer *tok, const char *const *tokens, int n) {
    strbuf out = {0};
    char *piece = NULL;
    size_t piece_cap = 0;
    if (sb_put(&out, "", 0)) goto oom;
    for (int i = 0; i < n; i++) {
        const char *t = tokens[i];
        size_t tl = strlen(t);
        if (tl + 2 > piece_cap) {
            piece_cap = tl + 64;
            char *p = realloc(piece, piece_cap);
            if (!p) goto oom;
            piece = p;
        }
        /* starts_with(prefix) holds for an empty prefix too: then no token gets a space */
        if (i > 0 && strncmp(t, tok->prefix, (size_t)tok->prefix_len) == 0) {
            strcpy(piece, t + tok->prefix_len);
        } else if (i > 0) {
            piece[0] = ' ';
            strcpy(piece + 1, t);
        } else {
            strcpy(piece, t);
        }
        cleanup(piece, 1);
        if (sb_put(&out, piece, strlen(piece))) goto oom;
    }
    free(piece);
    return out.s;
oom:
    free(out.s);
    free(piece);
    dbt_set_error("out of memory");
    return NULL;
}

char *dbt_decode(const dbt_tokenizer *tok, const int32_t *ids, int n, int skip_special_tokens,
                 int clean_up_tokenization_spaces) {
    const char **tokens = malloc((size_t)(n > 0 ? n : 1) * sizeof *tokens);
    if (!tokens) { dbt_set_error("out of memory"); return NULL; }
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *t = dbt_tokenizer_id_to_token(tok, ids[i]);
        if (!t) {
            free(tokens);
            dbt_set_error("id %d is outside the vocabulary (size %d)", ids[i], tok->n_vocab);
            return NULL;
        }
        if (!(skip_special_tokens && tok->is_special[ids[i]])) tokens[k++] = t;
    }
    char *s = dbt_wordpiece_join(tok, tokens, k);
    free(tokens);
    if (s && clean_up_tokenization_spaces) cleanup(s, 0);
    return s;
}
