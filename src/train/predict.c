/* clipnn predict: a checkpoint's model run on the examples of a data file, one output row per example.
 *
 * Input: .npy float32/float64 [N, F] (or [N, T, F] for a sequence model), or .csv with a header row and
 * numbers (the config's data.target column is dropped when present; the other columns are the features,
 * in file order). Output (by the --out extension; standard output as CSV without --out):
 *   the raw outputs of the model: values for mse, logits for cross_entropy and bce_with_logits, one row
 *   per example ([N, O]) or per example and step for a sequence output ([N, T, O]);
 *   for cross_entropy the predicted class (argmax of the logits, the first on a tie), for bce_with_logits
 *   one class per output (logit > 0).
 *   .csv: columns example[,step],out0..out{O-1}[,class | ,class0..]; .npy: the outputs as float32 [N, (T,) O],
 *   and the classes as int64 [N, (T)] (cross_entropy) or [N, (T,) O] (bce) in <FILE without .npy>.class.npy.
 * Files are written atomically. */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"
#include "io/safetensors.h"
#include "json/json.h"
#include "train/session.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* ---- input ---- */

typedef struct {
    int n, T, F;        /* T = 0: [N, F] */
    float *x;           /* example-major [n, (T,) F] */
} examples;

static cn_status read_npy_examples(const char *file, examples *ex)
{
    cn_npy a;
    cn_status st = cn_npy_read(file, &a);
    if (st) return st == CN_ERR_IO ? CN_ERR_ARG : st;
    if (a.kind != 'f' || (a.ndim != 2 && a.ndim != 3) || a.shape[0] < 1 || a.numel > (size_t)INT32_MAX) {
        cn_npy_free(&a);
        return cn_error(CN_ERR_ARG, "%s: expected float features [N, F] or [N, T, F] with N >= 1", file);
    }
    ex->n = (int)a.shape[0];
    ex->T = a.ndim == 3 ? (int)a.shape[1] : 0;
    ex->F = (int)a.shape[a.ndim - 1];
    ex->x = cn_malloc(a.numel * sizeof(float));
    if (!ex->x) { cn_npy_free(&a); return cn_error(CN_ERR_NOMEM, "%s: out of memory", file); }
    for (size_t i = 0; i < a.numel; i++) {
        double v = a.itemsize == 4 ? (double)((const float *)a.data)[i] : ((const double *)a.data)[i];
        if (!isfinite(v)) {
            cn_npy_free(&a);
            return cn_error(CN_ERR_ARG, "%s: element %zu is %g; features must be finite", file, i, v);
        }
        ex->x[i] = (float)v;
    }
    cn_npy_free(&a);
    return CN_OK;
}

/* A header row, then rows of numbers; the column named `drop` (if any and present) is left out. */
static cn_status read_csv_examples(const char *file, const char *drop, examples *ex)
{
    char *text;
    size_t len;
    cn_status st = cn_read_file(file, CN_READ_UNLIMITED, &text, &len);
    if (st) return st == CN_ERR_IO ? CN_ERR_ARG : st;
    char *p = text;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;   /* a UTF-8 byte-order mark */
    char *eol = strchr(p, '\n');
    if (!eol || eol == p) { cn_free(text); return cn_error(CN_ERR_ARG, "%s:1: expected a header row", file); }
    *eol = 0;
    if (eol > p && eol[-1] == '\r') eol[-1] = 0;
    int cols = 1, skip = -1;
    for (char *c = p; *c; c++) cols += *c == ',';
    char *save = NULL;
    int k = 0;
    for (char *name = strtok_r(p, ",", &save); name; name = strtok_r(NULL, ",", &save), k++)
        if (drop && !strcmp(name, drop)) skip = k;
    ex->F = cols - (skip >= 0);
    ex->T = 0;
    size_t cap = 0;
    ex->n = 0;
    ex->x = NULL;
    int line = 2;   /* of the row being read; the header is line 1 */
    for (char *row = eol + 1; row < text + len; line++) {
        char *end = strchr(row, '\n');
        if (!end) end = text + len;
        *end = 0;
        if (end > row && end[-1] == '\r') end[-1] = 0;
        char *q = row;
        row = end + 1;
        while (*q == ' ' || *q == '\t') q++;
        if (!*q) continue;   /* a blank line */
        if ((size_t)(ex->n + 1) * (size_t)ex->F > cap) {
            size_t ncap = cap ? 2 * cap : 1024 * (size_t)ex->F;
            float *nx = cn_realloc(ex->x, ncap * sizeof(float));
            if (!nx) { cn_free(text); return cn_error(CN_ERR_NOMEM, "%s: out of memory", file); }
            ex->x = nx;
            cap = ncap;
        }
        float *dst = ex->x + (size_t)ex->n * (size_t)ex->F;
        int c = 0, f = 0;
        for (;;) {
            char *e;
            double v = strtod(q, &e);
            if (e == q || !isfinite(v) || (*e && *e != ',')) {
                cn_free(text);
                return cn_error(CN_ERR_ARG, "%s:%d: column %d: expected a finite number", file, line, c + 1);
            }
            if (c < cols && c != skip) dst[f++] = (float)v;
            c++;
            if (!*e) break;
            q = e + 1;
        }
        if (c != cols) {
            cn_free(text);
            return cn_error(CN_ERR_ARG, "%s:%d: %d columns, the header has %d", file, line, c, cols);
        }
        ex->n++;
    }
    cn_free(text);
    if (ex->n == 0) return cn_error(CN_ERR_ARG, "%s: no examples after the header", file);
    return CN_OK;
}

/* ---- output ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    int err;
} text_buf;

static void put(text_buf *b, const char *s)
{
    size_t k = strlen(s);
    if (b->err) return;
    if (b->len + k + 1 > b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 65536;
        while (ncap < b->len + k + 1) ncap *= 2;
        char *n = cn_realloc(b->buf, ncap);
        if (!n) { b->err = 1; return; }
        b->buf = n;
        b->cap = ncap;
    }
    memcpy(b->buf + b->len, s, k + 1);
    b->len += k;
}

/* .npy v1.0: magic, version, header length (u16 LE), a dict padded with spaces to a multiple of 64. */
static cn_status write_npy(const char *path, const char *descr, int ndim, const int64_t *shape, const void *data,
                           size_t bytes)
{
    char dict[256], sh[128] = "";
    for (int i = 0; i < ndim; i++) {
        size_t k = strlen(sh);
        snprintf(sh + k, sizeof sh - k, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
    }
    if (ndim > 1) sh[strlen(sh) - 1] = 0;   /* (2, 3) but (2,) */
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, sh);
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    char head[256 + 64];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    uint16_t hl = (uint16_t)(n + pad + 1);
    head[8] = (char)(hl & 0xff);
    head[9] = (char)(hl >> 8);
    memcpy(head + 10, dict, (size_t)n);
    memset(head + 10 + n, ' ', pad);
    head[10 + n + pad] = '\n';
    cn_atomic_file af;
    cn_status st = cn_atomic_open(&af, path);
    if (!st) st = cn_atomic_write(&af, head, total + pad);
    if (!st) st = cn_atomic_write(&af, data, bytes);
    if (!st) st = cn_atomic_commit(&af);
    return st;
}

cn_status cn_predict(const char *config_path, char *const *sets, int n_sets, const char *checkpoint,
                     const char *data_path, const char *out_path, FILE *out, int *n_examples)
{
    *n_examples = 0;
    int to_npy = out_path && ends_with(out_path, ".npy");
    if (out_path && !to_npy && !ends_with(out_path, ".csv"))
        return cn_error(CN_ERR_ARG, "%s: --out must end in .npy or .csv", out_path);
    if (!ends_with(data_path, ".npy") && !ends_with(data_path, ".csv"))
        return cn_error(CN_ERR_ARG, "%s: --data must be a .npy or a .csv file", data_path);
    cn_session s;
    examples ex = {0};
    float *xb = NULL, *outs = NULL;
    int64_t *cls = NULL;
    text_buf tb = {0};
    char *cls_path = NULL;
    cn_status st = cn_session_open(&s, config_path, sets, n_sets);
    if (st) goto done;
    cn_st_file *f = NULL;
    if ((st = cn_st_read(checkpoint, &f))) { if (st == CN_ERR_IO) st = CN_ERR_ARG; goto done; }
    st = cn_session_load_params(&s, f, checkpoint);
    cn_st_close(f);
    if (st) goto done;
    const cn_dataset *d = &s.data.train;
    if (d->ids) {
        st = cn_error(CN_ERR_ARG, "%s: predict takes feature inputs; a text model reads token ids (use sample)", config_path);
        goto done;
    }
    if (ends_with(data_path, ".npy")) st = read_npy_examples(data_path, &ex);
    else {
        const cJSON *dj = cJSON_GetObjectItemCaseSensitive(s.cfg.root, "data");
        const cJSON *tg = cJSON_GetObjectItemCaseSensitive(dj, "target");
        st = read_csv_examples(data_path, cJSON_IsString(tg) ? tg->valuestring : NULL, &ex);
    }
    if (st) goto done;
    if (ex.F != d->features || (ex.T > 0) != (d->seq_len > 0)) {
        st = cn_error(CN_ERR_ARG, "%s: examples of %s%d features, but the model takes %s%d (as the config's data)",
                      data_path, ex.T ? "sequences of " : "", ex.F, d->seq_len ? "sequences of " : "", d->features);
        goto done;
    }
    int T = ex.T, F = ex.F, steps = T ? T : 1, O = s.out.features, out_seq = s.out.seq;
    int per = out_seq ? steps : 1;          /* output rows per example */
    int B = s.eval_batch;
    xb = cn_malloc(sizeof(float) * (size_t)steps * (size_t)B * (size_t)F);
    outs = cn_malloc(sizeof(float) * (size_t)ex.n * (size_t)per * (size_t)O);
    if (!xb || !outs) { st = cn_error(CN_ERR_NOMEM, "out of memory for %d examples", ex.n); goto done; }
    for (int start = 0; start < ex.n; start += B) {
        int count = ex.n - start < B ? ex.n - start : B;
        /* example-major [n, T, F] -> time-major [T, count, F] */
        for (int b = 0; b < count; b++)
            for (int t = 0; t < steps; t++)
                memcpy(xb + ((size_t)t * count + b) * F, ex.x + (((size_t)(start + b)) * steps + t) * F, sizeof(float) * F);
        cn_var *pred;
        if ((st = cn_session_forward(&s, &s.ge, xb, T, count, F, 0, &pred))) goto done;
        /* pred [count, O] or time-major [T, count, O] -> example-major rows */
        for (int b = 0; b < count; b++)
            for (int t = 0; t < per; t++)
                memcpy(outs + (((size_t)(start + b)) * per + t) * O, pred->v.data + ((size_t)t * count + b) * O,
                       sizeof(float) * O);
    }
    size_t rows = (size_t)ex.n * (size_t)per;
    int ce = s.loss == CN_LOSS_CROSS_ENTROPY, bce = s.loss == CN_LOSS_BCE_LOGITS;
    int ncls = ce ? 1 : bce ? O : 0;        /* classes per row */
    if (ncls) {
        cls = cn_malloc(sizeof(int64_t) * rows * (size_t)ncls);
        if (!cls) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
        for (size_t r = 0; r < rows; r++) {
            const float *o = outs + r * O;
            if (ce) {
                int best = 0;
                for (int c = 1; c < O; c++) if (o[c] > o[best]) best = c;
                cls[r] = best;
            } else {
                for (int c = 0; c < O; c++) cls[r * O + c] = o[c] > 0.0f;
            }
        }
    }
    if (to_npy) {
        int64_t shape[3] = {ex.n, per, O};
        int64_t oshape[2] = {ex.n, O};
        if (out_seq) st = write_npy(out_path, "<f4", 3, shape, outs, sizeof(float) * rows * O);
        else st = write_npy(out_path, "<f4", 2, oshape, outs, sizeof(float) * rows * O);
        if (!st && ncls) {
            size_t k = strlen(out_path) - 4;
            cls_path = cn_malloc(k + sizeof ".class.npy");
            if (!cls_path) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
            memcpy(cls_path, out_path, k);
            memcpy(cls_path + k, ".class.npy", sizeof ".class.npy");
            int64_t cshape[3];
            int cnd = 0;
            cshape[cnd++] = ex.n;
            if (out_seq) cshape[cnd++] = per;
            if (bce) cshape[cnd++] = O;
            st = write_npy(cls_path, "<i8", cnd, cshape, cls, sizeof(int64_t) * rows * (size_t)ncls);
        }
        if (st) goto done;
    } else {
        char num[64];
        put(&tb, out_seq ? "example,step" : "example");
        for (int c = 0; c < O; c++) { snprintf(num, sizeof num, ",out%d", c); put(&tb, num); }
        if (ce || (bce && O == 1)) put(&tb, ",class");
        else if (bce) for (int c = 0; c < O; c++) { snprintf(num, sizeof num, ",class%d", c); put(&tb, num); }
        put(&tb, "\n");
        for (size_t r = 0; r < rows; r++) {
            if (out_seq) snprintf(num, sizeof num, "%zu,%zu", r / (size_t)per, r % (size_t)per);
            else snprintf(num, sizeof num, "%zu", r);
            put(&tb, num);
            for (int c = 0; c < O; c++) {
                put(&tb, ",");
                cn_fmt_num(num, sizeof num, outs[r * O + c]);
                put(&tb, num);
            }
            for (int c = 0; c < ncls; c++) {
                snprintf(num, sizeof num, ",%lld", (long long)cls[r * (size_t)ncls + c]);
                put(&tb, num);
            }
            put(&tb, "\n");
        }
        if (tb.err) { st = cn_error(CN_ERR_NOMEM, "out of memory writing the predictions"); goto done; }
        if (out_path) st = cn_write_file_atomic(out_path, tb.buf, tb.len);
        else if (fwrite(tb.buf, 1, tb.len, out) != tb.len || fflush(out))
            st = cn_error(CN_ERR_IO, "cannot write the predictions to standard output");
        if (st) goto done;
    }
    *n_examples = ex.n;
done:
    cn_free(tb.buf);
    cn_free(cls_path);
    cn_free(cls);
    cn_free(outs);
    cn_free(xb);
    cn_free(ex.x);
    cn_session_close(&s);
    return st;
}
