/* queue.h — dynamic batching: requests' inputs wait in one FIFO queue; a single inference
 * thread takes the inputs of compatible requests (same task, same options) into a batch of at
 * most max_batch_tokens tokens and runs it through the model (the model is not safe for
 * concurrent forward passes; the thread uses every core through dbt_set_num_threads). A reaper
 * thread drops the waiting inputs of requests whose client hung up or whose deadline passed. */
#ifndef DBT_SRV_QUEUE_H
#define DBT_SRV_QUEUE_H

#include "distilbert.h"
#include "metrics.h"

typedef enum {
    SRV_JOB_OK = 0,
    SRV_JOB_FAILED,   /* the pipeline refused this request's inputs: error says why */
    SRV_JOB_TIMEOUT,  /* the deadline passed before every input had run */
    SRV_JOB_GONE,     /* the client hung up while its inputs waited */
    SRV_JOB_SHUTDOWN, /* the server stopped before the inputs ran */
} srv_job_status;

typedef struct srv_job srv_job;
struct srv_job {
    /* Set by the submitter; read-only while queued. */
    dbt_task task;
    dbt_pipeline_opts opts; /* the batching key: requests share a batch only when these are equal */
    int n;
    const dbt_input *in;
    const int *tokens;      /* tokens of each input (at least 1 counted) */
    double deadline;        /* srv_now() seconds; 0: none */
    int fd;                 /* the client's socket, polled for a hang-up; -1: none */
    void (*on_done)(srv_job *job, void *ud); /* from a queue thread; the job is the caller's again */
    void *ud;
    /* Results, valid in on_done. */
    char **out;             /* n JSON texts from dbt_pipeline_run (caller frees); allocated by submit */
    srv_job_status status;
    char error[256];
    double queue_seconds;   /* from submit to the start of its first batch */
    double infer_seconds;   /* run time of the batches it was in */
    int batches;            /* batches it took part in */
    /* Private to the queue. */
    int next, pending, started;
    double t_enqueue;
    srv_job *qnext;
};

typedef struct {
    int max_batch_tokens;   /* tokens per batch (a lone input may exceed it) */
    int max_batch_inputs;   /* inputs per batch */
    int max_concurrent;     /* requests submitted and not yet done; more are refused */
} srv_queue_opts;

typedef struct srv_queue srv_queue;

double srv_now(void); /* CLOCK_MONOTONIC seconds */

/* Starts the reaper thread. m is used by the inference loop only (srv_queue_run). */
srv_queue *srv_queue_new(dbt_model *m, const srv_queue_opts *o, srv_metrics *metrics);
/* The inference loop, in the calling thread, until srv_queue_stop. (The caller's thread rather
 * than one of ours: the kernels keep per-thread scratch buffers that live as long as the thread,
 * and the main thread lives as long as the process.) */
void srv_queue_run(srv_queue *q);
/* Queues job. Returns 0; -1 when max_concurrent requests are in flight (429); -2 when the queue
 * is stopping (503); -3 out of memory. */
int srv_queue_submit(srv_queue *q, srv_job *job);
/* Inputs waiting, requests waiting, requests in flight (submitted, not done). */
void srv_queue_stats(srv_queue *q, int *inputs, int *requests, int *in_flight);
/* Refuses new jobs; lets the running batch finish and waits for srv_queue_run to return (if it
 * runs); ends waiting jobs with SRV_JOB_SHUTDOWN; joins the reaper. Not from srv_queue_run's thread. */
void srv_queue_stop(srv_queue *q);
void srv_queue_free(srv_queue *q);

#endif
