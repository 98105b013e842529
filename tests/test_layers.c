/* Suite "layers": model building (names, shapes, defaults, errors), initialisation, the forward pass
 * checked by finite differences (inputs and parameters), truncated BPTT against an independent unroll
 * written with elementary ops, and the losses. */
#include "testutil.h"
#include "layers/layers.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Helpers */

typedef struct {
    cJSON *json;
    cn_model *m;
    cn_paramset ps;
} tmodel;

/* Builds, finalizes and initialises (seed 7) a model; returns the build status (model freed on error). */
static cn_status tm_build(tmodel *t, const char *json, cn_model_input in)
{
    memset(t, 0, sizeof *t);
    cn_paramset_init(&t->ps);
    cn_status st = cn_json_parse(json, "model", &t->json);
    if (st) return st;
    if ((st = cn_model_build(t->json, "model", &in, &t->ps, &t->m))) return st;
    if ((st = cn_paramset_finalize(&t->ps))) return st;
    cn_rng r;
    cn_rng_seed(&r, 7);
    return cn_model_init(t->m, &t->ps, &r);
}

static void tm_free(tmodel *t)
{
    cn_model_free(t->m);
    cn_paramset_free(&t->ps);
    cJSON_Delete(t->json);
}

/* Build error message for a model description (the status must be an error). */
static const char *build_error(const char *json, cn_model_input in)
{
    tmodel t;
    cn_status st = tm_build(&t, json, in);
    tm_free(&t);
    ck_assert_msg(st != CN_OK, "expected %s to be rejected", json);
    return cn_errmsg();
}

#define ck_assert_errmsg_has(msg, part) \
    ck_assert_msg(strstr((msg), (part)) != NULL, "message \"%s\" lacks \"%s\"", (msg), (part))

static const cn_model_input SEQ4 = {1, 4, 0, 0};    /* [T, B, 4] */
static const cn_model_input FLAT3 = {0, 3, 0, 0};   /* [B, 3] */

/* Gradient check of loss = sum(w * model(x)) with fixed random w, over x and every parameter. */
typedef struct {
    tmodel *t;
    int bptt;
    float w[512];
} gc_ctx;

static cn_var *gc_loss(cn_graph *g, cn_var **in, void *vctx)
{
    gc_ctx *c = vctx;
    cn_var *y = cn_model_forward(c->t->m, g, &c->t->ps, in[0], c->bptt);
    if (!y) return NULL;
    ck_assert_uint_le(cn_numel(&y->v), 512);
    cn_tensor wt;
    cn_tensor_view(&wt, c->w, y->v.ndim, y->v.shape);
    return cn_sum(g, cn_mul(g, y, cn_input(g, &wt)));
}

static void gradcheck_model(const char *json, cn_model_input in, int ndim, const int *xshape, int bptt)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, json, in));
    gc_ctx c = {&t, bptt, {0}};
    tu_fill_uniform(c.w, 512, 11, -1, 1);
    float x[256];
    cn_tensor xt;
    ck_assert_ok(cn_tensor_view(&xt, x, ndim, xshape));
    ck_assert_uint_le(cn_numel(&xt), 256);
    tu_fill_uniform(x, cn_numel(&xt), 12, -1.5f, 1.5f);
    cn_gradcheck_opts o = {1e-3, 2e-4, 1e-2};
    cn_gradcheck_result r;
    ck_assert_ok(cn_gradcheck(gc_loss, &c, &xt, 1, &t.ps, &o, &r));
    ck_assert_msg(r.ok, "%s: worst input %d[%zu]: analytic %g numeric %g", json, r.worst_input, r.worst_index,
                  r.worst_analytic, r.worst_numeric);
    size_t nparam = 0;
    for (int i = 0; i < t.ps.count; i++) nparam += t.ps.info[i].numel;
    ck_assert_uint_eq(r.n_checked, cn_numel(&xt) + nparam);   /* every input and parameter element */
    tm_free(&t);
}

/* ------------------------------------------------------------------ */
/* Names, shapes, defaults */

static void assert_param(const cn_paramset *ps, const char *name, int ndim, int d0, int d1)
{
    int i = cn_paramset_find(ps, name);
    ck_assert_msg(i >= 0, "parameter %s missing", name);
    ck_assert_int_eq(ps->info[i].ndim, ndim);
    ck_assert_int_eq(ps->info[i].shape[0], d0);
    if (ndim > 1) ck_assert_int_eq(ps->info[i].shape[1], d1);
}

START_TEST(names_and_shapes_follow_torch_state_dict)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"rnn\",\"hidden\":5,\"output\":\"sequence\"},"
                              "{\"type\":\"lstm\",\"hidden\":3,\"output\":\"sequence\"},"
                              "{\"type\":\"gru\",\"hidden\":2,\"name\":\"enc\",\"output\":\"last\"},"
                              "{\"type\":\"tanh\"},{\"type\":\"linear\",\"out\":6},"
                              "{\"type\":\"dropout\"},{\"type\":\"linear\",\"out\":1,\"bias\":false}]",
                         SEQ4));
    ck_assert_int_eq(t.ps.count, 4 + 4 + 4 + 2 + 1);
    const char *order[] = {"0.weight_ih_l0", "0.weight_hh_l0", "0.bias_ih_l0", "0.bias_hh_l0"};
    for (int i = 0; i < 4; i++) ck_assert_str_eq(t.ps.info[i].name, order[i]);
    assert_param(&t.ps, "0.weight_ih_l0", 2, 5, 4);
    assert_param(&t.ps, "0.weight_hh_l0", 2, 5, 5);
    assert_param(&t.ps, "0.bias_ih_l0", 1, 5, 0);
    assert_param(&t.ps, "1.weight_ih_l0", 2, 12, 5);
    assert_param(&t.ps, "1.weight_hh_l0", 2, 12, 3);
    assert_param(&t.ps, "1.bias_hh_l0", 1, 12, 0);
    assert_param(&t.ps, "enc.weight_ih_l0", 2, 6, 3);
    assert_param(&t.ps, "enc.weight_hh_l0", 2, 6, 2);
    assert_param(&t.ps, "enc.bias_ih_l0", 1, 6, 0);
    assert_param(&t.ps, "4.weight", 2, 6, 2);
    assert_param(&t.ps, "4.bias", 1, 6, 0);
    assert_param(&t.ps, "6.weight", 2, 1, 6);
    ck_assert_int_lt(cn_paramset_find(&t.ps, "6.bias"), 0);
    cn_model_output o = cn_model_output_shape(t.m);
    ck_assert_int_eq(o.seq, 0);
    ck_assert_int_eq(o.features, 1);
    ck_assert_str_eq(cn_model_layer_prefix(t.m, 2), "enc");
    tm_free(&t);
}
END_TEST

START_TEST(embedding_weight_is_vocab_by_dim)
{
    tmodel t;
    cn_model_input in = {1, 1, 1, 10};
    ck_assert_ok(tm_build(&t, "[{\"type\":\"embedding\",\"dim\":4},{\"type\":\"gru\",\"hidden\":3,\"output\":\"sequence\"},"
                              "{\"type\":\"linear\",\"out\":10}]", in));
    assert_param(&t.ps, "0.weight", 2, 10, 4);   /* vocab defaulted from the data */
    ck_assert_int_eq((int)cJSON_GetObjectItem(cJSON_GetArrayItem(t.json, 0), "vocab")->valuedouble, 10);
    cn_model_output o = cn_model_output_shape(t.m);
    ck_assert_int_eq(o.seq, 1);
    ck_assert_int_eq(o.features, 10);
    tm_free(&t);
}
END_TEST

START_TEST(defaults_are_filled_into_the_json)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"rnn\",\"hidden\":2},{\"type\":\"dropout\"},{\"type\":\"linear\",\"out\":1}]", SEQ4));
    cJSON *l0 = cJSON_GetArrayItem(t.json, 0), *l1 = cJSON_GetArrayItem(t.json, 1), *l2 = cJSON_GetArrayItem(t.json, 2);
    ck_assert_str_eq(cJSON_GetObjectItem(l0, "output")->valuestring, "last");
    ck_assert_str_eq(cJSON_GetObjectItem(l0, "nonlinearity")->valuestring, "tanh");
    ck_assert_near(cJSON_GetObjectItem(l1, "p")->valuedouble, 0.5, 0);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(l2, "bias")));
    tm_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Config errors name the path */

START_TEST(error_names_path_of_bad_hidden)
{
    const char *m = build_error("[{\"type\":\"rnn\",\"hidden\":3,\"output\":\"sequence\"},{\"type\":\"lstm\",\"hidden\":0}]", SEQ4);
    ck_assert_str_eq(m, "model.1.hidden: expected an integer >= 1, got 0");
}
END_TEST

START_TEST(error_names_unknown_key_and_type)
{
    ck_assert_errmsg_has(build_error("[{\"type\":\"linear\",\"out\":2,\"outs\":3}]", FLAT3), "model.0");
    ck_assert_errmsg_has(build_error("[{\"type\":\"linear\",\"out\":2,\"outs\":3}]", FLAT3), "outs");
    ck_assert_errmsg_has(build_error("[{\"type\":\"tanh\"},{\"type\":\"conv\"}]", FLAT3), "model.1.type");
    ck_assert_errmsg_has(build_error("[{\"type\":\"linear\"}]", FLAT3), "model.0.out: required");
    ck_assert_errmsg_has(build_error("[{\"type\":\"dropout\",\"p\":1}]", FLAT3), "model.0.p");
    ck_assert_errmsg_has(build_error("[]", FLAT3), "model: expected a non-empty list");
}
END_TEST

START_TEST(error_recurrent_after_last_output)
{
    const char *m = build_error("[{\"type\":\"rnn\",\"hidden\":3},{\"type\":\"gru\",\"hidden\":2}]", SEQ4);
    ck_assert_errmsg_has(m, "model.1:");
    ck_assert_errmsg_has(m, "no sequence");
    ck_assert_errmsg_has(build_error("[{\"type\":\"lstm\",\"hidden\":2}]", FLAT3), "model.0: a lstm layer needs a sequence");
}
END_TEST

START_TEST(error_embedding_not_first)
{
    cn_model_input ids = {1, 1, 1, 5};
    ck_assert_errmsg_has(build_error("[{\"type\":\"linear\",\"out\":2},{\"type\":\"embedding\",\"vocab\":5,\"dim\":2}]", ids),
                         "model.0: the data holds token ids");
    ck_assert_errmsg_has(build_error("[{\"type\":\"tanh\"},{\"type\":\"embedding\",\"vocab\":5,\"dim\":2}]", FLAT3),
                         "model.1: an embedding must be the first layer");
    ck_assert_errmsg_has(build_error("[{\"type\":\"embedding\",\"vocab\":3,\"dim\":2}]", ids), "model.0.vocab");
}
END_TEST

START_TEST(error_init_names_path)
{
    ck_assert_errmsg_has(build_error("[{\"type\":\"rnn\",\"hidden\":3,\"init\":{\"weight_xx\":{\"kind\":\"zeros\"}}}]", SEQ4),
                         "model.0.init.weight_xx: not a parameter");
    ck_assert_str_eq(build_error("[{\"type\":\"linear\",\"out\":2,\"init\":{\"weight\":{\"kind\":\"orthogonal\",\"gain\":-1}}}]", FLAT3),
                     "model.0.init.weight.gain: expected a number >= 0, got -1");
    ck_assert_errmsg_has(build_error("[{\"type\":\"linear\",\"out\":2,\"init\":{\"bias\":{\"kind\":\"uniform\"}}}]", FLAT3),
                         "model.0.init.bias.a: required");
    ck_assert_errmsg_has(build_error("[{\"type\":\"linear\",\"out\":2,\"init\":{\"bias\":{\"kind\":\"zeros\",\"std\":1}}}]", FLAT3),
                         "model.0.init.bias.std");
}
END_TEST

START_TEST(error_orthogonal_init_on_a_vector_names_the_path)
{
    /* torch.nn.init.orthogonal_ raises on a 1-D tensor; clipnn used to rescale the bias instead */
    const char *msg = build_error("[{\"type\": \"gru\", \"hidden\": 3, \"init\": "
                                  "{\"weight_hh\": {\"kind\": \"orthogonal\"}, \"bias_hh_l0\": {\"kind\": \"orthogonal\"}}}]",
                                  SEQ4);
    ck_assert_errmsg_has(msg, "model.0.init.bias_hh_l0: orthogonal init needs a matrix");
    ck_assert_errmsg_has(msg, "0.bias_hh_l0 is 1-D [9]");
    msg = build_error("[{\"type\": \"linear\", \"out\": 2, \"init\": {\"bias\": {\"kind\": \"orthogonal\", \"gain\": 2}}}]",
                      FLAT3);
    ck_assert_errmsg_has(msg, "model.0.init.bias: orthogonal init needs a matrix");
    /* the matrices of the same layers still take it */
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\": \"linear\", \"out\": 2, \"init\": {\"weight\": {\"kind\": \"orthogonal\"}}}]",
                          FLAT3));
    tm_free(&t);
}
END_TEST

START_TEST(error_reserved_layer_names)
{
    static const char *const reserved[] = {"optim", "clip", "data", "train"};
    for (int i = 0; i < 4; i++) {
        char js[160];
        snprintf(js, sizeof js, "[{\"type\": \"linear\", \"out\": 3}, {\"type\": \"linear\", \"out\": 2, \"name\": \"%s\"}]",
                 reserved[i]);
        const char *msg = build_error(js, FLAT3);
        char want[64];
        snprintf(want, sizeof want, "model.1.name: \"%s\" is reserved", reserved[i]);
        ck_assert_errmsg_has(msg, want);
    }
    /* a name that merely starts like one is fine */
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\": \"linear\", \"out\": 2, \"name\": \"trainable\"}]", FLAT3));
    ck_assert_int_ge(cn_paramset_find(&t.ps, "trainable.weight"), 0);
    tm_free(&t);
}
END_TEST

static int has_key(const char *const *keys, const char *k)
{
    for (; keys && *keys; keys++)
        if (!strcmp(*keys, k)) return 1;
    return 0;
}

START_TEST(layer_type_keys_lists_what_build_accepts)
{
    ck_assert_ptr_null(cn_layer_type_keys("conv2d"));
    ck_assert_ptr_null(cn_layer_type_keys(NULL));
    const char *const *rnn = cn_layer_type_keys("rnn"), *const *gru = cn_layer_type_keys("gru");
    ck_assert(has_key(rnn, "nonlinearity") && !has_key(gru, "nonlinearity"));
    ck_assert(has_key(gru, "type") && has_key(gru, "name") && has_key(gru, "init") && has_key(gru, "hidden"));
    ck_assert(!has_key(cn_layer_type_keys("tanh"), "init") && has_key(cn_layer_type_keys("tanh"), "name"));
    ck_assert(has_key(cn_layer_type_keys("dropout"), "p") && !has_key(cn_layer_type_keys("dropout"), "init"));
    ck_assert(has_key(cn_layer_type_keys("linear"), "bias") && has_key(cn_layer_type_keys("embedding"), "dim"));
    /* one source of truth: every listed key passes the build's key check, and with "name" (never filled
     * in) and "init" given, the build fills in exactly the other listed keys (defaults) */
    static const struct { const char *json; int seq; } cases[] = {
        {"[{\"type\": \"linear\", \"out\": 2, \"bias\": false, \"name\": \"a\", \"init\": {}}]", 0},
        {"[{\"type\": \"tanh\", \"name\": \"a\"}]", 0},
        {"[{\"type\": \"relu\", \"name\": \"a\"}]", 0},
        {"[{\"type\": \"sigmoid\", \"name\": \"a\"}]", 0},
        {"[{\"type\": \"dropout\", \"p\": 0.1, \"name\": \"a\"}]", 0},
        {"[{\"type\": \"rnn\", \"hidden\": 2, \"nonlinearity\": \"relu\", \"output\": \"sequence\", \"name\": \"a\", \"init\": {}}]", 1},
        {"[{\"type\": \"lstm\", \"hidden\": 2, \"output\": \"last\", \"name\": \"a\", \"init\": {}}]", 1},
        {"[{\"type\": \"gru\", \"hidden\": 2, \"output\": \"last\", \"name\": \"a\", \"init\": {}}]", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tmodel t;
        ck_assert_ok(tm_build(&t, cases[i].json, cases[i].seq ? SEQ4 : FLAT3));
        cJSON *layer = cJSON_GetArrayItem(t.json, 0);
        const char *const *keys = cn_layer_type_keys(cJSON_GetObjectItem(layer, "type")->valuestring);
        ck_assert_ptr_nonnull(keys);
        for (cJSON *it = layer->child; it; it = it->next)
            ck_assert_msg(has_key(keys, it->string), "case %zu: key %s not in the list", i, it->string);
        int nk = 0;
        for (const char *const *k = keys; *k; k++) nk++;
        ck_assert_int_eq(cJSON_GetArraySize(layer), nk);   /* every listed key was given or filled */
        tm_free(&t);
    }
    /* gru rejects the rnn-only key the list omits */
    ck_assert_errmsg_has(build_error("[{\"type\": \"gru\", \"hidden\": 2, \"nonlinearity\": \"tanh\"}]", SEQ4),
                         "model.0.nonlinearity: unknown key");
}
END_TEST

START_TEST(error_wrong_input_shape_in_forward)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"linear\",\"out\":2}]", FLAT3));
    cn_graph g;
    cn_graph_init(&g);
    float x[8] = {0};
    cn_tensor xt;
    cn_tensor_view(&xt, x, 2, (int[]){2, 4});
    ck_assert_ptr_null(cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &xt), 0));
    ck_assert_int_eq(cn_graph_status(&g), CN_ERR_SHAPE);
    ck_assert_errmsg_has(cn_errmsg(), "[2, 4]");
    cn_graph_free(&g);
    tm_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Initialisation */

static float max_abs(const cn_tensor *t)
{
    float m = 0;
    for (size_t i = 0; i < cn_numel(t); i++) m = fabsf(t->data[i]) > m ? fabsf(t->data[i]) : m;
    return m;
}

START_TEST(default_init_uses_torch_bounds)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"lstm\",\"hidden\":16,\"output\":\"sequence\"},{\"type\":\"linear\",\"out\":9}]", SEQ4));
    for (int i = 0; i < t.ps.count; i++) {
        cn_tensor v = cn_param_value(&t.ps, i);
        float bound = i < 4 ? 1.0f / sqrtf(16.0f) : 1.0f / sqrtf(16.0f);  /* lstm: 1/sqrt(hidden); linear: 1/sqrt(in=16) */
        float m = max_abs(&v);
        ck_assert_msg(m <= bound, "%s: max %g > bound %g", t.ps.info[i].name, m, bound);
        if (cn_numel(&v) >= 9) ck_assert_msg(m > 0.6f * bound, "%s: max %g, too small for U(-%g, %g)", t.ps.info[i].name, m, bound, bound);
    }
    tm_free(&t);
    ck_assert_ok(tm_build(&t, "[{\"type\":\"linear\",\"out\":50},{\"type\":\"linear\",\"out\":2}]", (cn_model_input){0, 100, 0, 0}));
    cn_tensor w0 = cn_param_value(&t.ps, 0), w1 = cn_param_value(&t.ps, 2);
    ck_assert_float_le(max_abs(&w0), 0.1f);        /* 1/sqrt(100) */
    ck_assert_float_gt(max_abs(&w0), 0.099f);
    ck_assert_float_le(max_abs(&w1), 1.0f / sqrtf(50.0f));
    tm_free(&t);
}
END_TEST

START_TEST(default_init_embedding_is_standard_normal)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"embedding\",\"vocab\":200,\"dim\":50}]", (cn_model_input){0, 1, 1, 200}));
    cn_tensor w = cn_param_value(&t.ps, 0);
    double s = 0, s2 = 0;
    size_t n = cn_numel(&w);
    for (size_t i = 0; i < n; i++) { s += w.data[i]; s2 += (double)w.data[i] * w.data[i]; }
    ck_assert_near(s / n, 0.0, 0.03);
    ck_assert_near(sqrt(s2 / n), 1.0, 0.03);
    tm_free(&t);
}
END_TEST

/* max |W W^T - gain^2 I| (rows) or |W^T W - gain^2 I| (cols) */
static double ortho_err(const cn_tensor *w, double gain, int by_rows)
{
    int R = w->shape[0], C = w->shape[1], n = by_rows ? R : C;
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double d = 0;
            int K = by_rows ? C : R;
            for (int k = 0; k < K; k++)
                d += by_rows ? (double)w->data[i * C + k] * w->data[j * C + k] : (double)w->data[k * C + i] * w->data[k * C + j];
            double e = fabs(d - (i == j ? gain * gain : 0.0));
            worst = e > worst ? e : worst;
        }
    return worst;
}

START_TEST(orthogonal_init_is_orthogonal_with_gain)
{
    tmodel t;
    /* rnn weight_hh [8, 8] square; lstm weight_hh [20, 5] tall (orthonormal columns); rnn weight_ih [3, 10] wide */
    ck_assert_ok(tm_build(&t, "[{\"type\":\"rnn\",\"hidden\":8,\"output\":\"sequence\",\"init\":{\"weight_hh\":{\"kind\":\"orthogonal\",\"gain\":1.5}}},"
                              "{\"type\":\"lstm\",\"hidden\":5,\"output\":\"sequence\",\"init\":{\"weight_hh_l0\":{\"kind\":\"orthogonal\"}}},"
                              "{\"type\":\"linear\",\"out\":10},"
                              "{\"type\":\"rnn\",\"hidden\":3,\"init\":{\"weight_ih\":{\"kind\":\"orthogonal\",\"gain\":0.5}}}]", SEQ4));
    cn_tensor a = cn_param_value(&t.ps, cn_paramset_find(&t.ps, "0.weight_hh_l0"));
    cn_tensor b = cn_param_value(&t.ps, cn_paramset_find(&t.ps, "1.weight_hh_l0"));
    cn_tensor c = cn_param_value(&t.ps, cn_paramset_find(&t.ps, "3.weight_ih_l0"));
    ck_assert_double_lt(ortho_err(&a, 1.5, 1), 1e-5);
    ck_assert_double_lt(ortho_err(&a, 1.5, 0), 1e-5);
    ck_assert_double_lt(ortho_err(&b, 1.0, 0), 1e-5);
    ck_assert_double_lt(ortho_err(&c, 0.5, 1), 1e-5);
    /* and not trivially so: the default-initialised weight_ih is far from orthogonal */
    cn_tensor d = cn_param_value(&t.ps, cn_paramset_find(&t.ps, "0.weight_ih_l0"));
    ck_assert_double_gt(ortho_err(&d, 1.0, 0), 0.1);
    tm_free(&t);
}
END_TEST

START_TEST(init_overrides_zeros_uniform_normal)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"linear\",\"out\":40,\"init\":{\"bias\":{\"kind\":\"zeros\"},"
                              "\"weight\":{\"kind\":\"uniform\",\"a\":0.01}}},"
                              "{\"type\":\"linear\",\"out\":30,\"init\":{\"weight\":{\"kind\":\"normal\",\"std\":0.02}}}]", FLAT3));
    cn_tensor w = cn_param_value(&t.ps, 0), b = cn_param_value(&t.ps, 1), w2 = cn_param_value(&t.ps, 2);
    ck_assert_float_eq(max_abs(&b), 0.0f);
    ck_assert_float_le(max_abs(&w), 0.01f);
    ck_assert_float_gt(max_abs(&w), 0.009f);
    double s2 = 0;
    for (size_t i = 0; i < cn_numel(&w2); i++) s2 += (double)w2.data[i] * w2.data[i];
    ck_assert_near(sqrt(s2 / cn_numel(&w2)), 0.02, 0.002);
    tm_free(&t);
}
END_TEST

START_TEST(init_is_deterministic_per_seed)
{
    tmodel a, b;
    const char *j = "[{\"type\":\"gru\",\"hidden\":4},{\"type\":\"linear\",\"out\":2}]";
    ck_assert_ok(tm_build(&a, j, SEQ4));
    ck_assert_ok(tm_build(&b, j, SEQ4));
    ck_assert_int_eq(memcmp(a.ps.data, b.ps.data, a.ps.total * sizeof(float)), 0);
    cn_rng r;
    cn_rng_seed(&r, 8);
    ck_assert_ok(cn_model_init(b.m, &b.ps, &r));
    ck_assert_int_ne(memcmp(a.ps.data, b.ps.data, a.ps.total * sizeof(float)), 0);
    tm_free(&a);
    tm_free(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Gradient checks: inputs and parameters */

START_TEST(mlp_linear_tanh_gradcheck)
{
    gradcheck_model("[{\"type\":\"linear\",\"out\":4},{\"type\":\"tanh\"},{\"type\":\"linear\",\"out\":2}]", FLAT3, 2, (int[]){3, 3}, 0);
}
END_TEST

START_TEST(relu_sigmoid_nobias_gradcheck)
{
    gradcheck_model("[{\"type\":\"linear\",\"out\":5},{\"type\":\"sigmoid\"},{\"type\":\"linear\",\"out\":4,\"bias\":false},"
                    "{\"type\":\"relu\"},{\"type\":\"dropout\",\"p\":0.3},{\"type\":\"linear\",\"out\":2}]", FLAT3, 2, (int[]){2, 3}, 0);
}
END_TEST

START_TEST(rnn_tanh_last_gradcheck)
{
    gradcheck_model("[{\"type\":\"rnn\",\"hidden\":3},{\"type\":\"linear\",\"out\":2}]", SEQ4, 3, (int[]){4, 2, 4}, 0);
}
END_TEST

START_TEST(rnn_relu_sequence_gradcheck)
{
    gradcheck_model("[{\"type\":\"rnn\",\"hidden\":4,\"nonlinearity\":\"relu\",\"output\":\"sequence\"},{\"type\":\"linear\",\"out\":2}]",
                    SEQ4, 3, (int[]){3, 2, 4}, 0);
}
END_TEST

START_TEST(lstm_last_gradcheck)
{
    gradcheck_model("[{\"type\":\"lstm\",\"hidden\":3}]", SEQ4, 3, (int[]){5, 2, 4}, 0);
}
END_TEST

START_TEST(lstm_sequence_stacked_gradcheck)
{
    gradcheck_model("[{\"type\":\"lstm\",\"hidden\":3,\"output\":\"sequence\"},{\"type\":\"lstm\",\"hidden\":2,\"output\":\"sequence\"},"
                    "{\"type\":\"linear\",\"out\":2}]", SEQ4, 3, (int[]){4, 2, 4}, 0);
}
END_TEST

START_TEST(gru_last_gradcheck)
{
    gradcheck_model("[{\"type\":\"gru\",\"hidden\":3},{\"type\":\"linear\",\"out\":2}]", SEQ4, 3, (int[]){5, 2, 4}, 0);
}
END_TEST

START_TEST(gru_sequence_gradcheck)
{
    gradcheck_model("[{\"type\":\"gru\",\"hidden\":4,\"output\":\"sequence\"},{\"type\":\"tanh\"}]", SEQ4, 3, (int[]){4, 3, 4}, 0);
}
END_TEST

/* Embedding: ids are not differentiable, so only the parameters are checked (ids come from ctx). */
typedef struct {
    tmodel *t;
    float ids[12];
    float w[64];
} emb_ctx;

static cn_var *emb_loss(cn_graph *g, cn_var **in, void *vctx)
{
    (void)in;
    emb_ctx *c = vctx;
    cn_tensor x;
    cn_tensor_view(&x, c->ids, 3, (int[]){3, 2, 1});
    cn_var *y = cn_model_forward(c->t->m, g, &c->t->ps, cn_input(g, &x), 0);
    if (!y) return NULL;
    cn_tensor wt;
    cn_tensor_view(&wt, c->w, y->v.ndim, y->v.shape);
    return cn_sum(g, cn_mul(g, y, cn_input(g, &wt)));
}

START_TEST(embedding_gru_gradcheck_params)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"embedding\",\"vocab\":5,\"dim\":3},{\"type\":\"gru\",\"hidden\":2,\"output\":\"sequence\"},"
                              "{\"type\":\"linear\",\"out\":3}]", (cn_model_input){1, 1, 1, 5}));
    emb_ctx c = {&t, {0, 4, 2, 2, 1, 0}, {0}};
    tu_fill_uniform(c.w, 64, 3, -1, 1);
    cn_gradcheck_result r;
    ck_assert_ok(cn_gradcheck(emb_loss, &c, NULL, 0, &t.ps, &(cn_gradcheck_opts){1e-3, 2e-4, 1e-2}, &r));
    ck_assert_msg(r.ok, "worst param %d[%zu]: analytic %g numeric %g", r.worst_input, r.worst_index, r.worst_analytic, r.worst_numeric);
    /* row 3 of the embedding is never used: its gradient is exactly zero */
    cn_paramset_zero_grad(&t.ps);
    cn_graph g;
    cn_graph_init(&g);
    ck_assert_ok(cn_backward(&g, emb_loss(&g, NULL, &c)));
    cn_tensor ge = cn_param_grad(&t.ps, 0);
    for (int k = 0; k < 3; k++) ck_assert_float_eq(ge.data[3 * 3 + k], 0.0f);
    ck_assert_float_ne(ge.data[2 * 3], 0.0f);
    cn_graph_free(&g);
    tm_free(&t);
}
END_TEST

START_TEST(embedding_rejects_non_id_input)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"embedding\",\"vocab\":5,\"dim\":3}]", (cn_model_input){0, 1, 1, 5}));
    float ids[2] = {1, 2.5f};
    cn_tensor x;
    cn_tensor_view(&x, ids, 2, (int[]){2, 1});
    cn_graph g;
    cn_graph_init(&g);
    ck_assert_ptr_null(cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &x), 0));
    ck_assert_errmsg_has(cn_errmsg(), "2.5");
    cn_graph_reset(&g);
    ids[1] = 4;
    cn_var *y = cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &x), 0);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->v.ndim, 2);
    ck_assert_float_eq(y->v.data[3], t.ps.data[t.ps.info[0].offset + 4 * 3]);   /* row 4 */
    cn_graph_free(&g);
    tm_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Truncated BPTT against an independent unroll from elementary ops (per-step linear on x_t, gates by
 * slice_cols + sigmoid/tanh/mul), with h (and c) replaced by constants before steps k, 2k, ... */

static cn_var *act_slice(cn_graph *g, cn_var *a, int H, int k, int tanh_)
{
    cn_var *s = cn_slice_cols(g, a, k * H, H);
    return tanh_ ? cn_tanh(g, s) : cn_sigmoid(g, s);
}

/* Returns the output [T,B,H] stacked (seq) or the last h, for rnn (tanh) / lstm / gru layer 0 of t. */
static cn_var *reference_unroll(cn_graph *g, tmodel *t, const char *type, cn_var *x, int bptt, int seq)
{
    int T = x->v.shape[0], B = x->v.shape[1];
    cn_var *wih = cn_param(g, &t->ps, 0), *whh = cn_param(g, &t->ps, 1), *bih = cn_param(g, &t->ps, 2), *bhh = cn_param(g, &t->ps, 3);
    int H = whh->v.shape[1];
    cn_var *h = cn_zeros(g, 2, (int[]){B, H}), *c = cn_zeros(g, 2, (int[]){B, H});
    cn_var *outs[16];
    for (int s = 0; s < T; s++) {
        if (bptt > 0 && s > 0 && s % bptt == 0) {
            h = cn_input(g, &h->v);
            c = cn_input(g, &c->v);
        }
        cn_var *gi = cn_linear(g, cn_select(g, x, s), wih, bih), *gh = cn_linear(g, h, whh, bhh);
        if (!strcmp(type, "rnn")) {
            h = cn_tanh(g, cn_add(g, gi, gh));
        } else if (!strcmp(type, "lstm")) {
            cn_var *a = cn_add(g, gi, gh);
            cn_var *i = act_slice(g, a, H, 0, 0), *f = act_slice(g, a, H, 1, 0), *gg = act_slice(g, a, H, 2, 1), *o = act_slice(g, a, H, 3, 0);
            c = cn_add(g, cn_mul(g, f, c), cn_mul(g, i, gg));
            h = cn_mul(g, o, cn_tanh(g, c));
        } else {   /* gru: h' = (1 - z) n + z h = n + z (h - n) */
            cn_var *r = cn_sigmoid(g, cn_add(g, cn_slice_cols(g, gi, 0, H), cn_slice_cols(g, gh, 0, H)));
            cn_var *z = cn_sigmoid(g, cn_add(g, cn_slice_cols(g, gi, H, H), cn_slice_cols(g, gh, H, H)));
            cn_var *n = cn_tanh(g, cn_add(g, cn_slice_cols(g, gi, 2 * H, H), cn_mul(g, r, cn_slice_cols(g, gh, 2 * H, H))));
            h = cn_add(g, n, cn_mul(g, z, cn_sub(g, h, n)));
        }
        outs[s] = h;
    }
    return seq ? cn_concat0(g, outs, T, 1) : h;
}

/* Gradients (x, then all parameters) of sum(w * y) from the model or from the reference. */
static void grads_of(tmodel *t, const char *type, int use_model, const float *x0, int T, int B, int F, int bptt,
                     int seq, float *gx, float *gp)
{
    cn_graph g;
    cn_graph_init(&g);
    float x[128];
    memcpy(x, x0, sizeof(float) * (size_t)(T * B * F));
    cn_tensor xt;
    cn_tensor_view(&xt, x, 3, (int[]){T, B, F});
    memset(gx, 0, sizeof(float) * (size_t)(T * B * F));
    cn_paramset_zero_grad(&t->ps);
    cn_var *xv = cn_leaf(&g, &xt, gx);
    cn_var *y = use_model ? cn_model_forward(t->m, &g, &t->ps, xv, bptt) : reference_unroll(&g, t, type, xv, bptt, seq);
    ck_assert_msg(y != NULL, "%s", cn_errmsg());
    float w[256];
    tu_fill_uniform(w, 256, 5, -1, 1);
    cn_tensor wt;
    cn_tensor_view(&wt, w, y->v.ndim, y->v.shape);
    ck_assert_ok(cn_backward(&g, cn_sum(&g, cn_mul(&g, y, cn_input(&g, &wt)))));
    memcpy(gp, t->ps.grad, sizeof(float) * t->ps.total);
    cn_graph_free(&g);
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs((double)a[i] - b[i]) > m ? fabs((double)a[i] - b[i]) : m;
    return m;
}

static void check_truncation(const char *type, int seq)
{
    enum { T = 5, B = 2, F = 4, K = 2 };
    char json[160];
    snprintf(json, sizeof json, "[{\"type\":\"%s\",\"hidden\":3,\"output\":\"%s\"}]", type, seq ? "sequence" : "last");
    tmodel t;
    ck_assert_ok(tm_build(&t, json, SEQ4));
    float x[T * B * F], gx_m[T * B * F], gx_r[T * B * F], gx_full[T * B * F];
    float gp_m[512], gp_r[512], gp_full[512];
    ck_assert_uint_le(t.ps.total, 512);
    tu_fill_uniform(x, T * B * F, 21, -1, 1);
    /* full BPTT: the model and the reference agree */
    grads_of(&t, type, 1, x, T, B, F, 0, seq, gx_m, gp_m);
    grads_of(&t, type, 0, x, T, B, F, 0, seq, gx_r, gp_r);
    ck_assert_double_lt(max_diff(gx_m, gx_r, T * B * F), 1e-5);
    ck_assert_double_lt(max_diff(gp_m, gp_r, t.ps.total), 1e-5);
    memcpy(gx_full, gx_m, sizeof gx_full);
    memcpy(gp_full, gp_m, sizeof(float) * t.ps.total);
    /* truncated every K steps: the model matches the hand-detached reference ... */
    grads_of(&t, type, 1, x, T, B, F, K, seq, gx_m, gp_m);
    grads_of(&t, type, 0, x, T, B, F, K, seq, gx_r, gp_r);
    ck_assert_double_lt(max_diff(gx_m, gx_r, T * B * F), 1e-5);
    ck_assert_double_lt(max_diff(gp_m, gp_r, t.ps.total), 1e-5);
    /* ... and the cut is real: gradients differ from full BPTT */
    ck_assert_double_gt(max_diff(gp_m, gp_full, t.ps.total), 1e-4);
    ck_assert_double_gt(max_diff(gx_m, gx_full, T * B * F), 1e-4);
    if (!seq) {
        /* output last at t = 4; chunks {0,1} {2,3} {4}: x[0..3] get exactly no gradient */
        for (int i = 0; i < 4 * B * F; i++) ck_assert_float_eq(gx_m[i], 0.0f);
        ck_assert_double_gt(max_diff(gx_m + 4 * B * F, gx_m, B * F), 0.0);
    }
    tm_free(&t);
}

START_TEST(rnn_truncation_matches_hand_detached_last) { check_truncation("rnn", 0); }
END_TEST
START_TEST(rnn_truncation_matches_hand_detached_sequence) { check_truncation("rnn", 1); }
END_TEST
START_TEST(lstm_truncation_matches_hand_detached_last) { check_truncation("lstm", 0); }
END_TEST
START_TEST(lstm_truncation_matches_hand_detached_sequence) { check_truncation("lstm", 1); }
END_TEST
START_TEST(gru_truncation_matches_hand_detached_last) { check_truncation("gru", 0); }
END_TEST
START_TEST(gru_truncation_matches_hand_detached_sequence) { check_truncation("gru", 1); }
END_TEST

/* Truncation keeps the values: the forward output is the same for every k. */
START_TEST(truncation_does_not_change_forward_values)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"lstm\",\"hidden\":3,\"output\":\"sequence\"}]", SEQ4));
    float x[6 * 2 * 4];
    tu_fill_uniform(x, 48, 4, -1, 1);
    cn_tensor xt;
    cn_tensor_view(&xt, x, 3, (int[]){6, 2, 4});
    cn_graph g;
    cn_graph_init(&g);
    cn_var *a = cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &xt), 0);
    cn_var *b = cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &xt), 4);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(memcmp(a->v.data, b->v.data, 36 * sizeof(float)), 0);
    cn_graph_free(&g);
    tm_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Forward semantics */

START_TEST(linear_after_sequence_acts_per_time_step)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"linear\",\"out\":2}]", SEQ4));
    float x[3 * 2 * 4];
    tu_fill_uniform(x, 24, 9, -1, 1);
    cn_tensor xt;
    cn_tensor_view(&xt, x, 3, (int[]){3, 2, 4});
    cn_graph g;
    cn_graph_init(&g);
    cn_var *y = cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &xt), 0);
    ck_assert_int_eq(y->v.ndim, 3);
    ck_assert_int_eq(y->v.shape[2], 2);
    const float *w = t.ps.data + t.ps.info[0].offset, *b = t.ps.data + t.ps.info[1].offset;
    for (int r = 0; r < 6; r++)
        for (int o = 0; o < 2; o++) {
            double s = b[o];
            for (int i = 0; i < 4; i++) s += (double)x[r * 4 + i] * w[o * 4 + i];
            ck_assert_near(y->v.data[r * 2 + o], s, 1e-6);
        }
    cn_graph_free(&g);
    tm_free(&t);
}
END_TEST

START_TEST(rnn_step_matches_formula)
{
    /* h1 = tanh(W_ih x0 + b_ih + b_hh), h2 = tanh(W_ih x1 + b_ih + W_hh h1 + b_hh), B = 1, H = 2, F = 4 */
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"rnn\",\"hidden\":2,\"output\":\"sequence\"}]", SEQ4));
    float x[8];
    tu_fill_uniform(x, 8, 10, -1, 1);
    cn_tensor xt;
    cn_tensor_view(&xt, x, 3, (int[]){2, 1, 4});
    cn_graph g;
    cn_graph_init(&g);
    cn_var *y = cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &xt), 0);
    const float *wih = t.ps.data + t.ps.info[0].offset, *whh = t.ps.data + t.ps.info[1].offset;
    const float *bih = t.ps.data + t.ps.info[2].offset, *bhh = t.ps.data + t.ps.info[3].offset;
    double h[2] = {0, 0}, hn[2];
    for (int s = 0; s < 2; s++) {
        for (int k = 0; k < 2; k++) {
            double a = bih[k] + bhh[k];
            for (int i = 0; i < 4; i++) a += (double)wih[k * 4 + i] * x[s * 4 + i];
            for (int j = 0; j < 2; j++) a += (double)whh[k * 2 + j] * h[j];
            hn[k] = tanh(a);
        }
        for (int k = 0; k < 2; k++) {
            h[k] = hn[k];
            ck_assert_near(y->v.data[s * 2 + k], h[k], 1e-6);
        }
    }
    cn_graph_free(&g);
    tm_free(&t);
}
END_TEST

START_TEST(dropout_only_in_training)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"dropout\",\"p\":0.25}]", (cn_model_input){0, 1000, 0, 0}));
    float x[1000];
    cn_fill(x, 1000, 2.0f);
    cn_tensor xt;
    cn_tensor_view(&xt, x, 2, (int[]){1, 1000});
    cn_rng r;
    cn_rng_seed(&r, 3);
    cn_graph g;
    cn_graph_init(&g);
    g.rng = &r;
    g.training = 0;
    cn_var *y = cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &xt), 0);
    for (int i = 0; i < 1000; i++) ck_assert_float_eq(y->v.data[i], 2.0f);
    g.training = 1;
    y = cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &xt), 0);
    int zeros = 0;
    for (int i = 0; i < 1000; i++) {
        if (y->v.data[i] == 0.0f) zeros++;
        else ck_assert_float_eq_tol(y->v.data[i], 2.0f / 0.75f, 1e-6);
    }
    ck_assert_int_gt(zeros, 200);
    ck_assert_int_lt(zeros, 300);
    cn_graph_free(&g);
    tm_free(&t);
}
END_TEST

START_TEST(second_step_allocates_nothing)
{
    tmodel t;
    ck_assert_ok(tm_build(&t, "[{\"type\":\"lstm\",\"hidden\":8,\"output\":\"sequence\"},{\"type\":\"gru\",\"hidden\":4},"
                              "{\"type\":\"linear\",\"out\":3}]", SEQ4));
    float x[10 * 3 * 4];
    int32_t labels[3] = {0, 2, 1};
    tu_fill_uniform(x, 120, 2, -1, 1);
    cn_tensor xt;
    cn_tensor_view(&xt, x, 3, (int[]){10, 3, 4});
    cn_graph g;
    cn_graph_init(&g);
    uint64_t before = 0;
    for (int step = 0; step < 3; step++) {
        if (step == 2) before = cn_alloc_count();
        ck_assert_ok(cn_graph_reset(&g));
        cn_paramset_zero_grad(&t.ps);
        cn_var *y = cn_model_forward(t.m, &g, &t.ps, cn_input(&g, &xt), 3);
        ck_assert_ok(cn_backward(&g, cn_loss(&g, CN_LOSS_CROSS_ENTROPY, y, NULL, labels)));
    }
    ck_assert_uint_eq(cn_alloc_count() - before, 0);
    cn_graph_free(&g);
    tm_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Losses */

START_TEST(loss_parse_names)
{
    cn_loss_kind k;
    ck_assert_ok(cn_loss_parse("mse", &k));
    ck_assert_int_eq(k, CN_LOSS_MSE);
    ck_assert_ok(cn_loss_parse("cross_entropy", &k));
    ck_assert_int_eq(k, CN_LOSS_CROSS_ENTROPY);
    ck_assert_ok(cn_loss_parse("bce_with_logits", &k));
    ck_assert_int_eq(k, CN_LOSS_BCE_LOGITS);
    ck_assert_int_eq(cn_loss_parse("l1", &k), CN_ERR_ARG);
    ck_assert_errmsg_has(cn_errmsg(), "\"l1\"");
}
END_TEST

START_TEST(cross_entropy_over_sequence_is_mean_over_batch_and_time)
{
    /* logits [T=2, B=2, C=3]; loss = mean over the 4 rows of logsumexp - logit[label] */
    float lg[12] = {1, 2, 3, 0, 0, 0, -1, 2, 0.5f, 3, -2, 1};
    int32_t lab[4] = {2, 1, 0, 0};
    cn_tensor t;
    cn_tensor_view(&t, lg, 3, (int[]){2, 2, 3});
    cn_graph g;
    cn_graph_init(&g);
    cn_var *l = cn_loss(&g, CN_LOSS_CROSS_ENTROPY, cn_input(&g, &t), NULL, lab);
    double want = 0;
    for (int r = 0; r < 4; r++) {
        double se = 0;
        for (int c = 0; c < 3; c++) se += exp(lg[r * 3 + c]);
        want += log(se) - lg[r * 3 + lab[r]];
    }
    ck_assert_near(cn_scalar_value(l), want / 4, 1e-9);
    cn_graph_free(&g);
}
END_TEST

START_TEST(mse_and_bce_need_a_target)
{
    float p[2] = {0.5f, -1};
    cn_tensor t;
    cn_tensor_view(&t, p, 2, (int[]){2, 1});
    cn_graph g;
    cn_graph_init(&g);
    ck_assert_ptr_null(cn_loss(&g, CN_LOSS_MSE, cn_input(&g, &t), NULL, NULL));
    ck_assert_errmsg_has(cn_errmsg(), "mse: no target");
    cn_graph_reset(&g);
    float y[2] = {1, 0};
    cn_tensor yt;
    cn_tensor_view(&yt, y, 1, (int[]){2});
    cn_var *l = cn_loss(&g, CN_LOSS_BCE_LOGITS, cn_input(&g, &t), cn_input(&g, &yt), NULL);
    double want = (log1p(exp(-0.5))) / 2 + (log1p(exp(-1.0))) / 2;
    ck_assert_near(cn_scalar_value(l), want, 1e-7);
    cn_graph_free(&g);
}
END_TEST

Suite *suite_layers(void)
{
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("build");
    tcase_add_test(tc, names_and_shapes_follow_torch_state_dict);
    tcase_add_test(tc, embedding_weight_is_vocab_by_dim);
    tcase_add_test(tc, defaults_are_filled_into_the_json);
    tcase_add_test(tc, error_names_path_of_bad_hidden);
    tcase_add_test(tc, error_names_unknown_key_and_type);
    tcase_add_test(tc, error_recurrent_after_last_output);
    tcase_add_test(tc, error_embedding_not_first);
    tcase_add_test(tc, error_init_names_path);
    tcase_add_test(tc, error_wrong_input_shape_in_forward);
    tcase_add_test(tc, error_orthogonal_init_on_a_vector_names_the_path);
    tcase_add_test(tc, error_reserved_layer_names);
    tcase_add_test(tc, layer_type_keys_lists_what_build_accepts);
    suite_add_tcase(s, tc);

    tc = tcase_create("init");
    tcase_add_test(tc, default_init_uses_torch_bounds);
    tcase_add_test(tc, default_init_embedding_is_standard_normal);
    tcase_add_test(tc, orthogonal_init_is_orthogonal_with_gain);
    tcase_add_test(tc, init_overrides_zeros_uniform_normal);
    tcase_add_test(tc, init_is_deterministic_per_seed);
    suite_add_tcase(s, tc);

    tc = tcase_create("gradcheck");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mlp_linear_tanh_gradcheck);
    tcase_add_test(tc, relu_sigmoid_nobias_gradcheck);
    tcase_add_test(tc, rnn_tanh_last_gradcheck);
    tcase_add_test(tc, rnn_relu_sequence_gradcheck);
    tcase_add_test(tc, lstm_last_gradcheck);
    tcase_add_test(tc, lstm_sequence_stacked_gradcheck);
    tcase_add_test(tc, gru_last_gradcheck);
    tcase_add_test(tc, gru_sequence_gradcheck);
    tcase_add_test(tc, embedding_gru_gradcheck_params);
    tcase_add_test(tc, embedding_rejects_non_id_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("truncation");
    tcase_add_test(tc, rnn_truncation_matches_hand_detached_last);
    tcase_add_test(tc, rnn_truncation_matches_hand_detached_sequence);
    tcase_add_test(tc, lstm_truncation_matches_hand_detached_last);
    tcase_add_test(tc, lstm_truncation_matches_hand_detached_sequence);
    tcase_add_test(tc, gru_truncation_matches_hand_detached_last);
    tcase_add_test(tc, gru_truncation_matches_hand_detached_sequence);
    tcase_add_test(tc, truncation_does_not_change_forward_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("forward");
    tcase_add_test(tc, linear_after_sequence_acts_per_time_step);
    tcase_add_test(tc, rnn_step_matches_formula);
    tcase_add_test(tc, dropout_only_in_training);
    tcase_add_test(tc, second_step_allocates_nothing);
    tcase_add_test(tc, loss_parse_names);
    tcase_add_test(tc, cross_entropy_over_sequence_is_mean_over_batch_and_time);
    tcase_add_test(tc, mse_and_bce_need_a_target);
    suite_add_tcase(s, tc);
    return s;
}
