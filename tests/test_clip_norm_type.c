/* A global-norm mode says which norm it rescales by (cn_clipper_ops.norm_type), so the stage reports
 * norm_pre in that norm for a custom mode as it does for the built-in "norm". */
#include "testutil.h"

#include <string.h>

typedef struct {
    cn_clipper base;
    double p;
} pnorm_clipper;

/* rescales nothing: only the reported norm is under test */
static cn_status pnorm_apply(cn_clipper *self, cn_clip_ctx *ctx) { (void)self; ctx->coef = 1; return CN_OK; }
static void pnorm_free(cn_clipper *self) { cn_free(self); }
static double pnorm_type(const cn_clipper *self) { return ((const pnorm_clipper *)self)->p; }
static const cn_clipper_ops pnorm_ops = {pnorm_apply, NULL, NULL, pnorm_free, pnorm_type};
static const cn_clipper_ops l2_ops = {pnorm_apply, NULL, NULL, pnorm_free, NULL};
static const char *const pnorm_keys[] = {"p", NULL};

static cn_status make(cJSON *obj, const char *path, const cn_clipper_ops *ops, cn_clipper **out)
{
    pnorm_clipper *c = cn_calloc(1, sizeof *c);
    if (!c) return cn_error(CN_ERR_NOMEM, "out of memory");
    c->base.ops = ops;
    cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "p");
    c->p = cJSON_IsString(p) ? INFINITY : cJSON_IsNumber(p) ? p->valuedouble : 2.0;
    *out = &c->base;
    return CN_OK;
}
static cn_status pnorm_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    return make(obj, path, &pnorm_ops, out);
}
static cn_status l2_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    return make(obj, path, &l2_ops, out);
}
static const cn_clip_mode_def pnorm_mode = {"test_pnorm", pnorm_keys, 1, 0, pnorm_create};
static const cn_clip_mode_def l2_mode = {"test_l2_global", pnorm_keys, 1, 0, l2_create};

static double norm_pre(const char *json)
{
    cn_paramset ps;
    cn_paramset_init(&ps);
    int n = 3;
    ck_assert_int_eq(cn_paramset_add(&ps, "0.weight", 1, &n, NULL), CN_OK);
    ck_assert_int_eq(cn_paramset_finalize(&ps), CN_OK);
    memcpy(ps.grad, (float[]){3, -4, 1}, 3 * sizeof(float));
    cn_clip *c = NULL;
    ck_assert_int_eq(cn_clip_from_string(json, &ps, &c), CN_OK);
    cn_clip_action a;
    ck_assert_int_eq(cn_clip_run(c, &ps, 0, &a), CN_OK);
    double v = cn_clip_last_report(c)->norm_pre;
    cn_clip_free(c);
    cn_paramset_free(&ps);
    return v;
}

START_TEST(custom_global_mode_reports_its_norm_type)
{
    ck_assert_int_eq(cn_clip_register(&pnorm_mode), CN_OK);
    ck_assert_int_eq(cn_clip_register(&l2_mode), CN_OK);
    /* g = (3, -4, 1): L2 sqrt(26), L1 8, Linf 4 */
    ck_assert(norm_pre("{\"mode\":\"test_pnorm\",\"p\":\"inf\"}") == 4.0);
    ck_assert(norm_pre("{\"mode\":\"test_pnorm\",\"p\":1}") == 8.0);
    ck_assert(norm_pre("{\"mode\":\"test_l2_global\"}") == sqrt(26.0));    /* no norm_type: L2 */
    /* the built-in norm mode reports through the same member */
    ck_assert(norm_pre("{\"mode\":\"norm\",\"max_norm\":100,\"norm_type\":\"inf\"}") == 4.0);
    ck_assert(norm_pre("{\"mode\":\"norm\",\"max_norm\":100,\"norm_type\":1}") == 8.0);
}
END_TEST

START_TEST(norm_type_below_one_is_refused)
{
    ck_assert_int_eq(cn_clip_register(&pnorm_mode), CN_OK);
    cn_paramset ps;
    cn_paramset_init(&ps);
    int n = 2;
    ck_assert_int_eq(cn_paramset_add(&ps, "0.weight", 1, &n, NULL), CN_OK);
    ck_assert_int_eq(cn_paramset_finalize(&ps), CN_OK);
    cn_clip *c = NULL;
    ck_assert_int_eq(cn_clip_from_string("{\"mode\":\"test_pnorm\",\"p\":0.5}", &ps, &c), CN_ERR_STATE);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "reports norm type 0.5"));
    cn_paramset_free(&ps);
}
END_TEST

Suite *suite_clip_norm_type(void)
{
    Suite *s = suite_create("clip_norm_type");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, custom_global_mode_reports_its_norm_type);
    tcase_add_test(tc, norm_type_below_one_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
