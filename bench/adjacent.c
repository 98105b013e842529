/* Two workers, each running a recurrence over its own rows, the way a recurrent layer's batch split runs
 * on the pool: per time step a [16, 256] x [256, 256] product from the worker's rows of step t-1 into its
 * rows of step t. Only the memory layout of the steps differs:
 *
 *   interleaved  [T][2][16][256]: the two workers' rows of a step lie next to each other, as the rows of
 *                a [T, B, H] array split by batch rows do (the layer's output, its saved activations)
 *   separate     [2][T][16][256]: each worker's steps in its own region
 *
 * and the workers run as 1 worker alone, 2 threads of one process, or 2 processes sharing the memory
 * (MAP_SHARED), each pinned to its own CPU when the host has two. Prints the time per pass (49 steps) of
 * each worker. bench/adjacent.sh builds and runs it.
 *
 *   adjacent LAYOUT MODE      LAYOUT 0 interleaved, 1 separate; MODE 1 alone, 2 threads, 3 processes */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { T = 50, R = 16, H = 256, PASSES = 200 };
typedef float v16 __attribute__((vector_size(64)));

static float *W, *buf;
static int layout;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *rows(int t, int w)
{
    size_t c = layout == 0 ? (size_t)t * 2 + (size_t)w : (size_t)w * T + (size_t)t;
    return buf + c * R * H;
}

/* ht = 0.001 hp W (W packed in 32-column panels, as the layer's kernel reads it) */
static void step(const float *hp, float *ht)
{
    for (int j = 0; j < H; j += 32)
        for (int r0 = 0; r0 < R; r0 += 8) {
            v16 acc[8][2];
            memset(acc, 0, sizeof acc);
            for (int k = 0; k < H; k++) {
                v16 b0, b1;
                memcpy(&b0, W + (size_t)j * H + (size_t)k * 32, sizeof b0);
                memcpy(&b1, W + (size_t)j * H + (size_t)k * 32 + 16, sizeof b1);
                for (int r = 0; r < 8; r++) {
                    float a = hp[(r0 + r) * H + k];
                    acc[r][0] += a * b0;
                    acc[r][1] += a * b1;
                }
            }
            for (int r = 0; r < 8; r++) {
                v16 s0 = acc[r][0] * 1e-3f, s1 = acc[r][1] * 1e-3f;
                memcpy(ht + (r0 + r) * H + j, &s0, sizeof s0);
                memcpy(ht + (r0 + r) * H + j + 16, &s1, sizeof s1);
            }
        }
}

static void *work(void *arg)
{
    int w = (int)(long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w, &set);
    if (sysconf(_SC_NPROCESSORS_ONLN) > w) (void)sched_setaffinity(0, sizeof set, &set);
    double t0 = now();
    for (int p = 0; p < PASSES; p++)
        for (int t = 1; t < T; t++) step(rows(t - 1, w), rows(t, w));
    printf("worker %d: %.1f us per pass\n", w, (now() - t0) / PASSES * 1e6);
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: adjacent LAYOUT(0 interleaved, 1 separate) MODE(1 alone, 2 threads, 3 processes)\n");
        return 2;
    }
    layout = atoi(argv[1]);
    int mode = atoi(argv[2]);
    size_t wn = (size_t)H * H, bn = (size_t)T * 2 * R * H;
    W = mmap(NULL, wn * sizeof(float), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    buf = mmap(NULL, bn * sizeof(float), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (W == MAP_FAILED || buf == MAP_FAILED) {
        perror("adjacent: mmap");
        return 1;
    }
    for (size_t i = 0; i < wn; i++) W[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < bn; i++) buf[i] = 0.5f;
    if (mode == 1) {
        work((void *)0L);
    } else if (mode == 2) {
        pthread_t th;
        if (pthread_create(&th, NULL, work, (void *)1L)) return 1;
        work((void *)0L);
        pthread_join(th, NULL);
    } else {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            work((void *)1L);
            _exit(0);
        }
        work((void *)0L);
        waitpid(pid, NULL, 0);
    }
    return 0;
}
