/* Training a recurrent model from C with a clip mode and reading the clip report every step, with the
 * public API only and no JSON: the model, the optimizer and the clip stage come from the C constructors
 * (cn_model_new, cn_optim_new, cn_clip_new; docs/api.md).
 *
 * The task is the adding problem (Hochreiter & Schmidhuber 1997): a sequence of T (value, marker) pairs,
 * values uniform in [0, 1), two steps marked, one in each half; the target is the mean of the two marked
 * values (predicting the mean of all targets scores MSE 1/24 = 0.0417). A tanh RNN whose recurrent matrix
 * starts orthogonal x 1.5 has exploding gradients (Pascanu, Mikolov & Bengio 2013): run with `noclip` to see
 * the pre-clip norm grow by orders of magnitude and the loss leave the float32 range; the default clips the
 * global norm to 1 and the report shows how often and by how much.
 *
 * Build: make (-> build/examples/clip_report); run: build/examples/clip_report [noclip|norm|autoclip]
 * Installed library: cc clip_report.c $(pkg-config --cflags --libs clipnn) -o clip_report */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <clipnn/clipnn.h>

enum { T = 30, B = 20, H = 50, STEPS = 600 };

/* One batch of the adding problem, time-major: x[t][b][2], y[b]. */
static void adding_batch(cn_rng *r, float *x, float *y)
{
    for (int b = 0; b < B; b++) {
        int m1 = (int)cn_rng_below(r, T / 2), m2 = T / 2 + (int)cn_rng_below(r, T - T / 2);
        for (int t = 0; t < T; t++) {
            float *xt = x + ((size_t)t * B + b) * 2;
            xt[0] = cn_rng_uniform(r, 0.0f, 1.0f);
            xt[1] = (t == m1 || t == m2) ? 1.0f : 0.0f;
        }
        y[b] = 0.5f * (x[((size_t)m1 * B + b) * 2] + x[((size_t)m2 * B + b) * 2]);
    }
}

/* W_hh <- gain * an orthogonal matrix: Gram-Schmidt on the rows of a normal draw. */
static void orthogonal(float *w, int n, float gain, cn_rng *r)
{
    double q[H][H];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) q[i][j] = cn_rng_normal(r);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < i; k++) {
            double d = 0;
            for (int j = 0; j < n; j++) d += q[i][j] * q[k][j];
            for (int j = 0; j < n; j++) q[i][j] -= d * q[k][j];
        }
        double nrm = 0;
        for (int j = 0; j < n; j++) nrm += q[i][j] * q[i][j];
        nrm = sqrt(nrm);
        for (int j = 0; j < n; j++) {
            q[i][j] /= nrm;
            w[i * n + j] = (float)(gain * q[i][j]);
        }
    }
}

static int fail(const char *what)
{
    fprintf(stderr, "clip_report: %s: %s\n", what, cn_errmsg());
    return 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "norm";
    cn_clip_opts clip_opts = {.mode = CN_CLIP_MODE_NORM, .max_norm = 1.0, .on_nonfinite = CN_NONFINITE_STOP};
    if (!strcmp(mode, "noclip")) clip_opts = (cn_clip_opts){.mode = CN_CLIP_MODE_NONE};
    else if (!strcmp(mode, "autoclip")) clip_opts = (cn_clip_opts){.mode = CN_CLIP_MODE_AUTOCLIP, .percentile = 10};
    else if (strcmp(mode, "norm")) { fprintf(stderr, "usage: clip_report [noclip|norm|autoclip]\n"); return 2; }

    /* model: rnn(50, tanh, last step) -> linear(1), as examples/rnn_adding_explode.json */
    cn_layer_spec layers[] = {{.type = CN_LAYER_RNN, .hidden = H}, {.type = CN_LAYER_LINEAR, .out = 1}};
    cn_paramset ps;
    cn_paramset_init(&ps);
    cn_model *model = NULL;
    cn_optim *opt = NULL;
    cn_clip *clip = NULL;
    if (cn_model_new(layers, 2, &(cn_model_input){.seq = 1, .features = 2}, &ps, &model)) return fail("model");
    if (cn_paramset_finalize(&ps)) return fail("parameters");
    cn_rng init_rng, data_rng;
    cn_rng_seed(&init_rng, 1);
    cn_rng_seed(&data_rng, 2);
    if (cn_model_init(model, &ps, &init_rng)) return fail("init");
    cn_tensor whh = cn_param_value(&ps, cn_paramset_find(&ps, "0.weight_hh_l0"));
    orthogonal(whh.data, H, 1.5f, &init_rng);
    if (cn_optim_new(&(cn_optim_opts){.type = CN_OPTIM_SGD, .lr = 0.05}, &ps, &opt)) return fail("optimizer");
    if (cn_clip_new(&clip_opts, 1, &ps, &clip)) return fail("clip");

    static float x[T * B * 2], y[B];
    cn_tensor xt, yt;
    cn_tensor_view(&xt, x, 3, (int[]){T, B, 2});
    cn_tensor_view(&yt, y, 2, (int[]){B, 1});
    cn_graph g;
    if (cn_graph_init(&g)) return fail("graph");

    int clipped = 0, rc = 0;
    double max_pre = 0, loss_sum = 0;
    printf("clip mode %s; %d steps of SGD (lr 0.05) on the adding problem (T = %d)\n", mode, STEPS, T);
    printf("%6s %10s %12s %12s %10s %10s %s\n", "step", "loss", "norm_pre", "norm_post", "coef", "threshold", "clipped");
    for (int step = 1; step <= STEPS; step++) {
        adding_batch(&data_rng, x, y);
        cn_graph_reset(&g);
        cn_paramset_zero_grad(&ps);
        cn_var *pred = cn_model_forward(model, &g, &ps, cn_input(&g, &xt), 0);
        cn_var *loss = pred ? cn_loss(&g, CN_LOSS_MSE, pred, cn_input(&g, &yt), NULL) : NULL;
        if (!loss || cn_backward(&g, loss)) { rc = fail("forward/backward"); break; }
        double l = cn_loss_value(loss);   /* inf beyond float32 range */
        cn_clip_action act;
        if (cn_clip_run(clip, &ps, !isfinite(l), &act)) { rc = fail("clip"); break; }
        const cn_clip_report *r = cn_clip_last_report(clip);   /* filled every step, whatever the mode */
        clipped += r->clipped;
        if (r->norm_pre_l2 > max_pre || isnan(r->norm_pre_l2)) max_pre = r->norm_pre_l2;
        loss_sum += step > STEPS - 100 ? l : 0;
        if (step <= 3 || step % 100 == 0 || act == CN_CLIP_STOP)
            printf("%6d %10.4g %12.4g %12.4g %10.4g %10.4g %d\n", step, l, r->norm_pre_l2, r->norm_post, r->coef,
                   r->threshold, r->clipped);
        if (act == CN_CLIP_STOP) {
            printf("stopped at step %d: non-finite %s (%lld non-finite gradient elements, first in %s)\n", step,
                   isfinite(l) ? "gradient" : "loss", r->n_nonfinite, r->first_nonfinite[0] ? r->first_nonfinite : "-");
            rc = 3;
            break;
        }
        if (act == CN_CLIP_UPDATE && cn_optim_step(opt, &ps, cn_optim_lr(opt))) { rc = fail("optimizer"); break; }
        if (step == STEPS)
            printf("clipped on %d of %d steps (%.1f%%); largest pre-clip norm %.4g; mean loss of the last 100 steps "
                   "%.4f (predicting the mean: 0.0417)\n", clipped, STEPS, 100.0 * clipped / STEPS, max_pre,
                   loss_sum / 100);
    }
    cn_graph_free(&g);
    cn_clip_free(clip);
    cn_optim_free(opt);
    cn_model_free(model);
    cn_paramset_free(&ps);
    return rc;
}
