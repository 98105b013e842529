/* Suite "paired": the report's "paired against the baseline" section. Runs are generated in a temporary
 * directory (summary.json, metrics.csv, eval.csv); the section of report.md is parsed back and its
 * numbers compared with what src/report/stats.c computes for the same runs. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "report/report.h"
#include "report/stats.h"
#include "testutil.h"

static char tmp[256], bin[2048];

static void setup(void)
{
    snprintf(bin, sizeof bin, "%s", tu_clipnn_bin());
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-paired");
}

static void teardown(void) { tu_remove_tree(tmp); }

static void write_file(const char *dir, const char *name, const char *fmt, ...)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

/* A finished run: test_loss NAN = diverged (null test loss, diverged at step 3). */
static void make_run(char *dir, size_t n, const char *variant, int seed, double test_loss)
{
    snprintf(dir, n, "%s/%s-s%d", tmp, variant, seed);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    int div = isnan(test_loss);
    char tl[64];
    if (div) snprintf(tl, sizeof tl, "null");
    else snprintf(tl, sizeof tl, "%.17g", test_loss);
    write_file(dir, "summary.json",
               "{\"name\": \"gen\", \"steps\": %d, \"final_loss\": %s, \"test_loss\": %s, \"test_metric\": %s, "
               "\"test_metric_name\": \"mae\", \"diverged\": %s, \"diverged_at_step\": %s, \"clip_frac\": 0, "
               "\"max_grad_norm_pre\": 1, \"skipped_steps\": 0, \"nonfinite_steps\": %d, \"wall_s\": 0.1, "
               "\"steps_per_s\": 30, \"stopped_early\": %s}\n",
               div ? 3 : 4, div ? "null" : "0.5", tl, div ? "null" : "0.1", div ? "true" : "false", div ? "3" : "null",
               div, div ? "true" : "false");
    write_file(dir, "metrics.csv", "step,epoch,loss,lr,grad_norm_pre,grad_norm_post,clip_coef,clip_threshold,clipped,"
               "grad_max_abs,nonfinite,skipped,time_ms\n1,1,0.5,0.1,1,1,1,nan,0,1,0,0,0.1\n");
    write_file(dir, "eval.csv", div ? "step,test_loss,test_metric\n" : "step,test_loss,test_metric\n4,%s,0.1\n", tl);
}

#define MAXR 32
typedef struct {
    cn_report_run r[MAXR];
    char dirs[MAXR][512];
    int n;
} runset;

static void add(runset *s, const char *variant, int seed, double loss, int exit_code)
{
    ck_assert_int_lt(s->n, MAXR);
    make_run(s->dirs[s->n], sizeof s->dirs[s->n], variant, seed, loss);
    s->r[s->n] = (cn_report_run){variant, seed, s->dirs[s->n], exit_code, NULL};
    s->n++;
}

/* noclip diverges on seeds 1-3; norm never; value's seed 6 was interrupted (does not count). */
static const double noclip_loss[6] = {NAN, NAN, NAN, 0.031, 0.0275, 0.042};
static const double norm_loss[6] = {0.012, 0.0101, 0.0153, 0.0118, 0.029, 0.0134};
static const double value_loss[6] = {0.014, 0.0108, 0.0149, 0.0127, 0.0281, 0.5};

static void fixture(runset *s)
{
    memset(s, 0, sizeof *s);
    for (int k = 0; k < 6; k++) add(s, "value", k + 1, value_loss[k], k == 5 ? 130 : 0);
    for (int k = 0; k < 6; k++) add(s, "noclip", k + 1, noclip_loss[k], isnan(noclip_loss[k]) ? 3 : 0);
    for (int k = 0; k < 6; k++) add(s, "norm", k + 1, norm_loss[k], 0);
}

static char *report_md(const runset *s, const char *baseline, char **html)
{
    char out[512];
    snprintf(out, sizeof out, "%s/report", tmp);
    cn_report_opts o = {"paired fixture", baseline, NULL};
    ck_assert_ok(cn_report_write_opts(out, s->r, s->n, &o));
    char path[600];
    snprintf(path, sizeof path, "%s/report.md", out);
    char *md = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(md);
    if (html) {
        snprintf(path, sizeof path, "%s/report.html", out);
        *html = tu_slurp(path, NULL);
        ck_assert_ptr_nonnull(*html);
    }
    return md;
}

/* The cells of the paired table's row for `variant` (markdown escapes removed); returns the count. */
static int paired_row(const char *md, const char *variant, char cells[12][128])
{
    const char *sec = strstr(md, "## Paired against the baseline");
    ck_assert_ptr_nonnull(sec);
    char key[96];
    snprintf(key, sizeof key, "\n| %s |", variant);
    const char *row = strstr(sec, key);
    ck_assert_msg(row != NULL, "no paired row for %s", variant);
    row += 3;
    int n = 0;
    const char *p = row;
    while (*p && *p != '\n' && n < 12) {
        const char *e = strchr(p, '|');
        if (!e || e > strchr(p, '\n')) break;
        size_t k = 0;
        for (const char *q = p; q < e; q++)
            if (*q != '\\' && k + 1 < 128) cells[n][k++] = *q;
        cells[n][k] = 0;
        /* trim */
        char *c = cells[n];
        while (*c == ' ') memmove(c, c + 1, strlen(c));
        size_t l = strlen(c);
        while (l && c[l - 1] == ' ') c[--l] = 0;
        n++;
        p = e + 1;
    }
    return n;
}

/* A printed number against the value: differences are printed with 4 significant digits (relative
 * error <= 5e-4), p-values with 3 (5e-3). */
#define ck_printed(text, want, rel) do { \
    double w_ = (want), g_ = strtod((text), NULL); \
    ck_assert_msg(fabs(g_ - w_) <= (rel) * fabs(w_) + 1e-12, "printed %s, expected %.6g", (text), w_); \
} while (0)

static void check_row(const char *md, const char *variant, const double *vloss, const double *bloss,
                      int n_counted_v, int n_counted_b, int div_v, int div_b, int left_out)
{
    char c[12][128];
    int nc = paired_row(md, variant, c);
    ck_assert_int_eq(nc, 9);
    /* the pairs the section should use: both finite, both counted */
    double v[8], b[8], work[8];
    int m = 0;
    for (int k = 0; k < 6; k++)
        if (isfinite(vloss[k]) && isfinite(bloss[k]) && k < n_counted_v && k < n_counted_b) {
            v[m] = vloss[k];
            b[m] = bloss[k];
            m++;
        }
    cn_paired_stats s;
    ck_assert_ok(cn_stats_paired(v, b, m, work, &s));
    char want[128];
    snprintf(want, sizeof want, "%d (%d left out)", m, left_out);
    ck_assert_str_eq(c[1], left_out ? want : (snprintf(want, sizeof want, "%d", m), want));
    snprintf(want, sizeof want, "%d / %d / %d", s.wins, s.losses, s.ties);
    ck_assert_str_eq(c[2], want);
    ck_printed(c[3], s.median_diff, 5e-4);
    double mean, lo, hi;
    ck_assert_int_eq(sscanf(c[4], "%lf [%lf, %lf]", &mean, &lo, &hi), 3);
    ck_assert_msg(fabs(mean - s.mean_diff) <= 5e-4 * fabs(s.mean_diff), "mean %g vs %g", mean, s.mean_diff);
    ck_assert_msg(fabs(lo - s.boot_lo) <= 5e-4 * fabs(s.boot_lo), "lo %g vs %g", lo, s.boot_lo);
    ck_assert_msg(fabs(hi - s.boot_hi) <= 5e-4 * fabs(s.boot_hi), "hi %g vs %g", hi, s.boot_hi);
    ck_printed(c[5], s.wilcoxon_p, 5e-3);
    ck_assert_ptr_nonnull(strstr(c[5], s.wilcoxon_exact ? "(exact)" : "(normal approx.)"));
    ck_printed(c[6], s.sign_p, 5e-3);
    snprintf(want, sizeof want, "%d/%d vs %d/%d", div_v, n_counted_v, div_b, n_counted_b);
    ck_assert_str_eq(c[7], want);
    ck_printed(c[8], cn_stats_fisher_exact(div_v, n_counted_v - div_v, div_b, n_counted_b - div_b), 5e-3);
}

START_TEST(default_baseline_is_noclip_and_numbers_are_the_stats_modules)
{
    runset s;
    fixture(&s);
    char *html = NULL;
    char *md = report_md(&s, NULL, &html);
    ck_assert_ptr_nonnull(strstr(md, "## Paired against the baseline: noclip\n"));
    /* norm: 6 counted runs, 0 diverged, against noclip 6 counted, 3 diverged; 3 seeds left out */
    check_row(md, "norm", norm_loss, noclip_loss, 6, 6, 0, 3, 3);
    /* value: seed 6 was interrupted: 5 counted; seeds 1-3 left out (noclip diverged) */
    check_row(md, "value", value_loss, noclip_loss, 5, 6, 0, 3, 3);
    const char *sec = strstr(md, "## Paired"), *end = strstr(sec, "\nCharts"), *nc = strstr(sec, "\n| noclip |");
    ck_assert_ptr_nonnull(end);
    ck_assert_msg(!nc || nc > end, "the baseline has a row of its own");
    /* the methods are named */
    const char *methods[] = {"Wilcoxon signed-rank", "sign test", "bootstrap", "10000 resamples", "Fisher's exact test"};
    for (int i = 0; i < 5; i++) ck_assert_msg(strstr(md, methods[i]) != NULL, "md lacks %s", methods[i]);
    /* the HTML page has the same section */
    ck_assert_ptr_nonnull(strstr(html, "<h2 id=\"paired\">Paired against the baseline: noclip</h2>"));
    ck_assert_ptr_nonnull(strstr(html, "<td class=\"variant\">norm</td><td>3 (3 left out)</td>"));
    ck_assert_ptr_nonnull(strstr(html, "Fisher&#39;s exact test"));
    free(md);
    free(html);
}
END_TEST

#define J_ITEM_CI(v) cJSON_GetObjectItemCaseSensitive(v, "mean_diff_ci95")

/* report.json carries the section's numbers unrounded. */
START_TEST(report_json_carries_the_paired_numbers)
{
    runset s;
    fixture(&s);
    free(report_md(&s, NULL, NULL));
    char path[600];
    snprintf(path, sizeof path, "%s/report/report.json", tmp);
    char *text = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(text);
    cJSON *j = cJSON_Parse(text);
    free(text);
    ck_assert_ptr_nonnull(j);
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(j, "paired");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(pj, "baseline")->valuestring, "noclip");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(pj, "loss")->valuestring, "test_loss");
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pj, "variants"), 1);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(v, "variant")->valuestring, "norm");
    double a[3] = {norm_loss[3], norm_loss[4], norm_loss[5]}, b[3] = {noclip_loss[3], noclip_loss[4], noclip_loss[5]}, w[3];
    cn_paired_stats st;
    ck_assert_ok(cn_stats_paired(a, b, 3, w, &st));
#define J(k) cJSON_GetObjectItemCaseSensitive(v, k)->valuedouble
    ck_assert_int_eq((int)J("pairs"), 3);
    ck_assert_int_eq((int)J("left_out"), 3);
    ck_assert_int_eq((int)J("wins"), st.wins);
    ck_assert_near(J("mean_diff"), st.mean_diff, 1e-15);
    ck_assert_near(J("median_diff"), st.median_diff, 1e-15);
    ck_assert_near(cJSON_GetArrayItem(J_ITEM_CI(v), 0)->valuedouble, st.boot_lo, 1e-15);
    ck_assert_near(cJSON_GetArrayItem(J_ITEM_CI(v), 1)->valuedouble, st.boot_hi, 1e-15);
    ck_assert_near(J("wilcoxon_p"), st.wilcoxon_p, 1e-15);
    ck_assert_near(J("sign_p"), st.sign_p, 1e-15);
    ck_assert_int_eq((int)J("diverged"), 0);
    ck_assert_int_eq((int)J("baseline_diverged"), 3);
    ck_assert_near(J("fisher_p"), cn_stats_fisher_exact(0, 6, 3, 3), 1e-15);
#undef J
    cJSON_Delete(j);
}
END_TEST

START_TEST(named_baseline)
{
    runset s;
    fixture(&s);
    char *md = report_md(&s, "norm", NULL);
    ck_assert_ptr_nonnull(strstr(md, "## Paired against the baseline: norm\n"));
    check_row(md, "noclip", noclip_loss, norm_loss, 6, 6, 3, 0, 3);
    check_row(md, "value", value_loss, norm_loss, 5, 6, 0, 0, 0);
    free(md);
}
END_TEST

START_TEST(without_noclip_the_first_variant_is_the_baseline)
{
    runset s;
    memset(&s, 0, sizeof s);
    for (int k = 0; k < 6; k++) add(&s, "value", k + 1, value_loss[k], 0);
    for (int k = 0; k < 6; k++) add(&s, "norm", k + 1, norm_loss[k], 0);
    char *md = report_md(&s, NULL, NULL);
    ck_assert_ptr_nonnull(strstr(md, "## Paired against the baseline: value\n"));
    check_row(md, "norm", norm_loss, value_loss, 6, 6, 0, 0, 0);
    free(md);
}
END_TEST

START_TEST(unknown_baseline_and_single_variant)
{
    runset s;
    fixture(&s);
    char *md = report_md(&s, "nosuch", NULL);
    ck_assert_ptr_nonnull(strstr(md, "No variant is named nosuch"));
    free(md);
    runset one;
    memset(&one, 0, sizeof one);
    snprintf(tmp + strlen(tmp), sizeof tmp - strlen(tmp), "/one");
    ck_assert_int_eq(mkdir(tmp, 0755), 0);
    for (int k = 0; k < 3; k++) add(&one, "norm", k + 1, norm_loss[k], 0);
    md = report_md(&one, NULL, NULL);
    ck_assert_ptr_null(strstr(md, "Paired against"));   /* nothing to pair */
    free(md);
    tmp[strlen(tmp) - 4] = 0;
}
END_TEST

/* ---- the program ---- */

#define run(out, n, ...) tu_run_clipnn(out, n, NULL, __VA_ARGS__)

START_TEST(compare_baseline_flag)
{
    char out[32768], path[600];
    int rc = run(out, sizeof out, "compare configs/tiny_mlp.json --variant a:clip.mode=none "
                 "--variant 'b:clip.mode=norm,clip.max_norm=0.05' --seeds 3 --baseline b --out %s/cmp --quiet", tmp);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/cmp/report.md", tmp);
    char *md = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(md);
    ck_assert_ptr_nonnull(strstr(md, "## Paired against the baseline: b\n"));
    char c[12][128];
    ck_assert_int_eq(paired_row(md, "a", c), 9);
    ck_assert_str_eq(c[1], "3");
    free(md);
    /* clipnn report rebuilds it with another baseline */
    rc = run(out, sizeof out, "report %s/cmp --baseline a", tmp);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    md = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(md);
    ck_assert_ptr_nonnull(strstr(md, "## Paired against the baseline: a\n"));
    ck_assert_int_eq(paired_row(md, "b", c), 9);
    free(md);
    rc = run(out, sizeof out, "report %s/cmp --baseline zz", tmp);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "--baseline: no variant is named \"zz\"") != NULL, "%s", out);
    rc = run(out, sizeof out, "compare configs/tiny_mlp.json --variant a:clip.mode=none --baseline zz --out %s/cmp2 --quiet", tmp);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "--baseline: no variant is named \"zz\"") != NULL, "%s", out);
    snprintf(path, sizeof path, "%s/cmp2", tmp);
    struct stat sb;
    ck_assert_msg(stat(path, &sb) != 0, "a refused compare created %s", path);
}
END_TEST

Suite *suite_paired(void)
{
    Suite *s = suite_create("paired");
    TCase *t = tcase_create("section");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, default_baseline_is_noclip_and_numbers_are_the_stats_modules);
    tcase_add_test(t, report_json_carries_the_paired_numbers);
    tcase_add_test(t, named_baseline);
    tcase_add_test(t, without_noclip_the_first_variant_is_the_baseline);
    tcase_add_test(t, unknown_baseline_and_single_variant);
    tcase_add_test(t, compare_baseline_flag);
    suite_add_tcase(s, t);
    return s;
}
