/* Data-parallel training and the distributed compare on Open MPI: the program (CLIPNN_BIN) under
 * `mpirun --allow-run-as-root --oversubscribe -np N` (root in CI; N ranks on 2 cores), every command
 * under `timeout`, so a hang is a failure, never a stuck suite.
 *
 * tcase "equiv": N = 1..4 ranks against one process without mpirun, on a classifier with dropout,
 *   AdamW and zclip (running statistics), batch 10 (uneven slices at N = 3 and 4), and on a
 *   character LSTM with dropout over the sequence and grad_accum 2. N = 1 is bit-identical; N > 1
 *   within TOL (below). The same N twice is bit-identical (metrics without time_ms, tensors).
 * tcase "resume": a run trained on 2 ranks to step 10, resumed to step 20 on 1 and on 3 ranks, and
 *   a one-process run resumed on 2 ranks, each end within TOL of a one-process 20-step run.
 * tcase "faults": a non-finite gradient in rank 1's slice only is seen by rank 0 (which writes
 *   the metrics) on the same steps as one process; a rank killed by SIGKILL ends the job with a
 *   non-zero exit within the timeout and the last checkpoint resumes; fewer examples per batch
 *   than ranks is a clear error (exit 2); an error on rank 0 alone ends the job with its code.
 * tcase "compare": `mpirun -np 2 clipnn compare` writes the same report.json (timings and the
 *   folder's name aside) and run files (time_ms aside) as a one-machine compare of the grid; a bad
 *   grid is refused once, on every rank, with nothing made.
 *
 * TOL: the ranks' gradients differ from one process's only in the order float32 sums run over the
 * batch (each rank sums its slice, then the slices are combined in double). One float32 rounding is
 * 6e-8 relative; a sum over the 10-80 rows here moves by a few of those, ~1e-7..1e-6 relative, and
 * 20 steps of Adam carry it into the weights and back into the loss without much growth on these
 * well-conditioned runs: measured on this suite's two runs at N = 2, 3, 4, at most 1.5e-7 relative on
 * loss and grad_norm_pre and 5.7e-7 on any tensor (max |a - b| / max |a|). TOL = 1e-5 relative is
 * ~20x above that and still far below any real difference (a wrong
 * slice or weight, a mask from the wrong stream, moves the loss at 1e-2 or more from the first step).
 *
 * Under `make test SAN=1` the program is the sanitized one; Open MPI keeps allocations from MPI_Init
 * to exit on purpose, so LeakSanitizer is off for the MPI-launched processes only (ASan and UBSan
 * stay on). Only built with MPI (CN_HAVE_MPI): without it the suite checks that a launch by mpirun
 * as several ranks is refused with a clear error instead. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "io/safetensors.h"
#include "tensor/pool.h"

#define TOL 1e-5
/* Shared-memory transfers by plain copies, not cross-memory attach (which containers often forbid:
 * ptrace rules); a hang is a failure after 120 s. */
#define MPIRUN "OMPI_MCA_btl_vader_single_copy_mechanism=none timeout -k 5 120 mpirun --allow-run-as-root --oversubscribe"

static char bin[2048], tmp[256], out[1 << 16];

/* tmp/rel (rel may name a run's file: "run/metrics.csv"); four results live at once. */
static const char *path_in(const char *base, const char *rel)
{
    static char p[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", base, rel);
    return p[k];
}

/* Runs `cmd` in the temp directory; returns the exit code (output in `out`). */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    int k = snprintf(cmd, sizeof cmd, "cd '%s' || exit 99; ", tmp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + k, sizeof cmd - (size_t)k, fmt, ap);
    va_end(ap);
    return tu_shell(out, sizeof out, cmd);
}

static void setup(void)
{
    snprintf(bin, sizeof bin, "%s", tu_clipnn_bin());
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-dist");
    unsetenv("CLIPNN_AUTO_THREADS");
}

static void teardown(void) { tu_remove_tree(tmp); }

#ifdef CN_HAVE_MPI

static const char *run_file(const char *run, const char *file)
{
    char rel[512];
    snprintf(rel, sizeof rel, "%s/%s", run, file);
    return path_in(tmp, rel);
}

/* `clipnn train` on n ranks (n = 0: one process, no mpirun). */
static int train(int n, const char *args)
{
    if (n == 0) return sh("'%s' train %s --quiet 2>&1", bin, args);
    return sh("ASAN_OPTIONS=detect_leaks=0 " MPIRUN " -np %d '%s' train %s --quiet 2>&1", n, bin, args);
}


/* ---- metrics.csv ---- */

typedef struct {
    int n;
    double loss[64], gn[64];
    long long nonfinite[64];
    int skipped[64];
    char rows[64][512];   /* each row without its time_ms column */
} metrics;

/* Splits a CSV line in place into at most max fields; returns how many. */
static int split(char *line, char **f, int max)
{
    int k = 0;
    for (char *p = line, *q; k < max && p; p = q) {
        q = strchr(p, ',');
        if (q) *q++ = '\0';
        f[k++] = p;
    }
    return k;
}

static void read_metrics(const char *dir, metrics *m)
{
    char *s = tu_slurp(run_file(dir, "metrics.csv"), NULL);
    ck_assert_msg(s != NULL, "%s/metrics.csv missing", dir);
    memset(m, 0, sizeof *m);
    char *save = NULL, *f[64];
    char *line = strtok_r(s, "\n", &save);   /* header: step,epoch,loss,lr,grad_norm_pre,...,time_ms[,gn_pre.*] */
    ck_assert_ptr_nonnull(line);
    int cols = split(line, f, 64);
    ck_assert_int_ge(cols, 13);
    ck_assert_str_eq(f[12], "time_ms");
    while ((line = strtok_r(NULL, "\n", &save)) && m->n < 64) {
        ck_assert_int_eq(split(line, f, 64), cols);
        size_t k = 0;
        for (int i = 0; i < cols; i++)   /* the row without time_ms */
            if (i != 12) k += (size_t)snprintf(m->rows[m->n] + k, sizeof m->rows[m->n] - k, "%s,", f[i]);
        ck_assert_uint_lt(k, sizeof m->rows[m->n] - 1);
        m->loss[m->n] = strtod(f[2], NULL);
        m->gn[m->n] = strtod(f[4], NULL);
        m->nonfinite[m->n] = strtoll(f[10], NULL, 10);
        m->skipped[m->n] = atoi(f[11]);
        m->n++;
    }
    free(s);
}

static double rel(double a, double b)
{
    double d = fabs(a - b), s = fmax(fabs(a), fabs(b));
    return s > 0 ? d / s : d;
}

static void assert_metrics_close(const char *a, const char *b, double tol)
{
    metrics x, y;
    read_metrics(a, &x);
    read_metrics(b, &y);
    ck_assert_int_gt(x.n, 0);
    ck_assert_int_eq(x.n, y.n);
    for (int i = 0; i < x.n; i++) {
        ck_assert_msg(rel(x.loss[i], y.loss[i]) <= tol, "%s vs %s row %d: loss %.9g vs %.9g", a, b, i + 1, x.loss[i], y.loss[i]);
        ck_assert_msg(rel(x.gn[i], y.gn[i]) <= tol, "%s vs %s row %d: grad_norm_pre %.9g vs %.9g", a, b, i + 1, x.gn[i], y.gn[i]);
    }
}

static void assert_metrics_same(const char *a, const char *b)
{
    metrics x, y;
    read_metrics(a, &x);
    read_metrics(b, &y);
    ck_assert_int_gt(x.n, 0);
    ck_assert_int_eq(x.n, y.n);
    for (int i = 0; i < x.n; i++) ck_assert_msg(!strcmp(x.rows[i], y.rows[i]), "%s vs %s: row %s vs %s", a, b, x.rows[i], y.rows[i]);
}

/* ---- checkpoints ---- */

/* Every float tensor of two checkpoints (weights, optimizer and clip state): same names and shapes,
 * max |a - b| <= tol * max |a| per tensor (tol 0: bit-identical). */
static void assert_tensors(const char *a, const char *b, double tol)
{
    cn_st_file *fa = NULL, *fb = NULL;
    ck_assert_ok(cn_st_read(run_file(a, "checkpoint.safetensors"), &fa));
    ck_assert_ok(cn_st_read(run_file(b, "checkpoint.safetensors"), &fb));
    const cn_state *sa = cn_st_tensors(fa), *sb = cn_st_tensors(fb);
    ck_assert_int_eq(sa->count, sb->count);
    int compared = 0;
    for (int i = 0; i < sa->count; i++) {
        const cn_state_item *x = &sa->items[i], *y = cn_state_find(sb, x->name);
        ck_assert_msg(y != NULL, "%s: no tensor %s", b, x->name);
        ck_assert_int_eq(x->dtype, y->dtype);
        size_t n = 1;
        for (int d = 0; d < x->ndim; d++) n *= (size_t)x->shape[d];
        if (x->dtype == CN_DT_I32 || x->dtype == CN_DT_I64) {
            size_t bytes = n * (x->dtype == CN_DT_I32 ? 4 : 8);
            ck_assert_msg(!memcmp(x->data, y->data, bytes), "%s vs %s: %s differs", a, b, x->name);
            continue;
        }
        double amax = 0, dmax = 0;
        for (size_t k = 0; k < n; k++) {
            double u = x->dtype == CN_DT_F32 ? ((const float *)x->data)[k] : ((const double *)x->data)[k];
            double v = y->dtype == CN_DT_F32 ? ((const float *)y->data)[k] : ((const double *)y->data)[k];
            if (tol == 0) ck_assert_msg(!memcmp(&u, &v, sizeof u) || (isnan(u) && isnan(v)), "%s vs %s: %s[%zu] %.9g vs %.9g", a, b, x->name, k, u, v);
            if (isfinite(u)) amax = fmax(amax, fabs(u));
            dmax = fmax(dmax, fabs(u - v));
        }
        ck_assert_msg(dmax <= tol * fmax(amax, 1e-30) || dmax == 0, "%s vs %s: %s differs by %.3g (max |value| %.3g)", a, b,
                      x->name, dmax, amax);
        compared++;
    }
    ck_assert_int_gt(compared, 2);
    cn_st_close(fa);
    cn_st_close(fb);
}

/* Dropout (its masks come from a stream the ranks must share), AdamW moments, zclip statistics,
 * shuffled data; batch 10 over 100 examples. */
static const char *const mlp_config =
    "{\"name\": \"dist-mlp\", \"seed\": 5,\n"
    " \"data\": {\"kind\": \"spirals\", \"train_size\": 100, \"test_size\": 40},\n"
    " \"model\": [{\"type\": \"linear\", \"out\": 16}, {\"type\": \"tanh\"}, {\"type\": \"dropout\", \"p\": 0.25},\n"
    "           {\"type\": \"linear\", \"out\": 2}],\n"
    " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adamw\", \"lr\": 0.01},\n"
    " \"clip\": {\"mode\": \"zclip\", \"warmup\": 3},\n"
    " \"train\": {\"steps\": 20, \"batch_size\": 10, \"eval_every\": 10, \"checkpoint_every\": 5}}\n";

/* Class labels per time step ([T*B] time-major), dropout on [T, b, H], two micro-batches a step. */
static const char *const lstm_config =
    "{\"name\": \"dist-lstm\", \"seed\": 2,\n"
    " \"data\": {\"kind\": \"text\", \"path\": \"text.txt\", \"seq_len\": 8, \"test_fraction\": 0.1, \"shuffle\": true},\n"
    " \"model\": [{\"type\": \"embedding\", \"dim\": 6}, {\"type\": \"lstm\", \"hidden\": 12, \"output\": \"sequence\"},\n"
    "           {\"type\": \"dropout\", \"p\": 0.2}, {\"type\": \"linear\", \"out\": 40}],\n"
    " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01},\n"
    " \"clip\": {\"mode\": \"norm\", \"max_norm\": 1.0},\n"
    " \"train\": {\"steps\": 20, \"batch_size\": 7, \"grad_accum\": 2}}\n";

static void write_configs(void)
{
    tu_write_text(path_in(tmp, "mlp.json"), mlp_config);
    tu_write_text(path_in(tmp, "lstm.json"), lstm_config);
    char text[3000];
    size_t k = 0;
    static const char *const words[] = {"the ", "gradient ", "clips ", "at ", "one ", "norm, ", "and ", "rank ", "sums.\n"};
    for (unsigned i = 0; k + 12 < sizeof text; i = i * 7 + 3) {
        const char *w = words[i % 9];
        memcpy(text + k, w, strlen(w));
        k += strlen(w);
    }
    text[k] = '\0';
    tu_write_text(path_in(tmp, "text.txt"), text);
}

static void check_equivalence(const char *config)
{
    char args[512], dir[32];
    snprintf(args, sizeof args, "%s --out one", config);
    ck_assert_msg(train(0, args) == 0, "one process: %s", out);
    for (int n = 1; n <= 4; n++) {
        snprintf(dir, sizeof dir, "n%d", n);
        snprintf(args, sizeof args, "%s --out %s", config, dir);
        ck_assert_msg(train(n, args) == 0, "%d ranks: %s", n, out);
        if (n == 1) {   /* one rank: the very same computation */
            assert_metrics_same("one", dir);
            assert_tensors("one", dir, 0);
        } else {
            assert_metrics_close("one", dir, TOL);
            assert_tensors("one", dir, TOL);
        }
        /* rank 0 alone writes: the run's files, nothing else */
        ck_assert_msg(access(run_file(dir, "summary.json"), F_OK) == 0, "%s: no summary.json", dir);
    }
    /* the same N again: bit-identical (time_ms aside) */
    snprintf(args, sizeof args, "%s --out n3b", config);
    ck_assert_msg(train(3, args) == 0, "3 ranks again: %s", out);
    assert_metrics_same("n3", "n3b");
    assert_tensors("n3", "n3b", 0);
}

START_TEST(test_equiv_mlp)
{
    write_configs();
    check_equivalence("mlp.json");
}
END_TEST

START_TEST(test_equiv_lstm)
{
    write_configs();
    check_equivalence("lstm.json");
}
END_TEST

START_TEST(test_resume_other_ranks)
{
    write_configs();
    ck_assert_msg(train(0, "mlp.json --out one") == 0, "%s", out);
    ck_assert_msg(train(2, "mlp.json --set train.steps=10 --out two") == 0, "%s", out);
    ck_assert_msg(sh("cp -r two two_b") == 0, "%s", out);
    ck_assert_msg(train(1, "mlp.json --resume two/checkpoint.safetensors --set train.steps=20") == 0, "%s", out);
    ck_assert_msg(train(3, "mlp.json --resume two_b/checkpoint.safetensors --set train.steps=20") == 0, "%s", out);
    assert_metrics_close("one", "two", TOL);
    assert_tensors("one", "two", TOL);
    assert_metrics_close("one", "two_b", TOL);
    assert_tensors("one", "two_b", TOL);
    /* and a one-process run continued on 2 ranks */
    ck_assert_msg(train(0, "mlp.json --set train.steps=10 --out solo") == 0, "%s", out);
    ck_assert_msg(train(2, "mlp.json --resume solo/checkpoint.safetensors --set train.steps=20") == 0, "%s", out);
    assert_metrics_close("one", "solo", TOL);
    assert_tensors("one", "solo", TOL);
}
END_TEST

/* "threads": "auto" (the default) gives each rank 1 thread (ranks share nodes), where one process on this
 * machine takes 2 for the same model (an lstm of hidden 128, batch 32) when it has 2 or more cores. */
START_TEST(test_auto_threads_one_per_rank)
{
    write_configs();
    const char *big = "lstm.json --set model.1.hidden=128 --set train.batch_size=32 --set train.grad_accum=1 "
                      "--set train.steps=2 --set train.log_every=1 --set train.eval_every=0";
    char args[512];
    snprintf(args, sizeof args, "%s --out auto1", big);
    ck_assert_msg(train(0, args) == 0, "one process: %s", out);
    snprintf(args, sizeof args, "%s --out auto2", big);
    ck_assert_msg(train(2, args) == 0, "2 ranks: %s", out);
    char want[64];
    snprintf(want, sizeof want, "\"blas_threads\":\t%d", cn_usable_cores() >= 2 ? 2 : 1);
    char *one = tu_slurp(run_file("auto1", "summary.json"), NULL), *two = tu_slurp(run_file("auto2", "summary.json"), NULL);
    ck_assert_msg(one && strstr(one, want), "one process, expected %s: %s", want, one ? one : "(none)");
    ck_assert_msg(two && strstr(two, "\"blas_threads\":\t1"), "2 ranks: %s", two ? two : "(none)");
    free(one);
    free(two);
    /* the one-process run resumed on 2 ranks: 1 thread each there too */
    snprintf(args, sizeof args, "%s --set train.steps=4 --resume auto1/checkpoint.safetensors", big);
    ck_assert_msg(train(2, args) == 0, "resumed on 2 ranks: %s", out);
    one = tu_slurp(run_file("auto1", "summary.json"), NULL);
    ck_assert_msg(one && strstr(one, "\"blas_threads\":\t1") && strstr(one, "\"steps\":\t4"), "resumed: %s",
                  one ? one : "(none)");
    free(one);
}
END_TEST

/* Example 3 (in rank 1's half of the first batch of 4) is 3e38: its forward pass overflows. */
START_TEST(test_nonfinite_one_rank)
{
    tu_write_text(path_in(tmp, "big.csv"), "a,b,y\n1,2,0\n3,4,1\n5,6,0\n3e38,3e38,1\n1,1,0\n2,2,1\n3,3,0\n4,4,1\n");
    tu_write_text(path_in(tmp, "big.json"),
               "{\"name\": \"big\", \"data\": {\"kind\": \"csv\", \"path\": \"big.csv\", \"target\": \"y\", \"shuffle\": false},\n"
               " \"model\": [{\"type\": \"linear\", \"out\": 4}, {\"type\": \"linear\", \"out\": 1}],\n"
               " \"loss\": \"mse\", \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1},\n"
               " \"clip\": {\"mode\": \"norm\", \"max_norm\": 1, \"on_nonfinite\": \"skip\"},\n"
               " \"train\": {\"steps\": 4, \"batch_size\": 4}}\n");
    ck_assert_msg(train(0, "big.json --out one") == 0, "%s", out);
    ck_assert_msg(train(2, "big.json --out two") == 0, "%s", out);
    metrics a, b;
    read_metrics("one", &a);
    read_metrics("two", &b);
    ck_assert_int_eq(a.n, 4);
    ck_assert_int_eq(b.n, 4);
    for (int i = 0; i < 4; i++) {
        /* steps 1 and 3 hold example 3: non-finite and skipped, as rank 0 (which wrote this) saw it */
        ck_assert_int_eq(b.skipped[i], i % 2 == 0);
        ck_assert_int_eq(b.skipped[i], a.skipped[i]);
        ck_assert_int_eq(b.nonfinite[i], a.nonfinite[i]);
    }
    ck_assert_int_gt(b.nonfinite[0], 0);
    assert_tensors("one", "two", TOL);
}
END_TEST

START_TEST(test_rank_killed)
{
    write_configs();
    /* a long run that checkpoints often; rank 1 is killed once a checkpoint exists */
    int rc = sh("(ASAN_OPTIONS=detect_leaks=0 " MPIRUN " -np 2 '%s' train mlp.json --set train.steps=100000000 "
                "--set train.checkpoint_every=20 --set train.eval_every=0 --out k --quiet > k.log 2>&1; echo $? > k.rc) & "
                "for i in $(seq 600); do [ -f k/checkpoint.safetensors ] && break; sleep 0.1; done; "
                "victim=''; for i in $(seq 300); do "
                "  for p in $(pgrep -f 'clipnn.* train mlp.json --set train.steps=100000000'); do "
                "    tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p; done; "
                "  [ -n \"$victim\" ] && break; sleep 0.1; done; "
                "[ -n \"$victim\" ] || { echo no rank 1; exit 9; }; kill -KILL $victim; "
                "for i in $(seq 600); do [ -f k.rc ] && break; sleep 0.1; done; cat k.rc k.log", bin);
    ck_assert_msg(rc == 0, "the killing script failed (%d): %s", rc, out);
    int code = atoi(out);
    /* non-zero, and not timeout's 124; mpirun itself names the rank and the signal (after a timeout it
       would not: timeout would have sent mpirun SIGTERM, not killed a rank) */
    ck_assert_msg(code != 0 && code != 124, "the job did not end on its own (exit %d): %s", code, out);
    ck_assert_msg(strstr(out, "rank 1") != NULL && strstr(out, "signal 9") != NULL, "no clear error: %s", out);
    /* the last checkpoint is whole and continues the run */
    ck_assert_msg(sh("'%s' train mlp.json --resume k/checkpoint.safetensors --set train.steps=100000000 "
                     "--set train.eval_every=0 --quiet 2>&1 & pid=$!; sleep 1; kill -INT $pid; wait $pid", bin) == 130,
                  "resume after the kill: %s", out);
}
END_TEST

START_TEST(test_batch_below_ranks)
{
    write_configs();
    ck_assert_int_eq(train(3, "mlp.json --set train.batch_size=2 --out small"), 2);
    ck_assert_msg(strstr(out, "train.batch_size: 2 is fewer examples than the 3 ranks") != NULL, "%s", out);
    ck_assert_msg(access(path_in(tmp, "small"), F_OK) != 0, "a run directory was made");
}
END_TEST

/* Removes the timings and run directories (they name the folder) anywhere in a report; returns how many. */
static int drop_keys(cJSON *j)
{
    int n = 0;
    static const char *const keys[] = {"steps_per_s", "wall_s", "dir", "time_ms", NULL};
    for (const char *const *k = keys; *k; k++)
        while (cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, *k)) {
            cJSON_DeleteItemFromObjectCaseSensitive(j, *k);
            n++;
        }
    for (cJSON *c = j ? j->child : NULL; c; c = c->next) n += drop_keys(c);
    return n;
}

/* An error on rank 0 only (its --out holds a run; the other ranks never look) ends the whole job with
 * the error's exit code and message, no hang, and the run there is untouched. */
START_TEST(test_error_on_one_rank)
{
    write_configs();
    ck_assert_msg(train(0, "mlp.json --set train.steps=3 --out taken") == 0, "%s", out);
    char *before = tu_slurp(run_file("taken", "metrics.csv"), NULL);
    ck_assert_ptr_nonnull(before);
    ck_assert_int_eq(train(2, "mlp.json --out taken"), 2);
    ck_assert_msg(strstr(out, "error (rank 0 of 2): taken already holds a run") != NULL, "%s", out);
    char *after = tu_slurp(run_file("taken", "metrics.csv"), NULL);
    ck_assert_ptr_nonnull(after);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
}
END_TEST

START_TEST(test_compare_two_ranks)
{
    write_configs();
    const char *grid = "mlp.json --set train.checkpoint_every=0 --sweep clip.mode=none,autoclip --seeds 2 --quiet";
    ck_assert_msg(sh("'%s' compare %s --out one > /dev/null 2>&1", bin, grid) == 0, "%s", out);
    ck_assert_msg(sh("ASAN_OPTIONS=detect_leaks=0 " MPIRUN " -np 2 '%s' compare %s --out two 2>&1", bin, grid) == 0, "%s", out);
    ck_assert_msg(strstr(out, "report: two/report.md") != NULL, "rank 0 printed no report: %s", out);
    ck_assert_msg(strstr(out + (strstr(out, "report: two") - out) + 1, "report: two/report.md") == NULL, "two reports: %s", out);
    /* report.json without the timings and the folder's name */
    char *ja = tu_slurp(path_in(tmp, "one/report.json"), NULL), *jb = tu_slurp(path_in(tmp, "two/report.json"), NULL);
    ck_assert_ptr_nonnull(ja);
    ck_assert_ptr_nonnull(jb);
    cJSON *x = cJSON_Parse(ja), *y = cJSON_Parse(jb);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    int dropped = drop_keys(x) + drop_keys(y);
    ck_assert_int_gt(dropped, 8);   /* the timings were there and are gone */
    char *pa = cJSON_Print(x), *pb = cJSON_Print(y);
    ck_assert_msg(!strcmp(pa, pb), "report.json differs:\n%s\n---\n%s", pa, pb);
    ck_assert_msg(strstr(pa, "autoclip") != NULL, "%s", pa);
    free(pa);
    free(pb);
    cJSON_Delete(x);
    cJSON_Delete(y);
    free(ja);
    free(jb);
    for (int i = 0; i < 4; i++) {
        static const char *const runs[] = {"mode=none-s5", "mode=none-s6", "mode=autoclip-s5", "mode=autoclip-s6"};
        char a[64], b[64];
        snprintf(a, sizeof a, "one/%s", runs[i]);
        snprintf(b, sizeof b, "two/%s", runs[i]);
        assert_metrics_same(a, b);
        assert_tensors(a, b, 0);
    }
}
END_TEST

/* A bad grid is refused on every rank alike: exit 2, the message once (rank 0), nothing created. */
START_TEST(test_compare_bad_grid)
{
    write_configs();
    ck_assert_int_eq(sh("ASAN_OPTIONS=detect_leaks=0 " MPIRUN " -np 2 '%s' compare mlp.json --sweep clip.bogus=1,2 --out bad 2>&1", bin), 2);
    const char *m = strstr(out, "clip.bogus: unknown key");
    ck_assert_msg(m != NULL, "%s", out);
    ck_assert_msg(strstr(m + 1, "clip.bogus: unknown key") == NULL, "said twice: %s", out);
    ck_assert_msg(access(path_in(tmp, "bad"), F_OK) != 0, "a folder was made");
}
END_TEST

#else

START_TEST(test_refused_without_mpi)
{
    tu_write_text(path_in(tmp, "mlp.json"), "{}");
    ck_assert_int_eq(sh("OMPI_COMM_WORLD_SIZE=2 '%s' train mlp.json 2>&1", bin), 2);
    ck_assert_msg(strstr(out, "built without MPI") != NULL, "%s", out);
}
END_TEST

#endif

Suite *suite_dist(void)
{
    Suite *s = suite_create("dist");
#ifdef CN_HAVE_MPI
    TCase *eq = tcase_create("equiv");
    tcase_add_checked_fixture(eq, setup, teardown);
    tcase_set_timeout(eq, 300);
    tcase_add_test(eq, test_equiv_mlp);
    tcase_add_test(eq, test_equiv_lstm);
    suite_add_tcase(s, eq);
    TCase *rs = tcase_create("resume");
    tcase_add_checked_fixture(rs, setup, teardown);
    tcase_set_timeout(rs, 200);
    tcase_add_test(rs, test_resume_other_ranks);
    tcase_add_test(rs, test_auto_threads_one_per_rank);
    suite_add_tcase(s, rs);
    TCase *fa = tcase_create("faults");
    tcase_add_checked_fixture(fa, setup, teardown);
    tcase_set_timeout(fa, 200);
    tcase_add_test(fa, test_nonfinite_one_rank);
    tcase_add_test(fa, test_rank_killed);
    tcase_add_test(fa, test_batch_below_ranks);
    tcase_add_test(fa, test_error_on_one_rank);
    suite_add_tcase(s, fa);
    TCase *cp = tcase_create("compare");
    tcase_add_checked_fixture(cp, setup, teardown);
    tcase_set_timeout(cp, 200);
    tcase_add_test(cp, test_compare_two_ranks);
    tcase_add_test(cp, test_compare_bad_grid);
    suite_add_tcase(s, cp);
#else
    TCase *no = tcase_create("nompi");
    tcase_add_checked_fixture(no, setup, teardown);
    tcase_add_test(no, test_refused_without_mpi);
    suite_add_tcase(s, no);
#endif
    return s;
}
