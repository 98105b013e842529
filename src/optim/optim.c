/* SGD, Adam and AdamW with PyTorch 1.13's update rules (torch/optim/sgd.py, adam.py, adamw.py,
 * _single_tensor_* functions). All parameters share one hyper-parameter group, so each update is one
 * elementwise pass over the flat parameter block (split over the worker pool at threads >= 2); the state
 * arrays have the same layout as ps->data. */
#include "optim/optim.h"
#include "json/json.h"
#include "tensor/vec.h"

#include <limits.h>
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

const char *const cn_optim_common_keys[] = {"type", "lr", "weight_decay", NULL};
static const char *const k_sgd[] = {"type", "lr", "momentum", "dampening", "nesterov", "weight_decay", NULL};
static const char *const k_adam[] = {"type", "lr", "betas", "eps", "weight_decay", NULL};

const char *const *cn_optim_type_keys(const char *type)
{
    for (int t = 0; opt_names[t]; t++)
        if (!strcmp(opt_names[t], type)) return t == OPT_SGD ? k_sgd : k_adam;
    return NULL;
}

cn_status cn_optim_from_json(cJSON *opt_json, const char *path, const cn_paramset *ps, cn_optim **out)
{
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
            (st = cn_json_number(opt_json, path, "lr", &(cn_json_num){.required = 1, .lo = 0, .lo_open = 1, .hi = INFINITY}, &o.lr)) ||
            (st = cn_json_number(opt_json, path, "momentum", &(cn_json_num){.lo = 0, .hi = INFINITY}, &o.momentum)) ||
            (st = cn_json_number(opt_json, path, "dampening", &(cn_json_num){.lo = 0, .hi = 1}, &o.dampening)) ||
            (st = cn_json_bool(opt_json, path, "nesterov", 0, 0, &o.nesterov)) ||
            (st = cn_json_number(opt_json, path, "weight_decay", &(cn_json_num){.lo = 0, .hi = INFINITY}, &o.weight_decay)))
            return st;
        if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
            return cn_error(CN_ERR_ARG, "%s.nesterov: needs momentum > 0 and dampening = 0 (as torch.optim.SGD)", path);
    } else {
        /* torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0); AdamW: weight_decay=1e-2 */
        if ((st = cn_json_check_keys(opt_json, path, k_adam)) ||
            (st = cn_json_number(opt_json, path, "lr", &(cn_json_num){.def = 1e-3, .lo = 0, .lo_open = 1, .hi = INFINITY}, &o.lr)) ||
            (st = parse_betas(opt_json, path, &o.beta1, &o.beta2)) ||
            (st = cn_json_number(opt_json, path, "eps", &(cn_json_num){.def = 1e-8, .lo = 0, .hi = INFINITY}, &o.eps)) ||
            (st = cn_json_number(opt_json, path, "weight_decay", &(cn_json_num){.def = o.type == OPT_ADAMW ? 1e-2 : 0.0, .lo = 0, .hi = INFINITY}, &o.weight_decay)))
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

/* The element loops below run 8 lanes at a time (tensor/vec.h): the same IEEE operations in the same order
 * as the scalar formulas, lane by lane, so the results are bit-identical to the scalar tail and to
 * PyTorch's float arithmetic. */

/* torch _single_tensor_sgd, one element (also the vector body: T is float or v8f):
 *   d_p = d_p.add(param, alpha=weight_decay); buf = torch.clone(d_p) on the first step, else
 *   buf.mul_(momentum).add_(d_p, alpha=1 - dampening); d_p = d_p.add(buf, alpha=momentum) (nesterov) or buf;
 *   param.add_(d_p, alpha=-lr). The flags are compile-time constants in each specialised loop below. */
#define SGD_ELEM(T, p, g, buf, HAS_WD, HAS_BUF, FIRST, NESTEROV)                 \
    do {                                                                         \
        T d = (g);                                                               \
        if (HAS_WD) d = d + wd * (p);                                            \
        if (HAS_BUF) {                                                           \
            if (FIRST) (buf) = d;                                                \
            else (buf) = (buf) * mom + damp1 * d;                                \
            d = (NESTEROV) ? d + mom * (buf) : (buf);                            \
        }                                                                        \
        (p) = (p) + neg_lr * d;                                                  \
    } while (0)

VINLINE void sgd_loop(float *p, const float *g, float *buf, size_t n, float wd, float mom, float damp1, float neg_lr,
                      int HAS_WD, int HAS_BUF, int FIRST, int NESTEROV)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v8f pv = vld(p + j), bv = HAS_BUF && !FIRST ? vld(buf + j) : V8F(0.0f);
        SGD_ELEM(v8f, pv, vld(g + j), bv, HAS_WD, HAS_BUF, FIRST, NESTEROV);
        vst(p + j, pv);
        if (HAS_BUF) vst(buf + j, bv);
    }
    for (; j < n; j++) {
        float bj = HAS_BUF && !FIRST ? buf[j] : 0.0f;
        SGD_ELEM(float, p[j], g[j], bj, HAS_WD, HAS_BUF, FIRST, NESTEROV);
        if (HAS_BUF) buf[j] = bj;
    }
}

/* One loop per configuration (weight decay, momentum buffer, first step, nesterov): no branch per element.
 * The key is wd | buf << 1 | first << 2 | nesterov << 3; first step and nesterov exist only with a buffer.
 * Returns 0, or -1 for a combination without a loop (nothing is updated then). */
static VCLONES int sgd_dispatch(float *p, const float *g, float *buf, size_t n, float wd, float mom, float damp1,
                                float neg_lr, int has_wd, int has_buf, int first, int nesterov)
{
    switch (has_wd | has_buf << 1 | first << 2 | nesterov << 3) {
    case 0x0: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 0, 0, 0, 0); return 0;
    case 0x1: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 1, 0, 0, 0); return 0;
    case 0x2: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 0, 1, 0, 0); return 0;
    case 0x3: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 1, 1, 0, 0); return 0;
    case 0x6: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 0, 1, 1, 0); return 0;
    case 0x7: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 1, 1, 1, 0); return 0;
    case 0xa: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 0, 1, 0, 1); return 0;
    case 0xb: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 1, 1, 0, 1); return 0;
    case 0xe: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 0, 1, 1, 1); return 0;
    case 0xf: sgd_loop(p, g, buf, n, wd, mom, damp1, neg_lr, 1, 1, 1, 1); return 0;
    default: return -1;
    }
}

/* The update runs over the parameter block's ranges (cn_paramset_for_ranges, tensor.h): with threads >= 2
 * each thread updates the rows of every parameter whose gradient it wrote (cn_gemm_rows) and whose weights
 * it reads in the forward pass. The update is elementwise, so every element gets the same operations
 * whatever the split; measured by bench/threads.sh (docs/performance.md). */
typedef struct {
    float *p, *buf;
    const float *g;
    float wd, mom, damp1, neg_lr;
    int has_wd, has_buf, first, nesterov;
} sgd_job;

static void sgd_range(const void *arg, size_t j0, size_t j1)
{
    const sgd_job *j = arg;
    (void)sgd_dispatch(j->p + j0, j->g + j0, j->buf ? j->buf + j0 : NULL, j1 - j0, j->wd, j->mom, j->damp1,
                       j->neg_lr, j->has_wd, j->has_buf, j->first, j->nesterov);
}

/* torch _single_tensor_sgd */
static cn_status sgd_step(cn_optim *o, const cn_paramset *ps, double lr)
{
    sgd_job j = {ps->data, o->buf1, ps->grad, (float)o->weight_decay, (float)o->momentum, (float)(1.0 - o->dampening),
                 (float)-lr, 0, 0, 0, 0};
    j.has_wd = j.wd != 0.0f;
    j.has_buf = j.buf != NULL;
    j.first = j.buf && o->step == 0;
    j.nesterov = j.buf && o->nesterov;
    /* an empty call tells whether the combination has a loop, before anything is updated */
    if (sgd_dispatch(j.p, j.g, j.buf, 0, j.wd, j.mom, j.damp1, j.neg_lr, j.has_wd, j.has_buf, j.first, j.nesterov))
        return cn_error(CN_ERR_STATE, "optimizer step: no sgd loop for weight decay %d, buffer %d, first step %d, nesterov %d",
                        j.has_wd, j.has_buf, j.first, j.nesterov);
    cn_paramset_for_ranges(ps, sgd_range, &j);
    return CN_OK;
}

/* torch _single_tensor_adam / _single_tensor_adamw (amsgrad = False, maximize = False), one element:
 *   adamw: param.mul_(1 - lr * weight_decay);  adam: grad = grad.add(param, alpha=weight_decay);
 *   exp_avg.mul_(b1).add_(grad, alpha=1-b1);  exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1-b2);
 *   denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps);  param.addcdiv_(exp_avg, denom, value=-step_size).
 * T is float or v8f, SQRT the matching correctly rounded square root (so vector and scalar agree bit for bit). */
#define ADAM_ELEM(T, SQRT, K, p, g, m, v, DECAY, GRAD_WD)                        \
    do {                                                                         \
        T gj = (g);                                                              \
        if (DECAY) (p) = (p) * (K).decay;                                        \
        if (GRAD_WD) gj = gj + (K).wd * (p);                                     \
        (m) = (m) * (K).b1 + (K).a1 * gj;                                        \
        (v) = (v) * (K).b2 + (K).a2 * gj * gj;                                   \
        T denom = SQRT(v) / (K).bc2_sqrt + (K).eps;                              \
        (p) = (p) + (K).neg_step_size * (m) / denom;                             \
    } while (0)

typedef struct {
    float b1, b2, a1, a2, wd, decay, neg_step_size, bc2_sqrt, eps;
} adam_k;

/* The loops read the constants from a local copy: through the pointer, every store to p, m or v could
 * alias them and force a reload. */
VINLINE void adam_tail(const adam_k *k, float *p, const float *g, float *m, float *v, size_t j, size_t n,
                       int DECAY, int GRAD_WD)
{
    const adam_k c = *k;
    for (; j < n; j++) ADAM_ELEM(float, sqrtf, c, p[j], g[j], m[j], v[j], DECAY, GRAD_WD);
}

/* One loop per configuration: adam, adam with weight decay, adamw with weight decay (adamw with 0 = adam). */
static void adam_generic(const adam_k *k, float *p, const float *g, float *m, float *v, size_t n, int decay_on, int grad_wd)
{
    if (decay_on) adam_tail(k, p, g, m, v, 0, n, 1, 0);
    else if (grad_wd) adam_tail(k, p, g, m, v, 0, n, 0, 1);
    else adam_tail(k, p, g, m, v, 0, n, 0, 0);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#include <immintrin.h>
#define ADAM_AVX 1
#define VSQRT(x) ((v8f)_mm256_sqrt_ps((__m256)(x)))
__attribute__((target("avx"))) VINLINE void adam_avx_loop(const adam_k *k, float *p, const float *g, float *m,
                                                         float *v, size_t n, int DECAY, int GRAD_WD)
{
    const adam_k c = *k;
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v8f pv = vld(p + j), mv = vld(m + j), vv = vld(v + j);
        ADAM_ELEM(v8f, VSQRT, c, pv, vld(g + j), mv, vv, DECAY, GRAD_WD);
        vst(p + j, pv);
        vst(m + j, mv);
        vst(v + j, vv);
    }
    adam_tail(k, p, g, m, v, j, n, DECAY, GRAD_WD);
}
__attribute__((target("avx"))) static void adam_avx(const adam_k *k, float *p, const float *g, float *m, float *v,
                                                    size_t n, int decay_on, int grad_wd)
{
    if (decay_on) adam_avx_loop(k, p, g, m, v, n, 1, 0);
    else if (grad_wd) adam_avx_loop(k, p, g, m, v, n, 0, 1);
    else adam_avx_loop(k, p, g, m, v, n, 0, 0);
}
#endif

typedef struct {
    adam_k k;
    float *p, *m, *v;
    const float *g;
    int decay_on, grad_wd;
} adam_job;

static void adam_range(const void *arg, size_t j0, size_t j1)
{
    const adam_job *j = arg;
#ifdef ADAM_AVX
    if (__builtin_cpu_supports("avx")) {
        adam_avx(&j->k, j->p + j0, j->g + j0, j->m + j0, j->v + j0, j1 - j0, j->decay_on, j->grad_wd);
        return;
    }
#endif
    adam_generic(&j->k, j->p + j0, j->g + j0, j->m + j0, j->v + j0, j1 - j0, j->decay_on, j->grad_wd);
}

static void adam_step(cn_optim *o, const cn_paramset *ps, double lr)
{
    long long t = o->step + 1;
    const int adamw = o->type == OPT_ADAMW;
    adam_k k;
    k.b1 = (float)o->beta1;
    k.b2 = (float)o->beta2;
    k.a1 = (float)(1.0 - o->beta1);
    k.a2 = (float)(1.0 - o->beta2);
    k.wd = (float)o->weight_decay;
    k.decay = (float)(1.0 - lr * o->weight_decay);                  /* param.mul_(1 - lr * weight_decay) */
    /* Python floats (double): bias_correction1 = 1 - beta1 ** step, step_size = lr / bias_correction1,
     * bias_correction2_sqrt = sqrt(1 - beta2 ** step); applied to float tensors as float scalars. */
    const double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    k.neg_step_size = (float)-(lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.eps = (float)o->eps;
    adam_job j = {k, ps->data, o->buf1, o->buf2, ps->grad, adamw && k.wd != 0.0f, !adamw && k.wd != 0.0f};
    cn_paramset_for_ranges(ps, adam_range, &j);
}

cn_status cn_optim_step(cn_optim *o, cn_paramset *ps, double lr)
{
    cn_status st = check_ps(o, ps, "step");
    if (st) return st;
    if (!(lr >= 0.0) || isinf(lr)) {
        char lb[32];
        return cn_error(CN_ERR_ARG, "optimizer step: learning rate %s is not a finite number >= 0", cn_fmt_g(lb, sizeof lb, lr, 6));
    }
    /* the step count never wraps (a loaded state is at most the run's step; this guards other callers) */
    if (o->step == LLONG_MAX) return cn_error(CN_ERR_STATE, "optimizer step: the step count is at its maximum");
    if (o->type == OPT_SGD) {
        if ((st = sgd_step(o, ps, lr))) return st;
    } else {
        adam_step(o, ps, lr);
    }
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

/* Values a saved state can hold. A run whose non-finite policy is "propagate" carries NaN and inf into
 * the moments, so those are kept (resuming must reproduce the run bit for bit); what no run can produce
 * is rejected: a negative second moment (an average of squares), a non-zero moment before the first step
 * (the buffers start at zero), a step count outside [0, max_step]. */
static cn_status check_buffer(const char *name, const float *v, size_t n, int second_moment, long long step)
{
    for (size_t j = 0; j < n; j++) {
        if (step == 0 && v[j] != 0.0f)
            return cn_error(CN_ERR_FORMAT, "state '%s': element %zu is %g at optimizer step 0, where every moment is 0",
                            name, j, (double)v[j]);
        if (second_moment && v[j] < 0.0f)
            return cn_error(CN_ERR_FORMAT, "state '%s': element %zu is %g, but a second moment is never negative",
                            name, j, (double)v[j]);
    }
    return CN_OK;
}

cn_status cn_optim_load_state(cn_optim *o, const cn_paramset *ps, const cn_state *in, long long max_step)
{
    cn_status st = check_ps(o, ps, "load");
    if (st) return st;
    int64_t step;
    if ((st = cn_state_get_i64(in, "optim.step", &step))) return st;
    if (step < 0 || step > max_step)
        return cn_error(CN_ERR_FORMAT, "state 'optim.step': %lld is outside [0, %lld]", (long long)step, max_step);
    /* everything is checked before anything is copied: a rejected state leaves the optimizer as it was */
    float *bufs[2] = {o->buf1, o->buf2};
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ps->count; i++)
            for (int k = 0; k < 2 && bufs[k]; k++) {
                const cn_param_info *pi = &ps->info[i];
                int64_t shape[4];
                for (int d = 0; d < pi->ndim; d++) shape[d] = pi->shape[d];
                char name[CN_NAME_MAX + 48];
                item_name(name, sizeof name, o, ps, i, k);
                const cn_state_item *it;
                if ((st = cn_state_get(in, name, CN_DT_F32, pi->ndim, shape, &it))) return st;
                if (pass == 0 && (st = check_buffer(name, it->data, pi->numel, k == 1, step))) return st;
                if (pass == 1) memcpy(bufs[k] + pi->offset, it->data, pi->numel * sizeof(float));
            }
    o->step = step;
    return CN_OK;
}

cn_status cn_optim_new(const cn_optim_opts *opts, const cn_paramset *ps, cn_optim **out)
{
    *out = NULL;
    if ((unsigned)opts->type > CN_OPTIM_ADAMW) return cn_error(CN_ERR_ARG, "optimizer.type: unknown type %d", (int)opts->type);
    cJSON *j = cJSON_CreateObject();
    if (!j) return cn_error(CN_ERR_NOMEM, "out of memory building the optimizer");
    cn_status st = cn_json_set(j, "type", cJSON_CreateString(opt_names[opts->type]));
    if (!st) st = cn_json_set_opt(j, "lr", opts->lr);
    if (!st) st = cn_json_set_opt(j, "weight_decay", opts->weight_decay);
    if (opts->type == CN_OPTIM_SGD) {
        if (!st) st = cn_json_set_opt(j, "momentum", opts->momentum);
        if (!st) st = cn_json_set_opt(j, "dampening", opts->dampening);
        if (!st && opts->nesterov) st = cn_json_set(j, "nesterov", cJSON_CreateTrue());
    } else {
        if (!st) st = cn_json_set_opt(j, "eps", opts->eps);
        if (!st && (opts->beta1 != 0 || opts->beta2 != 0)) {
            double b[2] = {opts->beta1 == 0 ? 0.9 : opts->beta1, opts->beta2 == 0 ? 0.999 : opts->beta2};
            for (int i = 0; i < 2; i++) if (b[i] == CN_ZERO) b[i] = 0.0;
            st = cn_json_set(j, "betas", cJSON_CreateDoubleArray(b, 2));
        }
    }
    if (!st) st = cn_optim_from_json(j, "optimizer", ps, out);
    cJSON_Delete(j);
    return st;
}
