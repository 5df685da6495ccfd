/*
 * clip.c -- gradient norms and clipping with Keras 3 semantics
 * (base_optimizer): clipvalue element-wise, clipnorm per tensor,
 * global_clipnorm over all trainable tensors together.
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define FNN_GENERIC_BODY "clip.c"
#include "generic.h"

#else /* type-generic body */

/* Sum of squares of x[0..n) in double over 8 interleaved lanes: the lanes
 * vectorize, and the combination order is fixed (deterministic). */
FNN_HOT static double FN(sum_squares_range)(const REAL *x, int64_t n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)x[i + k] * x[i + k];
    double tail = 0;
    for (; i < n; i++) tail += (double)x[i] * x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) +
           tail;
}

double FN(fnn_sum_squares)(const REAL *x, int64_t n, int nt)
{
    int64_t n_chunks = (n + FNN_REDUCE_CHUNK - 1) / FNN_REDUCE_CHUNK;
    if (n_chunks <= 1)
        return FN(sum_squares_range)(x, n);
    double stack_part[64];
    double *part = n_chunks <= 64 ? stack_part : malloc((size_t)n_chunks * sizeof(double));
    if (part == NULL) { /* same chunked sum, serially */
        double s = 0;
        for (int64_t c = 0; c < n_chunks; c++) {
            int64_t i0 = c * FNN_REDUCE_CHUNK, i1 = i0 + FNN_REDUCE_CHUNK < n ? i0 + FNN_REDUCE_CHUNK : n;
            s += FN(sum_squares_range)(x + i0, i1 - i0);
        }
        return s;
    }
    FNN_PAR_FOR(nt, n, int64_t c = 0; c < n_chunks; c++, {
        int64_t i0 = c * FNN_REDUCE_CHUNK, i1 = i0 + FNN_REDUCE_CHUNK < n ? i0 + FNN_REDUCE_CHUNK : n;
        part[c] = FN(sum_squares_range)(x + i0, i1 - i0);
    });
    double s = 0;
    for (int64_t c = 0; c < n_chunks; c++) s += part[c];
    if (part != stack_part)
        free(part);
    return s;
}

FNN_HOT static void FN(scale_tensor)(REAL *g, int64_t n, double factor, int nt)
{
    const REAL f = (REAL)factor;
    FNN_PAR_FOR(nt, n, int64_t i = 0; i < n; i++, g[i] *= f;);
}

FNN_HOT void FN(fnn_clip_gradients)(const fnn_net *net, REAL *grad, const double *sq_norms,
                            int n_tensors, const int64_t *off, const int64_t *len, int nt)
{
    const double c = net->clip_value;
    switch (net->clip) {
    case FNN_CLIP_VALUE:
        for (int t = 0; t < n_tensors; t++) {
            REAL *g = grad + off[t];
            const REAL lo = (REAL)-c, hi = (REAL)c;
            int64_t n = len[t];
            FNN_PAR_FOR(nt, n, int64_t i = 0; i < n; i++, g[i] = g[i] < lo ? lo : (g[i] > hi ? hi : g[i]););
        }
        break;
    case FNN_CLIP_NORM:
        /* g <- g c / max(||g||, c): unchanged when the norm is within c. */
        for (int t = 0; t < n_tensors; t++) {
            double norm = sqrt(sq_norms[t]);
            if (norm > c)
                FN(scale_tensor)(grad + off[t], len[t], c / norm, nt);
        }
        break;
    case FNN_CLIP_GLOBAL_NORM: {
        double total = 0;
        for (int t = 0; t < n_tensors; t++) total += sq_norms[t];
        double norm = sqrt(total);
        if (norm > c)
            for (int t = 0; t < n_tensors; t++)
                FN(scale_tensor)(grad + off[t], len[t], c / norm, nt);
        break;
    }
    default:
        break;
    }
}

#endif
