/* safetensors.h — a bounds-checked, memory-mapped reader of .safetensors files (and sharded
 * folders through model.safetensors.index.json). */
#ifndef DBT_SAFETENSORS_H
#define DBT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DBT_DT_F32, DBT_DT_F16, DBT_DT_BF16, DBT_DT_I8, DBT_DT_I32, DBT_DT_I64, DBT_DT_OTHER } dbt_dtype;

#define DBT_MAX_DIMS 8

typedef struct {
    char *name;
    dbt_dtype dtype;
    char dtype_name[12];
    int ndim;
    int64_t shape[DBT_MAX_DIMS];
    int64_t numel;
    const void *data;   /* inside the mapping */
    size_t nbytes;
    int used;           /* set by whoever consumes it: what is left is "unexpected" */
} dbt_st_tensor;

typedef struct {
    void *map;          /* one mapping per file */
    size_t map_len;
} dbt_st_file;

typedef struct {
    dbt_st_file *files;
    int n_files;
    dbt_st_tensor *tensors;
    int n_tensors;
} dbt_safetensors;

/* Opens one .safetensors file, appending its tensors. Returns 0 or -1 (dbt_last_error). */
int dbt_st_open_file(dbt_safetensors *st, const char *path);
/* Opens dir/model.safetensors, or the shards named by dir/model.safetensors.index.json. */
int dbt_st_open_dir(dbt_safetensors *st, const char *dir);
void dbt_st_close(dbt_safetensors *st);
dbt_st_tensor *dbt_st_find(dbt_safetensors *st, const char *name);
size_t dbt_dtype_size(dbt_dtype t);

/* Writes tensors to path atomically (temp file, fsync, rename). dtype names as safetensors. */
typedef struct {
    const char *name;
    dbt_dtype dtype;
    int ndim;
    int64_t shape[DBT_MAX_DIMS];
    const void *data;
} dbt_st_write_tensor;
int dbt_st_write(const char *path, const dbt_st_write_tensor *t, int n, const char *metadata_json);

#endif
