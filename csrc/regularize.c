/*
 * regularize.c -- weight penalties on Dense kernels (sklearn's MLP L2 scaled
 * by the batch's sample-weight sum; L1 and elastic net on the same scale, as
 * SGDClassifier mixes them) and the Keras MaxNorm constraint.
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>

#include "internal.h"

#define FNN_GENERIC_BODY "regularize.c"
#include "generic.h"

#else /* type-generic body */

FNN_HOT double FN(fnn_penalty)(const fnn_net *net, const REAL *params, REAL *grad, double scale,
                       int nt)
{
    if (net->alpha == 0)
        return 0.0;
    /* value = alpha * scale * (l1 * |W|_1 + (1 - l1) / 2 * |W|^2);
     * gradient = alpha * scale * (l1 * sign(W) + (1 - l1) * W) */
    double l1 = net->penalty == FNN_PENALTY_L1          ? 1.0
                : net->penalty == FNN_PENALTY_ELASTICNET ? net->l1_ratio
                                                         : 0.0;
    double l2 = 1.0 - l1;
    double k = net->alpha * scale;
    const REAL k1 = (REAL)(k * l1), k2 = (REAL)(k * l2);
    double sum_abs = 0, sum_sq = 0;
    for (int l = 0; l < net->n_layers; l++) {
        const REAL *w = params + net->w_off[l];
        REAL *g = grad + net->w_off[l];
        int64_t n = net->units[l] * net->units[l + 1];
        if (l2 > 0) {
            sum_sq += FN(fnn_sum_squares)(w, n, nt);
            FNN_PAR_FOR(nt, n, int64_t i = 0; i < n; i++, g[i] += k2 * w[i];);
        }
        if (l1 > 0) {
            double sa = 0;
            for (int64_t i = 0; i < n; i++) sa += fabs((double)w[i]);
            sum_abs += sa;
            FNN_PAR_FOR(nt, n, int64_t i = 0; i < n; i++, g[i] += w[i] > 0 ? k1 : (w[i] < 0 ? -k1 : 0););
        }
    }
    return k * (l1 * sum_abs + 0.5 * l2 * sum_sq);
}

FNN_HOT void FN(fnn_apply_max_norm)(const fnn_net *net, REAL *params, int nt)
{
    if (!(net->max_norm > 0))
        return;
    const double r = net->max_norm;
    for (int l = 0; l < net->n_layers; l++) {
        REAL *w = params + net->w_off[l];
        const int64_t n_in = net->units[l], n_out = net->units[l + 1];
        int64_t work = n_in * n_out;
        /* Each output unit j owns column j: w[:, j] *= min(norm, r) / (1e-7 + norm)
         * (Keras MaxNorm, axis=0, epsilon = backend.epsilon()). */
        FNN_PAR_FOR(nt, work, int64_t j = 0; j < n_out; j++, {
            double s = 0;
            for (int64_t i = 0; i < n_in; i++) s += (double)w[i * n_out + j] * w[i * n_out + j];
            double norm = sqrt(s);
            double desired = norm < r ? norm : r;
            REAL f = (REAL)(desired / (1e-7 + norm));
            for (int64_t i = 0; i < n_in; i++) w[i * n_out + j] *= f;
        });
    }
}

#endif
