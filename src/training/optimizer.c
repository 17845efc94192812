/* optimizer.c — the update, per element, in the order torch.optim.AdamW (foreach=False) does it:
 *   p ← p − lr·wd·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *   p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)                                         */
#include "optimizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../kernels/gemm_internal.h"
#include "../kernels/threadpool.h"

dbt_adamw_cfg dbt_adamw_defaults(void) {
    dbt_adamw_cfg c = {5e-5f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f, 0, 0};
    return c;
}

int dbt_adamw_init(dbt_adamw *o, const dbt_params *p, const dbt_adamw_cfg *cfg) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->m = calloc((size_t)p->total, sizeof *o->m);
    o->v = calloc((size_t)p->total, sizeof *o->v);
    if (!o->m || !o->v) { dbt_adamw_free(o); return dbt_set_error("out of memory"); }
    return 0;
}

void dbt_adamw_free(dbt_adamw *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

float dbt_lr_at(const dbt_adamw_cfg *c, int64_t step) {
    double f;
    if (step < c->warmup_steps) f = (double)step / (double)(c->warmup_steps > 0 ? c->warmup_steps : 1);
    else if (c->total_steps <= 0) f = 1.0;
    else f = fmax(0.0, (double)(c->total_steps - step) / (double)fmax(1.0, (double)(c->total_steps - c->warmup_steps)));
    return (float)(c->lr * f);
}

/* ---- the passes over the parameter buffer ------------------------------------------------ *
 * Both passes (the gradient norm, then the update) walk the buffer in chunks of at most CHUNK
 * elements within one tensor, dealt round-robin to the pool's threads. An element's update does
 * not depend on which thread runs it, and the norm is the sum of the per-chunk sums taken in
 * chunk order, so results are the same for any thread count. The update is vectorized without
 * FMA contraction: every instruction set gives the bits of the scalar loop. */
#define CHUNK (1 << 16)

typedef struct {
    int64_t off, n;
    int decay;
} chunk;

/* The chunks of p (malloc'd), *n their number; NULL when out of memory. */
static chunk *make_chunks(const dbt_params *p, int64_t *n) {
    int64_t k = 0;
    for (int i = 0; i < p->n; i++) k += (p->list[i].numel + CHUNK - 1) / CHUNK;
    chunk *c = malloc((size_t)(k > 0 ? k : 1) * sizeof *c);
    if (!c) return NULL;
    k = 0;
    for (int i = 0; i < p->n; i++)
        for (int64_t o = 0; o < p->list[i].numel; o += CHUNK)
            c[k++] = (chunk){p->list[i].offset + o, p->list[i].numel - o < CHUNK ? p->list[i].numel - o : CHUNK,
                             p->list[i].decay};
    *n = k;
    return c;
}

typedef struct {
    float b1, b2, one_m_b1, one_m_b2, eps, bc2_sqrt, step_size, clip, decay;
} adam_coef;

static double sumsq_scalar(const float *g, int64_t n) {
    double t = 0;
    for (int64_t k = 0; k < n; k++) t += (double)g[k] * g[k];
    return t;
}

/* One element, in the order torch.optim.AdamW (foreach=False) computes it. */
static void adam_scalar(const adam_coef *a, float *w, const float *g, float *m, float *v, int64_t n, float decay) {
    for (int64_t k = 0; k < n; k++) {
        float gk = g[k] * a->clip;
        if (decay != 0.0f) w[k] -= decay * w[k];
        m[k] = a->b1 * m[k] + a->one_m_b1 * gk;
        v[k] = a->b2 * v[k] + a->one_m_b2 * gk * gk;
        float denom = sqrtf(v[k]) / a->bc2_sqrt + a->eps;
        w[k] -= a->step_size * m[k] / denom;
    }
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#define T512 __attribute__((target("avx512f,avx512dq")))
#define T256 __attribute__((target("avx2")))

T512 static double sumsq_avx512(const float *g, int64_t n) {
    __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    int64_t k = 0;
    for (; k + 32 <= n; k += 32)
        for (int j = 0; j < 4; j++) {
            const __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(g + k + 8 * j));
            acc[j] = _mm512_add_pd(acc[j], _mm512_mul_pd(x, x)); /* a float's square is exact in double */
        }
    double t = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc[0], acc[1]), _mm512_add_pd(acc[2], acc[3])));
    return t + sumsq_scalar(g + k, n - k);
}

T512 static void adam_avx512(const adam_coef *a, float *w, const float *g, float *m, float *v, int64_t n,
                             float decay) {
    const __m512 clip = _mm512_set1_ps(a->clip), b1 = _mm512_set1_ps(a->b1), b2 = _mm512_set1_ps(a->b2);
    const __m512 c1 = _mm512_set1_ps(a->one_m_b1), c2 = _mm512_set1_ps(a->one_m_b2), eps = _mm512_set1_ps(a->eps);
    const __m512 bc2 = _mm512_set1_ps(a->bc2_sqrt), ss = _mm512_set1_ps(a->step_size), dec = _mm512_set1_ps(decay);
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m512 gk = _mm512_mul_ps(_mm512_loadu_ps(g + k), clip);
        __m512 wk = _mm512_loadu_ps(w + k);
        if (decay != 0.0f) wk = _mm512_sub_ps(wk, _mm512_mul_ps(dec, wk));
        const __m512 mk = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(m + k)), _mm512_mul_ps(c1, gk));
        const __m512 vk = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(v + k)), _mm512_mul_ps(_mm512_mul_ps(c2, gk), gk));
        const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vk), bc2), eps);
        wk = _mm512_sub_ps(wk, _mm512_div_ps(_mm512_mul_ps(ss, mk), denom));
        _mm512_storeu_ps(m + k, mk);
        _mm512_storeu_ps(v + k, vk);
        _mm512_storeu_ps(w + k, wk);
    }
    adam_scalar(a, w + k, g + k, m + k, v + k, n - k, decay);
}

T256 static double sumsq_avx2(const float *g, int64_t n) {
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int j = 0; j < 4; j++) {
            const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(g + k + 4 * j));
            acc[j] = _mm256_add_pd(acc[j], _mm256_mul_pd(x, x));
        }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3])));
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + sumsq_scalar(g + k, n - k);
}

T256 static void adam_avx2(const adam_coef *a, float *w, const float *g, float *m, float *v, int64_t n, float decay) {
    const __m256 clip = _mm256_set1_ps(a->clip), b1 = _mm256_set1_ps(a->b1), b2 = _mm256_set1_ps(a->b2);
    const __m256 c1 = _mm256_set1_ps(a->one_m_b1), c2 = _mm256_set1_ps(a->one_m_b2), eps = _mm256_set1_ps(a->eps);
    const __m256 bc2 = _mm256_set1_ps(a->bc2_sqrt), ss = _mm256_set1_ps(a->step_size), dec = _mm256_set1_ps(decay);
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        const __m256 gk = _mm256_mul_ps(_mm256_loadu_ps(g + k), clip);
        __m256 wk = _mm256_loadu_ps(w + k);
        if (decay != 0.0f) wk = _mm256_sub_ps(wk, _mm256_mul_ps(dec, wk));
        const __m256 mk = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + k)), _mm256_mul_ps(c1, gk));
        const __m256 vk = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + k)), _mm256_mul_ps(_mm256_mul_ps(c2, gk), gk));
        const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vk), bc2), eps);
        wk = _mm256_sub_ps(wk, _mm256_div_ps(_mm256_mul_ps(ss, mk), denom));
        _mm256_storeu_ps(m + k, mk);
        _mm256_storeu_ps(v + k, vk);
        _mm256_storeu_ps(w + k, wk);
    }
    adam_scalar(a, w + k, g + k, m + k, v + k, n - k, decay);
}
#endif

static double sumsq(const float *g, int64_t n) {
#ifdef HAVE_X86
    const int isa = dbt_gemm_isa();
    if (isa >= 2) return sumsq_avx512(g, n);
    if (isa == 1) return sumsq_avx2(g, n);
#endif
    return sumsq_scalar(g, n);
}

static void adam(const adam_coef *a, float *w, const float *g, float *m, float *v, int64_t n, float decay) {
#ifdef HAVE_X86
    const int isa = dbt_gemm_isa();
    if (isa >= 2) { adam_avx512(a, w, g, m, v, n, decay); return; }
    if (isa == 1) { adam_avx2(a, w, g, m, v, n, decay); return; }
#endif
    adam_scalar(a, w, g, m, v, n, decay);
}

typedef struct {
    const dbt_params *p;
    const chunk *c;
    int64_t n;
    double *part;           /* norm pass: per-chunk Σ g² */
    dbt_adamw *o;           /* update pass */
    const adam_coef *a;
    float lr_wd;
} pass_job;

static void norm_part(void *arg, int t, int nt) {
    const pass_job *j = arg;
    for (int64_t i = t; i < j->n; i += nt) j->part[i] = sumsq(j->p->grad + j->c[i].off, j->c[i].n);
}

static void adam_part(void *arg, int t, int nt) {
    const pass_job *j = arg;
    for (int64_t i = t; i < j->n; i += nt) {
        const int64_t o = j->c[i].off;
        adam(j->a, j->p->data + o, j->p->grad + o, j->o->m + o, j->o->v + o, j->c[i].n, j->c[i].decay ? j->lr_wd : 0.0f);
    }
}

/* Σ g² over chunks c (part: scratch of n doubles), NAN when part is NULL. */
static double grad_sumsq(const dbt_params *p, const chunk *c, int64_t n, double *part) {
    if (!part) return NAN;
    pass_job j = {p, c, n, part, NULL, NULL, 0};
    dbt_pool_run(norm_part, &j, dbt_pool_threads());
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += part[i];
    return s;
}

double dbt_grad_norm(const dbt_params *p) {
    int64_t n = 0;
    chunk *c = make_chunks(p, &n);
    double *part = c ? malloc((size_t)(n > 0 ? n : 1) * sizeof *part) : NULL;
    const double s = grad_sumsq(p, c, n, part);
    free(part);
    free(c);
    return sqrt(s);
}

double dbt_adamw_step(dbt_adamw *o, dbt_params *p) {
    const dbt_adamw_cfg *c = &o->cfg;
    int64_t nc = 0;
    chunk *ch = make_chunks(p, &nc);
    double *part = ch ? malloc((size_t)(nc > 0 ? nc : 1) * sizeof *part) : NULL;
    if (!part) { /* out of memory (a few KB): nothing sensible to do but not update */
        free(ch);
        return NAN;
    }
    /* per tensor, then summed, in torch; here per chunk: the same sum to double rounding */
    const double norm = sqrt(grad_sumsq(p, ch, nc, part));
    float clip = 1.0f;
    if (c->max_grad_norm > 0) {
        double coef = c->max_grad_norm / (norm + 1e-6);
        if (coef < 1.0) clip = (float)coef;
    }
    const float lr = dbt_lr_at(c, o->step);
    o->step++;
    const double t = (double)o->step;
    const adam_coef a = {c->beta1, c->beta2, 1.0f - c->beta1, 1.0f - c->beta2, c->eps,
                         (float)sqrt(1.0 - pow(c->beta2, t)), lr / (float)(1.0 - pow(c->beta1, t)), clip, 0};
    pass_job j = {p, ch, nc, NULL, o, &a, lr * c->weight_decay};
    dbt_pool_run(adam_part, &j, dbt_pool_threads());
    free(part);
    free(ch);
    return norm;
}
