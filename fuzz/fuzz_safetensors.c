/* fuzz_safetensors.c — the .safetensors reader on an arbitrary file: header length, JSON header,
 * dtypes, shapes, data offsets, overlaps. Every tensor it accepts must lie inside the file, with
 * numel × element size = nbytes; its bytes are read (a read outside the mapping crashes). */
#include "fuzz_util.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "model.safetensors", data, size);
    dbt_safetensors st;
    memset(&st, 0, sizeof st);
    if (dbt_st_open_file(&st, path) == 0) {
        FUZZ_CHECK(st.n_files == 1);
        const unsigned char *lo = st.files[0].map, *hi = lo + st.files[0].map_len;
        unsigned sum = 0;
        for (int i = 0; i < st.n_tensors; i++) {
            const dbt_st_tensor *t = &st.tensors[i];
            FUZZ_CHECK(t->name && t->ndim >= 0 && t->ndim <= DBT_MAX_DIMS);
            FUZZ_CHECK((const unsigned char *)t->data >= lo && (const unsigned char *)t->data + t->nbytes <= hi);
            if (t->dtype != DBT_DT_OTHER) /* F64, U8, ...: read but not sized by dbt_dtype_size */
                FUZZ_CHECK((size_t)t->numel * dbt_dtype_size(t->dtype) == t->nbytes);
            for (size_t b = 0; b < t->nbytes; b++) sum += ((const unsigned char *)t->data)[b];
            FUZZ_CHECK(dbt_st_find(&st, t->name) != NULL);
        }
        (void)sum;
    }
    dbt_st_close(&st);
    return 0;
}
