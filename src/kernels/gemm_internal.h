/* gemm_internal.h — what the GEMM driver (gemm.c) needs from a micro-kernel (gemm_avx512.c,
 * gemm_avx2.c, gemm_scalar.c).
 *
 * The driver computes C[M×N] = alpha·A·B + beta·C in tiles of MR×NR. For one tile and one block
 * of kc ≤ KCS steps along K, the micro-kernel reads
 *   A  MR rows of packed A: row i at a + i·KCS, elements a[i·KCS + k] for k < kc. A compile-time
 *      row stride lets every broadcast address be a constant displacement from one pointer, and
 *      packing A is then a plain row copy (x is row-major with K contiguous, like the weights).
 *   B  kc rows of NR columns: element (k, j) at b[k·ldbk + j]; ldbk = NR for a packed panel, or
 *      the caller's ldb when B (row-major K×N) is read in place. Only columns j < nv may be
 *      read when B is read in place (the last panel of a matrix).
 * and writes rows i < mv, columns j < nv of C (row stride ldc) as
 *   C = alpha·acc + beta·C + bias[j]     (beta == 0: C is not read; bias may be NULL).
 * Rows mv .. MR-1 of packed A hold zeros, and the unused columns of a packed B panel too. */
#ifndef DBT_GEMM_INTERNAL_H
#define DBT_GEMM_INTERNAL_H

#include <stdint.h>

typedef struct {
    float alpha, beta;
    const float *bias; /* already offset to the tile's first column, or NULL */
} dbt_gemm_epi;

typedef void (*dbt_ukernel_fn)(int kc, const float *a, const float *b, int64_t ldbk, float *c, int64_t ldc,
                               int mv, int nv, const dbt_gemm_epi *e);

/* Packs one panel of a transposed B (stored N×K, as Linear weights are): panel[k·nr + j] =
 * B[(j0 + j)·ldb + p0 + k] for k < kc, j < w, and 0 for w ≤ j < nr. Rows j0+w .. j0+w+w_next-1
 * come next (they may be prefetched). */
typedef void (*dbt_pack_bt_fn)(const float *B, int64_t ldb, int p0, int kc, int j0, int w, int w_next,
                               float *panel);
/* Packs rows [i0, i0+mc) of a transposed A (stored K×M): dst[i·KCS + k] = A[(p0 + k)·lda + i0 + i]. */
typedef void (*dbt_pack_at_fn)(const float *A, int64_t lda, int i0, int mc, int p0, int kc, float *dst);

typedef struct {
    const char *name;
    int isa;         /* 0 scalar, 1 AVX2, 2 AVX-512 */
    int mr, nr;      /* tile */
    int kcs;         /* packed A row stride = the largest kc the kernel takes */
    int nc;          /* columns of B per block (kc × nc of packed B is meant to stay in L2) */
    int mc;          /* rows of A packed at once (kc × mc stays in L3; bounds the buffer) */
    int direct_b;    /* may read B in place (row-major K×N with any ldb) */
    dbt_ukernel_fn kern;
    dbt_pack_bt_fn pack_bt; /* faster transposing packs, or NULL for the generic ones */
    dbt_pack_at_fn pack_at;
} dbt_gemm_kernel;

/* The instruction set of the kernel in use (0 scalar, 1 AVX2, 2 AVX-512): vmath.c follows it. */
int dbt_gemm_isa(void);

extern const dbt_gemm_kernel dbt_gemm_kernel_scalar;
/* NULL when the compiler cannot build them (not x86-64 GCC/Clang). */
extern const dbt_gemm_kernel *const dbt_gemm_kernel_avx2_ptr;
extern const dbt_gemm_kernel *const dbt_gemm_kernel_avx512_ptr;

/* Writes a full or partial MR×NR accumulator tile (row stride ldacc) to C with the epilogue. */
static inline void dbt_gemm_store_tile(const float *acc, int ldacc, float *c, int64_t ldc, int mv, int nv,
                                       const dbt_gemm_epi *e) {
    for (int i = 0; i < mv; i++) {
        float *cr = c + (int64_t)i * ldc;
        const float *ar = acc + (int64_t)i * ldacc;
        for (int j = 0; j < nv; j++) {
            float v = e->alpha * ar[j];
            if (e->beta != 0.0f) v += e->beta * cr[j];
            if (e->bias) v += e->bias[j];
            cr[j] = v;
        }
    }
}

#endif
