/* The worker pool of pool.h. A job is published by bumping a generation counter; a worker that finished a
 * part spins briefly on the counter (the next step's job usually follows within microseconds) and then
 * sleeps on a condition variable, so an idle pool costs no CPU after POOL_SPIN polls. The caller likewise
 * polls the count of unfinished parts for a while before it sleeps. */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#include "tensor/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

enum { POOL_MAX = 64, POOL_SPIN = 4000 };

/* One job at a time: run_mu is held by cn_pool_run and cn_pool_resize for their whole length, so two
 * threads of a program that train at once take turns on the pool instead of racing on it. */
static pthread_mutex_t run_mu = PTHREAD_MUTEX_INITIALIZER;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_t tid[POOL_MAX];
    int workers;            /* running workers (threads - 1)                */
    unsigned long gen;      /* bumped for every job (atomic)                 */
    unsigned long start;    /* gen when the workers were started             */
    int pending;            /* workers still on the current job (atomic)     */
    int quit;               /* (atomic)                                      */
    cn_pool_fn fn;
    void *arg;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* Set on the workers for their life and on the caller while it runs part 0. */
static _Thread_local int in_job;

int cn_pool_in_job(void) { return in_job; }

int cn_pool_parts(void) { return in_job ? 1 : cn_pool_size(); }

/* Part `part` of `parts` of 0 .. len in whole units (cn_pool_range, cn_pool_for). */
static void range_of(size_t len, size_t unit, int part, int parts, size_t *i0, size_t *i1)
{
    size_t blocks = (len + unit - 1) / unit;
    *i0 = unit * (blocks * (size_t)part / (size_t)parts);
    *i1 = unit * (blocks * (size_t)(part + 1) / (size_t)parts);
    if (*i0 > len) *i0 = len;
    if (*i1 > len) *i1 = len;
}

void cn_pool_range(int len, int unit, int part, int parts, int *i0, int *i1)
{
    size_t a, b;
    range_of((size_t)len, (size_t)unit, part, parts, &a, &b);
    *i0 = (int)a;
    *i1 = (int)b;
}

typedef struct {
    size_t n, unit;
    cn_pool_range_fn fn;
    void *arg;
} for_job;

static void for_part(void *p, int part, int parts)
{
    const for_job *j = p;
    size_t i0, i1;
    range_of(j->n, j->unit, part, parts, &i0, &i1);
    if (i1 > i0) j->fn(j->arg, i0, i1);
}

void cn_pool_for(size_t n, size_t unit, size_t min, cn_pool_range_fn fn, void *arg)
{
    if (unit < 1) unit = 1;
    if (n >= min && n > unit && cn_pool_parts() > 1) {
        for_job j = {n, unit, fn, arg};
        cn_pool_run(for_part, &j);
    } else if (n)
        fn(arg, 0, n);
}

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *p)
{
    int id = (int)(long)p;
    in_job = 1;
    unsigned long seen = pool.start;   /* not pool.gen: a job may be posted before this thread runs */
    for (;;) {
        int spin = 0;
        while (__atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE) == seen && !__atomic_load_n(&pool.quit, __ATOMIC_ACQUIRE) &&
               spin < POOL_SPIN) {
            relax();
            spin++;
        }
        if (__atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE) == seen) {
            pthread_mutex_lock(&pool.mu);
            while (__atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE) == seen && !__atomic_load_n(&pool.quit, __ATOMIC_ACQUIRE))
                pthread_cond_wait(&pool.work, &pool.mu);
            pthread_mutex_unlock(&pool.mu);
        }
        if (__atomic_load_n(&pool.quit, __ATOMIC_ACQUIRE)) break;
        seen = __atomic_load_n(&pool.gen, __ATOMIC_ACQUIRE);
        pool.fn(pool.arg, id, pool.workers + 1);
        if (__atomic_sub_fetch(&pool.pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    return NULL;
}

static void pool_stop(void)
{
    if (!pool.workers) return;
    pthread_mutex_lock(&pool.mu);
    __atomic_store_n(&pool.quit, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 0; i < pool.workers; i++) pthread_join(pool.tid[i], NULL);
    __atomic_store_n(&pool.workers, 0, __ATOMIC_RELAXED);
    pool.quit = 0;
}

static void run_locked(cn_pool_fn fn, void *arg);

static void stop_at_exit(void)
{
    pthread_mutex_lock(&run_mu);
    pool_stop();
    pthread_mutex_unlock(&run_mu);
}

int cn_pool_resize(int n)
{
    if (n < 1) n = 1;
    if (n > POOL_MAX) n = POOL_MAX;
    pthread_mutex_lock(&run_mu);
    int rc = 0;
    if (n - 1 != pool.workers) {
        pool_stop();
        static int registered;
        if (!registered) registered = atexit(stop_at_exit) == 0;   /* no worker outlives the process's exit */
        pool.start = pool.gen;
        for (int i = 1; i < n; i++) {
            if (pthread_create(&pool.tid[pool.workers], NULL, worker, (void *)(long)i) != 0) {
                pool_stop();
                rc = -1;
                break;
            }
            __atomic_store_n(&pool.workers, pool.workers + 1, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&run_mu);
    return rc;
}

int cn_pool_size(void) { return __atomic_load_n(&pool.workers, __ATOMIC_RELAXED) + 1; }

void cn_pool_run(cn_pool_fn fn, void *arg)
{
    pthread_mutex_lock(&run_mu);
    run_locked(fn, arg);
    pthread_mutex_unlock(&run_mu);
}

static void run_locked(cn_pool_fn fn, void *arg)
{
    if (!pool.workers) { fn(arg, 0, 1); return; }
    pool.fn = fn;
    pool.arg = arg;
    __atomic_store_n(&pool.pending, pool.workers, __ATOMIC_RELAXED);
    pthread_mutex_lock(&pool.mu);
    __atomic_add_fetch(&pool.gen, 1, __ATOMIC_RELEASE);   /* publishes fn, arg, pending */
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    in_job = 1;
    fn(arg, 0, pool.workers + 1);
    in_job = 0;
    for (int spin = 0; spin < POOL_SPIN && __atomic_load_n(&pool.pending, __ATOMIC_ACQUIRE); spin++) relax();
    if (__atomic_load_n(&pool.pending, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&pool.mu);
        while (__atomic_load_n(&pool.pending, __ATOMIC_ACQUIRE)) pthread_cond_wait(&pool.done, &pool.mu);
        pthread_mutex_unlock(&pool.mu);
    }
}

int cn_usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n >= 1) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (n > 1024 ? 1024 : (int)n) : 1;
}
