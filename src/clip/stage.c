/* The clip stage: statistics, the non-finite policy, the list of clippers, the
 * report, and checkpoint state. See clip.h and docs/clipping.md. */
#include "clip/internal.h"
#include "tensor/pool.h"
#include "tensor/vec.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Statistics and the norm/scale primitives                                 */
/* ------------------------------------------------------------------------ */

cn_status cn_clip_stats_init(cn_clip_stats *s, int n_tensors)
{
    memset(s, 0, sizeof *s);
    if (n_tensors < 0) return cn_error(CN_ERR_ARG, "clip stats: negative tensor count");
    size_t n = (size_t)(n_tensors ? n_tensors : 1);
    s->sumsq = cn_calloc(n, sizeof(double));
    s->sumabs = cn_calloc(n, sizeof(double));
    s->maxabs = cn_calloc(n, sizeof(double));
    if (!s->sumsq || !s->sumabs || !s->maxabs) {
        cn_clip_stats_free(s);
        return cn_error(CN_ERR_NOMEM, "out of memory for clip statistics");
    }
    s->n_tensors = n_tensors;
    s->first_nonfinite = -1;
    return CN_OK;
}

void cn_clip_stats_free(cn_clip_stats *s)
{
    cn_free(s->sumsq);
    cn_free(s->sumabs);
    cn_free(s->maxabs);
    cn_free(s->part);
    memset(s, 0, sizeof *s);
}

/* Chunks of tensor i: ceil(numel / CN_CLIP_STATS_CHUNK). */
static size_t stats_chunks(const cn_paramset *ps, int i)
{
    return (ps->info[i].numel + CN_CLIP_STATS_CHUNK - 1) / CN_CLIP_STATS_CHUNK;
}

/* Chunks of the whole parameter block. */
static size_t stats_all_chunks(const cn_paramset *ps)
{
    size_t n = 0;
    for (int i = 0; i < ps->count; i++) n += stats_chunks(ps, i);
    return n;
}

typedef struct {
    const cn_paramset *ps;
    double *part;   /* [3 * chunks]: sum g^2, sum |g|, max |g| of each chunk, tensors in order */
} stats_job;

/* Chunks c0 .. c1 of the whole parameter block (numbered tensor by tensor). */
static void stats_range(void *p, size_t c0, size_t c1)
{
    const stats_job *j = p;
    const cn_paramset *ps = j->ps;
    size_t first = 0;   /* number of the tensor's first chunk */
    for (int i = 0; i < ps->count && first < c1; i++) {
        size_t n = ps->info[i].numel, nc = stats_chunks(ps, i);
        const float *g = ps->grad + ps->info[i].offset;
        for (size_t c = c0 > first ? c0 - first : 0; c < nc && first + c < c1; c++) {
            size_t e0 = c * CN_CLIP_STATS_CHUNK, e1 = e0 + CN_CLIP_STATS_CHUNK < n ? e0 + CN_CLIP_STATS_CHUNK : n;
            double *o = j->part + 3 * (first + c);
            cn_vabs_stats(g + e0, e1 - e0, &o[0], &o[1], &o[2]);   /* fixed lane order: see tensor/vec.h */
        }
        first += nc;
    }
}

cn_status cn_clip_stats_reserve(cn_clip_stats *s, const cn_paramset *ps)
{
    size_t chunks = stats_all_chunks(ps);
    if (3 * chunks > s->part_cap) {
        double *p = cn_realloc(s->part, 3 * chunks * sizeof(double));
        if (!p) return cn_error(CN_ERR_NOMEM, "out of memory for clip statistics of %zu chunks", chunks);
        s->part = p;
        s->part_cap = 3 * chunks;
    }
    return CN_OK;
}

cn_status cn_clip_compute_stats(const cn_paramset *ps, cn_clip_stats *s)
{
    if (ps->count != s->n_tensors)
        return cn_error(CN_ERR_STATE, "clip stats: sized for %d tensors, paramset has %d", s->n_tensors, ps->count);
    size_t chunks = stats_all_chunks(ps);
    cn_status st = cn_clip_stats_reserve(s, ps);   /* allocates only when not reserved for this block */
    if (st) return st;
    s->total_sumsq = 0;
    s->total_sumabs = 0;
    s->max_abs = 0;
    s->n_nonfinite = 0;
    s->first_nonfinite = -1;
    s->norm_p_type = 0;           /* the gradient may have changed: drop the cached p-norm */
    s->norm_p = 0;
    stats_job job = {ps, s->part};
    cn_pool_for(chunks, 1, 4, stats_range, &job);   /* from 4 chunks (~40 us of work at one thread) */
    int any_nan = 0;
    const double *o = s->part;
    for (int i = 0; i < ps->count; i++) {
        const float *g = ps->grad + ps->info[i].offset;
        size_t n = ps->info[i].numel, nc = stats_chunks(ps, i);
        /* double accumulation: 100 x 1e20f gives 1e42 for the sum of squares,
         * which overflows float but not double (vector 4). */
        double ss = 0, sa = 0, mx = 0;
        if (nc) {
            ss = o[0];
            sa = o[1];
            mx = o[2];
        }
        for (size_t c = 1; c < nc; c++) {
            ss += o[3 * c];
            sa += o[3 * c + 1];
            if (o[3 * c + 2] > mx) mx = o[3 * c + 2];
        }
        o += 3 * nc;
        long long nf = 0;
        int nan = 0;
        /* Every |g|^2 of a finite float is < 1.2e77, so the double sum of squares is finite exactly when
         * every element is: only then is the counting pass needed. */
        if (!isfinite(ss))
            for (size_t j = 0; j < n; j++)
                if (!isfinite(g[j])) {
                    nf++;
                    if (isnan(g[j])) nan = 1;
                }
        if (nan) { mx = NAN; any_nan = 1; }    /* torch.max propagates NaN */
        s->sumsq[i] = ss;
        s->sumabs[i] = sa;
        s->maxabs[i] = mx;
        s->total_sumsq += ss;
        s->total_sumabs += sa;
        if (mx > s->max_abs) s->max_abs = mx;
        s->n_nonfinite += nf;
        if (nf && s->first_nonfinite < 0) s->first_nonfinite = i;
    }
    if (any_nan) s->max_abs = NAN;
    return CN_OK;
}

double cn_clip_total_norm(const cn_clip_stats *s, const cn_paramset *ps, double p)
{
    if (p == 2.0) return sqrt(s->total_sumsq);
    if (p == 1.0) return s->total_sumabs;
    if (isinf(p)) return s->max_abs;
    if (s->norm_p_type == p) return s->norm_p;
    /* General p: (sum |g|^p)^(1/p), the same as PyTorch's norm of the per-tensor norms, computed as
     * M (sum (|g|/M)^p)^(1/p) with M = max |g|. Unscaled, |g|^p overflows double for p > ~8 (3.4e38^8.1
     * > 1.8e308) and the norm of a finite gradient came out inf. Scaled, every term is in [0, 1] and the
     * largest is 1, so for p >= 1 (the only p accepted, see get_norm_type in modes.c) the result lies in
     * [M, M n] and is finite whenever the gradient is; terms that underflow to 0 are below 2^-1074 of
     * the largest one and cannot change the sum. A NaN element gives NaN, an infinite one inf. */
    double M = 0;
    int nan = 0, inf = 0;
    for (int i = 0; i < ps->count; i++) {
        const float *g = ps->grad + ps->info[i].offset;
        for (size_t j = 0; j < ps->info[i].numel; j++) {
            double a = fabs((double)g[j]);
            if (isnan(a)) nan = 1;
            else if (isinf(a)) inf = 1;
            else if (a > M) M = a;
        }
    }
    if (nan) return NAN;
    if (inf) return INFINITY;
    if (M == 0) return 0;
    double acc = 0;
    for (int i = 0; i < ps->count; i++) {
        const float *g = ps->grad + ps->info[i].offset;
        for (size_t j = 0; j < ps->info[i].numel; j++) acc += pow(fabs((double)g[j]) / M, p);
    }
    return M * pow(acc, 1.0 / p);
}

double cn_clip_coef(double max_norm, double total_norm, double eps)
{
    /* A zero gradient stays zero whatever the threshold: coef 1, so it is never counted as clipped
     * (max_norm 1e-320 with eps 1e-6, or an AutoClip threshold of 0 after zero gradients, would give
     * coef < 1 and report a clip that changed nothing). */
    if (total_norm == 0) return 1.0;
    if (eps > 0) {
        /* PyTorch: clip_coef = max_norm / (total_norm + 1e-6); clamp(max=1).
         * Written with a comparison so a NaN norm gives a NaN coef. */
        double coef = max_norm / (total_norm + eps);
        if (coef > 1.0) coef = 1.0;
        return coef;
    }
    /* TF clip_by_global_norm / Optax: max_norm / max(N, max_norm); exactly 1 at the threshold. */
    double d = total_norm;
    if (d < max_norm) d = max_norm;
    return max_norm / d;
}

static void scale_range(float *g, size_t n, double coef)
{
    /* one rounding: the product is formed in double, then stored as float (PyTorch
     * rounds coef to float32 first; the two differ by at most an ulp or so) */
    for (size_t j = 0; j < n; j++) g[j] = (float)((double)g[j] * coef);
}

typedef struct {
    float *g;
    double coef;
} scale_job;

static void scale_part(const void *p, size_t j0, size_t j1)
{
    const scale_job *j = p;
    scale_range(j->g + j0, j1 - j0, j->coef);
}

void cn_clip_scale(cn_paramset *ps, double coef)
{
    if (coef == 1.0) return;    /* unclipped gradients stay bit-identical (vector 8) */
    scale_job j = {ps->grad, coef};
    /* the rows each thread computed and will update (elementwise: any split, the same bits) */
    cn_paramset_for_ranges(ps, scale_part, &j);
}

void cn_clip_scale_tensor(cn_paramset *ps, int index, double coef)
{
    if (coef == 1.0 || index < 0 || index >= ps->count) return;
    scale_range(ps->grad + ps->info[index].offset, ps->info[index].numel, coef);
}

/* ------------------------------------------------------------------------ */
/* The stage object                                                         */
/* ------------------------------------------------------------------------ */

struct cn_clip {
    int n_stages;
    cn_clipper **stages;              /* [n_stages] */
    const cn_clip_mode_def **defs;    /* [n_stages] */
    int global_stage;                 /* index of the global-norm stage, -1 if none */
    double norm_type;                 /* of report.norm_pre: the global stage's, else 2 */
    int has_threshold;
    cn_nonfinite_policy policy;
    long long max_skips;
    int64_t consecutive_skips, total_skips;
    int n_tensors;
    cn_clip_stats pre, cur;           /* incoming; current (after a stage changed it) */
    cn_clip_report rep;
};

static const char *const k_policies[] = {"propagate", "stop", "skip", "zero", NULL};
static const cn_nonfinite_policy k_policy_values[] = {CN_NONFINITE_PROPAGATE, CN_NONFINITE_STOP, CN_NONFINITE_SKIP,
                                                      CN_NONFINITE_ZERO};
const char *const cn_clip_common_keys[] = {"mode", "on_nonfinite", "max_consecutive_skips", NULL};

/* The policy is one for the whole stage but may be written on any stage object of
 * a list: explicit values must agree, and the resolved value is filled into every
 * object (so the resolved config reads the same whichever object one looks at). */
static cn_status resolve_shared_key(cJSON **objs, char (*paths)[160], int n, const char *key, cJSON **explicit_val)
{
    *explicit_val = NULL;
    int first = -1;
    for (int i = 0; i < n; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(objs[i], key);
        if (!v) continue;
        if (first < 0) { first = i; *explicit_val = v; continue; }
        if (!cJSON_Compare(v, *explicit_val, 1)) {
            char p[200], q[200], d[96];
            cn_json_join(p, sizeof p, paths[i], key);
            cn_json_join(q, sizeof q, paths[first], key);
            return cn_error(CN_ERR_ARG, "%s: conflicts with %s (%s); the policy applies to the whole clip stage",
                            p, q, cn_json_describe(*explicit_val, d, sizeof d));
        }
    }
    for (int i = 0; i < n && *explicit_val; i++) {
        if (cJSON_GetObjectItemCaseSensitive(objs[i], key)) continue;
        cn_status st = cn_json_set(objs[i], key, cJSON_Duplicate(*explicit_val, 1));
        if (st) return st;
    }
    return CN_OK;
}

static cn_status build(cn_clip *c, cJSON **objs, char (*paths)[160], int n, const cn_paramset *ps)
{
    cn_status st;
    cJSON *ex;
    if ((st = resolve_shared_key(objs, paths, n, "on_nonfinite", &ex))) return st;
    if ((st = resolve_shared_key(objs, paths, n, "max_consecutive_skips", &ex))) return st;

    for (int i = 0; i < n; i++) {
        const char *path = paths[i];
        if ((st = cn_json_expect_object(objs[i], path))) return st;
        const char *mode;
        if ((st = cn_json_string(objs[i], path, "mode", 1, NULL, NULL, &mode))) return st;
        const cn_clip_mode_def *def = cn_clip_find_mode(mode);
        if (!def) {
            char p[200], names[512];
            cn_json_join(p, sizeof p, path, "mode");
            return cn_error(CN_ERR_ARG, "%s: unknown mode \"%s\" (known: %s)", p, mode,
                            cn_clip_mode_names(names, sizeof names));
        }
        /* the accepted keys: the common ones, then the mode's (a custom mode may have any number) */
        size_t k = 0, nk = sizeof cn_clip_common_keys / sizeof cn_clip_common_keys[0];   /* includes the NULL */
        for (const char *const *q = def->keys; q && *q; q++) nk++;
        const char **keys = cn_malloc(nk * sizeof *keys);
        if (!keys) return cn_error(CN_ERR_NOMEM, "%s: out of memory", path);
        for (const char *const *q = cn_clip_common_keys; *q; q++) keys[k++] = *q;
        for (const char *const *q = def->keys; q && *q; q++) keys[k++] = *q;
        keys[k] = NULL;
        st = cn_json_check_keys(objs[i], path, keys);
        cn_free(keys);
        if (st) return st;

        const char *pol;
        long long maxs;
        if ((st = cn_json_string(objs[i], path, "on_nonfinite", 0, "stop", k_policies, &pol))) return st;
        if ((st = cn_json_int(objs[i], path, "max_consecutive_skips", 0, 10, 0, (long long)9e18, &maxs))) return st;
        for (int q = 0; k_policies[q]; q++)
            if (!strcmp(pol, k_policies[q])) c->policy = k_policy_values[q];
        c->max_skips = maxs;

        if (def->global_norm) {
            if (c->global_stage >= 0)
                return cn_error(CN_ERR_ARG,
                                "%s: a second global-norm stage (\"%s\"); %s is already one (\"%s\"); use at most one per list",
                                path, def->name, paths[c->global_stage], c->defs[c->global_stage]->name);
            c->global_stage = i;
        }
        cn_clipper *cl = NULL;
        if ((st = def->create(objs[i], path, ps, &cl))) return st;
        if (!cl || !cl->ops || !cl->ops->apply)
            return cn_error(CN_ERR_STATE, "%s: mode \"%s\" created no clipper", path, def->name);
        c->stages[i] = cl;
        c->defs[i] = def;
        c->n_stages = i + 1;
        if (def->has_threshold) c->has_threshold = 1;
        if (def->global_norm && cl->ops->norm_type) {
            double p = cl->ops->norm_type(cl);
            if (!(p >= 1.0))   /* as the norm mode's norm_type: a number >= 1 or inf (NaN fails too) */
                return cn_error(CN_ERR_STATE, "%s: mode \"%s\" reports norm type %g; expected a number >= 1 or inf",
                                path, def->name, p);
            c->norm_type = p;
        }
    }
    return CN_OK;
}

cn_status cn_clip_from_json(cJSON *clip_json, const char *path, const cn_paramset *ps, cn_clip **out)
{
    *out = NULL;
    if (!path) path = "clip";
    if (!ps || !ps->finalized) return cn_error(CN_ERR_STATE, "%s: the parameter set must be finalized first", path);
    cJSON *tmp = NULL;
    if (!clip_json) {
        tmp = cJSON_CreateObject();
        if (!tmp || !cJSON_AddStringToObject(tmp, "mode", "none")) {
            cJSON_Delete(tmp);
            return cn_error(CN_ERR_NOMEM, "out of memory");
        }
        clip_json = tmp;
    }
    int n;
    if (cJSON_IsArray(clip_json)) {
        n = cJSON_GetArraySize(clip_json);
        if (n == 0) return cn_error(CN_ERR_ARG, "%s: empty list of stages (use {\"mode\": \"none\"} for no clipping)", path);
    } else if (cJSON_IsObject(clip_json)) {
        n = 1;
    } else {
        char d[96];
        return cn_error(CN_ERR_ARG, "%s: expected a stage object or a list of them, got %s", path,
                        cn_json_describe(clip_json, d, sizeof d));
    }

    cn_status st = CN_ERR_NOMEM;
    cn_clip *c = cn_calloc(1, sizeof *c);
    cJSON **objs = cn_calloc((size_t)n, sizeof *objs);
    char (*paths)[160] = cn_calloc((size_t)n, sizeof *paths);
    if (!c || !objs || !paths) goto fail_nomem;
    c->global_stage = -1;
    c->norm_type = 2.0;
    c->policy = CN_NONFINITE_STOP;
    c->max_skips = 10;
    c->n_tensors = ps->count;
    c->stages = cn_calloc((size_t)n, sizeof *c->stages);
    c->defs = cn_calloc((size_t)n, sizeof *c->defs);
    size_t nt = (size_t)(ps->count ? ps->count : 1);
    c->rep.tensor_norm_pre = cn_calloc(nt, sizeof(double));
    c->rep.tensor_norm_post = cn_calloc(nt, sizeof(double));
    if (!c->stages || !c->defs || !c->rep.tensor_norm_pre || !c->rep.tensor_norm_post) goto fail_nomem;
    if ((st = cn_clip_stats_init(&c->pre, ps->count)) || (st = cn_clip_stats_init(&c->cur, ps->count)) ||
        (st = cn_clip_stats_reserve(&c->pre, ps)) || (st = cn_clip_stats_reserve(&c->cur, ps)))
        goto fail;
    c->rep.n_tensors = ps->count;

    if (cJSON_IsArray(clip_json)) {
        int i = 0;
        for (cJSON *it = clip_json->child; it; it = it->next, i++) {
            objs[i] = it;
            snprintf(paths[i], sizeof paths[i], "%s.%d", path, i);
        }
    } else {
        objs[0] = clip_json;
        snprintf(paths[0], sizeof paths[0], "%s", path);
    }
    if ((st = build(c, objs, paths, n, ps))) goto fail;

    /* a report before the first step: nothing done yet */
    c->rep.coef = 1;
    c->rep.threshold = NAN;
    c->rep.autoclip_threshold = c->rep.zclip_mu = c->rep.zclip_sigma = c->rep.zclip_z = NAN;
    cn_free(objs);
    cn_free(paths);
    cJSON_Delete(tmp);
    *out = c;
    return CN_OK;

fail_nomem:
    st = cn_error(CN_ERR_NOMEM, "%s: out of memory building the clip stage", path);
fail:
    cn_free(objs);
    cn_free(paths);
    cJSON_Delete(tmp);
    cn_clip_free(c);
    return st;
}

cn_status cn_clip_from_string(const char *json_text, const cn_paramset *ps, cn_clip **out)
{
    cJSON *j = NULL;
    *out = NULL;
    cn_status st = cn_json_parse(json_text, "clip", &j);
    if (st) return st;
    st = cn_clip_from_json(j, "clip", ps, out);
    cJSON_Delete(j);
    return st;
}

void cn_clip_free(cn_clip *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_stages; i++)
        if (c->stages[i] && c->stages[i]->ops->free) c->stages[i]->ops->free(c->stages[i]);
    cn_free(c->stages);
    cn_free(c->defs);
    cn_clip_stats_free(&c->pre);
    cn_clip_stats_free(&c->cur);
    cn_free(c->rep.tensor_norm_pre);
    cn_free(c->rep.tensor_norm_post);
    cn_free(c);
}

/* ------------------------------------------------------------------------ */
/* One step                                                                 */
/* ------------------------------------------------------------------------ */

/* The global norm of type p of the gradient s describes, computed once per step: a general p costs a
 * pow() per element, so it is kept in s for the modes (the `norm` mode reads it back through
 * cn_clip_total_norm with the same p). */
static double stage_norm(cn_clip_stats *s, const cn_paramset *ps, double p)
{
    double N = cn_clip_total_norm(s, ps, p);
    s->norm_p_type = p;
    s->norm_p = N;
    return N;
}

/* `zero` policy: NaN and +-inf become 0. With a non-finite loss every gradient
 * element derives from it, so none is trusted: the whole gradient becomes 0. */
static void zero_nonfinite(cn_paramset *ps, int loss_nonfinite)
{
    for (int i = 0; i < ps->count; i++) {
        float *g = ps->grad + ps->info[i].offset;
        for (size_t j = 0; j < ps->info[i].numel; j++)
            if (loss_nonfinite || !isfinite(g[j])) g[j] = 0.0f;
    }
}

static void report_post(cn_clip *c, const cn_clip_stats *s)
{
    for (int i = 0; i < c->n_tensors; i++) c->rep.tensor_norm_post[i] = sqrt(s->sumsq[i]);
    c->rep.norm_post = sqrt(s->total_sumsq);
}

cn_status cn_clip_run(cn_clip *c, cn_paramset *ps, int loss_nonfinite, cn_clip_action *action)
{
    *action = CN_CLIP_UPDATE;
    if (!ps->finalized || ps->count != c->n_tensors)
        return cn_error(CN_ERR_STATE, "clip: stage built for %d tensors, paramset has %d", c->n_tensors, ps->count);
    cn_clip_report *r = &c->rep;
    cn_status st = cn_clip_compute_stats(ps, &c->pre);
    if (st) return st;

    /* the incoming gradient */
    for (int i = 0; i < c->n_tensors; i++) r->tensor_norm_pre[i] = sqrt(c->pre.sumsq[i]);
    r->norm_pre_l2 = sqrt(c->pre.total_sumsq);
    r->norm_pre = stage_norm(&c->pre, ps, c->norm_type);
    /* Accepted norm types (p >= 1, inf) give a finite norm for every finite gradient (cn_clip_total_norm);
     * a non-finite one here would scale every update to nothing (coef 0) while the run looked healthy,
     * so it is an error, never a silent clip. */
    if (c->pre.n_nonfinite == 0 && !(isfinite(r->norm_pre) && isfinite(r->norm_pre_l2)))
        return cn_error(CN_ERR_NONFINITE, "clip: the norm of a finite gradient is not finite (norm type %g)", c->norm_type);
    r->max_abs = c->pre.max_abs;
    r->n_nonfinite = c->pre.n_nonfinite;
    if (c->pre.first_nonfinite >= 0)
        snprintf(r->first_nonfinite, sizeof r->first_nonfinite, "%s", ps->info[c->pre.first_nonfinite].name);
    else
        r->first_nonfinite[0] = 0;
    r->loss_nonfinite = loss_nonfinite ? 1 : 0;
    r->coef = 1;
    r->threshold = NAN;
    r->clipped = 0;
    r->skipped = 0;
    r->n_elems_clipped = 0;
    r->autoclip_threshold = r->zclip_mu = r->zclip_sigma = r->zclip_z = NAN;

    /* non-finite policy, on the statistics, before any mode changes anything */
    const cn_clip_stats *cur = &c->pre;
    int modified = 0;
    if (c->pre.n_nonfinite > 0 || loss_nonfinite) {
        switch (c->policy) {
        case CN_NONFINITE_SKIP:
            if (c->consecutive_skips < c->max_skips) {
                c->consecutive_skips++;
                c->total_skips++;
                r->skipped = 1;
                *action = CN_CLIP_SKIP;
            } else {
                *action = CN_CLIP_STOP;   /* too many in a row: behave as stop */
            }
            break;
        case CN_NONFINITE_STOP:
            *action = CN_CLIP_STOP;
            break;
        case CN_NONFINITE_ZERO:
            zero_nonfinite(ps, loss_nonfinite);
            if ((st = cn_clip_compute_stats(ps, &c->cur))) return st;
            cur = &c->cur;
            modified = 1;
            break;
        case CN_NONFINITE_PROPAGATE:
            break;
        }
        if (*action != CN_CLIP_UPDATE) {
            /* gradients untouched; the optimizer gets nothing */
            r->consecutive_skips = c->consecutive_skips;
            r->total_skips = c->total_skips;
            report_post(c, &c->pre);
            return CN_OK;
        }
    }
    c->consecutive_skips = 0;

    /* the clippers, in order */
    int have_global = 0;
    for (int s = 0; s < c->n_stages; s++) {
        cn_clip_ctx ctx = {.ps = ps, .stats = cur, .report = r, .coef = 1, .threshold = NAN};
        if ((st = c->stages[s]->ops->apply(c->stages[s], &ctx)))
            return cn_error_prefix(st, "clip stage %d (\"%s\")", s, c->defs[s]->name);
        if (c->defs[s]->global_norm) {
            r->coef = ctx.coef;
            r->threshold = ctx.threshold;
            have_global = 1;
        } else if (!have_global && isnan(r->threshold)) {
            r->threshold = ctx.threshold;
        }
        if (ctx.clipped) r->clipped = 1;
        r->n_elems_clipped += ctx.n_elems_clipped;
        if (ctx.modified) {
            modified = 1;
            /* the next stage sees the gradient as it is now */
            if (s + 1 < c->n_stages) {
                if ((st = cn_clip_compute_stats(ps, &c->cur))) return st;
                cur = &c->cur;
            }
        }
    }

    /* what the optimizer receives */
    if (modified) {
        if ((st = cn_clip_compute_stats(ps, &c->cur))) return st;
        cur = &c->cur;
    }
    report_post(c, cur);
    r->consecutive_skips = c->consecutive_skips;
    r->total_skips = c->total_skips;
    return CN_OK;
}

const cn_clip_report *cn_clip_last_report(const cn_clip *c) { return &c->rep; }
const cn_clip_stats *cn_clip_last_stats(const cn_clip *c) { return &c->pre; }
int cn_clip_has_threshold(const cn_clip *c) { return c->has_threshold; }
int cn_clip_n_stages(const cn_clip *c) { return c->n_stages; }
cn_nonfinite_policy cn_clip_policy(const cn_clip *c) { return c->policy; }

/* ------------------------------------------------------------------------ */
/* Checkpoint state                                                         */
/* ------------------------------------------------------------------------ */

cn_status cn_clip_save_state(const cn_clip *c, cn_state *out)
{
    char prefix[32];
    cn_status st;
    for (int i = 0; i < c->n_stages; i++) {
        if (!c->stages[i]->ops->save_state) continue;
        snprintf(prefix, sizeof prefix, "clip.%d", i);
        if ((st = c->stages[i]->ops->save_state(c->stages[i], prefix, out))) return st;
    }
    if ((st = cn_state_add(out, "clip.consecutive_skips", CN_DT_I64, 0, NULL, (void *)&c->consecutive_skips))) return st;
    return cn_state_add(out, "clip.total_skips", CN_DT_I64, 0, NULL, (void *)&c->total_skips);
}

cn_status cn_clip_load_state(cn_clip *c, const cn_state *in)
{
    char prefix[32];
    cn_status st;
    /* the stage's own counters first: skips happen only under "skip", at most max_consecutive_skips in a row */
    int64_t cs, ts;
    if ((st = cn_state_get_i64(in, "clip.consecutive_skips", &cs))) return st;
    if ((st = cn_state_get_i64(in, "clip.total_skips", &ts))) return st;
    long long max_cs = c->policy == CN_NONFINITE_SKIP ? c->max_skips : 0;
    if (cs < 0 || cs > max_cs)
        return cn_error(CN_ERR_FORMAT, "state 'clip.consecutive_skips': %lld is outside [0, %lld]", (long long)cs, max_cs);
    if (ts < cs || (c->policy != CN_NONFINITE_SKIP && ts != 0))
        return cn_error(CN_ERR_FORMAT, "state 'clip.total_skips': %lld is not possible with %lld consecutive skips%s",
                        (long long)ts, (long long)cs, c->policy != CN_NONFINITE_SKIP ? " (on_nonfinite is not \"skip\")" : "");
    for (int i = 0; i < c->n_stages; i++) {
        if (!c->stages[i]->ops->load_state) continue;
        snprintf(prefix, sizeof prefix, "clip.%d", i);
        if ((st = c->stages[i]->ops->load_state(c->stages[i], prefix, in))) return st;
    }
    c->consecutive_skips = cs;
    c->total_skips = ts;
    return CN_OK;
}

static const char *const k_mode_ids[] = {"none", "value", "norm", "norm_per_tensor", "agc", "autoclip", "zclip"};

/* One stage object from its options: only the mode's own keys, only where they differ from 0. */
static cn_status stage_json(const cn_clip_opts *o, cJSON *obj)
{
    cn_status st = cn_json_set(obj, "mode", cJSON_CreateString(k_mode_ids[o->mode]));
    for (int q = 0; !st && k_policies[q]; q++)
        if (o->on_nonfinite != CN_NONFINITE_STOP && k_policy_values[q] == o->on_nonfinite)
            st = cn_json_set(obj, "on_nonfinite", cJSON_CreateString(k_policies[q]));
    if (!st) st = cn_json_set_opt(obj, "max_consecutive_skips", (double)o->max_consecutive_skips);
    switch (o->mode) {
    case CN_CLIP_MODE_NONE: break;
    case CN_CLIP_MODE_VALUE:
        if (!st) st = cn_json_set(obj, "clip_value", cJSON_CreateNumber(o->clip_value));
        break;
    case CN_CLIP_MODE_NORM:
        if (!st) st = cn_json_set(obj, "max_norm", cJSON_CreateNumber(o->max_norm));
        if (!st && isinf(o->norm_type) && o->norm_type > 0) st = cn_json_set(obj, "norm_type", cJSON_CreateString("inf"));
        else if (!st) st = cn_json_set_opt(obj, "norm_type", o->norm_type);
        if (!st) st = cn_json_set_opt(obj, "eps", o->eps);
        break;
    case CN_CLIP_MODE_NORM_PER_TENSOR:
        if (!st) st = cn_json_set(obj, "max_norm", cJSON_CreateNumber(o->max_norm));
        break;
    case CN_CLIP_MODE_AGC:
        if (!st) st = cn_json_set_opt(obj, "clipping", o->clipping);
        if (!st) st = cn_json_set_opt(obj, "eps", o->eps);
        break;
    case CN_CLIP_MODE_AUTOCLIP:
        if (!st) st = cn_json_set_opt(obj, "percentile", o->percentile);
        if (!st) st = cn_json_set_opt(obj, "history", (double)o->history);
        if (!st) st = cn_json_set_opt(obj, "fallback_max_norm", o->fallback_max_norm);
        if (!st && o->include_current) st = cn_json_set(obj, "include_current", cJSON_CreateTrue());
        break;
    case CN_CLIP_MODE_ZCLIP:
        if (!st) st = cn_json_set_opt(obj, "alpha", o->alpha);
        if (!st) st = cn_json_set_opt(obj, "z_thresh", o->z_thresh);
        if (!st) st = cn_json_set_opt(obj, "warmup", (double)o->warmup);
        if (!st) st = cn_json_set_opt(obj, "max_norm", o->max_norm);
        if (!st && o->ema_uncapped) st = cn_json_set(obj, "ema_input", cJSON_CreateString("uncapped"));
        break;
    }
    return st;
}

cn_status cn_clip_new(const cn_clip_opts *stages, int n_stages, const cn_paramset *ps, cn_clip **out)
{
    *out = NULL;
    if (n_stages < 1 || !stages) return cn_error(CN_ERR_ARG, "clip: expected at least one stage, got %d", n_stages);
    for (int i = 0; i < n_stages; i++)
        if ((unsigned)stages[i].mode > CN_CLIP_MODE_ZCLIP)
            return cn_error(CN_ERR_ARG, "clip.%d.mode: unknown built-in mode %d", i, (int)stages[i].mode);
    cJSON *j = n_stages == 1 ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!j) return cn_error(CN_ERR_NOMEM, "out of memory building the clip stage");
    cn_status st = CN_OK;
    for (int i = 0; i < n_stages && !st; i++) {
        cJSON *obj = n_stages == 1 ? j : cJSON_CreateObject();
        if (!obj) { st = cn_error(CN_ERR_NOMEM, "out of memory building the clip stage"); break; }
        if (obj != j && !cJSON_AddItemToArray(j, obj)) {
            cJSON_Delete(obj);
            st = cn_error(CN_ERR_NOMEM, "out of memory building the clip stage");
            break;
        }
        st = stage_json(&stages[i], obj);
    }
    if (!st) st = cn_clip_from_json(j, "clip", ps, out);
    cJSON_Delete(j);
    return st;
}
