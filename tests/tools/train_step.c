/* train_step.c — one training step of a model on a fixed batch, for the parity tests against
 * PyTorch (tests/test_training_oracle.py). Dropout is off, as in the oracle's eval-mode step.
 *
 *   train_step MODEL_DIR BATCH.json OUT_DIR
 *
 * BATCH.json: {"texts": [...], "pairs": [...] (optional), and per head the labels:
 *   "labels": [...]            sequence classification (ints, or floats for regression /
 *                              a list of floats per text for multi-label)
 *   "token_labels": [[...]]    token classification and MLM, one per token incl. specials
 *   "start_positions", "end_positions": [...]   question answering
 *   "lr", "weight_decay", "max_grad_norm", "warmup_steps", "total_steps", "steps"}
 * Writes OUT_DIR/grads.safetensors (the gradients of the first step, under transformers'
 * parameter names), OUT_DIR/weights.safetensors (after `steps` AdamW updates on the same batch)
 * and prints {"loss": first-step loss, "losses": [...], "grad_norm": ...}. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "distilbert.h"
#include "model/safetensors.h"
#include "training/backprop.h"
#include "training/losses.h"
#include "training/optimizer.h"
#include "training/params.h"

static void die(const char *msg) {
    fprintf(stderr, "train_step: %s\n", msg);
    exit(1);
}

static double num(const cJSON *j, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static int write_tensors(const char *path, const dbt_params *p, const float *base) {
    dbt_st_write_tensor *t = calloc((size_t)p->n, sizeof *t);
    for (int i = 0; i < p->n; i++) {
        t[i].name = p->list[i].name;
        t[i].dtype = DBT_DT_F32;
        t[i].ndim = p->list[i].ndim;
        t[i].shape[0] = p->list[i].shape[0];
        t[i].shape[1] = p->list[i].shape[1];
        t[i].data = base + p->list[i].offset;
    }
    int rc = dbt_st_write(path, t, p->n, NULL);
    free(t);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 4) die("usage: train_step MODEL_DIR BATCH.json OUT_DIR");
    dbt_model *m = dbt_model_load(argv[1], DBT_HEAD_AUTO);
    if (!m) die(dbt_last_error());
    size_t len;
    char *text = dbt_read_file(argv[2], 1 << 26, &len);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j) die("cannot read the batch");
    const dbt_model_info *info = dbt_model_get_info(m);
    const dbt_tokenizer *tok = dbt_model_tokenizer(m);
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(j, "texts");
    const cJSON *pairs = cJSON_GetObjectItemCaseSensitive(j, "pairs");
    int n = cJSON_GetArraySize(texts);
    dbt_encoding *encs = calloc((size_t)n, sizeof *encs);
    for (int i = 0; i < n; i++) {
        dbt_encoding *e;
        const char *a = cJSON_GetArrayItem(texts, i)->valuestring;
        const char *b = pairs ? cJSON_GetArrayItem(pairs, i)->valuestring : NULL;
        if (dbt_encode(tok, a, strlen(a), b, b ? strlen(b) : 0, NULL, &e) != 1) die(dbt_last_error());
        encs[i] = e[0];
        free(e);
    }

    dbt_params p;
    if (dbt_params_init(&p, m)) die(dbt_last_error());
    dbt_adamw_cfg cfg = dbt_adamw_defaults();
    cfg.lr = (float)num(j, "lr", 1e-3);
    cfg.weight_decay = (float)num(j, "weight_decay", 0.01);
    cfg.max_grad_norm = (float)num(j, "max_grad_norm", 1.0);
    cfg.warmup_steps = (int64_t)num(j, "warmup_steps", 0);
    cfg.total_steps = (int64_t)num(j, "total_steps", 0);
    int steps = (int)num(j, "steps", 1);
    dbt_adamw opt;
    if (dbt_adamw_init(&opt, &p, &cfg)) die(dbt_last_error());

    /* labels, packed like the rows */
    int32_t rows = 0;
    for (int i = 0; i < n; i++) rows += encs[i].n;
    int32_t *row_labels = malloc((size_t)rows * sizeof *row_labels);
    uint8_t *mlm_sel = calloc((size_t)rows, 1);
    const cJSON *tl = cJSON_GetObjectItemCaseSensitive(j, "token_labels");
    for (int i = 0, r = 0; i < n; i++)
        for (int t = 0; t < encs[i].n; t++, r++) {
            const cJSON *v = tl ? cJSON_GetArrayItem(cJSON_GetArrayItem(tl, i), t) : NULL;
            row_labels[r] = v ? (int32_t)v->valuedouble : DBT_IGNORE_INDEX;
            mlm_sel[r] = row_labels[r] != DBT_IGNORE_INDEX;
        }
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
    int L = info->n_labels;
    int32_t *seq_labels = malloc((size_t)n * sizeof *seq_labels), *sp = malloc((size_t)n * sizeof *sp),
            *ep = malloc((size_t)n * sizeof *ep);
    float *targets = malloc((size_t)n * L * sizeof *targets);
    for (int i = 0; i < n; i++) {
        const cJSON *v = labels ? cJSON_GetArrayItem(labels, i) : NULL;
        if (cJSON_IsArray(v))
            for (int k = 0; k < L; k++) targets[i * L + k] = (float)cJSON_GetArrayItem(v, k)->valuedouble;
        else if (v) { seq_labels[i] = (int32_t)v->valuedouble; targets[i] = (float)v->valuedouble; }
        const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "start_positions"), i);
        const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "end_positions"), i);
        sp[i] = s ? (int32_t)s->valuedouble : 0;
        ep[i] = e ? (int32_t)e->valuedouble : 0;
    }
    int multi = labels && cJSON_IsArray(cJSON_GetArrayItem(labels, 0));

    printf("{\"losses\":[");
    double first_loss = 0, first_norm = 0;
    for (int step = 0; step < steps; step++) {
        dbt_train_cache *cache = NULL;
        dbt_train_out out;
        if (dbt_train_forward(m, encs, n, info->head == DBT_HEAD_MLM ? mlm_sel : NULL, 0, NULL, &cache, &out))
            die(dbt_last_error());
        float *d = malloc((size_t)(out.logits_rows ? out.logits_rows : 1) * out.logits_cols * sizeof *d);
        double loss = 0;
        switch (info->head) {
        case DBT_HEAD_SEQ_CLS:
            if (L == 1) loss = dbt_loss_mse(out.logits, targets, n, 1.0f, d);
            else if (multi) loss = dbt_loss_bce_logits(out.logits, targets, (int64_t)n * L, 1.0f, d);
            else loss = dbt_loss_cross_entropy(out.logits, n, L, seq_labels, 1.0f, d, NULL);
            break;
        case DBT_HEAD_TOKEN_CLS:
            loss = dbt_loss_cross_entropy(out.logits, rows, L, row_labels, 1.0f, d, NULL);
            break;
        case DBT_HEAD_MLM: {
            int32_t *sel_labels = malloc((size_t)(out.logits_rows ? out.logits_rows : 1) * sizeof *sel_labels);
            for (int i = 0; i < out.logits_rows; i++) sel_labels[i] = row_labels[out.mlm_rows[i]];
            loss = dbt_loss_cross_entropy(out.logits, out.logits_rows, out.logits_cols, sel_labels, 1.0f, d, NULL);
            free(sel_labels);
            break;
        }
        case DBT_HEAD_QA:
            loss = dbt_loss_qa(out.logits, n, out.row_start, sp, ep, 1.0f, d);
            break;
        default:
            die("the model has no head to train");
        }
        dbt_params_zero_grad(&p);
        if (dbt_train_backward(m, &p, cache, d, NULL)) die(dbt_last_error());
        free(d);
        dbt_train_cache_free(cache);
        if (step == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/grads.safetensors", argv[3]);
            if (write_tensors(path, &p, p.grad)) die(dbt_last_error());
            first_loss = loss;
        }
        double norm = dbt_adamw_step(&opt, &p);
        if (step == 0) first_norm = norm;
        printf("%s%.10g", step ? "," : "", loss);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/weights.safetensors", argv[3]);
    if (write_tensors(path, &p, p.data)) die(dbt_last_error());
    printf("],\"loss\":%.10g,\"grad_norm\":%.10g}\n", first_loss, first_norm);

    free(row_labels);
    free(mlm_sel);
    free(seq_labels);
    free(sp);
    free(ep);
    free(targets);
    dbt_encodings_free(encs, n);
    dbt_adamw_free(&opt);
    dbt_params_free(&p);
    cJSON_Delete(j);
    dbt_model_free(m);
    return 0;
}
