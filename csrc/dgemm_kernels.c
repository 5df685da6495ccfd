/*
 * dgemm_kernels.c -- the core's own double-precision product C = op(A) B
 * with B not transposed, in AVX2/FMA registers, reading both operands in
 * place: the float64 counterpart of sgemm_kernels.c (same reasons, same
 * tile walk), for the products where it beats BLAS (dense.c says which).
 *
 * Tiles of 4 rows x up to 3 vectors of 4 columns: 12 accumulators, 3 B
 * vectors and a broadcast of op(A) fill the 16 AVX2 registers.
 *
 * Every element of C is one fused multiply-add chain over k in order, then
 * alpha and beta: its value does not depend on the tile or thread that
 * computes it, so any partition of C gives bitwise-identical results.
 */
#include <stdint.h>

#include "internal.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FNN_NO_SGEMM_KERNELS)
#include <immintrin.h>

#define FNN_TARGET_AVX2 __attribute__((target("avx2,fma")))

/* A tile of `rows` (1..4) rows of C by nv (1..3) vectors of 4 columns, the
 * last vector holding `last` columns; rows, nv and full (last == 4) are
 * constants after inlining, so the accumulators stay in registers and full
 * tiles use plain loads and stores: AMD's masked stores are microcoded, and
 * twelve of them per 4 x 12 tile halved the rate of the 784 x 300 x 32
 * weight gradient. */
static inline __attribute__((always_inline)) FNN_TARGET_AVX2 void
tile_avx2(const int rows, const int nv, const int full, int last, int64_t k, double alpha,
          const double *a, int64_t sr, int64_t sk, const double *b, int64_t ldb, double beta,
          double *c, int64_t ldc, const double *part_in, double *part_out)
{
    __m256d acc[4][3];
    __m256i mask[3];
    const __m256i tail =
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(last), _mm256_setr_epi64x(0, 1, 2, 3));
    for (int v = 0; v < 3; v++) mask[v] = v < nv - 1 ? _mm256_set1_epi64x(-1) : tail;
#pragma GCC unroll 4
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            acc[r][v] = part_in != NULL ? _mm256_loadu_pd(part_in + 12 * r + 4 * v)
                                        : _mm256_setzero_pd();
    for (int64_t p = 0; p < k; p++) {
        const double *bp = b + p * ldb, *ap = a + p * sk;
        __m256d bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            bv[v] = full || v < nv - 1 ? _mm256_loadu_pd(bp + 4 * v)
                                       : _mm256_maskload_pd(bp + 4 * v, mask[v]);
#pragma GCC unroll 4
        for (int r = 0; r < rows; r++) {
            const __m256d ar = _mm256_broadcast_sd(ap + r * sr);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[r][v] = _mm256_fmadd_pd(ar, bv[v], acc[r][v]);
        }
    }
    if (part_out != NULL) { /* a partial sum over k, continued by the next call */
#pragma GCC unroll 4
        for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) _mm256_storeu_pd(part_out + 12 * r + 4 * v, acc[r][v]);
        return;
    }
    const __m256d al = _mm256_set1_pd(alpha), be = _mm256_set1_pd(beta);
#pragma GCC unroll 4
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            double *cp = c + r * ldc + 4 * v;
            __m256d out = alpha == 1 ? acc[r][v] : _mm256_mul_pd(al, acc[r][v]);
            if (full || v < nv - 1) {
                if (beta != 0)
                    out = _mm256_fmadd_pd(be, _mm256_loadu_pd(cp), out);
                _mm256_storeu_pd(cp, out);
            } else {
                if (beta != 0)
                    out = _mm256_fmadd_pd(be, _mm256_maskload_pd(cp, mask[v]), out);
                _mm256_maskstore_pd(cp, mask[v], out);
            }
        }
}

#define FNN_TILE_NV(R, F)                                                            \
    if (nv == 3)                                                                     \
        tile_avx2(R, 3, F, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout);         \
    else if (nv == 2)                                                                \
        tile_avx2(R, 2, F, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout);         \
    else                                                                             \
        tile_avx2(R, 1, F, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout);
#define FNN_TILE_CASE(R)                                                             \
    case R:                                                                          \
        if (last == 4) {                                                             \
            FNN_TILE_NV(R, 1)                                                        \
        } else {                                                                     \
            FNN_TILE_NV(R, 0)                                                        \
        }                                                                            \
        break;
static FNN_TARGET_AVX2 void tile_avx2_any(int rows, int nv, int last, int64_t k, double alpha,
                                          const double *a, int64_t sr, int64_t sk,
                                          const double *b, int64_t ldb, double beta, double *c,
                                          int64_t ldc, const double *pin, double *pout)
{
    switch (rows) {
        FNN_TILE_CASE(4)
        FNN_TILE_CASE(3)
        FNN_TILE_CASE(2)
        FNN_TILE_CASE(1)
    default:
        break;
    }
}
#undef FNN_TILE_CASE
#undef FNN_TILE_NV

typedef void (*tile_fn)(int rows, int nv, int last, int64_t k, double alpha, const double *a,
                        int64_t sr, int64_t sk, const double *b, int64_t ldb, double beta,
                        double *c, int64_t ldc, const double *pin, double *pout);
#define TW_REAL double
#define TW_NAME dgemm_tiles
#include "tile_walk.h"

/* C in tiles of 4 x 12, a forward product's long k in blocks of 64 rows
 * (tile_walk.h). */
void fnn_dgemm_kernel(int trans_a, int64_t m, int64_t n, int64_t k, double alpha,
                      const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                      double *c, int64_t ldc)
{
    dgemm_tiles(tile_avx2_any, 4, 4, 64, trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#else /* no kernels in this build */

void fnn_dgemm_kernel(int trans_a, int64_t m, int64_t n, int64_t k, double alpha,
                      const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                      double *c, int64_t ldc)
{
    (void)trans_a, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda;
    (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
}

#endif
