/* encode.c — text → ids, offsets, word ids: added-token splitting, pre-tokenization, WordPiece,
 * truncation with overflow windows, and the [CLS] A [SEP] B [SEP] template.
 *
 * Offsets are code-point offsets into each sequence's own text (the Python binding of
 * tokenizers reports character offsets, and so do we). */
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/utf8.h"
#include "tokenizer_internal.h"
#include "unicode.h"

/* The tokens of one sequence before truncation and special tokens. */
typedef struct {
    int32_t *ids, *word_ids, *offsets; /* offsets: 2 per token */
    int32_t n, cap;
} token_list;

/* Per-call working memory, reused across the sequences and words of one dbt_encode call. */
typedef struct {
    dbt_nbuf norm;     /* a normalized segment */
    char *bytes;       /* UTF-8 of the current word, after `prefix_len` bytes of slack */
    int32_t *char_at;  /* byte offset of each code point of the word, plus the end */
    size_t cap;        /* code points that bytes/char_at can hold */
} scratch;

static int tokens_push(token_list *t, int32_t id, int32_t word, int32_t start, int32_t end) {
    if (t->n == t->cap) {
        int32_t cap = t->cap ? t->cap * 2 : 64;
        int32_t *ids = realloc(t->ids, (size_t)cap * sizeof *ids);
        if (!ids) return -1;
        t->ids = ids;
        int32_t *w = realloc(t->word_ids, (size_t)cap * sizeof *w);
        if (!w) return -1;
        t->word_ids = w;
        int32_t *o = realloc(t->offsets, (size_t)cap * 2 * sizeof *o);
        if (!o) return -1;
        t->offsets = o;
        t->cap = cap;
    }
    t->ids[t->n] = id;
    t->word_ids[t->n] = word;
    t->offsets[2 * t->n] = start;
    t->offsets[2 * t->n + 1] = end;
    t->n++;
    return 0;
}

static void tokens_free(token_list *t) {
    free(t->ids);
    free(t->word_ids);
    free(t->offsets);
}

static int scratch_reserve(scratch *s, size_t chars) {
    if (chars <= s->cap) return 0;
    size_t cap = chars * 2 + 64;
    char *b = realloc(s->bytes, cap * 4 + 32);
    if (!b) return -1;
    s->bytes = b;
    int32_t *c = realloc(s->char_at, (cap + 1) * sizeof *c);
    if (!c) return -1;
    s->char_at = c;
    s->cap = cap;
    return 0;
}

/* ---- WordPiece ------------------------------------------------------------------------- */

/* Greedy longest-match-first over one word w[0..n): each piece is the longest vocabulary entry
 * that starts where the previous one ended ("##"-prefixed after the first). A word with a part
 * that matches nothing, or longer than max_input_chars_per_word, becomes a single [UNK]. */
static int wordpiece(const dbt_tokenizer *tok, const dbt_nchar *w, int32_t n, int32_t word_id,
                     scratch *s, token_list *out) {
    if (n == 0) return 0;
    if (n > tok->max_input_chars_per_word) {
        if (tok->unk_id < 0) return dbt_set_error("WordPiece: the vocabulary has no unk token");
        return tokens_push(out, tok->unk_id, word_id, w[0].orig, w[n - 1].orig + 1);
    }
    if (scratch_reserve(s, (size_t)n)) return dbt_set_error("out of memory");
    const int pl = tok->prefix_len;
    char *bytes = s->bytes + pl; /* slack before the word lets us write "##" in front of a piece */
    int32_t *at = s->char_at;
    int32_t len = 0;
    for (int32_t i = 0; i < n; i++) {
        at[i] = len;
        if (w[i].cp < 0x80) bytes[len++] = (char)w[i].cp;
        else len += (int32_t)dbt_utf8_encode(w[i].cp, bytes + len);
    }
    at[n] = len;

    int32_t first = out->n, start = 0;
    while (start < n) {
        const int prefixed = start > 0;
        int32_t end = n, id = -1;
        /* Skip candidates longer than any vocabulary entry. */
        while (end > start && at[end] - at[start] + (prefixed ? pl : 0) > tok->max_key_len) end--;
        const char *key = bytes + at[start];
        if (prefixed) {
            key -= pl;
            memcpy((char *)key, tok->prefix, (size_t)pl); /* overwrites consumed bytes only */
        }
        for (; end > start; end--) {
            size_t klen = (size_t)(at[end] - at[start]) + (prefixed ? (size_t)pl : 0);
            id = dbt_strmap_get(&tok->model_vocab, key, klen);
            if (id >= 0) break;
        }
        if (id < 0) { /* no piece fits: the whole word is unknown */
            out->n = first;
            if (tok->unk_id < 0) return dbt_set_error("WordPiece: the vocabulary has no unk token");
            return tokens_push(out, tok->unk_id, word_id, w[0].orig, w[n - 1].orig + 1);
        }
        if (tokens_push(out, id, word_id, w[start].orig, w[end - 1].orig + 1))
            return dbt_set_error("out of memory");
        start = end;
    }
    return 0;
}

/* ---- pre-tokenization ------------------------------------------------------------------ */

int dbt_pretokenize(const dbt_nchar *v, size_t n, dbt_span_fn fn, void *user) {
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        int boundary = i == n, punct = 0;
        if (!boundary) {
            int32_t c = v[i].cp;
            if (c < 0x80) { /* ASCII letters and digits: the common case, no calls */
                if ((c | 32) >= 'a' && (c | 32) <= 'z') continue;
                if (c >= '0' && c <= '9') continue;
            }
            if (dbt_uc_is_whitespace(c)) boundary = 1;
            else if (dbt_uc_is_punctuation(c)) boundary = punct = 1;
        }
        if (!boundary) continue;
        int rc;
        if (i > start && (rc = fn(v, start, i, user)) != 0) return rc;
        if (punct && (rc = fn(v, i, i + 1, user)) != 0) return rc;
        start = i + 1;
    }
    return 0;
}

typedef struct {
    const dbt_tokenizer *tok;
    int32_t *word_id;
    scratch *s;
    token_list *out;
} wordpiece_ctx;

static int wordpiece_span(const dbt_nchar *v, size_t start, size_t end, void *user) {
    wordpiece_ctx *c = user;
    return wordpiece(c->tok, v + start, (int32_t)(end - start), (*c->word_id)++, c->s, c->out);
}

/* Pre-tokenizes (when the tokenizer has BertPreTokenizer) and runs WordPiece on each word; every
 * word gets the next word id. */
static int pretokenize_and_wordpiece(const dbt_tokenizer *tok, const dbt_nchar *v, size_t n,
                                     int32_t *word_id, scratch *s, token_list *out) {
    if (!tok->has_pretokenizer) {
        if (n == 0) return 0;
        return wordpiece(tok, v, (int32_t)n, (*word_id)++, s, out);
    }
    wordpiece_ctx c = {tok, word_id, s, out};
    return dbt_pretokenize(v, n, wordpiece_span, &c);
}

/* ---- added tokens ---------------------------------------------------------------------- */

static int is_word_char(int32_t c) {
    return c == '_' || (c < 0x80 ? ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9')
                                  : !dbt_uc_is_whitespace(c) && !dbt_uc_is_punctuation(c));
}

/* Finds the leftmost, then longest, added token (of the `normalized` kind) in c[from..n).
 * Returns its index in tok->added and the matched range (after lstrip/rstrip), or -1. */
static int find_added(const dbt_tokenizer *tok, int normalized, const int32_t *c, size_t stride,
                      size_t from, size_t n, size_t *m_start, size_t *m_end) {
#define CP(i) (c[(i) * stride])
    /* Fast rejection: the distinct first code points of the tokens of this kind (BERT: only
     * '[' for the raw kind, none at all for the normalized kind). */
    int32_t firsts[8];
    int n_firsts = 0, many = 0;
    for (int k = 0; k < tok->n_added && !many; k++) {
        const dbt_added_token *a = &tok->added[k];
        if (a->normalized != normalized || a->n_cps == 0) continue;
        int f = 0;
        while (f < n_firsts && firsts[f] != a->cps[0]) f++;
        if (f < n_firsts) continue;
        if (n_firsts == 8) many = 1;
        else firsts[n_firsts++] = a->cps[0];
    }
    if (n_firsts == 0) return -1;
    for (size_t i = from; i < n; i++) {
        if (!many) {
            int32_t ci = CP(i);
            int f = 0;
            while (f < n_firsts && firsts[f] != ci) f++;
            if (f == n_firsts) continue;
        }
        int best = -1;
        size_t best_len = 0;
        for (int k = 0; k < tok->n_added; k++) {
            const dbt_added_token *a = &tok->added[k];
            if (a->normalized != normalized || a->n_cps == 0 || (size_t)a->n_cps > n - i) continue;
            if (CP(i) != a->cps[0] || (size_t)a->n_cps <= best_len) continue;
            int32_t j = 1;
            while (j < a->n_cps && CP(i + (size_t)j) == a->cps[j]) j++;
            if (j < a->n_cps) continue;
            if (a->single_word) {
                size_t e = i + (size_t)a->n_cps;
                if ((i > 0 && is_word_char(CP(i - 1))) || (e < n && is_word_char(CP(e)))) continue;
            }
            best = k;
            best_len = (size_t)a->n_cps;
        }
        if (best >= 0) {
            const dbt_added_token *a = &tok->added[best];
            size_t s = i, e = i + best_len;
            if (a->lstrip)
                while (s > from && dbt_uc_is_whitespace(CP(s - 1))) s--;
            if (a->rstrip)
                while (e < n && dbt_uc_is_whitespace(CP(e))) e++;
            *m_start = s;
            *m_end = e;
            return best;
        }
    }
#undef CP
    return -1;
}

/* Normalizes one stretch of raw text, splits it on normalized added tokens, and tokenizes. */
static int encode_segment(const dbt_tokenizer *tok, const int32_t *cps, int32_t n, int32_t base,
                          int32_t *word_id, scratch *s, token_list *out) {
    dbt_nbuf *nb = &s->norm;
    if (tok->has_normalizer) {
        if (dbt_normalize(&tok->norm, cps, n, base, nb)) return dbt_set_error("out of memory");
    } else {
        nb->n = 0;
        for (int32_t i = 0; i < n; i++)
            if (dbt_nbuf_push(nb, cps[i], base + i)) return dbt_set_error("out of memory");
    }
    if (nb->n == 0) return 0;
    size_t pos = 0;
    for (;;) {
        size_t ms = nb->n, me = nb->n;
        int k = find_added(tok, 1, &nb->v[0].cp, 2, pos, nb->n, &ms, &me);
        if (pretokenize_and_wordpiece(tok, nb->v + pos, (k >= 0 ? ms : nb->n) - pos, word_id, s,
                                      out))
            return -1;
        if (k < 0) break;
        if (tokens_push(out, tok->added[k].id, (*word_id)++, nb->v[ms].orig, nb->v[me - 1].orig + 1))
            return dbt_set_error("out of memory");
        pos = me;
    }
    return 0;
}

/* Tokenizes one whole sequence: splits on raw added tokens, then encodes what lies between. */
static int encode_sequence(const dbt_tokenizer *tok, const int32_t *cps, size_t n, scratch *s,
                           token_list *out) {
    int32_t word_id = 0;
    size_t pos = 0;
    for (;;) {
        size_t ms = n, me = n;
        int k = find_added(tok, 0, cps, 1, pos, n, &ms, &me);
        size_t seg_end = k >= 0 ? ms : n;
        if (seg_end > pos &&
            encode_segment(tok, cps + pos, (int32_t)(seg_end - pos), (int32_t)pos, &word_id, s, out))
            return -1;
        if (k < 0) break;
        if (tokens_push(out, tok->added[k].id, word_id++, (int32_t)ms, (int32_t)me))
            return dbt_set_error("out of memory");
        pos = me;
    }
    return 0;
}

static int32_t *decode_text(const char *text, size_t len, size_t *n_out) {
    int32_t *cps = malloc((len + 1) * sizeof *cps);
    if (!cps) return NULL;
    size_t n = 0, i = 0;
    const unsigned char *u = (const unsigned char *)text;
    while (i < len) {
        if (u[i] < 0x80) cps[n++] = u[i++]; /* ASCII needs no decoder */
        else i += dbt_utf8_decode(u + i, len - i, &cps[n++]);
    }
    *n_out = n;
    return cps;
}

/* ---- truncation ------------------------------------------------------------------------ */

typedef struct { int32_t start, end; } span;

/* Cuts [0, n) into windows of at most max_len tokens, consecutive windows sharing `stride`
 * tokens, as tokenizers' Encoding::truncate does. Returns the count (>= 1) or -1. */
static int windows(int32_t n, int32_t max_len, int32_t stride, span **out) {
    if (max_len >= n) {
        *out = malloc(sizeof **out);
        if (!*out) return dbt_set_error("out of memory");
        (*out)[0] = (span){0, n};
        return 1;
    }
    if (max_len == 0) { /* everything overflows: an empty window, then the whole sequence */
        *out = malloc(2 * sizeof **out);
        if (!*out) return dbt_set_error("out of memory");
        (*out)[0] = (span){0, 0};
        (*out)[1] = (span){0, n};
        return 2;
    }
    if (stride >= max_len)
        return dbt_set_error("stride (%d) must be smaller than the tokens left for the sequence "
                             "after truncation (%d)", stride, max_len);
    int32_t step = max_len - stride, count = 0;
    *out = malloc(((size_t)(n / step) + 2) * sizeof **out);
    if (!*out) return dbt_set_error("out of memory");
    for (int32_t start = 0;; start += step) {
        int32_t stop = start + max_len < n ? start + max_len : n;
        (*out)[count++] = (span){start, stop};
        if (stop == n) break;
    }
    return count;
}

/* ---- assembly -------------------------------------------------------------------------- */

static dbt_encoding alloc_encoding(int32_t n) {
    dbt_encoding e = {0};
    int32_t *block = calloc((size_t)(n > 0 ? n : 1) * 8, sizeof *block);
    if (!block) return e;
    e.n = n;
    e.ids = block;
    e.type_ids = block + n;
    e.attention_mask = block + 2 * (size_t)n;
    e.special_tokens_mask = block + 3 * (size_t)n;
    e.word_ids = block + 4 * (size_t)n;
    e.sequence_ids = block + 5 * (size_t)n;
    e.offsets = block + 6 * (size_t)n;
    return e;
}

/* Lays out one window: the template's special tokens around slices a (and b) of the lists. */
static int assemble(const dbt_tokenizer *tok, const dbt_encode_opts *o, const token_list *la,
                    span a, const token_list *lb, span b, dbt_encoding *out) {
    const token_list *lists[2] = {la, lb};
    span spans[2] = {a, b};
    const int is_pair = lb != NULL;
    dbt_template fallback = {0};
    dbt_template_piece fb[2] = {{1, 0, 0, 0}, {1, 1, 0, 1}};
    fallback.pieces = fb;
    fallback.n = is_pair ? 2 : 1;
    const dbt_template *t = tok->has_post ? (is_pair ? &tok->pair : &tok->single) : &fallback;

    int32_t n = 0;
    for (int p = 0; p < t->n; p++) {
        const dbt_template_piece *pc = &t->pieces[p];
        if (pc->is_sequence) n += spans[pc->seq].end - spans[pc->seq].start;
        else if (o->add_special_tokens) n++;
    }
    *out = alloc_encoding(n);
    if (!out->ids) return dbt_set_error("out of memory");
    int32_t k = 0;
    for (int p = 0; p < t->n; p++) {
        const dbt_template_piece *pc = &t->pieces[p];
        if (!pc->is_sequence) {
            if (!o->add_special_tokens) continue;
            out->ids[k] = pc->id;
            out->type_ids[k] = pc->type_id;
            out->attention_mask[k] = 1;
            out->special_tokens_mask[k] = 1;
            out->word_ids[k] = out->sequence_ids[k] = -1;
            out->offsets[2 * k] = out->offsets[2 * k + 1] = 0;
            k++;
            continue;
        }
        const token_list *l = lists[pc->seq];
        for (int32_t i = spans[pc->seq].start; i < spans[pc->seq].end; i++, k++) {
            out->ids[k] = l->ids[i];
            out->type_ids[k] = pc->type_id;
            out->attention_mask[k] = 1;
            out->special_tokens_mask[k] = 0;
            out->word_ids[k] = l->word_ids[i];
            out->sequence_ids[k] = pc->seq;
            out->offsets[2 * k] = l->offsets[2 * i];
            out->offsets[2 * k + 1] = l->offsets[2 * i + 1];
        }
    }
    return 0;
}

dbt_encode_opts dbt_encode_opts_default(const dbt_tokenizer *tok) {
    dbt_encode_opts o = {1, 0, 0, DBT_TRUNCATE_LONGEST_FIRST, 0};
    if (tok && tok->trunc_max_length > 0) {
        o.max_length = tok->trunc_max_length;
        o.stride = tok->trunc_stride;
        o.truncation = tok->trunc_strategy;
    }
    return o;
}

static int n_special_tokens(const dbt_tokenizer *tok, int is_pair) {
    if (!tok->has_post) return 0;
    const dbt_template *t = is_pair ? &tok->pair : &tok->single;
    int n = 0;
    for (int p = 0; p < t->n; p++) n += !t->pieces[p].is_sequence;
    return n;
}

int dbt_encode(const dbt_tokenizer *tok, const char *text, size_t text_len, const char *pair,
               size_t pair_len, const dbt_encode_opts *opts, dbt_encoding **out) {
    dbt_encode_opts o = opts ? *opts : dbt_encode_opts_default(tok);
    *out = NULL;
    if (!text) return dbt_set_error("dbt_encode: text is NULL");
    if (o.max_length < 0 || o.stride < 0) return dbt_set_error("max_length and stride must be >= 0");
    /* An empty second text is no second text: transformers' tokenizer(a, "") encodes a alone
     * ([CLS] a [SEP], all type ids 0), as it only pairs when `if text_pair` holds. */
    if (pair && pair_len == 0) pair = NULL;
    const int is_pair = pair != NULL;
    if (o.max_length > 0 && o.truncation != DBT_TRUNCATE_NONE) {
        /* What tokenizers checks when truncation is set, before any text: the stride must fit in
         * max_length less the special tokens of a single sequence (even for pairs, even without
         * special tokens; no check when those do not fit, as the subtraction wraps around). */
        int32_t room = o.max_length - n_special_tokens(tok, 0);
        if (room >= 0 && o.stride > room)
            return dbt_set_error("stride (%d) is larger than max_length (%d) less the %d special "
                                 "tokens", o.stride, o.max_length, n_special_tokens(tok, 0));
    }
    token_list lists[2] = {{0}};
    scratch s = {0};
    span *wa = NULL, *wb = NULL;
    dbt_encoding *encs = NULL;
    int n_out = -1;

    const char *texts[2] = {text, pair};
    size_t lens[2] = {text_len, pair_len};
    for (int q = 0; q < 1 + is_pair; q++) {
        size_t n;
        int32_t *cps = decode_text(texts[q], lens[q], &n);
        if (!cps) { dbt_set_error("out of memory"); goto done; }
        int rc = encode_sequence(tok, cps, n, &s, &lists[q]);
        free(cps);
        if (rc) goto done;
    }

    /* Truncation: how many tokens each sequence keeps, then its windows. */
    int32_t na = lists[0].n, nb = is_pair ? lists[1].n : 0;
    int32_t keep_a = na, keep_b = nb;
    /* tokenizers subtracts the special tokens from max_length in unsigned arithmetic: when they
     * do not fit, the difference wraps around and nothing is truncated. We do the same. */
    int32_t specials = o.add_special_tokens ? n_special_tokens(tok, is_pair) : 0;
    if (o.max_length > 0 && o.truncation != DBT_TRUNCATE_NONE && o.max_length >= specials) {
        int32_t max_len = o.max_length - specials;
        if (max_len == 0) { /* tokenizers: everything overflows, whatever the strategy */
            keep_a = keep_b = 0;
        } else if (na + nb > max_len) {
            int32_t to_remove = na + nb - max_len;
            if (o.truncation == DBT_TRUNCATE_LONGEST_FIRST) {
                if (is_pair) { /* tokenizers' rule: the shorter keeps what it can, at least half */
                    int32_t n1 = na < nb ? na : nb, n2;
                    n2 = n1 > max_len ? n1 : (n1 > max_len - n1 ? n1 : max_len - n1);
                    if (n1 + n2 > max_len) { n1 = max_len / 2; n2 = n1 + max_len % 2; }
                    if (na > nb) { keep_a = n2; keep_b = n1; } else { keep_a = n1; keep_b = n2; }
                    if (keep_a > na) keep_a = na;
                    if (keep_b > nb) keep_b = nb;
                } else {
                    keep_a = max_len;
                }
            } else {
                int first = o.truncation == DBT_TRUNCATE_ONLY_FIRST;
                if (!first && !is_pair) {
                    dbt_set_error("truncation only_second needs a pair of sequences");
                    goto done;
                }
                int32_t target = first ? na : nb;
                if (target <= to_remove) {
                    dbt_set_error("the %s sequence (%d tokens) is too short to remove %d tokens and "
                                  "fit max_length %d", first ? "first" : "second", target, to_remove,
                                  o.max_length);
                    goto done;
                }
                if (first) keep_a = na - to_remove; else keep_b = nb - to_remove;
            }
        }
    }
    int n_a = windows(na, keep_a, o.stride, &wa);
    if (n_a < 0) goto done;
    int n_b = 1;
    if (is_pair) {
        n_b = windows(nb, keep_b, o.stride, &wb);
        if (n_b < 0) goto done;
    }

    /* Window order, as tokenizers merges overflows: the main pair; then each overflow of A with
     * B's main part and with each overflow of B; then A's main part with each overflow of B. */
    int total = o.return_overflowing ? n_a * n_b : 1;
    encs = calloc((size_t)total, sizeof *encs);
    if (!encs) { dbt_set_error("out of memory"); goto done; }
    int k = 0;
    const token_list *lb = is_pair ? &lists[1] : NULL;
    span b0 = is_pair ? wb[0] : (span){0, 0};
    if (assemble(tok, &o, &lists[0], wa[0], lb, b0, &encs[k++])) goto done;
    if (o.return_overflowing) {
        for (int i = 1; i < n_a; i++)
            for (int j = 0; j < n_b; j++)
                if (assemble(tok, &o, &lists[0], wa[i], lb, is_pair ? wb[j] : b0, &encs[k++]))
                    goto done;
        for (int j = 1; j < n_b; j++)
            if (assemble(tok, &o, &lists[0], wa[0], lb, wb[j], &encs[k++])) goto done;
    }
    n_out = k;
    *out = encs;
    encs = NULL;
done:
    if (encs) dbt_encodings_free(encs, total);
    free(wa);
    free(wb);
    tokens_free(&lists[0]);
    tokens_free(&lists[1]);
    free(s.norm.v);
    free(s.bytes);
    free(s.char_at);
    return n_out;
}

void dbt_encodings_free(dbt_encoding *encs, int n) {
    if (!encs) return;
    for (int i = 0; i < n; i++) free(encs[i].ids);
    free(encs);
}

dbt_pad_opts dbt_pad_opts_default(const dbt_tokenizer *tok) {
    dbt_pad_opts o = {0, 0, 0};
    return tok ? tok->pad_default : o;
}

int dbt_tokenizer_pads_by_default(const dbt_tokenizer *tok) { return tok && tok->pad_enabled; }

int dbt_encodings_pad(const dbt_tokenizer *tok, dbt_encoding *encs, int n, const dbt_pad_opts *opts) {
    dbt_pad_opts o = opts ? *opts : dbt_pad_opts_default(tok);
    if (o.length < 0 || o.multiple_of < 0) return dbt_set_error("padding length must be >= 0");
    int64_t target = o.length;
    if (target == 0)
        for (int i = 0; i < n; i++)
            if (encs[i].n > target) target = encs[i].n;
    if (o.multiple_of > 1 && target % o.multiple_of) target += o.multiple_of - target % o.multiple_of;
    if (target > INT32_MAX / 2) return dbt_set_error("padding length %lld is too large", (long long)target);
    for (int i = 0; i < n; i++) {
        dbt_encoding *e = &encs[i];
        if (e->n >= target) continue;
        dbt_encoding p = alloc_encoding((int32_t)target);
        if (!p.ids) return dbt_set_error("out of memory");
        /* the tokens go at [at, at + e->n); the padding fills the rest */
        int32_t pad = (int32_t)target - e->n, at = o.left ? pad : 0;
        size_t m = (size_t)e->n * sizeof(int32_t);
        memcpy(p.ids + at, e->ids, m);
        memcpy(p.type_ids + at, e->type_ids, m);
        memcpy(p.attention_mask + at, e->attention_mask, m);
        memcpy(p.special_tokens_mask + at, e->special_tokens_mask, m);
        memcpy(p.word_ids + at, e->word_ids, m);
        memcpy(p.sequence_ids + at, e->sequence_ids, m);
        memcpy(p.offsets + 2 * at, e->offsets, 2 * m);
        for (int32_t k = 0; k < (int32_t)target; k++) {
            if (k >= at && k < at + e->n) continue;
            p.ids[k] = tok->special.pad >= 0 ? tok->special.pad : 0;
            p.type_ids[k] = tok->pad_type_id;
            p.attention_mask[k] = 0;
            p.special_tokens_mask[k] = 1;
            p.word_ids[k] = p.sequence_ids[k] = -1;
            p.offsets[2 * k] = p.offsets[2 * k + 1] = 0;
        }
        free(e->ids);
        *e = p;
    }
    return 0;
}
