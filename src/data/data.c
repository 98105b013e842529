/* cn_data_load: dispatch on data.kind, plus the helpers the loaders share. */
#include "data/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "io/files.h"
#include "json/json.h"

static const char *const kinds[] = {"adding", "temporal_order", "xor", "spirals", "sine",
                                    "npy", "csv", "text", NULL};

uint64_t cn_data_stream_seed(uint64_t seed, uint64_t tag)
{
    /* SplitMix64's finaliser: nearby seeds and tags give unrelated streams. */
    uint64_t z = seed ^ (tag * 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

cn_status cn_data_alloc(cn_dataset *ds, const char *what)
{
    size_t steps = ds->seq_len > 0 ? (size_t)ds->seq_len : 1;
    size_t nx = (size_t)ds->n * steps;
    if (ds->n < 0 || ds->features < 1 || nx / steps != (size_t)ds->n || nx > CN_DATA_MAX_ELEMS / (size_t)ds->features)
        return cn_error(CN_ERR_ARG, "%s: %d examples x %zu steps x %d features exceeds %zu values", what, ds->n,
                        steps, ds->features, CN_DATA_MAX_ELEMS);
    nx *= (size_t)ds->features;
    size_t per = ds->target_seq ? steps : 1;
    size_t ny = (size_t)ds->n * per;
    ds->x = cn_malloc(nx * sizeof *ds->x);
    if (ds->target_kind == CN_TARGET_FLOAT) {
        if (ds->target_dim < 1 || ny > CN_DATA_MAX_ELEMS / (size_t)ds->target_dim)
            return cn_error(CN_ERR_ARG, "%s: targets of %d values per step exceed %zu values", what, ds->target_dim,
                            CN_DATA_MAX_ELEMS);
        ds->y = cn_malloc(ny * (size_t)ds->target_dim * sizeof *ds->y);
    } else {
        ds->labels = cn_malloc(ny * sizeof *ds->labels);
    }
    if (!ds->x || (!ds->y && !ds->labels))
        return cn_error(CN_ERR_NOMEM, "%s: out of memory for %zu input values", what, nx);
    return CN_OK;
}

cn_status cn_data_resolve(char *out, size_t n, const char *base_dir, const char *file, const char *jpath)
{
    int k;
    if (file[0] == '/' || !base_dir || !*base_dir) k = snprintf(out, n, "%s", file);
    else k = snprintf(out, n, "%s%s%s", base_dir, base_dir[strlen(base_dir) - 1] == '/' ? "" : "/", file);
    if (k < 0 || (size_t)k >= n) return cn_error(CN_ERR_ARG, "%s: path \"%.80s...\" is too long", jpath, file);
    return CN_OK;
}

cn_status cn_data_read_file(const char *file, const char *jpath, unsigned char **buf, size_t *len)
{
    /* no size limit here: the loaders bound what they allocate from the content (CN_DATA_MAX_ELEMS) */
    char *b;
    cn_status st = cn_read_file(file, CN_READ_UNLIMITED, &b, len);
    *buf = (unsigned char *)b;
    return st ? cn_error_prefix(st, "%s", jpath) : CN_OK;
}

void cn_dataset_free(cn_dataset *ds)
{
    if (!ds) return;
    cn_free(ds->x);
    cn_free(ds->y);
    cn_free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void cn_data_free(cn_data *d)
{
    if (!d) return;
    cn_dataset_free(&d->train);
    cn_dataset_free(&d->test);
    cn_free(d->vocab);
    memset(d, 0, sizeof *d);
}

cn_status cn_data_load(cJSON *data_json, const char *path, uint64_t seed, const char *base_dir, cn_data *out)
{
    memset(out, 0, sizeof *out);
    if (!path) path = "data";
    cn_status st = cn_json_expect_object(data_json, path);
    if (st) return st;
    const char *kind;
    if ((st = cn_json_string(data_json, path, "kind", 1, NULL, kinds, &kind))) return st;
    snprintf(out->kind, sizeof out->kind, "%s", kind);
    if (!strcmp(kind, "npy")) st = cn_data_load_npy(data_json, path, base_dir, out);
    else if (!strcmp(kind, "csv")) st = cn_data_load_csv(data_json, path, base_dir, out);
    else if (!strcmp(kind, "text")) st = cn_data_load_text(data_json, path, base_dir, out);
    else st = cn_data_load_task(data_json, path, kind, seed, out);
    /* Read after the loader so that its unknown-key check reports a misspelt key before anything else. */
    if (!st) st = cn_json_bool(data_json, path, "shuffle", 0, 1, &out->shuffle);
    if (st) {
        cn_data_free(out);
        return st;
    }
    snprintf(out->kind, sizeof out->kind, "%s", kind);
    return CN_OK;
}
