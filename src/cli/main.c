/* clipnn command-line program: train, compare, eval, sample.
 * Exit codes (SPEC §2): 0 done; 3 the run stopped on a non-finite loss or
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
#include "train/compare.h"
#include "train/trainer.h"

int cn_cli_probe(int argc, char **argv);   /* cli/probe.c */

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static const char *const main_usage =
    "clipnn " CN_VERSION " - train small neural networks and see what gradient clipping does\n"
    "\n"
    "usage: clipnn COMMAND [ARGS]\n"
    "  train   CONFIG.json [--out DIR] [--set PATH=VALUE]... [--resume CHECKPOINT] [--quiet]\n"
    "  compare CONFIG.json [--variant NAME:PATH=VALUE[,PATH=VALUE...]]... [--seeds N] [--out DIR]\n"
    "  eval    CONFIG.json --checkpoint FILE\n"
    "  sample  CONFIG.json --checkpoint FILE [--length N] [--temperature T]\n"
    "  probe   CONFIG.json [--steps N] [--out DIR] | probe --run RUN_DIR   (choose a clip threshold)\n"
    "  clipnn --help | --version ; clipnn COMMAND --help\n"
    "\n"
    "example:\n"
    "  clipnn compare examples/rnn_adding_explode.json --seeds 3 --out runs/explode\n";

static const char *const train_usage =
    "usage: clipnn train CONFIG.json [--out DIR] [--set PATH=VALUE]... [--resume CHECKPOINT] [--quiet]\n"
    "\n"
    "Trains the model described by CONFIG.json and writes config.json, metrics.csv, eval.csv,\n"
    "summary.json and checkpoint.safetensors into DIR (default runs/<name>-<timestamp>), which must be\n"
    "new or empty; one run writes into a directory at a time.\n"
    "  --set PATH=VALUE   override a config value; VALUE is JSON, a bare word is a string\n"
    "                     (e.g. --set clip.max_norm=0.5 --set optimizer.lr=1e-3 --set model.0.hidden=64)\n"
    "  --resume FILE      continue from a checkpoint (bit-identical to an uninterrupted run);\n"
    "                     without --out the run continues in the checkpoint's directory\n"
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
    "usage: clipnn compare CONFIG.json [--variant NAME:PATH=VALUE[,PATH=VALUE...]]... [--seeds N] [--out DIR]\n"
    "                      [--set PATH=VALUE]... [--baseline NAME] [--quiet]\n"
    "\n"
    "Trains CONFIG.json once per variant (and per seed with --seeds N: seeds seed .. seed+N-1), each into\n"
    "DIR/<variant>[-s<seed>]/, two runs at a time, then writes DIR/report.md (a table) and DIR/report.html\n"
    "(charts of loss, gradient norm and clip coefficient per variant). Without --variant it uses the config's\n"
    "\"compare\": {\"variants\": {NAME: {PATH: VALUE}}}, or else compares the config as written (\"config\")\n"
    "against \"noclip\" (clip.mode=none). Setting a \"mode\" starts that clip object afresh, keeping\n"
    "on_nonfinite, so noclip:clip.mode=none works whatever the config's clip mode.\n"
    "The report compares each variant with a baseline seed by seed (--baseline NAME; default noclip if there\n"
    "is one, else the first variant): wins/losses, paired differences of the test loss with a bootstrap\n"
    "interval, Wilcoxon signed-rank and sign tests, and Fisher's exact test on the divergences.\n"
    "Exit: 0 when every run ran (whatever each one's outcome), 2 bad config/variant, 1 I/O error.\n"
    "\n"
    "examples:\n"
    "  clipnn compare examples/rnn_adding_explode.json --seeds 3 --out runs/explode\n"
    "  clipnn compare cfg.json --variant noclip:clip.mode=none --variant 'tight:clip.mode=norm,clip.max_norm=0.1'\n";

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

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* Options common to the commands. */
typedef struct {
    const char *config, *out, *resume, *checkpoint, *prime;
    char **sets;
    int n_sets, quiet, seeds, length;
    double temperature;
    unsigned long long seed;
    char **variants;
    int n_variants;
    const char *baseline;   /* compare --baseline */
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
    if (!a->sets || !a->variants) return usage_error(usage, "%s", "out of memory");
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
        if (i + 1 >= argc) return usage_error(usage, "option '%s' needs a value", o);
        const char *v = argv[++i];
        double num;
        if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--set")) a->sets[a->n_sets++] = (char *)v;
        else if (!strcmp(o, "--resume")) a->resume = v;
        else if (!strcmp(o, "--checkpoint")) a->checkpoint = v;
        else if (!strcmp(o, "--variant")) a->variants[a->n_variants++] = (char *)v;
        else if (!strcmp(o, "--prime")) a->prime = v;
        else if (!strcmp(o, "--baseline")) a->baseline = v;
        else if (!parse_num(v, &num)) return usage_error(usage, "option needs a number, got '%s'", v);
        else if (!strcmp(o, "--seeds")) {
            if (num < 1 || num > 1000 || num != (int)num) return usage_error(usage, "--seeds: expected an integer in 1..1000, got '%s'", v);
            a->seeds = (int)num;
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
    if (!a->config) return usage_error(usage, "%s", "missing CONFIG.json");
    return -1;
}

static void free_args(cli_args *a)
{
    free(a->sets);
    free(a->variants);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;   /* a second Ctrl-C ends the program at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int cmd_train(int argc, char **argv)
{
    cli_args a;
    int rc = parse_args(argc, argv, train_usage, " --out --set --resume --quiet ", &a);
    if (rc >= 0) { free_args(&a); return rc; }
    install_signals();
    cn_train_opts o = {a.config, a.out, a.resume, a.sets, a.n_sets, a.quiet ? NULL : stderr,
                       !a.quiet && isatty(STDERR_FILENO), &stop_requested};
    cn_train_result r;
    cn_status st = cn_train(&o, &r);
    free_args(&a);
    if (st) return fail(st);
    if (!a.quiet || r.stopped) {
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

static int cmd_compare(int argc, char **argv)
{
    cli_args a;
    int rc = parse_args(argc, argv, compare_usage, " --variant --seeds --out --set --quiet --baseline ", &a);
    if (rc >= 0) { free_args(&a); return rc; }
    install_signals();
    cn_compare_opts o = {a.config, a.out, a.variants, a.n_variants, a.seeds ? a.seeds : 1, a.sets, a.n_sets,
                         argv[0], a.quiet ? NULL : stderr, &stop_requested, a.baseline};
    cn_status st = cn_compare(&o);
    free_args(&a);
    if (st) return fail(st);
    return stop_requested ? 130 : 0;
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
    if (!strcmp(cmd, "--version")) { printf("clipnn %s\n", CN_VERSION); return 0; }
    if (!strcmp(cmd, "train")) return cmd_train(argc, argv);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc, argv);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(cmd, "sample")) return cmd_sample(argc, argv);
    if (!strcmp(cmd, "probe")) return cn_cli_probe(argc, argv);
    return usage_error(main_usage, "unknown command '%s'", cmd);
}

int main(int argc, char **argv)
{
    if (open_std_fds() != 0) return 1;   /* no /dev/null: nothing safe to open, nowhere to say so */
    return finish_stdout(run_command(argc, argv));
}
