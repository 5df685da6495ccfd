/*
 * generic.h -- instantiate a type-generic body for float and double.
 *
 * A .c file that defines FNN_GENERIC_BODY as its own name and includes this
 * header gets its body compiled twice: once with REAL = float and names
 * suffixed _f32, once with REAL = double and names suffixed _f64.  Inside the
 * body, FN(name) builds the suffixed name, GEMM is the matching BLAS field
 * of fnn_blas and REAL_IS_FLOAT is 1 for float; SQRT is sqrt in REAL
 * precision (sqrtf vectorizes where the float -> double -> float round trip
 * did not).
 */
#ifndef FNN_GENERIC_BODY
#error "define FNN_GENERIC_BODY before including generic.h"
#endif

#define REAL float
#define REAL_IS_FLOAT 1
#define FN(name) name##_f32
#define GEMM sgemm
#define SQRT sqrtf /* correctly rounded, so equal to (float)sqrt((double)x) */
#define REAL_EPS 1.1920928955078125e-07
#include FNN_GENERIC_BODY
#undef REAL
#undef REAL_IS_FLOAT
#undef FN
#undef GEMM
#undef SQRT
#undef REAL_EPS

#define REAL double
#define REAL_IS_FLOAT 0
#define FN(name) name##_f64
#define GEMM dgemm
#define SQRT sqrt
#define REAL_EPS 2.220446049250313e-16
#include FNN_GENERIC_BODY
#undef REAL
#undef REAL_IS_FLOAT
#undef FN
#undef GEMM
#undef SQRT
#undef REAL_EPS
