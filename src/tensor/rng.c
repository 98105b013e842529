#include "tensor/rng.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void cn_rng_seed(cn_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t cn_rng_u64(cn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cn_rng_double(cn_rng *r) { return (double)(cn_rng_u64(r) >> 11) * 0x1.0p-53; }

float cn_rng_uniform(cn_rng *r, float lo, float hi)
{
    return (float)((double)lo + ((double)hi - (double)lo) * cn_rng_double(r));
}

double cn_rng_normal(cn_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do u1 = cn_rng_double(r); while (u1 <= 0.0);
    u2 = cn_rng_double(r);
    double rad = sqrt(-2.0 * log(u1));
    double th = 2.0 * 3.14159265358979323846 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

uint64_t cn_rng_below(cn_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = cn_rng_u64(r); while (x >= limit);
    return x % n;
}

void cn_rng_shuffle(cn_rng *r, int32_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cn_rng_below(r, i);
        int32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

void cn_rng_save(const cn_rng *r, char out[CN_RNG_STATE_LEN])
{
    /* The spare deviate is stored bit-exactly as its IEEE-754 pattern. */
    uint64_t bits;
    memcpy(&bits, &r->spare, sizeof bits);
    snprintf(out, CN_RNG_STATE_LEN, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%d%016" PRIx64,
             r->s[0], r->s[1], r->s[2], r->s[3], r->has_spare ? 1 : 0, bits);
}

static int hex16(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return 0;
        v = (v << 4) | (uint64_t)d;
    }
    *out = v;
    return 1;
}

cn_status cn_rng_load(cn_rng *r, const char *text)
{
    if (!text || strlen(text) != 81 || (text[64] != '0' && text[64] != '1'))
        return cn_error(CN_ERR_FORMAT, "RNG state must be 81 hex characters");
    cn_rng t;
    uint64_t bits;
    for (int i = 0; i < 4; i++)
        if (!hex16(text + 16 * i, &t.s[i])) return cn_error(CN_ERR_FORMAT, "RNG state is not hexadecimal");
    if (!hex16(text + 65, &bits)) return cn_error(CN_ERR_FORMAT, "RNG state is not hexadecimal");
    if (!(t.s[0] | t.s[1] | t.s[2] | t.s[3])) return cn_error(CN_ERR_FORMAT, "RNG state is all zero");
    t.has_spare = text[64] == '1';
    memcpy(&t.spare, &bits, sizeof bits);
    if (!isfinite(t.spare)) return cn_error(CN_ERR_FORMAT, "RNG state: the spare normal deviate is not finite");
    *r = t;
    return CN_OK;
}
