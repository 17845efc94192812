/* task_distill_step.c — the loss and gradients of one task-distillation step (`finetune --teacher`)
 * on a fixed batch, for the parity test against PyTorch (tests/test_task_distill.py). Dropout is
 * off, as in the oracle's eval-mode step. The loss is finetune's: alpha_task·task loss +
 * alpha_ce·soft-target loss (losses.h: dbt_loss_kl_soft, dbt_loss_qa_soft).
 *
 *   task_distill_step STUDENT_DIR TEACHER_DIR BATCH.json OUT_DIR
 *
 * BATCH.json: {"texts": [...], "pairs": [...] (optional), per head the labels:
 *   "labels": [...]                               sequence classification
 *   "token_labels": [[...]]                       token classification, one per token incl. specials
 *   "start_positions", "end_positions": [...]     question answering
 *   "alpha_ce", "alpha_task", "temperature"}
 * Writes OUT_DIR/grads.safetensors (the student's gradients under transformers' names) and prints
 * {"loss": ..., "task_loss": ..., "soft_loss": ...}. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "distilbert.h"
#include "model/safetensors.h"
#include "training/backprop.h"
#include "training/losses.h"
#include "training/params.h"

static void die(const char *msg) {
    fprintf(stderr, "task_distill_step: %s\n", msg);
    exit(1);
}

static double num(const cJSON *j, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

int main(int argc, char **argv) {
    if (argc != 5) die("usage: task_distill_step STUDENT_DIR TEACHER_DIR BATCH.json OUT_DIR");
    dbt_model *m = dbt_model_load(argv[1], DBT_HEAD_AUTO);
    if (!m) die(dbt_last_error());
    const dbt_model_info *info = dbt_model_get_info(m);
    dbt_model *teacher = dbt_model_load(argv[2], info->head);
    if (!teacher) die(dbt_last_error());
    size_t len;
    char *text = dbt_read_file(argv[3], 1 << 26, &len);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j) die("cannot read the batch");
    const float alpha_ce = (float)num(j, "alpha_ce", 0.5), alpha_task = (float)num(j, "alpha_task", 0.5),
                T = (float)num(j, "temperature", 2.0);
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
    int32_t rows = 0;
    for (int i = 0; i < n; i++) rows += encs[i].n;
    int32_t *row_labels = malloc((size_t)rows * sizeof *row_labels), *seq_labels = malloc((size_t)n * sizeof *seq_labels),
            *sp = malloc((size_t)n * sizeof *sp), *ep = malloc((size_t)n * sizeof *ep);
    const cJSON *tl = cJSON_GetObjectItemCaseSensitive(j, "token_labels");
    for (int i = 0, r = 0; i < n; i++)
        for (int t = 0; t < encs[i].n; t++, r++) {
            const cJSON *v = tl ? cJSON_GetArrayItem(cJSON_GetArrayItem(tl, i), t) : NULL;
            row_labels[r] = v ? (int32_t)v->valuedouble : DBT_IGNORE_INDEX;
        }
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "labels"), i);
        const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "start_positions"), i);
        const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "end_positions"), i);
        seq_labels[i] = v ? (int32_t)v->valuedouble : 0;
        sp[i] = s ? (int32_t)s->valuedouble : 0;
        ep[i] = e ? (int32_t)e->valuedouble : 0;
    }

    dbt_params p;
    if (dbt_params_init(&p, m)) die(dbt_last_error());
    dbt_params_zero_grad(&p);
    dbt_train_cache *cache = NULL;
    dbt_train_out out;
    if (dbt_train_forward(m, encs, n, NULL, 0, NULL, &cache, &out)) die(dbt_last_error());
    dbt_output tout;
    if (dbt_model_forward(teacher, encs, n, NULL, &tout)) die(dbt_last_error());
    float *d = malloc((size_t)out.logits_rows * out.logits_cols * sizeof *d);
    double task_loss, soft_loss;
    switch (info->head) { /* as dbt_finetune combines them */
    case DBT_HEAD_SEQ_CLS:
        task_loss = dbt_loss_cross_entropy(out.logits, n, out.logits_cols, seq_labels, alpha_task, d, NULL);
        soft_loss = dbt_loss_kl_soft(out.logits, tout.logits, out.logits_rows, out.logits_cols, out.logits_cols, T,
                                     alpha_ce, d);
        break;
    case DBT_HEAD_TOKEN_CLS:
        task_loss = dbt_loss_cross_entropy(out.logits, rows, out.logits_cols, row_labels, alpha_task, d, NULL);
        soft_loss = dbt_loss_kl_soft(out.logits, tout.logits, out.logits_rows, out.logits_cols, out.logits_cols, T,
                                     alpha_ce, d);
        break;
    case DBT_HEAD_QA:
        task_loss = dbt_loss_qa(out.logits, n, out.row_start, sp, ep, alpha_task, d);
        soft_loss = dbt_loss_qa_soft(out.logits, tout.logits, n, out.row_start, T, alpha_ce, d);
        break;
    default:
        die("the student has no classification, token-classification or QA head");
    }
    if (dbt_train_backward(m, &p, cache, d, NULL)) die(dbt_last_error());

    char path[4096];
    snprintf(path, sizeof path, "%s/grads.safetensors", argv[4]);
    dbt_st_write_tensor *wt = calloc((size_t)p.n, sizeof *wt);
    for (int i = 0; i < p.n; i++) {
        wt[i].name = p.list[i].name;
        wt[i].dtype = DBT_DT_F32;
        wt[i].ndim = p.list[i].ndim;
        wt[i].shape[0] = p.list[i].shape[0];
        wt[i].shape[1] = p.list[i].shape[1];
        wt[i].data = p.grad + p.list[i].offset;
    }
    if (dbt_st_write(path, wt, p.n, NULL)) die(dbt_last_error());
    printf("{\"loss\":%.10g,\"task_loss\":%.10g,\"soft_loss\":%.10g}\n", alpha_task * task_loss + alpha_ce * soft_loss,
           task_loss, soft_loss);

    free(wt);
    free(d);
    dbt_output_free(&tout);
    dbt_train_cache_free(cache);
    free(row_labels);
    free(seq_labels);
    free(sp);
    free(ep);
    dbt_encodings_free(encs, n);
    dbt_params_free(&p);
    cJSON_Delete(j);
    dbt_model_free(teacher);
    dbt_model_free(m);
    return 0;
}
