/* `clipnn compare` over MPI ranks (mpirun -np N clipnn compare ...): every rank holds the same plan,
 * the runs to do are dealt out over the ranks, each rank runs its share with the process pool of
 * compare_pool.h, and every rank learns every run's exit code (rank 0 then writes the report). */
#ifndef CN_CLI_COMPARE_DIST_H
#define CN_CLI_COMPARE_DIST_H

#include <signal.h>
#include <stdio.h>
#include "train/compare.h"

/* The same plan on every rank: rank 0 makes it (and so picks the folder when o->out_dir is NULL); when
 * that fails, *rank0_st is its status on every rank (rank 0 has the message, cn_errmsg()) and the
 * plan is empty; else the other ranks make the plan for rank 0's folder (o->out_dir is set to it), and
 * all ranks have looked at the folder before this returns (rank 0 may then write into it). An error
 * status: this rank failed alone (the caller ends the job). */
cn_status cli_compare_dist_plan(cn_compare_opts *o, cn_compare_plan *p, cn_status *rank0_st);

/* Runs this rank's share: the runs to do in plan order, the k-th to rank k mod N, `jobs` at a time
 * (cli_compare_pool, with *signals as there); their children get CLIPNN_DIST=0 so they never take
 * themselves for MPI ranks. Then every rank's plan holds every run's exit code, and *signals is at
 * least 1 on every rank when any rank was interrupted. */
cn_status cli_compare_dist_pool(cn_compare_plan *p, const char *self, int jobs, FILE *progress,
                                volatile sig_atomic_t *signals);

#endif
