/* clipnn command-line program: train, compare, report, eval, sample, predict, export.
 * Exit codes (README, docs/clipnn.1): 0 done; 3 the run stopped on a non-finite loss or
 * gradient; 2 usage, config or data error; 1 internal or I/O error;
 * 130 interrupted (SIGINT/SIGTERM; files and a checkpoint are written). Output that cannot be
 * written to stdout is an I/O error (exit 1). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipnn.h"
#include "cli/compare_dist.h"
#include "cli/compare_pool.h"
#include "dist/dist.h"
#include "io/files.h"
#include "tensor/pool.h"
#include "train/compare.h"
#include "train/trainer.h"

int cn_cli_probe(int argc, char **argv);   /* cli/probe.c */

/* SIGINT/SIGTERM received (train stops after its step on the first; compare forwards each one) */
static volatile sig_atomic_t stop_requested;
static void on_signal(int sig)
{
    (void)sig;
    if (stop_requested < 100) stop_requested++;
}

static const char *const main_usage =
    "clipnn " CN_VERSION " - train small neural networks and see what gradient clipping does\n"
    "\n"
    "usage: clipnn COMMAND [ARGS]\n"
    "  train   CONFIG.json [--out DIR] [--set PATH=VALUE]... [--resume CHECKPOINT] [--quiet]\n"
    "  compare CONFIG.json [--variant NAME:PATH=VALUE[,PATH=VALUE...]]... [--sweep PATH=V1,V2,...]...\n"
    "                      [--seeds N] [--jobs N] [--out DIR]\n"
    "  report  DIR... [--out DIR]\n"
    "  eval    CONFIG.json --checkpoint FILE\n"
    "  sample  CONFIG.json --checkpoint FILE [--length N] [--temperature T]\n"
    "  probe   CONFIG.json [--steps N] [--out DIR] | probe --run RUN_DIR   (choose a clip threshold)\n"
    "  predict CONFIG.json --checkpoint FILE --data FILE [--out FILE]\n"
    "  export  CHECKPOINT --out MODEL.safetensors\n"
    "  clipnn --help | --version [--verbose] ; clipnn COMMAND --help\n"
    "\n"
    "example:\n"
    "  clipnn compare examples/rnn_adding_explode.json --seeds 3 --out runs/explode\n";

static const char *const train_usage =
    "usage: clipnn train CONFIG.json [--out DIR] [--set PATH=VALUE]... [--resume CHECKPOINT] [--quiet]\n"
    "                    [--allow-thread-change]\n"
    "\n"
    "Trains the model described by CONFIG.json and writes config.json, metrics.csv, eval.csv,\n"
    "summary.json and checkpoint.safetensors into DIR (default runs/<name>-<timestamp>), which must be\n"
    "new or empty; one run writes into a directory at a time.\n"
    "  --set PATH=VALUE   override a config value; VALUE is JSON, a bare word is a string\n"
    "                     (e.g. --set clip.max_norm=0.5 --set optimizer.lr=1e-3 --set model.0.hidden=64)\n"
    "  --resume FILE      continue from a checkpoint (bit-identical to an uninterrupted run);\n"
    "                     without --out the run continues in the checkpoint's directory\n"
    "  --allow-thread-change  with --resume: accept another \"threads\" than the run's (the resumed\n"
    "                     run is then not bit-identical: the thread count changes the rounding)\n"
    "  --quiet            no progress output\n"
    "Exit: 0 done, 3 stopped on a non-finite loss/gradient, 2 bad config/data/usage, 1 I/O error.\n"
    "\n"
    "example:\n"
    "  clipnn train examples/spirals.json --set clip.mode=none --out runs/spirals-noclip\n";

static const char *const eval_usage =
    "usage: clipnn eval CONFIG.json --checkpoint FILE [--set PATH=VALUE]...\n"
    "\n"
    "Evaluates a checkpoint on the config's test set (the training set if there is none) and prints\n"
    "the mean loss and the metric (accuracy for classification, mean absolute error for mse).\n"
    "\n"
    "example:\n"
    "  clipnn eval examples/digits_mlp.json --checkpoint runs/digits/checkpoint.safetensors\n";

static const char *const sample_usage =
    "usage: clipnn sample CONFIG.json --checkpoint FILE [--length N] [--temperature T] [--seed S] [--prime TEXT]\n"
    "\n"
    "Generates N characters (default 200) from a character-level text model. T > 0 samples from\n"
    "softmax(logits / T) (default 0.8); T = 0 always takes the most likely character.\n"
    "\n"
    "example:\n"
    "  clipnn sample examples/char_lstm.json --checkpoint runs/char/checkpoint.safetensors --length 300\n";

static const char *const compare_usage =
    "usage: clipnn compare CONFIG.json [--variant NAME:PATH=VALUE[,PATH=VALUE...]]... [--sweep PATH=V1,V2,...]...\n"
    "                      [--seeds N] [--jobs N] [--out DIR] [--set PATH=VALUE]...\n"
    "                      [--baseline NAME] [--quiet]\n"
    "\n"
    "Trains CONFIG.json once per variant (and per seed with --seeds N: seeds seed .. seed+N-1), each in its own\n"
    "process into DIR/<variant>[-s<seed>]/, --jobs at a time (default: one per core), then writes DIR/report.md,\n"
    "DIR/report.html (charts), DIR/report.json and DIR/runs.csv (every number, for scripts).\n"
    "  --variant NAME:...  a variant; without --variant/--sweep: the config's \"compare\": {\"variants\": {...}},\n"
    "                      or else the config as written (\"config\") against \"noclip\" (clip.mode=none)\n"
    "  --sweep PATH=V1,... a grid of variants (cartesian over every --sweep, the first varying slowest),\n"
    "                      named e.g. max_norm=0.1+lr=0.01; values are JSON as for --set; at most 256 runs\n"
    "  --jobs N            runs at a time (default: the number of cores)\n"
    "Every run's config (each variant with each seed) is checked before the first starts. Into a DIR that\n"
    "holds a compare it runs only what is missing (new variants, new seeds, interrupted runs, resumed from\n"
    "their checkpoints) and rebuilds the report over all runs; a different base config is refused.\n"
    "Ctrl-C: every running run stops after its step with all files and a checkpoint, the report marks it\n"
    "interrupted, exit 130; the same command again finishes the comparison. Per-tensor gradient norms are\n"
    "logged unless the config sets log.per_tensor.\n"
    "  --baseline NAME     the report compares each variant with this one seed by seed (default: noclip if\n"
    "                      there is one, else the first variant): wins/losses, paired differences of the test\n"
    "                      loss with a bootstrap interval, Wilcoxon signed-rank and sign tests, and Fisher's\n"
    "                      exact test on the divergences\n"
    "Exit: 0 when every run ran (whatever each one's outcome), 2 bad config/variant, 1 I/O error, 130 interrupted.\n"
    "\n"
    "examples:\n"
    "  clipnn compare examples/rnn_adding_explode.json --seeds 3 --out runs/explode\n"
    "  clipnn compare cfg.json --variant noclip:clip.mode=none --sweep clip.max_norm=0.1,1,10 --seeds 3\n";

static const char *const report_usage =
    "usage: clipnn report DIR... [--out DIR] [--baseline NAME]\n"
    "\n"
    "Rebuilds report.md, report.html, report.json and runs.csv from run directories: compare folders, single\n"
    "runs (each a variant named after its directory; <variant>-s<seed> is a seed of <variant>) or folders\n"
    "of runs, in any mix. --out defaults to the directory when only one is given. --baseline NAME: the\n"
    "variant the report's paired statistics compare the others with (default: noclip, else the first).\n"
    "\n"
    "example:\n"
    "  clipnn report runs/explode\n";

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "clipnn: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

static int exit_code(cn_status st)
{
    switch (st) {
    case CN_OK: return 0;
    case CN_ERR_ARG: case CN_ERR_SHAPE: case CN_ERR_FORMAT: return 2;
    default: return 1;
    }
}

static int fail(cn_status st)
{
    fprintf(stderr, "clipnn: error: %s\n", cn_errmsg());
    return exit_code(st);
}

/* An error in a job of several MPI ranks: said with the rank (some errors are one rank's own), then the
 * whole job ends (the other ranks may be waiting in a collective and would otherwise hang). */
static int dist_fail(cn_status st)
{
    if (cn_dist_size() <= 1) {
        int rc = fail(st);
        cn_dist_finalize();
        return rc;
    }
    fprintf(stderr, "clipnn: error (rank %d of %d): %s\n", cn_dist_rank(), cn_dist_size(), cn_errmsg());
    fflush(stderr);
    cn_dist_abort(exit_code(st));
    return exit_code(st);
}

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* Options common to the commands. */
typedef struct {
    const char *config, *out, *resume, *checkpoint, *prime, *data;
    char **sets;
    int n_sets, quiet, seeds, length, allow_thread_change;
    double temperature;
    unsigned long long seed;
    char **variants;
    int n_variants;
    const char *baseline;   /* compare --baseline */
    char **sweeps;
    int n_sweeps, jobs;
} cli_args;

static int parse_num(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return *s && !*end;
}

static int parse_args(int argc, char **argv, const char *usage, const char *allowed, cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->length = 200;
    a->temperature = 0.8;
    a->seed = 1;
    a->sets = calloc((size_t)argc, sizeof *a->sets);
    a->variants = calloc((size_t)argc, sizeof *a->variants);
    a->sweeps = calloc((size_t)argc, sizeof *a->sweeps);
    if (!a->sets || !a->variants || !a->sweeps) return usage_error(usage, "%s", "out of memory");
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (is_help(o)) { fputs(usage, stdout); return 0; }
        if (o[0] != '-') {
            if (a->config) return usage_error(usage, "unexpected argument '%s'", o);
            a->config = o;
            continue;
        }
        /* options with a value */
        char key[32];
        snprintf(key, sizeof key, " %s ", o);
        if (!strstr(allowed, key)) return usage_error(usage, "unknown option '%s'", o);
        if (!strcmp(o, "--quiet")) { a->quiet = 1; continue; }
        if (!strcmp(o, "--allow-thread-change")) { a->allow_thread_change = 1; continue; }
        if (i + 1 >= argc) return usage_error(usage, "option '%s' needs a value", o);
        const char *v = argv[++i];
        double num;
        if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--set")) a->sets[a->n_sets++] = (char *)v;
        else if (!strcmp(o, "--resume")) a->resume = v;
        else if (!strcmp(o, "--checkpoint")) a->checkpoint = v;
        else if (!strcmp(o, "--variant")) a->variants[a->n_variants++] = (char *)v;
        else if (!strcmp(o, "--sweep")) a->sweeps[a->n_sweeps++] = (char *)v;
        else if (!strcmp(o, "--prime")) a->prime = v;
        else if (!strcmp(o, "--baseline")) a->baseline = v;
        else if (!strcmp(o, "--data")) a->data = v;
        else if (!parse_num(v, &num)) return usage_error(usage, "option needs a number, got '%s'", v);
        else if (!strcmp(o, "--seeds")) {
            if (num < 1 || num > 1000 || num != (int)num) return usage_error(usage, "--seeds: expected an integer in 1..1000, got '%s'", v);
            a->seeds = (int)num;
        } else if (!strcmp(o, "--jobs")) {
            if (num < 1 || num > CN_COMPARE_MAX_RUNS || num != (int)num)
                return usage_error(usage, "--jobs: expected an integer in 1..256, got '%s'", v);
            a->jobs = (int)num;
        } else if (!strcmp(o, "--length")) {
            if (num < 0 || num > 1e7 || num != (int)num) return usage_error(usage, "--length: expected an integer >= 0, got '%s'", v);
            a->length = (int)num;
        } else if (!strcmp(o, "--temperature")) {
            if (!(num >= 0 && num <= 100)) return usage_error(usage, "--temperature: expected a number in [0, 100], got '%s'", v);
            a->temperature = num;
        } else if (!strcmp(o, "--seed")) {
            if (num < 0 || num != (double)(unsigned long long)num) return usage_error(usage, "--seed: expected an integer >= 0, got '%s'", v);
            a->seed = (unsigned long long)num;
        }
    }
    if (!a->config) return usage_error(usage, "%s", strstr(usage, "export CHECKPOINT") ? "missing CHECKPOINT" : "missing CONFIG.json");
    return -1;
}

static void free_args(cli_args *a)
{
    free(a->sets);
    free(a->variants);
    free(a->sweeps);
}

/* reset_hand: a second Ctrl-C ends the program at once (train). Without SA_RESTART, so that a wait
 * returns on a signal. SIGINT/SIGTERM are unblocked only now: compare starts its children with them
 * blocked, so that a forwarded signal waits for this handler. */
static void install_signals(int reset_hand)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = reset_hand ? SA_RESETHAND : 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static int cmd_train(int argc, char **argv)
{
    cli_args a;
    int rc = parse_args(argc, argv, train_usage, " --out --set --resume --quiet --allow-thread-change ", &a);
    if (rc >= 0) { free_args(&a); return rc; }
    install_signals(1);
    cn_status st = cn_dist_init(&argc, &argv);   /* MPI only when launched by mpirun/srun as several ranks */
    if (st) { free_args(&a); return fail(st); }
    cn_train_opts o = {a.config, a.out, a.resume, a.sets, a.n_sets, a.quiet ? NULL : stderr,
                       !a.quiet && isatty(STDERR_FILENO), &stop_requested, a.allow_thread_change};
    cn_train_result r;
    st = cn_train(&o, &r);
    free_args(&a);
    if (st) return dist_fail(st);
    int quiet_rank = cn_dist_rank() != 0;   /* rank 0 speaks for a data-parallel job */
    cn_dist_finalize();
    if ((!a.quiet || r.stopped) && !quiet_rank) {
        if (r.already_done) fprintf(stderr, "clipnn: the run is already at step %lld = train.steps: nothing to do "
                                    "(raise train.steps to train further)\n", r.steps);
        else if (r.interrupted) fprintf(stderr, "clipnn: interrupted at step %lld; files and checkpoint written to %s\n", r.steps, r.out_dir);
        else if (r.stopped) fprintf(stderr, "clipnn: stopped at step %lld: %s; first non-finite value at step %lld; files written to %s\n", r.steps, r.stop_reason, r.diverged_at_step, r.out_dir);
        else fprintf(stderr, "clipnn: done: %lld steps%s; files in %s\n", r.steps, r.diverged ? " (non-finite values were seen)" : "", r.out_dir);
    }
    if (r.interrupted) return 130;
    return r.stopped ? 3 : 0;
}

static int cmd_eval(int argc, char **argv)
{
    cli_args a;
    int rc = parse_args(argc, argv, eval_usage, " --checkpoint --set ", &a);
    if (rc >= 0) { free_args(&a); return rc; }
    if (!a.checkpoint) { free_args(&a); return usage_error(eval_usage, "%s", "missing --checkpoint FILE"); }
    double loss, metric;
    const char *mname;
    int n;
    cn_status st = cn_evaluate(a.config, a.sets, a.n_sets, a.checkpoint, &loss, &metric, &mname, &n);
    free_args(&a);
    if (st) return fail(st);
    char lb[32], mb[32];
    printf("examples: %d\nloss: %s\n%s: %s\n", n, cn_fmt_g(lb, sizeof lb, loss, 6), mname, cn_fmt_g(mb, sizeof mb, metric, 6));
    return 0;
}

static int cmd_sample(int argc, char **argv)
{
    cli_args a;
    int rc = parse_args(argc, argv, sample_usage, " --checkpoint --set --length --temperature --seed --prime ", &a);
    if (rc >= 0) { free_args(&a); return rc; }
    if (!a.checkpoint) { free_args(&a); return usage_error(sample_usage, "%s", "missing --checkpoint FILE"); }
    cn_status st = cn_sample_text(a.config, a.sets, a.n_sets, a.checkpoint, a.length, a.temperature, a.seed, a.prime, stdout);
    free_args(&a);
    return st ? fail(st) : 0;
}

static const char *const export_usage =
    "usage: clipnn export CHECKPOINT --out MODEL.safetensors\n"
    "\n"
    "Writes the model tensors of a checkpoint (under their PyTorch state_dict names, F32) to a new\n"
    "safetensors file, without the optimizer, clip, data and run state the checkpoint also holds, so that\n"
    "PyTorch loads it with load_state_dict(strict=True) (see the README). The file is written atomically;\n"
    "--out may not be the checkpoint itself.\n"
    "\n"
    "example:\n"
    "  clipnn export runs/spirals/checkpoint.safetensors --out spirals.safetensors\n";

static int cmd_export(int argc, char **argv)
{
    cli_args a;
    int rc = parse_args(argc, argv, export_usage, " --out ", &a);
    if (rc >= 0) { free_args(&a); return rc; }
    if (!a.out) { free_args(&a); return usage_error(export_usage, "%s", "missing --out MODEL.safetensors"); }
    int n = 0;
    cn_status st = cn_export_model(a.config, a.out, &n);
    if (!st) fprintf(stderr, "clipnn: wrote %d model tensors to %s\n", n, a.out);
    free_args(&a);
    return st ? fail(st) : 0;
}

static const char *const predict_usage =
    "usage: clipnn predict CONFIG.json --checkpoint FILE --data FILE [--out FILE] [--set PATH=VALUE]...\n"
    "\n"
    "Runs the checkpoint's model on every example of --data (.npy float features [N, F] or [N, T, F], or a\n"
    ".csv with a header row: the config's data.target column, if present, is left out, the other columns\n"
    "are the features) and writes one row per example (per example and step for a sequence output): the\n"
    "raw outputs (out0, out1, ...: values for mse, logits for cross_entropy and bce_with_logits) and, for\n"
    "classification, the predicted class (cross_entropy: the argmax; bce_with_logits: logit > 0).\n"
    "--out FILE.csv or FILE.npy (float32 outputs; classes as int64 in FILE.class.npy); default: CSV on\n"
    "standard output.\n"
    "\n"
    "example:\n"
    "  clipnn predict examples/digits_mlp.json --checkpoint runs/digits/checkpoint.safetensors \\\n"
    "      --data examples/data/digits_test.csv --out predictions.csv\n";

static int cmd_predict(int argc, char **argv)
{
    cli_args a;
    int rc = parse_args(argc, argv, predict_usage, " --checkpoint --data --out --set ", &a);
    if (rc >= 0) { free_args(&a); return rc; }
    if (!a.checkpoint) { free_args(&a); return usage_error(predict_usage, "%s", "missing --checkpoint FILE"); }
    if (!a.data) { free_args(&a); return usage_error(predict_usage, "%s", "missing --data FILE"); }
    int n = 0;
    cn_status st = cn_predict(a.config, a.sets, a.n_sets, a.checkpoint, a.data, a.out, stdout, &n);
    if (!st && a.out) fprintf(stderr, "clipnn: wrote the outputs of %d examples to %s\n", n, a.out);
    free_args(&a);
    return st ? fail(st) : 0;
}

/* DIR/.lock of a compare folder, held by the compare (rank 0 under MPI) until its report is written. */
static cn_status lock_compare(const char *dir, int *fd)
{
    return cn_lock_dir(dir, "compare", "one compare per folder at a time: wait for it to end, or choose another --out",
                       1, fd);
}

static int cmd_compare(int argc, char **argv)
{
    cli_args a;
    int rc = parse_args(argc, argv, compare_usage, " --variant --sweep --seeds --jobs --out --set --quiet --baseline ", &a);
    if (rc >= 0) { free_args(&a); return rc; }
    cn_compare_opts o = {a.config, a.out, a.variants, a.n_variants, a.sweeps, a.n_sweeps, a.seeds ? a.seeds : 1,
                         a.sets, a.n_sets, a.baseline};
    cn_compare_plan p;
    memset(&p, 0, sizeof p);
    int auto_threads;
    cn_status st = cn_auto_threads_env(&auto_threads);   /* refused before any folder is made */
    if (st) { free_args(&a); return fail(st); }
    st = cn_dist_init(&argc, &argv);   /* MPI only when launched by mpirun/srun as several ranks */
    int dist = cn_dist_size() > 1, rank = cn_dist_rank();
    int lock_fd = -1;
    if (!st && !dist) {
        st = cn_compare_plan_make(&o, &p);
        /* One compare per folder at a time. The plan is made again under the lock, so that a compare that
           ended in between is extended, not overwritten. */
        static char dir[sizeof p.dir];
        if (!st) snprintf(dir, sizeof dir, "%s", p.dir);
        if (!st) {
            st = cn_mkdirs(dir);
            if (!st) st = lock_compare(dir, &lock_fd);
            cn_compare_plan_free(&p);   /* made again under the lock, or not needed */
            if (!st) {
                o.out_dir = dir;
                st = cn_compare_plan_make(&o, &p);
            }
        }
    }
    if (!st && dist) {
        cn_status rank0 = CN_OK;
        if ((st = cli_compare_dist_plan(&o, &p, &rank0))) { free_args(&a); return dist_fail(st); }
        if (rank0) {   /* a bad grid is bad on every rank: all end here together, rank 0 says why */
            free_args(&a);
            rc = rank == 0 ? fail(rank0) : exit_code(rank0);
            cn_dist_finalize();
            return rc;
        }
    }
    FILE *progress = a.quiet ? NULL : stderr;
    int jobs = a.jobs;
    free_args(&a);
    if (st) { cn_unlock_dir(lock_fd); return fail(st); }
    if (jobs <= 0 && dist) jobs = 1;   /* mpirun places one rank per slot: one run at a time per rank */
    if (jobs <= 0) {
        int ncpu = cn_usable_cores();
        jobs = ncpu > CN_COMPARE_MAX_RUNS ? CN_COMPARE_MAX_RUNS : ncpu;
    }
    install_signals(0);
    double t0 = cn_now_s();
    if (rank == 0 && dist && !(st = cn_mkdirs(p.dir))) st = lock_compare(p.dir, &lock_fd);
    if (rank == 0 && !st) st = cn_compare_prepare(&p);
    if (dist) {
        /* the others start runs only in directories rank 0 has made */
        int code = st ? exit_code(st) : 0;
        if (st) fprintf(stderr, "clipnn: error: %s\n", cn_errmsg());
        cn_status bs = cn_dist_max_int(&code, 1);
        if (bs || code) {
            cn_compare_plan_free(&p);
            cn_unlock_dir(lock_fd);
            if (bs) return dist_fail(bs);
            cn_dist_finalize();
            return code;
        }
    }
    if (st) goto out;
    if (progress && rank == 0) {
        int kept = p.n_runs - p.n_todo, resumed = 0;
        for (int i = 0; i < p.n_runs; i++) resumed += p.runs[i].action == CN_RUN_RESUME;
        fprintf(progress, "clipnn compare: %d run%s to do", p.n_todo, p.n_todo == 1 ? "" : "s");
        if (resumed) fprintf(progress, " (%d resumed)", resumed);
        if (kept) fprintf(progress, ", %d already there", kept);
        if (dist) fprintf(progress, ", %d variant%s, over %d MPI ranks (%d at a time each), into %s\n", p.n_variants,
                          p.n_variants == 1 ? "" : "s", cn_dist_size(), jobs, p.dir);
        else fprintf(progress, ", %d variant%s, %d at a time, into %s\n", p.n_variants, p.n_variants == 1 ? "" : "s",
                     jobs < p.n_todo ? jobs : (p.n_todo ? p.n_todo : 1), p.dir);
    }
    /* runs that share the machine (--jobs above 1, or ranks) take one thread each where their config says
       "auto" (several at 2 threads would oversubscribe the cores), whether this compare has one run to do or
       many, so a run's count does not depend on what else is in the folder; a resumed run keeps its own */
    const char *auto_env = getenv("CLIPNN_AUTO_THREADS");
    if ((dist || jobs > 1) && (!auto_env || !*auto_env)) setenv("CLIPNN_AUTO_THREADS", "1", 1);
    if (dist) {
        if ((st = cli_compare_dist_pool(&p, argv[0], jobs, progress, &stop_requested))) {
            cn_compare_plan_free(&p);
            cn_unlock_dir(lock_fd);
            return dist_fail(st);
        }
        if (rank != 0) {   /* rank 0 writes the report */
            cn_compare_plan_free(&p);
            cn_dist_finalize();
            return stop_requested ? 130 : 0;
        }
    } else if ((st = cli_compare_pool(&p, argv[0], jobs, progress, &stop_requested))) goto out;
    if ((st = cn_compare_report(&p, stdout))) goto out;
    printf("\nreport: %s/report.md\ncharts: %s/report.html\ndata:   %s/report.json, %s/runs.csv\n(%.1f s)\n", p.dir,
           p.dir, p.dir, p.dir, cn_now_s() - t0);   /* a failed write to stdout is reported by finish_stdout */
    if (stop_requested && progress) {
        int unfinished = 0;
        for (int i = 0; i < p.n_runs; i++) unfinished += p.runs[i].action != CN_RUN_KEEP && p.runs[i].exit_code != 0 && p.runs[i].exit_code != 3;
        fprintf(progress, "clipnn compare: interrupted; %d run%s unfinished. The same command finishes them (interrupted "
                "runs continue from their checkpoints).\n", unfinished, unfinished == 1 ? "" : "s");
    }
out:
    cn_compare_plan_free(&p);
    cn_unlock_dir(lock_fd);
    if (st) return dist ? dist_fail(st) : fail(st);
    cn_dist_finalize();
    return stop_requested ? 130 : 0;
}

static int cmd_report(int argc, char **argv)
{
    const char *out = NULL, *baseline = NULL;
    char **dirs = calloc((size_t)argc, sizeof *dirs);
    int n = 0;
    if (!dirs) return usage_error(report_usage, "%s", "out of memory");
    for (int i = 2; i < argc; i++) {
        if (is_help(argv[i])) { free(dirs); fputs(report_usage, stdout); return 0; }
        if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) { free(dirs); return usage_error(report_usage, "option '%s' needs a value", "--out"); }
            out = argv[++i];
        } else if (!strcmp(argv[i], "--baseline")) {
            if (i + 1 >= argc) { free(dirs); return usage_error(report_usage, "option '%s' needs a value", "--baseline"); }
            baseline = argv[++i];
        } else if (argv[i][0] == '-') {
            free(dirs);
            return usage_error(report_usage, "unknown option '%s'", argv[i]);
        } else {
            dirs[n++] = argv[i];
        }
    }
    if (!n) { free(dirs); return usage_error(report_usage, "%s", "missing DIR"); }
    if (n > 1 && !out) { free(dirs); return usage_error(report_usage, "%s", "several directories: name the output with --out DIR"); }
    cn_status st = cn_compare_rebuild_baseline(dirs, n, out, baseline, stdout);
    const char *to = out ? out : dirs[0];
    free(dirs);
    if (st) return fail(st);
    printf("\nreport: %s/report.md\ncharts: %s/report.html\ndata:   %s/report.json, %s/runs.csv\n", to, to, to, to);
    return 0;   /* a failed write to stdout is reported by finish_stdout */
}

/* fds 0-2 must be open before any file is: started with stderr closed, the run would get metrics.csv
 * as fd 2 and write its progress lines into it. A closed one becomes /dev/null opened read-only, so
 * nothing lands in a file and a write to it still fails (EBADF), as it would have on the closed fd:
 * a closed stdout is then reported by finish_stdout. */
static int open_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        if (open("/dev/null", O_RDONLY) != fd) return -1;   /* the lowest free fd: this one */
    }
    return 0;
}

/* Results go to stdout (eval, sample, compare's summary, --help, --version), buffered: a full disk or
 * a closed stdout shows only when the buffer is flushed and closed, and must not pass for success. */
static int finish_stdout(int rc)
{
    errno = 0;
    int e = 0, bad = 0;
    if (fflush(stdout) != 0) { bad = 1; e = errno; }
    else if (ferror(stdout)) bad = 1;   /* an earlier write failed */
    if (fclose(stdout) != 0 && !bad) { bad = 1; e = errno; }
    if (!bad) return rc;
    fprintf(stderr, "clipnn: error: cannot write to standard output: %s\n", e ? strerror(e) : "a write failed");
    return rc ? rc : 1;   /* an earlier, more specific failure keeps its code */
}

static int run_command(int argc, char **argv)
{
    if (argc < 2) { fputs(main_usage, stderr); return 2; }
    const char *cmd = argv[1];
    if (is_help(cmd)) { fputs(main_usage, stdout); return 0; }
    if (!strcmp(cmd, "--version")) {
        printf("clipnn %s\n", CN_VERSION);
        if (argc > 2 && !strcmp(argv[2], "--verbose")) {
            /* what the rounding of a run depends on besides the config (also in summary.json) */
            cn_set_threads(1);
            printf("blas: %s\nblas core: %s\nblas threads: %d (a run sets its own: \"threads\", by default \"auto\": "
                   "1 or 2 by the model's size, in summary.json)\n",
                   cn_blas_config(), cn_blas_core(), cn_blas_threads());
        } else if (argc > 2) {
            return usage_error(main_usage, "unknown option '%s' after --version (only --verbose)", argv[2]);
        }
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc, argv);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc, argv);
    if (!strcmp(cmd, "report")) return cmd_report(argc, argv);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(cmd, "sample")) return cmd_sample(argc, argv);
    if (!strcmp(cmd, "probe")) return cn_cli_probe(argc, argv);
    if (!strcmp(cmd, "export")) return cmd_export(argc, argv);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc, argv);
    return usage_error(main_usage, "unknown command '%s'", cmd);
}

int main(int argc, char **argv)
{
    if (open_std_fds() != 0) return 1;   /* no /dev/null: nothing safe to open, nowhere to say so */
    return finish_stdout(run_command(argc, argv));
}
