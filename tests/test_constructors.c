/* Suite "constructors": the C constructors (cn_optim_new, cn_clip_new, cn_model_new) give exactly what
 * their JSON twins give: same parameter names and initial values, bit-identical updates, clipped
 * gradients and reports over several steps; their errors name the JSON key. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static void two_tensors(cn_paramset *ps)
{
    cn_paramset_init(ps);
    int a[2] = {3, 4}, b[1] = {5};
    ck_assert_ok(cn_paramset_add(ps, "0.weight", 2, a, NULL));
    ck_assert_ok(cn_paramset_add(ps, "1.bias", 1, b, NULL));
    ck_assert_ok(cn_paramset_finalize(ps));
    tu_fill_uniform(ps->data, ps->total, 3, -1.0f, 1.0f);
}

static void set_grads(cn_paramset *ps, int step, float scale)
{
    tu_fill_uniform(ps->grad, ps->total, 100 + (uint64_t)step, -scale, scale);
}

static void same_optim(const char *json, const cn_optim_opts *opts)
{
    cn_paramset pa, pb;
    two_tensors(&pa);
    two_tensors(&pb);
    cn_optim *a = NULL, *b = NULL;
    cJSON *j;
    ck_assert_ok(cn_json_parse(json, "optimizer", &j));
    ck_assert_ok(cn_optim_from_json(j, "optimizer", &pa, &a));
    cJSON_Delete(j);
    ck_assert_ok(cn_optim_new(opts, &pb, &b));
    ck_assert_str_eq(cn_optim_type(a), cn_optim_type(b));
    ck_assert(cn_optim_lr(a) == cn_optim_lr(b));
    for (int s = 1; s <= 6; s++) {
        set_grads(&pa, s, 2.0f);
        set_grads(&pb, s, 2.0f);
        ck_assert_ok(cn_optim_step(a, &pa, cn_optim_lr(a)));
        ck_assert_ok(cn_optim_step(b, &pb, cn_optim_lr(b)));
        ck_assert_msg(memcmp(pa.data, pb.data, pa.total * sizeof(float)) == 0, "%s: step %d differs", json, s);
    }
    /* and the optimizer moved the weights */
    cn_paramset p0;
    two_tensors(&p0);
    ck_assert(memcmp(p0.data, pa.data, p0.total * sizeof(float)) != 0);
    cn_paramset_free(&p0);
    cn_optim_free(a);
    cn_optim_free(b);
    cn_paramset_free(&pa);
    cn_paramset_free(&pb);
}

START_TEST(optim_new_equals_its_json_twin)
{
    same_optim("{\"type\":\"sgd\",\"lr\":0.1}", &(cn_optim_opts){.type = CN_OPTIM_SGD, .lr = 0.1});
    same_optim("{\"type\":\"sgd\",\"lr\":0.05,\"momentum\":0.9,\"nesterov\":true,\"weight_decay\":1e-3}",
               &(cn_optim_opts){.type = CN_OPTIM_SGD, .lr = 0.05, .momentum = 0.9, .nesterov = 1, .weight_decay = 1e-3});
    same_optim("{\"type\":\"adam\"}", &(cn_optim_opts){.type = CN_OPTIM_ADAM});
    same_optim("{\"type\":\"adam\",\"lr\":0.01,\"betas\":[0.8,0.99],\"eps\":1e-6}",
               &(cn_optim_opts){.type = CN_OPTIM_ADAM, .lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6});
    same_optim("{\"type\":\"adam\",\"betas\":[0.5,0.999]}", &(cn_optim_opts){.type = CN_OPTIM_ADAM, .beta1 = 0.5});
    same_optim("{\"type\":\"adamw\",\"lr\":0.01}", &(cn_optim_opts){.type = CN_OPTIM_ADAMW, .lr = 0.01});
    same_optim("{\"type\":\"adamw\",\"lr\":0.01,\"weight_decay\":0}",
               &(cn_optim_opts){.type = CN_OPTIM_ADAMW, .lr = 0.01, .weight_decay = CN_ZERO});
}
END_TEST

/* Guards the test above: AdamW's default decay (1e-2) and an explicit 0 (CN_ZERO) do differ. */
START_TEST(optim_new_cn_zero_is_not_the_default)
{
    cn_paramset pa, pb;
    two_tensors(&pa);
    two_tensors(&pb);
    cn_optim *a, *b;
    ck_assert_ok(cn_optim_new(&(cn_optim_opts){.type = CN_OPTIM_ADAMW, .lr = 0.01}, &pa, &a));
    ck_assert_ok(cn_optim_new(&(cn_optim_opts){.type = CN_OPTIM_ADAMW, .lr = 0.01, .weight_decay = CN_ZERO}, &pb, &b));
    set_grads(&pa, 1, 1.0f);
    set_grads(&pb, 1, 1.0f);
    ck_assert_ok(cn_optim_step(a, &pa, 0.01));
    ck_assert_ok(cn_optim_step(b, &pb, 0.01));
    ck_assert(memcmp(pa.data, pb.data, pa.total * sizeof(float)) != 0);
    cn_optim_free(a);
    cn_optim_free(b);
    cn_paramset_free(&pa);
    cn_paramset_free(&pb);
}
END_TEST

static void same_clip(const char *json, const cn_clip_opts *opts, int n)
{
    cn_paramset pa, pb;
    two_tensors(&pa);
    two_tensors(&pb);
    cn_clip *a = NULL, *b = NULL;
    ck_assert_ok(cn_clip_from_string(json, &pa, &a));
    ck_assert_ok(cn_clip_new(opts, n, &pb, &b));
    ck_assert_int_eq(cn_clip_n_stages(a), cn_clip_n_stages(b));
    ck_assert_int_eq(cn_clip_policy(a), cn_clip_policy(b));
    int clipped = 0;
    for (int s = 1; s <= 40; s++) {
        /* norms that vary by orders of magnitude, so the adaptive modes clip sometimes */
        float scale = (s % 7 == 0) ? 50.0f : (s % 3 == 0 ? 0.2f : 1.0f);
        set_grads(&pa, s, scale);
        set_grads(&pb, s, scale);
        cn_clip_action xa, xb;
        ck_assert_ok(cn_clip_run(a, &pa, 0, &xa));
        ck_assert_ok(cn_clip_run(b, &pb, 0, &xb));
        ck_assert_int_eq(xa, xb);
        ck_assert_msg(memcmp(pa.grad, pb.grad, pa.total * sizeof(float)) == 0, "%s: step %d differs", json, s);
        const cn_clip_report *ra = cn_clip_last_report(a), *rb = cn_clip_last_report(b);
        ck_assert(memcmp(&ra->coef, &rb->coef, sizeof(double)) == 0);
        ck_assert(memcmp(&ra->threshold, &rb->threshold, sizeof(double)) == 0);
        ck_assert(memcmp(&ra->norm_post, &rb->norm_post, sizeof(double)) == 0);
        ck_assert_int_eq(ra->clipped, rb->clipped);
        clipped += ra->clipped;
    }
    if (strstr(json, "none") == NULL) ck_assert_msg(clipped > 0, "%s never clipped: the test shows nothing", json);
    cn_clip_free(a);
    cn_clip_free(b);
    cn_paramset_free(&pa);
    cn_paramset_free(&pb);
}

START_TEST(clip_new_equals_its_json_twin)
{
    same_clip("{\"mode\":\"none\"}", &(cn_clip_opts){.mode = CN_CLIP_MODE_NONE}, 1);
    same_clip("{\"mode\":\"value\",\"clip_value\":0.5}", &(cn_clip_opts){.mode = CN_CLIP_MODE_VALUE, .clip_value = 0.5}, 1);
    same_clip("{\"mode\":\"norm\",\"max_norm\":1}", &(cn_clip_opts){.mode = CN_CLIP_MODE_NORM, .max_norm = 1}, 1);
    same_clip("{\"mode\":\"norm\",\"max_norm\":1,\"eps\":0,\"norm_type\":\"inf\"}",
              &(cn_clip_opts){.mode = CN_CLIP_MODE_NORM, .max_norm = 1, .eps = CN_ZERO, .norm_type = INFINITY}, 1);
    same_clip("{\"mode\":\"norm\",\"max_norm\":2,\"norm_type\":1}",
              &(cn_clip_opts){.mode = CN_CLIP_MODE_NORM, .max_norm = 2, .norm_type = 1}, 1);
    same_clip("{\"mode\":\"norm_per_tensor\",\"max_norm\":0.5}",
              &(cn_clip_opts){.mode = CN_CLIP_MODE_NORM_PER_TENSOR, .max_norm = 0.5}, 1);
    same_clip("{\"mode\":\"agc\",\"clipping\":0.05}",
              &(cn_clip_opts){.mode = CN_CLIP_MODE_AGC, .clipping = 0.05}, 1);
    same_clip("{\"mode\":\"autoclip\",\"percentile\":50,\"history\":8,\"include_current\":true}",
              &(cn_clip_opts){.mode = CN_CLIP_MODE_AUTOCLIP, .percentile = 50, .history = 8, .include_current = 1}, 1);
    same_clip("{\"mode\":\"autoclip\",\"percentile\":0,\"fallback_max_norm\":1}",
              &(cn_clip_opts){.mode = CN_CLIP_MODE_AUTOCLIP, .percentile = CN_ZERO, .fallback_max_norm = 1}, 1);
    same_clip("{\"mode\":\"zclip\",\"warmup\":5,\"max_norm\":3,\"ema_input\":\"uncapped\",\"alpha\":0.9}",
              &(cn_clip_opts){.mode = CN_CLIP_MODE_ZCLIP, .warmup = 5, .max_norm = 3, .ema_uncapped = 1, .alpha = 0.9}, 1);
    cn_clip_opts list[2] = {{.mode = CN_CLIP_MODE_VALUE, .clip_value = 5, .on_nonfinite = CN_NONFINITE_SKIP},
                            {.mode = CN_CLIP_MODE_NORM, .max_norm = 1}};
    same_clip("[{\"mode\":\"value\",\"clip_value\":5,\"on_nonfinite\":\"skip\"},{\"mode\":\"norm\",\"max_norm\":1}]", list, 2);
}
END_TEST

START_TEST(model_new_equals_its_json_twin)
{
    const char *json = "[{\"type\":\"gru\",\"hidden\":6,\"output\":\"sequence\"},{\"type\":\"dropout\",\"p\":0.25},"
                       "{\"type\":\"rnn\",\"hidden\":5,\"nonlinearity\":\"relu\",\"name\":\"enc\"},"
                       "{\"type\":\"linear\",\"out\":4,\"bias\":false},{\"type\":\"tanh\"},{\"type\":\"linear\",\"out\":2}]";
    cn_layer_spec spec[] = {{.type = CN_LAYER_GRU, .hidden = 6, .sequence = 1}, {.type = CN_LAYER_DROPOUT, .p = 0.25},
                            {.type = CN_LAYER_RNN, .hidden = 5, .relu = 1, .name = "enc"},
                            {.type = CN_LAYER_LINEAR, .out = 4, .no_bias = 1}, {.type = CN_LAYER_TANH},
                            {.type = CN_LAYER_LINEAR, .out = 2}};
    cn_model_input in = {.seq = 1, .features = 3};
    cn_paramset pa, pb;
    cn_paramset_init(&pa);
    cn_paramset_init(&pb);
    cn_model *a, *b;
    cJSON *j;
    ck_assert_ok(cn_json_parse(json, "model", &j));
    ck_assert_ok(cn_model_build(j, "model", &in, &pa, &a));
    cJSON_Delete(j);
    ck_assert_ok(cn_model_new(spec, 6, &in, &pb, &b));
    ck_assert_ok(cn_paramset_finalize(&pa));
    ck_assert_ok(cn_paramset_finalize(&pb));
    ck_assert_int_eq(pa.count, pb.count);
    for (int i = 0; i < pa.count; i++) ck_assert_str_eq(pa.info[i].name, pb.info[i].name);
    ck_assert_int_ge(cn_paramset_find(&pb, "enc.weight_hh_l0"), 0);
    ck_assert_int_lt(cn_paramset_find(&pb, "3.bias"), 0);
    cn_rng ra, rb;
    cn_rng_seed(&ra, 9);
    cn_rng_seed(&rb, 9);
    ck_assert_ok(cn_model_init(a, &pa, &ra));
    ck_assert_ok(cn_model_init(b, &pb, &rb));
    ck_assert(memcmp(pa.data, pb.data, pa.total * sizeof(float)) == 0);
    /* forward in training mode (dropout on, same RNG) gives the same outputs */
    float x[4 * 2 * 3];
    tu_fill_uniform(x, 24, 5, -1, 1);
    int xs[3] = {4, 2, 3};
    cn_tensor xt;
    cn_tensor_view(&xt, x, 3, xs);
    cn_graph ga, gb;
    ck_assert_ok(cn_graph_init(&ga));
    ck_assert_ok(cn_graph_init(&gb));
    cn_rng da, db;
    cn_rng_seed(&da, 4);
    cn_rng_seed(&db, 4);
    ga.training = gb.training = 1;
    ga.rng = &da;
    gb.rng = &db;
    cn_var *ya = cn_model_forward(a, &ga, &pa, cn_input(&ga, &xt), 0);
    cn_var *yb = cn_model_forward(b, &gb, &pb, cn_input(&gb, &xt), 0);
    ck_assert_ptr_nonnull(ya);
    ck_assert_ptr_nonnull(yb);
    ck_assert_int_eq((int)cn_numel(&ya->v), 4);
    ck_assert(memcmp(ya->v.data, yb->v.data, 4 * sizeof(float)) == 0);
    cn_graph_free(&ga);
    cn_graph_free(&gb);
    cn_model_free(a);
    cn_model_free(b);
    cn_paramset_free(&pa);
    cn_paramset_free(&pb);
}
END_TEST

START_TEST(constructor_errors_name_the_json_key)
{
    cn_paramset ps;
    two_tensors(&ps);
    cn_optim *o = NULL;
    ck_assert_int_eq(cn_optim_new(&(cn_optim_opts){.type = CN_OPTIM_SGD}, &ps, &o), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "optimizer.lr"), "%s", cn_errmsg());
    ck_assert_int_eq(cn_optim_new(&(cn_optim_opts){.type = CN_OPTIM_ADAM, .lr = -3}, &ps, &o), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "optimizer.lr"), "%s", cn_errmsg());
    ck_assert_ptr_null(o);
    cn_clip *c = NULL;
    cn_clip_opts two[2] = {{.mode = CN_CLIP_MODE_NONE}, {.mode = CN_CLIP_MODE_NORM}};
    ck_assert_int_eq(cn_clip_new(two, 2, &ps, &c), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "clip.1.max_norm"), "%s", cn_errmsg());
    ck_assert_int_eq(cn_clip_new(&(cn_clip_opts){.mode = (cn_clip_mode_id)42}, 1, &ps, &c), CN_ERR_ARG);
    ck_assert_ptr_null(c);
    cn_paramset_free(&ps);
    cn_paramset p2;
    cn_paramset_init(&p2);
    cn_model *m = NULL;
    ck_assert_int_eq(cn_model_new(&(cn_layer_spec){.type = CN_LAYER_LSTM}, 1, &(cn_model_input){.seq = 1, .features = 2},
                                  &p2, &m), CN_ERR_ARG);
    ck_assert_msg(strstr(cn_errmsg(), "model.0.hidden"), "%s", cn_errmsg());
    ck_assert_ptr_null(m);
    cn_paramset_free(&p2);
}
END_TEST

Suite *suite_constructors(void)
{
    Suite *s = suite_create("constructors");
    TCase *tc = tcase_create("constructors");
    tcase_add_test(tc, optim_new_equals_its_json_twin);
    tcase_add_test(tc, optim_new_cn_zero_is_not_the_default);
    tcase_add_test(tc, clip_new_equals_its_json_twin);
    tcase_add_test(tc, model_new_equals_its_json_twin);
    tcase_add_test(tc, constructor_errors_name_the_json_key);
    suite_add_tcase(s, tc);
    return s;
}
