/* Suite "report": cn_report_write on fixed run directories (tests/data/report/):
 *   noclip-s1  done           noclip-s2  diverged at step 8 (nan/inf rows, final_loss null, max norm "inf")
 *   norm-s1    done           norm-s2    done           norm seed 3: failed, no files (exit code 1)
 * The markdown table is parsed back and compared with numbers computed here from the summaries; each
 * SVG of report.html goes through a tiny XML well-formedness checker. Output goes to mkdtemp dirs. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "report/report.h"
#include "testutil.h"

/* ---- helpers ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0, k;
    char *p = malloc(cap);
    while (p && (k = fread(p + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 == cap) p = realloc(p, cap *= 2);
    }
    fclose(f);
    if (p) p[n] = '\0';
    return p;
}

static void make_tmpdir(char *out, size_t n)
{
    snprintf(out, n, "/tmp/clipnn-report-XXXXXX");
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp: %s", strerror(errno));
}

/* Removes the files we create (reports, generated runs) and the directory. */
static void rm_dir(const char *dir)
{
    static const char *const files[] = {"report.md", "report.html", "summary.json", "metrics.csv", "eval.csv",
                                        "config.json", NULL};
    char p[4200];
    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static const cn_report_run fixture_runs[] = {
    {"noclip", 1, "data/report/noclip-s1", 0, NULL},
    {"noclip", 2, "data/report/noclip-s2", 3, NULL},
    {"norm", 1, "data/report/norm-s1", 0, NULL},
    {"norm", 2, "data/report/norm-s2", 0, NULL},
    {"norm", 3, "data/report/norm-s3-never-written", 1, NULL},
};
#define N_FIXTURE ((int)(sizeof fixture_runs / sizeof fixture_runs[0]))

typedef struct {
    char dir[256];
    char *md, *html;
} outputs;

static void write_report(outputs *o, const cn_report_run *runs, int n)
{
    make_tmpdir(o->dir, sizeof o->dir);
    ck_assert_ok(cn_report_write(o->dir, "fixture comparison", runs, n, NULL));
    char p[400];
    snprintf(p, sizeof p, "%s/report.md", o->dir);
    o->md = slurp(p);
    snprintf(p, sizeof p, "%s/report.html", o->dir);
    o->html = slurp(p);
    ck_assert_msg(o->md != NULL, "report.md missing");
    ck_assert_msg(o->html != NULL, "report.html missing");
}

static void free_outputs(outputs *o)
{
    free(o->md);
    free(o->html);
    rm_dir(o->dir);
}

/* ---- the markdown table, parsed back ---- */

#define MAXC 12
typedef struct {
    int n;
    char cell[MAXC][200];
} md_row;

/* Splits "| a | b\|c |" into cells (unescaping \x), trimmed. */
static void split_row(const char *line, md_row *r)
{
    r->n = 0;
    const char *p = strchr(line, '|');
    if (!p) return;
    p++;
    while (*p && *p != '\n' && r->n < MAXC) {
        char *out = r->cell[r->n];
        size_t k = 0;
        while (*p && *p != '\n' && *p != '|') {
            if (*p == '\\' && p[1] && p[1] != '\n') p++;
            if (k + 1 < sizeof r->cell[0]) out[k++] = *p;
            p++;
        }
        while (k && out[k - 1] == ' ') k--;
        out[k] = '\0';
        size_t lead = strspn(out, " ");
        memmove(out, out + lead, k - lead + 1);
        if (*p != '|') break;
        p++;
        r->n++;
    }
}

/* Finds the comparison table's row of `variant` (first table of the document). */
static int find_row(const char *md, const char *variant, md_row *hdr, md_row *row)
{
    const char *t = strstr(md, "| variant | settings | runs |");
    ck_assert_msg(t != NULL, "no comparison table in:\n%s", md);
    split_row(t, hdr);
    const char *line = strchr(t, '\n') + 1;   /* separator */
    for (line = strchr(line, '\n') + 1; *line == '|'; line = strchr(line, '\n') + 1) {
        split_row(line, row);
        /* the winner's name carries " (best)" */
        size_t l = strlen(row->cell[0]);
        if (l > 7 && !strcmp(row->cell[0] + l - 7, " (best)")) row->cell[0][l - 7] = '\0';
        if (row->n > 0 && !strcmp(row->cell[0], variant)) return 1;
    }
    return 0;
}

static int col_of(const md_row *hdr, const char *name)
{
    for (int i = 0; i < hdr->n; i++)
        if (!strcmp(hdr->cell[i], name)) return i;
    ck_abort_msg("no column \"%s\"", name);
    return -1;
}

/* From the summaries: mean, sample std, finite and present counts of a key over the runs given. */
typedef struct {
    double mean, std;
    int f, p;
} expect;

static double summary_value(const cJSON *v, int *present)
{
    *present = v != NULL;
    if (!v || cJSON_IsNull(v)) return NAN;
    if (cJSON_IsString(v)) return !strcmp(v->valuestring, "inf") ? INFINITY : NAN;
    return v->valuedouble;
}

/* loss_like: the loss and metric columns leave out diverged runs (none of the fixtures blew up). */
static expect expected(const char *const *dirs, int n, const char *key, double scale, int loss_like)
{
    expect e = {0, 0, 0, 0};
    double v[8];
    for (int i = 0; i < n; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/summary.json", dirs[i]);
        char *text = slurp(p);
        ck_assert_msg(text != NULL, "%s missing", p);
        cJSON *j = cJSON_Parse(text);
        free(text);
        int present;
        double x = summary_value(cJSON_GetObjectItemCaseSensitive(j, key), &present);
        int diverged = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "diverged"));
        cJSON_Delete(j);
        if (loss_like && diverged) continue;
        e.p += present;
        if (isfinite(x)) v[e.f++] = x * scale;
    }
    for (int i = 0; i < e.f; i++) e.mean += v[i] / e.f;
    for (int i = 0; i < e.f && e.f > 1; i++) e.std += (v[i] - e.mean) * (v[i] - e.mean) / (e.f - 1);
    e.std = sqrt(e.std);
    return e;
}

/* "m ± s (f/p finite; d diverged)" (parts optional) against e, to %.4g precision; ndiv diverged runs
 * were left out of e. */
static void check_cell(const char *cell, expect e, int ndiv, const char *what)
{
    double m, s = 0;
    ck_assert_msg(sscanf(cell, "%lf", &m) == 1, "%s: \"%s\" is not a number", what, cell);
    ck_assert_msg(fabs(m - e.mean) <= 6e-4 * fabs(e.mean), "%s: mean %s, expected %.6g", what, cell, e.mean);
    const char *pm = strstr(cell, "± ");
    ck_assert_msg((pm != NULL) == (e.f >= 2), "%s: \"%s\": ± shown iff 2+ finite values", what, cell);
    if (pm) {
        ck_assert(sscanf(pm + strlen("± "), "%lf", &s) == 1);
        /* the spread is printed to 2 significant digits */
        ck_assert_msg(fabs(s - e.std) <= 0.051 * fabs(e.std) + 1e-12, "%s: std %s, expected %.6g", what, cell, e.std);
    }
    char note[64];
    if (e.f < e.p && ndiv) snprintf(note, sizeof note, "(%d/%d finite; %d diverged)", e.f, e.p, ndiv);
    else if (e.f < e.p) snprintf(note, sizeof note, "(%d/%d finite)", e.f, e.p);
    else if (ndiv) snprintf(note, sizeof note, "(%d diverged)", ndiv);
    else note[0] = '\0';
    if (*note) ck_assert_msg(strstr(cell, note) != NULL, "%s: \"%s\" lacks %s", what, cell, note);
    else ck_assert_msg(strchr(cell, '(') == NULL, "%s: \"%s\" has a note", what, cell);
}

/* dirs: the runs that ran to their end; ndiv: how many of them diverged (left out of the loss columns) */
static void check_variant_numbers(const char *md, const char *variant, const char *const *dirs, int n, int ndiv)
{
    md_row hdr, row;
    ck_assert_msg(find_row(md, variant, &hdr, &row), "no row for %s", variant);
    ck_assert_int_eq(row.n, hdr.n);
    check_cell(row.cell[col_of(&hdr, "final loss")], expected(dirs, n, "final_loss", 1, 1), ndiv, "final loss");
    check_cell(row.cell[col_of(&hdr, "test loss")], expected(dirs, n, "test_loss", 1, 1), ndiv, "test loss");
    check_cell(row.cell[col_of(&hdr, "test accuracy")], expected(dirs, n, "test_metric", 1, 1), ndiv, "test metric");
    /* the other columns keep the diverged runs: how often they clipped, how fast they ran */
    check_cell(row.cell[col_of(&hdr, "clipped steps")], expected(dirs, n, "clip_frac", 100, 0), 0, "clipped");
    check_cell(row.cell[col_of(&hdr, "max grad norm (pre-clip)")], expected(dirs, n, "max_grad_norm_pre", 1, 0), 0,
               "max norm");
    check_cell(row.cell[col_of(&hdr, "steps/s")], expected(dirs, n, "steps_per_s", 1, 0), 0, "steps/s");
}

/* ---- a tiny XML well-formedness checker ---- */

static int entity_ok(const char *s)
{
    static const char *const named[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", NULL};
    for (int i = 0; named[i]; i++)
        if (!strncmp(s, named[i], strlen(named[i]))) return 1;
    if (s[1] != '#') return 0;
    const char *p = s + 2;
    int hex = *p == 'x';
    if (hex) p++;
    const char *q = p;
    while (hex ? isxdigit((unsigned char)*q) : isdigit((unsigned char)*q)) q++;
    return q > p && *q == ';';
}

static int name_char(char c) { return isalnum((unsigned char)c) || c == '-' || c == '_' || c == ':' || c == '.'; }

/* NULL if s[0..n) is well-formed (balanced tags, quoted attributes, escaped text); else why. */
static const char *xml_check(const char *s, size_t n, char *why, size_t nwhy)
{
    char stack[64][48];
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '&') {
            if (!entity_ok(s + i)) { snprintf(why, nwhy, "bad entity at %zu: %.12s", i, s + i); return why; }
            continue;
        }
        if (s[i] != '<') continue;
        if (!strncmp(s + i, "<!--", 4)) {
            const char *e = strstr(s + i, "-->");
            if (!e) return "unterminated comment";
            i = (size_t)(e - s) + 2;
            continue;
        }
        int closing = s[i + 1] == '/';
        size_t j = i + 1 + closing, k = j;
        while (k < n && name_char(s[k])) k++;
        if (k == j || k - j >= sizeof stack[0]) { snprintf(why, nwhy, "bad tag name at %zu", i); return why; }
        if (closing) {
            if (s[k] != '>') { snprintf(why, nwhy, "bad closing tag at %zu", i); return why; }
            if (!depth || strlen(stack[depth - 1]) != k - j || strncmp(stack[depth - 1], s + j, k - j)) {
                snprintf(why, nwhy, "</%.*s> does not close <%s>", (int)(k - j), s + j, depth ? stack[depth - 1] : "");
                return why;
            }
            depth--;
            i = k;
            continue;
        }
        char name[48];
        snprintf(name, sizeof name, "%.*s", (int)(k - j), s + j);
        for (;;) {   /* attributes */
            size_t sp = k;
            while (k < n && isspace((unsigned char)s[k])) k++;
            if (s[k] == '/' && s[k + 1] == '>') { k++; break; }
            if (s[k] == '>') {
                if (depth == 64) return "too deep";
                snprintf(stack[depth++], sizeof stack[0], "%s", name);
                break;
            }
            if (k == sp) { snprintf(why, nwhy, "no space before attribute in <%s> at %zu", name, k); return why; }
            size_t a = k;
            while (k < n && name_char(s[k])) k++;
            if (k == a || s[k] != '=' || s[k + 1] != '"') {
                snprintf(why, nwhy, "unquoted or bad attribute in <%s> at %zu: %.20s", name, a, s + a);
                return why;
            }
            for (k += 2; k < n && s[k] != '"'; k++) {
                if (s[k] == '<') { snprintf(why, nwhy, "'<' in an attribute of <%s>", name); return why; }
                if (s[k] == '&' && !entity_ok(s + k)) { snprintf(why, nwhy, "bad entity in <%s>", name); return why; }
            }
            if (k == n) return "unterminated attribute";
            k++;
        }
        i = k;
    }
    if (depth) { snprintf(why, nwhy, "<%s> not closed", stack[depth - 1]); return why; }
    return NULL;
}

/* The i-th <svg ...>...</svg> of the page (copy, caller frees), or NULL. */
static char *svg_at(const char *html, int i)
{
    const char *p = html;
    for (int k = 0;; k++) {
        p = strstr(p, "<svg");
        if (!p) return NULL;
        const char *e = strstr(p, "</svg>");
        ck_assert(e != NULL);
        e += strlen("</svg>");
        if (k == i) {
            char *out = malloc((size_t)(e - p) + 1);
            memcpy(out, p, (size_t)(e - p));
            out[e - p] = '\0';
            return out;
        }
        p = e;
    }
}

/* The chart <svg ... id="chart-ID"> of the page (copy, caller frees), or NULL. */
static char *chart_by_id(const char *html, const char *id)
{
    char key[80];
    snprintf(key, sizeof key, "id=\"chart-%s\"", id);
    for (int i = 0;; i++) {
        char *svg = svg_at(html, i);
        if (!svg) return NULL;
        const char *open_end = strchr(svg, '>');
        const char *k = strstr(svg, key);
        if (k && k < open_end) return svg;
        free(svg);
    }
}

/* the line charts every report has, in page order */
static const char *const line_charts[] = {"loss", "gradnorm", "scale"};

static int count(const char *hay, const char *needle)
{
    int c = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) c++;
    return c;
}

/* The <g class="series" data-variant="V"> group of an svg (copy, caller frees). */
static char *series_group(const char *svg, const char *variant)
{
    char key[200];
    snprintf(key, sizeof key, "<g class=\"series\" data-variant=\"%s\"", variant);
    const char *p = strstr(svg, key);
    if (!p) return NULL;
    const char *e = strstr(p, "</g>");
    char *out = malloc((size_t)(e - p) + 1);
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return out;
}

/* ---- tests ---- */

START_TEST(table_numbers_match_summaries)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    const char *noclip[] = {"data/report/noclip-s1", "data/report/noclip-s2"};   /* seed 2 diverged: no loss mean */
    const char *norm[] = {"data/report/norm-s1", "data/report/norm-s2"};   /* seed 3 failed: not averaged */
    check_variant_numbers(o.md, "noclip", noclip, 2, 1);
    check_variant_numbers(o.md, "norm", norm, 2, 0);
    free_outputs(&o);
}
END_TEST

START_TEST(table_counts_divergences_with_their_steps)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    md_row hdr, row;
    ck_assert(find_row(o.md, "noclip", &hdr, &row));
    ck_assert_str_eq(row.cell[col_of(&hdr, "diverged")], "1/2 (8)");
    ck_assert(find_row(o.md, "norm", &hdr, &row));
    ck_assert_str_eq(row.cell[col_of(&hdr, "diverged")], "0/2");
    free_outputs(&o);
}
END_TEST

START_TEST(failed_run_is_counted_and_its_reason_shown)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    md_row hdr, row;
    ck_assert(find_row(o.md, "norm", &hdr, &row));
    ck_assert_str_eq(row.cell[col_of(&hdr, "runs")], "3 (1 failed)");
    ck_assert_msg(strstr(o.md, "failed: training failed (exit code 1)") != NULL, "%s", o.md);
    ck_assert(strstr(o.html, "failed: training failed (exit code 1)") != NULL);
    free_outputs(&o);
}
END_TEST

START_TEST(run_with_missing_files_fails_with_the_file_named)
{
    cn_report_run runs[] = {{"lost", 1, "data/report/no-such-run", 0, NULL}, {"norm", 1, "data/report/norm-s1", 0, NULL}};
    outputs o;
    write_report(&o, runs, 2);
    md_row hdr, row;
    ck_assert(find_row(o.md, "lost", &hdr, &row));
    ck_assert_str_eq(row.cell[col_of(&hdr, "final loss")], "failed");
    ck_assert_msg(strstr(o.md, "data/report/no-such-run/summary.json") != NULL, "%s", o.md);
    free_outputs(&o);
}
END_TEST

START_TEST(malformed_metrics_number_fails_run_naming_line_and_column)
{
    char run[256];
    make_tmpdir(run, sizeof run);
    char p[400], *s = slurp("data/report/norm-s1/summary.json");
    snprintf(p, sizeof p, "%s/summary.json", run);
    tu_write_text(p, s);
    free(s);
    snprintf(p, sizeof p, "%s/metrics.csv", run);
    tu_write_text(p, "step,epoch,loss,lr,grad_norm_pre,grad_norm_post,clip_coef,clip_threshold\n"
                  "1,0,0.5,0.1,1,1,1,1\n2,0,zero,0.1,1,1,1,1\n");
    cn_report_run runs[] = {{"bad", 1, run, 0, NULL}};
    outputs o;
    write_report(&o, runs, 1);
    ck_assert_msg(strstr(o.md, "metrics.csv line 3, column \"loss\": not a number") != NULL, "%s", o.md);
    free_outputs(&o);
    rm_dir(run);
}
END_TEST

START_TEST(table_stream_gets_the_markdown_table)
{
    char dir[256];
    make_tmpdir(dir, sizeof dir);
    FILE *t = tmpfile();
    ck_assert(t != NULL);
    ck_assert_ok(cn_report_write(dir, NULL, fixture_runs, N_FIXTURE, t));
    rewind(t);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, t);
    buf[n] = '\0';
    fclose(t);
    ck_assert_msg(!strncmp(buf, "| variant | settings | runs |", 29), "%s", buf);
    char p[400];
    snprintf(p, sizeof p, "%s/report.md", dir);
    char *md = slurp(p);
    ck_assert_msg(strstr(md, buf) != NULL, "stream table not in report.md");
    ck_assert_int_eq(count(buf, "\n"), 4);   /* header, separator, two variants */
    free(md);
    rm_dir(dir);
}
END_TEST

START_TEST(report_files_replace_atomically_without_leftovers)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    /* a second write replaces; no temporary file stays behind */
    ck_assert_ok(cn_report_write(o.dir, "again", fixture_runs, N_FIXTURE, NULL));
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", o.dir);
    FILE *f = popen(cmd, "r");
    int files = -1;
    ck_assert(fscanf(f, "%d", &files) == 1);
    pclose(f);
    ck_assert_int_eq(files, 4);   /* report.md, report.html, report.json, runs.csv */
    free_outputs(&o);
}
END_TEST

START_TEST(html_svgs_are_well_formed)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    ck_assert(strstr(o.html, "<table class=\"summary\">") != NULL);
    ck_assert(strstr(o.html, "<table class=\"summary\">") < strstr(o.html, "<svg"));   /* table first */
    ck_assert(strstr(o.html, "<script") == NULL);
    ck_assert(strstr(o.html, "http://") == strstr(o.html, "http://www.w3.org/2000/svg"));   /* only xmlns */
    int n = 0;
    for (char *svg; (svg = svg_at(o.html, n)); n++) {
        char why[200];
        const char *err = xml_check(svg, strlen(svg), why, sizeof why);
        ck_assert_msg(err == NULL, "svg %d: %s", n, err);
        free(svg);
    }
    /* loss, gradient norm, scale, test loss (eval.csv), one heatmap per variant (gn_pre.* columns);
       no early-steps panels: 12 steps are all early */
    ck_assert_int_eq(n, 6);
    const char *ids[] = {"loss", "gradnorm", "scale", "testloss", "heat-0", "heat-1"};
    for (int i = 0; i < 6; i++) {
        char *svg = chart_by_id(o.html, ids[i]);
        ck_assert_msg(svg != NULL, "no chart %s", ids[i]);
        free(svg);
    }
    ck_assert(chart_by_id(o.html, "loss-early") == NULL);
    free_outputs(&o);
}
END_TEST

START_TEST(xml_checker_rejects_broken_markup)
{
    char why[200];
    const char *bad[] = {"<svg><g></svg>", "<svg a=1></svg>", "<svg><text>a<b</text></svg>",
                         "<svg><text>R&D</text></svg>", "<svg a=\"x\"b=\"y\"></svg>", "<svg>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(xml_check(bad[i], strlen(bad[i]), why, sizeof why) != NULL, "accepted %s", bad[i]);
    const char *good = "<svg a=\"&lt;&#39;\"><g/><text>R&amp;D</text></svg>";
    ck_assert(xml_check(good, strlen(good), why, sizeof why) == NULL);
}
END_TEST

START_TEST(one_series_group_per_variant_per_chart)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    for (int i = 0; i < 3; i++) {
        char *svg = chart_by_id(o.html, line_charts[i]);
        ck_assert(svg != NULL);
        ck_assert_int_eq(count(svg, "class=\"series\""), 2);
        ck_assert_int_eq(count(svg, "class=\"series\" data-variant=\"noclip\""), 1);
        ck_assert_int_eq(count(svg, "class=\"series\" data-variant=\"norm\""), 1);
        /* two seeds each: thin lines plus the bold median */
        char *g = series_group(svg, "norm");
        ck_assert_int_eq(count(g, "class=\"seed\""), 2);
        ck_assert_int_eq(count(g, "class=\"median\""), 1);
        free(g);
        free(svg);
    }
    free_outputs(&o);
}
END_TEST

START_TEST(diverged_run_is_marked_in_every_chart)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    for (int i = 0; i < 3; i++) {
        char *svg = chart_by_id(o.html, line_charts[i]);
        ck_assert_int_eq(count(svg, "class=\"diverge\" data-variant=\"noclip\" data-seed=\"2\" data-step=\"8\""), 1);
        ck_assert_int_eq(count(svg, "class=\"diverge\""), 1);
        ck_assert(strstr(svg, "seed 2 diverged @8") != NULL);
        free(svg);
    }
    free_outputs(&o);
}
END_TEST

START_TEST(path_data_has_no_nan_or_inf)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    int paths = 0;
    for (const char *p = o.html; (p = strstr(p, " d=\"")); paths++) {
        p += 4;
        const char *e = strchr(p, '"');
        for (const char *q = p; q < e; q++)
            ck_assert_msg(strchr("MLlmhvz0123456789.,-", *q) != NULL, "path data \"%.*s\"", (int)(e - p), p);
    }
    ck_assert_int_gt(paths, 10);
    free_outputs(&o);
}
END_TEST

/* Points in the path of noclip seed 2 (rows 1-7 finite, row 8 nan/inf) in chart i. */
static int seed2_points(const char *html, int i)
{
    char *svg = chart_by_id(html, line_charts[i]), *g = series_group(svg, "noclip");
    const char *p = strstr(g, "data-seed=\"2\"");
    ck_assert(p != NULL);
    p = strstr(p, " d=\"") + 4;
    int pts = 0;
    for (; *p != '"'; p++) pts += *p == 'M' || *p == 'L';
    free(g);
    free(svg);
    return pts;
}

START_TEST(nonfinite_rows_are_gaps_not_zeros)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    ck_assert_int_eq(seed2_points(o.html, 0), 7);   /* loss nan at step 8 */
    ck_assert_int_eq(seed2_points(o.html, 1), 7);   /* grad norm inf at step 8 */
    ck_assert_int_eq(seed2_points(o.html, 2), 7);   /* clip_coef nan at step 8 */
    free_outputs(&o);
}
END_TEST

START_TEST(threshold_is_dashed_for_norm_clipping_only)
{
    outputs o;
    write_report(&o, fixture_runs, N_FIXTURE);
    char *svg = chart_by_id(o.html, "gradnorm");   /* gradient norm chart */
    ck_assert(strstr(svg, "id=\"chart-gradnorm\"") != NULL);
    char *norm = series_group(svg, "norm"), *noclip = series_group(svg, "noclip");
    ck_assert(strstr(norm, "class=\"threshold\"") != NULL);
    ck_assert(strstr(norm, "stroke-dasharray") != NULL);
    ck_assert(strstr(noclip, "class=\"threshold\"") == NULL);
    free(norm);
    free(noclip);
    free(svg);
    /* the loss chart has no threshold */
    svg = chart_by_id(o.html, "loss");
    ck_assert(strstr(svg, "class=\"threshold\"") == NULL);
    free(svg);
    free_outputs(&o);
}
END_TEST

START_TEST(variant_names_are_escaped)
{
    cn_report_run runs[] = {{"<b>&\"x|y'", 1, "data/report/norm-s1", 0, NULL}, {"plain", 1, "data/report/noclip-s1", 0, NULL}};
    outputs o;
    write_report(&o, runs, 2);
    ck_assert(strstr(o.html, "<b>") == NULL);
    ck_assert(strstr(o.html, "&lt;b&gt;&amp;&quot;x|y&#39;") != NULL);
    ck_assert_msg(strstr(o.md, "\\<b\\>\\&\"x\\|y'") != NULL, "%s", o.md);
    md_row hdr, row;
    ck_assert(find_row(o.md, "<b>&\"x|y'", &hdr, &row));   /* the escaped cell parses back */
    for (int i = 0; i < 3; i++) {
        char *svg = chart_by_id(o.html, line_charts[i]), why[200];
        const char *err = xml_check(svg, strlen(svg), why, sizeof why);
        ck_assert_msg(err == NULL, "svg %d: %s", i, err);
        free(svg);
    }
    free_outputs(&o);
}
END_TEST

/* 5000 logged steps, gradient norm 1 except one spike of 1e6 at step 2345. */
static void write_long_run(const char *dir)
{
    char p[400];
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    FILE *f = fopen(p, "wb");
    ck_assert(f != NULL);
    fprintf(f, "step,epoch,loss,lr,grad_norm_pre,grad_norm_post,clip_coef,clip_threshold,clipped,grad_max_abs,"
               "nonfinite,skipped,time_ms\n");
    for (int s = 1; s <= 5000; s++)
        fprintf(f, "%d,0,%.6g,0.1,%g,1,1,inf,0,0.5,0,0,1\n", s, 1.0 / s, s == 2345 ? 1e6 : 1.0);
    fclose(f);
    snprintf(p, sizeof p, "%s/summary.json", dir);
    tu_write_text(p, "{\"steps\": 5000, \"final_loss\": 0.0002, \"test_loss\": null, \"test_metric\": null,"
                  "\"diverged\": false, \"diverged_at_step\": null, \"clip_frac\": 0, \"max_grad_norm_pre\": 1e6,"
                  "\"steps_per_s\": 100}");
}

START_TEST(long_run_is_downsampled_and_spike_kept)
{
    char run[256];
    make_tmpdir(run, sizeof run);
    write_long_run(run);
    cn_report_run runs[] = {{"long", 1, run, 0, NULL}};
    outputs o;
    write_report(&o, runs, 1);
    for (int i = 0; i < 3; i++) {
        char *svg = chart_by_id(o.html, line_charts[i]), *g = series_group(svg, "long");
        const char *d = strstr(g, " d=\"");
        ck_assert(d != NULL);
        const char *e = strchr(d + 4, '"');
        int pts = 0;
        for (const char *q = d; q < e; q++) pts += *q == 'L' || *q == 'M';
        ck_assert_msg(pts <= 800 && pts >= 400, "chart %d: %d points", i, pts);
        free(g);
        free(svg);
    }
    /* the bucket max keeps the 1e6 spike: the axis reaches 1e6 */
    char *svg = chart_by_id(o.html, "gradnorm");
    ck_assert_msg(strstr(svg, ">1e6</text>") != NULL, "gradient norm axis does not reach the spike");
    free(svg);
    /* no test set: n/a, not "not finite" */
    md_row hdr, row;
    ck_assert(find_row(o.md, "long", &hdr, &row));
    ck_assert_str_eq(row.cell[col_of(&hdr, "test loss")], "n/a");
    free_outputs(&o);
    rm_dir(run);
}
END_TEST

/* A run that explodes to 1e40 before diverging must not flatten the healthy runs: the log axis
 * stops OFF_SCALE_DECADES (3) above the healthy data and the marker says it is off scale. */
START_TEST(exploding_run_does_not_flatten_the_log_axis)
{
    char run[256], p[400];
    make_tmpdir(run, sizeof run);
    snprintf(p, sizeof p, "%s/metrics.csv", run);
    tu_write_text(p, "step,loss,grad_norm_pre,clip_coef,clip_threshold\n1,1,1,1,nan\n2,1e20,1e10,1,nan\n"
                  "3,1e40,1e30,1,nan\n4,nan,inf,1,nan\n");
    snprintf(p, sizeof p, "%s/summary.json", run);
    tu_write_text(p, "{\"steps\": 4, \"final_loss\": null, \"diverged\": true, \"diverged_at_step\": 4}");
    cn_report_run runs[] = {{"boom", 1, run, 3, NULL}, {"norm", 1, "data/report/norm-s1", 0, NULL}};
    outputs o;
    write_report(&o, runs, 2);
    char *svg = chart_by_id(o.html, "loss");
    /* healthy max loss 0.9 -> decade 1, + 3 decades: the axis ends at 1000 */
    ck_assert_msg(strstr(svg, ">1000</text>") != NULL && strstr(svg, ">1e4</text>") == NULL, "axis not capped");
    ck_assert(strstr(svg, "diverged @4 (at 1e+40, off scale)") != NULL);
    free(svg);
    free_outputs(&o);
    rm_dir(run);
}
END_TEST

START_TEST(unwritable_output_is_an_io_error)
{
    char dir[256], blocker[300], out[400];
    make_tmpdir(dir, sizeof dir);
    snprintf(blocker, sizeof blocker, "%s/file", dir);
    tu_write_text(blocker, "x");
    snprintf(out, sizeof out, "%s/sub", blocker);   /* a directory under a regular file */
    cn_status st = cn_report_write(out, "x", fixture_runs, N_FIXTURE, NULL);
    ck_assert_int_ne(st, CN_OK);
    ck_assert(strlen(cn_errmsg()) > 0);
    unlink(blocker);
    rm_dir(dir);
}
END_TEST

Suite *suite_report(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");
    tcase_add_test(tc, table_numbers_match_summaries);
    tcase_add_test(tc, table_counts_divergences_with_their_steps);
    tcase_add_test(tc, failed_run_is_counted_and_its_reason_shown);
    tcase_add_test(tc, run_with_missing_files_fails_with_the_file_named);
    tcase_add_test(tc, malformed_metrics_number_fails_run_naming_line_and_column);
    tcase_add_test(tc, table_stream_gets_the_markdown_table);
    tcase_add_test(tc, report_files_replace_atomically_without_leftovers);
    tcase_add_test(tc, html_svgs_are_well_formed);
    tcase_add_test(tc, xml_checker_rejects_broken_markup);
    tcase_add_test(tc, one_series_group_per_variant_per_chart);
    tcase_add_test(tc, diverged_run_is_marked_in_every_chart);
    tcase_add_test(tc, path_data_has_no_nan_or_inf);
    tcase_add_test(tc, nonfinite_rows_are_gaps_not_zeros);
    tcase_add_test(tc, threshold_is_dashed_for_norm_clipping_only);
    tcase_add_test(tc, variant_names_are_escaped);
    tcase_add_test(tc, long_run_is_downsampled_and_spike_kept);
    tcase_add_test(tc, exploding_run_does_not_flatten_the_log_axis);
    tcase_add_test(tc, unwritable_output_is_an_io_error);
    suite_add_tcase(s, tc);
    return s;
}
