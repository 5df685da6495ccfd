/*
 * optim.c -- optimizer updates, one flat loop over all parameters.
 *
 * SGD (momentum, Nesterov) and Adam follow sklearn's _stochastic_optimizers
 * (identical to Keras); AdaGrad, RMSProp, AdaMax, Nadam and AdamW follow
 * Keras 3.
 * Moments are updated as beta m + (1 - beta) g (sklearn's form).  On
 * AVX-512 CPUs the solvers that divide run an explicit vector loop
 * (update_avx512) whose division avoids the divider unit.
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <float.h>
#include <math.h>

#include "internal.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FNN_NO_SGEMM_KERNELS)
#include <immintrin.h>
#define FNN_OPTIM_AVX512 1
#else
#define FNN_OPTIM_AVX512 0
#endif

#define FNN_GENERIC_BODY "optim.c"
#include "generic.h"

#else /* type-generic body */

/* The scalars of one update, computed once per step (in double, then
 * rounded as the element loops use them). */
typedef struct {
    REAL b1, b2, eps, mu, r, rho, lr_t, decay, cm, cg, cv;
} FN(step_coefs);

#if FNN_OPTIM_AVX512
#if REAL_IS_FLOAT
#define OV_W 16
#define OV_VEC __m512
#define OV_MASK __mmask16
#define OV_(op) _mm512_##op##_ps
#define OV_BITS(x) _mm512_castps_si512(x)
#define OV_FROM_BITS(x) _mm512_castsi512_ps(x)
#define OV_CMP_MASK _mm512_cmp_ps_mask
#define OV_MIN FLT_MIN
#else
#define OV_W 8
#define OV_VEC __m512d
#define OV_MASK __mmask8
#define OV_(op) _mm512_##op##_pd
#define OV_BITS(x) _mm512_castpd_si512(x)
#define OV_FROM_BITS(x) _mm512_castsi512_pd(x)
#define OV_CMP_MASK _mm512_cmp_pd_mask
#define OV_MIN DBL_MIN
#endif

/* num / min(d, 1 / (4 MIN)) for d >= 4 MIN, without the divider: the 14-bit
 * reciprocal estimate refined by Newton steps (one for float, two for
 * double) to within about an ulp, then one correction of the quotient by
 * its exact FMA residual (Markstein), written q - r (d q - num) so that a
 * zero numerator keeps its sign.  Not proven correctly rounded for every
 * operand, but equal to the division on every one tried: 160 million Adam
 * updates of random data in each type, tests/c's t_update_exact for every
 * solver here (gradients from 1e-45 to 3e38 in float included), and 28
 * digits fits (7 solvers, 2 networks, 2 types) that hash the same as with
 * the division.  The cap keeps the reciprocal normal: without it a v
 * overflowed to inf (a float gradient over 1.8e19 passes the step's check,
 * which sums squares in double) gave NaN through inf * 0 where the division
 * gives 0; with it the step is num / 2.1e37 (num / 1.1e307 in double),
 * negligible beside the parameter, and a NaN d still gives NaN (min returns
 * its second operand when one is NaN).  A per-lane test with a fallback to
 * the division cost 10% of the loop on Zen 4.  Why divider-free: the
 * update divides once per parameter, and the divider, which also takes the
 * square root, bounded it on Sapphire Rapids: Adam over the chapter
 * network's 266,610 parameters on 2 threads took 214 us in float64 (151
 * with this) and 57 us in float32 (45); on Zen 4, 276 and 135 us with the
 * division, 145 and 62 with this. */
static inline __attribute__((always_inline)) FNN_TARGET_AVX512 OV_VEC
FN(div_newton)(OV_VEC num, OV_VEC d)
{
    d = OV_(min)(OV_(set1)(1 / (4 * OV_MIN)), d);
    const OV_VEC one = OV_(set1)((REAL)1);
    OV_VEC r = OV_(rcp14)(d);
    r = OV_(fmadd)(r, OV_(fnmadd)(d, r, one), r);
#if !REAL_IS_FLOAT
    r = OV_(fmadd)(r, OV_(fnmadd)(d, r, one), r);
#endif
    const OV_VEC q = OV_(mul)(num, r);
    return OV_(fnmadd)(r, OV_(fmsub)(d, q, num), q);
}

/* The update of n parameters in AVX-512 registers, for the solvers that
 * divide (update_avx512_ok lists them): the generic loop's operations, in its order and
 * with the FMA contractions GCC gives it spelled out, except the division
 * (div_newton); the tail in masked lanes, so that every element takes the
 * same path whatever the thread ranges. */
FNN_TARGET_AVX512 static void FN(update_avx512)(int solver, const FN(step_coefs) *c,
                                                      REAL *restrict p,
                                                      const REAL *restrict g,
                                                      REAL *restrict m, REAL *restrict v,
                                                      int64_t n)
{
    const OV_VEC b1 = OV_(set1)(c->b1), c1 = OV_(set1)(1 - c->b1), b2 = OV_(set1)(c->b2);
    const OV_VEC c2 = OV_(set1)(1 - c->b2), eps = OV_(set1)(c->eps), r = OV_(set1)(c->r);
    const OV_VEC lr_t = OV_(set1)(c->lr_t), decay = OV_(set1)(c->decay);
    const OV_VEC rho = OV_(set1)(c->rho), c_rho = OV_(set1)(1 - c->rho);
    const OV_VEC cm = OV_(set1)(c->cm), cg = OV_(set1)(c->cg), cv = OV_(set1)(c->cv);
    const OV_VEC zero = OV_(setzero)();
    const int has_v = solver != FNN_SOLVER_ADAGRAD && solver != FNN_SOLVER_RMSPROP;
    for (int64_t i = 0; i < n; i += OV_W) {
        const OV_MASK k = n - i >= OV_W ? (OV_MASK)-1 : (OV_MASK)((1u << (n - i)) - 1u);
        const OV_VEC gi = OV_(maskz_loadu)(k, g + i), mi0 = OV_(maskz_loadu)(k, m + i);
        const OV_VEC vi0 = has_v ? OV_(maskz_loadu)(k, v + i) : zero;
        OV_VEC pi = OV_(maskz_loadu)(k, p + i), mi, vi = vi0, q;
        switch (solver) {
        case FNN_SOLVER_ADAMW: /* decay first, then Adam */
            pi = OV_(fnmadd)(pi, decay, pi);
            /* fall through */
        case FNN_SOLVER_ADAM:
            mi = OV_(fmadd)(b1, mi0, OV_(mul)(c1, gi));
            vi = OV_(fmadd)(b2, vi0, OV_(mul)(OV_(mul)(c2, gi), gi));
            q = FN(div_newton)(OV_(mul)(lr_t, mi), OV_(add)(OV_(sqrt)(vi), eps));
            break;
        case FNN_SOLVER_NADAM: {
            mi = OV_(fmadd)(b1, mi0, OV_(mul)(c1, gi));
            vi = OV_(fmadd)(b2, vi0, OV_(mul)(OV_(mul)(c2, gi), gi));
            const OV_VEC m_hat = OV_(fmadd)(cm, mi, OV_(mul)(cg, gi));
            q = FN(div_newton)(OV_(mul)(r, m_hat), OV_(add)(OV_(sqrt)(OV_(mul)(cv, vi)), eps));
            break;
        }
        case FNN_SOLVER_ADAMAX: {
            mi = OV_(fmadd)(b1, mi0, OV_(mul)(c1, gi));
            /* |g| as `g < 0 ? -g : g` (keeps -0.0), then `bu > ag ? bu : ag` */
            const OV_VEC neg =
                OV_FROM_BITS(_mm512_xor_si512(OV_BITS(gi), OV_BITS(OV_(set1)((REAL)-0.0))));
            const OV_VEC ag = OV_(mask_mov)(neg, OV_CMP_MASK(gi, zero, _CMP_NLT_UQ), gi);
            vi = OV_(max)(OV_(mul)(b2, vi0), ag);
            q = FN(div_newton)(OV_(mul)(r, mi), OV_(add)(vi, eps));
            break;
        }
        case FNN_SOLVER_RMSPROP:
            mi = OV_(fmadd)(rho, mi0, OV_(mul)(OV_(mul)(c_rho, gi), gi));
            q = FN(div_newton)(OV_(mul)(r, gi), OV_(sqrt)(OV_(add)(mi, eps)));
            break;
        default: /* FNN_SOLVER_ADAGRAD (update_avx512_ok admits no other) */
            mi = OV_(fmadd)(gi, gi, mi0);
            q = FN(div_newton)(OV_(mul)(r, gi), OV_(sqrt)(OV_(add)(mi, eps)));
            break;
        }
        OV_(mask_storeu)(m + i, k, mi);
        if (has_v)
            OV_(mask_storeu)(v + i, k, vi);
        OV_(mask_storeu)(p + i, k, OV_(sub)(pi, q));
    }
}

/* update_avx512 runs on this CPU, knows this solver (a solver added later
 * takes the generic loop until it gets a case there), and every divisor it
 * meets (at least eps or its square root) is at least 4 MIN, as div_newton
 * needs. */
static int FN(update_avx512_ok)(int solver, REAL eps)
{
    const int known = solver == FNN_SOLVER_ADAM || solver == FNN_SOLVER_ADAMW ||
                      solver == FNN_SOLVER_NADAM || solver == FNN_SOLVER_ADAMAX ||
                      solver == FNN_SOLVER_RMSPROP || solver == FNN_SOLVER_ADAGRAD;
    return known && fnn_sgemm_kernel_available() == FNN_SGEMM_AVX512 && eps >= 4 * OV_MIN &&
           eps <= 1 / (4 * OV_MIN);
}
#undef OV_W
#undef OV_VEC
#undef OV_MASK
#undef OV_
#undef OV_BITS
#undef OV_FROM_BITS
#undef OV_CMP_MASK
#undef OV_MIN
#endif

/* The update of the n parameters at params (gradient, moments at the same
 * offsets). */
FNN_HOT static void FN(update_range)(const fnn_net *net, const FN(step_coefs) *c,
                                     REAL *params_, const REAL *grad_, REAL *m_, REAL *v_,
                                     int64_t n, int nt)
{
    /* Four distinct buffers: restrict lets the compiler vectorize. */
    REAL *restrict params = params_;
    const REAL *restrict grad = grad_;
    REAL *restrict m = m_, *restrict v = v_;
    const REAL b1 = c->b1, b2 = c->b2, eps = c->eps;
#if FNN_OPTIM_AVX512
    if (FN(update_avx512_ok)(net->solver, eps)) {
        FNN_PAR_RANGES(nt, n, lo, hi,
                       FN(update_avx512)(net->solver, c, params + lo, grad + lo, m + lo,
                                         v != NULL ? v + lo : NULL, hi - lo));
        return;
    }
#endif

    switch ((fnn_solver)net->solver) {
    case FNN_SOLVER_SGD: {
        const REAL mu = c->mu, r = c->r;
        if (net->nesterov) {
            FNN_PAR_ELEMENTS(nt, n, i, {
                m[i] = mu * m[i] - r * grad[i];
                params[i] += mu * m[i] - r * grad[i];
            });
        } else {
            FNN_PAR_ELEMENTS(nt, n, i, {
                m[i] = mu * m[i] - r * grad[i];
                params[i] += m[i];
            });
        }
        break;
    }
    case FNN_SOLVER_ADAM: {
        /* lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); theta -= lr_t m / (sqrt(v) + eps) */
        const REAL lr_t = c->lr_t;
        FNN_PAR_ELEMENTS(nt, n, i, {
            m[i] = b1 * m[i] + (1 - b1) * grad[i];
            v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
            params[i] -= lr_t * m[i] / (SQRT(v[i]) + eps);
        });
        break;
    }
    case FNN_SOLVER_ADAGRAD: {
        /* acc starts at initial_accumulator_value (set by the caller). */
        const REAL r = c->r;
        FNN_PAR_ELEMENTS(nt, n, i, {
            m[i] += grad[i] * grad[i];
            params[i] -= r * grad[i] / SQRT(m[i] + eps);
        });
        break;
    }
    case FNN_SOLVER_RMSPROP: {
        const REAL rho = c->rho, r = c->r;
        FNN_PAR_ELEMENTS(nt, n, i, {
            m[i] = rho * m[i] + (1 - rho) * grad[i] * grad[i];
            params[i] -= r * grad[i] / SQRT(m[i] + eps);
        });
        break;
    }
    case FNN_SOLVER_ADAMAX: {
        const REAL r = c->r;
        FNN_PAR_ELEMENTS(nt, n, i, {
            m[i] = b1 * m[i] + (1 - b1) * grad[i];
            REAL ag = grad[i] < 0 ? -grad[i] : grad[i], bu = b2 * v[i];
            v[i] = bu > ag ? bu : ag;
            params[i] -= r * m[i] / (v[i] + eps);
        });
        break;
    }
    case FNN_SOLVER_NADAM: {
        const REAL cm = c->cm, cg = c->cg, cv = c->cv, r = c->r;
        FNN_PAR_ELEMENTS(nt, n, i, {
            m[i] = b1 * m[i] + (1 - b1) * grad[i];
            v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
            REAL m_hat = cm * m[i] + cg * grad[i];
            REAL v_hat = cv * v[i];
            params[i] -= r * m_hat / (SQRT(v_hat) + eps);
        });
        break;
    }
    case FNN_SOLVER_ADAMW: {
        /* Keras 3 AdamW: decoupled weight decay theta -= theta * wd * lr on
         * every trainable variable (kernels, biases, BatchNorm gamma/beta:
         * Keras excludes none by default), then the Adam step above. */
        const REAL lr_t = c->lr_t, decay = c->decay;
        FNN_PAR_ELEMENTS(nt, n, i, {
            params[i] -= params[i] * decay;
            m[i] = b1 * m[i] + (1 - b1) * grad[i];
            v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
            params[i] -= lr_t * m[i] / (SQRT(v[i]) + eps);
        });
        break;
    }
    default:
        break;
    }
}

FNN_HOT fnn_status FN(fnn_optim_step)(const fnn_net *net, REAL *params, const REAL *grad,
                                      fnn_optstate *opt, double lr, int nt)
{
    if (net->solver < 0 || net->solver >= FNN_SOLVER_COUNT)
        return FNN_ERR_BADARG;
    const double t = (double)(opt->t + 1); /* this update's number, 1 for the first */
    FN(step_coefs) c = {0};
    c.b1 = (REAL)net->beta_1;
    c.b2 = (REAL)net->beta_2;
    c.eps = (REAL)net->epsilon;
    c.mu = (REAL)net->momentum;
    c.r = (REAL)lr;
    c.rho = (REAL)net->rho;
    c.lr_t = (REAL)(lr * sqrt(1.0 - pow(net->beta_2, t)) / (1.0 - pow(net->beta_1, t)));
    c.decay = (REAL)(lr * net->weight_decay);
    if (net->solver == FNN_SOLVER_ADAMAX)
        c.r = (REAL)(lr / (1.0 - pow(net->beta_1, t)));
    if (net->solver == FNN_SOLVER_NADAM) {
        /* Keras 3 Nadam: mu_t = b1 (1 - 0.5 * 0.96^t), running product of
         * mu up to t; m_hat mixes the next step's momentum with the gradient. */
        const double mu_t = net->beta_1 * (1.0 - 0.5 * pow(0.96, t));
        const double mu_next = net->beta_1 * (1.0 - 0.5 * pow(0.96, t + 1));
        const double prod = opt->nadam_mu_product * mu_t;
        const double prod_next = prod * mu_next;
        opt->nadam_mu_product = prod;
        c.cm = (REAL)(mu_next / (1.0 - prod_next));
        c.cg = (REAL)((1.0 - mu_t) / (1.0 - prod));
        c.cv = (REAL)(1.0 / (1.0 - pow(net->beta_2, t)));
    }
    REAL *m = (REAL *)opt->m, *v = (REAL *)opt->v;
    if (net->frozen_layers == 0) {
        FN(update_range)(net, &c, params, grad, m, v, net->n_params, nt);
    } else {
        /* Only the trainable layers' tensors: frozen ones keep their values
         * and their optimizer moments. */
        for (int l = net->frozen_layers; l < net->n_layers; l++) {
            int64_t off[3], len[3];
            int n = 0;
            off[n] = net->w_off[l];
            len[n++] = net->units[l] * net->units[l + 1];
            if (net->b_off[l] >= 0) {
                off[n] = net->b_off[l];
                len[n++] = net->units[l + 1];
            }
            if (l + 1 < net->n_layers && fnn_bn_present(net, l + 1)) { /* gamma, beta */
                off[n] = net->bn_off[l + 1];
                len[n++] = 2 * fnn_bn_width(net, l + 1);
            }
            for (int i = 0; i < n; i++)
                FN(update_range)(net, &c, params + off[i], grad + off[i], m + off[i],
                                 v != NULL ? v + off[i] : NULL, len[i], nt);
        }
    }
    opt->t += 1;
    return FNN_OK;
}

#endif
