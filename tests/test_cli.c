/* End-to-end tests of the clipnn program (built by `make test`; its path is in
 * CLIPNN_BIN). Each test works in its own temporary directory. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char bin[2048], tmp[256];

static void setup(void)
{
    snprintf(bin, sizeof bin, "%s", tu_clipnn_bin());
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-cli");
}

static void teardown(void) { tu_remove_tree(tmp); }

/* Runs clipnn with args (a shell fragment); returns the exit code; output (stdout+stderr) in out. */
#define run(out, n, ...) tu_run_clipnn(out, n, NULL, __VA_ARGS__)

static char *slurp(const char *path) { return tu_slurp(path, NULL); }

static int exists(const char *dir, const char *file)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return access(p, F_OK) == 0;
}

/* Column `col` (0-based) of every data row of a CSV, joined with '|'. */
static char *csv_columns(const char *path, const int *cols, int ncols)
{
    char *s = slurp(path);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    char *out = calloc(strlen(s) + 1, 1);
    char *save = NULL;
    int line = 0;
    for (char *ln = strtok_r(s, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save), line++) {
        if (line == 0) continue;
        int c = 0;
        char *start = ln;
        for (char *p = ln;; p++) {
            if (*p == ',' || *p == 0) {
                for (int k = 0; k < ncols; k++)
                    if (cols[k] == c) { strncat(out, start, (size_t)(p - start)); strcat(out, "|"); }
                if (*p == 0) break;
                c++;
                start = p + 1;
            }
        }
        strcat(out, "\n");
    }
    free(s);
    return out;
}

START_TEST(train_writes_every_run_file)
{
    char out[8192], dir[512];
    snprintf(dir, sizeof dir, "%s/run", tmp);
    int rc = run(out, sizeof out, "train configs/tiny_rnn.json --out %s --quiet", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    const char *files[] = {"config.json", "metrics.csv", "eval.csv", "summary.json", "checkpoint.safetensors"};
    for (int i = 0; i < 5; i++) ck_assert_msg(exists(dir, files[i]), "missing %s", files[i]);
    char p[1024];
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    char *m = slurp(p);
    const char *hdr = "step,epoch,loss,lr,grad_norm_pre,grad_norm_post,clip_coef,clip_threshold,clipped,"
                      "grad_max_abs,nonfinite,skipped,time_ms\n";
    ck_assert_msg(!strncmp(m, hdr, strlen(hdr)), "header: %.200s", m);
    int rows = 0;
    for (char *q = m; *q; q++) rows += *q == '\n';
    ck_assert_int_eq(rows, 31);
    free(m);
    snprintf(p, sizeof p, "%s/eval.csv", dir);
    char *e = slurp(p);
    ck_assert(!strncmp(e, "step,test_loss,test_metric\n10,", 30));
    free(e);
    snprintf(p, sizeof p, "%s/summary.json", dir);
    char *sj = slurp(p);
    cJSON *j = cJSON_Parse(sj);
    ck_assert_ptr_nonnull(j);
    const char *keys[] = {"name", "steps", "final_loss", "test_loss", "test_metric", "diverged", "diverged_at_step",
                          "clip_frac", "max_grad_norm_pre", "skipped_steps", "wall_s", "steps_per_s"};
    for (int i = 0; i < 12; i++) ck_assert_msg(cJSON_HasObjectItem(j, keys[i]), "summary lacks %s", keys[i]);
    ck_assert_int_eq((int)cJSON_GetObjectItem(j, "steps")->valuedouble, 30);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "diverged")));
    cJSON_Delete(j);
    free(sj);
    /* the resolved config has every default filled in and reproduces the run alone */
    snprintf(p, sizeof p, "%s/config.json", dir);
    char *cj = slurp(p);
    cJSON *c = cJSON_Parse(cj);
    ck_assert_ptr_nonnull(c);
    cJSON *opt = cJSON_GetObjectItem(c, "optimizer");
    ck_assert(cJSON_HasObjectItem(opt, "betas") && cJSON_HasObjectItem(opt, "eps"));
    ck_assert(cJSON_HasObjectItem(cJSON_GetObjectItem(c, "train"), "grad_accum"));
    cJSON_Delete(c);
    free(cj);
}
END_TEST

/* Trains tiny_rnn twice (the second run with extra arguments) and returns the given metrics.csv columns. */
static void two_runs_columns(const char *extra, const int *cols, int ncols, char **a, char **b)
{
    char out[8192], d1[512], d2[512], p1[1024], p2[1024];
    snprintf(d1, sizeof d1, "%s/a", tmp);
    snprintf(d2, sizeof d2, "%s/b", tmp);
    ck_assert_int_eq(run(out, sizeof out, "train configs/tiny_rnn.json --out %s --quiet", d1), 0);
    ck_assert_int_eq(run(out, sizeof out, "train configs/tiny_rnn.json --out %s --quiet %s", d2, extra), 0);
    snprintf(p1, sizeof p1, "%s/metrics.csv", d1);
    snprintf(p2, sizeof p2, "%s/metrics.csv", d2);
    *a = csv_columns(p1, cols, ncols);
    *b = csv_columns(p2, cols, ncols);
}

START_TEST(same_seed_gives_identical_metrics)
{
    int cols[] = {0, 2, 4, 5, 6};   /* step, loss, grad_norm_pre, grad_norm_post, clip_coef */
    char *a, *b;
    two_runs_columns("", cols, 5, &a, &b);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
}
END_TEST

START_TEST(different_seed_changes_the_run)
{
    int cols[] = {2};
    char *a, *b;
    two_runs_columns("--set seed=8", cols, 1, &a, &b);
    ck_assert_str_ne(a, b);
    free(a);
    free(b);
}
END_TEST

START_TEST(divergence_stops_with_exit_3)
{
    char out[8192], dir[512], p[1024];
    snprintf(dir, sizeof dir, "%s/div", tmp);
    int rc = run(out, sizeof out,
                 "train configs/tiny_rnn.json --out %s --quiet --set optimizer.type=sgd --set optimizer.lr=1e30 "
                 "--set clip.mode=none --set clip.on_nonfinite=stop", dir);
    ck_assert_msg(rc == 3, "exit %d: %s", rc, out);
    snprintf(p, sizeof p, "%s/summary.json", dir);
    char *sj = slurp(p);
    ck_assert_ptr_nonnull(sj);
    cJSON *j = cJSON_Parse(sj);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "diverged")));
    cJSON *at = cJSON_GetObjectItem(j, "diverged_at_step");
    ck_assert(cJSON_IsNumber(at) && at->valuedouble >= 1 && at->valuedouble < 30);
    ck_assert(exists(dir, "checkpoint.safetensors") && exists(dir, "metrics.csv") && exists(dir, "eval.csv"));
    cJSON_Delete(j);
    free(sj);
}
END_TEST

START_TEST(resume_is_bit_identical)
{
    char out[8192], d1[512], d2[512], p1[1024], p2[1024];
    snprintf(d1, sizeof d1, "%s/full", tmp);
    snprintf(d2, sizeof d2, "%s/part", tmp);
    ck_assert_int_eq(run(out, sizeof out, "train configs/tiny_rnn.json --out %s --quiet", d1), 0);
    ck_assert_int_eq(run(out, sizeof out, "train configs/tiny_rnn.json --out %s --quiet --set train.steps=12", d2), 0);
    snprintf(p2, sizeof p2, "%s/checkpoint.safetensors", d2);
    int rc = run(out, sizeof out, "train configs/tiny_rnn.json --quiet --resume %s", p2);
    ck_assert_msg(rc == 0, "resume exit %d: %s", rc, out);
    /* the resumed run continued in its own directory: same metrics rows and the same final weights */
    int cols[] = {0, 2, 4, 5, 6};
    snprintf(p1, sizeof p1, "%s/metrics.csv", d1);
    snprintf(p2, sizeof p2, "%s/metrics.csv", d2);
    char *a = csv_columns(p1, cols, 5), *b = csv_columns(p2, cols, 5);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    snprintf(p1, sizeof p1, "%s/checkpoint.safetensors", d1);
    snprintf(p2, sizeof p2, "%s/checkpoint.safetensors", d2);
    char *c1 = slurp(p1), *c2 = slurp(p2);
    ck_assert_ptr_nonnull(c1);
    ck_assert_ptr_nonnull(c2);
    /* tensor data equal: compare the files after their JSON headers */
    uint64_t h1, h2;
    memcpy(&h1, c1, 8);
    memcpy(&h2, c2, 8);
    FILE *f1 = fopen(p1, "rb"), *f2 = fopen(p2, "rb");
    fseek(f1, 0, SEEK_END);
    fseek(f2, 0, SEEK_END);
    long n1 = ftell(f1) - 8 - (long)h1, n2 = ftell(f2) - 8 - (long)h2;
    fclose(f1);
    fclose(f2);
    ck_assert_int_eq(n1, n2);
    ck_assert_msg(memcmp(c1 + 8 + h1, c2 + 8 + h2, (size_t)n1) == 0, "checkpoint tensors differ after resume");
    free(c1);
    free(c2);
}
END_TEST

/* Bad input: exit 2 and a message naming the place. */
static const struct { const char *args; const char *needle; } bad_cases[] = {
    {"train configs/does_not_exist.json", "does_not_exist.json"},
    {"train configs/tiny_rnn.json --set optimizer.lr=-1", "optimizer.lr"},
    {"train configs/tiny_rnn.json --set optimizer.lr=fast", "optimizer.lr: expected a number > 0, got \"fast\""},
    {"train configs/tiny_rnn.json --set clip.max_norm=0", "clip.max_norm"},
    {"train configs/tiny_rnn.json --set clip.mode=bogus", "bogus"},
    {"train configs/tiny_rnn.json --set train.stpes=3", "train.stpes"},
    {"train configs/tiny_rnn.json --set model.0.hidden=0", "model.0.hidden"},
    {"train configs/tiny_rnn.json --set model.1.out=3", "model"},
    {"train configs/tiny_rnn.json --set loss=cross_entropy", "loss"},
    {"train configs/tiny_rnn.json --set data.kind=nope", "data.kind"},
    {"train configs/tiny_rnn.json --set learning_rate=3", "learning_rate"},
    {"train configs/tiny_rnn.json --bogus", "--bogus"},
    {"train", "CONFIG"},
    {"frobnicate", "frobnicate"},
    {"eval configs/tiny_rnn.json", "--checkpoint"},
};

START_TEST(bad_input_exits_2_naming_the_place)
{
    char out[8192];
    int rc = run(out, sizeof out, "%s --out %s/bad%d", bad_cases[_i].args, tmp, _i);
    ck_assert_msg(rc == 2, "'%s' exited %d: %s", bad_cases[_i].args, rc, out);
    ck_assert_msg(strstr(out, bad_cases[_i].needle) != NULL, "'%s': message lacks '%s': %s", bad_cases[_i].args,
                  bad_cases[_i].needle, out);
    /* no half-made run directory */
    char d[600];
    snprintf(d, sizeof d, "%s/bad%d", tmp, _i);
    ck_assert_msg(access(d, F_OK) != 0, "'%s' created %s", bad_cases[_i].args, d);
}
END_TEST

START_TEST(eval_reads_a_checkpoint)
{
    char out[8192], dir[512];
    snprintf(dir, sizeof dir, "%s/mlp", tmp);
    ck_assert_int_eq(run(out, sizeof out, "train configs/tiny_mlp.json --out %s --quiet", dir), 0);
    int rc = run(out, sizeof out, "eval configs/tiny_mlp.json --checkpoint %s/checkpoint.safetensors", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "accuracy:") != NULL, "%s", out);
}
END_TEST

START_TEST(help_and_version)
{
    char out[8192];
    ck_assert_int_eq(run(out, sizeof out, "--version"), 0);
    ck_assert(strstr(out, "clipnn ") != NULL);
    const char *cmds[] = {"train", "compare", "eval", "sample"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(run(out, sizeof out, "%s --help", cmds[i]), 0);
        ck_assert_msg(strstr(out, "example") != NULL, "%s --help has no example", cmds[i]);
    }
}
END_TEST

/* The exploding-gradient example, shortened: without clipping it diverges, with norm clipping it stays finite. */
START_TEST(explode_example_diverges_without_clipping_only)
{
    char out[8192], d1[512], d2[512], p[1024];
    snprintf(d1, sizeof d1, "%s/noclip", tmp);
    snprintf(d2, sizeof d2, "%s/norm", tmp);
    const char *shorten = "--set train.steps=300 --set train.eval_every=0 --set data.train_size=2000 --set data.test_size=100";
    int rc = run(out, sizeof out, "train ../examples/rnn_adding_explode.json --quiet --out %s %s --set clip.mode=none", d1, shorten);
    ck_assert_msg(rc == 3, "noclip exit %d: %s", rc, out);
    rc = run(out, sizeof out, "train ../examples/rnn_adding_explode.json --quiet --out %s %s", d2, shorten);
    ck_assert_msg(rc == 0, "norm exit %d: %s", rc, out);
    snprintf(p, sizeof p, "%s/summary.json", d1);
    char *a = slurp(p);
    snprintf(p, sizeof p, "%s/summary.json", d2);
    char *b = slurp(p);
    cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(ja, "diverged")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(jb, "diverged")));
    ck_assert_int_eq((int)cJSON_GetObjectItem(jb, "steps")->valuedouble, 300);
    cJSON *fl = cJSON_GetObjectItem(jb, "final_loss");
    ck_assert(cJSON_IsNumber(fl) && fl->valuedouble < 0.2);
    ck_assert(cJSON_GetObjectItem(jb, "clip_frac")->valuedouble > 0.0);   /* clipping did something */
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    free(a);
    free(b);
}
END_TEST

START_TEST(compare_runs_every_variant_and_writes_the_report)
{
    char out[16384], dir[512], p[1024];
    snprintf(dir, sizeof dir, "%s/cmp", tmp);
    int rc = run(out, sizeof out,
                 "compare configs/tiny_rnn.json --out %s --seeds 2 --variant noclip:clip.mode=none "
                 "--variant 'blowup:clip.mode=none,optimizer.type=sgd,optimizer.lr=1e30' "
                 "--variant 'tight:clip.max_norm=0.1,optimizer.betas=[0.9,0.99]'", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    const char *runs[] = {"noclip-s7", "noclip-s8", "blowup-s7", "blowup-s8", "tight-s7", "tight-s8"};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, runs[i]);
        ck_assert_msg(exists(p, "summary.json"), "missing %s/summary.json", runs[i]);
    }
    ck_assert(exists(dir, "report.md") && exists(dir, "report.html"));
    snprintf(p, sizeof p, "%s/report.md", dir);
    char *md = slurp(p);
    ck_assert_msg(strstr(md, "| noclip") && strstr(md, "| blowup") && strstr(md, "| tight"), "%s", md);
    ck_assert_msg(strstr(md, "2/2") != NULL, "the diverged variant is not counted: %s", md);
    free(md);
    /* the variant's betas (a value with a comma) reached the run as one value */
    snprintf(p, sizeof p, "%s/tight-s7/config.json", dir);
    char *cj = slurp(p);
    cJSON *c = cJSON_Parse(cj);
    cJSON *betas = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "optimizer"), "betas");
    ck_assert_int_eq(cJSON_GetArraySize(betas), 2);
    ck_assert_near(cJSON_GetArrayItem(betas, 1)->valuedouble, 0.99, 1e-12);
    ck_assert_near(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "clip"), "max_norm")->valuedouble, 0.1, 1e-12);
    cJSON_Delete(c);
    free(cj);
}
END_TEST

START_TEST(compare_rejects_a_bad_variant_before_running)
{
    char out[8192], dir[512];
    snprintf(dir, sizeof dir, "%s/cmpbad", tmp);
    int rc = run(out, sizeof out, "compare configs/tiny_rnn.json --out %s --variant 'x:clip.max_norm=-1'", dir);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "clip.max_norm") && strstr(out, "\"x\""), "%s", out);
    ck_assert(access(dir, F_OK) != 0);
}
END_TEST

/* --resume continues the same run: a changed config, a finished run or another run's directory are refused. */
START_TEST(resume_refuses_what_would_not_continue_the_run)
{
    char out[8192], d1[512], d2[512], ck[1024];
    snprintf(d1, sizeof d1, "%s/a", tmp);
    snprintf(d2, sizeof d2, "%s/b", tmp);
    ck_assert_int_eq(run(out, sizeof out, "train configs/tiny_rnn.json --out %s --quiet --set train.steps=12", d1), 0);
    ck_assert_int_eq(run(out, sizeof out, "train configs/tiny_mlp.json --out %s --quiet", d2), 0);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", d1);
    int rc = run(out, sizeof out, "train configs/tiny_rnn.json --quiet --resume %s --set optimizer.lr=0.5", ck);
    ck_assert_msg(rc == 2 && strstr(out, "optimizer.lr") && strstr(out, "init_from"), "exit %d: %s", rc, out);
    rc = run(out, sizeof out, "train configs/tiny_rnn.json --resume %s --set train.steps=12", ck);
    ck_assert_msg(rc == 0 && strstr(out, "nothing to do"), "exit %d: %s", rc, out);
    rc = run(out, sizeof out, "train configs/tiny_rnn.json --quiet --resume %s --set train.steps=5", ck);
    ck_assert_msg(rc == 2 && strstr(out, "beyond train.steps"), "exit %d: %s", rc, out);
    char p[1024];
    snprintf(p, sizeof p, "%s/metrics.csv", d2);
    char *before = slurp(p);
    rc = run(out, sizeof out, "train configs/tiny_rnn.json --quiet --resume %s --out %s", ck, d2);
    ck_assert_msg(rc == 2 && strstr(out, "already holds a run"), "exit %d: %s", rc, out);
    char *after = slurp(p);
    ck_assert_str_eq(before, after);   /* the other run's log is untouched */
    free(before);
    free(after);
    /* the allowed changes: more steps, another log cadence */
    rc = run(out, sizeof out, "train configs/tiny_rnn.json --quiet --resume %s --set train.eval_every=5", ck);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
}
END_TEST

START_TEST(set_rejects_bad_paths_and_names)
{
    static const char *const cases[][2] = {
        {"--set model.4294967296.out=7", "model"},
        {"--set model.-1.out=7", "model"},
        {"--set clip..max_norm=1", "empty component"},
        {"--set .clip=1", "empty component"},
        {"--set name=../../escape", "name"},
        {"--set name=", "name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[8192];
        int rc = run(out, sizeof out, "train configs/tiny_rnn.json --quiet --out %s/x%zu %s", tmp, i, cases[i][0]);
        ck_assert_msg(rc == 2 && strstr(out, cases[i][1]), "'%s' exited %d: %s", cases[i][0], rc, out);
    }
}
END_TEST

START_TEST(compare_variant_may_set_its_seed)
{
    char out[16384], dir[512], p[1024];
    snprintf(dir, sizeof dir, "%s/cmpseed", tmp);
    int rc = run(out, sizeof out, "compare configs/tiny_mlp.json --quiet --out %s --variant a:seed=99 --variant b:clip.mode=none", dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(p, sizeof p, "%s/a/config.json", dir);
    char *cj = slurp(p);
    cJSON *c = cJSON_Parse(cj);
    ck_assert_int_eq((int)cJSON_GetObjectItem(c, "seed")->valuedouble, 99);
    cJSON_Delete(c);
    free(cj);
}
END_TEST

/* scripts/replace_block.sh, which make bench and make figures write the README's measured blocks with:
 * the lines between the markers replaced, everything else and the file's mode kept; a file without both
 * markers once each, in order, refused and left as it was. */
START_TEST(replace_block_script_rewrites_only_between_markers)
{
    char path[512], body[512], cmd[2048], out[4096];
    snprintf(path, sizeof path, "%s/doc.md", tmp);
    snprintf(body, sizeof body, "%s/body", tmp);
    const char *doc = "# Title\nbefore\n<!-- bench:x -->\nold 1\nold 2\n<!-- /bench:x -->\nafter\n<!-- bench:y -->\nkept\n<!-- /bench:y -->\n";
    tu_write_text(path, doc);
    ck_assert_int_eq(chmod(path, 0640), 0);
    tu_write_text(body, "new | 1\n\nnew 2\n");
    snprintf(cmd, sizeof cmd, "../scripts/replace_block.sh '%s' bench:x '%s' 2>&1", path, body);
    int rc = tu_shell(out, sizeof out, cmd);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char *got = slurp(path);
    ck_assert_str_eq(got, "# Title\nbefore\n<!-- bench:x -->\nnew | 1\n\nnew 2\n<!-- /bench:x -->\nafter\n<!-- bench:y -->\nkept\n<!-- /bench:y -->\n");
    free(got);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    const char *bad[][2] = {
        {"a\n<!-- bench:x -->\nb\n", "needs one <!-- bench:x --> and one <!-- /bench:x --> line (found 1 and 0)"},
        {"a\n<!-- /bench:x -->\nb\n<!-- bench:x -->\n", "<!-- /bench:x --> comes before <!-- bench:x -->"},
        {"<!-- bench:x -->\n<!-- /bench:x -->\n<!-- bench:x -->\n<!-- /bench:x -->\n", "(found 2 and 2)"},
        {"text <!-- bench:x -->\n<!-- /bench:x -->\n", "(found 0 and 1)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_text(path, bad[i][0]);
        rc = tu_shell(out, sizeof out, cmd);
        ck_assert_msg(rc == 1 && strstr(out, bad[i][1]) && strstr(out, path), "case %zu: exit %d: %s", i, rc, out);
        got = slurp(path);
        ck_assert_str_eq(got, bad[i][0]);
        free(got);
    }
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c doc.md", tmp);   /* no temporary file left beside it */
    tu_shell(out, sizeof out, cmd);
    ck_assert_str_eq(out, "1\n");
}
END_TEST

Suite *suite_cli(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("train");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, train_writes_every_run_file);
    tcase_add_test(tc, same_seed_gives_identical_metrics);
    tcase_add_test(tc, different_seed_changes_the_run);
    tcase_add_test(tc, divergence_stops_with_exit_3);
    tcase_add_test(tc, resume_is_bit_identical);
    tcase_add_loop_test(tc, bad_input_exits_2_naming_the_place, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, eval_reads_a_checkpoint);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, explode_example_diverges_without_clipping_only);
    tcase_add_test(tc, compare_runs_every_variant_and_writes_the_report);
    tcase_add_test(tc, compare_rejects_a_bad_variant_before_running);
    tcase_add_test(tc, resume_refuses_what_would_not_continue_the_run);
    tcase_add_test(tc, set_rejects_bad_paths_and_names);
    tcase_add_test(tc, compare_variant_may_set_its_seed);
    tcase_add_test(tc, replace_block_script_rewrites_only_between_markers);
    suite_add_tcase(s, tc);
    return s;
}
