/* test_gradcheck.c — every backward pass against central finite differences, on tiny shapes with
 * random inputs from a fixed seed.
 *
 * Two kinds of check, because the ops sit at two levels:
 *
 * 1. The ops of kernels.h and the losses (LayerNorm with residual, every activation on every
 *    kernel path, softmax, Linear, dropout, cross-entropy with ignore_index, MSE, BCE, the
 *    soft-target KL with temperature, QA start/end, and the distiller's terms: KL·T², masked-LM
 *    CE, MSE, cosine embedding loss). The forward is restated here in double; the numerical
 *    gradient of Σ w·f (w random) is the central difference with h = 1e-6 in double: truncation
 *    ~h²·f''' ≈ 1e-12, cancellation ~1e-16/h ≈ 1e-10, so the numerical side is exact to ~1e-9
 *    and what is measured is the library's float backward. Its error is a few float roundings
 *    per element (~1e-6 relative, sums of a row taken in double): the tolerance is 1e-5
 *    relative to the tensor's largest gradient (1e-5 absolute per element for the activations,
 *    whose vectorized paths approximate erf/exp to ~1e-7). A wrong sign or a missing term is
 *    off by O(1) of the gradient, five orders above.
 *
 * 2. The model: embeddings (word + position (+ type) gathered, gradients scattered to rows),
 *    every layer (attention over packed sequences of different lengths — the training path's
 *    form of the padding mask: a sequence attends to its own T keys only — with attention
 *    dropout, LayerNorms with residuals, the FFN, dropouts), and each head (MLM transform +
 *    decoder tied to the word embeddings, on a subset of rows; DistilBERT seq-cls with
 *    pre_classifier + ReLU + dropout; BERT seq-cls with the tanh pooler; token-cls; QA), through
 *    dbt_train_forward / dbt_train_backward on small in-memory models (dim 8, 2 heads, 2
 *    layers). Dropout is on, with the generator reseeded for each evaluation, so every forward
 *    draws the same masks. The forward is the library's (float), so the difference quotient uses
 *    the five-point stencil (f(−2h) − 8f(−h) + 8f(h) − f(2h)) / 12h, truncation O(h⁴), with
 *    h = 2⁻⁶; parameters are rounded to multiples of 2⁻²⁰ so that p ± h, p ± 2h are exact in
 *    float. The float forward's rounding (~1e-6 on the loss) divided by h gives ~2e-4 of noise:
 *    the tolerance is 2e-3 relative to the tensor's largest gradient (floor: 5% of the case's
 *    largest gradient, for the key bias, whose gradient is zero in exact arithmetic). Measured:
 *    the worst tensor is at ~3.5e-4, six times under it; a sign flipped or a term dropped in a
 *    backward (tried: LayerNorm's x̂ term, GELU's x·φ, attention dropout's mask on dP, the
 *    [CLS]-only layer's scatter) fails by one to three orders of magnitude. Every parameter
 *    element is checked. GRADCHECK_VERBOSE=1 prints each tensor's largest error. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/rng.h"
#include "kernels/kernels.h"
#include "kernels/threadpool.h"
#include "model/model_internal.h"
#include "training/backprop.h"
#include "training/distill.h"
#include "training/losses.h"
#include "training/optimizer.h"
#include "training/params.h"

static uint64_t rng = 0x9E3779B97F4A7C15u;

static double drand(void) { /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    return (double)(rng >> 40) / (double)(1u << 24) * 2.0 - 1.0;
}

static float *frand_vec(int64_t n, double lo, double hi) {
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(lo + (hi - lo) * (drand() + 1) / 2);
    return v;
}

static double *to_double(const float *x, int64_t n) {
    double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    assert_non_null(d);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* Analytic a against numerical g over one tensor: |a − g| ≤ tol · max(max|g|, floor). */
static void check_close(const char *what, const float *a, const double *g, int64_t n, double tol, double floor) {
    double scale = floor;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(g[i]));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(a[i] - g[i]) <= tol * scale))
            fail_msg("%s[%lld]: analytic %.9g, numerical %.9g (tolerance %.2g)", what, (long long)i, a[i], g[i],
                     tol * scale);
}

/* Central difference of f over every element of x (double, h = 1e-6). */
typedef double (*loss_fn)(void *ctx);
static void numgrad(loss_fn f, void *ctx, double *x, int64_t n, double *g) {
    const double h = 1e-6;
    for (int64_t i = 0; i < n; i++) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double fp = f(ctx);
        x[i] = x0 - h;
        const double fm = f(ctx);
        x[i] = x0;
        g[i] = (fp - fm) / (2 * h);
    }
}

#define OP_TOL 1e-5

/* The kernel paths: each op is checked on every one this CPU runs (dbt_gemm_use_kernel). */
static const char *const KERNELS[] = {"scalar", "avx2", "avx512"};

/* ==== 1. ops, against double references ==================================================== */

/* ---- LayerNorm(x + residual) ---- */
typedef struct {
    int rows, n;
    double *x, *r, *g, *b, *w, eps;
} ln_ctx;

static double ln_ref(void *p) {
    const ln_ctx *c = p;
    double L = 0;
    for (int r = 0; r < c->rows; r++) {
        double v[64], mean = 0, var = 0;
        for (int i = 0; i < c->n; i++) mean += v[i] = c->x[r * c->n + i] + c->r[r * c->n + i];
        mean /= c->n;
        for (int i = 0; i < c->n; i++) var += (v[i] - mean) * (v[i] - mean);
        const double rs = 1.0 / sqrt(var / c->n + c->eps);
        for (int i = 0; i < c->n; i++) L += c->w[r * c->n + i] * ((v[i] - mean) * rs * c->g[i] + c->b[i]);
    }
    return L;
}

static void layernorm_case(void) {
    const int rows = 4, n = 19;
    float *x = frand_vec(rows * n, -2, 2), *r = frand_vec(rows * n, -1, 1), *g = frand_vec(n, 0.5, 1.5);
    float *b = frand_vec(n, -0.5, 0.5), *w = frand_vec(rows * n, -1, 1);
    float *y = malloc(sizeof(float) * rows * n), *xhat = malloc(sizeof(float) * rows * n), rstd[4];
    float *dx = malloc(sizeof(float) * rows * n), *dg = malloc(sizeof(float) * n), *db = malloc(sizeof(float) * n);
    dbt_layernorm_forward_train(x, r, rows, n, g, b, 1e-5f, y, xhat, rstd);
    /* dγ and dβ accumulate: start them at 1 and take it off after */
    for (int i = 0; i < n; i++) dg[i] = db[i] = 1.0f;
    dbt_layernorm_backward(w, xhat, rstd, g, rows, n, dx, dg, db);
    for (int i = 0; i < n; i++) dg[i] -= 1.0f, db[i] -= 1.0f;
    ln_ctx c = {rows, n, to_double(x, rows * n), to_double(r, rows * n), to_double(g, n), to_double(b, n),
                to_double(w, rows * n), 1e-5};
    /* the forward itself: y against the reference */
    for (int k = 0; k < rows * n; k++) {
        double save[4 * 19];
        memcpy(save, c.w, sizeof save);
        memset(c.w, 0, sizeof save);
        c.w[k] = 1;
        const double want = ln_ref(&c);
        memcpy(c.w, save, sizeof save);
        assert_true(fabs(y[k] - want) <= 1e-5 * (1 + fabs(want)));
    }
    double *num = malloc(sizeof(double) * rows * n);
    numgrad(ln_ref, &c, c.x, rows * n, num);
    check_close("layernorm dx", dx, num, rows * n, OP_TOL, 0);
    numgrad(ln_ref, &c, c.r, rows * n, num); /* the residual gets the same gradient as x */
    check_close("layernorm dresidual", dx, num, rows * n, OP_TOL, 0);
    numgrad(ln_ref, &c, c.g, n, num);
    check_close("layernorm dgamma", dg, num, n, OP_TOL, 0);
    numgrad(ln_ref, &c, c.b, n, num);
    check_close("layernorm dbeta", db, num, n, OP_TOL, 0);
    free(c.x), free(c.r), free(c.g), free(c.b), free(c.w), free(num);
    free(x), free(r), free(g), free(b), free(w), free(y), free(xhat), free(dx), free(dg), free(db);
}

static void test_layernorm(void **state) {
    (void)state;
    for (int k = 0; k < 3; k++)
        if (dbt_gemm_use_kernel(KERNELS[k]) == 0) layernorm_case();
    dbt_gemm_use_kernel(NULL);
}

/* ---- activations, on every kernel path (the GELU backward is vectorized) ---- */
static double act_ref(dbt_activation a, double x) {
    switch (a) {
    case DBT_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case DBT_ACT_RELU: return x > 0 ? x : 0;
    case DBT_ACT_GELU_TANH:
    case DBT_ACT_GELU_FAST: return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case DBT_ACT_QUICK_GELU: return x / (1 + exp(-1.702 * x));
    case DBT_ACT_SILU: return x / (1 + exp(-x));
    case DBT_ACT_TANH: return tanh(x);
    }
    return x;
}

static void test_activations(void **state) {
    (void)state;
    enum { N = 203 }; /* not a multiple of 8 or 16: the vector tails too */
    float x[N], dy[N], dx[N], fwd[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)(6 * drand());
        if (fabsf(x[i]) < 1e-2f) x[i] = 0.5f; /* away from ReLU's kink */
        dy[i] = (float)drand();
    }
    const float special[] = {0.0625f, -0.0625f, 1, -1, 3.5f, -3.5f, 9, -9, 20, -20};
    memcpy(x, special, sizeof special);
    for (int k = 0; k < 3; k++) {
        if (dbt_gemm_use_kernel(KERNELS[k]) < 0) continue;
        for (int a = DBT_ACT_GELU; a <= DBT_ACT_TANH; a++) {
            dbt_activation_backward((dbt_activation)a, x, dy, dx, N);
            memcpy(fwd, x, sizeof fwd);
            dbt_activation_forward((dbt_activation)a, fwd, N);
            for (int i = 0; i < N; i++) {
                const double h = 1e-6, d = (act_ref(a, x[i] + h) - act_ref(a, x[i] - h)) / (2 * h);
                const double want = dy[i] * d;
                if (!(fabs(dx[i] - want) <= OP_TOL * fabs(dy[i]) * fmax(1, fabs(d))))
                    fail_msg("%s activation %d backward at x = %.9g: %.9g, numerical %.9g", KERNELS[k], a, x[i],
                             dx[i], want);
                /* the forward the backward pairs with */
                assert_true(fabs(fwd[i] - act_ref(a, x[i])) <= 1e-5 * fmax(1, fabs(x[i])));
            }
            /* in place (dx aliasing dy), as backprop.c calls it */
            float io[N];
            memcpy(io, dy, sizeof io);
            dbt_activation_backward((dbt_activation)a, x, io, io, N);
            assert_memory_equal(io, dx, sizeof io);
        }
    }
    dbt_gemm_use_kernel(NULL);
}

/* ---- softmax rows ---- */
typedef struct {
    int rows, n;
    double *z, *w;
} sm_ctx;

static void softmax_d(const double *z, int n, double *p) {
    double mx = z[0], s = 0;
    for (int i = 1; i < n; i++) mx = fmax(mx, z[i]);
    for (int i = 0; i < n; i++) s += p[i] = exp(z[i] - mx);
    for (int i = 0; i < n; i++) p[i] /= s;
}

static double sm_ref(void *p) {
    const sm_ctx *c = p;
    double L = 0, q[64];
    for (int r = 0; r < c->rows; r++) {
        softmax_d(c->z + r * c->n, c->n, q);
        for (int i = 0; i < c->n; i++) L += c->w[r * c->n + i] * q[i];
    }
    return L;
}

static void softmax_case(void) {
    const int rows = 3, n = 21;
    float *z = frand_vec(rows * n, -3, 3), *w = frand_vec(rows * n, -1, 1), p[3 * 21], d[3 * 21];
    memcpy(p, z, sizeof p);
    dbt_softmax_rows(p, rows, n, n);
    memcpy(d, w, sizeof d);
    dbt_softmax_backward_rows(p, d, rows, n);
    sm_ctx c = {rows, n, to_double(z, rows * n), to_double(w, rows * n)};
    double num[3 * 21];
    numgrad(sm_ref, &c, c.z, rows * n, num);
    check_close("softmax", d, num, rows * n, OP_TOL, 0);
    free(c.z), free(c.w), free(z), free(w);
}

static void test_softmax(void **state) {
    (void)state;
    for (int k = 0; k < 3; k++)
        if (dbt_gemm_use_kernel(KERNELS[k]) == 0) softmax_case();
    dbt_gemm_use_kernel(NULL);
}

/* ---- Linear ---- */
typedef struct {
    int M, K, N;
    double *x, *W, *b, *w;
} lin_ctx;

static double lin_ref(void *p) {
    const lin_ctx *c = p;
    double L = 0;
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->N; j++) {
            double y = c->b[j];
            for (int k = 0; k < c->K; k++) y += c->x[i * c->K + k] * c->W[j * c->K + k];
            L += c->w[i * c->N + j] * y;
        }
    return L;
}

static void linear_case(int N) {
    const int M = 5, K = 7;
    float *x = frand_vec(M * K, -1, 1), *W = frand_vec(N * K, -1, 1), *b = frand_vec(N, -1, 1);
    float *w = frand_vec(M * N, -1, 1), dx[5 * 7], dW[70 * 7], db[70], dx2[5 * 7];
    memset(dW, 0, sizeof dW);
    for (int j = 0; j < N; j++) db[j] = 0.5f; /* db accumulates */
    dbt_linear_backward(x, w, M, K, N, W, dx, 0, dW, db);
    for (int j = 0; j < N; j++) db[j] -= 0.5f;
    for (int i = 0; i < M * K; i++) dx2[i] = 0.25f;
    dbt_linear_backward(x, w, M, K, N, W, dx2, 1, NULL, NULL); /* accumulate: dx += dy·W */
    for (int i = 0; i < M * K; i++) dx2[i] -= 0.25f;
    lin_ctx c = {M, K, N, to_double(x, M * K), to_double(W, N * K), to_double(b, N), to_double(w, M * N)};
    double num[70 * 7];
    numgrad(lin_ref, &c, c.x, M * K, num);
    check_close("linear dx", dx, num, M * K, OP_TOL, 0);
    check_close("linear dx (accumulated)", dx2, num, M * K, OP_TOL, 0);
    numgrad(lin_ref, &c, c.W, N * K, num);
    check_close("linear dW", dW, num, N * K, OP_TOL, 0);
    numgrad(lin_ref, &c, c.b, N, num);
    check_close("linear db", db, num, N, OP_TOL, 0);
    free(c.x), free(c.W), free(c.b), free(c.w), free(x), free(W), free(b), free(w);
}

static void test_linear(void **state) {
    (void)state;
    for (int k = 0; k < 3; k++)
        if (dbt_gemm_use_kernel(KERNELS[k]) == 0) {
            linear_case(6);
            linear_case(70); /* the bias gradient's column blocks (64) and their tail */
        }
    dbt_gemm_use_kernel(NULL);
}

/* ---- dropout: a fixed mask (the key), on every kernel path ---- */
static void test_dropout(void **state) {
    (void)state;
    enum { N = 4099 };
    float *x = frand_vec(N, -1, 1), y[N], ref[N], g[N];
    const float p = 0.3f, keep = 1.0f / (1.0f - p);
    const uint64_t key = 0x1234567887654321u;
    for (int k = 0; k < 3; k++) {
        if (dbt_gemm_use_kernel(KERNELS[k]) < 0) continue;
        dbt_dropout(key, p, 17, x, y, N);
        int dropped = 0;
        for (int i = 0; i < N; i++) {
            assert_true(y[i] == 0.0f || y[i] == x[i] * keep);
            dropped += y[i] == 0.0f;
        }
        /* p·N ± 5σ */
        assert_true(fabs(dropped - p * N) < 5 * sqrt(N * p * (1 - p)));
        if (k == 0) memcpy(ref, y, sizeof ref);
        else assert_memory_equal(y, ref, sizeof ref); /* every path draws the same mask */
        /* the backward is the same multiplication: d(Σ g·y)/dx = g·mask, and in place */
        for (int i = 0; i < N; i++) g[i] = 1.0f;
        dbt_dropout(key, p, 17, g, g, N);
        for (int i = 0; i < N; i++) assert_true(g[i] == (y[i] == 0.0f ? 0.0f : keep));
        /* an offset into the same stream: element i at base b is element i + b */
        dbt_dropout(key, p, 17 + 100, x + 100, g, N - 100);
        assert_memory_equal(g, y + 100, sizeof(float) * (N - 100));
        /* two arrays under one mask, as attention's backward uses it */
        float *y1 = malloc(sizeof(float) * N), *y2 = malloc(sizeof(float) * N);
        for (int i = 0; i < N; i++) g[i] = 2.0f;
        dbt_dropout2(key, p, 17, x, y1, g, y2, N);
        assert_memory_equal(y1, y, sizeof(float) * N);
        for (int i = 0; i < N; i++) assert_true(y2[i] == (y[i] == 0.0f ? 0.0f : 2.0f * keep));
        free(y1), free(y2);
    }
    dbt_gemm_use_kernel(NULL);
    free(x);
}

/* ---- losses ---- */
typedef struct {
    int rows, cols;
    double *x;
    const int32_t *labels;
    double scale;
} ce_ctx;

static double lse_d(const double *x, int n, int64_t stride) {
    double mx = x[0], s = 0;
    for (int i = 1; i < n; i++) mx = fmax(mx, x[i * stride]);
    for (int i = 0; i < n; i++) s += exp(x[i * stride] - mx);
    return mx + log(s);
}

static double ce_ref(void *p) {
    const ce_ctx *c = p;
    double L = 0;
    int cnt = 0;
    for (int r = 0; r < c->rows; r++) {
        if (c->labels[r] == DBT_IGNORE_INDEX) continue;
        L += lse_d(c->x + r * c->cols, c->cols, 1) - c->x[r * c->cols + c->labels[r]];
        cnt++;
    }
    return cnt ? c->scale * L / cnt : 0;
}

static void test_loss_cross_entropy(void **state) {
    (void)state;
    const int rows = 5, cols = 7;
    const int32_t labels[5] = {3, DBT_IGNORE_INDEX, 0, 6, DBT_IGNORE_INDEX};
    float *x = frand_vec(rows * cols, -3, 3), d[5 * 7];
    int64_t count = 0;
    const double loss = dbt_loss_cross_entropy(x, rows, cols, labels, 0.5f, d, &count);
    assert_int_equal(count, 3);
    ce_ctx c = {rows, cols, to_double(x, rows * cols), labels, 1.0};
    assert_true(fabs(loss - ce_ref(&c)) < 1e-9);
    c.scale = 0.5;
    double num[5 * 7];
    numgrad(ce_ref, &c, c.x, rows * cols, num);
    check_close("cross-entropy", d, num, rows * cols, OP_TOL, 0);
    for (int i = 0; i < cols; i++) assert_true(d[cols + i] == 0.0f && d[4 * cols + i] == 0.0f); /* ignored rows */
    free(c.x), free(x);
}

typedef struct {
    int n;
    double *x, *t, scale;
    int bce;
} pt_ctx;

static double pointwise_ref(void *p) {
    const pt_ctx *c = p;
    double L = 0;
    for (int i = 0; i < c->n; i++) {
        const double x = c->x[i], t = c->t[i];
        L += c->bce ? -(t * log(1 / (1 + exp(-x))) + (1 - t) * log(1 - 1 / (1 + exp(-x)))) : (x - t) * (x - t);
    }
    return c->scale * L / c->n;
}

static void test_loss_mse_bce(void **state) {
    (void)state;
    for (int bce = 0; bce < 2; bce++) {
        const int n = 9;
        float *x = frand_vec(n, -3, 3), *t = frand_vec(n, bce ? 0 : -2, bce ? 1 : 2), d[9];
        const double loss = bce ? dbt_loss_bce_logits(x, t, n, 0.7f, d) : dbt_loss_mse(x, t, n, 0.7f, d);
        pt_ctx c = {n, to_double(x, n), to_double(t, n), 1.0, bce};
        assert_true(fabs(loss - pointwise_ref(&c)) < 1e-9);
        c.scale = 0.7;
        double num[9];
        numgrad(pointwise_ref, &c, c.x, n, num);
        check_close(bce ? "bce" : "mse", d, num, n, OP_TOL, 0);
        free(c.x), free(c.t), free(x), free(t);
    }
}

/* KL(softmax(t/T) ‖ softmax(s/T))·T², mean over rows; rows `stride` apart. */
typedef struct {
    int rows, cols;
    int64_t stride;
    double *s, *t, T, scale;
} kl_ctx;

static double kl_ref(void *p) {
    const kl_ctx *c = p;
    double L = 0, a[64], b[64];
    for (int r = 0; r < c->rows; r++) {
        for (int i = 0; i < c->cols; i++) a[i] = c->s[r * c->stride + i] / c->T, b[i] = c->t[r * c->stride + i] / c->T;
        const double ls = lse_d(a, c->cols, 1), lt = lse_d(b, c->cols, 1);
        for (int i = 0; i < c->cols; i++) L += exp(b[i] - lt) * ((b[i] - lt) - (a[i] - ls));
    }
    return c->scale * L / c->rows * c->T * c->T;
}

static void test_loss_kl_soft(void **state) {
    (void)state;
    const int rows = 3, cols = 5, stride = 7;
    float *s = frand_vec(rows * stride, -3, 3), *t = frand_vec(rows * stride, -3, 3), d[3 * 7];
    for (int i = 0; i < rows * stride; i++) d[i] = 0.125f; /* the gradient is added */
    const double loss = dbt_loss_kl_soft(s, t, rows, cols, stride, 2.0f, 0.5f, d);
    for (int i = 0; i < rows * stride; i++) d[i] -= 0.125f;
    kl_ctx c = {rows, cols, stride, to_double(s, rows * stride), to_double(t, rows * stride), 2.0, 1.0};
    assert_true(fabs(loss - kl_ref(&c)) < 1e-6 * (1 + fabs(loss)));
    c.scale = 0.5;
    double num[3 * 7];
    numgrad(kl_ref, &c, c.s, rows * stride, num); /* the columns past cols: zero on both sides */
    check_close("kl soft", d, num, rows * stride, OP_TOL, 0);
    free(c.s), free(c.t), free(s), free(t);
}

/* QA: (CE(start) + CE(end)) / 2, each a mean over the sequences whose position counts. */
typedef struct {
    int n;
    const int32_t *rs, *sp, *ep;
    double *x, scale;
} qa_ctx;

static double qa_ref(void *p) {
    const qa_ctx *c = p;
    double total = 0;
    for (int which = 0; which < 2; which++) {
        const int32_t *pos = which ? c->ep : c->sp;
        double L = 0;
        int cnt = 0;
        for (int s = 0; s < c->n; s++) {
            const int T = c->rs[s + 1] - c->rs[s], y = pos[s] < 0 ? 0 : pos[s];
            if (y >= T) continue;
            const double *x = c->x + (int64_t)c->rs[s] * 2 + which;
            L += lse_d(x, T, 2) - x[2 * y];
            cnt++;
        }
        if (cnt) total += 0.5 * L / cnt;
    }
    return c->scale * total;
}

static void test_loss_qa(void **state) {
    (void)state;
    const int32_t rs[4] = {0, 4, 10, 15}, sp[3] = {1, 6, -3}, ep[3] = {3, 2, 5}; /* end 5 of T 5: ignored */
    float *x = frand_vec(15 * 2, -3, 3), d[30];
    const double loss = dbt_loss_qa(x, 3, rs, sp, ep, 0.5f, d);
    qa_ctx c = {3, rs, sp, ep, to_double(x, 30), 1.0};
    assert_true(fabs(loss - qa_ref(&c)) < 1e-9);
    c.scale = 0.5;
    double num[30];
    numgrad(qa_ref, &c, c.x, 30, num);
    check_close("qa", d, num, 30, OP_TOL, 0);
    free(c.x), free(x);
}

/* The distiller's loss: alpha_ce·KL·T² (batchmean over the compared rows) + alpha_mlm·CE on
 * the masked rows + alpha_mse·Σ(s − t)²/rows + alpha_cos·mean(1 − cos(h_s, h_t)). */
typedef struct {
    dbt_distill_cfg cfg;
    int R, D, V, ns;
    const int32_t *rows, *labels;
    double *s, *t, *hs, *ht, scale;
    int hidden_mse; /* the teacher has no logits: MSE on hidden states */
} dl_ctx;

static double dl_ref(void *p) {
    const dl_ctx *c = p;
    const int V = c->V, D = c->D;
    double ce = 0, mlm = 0, mse = 0, cs = 0, a[64], b[64];
    int n_soft = 0, n_mlm = 0;
    for (int i = 0; i < c->ns; i++) {
        const double *s = c->s + i * V, *t = c->t + (int64_t)c->rows[i] * V;
        const int32_t y = c->labels[c->rows[i]];
        if (y != DBT_IGNORE_INDEX) mlm += lse_d(s, V, 1) - s[y], n_mlm++;
        if (c->cfg.restrict_ce_to_mask && y == DBT_IGNORE_INDEX) continue;
        n_soft++;
        for (int v = 0; v < V; v++) a[v] = s[v] / c->cfg.temperature, b[v] = t[v] / c->cfg.temperature;
        const double ls = lse_d(a, V, 1), lt = lse_d(b, V, 1);
        for (int v = 0; v < V; v++) {
            ce += exp(b[v] - lt) * ((b[v] - lt) - (a[v] - ls));
            if (!c->hidden_mse) mse += (s[v] - t[v]) * (s[v] - t[v]);
        }
    }
    for (int r = 0; r < c->R; r++) {
        double xy = 0, xx = 1e-12, yy = 1e-12;
        for (int i = 0; i < D; i++) {
            const double x = c->hs[r * D + i], y = c->ht[r * D + i];
            xy += x * y, xx += x * x, yy += y * y;
            if (c->hidden_mse) mse += (x - y) * (x - y);
        }
        cs += 1 - xy / sqrt(xx * yy);
    }
    const double T = c->cfg.temperature;
    const double L = c->cfg.alpha_ce * ce / n_soft * T * T + c->cfg.alpha_mlm * mlm / n_mlm +
                     c->cfg.alpha_mse * mse / (c->hidden_mse ? c->R : n_soft) + c->cfg.alpha_cos * cs / c->R;
    return c->scale * L;
}

static void test_loss_distill(void **state) {
    (void)state;
    enum { R = 6, D = 5, V = 9, NS = 4 };
    const int32_t row_start[3] = {0, 2, 6}, rows[NS] = {0, 2, 3, 5};
    const int32_t labels[R] = {4, DBT_IGNORE_INDEX, DBT_IGNORE_INDEX, 7, 1, 0};
    float *s = frand_vec(NS * V, -3, 3), *t = frand_vec(R * V, -3, 3);
    float *hs = frand_vec(R * D, -1, 1), *ht = frand_vec(R * D, -1, 1), dl[NS * V], dh[R * D];
    const struct {
        float ce, mlm, mse, cos;
        int restrict_, no_teacher_logits;
    } cases[] = {{1, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 1, 0}, {0, 1, 0, 0, 0, 0}, {0, 0, 1, 0, 0, 0},
                 {0, 0, 0, 1, 0, 0}, {0, 0, 0.5f, 0, 0, 1}, {5, 2, 0.5f, 1, 1, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dbt_distill_cfg cfg = {2.0f, cases[k].ce, cases[k].mlm, cases[k].mse, cases[k].cos, cases[k].restrict_};
        dbt_train_out so = {.n_seqs = 2, .row_start = row_start, .n_rows = R, .dim = D, .hidden = hs, .logits = s,
                            .logits_rows = NS, .logits_cols = V, .mlm_rows = rows};
        dbt_output to = {0};
        to.n_seqs = 2;
        to.n_rows = R;
        to.dim = D;
        to.hidden = ht;
        to.logits = cases[k].no_teacher_logits ? NULL : t;
        to.logits_cols = V;
        dbt_distill_terms terms;
        assert_int_equal(dbt_distill_loss(&cfg, &so, &to, labels, 0.5f, dl, dh, &terms), 0);
        dl_ctx c = {cfg, R, D, V, NS, rows, labels, to_double(s, NS * V), to_double(t, R * V),
                    to_double(hs, R * D), to_double(ht, R * D), 1.0, cases[k].no_teacher_logits};
        if (cases[k].no_teacher_logits) cfg.alpha_ce = 0;
        assert_true(fabs(terms.loss - dl_ref(&c)) < 1e-5 * (1 + fabs(terms.loss)));
        c.scale = 0.5;
        double num[R * V];
        char what[64];
        numgrad(dl_ref, &c, c.s, NS * V, num);
        snprintf(what, sizeof what, "distill case %zu d_logits", k);
        check_close(what, dl, num, NS * V, OP_TOL, 1e-3);
        numgrad(dl_ref, &c, c.hs, R * D, num);
        snprintf(what, sizeof what, "distill case %zu d_hidden", k);
        check_close(what, dh, num, R * D, OP_TOL, 1e-3);
        free(c.s), free(c.t), free(c.hs), free(c.ht);
    }
    free(s), free(t), free(hs), free(ht);
}

/* ==== 2. the model, through dbt_train_forward / dbt_train_backward ======================= */

/* Parameters on a grid of 2⁻²⁰: p ± h and p ± 2h (h = 2⁻⁶) are then exact in float. */
static float grid(double v) { return (float)(nearbyint(v * 1048576.0) / 1048576.0); }

static float *param(int64_t n, double center, double spread) {
    float *v = malloc((size_t)n * sizeof *v);
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++) v[i] = grid(center + spread * drand());
    return v;
}

typedef struct {
    dbt_model m;
    dbt_params p;
    float *keep[64]; /* the construction-time arrays (params copies them) */
    int n_keep;
    dbt_layer layers[2];
} tiny_model;

static float *tp(tiny_model *t, int64_t n, double center, double spread) {
    return t->keep[t->n_keep++] = param(n, center, spread);
}

static void tiny_linear(tiny_model *t, dbt_linear *l, int n_out, int n_in) {
    l->n_out = n_out;
    l->n_in = n_in;
    l->w = tp(t, (int64_t)n_out * n_in, 0, 0.6);
    l->b = tp(t, n_out, 0, 0.3);
}

static void tiny_ln(tiny_model *t, dbt_layernorm *ln, int n) {
    ln->n = n;
    ln->gamma = tp(t, n, 1, 0.3);
    ln->beta = tp(t, n, 0, 0.3);
}

static tiny_model *tiny_new(dbt_arch arch, dbt_head head, dbt_activation act, int n_labels) {
    tiny_model *t = calloc(1, sizeof *t);
    assert_non_null(t);
    dbt_config *c = &t->m.cfg;
    c->arch = arch;
    c->vocab_size = 23;
    c->dim = 8;
    c->n_layers = 2;
    c->n_heads = 2;
    c->hidden_dim = 12;
    c->max_position_embeddings = 10;
    c->type_vocab_size = arch == DBT_ARCH_BERT ? 2 : 0;
    c->activation = act;
    c->layer_norm_eps = 1e-5f;
    c->dropout = 0.1f;
    c->attention_dropout = 0.2f;
    c->classifier_dropout = 0.25f;
    c->qa_dropout = 0.15f;
    c->head = head;
    c->n_labels = n_labels;
    t->m.info.head = head;
    t->m.info.arch = arch;
    const int V = c->vocab_size, D = c->dim, H = c->hidden_dim;
    dbt_weights *w = &t->m.w;
    w->word_emb = tp(t, (int64_t)V * D, 0, 1);
    w->pos_emb = tp(t, (int64_t)c->max_position_embeddings * D, 0, 1);
    if (arch == DBT_ARCH_BERT) w->type_emb = tp(t, 2 * D, 0, 1);
    tiny_ln(t, &w->ln_emb, D);
    w->layers = t->layers;
    for (int l = 0; l < 2; l++) {
        dbt_layer *L = &t->layers[l];
        tiny_linear(t, &L->q, D, D);
        tiny_linear(t, &L->k, D, D);
        tiny_linear(t, &L->v, D, D);
        tiny_linear(t, &L->o, D, D);
        tiny_ln(t, &L->ln_attn, D);
        tiny_linear(t, &L->ff1, H, D);
        tiny_linear(t, &L->ff2, D, H);
        tiny_ln(t, &L->ln_ffn, D);
    }
    switch (head) {
    case DBT_HEAD_MLM:
        tiny_linear(t, &w->mlm_transform, D, D);
        tiny_ln(t, &w->mlm_ln, D);
        w->mlm_decoder = w->word_emb; /* tied, as every checkpoint we train */
        w->mlm_bias = tp(t, V, 0, 0.3);
        break;
    case DBT_HEAD_SEQ_CLS:
        if (arch == DBT_ARCH_DISTILBERT) tiny_linear(t, &w->pre_classifier, D, D);
        else tiny_linear(t, &w->pooler, D, D);
        tiny_linear(t, &w->classifier, n_labels, D);
        break;
    case DBT_HEAD_TOKEN_CLS: tiny_linear(t, &w->classifier, n_labels, D); break;
    case DBT_HEAD_QA: tiny_linear(t, &w->qa, 2, D); break;
    default: break;
    }
    assert_int_equal(dbt_params_init(&t->p, &t->m), 0);
    return t;
}

static void tiny_free(tiny_model *t) {
    dbt_params_free(&t->p);
    for (int i = 0; i < t->n_keep; i++) free(t->keep[i]);
    free(t);
}

typedef struct {
    tiny_model *t;
    const dbt_encoding *encs;
    int n;
    const uint8_t *sel;
    const float *wl, *wh; /* the loss: Σ wl·logits + Σ wh·hidden */
    int64_t n_logits, n_hidden;
} model_case;

/* The loss of one training-mode forward (dropout drawn from the same seed every time). */
static double model_loss(const model_case *c, dbt_train_cache **cache) {
    dbt_rng r;
    dbt_rng_seed(&r, 7);
    dbt_train_out out;
    assert_int_equal(dbt_train_forward(&c->t->m, c->encs, c->n, c->sel, 1, &r, cache, &out), 0);
    assert_int_equal((int64_t)out.logits_rows * out.logits_cols, c->n_logits);
    double L = 0;
    for (int64_t i = 0; i < c->n_logits; i++) L += (double)c->wl[i] * out.logits[i];
    if (c->wh)
        for (int64_t i = 0; i < c->n_hidden; i++) L += (double)c->wh[i] * out.hidden[i];
    return L;
}

#define MODEL_H (1.0 / 64)
#define MODEL_TOL 2e-3

static void check_model(const char *name, model_case *c) {
    tiny_model *t = c->t;
    dbt_train_cache *cache = NULL;
    /* the analytic gradient */
    dbt_params_zero_grad(&t->p);
    model_loss(c, &cache);
    assert_int_equal(dbt_train_backward(&t->m, &t->p, cache, c->wl, c->wh), 0);
    /* a gradient that is zero in exact arithmetic (the key bias: a softmax ignores a constant
     * added to a row) is pure noise on the numerical side (~1e-4 here), so the floor of the
     * scale is 5% of the case's largest gradient */
    double gmax = 0;
    for (int64_t i = 0; i < t->p.total; i++) gmax = fmax(gmax, fabs(t->p.grad[i]));
    /* the numerical one, element by element, with the cache reused as a training loop does */
    for (int k = 0; k < t->p.n; k++) {
        const dbt_param *x = &t->p.list[k];
        double *num = malloc((size_t)x->numel * sizeof *num);
        assert_non_null(num);
        for (int64_t i = 0; i < x->numel; i++) {
            float *v = t->p.data + x->offset + i;
            const float v0 = *v;
            double f[4];
            const double steps[4] = {-2, -1, 1, 2};
            for (int s = 0; s < 4; s++) {
                *v = (float)(v0 + steps[s] * MODEL_H); /* exact: see grid() */
                f[s] = model_loss(c, &cache);
            }
            *v = v0;
            num[i] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * MODEL_H);
        }
        char what[200];
        snprintf(what, sizeof what, "%s: %s", name, x->name);
        if (getenv("GRADCHECK_VERBOSE")) {
            double e = 0, sc = 0;
            for (int64_t i = 0; i < x->numel; i++) e = fmax(e, fabs(t->p.grad[x->offset + i] - num[i])), sc = fmax(sc, fabs(num[i]));
            printf("%-70s max|g| %.3g  max err %.3g  rel %.3g\n", what, sc, e, e / fmax(sc, 1e-30));
        }
        check_close(what, t->p.grad + x->offset, num, x->numel, MODEL_TOL, 0.05 * gmax);
        free(num);
    }
    dbt_train_cache_free(cache);
}

/* DistilBERT's seq-cls head has a ReLU: a pre-activation within a few h of 0 would put its kink
 * inside the difference quotient's stencil. Each pre_classifier unit's bias is moved (in steps
 * of 1/16) until its pre-activations on the batch's three [CLS] rows are all at least 0.15 from
 * 0 — far beyond what a perturbation of 2h = 1/32 of any one parameter moves them. */
static void relu_margin(const model_case *c) {
    tiny_model *t = c->t;
    const int D = t->m.cfg.dim;
    dbt_train_cache *cache = NULL;
    dbt_rng r;
    dbt_rng_seed(&r, 7);
    dbt_train_out out;
    assert_int_equal(dbt_train_forward(&t->m, c->encs, c->n, NULL, 1, &r, &cache, &out), 0);
    const dbt_linear *pc = &t->m.w.pre_classifier;
    for (int j = 0; j < D; j++) {
        double pre[3];
        for (int s = 0; s < 3; s++) {
            pre[s] = 0;
            for (int k = 0; k < D; k++) pre[s] += (double)pc->w[j * D + k] * out.hidden[(int64_t)s * D + k]; /* SEQ_CLS: the [CLS] rows */
        }
        for (int step = 0; step < 64; step++) { /* 0, +1, −1, +2, −2, ... sixteenths */
            const double delta = (step + 1) / 2 * (step % 2 ? 1.0 : -1.0) / 16.0, b = pc->b[j] + delta;
            int ok = 1;
            for (int s = 0; s < 3; s++) ok &= fabs(pre[s] + b) >= 0.15;
            if (ok) {
                pc->b[j] = grid(b);
                break;
            }
        }
    }
    dbt_train_cache_free(cache);
}

/* Three sequences of different lengths (5, 3, 7 tokens), packed. */
typedef struct {
    int32_t ids[3][8], types[3][8];
    dbt_encoding e[3];
} batch3;

static void batch3_init(batch3 *b, int with_types) {
    static const int lens[3] = {5, 3, 7};
    memset(b, 0, sizeof *b);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < lens[s]; i++) {
            b->ids[s][i] = (int32_t)((s * 7 + i * 5 + 1) % 23);
            b->types[s][i] = with_types && i >= lens[s] / 2;
        }
        b->e[s].n = lens[s];
        b->e[s].ids = b->ids[s];
        b->e[s].type_ids = with_types ? b->types[s] : NULL;
    }
}

static void run_model_case(const char *name, dbt_arch arch, dbt_head head, dbt_activation act, int n_labels,
                           int with_hidden) {
    tiny_model *t = tiny_new(arch, head, act, n_labels);
    batch3 b;
    batch3_init(&b, arch == DBT_ARCH_BERT);
    const int R = 15, D = t->m.cfg.dim;
    uint8_t sel[15];
    for (int r = 0; r < R; r++) sel[r] = r % 3 != 1; /* MLM: logits on 10 of the 15 rows */
    int64_t n_logits = 0;
    switch (head) {
    case DBT_HEAD_MLM: n_logits = 10LL * t->m.cfg.vocab_size; break;
    case DBT_HEAD_SEQ_CLS: n_logits = 3LL * n_labels; break;
    case DBT_HEAD_TOKEN_CLS: n_logits = (int64_t)R * n_labels; break;
    case DBT_HEAD_QA: n_logits = (int64_t)R * 2; break;
    default: break;
    }
    float *wl = frand_vec(n_logits, -1, 1), *wh = with_hidden ? frand_vec((int64_t)R * D, -1, 1) : NULL;
    model_case c = {t, b.e, 3, head == DBT_HEAD_MLM ? sel : NULL, wl, wh, n_logits, (int64_t)R * D};
    if (arch == DBT_ARCH_DISTILBERT && head == DBT_HEAD_SEQ_CLS) relu_margin(&c);
    check_model(name, &c);
    free(wl);
    free(wh);
    tiny_free(t);
}

static void test_model_distilbert_seq_cls(void **state) {
    (void)state; /* pre_classifier → ReLU → dropout → classifier; GELU layers */
    run_model_case("distilbert seq-cls", DBT_ARCH_DISTILBERT, DBT_HEAD_SEQ_CLS, DBT_ACT_GELU, 3, 0);
}

static void test_model_bert_seq_cls(void **state) {
    (void)state; /* token types; pooler (tanh) → dropout → classifier; BERT's attention-output dropout */
    run_model_case("bert seq-cls", DBT_ARCH_BERT, DBT_HEAD_SEQ_CLS, DBT_ACT_GELU_TANH, 2, 0);
}

static void test_model_token_cls(void **state) {
    (void)state;
    run_model_case("bert token-cls", DBT_ARCH_BERT, DBT_HEAD_TOKEN_CLS, DBT_ACT_SILU, 4, 0);
    run_model_case("distilbert token-cls", DBT_ARCH_DISTILBERT, DBT_HEAD_TOKEN_CLS, DBT_ACT_GELU, 3, 0);
}

static void test_model_qa(void **state) {
    (void)state;
    run_model_case("distilbert qa", DBT_ARCH_DISTILBERT, DBT_HEAD_QA, DBT_ACT_GELU, 0, 0);
    run_model_case("bert qa", DBT_ARCH_BERT, DBT_HEAD_QA, DBT_ACT_GELU, 0, 0);
}

static void test_model_mlm(void **state) {
    (void)state; /* transform → act → LayerNorm → tied decoder, on selected rows; plus a hidden-state loss */
    run_model_case("distilbert mlm", DBT_ARCH_DISTILBERT, DBT_HEAD_MLM, DBT_ACT_GELU, 0, 1);
    run_model_case("bert mlm", DBT_ARCH_BERT, DBT_HEAD_MLM, DBT_ACT_GELU, 0, 0);
}

static void test_model_threads_agree(void **state) {
    (void)state; /* the gradients do not depend on the number of threads */
    tiny_model *t = tiny_new(DBT_ARCH_BERT, DBT_HEAD_SEQ_CLS, DBT_ACT_GELU, 2);
    batch3 b;
    batch3_init(&b, 1);
    float *wl = frand_vec(6, -1, 1);
    model_case c = {t, b.e, 3, NULL, wl, NULL, 6, 0};
    float *g1 = malloc((size_t)t->p.total * sizeof *g1);
    for (int th = 1; th <= 2; th++) {
        dbt_set_num_threads(th);
        dbt_train_cache *cache = NULL;
        dbt_params_zero_grad(&t->p);
        model_loss(&c, &cache);
        assert_int_equal(dbt_train_backward(&t->m, &t->p, cache, wl, NULL), 0);
        dbt_train_cache_free(cache);
        if (th == 1) memcpy(g1, t->p.grad, (size_t)t->p.total * sizeof *g1);
        else assert_memory_equal(g1, t->p.grad, (size_t)t->p.total * sizeof *g1);
    }
    dbt_set_num_threads(1);
    free(g1);
    free(wl);
    tiny_free(t);
}

/* Not a gradient, but the step that consumes them: the vectorized, threaded AdamW (and its
 * gradient norm) gives the bits of the scalar loop on every path and thread count. */
static void test_adamw_paths_agree(void **state) {
    (void)state;
    tiny_model *t = tiny_new(DBT_ARCH_BERT, DBT_HEAD_SEQ_CLS, DBT_ACT_GELU, 2);
    const int64_t n = t->p.total;
    float *w0 = malloc((size_t)n * sizeof *w0), *ref = malloc((size_t)n * sizeof *ref);
    memcpy(w0, t->p.data, (size_t)n * sizeof *w0);
    for (int64_t i = 0; i < n; i++) t->p.grad[i] = (float)drand();
    double norm_ref = 0;
    int first = 1;
    for (int k = 0; k < 3; k++)
        for (int th = 1; th <= 2; th++) {
            if (dbt_gemm_use_kernel(KERNELS[k]) < 0) continue;
            dbt_set_num_threads(th);
            memcpy(t->p.data, w0, (size_t)n * sizeof *w0);
            dbt_adamw_cfg cfg = dbt_adamw_defaults();
            cfg.lr = 1e-2f;
            cfg.weight_decay = 0.1f;
            cfg.max_grad_norm = 1.0f;
            dbt_adamw o;
            assert_int_equal(dbt_adamw_init(&o, &t->p, &cfg), 0);
            double norm = 0;
            for (int step = 0; step < 3; step++) norm = dbt_adamw_step(&o, &t->p);
            dbt_adamw_free(&o);
            if (first) {
                memcpy(ref, t->p.data, (size_t)n * sizeof *ref);
                norm_ref = norm;
                first = 0;
            } else {
                assert_memory_equal(ref, t->p.data, (size_t)n * sizeof *ref);
                assert_true(fabs(norm - norm_ref) <= 1e-12 * norm_ref); /* lanes sum in another order */
            }
        }
    dbt_gemm_use_kernel(NULL);
    dbt_set_num_threads(1);
    free(w0);
    free(ref);
    tiny_free(t);
}

int main(void) {
    dbt_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_loss_cross_entropy),
        cmocka_unit_test(test_loss_mse_bce),
        cmocka_unit_test(test_loss_kl_soft),
        cmocka_unit_test(test_loss_qa),
        cmocka_unit_test(test_loss_distill),
        cmocka_unit_test(test_model_distilbert_seq_cls),
        cmocka_unit_test(test_model_bert_seq_cls),
        cmocka_unit_test(test_model_token_cls),
        cmocka_unit_test(test_model_qa),
        cmocka_unit_test(test_model_mlm),
        cmocka_unit_test(test_model_threads_agree),
        cmocka_unit_test(test_adamw_paths_agree),
    };
    return cmocka_run_group_tests_name("gradcheck", tests, NULL, NULL);
}
