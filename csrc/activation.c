/*
 * activation.c -- hidden and output activations, forward and backward.
 *
 * Constants: ELU alpha = 1 (Keras default); SELU lambda/alpha from
 * Klambauer et al. (as keras.activations.selu); leaky ReLU's negative
 * slope comes from the network (fastnn's default 0.01, as PyTorch).
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>
#include <string.h>

#include "internal.h"

#define SELU_LAMBDA 1.0507009873554804934193349852946
#define SELU_ALPHA 1.6732632423543772848170429916717

/* exp(x) and expm1(x) for x <= 0 without branches or libm calls, so the
 * loops that use them vectorize.  x = n ln2 + r with |r| <= ln2/2 (ln2 split
 * in two parts, Cody-Waite); n is rounded with the 1.5 * 2^mantissa "magic"
 * addition, so no float-to-int conversion happens (NaN stays NaN, no
 * undefined behaviour), and 2^n is built in the exponent bits.
 *   exp(x)   = 2^n exp(r), exp(r) by its Taylor polynomial (degree 7 in
 *              float, 13 in double: truncation below half an ulp); results
 *              below the normal range are flushed to 0.
 *   expm1(x) = 2^n expm1(r) + (2^n - 1) (ELU, SELU), expm1(r) by its Taylor
 *              polynomial without the constant term (degree 8 / 14): no
 *              cancellation near 0, 2^n expm1(r) and 2^n - 1 are exact, so
 *              one rounding remains (within 1 ulp).  Below the range where
 *              2^n is normal the result is -1.
 * Taylor coefficients 1/k!, highest degree first, ending 1/2!, 1, 1. */
static const float inv_fact_f32[] = {1.0f / 40320, 1.0f / 5040, 1.0f / 720, 1.0f / 120,
                                     1.0f / 24,    1.0f / 6,    0.5f,       1.0f,
                                     1.0f};
static const double inv_fact_f64[] = {
    1.0 / 87178291200.0, 1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
    1.0 / 3628800.0,     1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,
    1.0 / 720.0,         1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,
    0.5,                 1.0,                1.0};

/* 2^n, and r = x - n ln2. */
static inline float exp_reduce_f32(float x, float *r)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float nf = x * 1.44269504088896341f + magic;
    uint32_t nbits;
    memcpy(&nbits, &nf, sizeof nbits);
    nf -= magic;
    *r = x - nf * 0.693359375f - nf * -2.12194440e-4f;
    uint32_t ebits = (nbits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &ebits, sizeof scale);
    return scale;
}

static inline double exp_reduce_f64(double x, double *r)
{
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    double nd = x * 1.4426950408889634074 + magic;
    uint64_t nbits;
    memcpy(&nbits, &nd, sizeof nbits);
    nd -= magic;
    *r = x - nd * 6.93147180369123816490e-01 - nd * 1.90821492927058770002e-10;
    uint64_t ebits = (nbits - 0x4338000000000000ull + 1023ull) << 52;
    double scale;
    memcpy(&scale, &ebits, sizeof scale);
    return scale;
}

static inline float exp_nonpos_f32(float x)
{
    float r, scale = exp_reduce_f32(x, &r), p = inv_fact_f32[1];
    for (int i = 2; i < 9; i++) p = p * r + inv_fact_f32[i];
    return x < -87.3f ? 0.0f : p * scale;
}

static inline double exp_nonpos_f64(double x)
{
    double r, scale = exp_reduce_f64(x, &r), p = inv_fact_f64[1];
    for (int i = 2; i < 15; i++) p = p * r + inv_fact_f64[i];
    return x < -708.0 ? 0.0 : p * scale;
}

static inline float expm1_nonpos_f32(float x)
{
    float r, scale = exp_reduce_f32(x, &r), p = inv_fact_f32[0];
    for (int i = 1; i < 8; i++) p = p * r + inv_fact_f32[i];
    return x < -87.3f ? -1.0f : scale * (p * r) + (scale - 1.0f);
}

static inline double expm1_nonpos_f64(double x)
{
    double r, scale = exp_reduce_f64(x, &r), p = inv_fact_f64[0];
    for (int i = 1; i < 14; i++) p = p * r + inv_fact_f64[i];
    return x < -708.0 ? -1.0 : scale * (p * r) + (scale - 1.0);
}

#define FNN_GENERIC_BODY "activation.c"
#include "generic.h"

#else /* type-generic body */

/* 1 / (1 + exp(-x)) from exp(-|x|) <= 1, so it never overflows. */
static inline REAL FN(sigmoid)(REAL x)
{
    REAL ax = x < 0 ? -x : x;
    REAL e = FN(exp_nonpos)(-ax);
    REAL inv = 1 / (1 + e);
    return x >= 0 ? inv : e * inv;
}

FNN_HOT void FN(fnn_act_forward)(int act, double slope, REAL *out, const REAL *pre, int64_t rows,
                         int64_t cols, int nt)
{
    const int64_t n = rows * cols;
    const REAL s = (REAL)slope;
    switch (act) {
    case FNN_ACT_IDENTITY:
        if (out != pre)
            for (int64_t i = 0; i < n; i++) out[i] = pre[i];
        break;
    case FNN_ACT_LOGISTIC:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = FN(sigmoid)(pre[i]););
        break;
    case FNN_ACT_TANH:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = (REAL)tanh(pre[i]););
        break;
    case FNN_ACT_RELU:
        /* NaN stays NaN (pre > 0 ? pre : 0 would hide a corrupted weight as 0). */
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = pre[i] < 0 ? 0 : pre[i];);
        break;
    case FNN_ACT_LEAKY_RELU:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = pre[i] > 0 ? pre[i] : s * pre[i];);
        break;
    case FNN_ACT_ELU:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = pre[i] > 0 ? pre[i] : FN(expm1_nonpos)(pre[i]););
        break;
    case FNN_ACT_SELU:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = (REAL)(pre[i] > 0 ? SELU_LAMBDA * pre[i]
                                       : SELU_LAMBDA * SELU_ALPHA * FN(expm1_nonpos)(pre[i])););
        break;
    case FNN_ACT_SWISH:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = pre[i] * FN(sigmoid)(pre[i]););
        break;
    case FNN_ACT_EXP:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = (REAL)exp(pre[i]););
        break;
    case FNN_ACT_SOFTMAX:
        FNN_PAR_FOR(nt, n, int64_t r = 0; r < rows; r++, {
            const REAL *p = pre + r * cols;
            REAL *o = out + r * cols;
            REAL mx = p[0];
            for (int64_t j = 1; j < cols; j++) mx = p[j] > mx ? p[j] : mx;
            double sum = 0;
            for (int64_t j = 0; j < cols; j++) {
                o[j] = (REAL)exp(p[j] - mx);
                sum += o[j];
            }
            REAL inv = (REAL)(1.0 / sum);
            for (int64_t j = 0; j < cols; j++) o[j] *= inv;
        });
        break;
    }
}

FNN_HOT void FN(fnn_act_backward)(int act, double slope, REAL *dpre, const REAL *dout,
                          const REAL *pre, const REAL *out, int64_t n, int nt)
{
    const REAL s = (REAL)slope;
    switch (act) {
    case FNN_ACT_IDENTITY:
        if (dpre != dout)
            for (int64_t i = 0; i < n; i++) dpre[i] = dout[i];
        break;
    case FNN_ACT_LOGISTIC:
        FNN_PAR_ELEMENTS(nt, n, i, dpre[i] = dout[i] * out[i] * (1 - out[i]););
        break;
    case FNN_ACT_TANH:
        FNN_PAR_ELEMENTS(nt, n, i, dpre[i] = dout[i] * (1 - out[i] * out[i]););
        break;
    case FNN_ACT_RELU:
        /* As sklearn: zero gradient where the output is 0 (pre <= 0). */
        FNN_PAR_ELEMENTS(nt, n, i, dpre[i] = pre[i] > 0 ? dout[i] : 0;);
        break;
    case FNN_ACT_LEAKY_RELU:
        FNN_PAR_ELEMENTS(nt, n, i, dpre[i] = pre[i] > 0 ? dout[i] : s * dout[i];);
        break;
    case FNN_ACT_ELU:
        /* d/dx (e^x - 1) = e^x = out + 1 */
        FNN_PAR_ELEMENTS(nt, n, i, dpre[i] = pre[i] > 0 ? dout[i] : dout[i] * (out[i] + 1););
        break;
    case FNN_ACT_SELU:
        /* d/dx lambda alpha (e^x - 1) = out + lambda alpha */
        FNN_PAR_ELEMENTS(nt, n, i, dpre[i] = pre[i] > 0 ? (REAL)(SELU_LAMBDA * dout[i])
                                 : (REAL)(dout[i] * (out[i] + SELU_LAMBDA * SELU_ALPHA)););
        break;
    case FNN_ACT_SWISH:
        /* d/dx x sig(x) = sig(x) (1 + x (1 - sig(x))) */
        FNN_PAR_ELEMENTS(nt, n, i, {
            REAL sg = FN(sigmoid)(pre[i]);
            dpre[i] = dout[i] * sg * (1 + pre[i] * (1 - sg));
        });
        break;
    case FNN_ACT_EXP:
        FNN_PAR_ELEMENTS(nt, n, i, dpre[i] = dout[i] * out[i];);
        break;
    default:
        break;
    }
}

#endif
