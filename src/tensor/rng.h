/* Seeded, reproducible random numbers: xoshiro256** seeded by SplitMix64.
 * The whole state (including the spare normal deviate) can be saved and
 * restored, so a resumed run draws the same numbers as one that never stopped. */
#ifndef CN_RNG_H
#define CN_RNG_H

#include <stdint.h>
#include "core.h"

typedef struct {
    uint64_t s[4];
    int has_spare;
    double spare;
} cn_rng;

void     cn_rng_seed(cn_rng *r, uint64_t seed);
uint64_t cn_rng_u64(cn_rng *r);
double   cn_rng_double(cn_rng *r);              /* [0, 1), 53 bits */
float    cn_rng_uniform(cn_rng *r, float lo, float hi);
double   cn_rng_normal(cn_rng *r);              /* mean 0, std 1 (Box-Muller) */
uint64_t cn_rng_below(cn_rng *r, uint64_t n);   /* uniform in [0, n), unbiased */
void     cn_rng_shuffle(cn_rng *r, int32_t *idx, size_t n);  /* Fisher-Yates */

/* Text form of the state (fits in CN_RNG_STATE_LEN bytes with the NUL). */
#define CN_RNG_STATE_LEN 96
void      cn_rng_save(const cn_rng *r, char out[CN_RNG_STATE_LEN]);
cn_status cn_rng_load(cn_rng *r, const char *text);

#endif
