#!/usr/bin/python3
"""PyTorch side of `make bench`: the same workloads and step as bench/bench.c, one per process.

    /usr/bin/python3 bench/torch_bench.py WORKLOAD [--threads N] [--seconds S] [--hidden H] [--seq T] [--batch B]

Step (as clipnn's trainer): zero_grad, forward, loss, backward, clip_grad_norm_(1.0), optimizer.step().
Models: rnn/lstm/gru: nn.RNN/LSTM/GRU(2, 128) on [T=50, B=32, 2] (time-major), last output -> Linear(128, 1),
MSE, Adam(lr=1e-3); mlp: 784-512-512-10 ReLU, batch 128, cross-entropy, SGD(lr=0.01, momentum=0.9);
tiny: 2-16-16-1 tanh, batch 32, MSE, SGD(lr=0.01). Timing as bench.c: warm-up (>= 3 steps and 0.2 s), then a
step count chosen to fill --seconds, timed as one block. Prints one RESULT line (peak RSS from getrusage).
--hidden / --seq / --batch change the recurrent hidden size (mlp: both hidden widths), T and the batch, as
bench.c's options of the same names.
"""
import argparse
import resource
import time

import torch
from torch import nn


class Rec(nn.Module):
    def __init__(self, cell, hidden):
        super().__init__()
        self.rnn = cell(2, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[-1])


def build(name, hidden=None, seq=None, batch=None):
    g = torch.Generator().manual_seed(1234)
    if name in ("rnn", "lstm", "gru"):
        H, T, B = hidden or 128, seq or 50, batch or 32
        model = Rec({"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[name], H)
        x = torch.randn(T, B, 2, generator=g)
        y = torch.randn(B, 1, generator=g)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.MSELoss()
    elif name == "mlp":
        H, B = hidden or 512, batch or 128
        model = nn.Sequential(nn.Linear(784, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 10))
        x = torch.randn(B, 784, generator=g)
        y = torch.randint(0, 10, (B,), generator=g)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
    elif name == "tiny":
        model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
        x = torch.randn(32, 2, generator=g)
        y = torch.randn(32, 1, generator=g)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        loss_fn = nn.MSELoss()
    else:
        raise SystemExit("unknown workload " + name)
    params = list(model.parameters())

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step


def run(step, n):
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--hidden", type=int, default=None)
    ap.add_argument("--seq", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    step = build(a.workload, a.hidden, a.seq, a.batch)
    run(step, 2)
    nw, last = 1, run(step, 1)
    tw = last
    while tw < 0.2:   # doubling batches until 0.2 s; the step time is estimated from the last batch
        nw *= 2
        last = run(step, nw)
        tw += last
    n = max(3, int(a.seconds / (last / nw)))
    t = run(step, n)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("RESULT impl=torch workload=%s threads=%d clip=norm steps=%d seconds=%.4f steps_per_s=%.3f step_ms=%.5f "
          "rss_kb=%d torch=%s hidden=%s seq=%s batch=%s" % (a.workload, a.threads, n, t, n / t, 1e3 * t / n, rss,
                                                            torch.__version__, a.hidden or "-", a.seq or "-",
                                                            a.batch or "-"))


if __name__ == "__main__":
    main()
