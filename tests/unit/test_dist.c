/* test_dist.c — data-parallel training without a launcher: the one-rank semantics of dist.c
 * (what every plain run goes through), and the property the N-rank step rests on: the
 * distiller's loss computed slice by slice with the whole batch's normalizers
 * (dbt_distill_loss_part) sums to the loss and gradients of the whole batch. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "training/dist.h"
#include "training/distill.h"
#include "training/losses.h"

static void test_one_rank_without_a_launcher(void **state) {
    (void)state;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "PMIX_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    assert_int_equal(dbt_dist_init(NULL, NULL), 1);
    assert_int_equal(dbt_dist_rank(), 0);
    assert_int_equal(dbt_dist_size(), 1);
    assert_int_equal(dbt_dist_local_size(), 1);
    /* the whole global batch is the rank's slice */
    int64_t lo;
    int n;
    dbt_dist_shard(10, 4, &lo, &n);
    assert_int_equal(lo, 0);
    assert_int_equal(n, 4);
    dbt_dist_shard(3, 4, &lo, &n);
    assert_int_equal(n, 3);
    /* dropout draws from the shared generator itself: a plain run draws as it always did */
    dbt_rng shared, own;
    dbt_rng_seed(&shared, 7);
    assert_ptr_equal(dbt_dist_rng(&shared, &own, 123), &shared);
    float x[3] = {1, 2, 3};
    double y[2] = {4, 5};
    assert_int_equal(dbt_dist_allreduce_sum(x, 3), 0);
    assert_int_equal(dbt_dist_allreduce_sum_f64(y, 2), 0);
    assert_true(x[0] == 1 && x[2] == 3 && y[1] == 5);
    assert_int_equal(dbt_dist_bcast(x, sizeof x, 0), 0);
    assert_int_equal(dbt_dist_barrier(), 0);
    assert_int_equal(dbt_dist_any(0), 0);
    assert_int_equal(dbt_dist_any(5), 1);
    assert_int_equal(dbt_dist_agree(0), 0);
    assert_int_equal(dbt_dist_agree(-1), -1);
    dbt_dist_finalize(0);
}

static float *frand(int n, unsigned *seed) {
    float *v = malloc((size_t)n * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        v[i] = (float)((*seed >> 8) & 0xffff) / 65536.0f * 4.0f - 2.0f;
    }
    return v;
}

/* Two sequences (rows 0-1 and 2-5); rows 0, 2, 3, 5 have logits (the student's selection), of
 * which 0, 3, 5 carry a label. Rank 0's slice is sequence 0, rank 1's sequence 1. */
static void test_slices_sum_to_the_batch(void **state) {
    (void)state;
    enum { R = 6, D = 5, V = 9, NS = 4 };
    const int32_t row_start[3] = {0, 2, 6}, rows[NS] = {0, 2, 3, 5};
    const int32_t labels[R] = {4, DBT_IGNORE_INDEX, DBT_IGNORE_INDEX, 7, DBT_IGNORE_INDEX, 0};
    unsigned seed = 3;
    float *s = frand(NS * V, &seed), *t = frand(R * V, &seed), *hs = frand(R * D, &seed), *ht = frand(R * D, &seed);
    const struct {
        float ce, mlm, mse, cos;
        int restrict_, teacher_logits;
    } cases[] = {{5, 2, 0, 1, 0, 1}, {1, 0.5f, 0.25f, 2, 1, 1}, {0, 2, 0.5f, 1, 0, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const dbt_distill_cfg cfg = {2.0f, cases[k].ce, cases[k].mlm, cases[k].mse, cases[k].cos, cases[k].restrict_};
        /* the whole batch */
        dbt_train_out so = {2, row_start, R, D, hs, s, NS, V, rows};
        dbt_output to;
        memset(&to, 0, sizeof to);
        to.n_seqs = 2, to.n_rows = R, to.dim = D, to.hidden = ht;
        to.logits = cases[k].teacher_logits ? t : NULL, to.logits_cols = V;
        float dl[NS * V], dh[R * D], pl[NS * V], ph[R * D];
        dbt_distill_terms whole, part, sum;
        assert_int_equal(dbt_distill_loss(&cfg, &so, &to, labels, 0.5f, dl, dh, &whole), 0);
        /* the two slices, each normalized by the whole batch's rows and masked tokens */
        const dbt_distill_norm norm = {R, 3, cfg.restrict_ce_to_mask ? 3 : NS}; /* NS: the rows selected */
        memset(&sum, 0, sizeof sum);
        const struct { int32_t r0, nr, l0, nl; int32_t sel[3]; } slice[2] = {{0, 2, 0, 1, {0}}, {2, 4, 1, 3, {0, 1, 3}}};
        for (int p = 0; p < 2; p++) {
            const int32_t rs[2] = {0, slice[p].nr};
            dbt_train_out sp = {1, rs, slice[p].nr, D, hs + slice[p].r0 * D, s + slice[p].l0 * V, slice[p].nl, V,
                                slice[p].sel};
            dbt_output tp = to;
            tp.n_seqs = 1, tp.n_rows = slice[p].nr, tp.hidden = ht + slice[p].r0 * D;
            if (tp.logits) tp.logits = t + slice[p].r0 * V;
            assert_int_equal(dbt_distill_loss_part(&cfg, &sp, &tp, labels + slice[p].r0, 0.5f, &norm,
                                                   pl + slice[p].l0 * V, ph + slice[p].r0 * D, &part), 0);
            sum.loss += part.loss, sum.ce += part.ce, sum.mlm += part.mlm, sum.mse += part.mse, sum.cos += part.cos;
            sum.mlm_acc += part.mlm_acc;
        }
        assert_true(fabs(sum.loss - whole.loss) < 1e-6 * (1 + fabs(whole.loss)));
        assert_true(fabs(sum.ce - whole.ce) < 1e-6 && fabs(sum.mlm - whole.mlm) < 1e-6);
        assert_true(fabs(sum.mse - whole.mse) < 1e-6 && fabs(sum.cos - whole.cos) < 1e-6);
        assert_true(fabs(sum.mlm_acc - whole.mlm_acc) < 1e-12);
        for (int i = 0; i < NS * V; i++) assert_true(fabsf(pl[i] - dl[i]) <= 1e-6f * (1 + fabsf(dl[i])));
        for (int i = 0; i < R * D; i++) assert_true(fabsf(ph[i] - dh[i]) <= 1e-6f * (1 + fabsf(dh[i])));
    }
    free(s), free(t), free(hs), free(ht);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_rank_without_a_launcher),
        cmocka_unit_test(test_slices_sum_to_the_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
