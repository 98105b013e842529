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
 *     counters within [0, step], the loss-ring count within [0, step]);
 *   - it round-trips: saving the resumed session writes exactly the tensors it was given;
 *   - two training steps and an evaluation from it run without error other than a non-finite value. */
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

static void cleanup(void)
{
    for (int i = 0; i < FUZZ_RESUME_N; i++) unlink(cfg_path[i]);
    char p[160];
    snprintf(p, sizeof p, "%s/fuzz_text.txt", dir);
    unlink(p);
    unlink(save_path);
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
            s.diverged_at_step < 0 || s.diverged_at_step > s.step || !(s.max_norm_pre >= 0))
            __builtin_trap();
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
