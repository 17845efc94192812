/* routes.c — the POST routes between the parsed body and the JSON answer: route checks, token
 * counts and the length limit (413, or truncation when asked), the job handed to the batching
 * queue, and each route's answer shape (TEI's for /embed, /predict, /tokenize, /v1/embeddings;
 * the pipelines' for /fill-mask, /ner, /qa). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_writer.h"
#include "server.h"

struct srv_call {
    srv_app *app;
    srv_route route;
    srv_request req;
    srv_job job;
    int *tokens;          /* per input, after truncation */
    long long total_tokens;
    double t_begin;
    void (*on_done)(void *ud);
    void *ud;
};

void srv_response_add_header(srv_response *r, const char *name, const char *fmt, ...) {
    if (r->n_headers >= SRV_MAX_HEADERS) return;
    snprintf(r->headers[r->n_headers][0], sizeof r->headers[0][0], "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->headers[r->n_headers][1], sizeof r->headers[0][1], fmt, ap);
    va_end(ap);
    r->n_headers++;
}

static void set_body(srv_response *r, int status, dbt_jw *w) {
    if (w->oom) {
        dbt_jw_free(w);
        srv_response_error(r, (srv_route)-1, 503, "overloaded", "out of memory");
        return;
    }
    r->status = status;
    r->body = w->s;
    r->len = w->n;
    r->content_type = "application/json";
    w->s = NULL;
    w->n = w->cap = 0;
}

void srv_response_error(srv_response *r, srv_route route, int status, const char *type, const char *message) {
    dbt_jw w = {0};
    if (route == SRV_OPENAI) { /* TEI's OpenAICompatErrorResponse */
        dbt_jw_lit(&w, "{\"message\":");
        dbt_jw_str(&w, message, strlen(message));
        dbt_jw_lit(&w, ",\"code\":");
        dbt_jw_int(&w, status);
        dbt_jw_lit(&w, ",\"type\":");
        dbt_jw_str(&w, type, strlen(type));
        dbt_jw_lit(&w, "}");
    } else {
        dbt_jw_lit(&w, "{\"error\":");
        dbt_jw_str(&w, message, strlen(message));
        dbt_jw_lit(&w, ",\"error_type\":");
        dbt_jw_str(&w, type, strlen(type));
        dbt_jw_lit(&w, "}");
    }
    free(r->body);
    r->body = NULL;
    if (w.oom) { /* last resort: a static-size body */
        dbt_jw_free(&w);
        r->body = strdup("{\"error\":\"out of memory\",\"error_type\":\"overloaded\"}");
        r->len = r->body ? strlen(r->body) : 0;
    } else {
        r->body = w.s;
        r->len = w.n;
    }
    r->status = status;
    r->content_type = "application/json";
}

static const char *const HEAD_NAMES[SRV_N_ROUTES] = {
    "", "a sequence-classification head (...ForSequenceClassification)", "", "",
    "a masked-LM head (...ForMaskedLM) and a mask token", "a token-classification head (...ForTokenClassification)",
    "a question-answering head (...ForQuestionAnswering)"};

/* ---- /tokenize: answered on the connection's thread, no model needed --------------------- */

static void tokenize(srv_app *app, const srv_request *rq, srv_response *resp) {
    dbt_encode_opts eo = dbt_encode_opts_default(app->tok);
    eo.add_special_tokens = rq->add_special_tokens;
    eo.max_length = 0; /* TEI's /tokenize does not truncate */
    eo.return_overflowing = 0;
    dbt_jw w = {0};
    dbt_jw_lit(&w, "[");
    for (int i = 0; i < rq->n; i++) {
        const char *text = rq->in[i].text;
        size_t len = strlen(text);
        dbt_encoding *e;
        int nw = dbt_encode(app->tok, text, len, NULL, 0, &eo, &e);
        if (nw < 0) {
            dbt_jw_free(&w);
            srv_response_error(resp, SRV_TOKENIZE, 422, "tokenizer", dbt_last_error());
            return;
        }
        /* code point index → byte offset (the text is valid UTF-8) */
        size_t n_cp = 0;
        for (size_t b = 0; b < len; b++) n_cp += ((unsigned char)text[b] & 0xC0) != 0x80;
        size_t *cb = malloc((n_cp + 1) * sizeof *cb);
        if (!cb) {
            dbt_encodings_free(e, nw);
            dbt_jw_free(&w);
            srv_response_error(resp, SRV_TOKENIZE, 503, "overloaded", "out of memory");
            return;
        }
        for (size_t b = 0, k = 0; b < len; b++)
            if (((unsigned char)text[b] & 0xC0) != 0x80) cb[k++] = b;
        cb[n_cp] = len;
        dbt_jw_lit(&w, i ? ",[" : "[");
        for (int t = 0; t < e[0].n; t++) {
            int special = e[0].special_tokens_mask[t];
            dbt_jw_lit(&w, t ? ",{\"id\":" : "{\"id\":");
            dbt_jw_int(&w, e[0].ids[t]);
            dbt_jw_lit(&w, ",\"text\":");
            if (special) {
                const char *tk = dbt_tokenizer_id_to_token(app->tok, e[0].ids[t]);
                dbt_jw_str(&w, tk ? tk : "", tk ? strlen(tk) : 0);
                dbt_jw_lit(&w, ",\"special\":true,\"start\":null,\"stop\":null}");
            } else {
                int32_t s = e[0].offsets[2 * t], x = e[0].offsets[2 * t + 1];
                size_t bs = s >= 0 && (size_t)s <= n_cp ? cb[s] : 0, bx = x >= 0 && (size_t)x <= n_cp ? cb[x] : bs;
                if (bx < bs) bx = bs;
                dbt_jw_str(&w, text + bs, bx - bs);
                dbt_jw_lit(&w, ",\"special\":false,\"start\":");
                dbt_jw_int(&w, (long long)bs);
                dbt_jw_lit(&w, ",\"stop\":");
                dbt_jw_int(&w, (long long)bx);
                dbt_jw_lit(&w, "}");
            }
        }
        dbt_jw_lit(&w, "]");
        free(cb);
        dbt_encodings_free(e, nw);
    }
    dbt_jw_lit(&w, "]");
    set_body(resp, 200, &w);
}

/* ---- inference routes ---------------------------------------------------------------------- */

static void job_done(srv_job *job, void *ud) {
    srv_call *c = ud;
    (void)job;
    c->on_done(c->ud);
}

static void call_free(srv_call *c) {
    if (!c) return;
    if (c->job.out) {
        for (int i = 0; i < c->job.n; i++) free(c->job.out[i]);
        free(c->job.out);
    }
    free(c->tokens);
    srv_request_free(&c->req);
    free(c);
}

/* Token counts (and the length limit): 0, or -1 with the error answer in resp. */
static int count_tokens(srv_app *app, srv_call *c, srv_response *resp) {
    const srv_request *rq = &c->req;
    const int L = app->max_input_length;
    const int32_t mask = dbt_tokenizer_special_ids(app->tok).mask;
    dbt_encode_opts eo = dbt_encode_opts_default(app->tok);
    eo.max_length = 0;
    eo.return_overflowing = 0;
    for (int i = 0; i < rq->n; i++) {
        const dbt_input *in = &rq->in[i];
        dbt_encoding *e;
        int nw = dbt_encode(app->tok, in->text, strlen(in->text), in->text_pair,
                            in->text_pair ? strlen(in->text_pair) : 0, &eo, &e);
        if (nw < 0) {
            srv_response_error(resp, c->route, 422, "tokenizer", dbt_last_error());
            return -1;
        }
        int n = e[0].n, has_mask = 0;
        if (c->route == SRV_FILL_MASK)
            for (int t = 0; t < n && t < L - 1; t++) has_mask |= e[0].ids[t] == mask;
        dbt_encodings_free(e, nw);
        if (c->route != SRV_QA && n > L) {
            if (!rq->truncate) {
                char msg[160];
                snprintf(msg, sizeof msg, "`inputs` must have less than %d tokens. Given: %d", L, n);
                srv_response_error(resp, c->route, 413, "validation", msg);
                return -1;
            }
            n = L;
        }
        if (c->route == SRV_FILL_MASK && !has_mask) {
            char msg[160];
            snprintf(msg, sizeof msg, "No mask_token (%s) found on the input%s",
                     dbt_tokenizer_id_to_token(app->tok, mask), rq->n > 1 ? " (one of the inputs)" : "");
            srv_response_error(resp, c->route, 422, "validation", msg);
            return -1;
        }
        c->tokens[i] = n;
        c->total_tokens += n;
    }
    return 0;
}

static dbt_task route_task(srv_route r) {
    switch (r) {
    case SRV_PREDICT: return DBT_TASK_CLASSIFY;
    case SRV_FILL_MASK: return DBT_TASK_FILL_MASK;
    case SRV_NER: return DBT_TASK_NER;
    case SRV_QA: return DBT_TASK_QA;
    default: return DBT_TASK_EMBED;
    }
}

int srv_call_begin(srv_app *app, srv_route route, const char *body, size_t len, int fd, void (*on_done)(void *ud),
                   void *ud, srv_call **call, srv_response *resp) {
    *call = NULL;
    if ((unsigned)route >= SRV_N_ROUTES) {
        srv_response_error(resp, route, 404, "not_found", "not found");
        return 0;
    }
    if (!app->enabled[route]) { /* TEI answers 424 when the model cannot serve the route */
        char msg[256];
        snprintf(msg, sizeof msg, "%s needs %s; the model is %s", srv_route_path(route), HEAD_NAMES[route],
                 app->info->architecture[0] ? app->info->architecture : "a bare encoder");
        srv_response_error(resp, route, 424, "backend", msg);
        return 0;
    }
    srv_error err;
    srv_request rq;
    if (srv_parse_request(route, body, len, &app->limits, &rq, &err)) {
        srv_response_error(resp, route, err.status, err.type, err.message);
        return 0;
    }
    if (route == SRV_TOKENIZE) {
        tokenize(app, &rq, resp);
        srv_request_free(&rq);
        return 0;
    }
    srv_call *c = calloc(1, sizeof *c);
    if (c) c->tokens = calloc((size_t)rq.n, sizeof *c->tokens);
    if (!c || !c->tokens) {
        free(c);
        srv_request_free(&rq);
        srv_response_error(resp, route, 503, "overloaded", "out of memory");
        return 0;
    }
    c->app = app;
    c->route = route;
    c->req = rq;
    c->t_begin = srv_now();
    c->on_done = on_done;
    c->ud = ud;
    if (count_tokens(app, c, resp)) {
        call_free(c);
        return 0;
    }
    srv_job *j = &c->job;
    j->task = route_task(route);
    j->opts = route == SRV_FILL_MASK || route == SRV_NER || route == SRV_QA ? rq.opts : dbt_pipeline_opts_default(j->task);
    j->opts.batch_size = 0;
    j->opts.max_length = route == SRV_QA ? rq.max_seq_len : app->max_input_length;
    if (route == SRV_EMBED || route == SRV_OPENAI) j->opts.normalize = rq.normalize;
    if (route == SRV_PREDICT) { /* every label, sorted by score, as TEI */
        j->opts.top_k = -1;
        j->opts.function = rq.raw_scores ? DBT_FN_NONE : DBT_FN_DEFAULT;
    }
    j->n = rq.n;
    j->in = c->req.in;
    j->tokens = c->tokens;
    j->deadline = app->cfg->request_timeout > 0 ? c->t_begin + app->cfg->request_timeout : 0;
    j->fd = fd;
    j->on_done = job_done;
    j->ud = c;
    int rc = srv_queue_submit(app->queue, j);
    if (rc) {
        if (rc == -1) srv_response_error(resp, route, 429, "overloaded", "Model is overloaded");
        else if (rc == -2) srv_response_error(resp, route, 503, "unhealthy", "the server is shutting down");
        else srv_response_error(resp, route, 503, "overloaded", "out of memory");
        call_free(c);
        return 0;
    }
    *call = c;
    return 1;
}

/* {"embedding":[...]} → [...] */
static void put_embedding(dbt_jw *w, const char *s) {
    const char *a = strchr(s, '['), *b = strrchr(s, ']');
    if (a && b && b > a) dbt_jw_raw(w, a, (size_t)(b - a + 1));
    else dbt_jw_lit(w, "[]");
}

static void put_base64(dbt_jw *w, const char *s) {
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(s, '[');
    unsigned char buf[3];
    int nb = 0;
    char quad[4];
    dbt_jw_lit(w, "\"");
    while (p && *p && *p != ']') {
        p++;
        char *end;
        float f = strtof(p, &end);
        if (end == p) break;
        p = end;
        unsigned char le[4];
        memcpy(le, &f, 4); /* x86-64 and aarch64 are little-endian, as the format wants */
        for (int k = 0; k < 4; k++) {
            buf[nb++] = le[k];
            if (nb == 3) {
                quad[0] = B64[buf[0] >> 2];
                quad[1] = B64[((buf[0] & 3) << 4) | (buf[1] >> 4)];
                quad[2] = B64[((buf[1] & 15) << 2) | (buf[2] >> 6)];
                quad[3] = B64[buf[2] & 63];
                dbt_jw_raw(w, quad, 4);
                nb = 0;
            }
        }
    }
    if (nb) {
        if (nb == 1) buf[1] = 0;
        quad[0] = B64[buf[0] >> 2];
        quad[1] = B64[((buf[0] & 3) << 4) | (buf[1] >> 4)];
        quad[2] = nb == 2 ? B64[(buf[1] & 15) << 2] : '=';
        quad[3] = '=';
        dbt_jw_raw(w, quad, 4);
    }
    dbt_jw_lit(w, "\"");
}

srv_job_status srv_call_finish(srv_app *app, srv_call *c, srv_response *resp) {
    srv_job *j = &c->job;
    srv_job_status st = j->status;
    if (st != SRV_JOB_OK) {
        char msg[320];
        switch (st) {
        case SRV_JOB_TIMEOUT:
            snprintf(msg, sizeof msg, "the request was not served within --request-timeout (%g s)",
                     app->cfg->request_timeout);
            srv_response_error(resp, c->route, 504, "timeout", msg);
            break;
        case SRV_JOB_SHUTDOWN:
            srv_response_error(resp, c->route, 503, "unhealthy", "the server is shutting down");
            break;
        case SRV_JOB_GONE: srv_response_error(resp, c->route, 499, "client_closed", "the client closed the connection"); break;
        default:
            snprintf(msg, sizeof msg, "Inference failed: %s", j->error);
            srv_response_error(resp, c->route, 424, "backend", msg);
        }
        call_free(c);
        return st;
    }
    for (int i = 0; i < j->n; i++)
        if (!j->out[i]) {
            srv_response_error(resp, c->route, 424, "backend", "Inference failed");
            call_free(c);
            return SRV_JOB_FAILED;
        }
    dbt_jw w = {0};
    switch (c->route) {
    case SRV_EMBED:
        dbt_jw_lit(&w, "[");
        for (int i = 0; i < j->n; i++) {
            if (i) dbt_jw_lit(&w, ",");
            put_embedding(&w, j->out[i]);
        }
        dbt_jw_lit(&w, "]");
        break;
    case SRV_OPENAI:
        dbt_jw_lit(&w, "{\"object\":\"list\",\"data\":[");
        for (int i = 0; i < j->n; i++) {
            dbt_jw_lit(&w, i ? ",{\"object\":\"embedding\",\"embedding\":" : "{\"object\":\"embedding\",\"embedding\":");
            if (c->req.base64) put_base64(&w, j->out[i]);
            else put_embedding(&w, j->out[i]);
            dbt_jw_lit(&w, ",\"index\":");
            dbt_jw_int(&w, i);
            dbt_jw_lit(&w, "}");
        }
        dbt_jw_lit(&w, "],\"model\":");
        dbt_jw_str(&w, app->model_id, strlen(app->model_id));
        dbt_jw_lit(&w, ",\"usage\":{\"prompt_tokens\":");
        dbt_jw_int(&w, c->total_tokens);
        dbt_jw_lit(&w, ",\"total_tokens\":");
        dbt_jw_int(&w, c->total_tokens);
        dbt_jw_lit(&w, "}}");
        break;
    default: /* /predict and the pipelines: the result, or a list of results */
        if (c->req.single) {
            dbt_jw_raw(&w, j->out[0], strlen(j->out[0]));
        } else {
            dbt_jw_lit(&w, "[");
            for (int i = 0; i < j->n; i++) {
                if (i) dbt_jw_lit(&w, ",");
                dbt_jw_raw(&w, j->out[i], strlen(j->out[i]));
            }
            dbt_jw_lit(&w, "]");
        }
    }
    set_body(resp, 200, &w);
    double now = srv_now();
    srv_response_add_header(resp, "x-compute-tokens", "%lld", c->total_tokens);
    srv_response_add_header(resp, "x-queue-time", "%.3f", j->queue_seconds * 1e3);
    srv_response_add_header(resp, "x-inference-time", "%.3f", j->infer_seconds * 1e3);
    srv_response_add_header(resp, "x-total-time", "%.3f", (now - c->t_begin) * 1e3);
    srv_response_add_header(resp, "x-batches", "%d", j->batches);
    call_free(c);
    return SRV_JOB_OK;
}
