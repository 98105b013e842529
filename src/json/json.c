#include "json/json.h"
#include "tensor/input.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cn_json_join(char *out, size_t n, const char *path, const char *key)
{
    if (!path || !*path) snprintf(out, n, "%s", key);
    else snprintf(out, n, "%s.%s", path, key);
}

const char *cn_json_describe(const cJSON *v, char *buf, size_t n)
{
    if (!v) snprintf(buf, n, "nothing");
    else if (cJSON_IsNull(v)) snprintf(buf, n, "null");
    else if (cJSON_IsBool(v)) snprintf(buf, n, cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v)) snprintf(buf, n, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v)) snprintf(buf, n, "\"%.60s%s\"", v->valuestring, strlen(v->valuestring) > 60 ? "..." : "");
    else if (cJSON_IsArray(v)) snprintf(buf, n, "an array");
    else if (cJSON_IsObject(v)) snprintf(buf, n, "an object");
    else snprintf(buf, n, "an invalid value");
    return buf;
}

static cn_status bad(const char *path, const char *key, const char *expected, const cJSON *got)
{
    char p[256], d[96];
    cn_json_join(p, sizeof p, path, key);
    return cn_error(CN_ERR_ARG, "%s: expected %s, got %s", p, expected, cn_json_describe(got, d, sizeof d));
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

cn_status cn_json_expect_object(const cJSON *obj, const char *path)
{
    if (cJSON_IsObject(obj)) return CN_OK;
    char d[96];
    return cn_error(CN_ERR_ARG, "%s: expected an object, got %s", path && *path ? path : "(top level)",
                    cn_json_describe(obj, d, sizeof d));
}

cn_status cn_json_check_keys(const cJSON *obj, const char *path, const char *const *allowed)
{
    cn_status st = cn_json_expect_object(obj, path);
    if (st) return st;
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        const char *best = NULL;
        size_t bestd = 3;
        for (const char *const *a = allowed; *a; a++) {
            if (!strcmp(it->string, *a)) { ok = 1; break; }
            size_t dd = edit_distance(it->string, *a);
            if (dd < bestd) { bestd = dd; best = *a; }
        }
        if (ok) {
            /* cJSON keeps both copies of a repeated key and lookups see the first: say so rather
             * than silently ignore the second */
            for (const cJSON *prev = obj->child; prev != it; prev = prev->next) {
                if (strcmp(prev->string, it->string)) continue;
                char p[256];
                cn_json_join(p, sizeof p, path, it->string);
                return cn_error(CN_ERR_ARG, "%s: appears twice", p);
            }
            continue;
        }
        char p[256], list[512];
        size_t k = 0;
        list[0] = 0;
        for (const char *const *a = allowed; *a && k < sizeof list - 1; a++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", k ? ", " : "", *a);
        cn_json_join(p, sizeof p, path, it->string);
        if (best) return cn_error(CN_ERR_ARG, "%s: unknown key (did you mean \"%s\"?)", p, best);
        return cn_error(CN_ERR_ARG, "%s: unknown key (allowed: %s)", p, list);
    }
    return CN_OK;
}

cn_status cn_json_set(cJSON *obj, const char *key, cJSON *value)
{
    if (!value) return cn_error(CN_ERR_NOMEM, "out of memory building JSON");
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value)) {
            cJSON_Delete(value);
            return cn_error(CN_ERR_NOMEM, "out of memory building JSON");
        }
    } else if (!cJSON_AddItemToObject(obj, key, value)) {
        cJSON_Delete(value);
        return cn_error(CN_ERR_NOMEM, "out of memory building JSON");
    }
    return CN_OK;
}

cn_status cn_json_set_opt(cJSON *obj, const char *key, double v)
{
    if (v == 0) return CN_OK;
    return cn_json_set(obj, key, cJSON_CreateNumber(v == CN_ZERO ? 0.0 : v));
}

static cn_status missing(const char *path, const char *key)
{
    char p[256];
    cn_json_join(p, sizeof p, path, key);
    return cn_error(CN_ERR_ARG, "%s: required key is missing", p);
}

static int in_range(double v, double lo, int lo_open, double hi, int hi_open)
{
    if (!isfinite(v)) return 0;
    if (lo_open ? !(v > lo) : !(v >= lo)) return 0;
    if (hi_open ? !(v < hi) : !(v <= hi)) return 0;
    return 1;
}

static void range_text(char *buf, size_t n, const char *what, double lo, int lo_open, double hi, int hi_open)
{
    if (isinf(lo) && isinf(hi)) snprintf(buf, n, "a finite %s", what);
    else if (isinf(hi)) snprintf(buf, n, "a %s %s %.17g", what, lo_open ? ">" : ">=", lo);
    else if (isinf(lo)) snprintf(buf, n, "a %s %s %.17g", what, hi_open ? "<" : "<=", hi);
    else snprintf(buf, n, "a %s in %s%.17g, %.17g%s", what, lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
}

cn_status cn_json_number(cJSON *obj, const char *path, const char *key, const cn_json_num *spec, double *out)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char exp[128];
    range_text(exp, sizeof exp, "number", spec->lo, spec->lo_open, spec->hi, spec->hi_open);
    if (!v) {
        if (spec->required) return missing(path, key);
        *out = spec->def;
        return cn_json_set(obj, key, cJSON_CreateNumber(spec->def));
    }
    if (!cJSON_IsNumber(v) || !in_range(v->valuedouble, spec->lo, spec->lo_open, spec->hi, spec->hi_open))
        return bad(path, key, exp, v);
    *out = v->valuedouble;
    return CN_OK;
}

cn_status cn_json_number_opt(cJSON *obj, const char *path, const char *key, const cn_json_num *spec, int *present,
                             double *out)
{
    double lo = spec->lo, hi = spec->hi;
    int lo_open = spec->lo_open, hi_open = spec->hi_open;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *present = 0;
    if (!v || cJSON_IsNull(v)) return v ? CN_OK : cn_json_set(obj, key, cJSON_CreateNull());
    char exp[128];
    range_text(exp, sizeof exp, "number", lo, lo_open, hi, hi_open);
    if (!cJSON_IsNumber(v) || !in_range(v->valuedouble, lo, lo_open, hi, hi_open)) {
        char e2[160];
        snprintf(e2, sizeof e2, "%s or null", exp);
        return bad(path, key, e2, v);
    }
    *present = 1;
    *out = v->valuedouble;
    return CN_OK;
}

cn_status cn_json_int(cJSON *obj, const char *path, const char *key, int required, long long def,
                      long long lo, long long hi, long long *out)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char exp[128];
    if (hi == (long long)9e18) snprintf(exp, sizeof exp, "an integer >= %lld", lo);
    else snprintf(exp, sizeof exp, "an integer in [%lld, %lld]", lo, hi);
    if (!v) {
        if (required) return missing(path, key);
        *out = def;
        return cn_json_set(obj, key, cJSON_CreateNumber((double)def));
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return bad(path, key, exp, v);
    *out = (long long)v->valuedouble;
    return CN_OK;
}

cn_status cn_json_bool(cJSON *obj, const char *path, const char *key, int required, int def, int *out)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required) return missing(path, key);
        *out = def;
        return cn_json_set(obj, key, cJSON_CreateBool(def));
    }
    if (!cJSON_IsBool(v)) return bad(path, key, "true or false", v);
    *out = cJSON_IsTrue(v);
    return CN_OK;
}

cn_status cn_json_string(cJSON *obj, const char *path, const char *key, int required, const char *def,
                         const char *const *choices, const char **out)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required || !def) return missing(path, key);
        cn_status st = cn_json_set(obj, key, cJSON_CreateString(def));
        if (st) return st;
        v = cJSON_GetObjectItemCaseSensitive(obj, key);
    }
    char exp[512];
    if (choices) {
        size_t k = (size_t)snprintf(exp, sizeof exp, "one of ");
        for (const char *const *c = choices; *c && k < sizeof exp; c++)
            k += (size_t)snprintf(exp + k, sizeof exp - k, "%s\"%s\"", c == choices ? "" : ", ", *c);
    } else {
        snprintf(exp, sizeof exp, "a string");
    }
    if (!cJSON_IsString(v)) return bad(path, key, exp, v);
    if (choices) {
        int ok = 0;
        for (const char *const *c = choices; *c; c++) if (!strcmp(*c, v->valuestring)) ok = 1;
        if (!ok) return bad(path, key, exp, v);
    }
    *out = v->valuestring;
    return CN_OK;
}

/* cJSON decodes the escape \u0000 into a NUL byte, which ends the C string it builds: "runs\u0000x" would
 * be read as "runs", a name or a path silently cut short. Nothing in a config needs a NUL, so the text
 * (already parsed, hence valid JSON) is scanned for that escape and the error names the JSON path of the
 * string that holds it. The path is kept for the first NUL_SCAN_DEPTH levels (configs are shallow). */
#define NUL_SCAN_DEPTH 32
typedef struct { int obj; long idx; const char *key; int keylen; } scan_frame;
static cn_status check_nul_escapes(const char *text, const char *what)
{
    scan_frame fr[NUL_SCAN_DEPTH];
    int depth = 0, expect_key = 0, line = 1;
    for (const char *p = text; *p; p++) {
        char ch = *p;
        if (ch == '\n') line++;
        else if (ch == '{' || ch == '[') {
            if (depth < NUL_SCAN_DEPTH) fr[depth] = (scan_frame){ch == '{', 0, NULL, 0};
            depth++;
            expect_key = ch == '{';
        } else if (ch == '}' || ch == ']') {
            depth--;
        } else if (ch == ':') {
            expect_key = 0;
        } else if (ch == ',') {
            if (depth > 0 && depth <= NUL_SCAN_DEPTH) fr[depth - 1].idx++;
            expect_key = depth > 0 && depth <= NUL_SCAN_DEPTH && fr[depth - 1].obj;
        } else if (ch == '"') {
            const char *start = p + 1;
            int nul = 0;
            for (p++; *p != '"'; p++)
                if (*p == '\\') {
                    if (!strncmp(p + 1, "u0000", 5)) nul = 1;
                    p++;
                }
            int is_key = expect_key;
            if (is_key && depth > 0 && depth <= NUL_SCAN_DEPTH) {
                fr[depth - 1].key = start;
                fr[depth - 1].keylen = (int)(p - start);
            }
            if (!nul) continue;
            char path[256] = "";
            size_t k = 0;
            for (int d = 0; d < depth && d < NUL_SCAN_DEPTH && k < sizeof path; d++) {
                if (is_key && d == depth - 1) break;   /* a key: the path of its object */
                if (fr[d].obj)
                    k += (size_t)snprintf(path + k, sizeof path - k, "%s%.*s", k ? "." : "", fr[d].keylen, fr[d].key);
                else
                    k += (size_t)snprintf(path + k, sizeof path - k, "%s%ld", k ? "." : "", fr[d].idx);
            }
            if (depth > NUL_SCAN_DEPTH && k < sizeof path) snprintf(path + k, sizeof path - k, "...");
            return cn_error(CN_ERR_ARG, "%s%s%s: %s holds \"\\u0000\" (line %d), a NUL character, which would cut "
                            "it short; names and paths cannot contain one", what, path[0] ? ": " : "", path,
                            is_key ? "a key" : "the string", line);
        }
    }
    return CN_OK;
}

cn_status cn_json_parse(const char *text, const char *what, cJSON **out)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        if (!at) at = text;
        int line = 1, col = 1, depth = 0, in_str = 0;
        for (const char *p = text; p < at && *p; p++) {
            if (*p == '\n') { line++; col = 1; } else col++;
            /* nesting depth at the error, outside strings: cJSON stops at CJSON_NESTING_LIMIT */
            if (in_str) { if (*p == '\\' && p[1]) p++, col++; else if (*p == '"') in_str = 0; }
            else if (*p == '"') in_str = 1;
            else if (*p == '[' || *p == '{') depth++;
            else if (*p == ']' || *p == '}') depth--;
        }
        char near[24];   /* the text at the error, on one line */
        size_t nn = 0;
        for (const char *p = at; *p && nn < 20; p++) near[nn++] = (unsigned char)*p < 0x20 ? ' ' : *p;
        near[nn] = 0;
        if (depth >= CJSON_NESTING_LIMIT)
            return cn_error(CN_ERR_ARG, "%s: invalid JSON at line %d, column %d: nested deeper than %d levels", what,
                            line, col, CJSON_NESTING_LIMIT);
        /* a complete value followed by more text */
        cJSON *prefix = cJSON_ParseWithOpts(text, &end, 0);
        if (prefix) {
            cJSON_Delete(prefix);
            return cn_error(CN_ERR_ARG, "%s: invalid JSON at line %d, column %d: text after the end of the value "
                            "(near \"%s\")", what, line, col, near);
        }
        return cn_error(CN_ERR_ARG, "%s: invalid JSON at line %d, column %d (near \"%s\")", what, line, col, near);
    }
    cn_status st = check_nul_escapes(text, what);
    if (st) {
        cJSON_Delete(j);
        return st;
    }
    *out = j;
    return CN_OK;
}

cn_status cn_json_load_file(const char *file, cJSON **out)
{
    char *buf;
    size_t len;
    cn_status st = cn_read_file(file, (size_t)64 << 20, &buf, &len);
    /* the file is the user's input (a config): a missing or unreadable one is their error */
    if (st) return st == CN_ERR_IO ? CN_ERR_ARG : st;
    if (strlen(buf) != len) { cn_free(buf); return cn_error(CN_ERR_ARG, "%s: contains a NUL byte; not a JSON text file", file); }
    if (len == 0) { cn_free(buf); return cn_error(CN_ERR_ARG, "%s: file is empty", file); }
    st = cn_json_parse(buf, file, out);
    cn_free(buf);
    return st;
}
