/* Suite "clipref": the options that reproduce the adaptive modes' reference code (docs/clipping.md,
 * "Where clipnn departs from the papers' code"): autoclip include_current (the authors' code adds the
 * current norm to the history before taking the percentile) and zclip ema_input "uncapped" (the authors'
 * code feeds the EMA with the z-score threshold, not the max_norm-capped one). Exact values. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static cn_paramset one_param(void)
{
    cn_paramset ps;
    int n = 1;
    cn_paramset_init(&ps);
    ck_assert_ok(cn_paramset_add(&ps, "w", 1, &n, NULL));
    ck_assert_ok(cn_paramset_finalize(&ps));
    return ps;
}

/* One step with the gradient [norm]: its L2 norm is `norm`. */
static const cn_clip_report *feed(cn_clip *c, cn_paramset *ps, float norm)
{
    ps->grad[0] = norm;
    cn_clip_action a;
    ck_assert_ok(cn_clip_run(c, ps, 0, &a));
    ck_assert_int_eq(a, CN_CLIP_UPDATE);
    return cn_clip_last_report(c);
}

START_TEST(autoclip_default_takes_the_percentile_of_past_norms_only)
{
    cn_paramset ps = one_param();
    cn_clip *c;
    ck_assert_ok(cn_clip_from_string("{\"mode\":\"autoclip\",\"percentile\":50}", &ps, &c));
    const cn_clip_report *r = feed(c, &ps, 1);
    ck_assert(isnan(r->autoclip_threshold) && r->clipped == 0);
    r = feed(c, &ps, 4);
    ck_assert(r->autoclip_threshold == 1.0);            /* [1] */
    r = feed(c, &ps, 2);
    ck_assert(r->autoclip_threshold == 2.5);            /* [1, 4] */
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* The authors' code: history.append(norm); clip_value = np.percentile(history, p);
 * clip_grad_norm_(params, clip_value). So the first step clips to its own norm (coef N/(N + 1e-6)). */
START_TEST(autoclip_include_current_matches_the_authors_order)
{
    cn_paramset ps = one_param();
    cn_clip *c;
    ck_assert_ok(cn_clip_from_string("{\"mode\":\"autoclip\",\"percentile\":50,\"include_current\":true}", &ps, &c));
    const cn_clip_report *r = feed(c, &ps, 1);
    ck_assert(r->autoclip_threshold == 1.0);            /* [1] */
    ck_assert(r->coef == 1.0 / (1.0 + 1e-6) && r->clipped == 1);
    r = feed(c, &ps, 4);
    ck_assert(r->autoclip_threshold == 2.5);            /* [1, 4] */
    ck_assert(r->coef == 2.5 / (4.0 + 1e-6));
    ck_assert(ps.grad[0] == (float)(4.0 * (2.5 / (4.0 + 1e-6))));
    r = feed(c, &ps, 2);
    ck_assert(r->autoclip_threshold == 2.0);            /* [1, 2, 4] */
    r = feed(c, &ps, 8);
    ck_assert(r->autoclip_threshold == 3.0);            /* [1, 2, 4, 8]: 2 + 0.5 * (4 - 2) */
    cn_clip_free(c);

    /* a window of 2 with the current norm: [4, 2] at the third step */
    ck_assert_ok(cn_clip_from_string("{\"mode\":\"autoclip\",\"percentile\":50,\"history\":2,"
                                     "\"include_current\":true}", &ps, &c));
    feed(c, &ps, 1);
    feed(c, &ps, 4);
    r = feed(c, &ps, 2);
    ck_assert(r->autoclip_threshold == 3.0);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* The authors keep every norm: a history at least as long as the run is that. Against a plain sort of
 * all norms so far (numpy's linear percentile), over a run of 200 steps with history 200. */
START_TEST(autoclip_include_current_with_full_history_is_the_percentile_of_every_norm)
{
    cn_paramset ps = one_param();
    cn_clip *c;
    ck_assert_ok(cn_clip_from_string("{\"mode\":\"autoclip\",\"percentile\":30,\"history\":200,"
                                     "\"include_current\":true}", &ps, &c));
    double seen[200];
    float norms[200];
    tu_fill_uniform(norms, 200, 7, 0.5f, 20.0f);
    for (int k = 0; k < 200; k++) {
        const cn_clip_report *r = feed(c, &ps, norms[k]);
        seen[k] = norms[k];
        double s[200];
        memcpy(s, seen, (size_t)(k + 1) * sizeof(double));
        for (int i = 1; i <= k; i++)   /* insertion sort */
            for (int j = i; j > 0 && s[j - 1] > s[j]; j--) { double t = s[j]; s[j] = s[j - 1]; s[j - 1] = t; }
        double rank = 0.3 * k;
        int lo = (int)rank;
        double want = lo >= k ? s[k] : s[lo] + (rank - lo) * (s[lo + 1] - s[lo]);
        ck_assert_msg(r->autoclip_threshold == want, "step %d: %.17g vs %.17g", k + 1, r->autoclip_threshold, want);
    }
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

/* Warm-up [1, 1, 2, 2]: mu 1.5, sigma 0.5. max_norm 1.2 (the authors' default cap is 1.0). */
static const char *zjs(const char *ema)
{
    static char buf[160];
    snprintf(buf, sizeof buf, "{\"mode\":\"zclip\",\"warmup\":4,\"max_norm\":1.2,\"alpha\":0.5%s%s%s}",
             ema ? ",\"ema_input\":\"" : "", ema ? ema : "", ema ? "\"" : "");
    return buf;
}

START_TEST(zclip_ema_input_applied_feeds_the_capped_threshold)
{
    cn_paramset ps = one_param();
    cn_clip *c;
    ck_assert_ok(cn_clip_from_string(zjs(NULL), &ps, &c));
    const float warm[4] = {1, 1, 2, 2};
    for (int i = 0; i < 4; i++) feed(c, &ps, warm[i]);
    const cn_clip_report *r = feed(c, &ps, 10);         /* z ~ 17: z-threshold ~1.684, capped to 1.2 */
    ck_assert(r->threshold == 1.2 && r->clipped == 1);
    r = feed(c, &ps, 1.5f);
    ck_assert(r->zclip_mu == 0.5 * 1.5 + 0.5 * 1.2);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(zclip_ema_input_uncapped_feeds_the_zscore_threshold_or_the_norm)
{
    cn_paramset ps = one_param();
    cn_clip *c;
    ck_assert_ok(cn_clip_from_string(zjs("uncapped"), &ps, &c));
    const float warm[4] = {1, 1, 2, 2};
    for (int i = 0; i < 4; i++) feed(c, &ps, warm[i]);
    const cn_clip_report *r = feed(c, &ps, 10);
    ck_assert(r->threshold == 1.2 && r->clipped == 1);   /* the gradient is still capped */
    double z = (10.0 - 1.5) / (0.5 + 1e-6), zthr = 1.5 + 2.5 * 2.5 * 0.5 / z;
    ck_assert(r->zclip_z == z);
    r = feed(c, &ps, 1.5f);
    ck_assert(r->zclip_mu == 0.5 * 1.5 + 0.5 * zthr);
    cn_clip_free(c);

    /* z below z_thresh but N above the cap: clipped to the cap, the EMA takes N itself */
    ck_assert_ok(cn_clip_from_string(zjs("uncapped"), &ps, &c));
    for (int i = 0; i < 4; i++) feed(c, &ps, warm[i]);
    r = feed(c, &ps, 1.6f);
    ck_assert(r->clipped == 1 && r->threshold == 1.2 && r->zclip_z < 2.5);
    r = feed(c, &ps, 1.5f);
    ck_assert(r->zclip_mu == 0.5 * 1.5 + 0.5 * (double)1.6f);
    cn_clip_free(c);
    ck_assert_ok(cn_clip_from_string(zjs("applied"), &ps, &c));
    for (int i = 0; i < 4; i++) feed(c, &ps, warm[i]);
    feed(c, &ps, 1.6f);
    r = feed(c, &ps, 1.5f);
    ck_assert(r->zclip_mu == 0.5 * 1.5 + 0.5 * 1.2);
    cn_clip_free(c);
    cn_paramset_free(&ps);
}
END_TEST

START_TEST(reference_options_are_validated)
{
    cn_paramset ps = one_param();
    cn_clip *c = NULL;
    ck_assert_int_eq(cn_clip_from_string("{\"mode\":\"zclip\",\"ema_input\":\"capped\"}", &ps, &c), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "ema_input") != NULL, "%s", cn_errmsg());
    ck_assert_int_eq(cn_clip_from_string("{\"mode\":\"autoclip\",\"include_current\":1}", &ps, &c), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "include_current") != NULL, "%s", cn_errmsg());
    ck_assert_ptr_null(c);
    cn_paramset_free(&ps);
}
END_TEST

Suite *suite_clipref(void)
{
    Suite *s = suite_create("clipref");
    TCase *tc = tcase_create("reference");
    tcase_add_test(tc, autoclip_default_takes_the_percentile_of_past_norms_only);
    tcase_add_test(tc, autoclip_include_current_matches_the_authors_order);
    tcase_add_test(tc, autoclip_include_current_with_full_history_is_the_percentile_of_every_norm);
    tcase_add_test(tc, zclip_ema_input_applied_feeds_the_capped_threshold);
    tcase_add_test(tc, zclip_ema_input_uncapped_feeds_the_zscore_threshold_or_the_norm);
    tcase_add_test(tc, reference_options_are_validated);
    suite_add_tcase(s, tc);
    return s;
}
