/* test_vocab.c — WordPiece vocabulary training on corpora small enough to follow by hand, and a
 * naive trainer (every pair recounted before every merge) that the incremental one must match.
 *
 * The hand-derived corpus (Sennrich et al.'s example, WordPiece style):
 *   low ×5, lower ×2, newest ×6, widest ×3
 * ids: 0-4 specials; alphabet in code point order d e i l n o r s t w = 5..14; the "##" forms of
 * the characters seen inside words, in code point order: ##d ##e ##i ##o ##r ##s ##t ##w = 15..22.
 * Pair counts: (##e,##s) 9 = (##s,##t) 9 > (##w,##e) 8 > (l,##o) 7 = (##o,##w) 7 > ...
 *   1. (##e,##s) 9 ties (##s,##t) 9: (16,20) < (20,21) → ##es (23); then (##es,##t) has 9
 *   2. ##est (24)
 *   3. (l,##o) 7 ties (##o,##w) 7: (8,18) first → lo (25); (lo,##w) now 7, (##o,##w) 0
 *   4. low (26); lower is now low ##e ##r
 *   5. count 6: (n,##e) (9,16) < (##e,##w) (16,22) < (##w,##est) (22,24) → ne (27)
 *   6. (##w,##est) (22,24) before (ne,##w) (27,22) → ##west (28)
 *   7. (ne,##west) 6 → newest (29)
 *   8. count 3: (w,##i) (14,17) < (##d,##est) (15,24) < (##i,##d) (17,15) → wi (30)
 *   9. (##d,##est) (15,24) before (wi,##d) (30,15) → ##dest (31)
 *  10. widest (32)
 *  11. count 2: (##e,##r) (16,19) before (low,##e) (26,16) → ##er (33)
 *  12. lower (34); no pair is left: 35 tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "training/vocab_train.h"

static const char *const TOY_WORDS[] = {"low", "lower", "newest", "widest"};
static const int64_t TOY_COUNTS[] = {5, 2, 6, 3};

static const char *const TOY_VOCAB[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                    /* 0-4 */
    "d", "e", "i", "l", "n", "o", "r", "s", "t", "w",                /* 5-14 */
    "##d", "##e", "##i", "##o", "##r", "##s", "##t", "##w",          /* 15-22 */
    "##es", "##est", "lo", "low", "ne", "##west", "newest", "wi",   /* 23-30 */
    "##dest", "widest", "##er", "lower"};                            /* 31-34 */
#define TOY_N ((int)(sizeof TOY_VOCAB / sizeof TOY_VOCAB[0]))

static dbt_vocab_train_opts opts(int size, int64_t min_freq, int limit) {
    dbt_vocab_train_opts o = dbt_vocab_train_opts_default();
    o.vocab_size = size;
    o.min_frequency = min_freq;
    o.limit_alphabet = limit;
    return o;
}

static void train_toy(const dbt_vocab_train_opts *o, dbt_vocab *v) {
    size_t lens[4];
    for (int i = 0; i < 4; i++) lens[i] = strlen(TOY_WORDS[i]);
    assert_int_equal(dbt_vocab_train_words(TOY_WORDS, lens, TOY_COUNTS, 4, o, v), 0);
}

static void test_toy_all_merges(void **state) {
    (void)state;
    dbt_vocab_train_opts o = opts(1000, 2, 1000);
    dbt_vocab v;
    train_toy(&o, &v);
    assert_int_equal(v.n, TOY_N);
    for (int i = 0; i < TOY_N; i++) assert_string_equal(v.tokens[i], TOY_VOCAB[i]);
    assert_int_equal(v.alphabet_size, 10);
    assert_int_equal(v.n_merges, 12);
    dbt_vocab_free(&v);
}

/* The size stops the merges: 28 entries end with "ne". */
static void test_toy_size_limit(void **state) {
    (void)state;
    dbt_vocab_train_opts o = opts(28, 2, 1000);
    dbt_vocab v;
    train_toy(&o, &v);
    assert_int_equal(v.n, 28);
    for (int i = 0; i < 28; i++) assert_string_equal(v.tokens[i], TOY_VOCAB[i]);
    dbt_vocab_free(&v);
    /* A size below the alphabet: the alphabet is kept whole, no merge (as tokenizers). */
    o = opts(10, 2, 1000);
    train_toy(&o, &v);
    assert_int_equal(v.n, 23);
    assert_int_equal(v.n_merges, 0);
    dbt_vocab_free(&v);
}

/* min_frequency 3: the pairs of "lower" (count 2) are never merged. */
static void test_toy_min_frequency(void **state) {
    (void)state;
    dbt_vocab_train_opts o = opts(1000, 3, 1000);
    dbt_vocab v;
    train_toy(&o, &v);
    assert_int_equal(v.n, 33);
    for (int i = 0; i < 33; i++) assert_string_equal(v.tokens[i], TOY_VOCAB[i]);
    dbt_vocab_free(&v);
}

/* limit_alphabet 9 drops the rarest character, r (2); "lower" becomes l ##o ##w ##e. Character
 * counts: e 17, w 16, s 9, t 9, l 7, o 7, n 6, d 3, i 3, r 2. With 8, the tie d/i at 3 keeps the
 * lower code point, d. */
static void test_toy_limit_alphabet(void **state) {
    (void)state;
    dbt_vocab_train_opts o = opts(1000, 2, 9);
    dbt_vocab v;
    train_toy(&o, &v);
    assert_int_equal(v.alphabet_size, 9);
    const char *want[] = {"d", "e", "i", "l", "n", "o", "s", "t", "w", "##d", "##e", "##i", "##o", "##s", "##t", "##w"};
    for (int i = 0; i < 16; i++) assert_string_equal(v.tokens[5 + i], want[i]);
    int has_low_e = 0;
    for (int i = 0; i < v.n; i++) {
        assert_null(strchr(v.tokens[i], 'r'));
        has_low_e |= !strcmp(v.tokens[i], "lowe"); /* (low, ##e) has 2 now: ##er is gone */
    }
    assert_true(has_low_e);
    dbt_vocab_free(&v);

    o = opts(1000, 2, 8);
    train_toy(&o, &v);
    assert_int_equal(v.alphabet_size, 8);
    const char *want8[] = {"d", "e", "l", "n", "o", "s", "t", "w"};
    for (int i = 0; i < 8; i++) assert_string_equal(v.tokens[5 + i], want8[i]);
    dbt_vocab_free(&v);
}

/* ---- the naive reference --------------------------------------------------------------- */

typedef struct {
    char **tok;
    int n;
} naive_vocab;

static int naive_id(naive_vocab *v, const char *s) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->tok[i], s)) return i;
    v->tok[v->n] = strdup(s);
    return v->n++;
}

/* Words over a small alphabet (ASCII, no limit); recounts every pair before each merge. */
static void naive_train(char **words, const int64_t *counts, int nw, int size, int64_t min_freq,
                        naive_vocab *v) {
    static const char *const sp[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    v->tok = calloc(4096, sizeof *v->tok);
    v->n = 0;
    for (int k = 0; k < 5; k++) naive_id(v, sp[k]);
    int seen[128] = {0}, inner[128] = {0};
    for (int i = 0; i < nw; i++)
        for (int j = 0; words[i][j]; j++) {
            seen[(int)words[i][j]] = 1;
            if (j) inner[(int)words[i][j]] = 1;
        }
    char s[8];
    for (int c = 1; c < 128; c++)
        if (seen[c]) { s[0] = (char)c; s[1] = 0; naive_id(v, s); }
    for (int c = 1; c < 128; c++)
        if (inner[c]) { snprintf(s, sizeof s, "##%c", c); naive_id(v, s); }
    int **sym = calloc((size_t)nw, sizeof *sym), *len = calloc((size_t)nw, sizeof *len);
    for (int i = 0; i < nw; i++) {
        len[i] = (int)strlen(words[i]);
        sym[i] = calloc((size_t)len[i] + 1, sizeof **sym);
        for (int j = 0; j < len[i]; j++) {
            if (j) snprintf(s, sizeof s, "##%c", words[i][j]);
            else { s[0] = words[i][j]; s[1] = 0; }
            sym[i][j] = naive_id(v, s);
        }
    }
    while (v->n < size) {
        /* the best pair: highest count, then smallest (a, b) */
        int64_t best = 0;
        int ba = -1, bb = -1;
        for (int i = 0; i < nw; i++)
            for (int j = 0; j + 1 < len[i]; j++) {
                int a = sym[i][j], b = sym[i][j + 1];
                int64_t cnt = 0;
                for (int i2 = 0; i2 < nw; i2++)
                    for (int j2 = 0; j2 + 1 < len[i2]; j2++)
                        if (sym[i2][j2] == a && sym[i2][j2 + 1] == b) cnt += counts[i2];
                if (cnt > best || (cnt == best && (a < ba || (a == ba && b < bb)))) {
                    best = cnt;
                    ba = a;
                    bb = b;
                }
            }
        if (best < 1 || best < min_freq) break;
        char nt[256];
        const char *pb = v->tok[bb];
        if (!strncmp(pb, "##", 2)) pb += 2;
        snprintf(nt, sizeof nt, "%s%s", v->tok[ba], pb);
        int r = naive_id(v, nt);
        for (int i = 0; i < nw; i++) {
            int w = 0;
            for (int j = 0; j < len[i];) {
                if (j + 1 < len[i] && sym[i][j] == ba && sym[i][j + 1] == bb) { sym[i][w++] = r; j += 2; }
                else sym[i][w++] = sym[i][j++];
            }
            len[i] = w;
        }
    }
    for (int i = 0; i < nw; i++) free(sym[i]);
    free(sym);
    free(len);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11) % n;
}

/* Random corpora over 2-4 letters (many repeats, overlaps such as "aaaa", duplicate merge
 * results): the incremental trainer gives the naive trainer's vocabulary, id for id. */
static void test_matches_naive_trainer(void **state) {
    (void)state;
    for (int trial = 0; trial < 60; trial++) {
        int nw = 1 + (int)rnd(14), letters = 2 + (int)rnd(3);
        char **words = calloc((size_t)nw, sizeof *words);
        const char **cwords = calloc((size_t)nw, sizeof *cwords);
        size_t *lens = calloc((size_t)nw, sizeof *lens);
        int64_t *counts = calloc((size_t)nw, sizeof *counts);
        int n = 0;
        while (n < nw) {
            int len = 1 + (int)rnd(9);
            char w[16];
            for (int j = 0; j < len; j++) w[j] = (char)('a' + rnd((uint32_t)letters));
            w[len] = 0;
            int dup = 0;
            for (int k = 0; k < n; k++) dup |= !strcmp(words[k], w);
            if (dup) continue;
            words[n] = strdup(w);
            cwords[n] = words[n];
            lens[n] = (size_t)len;
            counts[n] = 1 + rnd(6);
            n++;
        }
        int size = 12 + (int)rnd(60);
        int64_t min_freq = rnd(3);
        naive_vocab ref;
        naive_train(words, counts, nw, size, min_freq, &ref);
        dbt_vocab_train_opts o = opts(size, min_freq, 0);
        dbt_vocab v;
        assert_int_equal(dbt_vocab_train_words(cwords, lens, counts, nw, &o, &v), 0);
        if (v.n != ref.n) print_message("trial %d: %d tokens, the naive trainer %d\n", trial, v.n, ref.n);
        assert_int_equal(v.n, ref.n);
        for (int i = 0; i < v.n; i++) assert_string_equal(v.tokens[i], ref.tok[i]);
        dbt_vocab_free(&v);
        for (int i = 0; i < ref.n; i++) free(ref.tok[i]);
        free(ref.tok);
        for (int i = 0; i < nw; i++) free(words[i]);
        free(words);
        free(cwords);
        free(lens);
        free(counts);
    }
}

/* ---- the whole job: text → normalized, pre-tokenized words → folder ---------------------- */

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void test_train_files(void **state) {
    (void)state;
    char dir[] = "/tmp/dbt-test-vocab-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char corpus[300], out[300], path[400];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    snprintf(out, sizeof out, "%s/a/b/tok", dir); /* parents are created */
    FILE *f = fopen(corpus, "w");
    assert_non_null(f);
    /* Case, accents and punctuation are normalized and split away: the words are the toy's. */
    fputs("Low LOW low, low low!\nLÓWER lower\nnewest Newest newest NEWEST newest newest\r\n"
          "widest\twidest  widest", f);
    fclose(f);
    const char *paths[] = {corpus};
    dbt_vocab_train_opts o = opts(1000, 2, 1000);
    dbt_vocab_train_stats st;
    assert_int_equal(dbt_train_vocab(paths, 1, &o, out, &st), 0);
    assert_int_equal(st.n_lines, 4);
    assert_int_equal(st.n_words, 18); /* 16 words, ',' and '!' */
    assert_int_equal(st.n_distinct_words, 6);
    /* ',' and '!' join the alphabet (count 1 each): 12 characters, and the toy's merges. */
    assert_int_equal(st.alphabet_size, 12);
    snprintf(path, sizeof path, "%s/vocab.txt", out);
    char *text = read_all(path);
    assert_non_null(text);
    char want[1024] = "";
    for (int i = 0; i < TOY_N; i++) {
        const char *t = TOY_VOCAB[i];
        if (i == 5) strcat(want, "!\n,\n"); /* before 'd' in code point order */
        strcat(want, t);
        strcat(want, "\n");
    }
    assert_string_equal(text, want);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", out);
    assert_non_null(strstr(read_all(path), "\"do_lower_case\": true"));
    assert_non_null(strstr(read_all(path), "\"model_max_length\": 512"));

    /* The folder loads, and tokenizes with the trained pieces. */
    dbt_tokenizer *tok = dbt_tokenizer_load(out, NULL);
    assert_non_null(tok);
    assert_int_equal(dbt_tokenizer_vocab_size(tok), TOY_N + 2);
    dbt_encoding *e;
    const char *s = "Lowest newer";
    assert_int_equal(dbt_encode(tok, s, strlen(s), NULL, 0, NULL, &e), 1);
    /* [CLS] low ##est ne ##w ##er [SEP] */
    const char *pieces[] = {"[CLS]", "low", "##est", "ne", "##w", "##er", "[SEP]"};
    assert_int_equal(e[0].n, 7);
    for (int i = 0; i < 7; i++) assert_string_equal(dbt_tokenizer_id_to_token(tok, e[0].ids[i]), pieces[i]);
    dbt_encodings_free(e, 1);
    dbt_tokenizer_free(tok);

    /* Cased: "Low", "LOW", "LÓWER" stay words of their own. */
    o.lowercase = 0;
    assert_int_equal(dbt_train_vocab(paths, 1, &o, out, &st), 0);
    assert_int_equal(st.n_distinct_words, 11);
    snprintf(path, sizeof path, "%s/vocab.txt", out);
    text = read_all(path);
    assert_non_null(strstr(text, "\nÓ\n"));
    assert_non_null(strstr(text, "\n##Ó\n"));
    snprintf(path, sizeof path, "%s/tokenizer_config.json", out);
    assert_non_null(strstr(read_all(path), "\"do_lower_case\": false"));

    /* Errors: a missing file, an empty size. */
    const char *missing[] = {"/nonexistent/corpus.txt"};
    assert_int_equal(dbt_train_vocab(missing, 1, &o, out, &st), -1);
    assert_non_null(strstr(dbt_last_error(), "/nonexistent/corpus.txt"));
    o.vocab_size = 0;
    assert_int_equal(dbt_train_vocab(paths, 1, &o, out, &st), -1);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toy_all_merges),     cmocka_unit_test(test_toy_size_limit),
        cmocka_unit_test(test_toy_min_frequency),  cmocka_unit_test(test_toy_limit_alphabet),
        cmocka_unit_test(test_matches_naive_trainer), cmocka_unit_test(test_train_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
