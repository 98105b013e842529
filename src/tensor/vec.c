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


/* cn_vabs_stats: the per-tensor pass of the clip statistics. Element j goes to accumulator lane j % 16
 * (16 independent sums, so the adds of consecutive elements do not wait on each other; the last n % 16
 * elements go to their lanes the same way). |g| is exact in double and so is a * a (24-bit mantissas), so
 * a fused multiply-add rounds as the separate operations do: each lane's sums round as in a scalar loop,
 * with or without the AVX2 path. The lanes are then summed pairwise (vabs_reduce): lane l with l + 8, then
 * with l + 4, then (m0 + m2) + (m1 + m3). The maximum ignores NaN (a > m is false; vmaxpd returns its
 * second operand). */
static double vabs_reduce(const double *l)
{
    double s8[8], s4[4];
    for (int i = 0; i < 8; i++) s8[i] = l[i] + l[i + 8];
    for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

#ifdef CN_VEC_X86
#include <immintrin.h>
/* The whole 16-element blocks with AVX2 and FMA, four 4-double accumulators per statistic; returns how
 * far it got. */
__attribute__((target("avx2,fma"))) static size_t vabs_stats_avx2(const float *g, size_t n, double *ssl, double *sal,
                                                                double *mxl)
{
    const __m256d sign = _mm256_set1_pd(-0.0);
    __m256d ss0 = _mm256_setzero_pd(), ss1 = ss0, ss2 = ss0, ss3 = ss0, sa0 = ss0, sa1 = ss0, sa2 = ss0, sa3 = ss0;
    __m256d mx0 = ss0, mx1 = ss0, mx2 = ss0, mx3 = ss0;
    size_t j = 0;
#define VABS_LANES(Q)                                                                    \
    do {                                                                                 \
        __m256d a = _mm256_andnot_pd(sign, _mm256_cvtps_pd(_mm_loadu_ps(g + j + 4 * (Q)))); \
        ss##Q = _mm256_fmadd_pd(a, a, ss##Q);                                            \
        sa##Q = _mm256_add_pd(sa##Q, a);                                                 \
        mx##Q = _mm256_max_pd(a, mx##Q);                                                 \
    } while (0)
    for (; j + 16 <= n; j += 16) {
        VABS_LANES(0);
        VABS_LANES(1);
        VABS_LANES(2);
        VABS_LANES(3);
    }
#undef VABS_LANES
    _mm256_storeu_pd(ssl, ss0);
    _mm256_storeu_pd(ssl + 4, ss1);
    _mm256_storeu_pd(ssl + 8, ss2);
    _mm256_storeu_pd(ssl + 12, ss3);
    _mm256_storeu_pd(sal, sa0);
    _mm256_storeu_pd(sal + 4, sa1);
    _mm256_storeu_pd(sal + 8, sa2);
    _mm256_storeu_pd(sal + 12, sa3);
    _mm256_storeu_pd(mxl, mx0);
    _mm256_storeu_pd(mxl + 4, mx1);
    _mm256_storeu_pd(mxl + 8, mx2);
    _mm256_storeu_pd(mxl + 12, mx3);
    return j;
}
#endif

void cn_vabs_stats(const float *g, size_t n, double *ss_out, double *sa_out, double *mx_out)
{
    double ssl[16] = {0}, sal[16] = {0}, mxl[16] = {0};
    size_t j = 0;
#ifdef CN_VEC_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) j = vabs_stats_avx2(g, n, ssl, sal, mxl);
#endif
    for (size_t l = 0; j < n; j++, l = (l + 1) % 16) {   /* j % 16 == l: the AVX2 path stops on a block edge */
        double a = fabs((double)g[j]);
        ssl[l] += a * a;
        sal[l] += a;
        if (a > mxl[l]) mxl[l] = a;
    }
    double m = 0;
    for (int l = 0; l < 16; l++)
        if (mxl[l] > m) m = mxl[l];
    *ss_out = vabs_reduce(ssl);
    *sa_out = vabs_reduce(sal);
    *mx_out = m;
}

