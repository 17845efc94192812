/* file.c — reading small files (configs, vocabularies) whole. Weights are mmap'd elsewhere. */
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"

char *dbt_read_file(const char *path, size_t max_bytes, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) { dbt_set_error("cannot open %s: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        dbt_set_error("%s is not a regular file", path);
        return NULL;
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        fclose(f);
        dbt_set_error("%s is too large (%lld bytes, limit %zu)", path, (long long)st.st_size,
                      max_bytes);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) { fclose(f); dbt_set_error("out of memory reading %s", path); return NULL; }
    if (n && fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        dbt_set_error("cannot read %s", path);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len_out) *len_out = n;
    return buf;
}

int dbt_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int dbt_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *dbt_path_join(char *out, size_t cap, const char *dir, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
    return out;
}
