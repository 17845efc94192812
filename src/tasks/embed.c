/* embed.c — sentence embeddings: pool the last hidden state over each sequence's tokens and
 * optionally L2-normalize, reading a sentence-transformers folder's modules.json,
 * <Pooling>/config.json and sentence_bert_config.json when present (all-MiniLM-L6-v2: mean
 * pooling, then Normalize, 256 tokens). Several pooling modes concatenate in the order
 * sentence-transformers uses: cls, max, mean, mean_sqrt_len. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/file.h"
#include "tasks.h"

enum { MODE_CLS = 1, MODE_MAX = 2, MODE_MEAN = 4, MODE_MEAN_SQRT = 8 };

typedef struct {
    int modes;      /* MODE_* bits */
    int normalize;
    int max_length; /* 0: none stated */
} st_config;

static cJSON *read_json(const char *path) {
    size_t len;
    char *t = dbt_read_file(path, 1u << 20, &len);
    if (!t) return NULL;
    cJSON *j = cJSON_ParseWithLength(t, len);
    free(t);
    if (!j) dbt_set_error("%s is not valid JSON", path);
    return j;
}

/* Reads the sentence-transformers module configuration; without one: mean, no normalization. */
static int load_st_config(const char *dir, st_config *c) {
    c->modes = MODE_MEAN;
    c->normalize = 0;
    c->max_length = 0;
    char path[4096];
    if (dbt_file_exists(dbt_path_join(path, sizeof path, dir, "sentence_bert_config.json"))) {
        cJSON *j = read_json(path);
        if (!j) return -1;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "max_seq_length");
        if (cJSON_IsNumber(v) && v->valuedouble > 0) c->max_length = (int)v->valuedouble;
        cJSON_Delete(j);
    }
    if (!dbt_file_exists(dbt_path_join(path, sizeof path, dir, "modules.json"))) return 0;
    cJSON *mods = read_json(path);
    if (!mods) return -1;
    int rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, mods) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type"), *p = cJSON_GetObjectItemCaseSensitive(e, "path");
        if (!cJSON_IsString(type)) continue;
        const char *t = type->valuestring;
        size_t tl = strlen(t);
        if (tl >= 9 && !strcmp(t + tl - 9, "Normalize")) c->normalize = 1;
        if (tl >= 7 && !strcmp(t + tl - 7, "Pooling") && cJSON_IsString(p)) {
            if (strstr(p->valuestring, "..")) { rc = dbt_set_error("modules.json: bad module path"); break; }
            char cfg[4096];
            snprintf(cfg, sizeof cfg, "%s/%s/config.json", dir, p->valuestring);
            cJSON *pc = read_json(cfg);
            if (!pc) { rc = -1; break; }
            static const struct { const char *key; int mode; } keys[] = {
                {"pooling_mode_cls_token", MODE_CLS}, {"pooling_mode_max_tokens", MODE_MAX},
                {"pooling_mode_mean_tokens", MODE_MEAN}, {"pooling_mode_mean_sqrt_len_tokens", MODE_MEAN_SQRT}};
            c->modes = 0;
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pc, keys[k].key))) c->modes |= keys[k].mode;
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pc, "pooling_mode_weightedmean_tokens")) ||
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pc, "pooling_mode_lasttoken"))) {
                rc = dbt_set_error("%s: weighted-mean and last-token pooling are not supported", cfg);
            } else if (!c->modes) {
                rc = dbt_set_error("%s: no pooling mode is enabled", cfg);
            }
            cJSON_Delete(pc);
            if (rc) break;
        }
    }
    cJSON_Delete(mods);
    return rc;
}

int dbt_task_embed(dbt_model *m, const dbt_input *in, int n, const dbt_pipeline_opts *o, char **json_out) {
    st_config sc;
    if (load_st_config(m->dir, &sc)) return -1;
    if (o->pooling == DBT_POOL_MEAN) sc.modes = MODE_MEAN;
    else if (o->pooling == DBT_POOL_CLS) sc.modes = MODE_CLS;
    else if (o->pooling == DBT_POOL_MAX) sc.modes = MODE_MAX;
    if (o->normalize >= 0) sc.normalize = o->normalize;
    int max_length = o->max_length > 0 ? o->max_length : sc.max_length;
    dbt_encoding *encs;
    if (dbt_task_encode(m, in, n, max_length, &encs)) return -1;
    dbt_forward_opts fo = {0, NULL}; /* the hidden state is all we need */
    dbt_output out;
    if (dbt_task_forward(m, encs, n, o->batch_size, &fo, &out)) {
        dbt_encodings_free(encs, n);
        return -1;
    }
    const int D = out.dim;
    int n_modes = !!(sc.modes & MODE_CLS) + !!(sc.modes & MODE_MAX) + !!(sc.modes & MODE_MEAN) + !!(sc.modes & MODE_MEAN_SQRT);
    float *v = malloc((size_t)D * n_modes * sizeof *v);
    int rc = v ? 0 : dbt_set_error("out of memory");
    for (int i = 0; i < n && rc == 0; i++) {
        const float *h = out.hidden + (int64_t)out.row_start[i] * D;
        const int T = out.row_start[i + 1] - out.row_start[i];
        float *p = v;
        if (sc.modes & MODE_CLS) { memcpy(p, h, (size_t)D * sizeof *p); p += D; }
        if (sc.modes & MODE_MAX) {
            for (int d = 0; d < D; d++) {
                float mx = h[d];
                for (int t = 1; t < T; t++) mx = fmaxf(mx, h[(int64_t)t * D + d]);
                p[d] = mx;
            }
            p += D;
        }
        if (sc.modes & (MODE_MEAN | MODE_MEAN_SQRT)) {
            float *sum = p;
            for (int d = 0; d < D; d++) {
                float s = 0;
                for (int t = 0; t < T; t++) s += h[(int64_t)t * D + d];
                sum[d] = s;
            }
            if (sc.modes & MODE_MEAN) {
                for (int d = 0; d < D; d++) p[d] = sum[d] / (float)T;
                p += D;
            }
            if (sc.modes & MODE_MEAN_SQRT) {
                if (sc.modes & MODE_MEAN) /* the sum was overwritten by the mean */
                    for (int d = 0; d < D; d++) p[d] = p[d - D] * (float)T / sqrtf((float)T);
                else
                    for (int d = 0; d < D; d++) p[d] = sum[d] / sqrtf((float)T);
                p += D;
            }
        }
        int len = (int)(p - v);
        if (sc.normalize) {
            double ss = 0;
            for (int d = 0; d < len; d++) ss += (double)v[d] * v[d];
            float norm = (float)sqrt(ss);
            if (norm < 1e-12f) norm = 1e-12f;
            for (int d = 0; d < len; d++) v[d] /= norm;
        }
        dbt_jw w = {0};
        dbt_jw_lit(&w, "{\"embedding\":");
        dbt_task_json_floats(&w, v, len);
        dbt_jw_lit(&w, "}");
        if (!(json_out[i] = dbt_task_take(&w))) rc = dbt_set_error("out of memory");
    }
    if (rc)
        for (int i = 0; i < n; i++) { free(json_out[i]); json_out[i] = NULL; }
    free(v);
    dbt_output_free(&out);
    dbt_encodings_free(encs, n);
    return rc;
}
