/* fuzz_util.h — what the harnesses share: a scratch folder for readers that take a path, and a
 * check that aborts (a finding) when an invariant fails. Each harness defines
 * LLVMFuzzerTestOneInput; libFuzzer drives it (make fuzz), replay_main.c replays files (make test). */
#ifndef DBT_FUZZ_UTIL_H
#define DBT_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* A private folder under /dev/shm (or $TMPDIR, /tmp), made once, removed at exit. */
static char fuzz_dir_path[256];
static char fuzz_file_paths[4][320];

__attribute__((unused)) static void fuzz_cleanup(void) {
    for (int i = 0; i < 4; i++)
        if (fuzz_file_paths[i][0]) unlink(fuzz_file_paths[i]);
    if (fuzz_dir_path[0]) rmdir(fuzz_dir_path);
}

__attribute__((unused)) static const char *fuzz_dir(void) {
    if (!fuzz_dir_path[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/dbt-fuzz-XXXXXX", base);
        if (!mkdtemp(fuzz_dir_path)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_dir_path;
}

/* Writes data to <fuzz_dir>/name (slot 0..3 remembers it for the clean-up); returns the path. */
__attribute__((unused)) static const char *fuzz_write(int slot, const char *name, const uint8_t *data, size_t size) {
    char *path = fuzz_file_paths[slot];
    snprintf(path, sizeof fuzz_file_paths[slot], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
    return path;
}

/* The repository's data/ folder (make runs harnesses from the repository root). */
__attribute__((unused)) static const char *fuzz_data(const char *rel, char *buf, size_t cap) {
    const char *root = getenv("DBT_FUZZ_ROOT");
    snprintf(buf, cap, "%s/%s", root ? root : ".", rel);
    return buf;
}

#endif
