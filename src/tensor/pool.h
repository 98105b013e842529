/* A small persistent pool of worker threads for the library's own parallel loops (large matrix products in
 * cn_gemm, a recurrent layer's batch rows and its other whole-array passes). cn_set_threads(n) sizes it: n - 1 workers beside the calling
 * thread, created once and joined when the count changes (cn_set_threads(1) stops them) and at exit. A
 * worker that finished a part polls for the next one for a few microseconds (POOL_SPIN pauses: the next
 * time step's work follows at once) and then sleeps on a condition variable, so an idle pool costs no CPU;
 * a parallel call allocates nothing.
 *
 * Determinism: cn_pool_run hands out fixed parts (part i of n always covers the same work), and the
 * callers split so that every output element is computed by the same operations whatever the split, so
 * results do not depend on which thread ran a part. One job at a time: threads of a program that train
 * at once take turns (cn_pool_run and cn_pool_resize hold one lock for their whole length); a job must not
 * call cn_pool_run itself. The size is process-wide, like OpenBLAS's thread count: a cn_set_threads in one
 * thread changes the split of another's next steps. Internal. */
#ifndef CN_TENSOR_POOL_H
#define CN_TENSOR_POOL_H

#include <stddef.h>

typedef void (*cn_pool_fn)(void *arg, int part, int parts);

/* The CPUs this process may run on (its affinity mask: taskset, a container's cpuset), at least 1; the online
 * CPU count where the mask cannot be read. */
int cn_usable_cores(void);
/* Threads a cn_pool_run splits into (1: no workers, fn runs inline). */
int cn_pool_size(void);
/* fn(arg, i, n) for i = 0 .. n-1 with n = cn_pool_size(); part 0 runs on the caller; returns when all
 * parts are done. */
void cn_pool_run(cn_pool_fn fn, void *arg);
/* Sizes the pool (called by cn_set_threads); n <= 1 stops the workers. Returns 0, or -1 when a worker
 * could not be started (then the pool runs inline). */
int cn_pool_resize(int n);
/* Part `part` of `parts` of the range 0 .. len in whole units of `unit` (the last part ends at len):
 * [*i0, *i1), empty when there are fewer units than parts. Fixed for a given part count. */
void cn_pool_range(int len, int unit, int part, int parts, int *i0, int *i1);
/* An elementwise or row-wise pass over [0, n): fn(arg, i0, i1) for ranges in whole units of `unit` (the
 * last ends at n), over the pool when it has more than one part and n >= min, else fn(arg, 0, n) here.
 * The split is fixed for a given part count; fn must give each index the same result whatever range it
 * falls in (the vector kernels of vec.h do), so results do not depend on the thread count. */
typedef void (*cn_pool_range_fn)(void *arg, size_t i0, size_t i1);
void cn_pool_for(size_t n, size_t unit, size_t min, cn_pool_range_fn fn, void *arg);
/* The pool_for threshold of the library's elementwise passes, in elements: below it a hand-off to the
 * worker costs more than it saves (bench/threads.sh, docs/performance.md). */
#ifndef CN_ELEM_SPLIT_MIN
#define CN_ELEM_SPLIT_MIN 32768
#endif
/* Whether the calling thread is running a part of a pool job (then it must not call cn_pool_run). */
int cn_pool_in_job(void);
/* How many parts a job started here would run in: the pool's size, or 1 inside a job (no nesting). */
int cn_pool_parts(void);

#endif
