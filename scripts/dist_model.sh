#!/bin/sh
# A model on paper of data-parallel `clipnn train` past one machine (README, "Past one machine").
#
#   scripts/dist_model.sh            measures this host's 1-thread sgemm rate, then prints the model
#   scripts/dist_model.sh GFLOPS     uses the given rate (GFLOP/s per rank) instead
#   ALPHA_US=5 scripts/dist_model.sh
#
# Per-step compute: 3 x the forward multiply-adds of bench.c's mlp (784-512-512-10, global batch 256) and
#   lstm (T 50, B 32, F 2, hidden 128) workloads (forward 2mnk per matmul, backward two more of the same
#   size); elementwise work is left out, so compute time is a lower bound and efficiency an upper bound.
#   t_comp(N) = FLOP / (N * rate).
# Communication, alpha-beta model, message S = 4P bytes (the float gradient), N ranks:
#   t = 2 (N-1)/N * S / beta + 2 (N-1) alpha
#   the cost of a ring all-reduce; clipnn's exchange (a reduce-scatter by MPI_Alltoallv, pairwise in N-1
#   rounds of S/N, then an MPI_Allgatherv of the summed shards, N-1 rounds of S/N) moves the same bytes in
#   the same number of rounds; ZeRO-1 would move the same too (reduce-scatter of gradients, all-gather of
#   weights).
#   beta = 25 Gb/s = 3.125e9 B/s or 100 Gb/s = 12.5e9 B/s; alpha = ALPHA_US microseconds (default 5).
# Efficiency E(N) = t_comp(N) / (t_comp(N) + t_comm(N)) (no overlap of compute and communication).
# Break-even batch per rank: E = 50% when the per-rank compute of b examples equals t_comm:
#   b* = t_comm * rate / FLOP-per-example; below b* per rank, more ranks cost more than they save.
set -eu
ALPHA_US=${ALPHA_US:-5}
RATE=${1:-}
if [ -z "$RATE" ]; then
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/clipnn-sgemm.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT INT TERM
    cat > "$tmp/s.c" <<'C'
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
/* 1-thread sgemm rate at the mlp's shapes: [256 x 784] x [784 x 512] and [256 x 512] x [512 x 512] */
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(void)
{
    int M = 256, K = 784, N = 512, K2 = 512;
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = malloc(sizeof(float) * M * N);
    float *b2 = malloc(sizeof(float) * K2 * N), *c2 = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (int i = 0; i < K * N; i++) b[i] = (float)(i % 5) * 0.1f;
    for (int i = 0; i < K2 * N; i++) b2[i] = (float)(i % 3) * 0.1f;
    double flop = 0, t0 = 0;
    for (int rep = 0; ; rep++) {
        if (rep == 3) { t0 = now(); flop = 0; }   /* warm-up */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K2, 1.0f, c, N, b2, N, 0.0f, c2, N);
        flop += 2.0 * M * N * K + 2.0 * M * N * K2;
        if (rep > 3 && now() - t0 > 1.0) break;
    }
    printf("%.2f\n", flop / (now() - t0) / 1e9);
    free(a); free(b); free(c); free(b2); free(c2);
    return 0;
}
C
    # shellcheck disable=SC2046
    ${CC:-cc} -O2 -o "$tmp/s" "$tmp/s.c" $(pkg-config --cflags --libs openblas) -lm
    RATE=$(OPENBLAS_NUM_THREADS=1 "$tmp/s")
    CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
    CORE=$(OPENBLAS_VERBOSE=2 OPENBLAS_NUM_THREADS=1 "$tmp/s" 2>&1 >/dev/null | sed -n 's/^Core: *//p' | head -n 1)
    echo "sgemm rate measured on this host: $RATE GFLOP/s (1 thread; CPU: ${CPU:-unknown}; OpenBLAS core: ${CORE:-unknown})"
else
    echo "sgemm rate given: $RATE GFLOP/s per rank"
fi
awk -v R="$RATE" -v A="$ALPHA_US" 'BEGIN {
    R *= 1e9; a = A * 1e-6
    # workload: name, FLOP per global step, global batch, parameters
    n = 0
    w[++n] = "mlp";  fl[n] = 3 * 2 * 256 * (784*512 + 512*512 + 512*10); B[n] = 256; P[n] = 784*512+512 + 512*512+512 + 512*10+10
    w[++n] = "lstm"; fl[n] = 3 * 2 * 32 * 50 * (4*128*(2+128)) + 3 * 2 * 32 * 128; B[n] = 32; P[n] = 4*128*(2+128) + 2*4*128 + 128+1
    bw[1] = 3.125e9; bn[1] = "25 Gb/s"; bw[2] = 12.5e9; bn[2] = "100 Gb/s"
    ranks[1] = 8; ranks[2] = 32; ranks[3] = 128
    printf "alpha = %g us; E = efficiency at N ranks against 1 rank, no overlap of compute and communication\n\n", A
    for (i = 1; i <= n; i++) {
        t1 = fl[i] / R; S = 4 * P[i]
        printf "%s: %.3g GFLOP/step, global batch %d, %d params (%.2f MB gradient), 1 rank %.2f ms/step\n",
               w[i], fl[i] / 1e9, B[i], P[i], S / 1e6, 1e3 * t1
        for (k = 1; k <= 2; k++) {
            printf "  %-8s", bn[k]
            for (j = 1; j <= 3; j++) {
                N = ranks[j]; tc = t1 / N
                ar = 2 * (N - 1) / N * S / bw[k] + 2 * (N - 1) * a
                note = (B[i] < N) ? " (batch < ranks: not runnable)" : ""
                printf "  N=%d: E %.0f%%, %.2f ms comm%s", N, 100 * tc / (tc + ar), 1e3 * ar, note
            }
            # break-even batch per rank at 32 ranks
            N = 32; ar = 2 * (N - 1) / N * S / bw[k] + 2 * (N - 1) * a
            printf "\n  %-8s  break-even batch per rank (E = 50%%, N = 32): %.1f examples\n", bn[k], ar * R / (fl[i] / B[i])
        }
        printf "\n"
    }
}'
