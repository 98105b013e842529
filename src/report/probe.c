/* The gradient-norm probe on a metrics.csv (definitions in probe.h). */
#include "report/probe.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "io/files.h"
#include "report/internal.h"
#include "report/stats.h"

/* ---- reading metrics.csv ---- */

static char *dup_range(const char *s, size_t n)
{
    char *p = cn_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Column roles found in the header. */
enum { ROLE_OTHER = -1, ROLE_STEP = -2, ROLE_NORM = -3, ROLE_LOSS = -4 };   /* >= 0: index of a gn_pre tensor */

typedef struct {
    int ncols;
    int *role;                /* per column */
    double *gn;               /* rows x n_tensors, row-major */
} csv_cols;

static cn_status read_metrics(const char *path, cn_probe *p, csv_cols *cc)
{
    char *buf;
    size_t len;
    cn_status st = cn_read_file(path, CN_READ_UNLIMITED, &buf, &len);
    if (st) return st == CN_ERR_NOMEM ? st : cn_error(CN_ERR_ARG, "%s", cn_errmsg());
    char *end = buf + len, *eol = memchr(buf, '\n', len);
    if (!eol) { cn_free(buf); return cn_error(CN_ERR_ARG, "%s: no header line", path); }
    /* header */
    int ncols = 1;
    for (char *q = buf; q < eol; q++) ncols += *q == ',';
    cc->ncols = ncols;
    cc->role = cn_malloc((size_t)ncols * sizeof *cc->role);
    p->tensors = cn_calloc((size_t)ncols, sizeof *p->tensors);
    if (!cc->role || !p->tensors) { cn_free(buf); return cn_error(CN_ERR_NOMEM, "out of memory"); }
    int have_step = 0, have_norm = 0, k = 0;
    const char *bom = "\xEF\xBB\xBF";
    char *f = buf;
    if ((size_t)(eol - buf) >= 3 && !memcmp(buf, bom, 3)) f += 3;
    for (; f <= eol; k++) {
        char *fe = f;
        while (fe < eol && *fe != ',') fe++;
        char *te = fe;
        if (te > f && te[-1] == '\r') te--;
        size_t n = (size_t)(te - f);
        cc->role[k] = ROLE_OTHER;
        if (n == 4 && !memcmp(f, "step", 4)) { cc->role[k] = ROLE_STEP; have_step = 1; }
        else if (n == 13 && !memcmp(f, "grad_norm_pre", 13)) { cc->role[k] = ROLE_NORM; have_norm = 1; }
        else if (n == 4 && !memcmp(f, "loss", 4)) cc->role[k] = ROLE_LOSS;
        else if (n > 7 && !memcmp(f, "gn_pre.", 7)) {
            cn_probe_tensor *t = &p->tensors[p->n_tensors];
            if (!(t->name = dup_range(f + 7, n - 7))) { cn_free(buf); return cn_error(CN_ERR_NOMEM, "out of memory"); }
            cc->role[k] = p->n_tensors++;
        }
        f = fe + 1;
    }
    if (!have_step || !have_norm) {
        cn_free(buf);
        return cn_error(CN_ERR_ARG, "%s: no column \"%s\" in the header (is it a clipnn metrics.csv?)", path,
                        have_step ? "grad_norm_pre" : "step");
    }
    long long cap = 1;
    for (char *q = eol + 1; q < end; q++) cap += *q == '\n';
    p->step = cn_malloc((size_t)cap * sizeof *p->step);
    p->norm = cn_malloc((size_t)cap * sizeof *p->norm);
    cc->gn = cn_malloc((size_t)cap * (size_t)(p->n_tensors ? p->n_tensors : 1) * sizeof *cc->gn);
    if (!p->step || !p->norm || !cc->gn) { cn_free(buf); return cn_error(CN_ERR_NOMEM, "out of memory"); }
    long long line = 1;
    for (char *q = eol + 1; q < end; q = eol + 1) {
        line++;
        eol = memchr(q, '\n', (size_t)(end - q));
        int torn = !eol;
        if (torn) eol = end;
        char *le = eol;
        if (le > q && le[-1] == '\r') le--;
        if (le == q) {
            if (torn) break;
            continue;
        }
        double *gn = cc->gn + (size_t)p->rows * (size_t)p->n_tensors;
        double stp = NAN, nrm = NAN, loss = 0;
        int c = 0;
        const char *bad = NULL;
        for (char *g = q; g <= le && !bad; c++) {
            char *ge = g;
            while (ge < le && *ge != ',') ge++;
            if (c < ncols && cc->role[c] != ROLE_OTHER) {
                double v;
                if (!cn_report_parse_field(g, ge, &v))
                    bad = cc->role[c] == ROLE_STEP ? "step" : cc->role[c] == ROLE_NORM ? "grad_norm_pre"
                        : cc->role[c] == ROLE_LOSS ? "loss" : p->tensors[cc->role[c]].name;
                else if (cc->role[c] == ROLE_STEP) stp = v;
                else if (cc->role[c] == ROLE_NORM) nrm = v;
                else if (cc->role[c] == ROLE_LOSS) loss = v;
                else gn[cc->role[c]] = v;
            }
            g = ge + 1;
        }
        if (!bad && c < ncols && torn) break;   /* a torn last line of a killed run: dropped */
        if (!bad && !isfinite(stp)) bad = "step";
        if (bad) {
            cn_free(buf);
            return cn_error(CN_ERR_ARG, "%s line %lld, column \"%s\": not a number", path, line, bad);
        }
        if (c != ncols) {
            cn_free(buf);
            return cn_error(CN_ERR_ARG, "%s line %lld: %d fields, the header has %d", path, line, c, ncols);
        }
        p->step[p->rows] = stp;
        /* a non-finite loss counts as a non-finite gradient (the step is skipped or stops the run), so
           its norm, finite or not, is no measurement of the model's gradients */
        p->norm[p->rows] = isfinite(loss) ? nrm : NAN;
        p->rows++;
        if (torn) break;
    }
    cn_free(buf);
    return CN_OK;
}

/* ---- the figures ---- */

/* Position of the first element >= v in sorted a[0..n-1]. */
static long long lower_bound(const double *a, long long n, double v)
{
    long long lo = 0, hi = n;
    while (lo < hi) {
        long long mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* ring: the last min(have, W) finite norms in arrival order; win: the same values sorted, updated in
 * O(W) per row (remove the oldest, insert the newest) so a long run's metrics.csv stays fast. */
static void find_spikes(cn_probe *p, double *ring, double *win)
{
    long long have = 0;   /* finite norms seen so far */
    for (long long i = 0; i < p->rows; i++) {
        double v = p->norm[i];
        if (!isfinite(v)) continue;
        long long w = have < CN_PROBE_SPIKE_WINDOW ? have : CN_PROBE_SPIKE_WINDOW;
        if (have >= CN_PROBE_SPIKE_MIN_HISTORY) {
            double med = cn_stats_quantile_sorted(win, w, 0.5);
            if (v > CN_PROBE_SPIKE_K * med) {
                if (p->n_spikes < CN_PROBE_MAX_SPIKES_LISTED)
                    p->spikes[p->n_spikes] = (cn_probe_spike){(long long)p->step[i], v, med > 0 ? v / med : INFINITY};
                p->n_spikes++;
            }
        }
        if (w == CN_PROBE_SPIKE_WINDOW) {   /* the window is full: the oldest value leaves */
            double old = ring[have % CN_PROBE_SPIKE_WINDOW];
            long long k = lower_bound(win, w, old);
            memmove(win + k, win + k + 1, (size_t)(w - k - 1) * sizeof *win);
            w--;
        }
        long long k = lower_bound(win, w, v);
        memmove(win + k + 1, win + k, (size_t)(w - k) * sizeof *win);
        win[k] = v;
        ring[have % CN_PROBE_SPIKE_WINDOW] = v;
        have++;
    }
}

static cn_status tensor_shares(cn_probe *p, const double *gn, double *scratch)
{
    int nt = p->n_tensors;
    if (!nt) return CN_OK;
    double *sq = cn_calloc((size_t)nt, sizeof *sq);
    if (!sq) return cn_error(CN_ERR_NOMEM, "out of memory");
    double total = 0.0;
    for (long long r = 0; r < p->rows; r++) {
        const double *g = gn + (size_t)r * (size_t)nt;
        int ok = isfinite(p->norm[r]);
        for (int i = 0; i < nt && ok; i++) ok = isfinite(g[i]);
        if (!ok) continue;
        p->tensor_rows++;
        for (int i = 0; i < nt; i++) {
            sq[i] += g[i] * g[i];
            total += g[i] * g[i];
        }
    }
    for (int i = 0; i < nt; i++) {
        p->tensors[i].share = p->tensor_rows && total > 0 ? sq[i] / total : NAN;
        long long m = 0;
        for (long long r = 0; r < p->rows; r++) {
            const double *g = gn + (size_t)r * (size_t)nt;
            int ok = isfinite(p->norm[r]);
            for (int j = 0; j < nt && ok; j++) ok = isfinite(g[j]);
            if (ok) scratch[m++] = g[i];
        }
        cn_stats_sort(scratch, m);
        p->tensors[i].median = cn_stats_quantile_sorted(scratch, m, 0.5);
    }
    cn_free(sq);
    return CN_OK;
}

cn_status cn_probe_analyze(const char *run_dir, cn_probe *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->source, sizeof p->source, "%s/metrics.csv", run_dir);
    csv_cols cc = {0};
    double *sorted = NULL, *ring = NULL, *scratch = NULL;
    cn_status st = read_metrics(p->source, p, &cc);
    if (st) goto out;
    sorted = cn_malloc((size_t)(p->rows ? p->rows : 1) * sizeof *sorted);
    ring = cn_malloc(CN_PROBE_SPIKE_WINDOW * sizeof *ring);
    scratch = cn_malloc((size_t)(p->rows > CN_PROBE_SPIKE_WINDOW ? p->rows : CN_PROBE_SPIKE_WINDOW) * sizeof *scratch);
    if (!sorted || !ring || !scratch) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto out; }
    double sum = 0.0;
    for (long long i = 0; i < p->rows; i++) {
        double v = p->norm[i];
        if (isfinite(v)) {
            sorted[p->finite++] = v;
            sum += v;
        } else if (!p->first_nonfinite_step) {
            p->first_nonfinite_step = (long long)p->step[i];
        }
    }
    p->nonfinite = p->rows - p->finite;
    if (!p->finite) {
        st = cn_error(CN_ERR_ARG, "%s: no finite grad_norm_pre in %lld row%s: nothing to probe%s", p->source, p->rows,
                      p->rows == 1 ? "" : "s", p->rows ? " (every step was non-finite: lower the learning rate or "
                      "check the data)" : "");
        goto out;
    }
    cn_stats_sort(sorted, p->finite);
    long long n = p->finite;
    p->mean = sum / (double)n;
    p->min = sorted[0];
    p->max = sorted[n - 1];
    p->median = cn_stats_quantile_sorted(sorted, n, 0.5);
    p->p10 = cn_stats_quantile_sorted(sorted, n, 0.10);
    p->p25 = cn_stats_quantile_sorted(sorted, n, 0.25);
    p->p75 = cn_stats_quantile_sorted(sorted, n, 0.75);
    p->p90 = cn_stats_quantile_sorted(sorted, n, 0.90);
    p->p99 = cn_stats_quantile_sorted(sorted, n, 0.99);
    find_spikes(p, ring, scratch);
    /* the model before it first spiked: the median of the finite norms logged before that step */
    double calm = p->median;
    if (p->n_spikes) {
        long long m = 0;
        for (long long i = 0; i < p->rows && p->step[i] < (double)p->spikes[0].step; i++)
            if (isfinite(p->norm[i])) scratch[m++] = p->norm[i];
        cn_stats_sort(scratch, m);
        calm = cn_stats_quantile_sorted(scratch, m, 0.5);
    }
    if ((st = tensor_shares(p, cc.gn, scratch))) goto out;
    const cn_probe_candidate c[CN_PROBE_N_CANDIDATES] = {
        {"mean", "Pascanu et al. 2013: the average norm over the probe", p->mean, 0},
        {"p50", "the median norm", p->median, 0},
        {"p10", "AutoClip's default percentile (Seetharaman et al. 2020)", p->p10, 0},
        {"p25", "AutoClip-style percentile", p->p25, 0},
        {"p90", "AutoClip-style percentile: clips only the largest 10%", p->p90, 0},
        {"calm", "the median norm before the first spike (all steps when there is none)", calm, 0},
    };
    for (int k = 0; k < CN_PROBE_N_CANDIDATES; k++) {
        p->cand[k] = c[k];
        long long above = 0;
        for (long long i = 0; i < n; i++) above += sorted[i] > c[k].value;
        p->cand[k].clip_rate = (double)above / (double)n;
    }
out:
    cn_free(sorted);
    cn_free(ring);
    cn_free(scratch);
    cn_free(cc.role);
    cn_free(cc.gn);
    if (st) cn_probe_free(p);
    return st;
}

void cn_probe_free(cn_probe *p)
{
    for (int i = 0; i < p->n_tensors; i++) cn_free(p->tensors[i].name);
    cn_free(p->tensors);
    cn_free(p->step);
    cn_free(p->norm);
    p->tensors = NULL;
    p->step = p->norm = NULL;
    p->n_tensors = 0;
}

/* ---- the table ---- */

void cn_probe_print(const cn_probe *p, FILE *f)
{
    fprintf(f, "gradient-norm probe of %s\n\n", p->source);
    fprintf(f, "pre-clip global L2 norm over %lld logged steps: %lld finite, %lld non-finite", p->rows, p->finite,
            p->nonfinite);
    if (p->first_nonfinite_step) fprintf(f, " (first at step %lld)", p->first_nonfinite_step);
    fprintf(f, "\n");
    fprintf(f, "  %-8s %-11s %-11s %-11s %-11s %-11s %-11s %-11s %-11s %-11s\n", "", "mean", "min", "p10", "p25",
            "median", "p75", "p90", "p99", "max");
    fprintf(f, "  %-8s %-11.4g %-11.4g %-11.4g %-11.4g %-11.4g %-11.4g %-11.4g %-11.4g %-11.4g\n", "norm", p->mean,
            p->min, p->p10, p->p25, p->median, p->p75, p->p90, p->p99, p->max);
    fprintf(f, "\nspikes (norm > %g x median of the previous %d finite norms): %lld\n", CN_PROBE_SPIKE_K,
            CN_PROBE_SPIKE_WINDOW, p->n_spikes);
    for (long long i = 0; i < p->n_spikes && i < 10; i++)
        fprintf(f, "  step %-8lld norm %-11.4g %.3gx the running median\n", p->spikes[i].step, p->spikes[i].norm,
                p->spikes[i].ratio);
    if (p->n_spikes > 10) fprintf(f, "  ... (%lld more in probe.json)\n", p->n_spikes - 10);
    fprintf(f, "\ncandidate thresholds for clip.max_norm (clip rate: share of the probe's finite steps above it)\n");
    fprintf(f, "  %-6s %-11s %-10s %s\n", "rule", "threshold", "clip rate", "source");
    for (int k = 0; k < CN_PROBE_N_CANDIDATES; k++)
        fprintf(f, "  %-6s %-11.4g %8.1f%%   %s\n", p->cand[k].name, p->cand[k].value, 100 * p->cand[k].clip_rate,
                p->cand[k].source);
    if (p->n_tensors) {
        fprintf(f, "\nshare of the squared norm per tensor (%lld steps where every tensor's norm is finite)\n",
                p->tensor_rows);
        fprintf(f, "  %-28s %-9s %s\n", "tensor", "share", "median norm");
        for (int i = 0; i < p->n_tensors; i++)
            fprintf(f, "  %-28s %7.2f%%  %.4g\n", p->tensors[i].name, 100 * p->tensors[i].share, p->tensors[i].median);
    } else {
        fprintf(f, "\n(no per-tensor columns: train with \"log\": {\"per_tensor\": true} for each tensor's share)\n");
    }
}

/* ---- probe.json ---- */

static cJSON *jnum(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *to_json(const cn_probe *p)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "source", p->source);
    cJSON_AddNumberToObject(j, "rows", (double)p->rows);
    cJSON_AddNumberToObject(j, "finite", (double)p->finite);
    cJSON_AddNumberToObject(j, "nonfinite", (double)p->nonfinite);
    cJSON_AddItemToObject(j, "first_nonfinite_step",
                          p->first_nonfinite_step ? cJSON_CreateNumber((double)p->first_nonfinite_step) : cJSON_CreateNull());
    cJSON *g = cJSON_AddObjectToObject(j, "grad_norm_pre");
    if (g) {
        cJSON_AddNumberToObject(g, "count", (double)p->finite);
        struct { const char *k; double v; } s[] = {{"mean", p->mean}, {"min", p->min}, {"p10", p->p10}, {"p25", p->p25},
            {"median", p->median}, {"p75", p->p75}, {"p90", p->p90}, {"p99", p->p99}, {"max", p->max}};
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) cJSON_AddItemToObject(g, s[i].k, jnum(s[i].v));
    }
    cJSON *sp = cJSON_AddObjectToObject(j, "spikes");
    if (sp) {
        cJSON_AddNumberToObject(sp, "k", CN_PROBE_SPIKE_K);
        cJSON_AddNumberToObject(sp, "window", CN_PROBE_SPIKE_WINDOW);
        cJSON_AddNumberToObject(sp, "min_history", CN_PROBE_SPIKE_MIN_HISTORY);
        cJSON_AddNumberToObject(sp, "count", (double)p->n_spikes);
        cJSON *a = cJSON_AddArrayToObject(sp, "first");
        for (long long i = 0; a && i < p->n_spikes && i < CN_PROBE_MAX_SPIKES_LISTED; i++) {
            cJSON *e = cJSON_CreateObject();
            if (!e) break;
            cJSON_AddNumberToObject(e, "step", (double)p->spikes[i].step);
            cJSON_AddItemToObject(e, "norm", jnum(p->spikes[i].norm));
            cJSON_AddItemToObject(e, "ratio", jnum(p->spikes[i].ratio));
            cJSON_AddItemToArray(a, e);
        }
    }
    cJSON *c = cJSON_AddArrayToObject(j, "candidates");
    for (int k = 0; c && k < CN_PROBE_N_CANDIDATES; k++) {
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        cJSON_AddStringToObject(e, "rule", p->cand[k].name);
        cJSON_AddStringToObject(e, "source", p->cand[k].source);
        cJSON_AddItemToObject(e, "threshold", jnum(p->cand[k].value));
        cJSON_AddItemToObject(e, "clip_rate", jnum(p->cand[k].clip_rate));
        cJSON_AddItemToArray(c, e);
    }
    cJSON_AddNumberToObject(j, "tensor_rows", (double)p->tensor_rows);
    cJSON *t = cJSON_AddArrayToObject(j, "tensors");
    for (int i = 0; t && i < p->n_tensors; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        cJSON_AddStringToObject(e, "name", p->tensors[i].name);
        cJSON_AddItemToObject(e, "share", jnum(p->tensors[i].share));
        cJSON_AddItemToObject(e, "median", jnum(p->tensors[i].median));
        cJSON_AddItemToArray(t, e);
    }
    return j;
}

/* ---- probe.html ---- */

static const char *const cand_colour[CN_PROBE_N_CANDIDATES] = {"#d62728", "#2ca02c", "#9467bd", "#8c564b", "#ff7f0e",
                                                               "#17becf"};

#define SW 760.0
#define SH 300.0
#define ML 64.0
#define MR 16.0
#define MT 16.0
#define MB 44.0

/* x position of log10(v) on a [lo, hi] decade axis */
static double lx(double v, double lo, double hi) { return ML + (log10(v) - lo) / (hi - lo) * (SW - ML - MR); }

static void decade_ticks_x(cn_report_buf *b, double lo, double hi)
{
    int every = (int)ceil((hi - lo) / 10);
    if (every < 1) every = 1;
    for (int d = (int)lo; d <= (int)hi; d += every) {
        double x = ML + ((double)d - lo) / (hi - lo) * (SW - ML - MR);
        cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ccc\"/>", x, MT, x, SH - MB);
        cn_report_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">1e%d</text>\n", x, SH - MB + 16, d);
    }
}

static void histogram_svg(cn_report_buf *b, const cn_probe *p)
{
    double vmin = INFINITY, vmax = 0;
    long long zeros = 0;
    for (long long i = 0; i < p->rows; i++) {
        double v = p->norm[i];
        if (!isfinite(v)) continue;
        if (v <= 0) { zeros++; continue; }
        if (v < vmin) vmin = v;
        if (v > vmax) vmax = v;
    }
    if (!(vmax > 0)) {
        cn_report_puts(b, "<p>Every finite norm is zero: nothing to draw on a log axis.</p>\n");
        return;
    }
    double lo = floor(log10(vmin)), hi = ceil(log10(vmax));
    if (hi <= lo) hi = lo + 1;
    enum { NB = 48 };
    long long cnt[NB] = {0}, cmax = 1;
    for (long long i = 0; i < p->rows; i++) {
        double v = p->norm[i];
        if (!isfinite(v) || v <= 0) continue;
        int k = (int)((log10(v) - lo) / (hi - lo) * NB);
        if (k >= NB) k = NB - 1;
        if (k < 0) k = 0;
        if (++cnt[k] > cmax) cmax = cnt[k];
    }
    cn_report_printf(b, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
                        "width=\"%.0f\" height=\"%.0f\" font-size=\"12\" font-family=\"sans-serif\" role=\"img\" "
                        "aria-label=\"histogram of the pre-clip gradient norm, log x\">\n", SW, SH, SW, SH);
    decade_ticks_x(b, lo, hi);
    double ph = SH - MT - MB, bw = (SW - ML - MR) / NB;
    long long tick = (cmax + 3) / 4;   /* four whole-number ticks; the axis ends at the last */
    cmax = 4 * tick;
    for (int t = 0; t <= 4; t++) {
        double y = SH - MB - ph * t / 4.0;
        cn_report_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%lld</text>\n", ML - 6, y + 4, tick * t);
    }
    for (int k = 0; k < NB; k++) {
        if (!cnt[k]) continue;
        double h = ph * (double)cnt[k] / (double)cmax;
        cn_report_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#1f77b4\"><title>"
                            "%lld steps in [%.3g, %.3g)</title></rect>\n", ML + k * bw + 0.5, SH - MB - h, bw - 1, h,
                         cnt[k], pow(10, lo + (hi - lo) * k / NB), pow(10, lo + (hi - lo) * (k + 1) / NB));
    }
    for (int k = 0; k < CN_PROBE_N_CANDIDATES; k++) {
        double v = p->cand[k].value;
        if (!(v > 0)) continue;
        double x = lx(v, lo, hi);
        cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\" "
                            "stroke-dasharray=\"5 3\"><title>%s = %.4g</title></line>\n", x, MT, x, SH - MB,
                         cand_colour[k], p->cand[k].name, v);
        cn_report_printf(b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\" text-anchor=\"middle\">%s</text>\n", x,
                         MT + 10 + 12 * k, cand_colour[k], p->cand[k].name);
    }
    cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", ML, SH - MB, SW - MR, SH - MB);
    cn_report_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">pre-clip global L2 norm (log scale)%s"
                        "</text>\n", (ML + SW - MR) / 2, SH - 8, zeros ? ", zeros left out" : "");
    cn_report_printf(b, "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">steps</text>\n",
                     (MT + SH - MB) / 2);
    cn_report_puts(b, "</svg>\n");
}

static void over_steps_svg(cn_report_buf *b, const cn_probe *p)
{
    double vmin = INFINITY, vmax = 0, s0 = p->step[0], s1 = p->step[p->rows - 1];
    for (long long i = 0; i < p->rows; i++) {
        double v = p->norm[i];
        if (isfinite(v) && v > 0) {
            if (v < vmin) vmin = v;
            if (v > vmax) vmax = v;
        }
    }
    if (!(vmax > 0)) return;
    if (s1 <= s0) s1 = s0 + 1;
    double lo = floor(log10(vmin)), hi = ceil(log10(vmax));
    if (hi <= lo) hi = lo + 1;
    double pw = SW - ML - MR, ph = SH - MT - MB;
#define XS(s) (ML + ((s) - s0) / (s1 - s0) * pw)
#define YS(v) (SH - MB - (log10(v) - lo) / (hi - lo) * ph)
    cn_report_printf(b, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
                        "width=\"%.0f\" height=\"%.0f\" font-size=\"12\" font-family=\"sans-serif\" role=\"img\" "
                        "aria-label=\"pre-clip gradient norm over steps, log y\">\n", SW, SH, SW, SH);
    for (int d = (int)lo; d <= (int)hi; d += (int)ceil((hi - lo) / 8) > 0 ? (int)ceil((hi - lo) / 8) : 1) {
        double y = SH - MB - ((double)d - lo) / (hi - lo) * ph;
        cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", ML, y, SW - MR, y, ML - 6, y + 4, d);
    }
    for (int t = 0; t <= 4; t++) {
        double s = s0 + (s1 - s0) * t / 4.0;
        cn_report_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", XS(s), SH - MB + 16, s);
    }
    /* the line: buckets of k rows, each drawn at its maximum so that spikes stay visible; a bucket
       with a non-finite or zero norm breaks the line */
    long long k = (p->rows + 799) / 800;
    if (k < 1) k = 1;
    cn_report_puts(b, "<path fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.2\" d=\"");
    int pen = 0;
    for (long long i = 0; i < p->rows; i += k) {
        long long e = i + k < p->rows ? i + k : p->rows;
        double mx = 0, at = p->step[i];
        int gap = 0;
        for (long long j = i; j < e; j++) {
            double v = p->norm[j];
            if (!isfinite(v) || v <= 0) { gap = 1; break; }
            if (v > mx) { mx = v; at = p->step[j]; }
        }
        if (gap) { pen = 0; continue; }
        cn_report_printf(b, "%s%.1f %.1f ", pen ? "L" : "M", XS(at), YS(mx));
        pen = 1;
    }
    cn_report_puts(b, "\"/>\n");
    for (long long i = 0; i < p->rows; i++)
        if (!isfinite(p->norm[i]))
            cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\"><title>step %.0f: "
                                "non-finite</title></line>\n", XS(p->step[i]), MT, XS(p->step[i]), MT + 8, p->step[i]);
    for (long long i = 0; i < p->n_spikes && i < CN_PROBE_MAX_SPIKES_LISTED; i++)
        cn_report_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"none\" stroke=\"#d62728\"><title>step %lld: "
                            "%.4g (%.3gx the running median)</title></circle>\n", XS((double)p->spikes[i].step),
                         YS(p->spikes[i].norm), p->spikes[i].step, p->spikes[i].norm, p->spikes[i].ratio);
    for (int c = 0; c < 2; c++) {
        double v = p->cand[c].value;
        if (!(v > 0)) continue;
        cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"5 3\">"
                            "<title>%s = %.4g</title></line>\n", ML, YS(v), SW - MR, YS(v), cand_colour[c], p->cand[c].name, v);
    }
    cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", ML, SH - MB, SW - MR, SH - MB);
    cn_report_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">optimizer step</text>\n", (ML + SW - MR) / 2, SH - 8);
    cn_report_printf(b, "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">norm (log scale)</text>\n",
                     (MT + SH - MB) / 2);
    cn_report_puts(b, "</svg>\n");
#undef XS
#undef YS
}

static const char *const probe_css =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:820px;margin:24px auto;"
    "padding:0 12px;color:#222;line-height:1.45}h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.5em}\n"
    "table{border-collapse:collapse;font-size:.9em;margin:10px 0}th,td{border:1px solid #ddd;padding:3px 7px;"
    "text-align:right;white-space:nowrap}th{background:#f5f5f5}td.l,th.l{text-align:left;white-space:normal}\n"
    "td.k,th.k{text-align:left}td.l{min-width:12em}\n"
    ".scroll{overflow-x:auto}svg.chart{max-width:100%;height:auto;border:1px solid #eee}.meta{color:#666}\n";

static void html_doc(cn_report_buf *b, const cn_probe *p, const char *title)
{
    cn_report_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Gradient-norm probe: ");
    cn_report_html(b, title);
    cn_report_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>Gradient-norm probe: ", probe_css);
    cn_report_html(b, title);
    cn_report_puts(b, "</h1>\n<p class=\"meta\">From ");
    cn_report_html(b, p->source);
    cn_report_printf(b, ", written by clipnn %s. %lld logged steps, %lld with a finite pre-clip norm, %lld non-finite",
                     CN_VERSION, p->rows, p->finite, p->nonfinite);
    if (p->first_nonfinite_step) cn_report_printf(b, " (the first at step %lld)", p->first_nonfinite_step);
    cn_report_puts(b, ".</p>\n<h2>Candidate thresholds</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th class=\"k\">rule"
                      "</th><th>clip.max_norm</th><th>would clip</th><th class=\"l\">source</th></tr></thead><tbody>\n");
    for (int k = 0; k < CN_PROBE_N_CANDIDATES; k++) {
        cn_report_printf(b, "<tr><td class=\"k\"><span style=\"color:%s\">&#9632;</span> %s</td><td>%.4g</td><td>%.1f%%"
                            "</td><td class=\"l\">", cand_colour[k], p->cand[k].name, p->cand[k].value,
                         100 * p->cand[k].clip_rate);
        cn_report_html(b, p->cand[k].source);
        cn_report_puts(b, "</td></tr>\n");
    }
    cn_report_puts(b, "</tbody></table></div>\n<p>\"Would clip\" is the share of the probe's finite steps whose norm "
                      "is above the threshold: norm clipping scales exactly those steps. The probe trained without "
                      "clipping, so a run clipped at the threshold follows another path; the rates are a guide, and a "
                      "sweep (<code>clipnn compare --variant ...</code>) around them is the test.</p>\n");
    cn_report_puts(b, "<h2>Distribution of the pre-clip norm</h2>\n<div class=\"scroll\"><table>\n<thead><tr>");
    const char *hd[] = {"steps", "mean", "min", "p10", "p25", "median", "p75", "p90", "p99", "max"};
    for (int i = 0; i < 10; i++) cn_report_printf(b, "<th>%s</th>", hd[i]);
    cn_report_printf(b, "</tr></thead><tbody><tr><td>%lld</td>", p->finite);
    double v[] = {p->mean, p->min, p->p10, p->p25, p->median, p->p75, p->p90, p->p99, p->max};
    for (int i = 0; i < 9; i++) cn_report_printf(b, "<td>%.4g</td>", v[i]);
    cn_report_puts(b, "</tr></tbody></table></div>\n<figure>\n");
    histogram_svg(b, p);
    cn_report_puts(b, "<figcaption>Histogram of the finite pre-clip global L2 norms on a log axis, with the "
                      "candidate thresholds as dashed lines.</figcaption>\n</figure>\n<h2>Over the steps</h2>\n<figure>\n");
    over_steps_svg(b, p);
    cn_report_printf(b, "<figcaption>The norm at each logged step (log axis; at most 800 points, each the maximum of "
                        "its bucket of steps). Circles: spikes, a norm above %g&#215; the median of the previous %d "
                        "finite norms. Red ticks at the top: non-finite steps (skipped). Dashed: the mean and the "
                        "median.</figcaption>\n</figure>\n", CN_PROBE_SPIKE_K, CN_PROBE_SPIKE_WINDOW);
    cn_report_printf(b, "<p>%lld spike%s.", p->n_spikes, p->n_spikes == 1 ? "" : "s");
    for (long long i = 0; i < p->n_spikes && i < 10; i++)
        cn_report_printf(b, "%s step %lld (%.4g, %.3g&#215;)", i ? "," : "", p->spikes[i].step, p->spikes[i].norm,
                         p->spikes[i].ratio);
    cn_report_puts(b, p->n_spikes > 10 ? " ... (all in probe.json)</p>\n" : "</p>\n");
    if (p->n_tensors) {
        cn_report_printf(b, "<h2>Per tensor</h2>\n<p>Each tensor's share of the squared global norm, summed over the "
                            "%lld steps where every tensor's norm is finite. A tensor with most of the norm is the one "
                            "a global threshold mostly acts on; <code>norm_per_tensor</code> or <code>agc</code> treat "
                            "tensors apart.</p>\n<div class=\"scroll\"><table>\n<thead><tr><th class=\"l\">tensor</th>"
                            "<th>share</th><th>median norm</th></tr></thead><tbody>\n", p->tensor_rows);
        for (int i = 0; i < p->n_tensors; i++) {
            cn_report_puts(b, "<tr><td class=\"l\">");
            cn_report_html(b, p->tensors[i].name);
            cn_report_printf(b, "</td><td>%.2f%%</td><td>%.4g</td></tr>\n", 100 * p->tensors[i].share, p->tensors[i].median);
        }
        cn_report_puts(b, "</tbody></table></div>\n");
    }
    cn_report_puts(b, "<p class=\"meta\">Numbers: <a href=\"probe.json\">probe.json</a>.</p>\n</body>\n</html>\n");
}

cn_status cn_probe_write(const cn_probe *p, const char *out_dir, const char *title)
{
    if (!title) title = "clipnn";
    cn_status st = cn_mkdirs(out_dir);
    if (st) return st;
    char path[4200];
    cJSON *j = to_json(p);
    if (!j) return cn_error(CN_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/probe.json", out_dir);
    st = cn_write_json_atomic(path, j);
    cJSON_Delete(j);
    if (st) return st;
    cn_report_buf b = {0};
    html_doc(&b, p, title);
    if (b.oom) st = cn_error(CN_ERR_NOMEM, "out of memory writing probe.html");
    snprintf(path, sizeof path, "%s/probe.html", out_dir);
    if (!st) st = cn_write_file_atomic(path, b.p ? b.p : "", b.len);
    cn_report_buf_free(&b);
    return st;
}
