/* The run configuration: a JSON file, --set overrides, and the top-level keys.
 * Sections (data, model, optimizer, schedule, clip) are validated by their own
 * modules; every parser fills defaults into the same cJSON tree, which is then
 * the resolved config written to the run's config.json. */
#ifndef CN_CONFIG_H
#define CN_CONFIG_H

/* Largest train.steps (and log_every, eval_every, checkpoint_every): beyond any run, below LLONG_MAX. */
#define CN_MAX_STEPS ((long long)9e18)

#include <cJSON.h>
#include "tensor/core.h"

typedef struct {
    long long steps, batch_size, grad_accum, bptt, log_every, eval_every, checkpoint_every;
} cn_train_config;

typedef struct {
    cJSON *root;              /* owned; resolved as parsing proceeds           */
    char file[1024];          /* the config file, for messages                 */
    char base_dir[1024];      /* its directory: data paths are relative to it  */
    const char *name;
    long long seed;
    int threads;              /* 0: "auto" until the session resolves it     */
    const char *loss;
    const char *init_from;    /* NULL if none */
    int log_per_tensor;
    cn_train_config train;
} cn_config;

/* Loads the file, applies the overrides in order, validates the top-level and
 * "train"/"log" keys and fills their defaults. The run name defaults to the
 * file's base name. */
cn_status cn_config_load(const char *file, char *const *sets, int n_sets, cn_config *out);
/* Same from a parsed tree (takes ownership of root). */
cn_status cn_config_from_json(cJSON *root, const char *file, char *const *sets, int n_sets, cn_config *out);
void cn_config_free(cn_config *c);

/* Applies one "PATH=VALUE" override. VALUE is JSON; a bare word is a string.
 * PATH is dotted; numeric parts index arrays; missing objects are created.
 * Setting a "mode" or "type" key to a new value starts that object afresh,
 * keeping only the keys that every mode/type shares (see README). */
cn_status cn_config_set(cJSON *root, const char *assignment);

/* Top-level section names (for messages and the resolved config). */
extern const char *const cn_config_top_keys[];

#endif
