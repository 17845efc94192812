/* threadpool.h — a small persistent pool of pthreads for splitting one kernel call across cores.
 *
 * dbt_pool_run(fn, arg, n) calls fn(arg, t, n) for t = 0 .. n-1 and returns when all have
 * returned; the calling thread runs t = 0 itself, pool workers run the rest. Workers are started
 * on first need and live until the process ends; between calls they spin briefly (a GEMM often
 * follows another within microseconds) and then sleep on a condition variable.
 *
 * The pool serves one call at a time. A call made while it is busy (another application thread,
 * or a call from inside a task) runs all n parts in the calling thread instead, which gives the
 * same results: callers must make each part's work depend only on (t, n), never on timing. */
#ifndef DBT_THREADPOOL_H
#define DBT_THREADPOOL_H

typedef void (*dbt_pool_fn)(void *arg, int t, int n);

/* The number of threads a kernel may use (the caller included); n < 1 means 1. */
void dbt_pool_set_threads(int n);
int dbt_pool_threads(void);

/* Runs fn(arg, t, n) for every t in [0, n). n is clamped to [1, dbt_pool_threads()]. */
void dbt_pool_run(dbt_pool_fn fn, void *arg, int n);

/* 1 while the calling thread runs a part of a pool run: a kernel called from inside a part (one
 * attention head's GEMMs) should do its work inline rather than split it into serial parts. */
int dbt_pool_in_task(void);

#endif
