/* ops.c — element-wise and row-wise ops: LayerNorm, activations, softmax. Sums are taken in
 * double where a row's statistics are formed, so results do not drift with the row length. */
#include <math.h>

#include "kernels.h"

void dbt_layernorm_forward(const float *x, const float *residual, int rows, int n, const float *gamma,
                           const float *beta, float eps, float *y) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (int64_t)r * n;
        const float *rr = residual ? residual + (int64_t)r * n : NULL;
        float *yr = y + (int64_t)r * n;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float v = rr ? xr[i] + rr[i] : xr[i];
            yr[i] = v;
            sum += v;
        }
        float mean = (float)(sum / n);
        double var = 0;
        for (int i = 0; i < n; i++) {
            float d = yr[i] - mean;
            var += (double)d * d;
        }
        float rstd = (float)(1.0 / sqrt(var / n + eps));
        for (int i = 0; i < n; i++) yr[i] = (yr[i] - mean) * rstd * gamma[i] + beta[i];
    }
}

void dbt_activation_forward(dbt_activation act, float *x, int64_t n) {
    switch (act) {
    case DBT_ACT_GELU:
        for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case DBT_ACT_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case DBT_ACT_GELU_TANH: /* 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        }
        break;
    case DBT_ACT_GELU_FAST: /* 0.5·x·(1 + tanh(x·0.7978845608·(1 + 0.044715·x²))) */
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            x[i] = 0.5f * v * (1.0f + tanhf(v * 0.7978845608f * (1.0f + 0.044715f * v * v)));
        }
        break;
    case DBT_ACT_QUICK_GELU: /* x·σ(1.702·x) */
        for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
        break;
    case DBT_ACT_SILU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
        break;
    case DBT_ACT_TANH:
        for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        break;
    }
}

void dbt_softmax_rows(float *x, int rows, int n, int valid) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (int64_t)r * n;
        float mx = -INFINITY;
        for (int i = 0; i < valid; i++) mx = xr[i] > mx ? xr[i] : mx;
        float sum = 0;
        for (int i = 0; i < valid; i++) {
            xr[i] = expf(xr[i] - mx);
            sum += xr[i];
        }
        float inv = 1.0f / sum;
        for (int i = 0; i < valid; i++) xr[i] *= inv;
        for (int i = valid; i < n; i++) xr[i] = 0;
    }
}
