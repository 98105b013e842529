/* Internals of src/report: a growable text buffer with escaping, the run loader, the SVG chart writer. */
#ifndef CN_REPORT_INTERNAL_H
#define CN_REPORT_INTERNAL_H

#include <stddef.h>
#include <cJSON.h>
#include "report/report.h"

/* ---- text buffer (text.c) ---- */

/* Append-only text. An allocation failure sets `oom` and turns later appends into no-ops, so
 * writers need not check every call; the owner checks `oom` once at the end. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} cn_report_buf;

void cn_report_buf_free(cn_report_buf *b);
void cn_report_puts(cn_report_buf *b, const char *s);
void cn_report_printf(cn_report_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Text escaped for HTML/XML content and attribute values (& < > " '); control characters,
 * which XML forbids, become '?'. */
void cn_report_html(cn_report_buf *b, const char *s);
/* Text escaped for a markdown table cell: | \ ` * _ [ ] < > & get a backslash, newlines a space. */
void cn_report_md(cn_report_buf *b, const char *s);

/* ---- one run, loaded (load.c) ---- */

/* One CSV field [s, e) as a double ("nan", "inf", "-inf" allowed; a trailing '\r' ignored); 0 if it is
 * not a whole number. */
int cn_report_parse_field(const char *s, const char *e, double *out);

/* A number from summary.json: absent (key missing, or a test value of a run that never evaluated),
 * or present with a value that may be non-finite (JSON null or "inf" for a non-finite result). */
typedef struct {
    int present;
    double v;
} cn_report_val;

/* metrics.csv columns read by name, then the derived effective scale (grad_norm_post / grad_norm_pre). */
enum { CN_RC_STEP, CN_RC_LOSS, CN_RC_GN, CN_RC_COEF, CN_RC_THR, CN_RC_POST, CN_RC_NREAD,
       CN_RC_SCALE = CN_RC_NREAD, CN_RC_NCOLS };

/* "Blew up": a finite training loss above CN_REPORT_BLOWUP_FACTOR x the run's early level, the median
 * of its first CN_REPORT_EARLY_ROWS logged finite losses (a diverged run is "diverged" instead). */
#define CN_REPORT_BLOWUP_FACTOR 100.0
#define CN_REPORT_EARLY_ROWS 10

/* What became of a run (load.c decides from its files; see cn_report_load). */
typedef enum {
    CN_RUN_FINISHED,             /* reached train.steps without a non-finite value */
    CN_RUN_DIVERGED,             /* met a non-finite loss or gradient (stopped there, or went on) */
    CN_RUN_INTERRUPTED,          /* stopped by a signal (or killed) before train.steps: unfinished */
    CN_RUN_FAILED,               /* no usable files, or the training process failed */
    CN_RUN_NOT_RUN               /* never started (its compare was interrupted first): no files */
} cn_run_status;

typedef struct {
    const cn_report_run *in;
    int failed;                  /* training failed, or its files are missing/unreadable */
    char reason[600];            /* why, when failed (or how an interrupted run without a summary ended) */
    cn_run_status status;        /* what became of the run: the one source for finished/interrupted/... */
    int have_summary;
    long long steps;
    long long planned_steps;     /* config.json train.steps (0 if unknown) */
    cn_report_val final_loss, test_loss, test_metric, clip_frac, max_gn, steps_per_s;
    char metric_name[64];
    int diverged;
    long long diverged_at;       /* 0 if none */
    int interrupted;             /* summary.json says a signal ended it (older summaries: stopped_early) */
    int draw_threshold;          /* clip_threshold is a global-norm threshold (config's clip modes) */
    /* see CN_REPORT_BLOWUP_FACTOR: blew_up_at is the first logged step above the limit (0: none),
       blew_up_peak the largest such loss (NAN: none); early_loss is NAN when under
       CN_REPORT_EARLY_ROWS finite losses were logged */
    int blew_up;
    long long blew_up_at;
    double early_loss, blew_up_peak;
    void *config;                /* config.json (a cJSON object) or NULL: the variant's settings */
    /* metrics.csv: n rows of step, loss, grad_norm_pre, clip_coef, clip_threshold, grad_norm_post and
       the derived scale (NAN = gap) */
    long long n;
    double *col[CN_RC_NCOLS];
    /* per-tensor pre-clip norms (metrics.csv gn_pre.<name> columns, log.per_tensor): n_tensors columns of
       n rows, NAN = gap; tensor_name without the "gn_pre." prefix */
    int n_tensors;
    char **tensor_name;
    double **tensor_col;
    /* eval.csv: n_eval rows of step, test_loss */
    long long n_eval;
    double *eval_step, *eval_loss;
} cn_report_rundata;

/* Loads what can be loaded; sets failed/reason for missing or malformed files. Only an allocation
 * failure is an error. */
cn_status cn_report_load(const cn_report_run *in, cn_report_rundata *out);
void cn_report_rundata_free(cn_report_rundata *r);
/* "finished", "diverged", "interrupted", "failed", "not run" */
const char *cn_report_status_name(cn_run_status s);

/* ---- aggregates, report.json and runs.csv (data.c) ---- */

/* Whether a run's value enters a variant's mean: only runs that ran to their end (finished or
 * diverged: an interrupted run is unfinished, a failed one has no numbers); for the loss columns
 * (loss_like) only runs that neither diverged nor blew up, whose losses would swamp the others. */
int cn_report_counts(const cn_report_rundata *d, int loss_like);

/* Mean and sample standard deviation (n-1) of a value over the counted runs idx[0..n) of rd. */
typedef struct {
    int present;                 /* counted runs that have the value */
    int finite;                  /* of which finite */
    int all_inf;                 /* every non-finite one is +inf */
    double mean, sd;             /* over the finite ones (sd NAN below 2) */
    double min, max;
} cn_report_agg;
void cn_report_aggregate(const cn_report_rundata *rd, const int *idx, int n, size_t field, int loss_like,
                         cn_report_agg *out);

/* report.json (every number of the tables, per variant and per run) and runs.csv (one row per run)
 * into out_dir, atomically. groups: n_groups variants, each its name, its settings (the table's
 * "settings" text) and the indices of its runs. */
cn_status cn_report_write_data(const char *out_dir, const char *title, const cn_report_rundata *rd, int n_runs,
                               const char *const *group_names, const char *const *group_settings,
                               const int *const *group_runs, const int *group_n, int n_groups, const char *baseline);

/* ---- variant settings (settings.c) ---- */

/* For n configs (cJSON objects from config.json, or NULL when unread), out[i] = the settings in which
 * config i differs from the others, "path=value, ..." ("" when none, "?" when unread); the caller
 * frees each with cn_free. */
cn_status cn_report_settings(void *const *configs, int n, char **out);
/* The same, leaving out the setting at path `except` (NULL: none). */
cn_status cn_report_settings_except(void *const *configs, int n, const char *except, char **out);

/* A config flattened to its leaves, depth-first in the config's key order, lists of objects (model
 * layers, clip stages) by index: path "clip.max_norm", value "0.1" (numbers as %.6g; is_num and num
 * keep a number's value). On allocation failure `oom` is set and the list is partial. */
typedef struct {
    char *path, *value;
    int is_num;
    double num;
} cn_report_leaf;
typedef struct {
    cn_report_leaf *v;
    int n, cap;
    int oom;
} cn_report_leaves;
void cn_report_flatten(cn_report_leaves *l, const void *config);
void cn_report_leaves_free(cn_report_leaves *l);
const cn_report_leaf *cn_report_leaf_find(const cn_report_leaves *l, const char *path);

/* ---- SVG charts (svg.c) ---- */

/* A polyline in data coordinates; a non-finite y is a gap. */
typedef struct {
    double *x, *y;
    long long n;
    long long seed;              /* of a seed line (data-seed attribute) */
    int diverged;                /* drawn from a diverged or blown-up run (a median: some of its seeds did);
                                    its values do not set the top of a log axis */
} cn_report_line;

typedef struct {
    double x, y;                 /* data coordinates of the last finite value before divergence */
    long long seed;
    long long step;              /* diverged_at_step */
    int multi_seed;              /* label names the seed */
    int quiet;                   /* the x alone, no label (the legend says what it means) */
} cn_report_mark;

typedef struct {
    const char *variant;
    const char *legend_note;     /* e.g. "1 failed", or NULL */
    const char *colour;
    cn_report_line *seeds;       /* thin translucent lines (one per seed) */
    int n_seeds;
    cn_report_line bold;         /* the median across seeds (or the only seed); n = 0: none */
    cn_report_line dashed;       /* the clip threshold; n = 0: none */
    cn_report_mark *marks;
    int n_marks;
    cn_report_line points;       /* single values drawn as dots (a sweep's seeds); n = 0: none */
    const unsigned char *hollow; /* NULL, or per point: 1 = an open circle (a run that blew up) */
} cn_report_series;

typedef struct {
    const char *id;              /* unique in the page (clipPath ids) */
    const char *title, *xlabel, *ylabel;
    int log_y;                   /* 1: log10 axis, ticks at powers of 10; values <= 0 are gaps */
    double y_min, y_max;         /* linear axis range (log axes fit the data) */
    double x_max;                /* the step at the right edge: the last step of any run (the downsampled x
                                    may stop short of it), or the end of the early-steps window */
    /* x axis: 0 optimizer steps (from 0, integer ticks), 1 log10 fitted to the data (positive x only),
       2 linear fitted to the data */
    int x_kind;
    /* legend keys: NULL for the defaults ("thin: seeds, bold: median", "clip threshold", "divergence");
       key_solid: an extra key for a plain line, when not NULL */
    const char *key_seeds, *key_dashed, *key_marks, *key_solid;
} cn_report_chart;

void cn_report_svg(cn_report_buf *b, const cn_report_chart *c, const cn_report_series *s, int n);

/* ---- the "paired against the baseline" section (paired.c) ---- */

/* baseline NULL: "noclip" if a run has that variant, else the first run's variant. Nothing is
 * written when the runs hold fewer than two variants. */
void cn_report_paired_md(cn_report_buf *b, const cn_report_rundata *rd, int n, const char *baseline);
void cn_report_paired_html(cn_report_buf *b, const cn_report_rundata *rd, int n, const char *baseline);
/* The same numbers for report.json ("paired"): JSON null when there is no section; NULL and *oom set when
 * memory ran out. */
cJSON *cn_report_paired_json(const cn_report_rundata *rd, int n, const char *baseline, int *oom);

/* ---- the sweep section (sweep.c) ---- */

/* A setting swept over three or more values by variants that agree on everything else: its loss,
 * divergence rate and clip rate against the value. Nothing is written when the runs hold no sweep. */
void cn_report_sweep_md(cn_report_buf *b, const cn_report_rundata *rd, int n, const char *baseline);
void cn_report_sweep_html(cn_report_buf *b, const cn_report_rundata *rd, int n, const char *baseline);
/* report.json's "sweeps": an array (empty without a sweep); NULL and *oom set when memory ran out. */
cJSON *cn_report_sweep_json(const cn_report_rundata *rd, int n, const char *baseline, int *oom);

/* A tensor x step heatmap of one variant: rows x cols cells, row-major. state 0: no logged step in
 * the cell, 1: value (log10 colour scale from decade lo to hi, clamped), 2: not finite. */
typedef struct {
    const char *id, *title, *colour;   /* colour: the variant's, for the title swatch */
    int rows, cols;
    char *const *row_names;
    const double *v;
    const unsigned char *state;
    int lo, hi;
    double x_max;                      /* the step at the right edge */
} cn_report_heatmap;

void cn_report_svg_heatmap(cn_report_buf *b, const cn_report_heatmap *h);

#endif
