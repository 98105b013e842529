/* Suite "autograd": forward values and finite-difference gradients of every op,
 * error paths, tape behaviour, allocation behaviour and NaN propagation.
 *
 * Coverage rule: every op id in the op table must have a gradient-check case in
 * gc_cases[] (verified on the tape, not just declared) and a forward-value test
 * listed in fwd_covered[]; gradcheck_cases_cover_every_op fails otherwise. */
#include "testutil.h"
#include "tensor/vec.h"
#include "autograd/cells.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* helpers */

#define SHAPE(...) ((int[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))

/* A constant input over caller data (not copied: must outlive the graph). */
static cn_var *input(cn_graph *g, float *data, int ndim, const int *shape)
{
    cn_tensor t;
    ck_assert_ok(cn_tensor_view(&t, data, ndim, shape));
    return cn_input(g, &t);
}

/* A gradient-requiring leaf; its gradient goes into an arena buffer. */
static cn_var *leaf(cn_graph *g, float *data, int ndim, const int *shape)
{
    cn_tensor t;
    ck_assert_ok(cn_tensor_view(&t, data, ndim, shape));
    return cn_leaf(g, &t, NULL);
}

#define IN(g, data, ...) input((g), (data), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))
#define LEAF(g, data, ...) leaf((g), (data), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

static void assert_values(const cn_var *v, const float *want, size_t n, double tol)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(cn_numel(&v->v), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs((double)v->v.data[i] - (double)want[i]) <= tol, "value[%zu] = %.9g, expected %.9g", i,
                      (double)v->v.data[i], (double)want[i]);
}
#define ASSERT_VALUES(v, tol, ...) \
    assert_values((v), (const float[]){__VA_ARGS__}, sizeof((float[]){__VA_ARGS__}) / sizeof(float), (tol))

static void assert_shape(const cn_var *v, int ndim, const int *shape)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->v.ndim, ndim);
    for (int i = 0; i < ndim; i++) ck_assert_int_eq(v->v.shape[i], shape[i]);
}
#define ASSERT_SHAPE(v, ...) assert_shape((v), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

/* Fixed, non-uniform weights so that sum(w * y) gives every element of y its own gradient. */
static float wbuf[4096];
static cn_var *wsum(cn_graph *g, cn_var *y)
{
    if (!y) return NULL;
    if (wbuf[0] == 0.0f)
        for (int i = 0; i < 4096; i++) wbuf[i] = (float)(0.2 + 0.9 * sin(1.7 * i + 0.4));
    ck_assert_uint_le(cn_numel(&y->v), 4096);
    cn_tensor t;
    ck_assert_ok(cn_tensor_view(&t, wbuf, y->v.ndim, y->v.shape));
    return cn_sum(g, cn_mul(g, y, cn_input(g, &t)));
}

static int on_tape(const cn_graph *g, int op)
{
    for (size_t i = 0; i < g->n_tape; i++)
        if (g->tape[i]->op == op) return 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Gradient-check cases: one per op and mode. Each builds a scalar loss. */

enum { RANGE_SYM = 0, RANGE_POS, RANGE_AWAY0, RANGE_UNIT, RANGE_WIDE };

typedef struct {
    int ndim;
    int shape[CN_MAX_DIMS];
    int range;                /* RANGE_*: how to fill the input */
} gc_input;

typedef struct gc_case gc_case;
struct gc_case {
    const char *name;
    int op;                   /* the op this case checks; must appear on its tape */
    cn_gradcheck_fn f;
    int n;
    gc_input in[4];
    int arg[4];               /* case-specific integers */
};

#define T1(a) {1, {a}, RANGE_SYM}
#define T2(a, b) {2, {a, b}, RANGE_SYM}
#define T3(a, b, c) {3, {a, b, c}, RANGE_SYM}
#define TR(r, nd, ...) {nd, {__VA_ARGS__}, r}

static cn_var *f_add(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_add(g, x[0], x[1])); }
static cn_var *f_sub(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_sub(g, x[0], x[1])); }
static cn_var *f_mul(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_mul(g, x[0], x[1])); }
static cn_var *f_scale(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_scale(g, x[0], -1.7f)); }
static cn_var *f_matmul(cn_graph *g, cn_var **x, void *c)
{
    const gc_case *k = c;
    return wsum(g, cn_matmul(g, x[0], x[1], k->arg[0], k->arg[1]));
}
static cn_var *f_linear(cn_graph *g, cn_var **x, void *c)
{
    const gc_case *k = c;
    return wsum(g, cn_linear(g, x[0], x[1], k->n > 2 ? x[2] : NULL));
}
static cn_var *f_transpose(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_transpose(g, x[0])); }
static cn_var *f_unary(cn_graph *g, cn_var **x, void *c)
{
    const gc_case *k = c;
    cn_var *(*fn)(cn_graph *, cn_var *) = k->op == CN_OP_TANH ? cn_tanh : k->op == CN_OP_SIGMOID ? cn_sigmoid
                                        : k->op == CN_OP_RELU ? cn_relu : k->op == CN_OP_EXP ? cn_exp : cn_log;
    return wsum(g, fn(g, x[0]));
}
/* sum/mean directly (their backward spreads one value), then scaled so the check is not trivial */
static cn_var *f_sum(cn_graph *g, cn_var **x, void *c) { (void)c; return cn_sum(g, cn_mul(g, cn_sum(g, cn_tanh(g, x[0])), cn_sum(g, x[0]))); }
static cn_var *f_mean(cn_graph *g, cn_var **x, void *c) { (void)c; return cn_mean(g, cn_mul(g, x[0], cn_mean(g, x[0]))); }
static cn_var *f_slice_cols(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_slice_cols(g, x[0], 1, 3)); }
static cn_var *f_concat_cols(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_concat_cols(g, x, 3)); }
static cn_var *f_narrow(cn_graph *g, cn_var **x, void *c)
{
    (void)c;   /* two overlapping narrows of the same input: both contributions land in x */
    return cn_add(g, wsum(g, cn_narrow(g, x[0], 1, 2)), wsum(g, cn_tanh(g, cn_narrow(g, x[0], 2, 2))));
}
static cn_var *f_select(cn_graph *g, cn_var **x, void *c)
{
    (void)c;   /* select through a view of a computed node and of a leaf */
    cn_var *t = cn_tanh(g, x[0]);
    return cn_add(g, wsum(g, cn_select(g, t, 2)), wsum(g, cn_mul(g, cn_select(g, x[0], 0), cn_select(g, t, 1))));
}
static cn_var *f_reshape(cn_graph *g, cn_var **x, void *c)
{
    (void)c;   /* [2,6] -> [4,3] then a matmul, so the layout matters */
    return wsum(g, cn_matmul(g, cn_reshape(g, x[0], 2, SHAPE(4, 3)), x[1], 0, 0));
}
static cn_var *f_concat0(cn_graph *g, cn_var **x, void *c)
{
    const gc_case *k = c;
    cn_var *y = cn_concat0(g, x, 2, k->arg[0]);
    return wsum(g, cn_tanh(g, y));
}
static cn_var *f_embedding(cn_graph *g, cn_var **x, void *c)
{
    (void)c;   /* index 1 three times: its gradient row must accumulate */
    static const int32_t idx[6] = {1, 3, 1, 4, 1, 0};
    return wsum(g, cn_tanh(g, cn_embedding(g, x[0], idx, 2, SHAPE(2, 3))));
}
static cn_var *f_dropout(cn_graph *g, cn_var **x, void *c)
{
    (void)c;   /* reseed every evaluation so the finite differences see the same mask */
    static cn_rng rng;
    cn_rng_seed(&rng, 1234);
    g->rng = &rng;
    g->training = 1;
    return wsum(g, cn_dropout(g, cn_tanh(g, x[0]), 0.4f));
}
static cn_var *f_mse(cn_graph *g, cn_var **x, void *c) { (void)c; return cn_mse(g, cn_tanh(g, x[0]), x[1]); }
static cn_var *f_cross_entropy(cn_graph *g, cn_var **x, void *c)
{
    (void)c;
    static const int32_t labels[6] = {2, 0, 3, 3, 1, 0};
    return cn_cross_entropy(g, x[0], labels);
}
static cn_var *f_bce(cn_graph *g, cn_var **x, void *c) { (void)c; return cn_bce_with_logits(g, x[0], x[1]); }
static cn_var *f_lstm_c(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_lstm_cell_c(g, x[0], x[1])); }
static cn_var *f_lstm_h(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_lstm_cell_h(g, x[0], x[1])); }
static cn_var *f_gru(cn_graph *g, cn_var **x, void *c) { (void)c; return wsum(g, cn_gru_cell(g, x[0], x[1], x[2])); }
/* x [T,B,F], w_ih, w_hh, biases [2, G*H] (b_ih, b_hh as select views, so their gradients meet in one leaf);
 * arg[0] = kind, arg[1] = bptt (0 here) */
static cn_var *f_recurrent(cn_graph *g, cn_var **x, void *c)
{
    const gc_case *k = c;
    return wsum(g, cn_recurrent(g, k->arg[0], x[0], x[1], x[2], cn_select(g, x[3], 0), cn_select(g, x[3], 1), k->arg[1]));
}

static const gc_case gc_cases[] = {
    {"add same shape", CN_OP_ADD, f_add, 2, {T2(2, 3), T2(2, 3)}, {0}},
    {"add row bias (rank 3)", CN_OP_ADD, f_add, 2, {T3(2, 3, 4), T1(4)}, {0}},
    {"add scalar", CN_OP_ADD, f_add, 2, {T2(2, 3), T1(1)}, {0}},
    {"sub same shape", CN_OP_SUB, f_sub, 2, {T2(2, 3), T2(2, 3)}, {0}},
    {"sub row bias", CN_OP_SUB, f_sub, 2, {T2(3, 4), T2(1, 4)}, {0}},
    {"sub scalar", CN_OP_SUB, f_sub, 2, {T3(2, 2, 3), T1(1)}, {0}},
    {"mul same shape", CN_OP_MUL, f_mul, 2, {T2(2, 3), T2(2, 3)}, {0}},
    {"mul row bias", CN_OP_MUL, f_mul, 2, {T3(2, 3, 4), T1(4)}, {0}},
    {"mul scalar", CN_OP_MUL, f_mul, 2, {T2(2, 3), T1(1)}, {0}},
    {"scale", CN_OP_SCALE, f_scale, 1, {T2(2, 3)}, {0}},
    {"matmul a b", CN_OP_MATMUL, f_matmul, 2, {T2(2, 3), T2(3, 4)}, {0, 0}},
    {"matmul a b^T", CN_OP_MATMUL, f_matmul, 2, {T2(2, 3), T2(4, 3)}, {0, 1}},
    {"matmul a^T b", CN_OP_MATMUL, f_matmul, 2, {T2(3, 2), T2(3, 4)}, {1, 0}},
    {"matmul a^T b^T", CN_OP_MATMUL, f_matmul, 2, {T2(3, 2), T2(4, 3)}, {1, 1}},
    {"matmul rank-3 a", CN_OP_MATMUL, f_matmul, 2, {T3(2, 3, 4), T2(4, 5)}, {0, 0}},
    {"matmul rank-3 a, b^T", CN_OP_MATMUL, f_matmul, 2, {T3(2, 3, 4), T2(5, 4)}, {0, 1}},
    {"linear with bias, rank-3 x", CN_OP_LINEAR, f_linear, 3, {T3(2, 3, 4), T2(5, 4), T1(5)}, {0}},
    {"linear without bias, rank-3 x", CN_OP_LINEAR, f_linear, 2, {T3(2, 3, 4), T2(5, 4)}, {0}},
    {"transpose", CN_OP_TRANSPOSE, f_transpose, 1, {T2(3, 4)}, {0}},
    {"tanh", CN_OP_TANH, f_unary, 1, {TR(RANGE_WIDE, 2, 3, 4)}, {0}},
    {"sigmoid", CN_OP_SIGMOID, f_unary, 1, {TR(RANGE_WIDE, 2, 3, 4)}, {0}},
    {"relu", CN_OP_RELU, f_unary, 1, {TR(RANGE_AWAY0, 2, 3, 4)}, {0}},
    {"exp", CN_OP_EXP, f_unary, 1, {T2(3, 4)}, {0}},
    {"log", CN_OP_LOG, f_unary, 1, {TR(RANGE_POS, 2, 3, 4)}, {0}},
    {"sum", CN_OP_SUM, f_sum, 1, {T3(2, 3, 2)}, {0}},
    {"mean", CN_OP_MEAN, f_mean, 1, {T3(2, 3, 2)}, {0}},
    {"slice_cols", CN_OP_SLICE_COLS, f_slice_cols, 1, {T3(2, 3, 5)}, {0}},
    {"concat_cols", CN_OP_CONCAT_COLS, f_concat_cols, 3, {T3(2, 2, 2), T3(2, 2, 3), T3(2, 2, 1)}, {0}},
    {"narrow (overlapping views)", CN_OP_NARROW, f_narrow, 1, {T3(4, 2, 3)}, {0}},
    {"select (views of a leaf and of a node)", CN_OP_SELECT, f_select, 1, {T3(3, 2, 3)}, {0}},
    {"reshape", CN_OP_RESHAPE, f_reshape, 2, {T2(2, 6), T2(3, 2)}, {0}},
    {"concat0", CN_OP_CONCAT0, f_concat0, 2, {T3(2, 2, 3), T3(1, 2, 3)}, {0}},
    {"concat0 stack", CN_OP_CONCAT0, f_concat0, 2, {T2(2, 3), T2(2, 3)}, {1}},
    {"embedding (repeated indices)", CN_OP_EMBEDDING, f_embedding, 1, {T2(5, 3)}, {0}},
    {"dropout in training, seeded mask", CN_OP_DROPOUT, f_dropout, 1, {T2(4, 5)}, {0}},
    {"mse", CN_OP_MSE, f_mse, 2, {T2(2, 3), T2(2, 3)}, {0}},
    {"cross_entropy", CN_OP_CROSS_ENTROPY, f_cross_entropy, 1, {TR(RANGE_WIDE, 2, 3, 4)}, {0}},
    {"cross_entropy rank-3 rows", CN_OP_CROSS_ENTROPY, f_cross_entropy, 1, {TR(RANGE_WIDE, 3, 2, 3, 4)}, {0}},
    {"bce_with_logits", CN_OP_BCE_LOGITS, f_bce, 2, {TR(RANGE_WIDE, 2, 2, 3), TR(RANGE_UNIT, 2, 2, 3)}, {0}},
    {"lstm_cell_c", CN_OP_LSTM_CELL_C, f_lstm_c, 2, {TR(RANGE_WIDE, 2, 2, 12), T2(2, 3)}, {0}},
    {"lstm_cell_h", CN_OP_LSTM_CELL_H, f_lstm_h, 2, {TR(RANGE_WIDE, 2, 2, 12), T2(2, 3)}, {0}},
    {"gru_cell", CN_OP_GRU_CELL, f_gru, 3, {TR(RANGE_WIDE, 2, 2, 9), TR(RANGE_WIDE, 2, 2, 9), T2(2, 3)}, {0}},
    /* (truncated BPTT is not the true gradient: tests/test_layers.c checks it against a detached unroll) */
    {"recurrent tanh", CN_OP_RECURRENT, f_recurrent, 4, {T3(4, 2, 3), T2(3, 3), T2(3, 3), T2(2, 3)}, {CN_REC_TANH, 0}},
    {"recurrent lstm", CN_OP_RECURRENT, f_recurrent, 4, {T3(4, 2, 3), T2(12, 3), T2(12, 3), T2(2, 12)}, {CN_REC_LSTM, 0}},
    {"recurrent gru", CN_OP_RECURRENT, f_recurrent, 4, {T3(4, 2, 3), T2(9, 3), T2(9, 3), T2(2, 9)}, {CN_REC_GRU, 0}},
};
#define N_GC_CASES ((int)(sizeof gc_cases / sizeof *gc_cases))

/* Fills the case's inputs deterministically; data[i] has room for 256 floats. */
static void gc_fill(const gc_case *k, int case_no, float data[4][256], cn_tensor *t)
{
    for (int i = 0; i < k->n; i++) {
        const gc_input *s = &k->in[i];
        ck_assert_ok(cn_tensor_view(&t[i], data[i], s->ndim, s->shape));
        size_t n = cn_numel(&t[i]);
        ck_assert_uint_le(n, 256);
        uint64_t seed = 1000u + 10u * (uint64_t)case_no + (uint64_t)i;
        switch (s->range) {
        case RANGE_SYM:  tu_fill_uniform(data[i], n, seed, -1.0f, 1.0f); break;
        case RANGE_POS:  tu_fill_uniform(data[i], n, seed, 0.5f, 2.0f); break;
        case RANGE_UNIT: tu_fill_uniform(data[i], n, seed, 0.0f, 1.0f); break;
        case RANGE_WIDE: tu_fill_uniform(data[i], n, seed, -2.5f, 2.5f); break;
        case RANGE_AWAY0:   /* |x| in [0.1, 1], alternating sign: no kink within eps */
            tu_fill_uniform(data[i], n, seed, 0.1f, 1.0f);
            for (size_t j = 0; j < n; j += 2) data[i][j] = -data[i][j];
            break;
        }
    }
}

START_TEST(gradcheck_op_case)
{
    const gc_case *k = &gc_cases[_i];
    float data[4][256];
    cn_tensor t[4];
    gc_fill(k, _i, data, t);
    cn_gradcheck_result r;
    cn_status st = cn_gradcheck(k->f, (void *)k, t, k->n, NULL, NULL, &r);
    ck_assert_msg(st == CN_OK, "%s: gradcheck failed to run: %s", k->name, cn_errmsg());
    ck_assert_msg(r.ok, "%s: input %d[%zu]: analytic %.9g numeric %.9g (max abs err %.3g)", k->name, r.worst_input,
                  r.worst_index, r.worst_analytic, r.worst_numeric, r.max_abs_err);
    size_t total = 0;
    for (int i = 0; i < k->n; i++) total += cn_numel(&t[i]);
    ck_assert_uint_eq(r.n_checked, total);
}
END_TEST

/* Ops with a forward-value test below (keep in step with the tests). */
static const int fwd_covered[] = {
    CN_OP_LEAF, CN_OP_ADD, CN_OP_SUB, CN_OP_MUL, CN_OP_SCALE, CN_OP_MATMUL, CN_OP_LINEAR, CN_OP_TRANSPOSE,
    CN_OP_TANH, CN_OP_SIGMOID, CN_OP_RELU, CN_OP_EXP, CN_OP_LOG, CN_OP_SUM, CN_OP_MEAN, CN_OP_SLICE_COLS,
    CN_OP_CONCAT_COLS, CN_OP_NARROW, CN_OP_SELECT, CN_OP_RESHAPE, CN_OP_CONCAT0, CN_OP_EMBEDDING, CN_OP_DROPOUT,
    CN_OP_MSE, CN_OP_CROSS_ENTROPY, CN_OP_BCE_LOGITS, CN_OP_LSTM_CELL_C, CN_OP_LSTM_CELL_H, CN_OP_GRU_CELL,
    CN_OP_RECURRENT,   /* recurrent_matches_the_per_step_graph */
};

START_TEST(gradcheck_cases_cover_every_op)
{
    int covered[CN_OP_COUNT] = {0};
    covered[CN_OP_LEAF] = 1;   /* leaves: every case */
    for (int c = 0; c < N_GC_CASES; c++) {
        const gc_case *k = &gc_cases[c];
        ck_assert_int_gt(k->op, CN_OP_LEAF);
        ck_assert_int_lt(k->op, CN_OP_COUNT);
        float data[4][256];
        cn_tensor t[4];
        gc_fill(k, c, data, t);
        cn_graph g;
        cn_graph_init(&g);
        cn_var *x[4];
        for (int i = 0; i < k->n; i++) x[i] = cn_leaf(&g, &t[i], NULL);
        cn_var *loss = k->f(&g, x, (void *)k);
        ck_assert_msg(loss != NULL, "%s: %s", k->name, cn_errmsg());
        ck_assert_msg(on_tape(&g, k->op), "case '%s' never tapes op %s", k->name, cn_op_info(k->op)->name);
        covered[k->op] = 1;
        cn_graph_free(&g);
    }
    for (int op = 0; op < CN_OP_COUNT; op++) {
        ck_assert_msg(covered[op], "op %d (%s) has no gradient-check case", op, cn_op_info(op)->name);
        ck_assert_str_ne(cn_op_info(op)->name, "?");
        /* A differentiable non-view op needs a backward rule. */
        if (op != CN_OP_LEAF && !cn_op_info(op)->is_view)
            ck_assert_msg(cn_op_info(op)->backward != NULL, "op %s has no backward", cn_op_info(op)->name);
    }
    int fwd[CN_OP_COUNT] = {0};
    for (size_t i = 0; i < sizeof fwd_covered / sizeof *fwd_covered; i++) fwd[fwd_covered[i]] = 1;
    for (int op = 0; op < CN_OP_COUNT; op++)
        ck_assert_msg(fwd[op], "op %d (%s) has no forward-value test", op, cn_op_info(op)->name);
    ck_assert_str_eq(cn_op_info(CN_OP_COUNT)->name, "?");
    ck_assert_str_eq(cn_op_info(-1)->name, "?");
}
END_TEST

/* The original case: a small network through cn_linear + tanh. */
static cn_var *f_linear_tanh(cn_graph *g, cn_var **in, void *ctx)
{
    (void)ctx;
    cn_var *y = cn_tanh(g, cn_linear(g, in[0], in[1], in[2]));
    return cn_sum(g, cn_mul(g, y, in[3]));
}

/* Its inputs: x [2,3], W [4,3], b [4] and the loss weights [2,4], fixed random values. */
typedef struct { float x[6], w[12], b[4], wt[8]; } linear_tanh_data;

static void linear_tanh_inputs(linear_tanh_data *d, cn_tensor in[4])
{
    tu_fill_uniform(d->x, 6, 1, -1, 1);
    tu_fill_uniform(d->w, 12, 2, -1, 1);
    tu_fill_uniform(d->b, 4, 3, -1, 1);
    tu_fill_uniform(d->wt, 8, 4, -1, 1);
    ck_assert_ok(cn_tensor_view(&in[0], d->x, 2, (int[]){2, 3}));
    ck_assert_ok(cn_tensor_view(&in[1], d->w, 2, (int[]){4, 3}));
    ck_assert_ok(cn_tensor_view(&in[2], d->b, 1, (int[]){4}));
    ck_assert_ok(cn_tensor_view(&in[3], d->wt, 2, (int[]){2, 4}));
}

START_TEST(linear_tanh_gradcheck)
{
    linear_tanh_data d;
    cn_tensor in[4];
    linear_tanh_inputs(&d, in);
    cn_gradcheck_result r;
    ck_assert_ok(cn_gradcheck(f_linear_tanh, NULL, in, 4, NULL, NULL, &r));
    ck_assert_msg(r.ok, "worst input %d[%zu]: analytic %g numeric %g", r.worst_input, r.worst_index,
                  r.worst_analytic, r.worst_numeric);
    ck_assert_uint_eq(r.n_checked, 6 + 12 + 4 + 8);
}
END_TEST

/* Parameters through cn_param: gradcheck perturbs ps->data and reads ps->grad. */
static cn_var *f_param_linear(cn_graph *g, cn_var **in, void *ctx)
{
    cn_paramset *ps = ctx;
    cn_var *y = cn_linear(g, in[0], cn_param(g, ps, 0), cn_param(g, ps, 1));
    return wsum(g, cn_sigmoid(g, y));
}

START_TEST(param_gradcheck_through_paramset)
{
    cn_paramset ps;
    cn_paramset_init(&ps);
    ck_assert_ok(cn_paramset_add(&ps, "0.weight", 2, SHAPE(3, 4), NULL));
    ck_assert_ok(cn_paramset_add(&ps, "0.bias", 1, SHAPE(3), NULL));
    ck_assert_ok(cn_paramset_finalize(&ps));
    tu_fill_uniform(ps.data, ps.total, 5, -1, 1);
    float x[2 * 2 * 4];
    tu_fill_uniform(x, 16, 6, -1, 1);
    cn_tensor in;
    ck_assert_ok(cn_tensor_view(&in, x, 3, SHAPE(2, 2, 4)));
    cn_gradcheck_result r;
    ck_assert_ok(cn_gradcheck(f_param_linear, &ps, &in, 1, &ps, NULL, &r));
    ck_assert_msg(r.ok, "worst input %d[%zu]: analytic %g numeric %g", r.worst_input, r.worst_index,
                  r.worst_analytic, r.worst_numeric);
    ck_assert_uint_eq(r.n_checked, 16 + 12 + 3);
    cn_paramset_free(&ps);
}
END_TEST

/* The checker itself must be able to fail (see gradcheck_detects_a_wrong_gradient). */
static cn_var *f_smooth(cn_graph *g, cn_var **in, void *ctx)
{
    (void)ctx;
    return wsum(g, cn_tanh(g, in[0]));
}

START_TEST(gradcheck_detects_a_wrong_gradient)
{
    /* A kinked function evaluated exactly at the kink: relu at 0 has analytic
     * gradient 0 but central difference 0.5. */
    float x[3] = {0.0f, 0.5f, -0.5f};
    cn_tensor in;
    ck_assert_ok(cn_tensor_view(&in, x, 1, SHAPE(3)));
    cn_gradcheck_result r;
    ck_assert_int_eq(gc_cases[21].op, CN_OP_RELU);
    ck_assert_ok(cn_gradcheck(f_unary, (void *)&gc_cases[21], &in, 1, NULL, NULL, &r));
    ck_assert(!r.ok);
    ck_assert_int_eq(r.worst_input, 0);
    ck_assert_uint_eq(r.worst_index, 0);
    ck_assert_near(r.worst_analytic, 0.0, 1e-12);
    ck_assert_near(r.worst_numeric, 0.5 * wbuf[0], 1e-3);
    /* and a smooth function passes at the same points */
    ck_assert_ok(cn_gradcheck(f_smooth, NULL, &in, 1, NULL, NULL, &r));
    ck_assert(r.ok);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Forward values on small hand-computed cases */

START_TEST(forward_leaf_input_and_zeros)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[3] = {1, 2, 3};
    cn_var *x = IN(&g, a, 3);
    ck_assert_ptr_eq(x->v.data, a);     /* not copied */
    ck_assert_int_eq(x->op, CN_OP_LEAF);
    ck_assert(!x->requires_grad);
    cn_var *l = LEAF(&g, a, 3);
    ck_assert(l->requires_grad);
    ck_assert_ptr_nonnull(l->grad);
    for (int i = 0; i < 3; i++) ck_assert(l->grad[i] == 0.0f);
    cn_var *z = cn_zeros(&g, 2, SHAPE(2, 2));
    ASSERT_VALUES(z, 0, 0, 0, 0, 0);
    ck_assert(!z->requires_grad);
    ck_assert_uint_eq(g.n_tape, 0);    /* leaves are never taped */
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_add_sub_mul_broadcast_modes)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[6] = {1, 2, 3, 4, 5, 6}, same[6] = {10, 20, 30, 40, 50, 60}, row[3] = {10, 20, 30}, sc[1] = {2};
    cn_var *A = IN(&g, a, 2, 3);
    ASSERT_VALUES(cn_add(&g, A, IN(&g, same, 2, 3)), 0, 11, 22, 33, 44, 55, 66);
    ASSERT_VALUES(cn_add(&g, A, IN(&g, row, 3)), 0, 11, 22, 33, 14, 25, 36);
    ASSERT_VALUES(cn_add(&g, A, IN(&g, sc, 1)), 0, 3, 4, 5, 6, 7, 8);
    ASSERT_VALUES(cn_sub(&g, A, IN(&g, same, 2, 3)), 0, -9, -18, -27, -36, -45, -54);
    ASSERT_VALUES(cn_sub(&g, A, IN(&g, row, 1, 3)), 0, -9, -18, -27, -6, -15, -24);
    ASSERT_VALUES(cn_sub(&g, A, IN(&g, sc, 1)), 0, -1, 0, 1, 2, 3, 4);
    ASSERT_VALUES(cn_mul(&g, A, IN(&g, same, 2, 3)), 0, 10, 40, 90, 160, 250, 360);
    ASSERT_VALUES(cn_mul(&g, A, IN(&g, row, 3)), 0, 10, 40, 90, 40, 100, 180);
    cn_var *m = cn_mul(&g, A, IN(&g, sc, 1, 1));
    ASSERT_VALUES(m, 0, 2, 4, 6, 8, 10, 12);
    ASSERT_SHAPE(m, 2, 3);
    ASSERT_VALUES(cn_scale(&g, A, -0.5f), 0, -0.5f, -1, -1.5f, -2, -2.5f, -3);
    /* rank 3 with a row bias */
    cn_var *r3 = cn_add(&g, IN(&g, a, 2, 1, 3), IN(&g, row, 3));
    ASSERT_SHAPE(r3, 2, 1, 3);
    ASSERT_VALUES(r3, 0, 11, 22, 33, 14, 25, 36);
    ck_assert_int_eq(g.err, CN_OK);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_matmul_all_transposes_and_rank3)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[6] = {1, 2, 3, 4, 5, 6}, at[6] = {1, 4, 2, 5, 3, 6};      /* [2,3] and its transpose [3,2] */
    float b[6] = {1, 0, 0, 1, 1, 1}, bt[6] = {1, 0, 1, 0, 1, 1};      /* [3,2] and its transpose [2,3] */
    cn_var *y;
    y = cn_matmul(&g, IN(&g, a, 2, 3), IN(&g, b, 3, 2), 0, 0);
    ASSERT_SHAPE(y, 2, 2);
    ASSERT_VALUES(y, 0, 4, 5, 10, 11);
    ASSERT_VALUES(cn_matmul(&g, IN(&g, a, 2, 3), IN(&g, bt, 2, 3), 0, 1), 0, 4, 5, 10, 11);
    ASSERT_VALUES(cn_matmul(&g, IN(&g, at, 3, 2), IN(&g, b, 3, 2), 1, 0), 0, 4, 5, 10, 11);
    ASSERT_VALUES(cn_matmul(&g, IN(&g, at, 3, 2), IN(&g, bt, 2, 3), 1, 1), 0, 4, 5, 10, 11);
    y = cn_matmul(&g, IN(&g, a, 2, 1, 3), IN(&g, b, 3, 2), 0, 0);
    ASSERT_SHAPE(y, 2, 1, 2);
    ASSERT_VALUES(y, 0, 4, 5, 10, 11);
    /* non-square: [1,3] x [3,2]^T... a row vector times b */
    y = cn_matmul(&g, IN(&g, a, 1, 3), IN(&g, b, 3, 2), 0, 0);
    ASSERT_VALUES(y, 0, 4, 5);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_linear_with_and_without_bias)
{
    cn_graph g;
    cn_graph_init(&g);
    float x[4] = {1, 2, -1, 0.5f}, w[6] = {1, 0, 0, 1, 1, 1}, b[3] = {0.5f, -0.5f, 0};
    cn_var *y = cn_linear(&g, IN(&g, x, 2, 1, 2), IN(&g, w, 3, 2), IN(&g, b, 3));
    ASSERT_SHAPE(y, 2, 1, 3);
    ASSERT_VALUES(y, 0, 1.5f, 1.5f, 3, -0.5f, 0, -0.5f);
    y = cn_linear(&g, IN(&g, x, 2, 2), IN(&g, w, 3, 2), NULL);
    ASSERT_SHAPE(y, 2, 3);
    ASSERT_VALUES(y, 0, 1, 2, 3, -1, 0.5f, -0.5f);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_transpose)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[6] = {1, 2, 3, 4, 5, 6};
    cn_var *y = cn_transpose(&g, IN(&g, a, 2, 3));
    ASSERT_SHAPE(y, 3, 2);
    ASSERT_VALUES(y, 0, 1, 4, 2, 5, 3, 6);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_unary_values)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[3] = {0, 1, -2}, p[3] = {1, 2.718281828f, 0.5f};
    cn_var *x = IN(&g, a, 3);
    ASSERT_VALUES(cn_tanh(&g, x), 1e-7, 0, 0.761594156f, -0.964027580f);
    ASSERT_VALUES(cn_sigmoid(&g, x), 1e-7, 0.5f, 0.731058579f, 0.119202922f);
    ASSERT_VALUES(cn_relu(&g, x), 0, 0, 1, 0);
    ASSERT_VALUES(cn_exp(&g, x), 1e-6, 1, 2.718281828f, 0.135335283f);
    ASSERT_VALUES(cn_log(&g, IN(&g, p, 3)), 1e-6, 0, 1, -0.693147181f);
    /* saturation: no NaN from overflow in sigmoid/tanh */
    float big[2] = {-100, 100};
    ASSERT_VALUES(cn_sigmoid(&g, IN(&g, big, 2)), 0, 0, 1);
    ASSERT_VALUES(cn_tanh(&g, IN(&g, big, 2)), 0, -1, 1);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_sum_mean_accumulate_in_double)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[4] = {1, 2, 3, 4};
    cn_var *s = cn_sum(&g, IN(&g, a, 2, 2)), *m = cn_mean(&g, IN(&g, a, 4));
    ASSERT_SHAPE(s, 1);
    ck_assert(cn_scalar_value(s) == 10.0);
    ck_assert(cn_scalar_value(m) == 2.5);
    ck_assert(s->v.data[0] == 10.0f);
    /* in float, 1e8 + 1 - 1e8 is 0 */
    float c[3] = {1e8f, 1, -1e8f};
    ck_assert(cn_scalar_value(cn_sum(&g, IN(&g, c, 3))) == 1.0);
    ck_assert_near(cn_scalar_value(cn_mean(&g, IN(&g, c, 3))), 1.0 / 3.0, 1e-15);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_slice_and_concat_cols)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[8] = {0, 1, 2, 3, 4, 5, 6, 7}, b[2] = {-1, -2};
    cn_var *s = cn_slice_cols(&g, IN(&g, a, 2, 1, 4), 1, 2);
    ASSERT_SHAPE(s, 2, 1, 2);
    ASSERT_VALUES(s, 0, 1, 2, 5, 6);
    cn_var *parts[3] = {IN(&g, b, 2, 1), IN(&g, a, 2, 4), IN(&g, b, 2, 1)};
    cn_var *c = cn_concat_cols(&g, parts, 3);
    ASSERT_SHAPE(c, 2, 6);
    ASSERT_VALUES(c, 0, -1, 0, 1, 2, 3, -1, -2, 4, 5, 6, 7, -2);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_narrow_select_reshape_are_views)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[12];
    for (int i = 0; i < 12; i++) a[i] = (float)i;
    cn_var *x = IN(&g, a, 3, 2, 2);
    cn_var *n = cn_narrow(&g, x, 1, 2);
    ASSERT_SHAPE(n, 2, 2, 2);
    ck_assert_ptr_eq(n->v.data, a + 4);
    cn_var *s = cn_select(&g, x, 2);
    ASSERT_SHAPE(s, 2, 2);
    ck_assert_ptr_eq(s->v.data, a + 8);
    ASSERT_VALUES(s, 0, 8, 9, 10, 11);
    cn_var *r = cn_reshape(&g, x, 2, SHAPE(4, 3));
    ASSERT_SHAPE(r, 4, 3);
    ck_assert_ptr_eq(r->v.data, a);
    ck_assert(cn_op_info(CN_OP_NARROW)->is_view && cn_op_info(CN_OP_SELECT)->is_view &&
              cn_op_info(CN_OP_RESHAPE)->is_view);
    /* a view of a view */
    cn_var *ss = cn_select(&g, n, 1);
    ck_assert_ptr_eq(ss->v.data, a + 8);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_concat0_and_stack)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[2] = {1, 2}, b[4] = {3, 4, 5, 6}, c[2] = {7, 8};
    cn_var *p1[2] = {IN(&g, a, 1, 2), IN(&g, b, 2, 2)};
    cn_var *y = cn_concat0(&g, p1, 2, 0);
    ASSERT_SHAPE(y, 3, 2);
    ASSERT_VALUES(y, 0, 1, 2, 3, 4, 5, 6);
    cn_var *p2[3] = {IN(&g, a, 2), IN(&g, c, 2), IN(&g, a, 2)};
    y = cn_concat0(&g, p2, 3, 1);
    ASSERT_SHAPE(y, 3, 2);
    ASSERT_VALUES(y, 0, 1, 2, 7, 8, 1, 2);
    cn_var *p3[2] = {IN(&g, b, 2, 2), IN(&g, b, 2, 2)};
    y = cn_concat0(&g, p3, 2, 1);
    ASSERT_SHAPE(y, 2, 2, 2);
    ASSERT_VALUES(y, 0, 3, 4, 5, 6, 3, 4, 5, 6);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_embedding_picks_rows)
{
    cn_graph g;
    cn_graph_init(&g);
    float w[8] = {0, 1, 10, 11, 20, 21, 30, 31};
    int32_t idx[4] = {3, 0, 3, 2};
    cn_var *y = cn_embedding(&g, IN(&g, w, 4, 2), idx, 2, SHAPE(2, 2));
    ASSERT_SHAPE(y, 2, 2, 2);
    ASSERT_VALUES(y, 0, 30, 31, 0, 1, 30, 31, 20, 21);
    cn_graph_free(&g);
}
END_TEST

START_TEST(embedding_gradient_accumulates_repeated_indices)
{
    cn_graph g;
    cn_graph_init(&g);
    float w[6] = {1, 2, 3, 4, 5, 6};
    int32_t idx[4] = {1, 1, 0, 1};
    cn_var *W = LEAF(&g, w, 3, 2);
    ck_assert_ok(cn_backward(&g, cn_sum(&g, cn_embedding(&g, W, idx, 1, SHAPE(4)))));
    const float want[6] = {1, 1, 3, 3, 0, 0};
    for (int i = 0; i < 6; i++) ck_assert(W->grad[i] == want[i]);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_dropout_training_masks_and_scales)
{
    cn_graph g;
    cn_graph_init(&g);
    cn_rng rng;
    cn_rng_seed(&rng, 7);
    g.rng = &rng;
    enum { N = 2000 };
    static float a[N];
    for (int i = 0; i < N; i++) a[i] = 1.0f + (float)(i % 7);
    cn_var *x = IN(&g, a, 40, 50);
    cn_var *y = cn_dropout(&g, x, 0.25f);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_ne(y, x);
    int zeros = 0;
    for (int i = 0; i < N; i++) {
        if (y->v.data[i] == 0.0f) zeros++;
        else ck_assert_near(y->v.data[i], a[i] / 0.75f, 1e-5);
    }
    ck_assert_int_gt(zeros, 400);   /* 500 expected, SE 19 */
    ck_assert_int_lt(zeros, 600);
    /* same seed, same mask */
    cn_rng_seed(&rng, 7);
    cn_var *y2 = cn_dropout(&g, x, 0.25f);
    ck_assert(memcmp(y->v.data, y2->v.data, sizeof a) == 0);
    /* p = 0 is the identity even in training */
    ck_assert_ptr_eq(cn_dropout(&g, x, 0.0f), x);
    cn_graph_free(&g);
}
END_TEST

START_TEST(dropout_in_eval_is_identity)
{
    cn_graph g;
    cn_graph_init(&g);
    g.training = 0;   /* no RNG needed */
    float a[4] = {1, 2, 3, 4};
    cn_var *x = LEAF(&g, a, 4);
    cn_var *y = cn_dropout(&g, x, 0.9f);
    ck_assert_ptr_eq(y, x);
    ck_assert_ok(cn_backward(&g, cn_sum(&g, y)));
    for (int i = 0; i < 4; i++) ck_assert(x->grad[i] == 1.0f);
    ck_assert_int_eq(g.err, CN_OK);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_mse)
{
    cn_graph g;
    cn_graph_init(&g);
    float p[3] = {1, 2, 3}, t[3] = {1, 0, 0};
    cn_var *l = cn_mse(&g, IN(&g, p, 3), IN(&g, t, 1, 3));
    ASSERT_SHAPE(l, 1);
    ck_assert_near(cn_scalar_value(l), 13.0 / 3.0, 1e-12);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_cross_entropy)
{
    cn_graph g;
    cn_graph_init(&g);
    /* row 0: [0, 0], label 0 -> ln 2; row 1: [0, ln 3], label 1 -> ln 4 - ln 3 */
    float x[4] = {0, 0, 0, (float)log(3.0)};
    int32_t lab[2] = {0, 1};
    cn_var *l = cn_cross_entropy(&g, IN(&g, x, 2, 2), lab);
    ck_assert_near(cn_scalar_value(l), (log(2.0) + log(4.0 / 3.0)) / 2, 1e-7);
    /* rank 3 [T=2, B=1, C=2]: same rows */
    l = cn_cross_entropy(&g, IN(&g, x, 2, 1, 2), lab);
    ck_assert_near(cn_scalar_value(l), (log(2.0) + log(4.0 / 3.0)) / 2, 1e-7);
    /* large logits do not overflow */
    float big[3] = {1000, 0, -1000};
    int32_t l1[1] = {1};
    l = cn_cross_entropy(&g, IN(&g, big, 1, 3), l1);
    ck_assert_near(cn_scalar_value(l), 1000.0, 1e-9);
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_bce_with_logits)
{
    cn_graph g;
    cn_graph_init(&g);
    float x[3] = {0, 0, 2}, t[3] = {1, 0, 1};
    cn_var *l = cn_bce_with_logits(&g, IN(&g, x, 3), IN(&g, t, 3));
    ck_assert_near(cn_scalar_value(l), (2 * log(2.0) + log1p(exp(-2.0))) / 3, 1e-7);
    cn_graph_free(&g);
}
END_TEST

START_TEST(bce_with_logits_large_logits_stay_finite)
{
    cn_graph g;
    cn_graph_init(&g);
    float x[4] = {100, -100, 1e4f, -1e4f}, t[4] = {0, 1, 1, 0};
    cn_var *X = LEAF(&g, x, 4);
    cn_var *l = cn_bce_with_logits(&g, X, IN(&g, t, 4));
    /* the two wrong ones cost |x| each; the right ones ~0 */
    ck_assert_near(cn_scalar_value(l), 200.0 / 4, 1e-9);
    ck_assert_ok(cn_backward(&g, l));
    /* d/dx = (sigmoid(x) - t) / n */
    const float want[4] = {0.25f, -0.25f, 0, 0};
    for (int i = 0; i < 4; i++) {
        ck_assert(isfinite(X->grad[i]));
        ck_assert_near(X->grad[i], want[i], 1e-7);
    }
    cn_graph_free(&g);
}
END_TEST

START_TEST(forward_lstm_cells)
{
    cn_graph g;
    cn_graph_init(&g);
    /* H = 1, gates i, f, g, o: sigmoid(0) = .5, sigmoid(ln 3) = .75, tanh(atanh .5) = .5 */
    float gates[4] = {0, (float)log(3.0), (float)atanh(0.5), 0}, c[1] = {2};
    cn_var *G = IN(&g, gates, 1, 4);
    cn_var *cn = cn_lstm_cell_c(&g, G, IN(&g, c, 1, 1));
    ASSERT_SHAPE(cn, 1, 1);
    ASSERT_VALUES(cn, 1e-6, 0.75f * 2 + 0.5f * 0.5f);
    cn_var *h = cn_lstm_cell_h(&g, G, cn);
    ASSERT_VALUES(h, 1e-6, (float)(0.5 * tanh(1.75)));
    cn_graph_free(&g);
}
END_TEST

/* The fused layer against the same network built step by step from cn_linear, cn_add and the cells
 * (the graph the layers used before): same operations in the same order, so the values are identical. */
/* cn_recurrent against the same network built from per-step ops, values AND gradients of every input.
 * H % 8 != 0 takes the cn_gemm path: bit-identical values. H % 8 == 0 takes the dedicated W_hh kernel,
 * which sums in another order: equal to float rounding (tol relative to the largest magnitude). */
static float max_abs(const float *a, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fabsf(a[i]) > m ? fabsf(a[i]) : m;
    return m;
}

static void check_recurrent_kind_f(int kind, int T, int B, int H, int F, double tol)
{
    int G = kind == CN_REC_LSTM ? 4 : kind == CN_REC_GRU ? 3 : 1, GH = G * H;
    size_t nx = (size_t)T * B * F, nih = (size_t)GH * F, nhh = (size_t)GH * H, ny = (size_t)T * B * H;
    float *x = malloc(nx * 4), *wih = malloc(nih * 4), *whh = malloc(nhh * 4), *bih = malloc((size_t)GH * 4),
          *bhh = malloc((size_t)GH * 4), *wy = malloc(ny * 4);
    tu_fill_uniform(x, nx, 31, -2, 2);
    tu_fill_uniform(wih, nih, 32, -1, 1);
    tu_fill_uniform(whh, nhh, 33, -1.0f / sqrtf((float)H), 1.0f / sqrtf((float)H));
    tu_fill_uniform(bih, (size_t)GH, 34, -1, 1);
    tu_fill_uniform(bhh, (size_t)GH, 35, -1, 1);
    tu_fill_uniform(wy, ny, 36, -1, 1);
    cn_tensor tx, tih, thh, tbi, tbh, twy;
    cn_tensor_view(&tx, x, 3, SHAPE(T, B, F));
    cn_tensor_view(&tih, wih, 2, SHAPE(GH, F));
    cn_tensor_view(&thh, whh, 2, SHAPE(GH, H));
    cn_tensor_view(&tbi, bih, 1, SHAPE(GH));
    cn_tensor_view(&tbh, bhh, 1, SHAPE(GH));
    cn_tensor_view(&twy, wy, 3, SHAPE(T, B, H));
    cn_graph g1, g2;
    cn_graph_init(&g1);
    cn_graph_init(&g2);
    /* fused */
    cn_var *in1[5] = {cn_leaf(&g1, &tx, NULL), cn_leaf(&g1, &tih, NULL), cn_leaf(&g1, &thh, NULL),
                      cn_leaf(&g1, &tbi, NULL), cn_leaf(&g1, &tbh, NULL)};
    cn_var *y = cn_recurrent(&g1, kind, in1[0], in1[1], in1[2], in1[3], in1[4], 0);
    ASSERT_SHAPE(y, T, B, H);
    ck_assert_ok(cn_backward(&g1, cn_sum(&g1, cn_mul(&g1, y, cn_input(&g1, &twy)))));
    /* per step */
    cn_var *in2[5] = {cn_leaf(&g2, &tx, NULL), cn_leaf(&g2, &tih, NULL), cn_leaf(&g2, &thh, NULL),
                      cn_leaf(&g2, &tbi, NULL), cn_leaf(&g2, &tbh, NULL)};
    cn_var *xp = cn_linear(&g2, in2[0], in2[1], in2[3]), *h = NULL, *c = cn_zeros(&g2, 2, SHAPE(B, H));
    cn_var **hs = malloc(sizeof *hs * (size_t)T);
    for (int t = 0; t < T; t++) {
        cn_var *xt = cn_select(&g2, xp, t);
        cn_var *gh = h ? cn_linear(&g2, h, in2[2], in2[4]) : cn_add(&g2, cn_zeros(&g2, 2, SHAPE(B, GH)), in2[4]);
        if (kind == CN_REC_GRU) {
            h = cn_gru_cell(&g2, xt, gh, h ? h : cn_zeros(&g2, 2, SHAPE(B, H)));
        } else if (kind == CN_REC_LSTM) {
            cn_var *pre = cn_add(&g2, xt, gh);
            c = cn_lstm_cell_c(&g2, pre, c);
            h = cn_lstm_cell_h(&g2, pre, c);
        } else {
            cn_var *pre = cn_add(&g2, xt, gh);
            h = kind == CN_REC_TANH ? cn_tanh(&g2, pre) : cn_relu(&g2, pre);
        }
        ck_assert_ptr_nonnull(h);
        hs[t] = h;
    }
    cn_var *y2 = cn_concat0(&g2, hs, T, 1);
    ck_assert_ok(cn_backward(&g2, cn_sum(&g2, cn_mul(&g2, y2, cn_input(&g2, &twy)))));
    double scale = max_abs(y2->v.data, ny);
    for (size_t i = 0; i < ny; i++) {
        double d = fabs((double)y->v.data[i] - (double)y2->v.data[i]);
        ck_assert_msg(tol == 0 ? y->v.data[i] == y2->v.data[i] : d <= tol * scale,
                      "kind %d H %d: value [%zu] %.9g vs %.9g", kind, H, i, (double)y->v.data[i], (double)y2->v.data[i]);
    }
    const char *names[5] = {"x", "w_ih", "w_hh", "b_ih", "b_hh"};
    for (int k = 0; k < 5; k++) {
        size_t n = cn_numel(&in1[k]->v);
        double gs = max_abs(in2[k]->grad, n);
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)in1[k]->grad[i] - (double)in2[k]->grad[i]);
            /* gradients always sum over time in another order: float rounding, never more */
            ck_assert_msg(d <= (tol > 0 ? tol : 1e-6) * gs, "kind %d H %d: d%s[%zu] %.9g vs %.9g", kind, H, names[k], i,
                          (double)in1[k]->grad[i], (double)in2[k]->grad[i]);
        }
    }
    free(hs);
    cn_graph_free(&g1);
    cn_graph_free(&g2);
    free(x); free(wih); free(whh); free(bih); free(bhh); free(wy);
}

static void check_recurrent_kind(int kind, int T, int B, int H, double tol) { check_recurrent_kind_f(kind, T, B, H, 2, tol); }

START_TEST(recurrent_matches_the_per_step_graph)
{
    for (int kind = CN_REC_TANH; kind <= CN_REC_GRU; kind++) {
        check_recurrent_kind(kind, 5, 3, 4, 0.0);     /* cn_gemm path: the same values bit for bit */
        check_recurrent_kind(kind, 6, 5, 16, 2e-6);   /* W_hh kernel, with row tails (B = 5) */
        check_recurrent_kind(kind, 4, 3, 24, 2e-6);
        check_recurrent_kind(kind, 4, 3, 72, 2e-6);   /* dW_hh in the kernel (rnn, gru) or OpenBLAS (lstm) */
        check_recurrent_kind(kind, 4, 3, 136, 2e-6);  /* per-step products in the kernel, dW_hh in OpenBLAS */
        /* up to 8 inputs x W_ih^T is formed step by step and dW_ih in rec_dwih; from 9 in OpenBLAS */
        check_recurrent_kind_f(kind, 5, 6, 16, 8, 2e-6);
        check_recurrent_kind_f(kind, 5, 6, 16, 9, 2e-6);
        check_recurrent_kind_f(kind, 4, 3, 4, 9, 0.0);
    }
}
END_TEST

/* Every choice of kernel for the W_hh products against the per-step graph: all in rec_gemm (also dW_hh,
 * over K chunks when (T - 1) B is large), all in OpenBLAS (then the forward values are those of
 * the per-step graph bit for bit, as with H % 8 != 0). */
START_TEST(recurrent_kernel_choices_match_the_per_step_graph)
{
    for (int kind = CN_REC_TANH; kind <= CN_REC_GRU; kind++) {
        cn__recurrent_force_kernel(1);
        check_recurrent_kind(kind, 5, 4, 72, 2e-6);
        check_recurrent_kind(kind, 4, 9, 16, 2e-6);
        /* (T - 1) B = 2320 rows: rec_gemm's dW_hh runs over several chunks of K, the last one partial */
        check_recurrent_kind(kind, 30, 80, 16, 1e-5);
        cn__recurrent_force_kernel(2);
        check_recurrent_kind(kind, 5, 4, 72, 0.0);
        check_recurrent_kind(kind, 4, 9, 16, 0.0);
        cn__recurrent_force_kernel(0);
    }
}
END_TEST

/* One recurrent layer on fixed data, loss sum(y * wy): writes y and the five inputs' gradients to out and
 * returns their count. twice: a second backward on the same graph after zeroing the gradients, whose
 * results are written instead (the first backward overwrote the saved gates: the layer runs its forward
 * again); y's values must not change. */
static size_t recurrent_run_n(int kind, int T, int B, int H, float *out, int twice)
{
    enum { F = 3 };
    int G = kind == CN_REC_LSTM ? 4 : kind == CN_REC_GRU ? 3 : 1, GH = G * H;
    size_t nx = (size_t)T * B * F, nih = (size_t)GH * F, nhh = (size_t)GH * H, ny = (size_t)T * B * H;
    float *x = malloc(nx * 4), *wih = malloc(nih * 4), *whh = malloc(nhh * 4), *bih = malloc((size_t)GH * 4),
          *bhh = malloc((size_t)GH * 4), *wy = malloc(ny * 4);
    tu_fill_uniform(x, nx, 41, -2, 2);
    tu_fill_uniform(wih, nih, 42, -1, 1);
    tu_fill_uniform(whh, nhh, 43, -1.5f / sqrtf((float)H), 1.5f / sqrtf((float)H));
    tu_fill_uniform(bih, (size_t)GH, 44, -1, 1);
    tu_fill_uniform(bhh, (size_t)GH, 45, -1, 1);
    tu_fill_uniform(wy, ny, 46, -1, 1);
    cn_tensor tx, tih, thh, tbi, tbh, twy;
    cn_tensor_view(&tx, x, 3, SHAPE(T, B, F));
    cn_tensor_view(&tih, wih, 2, SHAPE(GH, F));
    cn_tensor_view(&thh, whh, 2, SHAPE(GH, H));
    cn_tensor_view(&tbi, bih, 1, SHAPE(GH));
    cn_tensor_view(&tbh, bhh, 1, SHAPE(GH));
    cn_tensor_view(&twy, wy, 3, SHAPE(T, B, H));
    cn_graph g;
    cn_graph_init(&g);
    cn_var *in[5] = {cn_leaf(&g, &tx, NULL), cn_leaf(&g, &tih, NULL), cn_leaf(&g, &thh, NULL), cn_leaf(&g, &tbi, NULL),
                     cn_leaf(&g, &tbh, NULL)};
    cn_var *y = cn_recurrent(&g, kind, in[0], in[1], in[2], in[3], in[4], 0);
    cn_var *loss = cn_sum(&g, cn_mul(&g, y, cn_input(&g, &twy)));
    ck_assert_ok(cn_backward(&g, loss));
    if (twice) {
        float *y1 = malloc(ny * 4);
        memcpy(y1, y->v.data, ny * 4);
        for (int k = 0; k < 5; k++) memset(in[k]->grad, 0, cn_numel(&in[k]->v) * 4);
        ck_assert_ok(cn_backward(&g, loss));
        ck_assert_msg(memcmp(y1, y->v.data, ny * 4) == 0, "kind %d H %d: the second backward changed y", kind, H);
        free(y1);
    }
    size_t n = 0;
    memcpy(out, y->v.data, ny * 4);
    n += ny;
    for (int k = 0; k < 5; k++) {
        memcpy(out + n, in[k]->grad, cn_numel(&in[k]->v) * 4);
        n += cn_numel(&in[k]->v);
    }
    cn_graph_free(&g);
    free(x); free(wih); free(whh); free(bih); free(bhh); free(wy);
    return n;
}

static size_t recurrent_run(int kind, int T, int B, int H, float *out) { return recurrent_run_n(kind, T, B, H, out, 0); }

/* The elementwise passes the pool splits (cn_pool_for): the unary ops forward and backward, the linear
 * layer's bias rows and bias gradient, and the zeroing of intermediate gradients at backward. Shapes are
 * above the split size, the products below theirs (so only these passes change with the thread count):
 * every value and gradient at 2 and 3 threads has the bits of 1 thread. A second backward on the same
 * graph must give the same intermediate gradient (zeroed whole before it accumulates again). */
static void elementwise_run(int op, float *out, size_t *n_out)
{
    enum { R = 1024, I = 8, O = 48 };
    float *x = malloc(sizeof(float) * R * I), *w = malloc(sizeof(float) * O * I), *b = malloc(sizeof(float) * O),
          *m = malloc(sizeof(float) * R * O), *gx = calloc(R * I, sizeof(float)), *gw = calloc(O * I, sizeof(float)),
          *gb = calloc(O, sizeof(float));
    ck_assert(x && w && b && m && gx && gw && gb);
    tu_fill_uniform(x, R * I, 5, -2, 2);
    tu_fill_uniform(w, O * I, 6, -1, 1);
    tu_fill_uniform(b, O, 7, -1, 1);
    tu_fill_uniform(m, R * O, 8, -1, 1);
    cn_graph g;
    ck_assert_ok(cn_graph_init(&g));
    cn_tensor tx, tw, tb, tm;
    ck_assert_ok(cn_tensor_view(&tx, x, 2, (int[]){R, I}));
    ck_assert_ok(cn_tensor_view(&tw, w, 2, (int[]){O, I}));
    ck_assert_ok(cn_tensor_view(&tb, b, 1, (int[]){O}));
    ck_assert_ok(cn_tensor_view(&tm, m, 2, (int[]){R, O}));
    cn_var *vx = cn_leaf(&g, &tx, gx), *vw = cn_leaf(&g, &tw, gw), *vb = cn_leaf(&g, &tb, gb);
    cn_var *h = cn_linear(&g, vx, vw, vb);
    cn_var *a = op == 0 ? cn_relu(&g, h) : op == 1 ? cn_tanh(&g, h) : cn_sigmoid(&g, h);
    cn_var *loss = cn_sum(&g, cn_mul(&g, a, cn_input(&g, &tm)));   /* dL/da = m: every element its own */
    ck_assert_ok(cn_backward(&g, loss));
    size_t k = 0;
    memcpy(out + k, a->v.data, sizeof(float) * R * O), k += R * O;
    memcpy(out + k, h->grad, sizeof(float) * R * O), k += R * O;
    memcpy(out + k, gx, sizeof(float) * R * I), k += R * I;
    memcpy(out + k, gw, sizeof(float) * O * I), k += O * I;
    memcpy(out + k, gb, sizeof(float) * O), k += O;
    /* a second backward: the intermediate gradients are zeroed first */
    ck_assert_ok(cn_backward(&g, loss));
    ck_assert_msg(memcmp(h->grad, out + R * O, sizeof(float) * R * O) == 0, "op %d: second backward differs", op);
    *n_out = k;
    cn_graph_free(&g);
    free(x); free(w); free(b); free(m); free(gx); free(gw); free(gb);
}

START_TEST(elementwise_passes_same_bits_at_any_thread_count)
{
    size_t cap = 2 * 1024 * 48 + 1024 * 8 + 48 * 8 + 48, n1, n;
    float *one = malloc(sizeof(float) * cap), *more = malloc(sizeof(float) * cap);
    ck_assert(one && more);
    for (int op = 0; op < 3; op++) {
        cn_set_threads(1);
        elementwise_run(op, one, &n1);
        for (int threads = 2; threads <= 3; threads++) {
            cn_set_threads(threads);
            elementwise_run(op, more, &n);
            ck_assert_uint_eq(n, n1);
            ck_assert_msg(memcmp(one, more, sizeof(float) * n) == 0, "op %d threads %d differ from 1 thread", op, threads);
        }
    }
    cn_set_threads(1);
    free(one);
    free(more);
}
END_TEST

/* Same inputs, same kernel choice, same thread count: the same bits, on every path (OpenBLAS dW_hh at
 * H 256 and lstm / gru H 96, rec_gemm dW_hh at H 8, H % 8 != 0, forced choices), with 1 and 2 threads (at 2, B 40 splits into
 * rows 0-15 and 16-39 for every kind from H 20: the whole recurrence runs per row block on the pool, and
 * the weight-gradient products split themselves). The rerun's gradients are those of a second backward on
 * its graph (cn_backward allows it), which must give the first one's bits. */
START_TEST(recurrent_reruns_are_bit_identical)
{
    static const int hs[] = {8, 20, 96, 256};
    int T = 6, B = 40;
    size_t cap = 0;
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        size_t G = 4, H = (size_t)hs[i];
        size_t n = T * B * H + (size_t)T * B * 3 + G * H * (3 + H + 2);
        cap = n > cap ? n : cap;
    }
    float *a = malloc(cap * 4), *b = malloc(cap * 4);
    for (int threads = 1; threads <= 2; threads++) {
        cn_set_threads(threads);
        for (int mode = 0; mode <= 4; mode++) {
            if (mode == 3) continue;   /* the epilogue order: its own test below */
            cn__recurrent_force_kernel(mode);
            for (int kind = CN_REC_TANH; kind <= CN_REC_GRU; kind++)
                for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
                    /* the rerun's gradients come from a second backward on its graph: backward wrote d pre
                     * over the saved gates, so the layer must run its forward again first */
                    size_t na = recurrent_run(kind, T, B, hs[i], a), nb = recurrent_run_n(kind, T, B, hs[i], b, 1);
                    ck_assert_uint_eq(na, nb);
                    ck_assert_msg(memcmp(a, b, na * 4) == 0, "kind %d H %d mode %d threads %d: rerun differs", kind,
                                  hs[i], mode, threads);
                }
        }
    }
    /* the pool splits the batch rows without changing any sum: with every W_hh product in rec_gemm
     * (H % 8 == 0), 2 threads give the bits of 1 (OpenBLAS's products, split by cn_gemm, may differ between
     * thread counts: not checked here) */
    cn__recurrent_force_kernel(1);
    for (int kind = CN_REC_TANH; kind <= CN_REC_GRU; kind++)
        for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
            if (hs[i] % 8) continue;
            cn_set_threads(1);
            size_t na = recurrent_run(kind, T, B, hs[i], a);
            cn_set_threads(2);
            size_t nb = recurrent_run(kind, T, B, hs[i], b);
            ck_assert_uint_eq(na, nb);
            ck_assert_msg(memcmp(a, b, na * 4) == 0, "kind %d H %d: 2 threads differ from 1", kind, hs[i]);
        }
    cn__recurrent_force_kernel(0);
    cn_set_threads(1);
    free(a);
    free(b);
}
END_TEST

/* The default sends dW_hh to rec_gemm while W_hh has at most 128 x 128 elements and to OpenBLAS above
 * (src/autograd/recurrent.c, rec_dw_kernel): at the shapes either side of that line the default gives
 * the bits of forcing the one it should choose (mode 1: rec_gemm for dW_hh too; mode 4: OpenBLAS for
 * dW_hh), and the two give different bits there, so the comparison can tell them apart. */
START_TEST(recurrent_dw_kernel_follows_the_w_hh_size)
{
    static const struct { int kind, H, rec; } cases[] = {
        {CN_REC_TANH, 128, 1}, {CN_REC_GRU, 72, 1}, {CN_REC_LSTM, 64, 1},       /* 16384, 15552, 16384 */
        {CN_REC_TANH, 136, 0}, {CN_REC_LSTM, 72, 0}, {CN_REC_GRU, 80, 0},       /* 18496, 20736, 19200 */
    };
    int T = 6, B = 40;
    size_t cap = (size_t)T * B * 136 + (size_t)T * B * 3 + 4 * 136 * (3 + 136 + 2);
    float *a = malloc(cap * 4), *b = malloc(cap * 4), *c = malloc(cap * 4);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cn__recurrent_force_kernel(0);
        size_t n = recurrent_run(cases[i].kind, T, B, cases[i].H, a);
        cn__recurrent_force_kernel(1);
        ck_assert_uint_eq(recurrent_run(cases[i].kind, T, B, cases[i].H, b), n);
        cn__recurrent_force_kernel(4);
        ck_assert_uint_eq(recurrent_run(cases[i].kind, T, B, cases[i].H, c), n);
        ck_assert_msg(memcmp(b, c, n * 4) != 0, "kind %d H %d: both dW_hh kernels give the same bits", cases[i].kind,
                      cases[i].H);
        ck_assert_msg(memcmp(a, cases[i].rec ? b : c, n * 4) == 0, "kind %d H %d: the default did not put dW_hh in %s",
                      cases[i].kind, cases[i].H, cases[i].rec ? "rec_gemm" : "OpenBLAS");
    }
    cn__recurrent_force_kernel(0);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* rnn and lstm add b_hh + h W_hh^T to x W_ih^T + b_ih inside rec_gemm's store, without the gh array:
 * the same bits as forming gh first (the forced mode 3), forward and backward, at widths with and without
 * 16-lane and 2-vector column blocks and batches past and below the 8-row block, at 1 and 2 threads. */
START_TEST(recurrent_bias_epilogue_keeps_the_bits)
{
    static const int hs[] = {8, 16, 24, 64, 72};
    static const int bs[] = {5, 40};
    int T = 5;
    size_t cap = (size_t)T * 40 * 72 + (size_t)T * 40 * 3 + 4 * 72 * (3 + 72 + 2);
    float *a = malloc(cap * 4), *b = malloc(cap * 4);
    for (int threads = 1; threads <= 2; threads++) {
        cn_set_threads(threads);
        for (int kind = CN_REC_TANH; kind <= CN_REC_GRU; kind++)
            for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
                for (size_t j = 0; j < sizeof bs / sizeof bs[0]; j++) {
                    cn__recurrent_force_kernel(0);
                    size_t na = recurrent_run(kind, T, bs[j], hs[i], a);
                    cn__recurrent_force_kernel(3);
                    size_t nb = recurrent_run(kind, T, bs[j], hs[i], b);
                    ck_assert_uint_eq(na, nb);
                    ck_assert_msg(memcmp(a, b, na * 4) == 0, "kind %d H %d B %d threads %d: epilogue changes bits",
                                  kind, hs[i], bs[j], threads);
                }
    }
    cn__recurrent_force_kernel(0);
    cn_set_threads(1);
    free(a);
    free(b);
}
END_TEST

/* The W_ih / b_ih gradient kernel of layers with few inputs: dW against a double sum, b_ih bit for bit
 * against cn_vcolsum_ld (the pass it replaces), and the columns split anywhere on a 16-column boundary
 * (as the pool splits them) give the bits of one call: F 1-8, widths with 2-vector, 1-vector and single
 * columns, row counts below and past one block. */
START_TEST(recurrent_dw_ih_kernel_matches_references)
{
    static const int gs[] = {5, 16, 40, 56, 300};
    static const size_t rs[] = {1, 7, 130};
    for (int F = 1; F <= 8; F++)
        for (size_t gi = 0; gi < sizeof gs / sizeof gs[0]; gi++)
            for (size_t ri = 0; ri < sizeof rs / sizeof rs[0]; ri++) {
                int GH = gs[gi];
                size_t R = rs[ri], ld = (size_t)GH + 3;
                float *d = malloc(R * ld * 4), *x = malloc(R * F * 4), *dw = malloc((size_t)GH * F * 4),
                      *dw2 = malloc((size_t)GH * F * 4), *gb = malloc((size_t)GH * 4), *gb2 = malloc((size_t)GH * 4),
                      *gbr = malloc((size_t)GH * 4);
                tu_fill_uniform(d, R * ld, 51, -1, 1);
                tu_fill_uniform(x, R * F, 52, -2, 2);
                tu_fill_uniform(dw, (size_t)GH * F, 53, -1, 1);
                tu_fill_uniform(gb, (size_t)GH, 54, -1, 1);
                memcpy(dw2, dw, (size_t)GH * F * 4);
                memcpy(gb2, gb, (size_t)GH * 4);
                memcpy(gbr, gb, (size_t)GH * 4);
                double *want = malloc((size_t)GH * F * sizeof(double));
                for (int j = 0; j < GH; j++)
                    for (int f = 0; f < F; f++) {
                        double acc = 0;
                        for (size_t r = 0; r < R; r++) acc += (double)d[r * ld + j] * x[r * F + f];
                        want[(size_t)j * F + f] = dw[(size_t)j * F + f] + acc;
                    }
                cn_vcolsum_ld(gbr, d, R, (size_t)GH, ld);
                cn__recurrent_dw_ih(0, GH, F, R, d, ld, x, dw, gb);
                for (size_t i = 0; i < (size_t)GH * F; i++)
                    ck_assert_msg(fabs(dw[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])) * sqrt((double)R),
                                  "F %d GH %d R %zu: dw[%zu] %g, want %g", F, GH, R, i, dw[i], want[i]);
                ck_assert_msg(memcmp(gb, gbr, (size_t)GH * 4) == 0, "F %d GH %d R %zu: b_ih differs from colsum", F, GH, R);
                for (int c = 16; c < GH; c += 16) {   /* the same data in two calls split at c */
                    float *dw3 = malloc((size_t)GH * F * 4), *gb3 = malloc((size_t)GH * 4);
                    memcpy(dw3, dw2, (size_t)GH * F * 4);
                    memcpy(gb3, gb2, (size_t)GH * 4);
                    cn__recurrent_dw_ih(0, c, F, R, d, ld, x, dw3, gb3);
                    cn__recurrent_dw_ih(c, GH, F, R, d, ld, x, dw3, gb3);
                    ck_assert_msg(memcmp(dw3, dw, (size_t)GH * F * 4) == 0 && memcmp(gb3, gb, (size_t)GH * 4) == 0,
                                  "F %d GH %d R %zu: split at %d changes bits", F, GH, R, c);
                    free(dw3);
                    free(gb3);
                }
                free(d); free(x); free(dw); free(dw2); free(gb); free(gb2); free(gbr); free(want);
            }
}
END_TEST

/* The fused layer's LSTM and GRU backward row kernels on rows with 16-lane, 8-lane and scalar parts
 * (H 59 = 3 x 16 + 8 + 3; H 8, 16 and 24 exactly) against each element alone (H 1: the scalar loop), bit
 * for bit: in place (dg = a, dgi = s) and not, carry on and off, set on and off. */
START_TEST(recurrent_row_kernels_same_bits_at_every_width)
{
    static const int hs[] = {59, 8, 16, 24, 3};
    for (size_t hi = 0; hi < sizeof hs / sizeof hs[0]; hi++) {
        int H = hs[hi];
        size_t n4 = 4 * (size_t)H;
        float *a = malloc(n4 * 4), *tc = malloc(H * 4), *cp = malloc(H * 4), *dh = malloc(H * 4), *dc = malloc(H * 4),
              *dc1 = malloc(H * 4), *dg = malloc(n4 * 4), *ip = malloc(n4 * 4);
        for (int carry = 0; carry <= 1; carry++) {
            tu_fill_uniform(a, n4, 61, 0.01f, 0.99f);
            tu_fill_uniform(tc, (size_t)H, 62, -0.99f, 0.99f);
            tu_fill_uniform(cp, (size_t)H, 63, -2, 2);
            tu_fill_uniform(dh, (size_t)H, 64, -1, 1);
            tu_fill_uniform(dc, (size_t)H, 65, -1, 1);
            memcpy(dc1, dc, H * 4);
            memcpy(ip, a, n4 * 4);
            cn__lstm_bwd_row(a, tc, cp, dh, dc, dg, H, carry);
            float *dci = malloc(H * 4);
            memcpy(dci, dc1, H * 4);
            cn__lstm_bwd_row(ip, tc, cp, dh, dci, ip, H, carry);   /* in place: the bits of dg */
            ck_assert_msg(memcmp(ip, dg, n4 * 4) == 0 && memcmp(dci, dc, H * 4) == 0, "lstm H %d carry %d: in place differs",
                          H, carry);
            free(dci);
            for (int h = 0; h < H; h++) {
                float a1[4] = {a[h], a[H + h], a[2 * H + h], a[3 * H + h]}, g1[4], d1 = dc1[h];
                cn__lstm_bwd_row(a1, tc + h, cp + h, dh + h, &d1, g1, 1, carry);
                for (int q = 0; q < 4; q++)
                    ck_assert_msg(memcmp(&g1[q], &dg[q * H + h], 4) == 0, "lstm H %d carry %d: dg[%d, %d] %a vs %a",
                                  H, carry, q, h, (double)dg[q * H + h], (double)g1[q]);
                ck_assert_msg(memcmp(&d1, &dc[h], 4) == 0, "lstm H %d carry %d: dc[%d]", H, carry, h);
            }
        }
        /* GRU: 2 rows, xh_n with its own stride */
        size_t B = 2, n3 = 3 * (size_t)H * B, nh = (size_t)H * B, xs = (size_t)H + 5;
        float *s = malloc(n3 * 4), *xh = malloc(B * xs * 4), *hp = malloc(nh * 4), *dy = malloc(nh * 4),
              *gi = malloc(n3 * 4), *gh = malloc(n3 * 4), *dhp = malloc(nh * 4), *s2 = malloc(n3 * 4),
              *gh2 = malloc(n3 * 4), *dhp2 = malloc(nh * 4);
        for (int set = 0; set <= 1; set++) {
            tu_fill_uniform(s, n3, 71, 0.01f, 0.99f);
            tu_fill_uniform(xh, B * xs, 72, -2, 2);
            tu_fill_uniform(hp, nh, 73, -1, 1);
            tu_fill_uniform(dy, nh, 74, -1, 1);
            tu_fill_uniform(gi, n3, 75, -1, 1);
            tu_fill_uniform(gh, n3, 76, -1, 1);
            tu_fill_uniform(dhp, nh, 77, -1, 1);
            float *gi0 = malloc(n3 * 4), *gh0 = malloc(n3 * 4), *dhp0 = malloc(nh * 4);
            memcpy(gi0, gi, n3 * 4); memcpy(gh0, gh, n3 * 4); memcpy(dhp0, dhp, nh * 4);
            memcpy(s2, s, n3 * 4); memcpy(gh2, gh, n3 * 4); memcpy(dhp2, dhp, nh * 4);
            cn__gru_step_backward(dy, s, xh, xs, hp, gi, gh, set, dhp, B, H);
            if (set) {   /* d gi written over s: the bits of a separate array */
                cn__gru_step_backward(dy, s2, xh, xs, hp, s2, gh2, 1, dhp2, B, H);
                ck_assert_msg(memcmp(s2, gi, n3 * 4) == 0 && memcmp(gh2, gh, n3 * 4) == 0 && memcmp(dhp2, dhp, nh * 4) == 0,
                              "gru H %d: in place differs", H);
            }
            for (size_t b = 0; b < B; b++)
                for (int h = 0; h < H; h++) {
                    size_t r3 = b * 3 * (size_t)H;
                    float s1[3] = {s[r3 + h], s[r3 + H + h], s[r3 + 2 * H + h]}, x1 = xh[b * xs + h];
                    float i1[3] = {gi0[r3 + h], gi0[r3 + H + h], gi0[r3 + 2 * H + h]};
                    float h1[3] = {gh0[r3 + h], gh0[r3 + H + h], gh0[r3 + 2 * H + h]}, p1 = dhp0[b * H + h];
                    cn__gru_step_backward(dy + b * H + h, s1, &x1, 1, hp + b * H + h, i1, h1, set, &p1, 1, 1);
                    for (int q = 0; q < 3; q++)
                        ck_assert_msg(memcmp(&i1[q], &gi[r3 + q * H + h], 4) == 0 && memcmp(&h1[q], &gh[r3 + q * H + h], 4) == 0,
                                      "gru H %d set %d: row %zu gate %d element %d", H, set, b, q, h);
                    ck_assert_msg(memcmp(&p1, &dhp[b * H + h], 4) == 0, "gru H %d set %d: dh[%zu, %d]", H, set, b, h);
                }
            free(gi0); free(gh0); free(dhp0);
        }
        free(a); free(tc); free(cp); free(dh); free(dc); free(dc1); free(dg); free(ip);
        free(s); free(xh); free(hp); free(dy); free(gi); free(gh); free(dhp); free(s2); free(gh2); free(dhp2);
    }
}
END_TEST

START_TEST(recurrent_rejects_bad_shapes)
{
    cn_graph g;
    cn_graph_init(&g);
    float d[64] = {0};
    cn_var *x = IN(&g, d, 2, 2, 3), *w = IN(&g, d, 4, 3), *wh = IN(&g, d, 4, 4), *b = IN(&g, d, 4);
    ck_assert_ptr_null(cn_recurrent(&g, CN_REC_LSTM, x, w, wh, b, b, 0));   /* lstm needs [4H, H]: 4 != 16 */
    ck_assert_msg(strstr(cn_errmsg(), "weight_hh") != NULL, "%s", cn_errmsg());
    cn_graph_free(&g);
}
END_TEST

/* The vector kernels against tanh and 1/(1 + exp(-x)) in double on a dense grid of [-20, 20] (step 2^-14)
 * and on small magnitudes down to 1e-30, where tanh x = x must keep full relative precision. */
static double ulps(float got, double want)
{
    float w = (float)want, aw = fabsf(w);
    double u = aw < 1.1754944e-38f ? 1.401298464e-45 : (double)(nextafterf(aw, INFINITY) - aw);
    return fabs((double)got - want) / u;
}

START_TEST(vtanh_vsigmoid_max_ulp_error_is_small)
{
    enum { N = 40 * 16384 + 1 };
    float *x = malloc(sizeof(float) * N), *t = malloc(sizeof(float) * N), *s = malloc(sizeof(float) * N);
    ck_assert_ptr_nonnull(x); ck_assert_ptr_nonnull(t); ck_assert_ptr_nonnull(s);
    for (int i = 0; i < N; i++) x[i] = -20.0f + (float)i / 16384.0f;
    cn_vtanh(t, x, N);
    cn_vsigmoid(s, x, N);
    double mt = 0, ms = 0;
    for (int i = 0; i < N; i++) {
        double et = ulps(t[i], tanh((double)x[i])), es = ulps(s[i], 1.0 / (1.0 + exp(-(double)x[i])));
        mt = et > mt ? et : mt;
        ms = es > ms ? es : ms;
    }
    for (double v = 1e-30; v < 1.0; v *= 1.001) {
        float xf = (float)v, o[2], in[2] = {xf, -xf};
        cn_vtanh(o, in, 2);
        double e = ulps(o[0], tanh((double)xf));
        mt = e > mt ? e : mt;
        ck_assert(o[1] == -o[0]);
    }
    ck_assert_msg(mt <= 2.0, "tanh max error %.3f ulp", mt);
    ck_assert_msg(ms <= 3.0, "sigmoid max error %.3f ulp", ms);
    /* specials, and every tail length (n not a multiple of the vector width) */
    float sp[7] = {NAN, INFINITY, -INFINITY, -0.0f, 100.0f, -100.0f, 0.0f}, o[7];
    cn_vtanh(o, sp, 7);
    ck_assert(isnan(o[0]) && o[1] == 1.0f && o[2] == -1.0f && o[3] == 0.0f && signbit(o[3]) && o[4] == 1.0f && o[5] == -1.0f);
    cn_vsigmoid(o, sp, 7);
    ck_assert(isnan(o[0]) && o[1] == 1.0f && o[2] == 0.0f && o[3] == 0.5f && o[4] == 1.0f && o[5] == 0.0f && o[6] == 0.5f);
    for (size_t n = 1; n <= 17; n++) {
        cn_vtanh(t, x + 300000, n);
        for (size_t i = 0; i < n; i++) ck_assert(ulps(t[i], tanh((double)x[300000 + i])) <= 2.0);
    }
    free(x); free(t); free(s);
}
END_TEST

/* The kernels' widths give the same bits: a long array runs through the widest vectors the CPU has (16
 * lanes with AVX-512), one element at a time through the 8-lane tail vector. Inputs: every float pattern
 * of a stride through all 2^32 (NaN, inf, subnormals, both signs) and the dense grid. */
START_TEST(vtanh_vsigmoid_same_bits_at_every_width)
{
    enum { N = 1 << 17 };
    float *x = malloc(sizeof(float) * N), *t = malloc(sizeof(float) * N), *s = malloc(sizeof(float) * N);
    ck_assert_ptr_nonnull(x); ck_assert_ptr_nonnull(t); ck_assert_ptr_nonnull(s);
    for (int i = 0; i < N; i++) {
        if (i % 2) {
            uint32_t u = (uint32_t)i * 2654435761u;
            memcpy(&x[i], &u, sizeof u);
        } else
            x[i] = -20.0f + (float)i / 3000.0f;
    }
    cn_vtanh(t, x, N);
    cn_vsigmoid(s, x, N);
    for (int i = 0; i < N; i++) {
        float one_t, one_s;
        cn_vtanh(&one_t, x + i, 1);
        cn_vsigmoid(&one_s, x + i, 1);
        ck_assert_msg(memcmp(&one_t, &t[i], sizeof(float)) == 0, "tanh(%a): %a in bulk, %a alone", (double)x[i], (double)t[i], (double)one_t);
        ck_assert_msg(memcmp(&one_s, &s[i], sizeof(float)) == 0, "sigmoid(%a): %a in bulk, %a alone", (double)x[i], (double)s[i], (double)one_s);
    }
    free(x); free(t); free(s);
}
END_TEST

/* The vector backward and column-sum kernels against plain scalar loops, bit for bit, at lengths and
 * widths around the vector and register-block sizes. */
START_TEST(backward_and_colsum_kernels_match_scalar_loops)
{
    enum { R = 150, LD = 75 };   /* R past the kernel's 64-row blocks */
    static float d[R * LD], y[R * LD], dy[R * LD], a[R * LD], b[R * LD];
    uint32_t st = 12345;
    for (int i = 0; i < R * LD; i++) {
        st = st * 1664525u + 1013904223u;
        d[i] = (float)(st >> 8) / 16777216.0f * 4.0f - 2.0f;
        y[i] = (float)((st >> 4) % 2001) / 1000.0f - 1.0f;
        dy[i] = (float)((st >> 12) % 4001) / 997.0f - 2.0f;
    }
    for (size_t n = 0; n <= 41; n++) {
        for (size_t i = 0; i < n; i++) a[i] = b[i] = d[i];
        cn_vtanh_backward_add(a, dy, y, n);
        for (size_t i = 0; i < n; i++) b[i] += dy[i] * (1.0f - y[i] * y[i]);
        ck_assert(memcmp(a, b, n * sizeof(float)) == 0);
        cn_vsigmoid_backward_add(a, dy, y, n);
        for (size_t i = 0; i < n; i++) b[i] += dy[i] * y[i] * (1.0f - y[i]);
        ck_assert(memcmp(a, b, n * sizeof(float)) == 0);
    }
    size_t widths[] = {0, 1, 7, 8, 9, 31, 32, 33, 40, 64, 70, 75};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
        for (size_t rows = 0; rows <= R; rows += rows < 70 ? 1 : 40) {
            size_t C = widths[w];
            for (size_t c = 0; c < C; c++) a[c] = b[c] = y[c];
            cn_vcolsum_ld(a, d, rows, C, LD);
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < C; c++) b[c] += d[r * LD + c];
            ck_assert_msg(memcmp(a, b, C * sizeof(float)) == 0, "C %zu, rows %zu", C, rows);
        }
}
END_TEST

START_TEST(forward_gru_cell)
{
    cn_graph g;
    cn_graph_init(&g);
    /* r = z = .5, n = tanh(0.5 + .5 * 1) = tanh 1, h' = .5 n + .5 * 2 */
    float gi[3] = {0, 0, 0.5f}, gh[3] = {0, 0, 1}, h[1] = {2};
    cn_var *y = cn_gru_cell(&g, IN(&g, gi, 1, 3), IN(&g, gh, 1, 3), IN(&g, h, 1, 1));
    ASSERT_SHAPE(y, 1, 1);
    ASSERT_VALUES(y, 1e-6, (float)(0.5 * tanh(1.0) + 1.0));
    cn_graph_free(&g);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Error paths */

START_TEST(shape_mismatch_names_op_and_shapes)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[6] = {0}, b[4] = {0};
    cn_error_clear();
    cn_var *y = cn_add(&g, IN(&g, a, 2, 3), IN(&g, b, 2, 2));
    ck_assert_ptr_null(y);
    ck_assert_int_eq(g.err, CN_ERR_SHAPE);
    ck_assert_int_eq(cn_graph_status(&g), CN_ERR_SHAPE);
    const char *m = cn_errmsg();
    ck_assert_msg(strstr(m, "add") && strstr(m, "[2, 3]") && strstr(m, "[2, 2]"), "message: %s", m);
    cn_graph_free(&g);
}
END_TEST

/* Each bad call on a fresh graph: NULL, CN_ERR_SHAPE, message naming op and first shape. */
typedef cn_var *(*bad_call)(cn_graph *g, float *d);
static cn_var *bad_sub(cn_graph *g, float *d) { return cn_sub(g, IN(g, d, 2, 3), IN(g, d, 2)); }
static cn_var *bad_mul(cn_graph *g, float *d) { return cn_mul(g, IN(g, d, 2, 3), IN(g, d, 3, 1)); }
static cn_var *bad_matmul(cn_graph *g, float *d) { return cn_matmul(g, IN(g, d, 2, 3), IN(g, d, 2, 3), 0, 0); }
static cn_var *bad_matmul_b3(cn_graph *g, float *d) { return cn_matmul(g, IN(g, d, 2, 3), IN(g, d, 3, 1, 1), 0, 0); }
static cn_var *bad_matmul_ta3(cn_graph *g, float *d) { return cn_matmul(g, IN(g, d, 2, 2, 3), IN(g, d, 2, 3), 1, 0); }
static cn_var *bad_linear(cn_graph *g, float *d) { return cn_linear(g, IN(g, d, 2, 3), IN(g, d, 4, 2), NULL); }
static cn_var *bad_linear_bias(cn_graph *g, float *d) { return cn_linear(g, IN(g, d, 2, 3), IN(g, d, 4, 3), IN(g, d, 3)); }
static cn_var *bad_transpose(cn_graph *g, float *d) { return cn_transpose(g, IN(g, d, 2, 3, 1)); }
static cn_var *bad_slice(cn_graph *g, float *d) { return cn_slice_cols(g, IN(g, d, 2, 3), 2, 2); }
static cn_var *bad_slice_neg(cn_graph *g, float *d) { return cn_slice_cols(g, IN(g, d, 2, 3), -1, 1); }
static cn_var *bad_concat_cols(cn_graph *g, float *d)
{
    cn_var *p[2] = {IN(g, d, 2, 3), IN(g, d, 3, 3)};
    return cn_concat_cols(g, p, 2);
}
static cn_var *bad_concat_cols_lead(cn_graph *g, float *d)
{
    /* same number of rows (6) but different leading dims */
    cn_var *p[2] = {IN(g, d, 2, 3, 1), IN(g, d, 3, 2, 1)};
    return cn_concat_cols(g, p, 2);
}
static cn_var *bad_narrow(cn_graph *g, float *d) { return cn_narrow(g, IN(g, d, 3, 2), 2, 2); }
static cn_var *bad_select(cn_graph *g, float *d) { return cn_select(g, IN(g, d, 3, 2), 3); }
static cn_var *bad_select_rank1(cn_graph *g, float *d) { return cn_select(g, IN(g, d, 3), 0); }
static cn_var *bad_reshape(cn_graph *g, float *d) { return cn_reshape(g, IN(g, d, 2, 3), 2, SHAPE(4, 2)); }
static cn_var *bad_reshape_neg(cn_graph *g, float *d) { return cn_reshape(g, IN(g, d, 2, 3), 2, SHAPE(-2, -3)); }
static cn_var *bad_concat0(cn_graph *g, float *d)
{
    cn_var *p[2] = {IN(g, d, 2, 3), IN(g, d, 2, 2)};
    return cn_concat0(g, p, 2, 0);
}
static cn_var *bad_stack(cn_graph *g, float *d)
{
    cn_var *p[2] = {IN(g, d, 2, 3), IN(g, d, 1, 3)};
    return cn_concat0(g, p, 2, 1);
}
static cn_var *bad_mse(cn_graph *g, float *d) { return cn_mse(g, IN(g, d, 2, 3), IN(g, d, 5)); }
static cn_var *bad_bce(cn_graph *g, float *d) { return cn_bce_with_logits(g, IN(g, d, 2, 3), IN(g, d, 2, 2)); }
static cn_var *bad_embedding(cn_graph *g, float *d)
{
    static const int32_t idx[1] = {0};
    return cn_embedding(g, IN(g, d, 2, 3, 1), idx, 1, SHAPE(1));
}
static cn_var *bad_lstm_c(cn_graph *g, float *d) { return cn_lstm_cell_c(g, IN(g, d, 2, 7), IN(g, d, 2, 2)); }
static cn_var *bad_lstm_h(cn_graph *g, float *d) { return cn_lstm_cell_h(g, IN(g, d, 1, 8), IN(g, d, 2, 2)); }
static cn_var *bad_gru(cn_graph *g, float *d) { return cn_gru_cell(g, IN(g, d, 2, 6), IN(g, d, 2, 5), IN(g, d, 2, 2)); }

static const struct { const char *op; bad_call f; } bad_calls[] = {
    {"sub", bad_sub}, {"mul", bad_mul}, {"matmul", bad_matmul}, {"matmul", bad_matmul_b3},
    {"matmul", bad_matmul_ta3}, {"linear", bad_linear}, {"linear", bad_linear_bias},
    {"transpose", bad_transpose}, {"slice_cols", bad_slice}, {"slice_cols", bad_slice_neg},
    {"concat_cols", bad_concat_cols}, {"concat_cols", bad_concat_cols_lead}, {"narrow", bad_narrow},
    {"select", bad_select}, {"select", bad_select_rank1}, {"reshape", bad_reshape}, {"reshape", bad_reshape_neg},
    {"concat0", bad_concat0}, {"stack", bad_stack}, {"mse", bad_mse}, {"bce_with_logits", bad_bce},
    {"embedding", bad_embedding}, {"lstm_cell_c", bad_lstm_c}, {"lstm_cell_h", bad_lstm_h},
    {"gru_cell", bad_gru},
};

START_TEST(shape_errors_return_null_and_name_the_op)
{
    cn_graph g;
    cn_graph_init(&g);
    static float d[64];
    cn_error_clear();
    cn_var *y = bad_calls[_i].f(&g, d);
    ck_assert_msg(y == NULL, "%s: bad shapes accepted", bad_calls[_i].op);
    ck_assert_msg(g.err == CN_ERR_SHAPE, "%s: err %d", bad_calls[_i].op, g.err);
    ck_assert_msg(strstr(cn_errmsg(), bad_calls[_i].op) != NULL, "message does not name %s: %s", bad_calls[_i].op,
                  cn_errmsg());
    ck_assert_msg(strchr(cn_errmsg(), '[') != NULL, "message has no shape: %s", cn_errmsg());
    ck_assert_uint_eq(g.n_tape, 0);
    cn_graph_free(&g);
}
END_TEST

START_TEST(null_input_keeps_the_first_error)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[6] = {0}, b[4] = {0};
    cn_var *x = IN(&g, a, 2, 3);
    cn_var *bad = cn_add(&g, x, IN(&g, b, 2, 2));
    ck_assert_ptr_null(bad);
    char first[256];
    snprintf(first, sizeof first, "%s", cn_errmsg());
    /* the rest of the forward pass runs without checks */
    cn_var *t = cn_tanh(&g, bad);
    cn_var *m = cn_matmul(&g, t, x, 0, 1);
    cn_var *parts[2] = {x, t};
    ck_assert_ptr_null(t);
    ck_assert_ptr_null(m);
    ck_assert_ptr_null(cn_concat_cols(&g, parts, 2));
    ck_assert_ptr_null(cn_concat0(&g, parts, 2, 1));
    ck_assert_ptr_null(cn_linear(&g, x, NULL, NULL));
    ck_assert_ptr_null(cn_gru_cell(&g, NULL, x, x));
    ck_assert_ptr_null(cn_mse(&g, m, x));
    ck_assert_ptr_null(cn_cross_entropy(&g, m, NULL));
    /* even valid inputs give NULL once the graph has failed */
    ck_assert_ptr_null(cn_tanh(&g, x));
    ck_assert_ptr_null(cn_input(&g, &x->v));
    ck_assert_int_eq(g.err, CN_ERR_SHAPE);
    ck_assert_str_eq(cn_errmsg(), first);
    ck_assert_int_eq(cn_backward(&g, m), CN_ERR_SHAPE);
    ck_assert_str_eq(cn_errmsg(), first);
    /* reset clears the error */
    ck_assert_ok(cn_graph_reset(&g));
    ck_assert_int_eq(g.err, CN_OK);
    ck_assert_ptr_nonnull(cn_tanh(&g, IN(&g, a, 6)));
    cn_graph_free(&g);
}
END_TEST

START_TEST(null_input_as_first_error_fails_the_graph)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[3] = {0};
    ck_assert_ptr_null(cn_tanh(&g, NULL));
    ck_assert_int_ne(g.err, CN_OK);
    ck_assert_ptr_null(cn_add(&g, IN(&g, a, 3), NULL));
    ck_assert_int_ne(cn_backward(&g, NULL), CN_OK);
    cn_graph_free(&g);
    cn_graph_init(&g);
    ck_assert_ptr_null(cn_concat_cols(&g, (cn_var *[]){NULL}, 1));
    ck_assert_int_ne(g.err, CN_OK);
    cn_graph_free(&g);
    cn_graph_init(&g);
    ck_assert_ptr_null(cn_concat0(&g, NULL, 0, 0));
    ck_assert_int_eq(g.err, CN_ERR_ARG);
    cn_graph_free(&g);
    cn_graph_init(&g);
    ck_assert_ptr_null(cn_leaf(&g, NULL, NULL));
    ck_assert_int_eq(g.err, CN_ERR_ARG);
    cn_graph_free(&g);
}
END_TEST

START_TEST(backward_on_non_scalar_fails)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[3] = {1, 2, 3};
    cn_var *y = cn_tanh(&g, LEAF(&g, a, 3));
    ck_assert_int_eq(cn_backward(&g, y), CN_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "scalar"));
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "[3]"));
    ck_assert_int_eq(cn_backward(&g, NULL), CN_ERR_ARG);
    cn_graph_free(&g);
}
END_TEST

START_TEST(cross_entropy_label_out_of_range_fails)
{
    int32_t bad[3][2] = {{0, 3}, {-1, 0}, {0, 2147483647}};
    for (int k = 0; k < 3; k++) {
        cn_graph g;
        cn_graph_init(&g);
        float x[6] = {0};
        ck_assert_ptr_null(cn_cross_entropy(&g, LEAF(&g, x, 2, 3), bad[k]));
        ck_assert_int_eq(g.err, CN_ERR_ARG);
        ck_assert_ptr_nonnull(strstr(cn_errmsg(), "cross_entropy"));
        ck_assert_uint_eq(g.n_tape, 0);
        cn_graph_free(&g);
    }
    cn_graph g;
    cn_graph_init(&g);
    float x[6] = {0};
    ck_assert_ptr_null(cn_cross_entropy(&g, LEAF(&g, x, 2, 3), NULL));
    ck_assert_int_eq(g.err, CN_ERR_ARG);
    cn_graph_free(&g);
}
END_TEST

START_TEST(embedding_index_out_of_range_fails)
{
    int32_t bad[3][2] = {{0, 4}, {-1, 0}, {3, -2147483647 - 1}};
    for (int k = 0; k < 3; k++) {
        cn_graph g;
        cn_graph_init(&g);
        float w[8] = {0};
        ck_assert_ptr_null(cn_embedding(&g, LEAF(&g, w, 4, 2), bad[k], 1, SHAPE(2)));
        ck_assert_int_eq(g.err, CN_ERR_ARG);
        ck_assert_ptr_nonnull(strstr(cn_errmsg(), "embedding"));
        cn_graph_free(&g);
    }
}
END_TEST

START_TEST(embedding_bad_index_shape_fails)
{
    float w[8] = {0};
    int32_t idx[4] = {0, 1, 2, 3};
    struct { int ndim; int shape[4]; } bad[] = {{0, {1}}, {4, {1, 1, 1, 1}}, {1, {0}}, {2, {2, -2}}, {1, {-1}}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        cn_graph g;
        cn_graph_init(&g);
        ck_assert_ptr_null(cn_embedding(&g, LEAF(&g, w, 4, 2), idx, bad[k].ndim, bad[k].shape));
        ck_assert_msg(g.err == CN_ERR_SHAPE, "case %zu: err %d", k, g.err);
        cn_graph_free(&g);
    }
    cn_graph g;
    cn_graph_init(&g);
    ck_assert_ptr_null(cn_embedding(&g, LEAF(&g, w, 4, 2), NULL, 1, SHAPE(2)));
    ck_assert_int_eq(g.err, CN_ERR_ARG);
    cn_graph_free(&g);
}
END_TEST

START_TEST(dropout_bad_p_or_missing_rng_fails)
{
    float a[4] = {1, 2, 3, 4};
    float ps[4] = {-0.1f, 1.0f, NAN, 2.0f};
    for (int k = 0; k < 4; k++) {
        cn_graph g;
        cn_graph_init(&g);
        ck_assert_ptr_null(cn_dropout(&g, LEAF(&g, a, 4), ps[k]));
        ck_assert_int_eq(g.err, CN_ERR_ARG);
        ck_assert_ptr_nonnull(strstr(cn_errmsg(), "dropout"));
        cn_graph_free(&g);
    }
    cn_graph g;
    cn_graph_init(&g);
    g.training = 1;
    g.rng = NULL;
    ck_assert_ptr_null(cn_dropout(&g, LEAF(&g, a, 4), 0.5f));
    ck_assert_int_eq(g.err, CN_ERR_STATE);
    cn_graph_free(&g);
}
END_TEST

START_TEST(param_from_unfinalized_set_fails)
{
    cn_paramset ps;
    cn_paramset_init(&ps);
    ck_assert_ok(cn_paramset_add(&ps, "w", 1, SHAPE(2), NULL));
    cn_graph g;
    cn_graph_init(&g);
    ck_assert_ptr_null(cn_param(&g, &ps, 0));
    ck_assert_int_eq(g.err, CN_ERR_ARG);
    cn_graph_free(&g);
    ck_assert_ok(cn_paramset_finalize(&ps));
    cn_graph_init(&g);
    ck_assert_ptr_null(cn_param(&g, &ps, 1));
    ck_assert_int_eq(g.err, CN_ERR_ARG);
    cn_graph_free(&g);
    cn_paramset_free(&ps);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Tape behaviour */

START_TEST(no_grad_mode_tapes_nothing_and_backward_is_noop)
{
    cn_graph g;
    cn_graph_init(&g);
    g.no_grad = 1;
    float a[3] = {1, 2, 3}, gbuf[3] = {0};
    cn_tensor t;
    ck_assert_ok(cn_tensor_view(&t, a, 1, SHAPE(3)));
    cn_var *x = cn_leaf(&g, &t, gbuf);
    cn_var *l = cn_sum(&g, cn_mul(&g, cn_tanh(&g, x), x));
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(g.n_tape, 0);
    ck_assert(!l->requires_grad);
    ck_assert_ok(cn_backward(&g, l));
    for (int i = 0; i < 3; i++) ck_assert(gbuf[i] == 0.0f);
    ck_assert_near(cn_scalar_value(l), tanh(1) + 2 * tanh(2) + 3 * tanh(3), 1e-5);
    cn_graph_free(&g);
}
END_TEST

START_TEST(nodes_without_grad_inputs_are_not_taped)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
    cn_var *c = IN(&g, a, 3);
    cn_var *t = cn_exp(&g, cn_tanh(&g, c));           /* constants only */
    ck_assert_uint_eq(g.n_tape, 0);
    ck_assert(!t->requires_grad);
    ck_assert_ptr_null(t->grad);
    cn_var *x = LEAF(&g, b, 3);
    cn_var *y = cn_mul(&g, t, x);                      /* mixed: taped */
    ck_assert_uint_eq(g.n_tape, 1);
    ck_assert(y->requires_grad);
    cn_var *l = cn_sum(&g, y);
    ck_assert_uint_eq(g.n_tape, 2);
    ck_assert_ok(cn_backward(&g, l));
    ck_assert_ptr_null(t->grad);                       /* constants got no buffer */
    for (int i = 0; i < 3; i++) ck_assert_near(x->grad[i], t->v.data[i], 0);
    /* a loss that depends on no gradient-requiring value: backward is a no-op */
    ck_assert_ok(cn_backward(&g, cn_sum(&g, c)));
    cn_graph_free(&g);
}
END_TEST

START_TEST(value_used_twice_gets_both_contributions)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[3] = {0.5f, -1, 2};
    cn_var *x = LEAF(&g, a, 3);
    cn_var *t = cn_tanh(&g, x);
    /* l = sum(t + t) + sum(x * x):  dl/dx = 2 (1 - t^2) + 2 x */
    cn_var *l = cn_add(&g, cn_sum(&g, cn_add(&g, t, t)), cn_sum(&g, cn_mul(&g, x, x)));
    ck_assert_ok(cn_backward(&g, l));
    for (int i = 0; i < 3; i++) {
        double th = tanh(a[i]);
        ck_assert_near(x->grad[i], 2 * (1 - th * th) + 2 * a[i], 1e-6);
    }
    cn_graph_free(&g);
}
END_TEST

static cn_var *param_step(cn_graph *g, cn_paramset *ps, float *x)
{
    cn_var *X = IN(g, x, 2, 3);
    cn_var *y = cn_tanh(g, cn_linear(g, X, cn_param(g, ps, 0), cn_param(g, ps, 1)));
    return cn_mean(g, cn_mul(g, y, y));
}

/* A linear layer's parameters (W [4,3], b [4]) and an input x [2,3], fixed random values. */
static void param_fixture(cn_paramset *ps, float x[6])
{
    cn_paramset_init(ps);
    ck_assert_ok(cn_paramset_add(ps, "0.weight", 2, SHAPE(4, 3), NULL));
    ck_assert_ok(cn_paramset_add(ps, "0.bias", 1, SHAPE(4), NULL));
    ck_assert_ok(cn_paramset_finalize(ps));
    tu_fill_uniform(ps->data, ps->total, 11, -1, 1);
    tu_fill_uniform(x, 6, 12, -1, 1);
}

START_TEST(params_accumulate_grad_across_two_backward_passes)
{
    cn_paramset ps;
    float x[6];
    param_fixture(&ps, x);
    cn_graph g;
    cn_graph_init(&g);
    ck_assert_ok(cn_backward(&g, param_step(&g, &ps, x)));
    float *once = malloc(ps.total * sizeof(float));
    memcpy(once, ps.grad, ps.total * sizeof(float));
    double norm = cn_sumsq(once, ps.total);
    ck_assert(norm > 0);
    ck_assert_ok(cn_graph_reset(&g));
    ck_assert_ok(cn_backward(&g, param_step(&g, &ps, x)));
    for (size_t i = 0; i < ps.total; i++) ck_assert_near(ps.grad[i], 2 * once[i], 1e-6);
    cn_paramset_zero_grad(&ps);
    ck_assert_ok(cn_graph_reset(&g));
    ck_assert_ok(cn_backward(&g, param_step(&g, &ps, x)));
    for (size_t i = 0; i < ps.total; i++) ck_assert(ps.grad[i] == once[i]);
    free(once);
    cn_graph_free(&g);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(backward_twice_on_one_graph_adds_the_same_gradient_again)
{
    /* Like retain_graph=True in PyTorch: the second call must not re-propagate
     * the gradients of intermediate nodes left over from the first. */
    cn_paramset ps;
    float x[6];
    param_fixture(&ps, x);
    cn_graph g;
    cn_graph_init(&g);
    cn_var *l = param_step(&g, &ps, x);
    ck_assert_ok(cn_backward(&g, l));
    float *once = malloc(ps.total * sizeof(float));
    memcpy(once, ps.grad, ps.total * sizeof(float));
    ck_assert_ok(cn_backward(&g, l));
    for (size_t i = 0; i < ps.total; i++) ck_assert_near(ps.grad[i], 2 * once[i], 1e-6);
    free(once);
    cn_graph_free(&g);
    cn_paramset_free(&ps);
}
END_TEST

/* A step big enough for several arena chunks (> 1 MiB) and a tape longer than its first size (256). */
static void big_step(cn_graph *g, cn_paramset *ps, float *x)
{
    cn_var *h = IN(g, x, 128, 128);
    for (int i = 0; i < 10; i++) h = cn_tanh(g, cn_linear(g, h, cn_param(g, ps, 0), cn_param(g, ps, 1)));
    cn_var *s = cn_mean(g, h);
    for (int i = 0; i < 300; i++) s = cn_add(g, s, cn_scale(g, s, 1e-4f));
    ck_assert_ok(cn_backward(g, s));
}

START_TEST(graph_reset_then_identical_step_allocates_nothing)
{
    cn_paramset ps;
    cn_paramset_init(&ps);
    ck_assert_ok(cn_paramset_add(&ps, "0.weight", 2, SHAPE(128, 128), NULL));
    ck_assert_ok(cn_paramset_add(&ps, "0.bias", 1, SHAPE(128), NULL));
    ck_assert_ok(cn_paramset_finalize(&ps));
    tu_fill_uniform(ps.data, ps.total, 3, -0.1f, 0.1f);
    float *x = malloc(128 * 128 * sizeof(float));
    tu_fill_uniform(x, 128 * 128, 4, -1, 1);
    cn_graph g;
    cn_graph_init(&g);
    big_step(&g, &ps, x);
    ck_assert_uint_gt(g.n_tape, 256);
    ck_assert_ok(cn_graph_reset(&g));
    size_t cap = cn_arena_capacity(&g.arena);
    ck_assert_uint_gt(cap, 1u << 20);
    uint64_t before = cn_alloc_count();
    big_step(&g, &ps, x);
    ck_assert_uint_eq(cn_alloc_count(), before);
    ck_assert_ok(cn_graph_reset(&g));
    big_step(&g, &ps, x);
    ck_assert_ok(cn_graph_reset(&g));
    ck_assert_uint_eq(cn_alloc_count(), before);
    ck_assert_uint_eq(cn_arena_capacity(&g.arena), cap);
    free(x);
    cn_graph_free(&g);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(views_share_the_input_gradient)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[6] = {1, 2, 3, 4, 5, 6};
    cn_var *x = LEAF(&g, a, 3, 2);
    cn_var *r = cn_reshape(&g, x, 1, SHAPE(6));
    cn_var *s = cn_select(&g, x, 1);
    cn_var *l = cn_add(&g, cn_sum(&g, cn_scale(&g, r, 2.0f)), cn_sum(&g, cn_scale(&g, s, 10.0f)));
    ck_assert_ok(cn_backward(&g, l));
    ASSERT_VALUES(x, 0, 1, 2, 3, 4, 5, 6);
    const float want[6] = {2, 2, 12, 12, 2, 2};
    for (int i = 0; i < 6; i++) ck_assert(x->grad[i] == want[i]);
    ck_assert_ptr_eq(s->grad, x->grad + 2);
    cn_graph_free(&g);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Allocation failure injection */

/* One small training step; returns its status (first error). */
static cn_status tiny_step(cn_paramset *ps, float *x)
{
    cn_graph g;
    cn_status st = cn_graph_init(&g);
    if (st) return st;
    cn_rng rng;
    cn_rng_seed(&rng, 1);
    g.rng = &rng;
    cn_var *X = IN(&g, x, 4, 3);
    cn_var *h = cn_dropout(&g, cn_tanh(&g, cn_linear(&g, X, cn_param(&g, ps, 0), cn_param(&g, ps, 1))), 0.2f);
    static const int32_t lab[4] = {0, 1, 2, 1};
    cn_var *l = cn_cross_entropy(&g, h, lab);
    st = cn_backward(&g, l);
    if (!st) st = cn_graph_status(&g);
    if (!st) st = cn_graph_reset(&g);
    cn_graph_free(&g);
    return st;
}

START_TEST(every_allocation_failure_in_a_step_is_reported_as_nomem)
{
    cn_paramset ps;
    cn_paramset_init(&ps);
    ck_assert_ok(cn_paramset_add(&ps, "0.weight", 2, SHAPE(3, 3), NULL));
    ck_assert_ok(cn_paramset_add(&ps, "0.bias", 1, SHAPE(3), NULL));
    ck_assert_ok(cn_paramset_finalize(&ps));
    tu_fill_uniform(ps.data, ps.total, 3, -1, 1);
    float x[12];
    tu_fill_uniform(x, 12, 4, -1, 1);
    uint64_t c0 = cn_alloc_count();
    ck_assert_ok(tiny_step(&ps, x));
    uint64_t n = cn_alloc_count() - c0;
    ck_assert_uint_gt(n, 0);
    for (uint64_t k = 1; k <= n; k++) {
        cn_alloc_fail_at(k);
        cn_status st = tiny_step(&ps, x);
        cn_alloc_fail_at(0);
        ck_assert_msg(st == CN_ERR_NOMEM, "allocation %llu of %llu failing gave status %d (%s)",
                      (unsigned long long)k, (unsigned long long)n, st, cn_errmsg());
    }
    cn_alloc_fail_at(n + 1);
    cn_status st = tiny_step(&ps, x);
    cn_alloc_fail_at(0);
    ck_assert_ok(st);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(graph_op_with_failing_allocation_returns_nomem)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[3] = {1, 2, 3};
    cn_tensor t;
    ck_assert_ok(cn_tensor_view(&t, a, 1, SHAPE(3)));
    cn_alloc_fail_at(1);       /* the arena's first chunk */
    cn_var *x = cn_input(&g, &t);
    cn_alloc_fail_at(0);
    ck_assert_ptr_null(x);
    ck_assert_int_eq(g.err, CN_ERR_NOMEM);
    ck_assert_ptr_null(cn_tanh(&g, x));
    ck_assert_int_eq(g.err, CN_ERR_NOMEM);
    ck_assert_ok(cn_graph_reset(&g));
    ck_assert_ptr_nonnull(cn_tanh(&g, cn_input(&g, &t)));
    cn_graph_free(&g);
}
END_TEST

START_TEST(gradcheck_with_failing_allocation_returns_nomem)
{
    linear_tanh_data d;
    cn_tensor in[4];
    linear_tanh_inputs(&d, in);
    cn_gradcheck_result r;
    uint64_t c0 = cn_alloc_count();
    ck_assert_ok(cn_gradcheck(f_linear_tanh, NULL, in, 4, NULL, NULL, &r));
    uint64_t n = cn_alloc_count() - c0;
    for (uint64_t k = 1; k <= n; k++) {
        cn_alloc_fail_at(k);
        cn_status st = cn_gradcheck(f_linear_tanh, NULL, in, 4, NULL, NULL, &r);
        cn_alloc_fail_at(0);
        ck_assert_msg(st == CN_ERR_NOMEM, "k=%llu of %llu: status %d", (unsigned long long)k, (unsigned long long)n, st);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* NaN propagation */

START_TEST(relu_of_nan_is_nan)
{
    cn_graph g;
    cn_graph_init(&g);
    float a[3] = {NAN, -1, 1};
    cn_var *x = LEAF(&g, a, 3);
    cn_var *y = cn_relu(&g, x);
    ck_assert(isnan(y->v.data[0]));
    ck_assert(y->v.data[1] == 0.0f && y->v.data[2] == 1.0f);
    /* the gradient passes through a NaN, as in PyTorch (x <= 0 is false) */
    ck_assert_ok(cn_backward(&g, cn_sum(&g, y)));
    ck_assert(x->grad[0] == 1.0f && x->grad[1] == 0.0f && x->grad[2] == 1.0f);
    cn_graph_free(&g);
    cn_graph_init(&g);
    x = IN(&g, a, 3);
    ck_assert(isnan(cn_tanh(&g, x)->v.data[0]));
    ck_assert(isnan(cn_sigmoid(&g, x)->v.data[0]));
    ck_assert(isnan(cn_exp(&g, x)->v.data[0]));
    cn_graph_free(&g);
}
END_TEST

START_TEST(nan_in_loss_input_gives_nan_loss)
{
    cn_graph g;
    cn_graph_init(&g);
    float p[3] = {1, NAN, 2}, t[3] = {0, 0, 0}, y[3] = {0.5f, 1, 0};
    int32_t lab[1] = {0};
    ck_assert(isnan(cn_scalar_value(cn_mse(&g, IN(&g, p, 3), IN(&g, t, 3)))));
    ck_assert(isnan(cn_scalar_value(cn_mse(&g, IN(&g, t, 3), IN(&g, p, 3)))));
    ck_assert(isnan(cn_scalar_value(cn_bce_with_logits(&g, IN(&g, p, 3), IN(&g, y, 3)))));
    ck_assert(isnan(cn_scalar_value(cn_bce_with_logits(&g, IN(&g, y, 3), IN(&g, p, 3)))));
    ck_assert(isnan(cn_scalar_value(cn_cross_entropy(&g, IN(&g, p, 1, 3), lab))));
    float first[3] = {NAN, 1, 2};     /* NaN in the first (max-seed) position */
    ck_assert(isnan(cn_scalar_value(cn_cross_entropy(&g, IN(&g, first, 1, 3), lab))));
    float last[3] = {1, 2, NAN};
    ck_assert(isnan(cn_scalar_value(cn_cross_entropy(&g, IN(&g, last, 1, 3), lab))));
    ck_assert(isnan(cn_scalar_value(cn_sum(&g, IN(&g, p, 3)))));
    ck_assert(isnan(cn_scalar_value(cn_mean(&g, IN(&g, p, 3)))));
    float inf[2] = {INFINITY, 0};
    ck_assert(!isfinite(cn_scalar_value(cn_sum(&g, IN(&g, inf, 2)))));
    ck_assert_int_eq(g.err, CN_OK);
    cn_graph_free(&g);
}
END_TEST

START_TEST(nan_loss_gives_nan_gradients)
{
    cn_graph g;
    cn_graph_init(&g);
    float p[3] = {1, NAN, 2}, t[3] = {0, 0, 0};
    cn_var *P = LEAF(&g, p, 3);
    ck_assert_ok(cn_backward(&g, cn_mse(&g, P, IN(&g, t, 3))));
    ck_assert(isnan(P->grad[1]));
    cn_graph_free(&g);
}
END_TEST

Suite *suite_autograd(void)
{
    Suite *s = suite_create("autograd");
    TCase *tc = tcase_create("gradcheck");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, linear_tanh_gradcheck);
    tcase_add_loop_test(tc, gradcheck_op_case, 0, N_GC_CASES);
    tcase_add_test(tc, gradcheck_cases_cover_every_op);
    tcase_add_test(tc, param_gradcheck_through_paramset);
    tcase_add_test(tc, gradcheck_detects_a_wrong_gradient);
    suite_add_tcase(s, tc);

    tc = tcase_create("forward");
    tcase_add_test(tc, forward_leaf_input_and_zeros);
    tcase_add_test(tc, forward_add_sub_mul_broadcast_modes);
    tcase_add_test(tc, forward_matmul_all_transposes_and_rank3);
    tcase_add_test(tc, forward_linear_with_and_without_bias);
    tcase_add_test(tc, forward_transpose);
    tcase_add_test(tc, forward_unary_values);
    tcase_add_test(tc, forward_sum_mean_accumulate_in_double);
    tcase_add_test(tc, forward_slice_and_concat_cols);
    tcase_add_test(tc, forward_narrow_select_reshape_are_views);
    tcase_add_test(tc, forward_concat0_and_stack);
    tcase_add_test(tc, forward_embedding_picks_rows);
    tcase_add_test(tc, embedding_gradient_accumulates_repeated_indices);
    tcase_add_test(tc, forward_dropout_training_masks_and_scales);
    tcase_add_test(tc, dropout_in_eval_is_identity);
    tcase_add_test(tc, forward_mse);
    tcase_add_test(tc, forward_cross_entropy);
    tcase_add_test(tc, forward_bce_with_logits);
    tcase_add_test(tc, bce_with_logits_large_logits_stay_finite);
    tcase_add_test(tc, forward_lstm_cells);
    tcase_add_test(tc, forward_gru_cell);
    tcase_add_test(tc, recurrent_matches_the_per_step_graph);
    tcase_add_test(tc, recurrent_kernel_choices_match_the_per_step_graph);
    tcase_add_test(tc, recurrent_reruns_are_bit_identical);
    tcase_add_test(tc, elementwise_passes_same_bits_at_any_thread_count);
    tcase_add_test(tc, recurrent_dw_kernel_follows_the_w_hh_size);
    tcase_add_test(tc, recurrent_bias_epilogue_keeps_the_bits);
    tcase_add_test(tc, recurrent_dw_ih_kernel_matches_references);
    tcase_add_test(tc, recurrent_row_kernels_same_bits_at_every_width);
    tcase_add_test(tc, recurrent_rejects_bad_shapes);
    tcase_add_test(tc, vtanh_vsigmoid_max_ulp_error_is_small);
    tcase_add_test(tc, vtanh_vsigmoid_same_bits_at_every_width);
    tcase_add_test(tc, backward_and_colsum_kernels_match_scalar_loops);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, shape_mismatch_names_op_and_shapes);
    tcase_add_loop_test(tc, shape_errors_return_null_and_name_the_op, 0,
                        (int)(sizeof bad_calls / sizeof *bad_calls));
    tcase_add_test(tc, null_input_keeps_the_first_error);
    tcase_add_test(tc, null_input_as_first_error_fails_the_graph);
    tcase_add_test(tc, backward_on_non_scalar_fails);
    tcase_add_test(tc, cross_entropy_label_out_of_range_fails);
    tcase_add_test(tc, embedding_index_out_of_range_fails);
    tcase_add_test(tc, embedding_bad_index_shape_fails);
    tcase_add_test(tc, dropout_bad_p_or_missing_rng_fails);
    tcase_add_test(tc, param_from_unfinalized_set_fails);
    suite_add_tcase(s, tc);

    tc = tcase_create("tape");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, no_grad_mode_tapes_nothing_and_backward_is_noop);
    tcase_add_test(tc, nodes_without_grad_inputs_are_not_taped);
    tcase_add_test(tc, value_used_twice_gets_both_contributions);
    tcase_add_test(tc, params_accumulate_grad_across_two_backward_passes);
    tcase_add_test(tc, backward_twice_on_one_graph_adds_the_same_gradient_again);
    tcase_add_test(tc, graph_reset_then_identical_step_allocates_nothing);
    tcase_add_test(tc, views_share_the_input_gradient);
    tcase_add_test(tc, every_allocation_failure_in_a_step_is_reported_as_nomem);
    tcase_add_test(tc, graph_op_with_failing_allocation_returns_nomem);
    tcase_add_test(tc, gradcheck_with_failing_allocation_returns_nomem);
    suite_add_tcase(s, tc);

    tc = tcase_create("nan");
    tcase_add_test(tc, relu_of_nan_is_nan);
    tcase_add_test(tc, nan_in_loss_input_gives_nan_loss);
    tcase_add_test(tc, nan_loss_gives_nan_gradients);
    suite_add_tcase(s, tc);
    return s;
}
