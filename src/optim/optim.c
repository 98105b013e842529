/* SGD, Adam and AdamW with PyTorch 1.13's update rules (torch/optim/sgd.py, adam.py, adamw.py,
 * _single_tensor_* functions). All parameters share one hyper-parameter group, so each update is one loop
 * over the flat parameter block; the state arrays have the same layout as ps->data. */
#include "optim/optim.h"
#include "json/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { OPT_SGD, OPT_ADAM, OPT_ADAMW };
static const char *const opt_names[] = {"sgd", "adam", "adamw", NULL};

struct cn_optim {
    int type;
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps;
    int nesterov;
    size_t total;             /* floats in the parameter block this state was sized for */
    int nparams;
    float *buf1;              /* sgd: momentum_buffer; adam(w): exp_avg     (NULL when unused) */
    float *buf2;              /* adam(w): exp_avg_sq                        (NULL when unused) */
    long long step;           /* optimizer steps taken (torch keeps one per parameter; all are equal here) */
};

static cn_status parse_betas(cJSON *obj, const char *path, double *b1, double *b2)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "betas");
    char p[256], d[96];
    cn_json_join(p, sizeof p, path, "betas");
    if (!v) {
        *b1 = 0.9;
        *b2 = 0.999;
        const double def[2] = {0.9, 0.999};
        return cn_json_set(obj, "betas", cJSON_CreateDoubleArray(def, 2));
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return cn_error(CN_ERR_ARG, "%s: expected a list of two numbers in [0, 1), got %s", p, cn_json_describe(v, d, sizeof d));
    double b[2];
    for (int i = 0; i < 2; i++) {
        cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0.0 && e->valuedouble < 1.0))
            return cn_error(CN_ERR_ARG, "%s.%d: expected a number in [0, 1), got %s", p, i, cn_json_describe(e, d, sizeof d));
        b[i] = e->valuedouble;
    }
    *b1 = b[0];
    *b2 = b[1];
    return CN_OK;
}

cn_status cn_optim_from_json(cJSON *opt_json, const char *path, const cn_paramset *ps, cn_optim **out)
{
    static const char *const k_sgd[] = {"type", "lr", "momentum", "dampening", "nesterov", "weight_decay", NULL};
    static const char *const k_adam[] = {"type", "lr", "betas", "eps", "weight_decay", NULL};
    *out = NULL;
    cn_status st;
    const char *type;
    if ((st = cn_json_expect_object(opt_json, path))) return st;
    if ((st = cn_json_string(opt_json, path, "type", 1, NULL, opt_names, &type))) return st;
    if (!ps->finalized) return cn_error(CN_ERR_STATE, "%s: the parameter set is not finalized", path);
    cn_optim o = {0};
    for (o.type = 0; strcmp(opt_names[o.type], type); o.type++) {}
    if (o.type == OPT_SGD) {
        /* torch.optim.SGD(lr=required, momentum=0, dampening=0, weight_decay=0, nesterov=False) */
        if ((st = cn_json_check_keys(opt_json, path, k_sgd)) ||
            (st = cn_json_number(opt_json, path, "lr", 1, 0, 0, 1, INFINITY, 0, &o.lr)) ||
            (st = cn_json_number(opt_json, path, "momentum", 0, 0, 0, 0, INFINITY, 0, &o.momentum)) ||
            (st = cn_json_number(opt_json, path, "dampening", 0, 0, 0, 0, 1, 0, &o.dampening)) ||
            (st = cn_json_bool(opt_json, path, "nesterov", 0, 0, &o.nesterov)) ||
            (st = cn_json_number(opt_json, path, "weight_decay", 0, 0, 0, 0, INFINITY, 0, &o.weight_decay)))
            return st;
        if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
            return cn_error(CN_ERR_ARG, "%s.nesterov: needs momentum > 0 and dampening = 0 (as torch.optim.SGD)", path);
    } else {
        /* torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0); AdamW: weight_decay=1e-2 */
        if ((st = cn_json_check_keys(opt_json, path, k_adam)) ||
            (st = cn_json_number(opt_json, path, "lr", 0, 1e-3, 0, 1, INFINITY, 0, &o.lr)) ||
            (st = parse_betas(opt_json, path, &o.beta1, &o.beta2)) ||
            (st = cn_json_number(opt_json, path, "eps", 0, 1e-8, 0, 0, INFINITY, 0, &o.eps)) ||
            (st = cn_json_number(opt_json, path, "weight_decay", 0, o.type == OPT_ADAMW ? 1e-2 : 0.0, 0, 0,
                                 INFINITY, 0, &o.weight_decay)))
            return st;
    }
    o.total = ps->total;
    o.nparams = ps->count;
    int nbuf = o.type == OPT_SGD ? (o.momentum != 0) : 2;
    cn_optim *p = cn_calloc(1, sizeof *p);
    if (!p) return cn_error(CN_ERR_NOMEM, "out of memory for the optimizer");
    *p = o;
    size_t n = o.total ? o.total : 1;
    if ((nbuf >= 1 && !(p->buf1 = cn_calloc(n, sizeof(float)))) || (nbuf >= 2 && !(p->buf2 = cn_calloc(n, sizeof(float))))) {
        cn_optim_free(p);
        return cn_error(CN_ERR_NOMEM, "out of memory for the optimizer state (%zu floats x %d)", o.total, nbuf);
    }
    *out = p;
    return CN_OK;
}

double cn_optim_lr(const cn_optim *o) { return o->lr; }
const char *cn_optim_type(const cn_optim *o) { return opt_names[o->type]; }
long long cn_optim_steps(const cn_optim *o) { return o->step; }

void cn_optim_free(cn_optim *o)
{
    if (!o) return;
    cn_free(o->buf1);
    cn_free(o->buf2);
    cn_free(o);
}

static cn_status check_ps(const cn_optim *o, const cn_paramset *ps, const char *what)
{
    if (!ps->finalized || ps->total != o->total || ps->count != o->nparams)
        return cn_error(CN_ERR_STATE, "optimizer %s: the parameter set differs from the one the optimizer was made for", what);
    return CN_OK;
}

/* torch _single_tensor_sgd. Gaps between parameters (alignment padding) hold zeros in data and grad and
 * stay zero, so the loop runs over the whole block. */
static void sgd_step(cn_optim *o, float *p, const float *g, size_t n, double lr)
{
    const float wd = (float)o->weight_decay, mom = (float)o->momentum, damp1 = (float)(1.0 - o->dampening);
    const float neg_lr = (float)-lr;
    float *buf = o->buf1;
    const int first = o->step == 0;
    for (size_t j = 0; j < n; j++) {
        float d = g[j];
        if (wd != 0.0f) d = d + wd * p[j];                   /* d_p = d_p.add(param, alpha=weight_decay) */
        if (buf) {
            if (first) buf[j] = d;                           /* buf = torch.clone(d_p) */
            else buf[j] = buf[j] * mom + damp1 * d;          /* buf.mul_(momentum).add_(d_p, alpha=1 - dampening) */
            d = o->nesterov ? d + mom * buf[j] : buf[j];     /* d_p.add(buf, alpha=momentum) or buf */
        }
        p[j] = p[j] + neg_lr * d;                            /* param.add_(d_p, alpha=-lr) */
    }
}

/* torch _single_tensor_adam / _single_tensor_adamw (amsgrad = False, maximize = False). */
static void adam_step(cn_optim *o, float *p, const float *g, size_t n, double lr)
{
    long long t = o->step + 1;
    const float b1 = (float)o->beta1, b2 = (float)o->beta2;
    const float a1 = (float)(1.0 - o->beta1), a2 = (float)(1.0 - o->beta2);
    const int adamw = o->type == OPT_ADAMW;
    const float wd = (float)o->weight_decay;
    const float decay = (float)(1.0 - lr * o->weight_decay);          /* param.mul_(1 - lr * weight_decay) */
    /* Python floats (double): bias_correction1 = 1 - beta1 ** step, step_size = lr / bias_correction1,
     * bias_correction2_sqrt = sqrt(1 - beta2 ** step); applied to float tensors as float scalars. */
    const double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    const float neg_step_size = (float)-(lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)o->eps;
    float *m = o->buf1, *v = o->buf2;
    for (size_t j = 0; j < n; j++) {
        float gj = g[j];
        if (adamw) {
            if (wd != 0.0f) p[j] = p[j] * decay;
        } else if (wd != 0.0f) {
            gj = gj + wd * p[j];                                     /* grad = grad.add(param, alpha=wd) */
        }
        m[j] = m[j] * b1 + a1 * gj;                                  /* exp_avg.mul_(b1).add_(grad, alpha=1-b1) */
        v[j] = v[j] * b2 + a2 * gj * gj;                             /* exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2) */
        float denom = sqrtf(v[j]) / bc2_sqrt + eps;                  /* (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps) */
        p[j] = p[j] + neg_step_size * m[j] / denom;                  /* param.addcdiv_(exp_avg, denom, value=-step_size) */
    }
}

cn_status cn_optim_step(cn_optim *o, cn_paramset *ps, double lr)
{
    cn_status st = check_ps(o, ps, "step");
    if (st) return st;
    if (!(lr >= 0.0) || isinf(lr)) return cn_error(CN_ERR_ARG, "optimizer step: learning rate %g is not a finite number >= 0", lr);
    if (o->type == OPT_SGD) sgd_step(o, ps->data, ps->grad, ps->total, lr);
    else adam_step(o, ps->data, ps->grad, ps->total, lr);
    o->step++;
    return CN_OK;
}

/* The state item names of parameter i: k = 0 momentum_buffer or exp_avg, k = 1 exp_avg_sq. */
static void item_name(char *out, size_t n, const cn_optim *o, const cn_paramset *ps, int i, int k)
{
    const char *what = o->type == OPT_SGD ? "momentum_buffer" : k == 0 ? "exp_avg" : "exp_avg_sq";
    snprintf(out, n, "optim.%s.%s", ps->info[i].name, what);
}

cn_status cn_optim_save_state(const cn_optim *o, const cn_paramset *ps, cn_state *out)
{
    cn_status st = check_ps(o, ps, "save");
    if (st) return st;
    if ((st = cn_state_add(out, "optim.step", CN_DT_I64, 0, NULL, (void *)&o->step))) return st;
    float *bufs[2] = {o->buf1, o->buf2};
    for (int i = 0; i < ps->count; i++)
        for (int k = 0; k < 2 && bufs[k]; k++) {
            const cn_param_info *pi = &ps->info[i];
            int64_t shape[4];
            for (int d = 0; d < pi->ndim; d++) shape[d] = pi->shape[d];
            char name[CN_NAME_MAX + 48];
            item_name(name, sizeof name, o, ps, i, k);
            if ((st = cn_state_add(out, name, CN_DT_F32, pi->ndim, shape, bufs[k] + pi->offset))) return st;
        }
    return CN_OK;
}

cn_status cn_optim_load_state(cn_optim *o, const cn_paramset *ps, const cn_state *in)
{
    cn_status st = check_ps(o, ps, "load");
    if (st) return st;
    long long step;
    if ((st = cn_state_copy_out(in, "optim.step", CN_DT_I64, 1, &step))) return st;
    if (step < 0) return cn_error(CN_ERR_FORMAT, "state 'optim.step' is negative (%lld)", step);
    float *bufs[2] = {o->buf1, o->buf2};
    for (int i = 0; i < ps->count; i++)
        for (int k = 0; k < 2 && bufs[k]; k++) {
            char name[CN_NAME_MAX + 48];
            item_name(name, sizeof name, o, ps, i, k);
            if ((st = cn_state_copy_out(in, name, CN_DT_F32, ps->info[i].numel, bufs[k] + ps->info[i].offset))) return st;
        }
    o->step = step;
    return CN_OK;
}
