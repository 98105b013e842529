/* `clipnn compare` over MPI ranks (see compare_dist.h). */
#include "cli/compare_dist.h"

#include <stdlib.h>
#include <string.h>

#include "cli/compare_pool.h"
#include "dist/dist.h"

cn_status cli_compare_dist_plan(cn_compare_opts *o, cn_compare_plan *p, cn_status *rank0_st)
{
    int rank = cn_dist_rank();
    memset(p, 0, sizeof *p);
    cn_status st = rank == 0 ? cn_compare_plan_make(o, p) : CN_OK;
    int code = (int)st;
    if ((st = cn_dist_max_int(&code, 1))) return st;   /* only rank 0's is non-zero */
    *rank0_st = (cn_status)code;
    if (code) return CN_OK;   /* cn_compare_plan_make freed its plan */
    static char dir[sizeof p->dir];
    if (rank == 0) snprintf(dir, sizeof dir, "%s", p->dir);
    if ((st = cn_dist_bcast(dir, sizeof dir, 0))) return st;
    if (rank != 0) {
        o->out_dir = dir;
        if ((st = cn_compare_plan_make(o, p))) return st;
    }
    return cn_dist_barrier();
}

cn_status cli_compare_dist_pool(cn_compare_plan *p, const char *self, int jobs, FILE *progress,
                                volatile sig_atomic_t *signals)
{
    int rank = cn_dist_rank(), size = cn_dist_size(), k = 0, todo = p->n_todo, mine = 0;
    cn_compare_action *saved = calloc((size_t)p->n_runs + 1, sizeof *saved);
    int *codes = calloc((size_t)p->n_runs + 1, sizeof *codes);
    if (!saved || !codes) {
        free(saved);
        free(codes);
        return cn_error(CN_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < p->n_runs; i++) {
        saved[i] = p->runs[i].action;
        if (saved[i] == CN_RUN_KEEP) continue;
        if (k++ % size != rank) p->runs[i].action = CN_RUN_KEEP;   /* another rank's */
        else mine++;
    }
    cn_status st = CN_OK;
    if (setenv("CLIPNN_DIST", "0", 1) != 0) st = cn_error(CN_ERR_IO, "cannot set CLIPNN_DIST");
    p->n_todo = mine;
    if (!st) st = cli_compare_pool(p, self, jobs, progress, signals);
    p->n_todo = todo;
    for (int i = 0; i < p->n_runs; i++) {
        codes[i] = p->runs[i].action != CN_RUN_KEEP ? p->runs[i].exit_code : -1;   /* -1: not this rank's */
        p->runs[i].action = saved[i];
    }
    /* a failure here is reported by the caller, but only after the ranks have met (no hang) */
    cn_status cs = cn_dist_max_int(codes, (size_t)p->n_runs);
    for (int i = 0; !cs && i < p->n_runs; i++)
        if (p->runs[i].action != CN_RUN_KEEP) p->runs[i].exit_code = codes[i];
    int stop = signals && *signals ? 1 : 0;
    if (!cs) cs = cn_dist_max_int(&stop, 1);
    if (!cs && stop && signals && !*signals) *signals = 1;
    free(saved);
    free(codes);
    return st ? st : cs;
}
