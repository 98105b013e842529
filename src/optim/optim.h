/* clipnn optimizers and learning-rate schedules.
 *
 * The optimizers update the flat parameter block of a cn_paramset from its flat gradient block with
 * PyTorch 1.13's rules, defaults and operation order (torch.optim.SGD / Adam / AdamW, single-tensor path,
 * float32 arithmetic with the scalar coefficients computed in double as Python does):
 *   sgd:   d = g + wd p;  buf = d at the first step, else buf = momentum buf + (1 - dampening) d;
 *          d = nesterov ? d + momentum buf : buf (when momentum != 0);  p -= lr d
 *   adam:  g += wd p (coupled L2);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g;
 *          p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   adamw: p *= 1 - lr wd (decoupled), then adam without the L2 term.
 * State (momentum buffers, moments) is allocated once at creation; a step allocates nothing.
 *
 * Schedules give the lr of each 1-based optimizer step s from the base lr (see cn_schedule_lr). */
#ifndef CN_OPTIM_H
#define CN_OPTIM_H

#include <cJSON.h>
#include "../tensor/tensor.h"
#include "../tensor/state.h"

typedef struct cn_optim cn_optim;

/* Parses the "optimizer" object (defaults filled in; errors name `path`.key) and allocates the state for
 * the parameters of ps (which must be finalized). */
cn_status cn_optim_from_json(cJSON *opt_json, const char *path, const cn_paramset *ps, cn_optim **out);
/* The keys every optimizer type takes with the same meaning (kept when "type" changes), and the keys an
 * optimizer of `type` accepts (NULL for an unknown type). NULL-terminated, static storage. */
extern const char *const cn_optim_common_keys[];
const char *const *cn_optim_type_keys(const char *type);

/* The same optimizer from C, without JSON: cn_optim_new(&(cn_optim_opts){.type = CN_OPTIM_ADAM, .lr = 1e-3},
 * &ps, &opt). A field left 0 takes the JSON key's default (CN_ZERO for an actual 0); the values are checked
 * as the JSON keys are, and errors name them ("optimizer.lr: ..."). The result is the optimizer the
 * equivalent "optimizer" object gives, step for step. */
typedef enum { CN_OPTIM_SGD = 0, CN_OPTIM_ADAM, CN_OPTIM_ADAMW } cn_optim_type_id;
typedef struct {
    cn_optim_type_id type;
    double lr;                  /* sgd: required; adam, adamw: 1e-3                                  */
    double momentum, dampening; /* sgd: 0, 0                                                        */
    int nesterov;               /* sgd: 0                                                           */
    double beta1, beta2, eps;   /* adam, adamw: 0.9, 0.999, 1e-8                                    */
    double weight_decay;        /* sgd, adam: 0 (L2 in the gradient); adamw: 1e-2 (decoupled)        */
} cn_optim_opts;
cn_status cn_optim_new(const cn_optim_opts *opts, const cn_paramset *ps, cn_optim **out);
double cn_optim_lr(const cn_optim *o);                            /* configured base lr */
const char *cn_optim_type(const cn_optim *o);                     /* "sgd", "adam", "adamw" */
long long cn_optim_steps(const cn_optim *o);                      /* steps taken so far */
/* One update of ps->data from ps->grad with learning rate lr (from the schedule). */
cn_status cn_optim_step(cn_optim *o, cn_paramset *ps, double lr);
/* State items (views into the optimizer, valid while it lives): "optim.step" (I64 scalar), and per
 * parameter "optim.<param>.momentum_buffer" (sgd with momentum != 0) or "optim.<param>.exp_avg" and
 * "optim.<param>.exp_avg_sq" (adam, adamw), F32 with the parameter's shape. */
cn_status cn_optim_save_state(const cn_optim *o, const cn_paramset *ps, cn_state *out);
/* Copies the same items back after checking all of them: exact dtype and shape, "optim.step" within
 * [0, max_step] (the caller's run step), no negative second moment, all moments 0 at step 0 (NaN and inf
 * are kept: a run with on_nonfinite "propagate" can hold them). A missing, mis-shaped or out-of-range item
 * is a CN_ERR_FORMAT naming it, and the optimizer is then unchanged. */
cn_status cn_optim_load_state(cn_optim *o, const cn_paramset *ps, const cn_state *in, long long max_step);
void cn_optim_free(cn_optim *o);

enum { CN_SCHED_CONSTANT = 0, CN_SCHED_STEP, CN_SCHED_COSINE };
typedef struct {
    int type;                 /* CN_SCHED_* */
    double step_size, gamma;  /* step: lr = base gamma^floor(e / step_size) */
    double t_max, eta_min;    /* cosine: lr = eta_min + (base - eta_min) (1 + cos(pi e / t_max)) / 2, e <= t_max */
    long long warmup_steps;   /* w: linear warm-up from 0 */
} cn_schedule;

/* Parses the "schedule" object (NULL means {"type": "constant"}); defaults filled in. */
cn_status cn_schedule_from_json(cJSON *sched_json, const char *path, cn_schedule *out);
/* The same two lists for the schedule's types. */
extern const char *const cn_schedule_common_keys[];
const char *const *cn_schedule_type_keys(const char *type);
/* lr for 1-based optimizer step s:
 *   s <= w: base * s / w                     (warm-up: step 1 gets base/w, step w gets base)
 *   s >  w: the schedule at e = s - 1 - w    (the schedule starts after the warm-up, at its own step 0)
 * constant: base; step: base gamma^floor(e / step_size) (torch StepLR); cosine: torch CosineAnnealingLR's
 * closed form for e <= t_max, then eta_min (held, not restarted). */
double cn_schedule_lr(const cn_schedule *s, double base_lr, long long step);

#endif
