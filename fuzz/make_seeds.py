#!/usr/bin/python3
"""Writes the seed corpus fuzz/corpus/safetensors/ (small valid and near-valid files).
Re-run: /usr/bin/python3 fuzz/make_seeds.py   (from the repo root)"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


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
