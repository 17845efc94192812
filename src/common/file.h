/* file.h — whole-file reads and path helpers. */
#ifndef DBT_FILE_H
#define DBT_FILE_H

#include <stddef.h>

/* Reads a whole file into a malloc'd, NUL-terminated buffer. Refuses files over max_bytes.
 * Returns NULL with dbt_last_error() set. */
char *dbt_read_file(const char *path, size_t max_bytes, size_t *len_out);
int dbt_is_dir(const char *path);
int dbt_file_exists(const char *path);
/* snprintf(dir "/" name) into out; returns out. */
char *dbt_path_join(char *out, size_t cap, const char *dir, const char *name);

#endif
