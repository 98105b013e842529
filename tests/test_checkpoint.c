/* A checkpoint is untrusted input: every item --resume (and eval, sample, init_from) reads is checked for
 * dtype, exact shape, range and consistency before any of it is used.
 *
 * tcase "table": real checkpoints of short training runs (configs of fuzz/resume_configs.h: a stage list
 * with skips, zclip with sgd momentum, a text model, a run that skipped and stopped), then, for every stored
 * item, mutated copies: other dtypes, other shapes ([n] -> [n, 1], scalar -> [1], ...), values (NaN, +-inf,
 * -1, 1e30; -1, INT64_MAX, INT64_MIN), the item missing, extra items under each reserved prefix, and the
 * metadata. Each is refused with an error naming the file and the item, or is one of the documented
 * accepted values (accepted() below; README "Checkpoints").
 * tcase "cases": the reported cases through the program: exit 2 naming the file and the item, nothing
 * written. tcase "corpus": the committed fuzz seeds are checkpoints that resume. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include <cJSON.h>
#include "io/files.h"
#include "train/session.h"
#include "train/trainer.h"
#include "../fuzz/resume_configs.h"

/* ---- fixtures ---- */

static char tmpdir[256];

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

static int config_index(const char *name)
{
    for (int i = 0; i < FUZZ_RESUME_N; i++)
        if (!strcmp(fuzz_resume_configs[i].name, name)) return i;
    ck_abort_msg("no config %s", name);
    return -1;
}

/* Writes the config (and the text file) into tmpdir as <name>.json; path into cfg. */
static void write_config(const char *name, char *cfg, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/fuzz_text.txt", tmpdir);
    put_file(p, FUZZ_RESUME_TEXT);
    snprintf(cfg, n, "%s/%s.json", tmpdir, name);
    put_file(cfg, fuzz_resume_configs[config_index(name)].json);
}

/* Trains config `name` (train.steps = steps) into tmpdir/run-<name>-<steps>; the checkpoint path into ck. */
static void train_run(const char *name, long long steps, char *cfg, size_t ncfg, char *ck, size_t nck)
{
    write_config(name, cfg, ncfg);
    char run[400], set[64];
    snprintf(run, sizeof run, "%s/run-%s-%lld", tmpdir, name, steps);
    snprintf(set, sizeof set, "train.steps=%lld", steps);
    char *sets[] = {set};
    cn_train_opts o = {.config_path = cfg, .out_dir = run, .sets = sets, .n_sets = 1};
    cn_train_result r;
    ck_assert_ok(cn_train(&o, &r));
    snprintf(ck, nck, "%s/checkpoint.safetensors", run);
}

/* ---- mutations ---- */

enum { M_NONE, M_DTYPE, M_SHAPE, M_MISSING, M_EXTRA, M_VALUE, M_META };

typedef struct {
    int kind;
    const char *item;          /* tensor (M_DTYPE .. M_VALUE) or metadata key (M_META) */
    cn_dtype dtype;            /* M_DTYPE */
    int ndim;                  /* M_SHAPE */
    int64_t shape[4];
    int64_t elem;              /* M_VALUE */
    double fv;                 /* M_VALUE on a float item */
    int64_t iv;                /* M_VALUE on an integer item */
    const char *meta;          /* M_META: the new value, NULL to remove the key */
} mutation;

/* Writes the checkpoint `in` with mutation m applied to path. */
static void write_mutated(const cn_st_file *in, const mutation *m, const char *path)
{
    const cn_state *t = cn_st_tensors(in);
    cn_state st;
    cn_state_init(&st);
    void *own = NULL;
    for (int i = 0; i < t->count; i++) {
        const cn_state_item *it = &t->items[i];
        int hit = m->item && !strcmp(it->name, m->item);
        if (hit && m->kind == M_MISSING) continue;
        if (hit && m->kind == M_DTYPE) {
            own = calloc(cn_state_item_numel(it) + 1, 8);   /* values do not matter: the dtype is refused */
            ck_assert_ok(cn_state_add(&st, it->name, m->dtype, it->ndim, it->shape, own));
        } else if (hit && m->kind == M_SHAPE) {
            size_t numel = 1;
            for (int d = 0; d < m->ndim; d++) numel *= (size_t)m->shape[d];
            own = calloc(numel + 1, 8);
            ck_assert_ok(cn_state_add(&st, it->name, it->dtype, m->ndim, m->shape, own));
        } else if (hit && m->kind == M_VALUE) {
            size_t bytes = cn_state_item_numel(it) * cn_dtype_size(it->dtype);
            own = malloc(bytes + 8);
            memcpy(own, it->data, bytes);
            switch (it->dtype) {
            case CN_DT_F32: ((float *)own)[m->elem] = (float)m->fv; break;
            case CN_DT_F64: ((double *)own)[m->elem] = m->fv; break;
            case CN_DT_I32: ((int32_t *)own)[m->elem] = m->iv < INT32_MIN ? INT32_MIN : m->iv > INT32_MAX ? INT32_MAX : (int32_t)m->iv; break;
            case CN_DT_I64: ((int64_t *)own)[m->elem] = m->iv; break;
            }
            ck_assert_ok(cn_state_add(&st, it->name, it->dtype, it->ndim, it->shape, own));
        } else {
            ck_assert_ok(cn_state_add(&st, it->name, it->dtype, it->ndim, it->shape, it->data));
        }
    }
    static int64_t extra = 0;
    if (m->kind == M_EXTRA) ck_assert_ok(cn_state_add(&st, m->item, CN_DT_I64, 0, NULL, &extra));
    cJSON *meta = cJSON_Duplicate(cn_st_metadata(in), 1);
    if (m->kind == M_META) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, m->item);
        if (m->meta) cJSON_AddStringToObject(meta, m->item, m->meta);
    }
    ck_assert_ok(cn_st_write(path, &st, meta));
    cJSON_Delete(meta);
    cn_state_free(&st);
    free(own);
}

static const char *describe(const mutation *m, char *buf, size_t n)
{
    static const char *const kinds[] = {"none", "dtype", "shape", "missing", "extra", "value", "meta"};
    if (m->kind == M_VALUE)
        snprintf(buf, n, "%s %s[%lld] = %g / %lld", kinds[m->kind], m->item, (long long)m->elem, m->fv, (long long)m->iv);
    else if (m->kind == M_META)
        snprintf(buf, n, "metadata %s = %s", m->item, m->meta ? m->meta : "(removed)");
    else if (m->kind == M_DTYPE)
        snprintf(buf, n, "%s %s -> %s", kinds[m->kind], m->item, cn_dtype_name(m->dtype));
    else
        snprintf(buf, n, "%s %s", kinds[m->kind], m->item);
    return buf;
}

/* Resumes a session of `cfg` (train.steps raised to `steps`) from path: the status, message in msg. */
static cn_status try_resume(const char *cfg, long long steps, const char *path, char *msg, size_t n)
{
    cn_session s;
    char set[64];
    snprintf(set, sizeof set, "train.steps=%lld", steps);
    char *sets[] = {set};
    ck_assert_ok(cn_session_open(&s, cfg, sets, 1));
    cn_status st = cn_session_resume(&s, path);
    snprintf(msg, n, "%s", st ? cn_errmsg() : "");
    if (!st) {
        /* what the trainer relies on */
        ck_assert(s.loss_ring_n >= 0 && s.loss_ring_n <= s.step);
        ck_assert(s.diverged_at_step >= 0 && s.diverged_at_step <= s.step);
        ck_assert(s.clipped_steps >= 0 && s.clipped_steps <= s.step);
    }
    cn_session_close(&s);
    return st;
}

/* The documented accepted values (README "Checkpoints"): model weights and first moments may be anything
 * a diverged run under on_nonfinite "propagate" holds; second moments anything but negative; the data
 * order's RNG any non-zero state; a logged loss any finite value; a norm of the clip state any finite
 * value >= 0; the largest norm also inf, or nan while no norm was a number. `n_logged` is the run's loss-ring count, `count`
 * the filled entries of a clip window. */
static int accepted(const mutation *m, long long n_logged, long long count)
{
    if (m->kind == M_NONE) return 1;
    if (m->kind != M_VALUE) return 0;
    const char *it = m->item;
    int reserved = !strncmp(it, "optim.", 6) || !strncmp(it, "clip.", 5) || !strncmp(it, "data.", 5) || !strncmp(it, "train.", 6);
    double v = m->fv;
    size_t len = strlen(it);
#define ENDS(s) (len > strlen(s) && !strcmp(it + len - strlen(s), s))
    if (!reserved) return 1;
    if (ENDS(".exp_avg") || ENDS(".momentum_buffer")) return 1;
    if (ENDS(".exp_avg_sq")) return !(v < 0);
    if (!strcmp(it, "data.rng")) return 1;
    if (!strcmp(it, "train.loss_ring")) return m->elem < n_logged && isfinite(v);
    if (!strcmp(it, "train.stats")) return m->elem == 0 && (v >= 0 || isnan(v));   /* nan: no norm was a number */
    if (ENDS(".history") || ENDS(".warmup_buffer")) return m->elem < count && v >= 0 && isfinite(v);
    if (ENDS(".mu") || ENDS(".var")) return v >= 0 && isfinite(v);
#undef ENDS
    return 0;
}

/* The number of filled entries of the clip window item (history / warmup_buffer) from its count item. */
static long long window_count(const cn_state *t, const char *item)
{
    char name[256];
    const char *dot = strrchr(item, '.');
    snprintf(name, sizeof name, "%.*s.count", (int)(dot - item), item);
    const cn_state_item *c = cn_state_find(t, name);
    return c ? *(const int64_t *)c->data : 0;
}

static void check_case(const cn_st_file *in, const char *cfg, const mutation *m, int *n_refused, int *n_accepted)
{
    char path[512], msg[2048], what[256];
    snprintf(path, sizeof path, "%s/mutated.safetensors", tmpdir);
    write_mutated(in, m, path);
    cn_status st = try_resume(cfg, 12, path, msg, sizeof msg);
    const cn_state *t = cn_st_tensors(in);
    long long n_logged = ((const int64_t *)cn_state_find(t, "train.counters")->data)[4];
    int ok = accepted(m, n_logged, m->kind == M_VALUE ? window_count(t, m->item) : 0);
    describe(m, what, sizeof what);
    if (ok) {
        ck_assert_msg(st == CN_OK, "%s: %s: documented as accepted but refused: %s", cfg, what, msg);
        (*n_accepted)++;
        return;
    }
    ck_assert_msg(st == CN_ERR_FORMAT || st == CN_ERR_ARG, "%s: %s: status %d (%s)", cfg, what, (int)st, msg);
    ck_assert_msg(strstr(msg, path) != NULL, "%s: %s: the message does not name the file: %s", cfg, what, msg);
    const char *name = m->kind == M_META && !strcmp(m->item, "rng") ? "'rng'" : m->item;
    ck_assert_msg(strstr(msg, name) != NULL, "%s: %s: the message does not name the item: %s", cfg, what, msg);
    (*n_refused)++;
}

/* Every mutation of every item of the checkpoint of one config. */
static void table(const char *name)
{
    char cfg[512], ck[512];
    train_run(name, 6, cfg, sizeof cfg, ck, sizeof ck);
    cn_st_file *in = NULL;
    ck_assert_ok(cn_st_read(ck, &in));
    int refused = 0, acc = 0;
    mutation none = {M_NONE};
    char msg[2048];
    ck_assert_msg(try_resume(cfg, 12, ck, msg, sizeof msg) == CN_OK, "%s: the unmutated checkpoint: %s", name, msg);
    /* the unmutated copy written by write_mutated resumes too (the writer round trip) */
    check_case(in, cfg, &none, &refused, &acc);
    const cn_state *t = cn_st_tensors(in);
    static const double fvals[] = {NAN, INFINITY, -INFINITY, -1.0, 1e30};
    static const int64_t ivals[] = {-1, INT64_MAX, INT64_MIN};
    for (int i = 0; i < t->count; i++) {
        const cn_state_item *it = &t->items[i];
        mutation m = {.item = it->name};
        /* dtypes: the other of the same size, the same kind of the other size */
        static const cn_dtype same_size[] = {CN_DT_I32, CN_DT_I64, CN_DT_F32, CN_DT_F64};
        static const cn_dtype other_size[] = {CN_DT_F64, CN_DT_F32, CN_DT_I64, CN_DT_I32};
        m.kind = M_DTYPE;
        m.dtype = same_size[it->dtype];
        check_case(in, cfg, &m, &refused, &acc);
        m.dtype = other_size[it->dtype];
        check_case(in, cfg, &m, &refused, &acc);
        /* shapes: a trailing 1 ([n] -> [n, 1], scalar -> [1]); one element fewer; transposed */
        m.kind = M_SHAPE;
        if (it->ndim < 4) {
            m.ndim = it->ndim + 1;
            memcpy(m.shape, it->shape, sizeof m.shape);
            m.shape[it->ndim] = 1;
            check_case(in, cfg, &m, &refused, &acc);
        }
        if (it->ndim >= 1 && it->shape[it->ndim - 1] > 1) {
            m.ndim = it->ndim;
            memcpy(m.shape, it->shape, sizeof m.shape);
            m.shape[it->ndim - 1]--;
            check_case(in, cfg, &m, &refused, &acc);
        }
        if (it->ndim == 2 && it->shape[0] != it->shape[1]) {
            m.ndim = 2;
            m.shape[0] = it->shape[1];
            m.shape[1] = it->shape[0];
            check_case(in, cfg, &m, &refused, &acc);
        }
        if (it->ndim == 1 && it->shape[0] == 1) {   /* [1] -> scalar */
            m.ndim = 0;
            check_case(in, cfg, &m, &refused, &acc);
        }
        m.kind = M_MISSING;
        check_case(in, cfg, &m, &refused, &acc);
        /* values: every element of small items, the first and last of the others */
        m.kind = M_VALUE;
        int64_t numel = (int64_t)cn_state_item_numel(it);
        for (int64_t e = 0; e < numel; e++) {
            if (numel > 8 && e != 0 && e != numel - 1) continue;
            m.elem = e;
            if (it->dtype == CN_DT_F32 || it->dtype == CN_DT_F64) {
                for (size_t k = 0; k < sizeof fvals / sizeof fvals[0]; k++) {
                    m.fv = fvals[k];
                    check_case(in, cfg, &m, &refused, &acc);
                }
            } else {
                m.fv = 0;
                for (size_t k = 0; k < sizeof ivals / sizeof ivals[0]; k++) {
                    m.iv = ivals[k];
                    check_case(in, cfg, &m, &refused, &acc);
                }
            }
        }
    }
    /* extra items: under each reserved prefix (unknown state) and outside them (not a parameter) */
    static const char *const extras[] = {"optim.extra", "clip.extra", "clip.0.extra", "data.extra", "train.extra",
                                         "extra_weight", "optim.0.weight.exp_avg", NULL};
    for (const char *const *e = extras; *e; e++) {
        mutation m = {.kind = M_EXTRA, .item = *e};
        if (cn_state_find(t, *e)) continue;
        check_case(in, cfg, &m, &refused, &acc);
    }
    /* metadata */
    static const struct { const char *key, *value; } metas[] = {
        {"step", NULL}, {"step", "+5"}, {"step", " 5"}, {"step", "5 "}, {"step", "05"}, {"step", "-1"}, {"step", ""},
        {"step", "0"}, {"step", "5"}, {"step", "7"}, {"step", "6.0"}, {"step", "1e1"}, {"step", "0x6"},
        {"step", "99999999999999999999999"}, {"step", "9223372036854775807"}, {"step", "9223372036854775808"},
        {"rng", NULL}, {"rng", ""}, {"rng", "00"},
        {"rng", "00000000000000000000000000000000000000000000000000000000000000000000000000000000"},
        {"rng", "0000000000000001000000000000000200000000000000030000000000000004" "1" "7ff8000000000000"},
        {"rng", "0000000000000001000000000000000200000000000000030000000000000004" "1" "7ff0000000000000"},
        {"rng", "0000000000000001000000000000000200000000000000030000000000000004" "2" "0000000000000000"},
        {"rng", "000000000000000100000000000000020000000000000003000000000000000A" "0" "0000000000000000"},
        {"wall_s", NULL}, {"wall_s", "nan"}, {"wall_s", "-1"}, {"wall_s", "inf"}, {"wall_s", ""}, {"wall_s", " 1"},
        {"wall_s", "1x"},
        {"format", NULL}, {"format", "clipnn"}, {"format_version", NULL}, {"format_version", "2"},
        {"config", NULL}, {"config", "{"}, {"config", "{}"},
    };
    for (size_t k = 0; k < sizeof metas / sizeof metas[0]; k++) {
        mutation m = {.kind = M_META, .item = metas[k].key, .meta = metas[k].value};
        check_case(in, cfg, &m, &refused, &acc);
    }
    /* documented accepted metadata: clipnn_version is informative; wall_s any number of seconds >= 0 */
    static const struct { const char *key, *value; } ok_metas[] = {
        {"clipnn_version", NULL}, {"clipnn_version", "0.0"}, {"wall_s", "0"}, {"wall_s", "1e3"},
    };
    for (size_t k = 0; k < sizeof ok_metas / sizeof ok_metas[0]; k++) {
        mutation m = {.kind = M_META, .item = ok_metas[k].key, .meta = ok_metas[k].value};
        char path[512];
        snprintf(path, sizeof path, "%s/mutated.safetensors", tmpdir);
        write_mutated(in, &m, path);
        ck_assert_msg(try_resume(cfg, 12, path, msg, sizeof msg) == CN_OK, "%s: metadata %s: %s", name, m.item, msg);
    }
    /* the thread count the run was trained with, in the config metadata: an integer in [1, 256] (a resume
       with "threads": "auto" takes it as it is) */
    static const char *const bad_threads[] = {"0", "2.5", "\"two\"", "300", "-1", "null", "1e9"};
    for (size_t k = 0; k < sizeof bad_threads / sizeof bad_threads[0]; k++) {
        cJSON *conf = cJSON_Parse(cn_st_meta(in, "config"));
        ck_assert_ptr_nonnull(conf);
        cJSON_DeleteItemFromObjectCaseSensitive(conf, "threads");
        cJSON_AddItemToObject(conf, "threads", cJSON_Parse(bad_threads[k]));
        char *text = cJSON_PrintUnformatted(conf);
        mutation m = {.kind = M_META, .item = "config", .meta = text};
        char path[512];
        snprintf(path, sizeof path, "%s/mutated.safetensors", tmpdir);
        write_mutated(in, &m, path);
        cn_status st = try_resume(cfg, 12, path, msg, sizeof msg);
        ck_assert_msg(st == CN_ERR_FORMAT && strstr(msg, "metadata 'config': threads is") && strstr(msg, path),
                      "%s: threads %s: status %d: %s", name, bad_threads[k], st, msg);
        free(text);
        cJSON_Delete(conf);
    }
    ck_assert_int_gt(refused, 100);
    ck_assert_int_gt(acc, 5);
    cn_st_close(in);
}

/* tmpfs when there is one: every case writes (and fsyncs) a checkpoint */
static void setup(void) { tu_make_tmpdir(tmpdir, sizeof tmpdir, access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", "clipnn-ckpt"); }
static void teardown(void) { tu_remove_tree(tmpdir); }

START_TEST(table_stage_list_adam_skip) { table("mlp_stage_list"); }
END_TEST
START_TEST(table_zclip_sgd_momentum) { table("rnn_zclip_bptt"); }
END_TEST
START_TEST(table_text_vocabulary) { table("text_embedding_gru"); }
END_TEST
START_TEST(table_skipped_and_stopped) { table("rnn_explode_skip"); }
END_TEST

/* eval / sample / init_from read the model tensors (and a text model's vocabulary): each exactly. */
START_TEST(eval_checks_the_model_tensors)
{
    char cfg[512], ck[512], path[512];
    train_run("text_embedding_gru", 6, cfg, sizeof cfg, ck, sizeof ck);
    cn_st_file *in = NULL;
    ck_assert_ok(cn_st_read(ck, &in));
    snprintf(path, sizeof path, "%s/mutated.safetensors", tmpdir);
    const mutation cases[] = {
        {.kind = M_SHAPE, .item = "1.bias_ih_l0", .ndim = 2, .shape = {12, 1}},
        {.kind = M_SHAPE, .item = "1.bias_ih_l0", .ndim = 1, .shape = {11}},
        {.kind = M_DTYPE, .item = "2.weight", .dtype = CN_DT_I32},
        {.kind = M_DTYPE, .item = "2.weight", .dtype = CN_DT_F64},
        {.kind = M_MISSING, .item = "0.weight"},
        {.kind = M_EXTRA, .item = "extra_weight"},
        {.kind = M_DTYPE, .item = "data.vocab", .dtype = CN_DT_I64},
        {.kind = M_SHAPE, .item = "data.vocab", .ndim = 2, .shape = {5, 1}},
        {.kind = M_VALUE, .item = "data.vocab", .elem = 0, .iv = -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_mutated(in, &cases[k], path);
        double loss, metric;
        const char *mname;
        int n;
        cn_status st = cn_evaluate(cfg, NULL, 0, path, &loss, &metric, &mname, &n);
        char what[256];
        describe(&cases[k], what, sizeof what);
        ck_assert_msg(st == CN_ERR_FORMAT || st == CN_ERR_ARG, "%s: status %d", what, (int)st);
        ck_assert_msg(strstr(cn_errmsg(), path) && (strstr(cn_errmsg(), cases[k].item) || cases[k].kind == M_VALUE),
                      "%s: %s", what, cn_errmsg());
    }
    /* accepted: NaN weights (a diverged run's), state it does not read */
    const mutation ok[] = {
        {.kind = M_VALUE, .item = "2.weight", .elem = 0, .fv = NAN},
        {.kind = M_VALUE, .item = "train.counters", .elem = 4, .iv = -5},
        {.kind = M_MISSING, .item = "optim.step"},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        write_mutated(in, &ok[k], path);
        double loss, metric;
        const char *mname;
        int n;
        ck_assert_ok(cn_evaluate(cfg, NULL, 0, path, &loss, &metric, &mname, &n));
    }
    cn_st_close(in);
}
END_TEST

/* ---- the reported cases, through the program ---- */

typedef struct {
    const char *what;
    mutation m;
    const char *expect;        /* in the message besides the file name */
} reported;

START_TEST(reported_cases_exit_2_naming_the_item)
{
    char cfg[512], ck[512], path[512], out[8192];
    train_run("mlp_stage_list", 10, cfg, sizeof cfg, ck, sizeof ck);
    cn_st_file *in = NULL;
    ck_assert_ok(cn_st_read(ck, &in));
    const reported cases[] = {
        {"loss ring count -5", {.kind = M_VALUE, .item = "train.counters", .elem = 4, .iv = -5}, "loss ring count -5"},
        {"loss ring count -1000", {.kind = M_VALUE, .item = "train.counters", .elem = 4, .iv = -1000}, "loss ring count -1000"},
        {"loss ring count INT64_MAX", {.kind = M_VALUE, .item = "train.counters", .elem = 4, .iv = INT64_MAX}, "loss ring count"},
        {"optim.step INT64_MAX", {.kind = M_VALUE, .item = "optim.step", .elem = 0, .iv = INT64_MAX}, "optim.step"},
        {"step 1e23", {.kind = M_META, .item = "step", .meta = "99999999999999999999999"}, "'step'"},
        {"step +5", {.kind = M_META, .item = "step", .meta = "+5"}, "'step'"},
        {"step space 5", {.kind = M_META, .item = "step", .meta = " 5"}, "'step'"},
        {"step 0 on a step-10 state", {.kind = M_META, .item = "step", .meta = "0"}, "'step'"},
        {"clip_frac 50000", {.kind = M_VALUE, .item = "train.counters", .elem = 0, .iv = 500000}, "clipped step count 500000"},
        {"negative diverged_at_step", {.kind = M_VALUE, .item = "train.counters", .elem = 3, .iv = -3}, "diverged_at_step -3"},
        {"negative stats", {.kind = M_VALUE, .item = "train.stats", .elem = 0, .fv = -2}, "train.stats"},
        {"-inf stats", {.kind = M_VALUE, .item = "train.stats", .elem = 0, .fv = -INFINITY}, "train.stats"},
        {"NaN in a reserved stat", {.kind = M_VALUE, .item = "train.stats", .elem = 2, .fv = NAN}, "train.stats"},
        {"[5,1] for [5]", {.kind = M_SHAPE, .item = "train.counters", .ndim = 2, .shape = {5, 1}}, "I64 [5, 1], expected I64 [5]"},
        {"[1] for a scalar", {.kind = M_SHAPE, .item = "optim.step", .ndim = 1, .shape = {1}}, "I64 [1], expected I64 []"},
        {"unknown data.extra", {.kind = M_EXTRA, .item = "data.extra"}, "data.extra"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char dir[400];
        snprintf(dir, sizeof dir, "%s/case%zu", tmpdir, k);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
        write_mutated(in, &cases[k].m, path);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "OPENBLAS_NUM_THREADS=1 %s train %s --quiet --set train.steps=20 --resume %s 2>&1",
                 tu_clipnn_bin(), cfg, path);
        int rc = tu_shell(out, sizeof out, cmd);
        ck_assert_msg(rc == 2, "%s: exit %d: %s", cases[k].what, rc, out);
        ck_assert_msg(strstr(out, path) && strstr(out, cases[k].expect), "%s: %s", cases[k].what, out);
        /* nothing was written next to the refused checkpoint */
        snprintf(cmd, sizeof cmd, "ls -A %s", dir);
        tu_shell(out, sizeof out, cmd);
        ck_assert_msg(!strcmp(out, "checkpoint.safetensors\n"), "%s: files written: %s", cases[k].what, out);
    }
    /* the suggestion of a checkpoint beyond train.steps is a valid train.steps */
    snprintf(path, sizeof path, "%s/case0/checkpoint.safetensors", tmpdir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s train %s --quiet --resume %s 2>&1", tu_clipnn_bin(), cfg, ck);
    ck_assert_int_eq(tu_shell(out, sizeof out, cmd), 2);
    ck_assert_msg(strstr(out, "--set train.steps=16"), "%s", out);
    cn_st_close(in);
}
END_TEST

/* The optimizer refuses to count past its maximum (a state loaded from elsewhere cannot wrap it). */
START_TEST(optimizer_step_count_never_wraps)
{
    cn_paramset ps;
    cn_paramset_init(&ps);
    int shape[1] = {2};
    int idx;
    ck_assert_ok(cn_paramset_add(&ps, "w", 1, shape, &idx));
    ck_assert_ok(cn_paramset_finalize(&ps));
    cJSON *j = cJSON_Parse("{\"type\":\"adam\",\"lr\":0.1}");
    cn_optim *o = NULL;
    ck_assert_ok(cn_optim_from_json(j, "optimizer", &ps, &o));
    cn_state st;
    cn_state_init(&st);
    ck_assert_ok(cn_optim_save_state(o, &ps, &st));
    int64_t *step = cn_state_find(&st, "optim.step")->data;
    *step = INT64_MAX;
    ck_assert_int_eq(cn_optim_load_state(o, &ps, &st, LLONG_MAX), CN_OK);   /* a caller allowing it */
    ck_assert_int_eq(cn_optim_step(o, &ps, 0.1), CN_ERR_STATE);              /* does not overflow */
    ck_assert_int_eq(cn_optim_load_state(o, &ps, &st, 10), CN_ERR_FORMAT);   /* the run's bound */
    ck_assert_ptr_nonnull(strstr(cn_errmsg(), "optim.step"));
    cn_state_free(&st);
    cn_optim_free(o);
    cJSON_Delete(j);
    cn_paramset_free(&ps);
}
END_TEST

/* The committed seeds of the resume fuzz target are checkpoints of its configs that resume. */
START_TEST(fuzz_corpus_checkpoints_resume)
{
    for (int i = 0; i < FUZZ_RESUME_N; i++) {
        char seed[512], cfg[512], path[512], msg[2048];
        snprintf(seed, sizeof seed, "../fuzz/corpus/resume/%s", fuzz_resume_configs[i].name);
        size_t len = 0;
        char *bytes = tu_slurp(seed, &len);
        ck_assert_msg(bytes && len > 1, "%s missing", seed);
        ck_assert_int_eq((unsigned char)bytes[0], i);
        snprintf(path, sizeof path, "%s/seed.safetensors", tmpdir);
        FILE *f = fopen(path, "wb");
        ck_assert(f && fwrite(bytes + 1, 1, len - 1, f) == len - 1 && fclose(f) == 0);
        free(bytes);
        write_config(fuzz_resume_configs[i].name, cfg, sizeof cfg);
        ck_assert_msg(try_resume(cfg, 12, path, msg, sizeof msg) == CN_OK, "%s: %s", seed, msg);
    }
}
END_TEST

Suite *suite_checkpoint(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, table_stage_list_adam_skip);
    tcase_add_test(tc, table_zclip_sgd_momentum);
    tcase_add_test(tc, table_text_vocabulary);
    tcase_add_test(tc, table_skipped_and_stopped);
    tcase_add_test(tc, eval_checks_the_model_tensors);
    suite_add_tcase(s, tc);
    tc = tcase_create("cases");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, reported_cases_exit_2_naming_the_item);
    tcase_add_test(tc, optimizer_step_count_never_wraps);
    suite_add_tcase(s, tc);
    tc = tcase_create("corpus");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fuzz_corpus_checkpoints_resume);
    suite_add_tcase(s, tc);
    return s;
}
