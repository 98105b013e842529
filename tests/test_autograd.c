#include "testutil.h"

#include <string.h>

/* loss = sum(w * tanh(linear(x, W, b))) with fixed random w */
static cn_var *f_linear_tanh(cn_graph *g, cn_var **in, void *ctx)
{
    (void)ctx;
    cn_var *y = cn_tanh(g, cn_linear(g, in[0], in[1], in[2]));
    return cn_sum(g, cn_mul(g, y, in[3]));
}

START_TEST(linear_tanh_gradcheck)
{
    float x[6], w[12], b[4], wt[8];
    tu_fill_uniform(x, 6, 1, -1, 1);
    tu_fill_uniform(w, 12, 2, -1, 1);
    tu_fill_uniform(b, 4, 3, -1, 1);
    tu_fill_uniform(wt, 8, 4, -1, 1);
    cn_tensor in[4];
    ck_assert_ok(cn_tensor_view(&in[0], x, 2, (int[]){2, 3}));
    ck_assert_ok(cn_tensor_view(&in[1], w, 2, (int[]){4, 3}));
    ck_assert_ok(cn_tensor_view(&in[2], b, 1, (int[]){4}));
    ck_assert_ok(cn_tensor_view(&in[3], wt, 2, (int[]){2, 4}));
    cn_gradcheck_result r;
    ck_assert_ok(cn_gradcheck(f_linear_tanh, NULL, in, 4, NULL, NULL, &r));
    ck_assert_msg(r.ok, "worst input %d[%zu]: analytic %g numeric %g", r.worst_input, r.worst_index,
                  r.worst_analytic, r.worst_numeric);
    ck_assert_uint_eq(r.n_checked, 6 + 12 + 4 + 8);
}
END_TEST

Suite *suite_autograd(void)
{
    Suite *s = suite_create("autograd");
    TCase *tc = tcase_create("ops");
    tcase_add_test(tc, linear_tanh_gradcheck);
    suite_add_tcase(s, tc);
    return s;
}
