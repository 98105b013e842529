#!/bin/sh
# End-to-end runs of the clipnn program under valgrind's memcheck; fails on any memory error or leak.
#   usage: scripts/valgrind.sh [BUILD_DIR]        (default build; builds BUILD_DIR/clipnn first)
# Each run: valgrind --leak-check=full --errors-for-leak-kinds=all --error-exitcode=99, so every
# invalid access, use of uninitialised memory and every unfreed block (definite, indirect, possible,
# even still-reachable) makes the script fail. The only suppressions are in scripts/valgrind.supp
# (OpenBLAS's thread pool, explained there). The program's own exit code is checked too (a bad
# config must exit 2, not 99). Takes about a minute.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/clipnn
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind.sh: valgrind not found (apt-get install -y valgrind)" >&2
    exit 2
fi
make --no-print-directory BUILD="$BUILD" "$BIN" >/dev/null || { echo "valgrind.sh: build failed" >&2; exit 2; }
case "$(nm "$BIN" 2>/dev/null | grep -c __asan_init)" in
    0) ;;
    *) echo "valgrind.sh: $BIN is built with ASan; use a plain build (make BUILD=build)" >&2; exit 2 ;;
esac

T=$(mktemp -d /tmp/clipnn-valgrind-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
VG="valgrind -q --leak-check=full --errors-for-leak-kinds=all --show-leak-kinds=all --error-exitcode=99 \
    --suppressions=scripts/valgrind.supp --track-fds=no"
fails=0
n=0

# check WANT_EXIT NAME ARGS...: runs $BIN ARGS under valgrind, expects exit WANT_EXIT.
check() {
    want=$1; name=$2; shift 2
    n=$((n + 1))
    log=$T/$name.log
    $VG "$BIN" "$@" >"$log" 2>&1
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        fails=$((fails + 1))
        echo "FAIL $name: exit $rc (want $want; 99 = valgrind error): $BIN $*"
        sed 's/^/    /' "$log" | head -60
    else
        echo "ok   $name"
    fi
}

printf 'seq\nabcdefghij\nthe quick brown fox jumps over the lazy dog\n%.0s' 1 2 3 4 5 6 >"$T/text.txt"
cat >"$T/text.json" <<JSON
{"data": {"kind": "text", "path": "text.txt", "seq_len": 8},
 "model": [{"type": "embedding", "vocab": 64, "dim": 4}, {"type": "lstm", "hidden": 8, "output": "sequence"},
           {"type": "linear", "out": 64}],
 "loss": "cross_entropy", "optimizer": {"type": "adam", "lr": 0.01}, "clip": {"mode": "autoclip"},
 "train": {"steps": 6, "batch_size": 4, "bptt": 3}}
JSON

check 0 train-rnn     train tests/configs/tiny_rnn.json --out "$T/rnn" --quiet
check 0 resume-rnn    train tests/configs/tiny_rnn.json --out "$T/rnn2" --quiet --set train.steps=40 \
                      --resume "$T/rnn/checkpoint.safetensors"
check 0 resume-own    train tests/configs/tiny_rnn.json --quiet --set train.steps=30 \
                      --resume "$T/rnn/checkpoint.safetensors"
check 0 train-mlp     train tests/configs/tiny_mlp.json --out "$T/mlp" --quiet --set clip.mode=agc
check 0 eval-mlp      eval tests/configs/tiny_mlp.json --checkpoint "$T/mlp/checkpoint.safetensors"
check 0 train-text    train "$T/text.json" --out "$T/text" --quiet
check 0 sample-text   sample "$T/text.json" --checkpoint "$T/text/checkpoint.safetensors" --length 20
check 3 diverge       train tests/configs/tiny_rnn.json --out "$T/div" --quiet --set optimizer.type=sgd \
                      --set optimizer.lr=1e30 --set clip.mode=none
check 0 export-mlp    export "$T/mlp/checkpoint.safetensors" --out "$T/mlp-model.safetensors"
check 0 predict-npy   predict tests/golden/export/lstm_seq.json --checkpoint tests/golden/export/lstm_seq.safetensors \
                      --data tests/golden/export/x_seq.npy --out "$T/pred.npy"
check 0 predict-csv   predict tests/golden/export/mlp_ce.json --checkpoint tests/golden/export/mlp_ce.safetensors \
                      --data tests/golden/export/x_flat.npy
check 2 bad-predict   predict tests/golden/export/mlp_ce.json --checkpoint tests/golden/export/mlp_ce.safetensors \
                      --data tests/data/good.csv
check 2 bad-config    train tests/configs/tiny_rnn.json --out "$T/bad" --set optimizer.lr=fast
check 2 bad-json      train scripts/valgrind.sh --out "$T/bad2"
check 2 bad-ckpt      eval tests/configs/tiny_mlp.json --checkpoint tests/configs/tiny_mlp.json
check 2 bad-resume    train tests/configs/tiny_mlp.json --out "$T/bad3" --resume "$T/rnn/checkpoint.safetensors"
check 2 bad-npy       train tests/configs/tiny_mlp.json --out "$T/bad4" \
                      --set 'data={"kind":"npy","x":"../badinput/fuzz_npy_oom.npy","y":"../data/y_i64.npy"}'
check 2 out-occupied  train tests/configs/tiny_mlp.json --out "$T/mlp" --quiet
mkfifo "$T/fifo.json"
check 2 fifo-config   train "$T/fifo.json" --out "$T/fifo"
check 0 compare-sweep  compare tests/configs/tiny_mlp.json --out "$T/cmp" --quiet --variant noclip:clip.mode=none \
                      --sweep clip.mode=norm --sweep clip.max_norm=0.5,2
check 0 compare-extend compare tests/configs/tiny_mlp.json --out "$T/cmp" --quiet --seeds 2
check 0 report-rebuild report "$T/cmp"
check 0 report-mix     report "$T/cmp/noclip" "$T/rnn" --out "$T/mix"
check 2 compare-base   compare tests/configs/tiny_mlp.json --out "$T/cmp" --quiet --set optimizer.lr=0.5
check 2 compare-seed   compare tests/configs/tiny_mlp.json --out "$T/cmp2" --quiet --seeds 2 --set seed=9e15
check 0 probe-explode probe tests/configs/tiny_rnn.json --out "$T/probe" --quiet --set optimizer.type=sgd \
                      --set optimizer.lr=1e30
check 0 probe-run     probe --run tests/data/probe --out "$T/probe2" --quiet
check 2 probe-empty   probe --run "$T/bad" --quiet

echo "valgrind.sh: $((n - fails)) of $n runs clean"
[ "$fails" -eq 0 ]
