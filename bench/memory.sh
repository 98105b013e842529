#!/bin/sh
# Peak memory of training the mlp workload (784-512-512-10 ReLU, batch 128, cross-entropy, SGD momentum 0.9,
# norm clip 1.0) on an .npy data set, clipnn against PyTorch, as the increment of the peak resident size
# over each program's own baseline:
#   clipnn: peak of `clipnn train` (GNU time's %M) - peak of `clipnn --version` (the program, no data);
#   torch:  ru_maxrss after training - VmRSS right after `import torch` (bench/torch_memory.py).
# Both hold the same data: MEM_N examples x 784 float32 features (MEM_N=20000: 62.7 MB) and int64 labels.
#
#   bench/memory.sh [BUILD_DIR]        (MEM_N, MEM_STEPS=300 change the size)
# Needs /usr/bin/python3 with numpy (the data) and torch (the comparison; without it, clipnn only), and
# GNU time (/usr/bin/time, Debian package `time`). Prints a markdown table.
set -eu
BUILD=${1:-build}
N=${MEM_N:-20000}
STEPS=${MEM_STEPS:-300}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"
BIN=$BUILD/clipnn
[ -x "$BIN" ] || { echo "memory.sh: $BIN not built (run make)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "memory.sh: needs GNU time (apt-get install time)" >&2; exit 2; }
/usr/bin/python3 -c "import numpy" 2>/dev/null || { echo "memory.sh: needs /usr/bin/python3 with numpy" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 - "$TMP" "$N" <<'PY'
import sys
import numpy as np
d, n = sys.argv[1], int(sys.argv[2])
g = np.random.default_rng(1)
np.save(f"{d}/x.npy", g.standard_normal((n, 784), dtype=np.float32))
np.save(f"{d}/y.npy", g.integers(0, 10, n, dtype=np.int64))
PY
cat > "$TMP/mlp.json" <<JSON
{"name": "memory", "seed": 1, "threads": 1,
 "data": {"kind": "npy", "x": "$TMP/x.npy", "y": "$TMP/y.npy", "shuffle": true},
 "model": [{"type": "linear", "out": 512}, {"type": "relu"}, {"type": "linear", "out": 512}, {"type": "relu"},
           {"type": "linear", "out": 10}],
 "loss": "cross_entropy", "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9},
 "clip": {"mode": "norm", "max_norm": 1.0},
 "train": {"steps": $STEPS, "batch_size": 128, "log_every": 10, "eval_every": 0}}
JSON
data_kb=$(( $(stat -c %s "$TMP/x.npy") / 1024 + $(stat -c %s "$TMP/y.npy") / 1024 ))
# GNU time writes %M (peak resident kB) to a file; a failed run is an error, not a figure
peak_of() { # command...
    if ! OPENBLAS_NUM_THREADS=1 /usr/bin/time -f %M -o "$TMP/time" "$@" >"$TMP/out" 2>&1; then
        echo "memory.sh: failed: $*" >&2
        cat "$TMP/out" >&2
        exit 1
    fi
    tail -n 1 "$TMP/time"
}
base=$(peak_of "$BIN" --version)
peak=$(peak_of "$BIN" train "$TMP/mlp.json" --out "$TMP/run" --quiet)
host_facts
echo "# Peak memory, mlp on $N x 784 float32 examples ($((data_kb / 1024)) MiB of data), $STEPS steps"
echo
echo "Machine: ${CPU:-unknown}; OpenBLAS kernel $CORE; $FORCED; one BLAS thread; $(date -u +%Y-%m-%d). Increment = peak resident size minus the"
echo "program's own baseline (clipnn: \`clipnn --version\`; PyTorch: right after \`import torch\`)."
echo
echo "| impl | baseline MiB | peak MiB | increment MiB | increment / data |"
echo "|---|---:|---:|---:|---:|"
awk -v b="$base" -v p="$peak" -v d="$data_kb" 'BEGIN { printf "| clipnn | %.1f | %.1f | %.1f | %.2f |\n", b / 1024, p / 1024, (p - b) / 1024, (p - b) / d }'
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    line=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_memory.py "$TMP/x.npy" "$TMP/y.npy" "$STEPS")
    tb=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^baseline_kb=//p')
    tp=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^peak_kb=//p')
    awk -v b="$tb" -v p="$tp" -v d="$data_kb" 'BEGIN { printf "| torch | %.1f | %.1f | %.1f | %.2f |\n", b / 1024, p / 1024, (p - b) / 1024, (p - b) / d }'
fi
