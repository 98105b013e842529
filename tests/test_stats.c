/* Suite "stats": src/report/stats.c against tests/golden/stats.json, written by
 * tests/golden/gen_stats.py from scipy.stats 1.10 and numpy (an independent implementation; see the
 * script for how each number is made). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "report/stats.h"
#include "testutil.h"

static cJSON *golden;

static void load_golden(void)
{
    char *text = tu_slurp(tu_fixture("golden/stats.json"), NULL);
    ck_assert_msg(text != NULL, "cannot read golden/stats.json");
    golden = cJSON_Parse(text);
    free(text);
    ck_assert_msg(golden != NULL, "golden/stats.json is not JSON");
}

static void free_golden(void)
{
    cJSON_Delete(golden);
    golden = NULL;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(v != NULL, "golden: no key %s", key);
    return cJSON_IsNull(v) ? NAN : v->valuedouble;
}

/* |got - want| <= 1e-12 |want| + 1e-15; NaN matches NaN (an undefined statistic). */
#define ck_close(got, want, what) do { \
    double g_ = (got), w_ = (want); \
    if (isnan(w_)) ck_assert_msg(isnan(g_), "%s: got %.17g, expected NaN", what, g_); \
    else ck_assert_msg(fabs(g_ - w_) <= 1e-12 * fabs(w_) + 1e-15, "%s: got %.17g, expected %.17g", what, g_, w_); \
} while (0)

static int read_array(const cJSON *a, double *out, int cap)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        ck_assert_int_lt(n, cap);
        out[n++] = e->valuedouble;
    }
    return n;
}

START_TEST(golden_matches_generator_constants)
{
    ck_assert_int_eq((int)num(golden, "resamples"), CN_STATS_BOOTSTRAP_RESAMPLES);
    ck_assert_msg((unsigned long long)num(golden, "seed") == CN_STATS_BOOTSTRAP_SEED, "bootstrap seed differs");
}
END_TEST

START_TEST(quantiles_match_numpy_linear)
{
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(golden, "quantile")) {
        double x[64], q[16], want[16];
        int n = read_array(cJSON_GetObjectItemCaseSensitive(c, "x"), x, 64);
        int nq = read_array(cJSON_GetObjectItemCaseSensitive(c, "q"), q, 16);
        read_array(cJSON_GetObjectItemCaseSensitive(c, "value"), want, 16);
        cn_stats_sort(x, n);
        for (int i = 0; i < nq; i++) {
            char what[64];
            snprintf(what, sizeof what, "quantile case %d q=%g", k, q[i]);
            ck_close(cn_stats_quantile_sorted(x, n, q[i]), want[i], what);
        }
        k++;
    }
    ck_assert_int_ge(k, 4);
    ck_assert(isnan(cn_stats_quantile_sorted(NULL, 0, 0.5)));
}
END_TEST

START_TEST(paired_cases_match_scipy)
{
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(golden, "paired")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        double v[128], b[128], work[128];
        int n = read_array(cJSON_GetObjectItemCaseSensitive(c, "variant"), v, 128);
        ck_assert_int_eq(read_array(cJSON_GetObjectItemCaseSensitive(c, "baseline"), b, 128), n);
        cn_paired_stats s;
        ck_assert_ok(cn_stats_paired(v, b, n, work, &s));
        char what[96];
#define CHECK_INT(f) do { snprintf(what, sizeof what, "%s: " #f, name); \
        ck_assert_msg(s.f == (int)num(c, #f), "%s: got %d, expected %d", what, s.f, (int)num(c, #f)); } while (0)
#define CHECK_NUM(f) do { snprintf(what, sizeof what, "%s: " #f, name); ck_close(s.f, num(c, #f), what); } while (0)
        CHECK_INT(n);
        CHECK_INT(wins);
        CHECK_INT(losses);
        CHECK_INT(ties);
        CHECK_INT(wilcoxon_exact);
        CHECK_INT(wilcoxon_n);
        CHECK_NUM(mean_diff);
        CHECK_NUM(median_diff);
        CHECK_NUM(wilcoxon_stat);
        CHECK_NUM(wilcoxon_p);
        CHECK_NUM(sign_p);
        CHECK_NUM(boot_lo);
        CHECK_NUM(boot_hi);
#undef CHECK_INT
#undef CHECK_NUM
        k++;
    }
    ck_assert_int_ge(k, 10);
}
END_TEST

START_TEST(fisher_matches_scipy)
{
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(golden, "fisher")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "table");
        double r0[2] = {0, 0}, r1[2] = {0, 0};
        read_array(cJSON_GetArrayItem(t, 0), r0, 2);
        read_array(cJSON_GetArrayItem(t, 1), r1, 2);
        char what[96];
        snprintf(what, sizeof what, "fisher [[%g,%g],[%g,%g]]", r0[0], r0[1], r1[0], r1[1]);
        ck_close(cn_stats_fisher_exact((long long)r0[0], (long long)r0[1], (long long)r1[0], (long long)r1[1]),
                 num(c, "p"), what);
        k++;
    }
    ck_assert_int_ge(k, 10);
}
END_TEST

START_TEST(sign_test_matches_scipy)
{
    const cJSON *c;
    int k = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(golden, "sign")) {
        long long w = (long long)num(c, "wins"), l = (long long)num(c, "losses");
        char what[64];
        snprintf(what, sizeof what, "sign test %lld/%lld", w, l);
        ck_close(cn_stats_sign_test(w, l), num(c, "p"), what);
        k++;
    }
    ck_assert_int_ge(k, 8);
    ck_assert(isnan(cn_stats_sign_test(0, 0)));
}
END_TEST

START_TEST(bootstrap_is_deterministic_and_brackets_the_mean)
{
    double d[7] = {0.3, -0.1, 0.25, 0.05, -0.2, 0.4, 0.1}, lo1, hi1, lo2, hi2, lo3, hi3;
    ck_assert_ok(cn_stats_bootstrap_mean(d, 7, 2000, 5, 0.95, &lo1, &hi1));
    ck_assert_ok(cn_stats_bootstrap_mean(d, 7, 2000, 5, 0.95, &lo2, &hi2));
    ck_assert(lo1 == lo2 && hi1 == hi2);
    double mean = 0.8 / 7;
    ck_assert(lo1 < mean && mean < hi1);
    ck_assert_ok(cn_stats_bootstrap_mean(d, 7, 2000, 6, 0.95, &lo3, &hi3));
    ck_assert(lo3 != lo1 || hi3 != hi1);   /* the seed matters */
    ck_assert_int_eq(cn_stats_bootstrap_mean(d, 0, 2000, 5, 0.95, &lo1, &hi1), CN_ERR_ARG);
    ck_assert_int_eq(cn_stats_bootstrap_mean(d, 7, 0, 5, 0.95, &lo1, &hi1), CN_ERR_ARG);
    cn_error_clear();
}
END_TEST

START_TEST(paired_refuses_no_pairs_and_non_finite)
{
    double v[2] = {1, NAN}, b[2] = {1, 2}, work[2];
    cn_paired_stats s;
    ck_assert_int_eq(cn_stats_paired(v, b, 0, work, &s), CN_ERR_ARG);
    ck_assert_int_eq(cn_stats_paired(v, b, 2, work, &s), CN_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "not finite"));
    cn_error_clear();
}
END_TEST

/* Exact p-values by hand: with n distinct |d| all of one sign, W = 0 and p = 2 / 2^n. */
START_TEST(wilcoxon_exact_all_one_sign_is_two_over_two_to_n)
{
    double d[12];
    for (int n = 1; n <= 12; n++) {
        for (int i = 0; i < n; i++) d[i] = -(i + 1) * 0.5;
        double stat, p;
        int exact, used;
        cn_stats_wilcoxon(d, n, &stat, &p, &exact, &used);
        ck_assert_int_eq(exact, 1);
        ck_assert_int_eq(used, n);
        ck_assert(stat == 0.0);
        ck_assert_near(p, fmin(1.0, 2.0 / ldexp(1.0, n)), 1e-15);
    }
}
END_TEST

Suite *suite_stats(void)
{
    Suite *s = suite_create("stats");
    TCase *t = tcase_create("golden");
    tcase_add_unchecked_fixture(t, load_golden, free_golden);
    tcase_add_test(t, golden_matches_generator_constants);
    tcase_add_test(t, quantiles_match_numpy_linear);
    tcase_add_test(t, paired_cases_match_scipy);
    tcase_add_test(t, fisher_matches_scipy);
    tcase_add_test(t, sign_test_matches_scipy);
    suite_add_tcase(s, t);
    TCase *h = tcase_create("properties");
    tcase_add_test(h, bootstrap_is_deterministic_and_brackets_the_mean);
    tcase_add_test(h, paired_refuses_no_pairs_and_non_finite);
    tcase_add_test(h, wilcoxon_exact_all_one_sign_is_two_over_two_to_n);
    suite_add_tcase(s, h);
    return s;
}
