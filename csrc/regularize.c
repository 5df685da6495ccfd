/*
 * regularize.c -- weight penalties on Dense kernels (sklearn's MLP L2 scaled
 * by the batch's sample-weight sum; L1 and elastic net on the same scale, as
 * SGDClassifier mixes them) and the Keras MaxNorm constraint, each with one
 * value for every kernel or one per layer (fnn_net.layer_alpha,
 * layer_max_norm).
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>
#include <stdint.h>

#include "internal.h"

int64_t fnn_reduce_chunks(int n_tensors, const int64_t *len)
{
    int64_t n = 0;
    for (int t = 0; t < n_tensors; t++) n += (len[t] + FNN_REDUCE_CHUNK - 1) / FNN_REDUCE_CHUNK;
    return n;
}

/* The penalty strength of tensor t: fnn_list_tensors lists the Dense kernels
 * first (tensor l is W_l); the others, and frozen kernels (constant: their
 * penalty changes nothing, and Keras leaves it out of the loss), are never
 * penalized. */
static double fnn_tensor_alpha(const fnn_net *net, int t)
{
    if (t >= net->n_layers || t < net->frozen_layers)
        return 0.0;
    return net->layer_alpha != NULL ? net->layer_alpha[t] : net->alpha;
}

#define FNN_GENERIC_BODY "regularize.c"
#include "generic.h"

#else /* type-generic body */

/* One chunk of one tensor: with w (a penalized kernel), g += k2 w + k1 sign(w)
 * and sums[0..1] += sum w^2, sum |w|; always sums[2] += sum g^2 (after the
 * update).  Within a chunk each sum runs over FINISH_LANES lanes of REAL
 * (four vectors: independent accumulators hide the add latency; a lane adds
 * at most 256 terms, so float keeps about 1e-5 relative accuracy, as the
 * float32 reference computations do), combined in a fixed order and added
 * to the double `sums`: the result does not depend on the thread count. */
#define FINISH_LANES (256 / (int)sizeof(REAL))
FNN_HOT static void FN(finish_range)(REAL *restrict g, const REAL *restrict w, int64_t n,
                                     REAL k1, REAL k2, double *sums)
{
    REAL sq[FINISH_LANES] = {0}, ab[FINISH_LANES] = {0}, gg[FINISH_LANES] = {0};
    int64_t i = 0;
    if (w != NULL && k1 == 0) { /* L2 (the default): no sign, no |w| */
        for (; i + FINISH_LANES <= n; i += FINISH_LANES)
            for (int k = 0; k < FINISH_LANES; k++) {
                const REAL wi = w[i + k], gi = g[i + k] + k2 * wi;
                g[i + k] = gi;
                sq[k] += wi * wi;
                gg[k] += gi * gi;
            }
    } else if (w != NULL) {
        for (; i + FINISH_LANES <= n; i += FINISH_LANES)
            for (int k = 0; k < FINISH_LANES; k++) {
                const REAL wi = w[i + k];
                const REAL s = (REAL)((wi > 0) - (wi < 0));
                const REAL gi = (g[i + k] + k2 * wi) + k1 * s;
                g[i + k] = gi;
                sq[k] += wi * wi;
                ab[k] += wi < 0 ? -wi : wi;
                gg[k] += gi * gi;
            }
    } else {
        for (; i + FINISH_LANES <= n; i += FINISH_LANES)
            for (int k = 0; k < FINISH_LANES; k++) gg[k] += g[i + k] * g[i + k];
    }
    double tsq = 0, tab = 0, tgg = 0; /* the tail, then the lanes pairwise */
    for (; i < n; i++) {
        REAL gi = g[i];
        if (w != NULL) {
            const REAL wi = w[i];
            const REAL s = (REAL)((wi > 0) - (wi < 0));
            gi = (gi + k2 * wi) + k1 * s;
            g[i] = gi;
            tsq += (double)wi * wi;
            tab += wi < 0 ? -(double)wi : (double)wi;
        }
        tgg += (double)gi * gi;
    }
    for (int h = FINISH_LANES / 2; h >= 1; h /= 2)
        for (int k = 0; k < h; k++) {
            sq[k] += sq[k + h];
            ab[k] += ab[k + h];
            gg[k] += gg[k + h];
        }
    sums[0] += (double)sq[0] + tsq;
    sums[1] += (double)ab[0] + tab;
    sums[2] += (double)gg[0] + tgg;
}
#undef FINISH_LANES

/* finish_range on every chunk (each tensor cut into FNN_REDUCE_CHUNK-element
 * pieces, so chunks never straddle tensors) that starts in [r0, r1) of the
 * flat parameter vector; chunk q's sums go to part[3q .. 3q + 2].  Tensor t's
 * gradient factors are alpha_t * scale * (l1, l2). */
static void FN(finish_chunks)(const fnn_net *net, const REAL *params, REAL *grad,
                              int n_tensors, const int64_t *off, const int64_t *len,
                              double scale, double l1, double l2, int64_t r0, int64_t r1,
                              double *part)
{
    int64_t q = 0;
    for (int t = 0; t < n_tensors; t++) {
        const double alpha = fnn_tensor_alpha(net, t), k = alpha * scale;
        const int penalized = alpha != 0;
        const REAL k1 = (REAL)(k * l1), k2 = (REAL)(k * l2);
        const int frozen = net->frozen_layers > 0 && fnn_tensor_frozen(net, off[t]);
        for (int64_t i0 = 0; i0 < len[t]; i0 += FNN_REDUCE_CHUNK, q++) {
            const int64_t start = off[t] + i0;
            if (start < r0 || start >= r1)
                continue;
            double *cs = part + 3 * q;
            cs[0] = cs[1] = cs[2] = 0;
            if (frozen)
                continue; /* a zero gradient, never read */
            FN(finish_range)(grad + start, penalized ? params + start : NULL,
                             len[t] - i0 < FNN_REDUCE_CHUNK ? len[t] - i0 : FNN_REDUCE_CHUNK,
                             k1, k2, cs);
        }
    }
}

FNN_HOT double FN(fnn_penalty_norms)(const fnn_net *net, const REAL *params, REAL *grad,
                                     double scale, int n_tensors, const int64_t *off,
                                     const int64_t *len, double *sq, double *part, int nt)
{
    /* value = alpha * scale * (l1 * |W|_1 + (1 - l1) / 2 * |W|^2);
     * gradient = alpha * scale * (l1 * sign(W) + (1 - l1) * W) */
    double l1 = net->penalty == FNN_PENALTY_L1          ? 1.0
                : net->penalty == FNN_PENALTY_ELASTICNET ? net->l1_ratio
                                                         : 0.0;
    double l2 = 1.0 - l1;
    const int per_layer = net->layer_alpha != NULL;
    double k = net->alpha * scale;
    /* A chunk runs on the thread whose update range (fnn_element_range, as
     * in fnn_optim_step) holds its start: the update then finds the
     * gradient, and the penalty's parameters, in its own cache.  (No if()
     * clause: a false one still builds a team, see FNN_PAR_FOR.) */
#ifdef _OPENMP
    const int64_t n = net->n_params;
    if (nt > 1 && n > FNN_OMP_MIN_WORK && fnn_parallel_allowed()) {
#pragma omp parallel num_threads(nt)
        {
            const int th = omp_get_thread_num(), n_th = omp_get_num_threads();
            int64_t r0, r1;
            fnn_element_range(n, th, n_th, &r0, &r1);
            FN(finish_chunks)(net, params, grad, n_tensors, off, len, scale, l1, l2,
                              th == 0 ? INT64_MIN : r0, th == n_th - 1 ? INT64_MAX : r1, part);
        }
    } else
#endif
        FN(finish_chunks)(net, params, grad, n_tensors, off, len, scale, l1, l2, INT64_MIN,
                          INT64_MAX, part);
    /* Sums in chunk order, whichever thread computed each chunk. */
    double sum_sq = 0, sum_abs = 0, value = 0;
    int64_t q = 0;
    for (int t = 0; t < n_tensors; t++) {
        sq[t] = 0;
        double t_sq = 0, t_abs = 0;
        for (int64_t i0 = 0; i0 < len[t]; i0 += FNN_REDUCE_CHUNK, q++) {
            sum_sq += part[3 * q];
            sum_abs += part[3 * q + 1];
            t_sq += part[3 * q];
            t_abs += part[3 * q + 1];
            sq[t] += part[3 * q + 2];
        }
        if ((per_layer || net->frozen_layers > 0) && fnn_tensor_alpha(net, t) != 0)
            value += fnn_tensor_alpha(net, t) * scale * (l1 * t_abs + 0.5 * l2 * t_sq);
    }
    if (per_layer || net->frozen_layers > 0)
        return value;
    return net->alpha == 0 ? 0.0 : k * (l1 * sum_abs + 0.5 * l2 * sum_sq);
}

FNN_HOT void FN(fnn_apply_max_norm)(const fnn_net *net, REAL *params, int nt)
{
    if (net->layer_max_norm == NULL && !(net->max_norm > 0))
        return;
    for (int l = net->frozen_layers; l < net->n_layers; l++) {
        const double r = net->layer_max_norm != NULL ? net->layer_max_norm[l] : net->max_norm;
        if (!(r > 0))
            continue; /* this layer is unconstrained */
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
