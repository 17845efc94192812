/* gemm_avx2.c — the AVX2+FMA micro-kernel: 6×16 tiles (12 ymm accumulators, 2 for a row of B,
 * 1 for a broadcast of A: 15 of the 16 registers). Built with a target attribute so that the
 * library needs no -march flag; gemm.c calls it only when the CPU has AVX2 and FMA. */
#include "gemm_internal.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define MR 6
#define NR 16
#define KCS 264 /* 256 + 8: rows of packed A do not all fall into the same L1 sets */

#define TARGET __attribute__((target("avx2,fma")))

TARGET static void kern_avx2(int kc, const float *a, const float *b, int64_t ldbk, float *c, int64_t ldc, int mv,
                             int nv, const dbt_gemm_epi *e) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        /* B 64 steps (4 kB) ahead: prepacked weights stream from DRAM through this loop, and
         * one sequential stream is latency-bound without it (see gemm_avx512.c) */
        _mm_prefetch((const char *)(b + 64 * ldbk), _MM_HINT_T0);
        __m256 ai;
#define ROW(i)                                                                                             \
    ai = _mm256_broadcast_ss(a + (i) * KCS);                                                               \
    c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                                                            \
    c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
        a++;
        b += ldbk;
    }
    if (mv == MR && nv == NR) {
        const __m256 va = _mm256_set1_ps(e->alpha), vb = _mm256_set1_ps(e->beta);
        const int use_beta = e->beta != 0.0f;
        const float *bias = e->bias;
#define STORE(i)                                                                                           \
    {                                                                                                      \
        float *cr = c + (int64_t)(i) * ldc;                                                                \
        __m256 r0 = _mm256_mul_ps(va, c##i##0), r1 = _mm256_mul_ps(va, c##i##1);                           \
        if (use_beta) {                                                                                    \
            r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), r0);                                             \
            r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), r1);                                         \
        }                                                                                                  \
        if (bias) {                                                                                        \
            r0 = _mm256_add_ps(r0, _mm256_loadu_ps(bias));                                                 \
            r1 = _mm256_add_ps(r1, _mm256_loadu_ps(bias + 8));                                             \
        }                                                                                                  \
        _mm256_storeu_ps(cr, r0);                                                                          \
        _mm256_storeu_ps(cr + 8, r1);                                                                      \
    }
        STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
#undef STORE
    } else { /* an edge tile: through a buffer, so that nothing outside C is touched */
        float acc[MR * NR];
        _mm256_storeu_ps(acc + 0 * NR, c00), _mm256_storeu_ps(acc + 0 * NR + 8, c01);
        _mm256_storeu_ps(acc + 1 * NR, c10), _mm256_storeu_ps(acc + 1 * NR + 8, c11);
        _mm256_storeu_ps(acc + 2 * NR, c20), _mm256_storeu_ps(acc + 2 * NR + 8, c21);
        _mm256_storeu_ps(acc + 3 * NR, c30), _mm256_storeu_ps(acc + 3 * NR + 8, c31);
        _mm256_storeu_ps(acc + 4 * NR, c40), _mm256_storeu_ps(acc + 4 * NR + 8, c41);
        _mm256_storeu_ps(acc + 5 * NR, c50), _mm256_storeu_ps(acc + 5 * NR + 8, c51);
        dbt_gemm_store_tile(acc, NR, c, ldc, mv, nv, e);
    }
}

/* B is always packed for this kernel (direct_b = 0): its panels are zero-padded to NR columns,
 * so the full-width loads above never leave the buffer. */
static const dbt_gemm_kernel kernel_avx2 = {
    .name = "avx2", .isa = 1, .mr = MR, .nr = NR, .kcs = KCS, .nc = 512, .mc = 1536, .direct_b = 0,
    .kern = kern_avx2,
};
const dbt_gemm_kernel *const dbt_gemm_kernel_avx2_ptr = &kernel_avx2;
#else
const dbt_gemm_kernel *const dbt_gemm_kernel_avx2_ptr = 0;
#endif
