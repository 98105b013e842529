/* Suite "optim": update rules checked against hand computations with degenerate settings, config parsing
 * (defaults, errors), state save/load, and the learning-rate schedules. */
#include "testutil.h"
#include "optim/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One parameter "w" [3] (plus "b" [1] when two) with given values and gradients. */
typedef struct {
    cn_paramset ps;
    cJSON *json;
    cn_optim *o;
} topt;

static cn_status to_make(topt *t, const char *json, const float *w, int two)
{
    memset(t, 0, sizeof *t);
    cn_paramset_init(&t->ps);
    cn_paramset_add(&t->ps, "w", 1, (int[]){3}, NULL);
    if (two) cn_paramset_add(&t->ps, "b", 1, (int[]){1}, NULL);
    cn_paramset_finalize(&t->ps);
    if (w) memcpy(t->ps.data, w, 3 * sizeof(float));
    cn_status st = cn_json_parse(json, "optimizer", &t->json);
    if (st) return st;
    return cn_optim_from_json(t->json, "optimizer", &t->ps, &t->o);
}

static void to_free(topt *t)
{
    cn_optim_free(t->o);
    cJSON_Delete(t->json);
    cn_paramset_free(&t->ps);
}

static void set_grad(topt *t, float g0, float g1, float g2)
{
    t->ps.grad[0] = g0;
    t->ps.grad[1] = g1;
    t->ps.grad[2] = g2;
}

static const char *opt_error(const char *json)
{
    topt t;
    cn_status st = to_make(&t, json, NULL, 0);
    to_free(&t);
    ck_assert_msg(st != CN_OK, "expected %s to be rejected", json);
    return cn_errmsg();
}

/* ------------------------------------------------------------------ */
/* SGD */

START_TEST(sgd_plain_step_is_p_minus_lr_g)
{
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"sgd\",\"lr\":0.5}", (float[]){1, 2, 3}, 0));
    set_grad(&t, 2, -4, 0.5f);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 0.5));
    ck_assert_float_eq(t.ps.data[0], 0.0f);
    ck_assert_float_eq(t.ps.data[1], 4.0f);
    ck_assert_float_eq(t.ps.data[2], 2.75f);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 0.25));   /* the lr argument (schedule) is used, not the config's */
    ck_assert_float_eq(t.ps.data[0], -0.5f);
    to_free(&t);
}
END_TEST

START_TEST(sgd_momentum_buffer_starts_at_gradient_then_dampens)
{
    /* step 1: buf = g = 2; p = 1 - 1*2 = -1.  step 2 (g = 4): buf = 0.5*2 + (1-0.25)*4 = 4; p = -1 - 4 = -5 */
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"sgd\",\"lr\":1,\"momentum\":0.5,\"dampening\":0.25}", (float[]){1, 0, 0}, 0));
    set_grad(&t, 2, 0, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 1.0));
    ck_assert_float_eq(t.ps.data[0], -1.0f);
    set_grad(&t, 4, 0, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 1.0));
    ck_assert_float_eq(t.ps.data[0], -5.0f);
    to_free(&t);
}
END_TEST

START_TEST(sgd_nesterov_uses_gradient_plus_momentum_buffer)
{
    /* step 1: buf = 2, d = 2 + 0.5*2 = 3, p = 1 - 3 = -2.  step 2 (g = 4): buf = 0.5*2 + 4 = 5, d = 4 + 2.5 = 6.5, p = -8.5 */
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"sgd\",\"lr\":1,\"momentum\":0.5,\"nesterov\":true}", (float[]){1, 0, 0}, 0));
    set_grad(&t, 2, 0, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 1.0));
    ck_assert_float_eq(t.ps.data[0], -2.0f);
    set_grad(&t, 4, 0, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 1.0));
    ck_assert_float_eq(t.ps.data[0], -8.5f);
    to_free(&t);
}
END_TEST

START_TEST(sgd_weight_decay_adds_wd_p_before_momentum)
{
    /* d = g + 0.5 p = 1 + 2 = 3 (p = 4); buf = 3; p = 4 - 0.5*3 = 2.5.
     * step 2: g = 1, d = 1 + 1.25 = 2.25, buf = 0.5*3 + 2.25 = 3.75, p = 2.5 - 1.875 = 0.625 */
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"sgd\",\"lr\":0.5,\"momentum\":0.5,\"weight_decay\":0.5}", (float[]){4, 0, 0}, 0));
    set_grad(&t, 1, 0, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 0.5));
    ck_assert_float_eq(t.ps.data[0], 2.5f);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 0.5));
    ck_assert_float_eq(t.ps.data[0], 0.625f);
    ck_assert_float_eq(t.ps.data[1], 0.0f);
    to_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Adam, AdamW */

START_TEST(adam_beta1_zero_first_step_is_sign_like)
{
    /* beta1 = 0: m = g; v = (1-b2) g^2; denom = sqrt(v)/sqrt(1-b2) + eps = |g| + eps; p -= lr g / (|g| + eps) */
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"adam\",\"lr\":1,\"betas\":[0,0.5],\"eps\":0.25}", (float[]){1, 1, 1}, 0));
    set_grad(&t, 0.75f, -0.25f, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 1.0));
    ck_assert_float_eq_tol(t.ps.data[0], 1.0f - 0.75f / 1.0f, 1e-7);
    ck_assert_float_eq_tol(t.ps.data[1], 1.0f + 0.25f / 0.5f, 1e-7);
    ck_assert_float_eq(t.ps.data[2], 1.0f);
    to_free(&t);
}
END_TEST

START_TEST(adam_two_steps_with_bias_correction)
{
    /* b1 = 0.5, b2 = 0.75, eps = 0, lr = 1, g1 = 1, g2 = 3:
     * t=1: m = 0.5, v = 0.25;  mhat = 1, vhat = 1 -> p = 0 - 1 = -1
     * t=2: m = 0.25 + 1.5 = 1.75, v = 0.1875 + 2.25 = 2.4375; bc1 = 0.75, bc2 = 1 - 0.5625 = 0.4375
     *      p = -1 - (1.75/0.75) / sqrt(2.4375/0.4375) */
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"adam\",\"lr\":1,\"betas\":[0.5,0.75],\"eps\":0}", (float[]){0, 0, 0}, 0));
    set_grad(&t, 1, 0, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 1.0));
    ck_assert_float_eq_tol(t.ps.data[0], -1.0f, 1e-7);
    set_grad(&t, 3, 0, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 1.0));
    double want = -1.0 - (1.75 / 0.75) / sqrt(2.4375 / 0.4375);
    ck_assert_near(t.ps.data[0], want, 2e-6);
    ck_assert_int_eq((int)cn_optim_steps(t.o), 2);
    to_free(&t);
}
END_TEST

START_TEST(adam_weight_decay_is_coupled_l2)
{
    /* p = 2, g = 0, wd = 0.5 -> effective g = 1; beta1 = 0, first step: p -= lr * 1/(1 + eps).
     * p = 0 with g = 0 stays 0 (m = 0 over denom = eps). */
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"adam\",\"lr\":0.1,\"betas\":[0,0.999],\"eps\":1e-12,\"weight_decay\":0.5}", (float[]){2, 0, 0}, 0));
    set_grad(&t, 0, 0, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 0.1));
    ck_assert_float_eq_tol(t.ps.data[0], 1.9f, 1e-6);
    ck_assert_float_eq(t.ps.data[1], 0.0f);
    to_free(&t);
}
END_TEST

START_TEST(adamw_decay_is_decoupled_and_scaled_by_lr)
{
    /* p = 2, g = 0, wd = 0.5, lr = 0.1: p *= 1 - 0.05 = 1.9, then the Adam part with g = 0 moves nothing
     * (eps > 0 so 0/eps = 0). */
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"adamw\",\"lr\":0.1,\"weight_decay\":0.5}", (float[]){2, 0, 0}, 0));
    set_grad(&t, 0, 0, 0);
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 0.1));
    ck_assert_float_eq_tol(t.ps.data[0], 1.9f, 1e-7);
    /* the decay uses the scheduled lr */
    ck_assert_ok(cn_optim_step(t.o, &t.ps, 0.2));
    ck_assert_float_eq_tol(t.ps.data[0], 1.9f * 0.9f, 1e-6);
    to_free(&t);
}
END_TEST

START_TEST(adamw_and_adam_defaults_filled_in)
{
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"adamw\"}", NULL, 0));
    ck_assert_near(cJSON_GetObjectItem(t.json, "lr")->valuedouble, 1e-3, 0);
    ck_assert_near(cJSON_GetObjectItem(t.json, "eps")->valuedouble, 1e-8, 0);
    ck_assert_near(cJSON_GetObjectItem(t.json, "weight_decay")->valuedouble, 1e-2, 0);
    cJSON *b = cJSON_GetObjectItem(t.json, "betas");
    ck_assert_int_eq(cJSON_GetArraySize(b), 2);
    ck_assert_near(cJSON_GetArrayItem(b, 0)->valuedouble, 0.9, 0);
    ck_assert_near(cJSON_GetArrayItem(b, 1)->valuedouble, 0.999, 0);
    ck_assert_near(cn_optim_lr(t.o), 1e-3, 0);
    to_free(&t);
    ck_assert_ok(to_make(&t, "{\"type\":\"adam\"}", NULL, 0));
    ck_assert_near(cJSON_GetObjectItem(t.json, "weight_decay")->valuedouble, 0, 0);
    to_free(&t);
    ck_assert_ok(to_make(&t, "{\"type\":\"sgd\",\"lr\":0.1}", NULL, 0));
    ck_assert_near(cJSON_GetObjectItem(t.json, "momentum")->valuedouble, 0, 0);
    ck_assert_near(cJSON_GetObjectItem(t.json, "dampening")->valuedouble, 0, 0);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(t.json, "nesterov")));
    to_free(&t);
}
END_TEST

START_TEST(config_errors_name_the_path)
{
    ck_assert_str_eq(opt_error("{\"type\":\"sgd\"}"), "optimizer.lr: required key is missing");
    ck_assert_str_eq(opt_error("{\"type\":\"sgd\",\"lr\":\"fast\"}"), "optimizer.lr: expected a number > 0, got \"fast\"");
    ck_assert_msg(strstr(opt_error("{\"type\":\"sgd\",\"lr\":1,\"nesterov\":true}"), "optimizer.nesterov") != NULL, "%s", cn_errmsg());
    ck_assert_msg(strstr(opt_error("{\"type\":\"adam\",\"betas\":[0.9,1]}"), "optimizer.betas.1") != NULL, "%s", cn_errmsg());
    ck_assert_msg(strstr(opt_error("{\"type\":\"adam\",\"betas\":0.9}"), "optimizer.betas: expected a list") != NULL, "%s", cn_errmsg());
    ck_assert_msg(strstr(opt_error("{\"type\":\"adam\",\"momentum\":0.9}"), "momentum") != NULL, "%s", cn_errmsg());
    ck_assert_msg(strstr(opt_error("{\"type\":\"rmsprop\"}"), "optimizer.type") != NULL, "%s", cn_errmsg());
}
END_TEST

/* ------------------------------------------------------------------ */
/* State */

START_TEST(save_load_state_continues_identically)
{
    const char *cfgs[] = {"{\"type\":\"adam\",\"lr\":0.1}", "{\"type\":\"sgd\",\"lr\":0.1,\"momentum\":0.9}"};
    for (int c = 0; c < 2; c++) {
        topt a, b;
        ck_assert_ok(to_make(&a, cfgs[c], (float[]){1, 2, 3}, 1));
        ck_assert_ok(to_make(&b, cfgs[c], NULL, 1));
        for (int s = 0; s < 2; s++) {
            set_grad(&a, 0.1f * s + 0.3f, -0.2f, 0.7f);
            a.ps.grad[16] = 0.5f;    /* "b" starts at the next 16-float boundary */
            ck_assert_ok(cn_optim_step(a.o, &a.ps, 0.1));
        }
        cn_state st;
        cn_state_init(&st);
        ck_assert_ok(cn_optim_save_state(a.o, &a.ps, &st));
        ck_assert_ptr_nonnull(cn_state_find(&st, "optim.step"));
        ck_assert_ptr_nonnull(cn_state_find(&st, c == 0 ? "optim.w.exp_avg_sq" : "optim.b.momentum_buffer"));
        memcpy(b.ps.data, a.ps.data, a.ps.total * sizeof(float));
        ck_assert_ok(cn_optim_load_state(b.o, &b.ps, &st, 2));
        cn_state_free(&st);
        memcpy(b.ps.grad, a.ps.grad, a.ps.total * sizeof(float));
        ck_assert_ok(cn_optim_step(a.o, &a.ps, 0.1));
        ck_assert_ok(cn_optim_step(b.o, &b.ps, 0.1));
        ck_assert_int_eq(memcmp(a.ps.data, b.ps.data, a.ps.total * sizeof(float)), 0);
        to_free(&a);
        to_free(&b);
    }
}
END_TEST

START_TEST(load_state_missing_item_is_named)
{
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"adamw\"}", NULL, 0));
    cn_state st;
    cn_state_init(&st);
    long long step = 3;
    float m[3] = {0};
    ck_assert_ok(cn_state_add(&st, "optim.step", CN_DT_I64, 0, NULL, &step));
    ck_assert_ok(cn_state_add(&st, "optim.w.exp_avg", CN_DT_F32, 1, (int64_t[]){3}, m));
    ck_assert_int_ne(cn_optim_load_state(t.o, &t.ps, &st, 3), CN_OK);
    ck_assert_msg(strstr(cn_errmsg(), "optim.w.exp_avg_sq") != NULL, "%s", cn_errmsg());
    cn_state_free(&st);
    to_free(&t);
}
END_TEST

START_TEST(step_allocates_nothing)
{
    topt t;
    ck_assert_ok(to_make(&t, "{\"type\":\"adam\"}", NULL, 0));
    uint64_t before = cn_alloc_count();
    for (int i = 0; i < 3; i++) ck_assert_ok(cn_optim_step(t.o, &t.ps, 1e-3));
    ck_assert_uint_eq(cn_alloc_count() - before, 0);
    to_free(&t);
}
END_TEST

/* The update does not depend on the thread count: with threads >= 2 it runs over the worker pool in the
 * parameter block's ranges (cn_paramset_for_ranges: rows of the parameters of at least 32 rows and
 * CN_PARAM_SPLIT_MIN floats, the rest whole on the calling thread). Every optimizer configuration gives
 * the bits of one thread, over three steps, on a block with split parameters ([300, 333], [40, 1000]),
 * parameters kept whole ([31, 1000]: too few rows; [1003]: one dimension) and the gaps between them. */
enum { BIG_PARAMS = 5 };
static const int big_shapes[BIG_PARAMS][2] = {{300, 333}, {31, 1000}, {1003, 0}, {40, 1000}, {7, 3}};

static void zero_gaps(const cn_paramset *ps, float *x)   /* the gaps between parameters hold zeros */
{
    for (int i = 0; i + 1 < ps->count; i++)
        memset(x + ps->info[i].offset + ps->info[i].numel, 0,
               (ps->info[i + 1].offset - ps->info[i].offset - ps->info[i].numel) * sizeof(float));
}

static void big_run(const char *json, int threads, float *out, size_t n)
{
    cn_set_threads(threads);
    cn_paramset ps;
    cJSON *j = NULL;
    cn_optim *o = NULL;
    cn_paramset_init(&ps);
    for (int i = 0; i < BIG_PARAMS; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        ck_assert_ok(cn_paramset_add(&ps, name, big_shapes[i][1] ? 2 : 1, big_shapes[i], NULL));
    }
    ck_assert_ok(cn_paramset_finalize(&ps));
    ck_assert_uint_eq(ps.total, n);
    int split = 0;
    for (int i = 0; i < ps.count; i++) {
        size_t j0, j1;
        cn_paramset_part(&ps, i, 0, 2, &j0, &j1);
        split += j1 - j0 < ps.info[i].numel;
    }
    ck_assert_int_eq(split, 2);   /* the two large matrices are split, the rest is not */
    uint64_t r = 12345;
    for (size_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        ps.data[i] = (float)((double)(r >> 40) / (double)(1ull << 24) - 0.5);
    }
    zero_gaps(&ps, ps.data);
    ck_assert_ok(cn_json_parse(json, "optimizer", &j));
    ck_assert_ok(cn_optim_from_json(j, "optimizer", &ps, &o));
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < n; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            ps.grad[i] = (float)((double)(r >> 40) / (double)(1ull << 24) - 0.5) * (float)(step + 1);
        }
        zero_gaps(&ps, ps.grad);
        ck_assert_ok(cn_optim_step(o, &ps, 0.01));
    }
    memcpy(out, ps.data, n * sizeof(float));
    cn_optim_free(o);
    cJSON_Delete(j);
    cn_paramset_free(&ps);
    cn_set_threads(1);
}

START_TEST(threaded_update_equals_one_thread)
{
    static const char *cfgs[] = {
        "{\"type\":\"sgd\",\"lr\":0.1}",
        "{\"type\":\"sgd\",\"lr\":0.1,\"momentum\":0.9,\"weight_decay\":0.01}",
        "{\"type\":\"sgd\",\"lr\":0.1,\"momentum\":0.9,\"nesterov\":true}",
        "{\"type\":\"adam\",\"weight_decay\":0.01}",
        "{\"type\":\"adamw\"}",
    };
    cn_paramset ps;   /* the block's size, gaps included */
    cn_paramset_init(&ps);
    for (int i = 0; i < BIG_PARAMS; i++)
        ck_assert_ok(cn_paramset_add(&ps, (const char *[]){"a", "b", "c", "d", "e"}[i], big_shapes[i][1] ? 2 : 1,
                                     big_shapes[i], NULL));
    ck_assert_ok(cn_paramset_finalize(&ps));
    const size_t N = ps.total;
    cn_paramset_free(&ps);
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        big_run(cfgs[c], 1, a, N);
        for (int threads = 2; threads <= 3; threads++) {
            big_run(cfgs[c], threads, b, N);
            ck_assert_msg(memcmp(a, b, N * sizeof(float)) == 0, "%s: %d threads differ from 1", cfgs[c], threads);
        }
    }
    free(a);
    free(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Schedules */

static cn_schedule sched(const char *json)
{
    cJSON *j = NULL;
    cn_schedule s;
    ck_assert_ok(cn_json_parse(json, "schedule", &j));
    ck_assert_ok(cn_schedule_from_json(j, "schedule", &s));
    cJSON_Delete(j);
    return s;
}

START_TEST(schedule_constant_and_null)
{
    cn_schedule s = sched("{\"type\":\"constant\"}");
    ck_assert_near(cn_schedule_lr(&s, 0.3, 1), 0.3, 0);
    ck_assert_near(cn_schedule_lr(&s, 0.3, 100000), 0.3, 0);
    ck_assert_ok(cn_schedule_from_json(NULL, "schedule", &s));
    ck_assert_near(cn_schedule_lr(&s, 0.3, 7), 0.3, 0);
}
END_TEST

START_TEST(schedule_step_decays_every_step_size)
{
    /* torch StepLR(step_size=3, gamma=0.5) stepped after each optimizer step: steps 1-3 base, 4-6 half, 7 quarter */
    cn_schedule s = sched("{\"type\":\"step\",\"step_size\":3,\"gamma\":0.5}");
    ck_assert_near(cn_schedule_lr(&s, 1.0, 1), 1.0, 0);
    ck_assert_near(cn_schedule_lr(&s, 1.0, 3), 1.0, 0);
    ck_assert_near(cn_schedule_lr(&s, 1.0, 4), 0.5, 0);
    ck_assert_near(cn_schedule_lr(&s, 1.0, 6), 0.5, 0);
    ck_assert_near(cn_schedule_lr(&s, 1.0, 7), 0.25, 0);
}
END_TEST

START_TEST(schedule_cosine_start_middle_end_after)
{
    cn_schedule s = sched("{\"type\":\"cosine\",\"t_max\":10,\"eta_min\":0.1}");
    ck_assert_near(cn_schedule_lr(&s, 1.1, 1), 1.1, 1e-15);
    ck_assert_near(cn_schedule_lr(&s, 1.1, 6), 0.6, 1e-15);      /* e = 5 = t_max / 2: midpoint */
    ck_assert_near(cn_schedule_lr(&s, 1.1, 11), 0.1, 1e-15);     /* e = t_max */
    ck_assert_near(cn_schedule_lr(&s, 1.1, 50), 0.1, 0);         /* held */
    ck_assert_near(cn_schedule_lr(&s, 1.1, 3), 0.1 + 0.5 * (1 + cos(3.14159265358979323846 * 2 / 10)), 1e-15);
}
END_TEST

START_TEST(schedule_warmup_then_schedule_from_its_start)
{
    /* warm-up 4: steps 1..4 = base * s/4; step 5 = schedule step 0 (base); step_size 2 -> step 7 halves */
    cn_schedule s = sched("{\"type\":\"step\",\"step_size\":2,\"gamma\":0.5,\"warmup_steps\":4}");
    ck_assert_near(cn_schedule_lr(&s, 2.0, 1), 0.5, 0);
    ck_assert_near(cn_schedule_lr(&s, 2.0, 3), 1.5, 0);
    ck_assert_near(cn_schedule_lr(&s, 2.0, 4), 2.0, 0);
    ck_assert_near(cn_schedule_lr(&s, 2.0, 5), 2.0, 0);
    ck_assert_near(cn_schedule_lr(&s, 2.0, 6), 2.0, 0);
    ck_assert_near(cn_schedule_lr(&s, 2.0, 7), 1.0, 0);
    cn_schedule c = sched("{\"type\":\"cosine\",\"t_max\":4,\"warmup_steps\":2}");
    ck_assert_near(cn_schedule_lr(&c, 1.0, 1), 0.5, 0);
    ck_assert_near(cn_schedule_lr(&c, 1.0, 3), 1.0, 1e-15);
    ck_assert_near(cn_schedule_lr(&c, 1.0, 5), 0.5, 1e-15);
    ck_assert_near(cn_schedule_lr(&c, 1.0, 7), 0.0, 1e-15);
}
END_TEST

START_TEST(schedule_errors_and_defaults)
{
    cJSON *j = NULL;
    cn_schedule s;
    ck_assert_ok(cn_json_parse("{\"type\":\"step\"}", "schedule", &j));
    ck_assert_int_eq(cn_schedule_from_json(j, "schedule", &s), CN_ERR_ARG);
    ck_assert_str_eq(cn_errmsg(), "schedule.step_size: required key is missing");
    cJSON_Delete(j);
    ck_assert_ok(cn_json_parse("{\"type\":\"cosine\",\"t_max\":5,\"gamma\":0.1}", "schedule", &j));
    ck_assert_int_eq(cn_schedule_from_json(j, "schedule", &s), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "gamma") != NULL, "%s", cn_errmsg());
    cJSON_Delete(j);
    ck_assert_ok(cn_json_parse("{\"type\":\"step\",\"step_size\":5}", "schedule", &j));
    ck_assert_ok(cn_schedule_from_json(j, "schedule", &s));
    ck_assert_near(cJSON_GetObjectItem(j, "gamma")->valuedouble, 0.1, 0);
    ck_assert_near(cJSON_GetObjectItem(j, "warmup_steps")->valuedouble, 0, 0);
    cJSON_Delete(j);
}
END_TEST

Suite *suite_optim(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("sgd");
    tcase_add_test(tc, sgd_plain_step_is_p_minus_lr_g);
    tcase_add_test(tc, sgd_momentum_buffer_starts_at_gradient_then_dampens);
    tcase_add_test(tc, sgd_nesterov_uses_gradient_plus_momentum_buffer);
    tcase_add_test(tc, sgd_weight_decay_adds_wd_p_before_momentum);
    suite_add_tcase(s, tc);
    tc = tcase_create("adam");
    tcase_add_test(tc, adam_beta1_zero_first_step_is_sign_like);
    tcase_add_test(tc, adam_two_steps_with_bias_correction);
    tcase_add_test(tc, adam_weight_decay_is_coupled_l2);
    tcase_add_test(tc, adamw_decay_is_decoupled_and_scaled_by_lr);
    tcase_add_test(tc, adamw_and_adam_defaults_filled_in);
    tcase_add_test(tc, config_errors_name_the_path);
    suite_add_tcase(s, tc);
    tc = tcase_create("state");
    tcase_add_test(tc, save_load_state_continues_identically);
    tcase_add_test(tc, load_state_missing_item_is_named);
    tcase_add_test(tc, step_allocates_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("schedule");
    tcase_add_test(tc, threaded_update_equals_one_thread);
    tcase_add_test(tc, schedule_constant_and_null);
    tcase_add_test(tc, schedule_step_decays_every_step_size);
    tcase_add_test(tc, schedule_cosine_start_middle_end_after);
    tcase_add_test(tc, schedule_warmup_then_schedule_from_its_start);
    tcase_add_test(tc, schedule_errors_and_defaults);
    suite_add_tcase(s, tc);
    return s;
}
