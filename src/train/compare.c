/* clipnn compare (see compare.h): variants, sweeps, the plan of runs, compare.json, the report. */
#include "train/compare.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "json/json.h"
#include "report/report.h"
#include "io/files.h"
#include "train/session.h"


static int looks_like_assignment(const char *p)
{
    /* PATH= with PATH made of identifier characters, dots and digits */
    const char *q = p;
    while (*q && (isalnum((unsigned char)*q) || *q == '_' || *q == '.' || *q == '-')) q++;
    return q > p && *q == '=';
}

/* Variant names become directory names: letters, digits and _ - . = + (not '.' first). */
static int name_char(char c) { return isalnum((unsigned char)c) || strchr("_-.=+", c); }

static int valid_name(const char *n)
{
    if (!*n || *n == '.') return 0;
    for (; *n; n++)
        if (!name_char(*n)) return 0;
    return 1;
}

/* The end of one value in a comma-separated list: the first comma outside [], {} and quotes for which
 * more_follows(q + 1) holds (NULL: any such comma), or the end of the text. */
static const char *value_end(const char *p, int (*more_follows)(const char *))
{
    int depth = 0, quote = 0;
    for (; *p; p++) {
        if (quote) { if (*p == '\\' && p[1]) p++; else if (*p == '"') quote = 0; continue; }
        if (*p == '"') quote = 1;
        else if (*p == '[' || *p == '{') depth++;
        else if (*p == ']' || *p == '}') depth--;
        else if (*p == ',' && depth <= 0 && (!more_follows || more_follows(p + 1))) break;
    }
    return p;
}

cn_status cn_variant_parse(const char *spec, cn_variant *out)
{
    memset(out, 0, sizeof *out);
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec) return cn_error(CN_ERR_ARG, "--variant %s: expected NAME:PATH=VALUE[,PATH=VALUE...]", spec);
    size_t nl = (size_t)(colon - spec);
    if (nl >= sizeof out->name) return cn_error(CN_ERR_ARG, "--variant %s: name too long", spec);
    memcpy(out->name, spec, nl);
    out->name[nl] = 0;
    if (!valid_name(out->name))
        return cn_error(CN_ERR_ARG, "--variant %s: the name may use letters, digits, '_', '-', '.', '=' and '+' ('.' not first) only", spec);
    const char *p = colon + 1;
    size_t cap = 4;
    out->sets = cn_calloc(cap, sizeof *out->sets);
    if (!out->sets) return cn_error(CN_ERR_NOMEM, "out of memory");
    while (*p) {
        if (!looks_like_assignment(p)) {
            cn_variant_free(out);
            return cn_error(CN_ERR_ARG, "--variant %s: expected PATH=VALUE at \"%s\"", spec, p);
        }
        const char *q = value_end(p, looks_like_assignment);
        if ((size_t)out->n_sets == cap) {
            char **ns = cn_realloc(out->sets, sizeof *ns * cap * 2);
            if (!ns) { cn_variant_free(out); return cn_error(CN_ERR_NOMEM, "out of memory"); }
            out->sets = ns;
            cap *= 2;
        }
        char *s = cn_malloc((size_t)(q - p) + 1);
        if (!s) { cn_variant_free(out); return cn_error(CN_ERR_NOMEM, "out of memory"); }
        memcpy(s, p, (size_t)(q - p));
        s[q - p] = 0;
        out->sets[out->n_sets++] = s;
        p = *q ? q + 1 : q;
    }
    return CN_OK;
}

void cn_variant_free(cn_variant *v)
{
    for (int i = 0; i < v->n_sets; i++) cn_free(v->sets[i]);
    cn_free(v->sets);
    v->sets = NULL;
    v->n_sets = 0;
}

/* Variants from the config's "compare": {"variants": {NAME: {PATH: VALUE, ...}}}. */
static cn_status config_variants(const cJSON *root, const char *file, cn_variant **out, int *n)
{
    *out = NULL;
    *n = 0;
    const cJSON *cmp = cJSON_GetObjectItemCaseSensitive(root, "compare");
    if (!cmp) return CN_OK;
    static const char *const keys[] = {"variants", NULL};
    cn_status st = cn_json_check_keys(cmp, "compare", keys);
    if (st) return cn_error_prefix(st, "%s", file);
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(cmp, "variants");
    if (!vs) return CN_OK;
    if (!cJSON_IsObject(vs)) return cn_error(CN_ERR_ARG, "%s: compare.variants: expected an object {NAME: {PATH: VALUE}}", file);
    int count = cJSON_GetArraySize(vs), k = 0;
    cn_variant *v = cn_calloc((size_t)count + 1, sizeof *v);
    if (!v) return cn_error(CN_ERR_NOMEM, "out of memory");
    for (const cJSON *it = vs->child; it; it = it->next, k++) {
        if (!cJSON_IsObject(it)) {
            st = cn_error(CN_ERR_ARG, "%s: compare.variants.%s: expected an object {PATH: VALUE}", file, it->string);
            goto fail;
        }
        if (strlen(it->string) >= sizeof v[k].name || !valid_name(it->string)) {
            st = cn_error(CN_ERR_ARG, "%s: compare.variants.%.60s: a variant name has 1 to %zu letters, digits, '_', '-', "
                          "'.', '=' or '+' ('.' not first)", file, it->string, sizeof v[k].name - 1);
            goto fail;
        }
        snprintf(v[k].name, sizeof v[k].name, "%s", it->string);
        int na = cJSON_GetArraySize(it);
        v[k].sets = cn_calloc((size_t)na + 1, sizeof *v[k].sets);   /* an empty object: the config as written */
        if (!v[k].sets) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto fail; }
        for (const cJSON *a = it->child; a; a = a->next) {
            /* each PATH: VALUE becomes the --set string PATH=VALUE (VALUE as JSON) */
            char *val = cJSON_PrintUnformatted(a);
            size_t len = val ? strlen(a->string) + strlen(val) + 2 : 0;
            char *set = val ? cn_malloc(len) : NULL;
            if (set) snprintf(set, len, "%s=%s", a->string, val);
            free(val);
            if (!set) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto fail; }
            v[k].sets[v[k].n_sets++] = set;
        }
    }
    *out = v;
    *n = count;
    return CN_OK;
fail:
    for (int i = 0; i <= k && i < count; i++) cn_variant_free(&v[i]);
    cn_free(v);
    return st;
}

/* ---- small string lists ---- */

static void strs_free(char **v, int n)
{
    for (int i = 0; v && i < n; i++) cn_free(v[i]);
    cn_free(v);
}

/* A copy of v[0..n) (NULL-ended), or NULL when memory ran out. */
static char **strs_dup(char *const *v, int n)
{
    char **c = cn_calloc((size_t)n + 1, sizeof *c);
    for (int i = 0; c && i < n; i++)
        if (!(c[i] = cn_strdup(v[i]))) { strs_free(c, i); return NULL; }
    return c;
}

static int strs_equal(char *const *a, int na, char *const *b, int nb)
{
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i], b[i])) return 0;
    return 1;
}

/* "PATH=VALUE, PATH=VALUE" (cn_malloc), or NULL when memory ran out. A JSON string of letters, digits,
 * '.', '_' and '-' loses its quotes, as --set reads such a bare word as the same string. */
static char *join_sets(char *const *sets, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(sets[i]) + 2;
    char *s = cn_malloc(len);
    if (!s) return NULL;
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (i) { memcpy(s + k, ", ", 2); k += 2; }
        const char *eq = strchr(sets[i], '='), *v = eq ? eq + 1 : NULL;
        size_t vl = v ? strlen(v) : 0, j = 1;
        int bare = v && vl >= 3 && v[0] == '"' && v[vl - 1] == '"' && !isdigit((unsigned char)v[1]);
        for (; bare && j + 1 < vl; j++) bare = isalnum((unsigned char)v[j]) || strchr("._-", v[j]);
        if (bare && (!strncmp(v + 1, "true\"", 5) || !strncmp(v + 1, "false\"", 6) || !strncmp(v + 1, "null\"", 5)))
            bare = 0;   /* those bare words would be JSON literals */
        size_t l = bare ? (size_t)(v - sets[i]) : strlen(sets[i]);
        memcpy(s + k, sets[i], l);
        k += l;
        if (bare) { memcpy(s + k, v + 1, vl - 2); k += vl - 2; }
    }
    s[k] = '\0';
    return s;
}

/* ---- sweeps ---- */

typedef struct {
    char path[256];
    char label[256];         /* the key in variant names */
    char **values;           /* as written */
    int n;
} axis;

/* The name part of one value: a JSON string without its quotes, else the text as written; characters
 * outside letters, digits, . _ - become '_'. */
static void value_label(const char *v, char *out, size_t n)
{
    size_t len = strlen(v), k = 0;
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') { v++; len -= 2; }
    for (size_t i = 0; i < len && k + 1 < n; i++)
        out[k++] = isalnum((unsigned char)v[i]) || strchr("._-", v[i]) ? v[i] : '_';
    out[k] = '\0';
}

static int any_char(const char *p) { (void)p; return 1; }

static cn_status parse_axis(const char *spec, axis *a)
{
    memset(a, 0, sizeof *a);
    const char *eq = strchr(spec, '=');
    if (!looks_like_assignment(spec) || !eq || (size_t)(eq - spec) >= sizeof a->path)
        return cn_error(CN_ERR_ARG, "--sweep %s: expected PATH=V1,V2,...", spec);
    snprintf(a->path, sizeof a->path, "%.*s", (int)(eq - spec), spec);
    const char *dot = strrchr(a->path, '.');
    snprintf(a->label, sizeof a->label, "%s", dot ? dot + 1 : a->path);
    int cap = 4;
    a->values = cn_calloc((size_t)cap, sizeof *a->values);
    if (!a->values) return cn_error(CN_ERR_NOMEM, "out of memory");
    for (const char *p = eq + 1;;) {
        const char *q = value_end(p, any_char);
        if (q == p) return cn_error(CN_ERR_ARG, "--sweep %s: an empty value", spec);
        if (a->n == cap) {
            char **nv = cn_realloc(a->values, sizeof *nv * (size_t)cap * 2);
            if (!nv) return cn_error(CN_ERR_NOMEM, "out of memory");
            a->values = nv;
            cap *= 2;
        }
        if (!(a->values[a->n] = cn_malloc((size_t)(q - p) + 1))) return cn_error(CN_ERR_NOMEM, "out of memory");
        memcpy(a->values[a->n], p, (size_t)(q - p));
        a->values[a->n++][q - p] = '\0';
        if (a->n > CN_COMPARE_MAX_RUNS)
            return cn_error(CN_ERR_ARG, "--sweep %s: more than %d values", a->path, CN_COMPARE_MAX_RUNS);
        if (!*q) break;
        p = q + 1;
    }
    return CN_OK;
}

cn_status cn_sweep_expand(char *const *sweeps, int n_sweeps, cn_variant **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (n_sweeps <= 0) return CN_OK;
    cn_status st = CN_OK;
    axis *ax = cn_calloc((size_t)n_sweeps, sizeof *ax);
    cn_variant *v = NULL;
    long long total = 1;
    if (n_sweeps > 16) return cn_error(CN_ERR_ARG, "--sweep: at most 16 swept paths");
    if (!ax) return cn_error(CN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_sweeps; i++) {
        if ((st = parse_axis(sweeps[i], &ax[i]))) goto done;
        for (int k = 0; k < i; k++)
            if (!strcmp(ax[k].path, ax[i].path)) { st = cn_error(CN_ERR_ARG, "--sweep %s is given twice", ax[i].path); goto done; }
        total *= ax[i].n;
        if (total > CN_COMPARE_MAX_RUNS) {
            st = cn_error(CN_ERR_ARG, "--sweep: the grid has more than %d points (at most %d runs per compare)",
                          CN_COMPARE_MAX_RUNS, CN_COMPARE_MAX_RUNS);
            goto done;
        }
    }
    /* two paths ending in the same key are named by their whole paths */
    for (int i = 0; i < n_sweeps; i++)
        for (int k = 0; k < n_sweeps; k++)
            if (i != k && !strcmp(strrchr(ax[i].path, '.') ? strrchr(ax[i].path, '.') + 1 : ax[i].path,
                                  strrchr(ax[k].path, '.') ? strrchr(ax[k].path, '.') + 1 : ax[k].path))
                snprintf(ax[i].label, sizeof ax[i].label, "%s", ax[i].path);
    v = cn_calloc((size_t)total, sizeof *v);
    if (!v) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
    for (long long g = 0; g < total; g++) {
        /* mixed radix, the first axis the slowest digit */
        int idx[16];
        long long rest = g;
        for (int i = n_sweeps - 1; i >= 0; i--) {
            idx[i] = (int)(rest % ax[i].n);
            rest /= ax[i].n;
        }
        char name[512] = "";
        v[g].sets = cn_calloc((size_t)n_sweeps + 1, sizeof *v[g].sets);
        if (!v[g].sets) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
        for (int i = 0; i < n_sweeps; i++) {
            const char *val = ax[i].values[idx[i]];
            char lab[256];
            value_label(val, lab, sizeof lab);
            size_t l = strlen(name);
            snprintf(name + l, sizeof name - l, "%s%s=%s", i ? "+" : "", ax[i].label, lab);
            size_t len = strlen(ax[i].path) + strlen(val) + 2;
            if (!(v[g].sets[i] = cn_malloc(len))) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
            snprintf(v[g].sets[i], len, "%s=%s", ax[i].path, val);
            v[g].n_sets++;
        }
        if (strlen(name) >= sizeof v[g].name) {
            st = cn_error(CN_ERR_ARG, "--sweep: the variant name \"%.80s...\" is longer than %zu characters; use "
                          "shorter values or --variant NAME:...", name, sizeof v[g].name - 1);
            goto done;
        }
        snprintf(v[g].name, sizeof v[g].name, "%s", name);
        for (long long k = 0; k < g; k++)
            if (!strcmp(v[k].name, v[g].name)) {
                st = cn_error(CN_ERR_ARG, "--sweep: two grid points have the same name \"%s\" (%s and %s); "
                              "write the values differently", name, v[k].sets[0], v[g].sets[0]);
                goto done;
            }
    }
    *out = v;
    *n_out = (int)total;
    v = NULL;
done:
    for (long long i = 0; v && i < total; i++) cn_variant_free(&v[i]);
    cn_free(v);
    for (int i = 0; i < n_sweeps; i++) strs_free(ax[i].values, ax[i].n);
    cn_free(ax);
    return st;
}

/* ---- JSON helpers ---- */

/* The first path where two resolved configs differ, into out ("" if none), ignoring the keys that
 * do not change what a run computes or that a compare records elsewhere. */
static int ignored_in_base(const char *path)
{
    static const char *const ok[] = {"name", "threads", "compare", NULL};
    for (const char *const *p = ok; *p; p++)
        if (!strcmp(path, *p)) return 1;
    return 0;
}

static int first_diff(const cJSON *a, const cJSON *b, const char *path, char *out, size_t n)
{
    if (ignored_in_base(path)) return 0;
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        for (const cJSON *it = a->child; it; it = it->next) {
            char p[512];
            cn_json_join(p, sizeof p, path, it->string);
            if (first_diff(it, cJSON_GetObjectItemCaseSensitive(b, it->string), p, out, n)) return 1;
        }
        for (const cJSON *it = b->child; it; it = it->next) {
            char p[512];
            cn_json_join(p, sizeof p, path, it->string);
            if (!cJSON_GetObjectItemCaseSensitive(a, it->string) && first_diff(NULL, it, p, out, n)) return 1;
        }
        return 0;
    }
    if (cJSON_IsArray(a) && cJSON_IsArray(b) && cJSON_GetArraySize(a) == cJSON_GetArraySize(b)) {
        int i = 0;
        for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next, i++) {
            char p[512], idx[16];
            snprintf(idx, sizeof idx, "%d", i);
            cn_json_join(p, sizeof p, path, idx);
            if (first_diff(x, y, p, out, n)) return 1;
        }
        return 0;
    }
    if (a && b && cJSON_Compare(a, b, 1)) return 0;
    char da[64], db[64];
    snprintf(out, n, "%s (was %s, now %s)", *path ? path : "(the whole config)", cn_json_describe(a, da, sizeof da),
             cn_json_describe(b, db, sizeof db));
    return 1;
}

/* An array of strings from a JSON array (file and key for messages). */
static cn_status json_strings(const cJSON *arr, const char *file, const char *key, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(arr)) return cn_error(CN_ERR_FORMAT, "%s: %s: expected an array of strings", file, key);
    int k = cJSON_GetArraySize(arr), i = 0;
    char **v = cn_calloc((size_t)k + 1, sizeof *v);
    if (!v) return cn_error(CN_ERR_NOMEM, "out of memory");
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it)) { strs_free(v, i); return cn_error(CN_ERR_FORMAT, "%s: %s.%d: expected a string", file, key, i); }
        if (!(v[i] = cn_strdup(it->valuestring))) { strs_free(v, i); return cn_error(CN_ERR_NOMEM, "out of memory"); }
    }
    *out = v;
    *n = k;
    return CN_OK;
}

static cJSON *strings_json(char *const *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) { cJSON_Delete(s); cJSON_Delete(a); return NULL; }
    }
    return a;
}

/* ---- compare.json ---- */

/* What a compare folder records (compare.h). */
typedef struct {
    char name[256];
    cJSON *base;                    /* owned */
    char **base_sets;
    int n_base_sets;
    cn_variant *variants;
    int n_variants;
    struct rec_run { int variant; long long seed; char dir[256]; } *runs;
    int n_runs;
} record;

static void record_free(record *r)
{
    cJSON_Delete(r->base);
    strs_free(r->base_sets, r->n_base_sets);
    for (int i = 0; i < r->n_variants; i++) cn_variant_free(&r->variants[i]);
    cn_free(r->variants);
    cn_free(r->runs);
    memset(r, 0, sizeof *r);
}

static int safe_subdir(const char *d)
{
    return *d && strcmp(d, ".") && strcmp(d, "..") && !strchr(d, '/') && strlen(d) < 256;
}

/* Reads DIR/compare.json: every item checked, since the file may have been edited. */
static cn_status record_load(const char *dir, record *r)
{
    memset(r, 0, sizeof *r);
    char file[8192];
    snprintf(file, sizeof file, "%s/compare.json", dir);
    cJSON *j = NULL;
    cn_status st = cn_json_load_file(file, &j);
    if (st) return st == CN_ERR_IO ? CN_ERR_IO : CN_ERR_FORMAT;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(j, "base");
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(j, "variants");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "runs");
    if (!cJSON_IsObject(j) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "clipnn-compare")) {
        st = cn_error(CN_ERR_FORMAT, "%s: not a clipnn compare record (\"format\": \"clipnn-compare\")", file);
        goto out;
    }
    if (!cJSON_IsString(name) || !cJSON_IsObject(base) || !cJSON_IsArray(vs) || !cJSON_IsArray(rs)) {
        st = cn_error(CN_ERR_FORMAT, "%s: expected \"name\" (a string), \"base\" (an object), \"variants\" and \"runs\" (arrays)", file);
        goto out;
    }
    snprintf(r->name, sizeof r->name, "%s", name->valuestring);
    if (!(r->base = cJSON_Duplicate(base, 1))) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto out; }
    if ((st = json_strings(cJSON_GetObjectItemCaseSensitive(j, "base_sets"), file, "base_sets", &r->base_sets, &r->n_base_sets))) goto out;
    int nv = cJSON_GetArraySize(vs), nr = cJSON_GetArraySize(rs);
    if (nv > CN_COMPARE_MAX_RUNS || nr > CN_COMPARE_MAX_RUNS) {
        st = cn_error(CN_ERR_FORMAT, "%s: more than %d variants or runs", file, CN_COMPARE_MAX_RUNS);
        goto out;
    }
    r->variants = cn_calloc((size_t)nv + 1, sizeof *r->variants);
    r->runs = cn_calloc((size_t)nr + 1, sizeof *r->runs);
    if (!r->variants || !r->runs) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto out; }
    for (const cJSON *v = vs->child; v; v = v->next) {
        cn_variant *x = &r->variants[r->n_variants];
        const cJSON *vn = cJSON_GetObjectItemCaseSensitive(v, "name"), *seed = cJSON_GetObjectItemCaseSensitive(v, "seed");
        char key[64];
        snprintf(key, sizeof key, "variants.%d", r->n_variants);
        if (!cJSON_IsString(vn) || strlen(vn->valuestring) >= sizeof x->name || !valid_name(vn->valuestring) ||
            !cJSON_IsNumber(seed) || seed->valuedouble < 0 || seed->valuedouble > 9e15 || seed->valuedouble != (double)(long long)seed->valuedouble) {
            st = cn_error(CN_ERR_FORMAT, "%s: %s: expected {\"name\": a variant name, \"seed\": an integer, \"sets\": [...]}", file, key);
            goto out;
        }
        snprintf(x->name, sizeof x->name, "%s", vn->valuestring);
        x->seed = (long long)seed->valuedouble;
        r->n_variants++;
        strcat(key, ".sets");
        if ((st = json_strings(cJSON_GetObjectItemCaseSensitive(v, "sets"), file, key, &x->sets, &x->n_sets))) goto out;
        for (int k = 0; k < r->n_variants - 1; k++)
            if (!strcmp(r->variants[k].name, x->name)) { st = cn_error(CN_ERR_FORMAT, "%s: variant \"%s\" is listed twice", file, x->name); goto out; }
    }
    for (const cJSON *x = rs->child; x; x = x->next) {
        const cJSON *vn = cJSON_GetObjectItemCaseSensitive(x, "variant"), *seed = cJSON_GetObjectItemCaseSensitive(x, "seed"),
                    *d = cJSON_GetObjectItemCaseSensitive(x, "dir");
        int vi = -1;
        for (int k = 0; cJSON_IsString(vn) && k < r->n_variants; k++)
            if (!strcmp(r->variants[k].name, vn->valuestring)) vi = k;
        if (vi < 0 || !cJSON_IsNumber(seed) || seed->valuedouble < 0 || seed->valuedouble > 9e15 ||
            seed->valuedouble != (double)(long long)seed->valuedouble || !cJSON_IsString(d) || !safe_subdir(d->valuestring)) {
            st = cn_error(CN_ERR_FORMAT, "%s: runs.%d: expected {\"variant\": one of the variants, \"seed\": an integer, "
                          "\"dir\": a subdirectory name}", file, r->n_runs);
            goto out;
        }
        struct rec_run *rr = &r->runs[r->n_runs];
        rr->variant = vi;
        rr->seed = (long long)seed->valuedouble;
        snprintf(rr->dir, sizeof rr->dir, "%s", d->valuestring);
        for (int k = 0; k < r->n_runs; k++)
            if ((r->runs[k].variant == vi && r->runs[k].seed == rr->seed) || !strcmp(r->runs[k].dir, rr->dir)) {
                st = cn_error(CN_ERR_FORMAT, "%s: runs.%d repeats a run or a directory", file, r->n_runs);
                goto out;
            }
        r->n_runs++;
    }
out:
    cJSON_Delete(j);
    if (st) record_free(r);
    return st;
}

/* The report's title: "<name>: V variants x S seeds" (S: the most seeds of a variant). */
static void make_title(char *out, size_t n, const char *name, int nv, const int *variant_of_run, int nr)
{
    int seeds = 0;
    for (int v = 0; v < nv; v++) {
        int k = 0;
        for (int i = 0; i < nr; i++) k += variant_of_run[i] == v;
        if (k > seeds) seeds = k;
    }
    snprintf(out, n, "%s: %d variant%s x %d seed%s", name, nv, nv == 1 ? "" : "s", seeds, seeds == 1 ? "" : "s");
}

/* ---- the plan ---- */

void cn_compare_plan_free(cn_compare_plan *p)
{
    for (int i = 0; i < p->n_variants; i++) cn_variant_free(&p->variants[i]);
    cn_free(p->variants);
    for (int i = 0; i < p->n_runs; i++) cn_free(p->runs[i].args);   /* the strings belong to the plan */
    for (int i = 0; i < p->n_runs; i++) {
        cn_free(p->runs[i].seedset);
        cn_free(p->runs[i].ckpt);
    }
    cn_free(p->runs);
    cJSON_Delete(p->base);
    strs_free(p->base_sets, p->n_base_sets);
    cn_free(p->config_path);
    cn_free(p->baseline);
    memset(p, 0, sizeof *p);
}

/* The overrides every run gets first: per-tensor gradient-norm logging on (for the report's heatmaps)
 * unless the config or a --set says otherwise, then the --set overrides. */
static cn_status base_sets(const cn_compare_opts *o, char ***out, int *n)
{
    int add = 0;
    cJSON *raw = NULL;
    if (cn_json_load_file(o->config_path, &raw) == CN_OK) {
        for (int i = 0; i < o->n_sets; i++)
            if (cn_config_set(raw, o->sets[i])) break;   /* a bad --set is reported by the validation */
        const cJSON *log = cJSON_GetObjectItemCaseSensitive(raw, "log");
        add = !cJSON_GetObjectItemCaseSensitive(log, "per_tensor");
    }
    cJSON_Delete(raw);
    cn_error_clear();
    char **v = cn_calloc((size_t)o->n_sets + 2, sizeof *v);
    if (!v) return cn_error(CN_ERR_NOMEM, "out of memory");
    int k = 0;
    if (add && !(v[k++] = cn_strdup("log.per_tensor=true"))) { strs_free(v, k); return cn_error(CN_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < o->n_sets; i++)
        if (!(v[k++] = cn_strdup(o->sets[i]))) { strs_free(v, k); return cn_error(CN_ERR_NOMEM, "out of memory"); }
    *out = v;
    *n = k;
    return CN_OK;
}

/* base sets, then the variant's, then (seed_set != NULL) the seed: the overrides of one run. */
static char **run_sets(const cn_compare_plan *p, const cn_variant *v, const char *seed_set, int *n)
{
    *n = p->n_base_sets + v->n_sets + (seed_set != NULL);
    char **all = cn_calloc((size_t)*n + 1, sizeof *all);
    if (!all) return NULL;
    int k = 0;
    for (int i = 0; i < p->n_base_sets; i++) all[k++] = p->base_sets[i];
    for (int i = 0; i < v->n_sets; i++) all[k++] = v->sets[i];
    if (seed_set) all[k++] = (char *)seed_set;
    return all;
}

/* An unfinished run that can continue: a checkpoint and either no summary (killed) or a summary that
 * says it stopped early without having diverged, or was interrupted. */
static cn_compare_action recorded_action(const char *dir)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    int ck = cn_file_exists(path);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    int metrics = cn_file_exists(path);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (!ck && !metrics) return CN_RUN_NEW;   /* never started */
    if (!ck) return CN_RUN_KEEP;               /* died before its first checkpoint: reported as failed */
    if (!cn_file_exists(path)) return CN_RUN_RESUME;
    cJSON *j = NULL;
    if (cn_json_load_file(path, &j)) { cn_error_clear(); return CN_RUN_KEEP; }
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "interrupted");
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(j, "stopped_early");
    const cJSON *dv = cJSON_GetObjectItemCaseSensitive(j, "diverged");
    int resume = cJSON_IsBool(in) ? cJSON_IsTrue(in) : cJSON_IsTrue(se) && !cJSON_IsTrue(dv);
    cJSON_Delete(j);
    return resume ? CN_RUN_RESUME : CN_RUN_KEEP;
}

static cn_status build_args(cn_compare_plan *p, cn_compare_run *r)
{
    const cn_variant *v = &p->variants[r->variant];
    char ck[4500];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", r->dir);
    r->seedset = cn_malloc(48);
    if (r->action == CN_RUN_RESUME) r->ckpt = cn_strdup(ck);
    int cap = 8 + 2 * (p->n_base_sets + v->n_sets + 1);
    r->args = cn_calloc((size_t)cap, sizeof *r->args);
    if (!r->seedset || !r->args || (r->action == CN_RUN_RESUME && !r->ckpt)) return cn_error(CN_ERR_NOMEM, "out of memory");
    snprintf(r->seedset, 48, "seed=%lld", r->seed);
    int n = 0;
    r->args[n++] = "train";
    r->args[n++] = p->config_path;
    if (r->action == CN_RUN_RESUME) {
        r->args[n++] = "--resume";   /* continues in the checkpoint's own directory */
        r->args[n++] = r->ckpt;
    } else {
        r->args[n++] = "--out";
        r->args[n++] = r->dir;
    }
    r->args[n++] = "--quiet";
    for (int i = 0; i < p->n_base_sets; i++) { r->args[n++] = "--set"; r->args[n++] = p->base_sets[i]; }
    for (int i = 0; i < v->n_sets; i++) { r->args[n++] = "--set"; r->args[n++] = v->sets[i]; }
    r->args[n++] = "--set";
    r->args[n++] = r->seedset;
    r->args[n] = NULL;
    r->n_args = n;
    snprintf(r->log, sizeof r->log, "%s/train.log", r->dir);
    return CN_OK;
}

static int cmp_seed(const void *a, const void *b)
{
    const cn_compare_run *x = a, *y = b;
    if (x->variant != y->variant) return x->variant - y->variant;
    return (x->seed > y->seed) - (x->seed < y->seed);
}

/* The variants named on the command line: --variant flags, then the --sweep grid. */
static cn_status cli_variants(const cn_compare_opts *o, cn_variant **out, int *n)
{
    cn_variant *grid = NULL;
    int ng = 0;
    cn_status st = cn_sweep_expand(o->sweeps, o->n_sweeps, &grid, &ng);
    if (st) return st;
    cn_variant *v = cn_calloc((size_t)(o->n_variants + ng) + 1, sizeof *v);
    if (!v) {
        for (int i = 0; i < ng; i++) cn_variant_free(&grid[i]);
        cn_free(grid);
        return cn_error(CN_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < o->n_variants && !st; k++) st = cn_variant_parse(o->variants[k], &v[k]);
    for (int i = 0; i < ng; i++) {
        if (!st) v[o->n_variants + i] = grid[i];   /* moved */
        else cn_variant_free(&grid[i]);
    }
    cn_free(grid);
    if (st) {
        for (int i = 0; i < o->n_variants; i++) cn_variant_free(&v[i]);
        cn_free(v);
        return st;
    }
    int k = o->n_variants + ng;
    *out = v;
    *n = k;
    return CN_OK;
}

static cn_status copy_variant(const cn_variant *from, cn_variant *to)
{
    *to = *from;
    to->sets = strs_dup(from->sets, from->n_sets);
    return to->sets ? CN_OK : cn_error(CN_ERR_NOMEM, "out of memory");
}

cn_status cn_compare_plan_make(const cn_compare_opts *o, cn_compare_plan *p)
{
    memset(p, 0, sizeof *p);
    cn_status st = CN_OK;
    cn_variant *given = NULL;
    int n_given = 0, *wanted = NULL;
    record rec;
    memset(&rec, 0, sizeof rec);
    cn_session s;
    int seeds = o->seeds >= 1 ? o->seeds : 1;
    if (!(p->config_path = cn_strdup(o->config_path))) return cn_error(CN_ERR_NOMEM, "out of memory");
    if ((st = base_sets(o, &p->base_sets, &p->n_base_sets))) goto fail;

    /* 1. the base config must be valid (nothing is started otherwise) */
    st = cn_session_open(&s, o->config_path, p->base_sets, p->n_base_sets);
    if (!st) {
        snprintf(p->name, sizeof p->name, "%s", s.cfg.name);
        if (!(p->base = cJSON_Duplicate(s.cfg.root, 1))) st = cn_error(CN_ERR_NOMEM, "out of memory");
        else cJSON_DeleteItemFromObjectCaseSensitive(p->base, "compare");
        if (!st && !(o->n_variants || o->n_sweeps)) st = config_variants(s.cfg.root, s.cfg.file, &given, &n_given);
    }
    cn_session_close(&s);
    if (st) goto fail;
    if (o->n_variants || o->n_sweeps) {
        if ((st = cli_variants(o, &given, &n_given))) goto fail;
    }

    /* 2. an earlier compare in the folder: same base, same settings per variant name */
    if (o->out_dir) snprintf(p->dir, sizeof p->dir, "%s", o->out_dir);
    else cn_run_dir_name(p->dir, sizeof p->dir, p->name, "compare");
    char path[8192];
    snprintf(path, sizeof path, "%s/compare.json", p->dir);
    if (o->out_dir && cn_file_exists(path)) {
        if ((st = record_load(p->dir, &rec))) goto fail;
        char diff[700];
        if (first_diff(rec.base, p->base, "", diff, sizeof diff)) {
            st = cn_error(CN_ERR_ARG, "%s holds a compare of another base config: %s. Extending a compare needs the same "
                          "config and --set overrides; choose another --out for a new comparison", p->dir, diff);
            goto fail;
        }
        p->extending = 1;
    }
    if (!p->extending && !(o->n_variants || o->n_sweeps) && n_given == 0) {
        /* the default: the config as written against no clipping */
        cn_free(given);
        given = cn_calloc(2, sizeof *given);
        if (!given) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto fail; }
        n_given = 2;
        if ((st = cn_variant_parse("noclip:clip.mode=none", &given[0]))) goto fail;
        snprintf(given[1].name, sizeof given[1].name, "config");
        if (!(given[1].sets = cn_calloc(1, sizeof *given[1].sets))) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto fail; }
    }
    /* extending without variants on the command line: the folder's own variants get the seeds */
    int extend_all = p->extending && !(o->n_variants || o->n_sweeps);
    for (int i = 0; i < n_given; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(given[i].name, given[k].name)) { st = cn_error(CN_ERR_ARG, "variant name \"%s\" is used twice", given[i].name); goto fail; }

    p->variants = cn_calloc((size_t)(rec.n_variants + n_given) + 1, sizeof *p->variants);
    wanted = cn_calloc((size_t)(rec.n_variants + n_given) + 1, sizeof *wanted);
    if (!p->variants || !wanted) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < rec.n_variants; i++) {
        if ((st = copy_variant(&rec.variants[i], &p->variants[p->n_variants]))) goto fail;
        wanted[p->n_variants++] = extend_all;
    }
    if (!extend_all)
        for (int i = 0; i < n_given; i++) {
            int k = 0;
            while (k < rec.n_variants && strcmp(rec.variants[k].name, given[i].name)) k++;
            if (k < rec.n_variants) {
                if (!strs_equal(rec.variants[k].sets, rec.variants[k].n_sets, given[i].sets, given[i].n_sets)) {
                    char *a = join_sets(rec.variants[k].sets, rec.variants[k].n_sets), *b = join_sets(given[i].sets, given[i].n_sets);
                    st = cn_error(CN_ERR_ARG, "%s: variant \"%s\" is already there with other settings (%s, now %s); give the new "
                                  "one another name", p->dir, given[i].name, a && *a ? a : "none", b && *b ? b : "none");
                    cn_free(a);
                    cn_free(b);
                    goto fail;
                }
                wanted[k] = 1;
                continue;
            }
            if ((st = copy_variant(&given[i], &p->variants[p->n_variants]))) goto fail;
            wanted[p->n_variants++] = 1;
        }

    int fresh = 0;
    for (int i = rec.n_variants; i < p->n_variants; i++) fresh++;
    if (rec.n_runs + (long long)fresh * seeds > CN_COMPARE_MAX_RUNS) {
        st = cn_error(CN_ERR_ARG, "this compare would hold %lld runs (variants x seeds); the most is %d", rec.n_runs + (long long)fresh * seeds,
                      CN_COMPARE_MAX_RUNS);
        goto fail;
    }

    /* 3. every variant with a run to do must give a valid config; a new one's first seed is its resolved
          config's */
    for (int i = 0; i < p->n_variants; i++) {
        int todo = wanted[i];   /* or a recorded run of it is unfinished or never started */
        for (int k = 0; k < rec.n_runs && !todo; k++) {
            snprintf(path, sizeof path, "%s/%s", p->dir, rec.runs[k].dir);
            todo = rec.runs[k].variant == i && recorded_action(path) != CN_RUN_KEEP;
        }
        if (!todo) continue;
        int n;
        char **all = run_sets(p, &p->variants[i], NULL, &n);
        if (!all) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto fail; }
        st = cn_session_open(&s, o->config_path, all, n);
        if (!st && i >= rec.n_variants) p->variants[i].seed = s.cfg.seed;   /* a variant may set its own seed */
        cn_session_close(&s);
        cn_free(all);
        if (st) { cn_error_prefix(st, "variant \"%s\"", p->variants[i].name); goto fail; }
    }

    /* 4. the runs: the recorded ones, then the seeds wanted now that are missing */
    int cap = rec.n_runs + p->n_variants * seeds;
    if (cap > CN_COMPARE_MAX_RUNS * 2) cap = CN_COMPARE_MAX_RUNS * 2;
    p->runs = cn_calloc((size_t)cap + 1, sizeof *p->runs);
    if (!p->runs) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < rec.n_runs; i++) {
        cn_compare_run *r = &p->runs[p->n_runs++];
        r->variant = rec.runs[i].variant;
        r->seed = rec.runs[i].seed;
        snprintf(r->dir, sizeof r->dir, "%s/%s", p->dir, rec.runs[i].dir);
        r->action = recorded_action(r->dir);
        r->exit_code = -1;
    }
    for (int v = 0; v < p->n_variants; v++) {
        if (!wanted[v]) continue;
        int have = 0;
        for (int i = 0; i < rec.n_runs; i++) have += rec.runs[i].variant == v;
        int extra = 0;
        for (int sd = 0; sd < seeds; sd++) {
            long long seed = p->variants[v].seed + sd;
            int found = 0;
            for (int i = 0; i < rec.n_runs; i++) found |= rec.runs[i].variant == v && rec.runs[i].seed == seed;
            extra += !found;
        }
        for (int sd = 0; sd < seeds; sd++) {
            long long seed = p->variants[v].seed + sd;
            int found = 0;
            for (int i = 0; i < rec.n_runs; i++) found |= rec.runs[i].variant == v && rec.runs[i].seed == seed;
            if (found) continue;
            if (p->n_runs >= CN_COMPARE_MAX_RUNS) {
                st = cn_error(CN_ERR_ARG, "this compare would hold more than %d runs (variants x seeds); split it into "
                              "several folders", CN_COMPARE_MAX_RUNS);
                goto fail;
            }
            cn_compare_run *r = &p->runs[p->n_runs++];
            r->variant = v;
            r->seed = seed;
            r->exit_code = -1;
            r->action = CN_RUN_NEW;
            if (have + extra > 1) snprintf(r->dir, sizeof r->dir, "%s/%s-s%lld", p->dir, p->variants[v].name, seed);
            else snprintf(r->dir, sizeof r->dir, "%s/%s", p->dir, p->variants[v].name);
            for (int i = 0; i < p->n_runs - 1; i++)
                if (!strcmp(p->runs[i].dir, r->dir)) {
                    st = cn_error(CN_ERR_ARG, "%s: run directory %s would hold two runs; rename variant \"%s\"", p->dir, r->dir,
                                  p->variants[v].name);
                    goto fail;
                }
            if ((st = cn_run_dir_check_new(r->dir))) goto fail;   /* what train --out would refuse */
        }
    }
    if (p->n_runs > CN_COMPARE_MAX_RUNS) {
        st = cn_error(CN_ERR_ARG, "this compare would hold more than %d runs (variants x seeds)", CN_COMPARE_MAX_RUNS);
        goto fail;
    }
    qsort(p->runs, (size_t)p->n_runs, sizeof *p->runs, cmp_seed);

    /* 5. every run to start, each with its own seed, validated before the first starts; the seed changes
          only top-level keys, so the config check of the variant above covers the rest */
    for (int i = 0; i < p->n_runs; i++) {
        cn_compare_run *r = &p->runs[i];
        if (r->action == CN_RUN_KEEP) continue;
        char seedset[48];
        snprintf(seedset, sizeof seedset, "seed=%lld", r->seed);
        int n;
        char **all = run_sets(p, &p->variants[r->variant], seedset, &n);
        if (!all) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto fail; }
        cn_config c;
        st = cn_config_load(o->config_path, all, n, &c);
        cn_config_free(&c);
        cn_free(all);
        if (st) { cn_error_prefix(st, "variant \"%s\", seed %lld", p->variants[r->variant].name, r->seed); goto fail; }
        if ((st = build_args(p, r))) goto fail;
        p->n_todo++;
    }
    if (o->baseline) {   /* the paired section's baseline must be one of the folder's variants */
        int found = 0;
        for (int i = 0; i < p->n_variants; i++) found |= !strcmp(p->variants[i].name, o->baseline);
        if (!found) { st = cn_error(CN_ERR_ARG, "--baseline: no variant is named \"%s\"", o->baseline); goto fail; }
        if (!(p->baseline = cn_strdup(o->baseline))) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto fail; }
    }
    for (int i = 0; i < n_given; i++) cn_variant_free(&given[i]);
    cn_free(given);
    cn_free(wanted);
    record_free(&rec);
    return CN_OK;
fail:
    for (int i = 0; i < n_given; i++) cn_variant_free(&given[i]);
    cn_free(given);
    cn_free(wanted);
    record_free(&rec);
    cn_compare_plan_free(p);
    return st;
}

/* ---- compare.json, the report ---- */

static cJSON *record_json(const cn_compare_plan *p)
{
    cJSON *j = cJSON_CreateObject(), *vs = NULL, *rs = NULL;
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "format", "clipnn-compare");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON_AddStringToObject(j, "clipnn_version", CN_VERSION);
    cJSON_AddStringToObject(j, "config", p->config_path);
    cJSON_AddStringToObject(j, "name", p->name);
    cJSON *bs = strings_json(p->base_sets, p->n_base_sets), *base = cJSON_Duplicate(p->base, 1);
    if (!bs || !cJSON_AddItemToObject(j, "base_sets", bs)) { cJSON_Delete(bs); goto fail; }
    if (!base || !cJSON_AddItemToObject(j, "base", base)) { cJSON_Delete(base); goto fail; }
    if (!(vs = cJSON_AddArrayToObject(j, "variants")) || !(rs = cJSON_AddArrayToObject(j, "runs"))) goto fail;
    for (int i = 0; i < p->n_variants; i++) {
        cJSON *v = cJSON_CreateObject(), *sets = strings_json(p->variants[i].sets, p->variants[i].n_sets);
        if (!v || !sets || !cJSON_AddItemToArray(vs, v)) { cJSON_Delete(v); cJSON_Delete(sets); goto fail; }
        cJSON_AddStringToObject(v, "name", p->variants[i].name);
        cJSON_AddItemToObject(v, "sets", sets);
        cJSON_AddNumberToObject(v, "seed", (double)p->variants[i].seed);
    }
    size_t dl = strlen(p->dir);
    for (int i = 0; i < p->n_runs; i++) {
        cJSON *r = cJSON_CreateObject();
        if (!r || !cJSON_AddItemToArray(rs, r)) { cJSON_Delete(r); goto fail; }
        cJSON_AddStringToObject(r, "variant", p->variants[p->runs[i].variant].name);
        cJSON_AddNumberToObject(r, "seed", (double)p->runs[i].seed);
        cJSON_AddStringToObject(r, "dir", p->runs[i].dir + dl + 1);   /* relative: the folder may move */
    }
    return j;
fail:
    cJSON_Delete(j);
    return NULL;
}

cn_status cn_compare_prepare(const cn_compare_plan *p)
{
    cn_status st;
    if ((st = cn_mkdirs(p->dir))) return st;
    for (int i = 0; i < p->n_runs; i++)
        if (p->runs[i].action != CN_RUN_KEEP && (st = cn_mkdirs(p->runs[i].dir))) return st;
    cJSON *j = record_json(p);
    if (!j) return cn_error(CN_ERR_NOMEM, "out of memory");
    char path[8192];
    snprintf(path, sizeof path, "%s/compare.json", p->dir);
    st = cn_write_json_atomic(path, j);
    cJSON_Delete(j);
    return st;
}

/* The report over runs given as (variant, seed, dir, exit code) with the variants' settings. */
static cn_status report(const char *out_dir, const char *title, const cn_variant *vars, const int *var_of,
                        const long long *seed, char *const *dirs, const int *exit_code, int n, const char *baseline,
                        FILE *table)
{
    cn_report_run *rr = cn_calloc((size_t)n + 1, sizeof *rr);
    char **settings = cn_calloc((size_t)n + 1, sizeof *settings);
    cn_status st = CN_OK;
    if (!rr || !settings) st = cn_error(CN_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < n; i++) {
        const cn_variant *v = var_of[i] >= 0 ? &vars[var_of[i]] : NULL;
        if (v && !(settings[i] = join_sets(v->sets, v->n_sets))) { st = cn_error(CN_ERR_NOMEM, "out of memory"); break; }
        rr[i].variant = v ? v->name : NULL;
        rr[i].seed = seed[i];
        rr[i].dir = dirs[i];
        rr[i].exit_code = exit_code[i];
        rr[i].settings = settings[i];
    }
    cn_report_opts ro = {title, baseline, table};
    if (!st) st = cn_report_write_opts(out_dir, rr, n, &ro);
    strs_free(settings, n);
    cn_free(rr);
    return st;
}

cn_status cn_compare_report(const cn_compare_plan *p, FILE *table)
{
    int n = p->n_runs;
    int *var_of = cn_calloc((size_t)n + 1, sizeof *var_of), *code = cn_calloc((size_t)n + 1, sizeof *code);
    long long *seed = cn_calloc((size_t)n + 1, sizeof *seed);
    char **dirs = cn_calloc((size_t)n + 1, sizeof *dirs);
    cn_status st = CN_OK;
    if (!var_of || !code || !seed || !dirs) st = cn_error(CN_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < n; i++) {
        const cn_compare_run *r = &p->runs[i];
        var_of[i] = r->variant;
        seed[i] = r->seed;
        dirs[i] = (char *)r->dir;
        code[i] = r->action == CN_RUN_KEEP ? CN_REPORT_EXIT_UNKNOWN : r->exit_code;
    }
    char title[512];
    if (!st) {
        make_title(title, sizeof title, p->name, p->n_variants, var_of, n);
        st = report(p->dir, title, p->variants, var_of, seed, dirs, code, n, p->baseline, table);
    }
    cn_free(var_of);
    cn_free(code);
    cn_free(seed);
    cn_free(dirs);
    return st;
}

/* ---- clipnn report ---- */

typedef struct {
    cn_variant *vars;        /* one per compare variant or single run */
    int n_vars, cap_vars;
    int *var_of;
    long long *seed;
    char **dirs;
    int n, cap;
    char name[256];
    int n_compares, n_singles;
} gather;

static cn_status gather_grow(gather *g)
{
    if (g->n < g->cap && g->n_vars < g->cap_vars) return CN_OK;
    int cap = g->cap ? g->cap * 2 : 16;
    int *vo = cn_realloc(g->var_of, sizeof *vo * (size_t)cap);
    if (vo) g->var_of = vo;
    long long *sd = cn_realloc(g->seed, sizeof *sd * (size_t)cap);
    if (sd) g->seed = sd;
    char **d = cn_realloc(g->dirs, sizeof *d * (size_t)cap);
    if (d) g->dirs = d;
    cn_variant *v = cn_realloc(g->vars, sizeof *v * (size_t)cap);
    if (v) g->vars = v;
    if (!vo || !sd || !d || !v) return cn_error(CN_ERR_NOMEM, "out of memory");
    g->cap = g->cap_vars = cap;
    return CN_OK;
}

/* The index of variant `name` with these settings, added when new. */
static cn_status gather_variant(gather *g, const char *name, char *const *sets, int n_sets, int *out)
{
    for (int i = 0; i < g->n_vars; i++)
        if (!strcmp(g->vars[i].name, name)) { *out = i; return CN_OK; }
    cn_status st = gather_grow(g);
    if (st) return st;
    cn_variant *v = &g->vars[g->n_vars];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    if (!(v->sets = strs_dup(sets, n_sets))) return cn_error(CN_ERR_NOMEM, "out of memory");
    v->n_sets = n_sets;
    *out = g->n_vars++;
    return CN_OK;
}

static cn_status gather_run(gather *g, int var, long long seed, const char *dir)
{
    cn_status st = gather_grow(g);
    if (st) return st;
    if (!(g->dirs[g->n] = cn_strdup(dir))) return cn_error(CN_ERR_NOMEM, "out of memory");
    g->var_of[g->n] = var;
    g->seed[g->n] = seed;
    g->n++;
    return CN_OK;
}

static int is_run_dir(const char *dir)
{
    static const char *const files[] = {"summary.json", "metrics.csv", "config.json", NULL};
    char path[8300];
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (cn_file_exists(path)) return 1;
    }
    return 0;
}

/* A single run: a variant named after its directory (without a "-s<seed>" ending that is its seed, so
 * the seeds of one variant of a compare group together); the seed from its config.json. */
static cn_status gather_single(gather *g, const char *dir)
{
    char base[256], path[4200];
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && dir[b - 1] != '/') b--;
    snprintf(base, sizeof base, "%.*s", (int)(len - b), dir + b);
    if (!valid_name(base) || strlen(base) >= sizeof g->vars[0].name) snprintf(base, sizeof base, "run%d", g->n + 1);
    long long seed = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *j = NULL;
    if (cn_json_load_file(path, &j) == CN_OK) {
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(j, "seed");
        if (cJSON_IsNumber(sd) && sd->valuedouble >= 0 && sd->valuedouble <= 9e15) seed = (long long)sd->valuedouble;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(j, "name");
        if (!g->name[0] && cJSON_IsString(nm)) snprintf(g->name, sizeof g->name, "%s", nm->valuestring);
    }
    cJSON_Delete(j);
    cn_error_clear();
    /* "<variant>-s<seed>" (compare's naming) with the run's own seed: a seed of that variant */
    char *dash = strrchr(base, '-');
    if (dash && dash > base && dash[1] == 's' && dash[2]) {
        char *end;
        long long sd = strtoll(dash + 2, &end, 10);
        if (!*end && isdigit((unsigned char)dash[2]) && sd == seed) *dash = '\0';
    }
    int v;
    cn_status st = gather_variant(g, base, NULL, 0, &v);
    if (!st) st = gather_run(g, v, seed, dir);
    g->n_singles++;
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static cn_status gather_dir(gather *g, const char *dir)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/compare.json", dir);
    if (cn_file_exists(path)) {
        record rec;
        cn_status st = record_load(dir, &rec);
        if (st) return st;
        if (!g->name[0]) snprintf(g->name, sizeof g->name, "%s", rec.name);
        int *map = cn_calloc((size_t)rec.n_variants + 1, sizeof *map);
        if (!map) st = cn_error(CN_ERR_NOMEM, "out of memory");
        for (int i = 0; !st && i < rec.n_variants; i++)
            st = gather_variant(g, rec.variants[i].name, rec.variants[i].sets, rec.variants[i].n_sets, &map[i]);
        /* the order the compare reports them in: by variant, then seed */
        for (int i = 0; !st && i < rec.n_variants; i++) {
            for (;;) {
                int best = -1;
                for (int k = 0; k < rec.n_runs; k++)
                    if (rec.runs[k].variant == i && rec.runs[k].seed >= 0 && (best < 0 || rec.runs[k].seed < rec.runs[best].seed)) best = k;
                if (best < 0) break;
                snprintf(path, sizeof path, "%s/%s", dir, rec.runs[best].dir);
                if ((st = gather_run(g, map[i], rec.runs[best].seed, path))) break;
                rec.runs[best].seed = -1;   /* taken */
            }
        }
        cn_free(map);
        record_free(&rec);
        g->n_compares++;
        return st;
    }
    if (is_run_dir(dir)) return gather_single(g, dir);
    /* a folder of runs (e.g. a compare from before compare.json): its run subdirectories, by name */
    DIR *d = opendir(dir);
    if (!d) return cn_error(CN_ERR_ARG, "%s: cannot open: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    cn_status st = CN_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) || !S_ISDIR(sb.st_mode) || !is_run_dir(path)) continue;
        if (n == cap) {
            char **nn = cn_realloc(names, sizeof *nn * (size_t)(cap ? cap * 2 : 16));
            if (!nn) { st = cn_error(CN_ERR_NOMEM, "out of memory"); break; }
            names = nn;
            cap = cap ? cap * 2 : 16;
        }
        if (!(names[n] = cn_strdup(path))) st = cn_error(CN_ERR_NOMEM, "out of memory");
        else n++;
    }
    closedir(d);
    if (!st && n == 0) st = cn_error(CN_ERR_ARG, "%s: no runs here (expected a compare folder, a run directory, or a folder of runs)", dir);
    if (!st) qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; !st && i < n; i++) st = gather_single(g, names[i]);
    strs_free(names, n);
    return st;
}

cn_status cn_compare_rebuild(char *const *dirs, int n_dirs, const char *out_dir, FILE *table)
{
    return cn_compare_rebuild_baseline(dirs, n_dirs, out_dir, NULL, table);
}

cn_status cn_compare_rebuild_baseline(char *const *dirs, int n_dirs, const char *out_dir, const char *baseline,
                                      FILE *table)
{
    if (n_dirs < 1) return cn_error(CN_ERR_ARG, "report: no directory given");
    if (!out_dir && n_dirs > 1) return cn_error(CN_ERR_ARG, "report: with several directories, name the output with --out DIR");
    gather g;
    memset(&g, 0, sizeof g);
    cn_status st = CN_OK;
    for (int i = 0; !st && i < n_dirs; i++) st = gather_dir(&g, dirs[i]);
    if (!st && baseline) {
        int found = 0;
        for (int i = 0; i < g.n_vars; i++) found |= !strcmp(g.vars[i].name, baseline);
        if (!found) st = cn_error(CN_ERR_ARG, "--baseline: no variant is named \"%s\"", baseline);
    }
    if (!st) {
        int *code = cn_calloc((size_t)g.n + 1, sizeof *code);
        if (!code) st = cn_error(CN_ERR_NOMEM, "out of memory");
        for (int i = 0; !st && i < g.n; i++) code[i] = CN_REPORT_EXIT_UNKNOWN;
        char title[512];
        if (g.n_compares == 1 && g.n_singles == 0) make_title(title, sizeof title, g.name, g.n_vars, g.var_of, g.n);
        else snprintf(title, sizeof title, "clipnn report: %d run%s in %d variant%s", g.n, g.n == 1 ? "" : "s", g.n_vars, g.n_vars == 1 ? "" : "s");
        if (!st) st = report(out_dir ? out_dir : dirs[0], title, g.vars, g.var_of, g.seed, g.dirs, code, g.n, baseline, table);
        cn_free(code);
    }
    for (int i = 0; i < g.n_vars; i++) cn_variant_free(&g.vars[i]);
    cn_free(g.vars);
    cn_free(g.var_of);
    cn_free(g.seed);
    strs_free(g.dirs, g.n);
    return st;
}
