#!/usr/bin/python3
"""Golden fixtures for tests/test_golden.c: PyTorch 1.13 reference runs of small models.

Re-run from the repository root (Debian's torch lives only in /usr/bin/python3):
    /usr/bin/python3 tests/golden/gen_golden.py
It rewrites tests/golden/golden_<model>.json deterministically (fixed seeds, float32, 1 thread).

Each file holds one model (clipnn "model" JSON, the matching torch.nn.Sequential) and, for each optimizer
(SGD with momentum and weight decay, Adam, AdamW), 3 training steps on one fixed batch:
initial weights under state_dict names, the input x (time-major [T, B, F] for sequences), the target
(float, same shape as the output) or int labels (cross-entropy, one per output row), and per step the
loss, every gradient and every weight after the update. Floats are printed with 9 significant digits,
which round-trips float32 exactly.
"""
import json
import os

import torch
import torch.nn as nn

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
OUT = os.path.dirname(os.path.abspath(__file__))


def f9(t):
    return [float(format(float(v), ".9g")) for v in t.detach().reshape(-1).tolist()]


def tensor_json(t):
    return {"shape": list(t.shape), "data": f9(t)}


def make_torch(model_json, features):
    """nn.Sequential with the same layers (and hence the same state_dict names) as the clipnn model."""
    mods, outs, f = [], [], features
    for layer in model_json:
        t = layer["type"]
        if t == "linear":
            mods.append(nn.Linear(f, layer["out"])); f = layer["out"]
        elif t == "tanh":
            mods.append(nn.Tanh())
        elif t in ("rnn", "lstm", "gru"):
            cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[t]
            mods.append(cls(f, layer["hidden"])); f = layer["hidden"]
        else:
            raise ValueError(t)
        outs.append(layer.get("output", "last"))
    return nn.Sequential(*mods), outs


def forward(seq, outs, x):
    for m, o in zip(seq, outs):
        if isinstance(m, nn.RNNBase):
            y, _ = m(x)                       # [T, B, H], zero initial state
            x = y if o == "sequence" else y[-1]
        else:
            x = m(x)
    return x


OPTIMIZERS = [
    ("sgd", {"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("sgd_nesterov", {"type": "sgd", "lr": 0.05, "momentum": 0.5, "nesterov": True},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5, nesterov=True)),
    ("adam", {"type": "adam", "lr": 0.01, "weight_decay": 0.001},
     lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.001)),
    ("adamw", {"type": "adamw", "lr": 0.01, "betas": [0.8, 0.99], "weight_decay": 0.1},
     lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
]

# name, model, input (seq, T, B, F), loss
CASES = [
    ("mlp", [{"type": "linear", "out": 4}, {"type": "tanh"}, {"type": "linear", "out": 2}], (0, 0, 3, 3), "mse"),
    ("rnn_last", [{"type": "rnn", "hidden": 4, "output": "last"}, {"type": "linear", "out": 2}], (1, 4, 2, 3), "mse"),
    ("rnn_sequence", [{"type": "rnn", "hidden": 3, "output": "sequence"}, {"type": "linear", "out": 2}], (1, 3, 3, 2), "mse"),
    ("lstm_last", [{"type": "lstm", "hidden": 3, "output": "last"}, {"type": "linear", "out": 1}], (1, 4, 2, 3), "mse"),
    ("lstm_sequence", [{"type": "lstm", "hidden": 3, "output": "sequence"}, {"type": "linear", "out": 3}], (1, 4, 2, 2),
     "cross_entropy"),
    ("gru_last", [{"type": "gru", "hidden": 3, "output": "last"}, {"type": "linear", "out": 3}], (1, 3, 3, 2),
     "cross_entropy"),
    ("gru_sequence", [{"type": "gru", "hidden": 3, "output": "sequence"}, {"type": "linear", "out": 2}], (1, 4, 2, 3), "mse"),
]


def run_case(idx, name, model_json, shape, loss_name):
    seq, T, B, F = shape
    torch.manual_seed(1000 + idx)
    net, outs = make_torch(model_json, F)
    init = {k: v.detach().clone() for k, v in net.state_dict().items()}
    x = torch.randn(T, B, F) if seq else torch.randn(B, F)
    with torch.no_grad():
        y0 = forward(net, outs, x)
    fix = {"name": name, "model": model_json, "input": {"seq": seq, "features": F}, "loss": loss_name,
           "x": tensor_json(x), "init": {k: tensor_json(v) for k, v in init.items()}, "runs": []}
    if loss_name == "cross_entropy":
        C = y0.shape[-1]
        labels = torch.randint(0, C, y0.shape[:-1])
        fix["labels"] = labels.reshape(-1).tolist()
        lossf = lambda y: nn.functional.cross_entropy(y.reshape(-1, C), labels.reshape(-1))
    else:
        target = torch.randn(y0.shape)
        fix["target"] = tensor_json(target)
        lossf = lambda y: nn.functional.mse_loss(y, target)
    for oname, ojson, make in OPTIMIZERS:
        net.load_state_dict(init)
        opt = make(net.parameters())
        steps = []
        for _ in range(3):
            opt.zero_grad()
            loss = lossf(forward(net, outs, x))
            loss.backward()
            grads = {k: f9(p.grad) for k, p in net.named_parameters()}
            opt.step()
            weights = {k: f9(p) for k, p in net.named_parameters()}
            steps.append({"loss": float(format(loss.item(), ".9g")), "grads": grads, "weights": weights})
        fix["runs"].append({"optimizer": ojson, "steps": steps})
    path = os.path.join(OUT, "golden_%s.json" % name)
    with open(path, "w") as fh:
        json.dump(fix, fh, separators=(",", ":"))
        fh.write("\n")
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    for i, c in enumerate(CASES):
        run_case(i, *c)
