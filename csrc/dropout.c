/*
 * dropout.c -- inverted dropout and Keras AlphaDropout, masks drawn from the
 * counter-based RNG keyed by (seed, stream, element index).
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>

#include "internal.h"
#include "rng.h"

/* AlphaDropout's affine correction (Keras 3): dropped units are set to
 * alpha_p = -lambda alpha, then a (.) + b restores mean 0 and variance 1. */
static void alpha_dropout_coefs(double rate, double *a, double *b, double *alpha_p)
{
    double ap = -FNN_SELU_LAMBDA * FNN_SELU_ALPHA;
    double aa = 1.0 / sqrt((1.0 - rate) * (1.0 + rate * ap * ap));
    *alpha_p = ap;
    *a = aa;
    *b = -aa * ap * rate;
}

#define FNN_GENERIC_BODY "dropout.c"
#include "generic.h"

#else /* type-generic body */

FNN_HOT void FN(fnn_dropout_forward)(REAL *out, uint8_t *keep, const REAL *x, int64_t n,
                             double rate, int alpha, uint64_t seed, uint64_t stream,
                             uint64_t index0, int nt)
{
    if (alpha) {
        double a, b, ap;
        alpha_dropout_coefs(rate, &a, &b, &ap);
        FNN_PAR_ELEMENTS(nt, n, i, {
            keep[i] = fnn_uniform(seed, stream, index0 + (uint64_t)i) >= rate;
            out[i] = (REAL)(a * (keep[i] ? (double)x[i] : ap) + b);
        });
        return;
    }
    const REAL scale = (REAL)(1.0 / (1.0 - rate));
    FNN_PAR_ELEMENTS(nt, n, i, {
        keep[i] = fnn_uniform(seed, stream, index0 + (uint64_t)i) >= rate;
        out[i] = keep[i] ? x[i] * scale : 0;
    });
}

FNN_HOT void FN(fnn_dropout_backward)(REAL *dx, const REAL *dy, const uint8_t *keep, int64_t n,
                              double rate, int alpha, int nt)
{
    REAL scale;
    if (alpha) {
        double a, b, ap;
        alpha_dropout_coefs(rate, &a, &b, &ap);
        scale = (REAL)a;
    } else {
        scale = (REAL)(1.0 / (1.0 - rate));
    }
    FNN_PAR_ELEMENTS(nt, n, i, dx[i] = keep[i] ? dy[i] * scale : 0;);
}

#endif
