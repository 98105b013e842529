/* clipnn probe: the command line of the gradient-norm probe (src/train/probe.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipnn.h"
#include "train/probe.h"

int cn_cli_probe(int argc, char **argv);

static volatile sig_atomic_t probe_stop;
static void on_signal(int sig) { (void)sig; probe_stop = 1; }

static const char *const probe_usage =
    "usage: clipnn probe CONFIG.json [--steps N] [--out DIR] [--set PATH=VALUE]... [--quiet]\n"
    "       clipnn probe --run RUN_DIR [--out DIR]\n"
    "\n"
    "Measures the gradient norms of a model to choose a clip threshold. With CONFIG.json it trains N steps\n"
    "(default: one epoch of the training set, at most 1000) with clipping off, non-finite steps skipped\n"
    "instead of stopping the run, and per-tensor norms logged, into DIR (default runs/<name>-probe-<timestamp>);\n"
    "with --run it reads an existing run's metrics.csv (output into RUN_DIR unless --out). It prints the\n"
    "distribution of the pre-clip global norm, its spikes, each tensor's share, and candidate thresholds\n"
    "(Pascanu et al.'s mean norm, the median, AutoClip-style percentiles) with the share of the probe's\n"
    "steps each would have clipped, and writes probe.json and probe.html.\n"
    "Exit: 0 done, 2 bad config/data/usage or nothing to probe, 1 I/O error, 130 interrupted.\n"
    "\n"
    "examples:\n"
    "  clipnn probe examples/rnn_adding_explode.json --out runs/adding-probe\n"
    "  clipnn probe --run runs/demo-explode/norm-s1\n";

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "clipnn: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", probe_usage);
    return 2;
}

int cn_cli_probe(int argc, char **argv)
{
    const char *config = NULL, *run = NULL, *out = NULL;
    long long steps = 0;
    int quiet = 0, n_sets = 0, rc = 0;
    char **sets = calloc((size_t)argc, sizeof *sets);
    if (!sets) return usage("%s", "out of memory");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(probe_usage, stdout); free(sets); return 0; }
        if (a[0] != '-') {
            if (config) { rc = usage("unexpected argument '%s'", a); goto done; }
            config = a;
            continue;
        }
        if (!strcmp(a, "--quiet")) { quiet = 1; continue; }
        if (strcmp(a, "--steps") && strcmp(a, "--out") && strcmp(a, "--set") && strcmp(a, "--run")) {
            rc = usage("unknown option '%s'", a);
            goto done;
        }
        if (i + 1 >= argc) { rc = usage("option '%s' needs a value", a); goto done; }
        const char *v = argv[++i];
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--run")) run = v;
        else if (!strcmp(a, "--set")) sets[n_sets++] = (char *)v;
        else {
            char *end;
            double d = strtod(v, &end);
            if (!*v || *end || !(d >= 1 && d <= 1e9) || d != (double)(long long)d) {
                rc = usage("--steps: expected an integer in 1..1000000000, got '%s'", v);
                goto done;
            }
            steps = (long long)d;
        }
    }
    if (config && run) { rc = usage("%s", "give CONFIG.json or --run RUN_DIR, not both"); goto done; }
    if (!config && !run) { rc = usage("%s", "missing CONFIG.json (or --run RUN_DIR)"); goto done; }
    if (run && (steps || n_sets)) { rc = usage("%s", "--steps and --set apply to a probe that trains, not to --run"); goto done; }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;   /* a second Ctrl-C ends the program at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    cn_probe_opts o = {config, run, out, steps, sets, n_sets, quiet ? NULL : stderr, !quiet && isatty(STDERR_FILENO),
                       &probe_stop};
    cn_probe p;
    cn_probe_result r;
    cn_status st = cn_probe_run(&o, &p, &r);
    if (st) {
        fprintf(stderr, "clipnn: error: %s\n", cn_errmsg());
        rc = st == CN_ERR_ARG || st == CN_ERR_SHAPE || st == CN_ERR_FORMAT ? 2 : 1;
        goto done;
    }
    cn_probe_print(&p, stdout);
    if (config) {
        /* the next step: the candidates side by side, over seeds, with the paired statistics */
        printf("\nnext: clipnn compare %s --seeds 5", config);
        for (int i = 0; i < n_sets; i++) printf(" --set '%s'", sets[i]);
        printf(" --variant noclip:clip.mode=none");
        static const int pick[] = {5, 1, 4, 0};   /* calm, p50, p90, mean */
        for (int i = 0; i < 4; i++) {
            const cn_probe_candidate *c = &p.cand[pick[i]];
            int dup = 0;   /* calm is the median when nothing spiked */
            for (int k = 0; k < i; k++) dup |= p.cand[pick[k]].value == c->value;
            if (c->value > 0 && !dup) printf(" --variant '%s:clip.mode=norm,clip.max_norm=%.4g'", c->name, c->value);
        }
        printf("\n");
    }
    cn_probe_free(&p);   /* stdout is checked by main() when the command returns */
    if (!quiet) {
        if (r.interrupted) fprintf(stderr, "clipnn: probe interrupted at step %lld; figures from the steps done, in %s\n",
                                   r.steps, r.out_dir);
        else fprintf(stderr, "clipnn: probe written to %s/probe.json and %s/probe.html\n", r.out_dir, r.out_dir);
    }
    rc = r.interrupted ? 130 : 0;
done:
    free(sets);
    return rc;
}
