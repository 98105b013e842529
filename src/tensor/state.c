#include "tensor/state.h"

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

cn_status cn_state_copy_out(const cn_state *s, const char *name, cn_dtype dt, size_t numel, void *dst)
{
    const cn_state_item *it = cn_state_find(s, name);
    if (!it) return cn_error(CN_ERR_FORMAT, "state '%s' is missing", name);
    if (it->dtype != dt)
        return cn_error(CN_ERR_FORMAT, "state '%s' has dtype %s, expected %s", name, cn_dtype_name(it->dtype), cn_dtype_name(dt));
    if (cn_state_item_numel(it) != numel)
        return cn_error(CN_ERR_FORMAT, "state '%s' has %zu elements, expected %zu", name, cn_state_item_numel(it), numel);
    if (numel) memcpy(dst, it->data, numel * cn_dtype_size(dt));
    return CN_OK;
}

void cn_state_free(cn_state *s)
{
    for (int i = 0; i < s->count; i++) cn_free(s->items[i].name);
    cn_free(s->items);
    memset(s, 0, sizeof *s);
}
