/* clipnn compare: one config under several variants (and seeds), each trained in its own run
 * directory, then a report (src/report).
 *
 * The library plans and records; it starts no process and prints nothing. A program runs the plan's
 * runs however it likes (the clipnn command line: one `clipnn train` process per run, see
 * src/cli/compare_pool.c), fills in each run's exit code, and asks for the report:
 *
 *     cn_compare_plan p;
 *     st = cn_compare_plan_make(&opts, &p);    // validates every run's config; writes nothing
 *     st = cn_compare_prepare(&p);             // run directories and DIR/compare.json
 *     for each p.runs[i] with action != CN_RUN_KEEP: run `clipnn` with p.runs[i].args; set exit_code
 *     st = cn_compare_report(&p, table);       // report.md/.html/.json and runs.csv over every run
 *     cn_compare_plan_free(&p);
 *
 * DIR/compare.json records the base config (resolved, with the base --set overrides), the variants
 * and the runs, so that a later compare into DIR adds only what is missing (new variants, new seeds,
 * unfinished runs, resumed from their checkpoints) and `clipnn report DIR` rebuilds the report. */
#ifndef CN_COMPARE_H
#define CN_COMPARE_H

#include <stdio.h>
#include <cJSON.h>
#include "tensor/core.h"

/* The most runs (variants x seeds, in all) one compare folder may hold. */
#define CN_COMPARE_MAX_RUNS 256

typedef struct {
    const char *config_path;
    const char *out_dir;             /* NULL: runs/<name>-compare-<timestamp> */
    char *const *variants;           /* "NAME:PATH=VALUE[,PATH=VALUE...]" */
    int n_variants;
    char *const *sweeps;             /* "PATH=V1,V2,..." (a grid of variants); with variants: after them */
    int n_sweeps;
    int seeds;                       /* >= 1: seeds seed .. seed+seeds-1 */
    char *const *sets;               /* overrides applied to every variant first */
    int n_sets;
    const char *baseline;            /* the report's paired baseline (a variant's name); NULL: noclip if
                                        there is one, else the first variant */
} cn_compare_opts;

typedef struct {
    char name[64];
    char **sets;                     /* PATH=VALUE strings */
    int n_sets;
    long long seed;                  /* first seed: the resolved config's (a variant may set it) */
} cn_variant;

/* Parses "NAME:PATH=VALUE[,PATH=VALUE...]". Commas inside [], {} or quotes, or
 * not followed by PATH=, stay in the value (optimizer.betas=[0.9,0.99]). */
cn_status cn_variant_parse(const char *spec, cn_variant *out);
void cn_variant_free(cn_variant *v);

/* Expands --sweep specs "PATH=V1,V2,..." into their cartesian grid, the first spec varying slowest,
 * each point a variant named "<key>=<value>[+<key>=<value>...]" (key: the path's last component, or
 * the whole path when two swept paths share it; value: as written, a JSON string without its quotes,
 * every character other than letters, digits, '.', '_' and '-' turned into '_'). Values are JSON as
 * for --set and may hold commas inside [], {} or quotes. A grid of more than CN_COMPARE_MAX_RUNS points,
 * an empty value, two values with the same name, or a name over 63 characters is CN_ERR_ARG. */
cn_status cn_sweep_expand(char *const *sweeps, int n_sweeps, cn_variant **out, int *n_out);

typedef enum {
    CN_RUN_NEW,                      /* train from scratch into dir */
    CN_RUN_RESUME,                   /* an unfinished run: continue from dir/checkpoint.safetensors */
    CN_RUN_KEEP                      /* already there (finished, diverged or failed): only reported */
} cn_compare_action;

typedef struct {
    int variant;                     /* index into plan.variants */
    long long seed;
    char dir[4400];                  /* plan.dir/<variant>[-s<seed>] */
    cn_compare_action action;
    char **args;                     /* the `clipnn` arguments that do it ("train", CONFIG, ...; NULL-ended) */
    int n_args;
    char *seedset, *ckpt;            /* owned strings that args points to */
    char log[4500];                  /* dir/train.log: where the run's stderr belongs (appended on resume) */
    int exit_code;                   /* set by the runner: -1 not run (the initial value) */
} cn_compare_run;

typedef struct {
    char dir[4096];
    char name[256];                  /* the config's name */
    cn_variant *variants;            /* every variant of the folder: the earlier ones first */
    int n_variants;
    cn_compare_run *runs;            /* by variant, then seed */
    int n_runs;
    int n_todo;                      /* runs whose action is not KEEP */
    int extending;                   /* dir held an earlier compare */
    cJSON *base;                     /* the resolved base config (without "compare") */
    char **base_sets;                /* the overrides every run gets first (with the per-tensor default) */
    int n_base_sets;
    char *config_path;
    char *baseline;                  /* opts.baseline (checked to be a variant), or NULL */
} cn_compare_plan;

/* Plans a compare: parses the variants (--variant, --sweep, else the config's compare.variants, else
 * noclip against the config), validates the config of every run (each variant with each of its
 * seeds), and, when out_dir holds a compare.json, merges with it: the base config must be the same
 * (else CN_ERR_ARG naming the first differing path), a variant already there must have the same
 * settings, and runs already there are kept (or resumed when unfinished); a baseline must name one of
 * the variants. Writes nothing. */
cn_status cn_compare_plan_make(const cn_compare_opts *o, cn_compare_plan *p);
/* Creates the run directories and writes DIR/compare.json (atomically). */
cn_status cn_compare_prepare(const cn_compare_plan *p);
/* Writes the report over every run of the plan (KEEP runs judged by their files); the markdown table
 * to `table` too when non-NULL. */
cn_status cn_compare_report(const cn_compare_plan *p, FILE *table);
void cn_compare_plan_free(cn_compare_plan *p);

/* `clipnn report`: rebuilds report.md/.html/.json and runs.csv into out_dir (NULL: the only directory
 * given) from dirs: compare folders (their compare.json), single run directories (a variant named after
 * the directory; "<variant>-s<seed>" with the run's own seed is a seed of <variant>), or directories
 * whose subdirectories are such runs. A compare folder alone gives the same files as cn_compare_report. */
cn_status cn_compare_rebuild(char *const *dirs, int n_dirs, const char *out_dir, FILE *table);
/* The same with the paired section's baseline (a variant's name, else CN_ERR_ARG; NULL: the default). */
cn_status cn_compare_rebuild_baseline(char *const *dirs, int n_dirs, const char *out_dir, const char *baseline,
                                      FILE *table);

#endif
