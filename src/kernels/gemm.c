/* gemm.c — matrix products: a packed, cache-blocked SGEMM in the GotoBLAS/BLIS style, split
 * across the thread pool, with the micro-kernel picked at run time (gemm_avx512.c, gemm_avx2.c,
 * gemm_scalar.c).
 *
 * Loop nest, for the rows [m0, m1) × columns [n0, n1) of C that one thread owns:
 *
 *   for ic in rows, by MC                 A block: MC × kc, packed once per (ic, pc), L3
 *     for pc in K, by KC (= kernel's KCS)
 *       pack A rows (a plain row copy, see gemm_internal.h)
 *       for jc in columns, by NC          B block: kc × NC, packed (or prepacked), L2
 *         for ir in the A block, by MR    one A micro-panel (MR × kc) stays in L1 …
 *           for jr in the B block, by NR  … while the B micro-panels stream from L2
 *             micro-kernel: C[MR×NR] (+)= A·B, with alpha, beta and bias in its epilogue
 *
 * Threads split C by whole tiles, along M when there are enough rows (each thread then packs
 * its own rows of A and reads the shared B), else along N. Every element of C is computed by one
 * thread with the same order of operations whatever the thread count, so results do not depend
 * on it. Packing buffers are per thread and grow only; nothing is allocated in steady state.
 *
 * Weights are constant: dbt_pack_weights packs a Linear's W once into the kernel's B panels, and
 * dbt_linear_forward_ex then skips packing B altogether. Measured, that saves next to nothing
 * once M ≥ 128 rows (bench/gemm: "W prepacked" vs "pack per call"): the AVX-512 transposing
 * pack is cheap and W has to come from memory either way. It costs a second copy of the
 * weights. At small M it is another matter: at (batch, seq) = (1, 16) packing B was 56 % of a
 * forward pass (perf), W being read, transposed and written for 16 rows of A. So a model loaded
 * for inference packs its Linear weights once, at its first forward pass, into a dbt_packed_set
 * and makes it the calling thread's scope for the pass: dbt_linear_forward finds the packed
 * copy of a W by its address, the call sites unchanged. Models being trained never do (their
 * weights change at every step; see forward.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_dispatch.h"
#include "gemm_internal.h"
#include "kernels.h"
#include "threadpool.h"

/* ---- kernel selection ---------------------------------------------------------------------- */

static _Atomic(const dbt_gemm_kernel *) g_kernel;

/* Best first; a kernel's pointer is NULL when the compiler could not build it. */
static int kernel_options(dbt_kernel_option o[3]) {
    o[0] = (dbt_kernel_option){"avx512", dbt_gemm_kernel_avx512_ptr, DBT_CPU_AVX512};
    o[1] = (dbt_kernel_option){"avx2", dbt_gemm_kernel_avx2_ptr, DBT_CPU_AVX2 | DBT_CPU_FMA};
    o[2] = (dbt_kernel_option){"scalar", &dbt_gemm_kernel_scalar, 0};
    return 3;
}

static const dbt_gemm_kernel *kernel(void) {
    const dbt_gemm_kernel *k = g_kernel;
    if (!k) {
        dbt_kernel_option o[3];
        g_kernel = k = dbt_kernel_from_env(o, kernel_options(o), "DBT_KERNEL");
    }
    return k;
}

int dbt_gemm_use_kernel(const char *name) {
    dbt_kernel_option o[3];
    const dbt_gemm_kernel *k = dbt_kernel_find(o, kernel_options(o), name);
    if (!k) return -1;
    g_kernel = k;
    return 0;
}

const char *dbt_gemm_kernel_name(void) { return kernel()->name; }

int dbt_gemm_isa(void) { return kernel()->isa; }

void dbt_gemm_set_threads(int n) { dbt_pool_set_threads(n); }

/* ---- per-thread packing buffers ------------------------------------------------------------ */

typedef struct {
    float *p;
    size_t cap; /* floats */
} scratch;

/* Pool workers live as long as the process, but application threads that call a GEMM (server
 * request threads, a test's threads) come and go: a thread's buffers are registered with a
 * pthread key whose destructor frees them when the thread exits. The key's value is the
 * heap block itself, not the TLS slot, which glibc may already have torn down by then. */
typedef struct {
    scratch a, b;
} thread_bufs;

static _Thread_local thread_bufs *tl_bufs;
static pthread_key_t g_bufs_key;
static pthread_once_t g_bufs_once = PTHREAD_ONCE_INIT;
static int g_bufs_key_ok;

static void bufs_free(void *p) {
    thread_bufs *t = p;
    free(t->a.p);
    free(t->b.p);
    free(t);
}

static void bufs_key_init(void) { g_bufs_key_ok = pthread_key_create(&g_bufs_key, bufs_free) == 0; }

static void oom(size_t bytes) { /* a few MB at most; the GEMM API has no error path */
    fprintf(stderr, "distilbert: out of memory for GEMM packing buffers (%zu bytes)\n", bytes);
    abort();
}

static thread_bufs *thread_buffers(void) {
    if (tl_bufs) return tl_bufs;
    pthread_once(&g_bufs_once, bufs_key_init);
    thread_bufs *t = calloc(1, sizeof *t);
    if (!t) oom(sizeof *t);
    if (g_bufs_key_ok) pthread_setspecific(g_bufs_key, t);
    return tl_bufs = t;
}

static float *scratch_get(scratch *s, size_t n) {
    if (n > s->cap) {
        free(s->p);
        size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
        s->p = aligned_alloc(64, bytes);
        if (!s->p) oom(bytes);
        s->cap = n;
    }
    return s->p;
}

/* ---- packing ------------------------------------------------------------------------------- */

/* Rows [i0, i0+mc) × columns [p0, p0+kc) of op(A) into dst, row i at dst + i·kcs; rows up to the
 * next multiple of mr are zeroed (the kernel computes whole tiles). */
static void pack_a(const dbt_gemm_kernel *kr, const float *A, int64_t lda, int ta, int i0, int mc, int p0, int kc,
                   float *dst) {
    const int mr = kr->mr, kcs = kr->kcs;
    if (ta && kr->pack_at) {
        kr->pack_at(A, lda, i0, mc, p0, kc, dst);
    } else if (!ta) {
        /* Each row is a short stream (kc floats) and the activations mostly come from DRAM:
         * fetching the row two ahead hides the latency the hardware prefetcher leaves. */
        for (int i = 0; i < mc; i++) {
            if (i + 2 < mc)
                for (int k = 0; k < kc; k += 16) __builtin_prefetch(A + (int64_t)(i0 + i + 2) * lda + p0 + k);
            memcpy(dst + (int64_t)i * kcs, A + (int64_t)(i0 + i) * lda + p0, (size_t)kc * sizeof *dst);
        }
    } else { /* A is stored K×M: read along its rows (contiguous), write down our columns */
        for (int k = 0; k < kc; k++) {
            const float *src = A + (int64_t)(p0 + k) * lda + i0;
            for (int i = 0; i < mc; i++) dst[(int64_t)i * kcs + k] = src[i];
        }
    }
    for (int i = mc; i % mr; i++) memset(dst + (int64_t)i * kcs, 0, (size_t)kc * sizeof *dst);
}

/* Rows [p0, p0+kc) × columns [j0, j0+nc) of op(B) into panels of nr columns: panel q holds
 * element (k, j) at dst[(q·kc + k)·nr + j]; columns past nc are zero. tb: B is stored N×K. */
static void pack_b(const dbt_gemm_kernel *kr, const float *B, int64_t ldb, int tb, int p0, int kc, int j0, int nc,
                   float *dst) {
    const int nr = kr->nr;
    for (int q = 0; q * nr < nc; q++) {
        float *panel = dst + (int64_t)q * kc * nr;
        const int jq = j0 + q * nr, w = nc - q * nr < nr ? nc - q * nr : nr;
        if (tb && kr->pack_bt) {
            kr->pack_bt(B, ldb, p0, kc, jq, w, nc - q * nr - w, panel);
        } else if (!tb) {
            for (int k = 0; k < kc; k++) {
                float *d = panel + (int64_t)k * nr;
                memcpy(d, B + (int64_t)(p0 + k) * ldb + jq, (size_t)w * sizeof *d);
                for (int j = w; j < nr; j++) d[j] = 0.0f;
            }
        } else { /* row j of the stored matrix is column j of op(B): a transpose */
            if (w < nr)
                for (int k = 0; k < kc; k++)
                    for (int j = w; j < nr; j++) panel[(int64_t)k * nr + j] = 0.0f;
            for (int j = 0; j < w; j++) {
                const float *src = B + (int64_t)(jq + j) * ldb + p0;
                for (int k = 0; k < kc; k++) panel[(int64_t)k * nr + j] = src[k];
            }
        }
    }
}

/* ---- prepacked weights --------------------------------------------------------------------- */

struct dbt_packed_b {
    const dbt_gemm_kernel *kr; /* the kernel whose panel width it was packed for */
    int N, K;
    const float *W;            /* the original, used when another kernel is active */
    float *data;               /* ceil(N/nr) panels of K × nr */
};

dbt_packed_b *dbt_pack_weights(const float *W, int N, int K) {
    if (N <= 0 || K <= 0 || !W) return NULL;
    dbt_packed_b *p = malloc(sizeof *p);
    if (!p) return NULL;
    p->kr = kernel();
    p->N = N;
    p->K = K;
    p->W = W;
    const int nr = p->kr->nr;
    const int64_t panels = (N + nr - 1) / nr;
    p->data = aligned_alloc(64, ((size_t)panels * K * nr * sizeof(float) + 63) & ~(size_t)63);
    if (!p->data) { free(p); return NULL; }
    for (int64_t q = 0; q < panels; q++) {
        const int j0 = (int)(q * nr), w = N - j0 < nr ? N - j0 : nr;
        pack_b(p->kr, W, K, 1, 0, K, j0, w, p->data + q * K * nr);
    }
    return p;
}

void dbt_packed_free(dbt_packed_b *p) {
    if (!p) return;
    free(p->data);
    free(p);
}

/* A set of packed weights, sorted by the address of the original so that a Linear finds its
 * packed copy by W alone (dbt_packed_set_scope). */
struct dbt_packed_set {
    dbt_packed_b **p;
    int n;
    size_t bytes;
};

typedef struct {
    const float *const *W;
    const int *N, *K;
    dbt_packed_b **out;
    int n;
} pack_job;

static void pack_part(void *arg, int t, int nt) {
    const pack_job *j = arg;
    for (int i = t; i < j->n; i += nt) j->out[i] = dbt_pack_weights(j->W[i], j->N[i], j->K[i]);
}

static int cmp_packed(const void *a, const void *b) {
    const float *x = (*(dbt_packed_b *const *)a)->W, *y = (*(dbt_packed_b *const *)b)->W;
    return x < y ? -1 : x > y;
}

dbt_packed_set *dbt_packed_set_new(const float *const *W, const int *N, const int *K, int n) {
    dbt_packed_set *s = calloc(1, sizeof *s);
    if (!s || !(s->p = calloc((size_t)(n > 0 ? n : 1), sizeof *s->p))) { free(s); return NULL; }
    kernel(); /* resolve the kernel once, outside the parallel region */
    pack_job j = {W, N, K, s->p, n};
    dbt_pool_run(pack_part, &j, n); /* the pool clamps to its thread count; big matrices dominate */
    for (int i = 0; i < n; i++) {
        if (!s->p[i]) { s->n = n; dbt_packed_set_free(s); return NULL; }
        const int nr = s->p[i]->kr->nr;
        s->bytes += (size_t)((N[i] + nr - 1) / nr) * nr * (size_t)K[i] * sizeof(float);
    }
    s->n = n;
    qsort(s->p, (size_t)n, sizeof *s->p, cmp_packed);
    return s;
}

void dbt_packed_set_free(dbt_packed_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) dbt_packed_free(s->p[i]);
    free(s->p);
    free(s);
}

size_t dbt_packed_set_bytes(const dbt_packed_set *s) { return s ? s->bytes : 0; }

static _Thread_local const dbt_packed_set *tl_packed;

const dbt_packed_set *dbt_packed_set_scope(const dbt_packed_set *s) {
    const dbt_packed_set *prev = tl_packed;
    tl_packed = s;
    return prev;
}

/* The packed copy of W[N×K] in this thread's scope, or NULL. */
static const dbt_packed_b *scoped_packed(const float *W, int N, int K) {
    const dbt_packed_set *s = tl_packed;
    if (!s || !W) return NULL;
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        const dbt_packed_b *p = s->p[mid];
        if (p->W == W) return p->N == N && p->K == K ? p : NULL;
        if (p->W < W) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

/* ---- the driver ---------------------------------------------------------------------------- */

typedef struct {
    const dbt_gemm_kernel *kr;
    int M, N, K;
    const float *A;
    int64_t lda;
    int ta;              /* A is stored K×M */
    const float *B;
    int64_t ldb;
    int tb;              /* B is stored N×K */
    const float *Bp;     /* prepacked panels of K × nr, or NULL */
    int direct;          /* read B in place (row-major K×N) */
    float *C;
    int64_t ldc;
    float alpha, beta;
    const float *bias;   /* N, or NULL */
    int act;             /* dbt_activation applied to the result, or DBT_GEMM_NO_ACT */
    int split_m;         /* threads split the rows (1) or the columns (0) */
} gemm_job;

static void gemm_block(const gemm_job *j, int m0, int m1, int n0, int n1) {
    const dbt_gemm_kernel *kr = j->kr;
    const int mr = kr->mr, nr = kr->nr, kcs = kr->kcs;
    const int mcmax = kr->mc / mr * mr, ncmax = kr->nc / nr * nr;
    const int K = j->K;
    const int rows = m1 - m0 < mcmax ? m1 - m0 : mcmax, cols = n1 - n0 < ncmax ? n1 - n0 : ncmax;
    thread_bufs *tb = thread_buffers();
    float *abuf = scratch_get(&tb->a, (size_t)((rows + mr - 1) / mr * mr) * kcs);
    float *bbuf = j->Bp || j->direct ? NULL : scratch_get(&tb->b, (size_t)((cols + nr - 1) / nr * nr) * kcs);

    for (int ic = m0; ic < m1; ic += mcmax) {
        const int mc = m1 - ic < mcmax ? m1 - ic : mcmax;
        for (int pc = 0; pc < K; pc += kcs) {
            const int kc = K - pc < kcs ? K - pc : kcs;
            const int last = pc + kc >= K;
            pack_a(kr, j->A, j->lda, j->ta, ic, mc, pc, kc, abuf);
            /* The first block along K applies beta and the bias; later ones accumulate. */
            const float beta = pc == 0 ? j->beta : 1.0f;
            const float *bias = pc == 0 ? j->bias : NULL;
            for (int jc = n0; jc < n1; jc += ncmax) {
                const int nc = n1 - jc < ncmax ? n1 - jc : ncmax;
                if (bbuf) pack_b(kr, j->B, j->ldb, j->tb, pc, kc, jc, nc, bbuf);
                for (int ir = 0; ir < mc; ir += mr) {
                    const float *ap = abuf + (int64_t)ir * kcs;
                    float *crow = j->C + (int64_t)(ic + ir) * j->ldc;
                    const int mv = mc - ir < mr ? mc - ir : mr;
                    for (int jr = 0; jr < nc; jr += nr) {
                        const int col = jc + jr;
                        const float *bp;
                        int64_t ldbk = nr;
                        if (j->Bp) bp = j->Bp + (int64_t)(col / nr) * K * nr + (int64_t)pc * nr;
                        else if (j->direct) bp = j->B + (int64_t)pc * j->ldb + col, ldbk = j->ldb;
                        else bp = bbuf + (int64_t)jr * kc;
                        const dbt_gemm_epi e = {j->alpha, beta, bias ? bias + col : NULL};
                        kr->kern(kc, ap, bp, ldbk, crow + col, j->ldc, mv, nc - jr < nr ? nc - jr : nr, &e);
                    }
                    /* The activation while the strip of C just written is still in cache. */
                    if (last && j->act != DBT_GEMM_NO_ACT)
                        for (int i = 0; i < mv; i++)
                            dbt_activation_forward((dbt_activation)j->act, crow + (int64_t)i * j->ldc + jc, nc);
                }
            }
        }
    }
}

static void gemm_part(void *arg, int t, int n) {
    const gemm_job *j = arg;
    const int tile = j->split_m ? j->kr->mr : j->kr->nr, len = j->split_m ? j->M : j->N;
    const int64_t tiles = (len + tile - 1) / tile;
    int lo = (int)(tiles * t / n * tile), hi = (int)(tiles * (t + 1) / n * tile);
    if (hi > len) hi = len;
    if (lo >= hi) return;
    if (j->split_m) gemm_block(j, lo, hi, 0, j->N);
    else gemm_block(j, 0, j->M, lo, hi);
}

/* Below this many multiply-adds a GEMM runs on one thread: waking a worker and splitting the
 * packing would cost more than the second core gains (about 20 µs of work). */
#define MIN_PARALLEL_MACS (2 * 1000 * 1000)

static void gemm(int M, int N, int K, float alpha, const float *A, int64_t lda, int ta, const float *B,
                 int64_t ldb, int tb, const dbt_packed_b *Bp, float beta, float *C, int64_t ldc, const float *bias,
                 int act) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { /* C = beta·C + bias: BLAS reads no C when beta is 0 */
        for (int i = 0; i < M; i++) {
            float *c = C + (int64_t)i * ldc;
            for (int jj = 0; jj < N; jj++) c[jj] = (beta != 0.0f ? beta * c[jj] : 0.0f) + (bias ? bias[jj] : 0.0f);
            if (act != DBT_GEMM_NO_ACT) dbt_activation_forward((dbt_activation)act, c, N);
        }
        return;
    }
    gemm_job j = {.kr = kernel(), .M = M, .N = N, .K = K, .A = A, .lda = lda, .ta = ta, .B = B, .ldb = ldb,
                  .tb = tb, .C = C, .ldc = ldc, .alpha = alpha, .beta = beta, .bias = bias, .act = act};
    if (Bp && Bp->kr == j.kr && Bp->N == N && Bp->K == K) j.Bp = Bp->data;
    /* A small row-major B is read in place: packing it would cost about as much as the product
     * (attention's T×T·T×64). A large one is packed so that its block stays compact in L2. */
    j.direct = !j.Bp && !tb && j.kr->direct_b && (int64_t)K * N <= 64 * 1024;

    const int64_t tiles_m = (M + j.kr->mr - 1) / j.kr->mr, tiles_n = (N + j.kr->nr - 1) / j.kr->nr;
    int nt = dbt_pool_threads();
    /* Inside a pool part (attention runs one head per part) the product is that part's work:
     * splitting it would only run the pieces one after the other, each repacking. */
    if ((double)M * N * K < MIN_PARALLEL_MACS || dbt_pool_in_task()) nt = 1;
    j.split_m = tiles_m >= 4 * nt || tiles_m >= tiles_n;
    const int64_t tiles = j.split_m ? tiles_m : tiles_n;
    if (nt > tiles) nt = (int)tiles;
    if (nt <= 1) gemm_part(&j, 0, 1);
    else dbt_pool_run(gemm_part, &j, nt);
}

/* ---- the public entry points --------------------------------------------------------------- */

void dbt_sgemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    gemm(M, N, K, alpha, A, lda, 0, B, ldb, 1, NULL, beta, C, ldc, NULL, DBT_GEMM_NO_ACT);
}

void dbt_sgemm_nn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    gemm(M, N, K, alpha, A, lda, 0, B, ldb, 0, NULL, beta, C, ldc, NULL, DBT_GEMM_NO_ACT);
}

void dbt_sgemm_tn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    gemm(M, N, K, alpha, A, lda, 1, B, ldb, 0, NULL, beta, C, ldc, NULL, DBT_GEMM_NO_ACT);
}

void dbt_linear_forward(const float *x, int M, int K, const float *W, const float *b, int N, float *y) {
    gemm(M, N, K, 1.0f, x, K, 0, W, K, 1, scoped_packed(W, N, K), 0.0f, y, N, b, DBT_GEMM_NO_ACT);
}

void dbt_linear_forward_ex(const float *x, int M, int K, const float *W, const dbt_packed_b *Wp, const float *b,
                           int N, int act, float *y) {
    if (!Wp) Wp = scoped_packed(W, N, K);
    gemm(M, N, K, 1.0f, x, K, 0, Wp && !W ? Wp->W : W, K, 1, Wp, 0.0f, y, N, b, act);
}
