/* test_engine.c — the fp32 engine around the GEMM: the fused residual + LayerNorm (layernorm.c),
 * multi-head attention on the pool (attention.c), prepacked weight sets (gemm.c), against
 * double-precision references, on every kernel path this CPU runs (scalar, AVX2, AVX-512), with
 * 1 and 2 threads; and the GEMM buffers of a thread that exits (freed: make test-asan's leak
 * check would report them otherwise).
 *
 * Error bounds. LayerNorm: the statistics are summed in double, so each output carries a few
 * roundings of its own, 8u·(|γ·x̂| + |β| + |γ|) (u = 2⁻²⁴), plus those of x + r and of the mean,
 * both rounded to float before the centring and magnified by 1/σ: 4u·(|μ| + |x + r|)·|γ|/σ
 * (the scalar reference does the same; a row of large mean and small spread shows it). Attention:
 * the scores carry the GEMM's K-term error, softmax an ulp or two per element and the exponential's
 * (≤ 2 ulp, vmath.c) amplification by the score magnitude; with scores of order 1 and outputs
 * that are convex combinations of V, 1e-5·max|V| is loose enough for rounding and tight enough
 * that a wrong row, head or block fails by orders of magnitude. */
#include <math.h>
#include <pthread.h>
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

static const char *const KERNELS[] = {"scalar", "avx2", "avx512"};

static uint64_t rng = 0x2545F4914F6CDD1Du;

static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    return (float)((double)(rng >> 40) / (double)(1u << 24) * 2.0 - 1.0);
}

static float *rand_floats(int64_t n, float scale, float offset) {
    float *m = malloc((size_t)(n > 0 ? n : 1) * sizeof *m);
    assert_non_null(m);
    for (int64_t i = 0; i < n; i++) m[i] = offset + scale * frand();
    return m;
}

static int use(const char *k) {
    if (dbt_gemm_use_kernel(k) != 0) {
        printf("  (kernel %s: not available on this CPU, skipped)\n", k);
        return 0;
    }
    return 1;
}

/* ---- LayerNorm ------------------------------------------------------------------------------ */

static void check_layernorm(const float *x, const float *r, int rows, int n, const float *g, const float *b, float eps,
                            const float *y, const char *kern) {
    const double u = 1.0 / (1 << 24);
    for (int i = 0; i < rows; i++) {
        double mean = 0, var = 0;
        for (int j = 0; j < n; j++) mean += (double)x[(int64_t)i * n + j] + (r ? r[(int64_t)i * n + j] : 0.0);
        mean /= n;
        for (int j = 0; j < n; j++) {
            double d = (double)x[(int64_t)i * n + j] + (r ? r[(int64_t)i * n + j] : 0.0) - mean;
            var += d * d;
        }
        const double rstd = 1.0 / sqrt(var / n + eps);
        for (int j = 0; j < n; j++) {
            const double h = ((double)x[(int64_t)i * n + j] + (r ? r[(int64_t)i * n + j] : 0.0) - mean) * rstd;
            const double want = h * g[j] + b[j], got = y[(int64_t)i * n + j];
            const double xr = (double)x[(int64_t)i * n + j] + (r ? r[(int64_t)i * n + j] : 0.0);
            const double bound = 8 * u * (fabs(h * g[j]) + fabs(b[j]) + fabs(g[j])) +
                                 4 * u * (fabs(mean) + fabs(xr)) * rstd * fabs(g[j]);
            if (!(fabs(got - want) <= bound))
                fail_msg("layernorm %s rows=%d n=%d residual=%d: y[%d][%d] = %.9g, want %.9g (bound %.3g)", kern, rows,
                         n, r != NULL, i, j, got, want, bound);
        }
    }
}

static void test_layernorm(void **state) {
    (void)state;
    /* widths around the vector lengths (8, 16) and the model's; rows enough to go parallel */
    const int widths[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 768, 771};
    for (size_t kk = 0; kk < sizeof KERNELS / sizeof KERNELS[0]; kk++) {
        if (!use(KERNELS[kk])) continue;
        for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
            const int n = widths[w], rows = n >= 100 ? 300 : 37;
            /* an offset mean (the case a one-pass variance would lose) and a spread of scales */
            float *x = rand_floats((int64_t)rows * n, 3.0f, 20.0f), *res = rand_floats((int64_t)rows * n, 1.0f, -5.0f);
            float *g = rand_floats(n, 1.0f, 0.5f), *b = rand_floats(n, 0.5f, 0.0f);
            float *y1 = malloc((size_t)rows * n * sizeof *y1), *y2 = malloc((size_t)rows * n * sizeof *y2);
            assert_non_null(y1), assert_non_null(y2);
            for (int with_res = 0; with_res < 2; with_res++) {
                const float *r = with_res ? res : NULL;
                dbt_gemm_set_threads(1);
                dbt_layernorm_forward(x, r, rows, n, g, b, 1e-12f, y1);
                check_layernorm(x, r, rows, n, g, b, 1e-12f, y1, KERNELS[kk]);
                dbt_gemm_set_threads(2);
                dbt_layernorm_forward(x, r, rows, n, g, b, 1e-12f, y2);
                assert_memory_equal(y1, y2, (size_t)rows * n * sizeof *y1); /* rows never depend on the split */
                /* in place, as the encoder calls it: y aliases x */
                memcpy(y2, x, (size_t)rows * n * sizeof *y2);
                dbt_layernorm_forward(y2, r, rows, n, g, b, 1e-12f, y2);
                assert_memory_equal(y1, y2, (size_t)rows * n * sizeof *y1);
            }
            free(x), free(res), free(g), free(b), free(y1), free(y2);
        }
    }
    dbt_gemm_set_threads(1);
    dbt_gemm_use_kernel(NULL);
}

/* ---- attention ------------------------------------------------------------------------------ */

/* ctx of sequence rows [r0, r0+T), head h, in double. */
static void attention_ref(const float *q, const float *k, const float *v, int ld, int64_t r0, int T, int h, int dh,
                          double *out) {
    double *p = malloc((size_t)T * sizeof *p);
    assert_non_null(p);
    const double scale = 1.0 / sqrt((double)dh);
    for (int i = 0; i < T; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < T; j++) {
            double s = 0;
            for (int d = 0; d < dh; d++) s += (double)q[(r0 + i) * ld + h * dh + d] * k[(r0 + j) * ld + h * dh + d];
            p[j] = s * scale;
            mx = p[j] > mx ? p[j] : mx;
        }
        for (int j = 0; j < T; j++) sum += p[j] = exp(p[j] - mx);
        for (int d = 0; d < dh; d++) {
            double o = 0;
            for (int j = 0; j < T; j++) o += p[j] / sum * v[(r0 + j) * ld + h * dh + d];
            out[(int64_t)i * dh + d] = o;
        }
    }
    free(p);
}

static float *run_attention(int n, const int32_t *row_start, int nh, int dh, const float *q, const float *k,
                            const float *v, int threads) {
    const int ld = nh * dh, R = row_start[n];
    int T = 1;
    for (int s = 0; s < n; s++) T = row_start[s + 1] - row_start[s] > T ? row_start[s + 1] - row_start[s] : T;
    float *ctx = malloc((size_t)(R ? R : 1) * ld * sizeof *ctx);
    float *scratch = aligned_alloc(64, (dbt_attention_scratch_floats(T, threads) * sizeof(float) + 63) & ~(size_t)63);
    assert_non_null(ctx), assert_non_null(scratch);
    memset(ctx, 0xFF, (size_t)(R ? R : 1) * ld * sizeof *ctx); /* NaN: a row left unwritten fails */
    dbt_gemm_set_threads(threads);
    dbt_attention_forward(n, row_start, nh, dh, q, k, v, ld, ctx, scratch, threads);
    free(scratch);
    return ctx;
}

static void test_attention(void **state) {
    (void)state;
    /* lengths: 1, odd, a full tile, and 300: two row blocks (218 + 82 rows, attention.c) */
    const int lens[] = {1, 5, 300, 64, 17, 2};
    const int n = sizeof lens / sizeof lens[0], heads[][2] = {{4, 64}, {3, 8}};
    int32_t row_start[sizeof lens / sizeof lens[0] + 1] = {0};
    for (int s = 0; s < n; s++) row_start[s + 1] = row_start[s] + lens[s];
    const int R = row_start[n];
    for (size_t kk = 0; kk < sizeof KERNELS / sizeof KERNELS[0]; kk++) {
        if (!use(KERNELS[kk])) continue;
        for (size_t hc = 0; hc < sizeof heads / sizeof heads[0]; hc++) {
            const int nh = heads[hc][0], dh = heads[hc][1], ld = nh * dh;
            /* scores of order a few units: softmax neither uniform nor one-hot */
            float *q = rand_floats((int64_t)R * ld, 1.5f, 0), *k = rand_floats((int64_t)R * ld, 1.5f, 0);
            float *v = rand_floats((int64_t)R * ld, 1.0f, 0);
            float *c1 = run_attention(n, row_start, nh, dh, q, k, v, 1);
            double *ref = malloc((size_t)300 * dh * sizeof *ref);
            assert_non_null(ref);
            for (int s = 0; s < n; s++)
                for (int h = 0; h < nh; h++) {
                    attention_ref(q, k, v, ld, row_start[s], lens[s], h, dh, ref);
                    for (int i = 0; i < lens[s]; i++)
                        for (int d = 0; d < dh; d++) {
                            const double got = c1[(int64_t)(row_start[s] + i) * ld + h * dh + d];
                            const double want = ref[(int64_t)i * dh + d];
                            if (!(fabs(got - want) <= 1e-5))
                                fail_msg("attention %s heads %d×%d: seq %d head %d row %d dim %d = %.9g, want %.9g",
                                         KERNELS[kk], nh, dh, s, h, i, d, got, want);
                        }
                }
            /* the thread count and the other sequences of the batch change nothing */
            float *c2 = run_attention(n, row_start, nh, dh, q, k, v, 2);
            assert_memory_equal(c1, c2, (size_t)R * ld * sizeof *c1);
            free(c2);
            c2 = run_attention(n, row_start, nh, dh, q, k, v, 3);
            assert_memory_equal(c1, c2, (size_t)R * ld * sizeof *c1);
            free(c2);
            for (int s = 0; s < n; s++) {
                const int32_t one[2] = {0, lens[s]};
                const int64_t o = (int64_t)row_start[s] * ld;
                c2 = run_attention(1, one, nh, dh, q + o, k + o, v + o, 2);
                assert_memory_equal(c1 + o, c2, (size_t)lens[s] * ld * sizeof *c1);
                free(c2);
            }
            free(q), free(k), free(v), free(c1), free(ref);
        }
    }
    dbt_gemm_set_threads(1);
    dbt_gemm_use_kernel(NULL);
}

/* ---- prepacked weight sets ------------------------------------------------------------------ */

static void test_packed_set(void **state) {
    (void)state;
    const int N[] = {768, 100, 33}, K[] = {768, 300, 7}, M[] = {1, 16, 130};
    const float *W[3];
    float *Wm[3];
    for (int i = 0; i < 3; i++) W[i] = Wm[i] = rand_floats((int64_t)N[i] * K[i], 1.0f, 0);
    for (size_t kk = 0; kk < sizeof KERNELS / sizeof KERNELS[0]; kk++) {
        if (!use(KERNELS[kk])) continue;
        dbt_packed_set *set = dbt_packed_set_new(W, N, K, 3);
        assert_non_null(set);
        assert_true(dbt_packed_set_bytes(set) >= (size_t)(768 * 768 + 100 * 300 + 33 * 7) * sizeof(float));
        for (int i = 0; i < 3; i++)
            for (int mi = 0; mi < 3; mi++) {
                float *x = rand_floats((int64_t)M[mi] * K[i], 1.0f, 0), *b = rand_floats(N[i], 1.0f, 0);
                float *y1 = malloc((size_t)M[mi] * N[i] * sizeof *y1), *y2 = malloc((size_t)M[mi] * N[i] * sizeof *y2);
                assert_non_null(y1), assert_non_null(y2);
                const size_t wbytes = (size_t)N[i] * K[i] * sizeof(float);
                float *saved = malloc(wbytes);
                assert_non_null(saved);
                memcpy(saved, W[i], wbytes);
                dbt_gemm_set_threads(2);
                dbt_linear_forward(x, M[mi], K[i], W[i], b, N[i], y1);
                /* In scope, the packed copy is found by W's address and used: W itself is not
                 * read (scribbled over here), and the bits are those of the unpacked product. */
                memset(Wm[i], 0xFF, wbytes);
                assert_null(dbt_packed_set_scope(set));
                dbt_linear_forward(x, M[mi], K[i], W[i], b, N[i], y2);
                assert_memory_equal(y1, y2, (size_t)M[mi] * N[i] * sizeof *y1);
                dbt_linear_forward_ex(x, M[mi], K[i], W[i], NULL, b, N[i], DBT_ACT_GELU, y2);
                assert_ptr_equal(dbt_packed_set_scope(NULL), set);
                memcpy(Wm[i], saved, wbytes);
                dbt_linear_forward_ex(x, M[mi], K[i], W[i], NULL, b, N[i], DBT_ACT_GELU, y1);
                assert_memory_equal(y1, y2, (size_t)M[mi] * N[i] * sizeof *y1);
                free(saved);
                free(x), free(b), free(y1), free(y2);
            }
        dbt_packed_set_free(set);
    }
    for (int i = 0; i < 3; i++) free(Wm[i]);
    dbt_gemm_set_threads(1);
    dbt_gemm_use_kernel(NULL);
}

/* ---- a thread's GEMM buffers ---------------------------------------------------------------- */

static void *gemm_thread(void *arg) {
    (void)arg;
    float *A = rand_floats(64 * 300, 1.0f, 0), *B = rand_floats(300 * 200, 1.0f, 0), *C = malloc(64 * 200 * sizeof *C);
    dbt_sgemm_nt(64, 200, 300, 1.0f, A, 300, B, 300, 0.0f, C, 200); /* packs A and B: both buffers */
    free(A), free(B), free(C);
    return NULL;
}

static void test_thread_exit_frees_buffers(void **state) {
    (void)state;
    dbt_gemm_set_threads(1);
    for (int i = 0; i < 8; i++) {
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, gemm_thread, NULL), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_packed_set),
        cmocka_unit_test(test_thread_exit_frees_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
