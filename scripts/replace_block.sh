#!/bin/sh
# Replaces the lines between two markers of a Markdown file with the contents of a file:
#
#   scripts/replace_block.sh FILE NAME BODY_FILE
#
# The markers are `<!-- NAME -->` and `<!-- /NAME -->`, each alone on its line, once each and in that
# order (NAME e.g. figures:demo, bench:speed). Anything else is refused (exit 1, FILE untouched). The new
# file is written beside FILE with FILE's permissions and renamed over it, so FILE is either the old
# text or the new, never half of one. Used by scripts/figures.sh, scripts/threshold_walkthrough.sh and
# bench/run.sh.
set -eu
[ $# -eq 3 ] || { echo "usage: scripts/replace_block.sh FILE NAME BODY_FILE" >&2; exit 2; }
file=$1 name=$2 body=$3
[ -f "$file" ] || { echo "replace_block: $file: no such file" >&2; exit 1; }
[ -r "$body" ] || { echo "replace_block: $body: cannot read" >&2; exit 1; }
check=$(awk -v m="$name" '
    $0 == "<!-- " m " -->" { if (!o) o = NR; no++ }
    $0 == "<!-- /" m " -->" { if (!c) c = NR; nc++ }
    END { if (no != 1 || nc != 1) print "needs one <!-- " m " --> and one <!-- /" m " --> line (found " no + 0 " and " nc + 0 ")";
          else if (c < o) print "<!-- /" m " --> comes before <!-- " m " -->" }' "$file")
[ -z "$check" ] || { echo "replace_block: $file: $check" >&2; exit 1; }
tmp=$(mktemp "$file.XXXXXX")
trap 'rm -f "$tmp"' EXIT HUP INT TERM
awk -v m="$name" -v bf="$body" '
    $0 == "<!-- " m " -->" { print; while ((getline l < bf) > 0) print l; skip = 1; next }
    $0 == "<!-- /" m " -->" { skip = 0 }
    !skip { print }' "$file" > "$tmp"
chmod "$(stat -c %a "$file")" "$tmp"
mv "$tmp" "$file"
trap - EXIT HUP INT TERM
