/* optimizer.h — AdamW as torch.optim.AdamW (which transformers' Trainer uses), the linear
 * warmup/decay schedule of get_linear_schedule_with_warmup, and clipping by global norm. */
#ifndef DBT_OPTIMIZER_H
#define DBT_OPTIMIZER_H

#include <stdint.h>

#include "params.h"

typedef struct {
    float lr;             /* peak learning rate */
    float beta1, beta2, eps;
    float weight_decay;   /* decoupled; not applied to biases and LayerNorm weights */
    float max_grad_norm;  /* 0: no clipping */
    int64_t warmup_steps, total_steps;
} dbt_adamw_cfg;

typedef struct {
    dbt_adamw_cfg cfg;
    float *m, *v;         /* first and second moments, laid out like params->data */
    int64_t step;         /* updates done */
} dbt_adamw;

dbt_adamw_cfg dbt_adamw_defaults(void);
int dbt_adamw_init(dbt_adamw *o, const dbt_params *p, const dbt_adamw_cfg *cfg);
void dbt_adamw_free(dbt_adamw *o);
/* The learning rate of update number `step` (0-based), as LambdaLR applies it. */
float dbt_lr_at(const dbt_adamw_cfg *cfg, int64_t step);
/* Global L2 norm of the gradients (before clipping). */
double dbt_grad_norm(const dbt_params *p);
/* Clips, applies one update with the scheduled learning rate, advances the step. Returns the
 * gradient norm before clipping. */
double dbt_adamw_step(dbt_adamw *o, dbt_params *p);

#endif
