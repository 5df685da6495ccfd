/*
 * sgemm_kernels.c -- the core's own single-precision products C = op(A) B
 * with B not transposed (the Dense forward product X W and weight gradient
 * X^T dZ), in AVX-512 or AVX2 registers, reading both operands in place.
 *
 * Why not BLAS: at batch 32 OpenBLAS repacks the whole weight matrix on
 * every call (for the chapter network's 784 x 300 kernel that is as much
 * memory traffic as the product reads), and a product split into column
 * blocks across threads packs the small operand once per block.  Both
 * operands are read here where they lie: B one row segment per k, op(A) one
 * scalar per row and k, broadcast.
 *
 * AVX-512 (8-row x 48-column tiles), measured on one Zen 4 core: the
 * chapter network's 32 x 784 x 300 forward product at 111 GFLOP/s
 * (OpenBLAS 69) and its weight gradient at 105 (OpenBLAS 82); the wide
 * workload's 512-row products at 97-106 (OpenBLAS 99-101); predict's
 * 1024-row chunks at 109 (OpenBLAS 100).  On one Sapphire Rapids core the
 * chapter products run at 169-185 GFLOP/s (OpenBLAS 107-194), but products
 * whose weights outgrow L2 at 60-90 (OpenBLAS 195): those stay in BLAS.
 *
 * AVX2 (4-row x 24-column tiles, for CPUs without AVX-512), measured on
 * Zen 4 against OpenBLAS's Haswell kernels: the chapter network's forward
 * products at 93 and 83 GFLOP/s (OpenBLAS 53 and 51), its weight gradient
 * at 60 (OpenBLAS 74), large products at 37-65 (OpenBLAS 81-98).  On Zen 3,
 * after full tiles stopped using masked loads and stores and long forward
 * products were blocked over k (sgemm_tiles), the weight gradient of a
 * 32-row batch takes 0.86-0.99 of OpenBLAS's time (1.5-1.65 before) and the
 * forward products 0.61-0.67 (0.81-0.87 before).  dense.c's own_kernel_for
 * has the rules, per instruction set: forward products of few rows, weight
 * gradients of small batches and narrow products; the rest stay in BLAS.
 *
 * Every element of C is one fused multiply-add chain over k in order, then
 * alpha and beta: its value does not depend on the tile or thread that
 * computes it, so any partition of C gives bitwise-identical results.
 */
#include <stdint.h>

#include "internal.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FNN_NO_SGEMM_KERNELS)
#include <immintrin.h>

int fnn_sgemm_kernel_available(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return FNN_SGEMM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FNN_SGEMM_AVX2;
    return FNN_SGEMM_OFF;
}

/* Tiles of 8 rows x 3 vectors of 16 columns (tile_avx512.h) and of 4 rows x
 * 3 vectors of 8 columns for CPUs without AVX-512 (tile_avx2.h), both shared
 * with the double kernel. */
#define TW_REAL float
#include "tile_avx512.h"
#include "tile_avx2.h"
#define TW_NAME sgemm_tiles
#include "tile_walk.h"

void fnn_sgemm_kernel(int kind, int trans_a, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc)
{
    if (kind == FNN_SGEMM_AVX512)
        sgemm_tiles(tile_avx512_any, tile_avx512_any, 8, 16, 0, trans_a, m, n, k, alpha, a, lda, b,
                    ldb, beta, c, ldc);
    else if (kind == FNN_SGEMM_AVX2)
        sgemm_tiles(tile_avx2_any, tile_avx2_lead, 4, 8, 64, trans_a, m, n, k, alpha, a, lda, b,
                    ldb, beta, c, ldc);
}

#else /* no kernels in this build */

int fnn_sgemm_kernel_available(void) { return FNN_SGEMM_OFF; }

void fnn_sgemm_kernel(int kind, int trans_a, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc)
{
    (void)kind, (void)trans_a, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda;
    (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
}

#endif
