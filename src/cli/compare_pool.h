/* The process pool of `clipnn compare`: each run of a plan is a child process `clipnn train`, so runs
 * are isolated (a crash or divergence in one is a result, not the end of the comparison). */
#ifndef CN_CLI_COMPARE_POOL_H
#define CN_CLI_COMPARE_POOL_H

#include <signal.h>
#include <stdio.h>
#include "train/compare.h"

/* Runs the plan's runs whose action is not KEEP, at most `jobs` at a time, in plan order, and sets
 * their exit codes. Each child runs in its own process group, so a terminal's Ctrl-C reaches this
 * process only; when *signals (a count kept by the caller's SIGINT/SIGTERM handler) rises, no new run
 * starts and each running child gets exactly one SIGINT per signal received: the first makes every
 * child end after its current step with all its files and a checkpoint (resumable); a second ends
 * them at once, as a second Ctrl-C does to `clipnn train`. Returns when every started child has
 * ended. `self` is argv[0] (how to start clipnn when /proc/self/exe is not there). The caller's
 * handler must be installed without SA_RESTART. Progress lines go to `progress` (NULL: silent). */
cn_status cli_compare_pool(cn_compare_plan *p, const char *self, int jobs, FILE *progress,
                           volatile sig_atomic_t *signals);

#endif
