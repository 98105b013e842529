#!/usr/bin/python3
"""Vendor the UCI optical-digits data (8x8 images, 10 classes) for examples/digits_mlp.json.

Source: the copy Debian's python3-sklearn ships as sklearn/datasets/data/digits.csv.gz (1797 rows, 64 pixel
values 0..16 then the label, no header). Licences: examples/data/DIGITS-LICENSE.txt.

Writes examples/data/digits_train.csv (1437 rows) and examples/data/digits_test.csv (360 rows), header
p0..p63,label, pixels divided by 16 (so in [0, 1]). The split is a fixed permutation from random.Random(20240)
(Python's Mersenne Twister is stable across versions for shuffle of a list of ints), so re-running gives
byte-identical files.

Re-run (from the repository root):
    apt-get install -y python3-sklearn     # only the data file is used; sklearn is not imported
    scripts/get_digits.py [path/to/digits.csv.gz]
"""
import csv
import gzip
import os
import random
import sys

DEFAULT_SRC = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
N_TEST = 360
SEED = 20240


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SRC
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "examples", "data")
    os.makedirs(out_dir, exist_ok=True)

    rows = []
    with gzip.open(src, "rt", newline="") as f:
        for lineno, rec in enumerate(csv.reader(f), 1):
            if not rec:
                continue
            if len(rec) != 65:
                sys.exit(f"{src}:{lineno}: expected 65 fields, got {len(rec)}")
            pix = [int(float(v)) for v in rec[:64]]
            label = int(float(rec[64]))
            if not all(0 <= p <= 16 for p in pix) or not 0 <= label <= 9:
                sys.exit(f"{src}:{lineno}: value out of range")
            rows.append((pix, label))
    if len(rows) != 1797:
        sys.exit(f"{src}: expected 1797 rows, got {len(rows)}")

    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    test_idx = sorted(order[:N_TEST])
    train_idx = sorted(order[N_TEST:])

    header = [f"p{i}" for i in range(64)] + ["label"]

    def fmt(p):
        # p/16 is a dyadic fraction: repr gives the exact value in at most 6 digits (0.0625 ...)
        return "0" if p == 0 else "1" if p == 16 else repr(p / 16)

    for name, idx in (("digits_train.csv", train_idx), ("digits_test.csv", test_idx)):
        path = os.path.join(out_dir, name)
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            for i in idx:
                pix, label = rows[i]
                w.writerow([fmt(p) for p in pix] + [label])
        print(f"wrote {path}: {len(idx)} rows")


if __name__ == "__main__":
    main()
