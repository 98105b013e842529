/* Suite "provenance": what a run's rounding depends on is recorded (OpenBLAS core and thread count in
 * summary.json and the checkpoint metadata, `clipnn --version --verbose`), and --resume refuses another
 * thread count unless --allow-thread-change says so (threads 1 and 2 round the products differently). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tensor/pool.h"

static char tmp[256];

static void setup(void)
{
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-prov");
    unsetenv("CLIPNN_AUTO_THREADS");   /* the runs below set it where they mean to */
}
static void teardown(void) { tu_remove_tree(tmp); }

static int clipnn(char *out, size_t n, const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", tu_clipnn_bin(), args);
    return tu_shell(out, n, cmd);
}

START_TEST(summary_and_checkpoint_record_the_blas_core_and_threads)
{
    char out[8192], args[1024], path[512];
    snprintf(args, sizeof args, "train configs/tiny_mlp.json --quiet --set threads=2 --set train.steps=3 --out %s/r", tmp);
    int rc = clipnn(out, sizeof out, args);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(path, sizeof path, "%s/r/summary.json", tmp);
    char *sum = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(sum);
    cJSON *j = cJSON_Parse(sum);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "blas_threads")->valueint, 2);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "blas_core")->valuestring, cn_blas_core());
    ck_assert_msg(strstr(cJSON_GetObjectItem(j, "blas_config")->valuestring, "OpenBLAS"), "%s", sum);
    cJSON_Delete(j);
    free(sum);
    snprintf(path, sizeof path, "%s/r/checkpoint.safetensors", tmp);
    cn_st_file *f;
    ck_assert_ok(cn_st_read(path, &f));
    ck_assert_str_eq(cn_st_meta(f, "blas_threads"), "2");
    ck_assert_str_eq(cn_st_meta(f, "blas_core"), cn_blas_core());
    ck_assert_ptr_nonnull(cn_st_meta(f, "blas_config"));
    cn_st_close(f);
    rc = clipnn(out, sizeof out, "--version --verbose");
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "blas core: ") && strstr(out, cn_blas_core()) && strstr(out, "blas threads: 1"), "%s", out);
}
END_TEST

START_TEST(resume_refuses_another_thread_count_unless_allowed)
{
    char out[8192], args[1024];
    snprintf(args, sizeof args, "train configs/tiny_mlp.json --quiet --set train.steps=3 --out %s/r", tmp);
    int rc = clipnn(out, sizeof out, args);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(args, sizeof args, "train configs/tiny_mlp.json --quiet --set train.steps=5 --set threads=2 "
             "--resume %s/r/checkpoint.safetensors", tmp);
    rc = clipnn(out, sizeof out, args);
    ck_assert_msg(rc == 2 && strstr(out, "threads: the run was trained with 1 thread, the config now says 2") &&
                  strstr(out, "--allow-thread-change"), "exit %d: %s", rc, out);
    /* the refused resume changed nothing: the run is still at step 3 */
    snprintf(args, sizeof args, "%s/r/summary.json", tmp);
    char *sum = tu_slurp(args, NULL);
    ck_assert_msg(sum && strstr(sum, "\"steps\":\t3"), "%s", sum ? sum : "(none)");
    free(sum);
    /* the same thread count resumes; another one with the flag too */
    snprintf(args, sizeof args, "train configs/tiny_mlp.json --quiet --set train.steps=5 --set threads=2 "
             "--allow-thread-change --resume %s/r/checkpoint.safetensors", tmp);
    rc = clipnn(out, sizeof out, args);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(args, sizeof args, "%s/r/summary.json", tmp);
    sum = tu_slurp(args, NULL);
    ck_assert_msg(sum && strstr(sum, "\"steps\":\t5") && strstr(sum, "\"blas_threads\":\t2"), "%s", sum ? sum : "(none)");
    free(sum);
}
END_TEST

/* The thread count a finished run recorded: config.json's resolved "threads" and summary.json's
 * blas_threads, which must agree (-1 if either is missing). */
static int run_threads(const char *dir)
{
    char path[512];
    int n[2] = {-1, -2};
    const char *file[2] = {"config.json", "summary.json"}, *key[2] = {"threads", "blas_threads"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, file[i]);
        char *text = tu_slurp(path, NULL);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        const cJSON *v = j ? cJSON_GetObjectItem(j, key[i]) : NULL;
        if (cJSON_IsNumber(v)) n[i] = v->valueint;
        cJSON_Delete(j);
        free(text);
    }
    return n[0] == n[1] ? n[0] : -1;
}

/* `clipnn train CONFIG --quiet --out tmp/NAME ARGS` with ENV before it; returns the exit code */
static int train_env(char *out, size_t n, const char *env, const char *config, const char *name, const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s '%s' train %s --quiet --out %s/%s %s 2>&1", env, tu_clipnn_bin(), config, tmp, name, args);
    return tu_shell(out, n, cmd);
}

/* "threads": "auto" (the default) gives 2 threads where docs/performance.md measured that 2 pay (a
 * recurrent layer of hidden >= 128 with >= 16 rows, a linear layer of >= 128 x 512 x 512 multiply-adds)
 * on a machine with 2 or more cores, else 1; the count is recorded; an explicit count and
 * CLIPNN_AUTO_THREADS win; bad values are refused. */
START_TEST(threads_auto_follows_the_model_size)
{
    int two = cn_usable_cores() >= 2 ? 2 : 1;
    const char *rnn = "configs/tiny_rnn.json", *mlp = "configs/tiny_mlp.json";
#define BIG_MLP "--set data.train_size=300 --set 'model=[{\"type\":\"linear\",\"out\":512},{\"type\":\"tanh\"}," \
                "{\"type\":\"linear\",\"out\":512},{\"type\":\"tanh\"},{\"type\":\"linear\",\"out\":2}]'"
    struct { const char *env, *config, *args; int want; } cases[] = {
        {"", rnn, "", 1},                                                          /* hidden 8 */
        {"", rnn, "--set model.0.hidden=128 --set train.batch_size=16", two},
        {"", rnn, "--set model.0.type=lstm --set model.0.hidden=128 --set train.batch_size=16 --set threads=auto", two},
        {"", rnn, "--set model.0.hidden=127 --set train.batch_size=16", 1},
        {"", rnn, "--set model.0.hidden=128 --set train.batch_size=15", 1},
        {"", rnn, "--set model.0.hidden=128 --set train.batch_size=16 --set threads=1", 1},
        {"CLIPNN_AUTO_THREADS=1", rnn, "--set model.0.hidden=128 --set train.batch_size=16", 1},
        {"CLIPNN_AUTO_THREADS=3", rnn, "", 3},
        {"CLIPNN_AUTO_THREADS=1", rnn, "--set threads=2", 2},
        {"CLIPNN_AUTO_THREADS=", rnn, "--set model.0.hidden=128 --set train.batch_size=16", two},   /* empty: unset */
        {"", mlp, "", 1},
        {"", mlp, "--set train.batch_size=100", 1},   /* 2 -> 8 -> 2 */
        {"", mlp, BIG_MLP " --set train.batch_size=128", two},   /* 2 -> 512 -> 512 -> 2 */
        {"", mlp, BIG_MLP " --set train.batch_size=127", 1},
    };
    char out[8192], args[2048], name[32], dir[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "r%zu", i);
        snprintf(args, sizeof args, "--set train.steps=2 --set train.eval_every=0 --set train.checkpoint_every=0 "
                 "--set train.log_every=1 %s", cases[i].args);
        int rc = train_env(out, sizeof out, cases[i].env, cases[i].config, name, args);
        ck_assert_msg(rc == 0, "case %zu: exit %d: %s", i, rc, out);
        snprintf(dir, sizeof dir, "%s/%s", tmp, name);
        ck_assert_msg(run_threads(dir) == cases[i].want, "case %zu (%s %s): %d threads, expected %d", i, cases[i].env,
                      cases[i].args, run_threads(dir), cases[i].want);
    }
    const char *bad[][3] = {
        {"", "--set threads=0", "threads: expected \"auto\" or an integer in [1, 256], got 0"},
        {"", "--set threads=two", "threads: expected \"auto\" or an integer in [1, 256], got \"two\""},
        {"", "--set threads=2.5", "threads: expected \"auto\" or an integer in [1, 256], got 2.5"},
        {"CLIPNN_AUTO_THREADS=x", "", "CLIPNN_AUTO_THREADS: expected an integer in [1, 256], got \"x\""},
        {"CLIPNN_AUTO_THREADS=0", "", "CLIPNN_AUTO_THREADS: expected an integer in [1, 256], got \"0\""},
        {"CLIPNN_AUTO_THREADS=+2", "", "CLIPNN_AUTO_THREADS: expected an integer in [1, 256], got \"+2\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(name, sizeof name, "bad%zu", i);
        int rc = train_env(out, sizeof out, bad[i][0], rnn, name, bad[i][1]);
        ck_assert_msg(rc == 2 && strstr(out, bad[i][2]), "bad %zu: exit %d: %s", i, rc, out);
        snprintf(dir, sizeof dir, "%s/%s", tmp, name);
        ck_assert_msg(access(dir, F_OK) != 0, "bad %zu: %s was created", i, dir);
    }
}
END_TEST

/* A resumed run keeps the count it was trained with when its config says "auto", whatever auto would pick
 * now; compare gives each of its parallel runs 1 thread, and a compare one run at a time leaves "auto" be. */
START_TEST(threads_auto_resume_and_compare)
{
    int two = cn_usable_cores() >= 2 ? 2 : 1;
    const char *big = "--set model.0.hidden=128 --set train.batch_size=16 --set train.eval_every=0 --set train.log_every=1";
    char out[8192], args[2048], dir[512];
    snprintf(args, sizeof args, "%s --set train.steps=2 --set train.checkpoint_every=1", big);
    int rc = train_env(out, sizeof out, "", "configs/tiny_rnn.json", "r", args);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(dir, sizeof dir, "%s/r", tmp);
    ck_assert_int_eq(run_threads(dir), two);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "CLIPNN_AUTO_THREADS=%d '%s' train configs/tiny_rnn.json --quiet %s --set train.steps=4 "
             "--set train.checkpoint_every=1 --resume %s/r/checkpoint.safetensors 2>&1", 3 - two, tu_clipnn_bin(), big, tmp);
    rc = tu_shell(out, sizeof out, cmd);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_int_eq(run_threads(dir), two);
    char *sum = NULL;
    snprintf(args, sizeof args, "%s/r/summary.json", tmp);
    sum = tu_slurp(args, NULL);
    ck_assert_msg(sum && strstr(sum, "\"steps\":\t4"), "%s", sum ? sum : "(none)");
    free(sum);

    /* a bad CLIPNN_AUTO_THREADS is refused before compare makes its folder */
    snprintf(cmd, sizeof cmd, "CLIPNN_AUTO_THREADS=many '%s' compare configs/tiny_rnn.json --quiet --seeds 2 --out %s/cbad 2>&1",
             tu_clipnn_bin(), tmp);
    rc = tu_shell(out, sizeof out, cmd);
    ck_assert_msg(rc == 2 && strstr(out, "CLIPNN_AUTO_THREADS: expected an integer in [1, 256], got \"many\""), "exit %d: %s",
                  rc, out);
    snprintf(dir, sizeof dir, "%s/cbad", tmp);
    ck_assert_msg(access(dir, F_OK) != 0, "%s was created", dir);
    for (int jobs = 1; jobs <= 2; jobs++) {
        snprintf(cmd, sizeof cmd, "'%s' compare configs/tiny_rnn.json --quiet --seeds 2 --jobs %d %s --set train.steps=2 "
                 "--set train.checkpoint_every=0 --out %s/c%d 2>&1", tu_clipnn_bin(), jobs, big, tmp, jobs);
        rc = tu_shell(out, sizeof out, cmd);
        ck_assert_msg(rc == 0, "jobs %d: exit %d: %s", jobs, rc, out);
        const char *runs[] = {"config-s7", "config-s8", "noclip-s7", "noclip-s8"};   /* seeds from the config's 7 */
        for (int k = 0; k < 4; k++) {
            snprintf(dir, sizeof dir, "%s/c%d/%s", tmp, jobs, runs[k]);
            ck_assert_msg(run_threads(dir) == (jobs == 1 ? two : 1), "jobs %d, %s: %d threads", jobs, runs[k],
                          run_threads(dir));
        }
    }
}
END_TEST

Suite *suite_provenance(void)
{
    Suite *s = suite_create("provenance");
    TCase *tc = tcase_create("provenance");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, summary_and_checkpoint_record_the_blas_core_and_threads);
    tcase_add_test(tc, resume_refuses_another_thread_count_unless_allowed);
    tcase_add_test(tc, threads_auto_follows_the_model_size);
    tcase_add_test(tc, threads_auto_resume_and_compare);
    suite_add_tcase(s, tc);
    return s;
}
