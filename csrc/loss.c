/*
 * loss.c -- the output losses (sklearn's definitions, so loss_curve_ matches
 * sklearn) and their gradient w.r.t. the output pre-activation.
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>

#include "internal.h"

#define FNN_GENERIC_BODY "loss.c"
#include "generic.h"

#else /* type-generic body */

/* y log(x), 0 when y == 0 (scipy.special.xlogy) */
static inline double FN(xlogy)(double y, double x) { return y == 0 ? 0.0 : y * log(x); }

double FN(fnn_loss_sum)(int loss, const REAL *p, const REAL *y, const REAL *sw,
                        int64_t rows, int64_t n_out, double *rowbuf, int nt)
{
    /* sklearn clips probabilities to [eps, 1 - eps] of the dtype. */
    const double lo = REAL_EPS, hi = 1.0 - REAL_EPS;
    int64_t work = rows * n_out;
    FNN_PAR_FOR(nt, work, int64_t i = 0; i < rows; i++, {
        const REAL *pi = p + i * n_out, *yi = y + i * n_out;
        double l = 0;
        for (int64_t j = 0; j < n_out; j++) {
            double pj = pi[j], yj = yi[j];
            switch ((fnn_loss)loss) {
            case FNN_LOSS_SQUARED:
                l += 0.5 * (yj - pj) * (yj - pj);
                break;
            case FNN_LOSS_LOG:
                pj = pj < lo ? lo : (pj > hi ? hi : pj);
                l -= FN(xlogy)(yj, pj);
                break;
            case FNN_LOSS_BINARY_LOG:
                pj = pj < lo ? lo : (pj > hi ? hi : pj);
                l -= FN(xlogy)(yj, pj) + FN(xlogy)(1 - yj, 1 - pj);
                break;
            case FNN_LOSS_POISSON:
                l += FN(xlogy)(yj, yj / pj) - yj + pj;
                break;
            default: /* no return from inside a parallel loop */
                l = NAN;
                break;
            }
        }
        rowbuf[i] = sw != NULL ? l * sw[i] : l;
    });
    /* Summed in row order: the same result for any thread count. */
    double total = 0;
    for (int64_t i = 0; i < rows; i++) total += rowbuf[i];
    return total;
}

FNN_HOT void FN(fnn_output_delta)(REAL *delta, const REAL *p, const REAL *y, const REAL *sw,
                          double scale, int64_t rows, int64_t n_out, int nt)
{
    int64_t work = rows * n_out;
    FNN_PAR_FOR(nt, work, int64_t i = 0; i < rows; i++, {
        REAL f = (REAL)(sw != NULL ? sw[i] * scale : scale);
        for (int64_t j = 0; j < n_out; j++)
            delta[i * n_out + j] = (p[i * n_out + j] - y[i * n_out + j]) * f;
    });
}

#endif
