/* Suite "data": built-in tasks, npy/csv/text loaders, batcher. Fixtures in tests/data/ (make_fixtures.py). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data/data.h"

#define PI 3.14159265358979323846

/* Parses `json` as the data object and loads it with base dir tests/data. The tree is returned in *tree
 * (for checking filled defaults) when tree != NULL, else freed. */
static cn_status load_json(const char *json, uint64_t seed, cn_data *d, cJSON **tree)
{
    cJSON *j = NULL;
    cn_status st = cn_json_parse(json, "test", &j);
    ck_assert_msg(st == CN_OK, "bad test JSON %s: %s", json, cn_errmsg());
    st = cn_data_load(j, "data", seed, "data", d);
    if (tree) *tree = j;
    else cJSON_Delete(j);
    return st;
}

static void load_ok(const char *json, uint64_t seed, cn_data *d)
{
    cn_status st = load_json(json, seed, d, NULL);
    ck_assert_msg(st == CN_OK, "%s: %s", json, cn_errmsg());
}

/* Loading must fail with status `want` and a message containing each of the NULL-terminated needles. */
static void load_fails(const char *json, cn_status want, const char *const *needles)
{
    cn_data d;
    cn_status st = load_json(json, 1, &d, NULL);
    ck_assert_msg(st == want, "%s: status %d (%s), want %d", json, st, st ? cn_errmsg() : "ok", want);
    for (const char *const *n = needles; *n; n++)
        ck_assert_msg(strstr(cn_errmsg(), *n), "message \"%s\" lacks \"%s\"", cn_errmsg(), *n);
    ck_assert_ptr_null(d.train.x);
    ck_assert_ptr_null(d.vocab);
}
#define FAILS(json, st, ...) load_fails(json, st, (const char *const[]){__VA_ARGS__, NULL})

static size_t xlen(const cn_dataset *ds)
{
    return (size_t)ds->n * (size_t)(ds->seq_len ? ds->seq_len : 1) * (size_t)ds->features;
}
static size_t ylen(const cn_dataset *ds)
{
    size_t per = ds->target_seq ? (size_t)ds->seq_len : 1;
    return (size_t)ds->n * per * (ds->target_kind == CN_TARGET_FLOAT ? (size_t)ds->target_dim : 1);
}

static int same_set(const cn_dataset *a, const cn_dataset *b)
{
    if (a->n != b->n || xlen(a) != xlen(b) || memcmp(a->x, b->x, xlen(a) * sizeof(float))) return 0;
    if (a->target_kind == CN_TARGET_FLOAT) return !memcmp(a->y, b->y, ylen(a) * sizeof(float));
    return !memcmp(a->labels, b->labels, ylen(a) * sizeof(int32_t));
}

/* ---------------- built-in tasks ---------------- */

START_TEST(adding_shapes_values_and_one_marker_per_half)
{
    cn_data d;
    load_ok("{\"kind\":\"adding\",\"seq_len\":20,\"train_size\":200,\"test_size\":10}", 7, &d);
    const cn_dataset *ds = &d.train;
    ck_assert_int_eq(ds->n, 200);
    ck_assert_int_eq(ds->seq_len, 20);
    ck_assert_int_eq(ds->features, 2);
    ck_assert_int_eq(ds->target_kind, CN_TARGET_FLOAT);
    ck_assert_int_eq(ds->target_dim, 1);
    ck_assert_int_eq(ds->target_seq, 0);
    ck_assert_ptr_nonnull(ds->y);
    ck_assert_ptr_null(ds->labels);
    ck_assert_int_eq(d.test.n, 10);
    for (int i = 0; i < ds->n; i++) {
        int first = 0, second = 0;
        for (int t = 0; t < 20; t++) {
            float v = ds->x[(i * 20 + t) * 2], m = ds->x[(i * 20 + t) * 2 + 1];
            ck_assert(v >= 0.0f && v < 1.0f);
            ck_assert(m == 0.0f || m == 1.0f);
            if (m == 1.0f) *(t < 10 ? &first : &second) += 1;
        }
        ck_assert_int_eq(first, 1);
        ck_assert_int_eq(second, 1);
    }
    cn_data_free(&d);
}
END_TEST

START_TEST(adding_target_is_mean_of_marked_values)
{
    cn_data d;
    load_ok("{\"kind\":\"adding\",\"seq_len\":9,\"train_size\":300,\"test_size\":0}", 3, &d);
    double sum = 0, sq = 0;
    for (int i = 0; i < d.train.n; i++) {
        double s = 0;
        for (int t = 0; t < 9; t++)
            if (d.train.x[(i * 9 + t) * 2 + 1] == 1.0f) s += d.train.x[(i * 9 + t) * 2];
        ck_assert_float_eq(d.train.y[i], (float)(0.5 * s));
        sum += d.train.y[i];
        sq += d.train.y[i] * (double)d.train.y[i];
    }
    /* Mean of two U[0,1): mean 1/2, variance 1/24 (the predict-the-mean MSE of docs/config.md); the sum
     * would give 1 and 1/6. */
    double m = sum / d.train.n, var = sq / d.train.n - m * m;
    ck_assert_near(m, 0.5, 0.05);
    ck_assert_near(var, 1.0 / 24, 0.01);
    ck_assert_int_eq(d.test.n, 0);
    cn_data_free(&d);
}
END_TEST

START_TEST(task_defaults_are_filled_into_the_config)
{
    cn_data d;
    cJSON *j;
    ck_assert_ok(load_json("{\"kind\":\"adding\"}", 1, &d, &j));
    ck_assert_int_eq(cJSON_GetObjectItem(j, "seq_len")->valueint, 30);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "train_size")->valueint, 10000);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "test_size")->valueint, 1000);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "shuffle")));
    ck_assert_int_eq(d.shuffle, 1);
    ck_assert_str_eq(d.kind, "adding");
    ck_assert_int_eq(d.train.n, 10000);
    cJSON_Delete(j);
    cn_data_free(&d);
}
END_TEST

static const char *const task_configs[] = {
    "{\"kind\":\"adding\",\"seq_len\":12,\"train_size\":40,\"test_size\":8}",
    "{\"kind\":\"temporal_order\",\"seq_len\":20,\"train_size\":40,\"test_size\":8}",
    "{\"kind\":\"xor\",\"train_size\":40,\"test_size\":8,\"noise\":0.1}",
    "{\"kind\":\"spirals\",\"train_size\":40,\"test_size\":8,\"classes\":3}",
    "{\"kind\":\"sine\",\"seq_len\":12,\"train_size\":40,\"test_size\":8}",
};

START_TEST(task_same_seed_same_data_other_seed_differs)
{
    cn_data a, b, c;
    load_ok(task_configs[_i], 5, &a);
    load_ok(task_configs[_i], 5, &b);
    load_ok(task_configs[_i], 6, &c);
    ck_assert(same_set(&a.train, &b.train));
    ck_assert(same_set(&a.test, &b.test));
    ck_assert(!same_set(&a.train, &c.train));
    ck_assert(!same_set(&a.train, &a.test) || a.train.n != a.test.n);
    cn_data_free(&a);
    cn_data_free(&b);
    cn_data_free(&c);
}
END_TEST

START_TEST(task_test_set_does_not_depend_on_train_size)
{
    cn_data a, b;
    load_ok("{\"kind\":\"sine\",\"seq_len\":6,\"train_size\":10,\"test_size\":5}", 9, &a);
    load_ok("{\"kind\":\"sine\",\"seq_len\":6,\"train_size\":30,\"test_size\":5}", 9, &b);
    ck_assert(same_set(&a.test, &b.test));
    /* and the train set is not a copy of the test set */
    ck_assert(memcmp(a.train.x, a.test.x, 5 * 6 * sizeof(float)));
    cn_data_free(&a);
    cn_data_free(&b);
}
END_TEST

START_TEST(temporal_order_one_hot_markers_and_label)
{
    cn_data d;
    const int T = 30;
    load_ok("{\"kind\":\"temporal_order\",\"seq_len\":30,\"train_size\":400,\"test_size\":1}", 2, &d);
    const cn_dataset *ds = &d.train;
    ck_assert_int_eq(ds->features, 8);
    ck_assert_int_eq(ds->seq_len, T);
    ck_assert_int_eq(ds->target_kind, CN_TARGET_CLASS);
    ck_assert_int_eq(ds->n_classes, 4);
    ck_assert_int_eq(ds->target_seq, 0);
    int seen[4] = {0};
    for (int i = 0; i < ds->n; i++) {
        int rel[2], nrel = 0;
        for (int t = 0; t < T; t++) {
            const float *x = ds->x + ((size_t)i * T + t) * 8;
            int hot = -1, count = 0;
            for (int s = 0; s < 8; s++) {
                ck_assert(x[s] == 0.0f || x[s] == 1.0f);
                if (x[s] == 1.0f) { hot = s; count++; }
            }
            ck_assert_int_eq(count, 1);
            if (t == 0) ck_assert_int_eq(hot, 6);           // B
            else if (t == T - 1) ck_assert_int_eq(hot, 7);  // E
            else ck_assert(hot <= 5);
            if (hot == 4 || hot == 5) {
                ck_assert_int_lt(nrel, 2);
                ck_assert(nrel == 0 ? (t >= 3 && t <= 6) : (t >= 15 && t <= 18));
                rel[nrel++] = hot - 4;
            }
        }
        ck_assert_int_eq(nrel, 2);
        ck_assert_int_eq(ds->labels[i], 2 * rel[0] + rel[1]);
        seen[ds->labels[i]]++;
    }
    for (int c = 0; c < 4; c++) ck_assert_int_gt(seen[c], 50);
    cn_data_free(&d);
}
END_TEST

START_TEST(xor_float_targets_are_xor_of_inputs)
{
    cn_data d;
    load_ok("{\"kind\":\"xor\",\"train_size\":100,\"test_size\":4}", 1, &d);
    ck_assert_int_eq(d.train.features, 2);
    ck_assert_int_eq(d.train.seq_len, 0);
    ck_assert_int_eq(d.train.target_kind, CN_TARGET_FLOAT);
    int seen[4] = {0};
    for (int i = 0; i < 100; i++) {
        float a = d.train.x[2 * i], b = d.train.x[2 * i + 1];
        ck_assert(a == 0.0f || a == 1.0f);
        ck_assert(b == 0.0f || b == 1.0f);
        ck_assert_float_eq(d.train.y[i], (float)((int)a ^ (int)b));
        seen[2 * (int)a + (int)b]++;
    }
    for (int k = 0; k < 4; k++) ck_assert_int_gt(seen[k], 0);
    cn_data_free(&d);
}
END_TEST

START_TEST(xor_class_target_gives_two_class_labels)
{
    cn_data d;
    load_ok("{\"kind\":\"xor\",\"train_size\":50,\"target_kind\":\"class\",\"noise\":0.05}", 1, &d);
    ck_assert_int_eq(d.train.target_kind, CN_TARGET_CLASS);
    ck_assert_int_eq(d.train.n_classes, 2);
    ck_assert_ptr_null(d.train.y);
    for (int i = 0; i < 50; i++) {
        int a = d.train.x[2 * i] > 0.5f, b = d.train.x[2 * i + 1] > 0.5f;
        ck_assert(d.train.x[2 * i] != 0.0f && d.train.x[2 * i] != 1.0f);   // noise was added
        ck_assert_int_eq(d.train.labels[i], a ^ b);
    }
    cn_data_free(&d);
}
END_TEST

START_TEST(spirals_labels_balanced_points_on_their_arm)
{
    cn_data d;
    load_ok("{\"kind\":\"spirals\",\"classes\":3,\"noise\":0,\"train_size\":90,\"test_size\":0}", 4, &d);
    ck_assert_int_eq(d.train.n_classes, 3);
    ck_assert_int_eq(d.train.features, 2);
    for (int i = 0; i < 90; i++) {
        ck_assert_int_eq(d.train.labels[i], i % 3);
        double px = d.train.x[2 * i], py = d.train.x[2 * i + 1];
        double r = sqrt(px * px + py * py);
        ck_assert(r < 1.0 + 1e-6);
        /* angle = 2 pi c/3 + 2 pi r (mod 2 pi) */
        double want = 2 * PI * (i % 3) / 3.0 + 2 * PI * r;
        double diff = fmod(atan2(py, px) - want + 8 * PI, 2 * PI);
        if (r > 1e-3) ck_assert(diff < 1e-3 || diff > 2 * PI - 1e-3);
    }
    cn_data_free(&d);
}
END_TEST

START_TEST(sine_targets_are_next_values)
{
    cn_data d;
    load_ok("{\"kind\":\"sine\",\"seq_len\":16,\"train_size\":20,\"test_size\":2}", 8, &d);
    const cn_dataset *ds = &d.train;
    ck_assert_int_eq(ds->seq_len, 16);
    ck_assert_int_eq(ds->features, 1);
    ck_assert_int_eq(ds->target_seq, 1);
    ck_assert_int_eq(ds->target_dim, 1);
    for (int i = 0; i < 20; i++)
        for (int t = 0; t < 16; t++) {
            ck_assert(fabsf(ds->x[i * 16 + t]) <= 1.0f);
            if (t < 15) ck_assert_float_eq(ds->y[i * 16 + t], ds->x[i * 16 + t + 1]);
        }
    cn_data_free(&d);
}
END_TEST

START_TEST(task_config_errors_name_the_path)
{
    FAILS("{\"kind\":\"adding\",\"seq_lenn\":5}", CN_ERR_ARG, "data.seq_lenn", "seq_len");
    FAILS("{\"kind\":\"temporal_order\",\"seq_len\":5}", CN_ERR_ARG, "data.seq_len");
    FAILS("{\"kind\":\"spirals\",\"classes\":1}", CN_ERR_ARG, "data.classes");
    FAILS("{\"kind\":\"xor\",\"seq_len\":5}", CN_ERR_ARG, "data.seq_len");
    FAILS("{\"kind\":\"xor\",\"target_kind\":\"int\"}", CN_ERR_ARG, "data.target_kind");
    FAILS("{\"kind\":\"adding\",\"train_size\":0}", CN_ERR_ARG, "data.train_size");
    FAILS("{\"kind\":\"addition\"}", CN_ERR_ARG, "data.kind", "\"addition\"");
    FAILS("{\"seq_len\":5}", CN_ERR_ARG, "data.kind");
    FAILS("{\"kind\":\"sine\",\"shuffle\":1}", CN_ERR_ARG, "data.shuffle");
}
END_TEST

/* ---------------- npy ---------------- */

START_TEST(npy_float32_inputs_and_float_targets)
{
    cn_data d;
    load_ok("{\"kind\":\"npy\",\"x\":\"x_f32.npy\",\"y\":\"y_f32.npy\",\"shuffle\":false}", 1, &d);
    ck_assert_int_eq(d.train.n, 6);
    ck_assert_int_eq(d.train.features, 3);
    ck_assert_int_eq(d.train.seq_len, 0);
    ck_assert_int_eq(d.train.target_kind, CN_TARGET_FLOAT);
    ck_assert_int_eq(d.train.target_dim, 2);
    ck_assert_int_eq(d.test.n, 0);
    ck_assert_int_eq(d.shuffle, 0);
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 3; j++) ck_assert_float_eq(d.train.x[i * 3 + j], (float)(i + j / 10.0));
        ck_assert_float_eq(d.train.y[2 * i], (float)i);
        ck_assert_float_eq(d.train.y[2 * i + 1], (float)-i);
    }
    cn_data_free(&d);
}
END_TEST

START_TEST(npy_float64_converted_and_int64_labels)
{
    cn_data d;
    load_ok("{\"kind\":\"npy\",\"x\":\"x_f64.npy\",\"y\":\"y_i64.npy\"}", 1, &d);
    ck_assert_int_eq(d.train.target_kind, CN_TARGET_CLASS);
    ck_assert_int_eq(d.train.n_classes, 5);
    ck_assert_ptr_null(d.train.y);
    static const int32_t want[6] = {0, 1, 2, 0, 1, 4};
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(d.train.labels[i], want[i]);
        for (int j = 0; j < 3; j++) ck_assert_float_eq(d.train.x[i * 3 + j], (float)(i + j / 10.0));
    }
    cn_data_free(&d);
}
END_TEST

/* A .npy file of n elements of type descr (itemsize bytes each) and the given shape; element i = f(i). */
static void write_npy(const char *path, const char *descr, int itemsize, const char *shape, size_t n,
                      double (*f)(size_t))
{
    char hdr[256];
    int k = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    while ((10 + k + 1) % 64) hdr[k++] = ' ';
    hdr[k++] = '\n';
    FILE *o = fopen(path, "wb");
    ck_assert_msg(o != NULL, "%s", path);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(k & 255), (unsigned char)(k >> 8)};
    fwrite(pre, 1, 10, o);
    fwrite(hdr, 1, (size_t)k, o);
    for (size_t i = 0; i < n; i++) {
        double v = f(i);
        if (itemsize == 4) { float x = (float)v; fwrite(&x, 4, 1, o); }
        else { int64_t x = (int64_t)v; fwrite(&x, 8, 1, o); }
    }
    ck_assert_int_eq(fclose(o), 0);
}

static double feature(size_t i) { return (double)(i % 97) * 0.01; }
static double label(size_t i) { return (double)(i % 10); }

/* kB of a /proc/self/status line ("VmRSS", "VmHWM"), -1 if absent */
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') v = atol(line + n + 1);
    if (f) fclose(f);
    return v;
}

/* The data set is held once: loading a 32 MiB float32 array grows the peak resident size by about
 * 32 MiB, not by the array and a converted copy side by side (64 MiB, as before). Measured in a child
 * process: its peak (VmHWM, reset to the current size first) over its size before loading. */
START_TEST(npy_data_set_is_held_once)
{
    char dir[256], x[400], y[400], json[1000];
    tu_make_tmpdir(dir, sizeof dir, "/tmp", "clipnn-npymem");
    enum { N = 8192, F = 1024 };
    snprintf(x, sizeof x, "%s/x.npy", dir);
    snprintf(y, sizeof y, "%s/y.npy", dir);
    write_npy(x, "<f4", 4, "(8192, 1024)", (size_t)N * F, feature);
    write_npy(y, "<i8", 8, "(8192,)", N, label);
    snprintf(json, sizeof json, "{\"kind\":\"npy\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *c = fopen("/proc/self/clear_refs", "w");   /* "5": the peak becomes the current size */
        if (!c || fputs("5", c) < 0 || fclose(c) != 0) _exit(3);
        long before = status_kb("VmRSS");
        cn_data d;
        if (load_json(json, 1, &d, NULL) != CN_OK) _exit(4);
        long peak = status_kb("VmHWM");
        /* the values arrived */
        if (d.train.n != N || d.train.x[(size_t)N * F - 1] != (float)feature((size_t)N * F - 1) ||
            d.train.labels[N - 1] != 1)
            _exit(5);
        long grow = peak - before;
        if (before < 0 || peak < 0 || write(fds[1], &grow, sizeof grow) != sizeof grow) _exit(6);
        _exit(0);
    }
    close(fds[1]);
    long grow = -1;
    ssize_t got = read(fds[0], &grow, sizeof grow);
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == sizeof grow, "child status %d", status);
    long data_kb = (long)N * F * 4 / 1024;
    ck_assert_msg(grow > data_kb * 9 / 10, "the peak grew by %ld kB for %ld kB of data: not measured?", grow, data_kb);
    ck_assert_msg(grow < data_kb * 5 / 4, "the peak grew by %ld kB for %ld kB of data: a second copy", grow, data_kb);
    tu_remove_tree(dir);
}
END_TEST

START_TEST(npy_format_versions_2_and_3_read_like_1)
{
    cn_npy a, b, c;
    ck_assert_ok(cn_npy_read("data/x_f32.npy", &a));
    ck_assert_ok(cn_npy_read("data/x_v2.npy", &b));
    ck_assert_ok(cn_npy_read("data/x_v3.npy", &c));
    ck_assert_int_eq(b.ndim, 2);
    ck_assert_int_eq(b.shape[0], 6);
    ck_assert_int_eq(b.shape[1], 3);
    ck_assert_int_eq(b.kind, 'f');
    ck_assert_int_eq(b.itemsize, 4);
    ck_assert_mem_eq(a.data, b.data, 18 * 4);
    ck_assert_mem_eq(a.data, c.data, 18 * 4);
    cn_npy_free(&a);
    cn_npy_free(&b);
    cn_npy_free(&c);
}
END_TEST

START_TEST(npy_test_set_shares_n_classes)
{
    cn_data d;
    load_ok("{\"kind\":\"npy\",\"x\":\"x_f32.npy\",\"y\":\"y_i64.npy\",\"test_x\":\"test_x_f32.npy\","
            "\"test_y\":\"test_y_i32.npy\"}", 1, &d);
    ck_assert_int_eq(d.test.n, 2);
    ck_assert_int_eq(d.train.n_classes, 7);
    ck_assert_int_eq(d.test.n_classes, 7);
    ck_assert_float_eq(d.test.x[4], 101.1f);
    cn_data_free(&d);
}
END_TEST

START_TEST(npy_sequence_with_per_step_labels)
{
    cn_data d;
    load_ok("{\"kind\":\"npy\",\"x\":\"seq_x.npy\",\"y\":\"seq_y_i32.npy\"}", 1, &d);
    const cn_dataset *ds = &d.train;
    ck_assert_int_eq(ds->n, 4);
    ck_assert_int_eq(ds->seq_len, 5);
    ck_assert_int_eq(ds->features, 2);
    ck_assert_int_eq(ds->target_seq, 1);
    ck_assert_int_eq(ds->n_classes, 3);
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 5; t++) {
            ck_assert_float_eq(ds->x[(i * 5 + t) * 2 + 1], (float)(100 * i + 10 * t + 1));
            ck_assert_int_eq(ds->labels[i * 5 + t], (i + t) % 3);
        }
    cn_data_free(&d);
}
END_TEST

START_TEST(npy_broken_files_give_clear_errors)
{
    FAILS("{\"kind\":\"npy\",\"x\":\"truncated.npy\",\"y\":\"y_f32.npy\"}", CN_ERR_FORMAT, "data.x", "truncated.npy",
          "truncated");
    FAILS("{\"kind\":\"npy\",\"x\":\"bad_magic.npy\",\"y\":\"y_f32.npy\"}", CN_ERR_FORMAT, "bad_magic.npy", "bad magic");
    FAILS("{\"kind\":\"npy\",\"x\":\"fortran.npy\",\"y\":\"y_f32.npy\"}", CN_ERR_FORMAT, "fortran.npy", "fortran_order");
    FAILS("{\"kind\":\"npy\",\"x\":\"complex.npy\",\"y\":\"y_f32.npy\"}", CN_ERR_FORMAT, "complex.npy", "'<c8'");
    FAILS("{\"kind\":\"npy\",\"x\":\"big_endian.npy\",\"y\":\"y_f32.npy\"}", CN_ERR_FORMAT, "'>f4'", "big-endian");
    FAILS("{\"kind\":\"npy\",\"x\":\"bad_header.npy\",\"y\":\"y_f32.npy\"}", CN_ERR_FORMAT, "bad header dict",
          "missing 'shape'");
    FAILS("{\"kind\":\"npy\",\"x\":\"bad_header_syntax.npy\",\"y\":\"y_f32.npy\"}", CN_ERR_FORMAT, "bad header dict",
          "fortran_order");
    FAILS("{\"kind\":\"npy\",\"x\":\"nan_x.npy\",\"y\":\"y_f32.npy\"}", CN_ERR_FORMAT, "nan_x.npy", "element 13 is NaN");
    FAILS("{\"kind\":\"npy\",\"x\":\"no_such.npy\",\"y\":\"y_f32.npy\"}", CN_ERR_IO, "data.x", "no_such.npy");
}
END_TEST

START_TEST(npy_shape_mismatches_are_errors)
{
    FAILS("{\"kind\":\"npy\",\"x\":\"x_f32.npy\",\"y\":\"y_mismatch.npy\"}", CN_ERR_SHAPE, "data.y", "y_mismatch.npy",
          "6 examples");
    FAILS("{\"kind\":\"npy\",\"x\":\"seq_x.npy\",\"y\":\"seq_y_f32_wrong_t.npy\"}", CN_ERR_SHAPE, "data.y", "per step");
    FAILS("{\"kind\":\"npy\",\"x\":\"x_f32.npy\",\"y\":\"seq_y_i32.npy\"}", CN_ERR_SHAPE, "data.y");
    FAILS("{\"kind\":\"npy\",\"x\":\"y_i64.npy\",\"y\":\"y_i64.npy\"}", CN_ERR_FORMAT, "data.x", "float");
    FAILS("{\"kind\":\"npy\",\"x\":\"x_f32.npy\",\"y\":\"y_f32.npy\",\"test_x\":\"x_f32.npy\"}", CN_ERR_ARG,
          "test_y");
    FAILS("{\"kind\":\"npy\",\"x\":\"x_f32.npy\",\"y\":\"y_f32.npy\",\"test_x\":\"seq_x.npy\",\"test_y\":\"seq_y_i32.npy\"}",
          CN_ERR_SHAPE, "data.test_x");
    FAILS("{\"kind\":\"npy\",\"x\":\"x_f32.npy\"}", CN_ERR_ARG, "data.y", "missing");
}
END_TEST

/* ---------------- csv ---------------- */

START_TEST(csv_good_file_float_target)
{
    cn_data d;
    cJSON *j;
    ck_assert_ok(load_json("{\"kind\":\"csv\",\"path\":\"good.csv\",\"target\":\"label\"}", 1, &d, &j));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "test_path")));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "target_kind")->valuestring, "float");
    cJSON_Delete(j);
    ck_assert_int_eq(d.train.n, 3);   // the blank line is skipped
    ck_assert_int_eq(d.train.features, 2);
    ck_assert_int_eq(d.train.target_kind, CN_TARGET_FLOAT);
    static const float xs[6] = {1, 2, 3.5f, -4, 0.5f, 6}, ys[3] = {0, 1, 2};
    for (int i = 0; i < 6; i++) ck_assert_float_eq(d.train.x[i], xs[i]);
    for (int i = 0; i < 3; i++) ck_assert_float_eq(d.train.y[i], ys[i]);
    ck_assert_int_eq(d.test.n, 0);
    cn_data_free(&d);
}
END_TEST

START_TEST(csv_class_target_with_crlf_test_file)
{
    cn_data d;
    load_ok("{\"kind\":\"csv\",\"path\":\"good.csv\",\"target\":\"label\",\"target_kind\":\"class\","
            "\"test_path\":\"good_test.csv\"}", 1, &d);
    ck_assert_int_eq(d.train.target_kind, CN_TARGET_CLASS);
    ck_assert_int_eq(d.train.labels[2], 2);
    ck_assert_int_eq(d.test.n, 1);
    ck_assert_float_eq(d.test.x[1], 8.0f);
    ck_assert_int_eq(d.test.labels[0], 3);
    ck_assert_int_eq(d.train.n_classes, 4);
    ck_assert_int_eq(d.test.n_classes, 4);
    cn_data_free(&d);
}
END_TEST

START_TEST(csv_ragged_row_names_file_and_line)
{
    FAILS("{\"kind\":\"csv\",\"path\":\"ragged.csv\",\"target\":\"label\"}", CN_ERR_FORMAT, "ragged.csv:3:",
          "got 2");
}
END_TEST

START_TEST(csv_non_number_names_line_and_column)
{
    FAILS("{\"kind\":\"csv\",\"path\":\"nonnumber.csv\",\"target\":\"label\"}", CN_ERR_FORMAT, "nonnumber.csv:4:",
          "column \"b\"", "\"abc\"");
}
END_TEST

START_TEST(csv_missing_target_column_lists_columns)
{
    FAILS("{\"kind\":\"csv\",\"path\":\"good.csv\",\"target\":\"y\"}", CN_ERR_FORMAT, "good.csv:1:", "\"y\"",
          "a, b, label");
}
END_TEST

START_TEST(csv_fractional_class_label_is_an_error)
{
    FAILS("{\"kind\":\"csv\",\"path\":\"good.csv\",\"target\":\"a\",\"target_kind\":\"class\"}", CN_ERR_FORMAT,
          "good.csv:3:", "column \"a\"", "3.5");
    FAILS("{\"kind\":\"csv\",\"target\":\"a\"}", CN_ERR_ARG, "data.path");
    FAILS("{\"kind\":\"csv\",\"path\":\"missing.csv\",\"target\":\"a\"}", CN_ERR_IO, "data.path", "missing.csv");
}
END_TEST

static void write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Excel's "CSV UTF-8" starts the file with a byte-order mark; it must not become part of the first
 * column's name (which is the target here, so the load fails if it does). */
START_TEST(csv_utf8_bom_is_skipped)
{
    char dir[256], train[300], test[300], js[800];
    tu_make_tmpdir(dir, sizeof dir, "/tmp", "clipnn-csv-bom");
    snprintf(train, sizeof train, "%s/bom.csv", dir);
    snprintf(test, sizeof test, "%s/bom_test.csv", dir);
    static const char tr[] = "\xEF\xBB\xBFy,a,b\r\n1,2,3\r\n0,4,5\r\n";
    static const char te[] = "\xEF\xBB\xBFy,a,b\n1,6,7\n";
    write_file(train, tr, sizeof tr - 1);
    write_file(test, te, sizeof te - 1);
    snprintf(js, sizeof js, "{\"kind\":\"csv\",\"path\":\"%s\",\"test_path\":\"%s\",\"target\":\"y\","
             "\"target_kind\":\"class\"}", train, test);
    cn_data d;
    load_ok(js, 1, &d);
    ck_assert_int_eq(d.train.n, 2);
    ck_assert_int_eq(d.train.features, 2);
    ck_assert_int_eq(d.train.labels[0], 1);
    ck_assert_int_eq(d.train.labels[1], 0);
    ck_assert_float_eq(d.train.x[0], 2.0f);
    ck_assert_float_eq(d.train.x[3], 5.0f);
    ck_assert_int_eq(d.test.n, 1);   /* headers compare equal: both marks dropped */
    ck_assert_float_eq(d.test.x[1], 7.0f);
    cn_data_free(&d);
    /* only a leading mark is dropped: one in the middle of the header stays part of the name */
    static const char mid[] = "y,\xEF\xBB\xBF" "a,b\n1,2,3\n";
    write_file(train, mid, sizeof mid - 1);
    snprintf(js, sizeof js, "{\"kind\":\"csv\",\"path\":\"%s\",\"target\":\"a\"}", train);
    FAILS(js, CN_ERR_FORMAT, "no column named \"a\"");
    tu_remove_tree(dir);
}
END_TEST

/* ---------------- text ---------------- */

START_TEST(text_vocabulary_sorted_and_windows_non_overlapping)
{
    cn_data d;
    load_ok("{\"kind\":\"text\",\"path\":\"tiny.txt\",\"seq_len\":4,\"test_fraction\":0.3}", 1, &d);
    const char *text = "the cat sat on the mat.";
    ck_assert_int_eq(d.vocab_size, 11);
    ck_assert_str_eq(d.vocab, " .acehmnost");
    /* 23 bytes: test = round(6.9) = 7 bytes, train = 16 bytes -> floor(15/4) = 3 windows; test floor(6/4) = 1 */
    ck_assert_int_eq(d.train.n, 3);
    ck_assert_int_eq(d.test.n, 1);
    ck_assert_int_eq(d.train.seq_len, 4);
    ck_assert_int_eq(d.train.features, 1);
    ck_assert_int_eq(d.train.ids, 1);
    ck_assert_int_eq(d.train.target_seq, 1);
    ck_assert_int_eq(d.train.n_classes, 11);
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < 4; t++) {
            int i = k * 4 + t;
            ck_assert_int_eq(d.vocab[(int)d.train.x[i]], text[i]);
            ck_assert_int_eq(d.vocab[d.train.labels[i]], text[i + 1]);
        }
    for (int t = 0; t < 4; t++) {
        ck_assert_int_eq(d.vocab[(int)d.test.x[t]], text[16 + t]);
        ck_assert_int_eq(d.vocab[d.test.labels[t]], text[17 + t]);
    }
    cn_data_free(&d);
}
END_TEST

START_TEST(text_short_empty_and_binary_files_rejected)
{
    FAILS("{\"kind\":\"text\",\"path\":\"short.txt\",\"seq_len\":3}", CN_ERR_FORMAT, "short.txt", "seq_len + 1");
    FAILS("{\"kind\":\"text\",\"path\":\"empty.txt\",\"seq_len\":3}", CN_ERR_FORMAT, "empty.txt", "empty");
    FAILS("{\"kind\":\"text\",\"path\":\"nul.txt\",\"seq_len\":3}", CN_ERR_FORMAT, "nul.txt", "NUL", "offset 3");
    /* default test_fraction 0.1 of 23 bytes = 2 bytes: too short for a window of 4 */
    FAILS("{\"kind\":\"text\",\"path\":\"tiny.txt\",\"seq_len\":4}", CN_ERR_ARG, "data.test_fraction");
    FAILS("{\"kind\":\"text\",\"path\":\"tiny.txt\",\"test_fraction\":1}", CN_ERR_ARG, "data.test_fraction");
}
END_TEST

START_TEST(text_test_fraction_zero_means_no_test_set)
{
    cn_data d;
    load_ok("{\"kind\":\"text\",\"path\":\"tiny.txt\",\"seq_len\":5,\"test_fraction\":0}", 1, &d);
    ck_assert_int_eq(d.train.n, 4);   // floor(22/5)
    ck_assert_int_eq(d.test.n, 0);
    cn_data_free(&d);
}
END_TEST

/* ---------------- batcher ---------------- */

/* n examples, x [n, F=1] = i, float target y = 10 i. */
static void ramp_set(cn_dataset *ds, int n)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->features = 1;
    ds->target_dim = 1;
    ds->x = cn_malloc(sizeof(float) * (size_t)n);
    ds->y = cn_malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) {
        ds->x[i] = (float)i;
        ds->y[i] = 10.0f * i;
    }
}

START_TEST(batcher_no_shuffle_file_order_wraps_across_epochs)
{
    cn_dataset ds;
    ramp_set(&ds, 5);
    cn_batcher b;
    ck_assert_ok(cn_batcher_init(&b, &ds, 2, 0, 1));
    static const int want[5][2] = {{0, 1}, {2, 3}, {4, 0}, {1, 2}, {3, 4}};
    static const int want_epoch[5] = {1, 1, 1, 2, 2};
    float x[2], y[2];
    for (int k = 0; k < 5; k++) {
        int ep = 0;
        ck_assert_ok(cn_batcher_next(&b, x, y, NULL, &ep));
        ck_assert_float_eq(x[0], (float)want[k][0]);
        ck_assert_float_eq(x[1], (float)want[k][1]);
        ck_assert_float_eq(y[1], 10.0f * want[k][1]);
        ck_assert_int_eq(ep, want_epoch[k]);
    }
    cn_batcher_free(&b);
    cn_dataset_free(&ds);
}
END_TEST

START_TEST(batcher_seeded_shuffle_reproducible_and_a_permutation_per_epoch)
{
    cn_dataset ds;
    ramp_set(&ds, 12);
    cn_batcher a, b, c;
    ck_assert_ok(cn_batcher_init(&a, &ds, 4, 1, 42));
    ck_assert_ok(cn_batcher_init(&b, &ds, 4, 1, 42));
    ck_assert_ok(cn_batcher_init(&c, &ds, 4, 1, 43));
    float xa[4], xb[4], xc[4], y[4];
    int differs = 0, in_order = 1;
    for (int epoch = 1; epoch <= 3; epoch++) {
        int seen[12] = {0};
        for (int k = 0; k < 3; k++) {
            int ea, eb;
            ck_assert_ok(cn_batcher_next(&a, xa, y, NULL, &ea));
            ck_assert_ok(cn_batcher_next(&b, xb, y, NULL, &eb));
            ck_assert_ok(cn_batcher_next(&c, xc, y, NULL, NULL));
            ck_assert_int_eq(ea, epoch);
            ck_assert_int_eq(eb, epoch);
            ck_assert_mem_eq(xa, xb, sizeof xa);
            differs |= memcmp(xa, xc, sizeof xa) != 0;
            for (int j = 0; j < 4; j++) {
                seen[(int)xa[j]]++;
                in_order &= xa[j] == (float)(4 * k + j);
                ck_assert_float_eq(y[j], 10.0f * xc[j]);   // targets travel with their inputs
            }
        }
        for (int i = 0; i < 12; i++) ck_assert_int_eq(seen[i], 1);
    }
    ck_assert(differs);
    ck_assert(!in_order);
    cn_batcher_free(&a);
    cn_batcher_free(&b);
    cn_batcher_free(&c);
    cn_dataset_free(&ds);
}
END_TEST

START_TEST(batcher_sequence_batches_are_time_major)
{
    cn_data d;
    load_ok("{\"kind\":\"npy\",\"x\":\"seq_x.npy\",\"y\":\"seq_y_i32.npy\"}", 1, &d);
    const cn_dataset *ds = &d.train;   // x[i, t, f] = 100 i + 10 t + f, labels (i + t) % 3
    ck_assert_uint_eq(cn_batch_x_size(ds, 3), 5 * 3 * 2);
    ck_assert_uint_eq(cn_batch_y_size(ds, 3), 5 * 3);
    cn_batcher b;
    ck_assert_ok(cn_batcher_init(&b, ds, 3, 0, 1));
    float x[30];
    int32_t lab[15];
    ck_assert_ok(cn_batcher_next(&b, x, NULL, lab, NULL));
    for (int t = 0; t < 5; t++)
        for (int bi = 0; bi < 3; bi++) {
            for (int f = 0; f < 2; f++) ck_assert_float_eq(x[(t * 3 + bi) * 2 + f], (float)(100 * bi + 10 * t + f));
            ck_assert_int_eq(lab[t * 3 + bi], (bi + t) % 3);
        }
    /* the wrong target buffer is an error, not a crash */
    ck_assert_int_eq(cn_batcher_next(&b, x, (float *)lab, NULL, NULL), CN_ERR_ARG);
    cn_batcher_free(&b);
    cn_data_free(&d);
}
END_TEST

START_TEST(batcher_float_sequence_targets_are_time_major)
{
    cn_data d;
    load_ok("{\"kind\":\"sine\",\"seq_len\":4,\"train_size\":3,\"test_size\":0}", 1, &d);
    const cn_dataset *ds = &d.train;
    ck_assert_uint_eq(cn_batch_y_size(ds, 2), 4 * 2);
    float x[8], y[8];
    ck_assert_ok(cn_batch_range(ds, 1, 2, x, y, NULL));
    for (int t = 0; t < 4; t++)
        for (int bi = 0; bi < 2; bi++) {
            ck_assert_float_eq(x[t * 2 + bi], ds->x[(1 + bi) * 4 + t]);
            ck_assert_float_eq(y[t * 2 + bi], ds->y[(1 + bi) * 4 + t]);
        }
    cn_data_free(&d);
}
END_TEST

START_TEST(batch_range_takes_file_order_and_checks_bounds)
{
    cn_dataset ds;
    ramp_set(&ds, 5);
    float x[2], y[2];
    ck_assert_ok(cn_batch_range(&ds, 3, 2, x, y, NULL));
    ck_assert_float_eq(x[0], 3.0f);
    ck_assert_float_eq(x[1], 4.0f);
    ck_assert_ok(cn_batch_range(&ds, 4, 1, x, y, NULL));   // the last, smaller batch
    ck_assert_float_eq(y[0], 40.0f);
    ck_assert_int_eq(cn_batch_range(&ds, 4, 2, x, y, NULL), CN_ERR_ARG);
    ck_assert_int_eq(cn_batch_range(&ds, -1, 1, x, y, NULL), CN_ERR_ARG);
    cn_dataset_free(&ds);
}
END_TEST

/* Copies the items of a saved state into owned buffers, as a checkpoint round trip would. */
typedef struct { cn_state st; void *bufs[8]; } state_copy;
static void copy_state(const cn_state *in, state_copy *out)
{
    cn_state_init(&out->st);
    for (int i = 0; i < in->count; i++) {
        const cn_state_item *it = &in->items[i];
        size_t bytes = cn_state_item_numel(it) * cn_dtype_size(it->dtype);
        out->bufs[i] = cn_malloc(bytes);
        memcpy(out->bufs[i], it->data, bytes);
        ck_assert_ok(cn_state_add(&out->st, it->name, it->dtype, it->ndim, it->shape, out->bufs[i]));
    }
}
static void free_state_copy(state_copy *c)
{
    for (int i = 0; i < c->st.count; i++) cn_free(c->bufs[i]);
    cn_state_free(&c->st);
}

START_TEST(batcher_save_load_resumes_the_same_batch_sequence)
{
    cn_dataset ds;
    ramp_set(&ds, 7);
    cn_batcher a, b;
    ck_assert_ok(cn_batcher_init(&a, &ds, 3, 1, 5));
    float xa[3], xb[3], y[3];
    /* 7 batches of 3 over 7 examples: stop at the exact end of epoch 3 (pos == n), the hardest case */
    for (int k = 0; k < 7; k++) ck_assert_ok(cn_batcher_next(&a, xa, y, NULL, NULL));
    cn_state saved;
    cn_state_init(&saved);
    ck_assert_ok(cn_batcher_save_state(&a, &saved));
    ck_assert_ptr_nonnull(cn_state_find(&saved, "data.perm"));
    ck_assert_ptr_nonnull(cn_state_find(&saved, "data.pos"));
    ck_assert_ptr_nonnull(cn_state_find(&saved, "data.epoch"));
    ck_assert_ptr_nonnull(cn_state_find(&saved, "data.rng"));
    state_copy cp;
    copy_state(&saved, &cp);
    cn_state_free(&saved);
    ck_assert_ok(cn_batcher_init(&b, &ds, 3, 1, 999));   // the seed is overridden by the state
    ck_assert_ok(cn_batcher_load_state(&b, &cp.st));
    for (int k = 0; k < 20; k++) {
        int ea, eb;
        ck_assert_ok(cn_batcher_next(&a, xa, y, NULL, &ea));
        ck_assert_ok(cn_batcher_next(&b, xb, y, NULL, &eb));
        ck_assert_mem_eq(xa, xb, sizeof xa);
        ck_assert_int_eq(ea, eb);
    }
    free_state_copy(&cp);
    cn_batcher_free(&a);
    cn_batcher_free(&b);
    cn_dataset_free(&ds);
}
END_TEST

START_TEST(batcher_load_state_rejects_a_bad_permutation)
{
    cn_dataset ds;
    ramp_set(&ds, 4);
    cn_batcher a;
    ck_assert_ok(cn_batcher_init(&a, &ds, 2, 1, 5));
    cn_state saved;
    cn_state_init(&saved);
    ck_assert_ok(cn_batcher_save_state(&a, &saved));
    state_copy cp;
    copy_state(&saved, &cp);
    cn_state_free(&saved);
    int32_t *perm = cn_state_find(&cp.st, "data.perm")->data;
    int32_t keep[4];
    memcpy(keep, a.perm, sizeof keep);
    perm[1] = perm[0];
    ck_assert_int_eq(cn_batcher_load_state(&a, &cp.st), CN_ERR_FORMAT);
    ck_assert_msg(strstr(cn_errmsg(), "data.perm"), "%s", cn_errmsg());
    ck_assert_mem_eq(a.perm, keep, sizeof keep);   // untouched on failure
    free_state_copy(&cp);
    /* a state from a dataset of another size */
    cn_dataset other;
    ramp_set(&other, 5);
    cn_batcher c;
    ck_assert_ok(cn_batcher_init(&c, &other, 2, 1, 5));
    cn_state_init(&saved);
    ck_assert_ok(cn_batcher_save_state(&c, &saved));
    ck_assert_int_eq(cn_batcher_load_state(&a, &saved), CN_ERR_FORMAT);
    cn_state_free(&saved);
    cn_batcher_free(&c);
    cn_batcher_free(&a);
    cn_dataset_free(&ds);
    cn_dataset_free(&other);
}
END_TEST

START_TEST(batcher_next_does_not_allocate)
{
    cn_dataset ds;
    ramp_set(&ds, 9);
    cn_batcher b;
    ck_assert_ok(cn_batcher_init(&b, &ds, 4, 1, 3));
    float x[4], y[4];
    uint64_t before = cn_alloc_count();
    for (int k = 0; k < 50; k++) ck_assert_ok(cn_batcher_next(&b, x, y, NULL, NULL));
    ck_assert_uint_eq(cn_alloc_count(), before);
    cn_batcher_free(&b);
    cn_dataset_free(&ds);
}
END_TEST

START_TEST(batcher_init_rejects_empty_set_and_zero_batch)
{
    cn_dataset ds;
    ramp_set(&ds, 3);
    cn_batcher b;
    ck_assert_int_eq(cn_batcher_init(&b, &ds, 0, 0, 1), CN_ERR_ARG);
    ds.n = 0;
    ck_assert_int_eq(cn_batcher_init(&b, &ds, 2, 0, 1), CN_ERR_ARG);
    ds.n = 3;
    /* a batch larger than the set spans epochs */
    ck_assert_ok(cn_batcher_init(&b, &ds, 7, 0, 1));
    float x[7], y[7];
    ck_assert_ok(cn_batcher_next(&b, x, y, NULL, NULL));
    ck_assert_float_eq(x[6], 0.0f);
    ck_assert_int_eq(b.epoch, 3);
    cn_batcher_free(&b);
    cn_dataset_free(&ds);
}
END_TEST

Suite *suite_data(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("tasks");
    tcase_add_test(tc, adding_shapes_values_and_one_marker_per_half);
    tcase_add_test(tc, adding_target_is_mean_of_marked_values);
    tcase_add_test(tc, task_defaults_are_filled_into_the_config);
    tcase_add_loop_test(tc, task_same_seed_same_data_other_seed_differs, 0,
                        (int)(sizeof task_configs / sizeof task_configs[0]));
    tcase_add_test(tc, task_test_set_does_not_depend_on_train_size);
    tcase_add_test(tc, temporal_order_one_hot_markers_and_label);
    tcase_add_test(tc, xor_float_targets_are_xor_of_inputs);
    tcase_add_test(tc, xor_class_target_gives_two_class_labels);
    tcase_add_test(tc, spirals_labels_balanced_points_on_their_arm);
    tcase_add_test(tc, sine_targets_are_next_values);
    tcase_add_test(tc, task_config_errors_name_the_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("npy");
    tcase_add_test(tc, npy_float32_inputs_and_float_targets);
    tcase_add_test(tc, npy_float64_converted_and_int64_labels);
    tcase_add_test(tc, npy_data_set_is_held_once);
    tcase_add_test(tc, npy_format_versions_2_and_3_read_like_1);
    tcase_add_test(tc, npy_test_set_shares_n_classes);
    tcase_add_test(tc, npy_sequence_with_per_step_labels);
    tcase_add_test(tc, npy_broken_files_give_clear_errors);
    tcase_add_test(tc, npy_shape_mismatches_are_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("csv");
    tcase_add_test(tc, csv_good_file_float_target);
    tcase_add_test(tc, csv_class_target_with_crlf_test_file);
    tcase_add_test(tc, csv_ragged_row_names_file_and_line);
    tcase_add_test(tc, csv_non_number_names_line_and_column);
    tcase_add_test(tc, csv_missing_target_column_lists_columns);
    tcase_add_test(tc, csv_fractional_class_label_is_an_error);
    tcase_add_test(tc, csv_utf8_bom_is_skipped);
    suite_add_tcase(s, tc);

    tc = tcase_create("text");
    tcase_add_test(tc, text_vocabulary_sorted_and_windows_non_overlapping);
    tcase_add_test(tc, text_short_empty_and_binary_files_rejected);
    tcase_add_test(tc, text_test_fraction_zero_means_no_test_set);
    suite_add_tcase(s, tc);

    tc = tcase_create("batcher");
    tcase_add_test(tc, batcher_no_shuffle_file_order_wraps_across_epochs);
    tcase_add_test(tc, batcher_seeded_shuffle_reproducible_and_a_permutation_per_epoch);
    tcase_add_test(tc, batcher_sequence_batches_are_time_major);
    tcase_add_test(tc, batcher_float_sequence_targets_are_time_major);
    tcase_add_test(tc, batch_range_takes_file_order_and_checks_bounds);
    tcase_add_test(tc, batcher_save_load_resumes_the_same_batch_sequence);
    tcase_add_test(tc, batcher_load_state_rejects_a_bad_permutation);
    tcase_add_test(tc, batcher_next_does_not_allocate);
    tcase_add_test(tc, batcher_init_rejects_empty_set_and_zero_batch);
    suite_add_tcase(s, tc);
    return s;
}
