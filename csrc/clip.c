/*
 * clip.c -- gradient clipping with Keras 3 semantics
 * (base_optimizer): clipvalue element-wise, clipnorm per tensor,
 * global_clipnorm over all trainable tensors together.
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>

#include "internal.h"

#define FNN_GENERIC_BODY "clip.c"
#include "generic.h"

#else /* type-generic body */

FNN_HOT static void FN(scale_tensor)(REAL *g, int64_t n, double factor, int nt)
{
    const REAL f = (REAL)factor;
    FNN_PAR_ELEMENTS(nt, n, i, g[i] *= f;);
}

FNN_HOT fnn_status FN(fnn_clip_gradients)(const fnn_net *net, REAL *grad,
                                          const double *sq_norms, int n_tensors,
                                          const int64_t *off, const int64_t *len, int nt)
{
    const double c = net->clip_value;
    switch ((fnn_clip)net->clip) {
    case FNN_CLIP_NONE:
        break;
    case FNN_CLIP_VALUE:
        for (int t = 0; t < n_tensors; t++) {
            if (net->frozen_layers > 0 && fnn_tensor_frozen(net, off[t]))
                continue; /* zero, and never read */
            REAL *g = grad + off[t];
            const REAL lo = (REAL)-c, hi = (REAL)c;
            int64_t n = len[t];
            FNN_PAR_ELEMENTS(nt, n, i, g[i] = g[i] < lo ? lo : (g[i] > hi ? hi : g[i]););
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
                if (net->frozen_layers == 0 || !fnn_tensor_frozen(net, off[t]))
                    FN(scale_tensor)(grad + off[t], len[t], c / norm, nt);
        break;
    }
    default:
        return FNN_ERR_BADARG;
    }
    return FNN_OK;
}

#endif
