/* The report's "paired against the baseline" section (markdown and HTML).
 *
 * Runs of different variants with the same seed share data order and initialisation, so each
 * variant is compared with the baseline seed by seed. Which runs count:
 * - a run counts when it ran to its end: finished or diverged (not interrupted, failed or not run);
 * - divergence: every counted run of the variant and of the baseline, diverged or not, in a 2x2
 *   table (Fisher's exact test: the runs are not paired there);
 * - loss: the seeds where both runs were counted, neither diverged and both have a finite test loss (the final training
 *   loss instead when no run of the report has a test loss); d = variant - baseline, so d < 0 is a
 *   win for the variant. A seed where either run diverged (its loss, even when finite, is garbage) or
 *   has no finite loss is left out of the loss statistics; the divergence columns carry it. A run that blew up (a huge but finite loss) is paired
 *   with its loss: it is a loss for its variant, and the rank tests and the median are not swamped by it.
 * The statistics are src/report/stats.h's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "report/internal.h"
#include "report/stats.h"

/* Counted (see the file comment): finished or diverged, as the table's counts (data.c). */
static int counted(const cn_report_rundata *d) { return cn_report_counts(d, 0); }

static const char *variant_of(const cn_report_rundata *d) { return d->in && d->in->variant ? d->in->variant : ""; }

static int has_variant(const cn_report_rundata *rd, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(variant_of(&rd[i]), name)) return 1;
    return 0;
}

/* The loss the section compares: test loss when any counted run has one, else the final loss. */
static int use_test_loss(const cn_report_rundata *rd, int n)
{
    for (int i = 0; i < n; i++)
        if (counted(&rd[i]) && rd[i].test_loss.present && isfinite(rd[i].test_loss.v)) return 1;
    return 0;
}

static double loss_of(const cn_report_rundata *d, int test)
{
    cn_report_val v = test ? d->test_loss : d->final_loss;
    return v.present ? v.v : NAN;
}

typedef struct {
    const char *name;
    int runs, diverged;               /* counted runs of the variant */
    int base_runs, base_diverged;
    int left_out;                     /* seeds of both with no finite loss pair */
    int only_variant_diverged, only_base_diverged;
    int ok;                           /* stats computed (at least one pair) */
    cn_paired_stats s;
    double fisher_p;
} row;

/* The rows: one per variant other than the baseline, in order of first appearance. */
static row *build_rows(const cn_report_rundata *rd, int n, const char *base, int test, int *n_rows, int *oom)
{
    row *rows = cn_calloc((size_t)(n ? n : 1), sizeof *rows);
    double *v = cn_malloc((size_t)(n ? n : 1) * sizeof *v), *b = cn_malloc((size_t)(n ? n : 1) * sizeof *b),
           *work = cn_malloc((size_t)(n ? n : 1) * sizeof *work);
    *n_rows = 0;
    if (!rows || !v || !b || !work) {
        *oom = 1;
        cn_free(rows);
        rows = NULL;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const char *name = variant_of(&rd[i]);
        if (!strcmp(name, base)) continue;
        int seen = 0;
        for (int k = 0; k < *n_rows && !seen; k++) seen = !strcmp(rows[k].name, name);
        if (seen) continue;
        row *r = &rows[(*n_rows)++];
        r->name = name;
        int m = 0;
        for (int j = 0; j < n; j++) {
            const cn_report_rundata *dj = &rd[j];
            if (!counted(dj)) continue;
            if (!strcmp(variant_of(dj), base)) {
                r->base_runs++;
                r->base_diverged += dj->diverged;
                continue;
            }
            if (strcmp(variant_of(dj), name)) continue;
            r->runs++;
            r->diverged += dj->diverged;
            /* its baseline partner: the first counted baseline run with the same seed */
            const cn_report_rundata *bk = NULL;
            for (int k = 0; k < n && !bk; k++)
                if (counted(&rd[k]) && !strcmp(variant_of(&rd[k]), base) && rd[k].in->seed == dj->in->seed) bk = &rd[k];
            if (!bk) continue;
            if (dj->diverged && !bk->diverged) r->only_variant_diverged++;
            if (bk->diverged && !dj->diverged) r->only_base_diverged++;
            double lv = loss_of(dj, test), lb = loss_of(bk, test);
            if (isfinite(lv) && isfinite(lb) && !dj->diverged && !bk->diverged) {   /* a diverged run's loss,
                                                                                 even finite, is garbage */
                v[m] = lv;
                b[m] = lb;
                m++;
            } else {
                r->left_out++;
            }
        }
        r->fisher_p = cn_stats_fisher_exact(r->diverged, r->runs - r->diverged, r->base_diverged,
                                            r->base_runs - r->base_diverged);
        if (m > 0) {
            cn_status st = cn_stats_paired(v, b, m, work, &r->s);
            if (st == CN_ERR_NOMEM) *oom = 1;
            r->ok = st == CN_OK;
            cn_error_clear();
        }
    }
out:
    cn_free(v);
    cn_free(b);
    cn_free(work);
    return rows;
}

enum { PC_VARIANT, PC_PAIRS, PC_WLT, PC_MEDIAN, PC_MEAN, PC_WILCOXON, PC_SIGN, PC_DIVERGED, PC_FISHER, PC_N };

static const char *const headers[PC_N] = {"variant", "seeds paired", "wins / losses / ties", "median diff",
                                          "mean diff [95% CI]", "Wilcoxon p", "sign test p",
                                          "diverged (variant vs baseline)", "Fisher p"};

static void fmt_p(char *out, size_t n, double p)
{
    if (isnan(p)) snprintf(out, n, "n/a");
    else if (p < 1e-4) snprintf(out, n, "%.1e", p);
    else snprintf(out, n, "%.3g", p);
}

static void cells(const row *r, char c[PC_N][96])
{
    c[PC_VARIANT][0] = '\0';
    snprintf(c[PC_PAIRS], 96, "%d", r->ok ? r->s.n : 0);
    if (r->left_out) {
        size_t l = strlen(c[PC_PAIRS]);
        snprintf(c[PC_PAIRS] + l, 96 - l, " (%d left out)", r->left_out);
    }
    if (r->ok) {
        snprintf(c[PC_WLT], 96, "%d / %d / %d", r->s.wins, r->s.losses, r->s.ties);
        snprintf(c[PC_MEDIAN], 96, "%+.4g", r->s.median_diff);
        snprintf(c[PC_MEAN], 96, "%+.4g [%+.4g, %+.4g]", r->s.mean_diff, r->s.boot_lo, r->s.boot_hi);
        char p[32];
        fmt_p(p, sizeof p, r->s.wilcoxon_p);
        snprintf(c[PC_WILCOXON], 96, "%s%s", p, isnan(r->s.wilcoxon_p) ? "" : r->s.wilcoxon_exact ? " (exact)" : " (normal approx.)");
        fmt_p(c[PC_SIGN], 96, r->s.sign_p);
    } else {
        for (int k = PC_WLT; k <= PC_SIGN; k++) snprintf(c[k], 96, "n/a");
    }
    snprintf(c[PC_DIVERGED], 96, "%d/%d vs %d/%d", r->diverged, r->runs, r->base_diverged, r->base_runs);
    fmt_p(c[PC_FISHER], 96, r->fisher_p);
}

/* 1 when the runs hold at least two variants (else there is nothing to pair). */
static int several_variants(const cn_report_rundata *rd, int n)
{
    for (int i = 1; i < n; i++)
        if (strcmp(variant_of(&rd[i]), variant_of(&rd[0]))) return 1;
    return 0;
}

static const char *pick_baseline(const cn_report_rundata *rd, int n, const char *want)
{
    if (want) return want;
    if (has_variant(rd, n, "noclip")) return "noclip";
    return n ? variant_of(&rd[0]) : "";
}

static void methods(cn_report_buf *b, int test)
{
    cn_report_printf(b,
        "Runs of different variants with the same seed share data order and initialisation, so each variant is "
        "compared with the baseline seed by seed: d = %s of the variant minus that of the baseline, so a negative "
        "difference (a win) means the variant did better. Only runs that finished count (interrupted and failed "
        "runs do not); a seed where either run diverged or has no finite %s is left out of the loss columns and "
        "shows in the divergence columns. Methods: the Wilcoxon signed-rank test (two-sided; zero differences "
        "dropped; the exact null distribution for up to %d differences with no zero and no tied |d|, else the "
        "normal approximation with the tie correction and no continuity correction); the sign test (two-sided "
        "exact binomial test of wins against losses, ties dropped); a percentile bootstrap 95%% interval of the "
        "mean difference (%d resamples of the seeds with replacement, generator seed %llu, so the interval is the "
        "same on every rebuild); Fisher's exact test (two-sided) on the divergence counts of all finished runs. "
        "The p-values are per comparison, not corrected for testing several variants.",
        test ? "the test loss" : "the final training loss", test ? "test loss" : "final loss",
        CN_STATS_WILCOXON_EXACT_MAX, CN_STATS_BOOTSTRAP_RESAMPLES,
        (unsigned long long)CN_STATS_BOOTSTRAP_SEED);
}

void cn_report_paired_md(cn_report_buf *b, const cn_report_rundata *rd, int n, const char *want_baseline)
{
    if (!several_variants(rd, n)) return;
    const char *base = pick_baseline(rd, n, want_baseline);
    cn_report_puts(b, "\n## Paired against the baseline: ");
    cn_report_md(b, base);
    cn_report_puts(b, "\n\n");
    if (!has_variant(rd, n, base)) {
        cn_report_puts(b, "No variant is named ");
        cn_report_md(b, base);
        cn_report_puts(b, ": no paired comparison.\n");
        return;
    }
    int test = use_test_loss(rd, n), nr = 0, oom = 0;
    row *rows = build_rows(rd, n, base, test, &nr, &oom);
    if (oom) b->oom = 1;
    if (!rows) return;
    if (nr == 0) {
        cn_report_puts(b, "Only the baseline ran: no paired comparison.\n");
        cn_free(rows);
        return;
    }
    for (int k = 0; k < PC_N; k++) {
        cn_report_puts(b, "| ");
        cn_report_md(b, headers[k]);
        cn_report_puts(b, " ");
    }
    cn_report_puts(b, "|\n|---");
    for (int k = 1; k < PC_N; k++) cn_report_puts(b, "|---:");
    cn_report_puts(b, "|\n");
    char c[PC_N][96];
    for (int i = 0; i < nr; i++) {
        cells(&rows[i], c);
        for (int k = 0; k < PC_N; k++) {
            cn_report_puts(b, "| ");
            cn_report_md(b, k == PC_VARIANT ? rows[i].name : c[k]);
            cn_report_puts(b, " ");
        }
        cn_report_puts(b, "|\n");
    }
    cn_report_puts(b, "\n");
    methods(b, test);
    cn_report_puts(b, "\n");
    cn_free(rows);
}

void cn_report_paired_html(cn_report_buf *b, const cn_report_rundata *rd, int n, const char *want_baseline)
{
    if (!several_variants(rd, n)) return;
    const char *base = pick_baseline(rd, n, want_baseline);
    cn_report_puts(b, "<h2 id=\"paired\">Paired against the baseline: ");
    cn_report_html(b, base);
    cn_report_puts(b, "</h2>\n");
    if (!has_variant(rd, n, base)) {
        cn_report_puts(b, "<p>No variant is named ");
        cn_report_html(b, base);
        cn_report_puts(b, ": no paired comparison.</p>\n");
        return;
    }
    int test = use_test_loss(rd, n), nr = 0, oom = 0;
    row *rows = build_rows(rd, n, base, test, &nr, &oom);
    if (oom) b->oom = 1;
    if (!rows) return;
    if (nr == 0) {
        cn_report_puts(b, "<p>Only the baseline ran: no paired comparison.</p>\n");
        cn_free(rows);
        return;
    }
    cn_report_puts(b, "<div class=\"scroll\"><table class=\"paired\">\n<thead><tr>");
    for (int k = 0; k < PC_N; k++) {
        cn_report_puts(b, "<th>");
        cn_report_html(b, headers[k]);
        cn_report_puts(b, "</th>");
    }
    cn_report_puts(b, "</tr></thead>\n<tbody>\n");
    char c[PC_N][96];
    for (int i = 0; i < nr; i++) {
        cells(&rows[i], c);
        cn_report_puts(b, "<tr>");
        for (int k = 0; k < PC_N; k++) {
            cn_report_puts(b, k == PC_VARIANT ? "<td class=\"variant\">" : "<td>");
            cn_report_html(b, k == PC_VARIANT ? rows[i].name : c[k]);
            cn_report_puts(b, "</td>");
        }
        cn_report_puts(b, "</tr>\n");
    }
    cn_report_puts(b, "</tbody></table></div>\n<p class=\"howto\">");
    cn_report_buf t = {0};
    methods(&t, test);
    if (t.oom) b->oom = 1;
    cn_report_html(b, t.p ? t.p : "");
    cn_report_buf_free(&t);
    cn_report_puts(b, "</p>\n");
    cn_free(rows);
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

cJSON *cn_report_paired_json(const cn_report_rundata *rd, int n, const char *want_baseline, int *oom)
{
    *oom = 0;
    if (!several_variants(rd, n)) return cJSON_CreateNull();
    const char *base = pick_baseline(rd, n, want_baseline);
    if (!has_variant(rd, n, base)) return cJSON_CreateNull();
    int test = use_test_loss(rd, n), nr = 0;
    row *rows = build_rows(rd, n, base, test, &nr, oom);
    cJSON *j = rows ? cJSON_CreateObject() : NULL;
    cJSON *vs = j ? cJSON_AddArrayToObject(j, "variants") : NULL;
    if (!vs) goto fail;
    cJSON_AddStringToObject(j, "baseline", base);
    cJSON_AddStringToObject(j, "loss", test ? "test_loss" : "final_loss");
    cJSON_AddNumberToObject(j, "bootstrap_resamples", CN_STATS_BOOTSTRAP_RESAMPLES);
    cJSON_AddNumberToObject(j, "bootstrap_seed", (double)CN_STATS_BOOTSTRAP_SEED);
    for (int i = 0; i < nr; i++) {
        const row *r = &rows[i];
        cJSON *v = cJSON_CreateObject();
        if (!v || !cJSON_AddItemToArray(vs, v)) { cJSON_Delete(v); goto fail; }
        cJSON_AddStringToObject(v, "variant", r->name);
        cJSON_AddNumberToObject(v, "pairs", r->ok ? r->s.n : 0);
        cJSON_AddNumberToObject(v, "left_out", r->left_out);
        cJSON_AddNumberToObject(v, "wins", r->ok ? r->s.wins : 0);
        cJSON_AddNumberToObject(v, "losses", r->ok ? r->s.losses : 0);
        cJSON_AddNumberToObject(v, "ties", r->ok ? r->s.ties : 0);
        cJSON_AddItemToObject(v, "median_diff", num_or_null(r->ok ? r->s.median_diff : NAN));
        cJSON_AddItemToObject(v, "mean_diff", num_or_null(r->ok ? r->s.mean_diff : NAN));
        cJSON_AddItemToObject(v, "mean_diff_ci95", r->ok ? cJSON_CreateDoubleArray((double[]){r->s.boot_lo, r->s.boot_hi}, 2)
                                                      : cJSON_CreateNull());
        cJSON_AddItemToObject(v, "wilcoxon_stat", num_or_null(r->ok ? r->s.wilcoxon_stat : NAN));
        cJSON_AddItemToObject(v, "wilcoxon_p", num_or_null(r->ok ? r->s.wilcoxon_p : NAN));
        cJSON_AddBoolToObject(v, "wilcoxon_exact", r->ok && r->s.wilcoxon_exact);
        cJSON_AddItemToObject(v, "sign_p", num_or_null(r->ok ? r->s.sign_p : NAN));
        cJSON_AddNumberToObject(v, "runs", r->runs);
        cJSON_AddNumberToObject(v, "diverged", r->diverged);
        cJSON_AddNumberToObject(v, "baseline_runs", r->base_runs);
        cJSON_AddNumberToObject(v, "baseline_diverged", r->base_diverged);
        cJSON_AddItemToObject(v, "fisher_p", num_or_null(r->fisher_p));
    }
    cn_free(rows);
    return j;
fail:
    *oom = 1;
    cJSON_Delete(j);
    cn_free(rows);
    return NULL;
}
