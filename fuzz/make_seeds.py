#!/usr/bin/python3
"""Writes the seed corpora fuzz/corpus/<target>/ (small valid and near-valid inputs) for the
safetensors, config and csv targets, and copies small .npy fixtures of tests/data/ for the npy target.
Re-run: /usr/bin/python3 fuzz/make_seeds.py   (from the repo root)"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "safetensors")
TESTS = os.path.join(HERE, "..", "tests")


def write(target, name, blob):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob if isinstance(blob, bytes) else blob.encode())


def other_seeds():
    """fuzz_config: JSON text, then NUL-separated --set strings. fuzz_csv: a flags byte (bit 0 class
    target, bit 1 also the test file) then the CSV text. fuzz_npy: .npy files."""
    def cfg(path):
        with open(os.path.join(TESTS, "configs", path)) as f:
            return f.read().replace("\n", "")
    rnn, mlp = cfg("tiny_rnn.json"), cfg("tiny_mlp.json")
    write("config", "tiny_rnn", rnn)
    write("config", "tiny_mlp", mlp)
    write("config", "rnn_sets_value", rnn + "\0clip.mode=value\0clip.clip_value=0.5")
    write("config", "mlp_sets_adamw", mlp + "\0optimizer.type=adamw\0model.0.out=4")
    write("config", "lstm_stages", json.dumps({
        "data": {"kind": "temporal_order", "seq_len": 10, "train_size": 8, "test_size": 0},
        "model": [{"type": "lstm", "hidden": 4, "output": "last"}, {"type": "linear", "out": 4}],
        "loss": "cross_entropy", "schedule": {"type": "cosine", "t_max": 10, "warmup_steps": 2},
        "clip": [{"mode": "norm", "max_norm": 1}, {"mode": "value", "clip_value": 0.1}]}, separators=(",", ":")))
    write("config", "gru_sine", json.dumps({
        "data": {"kind": "sine", "seq_len": 5, "train_size": 4, "test_size": 2},
        "model": [{"type": "gru", "hidden": 3, "output": "sequence"}, {"type": "dropout", "p": 0.1},
                  {"type": "linear", "out": 1}],
        "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
        "schedule": {"type": "step", "step_size": 3, "gamma": 0.5}}, separators=(",", ":")))
    write("config", "xor_adaptive", json.dumps({
        "data": {"kind": "xor", "target_kind": "class"},
        "model": [{"type": "linear", "out": 4, "init": {"weight": {"kind": "normal", "std": 0.1}}},
                  {"type": "relu"}, {"type": "linear", "out": 2, "bias": False}],
        "loss": "cross_entropy", "clip": {"mode": "adaptive"}}, separators=(",", ":")))
    write("csv", "float_three_cols", "\0y,a,b\n1,2,3\n0,4.5, -1e3\n")
    write("csv", "class_crlf_blank", "\1a,y\n1,0\n2,1\n\n3,2\r\n")
    write("csv", "quoted_header_test", '\3"x1",y\n1,1\n')
    write("csv", "ragged", "\0a,y\n1,2,3\n")
    write("csv", "nan", "\0a,y\nnan,1\n")
    for n in ["x_f32", "x_f64", "x_v2", "x_v3", "y_i64", "seq_x", "seq_y_i32", "truncated", "fortran", "big_endian"]:
        d = os.path.join(HERE, "corpus", "npy")
        os.makedirs(d, exist_ok=True)
        shutil.copyfile(os.path.join(TESTS, "data", n + ".npy"), os.path.join(d, n))


def st(header, data, pad=True):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main():
    os.makedirs(OUT, exist_ok=True)
    f32 = struct.pack("<2f", 1.0, -2.0)
    seeds = {
        "empty_object": st({}, b""),
        "tiny_meta": st({"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, f32),
        "all_dtypes": st({
            "f": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]},
            "d": {"dtype": "F64", "shape": [], "data_offsets": [8, 16]},
            "i": {"dtype": "I32", "shape": [2, 1, 1, 1], "data_offsets": [16, 24]},
            "l": {"dtype": "I64", "shape": [1], "data_offsets": [24, 32]},
        }, bytes(range(32))),
        "misaligned_unsorted": st({
            "d": {"dtype": "F64", "shape": [], "data_offsets": [4, 12]},
            "i": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]},
        }, bytes(range(12)), pad=False),
        "zero_size": st({"z": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
                         "a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}, b"\1\0\0\0"),
        "bad_dtype": st({"a": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
        "bad_overlap": st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
        "bad_meta": st({"__metadata__": {"step": 3}}, b""),
        "short": b"\x10\0\0",
    }
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
    other_seeds()
