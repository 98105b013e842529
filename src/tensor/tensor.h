/* clipnn tensors: float32, row-major, contiguous, up to 4 dimensions.
 *
 * A cn_tensor is a view: a data pointer and a shape; it never owns its data.
 * Memory comes from one of three owners:
 *   - cn_arena:    per-step temporaries; reset at each step, reused without
 *                  allocating once the first step has sized it;
 *   - cn_paramset: all parameters in one contiguous block and all gradients in
 *                  another, with named views (PyTorch state_dict names);
 *   - the caller (data batches, fixtures).
 * Sequences are time-major: [T, B, F], so the slice at time t is contiguous. */
#ifndef CN_TENSOR_H
#define CN_TENSOR_H

#include "core.h"

#define CN_MAX_DIMS 4

typedef struct {
    float *data;
    int ndim;                 /* 1..CN_MAX_DIMS (a scalar is [1]) */
    int shape[CN_MAX_DIMS];
} cn_tensor;

size_t cn_numel(const cn_tensor *t);
size_t cn_shape_numel(int ndim, const int *shape);
/* Validates ndim/shape (each dim >= 1) and fills a view over `data`. */
cn_status cn_tensor_view(cn_tensor *t, float *data, int ndim, const int *shape);
int  cn_same_shape(const cn_tensor *a, const cn_tensor *b);
/* Rows when seen as a matrix [rows, last dim]. */
size_t cn_rows(const cn_tensor *t);
int  cn_cols(const cn_tensor *t);
/* Writes "[2, 3]" into buf. */
const char *cn_shape_str(const cn_tensor *t, char *buf, size_t n);

/* Heap tensor helpers for callers that own data (tests, datasets). */
cn_status cn_tensor_alloc(cn_tensor *t, int ndim, const int *shape);
void cn_tensor_free(cn_tensor *t);

/* ---- Matrix product (row-major) through cblas_sgemm ----
 * C[M,N] = alpha * op(A) op(B) + beta * C, op(X) = X or X^T.
 * lda/ldb/ldc are the row strides of A, B, C as stored. */
/* With threads >= 2, products of at least this many multiply-adds are split over the worker pool (see
 * tensor.c for the rule and its measurement). */
#ifndef CN_GEMM_SPLIT_MIN
#define CN_GEMM_SPLIT_MIN 16777216.0
#endif
void cn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta,
             float *C, int ldc);
/* The same for the products that touch a parameter's rows, split with the pool exactly when the
 * parameter is (P >= 32 rows and P Q >= CN_PARAM_SPLIT_MIN floats, the rule of cn_paramset_part below)
 * and along those rows, in the parameter's blocks of 16 (cn_pool_range): part p works on the rows that
 * part p of cn_paramset_for_ranges zeroes and updates, so each row of a weight and of its gradient stays
 * on one core. cn_gemm_rows: a gradient C = dW [M, N] (P = M, Q = N), split by C's rows.
 * cn_gemm_cols: a forward product C [M, N] = X W^T with W [N, K] (P = N, Q = K), split by C's columns. */
void cn_gemm_rows(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc);
void cn_gemm_cols(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc);
/* Threads for this process (n >= 1): the library's worker pool (tensor/pool.h), which splits large matrix
 * products (cn_gemm) and the recurrent layers' steps; OpenBLAS itself runs at 1 thread. */
void cn_set_threads(int n);
/* What decides the rounding of the matrix products, recorded with every run: the thread count set by
 * cn_set_threads (it decides how products are split; OpenBLAS's own count before any call), the CPU
 * kernel OpenBLAS selected at run time (openblas_get_corename: "Haswell", "Zen", "SkylakeX", ...) and its
 * build configuration
 * (openblas_get_config: version and options). Another core or thread count splits and orders the sums
 * differently, so results agree only to rounding. */
int cn_blas_threads(void);
const char *cn_blas_core(void);
const char *cn_blas_config(void);

/* ---- Arena: bump allocator for per-step temporaries ----
 * cn_arena_reset() keeps the memory: if a step needed several chunks they are
 * merged into one chunk of the total size, so later steps never allocate. */
typedef struct cn_arena_chunk cn_arena_chunk;
typedef struct {
    cn_arena_chunk *head;     /* current chunk (list of chunks, newest first) */
    size_t used;              /* bytes used in head                           */
    size_t high_water;        /* most bytes a step has needed                 */
    size_t total_this_step;
    size_t min_chunk;
} cn_arena;

void  cn_arena_init(cn_arena *a, size_t min_chunk);
void *cn_arena_alloc(cn_arena *a, size_t bytes);           /* 64-byte aligned, NULL on OOM */
float *cn_arena_floats(cn_arena *a, size_t n, int zero);   /* n floats, zeroed if `zero`   */
cn_status cn_arena_reset(cn_arena *a);
void  cn_arena_free(cn_arena *a);
size_t cn_arena_capacity(const cn_arena *a);

/* ---- Parameter set: one block of parameters, one of gradients ----
 * Add every parameter (sizing), then finalize (one allocation each for data and
 * grad, zeroed). Names are unique, e.g. "0.weight", "1.weight_hh_l0". */
#define CN_NAME_MAX 128

typedef struct {
    char name[CN_NAME_MAX];
    int ndim;
    int shape[CN_MAX_DIMS];
    size_t offset;            /* in floats, into data and grad */
    size_t numel;
} cn_param_info;

typedef struct {
    cn_param_info *info;
    int count, cap;
    float *data;              /* all parameters, contiguous */
    float *grad;              /* all gradients, same layout */
    size_t total;             /* floats in each block */
    int finalized;
} cn_paramset;

void cn_paramset_init(cn_paramset *ps);
/* Returns the new parameter's index in *index (may be NULL). */
cn_status cn_paramset_add(cn_paramset *ps, const char *name, int ndim, const int *shape, int *index);
cn_status cn_paramset_finalize(cn_paramset *ps);
void cn_paramset_free(cn_paramset *ps);
int  cn_paramset_find(const cn_paramset *ps, const char *name);  /* -1 if absent */
cn_tensor cn_param_value(const cn_paramset *ps, int i);
cn_tensor cn_param_grad(const cn_paramset *ps, int i);
void cn_paramset_zero_grad(cn_paramset *ps);
/* Passes over the whole block on the worker pool (threads >= 2, tensor/pool.h). A parameter of at least
 * two dimensions, 32 rows and CN_PARAM_SPLIT_MIN floats is split: part p of n handles whole rows (first
 * dimension) in blocks of 16 (cn_pool_range), the rows its gradient's product (cn_gemm_rows) writes on
 * that part's thread, so gradient zeroing, the product and the optimizer update touch each row on one
 * core. A smaller parameter goes whole to part 0, the calling thread, which computes its gradient.
 * cn_paramset_part gives parameter i's range [j0, j1) in floats for a part (empty: j0 == j1).
 * cn_paramset_for_ranges calls fn(job, j0, j1) for every range of every part, each part on its thread,
 * when some parameter is split and the pool has more than one thread; otherwise once, fn(job, 0, total),
 * over the whole block (gaps between parameters included: they hold zeros). For elementwise passes only:
 * the result must not depend on the split. */
#ifndef CN_PARAM_SPLIT_MIN
#define CN_PARAM_SPLIT_MIN 16384
#endif
typedef void (*cn_range_fn)(const void *job, size_t j0, size_t j1);
void cn_paramset_part(const cn_paramset *ps, int i, int part, int parts, size_t *j0, size_t *j1);
void cn_paramset_for_ranges(const cn_paramset *ps, cn_range_fn fn, const void *job);

/* ---- Elementwise helpers on raw arrays ---- */
void cn_fill(float *x, size_t n, float v);
void cn_axpy(size_t n, float a, const float *x, float *y);  /* y += a*x */
/* Sum of squares in double, fixed (sequential) order. */
double cn_sumsq(const float *x, size_t n);

#endif
