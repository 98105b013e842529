/* libFuzzer target for the config path: JSON text + --set overrides -> cn_config_from_json,
 * then the section parsers a session runs before training (loss, data for the built-in
 * tasks, model, optimizer, schedule, clip). Built and run by fuzz/run.sh.
 *
 * Input: the config's JSON text, then up to 4 --set strings, separated by NUL bytes:
 *   {"data": ...}\0clip.max_norm=0.5\0model.0.hidden=3
 *
 * The harness keeps the work bounded, not the validation: after the top-level parse it
 * lowers built-in data sizes above 64 (train_size, test_size, seq_len, classes) to 64
 * when they are plausible integers (absurd values such as -1, 2.5, 1e30 or "x" stay, so
 * their range checks are still exercised), skips file kinds (npy/csv/text have their
 * own targets; a fuzzed path could name /dev/zero), and skips the parameter allocation
 * when the model would hold more than 2^20 floats.
 *
 * Checks besides memory safety and leaks: every error sets a message; a config that
 * parsed has a resolved tree that parses again (the run's config.json must reproduce it). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "data/data.h"
#include "json/json.h"
#include "layers/layers.h"
#include "optim/optim.h"
#include "clip/clip.h"

#define MAX_SETS 4

static void check_msg(cn_status st)
{
    if (st != CN_OK && !cn_errmsg()[0]) __builtin_trap();   /* an error without a message */
}

static void clamp_sizes(cJSON *data)
{
    static const char *const keys[] = {"train_size", "test_size", "seq_len", "classes", NULL};
    if (!cJSON_IsObject(data)) return;
    for (const char *const *k = keys; *k; k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(data, *k);
        if (cJSON_IsNumber(v) && v->valuedouble > 64 && v->valuedouble <= 1e12 && v->valuedouble == floor(v->valuedouble))
            cJSON_SetNumberValue(v, 64);
    }
}

static void sections(cn_config *c)
{
    cJSON *r = c->root;
    cn_loss_kind loss;
    cn_status st = cn_loss_parse(c->loss, &loss);
    check_msg(st);
    if (st) return;
    cJSON *dj = cJSON_GetObjectItemCaseSensitive(r, "data");
    cJSON *kind = cJSON_GetObjectItemCaseSensitive(dj, "kind");
    if (cJSON_IsString(kind) && (!strcmp(kind->valuestring, "npy") || !strcmp(kind->valuestring, "csv") ||
                                 !strcmp(kind->valuestring, "text")))
        return;
    clamp_sizes(dj);
    cn_data d;
    st = cn_data_load(dj, "data", (uint64_t)c->seed, c->base_dir, &d);
    check_msg(st);
    if (st) return;
    cn_paramset ps;
    cn_paramset_init(&ps);
    cn_model *m = NULL;
    cn_optim *o = NULL;
    cn_clip *cl = NULL;
    cn_schedule sc;
    cn_model_input in = {d.train.seq_len > 0, d.train.features, d.train.ids, d.vocab_size};
    st = cn_model_build(cJSON_GetObjectItemCaseSensitive(r, "model"), "model", &in, &ps, &m);
    check_msg(st);
    if (st || ps.total > ((size_t)1 << 20)) goto out;
    (void)cn_model_output_shape(m);
    if ((st = cn_paramset_finalize(&ps))) goto out;
    cn_rng rng;
    cn_rng_seed(&rng, 1);
    st = cn_model_init(m, &ps, &rng);
    check_msg(st);
    if (st) goto out;
    st = cn_optim_from_json(cJSON_GetObjectItemCaseSensitive(r, "optimizer"), "optimizer", &ps, &o);
    check_msg(st);
    if (st) goto out;
    st = cn_schedule_from_json(cJSON_GetObjectItemCaseSensitive(r, "schedule"), "schedule", &sc);
    check_msg(st);
    if (st) goto out;
    st = cn_clip_from_json(cJSON_GetObjectItemCaseSensitive(r, "clip"), "clip", &ps, &cl);
    check_msg(st);
out:
    cn_clip_free(cl);
    cn_optim_free(o);
    cn_model_free(m);
    cn_paramset_free(&ps);
    cn_data_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *sets[MAX_SETS];
    int n_sets = 0;
    for (char *p = buf; n_sets < MAX_SETS;) {
        char *z = memchr(p, 0, (size_t)(buf + size - p));
        if (!z || z == buf + size) break;
        sets[n_sets++] = z + 1;
        p = z + 1;
    }
    cJSON *root = NULL;
    cn_status st = cn_json_parse(buf, "fuzz.json", &root);
    check_msg(st);
    if (st == CN_OK) {
        cn_config c;
        st = cn_config_from_json(root, "fuzz/fuzz.json", sets, n_sets, &c);
        check_msg(st);
        if (st == CN_OK) {
            /* the resolved top level must validate again on its own */
            char *text = cJSON_PrintUnformatted(c.root);
            if (text) {
                cJSON *again = NULL;
                if (cn_json_parse(text, "resolved", &again)) __builtin_trap();
                cn_config c2;
                if (cn_config_from_json(again, "fuzz/resolved.json", NULL, 0, &c2)) __builtin_trap();
                cn_config_free(&c2);
                free(text);
            }
            sections(&c);
        }
        cn_config_free(&c);
    }
    free(buf);
    return 0;
}
