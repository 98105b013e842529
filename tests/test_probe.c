/* Suite "probe": the gradient-norm probe.
 *   figures: cn_probe_analyze on tests/data/probe/metrics.csv against tests/golden/probe.json, both
 *            written by tests/golden/gen_probe.py (numpy; an independent computation);
 *   errors:  missing file, no finite norm, malformed rows, missing columns;
 *   program: `clipnn probe` end to end on tiny configs (one epoch by default, clipping off, an
 *            exploding model survives, refusal of a directory that holds a run, --run). */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "report/probe.h"
#include "testutil.h"

static char tmp[256], bin[2048];

static void setup(void)
{
    snprintf(bin, sizeof bin, "%s", tu_clipnn_bin());
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-probe");
}

static void teardown(void) { tu_remove_tree(tmp); }

static cJSON *load_json(const char *path)
{
    char *text = tu_slurp(path, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    ck_assert_msg(j != NULL, "%s is not JSON", path);
    return j;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(v != NULL, "no key %s", key);
    return cJSON_IsNull(v) ? NAN : v->valuedouble;
}

#define ck_close(got, want, what) do { \
    double g_ = (got), w_ = (want); \
    ck_assert_msg(fabs(g_ - w_) <= 1e-12 * fabs(w_) + 1e-15, "%s: got %.17g, expected %.17g", what, g_, w_); \
} while (0)

/* ---- figures ---- */

START_TEST(fixture_figures_match_numpy)
{
    cn_probe p;
    ck_assert_ok(cn_probe_analyze("data/probe", &p));
    cJSON *g = load_json(tu_fixture("golden/probe.json"));
    ck_assert_int_eq(p.rows, (long long)num(g, "rows"));   /* the torn last line is dropped */
    ck_assert_int_eq(p.finite, (long long)num(g, "finite"));
    ck_assert_int_eq(p.nonfinite, (long long)num(g, "nonfinite"));
    ck_assert_int_eq(p.first_nonfinite_step, (long long)num(g, "first_nonfinite_step"));
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(g, "grad_norm_pre");
    ck_close(p.mean, num(d, "mean"), "mean");
    ck_close(p.min, num(d, "min"), "min");
    ck_close(p.p10, num(d, "p10"), "p10");
    ck_close(p.p25, num(d, "p25"), "p25");
    ck_close(p.median, num(d, "median"), "median");
    ck_close(p.p75, num(d, "p75"), "p75");
    ck_close(p.p90, num(d, "p90"), "p90");
    ck_close(p.p99, num(d, "p99"), "p99");
    ck_close(p.max, num(d, "max"), "max");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(g, "spikes");
    ck_assert_int_eq(p.n_spikes, (long long)num(sp, "count"));
    ck_assert_int_ge(p.n_spikes, 3);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(sp, "first")) {
        ck_assert_int_eq(p.spikes[i].step, (long long)num(e, "step"));
        ck_close(p.spikes[i].norm, num(e, "norm"), "spike norm");
        ck_close(p.spikes[i].ratio, num(e, "ratio"), "spike ratio");
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(g, "candidates")) {
        ck_assert_int_lt(i, CN_PROBE_N_CANDIDATES);
        ck_assert_str_eq(p.cand[i].name, cJSON_GetObjectItemCaseSensitive(e, "rule")->valuestring);
        ck_close(p.cand[i].value, num(e, "threshold"), p.cand[i].name);
        ck_close(p.cand[i].clip_rate, num(e, "clip_rate"), p.cand[i].name);
        i++;
    }
    ck_assert_int_eq(i, CN_PROBE_N_CANDIDATES);
    ck_assert_int_eq(p.tensor_rows, (long long)num(g, "tensor_rows"));
    i = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(g, "tensors")) {
        ck_assert_int_lt(i, p.n_tensors);
        ck_assert_str_eq(p.tensors[i].name, cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring);
        ck_close(p.tensors[i].share, num(e, "share"), p.tensors[i].name);
        ck_close(p.tensors[i].median, num(e, "median"), p.tensors[i].name);
        i++;
    }
    ck_assert_int_eq(i, p.n_tensors);
    cJSON_Delete(g);
    cn_probe_free(&p);
}
END_TEST

START_TEST(written_files_carry_the_figures)
{
    cn_probe p;
    ck_assert_ok(cn_probe_analyze("data/probe", &p));
    ck_assert_ok(cn_probe_write(&p, tmp, "fixture <model>"));
    char path[512];
    snprintf(path, sizeof path, "%s/probe.json", tmp);
    cJSON *j = load_json(path);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "grad_norm_pre");
    /* cJSON prints 15 significant digits when they read back within DBL_EPSILON: compare to 1e-12 */
    ck_close(num(d, "median"), p.median, "median");
    ck_close(num(d, "p99"), p.p99, "p99");
    ck_assert(num(d, "count") == (double)p.finite);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "candidates"), 0);
    ck_close(num(c0, "threshold"), p.mean, "mean threshold");
    ck_close(num(c0, "clip_rate"), p.cand[0].clip_rate, "mean clip rate");
    ck_assert_int_eq((int)num(cJSON_GetObjectItemCaseSensitive(j, "spikes"), "window"), CN_PROBE_SPIKE_WINDOW);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "tensors")), p.n_tensors);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/probe.html", tmp);
    char *h = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(strstr(h, "fixture &lt;model&gt;"));           /* escaped */
    ck_assert_ptr_null(strstr(h, "<script"));                             /* self-contained, no script */
    ck_assert_ptr_null(strstr(h, "src="));                                /* nothing loaded from elsewhere */
    ck_assert_ptr_nonnull(strstr(h, "aria-label=\"histogram of the pre-clip gradient norm, log x\""));
    ck_assert_ptr_nonnull(strstr(h, "aria-label=\"pre-clip gradient norm over steps, log y\""));
    ck_assert_ptr_null(strstr(h, "nan"));                                 /* never in SVG coordinates */
    int rects = 0;
    for (const char *q = h; (q = strstr(q, "<rect ")); q++) rects++;
    ck_assert_int_ge(rects, 5);                                           /* the histogram's bars */
    int circles = 0;
    for (const char *q = h; (q = strstr(q, "<circle ")); q++) circles++;
    ck_assert_int_eq(circles, (int)p.n_spikes);
    free(h);
    cn_probe_free(&p);
}
END_TEST

/* ---- errors ---- */

START_TEST(missing_metrics_is_a_clear_error)
{
    cn_probe p;
    ck_assert_int_eq(cn_probe_analyze(tmp, &p), CN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "metrics.csv"));
    cn_error_clear();
}
END_TEST

START_TEST(no_finite_norm_is_a_clear_error)
{
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.csv", tmp);
    tu_write_text(path, "step,loss,grad_norm_pre\n1,nan,nan\n2,inf,inf\n");
    cn_probe p;
    ck_assert_int_eq(cn_probe_analyze(tmp, &p), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "no finite grad_norm_pre in 2 rows") != NULL, "%s", cn_errmsg());
    tu_write_text(path, "step,loss,grad_norm_pre\n");
    ck_assert_int_eq(cn_probe_analyze(tmp, &p), CN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "no finite grad_norm_pre in 0 rows"));
    cn_error_clear();
}
END_TEST

START_TEST(malformed_rows_name_the_line_and_column)
{
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.csv", tmp);
    cn_probe p;
    tu_write_text(path, "step,grad_norm_pre,gn_pre.0.weight\n1,0.5,0.5\n2,fast,0.4\n");
    ck_assert_int_eq(cn_probe_analyze(tmp, &p), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "line 3, column \"grad_norm_pre\": not a number") != NULL, "%s", cn_errmsg());
    tu_write_text(path, "step,grad_norm_pre,gn_pre.0.weight\n1,0.5,x\n");
    ck_assert_int_eq(cn_probe_analyze(tmp, &p), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "line 2, column \"0.weight\"") != NULL, "%s", cn_errmsg());
    tu_write_text(path, "step,grad_norm_pre\n1,0.5,7\n");
    ck_assert_int_eq(cn_probe_analyze(tmp, &p), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "line 2: 3 fields, the header has 2") != NULL, "%s", cn_errmsg());
    tu_write_text(path, "step,loss\n1,0.5\n");
    ck_assert_int_eq(cn_probe_analyze(tmp, &p), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "no column \"grad_norm_pre\"") != NULL, "%s", cn_errmsg());
    tu_write_text(path, "");
    ck_assert_int_eq(cn_probe_analyze(tmp, &p), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "no header line") != NULL, "%s", cn_errmsg());
    cn_error_clear();
}
END_TEST

/* A single finite norm: every percentile is that value and nothing clips. */
START_TEST(one_row_probe)
{
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.csv", tmp);
    tu_write_text(path, "step,grad_norm_pre\r\n7,2.5\r\n");
    cn_probe p;
    ck_assert_ok(cn_probe_analyze(tmp, &p));
    ck_assert_int_eq(p.rows, 1);
    ck_assert(p.mean == 2.5 && p.p10 == 2.5 && p.p99 == 2.5 && p.max == 2.5);
    for (int k = 0; k < CN_PROBE_N_CANDIDATES; k++) ck_assert(p.cand[k].clip_rate == 0.0);
    ck_assert_int_eq(p.n_spikes, 0);
    ck_assert_int_eq(p.n_tensors, 0);
    cn_probe_free(&p);
}
END_TEST

/* ---- the program ---- */

#define run(out, n, ...) tu_run_clipnn(out, n, NULL, __VA_ARGS__)

static int rows_of(const char *path)
{
    char *m = tu_slurp(path, NULL);
    ck_assert_msg(m != NULL, "cannot read %s", path);
    int rows = -1;
    for (char *q = m; *q; q++) rows += *q == '\n';
    free(m);
    return rows;
}

START_TEST(cli_probe_trains_one_epoch_without_clipping)
{
    char out[16384], dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/p", tmp);
    /* tiny_mlp: 100 examples, batch 10: one epoch = 10 steps; its config clips nothing, so give it a clip
       chain that the probe must replace */
    int rc = run(out, sizeof out, "probe configs/tiny_mlp.json --out %s --quiet "
                 "--set 'clip=[{\"mode\":\"value\",\"clip_value\":0.01},{\"mode\":\"norm\",\"max_norm\":0.001}]'", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "candidate thresholds"));
    ck_assert_ptr_nonnull(strstr(out, "Pascanu"));
    ck_assert_ptr_nonnull(strstr(out, "share of the squared norm per tensor"));
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    ck_assert_int_eq(rows_of(path), 10);
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *c = load_json(path);
    const cJSON *clip = cJSON_GetObjectItemCaseSensitive(c, "clip");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(clip, "mode")->valuestring, "none");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(clip, "on_nonfinite")->valuestring, "skip");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "log"), "per_tensor")));
    cJSON_Delete(c);
    /* probe.json holds what the analysis of the directory gives */
    cn_probe p;
    ck_assert_ok(cn_probe_analyze(dir, &p));
    snprintf(path, sizeof path, "%s/probe.json", dir);
    cJSON *j = load_json(path);
    ck_close(num(cJSON_GetObjectItemCaseSensitive(j, "grad_norm_pre"), "mean"), p.mean, "mean");
    ck_assert_int_eq((int)num(j, "rows"), 10);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "tensors")), 4);
    ck_assert_int_eq(p.n_tensors, 4);
    /* the suggested comparison names the candidates' thresholds */
    char want[128];
    snprintf(want, sizeof want, " --variant 'p90:clip.mode=norm,clip.max_norm=%.4g'", p.p90);
    ck_assert_msg(strstr(out, "next: clipnn compare configs/tiny_mlp.json --seeds 5 --set 'clip=[") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "}]' --variant noclip:clip.mode=none --variant 'calm:") != NULL, "%s", out);
    ck_assert_msg(strstr(out, want) != NULL, "%s lacks %s", out, want);
    if (p.n_spikes == 0) ck_assert_ptr_null(strstr(out, "'p50:"));   /* the same value as calm: once */
    cJSON_Delete(j);
    cn_probe_free(&p);
    snprintf(path, sizeof path, "%s/probe.html", dir);
    ck_assert(access(path, F_OK) == 0);
    /* a second probe into the same directory is refused, and leaves it as it was */
    rc = run(out, sizeof out, "probe configs/tiny_mlp.json --out %s --quiet", dir);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "already holds a run") != NULL, "%s", out);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    ck_assert_int_eq(rows_of(path), 10);
    /* --steps */
    snprintf(dir, sizeof dir, "%s/p3", tmp);
    rc = run(out, sizeof out, "probe configs/tiny_mlp.json --steps 3 --out %s --quiet", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    ck_assert_int_eq(rows_of(path), 3);
}
END_TEST

/* An RNN under SGD at lr 1e30 overflows from its second step: the probe skips every non-finite step
   and finishes its epoch (200 examples / batch 8 = 25 steps) instead of stopping. */
START_TEST(cli_probe_survives_an_exploding_model)
{
    char out[16384], dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/explode", tmp);
    int rc = run(out, sizeof out, "probe configs/tiny_rnn.json --set optimizer.type=sgd --set optimizer.lr=1e30 "
                 "--out %s --quiet", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/probe.json", dir);
    cJSON *j = load_json(path);
    ck_assert_int_eq((int)num(j, "rows"), 25);
    ck_assert_int_gt((int)num(j, "nonfinite"), 0);
    ck_assert_int_gt((int)num(j, "finite"), 0);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    j = load_json(path);
    ck_assert_int_eq((int)num(j, "steps"), 25);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "diverged")));
    cJSON_Delete(j);
}
END_TEST

START_TEST(cli_probe_reads_a_run)
{
    char out[16384], dir[512], path[600], cmd[1400];
    snprintf(dir, sizeof dir, "%s/run", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp data/probe/metrics.csv %s/", dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    int rc = run(out, sizeof out, "probe --run %s", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "160 logged steps: 156 finite, 4 non-finite (first at step 70)"));
    ck_assert_ptr_nonnull(strstr(out, "probe written to"));
    snprintf(path, sizeof path, "%s/probe.json", dir);
    ck_assert(access(path, F_OK) == 0);
    snprintf(path, sizeof path, "%s/probe.html", dir);
    ck_assert(access(path, F_OK) == 0);
    /* again into the run: the files are replaced */
    rc = run(out, sizeof out, "probe --run %s --quiet", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    /* --out elsewhere must be new or empty, as for train: a second probe there is refused */
    rc = run(out, sizeof out, "probe --run %s --out %s/elsewhere --quiet", dir, tmp);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    rc = run(out, sizeof out, "probe --run %s --out %s/elsewhere --quiet", dir, tmp);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "is not empty (it holds") != NULL && strstr(out, "probe.json") != NULL, "%s", out);
}
END_TEST

START_TEST(cli_probe_bad_inputs)
{
    char out[16384];
    int rc = run(out, sizeof out, "probe --run %s", tmp);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "metrics.csv") != NULL, "%s", out);
    rc = run(out, sizeof out, "probe");
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_nonnull(strstr(out, "missing CONFIG.json"));
    rc = run(out, sizeof out, "probe configs/tiny_mlp.json --steps 0");
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_nonnull(strstr(out, "--steps: expected an integer"));
    rc = run(out, sizeof out, "probe configs/tiny_mlp.json --run %s", tmp);
    ck_assert_int_eq(rc, 2);
    rc = run(out, sizeof out, "probe --run %s --steps 5", tmp);
    ck_assert_int_eq(rc, 2);
    rc = run(out, sizeof out, "probe configs/no-such-config.json --out %s/x", tmp);
    ck_assert_int_eq(rc, 2);
    ck_assert(access("x", F_OK) != 0);
    char path[600];
    snprintf(path, sizeof path, "%s/x", tmp);
    ck_assert_msg(access(path, F_OK) != 0, "a failed probe left %s behind", path);
    rc = run(out, sizeof out, "probe configs/tiny_mlp.json --bogus 1");
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown option '--bogus'"));
    /* a full stdout is an error even though the files were written */
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "'%s' probe --run data/probe --out %s/full --quiet 2>&1 >/dev/full", bin, tmp);
    rc = tu_shell(out, sizeof out, cmd);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(out, "cannot write to standard output") != NULL, "%s", out);
    rc = run(out, sizeof out, "probe --help");
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: clipnn probe"));
}
END_TEST

Suite *suite_probe(void)
{
    Suite *s = suite_create("probe");
    TCase *t = tcase_create("figures");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, fixture_figures_match_numpy);
    tcase_add_test(t, written_files_carry_the_figures);
    tcase_add_test(t, missing_metrics_is_a_clear_error);
    tcase_add_test(t, no_finite_norm_is_a_clear_error);
    tcase_add_test(t, malformed_rows_name_the_line_and_column);
    tcase_add_test(t, one_row_probe);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("program");
    tcase_add_checked_fixture(c, setup, teardown);
    tcase_set_timeout(c, 120);
    tcase_add_test(c, cli_probe_trains_one_epoch_without_clipping);
    tcase_add_test(c, cli_probe_survives_an_exploding_model);
    tcase_add_test(c, cli_probe_reads_a_run);
    tcase_add_test(c, cli_probe_bad_inputs);
    suite_add_tcase(s, c);
    return s;
}
