/* Named arrays that describe an object's saved state (optimizer moments, clip
 * history, ...), exchanged with the checkpoint writer and reader.
 * Items are views: cn_state never owns the data, only the item list and names. */
#ifndef CN_STATE_H
#define CN_STATE_H

#include <stdint.h>
#include "core.h"

typedef enum { CN_DT_F32 = 0, CN_DT_F64, CN_DT_I32, CN_DT_I64 } cn_dtype;

typedef struct {
    char *name;
    cn_dtype dtype;
    int ndim;                 /* 0..4; 0 is a scalar holding one element */
    int64_t shape[4];
    void *data;               /* view */
} cn_state_item;

typedef struct {
    cn_state_item *items;
    int count, cap;
} cn_state;

size_t cn_dtype_size(cn_dtype dt);
const char *cn_dtype_name(cn_dtype dt);          /* safetensors names: F32, F64, I32, I64 */
size_t cn_state_item_numel(const cn_state_item *it);

void cn_state_init(cn_state *s);
cn_status cn_state_add(cn_state *s, const char *name, cn_dtype dt, int ndim, const int64_t *shape, void *data);
const cn_state_item *cn_state_find(const cn_state *s, const char *name);
/* Finds `name` and checks its dtype and element count; copies into dst. The
 * error names the item and what differs. */
cn_status cn_state_copy_out(const cn_state *s, const char *name, cn_dtype dt, size_t numel, void *dst);
void cn_state_free(cn_state *s);

#endif
