/* libFuzzer target for checkpoint loading: the path of `train --resume` (cn_session_resume_file) and of
 * `eval`/`sample`/init_from (cn_session_load_params), against real sessions. Built and run by fuzz/run.sh;
 * seeds: fuzz/corpus/resume/ (fuzz/make_resume_seeds.sh).
 *
 * Input: one byte choosing a config of resume_configs.h (mod FUZZ_RESUME_N), then a safetensors file.
 * Per input: open a session of that config (train.steps raised to 12, which resume ignores), load the
 * model tensors as eval does and evaluate, then resume from the same file. Checks besides memory safety,
 * UB and leaks:
 *   - every error has a message naming the file;
 *   - an accepted checkpoint gives the invariants the trainer relies on (step within train.steps,
 *     counters within [0, step], the loss-ring count within [0, step], the largest norm not negative);
 *   - it round-trips: saving the resumed session writes exactly the tensors it was given;
 *   - two training steps and an evaluation from it run without error other than a non-finite value.
 * Half of the mutations are structured (LLVMFuzzerCustomMutator): one item of a checkpoint that parses
 * gets a special value (NaN, inf, -1, 0, INT64_MAX, ...), another dtype or shape, is removed, or an extra
 * item or a changed metadata value is added; the file is written again with the checkpoint writer. Byte
 * mutations alone rarely keep the header's layout valid. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/session.h"
#include "resume_configs.h"

#define NAME "fuzz.safetensors"

static char dir[64];
static char cfg_path[FUZZ_RESUME_N][128];
static char save_path[128];
static char mut_path[128];

static void cleanup(void)
{
    for (int i = 0; i < FUZZ_RESUME_N; i++) unlink(cfg_path[i]);
    char p[160];
    snprintf(p, sizeof p, "%s/fuzz_text.txt", dir);
    unlink(p);
    unlink(save_path);
    unlink(mut_path);
    rmdir(dir);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) __builtin_trap();
}

static void setup(void)
{
    /* tmpfs when there is one: the round trip writes (and fsyncs) a checkpoint per accepted input */
    snprintf(dir, sizeof dir, "%s/clipnn-fuzz-resume-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) __builtin_trap();
    char p[160];
    snprintf(p, sizeof p, "%s/fuzz_text.txt", dir);
    put(p, FUZZ_RESUME_TEXT);
    for (int i = 0; i < FUZZ_RESUME_N; i++) {
        snprintf(cfg_path[i], sizeof cfg_path[i], "%s/%d.json", dir, i);
        put(cfg_path[i], fuzz_resume_configs[i].json);
    }
    snprintf(save_path, sizeof save_path, "%s/saved.safetensors", dir);
    snprintf(mut_path, sizeof mut_path, "%s/mutated.safetensors", dir);
    atexit(cleanup);
}

static void check_msg(cn_status st)
{
    if (st != CN_OK && !strstr(cn_errmsg(), NAME)) __builtin_trap();
}

/* The saved file holds exactly the input's tensors, byte for byte (same set: the layout check). */
static void check_round_trip(const cn_st_file *in)
{
    cn_st_file *out = NULL;
    if (cn_st_read(save_path, &out)) __builtin_trap();
    const cn_state *a = cn_st_tensors(in), *b = cn_st_tensors(out);
    if (a->count != b->count) __builtin_trap();
    for (int i = 0; i < b->count; i++) {
        const cn_state_item *y = &b->items[i], *x = cn_state_find(a, y->name);
        if (!x || x->dtype != y->dtype || x->ndim != y->ndim) __builtin_trap();
        for (int d = 0; d < x->ndim; d++)
            if (x->shape[d] != y->shape[d]) __builtin_trap();
        if (memcmp(x->data, y->data, cn_state_item_numel(x) * cn_dtype_size(x->dtype))) __builtin_trap();
    }
    cn_st_close(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) setup();
    if (size < 1) return 0;
    int which = data[0] % FUZZ_RESUME_N;
    cn_st_file *f = NULL;
    cn_status st = cn_st_read_buffer(NAME, data + 1, size - 1, &f);
    check_msg(st);
    if (st) return 0;
    cn_session s;
    char set[] = "train.steps=12";
    char *sets[] = {set};
    if (cn_session_open(&s, cfg_path[which], sets, 1)) __builtin_trap();   /* the configs are valid */
    double loss, metric;
    /* eval / sample / init_from */
    st = cn_session_load_params(&s, f, NAME);
    check_msg(st);
    if (!st && cn_session_evaluate(&s, s.data.test.n ? &s.data.test : &s.data.train, &loss, &metric)) __builtin_trap();
    /* --resume */
    st = cn_session_resume_file(&s, f, NAME);
    check_msg(st);
    if (!st) {
        if (s.step < 0 || s.step > s.cfg.train.steps) __builtin_trap();
        if (s.loss_ring_n < 0 || s.loss_ring_n > s.step || s.clipped_steps < 0 || s.clipped_steps > s.step ||
            s.skipped_steps < 0 || s.skipped_steps > s.nonfinite_steps || s.nonfinite_steps > s.step ||
            s.diverged_at_step < 0 || s.diverged_at_step > s.step || s.max_norm_pre < 0)
            __builtin_trap();
        if (cn_session_resolve_threads(&s)) __builtin_trap();   /* as cn_train: the saved config has a count */
        if (cn_session_save(&s, save_path)) __builtin_trap();
        check_round_trip(f);
        for (int k = 0; k < 2; k++) {
            int epoch;
            double lr;
            cn_clip_action act;
            st = cn_session_step(&s, &loss, &epoch, &lr, &act);
            if (st && st != CN_ERR_NONFINITE) __builtin_trap();
            if (st) break;
        }
        if (cn_session_evaluate(&s, s.data.test.n ? &s.data.test : &s.data.train, &loss, &metric)) __builtin_trap();
    }
    cn_session_close(&s);
    cn_st_close(f);
    return 0;
}

/* ---- structured mutations ---- */

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static void set_value(cn_state_item *it, size_t e, unsigned r)
{
    static const double fs[] = {NAN, INFINITY, -INFINITY, -1.0, 0.0, 1.0, 1e30, -1e30, 5e-324, 3.4e38};   /* each fits a float */
    static const int64_t is[] = {-1, 0, 1, 2, 3, 10, 1000, INT32_MAX, INT64_MAX, INT64_MIN};
    size_t k = r % 10;
    switch (it->dtype) {
    case CN_DT_F32: ((float *)it->data)[e] = (float)fs[k]; break;
    case CN_DT_F64: ((double *)it->data)[e] = fs[k]; break;
    case CN_DT_I32: ((int32_t *)it->data)[e] = (int32_t)is[k]; break;
    case CN_DT_I64:
        /* near the current value too: counters and positions are checked against each other */
        ((int64_t *)it->data)[e] = r & 16 ? (int64_t)((uint64_t)((int64_t *)it->data)[e] + (uint64_t)(r % 5) - 2u) : is[k];
        break;
    }
}

/* One structured change of the checkpoint in data[1..size) into mut_path; 0 if it does not parse. */
static int mutate_structured(const uint8_t *data, size_t size, unsigned seed)
{
    cn_st_file *f = NULL;
    if (cn_st_read_buffer("seed", data + 1, size - 1, &f)) return 0;
    const cn_state *t = cn_st_tensors(f);
    cn_state st;
    cn_state_init(&st);
    unsigned r = seed;
    int op = (int)(rand_r(&r) % 6), pick = t->count ? (int)(rand_r(&r) % (unsigned)t->count) : -1;
    void *own = NULL;
    static int64_t extra = 7;
    int ok = 1;
    for (int i = 0; i < t->count && ok; i++) {
        const cn_state_item *it = &t->items[i];
        if (i != pick || op == 4 || op == 5) {
            ok = !cn_state_add(&st, it->name, it->dtype, it->ndim, it->shape, it->data);
            continue;
        }
        if (op == 3) continue;                                  /* removed */
        size_t numel = cn_state_item_numel(it);
        cn_dtype dt = it->dtype;
        int ndim = it->ndim;
        int64_t shape[4];
        memcpy(shape, it->shape, sizeof shape);
        if (op == 1) dt = (cn_dtype)((dt + 1 + rand_r(&r) % 3) % 4);
        if (op == 2) {
            unsigned how = rand_r(&r) % 3;
            if (how == 0 && ndim < 4) shape[ndim++] = 1;
            else if (how == 1 && ndim > 0) ndim--;
            else if (ndim > 0) shape[rand_r(&r) % (unsigned)ndim] += rand_r(&r) % 2 ? 1 : -1;
            for (int d = 0; d < ndim; d++)
                if (shape[d] < 0 || shape[d] > 4096) ok = 0;
        }
        size_t n2 = 1;
        for (int d = 0; d < ndim; d++) n2 *= (size_t)shape[d];
        size_t bytes = n2 * cn_dtype_size(dt), have = numel * cn_dtype_size(it->dtype);
        own = calloc(bytes + 8, 1);
        if (!own) ok = 0;
        if (!ok) break;
        memcpy(own, it->data, bytes < have ? bytes : have);
        cn_state_item tmp = *it;
        tmp.data = own;
        if (op == 0 && numel) set_value(&tmp, rand_r(&r) % numel, rand_r(&r));
        ok = !cn_state_add(&st, it->name, dt, ndim, shape, own);
    }
    if (ok && op == 4) {
        static const char *const names[] = {"optim.extra", "clip.extra", "data.extra", "train.extra", "clip.0.extra", "w"};
        ok = !cn_state_add(&st, names[rand_r(&r) % 6], CN_DT_I64, 0, NULL, &extra);
    }
    cJSON *meta = cJSON_Duplicate(cn_st_metadata(f), 1);
    if (ok && op == 5 && meta) {
        static const char *const keys[] = {"step", "rng", "wall_s", "format_version", "config", "format"};
        static const char *const vals[] = {"0", "1", "5", "6", "7", "12", "13", "+5", " 5", "05", "-1", "",
                                           "99999999999999999999999", "9223372036854775807", "nan", "inf", "1e3"};
        const char *key = keys[rand_r(&r) % 6];
        cJSON_DeleteItemFromObjectCaseSensitive(meta, key);
        unsigned v = rand_r(&r) % 18;
        if (v < 17) cJSON_AddStringToObject(meta, key, vals[v]);
    }
    ok = ok && meta && !cn_st_write(mut_path, &st, meta);
    cJSON_Delete(meta);
    cn_state_free(&st);
    free(own);
    cn_st_close(f);
    return ok;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    if (!dir[0]) setup();
    if (seed % 2 || size < 2 || !mutate_structured(data, size, seed)) return LLVMFuzzerMutate(data, size, max_size);
    FILE *f = fopen(mut_path, "rb");
    if (!f) return LLVMFuzzerMutate(data, size, max_size);
    size_t n = fread(data + 1, 1, max_size - 1, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    if (more) return LLVMFuzzerMutate(data, size, max_size);   /* the input was partly overwritten: still an input */
    return n + 1;
}
