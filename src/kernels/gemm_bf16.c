/* gemm_bf16.c — Linear layers with bfloat16 weights and inputs, fp32 accumulation.
 *
 * Layouts (NR = 32 output columns per panel, K padded to an even count with zeros):
 *   packed W  panel q holds columns [32q, 32q+32); within it, K step pair p is 64 bf16:
 *             element (k, j) at data[q·K2·32 + (k/2)·64 + 2j + (k&1)] — what VDPBF16PS reads
 *             as 16 lanes of (k even, k odd) pairs, two vectors per pair of K steps;
 *   packed A  a block of rows of x rounded to bf16, row i at abuf + i·KCS (a constant, so every
 *             broadcast address is a displacement from one pointer), rows up to MR zeroed.
 *
 * The driver is the fp32 one (gemm.c) in small: threads split the rows (or the columns when
 * there are few rows) by whole tiles; per thread, for each block of MC rows and KC steps of K,
 * x is rounded into the packed A buffer, then MR×32 tiles of y are produced panel by panel.
 * The first K block writes acc + bias, later ones add into y, and the activation runs on each
 * finished strip while it is in cache. Block boundaries do not depend on the thread count, so
 * neither do the results.
 *
 * Kernels:
 *   avx512bf16  14×32 tile, 28 accumulators, VDPBF16PS (2 multiply-adds per lane per instruction);
 *   avx512      12×32 tile, widens bf16 to fp32 (a shift or a mask) and issues two FMAs per pair,
 *               odd K step first, as VDPBF16PS does — the product of two bf16 is exact in fp32,
 *               so each FMA rounds once, like each of VDPBF16PS's two additions: same bits;
 *   avx2        2×32 tile, the same on 8-lane vectors (CPUs without AVX-512);
 *   scalar      4×32 tile, the same operations in C. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_dispatch.h"
#include "kernels.h"
#include "threadpool.h"

#define NR 32
#ifndef DBT_BF16_KC
#define DBT_BF16_KC 768
#endif
#define KC DBT_BF16_KC /* K steps per block: a 14-row A micro-panel is 21 KiB (L1); base K = 768 in one */
#define KCS (KC + 32) /* packed A row stride: rows do not all fall into the same L1 sets */
#define MC 1024       /* rows of A packed at once */
#define NC 384        /* columns per B block: KC × NC bf16 = 576 KiB stays in L2 */

struct dbt_bf16_weights {
    int N, K, K2;   /* K2: K rounded up to even */
    uint16_t *data; /* ceil(N/32) panels of K2 × 32 */
};

/* ---- rounding ------------------------------------------------------------------------------ */

uint16_t dbt_fp32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN: keep it quiet */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static inline float bf16_to_fp32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- kernels ------------------------------------------------------------------------------- */

/* One MR×32 tile over kc2 pairs of K steps: a row i at a + i·KCS, b one panel (64 bf16 per
 * pair). Writes rows < mv, columns < nv of c: c = acc + bias (bias may be NULL), or c += acc. */
typedef void (*bf16_kern_fn)(int kc2, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int mv, int nv,
                             int accumulate, const float *bias);

typedef struct {
    const char *name;
    int mr;
    bf16_kern_fn kern;
    void (*round_row)(const float *x, int n, uint16_t *dst); /* dst[k] = bf16(x[k]) */
} bf16_kernel;

static void round_row_scalar(const float *x, int n, uint16_t *dst) {
    for (int k = 0; k < n; k++) dst[k] = dbt_fp32_to_bf16(x[k]);
}

#define SMR 4
static void kern_scalar(int kc2, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int mv, int nv,
                        int accumulate, const float *bias) {
    float acc[SMR][NR] = {{0}};
    for (int p = 0; p < kc2; p++, b += 2 * NR) {
        for (int i = 0; i < SMR; i++) {
            const float a0 = bf16_to_fp32(a[i * KCS + 2 * p]), a1 = bf16_to_fp32(a[i * KCS + 2 * p + 1]);
            for (int j = 0; j < NR; j++) {
                acc[i][j] += a1 * bf16_to_fp32(b[2 * j + 1]); /* exact products: one rounding each */
                acc[i][j] += a0 * bf16_to_fp32(b[2 * j]);
            }
        }
    }
    for (int i = 0; i < mv; i++)
        for (int j = 0; j < nv; j++) {
            float *cj = c + (int64_t)i * ldc + j;
            *cj = accumulate ? *cj + acc[i][j] : acc[i][j] + (bias ? bias[j] : 0.0f);
        }
}

static const bf16_kernel kernel_scalar = {"scalar", SMR, kern_scalar, round_row_scalar};

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET_F __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define TARGET_BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16")))

static inline int32_t ld32(const uint16_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Round to nearest even in integer arithmetic (the same formula as dbt_fp32_to_bf16, 16 lanes). */
TARGET_F static void round_row_avx512(const float *x, int n, uint16_t *dst) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF);
    const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
    const __m512i quiet = _mm512_set1_epi32(0x40);
    for (int k = 0; k < n; k += 16) {
        const __mmask16 m = n - k >= 16 ? 0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + k));
        __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
        r = _mm512_srli_epi32(r, 16);
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absmask), inf);
        r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), quiet);
        _mm256_mask_storeu_epi16(dst + k, m, _mm512_cvtepi32_epi16(r));
    }
}

static inline __mmask16 col_mask(int nv, int half) {
    const int w = nv - 16 * half;
    return w >= 16 ? 0xFFFF : w <= 0 ? 0 : (__mmask16)((1u << w) - 1);
}

#define FOR14(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define FOR12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

#define STORE(i)                                                                                           \
    if ((i) < mv) {                                                                                        \
        float *cr = c + (int64_t)(i) * ldc;                                                                \
        __m512 r0 = c##i##_0, r1 = c##i##_1;                                                               \
        if (accumulate) {                                                                                  \
            r0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), r0);                                         \
            r1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), r1);                                    \
        } else {                                                                                           \
            r0 = _mm512_add_ps(r0, bias0), r1 = _mm512_add_ps(r1, bias1);                                  \
        }                                                                                                  \
        _mm512_mask_storeu_ps(cr, m0, r0);                                                                 \
        _mm512_mask_storeu_ps(cr + 16, m1, r1);                                                            \
    }

#define EPILOGUE(FOR)                                                                                      \
    const __mmask16 m0 = col_mask(nv, 0), m1 = col_mask(nv, 1);                                            \
    __m512 bias0 = _mm512_setzero_ps(), bias1 = bias0;                                                     \
    if (bias && !accumulate) bias0 = _mm512_maskz_loadu_ps(m0, bias), bias1 = _mm512_maskz_loadu_ps(m1, bias + 16); \
    FOR(STORE)

/* ROWS (a constant at each call below) rows of the tile are computed: a tile of the last few
 * rows of a small batch (M = 16: 14 + 2) does not pay for 14. */
TARGET_BF static inline __attribute__((always_inline)) void
kern_avx512bf16_rows(const int ROWS, int kc2, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int mv,
                     int nv, int accumulate, const float *bias) {
#define DECL(i) __m512 c##i##_0 = _mm512_setzero_ps(), c##i##_1 = _mm512_setzero_ps();
    FOR14(DECL)
#undef DECL
    for (int i = 0; i < mv; i++) _mm_prefetch((const char *)(c + (int64_t)i * ldc), _MM_HINT_T0);
    for (int p = 0; p < kc2; p++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 32);
        __m512bh ai;
#define STEP(i)                                                                                            \
    if ((i) < ROWS) {                                                                                      \
        ai = (__m512bh)_mm512_set1_epi32(ld32(a + (i) * KCS));                                             \
        c##i##_0 = _mm512_dpbf16_ps(c##i##_0, ai, b0);                                                     \
        c##i##_1 = _mm512_dpbf16_ps(c##i##_1, ai, b1);                                                     \
    }
        FOR14(STEP)
#undef STEP
        a += 2;
        b += 2 * NR;
    }
    EPILOGUE(FOR14)
}

TARGET_BF static void kern_avx512bf16(int kc2, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int mv,
                                      int nv, int accumulate, const float *bias) {
    if (mv <= 4) kern_avx512bf16_rows(4, kc2, a, b, c, ldc, mv, nv, accumulate, bias);
    else if (mv <= 8) kern_avx512bf16_rows(8, kc2, a, b, c, ldc, mv, nv, accumulate, bias);
    else kern_avx512bf16_rows(14, kc2, a, b, c, ldc, mv, nv, accumulate, bias);
}

TARGET_F static void kern_avx512(int kc2, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int mv,
                                 int nv, int accumulate, const float *bias) {
    const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
#define DECL(i) __m512 c##i##_0 = _mm512_setzero_ps(), c##i##_1 = _mm512_setzero_ps();
    FOR12(DECL)
#undef DECL
    for (int p = 0; p < kc2; p++) {
        const __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 32);
        const __m512 b0e = _mm512_castsi512_ps(_mm512_slli_epi32(b0, 16)), b0o = _mm512_castsi512_ps(_mm512_and_si512(b0, hi));
        const __m512 b1e = _mm512_castsi512_ps(_mm512_slli_epi32(b1, 16)), b1o = _mm512_castsi512_ps(_mm512_and_si512(b1, hi));
        __m512i ai;
        __m512 ae, ao;
#define STEP(i)                                                                                            \
    ai = _mm512_set1_epi32(ld32(a + (i) * KCS));                                                           \
    ae = _mm512_castsi512_ps(_mm512_slli_epi32(ai, 16));                                                   \
    ao = _mm512_castsi512_ps(_mm512_and_si512(ai, hi));                                                    \
    c##i##_0 = _mm512_fmadd_ps(ae, b0e, _mm512_fmadd_ps(ao, b0o, c##i##_0));                               \
    c##i##_1 = _mm512_fmadd_ps(ae, b1e, _mm512_fmadd_ps(ao, b1o, c##i##_1));
        FOR12(STEP)
#undef STEP
        a += 2;
        b += 2 * NR;
    }
    EPILOGUE(FOR12)
}

static const bf16_kernel kernel_avx512bf16 = {"avx512bf16", 14, kern_avx512bf16, round_row_avx512};
static const bf16_kernel kernel_avx512 = {"avx512", 12, kern_avx512, round_row_avx512};

/* AVX2: 2×32 tile (8 accumulators; 16 registers leave room for no more), the same widening and
 * FMA order as kern_avx512. A fallback for CPUs without AVX-512: slower than our fp32 there. */
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
TARGET_AVX2 static void kern_avx2(int kc2, const uint16_t *a, const uint16_t *b, float *c, int64_t ldc, int mv,
                                  int nv, int accumulate, const float *bias) {
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u);
    /* the loops over q are unrolled so that the accumulators live in registers */
    __m256 acc[2][4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) acc[0][q] = acc[1][q] = _mm256_setzero_ps();
    for (int p = 0; p < kc2; p++, b += 2 * NR) {
        const __m256i a0 = _mm256_set1_epi32(ld32(a + 2 * p)), a1 = _mm256_set1_epi32(ld32(a + KCS + 2 * p));
        const __m256 a0e = _mm256_castsi256_ps(_mm256_slli_epi32(a0, 16)), a0o = _mm256_castsi256_ps(_mm256_and_si256(a0, hi));
        const __m256 a1e = _mm256_castsi256_ps(_mm256_slli_epi32(a1, 16)), a1o = _mm256_castsi256_ps(_mm256_and_si256(a1, hi));
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            const __m256i bq = _mm256_loadu_si256((const __m256i *)(const void *)(b + 16 * q));
            const __m256 be = _mm256_castsi256_ps(_mm256_slli_epi32(bq, 16)), bo = _mm256_castsi256_ps(_mm256_and_si256(bq, hi));
            acc[0][q] = _mm256_fmadd_ps(a0e, be, _mm256_fmadd_ps(a0o, bo, acc[0][q]));
            acc[1][q] = _mm256_fmadd_ps(a1e, be, _mm256_fmadd_ps(a1o, bo, acc[1][q]));
        }
    }
    float out[2][NR];
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) _mm256_storeu_ps(&out[i][8 * q], acc[i][q]);
    for (int i = 0; i < mv; i++)
        for (int j = 0; j < nv; j++) {
            float *cj = c + (int64_t)i * ldc + j;
            *cj = accumulate ? *cj + out[i][j] : out[i][j] + (bias ? bias[j] : 0.0f);
        }
}

static const bf16_kernel kernel_avx2 = {"avx2", 2, kern_avx2, round_row_scalar};

#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* ---- kernel selection ---------------------------------------------------------------------- */

static _Atomic(const bf16_kernel *) g_kernel;

static int kernel_options(dbt_kernel_option o[4]) {
    int n = 0;
#if HAVE_X86
    o[n++] = (dbt_kernel_option){"avx512bf16", &kernel_avx512bf16, DBT_CPU_AVX512 | DBT_CPU_AVX512_BF16};
    o[n++] = (dbt_kernel_option){"avx512", &kernel_avx512, DBT_CPU_AVX512};
    o[n++] = (dbt_kernel_option){"avx2", &kernel_avx2, DBT_CPU_AVX2 | DBT_CPU_FMA};
#endif
    o[n++] = (dbt_kernel_option){"scalar", &kernel_scalar, 0};
    return n;
}

static const bf16_kernel *kernel(void) {
    const bf16_kernel *k = g_kernel;
    if (!k) {
        dbt_kernel_option o[4];
        g_kernel = k = dbt_kernel_from_env(o, kernel_options(o), "DBT_KERNEL_BF16");
    }
    return k;
}

const char *dbt_gemm_bf16_kernel_name(void) { return kernel()->name; }

int dbt_gemm_bf16_use_kernel(const char *name) {
    dbt_kernel_option o[4];
    const bf16_kernel *k = dbt_kernel_find(o, kernel_options(o), name);
    if (!k) return -1;
    g_kernel = k;
    return 0;
}

/* ---- packing the weights ------------------------------------------------------------------- */

dbt_bf16_weights *dbt_bf16_pack(const float *W, const uint16_t *Wbf16, int N, int K) {
    if (N <= 0 || K <= 0 || (!W && !Wbf16)) return NULL;
    dbt_bf16_weights *p = malloc(sizeof *p);
    if (!p) return NULL;
    p->N = N;
    p->K = K;
    p->K2 = (K + 1) & ~1;
    const int64_t panels = (N + NR - 1) / NR;
    const size_t bytes = ((size_t)panels * p->K2 * NR * sizeof(uint16_t) + 63) & ~(size_t)63;
    if (!(p->data = aligned_alloc(64, bytes))) { free(p); return NULL; }
    memset(p->data, 0, bytes);
    /* Written in order, read from 32 rows at once (each row's cache line serves several steps). */
    uint16_t *d = p->data;
    for (int j0 = 0; j0 < N; j0 += NR, d += (int64_t)p->K2 * NR) {
        const int w = N - j0 < NR ? N - j0 : NR;
        for (int k = 0; k < K; k++) {
            uint16_t *dk = d + (int64_t)(k / 2) * 2 * NR + (k & 1);
            for (int j = 0; j < w; j++) {
                const int64_t src = (int64_t)(j0 + j) * K + k;
                dk[2 * j] = W ? dbt_fp32_to_bf16(W[src]) : Wbf16[src];
            }
        }
    }
    return p;
}

void dbt_bf16_free(dbt_bf16_weights *w) {
    if (!w) return;
    free(w->data);
    free(w);
}

/* ---- the driver ---------------------------------------------------------------------------- */

static _Thread_local struct { uint16_t *p; size_t cap; } tl_a;

static uint16_t *abuf_get(size_t n) {
    if (n > tl_a.cap) {
        free(tl_a.p);
        tl_a.p = aligned_alloc(64, (n * sizeof(uint16_t) + 63) & ~(size_t)63);
        if (!tl_a.p) { /* a megabyte at most; the GEMM API has no error path */
            fprintf(stderr, "distilbert: out of memory for bf16 GEMM buffers\n");
            abort();
        }
        tl_a.cap = n;
    }
    return tl_a.p;
}

typedef struct {
    const bf16_kernel *kr;
    int M, N, K, act, split_m;
    const float *x, *bias;
    const dbt_bf16_weights *W;
    float *y;
} job;

static void block(const job *j, int m0, int m1, int n0, int n1) {
    const bf16_kernel *kr = j->kr;
    const int mr = kr->mr, K = j->K, N = j->N, mcmax = MC / mr * mr;
    const int rows = m1 - m0 < mcmax ? m1 - m0 : mcmax;
    uint16_t *abuf = abuf_get((size_t)((rows + mr - 1) / mr * mr) * KCS);
    for (int ic = m0; ic < m1; ic += mcmax) {
        const int mc = m1 - ic < mcmax ? m1 - ic : mcmax, mcr = (mc + mr - 1) / mr * mr;
        for (int pc = 0; pc < K; pc += KC) {
            const int kc = K - pc < KC ? K - pc : KC, kc2 = (kc + 1) / 2, last = pc + kc >= K;
            for (int i = 0; i < mc; i++) {
                uint16_t *d = abuf + (int64_t)i * KCS;
                kr->round_row(j->x + (int64_t)(ic + i) * K + pc, kc, d);
                if (kc & 1) d[kc] = 0;
            }
            for (int i = mc; i < mcr; i++) memset(abuf + (int64_t)i * KCS, 0, (size_t)kc2 * 2 * sizeof *abuf);
            for (int jc = n0; jc < n1; jc += NC) {
                const int nc = n1 - jc < NC ? n1 - jc : NC;
                for (int ir = 0; ir < mc; ir += mr) {
                    const int mv = mc - ir < mr ? mc - ir : mr;
                    float *crow = j->y + (int64_t)(ic + ir) * N;
                    for (int jr = 0; jr < nc; jr += NR) {
                        const int col = jc + jr;
                        const uint16_t *bp = j->W->data + (int64_t)(col / NR) * j->W->K2 * NR + (int64_t)pc * NR;
                        kr->kern(kc2, abuf + (int64_t)ir * KCS, bp, crow + col, N, mv, nc - jr < NR ? nc - jr : NR,
                                 pc > 0, j->bias ? j->bias + col : NULL);
                    }
                    if (last && j->act != DBT_GEMM_NO_ACT)
                        for (int i = 0; i < mv; i++)
                            dbt_activation_forward((dbt_activation)j->act, crow + (int64_t)i * N + jc, nc);
                }
            }
        }
    }
}

static void part(void *arg, int t, int n) {
    const job *j = arg;
    const int tile = j->split_m ? j->kr->mr : NR, len = j->split_m ? j->M : j->N;
    const int64_t tiles = (len + tile - 1) / tile;
    int lo = (int)(tiles * t / n * tile), hi = (int)(tiles * (t + 1) / n * tile);
    if (hi > len) hi = len;
    if (lo >= hi) return;
    if (j->split_m) block(j, lo, hi, 0, j->N);
    else block(j, 0, j->M, lo, hi);
}

void dbt_linear_bf16(const float *x, int M, int K, const dbt_bf16_weights *W, const float *b, int N, int act,
                     float *y) {
    if (M <= 0 || N <= 0) return;
    if (!W || W->N != N || W->K != K) {
        fprintf(stderr, "distilbert: dbt_linear_bf16: packed weights are %d×%d, the call is %d×%d\n", W ? W->N : 0,
                W ? W->K : 0, N, K);
        abort();
    }
    job j = {.kr = kernel(), .M = M, .N = N, .K = K, .act = act, .x = x, .bias = b, .W = W, .y = y};
    const int64_t tiles_m = (M + j.kr->mr - 1) / j.kr->mr, tiles_n = (N + NR - 1) / NR;
    int nt = dbt_pool_threads();
    if ((double)M * N * K < 4e6) nt = 1; /* waking a worker costs more than it gains */
    j.split_m = tiles_m >= 4 * nt || tiles_m >= tiles_n;
    const int64_t tiles = j.split_m ? tiles_m : tiles_n;
    if (nt > tiles) nt = (int)tiles;
    if (nt <= 1) part(&j, 0, 1);
    else dbt_pool_run(part, &j, nt);
}
