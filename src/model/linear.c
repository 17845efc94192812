/* linear.c — the encoder's Linear layers in the precision the model is set to.
 *
 * Only q, k, v, o, ff1 and ff2 of each layer change precision: they hold nearly all of the
 * encoder's multiply-adds. Embeddings, attention (QKᵀ, softmax, PV), LayerNorm and the heads stay
 * fp32 — they are cheap, and the heads and LayerNorms are where reduced precision would cost the
 * most accuracy for the least time.
 *
 * Each dbt_linear keeps its fp32 weights (w) and, when set to BF16 or INT8, the packed form the
 * kernel reads, built once by dbt_model_set_dtype. int8 weights that came quantized from the
 * folder are kept as they are (re-quantizing their dequantized copy could move a scale by an ulp
 * and change the results), and their fp32 w is made only when a dtype that reads it is set (then
 * kept: packed copies elsewhere may be keyed by its address); every other packed form is freed
 * when the model leaves its dtype. */
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../kernels/threadpool.h"
#include "model_internal.h"

#define N_ENCODER_LINEARS 6

static void encoder_linears(dbt_layer *L, dbt_linear *out[N_ENCODER_LINEARS]) {
    out[0] = &L->q;
    out[1] = &L->k;
    out[2] = &L->v;
    out[3] = &L->o;
    out[4] = &L->ff1;
    out[5] = &L->ff2;
}

void dbt_linear_apply(const dbt_linear *l, const float *x, int M, int act, float *y) {
    if (l->dtype == DBT_DTYPE_INT8 && l->i8) {
        dbt_linear_int8(x, M, l->n_in, l->i8, l->b, l->n_out, act, y);
    } else if (l->dtype == DBT_DTYPE_BF16 && l->bf16) {
        dbt_linear_bf16(x, M, l->n_in, l->bf16, l->b, l->n_out, act, y);
    } else if (act == DBT_GEMM_NO_ACT) {
        dbt_linear_forward(x, M, l->n_in, l->w, l->b, l->n_out, y);
    } else {
        dbt_linear_forward_ex(x, M, l->n_in, l->w, NULL, l->b, l->n_out, act, y);
    }
}

int dbt_linear_dequantize(dbt_linear *l) {
    if (l->w || !l->q8) return 0;
    const int64_t n_out = l->n_out, n_in = l->n_in;
    float *w = malloc((size_t)(n_out * n_in) * sizeof *w);
    if (!w) return -1;
    for (int64_t j = 0; j < n_out; j++)
        for (int64_t k = 0; k < n_in; k++) w[j * n_in + k] = (float)l->q8[j * n_in + k] * l->q8_scale[j];
    l->w = l->w_dequant = w;
    return 0;
}

int dbt_model_dequantize(dbt_model *m) {
    dbt_linear *ls[N_ENCODER_LINEARS];
    for (int l = 0; l < m->cfg.n_layers; l++) {
        encoder_linears(&m->w.layers[l], ls);
        for (int i = 0; i < N_ENCODER_LINEARS; i++)
            if (dbt_linear_dequantize(ls[i])) return dbt_set_error("out of memory (dequantizing the int8 weights)");
    }
    return 0;
}

/* Builds the form `dtype` needs, if missing (FP32 and BF16 read w). Returns 0, or -1 when out of
 * memory. */
static int make_form(dbt_linear *l, dbt_compute_dtype dtype) {
    if (dtype != DBT_DTYPE_INT8 && dbt_linear_dequantize(l)) return -1;
    if (dtype == DBT_DTYPE_BF16 && !l->bf16) {
        if (!(l->bf16 = dbt_bf16_pack(l->w, NULL, l->n_out, l->n_in))) return -1;
    } else if (dtype == DBT_DTYPE_INT8 && !l->i8) {
        int8_t *q = malloc((size_t)l->n_out * l->n_in);
        float *s = malloc((size_t)l->n_out * sizeof *s);
        if (q && s) {
            dbt_quantize_weights_s8(l->w, l->n_out, l->n_in, q, s);
            l->i8 = dbt_int8_pack(q, s, l->n_out, l->n_in);
        }
        free(q);
        free(s);
        if (!l->i8) return -1;
    }
    return 0;
}

/* The layers' forms are independent: built on the pool's threads, layer l by thread l mod n. */
typedef struct {
    dbt_model *m;
    dbt_compute_dtype dtype;
    _Atomic int failed;
} build_job;

static void build_part(void *arg, int t, int n) {
    build_job *j = arg;
    dbt_linear *ls[N_ENCODER_LINEARS];
    for (int l = t; l < j->m->cfg.n_layers; l += n) {
        encoder_linears(&j->m->w.layers[l], ls);
        for (int i = 0; i < N_ENCODER_LINEARS; i++)
            if (make_form(ls[i], j->dtype)) j->failed = 1;
    }
}

int dbt_model_set_dtype(dbt_model *m, dbt_compute_dtype dtype) {
    if (dtype != DBT_DTYPE_FP32 && dtype != DBT_DTYPE_BF16 && dtype != DBT_DTYPE_INT8)
        return dbt_set_error("unknown compute dtype %d", (int)dtype);
    dbt_linear *ls[N_ENCODER_LINEARS];
    if (dtype == DBT_DTYPE_INT8 && m->cfg.hidden_dim > 32768)
        return dbt_set_error("int8: a Linear layer with %d inputs overflows the int32 sums (at most 32768)",
                             m->cfg.hidden_dim);
    /* Build everything first: on failure the model stays as it was (the forms made so far are
     * kept for a later call). */
    build_job job = {m, dtype, 0};
    dbt_get_num_threads(); /* the default thread count, applied once */
    dbt_pool_run(build_part, &job, m->cfg.n_layers < dbt_pool_threads() ? m->cfg.n_layers : dbt_pool_threads());
    if (job.failed) return dbt_set_error("set_dtype(%s): out of memory", dbt_compute_dtype_name(dtype));
    for (int l = 0; l < m->cfg.n_layers; l++) {
        encoder_linears(&m->w.layers[l], ls);
        for (int i = 0; i < N_ENCODER_LINEARS; i++) {
            dbt_linear *lin = ls[i];
            lin->dtype = dtype;
            if (dtype != DBT_DTYPE_BF16) { dbt_bf16_free(lin->bf16); lin->bf16 = NULL; }
            if (dtype != DBT_DTYPE_INT8 && !lin->i8_from_file) { dbt_int8_free(lin->i8); lin->i8 = NULL; }
        }
    }
    m->dtype = dtype;
    m->info.dtype = dtype;
    return 0;
}

void dbt_model_free_lowp(dbt_model *m) {
    if (!m->w.layers) return;
    dbt_linear *ls[N_ENCODER_LINEARS];
    for (int l = 0; l < m->cfg.n_layers; l++) {
        encoder_linears(&m->w.layers[l], ls);
        for (int i = 0; i < N_ENCODER_LINEARS; i++) {
            dbt_bf16_free(ls[i]->bf16);
            dbt_int8_free(ls[i]->i8);
            free(ls[i]->w_dequant);
            ls[i]->bf16 = NULL;
            ls[i]->i8 = NULL;
            if (ls[i]->w == ls[i]->w_dequant) ls[i]->w = NULL;
            ls[i]->w_dequant = NULL;
        }
    }
}

static const char *const NAMES[] = {"fp32", "bf16", "int8"};

const char *dbt_compute_dtype_name(dbt_compute_dtype dtype) {
    return (unsigned)dtype < 3 ? NAMES[dtype] : "?";
}

int dbt_compute_dtype_parse(const char *name, dbt_compute_dtype *dtype) {
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, NAMES[i])) { *dtype = (dbt_compute_dtype)i; return 0; }
    if (name && !strcmp(name, "float32")) { *dtype = DBT_DTYPE_FP32; return 0; }
    return -1;
}
