/* Session set-up, checkpoints and evaluation (see session.h). */
#include "train/session.h"
#include "dist/dist.h"

#include "json/json.h"
#include "tensor/pool.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_FORMAT "clipnn-checkpoint"
#define CKPT_VERSION "1"

/* Separate, fixed streams derived from the run's seed. */
#define SEED_INIT(seed) ((uint64_t)(seed) * 0x9E3779B97F4A7C15ULL + 0x1111)
#define SEED_DROPOUT(seed) ((uint64_t)(seed) * 0x9E3779B97F4A7C15ULL + 0x2222)

const char *cn_session_metric_name(const cn_session *s)
{
    return s->loss == CN_LOSS_MSE ? "mae" : "accuracy";
}

/* A file named by the config or the command line that cannot be opened or read (missing, a directory,
 * unreadable) is bad input, exit 2 (the exit codes of clipnn(1)), not an I/O failure of the run: nothing has been written
 * yet. The readers report CN_ERR_IO for it. */
static cn_status input_status(cn_status st) { return st == CN_ERR_IO ? CN_ERR_ARG : st; }

/* The model's output must fit the data's targets and the loss. */
static cn_status check_shapes(cn_session *s)
{
    const cn_dataset *d = &s->data.train;
    cn_model_output o = s->out;
    const char *kind = s->data.kind;
    if (d->target_seq && !o.seq)
        return cn_error(CN_ERR_ARG, "model: data \"%s\" has a target at every time step, but the model outputs "
                        "only the last step (set \"output\": \"sequence\" on the recurrent layer)", kind);
    if (!d->target_seq && o.seq && !cn_model_has_recurrent(s->model))
        return cn_error(CN_ERR_ARG, "model: data \"%s\" is a sequence with one target per sequence, but the model "
                        "has no recurrent layer to read it (add an rnn, lstm or gru layer with \"output\": \"last\" "
                        "before the head)", kind);
    if (!d->target_seq && o.seq)
        return cn_error(CN_ERR_ARG, "model: data \"%s\" has one target per sequence, but the model outputs a "
                        "sequence (set \"output\": \"last\" on the recurrent layer)", kind);
    if (d->target_kind == CN_TARGET_CLASS) {
        if (s->loss != CN_LOSS_CROSS_ENTROPY)
            return cn_error(CN_ERR_ARG, "loss: data \"%s\" has class labels; use \"cross_entropy\" (got \"%s\")", kind, s->cfg.loss);
        if (d->n_classes > CN_LAYER_MAX_SIZE)
            return cn_error(CN_ERR_ARG, "data: a class label of data \"%s\" is %d, so the model would need %d outputs, "
                            "more than a linear layer's largest \"out\" (%d); class labels are 0 .. classes-1",
                            kind, d->n_classes - 1, d->n_classes, CN_LAYER_MAX_SIZE);
        if (o.features < d->n_classes)
            return cn_error(CN_ERR_ARG, "model: the last layer outputs %d values but data \"%s\" has %d classes "
                            "(set the last linear layer's \"out\" to %d)", o.features, kind, d->n_classes, d->n_classes);
    } else {
        if (s->loss == CN_LOSS_CROSS_ENTROPY)
            return cn_error(CN_ERR_ARG, "loss: \"cross_entropy\" needs class labels, but data \"%s\" has float "
                            "targets (use \"mse\" or \"bce_with_logits\")", kind);
        if (d->target_dim > CN_LAYER_MAX_SIZE)
            return cn_error(CN_ERR_ARG, "data: data \"%s\" has %d target values per %s, more than a linear layer's "
                            "largest \"out\" (%d)", kind, d->target_dim, d->target_seq ? "step" : "example",
                            CN_LAYER_MAX_SIZE);
        if (o.features != d->target_dim)
            return cn_error(CN_ERR_ARG, "model: the last layer outputs %d values but data \"%s\" has %d target "
                            "value(s) per %s (set the last linear layer's \"out\" to %d)", o.features, kind,
                            d->target_dim, d->target_seq ? "step" : "example", d->target_dim);
    }
    return CN_OK;
}

/* Rules between keys of different sections, checked with everything else before a run directory is
 * created (the lr of every step is then finite and >= 0, so the optimizer's own check never fires). */
static cn_status check_cross_keys(const cn_session *s)
{
    const cn_train_config *tc = &s->cfg.train;
    const cn_schedule *sc = &s->sched;
    double lr = cn_optim_lr(s->optim);
    char a[32], b[32];
    if (sc->type == CN_SCHED_COSINE && sc->eta_min > lr)
        return cn_error(CN_ERR_ARG, "schedule.eta_min: %s is above optimizer.lr %s; a cosine schedule anneals the "
                        "learning rate from optimizer.lr down to eta_min (0 <= eta_min <= lr)",
                        cn_fmt_g(a, sizeof a, sc->eta_min, 0), cn_fmt_g(b, sizeof b, lr, 0));
    if (sc->warmup_steps > tc->steps)
        return cn_error(CN_ERR_ARG, "schedule.warmup_steps: %lld is more than train.steps %lld; the learning rate "
                        "would never reach optimizer.lr", sc->warmup_steps, tc->steps);
    if (tc->batch_size > s->data.train.n)
        return cn_error(CN_ERR_ARG, "train.batch_size: %lld is more than the %d training examples of data \"%s\" "
                        "(at most %d)", tc->batch_size, s->data.train.n, s->data.kind, s->data.train.n);
    return CN_OK;
}

static cn_status alloc_buffers(cn_session *s)
{
    const cn_dataset *d = &s->data.train;
    int B = (int)s->cfg.train.batch_size;
    size_t nx = cn_batch_x_size(d, B), ny = cn_batch_y_size(d, B);
    s->bx = cn_malloc_aligned(nx * sizeof(float));
    if (d->target_kind == CN_TARGET_CLASS) s->bl = cn_malloc(ny * sizeof(int32_t));
    else s->by = cn_malloc_aligned(ny * sizeof(float));
    s->eval_batch = B < 256 ? 256 : B;
    const cn_dataset *e = s->data.test.n ? &s->data.test : d;
    size_t ex = cn_batch_x_size(e, s->eval_batch), ey = cn_batch_y_size(e, s->eval_batch);
    s->ex = cn_malloc_aligned(ex * sizeof(float));
    if (d->target_kind == CN_TARGET_CLASS) s->el = cn_malloc(ey * sizeof(int32_t));
    else s->ey = cn_malloc_aligned(ey * sizeof(float));
    if (!s->bx || !s->ex || (!s->bl && !s->by) || (!s->el && !s->ey))
        return cn_error(CN_ERR_NOMEM, "out of memory for batch buffers");
    if (s->data.vocab_size) {
        s->vocab_ids = cn_malloc(sizeof(int32_t) * (size_t)s->data.vocab_size);
        if (!s->vocab_ids) return cn_error(CN_ERR_NOMEM, "out of memory");
        for (int i = 0; i < s->data.vocab_size; i++) s->vocab_ids[i] = (unsigned char)s->data.vocab[i];
    }
    return CN_OK;
}

cn_status cn_session_open(cn_session *s, const char *config_path, char *const *sets, int n_sets)
{
    memset(s, 0, sizeof *s);
    cn_paramset_init(&s->ps);
    cn_graph_init(&s->g);
    cn_graph_init(&s->ge);
    cn_status st = cn_config_load(config_path, sets, n_sets, &s->cfg);
    if (st) return st;
    cn_config *c = &s->cfg;
    cJSON *r = c->root;
    const char *file = c->file;
    /* every error below is prefixed with the config file's name */
    if ((st = cn_loss_parse(c->loss, &s->loss)))
        return cn_error_prefix(st, "%s", file);
    if ((st = input_status(cn_data_load(cJSON_GetObjectItemCaseSensitive(r, "data"), "data", (uint64_t)c->seed, c->base_dir, &s->data))))
        return cn_error_prefix(st, "%s", file);
    if (s->data.train.n < 1) return cn_error(CN_ERR_ARG, "%s: data: the training set is empty", file);
    cn_model_input in = {s->data.train.seq_len > 0, s->data.train.features, s->data.train.ids, s->data.vocab_size};
    if ((st = cn_model_build(cJSON_GetObjectItemCaseSensitive(r, "model"), "model", &in, &s->ps, &s->model)))
        return cn_error_prefix(st, "%s", file);
    s->out = cn_model_output_shape(s->model);
    if ((st = check_shapes(s)))
        return cn_error_prefix(st, "%s", file);
    if ((st = cn_paramset_finalize(&s->ps)))
        return cn_error_prefix(st, "%s", file);
    cn_rng init_rng;
    cn_rng_seed(&init_rng, SEED_INIT(c->seed));
    if ((st = cn_model_init(s->model, &s->ps, &init_rng)))
        return cn_error_prefix(st, "%s", file);
    cn_rng_seed(&s->drop_rng, SEED_DROPOUT(c->seed));
    if ((st = cn_optim_from_json(cJSON_GetObjectItemCaseSensitive(r, "optimizer"), "optimizer", &s->ps, &s->optim)))
        return cn_error_prefix(st, "%s", file);
    if ((st = cn_schedule_from_json(cJSON_GetObjectItemCaseSensitive(r, "schedule"), "schedule", &s->sched)))
        return cn_error_prefix(st, "%s", file);
    if ((st = cn_clip_from_json(cJSON_GetObjectItemCaseSensitive(r, "clip"), "clip", &s->ps, &s->clip)))
        return cn_error_prefix(st, "%s", file);
    if (c->train.bptt > 0 && !s->data.train.seq_len)
        return cn_error(CN_ERR_ARG, "%s: train.bptt: truncation needs sequence data, but data \"%s\" is not a sequence", file, s->data.kind);
    if ((st = check_cross_keys(s)))
        return cn_error_prefix(st, "%s", file);
    if ((st = cn_batcher_init(&s->batcher, &s->data.train, (int)c->train.batch_size, s->data.shuffle, (uint64_t)c->seed)))
        return st;
    s->batcher_ready = 1;
    if ((st = alloc_buffers(s))) return st;
    if (c->init_from) {
        char path[2048];
        if (c->init_from[0] == '/') snprintf(path, sizeof path, "%s", c->init_from);
        else snprintf(path, sizeof path, "%s/%s", c->base_dir, c->init_from);
        cn_st_file *f = NULL;
        if ((st = input_status(cn_st_read(path, &f)))) return cn_error_prefix(st, "%s: init_from", file);
        st = cn_session_load_params(s, f, path);
        cn_st_close(f);
        if (st) return cn_error_prefix(st, "%s: init_from", file);
    }
    s->max_norm_pre = NAN;   /* no norm seen yet; stays NaN if every step's norm is NaN */
    return CN_OK;
}

void cn_session_close(cn_session *s)
{
    if (s->batcher_ready) cn_batcher_free(&s->batcher);
    cn_clip_free(s->clip);
    cn_optim_free(s->optim);
    cn_model_free(s->model);
    cn_paramset_free(&s->ps);
    cn_graph_free(&s->g);
    cn_graph_free(&s->ge);
    cn_data_free(&s->data);
    cn_free(s->dist_grads);
    cn_free(s->dist_loss);
    cn_free(s->dist_weight);
    cn_free(s->shard_n);
    cn_free(s->shard_at);
    cn_free(s->recv_n);
    cn_free(s->recv_at);
    cn_free_aligned(s->bx);
    cn_free_aligned(s->by);
    cn_free(s->bl);
    cn_free_aligned(s->ex);
    cn_free_aligned(s->ey);
    cn_free(s->el);
    cn_free(s->vocab_ids);
    cn_config_free(&s->cfg);
    memset(s, 0, sizeof *s);
}

static int reserved_name(const char *n)
{
    static const char *const pre[] = {"optim.", "clip.", "data.", "train.", NULL};
    for (const char *const *p = pre; *p; p++)
        if (!strncmp(n, *p, strlen(*p))) return 1;
    return 0;
}

/* Checks that the file's model tensors fit this model exactly (dtype F32, the parameter's shape) and that
 * it holds nothing else outside the reserved prefixes; a text model's vocabulary must be the config's.
 * Values are not bounded: a diverged run's weights may be NaN or inf and are loaded as they are. */
static cn_status check_params(const cn_session *s, const cn_st_file *f, const char *file)
{
    const cn_state *t = cn_st_tensors(f);
    for (int i = 0; i < s->ps.count; i++) {
        const cn_param_info *p = &s->ps.info[i];
        int64_t shape[4];
        for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
        const cn_state_item *it;
        if (!cn_state_find(t, p->name)) return cn_error(CN_ERR_FORMAT, "%s: tensor '%s' is missing", file, p->name);
        if (cn_state_get(t, p->name, CN_DT_F32, p->ndim, shape, &it)) {
            char want[128], got[128];
            it = cn_state_find(t, p->name);
            cn_state_describe(it->dtype, it->ndim, it->shape, got, sizeof got);
            cn_state_describe(CN_DT_F32, p->ndim, shape, want, sizeof want);
            return cn_error(CN_ERR_FORMAT, "%s: tensor '%s' is %s, the model needs %s", file, p->name, got, want);
        }
    }
    for (int i = 0; i < t->count; i++) {
        const char *n = t->items[i].name;
        if (!reserved_name(n) && cn_paramset_find(&s->ps, n) < 0)
            return cn_error(CN_ERR_FORMAT, "%s: tensor '%s' is not a parameter of this model", file, n);
    }
    /* a text model's token ids mean nothing with another vocabulary */
    const cn_state_item *voc = cn_state_find(t, "data.vocab");
    if (voc && s->vocab_ids) {
        int64_t v = s->data.vocab_size;
        const cn_state_item *it;
        int list = voc->dtype == CN_DT_I32 && voc->ndim == 1;   /* a vocabulary, maybe another one */
        if (!list && cn_state_get(t, "data.vocab", CN_DT_I32, 1, &v, &it)) return cn_error_prefix(CN_ERR_FORMAT, "%s", file);
        if (voc->shape[0] != v || memcmp(voc->data, s->vocab_ids, sizeof(int32_t) * (size_t)v))
            return cn_error(CN_ERR_ARG, "%s: state 'data.vocab': the checkpoint was trained with another vocabulary "
                            "(%lld characters) than the config's text (%d characters); use the text the model was "
                            "trained on", file, (long long)voc->shape[0], s->data.vocab_size);
    }
    return CN_OK;
}

static void copy_params(cn_session *s, const cn_st_file *f)
{
    const cn_state *t = cn_st_tensors(f);
    for (int i = 0; i < s->ps.count; i++) {
        const cn_param_info *p = &s->ps.info[i];
        memcpy(s->ps.data + p->offset, cn_state_find(t, p->name)->data, p->numel * sizeof(float));
    }
}

cn_status cn_session_load_params(cn_session *s, const cn_st_file *f, const char *file)
{
    cn_status st = check_params(s, f, file);
    if (!st) copy_params(s, f);
    return st;
}

/* Paths where two resolved configs differ (at most `max`, into out), ignoring the
 * keys that do not change what a resumed run computes. */
static int ignored_on_resume(const char *path)
{
    static const char *const ok[] = {"train.steps", "train.eval_every", "train.checkpoint_every", "train.log_every",
                                     "threads", "name", "compare", NULL};
    for (const char *const *p = ok; *p; p++)
        if (!strcmp(path, *p) || (!strncmp(path, *p, strlen(*p)) && path[strlen(*p)] == '.')) return 1;
    return 0;
}

/* Keys added to the clip modes after checkpoints of this format were first written, with the value that
 * gives the earlier behaviour: a checkpoint's config without the key resumes under a config that has it
 * at that value (the resolved config now writes it out). */
static int added_key_at_old_value(const char *path, const cJSON *now)
{
    const char *dot = strrchr(path, '.');
    const char *key = dot ? dot + 1 : path;
    if (!strcmp(key, "include_current")) return cJSON_IsFalse(now);                      /* autoclip */
    if (!strcmp(key, "ema_input")) return cJSON_IsString(now) && !strcmp(now->valuestring, "applied");   /* zclip */
    return 0;
}

static void config_diff(const cJSON *a, const cJSON *b, const char *path, char *out, size_t n, int *count)
{
    if (ignored_on_resume(path) || *count >= 3) return;
    if (!a && b && added_key_at_old_value(path, b)) return;
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        for (const cJSON *it = a->child; it; it = it->next) {
            char p[512];
            cn_json_join(p, sizeof p, path, it->string);
            config_diff(it, cJSON_GetObjectItemCaseSensitive(b, it->string), p, out, n, count);
        }
        for (const cJSON *it = b->child; it; it = it->next)
            if (!cJSON_GetObjectItemCaseSensitive(a, it->string)) {
                char p[512];
                cn_json_join(p, sizeof p, path, it->string);
                config_diff(NULL, it, p, out, n, count);
            }
        return;
    }
    if (cJSON_IsArray(a) && cJSON_IsArray(b) && cJSON_GetArraySize(a) == cJSON_GetArraySize(b)) {
        int i = 0;
        for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next, i++) {
            char p[512], idx[16];
            snprintf(idx, sizeof idx, "%d", i);
            cn_json_join(p, sizeof p, path, idx);
            config_diff(x, y, p, out, n, count);
        }
        return;
    }
    if (a && b && cJSON_Compare(a, b, 1)) return;
    char da[64], db[64];
    size_t k = strlen(out);
    snprintf(out + k, n - k, "%s%s (checkpoint %s, now %s)", *count ? "; " : "", path,
             cn_json_describe(a, da, sizeof da), cn_json_describe(b, db, sizeof db));
    (*count)++;
}

static cn_status check_same_config(cn_session *s, const cn_st_file *f, const char *file)
{
    const char *text = cn_st_meta(f, "config");
    if (!text) return cn_error(CN_ERR_FORMAT, "%s: metadata 'config' is missing", file);
    cJSON *then = NULL;
    cn_status st = cn_json_parse(text, file, &then);
    if (st) return cn_error(CN_ERR_FORMAT, "%s: metadata 'config' is not valid JSON", file);
    char diff[1024] = "";
    int count = 0;
    config_diff(then, s->cfg.root, "", diff, sizeof diff, &count);
    /* Another thread count splits the sums of the matrix products differently: the resumed run
     * would part from the uninterrupted one at the first step (by rounding, then by more on a chaotic run). */
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(then, "threads");
    int then_threads = 1;   /* a checkpoint of a build before "threads" existed */
    if (th) {
        /* the resolved count this run was trained with (a run resolves "auto" before its first checkpoint) */
        double v = cJSON_IsNumber(th) ? th->valuedouble : NAN;
        if (!(v >= 1 && v <= 256 && v == floor(v))) {
            char d[96];
            cn_json_describe(th, d, sizeof d);
            cJSON_Delete(then);
            return cn_error(CN_ERR_FORMAT, "%s: metadata 'config': threads is %s, not an integer in [1, 256]", file, d);
        }
        then_threads = (int)v;
    }
    cJSON_Delete(then);
    s->resumed_threads = then_threads;
    if (!count && s->cfg.threads && then_threads != s->cfg.threads && !s->allow_thread_change)
        return cn_error(CN_ERR_ARG, "%s: threads: the run was trained with %d thread%s, the config now says %d; "
                        "another thread count changes the rounding of the matrix products, so the resumed run would not "
                        "be bit-identical to an uninterrupted one. Keep \"threads\": %d, or pass --allow-thread-change",
                        file, then_threads, then_threads == 1 ? "" : "s", s->cfg.threads, then_threads);
    if (count)
        return cn_error(CN_ERR_ARG, "%s: the config differs from the one this run was trained with: %s. --resume "
                        "continues the same run; to start a new run from these weights, set \"init_from\"", file, diff);
    return CN_OK;
}

/* The checkpoint's "step": the writer's "%lld" of a count >= 0, so decimal digits only, without sign,
 * space or leading zero, and no more than a long long holds. */
static cn_status parse_step(const cn_st_file *f, const char *file, long long *out)
{
    const char *v = cn_st_meta(f, "step");
    if (!v) return cn_error(CN_ERR_FORMAT, "%s: metadata 'step' is missing", file);
    unsigned long long x = 0;
    int ok = *v && (v[0] != '0' || !v[1]);
    for (const char *p = v; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9' && x <= (unsigned long long)(LLONG_MAX - (*p - '0')) / 10;
        if (ok) x = x * 10 + (unsigned long long)(*p - '0');
    }
    if (!ok)
        return cn_error(CN_ERR_FORMAT, "%s: metadata 'step' is \"%.40s%s\", not a step count (decimal digits, at "
                        "most %lld)", file, v, strlen(v) > 40 ? "..." : "", LLONG_MAX);
    *out = (long long)x;
    return CN_OK;
}

/* Every state item this session writes, as views (shared by the writer and the reader's layout check).
 * counts and stats must outlive st. */
static cn_status session_state(cn_session *s, cn_state *st, long long counts[5], double stats[4])
{
    static const int64_t five = 5, four = 4, ring = CN_LOSS_RING;
    counts[0] = s->clipped_steps;
    counts[1] = s->skipped_steps;
    counts[2] = s->nonfinite_steps;
    counts[3] = s->diverged_at_step;
    counts[4] = s->loss_ring_n;
    stats[0] = s->max_norm_pre;   /* the others are reserved, written as 0: the tensors of two identical runs */
    stats[1] = stats[2] = stats[3] = 0.0;   /* are byte-identical (only deterministic values) */
    cn_status rc = CN_OK;
    for (int i = 0; i < s->ps.count && !rc; i++) {
        const cn_param_info *p = &s->ps.info[i];
        int64_t shape[4];
        for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
        rc = cn_state_add(st, p->name, CN_DT_F32, p->ndim, shape, s->ps.data + p->offset);
    }
    if (!rc) rc = cn_optim_save_state(s->optim, &s->ps, st);
    if (!rc) rc = cn_clip_save_state(s->clip, st);
    if (!rc) rc = cn_batcher_save_state(&s->batcher, st);
    if (!rc) rc = cn_state_add(st, "train.counters", CN_DT_I64, 1, &five, counts);
    if (!rc) rc = cn_state_add(st, "train.stats", CN_DT_F64, 1, &four, stats);
    if (!rc) rc = cn_state_add(st, "train.loss_ring", CN_DT_F64, 1, &ring, s->loss_ring);
    if (!rc && s->vocab_ids) {
        int64_t v = s->data.vocab_size;
        rc = cn_state_add(st, "data.vocab", CN_DT_I32, 1, &v, s->vocab_ids);
    }
    return rc;
}

/* The file holds exactly the items this session would write, each with the same dtype and shape: nothing
 * missing, nothing unknown under a reserved prefix. */
static cn_status check_layout(cn_session *s, const cn_state *t, const char *file)
{
    cn_state want;
    cn_state_init(&want);
    long long counts[5];
    double stats[4];
    cn_status st = session_state(s, &want, counts, stats);
    for (int i = 0; i < want.count && !st; i++) {
        const cn_state_item *w = &want.items[i], *it;
        if (cn_state_get(t, w->name, w->dtype, w->ndim, w->shape, &it)) st = cn_error_prefix(CN_ERR_FORMAT, "%s", file);
    }
    for (int i = 0; i < t->count && !st; i++)
        if (reserved_name(t->items[i].name) && !cn_state_find(&want, t->items[i].name))
            st = cn_error(CN_ERR_FORMAT, "%s: state '%s' is not part of this run's state (an unknown item under a "
                          "reserved prefix)", file, t->items[i].name);
    cn_state_free(&want);
    return st;
}

/* The run statistics of "train.*", checked against each other and the step. */
typedef struct {
    long long counts[5];       /* clipped, skipped, non-finite steps, diverged_at_step, losses logged */
    double stats[4];
    double ring[CN_LOSS_RING];
} train_state;

#define BAD(...) cn_error(CN_ERR_FORMAT, __VA_ARGS__)

static cn_status check_train_state(const cn_state *t, const char *file, long long step, train_state *ts)
{
    cn_status st;
    if ((st = cn_state_copy_vec(t, "train.counters", CN_DT_I64, 5, ts->counts)) ||
        (st = cn_state_copy_vec(t, "train.stats", CN_DT_F64, 4, ts->stats)) ||
        (st = cn_state_copy_vec(t, "train.loss_ring", CN_DT_F64, CN_LOSS_RING, ts->ring)))
        return cn_error_prefix(st, "%s", file);
    const long long *c = ts->counts;
    long long clipped = c[0], skipped = c[1], nonfinite = c[2], div = c[3], n = c[4];
    /* every step is at most one of each; a skipped step is a non-finite one and neither updates nor clips */
    if (nonfinite < 0 || nonfinite > step)
        return BAD("%s: state 'train.counters': non-finite step count %lld is outside [0, %lld] (metadata 'step')", file, nonfinite, step);
    if (skipped < 0 || skipped > nonfinite)
        return BAD("%s: state 'train.counters': skipped step count %lld is outside [0, %lld] (the non-finite steps)",
                   file, skipped, nonfinite);
    if (clipped < 0 || clipped > step - skipped)
        return BAD("%s: state 'train.counters': clipped step count %lld is outside [0, %lld] (metadata 'step' less "
                   "the skipped steps)",
                   file, clipped, step - skipped);
    /* the first non-finite step, 0 when there was none; the later non-finite steps follow it */
    if (nonfinite == 0 && div != 0)
        return BAD("%s: state 'train.counters': diverged_at_step %lld, but no step was non-finite (0 expected)", file, div);
    if (nonfinite > 0 && (div < 1 || div > step - nonfinite + 1))
        return BAD("%s: state 'train.counters': diverged_at_step %lld is outside [1, %lld] with %lld non-finite "
                   "step(s) at metadata 'step' %lld", file, div, step - nonfinite + 1, nonfinite, step);
    if (n < 0 || n > step)
        return BAD("%s: state 'train.counters': loss ring count %lld is outside [0, %lld] (metadata 'step')", file, n, step);
    for (long long i = 0; i < CN_LOSS_RING; i++) {
        double v = ts->ring[i];
        if (i < n ? !isfinite(v) : v != 0.0) {
            char vb[32];
            return BAD("%s: state 'train.loss_ring': entry %lld is %s, %s", file, i, cn_fmt_g(vb, sizeof vb, v, 6),
                       i < n ? "not a finite loss" : "beyond the count but not 0");
        }
    }
    double mx = ts->stats[0];
    char vb[32];
    if (!(mx >= 0) && !isnan(mx))   /* the largest norm seen (inf included); NaN while none was a number */
        return BAD("%s: state 'train.stats': max_grad_norm_pre %s is not a norm (>= 0, inf or nan)", file,
                   cn_fmt_g(vb, sizeof vb, mx, 6));
    for (int i = 1; i < 4; i++)
        if (ts->stats[i] != 0.0)
            return BAD("%s: state 'train.stats': entry %d is %s, but it is reserved and always 0", file, i,
                       cn_fmt_g(vb, sizeof vb, ts->stats[i], 6));
    return CN_OK;
}

/* Consistency of the modules' state with the run's counters, read from the file before any module loads
 * it (check_layout has checked every item's dtype and shape). */
static cn_status check_cross(const cn_session *s, const cn_state *t, const char *file, long long step, const train_state *ts)
{
    long long skipped = ts->counts[1], nonfinite = ts->counts[2];
    int64_t v = 0;
    /* the optimizer updates on every step but the skipped ones and those that stopped the run (each
     * non-finite) */
    cn_state_get_i64(t, "optim.step", &v);
    if (v < step - nonfinite || v > step - skipped)
        return BAD("%s: state 'optim.step': %lld is outside [%lld, %lld] (metadata 'step' %lld less the skipped "
                   "or stopping steps)", file, (long long)v, step - nonfinite, step - skipped, step);
    cn_state_get_i64(t, "clip.total_skips", &v);
    if (v != skipped)
        return BAD("%s: state 'clip.total_skips': %lld, but the run skipped %lld step(s)", file, (long long)v, skipped);
    /* the batcher has drawn step x batch_size x grad_accum examples, wrapping lazily: after D > 0 draws
     * it is in epoch 1 + (D - 1) / n at position D - (epoch - 1) n, in (0, n] */
    long long per_step = s->cfg.train.batch_size * s->cfg.train.grad_accum, n = s->data.train.n;
    int64_t pos = 0, epoch = 0;
    cn_state_get_i64(t, "data.pos", &pos);
    cn_state_get_i64(t, "data.epoch", &epoch);
    if (step > LLONG_MAX / per_step)
        return BAD("%s: metadata 'step': %lld steps of %lld examples are more than clipnn counts", file, step, per_step);
    long long d = step * per_step;
    long long want_epoch = d ? 1 + (d - 1) / n : 1, want_pos = d ? d - (want_epoch - 1) * n : 0;
    if (epoch != want_epoch || pos != want_pos)
        return BAD("%s: state 'data.epoch', 'data.pos': epoch %lld position %lld, but metadata 'step' %lld steps of "
                   "%lld example(s) from %lld end at epoch %lld position %lld", file, (long long)epoch, (long long)pos, step, per_step,
                   n, want_epoch, want_pos);
    return CN_OK;
}

cn_status cn_session_resume_file(cn_session *s, const cn_st_file *f, const char *file)
{
    const char *fmt = cn_st_meta(f, "format");
    if (!fmt || strcmp(fmt, CKPT_FORMAT))
        return BAD("%s: not a clipnn checkpoint (metadata 'format' is %s)", file, fmt ? fmt : "missing");
    const char *version = cn_st_meta(f, "format_version");
    if (!version || strcmp(version, CKPT_VERSION))
        return BAD("%s: metadata 'format_version' is %s; this clipnn reads checkpoint format version %s", file,
                   version ? version : "missing", CKPT_VERSION);
    const cn_state *t = cn_st_tensors(f);
    cn_status st;
    /* 1. check everything; nothing is changed yet */
    if ((st = check_params(s, f, file))) return st;
    if ((st = check_same_config(s, f, file))) return st;
    long long step = 0;
    if ((st = parse_step(f, file, &step))) return st;
    if (step > s->cfg.train.steps) {
        char hint[96] = "";
        if (step <= CN_MAX_STEPS - s->cfg.train.steps)
            snprintf(hint, sizeof hint, ", e.g. --set train.steps=%lld", step + s->cfg.train.steps);
        return cn_error(CN_ERR_ARG, "%s: the checkpoint is at step %lld, beyond train.steps %lld (raise it above %lld "
                        "to train further%s)", file, step, s->cfg.train.steps, step, hint);
    }
    cn_rng rng;
    if ((st = cn_rng_load(&rng, cn_st_meta(f, "rng")))) return cn_error_prefix(st, "%s: metadata 'rng'", file);
    const char *wall = cn_st_meta(f, "wall_s");
    char *end = NULL;
    double wall_s = wall ? strtod(wall, &end) : NAN;
    if (!wall || !*wall || *end || isspace((unsigned char)*wall) || !(wall_s >= 0) || isinf(wall_s))
        return BAD("%s: metadata 'wall_s' is %s%.40s%s, not a number of seconds >= 0", file, wall ? "\"" : "",
                   wall ? wall : "missing", wall ? "\"" : "");
    if ((st = check_layout(s, t, file))) return st;
    train_state ts;
    if ((st = check_train_state(t, file, step, &ts))) return st;
    if ((st = check_cross(s, t, file, step, &ts))) return st;
    /* 2. the modules check the values of their own state, then take it (each unchanged if it refuses) */
    if ((st = cn_optim_load_state(s->optim, &s->ps, t, step))) return cn_error_prefix(st, "%s", file);
    if ((st = cn_clip_load_state(s->clip, t))) return cn_error_prefix(st, "%s", file);
    if ((st = cn_batcher_load_state(&s->batcher, t))) return cn_error_prefix(st, "%s", file);
    /* 3. the session's own state */
    copy_params(s, f);
    s->drop_rng = rng;
    s->step = step;
    s->clipped_steps = ts.counts[0];
    s->skipped_steps = ts.counts[1];
    s->nonfinite_steps = ts.counts[2];
    s->diverged_at_step = ts.counts[3];
    s->loss_ring_n = ts.counts[4];
    memcpy(s->loss_ring, ts.ring, sizeof ts.ring);
    s->max_norm_pre = ts.stats[0];
    s->wall_s = wall_s;
    return CN_OK;
}

#undef BAD

cn_status cn_session_resume(cn_session *s, const char *checkpoint)
{
    cn_st_file *f = NULL;
    cn_status st = input_status(cn_st_read(checkpoint, &f));
    if (st) return st;
    st = cn_session_resume_file(s, f, checkpoint);
    cn_st_close(f);
    return st;
}

cn_status cn_session_save(cn_session *s, const char *path)
{
    cn_state st;
    cn_state_init(&st);
    cJSON *meta = NULL;
    char *cfg = NULL;
    long long counts[5];
    double stats[4];
    cn_status rc = session_state(s, &st, counts, stats);
    if (rc) goto done;
    meta = cJSON_CreateObject();
    cfg = cJSON_PrintUnformatted(s->cfg.root);
    char step[32], rng[CN_RNG_STATE_LEN], wall[64], threads[16];
    snprintf(step, sizeof step, "%lld", s->step);
    snprintf(threads, sizeof threads, "%d", cn_blas_threads());
    snprintf(wall, sizeof wall, "%.17g", s->wall_s);
    cn_rng_save(&s->drop_rng, rng);
    if (!meta || !cfg || !cJSON_AddStringToObject(meta, "format", CKPT_FORMAT) ||
        !cJSON_AddStringToObject(meta, "format_version", CKPT_VERSION) ||
        !cJSON_AddStringToObject(meta, "step", step) || !cJSON_AddStringToObject(meta, "rng", rng) ||
        !cJSON_AddStringToObject(meta, "config", cfg) || !cJSON_AddStringToObject(meta, "wall_s", wall) || !cJSON_AddStringToObject(meta, "clipnn_version", CN_VERSION) ||
        !cJSON_AddStringToObject(meta, "blas_threads", threads) || !cJSON_AddStringToObject(meta, "blas_core", cn_blas_core()) ||
        !cJSON_AddStringToObject(meta, "blas_config", cn_blas_config())) {
        rc = cn_error(CN_ERR_NOMEM, "out of memory writing a checkpoint");
        goto done;
    }
    rc = cn_st_write(path, &st, meta);
done:
    cJSON_Delete(meta);
    free(cfg);
    cn_state_free(&st);
    return rc;
}

/* ---- one optimizer step ---- */

/* Moves this rank's slice of the global batch to the front of the batch buffers, in place: time-major
 * [T, B, W] -> [T, b, W] (each destination is at or before its source, so memmove in order is safe). */
static void compact(void *buf, size_t esz, size_t T, size_t B, size_t W, size_t lo, size_t b)
{
    char *p = buf;
    for (size_t t = 0; t < T; t++) memmove(p + t * b * W * esz, p + (t * B + lo) * W * esz, b * W * esz);
}

static void take_slice(cn_session *s)
{
    const cn_dataset *d = &s->data.train;
    size_t B = (size_t)s->cfg.train.batch_size, lo = (size_t)s->slice_lo, b = (size_t)s->slice_n;
    size_t Tx = d->seq_len > 0 ? (size_t)d->seq_len : 1, Ty = d->target_seq && d->seq_len > 0 ? (size_t)d->seq_len : 1;
    compact(s->bx, sizeof(float), Tx, B, cn_batch_x_size(d, 1) / Tx, lo, b);
    if (s->by) compact(s->by, sizeof(float), Ty, B, cn_batch_y_size(d, 1) / Ty, lo, b);
    if (s->bl) compact(s->bl, sizeof(int32_t), Ty, B, cn_batch_y_size(d, 1) / Ty, lo, b);
}

cn_status cn_session_distribute(cn_session *s, int rank, int size)
{
    long long B = s->cfg.train.batch_size;
    if (size <= 1) return CN_OK;
    if (B < size)
        return cn_error(CN_ERR_ARG, "%s: train.batch_size: %lld is fewer examples than the %d ranks: each rank "
                        "needs at least one example of every batch (train.batch_size is the global batch)",
                        s->cfg.file, B, size);
    s->dist_rank = rank;
    s->dist_size = size;
    /* contiguous slices in rank order, sizes floor/ceil of B/size */
    s->slice_lo = (int)(B * rank / size);
    s->slice_n = (int)(B * (rank + 1) / size) - s->slice_lo;
    if (s->ps.total > (size_t)INT_MAX)
        return cn_error(CN_ERR_ARG, "%s: %zu parameters: data-parallel training takes at most %d", s->cfg.file,
                        s->ps.total, INT_MAX);
    size_t n = s->ps.total, R = (size_t)size;
    s->shard_n = cn_malloc(sizeof(int) * R);
    s->shard_at = cn_malloc(sizeof(int) * R);
    s->recv_n = cn_malloc(sizeof(int) * R);
    s->recv_at = cn_malloc(sizeof(int) * R);
    s->dist_loss = cn_malloc(sizeof(double) * R);
    s->dist_weight = cn_malloc(sizeof(double) * R);
    if (!s->shard_n || !s->shard_at || !s->recv_n || !s->recv_at || !s->dist_loss || !s->dist_weight)
        return cn_error(CN_ERR_NOMEM, "out of memory");
    for (size_t r = 0; r < R; r++) {   /* contiguous shards, sizes floor/ceil of n/R */
        s->shard_at[r] = (int)(n * r / R);
        s->shard_n[r] = (int)(n * (r + 1) / R) - s->shard_at[r];
    }
    int mine = s->shard_n[rank];
    for (size_t r = 0; r < R; r++) {
        s->recv_n[r] = mine;
        s->recv_at[r] = (int)r * mine;
    }
    s->dist_grads = cn_malloc(sizeof(float) * ((size_t)mine * R + 1));
    if (!s->dist_grads) return cn_error(CN_ERR_NOMEM, "out of memory for the gradient exchange");
    for (int r = 0; r < size; r++) s->dist_weight[r] = (double)(B * (r + 1) / size - B * r / size) / (double)B;
    return CN_OK;
}

int cn_session_auto_threads(const cn_session *s)
{
    if (cn_usable_cores() < 2) return 1;
    long long rows = s->dist_size > 1 ? s->slice_n : s->cfg.train.batch_size;
    for (int i = 0; i < cn_model_layers(s->model); i++) {
        const char *type = cn_model_layer_type(s->model, i), *prefix = cn_model_layer_prefix(s->model, i);
        int rec = !strcmp(type, "rnn") || !strcmp(type, "lstm") || !strcmp(type, "gru");
        if (!rec && strcmp(type, "linear")) continue;
        char name[CN_NAME_MAX + 16];
        snprintf(name, sizeof name, "%s.%s", prefix, rec ? "weight_hh_l0" : "weight");
        int k = cn_paramset_find(&s->ps, name);
        if (k < 0 || s->ps.info[k].ndim != 2) continue;
        const int *sh = s->ps.info[k].shape;
        if (rec && sh[1] >= 128 && rows >= 16) return 2;
        if (!rec && (double)rows * sh[0] * sh[1] >= 128.0 * 512 * 512) return 2;
    }
    return 1;
}

cn_status cn_auto_threads_env(int *n)
{
    const char *env = getenv("CLIPNN_AUTO_THREADS");
    *n = 0;
    if (!env || !*env) return CN_OK;
    char *end = NULL;
    long v = strtol(env, &end, 10);
    if (*end || v < 1 || v > 256 || !isdigit((unsigned char)*env))
        return cn_error(CN_ERR_ARG, "CLIPNN_AUTO_THREADS: expected an integer in [1, 256], got \"%.40s\"", env);
    *n = (int)v;
    return CN_OK;
}

cn_status cn_session_resolve_threads(cn_session *s)
{
    if (s->cfg.threads) return CN_OK;
    int n = 0;
    cn_status st = cn_auto_threads_env(&n);   /* checked first: a bad value is refused even where unused */
    if (st) return st;
    if (s->dist_size > 1) n = 1;                          /* ranks share nodes */
    else if (s->resumed_threads > 0) n = s->resumed_threads;
    else if (!n) n = cn_session_auto_threads(s);
    s->cfg.threads = n;
    return cn_json_set(s->cfg.root, "threads", cJSON_CreateNumber(n));
}

/* The global mean gradient and loss from every rank's slice: each slice's mean weighted by its share
 * b_r / B, summed in rank order in double, rounded once to float. As a reduce-scatter then an
 * all-gather (the traffic of a ring all-reduce: 2 (N-1)/N of the gradient in and out per rank): every
 * rank receives every rank's piece of its own shard of the flat gradient (MPI_Alltoallv), sums that
 * shard, and the summed shards are gathered back (MPI_Allgatherv). The order of the sum is fixed by
 * rank, never by MPI, so the ranks agree bit for bit and the same rank count reproduces bit-identically
 * (MPI_SUM's order is the library's choice). A non-finite value on any rank makes the sum non-finite
 * on every rank, so every rank's clip stage sees it. */
static cn_status reduce_grads(cn_session *s, double *loss)
{
    int R = s->dist_size, me = s->dist_rank, m = s->shard_n[me];
    cn_status st = cn_dist_alltoallv_f32(s->ps.grad, s->shard_n, s->shard_at, s->dist_grads, s->recv_n, s->recv_at);
    if (!st) st = cn_dist_allgather_f64(loss, s->dist_loss, 1);
    if (st) return st;
    const double *w = s->dist_weight;
    double l = 0.0;
    for (int r = 0; r < R; r++) l += w[r] * s->dist_loss[r];
    *loss = l;
    float *g = s->ps.grad + s->shard_at[me];
    for (int i = 0; i < m; i++) {
        double acc = 0.0;
        for (int r = 0; r < R; r++) acc += w[r] * (double)s->dist_grads[(size_t)r * (size_t)m + (size_t)i];
        g[i] = (float)acc;
    }
    return cn_dist_allgatherv_f32(s->ps.grad, s->shard_n, s->shard_at);
}

cn_status cn_session_forward(cn_session *s, cn_graph *g, float *x, int T, int rows, int features, int training,
                             cn_var **pred)
{
    *pred = NULL;
    cn_status st = cn_graph_reset(g);
    if (st) return st;
    g->no_grad = !training;
    g->training = training;
    if (training) g->rng = &s->drop_rng;
    int xs[3], nd = 0;
    if (T) xs[nd++] = T;
    xs[nd++] = rows;
    xs[nd++] = features;
    cn_tensor xt;
    cn_tensor_view(&xt, x, nd, xs);
    *pred = cn_model_forward(s->model, g, &s->ps, cn_input(g, &xt), training ? (int)s->cfg.train.bptt : 0);
    if (!*pred) return g->err ? g->err : cn_error(CN_ERR_STATE, "forward pass failed");
    return CN_OK;
}

/* The loss of pred against the targets y (a tensor of pred's shape; NULL for class labels) or labels. */
static cn_var *batch_loss(cn_session *s, cn_graph *g, cn_var *pred, float *y, const int32_t *labels)
{
    cn_var *tgt = NULL;
    if (y) {
        cn_tensor yt;
        cn_tensor_view(&yt, y, pred->v.ndim, pred->v.shape);
        tgt = cn_input(g, &yt);
    }
    return cn_loss(g, s->loss, pred, tgt, labels);
}

static cn_status forward_backward(cn_session *s, double *loss, int *epoch)
{
    const cn_dataset *d = &s->data.train;
    cn_status st = cn_batcher_next(&s->batcher, s->bx, s->by, s->bl, epoch);
    if (st) return st;
    if (s->dist_size > 1) take_slice(s);
    cn_graph *g = &s->g;
    int rows = (int)s->cfg.train.batch_size;
    if (s->dist_size > 1) {   /* this rank's slice; dropout draws the whole batch's masks (autograd.h) */
        rows = s->slice_n;
        g->batch_lo = s->slice_lo;
        g->batch_n = s->slice_n;
        g->batch_total = (int)s->cfg.train.batch_size;
    }
    cn_var *pred;
    if ((st = cn_session_forward(s, g, s->bx, d->seq_len, rows, d->features, 1, &pred)))
        return st;
    cn_var *l = batch_loss(s, g, pred, s->by, s->bl);
    if (!l) return g->err ? g->err : cn_error(CN_ERR_STATE, "forward pass failed");
    *loss = cn_loss_value(l);   /* beyond float32 range: inf, a non-finite loss */
    return cn_backward(g, l);
}

/* The run statistics after step s->step (saved in checkpoints; summary.json reports them). The loss ring
 * takes the losses of the logged steps (every log_every, and a stopping one) that are finite: final_loss
 * is their mean. */
static void update_run_stats(cn_session *s, double loss, cn_clip_action action)
{
    const cn_clip_report *rep = cn_clip_last_report(s->clip);
    if (!isfinite(loss) || rep->n_nonfinite > 0) {
        s->nonfinite_steps++;
        if (!s->diverged_at_step) s->diverged_at_step = s->step;
    }
    s->clipped_steps += rep->clipped;
    s->skipped_steps += rep->skipped;
    double gn = rep->norm_pre_l2;
    if (!isnan(gn) && (isnan(s->max_norm_pre) || gn > s->max_norm_pre)) s->max_norm_pre = gn;
    if ((s->step % s->cfg.train.log_every == 0 || action == CN_CLIP_STOP) && isfinite(loss)) {
        s->loss_ring[s->loss_ring_n % CN_LOSS_RING] = loss;
        s->loss_ring_n++;
    }
}

cn_status cn_session_step(cn_session *s, double *loss_out, int *epoch, double *lr, cn_clip_action *action)
{
    long long accum = s->cfg.train.grad_accum;
    double loss_sum = 0.0;
    cn_status st;
    cn_paramset_zero_grad(&s->ps);
    for (long long a = 0; a < accum; a++) {
        double l = 0.0;
        int ep = 0;
        if ((st = forward_backward(s, &l, &ep))) return st;
        if (a == 0) *epoch = ep;
        loss_sum += l;
    }
    if (accum > 1) {
        /* clip the MEAN gradient, once per optimizer step (docs/clipping.md) */
        float k = (float)accum;
        for (size_t i = 0; i < s->ps.total; i++) s->ps.grad[i] /= k;
    }
    double loss = loss_sum / (double)accum;
    if (s->dist_size > 1 && (st = reduce_grads(s, &loss))) return st;
    *loss_out = loss;
    s->step++;
    if ((st = cn_clip_run(s->clip, &s->ps, !isfinite(loss), action))) return st;
    *lr = cn_schedule_lr(&s->sched, cn_optim_lr(s->optim), s->step);
    if (*action == CN_CLIP_UPDATE && (st = cn_optim_step(s->optim, &s->ps, *lr))) return st;
    update_run_stats(s, loss, *action);
    return CN_OK;
}

/* Accuracy counts (classification) or absolute error sums (regression) of one batch. */
static double batch_metric(const cn_session *s, const cn_var *pred, const float *y, const int32_t *lab, size_t rows)
{
    int C = cn_cols(&pred->v);
    const float *p = pred->v.data;
    double acc = 0.0;
    if (s->loss == CN_LOSS_CROSS_ENTROPY) {
        for (size_t r = 0; r < rows; r++) {
            int best = 0;
            for (int c = 1; c < C; c++) if (p[r * (size_t)C + c] > p[r * (size_t)C + best]) best = c;
            acc += best == lab[r];
        }
    } else {
        size_t n = rows * (size_t)C;
        for (size_t i = 0; i < n; i++) {
            if (s->loss == CN_LOSS_BCE_LOGITS) acc += (p[i] > 0.0f) == (y[i] > 0.5f);
            else acc += fabs((double)p[i] - (double)y[i]);
        }
        acc /= (double)C;
    }
    return acc;
}

cn_status cn_session_evaluate(cn_session *s, const cn_dataset *ds, double *loss, double *metric)
{
    double lsum = 0.0, msum = 0.0;
    long long rows_total = 0;
    cn_graph *g = &s->ge;
    for (int start = 0; start < ds->n; start += s->eval_batch) {
        int count = ds->n - start < s->eval_batch ? ds->n - start : s->eval_batch;
        cn_status st = cn_batch_range(ds, start, count, s->ex, s->ey, s->el);
        if (st) return st;
        cn_var *pred;
        if ((st = cn_session_forward(s, g, s->ex, ds->seq_len, count, ds->features, 0, &pred))) return st;
        cn_var *l = batch_loss(s, g, pred, s->ey, s->el);
        if (!l) return g->err ? g->err : cn_error(CN_ERR_STATE, "evaluation failed");
        size_t rows = cn_rows(&pred->v);
        lsum += cn_loss_value(l) * (double)rows;
        msum += batch_metric(s, pred, s->ey, s->el, rows);
        rows_total += (long long)rows;
    }
    *loss = lsum / (double)rows_total;
    *metric = msum / (double)rows_total;
    return CN_OK;
}
