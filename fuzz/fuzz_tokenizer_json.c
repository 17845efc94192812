/* fuzz_tokenizer_json.c — tokenizer.json loading: the bytes up to the first NUL are the file; if
 * it loads, the bytes after it are encoded and decoded with it. */
#include "distilbert.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t flen = nul ? (size_t)(nul - data) : size;
    const char *path = fuzz_write(0, "tokenizer.json", data, flen);
    dbt_tokenizer *t = dbt_tokenizer_load(path, NULL);
    if (!t) return 0;
    int32_t V = dbt_tokenizer_vocab_size(t);
    FUZZ_CHECK(V >= 0);
    for (int32_t i = 0; i < V && i < 64; i++) {
        const char *s = dbt_tokenizer_id_to_token(t, i);
        if (s) FUZZ_CHECK(dbt_tokenizer_token_to_id(t, s) >= 0);
    }
    const char *text = nul ? (const char *)nul + 1 : "Hello, world! [MASK] héllo";
    size_t tlen = nul ? size - flen - 1 : strlen(text);
    dbt_encode_opts o = dbt_encode_opts_default(t);
    dbt_encoding *e = NULL;
    int n = dbt_encode(t, text, tlen, NULL, 0, &o, &e);
    if (n > 0) {
        for (int i = 0; i < e[0].n; i++) FUZZ_CHECK(e[0].ids[i] >= 0 && e[0].ids[i] < V);
        char *s = dbt_decode(t, e[0].ids, e[0].n, 1, 1);
        free(s);
        dbt_encodings_free(e, n);
    }
    dbt_tokenizer_free(t);
    return 0;
}
