/* Loading a finished run directory for the report: summary.json, metrics.csv, eval.csv, config.json.
 *
 * These files are the trainer's output, not user config, so they are read leniently where docs/run-files.md
 * allows variation ("more keys/columns may follow", null for a non-finite number) and strictly where
 * a wrong value would put a wrong number in the table (a malformed number fails the run, with the file,
 * line and column in the reason). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "io/files.h"
#include "json/json.h"
#include "report/internal.h"

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void fail(cn_report_rundata *r, const char *fmt, ...)
{
    if (r->failed) return;   /* keep the first reason */
    r->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

static void join(char *out, size_t n, const char *dir, const char *file)
{
    snprintf(out, n, "%s/%s", dir, file);
}

/* Reads a whole file. Returns 0 if it cannot be opened or read: *nomem set if memory ran out, else
 * the reason (naming the file) in why. */
static int slurp(const char *path, char **buf, size_t *len, char *why, size_t nwhy, int *nomem)
{
    cn_status st = cn_read_file(path, CN_READ_UNLIMITED, buf, len);
    if (st == CN_OK) return 1;
    if (st == CN_ERR_NOMEM) *nomem = 1;
    snprintf(why, nwhy, "%s", cn_errmsg());
    cn_error_clear();   /* the report records the reason per run; the call itself goes on */
    return 0;
}

/* ---- summary.json ---- */

/* A number that may be absent, null (non-finite, docs/run-files.md / trainer.c) or "inf"/"-inf"/"nan". */
static int summary_num(const cJSON *j, const char *key, cn_report_val *out, char *why, size_t nwhy)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    out->present = v != NULL;
    out->v = NAN;
    if (!v || cJSON_IsNull(v)) return 1;
    if (cJSON_IsNumber(v)) {
        out->v = v->valuedouble;
        return 1;
    }
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (!strcmp(s, "inf") || !strcmp(s, "Infinity")) { out->v = INFINITY; return 1; }
        if (!strcmp(s, "-inf") || !strcmp(s, "-Infinity")) { out->v = -INFINITY; return 1; }
        if (!strcmp(s, "nan") || !strcmp(s, "NaN")) return 1;
    }
    char d[64];
    snprintf(why, nwhy, "%s: expected a number or null, got %s", key, cn_json_describe(v, d, sizeof d));
    return 0;
}

static void load_summary(const char *dir, cn_report_rundata *r)
{
    char path[4200], why[300];
    join(path, sizeof path, dir, "summary.json");
    cJSON *j = NULL;
    if (cn_json_load_file(path, &j)) {
        fail(r, "%s", cn_errmsg());
        return;
    }
    if (!cJSON_IsObject(j)) {
        fail(r, "%s: expected a JSON object", path);
        cJSON_Delete(j);
        return;
    }
    cn_report_val steps = {0, 0}, div_at = {0, 0};
    struct { const char *key; cn_report_val *v; } nums[] = {
        {"final_loss", &r->final_loss}, {"test_loss", &r->test_loss}, {"test_metric", &r->test_metric},
        {"clip_frac", &r->clip_frac}, {"max_grad_norm_pre", &r->max_gn}, {"steps_per_s", &r->steps_per_s},
        {"steps", &steps}, {"diverged_at_step", &div_at},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (!summary_num(j, nums[i].key, nums[i].v, why, sizeof why)) {
            fail(r, "%s: %s", path, why);
            cJSON_Delete(j);
            return;
        }
    r->steps = steps.present && isfinite(steps.v) ? (long long)steps.v : 0;
    r->diverged_at = div_at.present && isfinite(div_at.v) && div_at.v > 0 ? (long long)div_at.v : 0;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "diverged");
    r->diverged = cJSON_IsBool(d) ? cJSON_IsTrue(d) : r->diverged_at > 0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "test_metric_name");
    snprintf(r->metric_name, sizeof r->metric_name, "%s",
             cJSON_IsString(m) && m->valuestring[0] ? m->valuestring : "metric");
    r->have_summary = 1;
    cJSON_Delete(j);
}

/* eval.csv with no data row means the run never evaluated: its null test values are "not
 * evaluated" (absent), not "not finite". Without eval.csv the nulls are taken as absent too. */
static void load_eval_presence(const char *dir, cn_report_rundata *r, int *nomem)
{
    char path[4200];
    join(path, sizeof path, dir, "eval.csv");
    char *buf;
    size_t len;
    char why[300];
    int rows = 0;
    if (slurp(path, &buf, &len, why, sizeof why, nomem)) {
        const char *nl = memchr(buf, '\n', len);
        rows = nl && (size_t)(nl - buf) + 1 < len;
        cn_free(buf);
    }
    if (!rows) {
        if (r->test_loss.present && !isfinite(r->test_loss.v)) r->test_loss.present = 0;
        if (r->test_metric.present && !isfinite(r->test_metric.v)) r->test_metric.present = 0;
    }
}

/* clip_threshold is drawn on the global-norm chart only when it is a global-norm threshold: the
 * trainer reports the global stage's threshold if there is one, else the first stage's
 * (clip/stage.c), which for value/norm_per_tensor/agc is on another scale. Unknown (user-registered)
 * modes are drawn; so is everything when config.json cannot be read. */
static int mode_is_local(const cJSON *stage)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(stage, "mode");
    if (!cJSON_IsString(m)) return 0;
    const char *s = m->valuestring;
    return !strcmp(s, "none") || !strcmp(s, "value") || !strcmp(s, "norm_per_tensor") || !strcmp(s, "agc");
}

static void load_config(const char *dir, cn_report_rundata *r)
{
    char path[4200];
    join(path, sizeof path, dir, "config.json");
    r->draw_threshold = 1;
    cJSON *j = NULL;
    if (cn_json_load_file(path, &j)) {
        cn_error_clear();
        return;
    }
    const cJSON *clip = cJSON_GetObjectItemCaseSensitive(j, "clip");
    if (cJSON_IsObject(clip)) {
        r->draw_threshold = !mode_is_local(clip);
    } else if (cJSON_IsArray(clip)) {
        int global = 0;
        const cJSON *st;
        cJSON_ArrayForEach(st, clip) if (!mode_is_local(st)) global = 1;
        r->draw_threshold = global;
    }
    cJSON_Delete(j);
}

/* ---- metrics.csv ---- */

static const char *const col_names[CN_RC_NCOLS] = {"step", "loss", "grad_norm_pre", "clip_coef", "clip_threshold"};

/* Parses one CSV field [s, e) as a double; "nan", "inf", "-inf" allowed. */
static int parse_field(const char *s, const char *e, double *out)
{
    char tmp[64];
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= sizeof tmp) return 0;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end == tmp || *end) return 0;
    *out = v;
    return 1;
}

static void load_metrics(const char *dir, cn_report_rundata *r, int *nomem)
{
    char path[4200];
    join(path, sizeof path, dir, "metrics.csv");
    char *buf;
    size_t len;
    char why[300];
    if (!slurp(path, &buf, &len, why, sizeof why, nomem)) {
        if (!*nomem) fail(r, "%s", why);
        return;
    }
    /* header: find our columns by name (more may follow; order may change) */
    int where[CN_RC_NCOLS];
    for (int c = 0; c < CN_RC_NCOLS; c++) where[c] = -1;
    char *p = buf, *end = buf + len;
    char *eol = memchr(p, '\n', len);
    if (!eol) {
        fail(r, "%s: no header line", path);
        cn_free(buf);
        return;
    }
    int ncols = 0;
    for (char *f = p; f <= eol; ncols++) {
        char *fe = f;
        while (fe < eol && *fe != ',') fe++;
        char *te = fe;
        if (te > f && te[-1] == '\r') te--;
        for (int c = 0; c < CN_RC_NCOLS; c++)
            if ((size_t)(te - f) == strlen(col_names[c]) && !memcmp(f, col_names[c], (size_t)(te - f))) where[c] = ncols;
        f = fe + 1;
    }
    for (int c = 0; c < 2; c++)   /* step and loss are required; the others may be gaps */
        if (where[c] < 0) {
            fail(r, "%s: no column \"%s\" in the header", path, col_names[c]);
            cn_free(buf);
            return;
        }
    long long cap = 0;
    for (char *q = eol + 1; q < end; q++) cap += *q == '\n';
    cap += 1;
    for (int c = 0; c < CN_RC_NCOLS; c++) {
        r->col[c] = cn_malloc((size_t)cap * sizeof(double));
        if (!r->col[c]) {
            *nomem = 1;
            cn_free(buf);
            return;
        }
    }
    long long line = 1;
    for (p = eol + 1; p < end; p = eol + 1) {
        line++;
        eol = memchr(p, '\n', (size_t)(end - p));
        int torn = !eol;
        if (torn) eol = end;
        char *le = eol;
        if (le > p && le[-1] == '\r') le--;
        if (le == p) {
            if (torn) break;
            continue;
        }
        double row[CN_RC_NCOLS];
        for (int c = 0; c < CN_RC_NCOLS; c++) row[c] = NAN;
        int k = 0, ok = 1;
        const char *bad = NULL;
        for (char *f = p; f <= le && ok; k++) {
            char *fe = f;
            while (fe < le && *fe != ',') fe++;
            for (int c = 0; c < CN_RC_NCOLS; c++)
                if (where[c] == k && !parse_field(f, fe, &row[c])) { ok = 0; bad = col_names[c]; }
            f = fe + 1;
        }
        if (ok && k < ncols && torn) break;   /* a torn last line of a killed run: dropped */
        if (ok && !isfinite(row[CN_RC_STEP])) { ok = 0; bad = "step"; }
        if (!ok || k < ncols) {
            if (!ok) fail(r, "%s line %lld, column \"%s\": not a number", path, line, bad);
            else fail(r, "%s line %lld: %d fields, the header has %d", path, line, k, ncols);
            cn_free(buf);
            return;
        }
        for (int c = 0; c < CN_RC_NCOLS; c++) r->col[c][r->n] = row[c];
        r->n++;
        if (torn) break;
    }
    cn_free(buf);
}

cn_status cn_report_load(const cn_report_run *in, cn_report_rundata *r)
{
    memset(r, 0, sizeof *r);
    r->in = in;
    snprintf(r->metric_name, sizeof r->metric_name, "metric");
    int nomem = 0;
    if (!in->dir) {
        fail(r, "no run directory");
        return CN_OK;
    }
    /* 0 done, 3 stopped on a non-finite value, 130 interrupted (its files are written): results.
       -1: never started (the comparison was interrupted first). */
    if (in->exit_code == -1) {
        fail(r, "not run (the comparison was interrupted)");
        return CN_OK;
    }
    if (in->exit_code != 0 && in->exit_code != 3 && in->exit_code != 130) {
        fail(r, "training failed (exit code %d)", in->exit_code);
    }
    load_summary(in->dir, r);
    if (r->have_summary) load_eval_presence(in->dir, r, &nomem);
    if (!nomem) load_metrics(in->dir, r, &nomem);
    if (!nomem) load_config(in->dir, r);
    if (nomem) {
        cn_report_rundata_free(r);
        return cn_error(CN_ERR_NOMEM, "out of memory loading run %s", in->dir);
    }
    return CN_OK;
}

void cn_report_rundata_free(cn_report_rundata *r)
{
    for (int c = 0; c < CN_RC_NCOLS; c++) {
        cn_free(r->col[c]);
        r->col[c] = NULL;
    }
    r->n = 0;
}
