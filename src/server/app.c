/* app.c — the served model: loading it once (the head its config names), the routes it can
 * serve, the input-length limit, and the /info document. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/file.h"
#include "../common/json_writer.h"
#include "server.h"

static const char *const ROUTE_PATHS[SRV_N_ROUTES] = {"/embed", "/predict", "/tokenize", "/v1/embeddings",
                                                       "/fill-mask", "/ner", "/qa"};

const char *srv_route_path(srv_route r) { return (unsigned)r < SRV_N_ROUTES ? ROUTE_PATHS[r] : "other"; }

srv_config srv_config_default(void) {
    srv_config c;
    memset(&c, 0, sizeof c);
    c.host = "127.0.0.1";
    c.port = 8080;
    c.max_batch_tokens = 16384;
    c.max_batch_requests = 256;
    c.max_concurrent = 512;
    c.max_client_batch_size = 32;
    c.payload_limit = 2000000;
    c.request_timeout = 60;
    c.shutdown_timeout = 30;
    return c;
}

static cJSON *read_json(const char *dir, const char *name) {
    char path[4096];
    dbt_path_join(path, sizeof path, dir, name);
    if (!dbt_file_exists(path)) return NULL;
    size_t len;
    char *t = dbt_read_file(path, 1u << 20, &len);
    if (!t) return NULL;
    cJSON *j = cJSON_ParseWithLength(t, len);
    free(t);
    return j;
}

/* sentence-transformers: the Pooling module's mode (for /info) and max_seq_length. */
static void read_st_config(srv_app *app, const char *dir, int *max_seq) {
    app->pooling = "mean";
    *max_seq = 0;
    cJSON *sb = read_json(dir, "sentence_bert_config.json");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sb, "max_seq_length");
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < 1e7) *max_seq = (int)v->valuedouble;
    cJSON_Delete(sb);
    cJSON *mods = read_json(dir, "modules.json");
    const cJSON *e;
    cJSON_ArrayForEach(e, mods) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type"), *p = cJSON_GetObjectItemCaseSensitive(e, "path");
        if (!cJSON_IsString(type) || !cJSON_IsString(p) || !strstr(type->valuestring, "Pooling") ||
            strstr(p->valuestring, ".."))
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/config.json", p->valuestring);
        cJSON *pc = read_json(dir, sub);
        static const struct { const char *key, *name; } modes[] = {
            {"pooling_mode_cls_token", "cls"}, {"pooling_mode_max_tokens", "max"},
            {"pooling_mode_mean_tokens", "mean"}, {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"}};
        for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++)
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pc, modes[k].key))) { app->pooling = modes[k].name; break; }
        cJSON_Delete(pc);
        break;
    }
    cJSON_Delete(mods);
}

int srv_app_init(srv_app *app, const srv_config *cfg) {
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    if (cfg->threads > 0) dbt_set_num_threads(cfg->threads);
    app->threads = dbt_get_num_threads();
    app->model = dbt_model_load(cfg->model_dir, DBT_HEAD_AUTO);
    if (!app->model) {
        fprintf(stderr, "distilbert serve: %s\n", dbt_last_error());
        return -1;
    }
    app->tok = dbt_model_tokenizer(app->model);
    if (!app->tok) {
        fprintf(stderr, "distilbert serve: %s has no tokenizer (vocab.txt or tokenizer.json)\n", cfg->model_dir);
        srv_app_free(app);
        return -1;
    }
    dbt_compute_dtype dt = DBT_DTYPE_FP32;
    if (cfg->dtype && (dbt_compute_dtype_parse(cfg->dtype, &dt) || dbt_model_set_dtype(app->model, dt))) {
        fprintf(stderr, "distilbert serve: --dtype %s: %s\n", cfg->dtype, *dbt_last_error() ? dbt_last_error() : "use fp32, bf16 or int8");
        srv_app_free(app);
        return -1;
    }
    app->info = dbt_model_get_info(app->model);
    if (cfg->model_id) {
        snprintf(app->model_id, sizeof app->model_id, "%.200s", cfg->model_id);
    } else {
        char d[4096];
        snprintf(d, sizeof d, "%s", cfg->model_dir);
        size_t n = strlen(d);
        while (n > 1 && d[n - 1] == '/') d[--n] = '\0';
        const char *base = strrchr(d, '/');
        snprintf(app->model_id, sizeof app->model_id, "%.200s", base ? base + 1 : d);
    }
    int st_max;
    read_st_config(app, cfg->model_dir, &st_max);
    int L = app->info->max_position_embeddings;
    int tok_max = dbt_tokenizer_model_max_length(app->tok);
    if (tok_max > 0 && tok_max < L) L = tok_max;
    if (st_max > 0 && st_max < L) L = st_max;
    if (cfg->max_input_length > 0 && cfg->max_input_length < L) L = cfg->max_input_length;
    app->max_input_length = L;

    dbt_head h = app->info->head;
    app->enabled[SRV_EMBED] = app->enabled[SRV_OPENAI] = app->enabled[SRV_TOKENIZE] = 1;
    app->enabled[SRV_PREDICT] = h == DBT_HEAD_SEQ_CLS;
    app->enabled[SRV_FILL_MASK] = h == DBT_HEAD_MLM && dbt_tokenizer_special_ids(app->tok).mask >= 0;
    app->enabled[SRV_NER] = h == DBT_HEAD_TOKEN_CLS;
    app->enabled[SRV_QA] = h == DBT_HEAD_QA;
    app->limits.max_client_batch_size = cfg->max_client_batch_size;

    app->metrics = srv_metrics_new();
    srv_queue_opts qo = {cfg->max_batch_tokens, cfg->max_batch_requests, cfg->max_concurrent};
    if (app->metrics) app->queue = srv_queue_new(app->model, &qo, app->metrics);
    if (!app->metrics || !app->queue) {
        fprintf(stderr, "distilbert serve: cannot start the inference thread\n");
        srv_app_free(app);
        return -1;
    }
    return 0;
}

void srv_app_free(srv_app *app) {
    srv_queue_free(app->queue);
    srv_metrics_free(app->metrics);
    dbt_model_free(app->model);
    app->queue = NULL;
    app->metrics = NULL;
    app->model = NULL;
}

char *srv_app_info_json(const srv_app *app, size_t *len) {
    const dbt_model_info *in = app->info;
    const srv_config *c = app->cfg;
    dbt_jw w = {0};
    dbt_jw_lit(&w, "{\"model_id\":");
    dbt_jw_str(&w, app->model_id, strlen(app->model_id));
    dbt_jw_lit(&w, ",\"model_dir\":");
    dbt_jw_str(&w, c->model_dir, strlen(c->model_dir));
    /* TEI's names: float32 (as before), bfloat16; int8 for dynamic quantization */
    dbt_jw_lit(&w, ",\"model_sha\":null,\"model_dtype\":");
    dbt_jw_lit(&w, in->dtype == DBT_DTYPE_BF16 ? "\"bfloat16\"" : in->dtype == DBT_DTYPE_INT8 ? "\"int8\"" : "\"float32\"");
    dbt_jw_lit(&w, ",\"model_type\":");
    if (in->head == DBT_HEAD_SEQ_CLS) { /* TEI: {"classifier": {"id2label", "label2id"}} */
        dbt_jw_lit(&w, "{\"classifier\":{\"id2label\":{");
        for (int i = 0; i < in->n_labels; i++) {
            char k[16];
            snprintf(k, sizeof k, "%d", i);
            if (i) dbt_jw_lit(&w, ",");
            dbt_jw_str(&w, k, strlen(k));
            dbt_jw_lit(&w, ":");
            dbt_jw_str(&w, in->id2label[i], strlen(in->id2label[i]));
        }
        dbt_jw_lit(&w, "},\"label2id\":{");
        for (int i = 0; i < in->n_labels; i++) {
            if (i) dbt_jw_lit(&w, ",");
            dbt_jw_str(&w, in->id2label[i], strlen(in->id2label[i]));
            dbt_jw_lit(&w, ":");
            dbt_jw_int(&w, i);
        }
        dbt_jw_lit(&w, "}}}");
    } else {
        dbt_jw_lit(&w, "{\"embedding\":{\"pooling\":");
        dbt_jw_str(&w, app->pooling, strlen(app->pooling));
        dbt_jw_lit(&w, "}}");
    }
    const char *family = in->arch == DBT_ARCH_BERT ? "bert" : "distilbert";
    dbt_jw_lit(&w, ",\"model_family\":");
    dbt_jw_str(&w, family, strlen(family));
    dbt_jw_lit(&w, ",\"architecture\":");
    dbt_jw_str(&w, in->architecture, strlen(in->architecture));
    dbt_jw_lit(&w, ",\"hidden_size\":");
    dbt_jw_int(&w, in->dim);
    dbt_jw_lit(&w, ",\"num_layers\":");
    dbt_jw_int(&w, in->n_layers);
    dbt_jw_lit(&w, ",\"num_parameters\":");
    dbt_jw_int(&w, in->n_params);
    dbt_jw_lit(&w, ",\"max_input_length\":");
    dbt_jw_int(&w, app->max_input_length);
    dbt_jw_lit(&w, ",\"max_concurrent_requests\":");
    dbt_jw_int(&w, c->max_concurrent);
    dbt_jw_lit(&w, ",\"max_batch_tokens\":");
    dbt_jw_int(&w, c->max_batch_tokens);
    dbt_jw_lit(&w, ",\"max_batch_requests\":");
    dbt_jw_int(&w, c->max_batch_requests);
    dbt_jw_lit(&w, ",\"max_client_batch_size\":");
    dbt_jw_int(&w, c->max_client_batch_size);
    dbt_jw_lit(&w, ",\"payload_limit\":");
    dbt_jw_int(&w, (long long)c->payload_limit);
    dbt_jw_lit(&w, ",\"request_timeout\":");
    dbt_jw_double(&w, c->request_timeout);
    dbt_jw_lit(&w, ",\"auto_truncate\":false,\"threads\":");
    dbt_jw_int(&w, app->threads);
    dbt_jw_lit(&w, ",\"version\":\"" DBT_VERSION "\",\"sha\":null,\"routes\":[");
    int first = 1;
    for (int r = 0; r < SRV_N_ROUTES; r++) {
        if (!app->enabled[r]) continue;
        if (!first) dbt_jw_lit(&w, ",");
        first = 0;
        dbt_jw_str(&w, ROUTE_PATHS[r], strlen(ROUTE_PATHS[r]));
    }
    dbt_jw_lit(&w, "]}");
    if (w.oom) { dbt_jw_free(&w); return NULL; }
    *len = w.n;
    return w.s;
}
