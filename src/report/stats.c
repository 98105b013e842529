/* Order statistics and paired tests (see stats.h for the definitions and their sources). */
#include "report/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/rng.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void cn_stats_sort(double *x, long long n)
{
    if (n > 1) qsort(x, (size_t)n, sizeof *x, cmp_double);
}

double cn_stats_quantile_sorted(const double *x, long long n, double q)
{
    if (n <= 0) return NAN;
    double h = (double)(n - 1) * q;
    long long lo = (long long)floor(h);
    if (lo < 0) return x[0];
    if (lo >= n - 1) return x[n - 1];
    double f = h - (double)lo;
    return x[lo] + f * (x[lo + 1] - x[lo]);
}

/* log of the binomial coefficient C(n, k). */
static double log_choose(long long n, long long k)
{
    return lgamma((double)n + 1) - lgamma((double)k + 1) - lgamma((double)(n - k) + 1);
}

double cn_stats_sign_test(long long wins, long long losses)
{
    long long n = wins + losses;
    if (n <= 0) return NAN;
    if (wins == losses) return 1.0;
    long long m = wins < losses ? wins : losses;
    /* symmetric at p = 1/2: P(X <= m) + P(X >= n - m) = 2 P(X <= m) */
    double tail = 0.0;
    for (long long i = 0; i <= m; i++) tail += exp(log_choose(n, i) - (double)n * log(2.0));
    double p = 2.0 * tail;
    return p < 1.0 ? p : 1.0;
}

/* P(X = x) for the hypergeometric law: x successes in `draws` draws from `total` items of which
 * `good` are successes. */
static double hypergeom_pmf(long long x, long long total, long long good, long long draws)
{
    return exp(log_choose(good, x) + log_choose(total - good, draws - x) - log_choose(total, draws));
}

double cn_stats_fisher_exact(long long a, long long b, long long c, long long d)
{
    long long r1 = a + b, r2 = c + d, c1 = a + c, c2 = b + d, total = r1 + r2;
    if (r1 == 0 || r2 == 0 || c1 == 0 || c2 == 0) return 1.0;
    long long lo = c1 - r2 > 0 ? c1 - r2 : 0, hi = c1 < r1 ? c1 : r1;
    double p_obs = hypergeom_pmf(a, total, r1, c1);
    /* every table at most as likely as the observed one; the tolerance keeps tables that are equally
       likely in exact arithmetic but differ in the last bits (R's and scipy's 1 + 1e-7) */
    double lim = p_obs * (1.0 + 1e-7), p = 0.0;
    for (long long x = lo; x <= hi; x++) {
        double px = hypergeom_pmf(x, total, r1, c1);
        if (px <= lim) p += px;
    }
    return p < 1.0 ? p : 1.0;
}

void cn_stats_wilcoxon(const double *d, int n, double *stat, double *p, int *exact, int *n_used)
{
    /* ranks of |d| among the non-zero differences, ties averaged: O(n^2) without scratch memory */
    int m = 0, zeros = 0;
    double w_plus = 0.0, w_minus = 0.0, tie_sum = 0.0;
    for (int i = 0; i < n; i++) {
        if (d[i] == 0.0) { zeros++; continue; }
        m++;
        double ai = fabs(d[i]);
        long long below = 0, equal = 0;
        for (int j = 0; j < n; j++) {
            if (d[j] == 0.0) continue;
            double aj = fabs(d[j]);
            below += aj < ai;
            equal += aj == ai;
        }
        double rank = (double)below + ((double)equal + 1.0) / 2.0;
        if (d[i] > 0) w_plus += rank;
        else w_minus += rank;
        /* each member of a tie group of size t adds t^2 - 1: the group adds t (t^2 - 1) */
        tie_sum += (double)equal * (double)equal - 1.0;
    }
    *n_used = m;
    *stat = w_plus < w_minus ? w_plus : w_minus;
    *exact = 0;
    if (m == 0) { *p = NAN; return; }
    if (m <= CN_STATS_WILCOXON_EXACT_MAX && zeros == 0 && tie_sum == 0.0) {
        /* cnt[w] = number of subsets of {1..m} with sum w: under H0 each sign is +/- with
           probability 1/2 independently, so P(W+ = w) = cnt[w] / 2^m */
        enum { MAXS = CN_STATS_WILCOXON_EXACT_MAX * (CN_STATS_WILCOXON_EXACT_MAX + 1) / 2 };
        double cnt[MAXS + 1];
        int smax = m * (m + 1) / 2;
        memset(cnt, 0, sizeof cnt);
        cnt[0] = 1.0;
        for (int k = 1; k <= m; k++)
            for (int s = smax; s >= k; s--) cnt[s] += cnt[s - k];
        int r = (int)w_plus;
        double total = ldexp(1.0, m), le = 0.0, ge = 0.0;
        for (int s = 0; s <= smax; s++) {
            if (s <= r) le += cnt[s];
            if (s >= r) ge += cnt[s];
        }
        double pv = 2.0 * (le < ge ? le : ge) / total;
        *p = pv < 1.0 ? pv : 1.0;
        *exact = 1;
        return;
    }
    /* normal approximation: E[W] = m(m+1)/4, Var[W] = (m(m+1)(2m+1) - sum t(t^2-1)/2) / 24 */
    double dm = (double)m;
    double mean = dm * (dm + 1.0) * 0.25;
    double var = (dm * (dm + 1.0) * (2.0 * dm + 1.0) - 0.5 * tie_sum) / 24.0;
    if (!(var > 0)) { *p = 1.0; return; }
    double z = (*stat - mean) / sqrt(var);
    double pv = erfc(fabs(z) / sqrt(2.0));   /* 2 * (1 - Phi(|z|)) */
    *p = pv < 1.0 ? pv : 1.0;
}

cn_status cn_stats_bootstrap_mean(const double *d, int n, int resamples, uint64_t seed, double level,
                                  double *lo, double *hi)
{
    if (n < 1 || resamples < 1 || !(level > 0 && level < 1))
        return cn_error(CN_ERR_ARG, "bootstrap: needs n >= 1, resamples >= 1 and 0 < level < 1");
    double *means = cn_malloc((size_t)resamples * sizeof *means);
    if (!means) return cn_error(CN_ERR_NOMEM, "out of memory for the bootstrap");
    cn_rng rng;
    cn_rng_seed(&rng, seed);
    for (int b = 0; b < resamples; b++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) s += d[cn_rng_below(&rng, (uint64_t)n)];
        means[b] = s / (double)n;
    }
    cn_stats_sort(means, resamples);
    *lo = cn_stats_quantile_sorted(means, resamples, (1.0 - level) / 2.0);
    *hi = cn_stats_quantile_sorted(means, resamples, (1.0 + level) / 2.0);
    cn_free(means);
    return CN_OK;
}

cn_status cn_stats_paired(const double *variant, const double *baseline, int n, double *work, cn_paired_stats *out)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || !work) return cn_error(CN_ERR_ARG, "paired statistics: needs at least one pair");
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double di = variant[i] - baseline[i];
        if (!isfinite(di)) return cn_error(CN_ERR_ARG, "paired statistics: pair %d is not finite", i);
        work[i] = di;
        sum += di;
        out->wins += di < 0;
        out->losses += di > 0;
        out->ties += di == 0;
    }
    out->n = n;
    out->mean_diff = sum / (double)n;
    cn_stats_wilcoxon(work, n, &out->wilcoxon_stat, &out->wilcoxon_p, &out->wilcoxon_exact, &out->wilcoxon_n);
    out->sign_p = cn_stats_sign_test(out->wins, out->losses);
    cn_status st = cn_stats_bootstrap_mean(work, n, CN_STATS_BOOTSTRAP_RESAMPLES, CN_STATS_BOOTSTRAP_SEED, 0.95,
                                           &out->boot_lo, &out->boot_hi);
    if (st) return st;
    cn_stats_sort(work, n);
    out->median_diff = cn_stats_quantile_sorted(work, n, 0.5);
    return CN_OK;
}
