/* Private to src/autograd: node creation and the error paths shared by graph.c, ops.c and recurrent.c, and
 * the backward rules of recurrent.c that ops.c's op table registers. */
#ifndef CN_AUTOGRAD_INTERNAL_H
#define CN_AUTOGRAD_INTERNAL_H

#include "autograd/autograd.h"

/* Creates the output node of `op` with the given inputs and shape. When
 * `view` is non-NULL the value aliases that memory (no allocation); otherwise
 * an uninitialised value buffer comes from the arena. The node needs a
 * gradient when any input does (and the graph is not in no-grad mode); it is
 * taped then. Returns NULL (recording the error) on failure. */
cn_var *cn__node(cn_graph *g, int op, cn_var **in, int n_in, int ndim, const int *shape, float *view);
/* Records `st` as the graph's error if it is the first; returns NULL. */
cn_var *cn__fail(cn_graph *g, cn_status st);
/* An op given a NULL input or called on a failed graph: keeps the first failure's status and message when
 * the graph has failed, else records CN_ERR_ARG with "<op>: an input is NULL". Returns NULL. */
cn_var *cn__bad_input(cn_graph *g, const char *op);
/* CN_ERR_SHAPE with "<op>: <why> (shapes <a> and <b>)" (b may be NULL). Returns NULL. */
cn_var *cn__shape_error(cn_graph *g, const char *op, const cn_var *a, const cn_var *b, const char *why);
/* `st` with the message `msg`. Returns NULL. */
cn_var *cn__arg_error(cn_graph *g, cn_status st, const char *msg);

static inline size_t cn__numel(const cn_var *v) { return cn_numel(&v->v); }

void cn__lstm_cell_c_backward(cn_var *y);
void cn__lstm_cell_h_backward(cn_var *y);
void cn__gru_cell_backward(cn_var *y);
void cn__recurrent_backward(cn_var *y);

#endif
