# Shared by the bench scripts: sourced after they cd to the repository root with BUILD set.
#   build_bench   compiles bench/bench.c against BUILD/libclipnn.a into BUILD/bench (the Makefile's object
#                 flags, plus the sgemm timing wrapper, inactive unless --breakdown)
#   host_facts    sets CPU (model), BLAS (OpenBLAS version), CORE (the kernel it chose at run time) and
#                 FORCED (whether OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE forced one: then the figures are not
#                 the host's default)
#   median        the median of the numbers on stdin, one per line ("nan" for none)
#   raw_values FILE PREFIX KEY
#                 the values of KEY=... on the lines of FILE that start with PREFIX (bench RESULT lines a
#                 script tagged), one per line
#   machine_line [WHAT]
#                 the "Machine: ..." line of a table (after host_facts): CPU, core count, OpenBLAS kernel,
#                 whether it was forced, WHAT (e.g. "1 thread") and the date

build_bench() {
    cflags="-std=c11 -O2 -g -Wall -Wextra -Wshadow -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L -fno-fast-math -Isrc -I$BUILD $(pkg-config --cflags openblas libcjson)"
    libs="$(pkg-config --libs openblas libcjson) -lm"
    # shellcheck disable=SC2086
    ${CC:-cc} $cflags -o "$BUILD/bench" bench/bench.c "$BUILD/libclipnn.a" $libs -Wl,--wrap=cblas_sgemm
}

host_facts() {
    CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
    BLAS=$("$BUILD/clipnn" --version --verbose 2>/dev/null | sed -n 's/^blas: \(OpenBLAS [^ ]*\).*/\1/p')
    CORE=$("$BUILD/clipnn" --version --verbose 2>/dev/null | sed -n 's/^blas core: //p')
    FORCED=""
    for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
        eval "val=\${$v:-}"
        [ -n "$val" ] && FORCED="${FORCED:+$FORCED and }$v=$val"
    done
    if [ -n "$FORCED" ]; then FORCED="$FORCED set, not the host's default kernel"
    else FORCED="OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"; fi
    return 0
}

raw_values() { grep "^$2" "$1" | tr ' ' '\n' | sed -n "s/^$3=//p"; }

machine_line() { echo "Machine: ${CPU:-unknown} ($(nproc) CPUs); OpenBLAS kernel $CORE; $FORCED; ${1:+$1; }$(date -u +%Y-%m-%d)."; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
