#!/bin/sh
# Where a training step's time goes, per workload of bench/bench.c: perf samples of the steady state
# (perf record -D skips set-up and warm-up), each function's self time put in one class by the source file
# that defines it (nm -l on the bench binary) or the library it is in.
#
#   bench/profile.sh [BUILD_DIR]       (needs perf; default build)
#   PROF_WORKLOADS="rnn lstm gru mlp" PROF_SECONDS=4 PROF_THREADS=1 PROF_ARGS="--hidden 512" bench/profile.sh
#
# Host figures: run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/profile.sh` where the
# environment forces an OpenBLAS kernel. Classes:
#   rec_gemm    the recurrent layer's own W_hh product kernel and its packing (src/autograd/recurrent.c
#               rgemm_*, rec_pack)
#   OpenBLAS    every other matrix product (libopenblas: kernels and their packing)
#   activations sigmoid / tanh / their backward (src/tensor/vec.c cn_vsigmoid, cn_vtanh*, and the 16-lane
#               tanh16, sigmoid16)
#   cells       the rest of the recurrent layer: gate and cell elementwise work, bias rows, BPTT loop,
#               the W_ih / b_ih gradient pass of layers with few inputs (rdwih_*)
#               (src/autograd/recurrent.c)
#   elementwise the other vector kernels, the autograd ops, memcpy / memset (src/tensor/vec.c, ops.c, libc)
#   clip        the clip stage (src/clip/)
#   optimizer   the optimizer step (src/optim/)
#   framework   graph, arena, model, loss and everything else in the process (src/autograd/graph.c,
#               src/tensor/, src/layers/, ...)
#   kernel      the operating system (page faults, interrupts)
set -eu
BUILD=${1:-build}
WORKLOADS=${PROF_WORKLOADS:-"rnn lstm gru mlp"}
SECS=${PROF_SECONDS:-4}
THR=${PROF_THREADS:-1}
ARGS=${PROF_ARGS:-}
CC=${CC:-cc}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"
command -v perf >/dev/null 2>&1 || { echo "profile.sh: perf not found" >&2; exit 1; }

build_bench
MAP="$BUILD/profile.map"
nm -l --defined-only "$BUILD/bench" | awk 'NF >= 4 && ($2 == "t" || $2 == "T") { f = $4; sub(/:[0-9]+$/, "", f); print $3, f }' > "$MAP"

classify() { # stdin: "pct dso symbol" lines -> "class pct"
    awk -v map="$MAP" '
        BEGIN { while ((getline l < map) > 0) { split(l, a, " "); file[a[1]] = a[2] } }
        {
            p = $1; sub(/%/, "", p); dso = $2; s = $3; f = file[s]; c = "framework";
            if (dso ~ /kernel/) c = "kernel";
            else if (dso ~ /openblas/) c = "OpenBLAS";
            else if (dso ~ /^libc/) c = "elementwise";
            else if (s ~ /^rgemm_/ || s ~ /^rec_pack/) c = "rec_gemm";
            else if (f ~ /src\/tensor\/vec\.c$/ && (s ~ /^cn_vsigmoid/ || s ~ /^cn_vtanh/ || s ~ /^(tanh|sigmoid)16/)) c = "activations";
            else if (f ~ /src\/autograd\/recurrent\.c$/) c = "cells";
            else if (f ~ /src\/tensor\/vec\.c$/ || f ~ /src\/autograd\/ops\.c$/) c = "elementwise";
            else if (f ~ /src\/clip\//) c = "clip";
            else if (f ~ /src\/optim\//) c = "optimizer";
            print c, p
        }'
}

CLASSES="rec_gemm OpenBLAS activations cells elementwise clip optimizer framework kernel"
host_facts
echo "# Step profile (perf, steady state)"
echo
machine_line "$THR thread(s)"
echo "Share of the samples of $SECS s of training steps per class (self time; see bench/profile.sh). Workload"
echo "options: ${ARGS:-defaults of bench/bench.c}."
echo
printf '| workload | step ms |'; for c in $CLASSES; do printf ' %s |' "$c"; done; echo
printf '|---|---|'; for c in $CLASSES; do printf -- '---|'; done; echo
for w in $WORKLOADS; do
    data="$BUILD/profile.$w.data"
    # shellcheck disable=SC2086
    line=$(OPENBLAS_NUM_THREADS=$THR OMP_NUM_THREADS=$THR perf record -q -F 2000 -D 1500 -o "$data" \
        "$BUILD/bench" "$w" --threads "$THR" --seconds "$SECS" $ARGS 2>/dev/null | grep '^RESULT')
    ms=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^step_ms=//p')
    shares=$(perf report -i "$data" --no-children --sort dso,symbol -g none --stdio 2>/dev/null |
        awk '/^ +[0-9.]+%/ { print $1, $2, $4 }' | classify |
        awk '{ s[$1] += $2 } END { for (c in s) print c, s[c] }')
    printf '| %s | %.4g |' "$w" "$ms"
    for c in $CLASSES; do
        v=$(printf '%s\n' "$shares" | awk -v c="$c" '$1 == c { print $2 }')
        printf ' %.1f%% |' "${v:-0}"
    done
    echo
    rm -f "$data" "$data.old"
done
