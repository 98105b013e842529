/* The training loop, its log files and the progress line (see trainer.h). */
#define _XOPEN_SOURCE 700   /* realpath */
#define _DEFAULT_SOURCE      /* flock */
#include "train/trainer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist/dist.h"
#include "io/files.h"
#include "train/session.h"


typedef struct {
    cn_session s;
    const cn_train_opts *o;
    char dir[4096];
    FILE *metrics, *evalf;
    double t_start, last_progress;
    long long last_progress_step;
    long long first_step;     /* first step of this session */
    long long eval_step;      /* step of the last row of eval.csv, -1 before any */
    double test_loss, test_metric;
    int have_test;
    int interrupted;          /* a signal ended this session early (summary.json "interrupted") */
    int lock_fd;              /* DIR/.lock, flock'ed while the run writes; -1 when not held */
    int writer;               /* this process writes the run's files: rank 0 of a data-parallel job */
} trainer;

/* ---- files ---- */

static void join(char *out, size_t n, const char *dir, const char *file) { snprintf(out, n, "%s/%s", dir, file); }

/* Opens a CSV log. A resumed run keeps the rows up to its step and appends; a new
 * run, or a file with nothing usable left (a torn header), starts with the header. */
static cn_status open_csv(const char *path, int resuming, long long step, FILE **out, int *need_header)
{
    int append = 0;
    struct stat lb;
    /* a FIFO put in a run's place would block the open or the truncation below */
    if (lstat(path, &lb) == 0 && !S_ISREG(lb.st_mode))
        return cn_error(CN_ERR_ARG, "%s: not a regular file; remove it", path);
    if (resuming && cn_file_exists(path)) {
        cn_status st = cn_csv_truncate_steps(path, step);
        if (st) return st;
        struct stat sb;
        append = stat(path, &sb) == 0 && sb.st_size > 0;
    }
    *out = fopen(path, append ? "ab" : "wb");
    if (!*out) return cn_error(CN_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
    *need_header = !append;
    return CN_OK;
}

static cn_status open_logs(trainer *t, int resuming)
{
    char path[4200];
    cn_session *s = &t->s;
    int header;
    join(path, sizeof path, t->dir, "metrics.csv");
    cn_status st = open_csv(path, resuming, s->step, &t->metrics, &header);
    if (st) return st;
    if (header) {
        fprintf(t->metrics, "step,epoch,loss,lr,grad_norm_pre,grad_norm_post,clip_coef,clip_threshold,clipped,"
                            "grad_max_abs,nonfinite,skipped,time_ms");
        if (s->cfg.log_per_tensor)
            for (int i = 0; i < s->ps.count; i++) fprintf(t->metrics, ",gn_pre.%s", s->ps.info[i].name);
        fprintf(t->metrics, "\n");
    }
    /* eval.csv keeps the rows an uninterrupted run has: the periodic ones up to the checkpoint's step.
     * A run that ended (interrupted, or finished before train.steps was raised) also evaluated at its
     * last step; that row goes, and the resumed run's own evaluation at its end replaces it. */
    long long ev = s->cfg.train.eval_every, keep = ev && s->step % ev == 0 ? s->step : s->step - 1;
    join(path, sizeof path, t->dir, "eval.csv");
    if ((st = open_csv(path, resuming, keep, &t->evalf, &header))) return st;
    if (header) fprintf(t->evalf, "step,test_loss,test_metric\n");
    return CN_OK;
}

static void log_row(trainer *t, int epoch, double loss, double lr, const cn_clip_report *r, double ms)
{
    if (!t->writer) return;
    char b[13][40];
    cn_fmt_num(b[0], 40, loss);
    cn_fmt_num(b[1], 40, lr);
    cn_fmt_num(b[2], 40, r->norm_pre_l2);
    cn_fmt_num(b[3], 40, r->norm_post);
    cn_fmt_num(b[4], 40, r->coef);
    cn_fmt_num(b[5], 40, r->threshold);
    cn_fmt_num(b[6], 40, r->max_abs);
    fprintf(t->metrics, "%lld,%d,%s,%s,%s,%s,%s,%s,%d,%s,%lld,%d,%.3f", t->s.step, epoch, b[0], b[1], b[2], b[3],
            b[4], b[5], r->clipped, b[6], r->n_nonfinite, r->skipped, ms);
    if (t->s.cfg.log_per_tensor)
        for (int i = 0; i < r->n_tensors; i++) {
            cn_fmt_num(b[7], 40, r->tensor_norm_pre[i]);
            fprintf(t->metrics, ",%s", b[7]);
        }
    fputc('\n', t->metrics);
}

static cn_status run_eval(trainer *t)
{
    cn_session *s = &t->s;
    if (!s->data.test.n) return CN_OK;
    cn_status st = cn_session_evaluate(s, &s->data.test, &t->test_loss, &t->test_metric);
    if (st) return st;
    t->have_test = 1;
    t->eval_step = s->step;
    if (!t->writer) return CN_OK;
    char a[40], b[40];
    cn_fmt_num(a, sizeof a, t->test_loss);
    cn_fmt_num(b, sizeof b, t->test_metric);
    fprintf(t->evalf, "%lld,%s,%s\n", s->step, a, b);
    fflush(t->evalf);
    return CN_OK;
}

static cn_status save_checkpoint(trainer *t)
{
    if (!t->writer) return CN_OK;
    char path[4200];
    join(path, sizeof path, t->dir, "checkpoint.safetensors");
    double earlier = t->s.wall_s;
    t->s.wall_s = earlier + (cn_now_s() - t->t_start);   /* time so far, carried by the checkpoint */
    cn_status st = cn_session_save(&t->s, path);
    t->s.wall_s = earlier;
    return st;
}

static double final_loss(const cn_session *s)
{
    long long n = s->loss_ring_n < CN_LOSS_RING ? s->loss_ring_n : CN_LOSS_RING;
    if (n == 0) return NAN;
    double sum = 0.0;
    for (long long i = 0; i < n; i++) sum += s->loss_ring[i];
    return sum / (double)n;
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cn_status write_summary(trainer *t, double wall)
{
    if (!t->writer) return CN_OK;
    cn_session *s = &t->s;
    cJSON *j = cJSON_CreateObject();
    if (!j) return cn_error(CN_ERR_NOMEM, "out of memory");
    double fl = final_loss(s);
    cJSON_AddStringToObject(j, "name", s->cfg.name);
    cJSON_AddNumberToObject(j, "steps", (double)s->step);
    /* JSON has no NaN/Inf: a non-finite final loss is null (diverged says why) */
    cJSON_AddItemToObject(j, "final_loss", num_or_null(fl));
    cJSON_AddItemToObject(j, "test_loss", t->have_test ? num_or_null(t->test_loss) : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "test_metric", t->have_test ? num_or_null(t->test_metric) : cJSON_CreateNull());
    cJSON_AddStringToObject(j, "test_metric_name", cn_session_metric_name(s));
    cJSON_AddBoolToObject(j, "diverged", s->diverged_at_step > 0);
    cJSON_AddItemToObject(j, "diverged_at_step", s->diverged_at_step > 0 ? cJSON_CreateNumber((double)s->diverged_at_step) : cJSON_CreateNull());
    cJSON_AddNumberToObject(j, "clip_frac", s->step ? (double)s->clipped_steps / (double)s->step : 0.0);
    /* JSON has no inf/NaN: "inf" if a norm was infinite, "nan" if no step's norm was a number */
    cJSON_AddItemToObject(j, "max_grad_norm_pre", isinf(s->max_norm_pre) ? cJSON_CreateString("inf")
                          : isnan(s->max_norm_pre) ? cJSON_CreateString("nan") : cJSON_CreateNumber(s->max_norm_pre));
    cJSON_AddNumberToObject(j, "skipped_steps", (double)s->skipped_steps);
    cJSON_AddNumberToObject(j, "nonfinite_steps", (double)s->nonfinite_steps);
    cJSON_AddNumberToObject(j, "wall_s", wall);
    double session_s = wall - s->wall_s;   /* this process's share (a resumed run has earlier sessions) */
    cJSON_AddNumberToObject(j, "steps_per_s", session_s > 0 ? (double)(s->step - t->first_step) / session_s : 0.0);
    cJSON_AddBoolToObject(j, "stopped_early", s->step < s->cfg.train.steps);
    cJSON_AddBoolToObject(j, "interrupted", t->interrupted && s->step < s->cfg.train.steps);
    /* what the rounding of the matrix products depends on (bit-identical runs need the same) */
    cJSON_AddNumberToObject(j, "blas_threads", cn_blas_threads());
    cJSON_AddStringToObject(j, "blas_core", cn_blas_core());
    cJSON_AddStringToObject(j, "blas_config", cn_blas_config());
    char path[4200];
    join(path, sizeof path, t->dir, "summary.json");
    cn_status st = cn_write_json_atomic(path, j);
    cJSON_Delete(j);
    return st;
}

/* ---- progress ---- */

static void progress(trainer *t, double loss, const cn_clip_report *r, int final)
{
    FILE *f = t->o->progress;
    if (!f || !t->writer) return;
    double now = cn_now_s();
    long long total = t->s.cfg.train.steps, step = t->s.step;
    double every = t->o->progress_tty ? 0.1 : 5.0;
    int tenth = total >= 10 && step % (total / 10) == 0;
    if (!final && now - t->last_progress < every && !(tenth && !t->o->progress_tty)) return;
    if (final && !t->o->progress_tty && t->last_progress_step == step) return;   /* already shown */
    t->last_progress = now;
    t->last_progress_step = step;
    double el = now - t->t_start, rate = el > 0 ? (double)(step - t->first_step) / el : 0.0;
    double eta = rate > 0 ? (double)(total - step) / rate : 0.0;
    double cf = step ? 100.0 * (double)t->s.clipped_steps / (double)step : 0.0;
    char lb[32], gb[32];
    fprintf(f, "%sstep %lld/%lld  loss %s  grad %s  clipped %.0f%%  %.0f steps/s  ETA %.0fs%s",
            t->o->progress_tty ? "\r" : "", step, total, cn_fmt_g(lb, sizeof lb, loss, 4),
            cn_fmt_g(gb, sizeof gb, r ? r->norm_pre_l2 : NAN, 3), cf, rate, eta,
            t->o->progress_tty ? "\033[K" : "\n");
    if (final && t->o->progress_tty) fputc('\n', f);
    fflush(f);
}

/* ---- the run ---- */

/* A run killed while writing leaves "<file>.tmp.<pid>" behind (the real file is
 * intact: writes are temp + rename); a run continuing in that directory removes them. */
static void remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4400];
    while ((e = readdir(d))) {
        static const char *const files[] = {"checkpoint.safetensors", "config.json", "summary.json", "metrics.csv", "eval.csv", NULL};
        int ours = 0;
        for (const char *const *f = files; *f && !ours; f++) {
            size_t k = strlen(*f);
            const char *rest = e->d_name + k;
            if (strncmp(e->d_name, *f, k) || strncmp(rest, ".tmp.", 5) || !rest[5]) continue;
            ours = 1;
            for (const char *q = rest + 5; *q; q++) ours &= *q >= '0' && *q <= '9';   /* <file>.tmp.<pid> */
        }
        if (!ours) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
}

/* ---- one writer per run directory ---- */

/* The files a run writes into its directory; the lock is made first. */
static const char *const run_files[] = {".lock", "config.json", "metrics.csv", "eval.csv", "summary.json",
                                        "checkpoint.safetensors", NULL};

/* What a directory may hold and still take a new run: the lock an ended run left, and train.log
 * (compare opens it for the run's output before the run starts). */
static int allowed_in_new_dir(const char *name)
{
    return !strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".lock") || !strcmp(name, "train.log");
}

cn_status cn_run_dir_check_new(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return CN_OK;   /* made by the run */
        if (errno == ENOTDIR) return cn_error(CN_ERR_ARG, "%s: exists and is not a directory", dir);
        return cn_error(CN_ERR_IO, "%s: cannot read the directory: %s", dir, strerror(errno));
    }
    char names[300] = "";
    int count = 0, run = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (allowed_in_new_dir(e->d_name)) continue;
        for (const char *const *f = run_files + 1; *f; f++) run |= !strcmp(e->d_name, *f);
        if (count++ < 3) {
            size_t k = strlen(names);
            snprintf(names + k, sizeof names - k, "%s%.80s", k ? ", " : "", e->d_name);
        }
    }
    closedir(d);
    if (!count) return CN_OK;
    char more[48] = "";
    if (count > 3) snprintf(more, sizeof more, " and %d more", count - 3);
    if (run)
        return cn_error(CN_ERR_ARG, "%s already holds a run (%s%s); choose another --out or remove it", dir, names, more);
    return cn_error(CN_ERR_ARG, "%s is not empty (it holds %s%s): a run goes into a new or empty directory; "
                    "choose another --out", dir, names, more);
}

/* DIR/.lock for the whole run (cn_lock_dir); without `create` a missing lock is not an error (*fd stays
 * -1): nothing is created before the directory has been checked. */
static cn_status lock_run_dir(const char *dir, int create, int *fd_out)
{
    return cn_lock_dir(dir, "run", "one writer per run directory: wait for it to end, or choose another --out",
                       create, fd_out);
}

/* The run never writes over the file its weights come from: init_from is compared by identity (device
 * and inode), so a symbolic or hard link into the directory is caught whatever its name. */
static cn_status check_not_init_from(const trainer *t)
{
    const cn_config *c = &t->s.cfg;
    if (!c->init_from) return CN_OK;
    char from[2048], path[4200];
    struct stat a, b;
    if (c->init_from[0] == '/') snprintf(from, sizeof from, "%s", c->init_from);   /* as cn_session_open reads it */
    else snprintf(from, sizeof from, "%s/%s", c->base_dir, c->init_from);
    if (stat(from, &a) != 0) return CN_OK;   /* read at the start and gone now: nothing to write over */
    for (const char *const *f = run_files; *f; f++) {
        join(path, sizeof path, t->dir, *f);
        if (stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return cn_error(CN_ERR_ARG, "%s: init_from (%s) is this file: the run would write over the weights it "
                            "starts from; copy them elsewhere or choose another --out", path, from);
    }
    return CN_OK;
}

/* Claims the run directory: no live writer, no other content (unless the run continues in its own
 * directory), never the init_from file; then the lock, and the content again under it (another run
 * may have come and gone between the look and the lock). */
static cn_status claim_dir(trainer *t, int own)
{
    const char *dir = t->dir;
    cn_status st;
    if ((st = check_not_init_from(t))) return st;
    if ((st = lock_run_dir(dir, 0, &t->lock_fd))) return st;   /* a live writer is named first */
    if (!own && (st = cn_run_dir_check_new(dir))) return st;
    if ((st = cn_mkdirs(dir))) return st;
    if (t->lock_fd < 0 && (st = lock_run_dir(dir, 1, &t->lock_fd))) return st;
    if (!own && (st = cn_run_dir_check_new(dir))) return st;
    return check_not_init_from(t);
}

/* 1 if dir is the directory that holds the checkpoint file (a resumed run may append there only). */
static int same_dir_as_checkpoint(const char *dir, const char *checkpoint)
{
    char cdir[4096], a[PATH_MAX], b[PATH_MAX];
    const char *slash = strrchr(checkpoint, '/');
    if (slash) snprintf(cdir, sizeof cdir, "%.*s", (int)(slash - checkpoint) ? (int)(slash - checkpoint) : 1, checkpoint);
    else snprintf(cdir, sizeof cdir, ".");
    return realpath(dir, a) && realpath(cdir, b) && !strcmp(a, b);
}

static cn_status pick_dir(trainer *t)
{
    const cn_train_opts *o = t->o;
    if (o->out_dir) {
        snprintf(t->dir, sizeof t->dir, "%s", o->out_dir);
        return CN_OK;
    }
    if (o->resume) {
        /* continue in the checkpoint's own run directory */
        const char *slash = strrchr(o->resume, '/');
        if (slash) snprintf(t->dir, sizeof t->dir, "%.*s", (int)(slash - o->resume), o->resume);
        else snprintf(t->dir, sizeof t->dir, ".");
        return CN_OK;
    }
    cn_run_dir_name(t->dir, sizeof t->dir, t->s.cfg.name, NULL);
    return CN_OK;
}

cn_status cn_train(const cn_train_opts *o, cn_train_result *res)
{
    trainer t;
    memset(&t, 0, sizeof t);
    memset(res, 0, sizeof *res);
    t.o = o;
    t.lock_fd = -1;
    t.eval_step = -1;
    cn_session *s = &t.s;
    cn_status st = cn_session_open(s, o->config_path, o->sets, o->n_sets);
    if (st) goto out;
    s->allow_thread_change = o->allow_thread_change;
    if (o->resume && (st = cn_session_resume(s, o->resume))) goto out;
    /* data-parallel under mpirun: every rank trains a replica on its slice; rank 0 alone writes */
    if ((st = cn_session_distribute(s, cn_dist_rank(), cn_dist_size()))) goto out;
    if ((st = cn_session_resolve_threads(s))) goto out;
    t.writer = cn_dist_rank() == 0;
    if (o->resume && s->step == s->cfg.train.steps) {
        /* a finished run: nothing to do, nothing rewritten (a resume loop may call it again) */
        res->already_done = 1;
        res->steps = s->step;
        goto out;
    }
    cn_set_threads(s->cfg.threads);
    pick_dir(&t);
    snprintf(res->out_dir, sizeof res->out_dir, "%s", t.dir);
    if (t.writer) {
        int own = o->resume && same_dir_as_checkpoint(t.dir, o->resume);
        if ((st = claim_dir(&t, own))) goto out;
        /* only now, holding the lock: a temp file here is a dead writer's, never a live one's */
        if (o->resume) remove_stale_temps(t.dir);
        char path[4200];
        join(path, sizeof path, t.dir, "config.json");
        if ((st = cn_write_json_atomic(path, s->cfg.root))) goto out;
        if ((st = open_logs(&t, o->resume != NULL))) goto out;
    }

    t.first_step = s->step;
    t.t_start = cn_now_s();
    t.last_progress = 0;
    const cn_train_config *tc = &s->cfg.train;
    double loss = NAN;
    const cn_clip_report *rep = NULL;
    while (s->step < tc->steps) {
        double t0 = cn_now_s(), lr = 0;
        int epoch = 0;
        cn_clip_action act;
        if ((st = cn_session_step(s, &loss, &epoch, &lr, &act))) goto out;
        rep = cn_clip_last_report(s->clip);
        if (s->step % tc->log_every == 0 || act == CN_CLIP_STOP) log_row(&t, epoch, loss, lr, rep, 1000.0 * (cn_now_s() - t0));
        if (act == CN_CLIP_STOP) {
            res->stopped = 1;
            if (cn_clip_policy(s->clip) == CN_NONFINITE_SKIP)
                snprintf(res->stop_reason, sizeof res->stop_reason, "too many consecutive skipped steps "
                         "(clip.on_nonfinite = skip, max_consecutive_skips reached)");
            else
                snprintf(res->stop_reason, sizeof res->stop_reason, "non-finite %s (clip.on_nonfinite = stop)",
                         !isfinite(loss) ? "loss" : "gradient");
            break;
        }
        if (tc->eval_every && s->step % tc->eval_every == 0 && s->step < tc->steps && (st = run_eval(&t))) goto out;
        if (tc->checkpoint_every && s->step % tc->checkpoint_every == 0 && s->step < tc->steps) {
            if (t.metrics) fflush(t.metrics);
            if ((st = save_checkpoint(&t))) goto out;
        }
        progress(&t, loss, rep, 0);
        int stop = o->stop_flag && *o->stop_flag;
        /* a signal may reach the ranks at different steps: they stop together when any has one */
        if (s->dist_size > 1 && (st = cn_dist_max_int(&stop, 1))) goto out;
        if (stop) {
            res->stopped = res->interrupted = t.interrupted = 1;
            break;
        }
    }
    double wall = s->wall_s + (cn_now_s() - t.t_start);
    /* the final evaluation, unless the periodic one just ran at this step (an interrupt there) */
    if ((!res->stopped || res->interrupted) && t.eval_step != s->step) {
        if ((st = run_eval(&t))) goto out;
    }
    progress(&t, loss, rep, 1);
    if (t.metrics) fflush(t.metrics);
    if ((st = save_checkpoint(&t))) goto out;
    if ((st = write_summary(&t, wall))) goto out;
    res->diverged = s->diverged_at_step > 0;
    res->diverged_at_step = s->diverged_at_step;
    res->steps = s->step;
out:
    if (t.metrics && fclose(t.metrics) != 0 && !st) st = cn_error(CN_ERR_IO, "%s/metrics.csv: write failed", t.dir);
    if (t.evalf && fclose(t.evalf) != 0 && !st) st = cn_error(CN_ERR_IO, "%s/eval.csv: write failed", t.dir);
    cn_unlock_dir(t.lock_fd);   /* every file is written: the next writer may come */
    cn_session_close(s);
    return st;
}

/* ---- eval and sample ---- */

static cn_status open_with_checkpoint(cn_session *s, const char *config_path, char *const *sets, int n_sets,
                                      const char *checkpoint)
{
    cn_status st = cn_session_open(s, config_path, sets, n_sets);
    if (st) return st;
    cn_st_file *f = NULL;
    /* an unreadable --checkpoint is bad input (exit 2), like a missing data file (session.c) */
    if ((st = cn_st_read(checkpoint, &f))) return st == CN_ERR_IO ? CN_ERR_ARG : st;
    st = cn_session_load_params(s, f, checkpoint);
    cn_st_close(f);
    return st;
}

cn_status cn_evaluate(const char *config_path, char *const *sets, int n_sets, const char *checkpoint,
                      double *loss, double *metric, const char **metric_name, int *n_examples)
{
    cn_session s;
    cn_status st = open_with_checkpoint(&s, config_path, sets, n_sets, checkpoint);
    if (!st) {
        const cn_dataset *d = s.data.test.n ? &s.data.test : &s.data.train;
        *n_examples = d->n;
        *metric_name = cn_session_metric_name(&s);
        st = cn_session_evaluate(&s, d, loss, metric);
    }
    cn_session_close(&s);
    return st;
}

cn_status cn_sample_text(const char *config_path, char *const *sets, int n_sets, const char *checkpoint,
                         int length, double temperature, uint64_t seed, const char *prime, FILE *out)
{
    cn_session s;
    cn_status st = open_with_checkpoint(&s, config_path, sets, n_sets, checkpoint);
    if (st) goto done;
    if (!s.data.vocab_size || !s.out.seq) {
        st = cn_error(CN_ERR_ARG, "%s: sample needs a character-level text model (data.kind \"text\", output \"sequence\")", config_path);
        goto done;
    }
    int T = s.data.train.seq_len, V = s.data.vocab_size;
    float *ctx = cn_malloc(sizeof(float) * (size_t)T);
    double *prob = cn_malloc(sizeof(double) * (size_t)V);
    if (!ctx || !prob) { cn_free(ctx); cn_free(prob); st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    int n = 0;
    /* the context: the priming text (characters outside the vocabulary are skipped), else a random character */
    for (const char *p = prime ? prime : ""; *p; p++) {
        const char *q = memchr(s.data.vocab, *p, (size_t)V);
        if (!q) continue;
        if (n == T) { memmove(ctx, ctx + 1, sizeof(float) * (size_t)(T - 1)); n--; }
        ctx[n++] = (float)(q - s.data.vocab);
        fputc(*p, out);
    }
    int printed = n > 0, k = 0;
    if (n == 0 && length > 0) {
        /* no context: the first of the `length` characters is drawn uniformly from the vocabulary */
        ctx[n++] = (float)cn_rng_below(&rng, (uint64_t)V);
        fputc(s.data.vocab[(int)ctx[0]], out);
        printed = 1;
        k = 1;
    }
    for (; k < length; k++) {
        cn_var *y;
        if ((st = cn_session_forward(&s, &s.ge, ctx, n, 1, 1, 0, &y))) break;
        const float *logit = y->v.data + (size_t)(n - 1) * (size_t)cn_cols(&y->v);
        int C = cn_cols(&y->v) < V ? cn_cols(&y->v) : V, pick = 0;
        if (temperature <= 0) {
            for (int c = 1; c < C; c++) if (logit[c] > logit[pick]) pick = c;
        } else {
            double mx = logit[0], sum = 0.0;
            for (int c = 1; c < C; c++) if (logit[c] > mx) mx = logit[c];
            for (int c = 0; c < C; c++) sum += prob[c] = exp(((double)logit[c] - mx) / temperature);
            double u = cn_rng_double(&rng) * sum, acc = 0.0;
            pick = C - 1;
            for (int c = 0; c < C; c++) { acc += prob[c]; if (u < acc) { pick = c; break; } }
        }
        fputc(s.data.vocab[pick], out);
        if (n == T) { memmove(ctx, ctx + 1, sizeof(float) * (size_t)(T - 1)); n--; }
        ctx[n++] = (float)pick;
    }
    if (printed) fputc('\n', out);   /* nothing at all for --length 0 without a priming text */
    cn_free(ctx);
    cn_free(prob);
done:
    cn_session_close(&s);
    return st;
}
