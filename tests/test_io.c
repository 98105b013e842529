/* src/io/files.c and the JSON file helpers: the shared whole-file reader, mkdir -p, the atomic
 * writer, in-place CSV truncation on resume, number formatting, and duplicate-key detection.
 * Each test works in a fresh directory under /tmp. */
#include "testutil.h"
#include "io/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tdir[256];

static void setup(void) { tu_make_tmpdir(tdir, sizeof tdir, "/tmp", "cn_io"); }
static void teardown(void) { tu_remove_tree(tdir); }

static const char *tpath(const char *name)
{
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tdir, name);
    return p[k];
}

static void write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(s, 1, strlen(s), f), strlen(s));
    ck_assert_int_eq(fclose(f), 0);
}

/* Number of entries in tdir (to see that no temporary file stays behind). */
static int entries(void)
{
    DIR *d = opendir(tdir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

#define ck_assert_msg_has(needle) \
    ck_assert_msg(strstr(cn_errmsg(), needle) != NULL, "message \"%s\" lacks \"%s\"", cn_errmsg(), needle)

/* ---- cn_read_file ---- */

START_TEST(read_file_returns_contents_nul_terminated)
{
    write_text(tpath("a.txt"), "hello\nworld");
    char *b;
    size_t n;
    ck_assert_ok(cn_read_file(tpath("a.txt"), 100, &b, &n));
    ck_assert_uint_eq(n, 11);
    ck_assert_str_eq(b, "hello\nworld");
    cn_free(b);
}
END_TEST

START_TEST(read_file_of_exactly_max_bytes_succeeds)
{
    write_text(tpath("a.txt"), "0123456789");
    char *b;
    size_t n;
    ck_assert_ok(cn_read_file(tpath("a.txt"), 10, &b, &n));
    ck_assert_uint_eq(n, 10);
    cn_free(b);
}
END_TEST

START_TEST(read_file_larger_than_max_is_arg_error)
{
    write_text(tpath("a.txt"), "0123456789x");
    char *b = (char *)1;
    size_t n = 7;
    ck_assert_int_eq(cn_read_file(tpath("a.txt"), 10, &b, &n), CN_ERR_ARG);
    ck_assert_ptr_null(b);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg_has(tpath("a.txt"));
    ck_assert_msg_has("file larger than 10 bytes");
}
END_TEST

START_TEST(read_file_missing_is_io_error_with_reason)
{
    char *b;
    size_t n;
    ck_assert_int_eq(cn_read_file(tpath("nope.txt"), 100, &b, &n), CN_ERR_IO);
    ck_assert_msg_has(tpath("nope.txt"));
    ck_assert_msg_has("cannot open: No such file");
}
END_TEST

START_TEST(read_file_directory_is_io_error)
{
    char *b;
    size_t n;
    ck_assert_int_eq(cn_read_file(tdir, 100, &b, &n), CN_ERR_IO);
    ck_assert_msg_has("is a directory");
}
END_TEST

/* A FIFO with no writer used to block open() forever; with or without a writer it is refused at
 * once, as is a device. (Check's per-test timeout turns a hang into a failure.) */
START_TEST(read_file_refuses_a_fifo_and_a_device_without_blocking)
{
    const char *fifo = tpath("fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    char *b = NULL;
    size_t n = 1;
    ck_assert_int_eq(cn_read_file(fifo, 1000, &b, &n), CN_ERR_ARG);
    ck_assert_msg_has(fifo);
    ck_assert_msg_has("not a regular file (a FIFO or pipe)");
    ck_assert_ptr_null(b);
    ck_assert_uint_eq(n, 0);
    /* with a writer holding it open: still refused (a pipe has no end the reader can rely on) */
    int wfd = open(fifo, O_RDWR);   /* O_RDWR: a FIFO end that does not wait for a reader */
    ck_assert_int_ge(wfd, 0);
    ck_assert_int_eq(write(wfd, "{}", 2), 2);
    ck_assert_int_eq(cn_read_file(fifo, 1000, &b, &n), CN_ERR_ARG);
    close(wfd);
    ck_assert_int_eq(cn_read_file("/dev/zero", 1000, &b, &n), CN_ERR_ARG);
    ck_assert_msg_has("/dev/zero: not a regular file (a device)");
}
END_TEST

/* A regular file whose size is not known up front (procfs reports 0) is read to its end. */
START_TEST(read_file_reads_a_file_with_no_size_up_front)
{
    char *b = NULL;
    size_t n = 0;
    ck_assert_ok(cn_read_file("/proc/self/maps", CN_READ_UNLIMITED, &b, &n));
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(strlen(b), n);
    ck_assert_ptr_nonnull(strstr(b, "\n"));
    cn_free(b);
}
END_TEST

/* The descriptor cn_open_input returns reads like one from a plain open(): blocking mode. */
START_TEST(open_input_returns_a_blocking_descriptor)
{
    write_text(tpath("a.txt"), "abc");
    int fd = -1;
    ck_assert_ok(cn_open_input(tpath("a.txt"), &fd));
    ck_assert_int_ge(fd, 0);
    int fl = fcntl(fd, F_GETFL);
    ck_assert_int_ge(fl, 0);
    ck_assert_int_eq(fl & O_NONBLOCK, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    close(fd);
}
END_TEST

/* ---- JSON files ---- */

START_TEST(json_load_missing_file_is_arg_error)
{
    cJSON *j = NULL;
    ck_assert_int_eq(cn_json_load_file(tpath("none.json"), &j), CN_ERR_ARG);
    ck_assert_msg_has("none.json: cannot open");
}
END_TEST

START_TEST(json_load_directory_is_arg_error)
{
    cJSON *j = NULL;
    ck_assert_int_eq(cn_json_load_file(tdir, &j), CN_ERR_ARG);
    ck_assert_msg_has("is a directory");
}
END_TEST

START_TEST(json_load_reads_an_object)
{
    write_text(tpath("c.json"), "{\"a\": [1, 2]}\n");
    cJSON *j = NULL;
    ck_assert_ok(cn_json_load_file(tpath("c.json"), &j));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "a")), 2);
    cJSON_Delete(j);
}
END_TEST

static const char *const opt_keys[] = {"name", "lr", NULL};

START_TEST(check_keys_reports_a_repeated_key_with_its_path)
{
    cJSON *j = cJSON_Parse("{\"name\": \"sgd\", \"lr\": 0.1, \"lr\": 0.5}");
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cn_json_check_keys(j, "optimizer", opt_keys), CN_ERR_ARG);
    ck_assert_str_eq(cn_errmsg(), "optimizer.lr: appears twice");
    ck_assert_int_eq(cn_json_check_keys(j, "", opt_keys), CN_ERR_ARG);
    ck_assert_str_eq(cn_errmsg(), "lr: appears twice");
    cJSON_Delete(j);
}
END_TEST

START_TEST(check_keys_accepts_distinct_known_keys)
{
    cJSON *j = cJSON_Parse("{\"name\": \"sgd\", \"lr\": 0.1}");
    ck_assert_ptr_nonnull(j);
    ck_assert_ok(cn_json_check_keys(j, "optimizer", opt_keys));
    cJSON_Delete(j);
}
END_TEST

/* ---- cn_mkdirs ---- */

START_TEST(mkdirs_creates_nested_directories)
{
    ck_assert_ok(cn_mkdirs(tpath("a/b/c")));
    struct stat sb;
    ck_assert_int_eq(stat(tpath("a/b/c"), &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_ok(cn_mkdirs(tpath("a/b/c")));   /* existing: fine */
}
END_TEST

START_TEST(mkdirs_on_a_regular_file_is_arg_error)
{
    write_text(tpath("f"), "x");
    ck_assert_int_eq(cn_mkdirs(tpath("f")), CN_ERR_ARG);
    ck_assert_msg_has("exists and is not a directory");
}
END_TEST

START_TEST(mkdirs_under_a_regular_file_is_io_error)
{
    write_text(tpath("f"), "x");
    ck_assert_int_eq(cn_mkdirs(tpath("f/sub")), CN_ERR_IO);
    ck_assert_msg_has("cannot create directory");
}
END_TEST

/* ---- atomic writes ---- */

START_TEST(write_file_atomic_replaces_and_leaves_no_temporary)
{
    write_text(tpath("out.txt"), "old contents");
    ck_assert_ok(cn_write_file_atomic(tpath("out.txt"), "new", 3));
    char *s = tu_slurp(tpath("out.txt"), NULL);
    ck_assert_str_eq(s, "new");
    free(s);
    ck_assert_int_eq(entries(), 1);
}
END_TEST

START_TEST(write_json_atomic_ends_with_a_newline)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "a", 1);
    ck_assert_ok(cn_write_json_atomic(tpath("j.json"), j));
    cJSON_Delete(j);
    size_t n;
    char *s = tu_slurp(tpath("j.json"), &n);
    ck_assert_uint_gt(n, 2);
    ck_assert_int_eq(s[0], '{');
    ck_assert_int_eq(s[n - 1], '\n');
    ck_assert_int_eq(s[n - 2], '}');
    free(s);
}
END_TEST

START_TEST(atomic_abort_keeps_the_old_file_and_removes_the_temporary)
{
    write_text(tpath("out.txt"), "old");
    cn_atomic_file af;
    ck_assert_ok(cn_atomic_open(&af, tpath("out.txt")));
    ck_assert_ok(cn_atomic_write(&af, "partial", 7));
    ck_assert_int_eq(entries(), 2);   /* the temporary exists while writing */
    cn_atomic_abort(&af);
    cn_atomic_abort(&af);   /* a second abort is a no-op */
    ck_assert_int_eq(entries(), 1);
    char *s = tu_slurp(tpath("out.txt"), NULL);
    ck_assert_str_eq(s, "old");
    free(s);
}
END_TEST

START_TEST(atomic_open_in_a_missing_directory_is_io_error)
{
    cn_atomic_file af;
    ck_assert_int_eq(cn_atomic_open(&af, tpath("no/dir/x")), CN_ERR_IO);
    ck_assert_msg_has("cannot create temporary file");
    ck_assert_msg_has("No such file");
    cn_atomic_abort(&af);   /* released already: a no-op */
    ck_assert_int_eq(entries(), 0);
}
END_TEST

/* ---- cn_csv_truncate_steps ---- */

START_TEST(csv_truncate_keeps_header_and_rows_up_to_max_step)
{
    write_text(tpath("m.csv"), "step,loss\n1,0.5\n2,0.4\n3,0.3\n4,0.2\n");
    ck_assert_ok(cn_csv_truncate_steps(tpath("m.csv"), 2));
    char *s = tu_slurp(tpath("m.csv"), NULL);
    ck_assert_str_eq(s, "step,loss\n1,0.5\n2,0.4\n");
    free(s);
}
END_TEST

START_TEST(csv_truncate_drops_a_torn_last_line)
{
    write_text(tpath("m.csv"), "step,loss\n1,0.5\n2,0.4\n3,0.");
    ck_assert_ok(cn_csv_truncate_steps(tpath("m.csv"), 10));
    char *s = tu_slurp(tpath("m.csv"), NULL);
    ck_assert_str_eq(s, "step,loss\n1,0.5\n2,0.4\n");
    free(s);
}
END_TEST

START_TEST(csv_truncate_keeps_the_header_when_no_row_is_kept)
{
    write_text(tpath("m.csv"), "step,loss\n5,0.5\n6,0.4\n");
    ck_assert_ok(cn_csv_truncate_steps(tpath("m.csv"), 0));
    char *s = tu_slurp(tpath("m.csv"), NULL);
    ck_assert_str_eq(s, "step,loss\n");
    free(s);
}
END_TEST

START_TEST(csv_truncate_leaves_a_complete_file_unchanged)
{
    const char *text = "step,loss\n1,0.5\n2,0.4\n";
    write_text(tpath("m.csv"), text);
    ck_assert_ok(cn_csv_truncate_steps(tpath("m.csv"), 2));
    char *s = tu_slurp(tpath("m.csv"), NULL);
    ck_assert_str_eq(s, text);
    free(s);
}
END_TEST

START_TEST(csv_truncate_of_a_missing_file_is_ok)
{
    ck_assert_ok(cn_csv_truncate_steps(tpath("none.csv"), 3));
    ck_assert_int_eq(entries(), 0);
}
END_TEST

/* Rows cross the 64 KiB read chunks: the cut lands at the exact start of the first row past max. */
START_TEST(csv_truncate_cuts_at_the_right_byte_across_read_chunks)
{
    FILE *f = fopen(tpath("m.csv"), "wb");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "step,loss,pad\n");
    long keep_end = 0;
    for (int step = 1; step <= 5000; step++) {
        fprintf(f, "%d,%.9g,%040d\n", step, 1.0 / step, step);
        if (step == 3777) keep_end = ftell(f);
    }
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_gt(keep_end, 3 * 65536);
    ck_assert_ok(cn_csv_truncate_steps(tpath("m.csv"), 3777));
    size_t n;
    char *s = tu_slurp(tpath("m.csv"), &n);
    ck_assert_uint_eq(n, (size_t)keep_end);
    ck_assert(strstr(s, "\n3777,") != NULL);
    ck_assert(strstr(s, "\n3778,") == NULL);
    free(s);
}
END_TEST

/* ---- cn_fmt_num ---- */

START_TEST(fmt_num_round_trips_float32_and_names_non_finite)
{
    char b[40];
    float x = 0.1f;
    cn_fmt_num(b, sizeof b, x);
    ck_assert_str_eq(b, "0.100000001");
    ck_assert(strtof(b, NULL) == x);
    cn_fmt_num(b, sizeof b, NAN);
    ck_assert_str_eq(b, "nan");
    cn_fmt_num(b, sizeof b, -INFINITY);
    ck_assert_str_eq(b, "-inf");
}
END_TEST

Suite *suite_io(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("io");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, read_file_returns_contents_nul_terminated);
    tcase_add_test(tc, read_file_of_exactly_max_bytes_succeeds);
    tcase_add_test(tc, read_file_larger_than_max_is_arg_error);
    tcase_add_test(tc, read_file_missing_is_io_error_with_reason);
    tcase_add_test(tc, read_file_directory_is_io_error);
    tcase_add_test(tc, read_file_refuses_a_fifo_and_a_device_without_blocking);
    tcase_add_test(tc, open_input_returns_a_blocking_descriptor);
    tcase_add_test(tc, read_file_reads_a_file_with_no_size_up_front);
    tcase_add_test(tc, json_load_missing_file_is_arg_error);
    tcase_add_test(tc, json_load_directory_is_arg_error);
    tcase_add_test(tc, json_load_reads_an_object);
    tcase_add_test(tc, check_keys_reports_a_repeated_key_with_its_path);
    tcase_add_test(tc, check_keys_accepts_distinct_known_keys);
    tcase_add_test(tc, mkdirs_creates_nested_directories);
    tcase_add_test(tc, mkdirs_on_a_regular_file_is_arg_error);
    tcase_add_test(tc, mkdirs_under_a_regular_file_is_io_error);
    tcase_add_test(tc, write_file_atomic_replaces_and_leaves_no_temporary);
    tcase_add_test(tc, write_json_atomic_ends_with_a_newline);
    tcase_add_test(tc, atomic_abort_keeps_the_old_file_and_removes_the_temporary);
    tcase_add_test(tc, atomic_open_in_a_missing_directory_is_io_error);
    tcase_add_test(tc, csv_truncate_keeps_header_and_rows_up_to_max_step);
    tcase_add_test(tc, csv_truncate_drops_a_torn_last_line);
    tcase_add_test(tc, csv_truncate_keeps_the_header_when_no_row_is_kept);
    tcase_add_test(tc, csv_truncate_leaves_a_complete_file_unchanged);
    tcase_add_test(tc, csv_truncate_of_a_missing_file_is_ok);
    tcase_add_test(tc, csv_truncate_cuts_at_the_right_byte_across_read_chunks);
    tcase_add_test(tc, fmt_num_round_trips_float32_and_names_non_finite);
    suite_add_tcase(s, tc);
    return s;
}
