/* optimizer.c — the update, per element, in the order torch.optim.AdamW (foreach=False) does it:
 *   p ← p − lr·wd·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *   p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)                                         */
#include "optimizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"

dbt_adamw_cfg dbt_adamw_defaults(void) {
    dbt_adamw_cfg c = {5e-5f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f, 0, 0};
    return c;
}

int dbt_adamw_init(dbt_adamw *o, const dbt_params *p, const dbt_adamw_cfg *cfg) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->m = calloc((size_t)p->total, sizeof *o->m);
    o->v = calloc((size_t)p->total, sizeof *o->v);
    if (!o->m || !o->v) { dbt_adamw_free(o); return dbt_set_error("out of memory"); }
    return 0;
}

void dbt_adamw_free(dbt_adamw *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

float dbt_lr_at(const dbt_adamw_cfg *c, int64_t step) {
    double f;
    if (step < c->warmup_steps) f = (double)step / (double)(c->warmup_steps > 0 ? c->warmup_steps : 1);
    else if (c->total_steps <= 0) f = 1.0;
    else f = fmax(0.0, (double)(c->total_steps - step) / (double)fmax(1.0, (double)(c->total_steps - c->warmup_steps)));
    return (float)(c->lr * f);
}

double dbt_grad_norm(const dbt_params *p) {
    double s = 0;
    for (int i = 0; i < p->n; i++) {
        const float *g = p->grad + p->list[i].offset;
        double t = 0; /* per tensor, then summed: torch takes the norm of the per-tensor norms */
        for (int64_t k = 0; k < p->list[i].numel; k++) t += (double)g[k] * g[k];
        s += t;
    }
    return sqrt(s);
}

double dbt_adamw_step(dbt_adamw *o, dbt_params *p) {
    const dbt_adamw_cfg *c = &o->cfg;
    double norm = dbt_grad_norm(p);
    float clip = 1.0f;
    if (c->max_grad_norm > 0) {
        double coef = c->max_grad_norm / (norm + 1e-6);
        if (coef < 1.0) clip = (float)coef;
    }
    const float lr = dbt_lr_at(c, o->step);
    o->step++;
    const double t = (double)o->step;
    const float bc1 = (float)(1.0 - pow(c->beta1, t));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(c->beta2, t));
    const float step_size = lr / bc1;
    for (int i = 0; i < p->n; i++) {
        const dbt_param *x = &p->list[i];
        float *w = p->data + x->offset, *g = p->grad + x->offset, *m = o->m + x->offset, *v = o->v + x->offset;
        const float decay = x->decay ? lr * c->weight_decay : 0.0f;
        for (int64_t k = 0; k < x->numel; k++) {
            float gk = g[k] * clip;
            if (decay != 0.0f) w[k] -= decay * w[k];
            m[k] = c->beta1 * m[k] + (1.0f - c->beta1) * gk;
            v[k] = c->beta2 * v[k] + (1.0f - c->beta2) * gk * gk;
            float denom = sqrtf(v[k]) / bc2_sqrt + c->eps;
            w[k] -= step_size * m[k] / denom;
        }
    }
    return norm;
}
