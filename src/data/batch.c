/* Batching: copies examples (example-major in the dataset) into time-major batch buffers. */
#include "data/internal.h"

#include <string.h>

size_t cn_batch_x_size(const cn_dataset *ds, int batch)
{
    size_t steps = ds->seq_len > 0 ? (size_t)ds->seq_len : 1;
    return steps * (size_t)batch * (size_t)ds->features;
}

size_t cn_batch_y_size(const cn_dataset *ds, int batch)
{
    size_t steps = ds->target_seq && ds->seq_len > 0 ? (size_t)ds->seq_len : 1;
    size_t per = ds->target_kind == CN_TARGET_FLOAT ? (size_t)ds->target_dim : 1;
    return steps * (size_t)batch * per;
}

/* Copies example i of ds into slot b of a batch of B: x [T, B, F] or [B, F]; y [T, B, D] or [B, D];
 * labels [T*B] or [B]. */
static void put_example(const cn_dataset *ds, size_t i, int b, int B, float *x, float *y, int32_t *labels)
{
    size_t F = (size_t)ds->features;
    if (ds->seq_len > 0) {
        size_t T = (size_t)ds->seq_len;
        const float *src = ds->x + i * T * F;                  // [T, F]
        for (size_t t = 0; t < T; t++)
            memcpy(x + (t * (size_t)B + (size_t)b) * F, src + t * F, F * sizeof *x);
    } else {
        memcpy(x + (size_t)b * F, ds->x + i * F, F * sizeof *x);
    }
    int seq = ds->target_seq && ds->seq_len > 0;
    size_t T = seq ? (size_t)ds->seq_len : 1;
    if (ds->target_kind == CN_TARGET_FLOAT) {
        size_t D = (size_t)ds->target_dim;
        const float *src = ds->y + i * T * D;                  // [T, D] or [D]
        for (size_t t = 0; t < T; t++)
            memcpy(y + (t * (size_t)B + (size_t)b) * D, src + t * D, D * sizeof *y);
    } else {
        const int32_t *src = ds->labels + i * T;               // [T] or [1]
        for (size_t t = 0; t < T; t++) labels[t * (size_t)B + (size_t)b] = src[t];
    }
}

static cn_status check_targets(const cn_dataset *ds, const float *x, const float *y, const int32_t *labels)
{
    if (!x) return cn_error(CN_ERR_ARG, "batch: the x buffer is NULL");
    if (ds->target_kind == CN_TARGET_FLOAT && !y)
        return cn_error(CN_ERR_ARG, "batch: the dataset has float targets but the y buffer is NULL");
    if (ds->target_kind == CN_TARGET_CLASS && !labels)
        return cn_error(CN_ERR_ARG, "batch: the dataset has class labels but the labels buffer is NULL");
    return CN_OK;
}

cn_status cn_batch_range(const cn_dataset *ds, int start, int count, float *x, float *y, int32_t *labels)
{
    if (start < 0 || count < 1 || start > ds->n - count)
        return cn_error(CN_ERR_ARG, "batch range: examples [%d, %d) outside the %d of the set", start, start + count, ds->n);
    cn_status st = check_targets(ds, x, y, labels);
    if (st) return st;
    for (int b = 0; b < count; b++) put_example(ds, (size_t)start + (size_t)b, b, count, x, y, labels);
    return CN_OK;
}

/* Tag for the batcher's own stream (ASCII "batcher"). */
#define BATCHER_TAG 0x0062617463686572ULL

cn_status cn_batcher_init(cn_batcher *b, const cn_dataset *ds, int batch, int shuffle, uint64_t seed)
{
    memset(b, 0, sizeof *b);
    if (!ds || ds->n < 1) return cn_error(CN_ERR_ARG, "batcher: the dataset has no examples");
    if (batch < 1) return cn_error(CN_ERR_ARG, "batcher: batch size must be >= 1, got %d", batch);
    b->perm = cn_malloc(sizeof *b->perm * (size_t)ds->n);
    if (!b->perm) return cn_error(CN_ERR_NOMEM, "batcher: out of memory for a permutation of %d", ds->n);
    b->ds = ds;
    b->batch = batch;
    b->shuffle = shuffle != 0;
    for (int i = 0; i < ds->n; i++) b->perm[i] = i;
    cn_rng_seed(&b->rng, cn_data_stream_seed(seed, BATCHER_TAG));
    if (b->shuffle) cn_rng_shuffle(&b->rng, b->perm, (size_t)ds->n);
    b->pos = 0;
    b->epoch = 1;
    return CN_OK;
}

cn_status cn_batcher_next(cn_batcher *b, float *x, float *y, int32_t *labels, int *epoch)
{
    if (!b->perm) return cn_error(CN_ERR_STATE, "batcher: not initialised");
    cn_status st = check_targets(b->ds, x, y, labels);
    if (st) return st;
    int n = b->ds->n;
    for (int k = 0; k < b->batch; k++) {
        if (b->pos >= n) {
            /* Wrap lazily, so a saved state at an epoch boundary resumes identically. Reshuffling the previous
             * permutation (not the identity) is as uniform and needs no extra state. */
            b->pos = 0;
            b->epoch++;
            if (b->shuffle) cn_rng_shuffle(&b->rng, b->perm, (size_t)n);
        }
        if (k == 0 && epoch) *epoch = (int)b->epoch;
        put_example(b->ds, (size_t)b->perm[b->pos++], k, b->batch, x, y, labels);
    }
    return CN_OK;
}

cn_status cn_batcher_save_state(const cn_batcher *b, cn_state *out)
{
    if (!b->perm) return cn_error(CN_ERR_STATE, "batcher: not initialised");
    /* cn_state items are views for the checkpoint writer, which only reads them. */
    cn_batcher *m = (cn_batcher *)b;
    int64_t n = b->ds->n, four = 4;
    cn_status st = cn_state_add(out, "data.perm", CN_DT_I32, 1, &n, m->perm);
    if (!st) st = cn_state_add(out, "data.pos", CN_DT_I64, 0, NULL, &m->pos);
    if (!st) st = cn_state_add(out, "data.epoch", CN_DT_I64, 0, NULL, &m->epoch);
    if (!st) st = cn_state_add(out, "data.rng", CN_DT_I64, 1, &four, m->rng.s);
    return st;
}

cn_status cn_batcher_load_state(cn_batcher *b, const cn_state *in)
{
    if (!b->perm) return cn_error(CN_ERR_STATE, "batcher: not initialised");
    int n = b->ds->n;
    int64_t pos, epoch;
    uint64_t s[4];
    cn_status st = cn_state_get_i64(in, "data.pos", &pos);
    if (!st) st = cn_state_get_i64(in, "data.epoch", &epoch);
    if (!st) st = cn_state_copy_vec(in, "data.rng", CN_DT_I64, 4, s);
    if (st) return st;
    if (pos < 0 || pos > n) return cn_error(CN_ERR_FORMAT, "state 'data.pos' = %lld is outside [0, %d]", (long long)pos, n);
    if (epoch < 1 || epoch > INT32_MAX) return cn_error(CN_ERR_FORMAT, "state 'data.epoch' = %lld is not a valid epoch", (long long)epoch);
    if (!(s[0] | s[1] | s[2] | s[3])) return cn_error(CN_ERR_FORMAT, "state 'data.rng' is all zero");
    int32_t *perm = cn_malloc(sizeof *perm * (size_t)n);
    unsigned char *seen = cn_calloc((size_t)n, 1);
    if (!perm || !seen) {
        cn_free(perm);
        cn_free(seen);
        return cn_error(CN_ERR_NOMEM, "batcher: out of memory loading state");
    }
    st = cn_state_copy_vec(in, "data.perm", CN_DT_I32, n, perm);
    for (int i = 0; !st && i < n; i++) {
        if (perm[i] < 0 || perm[i] >= n || seen[perm[i]])
            st = cn_error(CN_ERR_FORMAT, "state 'data.perm' is not a permutation of 0..%d (entry %d = %d)", n - 1, i, perm[i]);
        else if (!b->shuffle && perm[i] != i)   /* without shuffling the order is never changed */
            st = cn_error(CN_ERR_FORMAT, "state 'data.perm': entry %d = %d, but the data is not shuffled (the order "
                          "is 0..%d)", i, perm[i], n - 1);
        else seen[perm[i]] = 1;
    }
    if (!st) {
        memcpy(b->perm, perm, sizeof *perm * (size_t)n);
        b->pos = pos;
        b->epoch = epoch;
        memcpy(b->rng.s, s, sizeof s);
        b->rng.has_spare = 0;
        b->rng.spare = 0.0;
    }
    cn_free(perm);
    cn_free(seen);
    return st;
}

void cn_batcher_free(cn_batcher *b)
{
    if (!b) return;
    cn_free(b->perm);
    memset(b, 0, sizeof *b);
}
