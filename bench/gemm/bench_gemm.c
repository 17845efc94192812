/* bench_gemm.c — GFLOP/s of our SGEMM vs OpenBLAS's cblas_sgemm on the products of a base-size
 * DistilBERT at batch 32 × sequence 128 (M = 4096 token rows), measured in the same run:
 *
 *   linear  x[4096×K] · W[N×K]ᵀ for (N, K) = (768, 768) q/k/v/out, (3072, 768) ffn1, (768, 3072) ffn2
 *           ours: W packed ahead (as the model would) and W packed on every call
 *   attn    one head: Q·Kᵀ (128×128×64, "nt") and P·V (128×64×128, "nn"), rows strided by 768
 *
 * with 1 and 2 threads. Each figure is the median of REPS timed runs (each run long enough to
 * swamp the clock); the spread (min..max) is printed too, since the cores may be shared. Before
 * each thread count the FMA roof is measured the same way (t threads of independent 512-bit
 * FMAs, or 256-bit without AVX-512), and "%roof" is our best figure against it: on a machine
 * others are using, that ratio is steadier than the GFLOP/s themselves.
 *
 * --cpu-time divides by the process's CPU time instead of the wall clock: the rate per busy
 * core, which time-slicing with other processes does not disturb (for tuning on shared cores).
 *
 *   bench_gemm [--reps N] [--threads LIST] [--kernel avx512|avx2|scalar] [--only SUBSTR] [--no-openblas]
 *              [--quick]
 */
#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

static clockid_t g_clock = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the FMA roof: 24 independent accumulator chains per thread ---- */

#define ROOF_STEPS 50000000L

__attribute__((target("avx512f,fma"))) static double roof_avx512(void) {
    __m512 a[24], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < ROOF_STEPS / 24; n++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    }
    float s = 0;
    for (int i = 0; i < 24; i++) s += _mm512_reduce_add_ps(a[i]);
    return (double)(ROOF_STEPS / 24) * 24 * 32 + (s == 12345.0f); /* flops (keeps s alive) */
}

__attribute__((target("avx2,fma"))) static double roof_avx2(void) {
    __m256 a[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < ROOF_STEPS / 12; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    float v[8], s = 0;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(v, a[i]);
        for (int j = 0; j < 8; j++) s += v[j];
    }
    return (double)(ROOF_STEPS / 12) * 12 * 16 + (s == 12345.0f);
}

static void *roof_thread(void *p) {
    *(double *)p = __builtin_cpu_supports("avx512f") ? roof_avx512() : roof_avx2();
    return NULL;
}

/* GFLOP/s of t threads of FMAs running together (median of 3). */
static double roof(int t) {
    double g[5];
    for (int r = 0; r < 3; r++) {
        pthread_t th[16];
        double fl[16], total = 0;
        if (t > 16) t = 16;
        double t0 = now();
        for (int i = 1; i < t; i++) pthread_create(&th[i], NULL, roof_thread, &fl[i]);
        roof_thread(&fl[0]);
        for (int i = 1; i < t; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < t; i++) total += fl[i];
        g[r] = total / (now() - t0) * 1e-9;
    }
    for (int i = 0; i < 3; i++) /* a tiny sort for the median */
        for (int j = i + 1; j < 3; j++)
            if (g[j] < g[i]) { double x = g[i]; g[i] = g[j]; g[j] = x; }
    return g[1];
}

static float *rnd(size_t n) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    unsigned s = 12345;
    for (size_t i = 0; i < n; i++) s = s * 1103515245u + 12345u, p[i] = (float)((s >> 8) & 0xFFFF) / 65536.0f - 0.5f;
    return p;
}

typedef enum { OURS_PACKED, OURS, OPENBLAS } impl;
typedef enum { LINEAR, ATT_QK, ATT_PV } kind;

typedef struct {
    kind k;
    int M, N, K;
    const float *A, *B;
    const dbt_packed_b *Bp;
    float *C;
} problem;

static void run_once(impl im, const problem *p) {
    switch (p->k) {
    case LINEAR:
        if (im == OPENBLAS)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->M, p->N, p->K, 1.0f, p->A, p->K, p->B, p->K, 0.0f,
                        p->C, p->N);
        else dbt_linear_forward_ex(p->A, p->M, p->K, p->B, im == OURS_PACKED ? p->Bp : NULL, NULL, p->N,
                                   DBT_GEMM_NO_ACT, p->C);
        break;
    case ATT_QK: /* 12 heads of one sequence: Q·Kᵀ with rows 768 apart, as forward.c calls it */
        for (int h = 0; h < 12; h++) {
            if (im == OPENBLAS)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 128, 128, 64, 0.125f, p->A + h * 64, 768,
                            p->B + h * 64, 768, 0.0f, p->C, 128);
            else dbt_sgemm_nt(128, 128, 64, 0.125f, p->A + h * 64, 768, p->B + h * 64, 768, 0.0f, p->C, 128);
        }
        break;
    case ATT_PV: /* 12 heads: P[128×128] · V[128×64] into ctx (rows 768 apart) */
        for (int h = 0; h < 12; h++) {
            if (im == OPENBLAS)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 128, 64, 128, 1.0f, p->A, 128, p->B + h * 64,
                            768, 0.0f, p->C + h * 64, 768);
            else dbt_sgemm_nn(128, 64, 128, 1.0f, p->A, 128, p->B + h * 64, 768, 0.0f, p->C + h * 64, 768);
        }
        break;
    }
}

static double flops(const problem *p) {
    return p->k == LINEAR ? 2.0 * p->M * p->N * p->K : 12 * 2.0 * 128 * 128 * 64;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, n, sizeof v[0], cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Times one problem. The implementations and the roof take turns, rep after rep, so that a
 * change in the machine's load hits them alike; med/lo/hi get each one's median and extremes
 * (index 3: the roof), ratio[0] the median over reps of best-ours/OpenBLAS, ratio[1] of
 * best-ours/roof. Each timed run lasts about min_s. */
static void measure(const problem *p, const int use[3], int reps, double min_s, int threads, double med[4],
                    double lo[4], double hi[4], double ratio[2]) {
    int iters[3] = {0, 0, 0};
    for (int im = 0; im < 3; im++) {
        if (!use[im]) continue;
        run_once((impl)im, p); /* warm: caches, packing buffers, pool threads */
        int n = 1;
        for (;;) {
            double t0 = now();
            for (int i = 0; i < n; i++) run_once((impl)im, p);
            if (now() - t0 > min_s / 4) break;
            n *= 2;
        }
        iters[im] = n * 4;
    }
    double g[4][64], rb[64], rr[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++) {
        for (int im = 0; im < 3; im++) {
            if (!use[im]) { g[im][r] = 0; continue; }
            double t0 = now();
            for (int i = 0; i < iters[im]; i++) run_once((impl)im, p);
            g[im][r] = flops(p) * iters[im] / (now() - t0) * 1e-9;
            /* OpenBLAS's idle threads spin for a while (about 2^28 cycles) after each call: let them
             * go to sleep before anything else is timed, or they take a core from it. */
            if (im == OPENBLAS && threads > 1) nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
        }
        g[3][r] = roof(threads);
        const double best = g[OURS_PACKED][r] > g[OURS][r] ? g[OURS_PACKED][r] : g[OURS][r];
        rb[r] = use[OPENBLAS] ? best / g[OPENBLAS][r] : 0;
        rr[r] = best / g[3][r];
    }
    for (int k = 0; k < 4; k++) {
        med[k] = median(g[k], reps);
        lo[k] = g[k][0], hi[k] = g[k][reps - 1];
    }
    ratio[0] = median(rb, reps), ratio[1] = median(rr, reps);
}

int main(int argc, char **argv) {
    int reps = 7, threads[4] = {1, 2}, nthreads = 2, with_openblas = 1;
    double min_s = 0.25;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) reps = 3, min_s = 0.1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--no-openblas")) with_openblas = 0;
        else if (!strcmp(argv[i], "--cpu-time")) g_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = 0;
            for (char *s = strtok(argv[++i], ","); s && nthreads < 4; s = strtok(NULL, ",")) threads[nthreads++] = atoi(s);
        } else if (!strcmp(argv[i], "--kernel") && i + 1 < argc) {
            if (dbt_gemm_use_kernel(argv[++i])) { fprintf(stderr, "kernel %s is not available\n", argv[i]); return 2; }
        } else {
            fprintf(stderr, "usage: bench_gemm [--reps N] [--threads 1,2] [--kernel K] [--only SUBSTR] "
                            "[--no-openblas] [--cpu-time] [--quick]\n");
            return 2;
        }
    }
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("kernel %s; OpenBLAS %s (OPENBLAS_CORETYPE=%s); median of %d runs, GFLOP/s [min..max]%s\n",
           dbt_gemm_kernel_name(), openblas_get_config(), ct ? ct : "unset", reps,
           g_clock == CLOCK_MONOTONIC ? "" : " per CPU-second");

    const int M = 4096;
    float *x = rnd((size_t)M * 3072), *W = rnd((size_t)3072 * 3072), *y = rnd((size_t)M * 3072);
    float *q = rnd((size_t)128 * 768), *k = rnd((size_t)128 * 768), *att = rnd(128 * 128), *ctx = rnd(128 * 768);
    const int lin[3][2] = {{768, 768}, {3072, 768}, {768, 3072}};
    problem probs[5];
    const char *names[5];
    char buf[3][48];
    for (int i = 0; i < 3; i++) {
        probs[i] = (problem){LINEAR, M, lin[i][0], lin[i][1], x, W, dbt_pack_weights(W, lin[i][0], lin[i][1]), y};
        snprintf(buf[i], sizeof buf[i], "linear %dx%dx%d", M, lin[i][0], lin[i][1]);
        names[i] = buf[i];
    }
    probs[3] = (problem){ATT_QK, 128, 128, 64, q, k, NULL, att};
    names[3] = "attn QK^T 128x128x64";
    probs[4] = (problem){ATT_PV, 128, 64, 128, att, k, NULL, ctx};
    names[4] = "attn PV 128x64x128";

    for (int t = 0; t < nthreads; t++) {
        dbt_gemm_set_threads(threads[t]);
        openblas_set_num_threads(threads[t]);
        printf("\n%d thread(s)\n", threads[t]);
        printf("%-22s %-20s %-20s %-20s %-20s %-7s %s\n", "shape (MxNxK)", "ours (W prepacked)",
               "ours (pack per call)", "OpenBLAS", "FMA roof (same reps)", "ours/OB", "ours/roof");
        for (int p = 0; p < 5; p++) {
            if (only && !strstr(names[p], only)) continue;
            const int use[3] = {probs[p].k == LINEAR, 1, with_openblas};
            double med[4], lo[4], hi[4], ratio[2];
            measure(&probs[p], use, reps, min_s, threads[t], med, lo, hi, ratio);
            char cell[4][40];
            for (int k = 0; k < 4; k++) {
                if (k < 3 && !use[k]) strcpy(cell[k], "-");
                else snprintf(cell[k], sizeof cell[k], "%5.1f [%5.1f..%5.1f]", med[k], lo[k], hi[k]);
            }
            char rb[16] = "-";
            if (with_openblas) snprintf(rb, sizeof rb, "%.2fx", ratio[0]);
            printf("%-22s %-20s %-20s %-20s %-20s %-7s %.0f%%\n", names[p], cell[0], cell[1], cell[2], cell[3], rb,
                   100.0 * ratio[1]);
            fflush(stdout);
        }
    }
    return 0;
}
