/* params.h — a model's trainable parameters as one contiguous buffer, with the Hugging Face
 * name and shape of each tensor, and a gradient buffer of the same layout.
 *
 * After dbt_params_init, model->w points into params->data (the weights are copied out of the
 * read-only mapping), so inference on the model sees every update. params->grad is viewed
 * through params->g, a dbt_weights whose fields point at the matching gradients. */
#ifndef DBT_PARAMS_H
#define DBT_PARAMS_H

#include <stdint.h>

#include "../model/model_internal.h"

typedef struct {
    char name[128];    /* as transformers names it for the model's architecture class */
    int64_t offset;    /* into data / grad */
    int64_t numel;
    int ndim;
    int64_t shape[2];
    int decay;         /* weight decay applies (not biases, not LayerNorm) */
} dbt_param;

typedef struct {
    float *data, *grad;
    int64_t total;
    dbt_param *list;
    int n;
    dbt_weights g;     /* gradients, laid out like model->w */
    dbt_layer *g_layers;
} dbt_params;

/* Copies the model's weights into an owned buffer and points model->w at it. */
int dbt_params_init(dbt_params *p, dbt_model *m);
void dbt_params_free(dbt_params *p);
void dbt_params_zero_grad(dbt_params *p);
/* The architecture class name for config.json's "architectures" (e.g. DistilBertForMaskedLM). */
const char *dbt_architecture_name(dbt_arch arch, dbt_head head);

#endif
