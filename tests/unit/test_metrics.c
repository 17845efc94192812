/* test_metrics.c — the evaluation metrics on small cases worked out by hand (the comments show the
 * arithmetic). tests/test_metrics_reference.py compares them with sklearn, scipy, seqeval and the
 * SQuAD script on random inputs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "training/metrics.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void close_to(double got, double want, const char *what, int line) {
    if (!(fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want)))) {
        print_error("line %d, %s: got %.17g, want %.17g\n", line, what, got, want);
        fail();
    }
}
#define assert_close(got, want) close_to((got), (want), #got, __LINE__)

static void test_accuracy(void **state) {
    (void)state;
    int pred[] = {1, 0, 1, 1}, gold[] = {1, 1, 1, 0};
    assert_close(dbt_metric_accuracy(pred, gold, 4), 0.5); /* 2 of 4 */
    assert_true(isnan(dbt_metric_accuracy(pred, gold, 0)));
}

static void test_mcc(void **state) {
    (void)state;
    int gold[] = {0, 1, 1, 0, 1}, inv[] = {1, 0, 0, 1, 0}, zeros[] = {0, 0, 0, 0, 0};
    assert_close(dbt_metric_mcc(gold, gold, 5), 1.0);
    assert_close(dbt_metric_mcc(inv, gold, 5), -1.0);
    /* A constant prediction: cov(p,p) = n² − n² = 0 → 0 by definition. */
    assert_close(dbt_metric_mcc(zeros, gold, 5), 0.0);
    /* pred 0 1 2 0 vs gold 0 1 2 1: t = (1,2,1), p = (2,1,1), correct 3, n 4.
     * cov(t,p) = 3·4 − (2+2+1) = 7; cov(p,p) = 16 − 6 = 10; cov(t,t) = 16 − 6 = 10 → 7/10. */
    int p3[] = {0, 1, 2, 0}, g3[] = {0, 1, 2, 1};
    assert_close(dbt_metric_mcc(p3, g3, 4), 0.7);
    /* Labels are arbitrary integers: the same shifted by −5. */
    int p4[] = {-5, -4, -3, -5}, g4[] = {-5, -4, -3, -4};
    assert_close(dbt_metric_mcc(p4, g4, 4), 0.7);
}

static void test_prf_binary(void **state) {
    (void)state;
    dbt_prf r;
    /* tp 2 (positions 0 and 4), predicted 3, true 3 → p = r = f = 2/3. */
    int pred[] = {1, 1, 0, 0, 1}, gold[] = {1, 0, 0, 1, 1};
    assert_int_equal(dbt_metric_prf_binary(pred, gold, 5, 1, &r), 0);
    assert_close(r.precision, 2.0 / 3), assert_close(r.recall, 2.0 / 3), assert_close(r.f1, 2.0 / 3);
    /* Nothing predicted positive: precision 0/0 → 0 (zero_division), recall 0, F1 0. */
    int none[] = {0, 0}, g2[] = {0, 1};
    assert_int_equal(dbt_metric_prf_binary(none, g2, 2, 1, &r), 0);
    assert_close(r.precision, 0), assert_close(r.recall, 0), assert_close(r.f1, 0);
    /* p = 1/2, r = 1: F1 = 2·½·1/(3/2) = 2/3. */
    int p5[] = {1, 1}, g5[] = {1, 0};
    assert_int_equal(dbt_metric_prf_binary(p5, g5, 2, 1, &r), 0);
    assert_close(r.precision, 0.5), assert_close(r.recall, 1), assert_close(r.f1, 2.0 / 3);
    /* sklearn raises for three labels, and for two labels without pos_label. */
    int p3[] = {0, 1, 2}, g02[] = {0, 2, 2};
    assert_int_equal(dbt_metric_prf_binary(p3, p3, 3, 1, &r), -1);
    assert_int_equal(dbt_metric_prf_binary(g02, g02, 3, 1, &r), -1);
    /* One label, not pos_label: all zeros, no error. */
    int twos[] = {2, 2};
    assert_int_equal(dbt_metric_prf_binary(twos, twos, 2, 1, &r), 0);
    assert_close(r.f1, 0);
}

static void test_prf_macro(void **state) {
    (void)state;
    dbt_prf r;
    /* pred 0 1 2 0 vs gold 0 1 2 1:
     *   label 0: tp 1, pred 2, true 1 → p ½, r 1, f 2/3
     *   label 1: tp 1, pred 1, true 2 → p 1, r ½, f 2/3
     *   label 2: p = r = f = 1
     * macro p = r = (½ + 1 + 1)/3 = 5/6, f = (2/3 + 2/3 + 1)/3 = 7/9. */
    int p[] = {0, 1, 2, 0}, g[] = {0, 1, 2, 1};
    assert_int_equal(dbt_metric_prf_macro(p, g, 4, &r), 0);
    assert_close(r.precision, 5.0 / 6), assert_close(r.recall, 5.0 / 6), assert_close(r.f1, 7.0 / 9);
    assert_int_equal(dbt_metric_prf_macro(p, g, 0, &r), 0);
    assert_true(isnan(r.f1));
}

static void test_correlation(void **state) {
    (void)state;
    double x[] = {1, 2, 3}, up[] = {2, 4, 6}, down[] = {3, 2, 1}, mixed[] = {1, 3, 2}, flat[] = {4, 4, 4};
    assert_close(dbt_metric_pearson(x, up, 3), 1.0);
    assert_close(dbt_metric_pearson(x, down, 3), -1.0);
    /* dx = (−1, 0, 1), dy = (−1, 1, 0): Σdxdy = 1, |dx| = |dy| = √2 → ½. */
    assert_close(dbt_metric_pearson(x, mixed, 3), 0.5);
    assert_true(isnan(dbt_metric_pearson(x, flat, 3)));
    assert_true(isnan(dbt_metric_pearson(x, up, 1)));
    double a2[] = {5, 1}, b2[] = {2, 7}; /* n == 2: sign(1−5)·sign(7−2) = −1 */
    assert_close(dbt_metric_pearson(a2, b2, 2), -1.0);

    /* Spearman with a tie: x = 1 2 2 3 → ranks 1 2.5 2.5 4; y = 1 3 2 4 → ranks 1 3 2 4.
     * Both means 2.5; dx = (−1.5, 0, 0, 1.5), dy = (−1.5, .5, −.5, 1.5).
     * Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5 → r = 4.5/√22.5 = √0.9. */
    double sx[] = {1, 2, 2, 3}, sy[] = {1, 3, 2, 4};
    assert_close(dbt_metric_spearman(sx, sy, 4), sqrt(0.9));
    assert_close(dbt_metric_spearman(x, down, 3), -1.0);
    assert_true(isnan(dbt_metric_spearman(x, flat, 3)));
    assert_true(isnan(dbt_metric_spearman(x, up, 1)));

    double v[] = {3, 1, 3, 2}, ranks[4];
    assert_int_equal(dbt_metric_rankdata(v, 4, ranks), 0);
    double want[] = {3.5, 1, 3.5, 2}; /* the two 3s share ranks 3 and 4 */
    for (int i = 0; i < 4; i++) assert_close(ranks[i], want[i]);

    double ones[200];
    for (int i = 0; i < 200; i++) ones[i] = 0.5;
    assert_close(dbt_metric_numpy_sum(ones, 200), 100.0);
    assert_close(dbt_metric_numpy_sum(ones, 0), 0.0);
}

static void expect_entities(const char *const *tags, size_t n, const char *want) {
    dbt_entity *e;
    int64_t k = dbt_seqeval_entities(tags, n, &e);
    assert_true(k >= 0);
    char buf[256] = "";
    for (int64_t i = 0; i < k; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s(%.*s,%lld,%lld)", i ? " " : "", (int)e[i].type_len,
                 e[i].type, (long long)e[i].start, (long long)e[i].end);
    free(e);
    assert_string_equal(buf, want);
}

static void test_seqeval_entities(void **state) {
    (void)state;
    const char *a[] = {"B-PER", "I-PER", "O", "B-LOC"}; /* seqeval's docstring example */
    expect_entities(a, N(a), "(PER,0,1) (LOC,3,3)");
    const char *b[] = {"O", "I-PER", "I-PER", "I-LOC", "B-X"}; /* I- after O starts; a type change splits */
    expect_entities(b, N(b), "(PER,1,2) (LOC,3,3) (X,4,4)");
    const char *c[] = {"S-PER", "B-LOC", "E-LOC", "E-LOC"}; /* S- is one; E- after E- starts again */
    expect_entities(c, N(c), "(PER,0,0) (LOC,1,2) (LOC,3,3)");
    const char *d[] = {"B", "I", "B-PER-X", "X-PER"}; /* no type → "_"; type after the first '-' */
    expect_entities(d, N(d), "(_,0,1) (PER-X,2,2) (PER,3,3)");
    const char *empty[] = {"O", ""};
    dbt_entity *e;
    assert_int_equal(dbt_seqeval_entities(empty, 2, &e), -1);
    assert_int_equal(dbt_seqeval_entities(NULL, 0, &e), 0);
}

static void test_seqeval_report(void **state) {
    (void)state;
    /* seqeval's f1_score docstring: gold MISC (2,3) (4,4), PER (8,9) [after the joining 'O'];
     * pred MISC (2,3) (4,5), PER (8,9).
     *   MISC: tp 1, pred 2, true 2 → .5 .5 .5; PER: 1 1 1
     *   micro: tp 2, pred 3, true 3 → 2/3; macro f = (.5 + 1)/2 = .75; weighted f = (.5·2 + 1)/3. */
    const char *gold[] = {"O", "O", "B-MISC", "I-MISC", "B-MISC", "O", "O", "B-PER", "I-PER", "O"};
    const char *pred[] = {"O", "O", "B-MISC", "I-MISC", "B-MISC", "I-MISC", "O", "B-PER", "I-PER", "O"};
    size_t lens[] = {7, 3};
    dbt_seqeval_report r;
    assert_int_equal(dbt_seqeval_evaluate(pred, gold, lens, 2, &r), 0);
    assert_int_equal(r.n_types, 2);
    assert_string_equal(r.types[0].name, "MISC");
    assert_string_equal(r.types[1].name, "PER");
    assert_close(r.types[0].row.f1, 0.5);
    assert_int_equal(r.types[0].row.support, 2);
    assert_close(r.types[1].row.precision, 1.0);
    assert_close(r.micro.f1, 2.0 / 3);
    assert_int_equal(r.micro.support, 3);
    assert_close(r.macro.f1, 0.75);
    assert_close(r.weighted.f1, 2.0 / 3);
    dbt_seqeval_report_free(&r);

    /* Sentences are joined with an 'O': B-PER | I-PER are two entities, not one. */
    const char *s[] = {"B-PER", "I-PER"};
    size_t one[] = {1, 1};
    assert_int_equal(dbt_seqeval_evaluate(s, s, one, 2, &r), 0);
    assert_int_equal(r.micro.support, 2);
    assert_close(r.micro.f1, 1.0);
    dbt_seqeval_report_free(&r);

    /* No entities anywhere: micro 0, macro NaN (mean of nothing), weighted 0. */
    const char *o[] = {"O"};
    size_t l1[] = {1};
    assert_int_equal(dbt_seqeval_evaluate(o, o, l1, 1, &r), 0);
    assert_int_equal(r.n_types, 0);
    assert_close(r.micro.f1, 0);
    assert_true(isnan(r.macro.f1));
    assert_close(r.weighted.f1, 0);
    dbt_seqeval_report_free(&r);
    assert_int_equal(dbt_seqeval_evaluate(o, o, l1, 0, &r), -1); /* seqeval raises on [] */
}

static void expect_norm(const char *in, const char *want) {
    char *got = dbt_squad_normalize(in, strlen(in));
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_squad_normalize(void **state) {
    (void)state;
    expect_norm("The  Cat!", "cat");
    expect_norm("  An apple, the pie.  ", "apple pie");
    expect_norm("theatre a-b an_", "theatre ab");        /* whole words only; '-' and '_' are punctuation */
    expect_norm("_\xc3\xa9the the\xc3\xa9 the2", "\xc3\xa9the the\xc3\xa9 the2"); /* é and 2 are word characters */
    expect_norm("(the) \"a\"", "");                        /* punctuation goes first, then the articles */
    expect_norm("x\xe3\x80\x80\xc2\xa0y\x1cz", "x y z");   /* U+3000, U+00A0 and U+001C split, as str.split() */
    expect_norm("x\xe2\x80\x8by", "x\xe2\x80\x8by");       /* U+200B is not whitespace */
    expect_norm("\xc3\x84rger", "\xc3\xa4rger");           /* Ärger → ärger */
    expect_norm("\xc4\xb0", "i\xcc\x87");                  /* İ → i + U+0307 (full lowercase) */
    expect_norm("\xce\x9f\xce\x94\xce\x9f\xce\xa3.", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82"); /* ΟΔΟΣ. → οδος (final ς) */
    expect_norm("\xce\xa3", "\xcf\x83");                   /* a lone Σ → σ */
    expect_norm("the\xcc\x81", "\xcc\x81");               /* a combining mark is not a word character */

    char *lo = dbt_py_lower("A\xce\xa3'B", 5); /* Σ followed (past the apostrophe) by a letter: σ */
    assert_string_equal(lo, "a\xcf\x83'b");
    free(lo);
}

static void test_squad_scores(void **state) {
    (void)state;
    /* pred tokens {cat, sat}, gold {cat, sat, down}: p 1, r 2/3 → F1 = 2·(2/3)/(5/3) = 0.8. */
    const char *g1[] = {"a cat sat down"};
    assert_close(dbt_squad_f1("the cat sat", g1, 1), 0.8);
    assert_int_equal(dbt_squad_exact_match("the cat sat", g1, 1), 0);
    /* Bags: x x y vs x y y share min(2,1) + min(1,2) = 2 of 3 → p = r = F1 = 2/3. */
    const char *g2[] = {"x y y"};
    assert_close(dbt_squad_f1("x x y", g2, 1), 2.0 / 3);
    /* The best of several ground truths. */
    const char *g3[] = {"dog", "The cat.", "cat dog"};
    assert_int_equal(dbt_squad_exact_match("cat", g3, 3), 1);
    assert_close(dbt_squad_f1("cat", g3, 3), 1.0);
    assert_int_equal(dbt_squad_exact_match("cat", g3, 0), -1);

    /* Two questions, the second unanswered: EM = 100·1/2, F1 = 100·1/2. */
    const char *pred[] = {"The Cat", NULL};
    const char *gold[] = {"cat", "dog", "fish"};
    size_t n_gold[] = {2, 1};
    double em, f1;
    assert_int_equal(dbt_squad_evaluate(pred, gold, n_gold, 2, &em, &f1), 0);
    assert_close(em, 50.0);
    assert_close(f1, 50.0);
    assert_int_equal(dbt_squad_evaluate(pred, gold, n_gold, 0, &em, &f1), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy),        cmocka_unit_test(test_mcc),
        cmocka_unit_test(test_prf_binary),      cmocka_unit_test(test_prf_macro),
        cmocka_unit_test(test_correlation),     cmocka_unit_test(test_seqeval_entities),
        cmocka_unit_test(test_seqeval_report),  cmocka_unit_test(test_squad_normalize),
        cmocka_unit_test(test_squad_scores),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
