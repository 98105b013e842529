/* A small SVG line-chart writer for the report: axes with ticks (log axes at powers of 10), a legend,
 * one <g class="series" data-variant="NAME"> per variant (thin seed lines, the bold median, the dashed
 * clip threshold), divergence markers with labels placed so they do not overlap.
 *
 * Output is well-formed XML (all text escaped, every attribute quoted) so the same string works
 * inline in HTML and as a standalone .svg. Non-finite values are gaps: a path is broken there and
 * "nan" never reaches path data. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/internal.h"

#define SVG_W        1000.0
#define MARGIN_L     78.0
#define MARGIN_R     24.0
#define PLOT_H       290.0
#define BOTTOM_SPACE 50.0
#define LEGEND_ROW   18.0
#define FONT_W       6.8     /* approximate advance of a 12px sans-serif character, for layout */

typedef struct {
    double x0, x1;           /* data range of the x axis (log x: decades) */
    int log_x;
    double y0, y1;           /* data range (log axes: decades) */
    int log_y;
    double left, top, w, h;  /* plot area in pixels */
} frame;

/* NaN when the value cannot be placed (<= 0 on a log axis). */
static double px(const frame *f, double x)
{
    if (f->log_x) {
        if (!(x > 0)) return NAN;
        x = log10(x);
    }
    return f->left + (x - f->x0) / (f->x1 - f->x0) * f->w;
}

/* NaN when the value cannot be placed (non-finite, or <= 0 on a log axis). */
static double py(const frame *f, double y)
{
    if (!isfinite(y)) return NAN;
    double t;
    if (f->log_y) {
        if (!(y > 0)) return NAN;
        t = (log10(y) - f->y0) / (f->y1 - f->y0);
    } else {
        t = (y - f->y0) / (f->y1 - f->y0);
    }
    double v = f->top + f->h - t * f->h;
    /* far-off points (clipped away anyway) stay printable numbers */
    if (v < -1e5) v = -1e5;
    if (v > 1e5) v = 1e5;
    return v;
}

/* ---- data ranges ---- */

/* ymax_ok: the largest value of runs that did not diverge. A diverging run can reach 1e40; fitting
 * the axis to it would flatten every healthy run into the bottom decade, so a log axis shows at most
 * OFF_SCALE_DECADES above the healthy data and the diverging lines leave through the top. */
#define OFF_SCALE_DECADES 3

typedef struct {
    double xmin, xmax, ymin, ymax, ymax_ok;
    int any;
} range;

static void range_add(range *r, double x, double y, int log_y, int diverged)
{
    if (!isfinite(x)) return;
    if (x < r->xmin) r->xmin = x;
    if (x > r->xmax) r->xmax = x;
    if (!isfinite(y) || (log_y && !(y > 0))) return;
    if (y < r->ymin) r->ymin = y;
    if (y > r->ymax) r->ymax = y;
    if (!diverged && y > r->ymax_ok) r->ymax_ok = y;
    r->any = 1;
}

static void range_line(range *r, const cn_report_line *l, int log_y)
{
    for (long long i = 0; i < l->n; i++) range_add(r, l->x[i], l->y[i], log_y, l->diverged);
}

/* "Nice" tick spacing (1, 2, 5 x 10^k) giving about `want` intervals over span. */
static double nice_step(double span, int want)
{
    double raw = span / want, mag = pow(10.0, floor(log10(raw))), n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

static void fmt_tick(char *out, size_t n, double v)
{
    if (fabs(v) < 1e-12) v = 0;
    if (fabs(v) >= 1e7) snprintf(out, n, "%.3g", v);
    else snprintf(out, n, "%.6g", v);
}

static void fmt_decade(char *out, size_t n, int d)
{
    if (d >= -3 && d <= 4) snprintf(out, n, "%g", pow(10.0, d));
    else snprintf(out, n, "1e%d", d);
}

/* ---- pieces ---- */

static void text(cn_report_buf *b, double x, double y, const char *anchor, const char *extra, const char *s)
{
    cn_report_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra);
    cn_report_html(b, s);
    cn_report_puts(b, "</text>\n");
}

static void axes(cn_report_buf *b, const cn_report_chart *c, const frame *f)
{
    char lab[32];
    double bottom = f->top + f->h, right = f->left + f->w;
    cn_report_puts(b, "<g class=\"axes\" font-size=\"11\" fill=\"#333\">\n");
    /* y grid and ticks */
    if (f->log_y) {
        int d0 = (int)f->y0, d1 = (int)f->y1, span = d1 - d0;
        int every = span <= 8 ? 1 : (span + 7) / 8;
        if (span <= 4)   /* minor grid at 2..9 x 10^d: reading values between decades */
            for (int d = d0; d < d1; d++)
                for (int m = 2; m <= 9; m++) {
                    double y = py(f, m * pow(10.0, d));
                    cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#f0f0f0\"/>\n",
                                     f->left, y, right, y);
                }
        for (int d = d0; d <= d1; d++) {
            if ((d - d0) % every) continue;
            double y = f->top + f->h - (double)(d - d0) / span * f->h;
            cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                             f->left, y, right, y);
            cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                             f->left - 5, y, f->left, y);
            fmt_decade(lab, sizeof lab, d);
            text(b, f->left - 8, y + 4, "end", "", lab);
        }
    } else {
        double st = nice_step(f->y1 - f->y0, 5);
        for (double v = ceil(f->y0 / st - 1e-9) * st; v <= f->y1 + st * 1e-9; v += st) {
            double y = py(f, v);
            cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                             f->left, y, right, y);
            cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                             f->left - 5, y, f->left, y);
            fmt_tick(lab, sizeof lab, v);
            text(b, f->left - 8, y + 4, "end", "", lab);
        }
    }
    /* x ticks */
    if (f->log_x) {
        /* decades, labelled; with under two decades in view the 2 and 5 between them as well */
        int lab25 = floor(f->x1) - ceil(f->x0) < 1;
        for (int d = (int)floor(f->x0); d <= (int)ceil(f->x1); d++)
            for (int m = 1; m <= 9; m++) {
                double v = m * pow(10.0, d), lv = log10(v);
                if (lv < f->x0 - 1e-9 || lv > f->x1 + 1e-9) continue;
                double x = px(f, v);
                int major = m == 1, labelled = major || (lab25 && (m == 2 || m == 5));
                cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                                 x, f->top, x, bottom, major ? "#ddd" : "#f3f3f3");
                if (!labelled) continue;
                cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                                 x, bottom, x, bottom + 5);
                if (m == 1) fmt_decade(lab, sizeof lab, d);
                else fmt_tick(lab, sizeof lab, v);
                text(b, x, bottom + 18, "middle", "", lab);
            }
    } else {
        double st = nice_step(f->x1 - f->x0, 8);
        if (st < 1 && c->x_kind == 0) st = 1;   /* steps are integers */
        for (double v = ceil(f->x0 / st - 1e-9) * st; v <= f->x1 + st * 1e-9; v += st) {
            double x = px(f, v);
            cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n",
                             x, f->top, x, bottom);
            cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                             x, bottom, x, bottom + 5);
            fmt_tick(lab, sizeof lab, v);
            text(b, x, bottom + 18, "middle", "", lab);
        }
    }
    cn_report_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n",
                     f->left, f->top, f->w, f->h);
    text(b, f->left + f->w / 2, bottom + 38, "middle", " font-size=\"12\"", c->xlabel);
    char rot[96];
    double cy = f->top + f->h / 2;
    snprintf(rot, sizeof rot, " font-size=\"12\" transform=\"rotate(-90 18 %.1f)\"", cy);
    text(b, 18, cy, "middle", rot, c->ylabel);
    cn_report_puts(b, "</g>\n");
}

/* Path data for a line; returns the number of drawable points. A point alone between gaps becomes
 * a zero-length segment, which round line caps render as a dot. flat: leave out the inner points of
 * a run at the same printed height (a constant threshold needs 2 points, not 800). */
static long long path_d(cn_report_buf *b, const frame *f, const cn_report_line *l, int flat)
{
    long long drawn = 0;
    int pen = 0, run = 0;
    for (long long i = 0; i < l->n; i++) {
        double x = isfinite(l->x[i]) ? px(f, l->x[i]) : NAN, y = py(f, l->y[i]);
        if (!isfinite(x) || !isfinite(y)) {
            if (pen && run == 1) cn_report_puts(b, "l0,0");
            pen = 0;
            continue;
        }
        if (flat && pen && i + 1 < l->n && isfinite(l->x[i + 1])) {
            double yp = py(f, l->y[i - 1]), yn = py(f, l->y[i + 1]);
            if (isfinite(yp) && isfinite(yn) && lround(yp * 10) == lround(y * 10) && lround(yn * 10) == lround(y * 10))
                continue;
        }
        cn_report_printf(b, "%s%.1f,%.1f", pen ? "L" : "M", x, y);
        run = pen ? run + 1 : 1;
        pen = 1;
        drawn++;
    }
    if (pen && run == 1) cn_report_puts(b, "l0,0");
    return drawn;
}

static int drawable(const frame *f, const cn_report_line *l)
{
    for (long long i = 0; i < l->n; i++)
        if (isfinite(l->x[i]) && isfinite(py(f, l->y[i]))) return 1;
    return 0;
}

static void path(cn_report_buf *b, const frame *f, const cn_report_line *l, const char *attrs, int flat)
{
    if (!drawable(f, l)) return;
    cn_report_printf(b, "<path %s d=\"", attrs);
    path_d(b, f, l, flat);
    cn_report_puts(b, "\"/>\n");
}

/* Legend layout: variants first, then a key for the line styles in use. Returns its height. */
typedef struct {
    const char *label, *note, *colour;
    int style;   /* 0 solid variant swatch, 1 thin+bold key, 2 dashed key, 3 divergence key */
} legend_item;

static double legend(cn_report_buf *b, const legend_item *it, int n, double y0, int draw)
{
    double x = MARGIN_L, y = y0, maxx = SVG_W - MARGIN_R;
    if (draw) cn_report_puts(b, "<g class=\"legend\" font-size=\"12\" fill=\"#222\">\n");
    for (int i = 0; i < n; i++) {
        size_t chars = strlen(it[i].label) + (it[i].note ? strlen(it[i].note) + 3 : 0);
        double w = 30 + FONT_W * (double)chars + 18;
        if (x > MARGIN_L && x + w > maxx) {
            x = MARGIN_L;
            y += LEGEND_ROW;
        }
        if (draw) {
            const char *col = it[i].colour ? it[i].colour : "#555";
            switch (it[i].style) {
            case 0:
                cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
                                 x, y - 4, x + 24, y - 4, col);
                break;
            case 1:
                cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\" stroke-opacity=\"0.5\"/>\n",
                                 x, y - 7, x + 24, y - 7, col);
                cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.4\"/>\n",
                                 x, y - 2, x + 24, y - 2, col);
                break;
            case 2:
                cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.6\" stroke-dasharray=\"6 4\"/>\n",
                                 x, y - 4, x + 24, y - 4, col);
                break;
            default:
                cn_report_printf(b, "<path d=\"M%.1f,%.1fl8,8m0,-8l-8,8\" stroke=\"%s\" stroke-width=\"2.5\" fill=\"none\"/>\n",
                                 x + 8, y - 8, col);
            }
            cn_report_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 30, y);
            cn_report_html(b, it[i].label);
            if (it[i].note) {
                cn_report_puts(b, " (");
                cn_report_html(b, it[i].note);
                cn_report_puts(b, ")");
            }
            cn_report_puts(b, "</text>\n");
        }
        x += w;
    }
    if (draw) cn_report_puts(b, "</g>\n");
    return y - y0 + LEGEND_ROW;
}

/* ---- divergence markers ---- */

typedef struct {
    double x0, y0, x1, y1;
} box;

static int overlaps(const box *a, const box *b)
{
    return a->x0 < b->x1 && b->x0 < a->x1 && a->y0 < b->y1 && b->y0 < a->y1;
}

static void markers(cn_report_buf *b, const frame *f, const cn_report_series *s, int n)
{
    int total = 0;
    for (int v = 0; v < n; v++) total += s[v].n_marks;
    if (!total) return;
    box placed[64];
    int np = 0;
    cn_report_puts(b, "<g class=\"divergence-markers\" font-size=\"11\">\n");
    for (int v = 0; v < n; v++)
        for (int m = 0; m < s[v].n_marks; m++) {
            const cn_report_mark *mk = &s[v].marks[m];
            double x = px(f, mk->x), y = py(f, mk->y);
            if (!isfinite(x)) continue;
            /* nothing finite before it, or above the axis: mark at the top edge */
            int off = isfinite(y) && y < f->top;
            if (!isfinite(y) || off) y = f->top + 6;
            cn_report_printf(b, "<g class=\"diverge\" data-variant=\"");
            cn_report_html(b, s[v].variant);
            cn_report_printf(b, "\" data-seed=\"%lld\" data-step=\"%lld\">\n", mk->seed, mk->step);
            /* an x with a white halo, in the variant's colour */
            cn_report_printf(b, "<path d=\"M%.1f,%.1fl10,10m0,-10l-10,10\" stroke=\"#fff\" stroke-width=\"5\" fill=\"none\"/>\n",
                             x - 5, y - 5);
            cn_report_printf(b, "<path d=\"M%.1f,%.1fl10,10m0,-10l-10,10\" stroke=\"%s\" stroke-width=\"2.5\" fill=\"none\"/>\n",
                             x - 5, y - 5, s[v].colour);
            if (mk->quiet) {
                cn_report_puts(b, "</g>\n");
                continue;
            }
            char lab[128], val[48] = "";
            if (off) snprintf(val, sizeof val, " (at %.2g, off scale)", mk->y);
            if (mk->multi_seed) snprintf(lab, sizeof lab, "seed %lld diverged @%lld%s", mk->seed, mk->step, val);
            else snprintf(lab, sizeof lab, "diverged @%lld%s", mk->step, val);
            double tw = FONT_W * 0.95 * (double)strlen(lab);
            /* to the right, unless it would leave the plot; then below earlier labels until free */
            int right = x + 9 + tw <= f->left + f->w;
            box bx = {right ? x + 9 : x - 9 - tw, y - 20, right ? x + 9 + tw : x - 9, y - 7};
            if (bx.y0 < f->top + 2) { bx.y0 = y + 8; bx.y1 = y + 21; }
            for (int tries = 0; tries < 40; tries++) {
                int hit = 0;
                for (int k = 0; k < np; k++) hit |= overlaps(&bx, &placed[k]);
                if (!hit) break;
                bx.y0 += 14;
                bx.y1 += 14;
                if (bx.y1 > f->top + f->h) { bx.y0 = f->top + 2 + (tries % 20) * 14; bx.y1 = bx.y0 + 13; }
            }
            if (np < 64) placed[np++] = bx;
            cn_report_printf(b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\" stroke=\"#fff\" stroke-width=\"3\" "
                                "paint-order=\"stroke\" font-weight=\"bold\">",
                             bx.x0, bx.y1 - 2, s[v].colour);
            cn_report_html(b, lab);
            cn_report_puts(b, "</text>\n</g>\n");
        }
    cn_report_puts(b, "</g>\n");
}

/* Single values as dots in the series' colour; an open circle where hollow[i] (points off the top of
 * the plot are left to the clip path). */
static void dots(cn_report_buf *b, const frame *f, const cn_report_series *s)
{
    for (long long i = 0; i < s->points.n; i++) {
        double x = isfinite(s->points.x[i]) ? px(f, s->points.x[i]) : NAN, y = py(f, s->points.y[i]);
        if (!isfinite(x) || !isfinite(y)) continue;
        int open = s->hollow && s->hollow[i];
        if (open)
            cn_report_printf(b, "<circle class=\"point blew-up\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#fff\" "
                                "stroke-width=\"1.8\"/>\n", x, y);
        else
            cn_report_printf(b, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\" stroke=\"none\" "
                                "fill-opacity=\"0.6\"/>\n", x, y, s->colour);
    }
}

/* ---- the chart ---- */

void cn_report_svg(cn_report_buf *b, const cn_report_chart *c, const cn_report_series *s, int n)
{
    range r = {INFINITY, -INFINITY, INFINITY, -INFINITY, -INFINITY, 0};
    int multi = 0, dashed = 0, marks = 0;
    for (int v = 0; v < n; v++) {
        for (int k = 0; k < s[v].n_seeds; k++) range_line(&r, &s[v].seeds[k], c->log_y);
        range_line(&r, &s[v].bold, c->log_y);
        range_line(&r, &s[v].dashed, c->log_y);
        range_line(&r, &s[v].points, c->log_y);
        for (int m = 0; m < s[v].n_marks; m++) range_add(&r, s[v].marks[m].x, s[v].marks[m].y, c->log_y, 1);
        multi |= s[v].n_seeds > 1 || s[v].points.n > 0;
        dashed |= s[v].dashed.n > 0;
        marks |= s[v].n_marks > 0;
    }
    frame f = {0};
    f.log_y = c->log_y;
    if (c->x_kind == 0) {
        f.x0 = isfinite(r.xmin) && r.xmin < 0 ? r.xmin : 0;
        f.x1 = isfinite(r.xmax) && r.xmax > f.x0 ? r.xmax : f.x0 + 1;
        if (c->x_max > f.x1) f.x1 = c->x_max;
    } else {
        /* fitted to the data, with a margin so that the outermost dots are whole */
        f.log_x = c->x_kind == 1;
        double lo = isfinite(r.xmin) ? r.xmin : 1, hi = isfinite(r.xmax) ? r.xmax : 1;
        if (f.log_x) {
            lo = lo > 0 ? log10(lo) : 0;
            hi = hi > 0 ? log10(hi) : lo;
        }
        double pad = (hi - lo) * 0.05;
        if (!(pad > 0)) pad = f.log_x ? 0.5 : fabs(lo) > 0 ? fabs(lo) * 0.5 : 1;
        f.x0 = lo - pad;
        f.x1 = hi + pad;
    }
    if (c->log_y) {
        double lo = r.any ? floor(log10(r.ymin)) : -1, hi = r.any ? ceil(log10(r.ymax)) : 1;
        if (r.any && isfinite(r.ymax_ok) && hi > ceil(log10(r.ymax_ok)) + OFF_SCALE_DECADES)
            hi = ceil(log10(r.ymax_ok)) + OFF_SCALE_DECADES;
        if (hi <= lo) hi = lo + 1;
        f.y0 = lo;
        f.y1 = hi;
    } else {
        f.y0 = c->y_min;
        f.y1 = c->y_max > c->y_min ? c->y_max : c->y_min + 1;
    }

    /* legend items: variants, then the key of line styles in use */
    legend_item items[64];
    int ni = 0;
    for (int v = 0; v < n && ni < 60; v++)
        items[ni++] = (legend_item){s[v].variant, s[v].legend_note, s[v].colour, 0};
    if (c->key_solid) items[ni++] = (legend_item){c->key_solid, NULL, NULL, 0};
    if (multi) items[ni++] = (legend_item){c->key_seeds ? c->key_seeds : "thin: seeds, bold: median", NULL, NULL, 1};
    if (dashed) items[ni++] = (legend_item){c->key_dashed ? c->key_dashed : "clip threshold", NULL, NULL, 2};
    if (marks) items[ni++] = (legend_item){c->key_marks ? c->key_marks : "divergence", NULL, NULL, 3};
    double legend_top = 46, legend_h = legend(b, items, ni, legend_top, 0);

    f.left = MARGIN_L;
    f.top = legend_top + legend_h + 6;
    f.w = SVG_W - MARGIN_L - MARGIN_R;
    f.h = PLOT_H;
    double height = f.top + f.h + BOTTOM_SPACE;

    cn_report_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"chart-%s\" width=\"%.0f\" "
                        "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\" "
                        "role=\"img\">\n",
                     c->id, SVG_W, height, SVG_W, height);
    cn_report_puts(b, "<title>");
    cn_report_html(b, c->title);
    cn_report_puts(b, "</title>\n");
    cn_report_printf(b, "<defs><clipPath id=\"plot-%s\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
                        "</clipPath></defs>\n",
                     c->id, f.left, f.top, f.w, f.h);
    cn_report_printf(b, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#fff\"/>\n", SVG_W, height);
    text(b, MARGIN_L, 24, "start", " font-size=\"15\" font-weight=\"bold\"", c->title);
    legend(b, items, ni, legend_top, 1);
    axes(b, c, &f);
    if (!r.any)
        text(b, f.left + f.w / 2, f.top + f.h / 2, "middle", " fill=\"#999\"", "no finite values to draw");

    for (int v = 0; v < n; v++) {
        cn_report_puts(b, "<g class=\"series\" data-variant=\"");
        cn_report_html(b, s[v].variant);
        cn_report_printf(b, "\" stroke=\"%s\" fill=\"none\" stroke-linejoin=\"round\" stroke-linecap=\"round\" "
                            "clip-path=\"url(#plot-%s)\">\n",
                         s[v].colour, c->id);
        for (int k = 0; k < s[v].n_seeds; k++) {
            char attrs[128];
            snprintf(attrs, sizeof attrs, "class=\"seed\" data-seed=\"%lld\" stroke-width=\"1\" stroke-opacity=\"0.3\"",
                     s[v].seeds[k].seed);
            path(b, &f, &s[v].seeds[k], attrs, 0);
        }
        path(b, &f, &s[v].bold, "class=\"median\" stroke-width=\"2.2\"", 0);
        dots(b, &f, &s[v]);
        /* the threshold runs through the variant's own noisy band: a white underlay keeps it visible */
        path(b, &f, &s[v].dashed, "class=\"threshold-halo\" stroke=\"#fff\" stroke-width=\"4\" stroke-opacity=\"0.9\"", 1);
        path(b, &f, &s[v].dashed, "class=\"threshold\" stroke-width=\"2\" stroke-dasharray=\"7 4\"", 1);
        cn_report_puts(b, "</g>\n");
    }
    markers(b, &f, s, n);
    cn_report_puts(b, "</svg>\n");
}

/* ---- per-tensor heatmap ---- */

/* A sequential colour scale (viridis: perceptually uniform, readable in grey and by most colour-blind
 * readers), sampled at 9 points and interpolated linearly into HEAT_LEVELS bins. */
#define HEAT_LEVELS 16
static const unsigned char viridis[9][3] = {{68, 1, 84},    {71, 45, 123},  {59, 82, 139},
                                            {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
                                            {94, 201, 98},  {173, 220, 48}, {253, 231, 37}};
#define HEAT_NONFINITE "#e8202a"

static void heat_colour(char out[8], int level)
{
    double t = (level + 0.5) / HEAT_LEVELS * 8;
    int i = (int)t;
    if (i > 7) i = 7;
    double f = t - i;
    int rgb[3];
    for (int k = 0; k < 3; k++) rgb[k] = (int)lround(viridis[i][k] + f * (viridis[i + 1][k] - viridis[i][k]));
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static int heat_level(double v, int lo, int hi)
{
    if (!(v > 0)) return 0;
    double t = (log10(v) - lo) / (hi - lo);
    int l = (int)floor(t * HEAT_LEVELS);
    return l < 0 ? 0 : l >= HEAT_LEVELS ? HEAT_LEVELS - 1 : l;
}

void cn_report_svg_heatmap(cn_report_buf *b, const cn_report_heatmap *h)
{
    size_t longest = 0;
    for (int t = 0; t < h->rows; t++)
        if (strlen(h->row_names[t]) > longest) longest = strlen(h->row_names[t]);
    double left = 16 + FONT_W * 0.92 * (double)(longest < 34 ? longest : 34);
    if (left < MARGIN_L) left = MARGIN_L;
    double row_h = h->rows > 24 ? 10 : 16, top = 40, w = SVG_W - left - MARGIN_R, ph = row_h * h->rows;
    double cell_w = w / h->cols, bottom = top + ph, legend_y = bottom + 66, height = legend_y + 30;
    cn_report_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart heatmap\" id=\"chart-%s\" width=\"%.0f\" "
                        "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\" "
                        "role=\"img\">\n",
                     h->id, SVG_W, height, SVG_W, height);
    cn_report_puts(b, "<title>Per-tensor gradient norm: ");
    cn_report_html(b, h->title);
    cn_report_puts(b, "</title>\n");
    cn_report_printf(b, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#fff\"/>\n", SVG_W, height);
    cn_report_printf(b, "<rect x=\"%.1f\" y=\"12\" width=\"14\" height=\"14\" rx=\"2\" fill=\"%s\"/>\n", left, h->colour);
    char t[300];
    snprintf(t, sizeof t, "Per-tensor gradient norm before clipping: %s", h->title);
    text(b, left + 20, 24, "start", " font-size=\"15\" font-weight=\"bold\"", t);

    /* the cells: one path per colour, each a run of equal cells along a row, drawn 0.6 px wider than
       its share (but not past the frame) so that scaled-down neighbours leave no hairline between them */
    cn_report_puts(b, "<g class=\"cells\">\n");
    for (int level = 0; level <= HEAT_LEVELS; level++) {
        int started = 0;
        for (int r = 0; r < h->rows; r++) {
            const unsigned char *st = h->state + (size_t)r * h->cols;
            const double *v = h->v + (size_t)r * h->cols;
            for (int c = 0; c < h->cols;) {
                int mine = level == HEAT_LEVELS ? st[c] == 2 : st[c] == 1 && heat_level(v[c], h->lo, h->hi) == level;
                if (!mine) { c++; continue; }
                int e = c + 1;
                while (e < h->cols && (level == HEAT_LEVELS ? st[e] == 2
                                                            : st[e] == 1 && heat_level(v[e], h->lo, h->hi) == level))
                    e++;
                if (!started) {
                    char col[8];
                    if (level == HEAT_LEVELS) snprintf(col, sizeof col, "%s", HEAT_NONFINITE);
                    else heat_colour(col, level);
                    cn_report_printf(b, "<path class=\"level\" data-level=\"%d\" fill=\"%s\" d=\"", level, col);
                    started = 1;
                }
                double cw = (e - c) * cell_w + (e < h->cols ? 0.6 : 0);
                cn_report_printf(b, "M%.1f,%.1fh%.1fv%.1fh%.1fz", left + c * cell_w, top + r * row_h, cw, row_h, -cw);
                c = e;
            }
        }
        if (started) cn_report_puts(b, "\"/>\n");
    }
    cn_report_puts(b, "</g>\n");

    /* row labels, frame, x ticks */
    cn_report_printf(b, "<g class=\"axes\" font-size=\"%d\" fill=\"#333\">\n", row_h < 16 ? 9 : 11);
    for (int r = 0; r < h->rows; r++) {
        char name[40];
        snprintf(name, sizeof name, "%s", h->row_names[r]);   /* long names cut at 34 characters */
        text(b, left - 6, top + r * row_h + row_h * 0.72, "end", "", name);
    }
    cn_report_puts(b, "</g>\n<g class=\"axes\" font-size=\"11\" fill=\"#333\">\n");
    cn_report_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n",
                     left, top, w, ph);
    double st = nice_step(h->x_max, 8);
    if (st < 1) st = 1;
    char lab[32];
    for (double v = 0; v <= h->x_max + st * 1e-9; v += st) {
        double x = left + v / h->x_max * w;
        cn_report_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", x, bottom, x,
                         bottom + 5);
        fmt_tick(lab, sizeof lab, v);
        text(b, x, bottom + 18, "middle", "", lab);
    }
    text(b, left + w / 2, bottom + 38, "middle", " font-size=\"12\"", "optimizer step");
    cn_report_puts(b, "</g>\n");

    /* the colour legend: the bins with the decades at their edges, then the non-finite swatch */
    cn_report_puts(b, "<g class=\"legend\" font-size=\"11\" fill=\"#222\">\n");
    double lx = left, lw = 16;
    text(b, lx, legend_y - 4, "start", "", "gradient norm (log scale):");
    lx += 170;
    for (int level = 0; level < HEAT_LEVELS; level++) {
        char col[8];
        heat_colour(col, level);
        cn_report_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"12\" fill=\"%s\"/>\n",
                         lx + level * lw, legend_y - 14, lw, col);
    }
    int span = h->hi - h->lo, every = span <= 4 ? 1 : (span + 3) / 4;
    for (int d = h->lo; d <= h->hi; d++) {
        if ((d - h->lo) % every && d != h->hi) continue;
        fmt_decade(lab, sizeof lab, d);
        char full[40];
        snprintf(full, sizeof full, "%s%s", d == h->hi ? "≥" : d == h->lo ? "≤" : "", lab);
        text(b, lx + (double)(d - h->lo) / span * HEAT_LEVELS * lw, legend_y + 12, "middle", "", full);
    }
    lx += HEAT_LEVELS * lw + 40;
    cn_report_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"12\" fill=\"%s\"/>\n", lx, legend_y - 14,
                     HEAT_NONFINITE);
    text(b, lx + 22, legend_y - 4, "start", "", "not finite");
    cn_report_puts(b, "</g>\n</svg>\n");
}
