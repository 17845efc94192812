/* classify.c — the text-classification pipeline: sequence logits → scores (softmax, sigmoid or
 * none, chosen as transformers does from problem_type and the label count) → the top label, the
 * top k, or all labels sorted by score. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "tasks.h"

/* transformers: regression → none; multi-label or a single label → sigmoid; single-label or
 * several labels → softmax; otherwise none. */
static dbt_score_fn default_function(const dbt_model_info *info) {
    if (info->problem_type == DBT_PROBLEM_REGRESSION) return DBT_FN_NONE;
    if (info->problem_type == DBT_PROBLEM_MULTI_LABEL || info->n_labels == 1) return DBT_FN_SIGMOID;
    if (info->problem_type == DBT_PROBLEM_SINGLE_LABEL || info->n_labels > 1) return DBT_FN_SOFTMAX;
    return DBT_FN_NONE;
}

int dbt_task_classify(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out) {
    const dbt_model_info *info = dbt_model_get_info(m);
    dbt_encoding *encs;
    if (dbt_task_encode(m, in, n, o->max_length, &encs)) return -1;
    dbt_output out;
    if (dbt_task_forward(m, encs, n, o->batch_size, NULL, &out)) {
        dbt_encodings_free(encs, n);
        return -1;
    }
    const int L = info->n_labels;
    dbt_score_fn fn = o->function == DBT_FN_DEFAULT ? default_function(info) : o->function;
    float *scores = malloc((size_t)L * sizeof *scores);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const float *logits = out.logits + (int64_t)i * L;
        memcpy(scores, logits, (size_t)L * sizeof *scores);
        if (fn == DBT_FN_SOFTMAX) dbt_task_softmax(scores, L);
        else if (fn == DBT_FN_SIGMOID)
            for (int k = 0; k < L; k++) scores[k] = 1.0f / (1.0f + expf(-scores[k]));
        int *order = dbt_task_argsort_desc(scores, L);
        if (!order) { rc = dbt_set_error("out of memory"); break; }
        int k = o->top_k < 0 || o->top_k > L ? L : o->top_k;
        dbt_jw w = {0};
        if (o->raw) dbt_jw_lit(&w, "{\"result\":");
        if (o->top_k == 1) {
            const char *label = info->id2label[order[0]];
            dbt_jw_lit(&w, "{\"label\":");
            dbt_jw_str(&w, label, strlen(label));
            dbt_jw_lit(&w, ",\"score\":");
            dbt_jw_float(&w, scores[order[0]]);
            dbt_jw_lit(&w, "}");
        } else {
            dbt_jw_lit(&w, "[");
            for (int j = 0; j < k; j++) {
                const char *label = info->id2label[order[j]];
                dbt_jw_lit(&w, j ? ",{\"label\":" : "{\"label\":");
                dbt_jw_str(&w, label, strlen(label));
                dbt_jw_lit(&w, ",\"score\":");
                dbt_jw_float(&w, scores[order[j]]);
                dbt_jw_lit(&w, "}");
            }
            dbt_jw_lit(&w, "]");
        }
        if (o->raw) {
            dbt_jw_lit(&w, ",\"logits\":");
            dbt_task_json_floats(&w, logits, L);
            dbt_jw_lit(&w, "}");
        }
        free(order);
        if (!(json_out[i] = dbt_task_take(&w))) rc = dbt_set_error("out of memory");
    }
    if (rc)
        for (int i = 0; i < n; i++) { free(json_out[i]); json_out[i] = NULL; }
    free(scores);
    dbt_output_free(&out);
    dbt_encodings_free(encs, n);
    return rc;
}
