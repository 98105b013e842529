#!/bin/sh
# PyTorch's own best setting on 2 threads, for the 2-thread rows of `make bench`: PyTorch 1.13 (Debian's,
# OpenMP intra-op pool, OpenBLAS for the products) has two thread pools, its own (torch.set_num_threads)
# and OpenBLAS's (OPENBLAS_NUM_THREADS), and which of them gets the second core changes its speed a lot.
#
#   bench/torch_threads.sh [BUILD_DIR]      (BUILD_DIR: where torch_threads.raw goes; default build)
#   TT_REPS=3 TT_SECONDS=0.5 TT_WORKLOADS="rnn lstm gru mlp" bench/torch_threads.sh
#
# Settings, each a row per workload (median steps/s of TT_REPS runs, the settings alternating):
#   1/1      torch 1 thread, OpenBLAS 1 (the one-thread baseline)
#   2/2      torch.set_num_threads(2), OPENBLAS_NUM_THREADS=2 (both pools on both cores)
#   2/2 passive   the same with OMP_WAIT_POLICY=passive (OpenMP threads sleep instead of spinning)
#   1/2      torch 1, OpenBLAS 2 (only the products on two cores)
#   2/1      torch 2, OpenBLAS 1 (only PyTorch's own kernels on two cores)
# Host figures: run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/torch_threads.sh` where the
# environment forces an OpenBLAS kernel. Needs /usr/bin/python3 with torch and a built BUILD_DIR/clipnn.
set -eu
BUILD=${1:-build}
REPS=${TT_REPS:-3}
SECS=${TT_SECONDS:-0.5}
WORKLOADS=${TT_WORKLOADS:-"rnn lstm gru mlp"}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"
/usr/bin/python3 -c "import torch" >/dev/null 2>&1 || { echo "torch_threads: /usr/bin/python3 cannot import torch" >&2; exit 1; }
mkdir -p "$BUILD"
RAW="$BUILD/torch_threads.raw"
: > "$RAW"
SETTINGS="1/1 2/2 2/2p 1/2 2/1"
for w in $WORKLOADS; do
    i=0
    while [ "$i" -lt "$REPS" ]; do
        for s in $SETTINGS; do
            t=${s%%/*}; b=${s#*/}; pol=""
            case $b in *p) b=${b%p}; pol=passive;; esac
            env OPENBLAS_NUM_THREADS="$b" OMP_NUM_THREADS="$t" ${pol:+OMP_WAIT_POLICY=$pol} /usr/bin/python3 \
                bench/torch_bench.py "$w" --threads "$t" --seconds "$SECS" > "$RAW.one" ||
                { echo "torch_threads: torch_bench.py $w failed at setting $s" >&2; exit 1; }
            sed "s#^RESULT #TT setting=$s #" "$RAW.one" >> "$RAW"
        done
        i=$((i + 1))
    done
    printf 'torch_threads: %s done\n' "$w" >&2
done
v() { raw_values "$RAW" "TT setting=$1 impl=torch workload=$2 " steps_per_s | median; }
host_facts   # the OpenBLAS kernel as clipnn sees it: PyTorch loads the same libopenblas
echo "# PyTorch on 2 threads: which pool gets the second core"
echo
echo "Machine: ${CPU:-unknown} ($(nproc) CPUs); OpenBLAS kernel $CORE; $FORCED; $(date -u '+%Y-%m-%d %H:%M') UTC."
echo "PyTorch steps/s, median of $REPS runs of ${SECS} s (settings alternating); torch threads / OpenBLAS threads;"
echo "in brackets, over the 1/1 row."
echo
echo "| workload | 1/1 | 2/2 | 2/2, OMP_WAIT_POLICY=passive | 1/2 | 2/1 |"
echo "|---|---:|---:|---:|---:|---:|"
for w in $WORKLOADS; do
    base=$(v 1/1 "$w")
    row="| $w | $(awk -v b="$base" 'BEGIN { if (b == "nan") print "-"; else printf "%.1f", b }')"
    for s in 2/2 2/2p 1/2 2/1; do
        x=$(v "$s" "$w")
        row="$row | $(awk -v x="$x" -v b="$base" 'BEGIN { if (x == "nan" || b == "nan" || b == 0) print "-"; else printf "%.1f (%.2fx)", x, x / b }')"
    done
    echo "$row |"
done
