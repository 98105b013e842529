/* Finite-difference gradient checker (central differences, loss read in double). */
#include "autograd/autograd.h"

#include <math.h>
#include <string.h>

/* Builds the loss once; with want_grad the inputs get gradient buffers `grads`. */
static cn_status eval_loss(cn_graph *g, cn_gradcheck_fn f, void *ctx, cn_tensor *in, int n, float **grads,
                           int want_grad, double *loss)
{
    cn_var *vars[16];
    cn_status st = cn_graph_reset(g);
    if (st) return st;
    g->no_grad = !want_grad;
    for (int i = 0; i < n; i++) vars[i] = want_grad ? cn_leaf(g, &in[i], grads[i]) : cn_input(g, &in[i]);
    cn_var *l = f(g, vars, ctx);
    if (!l) return g->err ? g->err : cn_error(CN_ERR_ARG, "gradcheck: the loss function returned no loss");
    if (cn_numel(&l->v) != 1) return cn_error(CN_ERR_SHAPE, "gradcheck: the loss is not a scalar");
    *loss = cn_scalar_value(l);
    if (want_grad) return cn_backward(g, l);
    return CN_OK;
}

static void compare(cn_gradcheck_result *r, const cn_gradcheck_opts *o, int input, size_t index, double an, double nu)
{
    double err = fabs(an - nu);
    double ratio = err / (o->atol + o->rtol * fabs(nu));   /* > 1 fails; NaN fails */
    r->n_checked++;
    if (!(ratio <= 1.0)) r->ok = 0;
    if (!(err <= r->max_abs_err)) r->max_abs_err = err;
    if (r->worst_input < 0 || !(ratio <= r->worst_ratio)) {
        r->worst_ratio = ratio;
        r->worst_input = input;
        r->worst_index = index;
        r->worst_analytic = an;
        r->worst_numeric = nu;
    }
}

/* Perturbs x[j] by +-eps and returns the central difference of the loss. */
static cn_status numeric_grad(cn_graph *g, cn_gradcheck_fn f, void *ctx, cn_tensor *in, int n, float *x,
                              double eps, double *out)
{
    float x0 = *x;
    float xp = (float)(x0 + eps), xm = (float)(x0 - eps);
    double lp, lm;
    cn_status st;
    *x = xp;
    if ((st = eval_loss(g, f, ctx, in, n, NULL, 0, &lp))) { *x = x0; return st; }
    *x = xm;
    st = eval_loss(g, f, ctx, in, n, NULL, 0, &lm);
    *x = x0;
    if (st) return st;
    *out = (lp - lm) / ((double)xp - (double)xm);   /* the step actually taken in float */
    return CN_OK;
}

cn_status cn_gradcheck(cn_gradcheck_fn f, void *ctx, const cn_tensor *inputs, int n_inputs,
                       cn_paramset *ps, const cn_gradcheck_opts *opts, cn_gradcheck_result *res)
{
    cn_gradcheck_opts o = opts ? *opts : (cn_gradcheck_opts){1e-3, 1e-4, 1e-2};
    if (n_inputs < 0 || n_inputs > 16) return cn_error(CN_ERR_ARG, "gradcheck: at most 16 inputs");
    memset(res, 0, sizeof *res);
    res->ok = 1;
    res->worst_input = -1;

    cn_tensor in[16] = {0};   /* zeroed: the cleanup frees in[i].data for every i */
    float *grads[16] = {0}, *pgrad = NULL;
    cn_status st = CN_OK;
    cn_graph g;
    cn_graph_init(&g);
    g.training = 0;
    for (int i = 0; i < n_inputs; i++) {
        in[i] = inputs[i];
        in[i].data = NULL;
        size_t n = cn_numel(&inputs[i]);
        in[i].data = cn_malloc(n * sizeof(float));
        grads[i] = cn_calloc(n, sizeof(float));
        if (!in[i].data || !grads[i]) { st = cn_error(CN_ERR_NOMEM, "gradcheck: out of memory"); goto done; }
        memcpy(in[i].data, inputs[i].data, n * sizeof(float));
    }
    double loss;
    if (ps) cn_paramset_zero_grad(ps);
    if ((st = eval_loss(&g, f, ctx, in, n_inputs, grads, 1, &loss))) goto done;
    if (ps) {
        pgrad = cn_malloc(ps->total * sizeof(float) + 1);
        if (!pgrad) { st = cn_error(CN_ERR_NOMEM, "gradcheck: out of memory"); goto done; }
        memcpy(pgrad, ps->grad, ps->total * sizeof(float));
    }
    for (int i = 0; i < n_inputs; i++) {
        size_t n = cn_numel(&in[i]);
        for (size_t j = 0; j < n; j++) {
            double nu;
            if ((st = numeric_grad(&g, f, ctx, in, n_inputs, &in[i].data[j], o.eps, &nu))) goto done;
            compare(res, &o, i, j, grads[i][j], nu);
        }
    }
    if (ps)
        for (int p = 0; p < ps->count; p++)
            for (size_t j = 0; j < ps->info[p].numel; j++) {
                size_t k = ps->info[p].offset + j;
                double nu;
                if ((st = numeric_grad(&g, f, ctx, in, n_inputs, &ps->data[k], o.eps, &nu))) goto done;
                compare(res, &o, n_inputs + p, j, pgrad[k], nu);
            }
done:
    for (int i = 0; i < n_inputs; i++) { cn_free(in[i].data); cn_free(grads[i]); }
    cn_free(pgrad);
    cn_graph_free(&g);
    return st;
}
