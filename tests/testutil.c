#include "testutil.h"

#include <stdio.h>

void tu_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = cn_rng_uniform(&r, lo, hi);
}

const char *tu_fixture(const char *rel)
{
    static _Thread_local char buf[512];
    snprintf(buf, sizeof buf, "%s", rel);
    return buf;
}
