/* test_tokenizer.c — the tokenizer on a tiny hand-made vocabulary, where every expected id,
 * offset and window can be worked out by hand from the WordPiece algorithm and the truncation
 * rules of Hugging Face tokenizers (their own unit-test table for longest_first is reused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "distilbert.h"

/* ids:                  0       1       2       3       4        5    6      7       8   */
static const char *VOCAB[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a",
                              /* 9   10   11   12   13    14       15   16  17   18 */
                              "b", "c", "d", "e", ",", "hello", "##s", "é", "o", "!"};
#define NV (sizeof VOCAB / sizeof VOCAB[0])

static char vocab_path[256];

static int setup(void **state) {
    (void)state;
    snprintf(vocab_path, sizeof vocab_path, "/tmp/dbt-test-vocab-%d.txt", (int)getpid());
    FILE *f = fopen(vocab_path, "w");
    if (!f) return -1;
    for (size_t i = 0; i < NV; i++) fprintf(f, "%s\n", VOCAB[i]);
    fclose(f);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(vocab_path);
    return 0;
}

static dbt_tokenizer *load(int lowercase) {
    dbt_tokenizer_opts o = {lowercase, -1};
    dbt_tokenizer *t = dbt_tokenizer_load(vocab_path, &o);
    assert_non_null(t);
    return t;
}

static void expect_ids(const dbt_encoding *e, const int32_t *want, int n) {
    assert_int_equal(e->n, n);
    for (int i = 0; i < n; i++) assert_int_equal(e->ids[i], want[i]);
}

static void test_wordpiece_greedy(void **state) {
    (void)state;
    dbt_tokenizer *t = load(-1);
    dbt_encoding *e;
    const char *s = "Unaffable, hellos!";
    assert_int_equal(dbt_encode(t, s, strlen(s), NULL, 0, NULL, &e), 1);
    int32_t want[] = {2, 5, 6, 7, 13, 14, 15, 18, 3};
    expect_ids(&e[0], want, 9);
    /* offsets: un [0,2) ##aff [2,5) ##able [5,9) , [9,10) hello [11,16) ##s [16,17) ! [17,18) */
    int32_t off[] = {0, 0, 0, 2, 2, 5, 5, 9, 9, 10, 11, 16, 16, 17, 17, 18, 0, 0};
    for (int i = 0; i < 18; i++) assert_int_equal(e[0].offsets[i], off[i]);
    int32_t words[] = {-1, 0, 0, 0, 1, 2, 2, 3, -1};
    for (int i = 0; i < 9; i++) assert_int_equal(e[0].word_ids[i], words[i]);
    dbt_encodings_free(e, 1);
    dbt_tokenizer_free(t);
}

static void test_unknown_word_is_one_unk(void **state) {
    (void)state;
    dbt_tokenizer *t = load(-1);
    dbt_encoding *e;
    /* "unx": "un" matches but "##x" does not → the whole word is [UNK] spanning [0,3). */
    assert_int_equal(dbt_encode(t, "unx a", 5, NULL, 0, NULL, &e), 1);
    int32_t want[] = {2, 1, 8, 3};
    expect_ids(&e[0], want, 4);
    assert_int_equal(e[0].offsets[2], 0);
    assert_int_equal(e[0].offsets[3], 3);
    dbt_encodings_free(e, 1);
    dbt_tokenizer_free(t);
}

static void test_accents_and_case(void **state) {
    (void)state;
    dbt_tokenizer *uncased = load(-1), *cased = load(0);
    dbt_encoding *e;
    /* Uncased strips the accent: "É" → "e" (12). Cased keeps "é" (16) and refuses "É". */
    assert_int_equal(dbt_encode(uncased, "\xc3\x89 \xc3\xa9", 5, NULL, 0, NULL, &e), 1);
    int32_t want_u[] = {2, 12, 12, 3};
    expect_ids(&e[0], want_u, 4);
    assert_int_equal(e[0].offsets[4], 2); /* second é is code point 2 */
    assert_int_equal(e[0].offsets[5], 3);
    dbt_encodings_free(e, 1);
    assert_int_equal(dbt_encode(cased, "\xc3\x89 \xc3\xa9", 5, NULL, 0, NULL, &e), 1);
    int32_t want_c[] = {2, 1, 16, 3};
    expect_ids(&e[0], want_c, 4);
    dbt_encodings_free(e, 1);
    dbt_tokenizer_free(uncased);
    dbt_tokenizer_free(cased);
}

static void test_special_tokens_matched_in_raw_text(void **state) {
    (void)state;
    dbt_tokenizer *t = load(-1);
    dbt_encoding *e;
    const char *s = "a [MASK] b";
    assert_int_equal(dbt_encode(t, s, strlen(s), NULL, 0, NULL, &e), 1);
    int32_t want[] = {2, 8, 4, 9, 3};
    expect_ids(&e[0], want, 5);
    assert_int_equal(e[0].offsets[4], 2);
    assert_int_equal(e[0].offsets[5], 8);
    dbt_encodings_free(e, 1);
    dbt_tokenizer_free(t);
}

/* n single-letter words "a a a ..." → n tokens of id 8. */
static char *letters(int n) {
    char *s = malloc((size_t)n * 2 + 1);
    for (int i = 0; i < n; i++) { s[2 * i] = 'a'; s[2 * i + 1] = ' '; }
    s[n ? 2 * n - 1 : 0] = '\0';
    return s;
}

/* tokenizers' own table for longest_first with max_length 7 (without special tokens):
 * lengths (n1, n2) → kept (k1, k2). Rows with an empty second text follow transformers, which
 * encodes the first text alone. */
static void test_longest_first_table(void **state) {
    (void)state;
    dbt_tokenizer *t = load(-1);
    static const int table[][4] = {
        {0, 0, 0, 0}, {0, 2, 0, 2}, {0, 4, 0, 4}, {0, 8, 0, 7}, {2, 0, 2, 0}, {2, 2, 2, 2},
        {2, 4, 2, 4}, {2, 8, 2, 5}, {4, 0, 4, 0}, {4, 2, 4, 2}, {4, 4, 3, 4}, {4, 8, 3, 4},
        {8, 0, 7, 0}, {8, 2, 5, 2}, {8, 4, 4, 3}, {8, 8, 3, 4},
    };
    dbt_encode_opts o = dbt_encode_opts_default(NULL);
    o.max_length = 7 + 3; /* [CLS] A [SEP] B [SEP] */
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char *a = letters(table[i][0]), *b = letters(table[i][1]);
        dbt_encoding *e;
        assert_int_equal(dbt_encode(t, a, strlen(a), b, strlen(b), &o, &e), 1);
        int na = 0, nb = 0;
        for (int k = 0; k < e[0].n; k++) {
            if (e[0].sequence_ids[k] == 0) na++;
            if (e[0].sequence_ids[k] == 1) { nb++; assert_int_equal(e[0].type_ids[k], 1); }
        }
        /* An empty second text is no second text (transformers pairs only `if text_pair`): then
         * a single sequence has 7 + 3 − 2 = 8 tokens of room. */
        int want_a = table[i][1] == 0 ? (table[i][0] < 8 ? table[i][0] : 8) : table[i][2];
        assert_int_equal(na, want_a);
        assert_int_equal(nb, table[i][3]);
        dbt_encodings_free(e, 1);
        free(a);
        free(b);
    }
    dbt_tokenizer_free(t);
}

static void test_stride_windows(void **state) {
    (void)state;
    dbt_tokenizer *t = load(-1);
    /* 10 tokens, room for 4 per window, stride 1: windows start at 0, 3, 6 → [0,4) [3,7) [6,10). */
    const char *s = "a b c d e a b c d e";
    dbt_encode_opts o = dbt_encode_opts_default(NULL);
    o.max_length = 6;
    o.stride = 1;
    o.return_overflowing = 1;
    dbt_encoding *e;
    int n = dbt_encode(t, s, strlen(s), NULL, 0, &o, &e);
    assert_int_equal(n, 3);
    int32_t w0[] = {2, 8, 9, 10, 11, 3}, w1[] = {2, 11, 12, 8, 9, 3}, w2[] = {2, 9, 10, 11, 12, 3};
    expect_ids(&e[0], w0, 6);
    expect_ids(&e[1], w1, 6);
    expect_ids(&e[2], w2, 6);
    assert_int_equal(e[2].offsets[2], 12); /* window 2 starts with the 7th word, at char 12 */
    dbt_encodings_free(e, n);
    /* stride must leave room: 4 tokens of room, stride 4 → an error, not a crash. */
    o.stride = 4;
    assert_int_equal(dbt_encode(t, s, strlen(s), NULL, 0, &o, &e), -1);
    assert_non_null(strstr(dbt_last_error(), "stride"));
    dbt_tokenizer_free(t);
}

/* A batch of two, unpadded: "a" ([CLS] a [SEP]) and "a b c" ([CLS] a b c [SEP]). */
static dbt_encoding *encode_a_and_abc(const dbt_tokenizer *t) {
    dbt_encoding *e = calloc(2, sizeof *e), *tmp;
    assert_non_null(e);
    assert_int_equal(dbt_encode(t, "a", 1, NULL, 0, NULL, &tmp), 1);
    e[0] = tmp[0];
    free(tmp);
    assert_int_equal(dbt_encode(t, "a b c", 5, NULL, 0, NULL, &tmp), 1);
    e[1] = tmp[0];
    free(tmp);
    return e;
}

static void test_padding(void **state) {
    (void)state;
    dbt_tokenizer *t = load(-1);
    dbt_encoding *e = encode_a_and_abc(t);
    assert_int_equal(dbt_encodings_pad(t, e, 2, NULL), 0);
    assert_int_equal(e[0].n, 5);
    int32_t want[] = {2, 8, 3, 0, 0};
    expect_ids(&e[0], want, 5);
    assert_int_equal(e[0].attention_mask[2], 1);
    assert_int_equal(e[0].attention_mask[3], 0);
    assert_int_equal(e[1].n, 5); /* the longest is left as it is */
    dbt_encodings_free(e, 2);

    e = encode_a_and_abc(t);
    /* on the left, to 6 rounded up to a multiple of 4 = 8: "a" gets 5 pads before [CLS] a [SEP] */
    dbt_pad_opts left = {6, 4, 1};
    assert_int_equal(dbt_encodings_pad(t, e, 2, &left), 0);
    int32_t want_left[] = {0, 0, 0, 0, 0, 2, 8, 3};
    assert_int_equal(e[0].n, 8);
    expect_ids(&e[0], want_left, 8);
    for (int k = 0; k < 8; k++) {
        assert_int_equal(e[0].attention_mask[k], k >= 5);
        assert_int_equal(e[0].special_tokens_mask[k], k != 6);
        assert_int_equal(e[0].word_ids[k], k == 6 ? 0 : -1);
    }
    assert_int_equal(e[0].offsets[2 * 6], 0); /* "a" still spans [0,1) of its text */
    assert_int_equal(e[0].offsets[2 * 6 + 1], 1);
    int32_t want_b[] = {0, 0, 0, 2, 8, 9, 10, 3}; /* [CLS] a b c [SEP] = 5 tokens, 3 pads */
    expect_ids(&e[1], want_b, 8);
    dbt_pad_opts bad = {-1, 0, 0};
    assert_int_equal(dbt_encodings_pad(t, e, 2, &bad), -1);
    dbt_encodings_free(e, 2);
    dbt_tokenizer_free(t);
}

static void test_decode(void **state) {
    (void)state;
    dbt_tokenizer *t = load(-1);
    int32_t ids[] = {2, 5, 6, 7, 13, 14, 15, 18, 3};
    char *s = dbt_decode(t, ids, 9, 0, 1);
    assert_string_equal(s, "[CLS] unaffable, hellos! [SEP]");
    free(s);
    s = dbt_decode(t, ids, 9, 1, 0);
    assert_string_equal(s, "unaffable, hellos!"); /* the WordPiece decoder already glues " ," */
    free(s);
    int32_t bad[] = {2, 999};
    assert_null(dbt_decode(t, bad, 2, 0, 1));
    dbt_tokenizer_free(t);
}

/* A multilingual-size vocabulary: 250k entries load and tokenize (ids by construction). */
static void test_large_vocab(void **state) {
    (void)state;
    char p[256];
    snprintf(p, sizeof p, "/tmp/dbt-test-bigvocab-%d.txt", (int)getpid());
    FILE *f = fopen(p, "w");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", f);
    for (int i = 5; i < 250000; i++) fprintf(f, i % 2 ? "w%d\n" : "##x%d\n", i);
    fclose(f);
    dbt_tokenizer *t = dbt_tokenizer_load(p, NULL);
    unlink(p);
    assert_non_null(t);
    assert_int_equal(dbt_tokenizer_vocab_size(t), 250000);
    dbt_encoding *e;
    assert_int_equal(dbt_encode(t, "w249999 w5x249998", 17, NULL, 0, NULL, &e), 1);
    int32_t want[] = {2, 249999, 5, 249998, 3}; /* w5 + ##x249998 */
    expect_ids(&e[0], want, 5);
    dbt_encodings_free(e, 1);
    dbt_tokenizer_free(t);
}

static void test_bad_files(void **state) {
    (void)state;
    assert_null(dbt_tokenizer_load("/nonexistent/vocab.txt", NULL));
    assert_non_null(strstr(dbt_last_error(), "cannot open"));
    char p[256];
    snprintf(p, sizeof p, "/tmp/dbt-test-bad-%d.json", (int)getpid());
    FILE *f = fopen(p, "w");
    fputs("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0,", f);
    fclose(f);
    assert_null(dbt_tokenizer_load(p, NULL));
    assert_non_null(strstr(dbt_last_error(), "invalid JSON"));
    f = fopen(p, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", f);
    fclose(f);
    assert_null(dbt_tokenizer_load(p, NULL));
    assert_non_null(strstr(dbt_last_error(), "not supported"));
    unlink(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wordpiece_greedy),
        cmocka_unit_test(test_unknown_word_is_one_unk),
        cmocka_unit_test(test_accents_and_case),
        cmocka_unit_test(test_special_tokens_matched_in_raw_text),
        cmocka_unit_test(test_longest_first_table),
        cmocka_unit_test(test_stride_windows),
        cmocka_unit_test(test_padding),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_large_vocab),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, setup, teardown);
}
