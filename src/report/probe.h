/* The gradient-norm probe: what threshold would clipping need on this model?
 *
 * Input: a run's metrics.csv (the columns step, grad_norm_pre and, when logged, gn_pre.<param>).
 * Output: the distribution of the pre-clip global norm, its spikes, each tensor's share of the
 * squared norm, and candidate thresholds with the share of the logged steps each would have clipped;
 * printed as a table (cn_probe_print) and written as probe.json and probe.html (cn_probe_write).
 *
 * Definitions (the README's "Choosing a threshold: the probe" explains them for users):
 * - statistics are over the rows whose grad_norm_pre and loss (when there is a loss column) are finite;
 *   the other rows are counted apart as non-finite (a non-finite loss counts as a non-finite gradient);
 * - percentiles interpolate linearly between order statistics (cn_stats_quantile_sorted);
 * - a spike is a finite norm above CN_PROBE_SPIKE_K times the median of the previous
 *   CN_PROBE_SPIKE_WINDOW finite norms (judged once at least CN_PROBE_SPIKE_MIN_HISTORY precede it);
 * - candidates: mean (Pascanu et al. 2013 set the threshold from the average norm), p50, p10 (AutoClip's
 *   default percentile), p25, p90, and "calm": the median of the finite norms logged before the first
 *   spike's step (of every finite norm when there is no spike), the model's norm before it blew up;
 * - a tensor's share is sum_t g_i(t)^2 / sum_t sum_j g_j(t)^2 over the rows where every gn_pre
 *   column is finite (the squared global L2 norm is the sum of the tensors' squared norms);
 * - a candidate threshold T "would have clipped" a step when its norm is > T (norm clipping scales
 *   a gradient exactly when its norm exceeds the threshold); the rate is over the finite rows. */
#ifndef CN_PROBE_REPORT_H
#define CN_PROBE_REPORT_H

#include <stdio.h>
#include "tensor/core.h"

#define CN_PROBE_SPIKE_K 10.0
#define CN_PROBE_SPIKE_WINDOW 100
#define CN_PROBE_SPIKE_MIN_HISTORY 10
#define CN_PROBE_MAX_SPIKES_LISTED 50
#define CN_PROBE_N_CANDIDATES 6

typedef struct {
    char *name;               /* parameter name (gn_pre.<name>) */
    double share;             /* of the summed squared norm */
    double median;            /* median of its norm over the same rows */
} cn_probe_tensor;

typedef struct {
    const char *name;         /* "mean", "p50", "p10", ... */
    const char *source;       /* where the rule comes from */
    double value;
    double clip_rate;         /* share of finite rows with norm > value */
} cn_probe_candidate;

typedef struct {
    long long step;
    double norm, ratio;       /* norm / running median */
} cn_probe_spike;

typedef struct {
    char source[4200];        /* the metrics.csv read */
    long long rows, finite, nonfinite;
    long long first_nonfinite_step;   /* 0 if none */
    double mean, median, min, max, p10, p25, p75, p90, p99;
    long long n_spikes;
    cn_probe_spike spikes[CN_PROBE_MAX_SPIKES_LISTED];   /* the first ones */
    int n_tensors;
    long long tensor_rows;    /* rows used for the shares */
    cn_probe_tensor *tensors;
    cn_probe_candidate cand[CN_PROBE_N_CANDIDATES];
    double *step, *norm;      /* every row, in file order (charts) */
} cn_probe;

/* Reads dir/metrics.csv and computes everything. CN_ERR_ARG, with the file and the line, when the
 * file is missing or malformed, has no grad_norm_pre column, or no finite norm; CN_ERR_NOMEM. */
cn_status cn_probe_analyze(const char *run_dir, cn_probe *p);
void cn_probe_free(cn_probe *p);

/* The readable table (distribution, candidates, tensors, spikes). */
void cn_probe_print(const cn_probe *p, FILE *f);

/* out_dir/probe.json and out_dir/probe.html (self-contained: inline CSS and SVG, no script), each
 * written atomically; out_dir is created if needed. `title` names the model (may be NULL). */
cn_status cn_probe_write(const cn_probe *p, const char *out_dir, const char *title);

#endif
