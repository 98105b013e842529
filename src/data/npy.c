/* NumPy .npy reader and the "npy" data kind.
 *
 * Format (numpy.lib.format, versions 1.0, 2.0, 3.0):
 *   "\x93NUMPY" major minor | header length (uint16 LE for 1.x, uint32 LE for 2.x/3.x) | header | data
 * The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ended by '\n' (3.0 allows UTF-8 in it). Data follows in C or Fortran order. */
#include "data/internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io/files.h"
#include "json/json.h"

void cn_npy_free(cn_npy *a)
{
    if (!a) return;
    cn_free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- header dict parser ---- */
typedef struct {
    const char *p, *end;
    const char *file;
} hparser;

static void skip_ws(hparser *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

static cn_status hbad(const hparser *h, const char *what)
{
    return cn_error(CN_ERR_FORMAT, "%s: bad header dict: %s", h->file, what);
}

/* A quoted Python string ('...' or "...") without escapes, into out. */
static cn_status parse_str(hparser *h, char *out, size_t n, const char *what)
{
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) {
        char m[96];
        snprintf(m, sizeof m, "expected a quoted string for %s", what);
        return hbad(h, m);
    }
    char q = *h->p++;
    size_t k = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || k + 1 >= n) {
            char m[96];
            snprintf(m, sizeof m, "%s is too long or holds escapes", what);
            return hbad(h, m);
        }
        out[k++] = *h->p++;
    }
    if (h->p >= h->end) return hbad(h, "unterminated string");
    h->p++;
    out[k] = 0;
    return CN_OK;
}

static int accept(hparser *h, char c)
{
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return 1;
    }
    return 0;
}

static cn_status parse_shape(hparser *h, cn_npy *a)
{
    if (!accept(h, '(')) return hbad(h, "'shape' must be a tuple such as (3, 4)");
    a->ndim = 0;
    for (;;) {
        if (accept(h, ')')) break;
        skip_ws(h);
        if (h->p >= h->end || *h->p < '0' || *h->p > '9') return hbad(h, "'shape' must hold non-negative integers");
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return hbad(h, "a 'shape' dimension is too large");
            v = v * 10 + (*h->p++ - '0');
        }
        if (h->p < h->end && *h->p == 'L') h->p++;   /* Python 2 long literal */
        if (a->ndim == 8) return hbad(h, "'shape' has more than 8 dimensions");
        a->shape[a->ndim++] = v;
        if (accept(h, ',')) continue;
        if (accept(h, ')')) break;
        return hbad(h, "expected ',' or ')' in 'shape'");
    }
    return CN_OK;
}

/* Maps a descr such as '<f4' to kind/itemsize, or explains why it is not supported. */
static cn_status parse_descr(const char *file, const char *d, cn_npy *a)
{
    static const char *const supported = "supported: '<f4' (float32), '<f8' (float64), '<i4' (int32), '<i8' (int64)";
    char bo = d[0];
    const char *t = (bo == '<' || bo == '>' || bo == '|' || bo == '=') ? d + 1 : d;
    if (bo == '>')
        return cn_error(CN_ERR_FORMAT, "%s: unsupported dtype '%s' (big-endian; save it with arr.astype('<%s')); %s",
                        file, d, t, supported);
    if ((bo == '<' || bo == '=') && (!strcmp(t, "f4") || !strcmp(t, "f8") || !strcmp(t, "i4") || !strcmp(t, "i8"))) {
        a->kind = t[0];
        a->itemsize = t[1] - '0';
        return CN_OK;
    }
    const char *name = "";
    switch (t[0]) {
    case 'c': name = " (complex)"; break;
    case 'u': name = " (unsigned integer)"; break;
    case 'b': case '?': name = " (bool)"; break;
    case 'f': name = " (float of another width)"; break;
    case 'i': name = " (integer of another width)"; break;
    case 'U': case 'S': case 'a': name = " (string)"; break;
    case 'O': name = " (Python objects)"; break;
    case 'M': case 'm': name = " (datetime)"; break;
    case 'V': name = " (void/structured)"; break;
    }
    return cn_error(CN_ERR_FORMAT, "%s: unsupported dtype '%s'%s; %s", file, d, name, supported);
}

static cn_status parse_header(const char *file, const char *hdr, size_t len, cn_npy *a, int *fortran)
{
    hparser h = {hdr, hdr + len, file};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    char descr[64];
    if (!accept(&h, '{')) return hbad(&h, "does not start with '{'");
    for (;;) {
        if (accept(&h, '}')) break;
        char key[32];
        cn_status st = parse_str(&h, key, sizeof key, "a key");
        if (st) return st;
        if (!accept(&h, ':')) return hbad(&h, "expected ':' after a key");
        if (!strcmp(key, "descr")) {
            if (have_descr++) return hbad(&h, "'descr' given twice");
            skip_ws(&h);
            if (h.p < h.end && *h.p == '[')
                return cn_error(CN_ERR_FORMAT, "%s: structured dtypes (a 'descr' list) are not supported", file);
            if ((st = parse_str(&h, descr, sizeof descr, "'descr'"))) return st;
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran++) return hbad(&h, "'fortran_order' given twice");
            skip_ws(&h);
            if ((size_t)(h.end - h.p) >= 4 && !memcmp(h.p, "True", 4)) { *fortran = 1; h.p += 4; }
            else if ((size_t)(h.end - h.p) >= 5 && !memcmp(h.p, "False", 5)) { *fortran = 0; h.p += 5; }
            else return hbad(&h, "'fortran_order' must be True or False");
        } else if (!strcmp(key, "shape")) {
            if (have_shape++) return hbad(&h, "'shape' given twice");
            if ((st = parse_shape(&h, a))) return st;
        } else {
            char m[96];
            snprintf(m, sizeof m, "unexpected key '%s' (expected descr, fortran_order, shape)", key);
            return hbad(&h, m);
        }
        if (accept(&h, ',')) continue;
        if (accept(&h, '}')) break;
        return hbad(&h, "expected ',' or '}'");
    }
    skip_ws(&h);
    if (h.p != h.end) return hbad(&h, "text after the closing '}'");
    if (!have_descr || !have_fortran || !have_shape)
        return hbad(&h, !have_descr ? "missing 'descr'" : !have_fortran ? "missing 'fortran_order'" : "missing 'shape'");
    return parse_descr(file, descr, a);
}

static int host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

cn_status cn_npy_read(const char *file, cn_npy *out)
{
    memset(out, 0, sizeof *out);
    int fd;
    cn_status ost = cn_open_input(file, &fd);   /* a regular file, opened without blocking on a FIFO */
    if (ost) return ost;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        ost = cn_error(CN_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
        close(fd);
        return ost;
    }
    cn_status st = CN_OK;
    char *hdr = NULL;
    unsigned char pre[12];
    size_t got = fread(pre, 1, 8, f);
    if (got < 8 && ferror(f)) {   /* a read error, not "bad magic" */
        st = cn_error(CN_ERR_IO, "%s: cannot read: %s", file, strerror(errno));
        goto done;
    }
    if (got >= 2 && pre[0] == 'P' && pre[1] == 'K') {
        st = cn_error(CN_ERR_FORMAT, "%s: bad magic: this is a zip archive (.npz?); save each array with np.save", file);
        goto done;
    }
    if (got < 6 || memcmp(pre, "\x93NUMPY", 6)) {
        st = cn_error(CN_ERR_FORMAT, "%s: bad magic: not a NumPy .npy file (expected \"\\x93NUMPY\")", file);
        goto done;
    }
    if (got < 8) {
        st = cn_error(CN_ERR_FORMAT, "%s: truncated in the preamble", file);
        goto done;
    }
    int major = pre[6];
    if (major < 1 || major > 3) {
        st = cn_error(CN_ERR_FORMAT, "%s: unsupported .npy format version %d.%d (supported: 1.0, 2.0, 3.0)", file,
                      major, pre[7]);
        goto done;
    }
    size_t lenbytes = major == 1 ? 2 : 4;
    if (fread(pre + 8, 1, lenbytes, f) != lenbytes) {
        st = cn_error(CN_ERR_FORMAT, "%s: truncated in the preamble", file);
        goto done;
    }
    size_t hlen = major == 1 ? (size_t)pre[8] | (size_t)pre[9] << 8
                             : (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    if (hlen > ((size_t)1 << 24)) {
        st = cn_error(CN_ERR_FORMAT, "%s: bad header: claimed length %zu bytes is implausible", file, hlen);
        goto done;
    }
    hdr = cn_malloc(hlen + 1);
    if (!hdr) {
        st = cn_error(CN_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        st = cn_error(CN_ERR_FORMAT, "%s: truncated: the header should be %zu bytes", file, hlen);
        goto done;
    }
    hdr[hlen] = 0;
    int fortran = 0;
    if ((st = parse_header(file, hdr, hlen, out, &fortran))) goto done;
    if (fortran) {
        st = cn_error(CN_ERR_FORMAT, "%s: fortran_order is True; only C order is supported "
                      "(save np.ascontiguousarray(arr))", file);
        goto done;
    }
    if (out->ndim == 0) {
        st = cn_error(CN_ERR_FORMAT, "%s: holds a scalar (shape ()); expected an array", file);
        goto done;
    }
    size_t numel = 1;
    for (int i = 0; i < out->ndim; i++) {
        if ((uint64_t)out->shape[i] > CN_DATA_MAX_ELEMS || (numel && (size_t)out->shape[i] > CN_DATA_MAX_ELEMS / numel)) {
            st = cn_error(CN_ERR_FORMAT, "%s: shape too large (more than %zu elements)", file, CN_DATA_MAX_ELEMS);
            goto done;
        }
        numel *= (size_t)out->shape[i];
    }
    out->numel = numel;
    size_t nbytes = numel * (size_t)out->itemsize;
    /* Compare with what the file holds BEFORE allocating: a 100-byte file whose header claims
     * 2^31 float64 must be "truncated", not a 16 GB allocation (found by fuzz/fuzz_npy.c). */
    struct stat sb;
    long pos = ftell(f);
    if (pos >= 0 && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size >= (uint64_t)pos) {
        uint64_t avail = (uint64_t)sb.st_size - (uint64_t)pos;
        if (avail < nbytes) {
            st = cn_error(CN_ERR_FORMAT, "%s: truncated: the header's shape needs %zu data bytes, the file has %llu",
                          file, nbytes, (unsigned long long)avail);
            goto done;
        }
    }
    out->data = cn_malloc(nbytes);
    if (!out->data) {
        st = cn_error(CN_ERR_NOMEM, "%s: out of memory for %zu bytes", file, nbytes);
        goto done;
    }
    got = fread(out->data, 1, nbytes, f);
    if (got != nbytes) {
        st = cn_error(CN_ERR_FORMAT, "%s: truncated: the header's shape needs %zu data bytes, the file has %zu",
                      file, nbytes, got);
        goto done;
    }
    if (fgetc(f) != EOF) {
        st = cn_error(CN_ERR_FORMAT, "%s: more data than the header's shape describes (%zu bytes expected)", file,
                      nbytes);
        goto done;
    }
    if (ferror(f)) {
        st = cn_error(CN_ERR_IO, "%s: read error", file);
        goto done;
    }
    if (!host_little_endian()) {   /* the stored bytes are little-endian */
        unsigned char *p = out->data;
        for (size_t i = 0; i < numel; i++, p += out->itemsize)
            for (int j = 0; j < out->itemsize / 2; j++) {
                unsigned char t = p[j];
                p[j] = p[out->itemsize - 1 - j];
                p[out->itemsize - 1 - j] = t;
            }
    }
done:
    fclose(f);
    cn_free(hdr);
    if (st) cn_npy_free(out);
    return st;
}

/* ---- the "npy" data kind ---- */

static double npy_get(const cn_npy *a, size_t i)
{
    if (a->kind == 'f') {
        if (a->itemsize == 4) { float v; memcpy(&v, (const char *)a->data + 4 * i, 4); return v; }
        double v; memcpy(&v, (const char *)a->data + 8 * i, 8); return v;
    }
    if (a->itemsize == 4) { int32_t v; memcpy(&v, (const char *)a->data + 4 * i, 4); return v; }
    int64_t v; memcpy(&v, (const char *)a->data + 8 * i, 8); return (double)v;
}

/* Takes the array's buffer, shrunk to itemsize bytes per element (the values already there); the
 * array is left empty. */
static void *npy_take(cn_npy *a, size_t itemsize)
{
    void *p = a->data;
    a->data = NULL;
    if (a->itemsize > (int)itemsize && a->numel) {
        void *q = cn_realloc(p, a->numel * itemsize);   /* shrinking: only fails if the allocator does */
        if (q) p = q;
    }
    return p;
}

/* The array as float32 in its own buffer: float32 as it is; float64 and integers converted front to
 * back (element i is written at bytes 4i after it is read at 4i or 8i), then the buffer shrunk. */
static float *npy_take_floats(cn_npy *a)
{
    if (!(a->kind == 'f' && a->itemsize == 4))
        for (size_t i = 0; i < a->numel; i++) {
            float v = (float)npy_get(a, i);
            memcpy((char *)a->data + 4 * i, &v, 4);
        }
    return npy_take(a, 4);
}

static const char *shape_str(const cn_npy *a, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < a->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* Builds one dataset from arrays x and y (already read). jx/jy: "data.x"/"data.y" for messages. */
static cn_status npy_dataset(cn_npy *x, cn_npy *y, const char *jx, const char *jy, const char *fx,
                             const char *fy, cn_dataset *ds)
{
    char s1[96], s2[96];
    memset(ds, 0, sizeof *ds);
    if (x->kind != 'f')
        return cn_error(CN_ERR_FORMAT, "%s: %s: inputs must be float32 or float64, got an integer dtype", jx, fx);
    if (x->ndim != 2 && x->ndim != 3)
        return cn_error(CN_ERR_SHAPE, "%s: %s: shape %s; expected [N, F] or [N, T, F]", jx, fx, shape_str(x, s1, sizeof s1));
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] < 1 || x->shape[i] > 2000000000LL)
            return cn_error(CN_ERR_SHAPE, "%s: %s: shape %s has an empty or huge dimension", jx, fx, shape_str(x, s1, sizeof s1));
    int64_t N = x->shape[0], T = x->ndim == 3 ? x->shape[1] : 0;
    ds->n = (int)N;
    ds->seq_len = (int)T;
    ds->features = (int)x->shape[x->ndim - 1];
    if (y->ndim < 1 || y->shape[0] != N)
        return cn_error(CN_ERR_SHAPE, "%s: %s: shape %s does not match x's %lld examples (x %s is %s)", jy, fy,
                        shape_str(y, s1, sizeof s1), (long long)N, fx, shape_str(x, s2, sizeof s2));
    if (y->kind == 'i') {
        ds->target_kind = CN_TARGET_CLASS;
        ds->target_dim = 1;
        if (y->ndim == 2) {
            if (!T || y->shape[1] != T)
                return cn_error(CN_ERR_SHAPE, "%s: %s: labels %s are per step but x %s is %s (need [N, T, F] with the same T)",
                                jy, fy, shape_str(y, s1, sizeof s1), fx, shape_str(x, s2, sizeof s2));
            ds->target_seq = 1;
        } else if (y->ndim != 1) {
            return cn_error(CN_ERR_SHAPE, "%s: %s: class labels must be [N] or [N, T], got %s", jy, fy, shape_str(y, s1, sizeof s1));
        }
    } else {
        ds->target_kind = CN_TARGET_FLOAT;
        if (y->ndim == 1) ds->target_dim = 1;
        else if (y->ndim == 2) ds->target_dim = (int)y->shape[1];
        else if (y->ndim == 3) {
            if (!T || y->shape[1] != T)
                return cn_error(CN_ERR_SHAPE, "%s: %s: targets %s are per step but x %s is %s (need [N, T, F] with the same T)",
                                jy, fy, shape_str(y, s1, sizeof s1), fx, shape_str(x, s2, sizeof s2));
            ds->target_seq = 1;
            ds->target_dim = (int)y->shape[2];
        } else {
            return cn_error(CN_ERR_SHAPE, "%s: %s: float targets must be [N], [N, D] or [N, T, D], got %s", jy, fy,
                            shape_str(y, s1, sizeof s1));
        }
        if (ds->target_dim < 1) return cn_error(CN_ERR_SHAPE, "%s: %s: empty target dimension in %s", jy, fy, shape_str(y, s1, sizeof s1));
    }
    /* The arrays' buffers become the dataset's, narrowed in place: the data set is held once, never as
       the file's array and a converted copy side by side. */
    int wide = x->itemsize == 8;
    ds->x = npy_take_floats(x);
    for (size_t i = 0; i < x->numel; i++) {
        float v = ds->x[i];
        if (!isfinite(v))
            return cn_error(CN_ERR_FORMAT, "%s: %s: element %zu is %s%s", jx, fx, i, isnan(v) ? "NaN" : "infinite",
                            wide && !isnan(v) ? " (or beyond float32's range)" : "");
    }
    if (ds->target_kind == CN_TARGET_FLOAT) {
        ds->y = npy_take_floats(y);
        for (size_t i = 0; i < y->numel; i++) {
            float v = ds->y[i];
            if (!isfinite(v))
                return cn_error(CN_ERR_FORMAT, "%s: %s: element %zu is %s", jy, fy, i, isnan(v) ? "NaN" : "infinite");
        }
    } else {
        int maxl = -1;
        for (size_t i = 0; i < y->numel; i++) {
            double v = npy_get(y, i);
            if (v < 0 || v > 100000000.0)
                return cn_error(CN_ERR_FORMAT, "%s: %s: label %.0f at element %zu; class labels must be in [0, 1e8]",
                                jy, fy, v, i);
            int32_t l = (int32_t)v;   /* in place: element i goes to bytes 4i, after element i was read */
            memcpy((char *)y->data + 4 * i, &l, 4);
            if (l > maxl) maxl = l;
        }
        ds->labels = npy_take(y, 4);
        ds->n_classes = maxl + 1;
    }
    return CN_OK;
}

/* Reads one array named by key (a file path); *present = 0 when the key is optional and null/absent. */
static cn_status npy_key(cJSON *obj, const char *path, const char *key, int required, const char *base_dir,
                         char *file, size_t fn, cn_npy *a, int *present)
{
    char jp[128];
    cn_json_join(jp, sizeof jp, path, key);
    *present = 0;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!required && (!v || cJSON_IsNull(v))) return v ? CN_OK : cn_json_set(obj, key, cJSON_CreateNull());
    const char *name;
    cn_status st = cn_json_string(obj, path, key, 1, NULL, NULL, &name);
    if (st) return st;
    if ((st = cn_data_resolve(file, fn, base_dir, name, jp))) return st;
    if ((st = cn_npy_read(file, a))) return cn_error_prefix(st, "%s", jp);
    *present = 1;
    return CN_OK;
}

cn_status cn_data_load_npy(cJSON *obj, const char *path, const char *base_dir, cn_data *out)
{
    static const char *const allowed[] = {"kind", "shuffle", "x", "y", "test_x", "test_y", NULL};
    cn_status st = cn_json_check_keys(obj, path, allowed);
    if (st) return st;
    const char *keys[4] = {"x", "y", "test_x", "test_y"};
    char files[4][1024], jp[4][128];
    cn_npy a[4];
    int present[4] = {0};
    memset(a, 0, sizeof a);
    for (int k = 0; k < 4 && !st; k++) {
        cn_json_join(jp[k], sizeof jp[k], path, keys[k]);
        st = npy_key(obj, path, keys[k], k < 2, base_dir, files[k], sizeof files[k], &a[k], &present[k]);
    }
    if (!st && present[2] != present[3])
        st = cn_error(CN_ERR_ARG, "%s: test_x and test_y must be given together", path);
    if (!st) st = npy_dataset(&a[0], &a[1], jp[0], jp[1], files[0], files[1], &out->train);
    if (!st && present[2]) {
        st = npy_dataset(&a[2], &a[3], jp[2], jp[3], files[2], files[3], &out->test);
        cn_dataset *tr = &out->train, *te = &out->test;
        if (!st && (te->seq_len != tr->seq_len || te->features != tr->features))
            st = cn_error(CN_ERR_SHAPE, "%s: %s: %d steps x %d features, but the train x has %d x %d", jp[2], files[2],
                          te->seq_len, te->features, tr->seq_len, tr->features);
        if (!st && (te->target_kind != tr->target_kind || te->target_seq != tr->target_seq ||
                    te->target_dim != tr->target_dim))
            st = cn_error(CN_ERR_SHAPE, "%s: %s: targets differ in kind or shape from the train y", jp[3], files[3]);
        if (!st && tr->target_kind == CN_TARGET_CLASS) {
            int nc = tr->n_classes > te->n_classes ? tr->n_classes : te->n_classes;
            tr->n_classes = te->n_classes = nc;
        }
    }
    for (int k = 0; k < 4; k++) cn_npy_free(&a[k]);
    return st;
}
