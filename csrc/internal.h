/*
 * internal.h -- kernels shared between the core's .c files (not public API).
 *
 * Conventions (after llm.c): outputs first, then inputs, then sizes;
 * gradients are named d<x>; matrices are row-major, "(rows x cols)".
 */
#ifndef FNN_INTERNAL_H
#define FNN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fastnn.h"

/* An element-wise loop runs on several threads only above this many
 * elements.  Every parallel region ends in a barrier, and on a busy machine a
 * barrier can wait a whole scheduler time slice for a descheduled thread:
 * measured on the 2-core bench machine under load, mini-batch-32 training
 * of small layers with a 32k threshold ran 2.7x slower on 2 threads than on
 * 1.  At 64k only parameter-sized passes of mid-size networks (the update
 * and gradient passes over the 266k parameters of the chapter network) and
 * activations of large batches split: the chapter epoch on 2 threads took
 * 0.91-0.94 s against 0.95-0.99 s with a 1M threshold (six interleaved
 * process pairs). */
#ifndef FNN_OMP_MIN_WORK
#define FNN_OMP_MIN_WORK (1 << 16)
#endif

/* Thread t's share [*i0, *i1) of n elements split between n_threads:
 * near-equal runs of whole FNN_ELEMENT_BLOCK blocks (the last may be
 * partial).  Passes over the parameter vector that follow one another
 * (gradient norms, then the update) split it the same way, so each thread
 * finds its part in its own cache. */
#define FNN_ELEMENT_BLOCK 1024
static inline void fnn_element_range(int64_t n, int t, int n_threads, int64_t *i0, int64_t *i1)
{
    const int64_t blocks = (n + FNN_ELEMENT_BLOCK - 1) / FNN_ELEMENT_BLOCK;
    const int64_t b0 = blocks * t / n_threads, b1 = blocks * (t + 1) / n_threads;
    *i0 = b0 * FNN_ELEMENT_BLOCK < n ? b0 * FNN_ELEMENT_BLOCK : n;
    *i1 = b1 * FNN_ELEMENT_BLOCK < n ? b1 * FNN_ELEMENT_BLOCK : n;
}

/* Set once the core enters a parallel region; fnn_fork_serial is set in a
 * child forked after that, where OpenMP regions would hang (threads.c). */
extern volatile int fnn_team_started;
extern volatile int fnn_fork_serial;
/* 1 when a parallel region may be entered now (and notes that one was). */
static inline int fnn_parallel_allowed(void)
{
    if (fnn_fork_serial)
        return 0;
    fnn_team_started = 1;
    return 1;
}
/* Monotonic wall-clock seconds. */
double fnn_seconds(void);

/* FNN_PAR_FOR(nt, work, header, body): `for (header) body` over independent
 * iterations, on nt OpenMP threads when work exceeds FNN_OMP_MIN_WORK, else
 * as a plain loop.  The choice is made before entering the OpenMP runtime:
 * a region whose if() clause is false still builds and frees a team, which
 * cost tiny networks about 30% of their training time. */
#ifdef _OPENMP
#include <omp.h>
#define FNN_PRAGMA(x) _Pragma(#x)
#define FNN_PAR_FOR(nt, work, header, ...)                                  \
    do {                                                                    \
        if ((nt) > 1 && (work) > FNN_OMP_MIN_WORK && fnn_parallel_allowed()) { \
            FNN_PRAGMA(omp parallel for num_threads(nt) schedule(static))   \
            for (header) __VA_ARGS__                                        \
        } else {                                                            \
            for (header) __VA_ARGS__                                        \
        }                                                                   \
    } while (0)
/* FNN_PAR_ELEMENTS(nt, n, i, body): `for (int64_t i = 0; i < n; i++) body`
 * over independent elements, as FNN_PAR_FOR, each thread taking the range
 * fnn_element_range gives it: whole FNN_ELEMENT_BLOCK-element blocks.  Cut
 * anywhere else (n / 2), the second thread's vector loop starts mid cache
 * line in every array and each 64-byte access spans two lines: measured 2.8x
 * slower per element on the Adam update of the chapter network, whose second
 * half ran on the other thread while the first waited for it. */
#define FNN_PAR_ELEMENTS(nt, n, i, ...)                                    \
    FNN_PAR_RANGES(nt, n, fnn_lo_, fnn_hi_,                                \
                   for (int64_t i = fnn_lo_; i < fnn_hi_; i++) __VA_ARGS__)
/* FNN_PAR_RANGES(nt, n, lo, hi, body): body once per thread with its range
 * [lo, hi) of the n elements (fnn_element_range), or once with [0, n): for
 * bodies that walk a range themselves (explicit vector loops). */
#define FNN_PAR_RANGES(nt, n, lo, hi, ...)                                           \
    do {                                                                             \
        if ((nt) > 1 && (n) > FNN_OMP_MIN_WORK && fnn_parallel_allowed()) {          \
            FNN_PRAGMA(omp parallel num_threads(nt))                                 \
            {                                                                        \
                int64_t lo, hi;                                                      \
                fnn_element_range((n), omp_get_thread_num(), omp_get_num_threads(), \
                                  &lo, &hi);                                         \
                __VA_ARGS__;                                                         \
            }                                                                        \
        } else {                                                                     \
            const int64_t lo = 0, hi = (n);                                          \
            __VA_ARGS__;                                                             \
        }                                                                            \
    } while (0)
#else
#define FNN_PAR_FOR(nt, work, header, ...) \
    do {                                   \
        (void)(nt);                        \
        (void)(work);                      \
        for (header) __VA_ARGS__           \
    } while (0)
#define FNN_PAR_ELEMENTS(nt, n, i, ...)              \
    do {                                             \
        (void)(nt);                                  \
        for (int64_t i = 0; i < (n); i++) __VA_ARGS__ \
    } while (0)
#define FNN_PAR_RANGES(nt, n, lo, hi, ...) \
    do {                                   \
        (void)(nt);                        \
        const int64_t lo = 0, hi = (n);    \
        __VA_ARGS__;                       \
    } while (0)
#endif

/* Target attributes of the explicit-vector code (the own kernels' tiles,
 * optim.c's update): compiled for that instruction set whatever the build's
 * baseline, and run only after a CPU check (fnn_sgemm_kernel_available). */
#define FNN_TARGET_AVX512 __attribute__((target("avx512f")))
#define FNN_TARGET_AVX2 __attribute__((target("avx2,fma")))

/* FNN_HOT: compile a hot element-wise kernel for AVX-512, AVX2 and the
 * baseline, and pick one at load time (GCC function multiversioning), so one
 * portable build still uses the machine's vector width. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(FNN_NO_CLONES)
#define FNN_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FNN_HOT
#endif

/* Column block of the per-feature reductions (BatchNorm statistics, column
 * sums): each block's partial sums live in a stack array of this size. */
#define FNN_COLUMN_BLOCK 64

/* SELU (Klambauer et al., as keras.activations.selu), also behind Keras's
 * AlphaDropout. */
#define FNN_SELU_LAMBDA 1.0507009873554804934193349852946
#define FNN_SELU_ALPHA 1.6732632423543772848170429916717

/* Fixed chunk for reductions: partial sums are per chunk, never per
 * thread, so the result does not depend on the thread count. */
#define FNN_REDUCE_CHUNK 8192
/* How many FNN_REDUCE_CHUNK pieces tensors of these lengths are cut into. */
int64_t fnn_reduce_chunks(int n_tensors, const int64_t *len);

/* Number of trainable tensors and their (offset, length) in the flat
 * parameter vector: every Dense kernel and bias, every BN gamma and beta. */
int fnn_list_tensors(const fnn_net *net, int64_t *off, int64_t *len);
/* Width of BatchNorm slot s (0 = inputs, s >= 1 = hidden layer s). */
int64_t fnn_bn_width(const fnn_net *net, int s);
/* 1 when BN slot s is present. */
int fnn_bn_present(const fnn_net *net, int s);
/* 1 when BN slot s is frozen (fnn_net.frozen_layers): it normalizes with its
 * moving statistics in training too, and nothing updates it. */
int fnn_bn_frozen(const fnn_net *net, int s);
/* 1 when the tensor (as listed by fnn_list_tensors) at offset `off` of the
 * parameter vector belongs to a frozen layer: its gradient stays zero and
 * nothing updates it. */
int fnn_tensor_frozen(const fnn_net *net, int64_t off);

/* Row-major C (m x n) = alpha * op(A) B + beta * C, op(A) = A^T when
 * trans_a, in the core's kernel `kind` (FNN_SGEMM_AVX512 or _AVX2, no more
 * than fnn_sgemm_kernel_available(); sgemm_kernels.c). */
void fnn_sgemm_kernel(int kind, int trans_a, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc);
/* The same in double precision (dgemm_kernels.c). */
void fnn_dgemm_kernel(int kind, int trans_a, int64_t m, int64_t n, int64_t k, double alpha,
                      const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                      double *c, int64_t ldc);

#define FNN_GENERIC_BODY "kernels_proto.h"
#include "generic.h"
#undef FNN_GENERIC_BODY

#endif
