/* threadpool.c — see threadpool.h.
 *
 * A run is published by bumping a generation counter; every started worker acknowledges every
 * generation (decrementing `pending`), also those it has no part in. That costs nothing on the
 * machines we target (all workers take part) and keeps the protocol simple: a worker can never
 * skip a generation and read the parameters of the next run while the caller writes them. */
#include "threadpool.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define POOL_MAX 256
/* How long an idle worker (and a waiting caller) spins before it sleeps: long enough to bridge
 * the gap between back-to-back GEMMs, short enough not to burn a shared core for long. */
#define SPIN_NS 100000

static pthread_mutex_t g_busy = PTHREAD_MUTEX_INITIALIZER; /* held by the thread running a job */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* pairs with g_wake for sleepers */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER; /* the last worker of a run → a sleeping caller */
static int g_caller_waiting; /* guarded by g_lock */
static atomic_int g_threads = 1;
static int g_started;      /* workers started (guarded by g_busy) */
static int g_sleepers;     /* workers waiting on g_wake (guarded by g_lock) */
static atomic_uint g_gen;  /* bumped once per run */
static atomic_int g_pending; /* workers that have not yet acknowledged the current run */
/* The current run; written by the caller before the generation bump (release) and read by the
 * workers after they see it (acquire). */
static dbt_pool_fn g_fn;
static void *g_arg;
static int g_n;
static unsigned g_start_gen[POOL_MAX];
static _Thread_local int tl_in_pool; /* this thread is running a part: nested runs go serial */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *worker(void *p) {
    const int idx = (int)(intptr_t)p;
    unsigned seen = g_start_gen[idx];
    tl_in_pool = 1;
    for (;;) {
        unsigned gen = atomic_load_explicit(&g_gen, memory_order_acquire);
        if (gen == seen) {
            uint64_t t0 = now_ns();
            for (int i = 0; (gen = atomic_load_explicit(&g_gen, memory_order_acquire)) == seen; i++) {
                cpu_relax();
                if ((i & 63) == 63 && now_ns() - t0 > SPIN_NS) break;
            }
        }
        if (gen == seen) {
            pthread_mutex_lock(&g_lock);
            while ((gen = atomic_load_explicit(&g_gen, memory_order_acquire)) == seen) {
                g_sleepers++;
                pthread_cond_wait(&g_wake, &g_lock);
                g_sleepers--;
            }
            pthread_mutex_unlock(&g_lock);
        }
        seen = gen;
        if (idx < g_n) g_fn(g_arg, idx, g_n);
        if (atomic_fetch_sub_explicit(&g_pending, 1, memory_order_acq_rel) == 1) { /* the last one */
            pthread_mutex_lock(&g_lock);
            if (g_caller_waiting) pthread_cond_signal(&g_done);
            pthread_mutex_unlock(&g_lock);
        }
    }
    return NULL;
}

void dbt_pool_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > POOL_MAX) n = POOL_MAX;
    atomic_store(&g_threads, n);
}

int dbt_pool_threads(void) { return atomic_load(&g_threads); }

/* A child of fork() has only the thread that forked: it starts its own workers when it needs
 * them, with fresh locks (a worker may have held g_lock at the fork). A fork during a run (from
 * another thread) leaves g_busy locked in the child, whose runs then go serial: still correct. */
static void after_fork_in_child(void) {
    g_started = 0;
    g_sleepers = 0;
    g_caller_waiting = 0;
    pthread_mutex_init(&g_lock, NULL);
    pthread_cond_init(&g_wake, NULL);
    pthread_cond_init(&g_done, NULL);
}

/* Starts workers up to `want` (the caller holds g_busy); returns how many are running. Workers
 * block every signal so that signals meant for the application reach its own threads. */
static int start_workers(int want) {
    if (g_started >= want) return g_started;
    static int atfork_registered;
    if (!atfork_registered) atfork_registered = pthread_atfork(NULL, NULL, after_fork_in_child) == 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (g_started < want) {
        int idx = g_started + 1;
        g_start_gen[idx] = atomic_load(&g_gen);
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, worker, (void *)(intptr_t)idx);
        pthread_attr_destroy(&attr);
        if (rc != 0) break; /* run with the workers we have */
        g_started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return g_started;
}

static void run_serial(dbt_pool_fn fn, void *arg, int n) {
    const int outer = tl_in_pool;
    tl_in_pool = 1;
    for (int t = 0; t < n; t++) fn(arg, t, n);
    tl_in_pool = outer;
}

int dbt_pool_in_task(void) { return tl_in_pool; }

void dbt_pool_run(dbt_pool_fn fn, void *arg, int n) {
    int max = dbt_pool_threads();
    if (n > max) n = max;
    if (n < 1) n = 1;
    if (n == 1) { /* the whole job on this thread: kernels it calls may still use the pool */
        fn(arg, 0, 1);
        return;
    }
    if (tl_in_pool || pthread_mutex_trylock(&g_busy) != 0) {
        run_serial(fn, arg, n);
        return;
    }
    int workers = start_workers(n - 1);
    if (workers < n - 1) { /* fewer threads than asked: the split must still cover all n parts */
        pthread_mutex_unlock(&g_busy);
        run_serial(fn, arg, n);
        return;
    }
    g_fn = fn;
    g_arg = arg;
    g_n = n;
    atomic_store_explicit(&g_pending, workers, memory_order_relaxed);
    pthread_mutex_lock(&g_lock);
    atomic_fetch_add_explicit(&g_gen, 1, memory_order_release);
    if (g_sleepers) pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_lock);

    tl_in_pool = 1;
    fn(arg, 0, n);
    tl_in_pool = 0;

    /* Wait for every worker's acknowledgement: spin first (parts are balanced, so the others
     * should finish about now), then sleep until the last one signals (a worker that lost its
     * core to another process may be late by a whole time slice). */
    uint64_t t0 = now_ns();
    for (int i = 0; atomic_load_explicit(&g_pending, memory_order_acquire) > 0; i++) {
        cpu_relax();
        if ((i & 63) == 63 && now_ns() - t0 > SPIN_NS) {
            pthread_mutex_lock(&g_lock);
            g_caller_waiting = 1;
            while (atomic_load_explicit(&g_pending, memory_order_acquire) > 0) pthread_cond_wait(&g_done, &g_lock);
            g_caller_waiting = 0;
            pthread_mutex_unlock(&g_lock);
            break;
        }
    }
    pthread_mutex_unlock(&g_busy);
}
