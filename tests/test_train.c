/* The training step and session set-up through the library (no processes). */
#include "testutil.h"

#include <string.h>

#include "train/session.h"

START_TEST(training_step_allocates_nothing_after_the_first)
{
    const char *cfgs[] = {"configs/tiny_rnn.json", "configs/tiny_mlp.json"};
    for (int c = 0; c < 2; c++) {
        cn_session s;
        ck_assert_ok(cn_session_open(&s, cfgs[c], NULL, 0));
        double loss, lr;
        int epoch;
        cn_clip_action act;
        for (int i = 0; i < 3; i++) ck_assert_ok(cn_session_step(&s, &loss, &epoch, &lr, &act));
        uint64_t before = cn_alloc_count();
        for (int i = 0; i < 20; i++) ck_assert_ok(cn_session_step(&s, &loss, &epoch, &lr, &act));
        ck_assert_msg(cn_alloc_count() == before, "%s: %llu allocations in 20 steps", cfgs[c],
                      (unsigned long long)(cn_alloc_count() - before));
        ck_assert_int_eq((int)s.step, 23);
        cn_session_close(&s);
    }
}
END_TEST

/* grad_accum k with batch b sees the same examples as one batch of k*b when the model is
 * linear in the batch mean: the mean of k micro-batch mean gradients equals the big batch's. */
START_TEST(grad_accum_averages_micro_batch_gradients)
{
    char *a_sets[] = {"train.batch_size=8", "train.grad_accum=2", "data.shuffle=false", "clip.mode=none"};
    char *b_sets[] = {"train.batch_size=16", "train.grad_accum=1", "data.shuffle=false", "clip.mode=none"};
    cn_session a, b;
    ck_assert_ok(cn_session_open(&a, "configs/tiny_mlp.json", a_sets, 4));
    ck_assert_ok(cn_session_open(&b, "configs/tiny_mlp.json", b_sets, 4));
    ck_assert_int_eq((int)a.ps.total, (int)b.ps.total);
    ck_assert(memcmp(a.ps.data, b.ps.data, a.ps.total * sizeof(float)) == 0);
    double la, lb, lr;
    int ep;
    cn_clip_action act;
    ck_assert_ok(cn_session_step(&a, &la, &ep, &lr, &act));
    ck_assert_ok(cn_session_step(&b, &lb, &ep, &lr, &act));
    /* cross-entropy is a mean over rows: equal-size micro-batches average to the big batch */
    ck_assert_near(la, lb, 1e-6);
    const cn_clip_report *ra = cn_clip_last_report(a.clip), *rb = cn_clip_last_report(b.clip);
    ck_assert_near(ra->norm_pre_l2, rb->norm_pre_l2, 1e-5 * rb->norm_pre_l2);
    for (size_t i = 0; i < a.ps.total; i++) ck_assert_near(a.ps.data[i], b.ps.data[i], 1e-6);
    cn_session_close(&a);
    cn_session_close(&b);
}
END_TEST

START_TEST(model_that_does_not_fit_the_data_is_rejected_before_training)
{
    static const struct { char *set; const char *needle; } cases[] = {
        {"model.1.out=2", "outputs 2 values"},
        {"model.0.output=sequence", "output"},
        {"loss=cross_entropy", "class labels"},
        {"train.bptt=0", NULL},
    };
    for (int i = 0; i < 4; i++) {
        cn_session s;
        char *sets[] = {cases[i].set};
        cn_status st = cn_session_open(&s, "configs/tiny_rnn.json", sets, 1);
        if (cases[i].needle) {
            ck_assert_msg(st == CN_ERR_ARG, "%s: status %d", cases[i].set, st);
            ck_assert_msg(strstr(cn_errmsg(), cases[i].needle) && strstr(cn_errmsg(), "tiny_rnn.json"),
                          "%s: %s", cases[i].set, cn_errmsg());
        } else {
            ck_assert_ok(st);
        }
        cn_session_close(&s);
    }
}
END_TEST

START_TEST(set_overrides_paths_indices_and_modes)
{
    cJSON *root = cJSON_Parse("{\"clip\": {\"mode\": \"norm\", \"max_norm\": 1, \"on_nonfinite\": \"skip\"},"
                              " \"model\": [{\"type\": \"rnn\", \"hidden\": 4}], \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1, \"momentum\": 0.9}}");
    ck_assert_ok(cn_config_set(root, "model.0.hidden=16"));
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "model"), 0), "hidden")->valueint, 16);
    ck_assert_ok(cn_config_set(root, "clip.mode=value"));   /* a new mode starts afresh, keeping on_nonfinite */
    cJSON *clip = cJSON_GetObjectItem(root, "clip");
    ck_assert_str_eq(cJSON_GetObjectItem(clip, "mode")->valuestring, "value");
    ck_assert(!cJSON_HasObjectItem(clip, "max_norm"));
    ck_assert_str_eq(cJSON_GetObjectItem(clip, "on_nonfinite")->valuestring, "skip");
    ck_assert_ok(cn_config_set(root, "optimizer.type=adam"));
    cJSON *opt = cJSON_GetObjectItem(root, "optimizer");
    ck_assert(!cJSON_HasObjectItem(opt, "momentum") && cJSON_HasObjectItem(opt, "lr"));
    ck_assert_ok(cn_config_set(root, "optimizer.betas=[0.9,0.99]"));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(opt, "betas")), 2);
    ck_assert_ok(cn_config_set(root, "train.steps=5"));      /* missing objects are created */
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "train"), "steps")->valueint, 5);
    cJSON *layer0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "model"), 0);
    cJSON_AddStringToObject(layer0, "nonlinearity", "relu");
    ck_assert_ok(cn_config_set(root, "model.0.type=gru"));   /* a layer keeps the keys its new type accepts */
    layer0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "model"), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(layer0, "hidden")->valueint, 16);
    ck_assert(!cJSON_HasObjectItem(layer0, "nonlinearity"));
    /* the schedule keeps its warm-up, a clip stage in a list starts afresh too */
    ck_assert_ok(cn_config_set(root, "schedule.warmup_steps=50"));
    ck_assert_ok(cn_config_set(root, "schedule.type=cosine"));
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "schedule"), "warmup_steps")->valueint, 50);
    ck_assert_ok(cn_config_set(root, "clip=[{\"mode\": \"value\", \"clip_value\": 1, \"on_nonfinite\": \"zero\"}]"));
    ck_assert_ok(cn_config_set(root, "clip.0.mode=agc"));
    cJSON *st0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "clip"), 0);
    ck_assert(!cJSON_HasObjectItem(st0, "clip_value"));
    ck_assert_str_eq(cJSON_GetObjectItem(st0, "on_nonfinite")->valuestring, "zero");
    ck_assert_int_eq(cn_config_set(root, "model.3.hidden=1"), CN_ERR_ARG);
    ck_assert(strstr(cn_errmsg(), "model") != NULL);
    ck_assert_int_eq(cn_config_set(root, "model.hidden=1"), CN_ERR_ARG);
    ck_assert_int_eq(cn_config_set(root, "noequals"), CN_ERR_ARG);
    ck_assert_int_eq(cn_config_set(root, "clip.mode.x=1"), CN_ERR_ARG);
    cJSON_Delete(root);
}
END_TEST

Suite *suite_train(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("session");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, training_step_allocates_nothing_after_the_first);
    tcase_add_test(tc, grad_accum_averages_micro_batch_gradients);
    tcase_add_test(tc, model_that_does_not_fit_the_data_is_rejected_before_training);
    tcase_add_test(tc, set_overrides_paths_indices_and_modes);
    suite_add_tcase(s, tc);
    return s;
}
