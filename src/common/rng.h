/* rng.h — a small seedable generator (xoshiro256**) for dropout, masking and shuffling. Its
 * whole state is four words, saved in checkpoints so that a resumed run draws what the
 * uninterrupted one would have. */
#ifndef DBT_RNG_H
#define DBT_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} dbt_rng;

void dbt_rng_seed(dbt_rng *r, uint64_t seed);
uint64_t dbt_rng_next(dbt_rng *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
float dbt_rng_uniform(dbt_rng *r);
/* Uniform integer in [0, n). */
uint32_t dbt_rng_below(dbt_rng *r, uint32_t n);
/* Standard normal (Box–Muller). */
float dbt_rng_normal(dbt_rng *r);

#endif
