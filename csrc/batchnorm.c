/*
 * batchnorm.c -- BatchNormalization with Keras 3 semantics: biased batch
 * variance, moving = m * moving + (1 - m) * batch, out = gamma xhat + beta.
 * Batch statistics are accumulated in double, per feature, in row order.
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>

#include "internal.h"

#define FNN_GENERIC_BODY "batchnorm.c"
#include "generic.h"

#else /* type-generic body */

FNN_HOT void FN(fnn_bn_forward_train)(REAL *out, REAL *xhat, REAL *istd, double *mean, double *var,
                              const REAL *x, const REAL *gamma, const REAL *beta,
                              int64_t rows, int64_t width, double eps, int nt)
{
    const int64_t block = FNN_COLUMN_BLOCK;
    int64_t n_blocks = (width + block - 1) / block;
    int64_t work = rows * width;
    /* Two passes (mean, then centred squares) for accuracy; features are
     * split in blocks across threads, rows swept in order within a block. */
    FNN_PAR_FOR(nt, work, int64_t bk = 0; bk < n_blocks; bk++, {
        int64_t j0 = bk * block, j1 = j0 + block < width ? j0 + block : width;
        double s[FNN_COLUMN_BLOCK], q[FNN_COLUMN_BLOCK];
        for (int64_t j = j0; j < j1; j++) s[j - j0] = q[j - j0] = 0.0;
        for (int64_t i = 0; i < rows; i++) {
            const REAL *xi = x + i * width;
            for (int64_t j = j0; j < j1; j++) s[j - j0] += xi[j];
        }
        for (int64_t j = j0; j < j1; j++) s[j - j0] /= (double)rows;
        for (int64_t i = 0; i < rows; i++) {
            const REAL *xi = x + i * width;
            for (int64_t j = j0; j < j1; j++) {
                double d = xi[j] - s[j - j0];
                q[j - j0] += d * d;
            }
        }
        for (int64_t j = j0; j < j1; j++) {
            mean[j] = s[j - j0];
            var[j] = q[j - j0] / (double)rows;
            istd[j] = (REAL)(1.0 / sqrt(var[j] + eps));
        }
    });
    FNN_PAR_FOR(nt, work, int64_t i = 0; i < rows; i++, {
        const REAL *xi = x + i * width;
        REAL *hi = xhat + i * width, *oi = out + i * width;
        for (int64_t j = 0; j < width; j++) {
            REAL h = (REAL)((xi[j] - mean[j]) * istd[j]);
            hi[j] = h;
            oi[j] = gamma[j] * h + beta[j];
        }
    });
}

FNN_HOT void FN(fnn_bn_forward_infer)(REAL *out, const REAL *x, const REAL *gamma, const REAL *beta,
                              const REAL *mean, const REAL *var, int64_t rows,
                              int64_t width, double eps, int nt)
{
    int64_t work = rows * width;
    FNN_PAR_FOR(nt, work, int64_t i = 0; i < rows; i++, {
        const REAL *xi = x + i * width;
        REAL *oi = out + i * width;
        for (int64_t j = 0; j < width; j++)
            oi[j] = (REAL)(gamma[j] * (xi[j] - mean[j]) / sqrt((double)var[j] + eps)) + beta[j];
    });
}

void FN(fnn_bn_update_moving)(REAL *moving_mean, REAL *moving_var, const double *mean,
                              const double *var, int64_t width, double momentum)
{
    for (int64_t j = 0; j < width; j++) {
        moving_mean[j] = (REAL)(momentum * moving_mean[j] + (1 - momentum) * mean[j]);
        moving_var[j] = (REAL)(momentum * moving_var[j] + (1 - momentum) * var[j]);
    }
}

FNN_HOT void FN(fnn_bn_backward)(REAL *dx, REAL *dgamma, REAL *dbeta, const REAL *dy,
                         const REAL *xhat, const REAL *istd, const REAL *gamma,
                         int64_t rows, int64_t width, int accumulate, int nt)
{
    const int64_t block = FNN_COLUMN_BLOCK;
    int64_t n_blocks = (width + block - 1) / block;
    int64_t work = rows * width;
    /* dbeta = sum dy; dgamma = sum dy xhat;
     * dx = gamma istd / N (N dy - dbeta - xhat dgamma), computed per block of
     * features after that block's sums, so dx may overwrite dy. */
    FNN_PAR_FOR(nt, work, int64_t bk = 0; bk < n_blocks; bk++, {
        int64_t j0 = bk * block, j1 = j0 + block < width ? j0 + block : width;
        double sb[FNN_COLUMN_BLOCK], sg[FNN_COLUMN_BLOCK];
        for (int64_t j = j0; j < j1; j++) sb[j - j0] = sg[j - j0] = 0.0;
        for (int64_t i = 0; i < rows; i++) {
            const REAL *di = dy + i * width, *hi = xhat + i * width;
            for (int64_t j = j0; j < j1; j++) {
                sb[j - j0] += di[j];
                sg[j - j0] += (double)di[j] * hi[j];
            }
        }
        for (int64_t j = j0; j < j1; j++) {
            dbeta[j] = (REAL)(accumulate ? dbeta[j] + sb[j - j0] : sb[j - j0]);
            dgamma[j] = (REAL)(accumulate ? dgamma[j] + sg[j - j0] : sg[j - j0]);
        }
        if (dx == NULL)
            continue;
        for (int64_t i = 0; i < rows; i++) {
            const REAL *di = dy + i * width, *hi = xhat + i * width;
            REAL *xi = dx + i * width;
            for (int64_t j = j0; j < j1; j++) {
                double k = (double)gamma[j] * istd[j] / (double)rows;
                xi[j] = (REAL)(k * ((double)rows * di[j] - sb[j - j0] - hi[j] * sg[j - j0]));
            }
        }
    });
}

#endif
