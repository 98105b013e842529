/* The configs of the resume fuzz target (fuzz_resume.c) and of its seed generator
 * (make_resume_seeds.c): every layer type and every clip mode, small enough that a session opens in a
 * millisecond. A fuzz input is one byte choosing a config (mod FUZZ_RESUME_N) and then a checkpoint. */
#ifndef FUZZ_RESUME_CONFIGS_H
#define FUZZ_RESUME_CONFIGS_H

typedef struct {
    const char *name;
    const char *json;
} fuzz_resume_config;

/* The text of the "text" config (written next to the configs as fuzz_text.txt): 4 characters. */
#define FUZZ_RESUME_TEXT "abcdabdcacbdbadcabcdacbdbcadabdcbacdabcdadcbabcdacdb\n"

#define MLP "\"model\": [{\"type\": \"linear\", \"out\": 6}, {\"type\": \"tanh\"}, {\"type\": \"linear\", \"out\": 1}]"
#define TRAIN(steps, extra) "\"train\": {\"steps\": " #steps ", \"batch_size\": 4, \"checkpoint_every\": 0" extra "}"

static const fuzz_resume_config fuzz_resume_configs[] = {
    {"mlp_none_sgd",
     "{\"seed\": 1, \"data\": {\"kind\": \"xor\", \"train_size\": 12, \"test_size\": 4}, " MLP ", \"loss\": \"mse\", "
     "\"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1}, \"clip\": {\"mode\": \"none\"}, " TRAIN(6, "") "}"},
    {"mlp_value_momentum",
     "{\"seed\": 2, \"data\": {\"kind\": \"spirals\", \"classes\": 3, \"train_size\": 10, \"test_size\": 4}, "
     "\"model\": [{\"type\": \"linear\", \"out\": 5}, {\"type\": \"relu\"}, {\"type\": \"dropout\", \"p\": 0.2}, "
     "{\"type\": \"linear\", \"out\": 3}], \"loss\": \"cross_entropy\", "
     "\"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1, \"momentum\": 0.9, \"nesterov\": true}, "
     "\"clip\": {\"mode\": \"value\", \"clip_value\": 0.05}, " TRAIN(6, "") "}"},
    {"mlp_norm_adamw_accum",
     "{\"seed\": 3, \"data\": {\"kind\": \"xor\", \"target_kind\": \"float\", \"train_size\": 9, \"test_size\": 0, "
     "\"shuffle\": false}, \"model\": [{\"type\": \"linear\", \"out\": 4}, {\"type\": \"sigmoid\"}, "
     "{\"type\": \"linear\", \"out\": 1}], \"loss\": \"bce_with_logits\", "
     "\"optimizer\": {\"type\": \"adamw\", \"lr\": 0.05, \"weight_decay\": 0.1}, "
     "\"clip\": {\"mode\": \"norm\", \"max_norm\": 0.1}, " TRAIN(6, ", \"grad_accum\": 2") "}"},
    {"rnn_norm_per_tensor",
     "{\"seed\": 4, \"data\": {\"kind\": \"adding\", \"seq_len\": 4, \"train_size\": 10, \"test_size\": 4}, "
     "\"model\": [{\"type\": \"rnn\", \"hidden\": 3}, {\"type\": \"linear\", \"out\": 1}], \"loss\": \"mse\", "
     "\"optimizer\": {\"type\": \"adam\", \"lr\": 0.01}, "
     "\"clip\": {\"mode\": \"norm_per_tensor\", \"max_norm\": 0.05, \"on_nonfinite\": \"skip\"}, " TRAIN(6, "") "}"},
    {"lstm_agc",
     "{\"seed\": 5, \"data\": {\"kind\": \"temporal_order\", \"seq_len\": 10, \"train_size\": 8, \"test_size\": 4}, "
     "\"model\": [{\"type\": \"lstm\", \"hidden\": 3}, {\"type\": \"linear\", \"out\": 4}], "
     "\"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01}, "
     "\"clip\": {\"mode\": \"agc\", \"clipping\": 0.01}, " TRAIN(6, "") "}"},
    {"gru_autoclip",
     "{\"seed\": 6, \"data\": {\"kind\": \"sine\", \"seq_len\": 4, \"train_size\": 10, \"test_size\": 3}, "
     "\"model\": [{\"type\": \"gru\", \"hidden\": 3, \"output\": \"sequence\"}, {\"type\": \"linear\", \"out\": 1}], "
     "\"loss\": \"mse\", \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01}, "
     "\"clip\": {\"mode\": \"autoclip\", \"percentile\": 50, \"history\": 8}, " TRAIN(6, "") "}"},
    {"rnn_zclip_bptt",
     "{\"seed\": 7, \"data\": {\"kind\": \"adding\", \"seq_len\": 6, \"train_size\": 7, \"test_size\": 2}, "
     "\"model\": [{\"type\": \"rnn\", \"hidden\": 3, \"nonlinearity\": \"relu\"}, {\"type\": \"linear\", \"out\": 1}], "
     "\"loss\": \"mse\", \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.05, \"momentum\": 0.5}, "
     "\"clip\": {\"mode\": \"zclip\", \"warmup\": 3, \"max_norm\": 1.0, \"on_nonfinite\": \"zero\"}, "
     TRAIN(6, ", \"bptt\": 2") "}"},
    {"mlp_stage_list",
     "{\"seed\": 8, \"data\": {\"kind\": \"spirals\", \"train_size\": 10, \"test_size\": 4}, "
     "\"model\": [{\"type\": \"linear\", \"out\": 4}, {\"type\": \"tanh\"}, {\"type\": \"linear\", \"out\": 2}], "
     "\"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"adam\", \"lr\": 0.05}, "
     "\"clip\": [{\"mode\": \"agc\", \"clipping\": 0.05}, {\"mode\": \"autoclip\", \"history\": 3}, "
     "{\"mode\": \"value\", \"clip_value\": 0.5, \"on_nonfinite\": \"skip\", \"max_consecutive_skips\": 3}], "
     TRAIN(6, "") "}"},
    {"text_embedding_gru",
     "{\"seed\": 9, \"data\": {\"kind\": \"text\", \"path\": \"fuzz_text.txt\", \"seq_len\": 6, "
     "\"test_fraction\": 0.2}, \"model\": [{\"type\": \"embedding\", \"dim\": 3}, "
     "{\"type\": \"gru\", \"hidden\": 4, \"output\": \"sequence\"}, {\"type\": \"linear\", \"out\": 5}], "
     "\"loss\": \"cross_entropy\", \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1, \"momentum\": 0.9}, "
     "\"clip\": {\"mode\": \"norm\", \"max_norm\": 1.0, \"norm_type\": 1}, " TRAIN(6, "") "}"},
    /* lr so large that the loss overflows: the skip policy skips, then stops (non-zero skip counters) */
    {"rnn_explode_skip",
     "{\"seed\": 10, \"data\": {\"kind\": \"adding\", \"seq_len\": 3, \"train_size\": 8, \"test_size\": 2}, "
     "\"model\": [{\"type\": \"rnn\", \"hidden\": 3, \"nonlinearity\": \"relu\"}, {\"type\": \"linear\", \"out\": 1}], "
     "\"loss\": \"mse\", \"optimizer\": {\"type\": \"sgd\", \"lr\": 1e30}, "
     "\"clip\": {\"mode\": \"none\", \"on_nonfinite\": \"skip\", \"max_consecutive_skips\": 2}, " TRAIN(6, "") "}"},
    /* the same with "propagate": NaN weights and moments are a state a run can save */
    {"mlp_explode_propagate",
     "{\"seed\": 11, \"data\": {\"kind\": \"xor\", \"train_size\": 8, \"test_size\": 2}, " MLP ", \"loss\": \"mse\", "
     "\"optimizer\": {\"type\": \"adam\", \"lr\": 1e38}, \"clip\": {\"mode\": \"norm\", \"max_norm\": 1e38, "
     "\"on_nonfinite\": \"propagate\"}, " TRAIN(6, "") "}"},
};

#define FUZZ_RESUME_N ((int)(sizeof fuzz_resume_configs / sizeof fuzz_resume_configs[0]))

#undef MLP
#undef TRAIN

#endif
