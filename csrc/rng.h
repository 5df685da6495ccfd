/*
 * rng.h -- counter-based random numbers.
 *
 * A draw is a pure function of (seed, stream, index): dropout masks are the
 * same whatever the thread count or scheduling, and backward passes never
 * need to store or replay generator state.  The mixer is SplitMix64's
 * finalizer applied to a combination of the three keys.
 */
#ifndef FNN_RNG_H
#define FNN_RNG_H

#include <stdint.h>

static inline uint64_t fnn_mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1) keyed by (seed, stream, index). */
static inline double fnn_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t h = fnn_mix64(seed ^ fnn_mix64(stream ^ fnn_mix64(index)));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

#endif
