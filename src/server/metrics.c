/* metrics.c — counters and histograms behind /metrics (Prometheus text format 0.0.4). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/json_writer.h"
#include "metrics.h"

static const double LATENCY_BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double SIZE_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
static const double TOKEN_BUCKETS[] = {16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
#define NB(a) (sizeof a / sizeof a[0])

typedef struct {
    const double *bounds;
    int n;
    unsigned long long counts[16]; /* n buckets + the implicit +Inf */
    unsigned long long total;
    double sum;
} histogram;

typedef struct {
    const char *route;
    int status;
    unsigned long long count;
} request_count;

typedef struct {
    const char *route;
    histogram latency;
} route_latency;

struct srv_metrics {
    pthread_mutex_t mu;
    request_count *req;
    int n_req, cap_req;
    route_latency *lat;
    int n_lat, cap_lat;
    histogram batch_inputs, batch_tokens, batch_seconds, queue_seconds;
};

static void hist_init(histogram *h, const double *bounds, int n) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n = n;
}

static void hist_add(histogram *h, double v) {
    int i = 0;
    while (i < h->n && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->total++;
    h->sum += v;
}

srv_metrics *srv_metrics_new(void) {
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    hist_init(&m->batch_inputs, SIZE_BUCKETS, NB(SIZE_BUCKETS));
    hist_init(&m->batch_tokens, TOKEN_BUCKETS, NB(TOKEN_BUCKETS));
    hist_init(&m->batch_seconds, LATENCY_BUCKETS, NB(LATENCY_BUCKETS));
    hist_init(&m->queue_seconds, LATENCY_BUCKETS, NB(LATENCY_BUCKETS));
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m->req);
    free(m->lat);
    free(m);
}

void srv_metrics_request(srv_metrics *m, const char *route, int status, double seconds) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_req && !(m->req[i].status == status && !strcmp(m->req[i].route, route))) i++;
    if (i == m->n_req && m->n_req == m->cap_req) {
        int cap = m->cap_req ? m->cap_req * 2 : 32;
        request_count *p = realloc(m->req, (size_t)cap * sizeof *p);
        if (p) { m->req = p; m->cap_req = cap; }
    }
    if (i < m->cap_req) {
        if (i == m->n_req) m->req[m->n_req++] = (request_count){route, status, 0};
        m->req[i].count++;
    }
    int j = 0;
    while (j < m->n_lat && strcmp(m->lat[j].route, route)) j++;
    if (j == m->n_lat && m->n_lat == m->cap_lat) {
        int cap = m->cap_lat ? m->cap_lat * 2 : 16;
        route_latency *p = realloc(m->lat, (size_t)cap * sizeof *p);
        if (p) { m->lat = p; m->cap_lat = cap; }
    }
    if (j < m->cap_lat) {
        if (j == m->n_lat) {
            m->lat[j].route = route;
            hist_init(&m->lat[j].latency, LATENCY_BUCKETS, NB(LATENCY_BUCKETS));
            m->n_lat++;
        }
        hist_add(&m->lat[j].latency, seconds);
    }
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_batch(srv_metrics *m, int inputs, int tokens, double seconds) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    hist_add(&m->batch_inputs, inputs);
    hist_add(&m->batch_tokens, tokens);
    hist_add(&m->batch_seconds, seconds);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_queue_wait(srv_metrics *m, double seconds) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    hist_add(&m->queue_seconds, seconds);
    pthread_mutex_unlock(&m->mu);
}

static void put(dbt_jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(dbt_jw *w, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) dbt_jw_raw(w, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* name{labels,le="..."} lines of one histogram; labels is "" or `route="/embed",`. */
static void put_hist(dbt_jw *w, const char *name, const char *labels, const histogram *h) {
    unsigned long long cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->counts[i];
        put(w, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, h->bounds[i], cum);
    }
    cum += h->counts[h->n];
    put(w, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, cum);
    size_t ll = strlen(labels);
    char lab[256];
    if (ll) snprintf(lab, sizeof lab, "{%.*s}", (int)(ll - 1), labels); /* drop the trailing comma */
    else lab[0] = '\0';
    put(w, "%s_sum%s %.9g\n", name, lab, h->sum);
    put(w, "%s_count%s %llu\n", name, lab, h->total);
}

char *srv_metrics_render(srv_metrics *m, int queue_inputs, int queue_requests, int in_flight, size_t *len) {
    dbt_jw w = {0};
    pthread_mutex_lock(&m->mu);
    put(&w, "# HELP dbt_http_requests_total HTTP requests answered, by route and status.\n"
            "# TYPE dbt_http_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        put(&w, "dbt_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", m->req[i].route, m->req[i].status,
            m->req[i].count);
    put(&w, "# HELP dbt_http_request_duration_seconds Time from the request's arrival to its answer.\n"
            "# TYPE dbt_http_request_duration_seconds histogram\n");
    for (int i = 0; i < m->n_lat; i++) {
        char labels[128];
        snprintf(labels, sizeof labels, "route=\"%s\",", m->lat[i].route);
        put_hist(&w, "dbt_http_request_duration_seconds", labels, &m->lat[i].latency);
    }
    put(&w, "# HELP dbt_batch_size Inputs per forward batch.\n# TYPE dbt_batch_size histogram\n");
    put_hist(&w, "dbt_batch_size", "", &m->batch_inputs);
    put(&w, "# HELP dbt_batch_tokens Tokens per forward batch.\n# TYPE dbt_batch_tokens histogram\n");
    put_hist(&w, "dbt_batch_tokens", "", &m->batch_tokens);
    put(&w, "# HELP dbt_batch_duration_seconds Time to run one batch through the model.\n"
            "# TYPE dbt_batch_duration_seconds histogram\n");
    put_hist(&w, "dbt_batch_duration_seconds", "", &m->batch_seconds);
    put(&w, "# HELP dbt_queue_duration_seconds Time an input waited for its batch.\n"
            "# TYPE dbt_queue_duration_seconds histogram\n");
    put_hist(&w, "dbt_queue_duration_seconds", "", &m->queue_seconds);
    pthread_mutex_unlock(&m->mu);
    put(&w, "# HELP dbt_queue_depth Inputs waiting for a batch.\n# TYPE dbt_queue_depth gauge\ndbt_queue_depth %d\n",
        queue_inputs);
    put(&w, "# HELP dbt_queue_requests Requests with inputs waiting for a batch.\n"
            "# TYPE dbt_queue_requests gauge\ndbt_queue_requests %d\n", queue_requests);
    put(&w, "# HELP dbt_requests_in_flight Inference requests admitted and not yet answered.\n"
            "# TYPE dbt_requests_in_flight gauge\ndbt_requests_in_flight %d\n", in_flight);
    if (w.oom) { dbt_jw_free(&w); return NULL; }
    *len = w.n;
    return w.s;
}
