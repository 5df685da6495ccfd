/*
 * activation.c -- hidden and output activations, forward and backward.
 *
 * Constants: ELU alpha = 1 (Keras default); SELU lambda/alpha from
 * Klambauer et al. (as keras.activations.selu); leaky ReLU's negative
 * slope comes from the network (fastnn's default 0.01, as PyTorch).
 * GELU is the exact erf form (keras.activations.gelu's default
 * approximate=False), Mish is x tanh(softplus(x)) (keras.activations.mish).
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>
#include <string.h>

#include "internal.h"

#define FNN_GENERIC_BODY "activation.c"
#include "generic.h"

#else /* type-generic body */

/* exp(x) and expm1(x) for x <= 0 without branches or libm calls, so the
 * loops that use them vectorize.  x = n ln2 + r with |r| <= ln2/2 (ln2 split
 * in two parts, Cody-Waite); n is rounded with the 1.5 * 2^mantissa "magic"
 * addition, so no float-to-int conversion happens (NaN stays NaN, no
 * undefined behaviour), and 2^n is built in the exponent bits.
 *   exp(x)   = 2^n exp(r), exp(r) by its Taylor polynomial (degree 7 in
 *              float, 13 in double: truncation below half an ulp).  Below
 *              EXP_MIN, where 2^n is not normal, (2^(n + S) exp(r)) 2^-S
 *              instead (S = EXP_SUB_SHIFT), whose last product rounds into
 *              the subnormal range as libm's exp does (numpy's softmax and
 *              expit give a confident model's small probabilities there,
 *              and log(predict_proba) must stay finite); from EXP_FLOOR
 *              down, 0.
 *   expm1(x) = 2^n expm1(r) + (2^n - 1) (ELU, SELU), expm1(r) by its Taylor
 *              polynomial without the constant term (degree 8 / 14): no
 *              cancellation near 0, 2^n expm1(r) and 2^n - 1 are exact, so
 *              one rounding remains (within 1 ulp).  Below the range where
 *              2^n is normal the result is -1.
 * Each precision's constants; INV_FACT holds the Taylor coefficients 1/k!,
 * highest degree first, ending 1/2!, 1, 1. */
#if REAL_IS_FLOAT
typedef uint32_t FN(bits);
#define EXP_MAGIC 12582912.0f /* 1.5 * 2^23 */
#define EXP_MAGIC_BITS 0x4B400000u
#define EXP_BIAS 127u
#define EXP_SHIFT 23
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define EXP_MIN (-87.3f) /* below: exp is subnormal, expm1 is -1 */
#define EXP_FLOOR (-104.0f) /* exp rounds to 0 from here down */
#define EXP_SUB_SHIFT 32u
#define EXP_SUB_UNSHIFT 2.3283064365386963e-10f /* 2^-32 */
static const float inv_fact_f32[] = {1.0f / 40320, 1.0f / 5040, 1.0f / 720, 1.0f / 120,
                                     1.0f / 24,    1.0f / 6,    0.5f,       1.0f,
                                     1.0f};
#else
typedef uint64_t FN(bits);
#define EXP_MAGIC 6755399441055744.0 /* 1.5 * 2^52 */
#define EXP_MAGIC_BITS 0x4338000000000000ull
#define EXP_BIAS 1023ull
#define EXP_SHIFT 52
#define LOG2E 1.4426950408889634074
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define EXP_MIN (-708.0)
#define EXP_FLOOR (-746.0)
#define EXP_SUB_SHIFT 64ull
#define EXP_SUB_UNSHIFT 5.4210108624275222e-20 /* 2^-64 */
static const double inv_fact_f64[] = {
    1.0 / 87178291200.0, 1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
    1.0 / 3628800.0,     1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,
    1.0 / 720.0,         1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,
    0.5,                 1.0,                1.0};
#endif
#define INV_FACT FN(inv_fact)
#define N_FACT ((int)(sizeof INV_FACT / sizeof INV_FACT[0]))

/* 2^(n + shift), and r = x - n ln2. */
static inline REAL FN(exp_reduce)(REAL x, REAL *r, FN(bits) shift)
{
    REAL nf = x * LOG2E + EXP_MAGIC;
    FN(bits) nbits;
    memcpy(&nbits, &nf, sizeof nbits);
    nf -= EXP_MAGIC;
    *r = x - nf * LN2_HI - nf * LN2_LO;
    FN(bits) ebits = (nbits - EXP_MAGIC_BITS + EXP_BIAS + shift) << EXP_SHIFT;
    REAL scale;
    memcpy(&scale, &ebits, sizeof scale);
    return scale;
}

static inline REAL FN(exp_nonpos)(REAL x)
{
    const int sub = x < EXP_MIN;
    REAL r, scale = FN(exp_reduce)(x < EXP_FLOOR ? EXP_FLOOR : x, &r, sub ? EXP_SUB_SHIFT : 0),
            p = INV_FACT[1];
    for (int i = 2; i < N_FACT; i++) p = p * r + INV_FACT[i];
    const REAL e = p * scale;
    return sub ? e * EXP_SUB_UNSHIFT : e;
}

static inline REAL FN(expm1_nonpos)(REAL x)
{
    REAL r, scale = FN(exp_reduce)(x, &r, 0), p = INV_FACT[0];
    for (int i = 1; i < N_FACT - 1; i++) p = p * r + INV_FACT[i];
    return x < EXP_MIN ? -1 : scale * (p * r) + (scale - 1);
}

/* 1 / (1 + exp(-x)) from exp(-|x|) <= 1, so it never overflows. */
static inline REAL FN(sigmoid)(REAL x)
{
    REAL ax = x < 0 ? -x : x;
    REAL e = FN(exp_nonpos)(-ax);
    REAL inv = 1 / (1 + e);
    return x >= 0 ? inv : e * inv;
}

/* SELU with its products in double (as fastnn has always rounded them),
 * written as a select in REAL then one product: 15% faster in float than
 * choosing between two double products. */
static inline REAL FN(selu)(REAL x)
{
    const REAL e = FN(expm1_nonpos)(x);
    const REAL v = x > 0 ? x : e;
    const double c = x > 0 ? FNN_SELU_LAMBDA : FNN_SELU_LAMBDA * FNN_SELU_ALPHA;
    return (REAL)(c * (double)v);
}

/* GELU = x Phi(x), Phi the standard normal CDF, written with erfc so that
 * the negative side does not cancel (1 + erf(x / sqrt 2) does).  libm's
 * erfc, in double also for float: erfc(z) amplifies the rounding of its
 * argument z = -x / sqrt 2 by 2 z^2 = x^2 (50 float ulps at x = -7). */
#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
static inline REAL FN(normal_cdf)(REAL x) { return (REAL)(0.5 * erfc(-(double)x * INV_SQRT2)); }

/* Mish: tanh(softplus(x)) = n / (n + 2) with n = e^x (e^x + 2), written in
 * w = e^{-|x|} <= 1 so that nothing overflows and the loop vectorizes:
 *   x >= 0: n / (n + 2) = (1 + 2w) / (1 + 2w + 2w^2)
 *   x <  0: n / (n + 2) = w (w + 2) / (w (w + 2) + 2)
 * i.e. num / (num + 2q) with q = w^2 or 1; 1 - tanh = 2q / (num + 2q)
 * exactly (no cancellation in the gradient), and sigmoid(x) from the same w. */
static inline void FN(mish_parts)(REAL x, REAL *t, REAL *one_minus_t, REAL *sig)
{
    const REAL w = FN(exp_nonpos)(x < 0 ? x : -x);
    const REAL num = x >= 0 ? 1 + 2 * w : w * (w + 2);
    const REAL q = x >= 0 ? w * w : 1;
    const REAL inv = 1 / (num + 2 * q);
    *t = num * inv;
    *one_minus_t = 2 * q * inv;
    *sig = (x >= 0 ? 1 : w) / (1 + w);
}

FNN_HOT fnn_status FN(fnn_act_forward)(int act, double slope, REAL *out, const REAL *pre,
                                       int64_t rows, int64_t cols, int nt)
{
    const int64_t n = rows * cols;
    const REAL s = (REAL)slope;
    switch ((fnn_activation)act) {
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
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = FN(selu)(pre[i]););
        break;
    case FNN_ACT_SWISH:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = pre[i] * FN(sigmoid)(pre[i]););
        break;
    case FNN_ACT_EXP:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = (REAL)exp(pre[i]););
        break;
    case FNN_ACT_GELU:
        FNN_PAR_ELEMENTS(nt, n, i, out[i] = pre[i] * FN(normal_cdf)(pre[i]););
        break;
    case FNN_ACT_MISH:
        FNN_PAR_ELEMENTS(nt, n, i, {
            REAL t, omt, sg;
            FN(mish_parts)(pre[i], &t, &omt, &sg);
            out[i] = pre[i] * t;
        });
        break;
    case FNN_ACT_SOFTMAX:
        /* p - max <= 0 (or NaN), so exp_nonpos applies, in a loop of its own
         * that vectorizes: a libm call per element was 7% of a training step
         * of the digits network (64-100-10, batch 200, float64). */
        FNN_PAR_FOR(nt, n, int64_t r = 0; r < rows; r++, {
            const REAL *p = pre + r * cols;
            REAL *o = out + r * cols;
            REAL mx = p[0];
            for (int64_t j = 1; j < cols; j++) mx = p[j] > mx ? p[j] : mx;
            for (int64_t j = 0; j < cols; j++) o[j] = FN(exp_nonpos)(p[j] - mx);
            double sum = 0;
            for (int64_t j = 0; j < cols; j++) sum += o[j];
            REAL inv = (REAL)(1.0 / sum);
            for (int64_t j = 0; j < cols; j++) o[j] *= inv;
        });
        break;
    default:
        return FNN_ERR_BADARG;
    }
    return FNN_OK;
}

FNN_HOT fnn_status FN(fnn_act_backward)(int act, double slope, REAL *dpre, const REAL *dout,
                                        const REAL *pre, const REAL *out, int64_t n, int nt)
{
    const REAL s = (REAL)slope;
    switch ((fnn_activation)act) {
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
        FNN_PAR_ELEMENTS(nt, n, i, dpre[i] = pre[i] > 0 ? (REAL)(FNN_SELU_LAMBDA * dout[i])
                                 : (REAL)(dout[i] * (out[i] + FNN_SELU_LAMBDA * FNN_SELU_ALPHA)););
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
    case FNN_ACT_GELU:
        /* d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = e^{-x^2/2} / sqrt(2 pi) */
        FNN_PAR_ELEMENTS(nt, n, i, {
            const REAL x = pre[i];
            const REAL pdf = (REAL)INV_SQRT_2PI * FN(exp_nonpos)(-(REAL)0.5 * x * x);
            dpre[i] = dout[i] * (FN(normal_cdf)(x) + x * pdf);
        });
        break;
    case FNN_ACT_MISH:
        /* d/dx x tanh(sp(x)) = t + x (1 - t^2) sigmoid(x), t = tanh(sp(x)) */
        FNN_PAR_ELEMENTS(nt, n, i, {
            REAL t, omt, sg;
            FN(mish_parts)(pre[i], &t, &omt, &sg);
            dpre[i] = dout[i] * (t + pre[i] * omt * (1 + t) * sg);
        });
        break;
    case FNN_ACT_SOFTMAX: /* its gradient is fused into the loss (fnn_output_delta) */
    default:
        return FNN_ERR_BADARG;
    }
    return FNN_OK;
}

#undef EXP_MAGIC
#undef EXP_MAGIC_BITS
#undef EXP_BIAS
#undef EXP_SHIFT
#undef LOG2E
#undef LN2_HI
#undef LN2_LO
#undef EXP_MIN
#undef EXP_FLOOR
#undef EXP_SUB_SHIFT
#undef EXP_SUB_UNSHIFT
#undef INV_FACT
#undef N_FACT
#undef INV_SQRT2
#undef INV_SQRT_2PI

#endif
