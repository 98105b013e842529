/* Registering a custom clip mode from C and selecting it from JSON.
 *
 * The mode "sign" replaces every gradient element by scale * sign(g) (signSGD,
 * Bernstein et al. 2018), which bounds each update element by lr * scale.
 * It is listed before a global-norm stage, so the stage pipeline is
 *   stats -> non-finite policy -> sign -> norm -> report
 * A tiny MLP (2 -> 8 tanh -> 1) is fitted to y = x0 - 2 x1 with plain SGD, and
 * the clip report is printed at every step.
 *
 * Build: make (-> build/examples/custom_clip); run: build/examples/custom_clip */
#include <math.h>
#include <stdio.h>

#include <clipnn/clipnn.h>

/* ---- the custom mode: an object whose first member is cn_clipper ---- */
typedef struct {
    cn_clipper base;
    float scale;
} sign_clipper;

static cn_status sign_apply(cn_clipper *self, cn_clip_ctx *ctx)
{
    const float s = ((sign_clipper *)self)->scale;
    cn_paramset *ps = ctx->ps;
    for (int i = 0; i < ps->count; i++) {
        float *g = ps->grad + ps->info[i].offset;
        for (size_t j = 0; j < ps->info[i].numel; j++)
            g[j] = g[j] > 0 ? s : g[j] < 0 ? -s : g[j];   /* 0 and NaN stay as they are */
    }
    ctx->modified = 1;       /* the stage recomputes the statistics for the next stage */
    ctx->clipped = 1;
    ctx->threshold = s;
    return CN_OK;
}

static void sign_free(cn_clipper *self) { cn_free(self); }

static const cn_clipper_ops sign_ops = {sign_apply, NULL, NULL, sign_free, NULL};   /* no state, L2 report */
static const char *const sign_keys[] = {"scale", NULL};

static cn_status sign_create(cJSON *obj, const char *path, const cn_paramset *ps, cn_clipper **out)
{
    double scale;
    /* json.h getters: fill the default into the tree, name "clip.0.scale" in errors */
    cn_status st = cn_json_number(obj, path, "scale", &(cn_json_num){.def = 1.0, .lo = 0, .lo_open = 1, .hi = INFINITY}, &scale);
    if (st) return st;
    sign_clipper *c = cn_calloc(1, sizeof *c);
    if (!c) return cn_error(CN_ERR_NOMEM, "%s: out of memory", path);
    c->base.ops = &sign_ops;
    c->scale = (float)scale;
    *out = &c->base;
    return CN_OK;
}

static const cn_clip_mode_def sign_mode = {
    .name = "sign", .keys = sign_keys, .global_norm = 0, .has_threshold = 1, .create = sign_create,
};

static int fail(const char *what)
{
    fprintf(stderr, "custom_clip: %s: %s\n", what, cn_errmsg());
    return 1;
}

int main(void)
{
    enum { N = 16, I = 2, H = 8 };
    if (cn_clip_register(&sign_mode)) return fail("register");

    /* parameters, PyTorch names of nn.Sequential(Linear(2, 8), Tanh(), Linear(8, 1)) */
    cn_paramset ps;
    cn_paramset_init(&ps);
    if (cn_paramset_add(&ps, "0.weight", 2, (int[]){H, I}, NULL) || cn_paramset_add(&ps, "0.bias", 1, (int[]){H}, NULL) ||
        cn_paramset_add(&ps, "2.weight", 2, (int[]){1, H}, NULL) || cn_paramset_add(&ps, "2.bias", 1, (int[]){1}, NULL) ||
        cn_paramset_finalize(&ps))
        return fail("parameters");
    cn_rng rng;
    cn_rng_seed(&rng, 7);
    for (int i = 0; i < ps.count; i++) {
        float *w = ps.data + ps.info[i].offset;
        for (size_t j = 0; j < ps.info[i].numel; j++) w[j] = cn_rng_uniform(&rng, -0.7f, 0.7f);
    }

    /* data: y = x0 - 2 x1 */
    float x[N * I], y[N];
    for (int n = 0; n < N; n++) {
        x[n * I] = cn_rng_uniform(&rng, -1, 1);
        x[n * I + 1] = cn_rng_uniform(&rng, -1, 1);
        y[n] = x[n * I] - 2 * x[n * I + 1];
    }
    cn_tensor xt, yt;
    cn_tensor_view(&xt, x, 2, (int[]){N, I});
    cn_tensor_view(&yt, y, 2, (int[]){N, 1});

    /* the custom mode selected from JSON like a built-in one */
    const char *config = "[{\"mode\": \"sign\", \"scale\": 0.5}, {\"mode\": \"norm\", \"max_norm\": 1.0}]";
    cn_clip *clip = NULL;
    if (cn_clip_from_string(config, &ps, &clip)) return fail("clip config");
    printf("clip: %s\n", config);

    cn_graph g;
    if (cn_graph_init(&g)) return fail("graph");
    const float lr = 0.1f;
    printf("%4s %10s %10s %10s %9s %7s %4s\n", "step", "loss", "norm_pre", "norm_post", "coef", "thresh", "clip");
    for (int step = 1; step <= 20; step++) {
        cn_graph_reset(&g);
        cn_paramset_zero_grad(&ps);
        cn_var *h = cn_tanh(&g, cn_linear(&g, cn_input(&g, &xt), cn_param(&g, &ps, 0), cn_param(&g, &ps, 1)));  // [N, H]
        cn_var *pred = cn_linear(&g, h, cn_param(&g, &ps, 2), cn_param(&g, &ps, 3));                            // [N, 1]
        cn_var *loss = cn_mse(&g, pred, cn_input(&g, &yt));
        if (cn_backward(&g, loss)) return fail("backward");
        double l = cn_scalar_value(loss);

        cn_clip_action action;
        if (cn_clip_run(clip, &ps, !isfinite(l), &action)) return fail("clip");
        const cn_clip_report *r = cn_clip_last_report(clip);
        printf("%4d %10.5f %10.5f %10.5f %9.5f %7.3f %4d\n", step, l, r->norm_pre, r->norm_post, r->coef,
               r->threshold, r->clipped);
        if (action == CN_CLIP_STOP) { printf("non-finite gradient in %s: stopping\n", r->first_nonfinite); break; }
        if (action == CN_CLIP_SKIP) continue;
        cn_axpy(ps.total, -lr, ps.grad, ps.data);   /* SGD: p -= lr g */
    }
    cn_graph_free(&g);
    cn_clip_free(clip);
    cn_paramset_free(&ps);
    return 0;
}
