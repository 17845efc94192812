/* gemm_int8.c — Linear layers with int8 weights and dynamically quantized uint8 inputs, int32
 * accumulation (the scheme is described in kernels.h).
 *
 * Layouts (NR = 32 output columns per panel, K padded to a multiple of 4 with zeros):
 *   packed W  panel q holds columns [32q, 32q+32); within it, each group of 4 K steps is 128
 *             bytes: element (k, j) at data[q·K4·32 + (k/4)·128 + 4j + (k&3)] — what VPDPBUSD
 *             reads as 16 lanes of 4 consecutive K steps, two vectors per group;
 *   xq        the quantized rows of x (M × K4, shared by the threads), with sx and zx per row;
 *   packed A  a block of rows of xq, row i at abuf + i·KCS (a constant stride), rows up to MR
 *             zeroed. Zero padding of both A and W adds nothing to the sums.
 *
 * Per call: one pass over the thread pool quantizes x row by row (vectorized min/max and
 * rounding), a second computes the product as the bf16 and fp32 drivers do (threads split rows,
 * or columns when there are few rows; blocks of MC rows × KC steps; MR×32 tiles). When K spans
 * several KC blocks the exact int32 partial sums are kept in y's own memory between blocks (as
 * int32 bit patterns), and only the last block converts them: y = (acc − zx·colsum)·(sx·sw) + b,
 * then the activation on the finished strip. The sums are exact and every float operation of
 * the epilogue is the same in every kernel, so all kernels and thread counts give the same bits.
 *
 * Kernels: avx512vnni (14×32 tile, 28 int32 accumulators, VPDPBUSD: 4 u8·s8 products per lane
 * per instruction), avxvnni (3×32, the same on 8 lanes, for CPUs with AVX-VNNI but no AVX-512),
 * avx2 (1×32, int16 products summed in pairs by VPMADDWD), scalar (4×32). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_dispatch.h"
#include "kernels.h"
#include "threadpool.h"

#define NR 32
#ifndef DBT_INT8_KC
#define DBT_INT8_KC 1024
#endif
#define KC DBT_INT8_KC /* K steps per block: a 14-row A micro-panel is 14 KiB (L1) */
#define KCS (KC + 64) /* packed A row stride in bytes */
#define MC 1024
#define NC 384        /* KC × NC bytes of W = 384 KiB per block, in L2 */
#define MAX_K 32768   /* 255·127·K and zx·colsum stay far from 2³¹ */

struct dbt_int8_weights {
    int N, K, K4;
    int8_t *data;    /* ceil(N/32) panels of K4 × 32 */
    float *scale;    /* N (padded to a multiple of 32 with 0) */
    int32_t *colsum; /* Σ_k Wq[j,k], N (padded) */
};

/* The epilogue's per-row and per-column terms, offset to the tile's first row and column. */
typedef struct {
    const float *sx;     /* rows */
    const int32_t *zx;   /* rows */
    const float *sw;     /* columns */
    const int32_t *colsum;
    const float *bias;   /* columns, or NULL */
} epi;

/* One MR×32 tile over kc4 groups of 4 K steps. first: the sums start at 0 (else they continue
 * the int32 partials stored in c); last: c receives the dequantized result (else the partials). */
typedef void (*int8_kern_fn)(int kc4, const uint8_t *a, const int8_t *b, float *c, int64_t ldc, int mv, int nv,
                             int first, int last, const epi *e);

typedef struct {
    const char *name;
    int mr;
    int8_kern_fn kern;
    void (*minmax)(const float *x, int n, float *mn, float *mx);
    void (*quantize)(const float *x, int n, float inv, int32_t zp, uint8_t *q);
} int8_kernel;

/* ---- quantization -------------------------------------------------------------------------- */

/* Round to nearest even for |v| < 2²²: adding 1.5·2²³ leaves no fraction bits (the FPU rounds, to
 * nearest even), subtracting it back is exact. nearbyintf's result, without a libm call. */
static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }
/* v clamped to [lo, hi]; NaN gives lo (no undefined float-to-int conversion downstream). */
static inline float clampf(float v, float lo, float hi) { return v >= lo ? (v <= hi ? v : hi) : lo; }

void dbt_quantize_weights_s8(const float *W, int N, int K, int8_t *Wq, float *sw) {
    for (int j = 0; j < N; j++) {
        const float *w = W + (int64_t)j * K;
        float mx = 0.0f;
        for (int k = 0; k < K; k++) mx = fabsf(w[k]) > mx ? fabsf(w[k]) : mx;
        const float s = mx > 0.0f ? mx / 127.0f : 1.0f;
        sw[j] = s;
        for (int k = 0; k < K; k++) {
            Wq[(int64_t)j * K + k] = (int8_t)clampf(round_even(w[k] / s), -127.0f, 127.0f); /* |w/s| ≤ 127 */
        }
    }
}

static void minmax_scalar(const float *x, int n, float *mn, float *mx) {
    float lo = 0.0f, hi = 0.0f;
    for (int k = 0; k < n; k++) {
        lo = x[k] < lo ? x[k] : lo;
        hi = x[k] > hi ? x[k] : hi;
    }
    *mn = lo;
    *mx = hi;
}

static void quantize_scalar(const float *x, int n, float inv, int32_t zp, uint8_t *q) {
    for (int k = 0; k < n; k++) {
        /* |x·inv| ≤ 255 for a finite row; the sum is exact (integers below 2²⁴) */
        q[k] = (uint8_t)clampf(round_even(x[k] * inv) + (float)zp, 0.0f, 255.0f);
    }
}

/* The row's range always includes 0 (as ONNX's DynamicQuantizeLinear), so 0 maps to the integer
 * zp exactly and zero padding costs nothing. */
static void row_params(float mn, float mx, float *scale, float *inv, int32_t *zp) {
    float s = (mx - mn) / 255.0f;
    if (!(s > 0.0f) || !isfinite(s)) s = 1.0f; /* all zeros (or not finite: garbage in, no crash) */
    *scale = s;
    *inv = 1.0f / s;
    *zp = (int32_t)clampf(round_even(-mn / s), 0.0f, 255.0f);
}

/* ---- kernels ------------------------------------------------------------------------------- */

static inline float dequant(int32_t acc, int32_t zx, int32_t colsum, float sx, float sw, float bias) {
    return (float)(acc - zx * colsum) * (sx * sw) + bias;
}

/* Rows < mv, columns < nv of a tile of sums (acc, row stride NR) into c: partials or results. */
static void store_tile(const int32_t *acc, float *c, int64_t ldc, int mv, int nv, int first, int last, const epi *e) {
    for (int i = 0; i < mv; i++) {
        float *cr = c + (int64_t)i * ldc;
        for (int j = 0; j < nv; j++) {
            int32_t s = acc[i * NR + j], prev;
            if (!first) { memcpy(&prev, cr + j, 4); s += prev; }
            if (last) cr[j] = dequant(s, e->zx[i], e->colsum[j], e->sx[i], e->sw[j], e->bias ? e->bias[j] : 0.0f);
            else memcpy(cr + j, &s, 4);
        }
    }
}

#define SMR 4
static void kern_scalar(int kc4, const uint8_t *a, const int8_t *b, float *c, int64_t ldc, int mv, int nv, int first,
                        int last, const epi *e) {
    int32_t acc[SMR][NR] = {{0}};
    for (int p = 0; p < kc4; p++, b += 4 * NR)
        for (int i = 0; i < SMR; i++) {
            const uint8_t *ai = a + i * KCS + 4 * p;
            for (int j = 0; j < NR; j++)
                acc[i][j] += ai[0] * b[4 * j] + ai[1] * b[4 * j + 1] + ai[2] * b[4 * j + 2] + ai[3] * b[4 * j + 3];
        }
    store_tile(&acc[0][0], c, ldc, mv, nv, first, last, e);
}

static const int8_kernel kernel_scalar = {"scalar", SMR, kern_scalar, minmax_scalar, quantize_scalar};

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET_F __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

static inline int32_t ld32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline __mmask16 tail(int n, int k) { return n - k >= 16 ? 0xFFFF : (__mmask16)((1u << (n - k)) - 1); }

TARGET_F static void minmax_avx512(const float *x, int n, float *mn, float *mx) {
    __m512 lo = _mm512_setzero_ps(), hi = lo; /* masked-off lanes load 0, which the range includes */
    for (int k = 0; k < n; k += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(tail(n, k), x + k);
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
    }
    *mn = _mm512_reduce_min_ps(lo);
    *mx = _mm512_reduce_max_ps(hi);
}

/* cvtps rounds to nearest even (the default MXCSR mode), as nearbyintf does. */
TARGET_F static void quantize_avx512(const float *x, int n, float inv, int32_t zp, uint8_t *q) {
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i vzp = _mm512_set1_epi32(zp), lo = _mm512_setzero_si512(), hi = _mm512_set1_epi32(255);
    for (int k = 0; k < n; k += 16) {
        const __mmask16 m = tail(n, k);
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), vinv));
        v = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(v, vzp), lo), hi);
        _mm_mask_storeu_epi8(q + k, m, _mm512_cvtepi32_epi8(v));
    }
}

#define FOR14(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

/* ROWS (a constant at each call below) rows of the tile are computed: a tile of the last few
 * rows of a small batch (M = 16: 14 + 2) does not pay for 14. */
TARGET_VNNI static inline __attribute__((always_inline)) void
kern_vnni_rows(const int ROWS, int kc4, const uint8_t *a, const int8_t *b, float *c, int64_t ldc, int mv, int nv,
               int first, int last, const epi *e) {
#define DECL(i) __m512i c##i##_0 = _mm512_setzero_si512(), c##i##_1 = _mm512_setzero_si512();
    FOR14(DECL)
#undef DECL
    for (int i = 0; i < mv; i++) _mm_prefetch((const char *)(c + (int64_t)i * ldc), _MM_HINT_T0);
    for (int p = 0; p < kc4; p++) {
        const __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64);
        __m512i ai;
#define STEP(i)                                                                                            \
    if ((i) < ROWS) {                                                                                      \
        ai = _mm512_set1_epi32(ld32(a + (i) * KCS));                                                       \
        c##i##_0 = _mm512_dpbusd_epi32(c##i##_0, ai, b0);                                                  \
        c##i##_1 = _mm512_dpbusd_epi32(c##i##_1, ai, b1);                                                  \
    }
        FOR14(STEP)
#undef STEP
        a += 4;
        b += 4 * NR;
    }
    const __mmask16 m0 = nv >= 16 ? 0xFFFF : (__mmask16)((1u << nv) - 1);
    const __mmask16 m1 = nv >= 32 ? 0xFFFF : nv <= 16 ? 0 : (__mmask16)((1u << (nv - 16)) - 1);
    __m512 sw0 = _mm512_setzero_ps(), sw1 = sw0, bias0 = sw0, bias1 = sw0;
    __m512i cs0 = _mm512_setzero_si512(), cs1 = cs0;
    if (last) {
        sw0 = _mm512_maskz_loadu_ps(m0, e->sw), sw1 = _mm512_maskz_loadu_ps(m1, e->sw + 16);
        cs0 = _mm512_maskz_loadu_epi32(m0, e->colsum), cs1 = _mm512_maskz_loadu_epi32(m1, e->colsum + 16);
        if (e->bias) bias0 = _mm512_maskz_loadu_ps(m0, e->bias), bias1 = _mm512_maskz_loadu_ps(m1, e->bias + 16);
    }
#define STORE(i)                                                                                           \
    if ((i) < mv) {                                                                                        \
        float *cr = c + (int64_t)(i) * ldc;                                                                \
        __m512i r0 = c##i##_0, r1 = c##i##_1;                                                              \
        if (!first) {                                                                                      \
            r0 = _mm512_add_epi32(r0, _mm512_maskz_loadu_epi32(m0, cr));                                   \
            r1 = _mm512_add_epi32(r1, _mm512_maskz_loadu_epi32(m1, cr + 16));                              \
        }                                                                                                  \
        if (last) {                                                                                        \
            const __m512i z = _mm512_set1_epi32(e->zx[i]);                                                 \
            const __m512 sx = _mm512_set1_ps(e->sx[i]);                                                    \
            const __m512 f0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(r0, _mm512_mullo_epi32(z, cs0)));        \
            const __m512 f1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(r1, _mm512_mullo_epi32(z, cs1)));        \
            _mm512_mask_storeu_ps(cr, m0, _mm512_add_ps(_mm512_mul_ps(f0, _mm512_mul_ps(sx, sw0)), bias0)); \
            _mm512_mask_storeu_ps(cr + 16, m1, _mm512_add_ps(_mm512_mul_ps(f1, _mm512_mul_ps(sx, sw1)), bias1)); \
        } else {                                                                                           \
            _mm512_mask_storeu_epi32(cr, m0, r0);                                                          \
            _mm512_mask_storeu_epi32(cr + 16, m1, r1);                                                     \
        }                                                                                                  \
    }
    FOR14(STORE)
#undef STORE
}

TARGET_VNNI static void kern_vnni(int kc4, const uint8_t *a, const int8_t *b, float *c, int64_t ldc, int mv, int nv,
                                  int first, int last, const epi *e) {
    if (mv <= 4) kern_vnni_rows(4, kc4, a, b, c, ldc, mv, nv, first, last, e);
    else if (mv <= 8) kern_vnni_rows(8, kc4, a, b, c, ldc, mv, nv, first, last, e);
    else kern_vnni_rows(14, kc4, a, b, c, ldc, mv, nv, first, last, e);
}

static const int8_kernel kernel_vnni = {"avx512vnni", 14, kern_vnni, minmax_avx512, quantize_avx512};

/* AVX2 without VNNI: VPMADDUBSW would saturate u8·s8 pair sums in int16, so both operands are
 * widened to int16 and VPMADDWD sums pairs exactly in int32. One row at a time: 8 accumulators of
 * 4 columns × 2 pair sums each, the 4 bytes of x broadcast as int16, 16 bytes of W (4 columns × 4
 * K steps) widened per step; the pair sums are added (VPHADDD) at the end. About our fp32 AVX2
 * speed: a fallback for CPUs without AVX-512, exact like the others. */
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
TARGET_AVX2 static void kern_avx2(int kc4, const uint8_t *a, const int8_t *b, float *c, int64_t ldc, int mv, int nv,
                                  int first, int last, const epi *e) {
    /* the loops over q are unrolled so that the accumulators live in registers */
    __m256i acc[8];
#pragma GCC unroll 8
    for (int q = 0; q < 8; q++) acc[q] = _mm256_setzero_si256();
    for (int p = 0; p < kc4; p++, b += 4 * NR) {
        const __m256i ai = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(ld32(a + 4 * p))));
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
            const __m256i bq = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + 16 * q)));
            acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(ai, bq));
        }
    }
    int32_t out[NR];
#pragma GCC unroll 4
    for (int q = 0; q < 8; q += 2) { /* [c0 c1 c4 c5 | c2 c3 c6 c7] → columns 8q/2 .. 8q/2+7 in order */
        const __m256i h = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[q], acc[q + 1]), 0xD8);
        _mm256_storeu_si256((__m256i *)(void *)(out + 4 * q), h);
    }
    store_tile(out, c, ldc, mv, nv, first, last, e);
}

static const int8_kernel kernel_avx2 = {"avx2", 1, kern_avx2, minmax_scalar, quantize_scalar};

/* AVX-VNNI (VPDPBUSD on 8-lane vectors: Alder Lake and later without AVX-512): 3×32 tile, 12
 * accumulators, the 4 vectors of a W step loaded one at a time, 3 broadcasts of x: the 16
 * registers. */
#define TARGET_AVXVNNI __attribute__((target("avx2,avxvnni")))
TARGET_AVXVNNI static void kern_avxvnni(int kc4, const uint8_t *a, const int8_t *b, float *c, int64_t ldc, int mv,
                                        int nv, int first, int last, const epi *e) {
    /* the loops are unrolled so that the accumulators live in registers */
    __m256i acc[3][4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) acc[0][q] = acc[1][q] = acc[2][q] = _mm256_setzero_si256();
    for (int p = 0; p < kc4; p++, b += 4 * NR) {
        const __m256i a0 = _mm256_set1_epi32(ld32(a + 4 * p)), a1 = _mm256_set1_epi32(ld32(a + KCS + 4 * p));
        const __m256i a2 = _mm256_set1_epi32(ld32(a + 2 * KCS + 4 * p));
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            const __m256i bq = _mm256_loadu_si256((const __m256i *)(const void *)(b + 32 * q));
            acc[0][q] = _mm256_dpbusd_avx_epi32(acc[0][q], a0, bq);
            acc[1][q] = _mm256_dpbusd_avx_epi32(acc[1][q], a1, bq);
            acc[2][q] = _mm256_dpbusd_avx_epi32(acc[2][q], a2, bq);
        }
    }
    int32_t out[3 * NR];
#pragma GCC unroll 3
    for (int i = 0; i < 3; i++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) _mm256_storeu_si256((__m256i *)(void *)(out + i * NR + 8 * q), acc[i][q]);
    store_tile(out, c, ldc, mv, nv, first, last, e);
}

static const int8_kernel kernel_avxvnni = {"avxvnni", 3, kern_avxvnni, minmax_scalar, quantize_scalar};

#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* ---- kernel selection ---------------------------------------------------------------------- */

static _Atomic(const int8_kernel *) g_kernel;

static int kernel_options(dbt_kernel_option o[4]) {
    int n = 0;
#if HAVE_X86
    o[n++] = (dbt_kernel_option){"avx512vnni", &kernel_vnni, DBT_CPU_AVX512 | DBT_CPU_AVX512_VNNI};
    o[n++] = (dbt_kernel_option){"avxvnni", &kernel_avxvnni, DBT_CPU_AVX_VNNI};
    o[n++] = (dbt_kernel_option){"avx2", &kernel_avx2, DBT_CPU_AVX2};
#endif
    o[n++] = (dbt_kernel_option){"scalar", &kernel_scalar, 0};
    return n;
}

static const int8_kernel *kernel(void) {
    const int8_kernel *k = g_kernel;
    if (!k) {
        dbt_kernel_option o[4];
        g_kernel = k = dbt_kernel_from_env(o, kernel_options(o), "DBT_KERNEL_INT8");
    }
    return k;
}

const char *dbt_gemm_int8_kernel_name(void) { return kernel()->name; }

int dbt_gemm_int8_use_kernel(const char *name) {
    dbt_kernel_option o[4];
    const int8_kernel *k = dbt_kernel_find(o, kernel_options(o), name);
    if (!k) return -1;
    g_kernel = k;
    return 0;
}

void dbt_quantize_row_u8(const float *x, int K, uint8_t *q, float *scale, int32_t *zp) {
    const int8_kernel *kr = kernel();
    float mn, mx, inv;
    kr->minmax(x, K, &mn, &mx);
    row_params(mn, mx, scale, &inv, zp);
    kr->quantize(x, K, inv, *zp, q);
}

/* ---- packing the weights ------------------------------------------------------------------- */

dbt_int8_weights *dbt_int8_pack(const int8_t *Wq, const float *sw, int N, int K) {
    if (N <= 0 || K <= 0 || K > MAX_K || !Wq || !sw) return NULL;
    dbt_int8_weights *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->N = N;
    p->K = K;
    p->K4 = (K + 3) & ~3;
    const int64_t panels = (N + NR - 1) / NR;
    const size_t bytes = ((size_t)panels * p->K4 * NR + 63) & ~(size_t)63;
    p->data = aligned_alloc(64, bytes);
    p->scale = calloc((size_t)panels * NR, sizeof *p->scale);
    p->colsum = calloc((size_t)panels * NR, sizeof *p->colsum);
    if (!p->data || !p->scale || !p->colsum) { dbt_int8_free(p); return NULL; }
    memset(p->data, 0, bytes);
    /* Written in order, read from 32 rows at once (each row's cache line serves several steps). */
    int8_t *d = p->data;
    for (int j0 = 0; j0 < N; j0 += NR, d += (int64_t)p->K4 * NR) {
        const int w = N - j0 < NR ? N - j0 : NR;
        for (int k = 0; k < K; k++) {
            int8_t *dk = d + (int64_t)(k / 4) * 4 * NR + (k & 3);
            for (int j = 0; j < w; j++) dk[4 * j] = Wq[(int64_t)(j0 + j) * K + k];
        }
    }
    for (int j = 0; j < N; j++) {
        int32_t s = 0;
        for (int k = 0; k < K; k++) s += Wq[(int64_t)j * K + k];
        p->colsum[j] = s;
        p->scale[j] = sw[j];
    }
    return p;
}

void dbt_int8_free(dbt_int8_weights *w) {
    if (!w) return;
    free(w->data);
    free(w->scale);
    free(w->colsum);
    free(w);
}

/* ---- the driver ---------------------------------------------------------------------------- */

typedef struct { void *p; size_t cap; } buf;
static _Thread_local buf tl_a, tl_xq; /* per thread: packed A; per caller: the quantized x */

static void *buf_get(buf *b, size_t bytes) {
    if (bytes > b->cap) {
        free(b->p);
        b->p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        if (!b->p) { /* the GEMM API has no error path */
            fprintf(stderr, "distilbert: out of memory for int8 GEMM buffers (%zu bytes)\n", bytes);
            abort();
        }
        b->cap = bytes;
    }
    return b->p;
}

typedef struct {
    const int8_kernel *kr;
    int M, N, K, K4, act, split_m;
    const float *x, *bias;
    const dbt_int8_weights *W;
    uint8_t *xq;
    float *sx;
    int32_t *zx;
    float *y;
} job;

static void quantize_part(void *arg, int t, int n) {
    const job *j = arg;
    const int lo = (int)((int64_t)j->M * t / n), hi = (int)((int64_t)j->M * (t + 1) / n);
    for (int i = lo; i < hi; i++) {
        uint8_t *q = j->xq + (int64_t)i * j->K4;
        float mn, mx, inv;
        j->kr->minmax(j->x + (int64_t)i * j->K, j->K, &mn, &mx);
        row_params(mn, mx, &j->sx[i], &inv, &j->zx[i]);
        j->kr->quantize(j->x + (int64_t)i * j->K, j->K, inv, j->zx[i], q);
        memset(q + j->K, 0, (size_t)(j->K4 - j->K));
    }
}

static void block(const job *j, int m0, int m1, int n0, int n1) {
    const int8_kernel *kr = j->kr;
    const int mr = kr->mr, K = j->K, N = j->N, mcmax = MC / mr * mr;
    const int rows = m1 - m0 < mcmax ? m1 - m0 : mcmax;
    uint8_t *abuf = buf_get(&tl_a, (size_t)((rows + mr - 1) / mr * mr) * KCS);
    for (int ic = m0; ic < m1; ic += mcmax) {
        const int mc = m1 - ic < mcmax ? m1 - ic : mcmax, mcr = (mc + mr - 1) / mr * mr;
        for (int pc = 0; pc < K; pc += KC) {
            const int kc = K - pc < KC ? K - pc : KC, kc4 = (kc + 3) / 4, last = pc + kc >= K;
            for (int i = 0; i < mc; i++)
                memcpy(abuf + (int64_t)i * KCS, j->xq + (int64_t)(ic + i) * j->K4 + pc, (size_t)kc4 * 4);
            for (int i = mc; i < mcr; i++) memset(abuf + (int64_t)i * KCS, 0, (size_t)kc4 * 4);
            for (int jc = n0; jc < n1; jc += NC) {
                const int nc = n1 - jc < NC ? n1 - jc : NC;
                for (int ir = 0; ir < mc; ir += mr) {
                    const int mv = mc - ir < mr ? mc - ir : mr;
                    float *crow = j->y + (int64_t)(ic + ir) * N;
                    for (int jr = 0; jr < nc; jr += NR) {
                        const int col = jc + jr;
                        const int8_t *bp = j->W->data + (int64_t)(col / NR) * j->W->K4 * NR + (int64_t)pc * NR;
                        const epi e = {j->sx + ic + ir, j->zx + ic + ir, j->W->scale + col, j->W->colsum + col,
                                       j->bias ? j->bias + col : NULL};
                        kr->kern(kc4, abuf + (int64_t)ir * KCS, bp, crow + col, N, mv, nc - jr < NR ? nc - jr : NR,
                                 pc == 0, last, &e);
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

void dbt_linear_int8(const float *x, int M, int K, const dbt_int8_weights *W, const float *b, int N, int act,
                     float *y) {
    if (M <= 0 || N <= 0) return;
    if (!W || W->N != N || W->K != K) {
        fprintf(stderr, "distilbert: dbt_linear_int8: packed weights are %d×%d, the call is %d×%d\n", W ? W->N : 0,
                W ? W->K : 0, N, K);
        abort();
    }
    job j = {.kr = kernel(), .M = M, .N = N, .K = K, .K4 = W->K4, .act = act, .x = x, .bias = b, .W = W, .y = y};
    /* One buffer for the quantized rows and their parameters, on the calling thread. */
    const size_t qbytes = ((size_t)M * j.K4 + 63) & ~(size_t)63;
    uint8_t *mem = buf_get(&tl_xq, qbytes + (size_t)M * (sizeof(float) + sizeof(int32_t)));
    j.xq = mem;
    j.sx = (float *)(void *)(mem + qbytes);
    j.zx = (int32_t *)(void *)(j.sx + M);

    int nt = dbt_pool_threads();
    if ((double)M * N * K < 4e6) nt = 1; /* waking a worker costs more than it gains */
    int nq = nt < M ? nt : M;
    if ((int64_t)M * K < 65536) nq = 1; /* a few microseconds: not worth waking a worker */
    if (nq <= 1) quantize_part(&j, 0, 1);
    else dbt_pool_run(quantize_part, &j, nq);

    const int64_t tiles_m = (M + j.kr->mr - 1) / j.kr->mr, tiles_n = (N + NR - 1) / NR;
    j.split_m = tiles_m >= 4 * nt || tiles_m >= tiles_n;
    const int64_t tiles = j.split_m ? tiles_m : tiles_n;
    if (nt > tiles) nt = (int)tiles;
    if (nt <= 1) part(&j, 0, 1);
    else dbt_pool_run(part, &j, nt);
}
