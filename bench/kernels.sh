#!/bin/sh
# The recurrent layer's W_hh kernel choices against each other (bench --rec-kernel): 0 = the default
# (per-step products in clipnn's rec_gemm, dW_hh in OpenBLAS unless W_hh has at most 128 x 128 elements),
# 1 = rec_gemm for all three products, 2 = OpenBLAS for all three, 4 = rec_gemm for the two per-step
# products and OpenBLAS for dW_hh at every size. One thread; T 50, batch 32 unless a point says otherwise.
#
#   bench/kernels.sh [BUILD_DIR]     KER_REPS=3 KER_SECONDS=0.5 KER_POINTS="rnn:64 rnn:64:100:512 ..." bench/kernels.sh
#   (a point is workload:hidden or workload:hidden:T:batch)
#
# Host figures: run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/kernels.sh`. The four
# choices alternate in separate processes KER_REPS times; the table gives median step times.
set -eu
BUILD=${1:-build}
REPS=${KER_REPS:-3}
SECS=${KER_SECONDS:-0.5}
POINTS=${KER_POINTS:-"rnn:64 rnn:128 rnn:256 rnn:512 lstm:64 lstm:128 lstm:256 lstm:512 gru:64 gru:128 gru:256 gru:512"}
CC=${CC:-cc}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"
build_bench
for p in $POINTS; do   # workload:hidden or workload:hidden:T:batch
    n=$(printf '%s' "$p" | tr -cd : | wc -c)
    [ "$n" = 1 ] || [ "$n" = 3 ] || { echo "kernels: point '$p': expected workload:hidden or workload:hidden:T:batch" >&2; exit 2; }
done
RAW="$BUILD/kernels.raw"
: > "$RAW"
for p in $POINTS; do
    w=${p%%:*}; r=${p#*:}; h=${r%%:*}; t=50; b=32
    case $r in *:*:*) r=${r#*:}; t=${r%%:*}; b=${r#*:};; esac
    i=0
    while [ "$i" -lt "$REPS" ]; do
        for k in 0 1 2 4; do
            OPENBLAS_NUM_THREADS=1 "$BUILD/bench" "$w" --threads 1 --seconds "$SECS" --hidden "$h" --seq "$t" --batch "$b" --rec-kernel "$k" |
                sed "s/^RESULT /KER point=$p kernel=$k /" >> "$RAW"
        done
        i=$((i + 1))
    done
done
values() { raw_values "$RAW" "KER point=$1 kernel=$2 " step_ms; }
host_facts
echo "# Recurrent W_hh kernels"
echo
machine_line "1 thread"
echo "Median step ms of $REPS interleaved runs of ${SECS} s."
echo
echo "| workload | hidden | T | batch | default | all rec_gemm | all OpenBLAS | rec_gemm per step, dW_hh OpenBLAS |"
echo "|---|---|---|---|---|---|---|---|"
for p in $POINTS; do
    w=${p%%:*}; r=${p#*:}; h=${r%%:*}; t=50; b=32
    case $r in *:*:*) r=${r#*:}; t=${r%%:*}; b=${r#*:};; esac
    printf '| %s | %s | %s | %s | %.4g | %.4g | %.4g | %.4g |\n' "$w" "$h" "$t" "$b" "$(values "$p" 0 | median)" \
        "$(values "$p" 1 | median)" "$(values "$p" 2 | median)" "$(values "$p" 4 | median)"
done
