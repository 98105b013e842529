/* The numbers of a report as data: which runs enter a mean, the per-variant aggregates, and the two
 * files for scripts, report.json (every number of the tables) and runs.csv (one row per run).
 *
 * report.json: {"title", "clipnn_version", "blow_up_factor", "variants": [...], "runs": [...]}; each
 * variant has its counts by status and, per value (final_loss, test_loss, test_metric, clip_frac,
 * max_grad_norm_pre, steps_per_s), {present, finite, mean, sd, min, max} over the runs counted
 * (cn_report_counts). NaN is null and an infinity the string "inf"/"-inf", as in summary.json. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include <cJSON.h>

#include "io/files.h"
#include "report/internal.h"

int cn_report_counts(const cn_report_rundata *d, int loss_like)
{
    if (d->status != CN_RUN_FINISHED && d->status != CN_RUN_DIVERGED) return 0;
    if (loss_like && (d->status == CN_RUN_DIVERGED || d->blew_up)) return 0;
    return 1;
}

static cn_report_val field_of(const cn_report_rundata *d, size_t field)
{
    cn_report_val v;
    memcpy(&v, (const char *)d + field, sizeof v);
    return v;
}

void cn_report_aggregate(const cn_report_rundata *rd, const int *idx, int n, size_t field, int loss_like,
                         cn_report_agg *a)
{
    memset(a, 0, sizeof *a);
    a->all_inf = 1;
    a->mean = a->sd = a->min = a->max = NAN;
    double sum = 0;
    for (int k = 0; k < n; k++) {
        const cn_report_rundata *d = &rd[idx[k]];
        cn_report_val v = field_of(d, field);
        if (!cn_report_counts(d, loss_like) || !v.present) continue;
        a->present++;
        if (!isfinite(v.v)) {
            if (v.v != INFINITY) a->all_inf = 0;
            continue;
        }
        sum += v.v;
        if (!a->finite || v.v < a->min) a->min = v.v;
        if (!a->finite || v.v > a->max) a->max = v.v;
        a->finite++;
    }
    if (!a->finite) return;
    a->mean = sum / a->finite;
    if (a->finite < 2) return;
    double ss = 0;
    for (int k = 0; k < n; k++) {
        const cn_report_rundata *d = &rd[idx[k]];
        cn_report_val v = field_of(d, field);
        if (cn_report_counts(d, loss_like) && v.present && isfinite(v.v)) ss += (v.v - a->mean) * (v.v - a->mean);
    }
    a->sd = sqrt(ss / (a->finite - 1));
}

/* ---- report.json ---- */

static cJSON *num(double v)
{
    if (isnan(v)) return cJSON_CreateNull();
    if (isinf(v)) return cJSON_CreateString(v > 0 ? "inf" : "-inf");
    return cJSON_CreateNumber(v);
}

static cJSON *val(cn_report_val v) { return v.present ? num(v.v) : cJSON_CreateNull(); }

static const struct {
    const char *key;
    size_t field;
    int loss_like;
} values[] = {
    {"final_loss", offsetof(cn_report_rundata, final_loss), 1},
    {"test_loss", offsetof(cn_report_rundata, test_loss), 1},
    {"test_metric", offsetof(cn_report_rundata, test_metric), 1},
    {"clip_frac", offsetof(cn_report_rundata, clip_frac), 0},
    {"max_grad_norm_pre", offsetof(cn_report_rundata, max_gn), 0},
    {"steps_per_s", offsetof(cn_report_rundata, steps_per_s), 0},
};
#define N_VALUES (sizeof values / sizeof values[0])

static cJSON *run_json(const cn_report_rundata *d, const char *settings)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "variant", d->in->variant ? d->in->variant : "");
    cJSON_AddNumberToObject(j, "seed", (double)d->in->seed);
    cJSON_AddStringToObject(j, "settings", settings ? settings : "");
    cJSON_AddStringToObject(j, "status", cn_report_status_name(d->status));
    cJSON_AddItemToObject(j, "steps", d->have_summary ? cJSON_CreateNumber((double)d->steps) : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "train_steps", d->planned_steps ? cJSON_CreateNumber((double)d->planned_steps) : cJSON_CreateNull());
    for (size_t i = 0; i < N_VALUES; i++)
        cJSON_AddItemToObject(j, values[i].key, d->have_summary ? val(field_of(d, values[i].field)) : cJSON_CreateNull());
    cJSON_AddStringToObject(j, "test_metric_name", d->metric_name);
    cJSON_AddBoolToObject(j, "diverged", d->diverged);
    cJSON_AddItemToObject(j, "diverged_at_step", d->diverged_at ? cJSON_CreateNumber((double)d->diverged_at) : cJSON_CreateNull());
    cJSON_AddBoolToObject(j, "blew_up", d->blew_up);
    cJSON_AddItemToObject(j, "blew_up_at_step", d->blew_up_at ? cJSON_CreateNumber((double)d->blew_up_at) : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "early_loss", num(d->early_loss));
    cJSON_AddItemToObject(j, "blew_up_peak", num(d->blew_up_peak));
    cJSON_AddBoolToObject(j, "in_loss_means", cn_report_counts(d, 1));
    cJSON_AddStringToObject(j, "dir", d->in->dir ? d->in->dir : "");
    cJSON_AddStringToObject(j, "reason", d->reason);
    return j;
}

static cJSON *variant_json(const cn_report_rundata *rd, const char *name, const char *settings, const int *idx, int n)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddStringToObject(j, "settings", settings ? settings : "");
    int count[CN_RUN_NOT_RUN + 1] = {0}, blew = 0;
    cJSON *seeds = cJSON_AddArrayToObject(j, "seeds");
    cJSON *div = cJSON_AddArrayToObject(j, "diverged_at_steps");
    cJSON *bl = cJSON_AddArrayToObject(j, "blew_up_at_steps");
    for (int k = 0; k < n; k++) {
        const cn_report_rundata *d = &rd[idx[k]];
        count[d->status]++;
        cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)d->in->seed));
        if (d->status == CN_RUN_DIVERGED) cJSON_AddItemToArray(div, d->diverged_at ? cJSON_CreateNumber((double)d->diverged_at) : cJSON_CreateNull());
        if (cn_report_counts(d, 0) && d->blew_up) {
            blew++;
            cJSON_AddItemToArray(bl, d->blew_up_at ? cJSON_CreateNumber((double)d->blew_up_at) : cJSON_CreateNull());
        }
    }
    cJSON_AddNumberToObject(j, "runs", n);
    for (int s = CN_RUN_FINISHED; s <= CN_RUN_NOT_RUN; s++) {
        char key[32];
        snprintf(key, sizeof key, "%s", cn_report_status_name((cn_run_status)s));
        for (char *p = key; *p; p++) if (*p == ' ') *p = '_';
        cJSON_AddNumberToObject(j, key, count[s]);
    }
    cJSON_AddNumberToObject(j, "blew_up", blew);
    for (size_t i = 0; i < N_VALUES; i++) {
        cn_report_agg a;
        cn_report_aggregate(rd, idx, n, values[i].field, values[i].loss_like, &a);
        cJSON *o = cJSON_AddObjectToObject(j, values[i].key);
        if (!o) continue;
        cJSON_AddNumberToObject(o, "present", a.present);
        cJSON_AddNumberToObject(o, "finite", a.finite);
        cJSON_AddItemToObject(o, "mean", num(a.mean));
        cJSON_AddItemToObject(o, "sd", num(a.sd));
        cJSON_AddItemToObject(o, "min", num(a.min));
        cJSON_AddItemToObject(o, "max", num(a.max));
    }
    return j;
}

/* ---- runs.csv ---- */

/* A CSV field: quoted (with "" for ") when it holds a comma, quote or line break (RFC 4180). */
static void csv_text(cn_report_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) { cn_report_puts(b, s); return; }
    cn_report_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"') cn_report_puts(b, "\"\"");
        else { char c[2] = {*s, 0}; cn_report_puts(b, c); }
    }
    cn_report_puts(b, "\"");
}

/* A number as %.17g (round-trips a double; nan, inf, -inf), empty when absent. */
static void csv_num(cn_report_buf *b, int present, double v)
{
    cn_report_puts(b, ",");
    if (!present) return;
    if (isnan(v)) cn_report_puts(b, "nan");
    else if (isinf(v)) cn_report_puts(b, v > 0 ? "inf" : "-inf");
    else cn_report_printf(b, "%.17g", v);
}

static void csv_int(cn_report_buf *b, int present, long long v)
{
    cn_report_puts(b, ",");
    if (present) cn_report_printf(b, "%lld", v);
}

static void runs_csv(cn_report_buf *b, const cn_report_rundata *rd, const char *const *settings, int n)
{
    cn_report_puts(b, "variant,seed,settings,status,steps,train_steps");
    for (size_t i = 0; i < N_VALUES; i++) cn_report_printf(b, ",%s", values[i].key);
    cn_report_puts(b, ",test_metric_name,diverged,diverged_at_step,blew_up,blew_up_at_step,early_loss,blew_up_peak,"
                      "in_loss_means,dir,reason\n");
    for (int i = 0; i < n; i++) {
        const cn_report_rundata *d = &rd[i];
        csv_text(b, d->in->variant ? d->in->variant : "");
        cn_report_printf(b, ",%lld,", d->in->seed);
        csv_text(b, settings[i] ? settings[i] : "");
        cn_report_puts(b, ",");
        csv_text(b, cn_report_status_name(d->status));
        csv_int(b, d->have_summary, d->steps);
        csv_int(b, d->planned_steps > 0, d->planned_steps);
        for (size_t k = 0; k < N_VALUES; k++) {
            cn_report_val v = field_of(d, values[k].field);
            csv_num(b, d->have_summary && v.present, v.v);
        }
        cn_report_puts(b, ",");
        csv_text(b, d->metric_name);
        cn_report_printf(b, ",%d", d->diverged);
        csv_int(b, d->diverged_at > 0, d->diverged_at);
        cn_report_printf(b, ",%d", d->blew_up);
        csv_int(b, d->blew_up_at > 0, d->blew_up_at);
        csv_num(b, !isnan(d->early_loss), d->early_loss);
        csv_num(b, !isnan(d->blew_up_peak), d->blew_up_peak);
        cn_report_printf(b, ",%d,", cn_report_counts(d, 1));
        csv_text(b, d->in->dir ? d->in->dir : "");
        cn_report_puts(b, ",");
        csv_text(b, d->reason);
        cn_report_puts(b, "\n");
    }
}

cn_status cn_report_write_data(const char *out_dir, const char *title, const cn_report_rundata *rd, int n_runs,
                               const char *const *group_names, const char *const *group_settings,
                               const int *const *group_runs, const int *group_n, int n_groups, const char *baseline)
{
    cn_status st = CN_OK;
    cJSON *j = cJSON_CreateObject();
    cn_report_buf csv = {0};
    char path[4200];
    /* each run's settings: its variant's */
    const char **run_set = cn_calloc((size_t)(n_runs ? n_runs : 1), sizeof *run_set);
    if (!j || !run_set) {
        cJSON_Delete(j);
        cn_free(run_set);
        return cn_error(CN_ERR_NOMEM, "out of memory writing report.json");
    }
    for (int g = 0; g < n_groups; g++)
        for (int k = 0; k < group_n[g]; k++) run_set[group_runs[g][k]] = group_settings[g];
    cJSON_AddStringToObject(j, "title", title);
    cJSON_AddStringToObject(j, "clipnn_version", CN_VERSION);
    cJSON_AddNumberToObject(j, "blow_up_factor", CN_REPORT_BLOWUP_FACTOR);
    cJSON *vs = cJSON_AddArrayToObject(j, "variants");
    cJSON *rs = cJSON_AddArrayToObject(j, "runs");
    int oom = 0;
    cJSON *paired = cn_report_paired_json(rd, n_runs, baseline, &oom);   /* paired.c */
    cJSON *sweeps = cn_report_sweep_json(rd, n_runs, baseline, &oom);    /* sweep.c */
    int added_p = paired && cJSON_AddItemToObject(j, "paired", paired);
    int added_s = sweeps && cJSON_AddItemToObject(j, "sweeps", sweeps);
    if (!added_p || !added_s) {
        if (!added_p) cJSON_Delete(paired);
        if (!added_s) cJSON_Delete(sweeps);
        st = cn_error(CN_ERR_NOMEM, "out of memory writing report.json");
        goto out;
    }
    for (int g = 0; g < n_groups && vs; g++) {
        cJSON *v = variant_json(rd, group_names[g], group_settings[g], group_runs[g], group_n[g]);
        if (!v || !cJSON_AddItemToArray(vs, v)) { cJSON_Delete(v); st = cn_error(CN_ERR_NOMEM, "out of memory writing report.json"); goto out; }
    }
    for (int i = 0; i < n_runs && rs; i++) {
        cJSON *r = run_json(&rd[i], run_set[i]);
        if (!r || !cJSON_AddItemToArray(rs, r)) { cJSON_Delete(r); st = cn_error(CN_ERR_NOMEM, "out of memory writing report.json"); goto out; }
    }
    if (!vs || !rs) { st = cn_error(CN_ERR_NOMEM, "out of memory writing report.json"); goto out; }
    runs_csv(&csv, rd, run_set, n_runs);
    if (csv.oom) { st = cn_error(CN_ERR_NOMEM, "out of memory writing runs.csv"); goto out; }
    snprintf(path, sizeof path, "%s/report.json", out_dir);
    if ((st = cn_write_json_atomic(path, j))) goto out;
    snprintf(path, sizeof path, "%s/runs.csv", out_dir);
    st = cn_write_file_atomic(path, csv.p ? csv.p : "", csv.len);
out:
    cJSON_Delete(j);
    cn_free(run_set);
    cn_report_buf_free(&csv);
    return st;
}
