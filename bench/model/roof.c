/* roof.c — the machine's measured fp32 roof, for the model benchmark's "% of roof" column.
 *
 *   roof [--threads N] [--quick]
 *
 * (a) A register-only FMA loop: 24 independent accumulator chains of vfmadd (AVX-512, 16 lanes;
 *     and AVX2, 8 lanes, for reference), no memory traffic: the most fp32 FLOP/s the cores
 *     deliver. Measured on 1 thread and on N threads (one per CPU of the affinity mask, pinned),
 *     over each thread's CPU time ("*_gflops": what a core does while it runs the loop, which
 *     other processes on a shared machine cannot lower) and over wall time ("*_gflops_wall").
 * (b) The best sgemm at hand: OpenBLAS cblas_sgemm (as the environment configures it: see
 *     "openblas_core") at 1024³ and at the model's shapes — the Linear layers of a 768/3072
 *     encoder over M = tokens in the batch (C[M,N] = X[M,K]·W[N,K]ᵀ, row-major, as libdistilbert
 *     calls it), and one attention head's QKᵀ and PV — on N threads.
 *
 * Prints one JSON object on stdout. Each figure is the best and the median GFLOP/s over
 * repetitions that run for at least ~0.2 s (0.08 s with --quick). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenBLAS extensions (declared in its cblas.h too; repeated for other cblas headers). */
extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define CHAINS 24

/* iters × CHAINS × 16 lanes × 2 FLOPs. x converges to c / (1 - b): no overflow, no denormals. */
__attribute__((target("avx512f"), noinline)) static float fma512(long iters, float seed) {
    __m512 acc[CHAINS];
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps(seed + (float)j);
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 24
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_fmadd_ps(acc[j], b, c);
    }
    __m512 s = acc[0];
    for (int j = 1; j < CHAINS; j++) s = _mm512_add_ps(s, acc[j]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline)) static float fma256(long iters, float seed) {
    __m256 acc[CHAINS / 2];
    for (int j = 0; j < CHAINS / 2; j++) acc[j] = _mm256_set1_ps(seed + (float)j);
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS / 2; j++) acc[j] = _mm256_fmadd_ps(acc[j], b, c);
    }
    __m256 s = acc[0];
    for (int j = 1; j < CHAINS / 2; j++) s = _mm256_add_ps(s, acc[j]);
    float f[8];
    _mm256_storeu_ps(f, s);
    return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}

typedef struct {
    int cpu;  /* -1: do not pin */
    int wide; /* 1: AVX-512, 0: AVX2 */
    long iters;
    pthread_barrier_t *bar;
    double secs, cpu_secs;
    float sink;
} fma_job;

static void *fma_thread(void *p) {
    fma_job *j = p;
    if (j->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(j->cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    (void)(j->wide ? fma512(1000, 1.0f) : fma256(1000, 1.0f));
    pthread_barrier_wait(j->bar);
    double t0 = now_s(), c0 = thread_cpu_s();
    j->sink = j->wide ? fma512(j->iters, 1.0f) : fma256(j->iters, 1.0f);
    j->cpu_secs = thread_cpu_s() - c0;
    j->secs = now_s() - t0;
    return NULL;
}

/* GFLOP/s of `threads` threads running the loop at once (the slowest thread's time counts).
 * cpu: 1 counts each thread's CPU time rather than wall time — the rate of the core while the
 * loop has it, which other processes sharing the core cannot lower (there is no memory traffic
 * for them to disturb). */
static double fma_run(int threads, const int *cpus, int wide, long iters, int cpu) {
    pthread_t th[64];
    fma_job jobs[64];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (fma_job){cpus ? cpus[t] : -1, wide, iters, &bar, 0, 0, 0};
        pthread_create(&th[t], NULL, fma_thread, &jobs[t]);
    }
    double worst = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        double x = cpu ? jobs[t].cpu_secs : jobs[t].secs;
        if (x > worst) worst = x;
        if (jobs[t].sink == 12345.0f) fputc(' ', stderr); /* keeps the result alive */
    }
    pthread_barrier_destroy(&bar);
    double flops = (double)iters * CHAINS * (wide ? 16 : 8) * 2 * threads / (wide ? 1 : 2);
    return flops / worst * 1e-9;
}

/* Calibrates the iteration count to ~secs, then best of `reps` runs. */
static double fma_peak(int threads, const int *cpus, int wide, double secs, int reps, int cpu) {
    long iters = 200000;
    double g = fma_run(1, cpus, wide, iters, 1); /* GFLOP/s of one thread */
    double per_iter = (double)CHAINS * (wide ? 16 : 8) * 2 / (wide ? 1 : 2) / (g * 1e9);
    iters = (long)(secs / per_iter);
    if (iters < 1000) iters = 1000;
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double x = fma_run(threads, cpus, wide, iters, cpu);
        if (x > best) best = x;
    }
    return best;
}

static float *rand_buf(size_t n) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "roof: out of memory\n"); exit(1); }
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

typedef struct {
    const char *what;
    int m, n, k;
    int transb; /* 1: B is [N,K] (C = A·Bᵀ), 0: B is [K,N] */
} gemm_shape;

static void sgemm_case(const gemm_shape *g, double secs, int first) {
    float *a = rand_buf((size_t)g->m * g->k), *b = rand_buf((size_t)g->n * g->k);
    float *c = rand_buf((size_t)g->m * g->n);
    int ldb = g->transb ? g->k : g->n;
    enum CBLAS_TRANSPOSE tb = g->transb ? CblasTrans : CblasNoTrans;
    double flops = 2.0 * g->m * g->n * g->k;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, g->m, g->n, g->k, 1.0f, a, g->k, b, ldb, 0.0f, c, g->n);
    double times[4096];
    int reps = 0;
    double start = now_s();
    while (reps < 4096 && (reps < 3 || now_s() - start < secs)) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, g->m, g->n, g->k, 1.0f, a, g->k, b, ldb, 0.0f, c,
                    g->n);
        times[reps++] = now_s() - t0;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    double med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    printf("%s\n    {\"what\":\"%s\",\"m\":%d,\"n\":%d,\"k\":%d,\"layout\":\"%s\",\"reps\":%d,"
           "\"gflops_best\":%.2f,\"gflops_median\":%.2f}",
           first ? "" : ",", g->what, g->m, g->n, g->k, g->transb ? "nt" : "nn", reps,
           flops / times[0] * 1e-9, flops / med * 1e-9);
    fflush(stdout);
    free(a);
    free(b);
    free(c);
}

int main(int argc, char **argv) {
    int threads = 1, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > 64) { fprintf(stderr, "roof: --threads 1..64\n"); return 2; }

    /* The CPUs we may run on: thread t is pinned to the t-th of them. */
    cpu_set_t set;
    int cpus[64], ncpu = 0;
    if (!sched_getaffinity(0, sizeof set, &set))
        for (int c = 0; c < CPU_SETSIZE && ncpu < 64; c++)
            if (CPU_ISSET(c, &set)) cpus[ncpu++] = c;
    int pin = ncpu >= threads;
    double secs = quick ? 0.08 : 0.2;
    int reps = quick ? 2 : 5;

    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f"), has256 = __builtin_cpu_supports("avx2") &&
                                                             __builtin_cpu_supports("fma");
    char model[256] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *p = strchr(line, ':');
                if (p) {
                    p += 1 + (p[1] == ' ');
                    p[strcspn(p, "\n")] = 0;
                    snprintf(model, sizeof model, "%s", p);
                }
                break;
            }
        fclose(f);
    }
    printf("{\n  \"cpu\": \"%s\",\n  \"threads\": %d,\n  \"cpus_allowed\": %d,\n  \"pinned\": %s,\n",
           model, threads, ncpu, pin ? "true" : "false");
    printf("  \"fma\": {\n");
    /* Per-thread CPU time (the cores' rate, robust to other load), then wall time for reference. */
    static const char *names[4] = {"avx512_gflops_1t", "avx512_gflops", "avx2_gflops_1t", "avx2_gflops"};
    for (int cpu = 1; cpu >= 0; cpu--)
        for (int i = 0; i < 4; i++) {
            int wide = i < 2, nt = i % 2 ? threads : 1;
            printf("%s    \"%s%s\": ", cpu == 1 && i == 0 ? "" : ",\n", names[i], cpu ? "" : "_wall");
            if (wide ? has512 : has256) printf("%.2f", fma_peak(nt, pin ? cpus : NULL, wide, secs, reps, cpu));
            else printf("null");
            fflush(stdout);
        }
    printf("\n  },\n");
    fflush(stdout);

    openblas_set_num_threads(threads);
    const char *cfg = openblas_get_config();
    printf("  \"openblas_core\": \"%s\",\n  \"openblas_config\": \"%s\",\n  \"sgemm\": [",
           openblas_get_corename(), cfg ? cfg : "");
    gemm_shape shapes[64];
    int ns = 0;
    shapes[ns++] = (gemm_shape){"square", 1024, 1024, 1024, 0};
    static const int ms_full[] = {16, 128, 512, 1024, 4096}, ms_quick[] = {128, 1024};
    const int *ms = quick ? ms_quick : ms_full;
    int nm = quick ? 2 : 5;
    for (int i = 0; i < nm; i++) {
        shapes[ns++] = (gemm_shape){"linear 768->768", ms[i], 768, 768, 1};
        shapes[ns++] = (gemm_shape){"linear 768->3072", ms[i], 3072, 768, 1};
        shapes[ns++] = (gemm_shape){"linear 3072->768", ms[i], 768, 3072, 1};
    }
    static const int ss_full[] = {128, 512}, ss_quick[] = {128};
    for (int i = 0; i < (quick ? 1 : 2); i++) {
        int s = quick ? ss_quick[i] : ss_full[i];
        shapes[ns++] = (gemm_shape){"attention QK^T (1 head)", s, s, 64, 1};
        shapes[ns++] = (gemm_shape){"attention PV (1 head)", s, 64, s, 0};
    }
    for (int i = 0; i < ns; i++) sgemm_case(&shapes[i], secs, i == 0);
    printf("\n  ]\n}\n");
    return 0;
}
