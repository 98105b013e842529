/* clipnn autograd: reverse mode on a tape.
 *
 * The whole idea on one screen:
 *   1. Forward: every op computes its value at once (eager) and, when any input
 *      needs a gradient, appends its output node to the graph's tape. The tape
 *      is therefore in topological order.
 *   2. Backward: give every taped node a zeroed gradient buffer, set
 *      d(loss)/d(loss) = 1, and walk the tape in reverse; each op's backward rule
 *      adds its contribution into the gradients of its inputs (+=, so a value used
 *      twice gets both contributions).
 *   3. Parameters are leaves whose value and gradient are views into the
 *      cn_paramset blocks, so backward accumulates straight into the flat
 *      gradient block that the clip stage and the optimizer read.
 *
 * Memory: values, gradients and op scratch come from the graph's arena, which
 * cn_graph_reset() recycles; once the first step has sized it, a step allocates
 * nothing. Nodes that need no gradient are never taped and cost no backward work.
 *
 * Errors: ops return NULL on error and record the first error in the graph;
 * an op given a NULL input returns NULL, so a forward pass can be written
 * without checks and tested once with cn_graph_status() or cn_backward().
 *
 * Shapes: a tensor of rank > 2 is seen by matrix ops as [rows, last dim];
 * sequences are time-major [T, B, F]. */
#ifndef CN_AUTOGRAD_H
#define CN_AUTOGRAD_H

#include "../tensor/tensor.h"
#include "../tensor/rng.h"

typedef enum {
    CN_OP_LEAF = 0,
    CN_OP_ADD, CN_OP_SUB, CN_OP_MUL, CN_OP_SCALE,
    CN_OP_MATMUL, CN_OP_LINEAR, CN_OP_TRANSPOSE,
    CN_OP_TANH, CN_OP_SIGMOID, CN_OP_RELU, CN_OP_EXP, CN_OP_LOG,
    CN_OP_SUM, CN_OP_MEAN,
    CN_OP_SLICE_COLS, CN_OP_CONCAT_COLS,
    CN_OP_NARROW, CN_OP_SELECT, CN_OP_RESHAPE, CN_OP_CONCAT0,
    CN_OP_EMBEDDING, CN_OP_DROPOUT,
    CN_OP_MSE, CN_OP_CROSS_ENTROPY, CN_OP_BCE_LOGITS,
    CN_OP_LSTM_CELL_C, CN_OP_LSTM_CELL_H, CN_OP_GRU_CELL,
    CN_OP_RECURRENT,
    CN_OP_COUNT
} cn_op_id;

typedef struct cn_var cn_var;
struct cn_var {
    cn_tensor v;            /* value                                              */
    float *grad;            /* gradient, same layout as v; NULL if not needed     */
    int requires_grad;
    int op;                 /* cn_op_id                                           */
    cn_var **in;            /* inputs                                             */
    int n_in;
    int iarg[4];            /* op-specific integer arguments                      */
    float farg[2];          /* op-specific float arguments                        */
    void *aux;              /* op-specific saved data (arena)                     */
    const int32_t *ints;    /* caller's integer data (labels, indices); must stay
                               alive until backward                               */
    double scalar;          /* scalar results (losses, sum, mean) in double       */
};

typedef struct {
    cn_arena arena;
    cn_var **tape;
    size_t n_tape, cap_tape;
    int no_grad;            /* 1: record nothing, compute values only             */
    int training;           /* 1: dropout active                                  */
    cn_rng *rng;            /* for dropout masks; may be NULL when unused         */
    /* Data-parallel slice: the batch in this graph is examples [batch_lo, batch_lo + n) of a global
     * batch of batch_total, n = batch_n (batch_total 0: the graph holds the whole batch). Dropout then
     * draws the masks of the whole global batch from rng and keeps its own rows, so masks and the RNG's
     * state match a one-process run whatever the number of ranks. */
    int batch_lo, batch_n, batch_total;
    cn_status err;          /* first error since the last reset                   */
} cn_graph;

typedef struct {
    const char *name;
    void (*backward)(cn_var *out);  /* adds into the inputs' gradients; NULL for leaves and views */
    int is_view;                    /* value and gradient alias the first input's memory */
} cn_op_def;

const cn_op_def *cn_op_info(int op);

cn_status cn_graph_init(cn_graph *g);
/* Forgets every node; keeps (and, if needed, consolidates) the memory. */
cn_status cn_graph_reset(cn_graph *g);
void cn_graph_free(cn_graph *g);
cn_status cn_graph_status(const cn_graph *g);

/* Leaves. */
cn_var *cn_input(cn_graph *g, const cn_tensor *t);            /* no gradient; data not copied */
cn_var *cn_leaf(cn_graph *g, const cn_tensor *t, float *grad); /* gradient accumulates into grad,
                                                                   or a zeroed arena buffer if NULL */
cn_var *cn_param(cn_graph *g, const cn_paramset *ps, int index);
cn_var *cn_zeros(cn_graph *g, int ndim, const int *shape);     /* new zeroed constant */

/* The value of a [1] node in double: exact double for sum, mean and losses. */
double cn_scalar_value(const cn_var *v);

/* Runs backward from a scalar (numel 1) loss, seeding d(loss) = 1. */
cn_status cn_backward(cn_graph *g, cn_var *loss);

/* Elementwise binary ops. b has a's shape, or b has numel == last dim of a
 * (broadcast over rows, e.g. a bias), or numel 1 (broadcast scalar). */
cn_var *cn_add(cn_graph *g, cn_var *a, cn_var *b);
cn_var *cn_sub(cn_graph *g, cn_var *a, cn_var *b);
cn_var *cn_mul(cn_graph *g, cn_var *a, cn_var *b);
cn_var *cn_scale(cn_graph *g, cn_var *a, float s);

/* op(a) op(b) with op = transpose when the flag is set. With trans_a = 0, a may
 * have rank > 2 (rows flattened; the output keeps a's leading dims). b is 2-D. */
cn_var *cn_matmul(cn_graph *g, cn_var *a, cn_var *b, int trans_a, int trans_b);
/* x W^T + b (PyTorch nn.Linear): x [..., in], W [out, in], b [out] or NULL. */
cn_var *cn_linear(cn_graph *g, cn_var *x, cn_var *w, cn_var *b);
cn_var *cn_transpose(cn_graph *g, cn_var *a);                  /* 2-D */

cn_var *cn_tanh(cn_graph *g, cn_var *a);
cn_var *cn_sigmoid(cn_graph *g, cn_var *a);
cn_var *cn_relu(cn_graph *g, cn_var *a);
cn_var *cn_exp(cn_graph *g, cn_var *a);
cn_var *cn_log(cn_graph *g, cn_var *a);

cn_var *cn_sum(cn_graph *g, cn_var *a);                        /* -> [1], double accumulation */
cn_var *cn_mean(cn_graph *g, cn_var *a);                       /* -> [1], double accumulation */

/* Feature axis (last dim): copy of columns [start, start+len); concatenation. */
cn_var *cn_slice_cols(cn_graph *g, cn_var *a, int start, int len);
cn_var *cn_concat_cols(cn_graph *g, cn_var **parts, int n);
/* First axis (time for [T,B,F]); views, no copy. */
cn_var *cn_narrow(cn_graph *g, cn_var *a, int start, int len); /* keeps the axis     */
cn_var *cn_select(cn_graph *g, cn_var *a, int index);          /* drops the axis     */
cn_var *cn_reshape(cn_graph *g, cn_var *a, int ndim, const int *shape);
/* Concatenation along the first axis; with `stack` = 1 the inputs get a new
 * first axis ([B,H] x T -> [T,B,H]). */
cn_var *cn_concat0(cn_graph *g, cn_var **parts, int n, int stack);

/* Rows of w [V, D] picked by idx (n = product of idx_shape) -> [idx_shape..., D]. */
cn_var *cn_embedding(cn_graph *g, cn_var *w, const int32_t *idx, int idx_ndim, const int *idx_shape);
/* Inverted dropout: in training, zero with probability p and scale by 1/(1-p);
 * identity otherwise. Needs g->rng when training and p > 0. */
cn_var *cn_dropout(cn_graph *g, cn_var *a, float p);

/* Losses (mean reduction, as PyTorch's defaults), -> [1] with .scalar in double. */
cn_var *cn_mse(cn_graph *g, cn_var *pred, cn_var *target);
/* logits [..., C] seen as rows; labels: one int per row, in [0, C). */
cn_var *cn_cross_entropy(cn_graph *g, cn_var *logits, const int32_t *labels);
cn_var *cn_bce_with_logits(cn_graph *g, cn_var *logits, cn_var *target);

/* A whole single-layer recurrent network over a sequence in ONE node (PyTorch nn.RNN / nn.LSTM / nn.GRU with
 * h0 = c0 = 0): x [T, B, F], w_ih [G*H, F], w_hh [G*H, H], b_ih and b_hh [G*H] (G = 1, 4, 3; gate order as
 * PyTorch: lstm i, f, g, o; gru r, z, n). Returns every hidden state, [T, B, H] (take cn_select(.., T-1) for
 * the last). bptt = k > 0: truncated BPTT, the gradient from step t into h_{t-1} (and c_{t-1}) is cut at
 * t = k, 2k, ... (values are not changed). The same network as the per-step graph of cn_linear, cn_add and
 * per-step LSTM/GRU cells, equal to float rounding (bit-identical when H % 8 != 0; when H % 8 == 0 the W_hh products
 * use a dedicated kernel with W_hh^T packed once per sequence, which sums in another order); backward runs
 * the whole BPTT loop and computes each weight gradient with one product over all steps. */
enum { CN_REC_TANH = 0, CN_REC_RELU, CN_REC_LSTM, CN_REC_GRU };
cn_var *cn_recurrent(cn_graph *g, int kind, cn_var *x, cn_var *w_ih, cn_var *w_hh, cn_var *b_ih, cn_var *b_hh, int bptt);

/* ---- Finite-difference gradient check ----
 * f builds a scalar loss from the graph inputs (created by the checker as
 * gradient-requiring leaves over copies of `inputs`, in that order) and, if
 * `ps` is given, from parameters of ps. Every element of every input (and of
 * ps) is perturbed by +-eps; the central difference of the loss (read in
 * double from .scalar) is compared with the analytic gradient:
 * pass when |analytic - numeric| <= atol + rtol * |numeric| everywhere. */
typedef cn_var *(*cn_gradcheck_fn)(cn_graph *g, cn_var **inputs, void *ctx);

typedef struct {
    double eps, atol, rtol;
} cn_gradcheck_opts;

typedef struct {
    int ok;
    size_t n_checked;
    double max_abs_err;
    double worst_ratio;     /* error / (atol + rtol |numeric|) at the worst element */
    int worst_input;        /* index into inputs, or n_inputs + param index */
    size_t worst_index;
    double worst_analytic, worst_numeric;
} cn_gradcheck_result;

cn_status cn_gradcheck(cn_gradcheck_fn f, void *ctx, const cn_tensor *inputs, int n_inputs,
                       cn_paramset *ps, const cn_gradcheck_opts *opts, cn_gradcheck_result *res);

#endif
