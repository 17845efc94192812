/* gemm_avx512.c — the AVX-512 micro-kernel: 14×32 tiles.
 *
 * 28 zmm accumulators (14 rows × 2 vectors of 16 columns), 2 registers for a row of B and one
 * for a broadcast of A: 31 of the 32 registers. Per step along K it issues 28 FMAs against 2
 * vector loads and 14 broadcasts, enough independent FMAs to cover the FMA latency on both
 * pipes, and few enough loads that the load ports never limit it.
 *
 * B is loaded with masks, so the last panel of an unpacked B (read in place, see
 * gemm_internal.h) needs no padding and no copy; masked stores do the same for C.
 *
 * Built with a target attribute so that the library needs no -march flag; gemm.c calls it only
 * when the CPU reports AVX-512F. */
#include "gemm_internal.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define MR 14
#define NR 32
#ifndef DBT_AVX512_KCS
#define DBT_AVX512_KCS 400 /* 384 + 16: rows of packed A do not all fall into the same L1 sets */
#endif
#define KCS DBT_AVX512_KCS
#ifndef DBT_AVX512_NC
#define DBT_AVX512_NC 384
#endif
#ifndef DBT_AVX512_MC
#define DBT_AVX512_MC 2048
#endif

#define PF_STEPS 32 /* how far ahead along K the kernel prefetches B */

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

#define FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

TARGET static void kern_avx512(int kc, const float *a, const float *b, int64_t ldbk, float *c, int64_t ldc,
                               int mv, int nv, const dbt_gemm_epi *e) {
    const __mmask16 m0 = nv >= 16 ? 0xFFFF : (__mmask16)((1u << nv) - 1);
    const __mmask16 m1 = nv >= 32 ? 0xFFFF : nv <= 16 ? 0 : (__mmask16)((1u << (nv - 16)) - 1);
#define DECL(i) __m512 c##i##_0 = _mm512_setzero_ps(), c##i##_1 = _mm512_setzero_ps();
    FOR_ROWS(DECL)
#undef DECL
    /* C is written after the loop: start fetching its lines now (write-allocate or beta ≠ 0). */
    for (int i = 0; i < mv; i++) {
        _mm_prefetch((const char *)(c + (int64_t)i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (int64_t)i * ldc + NR - 1), _MM_HINT_T0);
    }
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
        /* Prepacked weights stream from DRAM through this loop, one panel at a time: a single
         * sequential stream that the hardware prefetchers alone leave latency-bound (measured
         * at 16 rows of A: 1.5× slower than packing W per call, whose 32 row streams keep more
         * misses in flight; with this, 2–3× faster). Fetching B 32 steps ahead (4 kB) does it;
         * when B is in L2 (packed per call) the two extra instructions per 28 FMAs cost nothing
         * measurable. */
        _mm_prefetch((const char *)(b + PF_STEPS * ldbk), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + PF_STEPS * ldbk + 16), _MM_HINT_T0);
        __m512 ai;
#define STEP(i)                                                                                            \
    ai = _mm512_set1_ps(a[(i) * KCS]);                                                                     \
    c##i##_0 = _mm512_fmadd_ps(ai, b0, c##i##_0);                                                          \
    c##i##_1 = _mm512_fmadd_ps(ai, b1, c##i##_1);
        FOR_ROWS(STEP)
#undef STEP
        a++;
        b += ldbk;
    }
    const __m512 va = _mm512_set1_ps(e->alpha), vb = _mm512_set1_ps(e->beta);
    const int use_alpha = e->alpha != 1.0f, use_beta = e->beta != 0.0f;
    const float *bias = e->bias;
    __m512 bias0 = _mm512_setzero_ps(), bias1 = bias0;
    if (bias) bias0 = _mm512_maskz_loadu_ps(m0, bias), bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
#define STORE(i)                                                                                           \
    if ((i) < mv) {                                                                                        \
        float *cr = c + (int64_t)(i) * ldc;                                                                \
        __m512 r0 = c##i##_0, r1 = c##i##_1;                                                               \
        if (use_alpha) r0 = _mm512_mul_ps(va, r0), r1 = _mm512_mul_ps(va, r1);                             \
        if (use_beta) {                                                                                    \
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), r0);                                   \
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), r1);                              \
        }                                                                                                  \
        if (bias) r0 = _mm512_add_ps(r0, bias0), r1 = _mm512_add_ps(r1, bias1);                            \
        _mm512_mask_storeu_ps(cr, m0, r0);                                                                 \
        _mm512_mask_storeu_ps(cr + 16, m1, r1);                                                            \
    }
    FOR_ROWS(STORE)
#undef STORE
}

/* In-register transpose of 16 rows of 16 floats: r[i][j] → r[j][i]. Three rounds of shuffles
 * (within 128-bit lanes, then across lanes), 64 instructions for 256 elements. */
TARGET static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* r[4g + e], lane L: rows 4g .. 4g+3 of column 4L + e */
    for (int g = 0; g < 4; g++) {
        r[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int e = 0; e < 4; e++) {
        const __m512 a = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x88), b = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xDD);
        const __m512 c = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x88);
        const __m512 d = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xDD);
        t[e] = _mm512_shuffle_f32x4(a, c, 0x88);
        t[8 + e] = _mm512_shuffle_f32x4(a, c, 0xDD);
        t[4 + e] = _mm512_shuffle_f32x4(b, d, 0x88);
        t[12 + e] = _mm512_shuffle_f32x4(b, d, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* The transposing pack (gemm_internal.h) in 16×16 blocks: 16 rows of B (masked at the K tail),
 * transposed in registers, stored as 16 rows of half a panel. Much faster than the scalar
 * gather, which makes packing Linear weights on every call cheap.
 *
 * Weights come from DRAM (a base model's do not fit in L3), 16 short row streams at a time,
 * which the hardware prefetchers pick up late: each 16×16 block prefetches the same columns of
 * the next 16 rows, one half-panel (about a thousand cycles) ahead of their use. */
TARGET static void pack_bt_avx512(const float *B, int64_t ldb, int p0, int kc, int j0, int w, int w_next,
                                  float *panel) {
    const int avail = w + w_next; /* rows j0 .. j0+avail-1 exist */
    for (int jh = 0; jh < NR; jh += 16) {
        const int v = w - jh < 0 ? 0 : w - jh > 16 ? 16 : w - jh; /* valid rows of B in this half */
        const int pf = avail - jh - 16 < 0 ? 0 : avail - jh - 16 > 16 ? 16 : avail - jh - 16;
        const float *next = pf ? B + (int64_t)(j0 + jh + 16) * ldb + p0 : B;
        if (v == 0) {
            for (int k = 0; k < kc; k++) _mm512_storeu_ps(panel + (int64_t)k * NR + jh, _mm512_setzero_ps());
            continue;
        }
        for (int k = 0; k < kc; k += 16) {
            const int kv = kc - k < 16 ? kc - k : 16;
            const __mmask16 km = (__mmask16)((1u << kv) - 1);
            __m512 r[16];
            for (int i = 0; i < pf; i++) _mm_prefetch((const char *)(next + (int64_t)i * ldb + k), _MM_HINT_T0);
            for (int i = 0; i < 16; i++)
                r[i] = i < v ? _mm512_maskz_loadu_ps(km, B + (int64_t)(j0 + jh + i) * ldb + p0 + k)
                             : _mm512_setzero_ps();
            transpose16(r);
            for (int i = 0; i < kv; i++) _mm512_storeu_ps(panel + (int64_t)(k + i) * NR + jh, r[i]);
        }
    }
}

/* The transposing pack of A (op(A) = Aᵀ, as in dW = dYᵀ·X), by the same 16×16 blocks: 16 rows of
 * the stored A (16 steps along K) transposed into 16 rows of packed A. */
TARGET static void pack_at_avx512(const float *A, int64_t lda, int i0, int mc, int p0, int kc, float *dst) {
    for (int i = 0; i < mc; i += 16) {
        const int iv = mc - i < 16 ? mc - i : 16;
        const __mmask16 im = (__mmask16)((1u << iv) - 1);
        for (int k = 0; k < kc; k += 16) {
            const int kv = kc - k < 16 ? kc - k : 16;
            const __mmask16 km = (__mmask16)((1u << kv) - 1);
            __m512 r[16];
            for (int q = 0; q < 16; q++)
                r[q] = q < kv ? _mm512_maskz_loadu_ps(im, A + (int64_t)(p0 + k + q) * lda + i0 + i)
                              : _mm512_setzero_ps();
            transpose16(r);
            for (int q = 0; q < iv; q++) _mm512_mask_storeu_ps(dst + (int64_t)(i + q) * KCS + k, km, r[q]);
        }
    }
}

static const dbt_gemm_kernel kernel_avx512 = {
    .name = "avx512", .isa = 2, .mr = MR, .nr = NR, .kcs = KCS, .nc = DBT_AVX512_NC, .mc = DBT_AVX512_MC, .direct_b = 1,
    .kern = kern_avx512, .pack_bt = pack_bt_avx512, .pack_at = pack_at_avx512,
};
const dbt_gemm_kernel *const dbt_gemm_kernel_avx512_ptr = &kernel_avx512;
#else
const dbt_gemm_kernel *const dbt_gemm_kernel_avx512_ptr = 0;
#endif
