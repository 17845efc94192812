/* gemm_scalar.c — the portable micro-kernel: plain C, for CPUs without AVX2 and as the
 * reference path the tests force with DBT_KERNEL=scalar. Same contract as the SIMD kernels
 * (gemm_internal.h); the compiler may vectorize the inner loop. */
#include "gemm_internal.h"

#define MR 4
#define NR 16
#define KCS 256

static void kern_scalar(int kc, const float *restrict a, const float *restrict b, int64_t ldbk, float *c,
                        int64_t ldc, int mv, int nv, const dbt_gemm_epi *e) {
    float acc[MR][NR] = {{0}};
    if (nv == NR) { /* constant trip counts: the compiler keeps acc in vector registers */
        for (int k = 0; k < kc; k++) {
            const float *bk = b + (int64_t)k * ldbk;
            for (int i = 0; i < MR; i++) {
                const float ai = a[i * KCS + k];
                for (int j = 0; j < NR; j++) acc[i][j] += ai * bk[j];
            }
        }
    } else {
        for (int k = 0; k < kc; k++) {
            const float *bk = b + (int64_t)k * ldbk;
            for (int i = 0; i < MR; i++) {
                const float ai = a[i * KCS + k];
                for (int j = 0; j < nv; j++) acc[i][j] += ai * bk[j]; /* only j < nv: B may be unpacked */
            }
        }
    }
    dbt_gemm_store_tile(&acc[0][0], NR, c, ldc, mv, nv, e);
}

const dbt_gemm_kernel dbt_gemm_kernel_scalar = {
    .name = "scalar", .isa = 0, .mr = MR, .nr = NR, .kcs = KCS, .nc = 256, .mc = 1024, .direct_b = 1,
    .kern = kern_scalar,
};
