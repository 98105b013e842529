/* The trainer: config -> data -> model -> loss -> backward -> clip -> optimizer -> logs.
 *
 * One optimizer step (cn_trainer_step):
 *   zero grads; for each of grad_accum micro-batches: forward, loss, backward
 *   (gradients summed); divide by grad_accum (the clip stage sees the MEAN
 *   gradient); cn_clip_run (statistics, non-finite policy, modes, report);
 *   optimizer step at the scheduled lr unless the stage said skip or stop;
 *   a row of metrics.csv.
 * Everything is validated in cn_trainer_open before the run directory is
 * created, so a bad config never leaves a half-made run behind. */
#ifndef CN_TRAINER_H
#define CN_TRAINER_H

#include <signal.h>
#include <stdio.h>

#include "autograd/autograd.h"
#include "clip/clip.h"
#include "config/config.h"
#include "data/data.h"
#include "layers/layers.h"
#include "optim/optim.h"

typedef struct {
    const char *config_path;
    const char *out_dir;        /* NULL: runs/<name>-<timestamp> (or the checkpoint's run when resuming) */
    const char *resume;         /* checkpoint to continue from, or NULL */
    char *const *sets;          /* PATH=VALUE overrides */
    int n_sets;
    FILE *progress;             /* NULL: silent */
    int progress_tty;           /* 1: one updating line (\r); 0: periodic plain lines */
    volatile sig_atomic_t *stop_flag;   /* set by a signal handler: end cleanly after this step */
} cn_train_opts;

typedef struct {
    int diverged;               /* a non-finite loss or gradient was seen */
    long long diverged_at_step; /* first such step, 0 if none */
    int stopped;                /* the run ended early (on_nonfinite stop or a signal) */
    int interrupted;            /* ended by the stop flag */
    int already_done;           /* --resume of a run already at train.steps: nothing was done */
    long long steps;            /* optimizer steps done (skipped ones and the one that stopped included) */
    char stop_reason[160];      /* why a stopped run stopped */
    char out_dir[4096];
} cn_train_result;

/* Trains as configured. Returns CN_OK when the run completed or stopped on a
 * non-finite value (see result->stopped); an error status (message in
 * cn_errmsg()) for bad input or I/O failures. The run directory must take a new
 * run (cn_run_dir_check_new) unless the run resumes in its checkpoint's own
 * directory; it is locked (DIR/.lock) from before the first write to the last. */
cn_status cn_train(const cn_train_opts *o, cn_train_result *result);

/* Whether `dir` may take a new run: it does not exist, or holds nothing but `.lock` (an ended run's
 * lock) and `train.log`. Otherwise CN_ERR_ARG naming what is there ("DIR already holds a run (...)"
 * or "DIR is not empty (...)"); CN_ERR_ARG too for a non-directory, CN_ERR_IO if it cannot be read.
 * cn_train checks this (and holds DIR/.lock for the whole run: a second writer gets "DIR: run in use
 * by pid N"); a run resumed in its own checkpoint's directory is the one exception. */
cn_status cn_run_dir_check_new(const char *dir);

/* Evaluation of a checkpoint on the config's test set (train set if none). */
cn_status cn_evaluate(const char *config_path, char *const *sets, int n_sets, const char *checkpoint,
                      double *loss, double *metric, const char **metric_name, int *n_examples);

/* Character-level sampling from a text model's checkpoint into out (length bytes). */
cn_status cn_sample_text(const char *config_path, char *const *sets, int n_sets, const char *checkpoint,
                         int length, double temperature, uint64_t seed, const char *prime, FILE *out);

#endif
