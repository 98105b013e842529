/* Built-in clip modes. Each: a struct whose first member is cn_clipper, a create
 * function that reads (and fills) its JSON object, and the vtable. Formulas and
 * sources are in docs/clipping.md and src/clip/README.md. */
#include "clip/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void free_plain(cn_clipper *self) { cn_free(self); }

static void *new_clipper(size_t size, const cn_clipper_ops *ops, const char *path)
{
    cn_clipper *c = cn_calloc(1, size);
    if (!c) {
        cn_error(CN_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    c->ops = ops;
    return c;
}

/* ======================= none: report only ======================= */

static cn_status none_apply(cn_clipper *self, cn_clip_ctx *ctx) { return CN_OK; }
static const cn_clipper_ops none_ops = {none_apply, NULL, NULL, free_plain, NULL};

static cn_status none_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    *out = new_clipper(sizeof(cn_clipper), &none_ops, path);
    return *out ? CN_OK : CN_ERR_NOMEM;
}

const cn_clip_mode_def cn_clip_mode_none = {"none", NULL, 0, 0, none_create};

/* ======================= value: elementwise clamp ======================= */
/* PyTorch clip_grad_value_ / Keras clipvalue: g <- clamp(g, -c, c). Written with
 * comparisons: NaN compares false both ways and stays NaN (fminf/fmaxf would
 * return c for a NaN); +inf -> c, -inf -> -c. */

typedef struct {
    cn_clipper base;
    float c;
} value_clipper;

static cn_status value_apply(cn_clipper *self, cn_clip_ctx *ctx)
{
    const float c = ((value_clipper *)self)->c;
    long long k = 0;
    for (int i = 0; i < ctx->ps->count; i++) {
        float *g = ctx->ps->grad + ctx->ps->info[i].offset;
        for (size_t j = 0; j < ctx->ps->info[i].numel; j++) {
            if (g[j] > c) { g[j] = c; k++; }
            else if (g[j] < -c) { g[j] = -c; k++; }
        }
    }
    ctx->n_elems_clipped = k;
    ctx->clipped = k > 0;
    ctx->modified = k > 0;
    ctx->threshold = c;
    return CN_OK;
}

static const cn_clipper_ops value_ops = {value_apply, NULL, NULL, free_plain, NULL};
static const char *const value_keys[] = {"clip_value", NULL};

static cn_status value_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    double c;
    cn_status st = cn_json_number(obj, path, "clip_value", &(cn_json_num){.required = 1, .lo = 0, .lo_open = 1, .hi = INFINITY}, &c);
    if (st) return st;
    if (!((float)c > 0) || isinf((float)c)) {
        char p[200];
        cn_json_join(p, sizeof p, path, "clip_value");
        return cn_error(CN_ERR_ARG, "%s: %g is not a positive finite float32", p, c);
    }
    value_clipper *v = new_clipper(sizeof *v, &value_ops, path);
    if (!v) return CN_ERR_NOMEM;
    v->c = (float)c;
    *out = &v->base;
    return CN_OK;
}

const cn_clip_mode_def cn_clip_mode_value = {"value", value_keys, 0, 1, value_create};

/* ======================= norm: global norm ======================= */
/* PyTorch clip_grad_norm_ (eps 1e-6) or TF/Optax clip_by_global_norm (eps 0); see cn_clip_coef. */

typedef struct {
    cn_clipper base;
    double max_norm, norm_type, eps;
} norm_clipper;

static cn_status norm_apply(cn_clipper *self, cn_clip_ctx *ctx)
{
    norm_clipper *n = (norm_clipper *)self;
    double N = cn_clip_total_norm(ctx->stats, ctx->ps, n->norm_type);
    double coef = cn_clip_coef(n->max_norm, N, n->eps);
    cn_clip_scale(ctx->ps, coef);
    ctx->coef = coef;
    ctx->threshold = n->max_norm;
    ctx->clipped = coef < 1.0;
    ctx->modified = !(coef == 1.0);   /* NaN coef (propagate) changes everything */
    return CN_OK;
}

static double norm_norm_type(const cn_clipper *self) { return ((const norm_clipper *)self)->norm_type; }

static const cn_clipper_ops norm_ops = {norm_apply, NULL, NULL, free_plain, norm_norm_type};
static const char *const norm_keys[] = {"max_norm", "norm_type", "eps", NULL};

/* norm_type: a number p >= 1 or "inf" (default 2, filled in). PyTorch takes any p > 0, but below 1
 * (sum |g|^p)^(1/p) is not a norm (no triangle inequality) and grows like n^(1/p) with the number of
 * elements: p = 0.01 on 1000 gradients of about 1 gives 1e300, p = 1e-300 gives inf, and every update
 * is then scaled to nothing while the run reports no problem. For p >= 1 the norm of a finite float32
 * gradient is finite and at least max |g| (cn_clip_total_norm), so a clip threshold keeps its meaning. */
static cn_status get_norm_type(cJSON *obj, const char *path, double *p)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "norm_type");
    if (!v) {
        *p = 2.0;
        return cn_json_set(obj, "norm_type", cJSON_CreateNumber(2.0));
    }
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "inf")) {
        *p = INFINITY;
        return CN_OK;
    }
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 1) {
        *p = v->valuedouble;
        return CN_OK;
    }
    char q[200], d[96];
    cn_json_join(q, sizeof q, path, "norm_type");
    return cn_error(CN_ERR_ARG, "%s: expected a number >= 1 or \"inf\", got %s", q, cn_json_describe(v, d, sizeof d));
}

static cn_status norm_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    double max_norm, p, eps;
    cn_status st;
    if ((st = cn_json_number(obj, path, "max_norm", &(cn_json_num){.required = 1, .lo = 0, .lo_open = 1, .hi = INFINITY}, &max_norm))) return st;
    if ((st = get_norm_type(obj, path, &p))) return st;
    if ((st = cn_json_number(obj, path, "eps", &(cn_json_num){.def = CN_CLIP_TORCH_EPS, .lo = 0, .hi = INFINITY}, &eps))) return st;
    norm_clipper *n = new_clipper(sizeof *n, &norm_ops, path);
    if (!n) return CN_ERR_NOMEM;
    n->max_norm = max_norm;
    n->norm_type = p;
    n->eps = eps;
    *out = &n->base;
    return CN_OK;
}

const cn_clip_mode_def cn_clip_mode_norm = {"norm", norm_keys, 1, 1, norm_create};

/* ======================= norm_per_tensor ======================= */
/* Keras clipnorm (tf.clip_by_norm per variable): g_i <- g_i * c / max(||g_i||_2, c). */

typedef struct {
    cn_clipper base;
    double max_norm;
} npt_clipper;

static cn_status npt_apply(cn_clipper *self, cn_clip_ctx *ctx)
{
    const double c = ((npt_clipper *)self)->max_norm;
    for (int i = 0; i < ctx->ps->count; i++) {
        double d = sqrt(ctx->stats->sumsq[i]);
        if (d < c) d = c;              /* comparison: a NaN norm stays NaN */
        double coef = c / d;
        if (coef == 1.0) continue;
        cn_clip_scale_tensor(ctx->ps, i, coef);
        ctx->modified = 1;
        if (coef < 1.0) ctx->clipped = 1;
    }
    ctx->threshold = c;
    return CN_OK;
}

static const cn_clipper_ops npt_ops = {npt_apply, NULL, NULL, free_plain, NULL};
static const char *const npt_keys[] = {"max_norm", NULL};

static cn_status npt_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    double c;
    cn_status st = cn_json_number(obj, path, "max_norm", &(cn_json_num){.required = 1, .lo = 0, .lo_open = 1, .hi = INFINITY}, &c);
    if (st) return st;
    npt_clipper *n = new_clipper(sizeof *n, &npt_ops, path);
    if (!n) return CN_ERR_NOMEM;
    n->max_norm = c;
    *out = &n->base;
    return CN_OK;
}

const cn_clip_mode_def cn_clip_mode_norm_per_tensor = {"norm_per_tensor", npt_keys, 0, 1, npt_create};

/* ======================= agc: adaptive gradient clipping ======================= */
/* Brock et al. 2021 (NFNets), Optax adaptive_grad_clip. Unit u = a slice along
 * the first axis of a tensor of rank >= 2 (a row of a [out, in] weight: one
 * output unit's fan-in), or the whole tensor of rank 1 (a bias):
 *   m = clipping * max(||w_u||, eps);  if ||g_u|| > m: g_u <- g_u * m / max(||g_u||, 1e-6). */

typedef struct {
    cn_clipper base;
    double clipping, eps;
    int n_tensors;
    unsigned char *excluded;   /* [n_tensors] */
} agc_clipper;

static cn_status agc_apply(cn_clipper *self, cn_clip_ctx *ctx)
{
    agc_clipper *a = (agc_clipper *)self;
    cn_paramset *ps = ctx->ps;
    for (int i = 0; i < ps->count; i++) {
        if (a->excluded[i]) continue;
        const cn_param_info *in = &ps->info[i];
        size_t units = in->ndim >= 2 ? (size_t)in->shape[0] : 1;
        size_t len = in->numel / units;
        for (size_t u = 0; u < units; u++) {
            const float *w = ps->data + in->offset + u * len;   // [len]
            float *g = ps->grad + in->offset + u * len;         // [len]
            double wn = sqrt(cn_sumsq(w, len));
            double gn = sqrt(cn_sumsq(g, len));
            if (wn < a->eps) wn = a->eps;
            double m = a->clipping * wn;
            if (!(gn > m)) continue;
            double gd = gn < 1e-6 ? 1e-6 : gn;
            for (size_t j = 0; j < len; j++) g[j] = (float)((double)g[j] * (m / gd));
            ctx->clipped = 1;
            ctx->modified = 1;
        }
    }
    return CN_OK;
}

static void agc_free(cn_clipper *self)
{
    cn_free(((agc_clipper *)self)->excluded);
    cn_free(self);
}

static const cn_clipper_ops agc_ops = {agc_apply, NULL, NULL, agc_free, NULL};
static const char *const agc_keys[] = {"clipping", "eps", "exclude", NULL};

/* Length of the name's first component ("1.weight" -> 1: the layer). */
static size_t layer_prefix_len(const char *name)
{
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : strlen(name);
}

static cn_status agc_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    double clipping, eps;
    cn_status st;
    if ((st = cn_json_number(obj, path, "clipping", &(cn_json_num){.def = 0.01, .lo = 0, .lo_open = 1, .hi = INFINITY}, &clipping))) return st;
    if ((st = cn_json_number(obj, path, "eps", &(cn_json_num){.def = 1e-3, .lo = 0, .hi = INFINITY}, &eps))) return st;
    agc_clipper *a = new_clipper(sizeof *a, &agc_ops, path);
    if (!a) return CN_ERR_NOMEM;
    a->clipping = clipping;
    a->eps = eps;
    a->n_tensors = ps->count;
    a->excluded = cn_calloc((size_t)(ps->count ? ps->count : 1), 1);
    if (!a->excluded) { agc_free(&a->base); return cn_error(CN_ERR_NOMEM, "%s: out of memory", path); }

    char p[200], d[96];
    cn_json_join(p, sizeof p, path, "exclude");
    cJSON *ex = cJSON_GetObjectItemCaseSensitive(obj, "exclude");
    if (!ex) {
        /* default: the last layer (Brock et al. do not clip the final linear layer):
         * every parameter whose first name component equals the last parameter's */
        cJSON *arr = cJSON_CreateArray();
        if (!arr) { agc_free(&a->base); return cn_error(CN_ERR_NOMEM, "%s: out of memory", path); }
        if (ps->count > 0) {
            const char *last = ps->info[ps->count - 1].name;
            size_t L = layer_prefix_len(last);
            for (int i = 0; i < ps->count; i++) {
                const char *nm = ps->info[i].name;
                if (layer_prefix_len(nm) != L || strncmp(nm, last, L)) continue;
                a->excluded[i] = 1;
                cJSON_AddItemToArray(arr, cJSON_CreateString(nm));
            }
        }
        if ((st = cn_json_set(obj, "exclude", arr))) { agc_free(&a->base); return st; }
    } else {
        if (!cJSON_IsArray(ex)) {
            agc_free(&a->base);
            return cn_error(CN_ERR_ARG, "%s: expected a list of parameter names, got %s", p, cn_json_describe(ex, d, sizeof d));
        }
        int k = 0;
        for (cJSON *it = ex->child; it; it = it->next, k++) {
            int idx = cJSON_IsString(it) ? cn_paramset_find(ps, it->valuestring) : -1;
            if (idx < 0) {
                agc_free(&a->base);
                if (!cJSON_IsString(it))
                    return cn_error(CN_ERR_ARG, "%s.%d: expected a parameter name, got %s", p, k, cn_json_describe(it, d, sizeof d));
                return cn_error(CN_ERR_ARG, "%s.%d: no parameter named \"%s\" (first: \"%s\", last: \"%s\")", p, k,
                                it->valuestring, ps->count ? ps->info[0].name : "",
                                ps->count ? ps->info[ps->count - 1].name : "");
            }
            a->excluded[idx] = 1;
        }
    }
    *out = &a->base;
    return CN_OK;
}

const cn_clip_mode_def cn_clip_mode_agc = {"agc", agc_keys, 0, 0, agc_create};

/* ======================= autoclip ======================= */
/* Seetharaman et al. 2020, "AutoClip: Adaptive Gradient Clipping for Source
 * Separation Networks". threshold = p-th percentile (linear interpolation, numpy's
 * default) of the last `history` finite pre-clip L2 norms, taken BEFORE this
 * step's norm is added (docs/clipping.md), so a spike is judged against the norms
 * before it. include_current = true adds it first, as the authors' code does
 * (np.percentile over a history that includes this step's norm). Then the PyTorch
 * norm rule with that threshold. */

typedef struct {
    cn_clipper base;
    double percentile;
    int include_current;      /* add this step's norm before taking the percentile */
    int has_fallback;
    double fallback;
    int64_t history;          /* ring capacity */
    int64_t count, pos;       /* filled entries; next write index */
    double *ring;             /* [history] the window in arrival order (saved to checkpoints) */
    double *sorted;           /* [history] the same count values, ascending (rebuilt on load) */
} autoclip_clipper;

/* First index i in s[0..n) with s[i] >= x (upper = 0) or s[i] > x (upper = 1). x is finite. */
static int64_t bsearch_pos(const double *s, int64_t n, double x, int upper)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (upper ? s[mid] <= x : s[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* numpy.percentile(..., method="linear") of n >= 1 sorted values. */
static double percentile_linear(const double *s, int64_t n, double p)
{
    double rank = p / 100.0 * (double)(n - 1);
    int64_t lo = (int64_t)floor(rank);
    if (lo >= n - 1) return s[n - 1];
    double frac = rank - (double)lo;
    return s[lo] + frac * (s[lo + 1] - s[lo]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Adds finite norm N to the window: the ring overwrites its oldest entry once full, and the sorted copy
 * drops that value and takes N at its place, each a binary search and one memmove (O(history) per step
 * instead of a sort). Equal values are interchangeable, so the sorted copy holds exactly the multiset
 * the ring holds and any percentile read from it equals the one of the sorted ring. */
static void autoclip_push(autoclip_clipper *a, double N)
{
    int64_t n = a->count;
    if (n == a->history) {
        double old = a->ring[a->pos];
        int64_t i = bsearch_pos(a->sorted, n, old, 0);   /* sorted[i] == old: it is in the window */
        memmove(a->sorted + i, a->sorted + i + 1, (size_t)(n - 1 - i) * sizeof(double));
        n--;
    }
    int64_t j = bsearch_pos(a->sorted, n, N, 1);
    memmove(a->sorted + j + 1, a->sorted + j, (size_t)(n - j) * sizeof(double));
    a->sorted[j] = N;
    a->ring[a->pos] = N;
    a->pos = (a->pos + 1) % a->history;
    if (a->count < a->history) a->count++;
}

static cn_status autoclip_apply(cn_clipper *self, cn_clip_ctx *ctx)
{
    autoclip_clipper *a = (autoclip_clipper *)self;
    double N = sqrt(ctx->stats->total_sumsq);
    int pushed = a->include_current && isfinite(N);
    if (pushed) autoclip_push(a, N);
    /* the percentile of the window: the past norms (and this step's with include_current) */
    double thr = a->count > 0 ? percentile_linear(a->sorted, a->count, a->percentile) : NAN;
    ctx->report->autoclip_threshold = thr;
    double use = thr;
    if (a->count == 0 && a->has_fallback) use = a->fallback;
    if (!isnan(use)) {
        double coef = cn_clip_coef(use, N, CN_CLIP_TORCH_EPS);
        cn_clip_scale(ctx->ps, coef);
        ctx->coef = coef;
        ctx->threshold = use;
        ctx->clipped = coef < 1.0;
        ctx->modified = !(coef == 1.0);
    }
    if (!pushed && isfinite(N)) autoclip_push(a, N);   /* non-finite norms never enter the history */
    return CN_OK;
}

static cn_status autoclip_save(const cn_clipper *self, const char *prefix, cn_state *out)
{
    const autoclip_clipper *a = (const autoclip_clipper *)self;
    char nm[96];
    cn_status st;
    int64_t shape[1] = {a->history};
    snprintf(nm, sizeof nm, "%s.history", prefix);
    if ((st = cn_state_add(out, nm, CN_DT_F64, 1, shape, a->ring))) return st;
    snprintf(nm, sizeof nm, "%s.count", prefix);
    if ((st = cn_state_add(out, nm, CN_DT_I64, 0, NULL, (void *)&a->count))) return st;
    snprintf(nm, sizeof nm, "%s.pos", prefix);
    return cn_state_add(out, nm, CN_DT_I64, 0, NULL, (void *)&a->pos);
}

/* The ring is written from index 0 and wraps only once full, so a saved state has pos == count while
 * count < history; its first count entries are finite norms (>= 0), the rest still 0. Anything else is
 * rejected: the sorted copy is rebuilt from those entries. Nothing is changed unless the whole state is valid. */
static cn_status autoclip_load(cn_clipper *self, const char *prefix, const cn_state *in)
{
    autoclip_clipper *a = (autoclip_clipper *)self;
    char nm[96];
    cn_status st;
    int64_t count, pos;
    snprintf(nm, sizeof nm, "%s.count", prefix);
    if ((st = cn_state_get_i64(in, nm, &count))) return st;
    snprintf(nm, sizeof nm, "%s.pos", prefix);
    if ((st = cn_state_get_i64(in, nm, &pos))) return st;
    if (count < 0 || count > a->history || pos < 0 || pos >= a->history || (count < a->history && pos != count))
        return cn_error(CN_ERR_FORMAT, "state '%s.count', '%s.pos': count %lld / pos %lld do not fit a history of %lld",
                        prefix, prefix, (long long)count, (long long)pos, (long long)a->history);
    const cn_state_item *it;
    snprintf(nm, sizeof nm, "%s.history", prefix);
    if ((st = cn_state_get(in, nm, CN_DT_F64, 1, &a->history, &it))) return st;
    const double *h = it->data;
    for (int64_t i = 0; i < a->history; i++) {
        int ok = i < count ? h[i] >= 0 && !isinf(h[i]) : h[i] == 0.0;
        if (!ok) {
            char vb[32];
            return cn_error(CN_ERR_FORMAT, "state '%s': entry %lld is %s, %s", nm, (long long)i, cn_fmt_g(vb, sizeof vb, h[i], 6),
                            i < count ? "not a finite norm" : "beyond the count but not 0");
        }
    }
    memcpy(a->ring, h, (size_t)a->history * sizeof(double));
    memcpy(a->sorted, h, (size_t)count * sizeof(double));
    qsort(a->sorted, (size_t)count, sizeof(double), cmp_double);
    a->count = count;
    a->pos = pos;
    return CN_OK;
}

static void autoclip_free(cn_clipper *self)
{
    autoclip_clipper *a = (autoclip_clipper *)self;
    cn_free(a->ring);
    cn_free(a->sorted);
    cn_free(a);
}

static const cn_clipper_ops autoclip_ops = {autoclip_apply, autoclip_save, autoclip_load, autoclip_free, NULL};
static const char *const autoclip_keys[] = {"percentile", "history", "fallback_max_norm", "include_current", NULL};

static cn_status autoclip_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    double pct, fb = 0;
    long long hist;
    int has_fb;
    cn_status st;
    /* default 10: the paper's recommendation (its experiments found p = 10 best);
     * the authors' package uses a different default (see README). */
    if ((st = cn_json_number(obj, path, "percentile", &(cn_json_num){.def = 10, .lo = 0, .hi = 100}, &pct))) return st;
    if ((st = cn_json_int(obj, path, "history", 0, 1000, 1, 100000000, &hist))) return st;
    if ((st = cn_json_number_opt(obj, path, "fallback_max_norm", &(cn_json_num){.lo = 0, .lo_open = 1, .hi = INFINITY}, &has_fb, &fb))) return st;
    int incl;
    if ((st = cn_json_bool(obj, path, "include_current", 0, 0, &incl))) return st;
    autoclip_clipper *a = new_clipper(sizeof *a, &autoclip_ops, path);
    if (!a) return CN_ERR_NOMEM;
    a->percentile = pct;
    a->include_current = incl;
    a->history = hist;
    a->has_fallback = has_fb;
    a->fallback = fb;
    a->ring = cn_calloc((size_t)hist, sizeof(double));
    a->sorted = cn_calloc((size_t)hist, sizeof(double));
    if (!a->ring || !a->sorted) { autoclip_free(&a->base); return cn_error(CN_ERR_NOMEM, "%s: out of memory", path); }
    *out = &a->base;
    return CN_OK;
}

const cn_clip_mode_def cn_clip_mode_autoclip = {"autoclip", autoclip_keys, 1, 1, autoclip_create};

/* ======================= zclip ======================= */
/* Kumar et al. 2025, "ZClip: Adaptive Spike Mitigation for LLM Pre-Training".
 * Warm-up: collect `warmup` finite norms, then mu = mean, var = population variance.
 * After: z = (N - mu) / (sigma + 1e-6); if z > z_thresh the threshold is
 * mu + z_thresh^2 * sigma / z (their "adaptive scaling": mu + z_thresh*sigma/eta,
 * eta = z/z_thresh), capped by max_norm when given; scale with the PyTorch rule.
 * EMA: mu <- a mu + (1-a) x; var <- a var + (1-a) (x - mu)^2 (new mu), x = the
 * threshold if clipped, else N. During warm-up only max_norm (if any) clips.
 * ema_input "applied" (default): x is the threshold the gradient was scaled to, the
 * cap included; "uncapped" (the authors' code): x is the z-score threshold when
 * z > z_thresh, else N, whatever max_norm did. */

typedef struct {
    cn_clipper base;
    double alpha, z_thresh;
    int has_cap;
    double cap;
    int ema_uncapped;         /* ema_input = "uncapped" */
    int64_t warmup;
    int64_t count;            /* warm-up norms collected (== warmup once initialised) */
    double mu, var;
    double *buf;              /* [warmup] */
} zclip_clipper;

static void scale_to(cn_clip_ctx *ctx, double thr, double N)
{
    double coef = cn_clip_coef(thr, N, CN_CLIP_TORCH_EPS);
    cn_clip_scale(ctx->ps, coef);
    ctx->coef = coef;
    ctx->clipped = coef < 1.0;
    ctx->modified = !(coef == 1.0);
}

static cn_status zclip_apply(cn_clipper *self, cn_clip_ctx *ctx)
{
    zclip_clipper *z = (zclip_clipper *)self;
    double N = sqrt(ctx->stats->total_sumsq);
    if (z->count < z->warmup) {
        if (z->has_cap) {
            ctx->threshold = z->cap;
            scale_to(ctx, z->cap, N);
        }
        if (isfinite(N)) {
            z->buf[z->count++] = N;
            if (z->count == z->warmup) {
                double m = 0, v = 0;
                for (int64_t i = 0; i < z->warmup; i++) m += z->buf[i];
                m /= (double)z->warmup;
                for (int64_t i = 0; i < z->warmup; i++) v += (z->buf[i] - m) * (z->buf[i] - m);
                z->mu = m;
                z->var = v / (double)z->warmup;
            }
        }
        return CN_OK;
    }
    double sigma = sqrt(z->var);
    double zs = (N - z->mu) / (sigma + 1e-6);
    ctx->report->zclip_mu = z->mu;
    ctx->report->zclip_sigma = sigma;
    ctx->report->zclip_z = zs;
    int zclip = zs > z->z_thresh;
    /* the norm at which z reaches z_thresh: the threshold in force when not clipping */
    double thr = zclip ? z->mu + z->z_thresh * z->z_thresh * sigma / zs : z->mu + z->z_thresh * (sigma + 1e-6);
    double zthr = thr;
    if (z->has_cap && z->cap < thr) thr = z->cap;
    ctx->threshold = thr;
    if (zclip || (z->has_cap && thr == z->cap)) scale_to(ctx, thr, N);
    if (isfinite(N)) {
        double x = z->ema_uncapped ? (zclip ? zthr : N) : ctx->clipped ? thr : N;
        z->mu = z->alpha * z->mu + (1 - z->alpha) * x;
        z->var = z->alpha * z->var + (1 - z->alpha) * (x - z->mu) * (x - z->mu);
    }
    return CN_OK;
}

static cn_status zclip_save(const cn_clipper *self, const char *prefix, cn_state *out)
{
    const zclip_clipper *z = (const zclip_clipper *)self;
    char nm[96];
    cn_status st;
    int64_t shape[1] = {z->warmup};
    snprintf(nm, sizeof nm, "%s.mu", prefix);
    if ((st = cn_state_add(out, nm, CN_DT_F64, 0, NULL, (void *)&z->mu))) return st;
    snprintf(nm, sizeof nm, "%s.var", prefix);
    if ((st = cn_state_add(out, nm, CN_DT_F64, 0, NULL, (void *)&z->var))) return st;
    snprintf(nm, sizeof nm, "%s.count", prefix);
    if ((st = cn_state_add(out, nm, CN_DT_I64, 0, NULL, (void *)&z->count))) return st;
    snprintf(nm, sizeof nm, "%s.warmup_buffer", prefix);
    return cn_state_add(out, nm, CN_DT_F64, 1, shape, z->buf);
}

/* A saved state is one zclip writes: count in [0, warmup] finite norms (>= 0) at the front of the buffer,
 * 0 after them; mu = var = 0 until the warm-up is complete, then a finite mean >= 0 (an average of norms
 * and thresholds) and a finite variance >= 0. Nothing is changed unless the whole state is valid. */
static cn_status zclip_load(cn_clipper *self, const char *prefix, const cn_state *in)
{
    zclip_clipper *z = (zclip_clipper *)self;
    char nm[96];
    cn_status st;
    double mu, var;
    int64_t count;
    snprintf(nm, sizeof nm, "%s.count", prefix);
    if ((st = cn_state_get_i64(in, nm, &count))) return st;
    if (count < 0 || count > z->warmup)
        return cn_error(CN_ERR_FORMAT, "state '%s': %lld is outside [0, %lld] (the warm-up)", nm, (long long)count,
                        (long long)z->warmup);
    int warm = count == z->warmup;
    snprintf(nm, sizeof nm, "%s.mu", prefix);
    if ((st = cn_state_get_f64(in, nm, &mu))) return st;
    char vb[32];
    if (warm ? !(mu >= 0) || isinf(mu) : mu != 0.0)
        return cn_error(CN_ERR_FORMAT, "state '%s': %s is not %s", nm, cn_fmt_g(vb, sizeof vb, mu, 6),
                        warm ? "a finite mean norm >= 0" : "0 during the warm-up");
    snprintf(nm, sizeof nm, "%s.var", prefix);
    if ((st = cn_state_get_f64(in, nm, &var))) return st;
    if (warm ? !(var >= 0) || isinf(var) : var != 0.0)
        return cn_error(CN_ERR_FORMAT, "state '%s': %s is not %s", nm, cn_fmt_g(vb, sizeof vb, var, 6),
                        warm ? "a finite variance >= 0" : "0 during the warm-up");
    const cn_state_item *it;
    snprintf(nm, sizeof nm, "%s.warmup_buffer", prefix);
    if ((st = cn_state_get(in, nm, CN_DT_F64, 1, &z->warmup, &it))) return st;
    const double *b = it->data;
    for (int64_t i = 0; i < z->warmup; i++) {
        int ok = i < count ? b[i] >= 0 && !isinf(b[i]) : b[i] == 0.0;
        if (!ok)
            return cn_error(CN_ERR_FORMAT, "state '%s': entry %lld is %s, %s", nm, (long long)i, cn_fmt_g(vb, sizeof vb, b[i], 6),
                            i < count ? "not a finite norm" : "beyond the count but not 0");
    }
    memcpy(z->buf, b, (size_t)z->warmup * sizeof(double));
    z->mu = mu;
    z->var = var;
    z->count = count;
    return CN_OK;
}

static void zclip_free(cn_clipper *self)
{
    cn_free(((zclip_clipper *)self)->buf);
    cn_free(self);
}

static const cn_clipper_ops zclip_ops = {zclip_apply, zclip_save, zclip_load, zclip_free, NULL};
static const char *const zclip_keys[] = {"alpha", "z_thresh", "warmup", "max_norm", "ema_input", NULL};

static cn_status zclip_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    double alpha, zt, cap = 0;
    long long warm;
    int has_cap;
    cn_status st;
    if ((st = cn_json_number(obj, path, "alpha", &(cn_json_num){.def = 0.97, .lo = 0, .lo_open = 1, .hi = 1, .hi_open = 1}, &alpha))) return st;
    if ((st = cn_json_number(obj, path, "z_thresh", &(cn_json_num){.def = 2.5, .lo = 0, .lo_open = 1, .hi = INFINITY}, &zt))) return st;
    if ((st = cn_json_int(obj, path, "warmup", 0, 25, 1, 100000000, &warm))) return st;
    if ((st = cn_json_number_opt(obj, path, "max_norm", &(cn_json_num){.lo = 0, .lo_open = 1, .hi = INFINITY}, &has_cap, &cap))) return st;
    static const char *const ema_inputs[] = {"applied", "uncapped", NULL};
    const char *ema;
    if ((st = cn_json_string(obj, path, "ema_input", 0, "applied", ema_inputs, &ema))) return st;
    zclip_clipper *z = new_clipper(sizeof *z, &zclip_ops, path);
    if (!z) return CN_ERR_NOMEM;
    z->alpha = alpha;
    z->z_thresh = zt;
    z->warmup = warm;
    z->has_cap = has_cap;
    z->cap = cap;
    z->ema_uncapped = !strcmp(ema, "uncapped");
    z->buf = cn_calloc((size_t)warm, sizeof(double));
    if (!z->buf) { zclip_free(&z->base); return cn_error(CN_ERR_NOMEM, "%s: out of memory", path); }
    *out = &z->base;
    return CN_OK;
}

const cn_clip_mode_def cn_clip_mode_zclip = {"zclip", zclip_keys, 1, 1, zclip_create};
