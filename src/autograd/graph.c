/* The tape: node creation, leaves, the backward pass, and the error paths every op shares. Op rules are in
 * ops.c (generic) and recurrent.c. */
#include "autograd/internal.h"
#include "tensor/pool.h"

#include <string.h>

cn_status cn_graph_init(cn_graph *g)
{
    memset(g, 0, sizeof *g);
    cn_arena_init(&g->arena, 1u << 20);
    g->training = 1;
    return CN_OK;
}

cn_status cn_graph_reset(cn_graph *g)
{
    g->n_tape = 0;
    g->err = CN_OK;
    return cn_arena_reset(&g->arena);
}

void cn_graph_free(cn_graph *g)
{
    cn_arena_free(&g->arena);
    cn_free(g->tape);
    g->tape = NULL;
    g->n_tape = g->cap_tape = 0;
}

cn_status cn_graph_status(const cn_graph *g) { return g->err; }

cn_var *cn__fail(cn_graph *g, cn_status st)
{
    if (!g->err) g->err = st;
    return NULL;
}

cn_var *cn__bad_input(cn_graph *g, const char *op)
{
    if (g->err) return NULL;   /* a NULL input from an earlier failure: that failure's message stands */
    cn_error(CN_ERR_ARG, "%s: an input is NULL", op);
    return cn__fail(g, CN_ERR_ARG);
}

cn_var *cn__shape_error(cn_graph *g, const char *op, const cn_var *a, const cn_var *b, const char *why)
{
    char sa[64], sb[64];
    cn_error(CN_ERR_SHAPE, "%s: %s (shapes %s and %s)", op, why, cn_shape_str(&a->v, sa, sizeof sa),
             b ? cn_shape_str(&b->v, sb, sizeof sb) : "-");
    return cn__fail(g, CN_ERR_SHAPE);
}

cn_var *cn__arg_error(cn_graph *g, cn_status st, const char *msg)
{
    cn_error(st, "%s", msg);
    return cn__fail(g, st);
}

static cn_status tape_push(cn_graph *g, cn_var *v)
{
    if (g->n_tape == g->cap_tape) {
        size_t cap = g->cap_tape ? g->cap_tape * 2 : 256;
        cn_var **t = cn_realloc(g->tape, cap * sizeof *t);
        if (!t) return cn_error(CN_ERR_NOMEM, "out of memory growing the autograd tape to %zu nodes", cap);
        g->tape = t;
        g->cap_tape = cap;
    }
    g->tape[g->n_tape++] = v;
    return CN_OK;
}

cn_var *cn__node(cn_graph *g, int op, cn_var **in, int n_in, int ndim, const int *shape, float *view)
{
    if (g->err) return NULL;
    cn_var *v = cn_arena_alloc(&g->arena, sizeof *v + sizeof(cn_var *) * (size_t)n_in);
    if (!v) {
        cn_error(CN_ERR_NOMEM, "out of memory for an autograd node (%s)", cn_op_info(op)->name);
        return cn__fail(g, CN_ERR_NOMEM);
    }
    memset(v, 0, sizeof *v);
    v->op = op;
    v->n_in = n_in;
    v->in = (cn_var **)(v + 1);
    for (int i = 0; i < n_in; i++) {
        v->in[i] = in[i];
        if (in[i]->requires_grad) v->requires_grad = 1;
    }
    if (g->no_grad) v->requires_grad = 0;
    cn_status st = cn_tensor_view(&v->v, view, ndim, shape);
    if (st) {
        cn_error_prefix(st, "%s", cn_op_info(op)->name);
        return cn__fail(g, st);
    }
    if (!view) {
        v->v.data = cn_arena_floats(&g->arena, cn_numel(&v->v), 0);
        if (!v->v.data) {
            cn_error(CN_ERR_NOMEM, "out of memory for the value of %s (%zu floats)", cn_op_info(op)->name, cn_numel(&v->v));
            return cn__fail(g, CN_ERR_NOMEM);
        }
    }
    if (v->requires_grad && (st = tape_push(g, v))) return cn__fail(g, st);
    return v;
}

static cn_var *new_leaf(cn_graph *g, const cn_tensor *t)
{
    if (g->err) return NULL;
    if (!t || !t->data) {
        cn_error(CN_ERR_ARG, "leaf tensor has no data");
        return cn__fail(g, CN_ERR_ARG);
    }
    return cn__node(g, CN_OP_LEAF, NULL, 0, t->ndim, t->shape, t->data);
}

cn_var *cn_input(cn_graph *g, const cn_tensor *t) { return new_leaf(g, t); }

cn_var *cn_leaf(cn_graph *g, const cn_tensor *t, float *grad)
{
    cn_var *v = new_leaf(g, t);
    if (!v || g->no_grad) return v;
    v->requires_grad = 1;
    v->grad = grad ? grad : cn_arena_floats(&g->arena, cn_numel(&v->v), 1);
    if (!v->grad) {
        cn_error(CN_ERR_NOMEM, "out of memory for a leaf gradient");
        return cn__fail(g, CN_ERR_NOMEM);
    }
    return v;
}

cn_var *cn_param(cn_graph *g, const cn_paramset *ps, int index)
{
    if (g->err) return NULL;
    if (!ps->finalized || index < 0 || index >= ps->count) {
        cn_error(CN_ERR_ARG, "parameter index %d is not in a finalized parameter set of %d", index, ps->count);
        return cn__fail(g, CN_ERR_ARG);
    }
    cn_tensor t = cn_param_value(ps, index);
    return cn_leaf(g, &t, ps->grad + ps->info[index].offset);
}

cn_var *cn_zeros(cn_graph *g, int ndim, const int *shape)
{
    cn_var *v = cn__node(g, CN_OP_LEAF, NULL, 0, ndim, shape, NULL);
    if (v) memset(v->v.data, 0, cn_numel(&v->v) * sizeof(float));
    return v;
}

/* Views share their input's gradient buffer at the same offset. */
static float *view_grad(cn_var *v)
{
    cn_var *src = v->in[0];
    return src->grad + (v->v.data - src->v.data);
}

/* A gradient buffer is zeroed over the pool when it is large (cn_pool_for). */
static void zero_range(void *p, size_t i0, size_t i1) { memset((float *)p + i0, 0, (i1 - i0) * sizeof(float)); }

cn_status cn_backward(cn_graph *g, cn_var *loss)
{
    if (g->err) return g->err;
    if (!loss) return cn_error(CN_ERR_ARG, "backward: no loss");
    if (cn_numel(&loss->v) != 1) {
        char b[64];
        return cn_error(CN_ERR_SHAPE, "backward: loss must be a scalar, got shape %s", cn_shape_str(&loss->v, b, sizeof b));
    }
    if (!loss->requires_grad) return CN_OK;    /* nothing depends on a parameter */
    /* Tape order is topological, so an input's buffer exists before a view of it.
     * A second backward on the same graph zeroes the intermediate gradients left by
     * the first (leaves are never taped, so their gradients keep accumulating). */
    for (size_t i = 0; i < g->n_tape; i++) {
        cn_var *v = g->tape[i];
        if (cn_op_info(v->op)->is_view) {
            if (!v->grad) v->grad = view_grad(v);
        } else {
            if (!v->grad) v->grad = cn_arena_floats(&g->arena, cn_numel(&v->v), 0);
            if (!v->grad) return g->err = cn_error(CN_ERR_NOMEM, "out of memory for gradients");
            cn_pool_for(cn_numel(&v->v), 1024, CN_ELEM_SPLIT_MIN, zero_range, v->grad);
        }
    }
    loss->grad[0] += 1.0f;
    for (size_t i = g->n_tape; i-- > 0;) {
        cn_var *v = g->tape[i];
        const cn_op_def *d = cn_op_info(v->op);
        if (d->backward) d->backward(v);
    }
    return CN_OK;
}
