/* Learning-rate schedules: constant, step (torch StepLR), cosine (torch CosineAnnealingLR, closed form),
 * each after an optional linear warm-up. Formulas and composition in optim.h (cn_schedule_lr). */
#include "optim/optim.h"
#include "json/json.h"

#include <math.h>
#include <string.h>

static const double pi = 3.14159265358979323846;

static const char *const types[] = {"constant", "step", "cosine", NULL};
static const char *const k_const[] = {"type", "warmup_steps", NULL};
static const char *const k_step[] = {"type", "warmup_steps", "step_size", "gamma", NULL};
static const char *const k_cos[] = {"type", "warmup_steps", "t_max", "eta_min", NULL};
const char *const cn_schedule_common_keys[] = {"type", "warmup_steps", NULL};

const char *const *cn_schedule_type_keys(const char *type)
{
    for (int t = 0; types[t]; t++)
        if (!strcmp(types[t], type)) return t == CN_SCHED_STEP ? k_step : t == CN_SCHED_COSINE ? k_cos : k_const;
    return NULL;
}

cn_status cn_schedule_from_json(cJSON *sched_json, const char *path, cn_schedule *out)
{
    memset(out, 0, sizeof *out);
    out->type = CN_SCHED_CONSTANT;
    if (!sched_json || cJSON_IsNull(sched_json)) return CN_OK;
    cn_status st;
    const char *type;
    long long v;
    if ((st = cn_json_expect_object(sched_json, path)) ||
        (st = cn_json_string(sched_json, path, "type", 0, "constant", types, &type)))
        return st;
    for (out->type = 0; strcmp(types[out->type], type); out->type++) {}
    const char *const *keys = out->type == CN_SCHED_STEP ? k_step : out->type == CN_SCHED_COSINE ? k_cos : k_const;
    if ((st = cn_json_check_keys(sched_json, path, keys)) ||
        (st = cn_json_int(sched_json, path, "warmup_steps", 0, 0, 0, (long long)9e18, &out->warmup_steps)))
        return st;
    if (out->type == CN_SCHED_STEP) {
        if ((st = cn_json_int(sched_json, path, "step_size", 1, 0, 1, (long long)9e18, &v)) ||
            /* gamma <= 1: a decay. Above 1 the lr grows as gamma^(s / step_size) and overflows to inf
             * in a long run (1.5^1750 > 1e308) */
            (st = cn_json_number(sched_json, path, "gamma", &(cn_json_num){.def = 0.1, .lo = 0, .hi = 1}, &out->gamma)))
            return st;
        out->step_size = (double)v;
    } else if (out->type == CN_SCHED_COSINE) {
        if ((st = cn_json_int(sched_json, path, "t_max", 1, 0, 1, (long long)9e18, &v)) ||
            (st = cn_json_number(sched_json, path, "eta_min", &(cn_json_num){.lo = 0, .hi = INFINITY}, &out->eta_min)))
            return st;
        out->t_max = (double)v;
    }
    return CN_OK;
}

double cn_schedule_lr(const cn_schedule *s, double base_lr, long long step)
{
    long long w = s->warmup_steps;
    if (step < 1) step = 1;
    if (w > 0 && step <= w) {
        /* base s / w, rounded as written; when base s overflows (a base lr near DBL_MAX) the other order,
         * which cannot: s / w <= 1 */
        double lr = base_lr * (double)step / (double)w;
        return isinf(lr) ? base_lr * ((double)step / (double)w) : lr;
    }
    double e = (double)(step - 1 - (w > 0 ? w : 0));     /* schedule steps since the warm-up ended */
    switch (s->type) {
    case CN_SCHED_STEP:
        return base_lr * pow(s->gamma, floor(e / s->step_size));
    case CN_SCHED_COSINE:
        if (e >= s->t_max) return s->eta_min;   /* held after t_max (torch's closed form would restart) */
        /* (1 + cos) / 2 first: the same double as ((base - eta_min) (1 + cos)) / 2 (halving is exact), but
         * it cannot overflow for a base lr above DBL_MAX / 2 */
        return s->eta_min + (base_lr - s->eta_min) * ((1.0 + cos(pi * e / s->t_max)) / 2.0);
    default:
        return base_lr;
    }
}
