/*
 * tile_walk.h -- the walk over C's tiles that the own kernels share
 * (sgemm_kernels.c, dgemm_kernels.c), written once for both element types:
 * define TW_REAL (the type) and TW_NAME (the function's name), then include
 * this file.
 */

/* One tile of C with its shape picked at run time (tile_avx2.h's
 * tile_avx2_any, sgemm_kernels.c's tile_avx512_any). */
typedef void (*tile_fn)(int rows, int nv, int last, int64_t k, TW_REAL alpha, const TW_REAL *a,
                        int64_t sr, int64_t sk, const TW_REAL *b, int64_t ldb, TW_REAL beta,
                        TW_REAL *c, int64_t ldc, const TW_REAL *pin, TW_REAL *pout);

/* C in tiles of tile_rows x (3 vectors of `width` columns).  Keep the
 * smaller operand cache-resident and stream the larger once: panels of B
 * outermost when B is the larger (a forward product's weights), row tiles of
 * A outermost otherwise (a weight gradient's inputs).  With panels outermost
 * and a long k, a panel (k x 3 vectors) is walked in blocks of k_block rows
 * that stay in L1 across a group of up to GROUP row tiles, whose partial
 * sums wait in `part` (each element's sum over k keeps its order: the same
 * bits as one pass).  Measured on Zen 3 (AVX2, one core, float64 kernel):
 * the chapter network's 32 x 784 x 300 forward product went from 1.1-1.6x
 * OpenBLAS's time to 0.86-0.90x with blocks of 64 rows (256: 1.0-1.1x).
 * The group's first tile, `lead`, brings each block in from beyond L1 and
 * may prefetch B's next rows; the others find the block in L1.  AVX2 on Zen
 * 3, the chapter network's forward pass in a fit (float): 128 -> 119 us per
 * step on 2 threads, 214 -> 204 on 1; prefetching in every tile also slowed
 * the backward pass.  The AVX-512 kernel is not blocked (k_block 0): it was
 * measured, and beat OpenBLAS, without. */
static void TW_NAME(tile_fn tile, tile_fn lead, int tile_rows, int width, int64_t k_block,
                    int trans_a, int64_t m, int64_t n, int64_t k, TW_REAL alpha, const TW_REAL *a,
                    int64_t lda, const TW_REAL *b, int64_t ldb, TW_REAL beta, TW_REAL *c,
                    int64_t ldc)
{
    /* Element (r, p) of op(A) is a[r * sr + p * sk]. */
    const int64_t sr = trans_a ? 1 : lda, sk = trans_a ? lda : 1;
    const int64_t panel = 3 * (int64_t)width;
    const int panels_outer = n >= m; /* B (k x n) at least as large as op(A) (m x k) */
    const int64_t n_panels = (n + panel - 1) / panel, n_tiles = (m + tile_rows - 1) / tile_rows;
    if (k_block > 0 && panels_outer && k > k_block) {
        enum { GROUP = 8 };
        TW_REAL part[GROUP * 8 * 48]; /* GROUP tiles of at most 8 rows x 48 columns */
        for (int64_t pj = 0; pj < n_panels; pj++) {
            const int64_t j0 = panel * pj, cols = n - j0 < panel ? n - j0 : panel;
            const int nv = (int)((cols + width - 1) / width);
            const int last = (int)(cols - width * (nv - 1));
            for (int64_t g0 = 0; g0 < n_tiles; g0 += GROUP) {
                const int64_t g1 = g0 + GROUP < n_tiles ? g0 + GROUP : n_tiles;
                for (int64_t p0 = 0; p0 < k; p0 += k_block) {
                    const int64_t kl = k - p0 < k_block ? k - p0 : k_block;
                    for (int64_t ti = g0; ti < g1; ti++) {
                        const int64_t i0 = tile_rows * ti;
                        const int rows = (int)(m - i0 < tile_rows ? m - i0 : tile_rows);
                        TW_REAL *pt = part + (ti - g0) * tile_rows * panel;
                        (ti == g0 ? lead : tile)(rows, nv, last, kl, alpha, a + i0 * sr + p0 * sk,
                                                 sr, sk, b + p0 * ldb + j0, ldb, beta,
                                                 c + i0 * ldc + j0, ldc, p0 > 0 ? pt : NULL,
                                                 p0 + kl < k ? pt : NULL);
                    }
                }
            }
        }
        return;
    }
    const int64_t outer = panels_outer ? n_panels : n_tiles;
    const int64_t inner = panels_outer ? n_tiles : n_panels;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            const int64_t pj = panels_outer ? o : q, ti = panels_outer ? q : o;
            const int64_t j0 = panel * pj, i0 = tile_rows * ti;
            const int64_t cols = n - j0 < panel ? n - j0 : panel;
            const int rows = (int)(m - i0 < tile_rows ? m - i0 : tile_rows);
            const int nv = (int)((cols + width - 1) / width);
            tile(rows, nv, (int)(cols - width * (nv - 1)), k, alpha, a + i0 * sr, sr, sk,
                 b + j0, ldb, beta, c + i0 * ldc + j0, ldc, NULL, NULL);
        }
}

