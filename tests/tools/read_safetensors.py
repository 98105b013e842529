#!/usr/bin/python3
"""Plain safetensors reader, written from the format description only (json + struct + numpy;
no safetensors package, no torch unless --torch-check). It shows that a clipnn checkpoint opens in
any safetensors reader.

Format: u64 little-endian header length N, N bytes of UTF-8 JSON
  {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
then the data section; offsets are relative to its start; data is little-endian, row-major.

Usage:
  /usr/bin/python3 tests/tools/read_safetensors.py FILE [--values N] [--torch-check]
Prints name, dtype, shape and the first values of each tensor, then the metadata.
--torch-check also builds a torch tensor from every array (torch.from_numpy) and checks that it
matches the raw bytes; exit status 1 on any problem.
"""
import argparse
import json
import struct
import sys

import numpy as np

DTYPES = {  # safetensors dtype name -> numpy little-endian dtype
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: {len(blob)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} exceeds the file size {len(blob)}")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    spans = []
    for name, info in header.items():
        dt = np.dtype(DTYPES[info["dtype"]])
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - begin != count * dt.itemsize or end > len(data):
            raise ValueError(f"{path}: tensor {name!r}: data_offsets {begin, end} do not fit {info}")
        tensors[name] = (info["dtype"], np.frombuffer(data, dtype=dt, count=count, offset=begin).reshape(shape))
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise ValueError(f"{path}: tensor {name!r} begins at {begin}, expected {pos} (gap or overlap)")
        pos = end
    if pos != len(data):
        raise ValueError(f"{path}: {len(data) - pos} bytes after the last tensor")
    return n, tensors, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--values", type=int, default=6, help="how many leading values to print")
    ap.add_argument("--torch-check", action="store_true", help="also load every tensor into torch")
    args = ap.parse_args()
    n, tensors, meta = read(args.file)
    print(f"{args.file}: header {n} bytes (multiple of 8: {n % 8 == 0}), {len(tensors)} tensors")
    for name, (dtype, a) in tensors.items():
        first = a.reshape(-1)[:args.values].tolist()
        more = " ..." if a.size > args.values else ""
        print(f"  {name:30s} {dtype:4s} {list(a.shape)!s:16s} {first}{more}")
    print("metadata:")
    for k, v in meta.items():
        if not isinstance(v, str):
            print(f"  {k}: NOT A STRING: {v!r}")
            return 1
        shown = v if len(v) <= 100 else v[:100] + "..."
        print(f"  {k} = {shown!r}")
    if args.torch_check:
        import torch
        for name, (dtype, a) in tensors.items():
            t = torch.from_numpy(a.copy())   # copy: frombuffer arrays are read-only
            if list(t.shape) != list(a.shape) or t.numpy().tobytes() != a.tobytes():
                print(f"torch-check: {name} differs")
                return 1
        print(f"torch-check: {len(tensors)} tensors loaded into torch "
              f"({', '.join(sorted({str(torch.from_numpy(a.copy()).dtype) for _, a in tensors.values()}))}), bytes identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
