/* Suite "compare": sweeps, the plan's validation, extending a compare folder, `clipnn report`,
 * report.json/runs.csv, run statuses (interrupted, blew up), and Ctrl-C on a terminal. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "report/internal.h"
#include "train/compare.h"

static char bin[2048], tmp[256];

static void setup(void)
{
    snprintf(bin, sizeof bin, "%s", tu_clipnn_bin());
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-compare");
}

static void teardown(void) { tu_remove_tree(tmp); }

#define run(out, n, ...) tu_run_clipnn(out, n, NULL, __VA_ARGS__)

static cJSON *load_json(const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    char *text = tu_slurp(path, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    ck_assert_msg(j != NULL, "%s is not JSON", path);
    return j;
}

static int exists(const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    return access(path, F_OK) == 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* The run object of report.json with this variant and seed. */
static const cJSON *report_run(const cJSON *rep, const char *variant, long long seed)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(rep, "runs"))
        if (!strcmp(cJSON_GetObjectItem(r, "variant")->valuestring, variant) &&
            (long long)cJSON_GetObjectItem(r, "seed")->valuedouble == seed) return r;
    ck_abort_msg("no run %s seed %lld in report.json", variant, seed);
    return NULL;
}

static const cJSON *report_variant(const cJSON *rep, const char *name)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(rep, "variants"))
        if (!strcmp(cJSON_GetObjectItem(v, "name")->valuestring, name)) return v;
    ck_abort_msg("no variant %s in report.json", name);
    return NULL;
}

/* ---- sweeps ---- */

START_TEST(sweep_expands_the_cartesian_grid_first_axis_slowest)
{
    char *sw[] = {"clip.max_norm=0.1,1,10", "optimizer.lr=1e-3,\"fast\""};
    cn_variant *v;
    int n;
    ck_assert_ok(cn_sweep_expand(sw, 2, &v, &n));
    ck_assert_int_eq(n, 6);
    static const char *const names[] = {"max_norm=0.1+lr=1e-3", "max_norm=0.1+lr=fast", "max_norm=1+lr=1e-3",
                                        "max_norm=1+lr=fast", "max_norm=10+lr=1e-3", "max_norm=10+lr=fast"};
    for (int i = 0; i < 6; i++) ck_assert_str_eq(v[i].name, names[i]);
    ck_assert_int_eq(v[3].n_sets, 2);
    ck_assert_str_eq(v[3].sets[0], "clip.max_norm=1");
    ck_assert_str_eq(v[3].sets[1], "optimizer.lr=\"fast\"");
    for (int i = 0; i < n; i++) cn_variant_free(&v[i]);
    cn_free(v);
}
END_TEST

START_TEST(sweep_values_keep_their_commas_and_names_are_filesystem_safe)
{
    char *sw[] = {"optimizer.betas=[0.9,0.99],[0.5,0.9]", "clip.mode=\"a b/c\""};
    cn_variant *v;
    int n;
    ck_assert_ok(cn_sweep_expand(sw, 2, &v, &n));
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(v[0].sets[0], "optimizer.betas=[0.9,0.99]");
    ck_assert_str_eq(v[1].sets[0], "optimizer.betas=[0.5,0.9]");
    ck_assert_str_eq(v[0].name, "betas=_0.9_0.99_+mode=a_b_c");
    for (int i = 0; i < n; i++) cn_variant_free(&v[i]);
    cn_free(v);
    /* two paths with the same last key are named by their whole paths */
    char *sw2[] = {"model.0.hidden=4,8", "model.1.hidden=2"};
    ck_assert_ok(cn_sweep_expand(sw2, 2, &v, &n));
    ck_assert_str_eq(v[1].name, "model.0.hidden=8+model.1.hidden=2");
    for (int i = 0; i < n; i++) cn_variant_free(&v[i]);
    cn_free(v);
}
END_TEST

START_TEST(sweep_refuses_big_grids_and_clashing_names)
{
    cn_variant *v = NULL;
    int n = -1;
    char *big[] = {"clip.max_norm=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "optimizer.lr=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"};
    ck_assert_int_eq(cn_sweep_expand(big, 2, &v, &n), CN_ERR_ARG);   /* 272 > 256 */
    ck_assert_msg(strstr(cn_errmsg(), "256") != NULL, "%s", cn_errmsg());
    ck_assert_ptr_null(v);
    char *fits[] = {"clip.max_norm=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", "optimizer.lr=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"};
    ck_assert_ok(cn_sweep_expand(fits, 2, &v, &n));
    ck_assert_int_eq(n, 256);
    for (int i = 0; i < n; i++) cn_variant_free(&v[i]);
    cn_free(v);
    char *clash[] = {"clip.mode=\"a b\",\"a_b\""};
    ck_assert_int_eq(cn_sweep_expand(clash, 1, &v, &n), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "same name") != NULL, "%s", cn_errmsg());
    char *empty[] = {"clip.max_norm=1,,2"};
    ck_assert_int_eq(cn_sweep_expand(empty, 1, &v, &n), CN_ERR_ARG);
    char *nopath[] = {"=1,2"};
    ck_assert_int_eq(cn_sweep_expand(nopath, 1, &v, &n), CN_ERR_ARG);
}
END_TEST

START_TEST(compare_sweep_runs_the_grid_after_the_variants)
{
    char out[16384], dir[512];
    snprintf(dir, sizeof dir, "%s/sweep", tmp);
    int rc = run(out, sizeof out, "compare configs/tiny_mlp.json --quiet --out %s --variant noclip:clip.mode=none "
                 "--sweep clip.mode=norm --sweep clip.max_norm=0.5,2", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    cJSON *rep = load_json("%s/report.json", dir);
    const cJSON *vs = cJSON_GetObjectItem(rep, "variants");
    ck_assert_int_eq(cJSON_GetArraySize(vs), 3);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(vs, 0), "name")->valuestring, "noclip");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(vs, 1), "name")->valuestring, "mode=norm+max_norm=0.5");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(vs, 2), "settings")->valuestring,
                     "clip.mode=norm, clip.max_norm=2");
    cJSON_Delete(rep);
    cJSON *c = load_json("%s/mode=norm+max_norm=2/config.json", dir);
    ck_assert_near(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "clip"), "max_norm")->valuedouble, 2.0, 0);
    cJSON_Delete(c);
    rc = run(out, sizeof out, "compare configs/tiny_mlp.json --out %s/big --sweep clip.max_norm=1,2,3,4,5,6,7,8,9 "
             "--seeds 29", tmp);   /* 9 x 29 = 261 runs */
    ck_assert_msg(rc == 2 && strstr(out, "256"), "exit %d: %s", rc, out);
    ck_assert(!exists("%s/big", tmp));
}
END_TEST

/* ---- validation before anything starts (issue: only the base seed was checked) ---- */

START_TEST(every_seed_is_validated_before_the_first_run)
{
    char out[8192], dir[512];
    snprintf(dir, sizeof dir, "%s/seeds", tmp);
    int rc = run(out, sizeof out, "compare configs/tiny_mlp.json --out %s --seeds 2 --set seed=9e15", dir);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "seed 9000000000000001") && strstr(out, "variant \"noclip\""), "%s", out);
    ck_assert_msg(!exists("%s", dir), "%s was created", dir);
}
END_TEST

START_TEST(jobs_and_sweep_flags_are_checked)
{
    char out[8192];
    int rc = run(out, sizeof out, "compare configs/tiny_mlp.json --jobs 0 --out %s/j", tmp);
    ck_assert_msg(rc == 2 && strstr(out, "--jobs"), "exit %d: %s", rc, out);
    rc = run(out, sizeof out, "compare configs/tiny_mlp.json --sweep nonsense --out %s/j", tmp);
    ck_assert_msg(rc == 2 && strstr(out, "--sweep"), "exit %d: %s", rc, out);
    ck_assert(!exists("%s/j", tmp));
    rc = run(out, sizeof out, "compare --help");
    ck_assert_msg(rc == 0 && strstr(out, "--sweep PATH=V1") && strstr(out, "--jobs N"), "exit %d: %s", rc, out);
    rc = run(out, sizeof out, "report --help");
    ck_assert_msg(rc == 0 && strstr(out, "usage: clipnn report DIR"), "exit %d: %s", rc, out);
    rc = run(out, sizeof out, "report");
    ck_assert_msg(rc == 2 && strstr(out, "missing DIR"), "exit %d: %s", rc, out);
}
END_TEST

/* ---- per-tensor logging is on by default under compare ---- */

START_TEST(per_tensor_logging_is_on_unless_the_config_says)
{
    char out[8192], dir[512], p[1024];
    snprintf(dir, sizeof dir, "%s/pt", tmp);
    int rc = run(out, sizeof out, "compare configs/tiny_mlp.json --quiet --out %s --variant a:clip.mode=none", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(p, sizeof p, "%s/a/metrics.csv", dir);
    char *m = tu_slurp(p, NULL);
    ck_assert_msg(m && strstr(m, "gn_pre.0.weight"), "no per-tensor columns: %.300s", m ? m : "(none)");
    /* the report's loader reads them: names in order, values as logged (sum of squares = global norm^2) */
    char rdir[600];
    snprintf(rdir, sizeof rdir, "%s/a", dir);
    cn_report_run in = {"a", 1, rdir, CN_REPORT_EXIT_UNKNOWN, NULL};
    cn_report_rundata rd;
    ck_assert_ok(cn_report_load(&in, &rd));
    ck_assert_int_eq(rd.n_tensors, 4);
    ck_assert_str_eq(rd.tensor_name[0], "0.weight");
    ck_assert_str_eq(rd.tensor_name[3], "2.bias");
    ck_assert_int_eq(rd.n, 20);
    for (long long i = 0; i < rd.n; i++) {
        double ss = 0;
        for (int t = 0; t < 4; t++) ss += rd.tensor_col[t][i] * rd.tensor_col[t][i];
        ck_assert_near(sqrt(ss), rd.col[CN_RC_GN][i], 1e-6 * rd.col[CN_RC_GN][i]);
    }
    ck_assert_int_eq(rd.status, CN_RUN_FINISHED);
    cn_report_rundata_free(&rd);
    free(m);
    snprintf(dir, sizeof dir, "%s/pt-off", tmp);
    rc = run(out, sizeof out, "compare configs/tiny_mlp.json --quiet --out %s --variant a:clip.mode=none "
             "--set log.per_tensor=false", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(p, sizeof p, "%s/a/metrics.csv", dir);
    m = tu_slurp(p, NULL);
    ck_assert(m && !strstr(m, "gn_pre."));
    free(m);
}
END_TEST

/* ---- rebuild and extend ---- */

START_TEST(rebuilt_report_equals_the_original)
{
    char out[16384], dir[512], p[1024];
    snprintf(dir, sizeof dir, "%s/rb", tmp);
    int rc = run(out, sizeof out, "compare configs/tiny_rnn.json --quiet --out %s --seeds 2 --variant noclip:clip.mode=none "
                 "--variant 'blowup:clip.mode=none,optimizer.type=sgd,optimizer.lr=1e30' --variant tight:clip.max_norm=0.1", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    static const char *const files[] = {"report.json", "runs.csv", "report.md"};
    char *before[3];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        before[i] = tu_slurp(p, NULL);
        ck_assert(before[i] != NULL);
        ck_assert_int_eq(unlink(p), 0);
    }
    rc = run(out, sizeof out, "report %s", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        char *after = tu_slurp(p, NULL);
        ck_assert_msg(after && !strcmp(before[i], after), "%s differs after clipnn report", files[i]);
        free(after);
        free(before[i]);
    }
    /* the numbers are the summaries' */
    cJSON *rep = load_json("%s/report.json", dir);
    const cJSON *r = report_run(rep, "blowup", 8);
    ck_assert_str_eq(cJSON_GetObjectItem(r, "status")->valuestring, "diverged");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "blew_up")));   /* diverged, not "blew up" */
    cJSON *sum = load_json("%s/tight-s8/summary.json", dir);
    ck_assert_near(cJSON_GetObjectItem(report_run(rep, "tight", 8), "final_loss")->valuedouble,
                   cJSON_GetObjectItem(sum, "final_loss")->valuedouble, 0);
    /* diverged runs are not in the loss means */
    const cJSON *fl = cJSON_GetObjectItem(report_variant(rep, "blowup"), "final_loss");
    ck_assert_int_eq((int)cJSON_GetObjectItem(fl, "present")->valuedouble, 0);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(fl, "mean")));
    cJSON_Delete(sum);
    cJSON_Delete(rep);
    /* single runs and a mix, into another folder */
    rc = run(out, sizeof out, "report %s/noclip-s7 %s/tight-s7 --out %s/mix", dir, dir, tmp);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    rep = load_json("%s/mix/report.json", tmp);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(rep, "runs")), 2);
    ck_assert_str_eq(cJSON_GetObjectItem(report_run(rep, "tight", 7), "status")->valuestring, "finished");
    cJSON_Delete(rep);
    /* a folder of runs without compare.json (an older compare): "<variant>-s<seed>" directories group */
    snprintf(p, sizeof p, "%s/compare.json", dir);
    ck_assert_int_eq(unlink(p), 0);
    rc = run(out, sizeof out, "report %s --out %s/old", dir, tmp);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    rep = load_json("%s/old/report.json", tmp);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(rep, "variants")), 3);
    ck_assert_int_eq((int)cJSON_GetObjectItem(report_variant(rep, "tight"), "runs")->valuedouble, 2);
    cJSON_Delete(rep);
    rc = run(out, sizeof out, "report %s/noclip-s7 %s/tight-s7", dir, dir);
    ck_assert_msg(rc == 2 && strstr(out, "--out"), "exit %d: %s", rc, out);
    rc = run(out, sizeof out, "report %s/nothing-here", tmp);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
}
END_TEST

static long long mtime_ns(const char *path)
{
    struct stat sb;
    ck_assert_msg(stat(path, &sb) == 0, "%s: %s", path, strerror(errno));
    return (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}

START_TEST(extending_a_compare_runs_only_what_is_missing)
{
    char out[16384], dir[512], p[1024];
    snprintf(dir, sizeof dir, "%s/ext", tmp);
    int rc = run(out, sizeof out, "compare configs/tiny_mlp.json --out %s --variant a:clip.mode=none", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(p, sizeof p, "%s/a/summary.json", dir);
    long long t_a = mtime_ns(p);
    char *sum_a = tu_slurp(p, NULL);
    /* more seeds and a new variant: a (seed 1) is kept, the others run */
    rc = run(out, sizeof out, "compare configs/tiny_mlp.json --out %s --seeds 2 --variant a:clip.mode=none "
             "--variant b:clip.mode=norm,clip.max_norm=0.5", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "3 runs to do, 1 already there"), "%s", out);
    ck_assert_msg(mtime_ns(p) == t_a, "the finished run was rewritten");
    char *again = tu_slurp(p, NULL);
    ck_assert_str_eq(sum_a, again);
    free(again);
    free(sum_a);
    ck_assert(exists("%s/a-s2/summary.json", dir) && exists("%s/b-s1/summary.json", dir) && exists("%s/b-s2/summary.json", dir));
    cJSON *rep = load_json("%s/report.json", dir);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(rep, "runs")), 4);   /* every run, old and new */
    ck_assert_str_eq(cJSON_GetObjectItem(rep, "title")->valuestring, "tiny-mlp: 2 variants x 2 seeds");
    cJSON_Delete(rep);
    /* nothing missing: nothing runs, the report is rebuilt; the recorded variants get the seeds */
    rc = run(out, sizeof out, "compare configs/tiny_mlp.json --out %s --seeds 2", dir);
    ck_assert_msg(rc == 0 && strstr(out, "0 runs to do, 4 already there"), "exit %d: %s", rc, out);
    /* a variant name with other settings, a changed base: refused, nothing written */
    snprintf(p, sizeof p, "%s/compare.json", dir);
    char *rec = tu_slurp(p, NULL);
    rc = run(out, sizeof out, "compare configs/tiny_mlp.json --out %s --variant a:clip.mode=value", dir);
    ck_assert_msg(rc == 2 && strstr(out, "\"a\" is already there"), "exit %d: %s", rc, out);
    rc = run(out, sizeof out, "compare configs/tiny_mlp.json --out %s --seeds 3 --set optimizer.lr=0.05", dir);
    ck_assert_msg(rc == 2 && strstr(out, "optimizer.lr (was 0.1"), "exit %d: %s", rc, out);
    ck_assert(!exists("%s/a-s3", dir));
    char *rec2 = tu_slurp(p, NULL);
    ck_assert_str_eq(rec, rec2);
    free(rec);
    free(rec2);
}
END_TEST

/* ---- statuses from the files ---- */

/* A run directory with a loss curve: n rows, loss[i] given by f. */
static void make_run(const char *dir, const char *summary, int n, double early, double late)
{
    char p[1024];
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(p, sizeof p, "%s/summary.json", dir);
    write_file(p, summary);
    snprintf(p, sizeof p, "%s/config.json", dir);
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"seed\": 1, \"train\": {\"steps\": %d}, \"clip\": {\"mode\": \"none\"}}", n);
    write_file(p, cfg);
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "step,epoch,loss,lr,grad_norm_pre,grad_norm_post,clip_coef,clip_threshold\n");
    for (int i = 1; i <= n; i++) fprintf(f, "%d,0,%.9g,0.1,1,1,1,nan\n", i, i <= n / 2 ? early : late);
    fclose(f);
    snprintf(p, sizeof p, "%s/eval.csv", dir);
    write_file(p, "step,test_loss,test_metric\n200,1,0.5\n");
}

START_TEST(blown_up_and_interrupted_runs_are_flagged_and_not_averaged)
{
    char d[4][512];
    const char *names[] = {"ok1", "ok2", "boom", "cut"};
    for (int i = 0; i < 4; i++) snprintf(d[i], sizeof d[i], "%s/%s", tmp, names[i]);
    make_run(d[0], "{\"steps\": 200, \"final_loss\": 0.5, \"test_loss\": 0.4, \"test_metric\": 0.5, \"diverged\": false, "
                   "\"clip_frac\": 0, \"max_grad_norm_pre\": 1, \"stopped_early\": false, \"interrupted\": false}", 200, 1.0, 0.5);
    make_run(d[1], "{\"steps\": 200, \"final_loss\": 0.7, \"test_loss\": 0.6, \"test_metric\": 0.5, \"diverged\": false, "
                   "\"clip_frac\": 0, \"max_grad_norm_pre\": 1, \"stopped_early\": false, \"interrupted\": false}", 200, 1.0, 0.7);
    /* finite, but 4.7e6 / 1.0 > 100: blew up */
    make_run(d[2], "{\"steps\": 200, \"final_loss\": 4.7e6, \"test_loss\": 3e6, \"test_metric\": 0.1, \"diverged\": false, "
                   "\"clip_frac\": 0, \"max_grad_norm_pre\": 1e9, \"stopped_early\": false, \"interrupted\": false}", 200, 1.0, 4.7e6);
    /* stopped by a signal at step 120 of 200 */
    make_run(d[3], "{\"steps\": 120, \"final_loss\": 0.1, \"test_loss\": 0.1, \"test_metric\": 0.9, \"diverged\": false, "
                   "\"clip_frac\": 0, \"max_grad_norm_pre\": 1, \"stopped_early\": true, \"interrupted\": true}", 200, 1.0, 0.1);
    char out[8192];
    int rc = run(out, sizeof out, "report %s %s %s %s --out %s/rep", d[0], d[1], d[2], d[3], tmp);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    cJSON *rep = load_json("%s/rep/report.json", tmp);
    const cJSON *boom = report_run(rep, "boom", 1), *cut = report_run(rep, "cut", 1);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(boom, "blew_up")));
    ck_assert_int_eq((int)cJSON_GetObjectItem(boom, "blew_up_at_step")->valuedouble, 101);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(boom, "in_loss_means")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(report_run(rep, "ok1", 1), "blew_up")));
    ck_assert_str_eq(cJSON_GetObjectItem(cut, "status")->valuestring, "interrupted");
    /* each single run is its own variant: the interrupted one has nothing averaged, the blown-up one no loss */
    const cJSON *vc = report_variant(rep, "cut"), *vb = report_variant(rep, "boom");
    ck_assert_int_eq((int)cJSON_GetObjectItem(vc, "interrupted")->valuedouble, 1);
    ck_assert_int_eq((int)cJSON_GetObjectItem(cJSON_GetObjectItem(vc, "clip_frac"), "present")->valuedouble, 0);
    ck_assert_int_eq((int)cJSON_GetObjectItem(cJSON_GetObjectItem(vb, "final_loss"), "present")->valuedouble, 0);
    ck_assert_int_eq((int)cJSON_GetObjectItem(cJSON_GetObjectItem(vb, "clip_frac"), "present")->valuedouble, 1);
    ck_assert_int_eq((int)cJSON_GetObjectItem(vb, "blew_up")->valuedouble, 1);
    cJSON_Delete(rep);
    char p[1024];
    snprintf(p, sizeof p, "%s/rep/report.md", tmp);
    char *md = tu_slurp(p, NULL);
    ck_assert_msg(strstr(md, "unfinished: interrupted at step 120 | 120 of 200") && strstr(md, "blew up at step 101"), "%s", md);
    free(md);
    snprintf(p, sizeof p, "%s/rep/runs.csv", tmp);
    char *csv = tu_slurp(p, NULL);
    ck_assert_msg(strstr(csv, "\nboom,1,,finished,200,200,4700000,") != NULL, "%s", csv);
    ck_assert_msg(strstr(csv, "\ncut,1,,interrupted,120,200,") != NULL, "%s", csv);
    free(csv);
}
END_TEST

/* Two seeds of one variant: the interrupted seed is left out of the mean (fixture copies). */
START_TEST(interrupted_seed_is_left_out_of_the_variant_mean)
{
    char out[8192], a[600], b[600], cdir[512];
    snprintf(cdir, sizeof cdir, "%s/cmp", tmp);
    ck_assert_int_eq(mkdir(cdir, 0755), 0);
    snprintf(a, sizeof a, "%s/v-s1", cdir);
    snprintf(b, sizeof b, "%s/v-s2", cdir);
    make_run(a, "{\"steps\": 200, \"final_loss\": 0.5, \"diverged\": false, \"clip_frac\": 0.25, \"stopped_early\": false}", 200, 1.0, 0.5);
    make_run(b, "{\"steps\": 50, \"final_loss\": 0.9, \"diverged\": false, \"clip_frac\": 0.75, \"stopped_early\": true}", 200, 1.0, 0.9);
    char rec[2048];
    snprintf(rec, sizeof rec, "{\"format\": \"clipnn-compare\", \"name\": \"t\", \"base\": {}, \"base_sets\": [], "
             "\"variants\": [{\"name\": \"v\", \"sets\": [\"clip.mode=none\"], \"seed\": 1}], \"runs\": "
             "[{\"variant\": \"v\", \"seed\": 1, \"dir\": \"v-s1\"}, {\"variant\": \"v\", \"seed\": 2, \"dir\": \"v-s2\"}]}");
    char p[1024];
    snprintf(p, sizeof p, "%s/compare.json", cdir);
    write_file(p, rec);
    int rc = run(out, sizeof out, "report %s", cdir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    cJSON *rep = load_json("%s/report.json", cdir);
    const cJSON *v = report_variant(rep, "v");
    ck_assert_near(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "final_loss"), "mean")->valuedouble, 0.5, 0);
    ck_assert_near(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "clip_frac"), "mean")->valuedouble, 0.25, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(v, "settings")->valuestring, "clip.mode=none");
    ck_assert_str_eq(cJSON_GetObjectItem(report_run(rep, "v", 2), "status")->valuestring, "interrupted");
    cJSON_Delete(rep);
    ck_assert_msg(strstr(out, "| v | clip.mode=none | 2 (1 unfinished) | 0.5 |") != NULL, "%s", out);
    /* a compare.json edited into nonsense is an error naming it */
    write_file(p, "{\"format\": \"clipnn-compare\", \"name\": \"t\", \"base\": {}, \"base_sets\": [], \"variants\": [], "
                  "\"runs\": [{\"variant\": \"v\", \"seed\": 1, \"dir\": \"../../etc\"}]}");
    rc = run(out, sizeof out, "report %s", cdir);
    ck_assert_msg(rc == 2 && strstr(out, "compare.json: runs.0"), "exit %d: %s", rc, out);
}
END_TEST

/* ---- Ctrl-C on a terminal ---- */

/* Runs clipnn with argv under a new pseudo-terminal as its controlling terminal; once every path in
 * wait_for exists, types ^C. Returns the exit code; the terminal output in out. */
static int run_on_pty_with_ctrl_c(char *const *argv, char *const *wait_for, int n_wait, char *out, size_t n_out)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    ck_assert(master >= 0);
    ck_assert(grantpt(master) == 0 && unlockpt(master) == 0);
    char slave_name[256];
    ck_assert(ptsname_r(master, slave_name, sizeof slave_name) == 0);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        setsid();
        int slave = open(slave_name, O_RDWR);   /* the session's controlling terminal */
        if (slave < 0) _exit(127);
        ioctl(slave, TIOCSCTTY, 0);
        dup2(slave, 0);
        dup2(slave, 1);
        dup2(slave, 2);
        close(master);
        if (slave > 2) close(slave);
        execv(argv[0], argv);
        _exit(127);
    }
    size_t len = 0;
    int sent = 0, status = 0;
    time_t t0 = time(NULL);
    for (;;) {
        struct pollfd pf = {master, POLLIN, 0};
        if (poll(&pf, 1, 50) > 0) {
            char buf[4096];
            ssize_t k = read(master, buf, sizeof buf);
            if (k > 0 && len + (size_t)k < n_out) { memcpy(out + len, buf, (size_t)k); len += (size_t)k; }
        }
        if (!sent) {
            int all = 1;
            for (int i = 0; i < n_wait; i++) all &= access(wait_for[i], F_OK) == 0;
            if (all) {
                ck_assert_int_eq(write(master, "\003", 1), 1);   /* the terminal sends SIGINT to its foreground group */
                sent = 1;
            }
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (time(NULL) - t0 > 600) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            ck_abort_msg("compare did not end");
        }
    }
    for (;;) {   /* what is left in the terminal */
        struct pollfd pf = {master, POLLIN, 0};
        if (poll(&pf, 1, 0) <= 0) break;
        char buf[4096];
        ssize_t k = read(master, buf, sizeof buf);
        if (k <= 0) break;
        if (len + (size_t)k < n_out) { memcpy(out + len, buf, (size_t)k); len += (size_t)k; }
    }
    out[len] = '\0';
    close(master);
    ck_assert_msg(sent, "the runs never wrote a checkpoint: %s", out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ^C goes once every run has its first checkpoint (step 10 of 3000), so that no run can have finished
 * before it, however unevenly a loaded machine schedules the four. */
START_TEST(ctrl_c_on_a_terminal_leaves_every_run_resumable)
{
    char dir[512], out[65536];
    snprintf(dir, sizeof dir, "%s/cc", tmp);
    char *argv[] = {bin, "compare", "configs/tiny_rnn.json", "--out", dir, "--seeds", "2", "--jobs", "4",
                    "--variant", "noclip:clip.mode=none", "--variant", "norm:clip.max_norm=0.5",
                    "--set", "train.steps=3000", "--set", "train.checkpoint_every=10", "--set", "train.eval_every=0", NULL};
    static const char *const runs[] = {"noclip-s7", "noclip-s8", "norm-s7", "norm-s8"};
    char ck[4][700];
    char *wait_for[4];
    for (int i = 0; i < 4; i++) {
        snprintf(ck[i], sizeof ck[i], "%s/%s/checkpoint.safetensors", dir, runs[i]);
        wait_for[i] = ck[i];
    }
    int rc = run_on_pty_with_ctrl_c(argv, wait_for, 4, out, sizeof out);
    ck_assert_msg(rc == 130, "exit %d: %s", rc, out);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(exists("%s/%s/summary.json", dir, runs[i]), "%s has no summary.json: %s", runs[i], out);
        ck_assert(exists("%s", ck[i]));
        cJSON *s = load_json("%s/%s/summary.json", dir, runs[i]);
        ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItem(s, "interrupted")), "%s was not interrupted", runs[i]);
        ck_assert(cJSON_GetObjectItem(s, "steps")->valuedouble < 3000);
        cJSON_Delete(s);
    }
    cJSON *rep = load_json("%s/report.json", dir);
    for (int i = 0; i < 4; i++) {
        long long seed = runs[i][strlen(runs[i]) - 1] - '0';
        char name[16];
        snprintf(name, sizeof name, "%.*s", (int)(strlen(runs[i]) - 3), runs[i]);
        ck_assert_str_eq(cJSON_GetObjectItem(report_run(rep, name, seed), "status")->valuestring, "interrupted");
    }
    cJSON_Delete(rep);
    char p[700];
    snprintf(p, sizeof p, "%s/report.md", dir);
    char *md = tu_slurp(p, NULL);
    ck_assert_msg(md && strstr(md, "interrupted at step"), "%s", md ? md : "(no report.md)");
    free(md);
    /* the same command finishes them: each resumes from its checkpoint */
    char cmd_out[16384];
    rc = run(cmd_out, sizeof cmd_out, "compare configs/tiny_rnn.json --out %s --seeds 2 --jobs 4 --variant noclip:clip.mode=none "
             "--variant norm:clip.max_norm=0.5 --set train.steps=3000 --set train.checkpoint_every=10 --set train.eval_every=0", dir);
    ck_assert_msg(rc == 0 && strstr(cmd_out, "4 runs to do (4 resumed)"), "exit %d: %s", rc, cmd_out);
    rep = load_json("%s/report.json", dir);
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(rep, "runs")) {
        ck_assert_str_eq(cJSON_GetObjectItem(r, "status")->valuestring, "finished");
        ck_assert_int_eq((int)cJSON_GetObjectItem(r, "steps")->valuedouble, 3000);
    }
    cJSON_Delete(rep);
}
END_TEST

/* SIGTERM to compare (no terminal): the running run ends cleanly, the queued ones are "not run"; the same
 * command then resumes the one and starts the others. */
START_TEST(sigterm_stops_the_queue_and_extending_finishes_it)
{
    char dir[512], ck[700], log[700], out[16384];
    snprintf(dir, sizeof dir, "%s/term", tmp);
    snprintf(ck, sizeof ck, "%s/a-s7/checkpoint.safetensors", dir);
    snprintf(log, sizeof log, "%s/term.log", tmp);
    const char *args = "compare configs/tiny_rnn.json --seeds 3 --jobs 1 --variant a:clip.max_norm=0.5 "
                       "--set train.steps=3000 --set train.checkpoint_every=100 --set train.eval_every=0";
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "exec '%s' %s --out '%s'", bin, args, dir);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    time_t t0 = time(NULL);
    while (access(ck, F_OK) != 0 && time(NULL) - t0 < 300) usleep(20000);
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    char *text = tu_slurp(log, NULL);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %d: %s", status, text);
    free(text);
    cJSON *rep = load_json("%s/report.json", dir);
    ck_assert_str_eq(cJSON_GetObjectItem(report_run(rep, "a", 7), "status")->valuestring, "interrupted");
    ck_assert_str_eq(cJSON_GetObjectItem(report_run(rep, "a", 8), "status")->valuestring, "not run");
    ck_assert_str_eq(cJSON_GetObjectItem(report_run(rep, "a", 9), "status")->valuestring, "not run");
    ck_assert_int_eq((int)cJSON_GetObjectItem(report_variant(rep, "a"), "not_run")->valuedouble, 2);
    cJSON_Delete(rep);
    ck_assert(exists("%s/a-s7/summary.json", dir) && !exists("%s/a-s8/metrics.csv", dir));
    int rc = run(out, sizeof out, "%s --out %s", args, dir);
    ck_assert_msg(rc == 0 && strstr(out, "3 runs to do (1 resumed)"), "exit %d: %s", rc, out);
    rep = load_json("%s/report.json", dir);
    ck_assert_int_eq((int)cJSON_GetObjectItem(report_variant(rep, "a"), "finished")->valuedouble, 3);
    cJSON_Delete(rep);
}
END_TEST

Suite *suite_compare(void)
{
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("compare");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, sweep_expands_the_cartesian_grid_first_axis_slowest);
    tcase_add_test(tc, sweep_values_keep_their_commas_and_names_are_filesystem_safe);
    tcase_add_test(tc, sweep_refuses_big_grids_and_clashing_names);
    tcase_add_test(tc, compare_sweep_runs_the_grid_after_the_variants);
    tcase_add_test(tc, every_seed_is_validated_before_the_first_run);
    tcase_add_test(tc, jobs_and_sweep_flags_are_checked);
    tcase_add_test(tc, per_tensor_logging_is_on_unless_the_config_says);
    tcase_add_test(tc, rebuilt_report_equals_the_original);
    tcase_add_test(tc, extending_a_compare_runs_only_what_is_missing);
    tcase_add_test(tc, blown_up_and_interrupted_runs_are_flagged_and_not_averaged);
    tcase_add_test(tc, interrupted_seed_is_left_out_of_the_variant_mean);
    tcase_add_test(tc, ctrl_c_on_a_terminal_leaves_every_run_resumable);
    tcase_add_test(tc, sigterm_stops_the_queue_and_extending_finishes_it);
    suite_add_tcase(s, tc);
    return s;
}
