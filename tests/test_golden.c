/* Suite "golden": clipnn against PyTorch 1.13 on small models (fixtures from tests/golden/gen_golden.py).
 * For each fixture model and optimizer: build the model with cn_model_build from the same JSON, copy the
 * initial weights in by name, run the fixture's steps (3, or 6 for the schedules) on the fixed batch and
 * compare the loss, every gradient (when the fixture has them) and every updated weight with torch's.
 * A run with a "schedule" takes each step's lr from cn_schedule_lr and checks it against the lr torch's
 * scheduler used (relative 1e-12: both are doubles from the same closed forms).
 *
 * Tolerance: |ours - torch| <= ATOL + RTOL |torch| per element, RTOL = 1e-5, ATOL = 1e-6.
 * Both sides compute in float32 but not in the same order: torch's and OpenBLAS's sgemm split and order the
 * dot products differently, torch's GRU forms h' = n + z (h - n) where the fused cell uses (1 - z) n + z h,
 * and torch's add-with-alpha may use fused multiply-adds. Each such reordering costs a few ulps (2^-24 ~ 6e-8
 * relative each); a handful of them accumulate over 3-4 time steps and 3 optimizer steps, staying well under
 * 1e-5 relative. ATOL covers entries that are nearly zero after cancellation (a gradient sum whose terms are
 * O(0.1) carries absolute error ~1e-8..1e-7 regardless of how small the sum is). */
#include "testutil.h"
#include "layers/layers.h"
#include "optim/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-5
#define ATOL 1e-6

typedef struct {
    double worst;      /* worst error / (ATOL + RTOL |ref|) seen */
    char where[512];
    double worst_rel;  /* worst |ours - ref| / |ref| over entries with |ref| >= 1e-3 (for the report) */
} tally;

static void cmp(tally *t, const char *what, int step, const char *name, size_t i, double ours, double ref)
{
    double r = fabs(ours - ref) / (ATOL + RTOL * fabs(ref));
    if (fabs(ref) >= 1e-3 && !(fabs(ours - ref) / fabs(ref) <= t->worst_rel)) t->worst_rel = fabs(ours - ref) / fabs(ref);
    if (!(r <= t->worst)) {
        t->worst = r;
        snprintf(t->where, sizeof t->where, "step %d %s %s[%zu]: ours %.9g torch %.9g", step, what, name, i, ours, ref);
    }
}

/* Copies fixture array {"shape": [...], "data": [...]} (or a bare list) into dst (n floats). */
static void read_floats(const cJSON *arr, float *dst, size_t n)
{
    if (cJSON_IsObject(arr)) arr = cJSON_GetObjectItem(arr, "data");
    ck_assert_msg(cJSON_IsArray(arr) && (size_t)cJSON_GetArraySize(arr) == n, "fixture array of %zu expected", n);
    size_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next) dst[i++] = (float)e->valuedouble;
}

static void run_fixture(const char *file)
{
    cJSON *fx = NULL;
    ck_assert_ok(cn_json_load_file(tu_fixture(file), &fx));
    const cJSON *inj = cJSON_GetObjectItem(fx, "input");
    const cJSON *idsj = cJSON_GetObjectItem(inj, "ids"), *vocabj = cJSON_GetObjectItem(inj, "vocab");
    cn_model_input in = {cJSON_GetObjectItem(inj, "seq")->valueint, cJSON_GetObjectItem(inj, "features")->valueint,
                         idsj ? idsj->valueint : 0, vocabj ? vocabj->valueint : 0};
    cn_loss_kind lk;
    ck_assert_ok(cn_loss_parse(cJSON_GetObjectItem(fx, "loss")->valuestring, &lk));

    /* input x and the target or labels */
    const cJSON *xj = cJSON_GetObjectItem(fx, "x"), *xs = cJSON_GetObjectItem(xj, "shape");
    cn_tensor x, target = {0};
    int xshape[4], xnd = cJSON_GetArraySize(xs);
    for (int d = 0; d < xnd; d++) xshape[d] = cJSON_GetArrayItem(xs, d)->valueint;
    ck_assert_ok(cn_tensor_alloc(&x, xnd, xshape));
    read_floats(xj, x.data, cn_numel(&x));
    int32_t labels[64];
    const cJSON *tj = cJSON_GetObjectItem(fx, "target"), *lj = cJSON_GetObjectItem(fx, "labels");
    if (tj) {
        const cJSON *ts = cJSON_GetObjectItem(tj, "shape");
        int tshape[4], tnd = cJSON_GetArraySize(ts);
        for (int d = 0; d < tnd; d++) tshape[d] = cJSON_GetArrayItem(ts, d)->valueint;
        ck_assert_ok(cn_tensor_alloc(&target, tnd, tshape));
        read_floats(tj, target.data, cn_numel(&target));
    } else {
        ck_assert_int_le(cJSON_GetArraySize(lj), 64);
        int i = 0;
        for (const cJSON *e = lj->child; e; e = e->next) labels[i++] = e->valueint;
    }

    int run_i = 0;
    for (const cJSON *run = cJSON_GetObjectItem(fx, "runs")->child; run; run = run->next, run_i++) {
        /* a fresh model from the fixture's model JSON (a copy: the build fills in defaults) */
        cJSON *mj = cJSON_Duplicate(cJSON_GetObjectItem(fx, "model"), 1);
        cJSON *oj = cJSON_Duplicate(cJSON_GetObjectItem(run, "optimizer"), 1);
        cn_paramset ps;
        cn_paramset_init(&ps);
        cn_model *m = NULL;
        ck_assert_ok(cn_model_build(mj, "model", &in, &ps, &m));
        ck_assert_ok(cn_paramset_finalize(&ps));
        /* every torch parameter exists here with the same number of elements, and vice versa */
        const cJSON *init = cJSON_GetObjectItem(fx, "init");
        ck_assert_int_eq(cJSON_GetArraySize(init), ps.count);
        for (const cJSON *w = init->child; w; w = w->next) {
            int i = cn_paramset_find(&ps, w->string);
            ck_assert_msg(i >= 0, "%s: torch parameter %s not in the clipnn model", file, w->string);
            const cJSON *sh = cJSON_GetObjectItem(w, "shape");
            ck_assert_int_eq(cJSON_GetArraySize(sh), ps.info[i].ndim);
            for (int d = 0; d < ps.info[i].ndim; d++) ck_assert_int_eq(cJSON_GetArrayItem(sh, d)->valueint, ps.info[i].shape[d]);
            read_floats(w, ps.data + ps.info[i].offset, ps.info[i].numel);
        }
        cn_optim *opt = NULL;
        ck_assert_ok(cn_optim_from_json(oj, "optimizer", &ps, &opt));
        cJSON *sj = cJSON_Duplicate(cJSON_GetObjectItem(run, "schedule"), 1);   /* NULL: constant */
        cn_schedule sched;
        ck_assert_ok(cn_schedule_from_json(sj, "schedule", &sched));

        tally t = {0, "", 0};
        cn_graph g;
        cn_graph_init(&g);
        float ref[4096];
        int step = 0;
        for (const cJSON *st = cJSON_GetObjectItem(run, "steps")->child; st; st = st->next, step++) {
            ck_assert_ok(cn_graph_reset(&g));
            cn_paramset_zero_grad(&ps);
            cn_var *y = cn_model_forward(m, &g, &ps, cn_input(&g, &x), 0);
            cn_var *loss = cn_loss(&g, lk, y, tj ? cn_input(&g, &target) : NULL, labels);
            ck_assert_msg(loss != NULL, "%s: %s", file, cn_errmsg());
            ck_assert_ok(cn_backward(&g, loss));
            cmp(&t, "loss", step, "", 0, cn_scalar_value(loss), cJSON_GetObjectItem(st, "loss")->valuedouble);
            const cJSON *gj = cJSON_GetObjectItem(st, "grads");
            for (int i = 0; gj && i < ps.count; i++) {
                ck_assert_uint_le(ps.info[i].numel, 4096);
                read_floats(cJSON_GetObjectItem(gj, ps.info[i].name), ref, ps.info[i].numel);
                for (size_t k = 0; k < ps.info[i].numel; k++)
                    cmp(&t, "grad", step, ps.info[i].name, k, ps.grad[ps.info[i].offset + k], ref[k]);
            }
            double lr = cn_schedule_lr(&sched, cn_optim_lr(opt), step + 1);   /* 1-based optimizer step */
            const cJSON *lrj = cJSON_GetObjectItem(st, "lr");
            if (lrj)
                ck_assert_msg(fabs(lr - lrj->valuedouble) <= 1e-12 * lrj->valuedouble,
                              "%s run %d step %d: lr %.17g, torch %.17g", file, run_i, step + 1, lr, lrj->valuedouble);
            else
                ck_assert(sj == NULL);
            ck_assert_ok(cn_optim_step(opt, &ps, lr));
            for (int i = 0; i < ps.count; i++) {
                read_floats(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "weights"), ps.info[i].name), ref, ps.info[i].numel);
                for (size_t k = 0; k < ps.info[i].numel; k++)
                    cmp(&t, "weight", step, ps.info[i].name, k, ps.data[ps.info[i].offset + k], ref[k]);
            }
        }
        ck_assert_int_ge(step, 3);
        ck_assert_int_eq(step, cJSON_GetArraySize(cJSON_GetObjectItem(run, "steps")));
        if (getenv("CN_GOLDEN_VERBOSE"))
            fprintf(stderr, "%s run %d (%s): worst rel %.2e, worst %.3f of tolerance at %s\n", file, run_i,
                    cJSON_GetObjectItem(oj, "type")->valuestring, t.worst_rel, t.worst, t.where);
        ck_assert_msg(t.worst <= 1.0, "%s run %d (%s): %s (%.2f x tolerance)", file, run_i,
                      cJSON_GetObjectItem(oj, "type")->valuestring, t.where, t.worst);
        cn_graph_free(&g);
        cn_optim_free(opt);
        cn_model_free(m);
        cn_paramset_free(&ps);
        cJSON_Delete(mj);
        cJSON_Delete(oj);
        cJSON_Delete(sj);
    }
    cn_tensor_free(&x);
    if (tj) cn_tensor_free(&target);
    cJSON_Delete(fx);
}

START_TEST(mlp_linear_tanh_mse_matches_torch) { run_fixture("golden/golden_mlp.json"); }
END_TEST
START_TEST(rnn_last_mse_matches_torch) { run_fixture("golden/golden_rnn_last.json"); }
END_TEST
START_TEST(rnn_sequence_mse_matches_torch) { run_fixture("golden/golden_rnn_sequence.json"); }
END_TEST
START_TEST(lstm_last_mse_matches_torch) { run_fixture("golden/golden_lstm_last.json"); }
END_TEST
START_TEST(lstm_sequence_cross_entropy_matches_torch) { run_fixture("golden/golden_lstm_sequence.json"); }
END_TEST
START_TEST(gru_last_cross_entropy_matches_torch) { run_fixture("golden/golden_gru_last.json"); }
END_TEST
START_TEST(gru_sequence_mse_matches_torch) { run_fixture("golden/golden_gru_sequence.json"); }
END_TEST
/* token ids [5, 3] (ids repeat, id 6 never occurs) -> embedding(7, 3) -> gru(4, sequence) -> linear(7),
 * cross-entropy over batch and time: the embedding gradient sums the rows of repeated ids (torch.nn.Embedding
 * dense backward), the unused row gets 0 */
START_TEST(embedding_gru_sequence_cross_entropy_matches_torch) { run_fixture("golden/golden_embedding_gru.json"); }
END_TEST
/* BCEWithLogitsLoss (mean) on 0/1 targets with every |logit| in [39, 40], half agreeing with the target: loss
 * terms ~1e-17 and ~40, where 1 - sigmoid(x) rounds to 0 even in double (a log(sigmoid) form gives inf), and
 * sigmoid(x) - t saturates at 0 and +-1 */
START_TEST(mlp_bce_with_logits_large_logits_matches_torch) { run_fixture("golden/golden_mlp_bce.json"); }
END_TEST
/* SGD with momentum for 6 steps under step (2, 0.5), cosine (t_max 4, eta_min 0.01), warm-up 3 then
 * constant, warm-up 2 then step (2, 0.5): per step the lr of torch's StepLR / CosineAnnealingLR / LambdaLR
 * and the weights. Step 6 of cosine (epoch 5 > t_max) uses clipnn's held eta_min, not torch's rising cosine. */
START_TEST(lr_schedules_step_cosine_warmup_match_torch) { run_fixture("golden/golden_schedules.json"); }
END_TEST

Suite *suite_golden(void)
{
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("torch");
    tcase_add_test(tc, mlp_linear_tanh_mse_matches_torch);
    tcase_add_test(tc, rnn_last_mse_matches_torch);
    tcase_add_test(tc, rnn_sequence_mse_matches_torch);
    tcase_add_test(tc, lstm_last_mse_matches_torch);
    tcase_add_test(tc, lstm_sequence_cross_entropy_matches_torch);
    tcase_add_test(tc, gru_last_cross_entropy_matches_torch);
    tcase_add_test(tc, gru_sequence_mse_matches_torch);
    tcase_add_test(tc, embedding_gru_sequence_cross_entropy_matches_torch);
    tcase_add_test(tc, mlp_bce_with_logits_large_logits_matches_torch);
    tcase_add_test(tc, lr_schedules_step_cosine_warmup_match_torch);
    suite_add_tcase(s, tc);
    return s;
}
