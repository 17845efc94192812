/* test_common.c — UTF-8 decoding rules, the string map and the JSON writer. Expected values are
 * derived by hand from the Unicode standard (Table 3-7, "maximal subparts") and JSON's grammar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/json_writer.h"
#include "common/strmap.h"
#include "common/utf8.h"

/* Decodes all of s and returns the code points in out. */
static size_t decode_all(const char *s, size_t len, int32_t *out) {
    size_t n = 0, i = 0;
    while (i < len) i += dbt_utf8_decode((const unsigned char *)s + i, len - i, &out[n++]);
    return n;
}

static void test_utf8_valid(void **state) {
    (void)state;
    int32_t cp[8];
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"; /* a é € 😀 */
    assert_int_equal(decode_all(s, strlen(s), cp), 4);
    assert_int_equal(cp[0], 'a');
    assert_int_equal(cp[1], 0xE9);
    assert_int_equal(cp[2], 0x20AC);
    assert_int_equal(cp[3], 0x1F600);
}

static void test_utf8_maximal_subparts(void **state) {
    (void)state;
    int32_t cp[16];
    /* Unicode §3.9 example: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 →
     * a FFFD FFFD FFFD b FFFD c FFFD FFFD d */
    const char s[] = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
    size_t n = decode_all(s, sizeof s - 1, cp);
    int32_t want[] = {'a', 0xFFFD, 0xFFFD, 0xFFFD, 'b', 0xFFFD, 'c', 0xFFFD, 0xFFFD, 'd'};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) assert_int_equal(cp[i], want[i]);
}

static void test_utf8_rejects_overlong_and_surrogates(void **state) {
    (void)state;
    int32_t cp[8];
    /* C0 AF (overlong '/'): two replacement characters, C0 and AF are never valid. */
    assert_int_equal(decode_all("\xC0\xAF", 2, cp), 2);
    assert_int_equal(cp[0], 0xFFFD);
    /* ED A0 80 (a UTF-16 surrogate): ED's second byte must be 80..9F → three FFFDs. */
    assert_int_equal(decode_all("\xED\xA0\x80", 3, cp), 3);
    /* F4 90 80 80 is above U+10FFFF → four FFFDs. */
    assert_int_equal(decode_all("\xF4\x90\x80\x80", 4, cp), 4);
    /* A truncated sequence at the end of input is one FFFD. */
    assert_int_equal(decode_all("\xE2\x82", 2, cp), 1);
    assert_int_equal(cp[0], 0xFFFD);
    assert_int_equal(dbt_utf8_count("\xFF\xFEx", 3), 3);
}

static void test_utf8_encode_roundtrip(void **state) {
    (void)state;
    int32_t samples[] = {0, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char buf[4];
        size_t n = dbt_utf8_encode(samples[i], buf);
        int32_t back;
        assert_int_equal(dbt_utf8_decode((unsigned char *)buf, n, &back), n);
        assert_int_equal(back, samples[i]);
    }
}

static void test_strmap(void **state) {
    (void)state;
    dbt_strmap m;
    assert_int_equal(dbt_strmap_init(&m, 2), 0);
    static char keys[1000][8];
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        assert_int_equal(dbt_strmap_put(&m, keys[i], strlen(keys[i]), i), 0);
    }
    for (int i = 0; i < 1000; i++) assert_int_equal(dbt_strmap_get(&m, keys[i], strlen(keys[i])), i);
    assert_int_equal(dbt_strmap_get(&m, "k1000", 5), -1);
    assert_int_equal(dbt_strmap_get(&m, "k1", 1), -1); /* a prefix is a different key */
    assert_int_equal(dbt_strmap_put(&m, keys[7], 2, 70), 0); /* overwrite */
    assert_int_equal(dbt_strmap_get(&m, "k7", 2), 70);
    assert_int_equal(m.count, 1000);
    dbt_strmap_free(&m);
}

static void test_json_writer(void **state) {
    (void)state;
    dbt_jw w = {0};
    dbt_jw_lit(&w, "{\"s\":");
    dbt_jw_str(&w, "a\"b\\c\n\x01", 7);
    dbt_jw_lit(&w, ",\"v\":");
    int32_t v[] = {1, -2, 3};
    dbt_jw_ints(&w, v, 3);
    dbt_jw_lit(&w, ",\"f\":");
    dbt_jw_float(&w, 0.5);
    dbt_jw_lit(&w, ",\"nan\":");
    dbt_jw_float(&w, 0.0 / 0.0);
    dbt_jw_lit(&w, "}");
    assert_string_equal(w.s, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"v\":[1,-2,3],\"f\":0.5,\"nan\":null}");
    dbt_jw_free(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_maximal_subparts),
        cmocka_unit_test(test_utf8_rejects_overlong_and_surrogates),
        cmocka_unit_test(test_utf8_encode_roundtrip),
        cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_json_writer),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
