/* http.c — the transport: libmicrohttpd with a pool of connection threads. A POST body is read
 * (up to --payload-limit; more is read and dropped, then answered 413), handed to routes.c, and
 * the connection is suspended while its inputs wait for the inference thread; the queue resumes
 * it when the answer is ready. SIGTERM/SIGINT stop accepting connections, let requests in flight
 * finish (up to shutdown_timeout), and stop. */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "openapi.h"
#include "server.h"

typedef enum { GET_NONE = 0, GET_HEALTH, GET_INFO, GET_METRICS, GET_OPENAPI } get_route;

typedef struct {
    srv_app app;
    struct MHD_Daemon *daemon;
    atomic_int active; /* requests between their first byte and their completion */
    sigset_t sigs;     /* SIGINT, SIGTERM: blocked in every thread, taken by sigwait */
    int clean;         /* the shutdown let every request finish */
    MHD_socket listen_fd; /* handed back by MHD_quiesce_daemon; closed after MHD_stop_daemon */
} server;

typedef struct {
    server *s;
    struct MHD_Connection *conn;
    const char *label;    /* metrics label: the route path, or "other" */
    int post;             /* a POST route (srv_route in route) */
    srv_route route;
    get_route get;
    int bad_method;       /* 405 once the body is read */
    char *body;
    size_t len, cap;
    int too_large;
    int status;           /* the status answered */
    double t0;
    pthread_mutex_t mu;   /* orders suspend (handler) before resume (queue thread) */
    srv_call *call;
    int suspended, done;
} request;

static const struct { const char *path; get_route get; } GETS[] = {
    {"/health", GET_HEALTH}, {"/info", GET_INFO}, {"/metrics", GET_METRICS}, {"/openapi.json", GET_OPENAPI}};

static void resolve(request *r, const char *url, const char *method) {
    r->label = "other";
    int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), is_post = !strcmp(method, "POST");
    for (int i = 0; i < SRV_N_ROUTES; i++)
        if (!strcmp(url, srv_route_path((srv_route)i))) {
            r->label = srv_route_path((srv_route)i);
            r->post = 1;
            r->route = (srv_route)i;
            r->bad_method = !is_post;
            return;
        }
    for (size_t i = 0; i < sizeof GETS / sizeof GETS[0]; i++)
        if (!strcmp(url, GETS[i].path)) {
            r->label = GETS[i].path;
            r->get = GETS[i].get;
            r->bad_method = !is_get;
            return;
        }
}

static enum MHD_Result send_response(request *r, srv_response *resp) {
    struct MHD_Response *m =
        resp->body ? MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_FREE)
                   : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!m) {
        free(resp->body);
        return MHD_NO;
    }
    if (resp->content_type) MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    for (int i = 0; i < resp->n_headers; i++) MHD_add_response_header(m, resp->headers[i][0], resp->headers[i][1]);
    if (atomic_load(&r->s->app.draining)) MHD_add_response_header(m, MHD_HTTP_HEADER_CONNECTION, "close");
    r->status = resp->status;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)resp->status, m);
    MHD_destroy_response(m);
    return rc;
}

static enum MHD_Result send_error(request *r, int status, const char *type, const char *msg) {
    srv_response resp = {0};
    srv_response_error(&resp, r->post ? r->route : (srv_route)-1, status, type, msg);
    return send_response(r, &resp);
}

static int path_enabled(const char *path, void *ud) {
    const srv_app *app = ud;
    for (int i = 0; i < SRV_N_ROUTES; i++)
        if (!strcmp(path, srv_route_path((srv_route)i))) return app->enabled[i];
    return 1;
}

static enum MHD_Result answer_get(request *r) {
    srv_app *app = &r->s->app;
    srv_response resp = {0};
    resp.status = 200;
    resp.content_type = "application/json";
    switch (r->get) {
    case GET_HEALTH:
        if (atomic_load(&app->draining)) return send_error(r, 503, "unhealthy", "the server is shutting down");
        resp.content_type = NULL;
        break;
    case GET_INFO: resp.body = srv_app_info_json(app, &resp.len); break;
    case GET_METRICS: {
        int qi, qr, inflight;
        srv_queue_stats(app->queue, &qi, &qr, &inflight);
        resp.body = srv_metrics_render(app->metrics, qi, qr, inflight, &resp.len);
        resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
        break;
    }
    case GET_OPENAPI: resp.body = srv_openapi_json(path_enabled, app, DBT_VERSION, &resp.len); break;
    default: break;
    }
    if (r->get != GET_HEALTH && !resp.body) return send_error(r, 503, "overloaded", "out of memory");
    return send_response(r, &resp);
}

/* From a queue thread: the call's answer is ready. */
static void call_done(void *ud) {
    request *r = ud;
    pthread_mutex_lock(&r->mu);
    r->done = 1;
    if (r->suspended) {
        r->suspended = 0;
        MHD_resume_connection(r->conn);
    }
    pthread_mutex_unlock(&r->mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    server *s = cls;
    request *r = *con_cls;
    (void)version;
    if (!r) { /* the headers have arrived */
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->s = s;
        r->conn = conn;
        r->t0 = srv_now();
        pthread_mutex_init(&r->mu, NULL);
        resolve(r, url, method);
        *con_cls = r;
        atomic_fetch_add(&s->active, 1);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            unsigned long long n = strtoull(cl, NULL, 10);
            if (n > s->app.cfg->payload_limit) {
                r->too_large = 1;
                if (n > 8ull * s->app.cfg->payload_limit + (1u << 20)) { /* not worth reading: answer, close */
                    char msg[96];
                    snprintf(msg, sizeof msg, "the body is over --payload-limit (%zu bytes)", s->app.cfg->payload_limit);
                    return send_error(r, 413, "validation", msg);
                }
            }
        }
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body */
        if (!r->too_large && r->post && !r->bad_method) {
            size_t need = r->len + *upload_size;
            if (need > r->s->app.cfg->payload_limit) {
                r->too_large = 1;
                free(r->body);
                r->body = NULL;
                r->len = r->cap = 0;
            } else {
                if (need + 1 > r->cap) {
                    size_t cap = r->cap ? r->cap : 4096;
                    while (cap < need + 1) cap *= 2;
                    char *p = realloc(r->body, cap);
                    if (!p) return MHD_NO;
                    r->body = p;
                    r->cap = cap;
                }
                memcpy(r->body + r->len, upload, *upload_size);
                r->len = need;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->call) { /* resumed: the answer is ready */
        pthread_mutex_lock(&r->mu);
        int done = r->done;
        if (!done) { /* spurious: wait again */
            MHD_suspend_connection(conn);
            r->suspended = 1;
        }
        pthread_mutex_unlock(&r->mu);
        if (!done) return MHD_YES;
        srv_response resp = {0};
        srv_call_finish(&s->app, r->call, &resp);
        r->call = NULL;
        return send_response(r, &resp);
    }
    /* the whole request is here */
    if (!r->post && !r->get) {
        char msg[128];
        snprintf(msg, sizeof msg, "no route %s %.80s", method, url);
        return send_error(r, 404, "not_found", msg);
    }
    if (r->bad_method) {
        srv_response resp = {0};
        char msg[128];
        snprintf(msg, sizeof msg, "%s %s: method not allowed (use %s)", method, r->label, r->post ? "POST" : "GET");
        srv_response_error(&resp, r->post ? r->route : (srv_route)-1, 405, "method_not_allowed", msg);
        srv_response_add_header(&resp, MHD_HTTP_HEADER_ALLOW, "%s", r->post ? "POST" : "GET, HEAD");
        return send_response(r, &resp);
    }
    if (r->get) return answer_get(r);
    if (r->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "the body is over --payload-limit (%zu bytes)", s->app.cfg->payload_limit);
        return send_error(r, 413, "validation", msg);
    }
    if (atomic_load(&s->app.draining)) return send_error(r, 503, "unhealthy", "the server is shutting down");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? (int)ci->connect_fd : -1;
    srv_response resp = {0};
    pthread_mutex_lock(&r->mu);
    int queued = srv_call_begin(&s->app, r->route, r->body ? r->body : "", r->len, fd, call_done, r, &r->call, &resp);
    if (queued) { /* call_done waits for the lock: resume always follows suspend */
        MHD_suspend_connection(conn);
        r->suspended = 1;
    }
    pthread_mutex_unlock(&r->mu);
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    if (queued) return MHD_YES;
    return send_response(r, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    server *s = cls;
    request *r = *con_cls;
    (void)conn;
    if (!r) return;
    *con_cls = NULL;
    int status = r->status ? r->status : 499; /* no answer sent: the client went away */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status == 0) status = 499;
    double dt = srv_now() - r->t0;
    srv_metrics_request(s->app.metrics, r->label, status, dt);
    if (s->app.cfg->verbose)
        fprintf(stderr, "distilbert serve: %s %d %.1f ms\n", r->label, status, dt * 1e3);
    if (r->call) { /* cannot happen: MHD never ends a suspended request. Keep its memory. */
        fprintf(stderr, "distilbert serve: a request ended while its inputs were queued\n");
    } else {
        pthread_mutex_destroy(&r->mu);
        free(r->body);
        free(r);
    }
    atomic_fetch_sub(&s->active, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    fputs("distilbert serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* Waits up to `seconds` for the requests in flight to end; a second signal cuts it short.
 * Returns 1 when none is left. */
static int wait_idle(server *s, double seconds, const sigset_t *sigs) {
    double end = srv_now() + seconds;
    while (atomic_load(&s->active) > 0) {
        if (srv_now() > end) return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            fprintf(stderr, "distilbert serve: second signal: stopping now\n");
            return 0;
        }
    }
    return 1;
}

/* Waits for SIGTERM/SIGINT, then: no new connections, the requests in flight finish (up to
 * shutdown_timeout), the queue stops (what still waits is answered 503). */
static void *shutdown_main(void *arg) {
    server *s = arg;
    int sig = 0;
    while (sigwait(&s->sigs, &sig) != 0 || (sig != SIGINT && sig != SIGTERM)) {}
    fprintf(stderr, "distilbert serve: %s: finishing the requests in flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&s->app.draining, 1);
    /* MHD's worker threads drop the listening socket from their epoll sets on their own time, so
     * closing it here races with them (MHD panics on EBADF). shutdown() keeps the descriptor valid
     * but refuses new connections at once; srv_run closes it after MHD_stop_daemon. */
    s->listen_fd = MHD_quiesce_daemon(s->daemon);
    if (s->listen_fd != MHD_INVALID_SOCKET) shutdown(s->listen_fd, SHUT_RDWR);
    int clean = wait_idle(s, s->app.cfg->shutdown_timeout, &s->sigs);
    srv_queue_stop(s->app.queue);
    if (!wait_idle(s, 5, &s->sigs)) clean = 0;
    s->clean = clean;
    return NULL;
}

int srv_run(const srv_config *cfg) {
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread started below inherits the mask */
    signal(SIGPIPE, SIG_IGN);

    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai) {
        fprintf(stderr, "distilbert serve: --host %s: %s\n", cfg->host, gai_strerror(gai));
        return 1;
    }

    server *s = calloc(1, sizeof *s);
    if (!s) { freeaddrinfo(ai); return 1; }
    if (srv_app_init(&s->app, cfg)) {
        freeaddrinfo(ai);
        free(s);
        return 1;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned pool = cfg->http_threads > 0 ? (unsigned)cfg->http_threads : (unsigned)(ncpu > 4 ? 4 : ncpu > 0 ? ncpu : 1);
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    unsigned conn_limit = (unsigned)cfg->max_concurrent + 256;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_THREAD_POOL_SIZE, pool,
                                 MHD_OPTION_CONNECTION_LIMIT, conn_limit,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        fprintf(stderr, "distilbert serve: cannot listen on %s:%d (%s)\n", cfg->host, cfg->port,
                errno ? strerror(errno) : "libmicrohttpd refused the options");
        srv_app_free(&s->app);
        free(s);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    int bound = di ? (int)di->port : cfg->port;
    const int *en = s->app.enabled;
    fprintf(stderr, "distilbert serve: %s (%s, max input %d tokens, %d threads) — routes:", s->app.model_id,
            s->app.info->architecture[0] ? s->app.info->architecture : "encoder", s->app.max_input_length,
            s->app.threads);
    for (int i = 0; i < SRV_N_ROUTES; i++)
        if (en[i]) fprintf(stderr, " %s", srv_route_path((srv_route)i));
    fprintf(stderr, "\ndistilbert serve: listening on http://%s%s%s:%d\n", strchr(cfg->host, ':') ? "[" : "", cfg->host,
            strchr(cfg->host, ':') ? "]" : "", bound);
    fflush(stderr);

    /* The main thread runs the inference loop; this one waits for the signal and drains. */
    s->sigs = sigs;
    s->listen_fd = MHD_INVALID_SOCKET;
    pthread_t th;
    if (pthread_create(&th, NULL, shutdown_main, s)) {
        fprintf(stderr, "distilbert serve: cannot start a thread\n");
        return 1; /* nothing to drain yet */
    }
    srv_queue_run(s->app.queue); /* until shutdown_main stops the queue */
    pthread_join(th, NULL);
    int clean = s->clean;
    if (atomic_load(&s->active) == 0) {
        MHD_stop_daemon(s->daemon);
        if (s->listen_fd != MHD_INVALID_SOCKET) close(s->listen_fd);
        srv_app_free(&s->app);
        free(s);
    } /* else: a suspended connection would make MHD_stop_daemon hang; the process exits anyway */
    fprintf(stderr, "distilbert serve: stopped%s\n", clean ? "" : " (some requests were cut short)");
    return clean ? 0 : 1;
}
