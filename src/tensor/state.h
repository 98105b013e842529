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
/* Finds `name` and checks that it has exactly dtype dt and shape[0..ndim) (ndim 0 is a scalar, shape may
 * then be NULL; a [1] is not a scalar, nor is [5, 1] a [5]). Errors are CN_ERR_FORMAT naming the item and
 * what differs; *out is the item on success. Checkpoints are untrusted: every reader of saved state goes
 * through these. */
cn_status cn_state_get(const cn_state *s, const char *name, cn_dtype dt, int ndim, const int64_t *shape,
                       const cn_state_item **out);
/* cn_state_get, then copies the data into dst. */
cn_status cn_state_copy_out(const cn_state *s, const char *name, cn_dtype dt, int ndim, const int64_t *shape, void *dst);
/* A rank-1 item of n elements, copied into dst. */
cn_status cn_state_copy_vec(const cn_state *s, const char *name, cn_dtype dt, int64_t n, void *dst);
/* A scalar (rank 0) I64 or F64 item. */
cn_status cn_state_get_i64(const cn_state *s, const char *name, int64_t *out);
cn_status cn_state_get_f64(const cn_state *s, const char *name, double *out);
/* "F32 [2, 3]" into buf (a scalar is "I64 []"). */
void cn_state_describe(cn_dtype dt, int ndim, const int64_t *shape, char *buf, size_t n);
void cn_state_free(cn_state *s);

#endif
