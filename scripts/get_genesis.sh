#!/bin/sh
# Writes examples/data/genesis.txt: the Book of Genesis, King James Version (public domain), as printed by
# the `bible` program of Debian's bible-kjv package from the text in bible-kjv-text (see
# examples/data/TEXT-SOURCE.txt). Lines are wrapped at 79 columns; each verse starts with its number.
# Re-run from the repository root:
#     apt-get install -y bible-kjv bible-kjv-text
#     scripts/get_genesis.sh
# The output does not depend on the terminal (-l79 sets the width); it is 204674 bytes, ASCII.
set -eu
out="$(dirname "$0")/../examples/data/genesis.txt"
env -u COLUMNS bible -l79 'gen1:1-50:26' > "$out.tmp"
mv "$out.tmp" "$out"
wc -c "$out"
