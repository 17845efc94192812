/* metrics.h — what /metrics reports, in Prometheus' text format: requests by route and status,
 * request latency by route, batch sizes (inputs and tokens), inference and queue time, queue
 * depth. Thread-safe. */
#ifndef DBT_SRV_METRICS_H
#define DBT_SRV_METRICS_H

#include <stddef.h>

typedef struct srv_metrics srv_metrics;

srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);
/* One answered request. route: a label that lives as long as m (a route path, or "other"). */
void srv_metrics_request(srv_metrics *m, const char *route, int status, double seconds);
/* One forward batch: inputs, tokens and its run time. */
void srv_metrics_batch(srv_metrics *m, int inputs, int tokens, double seconds);
/* Time an input waited in the queue before its batch started. */
void srv_metrics_queue_wait(srv_metrics *m, double seconds);
/* The exposition text (malloc'd), with the gauges given. */
char *srv_metrics_render(srv_metrics *m, int queue_inputs, int queue_requests, int in_flight, size_t *len);

#endif
