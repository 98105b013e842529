#!/bin/sh
# Two builds of clipnn side by side: bench/bench.c linked against a base build's libclipnn.a and against
# this tree's, run alternately (base, this, base, this, ...) at each thread count, medians. For "before
# and after" figures of a change: build the base from a worktree of the older commit first, e.g.
#
#   git worktree add /tmp/base <commit> && make -C /tmp/base MPI=0 build/libclipnn.a build/clipnn
#   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/ab.sh /tmp/base/build
#   AB_POINTS="rnn:256:32 mlp:512:128" AB_THREADS="2" AB_REPS=7 AB_SECONDS=0.5 bench/ab.sh BASE [BUILD]
#
# Points are workload:hidden:batch[:T] (T 50 unless given; mlp: hidden = both widths). The base's bench is built from the
# base tree's own bench/bench.c, so each side measures with its own harness.
set -eu
BASE=${1:?usage: bench/ab.sh BASE_BUILD_DIR [BUILD_DIR]}
BUILD=${2:-build}
REPS=${AB_REPS:-5}
SECS=${AB_SECONDS:-0.5}
THREADS=${AB_THREADS:-"1 2"}
POINTS=${AB_POINTS:-"rnn:128:32 rnn:256:32 rnn:512:32 lstm:128:32 lstm:256:32 lstm:512:32 gru:128:32 gru:256:32 gru:512:32 mlp:512:32 mlp:512:128 mlp:512:512"}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"
BASE=$(cd "$BASE" && pwd)
[ -f "$BASE/libclipnn.a" ] || { echo "ab.sh: $BASE/libclipnn.a not found (build the base first)" >&2; exit 2; }
BASE_SRC=$(cd "$BASE/.." && pwd)

build_bench
(cd "$BASE_SRC" && BUILD="$BASE" && build_bench)
RAW="$BUILD/ab.raw"
: > "$RAW"
# point -> w h b T (T 50 when the point has no 4th field)
split_point() { echo "$1" | awk -F: '{ print $1, $2, $3, (NF > 3 ? $4 : 50) }'; }
for p in $POINTS; do
    read -r w h b T <<EOF_P
$(split_point "$p")
EOF_P
    i=0
    while [ "$i" -lt "$REPS" ]; do
        for t in $THREADS; do
            for side in base this; do
                bin="$BUILD/bench"
                [ "$side" = base ] && bin="$BASE/bench"
                OPENBLAS_NUM_THREADS=$t "$bin" "$w" --threads "$t" --seconds "$SECS" --hidden "$h" --batch "$b" --seq "$T" |
                    sed -n "s/^RESULT /AB point=$p side=$side /p" >> "$RAW"
            done
        done
        i=$((i + 1))
    done
done

values() { raw_values "$RAW" "AB point=$1 side=$2 impl=clipnn workload=[a-z]* threads=$3 " "$4"; }
host_facts
echo "# Two builds side by side"
echo
machine_line
echo "Base: $BASE ($(git -C "$BASE_SRC" rev-parse --short HEAD 2>/dev/null || echo '?')); this: $BUILD ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))."
echo "Median of $REPS alternating runs of ${SECS} s each. CPU: CPU time of all threads per step."
echo
echo "| workload | hidden | batch | T | threads | base ms | this ms | this / base speed | base CPU ms | this CPU ms |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for p in $POINTS; do
    read -r w h b T <<EOF_P
$(split_point "$p")
EOF_P
    for t in $THREADS; do
        s0=$(values "$p" base "$t" step_ms | median); s1=$(values "$p" this "$t" step_ms | median)
        c0=$(values "$p" base "$t" cpu_step_ms | median); c1=$(values "$p" this "$t" cpu_step_ms | median)
        awk -v w="$w" -v h="$h" -v b="$b" -v T="$T" -v t="$t" -v s0="$s0" -v s1="$s1" -v c0="$c0" -v c1="$c1" 'BEGIN {
            printf "| %s | %s | %s | %s | %s | %.4g | %.4g | %.2fx | %.4g | %.4g |\n", w, h, b, (w == "mlp" ? "-" : T), t, s0, s1, s0 / s1, c0, c1 }'
    done
done
