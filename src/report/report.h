/* clipnn report: what clipping did to a set of runs, as a markdown table, a self-contained HTML page
 * with inline SVG charts (no scripts, no network), and the numbers as data (report.json, runs.csv).
 *
 * Input per run: its run directory (docs/run-files.md: summary.json, metrics.csv, eval.csv, config.json)
 * and the exit code of the training process. Runs are grouped by variant in the order of first
 * appearance; seeds of one variant are aggregated (mean ± sample std over the seeds that ran to their
 * end for the table, without the diverged or blown-up ones in the loss columns; per-step median across
 * seeds for the charts);
 * unfinished runs (interrupted, short of train.steps, or never started) are listed apart and never
 * averaged. What each variant changed is the caller's cn_report_run.settings when given (compare
 * passes its --variant/--sweep settings), else read from the runs' config.json (src/report/settings.c):
 * the settings in which its config differs from the other variants'.
 *
 * A diverged or failed run is a result, not an error: it appears in the table and the charts.
 * A run whose files are missing or unreadable is shown as "failed" with the reason. Only
 * failing to write the report itself is an error. The same run files give the same bytes. */
#ifndef CN_REPORT_H
#define CN_REPORT_H

#include <stdio.h>
#include "tensor/core.h"

typedef struct {
    const char *variant;   /* variant name, e.g. "noclip", "norm" (user text: escaped on output) */
    long long seed;
    const char *dir;       /* the run directory (holds summary.json, metrics.csv, config.json) */
    int exit_code;         /* of the training process: 0 done, 3 stopped on non-finite, 130 interrupted,
                              -1 never started, CN_REPORT_EXIT_UNKNOWN judge by the files alone,
                              other = failed (no/partial files) */
    const char *settings;  /* what the variant changed ("clip.mode=none, clip.max_norm=0.1"), or NULL: from
                              config.json (the variant's first run's value counts) */
} cn_report_run;

/* exit_code of a run whose process this program did not see (a rebuilt report, a run kept from an
 * earlier compare): its status comes from its files. */
#define CN_REPORT_EXIT_UNKNOWN (-2)

/* Reads each run's summary.json and metrics.csv; writes out_dir/report.md, report.html, report.json
 * and runs.csv (each atomically: temporary file + rename; out_dir is created if needed); writes the markdown
 * table to `table` too when non-NULL. `title` may be NULL ("clipnn compare").
 * Returns CN_ERR_ARG for bad arguments, CN_ERR_NOMEM, or CN_ERR_IO when a report file cannot be
 * written; never fails because of the runs' content. */
cn_status cn_report_write(const char *out_dir, const char *title, const cn_report_run *runs, int n_runs,
                          FILE *table);

/* The same with the report's options. */
typedef struct {
    const char *title;       /* NULL: "clipnn compare" */
    const char *baseline;    /* variant of the "paired against the baseline" section; NULL: "noclip" if a
                                run has that variant, else the first run's */
    FILE *table;             /* as cn_report_write's */
} cn_report_opts;
cn_status cn_report_write_opts(const char *out_dir, const cn_report_run *runs, int n_runs, const cn_report_opts *o);

#endif
