#include "tensor/tensor.h"
#include "tensor/pool.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

size_t cn_shape_numel(int ndim, const int *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

size_t cn_numel(const cn_tensor *t) { return cn_shape_numel(t->ndim, t->shape); }

cn_status cn_tensor_view(cn_tensor *t, float *data, int ndim, const int *shape)
{
    if (ndim < 1 || ndim > CN_MAX_DIMS)
        return cn_error(CN_ERR_SHAPE, "tensor rank %d is outside 1..%d", ndim, CN_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 1) return cn_error(CN_ERR_SHAPE, "tensor dimension %d is %d (must be >= 1)", i, shape[i]);
    memset(t, 0, sizeof *t);
    t->data = data;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int) * (size_t)ndim);
    return CN_OK;
}

int cn_same_shape(const cn_tensor *a, const cn_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

size_t cn_rows(const cn_tensor *t) { return cn_numel(t) / (size_t)t->shape[t->ndim - 1]; }
int cn_cols(const cn_tensor *t) { return t->shape[t->ndim - 1]; }

const char *cn_shape_str(const cn_tensor *t, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %d" : "%d", t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

cn_status cn_tensor_alloc(cn_tensor *t, int ndim, const int *shape)
{
    cn_status st = cn_tensor_view(t, NULL, ndim, shape);
    if (st) return st;
    t->data = cn_malloc_aligned(cn_numel(t) * sizeof(float));
    if (!t->data) return cn_error(CN_ERR_NOMEM, "out of memory for a tensor of %zu floats", cn_numel(t));
    memset(t->data, 0, cn_numel(t) * sizeof(float));
    return CN_OK;
}

void cn_tensor_free(cn_tensor *t)
{
    if (t && t->data) cn_free_aligned(t->data);
    if (t) t->data = NULL;
}

static void gemm1(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* A product of at least CN_GEMM_SPLIT_MIN (tensor.h) multiply-adds runs over the pool when there is one:
 * C's rows (or its columns, whichever dimension is longer) in fixed parts of whole blocks of 16
 * (cn_pool_range), each part one OpenBLAS call at 1 thread with the whole K, so each element's sum is one
 * call's and the split depends only on the thread count. Smaller products run on the calling thread: measured by bench/threads.sh (2-core AMD EPYC,
 * OpenBLAS Cooperlake), the mlp at batch 32 (products of 0.16-13 M multiply-adds) ran at 0.82x of one
 * thread with 1.8x its CPU time when they were split from 1 M, at 1.0x with this threshold; the larger
 * products (the mlp at batch 128 and 512, a recurrent layer's weight gradients) split as before. */
typedef struct {
    int ta, tb, M, N, K, by_rows;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb, ldc;
    float *C;
} gemm_job;

static void gemm_part(void *p, int part, int parts)
{
    const gemm_job *j = p;
    int i0, i1;
    cn_pool_range(j->by_rows ? j->M : j->N, 16, part, parts, &i0, &i1);
    if (i1 <= i0) return;
    if (j->by_rows)   /* rows i0..i1 of C: rows of A, or columns when A is stored transposed */
        gemm1(j->ta, j->tb, i1 - i0, j->N, j->K, j->alpha, j->A + (j->ta ? (size_t)i0 : (size_t)i0 * j->lda), j->lda,
              j->B, j->ldb, j->beta, j->C + (size_t)i0 * j->ldc, j->ldc);
    else              /* columns i0..i1 of C: columns of B, or rows when B is stored transposed */
        gemm1(j->ta, j->tb, j->M, i1 - i0, j->K, j->alpha, j->A, j->lda,
              j->B + (j->tb ? (size_t)i0 * j->ldb : (size_t)i0), j->ldb, j->beta, j->C + i0, j->ldc);
}

/* One product, split over the pool by C's rows (by_rows) or columns when `split`, else one call here. */
static void gemm_run(int split, int by_rows, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (split) {
        gemm_job j = {trans_a, trans_b, M, N, K, by_rows, alpha, beta, A, B, lda, ldb, ldc, C};
        cn_pool_run(gemm_part, &j);
    } else
        gemm1(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta,
             float *C, int ldc)
{
    int split = cn_pool_parts() > 1 && (double)M * N * K >= CN_GEMM_SPLIT_MIN && (M >= 32 || N >= 32);
    gemm_run(split, M >= N, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Whether a parameter of P rows of Q floats is split by rows when the pool is (tensor.h): for its products
 * and its passes alike. */
static int param_rule(int P, double Q) { return P >= 32 && P * Q >= CN_PARAM_SPLIT_MIN; }

void cn_gemm_rows(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc)
{
    gemm_run(cn_pool_parts() > 1 && param_rule(M, N), 1, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cn_gemm_cols(int trans_a, int trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc)
{
    gemm_run(cn_pool_parts() > 1 && param_rule(N, K), 0, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* OpenBLAS always runs at 1 thread here: with threads >= 2 the library splits the products itself (above)
 * and its own loops over the pool, so OpenBLAS's workers never spin on the cores the pool needs. Only when
 * the pool's workers could not be started does OpenBLAS get the threads instead. */
static int lib_threads;   /* 0 until cn_set_threads: then OpenBLAS's own setting stands */

void cn_set_threads(int n)
{
    if (n < 1) n = 1;
    lib_threads = n;
    int pool_ok = cn_pool_resize(n) == 0;
    openblas_set_num_threads(pool_ok ? 1 : n);
}
int cn_blas_threads(void) { return lib_threads ? lib_threads : openblas_get_num_threads(); }
const char *cn_blas_core(void) { const char *c = openblas_get_corename(); return c ? c : "unknown"; }
const char *cn_blas_config(void) { const char *c = openblas_get_config(); return c ? c : "unknown"; }

/* ---- arena ---- */

struct cn_arena_chunk {
    cn_arena_chunk *next;
    size_t size;
    unsigned char *mem;
};

void cn_arena_init(cn_arena *a, size_t min_chunk)
{
    memset(a, 0, sizeof *a);
    a->min_chunk = min_chunk ? min_chunk : (1u << 20);
}

static cn_arena_chunk *chunk_new(size_t size)
{
    cn_arena_chunk *c = cn_malloc(sizeof *c);
    if (!c) return NULL;
    c->mem = cn_malloc_aligned(size);
    if (!c->mem) { cn_free(c); return NULL; }
    c->size = size;
    c->next = NULL;
    return c;
}

void *cn_arena_alloc(cn_arena *a, size_t bytes)
{
    bytes = (bytes + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    if (!a->head || a->used + bytes > a->head->size) {
        size_t size = a->min_chunk;
        if (a->head && a->head->size * 2 > size) size = a->head->size * 2;
        if (bytes > size) size = bytes;
        cn_arena_chunk *c = chunk_new(size);
        if (!c) return NULL;
        c->next = a->head;
        a->head = c;
        a->used = 0;
    }
    void *p = a->head->mem + a->used;
    a->used += bytes;
    a->total_this_step += bytes;
    return p;
}

float *cn_arena_floats(cn_arena *a, size_t n, int zero)
{
    float *p = cn_arena_alloc(a, n * sizeof(float));
    if (p && zero) memset(p, 0, n * sizeof(float));
    return p;
}

cn_status cn_arena_reset(cn_arena *a)
{
    if (a->total_this_step > a->high_water) a->high_water = a->total_this_step;
    a->total_this_step = 0;
    a->used = 0;
    if (a->head && a->head->next) {
        /* Several chunks: replace them by one that holds a whole step. */
        size_t total = 0;
        for (cn_arena_chunk *c = a->head; c; c = c->next) total += c->size;
        cn_arena_chunk *c = a->head;
        while (c) { cn_arena_chunk *n = c->next; cn_free_aligned(c->mem); cn_free(c); c = n; }
        a->head = chunk_new(total);
        if (!a->head) return cn_error(CN_ERR_NOMEM, "out of memory resizing the step arena to %zu bytes", total);
    }
    return CN_OK;
}

void cn_arena_free(cn_arena *a)
{
    cn_arena_chunk *c = a->head;
    while (c) { cn_arena_chunk *n = c->next; cn_free_aligned(c->mem); cn_free(c); c = n; }
    a->head = NULL;
    a->used = 0;
}

size_t cn_arena_capacity(const cn_arena *a)
{
    size_t total = 0;
    for (cn_arena_chunk *c = a->head; c; c = c->next) total += c->size;
    return total;
}

/* ---- parameter set ---- */

void cn_paramset_init(cn_paramset *ps) { memset(ps, 0, sizeof *ps); }

cn_status cn_paramset_add(cn_paramset *ps, const char *name, int ndim, const int *shape, int *index)
{
    if (ps->finalized) return cn_error(CN_ERR_STATE, "parameter '%s' added after the parameter set was finalized", name);
    if (strlen(name) >= CN_NAME_MAX) return cn_error(CN_ERR_ARG, "parameter name '%.40s...' is too long", name);
    if (cn_paramset_find(ps, name) >= 0) return cn_error(CN_ERR_ARG, "duplicate parameter name '%s'", name);
    cn_tensor tmp;
    cn_status st = cn_tensor_view(&tmp, NULL, ndim, shape);
    if (st) return cn_error_prefix(st, "parameter '%s'", name);
    if (ps->count == ps->cap) {
        int cap = ps->cap ? ps->cap * 2 : 16;
        cn_param_info *p = cn_realloc(ps->info, sizeof *p * (size_t)cap);
        if (!p) return cn_error(CN_ERR_NOMEM, "out of memory adding parameter '%s'", name);
        ps->info = p;
        ps->cap = cap;
    }
    cn_param_info *p = &ps->info[ps->count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    memcpy(p->shape, shape, sizeof(int) * (size_t)ndim);
    p->numel = cn_numel(&tmp);
    /* Each tensor starts on a 16-float (64-byte) boundary. */
    p->offset = (ps->total + 15) / 16 * 16;
    ps->total = p->offset + p->numel;
    if (index) *index = ps->count;
    ps->count++;
    return CN_OK;
}

cn_status cn_paramset_finalize(cn_paramset *ps)
{
    if (ps->finalized) return CN_OK;
    size_t n = ps->total ? ps->total : 1;
    ps->data = cn_malloc_aligned(n * sizeof(float));
    ps->grad = cn_malloc_aligned(n * sizeof(float));
    if (!ps->data || !ps->grad) {
        cn_free_aligned(ps->data);
        cn_free_aligned(ps->grad);
        ps->data = ps->grad = NULL;
        return cn_error(CN_ERR_NOMEM, "out of memory for %zu parameters", ps->total);
    }
    memset(ps->data, 0, n * sizeof(float));
    memset(ps->grad, 0, n * sizeof(float));
    ps->finalized = 1;
    return CN_OK;
}

void cn_paramset_free(cn_paramset *ps)
{
    cn_free(ps->info);
    cn_free_aligned(ps->data);
    cn_free_aligned(ps->grad);
    memset(ps, 0, sizeof *ps);
}

int cn_paramset_find(const cn_paramset *ps, const char *name)
{
    for (int i = 0; i < ps->count; i++)
        if (strcmp(ps->info[i].name, name) == 0) return i;
    return -1;
}

static cn_tensor param_view(const cn_paramset *ps, int i, float *base)
{
    cn_tensor t;
    memset(&t, 0, sizeof t);
    t.data = base ? base + ps->info[i].offset : NULL;
    t.ndim = ps->info[i].ndim;
    memcpy(t.shape, ps->info[i].shape, sizeof t.shape);
    return t;
}

cn_tensor cn_param_value(const cn_paramset *ps, int i) { return param_view(ps, i, ps->data); }
cn_tensor cn_param_grad(const cn_paramset *ps, int i) { return param_view(ps, i, ps->grad); }

/* Whether a parameter is split by rows when the pool is: the rule of cn_gemm_rows for its gradient. */
static int param_splits(const cn_param_info *pi)
{
    return pi->ndim >= 2 && param_rule(pi->shape[0], (double)(pi->numel / (size_t)pi->shape[0]));
}

void cn_paramset_part(const cn_paramset *ps, int i, int part, int parts, size_t *j0, size_t *j1)
{
    const cn_param_info *pi = &ps->info[i];
    if (!param_splits(pi) || parts < 2) {   /* the whole parameter on part 0, the calling thread */
        *j0 = pi->offset;
        *j1 = part == 0 ? pi->offset + pi->numel : pi->offset;
        return;
    }
    int r0, r1;
    size_t row = pi->numel / (size_t)pi->shape[0];
    cn_pool_range(pi->shape[0], 16, part, parts, &r0, &r1);
    *j0 = pi->offset + (size_t)r0 * row;
    *j1 = pi->offset + (size_t)r1 * row;
}

typedef struct {
    const cn_paramset *ps;
    cn_range_fn fn;
    const void *job;
} ranges_job;

static void ranges_part(void *arg, int part, int parts)
{
    const ranges_job *r = arg;
    for (int i = 0; i < r->ps->count; i++) {
        size_t j0, j1;
        cn_paramset_part(r->ps, i, part, parts, &j0, &j1);
        if (j1 > j0) r->fn(r->job, j0, j1);
    }
}

void cn_paramset_for_ranges(const cn_paramset *ps, cn_range_fn fn, const void *job)
{
    int split = 0;
    if (cn_pool_parts() > 1)
        for (int i = 0; i < ps->count && !split; i++) split = param_splits(&ps->info[i]);
    if (split) {
        ranges_job r = {ps, fn, job};
        cn_pool_run(ranges_part, &r);
    } else
        fn(job, 0, ps->total);
}

static void zero_range(const void *job, size_t j0, size_t j1)
{
    float *g = (float *)job;
    memset(g + j0, 0, (j1 - j0) * sizeof(float));
}

void cn_paramset_zero_grad(cn_paramset *ps)
{
    if (ps->grad) cn_paramset_for_ranges(ps, zero_range, ps->grad);
}

/* ---- elementwise ---- */

void cn_fill(float *x, size_t n, float v) { for (size_t i = 0; i < n; i++) x[i] = v; }
void cn_axpy(size_t n, float a, const float *x, float *y) { for (size_t i = 0; i < n; i++) y[i] += a * x[i]; }

double cn_sumsq(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}
