/* Built-in synthetic tasks: adding, temporal_order, xor, spirals, sine (definitions in data.h). */
#include "data/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "json/json.h"

#define PI 3.14159265358979323846

/* Per-task keys and defaults. */
typedef struct {
    int seq_len;
    int classes;
    double noise;
    int class_target;
} task_opts;

typedef void (*task_gen)(cn_dataset *ds, const task_opts *o, cn_rng *r);

/* x [T, 2] per example: (value ~ U[0,1), marker); y = mean of the two marked values. */
static void gen_adding(cn_dataset *ds, const task_opts *o, cn_rng *r)
{
    int T = o->seq_len, half = T / 2;
    for (int i = 0; i < ds->n; i++) {
        float *x = ds->x + (size_t)i * (size_t)T * 2;    // [T, 2]
        for (int t = 0; t < T; t++) {
            x[2 * t] = (float)cn_rng_double(r);
            x[2 * t + 1] = 0.0f;
        }
        int a = (int)cn_rng_below(r, (uint64_t)half);                    // [0, T/2)
        int b = half + (int)cn_rng_below(r, (uint64_t)(T - half));       // [T/2, T)
        x[2 * a + 1] = 1.0f;
        x[2 * b + 1] = 1.0f;
        ds->y[i] = (float)(0.5 * ((double)x[2 * a] + (double)x[2 * b]));
    }
}

/* x [T, 8] one-hot symbols; label = 2*[first relevant is Y] + [second is Y]. */
enum { TO_X = 4, TO_Y = 5, TO_B = 6, TO_E = 7, TO_SYMBOLS = 8 };
static void gen_temporal_order(cn_dataset *ds, const task_opts *o, cn_rng *r)
{
    int T = o->seq_len;
    int lo1 = T / 10, hi1 = 2 * T / 10, lo2 = 5 * T / 10, hi2 = 6 * T / 10;
    for (int i = 0; i < ds->n; i++) {
        float *x = ds->x + (size_t)i * (size_t)T * TO_SYMBOLS;    // [T, 8]
        memset(x, 0, sizeof *x * (size_t)T * TO_SYMBOLS);
        int t1 = lo1 + (int)cn_rng_below(r, (uint64_t)(hi1 - lo1 + 1));
        int t2 = lo2 + (int)cn_rng_below(r, (uint64_t)(hi2 - lo2 + 1));
        int s1 = (int)cn_rng_below(r, 2), s2 = (int)cn_rng_below(r, 2);   // 0 = X, 1 = Y
        for (int t = 0; t < T; t++) {
            int sym;
            if (t == 0) sym = TO_B;
            else if (t == T - 1) sym = TO_E;
            else if (t == t1) sym = TO_X + s1;
            else if (t == t2) sym = TO_X + s2;
            else sym = (int)cn_rng_below(r, 4);
            x[t * TO_SYMBOLS + sym] = 1.0f;
        }
        ds->labels[i] = 2 * s1 + s2;
    }
}

static void gen_xor(cn_dataset *ds, const task_opts *o, cn_rng *r)
{
    for (int i = 0; i < ds->n; i++) {
        int a = (int)cn_rng_below(r, 2), b = (int)cn_rng_below(r, 2);
        double na = 0, nb = 0;
        if (o->noise > 0) {
            na = o->noise * cn_rng_normal(r);
            nb = o->noise * cn_rng_normal(r);
        }
        ds->x[2 * i] = (float)(a + na);
        ds->x[2 * i + 1] = (float)(b + nb);
        if (ds->target_kind == CN_TARGET_FLOAT) ds->y[i] = (float)(a ^ b);
        else ds->labels[i] = a ^ b;
    }
}

static void gen_spirals(cn_dataset *ds, const task_opts *o, cn_rng *r)
{
    for (int i = 0; i < ds->n; i++) {
        int c = i % o->classes;
        double u = cn_rng_double(r);
        double ang = 2.0 * PI * c / o->classes + 2.0 * PI * u;
        double px = u * cos(ang), py = u * sin(ang);
        if (o->noise > 0) {
            px += o->noise * cn_rng_normal(r);
            py += o->noise * cn_rng_normal(r);
        }
        ds->x[2 * i] = (float)px;
        ds->x[2 * i + 1] = (float)py;
        ds->labels[i] = c;
    }
}

/* x_t = sin(w t + phi), y_t = x_{t+1}. */
static void gen_sine(cn_dataset *ds, const task_opts *o, cn_rng *r)
{
    int T = o->seq_len;
    for (int i = 0; i < ds->n; i++) {
        double w = 0.1 + 0.4 * cn_rng_double(r);
        double phi = 2.0 * PI * cn_rng_double(r);
        float *x = ds->x + (size_t)i * (size_t)T, *y = ds->y + (size_t)i * (size_t)T;   // [T, 1] each
        for (int t = 0; t < T; t++) {
            x[t] = (float)sin(w * t + phi);
            y[t] = (float)sin(w * (t + 1) + phi);
        }
    }
}

typedef struct {
    const char *kind;
    task_gen gen;
    int train_size, test_size;     /* defaults */
    int seq_len, min_seq_len;      /* default and minimum; 0 = not a sequence task */
} task_def;

static const task_def tasks[] = {
    {"adding", gen_adding, 10000, 1000, 30, 2},
    {"temporal_order", gen_temporal_order, 10000, 1000, 50, 10},
    {"xor", gen_xor, 1000, 200, 0, 0},
    {"spirals", gen_spirals, 1000, 500, 0, 0},
    {"sine", gen_sine, 10000, 1000, 50, 2},
};

/* Fills the shape fields of a set of n examples for task td. */
static void task_shape(cn_dataset *ds, const task_def *td, const task_opts *o, int n)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->seq_len = td->seq_len ? o->seq_len : 0;
    ds->target_dim = 1;
    if (!strcmp(td->kind, "adding")) {
        ds->features = 2;
        ds->target_kind = CN_TARGET_FLOAT;
    } else if (!strcmp(td->kind, "temporal_order")) {
        ds->features = TO_SYMBOLS;
        ds->target_kind = CN_TARGET_CLASS;
        ds->n_classes = 4;
    } else if (!strcmp(td->kind, "xor")) {
        ds->features = 2;
        ds->target_kind = o->class_target ? CN_TARGET_CLASS : CN_TARGET_FLOAT;
        ds->n_classes = o->class_target ? 2 : 0;
    } else if (!strcmp(td->kind, "spirals")) {
        ds->features = 2;
        ds->target_kind = CN_TARGET_CLASS;
        ds->n_classes = o->classes;
    } else {   /* sine */
        ds->features = 1;
        ds->target_kind = CN_TARGET_FLOAT;
        ds->target_seq = 1;
    }
}

cn_status cn_data_load_task(cJSON *obj, const char *path, const char *kind, uint64_t seed, cn_data *out)
{
    const task_def *td = NULL;
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
        if (!strcmp(tasks[i].kind, kind)) td = &tasks[i];
    if (!td) return cn_error(CN_ERR_ARG, "%s.kind: unknown task \"%s\"", path, kind);

    const char *allowed[8] = {"kind", "shuffle", "train_size", "test_size"};
    int na = 4;
    if (td->seq_len) allowed[na++] = "seq_len";
    if (!strcmp(kind, "xor")) { allowed[na++] = "target_kind"; allowed[na++] = "noise"; }
    if (!strcmp(kind, "spirals")) { allowed[na++] = "classes"; allowed[na++] = "noise"; }
    allowed[na] = NULL;
    cn_status st = cn_json_check_keys(obj, path, allowed);
    if (st) return st;

    task_opts o = {0};
    long long ntrain, ntest, v;
    if ((st = cn_json_int(obj, path, "train_size", 0, td->train_size, 1, 1000000000LL, &ntrain))) return st;
    if ((st = cn_json_int(obj, path, "test_size", 0, td->test_size, 0, 1000000000LL, &ntest))) return st;
    if (td->seq_len) {
        if ((st = cn_json_int(obj, path, "seq_len", 0, td->seq_len, td->min_seq_len, 1000000, &v))) return st;
        o.seq_len = (int)v;
    }
    if (!strcmp(kind, "xor")) {
        static const char *const tk[] = {"float", "class", NULL};
        const char *s;
        if ((st = cn_json_string(obj, path, "target_kind", 0, "float", tk, &s))) return st;
        o.class_target = !strcmp(s, "class");
        if ((st = cn_json_number(obj, path, "noise", &(cn_json_num){.lo = 0.0, .hi = INFINITY}, &o.noise))) return st;
    }
    if (!strcmp(kind, "spirals")) {
        if ((st = cn_json_int(obj, path, "classes", 0, 2, 2, 1000000, &v))) return st;
        o.classes = (int)v;
        if ((st = cn_json_number(obj, path, "noise", &(cn_json_num){.def = 0.1, .lo = 0.0, .hi = INFINITY}, &o.noise))) return st;
    }

    cn_dataset *sets[2] = {&out->train, &out->test};
    long long ns[2] = {ntrain, ntest};
    for (int k = 0; k < 2; k++) {
        char what[64];
        snprintf(what, sizeof what, "%s: %s set", path, k ? "test" : "train");
        /* An empty test set keeps its shape fields (n = 0), so callers can size buffers uniformly. */
        task_shape(sets[k], td, &o, (int)ns[k]);
        if (ns[k] == 0) continue;
        if ((st = cn_data_alloc(sets[k], what))) return st;
        cn_rng r;
        cn_rng_seed(&r, cn_data_stream_seed(seed, k ? 0x7465737464617461ULL : 0x747261696e646174ULL));
        td->gen(sets[k], &o, &r);
    }
    return CN_OK;
}
