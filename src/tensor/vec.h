/* Vector kernels over float arrays, and the one SIMD preamble the library's explicit vector loops share
 * (autograd ops, the recurrent layers, the optimizers, the clip statistics). Internal to the library: not
 * part of the public header.
 *
 * The vectors are GCC/Clang vector extensions of 8 floats. Every loop has a scalar tail with the same
 * operations in the same order, and no build contracts a multiply and an add into an FMA (-std=c11 keeps
 * -ffp-contract=off), so the results are the same bits whichever clone runs and wherever the vector part
 * ends. */
#ifndef CN_TENSOR_VEC_H
#define CN_TENSOR_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"   /* 32-byte vectors only in always-inlined helpers */
#endif
typedef float v8f __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define V8F(c) ((v8f){c, c, c, c, c, c, c, c})
#define V8U(c) ((v8u){c, c, c, c, c, c, c, c})
#define VINLINE static inline __attribute__((always_inline))
/* An AVX2 clone beside the default where the toolchain supports ifunc (same operations, same results). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define CN_VEC_X86 1
#define VCLONES __attribute__((target_clones("avx2", "default")))
#else
#define VCLONES
#endif

VINLINE v8f vld(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
VINLINE void vst(float *p, v8f v) { memcpy(p, &v, sizeof v); }
/* 16 floats: the lanes of AVX-512, used in functions compiled for it (target("avx512f")) and called only
 * where the CPU has it; lane by lane the same operations as 8, so the same bits. */
typedef float v16f __attribute__((vector_size(64)));
#define V16F(c) ((v16f){c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c})
VINLINE v16f vld16(const float *p) { v16f v; memcpy(&v, p, sizeof v); return v; }
VINLINE void vst16(float *p, v16f v) { memcpy(p, &v, sizeof v); }
/* VWIDE(f, args): f16(args), a kernel's whole 16-lane vectors (a target("avx512f") function returning how
 * far it got), on a CPU with AVX-512; else 0, and the caller's 8-lane loop and tail do everything. */
#ifdef CN_VEC_X86
#define VWIDE(f, ...) (__builtin_cpu_supports("avx512f") ? f##16(__VA_ARGS__) : 0)
#else
#define VWIDE(f, ...) 0
#endif
/* m ? a : b lane by lane (m from a vector comparison: all ones or all zeros) */
VINLINE v8f vsel(v8i m, v8f a, v8f b) { return (v8f)(((v8u)m & (v8u)a) | (~(v8u)m & (v8u)b)); }

/* o[i] = tanh(x[i]), o[i] = 1 / (1 + exp(-x[i])); o may equal x. Max error against the double-precision
 * functions: tanh 1.3 ulp, sigmoid 2.5 ulp; NaN propagates. */
void cn_vtanh(float *o, const float *x, size_t n);
void cn_vsigmoid(float *o, const float *x, size_t n);

/* y[i] += x[i] */
void cn_vadd_into(float *y, const float *x, size_t n);
/* y[i] = a[i] * b[i] */
void cn_vmul(float *y, const float *a, const float *b, size_t n);
/* db[c] += sum over rows r of d[r, c], rows in order; d is [R, C] row-major */
void cn_vcolsum_into(float *db, const float *d, size_t R, size_t C);
/* The same over the first C columns of rows ld floats apart (each column summed row by row in order, so
 * a range of columns gets the bits of the whole). */
void cn_vcolsum_ld(float *db, const float *d, size_t R, size_t C, size_t ld);
/* relu keeping NaN: y = x < 0 ? 0 : x */
void cn_vrelu(float *y, const float *x, size_t n);
/* relu backward (PyTorch threshold_backward): dx += x <= 0 ? 0 : dy, so a NaN input passes dy */
void cn_vrelu_backward_into(float *dx, const float *dy, const float *x, size_t n);
/* tanh backward from the output: d = dy (1 - y^2) (written, not added) */
void cn_vtanh_backward(float *d, const float *dy, const float *y, size_t n);
/* the same added: dx += dy (1 - y^2) */
void cn_vtanh_backward_add(float *dx, const float *dy, const float *y, size_t n);
/* sigmoid backward from the output, added: dx += dy y (1 - y) */
void cn_vsigmoid_backward_add(float *dx, const float *dy, const float *y, size_t n);

/* Sum of squares, sum and maximum of |g| over n floats, accumulated in double in a fixed order that does
 * not depend on the machine or the code path: element j goes to lane j % 16, and the lanes are summed
 * pairwise, l with l + 8, then with l + 4, then (m0 + m2) + (m1 + m3). The maximum ignores NaN (the caller
 * decides). */
void cn_vabs_stats(const float *g, size_t n, double *sumsq, double *sumabs, double *maxabs);

#endif
