/*
 * dgemm_kernels.c -- the core's own double-precision product C = op(A) B
 * with B not transposed, in AVX2/FMA registers, reading both operands in
 * place: the float64 counterpart of sgemm_kernels.c (same reasons, same
 * tiles, same walk), for the products where it beats BLAS (dense.c says
 * which).
 *
 * Tiles of 8 rows x up to 3 vectors of 8 columns in AVX-512 (tile_avx512.h)
 * or of 4 rows x up to 3 vectors of 4 columns in AVX2 (tile_avx2.h), shared
 * with the float kernels.
 *
 * Every element of C is one fused multiply-add chain over k in order, then
 * alpha and beta: its value does not depend on the tile or thread that
 * computes it, so any partition of C gives bitwise-identical results.
 */
#include <stdint.h>

#include "internal.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FNN_NO_SGEMM_KERNELS)
#include <immintrin.h>

#define TW_REAL double
#define TW_REAL_IS_DOUBLE
#define TW_NAME dgemm_tiles
#include "tile_avx512.h"
#include "tile_avx2.h"
#include "tile_walk.h"

/* AVX-512: C in tiles of 8 x 24, not blocked over k (as the float kernel);
 * AVX2: tiles of 4 x 12, a forward product's long k in blocks of 64 rows
 * (tile_walk.h). */
void fnn_dgemm_kernel(int kind, int trans_a, int64_t m, int64_t n, int64_t k, double alpha,
                      const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                      double *c, int64_t ldc)
{
    if (kind == FNN_SGEMM_AVX512)
        dgemm_tiles(tile_avx512_any, tile_avx512_any, 8, 8, 0, trans_a, m, n, k, alpha, a, lda, b,
                    ldb, beta, c, ldc);
    else if (kind == FNN_SGEMM_AVX2)
        dgemm_tiles(tile_avx2_any, tile_avx2_lead, 4, 4, 64, trans_a, m, n, k, alpha, a, lda, b,
                    ldb, beta, c, ldc);
}

#else /* no kernels in this build */

void fnn_dgemm_kernel(int kind, int trans_a, int64_t m, int64_t n, int64_t k, double alpha,
                      const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                      double *c, int64_t ldc)
{
    (void)kind, (void)trans_a, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda;
    (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
}

#endif
