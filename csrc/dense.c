/*
 * dense.c -- matrix products, Dense layer forward/backward, column sums and
 * the mini-batch gather (dense with any strides, or CSR densified per batch).
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <string.h>
#include <unistd.h> /* sysconf */

#include "internal.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FNN_NO_SGEMM_KERNELS)
#include <immintrin.h>
#define FNN_TRANSPOSE_AVX2 1 /* transpose_columns in AVX2 registers */
#else
#define FNN_TRANSPOSE_AVX2 0
#endif

/* When n * k (the size of op(B), e.g. a Dense kernel) is at most this, a
 * BLAS call costs more than the product itself (call overhead, packing);
 * measured on the tiny (8-unit) networks.  Deciding on n * k alone, never on
 * the row count m, keeps each row's result independent of how many rows
 * are computed with it. */
#define FNN_SMALL_GEMM_NK 256
/* Above this many multiply-adds (a few microseconds of work) a product is
 * split into column blocks run in parallel, each a single-threaded BLAS
 * call (BLAS is held at one thread while the core runs, so there is one
 * thread pool: OpenMP's).  A GEMM keeps both cores busy on cache-resident
 * work, so it pays off far below FNN_OMP_MIN_WORK: on the chapter workload
 * (batch 32, two threads) the first layer's products split gave 1.01-1.05 s
 * per epoch in every process, against 1.21-1.33 s serial. */
#ifndef FNN_SPLIT_GEMM
#define FNN_SPLIT_GEMM (1 << 18)
#endif

/* A batch's rows lie scattered over X (a shuffled order), and copying them is
 * bound by memory, not arithmetic: each thread's copies wait on memory
 * independently, so two threads gather a 32-row chapter batch (25088
 * elements) faster than one.  Per epoch on 2 cores, phase timers, best of
 * three processes each: float32 20 ms against 28, float64 30 against 52. */
#define FNN_SPLIT_GATHER 8192

/* The processors this machine has (not the threads a call may use): a
 * property of the machine, so blockings derived from it do not change
 * between fits, processes or thread counts on it. */
static int64_t machine_processors(void)
{
#ifdef _SC_NPROCESSORS_CONF
    static int64_t n = 0; /* racing first calls all store the same value */
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_CONF);
        n = c < 1 ? 1 : c;
    }
    return n;
#else
    return 8;
#endif
}

/* The largest power of two <= x, capped at 8 and at the machine's
 * processor count (at least 1).  Each block is one BLAS call that packs the
 * whole op(A) again, so more blocks than processors only cost: at the wide
 * workload's 512 x 2048 x 1024 and 1024 x 2048 x 512 products, OpenBLAS's
 * sgemm (Haswell kernels, Zen 3, one thread, best of 12) ran 8 column
 * blocks at 9.8 and 7.4 GFLOP/s, 2 blocks at 12.1 and 10.4 (a busy machine:
 * the ratios, not the rates, are the point). */
static int64_t pow2_blocks(int64_t x)
{
    const int64_t cap = machine_processors() < 8 ? machine_processors() : 8;
    int64_t p = 1;
    while (2 * p <= cap && 2 * p <= x) p *= 2;
    return p;
}

/*
 * Which products run in the core's own kernels (sgemm_kernels.c,
 * dgemm_kernels.c) instead of BLAS.  The rule is a pure function of the
 * CPU's features (fnn_sgemm_kernel_available), the caller's cap
 * (blas->sgemm_kernel: FASTNN_SGEMM_KERNEL, use_sgemm_kernel) and the
 * product's shape, never of timings taken at run time: a given machine
 * always sends a given product down the same path, so the same fit gives the
 * same bits in every process.  The shape classes come from single-threaded
 * timings of each kernel against OpenBLAS, interleaved, best of many calls,
 * several runs each; the figures are own time / OpenBLAS time.
 *
 * AVX-512 (float and double; Sapphire Rapids against OpenBLAS's SkylakeX
 * kernels): the kernels read B in place, unpacked, so they win while B (a
 * forward product's weights) or C (a weight gradient) stays in L2 and its
 * pages in the TLB, and lose 2-3.5x on large ones:
 *   forward (op(A) = A) of at most FNN_AVX512_MAX_ROWS rows with B of at
 *     most FNN_AVX512_MAX_BYTES: the chapter network at 32 rows float
 *     0.58 (784 x 300), 0.92 (300 x 100), double 0.77, 0.86; at 256 rows
 *     float 0.97, double 0.89; but 512 x 2048 x 1024 float 2.3, double 2.5,
 *     32 x 2048 x 2048 float 1.23, double 2.2 (16 and 32 MB of B), 512 x 300
 *     x 784 double 1.6;
 *   weight gradients (op(A) = A^T) of a batch of at most FNN_AVX512_MAX_BATCH
 *     rows (k) with C of at most FNN_AVX512_MAX_BYTES: chapter network float
 *     0.80, double 0.77 (784 x 300; 300 x 100: 1.14, 1.15), at 64 rows 0.90,
 *     0.88; but at 128 rows 1.0-1.24, and 2048 x 2048 x 64 float 1.14,
 *     double 1.37;
 *   narrow products (output layers): float 0.56-0.99, double 0.46-0.89
 *     (the chapter network's 10-output weight gradient 1.05, 1.39: about a
 *     microsecond).
 * (On Zen 4 the float kernel had matched OpenBLAS on the large products.)
 *
 * AVX2, both types (Zen 3, against OpenBLAS's Haswell kernels, after full
 * tiles stopped using masked stores and long forward products were blocked
 * over k):
 *   narrow products (at most FNN_NARROW_COLS columns: output layers),
 *     weight gradients included (float 0.64-0.74, double 0.45-0.56 on the
 *     chapter network's 10 outputs);
 *   weight gradients of a mini-batch of at most FNN_AVX2_MAX_BATCH rows (k):
 *     chapter network float 0.86-0.99, double 0.82-0.90 (at 64 rows float
 *     0.98, double 1.07-1.37; at 200, 1.2-1.7);
 *   forward products of at most FNN_AVX2_MAX_ROWS_F32 (float) or
 *     FNN_AVX2_MAX_ROWS_F64 (double) rows: chapter network at 32 rows float
 *     0.61-0.67, double 0.86-0.90; at 64 rows float 0.77-0.87, double
 *     0.99-1.05; at 200 rows float 0.95-1.05.
 * Everything else stays in BLAS (the wide workload's 512-row products).  In
 * a training step the kernels gain more than these figures: they read the
 * weights in place where BLAS packs them, and write a weight gradient once
 * where BLAS first zeroes it.  A hidden layer's input gradient dout W^T
 * (B transposed, which the kernels do not read) takes the AVX2 kernel on W^T
 * built for it when the rule gives that kernel to dout W^T's shape
 * (fnn_dense_backward): the chapter network's 32 x 300 x 100 on Zen 3 in
 * float 0.78 of OpenBLAS's time on one thread and 0.81 on two, the rest of
 * its backward pass included, double 0.99 and 0.95; in a fit, 8-10 us
 * less per step.  The AVX-512 kernel likewise on Zen 4 (the same layer's
 * whole backward pass against OpenBLAS's SkylakeX kernels, best of 40 x 200
 * calls): float 0.77-0.79 on one thread, 0.93-1.0 on two; double 0.79-0.91
 * and 0.90-1.06.
 */
#define FNN_AVX512_MAX_ROWS 256
#define FNN_AVX512_MAX_BATCH 64
#define FNN_AVX512_MAX_BYTES (2 << 20)
#define FNN_AVX2_MAX_ROWS_F32 64
#define FNN_AVX2_MAX_ROWS_F64 32
#define FNN_AVX2_MAX_BATCH 32
#define FNN_NARROW_COLS 16

/* The kernel (FNN_SGEMM_*) for this product, FNN_SGEMM_OFF for BLAS. */
static int own_kernel_for(int is_float, int setting, int trans_a, int trans_b, int64_t m,
                          int64_t n, int64_t k)
{
    if (setting == FNN_SGEMM_OFF || trans_b)
        return FNN_SGEMM_OFF;
    const int cpu = fnn_sgemm_kernel_available();
    const int kind = cpu < setting ? cpu : setting;
    if (kind == FNN_SGEMM_OFF)
        return FNN_SGEMM_OFF;
    if (n <= FNN_NARROW_COLS)
        return kind;
    if (kind == FNN_SGEMM_AVX512) {
        /* the operand that is not streamed: B forward, C for a weight gradient */
        const int64_t kept_bytes = (trans_a ? m : k) * n * (is_float ? 4 : 8);
        const int small_batch =
            trans_a ? k <= FNN_AVX512_MAX_BATCH : m <= FNN_AVX512_MAX_ROWS;
        return small_batch && kept_bytes <= FNN_AVX512_MAX_BYTES ? kind : FNN_SGEMM_OFF;
    }
    const int64_t max_rows = is_float ? FNN_AVX2_MAX_ROWS_F32 : FNN_AVX2_MAX_ROWS_F64;
    return (trans_a ? k <= FNN_AVX2_MAX_BATCH : m <= max_rows) ? kind : FNN_SGEMM_OFF;
}

/* gemm_path's answer for the plain loop (small_gemm); FNN_SGEMM_OFF is BLAS. */
#define FNN_GEMM_PLAIN (-1)

/* Where part t of `parts` begins among C's cells, for own_kernel_parallel:
 * a cell is one panel of 3 column vectors by 4 rows (half a tile), counted
 * panel by panel, and costs as many units as it has vectors (its
 * multiply-adds: a narrow last panel costs less).  The parts get near-equal
 * costs, cut inside a panel where need be: the chapter network's 300 float
 * columns are 6 full panels and one of 12 columns, which a cut by whole
 * vectors left to one thread (9 + 10 vectors: on Zen 4 one thread ran its
 * 32 x 784 x 300 part 10-13% longer while the other waited). */
static int64_t cell_cut(int64_t t, int64_t parts, int64_t quads, int64_t vectors)
{
    const int64_t target = quads * vectors * t / parts; /* cost before the cut */
    const int64_t full = vectors / 3;
    const int64_t pj = target / (3 * quads) < full ? target / (3 * quads) : full;
    const int64_t width = pj < full ? 3 : vectors - 3 * full;
    const int64_t q = width > 0 ? (target - 3 * quads * pj + width / 2) / width : 0;
    return pj * quads + (q < quads ? q : quads);
}

/* The kernels under one generic name. */
static void own_kernel_f32(int kind, int trans_a, int64_t m, int64_t n, int64_t k, float alpha,
                           const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                           float *c, int64_t ldc)
{
    fnn_sgemm_kernel(kind, trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static void own_kernel_f64(int kind, int trans_a, int64_t m, int64_t n, int64_t k, double alpha,
                           const double *a, int64_t lda, const double *b, int64_t ldb,
                           double beta, double *c, int64_t ldc)
{
    fnn_dgemm_kernel(kind, trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#define FNN_GENERIC_BODY "dense.c"
#include "generic.h"

#else /* type-generic body */

#if FNN_TRANSPOSE_AVX2
/* One square block of W registers (8 x 8 floats, 4 x 4 doubles):
 * out[p * ldo + j] = in[j * ldi + p]. */
#if REAL_IS_FLOAT
#define TR_W 8
static inline __attribute__((always_inline)) FNN_TARGET_AVX2 void
transpose_block_f32(float *out, int64_t ldo, const float *in, int64_t ldi)
{
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(in + i * ldi);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(out + i * ldo, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(out + (i + 4) * ldo, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}
#else
#define TR_W 4
static inline __attribute__((always_inline)) FNN_TARGET_AVX2 void
transpose_block_f64(double *out, int64_t ldo, const double *in, int64_t ldi)
{
    __m256d r[4], t[4];
    for (int i = 0; i < 4; i++) r[i] = _mm256_loadu_pd(in + i * ldi);
    t[0] = _mm256_unpacklo_pd(r[0], r[1]);
    t[1] = _mm256_unpackhi_pd(r[0], r[1]);
    t[2] = _mm256_unpacklo_pd(r[2], r[3]);
    t[3] = _mm256_unpackhi_pd(r[2], r[3]);
    _mm256_storeu_pd(out, _mm256_permute2f128_pd(t[0], t[2], 0x20));
    _mm256_storeu_pd(out + ldo, _mm256_permute2f128_pd(t[1], t[3], 0x20));
    _mm256_storeu_pd(out + 2 * ldo, _mm256_permute2f128_pd(t[0], t[2], 0x31));
    _mm256_storeu_pd(out + 3 * ldo, _mm256_permute2f128_pd(t[1], t[3], 0x31));
}
#endif
#endif

/* Columns [j0, j1) of B (k x n, ldb) from bt, B's transpose (n x k, ldbt):
 * square blocks in AVX2 registers (only called where an own kernel runs),
 * the edges element by element. */
#if FNN_TRANSPOSE_AVX2
FNN_TARGET_AVX2
#endif
static void FN(transpose_columns)(REAL *restrict b, int64_t ldb, const REAL *restrict bt,
                                  int64_t ldbt, int64_t k, int64_t j0, int64_t j1)
{
    int64_t j = j0;
#if FNN_TRANSPOSE_AVX2
    for (; j + TR_W <= j1; j += TR_W) {
        int64_t p = 0;
        for (; p + TR_W <= k; p += TR_W)
            FN(transpose_block)(b + p * ldb + j, ldb, bt + j * ldbt + p, ldbt);
        for (; p < k; p++)
            for (int64_t jj = j; jj < j + TR_W; jj++) b[p * ldb + jj] = bt[jj * ldbt + p];
    }
#undef TR_W
#endif
    for (; j < j1; j++)
        for (int64_t p = 0; p < k; p++) b[p * ldb + j] = bt[j * ldbt + p];
}

/* The own kernel on n_threads threads, C cut into parts whose elements'
 * values do not depend on the cut (see sgemm_kernels.c, dgemm_kernels.c), so
 * any thread count gives the same bits: contiguous ranges of 8-row tiles
 * when C has at least as many of them as one-vector column units, else
 * contiguous ranges of cells (cell_cut), up to three blocks per part.  With
 * bt, B is first built from its transpose bt: the parts are then ranges of
 * column units, each thread building the columns it then reads (the kernel
 * reads no column past its part). */
static void FN(own_kernel_parallel)(int kind, int trans_a, int64_t m, int64_t n, int64_t k,
                                    REAL alpha, const REAL *a, int64_t lda, REAL *b,
                                    int64_t ldb, REAL beta, REAL *c, int64_t ldc, int nt,
                                    const REAL *bt, int64_t ldbt)
{
    /* One vector of the kernel (64 bytes in AVX-512, 32 in AVX2): the unit of
     * a cut by columns, finer than a panel so that the parts stay even, and
     * a cell's unit of cost in a cut by cells. */
    const int64_t cu = (kind == FNN_SGEMM_AVX512 ? 64 : 32) / (int64_t)sizeof(REAL);
    const int64_t row_units = (m + 7) / 8, col_units = (n + cu - 1) / cu;
    const int64_t n_panels = (col_units + 2) / 3;
    enum { BY_ROWS, BY_COLUMNS, BY_CELLS };
    const int cut = bt != NULL ? BY_COLUMNS : row_units >= col_units ? BY_ROWS : BY_CELLS;
    const int64_t quads = (m + 3) / 4; /* a cell's rows: 4, half a tile, for finer cuts */
    const int64_t units = cut == BY_ROWS      ? row_units
                          : cut == BY_COLUMNS ? col_units
                                              : quads * n_panels;
    int64_t parts = m * n * k > FNN_SPLIT_GEMM ? nt : 1;
    if (parts > units)
        parts = units;
    const int64_t sr = trans_a ? 1 : lda; /* op(A)'s row stride */
    int64_t work = parts > 1 ? m * n * k : 0;
    FNN_PAR_FOR(nt, work, int64_t t = 0; t < parts; t++, {
        int64_t u0 = units * t / parts, u1 = units * (t + 1) / parts;
        if (cut == BY_ROWS) {
            int64_t i0 = 8 * u0, i1 = 8 * u1 < m ? 8 * u1 : m;
            FN(own_kernel)(kind, trans_a, i1 - i0, n, k, alpha, a + i0 * sr, lda, b, ldb, beta,
                           c + i0 * ldc, ldc);
        } else if (cut == BY_COLUMNS) {
            int64_t j0 = cu * u0, j1 = cu * u1 < n ? cu * u1 : n;
            FN(transpose_columns)(b, ldb, bt, ldbt, k, j0, j1);
            FN(own_kernel)(kind, trans_a, m, j1 - j0, k, alpha, a, lda, b + j0, ldb, beta, c + j0,
                           ldc);
        } else {
            /* cells [c0, c1): the rest of one panel's rows, whole panels,
             * the first rows of one more panel */
            const int64_t c0 = cell_cut(t, parts, quads, col_units);
            const int64_t c1 = cell_cut(t + 1, parts, quads, col_units);
            for (int64_t cell = c0; cell < c1;) {
                const int64_t pj = cell / quads, q0 = cell % quads;
                int64_t p1 = pj + 1, q1 = quads;
                if (q0 == 0) /* whole panels up to the last cell's panel */
                    p1 = c1 / quads > pj ? c1 / quads : pj + 1;
                if (p1 * quads > c1) /* ends inside this panel */
                    q1 = c1 - pj * quads;
                const int64_t i0 = 4 * q0, i1 = 4 * q1 < m ? 4 * q1 : m;
                const int64_t j0 = 3 * cu * pj, j1 = 3 * cu * p1 < n ? 3 * cu * p1 : n;
                FN(own_kernel)(kind, trans_a, i1 - i0, j1 - j0, k, alpha, a + i0 * sr, lda,
                               b + j0, ldb, beta, c + i0 * ldc + j0, ldc);
                cell = q1 < quads ? pj * quads + q1 : p1 * quads;
            }
        }
    });
}

/* Plain row-major loop for tiny products; i-k-j order keeps the inner loop
 * contiguous in B and C (vectorized over C's columns).  A transposed B of the
 * tiny path (at most FNN_SMALL_GEMM_NK elements) is first copied untransposed
 * into a stack buffer, so that loop stays contiguous too. */
FNN_HOT static void FN(small_gemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                           REAL alpha, const REAL *a, int64_t lda, const REAL *b,
                           int64_t ldb, REAL beta, REAL *c, int64_t ldc)
{
    if (n < 8) {
        /* Narrow C (an output layer): one dot product per element, summed
         * in a register; the row loop below would chain every multiply-add
         * through memory on the same few elements of C. */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                REAL s = 0;
                for (int64_t p = 0; p < k; p++)
                    s += (trans_a ? a[p * lda + i] : a[i * lda + p]) *
                         (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
                REAL *cij = c + i * ldc + j;
                *cij = beta == 0 ? alpha * s : alpha * s + beta * *cij;
            }
        return;
    }
    if (n <= 16 && k <= FNN_SMALL_GEMM_NK / 8) {
        /* C rows of 8..16 (hidden layers of tiny networks): each row is
         * accumulated in a 16-wide register block over a copy of op(B)
         * zero-padded to 16 columns, instead of a multiply-add chain
         * through C's memory per k. */
        REAL bp[FNN_SMALL_GEMM_NK / 8 * 16];
        for (int64_t p = 0; p < k; p++)
            for (int64_t j = 0; j < 16; j++)
                bp[p * 16 + j] = j >= n ? 0 : trans_b ? b[j * ldb + p] : b[p * ldb + j];
        for (int64_t i = 0; i < m; i++) {
            REAL acc[16] = {0};
            for (int64_t p = 0; p < k; p++) {
                const REAL aip = trans_a ? a[p * lda + i] : a[i * lda + p];
                for (int j = 0; j < 16; j++) acc[j] += aip * bp[p * 16 + j];
            }
            REAL *ci = c + i * ldc;
            if (beta == 0)
                for (int64_t j = 0; j < n; j++) ci[j] = alpha * acc[j];
            else
                for (int64_t j = 0; j < n; j++) ci[j] = alpha * acc[j] + beta * ci[j];
        }
        return;
    }
    REAL bt[FNN_SMALL_GEMM_NK];
    if (trans_b && n * k <= FNN_SMALL_GEMM_NK) {
        for (int64_t p = 0; p < k; p++)
            for (int64_t j = 0; j < n; j++) bt[p * n + j] = b[j * ldb + p];
        b = bt;
        ldb = n;
        trans_b = 0;
    }
    for (int64_t i = 0; i < m; i++) {
        REAL *ci = c + i * ldc;
        if (beta == 0)
            for (int64_t j = 0; j < n; j++) ci[j] = 0;
        else if (beta != 1)
            for (int64_t j = 0; j < n; j++) ci[j] *= beta;
        for (int64_t p = 0; p < k; p++) {
            REAL aip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
            if (trans_b) {
                for (int64_t j = 0; j < n; j++) ci[j] += aip * b[j * ldb + p];
            } else {
                const REAL *bp = b + p * ldb;
                for (int64_t j = 0; j < n; j++) ci[j] += aip * bp[j];
            }
        }
    }
}

/* Where fnn_gemm computes a product of m, n, k >= 1: the plain loop
 * (FNN_GEMM_PLAIN), one of the own kernels (FNN_SGEMM_AVX2, _AVX512) or BLAS
 * (FNN_SGEMM_OFF). */
static int FN(gemm_path)(const fnn_blas *blas, int trans_a, int trans_b, int64_t m, int64_t n,
                         int64_t k)
{
    if (k <= 0 || n * k <= FNN_SMALL_GEMM_NK || blas == NULL || blas->GEMM == NULL)
        return FNN_GEMM_PLAIN;
    return own_kernel_for(REAL_IS_FLOAT, blas->sgemm_kernel, trans_a, trans_b, m, n, k);
}

void FN(fnn_gemm)(const fnn_blas *blas, int trans_a, int trans_b, int64_t m, int64_t n,
                  int64_t k, REAL alpha, const REAL *a, int64_t lda, const REAL *b,
                  int64_t ldb, REAL beta, REAL *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    const int kind = FN(gemm_path)(blas, trans_a, trans_b, m, n, k);
    if (kind == FNN_GEMM_PLAIN) {
        FN(small_gemm)(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (kind != FNN_SGEMM_OFF) {
        FN(own_kernel_parallel)(kind, trans_a, m, n, k, alpha, a, lda, (REAL *)b, ldb, beta, c,
                                ldc, blas->n_threads, NULL, 0);
        return;
    }
    /* Blocks of C computed in parallel, one single-threaded BLAS call each.
     * The blocking depends on the shape and the machine (pow2_blocks) only,
     * never on the thread count, so every element is computed the same way
     * with one thread or many (bitwise-reproducible results); a power of two
     * of near-equal blocks keeps 2, 4 or 8 threads evenly loaded.
     * Weight gradients (op(A) = A^T: C's rows are the layer's inputs) are cut
     * into blocks of rows, which read only their share of the large operand
     * and repack only the small one, the batch's deltas (column blocks would
     * each repack the whole batch); the other products into blocks of whole
     * 16-column units (the BLAS kernel's width): their rows are the batch's
     * rows, never split, as a row's result must not depend on how many rows
     * are computed with it.  A block holds at least two units, so that the
     * chapter network's 100-unit layer is split too (64 + 36 columns): one
     * block ran its 32 x 300 x 100 products on one thread while the other
     * waited. */
    const int by_rows = trans_a && !trans_b;
    const int64_t extent = by_rows ? m : n, unit = by_rows ? 8 : 16;
    int64_t n_blocks = 1, block = extent;
    if (m * n * k > FNN_SPLIT_GEMM) {
        const int64_t units = (extent + unit - 1) / unit;
        n_blocks = pow2_blocks(units / 2);
        block = (units + n_blocks - 1) / n_blocks * unit;
        n_blocks = (extent + block - 1) / block;
    }
    const int nt = blas->n_threads;
    int64_t work = n_blocks > 1 ? m * n * k : 0;
    FNN_PAR_FOR(nt, work, int64_t bk = 0; bk < n_blocks; bk++, {
        const int64_t s0 = bk * block, len = s0 + block < extent ? block : extent - s0;
        const int64_t i0 = by_rows ? s0 : 0, j0 = by_rows ? 0 : s0;
        /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T:
         * swap the operands and keep each one's transpose flag.  Column j0
         * of op(B) starts at b + j0 (not transposed) or b + j0 * ldb; row i0
         * of op(A) = A^T at a + i0. */
        char ta = trans_b ? 'T' : 'N', tb = trans_a ? 'T' : 'N';
        int im = (int)(by_rows ? n : len), in = (int)(by_rows ? len : m), ik = (int)k;
        int ilda = (int)ldb, ildb = (int)lda, ildc = (int)ldc;
        REAL *bb = (REAL *)b + (trans_b ? j0 * ldb : j0);
        REAL *aa = (REAL *)a + i0;
        REAL al = alpha, be = beta;
        blas->GEMM(&ta, &tb, &im, &in, &ik, &al, bb, &ilda, aa, &ildb, &be, c + i0 * ldc + j0,
                   &ildc);
    });
}

void FN(fnn_dense_forward)(const fnn_blas *blas, REAL *out, const REAL *inp, const REAL *w,
                           const REAL *bias, int64_t rows, int64_t n_in, int64_t n_out, int nt)
{
    if (bias != NULL) {
        /* Seed every row with the bias, then accumulate the product on top. */
        int64_t work = rows * n_out;
        FNN_PAR_FOR(nt, work, int64_t i = 0; i < rows; i++, memcpy(out + i * n_out, bias, (size_t)n_out * sizeof(REAL)););
        FN(fnn_gemm)(blas, 0, 0, rows, n_out, n_in, 1, inp, n_in, w, n_out, 1, out, n_out);
    } else {
        FN(fnn_gemm)(blas, 0, 0, rows, n_out, n_in, 1, inp, n_in, w, n_out, 0, out, n_out);
    }
}

void FN(fnn_dense_backward)(const fnn_blas *blas, REAL *dinp, REAL *dw, REAL *dbias,
                            const REAL *dout, const REAL *inp, const REAL *w, REAL *wt,
                            int64_t rows, int64_t n_in, int64_t n_out, int accumulate, int nt)
{
    /* dW (n_in x n_out) = inp^T (n_in x rows) dout (rows x n_out) */
    FN(fnn_gemm)(blas, 1, 0, n_in, n_out, rows, 1, inp, n_in, dout, n_out,
                 accumulate ? 1 : 0, dw, n_out);
    if (dbias != NULL)
        FN(fnn_col_sums)(dbias, dout, rows, n_out, accumulate, nt);
    /* dinp (rows x n_in) = dout (rows x n_out) W^T (n_out x n_in): an own
     * kernel on W^T built in wt where the rule gives it this shape (see
     * own_kernel_for), else BLAS, which reads W in place. */
    if (dinp == NULL || rows <= 0)
        return;
    const int kind = wt != NULL ? FN(gemm_path)(blas, 0, 0, rows, n_in, n_out) : FNN_SGEMM_OFF;
    if (kind == FNN_SGEMM_AVX2 || kind == FNN_SGEMM_AVX512)
        FN(own_kernel_parallel)(kind, 0, rows, n_in, n_out, 1, dout, n_out, wt, n_in, 0, dinp,
                                n_in, blas->n_threads, w, n_out);
    else
        FN(fnn_gemm)(blas, 0, 1, rows, n_in, n_out, 1, dout, n_out, w, n_out, 0, dinp, n_in);
}

FNN_HOT void FN(fnn_col_sums)(REAL *out, const REAL *x, int64_t rows, int64_t n, int accumulate,
                      int nt)
{
    /* Columns are split into blocks across threads; within a block rows are
     * swept in order, so each sum has the same order for any thread count. */
    const int64_t block = FNN_COLUMN_BLOCK;
    int64_t n_blocks = (n + block - 1) / block;
    int64_t work = rows * n;
    FNN_PAR_FOR(nt, work, int64_t bk = 0; bk < n_blocks; bk++, {
        int64_t j0 = bk * block, j1 = j0 + block < n ? j0 + block : n;
        double acc[FNN_COLUMN_BLOCK];
        for (int64_t j = j0; j < j1; j++) acc[j - j0] = 0.0;
        for (int64_t i = 0; i < rows; i++) {
            const REAL *xi = x + i * n;
            for (int64_t j = j0; j < j1; j++) acc[j - j0] += xi[j];
        }
        for (int64_t j = j0; j < j1; j++)
            out[j] = (REAL)(accumulate ? out[j] + acc[j - j0] : acc[j - j0]);
    });
}

/* X's values when they are of the other floating type (fnn_data.x_other_type). */
#if REAL_IS_FLOAT
#define OTHER_REAL double
#else
#define OTHER_REAL float
#endif

void FN(fnn_gather_x)(REAL *dst, const fnn_data *data, const int64_t *idx, int64_t rows,
                      int nt)
{
    const int64_t n_cols = data->n_cols;
    const int other = data->x_other_type != 0;
    /* Split across the threads from FNN_SPLIT_GATHER elements on, far below
     * FNN_OMP_MIN_WORK (FNN_PAR_FOR splits any work above that). */
    const int64_t work = rows * n_cols >= FNN_SPLIT_GATHER ? INT64_MAX : 0;
    if (data->csr_indptr != NULL) {
        const REAL *val = (const REAL *)data->csr_data;
        const OTHER_REAL *oval = (const OTHER_REAL *)data->csr_data;
        FNN_PAR_FOR(nt, work, int64_t i = 0; i < rows; i++, {
            REAL *di = dst + i * n_cols;
            int64_t r = idx[i], start, stop;
            memset(di, 0, (size_t)n_cols * sizeof(REAL));
            if (data->csr_index64) {
                const int64_t *ptr = (const int64_t *)data->csr_indptr;
                const int64_t *col = (const int64_t *)data->csr_indices;
                start = ptr[r];
                stop = ptr[r + 1];
                for (int64_t p = start; p < stop; p++)
                    di[col[p]] += other ? (REAL)oval[p] : val[p];
            } else {
                const int32_t *ptr = (const int32_t *)data->csr_indptr;
                const int32_t *col = (const int32_t *)data->csr_indices;
                start = ptr[r];
                stop = ptr[r + 1];
                for (int64_t p = start; p < stop; p++)
                    di[col[p]] += other ? (REAL)oval[p] : val[p];
            }
        });
        return;
    }
    const int64_t rs = data->row_stride, cs = data->col_stride;
    if (other) { /* converted here, a batch at a time: X is never copied whole */
        const OTHER_REAL *x = (const OTHER_REAL *)data->x;
        FNN_PAR_FOR(nt, work, int64_t i = 0; i < rows; i++, {
            const OTHER_REAL *src = x + idx[i] * rs;
            REAL *di = dst + i * n_cols;
            for (int64_t j = 0; j < n_cols; j++) di[j] = (REAL)src[j * cs];
        });
        return;
    }
    const REAL *x = (const REAL *)data->x;
    FNN_PAR_FOR(nt, work, int64_t i = 0; i < rows; i++, {
        const REAL *src = x + idx[i] * rs;
        REAL *di = dst + i * n_cols;
        if (cs == 1)
            memcpy(di, src, (size_t)n_cols * sizeof(REAL));
        else
            for (int64_t j = 0; j < n_cols; j++) di[j] = src[j * cs];
    });
}

/* Asks for the dense rows idx[0..rows) of X to be brought into cache: the
 * next step's batch, during this step's backward pass, whose products leave
 * the memory bus idle.  The next gather then finds the rows in cache (in L3
 * once the update has streamed through L2) instead of in memory: the rows
 * of a shuffled batch are scattered over X.  Zen 4, chapter network, cycle
 * counts per step: the gather 29-34 k -> 17-23 k (about 5 us), the backward
 * products and the update unchanged; but issuing the prefetches holds the
 * calling thread about 15 k cycles before the backward products (they queue
 * on the miss buffers), so a step gains little: chapter_bn fits, 5
 * alternating processes, median 0.719 s with it and 0.743 s without.  Split
 * over the gather's threads instead, the gather grew by as much as the
 * serial time shrank; prefetched before the update, the update slowed.
 * Only while the batch fits in half of a 1 MB L2; a no-op for sparse or
 * strided X. */
void FN(fnn_prefetch_rows)(const fnn_data *data, const int64_t *idx, int64_t rows)
{
    const int64_t esz = data->x_other_type ? (int64_t)sizeof(OTHER_REAL) : (int64_t)sizeof(REAL);
    const int64_t row_bytes = data->n_cols * esz;
    if (data->csr_indptr != NULL || data->col_stride != 1 || rows * row_bytes > (512 << 10))
        return;
    const char *x = (const char *)data->x;
    for (int64_t i = 0; i < rows; i++) {
        const char *src = x + idx[i] * data->row_stride * esz;
        for (int64_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(src + off, 0, 2);
        __builtin_prefetch(src + row_bytes - 1, 0, 2);
    }
}

#undef OTHER_REAL

#endif
