/* tasks.h — the pipelines behind dbt_pipeline_run, one file per task, and what they share. */
#ifndef DBT_TASKS_H
#define DBT_TASKS_H

#include "../common/json_writer.h"
#include "../model/model_internal.h"
#include "distilbert.h"

/* Each task: results for n inputs, json_out[i] a malloc'd JSON text. 0 or -1. */
int dbt_task_fill_mask(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out);
int dbt_task_classify(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out);
int dbt_task_ner(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out);
int dbt_task_qa(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out);
int dbt_task_embed(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out);

/* Encodes each input once (its first window), truncated to max_length tokens (0: the model's
 * max_position_embeddings) with a logged warning when that cuts a text. encs: n encodings,
 * free with dbt_encodings_free(encs, n). */
int dbt_task_encode(const dbt_model *m, const dbt_input *in, int n, int max_length, dbt_encoding **encs);
/* Runs the model over n encodings in chunks of batch_size and gathers one output, as if it were
 * one batch (row_start spans all n). */
int dbt_task_forward(dbt_model *m, const dbt_encoding *encs, int n, int batch_size, const dbt_forward_opts *fo,
                     dbt_output *out);
/* In place: softmax of v[0..n) in float, as numpy does it in the pipelines. */
void dbt_task_softmax(float *v, int n);
/* Indices of v[0..n) sorted by decreasing value (stable). Caller frees. */
int *dbt_task_argsort_desc(const float *v, int n);
/* Returns w's text as a malloc'd string (w is reset), or NULL on OOM. */
char *dbt_task_take(dbt_jw *w);
/* Appends [v0,v1,...] as JSON floats. */
void dbt_task_json_floats(dbt_jw *w, const float *v, int n);
/* Logs a warning through the callback set with dbt_set_log (nothing by default). */
void dbt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
