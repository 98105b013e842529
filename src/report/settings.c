/* What each variant changed: the settings in which the variants' resolved configs (config.json of
 * their runs) differ, as "path=value" in the --set syntax (clip.mode=norm, model.0.hidden=64).
 *
 * Taken from the run directories rather than from the command line, so that a report rebuilt from
 * the runs alone says the same. A setting counts when two variants have different values for it, or
 * one has it and another does not (clip.max_norm exists only under the norm modes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "report/internal.h"

typedef cn_report_leaf leaf;
typedef cn_report_leaves leaves;

static void add(leaves *l, const char *path, const char *value, int is_num, double num)
{
    if (l->oom) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        leaf *v = cn_realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) { l->oom = 1; return; }
        l->v = v;
        l->cap = cap;
    }
    char *p = cn_malloc(strlen(path) + 1), *q = cn_malloc(strlen(value) + 1);
    if (!p || !q) { cn_free(p); cn_free(q); l->oom = 1; return; }
    strcpy(p, path);
    strcpy(q, value);
    l->v[l->n++] = (leaf){p, q, is_num, num};
}

static int has_object(const cJSON *a)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (cJSON_IsObject(e) || cJSON_IsArray(e)) return 1;
    return 0;
}

static void flatten(leaves *l, const cJSON *j, const char *path)
{
    char sub[512];
    if (cJSON_IsObject(j) || (cJSON_IsArray(j) && has_object(j))) {
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, j) {
            if (cJSON_IsObject(j)) snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", e->string ? e->string : "");
            else snprintf(sub, sizeof sub, "%s%s%d", path, *path ? "." : "", i);
            flatten(l, e, sub);
            i++;
        }
        return;
    }
    char num[64];
    if (cJSON_IsString(j)) {
        add(l, path, j->valuestring, 0, 0);
    } else if (cJSON_IsNumber(j)) {
        snprintf(num, sizeof num, "%.6g", j->valuedouble);
        add(l, path, num, 1, j->valuedouble);
    } else {
        char *s = cJSON_PrintUnformatted(j);
        if (!s) { l->oom = 1; return; }
        add(l, path, s, 0, 0);
        cJSON_free(s);
    }
}

void cn_report_flatten(cn_report_leaves *l, const void *config)
{
    memset(l, 0, sizeof *l);
    if (config) flatten(l, config, "");
}

void cn_report_leaves_free(cn_report_leaves *l)
{
    for (int i = 0; i < l->n; i++) {
        cn_free(l->v[i].path);
        cn_free(l->v[i].value);
    }
    cn_free(l->v);
    memset(l, 0, sizeof *l);
}

const cn_report_leaf *cn_report_leaf_find(const cn_report_leaves *l, const char *path)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].path, path)) return &l->v[i];
    return NULL;
}

static const char *find(const leaves *l, const char *path)
{
    const leaf *f = cn_report_leaf_find(l, path);
    return f ? f->value : NULL;
}

/* Does `path` take different values (or presence) among the configs that were read? */
static int varies(const leaves *ls, const int *have, int n, const char *path)
{
    const char *first = NULL;
    int seen = 0;
    for (int i = 0; i < n; i++) {
        if (!have[i]) continue;
        const char *v = find(&ls[i], path);
        if (!seen) { first = v; seen = 1; continue; }
        if ((v == NULL) != (first == NULL) || (v && strcmp(v, first))) return 1;
    }
    return 0;
}

cn_status cn_report_settings(void *const *configs, int n, char **out)
{
    return cn_report_settings_except(configs, n, NULL, out);
}

cn_status cn_report_settings_except(void *const *configs, int n, const char *except, char **out)
{
    cn_status st = CN_OK;
    for (int i = 0; i < n; i++) out[i] = NULL;
    leaves *ls = cn_calloc((size_t)(n ? n : 1), sizeof *ls);
    int *have = cn_calloc((size_t)(n ? n : 1), sizeof *have);
    if (!ls || !have) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        if (configs[i]) {
            cn_report_flatten(&ls[i], configs[i]);
            have[i] = 1;
            if (ls[i].oom) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
        }
    }
    for (int i = 0; i < n; i++) {
        cn_report_buf b = {0};
        if (!have[i]) cn_report_puts(&b, "?");
        int first = 1;
        for (int k = 0; have[i] && k < ls[i].n; k++) {
            if ((except && !strcmp(ls[i].v[k].path, except)) || !varies(ls, have, n, ls[i].v[k].path)) continue;
            cn_report_printf(&b, "%s%s=%s", first ? "" : ", ", ls[i].v[k].path, ls[i].v[k].value);
            first = 0;
        }
        if (!b.p) cn_report_puts(&b, "");
        if (b.oom) {
            cn_report_buf_free(&b);
            st = cn_error(CN_ERR_NOMEM, "out of memory");
            goto done;
        }
        out[i] = b.p;
    }
done:
    if (st)
        for (int i = 0; i < n; i++) { cn_free(out[i]); out[i] = NULL; }
    for (int i = 0; ls && i < n; i++) cn_report_leaves_free(&ls[i]);
    cn_free(ls);
    cn_free(have);
    return st;
}
