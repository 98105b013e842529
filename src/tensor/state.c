#include "tensor/state.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

size_t cn_dtype_size(cn_dtype dt) { return dt == CN_DT_F32 || dt == CN_DT_I32 ? 4 : 8; }

const char *cn_dtype_name(cn_dtype dt)
{
    switch (dt) {
    case CN_DT_F32: return "F32";
    case CN_DT_F64: return "F64";
    case CN_DT_I32: return "I32";
    case CN_DT_I64: return "I64";
    }
    return "?";
}

size_t cn_state_item_numel(const cn_state_item *it)
{
    size_t n = 1;
    for (int i = 0; i < it->ndim; i++) n *= (size_t)it->shape[i];
    return n;
}

void cn_state_init(cn_state *s) { memset(s, 0, sizeof *s); }

cn_status cn_state_add(cn_state *s, const char *name, cn_dtype dt, int ndim, const int64_t *shape, void *data)
{
    if (ndim < 0 || ndim > 4) return cn_error(CN_ERR_ARG, "state item '%s': rank %d outside 0..4", name, ndim);
    if (cn_state_find(s, name)) return cn_error(CN_ERR_ARG, "state item '%s' is defined twice", name);
    if (s->count == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        cn_state_item *it = cn_realloc(s->items, sizeof *it * (size_t)cap);
        if (!it) return cn_error(CN_ERR_NOMEM, "out of memory for state item '%s'", name);
        s->items = it;
        s->cap = cap;
    }
    cn_state_item *it = &s->items[s->count];
    memset(it, 0, sizeof *it);
    it->name = cn_strdup(name);
    if (!it->name) return cn_error(CN_ERR_NOMEM, "out of memory for state item '%s'", name);
    it->dtype = dt;
    it->ndim = ndim;
    for (int i = 0; i < ndim; i++) it->shape[i] = shape[i];
    it->data = data;
    s->count++;
    return CN_OK;
}

const cn_state_item *cn_state_find(const cn_state *s, const char *name)
{
    for (int i = 0; i < s->count; i++)
        if (!strcmp(s->items[i].name, name)) return &s->items[i];
    return NULL;
}

void cn_state_describe(cn_dtype dt, int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "%s [", cn_dtype_name(dt));
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %" PRId64 : "%" PRId64, shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

cn_status cn_state_get(const cn_state *s, const char *name, cn_dtype dt, int ndim, const int64_t *shape,
                       const cn_state_item **out)
{
    const cn_state_item *it = cn_state_find(s, name);
    if (!it) return cn_error(CN_ERR_FORMAT, "state '%s' is missing", name);
    int same = it->dtype == dt && it->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = it->shape[d] == shape[d];
    if (!same) {
        char got[128], want[128];
        cn_state_describe(it->dtype, it->ndim, it->shape, got, sizeof got);
        cn_state_describe(dt, ndim, shape, want, sizeof want);
        return cn_error(CN_ERR_FORMAT, "state '%s' is %s, expected %s", name, got, want);
    }
    *out = it;
    return CN_OK;
}

cn_status cn_state_copy_out(const cn_state *s, const char *name, cn_dtype dt, int ndim, const int64_t *shape, void *dst)
{
    const cn_state_item *it;
    cn_status st = cn_state_get(s, name, dt, ndim, shape, &it);
    if (st) return st;
    size_t numel = cn_state_item_numel(it);
    if (numel) memcpy(dst, it->data, numel * cn_dtype_size(dt));
    return CN_OK;
}

cn_status cn_state_copy_vec(const cn_state *s, const char *name, cn_dtype dt, int64_t n, void *dst)
{
    return cn_state_copy_out(s, name, dt, 1, &n, dst);
}

cn_status cn_state_get_i64(const cn_state *s, const char *name, int64_t *out)
{
    return cn_state_copy_out(s, name, CN_DT_I64, 0, NULL, out);
}

cn_status cn_state_get_f64(const cn_state *s, const char *name, double *out)
{
    return cn_state_copy_out(s, name, CN_DT_F64, 0, NULL, out);
}

void cn_state_free(cn_state *s)
{
    for (int i = 0; i < s->count; i++) cn_free(s->items[i].name);
    cn_free(s->items);
    memset(s, 0, sizeof *s);
}
