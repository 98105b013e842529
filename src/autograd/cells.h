/* The per-step recurrent cells, one node per time step: the reference the fused cn_recurrent is held to
 * (same formulas and operation order; the tests check each cell by finite differences and the fused layer
 * against the per-step graph built from cn_linear, cn_add and these cells). Not part of the public API
 * (not installed): a model uses cn_recurrent, which runs the whole sequence in one node. Defined in
 * recurrent.c. */
#ifndef CN_AUTOGRAD_CELLS_H
#define CN_AUTOGRAD_CELLS_H

#include "autograd/autograd.h"

/* (A vanilla RNN cell needs none: h' = tanh(linear(x) + linear(h)).)
 * LSTM, gates [B, 4H] = pre-activations in order i, f, g, o:
 * c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c'). */
cn_var *cn_lstm_cell_c(cn_graph *g, cn_var *gates, cn_var *c);
cn_var *cn_lstm_cell_h(cn_graph *g, cn_var *gates, cn_var *c_new);
/* GRU (PyTorch): gi = x W_ih^T + b_ih [B,3H], gh = h W_hh^T + b_hh [B,3H], order r, z, n:
 * r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r * gh_n), h' = (1 - z) * n + z * h. */
cn_var *cn_gru_cell(cn_graph *g, cn_var *gi, cn_var *gh, cn_var *h);

/* Tests only: the kernel of cn_recurrent's W_hh products. 0 = the default size-based choice, 1 = clipnn's
 * kernel (rec_gemm) for all three when H % 8 == 0, 2 = OpenBLAS (cn_gemm) for all three, 3 = as 0 but
 * the forward step's b_hh + h W_hh^T is formed in a separate array (bias rows first) and then, for rnn
 * and lstm, added to x W_ih^T + b_ih (the order rec_gemm's bias epilogues reproduce), 4 = rec_gemm for
 * the per-step products and OpenBLAS for dW_hh whatever the size. Applies to the
 * layers built after the call (process-wide, not thread-safe: set it before building graphs). */
void cn__recurrent_force_kernel(int mode);

/* Tests only: the layer's W_ih and b_ih gradient kernel for F <= 8 inputs, columns c0 .. c1 of d [R, ld]:
 * dw[j, f] += sum over r of d[r, j] x[r, f] (x [R, F], dw [., F]); gb[j] += d[0, j] + d[1, j] + ... in
 * row order (gb may be NULL). */
void cn__recurrent_dw_ih(int c0, int c1, int F, size_t R, const float *d, size_t ld, const float *x, float *dw, float *gb);

/* Tests only: the fused layer's row kernels (16-lane, 8-lane and scalar parts must give the same bits).
 * LSTM backward of one row: a [4H] = s(i), s(f), tanh(g), s(o), tc = tanh(c'), cp = c, dh, dc in/out,
 * dg [4H] written (may be a), carry: dc <- dc' s(f) or 0. GRU backward of B rows: s [B, 3H] = r, z, n,
 * xh [B, xh_stride] from gh_n, hp = h; dgi, dgh [B, 3H] added or, with set, written (dgi may be s); dh
 * added (any of the three may be NULL). */
void cn__lstm_bwd_row(const float *a, const float *tc, const float *cp, const float *dh, float *dc, float *dg, int H,
                      int carry);
void cn__gru_step_backward(const float *dy, const float *s, const float *xh, size_t xh_stride, const float *hp,
                           float *dgi, float *dgh, int set, float *dh, size_t B, int H);

#endif
