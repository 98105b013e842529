/* Every op: its constructor (shape rule + forward) next to its backward rule.
 * The table at the end registers the backward rules by op id.
 * Backward rules add (+=) into the gradients of inputs that need one. */
#include "autograd/internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define IN_OK(g, x) ((x) != NULL && !(g)->err)

static cn_var *shape_error(cn_graph *g, const char *op, const cn_var *a, const cn_var *b, const char *why)
{
    char sa[64], sb[64];
    cn_error(CN_ERR_SHAPE, "%s: %s (shapes %s and %s)", op, why, cn_shape_str(&a->v, sa, sizeof sa),
             b ? cn_shape_str(&b->v, sb, sizeof sb) : "-");
    return cn__fail(g, CN_ERR_SHAPE);
}

static cn_var *arg_error(cn_graph *g, cn_status st, const char *msg)
{
    cn_error(st, "%s", msg);
    return cn__fail(g, st);
}

static size_t numel(const cn_var *v) { return cn_numel(&v->v); }

/* ------------------------------------------------------------------ */
/* Vectorised tanh and sigmoid (float32, 8 lanes with GCC/Clang vector extensions).
 *
 * glibc's tanhf/expf are scalar calls (~15-20 ns each) and were ~40% of an RNN/LSTM step. These are
 * branch-free and IEEE-only (no FMA: -std=c11 keeps -ffp-contract=off, so every build gives the same
 * bits on every x86-64, with or without the AVX2 clone):
 *   exp(x):  x = k ln2 + r (Cody-Waite, ln2 split in two), |r| <= ln2/2, e^r by Cephes expf's degree-6
 *            polynomial, 2^k built in the exponent bits; valid for |x| <= 88 (callers clamp).
 *   tanh(x): |x| < 0.625: x + x^3 P(x^2), P of degree 5 fitted (least squares, relative error 1.6e-10)
 *            to (tanh x - x)/x^3 on [0, 0.625^2]; else 1 - 2/(e^{2|x|} + 1) with |x| clamped to 10
 *            (where the formula rounds to 1.0f, as tanh does from 9.01); the sign is copied back (tanh(-0) = -0).
 *   sigmoid: 1/(1 + e^{-x}) (the formula of the scalar code it replaces), 0 for x < -88, -x clamped to 88.
 * Max error against tanh/exp in double over a dense grid of [-20, 20]: tanh 1.3 ulp, sigmoid 2.5 ulp
 * (pinned by a test in tests/test_autograd.c). Clamps use comparisons, so NaN propagates. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"   /* 32-byte vectors only in always-inlined helpers */
#endif
typedef float v8f __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define V8F(c) ((v8f){c, c, c, c, c, c, c, c})
#define V8U(c) ((v8u){c, c, c, c, c, c, c, c})
#define VINLINE static inline __attribute__((always_inline))
/* AVX2 clone where the toolchain supports ifunc (same results: no FMA, same operations). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define VCLONES __attribute__((target_clones("avx2", "default")))
#else
#define VCLONES
#endif

VINLINE v8f vsel(v8i m, v8f a, v8f b) { return (v8f)(((v8u)m & (v8u)a) | (~(v8u)m & (v8u)b)); }

VINLINE v8f vexp_core(v8f x)
{
    v8f kf = x * V8F(1.44269504088896341f) + V8F(12582912.0f);   /* 1.5 * 2^23: round to nearest */
    v8u kb = (v8u)kf;                                              /* low bits: 0x4B400000 + k */
    kf -= V8F(12582912.0f);
    v8f r = x - kf * V8F(0.693359375f);
    r = r - kf * V8F(-2.12194440e-4f);
    v8f p = V8F(1.9875691500e-4f);
    p = p * r + V8F(1.3981999507e-3f);
    p = p * r + V8F(8.3334519073e-3f);
    p = p * r + V8F(4.1665795894e-2f);
    p = p * r + V8F(1.6666665459e-1f);
    p = p * r + V8F(5.0000001201e-1f);
    p = p * (r * r) + r + V8F(1.0f);
    v8u e = (kb - V8U(0x4B400000u) + V8U(127u)) << 23;            /* 2^k (0 below 2^-126) */
    return p * (v8f)e;
}

VINLINE v8f vtanh(v8f x)
{
    v8u sign = (v8u)x & V8U(0x80000000u);
    v8f ax = (v8f)((v8u)x & V8U(0x7fffffffu));
    v8f a = vsel(ax > V8F(10.0f), V8F(10.0f), ax);
    v8f e = vexp_core(a + a);
    v8f big = V8F(1.0f) - V8F(2.0f) / (e + V8F(1.0f));
    v8f x2 = ax * ax;
    v8f p = V8F(0.002142784820547161f);
    p = p * x2 + V8F(-0.008177073692043908f);
    p = p * x2 + V8F(0.021700492847008316f);
    p = p * x2 + V8F(-0.05394670184269715f);
    p = p * x2 + V8F(0.1333320521351572f);
    p = p * x2 + V8F(-0.3333333076685044f);
    v8f small = ax + ax * x2 * p;
    return (v8f)((v8u)vsel(ax < V8F(0.625f), small, big) | sign);
}

VINLINE v8f vsigmoid(v8f x)
{
    v8f m = -x;
    v8i under = m > V8F(88.0f);   /* 1/(1 + e^{>88}) < 6e-39: 0, as 1/(1 + expf(-x)) once expf overflows */
    m = vsel(under, V8F(88.0f), m);
    m = vsel(m < V8F(-88.0f), V8F(-88.0f), m);
    return vsel(under, V8F(0.0f), V8F(1.0f) / (V8F(1.0f) + vexp_core(m)));
}

/* o[i] = f(x[i]); o may equal x. The tail goes through one zero-padded vector. */
#define VMAP(name, f)                                                              \
    VCLONES void name(float *o, const float *x, size_t n)                          \
    {                                                                              \
        size_t i = 0;                                                              \
        for (; i + 8 <= n; i += 8) {                                               \
            v8f v;                                                                 \
            memcpy(&v, x + i, sizeof v);                                           \
            v = f(v);                                                              \
            memcpy(o + i, &v, sizeof v);                                           \
        }                                                                          \
        if (i < n) {                                                               \
            v8f v = V8F(0.0f);                                                     \
            memcpy(&v, x + i, sizeof(float) * (n - i));                            \
            v = f(v);                                                              \
            memcpy(o + i, &v, sizeof(float) * (n - i));                            \
        }                                                                          \
    }
VMAP(cn_vtanh, vtanh)
VMAP(cn_vsigmoid, vsigmoid)

/* Explicitly vectorised loops for the recurrent ops (GCC's -O2 does not vectorise loops of unknown trip
 * count). Each has a scalar tail with the same operations in the same order, so results do not depend on
 * where the vector part ends. */
VINLINE v8f vld(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
VINLINE void vst(float *p, v8f v) { memcpy(p, &v, sizeof v); }

/* y[i] += x[i] */
static VCLONES void vadd_into(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vst(y + i, vld(y + i) + vld(x + i));
    for (; i < n; i++) y[i] += x[i];
}

/* db[o] += sum over rows r of d[r, o] (rows in order), d [R, C] */
static VCLONES void colsum_into(float *db, const float *d, size_t R, size_t C)
{
    for (size_t r = 0; r < R; r++) {
        const float *row = d + r * C;
        size_t i = 0;
        for (; i + 8 <= C; i += 8) vst(db + i, vld(db + i) + vld(row + i));
        for (; i < C; i++) db[i] += row[i];
    }
}

/* LSTM forward for one row: a = s(i), s(f), tanh(g), s(o) [4H]; c' = s(f) c + s(i) tanh(g) */
static VCLONES void lstm_c_row(const float *a, const float *cp, float *cn, int H)
{
    int h = 0;
    for (; h + 8 <= H; h += 8) vst(cn + h, vld(a + H + h) * vld(cp + h) + vld(a + h) * vld(a + 2 * H + h));
    for (; h < H; h++) cn[h] = a[H + h] * cp[h] + a[h] * a[2 * H + h];
}

/* y[i] = a[i] * b[i] */
static VCLONES void vmul(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vst(y + i, vld(a + i) * vld(b + i));
    for (; i < n; i++) y[i] = a[i] * b[i];
}

/* LSTM backward for one row (a as above, tc = tanh(c'), cp = c, dh = dL/dh', dc in: carried dL/dc' from
 * the next step, out: dL/dc to carry back (0 when `carry` is 0)); writes d pre [4H]:
 *   dc' = dc + dh s(o) (1 - tc^2);  d o = dh tc s(o)(1 - s(o));  d i = dc' tanh(g) s(i)(1 - s(i));
 *   d f = dc' c s(f)(1 - s(f));  d g = dc' s(i)(1 - tanh(g)^2);  dc <- dc' s(f) */
static VCLONES void lstm_bwd_row(const float *a, const float *tc, const float *cp, const float *dh, float *dc,
                                 float *dg, int H, int carry)
{
    int h = 0;
    v8f one = V8F(1.0f);
    for (; h + 8 <= H; h += 8) {
        v8f i = vld(a + h), f = vld(a + H + h), gg = vld(a + 2 * H + h), o = vld(a + 3 * H + h);
        v8f t = vld(tc + h), d = vld(dh + h);
        v8f dcv = vld(dc + h) + d * o * (one - t * t);
        vst(dg + 3 * H + h, d * t * o * (one - o));
        vst(dg + h, dcv * gg * i * (one - i));
        vst(dg + H + h, dcv * vld(cp + h) * f * (one - f));
        vst(dg + 2 * H + h, dcv * i * (one - gg * gg));
        vst(dc + h, carry ? dcv * f : V8F(0.0f));
    }
    for (; h < H; h++) {
        float i = a[h], f = a[H + h], gg = a[2 * H + h], o = a[3 * H + h];
        float dcv = dc[h] + dh[h] * o * (1.0f - tc[h] * tc[h]);
        dg[3 * H + h] = dh[h] * tc[h] * o * (1.0f - o);
        dg[h] = dcv * gg * i * (1.0f - i);
        dg[H + h] = dcv * cp[h] * f * (1.0f - f);
        dg[2 * H + h] = dcv * i * (1.0f - gg * gg);
        dc[h] = carry ? dcv * f : 0.0f;
    }
}

/* relu keeping NaN: y = x < 0 ? 0 : x;  backward (PyTorch threshold_backward): dx += x <= 0 ? 0 : dy */
static VCLONES void relu_fwd(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v = vld(x + i);
        vst(y + i, vsel(v < V8F(0.0f), V8F(0.0f), v));
    }
    for (; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static VCLONES void relu_bwd(float *dx, const float *dy, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vst(dx + i, vld(dx + i) + vsel(vld(x + i) <= V8F(0.0f), V8F(0.0f), vld(dy + i)));
    for (; i < n; i++) dx[i] += x[i] <= 0.0f ? 0.0f : dy[i];
}

/* tanh backward from the output: d[i] = dy[i] (1 - y[i]^2) */
static VCLONES void tanh_bwd(float *d, const float *dy, const float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v = vld(y + i);
        vst(d + i, vld(dy + i) * (V8F(1.0f) - v * v));
    }
    for (; i < n; i++) d[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* ------------------------------------------------------------------ */
/* add, sub, mul with broadcasting of b: iarg[0] = 0 same shape, 1 row, 2 scalar */

static int bcast_mode(const cn_var *a, const cn_var *b)
{
    if (cn_same_shape(&a->v, &b->v)) return 0;
    if (numel(b) == (size_t)cn_cols(&a->v) && b->v.shape[b->v.ndim - 1] == cn_cols(&a->v)) return 1;
    if (numel(b) == 1) return 2;
    return -1;
}

static cn_var *binary(cn_graph *g, int op, cn_var *a, cn_var *b)
{
    if (!IN_OK(g, a) || !IN_OK(g, b)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    int mode = bcast_mode(a, b);
    if (mode < 0) return shape_error(g, cn_op_info(op)->name, a, b, "b must match a, be a row of a's last dim, or a scalar");
    cn_var *in[2] = {a, b};
    cn_var *y = cn__node(g, op, in, 2, a->v.ndim, a->v.shape, NULL);
    if (!y) return NULL;
    y->iarg[0] = mode;
    size_t n = numel(a), c = (size_t)cn_cols(&a->v);
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
    size_t n = numel(y), c = (size_t)cn_cols(&a->v);
    if (a->requires_grad) cn_axpy(n, 1.0f, y->grad, a->grad);
    if (b->requires_grad) reduce_into(b->grad, y->grad, NULL, n, c, y->iarg[0], y->op == CN_OP_ADD ? 1.0f : -1.0f);
}

static void mul_backward(cn_var *y)
{
    cn_var *a = y->in[0], *b = y->in[1];
    size_t n = numel(y), c = (size_t)cn_cols(&a->v);
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
    if (!IN_OK(g, a)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    cn_var *y = cn__node(g, CN_OP_SCALE, &a, 1, a->v.ndim, a->v.shape, NULL);
    if (!y) return NULL;
    y->farg[0] = s;
    for (size_t i = 0, n = numel(a); i < n; i++) y->v.data[i] = a->v.data[i] * s;
    return y;
}

static void scale_backward(cn_var *y)
{
    if (y->in[0]->requires_grad) cn_axpy(numel(y), y->farg[0], y->grad, y->in[0]->grad);
}

/* ------------------------------------------------------------------ */
/* matmul: C = op(A) op(B); A seen as [M, K] (or [K, M] when transposed), B 2-D.
 * dA += dC op(B)^T (or op(B) dC^T when A is transposed); dB += op(A)^T dC (or dC^T op(A)). */

cn_var *cn_matmul(cn_graph *g, cn_var *a, cn_var *b, int trans_a, int trans_b)
{
    if (!IN_OK(g, a) || !IN_OK(g, b)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (b->v.ndim != 2) return shape_error(g, "matmul", a, b, "b must be 2-D");
    if (trans_a && a->v.ndim != 2) return shape_error(g, "matmul", a, b, "a transposed must be 2-D");
    int ar = (int)cn_rows(&a->v), ac = cn_cols(&a->v);
    int M = trans_a ? ac : ar, K = trans_a ? ar : ac;
    int Kb = trans_b ? b->v.shape[1] : b->v.shape[0], N = trans_b ? b->v.shape[0] : b->v.shape[1];
    if (K != Kb) return shape_error(g, "matmul", a, b, "inner dimensions differ");
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

/* linear: Y[R,O] = X[R,I] W[O,I]^T + b[O].  dX += dY W;  dW += dY^T X;  db += sum over rows of dY. */
cn_var *cn_linear(cn_graph *g, cn_var *x, cn_var *w, cn_var *b)
{
    if (!IN_OK(g, x) || !IN_OK(g, w) || (b && g->err)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (w->v.ndim != 2 || w->v.shape[1] != cn_cols(&x->v))
        return shape_error(g, "linear", x, w, "weight must be [out, in] with in = last dim of x");
    int O = w->v.shape[0], I = w->v.shape[1], R = (int)cn_rows(&x->v);
    if (b && numel(b) != (size_t)O) return shape_error(g, "linear", w, b, "bias must have `out` elements");
    int shape[CN_MAX_DIMS];
    memcpy(shape, x->v.shape, sizeof shape);
    shape[x->v.ndim - 1] = O;
    cn_var *in[3] = {x, w, b};
    cn_var *y = cn__node(g, CN_OP_LINEAR, in, b ? 3 : 2, x->v.ndim, shape, NULL);
    if (!y) return NULL;
    float beta = 0.0f;
    if (b) {
        for (int r = 0; r < R; r++) memcpy(y->v.data + (size_t)r * O, b->v.data, sizeof(float) * (size_t)O);
        beta = 1.0f;
    }
    cn_gemm(0, 1, R, O, I, 1.0f, x->v.data, I, w->v.data, I, beta, y->v.data, O);
    return y;
}

static void linear_backward(cn_var *y)
{
    cn_var *x = y->in[0], *w = y->in[1], *b = y->n_in > 2 ? y->in[2] : NULL;
    int O = w->v.shape[0], I = w->v.shape[1], R = (int)cn_rows(&x->v);
    if (x->requires_grad) cn_gemm(0, 0, R, I, O, 1.0f, y->grad, O, w->v.data, I, 1.0f, x->grad, I);
    if (w->requires_grad) cn_gemm(1, 0, O, I, R, 1.0f, y->grad, O, x->v.data, I, 1.0f, w->grad, I);
    if (b && b->requires_grad) colsum_into(b->grad, y->grad, (size_t)R, (size_t)O);   /* rows in order */
}

cn_var *cn_transpose(cn_graph *g, cn_var *a)
{
    if (!IN_OK(g, a)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (a->v.ndim != 2) return shape_error(g, "transpose", a, NULL, "input must be 2-D");
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
/* Unary elementwise. Backward rules use the saved output where possible. */

static cn_var *unary(cn_graph *g, int op, cn_var *a)
{
    if (!IN_OK(g, a)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    cn_var *y = cn__node(g, op, &a, 1, a->v.ndim, a->v.shape, NULL);
    if (!y) return NULL;
    const float *x = a->v.data;
    float *o = y->v.data;
    size_t n = numel(a);
    switch (op) {
    case CN_OP_TANH:    cn_vtanh(o, x, n); break;
    case CN_OP_SIGMOID: cn_vsigmoid(o, x, n); break;
    /* relu keeps NaN (x > 0 is false for NaN, so test x < 0 instead) */
    case CN_OP_RELU:    relu_fwd(o, x, n); break;
    case CN_OP_EXP:     for (size_t i = 0; i < n; i++) o[i] = expf(x[i]); break;
    case CN_OP_LOG:     for (size_t i = 0; i < n; i++) o[i] = logf(x[i]); break;
    }
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
    const float *o = y->v.data, *dy = y->grad, *x = a->v.data;
    float *dx = a->grad;
    size_t n = numel(y);
    switch (y->op) {
    case CN_OP_TANH:    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - o[i] * o[i]); break;
    case CN_OP_SIGMOID: for (size_t i = 0; i < n; i++) dx[i] += dy[i] * o[i] * (1.0f - o[i]); break;
    /* PyTorch's threshold_backward: zero where x <= 0, so a NaN input passes dy (and NaN stays visible) */
    case CN_OP_RELU:    relu_bwd(dx, dy, x, n); break;
    case CN_OP_EXP:     for (size_t i = 0; i < n; i++) dx[i] += dy[i] * o[i]; break;
    case CN_OP_LOG:     for (size_t i = 0; i < n; i++) dx[i] += dy[i] / x[i]; break;
    }
}

/* ------------------------------------------------------------------ */
/* sum, mean -> [1], accumulated in double */

static cn_var *reduce(cn_graph *g, int op, cn_var *a)
{
    if (!IN_OK(g, a)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    int one = 1;
    cn_var *y = cn__node(g, op, &a, 1, 1, &one, NULL);
    if (!y) return NULL;
    double s = 0.0;
    size_t n = numel(a);
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
    size_t n = numel(a);
    float d = y->op == CN_OP_MEAN ? (float)((double)y->grad[0] / (double)n) : y->grad[0];
    for (size_t i = 0; i < n; i++) a->grad[i] += d;
}

/* ------------------------------------------------------------------ */
/* Feature-axis slice and concatenation (copies). */

cn_var *cn_slice_cols(cn_graph *g, cn_var *a, int start, int len)
{
    if (!IN_OK(g, a)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    int C = cn_cols(&a->v);
    if (start < 0 || len < 1 || start + len > C) return shape_error(g, "slice_cols", a, NULL, "column range out of bounds");
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
    if (n < 1) return arg_error(g, CN_ERR_ARG, "concat_cols: no inputs");
    for (int i = 0; i < n; i++) if (!parts[i]) return cn__fail(g, CN_ERR_ARG);
    size_t R = cn_rows(&parts[0]->v);
    int C = 0;
    for (int i = 0; i < n; i++) {
        int same = parts[i]->v.ndim == parts[0]->v.ndim;
        for (int d = 0; same && d < parts[0]->v.ndim - 1; d++) same = parts[i]->v.shape[d] == parts[0]->v.shape[d];
        if (!same) return shape_error(g, "concat_cols", parts[0], parts[i], "inputs must have the same leading dims");
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

static size_t inner_numel(const cn_var *a) { return numel(a) / (size_t)a->v.shape[0]; }

cn_var *cn_narrow(cn_graph *g, cn_var *a, int start, int len)
{
    if (!IN_OK(g, a)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (start < 0 || len < 1 || start + len > a->v.shape[0]) return shape_error(g, "narrow", a, NULL, "range out of bounds on the first axis");
    int shape[CN_MAX_DIMS];
    memcpy(shape, a->v.shape, sizeof shape);
    shape[0] = len;
    return cn__node(g, CN_OP_NARROW, &a, 1, a->v.ndim, shape, a->v.data + (size_t)start * inner_numel(a));
}

cn_var *cn_select(cn_graph *g, cn_var *a, int index)
{
    if (!IN_OK(g, a)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (a->v.ndim < 2) return shape_error(g, "select", a, NULL, "input must have rank >= 2");
    if (index < 0 || index >= a->v.shape[0]) return shape_error(g, "select", a, NULL, "index out of bounds on the first axis");
    return cn__node(g, CN_OP_SELECT, &a, 1, a->v.ndim - 1, a->v.shape + 1, a->v.data + (size_t)index * inner_numel(a));
}

cn_var *cn_reshape(cn_graph *g, cn_var *a, int ndim, const int *shape)
{
    if (!IN_OK(g, a)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    cn_tensor want;   /* validates rank and dims (>= 1) before their product can wrap around */
    char sa[64], sb[64];
    if (cn_tensor_view(&want, NULL, ndim, shape) != CN_OK) {
        cn_error(CN_ERR_SHAPE, "reshape: invalid new shape (rank %d) for shape %s", ndim, cn_shape_str(&a->v, sa, sizeof sa));
        return cn__fail(g, CN_ERR_SHAPE);
    }
    if (cn_numel(&want) != numel(a)) {
        cn_error(CN_ERR_SHAPE, "reshape: new shape has a different number of elements (shapes %s and %s)",
                 cn_shape_str(&a->v, sa, sizeof sa), cn_shape_str(&want, sb, sizeof sb));
        return cn__fail(g, CN_ERR_SHAPE);
    }
    return cn__node(g, CN_OP_RESHAPE, &a, 1, ndim, shape, a->v.data);
}

cn_var *cn_concat0(cn_graph *g, cn_var **parts, int n, int stack)
{
    if (g->err) return NULL;
    if (n < 1) return arg_error(g, CN_ERR_ARG, "concat0: no inputs");
    for (int i = 0; i < n; i++) if (!parts[i]) return cn__fail(g, CN_ERR_ARG);
    const cn_var *p0 = parts[0];
    int lead = 0;
    for (int i = 0; i < n; i++) {
        const cn_var *p = parts[i];
        int same = p->v.ndim == p0->v.ndim;
        for (int d = stack ? 0 : 1; same && d < p->v.ndim; d++) same = p->v.shape[d] == p0->v.shape[d];
        if (!same) return shape_error(g, stack ? "stack" : "concat0", parts[0], parts[i], "inputs must agree on all but the first axis");
        lead += stack ? 1 : p->v.shape[0];
    }
    if (stack && p0->v.ndim >= CN_MAX_DIMS) return shape_error(g, "stack", parts[0], NULL, "rank too high to stack");
    int shape[CN_MAX_DIMS], nd = stack ? p0->v.ndim + 1 : p0->v.ndim;
    shape[0] = lead;
    for (int d = 1; d < nd; d++) shape[d] = p0->v.shape[stack ? d - 1 : d];
    cn_var *y = cn__node(g, CN_OP_CONCAT0, parts, n, nd, shape, NULL);
    if (!y) return NULL;
    float *o = y->v.data;
    for (int i = 0; i < n; i++) {
        memcpy(o, parts[i]->v.data, sizeof(float) * numel(parts[i]));
        o += numel(parts[i]);
    }
    return y;
}

static void concat0_backward(cn_var *y)
{
    const float *d = y->grad;
    for (int i = 0; i < y->n_in; i++) {
        cn_var *p = y->in[i];
        if (p->requires_grad) cn_axpy(numel(p), 1.0f, d, p->grad);
        d += numel(p);
    }
}

/* ------------------------------------------------------------------ */
/* embedding: y[i, :] = W[idx[i], :];  dW[idx[i], :] += dy[i, :] */

cn_var *cn_embedding(cn_graph *g, cn_var *w, const int32_t *idx, int idx_ndim, const int *idx_shape)
{
    if (!IN_OK(g, w)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (w->v.ndim != 2) return shape_error(g, "embedding", w, NULL, "weight must be [vocab, dim]");
    if (idx_ndim < 1 || idx_ndim >= CN_MAX_DIMS) return arg_error(g, CN_ERR_SHAPE, "embedding: index rank must be 1..3");
    for (int d = 0; d < idx_ndim; d++)   /* before the index loop: a bad dim would make n huge */
        if (idx_shape[d] < 1) return arg_error(g, CN_ERR_SHAPE, "embedding: index dimensions must be >= 1");
    if (!idx) return arg_error(g, CN_ERR_ARG, "embedding: no indices");
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
    if (!IN_OK(g, a)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (!(p >= 0.0f && p < 1.0f)) return arg_error(g, CN_ERR_ARG, "dropout: p must be in [0, 1)");
    if (!g->training || p == 0.0f) return a;
    if (!g->rng) return arg_error(g, CN_ERR_STATE, "dropout: the graph has no RNG");
    cn_var *y = cn__node(g, CN_OP_DROPOUT, &a, 1, a->v.ndim, a->v.shape, NULL);
    if (!y) return NULL;
    size_t n = numel(a);
    float *m = cn_arena_floats(&g->arena, n, 0);
    if (!m) return arg_error(g, CN_ERR_NOMEM, "dropout: out of memory for the mask");
    float keep = 1.0f / (1.0f - p);
    if (g->batch_total > 0 && a->v.ndim >= 2) {
        /* a slice of a global batch: activations are [rows, H] with rows = T*b in time-major order
           (t*b + i) or b; the global run draws its mask row by row over [T, B, H]: skip the rows
           before ours in each time step, draw ours, skip the rest */
        size_t H = (size_t)a->v.shape[a->v.ndim - 1], rows = H ? n / H : 0;
        size_t Bg = (size_t)g->batch_total, lo = (size_t)g->batch_lo, b = (size_t)g->batch_n;
        if (b == 0 || rows % b || lo + b > Bg)
            return arg_error(g, CN_ERR_SHAPE, "dropout: activation rows do not match the data-parallel batch slice");
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
        for (size_t i = 0, n = numel(y); i < n; i++) a->grad[i] += y->grad[i] * m[i];
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
    if (!IN_OK(g, pred) || !IN_OK(g, target)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (numel(pred) != numel(target)) return shape_error(g, "mse", pred, target, "prediction and target sizes differ");
    cn_var *in[2] = {pred, target};
    cn_var *y = scalar_node(g, CN_OP_MSE, in, 2);
    if (!y) return NULL;
    double s = 0.0;
    size_t n = numel(pred);
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
    size_t n = numel(p);
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
    if (!IN_OK(g, logits)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (!labels) return arg_error(g, CN_ERR_ARG, "cross_entropy: no labels");
    size_t R = cn_rows(&logits->v);
    int C = cn_cols(&logits->v);
    for (size_t r = 0; r < R; r++)
        if (labels[r] < 0 || labels[r] >= C) {
            cn_error(CN_ERR_ARG, "cross_entropy: label %d at row %zu is outside [0, %d)", (int)labels[r], r, C);
            return cn__fail(g, CN_ERR_ARG);
        }
    cn_var *y = scalar_node(g, CN_OP_CROSS_ENTROPY, &logits, 1);
    if (!y) return NULL;
    float *prob = cn_arena_floats(&g->arena, numel(logits), 0);
    if (!prob) return arg_error(g, CN_ERR_NOMEM, "cross_entropy: out of memory");
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
    if (!IN_OK(g, logits) || !IN_OK(g, target)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (numel(logits) != numel(target)) return shape_error(g, "bce_with_logits", logits, target, "logit and target sizes differ");
    cn_var *in[2] = {logits, target};
    cn_var *y = scalar_node(g, CN_OP_BCE_LOGITS, in, 2);
    if (!y) return NULL;
    double s = 0.0;
    size_t n = numel(logits);
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
    size_t n = numel(x);
    double k = (double)y->grad[0] / (double)n;
    for (size_t i = 0; i < n; i++) {
        double xv = x->v.data[i];
        double sg = xv >= 0 ? 1.0 / (1.0 + exp(-xv)) : exp(xv) / (1.0 + exp(xv));
        if (x->requires_grad) x->grad[i] += (float)(k * (sg - (double)t->v.data[i]));
        if (t->requires_grad) t->grad[i] += (float)(-k * xv);
    }
}

/* ------------------------------------------------------------------ */
/* Fused recurrent cells. The activations are computed with the vector kernels, row by row, and saved in
 * aux so that backward needs no transcendental function. */

/* c' = s(f) c + s(i) tanh(g); aux [B, 4H] = s(i), s(f), tanh(g), s(o) */
cn_var *cn_lstm_cell_c(cn_graph *g, cn_var *gates, cn_var *c)
{
    if (!IN_OK(g, gates) || !IN_OK(g, c)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    int H = cn_cols(&c->v);
    size_t B = cn_rows(&c->v);
    if (cn_cols(&gates->v) != 4 * H || cn_rows(&gates->v) != B) return shape_error(g, "lstm_cell_c", gates, c, "gates must be [B, 4H] for c [B, H]");
    cn_var *in[2] = {gates, c};
    cn_var *y = cn__node(g, CN_OP_LSTM_CELL_C, in, 2, c->v.ndim, c->v.shape, NULL);
    if (!y) return NULL;
    float *act = cn_arena_floats(&g->arena, 4 * B * (size_t)H, 0);
    if (!act) return arg_error(g, CN_ERR_NOMEM, "lstm_cell_c: out of memory");
    y->aux = act;
    for (size_t b = 0; b < B; b++) {
        const float *gt = gates->v.data + b * 4 * (size_t)H, *cp = c->v.data + b * (size_t)H;
        float *a = act + b * 4 * (size_t)H, *cn = y->v.data + b * (size_t)H;
        cn_vsigmoid(a, gt, 2 * (size_t)H);
        cn_vtanh(a + 2 * H, gt + 2 * H, (size_t)H);
        cn_vsigmoid(a + 3 * H, gt + 3 * H, (size_t)H);
        for (int h = 0; h < H; h++) cn[h] = a[H + h] * cp[h] + a[h] * a[2 * H + h];
    }
    return y;
}

static void lstm_c_backward(cn_var *y)
{
    cn_var *gates = y->in[0], *c = y->in[1];
    int H = cn_cols(&c->v);
    size_t B = cn_rows(&c->v);
    const float *act = y->aux;
    for (size_t b = 0; b < B; b++) {
        const float *a = act + b * 4 * (size_t)H, *cp = c->v.data + b * (size_t)H;
        const float *dc = y->grad + b * (size_t)H;
        if (gates->requires_grad) {
            float *dg = gates->grad + b * 4 * (size_t)H;
            for (int h = 0; h < H; h++) {
                float i = a[h], f = a[H + h], gg = a[2 * H + h];
                dg[h] += dc[h] * gg * i * (1.0f - i);
                dg[H + h] += dc[h] * cp[h] * f * (1.0f - f);
                dg[2 * H + h] += dc[h] * i * (1.0f - gg * gg);
            }
        }
        if (c->requires_grad)
            for (int h = 0; h < H; h++) c->grad[b * (size_t)H + h] += dc[h] * a[H + h];
    }
}

/* h' = s(o) tanh(c'); aux [B, 2H] = s(o), tanh(c') */
cn_var *cn_lstm_cell_h(cn_graph *g, cn_var *gates, cn_var *c_new)
{
    if (!IN_OK(g, gates) || !IN_OK(g, c_new)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    int H = cn_cols(&c_new->v);
    size_t B = cn_rows(&c_new->v);
    if (cn_cols(&gates->v) != 4 * H || cn_rows(&gates->v) != B) return shape_error(g, "lstm_cell_h", gates, c_new, "gates must be [B, 4H] for c [B, H]");
    cn_var *in[2] = {gates, c_new};
    cn_var *y = cn__node(g, CN_OP_LSTM_CELL_H, in, 2, c_new->v.ndim, c_new->v.shape, NULL);
    if (!y) return NULL;
    float *save = cn_arena_floats(&g->arena, 2 * B * (size_t)H, 0);
    if (!save) return arg_error(g, CN_ERR_NOMEM, "lstm_cell_h: out of memory");
    y->aux = save;
    for (size_t b = 0; b < B; b++) {
        float *o = save + b * 2 * (size_t)H, *tc = o + H, *hn = y->v.data + b * (size_t)H;
        cn_vsigmoid(o, gates->v.data + b * 4 * (size_t)H + 3 * (size_t)H, (size_t)H);
        cn_vtanh(tc, c_new->v.data + b * (size_t)H, (size_t)H);
        for (int h = 0; h < H; h++) hn[h] = o[h] * tc[h];
    }
    return y;
}

static void lstm_h_backward(cn_var *y)
{
    cn_var *gates = y->in[0], *c = y->in[1];
    int H = cn_cols(&c->v);
    size_t B = cn_rows(&c->v);
    const float *save = y->aux;
    for (size_t b = 0; b < B; b++) {
        const float *o = save + b * 2 * (size_t)H, *tc = o + H, *dh = y->grad + b * (size_t)H;
        for (int h = 0; h < H; h++) {
            if (gates->requires_grad) gates->grad[b * 4 * (size_t)H + 3 * (size_t)H + h] += dh[h] * tc[h] * o[h] * (1.0f - o[h]);
            if (c->requires_grad) c->grad[b * (size_t)H + h] += dh[h] * o[h] * (1.0f - tc[h] * tc[h]);
        }
    }
}

/* One GRU step on rows of B: s = r, z, n per row [B, 3H] (out), h' [B, H]. PyTorch's formulation:
 * r = s(xi_r + xh_r), z = s(xi_z + xh_z), n = tanh(xi_n + r xh_n), h' = (1 - z) n + z h. s may equal xi. */
static VCLONES void gru_step(const float *xi, const float *xh, const float *hp, float *s, float *hn, size_t B, int H)
{
    for (size_t b = 0; b < B; b++) {
        const float *ri = xi + b * 3 * (size_t)H, *rh = xh + b * 3 * (size_t)H, *p = hp + b * (size_t)H;
        float *sb = s + b * 3 * (size_t)H, *o = hn + b * (size_t)H;
        int k = 0;
        for (; k + 8 <= 2 * H; k += 8) vst(sb + k, vld(ri + k) + vld(rh + k));
        for (; k < 2 * H; k++) sb[k] = ri[k] + rh[k];
        cn_vsigmoid(sb, sb, 2 * (size_t)H);
        for (k = 0; k + 8 <= H; k += 8) vst(sb + 2 * H + k, vld(ri + 2 * H + k) + vld(sb + k) * vld(rh + 2 * H + k));
        for (; k < H; k++) sb[2 * H + k] = ri[2 * H + k] + sb[k] * rh[2 * H + k];
        cn_vtanh(sb + 2 * H, sb + 2 * H, (size_t)H);
        for (k = 0; k + 8 <= H; k += 8) {
            v8f z = vld(sb + H + k);
            vst(o + k, (V8F(1.0f) - z) * vld(sb + 2 * H + k) + z * vld(p + k));
        }
        for (; k < H; k++) o[k] = (1.0f - sb[H + k]) * sb[2 * H + k] + sb[H + k] * p[k];
    }
}

/* GRU, PyTorch formulation; saves r, z, n in aux for backward. */
cn_var *cn_gru_cell(cn_graph *g, cn_var *gi, cn_var *gh, cn_var *h)
{
    if (!IN_OK(g, gi) || !IN_OK(g, gh) || !IN_OK(g, h)) return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    int H = cn_cols(&h->v);
    size_t B = cn_rows(&h->v);
    if (cn_cols(&gi->v) != 3 * H || cn_rows(&gi->v) != B || cn_cols(&gh->v) != 3 * H || cn_rows(&gh->v) != B)
        return shape_error(g, "gru_cell", gi, h, "gi and gh must be [B, 3H] for h [B, H]");
    cn_var *in[3] = {gi, gh, h};
    cn_var *y = cn__node(g, CN_OP_GRU_CELL, in, 3, h->v.ndim, h->v.shape, NULL);
    if (!y) return NULL;
    float *save = cn_arena_floats(&g->arena, 3 * B * (size_t)H, 0);  /* r, z, n per element */
    if (!save) return arg_error(g, CN_ERR_NOMEM, "gru_cell: out of memory");
    y->aux = save;
    gru_step(gi->v.data, gh->v.data, h->v.data, save, y->v.data, B, H);
    return y;
}

/* Backward of one GRU step for rows of B (s = r, z, n; xh_n = the n part of gh):
 *   dn = d (1 - z)(1 - n^2), dz = d (h - n) z (1 - z), dr = dn xh_n r (1 - r);
 *   d gi = (dr, dz, dn), d gh = (dr, dz, dn r), dh += d z.  Outputs are added (+=) when non-NULL. */
static VCLONES void gru_step_backward(const float *dy, const float *s, const float *xh, size_t xh_stride, const float *hp,
                                      float *dgi, float *dgh, float *dh, size_t B, int H)
{
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * 3 * (size_t)H, *xn = xh + b * xh_stride, *p = hp + b * (size_t)H, *d_ = dy + b * (size_t)H;
        float *gi_ = dgi ? dgi + b * 3 * (size_t)H : NULL, *gh_ = dgh ? dgh + b * 3 * (size_t)H : NULL;
        float *dh_ = dh ? dh + b * (size_t)H : NULL;
        int k = 0;
        for (; k + 8 <= H; k += 8) {
            v8f one = V8F(1.0f), r = vld(sb + k), z = vld(sb + H + k), n = vld(sb + 2 * H + k), d = vld(d_ + k);
            v8f dn = d * (one - z) * (one - n * n);
            v8f dz = d * (vld(p + k) - n) * z * (one - z);
            v8f dr = dn * vld(xn + k) * r * (one - r);
            if (gi_) { vst(gi_ + k, vld(gi_ + k) + dr); vst(gi_ + H + k, vld(gi_ + H + k) + dz); vst(gi_ + 2 * H + k, vld(gi_ + 2 * H + k) + dn); }
            if (gh_) { vst(gh_ + k, vld(gh_ + k) + dr); vst(gh_ + H + k, vld(gh_ + H + k) + dz); vst(gh_ + 2 * H + k, vld(gh_ + 2 * H + k) + dn * r); }
            if (dh_) vst(dh_ + k, vld(dh_ + k) + d * z);
        }
        for (; k < H; k++) {
            float r = sb[k], z = sb[H + k], n = sb[2 * H + k], d = d_[k];
            float dn = d * (1.0f - z) * (1.0f - n * n);         /* d pre_n */
            float dz = d * (p[k] - n) * z * (1.0f - z);          /* d pre_z */
            float dr = dn * xn[k] * r * (1.0f - r);              /* d pre_r */
            if (gi_) { gi_[k] += dr; gi_[H + k] += dz; gi_[2 * H + k] += dn; }
            if (gh_) { gh_[k] += dr; gh_[H + k] += dz; gh_[2 * H + k] += dn * r; }
            if (dh_) dh_[k] += d * z;
        }
    }
}

static void gru_backward(cn_var *y)
{
    cn_var *gi = y->in[0], *gh = y->in[1], *h = y->in[2];
    int H = cn_cols(&h->v);
    size_t B = cn_rows(&h->v);
    gru_step_backward(y->grad, y->aux, gh->v.data + 2 * H, 3 * (size_t)H, h->v.data,
                      gi->requires_grad ? gi->grad : NULL, gh->requires_grad ? gh->grad : NULL,
                      h->requires_grad ? h->grad : NULL, B, H);
}

/* ------------------------------------------------------------------ */
/* The recurrent products, C[M, N] += A[M, K] Bk[K, N]: Bk and C row-major (ldb, ldc in floats), A element
 * (i, k) at A[i sai + k sak] (so A may be read transposed), N a multiple of 8. At the sizes of a recurrent
 * step (M = batch, K and N = H or G*H) OpenBLAS spends a large part of each call packing both operands;
 * here Bk is streamed row by row as it is (backward: W_hh itself; forward: W_hh^T packed once per sequence;
 * dW_hh: the saved h) and A is broadcast element by element, with an R-row x 2-vector block of C in
 * registers. Every element of C gets acc = sum over k = 0, 1, ..., K-1 of A[i, k] Bk[k, j] (products added in
 * increasing k, separate multiply and add: no FMA), then C[i, j] + acc, as sgemm with beta = 1. The result is
 * the same bits whichever variant runs (AVX-512 with 16 lanes, AVX2 or generic with 8): the lanes are
 * independent columns. */
typedef float v16f __attribute__((vector_size(64)));

#define RGEMM_BLOCK(NAME, VT, W, BC)                                                                            \
    VINLINE void NAME(int R, int V, int K, const float *A, size_t sai, size_t sak, const float *Bk, int ldb,  \
                      float *C, int ldc)                                                                      \
    {                                                                                                         \
        VT acc[8][2];                                                                                         \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                                   \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) acc[r][v] = (VT){0};                          \
        for (int k = 0; k < K; k++) {                                                                         \
            const float *b = Bk + (size_t)k * ldb, *a = A + (size_t)k * sak;                                  \
            VT bv[2];                                                                                         \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) memcpy(&bv[v], b + W * v, sizeof(VT));        \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                             \
                VT av = BC(a[(size_t)r * sai]);                                                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) acc[r][v] += av * bv[v];                  \
            }                                                                                                 \
        }                                                                                                     \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                                   \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) {                                             \
                float *c = C + (size_t)r * ldc + W * v;                                                       \
                VT cv;                                                                                        \
                memcpy(&cv, c, sizeof cv);                                                                    \
                cv += acc[r][v];                                                                              \
                memcpy(c, &cv, sizeof cv);                                                                    \
            }                                                                                                 \
    }
#define V16F(c) ((v16f){c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c})
RGEMM_BLOCK(rgemm_block8, v8f, 8, V8F)
RGEMM_BLOCK(rgemm_block16, v16f, 16, V16F)

/* Column blocks of 2 vectors, then one vector; row blocks of RB rows, then single rows. */
#define RGEMM_DRIVER(NAME, BLOCK, W, RB)                                                                      \
    static void NAME(int M, int N, int K, const float *A, size_t sai, size_t sak, const float *Bk, int ldb,   \
                     float *C, int ldc)                                                                       \
    {                                                                                                         \
        for (int j = 0; j < N;) {                                                                             \
            int V = j + 2 * W <= N ? 2 : 1;                                                                   \
            int i = 0;                                                                                        \
            if (V == 2) {                                                                                     \
                for (; i + RB <= M; i += RB)                                                                  \
                    BLOCK(RB, 2, K, A + i * sai, sai, sak, Bk + j, ldb, C + (size_t)i * ldc + j, ldc);        \
                for (; i < M; i++) BLOCK(1, 2, K, A + i * sai, sai, sak, Bk + j, ldb, C + (size_t)i * ldc + j, ldc); \
            } else {                                                                                          \
                for (; i + RB <= M; i += RB)                                                                  \
                    BLOCK(RB, 1, K, A + i * sai, sai, sak, Bk + j, ldb, C + (size_t)i * ldc + j, ldc);        \
                for (; i < M; i++) BLOCK(1, 1, K, A + i * sai, sai, sak, Bk + j, ldb, C + (size_t)i * ldc + j, ldc); \
            }                                                                                                 \
            j += V * W;                                                                                       \
        }                                                                                                     \
    }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
__attribute__((target("avx512f"))) RGEMM_DRIVER(rgemm_avx512, rgemm_block16, 16, 8)
__attribute__((target("avx2"))) RGEMM_DRIVER(rgemm_avx2, rgemm_block8, 8, 4)
#define RGEMM_X86 1
#endif
RGEMM_DRIVER(rgemm_generic, rgemm_block8, 8, 4)

static void rec_gemm(int M, int N, int K, const float *A, size_t sai, size_t sak, const float *Bk, int ldb, float *C, int ldc)
{
#ifdef RGEMM_X86
    if (N % 16 == 0 && __builtin_cpu_supports("avx512f")) { rgemm_avx512(M, N, K, A, sai, sak, Bk, ldb, C, ldc); return; }
    if (__builtin_cpu_supports("avx2")) { rgemm_avx2(M, N, K, A, sai, sak, Bk, ldb, C, ldc); return; }
#endif
    rgemm_generic(M, N, K, A, sai, sak, Bk, ldb, C, ldc);
}

/* ------------------------------------------------------------------ */
/* A whole recurrent layer in one node (see autograd.h): the tape holds one node per layer instead of ~4
 * per time step, and backward runs BPTT in one loop with the per-step work reduced to the recurrent
 * product dh_{t-1} += d_gh_t W_hh; the weight gradients are then one matrix product over all steps:
 *   dW_hh += sum_{t>=1} d_gh_t^T h_{t-1} = d_gh[1:]^T h[:-1]  ([GH, (T-1)B] x [(T-1)B, H]),
 *   dW_ih += d_gi^T x,  dx += d_gi W_ih,  db_ih = column sums of d_gi,  db_hh = column sums of d_gh
 * (for rnn and lstm d_gi = d_gh = d pre). Forward, step t (h_{-1} = c_{-1} = 0):
 *   xp = x W_ih^T + b_ih (all steps, one product);  gh = b_hh + h_{t-1} W_hh^T (no product at t = 0)
 *   rnn: h = act(xp_t + gh);  lstm / gru: the cells above.
 * The operation order is that of the per-step graph it replaces (linear, add, cell). When H % 8 != 0 every
 * product goes to cn_gemm as in that graph, so the values are the same (only the weight-gradient sums over
 * time are grouped differently). When H % 8 == 0 the three W_hh products (forward, dh, dW_hh) run in
 * rec_gemm above: same operations, but each dot product is summed in rec_gemm's fixed order instead of
 * OpenBLAS's, so values differ from the per-step graph by float rounding (~1e-7 relative). Saved (aux): xp overwritten by the
 * activated gates (lstm: i, f, g, o; gru: r, z, n), lstm c and tanh(c), gru gh_n; backward buffers are sized
 * at forward time. The output's gradient buffer accumulates dh in place during backward. */

typedef struct {
    int kind, bptt;
    float *act;     /* [T, B, GH] xp, then activated gates (rnn: unused after forward)      */
    float *c;       /* lstm: [T + 1, B, H], slice 0 = c_{-1} = 0                           */
    float *tc;      /* lstm: tanh(c) [T, B, H]                                             */
    float *ghn;     /* gru: gh_n [T, B, H]                                                 */
    float *zero;    /* [B, H] zeros (h_{-1})                                               */
    float *gh;      /* [B, GH] scratch                                                     */
    float *dgi;     /* [T, B, GH] d pre (rnn, lstm) / d gi (gru)                           */
    float *dgh;     /* gru: [T, B, GH] d gh; = dgi otherwise                               */
    float *dc;      /* lstm: [B, H] carried dc                                             */
    float *wt;      /* W_hh^T [H, GH] for rec_gemm (NULL: the products go to cn_gemm)      */
} rec_aux;

/* rec_gemm needs whole vectors in both recurrent products (N = GH forward, N = H backward). */
static int rec_fast(int H) { return H % 8 == 0; }

static int rec_gates(int kind) { return kind == CN_REC_LSTM ? 4 : kind == CN_REC_GRU ? 3 : 1; }

cn_var *cn_recurrent(cn_graph *g, int kind, cn_var *x, cn_var *w_ih, cn_var *w_hh, cn_var *b_ih, cn_var *b_hh, int bptt)
{
    if (!IN_OK(g, x) || !IN_OK(g, w_ih) || !IN_OK(g, w_hh) || !IN_OK(g, b_ih) || !IN_OK(g, b_hh))
        return cn__fail(g, g->err ? g->err : CN_ERR_ARG);
    if (kind < CN_REC_TANH || kind > CN_REC_GRU) return arg_error(g, CN_ERR_ARG, "recurrent: unknown kind");
    if (bptt < 0) return arg_error(g, CN_ERR_ARG, "recurrent: bptt must be >= 0");
    if (x->v.ndim != 3) return shape_error(g, "recurrent", x, NULL, "x must be [T, B, F]");
    int T = x->v.shape[0], B = x->v.shape[1], F = x->v.shape[2], G = rec_gates(kind);
    if (w_hh->v.ndim != 2 || w_hh->v.shape[0] % G || w_hh->v.shape[0] != G * w_hh->v.shape[1])
        return shape_error(g, "recurrent", w_hh, NULL, "weight_hh must be [G*H, H]");
    int H = w_hh->v.shape[1], GH = G * H;
    if (w_ih->v.ndim != 2 || w_ih->v.shape[0] != GH || w_ih->v.shape[1] != F)
        return shape_error(g, "recurrent", x, w_ih, "weight_ih must be [G*H, F]");
    if (numel(b_ih) != (size_t)GH || numel(b_hh) != (size_t)GH)
        return shape_error(g, "recurrent", b_ih, b_hh, "biases must have G*H elements");
    cn_var *in[5] = {x, w_ih, w_hh, b_ih, b_hh};
    cn_var *y = cn__node(g, CN_OP_RECURRENT, in, 5, 3, (int[]){T, B, H}, NULL);
    if (!y) return NULL;
    size_t BH = (size_t)B * H, BG = (size_t)B * GH, TB = (size_t)T * B;
    rec_aux *A = cn_arena_alloc(&g->arena, sizeof *A);
    if (!A) return arg_error(g, CN_ERR_NOMEM, "recurrent: out of memory");
    memset(A, 0, sizeof *A);
    A->kind = kind;
    A->bptt = bptt;
    int ok = (A->act = cn_arena_floats(&g->arena, TB * GH, 0)) && (A->gh = cn_arena_floats(&g->arena, BG, 0)) &&
             (A->zero = cn_arena_floats(&g->arena, BH, 1));
    if (ok && kind == CN_REC_LSTM)
        ok = (A->c = cn_arena_floats(&g->arena, (TB + B) * H, 0)) && (A->tc = cn_arena_floats(&g->arena, TB * H, 0)) &&
             (A->dc = cn_arena_floats(&g->arena, BH, 0));
    if (ok && kind == CN_REC_GRU) ok = (A->ghn = cn_arena_floats(&g->arena, TB * H, 0)) != NULL;
    if (ok && rec_fast(H) && T > 1) ok = (A->wt = cn_arena_floats(&g->arena, (size_t)H * GH, 0)) != NULL;
    if (ok && y->requires_grad) {
        ok = (A->dgi = cn_arena_floats(&g->arena, TB * GH, 0)) != NULL;
        A->dgh = A->dgi;
        if (ok && kind == CN_REC_GRU) ok = (A->dgh = cn_arena_floats(&g->arena, TB * GH, 0)) != NULL;
    }
    if (!ok) return arg_error(g, CN_ERR_NOMEM, "recurrent: out of memory for the saved sequence");
    y->aux = A;
    y->iarg[0] = kind;
    y->iarg[1] = bptt;
    if (kind == CN_REC_LSTM) memset(A->c, 0, BH * sizeof(float));

    /* xp = x W_ih^T + b_ih, as cn_linear: bias rows, then the product with beta = 1 */
    for (size_t r = 0; r < TB; r++) memcpy(A->act + r * GH, b_ih->v.data, sizeof(float) * (size_t)GH);
    cn_gemm(0, 1, (int)TB, GH, F, 1.0f, x->v.data, F, w_ih->v.data, F, 1.0f, A->act, GH);
    if (A->wt)   /* wt[k, j] = W_hh[j, k] */
        for (int j = 0; j < GH; j++)
            for (int k = 0; k < H; k++) A->wt[(size_t)k * GH + j] = w_hh->v.data[(size_t)j * H + k];
    for (int t = 0; t < T; t++) {
        float *xt = A->act + t * BG, *ht = y->v.data + t * BH;
        const float *hp = t ? y->v.data + (t - 1) * BH : A->zero;
        for (int b = 0; b < B; b++) memcpy(A->gh + (size_t)b * GH, b_hh->v.data, sizeof(float) * (size_t)GH);
        if (t && A->wt) rec_gemm(B, GH, H, hp, H, 1, A->wt, GH, A->gh, GH);                   /* gh += h W_hh^T */
        else if (t) cn_gemm(0, 1, B, GH, H, 1.0f, hp, H, w_hh->v.data, H, 1.0f, A->gh, GH);
        if (kind == CN_REC_TANH || kind == CN_REC_RELU) {
            memcpy(ht, xt, BH * sizeof(float));
            vadd_into(ht, A->gh, BH);
            if (kind == CN_REC_TANH) cn_vtanh(ht, ht, BH);
            else for (size_t i = 0; i < BH; i++) ht[i] = ht[i] < 0.0f ? 0.0f : ht[i];   /* NaN stays */
        } else if (kind == CN_REC_LSTM) {
            const float *cp = A->c + t * BH;
            float *cn = A->c + (t + 1) * BH, *tc = A->tc + t * BH;
            vadd_into(xt, A->gh, BG);
            for (int b = 0; b < B; b++) {
                float *a = xt + (size_t)b * GH;
                cn_vsigmoid(a, a, 2 * (size_t)H);
                cn_vtanh(a + 2 * H, a + 2 * H, (size_t)H);
                cn_vsigmoid(a + 3 * H, a + 3 * H, (size_t)H);
                lstm_c_row(a, cp + (size_t)b * H, cn + (size_t)b * H, H);
            }
            cn_vtanh(tc, cn, BH);
            for (int b = 0; b < B; b++) vmul(ht + (size_t)b * H, xt + (size_t)b * GH + 3 * H, tc + (size_t)b * H, (size_t)H);
        } else {
            float *ghn = A->ghn + t * BH;
            for (int b = 0; b < B; b++) memcpy(ghn + (size_t)b * H, A->gh + (size_t)b * GH + 2 * H, sizeof(float) * (size_t)H);
            gru_step(xt, A->gh, hp, xt, ht, (size_t)B, H);   /* r, z, n overwrite xp_t row by row */
        }
    }
    return y;
}

static void recurrent_backward(cn_var *y)
{
    cn_var *x = y->in[0], *w_ih = y->in[1], *w_hh = y->in[2], *b_ih = y->in[3], *b_hh = y->in[4];
    const rec_aux *A = y->aux;
    int kind = A->kind, bptt = A->bptt;
    int T = y->v.shape[0], B = y->v.shape[1], H = y->v.shape[2], F = x->v.shape[2], GH = rec_gates(kind) * H;
    size_t BH = (size_t)B * H, BG = (size_t)B * GH;
    if (kind == CN_REC_LSTM) memset(A->dc, 0, BH * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        float *dh = y->grad + t * BH;                 /* complete: dY_t + what step t+1 sent back */
        const float *ht = y->v.data + t * BH, *hp = t ? y->v.data + (t - 1) * BH : A->zero;
        float *dgi = A->dgi + t * BG, *dgh = A->dgh + t * BG;
        int carry = t > 0 && !(bptt > 0 && t % bptt == 0);   /* gradient flows into h_{t-1}, c_{t-1} */
        if (kind == CN_REC_TANH) {
            tanh_bwd(dgi, dh, ht, BH);
        } else if (kind == CN_REC_RELU) {
            /* threshold_backward on the pre-activation: pre <= 0 exactly when h <= 0 (NaN passes dy) */
            for (size_t i = 0; i < BH; i++) dgi[i] = ht[i] <= 0.0f ? 0.0f : dh[i];
        } else if (kind == CN_REC_LSTM) {
            const float *act = A->act + t * BG, *cp = A->c + t * BH, *tc = A->tc + t * BH;
            for (int b = 0; b < B; b++)
                lstm_bwd_row(act + (size_t)b * GH, tc + (size_t)b * H, cp + (size_t)b * H, dh + (size_t)b * H,
                             A->dc + (size_t)b * H, dgi + (size_t)b * GH, H, carry);
        } else {
            memset(dgi, 0, BG * sizeof(float));
            memset(dgh, 0, BG * sizeof(float));
            gru_step_backward(dh, A->act + t * BG, A->ghn + t * BH, (size_t)H, hp, dgi, dgh,
                              carry ? y->grad + (t - 1) * BH : NULL, (size_t)B, H);
        }
        if (b_hh->requires_grad) colsum_into(b_hh->grad, dgh, (size_t)B, (size_t)GH);   /* newest step first, as the per-step graph */
        if (carry && A->wt) /* dh_{t-1} += d gh_t W_hh */
            rec_gemm(B, H, GH, dgh, GH, 1, w_hh->v.data, H, y->grad + (t - 1) * BH, H);
        else if (carry)
            cn_gemm(0, 0, B, H, GH, 1.0f, dgh, GH, w_hh->v.data, H, 1.0f, y->grad + (t - 1) * BH, H);
    }
    size_t TB = (size_t)T * B;
    if (w_hh->requires_grad && T > 1 && A->wt)   /* dW_hh += d_gh[1:]^T h[:-1], A read transposed */
        rec_gemm(GH, H, (int)(TB - B), A->dgh + BG, 1, (size_t)GH, y->v.data, H, w_hh->grad, H);
    else if (w_hh->requires_grad && T > 1)
        cn_gemm(1, 0, GH, H, (int)(TB - B), 1.0f, A->dgh + BG, GH, y->v.data, H, 1.0f, w_hh->grad, H);
    if (x->requires_grad) cn_gemm(0, 0, (int)TB, F, GH, 1.0f, A->dgi, GH, w_ih->v.data, F, 1.0f, x->grad, F);
    if (w_ih->requires_grad) cn_gemm(1, 0, GH, F, (int)TB, 1.0f, A->dgi, GH, x->v.data, F, 1.0f, w_ih->grad, F);
    if (b_ih->requires_grad) colsum_into(b_ih->grad, A->dgi, TB, (size_t)GH);
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
    [CN_OP_LSTM_CELL_C]   = {"lstm_cell_c", lstm_c_backward},
    [CN_OP_LSTM_CELL_H]   = {"lstm_cell_h", lstm_h_backward},
    [CN_OP_GRU_CELL]      = {"gru_cell", gru_backward},
    [CN_OP_RECURRENT]     = {"recurrent", recurrent_backward},
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
