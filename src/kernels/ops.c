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
    case DBT_ACT_GELU: /* vectorized (vmath.c): erff per element is most of a forward's non-GEMM time */
        dbt_gelu_forward(x, n);
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
        dbt_softmax_row(xr, valid); /* vectorized (vmath.c) */
        for (int i = valid; i < n; i++) xr[i] = 0;
    }
}

/* ---- training: forward variants that keep what backward needs, and the backward passes ---- */

void dbt_layernorm_forward_train(const float *x, const float *residual, int rows, int n, const float *gamma,
                                 const float *beta, float eps, float *y, float *xhat, float *rstd) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (int64_t)r * n;
        const float *rr = residual ? residual + (int64_t)r * n : NULL;
        float *yr = y + (int64_t)r * n, *hr = xhat + (int64_t)r * n;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float v = rr ? xr[i] + rr[i] : xr[i];
            hr[i] = v;
            sum += v;
        }
        float mean = (float)(sum / n);
        double var = 0;
        for (int i = 0; i < n; i++) {
            float d = hr[i] - mean;
            var += (double)d * d;
        }
        float rs = (float)(1.0 / sqrt(var / n + eps));
        rstd[r] = rs;
        for (int i = 0; i < n; i++) {
            hr[i] = (hr[i] - mean) * rs;
            yr[i] = hr[i] * gamma[i] + beta[i];
        }
    }
}

/* y = γ·x̂ + β with x̂ = (x − μ)·rstd. Then dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) where g = dy·γ;
 * dγ += Σ dy·x̂, dβ += Σ dy. dx is written (not accumulated). */
void dbt_layernorm_backward(const float *dy, const float *xhat, const float *rstd, const float *gamma, int rows,
                            int n, float *dx, float *dgamma, float *dbeta) {
    for (int r = 0; r < rows; r++) {
        const float *dyr = dy + (int64_t)r * n, *hr = xhat + (int64_t)r * n;
        float *dxr = dx + (int64_t)r * n;
        double mg = 0, mgx = 0;
        for (int i = 0; i < n; i++) {
            float g = dyr[i] * gamma[i];
            mg += g;
            mgx += (double)g * hr[i];
            if (dgamma) dgamma[i] += dyr[i] * hr[i];
            if (dbeta) dbeta[i] += dyr[i];
        }
        float a = (float)(mg / n), b = (float)(mgx / n);
        for (int i = 0; i < n; i++) dxr[i] = rstd[r] * (dyr[i] * gamma[i] - a - hr[i] * b);
    }
}

/* dx = dy · act'(pre) (written), for the activations of the forward pass. */
void dbt_activation_backward(dbt_activation act, const float *pre, const float *dy, float *dx, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float x = pre[i], d;
        switch (act) {
        case DBT_ACT_GELU: { /* Φ(x) + x·φ(x) */
            float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
            float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
            d = cdf + x * pdf;
            break;
        }
        case DBT_ACT_RELU: d = x > 0 ? 1.0f : 0.0f; break;
        case DBT_ACT_GELU_TANH:
        case DBT_ACT_GELU_FAST: {
            const float c = 0.7978845608028654f;
            float u = c * (x + 0.044715f * x * x * x), t = tanhf(u);
            d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);
            break;
        }
        case DBT_ACT_QUICK_GELU: {
            float s = 1.0f / (1.0f + expf(-1.702f * x));
            d = s + x * 1.702f * s * (1.0f - s);
            break;
        }
        case DBT_ACT_SILU: {
            float s = 1.0f / (1.0f + expf(-x));
            d = s * (1.0f + x * (1.0f - s));
            break;
        }
        case DBT_ACT_TANH: {
            float t = tanhf(x);
            d = 1.0f - t * t;
            break;
        }
        default: d = 1.0f;
        }
        dx[i] = dy[i] * d;
    }
}

/* Softmax rows p; dx = p·(dy − Σ dy·p), written in place of dy. */
void dbt_softmax_backward_rows(const float *p, float *dy, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        const float *pr = p + (int64_t)r * n;
        float *dr = dy + (int64_t)r * n;
        double dot = 0;
        for (int i = 0; i < n; i++) dot += (double)dr[i] * pr[i];
        float fd = (float)dot;
        for (int i = 0; i < n; i++) dr[i] = pr[i] * (dr[i] - fd);
    }
}

/* Linear backward for y = x·Wᵀ + b: dx = dy·W (added to dx when accumulate, else written; skipped
 * when dx is NULL), dW += dyᵀ·x, db += Σ_rows dy. */
void dbt_linear_backward(const float *x, const float *dy, int M, int K, int N, const float *W, float *dx,
                         int accumulate, float *dW, float *db) {
    if (dx) dbt_sgemm_nn(M, K, N, 1.0f, dy, N, W, K, accumulate ? 1.0f : 0.0f, dx, K);
    if (dW) dbt_sgemm_tn(N, K, M, 1.0f, dy, N, x, K, 1.0f, dW, K);
    if (db)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) db[j] += dy[(int64_t)i * N + j];
}
