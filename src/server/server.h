/* server.h — `distilbert serve`: an HTTP service in the manner of text-embeddings-inference.
 *
 *   http.c     libmicrohttpd: connections, bodies, suspend/resume, signals, graceful shutdown
 *   app.c      the loaded model: which routes it serves, limits, /info, /health
 *   routes.c   each route: validation, tokenization, the job for the queue, the JSON answer
 *   request.c  JSON body → srv_request (pure; fuzzed)
 *   queue.c    dynamic batching across requests, one inference thread
 *   metrics.c  /metrics (Prometheus)
 *   openapi.c  /openapi.json
 */
#ifndef DBT_SERVER_H
#define DBT_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

#include "distilbert.h"
#include "metrics.h"
#include "queue.h"
#include "request.h"

typedef struct {
    const char *model_dir;
    const char *model_id;        /* NULL: the folder's name */
    const char *host;            /* 127.0.0.1 */
    int port;                    /* 8080; 0: any free port (printed) */
    int max_batch_tokens;        /* 16384 */
    int max_batch_requests;      /* inputs per batch: 256 */
    int max_concurrent;          /* 512 requests in flight; more → 429 */
    int max_input_length;        /* 0: the model's */
    int max_client_batch_size;   /* 32 inputs per request; more → 413 */
    size_t payload_limit;        /* 2 MB bodies; more → 413 */
    int threads;                 /* inference threads; 0: all cores */
    const char *dtype;           /* "fp32" | "bf16" | "int8" for the encoder's Linear layers; NULL: as loaded */
    int http_threads;            /* connection threads; 0: min(4, cores) */
    double request_timeout;      /* seconds an inference request may wait for its answer; 0: none */
    double shutdown_timeout;     /* seconds SIGTERM waits for requests in flight: 30 */
    int verbose;                 /* log each request to stderr */
} srv_config;

srv_config srv_config_default(void);
/* Loads the model, serves until SIGTERM or SIGINT, finishes what is in flight. Returns the
 * process exit status. */
int srv_run(const srv_config *cfg);

/* ---- internal: the application behind the transport ------------------------------------ */

typedef struct {
    const srv_config *cfg;
    dbt_model *model;
    const dbt_tokenizer *tok;
    const dbt_model_info *info;
    char model_id[256];
    int max_input_length;        /* tokens, special tokens included */
    int enabled[SRV_N_ROUTES];
    const char *pooling;         /* "mean", "cls", "max" (for /info) */
    srv_parse_limits limits;
    srv_queue *queue;
    srv_metrics *metrics;
    int threads;                 /* inference threads (read once: the library's count is not atomic) */
    atomic_int draining;         /* set on SIGTERM */
} srv_app;

int srv_app_init(srv_app *app, const srv_config *cfg);
void srv_app_free(srv_app *app);
const char *srv_route_path(srv_route r);
/* The /info document (malloc'd). */
char *srv_app_info_json(const srv_app *app, size_t *len);

/* An answer for the transport. */
#define SRV_MAX_HEADERS 6
typedef struct {
    int status;
    char *body;                  /* malloc'd (may be NULL for an empty body) */
    size_t len;
    const char *content_type;
    int n_headers;
    char headers[SRV_MAX_HEADERS][2][48];
} srv_response;

void srv_response_error(srv_response *r, srv_route route, int status, const char *type, const char *message);
void srv_response_add_header(srv_response *r, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One inference request between its body and its answer. */
typedef struct srv_call srv_call;

/* Handles a POST body. Either answers at once (returns 0, *resp filled: errors, /tokenize), or
 * queues the work (returns 1, *call set): on_done(ud) is then called from a queue thread once the
 * answer can be made with srv_call_finish. fd: the client socket (-1: unknown). */
int srv_call_begin(srv_app *app, srv_route route, const char *body, size_t len, int fd, void (*on_done)(void *ud),
                   void *ud, srv_call **call, srv_response *resp);
/* Builds the answer of a finished call and frees it. Returns the job status. */
srv_job_status srv_call_finish(srv_app *app, srv_call *call, srv_response *resp);

#endif
