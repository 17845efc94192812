/* distill_step.c — the distillation loss and its gradients on a fixed batch with fixed masks,
 * for the parity test against a PyTorch restatement of the reference distiller
 * (tests/test_distill.py); and the masking draws, for its statistics. Dropout is off.
 *
 *   distill_step TEACHER_DIR STUDENT_DIR BATCH.json OUT_DIR
 *     BATCH.json: {"ids": [[...], ...] (the masked input ids, [CLS] … [SEP] each),
 *                  "labels": [[...], ...] (the original id at masked positions, -100 elsewhere),
 *                  "temperature", "alpha_ce", "alpha_mlm", "alpha_mse", "alpha_cos",
 *                  "restrict_ce_to_mask": true|false}
 *     Writes OUT_DIR/grads.safetensors (the student's gradients, under transformers' names) and
 *     prints {"loss", "loss_ce", "loss_mlm", "loss_mse", "loss_cos", "mlm_acc"}.
 *
 *   distill_step --mask SPEC.json
 *     SPEC.json: {"ids": [...] (packed tokens), "vocab_size", "counts": {"id": n, ...},
 *                 "special": {"pad","unk","cls","sep","mask"}, "mask_prop", "word_mask",
 *                 "word_keep", "word_rand", "smoothing", "seed", "reps"}
 *     Prints one {"n", "ids", "labels"} line per draw. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "distilbert.h"
#include "model/safetensors.h"
#include "training/backprop.h"
#include "training/distill.h"
#include "training/losses.h"
#include "training/params.h"

static void die(const char *msg) {
    fprintf(stderr, "distill_step: %s\n", msg);
    exit(1);
}

static double num(const cJSON *j, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static cJSON *read_json(const char *path) {
    size_t len;
    char *text = dbt_read_file(path, 1 << 28, &len);
    cJSON *j = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    if (!j) die("cannot read the JSON input");
    return j;
}

static int write_grads(const char *path, const dbt_params *p) {
    dbt_st_write_tensor *t = calloc((size_t)p->n, sizeof *t);
    for (int i = 0; i < p->n; i++) {
        t[i].name = p->list[i].name;
        t[i].dtype = DBT_DT_F32;
        t[i].ndim = p->list[i].ndim;
        t[i].shape[0] = p->list[i].shape[0];
        t[i].shape[1] = p->list[i].shape[1];
        t[i].data = p->grad + p->list[i].offset;
    }
    int rc = dbt_st_write(path, t, p->n, NULL);
    free(t);
    return rc;
}

static void print_ints(const char *key, const int32_t *v, int64_t n) {
    printf("\"%s\":[", key);
    for (int64_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", v[i]);
    printf("]");
}

static int mask_mode(const char *spec_path) {
    cJSON *j = read_json(spec_path);
    const cJSON *ids_j = cJSON_GetObjectItemCaseSensitive(j, "ids"), *sp_j = cJSON_GetObjectItemCaseSensitive(j, "special");
    const cJSON *counts_j = cJSON_GetObjectItemCaseSensitive(j, "counts");
    const int V = (int)num(j, "vocab_size", 0);
    const int64_t R = cJSON_GetArraySize(ids_j);
    int32_t *ids = malloc((size_t)R * sizeof *ids), *out = malloc((size_t)R * sizeof *out),
            *labels = malloc((size_t)R * sizeof *labels);
    int64_t *counts = calloc((size_t)V, sizeof *counts);
    double *probs = malloc((size_t)V * sizeof *probs);
    for (int64_t r = 0; r < R; r++) ids[r] = (int32_t)cJSON_GetArrayItem(ids_j, (int)r)->valuedouble;
    const cJSON *e;
    cJSON_ArrayForEach(e, counts_j) counts[atoi(e->string)] = (int64_t)e->valuedouble;
    dbt_special_ids sp = {(int32_t)num(sp_j, "pad", -1), (int32_t)num(sp_j, "unk", -1), (int32_t)num(sp_j, "cls", -1),
                          (int32_t)num(sp_j, "sep", -1), (int32_t)num(sp_j, "mask", -1)};
    dbt_mask_cfg c = {num(j, "mask_prop", 0.15), num(j, "word_mask", 0.8), num(j, "word_keep", 0.1),
                      num(j, "word_rand", 0.1), num(j, "smoothing", 0.7)};
    if (dbt_mask_cfg_check(&c)) die(dbt_last_error());
    dbt_mlm_token_probs(counts, V, c.smoothing, &sp, probs);
    dbt_rng rng;
    dbt_rng_seed(&rng, (uint64_t)num(j, "seed", 1));
    for (int rep = 0, reps = (int)num(j, "reps", 1); rep < reps; rep++) {
        int64_t n = dbt_mlm_mask(&c, probs, V, sp.mask, ids, R, &rng, out, labels);
        if (n < 0) die(dbt_last_error());
        printf("{\"n\":%lld,", (long long)n);
        print_ints("ids", out, R);
        printf(",");
        print_ints("labels", labels, R);
        printf("}\n");
    }
    free(ids);
    free(out);
    free(labels);
    free(counts);
    free(probs);
    cJSON_Delete(j);
    return 0;
}

/* The batch's sequences (ids pointing into one packed array) and labels, packed alike. */
static int read_batch(const cJSON *j, dbt_encoding **encs_out, int32_t **ids_out, int32_t **labels_out, int32_t *rows) {
    const cJSON *ids_j = cJSON_GetObjectItemCaseSensitive(j, "ids"), *lab_j = cJSON_GetObjectItemCaseSensitive(j, "labels");
    const int n = cJSON_GetArraySize(ids_j);
    if (n <= 0) die("the batch is empty");
    int32_t R = 0;
    for (int i = 0; i < n; i++) R += cJSON_GetArraySize(cJSON_GetArrayItem(ids_j, i));
    dbt_encoding *encs = calloc((size_t)n, sizeof *encs);
    int32_t *ids = malloc((size_t)R * sizeof *ids), *labels = malloc((size_t)R * sizeof *labels);
    for (int i = 0, r = 0; i < n; i++) {
        const cJSON *row = cJSON_GetArrayItem(ids_j, i), *lab = cJSON_GetArrayItem(lab_j, i);
        encs[i].n = cJSON_GetArraySize(row);
        encs[i].ids = ids + r;
        for (int t = 0; t < encs[i].n; t++, r++) {
            ids[r] = (int32_t)cJSON_GetArrayItem(row, t)->valuedouble;
            labels[r] = (int32_t)cJSON_GetArrayItem(lab, t)->valuedouble;
        }
    }
    *encs_out = encs;
    *ids_out = ids;
    *labels_out = labels;
    *rows = R;
    return n;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--mask")) return mask_mode(argv[2]);
    if (argc != 5) die("usage: distill_step TEACHER_DIR STUDENT_DIR BATCH.json OUT_DIR | distill_step --mask SPEC.json");
    dbt_model *teacher = dbt_distill_load_teacher(argv[1]);
    if (!teacher) die(dbt_last_error());
    dbt_model *student = dbt_model_load_for_training(argv[2], DBT_HEAD_MLM, 0, NULL, 0, 0);
    if (!student) die(dbt_last_error());
    cJSON *j = read_json(argv[3]);
    dbt_distill_cfg cfg = {(float)num(j, "temperature", 2), (float)num(j, "alpha_ce", 5), (float)num(j, "alpha_mlm", 2),
                           (float)num(j, "alpha_mse", 0), (float)num(j, "alpha_cos", 1),
                           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "restrict_ce_to_mask"))};
    dbt_encoding *encs;
    int32_t *ids, *labels, R;
    const int n = read_batch(j, &encs, &ids, &labels, &R);

    dbt_params p;
    if (dbt_params_init(&p, student)) die(dbt_last_error());
    const int t_logits = teacher->info.head == DBT_HEAD_MLM && (cfg.alpha_ce > 0 || cfg.alpha_mse > 0);
    uint8_t *sel = malloc((size_t)R);
    dbt_distill_logit_rows(&cfg, t_logits, labels, R, sel);
    dbt_train_cache *cache = NULL;
    dbt_train_out out;
    if (dbt_train_forward(student, encs, n, sel, 0, NULL, &cache, &out)) die(dbt_last_error());
    dbt_output tout;
    dbt_forward_opts fo = {t_logits, sel};
    if (dbt_model_forward(teacher, encs, n, &fo, &tout)) die(dbt_last_error());
    float *d_logits = malloc((size_t)(out.logits_rows ? out.logits_rows : 1) * out.logits_cols * sizeof *d_logits);
    float *d_hidden = malloc((size_t)R * out.dim * sizeof *d_hidden);
    dbt_distill_terms t;
    if (dbt_distill_loss(&cfg, &out, &tout, labels, 1.0f, d_logits, d_hidden, &t)) die(dbt_last_error());
    dbt_params_zero_grad(&p);
    if (dbt_train_backward(student, &p, cache, out.logits_rows ? d_logits : NULL, d_hidden)) die(dbt_last_error());
    char path[4096];
    snprintf(path, sizeof path, "%s/grads.safetensors", argv[4]);
    if (write_grads(path, &p)) die(dbt_last_error());
    printf("{\"loss\":%.10g,\"loss_ce\":%.10g,\"loss_mlm\":%.10g,\"loss_mse\":%.10g,\"loss_cos\":%.10g,\"mlm_acc\":%.10g,"
           "\"logit_rows\":%d}\n",
           t.loss, t.ce, t.mlm, t.mse, t.cos, t.mlm_acc, out.logits_rows);

    free(d_logits);
    free(d_hidden);
    free(sel);
    dbt_output_free(&tout);
    dbt_train_cache_free(cache);
    dbt_params_free(&p);
    free(encs);
    free(ids);
    free(labels);
    cJSON_Delete(j);
    dbt_model_free(student);
    dbt_model_free(teacher);
    return 0;
}
