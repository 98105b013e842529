/* The activation formulas of src/tensor/vec.c (exp core, tanh, sigmoid; the method and its error bounds are
 * described there), written once for any width of vector. vec.c includes this file once per vector type,
 * with these defined:
 *   ACT_F, ACT_U, ACT_I    float, uint32 and int32 vectors of the same lane count
 *   ACT_FC(c), ACT_UC(c)   a float / uint32 constant in every lane
 *   ACT_SEL(m, a, b)       m ? a : b lane by lane
 *   ACT_NAME(n)            the name of this width's copy of function n
 * Every lane goes through the same IEEE operations in the same order whatever the width, so a wider copy
 * gives the bits of the narrower one. No include guard: it is meant to be included more than once. */

VINLINE ACT_F ACT_NAME(vexp_core)(ACT_F x)
{
    ACT_F kf = x * ACT_FC(1.44269504088896341f) + ACT_FC(12582912.0f);   /* 1.5 * 2^23: round to nearest */
    ACT_U kb = (ACT_U)kf;                                              /* low bits: 0x4B400000 + k */
    kf -= ACT_FC(12582912.0f);
    ACT_F r = x - kf * ACT_FC(0.693359375f);
    r = r - kf * ACT_FC(-2.12194440e-4f);
    ACT_F p = ACT_FC(1.9875691500e-4f);
    p = p * r + ACT_FC(1.3981999507e-3f);
    p = p * r + ACT_FC(8.3334519073e-3f);
    p = p * r + ACT_FC(4.1665795894e-2f);
    p = p * r + ACT_FC(1.6666665459e-1f);
    p = p * r + ACT_FC(5.0000001201e-1f);
    p = p * (r * r) + r + ACT_FC(1.0f);
    ACT_U e = (kb - ACT_UC(0x4B400000u) + ACT_UC(127u)) << 23;            /* 2^k (0 below 2^-126) */
    return p * (ACT_F)e;
}

VINLINE ACT_F ACT_NAME(vtanh)(ACT_F x)
{
    ACT_U sign = (ACT_U)x & ACT_UC(0x80000000u);
    ACT_F ax = (ACT_F)((ACT_U)x & ACT_UC(0x7fffffffu));
    ACT_F a = ACT_SEL(ax > ACT_FC(10.0f), ACT_FC(10.0f), ax);
    ACT_F e = ACT_NAME(vexp_core)(a + a);
    ACT_F big = ACT_FC(1.0f) - ACT_FC(2.0f) / (e + ACT_FC(1.0f));
    ACT_F x2 = ax * ax;
    ACT_F p = ACT_FC(0.002142784820547161f);
    p = p * x2 + ACT_FC(-0.008177073692043908f);
    p = p * x2 + ACT_FC(0.021700492847008316f);
    p = p * x2 + ACT_FC(-0.05394670184269715f);
    p = p * x2 + ACT_FC(0.1333320521351572f);
    p = p * x2 + ACT_FC(-0.3333333076685044f);
    ACT_F small = ax + ax * x2 * p;
    return (ACT_F)((ACT_U)ACT_SEL(ax < ACT_FC(0.625f), small, big) | sign);
}

VINLINE ACT_F ACT_NAME(vsigmoid)(ACT_F x)
{
    ACT_F m = -x;
    ACT_I under = m > ACT_FC(88.0f);   /* 1/(1 + e^{>88}) < 6e-39: 0, as 1/(1 + expf(-x)) once expf overflows */
    m = ACT_SEL(under, ACT_FC(88.0f), m);
    m = ACT_SEL(m < ACT_FC(-88.0f), ACT_FC(-88.0f), m);
    return ACT_SEL(under, ACT_FC(0.0f), ACT_FC(1.0f) / (ACT_FC(1.0f) + ACT_NAME(vexp_core)(m)));
}
