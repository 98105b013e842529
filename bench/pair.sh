#!/bin/sh
# Whether the two cores of this host work side by side at full speed, in two processes and in one: the
# same workload (bench/bench.c) at batch B, one thread, alone; then two such processes at once, one per
# CPU (taskset); then one process at batch 2B with 2 threads, whose pool gives each thread B rows (a
# recurrent layer splits its batch rows, so each thread does the work of the process alone). Read beside
# bench/threads.sh: if the pair runs at full speed and the 2-thread process does not, the two threads of
# one process slow each other down; if neither does, the second core is busy.
#
#   bench/pair.sh [BUILD_DIR]      (default build)
#   PAIR_POINTS="rnn:256:16 lstm:256:16" PAIR_REPS=3 PAIR_SECONDS=1 bench/pair.sh
#
# Host figures: run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/pair.sh` where the environment
# forces an OpenBLAS kernel. Needs 2 usable CPUs and taskset (util-linux).
set -eu
BUILD=${1:-build}
REPS=${PAIR_REPS:-3}
SECS=${PAIR_SECONDS:-1}
POINTS=${PAIR_POINTS:-"rnn:256:16 lstm:256:16 gru:256:16"}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"

command -v taskset > /dev/null || { echo "pair.sh: taskset not found (util-linux)" >&2; exit 2; }
cpus=$(taskset -pc $$ | sed 's/.*: //')
c0=$(echo "$cpus" | tr ',-' '  ' | awk '{print $1}')
c1=$(echo "$cpus" | tr ',-' '  ' | awk '{print $2}')
[ -n "$c1" ] || { echo "pair.sh: needs 2 usable CPUs (this process may use: $cpus)" >&2; exit 2; }
build_bench
host_facts
RAW="$BUILD/pair.raw"
: > "$RAW"
run() {   # tag cpu workload hidden batch threads
    OPENBLAS_NUM_THREADS=1 taskset -c "$2" "$BUILD/bench" "$3" --threads "$6" --seconds "$SECS" --hidden "$4" \
        --batch "$5" | sed "s/^RESULT /PAIR tag=$1 /" >> "$RAW"
}
for p in $POINTS; do
    w=${p%%:*}; r=${p#*:}; h=${r%%:*}; b=${r#*:}
    i=0
    while [ "$i" -lt "$REPS" ]; do
        run "$p:alone" "$c0" "$w" "$h" "$b" 1
        run "$p:pair0" "$c0" "$w" "$h" "$b" 1 &
        run "$p:pair1" "$c1" "$w" "$h" "$b" 1
        wait
        run "$p:two" "$c0,$c1" "$w" "$h" $((2 * b)) 2
        i=$((i + 1))
    done
done

ms() { raw_values "$RAW" "PAIR tag=$1 " step_ms | median; }
echo "# Two cores side by side"
echo
machine_line "1 and 2 threads"
echo "Median of $REPS rounds (alone, the pair at once, the 2-thread process) of $SECS s each; T 50."
echo "slowdown = step time over the process alone (1.00: full speed); the 2-thread process does twice the"
echo "batch, so its step time is compared with the process alone directly."
echo
echo "| workload | hidden | batch per thread | alone ms | pair ms (CPU $c0 / CPU $c1) | pair slowdown | 2 threads, batch x2, ms | 2-thread slowdown |"
echo "|---|---|---|---|---|---|---|---|"
for p in $POINTS; do
    w=${p%%:*}; r=${p#*:}; h=${r%%:*}; b=${r#*:}
    a=$(ms "$p:alone"); p0=$(ms "$p:pair0"); p1=$(ms "$p:pair1"); t=$(ms "$p:two")
    awk -v w="$w" -v h="$h" -v b="$b" -v a="$a" -v p0="$p0" -v p1="$p1" -v t="$t" 'BEGIN {
        pm = p0 > p1 ? p0 : p1
        printf "| %s | %s | %s | %.4g | %.4g / %.4g | %.2f | %.4g | %.2f |\n", w, h, b, a, p0, p1, pm / a, t, t / a }'
done
