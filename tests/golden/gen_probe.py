#!/usr/bin/python3
"""Fixture and expected figures for the gradient-norm probe (src/report/probe.c).

Re-run from the repository root (numpy only; Debian's /usr/bin/python3):
    /usr/bin/python3 tests/golden/gen_probe.py
It writes
  tests/data/probe/metrics.csv  a metrics.csv as the trainer writes it: 160 logged steps of a made-up
                                run with three parameter tensors (gn_pre.* columns), a calm start, a
                                burst of spikes, three non-finite steps (nan, inf) and a torn last line
                                (a killed run), which the probe must drop, and a step whose norm is
                                finite but whose loss is not (not a measurement: counted non-finite);
  tests/golden/probe.json       the probe's figures computed here with numpy, independently of the C
                                code: percentiles by numpy.percentile (linear), spikes by a plain
                                window of the previous 100 finite norms and numpy.median, shares from
                                the squared tensor norms.
The C test (tests/test_probe.c) reads both; it never needs Python.
"""
import json
import os

import numpy as np

K, WINDOW, MIN_HISTORY = 10.0, 100, 10

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
data_dir = os.path.join(root, "data", "probe")


def fmt(v):
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.9g" % v


def make_csv():
    rs = np.random.RandomState(12)
    n = 160
    names = ["0.weight", "0.bias", "2.weight"]
    header = ("step,epoch,loss,lr,grad_norm_pre,grad_norm_post,clip_coef,clip_threshold,clipped,grad_max_abs,"
              "nonfinite,skipped,time_ms," + ",".join("gn_pre." + m for m in names))
    lines = [header]
    for s in range(1, n + 1):
        base = 0.8 * np.exp(rs.normal(0, 0.35))
        if 40 <= s < 46 or s in (90, 131):
            base *= 30 + 200 * rs.rand()          # spikes
        parts = np.array([0.7, 0.2, 0.1]) * np.exp(rs.normal(0, 0.3, 3))
        parts = parts / np.sqrt((parts ** 2).sum()) * base   # tensors' squares sum to the global square
        # float32 values, printed as the trainer prints them
        t = [float(np.float32(x)) for x in parts]
        g = float(np.float32(np.sqrt(sum(x * x for x in t))))
        nonfinite = 0
        if s == 70:
            g, t = float("nan"), [float("nan")] * 3
            nonfinite = 1
        if s == 71:
            g, t = float("inf"), [float("inf"), 1.5, float("nan")]
            nonfinite = 1
        if s == 120:                              # the global is finite but one tensor's is not logged as such
            t[2] = float("nan")
        if s == 150:
            g, t = float("inf"), [float("inf"), float("inf"), 0.25]
            nonfinite = 1
        loss = float("inf") if s == 100 else 0.5   # a finite norm with a non-finite loss: not a measurement
        row = [str(s), "1", fmt(loss), "0.1", fmt(g), fmt(g), "1", "nan", "0", fmt(abs(t[0])), str(nonfinite),
               str(nonfinite), "0.1"] + [fmt(x) for x in t]
        lines.append(",".join(row))
    torn = "161,1,0.5,0.1,123"                    # killed mid-line: no newline, too few fields
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "metrics.csv"), "w") as f:
        f.write("\n".join(lines) + "\n" + torn)


def read_csv():
    with open(os.path.join(data_dir, "metrics.csv")) as f:
        text = f.read()
    rows = text.split("\n")
    header = rows[0].split(",")
    body = [r.split(",") for r in rows[1:] if r]
    body = [r for r in body if len(r) == len(header)]   # the torn line
    col = {h: i for i, h in enumerate(header)}
    step = np.array([float(r[col["step"]]) for r in body])
    norm = np.array([float(r[col["grad_norm_pre"]]) for r in body])
    loss = np.array([float(r[col["loss"]]) for r in body])
    norm[~np.isfinite(loss)] = np.nan          # a non-finite loss counts as a non-finite gradient
    tnames = [h[len("gn_pre."):] for h in header if h.startswith("gn_pre.")]
    tens = np.array([[float(r[col["gn_pre." + m]]) for m in tnames] for r in body])
    return step, norm, tnames, tens


def main():
    make_csv()
    step, norm, tnames, tens = read_csv()
    fin = np.isfinite(norm)
    x = norm[fin]
    pct = lambda q: float(np.percentile(x, q))
    spikes = []
    seen = []
    for i in range(len(norm)):
        v = norm[i]
        if not np.isfinite(v):
            continue
        if len(seen) >= MIN_HISTORY:
            med = float(np.median(seen[-WINDOW:]))
            if v > K * med:
                spikes.append({"step": int(step[i]), "norm": float(v), "ratio": float(v / med)})
        seen.append(v)
    if spikes:
        before = norm[(step < spikes[0]["step"]) & fin]
        calm = float(np.median(before))
    else:
        calm = float(np.median(x))
    ok = fin & np.all(np.isfinite(tens), axis=1)
    sq = (tens[ok] ** 2).sum(axis=0)
    shares = sq / sq.sum()
    medians = np.median(tens[ok], axis=0)
    cands = {"mean": float(np.mean(x)), "p50": pct(50), "p10": pct(10), "p25": pct(25), "p90": pct(90), "calm": calm}
    out = {
        "generator": "tests/golden/gen_probe.py", "numpy": np.__version__,
        "rows": int(len(norm)), "finite": int(fin.sum()), "nonfinite": int((~fin).sum()),
        "first_nonfinite_step": int(step[~fin][0]),
        "grad_norm_pre": {"mean": float(np.mean(x)), "min": float(x.min()), "p10": pct(10), "p25": pct(25),
                          "median": pct(50), "p75": pct(75), "p90": pct(90), "p99": pct(99), "max": float(x.max())},
        "spikes": {"count": len(spikes), "first": spikes},
        "candidates": [{"rule": k, "threshold": v, "clip_rate": float((x > v).sum() / len(x))} for k, v in cands.items()],
        "tensor_rows": int(ok.sum()),
        "tensors": [{"name": m, "share": float(s), "median": float(md)} for m, s, md in zip(tnames, shares, medians)],
    }
    path = os.path.join(root, "golden", "probe.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path, "and", os.path.join(data_dir, "metrics.csv"))


if __name__ == "__main__":
    main()
