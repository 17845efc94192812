/* evaluate.h — dev-set evaluation of a loaded model (used by dbt_evaluate and during training). */
#ifndef DBT_EVALUATE_H
#define DBT_EVALUATE_H

#include "../model/model_internal.h"
#include "data.h"

typedef union {
    dbt_cls_data cls;
    dbt_ner_data ner;
    dbt_qa_data qa;
} dbt_eval_data;

/* Reads evaluation data with the model's labels. */
int dbt_eval_data_read(dbt_task task, const char *path, const dbt_model *m, const dbt_finetune_opts *o,
                       dbt_eval_data *d);
void dbt_eval_data_free(dbt_task task, dbt_eval_data *d);
/* Metrics as a JSON object in *json (malloc'd) and the main metric in *main. */
int dbt_eval_loaded(dbt_model *m, dbt_task task, const dbt_eval_data *d, const dbt_finetune_opts *o, double *main,
                    char **json);

#endif
