/* fill_mask.c — the fill-mask pipeline: for each [MASK] of a text, the top k tokens by
 * probability, each with the text it would make. As transformers does: with one mask the
 * sequence is decoded without special tokens and the result is a list; with several masks each
 * gets its own list (the other masks stay visible in "sequence"). */
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "tasks.h"

int dbt_task_fill_mask(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out) {
    const dbt_tokenizer *tok = m->tok;
    const int32_t mask_id = dbt_tokenizer_special_ids(tok).mask;
    if (mask_id < 0) return dbt_set_error("the tokenizer has no mask token");
    dbt_encoding *encs;
    if (dbt_task_encode(m, in, n, o->max_length, &encs)) return -1;
    int32_t rows = 0;
    for (int i = 0; i < n; i++) {
        int masks = 0;
        for (int t = 0; t < encs[i].n; t++) masks += encs[i].ids[t] == mask_id;
        if (!masks) {
            dbt_encodings_free(encs, n);
            return dbt_set_error("input %d: no mask token ([MASK]) found", i);
        }
        rows += encs[i].n;
    }
    uint8_t *sel = calloc((size_t)rows, 1);
    if (!sel) { dbt_encodings_free(encs, n); return dbt_set_error("out of memory"); }
    for (int i = 0, r = 0; i < n; r += encs[i].n, i++)
        for (int t = 0; t < encs[i].n; t++) sel[r + t] = encs[i].ids[t] == mask_id;
    dbt_forward_opts fo = {1, sel};
    dbt_output out;
    int rc = dbt_task_forward(m, encs, n, o->batch_size, &fo, &out);
    free(sel);
    if (rc) { dbt_encodings_free(encs, n); return -1; }

    const int V = out.logits_cols;
    const int k = o->top_k < 1 ? 5 : (o->top_k > V ? V : o->top_k);
    float *probs = malloc((size_t)V * sizeof *probs);
    int32_t *seq = NULL;
    if (!probs) rc = dbt_set_error("out of memory");
    for (int i = 0; i < n && rc == 0; i++) {
        const dbt_encoding *e = &encs[i];
        int masks = 0;
        for (int t = 0; t < e->n; t++) masks += e->ids[t] == mask_id;
        int32_t *s = realloc(seq, (size_t)e->n * sizeof *seq);
        if (!s) { rc = dbt_set_error("out of memory"); break; }
        seq = s;
        dbt_jw w = {0};
        if (o->raw) dbt_jw_lit(&w, "{\"result\":");
        if (masks > 1) dbt_jw_lit(&w, "[");
        int first_mask = 1;
        for (int t = 0; t < e->n && rc == 0; t++) {
            if (e->ids[t] != mask_id) continue;
            const float *logits = out.logits + (int64_t)(out.row_start[i] + t) * V;
            memcpy(probs, logits, (size_t)V * sizeof *probs);
            dbt_task_softmax(probs, V);
            int *order = dbt_task_argsort_desc(probs, V);
            if (!order) { rc = dbt_set_error("out of memory"); break; }
            if (!first_mask) dbt_jw_lit(&w, ",");
            first_mask = 0;
            dbt_jw_lit(&w, "[");
            for (int j = 0; j < k && rc == 0; j++) {
                int32_t id = order[j];
                memcpy(seq, e->ids, (size_t)e->n * sizeof *seq);
                seq[t] = id;
                int32_t len = e->n;
                if (dbt_tokenizer_special_ids(tok).pad >= 0) { /* padding never reaches the text */
                    int32_t kept = 0;
                    for (int32_t q = 0; q < len; q++)
                        if (seq[q] != dbt_tokenizer_special_ids(tok).pad) seq[kept++] = seq[q];
                    len = kept;
                }
                char *sequence = dbt_decode(tok, seq, len, masks == 1, 1);
                char *token_str = dbt_decode(tok, &id, 1, 0, 1);
                if (!sequence || !token_str) {
                    free(sequence);
                    free(token_str);
                    rc = -1;
                    break;
                }
                dbt_jw_lit(&w, j ? ",{\"score\":" : "{\"score\":");
                dbt_jw_float(&w, probs[id]);
                dbt_jw_lit(&w, ",\"token\":");
                dbt_jw_int(&w, id);
                dbt_jw_lit(&w, ",\"token_str\":");
                dbt_jw_str(&w, token_str, strlen(token_str));
                dbt_jw_lit(&w, ",\"sequence\":");
                dbt_jw_str(&w, sequence, strlen(sequence));
                dbt_jw_lit(&w, "}");
                free(sequence);
                free(token_str);
            }
            dbt_jw_lit(&w, "]");
            free(order);
        }
        if (masks > 1) dbt_jw_lit(&w, "]");
        if (o->raw) { /* the logits at each mask position */
            dbt_jw_lit(&w, ",\"logits\":[");
            int first = 1;
            for (int t = 0; t < e->n; t++) {
                if (e->ids[t] != mask_id) continue;
                if (!first) dbt_jw_lit(&w, ",");
                first = 0;
                dbt_task_json_floats(&w, out.logits + (int64_t)(out.row_start[i] + t) * V, V);
            }
            dbt_jw_lit(&w, "]}");
        }
        if (rc) { dbt_jw_free(&w); break; }
        if (!(json_out[i] = dbt_task_take(&w))) rc = dbt_set_error("out of memory");
    }
    if (rc)
        for (int i = 0; i < n; i++) { free(json_out[i]); json_out[i] = NULL; }
    free(seq);
    free(probs);
    dbt_output_free(&out);
    dbt_encodings_free(encs, n);
    return rc;
}
