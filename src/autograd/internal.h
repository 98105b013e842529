/* Private to src/autograd: node creation shared by graph.c and ops.c. */
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

#endif
