/* fuzz_config.c — config.json parsing (DistilBERT and BERT keys, architectures, labels,
 * activations), then writing it back and parsing the result again. */
#include "fuzz_util.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dbt_config c;
    memset(&c, 0, sizeof c);
    if (dbt_config_parse(&c, (const char *)data, size) == 0) {
        FUZZ_CHECK(c.n_labels >= 0);
        for (int i = 0; i < c.n_labels; i++) FUZZ_CHECK(c.id2label && c.id2label[i]);
        char *json = dbt_config_to_json(&c, c.architecture);
        if (json) {
            dbt_config d;
            memset(&d, 0, sizeof d);
            FUZZ_CHECK(dbt_config_parse(&d, json, strlen(json)) == 0); /* what we write, we read */
            FUZZ_CHECK(d.dim == c.dim && d.n_layers == c.n_layers && d.n_labels == c.n_labels);
            dbt_config_free(&d);
            free(json);
        }
    }
    dbt_config_free(&c);
    return 0;
}
