/* safetensors reader and writer; the format and the checks are described in
 * safetensors.h. The reader parses untrusted bytes: every number taken from the
 * header is range-checked in uint64 arithmetic before it is used as a size or
 * an offset, and the data section is only touched after the layout is proven to
 * tile it exactly. */
#include "io/safetensors.h"
#include "io/files.h"
#include "json/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

struct cn_st_file {
    cn_state tensors;       /* views into `data` or into `copies[i]` */
    cJSON *meta;            /* the __metadata__ object (owned) */
    unsigned char *data;    /* the data section, 64-byte aligned (owned) */
    void **copies;          /* aligned copies of tensors at misaligned offsets */
    int ncopies;
};

/* Largest integer a JSON number (a double in cJSON) holds exactly: 2^53. */
#define MAX_EXACT_INT 9007199254740992.0

static int host_is_little_endian(void)
{
    uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ------------------------------------------------------------------ messages */

/* Copies at most 80 bytes of an untrusted string for a message, replacing control
 * bytes so that a hostile name cannot garble the terminal. */
static const char *show(const char *s, char *buf, size_t n)
{
    size_t i = 0;
    if (!s) s = "(null)";
    for (; s[i] && i + 4 < n && i < 80; i++) buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (s[i]) { memcpy(buf + i, "...", 3); i += 3; }
    buf[i] = 0;
    return buf;
}

/* "<file>: <message>" with status CN_ERR_FORMAT. */
static cn_status fmt_error(const char *file, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static cn_status fmt_error(const char *file, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cn_error(CN_ERR_FORMAT, "%s: %s", file, msg);
}

/* ---------------------------------------------------------------- UTF-8 scan */

/* Returns the offset of the first byte that is not part of valid UTF-8 (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF), or n if all valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return i;
        if (n - i <= k) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t j = 2; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return i;
        i += k + 1;
    }
    return n;
}

/* ------------------------------------------------------------------- writer */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = cn_realloc(b->p, cap);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%" PRIu64, v);
    sb_puts(b, t);
}

/* A JSON string literal (RFC 8259 §7): escapes '"', '\\' and control characters;
 * other bytes (already checked to be UTF-8) pass through. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char t[8];
        if (*p == '"') sb_put(b, "\\\"", 2);
        else if (*p == '\\') sb_put(b, "\\\\", 2);
        else if (*p < 0x20) { snprintf(t, sizeof t, "\\u%04x", *p); sb_put(b, t, 6); }
        else sb_put(b, (const char *)p, 1);
    }
    sb_put(b, "\"", 1);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks the items and metadata and renders the header (padded with spaces so
 * that its length is a multiple of 8). */
static cn_status build_header(const char *path, const cn_state *t, const cJSON *meta, sbuf *h)
{
    char sh[96];
    if (meta) {
        if (!cJSON_IsObject(meta)) return cn_error(CN_ERR_ARG, "%s: metadata must be a JSON object", path);
        for (const cJSON *m = meta->child; m; m = m->next) {
            if (!m->string || utf8_invalid_at((const unsigned char *)m->string, strlen(m->string)) != strlen(m->string))
                return cn_error(CN_ERR_ARG, "%s: metadata key '%s' is not valid UTF-8", path, show(m->string, sh, sizeof sh));
            if (!cJSON_IsString(m) || !m->valuestring)
                return cn_error(CN_ERR_ARG, "%s: metadata '%s' must be a string (safetensors metadata maps strings to strings)",
                                path, show(m->string, sh, sizeof sh));
            size_t n = strlen(m->valuestring);
            if (utf8_invalid_at((const unsigned char *)m->valuestring, n) != n)
                return cn_error(CN_ERR_ARG, "%s: metadata '%s': value is not valid UTF-8", path, show(m->string, sh, sizeof sh));
        }
    }
    for (int i = 0; i < t->count; i++) {
        const cn_state_item *it = &t->items[i];
        if (!it->name) return cn_error(CN_ERR_ARG, "%s: tensor %d has no name", path, i);
        size_t n = strlen(it->name);
        if (utf8_invalid_at((const unsigned char *)it->name, n) != n)
            return cn_error(CN_ERR_ARG, "%s: tensor name '%s' is not valid UTF-8", path, show(it->name, sh, sizeof sh));
        if (!strcmp(it->name, "__metadata__"))
            return cn_error(CN_ERR_ARG, "%s: a tensor may not be named __metadata__ (reserved by the format)", path);
        if ((int)it->dtype < CN_DT_F32 || it->dtype > CN_DT_I64)
            return cn_error(CN_ERR_ARG, "%s: tensor '%s': invalid dtype %d", path, show(it->name, sh, sizeof sh), (int)it->dtype);
        if (it->ndim < 0 || it->ndim > 4)
            return cn_error(CN_ERR_ARG, "%s: tensor '%s': rank %d outside 0..4", path, show(it->name, sh, sizeof sh), it->ndim);
        uint64_t numel = 1;
        for (int d = 0; d < it->ndim; d++) {
            if (it->shape[d] < 0)
                return cn_error(CN_ERR_ARG, "%s: tensor '%s': shape[%d] = %" PRId64 " is negative", path,
                                show(it->name, sh, sizeof sh), d, it->shape[d]);
            uint64_t s = (uint64_t)it->shape[d];
            if (s && numel > UINT64_MAX / 8 / s)
                return cn_error(CN_ERR_ARG, "%s: tensor '%s': too many elements", path, show(it->name, sh, sizeof sh));
            numel *= s;
        }
        if (numel && !it->data)
            return cn_error(CN_ERR_ARG, "%s: tensor '%s' has no data", path, show(it->name, sh, sizeof sh));
    }
    /* Duplicate names would make the file unreadable (the reader rejects them). */
    if (t->count > 1) {
        const char **names = cn_malloc(sizeof *names * (size_t)t->count);
        if (!names) return cn_error(CN_ERR_NOMEM, "%s: out of memory", path);
        for (int i = 0; i < t->count; i++) names[i] = t->items[i].name;
        qsort(names, (size_t)t->count, sizeof *names, cmp_str_ptr);
        for (int i = 1; i < t->count; i++)
            if (!strcmp(names[i - 1], names[i])) {
                cn_status st = cn_error(CN_ERR_ARG, "%s: tensor '%s' appears twice", path, show(names[i], sh, sizeof sh));
                cn_free(names);
                return st;
            }
        cn_free(names);
    }
    if (meta)
        for (const cJSON *m = meta->child; m; m = m->next)
            for (const cJSON *p = meta->child; p != m; p = p->next)
                if (!strcmp(p->string, m->string))
                    return cn_error(CN_ERR_ARG, "%s: metadata key '%s' appears twice", path, show(m->string, sh, sizeof sh));

    /* The same layout as the reference writer: __metadata__ first, then the
     * tensors; each entry dtype, shape, data_offsets; compact. */
    sb_puts(h, "{");
    int first = 1;
    if (meta) {
        sb_puts(h, "\"__metadata__\":{");
        for (const cJSON *m = meta->child; m; m = m->next) {
            if (m != meta->child) sb_puts(h, ",");
            sb_json_string(h, m->string);
            sb_puts(h, ":");
            sb_json_string(h, m->valuestring);
        }
        sb_puts(h, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < t->count; i++) {
        const cn_state_item *it = &t->items[i];
        uint64_t nbytes = (uint64_t)cn_state_item_numel(it) * cn_dtype_size(it->dtype);
        if (!first) sb_puts(h, ",");
        first = 0;
        sb_json_string(h, it->name);
        sb_puts(h, ":{\"dtype\":\"");
        sb_puts(h, cn_dtype_name(it->dtype));
        sb_puts(h, "\",\"shape\":[");
        for (int d = 0; d < it->ndim; d++) {
            if (d) sb_puts(h, ",");
            sb_u64(h, (uint64_t)it->shape[d]);
        }
        sb_puts(h, "],\"data_offsets\":[");
        sb_u64(h, off);
        sb_puts(h, ",");
        sb_u64(h, off + nbytes);
        sb_puts(h, "]}");
        off += nbytes;
    }
    sb_puts(h, "}");
    while (!h->oom && h->len % 8) sb_puts(h, " ");
    if (h->oom) return cn_error(CN_ERR_NOMEM, "%s: out of memory for the header", path);
    if (h->len > CN_ST_MAX_HEADER)
        return cn_error(CN_ERR_ARG, "%s: header of %zu bytes exceeds the %" PRIu64 "-byte limit of safetensors readers", path,
                        h->len, CN_ST_MAX_HEADER);
    return CN_OK;
}

cn_status cn_st_write(const char *path, const cn_state *tensors, const cJSON *metadata)
{
    if (!path || !tensors) return cn_error(CN_ERR_ARG, "cn_st_write: path and tensors are required");
    if (!host_is_little_endian())
        return cn_error(CN_ERR_STATE, "%s: safetensors stores little-endian data; this host is big-endian", path);

    sbuf h = {0};
    cn_status st = build_header(path, tensors, metadata, &h);
    if (st != CN_OK) { cn_free(h.p); return st; }

    /* temporary file + fsync + rename + directory fsync: a reader never sees half a checkpoint */
    cn_atomic_file af;
    if ((st = cn_atomic_open(&af, path)) != CN_OK) { cn_free(h.p); return st; }
    unsigned char len8[8];
    uint64_t n = h.len;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));   /* u64 little-endian */
    st = cn_atomic_write(&af, len8, 8);
    if (!st) st = cn_atomic_write(&af, h.p, h.len);
    for (int i = 0; i < tensors->count && !st; i++) {
        const cn_state_item *it = &tensors->items[i];
        size_t nbytes = cn_state_item_numel(it) * cn_dtype_size(it->dtype);
        if (nbytes) st = cn_atomic_write(&af, it->data, nbytes);
    }
    cn_free(h.p);
    if (!st) st = cn_atomic_commit(&af);   /* a failed write has already released `af` */
    return st;
}

/* ------------------------------------------------------------------- reader */

typedef struct {
    const char *name;
    cn_dtype dtype;
    int ndim;
    int64_t shape[4];
    uint64_t begin, end;
} entry;

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp((*(const entry *const *)a)->name, (*(const entry *const *)b)->name);
}

static int cmp_entry_offset(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= MAX_EXACT_INT) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static const char *dtype_names[] = {"F32", "F64", "I32", "I64"};

/* Checks one header entry and fills *e. */
static cn_status parse_entry(const char *file, const cJSON *v, uint64_t dlen, entry *e)
{
    char sn[96], d[96];
    const char *nm = show(v->string, sn, sizeof sn);
    e->name = v->string;
    if (!cJSON_IsObject(v))
        return fmt_error(file, "tensor '%s': expected an object {dtype, shape, data_offsets}, got %s", nm,
                         cn_json_describe(v, d, sizeof d));
    const cJSON *dt = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *k = v->child; k; k = k->next) {
        const cJSON **slot = !strcmp(k->string, "dtype") ? &dt
                           : !strcmp(k->string, "shape") ? &shape
                           : !strcmp(k->string, "data_offsets") ? &offs : NULL;
        if (!slot) return fmt_error(file, "tensor '%s': unknown key '%s' (expected dtype, shape, data_offsets)", nm,
                                    show(k->string, d, sizeof d));
        if (*slot) return fmt_error(file, "tensor '%s': key '%s' appears twice", nm, k->string);
        *slot = k;
    }
    if (!dt) return fmt_error(file, "tensor '%s': missing 'dtype'", nm);
    if (!shape) return fmt_error(file, "tensor '%s': missing 'shape'", nm);
    if (!offs) return fmt_error(file, "tensor '%s': missing 'data_offsets'", nm);

    if (!cJSON_IsString(dt)) return fmt_error(file, "tensor '%s': dtype must be a string, got %s", nm, cn_json_describe(dt, d, sizeof d));
    int found = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(dt->valuestring, dtype_names[i])) found = i;
    if (found < 0)
        return fmt_error(file, "tensor '%s': dtype %s is not supported (clipnn reads F32, F64, I32, I64)", nm,
                         cn_json_describe(dt, d, sizeof d));
    e->dtype = (cn_dtype)found;

    if (!cJSON_IsArray(shape)) return fmt_error(file, "tensor '%s': shape must be an array, got %s", nm, cn_json_describe(shape, d, sizeof d));
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > 4) return fmt_error(file, "tensor '%s': rank %d is not supported (clipnn handles rank 0 to 4)", nm, ndim);
    e->ndim = ndim;
    uint64_t numel = 1;
    int i = 0;
    int overflow = 0;
    for (const cJSON *s = shape->child; s; s = s->next, i++) {
        uint64_t v64;
        if (!json_uint(s, &v64))
            return fmt_error(file, "tensor '%s': shape[%d] is %s, expected a non-negative integer", nm, i,
                             cn_json_describe(s, d, sizeof d));
        e->shape[i] = (int64_t)v64;
        if (v64 && numel > UINT64_MAX / v64) overflow = 1;
        else numel *= v64;
    }
    uint64_t esize = cn_dtype_size(e->dtype);
    if (overflow || numel > UINT64_MAX / esize)
        return fmt_error(file, "tensor '%s': the shape's element count overflows 64 bits", nm);
    uint64_t nbytes = numel * esize;

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return fmt_error(file, "tensor '%s': data_offsets must be an array [begin, end], got %s", nm,
                         cJSON_IsArray(offs) ? "an array of another length" : cn_json_describe(offs, d, sizeof d));
    if (!json_uint(offs->child, &e->begin) || !json_uint(offs->child->next, &e->end))
        return fmt_error(file, "tensor '%s': data_offsets must be non-negative integers", nm);
    if (e->end < e->begin)
        return fmt_error(file, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] are out of order (end before begin)", nm,
                         e->begin, e->end);
    if (e->end > dlen)
        return fmt_error(file, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] run past the end of the data section (%" PRIu64
                         " bytes; file truncated?)", nm, e->begin, e->end, dlen);
    if (e->end - e->begin != nbytes)
        return fmt_error(file, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64 " bytes but %s with %" PRIu64
                         " elements needs %" PRIu64, nm, e->begin, e->end, e->end - e->begin, dtype_names[found], numel, nbytes);
    return CN_OK;
}

/* Scans the raw header bytes: no NUL bytes, valid UTF-8 (the reference reader
 * requires it), and no \u0000 escape (it would silently cut a name short in cJSON). */
static cn_status scan_header(const char *file, const unsigned char *h, size_t n)
{
    if (memchr(h, 0, n)) return fmt_error(file, "header contains a NUL byte at byte %zu", (size_t)((const unsigned char *)memchr(h, 0, n) - h));
    size_t bad = utf8_invalid_at(h, n);
    if (bad != n) return fmt_error(file, "header is not valid UTF-8 (byte %zu of the header)", bad);
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) { if (h[i] == '"') in_str = 1; continue; }
        if (h[i] == '"') in_str = 0;
        else if (h[i] == '\\') {
            if (i + 5 < n && h[i + 1] == 'u' && !memcmp(h + i + 2, "0000", 4))
                return fmt_error(file, "header contains an escaped NUL character (\\u0000) at byte %zu", i);
            i++;   /* skip the escaped character */
        }
    }
    return CN_OK;
}

void cn_st_close(cn_st_file *f)
{
    if (!f) return;
    cn_state_free(&f->tensors);
    cJSON_Delete(f->meta);
    cn_free_aligned(f->data);
    for (int i = 0; i < f->ncopies; i++) cn_free_aligned(f->copies[i]);
    cn_free(f->copies);
    cn_free(f);
}

/* Validates the header `hdr` (n bytes, NUL-terminated) against a data section of
 * dlen bytes and builds the file object. Takes ownership of `data` in all cases. */
static cn_status parse_core(const char *file, const char *hdr, size_t n, unsigned char *data, uint64_t dlen, cn_st_file **out)
{
    cn_status st = CN_OK;
    cJSON *root = NULL;
    entry *ents = NULL;
    entry **order = NULL;
    char sn[96], sn2[96], d[96];

    cn_st_file *f = cn_calloc(1, sizeof *f);
    if (!f) { cn_free_aligned(data); return cn_error(CN_ERR_NOMEM, "%s: out of memory", file); }
    f->data = data;

    if ((st = scan_header(file, (const unsigned char *)hdr, n)) != CN_OK) goto done;
    /* The reference reader requires the header to start with '{' (no BOM, no spaces). */
    if (n == 0 || hdr[0] != '{') {
        char near[32];
        st = fmt_error(file, "header is not a JSON object (it must start with '{', found \"%s\"; not a safetensors file?)",
                       show(hdr, near, sizeof near));
        goto done;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, n, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t pos = at && at >= hdr && at <= hdr + n ? (size_t)(at - hdr) : 0;
        char near[32];
        show(hdr + pos, near, sizeof near);
        st = fmt_error(file, "header is not valid JSON (error at byte %zu of %zu, near \"%s\")", pos, n, near);
        goto done;
    }
    if (!cJSON_IsObject(root)) { st = fmt_error(file, "header is not a JSON object"); goto done; }
    for (size_t i = end ? (size_t)(end - hdr) : n; i < n; i++)
        if (hdr[i] != ' ' && hdr[i] != '\t' && hdr[i] != '\n' && hdr[i] != '\r') {
            st = fmt_error(file, "unexpected characters after the header's JSON object at byte %zu (only space padding may follow)", i);
            goto done;
        }

    int count = 0;
    const cJSON *meta = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (!strcmp(c->string, "__metadata__")) {
            if (meta) { st = fmt_error(file, "__metadata__ appears twice in the header"); goto done; }
            meta = c;
        } else count++;
    }
    if (meta) {
        if (!cJSON_IsObject(meta)) { st = fmt_error(file, "__metadata__ must be an object, got %s", cn_json_describe(meta, d, sizeof d)); goto done; }
        for (const cJSON *m = meta->child; m; m = m->next) {
            if (!cJSON_IsString(m)) {
                st = fmt_error(file, "__metadata__ '%s': value must be a string, got %s", show(m->string, sn, sizeof sn),
                               cn_json_describe(m, d, sizeof d));
                goto done;
            }
        }
        /* Duplicate keys (cJSON keeps both): sort the keys, compare neighbours. */
        int nm = cJSON_GetArraySize(meta);
        const char **keys = cn_malloc(sizeof *keys * (size_t)(nm + 1));
        if (!keys) { st = cn_error(CN_ERR_NOMEM, "%s: out of memory", file); goto done; }
        int j = 0;
        for (const cJSON *m = meta->child; m; m = m->next) keys[j++] = m->string;
        qsort(keys, (size_t)nm, sizeof *keys, cmp_str_ptr);
        for (j = 1; j < nm; j++)
            if (!strcmp(keys[j - 1], keys[j])) {
                st = fmt_error(file, "__metadata__ key '%s' appears twice", show(keys[j], sn, sizeof sn));
                break;
            }
        cn_free(keys);
        if (st != CN_OK) goto done;
    }

    ents = cn_calloc((size_t)count + 1, sizeof *ents);
    order = cn_calloc((size_t)count + 1, sizeof *order);
    if (!ents || !order) { st = cn_error(CN_ERR_NOMEM, "%s: out of memory for %d tensors", file, count); goto done; }
    int k = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == meta) continue;
        if ((st = parse_entry(file, c, dlen, &ents[k])) != CN_OK) goto done;
        order[k] = &ents[k];
        k++;
    }

    /* Duplicate names: cJSON keeps both entries; the format forbids them. */
    qsort(order, (size_t)count, sizeof *order, cmp_entry_name);
    for (int i = 1; i < count; i++)
        if (!strcmp(order[i - 1]->name, order[i]->name)) {
            st = fmt_error(file, "tensor '%s' appears twice in the header", show(order[i]->name, sn, sizeof sn));
            goto done;
        }

    /* Layout: sorted by offset, the tensors must tile [0, dlen) exactly. */
    qsort(order, (size_t)count, sizeof *order, cmp_entry_offset);
    uint64_t pos = 0;
    for (int i = 0; i < count; i++) {
        const entry *e = order[i];
        if (e->begin > pos) {
            if (i == 0)
                st = fmt_error(file, "tensor '%s': gap of %" PRIu64 " bytes before it (data_offsets begin at %" PRIu64
                               ", the data section starts at 0)", show(e->name, sn, sizeof sn), e->begin, e->begin);
            else
                st = fmt_error(file, "tensor '%s': gap of %" PRIu64 " bytes before it (data_offsets begin at %" PRIu64
                               ", previous tensor '%s' ends at %" PRIu64 ")", show(e->name, sn, sizeof sn), e->begin - pos,
                               e->begin, show(order[i - 1]->name, sn2, sizeof sn2), pos);
            goto done;
        }
        if (e->begin < pos) {
            st = fmt_error(file, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor '%s' [%" PRIu64 ", %" PRIu64 "]",
                           show(e->name, sn, sizeof sn), e->begin, e->end, show(order[i - 1]->name, sn2, sizeof sn2),
                           order[i - 1]->begin, order[i - 1]->end);
            goto done;
        }
        pos = e->end;
    }
    if (pos != dlen) {
        st = fmt_error(file, "%" PRIu64 " bytes after the end of the last tensor (tensors end at %" PRIu64
                       ", the data section has %" PRIu64 " bytes)", dlen - pos, pos, dlen);
        goto done;
    }

    /* Build the views, in header order. */
    f->tensors.items = cn_calloc((size_t)count + 1, sizeof *f->tensors.items);
    f->copies = cn_calloc((size_t)count + 1, sizeof *f->copies);
    if (!f->tensors.items || !f->copies) { st = cn_error(CN_ERR_NOMEM, "%s: out of memory", file); goto done; }
    f->tensors.cap = count + 1;
    for (int i = 0; i < count; i++) {
        const entry *e = &ents[i];
        cn_state_item *it = &f->tensors.items[i];
        it->name = cn_strdup(e->name);
        if (!it->name) { st = cn_error(CN_ERR_NOMEM, "%s: out of memory", file); goto done; }
        f->tensors.count = i + 1;
        it->dtype = e->dtype;
        it->ndim = e->ndim;
        memcpy(it->shape, e->shape, sizeof it->shape);
        uint64_t nb = e->end - e->begin;
        if (e->begin % cn_dtype_size(e->dtype) == 0) {
            it->data = data + e->begin;
        } else {
            /* The format does not promise aligned offsets; copy so the view is aligned. */
            void *c = cn_malloc_aligned((size_t)nb);
            if (!c) { st = cn_error(CN_ERR_NOMEM, "%s: out of memory", file); goto done; }
            if (nb) memcpy(c, data + e->begin, (size_t)nb);
            f->copies[f->ncopies++] = c;
            it->data = c;
        }
    }

    if (meta) f->meta = cJSON_DetachItemViaPointer(root, (cJSON *)meta);
    else f->meta = cJSON_CreateObject();
    if (!f->meta) { st = cn_error(CN_ERR_NOMEM, "%s: out of memory", file); goto done; }

done:
    cJSON_Delete(root);
    cn_free(ents);
    cn_free(order);
    if (st != CN_OK) { cn_st_close(f); f = NULL; }
    *out = f;
    return st;
}

/* read() until n bytes or end of file; returns the count read, -1 on error. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got > ((size_t)1 << 30) ? (size_t)1 << 30 : n - got;
        ssize_t r = read(fd, (char *)buf + got, chunk);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* The checks on the 8-byte length shared by the file and buffer readers. */
static cn_status check_header_len(const char *file, uint64_t hlen, uint64_t size)
{
    if (hlen > CN_ST_MAX_HEADER)
        return fmt_error(file, "header length %" PRIu64 " is larger than the limit of %" PRIu64 " bytes (corrupt or not a safetensors file)",
                         hlen, CN_ST_MAX_HEADER);
    if (hlen > size - 8)
        return fmt_error(file, "header length %" PRIu64 " is larger than the rest of the file (%" PRIu64 " bytes; truncated?)",
                         hlen, size - 8);
    if (hlen < 2) return fmt_error(file, "header length %" PRIu64 " is too small for a JSON object", hlen);
    return CN_OK;
}

cn_status cn_st_read(const char *path, cn_st_file **out)
{
    *out = NULL;
    if (!host_is_little_endian())
        return cn_error(CN_ERR_STATE, "%s: safetensors stores little-endian data; this host is big-endian", path);
    int fd;
    cn_status ost = cn_open_input(path, &fd);   /* a regular file, opened without blocking on a FIFO */
    if (ost) return ost;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        cn_status st = cn_error(CN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size == 0) { close(fd); return fmt_error(path, "file is empty (a safetensors file starts with an 8-byte header length)"); }
    if (size < 8) { close(fd); return fmt_error(path, "file is %" PRIu64 " bytes, too short for the 8-byte header length", size); }
    if (size - 8 > SIZE_MAX / 2) { close(fd); return fmt_error(path, "file too large for this host"); }

    unsigned char len8[8];
    char *hdr = NULL;
    unsigned char *data = NULL;
    cn_status st;
    if (read_full(fd, len8, 8) != 8) { st = cn_error(CN_ERR_IO, "%s: cannot read the header length: %s", path, strerror(errno)); goto fail; }
    uint64_t hlen = le64(len8);
    if ((st = check_header_len(path, hlen, size)) != CN_OK) goto fail;
    hdr = cn_malloc((size_t)hlen + 1);
    uint64_t dlen = size - 8 - hlen;
    data = cn_malloc_aligned((size_t)dlen);
    if (!hdr || !data) { st = cn_error(CN_ERR_NOMEM, "%s: out of memory for %" PRIu64 " bytes", path, size); goto fail; }
    ssize_t r = read_full(fd, hdr, (size_t)hlen);
    if (r < 0) { st = cn_error(CN_ERR_IO, "%s: read error: %s", path, strerror(errno)); goto fail; }
    if ((uint64_t)r != hlen) { st = cn_error(CN_ERR_IO, "%s: unexpected end of file in the header (did it change while reading?)", path); goto fail; }
    hdr[hlen] = 0;
    r = read_full(fd, data, (size_t)dlen);
    if (r < 0) { st = cn_error(CN_ERR_IO, "%s: read error: %s", path, strerror(errno)); goto fail; }
    if ((uint64_t)r != dlen) { st = cn_error(CN_ERR_IO, "%s: unexpected end of file in the data (did it change while reading?)", path); goto fail; }
    close(fd);
    st = parse_core(path, hdr, (size_t)hlen, data, dlen, out);   /* takes `data` */
    cn_free(hdr);
    return st;

fail:
    close(fd);
    cn_free(hdr);
    cn_free_aligned(data);
    return st;
}

cn_status cn_st_read_buffer(const char *name, const void *buf, size_t len, cn_st_file **out)
{
    *out = NULL;
    if (!host_is_little_endian())
        return cn_error(CN_ERR_STATE, "%s: safetensors stores little-endian data; this host is big-endian", name);
    const unsigned char *b = buf;
    if (len == 0) return fmt_error(name, "file is empty (a safetensors file starts with an 8-byte header length)");
    if (len < 8) return fmt_error(name, "file is %zu bytes, too short for the 8-byte header length", len);
    uint64_t hlen = le64(b);
    cn_status st = check_header_len(name, hlen, len);
    if (st != CN_OK) return st;
    uint64_t dlen = len - 8 - hlen;
    char *hdr = cn_malloc((size_t)hlen + 1);
    unsigned char *data = cn_malloc_aligned((size_t)dlen);
    if (!hdr || !data) {
        cn_free(hdr);
        cn_free_aligned(data);
        return cn_error(CN_ERR_NOMEM, "%s: out of memory", name);
    }
    memcpy(hdr, b + 8, (size_t)hlen);
    hdr[hlen] = 0;
    if (dlen) memcpy(data, b + 8 + hlen, (size_t)dlen);
    st = parse_core(name, hdr, (size_t)hlen, data, dlen, out);
    cn_free(hdr);
    return st;
}

const cn_state *cn_st_tensors(const cn_st_file *f) { return &f->tensors; }

const char *cn_st_meta(const cn_st_file *f, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *cn_st_metadata(const cn_st_file *f) { return f->meta; }
