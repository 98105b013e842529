/* Suite "report_html": what the compare report says beyond the numbers of tests/test_report.c, on
 * run directories generated here: the variants' settings, the winner and its rule, unfinished runs
 * apart, "blew up" apart from "diverged", no means over diverged values, the effective scale, the
 * early-steps panels, test-loss curves, per-tensor heatmaps, a page readable on a phone, the same
 * bytes for the same runs, and a bounded size. The browser half is `make report-check`. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "report/internal.h"
#include "report/report.h"
#include "testutil.h"

/* ---- generated runs ---- */

typedef struct {
    int steps;            /* logged rows (steps 1..steps) */
    int planned;          /* train.steps in config.json */
    int exit_code;
    double loss;          /* every step's loss, unless blown up or diverged */
    int blow_at;          /* from this step the (finite) loss is blow_to; 0: never */
    double blow_to;
    int diverge_at;       /* from this step loss nan, grad inf; the summary says diverged; 0: never */
    double test_loss;     /* summary.json; NAN: null */
    const char *clip;     /* config.json's "clip" */
    int per_tensor;       /* gn_pre.a.weight, gn_pre.a.bias columns */
    int value_clip;       /* grad_norm_post = grad_norm_pre / 2 on even steps, clip_coef always 1 */
    int evals;            /* eval.csv rows, evenly spaced */
} spec;

static void put(const char *dir, const char *name, const char *text)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_msg(f != NULL, "%s", p);
    fputs(text, f);
    fclose(f);
}

static void make_run(const char *dir, const spec *sp)
{
    char p[600], buf[1200];
    snprintf(p, sizeof p, "mkdir -p %s", dir);
    ck_assert_int_eq(system(p), 0);
    snprintf(buf, sizeof buf, "{\"name\": \"t\", \"seed\": 1, \"train\": {\"steps\": %d}, \"clip\": %s}", sp->planned,
             sp->clip ? sp->clip : "{\"mode\": \"none\"}");
    put(dir, "config.json", buf);
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    FILE *f = fopen(p, "wb");
    ck_assert(f != NULL);
    fprintf(f, "step,epoch,loss,lr,grad_norm_pre,grad_norm_post,clip_coef,clip_threshold,clipped,grad_max_abs,"
               "nonfinite,skipped,time_ms%s\n", sp->per_tensor ? ",gn_pre.a.weight,gn_pre.a.bias" : "");
    double last = NAN;
    int clipped = 0;
    for (int s = 1; s <= sp->steps; s++) {
        int dv = sp->diverge_at && s >= sp->diverge_at;
        double loss = dv ? NAN : sp->blow_at && s >= sp->blow_at ? sp->blow_to : sp->loss;
        double pre = dv ? INFINITY : 1.0 + 0.001 * s, post = sp->value_clip && s % 2 == 0 ? pre / 2 : pre;
        clipped += sp->value_clip && s % 2 == 0;
        fprintf(f, "%d,0,%.9g,0.1,%.9g,%.9g,1,nan,%d,0.5,%d,0,1", s, loss, pre, post, post < pre, dv ? 3 : 0);
        if (sp->per_tensor) fprintf(f, ",%.9g,%.9g", pre * 0.8, pre * 0.6 * (1 + s % 7));
        fputc('\n', f);
        if (!dv) last = loss;
        if (dv) break;
    }
    fclose(f);
    int done = sp->diverge_at ? sp->diverge_at : sp->steps;
    char tl[32];
    if (isnan(sp->test_loss)) snprintf(tl, sizeof tl, "null");
    else snprintf(tl, sizeof tl, "%.9g", sp->test_loss);
    char dat[32];
    if (sp->diverge_at) snprintf(dat, sizeof dat, "%d", sp->diverge_at);
    else snprintf(dat, sizeof dat, "null");
    /* final_loss: the steady loss itself, so that the table's number is predictable */
    char fl[40];
    if (sp->diverge_at) snprintf(fl, sizeof fl, "null");
    else snprintf(fl, sizeof fl, "%.9g", last);
    snprintf(buf, sizeof buf,
             "{\"name\": \"t\", \"steps\": %d, \"final_loss\": %s, \"test_loss\": %s, \"test_metric\": null, "
             "\"test_metric_name\": \"mae\", \"diverged\": %s, \"diverged_at_step\": %s, \"clip_frac\": %.9g, "
             "\"max_grad_norm_pre\": %s, \"steps_per_s\": 100}",
             done, fl, tl, sp->diverge_at ? "true" : "false", dat, (double)clipped / done,
             sp->diverge_at ? "\"inf\"" : "2");
    put(dir, "summary.json", buf);
    snprintf(p, sizeof p, "%s/eval.csv", dir);
    f = fopen(p, "wb");
    ck_assert(f != NULL);
    fprintf(f, "step,test_loss,test_metric\n");
    for (int k = 1; k <= sp->evals; k++)
        fprintf(f, "%d,%.9g,0.5\n", k * sp->steps / sp->evals, isnan(sp->test_loss) ? 1.0 : sp->test_loss * (1 + 1.0 / k));
    fclose(f);
}

static spec base_spec(void)
{
    spec s = {40, 40, 0, 0.5, 0, 0, 0, 0.3, NULL, 0, 0, 2};
    return s;
}

typedef struct {
    char root[256];
    char *md, *html;
} out;

/* cn_report_write into root/out; the md and html read back */
static void report(out *o, const cn_report_run *runs, int n)
{
    char dir[400], p[500];
    snprintf(dir, sizeof dir, "%s/out", o->root);
    ck_assert_ok(cn_report_write(dir, "t", runs, n, NULL));
    snprintf(p, sizeof p, "%s/report.md", dir);
    o->md = tu_slurp(p, NULL);
    snprintf(p, sizeof p, "%s/report.html", dir);
    o->html = tu_slurp(p, NULL);
    ck_assert(o->md && o->html);
}

static void done(out *o)
{
    free(o->md);
    free(o->html);
    tu_remove_tree(o->root);
}

/* The comparison table's row of `variant` (the winner's name carries " (best)"), copied into row. */
static void md_row(const char *md, const char *variant, char *row, size_t n)
{
    const char *t = strstr(md, "\n| variant | settings |");
    ck_assert(t != NULL);
    const char *end = strstr(t + 1, "\n\n");   /* the table ends at the first blank line */
    char key[120];
    for (int best = 0; best < 2; best++) {
        snprintf(key, sizeof key, "\n| %s%s |", variant, best ? " (best)" : "");
        const char *p = strstr(t, key);
        if (p && p < end) {
            p++;
            const char *e = strchr(p, '\n');
            snprintf(row, n, "%.*s", (int)(e - p), p);
            return;
        }
    }
    ck_abort_msg("no row %s in\n%s", variant, md);
}

/* Cell k (0-based) of a markdown row. */
static void cell(const char *row, int k, char *c, size_t n)
{
    const char *p = row;
    for (int i = 0; i <= k; i++) {
        p = strchr(p, '|');
        ck_assert(p != NULL);
        p++;
    }
    while (*p == ' ') p++;
    const char *e = strchr(p, '|');
    while (e > p && e[-1] == ' ') e--;
    snprintf(c, n, "%.*s", (int)(e - p), p);
}

enum { C_VARIANT, C_SETTINGS, C_RUNS, C_FINAL, C_TEST, C_METRIC, C_DIV, C_BLEW, C_CLIPPED, C_MAXGN, C_SPS };

static char *chart(const char *html, const char *id)
{
    char key[80];
    snprintf(key, sizeof key, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart");
    char idk[80];
    snprintf(idk, sizeof idk, "id=\"chart-%s\"", id);
    for (const char *p = html; (p = strstr(p, key)); p++) {
        const char *gt = strchr(p, '>'), *i = strstr(p, idk);
        if (i && i < gt) {
            const char *e = strstr(p, "</svg>") + 6;
            char *s = malloc((size_t)(e - p) + 1);
            memcpy(s, p, (size_t)(e - p));
            s[e - p] = '\0';
            return s;
        }
    }
    return NULL;
}

static int count(const char *hay, const char *needle)
{
    int c = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) c++;
    return c;
}

static void tmp(out *o)
{
    memset(o, 0, sizeof *o);
    tu_make_tmpdir(o->root, sizeof o->root, "/tmp", "clipnn-rhtml");
}

static const char *path(out *o, const char *name)
{
    static char p[8][400];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", o->root, name);
    return p[k];
}

/* ---- settings ---- */

START_TEST(settings_are_what_the_variants_changed)
{
    const char *texts[] = {
        "{\"seed\": 1, \"model\": [{\"type\": \"rnn\", \"hidden\": 8}], \"clip\": {\"mode\": \"norm\", \"max_norm\": 0.1}}",
        "{\"seed\": 1, \"model\": [{\"type\": \"rnn\", \"hidden\": 8}], \"clip\": {\"mode\": \"norm\", \"max_norm\": 1}}",
        "{\"seed\": 1, \"model\": [{\"type\": \"rnn\", \"hidden\": 64}], \"clip\": {\"mode\": \"none\"}}",
    };
    cJSON *j[4] = {NULL};
    for (int i = 0; i < 3; i++) j[i] = cJSON_Parse(texts[i]);
    char *s[4];
    ck_assert_ok(cn_report_settings((void *const *)j, 4, s));   /* the 4th: unread */
    ck_assert_str_eq(s[0], "model.0.hidden=8, clip.mode=norm, clip.max_norm=0.1");
    ck_assert_str_eq(s[1], "model.0.hidden=8, clip.mode=norm, clip.max_norm=1");
    ck_assert_str_eq(s[2], "model.0.hidden=64, clip.mode=none");
    ck_assert_str_eq(s[3], "?");
    for (int i = 0; i < 4; i++) cn_free(s[i]);
    /* a sweep of one setting shows that setting only */
    ck_assert_ok(cn_report_settings((void *const *)j, 2, s));
    ck_assert_str_eq(s[0], "clip.max_norm=0.1");
    ck_assert_str_eq(s[1], "clip.max_norm=1");
    for (int i = 0; i < 2; i++) cn_free(s[i]);
    for (int i = 0; i < 3; i++) cJSON_Delete(j[i]);
}
END_TEST

START_TEST(table_shows_each_variants_settings)
{
    out o;
    tmp(&o);
    spec a = base_spec(), b = base_spec();
    b.clip = "{\"mode\": \"norm\", \"max_norm\": 1}";
    make_run(path(&o, "noclip"), &a);
    make_run(path(&o, "norm"), &b);
    cn_report_run runs[] = {{"noclip", 1, path(&o, "noclip"), 0, NULL}, {"norm", 1, path(&o, "norm"), 0, NULL}};
    report(&o, runs, 2);
    char row[2000], c[400];
    md_row(o.md, "norm", row, sizeof row);
    cell(row, C_SETTINGS, c, sizeof c);
    ck_assert_str_eq(c, "clip.mode=norm, clip.max\\_norm=1");
    md_row(o.md, "noclip", row, sizeof row);
    cell(row, C_SETTINGS, c, sizeof c);
    ck_assert_str_eq(c, "clip.mode=none");
    ck_assert(strstr(o.html, "<td class=\"settings\"><code>clip.mode=norm</code> <code>clip.max_norm=1</code></td>"));
    done(&o);
}
END_TEST

/* ---- winner ---- */

START_TEST(winner_is_lowest_median_test_loss_without_divergence)
{
    out o;
    tmp(&o);
    /* A: 0.5, 0.1 (median 0.3, mean 0.3); B: 0.2, 0.25, 0.9 (median 0.25, mean 0.45);
       C: 0.01 and a diverged run; D: 0.001 but blew up */
    const char *names[] = {"A", "A", "B", "B", "B", "C", "C", "D"};
    double tl[] = {0.5, 0.1, 0.2, 0.25, 0.9, 0.01, 0.01, 0.001};
    cn_report_run runs[8];
    for (int i = 0; i < 8; i++) {
        spec s = base_spec();
        s.test_loss = tl[i];
        if (i == 6) s.diverge_at = 20;
        if (i == 7) { s.blow_at = 30; s.blow_to = 500; }
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        make_run(path(&o, name), &s);
        runs[i] = (cn_report_run){names[i], i, strdup(path(&o, name)), i == 6 ? 3 : 0, NULL};
    }
    report(&o, runs, 8);
    ck_assert_msg(strstr(o.md, "\n| B (best) |") != NULL, "%s", o.md);
    ck_assert_int_eq(count(o.md, "(best)"), 1);
    ck_assert(strstr(o.md, "Highlighted: B, median test loss 0.25; the rule: the lowest median test loss over its "
                           "finished runs, among the variants none of whose runs diverged or blew up."));
    ck_assert_int_eq(count(o.html, "<tr class=\"winner\">"), 1);
    const char *w = strstr(o.html, "<tr class=\"winner\">");
    ck_assert(w && !strncmp(strstr(w, "</span>") + 7, "B <span class=\"badge\">best</span>", 33));
    for (int i = 0; i < 8; i++) free((char *)runs[i].dir);
    done(&o);
}
END_TEST

START_TEST(no_winner_when_every_variant_diverged)
{
    out o;
    tmp(&o);
    spec s = base_spec();
    s.diverge_at = 5;
    make_run(path(&o, "a"), &s);
    make_run(path(&o, "b"), &s);
    cn_report_run runs[] = {{"a", 1, path(&o, "a"), 3, NULL}, {"b", 1, path(&o, "b"), 3, NULL}};
    report(&o, runs, 2);
    ck_assert(strstr(o.md, "(best)") == NULL);
    ck_assert(strstr(o.md, "No variant is highlighted: none qualifies"));
    ck_assert(strstr(o.html, "class=\"winner\"") == NULL);
    done(&o);
}
END_TEST

/* ---- unfinished, diverged, blew up ---- */

START_TEST(unfinished_runs_are_listed_apart_and_never_averaged)
{
    out o;
    tmp(&o);
    spec fin = base_spec(), intr = base_spec(), shortrun = base_spec();
    fin.test_loss = 0.3;
    intr.steps = 12;           /* interrupted at step 12 of 40 */
    intr.test_loss = 0.9;
    intr.loss = 7;
    shortrun.steps = 30;       /* ended at 30 of 40 with exit 0 */
    shortrun.test_loss = 0.8;
    make_run(path(&o, "s1"), &fin);
    make_run(path(&o, "s2"), &intr);
    make_run(path(&o, "s3"), &shortrun);
    cn_report_run runs[] = {{"v", 1, path(&o, "s1"), 0, NULL}, {"v", 2, path(&o, "s2"), 130, NULL}, {"v", 3, path(&o, "s3"), 0, NULL}};
    report(&o, runs, 3);
    char row[2000], c[400];
    md_row(o.md, "v", row, sizeof row);
    cell(row, C_RUNS, c, sizeof c);
    ck_assert_str_eq(c, "3 (2 unfinished)");
    cell(row, C_TEST, c, sizeof c);
    ck_assert_str_eq(c, "0.3");            /* the finished run alone: no ±, nothing of 0.9 or 0.8 */
    cell(row, C_FINAL, c, sizeof c);
    ck_assert_str_eq(c, "0.5");
    cell(row, C_DIV, c, sizeof c);
    ck_assert_str_eq(c, "0/1");
    const char *sec = strstr(o.md, "## Unfinished runs (not averaged)");
    ck_assert(sec != NULL);
    ck_assert(strstr(sec, "| v | 2 | unfinished: interrupted at step 12 | 12 of 40 | 7 |"));
    ck_assert(strstr(sec, "| v | 3 | unfinished: stopped at step 30 | 30 of 40 |"));
    ck_assert(strstr(o.html, "<h2>Unfinished runs (not averaged)</h2>"));
    done(&o);
}
END_TEST

START_TEST(blew_up_is_flagged_apart_from_diverged)
{
    out o;
    tmp(&o);
    spec up = base_spec(), edge = base_spec(), dv = base_spec();
    up.loss = 0.05;
    up.blow_at = 25;
    up.blow_to = 4.7e6;                /* finite, far above 100 x 0.05 */
    edge.loss = 0.05;
    edge.blow_at = 25;
    edge.blow_to = 0.05 * 99;          /* below the factor: not flagged */
    dv.diverge_at = 20;
    make_run(path(&o, "up"), &up);
    make_run(path(&o, "edge"), &edge);
    make_run(path(&o, "dv"), &dv);
    cn_report_run runs[] = {{"up", 1, path(&o, "up"), 0, NULL}, {"edge", 1, path(&o, "edge"), 0, NULL}, {"dv", 1, path(&o, "dv"), 3, NULL}};
    report(&o, runs, 3);
    char row[2000], c[400];
    md_row(o.md, "up", row, sizeof row);
    cell(row, C_BLEW, c, sizeof c);
    ck_assert_str_eq(c, "1/1 (25)");
    cell(row, C_DIV, c, sizeof c);
    ck_assert_str_eq(c, "0/1");
    cell(row, C_FINAL, c, sizeof c);
    ck_assert_str_eq(c, "—");          /* 4.7e6 is not averaged */
    ck_assert(strstr(o.md, "blew up at step 25 (loss 4.7e+06, early level 0.05)"));
    md_row(o.md, "edge", row, sizeof row);
    cell(row, C_BLEW, c, sizeof c);
    ck_assert_str_eq(c, "0/1");
    md_row(o.md, "dv", row, sizeof row);
    cell(row, C_DIV, c, sizeof c);
    ck_assert_str_eq(c, "1/1 (20)");
    cell(row, C_BLEW, c, sizeof c);
    ck_assert_str_eq(c, "0/1");        /* diverged, not also blown up */
    done(&o);
}
END_TEST

/* The loader's flag on its own: 101 x the early level trips it, 99 x does not. */
START_TEST(blow_up_factor_boundary)
{
    out o;
    tmp(&o);
    for (int k = 0; k < 2; k++) {
        spec s = base_spec();
        s.loss = 2;
        s.blow_at = 11;
        s.blow_to = 2 * (k ? 101 : 99);
        make_run(path(&o, "r"), &s);
        cn_report_run in = {"v", 1, path(&o, "r"), 0, NULL};
        cn_report_rundata d;
        ck_assert_ok(cn_report_load(&in, &d));
        ck_assert_int_eq(d.blew_up, k);
        ck_assert_near(d.early_loss, 2, 0);
        if (k) ck_assert_int_eq(d.blew_up_at, 11);
        cn_report_rundata_free(&d);
    }
    done(&o);
}
END_TEST

START_TEST(no_mean_over_diverged_values)
{
    out o;
    tmp(&o);
    spec a = base_spec(), b = base_spec(), ok = base_spec();
    a.diverge_at = 10;
    a.test_loss = 1.174e40;            /* finite garbage from a diverged run */
    b.diverge_at = 12;
    b.test_loss = 3e40;
    ok.test_loss = 0.25;
    make_run(path(&o, "a"), &a);
    make_run(path(&o, "b"), &b);
    make_run(path(&o, "ok"), &ok);
    cn_report_run runs[] = {{"d", 1, path(&o, "a"), 3, NULL}, {"d", 2, path(&o, "b"), 3, NULL},
                            {"m", 1, path(&o, "ok"), 0, NULL}, {"m", 2, path(&o, "a"), 3, NULL}};
    report(&o, runs, 4);
    ck_assert_msg(strstr(o.md, "e+40") == NULL, "%s", o.md);
    ck_assert(strstr(o.html, "e+40") == NULL);
    char row[2000], c[400];
    md_row(o.md, "d", row, sizeof row);
    for (int k = C_FINAL; k <= C_METRIC; k++) {   /* the loss columns: every run left out */
        cell(row, k, c, sizeof c);
        ck_assert_msg(!strcmp(c, "—"), "column %d: %s", k, c);
    }
    /* the others keep the diverged runs, without a diverged note: the gradient norm went to inf */
    cell(row, C_MAXGN, c, sizeof c);
    ck_assert_str_eq(c, "inf");
    cell(row, C_SPS, c, sizeof c);
    ck_assert_str_eq(c, "100 ± 0");
    cell(row, C_DIV, c, sizeof c);
    ck_assert_str_eq(c, "2/2 (10, 12)");
    md_row(o.md, "m", row, sizeof row);
    cell(row, C_TEST, c, sizeof c);
    ck_assert_str_eq(c, "0.25 (1 diverged)");
    done(&o);
}
END_TEST

/* ---- charts ---- */

/* Distinct y coordinates in the path data of the first <path class="median"> of a group. */
static int distinct_y(const char *svg, const char *variant)
{
    char key[120];
    snprintf(key, sizeof key, "data-variant=\"%s\"", variant);
    const char *g = strstr(svg, key);
    ck_assert(g != NULL);
    const char *d = strstr(strstr(g, "class=\"median\""), " d=\"") + 4;
    double ys[64];
    int n = 0;
    for (const char *p = d; *p != '"';) {
        if (*p == 'M' || *p == 'L') {
            double x, y;
            ck_assert(sscanf(p + 1, "%lf,%lf", &x, &y) == 2);
            int seen = 0;
            for (int i = 0; i < n; i++) seen |= ys[i] == y;
            if (!seen && n < 64) ys[n++] = y;
        }
        p++;
    }
    return n;
}

START_TEST(effective_scale_shows_value_clipping)
{
    out o;
    tmp(&o);
    spec v = base_spec(), n = base_spec();
    v.value_clip = 1;
    v.clip = "{\"mode\": \"value\", \"clip_value\": 0.1}";
    make_run(path(&o, "v"), &v);
    make_run(path(&o, "n"), &n);
    cn_report_run in = {"value", 1, path(&o, "v"), 0, NULL};
    cn_report_rundata d;
    ck_assert_ok(cn_report_load(&in, &d));
    ck_assert_near(d.col[CN_RC_COEF][1], 1, 0);         /* the global coefficient says nothing */
    ck_assert_near(d.col[CN_RC_SCALE][0], 1, 1e-12);    /* step 1: untouched */
    ck_assert_near(d.col[CN_RC_SCALE][1], 0.5, 1e-12);  /* step 2: halved */
    cn_report_rundata_free(&d);
    cn_report_run runs[] = {in, {"none", 1, path(&o, "n"), 0, NULL}};
    report(&o, runs, 2);
    char *svg = chart(o.html, "scale");
    ck_assert(svg != NULL);
    ck_assert_int_eq(distinct_y(svg, "value"), 2);      /* 1 and 0.5 */
    ck_assert_int_eq(distinct_y(svg, "none"), 1);
    free(svg);
    ck_assert(chart(o.html, "coef") == NULL);
    done(&o);
}
END_TEST

START_TEST(early_panels_show_divergence_in_the_first_percent)
{
    out o;
    tmp(&o);
    spec dv = base_spec(), ok = base_spec();
    dv.steps = dv.planned = ok.steps = ok.planned = 5000;
    dv.diverge_at = 30;                 /* 0.6% of the run */
    make_run(path(&o, "dv"), &dv);
    make_run(path(&o, "ok"), &ok);
    cn_report_run runs[] = {{"noclip", 1, path(&o, "dv"), 3, NULL}, {"norm", 1, path(&o, "ok"), 0, NULL}};
    report(&o, runs, 2);
    ck_assert(strstr(o.html, "<h2>The first 100 steps</h2>"));   /* 2% of 5000 */
    const char *ids[] = {"loss-early", "gradnorm-early"};
    for (int i = 0; i < 2; i++) {
        char *svg = chart(o.html, ids[i]);
        ck_assert_msg(svg != NULL, "no %s", ids[i]);
        ck_assert_int_eq(count(svg, "class=\"diverge\" data-variant=\"noclip\" data-seed=\"1\" data-step=\"30\""), 1);
        ck_assert(strstr(svg, ">100</text>") != NULL);        /* the x axis ends at step 100 */
        ck_assert(strstr(svg, ">1000</text>") == NULL);
        /* the healthy run's line stops at step 100 too: its last point is at the plot's right edge */
        const char *g = strstr(svg, "data-variant=\"norm\"");
        const char *d = strstr(strstr(g, "class=\"median\""), " d=\"") + 4, *e = strchr(d, '"');
        const char *lastL = d;
        for (const char *p = d; p < e; p++) if (*p == 'L') lastL = p;
        double x;
        ck_assert(sscanf(lastL + 1, "%lf", &x) == 1);
        ck_assert_near(x, 1000 - 24, 0.2);                     /* SVG_W - MARGIN_R */
        free(svg);
    }
    done(&o);
}
END_TEST

START_TEST(test_loss_curves_from_eval_csv)
{
    out o;
    tmp(&o);
    spec s = base_spec();
    s.evals = 4;
    make_run(path(&o, "a"), &s);
    cn_report_run runs[] = {{"a", 1, path(&o, "a"), 0, NULL}};
    report(&o, runs, 1);
    char *svg = chart(o.html, "testloss");
    ck_assert(svg != NULL);
    const char *d = strstr(strstr(svg, "class=\"median\""), " d=\"") + 4;
    int pts = 0;
    for (const char *p = d; *p != '"'; p++) pts += *p == 'M' || *p == 'L';
    ck_assert_int_eq(pts, 4);
    free(svg);
    done(&o);
    /* no evaluation: no chart */
    tmp(&o);
    s.evals = 0;
    make_run(path(&o, "a"), &s);
    cn_report_run r2[] = {{"a", 1, path(&o, "a"), 0, NULL}};
    report(&o, r2, 1);
    ck_assert(chart(o.html, "testloss") == NULL);
    done(&o);
}
END_TEST

START_TEST(heatmaps_when_per_tensor_columns_exist)
{
    out o;
    tmp(&o);
    spec a = base_spec(), b = base_spec(), plain = base_spec();
    a.per_tensor = b.per_tensor = 1;
    b.diverge_at = 30;
    make_run(path(&o, "a"), &a);
    make_run(path(&o, "b"), &b);
    make_run(path(&o, "p"), &plain);
    cn_report_run runs[] = {{"a", 1, path(&o, "a"), 0, NULL}, {"b", 1, path(&o, "b"), 3, NULL}, {"plain", 1, path(&o, "p"), 0, NULL}};
    report(&o, runs, 3);
    char *h0 = chart(o.html, "heat-0"), *h1 = chart(o.html, "heat-1");
    ck_assert(h0 && h1);
    ck_assert(chart(o.html, "heat-2") == NULL);            /* no gn_pre columns */
    for (int i = 0; i < 2; i++) {
        const char *h = i ? h1 : h0;
        ck_assert(strstr(h, ">a.weight</text>") && strstr(h, ">a.bias</text>"));
        ck_assert(strstr(h, "gradient norm (log scale):") && strstr(h, ">not finite</text>"));   /* the legend */
        ck_assert_int_ge(count(h, "class=\"level\""), 2);
    }
    ck_assert(strstr(h0, "data-level=\"16\"") == NULL);    /* all finite */
    ck_assert(strstr(h1, "data-level=\"16\" fill=\"#e8202a\"") != NULL);   /* b's step 30 */
    free(h0);
    free(h1);
    done(&o);
}
END_TEST

/* ---- the page ---- */

START_TEST(page_is_readable_on_a_phone)
{
    out o;
    tmp(&o);
    spec s = base_spec();
    make_run(path(&o, "a"), &s);
    cn_report_run runs[] = {{"a", 1, path(&o, "a"), 0, NULL}};
    report(&o, runs, 1);
    ck_assert(strstr(o.html, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
    ck_assert(strstr(o.html, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                             "style-src 'unsafe-inline'\">"));
    ck_assert(strstr(o.html, "<div class=\"scroll\"><table class=\"summary\">"));
    ck_assert(strstr(o.html, ".num{white-space:nowrap;font-variant-numeric:tabular-nums}"));
    ck_assert(strstr(o.html, "svg.chart{display:block;width:100%;height:auto"));
    ck_assert(strstr(o.html, "<td><span class=\"num\">0.5</span></td>"));
    ck_assert(strstr(o.html, "<script") == NULL);
    for (const char *p = o.html; (p = strstr(p, "<svg")); p++) ck_assert(strstr(p, "viewBox=\"0 0 ") < strchr(p, '>'));
    done(&o);
}
END_TEST

START_TEST(numbers_keep_their_notes_apart)
{
    out o;
    tmp(&o);
    spec a = base_spec(), b = base_spec(), c = base_spec();
    b.loss = 0.7;
    c.diverge_at = 9;
    make_run(path(&o, "a"), &a);
    make_run(path(&o, "b"), &b);
    make_run(path(&o, "c"), &c);
    cn_report_run runs[] = {{"v", 1, path(&o, "a"), 0, NULL}, {"v", 2, path(&o, "b"), 0, NULL}, {"v", 3, path(&o, "c"), 3, NULL}};
    report(&o, runs, 3);
    /* mean ± sd never breaks; the note may go to the next line */
    ck_assert(strstr(o.html, "<span class=\"num\">0.6&#160;±&#160;0.14</span> <span class=\"note\">(1 diverged)"
                                 "</span>"));
    done(&o);
}
END_TEST

START_TEST(same_runs_give_the_same_bytes)
{
    out o;
    tmp(&o);
    spec a = base_spec(), b = base_spec();
    a.per_tensor = b.per_tensor = 1;
    b.diverge_at = 15;
    make_run(path(&o, "a"), &a);
    make_run(path(&o, "b"), &b);
    cn_report_run runs[] = {{"a", 1, path(&o, "a"), 0, NULL}, {"b", 1, path(&o, "b"), 3, NULL}};
    ck_assert_ok(cn_report_write(path(&o, "o1"), "t", runs, 2, NULL));
    ck_assert_ok(cn_report_write(path(&o, "o2"), "t", runs, 2, NULL));
    const char *files[] = {"report.md", "report.html"};
    for (int i = 0; i < 2; i++) {
        char p1[500], p2[500];
        snprintf(p1, sizeof p1, "%s/o1/%s", o.root, files[i]);
        snprintf(p2, sizeof p2, "%s/o2/%s", o.root, files[i]);
        size_t n1, n2;
        char *x = tu_slurp(p1, &n1), *y = tu_slurp(p2, &n2);
        ck_assert(x && y);
        ck_assert_msg(n1 == n2 && !memcmp(x, y, n1), "%s differs", files[i]);
        free(x);
        free(y);
    }
    done(&o);
}
END_TEST

/* 12 variants x 2 seeds x 20000 steps with per-tensor columns: the page stays around a megabyte
 * (lines downsampled, heatmaps bucketed), whatever the number of steps. */
START_TEST(report_stays_small)
{
    out o;
    tmp(&o);
    cn_report_run runs[24];
    for (int i = 0; i < 24; i++) {
        spec s = base_spec();
        s.steps = s.planned = 20000;
        s.per_tensor = 1;
        s.evals = 20;
        if (i == 0) s.diverge_at = 100;
        char name[16], var[16];
        snprintf(name, sizeof name, "r%d", i);
        make_run(path(&o, name), &s);
        snprintf(var, sizeof var, "v%d", i / 2);
        runs[i] = (cn_report_run){strdup(var), i % 2, strdup(path(&o, name)), i == 0 ? 3 : 0, NULL};
    }
    report(&o, runs, 24);
    size_t n = strlen(o.html);
    ck_assert_msg(n < 1200000, "report.html is %zu bytes", n);
    ck_assert_int_eq(count(o.html, "class=\"chart heatmap\""), 12);
    for (int i = 0; i < 24; i++) {
        free((char *)runs[i].variant);
        free((char *)runs[i].dir);
    }
    done(&o);
}
END_TEST

/* ---- the sweep section ---- */

/* Run k of a generated sweep: variant `name`, seed, config.json's clip, test loss; diverged (from step
 * 20) or blown up (from step 30) when asked. */
static void sweep_run(out *o, cn_report_run *runs, int k, const char *name, long long seed, const char *clip,
                      double tl, int diverge, int blow)
{
    spec s = base_spec();
    s.clip = clip;
    s.test_loss = tl;
    if (diverge) s.diverge_at = 20;
    if (blow) { s.blow_at = 30; s.blow_to = 500; }
    char dir[32];
    snprintf(dir, sizeof dir, "r%d", k);
    make_run(path(o, dir), &s);
    runs[k] = (cn_report_run){name, seed, strdup(path(o, dir)), diverge ? 3 : 0, NULL};
}

static void free_dirs(cn_report_run *runs, int n)
{
    for (int i = 0; i < n; i++) free((char *)runs[i].dir);
}

/* The x coordinates of a path's points ("M12.5,40L..."), in order; returns how many. */
static int path_xs(const char *d, double *x, int max)
{
    int n = 0;
    for (const char *p = d; *p && *p != '"' && n < max; p++)
        if (*p == 'M' || *p == 'L') x[n++] = strtod(p + 1, NULL);
    return n;
}

#define NORM(v) "{\"mode\": \"norm\", \"max_norm\": " v "}"

START_TEST(sweep_curve_of_a_threshold)
{
    out o;
    tmp(&o);
    cn_report_run runs[15];
    int k = 0;
    for (int s = 1; s <= 3; s++) sweep_run(&o, runs, k++, "noclip", s, NULL, NAN, 1, 0);
    const double t01[] = {0.3, 0.2, 0.25}, t1[] = {0.1, 0.12, 0.11};
    for (int s = 1; s <= 3; s++) sweep_run(&o, runs, k++, "n0.1", s, NORM("0.1"), t01[s - 1], 0, 0);
    for (int s = 1; s <= 3; s++) sweep_run(&o, runs, k++, "n1", s, NORM("1"), t1[s - 1], 0, 0);
    /* two of three diverged: no median; one of three blew up: a median, but never the best */
    sweep_run(&o, runs, k++, "n10", 1, NORM("10"), 0.05, 0, 0);
    sweep_run(&o, runs, k++, "n10", 2, NORM("10"), NAN, 1, 0);
    sweep_run(&o, runs, k++, "n10", 3, NORM("10"), NAN, 1, 0);
    sweep_run(&o, runs, k++, "n100", 1, NORM("100"), 0.02, 0, 0);
    sweep_run(&o, runs, k++, "n100", 2, NORM("100"), 0.03, 0, 0);
    sweep_run(&o, runs, k++, "n100", 3, NORM("100"), 0.9, 0, 1);
    report(&o, runs, k);

    /* markdown: one table row per value, in increasing order */
    const char *sw = strstr(o.md, "\n## Sweep: clip.max\\_norm\n");
    ck_assert_msg(sw != NULL, "%s", o.md);
    ck_assert_int_eq(count(o.md, "\n## Sweep: "), 1);
    const char *rows[] = {
        "| 0.1 | n0.1 | 3 | 0.25 | s1 0.3, s2 0.2, s3 0.25 | 0/3 | 0/3 | 0% |",
        "| 1 | n1 (best) | 3 | 0.11 | s1 0.1, s2 0.12, s3 0.11 | 0/3 | 0/3 | 0% |",
        "| 10 | n10 | 3 | — | s1 0.05, s2 diverged, s3 diverged | 2/3 | 0/3 | 0% |",
        "| 100 | n100 | 3 | 0.03 | s1 0.02, s2 0.03, s3 0.9 (blew up) | 0/3 | 1/3 | 0% |",
    };
    const char *at = sw;
    for (int i = 0; i < 4; i++) {
        const char *r = strstr(sw, rows[i]);
        ck_assert_msg(r != NULL && r > at, "row %d: %s\nin\n%s", i, rows[i], sw);
        at = r;
    }
    ck_assert(strstr(sw, "Best: clip.max\\_norm = 1 (variant n1), median test loss 0.11"));
    ck_assert(strstr(sw, "Baseline noclip: no median test loss (3/3 diverged, 0/3 blew up)."));

    /* the loss chart: a dot per run with a loss (open for the blown-up one), an x per diverged run */
    char *c = chart(o.html, "sweep-0-loss");
    ck_assert_msg(c != NULL, "no sweep chart");
    ck_assert_int_eq(count(c, "<circle class=\"point"), 3 + 3 + 1 + 3);
    ck_assert_int_eq(count(c, "<circle class=\"point blew-up\""), 1);
    ck_assert_int_eq(count(c, "<g class=\"diverge\""), 2);
    ck_assert(strstr(c, "diverged @") == NULL);   /* quiet marks: the legend explains them */
    ck_assert(strstr(c, "noclip (baseline: 3/3 diverged, no median)"));
    ck_assert(strstr(c, "clip.max_norm (log scale)"));
    /* the median line: 0.1 and 1, a gap at 10 (no median), 100 alone; log x: evenly spaced decades */
    const char *m = strstr(c, "class=\"median\"");
    ck_assert(m != NULL);
    double x[8];
    int nx = path_xs(strstr(m, " d=\"") + 4, x, 8);
    ck_assert_int_eq(nx, 3);
    ck_assert_msg(fabs((x[2] - x[1]) - 2 * (x[1] - x[0])) < 0.2, "%g %g %g", x[0], x[1], x[2]);
    ck_assert(strstr(m, "l0,0") != NULL);   /* 100 alone: a dot */
    free(c);

    /* the rates chart: divergence rate 0, 0, 2/3, 1/3 */
    c = chart(o.html, "sweep-0-rates");
    ck_assert(c != NULL);
    m = strstr(c, "class=\"median\"");
    ck_assert(m != NULL);
    ck_assert_int_eq(path_xs(strstr(m, " d=\"") + 4, x, 8), 4);
    free(c);
    ck_assert(strstr(o.html, "<tr class=\"winner\"><td><span class=\"num\">1</span></td><td class=\"variant\">n1 "
                             "<span class=\"badge\">best</span>"));

    /* report.json */
    char p[500];
    snprintf(p, sizeof p, "%s/out/report.json", o.root);
    char *js = tu_slurp(p, NULL);
    cJSON *j = cJSON_Parse(js);
    ck_assert(j != NULL);
    cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "sweeps"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(s0, "setting")->valuestring, "clip.max_norm");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(s0, "log_x")));
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(s0, "baseline"), "variant")->valuestring, "noclip");
    cJSON *f0 = cJSON_GetArrayItem(cJSON_GetObjectItem(s0, "families"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(f0, "best")->valuestring, "n1");
    cJSON *pts = cJSON_GetObjectItem(f0, "points");
    ck_assert_int_eq(cJSON_GetArraySize(pts), 4);
    cJSON *p10 = cJSON_GetArrayItem(pts, 2);
    ck_assert_double_eq(cJSON_GetObjectItem(p10, "value")->valuedouble, 10);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(p10, "median")));
    ck_assert_double_eq_tol(cJSON_GetObjectItem(p10, "divergence_rate")->valuedouble, 2.0 / 3, 1e-12);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(cJSON_GetArrayItem(pts, 0), "median")->valuedouble, 0.25, 1e-9);
    cJSON_Delete(j);
    free(js);

    /* --baseline n1, a swept value: the dashed reference is noclip still */
    cn_report_opts opts = {"t", "n1", NULL};
    ck_assert_ok(cn_report_write_opts(path(&o, "o2"), runs, k, &opts));
    snprintf(p, sizeof p, "%s/o2/report.html", o.root);
    char *h2 = tu_slurp(p, NULL);
    c = chart(h2, "sweep-0-loss");
    ck_assert(c && strstr(c, "noclip (baseline: 3/3 diverged, no median)"));
    free(c);
    free(h2);
    free_dirs(runs, k);
    done(&o);
}
END_TEST

START_TEST(no_sweep_without_three_values_of_one_setting)
{
    out o;
    tmp(&o);
    cn_report_run runs[4];
    /* two values; and a third that also changes another setting */
    sweep_run(&o, runs, 0, "noclip", 1, NULL, 0.5, 0, 0);
    sweep_run(&o, runs, 1, "a", 1, NORM("0.1"), 0.4, 0, 0);
    sweep_run(&o, runs, 2, "b", 1, NORM("1"), 0.3, 0, 0);
    sweep_run(&o, runs, 3, "c", 1, "{\"mode\": \"norm\", \"max_norm\": 10, \"norm_type\": 1}", 0.3, 0, 0);
    report(&o, runs, 4);
    ck_assert(strstr(o.md, "## Sweep") == NULL);
    ck_assert(strstr(o.html, "class=\"sweep\"") == NULL);
    char p[500];
    snprintf(p, sizeof p, "%s/out/report.json", o.root);
    char *js = tu_slurp(p, NULL);
    cJSON *j = cJSON_Parse(js);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "sweeps")), 0);
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(j, "sweeps")));
    cJSON_Delete(j);
    free(js);
    free_dirs(runs, 4);
    done(&o);
}
END_TEST

/* max_norm swept at each of two norm types: one chart, two families named by what sets them apart;
 * no test loss anywhere: the final training loss. */
START_TEST(sweep_families_share_a_chart)
{
    out o;
    tmp(&o);
    cn_report_run runs[6];
    const char *cfg[] = {"{\"mode\": \"norm\", \"max_norm\": 0.5, \"norm_type\": 2}",
                         "{\"mode\": \"norm\", \"max_norm\": 1, \"norm_type\": 2}",
                         "{\"mode\": \"norm\", \"max_norm\": 2, \"norm_type\": 2}",
                         "{\"mode\": \"norm\", \"max_norm\": 0.5, \"norm_type\": 1}",
                         "{\"mode\": \"norm\", \"max_norm\": 1, \"norm_type\": 1}",
                         "{\"mode\": \"norm\", \"max_norm\": 2, \"norm_type\": 1}"};
    const char *names[] = {"a0.5", "a1", "a2", "b0.5", "b1", "b2"};
    for (int i = 0; i < 6; i++) sweep_run(&o, runs, i, names[i], 1, cfg[i], NAN, 0, 0);
    report(&o, runs, 6);
    ck_assert_int_eq(count(o.md, "\n## Sweep: "), 1);
    ck_assert(strstr(o.md, "\n### clip.norm\\_type=2\n"));
    ck_assert(strstr(o.md, "\n### clip.norm\\_type=1\n"));
    ck_assert(strstr(o.md, "median final training loss"));
    char *c = chart(o.html, "sweep-0-loss");
    ck_assert(c != NULL);
    /* two families; no baseline line: the default baseline, a0.5, is a swept value and there is no noclip */
    ck_assert_int_eq(count(c, "<g class=\"series\""), 2);
    ck_assert(strstr(c, "data-variant=\"clip.norm_type=1\""));
    free(c);
    free_dirs(runs, 6);
    done(&o);
}
END_TEST

/* A value <= 0 among the swept ones: a linear x axis. */
START_TEST(sweep_with_zero_has_a_linear_axis)
{
    out o;
    tmp(&o);
    cn_report_run runs[3];
    sweep_run(&o, runs, 0, "e0", 1, "{\"mode\": \"norm\", \"max_norm\": 1, \"eps\": 0}", 0.3, 0, 0);
    sweep_run(&o, runs, 1, "e1", 1, "{\"mode\": \"norm\", \"max_norm\": 1, \"eps\": 0.5}", 0.2, 0, 0);
    sweep_run(&o, runs, 2, "e2", 1, "{\"mode\": \"norm\", \"max_norm\": 1, \"eps\": 1}", 0.1, 0, 0);
    report(&o, runs, 3);
    char *c = chart(o.html, "sweep-0-loss");
    ck_assert(c != NULL);
    ck_assert(strstr(c, "clip.eps (log scale)") == NULL);
    ck_assert_int_eq(count(c, "<circle class=\"point\""), 3);
    const char *m = strstr(c, "class=\"median\"");
    double x[4];
    ck_assert_int_eq(path_xs(strstr(m, " d=\"") + 4, x, 4), 3);
    ck_assert(fabs((x[2] - x[1]) - (x[1] - x[0])) < 0.2);   /* 0, 0.5, 1: evenly spaced */
    free(c);
    free_dirs(runs, 3);
    done(&o);
}
END_TEST

/* With a test set, the sweep table has the median test metric of the runs that neither diverged nor
 * blew up, with how many had one when not all did. */
START_TEST(sweep_table_has_the_test_metric)
{
    out o;
    tmp(&o);
    cn_report_run runs[5];
    sweep_run(&o, runs, 0, "n0.1", 1, NORM("0.1"), 0.3, 0, 0);
    sweep_run(&o, runs, 1, "n1", 1, NORM("1"), 0.2, 0, 0);
    sweep_run(&o, runs, 2, "n1", 2, NORM("1"), 0.25, 0, 1);   /* blew up: its metric is left out */
    sweep_run(&o, runs, 3, "n10", 1, NORM("10"), 0.1, 0, 0);
    sweep_run(&o, runs, 4, "n10", 2, NORM("10"), 0.1, 0, 0);
    /* test_metric per run: 0.9, 0.8, 0.1, 0.7 and none */
    const char *metric[] = {"0.9", "0.8", "0.1", "0.7", NULL};
    for (int i = 0; i < 5; i++) {
        if (!metric[i]) continue;
        char p[600];
        snprintf(p, sizeof p, "%s/summary.json", runs[i].dir);
        char *js = tu_slurp(p, NULL), *at = strstr(js, "\"test_metric\": null");
        ck_assert(at != NULL);
        char buf[2000];
        snprintf(buf, sizeof buf, "%.*s\"test_metric\": %s%s", (int)(at - js), js, metric[i],
                 at + strlen("\"test_metric\": null"));
        FILE *f = fopen(p, "wb");
        fputs(buf, f);
        fclose(f);
        free(js);
    }
    report(&o, runs, 5);
    ck_assert_msg(strstr(o.md, "| clipped steps | median test mae |") != NULL, "%s", o.md);
    ck_assert(strstr(o.md, "| 0.1 | n0.1 | 1 | 0.3 | s1 0.3 | 0/1 | 0/1 | 0% | 0.9 |"));
    ck_assert(strstr(o.md, "| 0/2 | 1/2 | 0% | 0.8 |"));            /* n1: the blown-up run's 0.1 left out */
    ck_assert(strstr(o.md, "| 0/2 | 0/2 | 0% | 0.7 (1 of 2) |"));   /* n10: one of two had a metric */
    ck_assert(strstr(o.html, "<th>median test mae</th>"));
    ck_assert(strstr(o.html, "<span class=\"num\">0.7</span> <span class=\"note\">(1 of 2)</span>"));
    free_dirs(runs, 5);
    done(&o);
}
END_TEST

/* Memory running out anywhere in the sweep section: the buffer says so (or the JSON is NULL with
 * oom set); no crash, no leak (ASan/valgrind runs), and with enough memory the same text as before. */
START_TEST(sweep_survives_allocation_failure)
{
    out o;
    tmp(&o);
    cn_report_run runs[7];
    sweep_run(&o, runs, 0, "noclip", 1, NULL, NAN, 1, 0);
    sweep_run(&o, runs, 1, "n0.1", 1, NORM("0.1"), 0.3, 0, 0);
    sweep_run(&o, runs, 2, "n1", 1, NORM("1"), 0.1, 0, 0);
    sweep_run(&o, runs, 3, "n10", 1, NORM("10"), NAN, 1, 0);
    sweep_run(&o, runs, 4, "n10", 2, NORM("10"), 0.2, 0, 1);
    sweep_run(&o, runs, 5, "m0.1", 1, "{\"mode\": \"norm\", \"max_norm\": 0.1, \"norm_type\": 1}", 0.3, 0, 0);
    sweep_run(&o, runs, 6, "m1", 1, "{\"mode\": \"norm\", \"max_norm\": 1, \"norm_type\": 1}", 0.3, 0, 0);
    cn_report_rundata rd[7];
    for (int i = 0; i < 7; i++) ck_assert_ok(cn_report_load(&runs[i], &rd[i]));
    cn_report_buf ref = {0};
    uint64_t a0 = cn_alloc_count();
    cn_report_sweep_html(&ref, rd, 7, NULL);
    uint64_t n = cn_alloc_count() - a0;
    ck_assert(!ref.oom && ref.p && strstr(ref.p, "sweep-0-rates"));
    int failed = 0;
    for (uint64_t k = 1; k <= n + 1; k++) {
        cn_report_buf b = {0}, m = {0};
        cn_alloc_fail_at(k);
        cn_report_sweep_html(&b, rd, 7, NULL);
        cn_alloc_fail_at(k);
        cn_report_sweep_md(&m, rd, 7, NULL);
        cn_alloc_fail_at(k);
        int oom = 0;
        cJSON *j = cn_report_sweep_json(rd, 7, NULL, &oom);
        cn_alloc_fail_at(0);
        ck_assert(j != NULL || oom);
        if (!b.oom) ck_assert_str_eq(b.p, ref.p);
        failed += b.oom;
        cJSON_Delete(j);
        cn_report_buf_free(&b);
        cn_report_buf_free(&m);
    }
    ck_assert_int_ge(failed, (int)n / 2);   /* the failures were reached, and reported */
    cn_report_buf_free(&ref);
    for (int i = 0; i < 7; i++) cn_report_rundata_free(&rd[i]);
    free_dirs(runs, 7);
    done(&o);
}
END_TEST

Suite *suite_report_html(void)
{
    Suite *s = suite_create("report_html");
    TCase *tc = tcase_create("report_html");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, settings_are_what_the_variants_changed);
    tcase_add_test(tc, table_shows_each_variants_settings);
    tcase_add_test(tc, winner_is_lowest_median_test_loss_without_divergence);
    tcase_add_test(tc, no_winner_when_every_variant_diverged);
    tcase_add_test(tc, unfinished_runs_are_listed_apart_and_never_averaged);
    tcase_add_test(tc, blew_up_is_flagged_apart_from_diverged);
    tcase_add_test(tc, blow_up_factor_boundary);
    tcase_add_test(tc, no_mean_over_diverged_values);
    tcase_add_test(tc, effective_scale_shows_value_clipping);
    tcase_add_test(tc, early_panels_show_divergence_in_the_first_percent);
    tcase_add_test(tc, test_loss_curves_from_eval_csv);
    tcase_add_test(tc, heatmaps_when_per_tensor_columns_exist);
    tcase_add_test(tc, page_is_readable_on_a_phone);
    tcase_add_test(tc, numbers_keep_their_notes_apart);
    tcase_add_test(tc, same_runs_give_the_same_bytes);
    tcase_add_test(tc, report_stays_small);
    tcase_add_test(tc, sweep_curve_of_a_threshold);
    tcase_add_test(tc, no_sweep_without_three_values_of_one_setting);
    tcase_add_test(tc, sweep_families_share_a_chart);
    tcase_add_test(tc, sweep_with_zero_has_a_linear_axis);
    tcase_add_test(tc, sweep_survives_allocation_failure);
    tcase_add_test(tc, sweep_table_has_the_test_metric);
    suite_add_tcase(s, tc);
    return s;
}
