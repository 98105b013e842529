#!/bin/sh
# Data-parallel scaling of `clipnn train` on one machine: steps/s at 1 rank (no mpirun) and 2 ranks
# (mpirun -np 2), one BLAS thread per rank, on bench.c's mlp workload at a global batch of 256 and its
# lstm workload (T 50, B 32, F 2, hidden 128). Prints a markdown section (bench/run.sh appends it to
# bench.md).
#
#   bench/scaling.sh [BUILD_DIR]
#   SCALE_STEPS=200 SCALE_REPS=3 bench/scaling.sh build      (SCALE_STEPS=5 SCALE_REPS=1: a smoke run)
#
# steps/s is the run's own (summary.json steps_per_s: optimizer steps over the training loop's wall time,
# rank 0). Efficiency = steps/s at 2 ranks / (2 x steps/s at 1 rank): the global batch is fixed, so ideal
# is 2x the steps/s. Bytes per step and rank: the gradient exchange (reduce-scatter + all-gather) moves
# 2 (N-1)/N x 4P bytes in (and as many out), P = parameters: 4P at N = 2.
set -eu
BUILD=${1:-build}
STEPS=${SCALE_STEPS:-200}
REPS=${SCALE_REPS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"
BIN="$BUILD/clipnn"
if ! command -v mpirun >/dev/null 2>&1; then
    echo "## Data-parallel scaling"; echo; echo "mpirun not found (make deps installs Open MPI): skipped."; exit 0
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/clipnn-scaling.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

# mlp data: 1024 examples of 784 features (uniform [0,1), fixed seed) with 10 classes, as CSV
awk 'BEGIN { srand(1); h = "y"; for (j = 0; j < 784; j++) h = h ",f" j; print h;
             for (i = 0; i < 1024; i++) { l = i % 10; for (j = 0; j < 784; j++) l = l "," sprintf("%.4f", rand()); print l } }' \
    > "$WORK/mlp.csv"
cat > "$WORK/mlp.json" <<JSON
{"name": "scale-mlp", "threads": 1,
 "data": {"kind": "csv", "path": "mlp.csv", "target": "y", "target_kind": "class"},
 "model": [{"type": "linear", "out": 512}, {"type": "relu"}, {"type": "linear", "out": 512}, {"type": "relu"},
           {"type": "linear", "out": 10}],
 "loss": "cross_entropy", "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9},
 "clip": {"mode": "norm", "max_norm": 1.0},
 "train": {"steps": $STEPS, "batch_size": 256, "log_every": $STEPS, "eval_every": 0, "checkpoint_every": 0}}
JSON
cat > "$WORK/lstm.json" <<JSON
{"name": "scale-lstm", "threads": 1,
 "data": {"kind": "adding", "seq_len": 50, "train_size": 2048, "test_size": 0},
 "model": [{"type": "lstm", "hidden": 128, "output": "last"}, {"type": "linear", "out": 1}],
 "loss": "mse", "optimizer": {"type": "adam", "lr": 0.001},
 "clip": {"mode": "norm", "max_norm": 1.0},
 "train": {"steps": $STEPS, "batch_size": 32, "log_every": $STEPS, "eval_every": 0, "checkpoint_every": 0}}
JSON
# parameters: mlp 784*512+512 + 512*512+512 + 512*10+10; lstm 4*128*(2+128) + 2*4*128 (two biases) + 128+1
params() { case $1 in mlp) echo 669706;; lstm) echo 67713;; esac; }
sps() { sed -n 's/.*"steps_per_s":[[:space:]]*\([0-9.eE+-]*\).*/\1/p' "$1/summary.json"; }

echo "## Data-parallel scaling (mpirun, 1 BLAS thread per rank)"
echo
echo "\`clipnn train\` at 1 rank (no mpirun) and 2 ranks (\`mpirun -np 2\`), median of $REPS runs of $STEPS steps;"
echo "global batch fixed (mlp 256, lstm 32), so ideal is 2x the steps/s. Bytes in per rank per step:"
echo "2 (N-1)/N x 4P (reduce-scatter + all-gather of the float gradient; as many go out)."
echo
echo "| workload | params | steps/s 1 rank | steps/s 2 ranks | speedup | efficiency | bytes in / rank / step |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for w in mlp lstm; do
    : > "$WORK/s1"; : > "$WORK/s2"
    i=0
    while [ "$i" -lt "$REPS" ]; do
        rm -rf "$WORK/r1" "$WORK/r2"
        OPENBLAS_NUM_THREADS=1 "$BIN" train "$WORK/$w.json" --out "$WORK/r1" --quiet
        sps "$WORK/r1" >> "$WORK/s1"
        OPENBLAS_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -x OPENBLAS_NUM_THREADS -np 2 \
            "$BIN" train "$WORK/$w.json" --out "$WORK/r2" --quiet
        sps "$WORK/r2" >> "$WORK/s2"
        i=$((i + 1))
    done
    a=$(median < "$WORK/s1"); b=$(median < "$WORK/s2"); p=$(params "$w")
    awk -v w="$w" -v p="$p" -v a="$a" -v b="$b" 'BEGIN {
        printf "| %s | %d | %.1f | %.1f | %.2fx | %.0f%% | %d |\n", w, p, a, b, b / a, 100 * b / (2 * a), 4 * p }'
done
echo
echo "Model past one machine: \`scripts/dist_model.sh\` (see the README, Past one machine)."
