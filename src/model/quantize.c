/* quantize.c — dbt_quantize_folder: a reduced-precision copy of a model folder.
 *
 * Works on the safetensors directly, tensor by tensor, so that whatever the folder holds (every
 * head, tensors this engine does not use) survives:
 *   int8       the encoder's Linear weights (q, k, v, o and the two FFN layers of each layer, the
 *              ones linear.c runs in int8) become I8 [out, in] plus "<name>.weight_scale" F32
 *              [out], quantized as dbt_quantize_weights_s8 does; every other tensor is copied
 *              as it is. config.json gets quantization_config, which model_load.c checks.
 *   bf16, f16  every F32/F16/BF16 tensor is rounded (to nearest even) to the target type; the
 *              folder stays a plain Hugging Face one (config.json's torch_dtype says which).
 * The copy is one model.safetensors (shards are merged), written atomically, plus config.json
 * and the tokenizer and sentence-transformers files. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/error.h"
#include "../common/file.h"
#include "../kernels/kernels.h"
#include "../training/distill.h"
#include "safetensors.h"

typedef enum { Q_INT8, Q_BF16, Q_F16 } qmode;

static float f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        float f = ldexpf((float)man, -24); /* zero or subnormal */
        return sign ? -f : f;
    }
    bits = exp == 31 ? sign | 0x7F800000u | (man << 13) : sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Round to nearest even, as torch's .half(). */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0); /* inf, NaN */
    if (ax >= 0x477FF000u) return sign | 0x7C00;                                   /* ≥ 65520: inf */
    if (ax < 0x38800000u) { /* below 2⁻¹⁴: a subnormal, in units of 2⁻²⁴ (1024 is the smallest normal) */
        float v;
        memcpy(&v, &ax, 4);
        return sign | (uint16_t)nearbyintf(v * 16777216.0f);
    }
    return sign | (uint16_t)((ax - 0x38000000u + 0xFFFu + ((ax >> 13) & 1u)) >> 13);
}

/* The tensor's values as fp32 (malloc'd), or NULL: not a float type, or out of memory. */
static float *to_f32(const dbt_st_tensor *t) {
    if (t->dtype != DBT_DT_F32 && t->dtype != DBT_DT_F16 && t->dtype != DBT_DT_BF16) return NULL;
    float *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
    if (!out) return NULL;
    const uint8_t *src = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        if (t->dtype == DBT_DT_F32) { memcpy(&out[i], src + 4 * i, 4); continue; }
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        if (t->dtype == DBT_DT_F16) out[i] = f16_to_f32(h);
        else { uint32_t u = (uint32_t)h << 16; memcpy(&out[i], &u, 4); }
    }
    return out;
}

/* Is `name` the weight of one of the encoder's Linear layers that linear.c runs in int8? */
static int is_encoder_linear(const char *name) {
    static const char *const distil[] = {"attention.q_lin.weight", "attention.k_lin.weight", "attention.v_lin.weight",
                                         "attention.out_lin.weight", "ffn.lin1.weight", "ffn.lin2.weight"};
    static const char *const bert[] = {"attention.self.query.weight", "attention.self.key.weight",
                                       "attention.self.value.weight", "attention.output.dense.weight",
                                       "intermediate.dense.weight", "output.dense.weight"};
    if (!strncmp(name, "distilbert.", 11)) name += 11;
    else if (!strncmp(name, "bert.", 5)) name += 5;
    const char *const *suffixes;
    if (!strncmp(name, "transformer.layer.", 18)) name += 18, suffixes = distil;
    else if (!strncmp(name, "encoder.layer.", 14)) name += 14, suffixes = bert;
    else return 0;
    if (*name < '0' || *name > '9') return 0;
    while (*name >= '0' && *name <= '9') name++;
    if (*name++ != '.') return 0;
    for (int i = 0; i < 6; i++)
        if (!strcmp(name, suffixes[i])) return 1;
    return 0;
}

/* config.json with the quantization marked. malloc'd text, or NULL (error set). */
static char *config_text(const char *dir, qmode mode) {
    char path[4096];
    size_t len;
    char *text = dbt_read_file(dbt_path_join(path, sizeof path, dir, "config.json"), 1 << 24, &len);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); dbt_set_error("%s is not a JSON object", path); return NULL; }
    cJSON_DeleteItemFromObjectCaseSensitive(j, "quantization_config");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "torch_dtype");
    if (mode == Q_INT8) {
        cJSON *q = cJSON_AddObjectToObject(j, "quantization_config");
        cJSON_AddStringToObject(q, "quant_method", "distilbert.c");
        cJSON_AddStringToObject(q, "dtype", "int8");
        cJSON_AddStringToObject(q, "weights", "int8 symmetric per output channel (<name>.weight_scale)");
        cJSON_AddStringToObject(q, "activations", "uint8 asymmetric per token, dynamic");
        cJSON_AddStringToObject(j, "torch_dtype", "float32");
    } else {
        cJSON_AddStringToObject(j, "torch_dtype", mode == Q_BF16 ? "bfloat16" : "float16");
    }
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    if (!out) dbt_set_error("out of memory");
    return out;
}

static int copy_side_files(const char *dir, const char *out_dir) {
    static const char *const files[] = {
        "vocab.txt",   "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling/config.json",
    };
    static const char *const dirs[] = {"1_Pooling", "2_Normalize"};
    char from[4096], to[4096];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (dbt_is_dir(dbt_path_join(from, sizeof from, dir, dirs[i])) &&
            mkdir(dbt_path_join(to, sizeof to, out_dir, dirs[i]), 0755) != 0 && errno != EEXIST)
            return dbt_set_error("cannot create %s: %s", to, strerror(errno));
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (dbt_file_exists(dbt_path_join(from, sizeof from, dir, files[i])) &&
            dbt_copy_file(from, dbt_path_join(to, sizeof to, out_dir, files[i])))
            return -1;
    return 0;
}

int dbt_quantize_folder(const char *dir, const char *out_dir, const char *dtype) {
    qmode mode;
    if (!dtype) return dbt_set_error("quantize: no dtype");
    if (!strcmp(dtype, "int8")) mode = Q_INT8;
    else if (!strcmp(dtype, "bf16") || !strcmp(dtype, "bfloat16")) mode = Q_BF16;
    else if (!strcmp(dtype, "f16") || !strcmp(dtype, "fp16") || !strcmp(dtype, "float16")) mode = Q_F16;
    else return dbt_set_error("quantize: unknown dtype \"%s\" (int8, bf16 or f16)", dtype);
    struct stat a, b;
    if (stat(dir, &a) == 0 && stat(out_dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return dbt_set_error("quantize: the output folder is the input folder");

    dbt_safetensors st = {0};
    if (dbt_st_open_dir(&st, dir)) return -1;
    char *cfg = config_text(dir, mode);
    /* at most two tensors out per tensor in (a weight and its scales) */
    dbt_st_write_tensor *out = calloc((size_t)st.n_tensors * 2 + 1, sizeof *out);
    void **bufs = calloc((size_t)st.n_tensors * 2 + 1, sizeof *bufs);
    char **names = calloc((size_t)st.n_tensors + 1, sizeof *names);
    int n_out = 0, n_bufs = 0, n_names = 0, n_q = 0, rc = -1;
    char path[4096];
    if (!cfg || !out || !bufs || !names) { if (cfg) dbt_set_error("out of memory"); goto done; }

    for (int i = 0; i < st.n_tensors; i++) {
        const dbt_st_tensor *t = &st.tensors[i];
        dbt_st_write_tensor *w = &out[n_out++];
        w->name = t->name;
        w->dtype = t->dtype;
        w->ndim = t->ndim;
        memcpy(w->shape, t->shape, sizeof w->shape);
        w->data = t->data;
        if (t->dtype == DBT_DT_I8) {
            dbt_set_error("%s: tensor \"%s\" is already I8; quantize from the floating-point folder", dir, t->name);
            goto done;
        }
        if (t->dtype == DBT_DT_OTHER) {
            dbt_set_error("%s: tensor \"%s\" has dtype %s, which the writer does not know", dir, t->name, t->dtype_name);
            goto done;
        }
        const int is_float = t->dtype == DBT_DT_F32 || t->dtype == DBT_DT_F16 || t->dtype == DBT_DT_BF16;
        if (!is_float) continue; /* integer tensors (position_ids) as they are */
        if (mode == Q_INT8) {
            if (t->ndim != 2 || !is_encoder_linear(t->name)) continue;
            const int N = (int)t->shape[0], K = (int)t->shape[1];
            float *f = to_f32(t);
            int8_t *q = malloc((size_t)N * K + 1);
            float *s = malloc((size_t)N * sizeof *s + 1);
            char *sname = malloc(strlen(t->name) + 8);
            bufs[n_bufs++] = q;
            bufs[n_bufs++] = s;
            names[n_names++] = sname;
            if (!f || !q || !s || !sname) { free(f); dbt_set_error("out of memory"); goto done; }
            dbt_quantize_weights_s8(f, N, K, q, s);
            free(f);
            w->dtype = DBT_DT_I8;
            w->data = q;
            /* "x.weight" → "x.weight_scale" */
            sprintf(sname, "%s_scale", t->name);
            dbt_st_write_tensor *ws = &out[n_out++];
            ws->name = sname;
            ws->dtype = DBT_DT_F32;
            ws->ndim = 1;
            ws->shape[0] = N;
            ws->data = s;
            n_q++;
        } else {
            const dbt_dtype target = mode == Q_BF16 ? DBT_DT_BF16 : DBT_DT_F16;
            if (t->dtype == target) continue;
            float *f = to_f32(t);
            uint16_t *h = malloc((size_t)t->numel * 2 + 2);
            bufs[n_bufs++] = h;
            if (!f || !h) { free(f); dbt_set_error("out of memory"); goto done; }
            for (int64_t k = 0; k < t->numel; k++) h[k] = target == DBT_DT_BF16 ? dbt_fp32_to_bf16(f[k]) : f32_to_f16(f[k]);
            free(f);
            w->dtype = target;
            w->data = h;
        }
    }
    if (mode == Q_INT8 && n_q == 0) {
        dbt_set_error("%s: no encoder Linear weights found to quantize (is it a DistilBERT or BERT folder?)", dir);
        goto done;
    }
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        dbt_set_error("cannot create %s: %s", out_dir, strerror(errno));
        goto done;
    }
    if (dbt_st_write(dbt_path_join(path, sizeof path, out_dir, "model.safetensors"), out, n_out, "{\"format\": \"pt\"}") ||
        dbt_write_file_atomic(dbt_path_join(path, sizeof path, out_dir, "config.json"), cfg, strlen(cfg)) ||
        copy_side_files(dir, out_dir))
        goto done;
    rc = 0;
done:
    for (int i = 0; i < n_bufs; i++) free(bufs[i]);
    for (int i = 0; i < n_names; i++) free(names[i]);
    free(bufs);
    free(names);
    free(out);
    free(cfg);
    dbt_st_close(&st);
    return rc;
}
