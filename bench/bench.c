/* clipnn benchmark driver: one workload, one process, one machine-readable line.
 *
 *   bench WORKLOAD [--threads N] [--clip norm|none] [--seconds S] [--steps N] [--breakdown]
 *         [--hidden H] [--seq T] [--batch B] [--ceiling]
 *   WORKLOAD: rnn | lstm | gru | mlp | tiny (see workloads[] below; bench/torch_bench.py builds the same
 *   models in PyTorch). --hidden / --seq / --batch change the recurrent layer's hidden size (mlp: the width
 *   of both hidden layers), the sequence length and the batch (bench/grid.sh sweeps them).
 *   --ceiling also measures the core's sgemm rate (512 x 512 x 512 products, the same thread count) and
 *   prints flops (2 M N K summed over the step's forward and backward products), gflops and ceiling_pct =
 *   the step's product rate as a percentage of that sgemm rate.
 *   --rec-kernel 0|1|2|4 chooses the recurrent layer's W_hh kernels (the library's test hook, declared in
 *   src/autograd/cells.h): 0 the default size-based choice, 1 clipnn's kernel for all three products
 *   (also dW_hh), 2 OpenBLAS for all three, 4 clipnn's kernel per step and OpenBLAS for dW_hh.
 *
 * Each workload is built from a JSON config string through the library's real path (cn_model_build,
 * cn_optim_from_json, cn_clip_from_json) on fixed random data, and one training step is exactly the one
 * of src/train/trainer.c: zero grads, forward, loss, backward, cn_clip_run, cn_optim_step.
 *
 * Timing: warm-up (at least 3 steps and 0.2 s), then a step count chosen to fill --seconds, timed as one
 * block (no clock reads inside the loop). Prints
 *   RESULT impl=clipnn workload=rnn threads=1 clip=norm steps=.. seconds=.. steps_per_s=.. step_ms=..
 *          allocs_per_step=.. allocs_step2=.. rss_kb=..
 * --breakdown (1 process per workload, not used for the speed table) adds, from separate runs:
 *   clip_ms / clip_share  time inside cn_clip_run over step time (clock read around that call only);
 *   none_step_ms          step time with clip "none" (alternating norm/none blocks: the share as a
 *                         difference, which includes cache effects of touching the gradient twice);
 *   sgemm_share           time inside cblas_sgemm over step time, through a link-time wrapper
 *                         (-Wl,--wrap=cblas_sgemm), active only in --breakdown runs. */
#include "clipnn.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double cpu_now_s(void)   /* user + system time of the whole process (every thread) */
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)r.ru_utime.tv_sec + 1e-6 * (double)r.ru_utime.tv_usec + (double)r.ru_stime.tv_sec +
           1e-6 * (double)r.ru_stime.tv_usec;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cn__recurrent_force_kernel(int mode);   /* src/autograd/cells.h (internal) */

/* ---- sgemm timing wrapper (link with -Wl,--wrap=cblas_sgemm) ---- */
static int sgemm_timing;
static double sgemm_s;
static long long sgemm_calls;

void __real_cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER Order, OPENBLAS_CONST enum CBLAS_TRANSPOSE TransA,
                        OPENBLAS_CONST enum CBLAS_TRANSPOSE TransB, OPENBLAS_CONST blasint M,
                        OPENBLAS_CONST blasint N, OPENBLAS_CONST blasint K, OPENBLAS_CONST float alpha,
                        OPENBLAS_CONST float *A, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *B,
                        OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *C,
                        OPENBLAS_CONST blasint ldc);
void __wrap_cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER Order, OPENBLAS_CONST enum CBLAS_TRANSPOSE TransA,
                        OPENBLAS_CONST enum CBLAS_TRANSPOSE TransB, OPENBLAS_CONST blasint M,
                        OPENBLAS_CONST blasint N, OPENBLAS_CONST blasint K, OPENBLAS_CONST float alpha,
                        OPENBLAS_CONST float *A, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *B,
                        OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *C,
                        OPENBLAS_CONST blasint ldc);
void __wrap_cblas_sgemm(OPENBLAS_CONST enum CBLAS_ORDER Order, OPENBLAS_CONST enum CBLAS_TRANSPOSE TransA,
                        OPENBLAS_CONST enum CBLAS_TRANSPOSE TransB, OPENBLAS_CONST blasint M,
                        OPENBLAS_CONST blasint N, OPENBLAS_CONST blasint K, OPENBLAS_CONST float alpha,
                        OPENBLAS_CONST float *A, OPENBLAS_CONST blasint lda, OPENBLAS_CONST float *B,
                        OPENBLAS_CONST blasint ldb, OPENBLAS_CONST float beta, float *C,
                        OPENBLAS_CONST blasint ldc)
{
    if (!sgemm_timing) {
        __real_cblas_sgemm(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    double t0 = now_s();
    __real_cblas_sgemm(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    sgemm_s += now_s() - t0;
    sgemm_calls++;
}

/* ---- workloads ---- */
typedef struct {
    const char *name;
    int seq, T, B, F;          /* input [T, B, F] if seq else [B, F] */
    int classes;               /* cross-entropy classes (0: MSE with 1 output) */
    const char *model, *optim;
    int hidden;                /* recurrent hidden size / mlp hidden width */
} workload;

#define REC(type) "[{\"type\": \"" type "\", \"hidden\": %d, \"output\": \"last\"}, {\"type\": \"linear\", \"out\": 1}]"
static const workload workloads[] = {
    {"rnn", 1, 50, 32, 2, 0, REC("rnn"), "{\"type\": \"adam\", \"lr\": 0.001}", 128},
    {"lstm", 1, 50, 32, 2, 0, REC("lstm"), "{\"type\": \"adam\", \"lr\": 0.001}", 128},
    {"gru", 1, 50, 32, 2, 0, REC("gru"), "{\"type\": \"adam\", \"lr\": 0.001}", 128},
    {"mlp", 0, 1, 128, 784, 10,
     "[{\"type\": \"linear\", \"out\": %d}, {\"type\": \"relu\"}, {\"type\": \"linear\", \"out\": %d},"
     " {\"type\": \"relu\"}, {\"type\": \"linear\", \"out\": 10}]",
     "{\"type\": \"sgd\", \"lr\": 0.01, \"momentum\": 0.9}", 512},
    {"tiny", 0, 1, 32, 2, 0,
     "[{\"type\": \"linear\", \"out\": %d}, {\"type\": \"tanh\"}, {\"type\": \"linear\", \"out\": %d},"
     " {\"type\": \"tanh\"}, {\"type\": \"linear\", \"out\": 1}]",
     "{\"type\": \"sgd\", \"lr\": 0.01}", 16},
};

/* FLOPs of one step's matrix products, 2 M N K each (forward and backward; the input needs no gradient). */
static double step_flops(const workload *w)
{
    double H = w->hidden, B = w->B, T = w->T, F = w->F;
    if (w->seq) {
        double G = !strcmp(w->name, "lstm") ? 4 : !strcmp(w->name, "gru") ? 3 : 1;
        /* x W_ih^T and dW_ih over T*B rows; h W_hh^T, dh W_hh and dW_hh over (T-1)*B rows; the head */
        return 2.0 * (2 * T * B * G * H * F + 3 * (T - 1) * B * G * H * H) + 3 * 2.0 * B * H;
    }
    /* layers F->H, H->H, H->out: forward, dW, dx (not for the first) */
    double out = w->classes ? w->classes : 1;
    return 2.0 * B * (2 * F * H + 3 * H * H + 3 * H * out);
}

/* The core's sgemm rate (GFLOP/s) on 512^3 products: the ceiling the workloads are compared with. */
static double sgemm_gflops(void)
{
    enum { N = 512 };
    float *a = cn_malloc_aligned(sizeof(float) * N * N), *bm = cn_malloc_aligned(sizeof(float) * N * N),
          *c = cn_malloc_aligned(sizeof(float) * N * N);
    for (int i = 0; i < N * N; i++) { a[i] = (float)(i % 7) * 0.25f; bm[i] = (float)(i % 5) * 0.5f; c[i] = 0; }
    for (int r = 0; r < 3; r++) cn_gemm(0, 0, N, N, N, 1.0f, a, N, bm, N, 0.0f, c, N);
    double best = 0;
    for (int r = 0; r < 5; r++) {   /* best of 5 blocks of 10 products */
        double t0 = now_s();
        for (int i = 0; i < 10; i++) cn_gemm(0, 0, N, N, N, 1.0f, a, N, bm, N, 0.0f, c, N);
        double g = 10 * 2.0 * N * N * N / (now_s() - t0) * 1e-9;
        if (g > best) best = g;
    }
    cn_free_aligned(a);
    cn_free_aligned(bm);
    cn_free_aligned(c);
    return best;
}

typedef struct {
    const workload *w;
    cJSON *jm, *jo, *jc_norm, *jc_none;
    cn_paramset ps;
    cn_model *m;
    cn_optim *o;
    cn_clip *clip_norm, *clip_none;
    cn_graph g;
    cn_tensor x, y;
    int32_t *labels;
    double clip_s;             /* time in cn_clip_run when timing_clip */
    int timing_clip;
} bench;

static void die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, cn_errmsg());
    exit(1);
}

static void setup(bench *b, const workload *w)
{
    memset(b, 0, sizeof *b);
    b->w = w;
    cn_paramset_init(&b->ps);
    cn_model_input in = {w->seq, w->F, 0, 0};
    char model[512];
    snprintf(model, sizeof model, w->model, w->hidden, w->hidden);
    if (cn_json_parse(model, "model", &b->jm) || cn_model_build(b->jm, "model", &in, &b->ps, &b->m)) die("model");
    if (cn_paramset_finalize(&b->ps)) die("params");
    cn_rng rng;
    cn_rng_seed(&rng, 1234);
    if (cn_model_init(b->m, &b->ps, &rng)) die("init");
    if (cn_json_parse(w->optim, "optimizer", &b->jo) || cn_optim_from_json(b->jo, "optimizer", &b->ps, &b->o))
        die("optimizer");
    if (cn_json_parse("{\"mode\": \"norm\", \"max_norm\": 1.0}", "clip", &b->jc_norm) ||
        cn_clip_from_json(b->jc_norm, "clip", &b->ps, &b->clip_norm))
        die("clip");
    if (cn_json_parse("{\"mode\": \"none\"}", "clip", &b->jc_none) ||
        cn_clip_from_json(b->jc_none, "clip", &b->ps, &b->clip_none))
        die("clip");
    cn_graph_init(&b->g);
    int xs[3], nd = 0;
    if (w->seq) xs[nd++] = w->T;
    xs[nd++] = w->B;
    xs[nd++] = w->F;
    if (cn_tensor_alloc(&b->x, nd, xs)) die("data");
    for (size_t i = 0; i < cn_numel(&b->x); i++) b->x.data[i] = (float)cn_rng_normal(&rng);
    if (w->classes) {
        b->labels = cn_malloc(sizeof(int32_t) * (size_t)w->B);
        for (int i = 0; i < w->B; i++) b->labels[i] = (int32_t)cn_rng_below(&rng, (uint64_t)w->classes);
    } else {
        if (cn_tensor_alloc(&b->y, 2, (int[]){w->B, 1})) die("data");
        for (int i = 0; i < w->B; i++) b->y.data[i] = (float)cn_rng_normal(&rng);
    }
}

static void teardown(bench *b)
{
    cn_graph_free(&b->g);
    cn_clip_free(b->clip_norm);
    cn_clip_free(b->clip_none);
    cn_optim_free(b->o);
    cn_model_free(b->m);
    cn_paramset_free(&b->ps);
    cn_tensor_free(&b->x);
    cn_tensor_free(&b->y);
    cn_free(b->labels);
    cJSON_Delete(b->jm);
    cJSON_Delete(b->jo);
    cJSON_Delete(b->jc_norm);
    cJSON_Delete(b->jc_none);
}

/* The trainer's step (src/train/trainer.c train_step with grad_accum 1). */
static double step(bench *b, cn_clip *clip)
{
    cn_graph *g = &b->g;
    cn_paramset_zero_grad(&b->ps);
    if (cn_graph_reset(g)) die("reset");
    g->no_grad = 0;
    g->training = 1;
    cn_var *x = cn_input(g, &b->x);
    cn_var *pred = cn_model_forward(b->m, g, &b->ps, x, 0);
    cn_var *tgt = NULL;
    if (pred && !b->w->classes) tgt = cn_input(g, &b->y);
    cn_var *l = pred ? cn_loss(g, b->w->classes ? CN_LOSS_CROSS_ENTROPY : CN_LOSS_MSE, pred, tgt, b->labels) : NULL;
    if (!l) die("forward");
    double loss = cn_scalar_value(l);
    if (cn_backward(g, l)) die("backward");
    cn_clip_action act;
    double t0 = b->timing_clip ? now_s() : 0.0;
    if (cn_clip_run(clip, &b->ps, loss != loss, &act)) die("clip");
    if (b->timing_clip) b->clip_s += now_s() - t0;
    if (act == CN_CLIP_UPDATE && cn_optim_step(b->o, &b->ps, cn_optim_lr(b->o))) die("optimizer");
    return loss;
}

static double run_steps(bench *b, cn_clip *clip, long long n)
{
    double t0 = now_s();
    for (long long i = 0; i < n; i++) step(b, clip);
    return now_s() - t0;
}

static long long steps_for(double seconds, double step_s)
{
    long long n = (long long)(seconds / (step_s > 1e-9 ? step_s : 1e-9));
    return n < 3 ? 3 : n;
}

int main(int argc, char **argv)
{
    const char *wname = NULL, *clipname = "norm";
    int threads = 1, breakdown = 0, hidden = 0, seq = 0, batch = 0, ceiling = 0, rec_kernel = 0;
    long long fixed_steps = 0;   /* --steps N: exactly N timed steps after 2 (for profilers) */
    double seconds = 1.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--clip") && i + 1 < argc) clipname = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--breakdown")) breakdown = 1;
        else if (!strcmp(argv[i], "--ceiling")) ceiling = 1;
        else if (!strcmp(argv[i], "--rec-kernel") && i + 1 < argc) rec_kernel = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) hidden = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc) seq = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) fixed_steps = atoll(argv[++i]);
        else if (argv[i][0] != '-' && !wname) wname = argv[i];
        else { fprintf(stderr, "usage: bench rnn|lstm|gru|mlp|tiny [--threads N] [--clip norm|none] [--seconds S] [--steps N] [--breakdown] [--hidden H] [--seq T] [--batch B] [--ceiling] [--rec-kernel 0|1|2|4]\n"); return 2; }
    }
    workload wl;
    const workload *w = NULL;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (wname && !strcmp(wname, workloads[i].name)) w = &workloads[i];
    if (!w) { fprintf(stderr, "bench: unknown workload '%s'\n", wname ? wname : ""); return 2; }
    wl = *w;
    if (hidden > 0) wl.hidden = hidden;
    if (seq > 0 && wl.seq) wl.T = seq;
    if (batch > 0) wl.B = batch;
    w = &wl;
    cn_set_threads(threads);
    cn__recurrent_force_kernel(rec_kernel);
    bench b;
    setup(&b, w);
    cn_clip *clip = strcmp(clipname, "none") ? b.clip_norm : b.clip_none;

    /* step 1 sizes every buffer; step 2 may consolidate the arena's chunks (one-time) */
    uint64_t a0 = cn_alloc_count();
    step(&b, clip);
    uint64_t a1 = cn_alloc_count();
    step(&b, clip);
    uint64_t a2 = cn_alloc_count();
    long long n = fixed_steps;
    if (n <= 0) {
        /* doubling batches until 0.2 s; the step time is estimated from the last batch */
        long long nw = 1;
        double tw = 0, last = run_steps(&b, clip, 1);
        while ((tw += last) < 0.2 && nw < 1000000) { nw *= 2; last = run_steps(&b, clip, nw); }
        n = steps_for(seconds, last / (double)nw);
    }
    uint64_t a3 = cn_alloc_count();
    double c0 = cpu_now_s();
    double t = run_steps(&b, clip, n);
    double cpu = cpu_now_s() - c0;
    uint64_t a4 = cn_alloc_count();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT impl=clipnn workload=%s threads=%d clip=%s steps=%lld seconds=%.4f steps_per_s=%.3f step_ms=%.5f "
           "allocs_step1=%llu allocs_step2=%llu allocs_per_step=%.4f rss_kb=%ld hidden=%d seq=%d batch=%d",
           w->name, threads, clipname, n, t, (double)n / t, 1e3 * t / (double)n, (unsigned long long)(a1 - a0),
           (unsigned long long)(a2 - a1), (double)(a4 - a3) / (double)n, ru.ru_maxrss, w->hidden, w->T, w->B);
    {
        double fl = step_flops(w);
        /* cpu_step_ms: CPU time of all threads over the timed steps, per step (= step_ms when one core works) */
        printf(" flops=%.0f gflops=%.3f cpu_step_ms=%.5f", fl, fl * (double)n / t * 1e-9, 1e3 * cpu / (double)n);
        if (ceiling) {
            double c = sgemm_gflops();
            printf(" sgemm_gflops=%.3f ceiling_pct=%.2f", c, 100.0 * fl * (double)n / t * 1e-9 / c);
        }
    }

    if (breakdown) {
        /* (a) alternating blocks of clip=norm and clip=none, no extra clock reads */
        long long nb = steps_for(seconds / 8, t / (double)n);
        double tn = 0, t0n = 0;
        for (int r = 0; r < 4; r++) {
            tn += run_steps(&b, b.clip_norm, nb);
            t0n += run_steps(&b, b.clip_none, nb);
        }
        /* (b) clock around cn_clip_run and inside the sgemm wrapper */
        b.timing_clip = 1;
        sgemm_timing = 1;
        long long nt = steps_for(seconds / 2, t / (double)n);
        double tt = run_steps(&b, b.clip_norm, nt);
        printf(" norm_step_ms=%.5f none_step_ms=%.5f clip_ms=%.5f clip_share=%.5f sgemm_share=%.5f sgemm_calls_per_step=%.1f",
               1e3 * tn / (double)(4 * nb), 1e3 * t0n / (double)(4 * nb), 1e3 * b.clip_s / (double)nt,
               b.clip_s / tt, sgemm_s / tt, (double)sgemm_calls / (double)nt);
    }
    printf("\n");
    teardown(&b);
    return 0;
}
