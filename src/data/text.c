/* The "text" data kind: character-level language modelling over bytes (windows defined in data.h). */
#include "data/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "json/json.h"

/* Cuts bytes [0, len) into floor((len-1)/T) non-overlapping windows: x = ids of bytes[kT .. kT+T-1],
 * labels = ids of bytes[kT+1 .. kT+T]. */
static cn_status text_windows(const unsigned char *bytes, size_t len, int T, const int *id, int vocab,
                              const char *what, cn_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    size_t n = len > 0 ? (len - 1) / (size_t)T : 0;
    ds->n = (int)n;
    ds->seq_len = T;
    ds->features = 1;
    ds->ids = 1;
    ds->target_kind = CN_TARGET_CLASS;
    ds->target_seq = 1;
    ds->target_dim = 1;
    ds->n_classes = vocab;
    if (n == 0) return CN_OK;
    cn_status st = cn_data_alloc(ds, what);
    if (st) return st;
    for (size_t k = 0; k < n; k++)
        for (int t = 0; t < T; t++) {
            size_t i = k * (size_t)T + (size_t)t;
            ds->x[i] = (float)id[bytes[i]];          // [n, T, 1]
            ds->labels[i] = id[bytes[i + 1]];         // [n, T]
        }
    return CN_OK;
}

cn_status cn_data_load_text(cJSON *obj, const char *path, const char *base_dir, cn_data *out)
{
    static const char *const allowed[] = {"kind", "shuffle", "path", "seq_len", "test_fraction", NULL};
    cn_status st = cn_json_check_keys(obj, path, allowed);
    if (st) return st;
    const char *name;
    long long T;
    double frac;
    if ((st = cn_json_string(obj, path, "path", 1, NULL, NULL, &name))) return st;
    if ((st = cn_json_int(obj, path, "seq_len", 0, 64, 1, 1000000, &T))) return st;
    if ((st = cn_json_number(obj, path, "test_fraction", &(cn_json_num){.def = 0.1, .lo = 0.0, .hi = 1.0, .hi_open = 1}, &frac))) return st;

    char jp[128], file[1024];
    cn_json_join(jp, sizeof jp, path, "path");
    if ((st = cn_data_resolve(file, sizeof file, base_dir, name, jp))) return st;
    unsigned char *buf;
    size_t len;
    if ((st = cn_data_read_file(file, jp, &buf, &len))) return st;

    int id[256], present[256] = {0};
    if (len == 0) {
        st = cn_error(CN_ERR_FORMAT, "%s: \"%s\" is empty", jp, file);
        goto done;
    }
    for (size_t i = 0; i < len; i++) {
        if (!buf[i]) {
            st = cn_error(CN_ERR_FORMAT, "%s: \"%s\" holds a NUL byte at offset %zu: a binary file, not text", jp,
                          file, i);
            goto done;
        }
        present[buf[i]] = 1;
    }
    if (len < (size_t)T + 1) {
        st = cn_error(CN_ERR_FORMAT, "%s: \"%s\" has %zu bytes, fewer than seq_len + 1 = %lld", jp, file, len, T + 1);
        goto done;
    }
    /* Vocabulary: the distinct bytes in increasing order; id = rank. */
    int vocab = 0;
    char *v = cn_malloc(257);
    if (!v) {
        st = cn_error(CN_ERR_NOMEM, "%s: out of memory", jp);
        goto done;
    }
    for (int b = 0; b < 256; b++)
        if (present[b]) {
            id[b] = vocab;
            v[vocab++] = (char)b;
        } else {
            id[b] = -1;
        }
    v[vocab] = 0;
    out->vocab = v;
    out->vocab_size = vocab;

    size_t ntest = (size_t)llround(frac * (double)len);
    size_t ntrain = len - ntest;
    if (ntrain < (size_t)T + 1) {
        st = cn_error(CN_ERR_ARG, "%s.test_fraction: leaves %zu bytes of \"%s\" for training, fewer than seq_len + 1 "
                      "= %lld", path, ntrain, file, T + 1);
        goto done;
    }
    if (ntest > 0 && ntest < (size_t)T + 1) {
        st = cn_error(CN_ERR_ARG, "%s.test_fraction: the test part of \"%s\" is %zu bytes, fewer than seq_len + 1 = "
                      "%lld (use 0 for no test set, a larger fraction or a smaller seq_len)", path, file, ntest, T + 1);
        goto done;
    }
    char what[160];
    snprintf(what, sizeof what, "%s: train windows", jp);
    if ((st = text_windows(buf, ntrain, (int)T, id, vocab, what, &out->train))) goto done;
    snprintf(what, sizeof what, "%s: test windows", jp);
    st = text_windows(buf + ntrain, ntest, (int)T, id, vocab, what, &out->test);
done:
    cn_free(buf);
    return st;
}
