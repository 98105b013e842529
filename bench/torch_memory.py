#!/usr/bin/python3
"""PyTorch side of bench/memory.sh: the mlp of `make bench` trained on an .npy data set, its peak memory.

    /usr/bin/python3 bench/torch_memory.py X.npy Y.npy STEPS

Baseline: the resident size after `import torch` (VmRSS), before any data or model. Then the data set is
loaded (np.load: one copy, shared with torch.from_numpy), and STEPS steps as `clipnn train` takes them:
shuffled batches of 128 drawn each epoch, zero_grad, forward, cross-entropy, backward, clip_grad_norm_(1.0),
SGD(lr=0.01, momentum=0.9). Prints one RESULT line: baseline_kb, peak_kb (getrusage ru_maxrss) and the
increment.
"""
import resource
import sys

import numpy as np
import torch
from torch import nn


def rss_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def main():
    xpath, ypath, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    base = rss_kb("VmRSS")
    torch.manual_seed(1)
    x = torch.from_numpy(np.load(xpath))
    y = torch.from_numpy(np.load(ypath))
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    n, b, done = x.shape[0], 128, 0
    while done < steps:
        perm = torch.randperm(n)
        for k in range(0, n - b + 1, b):
            if done == steps:
                break
            idx = perm[k:k + b]
            opt.zero_grad(set_to_none=False)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            done += 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT impl=torch baseline_kb={base} peak_kb={peak} increment_kb={peak - base} torch={torch.__version__}")


if __name__ == "__main__":
    main()
