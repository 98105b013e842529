#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"
#include "layers/layers.h"
#include "clip/clip.h"
#include "optim/optim.h"

const char *const cn_config_top_keys[] = {
    "name", "seed", "threads", "data", "model", "loss", "optimizer", "schedule",
    "clip", "train", "log", "init_from", "compare", NULL};

/* Keys kept when a discriminator ("mode" of a clip stage, "type" of the optimizer or the
 * schedule) changes: they mean the same whatever the mode/type. Each module lists its own. */

static int in_list(const char *const *list, const char *k)
{
    for (; list && *list; list++) if (!strcmp(*list, k)) return 1;
    return 0;
}

static cJSON *parse_value(const char *text)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(text, &end, 1);
    if (v) return v;
    /* A bare word (clip.mode=value) is a string. */
    return cJSON_CreateString(text);
}

/* Where a value lives: parent[key] or parent[index]. */
typedef struct {
    cJSON *parent;
    const char *key;
    int index;
} slot;

static cn_status put(slot s, cJSON *v)
{
    if (!v) return cn_error(CN_ERR_NOMEM, "out of memory");
    int ok = s.key ? cJSON_ReplaceItemInObjectCaseSensitive(s.parent, s.key, v) : cJSON_ReplaceItemInArray(s.parent, s.index, v);
    if (!ok) {
        cJSON_Delete(v);
        return cn_error(CN_ERR_NOMEM, "out of memory");
    }
    return CN_OK;
}

/* A copy of obj keeping only the keys in `keep` (NULL: none), with key = value. */
static cJSON *fresh_object(const cJSON *obj, const char *const *keep, const char *key, cJSON *value)
{
    cJSON *fresh = cJSON_CreateObject();
    if (!fresh || !value) { cJSON_Delete(fresh); cJSON_Delete(value); return NULL; }
    if (cJSON_IsObject(obj))
        for (const cJSON *it = obj->child; it; it = it->next)
            if (strcmp(it->string, key) && in_list(keep, it->string))
                cJSON_AddItemToObject(fresh, it->string, cJSON_Duplicate(it, 1));
    cJSON_AddItemToObject(fresh, key, value);
    return fresh;
}

/* The keys a layer of `type` accepts, from the layers module, so that
 * --set model.0.type=gru drops an RNN's "nonlinearity" but keeps its size. */
static cJSON *fresh_layer(const cJSON *obj, cJSON *value)
{
    const char *const *keys = cJSON_IsString(value) ? cn_layer_type_keys(value->valuestring) : NULL;
    if (!keys) {
        /* unknown type: keep everything, the model parser names the problem */
        cJSON *copy = cJSON_Duplicate(obj, 1);
        if (copy) cn_json_set(copy, "type", value);
        return copy;
    }
    return fresh_object(obj, keys, "type", value);
}

static cn_status parse_index(const char *assignment, const char *done, const char *part, int n, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(part, &end, 10);
    if (!*part || *end || !isdigit((unsigned char)part[0]))
        return cn_error(CN_ERR_ARG, "--set %s: %s is a list; index it with a number, not \"%s\"", assignment,
                        *done ? done : "(top level)", part);
    if (errno || v >= n)
        return cn_error(CN_ERR_ARG, "--set %s: %s has %d item%s, no index %s", assignment, done, n, n == 1 ? "" : "s", part);
    *out = (int)v;
    return CN_OK;
}

cn_status cn_config_set(cJSON *root, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return cn_error(CN_ERR_ARG, "--set %s: expected PATH=VALUE (e.g. clip.max_norm=0.5)", assignment);
    char path[512];
    size_t plen = (size_t)(eq - assignment);
    if (plen >= sizeof path) return cn_error(CN_ERR_ARG, "--set: path too long");
    memcpy(path, assignment, plen);
    path[plen] = 0;
    cJSON *probe = cJSON_ParseWithOpts(eq + 1, NULL, 1);
    if (probe) {
        /* a JSON VALUE: the config file's parser, which refuses a string holding \u0000 */
        cJSON_Delete(probe);
        char what[600];
        snprintf(what, sizeof what, "--set %s", path);
        cn_status st = cn_json_parse(eq + 1, what, &probe);
        if (st) return st;
        cJSON_Delete(probe);
    }
    /* components, split by '.', none empty */
    char *parts[64];
    int np = 0;
    for (char *p = path;;) {
        char *dot = strchr(p, '.');
        if (dot) *dot = 0;
        if (!*p) return cn_error(CN_ERR_ARG, "--set %s: empty component in the path", assignment);
        if (np == 64) return cn_error(CN_ERR_ARG, "--set %s: path too deep", assignment);
        parts[np++] = p;
        if (!dot) break;
        p = dot + 1;
    }
    const char *section = parts[0];
    cJSON *cur = root;
    slot here = {NULL, NULL, -1};
    char done[512] = "";
    for (int i = 0; i < np; i++) {
        const char *part = parts[i];
        int last = i == np - 1;
        if (cJSON_IsArray(cur)) {
            if (last && !strcmp(section, "clip") && !strcmp(part, "mode") && here.parent) {
                /* clip.mode=none on a list of stages: the list becomes one stage */
                return put(here, fresh_object(cJSON_GetArrayItem(cur, 0), cn_clip_common_keys, "mode", parse_value(eq + 1)));
            }
            int idx = 0;
            cn_status st = parse_index(assignment, done, part, cJSON_GetArraySize(cur), &idx);
            if (st) return st;
            slot s = {cur, NULL, idx};
            if (last) return put(s, parse_value(eq + 1));
            here = s;
            cur = cJSON_GetArrayItem(cur, idx);
        } else if (cJSON_IsObject(cur)) {
            if (last) {
                cJSON *v = parse_value(eq + 1);
                if (!v) return cn_error(CN_ERR_NOMEM, "out of memory");
                cJSON *old = cJSON_GetObjectItemCaseSensitive(cur, part);
                int changes = !old || !cJSON_Compare(old, v, 1);
                /* a discriminator that changes starts its object afresh (see the README) */
                const char *const *keep = NULL;
                int disc = 0, layer = 0;
                if (!strcmp(section, "clip") && !strcmp(part, "mode") && i >= 1) { disc = 1; keep = cn_clip_common_keys; }
                else if (!strcmp(section, "optimizer") && i == 1 && !strcmp(part, "type")) { disc = 1; keep = cn_optim_common_keys; }
                else if (!strcmp(section, "schedule") && i == 1 && !strcmp(part, "type")) { disc = 1; keep = cn_schedule_common_keys; }
                else if (!strcmp(section, "model") && i == 2 && !strcmp(part, "type")) layer = 1;
                if (changes && here.parent && (disc || layer))
                    return put(here, layer ? fresh_layer(cur, v) : fresh_object(cur, keep, part, v));
                return cn_json_set(cur, part, v);
            }
            cJSON *child = cJSON_GetObjectItemCaseSensitive(cur, part);
            if (!child || cJSON_IsNull(child)) {
                cn_status st = cn_json_set(cur, part, cJSON_CreateObject());
                if (st) return st;
                child = cJSON_GetObjectItemCaseSensitive(cur, part);
            }
            here = (slot){cur, child->string, -1};
            cur = child;
        } else {
            return cn_error(CN_ERR_ARG, "--set %s: %s is a %s, not an object or list", assignment, done,
                            cJSON_IsString(cur) ? "string" : cJSON_IsNumber(cur) ? "number" : "value");
        }
        size_t k = strlen(done);
        snprintf(done + k, sizeof done - k, "%s%s", k ? "." : "", part);
    }
    return cn_error(CN_ERR_ARG, "--set %s: empty path", assignment);
}

static void base_name(const char *file, char *out, size_t n)
{
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
    /* a usable directory name: other characters become '_' */
    for (char *p = out; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.')) *p = '_';
    if (!out[0]) snprintf(out, n, "run");
    else if (out[0] == '.') out[0] = '_';
    if (strlen(out) > 100) out[100] = 0;
}

/* "compare" is read by `clipnn compare` only, but its shape is checked for every command: a config is
 * valid or not whatever the command (train would otherwise accept "compare": 5 that compare refuses). */
static cn_status check_compare(const cJSON *cmp)
{
    static const char *const keys[] = {"variants", NULL};
    char d[96];
    if (!cmp) return CN_OK;
    cn_status st = cn_json_check_keys(cmp, "compare", keys);
    if (st) return st;
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(cmp, "variants");
    if (!vs) return CN_OK;
    if (!cJSON_IsObject(vs))
        return cn_error(CN_ERR_ARG, "compare.variants: expected an object {NAME: {PATH: VALUE}}, got %s",
                        cn_json_describe(vs, d, sizeof d));
    for (const cJSON *v = vs->child; v; v = v->next)
        if (!cJSON_IsObject(v))
            return cn_error(CN_ERR_ARG, "compare.variants.%.60s: expected an object {PATH: VALUE}, got %s", v->string,
                            cn_json_describe(v, d, sizeof d));
    return CN_OK;
}

static cn_status parse_top(cn_config *c)
{
    cJSON *r = c->root;
    cn_status st;
    if ((st = cn_json_check_keys(r, "", cn_config_top_keys))) return st;
    char defname[1024];
    base_name(c->file, defname, sizeof defname);
    if ((st = cn_json_string(r, "", "name", 0, defname, NULL, &c->name))) return st;
    /* the name becomes a directory name (runs/<name>-<timestamp>) */
    int name_ok = c->name[0] && c->name[0] != '.' && strlen(c->name) <= 100;
    for (const char *p = c->name; name_ok && *p; p++)
        name_ok = isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.';
    if (!name_ok)
        return cn_error(CN_ERR_ARG, "name: expected letters, digits, '_', '-' or '.' (not first), at most 100, got \"%.60s\"", c->name);
    if ((st = cn_json_int(r, "", "seed", 0, 1, 0, (long long)9e15, &c->seed))) return st;
    /* "auto" (the default): the session picks the count for the model (cn_session_resolve_threads) */
    cJSON *thv = cJSON_GetObjectItemCaseSensitive(r, "threads");
    if (!thv || (cJSON_IsString(thv) && !strcmp(thv->valuestring, "auto"))) {
        if (!thv && (st = cn_json_set(r, "threads", cJSON_CreateString("auto")))) return st;
        c->threads = 0;
    } else {
        long long th;
        if (!cJSON_IsNumber(thv) || (st = cn_json_int(r, "", "threads", 0, 1, 1, 256, &th))) {
            char d[96];
            return cn_error(CN_ERR_ARG, "threads: expected \"auto\" or an integer in [1, 256], got %s",
                            cn_json_describe(thv, d, sizeof d));
        }
        c->threads = (int)th;
    }
    static const char *const losses[] = {"mse", "cross_entropy", "bce_with_logits", NULL};
    if ((st = cn_json_string(r, "", "loss", 0, "mse", losses, &c->loss))) return st;
    if (!cJSON_GetObjectItemCaseSensitive(r, "data")) return cn_error(CN_ERR_ARG, "data: required key is missing");
    if (!cJSON_GetObjectItemCaseSensitive(r, "model")) return cn_error(CN_ERR_ARG, "model: required key is missing");
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(r, "model")) ||
        cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "model")) == 0) {
        char d[96];
        return cn_error(CN_ERR_ARG, "model: expected a non-empty list of layers, got %s",
                        cn_json_describe(cJSON_GetObjectItemCaseSensitive(r, "model"), d, sizeof d));
    }
    cJSON *init = cJSON_GetObjectItemCaseSensitive(r, "init_from");
    c->init_from = NULL;
    if (!init) { if ((st = cn_json_set(r, "init_from", cJSON_CreateNull()))) return st; }
    else if (cJSON_IsString(init)) c->init_from = init->valuestring;
    else if (!cJSON_IsNull(init)) {
        char d[96];
        return cn_error(CN_ERR_ARG, "init_from: expected a file name or null, got %s", cn_json_describe(init, d, sizeof d));
    }
    /* Sections with defaults parsed by their modules: make sure they exist. */
    if (!cJSON_GetObjectItemCaseSensitive(r, "optimizer") && (st = cn_json_set(r, "optimizer", cJSON_CreateObject()))) return st;
    if (!cJSON_GetObjectItemCaseSensitive(r, "schedule") && (st = cn_json_set(r, "schedule", cJSON_CreateObject()))) return st;
    if (!cJSON_GetObjectItemCaseSensitive(r, "clip")) {
        cJSON *clip = cJSON_CreateObject();
        if (!clip || !cJSON_AddStringToObject(clip, "mode", "none")) { cJSON_Delete(clip); return cn_error(CN_ERR_NOMEM, "out of memory"); }
        if ((st = cn_json_set(r, "clip", clip))) return st;
    }

    cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "train");
    if (!t) { if ((st = cn_json_set(r, "train", cJSON_CreateObject()))) return st; t = cJSON_GetObjectItemCaseSensitive(r, "train"); }
    static const char *const tkeys[] = {"steps", "batch_size", "grad_accum", "bptt", "log_every", "eval_every", "checkpoint_every", NULL};
    if ((st = cn_json_check_keys(t, "train", tkeys))) return st;
    const long long BIG = CN_MAX_STEPS;
    cn_train_config *tc = &c->train;
    if ((st = cn_json_int(t, "train", "steps", 0, 1000, 1, BIG, &tc->steps))) return st;
    if ((st = cn_json_int(t, "train", "batch_size", 0, 32, 1, 1 << 20, &tc->batch_size))) return st;
    if ((st = cn_json_int(t, "train", "grad_accum", 0, 1, 1, 1 << 16, &tc->grad_accum))) return st;
    if ((st = cn_json_int(t, "train", "bptt", 0, 0, 0, 1 << 24, &tc->bptt))) return st;
    if ((st = cn_json_int(t, "train", "log_every", 0, 1, 1, BIG, &tc->log_every))) return st;
    if ((st = cn_json_int(t, "train", "eval_every", 0, 0, 0, BIG, &tc->eval_every))) return st;
    if ((st = cn_json_int(t, "train", "checkpoint_every", 0, 0, 0, BIG, &tc->checkpoint_every))) return st;
    if (tc->log_every > tc->steps)
        return cn_error(CN_ERR_ARG, "train.log_every: %lld is more than train.steps %lld; metrics.csv would have no "
                        "row and summary.json no final_loss", tc->log_every, tc->steps);

    if ((st = check_compare(cJSON_GetObjectItemCaseSensitive(r, "compare")))) return st;

    cJSON *lg = cJSON_GetObjectItemCaseSensitive(r, "log");
    if (!lg) { if ((st = cn_json_set(r, "log", cJSON_CreateObject()))) return st; lg = cJSON_GetObjectItemCaseSensitive(r, "log"); }
    static const char *const lkeys[] = {"per_tensor", NULL};
    if ((st = cn_json_check_keys(lg, "log", lkeys))) return st;
    if ((st = cn_json_bool(lg, "log", "per_tensor", 0, 0, &c->log_per_tensor))) return st;
    return CN_OK;
}

cn_status cn_config_from_json(cJSON *root, const char *file, char *const *sets, int n_sets, cn_config *out)
{
    memset(out, 0, sizeof *out);
    out->root = root;
    snprintf(out->file, sizeof out->file, "%s", file ? file : "(config)");
    const char *slash = file ? strrchr(file, '/') : NULL;
    if (slash) snprintf(out->base_dir, sizeof out->base_dir, "%.*s", (int)(slash - file), file);
    else snprintf(out->base_dir, sizeof out->base_dir, ".");
    cn_status st = cn_json_expect_object(root, "");
    if (st) return cn_error_prefix(st, "%s", out->file);
    for (int i = 0; i < n_sets; i++)
        if ((st = cn_config_set(root, sets[i]))) return st;
    if ((st = parse_top(out))) return cn_error_prefix(st, "%s", out->file);
    return CN_OK;
}

cn_status cn_config_load(const char *file, char *const *sets, int n_sets, cn_config *out)
{
    memset(out, 0, sizeof *out);
    cJSON *root = NULL;
    cn_status st = cn_json_load_file(file, &root);
    if (st) return st;
    return cn_config_from_json(root, file, sets, n_sets, out);
}

void cn_config_free(cn_config *c)
{
    cJSON_Delete(c->root);
    c->root = NULL;
}
