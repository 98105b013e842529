/* The "csv" data kind: a header row, then rows of numbers; one column is the target. */
#include "data/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json/json.h"

typedef struct {
    char **names;     /* column names, pointing into the header line of the buffer */
    int ncols;
    int target;       /* column index of the target */
} csv_header;

static int is_blank(const char *s, const char *e)
{
    for (; s < e; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r') return 0;
    return 1;
}

/* Cuts the buffer into lines in place: on return *line is NUL-terminated (no '\n' or trailing '\r') and
 * *next the start of the following line (or NULL at the end). */
static char *next_line(char **cur)
{
    char *s = *cur;
    if (!s) return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = 0;
        *cur = nl + 1;
        if (!**cur) *cur = NULL;
    } else {
        *cur = NULL;
        if (!*s) return NULL;
    }
    size_t n = strlen(s);
    if (n && s[n - 1] == '\r') s[n - 1] = 0;
    return s;
}

/* Splits a line in place at commas into at most max fields (trimmed); returns the field count
 * (which may exceed max: the extra fields are counted, not stored). */
static int split_fields(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        while (*p == ' ' || *p == '\t') p++;
        char *e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        if (n < max) fields[n] = p;
        n++;
        if (!c) break;
        p = c + 1;
    }
    return n;
}

/* A decimal number as CSV writers produce it: [+-] digits [. digits] [(e|E) [+-] digits], at least one
 * digit before the exponent. strtod also reads hex floats (0x1p3), "inf", "nan" and "infinity", which no
 * spreadsheet or numpy.savetxt writes: a cell like that is far likelier a mistake than data. */
static int is_decimal(const char *s)
{
    int digits = 0;
    if (*s == '+' || *s == '-') s++;
    for (; *s >= '0' && *s <= '9'; s++) digits++;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++) digits++;
    if (!digits) return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!(*s >= '0' && *s <= '9')) return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    return !*s;
}

static int count_fields(const char *line)
{
    int n = 1;
    for (; *line; line++) n += *line == ',';
    return n;
}

typedef struct {
    char *buf;
    size_t len;
    char file[1024];
    int nrows;
    csv_header h;
    char **fields;   /* scratch [ncols] */
    char *rest;      /* the text after the header line */
} csv_file;

static void csv_free(csv_file *c)
{
    cn_free(c->buf);
    cn_free(c->h.names);
    cn_free(c->fields);
    memset(c, 0, sizeof *c);
}

/* Reads the file, parses its header and counts the data rows. */
static cn_status csv_open(csv_file *c, const char *jpath, const char *target)
{
    cn_status st = cn_data_read_file(c->file, jpath, (unsigned char **)&c->buf, &c->len);
    if (st) return st;
    /* A UTF-8 byte-order mark (EF BB BF, written by Excel's "CSV UTF-8" and Windows Notepad) is not part
     * of the first column's name: drop it, as Python's csv with encoding="utf-8-sig" and pandas do. */
    if (c->len >= 3 && (unsigned char)c->buf[0] == 0xEF && (unsigned char)c->buf[1] == 0xBB &&
        (unsigned char)c->buf[2] == 0xBF) {
        memmove(c->buf, c->buf + 3, c->len - 3 + 1);   /* with the NUL cn_data_read_file appends */
        c->len -= 3;
    }
    if (strlen(c->buf) != c->len)
        return cn_error(CN_ERR_FORMAT, "%s: contains a NUL byte at offset %zu; not a CSV text file", c->file, strlen(c->buf));
    /* Line ends: LF, CRLF, and a lone CR (classic Mac OS, some spreadsheet exports), which becomes LF here
     * so that such a file reads as its lines rather than as one long header. */
    for (size_t i = 0; i < c->len; i++)
        if (c->buf[i] == '\r' && c->buf[i + 1] != '\n') c->buf[i] = '\n';
    /* Header: the first line. */
    char *eol = strchr(c->buf, '\n');
    size_t hl = eol ? (size_t)(eol - c->buf) : c->len;
    if (is_blank(c->buf, c->buf + hl))
        return cn_error(CN_ERR_FORMAT, "%s:1: expected a header row with the column names, found %s", c->file,
                        c->len ? "a blank line" : "an empty file");
    c->h.ncols = 0;
    for (size_t i = 0; i < hl; i++) c->h.ncols += c->buf[i] == ',';
    c->h.ncols++;
    c->h.names = cn_calloc((size_t)c->h.ncols, sizeof *c->h.names);
    c->fields = cn_calloc((size_t)c->h.ncols, sizeof *c->fields);
    if (!c->h.names || !c->fields) return cn_error(CN_ERR_NOMEM, "%s: out of memory", c->file);
    char *cur = c->buf;
    char *line = next_line(&cur);
    split_fields(line, c->h.names, c->h.ncols);
    c->h.target = -1;
    for (int j = 0; j < c->h.ncols; j++) {
        char *nm = c->h.names[j];
        size_t n = strlen(nm);
        if (n >= 2 && nm[0] == '"' && nm[n - 1] == '"') {
            nm[n - 1] = 0;
            c->h.names[j] = ++nm;
        }
        if (!*nm) return cn_error(CN_ERR_FORMAT, "%s:1: column %d has an empty name", c->file, j + 1);
        for (int i = 0; i < j; i++)
            if (!strcmp(c->h.names[i], nm))
                return cn_error(CN_ERR_FORMAT, "%s:1: column name \"%s\" appears twice", c->file, nm);
        if (!strcmp(nm, target)) c->h.target = j;
    }
    if (c->h.target < 0) {
        char list[512];
        size_t k = 0;
        list[0] = 0;
        for (int j = 0; j < c->h.ncols && k < sizeof list; j++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", j ? ", " : "", c->h.names[j]);
        return cn_error(CN_ERR_FORMAT, "%s:1: no column named \"%s\" (target) in the header; columns: %s", c->file,
                        target, list);
    }
    if (c->h.ncols < 2)
        return cn_error(CN_ERR_FORMAT, "%s:1: only the target column \"%s\"; no feature columns", c->file, target);
    /* Count the data rows (non-blank lines after the header) without cutting them yet. */
    c->nrows = 0;
    for (char *p = cur; p && *p;) {
        char *e = strchr(p, '\n');
        if (!e) e = p + strlen(p);
        if (!is_blank(p, e)) c->nrows++;
        p = *e ? e + 1 : e;
    }
    if (c->nrows == 0) return cn_error(CN_ERR_FORMAT, "%s: no data rows after the header", c->file);
    if (c->nrows > 2000000000) return cn_error(CN_ERR_FORMAT, "%s: too many rows", c->file);
    /* Continue parsing from the second line. */
    c->rest = cur;
    return CN_OK;
}

/* Parses the data rows of c into ds (shape fields set here). */
static cn_status csv_fill(csv_file *c, int class_target, cn_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    ds->n = c->nrows;
    ds->features = c->h.ncols - 1;
    ds->target_kind = class_target ? CN_TARGET_CLASS : CN_TARGET_FLOAT;
    ds->target_dim = 1;
    cn_status st = cn_data_alloc(ds, c->file);
    if (st) return st;
    int lineno = 1, row = 0, maxl = -1;
    char *cur = c->rest, *line;
    while ((line = next_line(&cur))) {
        lineno++;
        if (is_blank(line, line + strlen(line))) continue;
        int nf = count_fields(line);
        if (nf != c->h.ncols)
            return cn_error(CN_ERR_FORMAT, "%s:%d: expected %d fields as in the header, got %d", c->file, lineno,
                            c->h.ncols, nf);
        split_fields(line, c->fields, c->h.ncols);
        float *x = ds->x + (size_t)row * (size_t)ds->features;
        int k = 0;
        for (int j = 0; j < c->h.ncols; j++) {
            const char *f = c->fields[j];
            if (!is_decimal(f))
                return cn_error(CN_ERR_FORMAT, "%s:%d: column \"%s\": \"%.40s\" is not a number (decimal, as "
                                "-1.5e3)", c->file, lineno, c->h.names[j], f);
            double v = strtod(f, NULL);
            if (!isfinite(v) || !isfinite((float)v))
                return cn_error(CN_ERR_FORMAT, "%s:%d: column \"%s\": %s is not a finite float32 number", c->file,
                                lineno, c->h.names[j], f);
            if (j != c->h.target) {
                x[k++] = (float)v;
            } else if (!class_target) {
                ds->y[row] = (float)v;
            } else {
                if (v != floor(v) || v < 0 || v > 100000000.0)
                    return cn_error(CN_ERR_FORMAT, "%s:%d: column \"%s\": class label %s is not an integer in [0, 1e8]",
                                    c->file, lineno, c->h.names[j], f);
                ds->labels[row] = (int32_t)v;
                if (ds->labels[row] > maxl) maxl = ds->labels[row];
            }
        }
        row++;
    }
    if (class_target) ds->n_classes = maxl + 1;
    return CN_OK;
}

cn_status cn_data_load_csv(cJSON *obj, const char *path, const char *base_dir, cn_data *out)
{
    static const char *const allowed[] = {"kind", "shuffle", "path", "target", "test_path", "target_kind", NULL};
    static const char *const tk[] = {"float", "class", NULL};
    cn_status st = cn_json_check_keys(obj, path, allowed);
    if (st) return st;
    const char *file, *target, *kind, *test = NULL;
    if ((st = cn_json_string(obj, path, "path", 1, NULL, NULL, &file))) return st;
    if ((st = cn_json_string(obj, path, "target", 1, NULL, NULL, &target))) return st;
    cJSON *tv = cJSON_GetObjectItemCaseSensitive(obj, "test_path");
    if (!tv) {
        if ((st = cn_json_set(obj, "test_path", cJSON_CreateNull()))) return st;
    } else if (!cJSON_IsNull(tv)) {
        if ((st = cn_json_string(obj, path, "test_path", 1, NULL, NULL, &test))) return st;
    }
    if ((st = cn_json_string(obj, path, "target_kind", 0, "float", tk, &kind))) return st;
    int cls = !strcmp(kind, "class");

    char jp[128];
    csv_file c;
    memset(&c, 0, sizeof c);
    cn_json_join(jp, sizeof jp, path, "path");
    st = cn_data_resolve(c.file, sizeof c.file, base_dir, file, jp);
    if (!st) st = csv_open(&c, jp, target);
    if (!st) st = csv_fill(&c, cls, &out->train);
    if (!st && test) {
        csv_file t;
        memset(&t, 0, sizeof t);
        cn_json_join(jp, sizeof jp, path, "test_path");
        st = cn_data_resolve(t.file, sizeof t.file, base_dir, test, jp);
        if (!st) st = csv_open(&t, jp, target);
        if (!st) {
            int same = t.h.ncols == c.h.ncols;
            for (int j = 0; same && j < c.h.ncols; j++) same = !strcmp(t.h.names[j], c.h.names[j]);
            if (!same) st = cn_error(CN_ERR_FORMAT, "%s:1: the header differs from the one of %s", t.file, c.file);
        }
        if (!st) st = csv_fill(&t, cls, &out->test);
        if (!st && cls) {
            int nc = out->train.n_classes > out->test.n_classes ? out->train.n_classes : out->test.n_classes;
            out->train.n_classes = out->test.n_classes = nc;
        }
        csv_free(&t);
    }
    csv_free(&c);
    return st;
}
