/* replay_main.c — runs a fuzz harness on files (make test: fuzz/regressions/<harness>/ and the
 * seed corpus), without libFuzzer: each argument is a file or a folder of files. Each input has
 * the time limit `make fuzz` gives libFuzzer (-timeout=10), so a regression that was a hang
 * (e.g. a quadratic loop) fails the replay instead of only making it slow. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECONDS_PER_INPUT 10

static const char *current; /* the input being run, for the timeout message */

static void on_timeout(int sig) {
    (void)sig;
    static const char msg[] = "replay: timeout: an input ran longer than 10 s: ";
    if (write(2, msg, sizeof msg - 1) < 0 || write(2, current, strlen(current)) < 0 || write(2, "\n", 1) < 0) {}
    _exit(70);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) { fclose(f); free(buf); return -1; }
    fclose(f);
    current = path;
    alarm(SECONDS_PER_INPUT);
    LLVMFuzzerTestOneInput(buf, (size_t)n); /* a copy of exactly n bytes: ASan sees overreads */
    alarm(0);
    free(buf);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    signal(SIGALRM, on_timeout);
    int files = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) continue; /* a harness may have no regressions yet */
        if (!S_ISDIR(sb.st_mode)) {
            failed |= run_file(argv[i]) != 0;
            files++;
            continue;
        }
        struct dirent **list;
        int n = scandir(argv[i], &list, NULL, by_name);
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], list[k]->d_name);
            if (list[k]->d_name[0] != '.' && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
                failed |= run_file(path) != 0;
                files++;
            }
            free(list[k]);
        }
        free(list);
    }
    printf("%s: %d inputs replayed\n", argv[0], files);
    return failed;
}
