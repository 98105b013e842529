#!/bin/sh
# The recurrent layer's W_hh kernel choices against each other (bench --rec-kernel): 0 = the default
# (per-step products in clipnn's rec_gemm, dW_hh in OpenBLAS unless W_hh has at most 64 x 64 elements),
# 1 = rec_gemm for all three products, 2 = OpenBLAS for all three. One thread, T 50, batch 32.
#
#   bench/kernels.sh [BUILD_DIR]     KER_REPS=3 KER_SECONDS=0.5 KER_POINTS="rnn:64 ..." bench/kernels.sh
#
# Host figures: run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/kernels.sh`. The three
# choices alternate in separate processes KER_REPS times; the table gives median step times.
set -eu
BUILD=${1:-build}
REPS=${KER_REPS:-3}
SECS=${KER_SECONDS:-0.5}
POINTS=${KER_POINTS:-"rnn:64 rnn:128 rnn:256 rnn:512 lstm:64 lstm:128 lstm:256 lstm:512 gru:64 gru:128 gru:256 gru:512"}
CC=${CC:-cc}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
CFLAGS_ALL="-std=c11 -O2 -g -Wall -Wextra -Wshadow -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L -fno-fast-math -Isrc -I$BUILD $(pkg-config --cflags openblas libcjson)"
LIBS="$(pkg-config --libs openblas libcjson) -lm"
# shellcheck disable=SC2086
$CC $CFLAGS_ALL -o "$BUILD/bench" bench/bench.c "$BUILD/libclipnn.a" $LIBS -Wl,--wrap=cblas_sgemm
RAW="$BUILD/kernels.raw"
: > "$RAW"
for p in $POINTS; do
    w=${p%%:*}; h=${p#*:}
    i=0
    while [ "$i" -lt "$REPS" ]; do
        for k in 0 1 2; do
            OPENBLAS_NUM_THREADS=1 "$BUILD/bench" "$w" --threads 1 --seconds "$SECS" --hidden "$h" --rec-kernel "$k" |
                sed "s/^RESULT /KER point=$p kernel=$k /" >> "$RAW"
        done
        i=$((i + 1))
    done
done
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
values() { grep "^KER point=$1 kernel=$2 " "$RAW" | tr ' ' '\n' | sed -n 's/^step_ms=//p'; }
CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
CORE=$("$BUILD/clipnn" --version --verbose 2>/dev/null | sed -n 's/^blas core: //p')
FORCED="OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    eval "val=\${$v:-}"
    [ -n "$val" ] && FORCED="$v=$val set (not the host's default kernel)"
done
echo "# Recurrent W_hh kernels"
echo
echo "Machine: ${CPU:-unknown} ($(nproc) CPUs); OpenBLAS kernel $CORE; $FORCED; 1 thread; $(date -u +%Y-%m-%d)."
echo "Median step ms of $REPS interleaved runs of ${SECS} s; T 50, batch 32."
echo
echo "| workload | hidden | default (dW_hh in OpenBLAS past 64 x 64) | all rec_gemm | all OpenBLAS |"
echo "|---|---|---|---|---|"
for p in $POINTS; do
    w=${p%%:*}; h=${p#*:}
    printf '| %s | %s | %.4g | %.4g | %.4g |\n' "$w" "$h" "$(values "$p" 0 | median)" "$(values "$p" 1 | median)" "$(values "$p" 2 | median)"
done
