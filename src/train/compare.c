/* clipnn compare (see compare.h). Each run is a child process `clipnn train`,
 * so runs are isolated (a crash or divergence in one is a result, not the end
 * of the comparison) and use both cores. */
#include "train/compare.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Variant names become directory names. */
static int valid_name(const char *n)
{
    if (!*n || *n == '.') return 0;
    for (; *n; n++)
        if (!(isalnum((unsigned char)*n) || *n == '_' || *n == '-' || *n == '.')) return 0;
    return 1;
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
        return cn_error(CN_ERR_ARG, "--variant %s: the name may use letters, digits, '_', '-' and '.' (not first) only", spec);
    const char *p = colon + 1;
    size_t cap = 4;
    out->sets = cn_calloc(cap, sizeof *out->sets);
    if (!out->sets) return cn_error(CN_ERR_NOMEM, "out of memory");
    while (*p) {
        if (!looks_like_assignment(p)) {
            cn_variant_free(out);
            return cn_error(CN_ERR_ARG, "--variant %s: expected PATH=VALUE at \"%s\"", spec, p);
        }
        const char *q = p;
        int depth = 0, quote = 0;
        for (; *q; q++) {
            if (quote) { if (*q == '\\' && q[1]) q++; else if (*q == '"') quote = 0; continue; }
            if (*q == '"') quote = 1;
            else if (*q == '[' || *q == '{') depth++;
            else if (*q == ']' || *q == '}') depth--;
            else if (*q == ',' && depth <= 0 && looks_like_assignment(q + 1)) break;
        }
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
            st = cn_error(CN_ERR_ARG, "%s: compare.variants.%.60s: a variant name has 1 to %zu letters, digits, '_', '-' "
                          "or '.' (not first)", file, it->string, sizeof v[k].name - 1);
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

typedef struct {
    cn_variant *v;
    long long seed;
    char dir[4096];
    pid_t pid;
    int exit_code;
    double t0, secs;
} job;


static cn_status start_job(const cn_compare_opts *o, job *j)
{
    int n = 0, cap = 16 + 2 * (o->n_sets + j->v->n_sets);
    char **argv = cn_calloc((size_t)cap, sizeof *argv);
    char seedset[64], logpath[4200];
    if (!argv) return cn_error(CN_ERR_NOMEM, "out of memory");
    snprintf(seedset, sizeof seedset, "seed=%lld", j->seed);
    snprintf(logpath, sizeof logpath, "%s/train.log", j->dir);
    argv[n++] = (char *)o->self;
    argv[n++] = "train";
    argv[n++] = (char *)o->config_path;
    argv[n++] = "--out";
    argv[n++] = j->dir;
    argv[n++] = "--quiet";
    for (int i = 0; i < o->n_sets; i++) { argv[n++] = "--set"; argv[n++] = o->sets[i]; }
    for (int i = 0; i < j->v->n_sets; i++) { argv[n++] = "--set"; argv[n++] = j->v->sets[i]; }
    argv[n++] = "--set";
    argv[n++] = seedset;
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { cn_free(argv); return cn_error(CN_ERR_IO, "cannot start a training process: %s", strerror(errno)); }
    if (pid == 0) {
        /* the child's stderr goes to the run's train.log */
        FILE *lf = fopen(logpath, "w");
        if (lf) { dup2(fileno(lf), STDERR_FILENO); dup2(fileno(lf), STDOUT_FILENO); }
        execv("/proc/self/exe", argv);
        execvp(o->self, argv);
        fprintf(stderr, "clipnn compare: cannot run %s: %s\n", o->self, strerror(errno));
        _exit(1);
    }
    cn_free(argv);
    j->pid = pid;
    j->t0 = cn_now_s();
    return CN_OK;
}


cn_status cn_compare(const cn_compare_opts *o)
{
    cn_status st = CN_OK;
    cn_variant *vars = NULL;
    int nv = 0;
    job *jobs = NULL;
    cn_report_run *rr = NULL;
    char dir[2048];
    cn_session s;
    /* 1. the base config must be valid (nothing is started otherwise) */
    if ((st = cn_session_open(&s, o->config_path, o->sets, o->n_sets))) { cn_session_close(&s); return st; }
    char name[256];
    snprintf(name, sizeof name, "%s", s.cfg.name);
    if (o->n_variants) {
        vars = cn_calloc((size_t)o->n_variants, sizeof *vars);
        if (!vars) { cn_session_close(&s); return cn_error(CN_ERR_NOMEM, "out of memory"); }
        for (nv = 0; nv < o->n_variants; nv++)
            if ((st = cn_variant_parse(o->variants[nv], &vars[nv]))) break;
    } else {
        st = config_variants(s.cfg.root, s.cfg.file, &vars, &nv);
        if (!st && nv == 0) {
            cn_free(vars);
            vars = cn_calloc(2, sizeof *vars);
            if (!vars) st = cn_error(CN_ERR_NOMEM, "out of memory");
            else {
                nv = 2;
                st = cn_variant_parse("noclip:clip.mode=none", &vars[0]);
                snprintf(vars[1].name, sizeof vars[1].name, "config");
            }
        }
    }
    cn_session_close(&s);
    if (st) goto done;
    for (int i = 0; i < nv; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(vars[i].name, vars[k].name)) { st = cn_error(CN_ERR_ARG, "variant name \"%s\" is used twice", vars[i].name); goto done; }
    if (o->baseline) {   /* the paired section's baseline must be one of the variants */
        int found = 0;
        for (int i = 0; i < nv; i++) found |= !strcmp(vars[i].name, o->baseline);
        if (!found) { st = cn_error(CN_ERR_ARG, "--baseline: no variant is named \"%s\"", o->baseline); goto done; }
    }

    /* 2. every variant must give a valid config too */
    for (int i = 0; i < nv; i++) {
        int n = o->n_sets + vars[i].n_sets;
        char **all = cn_calloc((size_t)n + 1, sizeof *all);
        if (!all) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
        for (int k = 0; k < o->n_sets; k++) all[k] = o->sets[k];
        for (int k = 0; k < vars[i].n_sets; k++) all[o->n_sets + k] = vars[i].sets[k];
        st = cn_session_open(&s, o->config_path, all, n);
        vars[i].seed = s.cfg.seed;   /* a variant may set its own seed */
        cn_session_close(&s);
        cn_free(all);
        if (st) { cn_error_prefix(st, "variant \"%s\"", vars[i].name); goto done; }
    }

    /* 3. the runs, two at a time */
    if (o->out_dir) snprintf(dir, sizeof dir, "%s", o->out_dir);
    else cn_run_dir_name(dir, sizeof dir, name, "compare");
    int nj = nv * o->seeds;
    jobs = cn_calloc((size_t)nj, sizeof *jobs);
    rr = cn_calloc((size_t)nj, sizeof *rr);
    if (!jobs || !rr) { st = cn_error(CN_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0, k = 0; i < nv; i++)
        for (int sd = 0; sd < o->seeds; sd++, k++) {
            jobs[k].v = &vars[i];
            jobs[k].seed = vars[i].seed + sd;
            if (o->seeds > 1) snprintf(jobs[k].dir, sizeof jobs[k].dir, "%s/%s-s%lld", dir, vars[i].name, jobs[k].seed);
            else snprintf(jobs[k].dir, sizeof jobs[k].dir, "%s/%s", dir, vars[i].name);
            if ((st = cn_run_dir_check_new(jobs[k].dir))) goto done;   /* what train --out would refuse */
            jobs[k].exit_code = -1;   /* not run */
        }
    /* every directory checked above before any is made */
    if ((st = cn_mkdirs(dir))) goto done;
    for (int k = 0; k < nj; k++)
        if ((st = cn_mkdirs(jobs[k].dir))) goto done;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int par = ncpu >= 2 ? (int)ncpu : 1, running = 0, next = 0, finished = 0, forwarded = 0;
    if (par > 8) par = 8;
    double t_all = cn_now_s();
    if (o->progress) fprintf(o->progress, "clipnn compare: %d runs (%d variants x %d seeds), %d at a time, into %s\n", nj, nv, o->seeds, par, dir);
    while (finished < nj) {
        while (running < par && next < nj && !(o->stop_flag && *o->stop_flag)) {
            if ((st = start_job(o, &jobs[next]))) goto done;
            next++;
            running++;
        }
        if (running == 0) break;
        int status;
        pid_t pid = wait(&status);
        if (o->stop_flag && *o->stop_flag && !forwarded) {
            /* forward the interruption once: running children end cleanly and write their files
               (a terminal's Ctrl-C reaches them too; a signal sent to this process alone does not) */
            for (int k = 0; k < next; k++) if (jobs[k].exit_code < 0 && jobs[k].pid > 0) kill(jobs[k].pid, SIGINT);
            forwarded = 1;
        }
        if (pid < 0) {
            if (errno == EINTR) continue;
            st = cn_error(CN_ERR_IO, "waiting for training processes: %s", strerror(errno));
            goto done;
        }
        for (int k = 0; k < next; k++) {
            if (jobs[k].pid != pid) continue;
            jobs[k].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            jobs[k].secs = cn_now_s() - jobs[k].t0;
            running--;
            finished++;
            if (o->progress) {
                const char *what = jobs[k].exit_code == 0 ? "done" : jobs[k].exit_code == 3 ? "stopped: non-finite loss/gradient"
                                   : jobs[k].exit_code == 130 ? "interrupted" : "FAILED (see train.log)";
                fprintf(o->progress, "[%d/%d] %s seed %lld: %s (%.1f s)\n", finished, nj, jobs[k].v->name, jobs[k].seed, what, jobs[k].secs);
                fflush(o->progress);
            }
        }
    }
    for (int k = 0; k < nj; k++) {
        rr[k].variant = jobs[k].v->name;
        rr[k].seed = jobs[k].seed;
        rr[k].dir = jobs[k].dir;
        rr[k].exit_code = jobs[k].exit_code;
    }
    char title[512];
    snprintf(title, sizeof title, "%s: %d variant%s x %d seed%s", name, nv, nv > 1 ? "s" : "", o->seeds, o->seeds > 1 ? "s" : "");
    cn_report_opts ro = {title, o->baseline, stdout};
    if ((st = cn_report_write_opts(dir, rr, nj, &ro))) goto done;
    fprintf(stdout, "\nreport: %s/report.md\ncharts: %s/report.html\n(%.1f s)\n", dir, dir, cn_now_s() - t_all);
done:
    for (int i = 0; i < nv; i++) cn_variant_free(&vars[i]);
    cn_free(vars);
    cn_free(jobs);
    cn_free(rr);
    return st;
}
