/* Suite "tensor": views, gemm, arena, parameter set, RNG, allocation failure
 * injection and error messages (src/tensor). */
#include "testutil.h"

#include <pthread.h>
#include "tensor/pool.h"

#include <stdio.h>
#include <stdlib.h>

#include <stdint.h>
#include <string.h>

/* ---- views ---- */

START_TEST(view_rejects_rank_0_and_5)
{
    float d[4];
    cn_tensor t;
    int shape[5] = {1, 1, 1, 1, 1};
    ck_assert_int_eq(cn_tensor_view(&t, d, 0, shape), CN_ERR_SHAPE);
    ck_assert_int_eq(cn_tensor_view(&t, d, 5, shape), CN_ERR_SHAPE);
    ck_assert_int_eq(cn_tensor_view(&t, d, -1, shape), CN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "rank"));
    ck_assert_ok(cn_tensor_view(&t, d, 4, shape));
    ck_assert_ok(cn_tensor_view(&t, d, 1, shape));
}
END_TEST

START_TEST(view_rejects_zero_and_negative_dims)
{
    float d[4];
    cn_tensor t;
    ck_assert_int_eq(cn_tensor_view(&t, d, 2, (int[]){2, 0}), CN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "dimension 1 is 0"));
    ck_assert_int_eq(cn_tensor_view(&t, d, 3, (int[]){-2, 1, 2}), CN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "dimension 0 is -2"));
}
END_TEST

START_TEST(numel_rows_cols_of_rank_1_to_4)
{
    float d[1];
    cn_tensor t;
    ck_assert_ok(cn_tensor_view(&t, d, 1, (int[]){7}));
    ck_assert_uint_eq(cn_numel(&t), 7);
    ck_assert_uint_eq(cn_rows(&t), 1);
    ck_assert_int_eq(cn_cols(&t), 7);
    ck_assert_ok(cn_tensor_view(&t, d, 2, (int[]){3, 5}));
    ck_assert_uint_eq(cn_numel(&t), 15);
    ck_assert_uint_eq(cn_rows(&t), 3);
    ck_assert_int_eq(cn_cols(&t), 5);
    ck_assert_ok(cn_tensor_view(&t, d, 3, (int[]){4, 2, 3}));
    ck_assert_uint_eq(cn_numel(&t), 24);
    ck_assert_uint_eq(cn_rows(&t), 8);
    ck_assert_int_eq(cn_cols(&t), 3);
    ck_assert_ok(cn_tensor_view(&t, d, 4, (int[]){2, 3, 4, 5}));
    ck_assert_uint_eq(cn_numel(&t), 120);
    ck_assert_uint_eq(cn_rows(&t), 24);
    ck_assert_int_eq(cn_cols(&t), 5);
    char buf[32];
    ck_assert_str_eq(cn_shape_str(&t, buf, sizeof buf), "[2, 3, 4, 5]");
    char tiny[5];
    cn_shape_str(&t, tiny, sizeof tiny);    /* truncates, stays terminated */
    ck_assert_uint_lt(strlen(tiny), sizeof tiny);
}
END_TEST

START_TEST(same_shape_compares_rank_and_dims)
{
    float d[1];
    cn_tensor a, b, c;
    ck_assert_ok(cn_tensor_view(&a, d, 2, (int[]){2, 3}));
    ck_assert_ok(cn_tensor_view(&b, d, 2, (int[]){2, 3}));
    ck_assert_ok(cn_tensor_view(&c, d, 3, (int[]){2, 3, 1}));
    ck_assert(cn_same_shape(&a, &b));
    ck_assert(!cn_same_shape(&a, &c));
    ck_assert_ok(cn_tensor_view(&c, d, 2, (int[]){3, 2}));
    ck_assert(!cn_same_shape(&a, &c));
}
END_TEST

/* ---- gemm ---- */

/* C = alpha op(A) op(B) + beta C, naive, double accumulation. */
static void naive_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
            }
            C[(size_t)i * ldc + j] = (float)(alpha * s + beta * C[(size_t)i * ldc + j]);
        }
}

START_TEST(gemm_matches_naive_all_transposes_and_betas)
{
    enum { M = 3, N = 5, K = 4, PAD = 2 };
    int combo = _i;    /* loop test: ta, tb, beta */
    int ta = combo & 1, tb = (combo >> 1) & 1;
    float beta = (combo >> 2) & 1 ? 1.0f : 0.0f;
    /* Stored shapes: A [M,K] or [K,M]; B [K,N] or [N,K]; row strides padded by PAD. */
    int a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
    int lda = a_cols + PAD, ldb = b_cols + PAD, ldc = N + PAD;
    float A[16 * 16], B[16 * 16], C[16 * 16], R[16 * 16];
    tu_fill_uniform(A, (size_t)a_rows * lda, 10 + combo, -1, 1);
    tu_fill_uniform(B, (size_t)b_rows * ldb, 20 + combo, -1, 1);
    tu_fill_uniform(C, (size_t)M * ldc, 30 + combo, -1, 1);
    if (beta == 0.0f)   /* beta = 0 must ignore C, even NaN (BLAS semantics) */
        for (int i = 0; i < M; i++) C[(size_t)i * ldc] = NAN;
    memcpy(R, C, sizeof C);
    cn_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C, ldc);
    if (beta == 0.0f)
        for (int i = 0; i < M; i++) R[(size_t)i * ldc] = 0.0f;
    naive_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, R, ldc);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            size_t k = (size_t)i * ldc + j;
            if (j < N)
                ck_assert_msg(fabsf(C[k] - R[k]) <= 1e-5f, "ta=%d tb=%d beta=%g C[%d,%d] = %g, naive %g", ta, tb,
                              (double)beta, i, j, (double)C[k], (double)R[k]);
            else   /* padding between rows untouched */
                ck_assert_msg(memcmp(&C[k], &R[k], sizeof(float)) == 0, "padding C[%d,%d] written", i, j);
        }
}
END_TEST

/* Products large enough to split over the pool (threads 2 and 3): C by rows (M >= N) and by columns
 * (N > M), every transpose, beta 0 and 1, strided; each equals the naive product within float rounding,
 * the padding between C's rows stays untouched, and a rerun gives the same bits. */
START_TEST(split_gemm_matches_naive_and_reruns_identically)
{
    int combo = _i;    /* loop test: ta, tb, beta, which dimension is longer */
    int ta = combo & 1, tb = (combo >> 1) & 1, wide = (combo >> 3) & 1;
    float beta = (combo >> 2) & 1 ? 1.0f : 0.0f;
    int M = wide ? 40 : 203, N = wide ? 230 : 37, K = 2300, PAD = 3;
    ck_assert((double)M * N * K >= CN_GEMM_SPLIT_MIN);   /* large enough to split */
    int a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
    int lda = a_cols + PAD, ldb = b_cols + PAD, ldc = N + PAD;
    size_t nc = (size_t)M * ldc;
    float *A = malloc(sizeof(float) * (size_t)a_rows * lda), *B = malloc(sizeof(float) * (size_t)b_rows * ldb);
    float *C0 = malloc(sizeof(float) * nc), *C = malloc(sizeof(float) * nc), *C2 = malloc(sizeof(float) * nc),
          *R = malloc(sizeof(float) * nc);
    ck_assert(A && B && C0 && C && C2 && R);
    tu_fill_uniform(A, (size_t)a_rows * lda, 40 + combo, -1, 1);
    tu_fill_uniform(B, (size_t)b_rows * ldb, 50 + combo, -1, 1);
    tu_fill_uniform(C0, nc, 60 + combo, -1, 1);
    memcpy(R, C0, sizeof(float) * nc);
    naive_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, R, ldc);
    for (int threads = 2; threads <= 3; threads++) {
        cn_set_threads(threads);
        memcpy(C, C0, sizeof(float) * nc);
        memcpy(C2, C0, sizeof(float) * nc);
        cn_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C, ldc);
        cn_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C2, ldc);
        ck_assert_msg(memcmp(C, C2, sizeof(float) * nc) == 0, "combo %d threads %d: rerun differs", combo, threads);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < ldc; j++) {
                size_t k = (size_t)i * ldc + j;
                if (j < N)
                    ck_assert_msg(fabsf(C[k] - R[k]) <= 1e-3f, "combo %d threads %d C[%d,%d] = %g, naive %g", combo,
                                  threads, i, j, (double)C[k], (double)R[k]);
                else
                    ck_assert_msg(memcmp(&C[k], &C0[k], sizeof(float)) == 0, "combo %d: padding C[%d,%d] written", combo, i, j);
            }
    }
    cn_set_threads(1);
    free(A); free(B); free(C0); free(C); free(C2); free(R);
}
END_TEST

/* The parameter block's ranges (cn_paramset_for_ranges): at every thread count each element of every
 * parameter is handed out exactly once; a parameter of >= 32 rows and CN_PARAM_SPLIT_MIN floats is split
 * by rows in cn_pool_range's blocks of 16, the rest goes whole to part 0. */
static void count_range(const void *job, size_t j0, size_t j1)
{
    int *count = (int *)job;
    for (size_t j = j0; j < j1; j++) __atomic_add_fetch(&count[j], 1, __ATOMIC_RELAXED);
}

START_TEST(param_ranges_cover_each_element_once)
{
    static const int shapes[][2] = {{300, 333}, {31, 1000}, {1003, 0}, {40, 1000}, {7, 3}};
    enum { P = sizeof shapes / sizeof shapes[0] };
    cn_paramset ps;
    cn_paramset_init(&ps);
    for (int i = 0; i < P; i++)
        ck_assert_ok(cn_paramset_add(&ps, (const char *[]){"a", "b", "c", "d", "e"}[i], shapes[i][1] ? 2 : 1, shapes[i], NULL));
    ck_assert_ok(cn_paramset_finalize(&ps));
    int *count = calloc(ps.total, sizeof(int));
    ck_assert_ptr_nonnull(count);
    for (int threads = 1; threads <= 4; threads++) {
        cn_set_threads(threads);
        memset(count, 0, ps.total * sizeof(int));
        cn_paramset_for_ranges(&ps, count_range, count);
        for (int i = 0; i < P; i++)
            for (size_t j = 0; j < ps.info[i].numel; j++)
                ck_assert_msg(count[ps.info[i].offset + j] == 1, "threads %d: param %d element %zu handed out %d times",
                              threads, i, j, count[ps.info[i].offset + j]);
        for (int i = 0; i < P; i++) {
            int split = shapes[i][1] && shapes[i][0] >= 32 && ps.info[i].numel >= CN_PARAM_SPLIT_MIN;
            size_t row = ps.info[i].numel / (size_t)shapes[i][0];
            for (int part = 0; part < threads; part++) {
                size_t j0, j1;
                int r0, r1;
                cn_paramset_part(&ps, i, part, threads, &j0, &j1);
                if (split && threads > 1) {
                    cn_pool_range(shapes[i][0], 16, part, threads, &r0, &r1);
                    ck_assert_uint_eq(j0, ps.info[i].offset + (size_t)r0 * row);
                    ck_assert_uint_eq(j1, ps.info[i].offset + (size_t)r1 * row);
                } else
                    ck_assert_uint_eq(j1 - j0, part == 0 ? ps.info[i].numel : 0);
            }
        }
    }
    cn_set_threads(1);
    free(count);
    cn_paramset_free(&ps);
}
END_TEST

/* cn_gemm_rows (a gradient, split by C's rows) and cn_gemm_cols (X W^T, split by C's columns) split by the
 * parameter's size, not the product's: with a K that keeps the product below CN_GEMM_SPLIT_MIN, at 2 and
 * 3 threads every element of a NaN-filled C is written (beta 0), matches the naive product, and a rerun
 * gives the same bits. */
START_TEST(param_products_split_by_the_parameter)
{
    int cols = _i;   /* 0: cn_gemm_rows, C [P, Q]; 1: cn_gemm_cols, C [M, P] with W [P, Q] */
    const int P = 200, Q = 150, Kr = 24, Mc = 24;
    ck_assert((double)P * Q >= CN_PARAM_SPLIT_MIN && (double)P * Q * Kr < CN_GEMM_SPLIT_MIN);
    int M = cols ? Mc : P, N = cols ? P : Q, K = cols ? Q : Kr;
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb), *C = malloc(sizeof(float) * nc),
          *C2 = malloc(sizeof(float) * nc), *R = malloc(sizeof(float) * nc);
    ck_assert(A && B && C && C2 && R);
    tu_fill_uniform(A, na, 70 + cols, -1, 1);
    tu_fill_uniform(B, nb, 80 + cols, -1, 1);
    for (size_t i = 0; i < nc; i++) R[i] = 0.0f;
    naive_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, R, N);   /* B stored [N, K]: op(B) = B^T */
    for (int threads = 2; threads <= 3; threads++) {
        cn_set_threads(threads);
        for (int rerun = 0; rerun < 2; rerun++) {
            float *out = rerun ? C2 : C;
            for (size_t i = 0; i < nc; i++) out[i] = NAN;   /* beta 0: every element written */
            if (cols) cn_gemm_cols(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, out, N);
            else cn_gemm_rows(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, out, N);
        }
        ck_assert_msg(memcmp(C, C2, sizeof(float) * nc) == 0, "cols %d threads %d: rerun differs", cols, threads);
        for (size_t i = 0; i < nc; i++)
            ck_assert_msg(fabsf(C[i] - R[i]) <= 1e-4f, "cols %d threads %d: C[%zu] = %g, naive %g", cols, threads, i,
                          (double)C[i], (double)R[i]);
    }
    cn_set_threads(1);
    free(A); free(B); free(C); free(C2); free(R);
}
END_TEST

/* ---- arena ---- */

START_TEST(arena_allocations_are_64_byte_aligned)
{
    cn_arena a;
    cn_arena_init(&a, 4096);
    size_t sizes[] = {1, 3, 64, 65, 100, 0, 5000, 7};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = cn_arena_alloc(&a, sizes[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 64, 0);
        memset(p, 0xab, sizes[i]);    /* ASan: the whole request is usable */
    }
    float *f = cn_arena_floats(&a, 33, 1);
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 33; i++) ck_assert(f[i] == 0.0f);
    cn_arena_free(&a);
}
END_TEST

START_TEST(arena_allocations_do_not_overlap)
{
    cn_arena a;
    cn_arena_init(&a, 256);
    unsigned char *p[20];
    for (int i = 0; i < 20; i++) {
        p[i] = cn_arena_alloc(&a, 100);
        memset(p[i], i, 100);
    }
    for (int i = 0; i < 20; i++)
        for (int j = 0; j < 100; j++) ck_assert_int_eq(p[i][j], i);
    cn_arena_free(&a);
}
END_TEST

static void arena_step(cn_arena *a)
{
    for (int i = 0; i < 40; i++) {
        float *p = cn_arena_floats(a, 100 + 37 * (size_t)i, 1);
        ck_assert_ptr_nonnull(p);
    }
}

START_TEST(arena_reset_consolidates_so_second_step_allocates_nothing)
{
    cn_arena a;
    cn_arena_init(&a, 1024);     /* far smaller than one step: several chunks */
    arena_step(&a);
    size_t cap1 = cn_arena_capacity(&a);
    ck_assert_ok(cn_arena_reset(&a));
    size_t cap2 = cn_arena_capacity(&a);
    ck_assert_uint_ge(cap2, cap1);          /* one chunk holding the whole step */
    uint64_t before = cn_alloc_count();
    arena_step(&a);
    ck_assert_uint_eq(cn_alloc_count(), before);
    ck_assert_uint_eq(cn_arena_capacity(&a), cap2);
    ck_assert_ok(cn_arena_reset(&a));
    arena_step(&a);
    ck_assert_ok(cn_arena_reset(&a));
    ck_assert_uint_eq(cn_alloc_count(), before);
    cn_arena_free(&a);
    ck_assert_uint_eq(cn_arena_capacity(&a), 0);
}
END_TEST

START_TEST(arena_alloc_returns_null_on_injected_failure)
{
    cn_arena a;
    cn_arena_init(&a, 1024);
    cn_alloc_fail_at(1);
    void *p = cn_arena_alloc(&a, 10);
    cn_alloc_fail_at(0);
    ck_assert_ptr_null(p);
    cn_alloc_fail_at(2);     /* chunk header succeeds, its memory fails: no leak */
    p = cn_arena_alloc(&a, 10);
    cn_alloc_fail_at(0);
    ck_assert_ptr_null(p);
    p = cn_arena_alloc(&a, 10);    /* recovers afterwards */
    ck_assert_ptr_nonnull(p);
    /* A failing consolidation reports NOMEM and leaves a usable arena. */
    for (int i = 0; i < 10; i++) ck_assert_ptr_nonnull(cn_arena_alloc(&a, 1000));
    cn_alloc_fail_at(1);
    cn_status st = cn_arena_reset(&a);
    cn_alloc_fail_at(0);
    ck_assert_int_eq(st, CN_ERR_NOMEM);
    ck_assert_ptr_nonnull(cn_arena_alloc(&a, 10));
    cn_arena_free(&a);
}
END_TEST

/* ---- parameter set ---- */

static void make_params(cn_paramset *ps)
{
    cn_paramset_init(ps);
    ck_assert_ok(cn_paramset_add(ps, "0.weight", 2, (int[]){3, 5}, NULL));
    int idx = -1;
    ck_assert_ok(cn_paramset_add(ps, "0.bias", 1, (int[]){3}, &idx));
    ck_assert_int_eq(idx, 1);
    ck_assert_ok(cn_paramset_add(ps, "1.weight_hh_l0", 2, (int[]){17, 1}, &idx));
    ck_assert_int_eq(idx, 2);
}

START_TEST(paramset_offsets_are_64_byte_aligned)
{
    cn_paramset ps;
    make_params(&ps);
    ck_assert_ok(cn_paramset_finalize(&ps));
    ck_assert_uint_eq((uintptr_t)ps.data % 64, 0);
    ck_assert_uint_eq((uintptr_t)ps.grad % 64, 0);
    size_t end = 0;
    for (int i = 0; i < ps.count; i++) {
        ck_assert_uint_eq(ps.info[i].offset % 16, 0);
        ck_assert_uint_ge(ps.info[i].offset, end);      /* no overlap */
        end = ps.info[i].offset + ps.info[i].numel;
        cn_tensor v = cn_param_value(&ps, i), gr = cn_param_grad(&ps, i);
        ck_assert_uint_eq((uintptr_t)v.data % 64, 0);
        ck_assert_uint_eq((uintptr_t)gr.data % 64, 0);
        ck_assert_uint_eq(cn_numel(&v), ps.info[i].numel);
        for (size_t j = 0; j < ps.info[i].numel; j++) ck_assert(v.data[j] == 0.0f && gr.data[j] == 0.0f);
    }
    ck_assert_uint_eq(ps.total, end);
    ck_assert_uint_eq(ps.info[0].numel, 15);
    ck_assert_uint_eq(ps.info[1].offset, 16);
    ck_assert_uint_eq(ps.info[2].offset, 32);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(paramset_rejects_duplicate_name)
{
    cn_paramset ps;
    make_params(&ps);
    ck_assert_int_eq(cn_paramset_add(&ps, "0.bias", 1, (int[]){4}, NULL), CN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "0.bias"));
    ck_assert_int_eq(ps.count, 3);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(paramset_rejects_bad_shape_and_long_name)
{
    cn_paramset ps;
    make_params(&ps);
    ck_assert_int_eq(cn_paramset_add(&ps, "2.weight", 2, (int[]){3, 0}, NULL), CN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "2.weight"));
    char longname[CN_NAME_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    ck_assert_int_eq(cn_paramset_add(&ps, longname, 1, (int[]){1}, NULL), CN_ERR_ARG);
    ck_assert_int_eq(ps.count, 3);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(paramset_rejects_add_after_finalize)
{
    cn_paramset ps;
    make_params(&ps);
    ck_assert_ok(cn_paramset_finalize(&ps));
    ck_assert_int_eq(cn_paramset_add(&ps, "2.weight", 1, (int[]){4}, NULL), CN_ERR_STATE);
    ck_assert_int_eq(ps.count, 3);
    ck_assert_ok(cn_paramset_finalize(&ps));    /* idempotent */
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(paramset_find_returns_index_or_minus_one)
{
    cn_paramset ps;
    make_params(&ps);
    ck_assert_int_eq(cn_paramset_find(&ps, "0.weight"), 0);
    ck_assert_int_eq(cn_paramset_find(&ps, "1.weight_hh_l0"), 2);
    ck_assert_int_eq(cn_paramset_find(&ps, "0.weigh"), -1);
    ck_assert_int_eq(cn_paramset_find(&ps, ""), -1);
    cn_paramset_free(&ps);
    cn_paramset_init(&ps);
    ck_assert_int_eq(cn_paramset_find(&ps, "0.weight"), -1);
}
END_TEST

START_TEST(paramset_zero_grad_clears_all_gradients_only)
{
    cn_paramset ps;
    make_params(&ps);
    ck_assert_ok(cn_paramset_finalize(&ps));
    cn_fill(ps.data, ps.total, 2.0f);
    cn_fill(ps.grad, ps.total, 3.0f);
    cn_paramset_zero_grad(&ps);
    for (size_t i = 0; i < ps.total; i++) {
        ck_assert(ps.grad[i] == 0.0f);
        ck_assert(ps.data[i] == 2.0f);
    }
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(paramset_many_params_grow_info_array)
{
    cn_paramset ps;
    cn_paramset_init(&ps);
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "%d.weight", i);
        ck_assert_ok(cn_paramset_add(&ps, name, 1, (int[]){i + 1}, NULL));
    }
    ck_assert_ok(cn_paramset_finalize(&ps));
    ck_assert_int_eq(cn_paramset_find(&ps, "99.weight"), 99);
    ck_assert_uint_eq(ps.info[99].numel, 100);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(paramset_finalize_nomem_then_retry)
{
    for (uint64_t k = 1; k <= 2; k++) {
        cn_paramset ps;
        make_params(&ps);
        cn_alloc_fail_at(k);
        cn_status st = cn_paramset_finalize(&ps);
        cn_alloc_fail_at(0);
        ck_assert_int_eq(st, CN_ERR_NOMEM);
        ck_assert(!ps.finalized);
        ck_assert_ptr_null(ps.data);
        ck_assert_ptr_null(ps.grad);
        ck_assert_ok(cn_paramset_finalize(&ps));
        cn_paramset_free(&ps);
    }
}
END_TEST

START_TEST(paramset_add_nomem_keeps_set_valid)
{
    cn_paramset ps;
    cn_paramset_init(&ps);
    cn_alloc_fail_at(1);
    cn_status st = cn_paramset_add(&ps, "a", 1, (int[]){2}, NULL);
    cn_alloc_fail_at(0);
    ck_assert_int_eq(st, CN_ERR_NOMEM);
    ck_assert_int_eq(ps.count, 0);
    ck_assert_ok(cn_paramset_add(&ps, "a", 1, (int[]){2}, NULL));
    cn_paramset_free(&ps);
}
END_TEST

/* ---- RNG ---- */

START_TEST(rng_same_seed_same_stream)
{
    cn_rng a, b;
    cn_rng_seed(&a, 42);
    cn_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) ck_assert_uint_eq(cn_rng_u64(&a), cn_rng_u64(&b));
    for (int i = 0; i < 101; i++) ck_assert(cn_rng_normal(&a) == cn_rng_normal(&b));
}
END_TEST

START_TEST(rng_different_seeds_differ)
{
    cn_rng a, b;
    cn_rng_seed(&a, 1);
    cn_rng_seed(&b, 2);
    int same = 0;
    for (int i = 0; i < 100; i++) same += cn_rng_u64(&a) == cn_rng_u64(&b);
    ck_assert_int_eq(same, 0);
    cn_rng_seed(&a, 0);     /* seed 0 is valid (SplitMix64 never gives an all-zero state) */
    ck_assert(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
}
END_TEST

START_TEST(rng_uniform_stays_in_range)
{
    cn_rng r;
    cn_rng_seed(&r, 7);
    double lo_seen = 1e9, hi_seen = -1e9;
    for (int i = 0; i < 100000; i++) {
        float u = cn_rng_uniform(&r, -0.25f, 0.75f);
        ck_assert(u >= -0.25f && u < 0.75f);
        if (u < lo_seen) lo_seen = u;
        if (u > hi_seen) hi_seen = u;
        double d = cn_rng_double(&r);
        ck_assert(d >= 0.0 && d < 1.0);
    }
    ck_assert(lo_seen < -0.24 && hi_seen > 0.74);   /* covers the range */
}
END_TEST

START_TEST(rng_normal_mean_and_std_over_100k)
{
    cn_rng r;
    cn_rng_seed(&r, 123);
    const int n = 100000;
    double s = 0.0, s2 = 0.0;
    int beyond3 = 0;
    for (int i = 0; i < n; i++) {
        double x = cn_rng_normal(&r);
        ck_assert(isfinite(x));
        s += x;
        s2 += x * x;
        beyond3 += fabs(x) > 3.0;
    }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    /* Standard errors: mean 1/sqrt(n) = 0.0032, std ~0.0022; tolerances ~5 SE. */
    ck_assert_near(mean, 0.0, 0.016);
    ck_assert_near(sd, 1.0, 0.011);
    /* P(|x| > 3) = 0.0027 -> 270 expected */
    ck_assert_int_gt(beyond3, 170);
    ck_assert_int_lt(beyond3, 370);
}
END_TEST

START_TEST(rng_below_is_in_range_and_covers_it)
{
    cn_rng r;
    cn_rng_seed(&r, 5);
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++) {
        uint64_t v = cn_rng_below(&r, 7);
        ck_assert_uint_lt(v, 7);
        hist[v]++;
    }
    for (int i = 0; i < 7; i++) ck_assert_msg(abs(hist[i] - 10000) < 500, "bucket %d: %d", i, hist[i]);
    ck_assert_uint_eq(cn_rng_below(&r, 1), 0);
    ck_assert_uint_eq(cn_rng_below(&r, 0), 0);
}
END_TEST

START_TEST(rng_shuffle_is_a_permutation)
{
    cn_rng r;
    cn_rng_seed(&r, 9);
    enum { N = 257 };
    int32_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = i;
    cn_rng_shuffle(&r, idx, N);
    int seen[N] = {0}, fixed = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(idx[i] >= 0 && idx[i] < N);
        seen[idx[i]]++;
        fixed += idx[i] == i;
    }
    for (int i = 0; i < N; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_lt(fixed, 10);    /* it did shuffle (expected fixed points: 1) */
    int32_t one = 5;
    cn_rng_shuffle(&r, &one, 1);
    ck_assert_int_eq(one, 5);
    cn_rng_shuffle(&r, NULL, 0);
}
END_TEST

START_TEST(rng_save_load_reproduces_stream_with_pending_spare)
{
    cn_rng a, b;
    cn_rng_seed(&a, 77);
    for (int i = 0; i < 5; i++) cn_rng_u64(&a);
    (void)cn_rng_normal(&a);          /* leaves a spare normal pending */
    ck_assert(a.has_spare);
    char text[CN_RNG_STATE_LEN];
    cn_rng_save(&a, text);
    ck_assert_uint_eq(strlen(text), 81);
    cn_rng_seed(&b, 1);
    ck_assert_ok(cn_rng_load(&b, text));
    ck_assert(cn_rng_normal(&a) == cn_rng_normal(&b));   /* the spare, bit-exact */
    for (int i = 0; i < 50; i++) {
        ck_assert(cn_rng_normal(&a) == cn_rng_normal(&b));
        ck_assert_uint_eq(cn_rng_u64(&a), cn_rng_u64(&b));
    }
    /* Without a spare as well. */
    while (a.has_spare) (void)cn_rng_normal(&a);
    cn_rng_save(&a, text);
    ck_assert_ok(cn_rng_load(&b, text));
    for (int i = 0; i < 50; i++) ck_assert(cn_rng_normal(&a) == cn_rng_normal(&b));
}
END_TEST

START_TEST(rng_load_rejects_malformed_text)
{
    cn_rng a, b;
    cn_rng_seed(&a, 3);
    (void)cn_rng_normal(&a);
    char good[CN_RNG_STATE_LEN], bad[CN_RNG_STATE_LEN + 2];
    cn_rng_save(&a, good);
    b = a;
    ck_assert_int_eq(cn_rng_load(&b, NULL), CN_ERR_FORMAT);
    ck_assert_int_eq(cn_rng_load(&b, ""), CN_ERR_FORMAT);
    memcpy(bad, good, 80); bad[80] = 0;                         /* too short */
    ck_assert_int_eq(cn_rng_load(&b, bad), CN_ERR_FORMAT);
    snprintf(bad, sizeof bad, "%s0", good);                       /* too long */
    ck_assert_int_eq(cn_rng_load(&b, bad), CN_ERR_FORMAT);
    strcpy(bad, good); bad[3] = 'g';                              /* not hex */
    ck_assert_int_eq(cn_rng_load(&b, bad), CN_ERR_FORMAT);
    strcpy(bad, good); bad[70] = 'z';                             /* spare not hex */
    ck_assert_int_eq(cn_rng_load(&b, bad), CN_ERR_FORMAT);
    strcpy(bad, good); bad[64] = '2';                             /* spare flag */
    ck_assert_int_eq(cn_rng_load(&b, bad), CN_ERR_FORMAT);
    memset(bad, '0', 81); bad[81] = 0;                            /* all-zero state */
    ck_assert_int_eq(cn_rng_load(&b, bad), CN_ERR_FORMAT);
    /* A failed load leaves the generator untouched (field by field: the struct has padding). */
    ck_assert(memcmp(a.s, b.s, sizeof a.s) == 0);
    ck_assert_int_eq(a.has_spare, b.has_spare);
    ck_assert(memcmp(&a.spare, &b.spare, sizeof a.spare) == 0);
}
END_TEST

/* ---- allocation accounting and failure injection ---- */

START_TEST(alloc_count_counts_successful_allocations)
{
    uint64_t c0 = cn_alloc_count();
    void *p = cn_malloc(10), *q = cn_calloc(3, 4), *r = cn_malloc_aligned(100), *z = cn_malloc(0);
    char *s = cn_strdup("abc");
    ck_assert_ptr_nonnull(z);
    ck_assert_uint_eq((uintptr_t)r % 64, 0);
    ck_assert_uint_eq(cn_alloc_count(), c0 + 5);
    p = cn_realloc(p, 1000);
    ck_assert_uint_eq(cn_alloc_count(), c0 + 6);
    ck_assert_str_eq(s, "abc");
    cn_free(p); cn_free(q); cn_free_aligned(r); cn_free(z); cn_free(s);
    cn_free(NULL);
    cn_free_aligned(NULL);
}
END_TEST

START_TEST(alloc_fail_at_k_fails_exactly_the_kth)
{
    cn_alloc_fail_at(3);
    void *p1 = cn_malloc(8), *p2 = cn_calloc(1, 8), *p3 = cn_malloc_aligned(8), *p4 = cn_malloc(8);
    cn_alloc_fail_at(0);
    ck_assert_ptr_nonnull(p1);
    ck_assert_ptr_nonnull(p2);
    ck_assert_ptr_null(p3);
    ck_assert_ptr_nonnull(p4);     /* one-shot */
    cn_free(p1); cn_free(p2); cn_free(p4);
    /* A failing realloc keeps the old block. */
    char *p = cn_malloc(4);
    memcpy(p, "abc", 4);
    cn_alloc_fail_at(1);
    char *q = cn_realloc(p, 4096);
    cn_alloc_fail_at(0);
    ck_assert_ptr_null(q);
    ck_assert_str_eq(p, "abc");
    cn_free(p);
    cn_alloc_fail_at(1);
    ck_assert_ptr_null(cn_strdup("x"));
    cn_alloc_fail_at(0);
}
END_TEST

START_TEST(tensor_alloc_nomem_reports_error)
{
    cn_tensor t;
    cn_alloc_fail_at(1);
    cn_status st = cn_tensor_alloc(&t, 2, (int[]){3, 4});
    cn_alloc_fail_at(0);
    ck_assert_int_eq(st, CN_ERR_NOMEM);
    ck_assert_ptr_null(t.data);
    ck_assert_ok(cn_tensor_alloc(&t, 2, (int[]){3, 4}));
    for (int i = 0; i < 12; i++) ck_assert(t.data[i] == 0.0f);
    cn_tensor_free(&t);
    ck_assert_ptr_null(t.data);
    cn_tensor_free(&t);    /* twice is harmless */
    ck_assert_int_eq(cn_tensor_alloc(&t, 0, (int[]){1}), CN_ERR_SHAPE);
}
END_TEST

/* ---- error messages ---- */

START_TEST(error_sets_message_and_returns_status)
{
    cn_error_clear();
    ck_assert_str_eq(cn_errmsg(), "no error");
    ck_assert_int_eq(cn_error(CN_ERR_IO, "cannot open %s (%d)", "x.bin", 2), CN_ERR_IO);
    ck_assert_str_eq(cn_errmsg(), "cannot open x.bin (2)");
    cn_error_clear();
    ck_assert_str_eq(cn_errmsg(), "no error");
}
END_TEST

START_TEST(error_prefix_prepends_context)
{
    cn_error(CN_ERR_FORMAT, "bad header");
    ck_assert_int_eq(cn_error_prefix(CN_ERR_FORMAT, "%s", "model.safetensors"), CN_ERR_FORMAT);
    ck_assert_str_eq(cn_errmsg(), "model.safetensors: bad header");
    cn_error_prefix(CN_ERR_FORMAT, "loading %d", 3);
    ck_assert_str_eq(cn_errmsg(), "loading 3: model.safetensors: bad header");
}
END_TEST

START_TEST(error_long_messages_truncate_safely)
{
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cn_error(CN_ERR_ARG, "%s", big);
    size_t n = strlen(cn_errmsg());
    ck_assert_uint_gt(n, 500);
    ck_assert_uint_lt(n, 3000);
    cn_error_prefix(CN_ERR_ARG, "ctx");
    ck_assert(strncmp(cn_errmsg(), "ctx: aaa", 8) == 0);
    ck_assert_uint_eq(strlen(cn_errmsg()), n);
    cn_error_prefix(CN_ERR_ARG, "%s", big);   /* prefix alone overflows */
    ck_assert_uint_le(strlen(cn_errmsg()), n);
    cn_error(CN_ERR_ARG, "short");
    cn_error_prefix(CN_ERR_ARG, "%.*s", 1020, big);   /* prefix fits, ": " does not */
    ck_assert_uint_lt(strlen(cn_errmsg()), 1024);
}
END_TEST

START_TEST(error_may_format_the_current_message)
{
    /* Callers write cn_error(st, "%s: %s", path, cn_errmsg()) to add context. */
    cn_error(CN_ERR_IO, "inner problem");
    cn_error(CN_ERR_IO, "outer: %s", cn_errmsg());
    ck_assert_str_eq(cn_errmsg(), "outer: inner problem");
    cn_error(CN_ERR_IO, "%s and %s", cn_errmsg(), "more");
    ck_assert_str_eq(cn_errmsg(), "outer: inner problem and more");
    cn_error(CN_ERR_IO, "x");
    cn_error_prefix(CN_ERR_IO, "%s", cn_errmsg());
    ck_assert_str_eq(cn_errmsg(), "x: x");
}
END_TEST

START_TEST(status_names_are_distinct)
{
    const char *seen[8];
    for (int s = CN_OK; s <= CN_ERR_STATE; s++) {
        seen[s] = cn_status_name((cn_status)s);
        ck_assert_str_ne(seen[s], "unknown error");
        for (int t = 0; t < s; t++) ck_assert_str_ne(seen[s], seen[t]);
    }
    ck_assert_str_eq(cn_status_name((cn_status)99), "unknown error");
}
END_TEST

START_TEST(elementwise_helpers)
{
    float x[5] = {1, 2, 3, 4, 5}, y[5] = {1, 1, 1, 1, 1};
    cn_axpy(5, 2.0f, x, y);
    for (int i = 0; i < 5; i++) ck_assert(y[i] == 1.0f + 2.0f * x[i]);
    ck_assert(cn_sumsq(x, 5) == 55.0);
    cn_fill(y, 5, -1.5f);
    for (int i = 0; i < 5; i++) ck_assert(y[i] == -1.5f);
    x[2] = NAN;
    ck_assert(isnan(cn_sumsq(x, 5)));
}
END_TEST

/* The worker pool: every part runs exactly once per call, on its own index, for 1..4 threads and after
 * resizing down and up again; part 0 runs on the caller. */
static void pool_count(void *arg, int part, int parts)
{
    int *hits = arg;
    __atomic_fetch_add(&hits[part], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hits[8], parts, __ATOMIC_RELAXED);
}

START_TEST(pool_runs_every_part_once)
{
    static const int sizes[] = {1, 2, 4, 1, 3, 2, 1};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        cn_set_threads(sizes[s]);
        ck_assert_int_eq(cn_pool_size(), sizes[s]);
        for (int rep = 0; rep < 200; rep++) {
            int hits[9] = {0};
            cn_pool_run(pool_count, hits);
            for (int i = 0; i < 8; i++) ck_assert_int_eq(hits[i], i < sizes[s] ? 1 : 0);
            ck_assert_int_eq(hits[8], sizes[s] * sizes[s]);
        }
    }
    cn_set_threads(1);
}
END_TEST

/* Two threads of one program using the pool at once (two trainings with threads 2): they take turns,
 * and every call of each still runs each of its parts exactly once. */
static void *pool_user(void *arg)
{
    int *bad = arg;
    for (int rep = 0; rep < 2000; rep++) {
        int hits[9] = {0};
        cn_pool_run(pool_count, hits);
        int parts = hits[8] ? 0 : -1;
        for (int i = 0; i < 8; i++) parts += hits[i] == 1;
        for (int i = 0; i < 8; i++) *bad |= hits[i] > 1;
        *bad |= parts < 1 || hits[8] != parts * parts;
    }
    return NULL;
}

START_TEST(pool_is_shared_by_threads_in_turn)
{
    cn_set_threads(2);
    pthread_t t[2];
    int bad[2] = {0, 0};
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, pool_user, &bad[i]), 0);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    cn_set_threads(1);
    ck_assert_int_eq(bad[0], 0);
    ck_assert_int_eq(bad[1], 0);
}
END_TEST

Suite *suite_tensor(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("views");
    tcase_add_test(tc, view_rejects_rank_0_and_5);
    tcase_add_test(tc, view_rejects_zero_and_negative_dims);
    tcase_add_test(tc, numel_rows_cols_of_rank_1_to_4);
    tcase_add_test(tc, same_shape_compares_rank_and_dims);
    tcase_add_loop_test(tc, gemm_matches_naive_all_transposes_and_betas, 0, 8);
    tcase_add_loop_test(tc, split_gemm_matches_naive_and_reruns_identically, 0, 16);
    tcase_add_loop_test(tc, param_products_split_by_the_parameter, 0, 2);
    tcase_add_test(tc, param_ranges_cover_each_element_once);
    tcase_add_test(tc, elementwise_helpers);
    tcase_add_test(tc, pool_runs_every_part_once);
    tcase_add_test(tc, pool_is_shared_by_threads_in_turn);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_add_test(tc, arena_allocations_are_64_byte_aligned);
    tcase_add_test(tc, arena_allocations_do_not_overlap);
    tcase_add_test(tc, arena_reset_consolidates_so_second_step_allocates_nothing);
    tcase_add_test(tc, arena_alloc_returns_null_on_injected_failure);
    tcase_add_test(tc, paramset_offsets_are_64_byte_aligned);
    tcase_add_test(tc, paramset_rejects_duplicate_name);
    tcase_add_test(tc, paramset_rejects_bad_shape_and_long_name);
    tcase_add_test(tc, paramset_rejects_add_after_finalize);
    tcase_add_test(tc, paramset_find_returns_index_or_minus_one);
    tcase_add_test(tc, paramset_zero_grad_clears_all_gradients_only);
    tcase_add_test(tc, paramset_many_params_grow_info_array);
    tcase_add_test(tc, paramset_finalize_nomem_then_retry);
    tcase_add_test(tc, paramset_add_nomem_keeps_set_valid);
    tcase_add_test(tc, alloc_count_counts_successful_allocations);
    tcase_add_test(tc, alloc_fail_at_k_fails_exactly_the_kth);
    tcase_add_test(tc, tensor_alloc_nomem_reports_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("rng");
    tcase_add_test(tc, rng_same_seed_same_stream);
    tcase_add_test(tc, rng_different_seeds_differ);
    tcase_add_test(tc, rng_uniform_stays_in_range);
    tcase_add_test(tc, rng_normal_mean_and_std_over_100k);
    tcase_add_test(tc, rng_below_is_in_range_and_covers_it);
    tcase_add_test(tc, rng_shuffle_is_a_permutation);
    tcase_add_test(tc, rng_save_load_reproduces_stream_with_pending_spare);
    tcase_add_test(tc, rng_load_rejects_malformed_text);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, error_sets_message_and_returns_status);
    tcase_add_test(tc, error_prefix_prepends_context);
    tcase_add_test(tc, error_long_messages_truncate_safely);
    tcase_add_test(tc, error_may_format_the_current_message);
    tcase_add_test(tc, status_names_are_distinct);
    suite_add_tcase(s, tc);
    return s;
}
