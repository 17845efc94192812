/* test_gemm_lowp.c — the bf16 and int8 Linear kernels against a double-precision reference
 * computed from the SAME reduced-precision inputs.
 *
 * bf16: the reference rounds x and W to bf16 with its own round-to-nearest-even (by comparing
 * the distances to the two neighbours, not by the library's bit trick), multiplies in double
 * and sums in double. The kernels sum exact products in fp32, so with u = 2⁻²⁴ the error is at
 * most (K + 2)·u·(Σ|x·w| + |b|) (Higham §3.1: K additions, the bias, one spare); we allow twice
 * that. A wrong element, a dropped K block or a stale tile misses by orders of magnitude.
 *
 * int8: the reference takes the weights as given integers and scales (the test draws them), and
 * the activations as quantized by dbt_quantize_row_u8 (whose levels are checked on their own
 * against the definition), sums the integer products exactly in int64 and dequantizes in
 * double. The kernel's sum is exact too; only the epilogue rounds: (float)(acc − zx·colsum)
 * (≤ u relative), sx·sw, the product, the bias — 4u·(|value| + |b|). An accumulator off by one
 * unit misses by sx·sw, far outside.
 *
 * Every kernel this CPU runs is forced in turn (the native ones and the portable fallbacks), on
 * shapes that are not multiples of the tiles (MR = 4/12/14, NR = 32) or of the K blocks (512
 * bf16, 1024 int8 steps), M = 1 and K = 1 included; kernels of one type must agree bit for bit,
 * and 1 and 2 threads too. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/kernels.h"
#include "kernels/threadpool.h"

static uint64_t rng = 0x2545F4914F6CDD1Du;

static uint32_t urand(void) {
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(rng >> 33);
}

static float frand(void) { return (float)((double)(urand() >> 7) / (double)(1u << 24) * 2.0 - 1.0); } /* [-1, 1) */

typedef struct { int M, N, K; } shape;

static const shape SHAPES[] = {
    {1, 1, 1},    {1, 33, 17},   {2, 5, 3},     {20, 50, 100}, {6, 40, 30},     {13, 31, 7},   {15, 33, 64},  {29, 65, 129}, {14, 32, 512},
    {17, 40, 513}, {9, 45, 769},   {3, 100, 1025}, {31, 97, 1030}, {45, 70, 2051}, {1, 384, 384}, {150, 130, 300},
};
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

/* ---- bf16 ------------------------------------------------------------------------------------ */

/* Round to nearest bf16, ties to the even one: the two bf16 neighbours of f, whichever is closer. */
static double ref_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t lo_bits = u & 0xFFFF0000u, hi_bits = lo_bits + 0x10000u;
    float lo, hi;
    memcpy(&lo, &lo_bits, 4);
    memcpy(&hi, &hi_bits, 4);
    double dlo = fabs((double)f - lo), dhi = fabs((double)hi - f);
    if (dlo < dhi) return lo;
    if (dhi < dlo) return hi;
    return ((lo_bits >> 16) & 1) ? hi : lo;
}

static void test_bf16_rounding(void **state) {
    (void)state;
    const struct { float f; uint16_t want; } cases[] = {
        {1.0f, 0x3F80},
        {1.0f + 0x1p-8f, 0x3F80},              /* halfway: ties to even (down) */
        {1.0f + 3 * 0x1p-8f, 0x3F82},          /* halfway: ties to even (up) */
        {1.0f + 0x1p-8f + 0x1p-20f, 0x3F81},   /* above halfway */
        {-2.5f, 0xC020},
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {INFINITY, 0x7F80},
        {3.4028235e38f, 0x7F80},               /* FLT_MAX rounds up to infinity */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) assert_int_equal(dbt_fp32_to_bf16(cases[i].f), cases[i].want);
    uint16_t n = dbt_fp32_to_bf16(NAN);
    assert_true((n & 0x7F80) == 0x7F80 && (n & 0x7F) != 0);
    for (int i = 0; i < 100000; i++) {
        float f = frand() * 1000.0f;
        uint32_t b = (uint32_t)dbt_fp32_to_bf16(f) << 16;
        float g;
        memcpy(&g, &b, 4);
        assert_true((double)g == ref_bf16(f));
    }
}

static const char *BF16_KERNELS[] = {"avx512bf16", "avx512", "avx2", "scalar"};
#define N_BF16_KERNELS (sizeof BF16_KERNELS / sizeof BF16_KERNELS[0])

/* y = act(x·Wᵀ + b) by kernel `name`, or NULL when this CPU lacks it. */
static float *run_bf16(const char *name, const shape *s, const float *x, const dbt_bf16_weights *W, const float *b,
                       int act) {
    if (dbt_gemm_bf16_use_kernel(name) != 0) return NULL;
    float *y = malloc((size_t)s->M * s->N * sizeof *y);
    assert_non_null(y);
    for (int64_t i = 0; i < (int64_t)s->M * s->N; i++) y[i] = NAN; /* y is written, never read first */
    dbt_linear_bf16(x, s->M, s->K, W, b, s->N, act, y);
    return y;
}

static void check_bf16(const shape *s, const float *x, const float *w, const float *b, const float *y, int relu) {
    for (int i = 0; i < s->M; i++)
        for (int j = 0; j < s->N; j++) {
            double sum = b[j], mag = fabs(b[j]);
            for (int k = 0; k < s->K; k++) {
                double p = ref_bf16(x[(int64_t)i * s->K + k]) * ref_bf16(w[(int64_t)j * s->K + k]);
                sum += p;
                mag += fabs(p);
            }
            if (relu && sum < 0) sum = 0;
            double tol = 2.0 * (s->K + 2) * 0x1p-24 * mag + 1e-30;
            double got = y[(int64_t)i * s->N + j];
            if (!(fabs(got - sum) <= tol)) {
                fprintf(stderr, "bf16 %s M=%d N=%d K=%d (%d,%d): got %.9g want %.9g tol %.3g\n", dbt_gemm_bf16_kernel_name(),
                        s->M, s->N, s->K, i, j, got, sum, tol);
                fail();
            }
        }
}

static void test_bf16_kernels(void **state) {
    (void)state;
    for (size_t si = 0; si < N_SHAPES; si++) {
        const shape *s = &SHAPES[si];
        float *x = malloc((size_t)s->M * s->K * sizeof *x), *w = malloc((size_t)s->N * s->K * sizeof *w);
        float *b = malloc((size_t)s->N * sizeof *b);
        assert_true(x && w && b);
        for (int64_t i = 0; i < (int64_t)s->M * s->K; i++) x[i] = frand() * 4.0f;
        for (int64_t i = 0; i < (int64_t)s->N * s->K; i++) w[i] = frand() * 0.1f;
        for (int j = 0; j < s->N; j++) b[j] = frand();
        dbt_bf16_weights *W = dbt_bf16_pack(w, NULL, s->N, s->K);
        assert_non_null(W);
        float *first = NULL;
        int ran = 0;
        for (int relu = 0; relu < 2; relu++)
            for (size_t ki = 0; ki < N_BF16_KERNELS; ki++) {
                float *y = run_bf16(BF16_KERNELS[ki], s, x, W, b, relu ? (int)DBT_ACT_RELU : DBT_GEMM_NO_ACT);
                if (!y) continue;
                ran++;
                check_bf16(s, x, w, b, y, relu);
                if (!relu) {
                    if (!first) first = y;
                    else { assert_memory_equal(first, y, (size_t)s->M * s->N * sizeof *y); free(y); }
                } else free(y);
            }
        assert_true(ran >= 2); /* scalar always runs, twice */
        free(first);
        dbt_bf16_free(W);
        free(x);
        free(w);
        free(b);
    }
    dbt_gemm_bf16_use_kernel(NULL);
}

/* Weights given as bf16 bit patterns pack to the same thing as the fp32 they widen to. */
static void test_bf16_pack_raw(void **state) {
    (void)state;
    const shape s = {5, 37, 19};
    uint16_t wb[37 * 19];
    float wf[37 * 19], x[5 * 19];
    for (int i = 0; i < 37 * 19; i++) {
        wb[i] = dbt_fp32_to_bf16(frand());
        uint32_t u = (uint32_t)wb[i] << 16;
        memcpy(&wf[i], &u, 4);
    }
    for (int i = 0; i < 5 * 19; i++) x[i] = frand();
    dbt_bf16_weights *A = dbt_bf16_pack(NULL, wb, s.N, s.K), *B = dbt_bf16_pack(wf, NULL, s.N, s.K);
    float ya[5 * 37], yb[5 * 37];
    dbt_linear_bf16(x, s.M, s.K, A, NULL, s.N, DBT_GEMM_NO_ACT, ya);
    dbt_linear_bf16(x, s.M, s.K, B, NULL, s.N, DBT_GEMM_NO_ACT, yb);
    assert_memory_equal(ya, yb, sizeof ya);
    dbt_bf16_free(A);
    dbt_bf16_free(B);
}

/* ---- int8 ------------------------------------------------------------------------------------ */

static const char *INT8_KERNELS[] = {"avx512vnni", "avxvnni", "avx2", "scalar"};
#define N_INT8_KERNELS (sizeof INT8_KERNELS / sizeof INT8_KERNELS[0])

static void test_quantize_row(void **state) {
    (void)state;
    for (size_t ki = 0; ki < N_INT8_KERNELS; ki++) {
        if (dbt_gemm_int8_use_kernel(INT8_KERNELS[ki]) != 0) continue;
        for (int t = 0; t < 200; t++) {
            const int K = t < 4 ? 1 + t : 1 + (int)(urand() % 700);
            const int kind = t % 5; /* mixed, all positive, all negative, all zero, one spike */
            float *x = malloc((size_t)K * sizeof *x);
            uint8_t *q = malloc((size_t)K);
            assert_true(x && q);
            for (int k = 0; k < K; k++) {
                float v = frand() * 3.0f;
                x[k] = kind == 1 ? fabsf(v) : kind == 2 ? -fabsf(v) : kind == 3 ? 0.0f : kind == 4 ? v * 0.01f : v;
            }
            if (kind == 4) x[urand() % K] = 50.0f;
            float scale;
            int32_t zp;
            dbt_quantize_row_u8(x, K, q, &scale, &zp);
            double mn = 0, mx = 0;
            for (int k = 0; k < K; k++) mn = fmin(mn, x[k]), mx = fmax(mx, x[k]);
            if (mx == mn) { assert_true(scale == 1.0f); assert_int_equal(zp, 0); }
            else assert_true(fabs(scale - (mx - mn) / 255.0) <= 1e-6 * scale);
            assert_true(zp >= 0 && zp <= 255);
            assert_true(fabs(zp - (-mn / scale)) <= 0.5 + 1e-4);
            for (int k = 0; k < K; k++) {
                double back = ((double)q[k] - zp) * scale, err = fabs(back - x[k]);
                int clamped = q[k] == 0 || q[k] == 255;
                assert_true(err <= scale * (clamped ? 1.001 : 0.501));
                if (x[k] == 0.0f) assert_int_equal(q[k], zp); /* 0 is exact */
            }
            free(x);
            free(q);
        }
    }
    dbt_gemm_int8_use_kernel(NULL);
}

static void test_quantize_weights(void **state) {
    (void)state;
    const int N = 7, K = 50;
    float w[7 * 50], sw[7];
    int8_t q[7 * 50];
    for (int i = 0; i < N * K; i++) w[i] = frand() * (float)(1 + i / K);
    for (int k = 0; k < K; k++) w[3 * K + k] = 0.0f; /* an all-zero row */
    dbt_quantize_weights_s8(w, N, K, q, sw);
    for (int j = 0; j < N; j++) {
        double mx = 0;
        int qmax = 0;
        for (int k = 0; k < K; k++) mx = fmax(mx, fabs(w[j * K + k])), qmax = abs(q[j * K + k]) > qmax ? abs(q[j * K + k]) : qmax;
        if (j == 3) { assert_true(sw[j] == 1.0f); assert_int_equal(qmax, 0); continue; }
        assert_true(fabs(sw[j] - mx / 127.0) <= 1e-6 * sw[j]);
        assert_int_equal(qmax, 127);
        for (int k = 0; k < K; k++) assert_true(fabs(q[j * K + k] * (double)sw[j] - w[j * K + k]) <= 0.501 * sw[j]);
    }
}

static float *run_int8(const char *name, const shape *s, const float *x, const dbt_int8_weights *W, const float *b,
                       int act) {
    if (dbt_gemm_int8_use_kernel(name) != 0) return NULL;
    float *y = malloc((size_t)s->M * s->N * sizeof *y);
    assert_non_null(y);
    for (int64_t i = 0; i < (int64_t)s->M * s->N; i++) y[i] = NAN;
    dbt_linear_int8(x, s->M, s->K, W, b, s->N, act, y);
    return y;
}

static void check_int8(const shape *s, const float *x, const int8_t *wq, const float *sw, const float *b,
                       const float *y, int relu) {
    uint8_t *q = malloc((size_t)s->K);
    assert_non_null(q);
    for (int i = 0; i < s->M; i++) {
        float sx;
        int32_t zx;
        dbt_quantize_row_u8(x + (int64_t)i * s->K, s->K, q, &sx, &zx);
        for (int j = 0; j < s->N; j++) {
            int64_t acc = 0;
            for (int k = 0; k < s->K; k++) acc += (int64_t)((int)q[k] - zx) * wq[(int64_t)j * s->K + k];
            double v = (double)acc * sx * sw[j], want = v + b[j];
            if (relu && want < 0) want = 0;
            double tol = 4 * 0x1p-24 * (fabs(v) + fabs(b[j])) + 1e-30;
            double got = y[(int64_t)i * s->N + j];
            if (!(fabs(got - want) <= tol)) {
                fprintf(stderr, "int8 %s M=%d N=%d K=%d (%d,%d): got %.9g want %.9g tol %.3g\n", dbt_gemm_int8_kernel_name(),
                        s->M, s->N, s->K, i, j, got, want, tol);
                fail();
            }
        }
    }
    free(q);
}

static void test_int8_kernels(void **state) {
    (void)state;
    for (size_t si = 0; si < N_SHAPES; si++) {
        const shape *s = &SHAPES[si];
        float *x = malloc((size_t)s->M * s->K * sizeof *x), *sw = malloc((size_t)s->N * sizeof *sw);
        float *b = malloc((size_t)s->N * sizeof *b);
        int8_t *wq = malloc((size_t)s->N * s->K);
        assert_true(x && sw && b && wq);
        for (int64_t i = 0; i < (int64_t)s->M * s->K; i++) x[i] = frand() * 4.0f + (i % 3 == 0 ? 1.0f : 0.0f);
        for (int64_t i = 0; i < (int64_t)s->N * s->K; i++) wq[i] = (int8_t)((int)(urand() % 255) - 127);
        if (s->K > 2) wq[0] = 127, wq[1] = -127; /* the extremes */
        for (int j = 0; j < s->N; j++) sw[j] = 1e-3f * (1.0f + (float)(urand() % 1000) / 100.0f), b[j] = frand();
        dbt_int8_weights *W = dbt_int8_pack(wq, sw, s->N, s->K);
        assert_non_null(W);
        float *first = NULL;
        int ran = 0;
        for (int relu = 0; relu < 2; relu++)
            for (size_t ki = 0; ki < N_INT8_KERNELS; ki++) {
                float *y = run_int8(INT8_KERNELS[ki], s, x, W, b, relu ? (int)DBT_ACT_RELU : DBT_GEMM_NO_ACT);
                if (!y) continue;
                ran++;
                check_int8(s, x, wq, sw, b, y, relu);
                if (!relu) {
                    if (!first) first = y;
                    else { assert_memory_equal(first, y, (size_t)s->M * s->N * sizeof *y); free(y); }
                } else free(y);
            }
        assert_true(ran >= 2);
        free(first);
        dbt_int8_free(W);
        free(x);
        free(sw);
        free(b);
        free(wq);
    }
    dbt_gemm_int8_use_kernel(NULL);
}

/* Shapes too large for the pack: K past the int32 headroom is refused. */
static void test_int8_pack_limits(void **state) {
    (void)state;
    int8_t w[4] = {1, 2, 3, 4};
    float s[1] = {1.0f};
    assert_null(dbt_int8_pack(w, s, 1, 0));
    assert_null(dbt_int8_pack(NULL, s, 1, 4));
    int8_t *big = calloc(40000, 1);
    assert_null(dbt_int8_pack(big, s, 1, 40000));
    free(big);
}

/* ---- threads --------------------------------------------------------------------------------- */

static void test_thread_independence(void **state) {
    (void)state;
    const shape shapes[] = {{300, 130, 700}, {20, 500, 1100}}; /* split along M, then along N */
    for (int si = 0; si < 2; si++) {
        const shape *s = &shapes[si];
        float *x = malloc((size_t)s->M * s->K * sizeof *x), *w = malloc((size_t)s->N * s->K * sizeof *w);
        float *b = malloc((size_t)s->N * sizeof *b), *sw = malloc((size_t)s->N * sizeof *sw);
        int8_t *wq = malloc((size_t)s->N * s->K);
        assert_true(x && w && b && sw && wq);
        for (int64_t i = 0; i < (int64_t)s->M * s->K; i++) x[i] = frand();
        for (int64_t i = 0; i < (int64_t)s->N * s->K; i++) w[i] = frand() * 0.05f;
        for (int j = 0; j < s->N; j++) b[j] = frand();
        dbt_quantize_weights_s8(w, s->N, s->K, wq, sw);
        dbt_bf16_weights *Wb = dbt_bf16_pack(w, NULL, s->N, s->K);
        dbt_int8_weights *Wi = dbt_int8_pack(wq, sw, s->N, s->K);
        float *y[2][2];
        for (int t = 0; t < 2; t++) {
            dbt_pool_set_threads(t + 1);
            y[t][0] = run_bf16("", s, x, Wb, b, (int)DBT_ACT_GELU);
            y[t][1] = run_int8("", s, x, Wi, b, (int)DBT_ACT_GELU);
        }
        for (int d = 0; d < 2; d++) {
            assert_memory_equal(y[0][d], y[1][d], (size_t)s->M * s->N * sizeof(float));
            free(y[0][d]);
            free(y[1][d]);
        }
        dbt_bf16_free(Wb);
        dbt_int8_free(Wi);
        free(x); free(w); free(b); free(sw); free(wq);
    }
    dbt_pool_set_threads(1);
}

int main(void) {
    printf("bf16 kernel %s, int8 kernel %s\n", dbt_gemm_bf16_kernel_name(), dbt_gemm_int8_kernel_name());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_rounding),      cmocka_unit_test(test_bf16_kernels),
        cmocka_unit_test(test_bf16_pack_raw),      cmocka_unit_test(test_quantize_row),
        cmocka_unit_test(test_quantize_weights),   cmocka_unit_test(test_int8_kernels),
        cmocka_unit_test(test_int8_pack_limits),   cmocka_unit_test(test_thread_independence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
