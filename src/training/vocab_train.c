/* vocab_train.c — WordPiece vocabulary training with the semantics of tokenizers'
 * WordPieceTrainer, which is its BpeTrainer with continuing_subword_prefix "##":
 *
 *   1. every line goes through BertNormalizer and BertPreTokenizer; the words are counted;
 *   2. the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] take ids 0..4;
 *   3. the alphabet: every character of the words, weighted by word count; past limit_alphabet
 *      only the most frequent are kept; they get the next ids in code point order;
 *   4. each word becomes its characters, "##"-prefixed after the first (characters outside the
 *      alphabet are dropped); the "##c" tokens get the next ids;
 *   5. the adjacent pair with the highest count (summed over words, weighted by word count) is
 *      merged into a new token a + b (b without its "##"), everywhere, and pair counts are
 *      updated from the changes around each merge; ties go to the smallest (id a, id b), the
 *      order of tokenizers' heap. Stops when the vocabulary has vocab_size entries, when no pair
 *      is left, or when the best pair was seen fewer than min_frequency times.
 *
 * Where tokenizers leaves the order to a hash map we fix it: the "##c" tokens come in code
 * point order (tokenizers: in the order it meets words), and among characters of equal count the
 * lower code point survives limit_alphabet. tokenizers also keeps a pair's count after merging it
 * and merges the occurrences that appeared after its queue entry was made in a second pass; we
 * merge every occurrence at once. So the vocabulary is that of tokenizers up to tie order.
 *
 * Data: words are arrays of token ids in one pool; pairs live in an open-addressing table of
 * (a, b) → record {count, the words that contain it}; a binary max-heap of (count, a, b) entries
 * is checked lazily (an entry whose count is stale is pushed again with the current count). */
#include "vocab_train.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../common/error.h"
#include "../common/file.h"
#include "../common/json_writer.h"
#include "../common/strmap.h"
#include "../common/utf8.h"
#include "../tokenizer/tokenizer_internal.h"

#define N_CODEPOINTS 0x110000
#define MAX_LINE_BYTES (1u << 30)

static const char *const SPECIALS[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

dbt_vocab_train_opts dbt_vocab_train_opts_default(void) {
    dbt_vocab_train_opts o = {0};
    o.vocab_size = 30522;
    o.lowercase = 1;
    o.min_frequency = 2;
    o.limit_alphabet = 1000;
    o.model_max_length = 512;
    return o;
}

void dbt_vocab_free(dbt_vocab *v) {
    if (!v) return;
    for (int32_t i = 0; i < v->n; i++) free(v->tokens[i]);
    free(v->tokens);
    memset(v, 0, sizeof *v);
}

/* ---- the vocabulary being built ---------------------------------------------------------- */

typedef struct {
    char **tok;
    int32_t n, cap;
    dbt_strmap map; /* keys point at tok[i] */
} vocab_b;

/* The id of s (len bytes), adding it when new. Returns -1 when out of memory. */
static int32_t vocab_add(vocab_b *v, const char *s, size_t len) {
    int32_t id = dbt_strmap_get(&v->map, s, len);
    if (id >= 0) return id;
    if (v->n == v->cap) {
        int32_t cap = v->cap ? v->cap * 2 : 1024;
        char **t = realloc(v->tok, (size_t)cap * sizeof *t);
        if (!t) return -1;
        v->tok = t;
        v->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    if (dbt_strmap_put(&v->map, c, len, v->n)) { free(c); return -1; }
    v->tok[v->n] = c;
    return v->n++;
}

/* ---- pairs ------------------------------------------------------------------------------- */

typedef struct {
    int64_t count;
    int32_t a, b;
    int32_t *pos; /* words containing the pair (possibly stale, possibly repeated) */
    int32_t npos, cap;
    int touched;  /* gained occurrences during the current merge */
} pair_rec;

typedef struct {
    int64_t count;
    int32_t a, b, p;
} heap_entry;

typedef struct {
    /* pair table */
    uint64_t *keys; /* (a << 32 | b), EMPTY when free */
    int32_t *vals;
    size_t cap, used;
    pair_rec *pairs;
    int32_t n_pairs, pairs_cap;
    /* heap */
    heap_entry *heap;
    size_t hn, hcap;
    /* pairs touched by the current merge */
    int32_t *touched;
    int32_t n_touched, touched_cap;
    /* words */
    int32_t *sym;      /* all words' symbols */
    int64_t *off;      /* word i: sym[off[i] .. off[i] + len[i]) */
    int32_t *len;
    const int64_t *count;
    int32_t *stamp;    /* last merge that visited the word */
} trainer;

#define EMPTY UINT64_MAX

static uint64_t hash64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static int table_grow(trainer *t) {
    size_t cap = t->cap ? t->cap * 2 : 1 << 16;
    uint64_t *keys = malloc(cap * sizeof *keys);
    int32_t *vals = malloc(cap * sizeof *vals);
    if (!keys || !vals) { free(keys); free(vals); return -1; }
    memset(keys, 0xff, cap * sizeof *keys);
    for (size_t i = 0; i < t->cap; i++) {
        if (t->keys[i] == EMPTY) continue;
        size_t j = hash64(t->keys[i]) & (cap - 1);
        while (keys[j] != EMPTY) j = (j + 1) & (cap - 1);
        keys[j] = t->keys[i];
        vals[j] = t->vals[i];
    }
    free(t->keys);
    free(t->vals);
    t->keys = keys;
    t->vals = vals;
    t->cap = cap;
    return 0;
}

/* The record of (a, b), created with count 0 when new. Returns its index or -1. */
static int32_t pair_get(trainer *t, int32_t a, int32_t b) {
    if ((t->used + 1) * 2 > t->cap && table_grow(t)) return -1;
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t j = hash64(k) & (t->cap - 1);
    while (t->keys[j] != EMPTY) {
        if (t->keys[j] == k) return t->vals[j];
        j = (j + 1) & (t->cap - 1);
    }
    if (t->n_pairs == t->pairs_cap) {
        int32_t cap = t->pairs_cap ? t->pairs_cap * 2 : 1 << 14;
        pair_rec *p = realloc(t->pairs, (size_t)cap * sizeof *p);
        if (!p) return -1;
        t->pairs = p;
        t->pairs_cap = cap;
    }
    pair_rec *r = &t->pairs[t->n_pairs];
    memset(r, 0, sizeof *r);
    r->a = a;
    r->b = b;
    t->keys[j] = k;
    t->vals[j] = t->n_pairs;
    t->used++;
    return t->n_pairs++;
}

static int pos_add(pair_rec *r, int32_t w) {
    if (r->npos && r->pos[r->npos - 1] == w) return 0;
    if (r->npos == r->cap) {
        int32_t cap = r->cap ? r->cap * 2 : 4;
        int32_t *p = realloc(r->pos, (size_t)cap * sizeof *p);
        if (!p) return -1;
        r->pos = p;
        r->cap = cap;
    }
    r->pos[r->npos++] = w;
    return 0;
}

/* Heap order: the higher count first, then the smaller (a, b). */
static int above(const heap_entry *x, const heap_entry *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static void sift_down(heap_entry *h, size_t n, size_t i) {
    heap_entry e = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && above(&h[c + 1], &h[c])) c++;
        if (!above(&h[c], &e)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

static int heap_push(trainer *t, heap_entry e) {
    if (t->hn == t->hcap) {
        size_t cap = t->hcap ? t->hcap * 2 : 1 << 14;
        heap_entry *h = realloc(t->heap, cap * sizeof *h);
        if (!h) return -1;
        t->heap = h;
        t->hcap = cap;
    }
    size_t i = t->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!above(&e, &t->heap[p])) break;
        t->heap[i] = t->heap[p];
        i = p;
    }
    t->heap[i] = e;
    return 0;
}

static heap_entry heap_pop(trainer *t) {
    heap_entry top = t->heap[0];
    t->heap[0] = t->heap[--t->hn];
    if (t->hn) sift_down(t->heap, t->hn, 0);
    return top;
}

/* Adds delta to the count of (a, b); word w gained it when delta > 0. */
static int change(trainer *t, int32_t a, int32_t b, int64_t delta, int32_t w) {
    int32_t p = pair_get(t, a, b);
    if (p < 0) return -1;
    pair_rec *r = &t->pairs[p];
    r->count += delta;
    if (delta > 0) {
        if (pos_add(r, w)) return -1;
        if (!r->touched) {
            r->touched = 1;
            if (t->n_touched == t->touched_cap) {
                int32_t cap = t->touched_cap ? t->touched_cap * 2 : 1024;
                int32_t *x = realloc(t->touched, (size_t)cap * sizeof *x);
                if (!x) return -1;
                t->touched = x;
                t->touched_cap = cap;
            }
            t->touched[t->n_touched++] = p;
        }
    }
    return 0;
}

/* Replaces each (a, b) in word w by r, left to right, as tokenizers' Word::merge does, and
 * reports the pairs that disappear and appear around each replacement. */
static int merge_word(trainer *t, int32_t w, int32_t a, int32_t b, int32_t r) {
    int32_t *s = t->sym + t->off[w];
    const int32_t n = t->len[w];
    const int64_t c = t->count[w];
    int32_t rd = 0, wr = 0;
    while (rd < n) {
        if (rd + 1 < n && s[rd] == a && s[rd + 1] == b) {
            if (wr > 0 && (change(t, s[wr - 1], a, -c, w) || change(t, s[wr - 1], r, c, w))) return -1;
            if (rd + 2 < n && (change(t, b, s[rd + 2], -c, w) || change(t, r, s[rd + 2], c, w))) return -1;
            s[wr++] = r;
            rd += 2;
        } else {
            s[wr++] = s[rd++];
        }
    }
    t->len[w] = wr;
    return 0;
}

static void trainer_free(trainer *t) {
    for (int32_t i = 0; i < t->n_pairs; i++) free(t->pairs[i].pos);
    free(t->pairs);
    free(t->keys);
    free(t->vals);
    free(t->heap);
    free(t->touched);
    free(t->sym);
    free(t->off);
    free(t->len);
    free(t->stamp);
}

/* ---- training from counted words --------------------------------------------------------- */

typedef struct {
    int32_t cp;
    int64_t count;
} char_count;

static int by_count_then_cp_desc(const void *x, const void *y) {
    const char_count *a = x, *b = y;
    if (a->count != b->count) return a->count < b->count ? -1 : 1;
    return (a->cp < b->cp) - (a->cp > b->cp);
}

static int by_cp(const void *x, const void *y) {
    const char_count *a = x, *b = y;
    return (a->cp > b->cp) - (a->cp < b->cp);
}

/* Decodes word i into cps (room for lens[i] code points); returns the count. */
static int32_t word_cps(const char *w, size_t len, int32_t *cps) {
    int32_t n = 0;
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)w[i] < 0x80) cps[n++] = (unsigned char)w[i++];
        else i += dbt_utf8_decode((const unsigned char *)w + i, len - i, &cps[n++]);
    }
    return n;
}

int dbt_vocab_train_words(const char *const *words, const size_t *lens, const int64_t *counts, int64_t n_words,
                          const dbt_vocab_train_opts *o, dbt_vocab *out) {
    memset(out, 0, sizeof *out);
    if (o->vocab_size < 1) return dbt_set_error("vocab_size must be at least 1");
    if (n_words > INT32_MAX - 1) return dbt_set_error("too many distinct words (%lld)", (long long)n_words);
    int rc = -1;
    vocab_b v = {0};
    trainer t = {0};
    int64_t *cp_count = NULL;
    int32_t *first_id = NULL, *cont_id = NULL, *cps = NULL;
    char_count *alpha = NULL;
    size_t max_len = 0, total_len = 0;
    if (dbt_strmap_init(&v.map, (size_t)o->vocab_size + 1024)) goto oom;
    for (int k = 0; k < 5; k++)
        if (vocab_add(&v, SPECIALS[k], strlen(SPECIALS[k])) < 0) goto oom;

    /* The alphabet: characters weighted by word counts. */
    cp_count = calloc(N_CODEPOINTS, sizeof *cp_count);
    first_id = malloc(N_CODEPOINTS * sizeof *first_id);
    cont_id = malloc(N_CODEPOINTS * sizeof *cont_id);
    if (!cp_count || !first_id || !cont_id) goto oom;
    for (int64_t i = 0; i < n_words; i++) {
        if (lens[i] > max_len) max_len = lens[i];
        total_len += lens[i];
    }
    cps = malloc((max_len + 1) * sizeof *cps);
    if (!cps) goto oom;
    for (int64_t i = 0; i < n_words; i++) {
        int32_t n = word_cps(words[i], lens[i], cps);
        for (int32_t j = 0; j < n; j++) cp_count[cps[j]] += counts[i];
    }
    int32_t n_alpha = 0;
    for (int32_t c = 0; c < N_CODEPOINTS; c++) n_alpha += cp_count[c] > 0;
    alpha = malloc(((size_t)n_alpha + 1) * sizeof *alpha);
    if (!alpha) goto oom;
    n_alpha = 0;
    for (int32_t c = 0; c < N_CODEPOINTS; c++)
        if (cp_count[c] > 0) alpha[n_alpha++] = (char_count){c, cp_count[c]};
    int32_t keep = n_alpha;
    if (o->limit_alphabet > 0 && n_alpha > o->limit_alphabet) {
        keep = o->limit_alphabet;
        qsort(alpha, (size_t)n_alpha, sizeof *alpha, by_count_then_cp_desc);
        memmove(alpha, alpha + (n_alpha - keep), (size_t)keep * sizeof *alpha);
        qsort(alpha, (size_t)keep, sizeof *alpha, by_cp);
    }
    out->alphabet_size = keep;
    for (int32_t c = 0; c < N_CODEPOINTS; c++) first_id[c] = cont_id[c] = -1;
    for (int32_t k = 0; k < keep; k++) {
        char buf[8];
        size_t n = dbt_utf8_encode(alpha[k].cp, buf);
        if ((first_id[alpha[k].cp] = vocab_add(&v, buf, n)) < 0) goto oom;
    }
    /* The "##c" tokens, in code point order: mark the characters seen after a word's start. */
    memset(cp_count, 0, N_CODEPOINTS * sizeof *cp_count);
    for (int64_t i = 0; i < n_words; i++) {
        int32_t n = word_cps(words[i], lens[i], cps);
        for (int32_t j = 1; j < n; j++) cp_count[cps[j]] = 1;
    }
    for (int32_t k = 0; k < keep; k++) {
        if (!cp_count[alpha[k].cp]) continue;
        char buf[8] = "##";
        size_t n = 2 + dbt_utf8_encode(alpha[k].cp, buf + 2);
        if ((cont_id[alpha[k].cp] = vocab_add(&v, buf, n)) < 0) goto oom;
    }

    /* Words as symbols; pairs and their counts. */
    t.count = counts;
    t.sym = malloc((total_len + 1) * sizeof *t.sym);
    t.off = malloc(((size_t)n_words + 1) * sizeof *t.off);
    t.len = malloc(((size_t)n_words + 1) * sizeof *t.len);
    t.stamp = calloc((size_t)n_words + 1, sizeof *t.stamp);
    if (!t.sym || !t.off || !t.len || !t.stamp) goto oom;
    int64_t at = 0;
    for (int64_t i = 0; i < n_words; i++) {
        int32_t n = word_cps(words[i], lens[i], cps), m = 0;
        t.off[i] = at;
        for (int32_t j = 0; j < n; j++) {
            if (first_id[cps[j]] < 0) continue; /* outside the alphabet: dropped */
            int32_t id = j == 0 ? first_id[cps[j]] : cont_id[cps[j]];
            t.sym[at + m++] = id;
        }
        t.len[i] = m;
        at += m;
        for (int32_t j = 0; j + 1 < m; j++) {
            int32_t p = pair_get(&t, t.sym[t.off[i] + j], t.sym[t.off[i] + j + 1]);
            if (p < 0 || pos_add(&t.pairs[p], (int32_t)i)) goto oom;
            t.pairs[p].count += counts[i];
        }
    }
    free(cp_count);
    free(first_id);
    free(cont_id);
    cp_count = NULL;
    first_id = cont_id = NULL;
    for (int32_t p = 0; p < t.n_pairs; p++)
        if (t.pairs[p].count > 0 &&
            heap_push(&t, (heap_entry){t.pairs[p].count, t.pairs[p].a, t.pairs[p].b, p}))
            goto oom;

    /* Merges. */
    char *nt = NULL;
    size_t nt_cap = 0;
    int32_t iter = 0;
    while (v.n < o->vocab_size && t.hn > 0) {
        heap_entry top = heap_pop(&t);
        int64_t now = t.pairs[top.p].count;
        if (top.count != now) { /* stale: queue it again with its current count */
            if (now > 0) {
                top.count = now;
                if (heap_push(&t, top)) goto oom;
            }
            continue;
        }
        if (top.count < 1 || top.count < o->min_frequency) break;
        const char *pa = v.tok[top.a], *pb = v.tok[top.b];
        if (!strncmp(pb, "##", 2)) pb += 2;
        size_t la = strlen(pa), lb = strlen(pb);
        if (la + lb + 1 > nt_cap) {
            nt_cap = (la + lb + 1) * 2;
            char *x = realloc(nt, nt_cap);
            if (!x) { free(nt); goto oom; }
            nt = x;
        }
        memcpy(nt, pa, la);
        memcpy(nt + la, pb, lb);
        int32_t r = vocab_add(&v, nt, la + lb);
        if (r < 0) { free(nt); goto oom; }
        out->n_merges++;
        /* Every occurrence goes at once, so the pair is gone afterwards (overlapping ones, as
         * in "a a a" for (a, a), decrement it on the way). */
        int32_t *pos = t.pairs[top.p].pos, npos = t.pairs[top.p].npos;
        t.pairs[top.p].pos = NULL;
        t.pairs[top.p].npos = t.pairs[top.p].cap = 0;
        iter++;
        for (int32_t k = 0; k < npos; k++) {
            int32_t w = pos[k];
            if (t.stamp[w] == iter) continue;
            t.stamp[w] = iter;
            if (merge_word(&t, w, top.a, top.b, r)) { free(pos); free(nt); goto oom; }
        }
        free(pos);
        t.pairs[top.p].count = 0;
        for (int32_t k = 0; k < t.n_touched; k++) {
            pair_rec *q = &t.pairs[t.touched[k]];
            q->touched = 0;
            if (q->count > 0 && heap_push(&t, (heap_entry){q->count, q->a, q->b, t.touched[k]})) {
                free(nt);
                goto oom;
            }
        }
        t.n_touched = 0;
    }
    free(nt);
    out->tokens = v.tok;
    out->n = v.n;
    v.tok = NULL;
    v.n = 0;
    rc = 0;
    goto done;
oom:
    dbt_set_error("out of memory");
done:
    for (int32_t i = 0; i < v.n; i++) free(v.tok[i]);
    free(v.tok);
    dbt_strmap_free(&v.map);
    trainer_free(&t);
    free(cp_count);
    free(first_id);
    free(cont_id);
    free(cps);
    free(alpha);
    return rc;
}

/* ---- counting words in files ------------------------------------------------------------- */

/* Word bytes live in blocks that never move (the map's keys point into them). */
typedef struct block {
    struct block *next;
    size_t used, cap;
    char data[];
} block;

typedef struct {
    dbt_strmap map;
    block *blocks;
    char **words;
    size_t *lens;
    int64_t *counts;
    int64_t n, cap;
    int64_t n_tokens;
} counter;

static int count_word(const char *w, size_t len, void *user) {
    counter *c = user;
    c->n_tokens++;
    int32_t i = dbt_strmap_get(&c->map, w, len);
    if (i >= 0) {
        c->counts[i]++;
        return 0;
    }
    if (c->n >= INT32_MAX - 1) return dbt_set_error("too many distinct words");
    if (!c->blocks || c->blocks->cap - c->blocks->used < len) {
        size_t cap = len > (1u << 20) ? len : (1u << 20);
        block *b = malloc(sizeof *b + cap);
        if (!b) return dbt_set_error("out of memory");
        b->next = c->blocks;
        b->used = 0;
        b->cap = cap;
        c->blocks = b;
    }
    char *s = c->blocks->data + c->blocks->used;
    memcpy(s, w, len);
    c->blocks->used += len;
    if (c->n == c->cap) {
        int64_t cap = c->cap ? c->cap * 2 : 1 << 14;
        char **ws = realloc(c->words, (size_t)cap * sizeof *ws);
        if (ws) c->words = ws;
        size_t *ls = realloc(c->lens, (size_t)cap * sizeof *ls);
        if (ls) c->lens = ls;
        int64_t *cs = realloc(c->counts, (size_t)cap * sizeof *cs);
        if (cs) c->counts = cs;
        if (!ws || !ls || !cs) return dbt_set_error("out of memory");
        c->cap = cap;
    }
    if (dbt_strmap_put(&c->map, s, len, (int32_t)c->n)) return dbt_set_error("out of memory");
    c->words[c->n] = s;
    c->lens[c->n] = len;
    c->counts[c->n] = 1;
    c->n++;
    return 0;
}

static void counter_free(counter *c) {
    dbt_strmap_free(&c->map);
    while (c->blocks) {
        block *b = c->blocks;
        c->blocks = b->next;
        free(b);
    }
    free(c->words);
    free(c->lens);
    free(c->counts);
}

/* Streams the lines of one file (gzip or plain; "-": stdin) through the word splitter. */
static int count_file(const char *path, const dbt_normalizer_cfg *cfg, dbt_word_scratch *ws, counter *c,
                      int64_t *n_lines) {
    gzFile f;
    errno = 0;
    if (!strcmp(path, "-")) {
        int fd = dup(0);
        f = fd >= 0 ? gzdopen(fd, "rb") : NULL;
        if (!f && fd >= 0) close(fd);
    } else {
        f = gzopen(path, "rb");
    }
    if (!f) return dbt_set_error("cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);
    size_t cap = 1 << 20, have = 0;
    char *buf = malloc(cap);
    int rc = 0;
    if (!buf) { gzclose(f); return dbt_set_error("out of memory"); }
    for (;;) {
        int r = gzread(f, buf + have, (unsigned)(cap - have));
        if (r < 0) {
            int err;
            const char *msg = gzerror(f, &err);
            rc = dbt_set_error("%s: %s", path, msg);
            break;
        }
        size_t end = have + (size_t)r, start = 0;
        for (size_t i = have; i < end; i++) {
            if (buf[i] != '\n') continue;
            (*n_lines)++;
            if ((rc = dbt_split_words(cfg, buf + start, i - start, ws, count_word, c))) break;
            start = i + 1;
        }
        if (rc) break;
        if (r == 0) { /* end of input: the last line may lack its '\n' */
            if (end > start) {
                (*n_lines)++;
                rc = dbt_split_words(cfg, buf + start, end - start, ws, count_word, c);
            }
            break;
        }
        memmove(buf, buf + start, end - start);
        have = end - start;
        if (have == cap) { /* one line fills the buffer: grow it */
            if (cap >= MAX_LINE_BYTES) { rc = dbt_set_error("%s: a line is longer than %u bytes", path, MAX_LINE_BYTES); break; }
            char *b = realloc(buf, cap * 2);
            if (!b) { rc = dbt_set_error("out of memory"); break; }
            buf = b;
            cap *= 2;
        }
    }
    free(buf);
    gzclose(f);
    return rc ? -1 : 0;
}

/* ---- writing the folder ------------------------------------------------------------------ */

static int mkdirs(const char *dir) {
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p) return dbt_set_error("bad output folder \"%s\"", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return dbt_set_error("cannot create %s: %s", p, strerror(errno));
        p[i] = c;
    }
    if (!dbt_is_dir(dir)) return dbt_set_error("%s is not a folder", dir);
    return 0;
}

static int write_atomic(const char *dir, const char *name, const char *data, size_t len) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return dbt_set_error("cannot create %s: %s", tmp, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    int ok = done == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return dbt_set_error("cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

static void jw_bool(dbt_jw *w, int b) { dbt_jw_lit(w, b ? "true" : "false"); }

static void added_token(dbt_jw *w, const char *indent, int with_id, int id) {
    dbt_jw_lit(w, "{\n");
    if (with_id) {
        dbt_jw_lit(w, indent);
        dbt_jw_lit(w, "  \"id\": ");
        dbt_jw_int(w, id);
        dbt_jw_lit(w, ",\n");
    }
    dbt_jw_lit(w, indent);
    dbt_jw_lit(w, "  \"content\": ");
    dbt_jw_str(w, SPECIALS[id], strlen(SPECIALS[id]));
    dbt_jw_lit(w, ",\n");
    const char *rest = with_id ? "\"single_word\": false,\n|\"lstrip\": false,\n|\"rstrip\": false,\n|"
                                 "\"normalized\": false,\n|\"special\": true\n"
                               : "\"lstrip\": false,\n|\"normalized\": false,\n|\"rstrip\": false,\n|"
                                 "\"single_word\": false,\n|\"special\": true\n";
    for (const char *s = rest; *s;) {
        const char *e = strchr(s, '|');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        dbt_jw_lit(w, indent);
        dbt_jw_lit(w, "  ");
        dbt_jw_raw(w, s, n);
        s += n + (e ? 1 : 0);
    }
    dbt_jw_lit(w, indent);
    dbt_jw_lit(w, "}");
}

static void template_piece(dbt_jw *w, int special, const char *id, int type_id, int last) {
    dbt_jw_lit(w, special ? "      {\"SpecialToken\": {\"id\": \"" : "      {\"Sequence\": {\"id\": \"");
    dbt_jw_lit(w, id);
    dbt_jw_lit(w, "\", \"type_id\": ");
    dbt_jw_int(w, type_id);
    dbt_jw_lit(w, last ? "}}\n" : "}},\n");
}

static void tokenizer_json(dbt_jw *w, const dbt_vocab *v, int lowercase) {
    dbt_jw_lit(w, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [\n");
    for (int k = 0; k < 5; k++) {
        dbt_jw_lit(w, "    ");
        added_token(w, "    ", 1, k);
        dbt_jw_lit(w, k < 4 ? ",\n" : "\n");
    }
    dbt_jw_lit(w, "  ],\n  \"normalizer\": {\n    \"type\": \"BertNormalizer\",\n    \"clean_text\": true,\n"
                  "    \"handle_chinese_chars\": true,\n    \"strip_accents\": null,\n    \"lowercase\": ");
    jw_bool(w, lowercase);
    dbt_jw_lit(w, "\n  },\n  \"pre_tokenizer\": {\n    \"type\": \"BertPreTokenizer\"\n  },\n"
                  "  \"post_processor\": {\n    \"type\": \"TemplateProcessing\",\n    \"single\": [\n");
    template_piece(w, 1, "[CLS]", 0, 0);
    template_piece(w, 0, "A", 0, 0);
    template_piece(w, 1, "[SEP]", 0, 1);
    dbt_jw_lit(w, "    ],\n    \"pair\": [\n");
    template_piece(w, 1, "[CLS]", 0, 0);
    template_piece(w, 0, "A", 0, 0);
    template_piece(w, 1, "[SEP]", 0, 0);
    template_piece(w, 0, "B", 1, 0);
    template_piece(w, 1, "[SEP]", 1, 1);
    dbt_jw_lit(w, "    ],\n    \"special_tokens\": {\n"
                  "      \"[CLS]\": {\"id\": \"[CLS]\", \"ids\": [2], \"tokens\": [\"[CLS]\"]},\n"
                  "      \"[SEP]\": {\"id\": \"[SEP]\", \"ids\": [3], \"tokens\": [\"[SEP]\"]}\n    }\n  },\n"
                  "  \"decoder\": {\n    \"type\": \"WordPiece\",\n    \"prefix\": \"##\",\n    \"cleanup\": true\n  },\n"
                  "  \"model\": {\n    \"type\": \"WordPiece\",\n    \"unk_token\": \"[UNK]\",\n"
                  "    \"continuing_subword_prefix\": \"##\",\n    \"max_input_chars_per_word\": 100,\n"
                  "    \"vocab\": {\n");
    for (int32_t i = 0; i < v->n; i++) {
        dbt_jw_lit(w, "      ");
        dbt_jw_str(w, v->tokens[i], strlen(v->tokens[i]));
        dbt_jw_lit(w, ": ");
        dbt_jw_int(w, i);
        dbt_jw_lit(w, i + 1 < v->n ? ",\n" : "\n");
    }
    dbt_jw_lit(w, "    }\n  }\n}\n");
}

static void tokenizer_config(dbt_jw *w, int lowercase, int model_max_length) {
    dbt_jw_lit(w, "{\n  \"added_tokens_decoder\": {\n");
    for (int k = 0; k < 5; k++) {
        dbt_jw_lit(w, "    \"");
        dbt_jw_int(w, k);
        dbt_jw_lit(w, "\": ");
        added_token(w, "    ", 0, k);
        dbt_jw_lit(w, k < 4 ? ",\n" : "\n");
    }
    dbt_jw_lit(w, "  },\n  \"clean_up_tokenization_spaces\": true,\n  \"cls_token\": \"[CLS]\",\n"
                  "  \"do_basic_tokenize\": true,\n  \"do_lower_case\": ");
    jw_bool(w, lowercase);
    dbt_jw_lit(w, ",\n  \"mask_token\": \"[MASK]\",\n  \"model_max_length\": ");
    dbt_jw_int(w, model_max_length);
    dbt_jw_lit(w, ",\n  \"never_split\": null,\n  \"pad_token\": \"[PAD]\",\n  \"sep_token\": \"[SEP]\",\n"
                  "  \"strip_accents\": null,\n  \"tokenize_chinese_chars\": true,\n"
                  "  \"tokenizer_class\": \"BertTokenizer\",\n  \"unk_token\": \"[UNK]\"\n}\n");
}

int dbt_vocab_write(const dbt_vocab *v, const dbt_vocab_train_opts *o, const char *out_dir) {
    if (v->n < 5) return dbt_set_error("the vocabulary lacks its special tokens");
    for (int k = 0; k < 5; k++)
        if (strcmp(v->tokens[k], SPECIALS[k]))
            return dbt_set_error("token %d is \"%s\", not %s", k, v->tokens[k], SPECIALS[k]);
    if (mkdirs(out_dir)) return -1;
    const int lower = o->lowercase != 0;
    const int mml = o->model_max_length > 0 ? o->model_max_length : 512;
    dbt_jw w = {0};
    int rc = 0;
    for (int32_t i = 0; i < v->n && !w.oom; i++) {
        dbt_jw_lit(&w, v->tokens[i]);
        dbt_jw_raw(&w, "\n", 1);
    }
    if (w.oom) rc = dbt_set_error("out of memory");
    if (!rc) rc = write_atomic(out_dir, "vocab.txt", w.s, w.n);
    if (!rc) {
        dbt_jw_reset(&w);
        tokenizer_json(&w, v, lower);
        rc = w.oom ? dbt_set_error("out of memory") : write_atomic(out_dir, "tokenizer.json", w.s, w.n);
    }
    if (!rc) {
        dbt_jw_reset(&w);
        tokenizer_config(&w, lower, mml);
        rc = w.oom ? dbt_set_error("out of memory") : write_atomic(out_dir, "tokenizer_config.json", w.s, w.n);
    }
    if (!rc) {
        dbt_jw_reset(&w);
        dbt_jw_lit(&w, "{\n  \"cls_token\": \"[CLS]\",\n  \"mask_token\": \"[MASK]\",\n  \"pad_token\": \"[PAD]\",\n"
                       "  \"sep_token\": \"[SEP]\",\n  \"unk_token\": \"[UNK]\"\n}\n");
        rc = w.oom ? dbt_set_error("out of memory") : write_atomic(out_dir, "special_tokens_map.json", w.s, w.n);
    }
    dbt_jw_free(&w);
    if (!rc) { /* make the renames durable */
        int fd = open(out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    return rc ? -1 : 0;
}

/* ---- the whole job ----------------------------------------------------------------------- */

int dbt_train_vocab(const char *const *corpus_paths, int n, const dbt_vocab_train_opts *opts, const char *out_dir,
                    dbt_vocab_train_stats *stats) {
    dbt_vocab_train_opts o = opts ? *opts : dbt_vocab_train_opts_default();
    if (stats) memset(stats, 0, sizeof *stats);
    if (n < 1 || !corpus_paths) return dbt_set_error("no corpus given");
    if (!out_dir || !*out_dir) return dbt_set_error("no output folder given");
    if (o.vocab_size < 1) return dbt_set_error("vocab_size must be at least 1");
    if (o.min_frequency < 0) return dbt_set_error("min_frequency must be >= 0");
    dbt_normalizer_cfg cfg = {1, 1, o.lowercase != 0, o.lowercase != 0};
    counter c = {0};
    dbt_word_scratch ws = {0};
    dbt_vocab v = {0};
    int64_t n_lines = 0;
    int rc = -1;
    if (dbt_strmap_init(&c.map, 1 << 16)) { dbt_set_error("out of memory"); goto done; }
    for (int i = 0; i < n; i++)
        if (count_file(corpus_paths[i], &cfg, &ws, &c, &n_lines)) goto done;
    if (dbt_vocab_train_words((const char *const *)c.words, c.lens, c.counts, c.n, &o, &v)) goto done;
    if (dbt_vocab_write(&v, &o, out_dir)) goto done;
    if (stats) {
        stats->n_lines = n_lines;
        stats->n_words = c.n_tokens;
        stats->n_distinct_words = c.n;
        stats->alphabet_size = v.alphabet_size;
        stats->n_merges = v.n_merges;
        stats->vocab_size = v.n;
    }
    rc = 0;
done:
    dbt_vocab_free(&v);
    dbt_word_scratch_free(&ws);
    counter_free(&c);
    return rc;
}
