/* layernorm.c — the inference LayerNorm with its residual add, y = LN(x + residual): vectorized
 * on the instruction set of the GEMM kernel in use (as vmath.c) and split by rows across the
 * thread pool. The encoder runs it twice per layer on R×D; at batch 32 × 128 on base size that
 * is 3 M elements per call, a few per cent of a forward when scalar and serial.
 *
 * A row is read three times (add and sum, centred sum of squares, normalize), all from L1: the
 * row is 3 kB at D = 768. The statistics are accumulated in double on every path, as the scalar
 * reference does, so the mean and variance carry no error that grows with the row length;
 * each path computes every row the same way wherever it sits in the batch and whichever thread
 * runs it, so results depend on neither the batch composition nor the thread count.
 *
 * The training variant (dbt_layernorm_forward_train, which also keeps x̂ and 1/σ) stays in ops.c. */
#include <math.h>
#include <string.h>

#include "gemm_internal.h"
#include "kernels.h"
#include "threadpool.h"

static void ln_row_scalar(const float *x, const float *r, int n, const float *gamma, const float *beta, float eps,
                          float *y) {
    double sum = 0;
    for (int i = 0; i < n; i++) {
        float v = r ? x[i] + r[i] : x[i];
        y[i] = v;
        sum += v;
    }
    const float mean = (float)(sum / n);
    double var = 0;
    for (int i = 0; i < n; i++) {
        float d = y[i] - mean;
        var += (double)d * d;
    }
    const float rstd = (float)(1.0 / sqrt(var / n + eps));
    for (int i = 0; i < n; i++) y[i] = (y[i] - mean) * rstd * gamma[i] + beta[i];
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1

#define T512 __attribute__((target("avx512f,avx512dq,fma")))

/* Masked loads and stores take the tail: a masked-off lane is 0 and adds nothing to the sums. */
T512 static void ln_row_avx512(const float *x, const float *r, int n, const float *gamma, const float *beta,
                               float eps, float *y) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (r) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, r + i));
        _mm512_mask_storeu_ps(y + i, m, v);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    const float mean = (float)(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / n);
    const __m512 vmean = _mm512_set1_ps(mean);
    s0 = s1 = _mm512_setzero_pd();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, y + i), vmean);
        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(d));
        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(d), 1)));
        s0 = _mm512_fmadd_pd(lo, lo, s0);
        s1 = _mm512_fmadd_pd(hi, hi, s1);
    }
    const double var = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    const __m512 rstd = _mm512_set1_ps((float)(1.0 / sqrt(var / n + eps)));
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 h = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, y + i), vmean), rstd);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(h, _mm512_maskz_loadu_ps(m, gamma + i), _mm512_maskz_loadu_ps(m, beta + i)));
    }
}

#define T256 __attribute__((target("avx2,fma")))

/* AVX2 has no masked float arithmetic worth the trouble: whole vectors, then a scalar tail that
 * does the same operations. */
T256 static void ln_row_avx2(const float *x, const float *r, int n, const float *gamma, const float *beta,
                             float eps, float *y) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (r) v = _mm256_add_ps(v, _mm256_loadu_ps(r + i));
        _mm256_storeu_ps(y + i, v);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double lanes[4], sum = 0;
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) {
        float v = r ? x[i] + r[i] : x[i];
        y[i] = v;
        sum += v;
    }
    const float mean = (float)(sum / n);
    const __m256 vmean = _mm256_set1_ps(mean);
    s0 = s1 = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(y + i), vmean);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(d)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    double var = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) {
        float d = y[i] - mean;
        var += (double)d * d;
    }
    const float rs = (float)(1.0 / sqrt(var / n + eps));
    const __m256 rstd = _mm256_set1_ps(rs);
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(y + i), vmean), rstd);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(h, _mm256_loadu_ps(gamma + i), _mm256_loadu_ps(beta + i)));
    }
    for (; i < n; i++) y[i] = fmaf((y[i] - mean) * rs, gamma[i], beta[i]);
}
#endif

typedef void (*ln_row_fn)(const float *x, const float *r, int n, const float *gamma, const float *beta, float eps,
                          float *y);

static ln_row_fn ln_row(void) {
#ifdef HAVE_X86
    const int isa = dbt_gemm_isa();
    if (isa >= 2) return ln_row_avx512;
    if (isa == 1) return ln_row_avx2;
#endif
    return ln_row_scalar;
}

typedef struct {
    ln_row_fn row;
    const float *x, *residual, *gamma, *beta;
    float *y;
    int rows, n;
    float eps;
} ln_job;

static void ln_part(void *arg, int t, int nt) {
    const ln_job *j = arg;
    const int r0 = (int)((int64_t)j->rows * t / nt), r1 = (int)((int64_t)j->rows * (t + 1) / nt);
    for (int r = r0; r < r1; r++) {
        const int64_t o = (int64_t)r * j->n;
        j->row(j->x + o, j->residual ? j->residual + o : NULL, j->n, j->gamma, j->beta, j->eps, j->y + o);
    }
}

/* Below this many elements a LayerNorm runs on one thread: about 10 µs of work, the cost of
 * waking a sleeping worker. */
#define MIN_PARALLEL_ELEMS (64 * 1024)

void dbt_layernorm_forward(const float *x, const float *residual, int rows, int n, const float *gamma,
                           const float *beta, float eps, float *y) {
    if (rows <= 0 || n <= 0) return;
    ln_job j = {ln_row(), x, residual, gamma, beta, y, rows, n, eps};
    int nt = (int64_t)rows * n < MIN_PARALLEL_ELEMS ? 1 : dbt_pool_threads();
    if (nt > rows) nt = rows;
    dbt_pool_run(ln_part, &j, nt);
}
