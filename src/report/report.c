/* cn_report_write: the comparison table (markdown + HTML) and the charts of a set of runs.
 *
 * Each run has a status (load.c): failed (no usable files), unfinished (interrupted, stopped short of
 * train.steps without a divergence, or never started), diverged (met a non-finite loss or gradient),
 * or finished. Which runs enter a mean is cn_report_counts (data.c), shared with report.json.
 * Table: one row per variant; each number is the mean (4 significant digits) ± sample standard
 * deviation (n-1, 2 significant digits) over the runs that ran to their end (finished or diverged),
 * taken over the finite values only, with "(f/p finite)" when some were not. The loss and metric
 * columns leave out the runs that diverged or blew up, "(d diverged; b blew up)", "—" when every run
 * was left out: a diverged run's 1e40 says nothing about the variant's loss, while how often it
 * clipped and how fast it ran still do.
 * Unfinished runs are listed apart and never averaged. A finite loss that rose more than
 * CN_REPORT_BLOWUP_FACTOR x its early level is flagged "blew up" (load.c), apart from "diverged".
 * The winner is the variant with the lowest median test loss (final training loss when no run was
 * evaluated) over its finished runs, among the variants none of whose finished runs diverged or blew
 * up.
 *
 * Charts: per variant, every seed as a thin line and the per-step median across seeds as the bold
 * line. For the median a missing or non-finite value counts as +inf (a diverged run is "above"
 * every finite run), so the median is finite exactly when more than half of the seeds are finite at
 * that step; elsewhere the bold line has a gap. Lines are downsampled to at most CN_REPORT_POINTS
 * points (seed lines CN_REPORT_SEED_POINTS): bucket mean, geometric on log axes; bucket max for the
 * gradient norm so spikes stay visible; a bucket holding a non-finite value is a gap. The output
 * depends only on the runs' files and the arguments: the same runs give the same bytes. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"
#include "io/files.h"

#define CN_REPORT_POINTS 800
#define CN_REPORT_SEED_POINTS 400
/* The early-steps panels show the first CN_REPORT_EARLY_FRAC of the steps (at least
   CN_REPORT_EARLY_MIN), when that is less than half the run. */
#define CN_REPORT_EARLY_FRAC 0.02
#define CN_REPORT_EARLY_MIN 50
/* Heatmaps: steps in CN_REPORT_HEAT_COLS buckets; at most CN_REPORT_HEAT_ROWS tensors. */
#define CN_REPORT_HEAT_COLS 100
#define CN_REPORT_HEAT_ROWS 64

/* 20 distinguishable colours (a sweep has a dozen variants); they repeat after that */
#define N_PALETTE 20
static const char *const palette[N_PALETTE] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#6baed6", "#fd8d3c", "#74c476", "#9e9ac8", "#000000"};

typedef struct {
    const char *name;
    int *runs;           /* indices into the rundata array, in input order */
    int n;
    int n_ok;            /* with loaded files (drawn in the charts) */
    int n_failed;        /* status failed */
    int n_unf;           /* unfinished: interrupted or not run */
    int n_fin;           /* ran to their end: finished or diverged (cn_report_counts) */
    int n_div, n_blew;   /* of those */
    char *settings;      /* what the variant changed: as the caller declared it, else from config.json */
    double key;          /* the winner's criterion: median test (or final) loss, NAN if none */
    char note[64];       /* legend note: "1 failed" */
} group;

typedef struct {
    cn_report_rundata *rd;
    int n_runs;
    group *g;
    int n_groups;
    int winner;          /* group index or -1 */
    int by_test;         /* the winner is chosen by test loss (else final training loss) */
    int any_unfinished;
    int oom;
    const char *baseline;   /* of the paired section (paired.c); NULL: its default */
} report;

static int unfinished(const cn_report_rundata *d)
{
    return d->status == CN_RUN_INTERRUPTED || d->status == CN_RUN_NOT_RUN;
}
static int finished(const cn_report_rundata *d) { return cn_report_counts(d, 0); }
/* counted in the loss averages: a diverged or blown-up run's numbers (1e40 losses) say nothing */
static int averaged(const cn_report_rundata *d) { return cn_report_counts(d, 1); }

/* ---- numbers for the table ---- */

static void fmt_num(char *out, size_t n, double v, double scale, const char *unit)
{
    char b[32];
    snprintf(out, n, "%s%s", cn_fmt_g(b, sizeof b, v * scale, 4), unit);
}

/* mean ± std (cn_report_aggregate) over the runs of g that count: for the loss columns (loss_like) the
 * averaged ones, for the others every run that ran to its end; see the file comment. */
static void stat_cell(char *out, size_t n, const report *r, const group *g, size_t field, double scale,
                      const char *unit, int loss_like)
{
    cn_report_agg a;
    cn_report_aggregate(r->rd, g->runs, g->n, field, loss_like, &a);
    int p = a.present, f = a.finite;
    if (p == 0) { snprintf(out, n, loss_like && g->n_fin && g->n_div + g->n_blew == g->n_fin ? "—" : "n/a"); return; }
    if (f == 0) { snprintf(out, n, a.all_inf ? "inf" : "not finite"); return; }
    char x[48], y[48];
    fmt_num(x, sizeof x, a.mean, scale, unit);
    if (f >= 2) {
        /* the spread to 2 significant digits: its own uncertainty is larger than that with few seeds */
        snprintf(y, sizeof y, "%.2g%s", a.sd * scale, unit);
        snprintf(out, n, "%s ± %s", x, y);
    } else {
        snprintf(out, n, "%s", x);
    }
    /* the note: what the mean is not over */
    char note[96] = "";
    size_t l = 0;
    if (f < p) l += (size_t)snprintf(note + l, sizeof note - l, "%d/%d finite", f, p);
    if (loss_like && g->n_div) l += (size_t)snprintf(note + l, sizeof note - l, "%s%d diverged", l ? "; " : "", g->n_div);
    if (loss_like && g->n_blew) snprintf(note + l, sizeof note - l, "%s%d blew up", l ? "; " : "", g->n_blew);
    if (*note) {
        l = strlen(out);
        snprintf(out + l, n - l, " (%s)", note);
    }
}

enum { COL_VARIANT, COL_SETTINGS, COL_RUNS, COL_FINAL, COL_TEST_LOSS, COL_TEST_METRIC, COL_DIVERGED, COL_BLEW,
       COL_CLIPPED, COL_MAXGN, COL_SPS, NCOL };

/* Header texts; the test metric's is built from the summaries' test_metric_name. */
static void headers(const report *r, char hdr[NCOL][80])
{
    const char *fixed[NCOL] = {"variant", "settings", "runs", "final loss", "test loss", NULL, "diverged", "blew up",
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

/* "k/n (s1, s2, ...)" over the finished runs: the steps at which each diverged or blew up. */
static void event_cell(char *out, size_t n, const report *r, const group *g, int blew)
{
    int k = 0;
    char steps[120] = "";
    for (int i = 0; i < g->n; i++) {
        const cn_report_rundata *d = &r->rd[g->runs[i]];
        if (!finished(d) || !(blew ? d->blew_up : d->diverged)) continue;
        size_t l = strlen(steps);
        if (k < 8) snprintf(steps + l, sizeof steps - l, "%s%lld", k ? ", " : "", blew ? d->blew_up_at : d->diverged_at);
        else if (k == 8) snprintf(steps + l, sizeof steps - l, ", ...");
        k++;
    }
    if (k) snprintf(out, n, "%d/%d (%s)", k, g->n_fin, steps);
    else snprintf(out, n, "0/%d", g->n_fin);
}

/* The cells of one variant's row, as plain text (escaped by the writer); the variant's name and
 * settings are not copied (any length): the writers take them from the group. */
static void row_cells(const report *r, const group *g, char cell[NCOL][160])
{
    cell[COL_VARIANT][0] = cell[COL_SETTINGS][0] = '\0';
    int failed = g->n_failed;
    if (!failed && !g->n_unf) snprintf(cell[COL_RUNS], 160, "%d", g->n);
    else if (!g->n_unf) snprintf(cell[COL_RUNS], 160, "%d (%d failed)", g->n, failed);
    else if (!failed) snprintf(cell[COL_RUNS], 160, "%d (%d unfinished)", g->n, g->n_unf);
    else snprintf(cell[COL_RUNS], 160, "%d (%d failed, %d unfinished)", g->n, failed, g->n_unf);
    if (!g->n_fin) {
        for (int c = COL_FINAL; c < NCOL; c++) snprintf(cell[c], 160, g->n_unf ? "unfinished" : "failed");
        return;
    }
    stat_cell(cell[COL_FINAL], 160, r, g, offsetof(cn_report_rundata, final_loss), 1, "", 1);
    stat_cell(cell[COL_TEST_LOSS], 160, r, g, offsetof(cn_report_rundata, test_loss), 1, "", 1);
    stat_cell(cell[COL_TEST_METRIC], 160, r, g, offsetof(cn_report_rundata, test_metric), 1, "", 1);
    event_cell(cell[COL_DIVERGED], 160, r, g, 0);
    event_cell(cell[COL_BLEW], 160, r, g, 1);
    stat_cell(cell[COL_CLIPPED], 160, r, g, offsetof(cn_report_rundata, clip_frac), 100, "%", 0);
    stat_cell(cell[COL_MAXGN], 160, r, g, offsetof(cn_report_rundata, max_gn), 1, "", 0);
    stat_cell(cell[COL_SPS], 160, r, g, offsetof(cn_report_rundata, steps_per_s), 1, "", 0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The winner (see the file comment). */
static void choose_winner(report *r)
{
    r->winner = -1;
    r->by_test = 0;
    for (int i = 0; i < r->n_runs; i++)
        if (averaged(&r->rd[i]) && r->rd[i].test_loss.present && isfinite(r->rd[i].test_loss.v)) r->by_test = 1;
    for (int gi = 0; gi < r->n_groups; gi++) {
        group *g = &r->g[gi];
        double v[256];
        int m = 0;
        for (int k = 0; k < g->n && m < 256; k++) {
            const cn_report_rundata *d = &r->rd[g->runs[k]];
            cn_report_val x = r->by_test ? d->test_loss : d->final_loss;
            if (averaged(d) && x.present && isfinite(x.v)) v[m++] = x.v;
        }
        g->key = NAN;
        if (m) {
            qsort(v, (size_t)m, sizeof v[0], cmp_double);
            g->key = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
        }
        if (r->n_groups < 2 || g->n_div || g->n_blew || !isfinite(g->key)) continue;
        if (r->winner < 0 || g->key < r->g[r->winner].key) r->winner = gi;
    }
}

static const char *const winner_rule =
    "the lowest median %s over its finished runs, among the variants none of whose runs diverged or blew up";

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
    for (int c = 0; c < NCOL; c++) cn_report_puts(b, c <= COL_SETTINGS ? "|---" : "|---:");
    cn_report_puts(b, "|\n");
    for (int gi = 0; gi < r->n_groups; gi++) {
        row_cells(r, &r->g[gi], cell);
        for (int c = 0; c < NCOL; c++) {
            cn_report_puts(b, "| ");
            if (c == COL_VARIANT) {
                cn_report_md(b, r->g[gi].name);
                if (gi == r->winner) cn_report_puts(b, " (best)");
            } else {
                cn_report_md(b, c == COL_SETTINGS ? (*r->g[gi].settings ? r->g[gi].settings : "—") : cell[c]);
            }
            cn_report_puts(b, " ");
        }
        cn_report_puts(b, "|\n");
    }
}

/* A cell's text with the spaces inside numbers and "±" made non-breaking: it may wrap only
 * between a number and its note. */
static void html_cell_text(cn_report_buf *b, const char *s)
{
    const char *paren = strstr(s, " (");
    size_t head = paren ? (size_t)(paren - s) : strlen(s);
    cn_report_puts(b, "<span class=\"num\">");
    for (size_t i = 0; i < head; i++) {
        char c[2] = {s[i], 0};
        if (s[i] == ' ') cn_report_puts(b, "&#160;");
        else cn_report_html(b, c);
    }
    cn_report_puts(b, "</span>");
    if (paren) {
        cn_report_puts(b, " <span class=\"note\">");
        cn_report_html(b, paren + 1);
        cn_report_puts(b, "</span>");
    }
}

/* "a=1, b=2" as one unbreakable span per setting. */
static void html_settings(cn_report_buf *b, const char *s)
{
    if (!*s) { cn_report_puts(b, "—"); return; }
    while (*s) {
        const char *e = strstr(s, ", ");
        size_t n = e ? (size_t)(e - s) : strlen(s);
        cn_report_puts(b, "<code>");
        for (size_t i = 0; i < n; i++) {
            char c[2] = {s[i], 0};
            cn_report_html(b, c);
        }
        cn_report_puts(b, e ? "</code> " : "</code>");
        s += n + (e ? 2 : 0);
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
        cn_report_printf(b, "<tr%s><td class=\"variant\"><span class=\"swatch\" style=\"background:%s\"></span>",
                         gi == r->winner ? " class=\"winner\"" : "", palette[gi % N_PALETTE]);
        cn_report_html(b, r->g[gi].name);
        if (gi == r->winner) cn_report_puts(b, " <span class=\"badge\">best</span>");
        cn_report_puts(b, "</td><td class=\"settings\">");
        html_settings(b, r->g[gi].settings);
        cn_report_puts(b, "</td>");
        for (int c = COL_RUNS; c < NCOL; c++) {
            cn_report_puts(b, "<td>");
            html_cell_text(b, cell[c]);
            cn_report_puts(b, "</td>");
        }
        cn_report_puts(b, "</tr>\n");
    }
    cn_report_puts(b, "</tbody></table></div>\n");
}

/* The sentence naming the winner and its rule, as plain text. */
static void winner_text(char *out, size_t n, const report *r)
{
    char rule[256];
    snprintf(rule, sizeof rule, winner_rule, r->by_test ? "test loss" : "final training loss");
    if (r->n_groups < 2) { out[0] = '\0'; return; }
    if (r->winner < 0) {
        snprintf(out, n, "No variant is highlighted: none qualifies (the rule: %s).", rule);
        return;
    }
    snprintf(out, n, "Highlighted: %s, median %s %.4g; the rule: %s.", r->g[r->winner].name,
             r->by_test ? "test loss" : "final training loss", r->g[r->winner].key, rule);
}

/* Per-run outcome: "done", "diverged at step N", "unfinished: interrupted at step N", "not run",
 * "failed: reason", ... */
static void outcome(char *out, size_t n, const cn_report_rundata *d)
{
    if (d->status == CN_RUN_INTERRUPTED && d->have_summary)
        snprintf(out, n, "unfinished: %s at step %lld", d->interrupted || d->in->exit_code == 130 ? "interrupted" : "stopped",
                 d->steps);
    else if (d->status == CN_RUN_INTERRUPTED) snprintf(out, n, "unfinished: %s", d->reason);
    else if (d->status == CN_RUN_NOT_RUN) snprintf(out, n, "not run");
    else if (d->status == CN_RUN_FAILED) snprintf(out, n, "failed: %s", d->reason);
    else if (d->status == CN_RUN_DIVERGED) snprintf(out, n, "diverged at step %lld", d->diverged_at);
    else if (d->blew_up) snprintf(out, n, "blew up at step %lld (loss %.3g, early level %.3g)", d->blew_up_at,
                                  d->blew_up_peak, d->early_loss);
    else snprintf(out, n, "done");
}

static void fmt_val(char *out, size_t n, cn_report_val v)
{
    if (!v.present) snprintf(out, n, "n/a");
    else if (isfinite(v.v)) snprintf(out, n, "%.4g", v.v);
    else snprintf(out, n, v.v == INFINITY ? "inf" : "not finite");
}

static void steps_text(char *out, size_t n, const cn_report_rundata *d)
{
    if (!d->have_summary) snprintf(out, n, "n/a");
    else if (unfinished(d) && d->planned_steps) snprintf(out, n, "%lld of %lld", d->steps, d->planned_steps);
    else snprintf(out, n, "%lld", d->steps);
}

static const char *const how_to_read =
    "Each row aggregates the seeds of one variant; *settings* is what the variant changed: the settings in "
    "which its runs' config.json differs from the other variants'. Numbers are the mean ± sample standard "
    "deviation over the runs that ran to their end: failed runs are counted in *runs* and listed below; "
    "unfinished runs (interrupted, stopped short of train.steps, or never started) are counted in *runs*, "
    "listed apart and never averaged. Diverged and blown-up runs are counted in their columns and left out "
    "of the loss and metric means (\"(2 diverged)\", \"(1 blew up)\"; \"—\" when every run was); the "
    "clipped steps, gradient norm and speed keep them. \"(2/3 finite)\" means the mean is over the finite "
    "values only. *final loss* is the mean training loss of the last min(100, steps) logged steps; "
    "*diverged* counts the runs that met a non-finite loss or gradient, with the step at which each first "
    "did; *blew up* counts the runs whose training loss stayed finite but rose above 100 times its early "
    "level (the median of its first 10 logged losses), with the first such step; *clipped steps* is the "
    "share of optimizer steps on which clipping changed the gradient; *max grad norm* is the largest "
    "global L2 norm the clip stage received, before clipping. Clipping is doing its job when the gradient "
    "norm stays bounded, runs stop diverging, and the final loss is no worse than without it; a variant "
    "that clips nearly every step is effectively training with a smaller learning rate.";

static void run_row_md(cn_report_buf *b, const cn_report_rundata *d)
{
    char oc[700], fl[48], st[64];
    outcome(oc, sizeof oc, d);
    fmt_val(fl, sizeof fl, d->failed ? (cn_report_val){0, 0} : d->final_loss);
    steps_text(st, sizeof st, d);
    cn_report_puts(b, "| ");
    cn_report_md(b, d->in->variant ? d->in->variant : "");
    cn_report_printf(b, " | %lld | ", d->in->seed);
    cn_report_md(b, oc);
    cn_report_printf(b, " | %s | %s | ", st, fl);
    cn_report_md(b, d->in->dir ? d->in->dir : "");
    cn_report_puts(b, " |\n");
}

static void md_doc(cn_report_buf *b, const report *r, const char *title)
{
    cn_report_puts(b, "# ");
    cn_report_md(b, title);
    cn_report_printf(b, "\n\n%d run%s in %d variant%s, written by clipnn %s.\n\n", r->n_runs, r->n_runs == 1 ? "" : "s",
                     r->n_groups, r->n_groups == 1 ? "" : "s", CN_VERSION);
    md_table(b, r);
    char wt[600];
    winner_text(wt, sizeof wt, r);
    if (*wt) {
        cn_report_puts(b, "\n");
        cn_report_md(b, wt);
        cn_report_puts(b, "\n");
    }
    if (r->any_unfinished) {
        cn_report_puts(b, "\n## Unfinished runs (not averaged)\n\n"
                          "| variant | seed | outcome | steps | final loss | directory |\n|---|---:|---|---:|---:|---|\n");
        for (int i = 0; i < r->n_runs; i++)
            if (unfinished(&r->rd[i])) run_row_md(b, &r->rd[i]);
    }
    cn_report_puts(b, "\n## How to read this\n\n");
    cn_report_puts(b, how_to_read);
    cn_report_puts(b, "\n");
    cn_report_paired_md(b, r->rd, r->n_runs, r->baseline);
    cn_report_sweep_md(b, r->rd, r->n_runs, r->baseline);
    cn_report_puts(b, "\nCharts (training loss, the early steps, pre-clip gradient norm against the clip threshold, "
                      "effective scale, test loss, per-tensor gradient norms): [report.html](report.html).\n\n## Runs\n\n"
                      "| variant | seed | outcome | steps | final loss | directory |\n|---|---:|---|---:|---:|---|\n");
    for (int i = 0; i < r->n_runs; i++) run_row_md(b, &r->rd[i]);
}

/* ---- chart data ---- */

enum { AGG_LOGMEAN, AGG_MEAN, AGG_MAX };
/* Data sources besides the metrics.csv columns 0 .. CN_RC_NCOLS-1 */
#define SRC_EVAL (-1)
#define SRC_TENSOR (-2)

typedef struct {
    const double *x, *y;
    long long n;
} view;

/* Rows of a run's source with x <= x_limit (rows are in step order). tensor: the name for SRC_TENSOR. */
static view view_of(const cn_report_rundata *d, int src, const char *tensor, double x_limit)
{
    view v = {NULL, NULL, 0};
    if (src == SRC_EVAL) {
        v = (view){d->eval_step, d->eval_loss, d->n_eval};
    } else if (src == SRC_TENSOR) {
        for (int t = 0; t < d->n_tensors; t++)
            if (!strcmp(d->tensor_name[t], tensor)) { v = (view){d->col[CN_RC_STEP], d->tensor_col[t], d->n}; break; }
    } else {
        v = (view){d->col[CN_RC_STEP], d->col[src], d->n};
    }
    while (v.n > 0 && v.x[v.n - 1] > x_limit) v.n--;
    return v;
}

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

/* At most `points` points: buckets of k consecutive rows (see the file comment). */
static void downsample(report *r, const double *x, const double *y, long long n, int agg, long long points,
                       cn_report_line *out)
{
    long long k = (n + points - 1) / points;
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

/* Per-step median across the runs `idx` of a source, merging rows by step. strict: missing and
 * non-finite values count as +inf (median finite iff more than half are finite); otherwise the median
 * of the finite values present. Writes x/y (capacity: total rows) and returns the length; tmp and pos
 * are scratch of m entries. */
static long long median_merge(report *r, const int *idx, int m, int src, const char *tensor, double x_limit,
                              int strict, double *x, double *y, double *tmp, long long *pos)
{
    long long n = 0;
    memset(pos, 0, (size_t)m * sizeof *pos);
    for (;;) {
        double step = INFINITY;
        for (int i = 0; i < m; i++) {
            view v = view_of(&r->rd[idx[i]], src, tensor, x_limit);
            if (pos[i] < v.n && v.x[pos[i]] < step) step = v.x[pos[i]];
        }
        if (step == INFINITY) break;
        int f = 0;
        for (int i = 0; i < m; i++) {
            view v = view_of(&r->rd[idx[i]], src, tensor, x_limit);
            if (pos[i] < v.n && v.x[pos[i]] == step) {
                if (isfinite(v.y[pos[i]])) tmp[f++] = v.y[pos[i]];
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
    cn_report_mark mk = {(double)d->diverged_at, NAN, d->in->seed, d->diverged_at, multi, 0};
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

/* Which chart: the source, how to downsample, threshold and marks, the x range. */
typedef struct {
    int src, agg, log_y, with_threshold, with_marks;
    double x_limit;
} chart_spec;

static void build_series(report *r, const group *g, int gi, const chart_spec *cs, cn_report_series *s)
{
    memset(s, 0, sizeof *s);
    s->variant = g->name;
    s->legend_note = g->note[0] ? g->note : NULL;
    s->colour = palette[gi % N_PALETTE];
    int m = 0, with_data = 0;
    long long total = 0;
    int *ok = cn_malloc((size_t)(g->n ? g->n : 1) * sizeof *ok);
    if (!ok) { r->oom = 1; return; }
    for (int k = 0; k < g->n; k++) {
        const cn_report_rundata *d = &r->rd[g->runs[k]];
        long long n = view_of(d, cs->src, NULL, cs->x_limit).n;
        if (n) with_data++;
        if (!d->failed && n) {
            ok[m++] = g->runs[k];
            total += n;
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
        view v = view_of(d, cs->src, NULL, cs->x_limit);
        if (!v.n || (m == 1 && !d->failed)) continue;
        downsample(r, v.x, v.y, v.n, cs->agg, CN_REPORT_SEED_POINTS, &s->seeds[s->n_seeds]);
        s->seeds[s->n_seeds].diverged = d->diverged || d->blew_up;
        s->seeds[s->n_seeds++].seed = d->in->seed;
    }
    if (m == 1) {
        const cn_report_rundata *d = &r->rd[ok[0]];
        view v = view_of(d, cs->src, NULL, cs->x_limit);
        downsample(r, v.x, v.y, v.n, cs->agg, CN_REPORT_POINTS, &s->bold);
        s->bold.diverged = d->diverged || d->blew_up;
    }
    if (m >= 2 || (cs->with_threshold && m >= 1)) {
        x = cn_malloc((size_t)total * sizeof *x);
        y = cn_malloc((size_t)total * sizeof *y);
        tmp = cn_malloc((size_t)m * sizeof *tmp);
        pos = cn_malloc((size_t)m * sizeof *pos);
        if (!x || !y || !tmp || !pos) { r->oom = 1; goto out; }
    }
    if (m >= 2) {
        long long n = median_merge(r, ok, m, cs->src, NULL, cs->x_limit, 1, x, y, tmp, pos);
        downsample(r, x, y, n, cs->agg, CN_REPORT_POINTS, &s->bold);
        for (int i = 0; i < m; i++) s->bold.diverged |= r->rd[ok[i]].diverged || r->rd[ok[i]].blew_up;
    }
    if (cs->with_threshold && m >= 1) {
        int draw = 0;
        for (int i = 0; i < m; i++) draw |= r->rd[ok[i]].draw_threshold;
        long long n = draw ? median_merge(r, ok, m, CN_RC_THR, NULL, cs->x_limit, 0, x, y, tmp, pos) : 0;
        int finite = 0;
        for (long long i = 0; i < n; i++) finite |= isfinite(y[i]) && y[i] > 0;
        if (finite) downsample(r, x, y, n, AGG_LOGMEAN, CN_REPORT_POINTS, &s->dashed);
    }
    for (int i = 0; i < m && cs->with_marks; i++) {
        const cn_report_rundata *d = &r->rd[ok[i]];
        if (d->diverged && d->diverged_at > 0 && (double)d->diverged_at <= cs->x_limit)
            s->marks[s->n_marks++] = mark_of(d, cs->src, cs->log_y, m > 1);
    }
out:
    cn_free(x);
    cn_free(y);
    cn_free(tmp);
    cn_free(pos);
    cn_free(ok);
}

/* The last step of any run (x_limit = INFINITY) */
static double last_step(const report *r)
{
    double x = 0;
    for (int i = 0; i < r->n_runs; i++)
        if (r->rd[i].n && r->rd[i].col[CN_RC_STEP][r->rd[i].n - 1] > x) x = r->rd[i].col[CN_RC_STEP][r->rd[i].n - 1];
    return x;
}

static void chart(cn_report_buf *b, report *r, const cn_report_chart *c, const chart_spec *cs)
{
    cn_report_series *s = cn_calloc((size_t)(r->n_groups ? r->n_groups : 1), sizeof *s);
    if (!s) { r->oom = 1; return; }
    cn_report_chart cc = *c;
    cc.log_y = cs->log_y;
    cc.x_max = isfinite(cs->x_limit) ? cs->x_limit : last_step(r);
    for (int gi = 0; gi < r->n_groups && !r->oom; gi++) build_series(r, &r->g[gi], gi, cs, &s[gi]);
    if (!r->oom) cn_report_svg(b, &cc, s, r->n_groups);
    for (int gi = 0; gi < r->n_groups; gi++) free_series(&s[gi]);
    cn_free(s);
}

/* ---- per-tensor heatmaps ---- */

/* One variant's cells: the strict per-step median across its runs (as for the bold lines), then per
 * bucket of steps the maximum (a non-finite value in a bucket makes the cell "not finite"). */
typedef struct {
    int rows;
    char **names;        /* borrowed from the first run that has per-tensor columns */
    double *v;
    unsigned char *state;
    int diverged;        /* some run of the variant diverged (its values do not set the colour range) */
} heat;

static void build_heat(report *r, const group *g, double x_max, heat *h)
{
    memset(h, 0, sizeof *h);
    int m = 0;
    const cn_report_rundata *first = NULL;
    int *ok = cn_malloc((size_t)(g->n ? g->n : 1) * sizeof *ok);
    if (!ok) { r->oom = 1; return; }
    long long total = 0;
    for (int k = 0; k < g->n; k++) {
        const cn_report_rundata *d = &r->rd[g->runs[k]];
        if (d->failed || !d->n || !d->n_tensors) continue;
        if (!first) first = d;
        ok[m++] = g->runs[k];
        total += d->n;
        h->diverged |= d->diverged || d->blew_up;
    }
    if (!first) { cn_free(ok); return; }
    h->rows = first->n_tensors < CN_REPORT_HEAT_ROWS ? first->n_tensors : CN_REPORT_HEAT_ROWS;
    h->names = first->tensor_name;
    size_t cells = (size_t)h->rows * CN_REPORT_HEAT_COLS;
    h->v = cn_malloc(cells * sizeof *h->v);
    h->state = cn_calloc(cells, 1);
    double *x = cn_malloc((size_t)total * sizeof *x), *y = cn_malloc((size_t)total * sizeof *y);
    double *tmp = cn_malloc((size_t)m * sizeof *tmp);
    long long *pos = cn_malloc((size_t)m * sizeof *pos);
    if (!h->v || !h->state || !x || !y || !tmp || !pos) {
        r->oom = 1;
        goto out;
    }
    for (int t = 0; t < h->rows; t++) {
        long long n = median_merge(r, ok, m, SRC_TENSOR, h->names[t], INFINITY, 1, x, y, tmp, pos);
        for (long long i = 0; i < n; i++) {
            long long col = (long long)ceil(x[i] / x_max * CN_REPORT_HEAT_COLS) - 1;
            if (col < 0) col = 0;
            if (col >= CN_REPORT_HEAT_COLS) col = CN_REPORT_HEAT_COLS - 1;
            size_t c = (size_t)t * CN_REPORT_HEAT_COLS + (size_t)col;
            if (!isfinite(y[i])) h->state[c] = 2;
            else if (h->state[c] == 0) { h->state[c] = 1; h->v[c] = y[i]; }
            else if (h->state[c] == 1 && y[i] > h->v[c]) h->v[c] = y[i];
        }
    }
out:
    cn_free(x);
    cn_free(y);
    cn_free(tmp);
    cn_free(pos);
    cn_free(ok);
}

static void heatmaps(cn_report_buf *b, report *r)
{
    heat *h = cn_calloc((size_t)(r->n_groups ? r->n_groups : 1), sizeof *h);
    if (!h) { r->oom = 1; return; }
    double x_max = last_step(r);
    int any = 0;
    for (int gi = 0; gi < r->n_groups && !r->oom; gi++) {
        build_heat(r, &r->g[gi], x_max > 0 ? x_max : 1, &h[gi]);
        any |= h[gi].rows > 0;
    }
    if (!r->oom && any) {
        /* one colour scale for all variants: decades spanning the positive finite cells, topped at the
           largest cell of the variants that neither diverged nor blew up (larger values take the top
           colour), so that exploding runs do not wash the healthy ones into one colour */
        double lo = INFINITY, hi = -INFINITY, hi_ok = -INFINITY;
        for (int gi = 0; gi < r->n_groups; gi++)
            for (size_t c = 0; c < (size_t)h[gi].rows * CN_REPORT_HEAT_COLS; c++)
                if (h[gi].state[c] == 1 && h[gi].v[c] > 0) {
                    if (h[gi].v[c] < lo) lo = h[gi].v[c];
                    if (h[gi].v[c] > hi) hi = h[gi].v[c];
                    if (!h[gi].diverged && h[gi].v[c] > hi_ok) hi_ok = h[gi].v[c];
                }
        int dlo = isfinite(lo) ? (int)floor(log10(lo)) : -1, dhi = isfinite(hi) ? (int)ceil(log10(hi)) : 1;
        if (isfinite(hi_ok) && dhi > (int)ceil(log10(hi_ok))) dhi = (int)ceil(log10(hi_ok));
        if (dhi <= dlo) dhi = dlo + 1;
        cn_report_puts(b, "<h2>Per-tensor gradient norms</h2>\n");
        cn_report_printf(b, "<p class=\"howto\">Each parameter tensor's L2 gradient norm before clipping (the "
                            "<code>gn_pre.&lt;tensor&gt;</code> columns of metrics.csv), one row per tensor and "
                            "%d columns of steps: per step the median across the variant's seeds (as the bold "
                            "lines), per column the largest. One log colour scale for every variant; red cells "
                            "were not finite, blank ones have no logged step.</p>\n",
                         CN_REPORT_HEAT_COLS);
        for (int gi = 0; gi < r->n_groups; gi++) {
            if (!h[gi].rows) continue;
            char id[32];
            snprintf(id, sizeof id, "heat-%d", gi);
            cn_report_heatmap hm = {id, r->g[gi].name, palette[gi % N_PALETTE], h[gi].rows, CN_REPORT_HEAT_COLS,
                                    h[gi].names, h[gi].v, h[gi].state, dlo, dhi, x_max > 0 ? x_max : 1};
            cn_report_puts(b, "<figure>\n");
            cn_report_svg_heatmap(b, &hm);
            cn_report_puts(b, "</figure>\n");
        }
    }
    for (int gi = 0; gi < r->n_groups; gi++) {
        cn_free(h[gi].v);
        cn_free(h[gi].state);
    }
    cn_free(h);
}

static const char *const css =
    "*{box-sizing:border-box}\n"
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1200px;margin:24px auto;"
    "padding:0 16px;color:#222;line-height:1.45}\n"
    "h1{font-size:1.6em;margin-bottom:.2em;overflow-wrap:anywhere}h2{font-size:1.2em;margin-top:1.6em}"
    ".meta{color:#666;margin-top:0;overflow-wrap:anywhere}\n"
    "table{border-collapse:collapse;font-size:.88em;margin:0}\n"
    "th,td{border:1px solid #ddd;padding:4px 7px;text-align:right;vertical-align:top}\n"
    "th{background:#f5f5f5;font-weight:600}\n"
    ".scroll{overflow-x:auto;max-width:100%;margin:12px 0;-webkit-overflow-scrolling:touch}\n"
    "td.variant,td.settings,th:first-child,th:nth-child(2),table.runs td,table.runs th{text-align:left}\n"
    "td.variant{white-space:nowrap}td.settings{min-width:12em}td.settings code{white-space:nowrap;font-size:.95em}\n"
    /* the variant's name stays in view while a wide table scrolls sideways */
    "table.summary td.variant,table.summary th:first-child{position:sticky;left:0;z-index:1;background:#fff}\n"
    "table.summary th:first-child{background:#f5f5f5}\n"
    ".num{white-space:nowrap;font-variant-numeric:tabular-nums}.note{color:#666;font-size:.9em}\n"
    "table.summary tr.winner td{background:#eef7ee}tr.winner td.variant{font-weight:600}\n"
    ".badge{display:inline-block;background:#2ca02c;color:#fff;border-radius:3px;padding:0 5px;font-size:.8em;"
    "font-weight:600;vertical-align:1px}\n"
    "table.sweep td.variant,table.sweep td.seeds,table.sweep th.text{text-align:left}"
    "table.sweep tr.winner td{background:#eef7ee}table.sweep td.seeds{min-width:16em}"
    "h3 .swatch{vertical-align:0}\n"
    "table.runs td{white-space:normal}table.runs td.dir{word-break:break-all;min-width:10em}\n"
    ".swatch{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:-1px;border-radius:2px}\n"
    "details.howto{margin:12px 0}details.howto summary{cursor:pointer;color:#444}\n"
    "figure{margin:18px 0}figcaption{color:#555;font-size:.9em;max-width:1000px}\n"
    "svg.chart{display:block;width:100%;height:auto;border:1px solid #eee}\n"
    "@media (max-width:600px){body{margin:12px auto;padding:0 8px}table{font-size:.8em}td.settings{min-width:9em}}\n";

static void html_run_rows(cn_report_buf *b, const report *r, int unfinished_only)
{
    cn_report_puts(b, "<div class=\"scroll\"><table class=\"runs\">\n<thead><tr><th>variant</th><th>seed</th>"
                      "<th>outcome</th><th>steps</th><th>final loss</th><th>directory</th></tr></thead>\n<tbody>\n");
    for (int i = 0; i < r->n_runs; i++) {
        const cn_report_rundata *d = &r->rd[i];
        if (unfinished_only && !unfinished(d)) continue;
        char oc[700], fl[48], st[64];
        outcome(oc, sizeof oc, d);
        fmt_val(fl, sizeof fl, d->failed ? (cn_report_val){0, 0} : d->final_loss);
        steps_text(st, sizeof st, d);
        cn_report_puts(b, "<tr><td>");
        cn_report_html(b, d->in->variant ? d->in->variant : "");
        cn_report_printf(b, "</td><td class=\"num\">%lld</td><td>", d->in->seed);
        cn_report_html(b, oc);
        cn_report_printf(b, "</td><td class=\"num\">%s</td><td class=\"num\">", st);
        cn_report_html(b, fl);
        cn_report_puts(b, "</td><td class=\"dir\">");
        cn_report_html(b, d->in->dir ? d->in->dir : "");
        cn_report_puts(b, "</td></tr>\n");
    }
    cn_report_puts(b, "</tbody></table></div>\n");
}

static void html_plain(cn_report_buf *b, const char *md_text)
{
    for (const char *p = md_text; *p; p++) {   /* *emphasis* in markdown; plain in HTML */
        if (*p == '*') continue;
        char s[2] = {*p, 0};
        cn_report_html(b, s);
    }
}

static void html_doc(cn_report_buf *b, report *r, const char *title)
{
    cn_report_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                      /* self-contained, and the browser holds it to that: no script, no fetch of anything */
                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                      "style-src 'unsafe-inline'\">\n<title>");
    cn_report_html(b, title);
    cn_report_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", css);
    cn_report_html(b, title);
    cn_report_printf(b, "</h1>\n<p class=\"meta\">%d run%s in %d variant%s, written by clipnn %s.</p>\n", r->n_runs,
                     r->n_runs == 1 ? "" : "s", r->n_groups, r->n_groups == 1 ? "" : "s", CN_VERSION);
    html_table(b, r);
    char wt[600];
    winner_text(wt, sizeof wt, r);
    if (*wt) {
        cn_report_puts(b, "<p class=\"winner-rule\">");
        cn_report_html(b, wt);
        cn_report_puts(b, "</p>\n");
    }
    if (r->any_unfinished) {
        cn_report_puts(b, "<h2>Unfinished runs (not averaged)</h2>\n");
        html_run_rows(b, r, 1);
    }
    /* folded: on a phone the charts would otherwise start two screens down */
    cn_report_puts(b, "<details class=\"howto\"><summary>How to read the table</summary>\n<p>");
    html_plain(b, how_to_read);
    cn_report_puts(b, "</p>\n</details>\n");

    int multi = 0;
    for (int gi = 0; gi < r->n_groups; gi++) multi |= r->g[gi].n_ok > 1;
    cn_report_printf(b, "<p class=\"howto\">One colour per variant. %sAn &#215; marks where a run diverged, at its "
                        "last finite value; NaN and inf are gaps in a line, never zeros. Runs longer than %d logged "
                        "steps are downsampled: the loss and the scale by bucket mean (geometric on a log axis), "
                        "the gradient norm by bucket maximum so that spikes stay visible.</p>\n",
                     multi ? "Thin lines are single seeds; the bold line is the per-step median across the seeds "
                             "of a variant, counting a diverged or missing value as +&#8734; (so it has a gap where "
                             "half or more of the seeds are not finite). " : "",
                     CN_REPORT_POINTS);

    cn_report_paired_html(b, r->rd, r->n_runs, r->baseline);
    cn_report_sweep_html(b, r->rd, r->n_runs, r->baseline);
    double last = last_step(r), early = ceil(last * CN_REPORT_EARLY_FRAC);
    if (early < CN_REPORT_EARLY_MIN) early = CN_REPORT_EARLY_MIN;
    int show_early = early < last / 2;

    cn_report_puts(b, "<h2>Training loss</h2>\n<figure>\n");
    cn_report_chart c1 = {"loss", "Training loss", "optimizer step", "loss (log scale)", 1, 0, 1, 0, 0, NULL, NULL, NULL, NULL};
    chart_spec s1 = {CN_RC_LOSS, AGG_LOGMEAN, 1, 0, 1, INFINITY};
    chart(b, r, &c1, &s1);
    cn_report_puts(b, "<figcaption>Mean training loss of each step's batch, before the update.</figcaption>\n"
                      "</figure>\n");

    if (show_early) {
        char title_e[96];
        snprintf(title_e, sizeof title_e, "Training loss, steps 1-%.0f", early);
        cn_report_printf(b, "<h2>The first %.0f steps</h2>\n<figure>\n", early);
        cn_report_chart ce = {"loss-early", title_e, "optimizer step", "loss (log scale)", 1, 0, 1, 0, 0, NULL, NULL, NULL, NULL};
        chart_spec se = {CN_RC_LOSS, AGG_LOGMEAN, 1, 0, 1, early};
        chart(b, r, &ce, &se);
        cn_report_puts(b, "</figure>\n<figure>\n");
        snprintf(title_e, sizeof title_e, "Gradient norm before clipping, steps 1-%.0f", early);
        cn_report_chart ce2 = {"gradnorm-early", title_e, "optimizer step", "global L2 norm (log scale)", 1, 0, 1, 0, 0, NULL, NULL, NULL, NULL};
        chart_spec se2 = {CN_RC_GN, AGG_MAX, 1, 1, 1, early};
        chart(b, r, &ce2, &se2);
        cn_report_printf(b, "<figcaption>The first %g%% of the steps (at least %d) magnified: divergences early in a "
                            "run, invisible at the scale of the whole run, are marked here.</figcaption>\n</figure>\n",
                         100 * CN_REPORT_EARLY_FRAC, CN_REPORT_EARLY_MIN);
    }

    cn_report_puts(b, "<h2>Gradient norm before clipping</h2>\n<figure>\n");
    cn_report_chart c2 = {"gradnorm", "Gradient norm before clipping", "optimizer step",
                          "global L2 norm (log scale)", 1, 0, 1, 0, 0, NULL, NULL, NULL, NULL};
    chart_spec s2 = {CN_RC_GN, AGG_MAX, 1, 1, 1, INFINITY};
    chart(b, r, &c2, &s2);
    cn_report_puts(b, "<figcaption>Global L2 norm of the gradient the clip stage received (grad_norm_pre). The "
                      "dashed line is the clip threshold in force (global-norm modes: norm, autoclip, zclip); where "
                      "the norm is above it, the gradient was scaled down to it.</figcaption>\n</figure>\n");

    cn_report_puts(b, "<h2>Effective scale</h2>\n<figure>\n");
    cn_report_chart c3 = {"scale", "Effective scale (post-clip / pre-clip gradient norm)", "optimizer step",
                          "grad_norm_post / grad_norm_pre", 0, 0, 1.05, 0, 0, NULL, NULL, NULL, NULL};
    chart_spec s3 = {CN_RC_SCALE, AGG_MEAN, 0, 0, 1, INFINITY};
    chart(b, r, &c3, &s3);
    cn_report_puts(b, "<figcaption>How much the clip stage shortened the gradient, whatever the mode: the L2 norm "
                      "the optimizer received divided by the one the clip stage received (1 = untouched, 0.1 = ten "
                      "times shorter). For value, per-tensor and AGC clipping, which change the gradient's direction "
                      "as well, this is the only single number that shows how hard they clip.</figcaption>\n"
                      "</figure>\n");

    int evals = 0;
    for (int i = 0; i < r->n_runs; i++) evals |= r->rd[i].n_eval > 0;
    if (evals) {
        cn_report_puts(b, "<h2>Test loss</h2>\n<figure>\n");
        cn_report_chart c4 = {"testloss", "Test loss", "optimizer step", "test loss (log scale)", 1, 0, 1, 0, 0, NULL, NULL, NULL, NULL};
        chart_spec s4 = {SRC_EVAL, AGG_LOGMEAN, 1, 0, 0, INFINITY};
        chart(b, r, &c4, &s4);
        cn_report_puts(b, "<figcaption>Loss on the test set at each evaluation (eval.csv).</figcaption>\n</figure>\n");
    }

    heatmaps(b, r);

    cn_report_puts(b, "<h2>Runs</h2>\n");
    html_run_rows(b, r, 0);
    cn_report_puts(b, "<p class=\"meta\">Summary: <a href=\"report.md\">report.md</a>.</p>\n</body>\n</html>\n");
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
    size_t ng = (size_t)(r->n_groups ? r->n_groups : 1);
    const char **names = cn_calloc(ng, sizeof *names), **sets = cn_calloc(ng, sizeof *sets);
    const int **runs = cn_calloc(ng, sizeof *runs);
    int *n = cn_calloc(ng, sizeof *n);
    cn_status st = CN_OK;
    if (!names || !sets || !runs || !n) st = cn_error(CN_ERR_NOMEM, "out of memory");
    for (int g = 0; !st && g < r->n_groups; g++) {
        names[g] = r->g[g].name;
        sets[g] = r->g[g].settings;
        runs[g] = r->g[g].runs;
        n[g] = r->g[g].n;
    }
    if (!st) st = cn_report_write_data(dir, title, r->rd, r->n_runs, names, sets, runs, n, r->n_groups, r->baseline);
    cn_free(names);
    cn_free(sets);
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
    void **configs = NULL;
    char **settings = NULL;
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
        const cn_report_rundata *d = &r.rd[i];
        group *g = &r.g[gi];
        g->runs[g->n++] = i;
        if (!d->failed) g->n_ok++;
        if (d->status == CN_RUN_FAILED) g->n_failed++;
        if (unfinished(d)) { g->n_unf++; r.any_unfinished = 1; }
        if (finished(d)) {
            g->n_fin++;
            g->n_div += d->status == CN_RUN_DIVERGED;
            g->n_blew += d->status != CN_RUN_DIVERGED && d->blew_up;
        }
    }
    for (int gi = 0; gi < r.n_groups; gi++) {
        group *g = &r.g[gi];
        int failed = g->n_failed;
        if (failed == g->n) snprintf(g->note, sizeof g->note, "failed");
        else if (failed && g->n_unf) snprintf(g->note, sizeof g->note, "%d failed, %d unfinished", failed, g->n_unf);
        else if (failed) snprintf(g->note, sizeof g->note, "%d of %d failed", failed, g->n);
        else if (g->n_unf) snprintf(g->note, sizeof g->note, "%d of %d unfinished", g->n_unf, g->n);
    }
    /* settings: from each variant's first run whose config.json was read */
    configs = cn_calloc((size_t)(r.n_groups ? r.n_groups : 1), sizeof *configs);
    settings = cn_calloc((size_t)(r.n_groups ? r.n_groups : 1), sizeof *settings);
    if (!configs || !settings) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto out; }
    for (int gi = 0; gi < r.n_groups; gi++)
        for (int k = 0; k < r.g[gi].n && !configs[gi]; k++) configs[gi] = r.rd[r.g[gi].runs[k]].config;
    if ((st = cn_report_settings(configs, r.n_groups, settings))) goto out;
    /* a caller that knows what each variant changed (compare: its --variant/--sweep settings) says so */
    for (int gi = 0; gi < r.n_groups; gi++) {
        const char *declared = runs[r.g[gi].runs[0]].settings;
        if (!declared) continue;
        char *c = cn_malloc(strlen(declared) + 1);
        if (!c) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto out; }
        memcpy(c, declared, strlen(declared) + 1);
        cn_free(settings[gi]);
        settings[gi] = c;
    }
    for (int gi = 0; gi < r.n_groups; gi++) r.g[gi].settings = settings[gi];
    choose_winner(&r);

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
    for (int gi = 0; settings && gi < r.n_groups; gi++) cn_free(settings[gi]);
    cn_free(settings);
    cn_free(configs);
    cn_free(r.rd);
    cn_free(r.g);
    cn_report_buf_free(&md);
    cn_report_buf_free(&html);
    cn_report_buf_free(&tb);
    return st;
}
