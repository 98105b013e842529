/* Suite "export": `clipnn export` (model tensors alone, atomic, never over its input) and `clipnn predict`
 * (per-example outputs), checked against PyTorch: tests/golden/gen_export.py loaded the committed exports in
 * tests/golden/export/ into PyTorch with examples/torch_load.py and wrote what PyTorch computes
 * (<name>.expected.json: the loss and every output). No Python here. */
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp[256];
static void setup(void) { tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-export"); }
static void teardown(void) { tu_remove_tree(tmp); }

static int clipnn(char *out, size_t n, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", tu_clipnn_bin(), args);
    return tu_shell(out, n, cmd);
}

static cJSON *expected(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "golden/export/%s.expected.json", name);
    char *s = tu_slurp(p, NULL);
    ck_assert_msg(s != NULL, "cannot read %s", p);
    cJSON *j = cJSON_Parse(s);
    free(s);
    ck_assert_ptr_nonnull(j);
    return j;
}

static const char *const models[] = {"mlp_ce", "lstm_seq", "stack_last", "rnn_relu_seq"};
static const char *const inputs[] = {"x_flat.npy", "x_seq.npy", "x_seq.npy", "x_seq.npy"};

START_TEST(eval_of_an_export_matches_pytorch_loss)
{
    static char out[8192];
    for (int i = 0; i < 4; i++) {
        char cfg[128], st[128];
        snprintf(cfg, sizeof cfg, "golden/export/%s.json", models[i]);
        snprintf(st, sizeof st, "golden/export/%s.safetensors", models[i]);
        int rc = clipnn(out, sizeof out, "eval %s --checkpoint %s", cfg, st);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", models[i], rc, out);
        const char *l = strstr(out, "loss: ");
        ck_assert_ptr_nonnull(l);
        double got = atof(l + 6);
        cJSON *e = expected(models[i]);
        double want = cJSON_GetObjectItem(e, "loss")->valuedouble;
        ck_assert_msg(fabs(got - want) <= 2e-5 * fabs(want), "%s: clipnn eval %.9g, PyTorch %.9g", models[i], got, want);
        cJSON_Delete(e);
    }
}
END_TEST

START_TEST(predict_npy_outputs_match_pytorch_outputs)
{
    static char out[8192];
    for (int i = 0; i < 4; i++) {
        char cfg[128], st[128], data[128], dst[512];
        snprintf(cfg, sizeof cfg, "golden/export/%s.json", models[i]);
        snprintf(st, sizeof st, "golden/export/%s.safetensors", models[i]);
        snprintf(data, sizeof data, "golden/export/%s", inputs[i]);
        snprintf(dst, sizeof dst, "%s/%s.npy", tmp, models[i]);
        int rc = clipnn(out, sizeof out, "predict %s --checkpoint %s --data %s --out %s", cfg, st, data, dst);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", models[i], rc, out);
        cn_npy a;
        ck_assert_ok(cn_npy_read(dst, &a));
        cJSON *e = expected(models[i]);
        cJSON *shape = cJSON_GetObjectItem(e, "shape"), *vals = cJSON_GetObjectItem(e, "outputs");
        ck_assert_int_eq(a.ndim, cJSON_GetArraySize(shape));
        for (int d = 0; d < a.ndim; d++) ck_assert_int_eq((int)a.shape[d], cJSON_GetArrayItem(shape, d)->valueint);
        ck_assert(a.kind == 'f' && a.itemsize == 4);
        ck_assert_int_eq((int)a.numel, cJSON_GetArraySize(vals));
        const float *o = a.data;
        int k = 0;
        for (cJSON *v = vals->child; v; v = v->next, k++)
            ck_assert_msg(fabs(o[k] - v->valuedouble) <= 1e-5 + 1e-5 * fabs(v->valuedouble),
                          "%s: output %d: clipnn %.9g, PyTorch %.9g", models[i], k, o[k], v->valuedouble);
        cn_npy_free(&a);
        /* classification: the classes file holds the argmax of the logits */
        snprintf(dst, sizeof dst, "%s/%s.class.npy", tmp, models[i]);
        if (i == 0) {
            ck_assert_ok(cn_npy_read(dst, &a));
            ck_assert(a.kind == 'i' && a.itemsize == 8 && a.ndim == 1 && a.shape[0] == 12);
            for (int r = 0; r < 12; r++) {
                int best = 0;
                for (int c = 1; c < 3; c++)
                    if (cJSON_GetArrayItem(vals, r * 3 + c)->valuedouble > cJSON_GetArrayItem(vals, r * 3 + best)->valuedouble) best = c;
                ck_assert_int_eq((int)((const int64_t *)a.data)[r], best);
            }
            cn_npy_free(&a);
        } else {
            ck_assert_msg(access(dst, F_OK) != 0, "%s: a regression model wrote %s", models[i], dst);
        }
        cJSON_Delete(e);
    }
}
END_TEST

START_TEST(predict_csv_has_one_row_per_example_and_step)
{
    static char out[65536];
    int rc = clipnn(out, sizeof out, "predict golden/export/mlp_ce.json --checkpoint golden/export/mlp_ce.safetensors "
                    "--data golden/export/x_flat.npy");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(!strncmp(out, "example,out0,out1,out2,class\n0,", 31), "%s", out);
    int lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    ck_assert_int_eq(lines, 13);
    rc = clipnn(out, sizeof out, "predict golden/export/lstm_seq.json --checkpoint golden/export/lstm_seq.safetensors "
                "--data golden/export/x_seq.npy");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(!strncmp(out, "example,step,out0,out1\n0,0,", 27), "%s", out);
    lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    ck_assert_int_eq(lines, 1 + 12 * 7);
    ck_assert_ptr_nonnull(strstr(out, "\n11,6,"));
}
END_TEST

/* CSV input: the config's target column is left out; the predictions equal the npy input's. */
START_TEST(predict_reads_csv_examples_and_drops_the_target_column)
{
    static char a[65536], b[65536];
    char csv[512], dst[512];
    snprintf(csv, sizeof csv, "%s/in.csv", tmp);
    FILE *f = fopen(csv, "w");
    ck_assert_ptr_nonnull(f);
    cn_npy x;
    ck_assert_ok(cn_npy_read("golden/export/x_flat.npy", &x));
    fprintf(f, "f0,f1,label,f2,f3\r\n");
    for (int r = 0; r < 12; r++) {
        const float *v = (const float *)x.data + r * 4;
        fprintf(f, "%.9g,%.9g,%d,%.9g,%.9g\r\n", v[0], v[1], r % 3, v[2], v[3]);
    }
    fclose(f);
    cn_npy_free(&x);
    int rc = clipnn(a, sizeof a, "predict golden/export/mlp_ce.json --checkpoint golden/export/mlp_ce.safetensors "
                    "--data golden/export/x_flat.npy");
    ck_assert_int_eq(rc, 0);
    /* mlp_ce.json has no data.target (npy data): all 5 columns are features -> refused */
    rc = clipnn(b, sizeof b, "predict golden/export/mlp_ce.json --checkpoint golden/export/mlp_ce.safetensors "
                "--data %s", csv);
    ck_assert_msg(rc == 2 && strstr(b, "in.csv: examples of 5 features, but the model takes 4"), "exit %d: %s", rc, b);
    /* a config whose data is that CSV with target "label": the other 4 columns are the features, and the
     * predictions are those of the same examples from the npy file */
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/cfg.json", tmp);
    f = fopen(cfg, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"data\": {\"kind\": \"csv\", \"path\": \"in.csv\", \"target\": \"label\", \"target_kind\": \"class\"},"
               "\"model\": [{\"type\": \"linear\", \"out\": 16}, {\"type\": \"tanh\"}, {\"type\": \"dropout\", \"p\": 0.1},"
               "{\"type\": \"linear\", \"out\": 3}], \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adam\"},"
               "\"train\": {\"batch_size\": 4}}");
    fclose(f);
    rc = clipnn(b, sizeof b, "predict %s --checkpoint golden/export/mlp_ce.safetensors --data %s", cfg, csv);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, b);
    ck_assert_str_eq(b, a);
    /* through the CSV writer to a file: the same text as on standard output */
    snprintf(dst, sizeof dst, "%s/p.csv", tmp);
    rc = clipnn(b, sizeof b, "predict golden/export/mlp_ce.json --checkpoint golden/export/mlp_ce.safetensors "
                "--data golden/export/x_flat.npy --out %s", dst);
    ck_assert_int_eq(rc, 0);
    char *file = tu_slurp(dst, NULL);
    ck_assert_ptr_nonnull(file);
    ck_assert_str_eq(file, a);
    free(file);
}
END_TEST

START_TEST(predict_rejects_bad_input_clearly)
{
    static char out[8192];
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.csv", tmp);
    FILE *f = fopen(bad, "w");
    fprintf(f, "a,b,c,d\n1,2,3,4\n1,2,x,4\n");
    fclose(f);
    int rc = clipnn(out, sizeof out, "predict golden/export/mlp_ce.json --checkpoint golden/export/mlp_ce.safetensors "
                    "--data %s", bad);
    ck_assert_msg(rc == 2 && strstr(out, "bad.csv:3: column 3: expected a finite number"), "exit %d: %s", rc, out);
    rc = clipnn(out, sizeof out, "predict golden/export/lstm_seq.json --checkpoint golden/export/lstm_seq.safetensors "
                "--data golden/export/x_flat.npy");
    ck_assert_msg(rc == 2 && strstr(out, "x_flat.npy: examples of 4 features, but the model takes sequences of 3"),
                  "exit %d: %s", rc, out);
    rc = clipnn(out, sizeof out, "predict golden/export/mlp_ce.json --checkpoint golden/export/mlp_ce.safetensors "
                "--data golden/export/x_flat.npy --out %s/p.txt", tmp);
    ck_assert_msg(rc == 2 && strstr(out, "--out must end in .npy or .csv"), "exit %d: %s", rc, out);
    rc = clipnn(out, sizeof out, "predict golden/export/mlp_ce.json --checkpoint golden/export/mlp_ce.safetensors");
    ck_assert_msg(rc == 2 && strstr(out, "missing --data"), "exit %d: %s", rc, out);
}
END_TEST

START_TEST(export_writes_model_tensors_only_and_never_over_its_input)
{
    static char out[8192];
    char run[512], ck[600], dst[600];
    snprintf(run, sizeof run, "%s/run", tmp);
    int rc = clipnn(out, sizeof out, "train configs/tiny_rnn.json --quiet --set train.steps=3 --out %s", run);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run);
    snprintf(dst, sizeof dst, "%s/model.safetensors", tmp);
    rc = clipnn(out, sizeof out, "export %s --out %s", ck, dst);
    ck_assert_msg(rc == 0 && strstr(out, "wrote 6 model tensors"), "exit %d: %s", rc, out);
    cn_st_file *a, *b;
    ck_assert_ok(cn_st_read(ck, &a));
    ck_assert_ok(cn_st_read(dst, &b));
    const cn_state *ta = cn_st_tensors(a), *tb = cn_st_tensors(b);
    ck_assert_int_eq(tb->count, 6);
    for (int i = 0; i < tb->count; i++) {
        const cn_state_item *it = &tb->items[i];
        ck_assert_msg(strncmp(it->name, "optim.", 6) && strncmp(it->name, "clip.", 5) && strncmp(it->name, "data.", 5) &&
                      strncmp(it->name, "train.", 6), "%s exported", it->name);
        const cn_state_item *src = cn_state_find(ta, it->name);
        ck_assert_ptr_nonnull(src);
        ck_assert(it->dtype == CN_DT_F32 && src->dtype == CN_DT_F32);
        ck_assert(memcmp(it->data, src->data, cn_state_item_numel(it) * 4) == 0);
    }
    ck_assert_str_eq(cn_st_meta(b, "format"), "pt");
    ck_assert_ptr_nonnull(strstr(cn_st_meta(b, "clipnn_model"), "\"rnn\""));
    ck_assert_str_eq(cn_st_meta(b, "clipnn_step"), "3");
    cn_st_close(a);
    cn_st_close(b);
    /* the export is a valid init_from / eval checkpoint */
    rc = clipnn(out, sizeof out, "eval configs/tiny_rnn.json --checkpoint %s", dst);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    /* never over its input, even through another path to the same file */
    size_t before_len;
    char *before = tu_slurp(ck, &before_len);
    rc = clipnn(out, sizeof out, "export %s --out %s/../run/checkpoint.safetensors", ck, run);
    ck_assert_msg(rc == 2 && strstr(out, "is the checkpoint itself"), "exit %d: %s", rc, out);
    size_t after_len;
    char *after = tu_slurp(ck, &after_len);
    ck_assert(before_len == after_len && memcmp(before, after, before_len) == 0);
    free(before);
    free(after);
    /* an export is not a checkpoint to export from; a missing file is bad input */
    rc = clipnn(out, sizeof out, "export %s --out %s/again.safetensors", dst, tmp);
    ck_assert_msg(rc == 2 && strstr(out, "not a clipnn checkpoint"), "exit %d: %s", rc, out);
    /* nor one to resume from (the message names the file's format, read before the file is closed) */
    rc = clipnn(out, sizeof out, "train configs/tiny_rnn.json --quiet --set train.steps=5 --out %s/r2 --resume %s", tmp, dst);
    ck_assert_msg(rc == 2 && strstr(out, "not a clipnn checkpoint (metadata 'format' is pt)"), "exit %d: %s", rc, out);
    rc = clipnn(out, sizeof out, "export %s/nope.safetensors --out %s/x.safetensors", tmp, tmp);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, out);
    rc = clipnn(out, sizeof out, "export %s", ck);
    ck_assert_msg(rc == 2 && strstr(out, "missing --out"), "exit %d: %s", rc, out);
}
END_TEST

Suite *suite_export(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, eval_of_an_export_matches_pytorch_loss);
    tcase_add_test(tc, predict_npy_outputs_match_pytorch_outputs);
    tcase_add_test(tc, predict_csv_has_one_row_per_example_and_step);
    tcase_add_test(tc, predict_reads_csv_examples_and_drops_the_target_column);
    tcase_add_test(tc, predict_rejects_bad_input_clearly);
    tcase_add_test(tc, export_writes_model_tensors_only_and_never_over_its_input);
    suite_add_tcase(s, tc);
    return s;
}
