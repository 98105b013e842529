/* clipnn clip stage: pluggable gradient clipping with a report on every step.
 *
 * Where it sits in a training step (see docs/clipping.md):
 *   backward (x grad_accum, summed) -> divide by grad_accum -> cn_clip_run -> optimizer
 * so the MEAN gradient is clipped once per optimizer step.
 *
 * One step of cn_clip_run:
 *   1. statistics, once, in double and fixed order: per-tensor sum of squares,
 *      sum of |g|, max |g|; the non-finite count and the first offending tensor;
 *   2. the non-finite policy (on_nonfinite: propagate | stop | skip | zero);
 *   3. the clippers of the list, in order (each a mode from the registry);
 *   4. the report (pre/post norms, coef, threshold, per-tensor norms, ...).
 *
 * A clipper is an object whose first member is a cn_clipper (a vtable pointer);
 * a mode definition (cn_clip_mode_def) creates one from its JSON object. Built-in
 * modes: none, value, norm, norm_per_tensor, agc, autoclip, zclip. Library users
 * add their own with cn_clip_register() and select it from JSON by "mode".
 *
 * Memory: everything is sized in cn_clip_from_json; cn_clip_run never allocates. */
#ifndef CN_CLIP_H
#define CN_CLIP_H

#include <cJSON.h>
#include "../tensor/tensor.h"
#include "../tensor/state.h"

/* ---- Statistics (computed once per step, then read-only for the modes) ---- */
typedef struct cn_clip_stats {
    int n_tensors;
    double *sumsq;             /* [n_tensors] sum g^2                                   */
    double *sumabs;            /* [n_tensors] sum |g|                                   */
    double *maxabs;            /* [n_tensors] max |g|; NaN if the tensor holds a NaN    */
    double total_sumsq;        /* sum over tensors, in tensor order                     */
    double total_sumabs;
    double max_abs;            /* NaN if any NaN                                        */
    long long n_nonfinite;     /* NaN and +-inf elements                                */
    int first_nonfinite;       /* index of the first tensor holding one, -1 if none     */
    /* Cache of the general-p norm (p not 1, 2, inf), which needs a pow() per element: when
     * norm_p_type == p, cn_clip_total_norm returns norm_p instead of reading ps->grad again.
     * The stage fills it once per step for its norm type (so the `norm` mode reuses the
     * report's norm_pre); cn_clip_compute_stats clears it (norm_p_type = 0). */
    double norm_p_type, norm_p;
    /* Working space of cn_clip_compute_stats (three doubles per chunk of a tensor), sized on its first
     * call and kept; freed by cn_clip_stats_free. */
    double *part;
    size_t part_cap;
} cn_clip_stats;

cn_status cn_clip_stats_init(cn_clip_stats *s, int n_tensors);
void cn_clip_stats_free(cn_clip_stats *s);
/* Sizes the working space of cn_clip_compute_stats for ps, so that its calls allocate nothing (it sizes
 * the space itself on a first call otherwise). */
cn_status cn_clip_stats_reserve(cn_clip_stats *s, const cn_paramset *ps);
/* One pass over ps->grad (PyTorch's get_total_norm, split per tensor so that a data-parallel trainer
 * can all-reduce sumsq/sumabs (sum) and maxabs (max) before taking the norm). Each tensor is read in
 * fixed chunks of CN_CLIP_STATS_CHUNK elements (cn_vabs_stats each), the chunks' sums added in order:
 * the order is fixed by the tensor sizes alone, so the result is the same at any thread count. With
 * threads >= 2 and a large gradient the chunks are spread over the pool. */
#define CN_CLIP_STATS_CHUNK 32768
cn_status cn_clip_compute_stats(const cn_paramset *ps, cn_clip_stats *s);
/* Global norm of type p from the statistics: p = 2 sqrt(total_sumsq), p = 1
 * total_sumabs, p = INFINITY max_abs; any other p >= 1 is s->norm_p when cached for
 * that p, else reads ps->grad again ((sum |g|^p)^(1/p) in double, scaled by max |g| so
 * that it cannot overflow). For p >= 1 a finite gradient always has a finite norm;
 * NaN/inf elements propagate as in PyTorch. */
double cn_clip_total_norm(const cn_clip_stats *s, const cn_paramset *ps, double norm_type);
/* The global-norm rule. eps > 0 (PyTorch clip_grad_norm_): min(1, max_norm / (N + eps));
 * eps == 0 (TF clip_by_global_norm, Optax): max_norm / max(N, max_norm).
 * N == 0 gives 1 whatever max_norm (a zero gradient is never scaled, so never "clipped").
 * A NaN norm gives a NaN coef, an infinite norm gives 0 (PyTorch semantics). */
double cn_clip_coef(double max_norm, double total_norm, double eps);
/* g <- coef * g over all gradients (PyTorch clip_grads_with_norm_ with a given coef);
 * does nothing when coef == 1, so an unclipped gradient stays bit-identical. */
void cn_clip_scale(cn_paramset *ps, double coef);
/* g <- coef * g over one tensor. */
void cn_clip_scale_tensor(cn_paramset *ps, int index, double coef);

/* ---- Report (filled on every step, whatever the modes) ---- */
typedef struct cn_clip_report {
    double norm_pre;           /* global norm of the incoming gradient, configured norm type  */
    double norm_pre_l2;        /* same, always L2 (metrics.csv grad_norm_pre)                 */
    double norm_post;          /* L2 of what the optimizer receives                          */
    double coef;               /* scale applied by the global-norm stage; 1 if none          */
    double threshold;          /* threshold in force (see cn_clip_has_threshold); NAN if none */
    double max_abs;            /* max |g| of the incoming gradient (NaN if it holds a NaN)   */
    int clipped;               /* 1 if a stage changed the gradient: a global coef < 1 on a
                                  nonzero gradient, a clamped element, a scaled tensor or unit */
    int skipped;               /* 1 if this step returned CN_CLIP_SKIP                        */
    long long n_nonfinite;     /* NaN/inf elements in the incoming gradient                   */
    long long n_elems_clipped; /* elements clamped by `value` stages                          */
    char first_nonfinite[CN_NAME_MAX]; /* name of the first tensor holding one; "" if none    */
    double *tensor_norm_pre;   /* [n_tensors] L2 per tensor, incoming                         */
    double *tensor_norm_post;  /* [n_tensors] L2 per tensor, what the optimizer receives      */
    int n_tensors;
    int loss_nonfinite;        /* the flag the trainer passed                                  */
    long long consecutive_skips, total_skips;
    /* adaptive state, NAN when the mode is not in the list */
    double autoclip_threshold; /* percentile of the history (NAN while the history is empty)  */
    double zclip_mu, zclip_sigma; /* EMA mean / std used for this step's decision (NAN in warm-up) */
    double zclip_z;            /* z-score of this step's norm (NAN in warm-up)                */
} cn_clip_report;

/* ---- Clippers and the mode registry ---- */
typedef struct cn_clipper cn_clipper;

/* What a clipper sees and reports in one step. The stage resets the outputs
 * (coef 1, threshold NAN, clipped 0, n_elems_clipped 0, modified 0) before apply. */
typedef struct cn_clip_ctx {
    cn_paramset *ps;               /* gradients: ps->grad (modify in place)               */
    const cn_clip_stats *stats;    /* of the gradient as THIS clipper receives it         */
    cn_clip_report *report;        /* for adaptive fields only (autoclip_*, zclip_*)      */
    /* outputs */
    double coef;                   /* global scale applied (global-norm modes)            */
    double threshold;              /* threshold in force, NAN if none                     */
    int clipped;                   /* 1 if the gradient was changed by clipping           */
    int modified;                  /* 1 if any gradient element may have changed          */
    long long n_elems_clipped;
} cn_clip_ctx;

typedef struct cn_clipper_ops {
    cn_status (*apply)(cn_clipper *self, cn_clip_ctx *ctx);
    /* Optional (NULL = no state). Add/read items named "<prefix>.<item>"; prefix is
     * e.g. "clip.0". Items added by save_state are views into the clipper. */
    cn_status (*save_state)(const cn_clipper *self, const char *prefix, cn_state *out);
    cn_status (*load_state)(cn_clipper *self, const char *prefix, const cn_state *in);
    void (*free)(cn_clipper *self);   /* frees the whole object */
    /* Optional, for a global-norm mode (cn_clip_mode_def.global_norm): the p of the norm it rescales by
     * (2 for L2, INFINITY for max |g|). The stage's report.norm_pre is taken in that norm, so the report
     * and the mode's threshold speak of the same quantity. NULL = 2. */
    double (*norm_type)(const cn_clipper *self);
} cn_clipper_ops;

/* First member of every clipper object. */
struct cn_clipper {
    const cn_clipper_ops *ops;
};

typedef struct cn_clip_mode_def {
    const char *name;              /* the JSON "mode" value                                  */
    const char *const *keys;       /* NULL-terminated mode keys (besides mode, on_nonfinite,
                                      max_consecutive_skips); NULL for none                  */
    int global_norm;               /* 1: rescales by one global norm (two per list is an error) */
    int has_threshold;             /* 1: reports a threshold (for plots)                     */
    /* Reads obj (use the json.h getters: they fill defaults and name `path` in errors)
     * and creates the clipper. ps gives the parameter names and shapes. */
    cn_status (*create)(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out);
} cn_clip_mode_def;

/* Adds a mode (def must stay alive). Registering the same def twice is a no-op;
 * another def with a taken name is an error. The registry is the module's only
 * global state; register at start-up, before any thread uses the stage. */
cn_status cn_clip_register(const cn_clip_mode_def *def);
const cn_clip_mode_def *cn_clip_find_mode(const char *name);
/* "none, value, norm, ..." into buf. */
const char *cn_clip_mode_names(char *buf, size_t n);
/* The keys every stage object takes whatever its mode ("mode" and the non-finite policy's), besides the
 * mode's own cn_clip_mode_def.keys; they keep their meaning when "mode" changes. NULL-terminated. */
extern const char *const cn_clip_common_keys[];

/* ---- The stage ---- */
typedef struct cn_clip cn_clip;
typedef enum { CN_CLIP_UPDATE = 0, CN_CLIP_SKIP, CN_CLIP_STOP } cn_clip_action;
/* stop is 0: the default, also of a zero-initialised cn_clip_opts */
typedef enum { CN_NONFINITE_STOP = 0, CN_NONFINITE_PROPAGATE, CN_NONFINITE_SKIP, CN_NONFINITE_ZERO } cn_nonfinite_policy;

/* clip_json: one stage object or an array of them (mutated: defaults are filled
 * in); NULL means {"mode": "none"}. path names it in errors ("clip" -> "clip.max_norm",
 * "clip.1.mode"). Sizes every buffer for ps (which must be finalized). */
cn_status cn_clip_from_json(cJSON *clip_json, const char *path, const cn_paramset *ps, cn_clip **out);
/* Same from a JSON text (for C users and tests); the resolved tree is discarded. */
cn_status cn_clip_from_string(const char *json_text, const cn_paramset *ps, cn_clip **out);

/* The built-in modes from C, without JSON: one cn_clip_opts per stage, applied in order, e.g.
 *   cn_clip_new(&(cn_clip_opts){.mode = CN_CLIP_MODE_NORM, .max_norm = 1.0}, 1, &ps, &clip);
 * A field left 0 takes the JSON key's default (CN_ZERO for an actual 0); fields of other modes are
 * ignored. Values are checked as the JSON keys are and errors name them ("clip.1.max_norm: ...").
 * The policy is the first stage's that is not 0 (stop), as a list in JSON has one policy. The result is
 * the stage the equivalent "clip" object (or list) gives. Modes registered from C need JSON. */
typedef enum {
    CN_CLIP_MODE_NONE = 0, CN_CLIP_MODE_VALUE, CN_CLIP_MODE_NORM, CN_CLIP_MODE_NORM_PER_TENSOR,
    CN_CLIP_MODE_AGC, CN_CLIP_MODE_AUTOCLIP, CN_CLIP_MODE_ZCLIP
} cn_clip_mode_id;
typedef struct {
    cn_clip_mode_id mode;
    cn_nonfinite_policy on_nonfinite;  /* stop                                                      */
    long long max_consecutive_skips;   /* 10 (policy skip)                                          */
    double clip_value;                 /* value: required                                          */
    double max_norm;                   /* norm, norm_per_tensor: required; zclip: the cap (none)    */
    double norm_type;                  /* norm: 2; INFINITY for the max norm                        */
    double eps;                        /* norm: 1e-6 (PyTorch; CN_ZERO: TF/Optax); agc: 1e-3        */
    double clipping;                   /* agc: 0.01 (exclude: the default, the last layer)          */
    double percentile;                 /* autoclip: 10                                             */
    long long history;                 /* autoclip: 1000                                           */
    double fallback_max_norm;          /* autoclip: none                                           */
    int include_current;               /* autoclip: 0 (1: the authors' order)                      */
    double alpha, z_thresh;            /* zclip: 0.97, 2.5                                         */
    long long warmup;                  /* zclip: 25                                                */
    int ema_uncapped;                  /* zclip: 0 (1: ema_input "uncapped", the authors' EMA)      */
} cn_clip_opts;
cn_status cn_clip_new(const cn_clip_opts *stages, int n_stages, const cn_paramset *ps, cn_clip **out);

/* One step on ps->grad (the MEAN gradient): stats -> non-finite policy -> modes -> report.
 * loss_nonfinite: the trainer's flag; a non-finite loss counts as a non-finite gradient.
 * Policy `zero` zeroes the NaN/+-inf elements; with loss_nonfinite set it zeroes EVERY
 * element of every gradient, finite or not (every element was computed from the NaN/inf
 * loss, and the gradient may hold no non-finite element to zero at all): the modes then
 * see an all-zero gradient (norm 0, coef 1), *action is UPDATE and the optimizer steps with
 * g = 0 (weight decay and momentum still act). report.n_nonfinite / norm_pre describe the
 * incoming gradient, norm_post is 0.
 * *action: UPDATE (call the optimizer), SKIP (do not: gradients untouched), STOP
 * (gradients untouched; end the run). Errors (CN_ERR_*) are for misuse only. */
cn_status cn_clip_run(cn_clip *c, cn_paramset *ps, int loss_nonfinite, cn_clip_action *action);
const cn_clip_report *cn_clip_last_report(const cn_clip *c);
/* Statistics of the incoming gradient of the last step (read-only). */
const cn_clip_stats *cn_clip_last_stats(const cn_clip *c);

/* Adaptive state and skip counters as "clip.*" items (views, valid while c lives):
 * "clip.<i>.<item>" per stage, "clip.consecutive_skips", "clip.total_skips" (I64). */
cn_status cn_clip_save_state(const cn_clip *c, cn_state *out);
/* Checks and copies back the same items: exact dtypes and shapes (the counters are scalars), the skip
 * counters possible under the stage's policy, each clipper's state in range (its load_state checks it
 * all before changing anything). Any error is CN_ERR_FORMAT naming the item; the stage is then not fit
 * to use (an earlier clipper may already hold the loaded state). */
cn_status cn_clip_load_state(cn_clip *c, const cn_state *in);

/* 1 if some stage reports a threshold (norm, autoclip, zclip, norm_per_tensor: a norm;
 * value: the element bound). report.threshold takes the global-norm stage's first. */
int cn_clip_has_threshold(const cn_clip *c);
int cn_clip_n_stages(const cn_clip *c);
cn_nonfinite_policy cn_clip_policy(const cn_clip *c);
void cn_clip_free(cn_clip *c);

#endif
