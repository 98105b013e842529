#!/bin/sh
# Whether two cores slow each other down when the rows they write sit next to each other in memory (the
# layout of a recurrent layer's arrays split by batch rows over the pool): bench/adjacent.c, each layout
# (interleaved, separate) with one worker alone, two threads, two processes; ADJ_REPS rounds, medians.
# No clipnn code is involved; read it beside bench/pair.sh.
#
#   bench/adjacent.sh [BUILD_DIR]      (ADJ_REPS=3)
set -eu
BUILD=${1:-build}
REPS=${ADJ_REPS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"
mkdir -p "$BUILD"
${CC:-cc} -std=c11 -O2 -march=native -Wall -Wextra -fno-fast-math -pthread -o "$BUILD/adjacent" bench/adjacent.c
RAW="$BUILD/adjacent.raw"
: > "$RAW"
i=0
while [ "$i" -lt "$REPS" ]; do
    for layout in 0 1; do
        for mode in 1 2 3; do
            "$BUILD/adjacent" "$layout" "$mode" | sed "s/^/ADJ layout=$layout mode=$mode /" >> "$RAW"
        done
    done
    i=$((i + 1))
done
us() { grep "^ADJ layout=$1 mode=$2 worker $3:" "$RAW" | awk '{print $6}' | median; }
echo "# Rows of two workers next to each other, or apart"
echo
echo "Machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1) ($(nproc) CPUs); $(date -u +%Y-%m-%d)."
echo "Median of $REPS rounds; us per pass of 49 steps, each a [16, 256] x [256, 256] product (bench/adjacent.c)."
echo
echo "| layout | 1 worker alone | 2 threads (worker 0 / 1) | 2 processes (worker 0 / 1) |"
echo "|---|---|---|---|"
for layout in 0 1; do
    name=interleaved
    [ "$layout" = 1 ] && name=separate
    echo "| $name | $(us $layout 1 0) | $(us $layout 2 0) / $(us $layout 2 1) | $(us $layout 3 0) / $(us $layout 3 1) |"
done
