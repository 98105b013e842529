/* The report's sweep section: what a swept setting did, as a curve over its values ("at what
 * threshold should I clip?").
 *
 * Sweeps are found in the runs themselves (their config.json), whatever made them (--sweep, a list of
 * --variant flags, runs gathered by `clipnn report`): a family is a set of three or more variants whose
 * configs agree on every setting but one, a number that takes three or more values among them (the
 * seed and the name are not settings here). One setting may have several families (max_norm swept at
 * each of two learning rates): they share its chart, one colour each, named by what sets them apart.
 * At most SWEEP_PATHS settings and SWEEP_FAMILIES families per setting are drawn.
 *
 * Per variant of a family, over its runs that ran to their end (finished or diverged, as the table):
 *  - the loss of each run: its test loss, or its final training loss when no counted run of the
 *    report has a test loss (as the paired section); a dot per run, an open circle for a run that
 *    blew up, an x at the top of the chart for one that diverged (it has no loss);
 *  - the median of those losses, a diverged run or a non-finite loss counting as +inf, so that the
 *    median has a gap where half or more of the runs diverged;
 *  - the divergence rate (runs that diverged or blew up / counted runs) and the clip rate (mean of
 *    the runs' clip_frac: the fraction of steps whose gradient the clip stage changed);
 *  - best: the lowest median among the values none of whose runs diverged or blew up (the rule of
 *    the table's highlighted variant);
 *  - with a test set, the median test metric over the runs that neither diverged nor blew up.
 * The reference (the paired section's baseline: --baseline, else noclip when it is a variant, else the
 * first variant; noclip instead when that baseline is itself a swept value) is a dashed line at its
 * median.
 * The x axis is logarithmic when every value is positive, linear otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "report/internal.h"

#define SWEEP_PATHS 4
#define SWEEP_FAMILIES 8
#define SWEEP_MIN_VALUES 3
#define SWEEP_SEEDS_LISTED 10   /* the markdown table lists at most this many runs per value */

static const char *const colours[SWEEP_FAMILIES] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                                     "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
#define BASELINE_COLOUR "#555555"

enum { RUN_OK, RUN_BLEW, RUN_DIVERGED, RUN_NOVALUE };

typedef struct {
    const char *name;
    int *runs, n;                /* indices into rd */
    void *config;                /* the first run's config.json that was read, or NULL */
    cn_report_leaves leaves;
    int *order;                  /* leaf indices sorted by path */
} variant;

typedef struct {
    int vi;                      /* the variant */
    double x;                    /* the swept value */
    int counted, diverged, blew, unfinished;
    double *y;                   /* per counted run: its loss (NAN when it has none) */
    unsigned char *kind;         /* RUN_* per counted run */
    long long *seed;
    double median, div_rate, clip_rate;
    double metric;               /* median test metric over the runs that neither diverged nor blew up */
    int n_metric;                /* how many of those had one */
} point;

typedef struct {
    char *fixed;                 /* what sets the family apart from the setting's other families ("" alone) */
    point *p;
    int n;
    int best;                    /* index into p, or -1 */
} family;

typedef struct {
    const char *path;            /* the setting (a leaf path of the first variant that has it) */
    family *f;
    int nf, more;                /* families drawn, families left out */
    int log_x;
} sweep;

typedef struct {
    variant *v;
    int nv;
    sweep s[SWEEP_PATHS];
    int ns;
    int by_test;
    const char *metric;          /* the test metric's name when a counted run has one (by_test), else NULL */
    int base;                    /* the baseline variant, or -1 */
    point base_pt;
    int oom;
} sweeps;

/* ---- variants and their settings ---- */

static const char *variant_of(const cn_report_rundata *d) { return d->in && d->in->variant ? d->in->variant : ""; }

static const cn_report_leaves *sort_leaves;
static int cmp_leaf(const void *a, const void *b)
{
    return strcmp(sort_leaves->v[*(const int *)a].path, sort_leaves->v[*(const int *)b].path);
}

/* Not settings: what differs between runs of one variant, or names it. */
static int ignored(const char *path) { return !strcmp(path, "seed") || !strcmp(path, "name"); }

/* Every setting of variant v but `path`, sorted, as one string: equal strings, equal settings. */
static char *signature(sweeps *S, const variant *v, const char *path)
{
    cn_report_buf b = {0};
    for (int k = 0; k < v->leaves.n; k++) {
        const cn_report_leaf *l = &v->leaves.v[v->order[k]];
        if (ignored(l->path) || !strcmp(l->path, path)) continue;
        cn_report_printf(&b, "%s\x1f%s\x1e", l->path, l->value);
    }
    if (!b.p) cn_report_puts(&b, "");
    if (b.oom) { cn_report_buf_free(&b); S->oom = 1; return NULL; }
    return b.p;
}

static int num_at(const variant *v, const char *path, double *x)
{
    const cn_report_leaf *l = v->config ? cn_report_leaf_find(&v->leaves, path) : NULL;
    if (!l || !l->is_num || !isfinite(l->num)) return 0;
    *x = l->num;
    return 1;
}

static int distinct(const double *x, int n)
{
    int d = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int k = 0; k < i && !seen; k++) seen = x[k] == x[i];
        d += !seen;
    }
    return d;
}

/* ---- a value's numbers ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void measure(sweeps *S, const cn_report_rundata *rd, int vi, double x, point *p)
{
    const variant *v = &S->v[vi];
    memset(p, 0, sizeof *p);
    p->vi = vi;
    p->x = x;
    p->median = p->div_rate = p->clip_rate = NAN;
    size_t n = (size_t)(v->n ? v->n : 1);
    p->y = cn_malloc(n * sizeof *p->y);
    p->kind = cn_malloc(n);
    p->seed = cn_malloc(n * sizeof *p->seed);
    double *sorted = cn_malloc(n * sizeof *sorted), *met = cn_malloc(n * sizeof *met);
    p->metric = NAN;
    if (!p->y || !p->kind || !p->seed || !sorted || !met) { S->oom = 1; cn_free(sorted); cn_free(met); return; }
    double clip = 0;
    int nclip = 0;
    for (int k = 0; k < v->n; k++) {
        const cn_report_rundata *d = &rd[v->runs[k]];
        if (!cn_report_counts(d, 0)) { p->unfinished++; continue; }
        cn_report_val l = S->by_test ? d->test_loss : d->final_loss;
        int c = p->counted++;
        p->seed[c] = d->in ? d->in->seed : 0;
        p->y[c] = l.present && isfinite(l.v) ? l.v : NAN;
        if (d->status == CN_RUN_DIVERGED) p->kind[c] = RUN_DIVERGED, p->y[c] = NAN, p->diverged++;
        else if (d->blew_up) p->kind[c] = RUN_BLEW, p->blew++;
        else p->kind[c] = isnan(p->y[c]) ? RUN_NOVALUE : RUN_OK;
        sorted[c] = isnan(p->y[c]) ? INFINITY : p->y[c];
        if (d->clip_frac.present && isfinite(d->clip_frac.v)) { clip += d->clip_frac.v; nclip++; }
        if (p->kind[c] == RUN_OK && d->test_metric.present && isfinite(d->test_metric.v)) met[p->n_metric++] = d->test_metric.v;
    }
    if (p->n_metric) {
        qsort(met, (size_t)p->n_metric, sizeof *met, cmp_double);
        int m = p->n_metric;
        p->metric = m % 2 ? met[m / 2] : 0.5 * (met[m / 2 - 1] + met[m / 2]);
    }
    cn_free(met);
    if (p->counted) {
        int m = p->counted;
        qsort(sorted, (size_t)m, sizeof *sorted, cmp_double);
        double med = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
        p->median = isfinite(med) ? med : NAN;
        p->div_rate = (double)(p->diverged + p->blew) / m;
    }
    if (nclip) p->clip_rate = clip / nclip;
    cn_free(sorted);
}

static void free_point(point *p)
{
    cn_free(p->y);
    cn_free(p->kind);
    cn_free(p->seed);
}

static int cmp_point(const void *a, const void *b)
{
    const point *p = a, *q = b;
    return p->x < q->x ? -1 : p->x > q->x ? 1 : p->vi - q->vi;
}

/* ---- finding the sweeps ---- */

static void add_sweep(sweeps *S, const cn_report_rundata *rd, const char *path)
{
    int *member = cn_malloc((size_t)S->nv * sizeof *member), *fam = cn_malloc((size_t)S->nv * sizeof *fam);
    char **sig = cn_calloc((size_t)S->nv, sizeof *sig);
    double *xs = cn_malloc((size_t)S->nv * sizeof *xs);
    sweep *sw = &S->s[S->ns];
    memset(sw, 0, sizeof *sw);
    if (!member || !fam || !sig || !xs) { S->oom = 1; goto out; }
    int m = 0;
    for (int i = 0; i < S->nv; i++) {
        double x;
        if (!num_at(&S->v[i], path, &x)) continue;
        if (!(sig[m] = signature(S, &S->v[i], path))) goto out;
        member[m++] = i;
    }
    /* families: members with equal signatures, in order of first appearance */
    for (int a = 0; a < m; a++) fam[a] = -1;
    for (int a = 0; a < m; a++) {
        if (fam[a] >= 0) continue;
        fam[a] = a;
        int n = 0;
        for (int c = a; c < m; c++)
            if (c == a || (fam[c] < 0 && !strcmp(sig[a], sig[c]))) {
                fam[c] = a;
                num_at(&S->v[member[c]], path, &xs[n++]);
            }
        if (distinct(xs, n) < SWEEP_MIN_VALUES) continue;
        if (sw->nf == SWEEP_FAMILIES) { sw->more++; continue; }
        if (!sw->f && !(sw->f = cn_calloc(SWEEP_FAMILIES, sizeof *sw->f))) { S->oom = 1; goto out; }
        family *f = &sw->f[sw->nf++];
        f->best = -1;
        if (!(f->p = cn_calloc((size_t)n, sizeof *f->p))) { S->oom = 1; goto out; }
        for (int c = a; c < m; c++)
            if (fam[c] == a) {
                double x = NAN;
                num_at(&S->v[member[c]], path, &x);
                measure(S, rd, member[c], x, &f->p[f->n++]);
            }
        qsort(f->p, (size_t)f->n, sizeof *f->p, cmp_point);
        for (int k = 0; k < f->n; k++) {
            const point *p = &f->p[k];
            if (p->counted && !p->diverged && !p->blew && isfinite(p->median) &&
                (f->best < 0 || p->median < f->p[f->best].median))
                f->best = k;
        }
    }
    if (!sw->nf) goto out;
    /* what sets each family apart from the others of this setting */
    void **cfg = cn_calloc((size_t)sw->nf, sizeof *cfg);
    char **fixed = cn_calloc((size_t)sw->nf, sizeof *fixed);
    if (!cfg || !fixed) { cn_free(cfg); cn_free(fixed); S->oom = 1; goto out; }
    for (int k = 0; k < sw->nf; k++) cfg[k] = S->v[sw->f[k].p[0].vi].config;
    if (cn_report_settings_except(cfg, sw->nf, path, fixed)) S->oom = 1;
    for (int k = 0; k < sw->nf; k++) sw->f[k].fixed = fixed[k];
    cn_free(cfg);
    cn_free(fixed);
    sw->path = path;
    sw->log_x = 1;
    for (int k = 0; k < sw->nf; k++)
        for (int i = 0; i < sw->f[k].n; i++) sw->log_x &= sw->f[k].p[i].x > 0;
    S->ns++;
out:
    if (sw->nf && !sw->path) {   /* abandoned half-way (out of memory) */
        for (int k = 0; k < sw->nf; k++) {
            for (int i = 0; i < sw->f[k].n; i++) free_point(&sw->f[k].p[i]);
            cn_free(sw->f[k].p);
            cn_free(sw->f[k].fixed);
        }
        cn_free(sw->f);
        memset(sw, 0, sizeof *sw);
    }
    for (int i = 0; sig && i < S->nv; i++) cn_free(sig[i]);
    cn_free(sig);
    cn_free(member);
    cn_free(fam);
    cn_free(xs);
}

static void sweeps_free(sweeps *S)
{
    for (int s = 0; s < S->ns; s++) {
        for (int k = 0; k < S->s[s].nf; k++) {
            for (int i = 0; i < S->s[s].f[k].n; i++) free_point(&S->s[s].f[k].p[i]);
            cn_free(S->s[s].f[k].p);
            cn_free(S->s[s].f[k].fixed);
        }
        cn_free(S->s[s].f);
    }
    for (int i = 0; S->v && i < S->nv; i++) {
        cn_free(S->v[i].runs);
        cn_free(S->v[i].order);
        cn_report_leaves_free(&S->v[i].leaves);
    }
    cn_free(S->v);
    free_point(&S->base_pt);
}

/* Is variant vi a value of some sweep? */
static int in_family(const sweeps *S, int vi)
{
    for (int s = 0; s < S->ns; s++)
        for (int k = 0; k < S->s[s].nf; k++)
            for (int i = 0; i < S->s[s].f[k].n; i++)
                if (S->s[s].f[k].p[i].vi == vi) return 1;
    return 0;
}

static int has_value(const cn_report_rundata *d, int test)
{
    cn_report_val v = test ? d->test_loss : d->final_loss;
    return cn_report_counts(d, 0) && v.present && isfinite(v.v);
}

/* The sweeps among the runs; S->oom on allocation failure (S is then still safe to free). */
static void sweeps_find(sweeps *S, const cn_report_rundata *rd, int n, const char *baseline)
{
    memset(S, 0, sizeof *S);
    S->base = -1;
    S->v = cn_calloc((size_t)(n ? n : 1), sizeof *S->v);
    if (!S->v) { S->oom = 1; return; }
    for (int i = 0; i < n; i++) {
        const char *name = variant_of(&rd[i]);
        int vi = 0;
        while (vi < S->nv && strcmp(S->v[vi].name, name)) vi++;
        if (vi == S->nv) {
            S->v[vi].name = name;
            if (!(S->v[vi].runs = cn_malloc((size_t)n * sizeof(int)))) { S->oom = 1; return; }
            S->nv++;
        }
        variant *v = &S->v[vi];
        v->runs[v->n++] = i;
        if (!v->config) v->config = rd[i].config;
    }
    for (int i = 0; i < n; i++) S->by_test |= has_value(&rd[i], 1);
    for (int i = 0; i < n && S->by_test && !S->metric; i++)
        if (cn_report_counts(&rd[i], 0) && rd[i].test_metric.present && isfinite(rd[i].test_metric.v))
            S->metric = rd[i].metric_name;
    for (int vi = 0; vi < S->nv; vi++) {
        variant *v = &S->v[vi];
        cn_report_flatten(&v->leaves, v->config);
        v->order = cn_malloc((size_t)(v->leaves.n ? v->leaves.n : 1) * sizeof *v->order);
        if (v->leaves.oom || !v->order) { S->oom = 1; return; }
        for (int k = 0; k < v->leaves.n; k++) v->order[k] = k;
        sort_leaves = &v->leaves;
        qsort(v->order, (size_t)v->leaves.n, sizeof *v->order, cmp_leaf);
    }
    /* candidate settings: numbers with SWEEP_MIN_VALUES or more values, in the order met */
    double *xs = cn_malloc((size_t)(S->nv ? S->nv : 1) * sizeof *xs);
    if (!xs) { S->oom = 1; return; }
    for (int vi = 0; vi < S->nv && S->ns < SWEEP_PATHS && !S->oom; vi++) {
        const variant *v = &S->v[vi];
        for (int k = 0; k < v->leaves.n && S->ns < SWEEP_PATHS && !S->oom; k++) {
            const char *path = v->leaves.v[k].path;
            if (!v->leaves.v[k].is_num || ignored(path)) continue;
            int seen = 0;
            for (int u = 0; u < vi && !seen; u++) seen = S->v[u].config && cn_report_leaf_find(&S->v[u].leaves, path);
            for (int s = 0; s < S->ns && !seen; s++) seen = !strcmp(S->s[s].path, path);
            if (seen) continue;
            int m = 0;
            for (int u = 0; u < S->nv; u++) m += num_at(&S->v[u], path, &xs[m]);
            if (distinct(xs, m) >= SWEEP_MIN_VALUES) add_sweep(S, rd, path);
        }
    }
    cn_free(xs);
    if (!S->ns || S->oom) return;
    const char *bname = baseline;
    if (!bname)
        for (int vi = 0; vi < S->nv && !bname; vi++)
            if (!strcmp(S->v[vi].name, "noclip")) bname = "noclip";
    if (!bname && S->nv) bname = S->v[0].name;
    for (int vi = 0; bname && vi < S->nv; vi++)
        if (!strcmp(S->v[vi].name, bname)) S->base = vi;
    /* a baseline that is one of the swept values is a point already: then noclip, when it is not */
    if (S->base >= 0 && in_family(S, S->base)) {
        S->base = -1;
        for (int vi = 0; vi < S->nv; vi++)
            if (!strcmp(S->v[vi].name, "noclip") && !in_family(S, vi)) S->base = vi;
    }
    if (S->base >= 0) measure(S, rd, S->base, NAN, &S->base_pt);
}

/* Is the baseline a member of family f (then it is one of its points, not a line)? */
static int base_in(const sweeps *S, const family *f)
{
    for (int i = 0; i < f->n; i++)
        if (f->p[i].vi == S->base) return 1;
    return 0;
}

/* ---- text ---- */

/* The family's legend label: what sets it apart, else the setting itself. */
static const char *label(const sweep *sw, const family *f) { return *f->fixed ? f->fixed : sw->path; }

static void fmt(char *out, size_t n, double v)
{
    if (isnan(v)) snprintf(out, n, "—");
    else snprintf(out, n, "%.4g", v);
}

static void pct(char *out, size_t n, double v)
{
    if (isnan(v)) snprintf(out, n, "—");
    else snprintf(out, n, "%.3g%%", 100 * v);
}

/* The median test metric, with how many runs had one when not all that count did: "0.91 (2 of 3)". */
static void metric_text(char *out, size_t n, const point *p)
{
    char v[32];
    fmt(v, sizeof v, p->metric);
    int of = p->counted - p->diverged - p->blew;
    if (p->n_metric && p->n_metric < of) snprintf(out, n, "%s (%d of %d)", v, p->n_metric, of);
    else snprintf(out, n, "%s", v);
}

/* "s1 0.0301, s2 diverged, s3 12.5 (blew up)" */
static void seeds_text(cn_report_buf *b, const point *p)
{
    char v[32];
    int shown = p->counted < SWEEP_SEEDS_LISTED ? p->counted : SWEEP_SEEDS_LISTED;
    for (int c = 0; c < shown; c++) {
        fmt(v, sizeof v, p->y[c]);
        cn_report_printf(b, "%ss%lld %s%s", c ? ", " : "", p->seed[c],
                         p->kind[c] == RUN_DIVERGED ? "diverged" : v, p->kind[c] == RUN_BLEW ? " (blew up)" : "");
    }
    if (p->counted > shown) cn_report_printf(b, ", … (%d more)", p->counted - shown);
    if (!p->counted) cn_report_puts(b, "—");
}

static void best_text(cn_report_buf *b, const sweeps *S, const sweep *sw, const family *f)
{
    const char *what = S->by_test ? "test loss" : "final training loss";
    char v[32];
    if (f->best < 0) {
        cn_report_printf(b, "No value qualifies as best (the rule: the lowest median %s among the values none of whose "
                            "runs diverged or blew up).", what);
    } else {
        const point *p = &f->p[f->best];
        fmt(v, sizeof v, p->median);
        cn_report_printf(b, "Best: %s = %.6g (variant %s), median %s %s: the lowest median among the values none of "
                            "whose runs diverged or blew up.", sw->path, p->x, S->v[p->vi].name, what, v);
    }
    if (S->base >= 0 && !base_in(S, f)) {
        const point *q = &S->base_pt;
        fmt(v, sizeof v, q->median);
        if (isnan(q->median))
            cn_report_printf(b, " Baseline %s: no median %s (%d/%d diverged, %d/%d blew up).", S->v[S->base].name,
                             what, q->diverged, q->counted, q->blew, q->counted);
        else
            cn_report_printf(b, " Baseline %s: median %s %s (%d/%d diverged, %d/%d blew up).", S->v[S->base].name,
                             what, v, q->diverged, q->counted, q->blew, q->counted);
    }
}

/* Appends text t to b, escaped for HTML (html) or markdown, and frees t. */
static void put(cn_report_buf *b, cn_report_buf *t, int html)
{
    if (html) cn_report_html(b, t->p ? t->p : "");
    else cn_report_md(b, t->p ? t->p : "");
    b->oom |= t->oom;
    cn_report_buf_free(t);
}

static const char *const intro =
    "Each value of %s that three or more variants differing in nothing else tried: the %s of each run "
    "that ran to its end, their median (a diverged run counting as +inf: no median when half or more "
    "diverged), how many diverged or blew up, and the share of steps the clip stage changed.";

void cn_report_sweep_md(cn_report_buf *b, const cn_report_rundata *rd, int n, const char *baseline)
{
    sweeps S;
    sweeps_find(&S, rd, n, baseline);
    const char *what = S.by_test ? "test loss" : "final training loss";
    for (int s = 0; s < S.ns && !S.oom; s++) {
        const sweep *sw = &S.s[s];
        cn_report_puts(b, "\n## Sweep: ");
        cn_report_md(b, sw->path);
        cn_report_puts(b, "\n\n");
        cn_report_buf t = {0};
        cn_report_printf(&t, intro, sw->path, what);
        put(b, &t, 0);
        if (sw->more) cn_report_printf(b, " (%d more families of this setting are not shown.)", sw->more);
        cn_report_puts(b, "\n");
        for (int k = 0; k < sw->nf; k++) {
            const family *f = &sw->f[k];
            if (sw->nf > 1) {
                cn_report_puts(b, "\n### ");
                cn_report_md(b, label(sw, f));
                cn_report_puts(b, "\n");
            }
            cn_report_puts(b, "\n| ");
            cn_report_md(b, sw->path);
            cn_report_printf(b, " | variant | runs | median %s | %s per seed | diverged | blew up | clipped steps |", what,
                             what);
            if (S.metric) {
                cn_report_puts(b, " median test ");
                cn_report_md(b, S.metric);
                cn_report_puts(b, " |");
            }
            cn_report_printf(b, "\n|---:|---|---:|---:|---|---:|---:|---:|%s\n", S.metric ? "---:|" : "");
            for (int i = 0; i < f->n; i++) {
                const point *p = &f->p[i];
                char med[32], clip[32];
                fmt(med, sizeof med, p->median);
                pct(clip, sizeof clip, p->clip_rate);
                cn_report_printf(b, "| %.6g | ", p->x);
                cn_report_md(b, S.v[p->vi].name);
                if (i == f->best) cn_report_puts(b, " (best)");
                cn_report_printf(b, " | %d", p->counted);
                if (p->unfinished) cn_report_printf(b, " (+%d unfinished)", p->unfinished);
                cn_report_printf(b, " | %s | ", med);
                cn_report_buf t2 = {0};
                seeds_text(&t2, p);
                put(b, &t2, 0);
                cn_report_printf(b, " | %d/%d | %d/%d | %s |", p->diverged, p->counted, p->blew, p->counted, clip);
                if (S.metric) {
                    char mt[96];
                    metric_text(mt, sizeof mt, p);
                    cn_report_printf(b, " %s |", mt);
                }
                cn_report_puts(b, "\n");
            }
            cn_report_buf t3 = {0};
            best_text(&t3, &S, sw, f);
            cn_report_puts(b, "\n");
            put(b, &t3, 0);
            cn_report_puts(b, "\n");
        }
    }
    if (S.ns)
        cn_report_puts(b, "\nThe sweep charts (loss, divergence and clip rate against the value): "
                          "[report.html](report.html).\n");
    b->oom |= S.oom;
    sweeps_free(&S);
}

/* ---- charts ---- */

static void free_line(cn_report_line *l)
{
    cn_free(l->x);
    cn_free(l->y);
    memset(l, 0, sizeof *l);
}

static int new_line(sweeps *S, cn_report_line *l, long long n)
{
    l->x = cn_malloc((size_t)(n ? n : 1) * sizeof *l->x);
    l->y = cn_malloc((size_t)(n ? n : 1) * sizeof *l->y);
    l->n = n;
    if (!l->x || !l->y) { free_line(l); S->oom = 1; return 0; }
    return 1;
}

static void free_series(cn_report_series *s)
{
    free_line(&s->points);
    free_line(&s->bold);
    free_line(&s->dashed);
    cn_free((void *)s->hollow);
    cn_free(s->marks);
}


static void loss_chart(cn_report_buf *b, sweeps *S, const sweep *sw, int si)
{
    int ns = sw->nf + 1;
    cn_report_series *s = cn_calloc((size_t)ns, sizeof *s);
    if (!s) { S->oom = 1; return; }
    double xmin = INFINITY, xmax = -INFINITY;
    int nseries = 0, base_line = 0;
    char note[96] = "";
    for (int k = 0; k < sw->nf && !S->oom; k++) {
        const family *f = &sw->f[k];
        cn_report_series *e = &s[nseries++];
        e->variant = label(sw, f);
        e->colour = colours[k % SWEEP_FAMILIES];
        long long runs = 0;
        for (int i = 0; i < f->n; i++) runs += f->p[i].counted;
        unsigned char *hollow = cn_calloc((size_t)(runs ? runs : 1), 1);
        e->hollow = hollow;
        e->marks = cn_calloc((size_t)(runs ? runs : 1), sizeof *e->marks);
        if (!hollow || !e->marks) { S->oom = 1; break; }
        if (!new_line(S, &e->points, runs) || !new_line(S, &e->bold, f->n)) break;
        e->points.n = 0;
        for (int i = 0; i < f->n; i++) {
            const point *p = &f->p[i];
            e->bold.x[i] = p->x;
            e->bold.y[i] = p->median;
            e->bold.diverged |= p->diverged || p->blew;
            if (p->x < xmin) xmin = p->x;
            if (p->x > xmax) xmax = p->x;
            for (int c = 0; c < p->counted; c++) {
                if (p->kind[c] == RUN_DIVERGED || p->kind[c] == RUN_NOVALUE) {
                    e->marks[e->n_marks++] = (cn_report_mark){p->x, NAN, p->seed[c], 0, 0, 1};
                    continue;
                }
                hollow[e->points.n] = p->kind[c] == RUN_BLEW;
                e->points.x[e->points.n] = p->x;
                e->points.y[e->points.n++] = p->y[c];
            }
        }
        e->points.diverged = e->bold.diverged;
    }
    if (!S->oom && S->base >= 0) {
        int outside = 0;
        for (int k = 0; k < sw->nf; k++) outside |= !base_in(S, &sw->f[k]);
        if (outside) {
            cn_report_series *e = &s[nseries++];
            e->variant = S->v[S->base].name;
            e->colour = BASELINE_COLOUR;
            const point *q = &S->base_pt;
            if (isfinite(q->median) && new_line(S, &e->dashed, 2)) {
                e->dashed.x[0] = xmin;
                e->dashed.x[1] = xmax;
                e->dashed.y[0] = e->dashed.y[1] = q->median;
                base_line = 1;
                snprintf(note, sizeof note, "baseline, median");
            } else {
                snprintf(note, sizeof note, "baseline: %d/%d diverged, no median", q->diverged, q->counted);
            }
            e->legend_note = note;
        }
    }
    if (!S->oom) {
        char id[32], title[300], ylabel[96];
        snprintf(id, sizeof id, "sweep-%d-loss", si);
        snprintf(title, sizeof title, "%s against %s", S->by_test ? "Test loss" : "Final training loss", sw->path);
        snprintf(ylabel, sizeof ylabel, "%s (log scale)", S->by_test ? "test loss" : "final loss");
        char xlabel[300];
        snprintf(xlabel, sizeof xlabel, "%s%s", sw->path, sw->log_x ? " (log scale)" : "");
        cn_report_chart c = {id, title, xlabel, ylabel, 1, 0, 1, 0, sw->log_x ? 1 : 2,
                             "dots: seeds (open: blew up), line: median", base_line ? "baseline median" : NULL,
                             "diverged (no loss)", NULL};
        cn_report_svg(b, &c, s, nseries);
    }
    for (int k = 0; k < ns; k++) free_series(&s[k]);
    cn_free(s);
}

static void rate_chart(cn_report_buf *b, sweeps *S, const sweep *sw, int si)
{
    cn_report_series *s = cn_calloc((size_t)sw->nf, sizeof *s);
    if (!s) { S->oom = 1; return; }
    for (int k = 0; k < sw->nf && !S->oom; k++) {
        const family *f = &sw->f[k];
        cn_report_series *e = &s[k];
        e->variant = label(sw, f);
        e->colour = colours[k % SWEEP_FAMILIES];
        if (!new_line(S, &e->bold, f->n) || !new_line(S, &e->dashed, f->n)) break;
        for (int i = 0; i < f->n; i++) {
            e->bold.x[i] = e->dashed.x[i] = f->p[i].x;
            e->bold.y[i] = f->p[i].div_rate;
            e->dashed.y[i] = f->p[i].clip_rate;
        }
    }
    if (!S->oom) {
        char id[32], title[300], xlabel[300];
        snprintf(id, sizeof id, "sweep-%d-rates", si);
        snprintf(title, sizeof title, "Divergence and clip rate against %s", sw->path);
        snprintf(xlabel, sizeof xlabel, "%s%s", sw->path, sw->log_x ? " (log scale)" : "");
        cn_report_chart c = {id, title, xlabel, "fraction", 0, -0.03, 1.05, 0, sw->log_x ? 1 : 2,
                             NULL, "dashed: share of steps clipped", NULL, "solid: share of runs diverged or blew up"};
        cn_report_svg(b, &c, s, sw->nf);
    }
    for (int k = 0; k < sw->nf; k++) free_series(&s[k]);
    cn_free(s);
}

static void html_num(cn_report_buf *b, const char *s)
{
    cn_report_puts(b, "<span class=\"num\">");
    cn_report_html(b, s);
    cn_report_puts(b, "</span>");
}

/* A number and its note ("0.91 (2 of 3)"): the number unbroken, the note apart. */
static void html_cell(cn_report_buf *b, const char *s)
{
    const char *paren = strstr(s, " (");
    char head[48];
    snprintf(head, sizeof head, "%.*s", paren ? (int)(paren - s) : (int)strlen(s), s);
    html_num(b, head);
    if (paren) {
        cn_report_puts(b, " <span class=\"note\">");
        cn_report_html(b, paren + 1);
        cn_report_puts(b, "</span>");
    }
}

void cn_report_sweep_html(cn_report_buf *b, const cn_report_rundata *rd, int n, const char *baseline)
{
    sweeps S;
    sweeps_find(&S, rd, n, baseline);
    const char *what = S.by_test ? "test loss" : "final training loss";
    for (int s = 0; s < S.ns && !S.oom; s++) {
        const sweep *sw = &S.s[s];
        cn_report_printf(b, "<section class=\"sweep\" id=\"sweep-%d\">\n<h2>Sweep: <code>", s);
        cn_report_html(b, sw->path);
        cn_report_puts(b, "</code></h2>\n<p class=\"howto\">");
        cn_report_buf t = {0};
        cn_report_printf(&t, intro, sw->path, what);
        put(b, &t, 1);
        if (sw->more) cn_report_printf(b, " (%d more families of this setting are not shown.)", sw->more);
        cn_report_puts(b, "</p>\n<figure>\n");
        loss_chart(b, &S, sw, s);
        cn_report_puts(b, "<figcaption>One dot per run at its value of the setting; the line joins the medians. An "
                          "&#215; at the top is a run that diverged; an open circle one that blew up (a finite loss "
                          "far above its early level).</figcaption>\n</figure>\n<figure>\n");
        rate_chart(b, &S, sw, s);
        cn_report_puts(b, "<figcaption>Solid: the share of the runs at each value that diverged or blew up. Dashed: "
                          "the share of their steps whose gradient the clip stage changed (mean over the runs). Where "
                          "nearly every step is clipped, clipping acts as a smaller learning rate.</figcaption>\n"
                          "</figure>\n");
        for (int k = 0; k < sw->nf; k++) {
            const family *f = &sw->f[k];
            if (sw->nf > 1) {
                cn_report_printf(b, "<h3><span class=\"swatch\" style=\"background:%s\"></span>",
                                 colours[k % SWEEP_FAMILIES]);
                cn_report_html(b, label(sw, f));
                cn_report_puts(b, "</h3>\n");
            }
            cn_report_puts(b, "<div class=\"scroll\"><table class=\"sweep\">\n<thead><tr><th>");
            cn_report_html(b, sw->path);
            cn_report_printf(b, "</th><th class=\"text\">variant</th><th>runs</th><th>median %s</th><th class=\"text\">%s per seed</th><th>diverged</th>"
                                "<th>blew up</th><th>clipped steps</th>", what, what);
            if (S.metric) {
                cn_report_puts(b, "<th>median test ");
                cn_report_html(b, S.metric);
                cn_report_puts(b, "</th>");
            }
            cn_report_puts(b, "</tr></thead>\n<tbody>\n");
            for (int i = 0; i < f->n; i++) {
                const point *p = &f->p[i];
                char v[64];
                cn_report_printf(b, "<tr%s><td>", i == f->best ? " class=\"winner\"" : "");
                snprintf(v, sizeof v, "%.6g", p->x);
                html_num(b, v);
                cn_report_puts(b, "</td><td class=\"variant\">");
                cn_report_html(b, S.v[p->vi].name);
                if (i == f->best) cn_report_puts(b, " <span class=\"badge\">best</span>");
                cn_report_puts(b, "</td><td>");
                snprintf(v, sizeof v, "%d", p->counted);
                html_num(b, v);
                if (p->unfinished) cn_report_printf(b, " <span class=\"note\">(+%d unfinished)</span>", p->unfinished);
                cn_report_puts(b, "</td><td>");
                fmt(v, sizeof v, p->median);
                html_num(b, v);
                cn_report_puts(b, "</td><td class=\"seeds\">");
                cn_report_buf t2 = {0};
                seeds_text(&t2, p);
                put(b, &t2, 1);
                cn_report_puts(b, "</td><td>");
                snprintf(v, sizeof v, "%d/%d", p->diverged, p->counted);
                html_num(b, v);
                cn_report_puts(b, "</td><td>");
                snprintf(v, sizeof v, "%d/%d", p->blew, p->counted);
                html_num(b, v);
                cn_report_puts(b, "</td><td>");
                pct(v, sizeof v, p->clip_rate);
                html_num(b, v);
                if (S.metric) {
                    char mt[96];
                    metric_text(mt, sizeof mt, p);
                    cn_report_puts(b, "</td><td>");
                    html_cell(b, mt);
                }
                cn_report_puts(b, "</td></tr>\n");
            }
            cn_report_puts(b, "</tbody></table></div>\n<p class=\"winner-rule\">");
            cn_report_buf t3 = {0};
            best_text(&t3, &S, sw, f);
            put(b, &t3, 1);
            cn_report_puts(b, "</p>\n");
        }
        cn_report_puts(b, "</section>\n");
    }
    b->oom |= S.oom;
    sweeps_free(&S);
}

/* ---- report.json ---- */

static cJSON *jnum(double v)
{
    if (isnan(v)) return cJSON_CreateNull();
    if (isinf(v)) return cJSON_CreateString(v > 0 ? "inf" : "-inf");
    return cJSON_CreateNumber(v);
}

static cJSON *point_json(const sweeps *S, const point *p)
{
    static const char *const outcome[] = {"finished", "blew up", "diverged", "no value"};
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (isfinite(p->x)) cJSON_AddItemToObject(o, "value", jnum(p->x));
    cJSON_AddStringToObject(o, "variant", S->v[p->vi].name);
    cJSON_AddNumberToObject(o, "counted", p->counted);
    cJSON_AddNumberToObject(o, "unfinished", p->unfinished);
    cJSON_AddNumberToObject(o, "diverged", p->diverged);
    cJSON_AddNumberToObject(o, "blew_up", p->blew);
    cJSON_AddItemToObject(o, "median", jnum(p->median));
    cJSON_AddItemToObject(o, "divergence_rate", jnum(p->div_rate));
    cJSON_AddItemToObject(o, "clip_rate", jnum(p->clip_rate));
    cJSON_AddItemToObject(o, "median_test_metric", jnum(p->metric));
    cJSON *seeds = cJSON_AddArrayToObject(o, "runs");
    if (!seeds) { cJSON_Delete(o); return NULL; }
    for (int c = 0; c < p->counted; c++) {
        cJSON *r = cJSON_CreateObject();
        if (!r || !cJSON_AddItemToArray(seeds, r)) { cJSON_Delete(r); cJSON_Delete(o); return NULL; }
        cJSON_AddNumberToObject(r, "seed", (double)p->seed[c]);
        cJSON_AddItemToObject(r, "loss", jnum(p->y[c]));
        cJSON_AddStringToObject(r, "outcome", outcome[p->kind[c]]);
    }
    return o;
}

cJSON *cn_report_sweep_json(const cn_report_rundata *rd, int n, const char *baseline, int *oom)
{
    sweeps S;
    sweeps_find(&S, rd, n, baseline);
    cJSON *a = cJSON_CreateArray();
    int bad = S.oom || !a;
    for (int s = 0; s < S.ns && !bad; s++) {
        const sweep *sw = &S.s[s];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(a, o)) { cJSON_Delete(o); bad = 1; break; }
        cJSON_AddStringToObject(o, "setting", sw->path);
        cJSON_AddBoolToObject(o, "log_x", sw->log_x);
        cJSON_AddStringToObject(o, "loss", S.by_test ? "test_loss" : "final_loss");
        if (S.metric) cJSON_AddStringToObject(o, "test_metric", S.metric);
        else cJSON_AddNullToObject(o, "test_metric");
        cJSON_AddNumberToObject(o, "families_not_shown", sw->more);
        if (S.base >= 0) {
            cJSON *bp = point_json(&S, &S.base_pt);
            if (!bp || !cJSON_AddItemToObject(o, "baseline", bp)) { cJSON_Delete(bp); bad = 1; break; }
        } else {
            cJSON_AddNullToObject(o, "baseline");
        }
        cJSON *fams = cJSON_AddArrayToObject(o, "families");
        if (!fams) { bad = 1; break; }
        for (int k = 0; k < sw->nf && !bad; k++) {
            const family *f = &sw->f[k];
            cJSON *fo = cJSON_CreateObject();
            if (!fo || !cJSON_AddItemToArray(fams, fo)) { cJSON_Delete(fo); bad = 1; break; }
            cJSON_AddStringToObject(fo, "fixed", f->fixed);
            if (f->best >= 0) cJSON_AddStringToObject(fo, "best", S.v[f->p[f->best].vi].name);
            else cJSON_AddNullToObject(fo, "best");
            cJSON *pts = cJSON_AddArrayToObject(fo, "points");
            if (!pts) { bad = 1; break; }
            for (int i = 0; i < f->n; i++) {
                cJSON *p = point_json(&S, &f->p[i]);
                if (!p || !cJSON_AddItemToArray(pts, p)) { cJSON_Delete(p); bad = 1; break; }
            }
        }
    }
    sweeps_free(&S);
    if (bad) {
        cJSON_Delete(a);
        *oom = 1;
        return NULL;
    }
    return a;
}
