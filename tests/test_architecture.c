/* The folders are the architecture: every #include "module/..." in src/ must point down the layers
 *   tensor <- json <- io, data, report;  tensor <- autograd <- layers;  optim, clip on flat views (tensor);
 *   config reads the modules' options;  train wires;  cli on top,
 * as listed in `allowed` below. A new module gets a line there (and its place in the layers). */
#include "testutil.h"
#include "autograd/cells.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRC "../src"

/* module -> the modules it may include (besides itself). "clipnn" is the public header src/clipnn.h. */
static const struct {
    const char *module;
    const char *may_include;
} allowed[] = {
    {"tensor", ""},
    {"json", "tensor"},
    {"io", "tensor json"},
    {"autograd", "tensor"},
    {"layers", "tensor json autograd"},
    {"optim", "tensor json"},
    {"clip", "tensor json"},
    {"data", "tensor json io"},
    {"report", "tensor json io"},
    {"dist", "tensor"},
    {"config", "tensor json io autograd layers optim clip data"},
    {"train", "tensor json io autograd layers optim clip data config report dist"},
    {"cli", "tensor json io autograd layers optim clip data config report dist train clipnn"},
};

static const char *rule_of(const char *module)
{
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (!strcmp(allowed[i].module, module)) return allowed[i].may_include;
    return NULL;
}

static int word_in(const char *word, const char *list)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

/* The module an #include "..." names, or "" for a header of the including module itself ("core.h"). */
static void included_module(const char *path, char *out, size_t n)
{
    while (!strncmp(path, "../", 3)) path += 3;
    const char *slash = strchr(path, '/');
    if (slash) snprintf(out, n, "%.*s", (int)(slash - path), path);
    else if (!strcmp(path, "clipnn.h")) snprintf(out, n, "clipnn");
    else out[0] = 0;
}

/* Appends "file: includes X" to `bad` for every include of `file` (in `module`) that points up. */
static int check_file(const char *module, const char *rule, const char *file, char *bad, size_t nbad)
{
    char path[512], line[512];
    snprintf(path, sizeof path, "%s/%s/%s", SRC, module, file);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    int n_checked = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (strncmp(p, "#include \"", 10)) continue;
        p += 10;
        const char *end = strchr(p, '"');
        if (!end) continue;
        char inc[256], mod[64];
        snprintf(inc, sizeof inc, "%.*s", (int)(end - p), p);
        included_module(inc, mod, sizeof mod);
        n_checked++;
        if (!mod[0] || !strcmp(mod, module) || word_in(mod, rule)) continue;
        size_t used = strlen(bad);
        snprintf(bad + used, nbad - used, "  src/%s/%s includes \"%s\" (%s may include: %s)\n", module, file, inc,
                 module, rule[0] ? rule : "nothing");
    }
    fclose(f);
    return n_checked;
}

START_TEST(includes_point_down_the_layers)
{
    DIR *top = opendir(SRC);
    ck_assert_msg(top != NULL, "cannot open %s", SRC);
    static char bad[16384];
    bad[0] = 0;
    int n_modules = 0, n_includes = 0;
    struct dirent *m;
    while ((m = readdir(top))) {
        if (m->d_name[0] == '.' || strchr(m->d_name, '.')) continue;   /* folders only (not clipnn.h) */
        const char *rule = rule_of(m->d_name);
        ck_assert_msg(rule != NULL, "src/%s is not in the layer table of tests/test_architecture.c", m->d_name);
        n_modules++;
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", SRC, m->d_name);
        DIR *d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (len < 3 || (strcmp(e->d_name + len - 2, ".c") && strcmp(e->d_name + len - 2, ".h"))) continue;
            n_includes += check_file(m->d_name, rule, e->d_name, bad, sizeof bad);
        }
        closedir(d);
    }
    closedir(top);
    ck_assert_int_ge(n_modules, 12);
    ck_assert_int_ge(n_includes, 100);
    ck_assert_msg(bad[0] == 0, "includes that point up the layers:\n%s", bad);
}
END_TEST

/* The checker itself: an upward include is reported, a downward or same-module one is not. */
START_TEST(layer_rule_reads_include_paths)
{
    char mod[64];
    included_module("../tensor/core.h", mod, sizeof mod);
    ck_assert_str_eq(mod, "tensor");
    included_module("train/trainer.h", mod, sizeof mod);
    ck_assert_str_eq(mod, "train");
    included_module("core.h", mod, sizeof mod);
    ck_assert_str_eq(mod, "");
    included_module("clipnn.h", mod, sizeof mod);
    ck_assert_str_eq(mod, "clipnn");
    ck_assert(word_in("io", rule_of("data")));
    ck_assert(!word_in("io", rule_of("json")));
    ck_assert(!word_in("o", rule_of("io")));
    ck_assert(!word_in("train", rule_of("clip")));
}
END_TEST

/* An op given a NULL input on a healthy graph names itself in the error message instead of leaving the
 * message of whatever failed earlier. */
typedef cn_var *(*null_op)(cn_graph *g, cn_var *x);
static cn_var *n_add(cn_graph *g, cn_var *x) { return cn_add(g, x, NULL); }
static cn_var *n_tanh(cn_graph *g, cn_var *x) { (void)x; return cn_tanh(g, NULL); }
static cn_var *n_matmul(cn_graph *g, cn_var *x) { return cn_matmul(g, NULL, x, 0, 0); }
static cn_var *n_linear(cn_graph *g, cn_var *x) { return cn_linear(g, x, NULL, NULL); }
static cn_var *n_mse(cn_graph *g, cn_var *x) { return cn_mse(g, x, NULL); }
static cn_var *n_concat(cn_graph *g, cn_var *x)
{
    cn_var *parts[2] = {x, NULL};
    return cn_concat_cols(g, parts, 2);
}
static cn_var *n_gru(cn_graph *g, cn_var *x) { return cn_gru_cell(g, x, NULL, x); }
static cn_var *n_recurrent(cn_graph *g, cn_var *x) { return cn_recurrent(g, CN_REC_TANH, x, x, NULL, x, x, 0); }

static const struct {
    const char *name;
    null_op f;
} null_ops[] = {
    {"add", n_add}, {"tanh", n_tanh}, {"matmul", n_matmul}, {"linear", n_linear}, {"mse", n_mse},
    {"concat_cols", n_concat}, {"gru_cell", n_gru}, {"recurrent", n_recurrent},
};

START_TEST(null_input_names_the_op)
{
    const char *name = null_ops[_i].name;
    cn_graph g;
    ck_assert_ok(cn_graph_init(&g));
    float a[6] = {0};
    cn_tensor t;
    ck_assert_ok(cn_tensor_view(&t, a, 2, (int[]){2, 3}));
    cn_var *x = cn_input(&g, &t);
    ck_assert_ptr_nonnull(x);
    cn_error(CN_ERR_IO, "an unrelated earlier failure");
    ck_assert_ptr_null(null_ops[_i].f(&g, x));
    ck_assert_int_eq(g.err, CN_ERR_ARG);
    char want[64];
    snprintf(want, sizeof want, "%s: an input is NULL", name);
    ck_assert_str_eq(cn_errmsg(), want);
    cn_graph_free(&g);
}
END_TEST

Suite *suite_architecture(void)
{
    Suite *s = suite_create("architecture");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, includes_point_down_the_layers);
    tcase_add_test(tc, layer_rule_reads_include_paths);
    tcase_add_loop_test(tc, null_input_names_the_op, 0, (int)(sizeof null_ops / sizeof null_ops[0]));
    suite_add_tcase(s, tc);
    return s;
}
