#!/bin/sh
# Regenerates fuzz/corpus/resume/ (real checkpoints of every config in fuzz/resume_configs.h) with the
# normal build's library. Run from anywhere: fuzz/make_resume_seeds.sh
set -eu
cd "$(dirname "$0")/.."
make -j2 --no-print-directory build/libclipnn.a >/dev/null
mkdir -p build/fuzz-seeds fuzz/corpus/resume
cc -std=c11 -O1 -g -D_POSIX_C_SOURCE=200809L -Isrc -Ifuzz $(pkg-config --cflags openblas libcjson) \
    fuzz/make_resume_seeds.c build/libclipnn.a $(pkg-config --libs openblas libcjson) -lm \
    -o build/fuzz-seeds/make_resume_seeds
rm -f fuzz/corpus/resume/*
OPENBLAS_NUM_THREADS=1 build/fuzz-seeds/make_resume_seeds fuzz/corpus/resume
