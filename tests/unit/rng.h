/*
 * Deterministic random numbers for tests: splitmix64 for the bits,
 * Box-Muller for normals. A seed gives the same sequence on every run and
 * every machine (up to the last bit of libm's log/cos), so a failing test
 * fails again.
 */
#ifndef ZT_TESTS_RNG_H
#define ZT_TESTS_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct test_rng {
    uint64_t state;
} test_rng;

static inline test_rng rng_seed(uint64_t seed) { return (test_rng){seed}; }

static inline uint64_t rng_u64(test_rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 bits. */
static inline double rng_uniform(test_rng *r) { return (double)(rng_u64(r) >> 11) * 0x1p-53; }

/* Standard normal (mean 0, variance 1). */
static inline float rng_normal(test_rng *r) {
    double u1 = 1.0 - rng_uniform(r); /* (0, 1]: log stays finite */
    double u2 = rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* x[0..n) = sigma * standard normal. */
static inline void rng_fill_normal(test_rng *r, float *x, int64_t n, float sigma) {
    for (int64_t i = 0; i < n; i++) x[i] = sigma * rng_normal(r);
}

#endif
