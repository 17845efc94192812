/* rng.c — xoshiro256** (Blackman & Vigna), seeded through splitmix64. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void dbt_rng_seed(dbt_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dbt_rng_next(dbt_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float dbt_rng_uniform(dbt_rng *r) { return (float)(dbt_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

uint32_t dbt_rng_below(dbt_rng *r, uint32_t n) { /* Lemire's multiply-shift; bias < 2^-32 */
    return (uint32_t)(((dbt_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

float dbt_rng_normal(dbt_rng *r) {
    float u1 = dbt_rng_uniform(r), u2 = dbt_rng_uniform(r);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
}
