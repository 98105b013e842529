/* The worker pool of pool.h: a generation counter under one mutex; workers wait for a new generation,
 * run their part, and the last to finish wakes the caller. */
#include "tensor/pool.h"

#include <pthread.h>

enum { POOL_MAX = 64 };

static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_t tid[POOL_MAX];
    int workers;            /* running workers (threads - 1)          */
    unsigned long gen;      /* bumped for every job                   */
    unsigned long start;    /* gen when the workers were started      */
    int pending;            /* workers still on the current job       */
    int quit;
    cn_pool_fn fn;
    void *arg;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void *worker(void *p)
{
    int id = (int)(long)p;
    pthread_mutex_lock(&pool.mu);
    unsigned long seen = pool.start;   /* not pool.gen: a job may be posted before this thread runs */
    for (;;) {
        while (pool.gen == seen && !pool.quit) pthread_cond_wait(&pool.work, &pool.mu);
        if (pool.quit) break;
        seen = pool.gen;
        cn_pool_fn fn = pool.fn;
        void *arg = pool.arg;
        int parts = pool.workers + 1;
        pthread_mutex_unlock(&pool.mu);
        fn(arg, id, parts);
        pthread_mutex_lock(&pool.mu);
        if (--pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

static void pool_stop(void)
{
    if (!pool.workers) return;
    pthread_mutex_lock(&pool.mu);
    pool.quit = 1;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    for (int i = 0; i < pool.workers; i++) pthread_join(pool.tid[i], NULL);
    pool.workers = 0;
    pool.quit = 0;
}

int cn_pool_resize(int n)
{
    if (n < 1) n = 1;
    if (n > POOL_MAX) n = POOL_MAX;
    if (n - 1 == pool.workers) return 0;
    pool_stop();
    pool.start = pool.gen;
    for (int i = 1; i < n; i++) {
        pthread_mutex_lock(&pool.mu);
        int ok = pthread_create(&pool.tid[pool.workers], NULL, worker, (void *)(long)i) == 0;
        if (ok) pool.workers++;
        pthread_mutex_unlock(&pool.mu);
        if (!ok) { pool_stop(); return -1; }
    }
    return 0;
}

int cn_pool_size(void) { return pool.workers + 1; }

void cn_pool_run(cn_pool_fn fn, void *arg)
{
    if (!pool.workers) { fn(arg, 0, 1); return; }
    pthread_mutex_lock(&pool.mu);
    pool.fn = fn;
    pool.arg = arg;
    pool.pending = pool.workers;
    pool.gen++;
    pthread_cond_broadcast(&pool.work);
    int parts = pool.workers + 1;
    pthread_mutex_unlock(&pool.mu);
    fn(arg, 0, parts);
    pthread_mutex_lock(&pool.mu);
    while (pool.pending) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}
