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

/* The scalars of one update, computed once per step (in double, then
 * rounded as the element loops use them). */
typedef struct {
    REAL b1, b2, eps, mu, r, rho, lr_t, decay, cm, cg, cv;
} FN(step_coefs);

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
