/* queue.c — the batching queue, its inference thread and its reaper thread. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue.h"

struct srv_queue {
    pthread_mutex_t mu;
    pthread_cond_t work;    /* the inference thread waits for inputs */
    pthread_cond_t tick;    /* the reaper's timed wait */
    dbt_model *model;
    srv_queue_opts o;
    srv_metrics *metrics;
    srv_job *head, *tail;   /* jobs with inputs not yet taken into a batch */
    int waiting_inputs, waiting_jobs, in_flight;
    int stopping;
    int running;            /* srv_queue_run is in its loop */
    pthread_cond_t ended;   /* ... and has left it */
    pthread_t reaper_thread;
    int threads_started;
};

typedef struct {
    srv_job *job;
    int idx;
} item;

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void unlink_job(srv_queue *q, srv_job *prev, srv_job *j) {
    if (prev) prev->qnext = j->qnext;
    else q->head = j->qnext;
    if (q->tail == j) q->tail = prev;
    j->qnext = NULL;
    q->waiting_jobs--;
}

/* Under the lock: ends a queued job's remaining inputs. Returns 1 when the job is now done. */
static int drop_rest(srv_queue *q, srv_job *j, srv_job_status st) {
    int rest = j->n - j->next;
    q->waiting_inputs -= rest;
    j->pending -= rest;
    j->next = j->n;
    if (j->status == SRV_JOB_OK) j->status = st;
    return j->pending == 0;
}

static void finish(srv_queue *q, srv_job **done, int n_done) {
    /* on_done hands the job back to its owner, who may free it: nothing touches it after. */
    for (int i = 0; i < n_done; i++) done[i]->on_done(done[i], done[i]->ud);
    (void)q;
}

static int same_key(const srv_job *a, const srv_job *b) {
    return a->task == b->task && !memcmp(&a->opts, &b->opts, sizeof a->opts);
}

/* Under the lock: takes the next batch into items (FIFO; compatible jobs only). */
static int take_batch(srv_queue *q, item *items, int *tokens_out) {
    srv_job *key = q->head, *prev = NULL, *j = q->head;
    int n = 0, tokens = 0;
    while (j) {
        srv_job *jn = j->qnext;
        if (same_key(j, key)) {
            while (j->next < j->n) {
                int t = j->tokens[j->next] > 0 ? j->tokens[j->next] : 1;
                if (n > 0 && (tokens + t > q->o.max_batch_tokens || n >= q->o.max_batch_inputs)) goto full;
                items[n].job = j;
                items[n].idx = j->next++;
                n++;
                tokens += t;
                q->waiting_inputs--;
            }
            unlink_job(q, prev, j);
        } else {
            prev = j;
        }
        j = jn;
    }
full:
    *tokens_out = tokens;
    return n;
}

void srv_queue_run(srv_queue *q) {
    item *items = malloc((size_t)q->o.max_batch_inputs * sizeof *items);
    dbt_input *in = malloc((size_t)q->o.max_batch_inputs * sizeof *in);
    char **out = malloc((size_t)q->o.max_batch_inputs * sizeof *out);
    srv_job **done = malloc((size_t)q->o.max_batch_inputs * sizeof *done);
    if (!items || !in || !out || !done) {
        fprintf(stderr, "distilbert serve: out of memory in the inference thread\n");
        abort();
    }
    pthread_mutex_lock(&q->mu);
    q->running = 1;
    for (;;) {
        while (!q->head && !q->stopping) pthread_cond_wait(&q->work, &q->mu);
        if (q->stopping) break;
        int tokens;
        int n = take_batch(q, items, &tokens);
        double t0 = srv_now();
        for (int i = 0; i < n; i++) {
            srv_job *j = items[i].job;
            if (!j->started) {
                j->started = 1;
                j->queue_seconds = t0 - j->t_enqueue;
            }
        }
        pthread_mutex_unlock(&q->mu);

        const srv_job *key = items[0].job;
        for (int i = 0; i < n; i++) {
            in[i] = items[i].job->in[items[i].idx];
            out[i] = NULL;
            srv_metrics_queue_wait(q->metrics, t0 - items[i].job->t_enqueue);
        }
        dbt_pipeline_opts o = key->opts;
        o.batch_size = n;
        int ok = dbt_pipeline_run(q->model, key->task, in, n, &o, out) == 0;
        if (!ok) {
            /* One request's inputs spoil the batch: run each request's inputs alone (they are
             * contiguous in items) so that only that request fails. */
            for (int a = 0; a < n;) {
                int b = a;
                while (b < n && items[b].job == items[a].job) b++;
                if (dbt_pipeline_run(q->model, key->task, in + a, b - a, &o, out + a) != 0) {
                    srv_job *j = items[a].job;
                    if (j->status == SRV_JOB_OK) {
                        j->status = SRV_JOB_FAILED;
                        snprintf(j->error, sizeof j->error, "%s", dbt_last_error());
                    }
                    for (int k = a; k < b; k++) out[k] = NULL;
                }
                a = b;
            }
        }
        double t1 = srv_now();
        srv_metrics_batch(q->metrics, n, tokens, t1 - t0);

        pthread_mutex_lock(&q->mu);
        int n_done = 0;
        for (int i = 0; i < n; i++) {
            srv_job *j = items[i].job;
            j->out[items[i].idx] = out[i];
            if (i == 0 || items[i - 1].job != j) {
                j->infer_seconds += t1 - t0;
                j->batches++;
            }
            if (j->status == SRV_JOB_FAILED && j->next < j->n) {
                /* its other inputs need not run */
                srv_job *p = NULL, *x = q->head;
                while (x && x != j) { p = x; x = x->qnext; }
                if (x) unlink_job(q, p, j);
                drop_rest(q, j, SRV_JOB_FAILED);
            }
            if (--j->pending == 0) {
                q->in_flight--;
                done[n_done++] = j;
            }
        }
        pthread_mutex_unlock(&q->mu);
        finish(q, done, n_done);
        pthread_mutex_lock(&q->mu);
    }
    q->running = 0;
    pthread_cond_broadcast(&q->ended);
    pthread_mutex_unlock(&q->mu);
    free(items);
    free(in);
    free(out);
    free(done);
}

/* Every 20 ms: requests past their deadline, and clients that hung up, lose their waiting
 * inputs; the running batch is never interrupted. */
static void *reaper_main(void *arg) {
    srv_queue *q = arg;
    int cap = 0;
    struct pollfd *pfd = NULL;
    srv_job **done = NULL;
    pthread_mutex_lock(&q->mu);
    while (!q->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&q->tick, &q->mu, &ts);
        if (q->stopping) break;
        if (q->waiting_jobs > cap) {
            int nc = q->waiting_jobs * 2;
            struct pollfd *p = realloc(pfd, (size_t)nc * sizeof *p);
            if (p) pfd = p;
            srv_job **d = realloc(done, (size_t)nc * sizeof *d);
            if (d) done = d;
            if (p && d) cap = nc;
            else continue;
        }
        int n = 0;
        for (srv_job *j = q->head; j && n < cap; j = j->qnext) {
            pfd[n].fd = j->fd; /* a negative fd is ignored by poll */
            pfd[n].events = POLLRDHUP;
            pfd[n].revents = 0;
            n++;
        }
        if (n > 0 && poll(pfd, (nfds_t)n, 0) < 0 && errno != EINTR) n = 0;
        double now = srv_now();
        int n_done = 0, i = 0;
        srv_job *prev = NULL, *j = q->head;
        while (j && i < n) {
            srv_job *jn = j->qnext;
            srv_job_status st = SRV_JOB_OK;
            if (j->deadline > 0 && now > j->deadline) st = SRV_JOB_TIMEOUT;
            else if (pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) st = SRV_JOB_GONE;
            if (st != SRV_JOB_OK) {
                unlink_job(q, prev, j);
                if (drop_rest(q, j, st)) {
                    q->in_flight--;
                    done[n_done++] = j;
                }
            } else {
                prev = j;
            }
            j = jn;
            i++;
        }
        if (n_done) {
            pthread_mutex_unlock(&q->mu);
            finish(q, done, n_done);
            pthread_mutex_lock(&q->mu);
        }
    }
    pthread_mutex_unlock(&q->mu);
    free(pfd);
    free(done);
    return NULL;
}

srv_queue *srv_queue_new(dbt_model *m, const srv_queue_opts *o, srv_metrics *metrics) {
    srv_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->model = m;
    q->o = *o;
    if (q->o.max_batch_tokens < 1) q->o.max_batch_tokens = 1;
    if (q->o.max_batch_inputs < 1) q->o.max_batch_inputs = 1;
    if (q->o.max_concurrent < 1) q->o.max_concurrent = 1;
    q->metrics = metrics;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->tick, NULL);
    pthread_cond_init(&q->ended, NULL);
    if (pthread_create(&q->reaper_thread, NULL, reaper_main, q)) {
        srv_queue_free(q);
        return NULL;
    }
    q->threads_started = 1;
    return q;
}

int srv_queue_submit(srv_queue *q, srv_job *job) {
    job->out = calloc((size_t)(job->n > 0 ? job->n : 1), sizeof *job->out);
    if (!job->out) return -3;
    job->status = SRV_JOB_OK;
    job->error[0] = '\0';
    job->next = 0;
    job->pending = job->n;
    job->started = 0;
    job->queue_seconds = job->infer_seconds = 0;
    job->batches = 0;
    job->qnext = NULL;
    pthread_mutex_lock(&q->mu);
    int rc = q->stopping ? -2 : q->in_flight >= q->o.max_concurrent ? -1 : 0;
    if (rc == 0) {
        job->t_enqueue = srv_now();
        if (q->tail) q->tail->qnext = job;
        else q->head = job;
        q->tail = job;
        q->waiting_jobs++;
        q->waiting_inputs += job->n;
        q->in_flight++;
        pthread_cond_signal(&q->work);
    }
    pthread_mutex_unlock(&q->mu);
    if (rc) {
        free(job->out);
        job->out = NULL;
    }
    return rc;
}

void srv_queue_stats(srv_queue *q, int *inputs, int *requests, int *in_flight) {
    pthread_mutex_lock(&q->mu);
    *inputs = q->waiting_inputs;
    *requests = q->waiting_jobs;
    *in_flight = q->in_flight;
    pthread_mutex_unlock(&q->mu);
}

void srv_queue_stop(srv_queue *q) {
    if (!q || !q->threads_started) return;
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_broadcast(&q->work);
    pthread_cond_broadcast(&q->tick);
    while (q->running) pthread_cond_wait(&q->ended, &q->mu); /* the running batch is delivered */
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->reaper_thread, NULL);
    q->threads_started = 0;
    for (;;) { /* what still waits ends now (nothing runs any more: each job is done at once) */
        pthread_mutex_lock(&q->mu);
        srv_job *j = q->head;
        if (j) {
            unlink_job(q, NULL, j);
            drop_rest(q, j, SRV_JOB_SHUTDOWN);
            q->in_flight--;
        }
        pthread_mutex_unlock(&q->mu);
        if (!j) break;
        j->on_done(j, j->ud);
    }
}

void srv_queue_free(srv_queue *q) {
    if (!q) return;
    srv_queue_stop(q);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->tick);
    pthread_cond_destroy(&q->ended);
    free(q);
}
