/* Crash safety, interruption, resume and allocation failure.
 *
 * tcase "nomem": a small training run through the library (cn_train, cn_evaluate, --resume) with
 *   cn_alloc_fail_at(k) for every k from 1 to the number of allocations of a clean run: each must
 *   fail cleanly (CN_ERR_NOMEM with a message), never crash; under ASan/LSan (make SAN=1) also no
 *   invalid access and no leak on any of those error paths.
 * tcase "signals": the program (CLIPNN_BIN) killed with SIGKILL at pseudo-random moments while it
 *   checkpoints every step always leaves a readable checkpoint (writes are temp file + rename), and
 *   resuming from it ends with the same weights as a run that never stopped; SIGINT ends a run
 *   cleanly (exit 130, every file written) and --resume continues it.
 * tcase "resume": resuming from the checkpoints of steps 3, 7 and 10 of a 15-step run gives
 *   bit-identical final tensors (data section of checkpoint.safetensors) to the uninterrupted run. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "train/trainer.h"

static char bin[2048], tmp[256];

/* A model with every kind of state a checkpoint must carry: shuffled data order (epochs of 7
 * batches), dropout's RNG, AdamW moments and zclip's running statistics. */
static const char *const crash_config =
    "{\"name\": \"crash\", \"seed\": 3,\n"
    " \"data\": {\"kind\": \"spirals\", \"train_size\": 50, \"test_size\": 20},\n"
    " \"model\": [{\"type\": \"linear\", \"out\": 16}, {\"type\": \"relu\"}, {\"type\": \"dropout\", \"p\": 0.2},\n"
    "           {\"type\": \"linear\", \"out\": 2}],\n"
    " \"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adamw\", \"lr\": 0.01},\n"
    " \"clip\": {\"mode\": \"zclip\", \"warmup\": 3},\n"
    " \"train\": {\"steps\": 15, \"batch_size\": 8, \"checkpoint_every\": 1, \"eval_every\": 5}}\n";

static const char *path_in(const char *dir, const char *file)
{
    static _Thread_local char p[2][1024];
    static _Thread_local int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, file);
    return p[k];
}

static char *slurp(const char *path, size_t *len) { return tu_slurp(path, len); }

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* tmpfs when there is one (fsync is then free: the nomem loop runs hundreds of checkpointing runs),
 * else /tmp. The signal tests use /tmp on purpose: a real file system, real fsync. */
static void make_tmp(int fast)
{
    const char *base = fast && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(tmp, sizeof tmp, "%s/clipnn-crash-XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    tu_write_text(path_in(tmp, "crash.json"), crash_config);
    snprintf(bin, sizeof bin, "%s", tu_clipnn_bin());
}

static void setup_fast(void) { make_tmp(1); }
static void setup_disk(void) { make_tmp(0); }

static void teardown(void) { tu_remove_tree(tmp); }

/* Runs `cd tmp && clipnn ARGS` to completion; returns its exit code (128 + signal if killed). */
#define run(out, n, ...) tu_run_clipnn(out, n, tmp, __VA_ARGS__)

/* Starts `clipnn train crash.json --out DIR --quiet [--set S]...` in tmp, output discarded. */
static pid_t start_train(const char *dir, const char *set1, const char *set2)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (chdir(tmp) != 0) _exit(126);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        const char *argv[12] = {bin, "train", "crash.json", "--out", dir, "--quiet"};
        int n = 6;
        if (set1) { argv[n++] = "--set"; argv[n++] = set1; }
        if (set2) { argv[n++] = "--set"; argv[n++] = set2; }
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* The data section of a safetensors file (after the 8-byte length and the JSON header); *n its size. */
/* The checkpoint reads, is a clipnn checkpoint, and returns its step. */
static long long checkpoint_step(const char *path)
{
    cn_st_file *f = NULL;
    cn_status st = cn_st_read(path, &f);
    ck_assert_msg(st == CN_OK, "%s does not read: %s", path, cn_errmsg());
    const char *fmt = cn_st_meta(f, "format"), *step = cn_st_meta(f, "step");
    ck_assert_msg(fmt && !strcmp(fmt, "clipnn-checkpoint") && step, "%s: bad metadata", path);
    long long s = atoll(step);
    ck_assert_ptr_nonnull(cn_state_find(cn_st_tensors(f), "0.weight"));
    cn_st_close(f);
    return s;
}

/* ------------------------------------------------------------------ nomem */

typedef cn_status (*run_fn)(int k);

static char nomem_sets_buf[2][64];
static int nomem_seq;   /* a fresh output directory for every call */
static char *nomem_sets[2] = {nomem_sets_buf[0], nomem_sets_buf[1]};

/* One tiny training run into tmp/<prefix><k> (3 steps: a checkpoint, an evaluation and the log rows each step). */
static cn_status train_once(int k)
{
    (void)k;
    char out[512];
    snprintf(out, sizeof out, "%s/t%d", tmp, nomem_seq++);
    snprintf(nomem_sets_buf[0], 64, "train.steps=3");
    snprintf(nomem_sets_buf[1], 64, "train.eval_every=1");
    cn_train_opts o = {path_in(tmp, "crash.json"), out, NULL, nomem_sets, 2, NULL, 0, NULL, 0};
    cn_train_result r;
    return cn_train(&o, &r);
}

/* Resumes the step-2 checkpoint of tmp/base to 3 steps into tmp/r<k>. */
static cn_status resume_once(int k)
{
    (void)k;
    char out[512], ck[512];
    snprintf(out, sizeof out, "%s/r%d", tmp, nomem_seq++);
    snprintf(ck, sizeof ck, "%s/base/checkpoint.safetensors", tmp);
    snprintf(nomem_sets_buf[0], 64, "train.steps=3");
    cn_train_opts o = {path_in(tmp, "crash.json"), out, ck, nomem_sets, 1, NULL, 0, NULL, 0};
    cn_train_result r;
    return cn_train(&o, &r);
}

static cn_status eval_once(int k)
{
    (void)k;
    char ck[512];
    snprintf(ck, sizeof ck, "%s/base/checkpoint.safetensors", tmp);
    double loss, metric;
    const char *name;
    int n;
    return cn_evaluate(path_in(tmp, "crash.json"), NULL, 0, ck, &loss, &metric, &name, &n);
}

/* Counts the allocations of a clean call, then fails each one in turn. */
static void fail_every_allocation(run_fn fn, const char *what)
{
    uint64_t before = cn_alloc_count();
    ck_assert_msg(fn(0) == CN_OK, "%s: clean run failed: %s", what, cn_errmsg());
    uint64_t total = cn_alloc_count() - before;
    ck_assert_uint_gt(total, 10);
    for (uint64_t k = 1; k <= total; k++) {
        cn_error_clear();
        cn_alloc_fail_at(k);
        cn_status st = fn((int)k);
        cn_alloc_fail_at(0);
        ck_assert_msg(st == CN_ERR_NOMEM, "%s: allocation %llu of %llu failed, but the call returned %s: %s", what,
                      (unsigned long long)k, (unsigned long long)total, cn_status_name(st), cn_errmsg());
        ck_assert_msg(cn_errmsg()[0] != 0, "%s: allocation %llu: no message", what, (unsigned long long)k);
    }
    /* and the library still works afterwards */
    ck_assert_msg(fn(0) == CN_OK, "%s: run after the loop failed: %s", what, cn_errmsg());
}

START_TEST(train_fails_cleanly_at_every_allocation)
{
    fail_every_allocation(train_once, "train");
}
END_TEST

START_TEST(resume_fails_cleanly_at_every_allocation)
{
    char out[512];
    snprintf(out, sizeof out, "%s/base", tmp);
    snprintf(nomem_sets_buf[0], 64, "train.steps=2");
    cn_train_opts o = {path_in(tmp, "crash.json"), out, NULL, nomem_sets, 1, NULL, 0, NULL, 0};
    cn_train_result r;
    ck_assert_ok(cn_train(&o, &r));
    fail_every_allocation(resume_once, "resume");
}
END_TEST

START_TEST(eval_fails_cleanly_at_every_allocation)
{
    char out[512];
    snprintf(out, sizeof out, "%s/base", tmp);
    snprintf(nomem_sets_buf[0], 64, "train.steps=2");
    cn_train_opts o = {path_in(tmp, "crash.json"), out, NULL, nomem_sets, 1, NULL, 0, NULL, 0};
    cn_train_result r;
    ck_assert_ok(cn_train(&o, &r));
    fail_every_allocation(eval_once, "eval");
}
END_TEST

/* ------------------------------------------------------------------ signals */

START_TEST(sigkill_while_checkpointing_leaves_a_readable_checkpoint)
{
    char out[16384], ref[512];
    /* the uninterrupted reference: 200 steps */
    int rc = run(out, sizeof out, "train crash.json --out ref --quiet --set train.steps=200 --set train.checkpoint_every=0");
    ck_assert_msg(rc == 0, "reference run exit %d: %s", rc, out);
    snprintf(ref, sizeof ref, "%s/ref/checkpoint.safetensors", tmp);
    /* fixed pseudo-random delays: the assertions hold wherever the kill lands */
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    int resumed = 0;
    for (int i = 0; i < 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        long delay_us = (long)(x % 150000);   /* 0..150 ms after the first checkpoint; one takes a few ms */
        char dir[64], full[512], ck[600];
        snprintf(dir, sizeof dir, "k%d", i);
        snprintf(full, sizeof full, "%s/%s", tmp, dir);
        snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", full);
        pid_t pid = start_train(dir, "train.steps=200", NULL);
        /* Wait for the first checkpoint (at most 60 s), so that a slow or sanitizer-instrumented
           machine kills a run that is checkpointing, never one still starting up. */
        for (int w = 0; w < 6000 && !exists(ck); w++) usleep(10000);
        ck_assert_msg(exists(ck), "run %d wrote no checkpoint within 60 s", i);
        usleep((useconds_t)delay_us);
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        long long step = checkpoint_step(ck);
        ck_assert_msg(step >= 1 && step <= 200, "run %d: checkpoint at step %lld", i, step);
        /* the config the run wrote is whole too (also written atomically) */
        char *cj = slurp(path_in(full, "config.json"), NULL);
        ck_assert_ptr_nonnull(cj);
        cJSON *j = cJSON_Parse(cj);
        ck_assert_msg(j != NULL, "run %d: torn config.json", i);
        cJSON_Delete(j);
        free(cj);
        /* continue it (without checkpointing every step): same final weights as the reference */
        rc = run(out, sizeof out, "train crash.json --resume %s/checkpoint.safetensors --quiet --set train.steps=200 "
                                  "--set train.checkpoint_every=0", dir);
        ck_assert_msg(rc == 0, "run %d (killed after %ld us at step %lld): resume exit %d: %s", i, delay_us, step, rc, out);
        ck_assert(exists(path_in(full, "summary.json")));
        tu_assert_same_tensors(ref, ck);
        /* metrics.csv: the header and steps 1..200 once each, in order */
        char *m = slurp(path_in(full, "metrics.csv"), NULL);
        ck_assert_ptr_nonnull(m);
        long long expect = 1;
        char *save = NULL;
        for (char *ln = strtok_r(m, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
            if (ln == m) continue;
            ck_assert_msg(atoll(ln) == expect, "run %d: metrics.csv row '%.30s', expected step %lld", i, ln, expect);
            expect++;
        }
        ck_assert_int_eq(expect, 201);
        free(m);
        resumed++;
    }
    ck_assert_int_eq(resumed, 8);
}
END_TEST

START_TEST(sigint_ends_cleanly_and_resume_continues)
{
    char out[16384], full[512];
    snprintf(full, sizeof full, "%s/int", tmp);
    pid_t pid = start_train("int", "train.steps=100000000", "train.checkpoint_every=0");
    /* wait until it is training (metrics rows appear), at most 20 s */
    const char *mp = path_in(full, "metrics.csv");
    struct stat sb;
    for (int i = 0; i < 2000 && !(stat(mp, &sb) == 0 && sb.st_size > 4000); i++) usleep(10000);
    kill(pid, SIGINT);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %d", status);
    const char *files[] = {"config.json", "metrics.csv", "eval.csv", "summary.json", "checkpoint.safetensors"};
    for (int i = 0; i < 5; i++) ck_assert_msg(exists(path_in(full, files[i])), "missing %s", files[i]);
    char *sj = slurp(path_in(full, "summary.json"), NULL);
    cJSON *j = cJSON_Parse(sj);
    ck_assert_ptr_nonnull(j);
    long long steps = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "steps"));
    cJSON_Delete(j);
    free(sj);
    ck_assert_int_ge(steps, 1);
    ck_assert_int_eq(checkpoint_step(path_in(full, "checkpoint.safetensors")), steps);
    /* resume in its own directory for 5 more steps; compare with a run that never stopped */
    int rc = run(out, sizeof out, "train crash.json --resume int/checkpoint.safetensors --quiet --set train.steps=%lld "
                                  "--set train.checkpoint_every=0", steps + 5);
    ck_assert_msg(rc == 0, "resume exit %d: %s", rc, out);
    rc = run(out, sizeof out, "train crash.json --out ref --quiet --set train.steps=%lld --set train.checkpoint_every=0",
             steps + 5);
    ck_assert_msg(rc == 0, "reference exit %d: %s", rc, out);
    char ref[512];
    snprintf(ref, sizeof ref, "%s/ref/checkpoint.safetensors", tmp);
    ck_assert_int_eq(checkpoint_step(path_in(full, "checkpoint.safetensors")), steps + 5);
    tu_assert_same_tensors(ref, path_in(full, "checkpoint.safetensors"));
}
END_TEST

/* ------------------------------------------------------------------ resume */

START_TEST(resume_from_any_step_is_bit_identical)
{
    char out[16384];
    int rc = run(out, sizeof out, "train crash.json --out full --quiet");
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    char full[512];
    snprintf(full, sizeof full, "%s/full/checkpoint.safetensors", tmp);
    const int at[] = {3, 7, 10};
    for (int i = 0; i < 3; i++) {
        rc = run(out, sizeof out, "train crash.json --out p%d --quiet --set train.steps=%d", at[i], at[i]);
        ck_assert_msg(rc == 0, "partial run to %d: exit %d: %s", at[i], rc, out);
        rc = run(out, sizeof out, "train crash.json --resume p%d/checkpoint.safetensors --quiet", at[i]);
        ck_assert_msg(rc == 0, "resume from %d: exit %d: %s", at[i], rc, out);
        char p[512];
        snprintf(p, sizeof p, "%s/p%d/checkpoint.safetensors", tmp, at[i]);
        ck_assert_int_eq(checkpoint_step(p), 15);
        tu_assert_same_tensors(full, p);
    }
}
END_TEST

Suite *suite_crash(void)
{
    Suite *s = suite_create("crash");
    TCase *nomem = tcase_create("nomem");
    tcase_add_checked_fixture(nomem, setup_fast, teardown);
    tcase_set_timeout(nomem, 120);
    tcase_add_test(nomem, train_fails_cleanly_at_every_allocation);
    tcase_add_test(nomem, resume_fails_cleanly_at_every_allocation);
    tcase_add_test(nomem, eval_fails_cleanly_at_every_allocation);
    suite_add_tcase(s, nomem);
    TCase *sig = tcase_create("signals");
    tcase_add_checked_fixture(sig, setup_disk, teardown);
    tcase_set_timeout(sig, 120);
    tcase_add_test(sig, sigkill_while_checkpointing_leaves_a_readable_checkpoint);
    tcase_add_test(sig, sigint_ends_cleanly_and_resume_continues);
    suite_add_tcase(s, sig);
    TCase *res = tcase_create("resume");
    tcase_add_checked_fixture(res, setup_disk, teardown);
    tcase_set_timeout(res, 60);
    tcase_add_test(res, resume_from_any_step_is_bit_identical);
    suite_add_tcase(s, res);
    return s;
}
