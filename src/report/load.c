/* Loading a finished run directory for the report: summary.json, metrics.csv, eval.csv, config.json.
 *
 * These files are the trainer's output, not user config, so they are read leniently where docs/run-files.md
 * allows variation ("more keys/columns may follow", null for a non-finite number) and strictly where
 * a wrong value would put a wrong number in the table (a malformed number fails the run, with the file,
 * line and column in the reason). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
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
    /* "interrupted" (a signal ended the run) is written by this version; older summaries only say
       stopped_early, which a run stopped on a non-finite value also sets */
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "interrupted");
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(j, "stopped_early");
    if (cJSON_IsBool(in)) r->interrupted = cJSON_IsTrue(in);
    else r->interrupted = cJSON_IsTrue(se) && !r->diverged;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "test_metric_name");
    snprintf(r->metric_name, sizeof r->metric_name, "%s",
             cJSON_IsString(m) && m->valuestring[0] ? m->valuestring : "metric");
    r->have_summary = 1;
    cJSON_Delete(j);
}

/* A CSV header's field [f, e) equals name. */
static int field_is(const char *f, const char *e, const char *name)
{
    if (e > f && e[-1] == '\r') e--;
    return (size_t)(e - f) == strlen(name) && !memcmp(f, name, (size_t)(e - f));
}

int cn_report_parse_field(const char *s, const char *e, double *out)
{
    char tmp[64];
    if (e > s && e[-1] == '\r') e--;
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

/* eval.csv: the test-loss curve (step, test_loss). With no data row the run never evaluated: its
 * null test values are "not evaluated" (absent), not "not finite"; without eval.csv likewise. A
 * malformed row fails the run like one of metrics.csv; a torn last line (killed run) is dropped. */
static void load_eval(const char *dir, cn_report_rundata *r, int *nomem)
{
    char path[4200];
    join(path, sizeof path, dir, "eval.csv");
    char *buf;
    size_t len;
    char why[300];
    if (slurp(path, &buf, &len, why, sizeof why, nomem)) {
        char *end = buf + len, *eol = memchr(buf, '\n', len);
        int c_step = -1, c_loss = -1, ncols = 0;
        if (eol)
            for (char *f = buf; f <= eol; ncols++) {
                char *fe = f;
                while (fe < eol && *fe != ',') fe++;
                if (field_is(f, fe, "step")) c_step = ncols;
                if (field_is(f, fe, "test_loss")) c_loss = ncols;
                f = fe + 1;
            }
        long long cap = 1;
        for (char *q = buf; q < end; q++) cap += *q == '\n';
        if (eol && c_step >= 0 && c_loss >= 0) {
            r->eval_step = cn_malloc((size_t)cap * sizeof(double));
            r->eval_loss = cn_malloc((size_t)cap * sizeof(double));
            if (!r->eval_step || !r->eval_loss) { *nomem = 1; cn_free(buf); return; }
            long long line = 1;
            for (char *p = eol + 1; p < end; p = eol + 1) {
                line++;
                eol = memchr(p, '\n', (size_t)(end - p));
                int torn = !eol;
                if (torn) eol = end;
                if (eol == p || (eol == p + 1 && *p == '\r')) { if (torn) break; continue; }
                double st = NAN, lo = NAN;
                int k = 0, ok = 1;
                for (char *f = p; f <= eol && ok; k++) {
                    char *fe = f;
                    while (fe < eol && *fe != ',') fe++;
                    if (k == c_step) ok = cn_report_parse_field(f, fe, &st);
                    if (k == c_loss && ok) ok = cn_report_parse_field(f, fe, &lo);
                    f = fe + 1;
                }
                if (torn && (!ok || k < ncols)) break;
                if (!ok || k < ncols || !isfinite(st)) {
                    fail(r, "%s line %lld: expected %d numbers", path, line, ncols);
                    break;
                }
                r->eval_step[r->n_eval] = st;
                r->eval_loss[r->n_eval] = lo;
                r->n_eval++;
                if (torn) break;
            }
        }
        cn_free(buf);
    }
    if (!r->n_eval) {
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
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "train"), "steps");
    if (cJSON_IsNumber(steps) && steps->valuedouble >= 1 && steps->valuedouble < 9e18)
        r->planned_steps = (long long)steps->valuedouble;
    if (cJSON_IsObject(j)) r->config = j;
    else cJSON_Delete(j);
}

/* ---- metrics.csv ---- */

static const char *const col_names[CN_RC_NREAD] = {"step", "loss", "grad_norm_pre", "clip_coef", "clip_threshold",
                                                   "grad_norm_post"};
#define TENSOR_PREFIX "gn_pre."

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
    int where[CN_RC_NREAD];
    for (int c = 0; c < CN_RC_NREAD; c++) where[c] = -1;
    char *p = buf, *end = buf + len;
    char *eol = memchr(p, '\n', len);
    int *tensor_of = NULL;   /* header field -> tensor index, or -1 */
    if (!eol) {
        fail(r, "%s: no header line", path);
        cn_free(buf);
        return;
    }
    int ncols = 1;
    for (char *q = p; q < eol; q++) ncols += *q == ',';
    tensor_of = cn_malloc((size_t)ncols * sizeof *tensor_of);
    r->tensor_name = cn_calloc((size_t)ncols, sizeof *r->tensor_name);
    r->tensor_col = cn_calloc((size_t)ncols, sizeof *r->tensor_col);
    if (!tensor_of || !r->tensor_name || !r->tensor_col) goto nomem;
    int k0 = 0;
    for (char *f = p; f <= eol; k0++) {
        char *fe = f;
        while (fe < eol && *fe != ',') fe++;
        char *te = fe;
        if (te > f && te[-1] == '\r') te--;
        tensor_of[k0] = -1;
        for (int c = 0; c < CN_RC_NREAD; c++)
            if (field_is(f, te, col_names[c])) where[c] = k0;
        size_t pl = strlen(TENSOR_PREFIX);
        if ((size_t)(te - f) > pl && !memcmp(f, TENSOR_PREFIX, pl)) {
            char *name = cn_malloc((size_t)(te - f) - pl + 1);
            if (!name) goto nomem;
            memcpy(name, f + pl, (size_t)(te - f) - pl);
            name[(te - f) - (ptrdiff_t)pl] = '\0';
            tensor_of[k0] = r->n_tensors;
            r->tensor_name[r->n_tensors++] = name;
        }
        f = fe + 1;
    }
    for (int c = 0; c < 2; c++)   /* step and loss are required; the others may be gaps */
        if (where[c] < 0) {
            fail(r, "%s: no column \"%s\" in the header", path, col_names[c]);
            goto out;
        }
    long long cap = 0;
    for (char *q = eol + 1; q < end; q++) cap += *q == '\n';
    cap += 1;
    for (int c = 0; c < CN_RC_NCOLS; c++)
        if (!(r->col[c] = cn_malloc((size_t)cap * sizeof(double)))) goto nomem;
    for (int t = 0; t < r->n_tensors; t++)
        if (!(r->tensor_col[t] = cn_malloc((size_t)cap * sizeof(double)))) goto nomem;
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
        int k = 0, ok = 1, is_tensor = 0;
        const char *bad = NULL;
        for (char *f = p; f <= le && ok; k++) {
            char *fe = f;
            while (fe < le && *fe != ',') fe++;
            for (int c = 0; c < CN_RC_NREAD; c++)
                if (where[c] == k && !cn_report_parse_field(f, fe, &row[c])) { ok = 0; bad = col_names[c]; }
            if (ok && k < ncols && tensor_of[k] >= 0) {
                double v;
                if (!cn_report_parse_field(f, fe, &v)) { ok = 0; bad = r->tensor_name[tensor_of[k]]; is_tensor = 1; }
                else r->tensor_col[tensor_of[k]][r->n] = v;
            }
            f = fe + 1;
        }
        if (ok && k < ncols && torn) break;   /* a torn last line of a killed run: dropped */
        if (ok && !isfinite(row[CN_RC_STEP])) { ok = 0; bad = "step"; }
        if (!ok || k < ncols) {
            if (!ok) fail(r, "%s line %lld, column \"%s%s\": not a number", path, line,
                          is_tensor ? TENSOR_PREFIX : "", bad);
            else fail(r, "%s line %lld: %d fields, the header has %d", path, line, k, ncols);
            goto out;
        }
        /* the effective scale: how much the whole clip chain shortened the gradient (value,
           per-tensor and AGC modes included), 1 when it left it alone or it was zero */
        double pre = row[CN_RC_GN], post = where[CN_RC_POST] >= 0 ? row[CN_RC_POST] : NAN;
        if (where[CN_RC_POST] < 0) row[CN_RC_SCALE] = row[CN_RC_COEF];
        else if (isfinite(pre) && isfinite(post)) row[CN_RC_SCALE] = pre > 0 ? post / pre : 1.0;
        for (int c = 0; c < CN_RC_NCOLS; c++) r->col[c][r->n] = row[c];
        r->n++;
        if (torn) break;
    }
    goto out;
nomem:
    *nomem = 1;
out:
    cn_free(tensor_of);
    cn_free(buf);
}

/* The run's early loss level and whether a later finite loss rose above CN_REPORT_BLOWUP_FACTOR times
 * it; see internal.h. A diverged run is "diverged" instead. */
static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void find_blow_up(cn_report_rundata *r)
{
    double early[CN_REPORT_EARLY_ROWS];
    int m = 0;
    long long i = 0;
    for (; i < r->n && m < CN_REPORT_EARLY_ROWS; i++)
        if (isfinite(r->col[CN_RC_LOSS][i])) early[m++] = r->col[CN_RC_LOSS][i];
    if (m < CN_REPORT_EARLY_ROWS) return;   /* too short to tell */
    qsort(early, (size_t)m, sizeof early[0], cmp_dbl);
    r->early_loss = m % 2 ? early[m / 2] : 0.5 * (early[m / 2 - 1] + early[m / 2]);
    if (!(r->early_loss > 0) || r->diverged) return;
    for (; i < r->n; i++) {
        double v = r->col[CN_RC_LOSS][i];
        if (isfinite(v) && v > CN_REPORT_BLOWUP_FACTOR * r->early_loss) {
            if (!r->blew_up) r->blew_up_at = (long long)r->col[CN_RC_STEP][i];
            if (!r->blew_up || v > r->blew_up_peak) r->blew_up_peak = v;
            r->blew_up = 1;
        }
    }
}

const char *cn_report_status_name(cn_run_status s)
{
    switch (s) {
    case CN_RUN_FINISHED: return "finished";
    case CN_RUN_DIVERGED: return "diverged";
    case CN_RUN_INTERRUPTED: return "interrupted";
    case CN_RUN_NOT_RUN: return "not run";
    default: return "failed";
    }
}

/* The status from the files (and the exit code when known): interrupted wins over diverged, since an
 * unfinished run is resumed, not averaged, whatever it met on the way. */
static void decide_status(const cn_report_run *in, cn_report_rundata *r)
{
    char path[4200];
    if (r->have_summary && (r->interrupted || in->exit_code == 130 ||
                            (r->planned_steps && r->steps < r->planned_steps && !r->diverged))) {
        r->status = CN_RUN_INTERRUPTED;
        return;
    }
    if (!r->have_summary && (in->exit_code == CN_REPORT_EXIT_UNKNOWN || in->exit_code == 130 || in->exit_code > 128)) {
        /* killed before its summary was written: resumable when a checkpoint is there */
        join(path, sizeof path, in->dir, "checkpoint.safetensors");
        if (cn_file_exists(path)) {
            r->status = CN_RUN_INTERRUPTED;
            snprintf(r->reason, sizeof r->reason, "ended without summary.json; resumable from its checkpoint");
            return;
        }
        join(path, sizeof path, in->dir, "metrics.csv");
        if (in->exit_code == CN_REPORT_EXIT_UNKNOWN && !cn_file_exists(path)) {
            r->status = CN_RUN_NOT_RUN;
            snprintf(r->reason, sizeof r->reason, "not run");
            return;
        }
    }
    if (r->failed) r->status = CN_RUN_FAILED;
    else if (r->diverged) r->status = CN_RUN_DIVERGED;
    else r->status = CN_RUN_FINISHED;
}

cn_status cn_report_load(const cn_report_run *in, cn_report_rundata *r)
{
    memset(r, 0, sizeof *r);
    r->in = in;
    r->status = CN_RUN_FAILED;
    r->early_loss = r->blew_up_peak = NAN;
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
        r->status = CN_RUN_NOT_RUN;
        return CN_OK;
    }
    if (in->exit_code != 0 && in->exit_code != 3 && in->exit_code != 130 && in->exit_code != CN_REPORT_EXIT_UNKNOWN) {
        fail(r, "training failed (exit code %d)", in->exit_code);
    }
    load_summary(in->dir, r);
    if (r->have_summary) load_eval(in->dir, r, &nomem);
    if (!nomem) load_metrics(in->dir, r, &nomem);
    if (!nomem) load_config(in->dir, r);
    if (nomem) {
        cn_report_rundata_free(r);
        return cn_error(CN_ERR_NOMEM, "out of memory loading run %s", in->dir);
    }
    find_blow_up(r);   /* also for a run killed before its summary: its metrics.csv may show it */
    decide_status(in, r);
    return CN_OK;
}

void cn_report_rundata_free(cn_report_rundata *r)
{
    for (int c = 0; c < CN_RC_NCOLS; c++) {
        cn_free(r->col[c]);
        r->col[c] = NULL;
    }
    for (int t = 0; t < r->n_tensors; t++) {
        cn_free(r->tensor_name[t]);
        cn_free(r->tensor_col[t]);
    }
    cn_free(r->tensor_name);
    cn_free(r->tensor_col);
    r->tensor_name = NULL;
    r->tensor_col = NULL;
    r->n_tensors = 0;
    cn_free(r->eval_step);
    cn_free(r->eval_loss);
    r->eval_step = r->eval_loss = NULL;
    r->n_eval = 0;
    cJSON_Delete(r->config);
    r->config = NULL;
    r->n = 0;
}
