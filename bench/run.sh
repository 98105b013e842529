#!/bin/sh
# `make bench`: clipnn vs PyTorch on the workloads of bench/bench.c, interleaved, one process per run.
#
#   bench/run.sh [BUILD_DIR]          (BUILD_DIR holds libclipnn.a; default build)
#   BENCH_REPS=5 BENCH_REPS2=3 BENCH_SECONDS=1.0 BENCH_WORKLOADS="rnn lstm gru mlp tiny" bench/run.sh build
#   BENCH_SCALING=0 leaves out the data-parallel section (bench/scaling.sh: 1 vs 2 MPI ranks)
#   BENCH_MEMORY=0 leaves out the peak-memory section (bench/memory.sh: mlp on an .npy data set)
#
# For every workload and thread count (1, then 2) the clipnn and torch processes alternate (A B A B ...),
# BENCH_REPS repetitions at 1 thread and BENCH_REPS2 at 2; each process warms up and then times
# BENCH_SECONDS of steps. The table gives the median steps/s of each, their ratio, and the peak RSS
# (getrusage in each process, median). A breakdown run per workload (1 thread, clipnn only) gives the clip
# stage's share, norm vs none, the sgemm share and the allocation counts. Raw lines: BUILD_DIR/bench.raw;
# table: stdout and BUILD_DIR/bench.md. PyTorch runs when `/usr/bin/python3 -c "import torch"` works.
set -eu
BUILD=${1:-build}
REPS=${BENCH_REPS:-5}
REPS2=${BENCH_REPS2:-3}
SECS=${BENCH_SECONDS:-1.0}
WORKLOADS=${BENCH_WORKLOADS:-"rnn lstm gru mlp tiny"}
CC=${CC:-cc}
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
. "$HERE/common.sh"

build_bench

TORCH=0
if /usr/bin/python3 -c "import torch" >/dev/null 2>&1; then TORCH=1; fi
RAW="$BUILD/bench.raw"
: > "$RAW"
start=$(date +%s)

run_clipnn() { # workload threads [extra args]
    w=$1; t=$2; shift 2
    OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$BUILD/bench" "$w" --threads "$t" --seconds "$SECS" "$@" >> "$RAW"
}
# PyTorch at N threads: torch.set_num_threads(N) with OpenBLAS at TORCH_BLAS_THREADS (default 1). PyTorch has
# two pools, its own OpenMP one and OpenBLAS's; with both at 2 on 2 cores it ran at 0.24-0.55x its own
# one-thread speed, with OpenBLAS at 1 at 0.96-1.39x, its best setting on every workload
# (bench/torch_threads.sh, docs/performance.md).
run_torch() {
    tb=1; [ "$2" = 1 ] || tb=${TORCH_BLAS_THREADS:-1}
    OPENBLAS_NUM_THREADS=$tb OMP_NUM_THREADS=$2 MKL_NUM_THREADS=$tb /usr/bin/python3 bench/torch_bench.py "$1" \
        --threads "$2" --seconds "$SECS" >> "$RAW"
}

for w in $WORKLOADS; do
    for t in 1 2; do
        n=$REPS; [ "$t" = 2 ] && n=$REPS2
        i=0
        while [ "$i" -lt "$n" ]; do
            if [ "$t" = 1 ]; then run_clipnn "$w" "$t" --ceiling; else run_clipnn "$w" "$t"; fi
            [ "$TORCH" = 1 ] && run_torch "$w" "$t"
            i=$((i + 1))
        done
        printf 'bench: %s, %s thread(s) done (%ss)\n' "$w" "$t" $(($(date +%s) - start)) >&2
    done
    OPENBLAS_NUM_THREADS=1 "$BUILD/bench" "$w" --threads 1 --seconds "$SECS" --breakdown | sed 's/^RESULT /BREAKDOWN /' >> "$RAW"
done

# ---- table ----
field() { # line key -> value
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
values() { # impl workload threads key
    grep "^RESULT impl=$1 workload=$2 threads=$3 " "$RAW" | tr ' ' '\n' | sed -n "s/^$4=//p"
}
target() {   # one-thread targets against PyTorch (docs/performance.md, goals)
    case $1 in tiny) echo 50;; rnn) echo 3;; lstm|gru) echo 2.5;; mlp) echo 1.6;; esac
}
ceiling_target() {   # share of the core's sgemm rate (lstm, gru only)
    case $1 in lstm|gru) echo 65;; *) echo "";; esac
}

OUT="$BUILD/bench.md"
host_facts
TV=$( [ "$TORCH" = 1 ] && grep -m1 'impl=torch' "$RAW" | tr ' ' '\n' | sed -n 's/^torch=//p' || echo "not available")
{
    echo "# clipnn benchmark"
    echo
    echo "Machine: ${CPU:-unknown} ($(nproc) CPUs); PyTorch: ${TV:-?}; $(date -u +%Y-%m-%d)."
    echo "OpenBLAS: $BLAS, kernel $CORE (both sides use the same libopenblas); $FORCED."
    echo "Median of $REPS runs (1 thread) / $REPS2 runs (2 threads) of ${SECS} s each after warm-up, clipnn and torch"
    echo "interleaved in separate processes. Step = zero grads, forward, loss, backward, norm clip 1.0, optimizer."
    echo "2 threads: clipnn's worker pool with OpenBLAS at 1; PyTorch at torch.set_num_threads(2) with OpenBLAS at ${TORCH_BLAS_THREADS:-1}."
    echo
    echo "| workload | threads | clipnn steps/s | torch steps/s | ratio | target (1 thr) | clipnn % of sgemm rate | clipnn RSS MB | torch RSS MB | RSS ratio |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    : > "$BUILD/bench.missed"
    for w in $WORKLOADS; do
        for t in 1 2; do
            c=$(values clipnn "$w" "$t" steps_per_s | median)
            cr=$(values clipnn "$w" "$t" rss_kb | median)
            cp=nan; [ "$t" = 1 ] && cp=$(values clipnn "$w" "$t" ceiling_pct | median)
            if [ "$TORCH" = 1 ]; then
                p=$(values torch "$w" "$t" steps_per_s | median)
                pr=$(values torch "$w" "$t" rss_kb | median)
            else p=nan; pr=nan; fi
            tg="-"; [ "$t" = 1 ] && tg=$(target "$w")
            ct="-"; [ "$t" = 1 ] && ct=$(ceiling_target "$w")
            awk -v w="$w" -v t="$t" -v c="$c" -v p="$p" -v cr="$cr" -v pr="$pr" -v tg="$tg" -v cp="$cp" -v ct="$ct" \
                -v missed="$BUILD/bench.missed" 'BEGIN {
                r = (p == "nan" || p == 0) ? "-" : sprintf("%.2fx", c / p);
                rr = (pr == "nan" || pr == 0) ? "-" : sprintf("1/%.1f", pr / cr);
                ps = (p == "nan") ? "-" : sprintf("%.1f", p);
                prs = (pr == "nan") ? "-" : sprintf("%.1f", pr / 1024);
                cps = (cp == "nan") ? "-" : sprintf("%.0f%%", cp);
                if (ct != "" && ct != "-" && cps != "-") cps = cps sprintf(" (>= %s%%)", ct);
                tgs = (tg == "-") ? "-" : ">= " tg "x";
                if (tg != "-" && r != "-" && c / p < tg) printf "%s at %.2fx against PyTorch (target %sx)\n", w, c / p, tg >> missed;
                if (ct != "" && ct != "-" && cp != "nan" && cp < ct) printf "%s at %.0f%% of the sgemm rate (target %s%%)\n", w, cp, ct >> missed;
                printf "| %s | %s | %.1f | %s | %s | %s | %s | %.1f | %s | %s |\n", w, t, c, ps, r, tgs, cps, cr / 1024, prs, rr }'
        done
    done
    echo
    if [ "$TORCH" = 0 ]; then echo "PyTorch not available: no ratios, so the speed targets were not checked."
    elif [ -s "$BUILD/bench.missed" ]; then echo "Below target: $(paste -sd ';' "$BUILD/bench.missed" | sed 's/;/; /g')."
    else echo "Every one-thread target is met."; fi
    echo
    echo "Breakdown (clipnn, 1 thread, one run each): clip share = time inside cn_clip_run / step time;"
    echo "norm vs none = step time with norm clipping and with \"none\", alternating blocks in one process;"
    echo "sgemm share = time inside cblas_sgemm / step time (link-time wrapper; the per-step recurrent W_hh products run"
    echo "in clipnn's own kernel, rec_gemm in src/autograd/recurrent.c, and are not counted; dW_hh is); allocations counted by"
    echo "cn_alloc_count(): step 1, step 2 (one-time arena consolidation), and per step over the timed steps."
    echo
    echo "| workload | step ms | clip ms | clip share | norm / none step ms | sgemm share | sgemm calls/step | allocs step 1 / step 2 / per step after |"
    echo "|---|---|---|---|---|---|---|---|"
    for w in $WORKLOADS; do
        l=$(grep "^BREAKDOWN impl=clipnn workload=$w " "$RAW" | head -n 1)
        [ -n "$l" ] || continue
        awk -v w="$w" -v sm="$(field "$l" step_ms)" -v cm="$(field "$l" clip_ms)" -v cs="$(field "$l" clip_share)" \
            -v nm="$(field "$l" norm_step_ms)" -v zm="$(field "$l" none_step_ms)" -v ss="$(field "$l" sgemm_share)" \
            -v sc="$(field "$l" sgemm_calls_per_step)" -v a1="$(field "$l" allocs_step1)" \
            -v a2="$(field "$l" allocs_step2)" -v ap="$(field "$l" allocs_per_step)" 'BEGIN {
            printf "| %s | %.4g | %.4g | %.2f%% | %.4g / %.4g | %.1f%% | %g | %d / %d / %g |\n",
                w, sm, cm, 100 * cs, nm, zm, 100 * ss, sc, a1, a2, ap }'
    done
    echo
    echo "Total bench time: $(($(date +%s) - start)) s."
} > "$OUT"
# Peak memory on a data set, against PyTorch (BENCH_MEMORY=0 leaves it out; MEM_N/MEM_STEPS size it).
: > "$BUILD/bench.memory.md"
if [ "${BENCH_MEMORY:-1}" = 1 ]; then
    "$HERE/memory.sh" "$BUILD" > "$BUILD/bench.memory.md" || echo "(bench/memory.sh could not run: see its message)" >> "$BUILD/bench.memory.md"
    { echo; cat "$BUILD/bench.memory.md"; } >> "$OUT"
fi
# Data-parallel scaling over MPI ranks (BENCH_SCALING=0 leaves it out; SCALE_STEPS/SCALE_REPS size it).
: > "$BUILD/bench.scaling.md"
if [ "${BENCH_SCALING:-1}" = 1 ]; then
    "$HERE/scaling.sh" "$BUILD" > "$BUILD/bench.scaling.md"
    { echo; cat "$BUILD/bench.scaling.md"; } >> "$OUT"
fi
cat "$OUT"

# ---- README ----
# A full run (the five workloads, memory and scaling, PyTorch present) writes its tables into README.md
# between the <!-- bench:NAME --> markers of the Performance section, with the host they were measured
# on; BENCH_README=0 leaves README.md alone, BENCH_README=1 writes after a partial run too.
full=0
[ "$WORKLOADS" = "rnn lstm gru mlp tiny" ] && [ "${BENCH_MEMORY:-1}" = 1 ] && [ "${BENCH_SCALING:-1}" = 1 ] && [ "$TORCH" = 1 ] && full=1
if [ "${BENCH_README:-$full}" = 1 ] && [ -f README.md ]; then
    rev=unknown
    if git rev-parse --short HEAD >/dev/null 2>&1; then
        rev="commit $(git rev-parse --short HEAD)"
        git diff --quiet HEAD -- src include 2>/dev/null || rev="$rev with uncommitted changes to src/"
    fi
    for m in speed breakdown memory scaling; do   # every block there before any is written
        grep -qx "<!-- bench:$m -->" README.md && grep -qx "<!-- /bench:$m -->" README.md ||
            { echo "bench: README.md has no <!-- bench:$m --> block: tables left in $OUT only" >&2; exit 1; }
    done
    tables() { grep '^|' "$1" || true; }   # the Markdown tables of a section, without its headings
    nth_table() { awk -v n="$2" '/^\|/ { if (!in_t) { k++; in_t = 1 } if (k == n) print; next } { in_t = 0 }' "$1"; }
    b=$(mktemp)
    trap 'rm -f "$b"' EXIT
    {
        echo "Measured by \`make bench\` (bench/run.sh, which writes these tables here) on ${CPU:-an unknown CPU} ($(nproc) CPUs),"
        echo "$BLAS with the kernel $CORE ($FORCED), PyTorch ${TV:-?} on the same OpenBLAS, one BLAS thread on"
        echo "both sides; library at $rev; $(date -u '+%Y-%m-%d %H:%M') UTC. Median of $REPS runs at 1 thread and $REPS2 at"
        echo "2 threads, ${SECS} s of steps each after warm-up; at 2 threads PyTorch runs \`torch.set_num_threads(2)\` with"
        echo "OpenBLAS at ${TORCH_BLAS_THREADS:-1} thread(s):"
        echo
        nth_table "$OUT" 1
        echo
        sed -n '/^Every one-thread target\|^Below target\|^PyTorch not available/p' "$OUT"
    } > "$b"
    scripts/replace_block.sh README.md bench:speed "$b"
    nth_table "$OUT" 2 > "$b"
    scripts/replace_block.sh README.md bench:breakdown "$b"
    # memory and scaling only when they ran (a partial run leaves their last tables)
    if tables "$BUILD/bench.memory.md" > "$b" && [ -s "$b" ]; then scripts/replace_block.sh README.md bench:memory "$b"; fi
    if tables "$BUILD/bench.scaling.md" > "$b" && [ -s "$b" ]; then scripts/replace_block.sh README.md bench:scaling "$b"; fi
    rm -f "$b"
    echo "bench: wrote the tables into README.md (Performance)" >&2
fi
