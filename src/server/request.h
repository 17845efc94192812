/* request.h — the JSON body of a POST request → a request struct, with every check that needs
 * no model: JSON syntax, types, shapes (TEI's and the HF Inference API's), batch-size limits,
 * UTF-8. Pure (no I/O, no globals): the fuzz harness calls it directly. */
#ifndef DBT_SRV_REQUEST_H
#define DBT_SRV_REQUEST_H

#include <stddef.h>

#include "distilbert.h"

/* The POST routes. */
typedef enum {
    SRV_EMBED = 0,   /* POST /embed          TEI */
    SRV_PREDICT,     /* POST /predict        TEI */
    SRV_TOKENIZE,    /* POST /tokenize       TEI */
    SRV_OPENAI,      /* POST /v1/embeddings  OpenAI, as TEI serves it */
    SRV_FILL_MASK,   /* POST /fill-mask      HF pipeline shapes */
    SRV_NER,         /* POST /ner */
    SRV_QA,          /* POST /qa */
    SRV_N_ROUTES
} srv_route;

/* An error answer: HTTP status, TEI's error_type, message. */
typedef struct {
    int status;
    const char *type; /* "validation" (413), "empty" (400), "invalid_request" (422), ... */
    char message[256];
} srv_error;

typedef struct {
    int max_client_batch_size; /* inputs per request; more → 413 */
} srv_parse_limits;

typedef struct {
    srv_route route;
    int n;                  /* inputs */
    dbt_input *in;          /* n inputs; the strings live in `json` */
    int single;             /* one input given bare (not in a list): the answer is not a list */
    int truncate;           /* "truncate": true → inputs over the length limit are truncated */
    int normalize;          /* /embed: default 1 (TEI) */
    int raw_scores;         /* /predict */
    int add_special_tokens; /* /tokenize: default 1 */
    int base64;             /* /v1/embeddings: encoding_format "base64" */
    dbt_pipeline_opts opts; /* /fill-mask, /ner, /qa: "parameters" over the pipeline defaults */
    int max_seq_len;        /* /qa: parameters.max_seq_len (0: unset) */
    void *json;             /* the parsed document (cJSON), owns the strings */
} srv_request;

/* Parses body[0..len) for `route`. Returns 0, or -1 with *err filled (and *req left empty). */
int srv_parse_request(srv_route route, const char *body, size_t len, const srv_parse_limits *lim,
                      srv_request *req, srv_error *err);
void srv_request_free(srv_request *req);

/* Fills *err; returns -1. */
int srv_fail(srv_error *err, int status, const char *type, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 1 when s[0..len) is well-formed UTF-8. */
int srv_utf8_valid(const char *s, size_t len);

#endif
