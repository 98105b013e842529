#!/usr/bin/python3
"""PyTorch check of `clipnn export` and of the loading recipe in examples/torch_load.py.

For each config in tests/golden/export/ (an MLP classifier, an LSTM with per-step outputs, a stacked
LSTM -> GRU, a ReLU RNN with per-step outputs): trains it for a few steps with build/clipnn, exports the
model tensors with `clipnn export`, loads the export into PyTorch with load_clipnn() (strict
load_state_dict into the nn.Sequential built from the file's metadata) and writes what PyTorch computes on
the config's test data: the mean loss and every output, to <name>.expected.json, after checking that
`clipnn predict` gives the same outputs (max |difference| 1e-5). The exports
(<name>.safetensors) and the expected files are committed; tests/test_export.c checks that `clipnn eval`
and `clipnn predict` on the committed export give PyTorch's numbers, without Python.

Run from the repository root after `make`:  /usr/bin/python3 tests/golden/gen_export.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))
from torch_load import load_clipnn  # noqa: E402

HERE = os.path.join(ROOT, "tests", "golden", "export")
CLIPNN = os.path.join(ROOT, "build", "clipnn")

rng = np.random.default_rng(16)
N, T = 12, 7
np.save(os.path.join(HERE, "x_flat.npy"), rng.normal(size=(N, 4)).astype(np.float32))
np.save(os.path.join(HERE, "labels.npy"), rng.integers(0, 3, size=N).astype(np.int64))
np.save(os.path.join(HERE, "x_seq.npy"), rng.normal(size=(N, T, 3)).astype(np.float32))
np.save(os.path.join(HERE, "y_seq.npy"), rng.normal(size=(N, T, 2)).astype(np.float32))
np.save(os.path.join(HERE, "y_last.npy"), rng.normal(size=(N, 1)).astype(np.float32))

MODELS = {
    "mlp_ce": {"x": "x_flat.npy", "y": "labels.npy", "loss": "cross_entropy",
               "model": [{"type": "linear", "out": 16}, {"type": "tanh"}, {"type": "dropout", "p": 0.1},
                         {"type": "linear", "out": 3}]},
    "lstm_seq": {"x": "x_seq.npy", "y": "y_seq.npy", "loss": "mse",
                 "model": [{"type": "lstm", "hidden": 8, "output": "sequence"}, {"type": "linear", "out": 2}]},
    "stack_last": {"x": "x_seq.npy", "y": "y_last.npy", "loss": "mse",
                   "model": [{"type": "lstm", "hidden": 6, "output": "sequence", "name": "enc"},
                             {"type": "gru", "hidden": 5}, {"type": "linear", "out": 1}]},
    "rnn_relu_seq": {"x": "x_seq.npy", "y": "y_seq.npy", "loss": "mse",
                     "model": [{"type": "rnn", "hidden": 5, "nonlinearity": "relu", "output": "sequence"},
                               {"type": "linear", "out": 2, "bias": False}]},
}

work = tempfile.mkdtemp(prefix="cn-export-")
try:
    for name, m in MODELS.items():
        cfg = {"name": name, "seed": 3,
               "data": {"kind": "npy", "x": m["x"], "y": m["y"], "test_x": m["x"], "test_y": m["y"],
                        "shuffle": False},
               "model": m["model"], "loss": m["loss"], "optimizer": {"type": "adam", "lr": 0.01},
               "clip": {"mode": "norm", "max_norm": 1.0}, "train": {"steps": 5, "batch_size": 4}}
        cfg_path = os.path.join(HERE, name + ".json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
            f.write("\n")
        run = os.path.join(work, name)
        subprocess.run([CLIPNN, "train", cfg_path, "--out", run, "--quiet"], check=True)
        export = os.path.join(HERE, name + ".safetensors")
        subprocess.run([CLIPNN, "export", os.path.join(run, "checkpoint.safetensors"), "--out", export], check=True)

        model = load_clipnn(export)
        x = torch.from_numpy(np.load(os.path.join(HERE, m["x"])))
        y = np.load(os.path.join(HERE, m["y"]))
        with torch.no_grad():
            out = model(x)
            if m["loss"] == "cross_entropy":
                loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).item()
            else:
                loss = torch.nn.functional.mse_loss(out, torch.from_numpy(y)).item()
        # and clipnn's own outputs on the same file: `clipnn predict` must agree to float32 rounding
        pred_path = os.path.join(work, name + ".pred.npy")
        subprocess.run([CLIPNN, "predict", cfg_path, "--checkpoint", export, "--data", os.path.join(HERE, m["x"]),
                        "--out", pred_path], check=True, stderr=subprocess.DEVNULL)
        mine = np.load(pred_path)
        diff = float(np.max(np.abs(mine - out.numpy())))
        if mine.shape != tuple(out.shape) or diff > 1e-5:
            sys.exit(f"{name}: clipnn predict differs from PyTorch: shape {mine.shape} vs {tuple(out.shape)}, max |diff| {diff:g}")
        expected = {"loss": loss, "shape": list(out.shape), "outputs": [float(v) for v in out.flatten()]}
        with open(os.path.join(HERE, name + ".expected.json"), "w") as f:
            json.dump(expected, f)
            f.write("\n")
        print(f"{name}: output {list(out.shape)}, PyTorch loss {loss:.9g}, clipnn predict max |diff| {diff:.3g}")
finally:
    shutil.rmtree(work)
