/* What a built model says about itself: the trainer asks the model (not the config JSON) whether it has a
 * recurrent layer. */
#include "testutil.h"

static cn_model *build(const cn_layer_spec *layers, int n, cn_model_input in, cn_paramset *ps)
{
    cn_model *m = NULL;
    cn_paramset_init(ps);
    ck_assert_int_eq(cn_model_new(layers, n, &in, ps, &m), CN_OK);
    return m;
}

START_TEST(model_reports_layer_types_and_recurrence)
{
    cn_paramset ps;
    cn_layer_spec rec[] = {{.type = CN_LAYER_GRU, .hidden = 4}, {.type = CN_LAYER_TANH}, {.type = CN_LAYER_LINEAR, .out = 2}};
    cn_model *m = build(rec, 3, (cn_model_input){.seq = 1, .features = 3}, &ps);
    ck_assert_int_eq(cn_model_layers(m), 3);
    ck_assert_str_eq(cn_model_layer_type(m, 0), "gru");
    ck_assert_str_eq(cn_model_layer_type(m, 1), "tanh");
    ck_assert_str_eq(cn_model_layer_type(m, 2), "linear");
    ck_assert_ptr_null(cn_model_layer_type(m, 3));
    ck_assert_ptr_null(cn_model_layer_type(m, -1));
    ck_assert_int_eq(cn_model_has_recurrent(m), 1);
    cn_model_free(m);
    cn_paramset_free(&ps);

    /* a per-step MLP over a sequence: no recurrent layer */
    cn_layer_spec mlp[] = {{.type = CN_LAYER_LINEAR, .out = 4}, {.type = CN_LAYER_RELU}, {.type = CN_LAYER_LINEAR, .out = 1}};
    m = build(mlp, 3, (cn_model_input){.seq = 1, .features = 3}, &ps);
    ck_assert_int_eq(cn_model_has_recurrent(m), 0);
    ck_assert_str_eq(cn_model_layer_type(m, 1), "relu");
    cn_model_free(m);
    cn_paramset_free(&ps);
}
END_TEST

Suite *suite_model_query(void)
{
    Suite *s = suite_create("model_query");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, model_reports_layer_types_and_recurrence);
    suite_add_tcase(s, tc);
    return s;
}
