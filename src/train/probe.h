/* clipnn probe: train a model briefly without clipping, or read a run, and measure its gradient
 * norms (the figures are src/report/probe.h's). */
#ifndef CN_PROBE_TRAIN_H
#define CN_PROBE_TRAIN_H

#include <signal.h>
#include <stdio.h>

#include "report/probe.h"

/* The default probe length: one epoch of the training set (ceil(train size / (batch_size x
 * grad_accum)) optimizer steps), at most this many. */
#define CN_PROBE_DEFAULT_MAX_STEPS 1000

typedef struct {
    const char *config_path;    /* train a probe from this config ... */
    const char *run_dir;        /* ... or read this run's metrics.csv (config_path NULL) */
    const char *out_dir;        /* NULL: runs/<name>-probe-<timestamp> when training, run_dir when reading */
    long long steps;            /* 0: the default above */
    char *const *sets;          /* PATH=VALUE overrides applied before the probe's own */
    int n_sets;
    FILE *progress;             /* NULL: silent */
    int progress_tty;
    volatile sig_atomic_t *stop_flag;
} cn_probe_opts;

typedef struct {
    char out_dir[4096];
    char name[256];             /* the model's name (config name, or the run's directory) */
    long long steps;            /* steps trained (0 when reading a run) */
    int interrupted;            /* the probe's training was stopped by the stop flag */
} cn_probe_result;

/* Training mode runs `clipnn train` on the config with clip.mode none, on_nonfinite skip (with no
 * consecutive-skip limit within the probe), per-tensor logging, a row every step, no evaluation
 * before the end and no intermediate checkpoint, into out_dir (refused when it already holds a run);
 * then analyses out_dir/metrics.csv and writes probe.json and probe.html there. Reading mode
 * analyses run_dir/metrics.csv and writes the two files into out_dir (default run_dir; another
 * directory must be new or empty, as for train). On success *p holds the figures
 * (cn_probe_free it). */
cn_status cn_probe_run(const cn_probe_opts *o, cn_probe *p, cn_probe_result *r);

#endif
