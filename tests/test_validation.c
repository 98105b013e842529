/* Suite "validation": what is checked before a run starts, and what a run reports about nonsense it
 * cannot refuse. End to end through the clipnn program (CLIPNN_BIN, as test_cli.c and test_badinput.c):
 * cross-key config rules fail with exit 2, name the file and the JSON path, and leave no run directory
 * behind; a run whose every gradient norm is NaN says so in summary.json; NaN is printed "nan", never
 * "-nan"; `sample --length`; CSV number syntax and line ends; a \u0000 in a config string. */
#define _GNU_SOURCE
#include "testutil.h"
#include "data/data.h"
#include "json/json.h"
#include "optim/optim.h"
#include "report/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char bin[2048], tmp[256];

static const char *at(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    return p;
}

static void put_text(const char *name, const char *text)
{
    FILE *f = fopen(at(name), "wb");
    ck_assert_msg(f != NULL, "cannot write %s", at(name));
    ck_assert_int_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static int exists(const char *name)
{
    struct stat sb;
    return stat(at(name), &sb) == 0;
}

/* Runs `cd tmp && clipnn ARGS` (stdout and stderr into out); returns the exit code. */
#define run(out, n, ...) tu_run_clipnn(out, n, tmp, __VA_ARGS__)

/* Same with stdout only (stderr discarded): what a command prints as its result. */
static int run_stdout(char *out, size_t n, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>/dev/null", tmp, bin, args);
    return tu_shell(out, n, cmd);
}

/* A 2-class spirals MLP: 100 training examples, 20 steps, lr 0.1. */
static const char *const mlp =
    "{\"name\": \"v\", \"data\": {\"kind\": \"spirals\", \"train_size\": 100, \"test_size\": 20},\n"
    " \"model\": [{\"type\": \"linear\", \"out\": 8}, {\"type\": \"tanh\"}, {\"type\": \"linear\", \"out\": 2}],\n"
    " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1},\n"
    " \"train\": {\"steps\": 20, \"batch_size\": 10}}\n";

static void setup(void)
{
    snprintf(bin, sizeof bin, "%s", tu_clipnn_bin());
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-validation");
    put_text("mlp.json", mlp);
}

static void teardown(void) { tu_remove_tree(tmp); }

/* ---- cross-key rules: exit 2, file and path named, no run directory ---- */

static const struct { const char *sets, *expect; } cross_key[] = {
    /* the cases: eta_min far above lr failed at a later step with no file named; 5 with lr 0.1
     * "decayed" upward */
    {"--set schedule.type=cosine --set schedule.t_max=10 --set schedule.eta_min=1e308",
     "mlp.json: schedule.eta_min: 1e+308 is above optimizer.lr 0.1"},
    {"--set schedule.type=cosine --set schedule.t_max=10 --set schedule.eta_min=5",
     "mlp.json: schedule.eta_min: 5 is above optimizer.lr 0.1"},
    {"--set schedule.warmup_steps=21", "mlp.json: schedule.warmup_steps: 21 is more than train.steps 20"},
    {"--set schedule.type=step --set schedule.step_size=1 --set schedule.gamma=1.5",
     "mlp.json: schedule.gamma: expected a number in [0, 1], got 1.5"},
    {"--set train.batch_size=101",
     "mlp.json: train.batch_size: 101 is more than the 100 training examples of data \"spirals\""},
    {"--set train.log_every=21", "mlp.json: train.log_every: 21 is more than train.steps 20"},
    {"--set compare=5", "mlp.json: compare: expected an object, got 5"},
    {"--set compare.variants=5", "mlp.json: compare.variants: expected an object {NAME: {PATH: VALUE}}, got 5"},
    {"--set compare.variants.a=5", "mlp.json: compare.variants.a: expected an object {PATH: VALUE}, got 5"},
    /* norm_type below 1: the norm of 1000 unit gradients at p = 0.01 is 1e300, at 1e-300 inf, and every
     * update was scaled to nothing */
    {"--set clip.mode=norm --set clip.max_norm=1 --set clip.norm_type=0.01",
     "mlp.json: clip.norm_type: expected a number >= 1 or \"inf\", got 0.01"},
    {"--set clip.mode=norm --set clip.max_norm=1 --set clip.norm_type=1e-300",
     "mlp.json: clip.norm_type: expected a number >= 1 or \"inf\", got 1e-300"},
    {"--set 'name=\"ab\\u0000c\"'", "--set name: the string holds \"\\u0000\""},
};

START_TEST(cross_key_errors_name_file_and_path_and_leave_no_run_directory)
{
    char out[8192];
    for (size_t i = 0; i < sizeof cross_key / sizeof cross_key[0]; i++) {
        /* with --out, and without it (the default runs/<name>-<timestamp>) */
        for (int with_out = 0; with_out < 2; with_out++) {
            int rc = run(out, sizeof out, "train mlp.json %s %s --quiet", with_out ? "--out o" : "", cross_key[i].sets);
            ck_assert_msg(rc == 2, "%s: exit %d, not 2: %s", cross_key[i].sets, rc, out);
            ck_assert_msg(strstr(out, cross_key[i].expect) != NULL, "%s: message lacks '%s': %s", cross_key[i].sets,
                          cross_key[i].expect, out);
            ck_assert_msg(!exists("o") && !exists("runs"), "%s: a run directory was created", cross_key[i].sets);
        }
    }
}
END_TEST

/* The bounds themselves are accepted: eta_min = lr, warm-up over the whole run, one batch of every
 * example, one row at the last step, gamma 1, norm_type 1. */
START_TEST(cross_key_bounds_are_accepted)
{
    char out[8192];
    int rc = run(out, sizeof out, "train mlp.json --out o1 --quiet --set schedule.type=cosine --set schedule.t_max=10 "
                 "--set schedule.eta_min=0.1 --set schedule.warmup_steps=20 --set train.batch_size=100 "
                 "--set train.log_every=20");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char *m = tu_slurp(at("o1/metrics.csv"), NULL), *s = tu_slurp(at("o1/summary.json"), NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(strstr(m, "\n20,") != NULL, "the step-20 row is missing: %s", m);
    ck_assert_msg(strstr(s, "\"final_loss\":\tnull") == NULL, "final_loss is null: %s", s);
    free(m);
    free(s);
    rc = run(out, sizeof out, "train mlp.json --out o2 --quiet --set schedule.type=step --set schedule.step_size=5 "
             "--set schedule.gamma=1 --set clip.mode=norm --set clip.max_norm=1 --set clip.norm_type=1");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
}
END_TEST

/* Every lr a valid config can produce is finite and in [0, lr] (to an ulp): the optimizer's own check ("learning
 * rate -inf is not a finite number") fired at a later step, after the run directory was made. With a
 * base lr near DBL_MAX the warm-up (lr s) and cosine ((lr - eta_min)(1 + cos)) products overflowed. */
START_TEST(schedule_lr_is_finite_for_every_valid_config)
{
    static const char *const scheds[] = {
        "{\"type\": \"cosine\", \"t_max\": 10, \"eta_min\": 0, \"warmup_steps\": 5}",
        "{\"type\": \"cosine\", \"t_max\": 7, \"eta_min\": 1e308}",
        "{\"type\": \"step\", \"step_size\": 1, \"gamma\": 1, \"warmup_steps\": 3}",
        "{\"type\": \"constant\", \"warmup_steps\": 20}",
    };
    const double bases[] = {1.7e308, 1e308, 0.1};
    for (size_t i = 0; i < sizeof scheds / sizeof scheds[0]; i++)
        for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
            cJSON *j = cJSON_Parse(scheds[i]);
            cn_schedule s;
            ck_assert_ok(cn_schedule_from_json(j, "schedule", &s));
            cJSON_Delete(j);
            if (s.eta_min > bases[b]) continue;   /* refused before a run (cross_key_errors_...) */
            for (long long step = 1; step <= 25; step++) {
                double lr = cn_schedule_lr(&s, bases[b], step);
                ck_assert_msg(lr >= 0 && lr <= bases[b] * (1 + 1e-15), "%s, lr %g, step %lld: %g", scheds[i], bases[b], step, lr);
            }
        }
}
END_TEST

/* ---- a run whose every norm is NaN; NaN printed as "nan" ---- */

/* Weights of ~1e30 through a relu: the logits overflow float32 to inf and inf - inf gives NaN (with the
 * sign bit set on x86, which printf writes "-nan"). `skip` lets the run go on: every step's norm is NaN. */
static const char *const nan_cfg =
    "{\"name\": \"nanrun\", \"data\": {\"kind\": \"spirals\", \"train_size\": 40, \"test_size\": 12},\n"
    " \"model\": [{\"type\": \"linear\", \"out\": 8, \"init\": {\"weight\": {\"kind\": \"normal\", \"std\": 1e30}}},\n"
    "            {\"type\": \"relu\"},\n"
    "            {\"type\": \"linear\", \"out\": 2, \"init\": {\"weight\": {\"kind\": \"normal\", \"std\": 1e30}}}],\n"
    " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1},\n"
    " \"clip\": {\"mode\": \"norm\", \"max_norm\": 1, \"on_nonfinite\": \"skip\", \"max_consecutive_skips\": 100},\n"
    " \"train\": {\"steps\": 4, \"batch_size\": 4}}\n";

START_TEST(all_nan_norms_give_max_grad_norm_pre_nan_and_the_report_reads_it)
{
    put_text("nan.json", nan_cfg);
    char out[8192];
    int rc = run(out, sizeof out, "train nan.json --out o");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    /* the progress lines (stderr, not a terminal) */
    ck_assert_msg(strstr(out, "loss nan") && !strstr(out, "-nan"), "progress: %s", out);
    char *s = tu_slurp(at("o/summary.json"), NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(strstr(s, "\"max_grad_norm_pre\":\t\"nan\"") != NULL, "summary: %s", s);
    ck_assert_msg(strstr(s, "\"skipped_steps\":\t4") != NULL, "summary: %s", s);
    free(s);
    /* src/report reads it back as a present, non-finite value */
    cn_report_run in = {.variant = "nan", .seed = 1, .dir = at("o"), .exit_code = 0};
    cn_report_rundata rd;
    ck_assert_ok(cn_report_load(&in, &rd));
    ck_assert_msg(!rd.failed && rd.have_summary, "%s", rd.reason);
    ck_assert(rd.max_gn.present && isnan(rd.max_gn.v));
    cn_report_rundata_free(&rd);
    /* "no norm was a number yet" survives a checkpoint: 2 steps, then resumed to 4 */
    ck_assert_int_eq(run(out, sizeof out, "train nan.json --out o2 --quiet --set train.steps=2"), 0);
    rc = run(out, sizeof out, "train nan.json --resume o2/checkpoint.safetensors --quiet --set train.steps=4");
    ck_assert_msg(rc == 0, "resume: exit %d: %s", rc, out);
    s = tu_slurp(at("o2/summary.json"), NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(strstr(s, "\"max_grad_norm_pre\":\t\"nan\"") && strstr(s, "\"steps\":\t4,"), "summary: %s", s);
    free(s);
}
END_TEST

START_TEST(eval_of_a_nan_model_prints_nan_not_minus_nan)
{
    put_text("nan.json", nan_cfg);
    char out[8192];
    ck_assert_int_eq(run(out, sizeof out, "train nan.json --out o --quiet"), 0);
    int rc = run_stdout(out, sizeof out, "eval nan.json --checkpoint o/checkpoint.safetensors");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "\nloss: nan\n") != NULL && !strstr(out, "-nan"), "eval printed: %s", out);
}
END_TEST

/* ---- sample --length ---- */

START_TEST(sample_prints_exactly_length_characters)
{
    put_text("t.txt", "abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc\n");
    put_text("text.json",
             "{\"name\": \"t\", \"data\": {\"kind\": \"text\", \"path\": \"t.txt\", \"seq_len\": 8, \"test_fraction\": 0},\n"
             " \"model\": [{\"type\": \"embedding\", \"dim\": 4}, {\"type\": \"gru\", \"hidden\": 8, \"output\": \"sequence\"},\n"
             "            {\"type\": \"linear\", \"out\": 4}],\n"
             " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01},\n"
             " \"train\": {\"steps\": 3, \"batch_size\": 4}}\n");
    char out[8192];
    int rc = run(out, sizeof out, "train text.json --out o --quiet");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    /* --length 0: nothing at all (it printed one character) */
    rc = run_stdout(out, sizeof out, "sample text.json --checkpoint o/checkpoint.safetensors --length 0");
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(out[0] == 0, "printed \"%s\"", out);
    /* without --prime: N characters and a newline (it printed N + 1) */
    for (int n = 1; n <= 7; n += 6) {
        rc = run_stdout(out, sizeof out, "sample text.json --checkpoint o/checkpoint.safetensors --length %d", n);
        ck_assert_int_eq(rc, 0);
        ck_assert_msg(strlen(out) == (size_t)n + 1 && out[n] == '\n', "--length %d printed \"%s\"", n, out);
    }
    /* with --prime: the priming text, then N characters */
    rc = run_stdout(out, sizeof out, "sample text.json --checkpoint o/checkpoint.safetensors --length 3 --prime ab");
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strlen(out) == 6 && !strncmp(out, "ab", 2) && out[5] == '\n', "printed \"%s\"", out);
}
END_TEST

/* ---- the class-count error ---- */

START_TEST(class_count_error_never_suggests_an_out_above_the_maximum)
{
    /* a label of 20000000 needs 20000001 outputs, above a layer's largest size (2^24) */
    put_text("c.csv", "a,b,y\n1,2,0\n3,4,20000000\n");
    put_text("c.json", "{\"name\": \"c\", \"data\": {\"kind\": \"csv\", \"path\": \"c.csv\", \"target\": \"y\", "
                       "\"target_kind\": \"class\"},\n \"model\": [{\"type\": \"linear\", \"out\": 2}],\n"
                       " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1},\n"
                       " \"train\": {\"steps\": 2, \"batch_size\": 2}}\n");
    char out[8192];
    int rc = run(out, sizeof out, "train c.json --out o --quiet");
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "c.json: data: a class label of data \"csv\" is 20000000") && strstr(out, "(16777216)") &&
                  !strstr(out, "\"out\" to 20000001"), "%s", out);
    ck_assert(!exists("o"));
}
END_TEST

/* ---- CSV: decimal numbers only; LF, CRLF and lone CR line ends ---- */

static cn_status load_csv(const char *file, cn_data *d)
{
    char js[600];
    snprintf(js, sizeof js, "{\"kind\": \"csv\", \"path\": \"%s\", \"target\": \"y\"}", file);
    cJSON *j = cJSON_Parse(js);
    ck_assert_ptr_nonnull(j);
    memset(d, 0, sizeof *d);
    cn_status st = cn_data_load(j, "data", 1, tmp, d);
    cJSON_Delete(j);
    return st;
}

START_TEST(csv_refuses_hex_floats_and_inf_nan_spellings)
{
    static const char *const cells[] = {"0x1p3", "0X10", "inf", "-Infinity", "nan", "NaN(1)", "1e", ".", "+", "1.5.2",
                                        "1e+", "e5"};
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
        char text[128], want[128];
        snprintf(text, sizeof text, "a,y\n1,2\n%s,3\n", cells[i]);
        put_text("h.csv", text);
        cn_data d;
        cn_status st = load_csv("h.csv", &d);
        cn_data_free(&d);
        ck_assert_msg(st == CN_ERR_FORMAT, "\"%s\" was accepted", cells[i]);
        snprintf(want, sizeof want, "h.csv:3: column \"a\": \"%s\" is not a number", cells[i]);
        ck_assert_msg(strstr(cn_errmsg(), want) != NULL, "\"%s\": %s", cells[i], cn_errmsg());
    }
    /* what CSV writers produce still reads */
    put_text("h.csv", "a,y\n-1.5e3,2\n+.5,3\n7.,1E-2\n0,-0\n");
    cn_data d;
    ck_assert_ok(load_csv("h.csv", &d));
    const float x[] = {-1500, 0.5f, 7, 0}, y[] = {2, 3, 0.01f, 0};
    ck_assert_int_eq(d.train.n, 4);
    for (int i = 0; i < 4; i++) ck_assert(d.train.x[i] == x[i] && d.train.y[i] == y[i]);
    cn_data_free(&d);
}
END_TEST

START_TEST(csv_lone_cr_line_ends_read_as_lines)
{
    put_text("lf.csv", "a,b,y\n1,2,0.5\n\n3,4,1.5\n");
    put_text("cr.csv", "a,b,y\r1,2,0.5\r\r3,4,1.5\r");
    put_text("mixed.csv", "a,b,y\r\n1,2,0.5\r3,4,1.5\n");
    cn_data a, b, c;
    ck_assert_ok(load_csv("lf.csv", &a));
    ck_assert_ok(load_csv("cr.csv", &b));
    ck_assert_ok(load_csv("mixed.csv", &c));
    ck_assert_int_eq(a.train.n, 2);
    ck_assert_int_eq(b.train.n, 2);
    ck_assert_int_eq(c.train.n, 2);
    ck_assert_int_eq(b.train.features, 2);
    ck_assert(!memcmp(a.train.x, b.train.x, 4 * sizeof(float)) && !memcmp(a.train.y, b.train.y, 2 * sizeof(float)));
    ck_assert(!memcmp(a.train.x, c.train.x, 4 * sizeof(float)) && !memcmp(a.train.y, c.train.y, 2 * sizeof(float)));
    cn_data_free(&a);
    cn_data_free(&b);
    cn_data_free(&c);
    /* an error in such a file names the right line */
    put_text("cr.csv", "a,b,y\r1,2,0.5\r3,x,1.5\r");
    ck_assert_int_eq(load_csv("cr.csv", &a), CN_ERR_FORMAT);
    cn_data_free(&a);
    ck_assert_msg(strstr(cn_errmsg(), "cr.csv:3: column \"b\": \"x\"") != NULL, "%s", cn_errmsg());
}
END_TEST

/* ---- \u0000 in a JSON string ---- */

START_TEST(json_nul_escape_is_an_error_naming_the_path)
{
    static const struct { const char *text, *msg; } bad[] = {
        {"{\"name\": \"ab\\u0000c\"}", "cfg: name: the string holds \"\\u0000\" (line 1)"},
        {"{\"data\": {\"kind\": \"csv\",\n \"path\": \"x\\u0000.csv\"}}", "cfg: data.path: the string holds \"\\u0000\" (line 2)"},
        {"{\"model\": [{\"type\": \"linear\"}, {\"type\": \"tanh\\u0000\"}]}", "cfg: model.1.type: the string holds"},
        {"{\"a\": [1, [2, \"\\u0000\"]]}", "cfg: a.1.1: the string holds"},
        {"{\"a\": {\"b\\u0000c\": 1}}", "cfg: a: a key holds \"\\u0000\""},
        {"\"\\u0000\"", "cfg: the string holds"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = NULL;
        ck_assert_int_eq(cn_json_parse(bad[i].text, "cfg", &j), CN_ERR_ARG);
        ck_assert_ptr_null(j);
        ck_assert_msg(strstr(cn_errmsg(), bad[i].msg) == cn_errmsg(), "%s: %s", bad[i].text, cn_errmsg());
    }
    /* an escaped backslash followed by u0000 is six ordinary characters; other escapes are fine */
    cJSON *j = NULL;
    ck_assert_ok(cn_json_parse("{\"p\": \"a\\\\u0000\", \"q\": \"\\u0041\\u00e9\\\"\"}", "cfg", &j));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "p")->valuestring, "a\\u0000");
    cJSON_Delete(j);
}
END_TEST

/* The config file path end to end: the error names the file and the path, no run directory. */
START_TEST(config_file_with_nul_escape_is_refused)
{
    put_text("nul.json", "{\"name\": \"v\", \"data\": {\"kind\": \"csv\", \"path\": \"d\\u0000.csv\", \"target\": \"y\"},\n"
                         " \"model\": [{\"type\": \"linear\", \"out\": 1}]}\n");
    char out[8192];
    int rc = run(out, sizeof out, "train nul.json --quiet");
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(out, "nul.json: data.path: the string holds \"\\u0000\"") != NULL, "%s", out);
    ck_assert(!exists("runs"));
}
END_TEST

Suite *suite_validation(void)
{
    Suite *s = suite_create("validation");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cross_key_errors_name_file_and_path_and_leave_no_run_directory);
    tcase_add_test(tc, cross_key_bounds_are_accepted);
    tcase_add_test(tc, schedule_lr_is_finite_for_every_valid_config);
    tcase_add_test(tc, class_count_error_never_suggests_an_out_above_the_maximum);
    tcase_add_test(tc, json_nul_escape_is_an_error_naming_the_path);
    tcase_add_test(tc, config_file_with_nul_escape_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("runs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, all_nan_norms_give_max_grad_norm_pre_nan_and_the_report_reads_it);
    tcase_add_test(tc, eval_of_a_nan_model_prints_nan_not_minus_nan);
    tcase_add_test(tc, sample_prints_exactly_length_characters);
    suite_add_tcase(s, tc);
    tc = tcase_create("csv");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, csv_refuses_hex_floats_and_inf_nan_spellings);
    tcase_add_test(tc, csv_lone_cr_line_ends_read_as_lines);
    suite_add_tcase(s, tc);
    return s;
}
