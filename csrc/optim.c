/*
 * optim.c -- optimizer updates, one flat loop over all parameters.
 *
 * SGD (momentum, Nesterov) and Adam follow sklearn's _stochastic_optimizers
 * (identical to Keras); AdaGrad, RMSProp, AdaMax, Nadam and AdamW follow
 * Keras 3.
 * Moments are updated as beta m + (1 - beta) g (sklearn's form).
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>

#include "internal.h"

#define FNN_GENERIC_BODY "optim.c"
#include "generic.h"

#else /* type-generic body */

FNN_HOT fnn_status FN(fnn_optim_step)(const fnn_net *net, REAL *params_, const REAL *grad_,
                                      fnn_optstate *opt, double lr, int nt)
{
    const int64_t n = net->n_params;
    /* Four distinct buffers: restrict lets the compiler vectorize. */
    REAL *restrict params = params_;
    const REAL *restrict grad = grad_;
    REAL *restrict m = (REAL *)opt->m, *restrict v = (REAL *)opt->v;
    const REAL b1 = (REAL)net->beta_1, b2 = (REAL)net->beta_2, eps = (REAL)net->epsilon;
    const double t = (double)(opt->t + 1); /* this update's number, 1 for the first */

    switch ((fnn_solver)net->solver) {
    case FNN_SOLVER_SGD: {
        const REAL mu = (REAL)net->momentum, r = (REAL)lr;
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
        const REAL lr_t =
            (REAL)(lr * sqrt(1.0 - pow(net->beta_2, t)) / (1.0 - pow(net->beta_1, t)));
        FNN_PAR_ELEMENTS(nt, n, i, {
            m[i] = b1 * m[i] + (1 - b1) * grad[i];
            v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
            params[i] -= lr_t * m[i] / (SQRT(v[i]) + eps);
        });
        break;
    }
    case FNN_SOLVER_ADAGRAD: {
        /* acc starts at initial_accumulator_value (set by the caller). */
        const REAL r = (REAL)lr;
        FNN_PAR_ELEMENTS(nt, n, i, {
            m[i] += grad[i] * grad[i];
            params[i] -= r * grad[i] / SQRT(m[i] + eps);
        });
        break;
    }
    case FNN_SOLVER_RMSPROP: {
        const REAL rho = (REAL)net->rho, r = (REAL)lr;
        FNN_PAR_ELEMENTS(nt, n, i, {
            m[i] = rho * m[i] + (1 - rho) * grad[i] * grad[i];
            params[i] -= r * grad[i] / SQRT(m[i] + eps);
        });
        break;
    }
    case FNN_SOLVER_ADAMAX: {
        const REAL r = (REAL)(lr / (1.0 - pow(net->beta_1, t)));
        FNN_PAR_ELEMENTS(nt, n, i, {
            m[i] = b1 * m[i] + (1 - b1) * grad[i];
            REAL ag = grad[i] < 0 ? -grad[i] : grad[i], bu = b2 * v[i];
            v[i] = bu > ag ? bu : ag;
            params[i] -= r * m[i] / (v[i] + eps);
        });
        break;
    }
    case FNN_SOLVER_NADAM: {
        /* Keras 3 Nadam: mu_t = b1 (1 - 0.5 * 0.96^t), running product of
         * mu up to t; m_hat mixes the next step's momentum with the gradient. */
        const double mu_t = net->beta_1 * (1.0 - 0.5 * pow(0.96, t));
        const double mu_next = net->beta_1 * (1.0 - 0.5 * pow(0.96, t + 1));
        const double prod = opt->nadam_mu_product * mu_t;
        const double prod_next = prod * mu_next;
        opt->nadam_mu_product = prod;
        const REAL cm = (REAL)(mu_next / (1.0 - prod_next));
        const REAL cg = (REAL)((1.0 - mu_t) / (1.0 - prod));
        const REAL cv = (REAL)(1.0 / (1.0 - pow(net->beta_2, t)));
        const REAL r = (REAL)lr;
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
        const REAL lr_t =
            (REAL)(lr * sqrt(1.0 - pow(net->beta_2, t)) / (1.0 - pow(net->beta_1, t)));
        const REAL decay = (REAL)(lr * net->weight_decay);
        FNN_PAR_ELEMENTS(nt, n, i, {
            params[i] -= params[i] * decay;
            m[i] = b1 * m[i] + (1 - b1) * grad[i];
            v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
            params[i] -= lr_t * m[i] / (SQRT(v[i]) + eps);
        });
        break;
    }
    default:
        return FNN_ERR_BADARG;
    }
    opt->t += 1;
    return FNN_OK;
}

#endif
