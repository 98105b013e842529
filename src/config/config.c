#include "config/config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

const char *const cn_config_top_keys[] = {
    "name", "seed", "threads", "data", "model", "loss", "optimizer", "schedule",
    "clip", "train", "log", "init_from", "compare", NULL};

/* Keys kept when a "mode"/"type" discriminator changes: they mean the same for every mode/type. */
static const char *const common_keys[] = {"on_nonfinite", "max_consecutive_skips", "lr", "weight_decay", "name", NULL};

static int is_index(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++) if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

static cJSON *parse_value(const char *text)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(text, &end, 1);
    if (v) return v;
    /* A bare word (clip.mode=value) is a string. */
    return cJSON_CreateString(text);
}

static int is_common(const char *k)
{
    for (const char *const *c = common_keys; *c; c++) if (!strcmp(*c, k)) return 1;
    return 0;
}

/* obj.key = value where key is a discriminator: start afresh if the value changes. */
static cn_status set_discriminator(cJSON *parent, const char *pkey, int pindex, cJSON *obj, const char *key, cJSON *value)
{
    cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (old && cJSON_Compare(old, value, 1)) { cJSON_Delete(value); return CN_OK; }
    cJSON *fresh = cJSON_CreateObject();
    if (!fresh) { cJSON_Delete(value); return cn_error(CN_ERR_NOMEM, "out of memory"); }
    for (cJSON *it = obj->child; it; it = it->next)
        if (is_common(it->string)) cJSON_AddItemToObject(fresh, it->string, cJSON_Duplicate(it, 1));
    cJSON_AddItemToObject(fresh, key, value);
    if (pkey) cJSON_ReplaceItemInObjectCaseSensitive(parent, pkey, fresh);
    else cJSON_ReplaceItemInArray(parent, pindex, fresh);
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

    cJSON *parent = NULL, *cur = root;
    const char *pkey = NULL;
    int pindex = -1;
    char *save = NULL, *part = strtok_r(path, ".", &save);
    char done[512] = "";
    while (part) {
        char *next = strtok_r(NULL, ".", &save);
        if (!*part) return cn_error(CN_ERR_ARG, "--set %s: empty path component", assignment);
        if (cJSON_IsArray(cur) && !is_index(part) && !strcmp(part, "mode") && !next) {
            /* clip.mode=none on a list of stages: the list becomes one stage. */
            cJSON *first = cJSON_GetArrayItem(cur, 0);
            cJSON *obj = cJSON_CreateObject();
            if (!obj) return cn_error(CN_ERR_NOMEM, "out of memory");
            if (cJSON_IsObject(first))
                for (cJSON *it = first->child; it; it = it->next)
                    if (is_common(it->string)) cJSON_AddItemToObject(obj, it->string, cJSON_Duplicate(it, 1));
            cJSON_AddItemToObject(obj, "mode", parse_value(eq + 1));
            if (pkey) cJSON_ReplaceItemInObjectCaseSensitive(parent, pkey, obj);
            else if (parent) cJSON_ReplaceItemInArray(parent, pindex, obj);
            return CN_OK;
        }
        if (cJSON_IsArray(cur)) {
            if (!is_index(part))
                return cn_error(CN_ERR_ARG, "--set %s: %s is a list; index it with a number", assignment, *done ? done : "(top level)");
            int idx = atoi(part), n = cJSON_GetArraySize(cur);
            if (idx >= n) return cn_error(CN_ERR_ARG, "--set %s: %s has %d items, no index %d", assignment, done, n, idx);
            if (!next) {
                cJSON *v = parse_value(eq + 1);
                if (!v) return cn_error(CN_ERR_NOMEM, "out of memory");
                cJSON_ReplaceItemInArray(cur, idx, v);
                return CN_OK;
            }
            parent = cur; pkey = NULL; pindex = idx;
            cur = cJSON_GetArrayItem(cur, idx);
        } else if (cJSON_IsObject(cur)) {
            if (!next) {
                cJSON *v = parse_value(eq + 1);
                if (!v) return cn_error(CN_ERR_NOMEM, "out of memory");
                /* a new clip mode / optimizer type / schedule type starts afresh; a layer's
                   type keeps its keys (rnn -> gru keeps hidden and output) */
                if ((!strcmp(part, "mode") || !strcmp(part, "type")) && parent && pkey)
                    return set_discriminator(parent, pkey, pindex, cur, part, v);
                return cn_json_set(cur, part, v);
            }
            cJSON *child = cJSON_GetObjectItemCaseSensitive(cur, part);
            if (!child || cJSON_IsNull(child)) {
                child = cJSON_CreateObject();
                if (!child) return cn_error(CN_ERR_NOMEM, "out of memory");
                cn_status st = cn_json_set(cur, part, child);
                if (st) return st;
            }
            parent = cur; pkey = cJSON_GetObjectItemCaseSensitive(cur, part)->string; pindex = -1;
            cur = child;
        } else {
            return cn_error(CN_ERR_ARG, "--set %s: %s is a %s, not an object or list", assignment, done,
                            cJSON_IsString(cur) ? "string" : cJSON_IsNumber(cur) ? "number" : "value");
        }
        size_t k = strlen(done);
        snprintf(done + k, sizeof done - k, "%s%s", k ? "." : "", part);
        part = next;
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
}

static cn_status parse_top(cn_config *c)
{
    cJSON *r = c->root;
    cn_status st;
    if ((st = cn_json_check_keys(r, "", cn_config_top_keys))) return st;
    char defname[1024];
    base_name(c->file, defname, sizeof defname);
    if ((st = cn_json_string(r, "", "name", 0, defname, NULL, &c->name))) return st;
    if ((st = cn_json_int(r, "", "seed", 0, 1, 0, (long long)9e15, &c->seed))) return st;
    long long th;
    if ((st = cn_json_int(r, "", "threads", 0, 1, 1, 256, &th))) return st;
    c->threads = (int)th;
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
    const long long BIG = (long long)9e18;
    cn_train_config *tc = &c->train;
    if ((st = cn_json_int(t, "train", "steps", 0, 1000, 1, BIG, &tc->steps))) return st;
    if ((st = cn_json_int(t, "train", "batch_size", 0, 32, 1, 1 << 20, &tc->batch_size))) return st;
    if ((st = cn_json_int(t, "train", "grad_accum", 0, 1, 1, 1 << 16, &tc->grad_accum))) return st;
    if ((st = cn_json_int(t, "train", "bptt", 0, 0, 0, 1 << 24, &tc->bptt))) return st;
    if ((st = cn_json_int(t, "train", "log_every", 0, 1, 1, BIG, &tc->log_every))) return st;
    if ((st = cn_json_int(t, "train", "eval_every", 0, 0, 0, BIG, &tc->eval_every))) return st;
    if ((st = cn_json_int(t, "train", "checkpoint_every", 0, 0, 0, BIG, &tc->checkpoint_every))) return st;

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
