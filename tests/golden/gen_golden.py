#!/usr/bin/python3
"""Golden fixtures for tests/test_golden.c: PyTorch 1.13 reference runs of small models.

Re-run from the repository root (Debian's torch lives only in /usr/bin/python3):
    /usr/bin/python3 tests/golden/gen_golden.py
It rewrites tests/golden/golden_<model>.json deterministically (fixed seeds, float32, 1 thread).

Each file holds one model (clipnn "model" JSON, the matching torch.nn.Sequential) and, for each optimizer
(SGD with momentum and weight decay, Adam, AdamW; the embedding model SGD only, to stay small), 3 training
steps on one fixed batch:
initial weights under state_dict names, the input x (time-major [T, B, F] for sequences; token ids as
floats [T, B] for an embedding model, input.ids = 1), the target (float, same shape as the output: mse,
bce_with_logits) or int labels (cross-entropy, one per output row), and per step the loss, every gradient
and every weight after the update. Floats are printed with 9 significant digits, which round-trips float32
exactly.

golden_schedules.json: runs carry a clipnn "schedule" object and 6 steps; per step the lr torch used (a
Python float, printed exactly), the loss and the weights (no gradients, to keep the file small). torch side:
StepLR, CosineAnnealingLR and LambdaLR stepped once after each optimizer step, so optimizer step s (1-based)
uses the scheduler's epoch s - 1. Warm-up follows clipnn's documented composition (src/optim/optim.h,
cn_schedule_lr): step s <= w gets base s / w, later steps get the schedule at its own epoch s - 1 - w;
built with LambdaLR. Known difference: after t_max clipnn holds eta_min while torch's cosine keeps following
the cosine (period 2 t_max); those steps record clipnn's eta_min as "lr" and torch's value as "torch_lr".
"""
import json
import math
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
        if t == "embedding":
            mods.append(nn.Embedding(layer["vocab"], layer["dim"])); f = layer["dim"]
        elif t == "linear":
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

SGD_ONLY = [o for o in OPTIMIZERS if o[0] == "sgd"]   # keeps the embedding fixture small

# name, model, input (seq, T, B, F; F = 0: token ids [T, B] in [0, vocab - 1), the last id never used), loss,
# optimizers (default: all)
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
    # 15 ids out of 0..5 (repeats: the embedding gradient accumulates rows; id 6 unused: zero gradient row)
    ("embedding_gru", [{"type": "embedding", "vocab": 7, "dim": 3}, {"type": "gru", "hidden": 4, "output": "sequence"},
                       {"type": "linear", "out": 7}], (1, 5, 3, 0), "cross_entropy", SGD_ONLY),
    # the last layer's biases are shifted so that every |logit| is in [39, 40] (see run_case)
    ("mlp_bce", [{"type": "linear", "out": 4}, {"type": "tanh"}, {"type": "linear", "out": 2}], (0, 0, 4, 3),
     "bce_with_logits"),
]

# lr schedules: SGD with momentum, 6 steps. name, clipnn schedule, torch scheduler factory, warm-up steps
SCHED_BASE_LR = 0.1
SCHEDULES = [
    ("step", {"type": "step", "step_size": 2, "gamma": 0.5},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)),
    ("cosine", {"type": "cosine", "t_max": 4, "eta_min": 0.01},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4, eta_min=0.01)),
    # warm-up 3 then constant: epoch e (step e + 1) gets base (e + 1) / 3 up to step 3
    ("warmup_constant", {"type": "constant", "warmup_steps": 3},
     lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: (e + 1) / 3 if e + 1 <= 3 else 1.0)),
    # warm-up 2 then StepLR(2, 0.5) from its own epoch 0: steps 3, 4 base, steps 5, 6 half
    ("warmup_step", {"type": "step", "step_size": 2, "gamma": 0.5, "warmup_steps": 2},
     lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: (e + 1) / 2 if e + 1 <= 2 else 0.5 ** ((e - 2) // 2))),
]


def run_case(idx, name, model_json, shape, loss_name, optimizers=OPTIMIZERS):
    seq, T, B, F = shape
    torch.manual_seed(1000 + idx)
    ids = F == 0
    net, outs = make_torch(model_json, 1 if ids else F)
    if ids:
        vocab = model_json[0]["vocab"]
        xi = torch.randint(0, vocab - 1, (T, B))
        x, xf, inp = xi, xi.float(), {"seq": seq, "features": 1, "ids": 1, "vocab": vocab}
    else:
        x = torch.randn(T, B, F) if seq else torch.randn(B, F)
        xf, inp = x, {"seq": seq, "features": F}
    with torch.no_grad():
        y0 = forward(net, outs, x)
        if loss_name == "bce_with_logits":
            # numerically stable form: shift the last layer's biases so that output 0 peaks at +40 and output 1
            # at -40 (every |x| > 39, where 1 - sigmoid(x) rounds to 0 even in double, so a log(sigmoid) form
            # gives inf). Shifting rather than scaling the weights keeps the backward well conditioned:
            # scaled-up weights make dh = W^T dlogit a sum of large cancelling terms and drive tanh into
            # saturation, where 1-ulp differences in tanh/sgemm exceed the tolerance after one SGD step.
            net[-1].bias[0] += 40.0 - y0[:, 0].max().item()
            net[-1].bias[1] += -40.0 - y0[:, 1].min().item()
            y0 = forward(net, outs, x)
    init = {k: v.detach().clone() for k, v in net.state_dict().items()}
    fix = {"name": name, "model": model_json, "input": inp, "loss": loss_name,
           "x": tensor_json(xf), "init": {k: tensor_json(v) for k, v in init.items()}, "runs": []}
    if loss_name == "cross_entropy":
        C = y0.shape[-1]
        labels = torch.randint(0, C, y0.shape[:-1])
        fix["labels"] = labels.reshape(-1).tolist()
        lossf = lambda y: nn.functional.cross_entropy(y.reshape(-1, C), labels.reshape(-1))
    elif loss_name == "bce_with_logits":
        # 0/1 targets agreeing with the logit's sign for half of the entries, so that large logits give both
        # ~1e-17 and ~40 loss terms; each column (output unit) has both kinds, so no parameter has a
        # gradient made only of saturated, nearly-zero terms (which Adam would scale up to O(lr) steps, making
        # the float rounding of sigmoid(x) near 1 visible in the weights)
        i = torch.arange(y0.numel())
        agree = ((i + i // 2) % 2 == 0).reshape(y0.shape)
        target = ((y0 > 0) == agree).float()
        fix["target"] = tensor_json(target)
        lossf = lambda y: nn.functional.binary_cross_entropy_with_logits(y, target)
    else:
        target = torch.randn(y0.shape)
        fix["target"] = tensor_json(target)
        lossf = lambda y: nn.functional.mse_loss(y, target)
    for oname, ojson, make in optimizers:
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
    write(name, fix)


def write(name, fix):
    path = os.path.join(OUT, "golden_%s.json" % name)
    with open(path, "w") as fh:
        json.dump(fix, fh, separators=(",", ":"))
        fh.write("\n")
    print("wrote", path, os.path.getsize(path), "bytes")


def clipnn_lr(sched, base, s):
    """cn_schedule_lr (src/optim/optim.h) for 1-based step s, only to find where torch's schedule differs."""
    w = sched.get("warmup_steps", 0)
    if s <= w:
        return base * s / w
    e = s - 1 - w
    if sched["type"] == "step":
        return base * sched["gamma"] ** (e // sched["step_size"])
    if sched["type"] == "cosine":
        if e >= sched["t_max"]:
            return sched["eta_min"]
        return sched["eta_min"] + (base - sched["eta_min"]) * (1 + math.cos(math.pi * e / sched["t_max"])) / 2
    return base


def run_schedules(idx):
    """SGD with momentum under each lr schedule, 6 steps on an MLP with mse (weights and lr per step)."""
    torch.manual_seed(1000 + idx)
    model_json = [{"type": "linear", "out": 3}, {"type": "tanh"}, {"type": "linear", "out": 2}]
    net, outs = make_torch(model_json, 3)
    init = {k: v.detach().clone() for k, v in net.state_dict().items()}
    x = torch.randn(4, 3)
    target = torch.randn(4, 2)
    fix = {"name": "schedules", "model": model_json, "input": {"seq": 0, "features": 3}, "loss": "mse",
           "x": tensor_json(x), "target": tensor_json(target), "init": {k: tensor_json(v) for k, v in init.items()},
           "runs": []}
    for sname, sjson, make_sched in SCHEDULES:
        net.load_state_dict(init)
        opt = torch.optim.SGD(net.parameters(), lr=SCHED_BASE_LR, momentum=0.9)
        sch = make_sched(opt)
        steps = []
        for s in range(1, 7):
            opt.zero_grad()
            loss = nn.functional.mse_loss(forward(net, outs, x), target)
            loss.backward()
            lr = opt.param_groups[0]["lr"]
            ours = clipnn_lr(sjson, SCHED_BASE_LR, s)
            st = {"lr": lr, "loss": float(format(loss.item(), ".9g"))}
            if abs(ours - lr) > 1e-12 * lr:
                # only cosine after t_max (clipnn holds eta_min): follow clipnn's definition from here on.
                # (Setting the group's lr perturbs CosineAnnealingLR's recursive form, but every later step is
                # past t_max too and overridden the same way.)
                assert sname == "cosine" and s - 1 > sjson["t_max"], (sname, s, lr, ours)
                print("%s step %d: torch lr %.17g, clipnn lr %.17g (clipnn holds eta_min after t_max)" %
                      (sname, s, lr, ours))
                st = {"lr": ours, "torch_lr": lr, "loss": st["loss"]}
                for gr in opt.param_groups:
                    gr["lr"] = ours
            opt.step()
            sch.step()
            st["weights"] = {k: f9(p) for k, p in net.named_parameters()}
            steps.append(st)
        fix["runs"].append({"optimizer": {"type": "sgd", "lr": SCHED_BASE_LR, "momentum": 0.9}, "schedule": sjson,
                            "steps": steps})
    write("schedules", fix)


if __name__ == "__main__":
    for i, c in enumerate(CASES):
        run_case(i, *c)
    run_schedules(len(CASES))
