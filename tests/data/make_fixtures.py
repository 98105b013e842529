#!/usr/bin/python3
"""Writes the small data fixtures of tests/test_data.c into tests/data/.

Re-run from the repository root:   /usr/bin/python3 tests/data/make_fixtures.py
(needs NumPy; Debian's /usr/bin/python3 has it). The outputs are committed; the C tests never run Python.
Values are simple closed forms so that the C tests can recompute them: x[i, j] = i + j / 10, etc.
"""
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def out(name):
    return os.path.join(HERE, name)


def save(name, arr, version=None):
    with open(out(name), "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


def raw_npy(name, header, data=b"", magic=b"\x93NUMPY", version=(1, 0)):
    """A hand-made .npy: v1 preamble, the given header text padded to 64 bytes, then data."""
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    with open(out(name), "wb") as f:
        f.write(magic + bytes(version) + struct.pack("<H", len(h)) + h + data)


# [6, 3] inputs x[i, j] = i + j/10, two kinds of targets.
x = np.array([[i + j / 10 for j in range(3)] for i in range(6)])
save("x_f32.npy", x.astype("<f4"))
save("x_f64.npy", x.astype("<f8"))                       # converted to float32 by the reader
save("y_f32.npy", np.array([[i, -i] for i in range(6)], dtype="<f4"))   # [6, 2] float targets
save("y_i64.npy", np.array([0, 1, 2, 0, 1, 4], dtype="<i8"))            # [6] labels, 5 classes
save("x_v2.npy", x.astype("<f4"), version=(2, 0))
save("x_v3.npy", x.astype("<f4"), version=(3, 0))
# A test set: [2, 3] with labels up to 6 (so n_classes = 7 over train and test).
save("test_x_f32.npy", x[:2].astype("<f4") + 100)
save("test_y_i32.npy", np.array([6, 0], dtype="<i4"))

# Sequences: x [4, 5, 2] x[i, t, f] = 100 i + 10 t + f; per-step int32 labels [4, 5] = (i + t) % 3.
xs = np.array([[[100 * i + 10 * t + f for f in range(2)] for t in range(5)] for i in range(4)], dtype="<f4")
save("seq_x.npy", xs)
save("seq_y_i32.npy", np.array([[(i + t) % 3 for t in range(5)] for i in range(4)], dtype="<i4"))
save("seq_y_f32_wrong_t.npy", np.zeros((4, 3, 1), dtype="<f4"))         # T = 3 does not match x's 5

# Broken files.
save("fortran.npy", np.asfortranarray(x.astype("<f4")))
save("complex.npy", x.astype("<c8"))
save("big_endian.npy", x.astype(">f4"))
save("y_mismatch.npy", np.zeros(5, dtype="<f4"))                        # 5 labels for 6 examples
xn = x.astype("<f4")
xn[4, 1] = np.nan                                                       # element 13
save("nan_x.npy", xn)
with open(out("x_f32.npy"), "rb") as f:
    good = f.read()
with open(out("truncated.npy"), "wb") as f:
    f.write(good[:-5])                                                  # data cut short
with open(out("bad_magic.npy"), "wb") as f:
    f.write(b"\x93NUMPZ" + good[6:])
raw_npy("bad_header.npy", "{'descr': '<f4', 'fortran_order': False}", b"\0" * 8)   # no 'shape'
raw_npy("bad_header_syntax.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", b"\0" * 8)

# CSV: columns a, b, label (label is the target), plus broken variants.
with open(out("good.csv"), "w") as f:
    f.write("a,b,label\n1,2,0\n3.5, -4 ,1\n\n5e-1,6,2\n")
with open(out("good_test.csv"), "w") as f:
    f.write("a,b,label\r\n7,8,3\r\n")
with open(out("ragged.csv"), "w") as f:
    f.write("a,b,label\n1,2,0\n3,4\n5,6,1\n")                          # line 3 has 2 fields
with open(out("nonnumber.csv"), "w") as f:
    f.write("a,b,label\n1,2,0\n3,4,1\n5,abc,1\n")                       # line 4, column b

# Text: 23 bytes, vocabulary " .acehmnost" (11 bytes, sorted); too short, binary and empty files.
with open(out("tiny.txt"), "wb") as f:
    f.write(b"the cat sat on the mat.")
with open(out("short.txt"), "wb") as f:
    f.write(b"abc")
with open(out("nul.txt"), "wb") as f:
    f.write(b"abc\0def ghi jkl")
with open(out("empty.txt"), "wb") as f:
    pass
