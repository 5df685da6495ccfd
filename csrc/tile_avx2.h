/*
 * tile_avx2.h -- the AVX2/FMA tile of the own kernels and its run-time shape
 * dispatch, written once for both element types: define TW_REAL (float or
 * double; TW_REAL_IS_DOUBLE too for double), then include this file.  It
 * defines tile_avx2_any, the tile function tile_walk.h walks over C.
 *
 * A tile is `rows` (1..4) rows of C by nv (1..3) vectors of W columns (8
 * floats or 4 doubles), the last vector holding `last` columns: 12
 * accumulators, 3 B vectors and a broadcast of op(A) fill the 16 AVX2
 * registers.  rows, nv and full (last == W) are constants after inlining,
 * so the accumulators stay in registers and full tiles use plain loads and
 * stores: AMD's masked stores are microcoded, and twelve of them per 4 x 12
 * double tile halved the rate of the 784 x 300 x 32 weight gradient.
 * part_in/part_out carry a partial sum over k between the calls of a
 * blocked walk (tile_walk.h).  tile_avx2_lead, the tile that first reads a
 * block of B (tile_walk.h), also prefetches B TA_PREFETCH rows ahead.
 */
/* Rows of B fetched ahead by the lead tile.  Zen 3: 8, 16 and 32 alike, 64
 * slower. */
#define TA_PREFETCH 16
#if defined(TW_REAL_IS_DOUBLE)
#define TA_W 4
#define TA_VEC __m256d
#define TA_(op) _mm256_##op##_pd
#define TA_BROADCAST _mm256_broadcast_sd
#define TA_TAIL(last) \
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(last), _mm256_setr_epi64x(0, 1, 2, 3))
#else
#define TA_W 8
#define TA_VEC __m256
#define TA_(op) _mm256_##op##_ps
#define TA_BROADCAST _mm256_broadcast_ss
#define TA_TAIL(last) \
    _mm256_cmpgt_epi32(_mm256_set1_epi32(last), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#endif

static inline __attribute__((always_inline)) FNN_TARGET_AVX2 void
tile_avx2(const int rows, const int nv, const int full, const int prefetch, int last, int64_t k,
          TW_REAL alpha, const TW_REAL *a, int64_t sr, int64_t sk, const TW_REAL *b, int64_t ldb,
          TW_REAL beta, TW_REAL *c, int64_t ldc, const TW_REAL *part_in, TW_REAL *part_out)
{
    enum { PANEL = 3 * TA_W };
    TA_VEC acc[4][3];
    __m256i mask[3];
    const __m256i tail = TA_TAIL(last);
    for (int v = 0; v < 3; v++) mask[v] = v < nv - 1 ? _mm256_set1_epi32(-1) : tail;
#pragma GCC unroll 4
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            acc[r][v] = part_in != NULL ? TA_(loadu)(part_in + PANEL * r + TA_W * v)
                                        : TA_(setzero)();
    for (int64_t p = 0; p < k; p++) {
        const TW_REAL *bp = b + p * ldb, *ap = a + p * sk;
        TA_VEC bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++)
            bv[v] = full || v < nv - 1 ? TA_(loadu)(bp + TA_W * v)
                                       : TA_(maskload)(bp + TA_W * v, mask[v]);
        if (prefetch) {
            /* Weights the update has just written are not in this core's
             * L2, and their row stride defeats the hardware prefetchers.
             * Every 64-byte line of the row TA_PREFETCH ahead is fetched
             * (a constant count: a loop over the lines themselves was
             * compiled with spilled accumulators, 2x slower).  Past B's end
             * a prefetch never faults, and its address is an integer, as C
             * defines no pointer past the end. */
            const uintptr_t ahead =
                (uintptr_t)bp + (uintptr_t)(TA_PREFETCH * ldb) * sizeof(TW_REAL);
            const int bytes = nv * TA_W * (int)sizeof(TW_REAL);
#pragma GCC unroll 3
            for (int off = 0; off < bytes; off += 64)
                _mm_prefetch((const char *)(ahead + off), _MM_HINT_T0);
            _mm_prefetch((const char *)(ahead + bytes - 1), _MM_HINT_T0);
        }
#pragma GCC unroll 4
        for (int r = 0; r < rows; r++) {
            const TA_VEC ar = TA_BROADCAST(ap + r * sr);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[r][v] = TA_(fmadd)(ar, bv[v], acc[r][v]);
        }
    }
    if (part_out != NULL) { /* a partial sum over k, continued by the next call */
#pragma GCC unroll 4
        for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) TA_(storeu)(part_out + PANEL * r + TA_W * v, acc[r][v]);
        return;
    }
    const TA_VEC al = TA_(set1)(alpha), be = TA_(set1)(beta);
#pragma GCC unroll 4
    for (int r = 0; r < rows; r++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            TW_REAL *cp = c + r * ldc + TA_W * v;
            TA_VEC out = alpha == 1 ? acc[r][v] : TA_(mul)(al, acc[r][v]);
            if (full || v < nv - 1) {
                if (beta != 0)
                    out = TA_(fmadd)(be, TA_(loadu)(cp), out);
                TA_(storeu)(cp, out);
            } else {
                if (beta != 0)
                    out = TA_(fmadd)(be, TA_(maskload)(cp, mask[v]), out);
                TA_(maskstore)(cp, mask[v], out);
            }
        }
}

#define TA_TILE_NV(R, F)                                                                   \
    if (nv == 3)                                                                           \
        tile_avx2(R, 3, F, pf, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout); \
    else if (nv == 2)                                                                      \
        tile_avx2(R, 2, F, pf, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout); \
    else                                                                                   \
        tile_avx2(R, 1, F, pf, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout);
#define TA_TILE_CASE(R)                                                                     \
    case R:                                                                                 \
        if (last == TA_W) {                                                                 \
            TA_TILE_NV(R, 1)                                                                \
        } else {                                                                            \
            TA_TILE_NV(R, 0)                                                                \
        }                                                                                   \
        break;
/* One tile with its shape picked at run time among the compiled ones. */
static inline __attribute__((always_inline)) FNN_TARGET_AVX2 void
tile_avx2_dispatch(const int pf, int rows, int nv, int last, int64_t k, TW_REAL alpha,
                   const TW_REAL *a, int64_t sr, int64_t sk, const TW_REAL *b, int64_t ldb,
                   TW_REAL beta, TW_REAL *c, int64_t ldc, const TW_REAL *pin, TW_REAL *pout)
{
    switch (rows) {
        TA_TILE_CASE(4)
        TA_TILE_CASE(3)
        TA_TILE_CASE(2)
        TA_TILE_CASE(1)
    default:
        break;
    }
}
static FNN_TARGET_AVX2 void tile_avx2_any(int rows, int nv, int last, int64_t k, TW_REAL alpha,
                                          const TW_REAL *a, int64_t sr, int64_t sk,
                                          const TW_REAL *b, int64_t ldb, TW_REAL beta,
                                          TW_REAL *c, int64_t ldc, const TW_REAL *pin,
                                          TW_REAL *pout)
{
    tile_avx2_dispatch(0, rows, nv, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout);
}
static FNN_TARGET_AVX2 void tile_avx2_lead(int rows, int nv, int last, int64_t k, TW_REAL alpha,
                                           const TW_REAL *a, int64_t sr, int64_t sk,
                                           const TW_REAL *b, int64_t ldb, TW_REAL beta,
                                           TW_REAL *c, int64_t ldc, const TW_REAL *pin,
                                           TW_REAL *pout)
{
    tile_avx2_dispatch(1, rows, nv, last, k, alpha, a, sr, sk, b, ldb, beta, c, ldc, pin, pout);
}
#undef TA_TILE_CASE
#undef TA_TILE_NV
#undef TA_W
#undef TA_VEC
#undef TA_
#undef TA_BROADCAST
#undef TA_TAIL
#undef TA_PREFETCH
