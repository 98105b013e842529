#!/usr/bin/env bash
# Regenerates the README's "Choosing a threshold: a walk-through" figures on this host: the probe of the
# exploding RNN (examples/rnn_adding_explode.json), a sweep of clip.max_norm around its candidates over
# 5 seeds, and the report's tables (the variants, the paired statistics against the probe's `calm`
# threshold, and the sweep section). Replaces the text between <!-- figures:threshold --> and <!-- /figures:threshold --> in
# README.md and prints it.
#
# Usage: scripts/threshold_walkthrough.sh [BUILD_DIR]   (after make; runs go to
# runs/threshold/, replaced each time). About 2 minutes on 2 cores. The numbers are bit-identical for
# the same host kernel and thread count; the times are not.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/clipnn
OUT=runs/threshold
CFG=examples/rnn_adding_explode.json
[ -x "$BIN" ] || { echo "threshold_walkthrough: $BIN not built (run make)" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"

# 1. the probe: one epoch without clipping
"$BIN" probe "$CFG" --out "$OUT/probe" --quiet >"$OUT/probe.txt"
# probe.json is written by cJSON_Print: the candidates are {"rule": NAME, "source": ..., "threshold": X, ...}
cand() { awk -v r="$1" '$0 ~ "\"rule\":[[:space:]]*\"" r "\"" { f = 1 } f && /"threshold"/ { gsub(/[^0-9.eE+-]/, "", $2); print $2; exit }' "$OUT/probe/probe.json"; }
rate() { awk -v r="$1" '$0 ~ "\"rule\":[[:space:]]*\"" r "\"" { f = 1 } f && /"clip_rate"/ { gsub(/[^0-9.eE+-]/, "", $2); printf("%.1f%%", 100 * $2); exit }' "$OUT/probe/probe.json"; }
g3() { awk -v x="$1" 'BEGIN { printf("%.3g", x) }'; }
calm=$(g3 "$(cand calm)")
p10=$(g3 "$(cand p10)")
finite=$(sed -n 's/^[[:space:]]*"finite":[[:space:]]*\([0-9]*\),$/\1/p' "$OUT/probe/probe.json" | head -1)
rows=$(sed -n 's/^[[:space:]]*"rows":[[:space:]]*\([0-9]*\),$/\1/p' "$OUT/probe/probe.json" | head -1)
first=$(sed -n 's/^[[:space:]]*"first_nonfinite_step":[[:space:]]*\([0-9a-z]*\),$/\1/p' "$OUT/probe/probe.json" | head -1)

# 2. the sweep: decades around the candidates, the probe's calm and p10, and no clipping, 5 seeds
t0=$(date +%s.%N)
"$BIN" compare "$CFG" --seeds 5 --variant noclip:clip.mode=none \
    --sweep "clip.max_norm=0.1,0.3,1,3,10,$calm,$p10" --baseline "max_norm=$calm" \
    --out "$OUT/sweep" --quiet >/dev/null
t1=$(date +%s.%N)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf("%.0f", b - a) }')

# 3. the tables: the report's variant table and its paired section, as written
main_table=$(awk 'NR > 1 && /^\| variant \| settings \| runs/ { f = 1 } f && /^\|/ { print; n++ } f && n && !/^\|/ { exit }' "$OUT/sweep/report.md")
paired_table=$(awk '/^## Paired against the baseline/ { f = 1 } f && /^\|/ { print; n++ } f && n && !/^\|/ { exit }' "$OUT/sweep/report.md")
sweep_table=$(awk '/^## Sweep: clip.max\\_norm/ { f = 1 } f && /^\|/ { print; n++ } f && n && !/^\|/ { exit }' "$OUT/sweep/report.md")
sweep_best=$(awk '/^## Sweep: clip.max\\_norm/ { f = 1 } f && /^Best: / { print; exit }' "$OUT/sweep/report.md")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
core=$("$BIN" --version --verbose | sed -n 's/^blas core: //p')
forced=""
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    [ -n "${!v:-}" ] && forced="$forced; $v=${!v} was set"
done

block="Measured by \`scripts/threshold_walkthrough.sh\` on ${cpu:-an unknown CPU}, $(nproc) CPUs, OpenBLAS kernel $core, 1 thread per run$forced (the sweep: ${secs} s).

1. \`clipnn probe $CFG\`: $rows steps without clipping; $finite with a finite norm and loss (the first
   non-finite at step $first). Candidates: \`calm\` $calm (would have clipped $(rate calm) of the probe's
   steps), \`p10\` $p10 ($(rate p10)), \`p50\` $(g3 "$(cand p50)") ($(rate p50)), \`mean\` $(g3 "$(cand mean)") ($(rate mean)).
2. \`clipnn compare $CFG --seeds 5 --variant noclip:clip.mode=none --sweep clip.max_norm=0.1,0.3,1,3,10,$calm,$p10 --baseline max_norm=$calm\`:

$main_table

3. The report's paired section, each threshold against the probe's \`calm\` ($calm), seed by seed:

$paired_table

4. The report's sweep section (its charts, loss and divergence/clip rate against \`max_norm\`, are in
   \`report.html\`), test loss per seed:

$sweep_table

$sweep_best"

printf '%s\n' "$block"
body=$(mktemp)
printf '%s\n' "$block" > "$body"
scripts/replace_block.sh README.md figures:threshold "$body" || { rm -f "$body"; exit 1; }
rm -f "$body"
