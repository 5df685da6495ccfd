/*
 * fma_peak.c -- the machine's multiply-add ceiling: the GFLOP/s no product can
 * pass, against which a fit's products are judged (the sgemm probe of
 * `python -m bench` measures OpenBLAS at a workload's shapes, which is below
 * it).  Twelve independent accumulators per thread hide the FMA latency, in
 * 512-bit (AVX-512) or 256-bit (AVX2) registers, float and double, on 1 and
 * on N threads.
 *
 *   gcc -O3 -funroll-loops -fopenmp bench/tools/fma_peak.c -o /tmp/fma_peak
 *   /tmp/fma_peak            # N = OMP_NUM_THREADS, else every processor
 *
 * On a CPU without AVX-512 the 512-bit lines are skipped.  Best of 5 runs of
 * 0.1-0.5 s each; a busy machine lowers the figures, never raises them.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>

#define ACC 12

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Each body runs `iters` rounds of ACC independent a = a * x + y chains and
 * returns a sum of the accumulators, so that the compiler keeps the work. */
#define FMA_BODY(VEC, SET1, FMADD, ADD, STORE, LANES, T)                     \
    VEC a[ACC];                                                              \
    const VEC x = SET1((T)0.9999999), y = SET1((T)1e-7);                     \
    for (int i = 0; i < ACC; i++) a[i] = SET1((T)i);                         \
    for (long it = 0; it < iters; it++)                                      \
        for (int i = 0; i < ACC; i++) a[i] = FMADD(a[i], x, y);              \
    for (int i = 1; i < ACC; i++) a[0] = ADD(a[0], a[i]);                    \
    T out[LANES];                                                            \
    STORE(out, a[0]);                                                        \
    return out[0];

__attribute__((target("avx512f"))) static double zmm_ps(long iters)
{
    FMA_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16, float)
}
__attribute__((target("avx512f"))) static double zmm_pd(long iters)
{
    FMA_BODY(__m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_storeu_pd, 8,
             double)
}
__attribute__((target("avx2,fma"))) static double ymm_ps(long iters)
{
    FMA_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8, float)
}
__attribute__((target("avx2,fma"))) static double ymm_pd(long iters)
{
    FMA_BODY(__m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, _mm256_storeu_pd, 4,
             double)
}

typedef double (*body_fn)(long);

/* GFLOP/s of `body` (lanes per vector) on nt threads, best of 5 runs. */
static double rate(body_fn body, int lanes, int nt)
{
    const long iters = 20000000;
    double best = 1e30, sink = 0;
    for (int r = 0; r < 5; r++) {
        const double t0 = now();
#pragma omp parallel num_threads(nt) reduction(+ : sink)
        sink += body(iters);
        const double t = now() - t0;
        if (t < best)
            best = t;
    }
    if (sink == 12345.678) /* never: keeps sink alive */
        printf("%g\n", sink);
    return 2.0 * ACC * iters * lanes * nt / best * 1e-9;
}

int main(void)
{
    __builtin_cpu_init();
    const int n = omp_get_max_threads();
    struct {
        const char *name;
        body_fn body;
        int lanes, ok;
    } kinds[] = {
        {"avx512 float ", zmm_ps, 16, __builtin_cpu_supports("avx512f")},
        {"avx512 double", zmm_pd, 8, __builtin_cpu_supports("avx512f")},
        {"avx2   float ", ymm_ps, 8, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {"avx2   double", ymm_pd, 4, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
    };
    for (unsigned k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!kinds[k].ok)
            continue;
        const double one = rate(kinds[k].body, kinds[k].lanes, 1);
        const double many = n > 1 ? rate(kinds[k].body, kinds[k].lanes, n) : one;
        printf("%s  1 thread %7.1f GFLOP/s   %d threads %7.1f GFLOP/s\n", kinds[k].name, one, n,
               many);
    }
    return 0;
}
