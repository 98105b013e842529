#!/bin/sh
# clipnn at 1 vs 2 threads (`threads` in a config = cn_set_threads: OpenBLAS's threads and the library's
# worker pool), per workload and size of bench/bench.c.
#
#   bench/threads.sh [BUILD_DIR]      (default build)
#   THR_REPS=5 THR_SECONDS=0.5 THR_POINTS="rnn:128:32 ..." bench/threads.sh
#
# Host figures: run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/threads.sh` where the
# environment forces an OpenBLAS kernel. The 1- and 2-thread processes alternate THR_REPS times; the table
# gives the median step time of each, the speedup, and the CPU time per step at 2 threads (all threads,
# from getrusage over the timed steps) over the 2-thread step time: 2.0 = both cores busy the whole step,
# and over the 1-thread CPU time: the extra CPU the second thread costs. The speedup range is each rep's
# pair (1 thread, then 2 threads) on its own: on a shared host a busy second core shows as a wide range. Points are workload:hidden:batch
# (T 50; mlp: hidden = both widths).
set -eu
BUILD=${1:-build}
REPS=${THR_REPS:-5}
SECS=${THR_SECONDS:-0.5}
POINTS=${THR_POINTS:-"rnn:128:32 rnn:256:32 rnn:512:32 lstm:128:32 lstm:256:32 lstm:512:32 gru:128:32 gru:256:32 gru:512:32 mlp:512:32 mlp:512:128 mlp:512:512"}
CC=${CC:-cc}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"

build_bench
RAW="$BUILD/threads.raw"
: > "$RAW"
for p in $POINTS; do
    w=${p%%:*}; r=${p#*:}; h=${r%%:*}; b=${r#*:}
    i=0
    while [ "$i" -lt "$REPS" ]; do
        for t in 1 2; do
            OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$BUILD/bench" "$w" --threads "$t" --seconds "$SECS" --hidden "$h" \
                --batch "$b" | sed "s/^RESULT /THR point=$p /" >> "$RAW"
        done
        i=$((i + 1))
    done
done

values() { raw_values "$RAW" "THR point=$1 impl=clipnn workload=[a-z]* threads=$2 " "$3"; }
host_facts
echo "# clipnn, 1 vs 2 threads"
echo
machine_line
echo "Median of $REPS interleaved runs (1 thread, 2 threads, ...) of ${SECS} s each; T 50."
echo
echo "| workload | hidden | batch | 1 thread ms | 2 threads ms | speedup | speedup range over the reps | CPU/step at 2 threads / its step time | CPU at 2 / CPU at 1 |"
echo "|---|---|---|---|---|---|---|---|---|"
for p in $POINTS; do
    w=${p%%:*}; r=${p#*:}; h=${r%%:*}; b=${r#*:}
    s1=$(values "$p" 1 step_ms | median); s2=$(values "$p" 2 step_ms | median)
    c1=$(values "$p" 1 cpu_step_ms | median); c2=$(values "$p" 2 cpu_step_ms | median)
    # each rep's 1-thread time over the 2-thread time run right after it: the spread shows the host's load
    range=$(values "$p" 1 step_ms > "$RAW.1"; values "$p" 2 step_ms > "$RAW.2"; paste "$RAW.1" "$RAW.2" |
        awk 'NR == 1 || $1 / $2 < lo { lo = $1 / $2 } NR == 1 || $1 / $2 > hi { hi = $1 / $2 } END { printf "%.2f-%.2fx", lo, hi }')
    awk -v w="$w" -v h="$h" -v b="$b" -v s1="$s1" -v s2="$s2" -v c1="$c1" -v c2="$c2" -v r="$range" 'BEGIN {
        printf "| %s | %s | %s | %.4g | %.4g | %.2fx | %s | %.2f | %.2f |\n", w, h, b, s1, s2, s1 / s2, r, c2 / s2, c2 / c1 }'
done
rm -f "$RAW.1" "$RAW.2"
