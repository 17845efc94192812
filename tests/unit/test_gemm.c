/* test_gemm.c — the GEMM kernels against a double-precision reference.
 *
 * Every micro-kernel this CPU runs (scalar always, AVX2 and AVX-512 when present) is forced in
 * turn and checked on many shapes: sizes from 1 to a few hundred that are not multiples of the
 * tiles (MR, NR) or blocks (KC, NC, MC), leading dimensions wider than the matrices, several
 * alpha/beta, all three transpositions, the Linear entry points (bias, prepacked weights, fused
 * activation) and 1 vs 2 threads.
 *
 * Error bound. With unit roundoff u = 2⁻²⁴, a K-term dot product summed in any order satisfies
 * |fl(s) − s| ≤ γ_K · Σ|a_k·b_k| with γ_K = K·u/(1 − K·u) (Higham, Accuracy and Stability of
 * Numerical Algorithms, §3.1); scaling by alpha, adding beta·c and the bias adds three more
 * roundings. We allow (K + 4)·u·(|alpha|·Σ|a·b| + |beta·c| + |bias|), doubled for margin:
 * tight enough that a wrong element, a missed K block or a stale tile fails by orders of
 * magnitude. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "kernels/kernels.h"
#include "kernels/threadpool.h"

static uint64_t rng = 0x9E3779B97F4A7C15u;

static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    return (float)((double)(rng >> 40) / (double)(1u << 24) * 2.0 - 1.0);
}

static float *rand_matrix(int64_t n) {
    float *m = malloc((size_t)(n > 0 ? n : 1) * sizeof *m);
    assert_non_null(m);
    for (int64_t i = 0; i < n; i++) m[i] = frand();
    return m;
}

typedef enum { NT, NN, TN } trans;

/* op(A)(i, k) and op(B)(k, j) for the three layouts. */
static double a_at(trans t, const float *A, int lda, int i, int k) {
    return t == TN ? A[(int64_t)k * lda + i] : A[(int64_t)i * lda + k];
}
static double b_at(trans t, const float *B, int ldb, int k, int j) {
    return t == NT ? B[(int64_t)j * ldb + k] : B[(int64_t)k * ldb + j];
}

static void run_gemm(trans t, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc) {
    switch (t) {
    case NT: dbt_sgemm_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case NN: dbt_sgemm_nn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case TN: dbt_sgemm_tn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    }
}

/* Checks C (M×N, ldc) against alpha·op(A)·op(B) + beta·C0 + bias, with the bound above; the
 * padding columns of C (ldc > N) must be untouched (still equal to C0). Returns the worst
 * error relative to the bound (≤ 1 passes). */
static double check(trans t, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                    float beta, const float *C0, const float *C, int ldc, const float *bias, const char *what) {
    double worst = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < ldc; j++) {
            const float got = C[(int64_t)i * ldc + j], c0 = C0[(int64_t)i * ldc + j];
            if (j >= N) {
                if (memcmp(&got, &c0, sizeof got))
                    fail_msg("%s: C[%d][%d] (padding past N=%d) was written", what, i, j, N);
                continue;
            }
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = a_at(t, A, lda, i, k) * b_at(t, B, ldb, k, j);
                s += p;
                mag += fabs(p);
            }
            double want = alpha * s, size = fabs((double)alpha) * mag;
            if (beta != 0.0f) want += (double)beta * c0, size += fabs((double)beta * c0);
            if (bias) want += bias[j], size += fabs((double)bias[j]);
            const double bound = 2.0 * (K + 4) * (FLT_EPSILON / 2) * size + FLT_MIN;
            const double err = fabs((double)got - want);
            if (!(err <= bound))
                fail_msg("%s: C[%d][%d] = %.9g, want %.9g (error %.3g > bound %.3g)", what, i, j, got, want, err,
                         bound);
            if (err / bound > worst) worst = err / bound;
        }
    }
    return worst;
}

/* One product in layout t with padded leading dimensions; C starts as NaN when beta is 0 (BLAS
 * must not read it then) and as random values otherwise. */
static void one_case(trans t, int M, int N, int K, float alpha, float beta, int pad) {
    const int a_rows = t == TN ? K : M, a_cols = t == TN ? M : K;
    const int b_rows = t == NT ? N : K, b_cols = t == NT ? K : N;
    const int lda = a_cols + pad, ldb = b_cols + pad, ldc = N + pad;
    float *A = rand_matrix((int64_t)a_rows * lda), *B = rand_matrix((int64_t)b_rows * ldb);
    float *C0 = rand_matrix((int64_t)M * ldc), *C = malloc((size_t)(M > 0 ? M : 1) * ldc * sizeof *C);
    assert_non_null(C);
    if (beta == 0.0f)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C0[(int64_t)i * ldc + j] = NAN;
    memcpy(C, C0, (size_t)M * ldc * sizeof *C);
    run_gemm(t, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    char what[160];
    snprintf(what, sizeof what, "%s %s M=%d N=%d K=%d alpha=%g beta=%g pad=%d", dbt_gemm_kernel_name(),
             t == NT ? "nt" : t == NN ? "nn" : "tn", M, N, K, alpha, beta, pad);
    check(t, M, N, K, alpha, A, lda, B, ldb, beta, C0, C, ldc, NULL, what);
    free(A), free(B), free(C0), free(C);
}

static const char *const KERNELS[] = {"scalar", "avx2", "avx512"};

/* Sizes around every tile and block edge of the three kernels (MR 4/6/14, NR 16/32, KC 256-400,
 * NC 256-512), small and odd ones, and a few hundred. */
static const int SIZES[] = {1, 2, 3, 5, 13, 14, 15, 17, 31, 32, 33, 47, 64, 100, 129, 257, 300};
#define NSIZES ((int)(sizeof SIZES / sizeof SIZES[0]))

static int use(const char *k) {
    if (dbt_gemm_use_kernel(k) != 0) {
        printf("  (kernel %s: not available on this CPU, skipped)\n", k);
        return 0;
    }
    return 1;
}

static void test_gemm_shapes(void **state) {
    (void)state;
    dbt_gemm_set_threads(1);
    for (size_t kk = 0; kk < sizeof KERNELS / sizeof KERNELS[0]; kk++) {
        if (!use(KERNELS[kk])) continue;
        int n = 0;
        for (int t = NT; t <= TN; t++)
            for (int a = 0; a < NSIZES; a += 2)
                for (int b = 1; b < NSIZES; b += 3)
                    for (int c = 0; c < NSIZES; c += 4) {
                        /* Vary alpha, beta and the padding with the shape (all combinations of
                         * everything would take minutes under ASan for no extra coverage). */
                        const float alphas[] = {1.0f, -0.5f, 2.0f}, betas[] = {0.0f, 1.0f, 0.75f};
                        one_case((trans)t, SIZES[a], SIZES[b], SIZES[c], alphas[n % 3], betas[(n / 3) % 3],
                                 n % 4 == 0 ? 0 : 1 + n % 7);
                        n++;
                    }
    }
    dbt_gemm_use_kernel(NULL);
}

/* Blocks along every dimension: K over the largest KC (several passes through C), N over NC,
 * M over MC. */
static void test_gemm_blocks(void **state) {
    (void)state;
    dbt_gemm_set_threads(1);
    for (size_t kk = 0; kk < sizeof KERNELS / sizeof KERNELS[0]; kk++) {
        if (!use(KERNELS[kk])) continue;
        for (int t = NT; t <= TN; t++) {
            one_case((trans)t, 37, 45, 1203, 1.0f, 0.0f, 3);     /* K: 4 passes of KC */
            one_case((trans)t, 29, 1100, 70, 1.0f, 0.5f, 0);     /* N: several NC blocks */
            one_case((trans)t, 2100, 40, 19, -1.0f, 1.0f, 5);    /* M: several MC blocks */
            one_case((trans)t, 150, 530, 450, 0.5f, 0.0f, 16);   /* everything at once */
        }
    }
    dbt_gemm_use_kernel(NULL);
}

/* K = 0 leaves beta·C; M or N = 0 touches nothing; alpha = 0 reads neither A nor B. */
static void test_gemm_degenerate(void **state) {
    (void)state;
    float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {NAN}, B[1] = {NAN};
    dbt_sgemm_nn(2, 3, 0, 1.0f, A, 1, B, 3, 2.0f, C, 3);
    for (int i = 0; i < 6; i++) assert_float_equal(C[i], 2.0f * (i + 1), 0);
    dbt_sgemm_nt(0, 3, 4, 1.0f, A, 4, B, 4, 0.0f, C, 3);
    dbt_sgemm_nt(2, 0, 4, 1.0f, A, 4, B, 4, 0.0f, C, 3);
    for (int i = 0; i < 6; i++) assert_float_equal(C[i], 2.0f * (i + 1), 0);
    dbt_sgemm_nt(2, 3, 1, 0.0f, A, 1, B, 1, 0.5f, C, 3);
    for (int i = 0; i < 6; i++) assert_float_equal(C[i], (float)(i + 1), 0);
}

/* y = act(x·Wᵀ + b) through every Linear entry point, plain and with packed weights, and packed
 * weights used after another kernel was selected (they fall back to W). */
static void test_linear(void **state) {
    (void)state;
    dbt_gemm_set_threads(1);
    const int shapes[][3] = {{1, 3, 768}, {7, 2, 33}, {45, 70, 129}, {130, 300, 500}, {15, 33, 17}};
    for (size_t kk = 0; kk < sizeof KERNELS / sizeof KERNELS[0]; kk++) {
        if (!use(KERNELS[kk])) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *x = rand_matrix((int64_t)M * K), *W = rand_matrix((int64_t)N * K), *b = rand_matrix(N);
            float *y = malloc((size_t)M * N * sizeof *y), *y2 = malloc((size_t)M * N * sizeof *y2);
            float *C0 = calloc((size_t)M * N, sizeof *C0);
            assert_non_null(y), assert_non_null(y2), assert_non_null(C0);
            char what[96];
            snprintf(what, sizeof what, "%s linear M=%d N=%d K=%d", KERNELS[kk], M, N, K);

            dbt_linear_forward(x, M, K, W, b, N, y);
            check(NT, M, N, K, 1.0f, x, K, W, K, 0.0f, C0, y, N, b, what);
            dbt_linear_forward(x, M, K, W, NULL, N, y);
            check(NT, M, N, K, 1.0f, x, K, W, K, 0.0f, C0, y, N, NULL, what);

            dbt_packed_b *Wp = dbt_pack_weights(W, N, K);
            assert_non_null(Wp);
            dbt_linear_forward_ex(x, M, K, NULL, Wp, b, N, DBT_GEMM_NO_ACT, y2);
            check(NT, M, N, K, 1.0f, x, K, W, K, 0.0f, C0, y2, N, b, what);
            dbt_linear_forward(x, M, K, W, b, N, y);
            assert_memory_equal(y, y2, (size_t)M * N * sizeof *y); /* packed ahead or not: same sums */

            /* Fused activation = the activation applied afterwards, bit for bit. */
            dbt_linear_forward_ex(x, M, K, W, Wp, b, N, DBT_ACT_GELU, y2);
            dbt_activation_forward(DBT_ACT_GELU, y, (int64_t)M * N);
            assert_memory_equal(y, y2, (size_t)M * N * sizeof *y);

            /* Packed for this kernel, used under another. */
            dbt_gemm_use_kernel(kk == 0 ? NULL : "scalar");
            dbt_linear_forward_ex(x, M, K, W, Wp, b, N, DBT_GEMM_NO_ACT, y2);
            check(NT, M, N, K, 1.0f, x, K, W, K, 0.0f, C0, y2, N, b, what);
            dbt_gemm_use_kernel(KERNELS[kk]);

            dbt_packed_free(Wp);
            free(x), free(W), free(b), free(y), free(y2), free(C0);
        }
    }
    dbt_gemm_use_kernel(NULL);
}

/* Each element is computed by one thread in the same order whatever the thread count, so 1 and
 * 2 threads agree bit for bit (a stronger property than "within rounding", and one a reduction
 * split along K would break). Shapes split along M, along N, and unevenly. */
static void test_threads_agree(void **state) {
    (void)state;
    const int shapes[][3] = {{300, 200, 100}, {20, 1000, 300}, {15, 37, 4000}, {512, 768, 768}};
    for (size_t kk = 0; kk < sizeof KERNELS / sizeof KERNELS[0]; kk++) {
        if (!use(KERNELS[kk])) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *A = rand_matrix((int64_t)M * K), *B = rand_matrix((int64_t)N * K), *b = rand_matrix(N);
            float *C1 = malloc((size_t)M * N * sizeof *C1), *C2 = malloc((size_t)M * N * sizeof *C2);
            assert_non_null(C1), assert_non_null(C2);
            for (int t = NT; t <= TN; t++) {
                const int lda = t == TN ? M : K, ldb = t == NT ? K : N;
                dbt_gemm_set_threads(1);
                run_gemm((trans)t, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N);
                dbt_gemm_set_threads(2);
                run_gemm((trans)t, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C2, N);
                assert_memory_equal(C1, C2, (size_t)M * N * sizeof *C1);
            }
            dbt_gemm_set_threads(1);
            dbt_linear_forward_ex(A, M, K, B, NULL, b, N, DBT_ACT_GELU, C1);
            dbt_gemm_set_threads(2);
            dbt_linear_forward_ex(A, M, K, B, NULL, b, N, DBT_ACT_GELU, C2);
            assert_memory_equal(C1, C2, (size_t)M * N * sizeof *C1);
            free(A), free(B), free(b), free(C1), free(C2);
        }
    }
    dbt_gemm_set_threads(1);
    dbt_gemm_use_kernel(NULL);
}

/* The pool runs every part exactly once, also for more parts than cores, and runs a nested
 * call (from inside a part) serially instead of deadlocking. */
typedef struct {
    int count[8];
    int nested[8][4];
} pool_rec;

static void nested_part(void *arg, int t, int n) {
    int *row = arg;
    row[t] += n;
}

static void pool_part(void *arg, int t, int n) {
    pool_rec *r = arg;
    r->count[t]++;
    dbt_pool_run(nested_part, r->nested[t], 4);
}

static void test_pool(void **state) {
    (void)state;
    for (int threads = 1; threads <= 8; threads++) {
        dbt_pool_set_threads(threads);
        for (int rep = 0; rep < 50; rep++) {
            pool_rec r;
            memset(&r, 0, sizeof r);
            dbt_pool_run(pool_part, &r, threads);
            for (int t = 0; t < 8; t++) {
                assert_int_equal(r.count[t], t < threads ? 1 : 0);
                for (int u = 0; u < 4; u++) assert_int_equal(r.nested[t][u], t < threads && u < threads ? threads < 4 ? threads : 4 : 0);
            }
        }
    }
    dbt_pool_set_threads(1);
}

/* The sleeping paths: workers idle past their spin (asleep when the next run comes) and a part
 * that outlasts the caller's spin (the caller sleeps until the last worker signals). */
static void slow_part(void *arg, int t, int n) {
    int *count = arg;
    if (t == n - 1) usleep(1000);
    __atomic_fetch_add(&count[t], 1, __ATOMIC_RELAXED);
}

static void test_pool_sleeps(void **state) {
    (void)state;
    dbt_pool_set_threads(2);
    for (int rep = 0; rep < 20; rep++) {
        int count[2] = {0, 0};
        usleep(rep % 2 ? 500 : 0);
        dbt_pool_run(slow_part, count, 2);
        assert_int_equal(count[0], 1);
        assert_int_equal(count[1], 1);
    }
    dbt_pool_set_threads(1);
}

/* After fork() the child has no workers: its first run starts new ones instead of waiting for
 * the parent's (which would hang). */
static void test_pool_after_fork(void **state) {
    (void)state;
    dbt_pool_set_threads(2);
    pool_rec r;
    memset(&r, 0, sizeof r);
    dbt_pool_run(pool_part, &r, 2); /* the parent's worker exists now */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        memset(&r, 0, sizeof r);
        dbt_pool_run(pool_part, &r, 2);
        _exit(r.count[0] == 1 && r.count[1] == 1 ? 0 : 1);
    }
    int status = 0;
    for (int waited = 0; waitpid(pid, &status, WNOHANG) == 0; waited++) {
        if (waited > 500) { /* 5 s: the child hangs */
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("the pool deadlocked in a forked child");
        }
        usleep(10000);
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    dbt_pool_set_threads(1);
}

/* GELU against x·Φ(x) in double on every path: the SIMD paths use A&S 7.1.26 (|Δerfc| ≤
 * 1.5e-7, so |ΔΦ| ≤ 0.75e-7) plus a few roundings of Φ ≤ 1 (≤ 2e-7 together), the scalar path
 * erff. Bound: |x|·3e-7 + FLT_MIN. Covers the tails (n not a multiple of the vector width), the
 * far tails of Φ, zeros, infinities and NaN. */
static void test_gelu(void **state) {
    (void)state;
    enum { N = 4099 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = -12.0f + 24.0f * (float)i / (N - 1) + 1e-3f * frand();
    x[0] = 0.0f, x[1] = -0.0f, x[2] = 1e-30f, x[3] = -1e-30f, x[4] = 30.0f, x[5] = -30.0f, x[6] = 1e30f;
    for (size_t kk = 0; kk < sizeof KERNELS / sizeof KERNELS[0]; kk++) {
        if (!use(KERNELS[kk])) continue;
        for (int n = 1; n <= N; n += n < 40 ? 1 : 997) { /* all tail lengths, then long arrays */
            memcpy(y, x, sizeof y);
            dbt_gelu_forward(y, n);
            for (int i = 0; i < n; i++) {
                const double xd = x[i], want = xd * 0.5 * erfc(-xd / sqrt(2.0));
                const double bound = fabs(xd) * 3e-7 + FLT_MIN;
                if (!(fabs(y[i] - want) <= bound))
                    fail_msg("%s gelu(%.9g) = %.9g, want %.9g (n=%d)", KERNELS[kk], x[i], y[i], want, n);
            }
            for (int i = n; i < N; i++) assert_memory_equal(&y[i], &x[i], sizeof y[i]); /* past n: untouched */
        }
        float sp[3] = {INFINITY, -INFINITY, NAN};
        dbt_gelu_forward(sp, 3);
        assert_true(sp[0] == INFINITY);
        assert_true(isnan(sp[2]));
        /* the same value gives the same bits wherever it sits (fused epilogues depend on it) */
        float a[37], b[1];
        for (int i = 0; i < 37; i++) a[i] = 0.3f * (i - 18);
        memcpy(b, &a[29], sizeof b);
        dbt_gelu_forward(a, 37);
        dbt_gelu_forward(b, 1);
        assert_memory_equal(&a[29], b, sizeof b);
    }
    dbt_gemm_use_kernel(NULL);
}

/* Softmax rows against double: each output within (n + 8 + |x − max|)·eps relative (exp ≈ 1 ulp,
 * the rounding of x − max, which e^· turns into |x − max|·eps/2 relative, the sum's n roundings,
 * the division), plus FLT_MIN for entries below e^−87 (flushed to about FLT_MIN). */
static void test_softmax(void **state) {
    (void)state;
    float x[300], y[300];
    for (size_t kk = 0; kk < sizeof KERNELS / sizeof KERNELS[0]; kk++) {
        if (!use(KERNELS[kk])) continue;
        for (int n = 1; n <= 300; n += n < 40 ? 1 : 37) {
            const float scale = n % 3 == 0 ? 40.0f : 4.0f; /* wide rows reach the flushed range */
            for (int i = 0; i < n; i++) x[i] = scale * frand();
            memcpy(y, x, sizeof y);
            dbt_softmax_rows(y, 1, n, n);
            double mx = -INFINITY, sum = 0;
            for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
            for (int i = 0; i < n; i++) sum += exp((double)x[i] - mx);
            for (int i = 0; i < n; i++) {
                const double want = exp((double)x[i] - mx) / sum;
                const double bound = (n + 8 + fabs(x[i] - mx)) * FLT_EPSILON * want + 2 * FLT_MIN;
                if (!(fabs(y[i] - want) <= bound))
                    fail_msg("%s softmax n=%d [%d] = %.9g, want %.9g", KERNELS[kk], n, i, y[i], want);
            }
        }
        /* valid < n: the rest of the row is zeroed */
        for (int i = 0; i < 20; i++) y[i] = (float)i;
        dbt_softmax_rows(y, 1, 20, 7);
        for (int i = 7; i < 20; i++) assert_true(y[i] == 0.0f);
    }
    dbt_gemm_use_kernel(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_shapes),   cmocka_unit_test(test_gemm_blocks),
        cmocka_unit_test(test_gemm_degenerate), cmocka_unit_test(test_linear),
        cmocka_unit_test(test_threads_agree), cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_sleeps),   cmocka_unit_test(test_pool_after_fork),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_softmax),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
