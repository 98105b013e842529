/* Suite "clip": the clip-stage test vectors (v01..v16; semantics in docs/clipping.md), config validation,
 * NaN handling, adaptive state save/load, a custom mode registered from C, and
 * a golden comparison with PyTorch's clip_grad_norm_ / clip_grad_value_ on a
 * hand-unrolled tanh RNN (tests/golden/gen_clip.py). */
#include "testutil.h"
#include "clip/clip.h"
#include "optim/optim.h"
#include "tensor/vec.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* Paramset of 1-D tensors "0.weight", "1.weight", ... with the given sizes. */
static void mkps(cn_paramset *ps, int n, const int *numel)
{
    cn_paramset_init(ps);
    for (int i = 0; i < n; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "%d.weight", i);
        ck_assert_ok(cn_paramset_add(ps, nm, 1, &numel[i], NULL));
    }
    ck_assert_ok(cn_paramset_finalize(ps));
}

static void set_grad(cn_paramset *ps, int i, const float *v)
{
    memcpy(ps->grad + ps->info[i].offset, v, ps->info[i].numel * sizeof(float));
}

static float *grad_of(cn_paramset *ps, int i) { return ps->grad + ps->info[i].offset; }
static float *data_of(cn_paramset *ps, int i) { return ps->data + ps->info[i].offset; }

/* Uniform random gradients in every tensor (tensors start on 16-float boundaries;
 * the padding between them stays 0). */
static void fill_grads(cn_paramset *ps, uint64_t seed, float lo, float hi)
{
    for (int i = 0; i < ps->count; i++) tu_fill_uniform(grad_of(ps, i), ps->info[i].numel, seed + (uint64_t)i, lo, hi);
}

static cn_clip *mk(const char *json, const cn_paramset *ps)
{
    cn_clip *c = NULL;
    ck_assert_ok(cn_clip_from_string(json, ps, &c));
    return c;
}

static const cn_clip_report *run(cn_clip *c, cn_paramset *ps, cn_clip_action expect)
{
    cn_clip_action a = (cn_clip_action)-1;
    ck_assert_ok(cn_clip_run(c, ps, 0, &a));
    ck_assert_int_eq(a, expect);
    return cn_clip_last_report(c);
}

/* one 1-D tensor holding v[0..n) */
static void one_tensor(cn_paramset *ps, int n, const float *v)
{
    mkps(ps, 1, &n);
    set_grad(ps, 0, v);
}

/* ======================= v01..v16 ======================= */

START_TEST(v01_no_params_and_zero_grads_give_norm_zero_coef_one)
{
    cn_paramset ps;
    mkps(&ps, 0, NULL);
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->norm_pre == 0 && r->coef == 1 && r->clipped == 0 && r->n_nonfinite == 0);
    cn_clip_free(c);
    cn_paramset_free(&ps);

    int sz[2] = {3, 2};
    mkps(&ps, 2, sz);   /* gradients zeroed by finalize */
    c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"eps\":0}", &ps);
    r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->norm_pre == 0 && r->norm_post == 0 && r->coef == 1 && r->clipped == 0);
    for (size_t j = 0; j < ps.total; j++) ck_assert(ps.grad[j] == 0.0f && !signbit(ps.grad[j]));
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v02_norms_l2_of_3_and_4_is_5_linf_4_l1_7)
{
    cn_paramset ps;
    int sz[2] = {1, 1};
    mkps(&ps, 2, sz);
    set_grad(&ps, 0, (float[]){3});
    set_grad(&ps, 1, (float[]){4});
    cn_clip_stats s;
    ck_assert_ok(cn_clip_stats_init(&s, 2));
    ck_assert_ok(cn_clip_compute_stats(&ps, &s));
    ck_assert(cn_clip_total_norm(&s, &ps, 2) == 5.0);
    ck_assert(s.sumsq[0] == 9.0 && s.sumsq[1] == 16.0);
    cn_clip_stats_free(&s);
    cn_paramset_free(&ps);

    one_tensor(&ps, 2, (float[]){3, -4});
    ck_assert_ok(cn_clip_stats_init(&s, 1));
    ck_assert_ok(cn_clip_compute_stats(&ps, &s));
    ck_assert(cn_clip_total_norm(&s, &ps, INFINITY) == 4.0);
    ck_assert(cn_clip_total_norm(&s, &ps, 1) == 7.0);
    ck_assert_near(cn_clip_total_norm(&s, &ps, 3), cbrt(27.0 + 64.0), 1e-12);
    cn_clip_stats_free(&s);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v03_none_leaves_gradients_byte_identical_and_fills_report)
{
    cn_paramset ps;
    int sz[2] = {3, 4};
    mkps(&ps, 2, sz);
    fill_grads(&ps, 7, -5, 5);
    float before[64];
    ck_assert(ps.total <= 64);
    memcpy(before, ps.grad, ps.total * sizeof(float));
    cn_clip *c = mk("{\"mode\":\"none\"}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(memcmp(before, ps.grad, ps.total * sizeof(float)) == 0);
    double ss = 0, mx = 0;
    for (size_t j = 0; j < ps.total; j++) { ss += (double)before[j] * before[j]; if (fabs(before[j]) > mx) mx = fabs(before[j]); }
    ck_assert_near(r->norm_pre, sqrt(ss), 1e-12);
    ck_assert(r->norm_pre == r->norm_pre_l2 && r->norm_post == r->norm_pre);
    ck_assert(r->coef == 1 && isnan(r->threshold) && r->clipped == 0 && r->max_abs == mx);
    ck_assert_int_eq(r->n_tensors, 2);
    ck_assert(r->tensor_norm_pre[0] > 0 && r->tensor_norm_post[1] == r->tensor_norm_pre[1]);
    ck_assert_int_eq(cn_clip_has_threshold(c), 0);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v04_huge_gradients_norm_computed_finite_in_double)
{
    cn_paramset ps;
    int n = 100;
    mkps(&ps, 1, &n);
    cn_fill(ps.grad, 100, 1e20f);
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(isfinite(r->norm_pre));
    ck_assert_near(r->norm_pre / (10.0 * (double)1e20f), 1.0, 1e-12);
    ck_assert_int_eq(r->n_nonfinite, 0);
    ck_assert_near(r->norm_post, 1.0, 1e-6);
    ck_assert(r->clipped == 1);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v05_value_clamps_and_counts_elements)
{
    cn_paramset ps;
    one_tensor(&ps, 6, (float[]){-10, -1, 0, 0, 2, 10});
    cn_clip *c = mk("{\"mode\":\"value\",\"clip_value\":1}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    const float want[6] = {-1, -1, 0, 0, 1, 1};
    for (int j = 0; j < 6; j++) ck_assert(ps.grad[j] == want[j]);
    /* The vector as first written said n_elems_clipped = 2, but three elements (-10, 2, 10) lie
     * outside [-1, 1] and change; -1 is at the bound and is not clipped. */
    ck_assert_int_eq(r->n_elems_clipped, 3);
    ck_assert(r->clipped == 1 && r->threshold == 1.0 && r->coef == 1.0);
    ck_assert_near(r->norm_post, 2.0, 1e-12);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* Regression: a clamp written as fmaxf(-c, fminf(g, c)) returns c for NaN (fminf
 * ignores a NaN operand), so this test fails with it. */
START_TEST(v05_value_clamp_keeps_nan_and_maps_inf_to_c)
{
    cn_paramset ps;
    one_tensor(&ps, 4, (float[]){NAN, INFINITY, -INFINITY, 0.5f});
    cn_clip *c = mk("{\"mode\":\"value\",\"clip_value\":2,\"on_nonfinite\":\"propagate\"}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(isnan(ps.grad[0]));
    ck_assert(ps.grad[1] == 2.0f && ps.grad[2] == -2.0f && ps.grad[3] == 0.5f);
    ck_assert_int_eq(r->n_elems_clipped, 2);
    ck_assert_int_eq(r->n_nonfinite, 3);
    ck_assert_str_eq(r->first_nonfinite, "0.weight");
    ck_assert(isnan(r->max_abs));
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v06_norm_clip_eps_torch_and_eps_zero_exact)
{
    cn_paramset ps;
    one_tensor(&ps, 2, (float[]){3, 4});
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->coef == 1.0 / 5.000001);
    /* 0.59999988 and 0.79999984 are not float32 numbers: within one ulp (6e-8),
     * and bit-equal to what PyTorch 1.13 gives for this input */
    ck_assert_near(ps.grad[0], 0.59999988, 6e-8);
    ck_assert_near(ps.grad[1], 0.79999984, 6e-8);
    ck_assert(ps.grad[0] == 0.599999905f && ps.grad[1] == 0.799999833f);
    ck_assert(ps.grad[0] < 0.6f && ps.grad[1] < 0.8f);
    ck_assert(r->norm_pre == 5.0 && r->clipped == 1 && r->threshold == 1.0);
    ck_assert_near(r->norm_post, 1.0, 1e-6);
    cn_clip_free(c);

    set_grad(&ps, 0, (float[]){3, 4});
    c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"eps\":0}", &ps);
    r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(ps.grad[0] == 0.6f && ps.grad[1] == 0.8f);
    ck_assert(r->norm_pre == 5.0 && r->clipped == 1 && r->coef == 0.2);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v07_norm_at_threshold_with_eps_shrinks_without_eps_keeps)
{
    cn_paramset ps;
    one_tensor(&ps, 2, (float[]){3, 4});
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":5}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->coef < 1.0 && r->clipped == 1);
    cn_clip_free(c);

    set_grad(&ps, 0, (float[]){3, 4});
    c = mk("{\"mode\":\"norm\",\"max_norm\":5,\"eps\":0}", &ps);
    r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->coef == 1.0 && r->clipped == 0);
    ck_assert(ps.grad[0] == 3.0f && ps.grad[1] == 4.0f);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v08_norm_below_threshold_output_bit_identical)
{
    cn_paramset ps;
    int sz[2] = {5, 3};
    mkps(&ps, 2, sz);
    fill_grads(&ps, 11, -0.1f, 0.1f);
    float before[64];
    memcpy(before, ps.grad, ps.total * sizeof(float));
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":10}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(memcmp(before, ps.grad, ps.total * sizeof(float)) == 0);
    ck_assert(r->coef == 1.0 && r->clipped == 0 && r->norm_post == r->norm_pre_l2);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v09_norm_100_100_and_inf_norm)
{
    cn_paramset ps;
    one_tensor(&ps, 2, (float[]){100, 100});
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1}", &ps);
    run(c, &ps, CN_CLIP_UPDATE);
    ck_assert_near(ps.grad[0], 0.70710678, 1e-7);
    ck_assert_near(ps.grad[1], 0.70710678, 1e-7);
    cn_clip_free(c);

    ps.grad[0] = 3;
    ps.grad[1] = -4;
    c = mk("{\"mode\":\"norm\",\"max_norm\":2,\"norm_type\":\"inf\"}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->norm_pre == 4.0 && r->norm_pre_l2 == 5.0);
    ck_assert(r->coef == 2.0 / (4.0 + 1e-6));
    ck_assert(ps.grad[0] == (float)(3.0 * r->coef) && ps.grad[1] == (float)(-4.0 * r->coef));
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v10_norm_per_tensor_clips_each_tensor_alone)
{
    cn_paramset ps;
    int sz[3] = {2, 1, 2};
    mkps(&ps, 3, sz);
    set_grad(&ps, 0, (float[]){3, 4});
    set_grad(&ps, 1, (float[]){0.1f});
    cn_clip *c = mk("{\"mode\":\"norm_per_tensor\",\"max_norm\":1}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(grad_of(&ps, 0)[0] == 0.6f && grad_of(&ps, 0)[1] == 0.8f);
    ck_assert(grad_of(&ps, 1)[0] == 0.1f);
    ck_assert(grad_of(&ps, 2)[0] == 0.0f && grad_of(&ps, 2)[1] == 0.0f);
    ck_assert(r->clipped == 1 && r->coef == 1.0 && r->threshold == 1.0);
    ck_assert_near(r->tensor_norm_post[0], 1.0, 1e-7);
    ck_assert(r->tensor_norm_pre[0] == 5.0);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* Model: "0.weight" [3,2], "0.bias" [2], "1.weight" [1,2] (last layer: excluded by default). */
static void agc_model(cn_paramset *ps)
{
    cn_paramset_init(ps);
    ck_assert_ok(cn_paramset_add(ps, "0.weight", 2, (int[]){3, 2}, NULL));
    ck_assert_ok(cn_paramset_add(ps, "0.bias", 1, (int[]){2}, NULL));
    ck_assert_ok(cn_paramset_add(ps, "1.weight", 2, (int[]){1, 2}, NULL));
    ck_assert_ok(cn_paramset_finalize(ps));
    /* 0.weight rows: w (6, 8) norm 10 -> limit 0.01 * 10 = 0.1;
     * row 0 grad norm 1 -> 0.1; row 1 grad norm 0.05 -> unchanged; row 2 zero grad -> unchanged */
    memcpy(data_of(ps, 0), (float[]){6, 8, 6, 8, 1, 1}, 6 * sizeof(float));
    set_grad(ps, 0, (float[]){0.6f, 0.8f, 0.03f, 0.04f, 0, 0});
    /* 0.bias: zero weight (bias at init) -> limit 0.01 * max(0, 1e-3) = 1e-5, never 0 */
    set_grad(ps, 1, (float[]){0.6f, 0.8f});
    /* 1.weight: large gradient, excluded by default */
    memcpy(data_of(ps, 2), (float[]){1, 1}, 2 * sizeof(float));
    set_grad(ps, 2, (float[]){30, 40});
}

START_TEST(v11_agc_unitwise_limits_and_default_exclude)
{
    cn_paramset ps;
    agc_model(&ps);
    cJSON *j = NULL;
    ck_assert_ok(cn_json_parse("{\"mode\":\"agc\"}", "t", &j));
    cn_clip *c = NULL;
    ck_assert_ok(cn_clip_from_json(j, "clip", &ps, &c));
    /* the default exclude list is filled into the tree: the last layer */
    cJSON *ex = cJSON_GetObjectItem(j, "exclude");
    ck_assert_int_eq(cJSON_GetArraySize(ex), 1);
    ck_assert_str_eq(cJSON_GetArrayItem(ex, 0)->valuestring, "1.weight");
    ck_assert(cJSON_GetObjectItem(j, "clipping")->valuedouble == 0.01);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    float *g0 = grad_of(&ps, 0), *gb = grad_of(&ps, 1), *g1 = grad_of(&ps, 2);
    ck_assert_near(sqrt(cn_sumsq(g0, 2)), 0.1, 1e-7);                  /* row norm 1 -> 0.1     */
    ck_assert_near(g0[0] / g0[1], 0.75, 1e-6);                          /* direction kept        */
    ck_assert(g0[2] == 0.03f && g0[3] == 0.04f);                       /* 0.05 < 0.1: unchanged */
    ck_assert(g0[4] == 0 && g0[5] == 0);                                /* zero gradient row     */
    ck_assert_near(sqrt(cn_sumsq(gb, 2)), 1e-5, 1e-11);                 /* zero weight: 1e-5     */
    ck_assert(g1[0] == 30 && g1[1] == 40);                              /* excluded              */
    ck_assert(r->clipped == 1 && r->coef == 1.0);
    cn_clip_free(c);
    cJSON_Delete(j);
    cn_paramset_free(&ps);

    /* an explicit empty exclude list clips the last layer too: limit 0.01 * sqrt(2) */
    agc_model(&ps);
    c = mk("{\"mode\":\"agc\",\"exclude\":[]}", &ps);
    run(c, &ps, CN_CLIP_UPDATE);
    ck_assert_near(sqrt(cn_sumsq(grad_of(&ps, 2), 2)), 0.01 * sqrt(2.0), 1e-7);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* Feeds the 1-element gradient `v` through the stage. */
static const cn_clip_report *feed(cn_clip *c, cn_paramset *ps, float v, cn_clip_action expect)
{
    ps->grad[0] = v;
    return run(c, ps, expect);
}

START_TEST(v12_autoclip_first_step_no_clip_then_percentiles)
{
    const double pct[3] = {50, 0, 100}, want[3] = {2.5, 1, 4};
    for (int k = 0; k < 3; k++) {
        cn_paramset ps;
        int n = 1;
        mkps(&ps, 1, &n);
        char js[128];
        snprintf(js, sizeof js, "{\"mode\":\"autoclip\",\"percentile\":%g}", pct[k]);
        cn_clip *c = mk(js, &ps);
        const cn_clip_report *r = feed(c, &ps, 1, CN_CLIP_UPDATE);
        ck_assert(r->clipped == 0 && r->coef == 1 && isnan(r->autoclip_threshold));   /* no history */
        feed(c, &ps, 2, CN_CLIP_UPDATE);
        feed(c, &ps, -3, CN_CLIP_UPDATE);
        feed(c, &ps, 4, CN_CLIP_UPDATE);
        r = feed(c, &ps, 10, CN_CLIP_UPDATE);   /* history [1,2,3,4], before adding 10 */
        ck_assert_near(r->autoclip_threshold, want[k], 1e-12);
        ck_assert(r->threshold == r->autoclip_threshold && r->clipped == 1);
        ck_assert_near(ps.grad[0], want[k], 1e-5);
        cn_clip_free(c);
        cn_paramset_free(&ps);
    }
}
END_TEST

START_TEST(v12_autoclip_ring_wraps_and_skips_nonfinite_norms)
{
    cn_paramset ps;
    int n = 1;
    mkps(&ps, 1, &n);
    cn_clip *c = mk("{\"mode\":\"autoclip\",\"percentile\":0,\"history\":3,\"on_nonfinite\":\"propagate\"}", &ps);
    feed(c, &ps, 1, CN_CLIP_UPDATE);
    feed(c, &ps, 2, CN_CLIP_UPDATE);
    feed(c, &ps, 3, CN_CLIP_UPDATE);
    const cn_clip_report *r = feed(c, &ps, 4, CN_CLIP_UPDATE);   /* history [1,2,3] */
    ck_assert(r->autoclip_threshold == 1.0);
    r = feed(c, &ps, NAN, CN_CLIP_UPDATE);                        /* history [2,3,4]: 1 dropped */
    ck_assert(r->autoclip_threshold == 2.0);
    r = feed(c, &ps, 0.5f, CN_CLIP_UPDATE);                       /* NaN not added: still [2,3,4] */
    ck_assert(r->autoclip_threshold == 2.0 && r->clipped == 0);
    cn_clip_free(c);

    /* fallback_max_norm clips while the history is empty */
    c = mk("{\"mode\":\"autoclip\",\"fallback_max_norm\":1}", &ps);
    r = feed(c, &ps, 10, CN_CLIP_UPDATE);
    ck_assert(r->clipped == 1 && r->threshold == 1.0 && isnan(r->autoclip_threshold));
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* The reference AutoClip threshold: sort the window, numpy's linear percentile. */
static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double ref_percentile(const double *ring, int n, double p)
{
    double s[16];
    memcpy(s, ring, (size_t)n * sizeof(double));
    qsort(s, (size_t)n, sizeof(double), cmp_dbl);
    double rank = p / 100.0 * (double)(n - 1);
    int lo = (int)floor(rank);
    if (lo >= n - 1) return s[n - 1];
    return s[lo] + (rank - (double)lo) * (s[lo + 1] - s[lo]);
}

/* The incrementally sorted window gives bit-for-bit the threshold of sorting the ring every step: norms
 * with repeats (several equal values in the window, evicted one at a time), NaN steps (not added), a
 * wrapped ring, and a save/load into a fresh stage half-way (the sorted copy rebuilt from the ring). */
START_TEST(autoclip_sorted_window_matches_sorting_the_history)
{
    static const double pct[] = {0, 10, 37.5, 50, 90, 100};
    for (int k = 0; k < 6; k++) {
        cn_paramset ps;
        int n = 1;
        mkps(&ps, 1, &n);
        char js[160];
        snprintf(js, sizeof js, "{\"mode\":\"autoclip\",\"percentile\":%g,\"history\":7,\"on_nonfinite\":\"propagate\"}",
                 pct[k]);
        cn_clip *c = mk(js, &ps);
        double ring[7];
        int count = 0, pos = 0;
        uint64_t x = 12345 + (uint64_t)k;
        for (int step = 0; step < 200; step++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            float v = (float)((x >> 40) % 9) * 0.25f;           /* 0 .. 2, many repeats */
            if ((x >> 20) % 13 == 0) v = NAN;
            if ((x >> 24) % 3 == 0) v = -v;                      /* |g| is the norm */
            const cn_clip_report *r = feed(c, &ps, v, CN_CLIP_UPDATE);
            if (count == 0) {
                ck_assert(isnan(r->autoclip_threshold));
            } else {
                double want = ref_percentile(ring, count, pct[k]);
                ck_assert_msg(memcmp(&r->autoclip_threshold, &want, sizeof want) == 0,
                              "pct %g step %d: threshold %.17g, sorting gives %.17g", pct[k], step,
                              r->autoclip_threshold, want);
            }
            if (!isnan(v)) {
                ring[pos] = fabs((double)v);
                pos = (pos + 1) % 7;
                if (count < 7) count++;
            }
            if (step == 100) {   /* continue in a fresh stage loaded from a checkpoint */
                cn_clip *b = mk(js, &ps);
                cn_state st;
                cn_state_init(&st);
                ck_assert_ok(cn_clip_save_state(c, &st));
                ck_assert_ok(cn_clip_load_state(b, &st));
                cn_state_free(&st);
                cn_clip_free(c);
                c = b;
            }
        }
        cn_clip_free(c);
        cn_paramset_free(&ps);
    }
}
END_TEST

/* Loading rebuilds the sorted window from the ring, so a ring autoclip could not have written is refused
 * (a partly filled ring is written from 0: pos == count; entries are finite norms), and a refused load
 * leaves the stage as it was. */
START_TEST(autoclip_load_rejects_a_ring_it_could_not_have_written)
{
    cn_paramset ps;
    int n = 1;
    mkps(&ps, 1, &n);
    const char *js = "{\"mode\":\"autoclip\",\"percentile\":50,\"history\":4}";
    cn_clip *a = mk(js, &ps), *b = mk(js, &ps);
    feed(a, &ps, 1, CN_CLIP_UPDATE);
    feed(a, &ps, 3, CN_CLIP_UPDATE);
    feed(b, &ps, 8, CN_CLIP_UPDATE);
    feed(b, &ps, 2, CN_CLIP_UPDATE);
    feed(b, &ps, 4, CN_CLIP_UPDATE);   /* b's window: [8, 2, 4], median 4 */
    cn_state st;
    cn_state_init(&st);
    ck_assert_ok(cn_clip_save_state(a, &st));
    cn_state_item *pos = (cn_state_item *)cn_state_find(&st, "clip.0.pos");
    cn_state_item *hist = (cn_state_item *)cn_state_find(&st, "clip.0.history");
    ck_assert(pos && hist);
    int64_t *p = pos->data;
    double *h = hist->data;
    *p = 3;                            /* count 2 but pos 3 */
    ck_assert_int_eq(cn_clip_load_state(b, &st), CN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "count 2 / pos 3"));
    *p = 2;
    h[1] = NAN;                        /* a NaN never enters the history */
    ck_assert_int_eq(cn_clip_load_state(b, &st), CN_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "clip.0.history': entry 1 is nan"));
    h[1] = -2;
    ck_assert_int_eq(cn_clip_load_state(b, &st), CN_ERR_FORMAT);
    const cn_clip_report *r = feed(b, &ps, 0.5f, CN_CLIP_UPDATE);   /* b unchanged by the refused loads */
    ck_assert(r->autoclip_threshold == 4.0);
    h[1] = 3;
    ck_assert_ok(cn_clip_load_state(b, &st));
    r = feed(b, &ps, 0.5f, CN_CLIP_UPDATE);                         /* a's window [1, 3] */
    ck_assert(r->autoclip_threshold == 2.0);
    cn_state_free(&st);
    cn_clip_free(a);
    cn_clip_free(b);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v13_zclip_warmup_then_zscore_threshold)
{
    cn_paramset ps;
    int n = 1;
    mkps(&ps, 1, &n);
    cn_clip *c = mk("{\"mode\":\"zclip\",\"warmup\":4}", &ps);
    const float warm[4] = {1, 1, 2, 2};
    for (int i = 0; i < 4; i++) {
        const cn_clip_report *r = feed(c, &ps, warm[i], CN_CLIP_UPDATE);
        ck_assert(r->clipped == 0 && isnan(r->zclip_z));
    }
    const cn_clip_report *r = feed(c, &ps, 10, CN_CLIP_UPDATE);
    ck_assert(r->zclip_mu == 1.5 && r->zclip_sigma == 0.5);
    ck_assert_near(r->zclip_z, 8.5 / 0.500001, 1e-9);
    ck_assert_near(r->zclip_z, 16.99997, 1e-5);
    ck_assert_near(r->threshold, 1.5 + 6.25 * 0.5 / r->zclip_z, 1e-12);
    ck_assert_near(r->threshold, 1.68382, 1e-5);
    ck_assert_near(r->coef, 0.168382, 1e-6);
    ck_assert(r->clipped == 1);
    ck_assert_near(ps.grad[0], 1.68382, 1e-5);
    cn_clip_free(c);

    /* constant warm-up: sigma 0, any N clearly above mu clips to mu */
    c = mk("{\"mode\":\"zclip\",\"warmup\":4}", &ps);
    for (int i = 0; i < 4; i++) feed(c, &ps, 2, CN_CLIP_UPDATE);
    r = feed(c, &ps, 3, CN_CLIP_UPDATE);
    ck_assert(r->zclip_sigma == 0 && r->clipped == 1 && r->threshold == 2.0);
    ck_assert_near(ps.grad[0], 2.0, 1e-5);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v13_zclip_ema_update_uses_threshold_when_clipped)
{
    cn_paramset ps;
    int n = 1;
    mkps(&ps, 1, &n);
    cn_clip *c = mk("{\"mode\":\"zclip\",\"warmup\":4,\"alpha\":0.5}", &ps);
    const float warm[4] = {1, 1, 2, 2};
    for (int i = 0; i < 4; i++) feed(c, &ps, warm[i], CN_CLIP_UPDATE);
    const cn_clip_report *r = feed(c, &ps, 10, CN_CLIP_UPDATE);
    double x = r->threshold;
    double mu = 0.5 * 1.5 + 0.5 * x, var = 0.5 * 0.25 + 0.5 * (x - mu) * (x - mu);
    r = feed(c, &ps, 1.5f, CN_CLIP_UPDATE);   /* not clipped: reports the updated mu/sigma */
    ck_assert(r->clipped == 0);
    ck_assert_near(r->zclip_mu, mu, 1e-15);
    ck_assert_near(r->zclip_sigma, sqrt(var), 1e-15);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* [3, NaN] and [4]: one NaN in the first tensor */
static void nan_case(cn_paramset *ps)
{
    int sz[2] = {2, 1};
    mkps(ps, 2, sz);
    set_grad(ps, 0, (float[]){3, NAN});
    set_grad(ps, 1, (float[]){4});
}

START_TEST(v14_nonfinite_propagate_makes_all_nan)
{
    cn_paramset ps;
    nan_case(&ps);
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"on_nonfinite\":\"propagate\"}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(isnan(grad_of(&ps, 0)[0]) && isnan(grad_of(&ps, 0)[1]) && isnan(grad_of(&ps, 1)[0]));
    ck_assert(isnan(r->norm_pre) && isnan(r->coef) && r->n_nonfinite == 1);
    ck_assert_str_eq(r->first_nonfinite, "0.weight");
    cn_clip_free(c);
    cn_paramset_free(&ps);

    /* +inf: PyTorch gives coef 0, so finite entries become 0 and the infinite one NaN */
    int sz[2] = {2, 1};
    mkps(&ps, 2, sz);
    set_grad(&ps, 0, (float[]){3, 5});
    set_grad(&ps, 1, (float[]){INFINITY});
    c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"on_nonfinite\":\"propagate\"}", &ps);
    r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->coef == 0 && isinf(r->norm_pre));
    ck_assert(grad_of(&ps, 0)[0] == 0 && grad_of(&ps, 0)[1] == 0 && isnan(grad_of(&ps, 1)[0]));
    ck_assert_str_eq(r->first_nonfinite, "1.weight");
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v14_nonfinite_stop_is_default_and_leaves_everything)
{
    cn_paramset ps;
    nan_case(&ps);
    tu_fill_uniform(ps.data, ps.total, 3, -1, 1);
    float g0[64], w0[64];
    memcpy(g0, ps.grad, ps.total * sizeof(float));
    memcpy(w0, ps.data, ps.total * sizeof(float));
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1}", &ps);
    ck_assert_int_eq(cn_clip_policy(c), CN_NONFINITE_STOP);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_STOP);
    ck_assert(memcmp(g0, ps.grad, ps.total * sizeof(float)) == 0 && memcmp(w0, ps.data, ps.total * sizeof(float)) == 0);
    ck_assert(r->n_nonfinite == 1 && r->skipped == 0);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* The optimizer side (Adam's t and moments unchanged) needs src/optim; here: the
 * action, untouched gradients/weights, the counters, and the switch to stop. */
START_TEST(v14_nonfinite_skip_counts_then_stops)
{
    cn_paramset ps;
    nan_case(&ps);
    float g0[64];
    memcpy(g0, ps.grad, ps.total * sizeof(float));
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"on_nonfinite\":\"skip\",\"max_consecutive_skips\":2}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_SKIP);
    ck_assert(r->skipped == 1 && r->consecutive_skips == 1 && r->total_skips == 1);
    ck_assert(memcmp(g0, ps.grad, ps.total * sizeof(float)) == 0);
    r = run(c, &ps, CN_CLIP_SKIP);
    ck_assert(r->consecutive_skips == 2 && r->total_skips == 2);
    r = run(c, &ps, CN_CLIP_STOP);            /* a third in a row: behave as stop */
    ck_assert(r->skipped == 0 && memcmp(g0, ps.grad, ps.total * sizeof(float)) == 0);
    /* a good step resets the run of skips; the total stays */
    set_grad(&ps, 0, (float[]){0.1f, 0.1f});
    r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->consecutive_skips == 0 && r->total_skips == 2 && r->skipped == 0);
    set_grad(&ps, 0, (float[]){3, NAN});
    r = run(c, &ps, CN_CLIP_SKIP);
    ck_assert(r->consecutive_skips == 1 && r->total_skips == 3);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v14_nonfinite_zero_acts_as_if_element_were_zero)
{
    cn_paramset ps, ref;
    nan_case(&ps);
    int sz[2] = {2, 1};
    mkps(&ref, 2, sz);
    set_grad(&ref, 0, (float[]){3, 0});
    set_grad(&ref, 1, (float[]){4});
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"on_nonfinite\":\"zero\"}", &ps);
    cn_clip *cr = mk("{\"mode\":\"norm\",\"max_norm\":1}", &ref);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    const cn_clip_report *rr = run(cr, &ref, CN_CLIP_UPDATE);
    ck_assert(memcmp(ps.grad, ref.grad, ps.total * sizeof(float)) == 0);
    ck_assert(r->coef == rr->coef && r->norm_post == rr->norm_post);
    ck_assert(r->n_nonfinite == 1 && isnan(r->norm_pre));   /* the report shows what came in */
    cn_clip_free(c);
    cn_clip_free(cr);
    cn_paramset_free(&ps);
    cn_paramset_free(&ref);
}
END_TEST

START_TEST(v14_nonfinite_loss_counts_as_nonfinite_gradient)
{
    cn_paramset ps;
    one_tensor(&ps, 2, (float[]){3, 4});
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1}", &ps);
    cn_clip_action a;
    ck_assert_ok(cn_clip_run(c, &ps, 1, &a));
    ck_assert_int_eq(a, CN_CLIP_STOP);
    ck_assert(ps.grad[0] == 3 && ps.grad[1] == 4 && cn_clip_last_report(c)->loss_nonfinite == 1);
    cn_clip_free(c);
    c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"on_nonfinite\":\"skip\"}", &ps);
    ck_assert_ok(cn_clip_run(c, &ps, 1, &a));
    ck_assert_int_eq(a, CN_CLIP_SKIP);
    cn_clip_free(c);
    c = mk("{\"mode\":\"none\",\"on_nonfinite\":\"zero\"}", &ps);   /* no gradient element is trusted */
    ck_assert_ok(cn_clip_run(c, &ps, 1, &a));
    ck_assert_int_eq(a, CN_CLIP_UPDATE);
    ck_assert(ps.grad[0] == 0 && ps.grad[1] == 0);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* Pins the documented `zero` rule for a non-finite LOSS: every element becomes 0, finite ones included
 * (each derives from the NaN loss; there may be no non-finite element at all), the modes see a zero
 * gradient, the optimizer is called, and the report still describes what came in. */
START_TEST(zero_policy_with_nonfinite_loss_zeroes_every_element)
{
    cn_paramset ps;
    nan_case(&ps);                                  /* [3, NaN], [4] */
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"on_nonfinite\":\"zero\"}", &ps);
    cn_clip_action a = (cn_clip_action)-1;
    ck_assert_ok(cn_clip_run(c, &ps, 1, &a));
    ck_assert_int_eq(a, CN_CLIP_UPDATE);
    for (size_t j = 0; j < ps.total; j++) ck_assert_msg(ps.grad[j] == 0 && !signbit(ps.grad[j]), "grad[%zu]", j);
    const cn_clip_report *r = cn_clip_last_report(c);
    ck_assert(r->loss_nonfinite == 1 && r->n_nonfinite == 1 && isnan(r->norm_pre) && isnan(r->max_abs));
    ck_assert_str_eq(r->first_nonfinite, "0.weight");
    ck_assert(r->norm_post == 0 && r->coef == 1 && r->clipped == 0 && r->skipped == 0);
    for (int i = 0; i < 2; i++) ck_assert(r->tensor_norm_post[i] == 0);
    /* a finite gradient with a non-finite loss: zeroed too (nothing non-finite to zero element-wise) */
    set_grad(&ps, 0, (float[]){3, 0});
    set_grad(&ps, 1, (float[]){4});
    ck_assert_ok(cn_clip_run(c, &ps, 1, &a));
    ck_assert_int_eq(a, CN_CLIP_UPDATE);
    ck_assert(ps.grad[0] == 0 && ps.grad[1] == 0 && grad_of(&ps, 1)[0] == 0);
    r = cn_clip_last_report(c);
    ck_assert(r->n_nonfinite == 0 && r->norm_pre == 5 && r->norm_post == 0 && r->coef == 1);
    /* the same gradient with a finite loss: only the clipping acts */
    ck_assert_ok(cn_clip_run(c, &ps, 0, &a));   /* zeros in, zeros out */
    set_grad(&ps, 0, (float[]){3, 0});
    set_grad(&ps, 1, (float[]){4});
    ck_assert_ok(cn_clip_run(c, &ps, 0, &a));
    ck_assert_near(ps.grad[0], 0.6, 1e-6);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* loss = sum(w * a): d loss / d w = a, accumulated over micro-batches. */
START_TEST(v15_accumulation_clips_the_mean_once)
{
    cn_paramset ps;
    int n = 2;
    mkps(&ps, 1, &n);
    cn_graph g;
    ck_assert_ok(cn_graph_init(&g));
    float micro[2][2] = {{2, 0}, {0, 2}};
    cn_paramset_zero_grad(&ps);
    for (int m = 0; m < 2; m++) {
        ck_assert_ok(cn_graph_reset(&g));
        cn_tensor at;
        ck_assert_ok(cn_tensor_view(&at, micro[m], 1, &n));
        cn_var *loss = cn_sum(&g, cn_mul(&g, cn_param(&g, &ps, 0), cn_input(&g, &at)));
        ck_assert_ok(cn_backward(&g, loss));
    }
    ck_assert(ps.grad[0] == 2 && ps.grad[1] == 2);
    for (size_t j = 0; j < ps.total; j++) ps.grad[j] /= 2;   /* the trainer divides by grad_accum */
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    /* eps 1e-6 moves 1/sqrt(2) by 5e-7 (PyTorch gives 0.707106292 too); the
     * wrong order (clip each micro-batch, then average) would give 0.4472/0.8944 */
    ck_assert_near(ps.grad[0], 0.70710678, 1e-6);
    ck_assert_near(ps.grad[1], 0.70710678, 1e-6);
    ck_assert(ps.grad[0] == ps.grad[1]);
    ck_assert_near(r->norm_pre, sqrt(2.0), 1e-12);
    cn_clip_free(c);
    cn_graph_free(&g);
    cn_paramset_free(&ps);
}
END_TEST

/* The trainer's step, as the contract says: the optimizer runs only on UPDATE. */
static cn_clip_action clip_then_step(cn_clip *c, cn_optim *o, cn_paramset *ps, double lr)
{
    cn_clip_action a;
    ck_assert_ok(cn_clip_run(c, ps, 0, &a));
    if (a == CN_CLIP_UPDATE) ck_assert_ok(cn_optim_step(o, ps, lr));
    return a;
}

/* Snapshot of every "optim.*" state item's bytes. */
static size_t optim_snapshot(const cn_optim *o, const cn_paramset *ps, unsigned char *buf, size_t cap)
{
    cn_state st;
    cn_state_init(&st);
    ck_assert_ok(cn_optim_save_state(o, ps, &st));
    size_t k = 0;
    for (int i = 0; i < st.count; i++) {
        size_t n = cn_state_item_numel(&st.items[i]) * cn_dtype_size(st.items[i].dtype);
        ck_assert(k + n <= cap);
        memcpy(buf + k, st.items[i].data, n);
        k += n;
    }
    cn_state_free(&st);
    return k;
}

START_TEST(v14_skip_leaves_adam_step_and_moments_untouched)
{
    cn_paramset ps;
    int sz[2] = {3, 2};
    mkps(&ps, 2, sz);
    fill_grads(&ps, 1, -1, 1);
    cJSON *oj = NULL;
    ck_assert_ok(cn_json_parse("{\"type\":\"adam\",\"lr\":0.01}", "t", &oj));
    cn_optim *o = NULL;
    ck_assert_ok(cn_optim_from_json(oj, "optimizer", &ps, &o));
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"on_nonfinite\":\"skip\"}", &ps);
    for (int s = 0; s < 2; s++) {
        fill_grads(&ps, 10 + (uint64_t)s, -1, 1);
        ck_assert_int_eq(clip_then_step(c, o, &ps, 0.01), CN_CLIP_UPDATE);
    }
    static unsigned char before[4096], after[4096];
    size_t nb = optim_snapshot(o, &ps, before, sizeof before);
    float w0[64];
    memcpy(w0, ps.data, ps.total * sizeof(float));
    grad_of(&ps, 1)[1] = NAN;
    ck_assert_int_eq(clip_then_step(c, o, &ps, 0.01), CN_CLIP_SKIP);
    ck_assert_int_eq(cn_optim_steps(o), 2);
    ck_assert_uint_eq(optim_snapshot(o, &ps, after, sizeof after), nb);
    ck_assert(memcmp(before, after, nb) == 0);
    ck_assert(memcmp(w0, ps.data, ps.total * sizeof(float)) == 0);
    ck_assert_int_eq(cn_clip_last_report(c)->total_skips, 1);
    fill_grads(&ps, 20, -1, 1);                     /* the next good step updates again */
    ck_assert_int_eq(clip_then_step(c, o, &ps, 0.01), CN_CLIP_UPDATE);
    ck_assert_int_eq(cn_optim_steps(o), 3);
    cn_clip_free(c);
    cn_optim_free(o);
    cJSON_Delete(oj);
    cn_paramset_free(&ps);
}
END_TEST

/* With plain SGD (lr 1) the update is exactly minus the clipped MEAN gradient. */
START_TEST(v15_accumulation_then_sgd_updates_with_the_clipped_mean)
{
    cn_paramset ps;
    int n = 2;
    mkps(&ps, 1, &n);
    cJSON *oj = NULL;
    ck_assert_ok(cn_json_parse("{\"type\":\"sgd\",\"lr\":1}", "t", &oj));
    cn_optim *o = NULL;
    ck_assert_ok(cn_optim_from_json(oj, "optimizer", &ps, &o));
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"eps\":0}", &ps);
    cn_paramset_zero_grad(&ps);
    ps.grad[0] += 2;            /* micro-batch 1: [2, 0] */
    ps.grad[1] += 2;            /* micro-batch 2: [0, 2] */
    ps.grad[0] /= 2;            /* mean over grad_accum = 2 */
    ps.grad[1] /= 2;
    ck_assert_int_eq(clip_then_step(c, o, &ps, 1.0), CN_CLIP_UPDATE);
    float want = (float)(1.0 / sqrt(2.0));
    ck_assert(ps.data[0] == -want && ps.data[1] == -want);
    cn_clip_free(c);
    cn_optim_free(o);
    cJSON_Delete(oj);
    cn_paramset_free(&ps);
}
END_TEST

static const struct {
    const char *json, *error;
} k_bad_configs[] = {
    {"{\"mode\":\"norm\",\"max_norm\":-1}", "clip.max_norm: expected a number > 0, got -1"},
    {"{\"mode\":\"norm\",\"max_norm\":0}", "clip.max_norm: expected a number > 0, got 0"},
    {"{\"mode\":\"norm\"}", "clip.max_norm: required key is missing"},
    {"{\"mode\":\"norm\",\"max_norm\":\"big\"}", "clip.max_norm: expected a number > 0, got \"big\""},
    {"[{\"mode\":\"none\"},{\"mode\":\"foo\"}]", "clip.1.mode: unknown mode \"foo\" (known: none, value, norm, norm_per_tensor, agc, autoclip, zclip"},
    {"{\"mode\":\"norm\",\"max_norm\":1,\"max_nrom\":2}", "clip.max_nrom: unknown key (did you mean \"max_norm\"?)"},
    {"{\"mode\":\"value\",\"clip_value\":1,\"max_norm\":1}", "clip.max_norm: unknown key"},
    {"{\"mode\":\"value\"}", "clip.clip_value: required key is missing"},
    {"{\"mode\":\"norm\",\"max_norm\":1,\"norm_type\":\"two\"}", "clip.norm_type: expected a number >= 1 or \"inf\", got \"two\""},
    {"{\"mode\":\"norm\",\"max_norm\":1,\"norm_type\":-2}", "clip.norm_type: expected a number >= 1 or \"inf\", got -2"},
    {"{\"mode\":\"norm\",\"max_norm\":1,\"norm_type\":0.5}", "clip.norm_type: expected a number >= 1 or \"inf\", got 0.5"},
    {"{\"mode\":\"norm\",\"max_norm\":1,\"norm_type\":1e-300}", "clip.norm_type: expected a number >= 1 or \"inf\", got 1e-300"},
    {"{\"mode\":\"norm\",\"max_norm\":1,\"eps\":-1}", "clip.eps: expected a number >= 0, got -1"},
    {"{\"mode\":\"norm\",\"max_norm\":1,\"on_nonfinite\":\"ignore\"}", "clip.on_nonfinite: expected one of \"propagate\", \"stop\", \"skip\", \"zero\", got \"ignore\""},
    {"{\"mode\":\"none\",\"max_consecutive_skips\":-1}", "clip.max_consecutive_skips: expected an integer >= 0, got -1"},
    {"[{\"mode\":\"norm\",\"max_norm\":1},{\"mode\":\"zclip\"}]", "clip.1: a second global-norm stage (\"zclip\"); clip.0 is already one (\"norm\")"},
    {"[{\"mode\":\"value\",\"clip_value\":1,\"on_nonfinite\":\"skip\"},{\"mode\":\"none\",\"on_nonfinite\":\"zero\"}]", "clip.1.on_nonfinite: conflicts with clip.0.on_nonfinite (\"skip\")"},
    {"{\"mode\":\"agc\",\"exclude\":[\"nope\"]}", "clip.exclude.0: no parameter named \"nope\""},
    {"{\"mode\":\"agc\",\"exclude\":\"0.weight\"}", "clip.exclude: expected a list of parameter names"},
    {"{\"mode\":\"autoclip\",\"percentile\":101}", "clip.percentile: expected a number in [0, 100], got 101"},
    {"{\"mode\":\"autoclip\",\"history\":0}", "clip.history: expected an integer in [1, "},
    {"{\"mode\":\"zclip\",\"alpha\":1}", "clip.alpha: expected a number in (0, 1), got 1"},
    {"{\"mode\":\"zclip\",\"max_norm\":-3}", "clip.max_norm: expected a number > 0 or null, got -3"},
    {"{\"max_norm\":1}", "clip.mode: required key is missing"},
    {"[]", "clip: empty list of stages"},
    {"3", "clip: expected a stage object or a list of them, got 3"},
    {"[{\"mode\":\"none\"}, 4]", "clip.1: expected an object, got 4"},
};

START_TEST(v16_config_errors_name_the_path)
{
    cn_paramset ps;
    int sz[2] = {2, 2};
    mkps(&ps, 2, sz);
    cn_clip *c = (cn_clip *)&ps;   /* must be reset to NULL on error */
    ck_assert_int_eq(cn_clip_from_string(k_bad_configs[_i].json, &ps, &c), CN_ERR_ARG);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(cn_errmsg(), k_bad_configs[_i].error) == cn_errmsg(), "config %s:\n  got      %s\n  expected %s...",
                  k_bad_configs[_i].json, cn_errmsg(), k_bad_configs[_i].error);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(v16_config_nan_threshold_is_an_error)
{
    cn_paramset ps;
    int n = 2;
    mkps(&ps, 1, &n);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mode", "norm");
    cJSON_AddNumberToObject(j, "max_norm", NAN);
    cn_clip *c = NULL;
    ck_assert_int_eq(cn_clip_from_json(j, "clip", &ps, &c), CN_ERR_ARG);
    ck_assert_str_eq(cn_errmsg(), "clip.max_norm: expected a number > 0, got nan");
    cJSON_Delete(j);
    cn_paramset_free(&ps);
}
END_TEST

/* ======================= more behaviour ======================= */

START_TEST(config_defaults_are_filled_into_the_tree)
{
    cn_paramset ps;
    int n = 2;
    mkps(&ps, 1, &n);
    cJSON *j = NULL;
    ck_assert_ok(cn_json_parse("[{\"mode\":\"value\",\"clip_value\":5,\"on_nonfinite\":\"skip\"},{\"mode\":\"norm\",\"max_norm\":1}]", "t", &j));
    cn_clip *c = NULL;
    ck_assert_ok(cn_clip_from_json(j, "clip", &ps, &c));
    cJSON *s1 = cJSON_GetArrayItem(j, 1);
    ck_assert(cJSON_GetObjectItem(s1, "eps")->valuedouble == 1e-6);
    ck_assert(cJSON_GetObjectItem(s1, "norm_type")->valuedouble == 2);
    ck_assert_str_eq(cJSON_GetObjectItem(s1, "on_nonfinite")->valuestring, "skip");   /* shared policy */
    ck_assert(cJSON_GetObjectItem(s1, "max_consecutive_skips")->valuedouble == 10);
    ck_assert_int_eq(cn_clip_policy(c), CN_NONFINITE_SKIP);
    ck_assert_int_eq(cn_clip_n_stages(c), 2);
    ck_assert_int_eq(cn_clip_has_threshold(c), 1);
    cn_clip_free(c);
    cJSON_Delete(j);

    ck_assert_ok(cn_json_parse("{\"mode\":\"zclip\"}", "t", &j));
    ck_assert_ok(cn_clip_from_json(j, "clip", &ps, &c));
    ck_assert(cJSON_GetObjectItem(j, "alpha")->valuedouble == 0.97);
    ck_assert(cJSON_GetObjectItem(j, "z_thresh")->valuedouble == 2.5);
    ck_assert(cJSON_GetObjectItem(j, "warmup")->valuedouble == 25);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "max_norm")));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "on_nonfinite")->valuestring, "stop");
    cn_clip_free(c);
    cJSON_Delete(j);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(list_applies_stages_in_order)
{
    cn_paramset ps;
    one_tensor(&ps, 2, (float[]){10, 0.5f});
    /* value 1 first: [1, 0.5] (norm 1.118), then norm 1: coef 1/(1.118+1e-6) */
    cn_clip *c = mk("[{\"mode\":\"value\",\"clip_value\":1},{\"mode\":\"norm\",\"max_norm\":1}]", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    double n1 = sqrt(1.25);
    ck_assert_near(r->coef, 1.0 / (n1 + 1e-6), 1e-15);
    ck_assert_near(ps.grad[0], 1.0 / (n1 + 1e-6), 1e-7);
    ck_assert(r->n_elems_clipped == 1 && r->clipped == 1 && r->threshold == 1.0);
    ck_assert_near(r->norm_pre, sqrt(100.25), 1e-12);   /* the incoming gradient */
    ck_assert_near(r->norm_post, 1.0, 1e-6);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(separate_norm_and_scale_calls_match_the_stage)
{
    cn_paramset a, b;
    int sz[2] = {7, 5};
    mkps(&a, 2, sz);
    mkps(&b, 2, sz);
    fill_grads(&a, 5, -3, 3);
    memcpy(b.grad, a.grad, a.total * sizeof(float));
    cn_clip_stats s;
    ck_assert_ok(cn_clip_stats_init(&s, 2));
    ck_assert_ok(cn_clip_compute_stats(&a, &s));   /* (a trainer could all-reduce s here) */
    double N = cn_clip_total_norm(&s, &a, 2);
    cn_clip_scale(&a, cn_clip_coef(0.5, N, 1e-6));
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":0.5}", &b);
    run(c, &b, CN_CLIP_UPDATE);
    ck_assert(memcmp(a.grad, b.grad, a.total * sizeof(float)) == 0);
    cn_clip_stats_free(&s);
    cn_clip_free(c);
    cn_paramset_free(&a);
    cn_paramset_free(&b);
}
END_TEST

START_TEST(run_allocates_nothing_per_step)
{
    cn_paramset ps;
    int sz[3] = {4, 3, 2};
    mkps(&ps, 3, sz);
    cn_clip *c = mk("[{\"mode\":\"value\",\"clip_value\":2},{\"mode\":\"autoclip\",\"history\":5},"
                    "{\"mode\":\"norm_per_tensor\",\"max_norm\":3},{\"mode\":\"agc\"}]", &ps);
    cn_clip *z = mk("{\"mode\":\"zclip\",\"warmup\":2,\"on_nonfinite\":\"zero\"}", &ps);
    uint64_t before = cn_alloc_count();
    for (int step = 0; step < 12; step++) {
        fill_grads(&ps, 100 + (uint64_t)step, -4, 4);
        if (step == 7) ps.grad[3] = NAN;
        cn_clip_action a;
        ck_assert_ok(cn_clip_run(z, &ps, 0, &a));
        ck_assert_ok(cn_clip_run(c, &ps, 0, &a));
    }
    ck_assert_uint_eq(cn_alloc_count(), before);
    cn_clip_free(c);
    cn_clip_free(z);
    cn_paramset_free(&ps);
}
END_TEST

/* Runs A for `k` steps, saves, loads into a fresh B, then checks both give
 * bit-identical results on the same further steps. */
static void check_roundtrip(const char *json, int k)
{
    cn_paramset pa, pb;
    int n = 3;
    mkps(&pa, 1, &n);
    mkps(&pb, 1, &n);
    cn_clip *a = mk(json, &pa), *b = mk(json, &pb);
    cn_clip_action act;
    for (int s = 0; s < k; s++) {
        tu_fill_uniform(pa.grad, 3, 40 + (uint64_t)s, -1.0f - (float)s, 1.0f + (float)s);
        ck_assert_ok(cn_clip_run(a, &pa, 0, &act));
    }
    cn_state st;
    cn_state_init(&st);
    ck_assert_ok(cn_clip_save_state(a, &st));
    for (int i = 0; i < st.count; i++) ck_assert(!strncmp(st.items[i].name, "clip.", 5));
    ck_assert_ok(cn_clip_load_state(b, &st));
    cn_state_free(&st);
    for (int s = 0; s < 4; s++) {
        tu_fill_uniform(pa.grad, 3, 900 + (uint64_t)s, -9, 9);
        memcpy(pb.grad, pa.grad, 3 * sizeof(float));
        ck_assert_ok(cn_clip_run(a, &pa, 0, &act));
        ck_assert_ok(cn_clip_run(b, &pb, 0, &act));
        const cn_clip_report *ra = cn_clip_last_report(a), *rb = cn_clip_last_report(b);
        ck_assert(memcmp(pa.grad, pb.grad, 3 * sizeof(float)) == 0);
        ck_assert(ra->coef == rb->coef);
        ck_assert(memcmp(&ra->threshold, &rb->threshold, sizeof(double)) == 0);
        ck_assert(memcmp(&ra->autoclip_threshold, &rb->autoclip_threshold, sizeof(double)) == 0);
        ck_assert(memcmp(&ra->zclip_mu, &rb->zclip_mu, sizeof(double)) == 0);
        ck_assert(memcmp(&ra->zclip_sigma, &rb->zclip_sigma, sizeof(double)) == 0);
    }
    cn_clip_free(a);
    cn_clip_free(b);
    cn_paramset_free(&pa);
    cn_paramset_free(&pb);
}

START_TEST(save_load_autoclip_history_roundtrips_exactly)
{
    check_roundtrip("{\"mode\":\"autoclip\",\"history\":4,\"percentile\":30}", 6);   /* wrapped */
    check_roundtrip("{\"mode\":\"autoclip\",\"history\":10}", 3);                     /* partial */
}
END_TEST

START_TEST(save_load_zclip_state_roundtrips_exactly)
{
    check_roundtrip("{\"mode\":\"zclip\",\"warmup\":5}", 3);    /* mid warm-up */
    check_roundtrip("{\"mode\":\"zclip\",\"warmup\":3}", 8);    /* EMA phase   */
    check_roundtrip("[{\"mode\":\"value\",\"clip_value\":4},{\"mode\":\"zclip\",\"warmup\":2}]", 5);
}
END_TEST

START_TEST(save_load_names_items_and_rejects_mismatch)
{
    cn_paramset ps;
    int n = 1;
    mkps(&ps, 1, &n);
    cn_clip *a = mk("[{\"mode\":\"value\",\"clip_value\":4},{\"mode\":\"autoclip\",\"history\":8}]", &ps);
    cn_clip *b = mk("{\"mode\":\"autoclip\",\"history\":8}", &ps);
    cn_clip *c = mk("[{\"mode\":\"none\"},{\"mode\":\"autoclip\",\"history\":9}]", &ps);
    cn_state st;
    cn_state_init(&st);
    ck_assert_ok(cn_clip_save_state(a, &st));
    const cn_state_item *h = cn_state_find(&st, "clip.1.history");
    ck_assert_ptr_nonnull(h);
    ck_assert(h->dtype == CN_DT_F64 && h->ndim == 1 && h->shape[0] == 8);
    ck_assert_ptr_nonnull(cn_state_find(&st, "clip.1.count"));
    ck_assert_ptr_nonnull(cn_state_find(&st, "clip.total_skips"));
    ck_assert_int_eq(cn_clip_load_state(b, &st), CN_ERR_FORMAT);   /* its state is under clip.0 */
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "clip.0."));
    ck_assert_int_eq(cn_clip_load_state(c, &st), CN_ERR_FORMAT);   /* history 9 vs 8 */
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "clip.1.history"));
    cn_state_free(&st);
    cn_clip_free(a);
    cn_clip_free(b);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* ---- a custom mode from C: "sign" (g <- scale * sign(g); signSGD, Bernstein et al. 2018) ---- */

typedef struct {
    cn_clipper base;
    float scale;
} sign_clipper;

static cn_status sign_apply(cn_clipper *self, cn_clip_ctx *ctx)
{
    float s = ((sign_clipper *)self)->scale;
    for (size_t j = 0; j < ctx->ps->total; j++) {
        float g = ctx->ps->grad[j];
        ctx->ps->grad[j] = g > 0 ? s : g < 0 ? -s : g;   /* 0 and NaN stay */
    }
    ctx->modified = ctx->clipped = 1;
    ctx->threshold = s;
    return CN_OK;
}

static void sign_free(cn_clipper *self) { cn_free(self); }
static const cn_clipper_ops sign_ops = {sign_apply, NULL, NULL, sign_free, NULL};
static const char *const sign_keys[] = {"scale", NULL};

static cn_status sign_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    double s;
    cn_status st = cn_json_number(obj, path, "scale", &(cn_json_num){.def = 1.0, .lo = 0, .lo_open = 1, .hi = INFINITY}, &s);
    if (st) return st;
    sign_clipper *c = cn_calloc(1, sizeof *c);
    if (!c) return cn_error(CN_ERR_NOMEM, "out of memory");
    c->base.ops = &sign_ops;
    c->scale = (float)s;
    *out = &c->base;
    return CN_OK;
}

static const cn_clip_mode_def sign_mode = {"test_sign", sign_keys, 0, 1, sign_create};

START_TEST(custom_mode_registered_from_c_is_selected_from_json)
{
    ck_assert_ok(cn_clip_register(&sign_mode));
    ck_assert_ok(cn_clip_register(&sign_mode));   /* same def again: no-op */
    static const cn_clip_mode_def clash = {"test_sign", NULL, 0, 0, sign_create};
    ck_assert_int_eq(cn_clip_register(&clash), CN_ERR_ARG);
    static const cn_clip_mode_def builtin_clash = {"norm", NULL, 0, 0, sign_create};
    ck_assert_int_eq(cn_clip_register(&builtin_clash), CN_ERR_ARG);

    cn_paramset ps;
    one_tensor(&ps, 4, (float[]){3, -0.2f, 0, 7});
    cn_clip *c = mk("[{\"mode\":\"test_sign\",\"scale\":0.5},{\"mode\":\"norm\",\"max_norm\":100}]", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(ps.grad[0] == 0.5f && ps.grad[1] == -0.5f && ps.grad[2] == 0 && ps.grad[3] == 0.5f);
    ck_assert(r->clipped == 1 && r->coef == 1 && r->threshold == 100);
    ck_assert_near(r->norm_post, sqrt(0.75), 1e-7);
    cn_clip_free(c);
    /* its keys are checked like the built-ins' */
    ck_assert_int_eq(cn_clip_from_string("{\"mode\":\"test_sign\",\"scal\":1}", &ps, &c), CN_ERR_ARG);
    ck_assert_str_eq(cn_errmsg(), "clip.scal: unknown key (did you mean \"scale\"?)");
    char names[512];
    ck_assert_ptr_nonnull(strstr(cn_clip_mode_names(names, sizeof names), "test_sign"));
    cn_paramset_free(&ps);
}
END_TEST

/* A general norm_type p needs a pow() per element: the stage computes it once (report.norm_pre) and
 * leaves it in the statistics, where the norm mode reads it back instead of computing it again. */
START_TEST(general_p_norm_is_computed_once_and_handed_to_the_mode)
{
    cn_paramset ps;
    int sz[2] = {2, 1};
    mkps(&ps, 2, sz);
    set_grad(&ps, 0, (float[]){3, 0});
    set_grad(&ps, 1, (float[]){4});
    /* the cache: cn_clip_total_norm returns it for that p only, cn_clip_compute_stats clears it */
    cn_clip_stats s;
    ck_assert_ok(cn_clip_stats_init(&s, 2));
    s.norm_p_type = 7;
    ck_assert_ok(cn_clip_compute_stats(&ps, &s));
    ck_assert(s.norm_p_type == 0);
    s.norm_p_type = 3;
    s.norm_p = 42;
    ck_assert(cn_clip_total_norm(&s, &ps, 3) == 42);
    ck_assert_near(cn_clip_total_norm(&s, &ps, 4), pow(81.0 + 256.0, 0.25), 1e-12);
    ck_assert(cn_clip_total_norm(&s, &ps, 2) == 5);
    cn_clip_stats_free(&s);

    /* the stage: one p-norm, shared by the report and the norm mode */
    double N3 = cbrt(27.0 + 64.0);
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"norm_type\":3}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    const cn_clip_stats *pre = cn_clip_last_stats(c);
    ck_assert(pre->norm_p_type == 3 && pre->norm_p == r->norm_pre);
    ck_assert_near(r->norm_pre, N3, 1e-12);
    ck_assert(r->coef == 1.0 / (r->norm_pre + 1e-6));
    ck_assert_near(ps.grad[0], 3 / N3, 1e-6);
    cn_clip_free(c);

    /* after a stage that changed the gradient the norm mode takes the norm of what it receives */
    set_grad(&ps, 0, (float[]){3, 0});
    set_grad(&ps, 1, (float[]){4});
    c = mk("[{\"mode\":\"value\",\"clip_value\":2},{\"mode\":\"norm\",\"max_norm\":1,\"norm_type\":3}]", &ps);
    r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert_near(r->norm_pre, N3, 1e-12);                         /* of the incoming [3, 0, 4] */
    ck_assert_near(r->coef, 1.0 / (cbrt(16.0) + 1e-6), 1e-15);      /* of the clamped [2, 0, 2] */
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* A zero gradient is never "clipped": scaling it changes nothing, so coef is 1 whatever the threshold.
 * AutoClip after zero gradients has a threshold of 0 and reported coef 0, clipped 1 on every step (a
 * clip_frac of 1 while nothing changed); norm with max_norm 1e-320 gave coef 1e-314, clipped 1. */
START_TEST(autoclip_on_zero_gradients_reports_coef_one_not_clipped)
{
    cn_paramset ps;
    one_tensor(&ps, 3, (float[]){0, 0, 0});
    cn_clip *c = mk("{\"mode\":\"autoclip\",\"percentile\":50,\"history\":4}", &ps);
    for (int step = 1; step <= 6; step++) {
        const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
        ck_assert(r->norm_pre == 0 && r->coef == 1 && r->clipped == 0 && r->norm_post == 0);
        if (step == 1) ck_assert(isnan(r->autoclip_threshold));   /* no history yet */
        else ck_assert(r->autoclip_threshold == 0 && r->threshold == 0);
        for (int i = 0; i < 3; i++) ck_assert(grad_of(&ps, 0)[i] == 0);
    }
    /* a nonzero gradient against the threshold 0 is scaled (to zero): that is a clip */
    set_grad(&ps, 0, (float[]){3, 4, 0});
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->norm_pre == 5 && r->coef == 0 && r->clipped == 1 && r->norm_post == 0);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(norm_with_tiny_max_norm_on_zero_gradient_is_not_clipped)
{
    cn_paramset ps;
    one_tensor(&ps, 2, (float[]){0, 0});
    for (int eps0 = 0; eps0 < 2; eps0++) {
        cn_clip *c = mk(eps0 ? "{\"mode\":\"norm\",\"max_norm\":1e-320,\"eps\":0}" : "{\"mode\":\"norm\",\"max_norm\":1e-320}", &ps);
        set_grad(&ps, 0, (float[]){0, 0});
        const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
        ck_assert(r->norm_pre == 0 && r->coef == 1 && r->clipped == 0 && r->norm_post == 0);
        ck_assert(r->threshold == 1e-320);
        /* a nonzero gradient is scaled by max_norm / (N + eps) (or / N): clipped */
        set_grad(&ps, 0, (float[]){1e-30f, 0});
        r = run(c, &ps, CN_CLIP_UPDATE);
        double N = (double)1e-30f;
        ck_assert(r->norm_pre == N && r->clipped == 1);
        ck_assert(r->coef == (eps0 ? 1e-320 / N : 1e-320 / (N + 1e-6)));
        ck_assert(grad_of(&ps, 0)[0] == 0);
        cn_clip_free(c);
    }
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(zclip_on_zero_gradients_reports_coef_one_not_clipped)
{
    cn_paramset ps;
    one_tensor(&ps, 2, (float[]){0, 0});
    /* the cap clips during the warm-up and after it (it is below the z threshold mu + 2.5 (0 + 1e-6)) */
    cn_clip *c = mk("{\"mode\":\"zclip\",\"warmup\":2,\"max_norm\":1e-300}", &ps);
    for (int step = 1; step <= 5; step++) {
        const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
        ck_assert_msg(r->coef == 1 && r->clipped == 0 && r->threshold == 1e-300, "step %d: coef %g", step, r->coef);
        if (step > 2) ck_assert(r->zclip_mu == 0 && r->zclip_sigma == 0 && r->zclip_z == 0);
    }
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* A general p-norm is taken as M (sum (|g|/M)^p)^(1/p), M = max |g|: unscaled, |g|^p overflowed double
 * for p > ~8 and the norm of a finite gradient was inf (coef 0: the gradient was zeroed). */
START_TEST(general_p_norm_of_a_huge_finite_gradient_is_finite)
{
    cn_paramset ps;
    one_tensor(&ps, 3, (float[]){3e38f, -3e38f, 1});
    const double M = (double)3e38f;
    cn_clip *c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"norm_type\":10}", &ps);
    const cn_clip_report *r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->norm_pre == M * pow(2.0, 0.1));      /* (1/M)^10 underflows to 0: 1 + 1 + 0 */
    ck_assert(r->clipped == 1 && r->coef == 1.0 / (r->norm_pre + 1e-6));
    ck_assert_near(grad_of(&ps, 0)[0], pow(2.0, -0.1), 1e-6);
    ck_assert_near(grad_of(&ps, 0)[1], -pow(2.0, -0.1), 1e-6);
    cn_clip_free(c);
    /* p = 1e300 is the max norm */
    set_grad(&ps, 0, (float[]){3e38f, -3e38f, 1});
    c = mk("{\"mode\":\"norm\",\"max_norm\":1,\"norm_type\":1e300}", &ps);
    r = run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(r->norm_pre == M);
    cn_clip_free(c);
    /* non-finite elements still propagate: NaN -> NaN, inf -> inf */
    cn_clip_stats s;
    ck_assert_ok(cn_clip_stats_init(&s, 1));
    set_grad(&ps, 0, (float[]){INFINITY, 1, 2});
    ck_assert_ok(cn_clip_compute_stats(&ps, &s));
    ck_assert(isinf(cn_clip_total_norm(&s, &ps, 3)));
    set_grad(&ps, 0, (float[]){INFINITY, NAN, 2});
    ck_assert_ok(cn_clip_compute_stats(&ps, &s));
    ck_assert(isnan(cn_clip_total_norm(&s, &ps, 3)));
    set_grad(&ps, 0, (float[]){0, 0, 0});
    ck_assert_ok(cn_clip_compute_stats(&ps, &s));
    ck_assert(cn_clip_total_norm(&s, &ps, 3) == 0);
    cn_clip_stats_free(&s);
    cn_paramset_free(&ps);
}
END_TEST

/* A custom mode may list any number of keys: the stage used to copy them into a fixed array of 48 and cut
 * the list after 44 mode keys, so the later ones were refused as unknown. */
START_TEST(custom_mode_with_many_keys_accepts_every_key)
{
    enum { NK = 70 };
    static char names[NK][16];
    static const char *keys[NK + 2];
    keys[0] = "scale";
    for (int i = 0; i < NK; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        keys[i + 1] = names[i];
    }
    keys[NK + 1] = NULL;
    static const cn_clip_mode_def many = {"test_many_keys", keys, 0, 1, sign_create};
    ck_assert_ok(cn_clip_register(&many));
    cn_paramset ps;
    one_tensor(&ps, 2, (float[]){3, -1});
    cn_clip *c = NULL;
    ck_assert_ok(cn_clip_from_string("{\"mode\":\"test_many_keys\",\"k0\":1,\"k44\":1,\"k45\":2,\"k69\":3,"
                                     "\"on_nonfinite\":\"skip\"}", &ps, &c));
    run(c, &ps, CN_CLIP_UPDATE);
    ck_assert(ps.grad[0] == 1 && ps.grad[1] == -1);
    cn_clip_free(c);
    ck_assert_int_eq(cn_clip_from_string("{\"mode\":\"test_many_keys\",\"k70\":1}", &ps, &c), CN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "clip.k70: unknown key"));
    cn_paramset_free(&ps);
}
END_TEST

/* ======================= golden: PyTorch on a tanh RNN ======================= */

typedef struct {
    cJSON *root;
    cn_paramset ps;
    float x[5 * 2 * 3], target[5 * 2 * 1];
} rnn_fixture;

static void read_floats(cJSON *arr, float *dst, size_t n)
{
    ck_assert_int_eq(cJSON_GetArraySize(arr), (int)n);
    size_t k = 0;
    for (cJSON *it = arr->child; it; it = it->next) dst[k++] = (float)it->valuedouble;
}

static void load_rnn(rnn_fixture *f)
{
    ck_assert_ok(cn_json_load_file(tu_fixture("golden/clip_rnn.json"), &f->root));
    cJSON *names = cJSON_GetObjectItem(f->root, "names"), *shapes = cJSON_GetObjectItem(f->root, "shapes");
    cn_paramset_init(&f->ps);
    for (cJSON *nm = names->child; nm; nm = nm->next) {
        cJSON *sh = cJSON_GetObjectItem(shapes, nm->valuestring);
        int shape[4], nd = 0;
        for (cJSON *d = sh->child; d; d = d->next) shape[nd++] = d->valueint;
        ck_assert_ok(cn_paramset_add(&f->ps, nm->valuestring, nd, shape, NULL));
    }
    ck_assert_ok(cn_paramset_finalize(&f->ps));
    cJSON *params = cJSON_GetObjectItem(f->root, "params");
    for (int i = 0; i < f->ps.count; i++)
        read_floats(cJSON_GetObjectItem(params, f->ps.info[i].name), f->ps.data + f->ps.info[i].offset,
                    f->ps.info[i].numel);
    read_floats(cJSON_GetObjectItem(f->root, "x"), f->x, 30);
    read_floats(cJSON_GetObjectItem(f->root, "target"), f->target, 10);
}

static void free_rnn(rnn_fixture *f)
{
    cJSON_Delete(f->root);
    cn_paramset_free(&f->ps);
}

/* Copies fixture gradients `key` into buf (layout of ps). */
static void fixture_grads(rnn_fixture *f, const char *key, float *buf)
{
    cJSON *g = cJSON_GetObjectItem(f->root, key);
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < f->ps.count; i++)
        read_floats(cJSON_GetObjectItem(g, f->ps.info[i].name), buf + f->ps.info[i].offset, f->ps.info[i].numel);
}

/* h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh); y_t = h_t W^T + b; loss = mse(stack(y), target). */
static double rnn_backward(rnn_fixture *f)
{
    enum { T = 5, B = 2, I = 3, H = 4 };
    cn_graph g;
    ck_assert_ok(cn_graph_init(&g));
    cn_paramset_zero_grad(&f->ps);
    cn_tensor xt, tt;
    ck_assert_ok(cn_tensor_view(&xt, f->x, 3, (int[]){T, B, I}));
    ck_assert_ok(cn_tensor_view(&tt, f->target, 3, (int[]){T, B, 1}));
    cn_var *X = cn_input(&g, &xt);                                        // [T, B, I]
    cn_var *Wih = cn_param(&g, &f->ps, 0), *Whh = cn_param(&g, &f->ps, 1);
    cn_var *bih = cn_param(&g, &f->ps, 2), *bhh = cn_param(&g, &f->ps, 3);
    cn_var *Wo = cn_param(&g, &f->ps, 4), *bo = cn_param(&g, &f->ps, 5);
    cn_var *h = cn_zeros(&g, 2, (int[]){B, H});                           // [B, H]
    cn_var *ys[T];
    for (int t = 0; t < T; t++) {
        cn_var *pre = cn_add(&g, cn_linear(&g, cn_select(&g, X, t), Wih, bih), cn_linear(&g, h, Whh, bhh));
        h = cn_tanh(&g, pre);                                             // [B, H]
        ys[t] = cn_linear(&g, h, Wo, bo);                                 // [B, 1]
    }
    cn_var *loss = cn_mse(&g, cn_concat0(&g, ys, T, 1), cn_input(&g, &tt));   // [T, B, 1] -> [1]
    ck_assert_ok(cn_backward(&g, loss));
    double l = cn_scalar_value(loss);
    cn_graph_free(&g);
    return l;
}

/* Tolerances.
 * - C gradients vs PyTorch gradients: both float32 through 5 tanh steps, but
 *   different summation orders (OpenBLAS vs ATen kernels) -> |d| <= 1e-5 + 1e-4 |ref|.
 * - Clipping torch's own raw gradients: our norm is in double and the product is
 *   rounded once; PyTorch forms the norm and coef in float32 and rounds the
 *   product in float32, so the results differ by a few float32 ulps of the coef
 *   -> relative 2e-6. The value clamp is exact (equality). */
static void expect_close(const float *got, const float *want, size_t n, double atol, double rtol, const char *what)
{
    for (size_t j = 0; j < n; j++)
        ck_assert_msg(fabs((double)got[j] - want[j]) <= atol + rtol * fabs(want[j]), "%s[%zu]: got %.9g, torch %.9g",
                      what, j, got[j], want[j]);
}

START_TEST(golden_rnn_gradients_match_torch)
{
    rnn_fixture f;
    load_rnn(&f);
    double loss = rnn_backward(&f);
    ck_assert_near(loss, cJSON_GetObjectItem(f.root, "loss")->valuedouble, 1e-5 * loss);
    float want[256] = {0};   /* padding between tensors stays 0 on both sides */
    ck_assert(f.ps.total <= 256);
    fixture_grads(&f, "grads_raw", want);
    expect_close(f.ps.grad, want, f.ps.total, 1e-5, 1e-4, "grad");
    free_rnn(&f);
}
END_TEST

static const struct {
    const char *json, *key, *total;
} k_golden[] = {
    {"{\"mode\":\"norm\",\"max_norm\":1.0}", "grads_norm2", "total_norm2"},
    {"{\"mode\":\"norm\",\"max_norm\":1.0,\"norm_type\":1}", "grads_norm1", "total_norm1"},
    {"{\"mode\":\"norm\",\"max_norm\":1.0,\"norm_type\":\"inf\"}", "grads_norminf", "total_norminf"},
    {"{\"mode\":\"value\",\"clip_value\":0.05}", "grads_value", NULL},
};

/* The stage applied to torch's raw gradients reproduces torch's clipped ones. */
START_TEST(golden_clip_on_torch_gradients_matches_torch)
{
    rnn_fixture f;
    load_rnn(&f);
    float want[256] = {0};   /* padding between tensors stays 0 on both sides */
    fixture_grads(&f, "grads_raw", f.ps.grad);
    fixture_grads(&f, k_golden[_i].key, want);
    cn_clip *c = mk(k_golden[_i].json, &f.ps);
    const cn_clip_report *r = run(c, &f.ps, CN_CLIP_UPDATE);
    ck_assert(r->clipped == 1);
    if (k_golden[_i].total) {
        double tn = cJSON_GetObjectItem(f.root, k_golden[_i].total)->valuedouble;
        ck_assert_near(r->norm_pre / tn, 1.0, 1e-6);
        expect_close(f.ps.grad, want, f.ps.total, 1e-9, 2e-6, k_golden[_i].key);
    } else {
        ck_assert(memcmp(f.ps.grad, want, f.ps.total * sizeof(float)) == 0);
        ck_assert_int_eq(r->n_elems_clipped, cJSON_GetObjectItem(f.root, "value_n_clamped")->valueint);
    }
    cn_clip_free(c);
    free_rnn(&f);
}
END_TEST

/* End to end: C autograd gradients -> stage, against torch (the gradient tolerance). */
START_TEST(golden_clip_end_to_end_matches_torch)
{
    rnn_fixture f;
    load_rnn(&f);
    float want[256] = {0};   /* padding between tensors stays 0 on both sides */
    rnn_backward(&f);
    fixture_grads(&f, k_golden[_i].key, want);
    cn_clip *c = mk(k_golden[_i].json, &f.ps);
    run(c, &f.ps, CN_CLIP_UPDATE);
    expect_close(f.ps.grad, want, f.ps.total, 1e-5, 1e-4, k_golden[_i].key);
    cn_clip_free(c);
    free_rnn(&f);
}
END_TEST

/* The per-chunk statistics kernel against a plain loop written from its documented order: element j in
 * lane j % 16, each lane summed in order, then lanes l + 8, l + 4, (m0 + m2) + (m1 + m3); max ignoring NaN.
 * The values span 60 orders of magnitude so that another order (the 8 lanes of before, say) gives other
 * bits, which the test also checks, so it can tell the orders apart. */
static void lane_reference(const float *g, size_t n, int lanes, double *ss, double *sa, double *mx)
{
    double l2[16] = {0}, l1[16] = {0}, m = 0;
    for (size_t j = 0; j < n; j++) {
        double a = fabs((double)g[j]);
        l2[j % (size_t)lanes] += a * a;
        l1[j % (size_t)lanes] += a;
        if (a > m) m = a;
    }
    for (int w = lanes / 2; w >= 4; w /= 2)
        for (int i = 0; i < w; i++) {
            l2[i] += l2[i + w];
            l1[i] += l1[i + w];
        }
    *ss = (l2[0] + l2[2]) + (l2[1] + l2[3]);
    *sa = (l1[0] + l1[2]) + (l1[1] + l1[3]);
    *mx = m;
}

START_TEST(vabs_stats_follow_the_documented_lane_order)
{
    static const size_t ns[] = {0, 1, 7, 15, 16, 17, 31, 32, 33, 100, 1000, 4099, 32768, 40001};
    float *g = malloc(40001 * sizeof(float));
    ck_assert(g);
    uint64_t st = 12345;
    for (size_t j = 0; j < 40001; j++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        int e = (int)(st >> 58) - 30;   /* 2^-30 .. 2^33 */
        float v = ldexpf(1.0f + (float)((st >> 20) & 0xffff) / 65536.0f, e);
        g[j] = (st >> 19) & 1 ? -v : v;
    }
    int differs = 0;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        size_t n = ns[k];
        double ss, sa, mx, rs, ra, rm, os, oa, om;
        cn_vabs_stats(g, n, &ss, &sa, &mx);
        lane_reference(g, n, 16, &rs, &ra, &rm);
        ck_assert_msg(memcmp(&ss, &rs, sizeof ss) == 0 && memcmp(&sa, &ra, sizeof sa) == 0 && mx == rm,
                      "n %zu: %.17g %.17g %.17g, reference %.17g %.17g %.17g", n, ss, sa, mx, rs, ra, rm);
        lane_reference(g, n, 8, &os, &oa, &om);
        differs |= memcmp(&ss, &os, sizeof ss) != 0 || memcmp(&sa, &oa, sizeof sa) != 0;
    }
    ck_assert_msg(differs, "the data cannot tell 16 lanes from 8");
    /* NaN is left out of the maximum (the stage sets NaN itself), and makes the sums NaN */
    g[37] = NAN;
    double ss, sa, mx, rs, ra, rm;
    cn_vabs_stats(g, 100, &ss, &sa, &mx);
    lane_reference(g, 100, 16, &rs, &ra, &rm);
    ck_assert(isnan(ss) && isnan(sa) && mx == rm && !isnan(mx));
    free(g);
}
END_TEST

/* cn_clip_compute_stats reads each tensor in chunks of CN_CLIP_STATS_CHUNK, spread over the pool when
 * there are enough of them; each tensor's sums are its chunks' in order, whatever the thread count. The
 * scale is elementwise over the parameter block's ranges (a large weight's rows split). Both give the bits
 * of one thread at 2 and 3. */
START_TEST(stats_and_scale_same_bits_at_any_thread_count)
{
    cn_paramset ps;
    int sz[4] = {5 * CN_CLIP_STATS_CHUNK + 123, 7, 2 * CN_CLIP_STATS_CHUNK, 40000};
    /* tensor 2 is a [256, 256] weight: the parameter block's ranges split its rows, so the scale splits */
    cn_paramset_init(&ps);
    ck_assert_ok(cn_paramset_add(&ps, "0.weight", 1, &sz[0], NULL));
    ck_assert_ok(cn_paramset_add(&ps, "1.bias", 1, &sz[1], NULL));
    ck_assert_ok(cn_paramset_add(&ps, "2.weight", 2, (int[]){256, 256}, NULL));
    ck_assert_ok(cn_paramset_add(&ps, "3.weight", 1, &sz[3], NULL));
    ck_assert_ok(cn_paramset_finalize(&ps));
    fill_grads(&ps, 77, -3, 3);
    grad_of(&ps, 0)[3 * CN_CLIP_STATS_CHUNK + 5] = 1e20f;   /* order-sensitive sums */
    grad_of(&ps, 2)[11] = 3e-20f;
    double ref_ss[4], ref_sa[4], ref_mx[4];
    for (int i = 0; i < 4; i++) {   /* chunk by chunk, in order */
        ref_ss[i] = ref_sa[i] = ref_mx[i] = 0;
        for (size_t c = 0; c * CN_CLIP_STATS_CHUNK < (size_t)sz[i]; c++) {
            size_t e0 = c * CN_CLIP_STATS_CHUNK, e1 = e0 + CN_CLIP_STATS_CHUNK < (size_t)sz[i] ? e0 + CN_CLIP_STATS_CHUNK : (size_t)sz[i];
            double a, b, m;
            cn_vabs_stats(grad_of(&ps, i) + e0, e1 - e0, &a, &b, &m);
            ref_ss[i] = c ? ref_ss[i] + a : a;
            ref_sa[i] = c ? ref_sa[i] + b : b;
            if (m > ref_mx[i]) ref_mx[i] = m;
        }
    }
    size_t bytes = ps.total * sizeof(float);
    float *g0 = malloc(bytes), *scaled1 = malloc(bytes);
    ck_assert(g0 && scaled1);
    memcpy(g0, ps.grad, bytes);
    for (int threads = 1; threads <= 3; threads++) {
        cn_set_threads(threads);
        cn_clip_stats s;
        ck_assert_ok(cn_clip_stats_init(&s, 4));
        ck_assert_ok(cn_clip_compute_stats(&ps, &s));
        for (int i = 0; i < 4; i++)
            ck_assert_msg(memcmp(&s.sumsq[i], &ref_ss[i], sizeof(double)) == 0 &&
                              memcmp(&s.sumabs[i], &ref_sa[i], sizeof(double)) == 0 && s.maxabs[i] == ref_mx[i],
                          "threads %d tensor %d: %.17g %.17g, chunk reference %.17g %.17g", threads, i, s.sumsq[i],
                          s.sumabs[i], ref_ss[i], ref_sa[i]);
        ck_assert(s.total_sumsq == ((ref_ss[0] + ref_ss[1]) + ref_ss[2]) + ref_ss[3]);
        cn_clip_stats_free(&s);
        memcpy(ps.grad, g0, bytes);
        cn_clip_scale(&ps, 0.3);
        if (threads == 1) memcpy(scaled1, ps.grad, bytes);
        else ck_assert_msg(memcmp(ps.grad, scaled1, bytes) == 0, "threads %d: scaled gradients differ", threads);
        ck_assert(ps.grad[1] == (float)((double)g0[1] * 0.3));
        memcpy(ps.grad, g0, bytes);
    }
    cn_set_threads(1);
    free(g0);
    free(scaled1);
    cn_paramset_free(&ps);
}
END_TEST

Suite *suite_clip(void)
{
    Suite *s = suite_create("clip");
    TCase *tv = tcase_create("vectors");
    tcase_add_test(tv, v01_no_params_and_zero_grads_give_norm_zero_coef_one);
    tcase_add_test(tv, vabs_stats_follow_the_documented_lane_order);
    tcase_add_test(tv, stats_and_scale_same_bits_at_any_thread_count);
    tcase_add_test(tv, v02_norms_l2_of_3_and_4_is_5_linf_4_l1_7);
    tcase_add_test(tv, v03_none_leaves_gradients_byte_identical_and_fills_report);
    tcase_add_test(tv, v04_huge_gradients_norm_computed_finite_in_double);
    tcase_add_test(tv, v05_value_clamps_and_counts_elements);
    tcase_add_test(tv, v05_value_clamp_keeps_nan_and_maps_inf_to_c);
    tcase_add_test(tv, v06_norm_clip_eps_torch_and_eps_zero_exact);
    tcase_add_test(tv, v07_norm_at_threshold_with_eps_shrinks_without_eps_keeps);
    tcase_add_test(tv, v08_norm_below_threshold_output_bit_identical);
    tcase_add_test(tv, v09_norm_100_100_and_inf_norm);
    tcase_add_test(tv, v10_norm_per_tensor_clips_each_tensor_alone);
    tcase_add_test(tv, v11_agc_unitwise_limits_and_default_exclude);
    tcase_add_test(tv, v12_autoclip_first_step_no_clip_then_percentiles);
    tcase_add_test(tv, v12_autoclip_ring_wraps_and_skips_nonfinite_norms);
    tcase_add_test(tv, autoclip_sorted_window_matches_sorting_the_history);
    tcase_add_test(tv, autoclip_load_rejects_a_ring_it_could_not_have_written);
    tcase_add_test(tv, v13_zclip_warmup_then_zscore_threshold);
    tcase_add_test(tv, v13_zclip_ema_update_uses_threshold_when_clipped);
    tcase_add_test(tv, v14_nonfinite_propagate_makes_all_nan);
    tcase_add_test(tv, v14_nonfinite_stop_is_default_and_leaves_everything);
    tcase_add_test(tv, v14_nonfinite_skip_counts_then_stops);
    tcase_add_test(tv, v14_nonfinite_zero_acts_as_if_element_were_zero);
    tcase_add_test(tv, v14_nonfinite_loss_counts_as_nonfinite_gradient);
    tcase_add_test(tv, zero_policy_with_nonfinite_loss_zeroes_every_element);
    tcase_add_test(tv, v14_skip_leaves_adam_step_and_moments_untouched);
    tcase_add_test(tv, v15_accumulation_clips_the_mean_once);
    tcase_add_test(tv, v15_accumulation_then_sgd_updates_with_the_clipped_mean);
    tcase_add_loop_test(tv, v16_config_errors_name_the_path, 0, (int)(sizeof k_bad_configs / sizeof k_bad_configs[0]));
    tcase_add_test(tv, v16_config_nan_threshold_is_an_error);
    suite_add_tcase(s, tv);

    TCase *tb = tcase_create("stage");
    tcase_add_test(tb, config_defaults_are_filled_into_the_tree);
    tcase_add_test(tb, list_applies_stages_in_order);
    tcase_add_test(tb, separate_norm_and_scale_calls_match_the_stage);
    tcase_add_test(tb, run_allocates_nothing_per_step);
    tcase_add_test(tb, save_load_autoclip_history_roundtrips_exactly);
    tcase_add_test(tb, save_load_zclip_state_roundtrips_exactly);
    tcase_add_test(tb, save_load_names_items_and_rejects_mismatch);
    tcase_add_test(tb, custom_mode_registered_from_c_is_selected_from_json);
    tcase_add_test(tb, custom_mode_with_many_keys_accepts_every_key);
    tcase_add_test(tb, general_p_norm_is_computed_once_and_handed_to_the_mode);
    tcase_add_test(tb, general_p_norm_of_a_huge_finite_gradient_is_finite);
    tcase_add_test(tb, autoclip_on_zero_gradients_reports_coef_one_not_clipped);
    tcase_add_test(tb, norm_with_tiny_max_norm_on_zero_gradient_is_not_clipped);
    tcase_add_test(tb, zclip_on_zero_gradients_reports_coef_one_not_clipped);
    suite_add_tcase(s, tb);

    TCase *tg = tcase_create("golden");
    tcase_add_test(tg, golden_rnn_gradients_match_torch);
    tcase_add_loop_test(tg, golden_clip_on_torch_gradients_matches_torch, 0, 4);
    tcase_add_loop_test(tg, golden_clip_end_to_end_matches_torch, 0, 4);
    suite_add_tcase(s, tg);
    return s;
}
