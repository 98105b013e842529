/* Suite "provenance": what a run's rounding depends on is recorded (OpenBLAS core and thread count in
 * summary.json and the checkpoint metadata, `clipnn --version --verbose`), and --resume refuses another
 * thread count unless --allow-thread-change says so (threads 1 and 2 round the products differently). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmp[256];

static void setup(void) { tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-prov"); }
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

Suite *suite_provenance(void)
{
    Suite *s = suite_create("provenance");
    TCase *tc = tcase_create("provenance");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, summary_and_checkpoint_record_the_blas_core_and_threads);
    tcase_add_test(tc, resume_refuses_another_thread_count_unless_allowed);
    suite_add_tcase(s, tc);
    return s;
}
