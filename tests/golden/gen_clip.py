#!/usr/bin/python3
"""Golden fixture for the clip stage: a hand-unrolled vanilla tanh RNN in PyTorch.

Re-run from the repository root (Debian's torch, 1.13, is only for /usr/bin/python3):
    /usr/bin/python3 tests/golden/gen_clip.py
It writes tests/golden/clip_rnn.json (read by tests/test_clip.c; the C tests never need Python).

Model (time-major, as clipnn): input 3, hidden 4, T = 5, batch 2, linear head 4 -> 1 at every step,
MSE against a target [T, B, 1]:
    h_0 = 0;  h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh);  y_t = h_t W^T + b
Parameter names follow nn.Sequential(nn.RNN(3, 4), nn.Linear(4, 1)).state_dict().
Weights are drawn large (W_hh ~ U(-1.5, 1.5), head ~ U(-3, 3)) so that the gradient norm exceeds
max_norm = 1 in every norm type and clip_value = 0.05 clamps some elements.
Dumped: weights, x, target, loss, the raw gradients, and the gradients after
torch.nn.utils.clip_grad_norm_(max_norm=1.0, norm_type=2, 1, inf) and clip_grad_value_(0.05),
with the total norms returned by clip_grad_norm_. Floats printed with 9 significant digits
(round-trips float32 exactly).
"""
import json
import os

import torch

torch.manual_seed(1234)
I, H, T, B = 3, 4, 5, 2

def U(shape, a):
    return (torch.rand(*shape) * 2 - 1) * a

params = {
    "0.weight_ih_l0": U((H, I), 1.0),
    "0.weight_hh_l0": U((H, H), 1.5),
    "0.bias_ih_l0": U((H,), 0.5),
    "0.bias_hh_l0": U((H,), 0.5),
    "1.weight": U((1, H), 3.0),
    "1.bias": U((1,), 1.0),
}
x = torch.randn(T, B, I) * 1.5
target = torch.randn(T, B, 1) * 2.0


def forward_backward():
    ps = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    h = torch.zeros(B, H)
    ys = []
    for t in range(T):
        h = torch.tanh(x[t] @ ps["0.weight_ih_l0"].T + ps["0.bias_ih_l0"]
                       + h @ ps["0.weight_hh_l0"].T + ps["0.bias_hh_l0"])
        ys.append(h @ ps["1.weight"].T + ps["1.bias"])
    y = torch.stack(ys)                       # [T, B, 1]
    loss = torch.nn.functional.mse_loss(y, target)
    loss.backward()
    return ps, loss.item()


def flat(t):
    return [float("%.9g" % v) for v in t.detach().reshape(-1).tolist()]


def grads(ps):
    return {k: flat(p.grad) for k, p in ps.items()}


out = {
    "names": list(params.keys()),
    "shapes": {k: list(v.shape) for k, v in params.items()},
    "params": {k: flat(v) for k, v in params.items()},
    "x": flat(x), "x_shape": [T, B, I],
    "target": flat(target), "target_shape": [T, B, 1],
}
ps, loss = forward_backward()
out["loss"] = loss
out["grads_raw"] = grads(ps)

for name, nt in (("norm2", 2.0), ("norm1", 1.0), ("norminf", float("inf"))):
    ps, _ = forward_backward()
    total = torch.nn.utils.clip_grad_norm_(list(ps.values()), max_norm=1.0, norm_type=nt)
    assert total.item() > 1.0, (name, total.item())
    out["total_" + name] = total.item()
    out["grads_" + name] = grads(ps)

ps, _ = forward_backward()
torch.nn.utils.clip_grad_value_(list(ps.values()), 0.05)
out["grads_value"] = grads(ps)
n_clamped = sum(int((g.abs() > 0.05).sum()) for g in forward_backward()[0].values() for g in [g.grad])
assert n_clamped > 0
out["value_n_clamped"] = n_clamped

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clip_rnn.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path, "loss", loss, "norms", out["total_norm2"], out["total_norm1"], out["total_norminf"],
      "clamped", n_clamped)
