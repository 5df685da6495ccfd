/*
 * train.c -- the network: forward and backward passes over a mini-batch, the
 * training step (loss, backprop, penalty, clipping, update, max-norm), and
 * the three entry points: one epoch, the full-batch loss and gradient (lbfgs,
 * gradient checks), and prediction.
 *
 * All scratch memory lives in a workspace allocated at the start of a call
 * and freed before it returns, except a training call's (an epoch, a
 * full-batch gradient) when the network carries an fnn_scratch to keep it
 * in; parameters, statistics and optimizer state belong to the caller.
 */
#ifndef FNN_GENERIC_PASS
#define FNN_GENERIC_PASS
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int64_t fnn_bn_width(const fnn_net *net, int s) { return net->units[s]; }

int fnn_bn_present(const fnn_net *net, int s)
{
    if (net->bn_off == NULL || net->bn_off[s] < 0)
        return 0;
    return s == 0 ? net->batch_norm_input != 0 : net->batch_norm != FNN_BN_NONE;
}

/* Slot s follows Dense layer s - 1 (slot 0, the inputs, sits below layer
 * 0): frozen with the layers below it. */
int fnn_bn_frozen(const fnn_net *net, int s)
{
    return net->frozen_layers > 0 && s <= net->frozen_layers;
}

int fnn_tensor_frozen(const fnn_net *net, int64_t off)
{
    for (int l = 0; l < net->frozen_layers; l++)
        if (off == net->w_off[l] || off == net->b_off[l])
            return 1;
    for (int s = 0; s <= net->frozen_layers && s < net->n_layers; s++)
        if (fnn_bn_frozen(net, s) && fnn_bn_present(net, s) &&
            (off == net->bn_off[s] || off == net->bn_off[s] + fnn_bn_width(net, s)))
            return 1;
    return 0;
}

/* Order: every Dense kernel first (tensor l is W_l), then the biases, then
 * BN gamma and beta per slot. */
int fnn_list_tensors(const fnn_net *net, int64_t *off, int64_t *len)
{
    int n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        off[n] = net->w_off[l];
        len[n++] = net->units[l] * net->units[l + 1];
    }
    for (int l = 0; l < net->n_layers; l++)
        if (net->b_off[l] >= 0) {
            off[n] = net->b_off[l];
            len[n++] = net->units[l + 1];
        }
    for (int s = 0; s < net->n_layers; s++)
        if (fnn_bn_present(net, s)) {
            int64_t w = fnn_bn_width(net, s);
            off[n] = net->bn_off[s];
            len[n++] = w;
            off[n] = net->bn_off[s] + w;
            len[n++] = w;
        }
    return n;
}

/* Every scratch allocation of a call, freed together: allocation i and its
 * size at ptr[i], bytes[i].  With `kept`, the lists are the scratch's, and
 * they outlive the call. */
typedef struct {
    void **ptr;
    size_t *bytes;
    int n, cap;
    int failed;
    fnn_scratch *kept;
} fnn_allocs;

struct fnn_scratch {
    void **ptr;
    size_t *bytes;
    int n, cap; /* buffers held, list capacity */
    int busy;   /* a call is using it (atomic) */
};

fnn_scratch *fnn_scratch_new(void) { return calloc(1, sizeof(fnn_scratch)); }

void fnn_scratch_free(fnn_scratch *scratch)
{
    if (scratch == NULL)
        return;
    for (int i = 0; i < scratch->n; i++) free(scratch->ptr[i]);
    free(scratch->ptr);
    free(scratch->bytes);
    free(scratch);
}

/* Start the allocations of a call, at most cap of them: in the scratch's
 * lists when there is one that no other call is using, else in new ones. */
static void fnn_allocs_begin(fnn_allocs *al, int cap, fnn_scratch *scratch)
{
    memset(al, 0, sizeof(*al));
    al->cap = cap;
    if (scratch != NULL && !__atomic_exchange_n(&scratch->busy, 1, __ATOMIC_ACQUIRE)) {
        if (scratch->cap < cap) {
            void **p = realloc(scratch->ptr, (size_t)cap * sizeof(void *));
            if (p != NULL)
                scratch->ptr = p;
            size_t *b = realloc(scratch->bytes, (size_t)cap * sizeof(size_t));
            if (b != NULL)
                scratch->bytes = b;
            if (p != NULL && b != NULL)
                scratch->cap = cap;
        }
        if (scratch->cap >= cap) {
            al->ptr = scratch->ptr;
            al->bytes = scratch->bytes;
            al->kept = scratch;
            return;
        }
        __atomic_store_n(&scratch->busy, 0, __ATOMIC_RELEASE);
    }
    al->ptr = calloc((size_t)cap, sizeof(void *));
    al->bytes = calloc((size_t)cap, sizeof(size_t));
    al->failed = al->ptr == NULL || al->bytes == NULL;
}

/* `bytes` of zeros: the kept buffer at this position when it has that size
 * (zeroed again), else a new one. */
static void *fnn_alloc(fnn_allocs *al, size_t bytes)
{
    if (al->failed || al->n >= al->cap) {
        al->failed = 1;
        return NULL;
    }
    const int i = al->n;
    bytes = bytes ? bytes : 1;
    const int held = al->kept != NULL && i < al->kept->n;
    if (held && al->bytes[i] == bytes) {
        memset(al->ptr[i], 0, bytes);
    } else {
        if (held)
            free(al->ptr[i]);
        al->ptr[i] = calloc(bytes, 1);
        al->bytes[i] = al->ptr[i] != NULL ? bytes : 0;
        if (al->kept != NULL && !held)
            al->kept->n = i + 1;
        if (al->ptr[i] == NULL) {
            al->failed = 1;
            return NULL;
        }
    }
    al->n = i + 1;
    return al->ptr[i];
}

/* `bytes` starting `page_offset` bytes past a 4096-byte boundary.  The
 * gradient is streamed together with the parameters and optimizer moments,
 * which Python places at other offsets (_network.staggered_empty): loads
 * that share the low 12 address bits of a recent store to another array
 * stall on a false dependency (4K aliasing). */
static void *fnn_alloc_at(fnn_allocs *al, size_t bytes, size_t page_offset)
{
    char *raw = fnn_alloc(al, bytes + 4096);
    if (raw == NULL)
        return NULL;
    return raw + ((page_offset - (uintptr_t)raw) & 4095);
}

/* The end of a call: its buffers freed, or left in the scratch for the next. */
static void fnn_free_all(fnn_allocs *al)
{
    if (al->kept != NULL) {
        __atomic_store_n(&al->kept->busy, 0, __ATOMIC_RELEASE);
    } else {
        for (int i = 0; i < al->n; i++) free(al->ptr[i]);
        free(al->ptr);
        free(al->bytes);
    }
    al->ptr = NULL;
    al->bytes = NULL;
    al->n = 0;
}

/* 0 <= code < count (the registries' FNN_*_COUNT). */
static int fnn_code_ok(int32_t code, int count) { return code >= 0 && code < count; }

/* Sizes present and every code within its registry; a hidden layer's
 * activation must be one registered as hidden. */
static int fnn_check_net(const fnn_net *net)
{
    if (net == NULL || net->n_layers < 1 || net->units == NULL || net->activation == NULL ||
        net->w_off == NULL || net->b_off == NULL || net->n_threads < 1 ||
        !fnn_code_ok(net->loss, FNN_LOSS_COUNT) || !fnn_code_ok(net->solver, FNN_SOLVER_COUNT) ||
        !fnn_code_ok(net->batch_norm, FNN_BN_COUNT) || !fnn_code_ok(net->clip, FNN_CLIP_COUNT) ||
        !fnn_code_ok(net->penalty, FNN_PENALTY_COUNT) || net->frozen_layers < 0 ||
        net->frozen_layers >= net->n_layers)
        return 0;
    for (int l = 0; l <= net->n_layers; l++)
        if (net->units[l] < 1)
            return 0;
    for (int l = 0; l < net->n_layers; l++) {
        const int32_t act = net->activation[l];
        if (!fnn_code_ok(act, FNN_ACT_COUNT) ||
            (l < net->n_layers - 1 && !fnn_activation_table[act].hidden))
            return 0;
    }
    return 1;
}

/* 1 when a frozen BN slot is present: training then reads its moving
 * statistics. */
static int fnn_frozen_bn_present(const fnn_net *net)
{
    for (int s = 0; s <= net->frozen_layers && s < net->n_layers; s++)
        if (fnn_bn_present(net, s) && fnn_bn_frozen(net, s))
            return 1;
    return 0;
}

/* The data matches the network's input width. */
static int fnn_check_data(const fnn_net *net, const fnn_data *data)
{
    return data != NULL && data->n_rows >= 0 && data->n_cols == net->units[0] &&
           (data->x != NULL || data->csr_indptr != NULL || data->n_rows == 0);
}

/* The optimizer state holds the buffers the solver uses. */
static int fnn_check_opt(const fnn_net *net, const fnn_optstate *opt)
{
    return opt != NULL && opt->m != NULL &&
           (!fnn_solver_table[net->solver].uses_v || opt->v != NULL);
}

#define FNN_GENERIC_BODY "train.c"
#include "generic.h"

#else /* type-generic body */

typedef struct {
    int64_t cap;    /* rows the buffers hold */
    REAL *xin;      /* cap x units[0]: the gathered batch */
    REAL *ybuf, *swbuf;
    int64_t *idx;   /* cap row indices (prediction / full batch) */
    REAL **h;       /* [L+1]: h[l] feeds layer l's dropout; h[L] is the output */
    REAL **hbuf;    /* [L]: BN outputs on h (slot 0 = inputs, slot s: after layer s-1) */
    REAL **xd;      /* [L]: dropout outputs */
    uint8_t **keep; /* [L]: dropout masks */
    REAL **x;       /* [L]: input actually fed to Dense l (h[l] or xd[l]) */
    int *dropped;   /* [L]: dropout applied at layer l in the last forward */
    REAL **z;       /* [L]: Dense outputs */
    REAL **prebuf;  /* [L]: BN-before outputs */
    REAL **pre;     /* [L]: activation inputs (z or prebuf) */
    REAL **abuf;    /* [L]: activation outputs (absent for identity) */
    REAL **a;       /* [L]: activation outputs (abuf or pre) */
    REAL **xhat, **istd;  /* [L] BN slots */
    double **mean, **var; /* [L] BN slots: batch statistics of the last forward */
    REAL *d1, *d2;  /* cap x max units: backward ping-pong */
    REAL *wt;       /* a hidden layer's W^T, for its input gradient (dense.c) */
    double *rowbuf; /* cap */
    REAL *grad;     /* n_params */
    int64_t *toff, *tlen;
    double *sq;     /* per-tensor squared gradient norms */
    double *part;   /* fnn_penalty_norms' per-chunk sums */
    int n_tensors;
} FN(fnn_ws);

static int FN(ws_init)(FN(fnn_ws) *w, fnn_allocs *al, const fnn_net *net, int64_t cap,
                       int with_dropout, int with_grad, fnn_scratch *scratch)
{
    const int L = net->n_layers;
    const int64_t *u = net->units;
    int64_t umax = 0;
    for (int l = 0; l <= L; l++) umax = u[l] > umax ? u[l] : umax;
    fnn_allocs_begin(al, 16 * L + 32, scratch);
    memset(w, 0, sizeof(*w));
    w->cap = cap;
#define ALLOC(type, count) ((type *)fnn_alloc(al, (size_t)(count) * sizeof(type)))
    w->xin = ALLOC(REAL, cap * u[0]);
    w->ybuf = ALLOC(REAL, cap * u[L]);
    w->swbuf = ALLOC(REAL, cap);
    w->idx = ALLOC(int64_t, cap);
    w->h = ALLOC(REAL *, L + 1);
    w->hbuf = ALLOC(REAL *, L);
    w->xd = ALLOC(REAL *, L);
    w->keep = ALLOC(uint8_t *, L);
    w->x = ALLOC(REAL *, L);
    w->dropped = ALLOC(int, L);
    w->z = ALLOC(REAL *, L);
    w->prebuf = ALLOC(REAL *, L);
    w->pre = ALLOC(REAL *, L);
    w->abuf = ALLOC(REAL *, L);
    w->a = ALLOC(REAL *, L);
    w->xhat = ALLOC(REAL *, L);
    w->istd = ALLOC(REAL *, L);
    w->mean = ALLOC(double *, L);
    w->var = ALLOC(double *, L);
    int64_t wmax = 0; /* layers above the first: their inputs' gradients */
    for (int l = 1; l < L; l++) wmax = u[l] * u[l + 1] > wmax ? u[l] * u[l + 1] : wmax;
    if (with_grad && wmax > 0)
        w->wt = ALLOC(REAL, wmax);
    w->d1 = ALLOC(REAL, cap * umax);
    w->d2 = ALLOC(REAL, cap * umax);
    w->rowbuf = ALLOC(double, cap);
    w->toff = ALLOC(int64_t, 4 * L);
    w->tlen = ALLOC(int64_t, 4 * L);
    w->sq = ALLOC(double, 4 * L);
    if (al->failed)
        return 0;
    for (int l = 0; l < L; l++) {
        int hidden = l < L - 1;
        w->z[l] = ALLOC(REAL, cap * u[l + 1]);
        if (hidden && net->batch_norm == FNN_BN_BEFORE)
            w->prebuf[l] = ALLOC(REAL, cap * u[l + 1]);
        if (net->activation[l] != FNN_ACT_IDENTITY)
            w->abuf[l] = ALLOC(REAL, cap * u[l + 1]);
        if (with_dropout && net->dropout != NULL && net->dropout[l] > 0) {
            w->xd[l] = ALLOC(REAL, cap * u[l]);
            w->keep[l] = ALLOC(uint8_t, cap * u[l]);
        }
    }
    for (int s = 0; s < L; s++) {
        if (!fnn_bn_present(net, s))
            continue;
        int64_t width = fnn_bn_width(net, s);
        if (s == 0 || net->batch_norm == FNN_BN_AFTER)
            w->hbuf[s] = ALLOC(REAL, cap * width);
        w->xhat[s] = ALLOC(REAL, cap * width);
        w->istd[s] = ALLOC(REAL, width);
        w->mean[s] = ALLOC(double, width);
        w->var[s] = ALLOC(double, width);
    }
    if (with_grad)
        w->grad = fnn_alloc_at(al, (size_t)net->n_params * sizeof(REAL),
                               FNN_SLOT_GRAD * FNN_PAGE_SLOT_BYTES);
    if (al->failed)
        return 0;
    w->n_tensors = fnn_list_tensors(net, w->toff, w->tlen);
    w->part = ALLOC(double, 3 * fnn_reduce_chunks(w->n_tensors, w->tlen));
#undef ALLOC
    return !al->failed;
}

/* BN slot s on `in` (rows x width) into `out`: batch statistics when
 * training a slot that is not frozen, moving statistics otherwise. */
static void FN(bn_slot_forward)(const fnn_net *net, const REAL *params, const REAL *stats,
                                FN(fnn_ws) *w, int s, REAL *out, const REAL *in, int64_t rows,
                                int train, int nt)
{
    int64_t width = fnn_bn_width(net, s);
    const REAL *gamma = params + net->bn_off[s], *beta = gamma + width;
    if (train && !fnn_bn_frozen(net, s)) {
        FN(fnn_bn_forward_train)(out, w->xhat[s], w->istd[s], w->mean[s], w->var[s], in, gamma,
                                 beta, rows, width, net->bn_epsilon, nt);
    } else {
        const REAL *mean = stats + net->stat_off[s], *var = mean + width;
        FN(fnn_bn_forward_infer)(out, in, gamma, beta, mean, var, rows, width,
                                 net->bn_epsilon, nt);
    }
}

/* Forward pass of `rows` gathered rows (w->xin).  Dropout masks are keyed by
 * (seed, step * L + layer, element index counted from row row0), so they do
 * not depend on how the rows are chunked. */
static void FN(forward)(const fnn_net *net, const fnn_blas *blas, const REAL *params,
                        const REAL *stats, FN(fnn_ws) *w, int64_t rows, int train,
                        int dropout_on, uint64_t seed, uint64_t step, int64_t row0, int nt)
{
    const int L = net->n_layers;
    const int64_t *u = net->units;
    REAL *h = w->xin;
    if (fnn_bn_present(net, 0)) {
        FN(bn_slot_forward)(net, params, stats, w, 0, w->hbuf[0], h, rows, train, nt);
        h = w->hbuf[0];
    }
    for (int l = 0; l < L; l++) {
        const int64_t n_in = u[l], n_out = u[l + 1];
        const int hidden = l < L - 1;
        w->h[l] = h;
        w->dropped[l] = dropout_on && w->xd[l] != NULL;
        if (w->dropped[l]) {
            FN(fnn_dropout_forward)(w->xd[l], w->keep[l], h, rows * n_in, net->dropout[l],
                                    net->alpha_dropout, seed, step * (uint64_t)L + l,
                                    (uint64_t)(row0 * n_in), nt);
            w->x[l] = w->xd[l];
        } else {
            w->x[l] = h;
        }
        const REAL *bias = net->b_off[l] >= 0 ? params + net->b_off[l] : NULL;
        FN(fnn_dense_forward)(blas, w->z[l], w->x[l], params + net->w_off[l], bias, rows, n_in,
                              n_out, nt);
        w->pre[l] = w->z[l];
        if (hidden && net->batch_norm == FNN_BN_BEFORE && fnn_bn_present(net, l + 1)) {
            FN(bn_slot_forward)(net, params, stats, w, l + 1, w->prebuf[l], w->z[l], rows,
                                train, nt);
            w->pre[l] = w->prebuf[l];
        }
        const int act = net->activation[l];
        w->a[l] = act == FNN_ACT_IDENTITY ? w->pre[l] : w->abuf[l];
        FN(fnn_act_forward)(act, net->leaky_slope, w->a[l], w->pre[l], rows, n_out, nt);
        h = w->a[l];
        if (hidden && net->batch_norm == FNN_BN_AFTER && fnn_bn_present(net, l + 1)) {
            FN(bn_slot_forward)(net, params, stats, w, l + 1, w->hbuf[l + 1], h, rows, train,
                                nt);
            h = w->hbuf[l + 1];
        }
    }
    w->h[L] = h;
}

/* Backward pass: w->d1 holds dL/d(output pre-activation) (rows x units[L]);
 * writes (or with `accumulate`, adds) the gradient of every trainable
 * parameter into grad.  It stops at the lowest trainable layer: nothing
 * below a frozen layer needs a gradient, which is what makes fine-tuning
 * cheap. */
static void FN(backward)(const fnn_net *net, const fnn_blas *blas, const REAL *params,
                         FN(fnn_ws) *w, REAL *grad, int64_t rows, int accumulate, int nt)
{
    const int L = net->n_layers;
    const int64_t *u = net->units;
    const int k = net->frozen_layers;
    REAL *d = w->d1, *dn = w->d2;
    for (int l = L - 1; l >= k; l--) {
        const int64_t n_in = u[l], n_out = u[l + 1];
        if (l < L - 1) { /* d = dL/dh_{l+1}: back through BN-after, activation, BN-before */
            const int s = l + 1;
            const int has_bn = fnn_bn_present(net, s);
            REAL *dgamma = has_bn ? grad + net->bn_off[s] : NULL;
            const REAL *gamma = has_bn ? params + net->bn_off[s] : NULL;
            if (has_bn && net->batch_norm == FNN_BN_AFTER)
                FN(fnn_bn_backward)(d, dgamma, dgamma + n_out, d, w->xhat[s], w->istd[s], gamma,
                                    rows, n_out, accumulate, nt);
            FN(fnn_act_backward)(net->activation[l], net->leaky_slope, d, d, w->pre[l], w->a[l],
                                 rows * n_out, nt);
            if (has_bn && net->batch_norm == FNN_BN_BEFORE)
                FN(fnn_bn_backward)(d, dgamma, dgamma + n_out, d, w->xhat[s], w->istd[s], gamma,
                                    rows, n_out, accumulate, nt);
        }
        /* d = dL/dz_l */
        const int need_dx = l > k || (k == 0 && fnn_bn_present(net, 0));
        REAL *dbias = net->b_off[l] >= 0 ? grad + net->b_off[l] : NULL;
        FN(fnn_dense_backward)(blas, need_dx ? dn : NULL, grad + net->w_off[l], dbias, d, w->x[l],
                               params + net->w_off[l], l > 0 ? w->wt : NULL, rows, n_in, n_out,
                               accumulate, nt);
        if (need_dx) {
            if (w->dropped[l])
                FN(fnn_dropout_backward)(dn, dn, w->keep[l], rows * n_in, net->dropout[l],
                                         net->alpha_dropout, nt);
            REAL *t = d;
            d = dn;
            dn = t;
        }
    }
    if (k == 0 && fnn_bn_present(net, 0)) { /* only gamma and beta: inputs need no gradient */
        const int64_t width = u[0];
        REAL *dgamma = grad + net->bn_off[0];
        FN(fnn_bn_backward)(NULL, dgamma, dgamma + width, d, w->xhat[0], w->istd[0],
                            params + net->bn_off[0], rows, width, accumulate, nt);
    }
}

/* Gather rows idx[0..rows) of X, y and sample weights into the workspace;
 * returns the sum of the batch's sample weights (rows when unweighted). */
static double FN(gather_batch)(const fnn_net *net, FN(fnn_ws) *w, const fnn_data *data,
                               const int64_t *idx, int64_t rows, int nt)
{
    const int64_t n_out = net->units[net->n_layers];
    FN(fnn_gather_x)(w->xin, data, idx, rows, nt);
    if (data->y != NULL) {
        const REAL *y = (const REAL *)data->y;
        for (int64_t i = 0; i < rows; i++)
            memcpy(w->ybuf + i * n_out, y + idx[i] * n_out, (size_t)n_out * sizeof(REAL));
    }
    if (data->sample_weight == NULL)
        return (double)rows;
    const REAL *sw = (const REAL *)data->sample_weight;
    double sum = 0;
    for (int64_t i = 0; i < rows; i++) {
        w->swbuf[i] = sw[idx[i]];
        sum += w->swbuf[i];
    }
    return sum;
}

/* sklearn's reported data loss from the summed (over outputs) loss. */
static double FN(reported_loss)(const fnn_net *net, double loss_sum, double sw_sum)
{
    double l = loss_sum / sw_sum;
    if (net->loss == FNN_LOSS_SQUARED)
        l /= (double)net->units[net->n_layers];
    return l;
}

/* 1 when some x[i] is NaN or infinite: x * 0 is NaN exactly for those and
 * +-0 otherwise, summed in 16 independent lanes (one vectorized pass; a
 * single running sum would be a serial chain of additions). */
FNN_HOT static int FN(fnn_any_nonfinite)(const REAL *x, int64_t n)
{
    REAL lane[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) lane[k] += x[i + k] * 0;
    for (; i < n; i++) lane[0] += x[i] * 0;
    int bad = 0;
    for (int k = 0; k < 16; k++) bad |= lane[k] != lane[k];
    return bad;
}

fnn_status FN(fnn_train_epoch)(const fnn_net *net, const fnn_blas *blas, REAL *params,
                               REAL *stats, fnn_optstate *opt, const fnn_data *data,
                               const int64_t *order, int64_t n_order, int64_t batch_size,
                               const double *lrs, uint64_t seed, fnn_epoch_report *report)
{
    if (!fnn_check_net(net) || !fnn_check_data(net, data) || data->y == NULL ||
        !fnn_check_opt(net, opt) || (order == NULL && n_order > 0) || batch_size < 1 ||
        (lrs == NULL && n_order > 0) || report == NULL || report->grad_norm_sum == NULL ||
        (stats == NULL && fnn_frozen_bn_present(net)))
        return FNN_ERR_BADARG;
    const int L = net->n_layers;
    const int64_t n_out = net->units[L];
    const int64_t cap = batch_size < n_order ? batch_size : (n_order > 0 ? n_order : 1);
    /* Each step runs on the thread count the policy picks; nothing computed
     * depends on it.  The first step of a call is not timed: it also pays
     * for first touches of the freshly allocated workspace. */
    fnn_thread_policy *policy = net->n_threads > 1 ? net->thread_policy : NULL;
    fnn_blas step_blas = blas != NULL ? *blas : (fnn_blas){NULL, NULL, 1, 0};
    blas = &step_blas;
    report->loss_sum = 0;
    report->n_steps = 0;
    fnn_allocs al;
    FN(fnn_ws) w;
    if (!FN(ws_init)(&w, &al, net, cap, 1, 1, net->scratch)) {
        fnn_free_all(&al);
        return FNN_ERR_NOMEM;
    }
    fnn_status status = FNN_OK;
    const REAL *sw = data->sample_weight != NULL ? w.swbuf : NULL;
    int64_t n_steps = (n_order + batch_size - 1) / batch_size;
    for (int64_t s = 0; s < n_steps; s++) {
        if (report->stop != NULL && *report->stop)
            break; /* interrupted: the caller is told by its own flag */
        const int64_t start = s * batch_size;
        const int64_t rows = start + batch_size <= n_order ? batch_size : n_order - start;
        const uint64_t step = (uint64_t)(opt->t);
        const int nt = fnn_thread_policy_threads(policy, net->n_threads);
        const double t0 = policy != NULL && s > 0 ? fnn_seconds() : -1;
        step_blas.n_threads = nt;
        double sw_sum = FN(gather_batch)(net, &w, data, order + start, rows, nt);
        if (!(sw_sum > 0))
            continue; /* a batch of zero weight carries no gradient: no update */
        FN(forward)(net, blas, params, stats, &w, rows, 1, 1, seed, step, 0, nt);
        const REAL *p = w.h[L];
        double lsum = FN(fnn_loss_sum)(net->loss, p, w.ybuf, sw, rows, n_out, w.rowbuf, nt);
        FN(fnn_output_delta)(w.d1, p, w.ybuf, sw, 1.0 / sw_sum, rows, n_out, nt);
        if (s + 1 < n_steps) { /* overlaps the backward pass's products */
            const int64_t next = start + batch_size;
            FN(fnn_prefetch_rows)(data, order + next,
                                  next + batch_size <= n_order ? batch_size : n_order - next);
        }
        FN(backward)(net, blas, params, &w, w.grad, rows, 0, nt);
        double pen = FN(fnn_penalty_norms)(net, params, w.grad, 1.0 / sw_sum, w.n_tensors,
                                           w.toff, w.tlen, w.sq, w.part, nt);
        double batch_loss = FN(reported_loss)(net, lsum, sw_sum) + pen;
        double total_sq = 0;
        for (int t = 0; t < w.n_tensors; t++) total_sq += w.sq[t];
        if (!isfinite(batch_loss) || !isfinite(total_sq)) {
            status = FNN_ERR_NONFINITE;
            break;
        }
        for (int l = 0; l < L; l++) report->grad_norm_sum[l] += sqrt(w.sq[l]);
        FN(fnn_clip_gradients)(net, w.grad, w.sq, w.n_tensors, w.toff, w.tlen, nt);
        for (int b = 0; b < L; b++)
            if (fnn_bn_present(net, b) && !fnn_bn_frozen(net, b) && stats != NULL) {
                REAL *mm = stats + net->stat_off[b];
                FN(fnn_bn_update_moving)(mm, mm + fnn_bn_width(net, b), w.mean[b], w.var[b],
                                         fnn_bn_width(net, b), net->bn_momentum);
            }
        FN(fnn_optim_step)(net, params, w.grad, opt, lrs[s], nt);
        FN(fnn_apply_max_norm)(net, params, nt);
        report->loss_sum += batch_loss * (double)rows;
        report->n_steps += 1;
        if (t0 >= 0)
            fnn_thread_policy_record(policy, rows, fnn_seconds() - t0);
    }
    fnn_free_all(&al);
    /* A finite step can still overflow the weights (a huge rate); checked
     * once per call, as a step's check covers only its loss and gradient. */
    if (status == FNN_OK && (FN(fnn_any_nonfinite)(params, net->n_params) ||
                             (stats != NULL && FN(fnn_any_nonfinite)(stats, net->n_stats))))
        status = FNN_ERR_NONFINITE;
    return status;
}

fnn_status FN(fnn_loss_grad)(const fnn_net *net, const fnn_blas *blas, const REAL *params,
                             const fnn_data *data, int64_t chunk_rows, int32_t dropout_on,
                             uint64_t seed, double *loss_out, double *objective_out,
                             REAL *grad)
{
    return FN(fnn_loss_grad_stats)(net, blas, params, NULL, data, chunk_rows, dropout_on, seed,
                                   loss_out, objective_out, grad);
}

fnn_status FN(fnn_loss_grad_stats)(const fnn_net *net, const fnn_blas *blas,
                                   const REAL *params, const REAL *stats, const fnn_data *data,
                                   int64_t chunk_rows, int32_t dropout_on, uint64_t seed,
                                   double *loss_out, double *objective_out, REAL *grad)
{
    if (!fnn_check_net(net) || !fnn_check_data(net, data) || data->y == NULL || grad == NULL ||
        data->n_rows < 1 || (stats == NULL && fnn_frozen_bn_present(net)))
        return FNN_ERR_BADARG;
    const int L = net->n_layers, nt = net->n_threads;
    const int64_t n = data->n_rows, n_out = net->units[L];
    int has_bn = 0;
    for (int s = 0; s < L; s++) has_bn |= fnn_bn_present(net, s);
    /* BatchNorm couples the rows of a batch: the full batch is one chunk. */
    int64_t chunk = has_bn || chunk_rows < 1 || chunk_rows > n ? n : chunk_rows;
    fnn_allocs al;
    FN(fnn_ws) w;
    if (!FN(ws_init)(&w, &al, net, chunk, dropout_on, 0, net->scratch)) {
        fnn_free_all(&al);
        return FNN_ERR_NOMEM;
    }
    /* The backward pass writes only the trainable tensors' gradient. */
    for (int t = 0; t < w.n_tensors; t++)
        if (fnn_tensor_frozen(net, w.toff[t]))
            memset(grad + w.toff[t], 0, (size_t)w.tlen[t] * sizeof(REAL));
    double sw_total = (double)n;
    if (data->sample_weight != NULL) {
        const REAL *sw = (const REAL *)data->sample_weight;
        sw_total = 0;
        for (int64_t i = 0; i < n; i++) sw_total += sw[i];
    }
    const REAL *sw = data->sample_weight != NULL ? w.swbuf : NULL;
    double lsum = 0;
    for (int64_t start = 0; start < n; start += chunk) {
        const int64_t rows = start + chunk <= n ? chunk : n - start;
        for (int64_t i = 0; i < rows; i++) w.idx[i] = start + i;
        FN(gather_batch)(net, &w, data, w.idx, rows, nt);
        FN(forward)(net, blas, params, stats, &w, rows, 1, dropout_on, seed, 0, start, nt);
        lsum += FN(fnn_loss_sum)(net->loss, w.h[L], w.ybuf, sw, rows, n_out, w.rowbuf, nt);
        FN(fnn_output_delta)(w.d1, w.h[L], w.ybuf, sw, 1.0 / sw_total, rows, n_out, nt);
        FN(backward)(net, blas, params, &w, grad, rows, start > 0, nt);
    }
    double pen = FN(fnn_penalty_norms)(net, params, grad, 1.0 / sw_total, w.n_tensors, w.toff,
                                       w.tlen, w.sq, w.part, nt);
    if (loss_out != NULL)
        *loss_out = FN(reported_loss)(net, lsum, sw_total) + pen;
    if (objective_out != NULL)
        *objective_out = lsum / sw_total + pen;
    fnn_free_all(&al);
    return FNN_OK;
}

/* Rows [start, start + chunk) (fewer at the end) of fnn_predict, on the
 * calling thread alone; with `check`, returns 1 when a first-layer output
 * was not finite. */
static int FN(predict_chunk)(const fnn_net *net, const fnn_blas *blas, const REAL *params,
                             const REAL *stats, const fnn_data *data, FN(fnn_ws) *w,
                             int direct, int64_t start, int64_t chunk, int32_t dropout_on,
                             uint64_t seed, int check, REAL *out)
{
    const int64_t n = data->n_rows, n_in = net->units[0], n_out = net->units[net->n_layers];
    const int64_t rows = start + chunk <= n ? chunk : n - start;
    REAL *own_xin = w->xin;
    if (direct) {
        w->xin = (REAL *)data->x + start * n_in;
    } else {
        for (int64_t i = 0; i < rows; i++) w->idx[i] = start + i;
        FN(fnn_gather_x)(w->xin, data, w->idx, rows, 1);
    }
    FN(forward)(net, blas, params, stats, w, rows, 0, dropout_on, seed, 0, start, 1);
    memcpy(out + start * n_out, w->h[net->n_layers], (size_t)(rows * n_out) * sizeof(REAL));
    w->xin = own_xin;
    return check && FN(fnn_any_nonfinite)(w->z[0], rows * net->units[1]);
}

fnn_status FN(fnn_predict)(const fnn_net *net, const fnn_blas *blas, const REAL *params,
                           const REAL *stats, const fnn_data *data, int64_t chunk_rows,
                           int32_t dropout_on, uint64_t seed, REAL *out, int32_t *nonfinite)
{
    if (!fnn_check_net(net) || !fnn_check_data(net, data) || out == NULL)
        return FNN_ERR_BADARG;
    const int64_t n = data->n_rows, n_in = net->units[0];
    if (nonfinite != NULL)
        *nonfinite = 0;
    if (n == 0)
        return FNN_OK;
    const int64_t chunk = chunk_rows < 1 || chunk_rows > n ? n : chunk_rows;
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    /* Rows are independent: each thread pushes whole chunks through the
     * network on its own workspace, with no barrier until the end.  Chunk
     * boundaries do not depend on the thread count, nor does any result.
     * Chunks are handed out dynamically: on a shared machine a thread that
     * loses its core for a while then takes fewer (chapter predict: median
     * 0.160 s against 0.167 s with a static split). */
    const int n_ws = (int)(n_chunks < net->n_threads ? n_chunks : net->n_threads);
    fnn_allocs *al = calloc((size_t)n_ws, sizeof(fnn_allocs));
    FN(fnn_ws) *ws = calloc((size_t)n_ws, sizeof(FN(fnn_ws)));
    int32_t *bad = calloc((size_t)n_ws, sizeof(int32_t)); /* per thread */
    int ok = al != NULL && ws != NULL && bad != NULL;
    for (int t = 0; ok && t < n_ws; t++)
        ok = FN(ws_init)(&ws[t], &al[t], net, chunk, dropout_on, 0, NULL);
    if (ok) {
        /* Inside a chunk everything runs on its thread alone. */
        fnn_blas inner = blas != NULL ? *blas : (fnn_blas){NULL, NULL, 1, 0};
        inner.n_threads = 1;
        /* Contiguous dense input is read in place instead of gathered. */
        const int direct = data->csr_indptr == NULL && !data->x_other_type &&
                           data->col_stride == 1 && data->row_stride == n_in;
        const int check = nonfinite != NULL;
#ifdef _OPENMP
        if (n_ws > 1 && fnn_parallel_allowed()) {
#pragma omp parallel for num_threads(n_ws) schedule(dynamic)
            for (int64_t c = 0; c < n_chunks; c++) {
                const int th = omp_get_thread_num();
                bad[th] |= FN(predict_chunk)(net, &inner, params, stats, data, &ws[th], direct,
                                             c * chunk, chunk, dropout_on, seed, check, out);
            }
        } else
#endif
        {
            for (int64_t c = 0; c < n_chunks; c++)
                bad[0] |= FN(predict_chunk)(net, &inner, params, stats, data, &ws[0], direct,
                                            c * chunk, chunk, dropout_on, seed, check, out);
        }
        for (int t = 0; nonfinite != NULL && t < n_ws; t++) *nonfinite |= bad[t];
    }
    for (int t = 0; al != NULL && t < n_ws; t++) fnn_free_all(&al[t]);
    free(al);
    free(ws);
    free(bad);
    return ok ? FNN_OK : FNN_ERR_NOMEM;
}

#endif
