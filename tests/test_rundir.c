/* The run directory and the program's standard streams, end to end (CLIPNN_BIN, as in test_cli.c):
 *
 * tcase "writer": one writer per run directory (DIR/.lock): a second train or a --resume into a
 *   directory whose run is still writing exits 2 "run in use by pid N", removes nothing (the live
 *   writer checkpoints every step, so a removed temp file would fail it) and the first run ends with
 *   config, checkpoint, logs and summary of one and the same run; of runs started together into one
 *   new directory exactly one runs.
 * tcase "out": --out takes a new or empty directory only (a run resumed in its own directory aside),
 *   never writes over the init_from file (by identity: a symbolic link is caught), and refuses /.
 * tcase "streams": with fds 0-2 closed the run's files are still its own (metrics.csv starts with
 *   its header); stdout that cannot be written (/dev/full, closed) is exit 1 with a message.
 * tcase "interrupt": SIGINT or SIGTERM, then --resume, gives metrics.csv (but for time_ms), eval.csv
 *   and the final weights of the uninterrupted run, byte for byte.
 * tcase "fifo": a FIFO with no writer as the config, --checkpoint, --resume, init_from or a data file
 *   (csv, npy, text), or in the place of a log of the run being resumed, is refused at once with
 *   exit 2 (each command runs under `timeout`, so a hang fails instead of blocking the suite). */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "train/trainer.h"

static char bin[2048], tmp[256];
static pid_t bg_pid;   /* a background run of the current test, ended by teardown if a check failed */

/* Shuffled spirals with a test set; every piece of resumable state (AdamW moments, dropout's RNG,
 * zclip's statistics). */
static const char *const run_config =
    "{\"name\": \"rundir\", \"seed\": 5,\n"
    " \"data\": {\"kind\": \"spirals\", \"train_size\": 50, \"test_size\": 20},\n"
    " \"model\": [{\"type\": \"linear\", \"out\": 16}, {\"type\": \"relu\"}, {\"type\": \"dropout\", \"p\": 0.2},\n"
    "           {\"type\": \"linear\", \"out\": 2}],\n"
    " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adamw\", \"lr\": 0.01},\n"
    " \"clip\": {\"mode\": \"zclip\", \"warmup\": 3},\n"
    " \"train\": {\"steps\": 12, \"batch_size\": 8, \"eval_every\": 5}}\n";

static const char *at(const char *name)
{
    static char p[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmp, name);
    return p[k];
}

static char *slurp(const char *path) { return tu_slurp(path, NULL); }

static void setup(void)
{
    tu_make_tmpdir(tmp, sizeof tmp, "/tmp", "clipnn-rundir");
    snprintf(bin, sizeof bin, "%s", tu_clipnn_bin());
    tu_write_text(at("run.json"), run_config);
}

static void teardown(void)
{
    if (bg_pid > 0) {
        kill(bg_pid, SIGKILL);
        waitpid(bg_pid, NULL, 0);
        bg_pid = 0;
    }
    tu_remove_tree(tmp);
}

/* Runs `cd tmp && clipnn ARGS` with its own redirections; stdout+stderr of the shell into out. */
static int sh(char *out, size_t n, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", tmp, args);
    return tu_shell(out, n, cmd);
}

/* `cd tmp && clipnn ARGS 2>&1` */
#define run(out, n, ...) tu_run_clipnn(out, n, tmp, __VA_ARGS__)

/* Starts `clipnn CMD run.json --out DIR --quiet --set S...` in tmp, output discarded. */
static pid_t start_cmd(const char *cmd, const char *dir, const char *const *sets, int n_sets)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (chdir(tmp) != 0) _exit(126);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        const char *argv[24] = {bin, cmd, "run.json", "--out", dir, "--quiet"};
        int n = 6;
        for (int i = 0; i < n_sets && n < 22; i++) { argv[n++] = "--set"; argv[n++] = sets[i]; }
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    bg_pid = pid;
    return pid;
}

static pid_t start_train(const char *dir, const char *const *sets, int n_sets)
{
    return start_cmd("train", dir, sets, n_sets);
}

/* Waits (at most 30 s) until `path` is larger than `size` bytes. */
static void wait_for_size(const char *path, long size)
{
    struct stat sb;
    for (int i = 0; i < 3000 && !(stat(path, &sb) == 0 && sb.st_size > size); i++) usleep(10000);
    ck_assert_msg(stat(path, &sb) == 0 && sb.st_size > size, "%s did not grow past %ld bytes", path, size);
}

/* The names in a directory (not . and ..), sorted, joined by spaces. */
static void listing(const char *dir, char *out, size_t n)
{
    struct dirent **e = NULL;
    int k = scandir(dir, &e, NULL, alphasort);
    ck_assert_msg(k >= 0, "cannot list %s", dir);
    out[0] = 0;
    for (int i = 0; i < k; i++) {
        if (strcmp(e[i]->d_name, ".") && strcmp(e[i]->d_name, "..")) {
            size_t l = strlen(out);
            snprintf(out + l, n - l, "%s%s", l ? " " : "", e[i]->d_name);
        }
        free(e[i]);
    }
    free(e);
}

/* The data section of a safetensors file (after the length and the JSON header). */
/* A checkpoint's step and its config (metadata), as cJSON. */
static long long checkpoint_meta(const char *path, cJSON **config)
{
    cn_st_file *f = NULL;
    cn_status st = cn_st_read(path, &f);
    ck_assert_msg(st == CN_OK, "%s does not read: %s", path, cn_errmsg());
    const char *step = cn_st_meta(f, "step"), *cfg = cn_st_meta(f, "config");
    ck_assert_msg(step && cfg, "%s: metadata without step or config", path);
    long long s = atoll(step);
    if (config) *config = cJSON_Parse(cfg);
    cn_st_close(f);
    return s;
}

static cJSON *read_json(const char *path)
{
    char *s = slurp(path);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    cJSON *j = cJSON_Parse(s);
    ck_assert_msg(j != NULL, "%s is not JSON", path);
    free(s);
    return j;
}

/* metrics.csv without its last column (time_ms, a wall-clock figure). */
static char *metrics_without_time(const char *path)
{
    char *s = slurp(path);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    char *w = s;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        ck_assert_msg(nl != NULL, "%s: torn last line", path);
        char *comma = line;
        for (char *q = line; q < nl; q++) if (*q == ',') comma = q;
        size_t keep = (size_t)(comma - line);
        memmove(w, line, keep);
        w += keep;
        *w++ = '\n';
        line = nl + 1;
    }
    *w = 0;
    return s;
}

/* ------------------------------------------------------------------ writer */

START_TEST(second_writer_is_refused_and_the_first_ends_intact)
{
    char out[16384], want[64], names[2048];
    const char *sets[] = {"train.steps=100000000", "train.checkpoint_every=1"};
    pid_t pid = start_train("live", sets, 2);
    wait_for_size(at("live/metrics.csv"), 3000);
    ck_assert_msg(access(at("live/checkpoint.safetensors"), F_OK) == 0, "no checkpoint yet");
    snprintf(want, sizeof want, "live: run in use by pid %ld", (long)pid);
    for (int i = 0; i < 3; i++) {
        int rc = run(out, sizeof out, "train run.json --out live --quiet");
        ck_assert_msg(rc == 2 && strstr(out, want), "second train: exit %d: %s", rc, out);
        rc = run(out, sizeof out, "train run.json --resume live/checkpoint.safetensors --quiet --set train.steps=100000000");
        ck_assert_msg(rc == 2 && strstr(out, want), "resume into the live run: exit %d: %s", rc, out);
        rc = run(out, sizeof out, "train run.json --resume live/checkpoint.safetensors --out live --quiet "
                                  "--set train.steps=100000000");
        ck_assert_msg(rc == 2 && strstr(out, want), "resume --out the live run: exit %d: %s", rc, out);
    }
    /* the lock names its holder */
    char *lock = slurp(at("live/.lock"));
    ck_assert_ptr_nonnull(lock);
    ck_assert_int_eq(atol(lock), pid);
    free(lock);
    /* the first run kept checkpointing through all of that: it ends as any interrupted run does */
    kill(pid, SIGINT);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    bg_pid = 0;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "the first run ended with status %d", status);
    listing(at("live"), names, sizeof names);
    ck_assert_str_eq(names, ".lock checkpoint.safetensors config.json eval.csv metrics.csv summary.json");
    lock = slurp(at("live/.lock"));
    ck_assert_str_eq(lock, "");   /* an ended run leaves no pid that could be taken for a live one */
    free(lock);
    /* one and the same run: its config, its checkpoint, its summary and its last log row agree */
    cJSON *ck_cfg = NULL, *cfg = read_json(at("live/config.json")), *sum = read_json(at("live/summary.json"));
    long long step = checkpoint_meta(at("live/checkpoint.safetensors"), &ck_cfg);
    ck_assert_ptr_nonnull(ck_cfg);
    ck_assert_msg(cJSON_Compare(cfg, ck_cfg, 1), "config.json is not the checkpoint's config");
    ck_assert_int_eq((long long)cJSON_GetNumberValue(cJSON_GetObjectItem(sum, "steps")), step);
    char *m = slurp(at("live/metrics.csv"));
    char *last = m + strlen(m) - 1;
    while (last > m && last[-1] != '\n') last--;
    ck_assert_int_eq(atoll(last), step);
    free(m);
    cJSON_Delete(ck_cfg);
    cJSON_Delete(cfg);
    cJSON_Delete(sum);
    /* the lock went with its holder: the run continues */
    int rc = run(out, sizeof out, "train run.json --resume live/checkpoint.safetensors --quiet --set train.steps=%lld "
                                  "--set train.checkpoint_every=0", step + 2);
    ck_assert_msg(rc == 0, "resume after the writer ended: exit %d: %s", rc, out);
    ck_assert_int_eq(checkpoint_meta(at("live/checkpoint.safetensors"), NULL), step + 2);
}
END_TEST

/* A compare folder has one compare at a time: a second compare into it, new or extending, exits 2
 * naming the first, which goes on and ends with its files and report; then the folder is free. */
START_TEST(second_compare_into_a_live_compare_is_refused)
{
    char out[16384], want[96];
    const char *sets[] = {"train.steps=100000000", "train.checkpoint_every=20"};
    pid_t pid = start_cmd("compare", "cmp", sets, 2);
    wait_for_size(at("cmp/.lock"), 0);   /* the pid is in: the lock is held */
    snprintf(want, sizeof want, "cmp: compare in use by pid %ld", (long)pid);
    int rc = run(out, sizeof out, "compare run.json --out cmp --quiet --set train.steps=100000000 "
                                  "--set train.checkpoint_every=20");
    ck_assert_msg(rc == 2 && strstr(out, want), "second compare: exit %d: %.1500s", rc, out);
    rc = run(out, sizeof out, "compare run.json --out cmp --quiet --seeds 2 --set train.steps=100000000 "
                              "--set train.checkpoint_every=20");
    ck_assert_msg(rc == 2 && strstr(out, want), "extending the live compare: exit %d: %.1500s", rc, out);
    ck_assert_msg(bg_pid == pid && kill(pid, 0) == 0, "the first compare ended");
    /* the first one is intact: interrupted, it writes its record and its report */
    wait_for_size(at("cmp/noclip/metrics.csv"), 2000);
    kill(pid, SIGINT);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    bg_pid = 0;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "the first compare ended with status %d", status);
    ck_assert(access(at("cmp/compare.json"), F_OK) == 0);
    ck_assert(access(at("cmp/report.md"), F_OK) == 0);
    char *lock = slurp(at("cmp/.lock"));
    ck_assert_str_eq(lock, "");
    free(lock);
    int fd = open(at("cmp/.lock"), O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);   /* free */
    close(fd);
}
END_TEST

/* Runs started together into one new directory (different seeds, so that a mix would show): one
 * runs, every other one exits 2, and the directory holds the files of the one that ran. */
START_TEST(runs_started_together_leave_one_run)
{
    enum { N = 4 };
    pid_t pids[N];
    char seeds[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(seeds[i], sizeof seeds[i], "seed=%d", 100 + i);
        const char *sets[] = {seeds[i], "train.steps=60", "train.checkpoint_every=1"};
        pids[i] = start_train("same", sets, 3);
    }
    bg_pid = 0;
    int ran = -1;
    for (int i = 0; i < N; i++) {
        int status;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert_msg(WIFEXITED(status), "run %d: status %d", i, status);
        int rc = WEXITSTATUS(status);
        ck_assert_msg(rc == 0 || rc == 2, "run %d: exit %d", i, rc);
        if (rc == 0) {
            ck_assert_msg(ran < 0, "runs %d and %d both ran into one directory", ran, i);
            ran = i;
        }
    }
    ck_assert_int_ge(ran, 0);
    cJSON *ck_cfg = NULL, *cfg = read_json(at("same/config.json"));
    ck_assert_int_eq(checkpoint_meta(at("same/checkpoint.safetensors"), &ck_cfg), 60);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(cfg, "seed")), 100 + ran);
    ck_assert_msg(cJSON_Compare(cfg, ck_cfg, 1), "config.json is not the checkpoint's config");
    cJSON_Delete(cfg);
    cJSON_Delete(ck_cfg);
    /* and the metrics are that run's: the same as the run of that seed alone */
    char out[8192];
    int rc = run(out, sizeof out, "train run.json --out alone --quiet --set seed=%d --set train.steps=60", 100 + ran);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char *a = metrics_without_time(at("same/metrics.csv")), *b = metrics_without_time(at("alone/metrics.csv"));
    ck_assert_msg(!strcmp(a, b), "metrics.csv is not the run of seed %d alone", 100 + ran);
    free(a);
    free(b);
    tu_assert_same_tensors(at("same/checkpoint.safetensors"), at("alone/checkpoint.safetensors"));
}
END_TEST

/* A resume cleans up the temp files a killed run left, and only those (and only under the lock). */
START_TEST(resume_removes_a_dead_writers_temp_files_only)
{
    char out[8192], names[2048];
    ck_assert_int_eq(run(out, sizeof out, "train run.json --out r --quiet --set train.steps=4"), 0);
    tu_write_text(at("r/checkpoint.safetensors.tmp.999999"), "torn");
    tu_write_text(at("r/notes.tmp.1"), "mine");
    int rc = run(out, sizeof out, "train run.json --resume r/checkpoint.safetensors --quiet --set train.steps=6");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    listing(at("r"), names, sizeof names);
    ck_assert_str_eq(names, ".lock checkpoint.safetensors config.json eval.csv metrics.csv notes.tmp.1 summary.json");
}
END_TEST

/* ------------------------------------------------------------------ out */

START_TEST(out_refuses_a_directory_that_holds_anything)
{
    char out[8192], dir[64], p[128], names[2048];
    const char *held[] = {"notes.txt", "config.json", "summary.json", "checkpoint.safetensors", "metrics.csv"};
    for (int i = 0; i < 5; i++) {
        snprintf(dir, sizeof dir, "d%d", i);
        ck_assert_int_eq(mkdir(at(dir), 0777), 0);
        snprintf(p, sizeof p, "%s/%s", dir, held[i]);
        tu_write_text(at(p), "keep me\n");
        int rc = run(out, sizeof out, "train run.json --out %s --quiet", dir);
        ck_assert_msg(rc == 2 && strstr(out, held[i]) && strstr(out, dir), "%s: exit %d: %s", held[i], rc, out);
        ck_assert_msg(strstr(out, i ? "already holds a run" : "is not empty"), "%s: %s", held[i], out);
        char *s = slurp(at(p));
        ck_assert_str_eq(s, "keep me\n");
        free(s);
        listing(at(dir), names, sizeof names);
        ck_assert_str_eq(names, held[i]);   /* nothing written, not even the lock */
    }
    /* a resumed run may start a new directory, not fill another one */
    int rc = run(out, sizeof out, "train run.json --out src --quiet --set train.steps=4");
    ck_assert_int_eq(rc, 0);
    rc = run(out, sizeof out, "train run.json --resume src/checkpoint.safetensors --out d0 --quiet");
    ck_assert_msg(rc == 2 && strstr(out, "notes.txt"), "exit %d: %s", rc, out);
    /* many files: three named, the rest counted */
    ck_assert_int_eq(mkdir(at("many"), 0777), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "many/f%d", i);
        tu_write_text(at(p), "x");
    }
    rc = run(out, sizeof out, "train run.json --out many --quiet");
    ck_assert_msg(rc == 2 && strstr(out, "and 2 more"), "exit %d: %s", rc, out);
    /* / and a file */
    rc = run(out, sizeof out, "train run.json --out / --quiet");
    ck_assert_msg(rc == 2 && strstr(out, "/ is not empty"), "exit %d: %s", rc, out);
    tu_write_text(at("afile"), "x");
    rc = run(out, sizeof out, "train run.json --out afile --quiet");
    ck_assert_msg(rc == 2 && strstr(out, "not a directory"), "exit %d: %s", rc, out);
}
END_TEST

START_TEST(out_accepts_a_new_or_empty_directory)
{
    char out[8192];
    ck_assert_int_eq(mkdir(at("empty"), 0777), 0);
    int rc = run(out, sizeof out, "train run.json --out empty --quiet --set train.steps=3");
    ck_assert_msg(rc == 0, "empty: exit %d: %s", rc, out);
    rc = run(out, sizeof out, "train run.json --out new/deeper --quiet --set train.steps=3");
    ck_assert_msg(rc == 0, "new: exit %d: %s", rc, out);
    /* train.log (compare writes the run's output there) and an ended run's lock are no content */
    ck_assert_int_eq(mkdir(at("logged"), 0777), 0);
    tu_write_text(at("logged/train.log"), "");
    tu_write_text(at("logged/.lock"), "12345\n");
    rc = run(out, sizeof out, "train run.json --out logged --quiet --set train.steps=3");
    ck_assert_msg(rc == 0, "train.log and .lock: exit %d: %s", rc, out);
    ck_assert(access(at("logged/summary.json"), F_OK) == 0);
    /* a run directory takes one run: the second is refused */
    rc = run(out, sizeof out, "train run.json --out logged --quiet --set train.steps=3");
    ck_assert_msg(rc == 2 && strstr(out, "already holds a run"), "exit %d: %s", rc, out);
}
END_TEST

START_TEST(init_from_is_never_written_over)
{
    char out[8192], names[2048];
    ck_assert_int_eq(run(out, sizeof out, "train run.json --out pre --quiet --set train.steps=4"), 0);
    /* the weights to start from, alone in the directory the new run is sent to */
    ck_assert_int_eq(mkdir(at("w"), 0777), 0);
    ck_assert_int_eq(link(at("pre/checkpoint.safetensors"), at("w/checkpoint.safetensors")), 0);
    size_t n0, n1;
    char *before = tu_slurp(at("w/checkpoint.safetensors"), &n0);
    int rc = run(out, sizeof out, "train run.json --out w --quiet --set init_from=%s", at("w/checkpoint.safetensors"));
    ck_assert_msg(rc == 2 && strstr(out, "checkpoint.safetensors"), "exit %d: %s", rc, out);
    char *after = tu_slurp(at("w/checkpoint.safetensors"), &n1);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);
    listing(at("w"), names, sizeof names);
    ck_assert_str_eq(names, "checkpoint.safetensors");
    /* by identity: a run started from a link to pre's weights, then resumed in its own directory with
       the link pointing at that directory's checkpoint, would write over its init_from file */
    ck_assert_int_eq(symlink(at("pre/checkpoint.safetensors"), at("start.st")), 0);
    rc = run(out, sizeof out, "train run.json --out r --quiet --set train.steps=4 --set init_from=%s", at("start.st"));
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    ck_assert_int_eq(unlink(at("start.st")), 0);
    ck_assert_int_eq(symlink(at("r/checkpoint.safetensors"), at("start.st")), 0);
    free(before);
    before = tu_slurp(at("r/checkpoint.safetensors"), &n0);
    rc = run(out, sizeof out, "train run.json --resume r/checkpoint.safetensors --quiet --set train.steps=6 "
                              "--set init_from=%s", at("start.st"));
    ck_assert_msg(rc == 2 && strstr(out, "r/checkpoint.safetensors: init_from"), "exit %d: %s", rc, out);
    after = tu_slurp(at("r/checkpoint.safetensors"), &n1);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
}
END_TEST

/* ------------------------------------------------------------------ streams */

START_TEST(closed_std_fds_never_become_run_files)
{
    char out[8192];
    /* not --quiet: progress lines go to (the closed) stderr every step */
    int rc = sh(out, sizeof out, "'%s' train run.json --out a <&- 2>&-", bin);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char *m = slurp(at("a/metrics.csv"));
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(!strncmp(m, "step,epoch,loss,", 16), "metrics.csv starts with: %.60s", m);
    ck_assert_ptr_null(strstr(m, "steps/s"));
    free(m);
    char *e = slurp(at("a/eval.csv"));
    ck_assert_msg(e && !strncmp(e, "step,test_loss,test_metric\n", 27), "eval.csv starts with: %.60s", e ? e : "");
    free(e);
    /* stdout closed too (train prints nothing there): still exit 0, and the same files */
    rc = sh(out, sizeof out, "'%s' train run.json --out b <&- >&- 2>&-", bin);
    ck_assert_int_eq(rc, 0);
    m = slurp(at("b/metrics.csv"));
    ck_assert_msg(m && !strncmp(m, "step,epoch,loss,", 16), "metrics.csv starts with: %.60s", m ? m : "");
    free(m);
}
END_TEST

START_TEST(unwritable_stdout_is_exit_1)
{
    char out[16384];
    ck_assert_int_eq(run(out, sizeof out, "train run.json --out a --quiet --set train.steps=3"), 0);
    tu_write_text(at("text.txt"), "the quick brown fox jumps over the lazy dog, again and again and again.\n");
    tu_write_text(at("text.json"),
               "{\"name\": \"text\", \"data\": {\"kind\": \"text\", \"path\": \"text.txt\", \"seq_len\": 8, \"test_fraction\": 0},"
               " \"model\": [{\"type\": \"embedding\", \"vocab\": 256, \"dim\": 4},"
               " {\"type\": \"rnn\", \"hidden\": 8, \"output\": \"sequence\"}, {\"type\": \"linear\", \"out\": 256}],"
               " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01},"
               " \"train\": {\"steps\": 3, \"batch_size\": 4}}\n");
    ck_assert_int_eq(run(out, sizeof out, "train text.json --out t --quiet"), 0);
    const char *cmds[] = {"eval run.json --checkpoint a/checkpoint.safetensors",
                          "sample text.json --checkpoint t/checkpoint.safetensors --length 50",
                          "--help", "--version", "eval --help", "sample --help"};
    const char *sinks[] = {">/dev/full", ">&-"};
    for (int i = 0; i < 6; i++) {
        int rc = run(out, sizeof out, "%s", cmds[i]);
        ck_assert_msg(rc == 0 && out[0], "%s to a pipe: exit %d: %s", cmds[i], rc, out);
        for (int k = 0; k < 2; k++) {
            /* stderr to the pipe, stdout to the sink */
            rc = sh(out, sizeof out, "'%s' %s 2>&1 %s", bin, cmds[i], sinks[k]);
            ck_assert_msg(rc == 1 && strstr(out, "cannot write to standard output"), "%s %s: exit %d: %s", cmds[i],
                          sinks[k], rc, out);
        }
    }
    /* an error keeps its own exit code */
    int rc = sh(out, sizeof out, "'%s' eval run.json --checkpoint nope.st 2>&1 >/dev/full", bin);
    ck_assert_msg(rc == 2 && strstr(out, "nope.st"), "exit %d: %s", rc, out);
}
END_TEST

/* ------------------------------------------------------------------ interrupt */

/* Interrupts a long run with `sig`, resumes it to its step + 7, and compares with a run of that many
 * steps that never stopped. */
static void interrupted_equals_uninterrupted(int sig)
{
    char out[16384];
    const char *sets[] = {"train.steps=100000000"};
    pid_t pid = start_train("int", sets, 1);
    wait_for_size(at("int/eval.csv"), 200);   /* some periodic evaluations done */
    kill(pid, sig);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    bg_pid = 0;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %d", status);
    long long k = checkpoint_meta(at("int/checkpoint.safetensors"), NULL);
    ck_assert_int_ge(k, 1);
    int rc = run(out, sizeof out, "train run.json --resume int/checkpoint.safetensors --quiet --set train.steps=%lld", k + 7);
    ck_assert_msg(rc == 0, "resume: exit %d: %s", rc, out);
    rc = run(out, sizeof out, "train run.json --out ref --quiet --set train.steps=%lld", k + 7);
    ck_assert_msg(rc == 0, "reference: exit %d: %s", rc, out);
    char *a = slurp(at("int/eval.csv")), *b = slurp(at("ref/eval.csv"));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(!strcmp(a, b), "interrupted at step %lld: eval.csv differs; tails:\n%s\n--- uninterrupted:\n%s", k,
                  a + (strlen(a) > 200 ? strlen(a) - 200 : 0), b + (strlen(b) > 200 ? strlen(b) - 200 : 0));
    free(a);
    free(b);
    a = metrics_without_time(at("int/metrics.csv"));
    b = metrics_without_time(at("ref/metrics.csv"));
    ck_assert_msg(!strcmp(a, b), "interrupted at step %lld: metrics.csv differs", k);
    free(a);
    free(b);
    tu_assert_same_tensors(at("int/checkpoint.safetensors"), at("ref/checkpoint.safetensors"));
    cJSON *sa = read_json(at("int/summary.json")), *sb = read_json(at("ref/summary.json"));
    const char *keys[] = {"steps", "final_loss", "test_loss", "test_metric", "clip_frac"};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(cJSON_Compare(cJSON_GetObjectItem(sa, keys[i]), cJSON_GetObjectItem(sb, keys[i]), 1),
                      "summary.json %s differs", keys[i]);
    cJSON_Delete(sa);
    cJSON_Delete(sb);
}

START_TEST(sigint_then_resume_equals_the_uninterrupted_run)
{
    interrupted_equals_uninterrupted(SIGINT);
}
END_TEST

START_TEST(sigterm_then_resume_equals_the_uninterrupted_run)
{
    interrupted_equals_uninterrupted(SIGTERM);
}
END_TEST

/* An interrupt at a step with a periodic evaluation writes that row once (not again as the final
 * one), and raising train.steps of a finished run drops its final row as well. Deterministic: the
 * "interrupt" is the end of a shorter run. */
START_TEST(extended_run_keeps_only_the_rows_of_the_longer_run)
{
    char out[8192];
    const int ends[] = {10, 8};   /* 10: a periodic step (eval_every 5); 8: not one */
    for (int i = 0; i < 2; i++) {
        char d[16];
        snprintf(d, sizeof d, "e%d", ends[i]);
        ck_assert_int_eq(run(out, sizeof out, "train run.json --out %s --quiet --set train.steps=%d", d, ends[i]), 0);
        int rc = run(out, sizeof out, "train run.json --resume %s/checkpoint.safetensors --quiet --set train.steps=17", d);
        ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
        char p[64];
        snprintf(p, sizeof p, "%s/eval.csv", d);
        char *e = slurp(at(p));
        ck_assert_ptr_nonnull(e);
        /* rows at 5, 10, 15 and 17, once each */
        const long long want[] = {5, 10, 15, 17};
        int rows = 0;
        char *save = NULL;
        for (char *ln = strtok_r(e, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
            if (ln == e) continue;
            ck_assert_msg(rows < 4 && atoll(ln) == want[rows], "end %d: eval.csv row %d is '%s'", ends[i], rows, ln);
            rows++;
        }
        ck_assert_int_eq(rows, 4);
        free(e);
    }
}
END_TEST

/* Interrupted at a step with a periodic evaluation, the run evaluates once there (the final
 * evaluation is not written a second time). */
START_TEST(interrupt_at_an_evaluation_step_writes_its_row_once)
{
    volatile sig_atomic_t stop = 1;   /* as if the signal came during step 1 */
    char set[] = "train.eval_every=1", *sets[] = {set};
    char cfg[1024], dir[1024];
    snprintf(cfg, sizeof cfg, "%s", at("run.json"));
    snprintf(dir, sizeof dir, "%s", at("once"));
    cn_train_opts o = {cfg, dir, NULL, sets, 1, NULL, 0, &stop, 0};
    cn_train_result r;
    ck_assert_ok(cn_train(&o, &r));
    ck_assert(r.interrupted);
    ck_assert_int_eq(r.steps, 1);
    char *e = slurp(at("once/eval.csv"));
    ck_assert_ptr_nonnull(e);
    int lines = 0;
    for (const char *q = e; *q; q++) lines += *q == '\n';
    ck_assert_msg(lines == 2 && !strncmp(strchr(e, '\n') + 1, "1,", 2), "eval.csv:\n%s", e);
    free(e);
}
END_TEST

/* ------------------------------------------------------------------ fifo */

START_TEST(fifo_inputs_are_refused_without_blocking)
{
    char out[8192];
    ck_assert_int_eq(run(out, sizeof out, "train run.json --out a --quiet --set train.steps=3"), 0);
    ck_assert_int_eq(mkfifo(at("fifo"), 0600), 0);
    ck_assert_int_eq(mkfifo(at("fifo.json"), 0600), 0);
    tu_write_text(at("csv.json"),
               "{\"data\": {\"kind\": \"csv\", \"path\": \"fifo\", \"target\": \"y\", \"target_kind\": \"class\"},"
               " \"model\": [{\"type\": \"linear\", \"out\": 2}], \"loss\": \"cross_entropy\","
               " \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1}, \"train\": {\"steps\": 2, \"batch_size\": 2}}\n");
    tu_write_text(at("npy.json"),
               "{\"data\": {\"kind\": \"npy\", \"x\": \"fifo\", \"y\": \"fifo\"},"
               " \"model\": [{\"type\": \"linear\", \"out\": 2}], \"loss\": \"cross_entropy\","
               " \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1}, \"train\": {\"steps\": 2, \"batch_size\": 2}}\n");
    tu_write_text(at("text.json"),
               "{\"data\": {\"kind\": \"text\", \"path\": \"fifo\", \"seq_len\": 8},"
               " \"model\": [{\"type\": \"embedding\", \"vocab\": 256, \"dim\": 4},"
               " {\"type\": \"rnn\", \"hidden\": 8, \"output\": \"sequence\"}, {\"type\": \"linear\", \"out\": 256}],"
               " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01},"
               " \"train\": {\"steps\": 2, \"batch_size\": 4}}\n");
    const char *cases[][2] = {
        {"train fifo.json --out o", "fifo.json"},
        {"eval fifo.json --checkpoint a/checkpoint.safetensors", "fifo.json"},
        {"eval run.json --checkpoint fifo", "fifo"},
        {"train run.json --out o --resume fifo", "fifo"},
        {"train run.json --out o --set init_from=fifo", "init_from"},
        {"train csv.json --out o", "fifo"},
        {"train npy.json --out o", "fifo"},
        {"train text.json --out o", "fifo"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = sh(out, sizeof out, "timeout 60 '%s' %s 2>&1", bin, cases[i][0]);
        ck_assert_msg(rc == 2 && strstr(out, cases[i][1]) && strstr(out, "not a regular file"), "%s: exit %d: %s",
                      cases[i][0], rc, out);
        ck_assert_msg(access(at("o"), F_OK) != 0, "%s: made the run directory", cases[i][0]);
    }
    /* a FIFO in the place of a log of the run being resumed */
    ck_assert_int_eq(unlink(at("a/eval.csv")), 0);
    ck_assert_int_eq(mkfifo(at("a/eval.csv"), 0600), 0);
    int rc = sh(out, sizeof out, "timeout 60 '%s' train run.json --resume a/checkpoint.safetensors --set train.steps=5 2>&1", bin);
    ck_assert_msg(rc == 2 && strstr(out, "a/eval.csv: not a regular file"), "exit %d: %s", rc, out);
}
END_TEST

Suite *suite_rundir(void)
{
    Suite *s = suite_create("rundir");
    TCase *w = tcase_create("writer");
    tcase_add_checked_fixture(w, setup, teardown);
    tcase_set_timeout(w, 120);
    tcase_add_test(w, second_writer_is_refused_and_the_first_ends_intact);
    tcase_add_test(w, runs_started_together_leave_one_run);
    tcase_add_test(w, resume_removes_a_dead_writers_temp_files_only);
    suite_add_tcase(s, w);
    TCase *o = tcase_create("out");
    tcase_add_checked_fixture(o, setup, teardown);
    tcase_set_timeout(o, 60);
    tcase_add_test(o, out_refuses_a_directory_that_holds_anything);
    tcase_add_test(o, out_accepts_a_new_or_empty_directory);
    tcase_add_test(o, init_from_is_never_written_over);
    tcase_add_test(o, second_compare_into_a_live_compare_is_refused);
    suite_add_tcase(s, o);
    TCase *st = tcase_create("streams");
    tcase_add_checked_fixture(st, setup, teardown);
    tcase_set_timeout(st, 60);
    tcase_add_test(st, closed_std_fds_never_become_run_files);
    tcase_add_test(st, unwritable_stdout_is_exit_1);
    suite_add_tcase(s, st);
    TCase *in = tcase_create("interrupt");
    tcase_add_checked_fixture(in, setup, teardown);
    tcase_set_timeout(in, 120);
    tcase_add_test(in, sigint_then_resume_equals_the_uninterrupted_run);
    tcase_add_test(in, sigterm_then_resume_equals_the_uninterrupted_run);
    tcase_add_test(in, extended_run_keeps_only_the_rows_of_the_longer_run);
    tcase_add_test(in, interrupt_at_an_evaluation_step_writes_its_row_once);
    suite_add_tcase(s, in);
    TCase *f = tcase_create("fifo");
    tcase_add_checked_fixture(f, setup, teardown);
    tcase_set_timeout(f, 120);
    tcase_add_test(f, fifo_inputs_are_refused_without_blocking);
    suite_add_tcase(s, f);
    return s;
}
