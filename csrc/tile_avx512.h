/*
 * tile_avx512.h -- the AVX-512 tile of the own kernels and its run-time
 * shape dispatch, written once for both element types: define TW_REAL (float
 * or double; TW_REAL_IS_DOUBLE too for double), then include this file.  It defines tile_avx512_any, the tile function
 * tile_walk.h walks over C.
 *
 * A tile is `rows` (1..8) rows of C by nv (1..3) vectors of W columns (16
 * floats or 8 doubles), the last vector holding `last` columns: at most 24
 * accumulators of the 32 registers.  rows and nv are constants after
 * inlining, so the accumulators stay in registers.  Masked loads and stores
 * are native in AVX-512 (unlike AVX2's on AMD), so the tail vector needs no
 * separate full-tile path.  part_in/part_out carry a partial sum over k
 * between the calls of a blocked walk (tile_walk.h).
 */
/* Rows of B fetched ahead (tile_avx512); 16 to 48 measured alike. */
#define TB_PREFETCH 16
#if defined(TW_REAL_IS_DOUBLE)
#define TB_W 8
#define TB_VEC __m512d
#define TB_MASK __mmask8
#define TB_(op) _mm512_##op##_pd
#else
#define TB_W 16
#define TB_VEC __m512
#define TB_MASK __mmask16
#define TB_(op) _mm512_##op##_ps
#endif

static inline __attribute__((always_inline)) FNN_TARGET_AVX512 void
tile_avx512(const int rows, const int nv, int last, int64_t k, TW_REAL alpha, const TW_REAL *a,
            int64_t sr, int64_t sk, const TW_REAL *b, int64_t ldb, TW_REAL beta, TW_REAL *c,
            int64_t ldc, const TW_REAL *part_in, TW_REAL *part_out)
{
    enum { PANEL = 3 * TB_W };
    TB_VEC acc[8][3];
    TB_MASK mask[3];
    for (int v = 0; v < 3; v++)
        mask[v] = v < nv - 1 ? (TB_MASK)-1 : (TB_MASK)((1u << last) - 1u);
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            acc[r][v] = part_in != NULL ? TB_(loadu)(part_in + PANEL * r + TB_W * v)
                                        : TB_(setzero)();
    for (int64_t p = 0; p < k; p++) {
        const TW_REAL *bp = b + p * ldb, *ap = a + p * sk;
        TB_VEC bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) bv[v] = TB_(maskz_loadu)(mask[v], bp + TB_W * v);
        /* B's rows lie ldb apart, a stride the hardware prefetchers do not
         * follow far enough when B is not in this core's L2 (weights the
         * update has just written): fetch them TB_PREFETCH rows ahead.  A
         * prefetch past B's end is harmless (it never faults); its address
         * is computed as an integer, as C defines no pointer past the end. */
        const uintptr_t ahead = (uintptr_t)bp + (uintptr_t)(TB_PREFETCH * ldb) * sizeof(TW_REAL);
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            _mm_prefetch((const char *)(ahead + TB_W * v * sizeof(TW_REAL)), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++) {
            const TB_VEC ar = TB_(set1)(ap[r * sr]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[r][v] = TB_(fmadd)(ar, bv[v], acc[r][v]);
        }
    }
    if (part_out != NULL) { /* a partial sum over k, continued by the next call */
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) TB_(storeu)(part_out + PANEL * r + TB_W * v, acc[r][v]);
        return;
    }
    const TB_VEC al = TB_(set1)(alpha), be = TB_(set1)(beta);
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            TW_REAL *cp = c + r * ldc + TB_W * v;
            TB_VEC out = alpha == 1 ? acc[r][v] : TB_(mul)(al, acc[r][v]);
            if (beta != 0)
                out = TB_(fmadd)(be, TB_(maskz_loadu)(mask[v], cp), out);
            TB_(mask_storeu)(cp, mask[v], out);
        }
}

#define TB_TILE_CASE(R)                                                                   \
    case R:                                                                               \
        if (nv == 3)                                                                      \
            tile_avx512(R, 3, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout); \
        else if (nv == 2)                                                                 \
            tile_avx512(R, 2, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout); \
        else                                                                              \
            tile_avx512(R, 1, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout); \
        break;
/* One tile with its shape picked at run time among the compiled ones. */
static FNN_TARGET_AVX512 void tile_avx512_any(int rows, int nv, int last, int64_t k,
                                              TW_REAL alpha, const TW_REAL *a, int64_t sr,
                                              int64_t sk, const TW_REAL *b, int64_t ldb,
                                              TW_REAL beta, TW_REAL *c, int64_t ldc,
                                              const TW_REAL *pin, TW_REAL *pout)
{
    switch (rows) {
        TB_TILE_CASE(8)
        TB_TILE_CASE(7)
        TB_TILE_CASE(6)
        TB_TILE_CASE(5)
        TB_TILE_CASE(4)
        TB_TILE_CASE(3)
        TB_TILE_CASE(2)
        TB_TILE_CASE(1)
    default:
        break;
    }
}
#undef TB_TILE_CASE
#undef TB_PREFETCH
#undef TB_W
#undef TB_VEC
#undef TB_MASK
#undef TB_
