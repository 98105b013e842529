#!/usr/bin/python3
"""Golden fixture for src/report/stats.c: the paired statistics computed by an independent
implementation (Debian's python3-scipy 1.10 and numpy).

Re-run from the repository root:
    /usr/bin/python3 tests/golden/gen_stats.py
It writes tests/golden/stats.json (read by tests/test_stats.c; the C tests never need Python).

What is pinned, and how each number is made here:
- quantiles: numpy.quantile (method "linear", numpy's default);
- paired cases (variant, baseline): d = variant - baseline; wins d < 0, losses d > 0, ties d == 0;
  mean and median with numpy; scipy.stats.wilcoxon(d, zero_method="wilcox", correction=False,
  alternative="two-sided") with method="exact" when clipnn uses the exact distribution (1 to 50
  non-zero differences, no zero, no tied |d|) and method="approx" otherwise; the sign test with
  scipy.stats.binomtest(wins, wins + losses, 0.5); the bootstrap interval with a pure-Python copy of
  clipnn's generator (xoshiro256** seeded by SplitMix64, unbiased bounded draws by rejection) and
  numpy.percentile of the resample means;
- Fisher's exact test: scipy.stats.fisher_exact(table, alternative="two-sided").
Numbers are written with repr() (17 significant digits, exact for doubles).
"""
import json
import os

import numpy as np
import scipy
from scipy import stats

M64 = (1 << 64) - 1
RESAMPLES = 10000          # CN_STATS_BOOTSTRAP_RESAMPLES
SEED = 20130101            # CN_STATS_BOOTSTRAP_SEED
EXACT_MAX = 50             # CN_STATS_WILCOXON_EXACT_MAX


class Rng:
    """clipnn's cn_rng: xoshiro256** (Blackman & Vigna) seeded by SplitMix64."""

    def __init__(self, seed):
        x = seed & M64
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def u64(self):
        s = self.s
        result = (self.rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self.rotl(s[3], 45)
        return result

    def below(self, n):
        if n <= 1:
            return 0
        limit = M64 - (M64 % n)
        while True:
            x = self.u64()
            if x < limit:
                return x % n


def bootstrap(d, resamples=RESAMPLES, seed=SEED, level=0.95):
    rng = Rng(seed)
    n = len(d)
    means = []
    for _ in range(resamples):
        s = 0.0
        for _ in range(n):
            s += d[rng.below(n)]      # the same order of additions as the C code
        means.append(s / n)
    lo, hi = np.percentile(np.array(means), [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def paired(name, variant, baseline):
    v = np.array(variant, dtype=np.float64)
    b = np.array(baseline, dtype=np.float64)
    d = v - b
    nz = d[d != 0]
    wins, losses, ties = int((d < 0).sum()), int((d > 0).sum()), int((d == 0).sum())
    exact = 0 < len(nz) <= EXACT_MAX and ties == 0 and len(np.unique(np.abs(nz))) == len(nz)
    case = {"name": name, "variant": variant, "baseline": baseline, "n": len(d),
            "wins": wins, "losses": losses, "ties": ties,
            "mean_diff": float(np.mean(d)), "median_diff": float(np.median(d)),
            "wilcoxon_exact": int(exact), "wilcoxon_n": int(len(nz))}
    if len(nz):
        w = stats.wilcoxon(d, zero_method="wilcox", correction=False, alternative="two-sided",
                           method="exact" if exact else "approx")
        case["wilcoxon_stat"] = float(w.statistic)
        case["wilcoxon_p"] = float(w.pvalue)
    else:
        case["wilcoxon_stat"] = 0.0
        case["wilcoxon_p"] = None   # undefined: scipy refuses all-zero differences
    case["sign_p"] = float(stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else None
    case["boot_lo"], case["boot_hi"] = bootstrap([float(x) for x in d])
    return case


def main():
    rs = np.random.RandomState(7)
    cases = [
        # five seeds, every difference distinct: exact distribution
        paired("small_exact", [0.011, 0.0095, 0.013, 0.0102, 0.0088], [0.0125, 0.0101, 0.0120, 0.0131, 0.0097]),
        # tied |d| (0.5 twice, 1 twice): normal approximation with the tie correction
        paired("ties", [1.5, 2.0, 3.0, 4.0, 2.5, 7.0], [2.0, 1.5, 4.0, 3.0, 1.0, 4.0]),
        # a zero difference is dropped (zero_method "wilcox"), then the approximation
        paired("zeros", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [1.0, 2.5, 2.0, 4.0, 6.5, 2.0, 8.75]),
        # the variant wins on every seed
        paired("all_wins", [0.1, 0.2, 0.3, 0.4, 0.5], [0.15, 0.27, 0.39, 0.41, 0.62]),
        # the variant loses on every seed
        paired("all_losses", [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7], [0.5, 0.9, 1.15, 0.7, 1.0, 1.45, 1.1, 0.2]),
        # one seed
        paired("n1", [0.25], [0.5]),
        # two seeds, one win one loss
        paired("n2", [1.0, 2.0], [1.5, 1.25]),
        # thirty seeds: still exact
        paired("n30", [float(x) for x in rs.lognormal(-4, 0.5, 30)], [float(x) for x in rs.lognormal(-4, 0.5, 30)]),
        # sixty seeds: the normal approximation
        paired("n60", [float(x) for x in rs.normal(1.0, 0.2, 60)], [float(x) for x in rs.normal(1.1, 0.2, 60)]),
        # every difference zero: no test
        paired("all_ties", [0.5, 0.25, 0.125], [0.5, 0.25, 0.125]),
    ]
    fisher = []
    for t in [[[5, 0], [0, 5]], [[0, 5], [5, 0]], [[3, 2], [1, 4]], [[0, 5], [0, 5]], [[5, 0], [5, 0]],
              [[1, 9], [11, 3]], [[0, 20], [20, 0]], [[2, 3], [2, 3]], [[0, 5], [5, 0]], [[1, 0], [0, 0]],
              [[7, 12], [2, 30]], [[0, 3], [3, 0]]]:
        fisher.append({"table": t, "p": float(stats.fisher_exact(t, alternative="two-sided")[1])})
    sign = []
    for w, l in [(5, 0), (0, 5), (3, 2), (10, 2), (100, 80), (1, 0), (4, 4), (0, 17)]:
        sign.append({"wins": w, "losses": l, "p": float(stats.binomtest(w, w + l, 0.5).pvalue)})
    quant = []
    for x in [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0], [float(v) for v in rs.lognormal(0, 2, 37)]]:
        qs = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]
        quant.append({"x": x, "q": qs, "value": [float(v) for v in np.quantile(np.array(x), qs)]})
    out = {"generator": "tests/golden/gen_stats.py", "scipy": scipy.__version__, "numpy": np.__version__,
           "resamples": RESAMPLES, "seed": SEED, "paired": cases, "fisher": fisher, "sign": sign,
           "quantile": quant}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stats.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
