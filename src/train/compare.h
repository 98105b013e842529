/* clipnn compare: one config under several variants (and seeds), each trained
 * in its own process and run directory, then a report (src/report). */
#ifndef CN_COMPARE_H
#define CN_COMPARE_H

#include <signal.h>
#include <stdio.h>
#include "tensor/core.h"

typedef struct {
    const char *config_path;
    const char *out_dir;             /* NULL: runs/<name>-compare-<timestamp> */
    char *const *variants;           /* "NAME:PATH=VALUE[,PATH=VALUE...]"; none: the config's or the default */
    int n_variants;
    int seeds;                       /* >= 1: seeds seed .. seed+seeds-1 */
    char *const *sets;               /* overrides applied to every variant first */
    int n_sets;
    const char *self;                /* argv[0]: how to start `clipnn train` */
    FILE *progress;                  /* NULL: silent */
    volatile sig_atomic_t *stop_flag;
    const char *baseline;            /* the report's paired baseline; NULL: noclip if present, else the first */
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

cn_status cn_compare(const cn_compare_opts *o);

#endif
