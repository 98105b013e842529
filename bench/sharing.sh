#!/bin/sh
# What the two threads of a recurrent layer's split share, and what that costs: an experiment build of
# the library (bench/sharing.patch, applied to a scratch checkout of HEAD) times every part of every pool
# job, and has switches that take sharing away:
#
#   CN_XP_PRIV=1  the worker packs W_hh into a buffer of its own (the same values) instead of reading
#                 the packing both threads wrote half of
#   CN_XP_ZERO=1  the layer's output gradient is zeroed by the batch rows each thread runs, not by flat
#                 ranges of the array
#   CN_XP_OWN=1   the passes after backward that read every thread's rows (bias, W_ih and W_hh
#                 gradients) are left out: timing only, the layer's weights get no gradient
#   CN_XP_SWAP=1  the caller runs the rows the worker runs otherwise, and the other way round (is a
#                 slower part the thread's or its rows'?)
#
# The patch is made against the library at the commit docs/performance.md names; when the library has
# moved on, `git apply` says where it no longer fits.
#
# Each round runs: one thread at batch 16 pinned to CPU 0, the same on CPU 1, both at once (two
# processes, "pair": caller = the one on CPU 0, worker = the one on CPU 1), then a 2-thread process at
# batch 32 (each thread the 16 rows of the one-thread runs) plain and with each set of switches of
# SH_VARIANTS. Per round it prints the forward and backward pass time of each thread (us per pass) and
# the step time; at the end the medians, over all rounds, over the rounds where the plain 2-thread
# forward pass ran at 1.15x or more of the slower one-thread forward pass (a "spell",
# docs/performance.md), and over the others.
#
#   bench/sharing.sh [ROUNDS]        (default 12; SH_ARGS="--hidden 256" SH_WORKLOAD=rnn SH_SECONDS=1
#                                     SH_VARIANTS="priv:CN_XP_PRIV=1 zero:CN_XP_ZERO=1 ...")
#
# Host figures: run it as `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bench/sharing.sh`. Needs git
# (a worktree of HEAD in a temporary directory, removed at the end) and 2 CPUs.
set -eu
ROUNDS=${1:-12}
W=${SH_WORKLOAD:-rnn}
ARGS=${SH_ARGS:-"--hidden 256"}
SECS=${SH_SECONDS:-1}
VARIANTS=${SH_VARIANTS:-"priv:CN_XP_PRIV=1 priv+zero:CN_XP_PRIV=1,CN_XP_ZERO=1 all:CN_XP_PRIV=1,CN_XP_ZERO=1,CN_XP_OWN=1 all+swap:CN_XP_PRIV=1,CN_XP_ZERO=1,CN_XP_OWN=1,CN_XP_SWAP=1"}
NAMES="one0 one1 pair base"
for v in $VARIANTS; do NAMES="$NAMES ${v%%:*}"; done
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
[ "$(nproc)" -ge 2 ] || { echo "sharing.sh: needs 2 CPUs" >&2; exit 1; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/clipnn-sharing.XXXXXX")
cleanup() { git worktree remove --force "$DIR/src-tree" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
trap 'exit 130' INT TERM   # the EXIT trap then removes the worktree
git worktree add --detach "$DIR/src-tree" HEAD >/dev/null 2>&1
git -C "$DIR/src-tree" apply "$HERE/sharing.patch"
make -C "$DIR/src-tree" -s BUILD=build build/libclipnn.a build/clipnn >/dev/null
(cd "$DIR/src-tree" && BUILD=build sh -c '. bench/common.sh; build_bench')
BENCH="$DIR/src-tree/build/bench"
off() { nm "$BENCH" | awk -v f="$1" '$3 == f { sub(/^0+/, "", $1); print $1 }'; }
FWD=$(off rec_fwd_part); BWD=$(off rec_bwd_part)
if [ -z "$FWD" ] || [ -z "$BWD" ]; then
    echo "sharing.sh: part functions not found in the experiment build" >&2
    exit 1
fi

# run NAME CPUS THREADS BATCH [VAR=1 ...]: one line "NAME fwd0 fwd1 bwd0 bwd1 step_ms"
run() {
    name=$1 cpus=$2 t=$3 b=$4 rd=${RUNDIR:-$DIR}
    shift 4
    # shellcheck disable=SC2086
    env "$@" OPENBLAS_NUM_THREADS=1 taskset -c "$cpus" "$BENCH" "$W" --threads "$t" --seconds "$SECS" --batch "$b" $ARGS \
        2>"$rd/err" >"$rd/out"
    step=$(sed -n 's/.* step_ms=\([0-9.]*\).*/\1/p' "$rd/out" | head -n 1)
    awk -v n="$name" -v f="$FWD" -v g="$BWD" -v s="$step" '
        $1 == "PART" { sub(/^0+/, "", $2); split($4, a, "="); split($5, b, "=");
                       if ($2 == f) { f0 = a[2]; f1 = b[2] } if ($2 == g) { g0 = a[2]; g1 = b[2] } }
        END { printf "%s %.0f %.0f %.0f %.0f %s\n", n, f0, f1, g0, g1, s }' "$rd/err"
}

# pair: the one-thread run on CPU 0 and on CPU 1 at the same time, two processes; one line as run's,
# with CPU 0's process as "caller" and CPU 1's as "worker" (step: the slower)
pair() {
    run p0 0 1 16 X=0 > "$DIR/pair0" &
    mkdir -p "$DIR/p1"
    (RUNDIR="$DIR/p1"; run p1 1 1 16 X=0 > "$DIR/pair1")
    wait
    awk '{ f[NR] = $2; g[NR] = $4; s[NR] = $6 } END { printf "pair %s %s %s %s %s\n", f[1], f[2], g[1], g[2], (s[1] > s[2] ? s[1] : s[2]) }' \
        "$DIR/pair0" "$DIR/pair1"
}

RAW="$DIR/raw"
: > "$RAW"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    {
        run one0 0 1 16 X=0
        run one1 1 1 16 X=0
        pair
        run base 0,1 2 32 X=0
        for v in $VARIANTS; do
            # shellcheck disable=SC2046
            run "${v%%:*}" 0,1 2 32 $(echo "${v#*:}" | tr ',' ' ')
        done
    } | sed "s/^/$r /" >> "$RAW"
    r=$((r + 1))
done

. "$HERE/common.sh"
BUILD="$DIR/src-tree/build"   # host_facts reads the kernel from $BUILD/clipnn
export BUILD
host_facts
echo "# What the two threads of a recurrent layer share ($W $ARGS, T 50, batch 16 per thread)"
echo
machine_line "library $(git rev-parse --short HEAD) with bench/sharing.patch; $(date -u +%H:%M) UTC"
echo "us per pass of each thread (forward and backward: caller / worker), step time in ms; one0 / one1: one"
echo "thread alone on CPU 0 / 1 (batch 16); pair: both at once, two processes (CPU 0 / CPU 1); base: the"
echo "2-thread process (batch 32) as the library runs it."
echo
hdr="| round | one0 fwd, bwd | one1 fwd, bwd"; sep="|---|---|---"
for n in $NAMES; do case $n in one*) ;; *) hdr="$hdr | $n fwd | bwd | ms"; sep="$sep|---|---|---";; esac; done
echo "$hdr |"; echo "$sep|"
awk -v names="$NAMES" '
    { v[$1, $2] = $3 " " $4 " " $5 " " $6 " " $7 }
    END {
        n = split(names, nm, " ")
        for (r = 1; (r, "base") in v; r++) {
            split(v[r, "one0"], a); split(v[r, "one1"], b)
            line = sprintf("| %d | %s, %s | %s, %s", r, a[1], a[3], b[1], b[3])
            for (i = 3; i <= n; i++) {
                split(v[r, nm[i]], c)
                line = line sprintf(" | %s / %s | %s / %s | %.3g", c[1], c[2], c[3], c[4], c[5])
            }
            print line " |"
        }
    }' "$RAW"
echo
# medians: all rounds, and the spell rounds (plain 2-thread forward >= 1.15x the slower one-thread forward)
spells=$(awk '$2 == "one0" { o0[$1] = $3 } $2 == "one1" { o1[$1] = $3 }
    $2 == "base" { m = $3 > $4 ? $3 : $4; o = o0[$1] > o1[$1] ? o0[$1] : o1[$1]; if (o > 0 && m >= 1.15 * o) print $1 }' "$RAW" | tr '\n' ' ')
echo "Spell rounds (plain 2-thread forward at 1.15x the one-thread forward or more): ${spells:-none}."
echo
echo "| rounds | run | forward, caller / worker | backward, caller / worker | step ms |"
echo "|---|---|---|---|---|"
for set in all spell quiet; do
    for name in $NAMES; do
        sel=$(awk -v s="$set" -v sp=" $spells " -v n="$name" '$2 == n {
            in_sp = index(sp, " " $1 " ") > 0
            if (s == "all" || (s == "spell" && in_sp) || (s == "quiet" && !in_sp)) print }' "$RAW")
        [ -n "$sel" ] || continue
        f0=$(echo "$sel" | awk '{print $3}' | median); f1=$(echo "$sel" | awk '{print $4}' | median)
        g0=$(echo "$sel" | awk '{print $5}' | median); g1=$(echo "$sel" | awk '{print $6}' | median)
        s=$(echo "$sel" | awk '{print $7}' | median)
        case $name in one*) f1=-; g1=-;; esac
        echo "| $set ($(echo "$sel" | wc -l)) | $name | $f0 / $f1 | $g0 / $g1 | $(printf %.3g "$s") |"
    done
done
