/* The vector kernels of src/tensor/vec.h. */
#include "tensor/vec.h"

#include <math.h>

/* Vectorised tanh and sigmoid (float32, 8 lanes with GCC/Clang vector extensions).
 *
 * glibc's tanhf/expf are scalar calls (~15-20 ns each) and were ~40% of an RNN/LSTM step. These are
 * branch-free and IEEE-only (no FMA: -std=c11 keeps -ffp-contract=off, so every build gives the same
 * bits on every x86-64, with or without the AVX2 clone):
 *   exp(x):  x = k ln2 + r (Cody-Waite, ln2 split in two), |r| <= ln2/2, e^r by Cephes expf's degree-6
 *            polynomial, 2^k built in the exponent bits; valid for |x| <= 88 (callers clamp).
 *   tanh(x): |x| < 0.625: x + x^3 P(x^2), P of degree 5 fitted (least squares, relative error 1.6e-10)
 *            to (tanh x - x)/x^3 on [0, 0.625^2]; else 1 - 2/(e^{2|x|} + 1) with |x| clamped to 10
 *            (where the formula rounds to 1.0f, as tanh does from 9.01); the sign is copied back (tanh(-0) = -0).
 *   sigmoid: 1/(1 + e^{-x}) (the formula of the scalar code it replaces), 0 for x < -88, -x clamped to 88.
 * Max error against tanh/exp in double over a dense grid of [-20, 20]: tanh 1.3 ulp, sigmoid 2.5 ulp
 * (pinned by a test in tests/test_autograd.c). Clamps use comparisons, so NaN propagates. */

#define ACT_F v8f
#define ACT_U v8u
#define ACT_I v8i
#define ACT_FC V8F
#define ACT_UC V8U
#define ACT_SEL vsel
#define ACT_NAME(n) n
#include "tensor/vec_act.h"
#undef ACT_NAME

/* On a CPU with AVX-512, cn_vtanh and cn_vsigmoid run 16 lanes at a time (one 512-bit vector per
 * operation instead of two 256-bit ones): the same formulas lane by lane, so the same bits as 8 lanes
 * (tests/test_autograd.c compares the two). */
#ifdef CN_VEC_X86
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
#define V16U(c) ((v16u){c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c})
VINLINE v16f vsel16(v16i m, v16f a, v16f b) { return (v16f)(((v16u)m & (v16u)a) | (~(v16u)m & (v16u)b)); }
#undef ACT_F
#undef ACT_U
#undef ACT_I
#undef ACT_FC
#undef ACT_UC
#undef ACT_SEL
#define ACT_F v16f
#define ACT_U v16u
#define ACT_I v16i
#define ACT_FC V16F
#define ACT_UC V16U
#define ACT_SEL vsel16
#define ACT_NAME(n) n##16
#include "tensor/vec_act.h"

/* The whole 16-float vectors of x; each returns how many elements it did. */
__attribute__((target("avx512f"))) static size_t tanh16(float *o, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) vst16(o + i, vtanh16(vld16(x + i)));
    return i;
}
__attribute__((target("avx512f"))) static size_t sigmoid16(float *o, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) vst16(o + i, vsigmoid16(vld16(x + i)));
    return i;
}
#endif

/* The tail of cn_vtanh / cn_vsigmoid goes through one zero-padded vector, so every element gets the
 * vector formula. */
VCLONES void cn_vtanh(float *o, const float *x, size_t n)
{
    size_t i = VWIDE(tanh, o, x, n);
    for (; i + 8 <= n; i += 8) vst(o + i, vtanh(vld(x + i)));
    if (i < n) {
        v8f v = V8F(0.0f);
        memcpy(&v, x + i, sizeof(float) * (n - i));
        v = vtanh(v);
        memcpy(o + i, &v, sizeof(float) * (n - i));
    }
}

VCLONES void cn_vsigmoid(float *o, const float *x, size_t n)
{
    size_t i = VWIDE(sigmoid, o, x, n);
    for (; i + 8 <= n; i += 8) vst(o + i, vsigmoid(vld(x + i)));
    if (i < n) {
        v8f v = V8F(0.0f);
        memcpy(&v, x + i, sizeof(float) * (n - i));
        v = vsigmoid(v);
        memcpy(o + i, &v, sizeof(float) * (n - i));
    }
}

/* GCC's -O2 does not vectorise loops of unknown trip count, hence the explicit loops below. */
/* y[i] += x[i] */
VCLONES void cn_vadd_into(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vst(y + i, vld(y + i) + vld(x + i));
    for (; i < n; i++) y[i] += x[i];
}

/* db[o] += sum over rows r of d[r, o] (rows in order), d [R, C] */
VCLONES void cn_vcolsum_ld(float *db, const float *d, size_t R, size_t C, size_t ld)
{
    /* Blocks of 64 rows (a block stays in cache while its columns are summed), and in a block 32 columns
     * at a time in registers down the rows (no load and store of db per row). Each column still adds its
     * rows in order, so the bits are those of a plain row-by-row loop. */
    for (size_t r0 = 0; r0 < R; r0 += 64) {
        size_t r1 = R - r0 < 64 ? R : r0 + 64, c = 0;
        for (; c + 32 <= C; c += 32) {
            v8f a0 = vld(db + c), a1 = vld(db + c + 8), a2 = vld(db + c + 16), a3 = vld(db + c + 24);
            for (size_t r = r0; r < r1; r++) {
                const float *row = d + r * ld + c;
                a0 += vld(row);
                a1 += vld(row + 8);
                a2 += vld(row + 16);
                a3 += vld(row + 24);
            }
            vst(db + c, a0);
            vst(db + c + 8, a1);
            vst(db + c + 16, a2);
            vst(db + c + 24, a3);
        }
        for (; c + 8 <= C; c += 8) {
            v8f a = vld(db + c);
            for (size_t r = r0; r < r1; r++) a += vld(d + r * ld + c);
            vst(db + c, a);
        }
        for (; c < C; c++) {
            float a = db[c];
            for (size_t r = r0; r < r1; r++) a += d[r * ld + c];
            db[c] = a;
        }
    }
}

void cn_vcolsum_into(float *db, const float *d, size_t R, size_t C) { cn_vcolsum_ld(db, d, R, C, C); }

/* y[i] = a[i] * b[i] */
VCLONES void cn_vmul(float *y, const float *a, const float *b, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vst(y + i, vld(a + i) * vld(b + i));
    for (; i < n; i++) y[i] = a[i] * b[i];
}

/* relu keeping NaN: y = x < 0 ? 0 : x;  backward (PyTorch threshold_backward): dx += x <= 0 ? 0 : dy */
VCLONES void cn_vrelu(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v = vld(x + i);
        vst(y + i, vsel(v < V8F(0.0f), V8F(0.0f), v));
    }
    for (; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

VCLONES void cn_vrelu_backward_into(float *dx, const float *dy, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) vst(dx + i, vld(dx + i) + vsel(vld(x + i) <= V8F(0.0f), V8F(0.0f), vld(dy + i)));
    for (; i < n; i++) dx[i] += x[i] <= 0.0f ? 0.0f : dy[i];
}

/* tanh backward from the output: d[i] = dy[i] (1 - y[i]^2) */
VCLONES void cn_vtanh_backward(float *d, const float *dy, const float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v = vld(y + i);
        vst(d + i, vld(dy + i) * (V8F(1.0f) - v * v));
    }
    for (; i < n; i++) d[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* the same added: dx[i] += dy[i] (1 - y[i]^2) */
VCLONES void cn_vtanh_backward_add(float *dx, const float *dy, const float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v = vld(y + i);
        vst(dx + i, vld(dx + i) + vld(dy + i) * (V8F(1.0f) - v * v));
    }
    for (; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

/* sigmoid backward from the output, added: dx[i] += dy[i] y[i] (1 - y[i]) */
VCLONES void cn_vsigmoid_backward_add(float *dx, const float *dy, const float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v = vld(y + i);
        vst(dx + i, vld(dx + i) + vld(dy + i) * v * (V8F(1.0f) - v));
    }
    for (; i < n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}


/* cn_vabs_stats: the per-tensor pass of the clip statistics. Element j is added to accumulator lane j % 8
 * (8 lanes, as two 4-double vectors, so the adds of consecutive elements do not wait on each other; the
 * last n % 8 elements go to their lanes j % 8 the same way, one by one). |g| is exact in double, a * a and
 * the sums round as in a scalar loop. Max |g| ignores NaN (the comparison is false). */
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4l __attribute__((vector_size(32)));

VINLINE v4d vabs4(const float *p)
{
    v4f f;
    memcpy(&f, p, sizeof f);
    v4d d = __builtin_convertvector(f, v4d);
    return (v4d)((v4l)d & (v4l){INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX});   /* fabs: clear the sign bit */
}

VINLINE v4d vmax4(v4d a, v4d m)
{
    v4l gt = a > m;   /* false for NaN: m kept */
    return (v4d)((gt & (v4l)a) | (~gt & (v4l)m));
}

VCLONES void cn_vabs_stats(const float *g, size_t n, double *ss_out, double *sa_out, double *mx_out)
{
    v4d ss0 = {0}, ss1 = {0}, sa0 = {0}, sa1 = {0}, mx0 = {0}, mx1 = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v4d a0 = vabs4(g + j), a1 = vabs4(g + j + 4);
        ss0 += a0 * a0;
        ss1 += a1 * a1;
        sa0 += a0;
        sa1 += a1;
        mx0 = vmax4(a0, mx0);
        mx1 = vmax4(a1, mx1);
    }
    double ss[8], sa[8], mx[8];
    memcpy(ss, &ss0, sizeof ss0);
    memcpy(ss + 4, &ss1, sizeof ss1);
    memcpy(sa, &sa0, sizeof sa0);
    memcpy(sa + 4, &sa1, sizeof sa1);
    memcpy(mx, &mx0, sizeof mx0);
    memcpy(mx + 4, &mx1, sizeof mx1);
    for (size_t l = 0; j < n; j++, l++) {
        double a = fabs((double)g[j]);
        ss[l] += a * a;
        sa[l] += a;
        if (a > mx[l]) mx[l] = a;
    }
    *ss_out = ((ss[0] + ss[4]) + (ss[1] + ss[5])) + ((ss[2] + ss[6]) + (ss[3] + ss[7]));
    *sa_out = ((sa[0] + sa[4]) + (sa[1] + sa[5])) + ((sa[2] + sa[6]) + (sa[3] + sa[7]));
    double m = 0;
    for (int l = 0; l < 8; l++)
        if (mx[l] > m) m = mx[l];
    *mx_out = m;
}

