#!/bin/sh
# clipnn vs PyTorch over a grid of shapes: hidden, sequence length T and batch B of the rnn/lstm/gru
# workloads of bench/bench.c (and the mlp's batch), one thread each side by default.
#
#   bench/grid.sh [BUILD_DIR]      (BUILD_DIR holds libclipnn.a and clipnn; default build)
#   GRID_REPS=3 GRID_SECONDS=0.5 GRID_THREADS=1 GRID_WORKLOADS="rnn lstm gru mlp" GRID_POINTS=... bench/grid.sh
#
# Host figures: run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/grid.sh` where the environment
# forces an OpenBLAS kernel (the header says whether one was forced).
#
# Points (trimmed from the full hidden 64..512 x T 25..200 x B 32..512 product to keep it near 10 minutes):
# hidden 64/128/256/512 at T 50, B 32; T 25/100/200 at hidden 128 and 512 (B 32); B 128/512 at hidden 256
# (T 50); mlp (784-512-512-10) at B 32/128/512. GRID_POINTS="H:T:B ..." replaces the recurrent points.
# For each point the clipnn and torch processes alternate, GRID_REPS times; the table gives medians of the
# step time, the ratio torch / clipnn (> 1: clipnn faster), and clipnn's product rate: the FLOPs of the
# step's matrix products (2 M N K each, forward and backward; bench.c step_flops) per second, and that as a
# percentage of the core's sgemm rate on 512^3 products measured in the same process (bench --ceiling).
# Raw lines: BUILD_DIR/grid.raw; table: stdout and BUILD_DIR/grid.md.
set -eu
BUILD=${1:-build}
REPS=${GRID_REPS:-3}
SECS=${GRID_SECONDS:-0.5}
THR=${GRID_THREADS:-1}
WORKLOADS=${GRID_WORKLOADS:-"rnn lstm gru mlp"}
POINTS=${GRID_POINTS:-"64:50:32 128:50:32 256:50:32 512:50:32 128:25:32 128:100:32 128:200:32 512:25:32 512:100:32 512:200:32 256:50:128 256:50:512"}
MLP_POINTS="512:1:32 512:1:128 512:1:512"
CC=${CC:-cc}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"

build_bench

TORCH=0
if /usr/bin/python3 -c "import torch" >/dev/null 2>&1; then TORCH=1; fi
RAW="$BUILD/grid.raw"
: > "$RAW"
start=$(date +%s)

for w in $WORKLOADS; do
    pts=$POINTS
    [ "$w" = mlp ] && pts=$MLP_POINTS
    for p in $pts; do
        h=${p%%:*}; r=${p#*:}; t=${r%%:*}; b=${r#*:}
        i=0
        while [ "$i" -lt "$REPS" ]; do
            OPENBLAS_NUM_THREADS=$THR OMP_NUM_THREADS=$THR "$BUILD/bench" "$w" --threads "$THR" --seconds "$SECS" \
                --hidden "$h" --seq "$t" --batch "$b" --ceiling | sed "s/^RESULT /GRID point=$w:$h:$t:$b /" >> "$RAW"
            if [ "$TORCH" = 1 ]; then
                OPENBLAS_NUM_THREADS=$THR OMP_NUM_THREADS=$THR MKL_NUM_THREADS=$THR /usr/bin/python3 bench/torch_bench.py "$w" \
                    --threads "$THR" --seconds "$SECS" --hidden "$h" --seq "$t" --batch "$b" |
                    sed "s/^RESULT /GRID point=$w:$h:$t:$b /" >> "$RAW"
            fi
            i=$((i + 1))
        done
        printf 'grid: %s H %s T %s B %s done (%ss)\n' "$w" "$h" "$t" "$b" $(($(date +%s) - start)) >&2
    done
done

values() { # point impl key
    grep "^GRID point=$1 impl=$2 " "$RAW" | tr ' ' '\n' | sed -n "s/^$3=//p"
}
host_facts
TV=$( [ "$TORCH" = 1 ] && grep -m1 'impl=torch' "$RAW" | tr ' ' '\n' | sed -n 's/^torch=//p' || echo "not available")
OUT="$BUILD/grid.md"
{
    echo "# clipnn vs PyTorch over shapes"
    echo
    echo "Machine: ${CPU:-unknown} ($(nproc) CPUs); PyTorch: ${TV:-?}; $(date -u +%Y-%m-%d); $THR thread(s) each side."
    echo "OpenBLAS: $BLAS, kernel $CORE (both sides use the same libopenblas); $FORCED."
    echo "Median of $REPS interleaved runs (clipnn, torch, clipnn, ...) of ${SECS} s each after warm-up, separate"
    echo "processes. Step = zero grads, forward, loss, backward, norm clip 1.0, optimizer (bench/bench.c)."
    echo "ratio = torch step time / clipnn step time (> 1: clipnn faster). GFLOP/s = FLOPs of the step's matrix"
    echo "products (2 M N K each, forward and backward) per second; % ceiling = that over the core's sgemm rate on"
    echo "512^3 products (median over the runs: sgemm GFLOP/s column)."
    echo
    echo "| workload | hidden | T | batch | clipnn ms | torch ms | ratio | clipnn GFLOP/s | % ceiling | sgemm GFLOP/s | clipnn RSS MB | torch RSS MB |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for w in $WORKLOADS; do
        pts=$POINTS
        [ "$w" = mlp ] && pts=$MLP_POINTS
        for p in $pts; do
            h=${p%%:*}; r=${p#*:}; t=${r%%:*}; b=${r#*:}
            pt="$w:$p"
            c=$(values "$pt" clipnn step_ms | median)
            gf=$(values "$pt" clipnn gflops | median)
            cp=$(values "$pt" clipnn ceiling_pct | median)
            sg=$(values "$pt" clipnn sgemm_gflops | median)
            cr=$(values "$pt" clipnn rss_kb | median)
            if [ "$TORCH" = 1 ]; then
                tm=$(values "$pt" torch step_ms | median)
                tr=$(values "$pt" torch rss_kb | median)
            else tm=nan; tr=nan; fi
            [ "$w" = mlp ] && t="-"
            awk -v w="$w" -v h="$h" -v t="$t" -v b="$b" -v c="$c" -v tm="$tm" -v gf="$gf" -v cp="$cp" -v sg="$sg" \
                -v cr="$cr" -v tr="$tr" 'BEGIN {
                ra = (tm == "nan" || c == 0) ? "-" : sprintf("%.2fx", tm / c);
                ts = (tm == "nan") ? "-" : sprintf("%.4g", tm);
                trs = (tr == "nan") ? "-" : sprintf("%.1f", tr / 1024);
                printf "| %s | %s | %s | %s | %.4g | %s | %s | %.1f | %.0f%% | %.0f | %.1f | %s |\n",
                    w, h, t, b, c, ts, ra, gf, cp, sg, cr / 1024, trs }'
        done
    done
    echo
    echo "Total grid time: $(($(date +%s) - start)) s."
} > "$OUT"
cat "$OUT"
