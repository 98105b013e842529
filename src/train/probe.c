/* clipnn probe: a short unclipped training run, or an existing run, measured (see probe.h). */
#define _XOPEN_SOURCE 700   /* realpath */
#include "train/probe.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "train/session.h"
#include "train/trainer.h"

/* One epoch of optimizer steps, capped; also the config's name. Loads the config and data once
 * (nothing is written), so a bad config fails here before any directory exists. */
static cn_status default_steps(const cn_probe_opts *o, long long *steps, char *name, size_t nname)
{
    cn_session s;
    cn_status st = cn_session_open(&s, o->config_path, o->sets, o->n_sets);
    if (!st) {
        long long per_step = s.cfg.train.batch_size * s.cfg.train.grad_accum;
        long long epoch = ((long long)s.data.train.n + per_step - 1) / per_step;
        *steps = o->steps ? o->steps : epoch < CN_PROBE_DEFAULT_MAX_STEPS ? epoch : CN_PROBE_DEFAULT_MAX_STEPS;
        if (*steps < 1) *steps = 1;
        snprintf(name, nname, "%s", s.cfg.name);
    }
    cn_session_close(&s);
    return st;
}

static cn_status train_probe(const cn_probe_opts *o, cn_probe_result *r)
{
    long long steps;
    cn_status st = default_steps(o, &steps, r->name, sizeof r->name);
    if (st) return st;
    enum { OWN = 8 };
    char own[OWN][64];
    /* clip.mode first: setting a mode starts the clip object afresh (a list becomes one stage) */
    snprintf(own[0], 64, "clip.mode=none");
    snprintf(own[1], 64, "clip.on_nonfinite=skip");
    snprintf(own[2], 64, "clip.max_consecutive_skips=%lld", steps + 1);
    snprintf(own[3], 64, "log.per_tensor=true");
    snprintf(own[4], 64, "train.steps=%lld", steps);
    snprintf(own[5], 64, "train.log_every=1");
    snprintf(own[6], 64, "train.eval_every=0");
    snprintf(own[7], 64, "train.checkpoint_every=0");
    char **sets = cn_malloc((size_t)(o->n_sets + OWN) * sizeof *sets);
    if (!sets) return cn_error(CN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < o->n_sets; i++) sets[i] = o->sets[i];
    for (int i = 0; i < OWN; i++) sets[o->n_sets + i] = own[i];
    if (o->out_dir) snprintf(r->out_dir, sizeof r->out_dir, "%s", o->out_dir);
    else cn_run_dir_name(r->out_dir, sizeof r->out_dir, r->name, "probe");
    cn_train_opts to = {o->config_path, r->out_dir, NULL, sets, o->n_sets + OWN, o->progress, o->progress_tty,
                        o->stop_flag, 0};
    cn_train_result tr;
    st = cn_train(&to, &tr);
    cn_free(sets);
    if (st) return st;
    r->steps = tr.steps;
    r->interrupted = tr.interrupted;
    return CN_OK;
}

static int same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

cn_status cn_probe_run(const cn_probe_opts *o, cn_probe *p, cn_probe_result *r)
{
    memset(r, 0, sizeof *r);
    memset(p, 0, sizeof *p);
    cn_status st;
    if (o->config_path) {
        if ((st = train_probe(o, r))) return st;
        if ((st = cn_probe_analyze(r->out_dir, p))) return st;
    } else {
        if (!o->run_dir) return cn_error(CN_ERR_ARG, "probe: give a config or --run RUN_DIR");
        const char *base = strrchr(o->run_dir, '/');
        base = base && base[1] ? base + 1 : o->run_dir;
        snprintf(r->name, sizeof r->name, "%s", base);
        snprintf(r->out_dir, sizeof r->out_dir, "%s", o->out_dir ? o->out_dir : o->run_dir);
        /* another directory than the run's: new or empty, as for train */
        if (o->out_dir && !same_dir(o->out_dir, o->run_dir) && (st = cn_run_dir_check_new(o->out_dir))) return st;
        if ((st = cn_probe_analyze(o->run_dir, p))) return st;
    }
    if ((st = cn_probe_write(p, r->out_dir, r->name))) cn_probe_free(p);
    return st;
}
