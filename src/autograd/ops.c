/* The generic ops: each op's constructor (shape rule + forward) next to its backward rule, and the one op
 * table at the end that registers the backward rules by op id (the recurrent ops' rules live in
 * recurrent.c). Backward rules add (+=) into the gradients of inputs that need one. */
#include "autograd/internal.h"
#include "tensor/pool.h"
#include "tensor/vec.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* add, sub, mul with broadcasting of b: iarg[0] = 0 same shape, 1 row, 2 scalar */

static int bcast_mode(const cn_var *a, const cn_var *b)
{
    if (cn_same_shape(&a->v, &b->v)) return 0;
    if (cn__numel(b) == (size_t)cn_cols(&a->v) && b->v.shape[b->v.ndim - 1] == cn_cols(&a->v)) return 1;
    if (cn__numel(b) == 1) return 2;
    return -1;
}

static cn_var *binary(cn_graph *g, int op, cn_var *a, cn_var *b)
{
    if (!a || !b || g->err) return cn__bad_input(g, cn_op_info(op)->name);
    int mode = bcast_mode(a, b);
    if (mode < 0) return cn__shape_error(g, cn_op_info(op)->name, a, b, "b must match a, be a row of a's last dim, or a scalar");
    cn_var *in[2] = {a, b};
    cn_var *y = cn__node(g, op, in, 2, a->v.ndim, a->v.shape, NULL);
    if (!y) return NULL;
    y->iarg[0] = mode;
    size_t n = cn__numel(a), c = (size_t)cn_cols(&a->v);
    const float *x = a->v.data, *z = b->v.data;
    float *o = y->v.data;
    for (size_t i = 0; i < n; i++) {
        float bv = mode == 0 ? z[i] : mode == 1 ? z[i % c] : z[0];
        o[i] = op == CN_OP_ADD ? x[i] + bv : op == CN_OP_SUB ? x[i] - bv : x[i] * bv;
    }
    return y;
}

/* Adds s * dy (reduced to b's broadcast shape) into gb. */
static void reduce_into(float *gb, const float *dy, const float *mult, size_t n, size_t c, int mode, float s)
{
    for (size_t i = 0; i < n; i++) {
        float d = s * (mult ? dy[i] * mult[i] : dy[i]);
        if (mode == 0) gb[i] += d;
        else if (mode == 1) gb[i % c] += d;
        else gb[0] += d;
    }
}

cn_var *cn_add(cn_graph *g, cn_var *a, cn_var *b) { return binary(g, CN_OP_ADD, a, b); }
cn_var *cn_sub(cn_graph *g, cn_var *a, cn_var *b) { return binary(g, CN_OP_SUB, a, b); }
cn_var *cn_mul(cn_graph *g, cn_var *a, cn_var *b) { return binary(g, CN_OP_MUL, a, b); }

static void add_sub_backward(cn_var *y)
{
    cn_var *a = y->in[0], *b = y->in[1];
    size_t n = cn__numel(y), c = (size_t)cn_cols(&a->v);
    if (a->requires_grad) cn_axpy(n, 1.0f, y->grad, a->grad);
    if (b->requires_grad) reduce_into(b->grad, y->grad, NULL, n, c, y->iarg[0], y->op == CN_OP_ADD ? 1.0f : -1.0f);
}

static void mul_backward(cn_var *y)
{
    cn_var *a = y->in[0], *b = y->in[1];
    size_t n = cn__numel(y), c = (size_t)cn_cols(&a->v);
    int mode = y->iarg[0];
    if (a->requires_grad)
        for (size_t i = 0; i < n; i++) {
            float bv = mode == 0 ? b->v.data[i] : mode == 1 ? b->v.data[i % c] : b->v.data[0];
            a->grad[i] += y->grad[i] * bv;
        }
    if (b->requires_grad) reduce_into(b->grad, y->grad, a->v.data, n, c, mode, 1.0f);
}

cn_var *cn_scale(cn_graph *g, cn_var *a, float s)
{
    if (!a || g->err) return cn__bad_input(g, "scale");
    cn_var *y = cn__node(g, CN_OP_SCALE, &a, 1, a->v.ndim, a->v.shape, NULL);
    if (!y) return NULL;
    y->farg[0] = s;
    for (size_t i = 0, n = cn__numel(a); i < n; i++) y->v.data[i] = a->v.data[i] * s;
    return y;
}

static void scale_backward(cn_var *y)
{
    if (y->in[0]->requires_grad) cn_axpy(cn__numel(y), y->farg[0], y->grad, y->in[0]->grad);
}

/* ------------------------------------------------------------------ */
/* matmul: C = op(A) op(B); A seen as [M, K] (or [K, M] when transposed), B 2-D.
 * dA += dC op(B)^T (or op(B) dC^T when A is transposed); dB += op(A)^T dC (or dC^T op(A)). */

cn_var *cn_matmul(cn_graph *g, cn_var *a, cn_var *b, int trans_a, int trans_b)
{
    if (!a || !b || g->err) return cn__bad_input(g, "matmul");
    if (b->v.ndim != 2) return cn__shape_error(g, "matmul", a, b, "b must be 2-D");
    if (trans_a && a->v.ndim != 2) return cn__shape_error(g, "matmul", a, b, "a transposed must be 2-D");
    int ar = (int)cn_rows(&a->v), ac = cn_cols(&a->v);
    int M = trans_a ? ac : ar, K = trans_a ? ar : ac;
    int Kb = trans_b ? b->v.shape[1] : b->v.shape[0], N = trans_b ? b->v.shape[0] : b->v.shape[1];
    if (K != Kb) return cn__shape_error(g, "matmul", a, b, "inner dimensions differ");
    int shape[CN_MAX_DIMS], nd;
    if (trans_a) { nd = 2; shape[0] = M; shape[1] = N; }
    else { nd = a->v.ndim; memcpy(shape, a->v.shape, sizeof shape); shape[nd - 1] = N; }
    cn_var *in[2] = {a, b};
    cn_var *y = cn__node(g, CN_OP_MATMUL, in, 2, nd, shape, NULL);
    if (!y) return NULL;
    y->iarg[0] = trans_a; y->iarg[1] = trans_b; y->iarg[2] = M; y->iarg[3] = N;
    cn_gemm(trans_a, trans_b, M, N, K, 1.0f, a->v.data, ac, b->v.data, b->v.shape[1], 0.0f, y->v.data, N);
    return y;
}

static void matmul_backward(cn_var *y)
{
    cn_var *a = y->in[0], *b = y->in[1];
    int ta = y->iarg[0], tb = y->iarg[1], M = y->iarg[2], N = y->iarg[3];
    int ac = cn_cols(&a->v), bc = b->v.shape[1];
    int K = ta ? (int)cn_rows(&a->v) : ac;
    if (a->requires_grad) {
        if (!ta) /* dA[M,K] += dC[M,N] op(B)^T[N,K] */
            cn_gemm(0, !tb, M, K, N, 1.0f, y->grad, N, b->v.data, bc, 1.0f, a->grad, ac);
        else     /* dA[K,M] += op(B)[K,N] dC^T[N,M] */
            cn_gemm(tb, 1, K, M, N, 1.0f, b->v.data, bc, y->grad, N, 1.0f, a->grad, ac);
    }
    if (b->requires_grad) {
        if (!tb) /* dB[K,N] += op(A)^T[K,M] dC[M,N] */
            cn_gemm(!ta, 0, K, N, M, 1.0f, a->v.data, ac, y->grad, N, 1.0f, b->grad, bc);
        else     /* dB[N,K] += dC^T[N,M] op(A)[M,K] */
            cn_gemm(1, ta, N, K, M, 1.0f, y->grad, N, a->v.data, ac, 1.0f, b->grad, bc);
    }
}

/* The linear layer's bias passes, split over the pool for large outputs (cn_pool_for): the bias copied
 * into rows r0..r1 of y before the product adds to it; the bias gradient, columns c0..c1 of dy summed row
 * by row (each column alone, so any split gives the bits of one pass). */
typedef struct {
    float *dst;
    const float *src;
    int O;
    size_t R;
} linear_job;

static void bias_rows_range(void *p, size_t r0, size_t r1)
{
    const linear_job *j = p;
    for (size_t r = r0; r < r1; r++) memcpy(j->dst + r * (size_t)j->O, j->src, sizeof(float) * (size_t)j->O);
}

static void bias_grad_range(void *p, size_t c0, size_t c1)
{
    const linear_job *j = p;
    cn_vcolsum_ld(j->dst + c0, j->src + c0, j->R, c1 - c0, (size_t)j->O);
}

/* linear: Y[R,O] = X[R,I] W[O,I]^T + b[O].  dX += dY W;  dW += dY^T X;  db += sum over rows of dY. */
cn_var *cn_linear(cn_graph *g, cn_var *x, cn_var *w, cn_var *b)
{
    if (!x || !w || g->err) return cn__bad_input(g, "linear");
    if (w->v.ndim != 2 || w->v.shape[1] != cn_cols(&x->v))
        return cn__shape_error(g, "linear", x, w, "weight must be [out, in] with in = last dim of x");
    int O = w->v.shape[0], I = w->v.shape[1], R = (int)cn_rows(&x->v);
    if (b && cn__numel(b) != (size_t)O) return cn__shape_error(g, "linear", w, b, "bias must have `out` elements");
    int shape[CN_MAX_DIMS];
    memcpy(shape, x->v.shape, sizeof shape);
    shape[x->v.ndim - 1] = O;
    cn_var *in[3] = {x, w, b};
    cn_var *y = cn__node(g, CN_OP_LINEAR, in, b ? 3 : 2, x->v.ndim, shape, NULL);
    if (!y) return NULL;
    float beta = 0.0f;
    if (b) {
        linear_job j = {y->v.data, b->v.data, O, 0};
        cn_pool_for((size_t)R, 16, CN_ELEM_SPLIT_MIN / (size_t)O, bias_rows_range, &j);
        beta = 1.0f;
    }
    cn_gemm_cols(0, 1, R, O, I, 1.0f, x->v.data, I, w->v.data, I, beta, y->v.data, O);
    return y;
}

static void linear_backward(cn_var *y)
{
    cn_var *x = y->in[0], *w = y->in[1], *b = y->n_in > 2 ? y->in[2] : NULL;
    int O = w->v.shape[0], I = w->v.shape[1], R = (int)cn_rows(&x->v);
    if (x->requires_grad) cn_gemm(0, 0, R, I, O, 1.0f, y->grad, O, w->v.data, I, 1.0f, x->grad, I);
    if (w->requires_grad) cn_gemm_rows(1, 0, O, I, R, 1.0f, y->grad, O, x->v.data, I, 1.0f, w->grad, I);
    if (b && b->requires_grad) {   /* rows in order, each column alone: split by columns */
        linear_job j = {b->grad, y->grad, O, (size_t)R};
        if ((size_t)R * (size_t)O >= CN_ELEM_SPLIT_MIN) cn_pool_for((size_t)O, 16, 0, bias_grad_range, &j);
        else bias_grad_range(&j, 0, (size_t)O);
    }
}

cn_var *cn_transpose(cn_graph *g, cn_var *a)
{
    if (!a || g->err) return cn__bad_input(g, "transpose");
    if (a->v.ndim != 2) return cn__shape_error(g, "transpose", a, NULL, "input must be 2-D");
    int R = a->v.shape[0], C = a->v.shape[1], shape[2] = {C, R};
    cn_var *y = cn__node(g, CN_OP_TRANSPOSE, &a, 1, 2, shape, NULL);
    if (!y) return NULL;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) y->v.data[(size_t)c * R + r] = a->v.data[(size_t)r * C + c];
    return y;
}

static void transpose_backward(cn_var *y)
{
    cn_var *a = y->in[0];
    if (!a->requires_grad) return;
    int R = a->v.shape[0], C = a->v.shape[1];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) a->grad[(size_t)r * C + c] += y->grad[(size_t)c * R + r];
}

/* ------------------------------------------------------------------ */
/* Unary elementwise: each op's forward (o = f(x)) beside its backward (dx += dy f'(x), from the saved
 * output o where possible). */

/* tanh: o = tanh x;  dx += dy (1 - o^2) */
static void tanh_fwd(float *o, const float *x, size_t n) { cn_vtanh(o, x, n); }
static void tanh_bwd(float *dx, const float *dy, const float *x, const float *o, size_t n)
{
    cn_vtanh_backward_add(dx, dy, o, n);
}

/* sigmoid: o = 1 / (1 + e^-x);  dx += dy o (1 - o) */
static void sigmoid_fwd(float *o, const float *x, size_t n) { cn_vsigmoid(o, x, n); }
static void sigmoid_bwd(float *dx, const float *dy, const float *x, const float *o, size_t n)
{
    cn_vsigmoid_backward_add(dx, dy, o, n);
}

/* relu keeps NaN: o = x < 0 ? 0 : x (x > 0 is false for NaN, so the test is x < 0);
 * PyTorch's threshold_backward: dx += x <= 0 ? 0 : dy, so a NaN input passes dy (and NaN stays visible) */
static void relu_fwd(float *o, const float *x, size_t n) { cn_vrelu(o, x, n); }
static void relu_bwd(float *dx, const float *dy, const float *x, const float *o, size_t n)
{
    cn_vrelu_backward_into(dx, dy, x, n);
}

/* exp: o = e^x;  dx += dy o */
static void exp_fwd(float *o, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) o[i] = expf(x[i]);
}
static void exp_bwd(float *dx, const float *dy, const float *x, const float *o, size_t n)
{
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * o[i];
}

/* log: o = ln x;  dx += dy / x */
static void log_fwd(float *o, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) o[i] = logf(x[i]);
}
static void log_bwd(float *dx, const float *dy, const float *x, const float *o, size_t n)
{
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] / x[i];
}

typedef struct {
    void (*forward)(float *o, const float *x, size_t n);
    void (*backward)(float *dx, const float *dy, const float *x, const float *o, size_t n);
} unary_rule;

static const unary_rule unary_rules[CN_OP_COUNT] = {
    [CN_OP_TANH] = {tanh_fwd, tanh_bwd},
    [CN_OP_SIGMOID] = {sigmoid_fwd, sigmoid_bwd},
    [CN_OP_RELU] = {relu_fwd, relu_bwd},
    [CN_OP_EXP] = {exp_fwd, exp_bwd},
    [CN_OP_LOG] = {log_fwd, log_bwd},
};

/* A unary op's pass over its elements, split over the pool for large arrays (cn_pool_for): every element
 * gets the same operations wherever its range starts, so the bits do not depend on the thread count. */
typedef struct {
    const unary_rule *rule;
    float *o, *dx;
    const float *x, *dy;
} unary_job;

static void unary_fwd_range(void *p, size_t i0, size_t i1)
{
    const unary_job *j = p;
    j->rule->forward(j->o + i0, j->x + i0, i1 - i0);
}

static void unary_bwd_range(void *p, size_t i0, size_t i1)
{
    const unary_job *j = p;
    j->rule->backward(j->dx + i0, j->dy + i0, j->x + i0, j->o + i0, i1 - i0);
}

static cn_var *unary(cn_graph *g, int op, cn_var *a)
{
    if (!a || g->err) return cn__bad_input(g, cn_op_info(op)->name);
    cn_var *y = cn__node(g, op, &a, 1, a->v.ndim, a->v.shape, NULL);
    if (!y) return NULL;
    unary_job j = {&unary_rules[op], y->v.data, NULL, a->v.data, NULL};
    cn_pool_for(cn__numel(a), 1024, CN_ELEM_SPLIT_MIN, unary_fwd_range, &j);
    return y;
}

cn_var *cn_tanh(cn_graph *g, cn_var *a) { return unary(g, CN_OP_TANH, a); }
cn_var *cn_sigmoid(cn_graph *g, cn_var *a) { return unary(g, CN_OP_SIGMOID, a); }
cn_var *cn_relu(cn_graph *g, cn_var *a) { return unary(g, CN_OP_RELU, a); }
cn_var *cn_exp(cn_graph *g, cn_var *a) { return unary(g, CN_OP_EXP, a); }
cn_var *cn_log(cn_graph *g, cn_var *a) { return unary(g, CN_OP_LOG, a); }

static void unary_backward(cn_var *y)
{
    cn_var *a = y->in[0];
    if (!a->requires_grad) return;
    unary_job j = {&unary_rules[y->op], y->v.data, a->grad, a->v.data, y->grad};
    cn_pool_for(cn__numel(y), 1024, CN_ELEM_SPLIT_MIN, unary_bwd_range, &j);
}

/* ------------------------------------------------------------------ */
/* sum, mean -> [1], accumulated in double */

static cn_var *reduce(cn_graph *g, int op, cn_var *a)
{
    if (!a || g->err) return cn__bad_input(g, cn_op_info(op)->name);
    int one = 1;
    cn_var *y = cn__node(g, op, &a, 1, 1, &one, NULL);
    if (!y) return NULL;
    double s = 0.0;
    size_t n = cn__numel(a);
    for (size_t i = 0; i < n; i++) s += a->v.data[i];
    if (op == CN_OP_MEAN) s /= (double)n;
    y->scalar = s;
    y->v.data[0] = (float)s;
    return y;
}

cn_var *cn_sum(cn_graph *g, cn_var *a) { return reduce(g, CN_OP_SUM, a); }
cn_var *cn_mean(cn_graph *g, cn_var *a) { return reduce(g, CN_OP_MEAN, a); }

static void reduce_backward(cn_var *y)
{
    cn_var *a = y->in[0];
    if (!a->requires_grad) return;
    size_t n = cn__numel(a);
    float d = y->op == CN_OP_MEAN ? (float)((double)y->grad[0] / (double)n) : y->grad[0];
    for (size_t i = 0; i < n; i++) a->grad[i] += d;
}

/* ------------------------------------------------------------------ */
/* Feature-axis slice and concatenation (copies). */

cn_var *cn_slice_cols(cn_graph *g, cn_var *a, int start, int len)
{
    if (!a || g->err) return cn__bad_input(g, "slice_cols");
    int C = cn_cols(&a->v);
    if (start < 0 || len < 1 || start + len > C) return cn__shape_error(g, "slice_cols", a, NULL, "column range out of bounds");
    int shape[CN_MAX_DIMS];
    memcpy(shape, a->v.shape, sizeof shape);
    shape[a->v.ndim - 1] = len;
    cn_var *y = cn__node(g, CN_OP_SLICE_COLS, &a, 1, a->v.ndim, shape, NULL);
    if (!y) return NULL;
    y->iarg[0] = start;
    size_t R = cn_rows(&a->v);
    for (size_t r = 0; r < R; r++)
        memcpy(y->v.data + r * (size_t)len, a->v.data + r * (size_t)C + start, sizeof(float) * (size_t)len);
    return y;
}

static void slice_cols_backward(cn_var *y)
{
    cn_var *a = y->in[0];
    if (!a->requires_grad) return;
    int C = cn_cols(&a->v), len = cn_cols(&y->v), start = y->iarg[0];
    size_t R = cn_rows(&a->v);
    for (size_t r = 0; r < R; r++) cn_axpy((size_t)len, 1.0f, y->grad + r * (size_t)len, a->grad + r * (size_t)C + start);
}

cn_var *cn_concat_cols(cn_graph *g, cn_var **parts, int n)
{
    if (g->err) return NULL;
    if (n < 1) return cn__arg_error(g, CN_ERR_ARG, "concat_cols: no inputs");
    for (int i = 0; i < n; i++) if (!parts[i]) return cn__bad_input(g, "concat_cols");
    size_t R = cn_rows(&parts[0]->v);
    int C = 0;
    for (int i = 0; i < n; i++) {
        int same = parts[i]->v.ndim == parts[0]->v.ndim;
        for (int d = 0; same && d < parts[0]->v.ndim - 1; d++) same = parts[i]->v.shape[d] == parts[0]->v.shape[d];
        if (!same) return cn__shape_error(g, "concat_cols", parts[0], parts[i], "inputs must have the same leading dims");
        C += cn_cols(&parts[i]->v);
    }
    int shape[CN_MAX_DIMS];
    memcpy(shape, parts[0]->v.shape, sizeof shape);
    shape[parts[0]->v.ndim - 1] = C;
    cn_var *y = cn__node(g, CN_OP_CONCAT_COLS, parts, n, parts[0]->v.ndim, shape, NULL);
    if (!y) return NULL;
    for (size_t r = 0; r < R; r++) {
        int off = 0;
        for (int i = 0; i < n; i++) {
            int c = cn_cols(&parts[i]->v);
            memcpy(y->v.data + r * (size_t)C + off, parts[i]->v.data + r * (size_t)c, sizeof(float) * (size_t)c);
            off += c;
        }
    }
    return y;
}

static void concat_cols_backward(cn_var *y)
{
    int C = cn_cols(&y->v), off = 0;
    size_t R = cn_rows(&y->v);
    for (int i = 0; i < y->n_in; i++) {
        cn_var *p = y->in[i];
        int c = cn_cols(&p->v);
        if (p->requires_grad)
            for (size_t r = 0; r < R; r++) cn_axpy((size_t)c, 1.0f, y->grad + r * (size_t)C + off, p->grad + r * (size_t)c);
        off += c;
    }
}

/* ------------------------------------------------------------------ */
/* First-axis views (no copy; their gradient aliases the input's) and concatenation. */

static size_t inner_numel(const cn_var *a) { return cn__numel(a) / (size_t)a->v.shape[0]; }

cn_var *cn_narrow(cn_graph *g, cn_var *a, int start, int len)
{
    if (!a || g->err) return cn__bad_input(g, "narrow");
    if (start < 0 || len < 1 || start + len > a->v.shape[0]) return cn__shape_error(g, "narrow", a, NULL, "range out of bounds on the first axis");
    int shape[CN_MAX_DIMS];
    memcpy(shape, a->v.shape, sizeof shape);
    shape[0] = len;
    return cn__node(g, CN_OP_NARROW, &a, 1, a->v.ndim, shape, a->v.data + (size_t)start * inner_numel(a));
}

cn_var *cn_select(cn_graph *g, cn_var *a, int index)
{
    if (!a || g->err) return cn__bad_input(g, "select");
    if (a->v.ndim < 2) return cn__shape_error(g, "select", a, NULL, "input must have rank >= 2");
    if (index < 0 || index >= a->v.shape[0]) return cn__shape_error(g, "select", a, NULL, "index out of bounds on the first axis");
    return cn__node(g, CN_OP_SELECT, &a, 1, a->v.ndim - 1, a->v.shape + 1, a->v.data + (size_t)index * inner_numel(a));
}

cn_var *cn_reshape(cn_graph *g, cn_var *a, int ndim, const int *shape)
{
    if (!a || g->err) return cn__bad_input(g, "reshape");
    cn_tensor want;   /* validates rank and dims (>= 1) before their product can wrap around */
    char sa[64], sb[64];
    if (cn_tensor_view(&want, NULL, ndim, shape) != CN_OK) {
        cn_error(CN_ERR_SHAPE, "reshape: invalid new shape (rank %d) for shape %s", ndim, cn_shape_str(&a->v, sa, sizeof sa));
        return cn__fail(g, CN_ERR_SHAPE);
    }
    if (cn_numel(&want) != cn__numel(a)) {
        cn_error(CN_ERR_SHAPE, "reshape: new shape has a different number of elements (shapes %s and %s)",
                 cn_shape_str(&a->v, sa, sizeof sa), cn_shape_str(&want, sb, sizeof sb));
        return cn__fail(g, CN_ERR_SHAPE);
    }
    return cn__node(g, CN_OP_RESHAPE, &a, 1, ndim, shape, a->v.data);
}

cn_var *cn_concat0(cn_graph *g, cn_var **parts, int n, int stack)
{
    if (g->err) return NULL;
    if (n < 1) return cn__arg_error(g, CN_ERR_ARG, "concat0: no inputs");
    for (int i = 0; i < n; i++) if (!parts[i]) return cn__bad_input(g, "concat0");
    const cn_var *p0 = parts[0];
    int lead = 0;
    for (int i = 0; i < n; i++) {
        const cn_var *p = parts[i];
        int same = p->v.ndim == p0->v.ndim;
        for (int d = stack ? 0 : 1; same && d < p->v.ndim; d++) same = p->v.shape[d] == p0->v.shape[d];
        if (!same) return cn__shape_error(g, stack ? "stack" : "concat0", parts[0], parts[i], "inputs must agree on all but the first axis");
        lead += stack ? 1 : p->v.shape[0];
    }
    if (stack && p0->v.ndim >= CN_MAX_DIMS) return cn__shape_error(g, "stack", parts[0], NULL, "rank too high to stack");
    int shape[CN_MAX_DIMS], nd = stack ? p0->v.ndim + 1 : p0->v.ndim;
    shape[0] = lead;
    for (int d = 1; d < nd; d++) shape[d] = p0->v.shape[stack ? d - 1 : d];
    cn_var *y = cn__node(g, CN_OP_CONCAT0, parts, n, nd, shape, NULL);
    if (!y) return NULL;
    float *o = y->v.data;
    for (int i = 0; i < n; i++) {
        memcpy(o, parts[i]->v.data, sizeof(float) * cn__numel(parts[i]));
        o += cn__numel(parts[i]);
    }
    return y;
}

static void concat0_backward(cn_var *y)
{
    const float *d = y->grad;
    for (int i = 0; i < y->n_in; i++) {
        cn_var *p = y->in[i];
        if (p->requires_grad) cn_axpy(cn__numel(p), 1.0f, d, p->grad);
        d += cn__numel(p);
    }
}

/* ------------------------------------------------------------------ */
/* embedding: y[i, :] = W[idx[i], :];  dW[idx[i], :] += dy[i, :] */

cn_var *cn_embedding(cn_graph *g, cn_var *w, const int32_t *idx, int idx_ndim, const int *idx_shape)
{
    if (!w || g->err) return cn__bad_input(g, "embedding");
    if (w->v.ndim != 2) return cn__shape_error(g, "embedding", w, NULL, "weight must be [vocab, dim]");
    if (idx_ndim < 1 || idx_ndim >= CN_MAX_DIMS) return cn__arg_error(g, CN_ERR_SHAPE, "embedding: index rank must be 1..3");
    for (int d = 0; d < idx_ndim; d++)   /* before the index loop: a bad dim would make n huge */
        if (idx_shape[d] < 1) return cn__arg_error(g, CN_ERR_SHAPE, "embedding: index dimensions must be >= 1");
    if (!idx) return cn__arg_error(g, CN_ERR_ARG, "embedding: no indices");
    int V = w->v.shape[0], D = w->v.shape[1], shape[CN_MAX_DIMS];
    memcpy(shape, idx_shape, sizeof(int) * (size_t)idx_ndim);
    shape[idx_ndim] = D;
    size_t n = cn_shape_numel(idx_ndim, idx_shape);
    for (size_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= V) {
            cn_error(CN_ERR_ARG, "embedding: index %d at position %zu is outside [0, %d)", (int)idx[i], i, V);
            return cn__fail(g, CN_ERR_ARG);
        }
    cn_var *y = cn__node(g, CN_OP_EMBEDDING, &w, 1, idx_ndim + 1, shape, NULL);
    if (!y) return NULL;
    y->ints = idx;
    for (size_t i = 0; i < n; i++) memcpy(y->v.data + i * (size_t)D, w->v.data + (size_t)idx[i] * D, sizeof(float) * (size_t)D);
    return y;
}

static void embedding_backward(cn_var *y)
{
    cn_var *w = y->in[0];
    if (!w->requires_grad) return;
    const int32_t *idx = y->ints;
    int D = w->v.shape[1];
    size_t n = cn_rows(&y->v);
    for (size_t i = 0; i < n; i++) cn_axpy((size_t)D, 1.0f, y->grad + i * (size_t)D, w->grad + (size_t)idx[i] * D);
}

/* dropout: mask m in {0, 1/(1-p)}, y = x * m */
cn_var *cn_dropout(cn_graph *g, cn_var *a, float p)
{
    if (!a || g->err) return cn__bad_input(g, "dropout");
    if (!(p >= 0.0f && p < 1.0f)) return cn__arg_error(g, CN_ERR_ARG, "dropout: p must be in [0, 1)");
    if (!g->training || p == 0.0f) return a;
    if (!g->rng) return cn__arg_error(g, CN_ERR_STATE, "dropout: the graph has no RNG");
    cn_var *y = cn__node(g, CN_OP_DROPOUT, &a, 1, a->v.ndim, a->v.shape, NULL);
    if (!y) return NULL;
    size_t n = cn__numel(a);
    float *m = cn_arena_floats(&g->arena, n, 0);
    if (!m) return cn__arg_error(g, CN_ERR_NOMEM, "dropout: out of memory for the mask");
    float keep = 1.0f / (1.0f - p);
    if (g->batch_total > 0 && a->v.ndim >= 2) {
        /* a slice of a global batch: activations are [rows, H] with rows = T*b in time-major order
           (t*b + i) or b; the global run draws its mask row by row over [T, B, H]: skip the rows
           before ours in each time step, draw ours, skip the rest */
        size_t H = (size_t)a->v.shape[a->v.ndim - 1], rows = H ? n / H : 0;
        size_t Bg = (size_t)g->batch_total, lo = (size_t)g->batch_lo, b = (size_t)g->batch_n;
        if (b == 0 || rows % b || lo + b > Bg)
            return cn__arg_error(g, CN_ERR_SHAPE, "dropout: activation rows do not match the data-parallel batch slice");
        size_t T = rows / b, i = 0;
        for (size_t t = 0; t < T; t++) {
            for (size_t k = 0; k < lo * H; k++) (void)cn_rng_double(g->rng);
            for (size_t k = 0; k < b * H; k++, i++) {
                m[i] = cn_rng_double(g->rng) < (double)p ? 0.0f : keep;
                y->v.data[i] = a->v.data[i] * m[i];
            }
            for (size_t k = 0; k < (Bg - lo - b) * H; k++) (void)cn_rng_double(g->rng);
        }
        y->aux = m;
        return y;
    }
    for (size_t i = 0; i < n; i++) {
        m[i] = cn_rng_double(g->rng) < (double)p ? 0.0f : keep;
        y->v.data[i] = a->v.data[i] * m[i];
    }
    y->aux = m;
    return y;
}

static void dropout_backward(cn_var *y)
{
    cn_var *a = y->in[0];
    const float *m = y->aux;
    if (a->requires_grad)
        for (size_t i = 0, n = cn__numel(y); i < n; i++) a->grad[i] += y->grad[i] * m[i];
}

/* ------------------------------------------------------------------ */
/* Losses, mean reduction, accumulated in double. */

static cn_var *scalar_node(cn_graph *g, int op, cn_var **in, int n_in)
{
    int one = 1;
    return cn__node(g, op, in, n_in, 1, &one, NULL);
}

/* mse = mean((p - t)^2);  dp = 2 (p - t) / n,  dt = -dp */
cn_var *cn_mse(cn_graph *g, cn_var *pred, cn_var *target)
{
    if (!pred || !target || g->err) return cn__bad_input(g, "mse");
    if (cn__numel(pred) != cn__numel(target)) return cn__shape_error(g, "mse", pred, target, "prediction and target sizes differ");
    cn_var *in[2] = {pred, target};
    cn_var *y = scalar_node(g, CN_OP_MSE, in, 2);
    if (!y) return NULL;
    double s = 0.0;
    size_t n = cn__numel(pred);
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred->v.data[i] - (double)target->v.data[i];
        s += d * d;
    }
    y->scalar = s / (double)n;
    y->v.data[0] = (float)y->scalar;
    return y;
}

static void mse_backward(cn_var *y)
{
    cn_var *p = y->in[0], *t = y->in[1];
    size_t n = cn__numel(p);
    float k = (float)(2.0 * (double)y->grad[0] / (double)n);
    for (size_t i = 0; i < n; i++) {
        float d = k * (p->v.data[i] - t->v.data[i]);
        if (p->requires_grad) p->grad[i] += d;
        if (t->requires_grad) t->grad[i] -= d;
    }
}

/* cross-entropy over rows: loss_r = logsumexp(x_r) - x_r[label_r];
 * dx_r = (softmax(x_r) - onehot(label_r)) / R. Softmax saved in aux. */
cn_var *cn_cross_entropy(cn_graph *g, cn_var *logits, const int32_t *labels)
{
    if (!logits || g->err) return cn__bad_input(g, "cross_entropy");
    if (!labels) return cn__arg_error(g, CN_ERR_ARG, "cross_entropy: no labels");
    size_t R = cn_rows(&logits->v);
    int C = cn_cols(&logits->v);
    for (size_t r = 0; r < R; r++)
        if (labels[r] < 0 || labels[r] >= C) {
            cn_error(CN_ERR_ARG, "cross_entropy: label %d at row %zu is outside [0, %d)", (int)labels[r], r, C);
            return cn__fail(g, CN_ERR_ARG);
        }
    cn_var *y = scalar_node(g, CN_OP_CROSS_ENTROPY, &logits, 1);
    if (!y) return NULL;
    float *prob = cn_arena_floats(&g->arena, cn__numel(logits), 0);
    if (!prob) return cn__arg_error(g, CN_ERR_NOMEM, "cross_entropy: out of memory");
    double total = 0.0;
    for (size_t r = 0; r < R; r++) {
        const float *x = logits->v.data + r * (size_t)C;
        float *pr = prob + r * (size_t)C;
        float mx = x[0];
        for (int c = 1; c < C; c++) if (x[c] > mx || x[c] != x[c]) mx = x[c];
        double se = 0.0;
        for (int c = 0; c < C; c++) se += exp((double)x[c] - (double)mx);
        double lse = (double)mx + log(se);
        for (int c = 0; c < C; c++) pr[c] = (float)exp((double)x[c] - lse);
        total += lse - (double)x[labels[r]];
    }
    y->aux = prob;
    y->ints = labels;
    y->scalar = total / (double)R;
    y->v.data[0] = (float)y->scalar;
    return y;
}

static void cross_entropy_backward(cn_var *y)
{
    cn_var *x = y->in[0];
    if (!x->requires_grad) return;
    const int32_t *labels = y->ints;
    const float *prob = y->aux;
    int C = cn_cols(&x->v);
    size_t R = cn_rows(&x->v);
    float k = (float)((double)y->grad[0] / (double)R);
    for (size_t r = 0; r < R; r++) {
        float *dx = x->grad + r * (size_t)C;
        const float *pr = prob + r * (size_t)C;
        for (int c = 0; c < C; c++) dx[c] += k * (pr[c] - (c == labels[r] ? 1.0f : 0.0f));
    }
}

/* bce_with_logits: l = max(x,0) - x t + log(1 + exp(-|x|));  dx = (sigmoid(x) - t) / n */
cn_var *cn_bce_with_logits(cn_graph *g, cn_var *logits, cn_var *target)
{
    if (!logits || !target || g->err) return cn__bad_input(g, "bce_with_logits");
    if (cn__numel(logits) != cn__numel(target)) return cn__shape_error(g, "bce_with_logits", logits, target, "logit and target sizes differ");
    cn_var *in[2] = {logits, target};
    cn_var *y = scalar_node(g, CN_OP_BCE_LOGITS, in, 2);
    if (!y) return NULL;
    double s = 0.0;
    size_t n = cn__numel(logits);
    for (size_t i = 0; i < n; i++) {
        double x = logits->v.data[i], t = target->v.data[i];
        s += (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x)));
    }
    y->scalar = s / (double)n;
    y->v.data[0] = (float)y->scalar;
    return y;
}

static void bce_backward(cn_var *y)
{
    cn_var *x = y->in[0], *t = y->in[1];
    size_t n = cn__numel(x);
    double k = (double)y->grad[0] / (double)n;
    for (size_t i = 0; i < n; i++) {
        double xv = x->v.data[i];
        double sg = xv >= 0 ? 1.0 / (1.0 + exp(-xv)) : exp(xv) / (1.0 + exp(xv));
        if (x->requires_grad) x->grad[i] += (float)(k * (sg - (double)t->v.data[i]));
        if (t->requires_grad) t->grad[i] += (float)(-k * xv);
    }
}

/* ------------------------------------------------------------------ */

static const cn_op_def op_table[CN_OP_COUNT] = {
    [CN_OP_LEAF]          = {"leaf", NULL},
    [CN_OP_ADD]           = {"add", add_sub_backward},
    [CN_OP_SUB]           = {"sub", add_sub_backward},
    [CN_OP_MUL]           = {"mul", mul_backward},
    [CN_OP_SCALE]         = {"scale", scale_backward},
    [CN_OP_MATMUL]        = {"matmul", matmul_backward},
    [CN_OP_LINEAR]        = {"linear", linear_backward},
    [CN_OP_TRANSPOSE]     = {"transpose", transpose_backward},
    [CN_OP_TANH]          = {"tanh", unary_backward},
    [CN_OP_SIGMOID]       = {"sigmoid", unary_backward},
    [CN_OP_RELU]          = {"relu", unary_backward},
    [CN_OP_EXP]           = {"exp", unary_backward},
    [CN_OP_LOG]           = {"log", unary_backward},
    [CN_OP_SUM]           = {"sum", reduce_backward},
    [CN_OP_MEAN]          = {"mean", reduce_backward},
    [CN_OP_SLICE_COLS]    = {"slice_cols", slice_cols_backward},
    [CN_OP_CONCAT_COLS]   = {"concat_cols", concat_cols_backward},
    [CN_OP_NARROW]        = {"narrow", NULL, 1},
    [CN_OP_SELECT]        = {"select", NULL, 1},
    [CN_OP_RESHAPE]       = {"reshape", NULL, 1},
    [CN_OP_CONCAT0]       = {"concat0", concat0_backward},
    [CN_OP_EMBEDDING]     = {"embedding", embedding_backward},
    [CN_OP_DROPOUT]       = {"dropout", dropout_backward},
    [CN_OP_MSE]           = {"mse", mse_backward},
    [CN_OP_CROSS_ENTROPY] = {"cross_entropy", cross_entropy_backward},
    [CN_OP_BCE_LOGITS]    = {"bce_with_logits", bce_backward},
    [CN_OP_LSTM_CELL_C]   = {"lstm_cell_c", cn__lstm_cell_c_backward},
    [CN_OP_LSTM_CELL_H]   = {"lstm_cell_h", cn__lstm_cell_h_backward},
    [CN_OP_GRU_CELL]      = {"gru_cell", cn__gru_cell_backward},
    [CN_OP_RECURRENT]     = {"recurrent", cn__recurrent_backward},
};

double cn_scalar_value(const cn_var *v)
{
    switch (v->op) {
    case CN_OP_SUM: case CN_OP_MEAN: case CN_OP_MSE: case CN_OP_CROSS_ENTROPY: case CN_OP_BCE_LOGITS:
        return v->scalar;
    default:
        return (double)v->v.data[0];
    }
}

const cn_op_def *cn_op_info(int op)
{
    static const cn_op_def bad = {"?", NULL, 0};
    return op >= 0 && op < CN_OP_COUNT ? &op_table[op] : &bad;
}
