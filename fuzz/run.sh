#!/bin/sh
# Bounded fuzzing of the parsers and of checkpoint loading: builds every fuzz/fuzz_*.c target with libFuzzer + ASan + UBSan into
# build-fuzz/ and runs each for SECONDS (default 60) from its committed seed corpus fuzz/corpus/<target>/.
# New interesting inputs go to build-fuzz/corpus/<target>/ (not committed); crashes to
# build-fuzz/artifacts/<target>/. Prints executions and findings per target; exits 1 if any target
# crashed (or leaked), 2 if the build failed.
#   usage: fuzz/run.sh [SECONDS] [TARGET...]       e.g. fuzz/run.sh 10 config npy
#   reproduce a finding: build-fuzz/fuzz_<target> build-fuzz/artifacts/<target>/crash-...
# Needs clang with libFuzzer (Debian: apt-get install -y clang libclang-rt-14-dev).
set -u
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-60}
[ $# -gt 0 ] && shift
OUT=build-fuzz
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC not found; install it: apt-get install -y clang libclang-rt-14-dev" >&2
    exit 2
fi
PKG_CFLAGS=$(pkg-config --cflags openblas libcjson)
PKG_LIBS=$(pkg-config --libs openblas libcjson)
CFLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
 -D_POSIX_C_SOURCE=200809L -fno-fast-math -Isrc $PKG_CFLAGS"

# The library, instrumented for coverage (src/cli is not needed).
mkdir -p $OUT/obj
OBJS=""
for src in src/*/*.c; do
    case $src in src/cli/*) continue ;; esac
    obj=$OUT/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
    OBJS="$OBJS $obj"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find src -name '*.h' -newer "$obj" | head -1)" ]; then
        echo "$CC -c $src"
        $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj" || exit 2
    fi
done

if [ $# -gt 0 ]; then TARGETS="$*"; else
    TARGETS=$(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_||; s|\.c$||')
fi
status=0
report=""
for t in $TARGETS; do
    bin=$OUT/fuzz_$t
    $CC $CFLAGS -fsanitize=fuzzer fuzz/fuzz_$t.c $OBJS $PKG_LIBS -lm -o $bin || exit 2
    mkdir -p $OUT/corpus/$t $OUT/artifacts/$t fuzz/corpus/$t
    dict=""
    [ -f fuzz/$t.dict ] && dict="-dict=fuzz/$t.dict"
    maxlen=4096
    [ "$t" = resume ] && maxlen=16384   # its seeds are real checkpoints of 3-7 KB
    log=$OUT/fuzz_$t.log
    touch $OUT/artifacts/$t/.start   # findings of this run = artifacts newer than this
    echo "fuzz: $t for ${SECONDS_PER}s"
    # One worker; 1 thread for OpenBLAS so timings stay sane; a leak is a finding (detect_leaks).
    OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        ./$bin $dict -max_total_time="$SECONDS_PER" -max_len=$maxlen -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix=$OUT/artifacts/$t/ \
        $OUT/corpus/$t fuzz/corpus/$t >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -z "$execs" ] && execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    finds=$(find $OUT/artifacts/$t -type f ! -name .start -newer $OUT/artifacts/$t/.start | wc -l)
    line="$t: ${execs:-?} executions, ${cov:-cov: ?}, exit $rc, new findings $finds"
    if [ $rc -ne 0 ]; then
        status=1
        line="$line  <-- FINDING (see $log)"
        grep -m3 -E '^==[0-9]+==ERROR|SUMMARY|runtime error|deadly signal' "$log" | sed 's/^/    /'
    fi
    echo "$line"
    report="$report$line
"
done
echo "---- fuzz summary (${SECONDS_PER}s per target) ----"
printf '%s' "$report"
exit $status
