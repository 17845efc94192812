/* bench_gemm_lowp.c — the reduced-precision Linear kernels (gemm_bf16.c, gemm_int8.c) against our
 * fp32 one on the Linear products of a batch of 32 × 128 tokens (M = 4096 rows):
 *
 *   DistilBERT-base  (N, K) = (768, 768) q/k/v/out, (3072, 768) ffn1, (768, 3072) ffn2
 *   all-MiniLM-L6    (384, 384), (1536, 384), (384, 1536)
 *
 * fp32 with W packed ahead; bf16 and int8 with every kernel this CPU runs (native and the
 * portable fallbacks), each call including what the model pays per call: rounding x to bf16, or
 * quantizing x row by row. GFLOP/s (bf16, fp32) and GOP/s (int8) count 2·M·N·K; each figure is
 * the best of REPS runs (wall clock, or --cpu-time: the process's CPU time, steadier on shared
 * cores).
 *
 *   bench_gemm_lowp [--reps N] [--threads LIST] [--cpu-time] [--quick]
 */
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

typedef struct {
    const char *what;
    int N, K;
} shape;

static const shape SHAPES[] = {
    {"base q/k/v/o", 768, 768},   {"base ffn1", 3072, 768},   {"base ffn2", 768, 3072},
    {"minilm q/k/v/o", 384, 384}, {"minilm ffn1", 1536, 384}, {"minilm ffn2", 384, 1536},
};

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

int main(int argc, char **argv) {
    int reps = 5, threads[4] = {1, 2}, nthreads = 2;
    const int M = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) reps = 2;
        else if (!strcmp(argv[i], "--cpu-time")) g_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = 0;
            for (char *s = strtok(argv[++i], ","); s && nthreads < 4; s = strtok(NULL, ",")) threads[nthreads++] = atoi(s);
        } else {
            fprintf(stderr, "usage: %s [--reps N] [--threads LIST] [--cpu-time] [--quick]\n", argv[0]);
            return 2;
        }
    }
    /* the implementations, in column order: fp32, then each bf16 kernel, then each int8 kernel */
    enum { FP32, BF16, INT8 };
    static const struct { int type; const char *kernel, *label; } impls[] = {
        {FP32, NULL, "fp32"},      {BF16, "avx512bf16", "bf16:512bf16"}, {BF16, "avx512", "bf16:512"},
        {BF16, "avx2", "bf16:avx2"}, {BF16, "scalar", "bf16:scalar"},  {INT8, "avx512vnni", "int8:vnni"},
        {INT8, "avxvnni", "int8:avxvnni"}, {INT8, "avx2", "int8:avx2"}, {INT8, "scalar", "int8:scalar"},
    };
    enum { N_IMPLS = sizeof impls / sizeof impls[0] };
    printf("M = %d rows; GFLOP/s (fp32, bf16), GOP/s (int8); best of %d%s; scalar kernels: one run, 1 thread\n", M,
           reps, g_clock == CLOCK_MONOTONIC ? "" : " (CPU time)");
    printf("%-15s %3s", "shape", "thr");
    for (int i = 0; i < N_IMPLS; i++) printf(" %12s", impls[i].label);
    printf("\n");
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        const int N = SHAPES[s].N, K = SHAPES[s].K;
        unsigned seed = 1;
        float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K), *b = calloc(N, sizeof(float));
        float *y = malloc(sizeof(float) * M * N), *sw = malloc(sizeof(float) * N);
        int8_t *wq = malloc((size_t)N * K);
        if (!x || !w || !b || !y || !sw || !wq) return 1;
        for (long i = 0; i < (long)M * K; i++) x[i] = frand(&seed);
        for (long i = 0; i < (long)N * K; i++) w[i] = 0.05f * frand(&seed);
        dbt_quantize_weights_s8(w, N, K, wq, sw);
        dbt_packed_b *Wf = dbt_pack_weights(w, N, K);
        dbt_bf16_weights *Wb = dbt_bf16_pack(w, NULL, N, K);
        dbt_int8_weights *Wi = dbt_int8_pack(wq, sw, N, K);
        const double gop = 2.0 * M * N * K / 1e9;
        for (int ti = 0; ti < nthreads; ti++) {
            dbt_gemm_set_threads(threads[ti]);
            double rate[N_IMPLS] = {0};
            for (int impl = 0; impl < N_IMPLS; impl++) {
                /* the scalar fallbacks are slow: one run at one thread is enough to see them */
                const int scalar = impls[impl].kernel && !strcmp(impls[impl].kernel, "scalar"), r_n = scalar ? 1 : reps;
                if (scalar && threads[ti] != 1) continue;
                if (impls[impl].type == BF16 && dbt_gemm_bf16_use_kernel(impls[impl].kernel)) continue;
                if (impls[impl].type == INT8 && dbt_gemm_int8_use_kernel(impls[impl].kernel)) continue;
                double best = 1e30;
                for (int r = 0; r < r_n + (scalar ? 0 : 1); r++) { /* one warm-up run */
                    double t0 = now();
                    if (impls[impl].type == FP32) dbt_linear_forward_ex(x, M, K, NULL, Wf, b, N, DBT_GEMM_NO_ACT, y);
                    else if (impls[impl].type == BF16) dbt_linear_bf16(x, M, K, Wb, b, N, DBT_GEMM_NO_ACT, y);
                    else dbt_linear_int8(x, M, K, Wi, b, N, DBT_GEMM_NO_ACT, y);
                    double dt = now() - t0;
                    if ((scalar || r > 0) && dt < best) best = dt;
                }
                rate[impl] = gop / best;
            }
            printf("%-15s %3d", SHAPES[s].what, threads[ti]);
            for (int impl = 0; impl < N_IMPLS; impl++)
                if (rate[impl] > 0) printf(" %12.0f", rate[impl]);
                else printf(" %12s", "-");
            printf("\n");
            fflush(stdout);
        }
        dbt_gemm_bf16_use_kernel(NULL);
        dbt_gemm_int8_use_kernel(NULL);
        dbt_packed_free(Wf);
        dbt_bf16_free(Wb);
        dbt_int8_free(Wi);
        free(x); free(w); free(b); free(y); free(sw); free(wq);
    }
    return 0;
}
