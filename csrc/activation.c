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

#include "internal.h"

#define SELU_LAMBDA 1.0507009873554804934193349852946
#define SELU_ALPHA 1.6732632423543772848170429916717

#define FNN_GENERIC_BODY "activation.c"
#include "generic.h"

#else /* type-generic body */

static inline REAL FN(sigmoid)(REAL x)
{
    /* Split on the sign so exp never overflows. */
    if (x >= 0) {
        REAL e = (REAL)exp(-x);
        return 1 / (1 + e);
    }
    REAL e = (REAL)exp(x);
    return e / (1 + e);
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
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) out[i] = FN(sigmoid)(pre[i]);
        break;
    case FNN_ACT_TANH:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) out[i] = (REAL)tanh(pre[i]);
        break;
    case FNN_ACT_RELU:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) out[i] = pre[i] > 0 ? pre[i] : 0;
        break;
    case FNN_ACT_LEAKY_RELU:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) out[i] = pre[i] > 0 ? pre[i] : s * pre[i];
        break;
    case FNN_ACT_ELU:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) out[i] = pre[i] > 0 ? pre[i] : (REAL)expm1(pre[i]);
        break;
    case FNN_ACT_SELU:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++)
            out[i] = (REAL)(pre[i] > 0 ? SELU_LAMBDA * pre[i]
                                       : SELU_LAMBDA * SELU_ALPHA * expm1(pre[i]));
        break;
    case FNN_ACT_SWISH:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) out[i] = pre[i] * FN(sigmoid)(pre[i]);
        break;
    case FNN_ACT_EXP:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) out[i] = (REAL)exp(pre[i]);
        break;
    case FNN_ACT_SOFTMAX:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t r = 0; r < rows; r++) {
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
        }
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
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) dpre[i] = dout[i] * out[i] * (1 - out[i]);
        break;
    case FNN_ACT_TANH:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) dpre[i] = dout[i] * (1 - out[i] * out[i]);
        break;
    case FNN_ACT_RELU:
        /* As sklearn: zero gradient where the output is 0 (pre <= 0). */
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) dpre[i] = pre[i] > 0 ? dout[i] : 0;
        break;
    case FNN_ACT_LEAKY_RELU:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) dpre[i] = pre[i] > 0 ? dout[i] : s * dout[i];
        break;
    case FNN_ACT_ELU:
        /* d/dx (e^x - 1) = e^x = out + 1 */
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) dpre[i] = pre[i] > 0 ? dout[i] : dout[i] * (out[i] + 1);
        break;
    case FNN_ACT_SELU:
        /* d/dx lambda alpha (e^x - 1) = out + lambda alpha */
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++)
            dpre[i] = pre[i] > 0 ? (REAL)(SELU_LAMBDA * dout[i])
                                 : (REAL)(dout[i] * (out[i] + SELU_LAMBDA * SELU_ALPHA));
        break;
    case FNN_ACT_SWISH:
        /* d/dx x sig(x) = sig(x) (1 + x (1 - sig(x))) */
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) {
            REAL sg = FN(sigmoid)(pre[i]);
            dpre[i] = dout[i] * sg * (1 + pre[i] * (1 - sg));
        }
        break;
    case FNN_ACT_EXP:
        FNN_PARALLEL_FOR(nt, n)
        for (int64_t i = 0; i < n; i++) dpre[i] = dout[i] * out[i];
        break;
    default:
        break;
    }
}

#endif
