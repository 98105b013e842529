#!/usr/bin/env bash
# Regenerates every measured figure of README.md and examples/README.md on this host: the demo table
# (clipnn compare examples/rnn_adding_explode.json --seeds 5), the probe section's figures (clipnn probe of
# examples/temporal_order.json and examples/rnn_adding_explode.json) and each example's accuracy, loss and
# time. The walk-through's figures come from scripts/threshold_walkthrough.sh.
# Prints the tables it writes, records the host (CPU model from /proc/cpuinfo, core count, OpenBLAS
# version, the OpenBLAS kernel chosen at run time, threads), and replaces the text between the
# <!-- figures:NAME --> and <!-- /figures:NAME --> markers of the two READMEs. The performance tables come
# from `make bench` (bench/run.sh), which prints its own.
#
# Usage: scripts/figures.sh [BUILD_DIR]     (make figures; runs go to runs/figures/, replaced each time)
# Timings are only meaningful on an otherwise idle machine; the accuracies and losses are bit-identical for
# the same host kernel and thread count (see the README's Reproducibility).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/clipnn
OUT=runs/figures
[ -x "$BIN" ] || { echo "figures: $BIN not built (run make)" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"

# summary.json is written by cJSON_Print: one "key":<TAB>value per line.
val() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1" | head -1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { d = b - a; printf(d < 10 ? "%.2f s" : "%.0f s", d) }'; }
pct() { awk -v x="$1" 'BEGIN { printf("%.1f%%\n", 100 * x) }'; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
ncpu=$(nproc)
blas=$("$BIN" --version --verbose | sed -n 's/^blas: //p')
core=$("$BIN" --version --verbose | sed -n 's/^blas core: //p')
host="host: ${cpu:-unknown CPU}, $ncpu CPUs; $(echo "$blas" | awk '{print $1, $2}'), kernel $core; \`threads\`: 1 per run"
# A forced kernel is not the host's default: say so wherever the figures are quoted.
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    [ -n "${!v:-}" ] && host="$host; $v=${!v} was set"
done
echo "$host"

# ---- the demo: 4 variants x 5 seeds ----
t0=$(now)
"$BIN" compare examples/rnn_adding_explode.json --seeds 5 --out "$OUT/demo" --quiet
t1=$(now)
demo_time=$(secs "$t0" "$t1")
demo="| variant | diverged | test MSE (mean ± sd, 5 seeds) | steps clipped |
|---|---|---|---|"
# in the config's order (runs.csv lists the runs variant by variant, seed by seed)
variants=$(awk -F, 'NR > 1 && !seen[$1]++ { print $1 }' "$OUT/demo/runs.csv")
for v in $variants; do
    n=0; div=0; steps=""; mses=""; clip=""; maxn=""
    for s in 1 2 3 4 5; do
        f="$OUT/demo/$v-s$s/summary.json"
        [ -f "$f" ] || { echo "figures: $f missing" >&2; exit 1; }
        n=$((n + 1))
        if [ "$(val "$f" diverged)" = true ]; then
            div=$((div + 1)); steps="$steps${steps:+, }$(val "$f" diverged_at_step)"
            maxn="$maxn $(val "$f" max_grad_norm_pre)"
        else
            mses="$mses $(val "$f" test_loss)"
        fi
        clip="$clip $(val "$f" clip_frac)"
    done
    mse=$(echo "$mses" | awk '{ if (NF == 0) { print "—"; exit } s = 0; for (i = 1; i <= NF; i++) s += $i; m = s / NF;
        q = 0; for (i = 1; i <= NF; i++) q += ($i - m) ^ 2; sd = NF > 1 ? sqrt(q / (NF - 1)) : 0;
        printf("%.4f ± %.4f%s", m, sd, NF < 5 ? " (" NF " runs)" : "") }')
    cf=$(echo "$clip" | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf("%.1f%%", 100 * s / NF) }')
    dv="$div/$n"
    if [ "$div" -gt 0 ]; then
        top=$(echo "$maxn" | awk '{ m = 0; for (i = 1; i <= NF; i++) if ($i == "inf" || $i + 0 > m) m = ($i == "inf" ? "inf" : $i + 0); printf(m == "inf" ? "inf" : "%.0e", m) }')
        dv="$dv, at steps $steps (grad norm up to $top)"
    fi
    demo="$demo
| $v | $dv | $mse | $cf |"
done
demo_intro="Measured by \`make figures\` ($demo_time for the 20 runs, $ncpu at a time); $host:"

# ---- the examples ----
run_example() {   # name config [seed]
    local name=$1 cfg=$2 seed=${3:-1}
    local t0 t1
    t0=$(now)
    "$BIN" train "$cfg" --quiet --set seed="$seed" --out "$OUT/$name-s$seed" >/dev/null
    t1=$(now)
    echo "$(secs "$t0" "$t1")"
}
ex="| example | command | result (seed 1 unless said) | time |
|---|---|---|---|"
# spirals, seeds 1-3
sp_time=$(run_example spirals examples/spirals.json 1)
run_example spirals examples/spirals.json 2 >/dev/null
run_example spirals examples/spirals.json 3 >/dev/null
sp=$(for s in 1 2 3; do pct "$(val "$OUT/spirals-s$s/summary.json" test_metric)"; done | paste -sd, - | sed 's/,/, /g')
ex="$ex
| \`spirals.json\` | \`clipnn train examples/spirals.json\` | test accuracy (seeds 1, 2, 3): $sp | $sp_time, $(val "$OUT/spirals-s1/summary.json" steps) steps |"
# temporal order
to_time=$(run_example temporal_order examples/temporal_order.json 1)
ex="$ex
| \`temporal_order.json\` | \`clipnn train examples/temporal_order.json\` | test accuracy $(pct "$(val "$OUT/temporal_order-s1/summary.json" test_metric)" | tr -d '\n') | $to_time, $(val "$OUT/temporal_order-s1/summary.json" steps) steps |"
# digits, seeds 1-5
dg_time=$(run_example digits examples/digits_mlp.json 1)
for s in 2 3 4 5; do run_example digits examples/digits_mlp.json "$s" >/dev/null; done
dg=$(for s in 1 2 3 4 5; do pct "$(val "$OUT/digits-s$s/summary.json" test_metric)"; done | paste -sd, - | sed 's/,/, /g')
ex="$ex
| \`digits_mlp.json\` | \`clipnn train examples/digits_mlp.json\` | test accuracy (seeds 1-5): $dg | $dg_time, $(val "$OUT/digits-s1/summary.json" steps) steps |"
# char LSTM
ch_time=$(run_example char examples/char_lstm.json 1)
ch="$OUT/char-s1/summary.json"
ex="$ex
| \`char_lstm.json\` | \`clipnn train examples/char_lstm.json\` | test loss $(awk -v x="$(val "$ch" test_loss)" 'BEGIN { printf("%.2f", x) }') nats/char, next-character accuracy $(pct "$(val "$ch" test_metric)" | tr -d '\n') | $ch_time, $(val "$ch" steps) steps |"
# the C examples
t0=$(now); cc_out=$("$BUILD/examples/custom_clip" | tail -1); t1=$(now)
ex="$ex
| \`custom_clip.c\` | \`build/examples/custom_clip\` | last line: \`$cc_out\` | $(secs "$t0" "$t1") |"
t0=$(now); cr_out=$("$BUILD/examples/clip_report" | tail -1); t1=$(now)
ex="$ex
| \`clip_report.c\` | \`build/examples/clip_report\` | $cr_out | $(secs "$t0" "$t1") |"
ex_intro="Measured by \`make figures\`; $host:"

# ---- the probe section: temporal_order (a GRU) and the exploding RNN ----
probe_run() {   # name config: runs the probe into $OUT/probe-NAME (its printout in probe-NAME.txt), prints the time
    local t0 t1
    t0=$(now)
    "$BIN" probe "$2" --out "$OUT/probe-$1" > "$OUT/probe-$1.txt" 2>/dev/null
    t1=$(now)
    secs "$t0" "$t1"
}
candidates() {   # name: "rule threshold rate" per line, from the printed candidates table
    awk '/^candidate thresholds/ { c = 1; next } c && /^  rule/ { next } c && NF == 0 { c = 0 } c { print $1, $2, $3 }' "$OUT/probe-$1.txt"
}
to_probe_time=$(probe_run temporal examples/temporal_order.json)
pj="$OUT/probe-temporal/probe.json"
cands=$(candidates temporal)
probe="| rule | clip.max_norm | would clip |
|---|---:|---:|"
while read -r rule thr rate; do probe="$probe
| $rule | $thr | $rate |"; done <<EOF_C
$cands
EOF_C
cand() { printf '%s\n' "$cands" | awk -v r="$1" '$1 == r { print $2 }'; }
spikes=$(awk '/^spikes/ { s = 1; next } s && /^  step/ { printf("%s%s:%s", n++ ? " " : "", $2, $5) } s && NF == 0 { s = 0 }' "$OUT/probe-temporal.txt")
nspk=$(sed -n 's/^spikes .*: \([0-9]*\)$/\1/p' "$OUT/probe-temporal.txt")
spk_text=$(echo "$spikes" | awk -v n="$nspk" '{
    if (n == 0) { print "No spike (a norm above 10x the running median)"; exit }
    m = NF < 3 ? NF : 3; st = ""; rt = "";
    for (i = 1; i <= m; i++) { split($i, a, ":"); sub(/x$/, "", a[2]);
        st = st (i > 1 ? (i == m ? " and " : ", ") : "") a[1]; rt = rt (i > 1 ? (i == m ? " and " : ", ") : "") a[2] "×" }
    printf("%d spike%s (step%s %s%s, %s the running median)", n, n > 1 ? "s" : "", m > 1 ? "s" : "", st, n > m ? ", ..." : "", rt) }')
top=$(awk '/^share of the squared norm/ { t = 1; next } t && /^  tensor/ { next } t && NF >= 3 { s = $2; sub(/%/, "", s); if (s + 0 > best) { best = s + 0; name = $1; share = $2 } } END { print name, share }' "$OUT/probe-temporal.txt")
ex_probe_time=$(probe_run explode examples/rnn_adding_explode.json)
xj="$OUT/probe-explode/probe.json"
xcands=$(candidates explode)
xcand() { printf '%s\n' "$xcands" | awk -v r="$1" '$1 == r { print $2 }'; }
probe_text="Measured by \`make figures\`; $host. \`clipnn probe examples/temporal_order.json\` (a GRU, Adam 0.01;
$(val "$pj" rows) steps, $to_probe_time):

$probe

$spk_text; the mean is $(cand mean), the median $(cand p50): a few large norms move Pascanu's mean more
than the percentiles. The largest share of the squared norm, ${top#* }, is in \`${top% *}\`. On the
exploding RNN of \`make demo\` (\`clipnn probe examples/rnn_adding_explode.json\`: $(val "$xj" rows) steps,
$ex_probe_time) the unclipped model's largest finite norm is $(awk -v x="$(val "$xj" max)" 'BEGIN { printf("%.1e", x) }') and its loss is non-finite from step
$(val "$xj" first_nonfinite_step) on ($(val "$xj" nonfinite) of $(val "$xj" rows) steps non-finite and skipped); the mean ($(xcand mean)) and the upper
percentiles describe the explosion, not the model, and the candidates worth trying are \`calm\`
($(xcand calm)) and \`p10\` ($(xcand p10))."

# ---- write ----
replace() {   # file marker text: the lines between <!-- figures:marker --> and <!-- /figures:marker -->
    local body
    body=$(mktemp)
    printf '%s\n' "$3" > "$body"
    scripts/replace_block.sh "$1" "figures:$2" "$body" || { rm -f "$body"; exit 1; }
    rm -f "$body"
}
replace README.md demo "$demo_intro

$demo"
replace README.md probe "$probe_text"
replace examples/README.md examples "$ex_intro

$ex"
printf '\n%s\n\n%s\n\n%s\n\n%s\n\n%s\n' "$demo_intro" "$demo" "$probe_text" "$ex_intro" "$ex"
echo
echo "figures: updated README.md and examples/README.md; runs in $OUT/"
