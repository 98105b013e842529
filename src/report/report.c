/* cn_report_write: the comparison table (markdown + HTML) and the three charts of a set of runs.
 *
 * Table: one row per variant; each number is the mean ± sample standard deviation (n-1) over the
 * seeds that finished, taken over the finite values only, with "(f/p finite)" when some were not.
 * Charts: per variant, every seed as a thin line and the per-step median across seeds as the bold
 * line. For the median a missing or non-finite value counts as +inf (a diverged run is "above"
 * every finite run), so the median is finite exactly when more than half of the seeds are finite at
 * that step; elsewhere the bold line has a gap. Lines are downsampled to at most CN_REPORT_POINTS
 * points (bucket mean, geometric on log axes; bucket max for the gradient norm so spikes stay
 * visible; a bucket holding a non-finite value is a gap). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"
#include "io/files.h"

#define CN_REPORT_POINTS 800

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

typedef struct {
    const char *name;
    int *runs;           /* indices into the rundata array, in input order */
    int n;
    int n_ok;            /* not failed */
    int n_done;          /* ran to their end (finished or diverged): the runs the table averages */
    char note[48];       /* legend note: "1 failed" */
} group;

typedef struct {
    cn_report_rundata *rd;
    int n_runs;
    group *g;
    int n_groups;
    int oom;
    const char *baseline;   /* of the paired section (paired.c); NULL: its default */
} report;

/* ---- numbers for the table ---- */

static void fmt_num(char *out, size_t n, double v, double scale, const char *unit)
{
    char b[32];
    snprintf(out, n, "%s%s", cn_fmt_g(b, sizeof b, v * scale, 4), unit);
}

/* mean ± std over the runs of g that count (cn_report_counts: finished runs; for the loss columns
 * not diverged and not blown up); see the file comment. */
static void stat_cell(char *out, size_t n, const report *r, const group *g, size_t field, double scale,
                      const char *unit, int loss_like)
{
    cn_report_agg a, all;
    cn_report_aggregate(r->rd, g->runs, g->n, field, loss_like, &a);
    cn_report_aggregate(r->rd, g->runs, g->n, field, 0, &all);
    if (a.present == 0) { snprintf(out, n, all.present ? "n/a (diverged)" : "n/a"); return; }
    if (a.finite == 0) { snprintf(out, n, a.all_inf ? "inf" : "not finite"); return; }
    char x[48], y[48];
    fmt_num(x, sizeof x, a.mean, scale, unit);
    if (a.finite >= 2) {
        fmt_num(y, sizeof y, a.sd, scale, unit);
        snprintf(out, n, "%s ± %s", x, y);
    } else {
        snprintf(out, n, "%s", x);
    }
    if (a.finite < a.present) {
        size_t l = strlen(out);
        snprintf(out + l, n - l, " (%d/%d finite)", a.finite, a.present);
    }
}

enum { COL_VARIANT, COL_RUNS, COL_FINAL, COL_TEST_LOSS, COL_TEST_METRIC, COL_DIVERGED, COL_CLIPPED, COL_MAXGN,
       COL_SPS, NCOL };

/* Header texts; the test metric's is built from the summaries' test_metric_name. */
static void headers(const report *r, char hdr[NCOL][80])
{
    const char *fixed[NCOL] = {"variant", "runs", "final loss", "test loss", NULL, "diverged",
                               "clipped steps", "max grad norm (pre-clip)", "steps/s"};
    const char *metric = NULL;
    int same = 1;
    for (int i = 0; i < r->n_runs; i++) {
        if (r->rd[i].failed || !r->rd[i].have_summary) continue;
        if (!metric) metric = r->rd[i].metric_name;
        else if (strcmp(metric, r->rd[i].metric_name)) same = 0;
    }
    for (int c = 0; c < NCOL; c++) snprintf(hdr[c], 80, "%s", fixed[c] ? fixed[c] : "");
    snprintf(hdr[COL_TEST_METRIC], 80, "test %s", metric && same ? metric : "metric");
}

/* The cells of one variant's row, as plain text (escaped by the writer); the variant's name is not
 * copied (any length): the writers take it from the group. */
static void row_cells(const report *r, const group *g, char cell[NCOL][160])
{
    cell[COL_VARIANT][0] = '\0';
    /* unfinished runs are counted here and listed under Runs, never averaged */
    int unf = 0, nfail = 0, nblew = 0;
    for (int k = 0; k < g->n; k++) {
        const cn_report_rundata *d = &r->rd[g->runs[k]];
        unf += d->status == CN_RUN_INTERRUPTED || d->status == CN_RUN_NOT_RUN;
        nfail += d->status == CN_RUN_FAILED;
        nblew += cn_report_counts(d, 0) && d->status != CN_RUN_DIVERGED && d->blew_up;
    }
    if (g->n == g->n_done) snprintf(cell[COL_RUNS], 160, "%d", g->n);
    else if (!nfail) snprintf(cell[COL_RUNS], 160, "%d (%d unfinished)", g->n, unf);
    else if (!unf) snprintf(cell[COL_RUNS], 160, "%d (%d failed)", g->n, nfail);
    else snprintf(cell[COL_RUNS], 160, "%d (%d unfinished, %d failed)", g->n, unf, nfail);
    if (!g->n_done) {
        for (int c = COL_FINAL; c < NCOL; c++) snprintf(cell[c], 160, nfail == g->n ? "failed" : "unfinished");
        return;
    }
    int nv = 0, ndiv = 0;
    char steps[120] = "";
    for (int k = 0; k < g->n; k++) {
        const cn_report_rundata *d = &r->rd[g->runs[k]];
        if (!cn_report_counts(d, 0)) continue;
        nv++;
        if (d->diverged) {
            size_t l = strlen(steps);
            if (ndiv < 8) snprintf(steps + l, sizeof steps - l, "%s%lld", ndiv ? ", " : "", d->diverged_at);
            else if (ndiv == 8) snprintf(steps + l, sizeof steps - l, ", ...");
            ndiv++;
        }
    }
    stat_cell(cell[COL_FINAL], 160, r, g, offsetof(cn_report_rundata, final_loss), 1, "", 1);
    stat_cell(cell[COL_TEST_LOSS], 160, r, g, offsetof(cn_report_rundata, test_loss), 1, "", 1);
    stat_cell(cell[COL_TEST_METRIC], 160, r, g, offsetof(cn_report_rundata, test_metric), 1, "", 1);
    if (ndiv) snprintf(cell[COL_DIVERGED], 160, "%d/%d (%s)", ndiv, nv, steps);
    else snprintf(cell[COL_DIVERGED], 160, "0/%d", nv);
    if (nblew) {
        size_t l = strlen(cell[COL_DIVERGED]);
        snprintf(cell[COL_DIVERGED] + l, 160 - l, "; %d blew up", nblew);
    }
    stat_cell(cell[COL_CLIPPED], 160, r, g, offsetof(cn_report_rundata, clip_frac), 100, "%", 0);
    stat_cell(cell[COL_MAXGN], 160, r, g, offsetof(cn_report_rundata, max_gn), 1, "", 0);
    stat_cell(cell[COL_SPS], 160, r, g, offsetof(cn_report_rundata, steps_per_s), 1, "", 0);
}

static void md_table(cn_report_buf *b, const report *r)
{
    char hdr[NCOL][80], cell[NCOL][160];
    headers(r, hdr);
    for (int c = 0; c < NCOL; c++) {
        cn_report_puts(b, "| ");
        cn_report_md(b, hdr[c]);
        cn_report_puts(b, " ");
    }
    cn_report_puts(b, "|\n");
    for (int c = 0; c < NCOL; c++) cn_report_puts(b, c == COL_VARIANT ? "|---" : "|---:");
    cn_report_puts(b, "|\n");
    for (int gi = 0; gi < r->n_groups; gi++) {
        row_cells(r, &r->g[gi], cell);
        for (int c = 0; c < NCOL; c++) {
            cn_report_puts(b, "| ");
            cn_report_md(b, c == COL_VARIANT ? r->g[gi].name : cell[c]);
            cn_report_puts(b, " ");
        }
        cn_report_puts(b, "|\n");
    }
}

static void html_table(cn_report_buf *b, const report *r)
{
    char hdr[NCOL][80], cell[NCOL][160];
    headers(r, hdr);
    cn_report_puts(b, "<div class=\"scroll\"><table class=\"summary\">\n<thead><tr>");
    for (int c = 0; c < NCOL; c++) {
        cn_report_puts(b, "<th>");
        cn_report_html(b, hdr[c]);
        cn_report_puts(b, "</th>");
    }
    cn_report_puts(b, "</tr></thead>\n<tbody>\n");
    for (int gi = 0; gi < r->n_groups; gi++) {
        row_cells(r, &r->g[gi], cell);
        cn_report_printf(b, "<tr><td class=\"variant\"><span class=\"swatch\" style=\"background:%s\"></span>",
                         palette[gi % 10]);
        cn_report_html(b, r->g[gi].name);
        cn_report_puts(b, "</td>");
        for (int c = 1; c < NCOL; c++) {
            /* "mean ± std" may wrap before the ±, never after it */
            cn_report_puts(b, "<td>");
            char *pm = strstr(cell[c], " ± ");
            if (pm) {
                *pm = '\0';
                cn_report_html(b, cell[c]);
                cn_report_puts(b, " ±&#160;");
                cn_report_html(b, pm + strlen(" ± "));
            } else {
                cn_report_html(b, cell[c]);
            }
            cn_report_puts(b, "</td>");
        }
        cn_report_puts(b, "</tr>\n");
    }
    cn_report_puts(b, "</tbody></table></div>\n");
}

/* Per-run outcome: "done", "diverged at step N", "interrupted at step N of M", "failed: reason". */
static void outcome(char *out, size_t n, const cn_report_rundata *d)
{
    if (d->status == CN_RUN_INTERRUPTED && d->have_summary)
        snprintf(out, n, "interrupted at step %lld of %lld (unfinished, not averaged; resumable)", d->steps, d->planned_steps);
    else if (d->status == CN_RUN_INTERRUPTED) snprintf(out, n, "interrupted: %s", d->reason);
    else if (d->status == CN_RUN_NOT_RUN) snprintf(out, n, "not run");
    else if (d->failed) snprintf(out, n, "failed: %s", d->reason);
    else if (d->diverged) snprintf(out, n, "diverged at step %lld", d->diverged_at);
    else if (d->blew_up) snprintf(out, n, "blew up at step %lld (loss up to %.3g, early level %.3g; not in the loss means)",
                                  d->blew_up_at, d->blew_up_peak, d->early_loss);
    else snprintf(out, n, "done");
}

static void fmt_val(char *out, size_t n, cn_report_val v)
{
    if (!v.present) snprintf(out, n, "n/a");
    else if (isfinite(v.v)) snprintf(out, n, "%.4g", v.v);
    else snprintf(out, n, v.v == INFINITY ? "inf" : "not finite");
}

static const char *const how_to_read =
    "Each row aggregates the seeds of one variant: numbers are the mean ± sample standard deviation over "
    "the runs that ran to their end (failed and unfinished -- interrupted or never started -- runs are counted "
    "in *runs* and listed below, never averaged); the loss and metric columns leave out the runs that "
    "diverged or blew up (a finite training loss that rose above 100 times its early level, the median of "
    "its first 10 logged losses), which are counted under *diverged* instead. "
    "\"(2/3 finite)\" means the mean is over the finite values only: the others were NaN or inf, usually "
    "because the run diverged. *final loss* is the mean training loss of the last min(100, steps) logged "
    "steps; *diverged* counts the runs that met a non-finite loss or gradient, with the step at which each "
    "first did; *clipped steps* is the share of optimizer steps on which clipping changed the gradient; *max grad "
    "norm* is the largest global L2 norm the clip stage received, before clipping. Clipping is doing its "
    "job when the gradient norm stays bounded, runs stop diverging, and the final loss is no worse than "
    "without it; a variant that clips nearly every step is effectively training with a smaller learning rate.";

static void md_doc(cn_report_buf *b, const report *r, const char *title)
{
    cn_report_puts(b, "# ");
    cn_report_md(b, title);
    cn_report_printf(b, "\n\n%d run%s in %d variant%s, written by clipnn %s.\n\n", r->n_runs, r->n_runs == 1 ? "" : "s",
                     r->n_groups, r->n_groups == 1 ? "" : "s", CN_VERSION);
    md_table(b, r);
    cn_report_puts(b, "\n## How to read this\n\n");
    cn_report_puts(b, how_to_read);
    cn_report_puts(b, "\n");
    cn_report_paired_md(b, r->rd, r->n_runs, r->baseline);
    cn_report_puts(b, "\nCharts (training loss, pre-clip gradient norm against the clip threshold, clip "
                      "coefficient, step by step): [report.html](report.html).\n\n## Runs\n\n"
                      "| variant | seed | outcome | steps | final loss | directory |\n|---|---:|---|---:|---:|---|\n");
    for (int i = 0; i < r->n_runs; i++) {
        const cn_report_rundata *d = &r->rd[i];
        char oc[700], fl[48];
        outcome(oc, sizeof oc, d);
        fmt_val(fl, sizeof fl, d->failed ? (cn_report_val){0, 0} : d->final_loss);
        cn_report_puts(b, "| ");
        cn_report_md(b, d->in->variant ? d->in->variant : "");
        cn_report_printf(b, " | %lld | ", d->in->seed);
        cn_report_md(b, oc);
        if (d->have_summary) cn_report_printf(b, " | %lld | ", d->steps);
        else cn_report_puts(b, " | n/a | ");
        cn_report_puts(b, fl);
        cn_report_puts(b, " | ");
        cn_report_md(b, d->in->dir ? d->in->dir : "");
        cn_report_puts(b, " |\n");
    }
}

/* ---- chart data ---- */

enum { AGG_LOGMEAN, AGG_MEAN, AGG_MAX };

static int alloc_line(report *r, cn_report_line *l, long long n)
{
    l->n = 0;
    l->x = cn_malloc((size_t)(n ? n : 1) * sizeof(double));
    l->y = cn_malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!l->x || !l->y) {
        cn_free(l->x);
        cn_free(l->y);
        l->x = l->y = NULL;
        r->oom = 1;
        return 0;
    }
    return 1;
}

static void free_line(cn_report_line *l)
{
    cn_free(l->x);
    cn_free(l->y);
    l->x = l->y = NULL;
    l->n = 0;
}

/* At most CN_REPORT_POINTS points: buckets of k consecutive rows (see the file comment). */
static void downsample(report *r, const double *x, const double *y, long long n, int agg, cn_report_line *out)
{
    long long k = (n + CN_REPORT_POINTS - 1) / CN_REPORT_POINTS;
    if (k < 1) k = 1;
    if (!alloc_line(r, out, (n + k - 1) / k)) return;
    for (long long i = 0; i < n; i += k) {
        long long e = i + k < n ? i + k : n;
        double sx = 0, acc = agg == AGG_MAX ? -INFINITY : 0, xmax = x[i];
        long long used = 0;
        int gap = 0;
        for (long long j = i; j < e; j++) {
            sx += x[j];
            double v = y[j];
            if (!isfinite(v)) { gap = 1; break; }
            if (agg == AGG_MAX) {
                if (v > acc) { acc = v; xmax = x[j]; }
                used++;
            } else if (agg == AGG_LOGMEAN) {
                if (v > 0) { acc += log(v); used++; }   /* <= 0 has no place on a log axis */
            } else {
                acc += v;
                used++;
            }
        }
        double px = agg == AGG_MAX && used ? xmax : sx / (double)(e - i), py;
        if (gap || !used) { px = (x[i] + x[e - 1]) / 2; py = NAN; }
        else py = agg == AGG_LOGMEAN ? exp(acc / (double)used) : agg == AGG_MEAN ? acc / (double)used : acc;
        out->x[out->n] = px;
        out->y[out->n] = py;
        out->n++;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Per-step median across the runs `idx` of column c, merging rows by step. strict: missing and
 * non-finite values count as +inf (median finite iff more than half are finite); otherwise the median
 * of the finite values present. Writes x/y (capacity: total rows) and returns the length; tmp and pos
 * are scratch of m entries. */
static long long median_merge(report *r, const int *idx, int m, int c, int strict, double *x, double *y, double *tmp,
                              long long *pos)
{
    long long n = 0;
    memset(pos, 0, (size_t)m * sizeof *pos);
    for (;;) {
        double step = INFINITY;
        for (int i = 0; i < m; i++) {
            const cn_report_rundata *d = &r->rd[idx[i]];
            if (pos[i] < d->n && d->col[CN_RC_STEP][pos[i]] < step) step = d->col[CN_RC_STEP][pos[i]];
        }
        if (step == INFINITY) break;
        int f = 0;
        for (int i = 0; i < m; i++) {
            const cn_report_rundata *d = &r->rd[idx[i]];
            if (pos[i] < d->n && d->col[CN_RC_STEP][pos[i]] == step) {
                double v = d->col[c][pos[i]];
                if (isfinite(v)) tmp[f++] = v;
                pos[i]++;
            }
        }
        double med = NAN;
        int total = strict ? m : f;   /* strict: the m - f others sit above as +inf */
        if (f > 0 && 2 * f > (strict ? m : 0)) {
            qsort(tmp, (size_t)f, sizeof *tmp, cmp_double);
            med = total % 2 ? tmp[total / 2] : 0.5 * (tmp[total / 2 - 1] + tmp[total / 2]);
        }
        x[n] = step;
        y[n] = med;
        n++;
    }
    return n;
}

/* Divergence marker of a run on column c: its last finite (and, on a log axis, positive) value at
 * or before diverged_at_step; y = NAN when there is none (marked at the top edge). */
static cn_report_mark mark_of(const cn_report_rundata *d, int c, int log_y, int multi)
{
    cn_report_mark mk = {(double)d->diverged_at, NAN, d->in->seed, d->diverged_at, multi};
    for (long long i = 0; i < d->n && d->col[CN_RC_STEP][i] <= (double)d->diverged_at; i++) {
        double v = d->col[c][i];
        if (isfinite(v) && (!log_y || v > 0)) {
            mk.x = d->col[CN_RC_STEP][i];
            mk.y = v;
        }
    }
    return mk;
}

static void free_series(cn_report_series *s)
{
    for (int k = 0; k < s->n_seeds; k++) free_line(&s->seeds[k]);
    cn_free(s->seeds);
    free_line(&s->bold);
    free_line(&s->dashed);
    cn_free(s->marks);
    memset(s, 0, sizeof *s);
}

static void build_series(report *r, const group *g, int gi, int c, int agg, int log_y, int with_threshold,
                         cn_report_series *s)
{
    memset(s, 0, sizeof *s);
    s->variant = g->name;
    s->legend_note = g->note[0] ? g->note : NULL;
    s->colour = palette[gi % 10];
    int m = 0, with_data = 0;
    long long total = 0;
    int *ok = cn_malloc((size_t)(g->n ? g->n : 1) * sizeof *ok);
    if (!ok) { r->oom = 1; return; }
    for (int k = 0; k < g->n; k++) {
        const cn_report_rundata *d = &r->rd[g->runs[k]];
        if (d->n) with_data++;
        if (!d->failed && d->n) {
            ok[m++] = g->runs[k];
            total += d->n;
        }
    }
    /* thin lines: every run with data, unless one finished run alone is the bold line */
    int thin = m >= 2 || with_data > m;
    s->seeds = cn_calloc((size_t)(with_data ? with_data : 1), sizeof *s->seeds);
    s->marks = cn_calloc((size_t)(g->n ? g->n : 1), sizeof *s->marks);
    double *x = NULL, *y = NULL, *tmp = NULL;
    long long *pos = NULL;
    if (!s->seeds || !s->marks) { r->oom = 1; goto out; }
    for (int k = 0; k < g->n && thin; k++) {
        const cn_report_rundata *d = &r->rd[g->runs[k]];
        if (!d->n || (m == 1 && !d->failed)) continue;
        downsample(r, d->col[CN_RC_STEP], d->col[c], d->n, agg, &s->seeds[s->n_seeds]);
        s->seeds[s->n_seeds].diverged = d->diverged;
        s->seeds[s->n_seeds++].seed = d->in->seed;
    }
    if (m == 1) {
        const cn_report_rundata *d = &r->rd[ok[0]];
        downsample(r, d->col[CN_RC_STEP], d->col[c], d->n, agg, &s->bold);
        s->bold.diverged = d->diverged;
    }
    if (m >= 2 || (with_threshold && m >= 1)) {
        x = cn_malloc((size_t)total * sizeof *x);
        y = cn_malloc((size_t)total * sizeof *y);
        tmp = cn_malloc((size_t)m * sizeof *tmp);
        pos = cn_malloc((size_t)m * sizeof *pos);
        if (!x || !y || !tmp || !pos) { r->oom = 1; goto out; }
    }
    if (m >= 2) {
        long long n = median_merge(r, ok, m, c, 1, x, y, tmp, pos);
        downsample(r, x, y, n, agg, &s->bold);
        for (int i = 0; i < m; i++) s->bold.diverged |= r->rd[ok[i]].diverged;
    }
    if (with_threshold && m >= 1) {
        int draw = 0;
        for (int i = 0; i < m; i++) draw |= r->rd[ok[i]].draw_threshold;
        long long n = draw ? median_merge(r, ok, m, CN_RC_THR, 0, x, y, tmp, pos) : 0;
        int finite = 0;
        for (long long i = 0; i < n; i++) finite |= isfinite(y[i]) && y[i] > 0;
        if (finite) downsample(r, x, y, n, AGG_LOGMEAN, &s->dashed);
    }
    for (int i = 0; i < m; i++) {
        const cn_report_rundata *d = &r->rd[ok[i]];
        if (d->diverged && d->diverged_at > 0) s->marks[s->n_marks++] = mark_of(d, c, log_y, m > 1);
    }
out:
    cn_free(x);
    cn_free(y);
    cn_free(tmp);
    cn_free(pos);
    cn_free(ok);
}

static void chart(cn_report_buf *b, report *r, const cn_report_chart *c, int col, int agg, int with_threshold)
{
    cn_report_series *s = cn_calloc((size_t)(r->n_groups ? r->n_groups : 1), sizeof *s);
    if (!s) { r->oom = 1; return; }
    cn_report_chart cc = *c;
    for (int i = 0; i < r->n_runs; i++)
        if (r->rd[i].n && r->rd[i].col[CN_RC_STEP][r->rd[i].n - 1] > cc.x_max) cc.x_max = r->rd[i].col[CN_RC_STEP][r->rd[i].n - 1];
    c = &cc;
    for (int gi = 0; gi < r->n_groups && !r->oom; gi++)
        build_series(r, &r->g[gi], gi, col, agg, c->log_y, with_threshold, &s[gi]);
    if (!r->oom) cn_report_svg(b, c, s, r->n_groups);
    for (int gi = 0; gi < r->n_groups; gi++) free_series(&s[gi]);
    cn_free(s);
}

static const char *const css =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1040px;margin:24px auto;"
    "padding:0 16px;color:#222;line-height:1.45}\n"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em}.meta{color:#666;margin-top:0}\n"
    "table{border-collapse:collapse;font-size:.88em;margin:12px 0}\n"
    "th,td{border:1px solid #ddd;padding:4px 7px;text-align:right}\n"
    "th{background:#f5f5f5;font-weight:600}.scroll{overflow-x:auto}\n"
    "td.variant,th:first-child,table.runs td,table.runs th{text-align:left}td.variant{white-space:nowrap}\n"
    "table.runs td{white-space:normal;word-break:break-all}\n"
    ".swatch{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:-1px;border-radius:2px}\n"
    "figure{margin:18px 0}figcaption{color:#555;font-size:.9em;max-width:1000px}\n"
    "svg.chart{max-width:100%;height:auto;border:1px solid #eee}\n";

static void html_doc(cn_report_buf *b, report *r, const char *title)
{
    cn_report_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    cn_report_html(b, title);
    cn_report_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", css);
    cn_report_html(b, title);
    cn_report_printf(b, "</h1>\n<p class=\"meta\">%d run%s in %d variant%s, written by clipnn %s.</p>\n", r->n_runs,
                     r->n_runs == 1 ? "" : "s", r->n_groups, r->n_groups == 1 ? "" : "s", CN_VERSION);
    html_table(b, r);
    /* the how-to-read text uses *emphasis* in markdown; plain in HTML */
    cn_report_puts(b, "<p class=\"howto\">");
    for (const char *p = how_to_read; *p; p++) {
        if (*p == '*') continue;
        char s[2] = {*p, 0};
        cn_report_html(b, s);
    }
    cn_report_puts(b, "</p>\n");

    int multi = 0;
    for (int gi = 0; gi < r->n_groups; gi++) multi |= r->g[gi].n_ok > 1;
    cn_report_printf(b, "<p class=\"howto\">One colour per variant. %sAn &#215; marks where a run diverged, at its "
                        "last finite value; NaN and inf are gaps in a line, never zeros. Runs longer than %d logged "
                        "steps are downsampled: the loss and the coefficient by bucket mean (geometric on a log "
                        "axis), the gradient norm by bucket maximum so that spikes stay visible.</p>\n",
                     multi ? "Thin lines are single seeds; the bold line is the per-step median across the seeds "
                             "of a variant, counting a diverged or missing value as +&#8734; (so it has a gap where "
                             "half or more of the seeds are not finite). " : "",
                     CN_REPORT_POINTS);

    cn_report_paired_html(b, r->rd, r->n_runs, r->baseline);
    cn_report_puts(b, "<h2>Training loss</h2>\n<figure>\n");
    cn_report_chart c1 = {"loss", "Training loss", "optimizer step", "loss (log scale)", 1, 0, 1, 0};
    chart(b, r, &c1, CN_RC_LOSS, AGG_LOGMEAN, 0);
    cn_report_puts(b, "<figcaption>Mean training loss of each step's batch, before the update.</figcaption>\n"
                      "</figure>\n");

    cn_report_puts(b, "<h2>Gradient norm before clipping</h2>\n<figure>\n");
    cn_report_chart c2 = {"gradnorm", "Gradient norm before clipping", "optimizer step",
                          "global L2 norm (log scale)", 1, 0, 1, 0};
    chart(b, r, &c2, CN_RC_GN, AGG_MAX, 1);
    cn_report_puts(b, "<figcaption>Global L2 norm of the gradient the clip stage received (grad_norm_pre). The "
                      "dashed line is the clip threshold in force (global-norm modes: norm, autoclip, zclip); where "
                      "the norm is above it, the gradient was scaled down to it.</figcaption>\n</figure>\n");

    cn_report_puts(b, "<h2>Clip coefficient</h2>\n<figure>\n");
    cn_report_chart c3 = {"coef", "Clip coefficient", "optimizer step", "scale applied to the gradient", 0, 0, 1.05, 0};
    chart(b, r, &c3, CN_RC_COEF, AGG_MEAN, 0);
    cn_report_puts(b, "<figcaption>The factor the global clip mode multiplied the gradient by: 1 means "
                      "untouched, 0.1 means the step was ten times shorter than the raw gradient asked for."
                      "</figcaption>\n</figure>\n");

    cn_report_puts(b, "<h2>Runs</h2>\n<table class=\"runs\">\n<thead><tr><th>variant</th><th>seed</th><th>outcome"
                      "</th><th>steps</th><th>final loss</th><th>directory</th></tr></thead>\n<tbody>\n");
    for (int i = 0; i < r->n_runs; i++) {
        const cn_report_rundata *d = &r->rd[i];
        char oc[700], fl[48];
        outcome(oc, sizeof oc, d);
        fmt_val(fl, sizeof fl, d->failed ? (cn_report_val){0, 0} : d->final_loss);
        cn_report_puts(b, "<tr><td>");
        cn_report_html(b, d->in->variant ? d->in->variant : "");
        cn_report_printf(b, "</td><td>%lld</td><td>", d->in->seed);
        cn_report_html(b, oc);
        if (d->have_summary) cn_report_printf(b, "</td><td>%lld</td><td>", d->steps);
        else cn_report_puts(b, "</td><td>n/a</td><td>");
        cn_report_html(b, fl);
        cn_report_puts(b, "</td><td>");
        cn_report_html(b, d->in->dir ? d->in->dir : "");
        cn_report_puts(b, "</td></tr>\n");
    }
    cn_report_puts(b, "</tbody></table>\n<p class=\"meta\">Summary: <a href=\"report.md\">report.md</a>.</p>\n"
                      "</body>\n</html>\n");
}

/* ---- entry point ---- */

static cn_status write_out(const char *dir, const char *name, const cn_report_buf *b)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return cn_write_file_atomic(path, b->p ? b->p : "", b->len);
}

/* report.json and runs.csv (data.c) */
static cn_status write_data(const char *dir, const char *title, const report *r)
{
    const char **names = cn_calloc((size_t)(r->n_groups ? r->n_groups : 1), sizeof *names);
    const int **runs = cn_calloc((size_t)(r->n_groups ? r->n_groups : 1), sizeof *runs);
    int *n = cn_calloc((size_t)(r->n_groups ? r->n_groups : 1), sizeof *n);
    cn_status st = CN_OK;
    if (!names || !runs || !n) st = cn_error(CN_ERR_NOMEM, "out of memory");
    for (int g = 0; !st && g < r->n_groups; g++) {
        names[g] = r->g[g].name;
        runs[g] = r->g[g].runs;
        n[g] = r->g[g].n;
    }
    if (!st) st = cn_report_write_data(dir, title, r->rd, r->n_runs, names, runs, n, r->n_groups, r->baseline);
    cn_free(names);
    cn_free(runs);
    cn_free(n);
    return st;
}

cn_status cn_report_write(const char *out_dir, const char *title, const cn_report_run *runs, int n_runs, FILE *table)
{
    cn_report_opts o = {title, NULL, table};
    return cn_report_write_opts(out_dir, runs, n_runs, &o);
}

cn_status cn_report_write_opts(const char *out_dir, const cn_report_run *runs, int n_runs, const cn_report_opts *o)
{
    const char *title = o->title;
    FILE *table = o->table;
    if (!out_dir || !*out_dir) return cn_error(CN_ERR_ARG, "report: no output directory");
    if (n_runs < 0 || (n_runs > 0 && !runs)) return cn_error(CN_ERR_ARG, "report: bad run list");
    if (!title) title = "clipnn compare";
    cn_status st = CN_OK;
    report r = {0};
    r.baseline = o->baseline;
    cn_report_buf md = {0}, html = {0}, tb = {0};
    r.rd = cn_calloc((size_t)(n_runs ? n_runs : 1), sizeof *r.rd);
    r.g = cn_calloc((size_t)(n_runs ? n_runs : 1), sizeof *r.g);
    if (!r.rd || !r.g) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto out; }
    for (int i = 0; i < n_runs; i++) {
        if ((st = cn_report_load(&runs[i], &r.rd[i]))) goto out;
        r.n_runs++;
    }
    cn_error_clear();   /* the runs' load messages live in their reasons */

    /* groups by variant, in order of first appearance */
    for (int i = 0; i < n_runs; i++) {
        const char *name = runs[i].variant ? runs[i].variant : "";
        int gi = 0;
        while (gi < r.n_groups && strcmp(r.g[gi].name, name)) gi++;
        if (gi == r.n_groups) {
            r.g[gi].name = name;
            r.g[gi].runs = cn_malloc((size_t)n_runs * sizeof(int));
            if (!r.g[gi].runs) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto out; }
            r.n_groups++;
        }
        r.g[gi].runs[r.g[gi].n++] = i;
        if (!r.rd[i].failed) r.g[gi].n_ok++;
        if (cn_report_counts(&r.rd[i], 0)) r.g[gi].n_done++;
    }
    for (int gi = 0; gi < r.n_groups; gi++) {
        group *g = &r.g[gi];
        if (g->n_ok == 0) snprintf(g->note, sizeof g->note, "failed");
        else if (g->n_ok < g->n) snprintf(g->note, sizeof g->note, "%d of %d failed", g->n - g->n_ok, g->n);
    }

    md_doc(&md, &r, title);
    html_doc(&html, &r, title);
    if (table) md_table(&tb, &r);
    if (md.oom || html.oom || tb.oom || r.oom) { st = cn_error(CN_ERR_NOMEM, "out of memory writing the report"); goto out; }
    if ((st = cn_mkdirs(out_dir))) goto out;
    if ((st = write_out(out_dir, "report.md", &md))) goto out;
    if ((st = write_out(out_dir, "report.html", &html))) goto out;
    if ((st = write_data(out_dir, title, &r))) goto out;
    if (table && (fwrite(tb.p, 1, tb.len, table) != tb.len || fflush(table)))
        st = cn_error(CN_ERR_IO, "report: cannot write the table");
out:
    for (int i = 0; i < r.n_runs; i++) cn_report_rundata_free(&r.rd[i]);
    for (int gi = 0; gi < r.n_groups; gi++) cn_free(r.g[gi].runs);
    cn_free(r.rd);
    cn_free(r.g);
    cn_report_buf_free(&md);
    cn_report_buf_free(&html);
    cn_report_buf_free(&tb);
    return st;
}
