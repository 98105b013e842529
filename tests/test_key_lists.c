/* The config's --set keeps the keys a section's modules call common when a "mode" or "type" changes; the
 * lists live in the modules (one source of truth). Each common key must be one that every type accepts. */
#include "testutil.h"
#include "config/config.h"

#include <string.h>

static int in_list(const char *const *list, const char *k)
{
    for (; list && *list; list++)
        if (!strcmp(*list, k)) return 1;
    return 0;
}

START_TEST(optimizer_common_keys_are_accepted_by_every_type)
{
    static const char *const types[] = {"sgd", "adam", "adamw"};
    for (int t = 0; t < 3; t++) {
        const char *const *keys = cn_optim_type_keys(types[t]);
        ck_assert_ptr_nonnull(keys);
        for (const char *const *k = cn_optim_common_keys; *k; k++)
            ck_assert_msg(in_list(keys, *k), "optimizer %s does not accept common key %s", types[t], *k);
    }
    ck_assert(in_list(cn_optim_type_keys("sgd"), "momentum") && !in_list(cn_optim_type_keys("adam"), "momentum"));
    ck_assert_ptr_null(cn_optim_type_keys("lion"));
}
END_TEST

START_TEST(schedule_common_keys_are_accepted_by_every_type)
{
    static const char *const types[] = {"constant", "step", "cosine"};
    for (int t = 0; t < 3; t++) {
        const char *const *keys = cn_schedule_type_keys(types[t]);
        ck_assert_ptr_nonnull(keys);
        for (const char *const *k = cn_schedule_common_keys; *k; k++)
            ck_assert_msg(in_list(keys, *k), "schedule %s does not accept common key %s", types[t], *k);
    }
    ck_assert(in_list(cn_schedule_type_keys("cosine"), "t_max") && !in_list(cn_schedule_type_keys("step"), "t_max"));
    ck_assert_ptr_null(cn_schedule_type_keys("linear"));
}
END_TEST

/* The stage adds the common keys to every mode's own: a mode does not list them again. */
START_TEST(clip_common_keys_are_not_a_modes_own)
{
    static const char *const modes[] = {"none", "value", "norm", "norm_per_tensor", "agc", "autoclip", "zclip"};
    ck_assert(in_list(cn_clip_common_keys, "on_nonfinite") && in_list(cn_clip_common_keys, "max_consecutive_skips"));
    for (int m = 0; m < 7; m++) {
        const cn_clip_mode_def *def = cn_clip_find_mode(modes[m]);
        ck_assert_ptr_nonnull(def);
        for (const char *const *k = cn_clip_common_keys; *k; k++)
            ck_assert_msg(!in_list(def->keys, *k), "mode %s lists common key %s", modes[m], *k);
    }
}
END_TEST

/* --set keeps exactly the common keys across a change of type (the module's list, read by config). */
START_TEST(set_type_keeps_the_modules_common_keys)
{
    cJSON *root = NULL;
    ck_assert_int_eq(cn_json_parse("{\"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1, \"momentum\": 0.9, "
                                   "\"weight_decay\": 0.01}, \"clip\": {\"mode\": \"norm\", \"max_norm\": 1, "
                                   "\"on_nonfinite\": \"skip\"}}", "t", &root), CN_OK);
    ck_assert_int_eq(cn_config_set(root, "optimizer.type=adam"), CN_OK);
    ck_assert_int_eq(cn_config_set(root, "clip.mode=value"), CN_OK);
    char *text = cJSON_PrintUnformatted(root);
    ck_assert_str_eq(text, "{\"optimizer\":{\"lr\":0.1,\"weight_decay\":0.01,\"type\":\"adam\"},"
                           "\"clip\":{\"on_nonfinite\":\"skip\",\"mode\":\"value\"}}");
    cJSON_free(text);
    cJSON_Delete(root);
}
END_TEST

Suite *suite_key_lists(void)
{
    Suite *s = suite_create("key_lists");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, optimizer_common_keys_are_accepted_by_every_type);
    tcase_add_test(tc, schedule_common_keys_are_accepted_by_every_type);
    tcase_add_test(tc, clip_common_keys_are_not_a_modes_own);
    tcase_add_test(tc, set_type_keeps_the_modules_common_keys);
    suite_add_tcase(s, tc);
    return s;
}
