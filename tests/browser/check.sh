#!/bin/sh
# `make report-check`: the compare report in a real browser (Debian's chromium, headless).
#   usage: tests/browser/check.sh [BUILD_DIR]       (default build; needs BUILD/clipnn, BUILD/tools/pngcheck)
# 1. trains a 12-variant comparison (2 seeds each) of a small RNN on the adding problem in a few seconds:
#    norm clipping swept over five thresholds, value, AutoClip, AGC, per-tensor, ZClip, none, and none at
#    a tenth of the learning rate; per-tensor norms logged, the test set evaluated every 300 steps;
# 2. renders its report.html at 1400 and 400 px wide and fails on any console message (the page has
#    no script, so any message is an error: a Content-Security-Policy violation, a resource that
#    failed to load, ...) and on a screenshot of one flat colour (pngcheck);
# 3. loads the report at both widths in tests/browser/probe.html, which fails on a page wider than the
#    window, a number broken over two lines, a missing chart or one whose lines have < 2 points, a
#    script or an external reference;
# 4. checks that the check can fail: a copy of the report with an inline script and an external image
#    must log console errors, and one with the table's scrolling wrapper and a chart's lines removed
#    must fail the probe.
# Screenshots and logs stay in BUILD/report-check/. Takes about a minute.
set -u
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
BIN=$BUILD/clipnn
PNGCHECK=$BUILD/tools/pngcheck
CHROMIUM=${CHROMIUM:-chromium}
OUT=$BUILD/report-check
for f in "$BIN" "$PNGCHECK"; do
    [ -x "$f" ] || { echo "report-check: $f is missing (run: make report-check)" >&2; exit 2; }
done
command -v "$CHROMIUM" >/dev/null 2>&1 || { echo "report-check: $CHROMIUM not found (scripts/deps.sh --extra chromium)" >&2; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT"
ABS=$(cd "$OUT" && pwd)
fails=0
fail() { echo "report-check: FAIL: $*" >&2; fails=$((fails + 1)); }

# chromium [ARGS...]: headless, its own profile, bounded in time; as root it needs --no-sandbox.
browse() {
    timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
        --user-data-dir="$ABS/profile" "$@"
}

# console_errors LOG: the page's console messages in a chromium log (none expected)
console_errors() { grep ':CONSOLE' "$1"; }

# screenshot PAGE WIDTH PNG LOG
screenshot() {
    browse --enable-logging=stderr --v=0 --window-size="$2,2000" --screenshot="$3" "file://$ABS/$1" 2>"$4" >/dev/null
}

# probe DIR WIDTH: the probe's verdict on DIR/report.html
probe() {
    cp tests/browser/probe.html "$OUT/$1/probe.html"
    browse --allow-file-access-from-files --virtual-time-budget=30000 --window-size="$2,2000" \
        --dump-dom "file://$ABS/$1/probe.html?w=$2" 2>/dev/null | sed -n 's/.*id="result">\(REPORT-CHECK[^<]*\).*/\1/p'
}

# 1. the comparison
echo "report-check: training 12 variants x 2 seeds ..."
if ! "$BIN" compare tests/browser/sweep.json --seeds 2 --out "$OUT/compare" \
        --variant noclip:clip.mode=none \
        --variant norm0.1:clip.max_norm=0.1 --variant norm0.3:clip.max_norm=0.3 --variant norm1:clip.max_norm=1 \
        --variant norm3:clip.max_norm=3 --variant norm10:clip.max_norm=10 \
        --variant value0.1:clip.mode=value,clip.clip_value=0.1 --variant autoclip:clip.mode=autoclip \
        --variant agc:clip.mode=agc --variant pertensor:clip.mode=norm_per_tensor,clip.max_norm=0.5 \
        --variant zclip:clip.mode=zclip --variant lowlr:clip.mode=none,optimizer.lr=0.02 \
        >"$OUT/compare.log" 2>&1; then
    cat "$OUT/compare.log" >&2
    echo "report-check: the comparison failed" >&2
    exit 1
fi
echo "report-check: report.html is $(wc -c <"$OUT/compare/report.html") bytes"

# 2 and 3, at two widths
for w in 1400 400; do
    screenshot compare/report.html "$w" "$OUT/report-$w.png" "$OUT/chromium-$w.log"
    [ -s "$OUT/report-$w.png" ] || fail "no screenshot at $w px (see $OUT/chromium-$w.log)"
    if console_errors "$OUT/chromium-$w.log" >"$OUT/console-$w.txt"; then
        fail "console messages at $w px:"
        cat "$OUT/console-$w.txt" >&2
    fi
    [ -s "$OUT/report-$w.png" ] && { "$PNGCHECK" "$OUT/report-$w.png" "$w" 2000 || fail "flat screenshot at $w px"; }
    verdict=$(probe compare "$w")
    echo "report-check: $verdict"
    case "$verdict" in
        "REPORT-CHECK: ok"*) ;;
        *) fail "probe at $w px: ${verdict:-no verdict}" ;;
    esac
done

# 4. the check can fail
mkdir -p "$OUT/broken"
sed 's|</body>|<script>document.title="x"</script><img src="http://example.invalid/x.png" alt="x"></body>|' \
    "$OUT/compare/report.html" >"$OUT/broken/report.html"
screenshot broken/report.html 400 "$OUT/broken-400.png" "$OUT/chromium-broken.log"
n=$(console_errors "$OUT/chromium-broken.log" | wc -l)
[ "$n" -ge 2 ] || fail "a report with a script and an external image logged $n console messages, expected 2"
sed -e 's|\.scroll{overflow-x:auto;|.scroll{|' \
    -e '/id="chart-scale"/,/<\/svg>/s#<path class="\(median\|seed\)"[^>]*>##g' \
    "$OUT/compare/report.html" >"$OUT/broken/report.html"
verdict=$(probe broken 400)
case "$verdict" in
    *"REPORT-CHECK: FAIL"*"wide in a"*"scale: empty chart"*) ;;
    *) fail "the probe passed a broken report: ${verdict:-no verdict}" ;;
esac

if [ "$fails" -ne 0 ]; then
    echo "report-check: $fails failure(s); screenshots and logs in $OUT" >&2
    exit 1
fi
echo "report-check: ok (screenshots: $OUT/report-1400.png, $OUT/report-400.png)"
