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

/* ---- Elementwise helpers on raw arrays ---- */
void cn_fill(float *x, size_t n, float v);
void cn_axpy(size_t n, float a, const float *x, float *y);  /* y += a*x */
/* Sum of squares in double, fixed (sequential) order. */
double cn_sumsq(const float *x, size_t n);

#endif
