"""Load a clipnn model into PyTorch.

    clipnn export RUN/checkpoint.safetensors --out model.safetensors
    model = load_clipnn("model.safetensors")       # an nn.Sequential, weights loaded with strict=True
    y = model(x)                                   # x: [batch, features] or [batch, time, features]

`clipnn export` writes the model tensors only (the checkpoint also holds optimizer, clip and data state,
which load_state_dict(strict=True) rejects) and records the model's layer list in the file's metadata
("clipnn_model"), from which build_module() makes the matching nn.Sequential. PyTorch's recurrent modules
return a tuple (output, state) and so cannot sit in an nn.Sequential as they are; the Recurrent subclasses
below return the output only (every step, or the last one for "output": "last") and keep the parameter
names weight_ih_l0, ... so the state_dict names are clipnn's. Inputs are batch-first [B, T, F] (clipnn's
npy layout); clipnn runs time-major inside, which gives the same numbers.

Reads the file with the `safetensors` package when installed, else with a plain reader (json + numpy).
Tested against clipnn's own outputs by tests/golden/gen_export.py.
"""
import json
import struct

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file: {name: torch.Tensor}, {str: str}."""
    try:
        from safetensors import safe_open
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except ImportError:
        pass
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = blob[8 + n:]
    dtypes = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        a = np.frombuffer(data[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(a.copy())
    return tensors, meta


def _recurrent(kind, output):
    base = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]

    class Recurrent(base):
        """nn.RNN / nn.LSTM / nn.GRU (batch_first) returning the output alone: every step or the last."""

        def forward(self, x):
            y, _ = super().forward(x)
            return y if output == "sequence" else y[:, -1]

    return Recurrent


def build_module(layers, in_features):
    """The nn.Sequential of a clipnn "model" list (as in the config, or the export's metadata)."""
    mods, names, f = [], [], in_features
    for i, layer in enumerate(layers):
        t = layer["type"]
        if t == "linear":
            m = nn.Linear(f, layer["out"], bias=layer.get("bias", True))
            f = layer["out"]
        elif t in ("tanh", "relu", "sigmoid"):
            m = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}[t]()
        elif t == "dropout":
            m = nn.Dropout(layer.get("p", 0.5))
        elif t == "embedding":
            m = nn.Embedding(layer["vocab"], layer["dim"])
            f = layer["dim"]
        elif t in ("rnn", "lstm", "gru"):
            kw = {"nonlinearity": layer.get("nonlinearity", "tanh")} if t == "rnn" else {}
            m = _recurrent(t, layer.get("output", "last"))(f, layer["hidden"], batch_first=True, **kw)
            f = layer["hidden"]
        else:
            raise ValueError(f"layer {i}: unknown type {t!r}")
        mods.append(m)
        names.append(layer.get("name", str(i)))
    seq = nn.Sequential()
    for name, m in zip(names, mods):
        seq.add_module(name, m)
    return seq


def load_clipnn(path, in_features=None):
    """nn.Sequential with the exported weights (strict load), in eval mode. in_features: the input width,
    read from the first layer's weights when not given."""
    tensors, meta = read_safetensors(path)
    layers = json.loads(meta["clipnn_model"])
    if in_features is None:
        first = layers[0].get("name", "0")
        w = tensors.get(f"{first}.weight", tensors.get(f"{first}.weight_ih_l0"))
        in_features = w.shape[1] if w is not None else None
    model = build_module(layers, in_features)
    model.load_state_dict(tensors, strict=True)
    return model.eval()
