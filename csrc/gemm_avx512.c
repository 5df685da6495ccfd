/*
 * gemm_avx512.c -- single-precision products C = op(A) B with B not
 * transposed (every Dense forward product X W and weight gradient X^T dZ),
 * in AVX-512 registers, reading both operands in place.
 *
 * Why not BLAS: at batch 32 OpenBLAS repacks the whole weight matrix on
 * every call (for the chapter network's 784 x 300 kernel that is as much
 * memory traffic as the product reads), and a product split into column
 * blocks across threads packs the small operand once per block.  Both
 * operands are read here where they lie: B one row segment per k, op(A) one
 * scalar per row and k, broadcast.  Measured on one Zen 4 core: the chapter
 * network's 32 x 784 x 300 forward product at 111 GFLOP/s (OpenBLAS 69) and
 * its weight gradient at 105 (OpenBLAS 82); the wide workload's 512-row
 * products at 97-106 (OpenBLAS 99-101); predict's 1024-row chunks at 109
 * (OpenBLAS 100).  Transposed-B products (input gradients dZ W^T) stay in
 * BLAS.
 *
 * Every element of C is one fused multiply-add chain over k in order, then
 * alpha and beta: its value does not depend on the tile or thread that
 * computes it, so any partition of C gives bitwise-identical results.
 */
#include <stdint.h>

#include "internal.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FNN_NO_AVX512_GEMM)
#include <immintrin.h>

#define FNN_TARGET_AVX512 __attribute__((target("avx512f")))

int fnn_sgemm_kernel_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
}

/* A tile of `rows` (1..8) rows of C by nv (1..3) vectors of 16 columns, the
 * last vector masked by `tail`.  rows and nv are constants after inlining,
 * so the accumulators stay in registers (at most 24 of the 32). */
static inline __attribute__((always_inline)) FNN_TARGET_AVX512 void
tile(const int rows, const int nv, __mmask16 tail, int64_t k, float alpha,
     const float *a, int64_t sr, int64_t sk, const float *b, int64_t ldb, float beta,
     float *c, int64_t ldc)
{
    __m512 acc[8][3];
    __mmask16 mask[3];
    for (int v = 0; v < 3; v++) mask[v] = v < nv - 1 ? (__mmask16)0xFFFF : tail;
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        const float *bp = b + p * ldb, *ap = a + p * sk;
        __m512 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) bv[v] = _mm512_maskz_loadu_ps(mask[v], bp + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++) {
            const __m512 ar = _mm512_set1_ps(ap[r * sr]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
    const __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            float *cp = c + r * ldc + 16 * v;
            __m512 out = alpha == 1 ? acc[r][v] : _mm512_mul_ps(al, acc[r][v]);
            if (beta != 0)
                out = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(mask[v], cp), out);
            _mm512_mask_storeu_ps(cp, mask[v], out);
        }
}

/* One tile with its shape picked at run time among the 24 compiled ones. */
static FNN_TARGET_AVX512 void tile_any(int rows, int nv, __mmask16 tail, int64_t k,
                                       float alpha, const float *a, int64_t sr, int64_t sk,
                                       const float *b, int64_t ldb, float beta, float *c,
                                       int64_t ldc)
{
#define FNN_TILE(R, V) tile(R, V, tail, k, alpha, a, sr, sk, b, ldb, beta, c, ldc)
#define FNN_TILE_ROWS(R)       \
    case R:                    \
        if (nv == 3)           \
            FNN_TILE(R, 3);    \
        else if (nv == 2)      \
            FNN_TILE(R, 2);    \
        else                   \
            FNN_TILE(R, 1);    \
        break;
    switch (rows) {
        FNN_TILE_ROWS(8)
        FNN_TILE_ROWS(7)
        FNN_TILE_ROWS(6)
        FNN_TILE_ROWS(5)
        FNN_TILE_ROWS(4)
        FNN_TILE_ROWS(3)
        FNN_TILE_ROWS(2)
        FNN_TILE_ROWS(1)
    default:
        break;
    }
#undef FNN_TILE_ROWS
#undef FNN_TILE
}

FNN_TARGET_AVX512 void fnn_sgemm_avx512(int trans_a, int64_t m, int64_t n, int64_t k,
                                        float alpha, const float *a, int64_t lda,
                                        const float *b, int64_t ldb, float beta, float *c,
                                        int64_t ldc)
{
    /* Element (r, p) of op(A) is a[r * sr + p * sk]. */
    const int64_t sr = trans_a ? 1 : lda, sk = trans_a ? lda : 1;
    /* Keep the smaller operand cache-resident and stream the larger once:
     * panels of B outermost when B is the larger (the forward product's
     * weights), row tiles of A outermost otherwise (the weight gradient's
     * inputs). */
    const int panels_outer = k * n >= m * k;
    const int64_t n_panels = (n + 47) / 48, n_tiles = (m + 7) / 8;
    const int64_t outer = panels_outer ? n_panels : n_tiles;
    const int64_t inner = panels_outer ? n_tiles : n_panels;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            const int64_t pj = panels_outer ? o : q, ti = panels_outer ? q : o;
            const int64_t j0 = 48 * pj, i0 = 8 * ti;
            const int64_t width = n - j0 < 48 ? n - j0 : 48;
            const int rows = (int)(m - i0 < 8 ? m - i0 : 8);
            const int nv = (int)((width + 15) / 16);
            const int last = (int)(width - 16 * (nv - 1));
            const __mmask16 tail = (__mmask16)((1u << last) - 1u);
            tile_any(rows, nv, tail, k, alpha, a + i0 * sr, sr, sk, b + j0, ldb, beta,
                     c + i0 * ldc + j0, ldc);
        }
}

#else /* no AVX-512 code path in this build */

int fnn_sgemm_kernel_available(void) { return 0; }

void fnn_sgemm_avx512(int trans_a, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc)
{
    (void)trans_a, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b;
    (void)ldb, (void)beta, (void)c, (void)ldc;
}

#endif
