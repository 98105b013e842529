/* Statistics for comparing runs: order statistics, and the paired comparison of a variant with a
 * baseline over seeds (runs with the same seed share data order and initialisation, so the
 * per-seed difference removes most of the seed-to-seed noise).
 *
 * Pure functions on doubles. Only the bootstrap allocates (one buffer of `resamples` doubles,
 * freed before it returns); everything else works in place or in O(1) memory, apart from the exact
 * Wilcoxon distribution, which lives on the stack (n <= CN_STATS_WILCOXON_EXACT_MAX).
 *
 * Conventions (each matches scipy.stats 1.10, which the tests use as the independent oracle):
 * - quantiles interpolate linearly between order statistics (numpy's default "linear", Hyndman &
 *   Fan type 7): q-quantile of sorted x[0..n-1] = x[h] + (h - floor h)(x[h+1] - x[h]), h = (n-1) q;
 * - Wilcoxon signed-rank: zero differences are dropped (zero_method "wilcox"), |d| ranked with
 *   ties given their average rank; the statistic is min(W+, W-); the two-sided p-value is exact
 * (the null distribution of W+ by counting subsets of 1..n) when 1 <= n <= 50 non-zero
 *   differences and no tied |d| and no zero was dropped, else the normal approximation with the
 *   tie correction of the variance and no continuity correction (scipy's default correction=False);
 * - sign test: two-sided binomial test of wins against losses at p = 1/2, ties dropped;
 * - Fisher's exact test: two-sided, the sum of the hypergeometric probabilities of every table
 *   (same margins) no more likely than the observed one (relative tolerance 1e-7), 1 when a row or
 *   a column of the table is all zero. */
#ifndef CN_STATS_H
#define CN_STATS_H

#include <stdint.h>
#include "tensor/core.h"

/* Resamples and seed of the report's bootstrap interval (documented in the README). */
#define CN_STATS_BOOTSTRAP_RESAMPLES 10000
#define CN_STATS_BOOTSTRAP_SEED 20130101ULL
#define CN_STATS_WILCOXON_EXACT_MAX 50

/* Sorts x ascending (n >= 0). x must be finite. */
void cn_stats_sort(double *x, long long n);
/* The q-quantile (0 <= q <= 1) of sorted x[0..n-1], type 7 (see above); NAN when n == 0. */
double cn_stats_quantile_sorted(const double *x, long long n, double q);

/* Two-sided exact p-value of the sign test: wins against losses at p = 1/2. NAN when
 * wins + losses == 0. */
double cn_stats_sign_test(long long wins, long long losses);

/* Two-sided Fisher exact p-value of the 2x2 table [[a, b], [c, d]] (counts >= 0). */
double cn_stats_fisher_exact(long long a, long long b, long long c, long long d);

/* Wilcoxon signed-rank test of the differences d[0..n-1] (finite). *stat = min(W+, W-), *p the
 * two-sided p-value, *exact 1 when the exact distribution was used, *n_used the non-zero
 * differences. With no non-zero difference, *stat = 0 and *p = NAN. Allocates nothing. */
void cn_stats_wilcoxon(const double *d, int n, double *stat, double *p, int *exact, int *n_used);

/* Percentile bootstrap interval of the mean of d[0..n-1] (n >= 1, finite): `resamples` resamples
 * of n values drawn with replacement by cn_rng seeded with `seed` (index j = cn_rng_below(n), in
 * order), their means sorted, and the (1-level)/2 and (1+level)/2 quantiles (type 7). Deterministic.
 * CN_ERR_ARG for n < 1 or resamples < 1, CN_ERR_NOMEM. */
cn_status cn_stats_bootstrap_mean(const double *d, int n, int resamples, uint64_t seed, double level,
                                  double *lo, double *hi);

/* A variant against a baseline over n paired seeds: diff = variant - baseline of a loss, so a
 * negative difference is a win for the variant. */
typedef struct {
    int n;                    /* pairs */
    int wins, losses, ties;   /* variant lower / higher / equal */
    double mean_diff, median_diff;
    double boot_lo, boot_hi;  /* 95% bootstrap interval of mean_diff */
    double wilcoxon_stat, wilcoxon_p;
    int wilcoxon_exact, wilcoxon_n;
    double sign_p;
} cn_paired_stats;

/* All of the above for the pairs (variant[i], baseline[i]), i < n (n >= 1, finite values), with
 * the bootstrap at CN_STATS_BOOTSTRAP_RESAMPLES / CN_STATS_BOOTSTRAP_SEED. `work` holds n doubles
 * of scratch. CN_ERR_ARG, CN_ERR_NOMEM. */
cn_status cn_stats_paired(const double *variant, const double *baseline, int n, double *work, cn_paired_stats *out);

#endif
