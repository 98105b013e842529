/* A loss beyond float32 range counts as non-finite: the loss is accumulated in double, but a float32
 * framework (PyTorch) gets inf there, and on_nonfinite must fire on that step, not later. */
#include "testutil.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "train/session.h"

START_TEST(loss_value_maps_beyond_float32_range_to_inf)
{
    cn_graph g;
    ck_assert_ok(cn_graph_init(&g));
    float pd[2] = {3e19f, -3e19f}, td[2] = {0.0f, 0.0f};
    int sh[2] = {2, 1};
    cn_tensor p, t;
    cn_tensor_view(&p, pd, 2, sh);
    cn_tensor_view(&t, td, 2, sh);
    cn_var *l = cn_loss(&g, CN_LOSS_MSE, cn_input(&g, &p), cn_input(&g, &t), NULL);
    ck_assert_ptr_nonnull(l);
    /* the double mean is 9e38: finite in double, beyond FLT_MAX (3.4e38) */
    ck_assert(isfinite(cn_scalar_value(l)) && cn_scalar_value(l) > FLT_MAX);
    ck_assert(isinf(cn_loss_value(l)) && cn_loss_value(l) > 0);
    pd[0] = pd[1] = 1e19f;   /* 1e38 < FLT_MAX: unchanged */
    cn_graph_reset(&g);
    l = cn_loss(&g, CN_LOSS_MSE, cn_input(&g, &p), cn_input(&g, &t), NULL);
    ck_assert(cn_loss_value(l) == cn_scalar_value(l));
    ck_assert_near(cn_loss_value(l), (double)1e19f * (double)1e19f, 1e31);
    cn_graph_free(&g);
}
END_TEST

/* tests/configs/huge_loss.json: a bias drawn with std 1e23 gives a loss ~1e46 (finite in double) with
 * finite float32 gradients ~1e23. PyTorch's float32 loss is inf: the step is non-finite. */
START_TEST(loss_beyond_float32_range_stops_the_run)
{
    cn_session s;
    ck_assert_ok(cn_session_open(&s, "configs/huge_loss.json", NULL, 0));
    float *before = malloc(s.ps.total * sizeof(float));
    memcpy(before, s.ps.data, s.ps.total * sizeof(float));
    double loss, lr;
    int ep;
    cn_clip_action act;
    ck_assert_ok(cn_session_step(&s, &loss, &ep, &lr, &act));
    const cn_clip_report *r = cn_clip_last_report(s.clip);
    ck_assert_msg(isinf(loss), "loss %g", loss);
    ck_assert_int_eq(r->loss_nonfinite, 1);
    ck_assert_int_eq(r->n_nonfinite, 0);       /* the gradients themselves are finite */
    ck_assert(isfinite(r->norm_pre_l2) && r->norm_pre_l2 > 1e18);
    ck_assert_int_eq(act, CN_CLIP_STOP);
    ck_assert(memcmp(before, s.ps.data, s.ps.total * sizeof(float)) == 0);
    free(before);
    cn_session_close(&s);
}
END_TEST

/* Policy zero with a non-finite loss zeroes every gradient: plain SGD does not move (as PyTorch's
 * float32 run, whose gradients are NaN/inf there, does not move under a zeroing policy). */
START_TEST(loss_beyond_float32_range_under_zero_policy_does_not_move)
{
    cn_session s;
    char *sets[] = {"clip.on_nonfinite=zero"};
    ck_assert_ok(cn_session_open(&s, "configs/huge_loss.json", sets, 1));
    float *before = malloc(s.ps.total * sizeof(float));
    memcpy(before, s.ps.data, s.ps.total * sizeof(float));
    double loss, lr;
    int ep;
    cn_clip_action act;
    ck_assert_ok(cn_session_step(&s, &loss, &ep, &lr, &act));
    ck_assert_int_eq(act, CN_CLIP_UPDATE);
    ck_assert_near(cn_clip_last_report(s.clip)->norm_post, 0.0, 0.0);
    ck_assert(memcmp(before, s.ps.data, s.ps.total * sizeof(float)) == 0);
    free(before);
    cn_session_close(&s);
}
END_TEST

/* End to end: the program exits 3 at step 1 and says the loss was non-finite. */
START_TEST(cli_stops_at_the_step_whose_loss_overflows_float32)
{
    char dir[256], cmd[1024], out[8192];
    tu_make_tmpdir(dir, sizeof dir, "/tmp", "cn-lossrange");
    snprintf(cmd, sizeof cmd, "%s train configs/huge_loss.json --out %s/run --quiet 2>&1", tu_clipnn_bin(), dir);
    int rc = tu_shell(out, sizeof out, cmd);
    ck_assert_msg(rc == 3, "exit %d: %s", rc, out);
    ck_assert_msg(strstr(out, "non-finite loss"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s/run/summary.json", dir);
    char *sum = tu_slurp(cmd, NULL);
    ck_assert_ptr_nonnull(sum);
    ck_assert_msg(strstr(sum, "\"diverged_at_step\":\t1") || strstr(sum, "\"diverged_at_step\": 1"), "%s", sum);
    free(sum);
    tu_remove_tree(dir);
}
END_TEST

Suite *suite_lossrange(void)
{
    Suite *s = suite_create("lossrange");
    TCase *tc = tcase_create("float32_range");
    tcase_add_test(tc, loss_value_maps_beyond_float32_range_to_inf);
    tcase_add_test(tc, loss_beyond_float32_range_stops_the_run);
    tcase_add_test(tc, loss_beyond_float32_range_under_zero_policy_does_not_move);
    tcase_add_test(tc, cli_stops_at_the_step_whose_loss_overflows_float32);
    suite_add_tcase(s, tc);
    return s;
}
