/* The recurrent ops: the fused per-step cells (LSTM c and h, GRU) and the whole-sequence recurrent layer
 * with its W_hh product kernel. Their backward rules are registered in ops.c's op table.
 *
 * The per-step cells are the reference the fused layer is held to: the layer's operation order is that of
 * the per-step graph of cn_linear, cn_add and these cells, and the tests check the cells alone by finite
 * differences and the layer against the graph built from them. The GRU cell and the layer run the same
 * row kernel (gru_step); the LSTM cells compute the same formulas as the layer's row kernels. */
#include "autograd/cells.h"
#include "autograd/internal.h"
#include "tensor/pool.h"
#include "tensor/vec.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* LSTM forward for one row: a = s(i), s(f), tanh(g), s(o) [4H]; c' = s(f) c + s(i) tanh(g) */
static VCLONES void lstm_c_row(const float *a, const float *cp, float *cn, int H)
{
    int h = 0;
    for (; h + 8 <= H; h += 8) vst(cn + h, vld(a + H + h) * vld(cp + h) + vld(a + h) * vld(a + 2 * H + h));
    for (; h < H; h++) cn[h] = a[H + h] * cp[h] + a[h] * a[2 * H + h];
}

/* LSTM backward for one row (a as above, tc = tanh(c'), cp = c, dh = dL/dh', dc in: carried dL/dc' from
 * the next step, out: dL/dc to carry back (0 when `carry` is 0)); writes d pre [4H]:
 *   dc' = dc + dh s(o) (1 - tc^2);  d o = dh tc s(o)(1 - s(o));  d i = dc' tanh(g) s(i)(1 - s(i));
 *   d f = dc' c s(f)(1 - s(f));  d g = dc' s(i)(1 - tanh(g)^2);  dc <- dc' s(f) */
/* One vector of it at h, for a vector type VT with its load, store and constant (8 or 16 lanes: the
 * scalar tail's operations lane by lane, so the same bits). Every element of a is read before dg, which
 * may be a itself, is written at that element. */
#define LSTM_BWD_VEC(VT, LD, ST, C)                                                                      \
    do {                                                                                                 \
        VT i = LD(a + h), f = LD(a + H + h), gg = LD(a + 2 * H + h), o = LD(a + 3 * H + h);              \
        VT t = LD(tc + h), d = LD(dh + h), one = C(1.0f);                                                \
        VT dcv = LD(dc + h) + d * o * (one - t * t);                                                     \
        ST(dg + 3 * H + h, d * t * o * (one - o));                                                       \
        ST(dg + h, dcv * gg * i * (one - i));                                                            \
        ST(dg + H + h, dcv * LD(cp + h) * f * (one - f));                                                \
        ST(dg + 2 * H + h, dcv * i * (one - gg * gg));                                                   \
        ST(dc + h, carry ? dcv * f : C(0.0f));                                                           \
    } while (0)

#ifdef CN_VEC_X86
__attribute__((target("avx512f"))) static int lstm_bwd_row16(const float *a, const float *tc, const float *cp,
                                                             const float *dh, float *dc, float *dg, int H, int carry)
{
    int h = 0;
    for (; h + 16 <= H; h += 16) LSTM_BWD_VEC(v16f, vld16, vst16, V16F);
    return h;
}
#endif

static VCLONES void lstm_bwd_row(const float *a, const float *tc, const float *cp, const float *dh, float *dc,
                                 float *dg, int H, int carry)
{
    int h = VWIDE(lstm_bwd_row, a, tc, cp, dh, dc, dg, H, carry);
    for (; h + 8 <= H; h += 8) LSTM_BWD_VEC(v8f, vld, vst, V8F);
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

/* ------------------------------------------------------------------ */
/* Fused recurrent cells. The activations are computed with the vector kernels, row by row, and saved in
 * aux so that backward needs no transcendental function. */

/* c' = s(f) c + s(i) tanh(g); aux [B, 4H] = s(i), s(f), tanh(g), s(o) */
cn_var *cn_lstm_cell_c(cn_graph *g, cn_var *gates, cn_var *c)
{
    if (!gates || !c || g->err) return cn__bad_input(g, "lstm_cell_c");
    int H = cn_cols(&c->v);
    size_t B = cn_rows(&c->v);
    if (cn_cols(&gates->v) != 4 * H || cn_rows(&gates->v) != B) return cn__shape_error(g, "lstm_cell_c", gates, c, "gates must be [B, 4H] for c [B, H]");
    cn_var *in[2] = {gates, c};
    cn_var *y = cn__node(g, CN_OP_LSTM_CELL_C, in, 2, c->v.ndim, c->v.shape, NULL);
    if (!y) return NULL;
    float *act = cn_arena_floats(&g->arena, 4 * B * (size_t)H, 0);
    if (!act) return cn__arg_error(g, CN_ERR_NOMEM, "lstm_cell_c: out of memory");
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

void cn__lstm_cell_c_backward(cn_var *y)
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
    if (!gates || !c_new || g->err) return cn__bad_input(g, "lstm_cell_h");
    int H = cn_cols(&c_new->v);
    size_t B = cn_rows(&c_new->v);
    if (cn_cols(&gates->v) != 4 * H || cn_rows(&gates->v) != B) return cn__shape_error(g, "lstm_cell_h", gates, c_new, "gates must be [B, 4H] for c [B, H]");
    cn_var *in[2] = {gates, c_new};
    cn_var *y = cn__node(g, CN_OP_LSTM_CELL_H, in, 2, c_new->v.ndim, c_new->v.shape, NULL);
    if (!y) return NULL;
    float *save = cn_arena_floats(&g->arena, 2 * B * (size_t)H, 0);
    if (!save) return cn__arg_error(g, CN_ERR_NOMEM, "lstm_cell_h: out of memory");
    y->aux = save;
    for (size_t b = 0; b < B; b++) {
        float *o = save + b * 2 * (size_t)H, *tc = o + H, *hn = y->v.data + b * (size_t)H;
        cn_vsigmoid(o, gates->v.data + b * 4 * (size_t)H + 3 * (size_t)H, (size_t)H);
        cn_vtanh(tc, c_new->v.data + b * (size_t)H, (size_t)H);
        for (int h = 0; h < H; h++) hn[h] = o[h] * tc[h];
    }
    return y;
}

void cn__lstm_cell_h_backward(cn_var *y)
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
    if (!gi || !gh || !h || g->err) return cn__bad_input(g, "gru_cell");
    int H = cn_cols(&h->v);
    size_t B = cn_rows(&h->v);
    if (cn_cols(&gi->v) != 3 * H || cn_rows(&gi->v) != B || cn_cols(&gh->v) != 3 * H || cn_rows(&gh->v) != B)
        return cn__shape_error(g, "gru_cell", gi, h, "gi and gh must be [B, 3H] for h [B, H]");
    cn_var *in[3] = {gi, gh, h};
    cn_var *y = cn__node(g, CN_OP_GRU_CELL, in, 3, h->v.ndim, h->v.shape, NULL);
    if (!y) return NULL;
    float *save = cn_arena_floats(&g->arena, 3 * B * (size_t)H, 0);  /* r, z, n per element */
    if (!save) return cn__arg_error(g, CN_ERR_NOMEM, "gru_cell: out of memory");
    y->aux = save;
    gru_step(gi->v.data, gh->v.data, h->v.data, save, y->v.data, B, H);
    return y;
}

/* Backward of one GRU step for rows of B (s = r, z, n; xh_n = the n part of gh):
 *   dn = d (1 - z)(1 - n^2), dz = d (h - n) z (1 - z), dr = dn xh_n r (1 - r);
 *   d gi = (dr, dz, dn), d gh = (dr, dz, dn r), dh += d z.  Outputs are added (+=) when non-NULL, except
 * d gi and d gh when set: then they are 0 + the value (the bits of += into zeros), and dgi may be s itself
 * (each element of s is read before the same element of d gi is written). */
/* One vector of one row of it at k (as LSTM_BWD_VEC: any width, the bits of the scalar tail). */
#define GRU_BWD_VEC(VT, LD, ST, C)                                                                                   \
    do {                                                                                                             \
        VT one = C(1.0f), zero = C(0.0f), r = LD(sb + k), z = LD(sb + H + k), n = LD(sb + 2 * H + k), d = LD(d_ + k); \
        VT dn = d * (one - z) * (one - n * n);                                                                       \
        VT dz = d * (LD(p + k) - n) * z * (one - z);                                                                 \
        VT dr = dn * LD(xn + k) * r * (one - r);                                                                     \
        if (gi_ && set) { ST(gi_ + k, zero + dr); ST(gi_ + H + k, zero + dz); ST(gi_ + 2 * H + k, zero + dn); }      \
        else if (gi_) {                                                                                              \
            ST(gi_ + k, LD(gi_ + k) + dr); ST(gi_ + H + k, LD(gi_ + H + k) + dz);                                    \
            ST(gi_ + 2 * H + k, LD(gi_ + 2 * H + k) + dn);                                                           \
        }                                                                                                            \
        if (gh_ && set) { ST(gh_ + k, zero + dr); ST(gh_ + H + k, zero + dz); ST(gh_ + 2 * H + k, zero + dn * r); }  \
        else if (gh_) {                                                                                              \
            ST(gh_ + k, LD(gh_ + k) + dr); ST(gh_ + H + k, LD(gh_ + H + k) + dz);                                    \
            ST(gh_ + 2 * H + k, LD(gh_ + 2 * H + k) + dn * r);                                                       \
        }                                                                                                            \
        if (dh_) ST(dh_ + k, LD(dh_ + k) + d * z);                                                                   \
    } while (0)

#ifdef CN_VEC_X86
__attribute__((target("avx512f"))) static int gru_bwd_row16(const float *sb, const float *xn, const float *p,
                                                            const float *d_, float *gi_, float *gh_, int set,
                                                            float *dh_, int H)
{
    int k = 0;
    for (; k + 16 <= H; k += 16) GRU_BWD_VEC(v16f, vld16, vst16, V16F);
    return k;
}
#endif

static VCLONES void gru_step_backward(const float *dy, const float *s, const float *xh, size_t xh_stride, const float *hp,
                                      float *dgi, float *dgh, int set, float *dh, size_t B, int H)
{
    for (size_t b = 0; b < B; b++) {
        const float *sb = s + b * 3 * (size_t)H, *xn = xh + b * xh_stride, *p = hp + b * (size_t)H, *d_ = dy + b * (size_t)H;
        float *gi_ = dgi ? dgi + b * 3 * (size_t)H : NULL, *gh_ = dgh ? dgh + b * 3 * (size_t)H : NULL;
        float *dh_ = dh ? dh + b * (size_t)H : NULL;
        int k = VWIDE(gru_bwd_row, sb, xn, p, d_, gi_, gh_, set, dh_, H);
        for (; k + 8 <= H; k += 8) GRU_BWD_VEC(v8f, vld, vst, V8F);
        for (; k < H; k++) {
            float r = sb[k], z = sb[H + k], n = sb[2 * H + k], d = d_[k];
            float dn = d * (1.0f - z) * (1.0f - n * n);         /* d pre_n */
            float dz = d * (p[k] - n) * z * (1.0f - z);          /* d pre_z */
            float dr = dn * xn[k] * r * (1.0f - r);              /* d pre_r */
            if (gi_ && set) { gi_[k] = 0.0f + dr; gi_[H + k] = 0.0f + dz; gi_[2 * H + k] = 0.0f + dn; }
            else if (gi_) { gi_[k] += dr; gi_[H + k] += dz; gi_[2 * H + k] += dn; }
            if (gh_ && set) { gh_[k] = 0.0f + dr; gh_[H + k] = 0.0f + dz; gh_[2 * H + k] = 0.0f + dn * r; }
            else if (gh_) { gh_[k] += dr; gh_[H + k] += dz; gh_[2 * H + k] += dn * r; }
            if (dh_) dh_[k] += d * z;
        }
    }
}

void cn__gru_cell_backward(cn_var *y)
{
    cn_var *gi = y->in[0], *gh = y->in[1], *h = y->in[2];
    int H = cn_cols(&h->v);
    size_t B = cn_rows(&h->v);
    gru_step_backward(y->grad, y->aux, gh->v.data + 2 * H, 3 * (size_t)H, h->v.data,
                      gi->requires_grad ? gi->grad : NULL, gh->requires_grad ? gh->grad : NULL, 0,
                      h->requires_grad ? h->grad : NULL, B, H);
}

/* ------------------------------------------------------------------ */
/* The recurrent products, C[M, N] += A[M, K] Bk[K, N]: C row-major (ldc in floats), A element (i, k) at
 * A[i sai + k sak] (so A may be read transposed), N a multiple of 8; Bk row-major (ldb) or packed in column
 * panels (rec_pack). At the sizes of a recurrent step (M = batch, K and N = H or G*H) OpenBLAS spends a
 * large part of each call packing both operands; here Bk is packed once per sequence (forward: W_hh^T,
 * backward: W_hh) and A is broadcast element by element, with an R-row x 2-vector block of C in registers.
 * Every element of C gets acc = sum over k = 0, 1, ..., K-1 of A[i, k] Bk[k, j] (products added in
 * increasing k), then C[i, j] + acc, as sgemm with beta = 1; or, given a row vector bias, C[i, j] +
 * (bias[j] + acc): the bits of C + gh for gh = bias, gh += the product (the forward step's pre-activation
 * without the gh array and its two passes); or, with set, bias[j] + acc (C is not read: a linear layer's
 * bias rows and product with beta = 1). The lanes are independent columns, so the
 * result does not depend on the block shapes. The x86 variants (AVX-512 with 16 lanes, AVX2 with 8) fuse
 * each multiply-add (FMA, one rounding); the generic variant multiplies and adds separately: so the bits
 * are fixed for a host (its variant), not across hosts. */

#define MADD_SEP(acc, a, b) ((acc) += (a) * (b))
#define RGEMM_BLOCK(NAME, VT, W, BC, MADD)                                                                      \
    VINLINE void NAME(int R, int V, int K, const float *A, size_t sai, size_t sak, const float *Bk, int ldb,  \
                      const float *bias, int set, float *C, int ldc)                                          \
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
                _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) MADD(acc[r][v], av, bv[v]);               \
            }                                                                                                 \
        }                                                                                                     \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                                   \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) {                                             \
                float *c = C + (size_t)r * ldc + W * v;                                                       \
                VT cv;                                                                                        \
                VT bb = (VT){0};                                                                              \
                if (bias) memcpy(&bb, bias + W * v, sizeof bb);                                               \
                if (set) cv = bb + acc[r][v];                                                                 \
                else {                                                                                        \
                    memcpy(&cv, c, sizeof cv);                                                                \
                    cv += bias ? bb + acc[r][v] : acc[r][v];                                                  \
                }                                                                                             \
                memcpy(c, &cv, sizeof cv);                                                                    \
            }                                                                                                 \
    }
RGEMM_BLOCK(rgemm_block8, v8f, 8, V8F, MADD_SEP)

/* Column blocks of 2 vectors, then one vector; row blocks of RB rows, then single rows. packed: Bk is in
 * panels (rec_pack): the K x (V W) block of columns j.. starts at Bk + j K, rows V W floats apart. */
#define RGEMM_DRIVER(NAME, BLOCK, W, RB)                                                                      \
    static void NAME(int M, int N, int K, const float *A, size_t sai, size_t sak, const float *Bk, int ldb,   \
                     int packed, const float *bias, int set, float *C, int ldc)                               \
    {                                                                                                         \
        for (int j = 0; j < N;) {                                                                             \
            int V = j + 2 * W <= N ? 2 : 1;                                                                   \
            const float *bj = packed ? Bk + (size_t)j * K : Bk + j, *cb = bias ? bias + j : NULL;             \
            int lb = packed ? V * W : ldb;                                                                    \
            int i = 0;                                                                                        \
            if (V == 2) {                                                                                     \
                for (; i + RB <= M; i += RB)                                                                  \
                    BLOCK(RB, 2, K, A + i * sai, sai, sak, bj, lb, cb, set, C + (size_t)i * ldc + j, ldc);    \
                for (; i < M; i++) BLOCK(1, 2, K, A + i * sai, sai, sak, bj, lb, cb, set, C + (size_t)i * ldc + j, ldc); \
            } else {                                                                                          \
                for (; i + RB <= M; i += RB)                                                                  \
                    BLOCK(RB, 1, K, A + i * sai, sai, sak, bj, lb, cb, set, C + (size_t)i * ldc + j, ldc);    \
                for (; i < M; i++) BLOCK(1, 1, K, A + i * sai, sai, sak, bj, lb, cb, set, C + (size_t)i * ldc + j, ldc); \
            }                                                                                                 \
            j += V * W;                                                                                       \
        }                                                                                                     \
    }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#include <immintrin.h>
/* The x86 variants contract each multiply-add into one FMA (one rounding instead of two): same order of
 * k, so still one fixed sum per element, but other bits than the generic variant's. */
#define MADD_FMA16(acc, a, b) ((acc) = (v16f)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(acc)))
#define MADD_FMA8(acc, a, b) ((acc) = (v8f)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(acc)))
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
RGEMM_BLOCK(rgemm_block16f, v16f, 16, V16F, MADD_FMA16)
RGEMM_DRIVER(rgemm_avx512, rgemm_block16f, 16, 8)
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
RGEMM_BLOCK(rgemm_block8f, v8f, 8, V8F, MADD_FMA8)
RGEMM_DRIVER(rgemm_avx2, rgemm_block8f, 8, 4)
#pragma GCC pop_options
#define RGEMM_X86 1
#endif
RGEMM_DRIVER(rgemm_generic, rgemm_block8, 8, 4)

/* The variant rec_gemm runs for N columns: 16 lanes (AVX-512), 8 with FMA (AVX2), 8 without (generic). */
enum { RG_GENERIC, RG_AVX2, RG_AVX512 };
static int rec_variant(int N)
{
#ifdef RGEMM_X86
    if (N % 16 == 0 && __builtin_cpu_supports("avx512f")) return RG_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return RG_AVX2;
#endif
    (void)N;
    return RG_GENERIC;
}

static void rec_gemm_v(int variant, int M, int N, int K, const float *A, size_t sai, size_t sak, const float *Bk,
                       int ldb, int packed, const float *bias, int set, float *C, int ldc)
{
    switch (variant) {
#ifdef RGEMM_X86
    case RG_AVX512: rgemm_avx512(M, N, K, A, sai, sak, Bk, ldb, packed, bias, set, C, ldc); return;
    case RG_AVX2: rgemm_avx2(M, N, K, A, sai, sak, Bk, ldb, packed, bias, set, C, ldc); return;
#endif
    default: rgemm_generic(M, N, K, A, sai, sak, Bk, ldb, packed, bias, set, C, ldc);
    }
}

static void rec_gemm(int M, int N, int K, const float *A, size_t sai, size_t sak, const float *Bk, int ldb, int packed,
                     const float *bias, int set, float *C, int ldc)
{
    rec_gemm_v(rec_variant(N), M, N, K, A, sai, sak, Bk, ldb, packed, bias, set, C, ldc);
}

/* dW_ih [GH, F] += d_gi^T x when the layer has few inputs (F <= REC_IN_FEW): OpenBLAS packs all of d_gi
 * ([T B, GH]) for a product of 2 GH F T B multiply-adds only, and at F 2 spends ~10x a pass over d_gi.
 * Here one pass: columns j of d_gi in blocks of 1-2 vectors, every row r in order, acc[f] += d_gi[r, j]
 * x[r, f] (FMA on x86, as rec_gemm), then dW[j, f] + acc[f]. The same pass adds the b_ih gradient: gb[j]
 * + d_gi[0, j] + d_gi[1, j] + ..., rows in order, the bits of cn_vcolsum_ld. Every lane is one column
 * whatever the block, so a split of the columns over the pool changes no bit. */
#define REC_IN_FEW 8
#define RDWIH_BLOCK(NAME, VT, W, BC, MADD)                                                                      \
    VINLINE void NAME(int V, int F, size_t R, const float *d, size_t ld, const float *x, float *dw, float *gb) \
    {                                                                                                         \
        VT acc[REC_IN_FEW][2], s[2];                                                                          \
        _Pragma("GCC unroll 8") for (int f = 0; f < F; f++)                                                   \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) acc[f][v] = (VT){0};                          \
        _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) {                                                 \
            s[v] = (VT){0};                                                                                   \
            if (gb) memcpy(&s[v], gb + W * v, sizeof(VT));                                                    \
        }                                                                                                     \
        for (size_t r = 0; r < R; r++) {                                                                      \
            const float *row = d + r * ld, *xr = x + r * (size_t)F;                                           \
            VT a[2];                                                                                          \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) {                                             \
                memcpy(&a[v], row + W * v, sizeof(VT));                                                       \
                s[v] += a[v];                                                                                 \
            }                                                                                                 \
            _Pragma("GCC unroll 8") for (int f = 0; f < F; f++) {                                             \
                VT xb = BC(xr[f]);                                                                            \
                _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) MADD(acc[f][v], a[v], xb);                \
            }                                                                                                 \
        }                                                                                                     \
        _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) {                                                 \
            if (gb) memcpy(gb + W * v, &s[v], sizeof(VT));                                                    \
            for (int f = 0; f < F; f++) {                                                                     \
                float t[W];                                                                                   \
                memcpy(t, &acc[f][v], sizeof t);                                                              \
                for (int l = 0; l < W; l++) dw[(size_t)(W * v + l) * F + f] += t[l];                          \
            }                                                                                                 \
        }                                                                                                     \
    }

/* Columns c0 .. c1: blocks of 2 vectors, then 1, then single columns (SMADD: the scalar multiply-add of
 * the same rounding as the lanes). */
#define RDWIH_DRIVER(NAME, BLOCK, W, SMADD)                                                                    \
    static void NAME(int c0, int c1, int F, size_t R, const float *d, size_t ld, const float *x, float *dw,   \
                     float *gb)                                                                               \
    {                                                                                                         \
        int j = c0;                                                                                           \
        for (; j + 2 * W <= c1; j += 2 * W) BLOCK(2, F, R, d + j, ld, x, dw + (size_t)j * F, gb ? gb + j : NULL); \
        for (; j + W <= c1; j += W) BLOCK(1, F, R, d + j, ld, x, dw + (size_t)j * F, gb ? gb + j : NULL);     \
        for (; j < c1; j++) {                                                                                 \
            float acc[REC_IN_FEW] = {0}, s = gb ? gb[j] : 0.0f;                                               \
            for (size_t r = 0; r < R; r++) {                                                                  \
                float a = d[r * ld + j];                                                                      \
                s += a;                                                                                       \
                for (int f = 0; f < F; f++) acc[f] = SMADD(a, x[r * (size_t)F + f], acc[f]);                  \
            }                                                                                                 \
            if (gb) gb[j] = s;                                                                                \
            for (int f = 0; f < F; f++) dw[(size_t)j * F + f] += acc[f];                                      \
        }                                                                                                     \
    }

#define SMADD_SEP(a, b, c) ((c) + (a) * (b))
RDWIH_BLOCK(rdwih_block8, v8f, 8, V8F, MADD_SEP)
RDWIH_DRIVER(rdwih_generic, rdwih_block8, 8, SMADD_SEP)
#ifdef RGEMM_X86
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
RDWIH_BLOCK(rdwih_block16f, v16f, 16, V16F, MADD_FMA16)
RDWIH_DRIVER(rdwih_avx512, rdwih_block16f, 16, fmaf)
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
RDWIH_BLOCK(rdwih_block8f, v8f, 8, V8F, MADD_FMA8)
RDWIH_DRIVER(rdwih_avx2, rdwih_block8f, 8, fmaf)
#pragma GCC pop_options
#endif

/* The variant for this host (not for a range: every column of a layer goes through the same one). */
static void rec_dwih(int c0, int c1, int F, size_t R, const float *d, size_t ld, const float *x, float *dw, float *gb)
{
#ifdef RGEMM_X86
    if (__builtin_cpu_supports("avx512f")) { rdwih_avx512(c0, c1, F, R, d, ld, x, dw, gb); return; }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { rdwih_avx2(c0, c1, F, R, d, ld, x, dw, gb); return; }
#endif
    rdwih_generic(c0, c1, F, R, d, ld, x, dw, gb);
}

void cn__lstm_bwd_row(const float *a, const float *tc, const float *cp, const float *dh, float *dc, float *dg, int H,
                      int carry)
{
    lstm_bwd_row(a, tc, cp, dh, dc, dg, H, carry);
}

void cn__gru_step_backward(const float *dy, const float *s, const float *xh, size_t xh_stride, const float *hp,
                           float *dgi, float *dgh, int set, float *dh, size_t B, int H)
{
    gru_step_backward(dy, s, xh, xh_stride, hp, dgi, dgh, set, dh, B, H);
}

void cn__recurrent_dw_ih(int c0, int c1, int F, size_t R, const float *d, size_t ld, const float *x, float *dw, float *gb)
{
    rec_dwih(c0, c1, F, R, d, ld, x, dw, gb);
}

/* Packs Bk[K, N] (element (k, j) at src[k sk + j sj]) into the panels rec_gemm's variant for N reads: the
 * columns in blocks of P = 2 vectors (the last block may be 1 vector wide), each block K rows of its width,
 * contiguous. A panel is then read sequentially instead of one cache line per row of a wide matrix (rows
 * 2-8 KB apart map to the same few L1 sets and pages). */
static int rec_pack_width(int N) { return rec_variant(N) == RG_AVX512 ? 16 : 8; }

/* Columns j0 .. j1 of the packing (j0, j1 on block boundaries: multiples of 2 vectors, or N). */
static void rec_pack_cols(float *dst, const float *src, int K, int N, size_t sk, size_t sj, int j0, int j1)
{
    int W = rec_pack_width(N);
    for (int j = j0; j < j1;) {
        int P = j + 2 * W <= N ? 2 * W : W;
        float *d = dst + (size_t)j * K;
        for (int k = 0; k < K; k++)
            for (int c = 0; c < P; c++) d[(size_t)k * P + c] = src[(size_t)k * sk + (size_t)(j + c) * sj];
        j += P;
    }
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
 * A layer with few inputs (F <= REC_IN_FEW) on the rec_gemm path forms xp_t step by step in rec_gemm
 * (W_ih^T packed, bias rows in the store) and its dW_ih and db_ih in one pass over d_gi (rec_dwih):
 * products of 2 F GH per row are too thin for OpenBLAS, which packs whole operands for them.
 * The operation order is that of the per-step graph it replaces (linear, add, cell). When H % 8 != 0 every
 * product goes to cn_gemm as in that graph, so the values are the same (only the weight-gradient sums over
 * time are grouped differently). When H % 8 == 0 the two per-step W_hh products (forward, dh) run in
 * rec_gemm above, and dW_hh too when W_hh is tiny (rec_dw_kernel; else OpenBLAS): same operations, but each
 * dot product is summed in rec_gemm's fixed order (with FMA on x86) instead of OpenBLAS's, so values differ
 * from the per-step graph by float rounding (~1e-7 relative). Saved (aux): xp overwritten by the
 * activated gates (lstm: i, f, g, o; gru: r, z, n), lstm c and tanh(c), gru gh_n; backward buffers are sized
 * at forward time. The output's gradient buffer accumulates dh in place during backward.
 *
 * Backward writes d pre (d gi for gru) over the activations of the same step, which it has just read for
 * the last time: no second [T, B, GH] array, and at long sequences one stream to and from memory less.
 * A second backward on the same graph (cn_backward's "retain graph") finds
 * the activations gone and runs the forward pass again first: the same inputs give the same bits. */

typedef struct {
    int kind, bptt;
    float *act;     /* [T, B, GH] xp, then activated gates (rnn: unused after forward), then
                       (backward) d pre / d gi                                              */
    float *c;       /* lstm: [T + 1, B, H], slice 0 = c_{-1} = 0                           */
    float *tc;      /* lstm: tanh(c) [T, B, H]                                             */
    float *ghn;     /* gru: gh_n [T, B, H]                                                 */
    float *zero;    /* [B, H] zeros (h_{-1})                                               */
    float *gh;      /* [B, GH] scratch                                                     */
    float *dgh;     /* gru: [T, B, GH] d gh; = act (d pre) otherwise                       */
    float *dc;      /* lstm: [B, H] carried dc                                             */
    float *wt;      /* [H * GH] W_hh^T forward, W_hh backward, packed for rec_gemm (NULL: the per-step
                       products go to cn_gemm)                                               */
    float *wit;     /* [F * GH] W_ih^T packed for rec_gemm when F <= REC_IN_FEW and wt is set: xp is
                       formed step by step in the forward loop (else one cn_gemm over T B rows) */
    int dw_kernel;  /* dW_hh in rec_gemm (else cn_gemm)                                      */
    int spent;      /* a backward overwrote the activations (lstm, gru: forward must run again) */
    int gh_apart;   /* fill gh with b_hh rows, add h W_hh^T, and (rnn, lstm) add gh to xp_t after: the
                       order the store epilogues reproduce (test hook, mode 3) */
} rec_aux;

/* rec_gemm needs whole vectors in both recurrent products (N = GH forward, N = H backward). */
static int rec_fast(int H) { return H % 8 == 0; }

/* dW_hh = d_gh[1:]^T h[:-1] is one large product ([GH, (T-1)B] x [(T-1)B, H]). rec_gemm reads A (d_gh)
 * transposed without packing, over K in chunks of REC_DW_CHUNK_BYTES of d_gh and h rows that stay in
 * cache while every 8-row, 2-vector block of dW_hh passes over them; OpenBLAS packs both operands. Measured
 * by bench/kernels.sh (2-core AMD EPYC, AVX-512, OpenBLAS 0.3.21 Cooperlake, 1 thread; step ms, dW_hh in
 * rec_gemm / in OpenBLAS, the per-step products in rec_gemm either way; docs/performance.md has the
 * tables): rnn H 64 T 50 B 32 0.268 / 0.295, B 512 4.95 / 5.42, T 200 B 128 6.21 / 6.68; rnn H 128 B 32
 * 0.985 / 1.031, B 512 19.0 / 19.9; lstm H 64 B 32 1.08 / 1.17, T 200 4.85 / 5.15, B 512 22.8 / 23.1;
 * gru H 64 B 32 0.842 / 0.880, B 512 20.3-21.5 / 19.8-21.4 (even); lstm / gru H 128 and rnn / gru
 * H 256 within 3% either way, lstm H 256 15.4 / 14.7. So rec_gemm while W_hh has at most 128 x 128
 * elements (rnn to H 128, lstm to H 64, gru to H 72), OpenBLAS above. */
static int rec_dw_kernel(int GH, int H) { return (long)GH * H <= 128 * 128; }
/* rec_gemm's dW_hh runs over K in chunks of this many bytes of d_gh and h rows (a quarter of the L2 of the
 * cores measured, so a chunk stays there across the row and column blocks of dW_hh). */
#ifndef REC_DW_CHUNK_BYTES
#define REC_DW_CHUNK_BYTES (256 * 1024)
#endif

/* Test hook (cells.h): 1 forces rec_gemm for every W_hh product, 2 forces OpenBLAS (cn_gemm) for every
 * one, 4 rec_gemm for the per-step products and OpenBLAS for dW_hh, 0 (default) chooses as above. */
static int rec_force;
void cn__recurrent_force_kernel(int mode) { rec_force = mode; }

static int rec_gates(int kind) { return kind == CN_REC_LSTM ? 4 : kind == CN_REC_GRU ? 3 : 1; }

/* The elementwise work of one time step (everything but the W_hh product), for rows b0..b1 of the
 * batch: every row is independent and every vector kernel gives the same bits wherever a range starts or
 * ends, so splitting the rows over the pool changes no result. Forward (rnn, lstm: xt already holds
 * pre = xp_t + gh): the activations and cells, h_t. Backward: d pre (d gi, d gh for gru), the carried dc
 * (lstm) and the gru's direct part of dh_{t-1}. */
typedef struct {
    int kind, H, GH, B, carry;
    float *xt;          /* forward: xp_t (gru) or pre (rnn, lstm) -> activated gates; backward: the saved
                           activations of step t                                                    */
    float *gh;          /* forward, gru: b_hh + h_{t-1} W_hh^T [B, GH]                                */
    float *ht;          /* h_t                                                                      */
    float *cp, *cn;     /* lstm: c_{t-1}, c_t (forward writes cn)                                    */
    float *tc, *ghn;    /* lstm tanh(c_t), gru gh_n of step t                                        */
    const float *hp;    /* h_{t-1}                                                                  */
    float *dh, *dgh, *dc, *dhp;   /* backward: dL/dh_t, d gh (gru), carried dc, dL/dh_{t-1}; d pre / d gi go
                                     over xt */
} rec_rows;

static void rec_fwd_rows(const rec_rows *r, size_t b0, size_t b1)
{
    int H = r->H, GH = r->GH;
    size_t nb = b1 - b0, nh = nb * (size_t)H;
    float *xt = r->xt + b0 * GH, *ht = r->ht + b0 * H;
    if (r->kind == CN_REC_TANH || r->kind == CN_REC_RELU) {
        if (r->kind == CN_REC_TANH) cn_vtanh(ht, xt, nh);
        else for (size_t i = 0; i < nh; i++) ht[i] = xt[i] < 0.0f ? 0.0f : xt[i];   /* NaN stays */
    } else if (r->kind == CN_REC_LSTM) {
        const float *cp = r->cp + b0 * H;
        float *cn = r->cn + b0 * H, *tc = r->tc + b0 * H;
        for (size_t b = 0; b < nb; b++) {
            float *a = xt + b * GH;
            cn_vsigmoid(a, a, 2 * (size_t)H);
            cn_vtanh(a + 2 * H, a + 2 * H, (size_t)H);
            cn_vsigmoid(a + 3 * H, a + 3 * H, (size_t)H);
            lstm_c_row(a, cp + b * H, cn + b * H, H);
        }
        cn_vtanh(tc, cn, nh);
        for (size_t b = 0; b < nb; b++) cn_vmul(ht + b * H, xt + b * GH + 3 * H, tc + b * H, (size_t)H);
    } else {
        float *ghn = r->ghn + b0 * H, *gh = r->gh + b0 * GH;
        for (size_t b = 0; b < nb; b++) memcpy(ghn + b * H, gh + b * GH + 2 * H, sizeof(float) * (size_t)H);
        gru_step(xt, gh, r->hp + b0 * H, xt, ht, nb, H);   /* r, z, n overwrite xp_t row by row */
    }
}

static void rec_bwd_rows(const rec_rows *r, size_t b0, size_t b1)
{
    int H = r->H, GH = r->GH;
    size_t nb = b1 - b0, nh = nb * (size_t)H;
    const float *ht = r->ht + b0 * H, *dh = r->dh + b0 * H;
    float *dgi = r->xt + b0 * GH;   /* d pre (d gi for gru), over the gates: each read before it is written */
    if (r->kind == CN_REC_TANH) {
        cn_vtanh_backward(dgi, dh, ht, nh);
    } else if (r->kind == CN_REC_RELU) {
        /* threshold_backward on the pre-activation: pre <= 0 exactly when h <= 0 (NaN passes dy) */
        for (size_t i = 0; i < nh; i++) dgi[i] = ht[i] <= 0.0f ? 0.0f : dh[i];
    } else if (r->kind == CN_REC_LSTM) {
        const float *cp = r->cp + b0 * H, *tc = r->tc + b0 * H;
        for (size_t b = 0; b < nb; b++)
            lstm_bwd_row(dgi + b * GH, tc + b * H, cp + b * H, dh + b * H, r->dc + (b0 + b) * H, dgi + b * GH, H, r->carry);
    } else {
        gru_step_backward(dh, dgi, r->ghn + b0 * H, (size_t)H, r->hp + b0 * H, dgi, r->dgh + b0 * GH, 1,
                          r->dhp ? r->dhp + b0 * H : NULL, nb, H);
    }
}

/* With the pool (threads >= 2) a layer splits its batch: rows of a recurrent layer never meet (h_t's
 * row b depends on h_{t-1}'s row b only, forward and backward), so each thread runs the whole recurrence,
 * every time step, for its own rows, and the pass needs one hand-off instead of one or two per step. Rows
 * go out in fixed blocks of 8 (rec_gemm's row block); each element is computed by the same operations as
 * unsplit (rec_gemm's sums run over k in a fixed order whatever the rows; the cells are row by row), so
 * on the rec_gemm path any thread count gives the bits of one thread. The weight gradients, sums over
 * rows and steps, follow as whole products (cn_gemm_rows splits those by W's rows). A layer splits when each thread
 * gets at least REC_SPLIT_ROWS rows and the pass is worth a hand-off (REC_SPLIT_MIN multiply-adds of
 * W_hh products); measured by bench/threads.sh, see docs/performance.md. */
#ifndef REC_SPLIT_MIN
#define REC_SPLIT_MIN 262144.0
#endif
#define REC_SPLIT_ROWS 8

typedef struct {
    rec_aux *A;
    int T, B, H, GH, F;
    const float *w_hh, *b_hh;
    float *y, *dy;          /* the output [T, B, H] and its gradient (backward) */
    const float *x, *b_ih;  /* forward with A->wit: the input [T, B, F] and b_ih */
    float *gbh;             /* backward, one part only: b_hh's gradient, summed step by step while d gh_t
                               is in cache (else rec_bias_part's pass, in the same order) */
} rec_seq;

static void rec_fwd_seq(const rec_seq *q, int b0, int b1)
{
    rec_aux *A = q->A;
    int kind = A->kind, H = q->H, GH = q->GH, nb = b1 - b0;
    size_t BH = (size_t)q->B * H, BG = (size_t)q->B * GH;
    for (int t = 0; t < q->T; t++) {
        float *xt = A->act + t * BG, *ht = q->y + t * BH;
        const float *hp = t ? q->y + (t - 1) * BH : A->zero;
        float *gh = A->gh + (size_t)b0 * GH, *xb = xt + (size_t)b0 * GH;
        if (A->wit)   /* xp_t = b_ih + x_t W_ih^T, this step's rows only (then still in cache) */
            rec_gemm(nb, GH, q->F, q->x + ((size_t)t * q->B + b0) * q->F, q->F, 1, A->wit, 0, 1, q->b_ih, 1, xb, GH);
        if (kind != CN_REC_GRU && t && A->wt && !A->gh_apart) {   /* pre = xp_t + (b_hh + h W_hh^T), in place, without gh */
            rec_gemm(nb, GH, H, hp + (size_t)b0 * H, H, 1, A->wt, 0, 1, q->b_hh, 0, xb, GH);
        } else if (t && A->wt && !A->gh_apart) {   /* gru: gh = b_hh + h W_hh^T (bias rows in the store) */
            rec_gemm(nb, GH, H, hp + (size_t)b0 * H, H, 1, A->wt, 0, 1, q->b_hh, 1, gh, GH);
        } else {   /* gh = b_hh (+ h W_hh^T); rnn, lstm: pre = xp_t + gh */
            for (int b = 0; b < nb; b++) memcpy(gh + (size_t)b * GH, q->b_hh, sizeof(float) * (size_t)GH);
            if (t && A->wt) rec_gemm(nb, GH, H, hp + (size_t)b0 * H, H, 1, A->wt, 0, 1, NULL, 0, gh, GH);
            else if (t) cn_gemm(0, 1, nb, GH, H, 1.0f, hp + (size_t)b0 * H, H, q->w_hh, H, 1.0f, gh, GH);
            if (kind != CN_REC_GRU) cn_vadd_into(xb, gh, (size_t)nb * GH);
        }
        int lstm = kind == CN_REC_LSTM;
        rec_rows r = {kind, H, GH, q->B, 0, xt, A->gh, ht, lstm ? A->c + t * BH : NULL, lstm ? A->c + (t + 1) * BH : NULL,
                      lstm ? A->tc + t * BH : NULL, kind == CN_REC_GRU ? A->ghn + t * BH : NULL, hp,
                      NULL, NULL, NULL, NULL};
        rec_fwd_rows(&r, (size_t)b0, (size_t)b1);
    }
}

static void rec_bwd_seq(const rec_seq *q, int b0, int b1)
{
    rec_aux *A = q->A;
    int kind = A->kind, bptt = A->bptt, H = q->H, GH = q->GH, nb = b1 - b0;
    size_t BH = (size_t)q->B * H, BG = (size_t)q->B * GH;
    for (int t = q->T - 1; t >= 0; t--) {
        float *dh = q->dy + t * BH;                   /* complete: dY_t + what step t+1 sent back */
        const float *ht = q->y + t * BH, *hp = t ? q->y + (t - 1) * BH : A->zero;
        float *dgh = A->dgh + t * BG;
        int carry = t > 0 && !(bptt > 0 && t % bptt == 0);   /* gradient flows into h_{t-1}, c_{t-1} */
        rec_rows r = {kind, H, GH, q->B, carry, A->act + t * BG, NULL, (float *)ht, A->c ? A->c + t * BH : NULL, NULL,
                      A->tc ? A->tc + t * BH : NULL, A->ghn ? A->ghn + t * BH : NULL, hp,
                      dh, dgh, A->dc, carry ? q->dy + (t - 1) * BH : NULL};
        rec_bwd_rows(&r, (size_t)b0, (size_t)b1);
        if (q->gbh) cn_vcolsum_ld(q->gbh, dgh, (size_t)q->B, (size_t)GH, (size_t)GH);
        if (!carry) continue;
        float *dhp = q->dy + (t - 1) * BH + (size_t)b0 * H;
        if (A->wt) /* dh_{t-1} += d gh_t W_hh */
            rec_gemm(nb, H, GH, dgh + (size_t)b0 * GH, GH, 1, A->wt, 0, 1, NULL, 0, dhp, H);
        else
            cn_gemm(0, 0, nb, H, GH, 1.0f, dgh + (size_t)b0 * GH, GH, q->w_hh, H, 1.0f, dhp, H);
    }
}

static void rec_fwd_part(void *p, int part, int parts)
{
    const rec_seq *q = p;
    int b0, b1;
    cn_pool_range(q->B, REC_SPLIT_ROWS, part, parts, &b0, &b1);
    if (b1 > b0) rec_fwd_seq(q, b0, b1);
}

static void rec_bwd_part(void *p, int part, int parts)
{
    const rec_seq *q = p;
    int b0, b1;
    cn_pool_range(q->B, REC_SPLIT_ROWS, part, parts, &b0, &b1);
    if (b1 > b0) rec_bwd_seq(q, b0, b1);
}

/* The layer's other passes over whole arrays, split the same way when the layer splits (by rows or by
 * columns: every element gets the operations it gets unsplit): the bias rows of xp, the packing of W_hh,
 * and the bias gradients (column sums over every step and row, newest step first as the per-step graph)
 * with the weight gradients clipnn computes itself (W_ih's for few inputs, W_hh's in rec_gemm), by
 * columns of d pre, which are W's rows. */
typedef struct {
    float *dst;
    const float *src;
    int rows, cols;   /* fill: rows of dst, each a copy of src [cols]; pack: K, N */
    size_t sk, sj;
} rec_copy_job;

static void rec_fill_part(void *p, int part, int parts)
{
    const rec_copy_job *j = p;
    int r0, r1;
    cn_pool_range(j->rows, 64, part, parts, &r0, &r1);
    for (int r = r0; r < r1; r++) memcpy(j->dst + (size_t)r * j->cols, j->src, sizeof(float) * (size_t)j->cols);
}

static void rec_pack_part(void *p, int part, int parts)
{
    const rec_copy_job *j = p;
    int c0, c1;
    cn_pool_range(j->cols, 2 * rec_pack_width(j->cols), part, parts, &c0, &c1);
    rec_pack_cols(j->dst, j->src, j->rows, j->cols, j->sk, j->sj, c0, c1);
}

/* dW_hh rows r0 .. r1 += d_gh[1:]^T h[:-1] in rec_gemm, A read transposed, over K = (T-1) B rows in chunks
 * whose rows of d_gh and h stay in cache while every block of dW_hh passes over them (rec_gemm streams its K
 * rows once per block); the chunks add to dW_hh in order, so each element's sum is fixed by the shapes
 * alone, whatever the rows a call covers. */
static void rec_dwhh(int r0, int r1, int GH, int H, size_t K, const float *dgh, const float *h, float *dw)
{
    size_t kc = REC_DW_CHUNK_BYTES / (sizeof(float) * (size_t)(GH + H));
    if (kc < 64) kc = 64;
    for (size_t k0 = 0; k0 < K; k0 += kc)
        rec_gemm(r1 - r0, H, (int)(K - k0 < kc ? K - k0 : kc), dgh + k0 * GH + r0, 1, (size_t)GH, h + k0 * H, H, 0,
                 NULL, 0, dw + (size_t)r0 * H, H);
}

typedef struct {
    const rec_aux *A;
    float *gbh, *gbi;   /* b_hh, b_ih gradients (NULL: not needed) */
    int T, B, GH, F, H;
    float *gwi;         /* W_ih's gradient when rec_dwih computes it (with gbi), else NULL */
    const float *x;     /* the layer's input [T B, F] */
    float *gwh;         /* W_hh's gradient when rec_dwhh computes it, else NULL */
    const float *y;     /* the layer's output [T B, H] */
} rec_bias_job;

static void rec_bias_part(void *p, int part, int parts)
{
    const rec_bias_job *j = p;
    int c0, c1;
    cn_pool_range(j->GH, 16, part, parts, &c0, &c1);
    if (c1 <= c0) return;
    size_t BG = (size_t)j->B * j->GH, w = (size_t)(c1 - c0);
    if (j->gbh)
        for (int t = j->T - 1; t >= 0; t--) cn_vcolsum_ld(j->gbh + c0, j->A->dgh + t * BG + c0, (size_t)j->B, w, (size_t)j->GH);
    if (j->gwi) rec_dwih(c0, c1, j->F, (size_t)j->T * j->B, j->A->act, (size_t)j->GH, j->x, j->gwi, j->gbi);
    else if (j->gbi) cn_vcolsum_ld(j->gbi + c0, j->A->act + c0, (size_t)j->T * j->B, w, (size_t)j->GH);
    if (j->gwh) rec_dwhh(c0, c1, j->GH, j->H, (size_t)(j->T - 1) * j->B, j->A->dgh + BG, j->y, j->gwh);
}

/* Whether a layer splits over the pool: each thread gets at least REC_SPLIT_ROWS rows and the W_hh
 * products are worth the hand-offs. */
static int rec_splits(int T, int B, int GH, int H)
{
    int parts = cn_pool_parts();
    return parts > 1 && B >= parts * REC_SPLIT_ROWS && (double)(T - 1) * B * GH * H >= REC_SPLIT_MIN;
}

static void rec_run(int split, cn_pool_fn fn, void *arg)
{
    if (split) cn_pool_run(fn, arg);
    else fn(arg, 0, 1);
}

static void rec_forward(rec_aux *A, cn_var *y);

cn_var *cn_recurrent(cn_graph *g, int kind, cn_var *x, cn_var *w_ih, cn_var *w_hh, cn_var *b_ih, cn_var *b_hh, int bptt)
{
    if (!x || !w_ih || !w_hh || !b_ih || !b_hh || g->err) return cn__bad_input(g, "recurrent");
    if (kind < CN_REC_TANH || kind > CN_REC_GRU) return cn__arg_error(g, CN_ERR_ARG, "recurrent: unknown kind");
    if (bptt < 0) return cn__arg_error(g, CN_ERR_ARG, "recurrent: bptt must be >= 0");
    if (x->v.ndim != 3) return cn__shape_error(g, "recurrent", x, NULL, "x must be [T, B, F]");
    int T = x->v.shape[0], B = x->v.shape[1], F = x->v.shape[2], G = rec_gates(kind);
    if (w_hh->v.ndim != 2 || w_hh->v.shape[0] % G || w_hh->v.shape[0] != G * w_hh->v.shape[1])
        return cn__shape_error(g, "recurrent", w_hh, NULL, "weight_hh must be [G*H, H]");
    int H = w_hh->v.shape[1], GH = G * H;
    if (w_ih->v.ndim != 2 || w_ih->v.shape[0] != GH || w_ih->v.shape[1] != F)
        return cn__shape_error(g, "recurrent", x, w_ih, "weight_ih must be [G*H, F]");
    if (cn__numel(b_ih) != (size_t)GH || cn__numel(b_hh) != (size_t)GH)
        return cn__shape_error(g, "recurrent", b_ih, b_hh, "biases must have G*H elements");
    cn_var *in[5] = {x, w_ih, w_hh, b_ih, b_hh};
    cn_var *y = cn__node(g, CN_OP_RECURRENT, in, 5, 3, (int[]){T, B, H}, NULL);
    if (!y) return NULL;
    size_t BH = (size_t)B * H, BG = (size_t)B * GH, TB = (size_t)T * B;
    rec_aux *A = cn_arena_alloc(&g->arena, sizeof *A);
    if (!A) return cn__arg_error(g, CN_ERR_NOMEM, "recurrent: out of memory");
    memset(A, 0, sizeof *A);
    A->kind = kind;
    A->bptt = bptt;
    int ok = (A->act = cn_arena_floats(&g->arena, TB * GH, 0)) && (A->gh = cn_arena_floats(&g->arena, BG, 0)) &&
             (A->zero = cn_arena_floats(&g->arena, BH, 1));
    if (ok && kind == CN_REC_LSTM)
        ok = (A->c = cn_arena_floats(&g->arena, (TB + B) * H, 0)) && (A->tc = cn_arena_floats(&g->arena, TB * H, 0)) &&
             (A->dc = cn_arena_floats(&g->arena, BH, 0));
    if (ok && kind == CN_REC_GRU) ok = (A->ghn = cn_arena_floats(&g->arena, TB * H, 0)) != NULL;
    if (ok && rec_fast(H) && rec_force != 2 && T > 1) ok = (A->wt = cn_arena_floats(&g->arena, (size_t)H * GH, 0)) != NULL;
    if (ok && A->wt && F <= REC_IN_FEW) ok = (A->wit = cn_arena_floats(&g->arena, (size_t)F * GH, 0)) != NULL;
    if (ok && y->requires_grad) {
        A->dgh = A->act;
        if (kind == CN_REC_GRU) ok = (A->dgh = cn_arena_floats(&g->arena, TB * GH, 0)) != NULL;
    }
    if (!ok) return cn__arg_error(g, CN_ERR_NOMEM, "recurrent: out of memory for the saved sequence");
    A->dw_kernel = A->wt && (rec_force == 1 || ((rec_force == 0 || rec_force == 3) && rec_dw_kernel(GH, H)));
    A->gh_apart = rec_force == 3;
    y->aux = A;
    y->iarg[0] = kind;
    y->iarg[1] = bptt;
    rec_forward(A, y);
    return y;
}

/* The forward pass of the layer y over its whole sequence: y's values and the saved arrays in A. */
static void rec_forward(rec_aux *A, cn_var *y)
{
    cn_var *x = y->in[0], *w_ih = y->in[1], *w_hh = y->in[2], *b_ih = y->in[3], *b_hh = y->in[4];
    int kind = A->kind, T = y->v.shape[0], B = y->v.shape[1], H = y->v.shape[2], F = x->v.shape[2];
    int GH = rec_gates(kind) * H;
    size_t BH = (size_t)B * H, TB = (size_t)T * B;
    if (kind == CN_REC_LSTM) memset(A->c, 0, BH * sizeof(float));
    int split = rec_splits(T, B, GH, H);
    if (A->wit) {   /* W_ih^T [F, GH]; xp_t in the loop */
        rec_copy_job pack = {A->wit, w_ih->v.data, F, GH, 1, (size_t)F};
        rec_pack_part(&pack, 0, 1);
    } else {   /* xp = x W_ih^T + b_ih, as cn_linear: bias rows, then the product with beta = 1 */
        rec_copy_job fill = {A->act, b_ih->v.data, (int)TB, GH, 0, 0};
        rec_run(split, rec_fill_part, &fill);
        cn_gemm(0, 1, (int)TB, GH, F, 1.0f, x->v.data, F, w_ih->v.data, F, 1.0f, A->act, GH);
    }
    if (A->wt) {   /* W_hh^T [H, GH]: (k, j) = W_hh[j, k] */
        rec_copy_job pack = {A->wt, w_hh->v.data, H, GH, 1, (size_t)H};
        rec_run(split, rec_pack_part, &pack);
    }
    rec_seq q = {A, T, B, H, GH, F, w_hh->v.data, b_hh->v.data, y->v.data, NULL, x->v.data, b_ih->v.data, NULL};
    rec_run(split, rec_fwd_part, &q);
    A->spent = 0;
}

void cn__recurrent_backward(cn_var *y)
{
    cn_var *x = y->in[0], *w_ih = y->in[1], *w_hh = y->in[2], *b_ih = y->in[3], *b_hh = y->in[4];
    rec_aux *A = y->aux;
    if (A->spent) rec_forward(A, y);   /* a second backward: d pre of the first overwrote the gates */
    int kind = A->kind;
    int T = y->v.shape[0], B = y->v.shape[1], H = y->v.shape[2], F = x->v.shape[2], GH = rec_gates(kind) * H;
    size_t BH = (size_t)B * H, BG = (size_t)B * GH;
    if (kind == CN_REC_LSTM) memset(A->dc, 0, BH * sizeof(float));
    int split = rec_splits(T, B, GH, H);
    if (A->wt) {   /* W_hh [GH, H] itself, over forward's W_hh^T */
        rec_copy_job pack = {A->wt, w_hh->v.data, GH, H, (size_t)H, 1};
        rec_run(split, rec_pack_part, &pack);
    }
    float *gbh = b_hh->requires_grad ? b_hh->grad : NULL;
    rec_seq q = {A, T, B, H, GH, F, w_hh->v.data, b_hh->v.data, y->v.data, y->grad, NULL, NULL, split ? NULL : gbh};
    rec_run(split, rec_bwd_part, &q);
    if (!split) gbh = NULL;   /* done */
    A->spent = kind == CN_REC_LSTM || kind == CN_REC_GRU;   /* rnn's backward reads h, not act */
    int few = w_ih->requires_grad && F <= REC_IN_FEW;   /* dW_ih in rec_dwih, with the b_ih gradient */
    int dw_here = w_hh->requires_grad && T > 1 && A->dw_kernel;   /* dW_hh in rec_dwhh, with the biases */
    rec_bias_job bias = {A, gbh, b_ih->requires_grad ? b_ih->grad : NULL, T, B, GH, F, H,
                         few ? w_ih->grad : NULL, x->v.data, dw_here ? w_hh->grad : NULL, y->v.data};
    if (bias.gbh || bias.gbi || bias.gwi || bias.gwh) rec_run(split, rec_bias_part, &bias);
    size_t TB = (size_t)T * B;
    if (w_hh->requires_grad && T > 1 && !dw_here)
        cn_gemm_rows(1, 0, GH, H, (int)(TB - B), 1.0f, A->dgh + BG, GH, y->v.data, H, 1.0f, w_hh->grad, H);
    if (x->requires_grad) cn_gemm(0, 0, (int)TB, F, GH, 1.0f, A->act, GH, w_ih->v.data, F, 1.0f, x->grad, F);
    if (w_ih->requires_grad && !few) cn_gemm_rows(1, 0, GH, F, (int)TB, 1.0f, A->act, GH, x->v.data, F, 1.0f, w_ih->grad, F);
}

