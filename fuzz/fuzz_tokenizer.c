/* fuzz_tokenizer.c — dbt_encode on arbitrary bytes (invalid UTF-8 included), with options taken
 * from the first bytes: pairs, truncation strategies, max_length, stride, overflow windows,
 * special tokens; then padding and decoding. Checks the encoding invariants. */
#include "distilbert.h"
#include "fuzz_util.h"

static dbt_tokenizer *tok[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char p[4096];
    dbt_tokenizer_opts cased = {0, -1};
    tok[0] = dbt_tokenizer_load(fuzz_data("data/vocab/bert-base-uncased/vocab.txt", p, sizeof p), NULL);
    tok[1] = dbt_tokenizer_load(fuzz_data("data/vocab/bert-base-cased/vocab.txt", p, sizeof p), &cased);
    if (!tok[0] || !tok[1]) {
        fprintf(stderr, "fuzz_tokenizer: %s (run from the repository root or set DBT_FUZZ_ROOT)\n", dbt_last_error());
        abort();
    }
    return 0;
}

static void check(const dbt_tokenizer *t, const dbt_encoding *e, int window, size_t cps_a, size_t cps_b,
                  const dbt_encode_opts *o) {
    int32_t V = dbt_tokenizer_vocab_size(t);
    /* Truncation keeps max_length tokens in the first window, with the quirks of tokenizers that
     * we share (checked against it): when the special tokens alone exceed max_length nothing is
     * truncated (max_length - n_special wraps around); when they fill it exactly, the one
     * overflow window holds the whole text; the overflow windows of a pair can be longer. */
    int specials = o->add_special_tokens ? (cps_b > 0 ? 3 : 2) : 0;
    if (o->max_length > 0 && o->truncation != DBT_TRUNCATE_NONE &&
        (window == 0 ? o->max_length >= specials : o->max_length > specials && cps_b == 0))
        FUZZ_CHECK(e->n <= o->max_length);
    for (int i = 0; i < e->n; i++) {
        FUZZ_CHECK(e->ids[i] >= 0 && e->ids[i] < V);
        FUZZ_CHECK(e->attention_mask[i] == 1);
        int32_t s = e->offsets[2 * i], x = e->offsets[2 * i + 1];
        FUZZ_CHECK(s >= 0 && s <= x);
        size_t lim = e->sequence_ids[i] == 1 ? cps_b : cps_a;
        FUZZ_CHECK((size_t)x <= lim);
        FUZZ_CHECK(e->sequence_ids[i] >= -1 && e->sequence_ids[i] <= 1);
    }
}

static size_t count_cps(const char *s, size_t n) {
    /* an upper bound of dbt_utf8_count: every byte may be one code point (U+FFFD) */
    (void)s;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const uint8_t flags = data[0], maxlen = data[1], stride = data[2];
    const char *text = (const char *)data + 3;
    size_t len = size - 3;
    const dbt_tokenizer *t = tok[flags & 1];
    dbt_encode_opts o = dbt_encode_opts_default(t);
    o.add_special_tokens = !(flags & 2);
    o.truncation = (dbt_truncation)((flags >> 2) & 3);
    o.max_length = flags & 16 ? maxlen : 0;
    o.return_overflowing = !!(flags & 32);
    o.stride = stride & 15;
    const char *pair = NULL;
    size_t plen = 0, alen = len;
    if (flags & 64) { /* a pair: split at the first TAB */
        const char *tab = memchr(text, '\t', len);
        if (tab) {
            alen = (size_t)(tab - text);
            pair = tab + 1;
            plen = len - alen - 1;
        }
    }
    dbt_encoding *encs = NULL;
    int n = dbt_encode(t, text, alen, pair, plen, &o, &encs);
    if (n < 0) return 0;
    FUZZ_CHECK(n >= 1 && encs);
    for (int k = 0; k < n; k++) check(t, &encs[k], k, count_cps(text, alen), count_cps(pair, plen), &o);
    if (flags & 128) {
        /* to the longest, on either side, rounded up to a multiple of 8 or not */
        dbt_pad_opts po = {0, flags & 2 ? 8 : 0, flags & 1};
        FUZZ_CHECK(dbt_encodings_pad(t, encs, n, &po) == 0);
        for (int k = 1; k < n; k++) FUZZ_CHECK(encs[k].n == encs[0].n);
        FUZZ_CHECK(!po.multiple_of || encs[0].n % 8 == 0);
    }
    char *s = dbt_decode(t, encs[0].ids, encs[0].n, flags & 4, flags & 8);
    FUZZ_CHECK(s != NULL);
    free(s);
    dbt_encodings_free(encs, n);
    return 0;
}
