/*
 * test_core.c -- C-level tests of the fastnn core through its public API
 * (csrc/fastnn.h), no Python: small networks are built here with the flat
 * layout of src/fastnn/_network.py (kernels, then biases, then BN gamma/beta
 * per slot; statistics: moving mean then variance per BN slot).
 *
 * blas = NULL everywhere except where a test hands in its own reference
 * (column-major, Fortran-convention) gemm to exercise fnn_gemm's BLAS path,
 * so no BLAS library is needed.  Built by CMake with -DFASTNN_BUILD_CTESTS=ON
 * and run under ASan/UBSan by .ci/sanitize.  The last line of the output is
 * "N passed, M failed" (test cases); the exit status is non-zero on failure.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fastnn.h"

#ifndef _WIN32
#include <sys/mman.h>
#endif

#define MAXL 6

/* Test names come from the registries (fastnn.h). */
/* The output activation paired with each loss (fastnn.h). */
static const int32_t OUT_ACT[] = {FNN_ACT_IDENTITY, FNN_ACT_SOFTMAX, FNN_ACT_LOGISTIC,
                                  FNN_ACT_EXP};

/* ---- deterministic random numbers (SplitMix64) ---------------------------- */
typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double rng_unif(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }
static double rng_normal(rng_t *r)
{
    double u1 = rng_unif(r), u2 = rng_unif(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- buffers of either type ---------------------------------------------- */
static void *xcalloc(int64_t n, size_t size)
{
    void *p = calloc((size_t)(n > 0 ? n : 1), size);
    if (p == NULL) {
        fprintf(stderr, "test_core: out of memory\n");
        exit(2);
    }
    return p;
}
static size_t esz(int f32) { return f32 ? sizeof(float) : sizeof(double); }
static double vget(int f32, const void *p, int64_t i)
{
    return f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static void vset(int f32, void *p, int64_t i, double v)
{
    if (f32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}
static void *vtyped(int f32, const double *src, int64_t n)
{
    void *p = xcalloc(n, esz(f32));
    for (int64_t i = 0; i < n; i++) vset(f32, p, i, src[i]);
    return p;
}
static void *vdup(int f32, const void *src, int64_t n)
{
    void *p = xcalloc(n, esz(f32));
    if (n > 0)
        memcpy(p, src, (size_t)n * esz(f32));
    return p;
}
static int vsame(int f32, const void *a, const void *b, int64_t n) /* bitwise */
{
    return n <= 0 || memcmp(a, b, (size_t)n * esz(f32)) == 0;
}
static double vmaxdiff(int f32, const void *a, const void *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(vget(f32, a, i) - vget(f32, b, i));
        if (isnan(d))
            return d;
        if (d > m)
            m = d;
    }
    return m;
}
static double vmaxabs(int f32, const void *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(vget(f32, a, i)));
    return m;
}
static int vfinite(int f32, const void *a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(vget(f32, a, i)))
            return 0;
    return 1;
}

/* ---- the API for either type --------------------------------------------- */
static fnn_status api_train(int f32, const fnn_net *net, const fnn_blas *blas, void *params,
                            void *stats, fnn_optstate *opt, const fnn_data *d,
                            const int64_t *order, int64_t n_order, int64_t bs,
                            const double *lrs, uint64_t seed, fnn_epoch_report *rep)
{
    return f32 ? fnn_train_epoch_f32(net, blas, params, stats, opt, d, order, n_order, bs, lrs,
                                     seed, rep)
               : fnn_train_epoch_f64(net, blas, params, stats, opt, d, order, n_order, bs, lrs,
                                     seed, rep);
}
static fnn_status api_loss_grad(int f32, const fnn_net *net, const fnn_blas *blas,
                                const void *params, const fnn_data *d, int64_t chunk,
                                int dropout_on, uint64_t seed, double *loss, double *obj,
                                void *grad)
{
    return f32 ? fnn_loss_grad_f32(net, blas, params, d, chunk, dropout_on, seed, loss, obj, grad)
               : fnn_loss_grad_f64(net, blas, params, d, chunk, dropout_on, seed, loss, obj,
                                   grad);
}
static fnn_status api_predict(int f32, const fnn_net *net, const fnn_blas *blas,
                              const void *params, const void *stats, const fnn_data *d,
                              int64_t chunk, int dropout_on, uint64_t seed, void *out)
{
    return f32 ? fnn_predict_f32(net, blas, params, stats, d, chunk, dropout_on, seed, out, NULL)
               : fnn_predict_f64(net, blas, params, stats, d, chunk, dropout_on, seed, out, NULL);
}

/* A reference gemm with BLAS's column-major Fortran convention. */
#define REF_GEMM(NAME, T)                                                                   \
    static void NAME(char *ta, char *tb, int *m, int *n, int *k, T *alpha, T *a, int *lda,  \
                     T *b, int *ldb, T *beta, T *c, int *ldc)                               \
    {                                                                                       \
        for (int j = 0; j < *n; j++)                                                        \
            for (int i = 0; i < *m; i++) {                                                  \
                double s = 0;                                                               \
                for (int p = 0; p < *k; p++) {                                              \
                    double aip = *ta == 'N' ? a[i + (int64_t)p * *lda] : a[p + (int64_t)i * *lda]; \
                    double bpj = *tb == 'N' ? b[p + (int64_t)j * *ldb] : b[j + (int64_t)p * *ldb]; \
                    s += aip * bpj;                                                         \
                }                                                                           \
                T *cij = c + i + (int64_t)j * *ldc;                                         \
                *cij = (T)(*alpha * s + (*beta == 0 ? 0.0 : (double)*beta * *cij));         \
            }                                                                               \
    }
REF_GEMM(ref_sgemm, float)
REF_GEMM(ref_dgemm, double)

/* ---- networks ------------------------------------------------------------ */
typedef struct {
    int f32, L;
    int64_t units[MAXL + 1];
    int32_t act[MAXL];
    double drop[MAXL];
    int64_t w_off[MAXL], b_off[MAXL], bn_off[MAXL], stat_off[MAXL];
    double gnorm[MAXL];
    fnn_net net;
    void *params, *stats, *m, *v;
    fnn_optstate opt;
} model;

static void model_point(model *M)
{
    M->net.units = M->units;
    M->net.activation = M->act;
    M->net.w_off = M->w_off;
    M->net.b_off = M->b_off;
    M->net.bn_off = M->bn_off;
    M->net.stat_off = M->stat_off;
    if (M->net.dropout != NULL)
        M->net.dropout = M->drop;
    M->opt.m = M->m;
    M->opt.v = M->v;
}

/* Layout exactly as _network.Layout: kernels, biases (none on hidden layers
 * with BN before), then BN gamma/beta per slot; stats mean/var per slot. */
static void model_init(model *M, int f32, int L, const int64_t *units, int hidden_act, int loss,
                       int bn, int bn_input, uint64_t seed)
{
    memset(M, 0, sizeof *M);
    M->f32 = f32;
    M->L = L;
    for (int l = 0; l <= L; l++) M->units[l] = units[l];
    for (int l = 0; l < L; l++) M->act[l] = l < L - 1 ? hidden_act : OUT_ACT[loss];
    int64_t off = 0, stat = 0;
    for (int l = 0; l < L; l++) {
        M->w_off[l] = off;
        off += units[l] * units[l + 1];
    }
    for (int l = 0; l < L; l++) {
        int has_bias = !(bn == FNN_BN_BEFORE && l < L - 1);
        M->b_off[l] = has_bias ? off : -1;
        off += has_bias ? units[l + 1] : 0;
    }
    for (int s = 0; s < L; s++) {
        int has = s == 0 ? bn_input : (bn != FNN_BN_NONE && s < L);
        M->bn_off[s] = has ? off : -1;
        M->stat_off[s] = has ? stat : -1;
        off += has ? 2 * units[s] : 0;
        stat += has ? 2 * units[s] : 0;
    }
    fnn_net *n = &M->net;
    n->n_layers = L;
    n->loss = loss;
    n->leaky_slope = 0.01;
    n->batch_norm = bn;
    n->batch_norm_input = bn_input;
    n->bn_momentum = 0.99;
    n->bn_epsilon = 1e-3;
    n->dropout = NULL;
    n->alpha_dropout = 0;
    n->penalty = FNN_PENALTY_L2;
    n->alpha = 0;
    n->l1_ratio = 0.5;
    n->max_norm = 0;
    n->layer_alpha = NULL;
    n->layer_max_norm = NULL;
    n->clip = FNN_CLIP_NONE;
    n->clip_value = 0;
    n->solver = FNN_SOLVER_ADAM;
    n->momentum = 0.9;
    n->nesterov = 0;
    n->beta_1 = 0.9;
    n->beta_2 = 0.999;
    n->epsilon = 1e-7;
    n->rho = 0.9;
    n->weight_decay = 0.004;
    n->n_params = off;
    n->n_stats = stat;
    n->n_threads = 1;

    rng_t r = {seed * 7919 + 17};
    double *p = xcalloc(off, sizeof(double));
    for (int l = 0; l < L; l++) { /* Glorot uniform kernels, small random biases */
        double lim = sqrt(6.0 / (double)(units[l] + units[l + 1]));
        for (int64_t i = 0; i < units[l] * units[l + 1]; i++)
            p[M->w_off[l] + i] = lim * (2 * rng_unif(&r) - 1);
        if (M->b_off[l] >= 0)
            for (int64_t i = 0; i < units[l + 1]; i++)
                p[M->b_off[l] + i] = 0.1 * (2 * rng_unif(&r) - 1);
    }
    double *st = xcalloc(stat, sizeof(double));
    for (int s = 0; s < L; s++) {
        if (M->bn_off[s] < 0)
            continue;
        for (int64_t j = 0; j < units[s]; j++) {
            p[M->bn_off[s] + j] = 1 + 0.2 * (2 * rng_unif(&r) - 1);     /* gamma */
            p[M->bn_off[s] + units[s] + j] = 0.1 * (2 * rng_unif(&r) - 1); /* beta */
            st[M->stat_off[s] + j] = 0;                                  /* moving mean */
            st[M->stat_off[s] + units[s] + j] = 1;                       /* moving var */
        }
    }
    M->params = vtyped(f32, p, off);
    M->stats = vtyped(f32, st, stat);
    M->m = xcalloc(off, esz(f32));
    M->v = xcalloc(off, esz(f32));
    M->opt.t = 0;
    M->opt.nadam_mu_product = 1.0;
    free(p);
    free(st);
    model_point(M);
}

static void model_set_dropout(model *M, const double *rates, int alpha)
{
    for (int l = 0; l < M->L; l++) M->drop[l] = rates[l];
    M->net.dropout = M->drop;
    M->net.alpha_dropout = alpha;
}

static void model_set_solver(model *M, int solver)
{
    M->net.solver = solver;
    if (solver == FNN_SOLVER_ADAGRAD) /* Keras initial_accumulator_value */
        for (int64_t i = 0; i < M->net.n_params; i++) vset(M->f32, M->m, i, 0.1);
}

static void model_clone(model *dst, const model *src)
{
    *dst = *src;
    dst->params = vdup(src->f32, src->params, src->net.n_params);
    dst->stats = vdup(src->f32, src->stats, src->net.n_stats);
    dst->m = vdup(src->f32, src->m, src->net.n_params);
    dst->v = vdup(src->f32, src->v, src->net.n_params);
    model_point(dst);
}

static void model_free(model *M)
{
    free(M->params);
    free(M->stats);
    free(M->m);
    free(M->v);
    M->params = M->stats = M->m = M->v = NULL;
}

/* Trainable tensors (offset, length) in the order of the core's clipping. */
static int model_tensors(const model *M, int64_t *off, int64_t *len)
{
    int n = 0;
    for (int l = 0; l < M->L; l++) {
        off[n] = M->w_off[l];
        len[n++] = M->units[l] * M->units[l + 1];
    }
    for (int l = 0; l < M->L; l++)
        if (M->b_off[l] >= 0) {
            off[n] = M->b_off[l];
            len[n++] = M->units[l + 1];
        }
    for (int s = 0; s < M->L; s++)
        if (M->bn_off[s] >= 0) {
            off[n] = M->bn_off[s];
            len[n++] = M->units[s];
            off[n] = M->bn_off[s] + M->units[s];
            len[n++] = M->units[s];
        }
    return n;
}

/* ---- data sets ----------------------------------------------------------- */
typedef struct {
    int f32;
    int64_t n, d, k;
    double *X, *Y, *W; /* row-major double masters */
    void *x, *y, *w;   /* typed copies */
    fnn_data data;     /* dense C-ordered view, no sample weights */
} dataset;

static void ds_retype(dataset *D)
{
    free(D->x);
    free(D->y);
    free(D->w);
    D->x = vtyped(D->f32, D->X, D->n * D->d);
    D->y = vtyped(D->f32, D->Y, D->n * D->k);
    D->w = vtyped(D->f32, D->W, D->n);
    memset(&D->data, 0, sizeof D->data);
    D->data.n_rows = D->n;
    D->data.n_cols = D->d;
    D->data.x = D->x;
    D->data.row_stride = D->d;
    D->data.col_stride = 1;
    D->data.y = D->y;
    D->data.sample_weight = NULL;
}

/* A learnable problem: targets from a random "teacher" projection s = X T. */
static void ds_init(dataset *D, int f32, int64_t n, int64_t d, int64_t k, int loss, uint64_t seed)
{
    memset(D, 0, sizeof *D);
    D->f32 = f32;
    D->n = n;
    D->d = d;
    D->k = k;
    D->X = xcalloc(n * d, sizeof(double));
    D->Y = xcalloc(n * k, sizeof(double));
    D->W = xcalloc(n, sizeof(double));
    rng_t r = {seed * 104729 + 3};
    double *T = xcalloc(d * k, sizeof(double));
    for (int64_t i = 0; i < d * k; i++) T[i] = rng_normal(&r) * 1.5 / sqrt((double)d);
    for (int64_t i = 0; i < n * d; i++) D->X[i] = rng_normal(&r);
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        double sbest = -1e300;
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t p = 0; p < d; p++) s += D->X[i * d + p] * T[p * k + j];
            double *y = &D->Y[i * k + j];
            switch (loss) {
            case FNN_LOSS_SQUARED: *y = sin(s) + 0.5 * s; break;
            case FNN_LOSS_BINARY_LOG: *y = s + 0.3 * sin(3 * D->X[i * d]) > 0; break;
            case FNN_LOSS_POISSON: *y = exp(0.7 * tanh(s)); break;
            default: break;
            }
            if (s > sbest) {
                sbest = s;
                best = j;
            }
        }
        if (loss == FNN_LOSS_LOG)
            D->Y[i * k + best] = 1;
        D->W[i] = 0.5 + rng_unif(&r);
    }
    free(T);
    ds_retype(D);
}

static void ds_free(dataset *D)
{
    free(D->X);
    free(D->Y);
    free(D->W);
    free(D->x);
    free(D->y);
    free(D->w);
    memset(D, 0, sizeof *D);
}

/* CSR copy of a dense double matrix: row 1 with its indices reversed
 * (unsorted), whatever zeros the matrix holds left out. */
typedef struct {
    void *val, *ind, *ptr;
    int idx64;
} csr_t;

static void csr_build(csr_t *C, int f32, const double *X, int64_t n, int64_t d, int idx64)
{
    int64_t nnz = 0;
    for (int64_t i = 0; i < n * d; i++) nnz += X[i] != 0;
    C->idx64 = idx64;
    C->val = xcalloc(nnz, esz(f32));
    C->ind = xcalloc(nnz, idx64 ? sizeof(int64_t) : sizeof(int32_t));
    C->ptr = xcalloc(n + 1, idx64 ? sizeof(int64_t) : sizeof(int32_t));
    int64_t p = 0;
    for (int64_t i = 0; i < n; i++) {
        if (idx64)
            ((int64_t *)C->ptr)[i] = p;
        else
            ((int32_t *)C->ptr)[i] = (int32_t)p;
        for (int64_t jj = 0; jj < d; jj++) {
            int64_t j = i == 1 ? d - 1 - jj : jj;
            if (X[i * d + j] == 0)
                continue;
            vset(f32, C->val, p, X[i * d + j]);
            if (idx64)
                ((int64_t *)C->ind)[p] = j;
            else
                ((int32_t *)C->ind)[p] = (int32_t)j;
            p++;
        }
    }
    if (idx64)
        ((int64_t *)C->ptr)[n] = p;
    else
        ((int32_t *)C->ptr)[n] = (int32_t)p;
}

static fnn_data csr_view(const fnn_data *dense, const csr_t *C)
{
    fnn_data d = *dense;
    d.x = NULL;
    d.row_stride = d.col_stride = 0;
    d.csr_data = C->val;
    d.csr_indices = C->ind;
    d.csr_indptr = C->ptr;
    d.csr_index64 = C->idx64;
    return d;
}

static void csr_free(csr_t *C)
{
    free(C->val);
    free(C->ind);
    free(C->ptr);
}

/* Zero a fraction of X and all of row 2 (an empty CSR row). */
static void ds_sparsify(dataset *D, double frac, uint64_t seed)
{
    rng_t r = {seed};
    for (int64_t i = 0; i < D->n * D->d; i++)
        if (rng_unif(&r) < frac || i / D->d == 2)
            D->X[i] = 0;
    ds_retype(D);
}

/* ---- helpers around the API ---------------------------------------------- */
static int64_t *iota(int64_t n)
{
    int64_t *o = xcalloc(n, sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) o[i] = i;
    return o;
}

/* One epoch over order[0..n_order) at a constant learning rate. */
static fnn_status train_order(model *M, const fnn_data *d, const fnn_blas *blas,
                              const int64_t *order, int64_t n_order, int64_t bs, double lr,
                              uint64_t seed, fnn_epoch_report *rep_out)
{
    int64_t n_steps = n_order > 0 && bs > 0 ? (n_order + bs - 1) / bs : 0;
    double *lrs = xcalloc(n_steps, sizeof(double));
    for (int64_t s = 0; s < n_steps; s++) lrs[s] = lr;
    for (int l = 0; l < MAXL; l++) M->gnorm[l] = 0;
    fnn_epoch_report rep = {0, M->gnorm, 0, NULL};
    fnn_status st = api_train(M->f32, &M->net, blas, M->params, M->stats, &M->opt, d, order,
                              n_order, bs, lrs, seed, &rep);
    free(lrs);
    if (rep_out != NULL)
        *rep_out = rep;
    return st;
}

/* `epochs` epochs over a shuffled order; returns the first non-OK status. */
static fnn_status train_epochs(model *M, const fnn_data *d, int epochs, int64_t bs, double lr,
                               uint64_t seed)
{
    int64_t n = d->n_rows;
    int64_t *order = iota(n);
    rng_t r = {seed};
    fnn_status st = FNN_OK;
    for (int e = 0; e < epochs && st == FNN_OK; e++) {
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)(rng_next(&r) % (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        st = train_order(M, d, NULL, order, n, bs, lr, seed + (uint64_t)e, NULL);
    }
    free(order);
    return st;
}

/* Reported loss over all rows (BN with batch statistics, no dropout). */
static double full_loss(const model *M, const fnn_data *d)
{
    void *g = xcalloc(M->net.n_params, esz(M->f32));
    double loss = NAN, obj = NAN;
    fnn_status st = api_loss_grad(M->f32, &M->net, NULL, M->params, d, 0, 0, 0, &loss, &obj, g);
    free(g);
    return st == FNN_OK ? loss : NAN;
}

static const char *dt(int f32) { return f32 ? "f32" : "f64"; }

/* ======================================================================== */
/* Tests                                                                    */
/* ======================================================================== */

static void t_badargs(int f32)
{
    const int64_t u[] = {3, 4, 2};
    model M;
    model_init(&M, f32, 2, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 1);
    dataset D;
    ds_init(&D, f32, 6, 3, 2, FNN_LOSS_SQUARED, 1);
    void *p0 = vdup(f32, M.params, M.net.n_params);
    int64_t *order = iota(6);
    double lrs[8] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, gn[MAXL] = {0};
    fnn_epoch_report rep = {0, gn, 0, NULL};
    void *g = xcalloc(M.net.n_params, esz(f32));
    void *out = xcalloc(6 * 2, esz(f32));
    double loss, obj;
    fnn_status st;

#define TRAIN(net, data, ord, bs, lr, rp) \
    api_train(f32, net, NULL, M.params, M.stats, &M.opt, data, ord, 6, bs, lr, 0, rp)
    st = TRAIN(NULL, &D.data, order, 2, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train NULL net: %d", st);
    st = TRAIN(&M.net, &D.data, order, 0, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train batch_size 0: %d", st);
    st = TRAIN(&M.net, &D.data, order, -3, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train batch_size -3: %d", st);
    st = TRAIN(&M.net, NULL, order, 2, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train NULL data: %d", st);
    st = TRAIN(&M.net, &D.data, NULL, 2, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train NULL order: %d", st);
    st = TRAIN(&M.net, &D.data, order, 2, NULL, &rep);
    CHECK(st == FNN_ERR_BADARG, "train NULL lrs: %d", st);
    st = TRAIN(&M.net, &D.data, order, 2, lrs, NULL);
    CHECK(st == FNN_ERR_BADARG, "train NULL report: %d", st);
    fnn_epoch_report rep_nogn = {0, NULL, 0, NULL};
    st = TRAIN(&M.net, &D.data, order, 2, lrs, &rep_nogn);
    CHECK(st == FNN_ERR_BADARG, "train NULL grad_norm_sum: %d", st);
    fnn_data noy = D.data;
    noy.y = NULL;
    st = TRAIN(&M.net, &noy, order, 2, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train NULL y: %d", st);

    fnn_net bad = M.net;
    bad.n_threads = 0;
    st = TRAIN(&bad, &D.data, order, 2, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train n_threads 0: %d", st);
    bad = M.net;
    bad.n_layers = 0;
    st = TRAIN(&bad, &D.data, order, 2, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train n_layers 0: %d", st);
    int64_t u0[] = {3, 0, 2};
    bad = M.net;
    bad.units = u0;
    st = TRAIN(&bad, &D.data, order, 2, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train a zero width: %d", st);
    bad = M.net;
    bad.b_off = NULL;
    st = TRAIN(&bad, &D.data, order, 2, lrs, &rep);
    CHECK(st == FNN_ERR_BADARG, "train NULL b_off: %d", st);
    /* Every code is checked against its registry's bound. */
    int32_t *codes[] = {&bad.loss, &bad.batch_norm, &bad.penalty, &bad.clip, &bad.solver};
    const int32_t counts[] = {FNN_LOSS_COUNT, FNN_BN_COUNT, FNN_PENALTY_COUNT, FNN_CLIP_COUNT,
                              FNN_SOLVER_COUNT};
    for (int c = 0; c < 5; c++)
        for (int v = 0; v < 2; v++) {
            bad = M.net;
            *codes[c] = v ? counts[c] : -1;
            st = TRAIN(&bad, &D.data, order, 2, lrs, &rep);
            CHECK(st == FNN_ERR_BADARG, "train code #%d = %d: %d", c, *codes[c], st);
        }
    const int32_t bad_acts[][2] = {{FNN_ACT_COUNT, FNN_ACT_IDENTITY},
                                   {-1, FNN_ACT_IDENTITY},
                                   {FNN_ACT_TANH, FNN_ACT_COUNT},
                                   {FNN_ACT_SOFTMAX, FNN_ACT_IDENTITY}}; /* output-only, hidden */
    for (int a = 0; a < 4; a++) {
        bad = M.net;
        bad.activation = bad_acts[a];
        st = TRAIN(&bad, &D.data, order, 2, lrs, &rep);
        CHECK(st == FNN_ERR_BADARG, "train activations (%d, %d): %d", bad_acts[a][0],
              bad_acts[a][1], st);
        st = api_predict(f32, &bad, NULL, M.params, M.stats, &D.data, 0, 0, 0, out);
        CHECK(st == FNN_ERR_BADARG, "predict activations (%d, %d): %d", bad_acts[a][0],
              bad_acts[a][1], st);
    }
#undef TRAIN
    CHECK(M.opt.t == 0 && vsame(f32, p0, M.params, M.net.n_params),
          "a rejected call changed the parameters (t=%lld)", (long long)M.opt.t);

    st = api_loss_grad(f32, NULL, NULL, M.params, &D.data, 0, 0, 0, &loss, &obj, g);
    CHECK(st == FNN_ERR_BADARG, "loss_grad NULL net: %d", st);
    st = api_loss_grad(f32, &M.net, NULL, M.params, NULL, 0, 0, 0, &loss, &obj, g);
    CHECK(st == FNN_ERR_BADARG, "loss_grad NULL data: %d", st);
    st = api_loss_grad(f32, &M.net, NULL, M.params, &D.data, 0, 0, 0, &loss, &obj, NULL);
    CHECK(st == FNN_ERR_BADARG, "loss_grad NULL grad: %d", st);
    st = api_loss_grad(f32, &M.net, NULL, M.params, &noy, 0, 0, 0, &loss, &obj, g);
    CHECK(st == FNN_ERR_BADARG, "loss_grad NULL y: %d", st);
    fnn_data empty = D.data;
    empty.n_rows = 0;
    st = api_loss_grad(f32, &M.net, NULL, M.params, &empty, 0, 0, 0, &loss, &obj, g);
    CHECK(st == FNN_ERR_BADARG, "loss_grad 0 rows: %d", st);

    st = api_predict(f32, NULL, NULL, M.params, M.stats, &D.data, 0, 0, 0, out);
    CHECK(st == FNN_ERR_BADARG, "predict NULL net: %d", st);
    st = api_predict(f32, &M.net, NULL, M.params, M.stats, NULL, 0, 0, 0, out);
    CHECK(st == FNN_ERR_BADARG, "predict NULL data: %d", st);
    st = api_predict(f32, &M.net, NULL, M.params, M.stats, &D.data, 0, 0, 0, NULL);
    CHECK(st == FNN_ERR_BADARG, "predict NULL out: %d", st);
    st = api_predict(f32, &M.net, NULL, M.params, M.stats, &empty, 0, 0, 0, out);
    CHECK(st == FNN_OK, "predict 0 rows: %d", st);

    free(p0);
    free(order);
    free(g);
    free(out);
    model_free(&M);
    ds_free(&D);
}

/* ---- gradient vs central finite differences (float64) -------------------- */
typedef struct {
    const char *name;
    int L;
    int64_t units[MAXL + 1];
    int act, loss, bn, bn_input;
    double drop[MAXL];
    int alpha_dropout;
    int penalty;
    double alpha, l1_ratio;
    int weighted;
    int csr; /* 0 dense, 1 int32 CSR, 2 int64 CSR */
    int64_t chunk;
} gc_cfg;

#define GC(...) {__VA_ARGS__}
static const gc_cfg GC_CASES[] = {
    GC(.name = "identity", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_IDENTITY),
    GC(.name = "logistic", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_LOGISTIC),
    GC(.name = "tanh", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_TANH),
    GC(.name = "relu", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_RELU),
    GC(.name = "leaky_relu", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_LEAKY_RELU),
    GC(.name = "elu", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_ELU),
    GC(.name = "selu", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_SELU),
    GC(.name = "swish", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_SWISH),
    GC(.name = "gelu", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_GELU),
    GC(.name = "mish", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_MISH),
    GC(.name = "log_softmax", .L = 2, .units = {3, 5, 3}, .act = FNN_ACT_TANH,
       .loss = FNN_LOSS_LOG),
    GC(.name = "binary_log", .L = 2, .units = {3, 5, 2}, .act = FNN_ACT_ELU,
       .loss = FNN_LOSS_BINARY_LOG),
    GC(.name = "poisson", .L = 2, .units = {3, 5, 2}, .act = FNN_ACT_TANH,
       .loss = FNN_LOSS_POISSON),
    GC(.name = "bn_before", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_TANH,
       .bn = FNN_BN_BEFORE),
    GC(.name = "bn_after+input", .L = 3, .units = {3, 4, 3, 2}, .act = FNN_ACT_SWISH,
       .bn = FNN_BN_AFTER, .bn_input = 1),
    GC(.name = "bn_input_only_L1", .L = 1, .units = {3, 3}, .loss = FNN_LOSS_LOG, .bn_input = 1),
    GC(.name = "dropout", .L = 3, .units = {3, 5, 4, 2}, .act = FNN_ACT_TANH,
       .drop = {0.2, 0.3, 0}),
    GC(.name = "alpha_dropout", .L = 3, .units = {3, 5, 4, 2}, .act = FNN_ACT_SELU,
       .drop = {0.1, 0.2, 0.1}, .alpha_dropout = 1),
    GC(.name = "l2_weighted", .L = 2, .units = {3, 4, 2}, .act = FNN_ACT_TANH,
       .penalty = FNN_PENALTY_L2, .alpha = 0.5, .weighted = 1),
    GC(.name = "l1", .L = 2, .units = {3, 4, 2}, .act = FNN_ACT_TANH, .penalty = FNN_PENALTY_L1,
       .alpha = 0.3),
    GC(.name = "elasticnet_csr32", .L = 2, .units = {4, 4, 2}, .act = FNN_ACT_LOGISTIC,
       .loss = FNN_LOSS_BINARY_LOG, .penalty = FNN_PENALTY_ELASTICNET, .alpha = 0.4,
       .l1_ratio = 0.3, .csr = 1),
    GC(.name = "csr64_chunked_weighted", .L = 2, .units = {4, 4, 3}, .act = FNN_ACT_SWISH,
       .loss = FNN_LOSS_LOG, .alpha = 0.1, .weighted = 1, .csr = 2, .chunk = 4),
    GC(.name = "width1_bn", .L = 2, .units = {1, 1, 1}, .act = FNN_ACT_TANH, .bn = FNN_BN_AFTER,
       .bn_input = 1),
    GC(.name = "deep_chunked", .L = 4, .units = {2, 3, 3, 3, 1}, .act = FNN_ACT_ELU, .chunk = 2),
    GC(.name = "bn_before_dropout_l2_weighted", .L = 3, .units = {3, 4, 4, 3},
       .act = FNN_ACT_TANH, .loss = FNN_LOSS_LOG, .bn = FNN_BN_BEFORE, .bn_input = 1,
       .drop = {0.2, 0.2, 0}, .alpha = 0.2, .weighted = 1),
};
#undef GC

static void t_gradcheck(const gc_cfg *c)
{
    const int L = c->L;
    model M;
    model_init(&M, 0, L, c->units, c->act, c->loss, c->bn, c->bn_input, 3);
    int dropout_on = 0;
    for (int l = 0; l < L; l++) dropout_on |= c->drop[l] > 0;
    if (dropout_on)
        model_set_dropout(&M, c->drop, c->alpha_dropout);
    M.net.penalty = c->penalty;
    M.net.alpha = c->alpha;
    M.net.l1_ratio = c->l1_ratio;
    dataset D;
    ds_init(&D, 0, 9, c->units[0], c->units[L], c->loss, 5);
    csr_t C = {NULL, NULL, NULL, 0};
    fnn_data data = D.data;
    if (c->csr) {
        ds_sparsify(&D, 0.4, 9);
        csr_build(&C, 0, D.X, D.n, D.d, c->csr == 2);
        data = csr_view(&D.data, &C);
    }
    if (c->weighted)
        data.sample_weight = D.w;

    const int64_t np = M.net.n_params;
    double *p = M.params, *g = xcalloc(np, sizeof(double)), *g2 = xcalloc(np, sizeof(double));
    double loss, obj;
    fnn_status st = fnn_loss_grad_f64(&M.net, NULL, p, &data, c->chunk, dropout_on, 11, &loss,
                                      &obj, g);
    CHECK(st == FNN_OK, "status %d", st);
    CHECK(isfinite(loss) && isfinite(obj) && vfinite(0, g, np), "non-finite loss/gradient");
    if (c->loss == FNN_LOSS_SQUARED && c->alpha == 0)
        CHECK(fabs(obj - loss * (double)c->units[L]) <= 1e-12 * fabs(obj),
              "squared: objective %.17g != loss %.17g * n_outputs", obj, loss);
    else if (c->alpha == 0)
        CHECK(obj == loss, "objective %.17g != loss %.17g", obj, loss);

    const double h = 1e-6;
    double worst = 0;
    int64_t worst_i = -1;
    for (int64_t i = 0; i < np; i++) {
        double p0 = p[i], fp, fm;
        p[i] = p0 + h;
        st = fnn_loss_grad_f64(&M.net, NULL, p, &data, c->chunk, dropout_on, 11, NULL, &fp, g2);
        p[i] = p0 - h;
        st |= fnn_loss_grad_f64(&M.net, NULL, p, &data, c->chunk, dropout_on, 11, NULL, &fm, g2);
        p[i] = p0;
        double fd = (fp - fm) / (2 * h);
        double err = fabs(fd - g[i]) / (1e-6 + 1e-4 * fmax(fabs(fd), fabs(g[i])));
        if (!(err <= worst)) {
            worst = err;
            worst_i = i;
        }
        if (st != FNN_OK)
            break;
    }
    CHECK(st == FNN_OK, "status %d during finite differences", st);
    CHECK(worst <= 1.0, "param %lld: analytic %.10g vs finite difference off (scaled err %.3g)",
          (long long)worst_i, worst_i >= 0 ? g[worst_i] : 0.0, worst);
    /* The gradient is not identically zero. */
    CHECK(vmaxabs(0, g, np) > 1e-6, "gradient is ~0");
    free(g);
    free(g2);
    if (c->csr)
        csr_free(&C);
    model_free(&M);
    ds_free(&D);
}

/* float32 gradients agree with float64 at the same point. */
static void t_grad_f32_vs_f64(int bn, int loss, int act)
{
    const int64_t u[] = {4, 6, 5, loss == FNN_LOSS_LOG ? 3 : 2};
    model M32, M64;
    model_init(&M32, 1, 3, u, act, loss, bn, bn != FNN_BN_NONE, 4);
    model_init(&M64, 0, 3, u, act, loss, bn, bn != FNN_BN_NONE, 4);
    for (int64_t i = 0; i < M64.net.n_params; i++) /* the f32 point, exactly */
        vset(0, M64.params, i, vget(1, M32.params, i));
    M32.net.alpha = M64.net.alpha = 0.1;
    dataset D32, D64;
    ds_init(&D32, 1, 20, u[0], u[3], loss, 6);
    ds_init(&D64, 0, 20, u[0], u[3], loss, 6);
    for (int64_t i = 0; i < D64.n * D64.d; i++) D64.X[i] = (double)(float)D64.X[i];
    ds_retype(&D64);
    const int64_t np = M64.net.n_params;
    void *g32 = xcalloc(np, sizeof(float)), *g64 = xcalloc(np, sizeof(double));
    double l32, l64, o32, o64;
    fnn_status s1 = fnn_loss_grad_f32(&M32.net, NULL, M32.params, &D32.data, 0, 0, 0, &l32, &o32,
                                      g32);
    fnn_status s2 = fnn_loss_grad_f64(&M64.net, NULL, M64.params, &D64.data, 0, 0, 0, &l64, &o64,
                                      g64);
    CHECK(s1 == FNN_OK && s2 == FNN_OK, "status %d %d", s1, s2);
    CHECK(fabs(l32 - l64) <= 1e-5 * fabs(l64) + 1e-6, "loss f32 %.9g vs f64 %.9g", l32, l64);
    double scale = vmaxabs(0, g64, np), worst = 0;
    for (int64_t i = 0; i < np; i++)
        worst = fmax(worst, fabs(vget(1, g32, i) - vget(0, g64, i)));
    CHECK(worst <= 1e-4 * scale + 1e-6, "max |g32 - g64| = %.3g (max |g| %.3g)", worst, scale);
    free(g32);
    free(g64);
    model_free(&M32);
    model_free(&M64);
    ds_free(&D32);
    ds_free(&D64);
}

/* The objective's penalty term is exactly sklearn's alpha/n-scaled formula. */
static void t_penalty_value(int penalty)
{
    const int64_t u[] = {3, 5, 2};
    model M;
    model_init(&M, 0, 2, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 8);
    dataset D;
    ds_init(&D, 0, 11, 3, 2, FNN_LOSS_SQUARED, 8);
    D.data.sample_weight = D.w;
    double sw = 0;
    for (int64_t i = 0; i < D.n; i++) sw += D.W[i];
    double *g = xcalloc(M.net.n_params, sizeof(double)), l0, o0, l1, o1;
    M.net.penalty = penalty;
    M.net.l1_ratio = 0.35;
    M.net.alpha = 0;
    fnn_loss_grad_f64(&M.net, NULL, M.params, &D.data, 0, 0, 0, &l0, &o0, g);
    M.net.alpha = 0.7;
    fnn_loss_grad_f64(&M.net, NULL, M.params, &D.data, 0, 0, 0, &l1, &o1, g);
    double r = penalty == FNN_PENALTY_L1 ? 1 : penalty == FNN_PENALTY_ELASTICNET ? 0.35 : 0;
    double sa = 0, sq = 0;
    const double *p = M.params;
    for (int l = 0; l < 2; l++)
        for (int64_t i = 0; i < u[l] * u[l + 1]; i++) {
            sa += fabs(p[M.w_off[l] + i]);
            sq += p[M.w_off[l] + i] * p[M.w_off[l] + i];
        }
    double expect = 0.7 / sw * (r * sa + 0.5 * (1 - r) * sq);
    CHECK(fabs((o1 - o0) - expect) <= 1e-12 * expect, "objective penalty %.17g, expected %.17g",
          o1 - o0, expect);
    CHECK(fabs((l1 - l0) - expect) <= 1e-12 * expect, "loss penalty %.17g, expected %.17g",
          l1 - l0, expect);
    /* Biases carry no penalty: their gradients do not move with alpha. */
    double *g0 = xcalloc(M.net.n_params, sizeof(double));
    M.net.alpha = 0;
    fnn_loss_grad_f64(&M.net, NULL, M.params, &D.data, 0, 0, 0, NULL, NULL, g0);
    for (int l = 0; l < 2; l++)
        for (int64_t j = 0; j < u[l + 1]; j++)
            CHECK(g0[M.b_off[l] + j] == g[M.b_off[l] + j], "bias %d/%lld penalized", l,
                  (long long)j);
    free(g);
    free(g0);
    model_free(&M);
    ds_free(&D);
}

/* ---- learning: the loss goes down ---------------------------------------- */
static void check_learns(model *M, dataset *D, int epochs, int64_t bs, double lr, double ratio)
{
    double before = full_loss(M, &D->data);
    int64_t t0 = M->opt.t;
    fnn_status st = train_epochs(M, &D->data, epochs, bs, lr, 42);
    double after = full_loss(M, &D->data);
    CHECK(st == FNN_OK, "train status %d", st);
    CHECK(isfinite(before) && after < ratio * before, "loss %.6g -> %.6g (want < %.2f x)", before,
          after, ratio);
    CHECK(vfinite(M->f32, M->params, M->net.n_params), "non-finite parameters");
    int64_t steps = (int64_t)epochs * ((D->n + bs - 1) / bs);
    CHECK(M->opt.t - t0 == steps, "opt.t advanced %lld, expected %lld",
          (long long)(M->opt.t - t0), (long long)steps);
}

static void t_learn_activation(int act, int f32)
{
    const int64_t u[] = {4, 10, 1};
    model M;
    model_init(&M, f32, 2, u, act, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 10 + (uint64_t)act);
    dataset D;
    ds_init(&D, f32, 64, 4, 1, FNN_LOSS_SQUARED, 10);
    check_learns(&M, &D, 40, 16, 0.02, 0.5);
    model_free(&M);
    ds_free(&D);
}

/* Each loss with its output activation: learns; predictions are valid. */
static void t_learn_loss(int loss, int f32)
{
    const int64_t k = loss == FNN_LOSS_LOG ? 3 : 2;
    const int64_t u[] = {4, 10, k};
    model M;
    model_init(&M, f32, 2, u, FNN_ACT_RELU, loss, FNN_BN_NONE, 0, 20);
    dataset D;
    ds_init(&D, f32, 80, 4, k, loss, 20);
    check_learns(&M, &D, 40, 16, 0.02, 0.7);
    void *out = xcalloc(D.n * k, esz(f32));
    fnn_status st = api_predict(f32, &M.net, NULL, M.params, M.stats, &D.data, 0, 0, 0, out);
    CHECK(st == FNN_OK, "predict status %d", st);
    CHECK(vfinite(f32, out, D.n * k), "non-finite predictions");
    const double tol = f32 ? 1e-5 : 1e-12;
    double maxdev = 0, lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < D.n; i++) {
        double s = 0;
        for (int64_t j = 0; j < k; j++) {
            double v = vget(f32, out, i * k + j);
            s += v;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
        maxdev = fmax(maxdev, fabs(s - 1));
    }
    if (loss == FNN_LOSS_LOG)
        CHECK(maxdev <= tol && lo >= 0 && hi <= 1, "softmax rows: max |sum-1| %.3g, range [%g, %g]",
              maxdev, lo, hi);
    if (loss == FNN_LOSS_BINARY_LOG)
        CHECK(lo >= 0 && hi <= 1, "logistic outputs outside [0, 1]: [%g, %g]", lo, hi);
    if (loss == FNN_LOSS_POISSON)
        CHECK(lo > 0, "exp outputs not positive: min %g", lo);
    /* The full-batch loss recomputed from predict's outputs (no BN/dropout:
     * inference == training forward) equals loss_grad's. */
    double lsum = 0;
    for (int64_t i = 0; i < D.n; i++)
        for (int64_t j = 0; j < k; j++) {
            double p = vget(f32, out, i * k + j), y = D.Y[i * k + j];
            double eps = f32 ? 1.1920928955078125e-07 : 2.220446049250313e-16;
            double pc = fmin(fmax(p, eps), 1 - eps);
            switch (loss) {
            case FNN_LOSS_SQUARED: lsum += 0.5 * (y - p) * (y - p) / (double)k; break;
            case FNN_LOSS_LOG: lsum -= y == 0 ? 0 : y * log(pc); break;
            case FNN_LOSS_BINARY_LOG:
                lsum -= (y == 0 ? 0 : y * log(pc)) + (y == 1 ? 0 : (1 - y) * log(1 - pc));
                break;
            case FNN_LOSS_POISSON: lsum += (y == 0 ? 0 : y * log(y / p)) - y + p; break;
            }
        }
    double ref = full_loss(&M, &D.data), mine = lsum / (double)D.n;
    CHECK(fabs(ref - mine) <= (f32 ? 1e-4 : 1e-10) * fabs(ref), "loss %.9g vs from predict %.9g",
          ref, mine);
    free(out);
    model_free(&M);
    ds_free(&D);
}

static void t_learn_solver(int solver, int nesterov, int f32)
{
    /* One rate per registered solver; a solver without one (0) fails here. */
    static const double LR[FNN_SOLVER_COUNT] = {0.05, 0.01, 0.1, 0.003, 0.02, 0.01, 0.01};
    const int64_t u[] = {4, 8, 6, 1};
    model M;
    model_init(&M, f32, 3, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 30);
    model_set_solver(&M, solver);
    M.net.nesterov = nesterov;
    dataset D;
    ds_init(&D, f32, 64, 4, 1, FNN_LOSS_SQUARED, 30);
    check_learns(&M, &D, 30, 8, LR[solver], 0.5);
    if (solver == FNN_SOLVER_NADAM)
        CHECK(M.opt.nadam_mu_product > 0 && M.opt.nadam_mu_product < 1,
              "nadam_mu_product %g not updated", M.opt.nadam_mu_product);
    model_free(&M);
    ds_free(&D);
}

/* Three full-batch steps of each solver against the update rules written
 * out here (sklearn's SGD/Adam, Keras 3 AdaGrad/RMSProp/AdaMax/Nadam/AdamW), the
 * gradient taken from fnn_loss_grad at the current parameters. */
static void t_solver_rule(int solver, int nesterov, int f32)
{
    const int64_t u[] = {3, 5, 2};
    model M;
    model_init(&M, f32, 2, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 35);
    model_set_solver(&M, solver);
    M.net.nesterov = nesterov;
    M.net.weight_decay = 0.5; /* large enough to show in 3 steps (adamw) */
    dataset D;
    ds_init(&D, f32, 10, 3, 2, FNN_LOSS_SQUARED, 35);
    const int64_t np = M.net.n_params;
    double *p = xcalloc(np, sizeof(double)), *m = xcalloc(np, sizeof(double));
    double *v = xcalloc(np, sizeof(double));
    for (int64_t i = 0; i < np; i++) {
        p[i] = vget(f32, M.params, i);
        m[i] = vget(f32, M.m, i);
    }
    void *g = xcalloc(np, esz(f32));
    int64_t *order = iota(D.n);
    const double lr = 0.05, b1 = M.net.beta_1, b2 = M.net.beta_2, eps = M.net.epsilon;
    const double mu = M.net.momentum, rho = M.net.rho;
    double prod = 1, worst = 0;
    fnn_status st = FNN_OK;
    for (int step = 1; step <= 3; step++) {
        st |= api_loss_grad(f32, &M.net, NULL, M.params, &D.data, 0, 0, 0, NULL, NULL, g);
        st |= train_order(&M, &D.data, NULL, order, D.n, D.n, lr, 1, NULL);
        const double t = step;
        const double mu_t = b1 * (1 - 0.5 * pow(0.96, t)), mu_n = b1 * (1 - 0.5 * pow(0.96, t + 1));
        double prod_n;
        prod *= mu_t;
        prod_n = prod * mu_n;
        for (int64_t i = 0; i < np; i++) {
            const double gi = vget(f32, g, i);
            switch (solver) {
            case FNN_SOLVER_SGD:
                m[i] = mu * m[i] - lr * gi;
                p[i] += nesterov ? mu * m[i] - lr * gi : m[i];
                break;
            case FNN_SOLVER_ADAMW: /* Keras AdamW: decay, then Adam */
                p[i] -= p[i] * lr * M.net.weight_decay;
                /* fall through */
            case FNN_SOLVER_ADAM:
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                p[i] -= lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t)) * m[i] / (sqrt(v[i]) + eps);
                break;
            case FNN_SOLVER_ADAGRAD:
                m[i] += gi * gi;
                p[i] -= lr * gi / sqrt(m[i] + eps);
                break;
            case FNN_SOLVER_RMSPROP:
                m[i] = rho * m[i] + (1 - rho) * gi * gi;
                p[i] -= lr * gi / sqrt(m[i] + eps);
                break;
            case FNN_SOLVER_ADAMAX:
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = fmax(b2 * v[i], fabs(gi));
                p[i] -= lr / (1 - pow(b1, t)) * m[i] / (v[i] + eps);
                break;
            case FNN_SOLVER_NADAM: {
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                double mh = mu_n * m[i] / (1 - prod_n) + (1 - mu_t) * gi / (1 - prod);
                double vh = v[i] / (1 - pow(b2, t));
                p[i] -= lr * mh / (sqrt(vh) + eps);
                break;
            }
            }
            worst = fmax(worst, fabs(vget(f32, M.params, i) - p[i]));
        }
    }
    CHECK(st == FNN_OK && M.opt.t == 3, "status %d, t %lld", st, (long long)M.opt.t);
    CHECK(worst <= (f32 ? 1e-5 : 1e-12), "parameters off the update rule by %.3g", worst);
    if (solver == FNN_SOLVER_NADAM)
        CHECK(fabs(M.opt.nadam_mu_product - prod) <= 1e-15, "nadam_mu_product %.17g vs %.17g",
              M.opt.nadam_mu_product, prod);
    free(p);
    free(m);
    free(v);
    free(g);
    free(order);
    model_free(&M);
    ds_free(&D);
}

fnn_status fnn_optim_step_f32(const fnn_net *net, float *params, const float *grad,
                              fnn_optstate *opt, double lr, int nt);
fnn_status fnn_optim_step_f64(const fnn_net *net, double *params, const double *grad,
                              fnn_optstate *opt, double lr, int nt);

/* The coefficients of update number t (1, 2, ...) as optim.c computes them,
 * in double before rounding to the parameters' type. */
typedef struct {
    double b1, b2, eps, rho, r, lr_t, decay, cm, cg, cv;
} upd_coefs;
static upd_coefs upd_coefs_at(const fnn_net *net, int t, double lr, double *nadam_prod)
{
    upd_coefs c = {net->beta_1, net->beta_2, net->epsilon, net->rho, lr, 0, 0, 0, 0, 0};
    c.lr_t = lr * sqrt(1.0 - pow(net->beta_2, t)) / (1.0 - pow(net->beta_1, t));
    c.decay = lr * net->weight_decay;
    if (net->solver == FNN_SOLVER_ADAMAX)
        c.r = lr / (1.0 - pow(net->beta_1, t));
    const double mu_t = net->beta_1 * (1.0 - 0.5 * pow(0.96, t));
    const double mu_next = net->beta_1 * (1.0 - 0.5 * pow(0.96, t + 1));
    *nadam_prod *= mu_t;
    c.cm = mu_next / (1.0 - *nadam_prod * mu_next);
    c.cg = (1.0 - mu_t) / (1.0 - *nadam_prod);
    c.cv = 1.0 / (1.0 - pow(net->beta_2, t));
    return c;
}

/* Each dividing solver's update written out in the parameters' precision,
 * with the FMA contractions optim.c spells out and true division by the
 * divisor capped at `cap` (a NaN divisor stays NaN). */
#define UPDATE_REF(NAME, R, FMA, SQRT)                                                     \
    static void NAME(int solver, const upd_coefs *c, R *p, const R *g, R *m, R *v,         \
                     int64_t n, R cap)                                                     \
    {                                                                                      \
        const R b1 = (R)c->b1, b2 = (R)c->b2, eps = (R)c->eps, rho = (R)c->rho, r = (R)c->r; \
        const R lr_t = (R)c->lr_t, decay = (R)c->decay, cm = (R)c->cm, cg = (R)c->cg;      \
        const R cv = (R)c->cv;                                                             \
        for (int64_t i = 0; i < n; i++) {                                                  \
            switch (solver) {                                                              \
            case FNN_SOLVER_ADAMW:                                                         \
                p[i] = FMA(-p[i], decay, p[i]);                                            \
                /* fall through */                                                         \
            case FNN_SOLVER_ADAM:                                                          \
                m[i] = FMA(b1, m[i], (1 - b1) * g[i]);                                     \
                v[i] = FMA(b2, v[i], ((1 - b2) * g[i]) * g[i]);                            \
                p[i] = p[i] - (lr_t * m[i]) / CAPPED(SQRT(v[i]) + eps);                    \
                break;                                                                     \
            case FNN_SOLVER_NADAM:                                                         \
                m[i] = FMA(b1, m[i], (1 - b1) * g[i]);                                     \
                v[i] = FMA(b2, v[i], ((1 - b2) * g[i]) * g[i]);                            \
                p[i] = p[i] - (r * FMA(cm, m[i], cg * g[i])) /                             \
                       CAPPED(SQRT(cv * v[i]) + eps);                                      \
                break;                                                                     \
            case FNN_SOLVER_ADAMAX: {                                                      \
                m[i] = FMA(b1, m[i], (1 - b1) * g[i]);                                     \
                const R ag = g[i] < 0 ? -g[i] : g[i], bu = b2 * v[i];                      \
                v[i] = bu > ag ? bu : ag;                                                  \
                p[i] = p[i] - (r * m[i]) / CAPPED(v[i] + eps);                             \
                break;                                                                     \
            }                                                                              \
            case FNN_SOLVER_RMSPROP:                                                       \
                m[i] = FMA(rho, m[i], ((1 - rho) * g[i]) * g[i]);                          \
                p[i] = p[i] - (r * g[i]) / CAPPED(SQRT(m[i] + eps));                       \
                break;                                                                     \
            default: /* adagrad */                                                         \
                m[i] = FMA(g[i], g[i], m[i]);                                              \
                p[i] = p[i] - (r * g[i]) / CAPPED(SQRT(m[i] + eps));                       \
                break;                                                                     \
            }                                                                              \
        }                                                                                  \
    }
/* a * b + c in two roundings, whatever the compiler would contract */
static float mul_add_f32(float a, float b, float c)
{
    volatile float ab = a * b;
    return ab + c;
}
static double mul_add_f64(double a, double b, double c)
{
    volatile double ab = a * b;
    return ab + c;
}
#define CAPPED(d) ((d) > cap ? cap : (d))
UPDATE_REF(update_ref_f32, float, fmaf, sqrtf)
UPDATE_REF(update_ref_f64, double, fma, sqrt)
/* The same without contractions: what the generic loop computes where the
 * compiler does not contract (an unoptimized build, a CPU without FMA). */
UPDATE_REF(update_plain_f32, float, mul_add_f32, sqrtf)
UPDATE_REF(update_plain_f64, double, mul_add_f64, sqrt)
#undef UPDATE_REF
#undef CAPPED

/* Each dividing solver's update equals its formula with true division, bit
 * for bit, on 1 and 2 threads: a parameter vector of odd length (vector
 * tails), gradients over 16 decades, some exactly 0 or -0, several steps.
 * On an AVX-512 CPU this checks optim.c's division by Newton steps
 * (div_newton), with the FMAs it spells out; elsewhere the generic loops,
 * which equal the formula with the contractions an optimizing compiler
 * makes for an FMA CPU or, in a build that does not contract (the
 * sanitizers' unoptimized one), without them.  With `extreme`, a third of
 * the gradients lie at the edges of div_newton's range: squares that
 * overflow (v becomes inf: Newton without the cap gave NaN), magnitudes
 * near the cap (AdaMax divides by |g|), and denormal gradients and
 * numerators (the residual is no longer exact); NaN matches NaN there. */
static void t_update_exact(int solver, int f32, int extreme)
{
    const int64_t n = 100003;
    fnn_net net;
    memset(&net, 0, sizeof net);
    net.n_params = n;
    net.solver = solver;
    net.beta_1 = 0.9;
    net.beta_2 = 0.999;
    net.epsilon = 1e-7;
    net.rho = 0.9;
    net.weight_decay = 0.004;
    const double m_start = solver == FNN_SOLVER_ADAGRAD ? 0.1 : 0.0;
    const int has_v = solver != FNN_SOLVER_ADAGRAD && solver != FNN_SOLVER_RMSPROP;
    rng_t r = {17};
    double *p0 = xcalloc(n, sizeof(double)), *g0 = xcalloc(n, sizeof(double));
    double *m0 = xcalloc(n, sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        p0[i] = 0.1 * rng_normal(&r);
        g0[i] = i % 97 == 0   ? 0.0
                : i % 89 == 0 ? -0.0
                              : rng_normal(&r) * pow(10.0, -12.0 + 16.0 * rng_unif(&r));
        if (extreme && i % 3 == 1) {
            /* float: squares overflow above 1.8e19, the cap is 2.1e37,
             * denormals below 1.2e-38; double: 1.3e154, 1.1e307 and 2.2e-308;
             * the largest leave Nadam's numerator finite */
            static const double big[2][4] = {{2e19, 1e30, 9e37, 3e38},
                                             {2e154, 1e200, 5e307, 1e308}};
            static const double tiny[2][3] = {{1e-39, 1e-42, 1e-45}, {1e-309, 1e-315, 5e-324}};
            const int t = (int)(i / 3 % 7), sign = i / 21 % 2 ? -1 : 1;
            g0[i] = sign * (t < 4 ? big[f32 ? 0 : 1][t] : tiny[f32 ? 0 : 1][t - 4]);
        }
        if (extreme && i % 89 == 0)
            p0[i] = -0.0; /* minus a zero step stays -0 */
        m0[i] = m_start;
    }
    /* the AVX-512 loop spells its FMAs out (no build leaves them out) and
     * caps the divisor at 1 / (4 MIN) */
    const int avx512 = fnn_sgemm_kernel_available() == FNN_SGEMM_AVX512;
    const float cap_f32 = avx512 ? 1 / (4 * FLT_MIN) : INFINITY;
    const double cap_f64 = avx512 ? 1 / (4 * DBL_MIN) : INFINITY;
    for (int nt = 1; nt <= 2; nt++) {
        void *p = vtyped(f32, p0, n), *g = vtyped(f32, g0, n), *m = vtyped(f32, m0, n);
        void *v = has_v ? xcalloc(n, esz(f32)) : NULL;
        /* [0]: the formula with FMAs, [1]: without */
        void *rp[2], *rm[2], *rv[2];
        for (int q = 0; q < 2; q++) {
            rp[q] = vtyped(f32, p0, n);
            rm[q] = vtyped(f32, m0, n);
            rv[q] = xcalloc(n, esz(f32));
        }
        fnn_optstate opt = {m, v, 0, 1.0};
        fnn_status st = FNN_OK;
        const double lr = 1e-3;
        double prod = 1.0;
        for (int t = 1; t <= 4; t++) {
            st |= f32 ? fnn_optim_step_f32(&net, p, g, &opt, lr, nt)
                      : fnn_optim_step_f64(&net, p, g, &opt, lr, nt);
            const upd_coefs c = upd_coefs_at(&net, t, lr, &prod);
            if (f32) {
                update_ref_f32(solver, &c, rp[0], g, rm[0], rv[0], n, cap_f32);
                update_plain_f32(solver, &c, rp[1], g, rm[1], rv[1], n, cap_f32);
            } else {
                update_ref_f64(solver, &c, rp[0], g, rm[0], rv[0], n, cap_f64);
                update_plain_f64(solver, &c, rp[1], g, rm[1], rv[1], n, cap_f64);
            }
        }
        CHECK(st == FNN_OK && opt.t == 4, "%d threads: status %d, t %lld", nt, st,
              (long long)opt.t);
        int64_t differ[2] = {0, 0};
        int same[2];
        for (int q = 0; q < 2; q++) {
            for (int64_t i = 0; i < n; i++) {
                const double a = vget(f32, p, i), b = vget(f32, rp[q], i);
                differ[q] += a != b && !(isnan(a) && isnan(b));
            }
            same[q] = differ[q] == 0 && vsame(f32, m, rm[q], n) &&
                      (!has_v || vsame(f32, v, rv[q], n));
        }
        CHECK(same[0] || (!avx512 && same[1]),
              "%d threads: %lld of %lld parameters differ from the formula (max %.3g); "
              "%lld from it without FMAs", nt, (long long)differ[0], (long long)n,
              vmaxdiff(f32, p, rp[0], n), (long long)differ[1]);
        free(p), free(g), free(m), free(v);
        for (int q = 0; q < 2; q++) free(rp[q]), free(rm[q]), free(rv[q]);
    }
    free(p0);
    free(g0);
    free(m0);
}

/* One full-batch SGD step equals p - lr * (loss_grad's gradient), and the
 * report carries loss_grad's loss and the kernels' gradient norms. */
static void t_step_matches_loss_grad(int bn, int bn_input, int f32)
{
    const int64_t u[] = {3, 5, 4, 2};
    model M;
    model_init(&M, f32, 3, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, bn, bn_input, 40);
    model_set_solver(&M, FNN_SOLVER_SGD);
    M.net.momentum = 0;
    M.net.alpha = 0.3;
    dataset D;
    ds_init(&D, f32, 12, 3, 2, FNN_LOSS_SQUARED, 40);
    D.data.sample_weight = D.w;
    const int64_t np = M.net.n_params;
    void *g = xcalloc(np, esz(f32)), *p0 = vdup(f32, M.params, np);
    double loss, obj;
    api_loss_grad(f32, &M.net, NULL, M.params, &D.data, 0, 0, 0, &loss, &obj, g);
    int64_t *order = iota(D.n);
    fnn_epoch_report rep;
    const double lr = 0.1;
    fnn_status st = train_order(&M, &D.data, NULL, order, D.n, D.n, lr, 1, &rep);
    CHECK(st == FNN_OK && rep.n_steps == 1 && M.opt.t == 1, "status %d, n_steps %lld, t %lld", st,
          (long long)rep.n_steps, (long long)M.opt.t);
    double worst = 0;
    for (int64_t i = 0; i < np; i++) {
        double expect = vget(f32, p0, i) - lr * vget(f32, g, i);
        worst = fmax(worst, fabs(vget(f32, M.params, i) - expect));
    }
    CHECK(worst <= (f32 ? 1e-6 : 1e-14), "step differs from -lr*grad by %.3g", worst);
    CHECK(fabs(rep.loss_sum - loss * (double)D.n) <= (f32 ? 1e-6 : 1e-13) * fabs(rep.loss_sum),
          "report loss_sum %.17g vs loss*n %.17g", rep.loss_sum, loss * (double)D.n);
    for (int l = 0; l < 3; l++) {
        double s = 0;
        for (int64_t i = 0; i < u[l] * u[l + 1]; i++) {
            double v = vget(f32, g, M.w_off[l] + i);
            s += v * v;
        }
        CHECK(fabs(M.gnorm[l] - sqrt(s)) <= (f32 ? 1e-6 : 1e-13) * sqrt(s),
              "grad_norm_sum[%d] %.17g vs ||dW|| %.17g", l, M.gnorm[l], sqrt(s));
    }
    free(g);
    free(p0);
    free(order);
    model_free(&M);
    ds_free(&D);
}

/* Clipping: one full-batch SGD step (lr 1, no momentum) applies exactly
 * the clipped gradient; the report's norms are taken before clipping. */
static void t_clip(int mode, int f32)
{
    const int64_t u[] = {3, 6, 2};
    model M;
    model_init(&M, f32, 2, u, FNN_ACT_RELU, FNN_LOSS_SQUARED, FNN_BN_AFTER, 1, 50);
    model_set_solver(&M, FNN_SOLVER_SGD);
    M.net.momentum = 0;
    dataset D;
    ds_init(&D, f32, 10, 3, 2, FNN_LOSS_SQUARED, 50);
    const int64_t np = M.net.n_params;
    void *g = xcalloc(np, esz(f32)), *p0 = vdup(f32, M.params, np);
    api_loss_grad(f32, &M.net, NULL, M.params, &D.data, 0, 0, 0, NULL, NULL, g);
    int64_t off[4 * MAXL], len[4 * MAXL];
    int nt = model_tensors(&M, off, len);
    double sq[4 * MAXL], total = 0, minnorm = INFINITY;
    for (int t = 0; t < nt; t++) {
        sq[t] = 0;
        for (int64_t i = 0; i < len[t]; i++) sq[t] += pow(vget(f32, g, off[t] + i), 2);
        total += sq[t];
        minnorm = fmin(minnorm, sqrt(sq[t]));
    }
    double c = mode == FNN_CLIP_VALUE ? 0.5 * vmaxabs(f32, g, np)
               : mode == FNN_CLIP_NORM ? 0.7 * minnorm /* every tensor clipped */
                                       : 0.5 * sqrt(total);
    M.net.clip = mode;
    M.net.clip_value = c;
    double *expect = xcalloc(np, sizeof(double));
    for (int t = 0; t < nt; t++)
        for (int64_t i = off[t]; i < off[t] + len[t]; i++) {
            double gi = vget(f32, g, i);
            if (mode == FNN_CLIP_VALUE)
                gi = fmin(fmax(gi, -c), c);
            else if (mode == FNN_CLIP_NORM && sqrt(sq[t]) > c)
                gi *= c / sqrt(sq[t]);
            else if (mode == FNN_CLIP_GLOBAL_NORM && sqrt(total) > c)
                gi *= c / sqrt(total);
            expect[i] = vget(f32, p0, i) - gi;
        }
    int64_t *order = iota(D.n);
    fnn_epoch_report rep;
    fnn_status st = train_order(&M, &D.data, NULL, order, D.n, D.n, 1.0, 1, &rep);
    CHECK(st == FNN_OK, "status %d", st);
    double worst = 0, dsq_total = 0;
    for (int64_t i = 0; i < np; i++) {
        double d = vget(f32, M.params, i) - vget(f32, p0, i);
        worst = fmax(worst, fabs(vget(f32, M.params, i) - expect[i]));
        dsq_total += d * d;
        if (mode == FNN_CLIP_VALUE)
            CHECK(fabs(d) <= c * (1 + 1e-6), "update %g beyond clip value %g", d, c);
    }
    const double tol = f32 ? 1e-6 : 1e-13;
    CHECK(worst <= tol * (1 + vmaxabs(f32, p0, np)), "clipped step off by %.3g", worst);
    if (mode == FNN_CLIP_GLOBAL_NORM)
        CHECK(fabs(sqrt(dsq_total) - c) <= 1e-5 * c, "global update norm %.9g != clip %.9g",
              sqrt(dsq_total), c);
    if (mode == FNN_CLIP_NORM)
        for (int t = 0; t < nt; t++) {
            double s = 0;
            for (int64_t i = off[t]; i < off[t] + len[t]; i++)
                s += pow(vget(f32, M.params, i) - vget(f32, p0, i), 2);
            CHECK(fabs(sqrt(s) - c) <= 1e-5 * c, "tensor %d update norm %.9g != clip %.9g", t,
                  sqrt(s), c);
        }
    for (int l = 0; l < 2; l++)
        CHECK(fabs(M.gnorm[l] - sqrt(sq[l])) <= 1e-6 * sqrt(sq[l]),
              "grad_norm_sum[%d] %.9g is not the unclipped norm %.9g", l, M.gnorm[l], sqrt(sq[l]));
    /* A threshold above every value/norm leaves the gradient untouched. */
    model N;
    model_init(&N, f32, 2, u, FNN_ACT_RELU, FNN_LOSS_SQUARED, FNN_BN_AFTER, 1, 50);
    model_set_solver(&N, FNN_SOLVER_SGD);
    N.net.momentum = 0;
    N.net.clip = mode;
    N.net.clip_value = 1.01 * (mode == FNN_CLIP_VALUE ? vmaxabs(f32, g, np) : sqrt(total));
    st = train_order(&N, &D.data, NULL, order, D.n, D.n, 1.0, 1, NULL);
    worst = 0;
    for (int64_t i = 0; i < np; i++)
        worst = fmax(worst, fabs(vget(f32, N.params, i) - (vget(f32, p0, i) - vget(f32, g, i))));
    CHECK(st == FNN_OK && worst <= tol * (1 + vmaxabs(f32, p0, np)),
          "inactive clipping changed the step by %.3g", worst);
    model_free(&N);
    free(expect);
    free(g);
    free(p0);
    free(order);
    model_free(&M);
    ds_free(&D);
}

/* Keras MaxNorm: every kernel column within max_norm after training. */
static void t_max_norm(int f32)
{
    const int64_t u[] = {4, 8, 2};
    model M;
    model_init(&M, f32, 2, u, FNN_ACT_ELU, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 60);
    M.net.max_norm = 0.4;
    dataset D;
    ds_init(&D, f32, 40, 4, 2, FNN_LOSS_SQUARED, 60);
    fnn_status st = train_epochs(&M, &D.data, 5, 8, 0.05, 1);
    CHECK(st == FNN_OK, "status %d", st);
    double top = 0;
    for (int l = 0; l < 2; l++)
        for (int64_t j = 0; j < u[l + 1]; j++) {
            double s = 0;
            for (int64_t i = 0; i < u[l]; i++)
                s += pow(vget(f32, M.params, M.w_off[l] + i * u[l + 1] + j), 2);
            top = fmax(top, sqrt(s));
        }
    CHECK(top <= 0.4 * (1 + 1e-5), "a kernel column has norm %.9g > 0.4", top);
    CHECK(top >= 0.39, "constraint never active (max column norm %.6g)", top);
    model_free(&M);
    ds_free(&D);
}

/* Per-layer max-norm {0.4, 0}: the first kernel constrained, the output
 * kernel left free (0 = unconstrained, whatever max_norm says). */
static void t_layer_max_norm(int f32)
{
    const int64_t u[] = {4, 8, 2};
    const double r[] = {0.4, 0.0};
    model M;
    model_init(&M, f32, 2, u, FNN_ACT_ELU, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 60);
    M.net.max_norm = 0.1; /* ignored: layer_max_norm replaces it */
    M.net.layer_max_norm = r;
    dataset D;
    ds_init(&D, f32, 40, 4, 2, FNN_LOSS_SQUARED, 60);
    fnn_status st = train_epochs(&M, &D.data, 5, 8, 0.05, 1);
    CHECK(st == FNN_OK, "status %d", st);
    double top[2] = {0, 0};
    for (int l = 0; l < 2; l++)
        for (int64_t j = 0; j < u[l + 1]; j++) {
            double s = 0;
            for (int64_t i = 0; i < u[l]; i++)
                s += pow(vget(f32, M.params, M.w_off[l] + i * u[l + 1] + j), 2);
            top[l] = fmax(top[l], sqrt(s));
        }
    CHECK(top[0] <= 0.4 * (1 + 1e-5) && top[0] >= 0.39, "layer 0 max column norm %.9g", top[0]);
    CHECK(top[1] > 0.4, "layer 1 constrained (max column norm %.9g)", top[1]);
    model_free(&M);
    ds_free(&D);
}

/* BatchNorm statistics: with momentum 0 and lr 0, one full-batch step
 * stores the batch mean/biased variance, and inference (moving stats)
 * then reproduces the training-mode loss; with momentum m the update is
 * m * moving + (1 - m) * batch. */
static void t_bn_stats(int bn, int f32)
{
    const int64_t u[] = {3, 5, 4, 2};
    model M;
    model_init(&M, f32, 3, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, bn, 1, 70);
    model_set_solver(&M, FNN_SOLVER_SGD);
    M.net.bn_momentum = 0;
    dataset D;
    ds_init(&D, f32, 15, 3, 2, FNN_LOSS_SQUARED, 70);
    for (int64_t i = 0; i < D.n * D.d; i++) D.X[i] = 3 * D.X[i] + 1.5; /* mean away from 0 */
    ds_retype(&D);
    model M9;
    model_clone(&M9, &M);
    M9.net.bn_momentum = 0.9;
    int64_t *order = iota(D.n);
    void *p0 = vdup(f32, M.params, M.net.n_params);
    fnn_status st = train_order(&M, &D.data, NULL, order, D.n, D.n, 0.0, 1, NULL);
    CHECK(st == FNN_OK, "status %d", st);
    CHECK(vsame(f32, p0, M.params, M.net.n_params), "lr 0 changed the parameters");
    const double tol = f32 ? 2e-5 : 1e-12;
    for (int64_t j = 0; j < D.d; j++) {
        double mu = 0, var = 0;
        for (int64_t i = 0; i < D.n; i++) mu += D.X[i * D.d + j] / (double)D.n;
        for (int64_t i = 0; i < D.n; i++) var += pow(D.X[i * D.d + j] - mu, 2) / (double)D.n;
        double mm = vget(f32, M.stats, M.stat_off[0] + j),
               mv = vget(f32, M.stats, M.stat_off[0] + D.d + j);
        CHECK(fabs(mm - mu) <= tol * (1 + fabs(mu)) && fabs(mv - var) <= tol * (1 + var),
              "input slot, feature %lld: moving (%.9g, %.9g) vs batch (%.9g, %.9g)",
              (long long)j, mm, mv, mu, var);
    }
    /* Inference with the stored statistics == training mode on the batch. */
    void *out = xcalloc(D.n * 2, esz(f32));
    st = api_predict(f32, &M.net, NULL, M.params, M.stats, &D.data, 4, 0, 0, out);
    CHECK(st == FNN_OK, "predict status %d", st);
    double lsum = 0;
    for (int64_t i = 0; i < D.n * 2; i++) lsum += 0.5 * pow(vget(f32, out, i) - D.Y[i], 2);
    double infer = lsum / (double)D.n / 2, trainmode = full_loss(&M, &D.data);
    CHECK(fabs(infer - trainmode) <= (f32 ? 1e-4 : 1e-9) * trainmode,
          "inference loss %.12g vs training-mode loss %.12g", infer, trainmode);
    /* Momentum 0.9: 0.9 * (mean 0, var 1) + 0.1 * batch. */
    st = train_order(&M9, &D.data, NULL, order, D.n, D.n, 0.0, 1, NULL);
    for (int64_t j = 0; j < D.d; j++) {
        double mb = vget(f32, M.stats, M.stat_off[0] + j),
               vb = vget(f32, M.stats, M.stat_off[0] + D.d + j);
        double mm = vget(f32, M9.stats, M9.stat_off[0] + j),
               mv = vget(f32, M9.stats, M9.stat_off[0] + D.d + j);
        CHECK(fabs(mm - 0.1 * mb) <= tol * (1 + fabs(mb)) &&
                  fabs(mv - (0.9 + 0.1 * vb)) <= tol * (1 + vb),
              "momentum 0.9: (%.9g, %.9g) vs (%.9g, %.9g)", mm, mv, 0.1 * mb, 0.9 + 0.1 * vb);
    }
    /* Every hidden slot got statistics (variance > 0, not the initial 1). */
    for (int s = 1; s < 3; s++) {
        double v0 = vget(f32, M.stats, M.stat_off[s] + u[s]);
        CHECK(v0 > 0 && v0 != 1, "slot %d variance %g not updated", s, v0);
    }
    free(out);
    free(p0);
    free(order);
    model_free(&M);
    model_free(&M9);
    ds_free(&D);
}

/* frozen_layers = 1: Dense 0 and BN slots 0, 1 keep their values and
 * statistics bit for bit under every solver (with penalty, max-norm and
 * clipping on), the rest trains; frozen BN needs the statistics. */
static void t_frozen(int bn, int f32)
{
    const int64_t u[] = {3, 5, 4, 2};
    dataset D;
    ds_init(&D, f32, 24, 3, 2, FNN_LOSS_SQUARED, 90);
    for (int solver = 0; solver < FNN_SOLVER_COUNT; solver++) {
        model M;
        model_init(&M, f32, 3, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, bn, 1, 90);
        model_set_solver(&M, solver);
        M.net.frozen_layers = 1;
        M.net.alpha = 0.1;
        M.net.max_norm = 0.5;
        M.net.clip = FNN_CLIP_VALUE;
        M.net.clip_value = 0.01;
        model P;
        model_clone(&P, &M);
        fnn_status st = train_epochs(&M, &D.data, 2, 5, 0.01, 1);
        CHECK(st == FNN_OK, "%s: status %d", fnn_solver_table[solver].name, st);
        const int64_t w0 = u[0] * u[1];
        CHECK(vsame(f32, (char *)M.params + M.w_off[0] * esz(f32),
                    (char *)P.params + P.w_off[0] * esz(f32), w0) &&
                  !vsame(f32, (char *)M.params + M.w_off[1] * esz(f32),
                         (char *)P.params + P.w_off[1] * esz(f32), u[1] * u[2]),
              "%s: frozen kernel changed or trainable one did not", fnn_solver_table[solver].name);
        if (M.b_off[0] >= 0)
            CHECK(vsame(f32, (char *)M.params + M.b_off[0] * esz(f32),
                        (char *)P.params + P.b_off[0] * esz(f32), u[1]),
                  "%s: frozen bias changed", fnn_solver_table[solver].name);
        for (int s = 0; s < 3; s++) {
            const int frozen = s <= 1;
            const int64_t w = 2 * u[s];
            int same_p = vsame(f32, (char *)M.params + M.bn_off[s] * esz(f32),
                               (char *)P.params + P.bn_off[s] * esz(f32), w);
            int same_s = vsame(f32, (char *)M.stats + M.stat_off[s] * esz(f32),
                               (char *)P.stats + P.stat_off[s] * esz(f32), w);
            CHECK(frozen ? same_p && same_s : !same_p && !same_s,
                  "%s: BN slot %d (frozen %d): gamma/beta same %d, statistics same %d",
                  fnn_solver_table[solver].name, s, frozen, same_p, same_s);
        }
        model_free(&M);
        model_free(&P);
    }
    model M;
    model_init(&M, f32, 3, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, bn, 1, 91);
    M.net.frozen_layers = 1;
    void *g = xcalloc(M.net.n_params, esz(f32));
    double loss, obj;
    fnn_status st = f32 ? fnn_loss_grad_stats_f32(&M.net, NULL, M.params, NULL, &D.data, 0, 0, 0,
                                                  &loss, &obj, g)
                        : fnn_loss_grad_stats_f64(&M.net, NULL, M.params, NULL, &D.data, 0, 0, 0,
                                                  &loss, &obj, g);
    CHECK(st == FNN_ERR_BADARG, "frozen BN without statistics: %d", st);
    st = f32 ? fnn_loss_grad_stats_f32(&M.net, NULL, M.params, M.stats, &D.data, 0, 0, 0, &loss,
                                       &obj, g)
             : fnn_loss_grad_stats_f64(&M.net, NULL, M.params, M.stats, &D.data, 0, 0, 0, &loss,
                                       &obj, g);
    CHECK(st == FNN_OK && vmaxabs(f32, g, u[0] * u[1]) == 0 &&
              vmaxabs(f32, (char *)g + M.w_off[1] * esz(f32), u[1] * u[2]) > 0,
          "loss_grad_stats: status %d, frozen kernel gradient not zero or trainable one zero",
          st);
    M.net.frozen_layers = 3;
    st = api_loss_grad(f32, &M.net, NULL, M.params, &D.data, 0, 0, 0, &loss, &obj, g);
    CHECK(st == FNN_ERR_BADARG, "frozen_layers = n_layers: %d", st);
    free(g);
    model_free(&M);
    ds_free(&D);
}

/* BN in training: learns, including batches of one row (zero variance). */
static void t_bn_learn(int bn, int f32)
{
    const int64_t u[] = {4, 10, 8, 1};
    model M;
    model_init(&M, f32, 3, u, FNN_ACT_RELU, FNN_LOSS_SQUARED, bn, 1, 80);
    dataset D;
    ds_init(&D, f32, 64, 4, 1, FNN_LOSS_SQUARED, 80);
    check_learns(&M, &D, 30, 16, 0.01, 0.7);
    fnn_status st = train_epochs(&M, &D.data, 1, 1, 0.001, 3);
    CHECK(st == FNN_OK, "batch_size 1 with BN: status %d", st);
    CHECK(vfinite(f32, M.params, M.net.n_params) && vfinite(f32, M.stats, M.net.n_stats),
          "non-finite parameters/statistics after 1-row batches");
    void *out = xcalloc(D.n, esz(f32));
    st = api_predict(f32, &M.net, NULL, M.params, M.stats, &D.data, 0, 0, 0, out);
    CHECK(st == FNN_OK && vfinite(f32, out, D.n), "predict status %d / non-finite", st);
    free(out);
    model_free(&M);
    ds_free(&D);
}

/* Dropout / AlphaDropout: masks keyed by (seed, row), independent of chunking. */
static void t_dropout(int alpha, int f32)
{
    const int64_t u[] = {5, 8, 6, 3};
    const double rates[] = {0.3, 0.25, 0.1};
    model M;
    model_init(&M, f32, 3, u, alpha ? FNN_ACT_SELU : FNN_ACT_RELU, FNN_LOSS_LOG, FNN_BN_NONE, 0,
               90);
    model_set_dropout(&M, rates, alpha);
    dataset D;
    ds_init(&D, f32, 30, 5, 3, FNN_LOSS_LOG, 90);
    const int64_t no = D.n * 3;
    void *a = xcalloc(no, esz(f32)), *b = xcalloc(no, esz(f32)), *c = xcalloc(no, esz(f32));
    void *e = xcalloc(no, esz(f32));
    const fnn_net *n = &M.net;
    fnn_status st = api_predict(f32, n, NULL, M.params, M.stats, &D.data, 0, 0, 1, a);
    st |= api_predict(f32, n, NULL, M.params, M.stats, &D.data, 0, 0, 2, b);
    CHECK(st == FNN_OK && vsame(f32, a, b, no), "dropout off must ignore the seed");
    st = api_predict(f32, n, NULL, M.params, M.stats, &D.data, 0, 1, 5, b);
    st |= api_predict(f32, n, NULL, M.params, M.stats, &D.data, 7, 1, 5, c);
    st |= api_predict(f32, n, NULL, M.params, M.stats, &D.data, 0, 1, 6, e);
    CHECK(st == FNN_OK, "status %d", st);
    CHECK(!vsame(f32, a, b, no), "MC dropout output equals the deterministic one");
    CHECK(vsame(f32, b, c, no), "MC dropout sample depends on chunk_rows");
    CHECK(!vsame(f32, b, e, no), "MC dropout samples equal for different seeds");
    CHECK(vfinite(f32, b, no), "non-finite MC sample");
    /* Training with dropout learns (loss measured without dropout). */
    check_learns(&M, &D, 40, 10, 0.01, 0.8);
    /* Same seed, same start: bitwise the same training. */
    model A, B;
    model_init(&A, f32, 3, u, FNN_ACT_RELU, FNN_LOSS_LOG, FNN_BN_NONE, 0, 91);
    model_set_dropout(&A, rates, alpha);
    model_clone(&B, &A);
    train_epochs(&A, &D.data, 2, 7, 0.01, 9);
    train_epochs(&B, &D.data, 2, 7, 0.01, 9);
    CHECK(vsame(f32, A.params, B.params, A.net.n_params), "training is not deterministic");
    free(a);
    free(b);
    free(c);
    free(e);
    model_free(&M);
    model_free(&A);
    model_free(&B);
    ds_free(&D);
}

/* Dense X through odd strides equals the C-contiguous matrix, bitwise:
 * Fortran order, a column slice of a wider array, every other column,
 * and rows reversed (negative row stride). */
static void t_strides(int f32)
{
    const int64_t n = 13, d = 4, k = 2;
    const int64_t u[] = {d, 5, k};
    dataset D;
    ds_init(&D, f32, n, d, k, FNN_LOSS_SQUARED, 100);
    D.data.sample_weight = D.w;
    model M0;
    model_init(&M0, f32, 2, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, FNN_BN_AFTER, 1, 100);
    const int64_t np = M0.net.n_params;
    /* reference results on the contiguous matrix */
    void *g_ref = xcalloc(np, esz(f32)), *out_ref = xcalloc(n * k, esz(f32));
    double l_ref;
    api_loss_grad(f32, &M0.net, NULL, M0.params, &D.data, 0, 0, 0, &l_ref, NULL, g_ref);
    api_predict(f32, &M0.net, NULL, M0.params, M0.stats, &D.data, 5, 0, 0, out_ref);
    model Mref;
    model_clone(&Mref, &M0);
    int64_t *order = iota(n);
    order[0] = 7;
    order[7] = 0;
    train_order(&Mref, &D.data, NULL, order, n, 4, 0.05, 3, NULL);

    const char *names[] = {"fortran", "column_slice", "every_other_column", "reversed_rows"};
    for (int v = 0; v < 4; v++) {
        const int64_t W = d + 3;
        void *buf = xcalloc(n * 2 * d + n * W, esz(f32)); /* big enough for all */
        fnn_data dv = D.data;
        char *base = buf;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++) {
                int64_t at;
                switch (v) {
                case 0: at = i + j * n; break;
                case 1: at = i * W + 2 + j; break;
                case 2: at = i * 2 * d + 2 * j; break;
                default: at = (n - 1 - i) * d + j; break;
                }
                vset(f32, buf, at, D.X[i * d + j]);
            }
        switch (v) {
        case 0: dv.row_stride = 1; dv.col_stride = n; dv.x = buf; break;
        case 1: dv.row_stride = W; dv.col_stride = 1; dv.x = base + 2 * esz(f32); break;
        case 2: dv.row_stride = 2 * d; dv.col_stride = 2; dv.x = buf; break;
        default: dv.row_stride = -d; dv.col_stride = 1; dv.x = base + (n - 1) * d * esz(f32);
        }
        void *g = xcalloc(np, esz(f32)), *out = xcalloc(n * k, esz(f32));
        double l;
        fnn_status st = api_loss_grad(f32, &M0.net, NULL, M0.params, &dv, 0, 0, 0, &l, NULL, g);
        st |= api_predict(f32, &M0.net, NULL, M0.params, M0.stats, &dv, 5, 0, 0, out);
        model M;
        model_clone(&M, &M0);
        st |= train_order(&M, &dv, NULL, order, n, 4, 0.05, 3, NULL);
        CHECK(st == FNN_OK, "%s: status %d", names[v], st);
        CHECK(l == l_ref && vsame(f32, g, g_ref, np), "%s: loss/gradient differ", names[v]);
        CHECK(vsame(f32, out, out_ref, n * k), "%s: predictions differ", names[v]);
        CHECK(vsame(f32, M.params, Mref.params, np) &&
                  vsame(f32, M.stats, Mref.stats, M.net.n_stats),
              "%s: trained parameters differ", names[v]);
        model_free(&M);
        free(g);
        free(out);
        free(buf);
    }
    free(g_ref);
    free(out_ref);
    free(order);
    model_free(&M0);
    model_free(&Mref);
    ds_free(&D);
}

/* CSR X (int32 and int64 indices, an empty row, unsorted indices) equals
 * the dense matrix, bitwise. */
static void t_csr(int idx64, int f32)
{
    const int64_t n = 17, d = 6, k = 3;
    const int64_t u[] = {d, 7, k};
    dataset D;
    ds_init(&D, f32, n, d, k, FNN_LOSS_LOG, 110);
    ds_sparsify(&D, 0.6, 110);
    csr_t C = {NULL, NULL, NULL, 0};
    csr_build(&C, f32, D.X, n, d, idx64);
    fnn_data ds = csr_view(&D.data, &C);
    model A;
    model_init(&A, f32, 2, u, FNN_ACT_LEAKY_RELU, FNN_LOSS_LOG, FNN_BN_NONE, 0, 110);
    const double rates[] = {0.2, 0.1};
    model_set_dropout(&A, rates, 0);
    const int64_t np = A.net.n_params;
    void *g1 = xcalloc(np, esz(f32)), *g2 = xcalloc(np, esz(f32));
    void *o1 = xcalloc(n * k, esz(f32)), *o2 = xcalloc(n * k, esz(f32));
    double l1, l2;
    fnn_status st = api_loss_grad(f32, &A.net, NULL, A.params, &D.data, 5, 1, 4, &l1, NULL, g1);
    st |= api_loss_grad(f32, &A.net, NULL, A.params, &ds, 5, 1, 4, &l2, NULL, g2);
    CHECK(st == FNN_OK && l1 == l2 && vsame(f32, g1, g2, np), "loss_grad differs (%.9g %.9g)",
          l1, l2);
    st = api_predict(f32, &A.net, NULL, A.params, A.stats, &D.data, 4, 1, 8, o1);
    st |= api_predict(f32, &A.net, NULL, A.params, A.stats, &ds, 4, 1, 8, o2);
    CHECK(st == FNN_OK && vsame(f32, o1, o2, n * k), "predictions differ");
    model B;
    model_clone(&B, &A);
    st = train_epochs(&A, &D.data, 3, 4, 0.01, 5);
    st |= train_epochs(&B, &ds, 3, 4, 0.01, 5);
    CHECK(st == FNN_OK && vsame(f32, A.params, B.params, np), "training differs");
    free(g1);
    free(g2);
    free(o1);
    free(o2);
    csr_free(&C);
    model_free(&A);
    model_free(&B);
    ds_free(&D);
}

/* Sample weights: all-ones == none; weight 2 == a duplicated row; scaling
 * all weights changes nothing (without penalty); zero-weight batches are
 * skipped without an update. */
static void t_sample_weight(int f32)
{
    const int64_t n = 9, d = 3, k = 2;
    const int64_t u[] = {d, 5, k};
    model M;
    model_init(&M, f32, 2, u, FNN_ACT_TANH, FNN_LOSS_BINARY_LOG, FNN_BN_NONE, 0, 120);
    const int64_t np = M.net.n_params;
    dataset D;
    ds_init(&D, f32, n, d, k, FNN_LOSS_BINARY_LOG, 120);
    void *g1 = xcalloc(np, esz(f32)), *g2 = xcalloc(np, esz(f32));
    double l1, l2, o1, o2;
    const double tol = f32 ? 2e-6 : 1e-13;
    /* ones */
    double *ones = xcalloc(n, sizeof(double));
    for (int64_t i = 0; i < n; i++) ones[i] = 1;
    void *w1 = vtyped(f32, ones, n);
    fnn_data dw = D.data;
    dw.sample_weight = w1;
    api_loss_grad(f32, &M.net, NULL, M.params, &D.data, 0, 0, 0, &l1, &o1, g1);
    api_loss_grad(f32, &M.net, NULL, M.params, &dw, 0, 0, 0, &l2, &o2, g2);
    CHECK(fabs(l1 - l2) <= tol * l1 && vmaxdiff(f32, g1, g2, np) <= tol * vmaxabs(f32, g1, np),
          "unit weights differ from no weights");
    /* weight 2 on row 3 == row 3 duplicated */
    dataset E;
    ds_init(&E, f32, n + 1, d, k, FNN_LOSS_BINARY_LOG, 120);
    for (int64_t i = 0; i < n + 1; i++) {
        int64_t src = i < n ? i : 3;
        memcpy(E.X + i * d, D.X + src * d, (size_t)d * sizeof(double));
        memcpy(E.Y + i * k, D.Y + src * k, (size_t)k * sizeof(double));
    }
    ds_retype(&E);
    ones[3] = 2;
    void *w2 = vtyped(f32, ones, n);
    dw.sample_weight = w2;
    M.net.alpha = 0.2; /* the penalty scales by the weight sum == row count */
    api_loss_grad(f32, &M.net, NULL, M.params, &dw, 0, 0, 0, &l1, &o1, g1);
    api_loss_grad(f32, &M.net, NULL, M.params, &E.data, 0, 0, 0, &l2, &o2, g2);
    CHECK(fabs(o1 - o2) <= tol * fabs(o1) &&
              vmaxdiff(f32, g1, g2, np) <= tol * vmaxabs(f32, g1, np),
          "weight 2 != duplicated row: objective %.12g vs %.12g", o1, o2);
    /* scale invariance without penalty */
    M.net.alpha = 0;
    double *w3d = xcalloc(n, sizeof(double));
    for (int64_t i = 0; i < n; i++) w3d[i] = 3 * D.W[i];
    void *w3 = vtyped(f32, w3d, n);
    dw.sample_weight = D.w;
    api_loss_grad(f32, &M.net, NULL, M.params, &dw, 0, 0, 0, &l1, &o1, g1);
    dw.sample_weight = w3;
    api_loss_grad(f32, &M.net, NULL, M.params, &dw, 0, 0, 0, &l2, &o2, g2);
    CHECK(fabs(o1 - o2) <= 10 * tol * fabs(o1) &&
              vmaxdiff(f32, g1, g2, np) <= 10 * tol * vmaxabs(f32, g1, np),
          "weights x3 changed the objective: %.12g vs %.12g", o1, o2);
    /* zero weights: only rows 1 and 4 count; batch_size 1 -> 2 updates */
    for (int64_t i = 0; i < n; i++) w3d[i] = i == 1 || i == 4 ? 1.5 : 0;
    void *w0 = vtyped(f32, w3d, n);
    dw.sample_weight = w0;
    int64_t *order = iota(n);
    fnn_epoch_report rep;
    fnn_status st = train_order(&M, &dw, NULL, order, n, 1, 0.01, 1, &rep);
    CHECK(st == FNN_OK && rep.n_steps == 2 && M.opt.t == 2,
          "zero-weight batches: status %d, n_steps %lld, t %lld", st, (long long)rep.n_steps,
          (long long)M.opt.t);
    /* and weighted training still learns */
    dw.sample_weight = D.w;
    dataset F;
    ds_init(&F, f32, 60, d, k, FNN_LOSS_BINARY_LOG, 121);
    F.data.sample_weight = F.w;
    check_learns(&M, &F, 30, 10, 0.02, 0.8);
    free(ones);
    free(w1);
    free(w2);
    free(w3);
    free(w3d);
    free(w0);
    free(g1);
    free(g2);
    free(order);
    model_free(&M);
    ds_free(&D);
    ds_free(&E);
    ds_free(&F);
}

/* Batch sizes 1, partial, equal to and larger than n; n_order 0; a subset. */
static void t_batch_sizes(int f32)
{
    const int64_t n = 10, u[] = {3, 4, 2};
    dataset D;
    ds_init(&D, f32, n, 3, 2, FNN_LOSS_SQUARED, 130);
    model M0;
    model_init(&M0, f32, 2, u, FNN_ACT_SWISH, FNN_LOSS_SQUARED, FNN_BN_BEFORE, 0, 130);
    const int64_t np = M0.net.n_params;
    int64_t *order = iota(n);
    const int64_t bss[] = {1, 4, 10, 25};
    const int64_t steps[] = {10, 3, 1, 1};
    model full;
    for (int b = 0; b < 4; b++) {
        model M;
        model_clone(&M, &M0);
        fnn_epoch_report rep;
        fnn_status st = train_order(&M, &D.data, NULL, order, n, bss[b], 0.01, 1, &rep);
        CHECK(st == FNN_OK && rep.n_steps == steps[b] && M.opt.t == steps[b],
              "batch %lld: status %d, n_steps %lld", (long long)bss[b], st,
              (long long)rep.n_steps);
        CHECK(rep.loss_sum > 0 && isfinite(rep.loss_sum), "batch %lld: loss_sum %g",
              (long long)bss[b], rep.loss_sum);
        CHECK(!vsame(f32, M.params, M0.params, np), "batch %lld: no update", (long long)bss[b]);
        if (bss[b] == n)
            model_clone(&full, &M);
        if (bss[b] > n)
            CHECK(vsame(f32, M.params, full.params, np) &&
                      vsame(f32, M.stats, full.stats, M.net.n_stats),
                  "batch_size > n differs from batch_size == n");
        model_free(&M);
    }
    /* n_order 0: nothing happens */
    model M;
    model_clone(&M, &M0);
    fnn_epoch_report rep;
    fnn_status st = train_order(&M, &D.data, NULL, order, 0, 4, 0.01, 1, &rep);
    CHECK(st == FNN_OK && rep.n_steps == 0 && rep.loss_sum == 0 && M.opt.t == 0,
          "n_order 0: status %d, n_steps %lld", st, (long long)rep.n_steps);
    CHECK(vsame(f32, M.params, M0.params, np) && vsame(f32, M.stats, M0.stats, M.net.n_stats),
          "n_order 0 changed the model");
    /* a subset of 5 rows (with a repeat), batch 2 -> 3 steps */
    const int64_t sub[] = {9, 2, 2, 5, 0};
    st = train_order(&M, &D.data, NULL, sub, 5, 2, 0.01, 1, &rep);
    CHECK(st == FNN_OK && rep.n_steps == 3, "subset: status %d, n_steps %lld", st,
          (long long)rep.n_steps);
    model_free(&M);
    model_free(&full);
    model_free(&M0);
    free(order);
    ds_free(&D);
}

/* Epochs and full-batch gradients that keep their workspace in an
 * fnn_scratch give the bits of calls that allocate their own, also when the
 * batch size or chunk (so the workspace's buffer sizes) changes from one call
 * to the next and buffers are reused zeroed, kept or replaced; the scratch
 * is freed with its buffers (the sanitizer build sees a leak or a use after
 * free). */
static void t_scratch(int f32)
{
    const int64_t n = 10, u[] = {3, 5, 4, 2};
    dataset D;
    ds_init(&D, f32, n, 3, 2, FNN_LOSS_LOG, 131);
    model A;
    model_init(&A, f32, 3, u, FNN_ACT_RELU, FNN_LOSS_LOG, FNN_BN_AFTER, 1, 131);
    const double rates[] = {0.2, 0.3, 0};
    model_set_dropout(&A, rates, 0);
    model B;
    model_clone(&B, &A);
    B.net.scratch = fnn_scratch_new();
    CHECK(B.net.scratch != NULL, "fnn_scratch_new failed");
    int64_t *order = iota(n);
    const int64_t bss[] = {4, 4, 1, 10, 3, 3};
    for (int e = 0; e < 6; e++) {
        fnn_epoch_report ra, rb;
        fnn_status sa = train_order(&A, &D.data, NULL, order, n, bss[e], 0.05, 7 + e, &ra);
        fnn_status sb = train_order(&B, &D.data, NULL, order, n, bss[e], 0.05, 7 + e, &rb);
        CHECK(sa == FNN_OK && sb == FNN_OK, "epoch %d: status %d, %d", e, sa, sb);
        CHECK(vsame(f32, A.params, B.params, A.net.n_params) &&
                  vsame(f32, A.stats, B.stats, A.net.n_stats) &&
                  vsame(f32, A.m, B.m, A.net.n_params) && vsame(f32, A.v, B.v, A.net.n_params) &&
                  ra.loss_sum == rb.loss_sum,
              "epoch %d (batch %lld): kept workspace trained other values", e,
              (long long)bss[e]);
        /* a gradient in chunks of e + 1 rows between the epochs */
        const int64_t np = A.net.n_params;
        void *ga = vdup(f32, A.params, np), *gb = vdup(f32, A.params, np);
        double la, lb, oa, ob;
        sa = api_loss_grad(f32, &A.net, NULL, A.params, &D.data, e + 1, 0, 0, &la, &oa, ga);
        sb = api_loss_grad(f32, &B.net, NULL, B.params, &D.data, e + 1, 0, 0, &lb, &ob, gb);
        CHECK(sa == FNN_OK && sb == FNN_OK && la == lb && oa == ob && vsame(f32, ga, gb, np),
              "loss_grad after epoch %d: kept workspace gave other values", e);
        free(ga);
        free(gb);
    }
    fnn_scratch_free(B.net.scratch);
    fnn_scratch_free(NULL);
    free(order);
    model_free(&A);
    model_free(&B);
    ds_free(&D);
}

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
typedef struct {
    model *M;
    const dataset *D;
    const int64_t *order;
    int64_t n;
    int ok;
} scratch_job;

static void *scratch_job_run(void *arg)
{
    scratch_job *J = arg;
    J->ok = 1;
    for (int e = 0; e < 1000; e++)
        J->ok &= train_order(J->M, &J->D->data, NULL, J->order, J->n, 3, 0.01, 5, NULL) == FNN_OK;
    return NULL;
}

/* Two threads training two networks that share one fnn_scratch at the same
 * time: the second to start a call finds it in use and allocates its own,
 * so both train the bits of a network trained alone. */
static void t_scratch_shared(int f32)
{
    const int64_t n = 12, u[] = {3, 16, 2};
    dataset D;
    ds_init(&D, f32, n, 3, 2, FNN_LOSS_LOG, 133);
    model A, B[2];
    model_init(&A, f32, 2, u, FNN_ACT_TANH, FNN_LOSS_LOG, FNN_BN_NONE, 0, 133);
    A.net.n_threads = 1; /* no OpenMP team per thread: the threads' calls overlap more */
    model_clone(&B[0], &A);
    model_clone(&B[1], &A);
    fnn_scratch *shared = fnn_scratch_new();
    B[0].net.scratch = B[1].net.scratch = shared;
    int64_t *order = iota(n);
    scratch_job ref = {&A, &D, order, n, 0}, jobs[2] = {{&B[0], &D, order, n, 0},
                                                        {&B[1], &D, order, n, 0}};
    scratch_job_run(&ref);
    pthread_t th[2];
    int started[2];
    for (int t = 0; t < 2; t++)
        started[t] = pthread_create(&th[t], NULL, scratch_job_run, &jobs[t]) == 0;
    for (int t = 0; t < 2; t++)
        if (started[t])
            pthread_join(th[t], NULL);
    CHECK(ref.ok && started[0] && started[1] && jobs[0].ok && jobs[1].ok,
          "status: reference %d, threads started %d %d, ok %d %d", ref.ok, started[0],
          started[1], jobs[0].ok, jobs[1].ok);
    for (int t = 0; t < 2; t++)
        CHECK(vsame(f32, A.params, B[t].params, A.net.n_params) &&
                  vsame(f32, A.m, B[t].m, A.net.n_params),
              "thread %d: a shared scratch trained other values", t);
    fnn_scratch_free(shared);
    free(order);
    model_free(&A);
    model_free(&B[0]);
    model_free(&B[1]);
    ds_free(&D);
}
#endif

/* Widths of one everywhere. */
static void t_width_one(int f32)
{
    const int64_t u[] = {1, 1, 1, 1};
    model M;
    model_init(&M, f32, 3, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, FNN_BN_AFTER, 1, 140);
    dataset D;
    ds_init(&D, f32, 32, 1, 1, FNN_LOSS_SQUARED, 140);
    check_learns(&M, &D, 40, 8, 0.02, 0.8);
    const int64_t ub[] = {1, 1, 2};
    model B;
    model_init(&B, f32, 2, ub, FNN_ACT_RELU, FNN_LOSS_LOG, FNN_BN_BEFORE, 0, 141);
    dataset E;
    ds_init(&E, f32, 16, 1, 2, FNN_LOSS_LOG, 141);
    fnn_status st = train_epochs(&B, &E.data, 3, 1, 0.01, 1);
    void *out = xcalloc(16 * 2, esz(f32));
    st |= api_predict(f32, &B.net, NULL, B.params, B.stats, &E.data, 1, 0, 0, out);
    CHECK(st == FNN_OK && vfinite(f32, out, 32), "width-1 softmax net: status %d", st);
    free(out);
    model_free(&M);
    model_free(&B);
    ds_free(&D);
    ds_free(&E);
}

/* Non-finite data: FNN_ERR_NONFINITE and the failing step is not applied
 * (parameters, statistics, optimizer state unchanged from the last good step). */
static void t_nonfinite(int f32, int bn_input, int nan_in_y)
{
    const int64_t n = 8, u[] = {3, 5, 2};
    dataset D;
    ds_init(&D, f32, n, 3, 2, FNN_LOSS_SQUARED, 150);
    if (nan_in_y)
        D.Y[5 * 2 + 1] = NAN;
    else
        D.X[5 * 3 + 1] = INFINITY;
    ds_retype(&D);
    model M0;
    model_init(&M0, f32, 2, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, FNN_BN_NONE, bn_input, 150);
    const int64_t np = M0.net.n_params, ns = M0.net.n_stats;
    /* (a) the bad row first */
    model M;
    model_clone(&M, &M0);
    const int64_t bad_first[] = {5, 0, 1, 2};
    fnn_epoch_report rep;
    fnn_status st = train_order(&M, &D.data, NULL, bad_first, 4, 1, 0.1, 1, &rep);
    CHECK(st == FNN_ERR_NONFINITE, "bad row first: status %d", st);
    CHECK(rep.n_steps == 0 && M.opt.t == 0, "n_steps %lld, t %lld", (long long)rep.n_steps,
          (long long)M.opt.t);
    CHECK(vsame(f32, M.params, M0.params, np) && vsame(f32, M.stats, M0.stats, ns) &&
              vsame(f32, M.m, M0.m, np) && vsame(f32, M.v, M0.v, np),
          "the non-finite step was applied");
    model_free(&M);
    /* (b) after three good steps: equal to training on those three only */
    model_clone(&M, &M0);
    model R;
    model_clone(&R, &M0);
    const int64_t mid[] = {0, 1, 2, 5, 3, 4};
    st = train_order(&M, &D.data, NULL, mid, 6, 1, 0.1, 1, &rep);
    fnn_status st_ref = train_order(&R, &D.data, NULL, mid, 3, 1, 0.1, 1, NULL);
    CHECK(st == FNN_ERR_NONFINITE && st_ref == FNN_OK, "mid-epoch: status %d (ref %d)", st,
          st_ref);
    CHECK(rep.n_steps == 3 && M.opt.t == 3, "mid-epoch: n_steps %lld, t %lld",
          (long long)rep.n_steps, (long long)M.opt.t);
    CHECK(vsame(f32, M.params, R.params, np) && vsame(f32, M.stats, R.stats, ns) &&
              vsame(f32, M.m, R.m, np) && vsame(f32, M.v, R.v, np),
          "mid-epoch: state differs from the last good step");
    model_free(&M);
    model_free(&R);
    /* (c) whole batch */
    model_clone(&M, &M0);
    int64_t *order = iota(n);
    st = train_order(&M, &D.data, NULL, order, n, n, 0.1, 1, &rep);
    CHECK(st == FNN_ERR_NONFINITE && rep.n_steps == 0 && vsame(f32, M.params, M0.params, np),
          "whole batch: status %d, n_steps %lld", st, (long long)rep.n_steps);
    free(order);
    model_free(&M);
    model_free(&M0);
    ds_free(&D);
}

/* An update that leaves the weights non-finite from a finite loss and
 * gradient (here an infinite rate): the epoch ends with FNN_ERR_NONFINITE
 * after that step, whose update stays applied (the caller restores its own
 * copy), also when it is the epoch's last step, which no later step's check
 * would catch. */
static void t_overflowing_update(int f32)
{
    const int64_t n = 8, u[] = {3, 5, 2};
    dataset D;
    ds_init(&D, f32, n, 3, 2, FNN_LOSS_SQUARED, 160);
    for (int one_step = 0; one_step < 2; one_step++) {
        model M;
        model_init(&M, f32, 2, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 160);
        int64_t *order = iota(n);
        fnn_epoch_report rep;
        const int64_t bs = one_step ? n : 4;
        fnn_status st = train_order(&M, &D.data, NULL, order, n, bs, INFINITY, 1, &rep);
        CHECK(st == FNN_ERR_NONFINITE && rep.n_steps == 1 &&
                  !vfinite(f32, M.params, M.net.n_params),
              "%s: status %d, %lld steps", one_step ? "one step" : "two steps", st,
              (long long)rep.n_steps);
        free(order);
        model_free(&M);
    }
    ds_free(&D);
}

/* Prediction does not depend on chunk_rows (bitwise); the full-batch
 * gradient barely does (summation order). */
static void t_chunks(int f32)
{
    const int64_t n = 23, u[] = {4, 6, 5, 3};
    dataset D;
    ds_init(&D, f32, n, 4, 3, FNN_LOSS_LOG, 160);
    model M;
    model_init(&M, f32, 3, u, FNN_ACT_ELU, FNN_LOSS_LOG, FNN_BN_AFTER, 1, 160);
    /* give the moving statistics non-trivial values */
    train_epochs(&M, &D.data, 2, 5, 0.01, 1);
    const int64_t chunks[] = {0, 1, 3, 23, 100};
    void *ref = xcalloc(n * 3, esz(f32)), *out = xcalloc(n * 3, esz(f32));
    fnn_status st = api_predict(f32, &M.net, NULL, M.params, M.stats, &D.data, 0, 0, 0, ref);
    for (int c = 1; c < 5; c++) {
        st |= api_predict(f32, &M.net, NULL, M.params, M.stats, &D.data, chunks[c], 0, 0, out);
        CHECK(vsame(f32, ref, out, n * 3), "chunk_rows %lld changes predictions",
              (long long)chunks[c]);
    }
    CHECK(st == FNN_OK, "status %d", st);
    model_free(&M);
    /* without BN, loss_grad chunks the rows */
    model P;
    model_init(&P, f32, 3, u, FNN_ACT_ELU, FNN_LOSS_LOG, FNN_BN_NONE, 0, 161);
    const int64_t np = P.net.n_params;
    void *g0 = xcalloc(np, esz(f32)), *g = xcalloc(np, esz(f32));
    double l0, l;
    st = api_loss_grad(f32, &P.net, NULL, P.params, &D.data, 0, 0, 0, &l0, NULL, g0);
    for (int c = 1; c < 5; c++) {
        st |= api_loss_grad(f32, &P.net, NULL, P.params, &D.data, chunks[c], 0, 0, &l, NULL, g);
        double tol = f32 ? 1e-5 : 1e-13;
        CHECK(fabs(l - l0) <= tol * l0 && vmaxdiff(f32, g, g0, np) <= tol * vmaxabs(f32, g0, np),
              "chunk_rows %lld: loss %.12g vs %.12g", (long long)chunks[c], l, l0);
    }
    CHECK(st == FNN_OK, "status %d", st);
    free(ref);
    free(out);
    free(g0);
    free(g);
    model_free(&P);
    ds_free(&D);
}

/* n_threads 2 == n_threads 1 bitwise; a BLAS (the reference gemm here)
 * gives the plain-C loops' results up to rounding.  The OpenMP loops and the
 * column-split GEMMs only run above the core's thresholds (FNN_OMP_MIN_WORK,
 * FNN_SPLIT_GEMM): .ci/sanitize lowers them (FASTNN_CTEST_SMALL_THRESHOLDS)
 * so that these shapes take the parallel paths. */
static void t_threads(int f32)
{
    const int64_t n = 512, u[] = {32, 128, 72, 3};
    const double rates[] = {0.1, 0.1, 0};
    dataset D;
    ds_init(&D, f32, n, 32, 3, FNN_LOSS_LOG, 170);
    D.data.sample_weight = D.w;
    model A;
    model_init(&A, f32, 3, u, FNN_ACT_SWISH, FNN_LOSS_LOG, FNN_BN_AFTER, 1, 170);
    model_set_dropout(&A, rates, 0);
    A.net.alpha = 1e-3;
    A.net.clip = FNN_CLIP_GLOBAL_NORM;
    A.net.clip_value = 1.0;
    model B, K1, K2;
    model_clone(&B, &A);
    B.net.n_threads = 2;
    model_clone(&K1, &A);
    model_clone(&K2, &A);
    K2.net.n_threads = 2;
    const int64_t np = A.net.n_params, no = n * 3;
    int64_t *order = iota(n);
    fnn_status st = FNN_OK;
    for (int e = 0; e < 2; e++) {
        st |= train_order(&A, &D.data, NULL, order, n, n, 0.01, 1 + (uint64_t)e, NULL);
        st |= train_order(&B, &D.data, NULL, order, n, n, 0.01, 1 + (uint64_t)e, NULL);
    }
    CHECK(st == FNN_OK, "train status %d", st);
    CHECK(vsame(f32, A.params, B.params, np) && vsame(f32, A.stats, B.stats, A.net.n_stats),
          "n_threads 2 trains differently (max diff %.3g)", vmaxdiff(f32, A.params, B.params, np));
    void *ga = xcalloc(np, esz(f32)), *gb = xcalloc(np, esz(f32));
    void *oa = xcalloc(no, esz(f32)), *ob = xcalloc(no, esz(f32));
    double la, lb;
    st = api_loss_grad(f32, &A.net, NULL, A.params, &D.data, 0, 1, 3, &la, NULL, ga);
    st |= api_loss_grad(f32, &B.net, NULL, B.params, &D.data, 0, 1, 3, &lb, NULL, gb);
    CHECK(st == FNN_OK && la == lb && vsame(f32, ga, gb, np), "n_threads 2: loss_grad differs");
    st = api_predict(f32, &A.net, NULL, A.params, A.stats, &D.data, 0, 1, 3, oa);
    st |= api_predict(f32, &B.net, NULL, B.params, B.stats, &D.data, 0, 1, 3, ob);
    CHECK(st == FNN_OK && vsame(f32, oa, ob, no), "n_threads 2: predictions differ");

    /* reference BLAS, two threads: column blocks of the large products */
    fnn_blas blas = {ref_sgemm, ref_dgemm, 2, 0};
    double tol = f32 ? 1e-4 : 1e-10;
    st = api_loss_grad(f32, &B.net, &blas, B.params, &D.data, 0, 1, 3, &lb, NULL, gb);
    CHECK(st == FNN_OK && fabs(la - lb) <= tol * la, "BLAS loss %.12g vs %.12g", lb, la);
    CHECK(vmaxdiff(f32, ga, gb, np) <= tol * vmaxabs(f32, ga, np), "BLAS gradient differs by %.3g",
          vmaxdiff(f32, ga, gb, np));
    st = api_predict(f32, &B.net, &blas, B.params, B.stats, &D.data, 100, 1, 3, ob);
    CHECK(st == FNN_OK && vmaxdiff(f32, oa, ob, no) <= tol, "BLAS predictions differ by %.3g",
          vmaxdiff(f32, oa, ob, no));

    /* the AVX-512 sgemm kernel (float only; a no-op flag elsewhere): one
     * and two threads train bitwise-identical models, close to plain C's */
    if (f32) {
        fnn_blas k1 = {ref_sgemm, ref_dgemm, 1, FNN_SGEMM_AVX512},
                 k2 = {ref_sgemm, ref_dgemm, 2, FNN_SGEMM_AVX512};
        st = FNN_OK;
        for (int e = 0; e < 2; e++) {
            st |= train_order(&K1, &D.data, &k1, order, n, n, 0.01, 1 + (uint64_t)e, NULL);
            st |= train_order(&K2, &D.data, &k2, order, n, n, 0.01, 1 + (uint64_t)e, NULL);
        }
        CHECK(st == FNN_OK && vsame(f32, K1.params, K2.params, np),
              "kernel: n_threads 2 trains differently (max diff %.3g)",
              vmaxdiff(f32, K1.params, K2.params, np));
        CHECK(vmaxdiff(f32, K1.params, A.params, np) <= 1e-3 * vmaxabs(f32, A.params, np),
              "kernel: trained parameters off plain C's by %.3g",
              vmaxdiff(f32, K1.params, A.params, np));
    }
    model_free(&K1);
    model_free(&K2);
    free(ga);
    free(gb);
    free(oa);
    free(ob);
    free(order);
    model_free(&A);
    model_free(&B);
    ds_free(&D);
}

/* fnn_predict's nonfinite flag: 0 on finite X, 1 with a NaN or an infinity
 * anywhere in X (in any chunk, on one or two threads, through a
 * kernel-sized first layer and a tiny one), even where relu maps the NaN to
 * a finite output. */
static void t_predict_nonfinite(int f32)
{
    const int64_t n = 40, d = 24;
    const int64_t wide[] = {d, 32, 3}, tiny[] = {d, 2, 3};
    for (int shape = 0; shape < 2; shape++)
        for (int nt = 1; nt <= 2; nt++) {
            dataset D;
            ds_init(&D, f32, n, d, 3, FNN_LOSS_LOG, 180);
            model M;
            model_init(&M, f32, 2, shape ? tiny : wide, FNN_ACT_RELU, FNN_LOSS_LOG, FNN_BN_NONE,
                       0, 180);
            M.net.n_threads = nt;
            fnn_blas blas = {ref_sgemm, ref_dgemm, nt, FNN_SGEMM_AVX512};
            void *out = xcalloc(n * 3, esz(f32));
            const double bad_values[] = {0.5, NAN, INFINITY, -INFINITY};
            for (int b = 0; b < 4; b++) {
                D.X[33 * d + 17] = bad_values[b];
                ds_retype(&D);
                int32_t flag = -1;
                fnn_status st = f32 ? fnn_predict_f32(&M.net, &blas, M.params, M.stats, &D.data, 7,
                                                      0, 0, out, &flag)
                                    : fnn_predict_f64(&M.net, &blas, M.params, M.stats, &D.data, 7,
                                                      0, 0, out, &flag);
                CHECK(st == FNN_OK && flag == (b > 0),
                      "shape %d, %d threads, X value %g: status %d, flag %d", shape, nt,
                      bad_values[b], st, flag);
            }
            free(out);
            model_free(&M);
            ds_free(&D);
        }
}

#ifndef _WIN32
/* ---- read-only buffers and corrupted state (issue 16) --------------------- */

/* A copy of src in pages this process may only read: a write through it is
 * a segfault, so a passing test proves the core never writes there (as
 * with a NumPy array memory-mapped read-only or an immutable pickle buffer). */
static void *ro_copy(const void *src, size_t bytes)
{
    size_t len = bytes ? bytes : 1;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "test_core: mmap failed\n");
        exit(2);
    }
    memcpy(p, src, bytes);
    if (mprotect(p, len, PROT_READ) != 0) {
        fprintf(stderr, "test_core: mprotect failed\n");
        exit(2);
    }
    return p;
}
static void ro_free(void *p, size_t bytes) { munmap(p, bytes ? bytes : 1); }

/* Everything the core only reads lies in read-only pages: X (dense or CSR),
 * y, sample weights, the order and the rates when training; parameters
 * and statistics too when predicting and in loss_grad.  The results equal
 * those from writeable copies, bitwise. */
static void t_read_only(int f32, int csr)
{
    const int64_t n = 21, d = 5, k = 3, u[] = {d, 7, 6, k};
    const size_t e = esz(f32);
    dataset D;
    ds_init(&D, f32, n, d, k, FNN_LOSS_LOG, 190);
    ds_sparsify(&D, 0.4, 190);
    D.data.sample_weight = D.w;
    csr_t C = {NULL, NULL, NULL, 0};
    csr_build(&C, f32, D.X, n, d, 1);
    const int64_t nnz = ((int64_t *)C.ptr)[n];
    fnn_data rw = csr ? csr_view(&D.data, &C) : D.data, ro = rw;
    void *x = ro_copy(D.x, (size_t)(n * d) * e), *y = ro_copy(D.y, (size_t)(n * k) * e);
    void *w = ro_copy(D.w, (size_t)n * e), *val = ro_copy(C.val, (size_t)nnz * e);
    void *ind = ro_copy(C.ind, (size_t)nnz * 8), *ptr = ro_copy(C.ptr, (size_t)(n + 1) * 8);
    ro.x = csr ? NULL : x;
    ro.y = y;
    ro.sample_weight = w;
    if (csr) {
        ro.csr_data = val;
        ro.csr_indices = ind;
        ro.csr_indptr = ptr;
    }
    model A, B;
    model_init(&A, f32, 3, u, FNN_ACT_RELU, FNN_LOSS_LOG, FNN_BN_AFTER, 1, 190);
    const double rates[] = {0.1, 0.2, 0};
    model_set_dropout(&A, rates, 0);
    model_clone(&B, &A);
    const int64_t np = A.net.n_params, ns = A.net.n_stats, bs = 4, steps = (n + bs - 1) / bs;
    int64_t *order = iota(n);
    double lrs[6] = {0.01, 0.01, 0.01, 0.01, 0.01, 0.01};
    const int64_t *order_ro = ro_copy(order, (size_t)n * sizeof(int64_t));
    const double *lrs_ro = ro_copy(lrs, sizeof lrs);
    fnn_epoch_report ra = {0, A.gnorm, 0, NULL}, rb = {0, B.gnorm, 0, NULL};
    fnn_status st = api_train(f32, &A.net, NULL, A.params, A.stats, &A.opt, &rw, order, n, bs,
                              lrs, 3, &ra);
    fnn_status st_ro = api_train(f32, &B.net, NULL, B.params, B.stats, &B.opt, &ro, order_ro, n,
                                 bs, lrs_ro, 3, &rb);
    CHECK(st == FNN_OK && st_ro == FNN_OK && rb.n_steps == steps, "train: status %d / %d", st,
          st_ro);
    CHECK(vsame(f32, A.params, B.params, np) && vsame(f32, A.stats, B.stats, ns),
          "training on read-only inputs differs");
    /* Parameters and statistics read-only from here on. */
    void *p_ro = ro_copy(B.params, (size_t)np * e), *s_ro = ro_copy(B.stats, (size_t)ns * e);
    void *o1 = xcalloc(n * k, e), *o2 = xcalloc(n * k, e);
    st = api_predict(f32, &A.net, NULL, A.params, A.stats, &rw, 4, 1, 9, o1);
    st_ro = api_predict(f32, &B.net, NULL, p_ro, s_ro, &ro, 4, 1, 9, o2);
    CHECK(st == FNN_OK && st_ro == FNN_OK && vsame(f32, o1, o2, n * k),
          "predict on read-only buffers: status %d / %d or different output", st, st_ro);
    void *g1 = xcalloc(np, e), *g2 = xcalloc(np, e);
    double l1 = 0, l2 = 0;
    model P;
    model_init(&P, f32, 3, u, FNN_ACT_TANH, FNN_LOSS_LOG, FNN_BN_NONE, 0, 191);
    void *pp_ro = ro_copy(P.params, (size_t)P.net.n_params * e);
    st = api_loss_grad(f32, &P.net, NULL, P.params, &rw, 5, 0, 0, &l1, NULL, g1);
    st_ro = api_loss_grad(f32, &P.net, NULL, pp_ro, &ro, 5, 0, 0, &l2, NULL, g2);
    CHECK(st == FNN_OK && st_ro == FNN_OK && l1 == l2 && vsame(f32, g1, g2, P.net.n_params),
          "loss_grad on read-only buffers: status %d / %d, loss %.9g / %.9g", st, st_ro, l1, l2);
    ro_free(pp_ro, (size_t)P.net.n_params * e);
    ro_free(p_ro, (size_t)np * e);
    ro_free(s_ro, (size_t)ns * e);
    ro_free((void *)order_ro, (size_t)n * sizeof(int64_t));
    ro_free((void *)lrs_ro, sizeof lrs);
    ro_free(x, (size_t)(n * d) * e);
    ro_free(y, (size_t)(n * k) * e);
    ro_free(w, (size_t)n * e);
    ro_free(val, (size_t)nnz * e);
    ro_free(ind, (size_t)nnz * 8);
    ro_free(ptr, (size_t)(n + 1) * 8);
    free(order);
    free(o1);
    free(o2);
    free(g1);
    free(g2);
    csr_free(&C);
    model_free(&A);
    model_free(&B);
    model_free(&P);
    ds_free(&D);
}
#endif

/* Corrupted state that reaches C: NaN weights (a hand-edited or corrupted
 * model) give NaN outputs in predict, never plausible numbers (relu used to
 * map NaN to 0), for every hidden activation; training from them stops with
 * FNN_ERR_NONFINITE before any update.  (Infinite weights can saturate to
 * finite outputs; Python rejects every non-finite weight before C.) */
static void t_corrupted_weights(int f32)
{
    const int64_t n = 9, d = 4, k = 2, u[] = {d, 5, k};
    dataset D;
    ds_init(&D, f32, n, d, k, FNN_LOSS_SQUARED, 200);
    void *out = xcalloc(n * k, esz(f32));
    for (int act = 0; act <= FNN_ACT_SWISH; act++) {
        model M;
        model_init(&M, f32, 2, u, act, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 200);
        for (int64_t i = 0; i < d * 5; i++) vset(f32, M.params, M.w_off[0] + i, NAN);
        fnn_status st = api_predict(f32, &M.net, NULL, M.params, M.stats, &D.data, 4, 0, 0,
                                    out);
        int all_nan = 1;
        for (int64_t i = 0; i < n * k; i++) all_nan &= isnan(vget(f32, out, i));
        CHECK(st == FNN_OK && all_nan, "%s, first kernel all NaN: status %d, output %g",
              fnn_activation_table[act].name, st, vget(f32, out, 0));
        model R;
        model_clone(&R, &M);
        fnn_epoch_report rep = {0, M.gnorm, 0, NULL};
        int64_t *order = iota(n);
        double lrs[3] = {0.1, 0.1, 0.1};
        st = api_train(f32, &M.net, NULL, M.params, M.stats, &M.opt, &D.data, order, n, 4,
                       lrs, 0, &rep);
        CHECK(st == FNN_ERR_NONFINITE && rep.n_steps == 0 && M.opt.t == 0 &&
                  vsame(f32, M.m, R.m, M.net.n_params),
              "%s: training from a non-finite weight: status %d, %lld steps", fnn_activation_table[act].name,
              st, (long long)rep.n_steps);
        free(order);
        model_free(&R);
        model_free(&M);
    }
    free(out);
    ds_free(&D);
}

/* fnn_epoch_report.stop: polled before each step, it ends the epoch early
 * with FNN_OK; the steps done equal a shorter epoch exactly.  (Python sets
 * it from a SIGINT handler: a second Ctrl-C interrupts at once.) */
static void t_stop_flag(int f32)
{
    const int64_t n = 12, d = 3, k = 2, u[] = {d, 4, k};
    dataset D;
    ds_init(&D, f32, n, d, k, FNN_LOSS_SQUARED, 210);
    model A, B;
    model_init(&A, f32, 2, u, FNN_ACT_TANH, FNN_LOSS_SQUARED, FNN_BN_NONE, 0, 210);
    model_clone(&B, &A);
    int64_t *order = iota(n);
    double lrs[12];
    for (int i = 0; i < 12; i++) lrs[i] = 0.05;
    volatile int32_t stop = 1;
    fnn_epoch_report rep = {0, A.gnorm, 0, &stop};
    fnn_status st = api_train(f32, &A.net, NULL, A.params, A.stats, &A.opt, &D.data, order, n,
                              1, lrs, 0, &rep);
    CHECK(st == FNN_OK && rep.n_steps == 0 && A.opt.t == 0 &&
              vsame(f32, A.params, B.params, A.net.n_params),
          "stop set before the call: status %d, %lld steps", st, (long long)rep.n_steps);
    stop = 0;
    st = api_train(f32, &A.net, NULL, A.params, A.stats, &A.opt, &D.data, order, n, 1, lrs, 0,
                   &rep);
    fnn_status st_ref = train_order(&B, &D.data, NULL, order, n, 1, 0.05, 0, NULL);
    CHECK(st == FNN_OK && st_ref == FNN_OK && rep.n_steps == n &&
              vsame(f32, A.params, B.params, A.net.n_params),
          "stop clear: status %d, %lld steps, or a different result", st, (long long)rep.n_steps);
    free(order);
    model_free(&A);
    model_free(&B);
    ds_free(&D);
}

/* The core's product and its own kernels, declared here: the kernel tests
 * call them directly. */
void fnn_gemm_f32(const fnn_blas *blas, int trans_a, int trans_b, int64_t m, int64_t n,
                  int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                  int64_t ldb, float beta, float *c, int64_t ldc);
void fnn_sgemm_kernel(int kind, int trans_a, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc);
void fnn_gemm_f64(const fnn_blas *blas, int trans_a, int trans_b, int64_t m, int64_t n,
                  int64_t k, double alpha, const double *a, int64_t lda, const double *b,
                  int64_t ldb, double beta, double *c, int64_t ldc);
void fnn_dgemm_kernel(int kind, int trans_a, int64_t m, int64_t n, int64_t k, double alpha,
                      const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                      double *c, int64_t ldc);
void fnn_dense_backward_f32(const fnn_blas *blas, float *dinp, float *dw, float *dbias,
                            const float *dout, const float *inp, const float *w, float *wt,
                            int64_t rows, int64_t n_in, int64_t n_out, int accumulate, int nt);
void fnn_dense_backward_f64(const fnn_blas *blas, double *dinp, double *dw, double *dbias,
                            const double *dout, const double *inp, const double *w, double *wt,
                            int64_t rows, int64_t n_in, int64_t n_out, int accumulate, int nt);

fnn_status fnn_act_forward_f32(int act, double slope, float *out, const float *pre,
                               int64_t rows, int64_t cols, int nt);
fnn_status fnn_act_forward_f64(int act, double slope, double *out, const double *pre,
                               int64_t rows, int64_t cols, int nt);
fnn_status fnn_act_backward_f32(int act, double slope, float *dpre, const float *dout,
                                const float *pre, const float *out, int64_t n, int nt);
fnn_status fnn_act_backward_f64(int act, double slope, double *dpre, const double *dout,
                                const double *pre, const double *out, int64_t n, int nt);
fnn_status fnn_clip_gradients_f64(const fnn_net *net, double *grad, const double *sq_norms,
                                  int n_tensors, const int64_t *off, const int64_t *len,
                                  int nt);
double fnn_loss_sum_f64(int loss, const double *p, const double *y, const double *sw,
                        int64_t rows, int64_t n_out, double *rowbuf, int nt);

/* The registries' tables: one distinct, non-empty name per code, the hidden
 * activations first-class (they have a backward), and each kernel that
 * switches on a code answers FNN_ERR_BADARG, without side effects, for one
 * outside its registry. */
static void t_registry(void)
{
    const char *const *lists[] = {fnn_loss_names, fnn_batch_norm_names, fnn_clip_names,
                                  fnn_penalty_names};
    const int counts[] = {FNN_LOSS_COUNT, FNN_BN_COUNT, FNN_CLIP_COUNT, FNN_PENALTY_COUNT};
    const char *names[16];
    for (int k = 0; k < 6; k++) {
        int n = k < 4 ? counts[k] : k == 4 ? FNN_ACT_COUNT : FNN_SOLVER_COUNT;
        CHECK(n >= 2 && n <= 16, "registry %d has %d rows", k, n);
        for (int i = 0; i < n && i < 16; i++) {
            names[i] = k < 4    ? lists[k][i]
                       : k == 4 ? fnn_activation_table[i].name
                                : fnn_solver_table[i].name;
            CHECK(names[i] != NULL && names[i][0] != 0, "registry %d row %d has no name", k, i);
            for (int j = 0; j < i && names[i] != NULL; j++)
                CHECK(names[j] == NULL || strcmp(names[i], names[j]) != 0,
                      "registry %d: rows %d and %d are both '%s'", k, j, i, names[i]);
        }
    }
    double pre[4] = {-1.0, -0.1, 0.2, 3.0}, out[4], d[4] = {1, 1, 1, 1};
    float pre32[4] = {-1.0f, -0.1f, 0.2f, 3.0f}, out32[4], d32[4] = {1, 1, 1, 1};
    for (int a = 0; a < FNN_ACT_COUNT; a++) {
        CHECK(fnn_act_forward_f64(a, 0.01, out, pre, 1, 4, 1) == FNN_OK, "forward %d", a);
        CHECK(fnn_act_forward_f32(a, 0.01, out32, pre32, 1, 4, 1) == FNN_OK, "forward %d", a);
        if (fnn_activation_table[a].hidden) {
            const char *nm = fnn_activation_table[a].name;
            CHECK(fnn_activation_table[a].auto_init != NULL, "%s: no auto_init", nm);
            CHECK(fnn_act_backward_f64(a, 0.01, d, d, pre, out, 4, 1) == FNN_OK, "%s", nm);
            CHECK(fnn_act_backward_f32(a, 0.01, d32, d32, pre32, out32, 4, 1) == FNN_OK, "%s",
                  nm);
        }
    }
    for (int v = 0; v < 2; v++) {
        const int act = v ? FNN_ACT_COUNT : -1;
        CHECK(fnn_act_forward_f64(act, 0.01, out, pre, 1, 4, 1) == FNN_ERR_BADARG, "%d", act);
        CHECK(fnn_act_forward_f32(act, 0.01, out32, pre32, 1, 4, 1) == FNN_ERR_BADARG, "%d",
              act);
        CHECK(fnn_act_backward_f64(act, 0.01, d, d, pre, out, 4, 1) == FNN_ERR_BADARG, "%d",
              act);
        CHECK(fnn_act_backward_f32(act, 0.01, d32, d32, pre32, out32, 4, 1) == FNN_ERR_BADARG,
              "%d", act);
    }
    CHECK(fnn_act_backward_f64(FNN_ACT_SOFTMAX, 0.01, d, d, pre, out, 4, 1) == FNN_ERR_BADARG,
          "softmax has no separate backward");

    fnn_net net;
    memset(&net, 0, sizeof net);
    net.n_params = 4;
    net.solver = FNN_SOLVER_COUNT;
    double params[4] = {1, 2, 3, 4}, grad[4] = {1, 1, 1, 1}, m[4] = {0}, v[4] = {0};
    fnn_optstate opt = {m, v, 0, 1.0};
    CHECK(fnn_optim_step_f64(&net, params, grad, &opt, 0.1, 1) == FNN_ERR_BADARG, "solver");
    CHECK(opt.t == 0 && params[0] == 1 && params[3] == 4, "a rejected update changed state");
    net.solver = FNN_SOLVER_SGD;
    CHECK(fnn_optim_step_f64(&net, params, grad, &opt, 0.1, 1) == FNN_OK && opt.t == 1,
          "sgd step: t = %lld", (long long)opt.t);
    const int64_t off = 0, len = 4;
    const double sq = 4;
    net.clip = FNN_CLIP_COUNT;
    CHECK(fnn_clip_gradients_f64(&net, grad, &sq, 1, &off, &len, 1) == FNN_ERR_BADARG, "clip");
    net.clip = FNN_CLIP_NONE;
    CHECK(fnn_clip_gradients_f64(&net, grad, &sq, 1, &off, &len, 1) == FNN_OK, "clip none");
    double y[4] = {0, 1, 0, 1}, rowbuf[1];
    CHECK(isnan(fnn_loss_sum_f64(FNN_LOSS_COUNT, pre, y, NULL, 1, 4, rowbuf, 1)), "loss");
    CHECK(isfinite(fnn_loss_sum_f64(FNN_LOSS_SQUARED, pre, y, NULL, 1, 4, rowbuf, 1)), "loss");
}

/* The last row of the kernel's product (C is m x n, leading dimension ldc,
 * starting from c0) computed alone has the bits of that row of `whole`, the
 * product computed at once: a one-row product walks a long k in blocks
 * (tile_walk.h), a taller-than-wide one in one pass.  f32: the float kernel
 * `kind`, else the double kernel `kind`. */
static int row_alone_same(int f32, int kind, int ta, int64_t m, int64_t n, int64_t k,
                          double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                          double beta, const void *c0, const void *whole, int64_t ldc)
{
    const size_t es = esz(f32);
    const size_t row_start = (size_t)((m - 1) * ldc) * es;
    void *row = xcalloc(ldc, es);
    memcpy(row, (const char *)c0 + row_start, (size_t)ldc * es);
    const void *a_last = (const char *)a + (size_t)((m - 1) * (ta ? 1 : lda)) * es;
    if (f32)
        fnn_sgemm_kernel(kind, ta, 1, n, k, (float)alpha, a_last, lda, b, ldb, (float)beta, row,
                         ldc);
    else
        fnn_dgemm_kernel(kind, ta, 1, n, k, alpha, a_last, lda, b, ldb, beta, row, ldc);
    const int same = memcmp(row, (const char *)whole + row_start, (size_t)n * es) == 0;
    free(row);
    return same;
}

/* The thread counts the kernel tests compare with one thread. */
static const int split_threads[] = {2, 3, 5};
#define N_SPLIT_THREADS ((int)(sizeof split_threads / sizeof split_threads[0]))

/* fnn_gemm on nt threads (proto's BLAS and kernel setting) gives `want`, C
 * from c0 (m rows of ldc), bit for bit: the cut of C across threads
 * (dense.c's own_kernel_parallel: ranges of row tiles, or of cells, panels
 * by 4 rows, up to three blocks per thread) must not change a value.  f32:
 * float, else double. */
static int gemm_threads_same(int f32, int nt, const fnn_blas *proto, int ta, int64_t m,
                             int64_t n, int64_t k, double alpha, const void *a, int64_t lda,
                             const void *b, int64_t ldb, double beta, const void *c0,
                             const void *want, int64_t ldc)
{
    fnn_blas bn = *proto;
    bn.n_threads = nt;
    const size_t bytes = (size_t)(m * ldc) * esz(f32);
    void *c = xcalloc(m * ldc, esz(f32));
    memcpy(c, c0, bytes);
    if (f32)
        fnn_gemm_f32(&bn, ta, 0, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
    else
        fnn_gemm_f64(&bn, ta, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    const int same = memcmp(c, want, bytes) == 0;
    free(c);
    return same;
}

/* Each sgemm kernel the CPU can run (AVX-512, AVX2), called directly and
 * through fnn_gemm (which also decides where it is used), against a
 * double-precision reference: row counts around the tile heights, widths
 * around the vector and panel widths, both op(A) layouts, padded leading
 * dimensions (the padding must stay untouched) and alpha/beta; two, three
 * and five threads (a split C) must give the bits of one. */
static void t_sgemm_kernel(int kind)
{
    if (fnn_sgemm_kernel_available() < kind) {
        printf("     (this CPU cannot run the %s kernel: BLAS is used instead)\n",
               kind == FNN_SGEMM_AVX512 ? "AVX-512" : "AVX2");
        return;
    }
    static const int64_t ms[] = {1, 3, 5, 8, 9, 16, 23, 32, 65};
    static const int64_t ns[] = {7, 17, 24, 31, 32, 47, 48, 49, 100, 300};
    static const int64_t ks[] = {16, 33, 300};
    static const float ab[][2] = {{1, 0}, {1, 1}, {0.5f, -2}};
    fnn_blas b1 = {ref_sgemm, ref_dgemm, 1, kind};
    rng_t r = {2024};
    int cases = 0;
    for (int ta = 0; ta < 2; ta++)
        for (size_t im = 0; im < sizeof ms / sizeof ms[0]; im++)
            for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++)
                for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++) {
                    const int64_t m = ms[im], n = ns[in], k = ks[ik];
                    const int64_t lda = (ta ? m : k) + 3, ldb = n + 5, ldc = n + 2;
                    const float alpha = ab[(im + in + ik) % 3][0], beta = ab[(im + in + ik) % 3][1];
                    float *a = xcalloc((ta ? k : m) * lda, sizeof(float));
                    float *b = xcalloc(k * ldb, sizeof(float));
                    float *c0 = xcalloc(m * ldc, sizeof(float));
                    float *cs[2] = {xcalloc(m * ldc, sizeof(float)),
                                    xcalloc(m * ldc, sizeof(float))};
                    for (int64_t i = 0; i < (ta ? k : m) * lda; i++) a[i] = (float)rng_normal(&r);
                    for (int64_t i = 0; i < k * ldb; i++) b[i] = (float)rng_normal(&r);
                    for (int64_t i = 0; i < m * ldc; i++)
                        c0[i] = cs[0][i] = cs[1][i] = (float)rng_normal(&r);
                    fnn_sgemm_kernel(kind, ta, m, n, k, alpha, a, lda, b, ldb, beta, cs[0], ldc);
                    fnn_gemm_f32(&b1, ta, 0, m, n, k, alpha, a, lda, b, ldb, beta, cs[1], ldc);
                    for (int v = 0; v < 2; v++) {
                        const float *c1 = cs[v];
                        double worst = 0;
                        int pad_ok = 1;
                        for (int64_t i = 0; i < m; i++)
                            for (int64_t j = 0; j < ldc; j++) {
                                const float got = c1[i * ldc + j], old = c0[i * ldc + j];
                                if (j >= n) {
                                    pad_ok &= got == old;
                                    continue;
                                }
                                double sum = 0, sa = 0;
                                for (int64_t p = 0; p < k; p++) {
                                    double x = ta ? a[p * lda + i] : a[i * lda + p];
                                    sum += x * b[p * ldb + j];
                                    sa += fabs(x * b[p * ldb + j]);
                                }
                                double ref = alpha * sum + beta * (double)old;
                                double scale = fabs(alpha) * sa + fabs(beta * (double)old) + 1e-30;
                                double e = fabs(got - ref) / scale;
                                worst = e > worst ? e : worst;
                            }
                        CHECK(worst <= 4 * k * 6e-8 + 1.2e-7,
                              "%s, trans_a %d m %lld n %lld k %lld: relative error %.3g",
                              v ? "fnn_gemm" : "kernel", ta, (long long)m, (long long)n,
                              (long long)k, worst);
                        CHECK(pad_ok, "%s, trans_a %d m %lld n %lld k %lld: wrote past column n",
                              v ? "fnn_gemm" : "kernel", ta, (long long)m, (long long)n,
                              (long long)k);
                    }
                    for (int i = 0; i < N_SPLIT_THREADS; i++)
                        CHECK(gemm_threads_same(1, split_threads[i], &b1, ta, m, n, k, alpha, a,
                                                lda, b, ldb, beta, c0, cs[1], ldc),
                              "trans_a %d m %lld n %lld k %lld: %d threads differ", ta,
                              (long long)m, (long long)n, (long long)k, split_threads[i]);
                    CHECK(row_alone_same(1, kind, ta, m, n, k, alpha, a, lda, b, ldb, beta, c0,
                                         cs[0], ldc),
                          "trans_a %d m %lld n %lld k %lld: a row alone differs", ta, (long long)m,
                          (long long)n, (long long)k);
                    free(a);
                    free(b);
                    free(c0);
                    for (int v = 0; v < 2; v++) free(cs[v]);
                    cases++;
                }
    CHECK(cases == 2 * 9 * 10 * 3, "ran %d shapes", cases);
}

/* A reference dgemm that counts its calls: which products fnn_gemm_f64
 * leaves to BLAS. */
static int counted_dgemm_calls;
static void counted_dgemm(char *ta, char *tb, int *m, int *n, int *k, double *alpha, double *a,
                          int *lda, double *b, int *ldb, double *beta, double *c, int *ldc)
{
    counted_dgemm_calls++;
    ref_dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Each double kernel the CPU can run (AVX-512, AVX2), called directly and
 * through fnn_gemm_f64, against a long-double reference: row counts around
 * the 8- and 4-row tiles, widths around the 8- and 4-column vectors and 24-
 * and 12-column panels, both op(A) layouts, padded leading dimensions (the
 * padding must stay untouched) and alpha/beta.  fnn_gemm must use it (no
 * BLAS call, the kernel's bits) for narrow products and those of a small
 * batch (dense.c's rule: AVX-512, forward products of at most 256 rows and
 * weight gradients of at most 64; AVX2, 32 and 32) and BLAS for the others
 * or with the kernels off; two, three and five threads must give the bits of
 * one, and a row computed alone the bits of the whole product's. */
static void t_dgemm_kernel(int kind)
{
    if (fnn_sgemm_kernel_available() < kind) {
        printf("     (this CPU cannot run the %s kernel: BLAS is used instead)\n",
               kind == FNN_SGEMM_AVX512 ? "AVX-512" : "AVX2");
        return;
    }
    static const int64_t ms[] = {1, 3, 4, 5, 8, 9, 17, 32, 65};
    static const int64_t ns[] = {3, 4, 8, 10, 12, 13, 16, 17, 24, 25, 100};
    static const int64_t ks[] = {17, 32, 48, 300};
    static const double ab[][2] = {{1, 0}, {1, 1}, {0.5, -2}};
    const int64_t max_rows = kind == FNN_SGEMM_AVX512 ? 256 : 32;
    const int64_t max_batch = kind == FNN_SGEMM_AVX512 ? 64 : 32;
    fnn_blas b1 = {ref_sgemm, counted_dgemm, 1, kind};
    rng_t r = {2025};
    int cases = 0;
    for (int ta = 0; ta < 2; ta++)
        for (size_t im = 0; im < sizeof ms / sizeof ms[0]; im++)
            for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++)
                for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++) {
                    const int64_t m = ms[im], n = ns[in], k = ks[ik];
                    const int64_t lda = (ta ? m : k) + 3, ldb = n + 5, ldc = n + 2;
                    const double alpha = ab[(im + in + ik) % 3][0], beta = ab[(im + in + ik) % 3][1];
                    double *a = xcalloc((ta ? k : m) * lda, sizeof(double));
                    double *b = xcalloc(k * ldb, sizeof(double));
                    double *c0 = xcalloc(m * ldc, sizeof(double));
                    double *cs[2] = {xcalloc(m * ldc, sizeof(double)),
                                     xcalloc(m * ldc, sizeof(double))};
                    for (int64_t i = 0; i < (ta ? k : m) * lda; i++) a[i] = rng_normal(&r);
                    for (int64_t i = 0; i < k * ldb; i++) b[i] = rng_normal(&r);
                    for (int64_t i = 0; i < m * ldc; i++)
                        c0[i] = cs[0][i] = cs[1][i] = rng_normal(&r);
                    fnn_dgemm_kernel(kind, ta, m, n, k, alpha, a, lda, b, ldb, beta, cs[0], ldc);
                    counted_dgemm_calls = 0;
                    fnn_gemm_f64(&b1, ta, 0, m, n, k, alpha, a, lda, b, ldb, beta, cs[1], ldc);
                    const int blas_calls = counted_dgemm_calls;
                    /* fnn_gemm's own loop takes products of n * k <= 256, the
                     * kernel narrow ones and those of a small batch (m
                     * forward, k for a weight gradient: dense.c) */
                    const int expect_blas =
                        n * k > 256 && n > 16 && (ta ? k > max_batch : m > max_rows);
                    CHECK((blas_calls > 0) == expect_blas,
                          "trans_a %d m %lld n %lld k %lld: %d BLAS calls, expected %s", ta,
                          (long long)m, (long long)n, (long long)k, blas_calls,
                          expect_blas ? "some" : "none");
                    for (int v = 0; v < 2; v++) {
                        const double *c1 = cs[v];
                        double worst = 0;
                        int pad_ok = 1;
                        for (int64_t i = 0; i < m; i++)
                            for (int64_t j = 0; j < ldc; j++) {
                                const double got = c1[i * ldc + j], old = c0[i * ldc + j];
                                if (j >= n) {
                                    pad_ok &= got == old;
                                    continue;
                                }
                                long double sum = 0, sa = 0;
                                for (int64_t p = 0; p < k; p++) {
                                    long double x = ta ? a[p * lda + i] : a[i * lda + p];
                                    sum += x * b[p * ldb + j];
                                    sa += fabsl(x * b[p * ldb + j]);
                                }
                                long double ref = alpha * sum + beta * (long double)old;
                                long double scale = fabs(alpha) * sa + fabsl(beta * (long double)old) + 1e-300;
                                double e = (double)(fabsl(got - ref) / scale);
                                worst = e > worst ? e : worst;
                            }
                        CHECK(worst <= 4 * k * 1.2e-16 + 2.3e-16,
                              "%s, trans_a %d m %lld n %lld k %lld: relative error %.3g",
                              v ? "fnn_gemm" : "kernel", ta, (long long)m, (long long)n,
                              (long long)k, worst);
                        CHECK(pad_ok, "%s, trans_a %d m %lld n %lld k %lld: wrote past column n",
                              v ? "fnn_gemm" : "kernel", ta, (long long)m, (long long)n,
                              (long long)k);
                    }
                    for (int i = 0; i < N_SPLIT_THREADS; i++)
                        CHECK(gemm_threads_same(0, split_threads[i], &b1, ta, m, n, k, alpha, a,
                                                lda, b, ldb, beta, c0, cs[1], ldc),
                              "trans_a %d m %lld n %lld k %lld: %d threads differ", ta,
                              (long long)m, (long long)n, (long long)k, split_threads[i]);
                    if (!expect_blas && n * k > 256)
                        CHECK(memcmp(cs[0], cs[1], (size_t)(m * ldc) * sizeof(double)) == 0,
                              "trans_a %d m %lld n %lld k %lld: fnn_gemm differs from the kernel",
                              ta, (long long)m, (long long)n, (long long)k);
                    CHECK(row_alone_same(0, kind, ta, m, n, k, alpha, a, lda, b, ldb, beta, c0,
                                         cs[0], ldc),
                          "trans_a %d m %lld n %lld k %lld: a row alone differs", ta, (long long)m,
                          (long long)n, (long long)k);
                    free(a);
                    free(b);
                    free(c0);
                    for (int v = 0; v < 2; v++) free(cs[v]);
                    cases++;
                }
    CHECK(cases == 2 * 9 * 11 * 4, "ran %d shapes", cases);
    /* kernels off: every product beyond the own loop's goes to BLAS */
    fnn_blas off = {ref_sgemm, counted_dgemm, 1, FNN_SGEMM_OFF};
    double a[32 * 40] = {0}, b[40 * 10] = {0}, c[32 * 10];
    counted_dgemm_calls = 0;
    fnn_gemm_f64(&off, 0, 0, 32, 10, 40, 1, a, 40, b, 10, 0, c, 10);
    CHECK(counted_dgemm_calls == 1, "kernels off: %d BLAS calls", counted_dgemm_calls);
}

/* A reference sgemm that counts its calls, as counted_dgemm. */
static int counted_sgemm_calls;
static void counted_sgemm(char *ta, char *tb, int *m, int *n, int *k, float *alpha, float *a,
                          int *lda, float *b, int *ldb, float *beta, float *c, int *ldc)
{
    counted_sgemm_calls++;
    ref_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* dense.c's AVX-512 rule at its edges, both types: a forward product of at
 * most 256 rows and a weight gradient of a batch of at most 64 rows go to the
 * kernel while the operand it keeps (B forward, C for a weight gradient) is
 * at most 2 MiB, BLAS beyond; narrow products (at most 16 columns) always
 * go to the kernel. */
static void t_own_kernel_rule(void)
{
    if (fnn_sgemm_kernel_available() < FNN_SGEMM_AVX512) {
        printf("     (this CPU cannot run the AVX-512 kernels)\n");
        return;
    }
    static const struct {
        int ta;
        int64_t m, n, k;
        int own; /* expected for float; double keeps twice the bytes */
    } cases[] = {
        {0, 256, 32, 64, 1},   {0, 257, 32, 64, 0},    {1, 32, 40, 64, 1},
        {1, 32, 40, 65, 0},    {0, 8, 1024, 512, 1},   {0, 8, 1024, 513, 0},
        {1, 512, 1024, 8, 1},  {1, 513, 1024, 8, 0},   {0, 300, 16, 4000, 1},
        {1, 4000, 16, 300, 1}, {0, 8, 512, 512, 1},
    };
    for (int f32 = 1; f32 >= 0; f32--)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const int ta = cases[i].ta;
            const int64_t m = cases[i].m, n = cases[i].n, k = cases[i].k;
            const int64_t lda = ta ? m : k;
            /* double: twice the bytes, so 8 x 1024 x 512 (4 MiB) goes to BLAS */
            const int bytes_ok = (ta ? m : k) * n * (f32 ? 4 : 8) <= (2 << 20);
            const int expect_own = n <= 16 || (cases[i].own && (f32 || bytes_ok));
            fnn_blas blas = {counted_sgemm, counted_dgemm, 1, FNN_SGEMM_AVX512};
            void *a = xcalloc((size_t)(m * k), esz(f32)), *b = xcalloc((size_t)(k * n), esz(f32));
            void *c = xcalloc((size_t)(m * n), esz(f32));
            counted_sgemm_calls = counted_dgemm_calls = 0;
            if (f32)
                fnn_gemm_f32(&blas, ta, 0, m, n, k, 1, a, lda, b, n, 0, c, n);
            else
                fnn_gemm_f64(&blas, ta, 0, m, n, k, 1, a, lda, b, n, 0, c, n);
            const int blas_calls = f32 ? counted_sgemm_calls : counted_dgemm_calls;
            CHECK((blas_calls == 0) == expect_own,
                  "%s trans_a %d m %lld n %lld k %lld: %d BLAS calls, expected the %s", dt(f32),
                  ta, (long long)m, (long long)n, (long long)k, blas_calls,
                  expect_own ? "kernel" : "BLAS");
            free(a);
            free(b);
            free(c);
        }
}

/* A layer's input gradient dout W^T (dense.c): with scratch for W^T and the
 * own kernels of `kind` allowed, the products that kind's rule takes (AVX2:
 * narrow ones, and those of 64 rows and fewer in float, 32 in double;
 * AVX-512: narrow ones and those of 256 rows and fewer) run in that kernel
 * on W^T built by the threads that read it: one BLAS call fewer than
 * without scratch, within rounding of a long-double reference, the kernel's
 * bits on an explicit W^T, the same bits on one thread or two; the weight
 * gradient is the same with scratch or without. */
static void t_dgrad_transposed(int f32, int kind)
{
    if (fnn_sgemm_kernel_available() < kind) {
        printf("     (this CPU cannot run these kernels)\n");
        return;
    }
    static const int64_t shapes[][3] = {{32, 300, 100}, {5, 37, 19},  {17, 24, 40},
                                        {64, 20, 9},    {32, 100, 10}, {1, 50, 30},
                                        {33, 40, 30},   {65, 30, 20},  {257, 24, 40}};
    rng_t r = {77};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], n_in = shapes[s][1], n_out = shapes[s][2];
        const int64_t max_rows = kind == FNN_SGEMM_AVX512 ? 256 : f32 ? 64 : 32;
        const int own = n_in * n_out > 256 && (n_in <= 16 || rows <= max_rows);
        double *d_out = xcalloc(rows * n_out, sizeof(double));
        double *d_inp = xcalloc(rows * n_in, sizeof(double));
        double *d_w = xcalloc(n_in * n_out, sizeof(double));
        for (int64_t i = 0; i < rows * n_out; i++) d_out[i] = rng_normal(&r);
        for (int64_t i = 0; i < rows * n_in; i++) d_inp[i] = rng_normal(&r);
        for (int64_t i = 0; i < n_in * n_out; i++) d_w[i] = rng_normal(&r);
        void *dout = vtyped(f32, d_out, rows * n_out), *inp = vtyped(f32, d_inp, rows * n_in);
        void *w = vtyped(f32, d_w, n_in * n_out), *wt = xcalloc(n_in * n_out, esz(f32));
        void *res[3], *dws[3]; /* scratch on 1 thread, on 2 threads, no scratch */
        int calls[3];
        for (int v = 0; v < 3; v++) {
            fnn_blas blas = {counted_sgemm, counted_dgemm, v == 1 ? 2 : 1, kind};
            res[v] = xcalloc(rows * n_in, esz(f32));
            dws[v] = xcalloc(n_in * n_out, esz(f32));
            counted_sgemm_calls = counted_dgemm_calls = 0;
            if (f32)
                fnn_dense_backward_f32(&blas, res[v], dws[v], NULL, dout, inp, w,
                                       v == 2 ? NULL : wt, rows, n_in, n_out, 0, blas.n_threads);
            else
                fnn_dense_backward_f64(&blas, res[v], dws[v], NULL, dout, inp, w,
                                       v == 2 ? NULL : wt, rows, n_in, n_out, 0, blas.n_threads);
            calls[v] = f32 ? counted_sgemm_calls : counted_dgemm_calls;
        }
        /* BLAS calls of the input gradient: the weight gradient's taken away */
        fnn_blas b1 = {counted_sgemm, counted_dgemm, 1, kind};
        void *tmp = xcalloc(n_in * n_out, esz(f32));
        counted_sgemm_calls = counted_dgemm_calls = 0;
        if (f32)
            fnn_gemm_f32(&b1, 1, 0, n_in, n_out, rows, 1, inp, n_in, dout, n_out, 0, tmp, n_out);
        else
            fnn_gemm_f64(&b1, 1, 0, n_in, n_out, rows, 1, inp, n_in, dout, n_out, 0, tmp, n_out);
        const int wcalls = f32 ? counted_sgemm_calls : counted_dgemm_calls;
        free(tmp);
        const int big = n_in * n_out > 256; /* else the plain loop, never BLAS */
        CHECK((calls[0] > wcalls) == (big && !own) && (calls[2] > wcalls) == big,
              "%lld x %lld x %lld: %d BLAS calls with scratch, %d without, %d for the weight "
              "gradient", (long long)rows, (long long)n_in, (long long)n_out, calls[0], calls[2],
              wcalls);
        double worst = 0;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < n_in; j++) {
                long double sum = 0, sa = 0;
                for (int64_t p = 0; p < n_out; p++) {
                    long double x = (long double)vget(f32, dout, i * n_out + p) *
                                    vget(f32, w, j * n_out + p);
                    sum += x;
                    sa += fabsl(x);
                }
                double e = (double)(fabsl(vget(f32, res[0], i * n_in + j) - sum) / (sa + 1e-300));
                worst = e > worst ? e : worst;
            }
        CHECK(worst <= 4 * n_out * (f32 ? 6e-8 : 1.2e-16) + (f32 ? 1.2e-7 : 2.3e-16),
              "%lld x %lld x %lld: relative error %.3g", (long long)rows, (long long)n_in,
              (long long)n_out, worst);
        CHECK(memcmp(res[0], res[1], (size_t)(rows * n_in) * esz(f32)) == 0,
              "%lld x %lld x %lld: two threads differ from one", (long long)rows,
              (long long)n_in, (long long)n_out);
        if (own) { /* the kernel on W^T written out */
            void *bt = xcalloc(n_in * n_out, esz(f32)), *c = xcalloc(rows * n_in, esz(f32));
            for (int64_t j = 0; j < n_in; j++)
                for (int64_t p = 0; p < n_out; p++) {
                    if (f32)
                        ((float *)bt)[p * n_in + j] = ((float *)w)[j * n_out + p];
                    else
                        ((double *)bt)[p * n_in + j] = ((double *)w)[j * n_out + p];
                }
            if (f32)
                fnn_sgemm_kernel(kind, 0, rows, n_in, n_out, 1, dout, n_out, bt, n_in, 0, c,
                                 n_in);
            else
                fnn_dgemm_kernel(kind, 0, rows, n_in, n_out, 1, dout, n_out, bt, n_in, 0, c,
                                 n_in);
            CHECK(memcmp(res[0], c, (size_t)(rows * n_in) * esz(f32)) == 0,
                  "%lld x %lld x %lld: differs from the kernel on W^T", (long long)rows,
                  (long long)n_in, (long long)n_out);
            free(bt);
            free(c);
        }
        for (int v = 1; v < 3; v++)
            CHECK(memcmp(dws[0], dws[v], (size_t)(n_in * n_out) * esz(f32)) == 0,
                  "%lld x %lld x %lld: the weight gradient changed (variant %d)",
                  (long long)rows, (long long)n_in, (long long)n_out, v);
        for (int v = 0; v < 3; v++) free(res[v]), free(dws[v]);
        free(d_out), free(d_inp), free(d_w), free(dout), free(inp), free(w), free(wt);
    }
}

/* ---- thread-count policy (threads.c) --------------------------------------
 * Synthetic step times: each count has a fixed cost per row; the policy must
 * settle on the cheaper one, keep trying the other rarely, and follow a
 * change of costs (a machine that becomes busy, then quiet again). */
static double policy_run(fnn_thread_policy *p, int64_t steps, double cost_one, double cost_many,
                         int64_t *on_many)
{
    double total = 0;
    *on_many = 0;
    for (int64_t s = 0; s < steps; s++) {
        int many = fnn_thread_policy_threads(p, 2) == 2;
        double t = 32 * (many ? cost_many : cost_one);
        *on_many += many;
        total += t;
        fnn_thread_policy_record(p, 32, t);
    }
    return total;
}

static void t_thread_policy(void)
{
    fnn_thread_policy p;
    fnn_thread_policy_reset(&p);
    CHECK(fnn_thread_policy_threads(&p, 2) == 2, "a new policy starts on every thread");
    CHECK(fnn_thread_policy_threads(NULL, 3) == 3, "no policy: every step on n_threads");
    CHECK(fnn_thread_policy_threads(&p, 1) == 1, "one thread available: one thread");
    int64_t many;
    /* Quiet machine: two threads 1.6x faster (100 us vs 160 us per step). */
    const double fast = 100e-6 / 32, slow = 160e-6 / 32;
    double t = policy_run(&p, 20000, slow, fast, &many);
    CHECK(many > 20000 * 0.97, "quiet: %lld of 20000 steps on two threads", (long long)many);
    CHECK(t < 1.03 * 20000 * 32 * fast, "quiet: trials cost %.1f%%", 100 * (t / (20000 * 32 * fast) - 1));
    /* Busy machine: two threads now 4.5x slower than one. */
    const double busy_many = 4.5 * slow;
    t = policy_run(&p, 20000, slow, busy_many, &many);
    CHECK(many < 20000 * 0.02, "busy: %lld of 20000 steps on two threads", (long long)many);
    CHECK(t < 1.1 * 20000 * 32 * slow, "busy: %.2fx the one-thread time", t / (20000 * 32 * slow));
    /* Quiet again: back to two threads. */
    policy_run(&p, 20000, slow, fast, &many);
    CHECK(many > 20000 * 0.8, "quiet again: %lld of 20000 steps on two threads", (long long)many);
    CHECK(p.steps[0] + p.steps[1] == 60000, "counted %lld steps",
          (long long)(p.steps[0] + p.steps[1]));
    /* Quiet but noisy: one window in five of the two-thread steps runs 2x
     * slower (a time slice lost to another process), slower than one
     * thread.  A trial right after such a window must not win. */
    fnn_thread_policy_reset(&p);
    int64_t noisy_many = 0;
    double noisy = 0;
    for (int64_t s = 0; s < 20000; s++) {
        int on_many = fnn_thread_policy_threads(&p, 2) == 2;
        double step = 32 * (on_many ? fast * ((s / 20) % 5 == 4 ? 2.0 : 1.0) : slow);
        noisy_many += on_many;
        noisy += step;
        fnn_thread_policy_record(&p, 32, step);
    }
    CHECK(noisy_many > 20000 * 0.95, "noisy quiet: %lld of 20000 steps on two threads",
          (long long)noisy_many);
    /* Equal counts: either is fine, but no NaN or stall in the bookkeeping. */
    fnn_thread_policy_reset(&p);
    policy_run(&p, 1000, fast, fast, &many);
    CHECK(p.steps[0] + p.steps[1] == 1000 && isfinite(p.credit), "equal costs: bookkeeping");
    /* Long steps (one step per window): the first trial of one thread is
     * the only one within 32 steps. */
    fnn_thread_policy_reset(&p);
    policy_run(&p, 32, 200e-3 / 32, 100e-3 / 32, &many);
    CHECK(many == 31, "long steps: %lld of 32 on two threads", (long long)many);
}

int main(void)
{
    printf("fastnn C-level tests: OpenMP %s (max threads %d)\n",
           fnn_has_openmp() ? "on" : "off", fnn_max_threads());
    chk_begin("registry");
    t_registry();
    chk_end();
    for (int f32 = 0; f32 < 2; f32++) {
        chk_begin("bad_arguments[%s]", dt(f32));
        t_badargs(f32);
        chk_end();
    }
    chk_begin("thread_policy");
    t_thread_policy();
    chk_end();
    for (size_t i = 0; i < sizeof GC_CASES / sizeof GC_CASES[0]; i++) {
        chk_begin("gradient_check_f64[%s]", GC_CASES[i].name);
        t_gradcheck(&GC_CASES[i]);
        chk_end();
    }
    chk_begin("gradient_f32_vs_f64[tanh,bn_after]");
    t_grad_f32_vs_f64(FNN_BN_AFTER, FNN_LOSS_SQUARED, FNN_ACT_TANH);
    chk_end();
    chk_begin("gradient_f32_vs_f64[relu,softmax]");
    t_grad_f32_vs_f64(FNN_BN_NONE, FNN_LOSS_LOG, FNN_ACT_RELU);
    chk_end();
    for (int p = 0; p < 3; p++) {
        static const char *pn[] = {"l2", "l1", "elasticnet"};
        chk_begin("penalty_value[%s]", pn[p]);
        t_penalty_value(p);
        chk_end();
    }
    for (int f32 = 0; f32 < 2; f32++) {
        for (int a = 0; a < FNN_ACT_COUNT; a++) {
            if (!fnn_activation_table[a].hidden)
                continue;
            chk_begin("learns_activation[%s,%s]", fnn_activation_table[a].name, dt(f32));
            t_learn_activation(a, f32);
            chk_end();
        }
        for (int l = 0; l < FNN_LOSS_COUNT; l++) {
            chk_begin("learns_loss[%s,%s]", fnn_loss_names[l], dt(f32));
            t_learn_loss(l, f32);
            chk_end();
        }
        for (int s = 0; s < FNN_SOLVER_COUNT; s++)
            for (int nes = 0; nes <= (s == FNN_SOLVER_SGD); nes++) {
                chk_begin("learns_solver[%s%s,%s]", fnn_solver_table[s].name, nes ? "_nesterov" : "",
                          dt(f32));
                t_learn_solver(s, nes, f32);
                chk_end();
                chk_begin("solver_update_rule[%s%s,%s]", fnn_solver_table[s].name,
                          nes ? "_nesterov" : "", dt(f32));
                t_solver_rule(s, nes, f32);
                chk_end();
            }
        for (int s = 0; s < FNN_SOLVER_COUNT; s++)
            if (s != FNN_SOLVER_SGD) {
                for (int extreme = 0; extreme <= 1; extreme++) {
                    chk_begin("update_exact[%s%s,%s]", fnn_solver_table[s].name,
                              extreme ? "_extreme" : "", dt(f32));
                    t_update_exact(s, f32, extreme);
                    chk_end();
                }
            }
        static const int bns[][2] = {{FNN_BN_NONE, 0}, {FNN_BN_BEFORE, 0}, {FNN_BN_AFTER, 1}};
        static const char *bnn[] = {"no_bn", "bn_before", "bn_after+input"};
        for (int b = 0; b < 3; b++) {
            chk_begin("step_equals_loss_grad[%s,%s]", bnn[b], dt(f32));
            t_step_matches_loss_grad(bns[b][0], bns[b][1], f32);
            chk_end();
        }
        for (int c = FNN_CLIP_NONE + 1; c < FNN_CLIP_COUNT; c++) {
            chk_begin("clip[%s,%s]", fnn_clip_names[c], dt(f32));
            t_clip(c, f32);
            chk_end();
        }
        chk_begin("max_norm[%s]", dt(f32));
        t_max_norm(f32);
        chk_end();
        chk_begin("layer_max_norm[%s]", dt(f32));
        t_layer_max_norm(f32);
        chk_end();
        for (int b = 1; b <= 2; b++) {
            chk_begin("bn_statistics[%s+input,%s]", b == 1 ? "before" : "after", dt(f32));
            t_bn_stats(b, f32);
            chk_end();
            chk_begin("bn_learns[%s+input,%s]", b == 1 ? "before" : "after", dt(f32));
            t_bn_learn(b, f32);
            chk_end();
            chk_begin("frozen_layers[%s+input,%s]", b == 1 ? "before" : "after", dt(f32));
            t_frozen(b, f32);
            chk_end();
        }
        for (int a = 0; a < 2; a++) {
            chk_begin("%s[%s]", a ? "alpha_dropout" : "dropout", dt(f32));
            t_dropout(a, f32);
            chk_end();
        }
        chk_begin("dense_strides[%s]", dt(f32));
        t_strides(f32);
        chk_end();
        for (int i64 = 0; i64 < 2; i64++) {
            chk_begin("csr[%s,%s]", i64 ? "int64" : "int32", dt(f32));
            t_csr(i64, f32);
            chk_end();
        }
        chk_begin("sample_weight[%s]", dt(f32));
        t_sample_weight(f32);
        chk_end();
        chk_begin("batch_sizes[%s]", dt(f32));
        t_batch_sizes(f32);
        chk_end();
        chk_begin("scratch[%s]", dt(f32));
        t_scratch(f32);
        chk_end();
#if defined(__unix__) || defined(__APPLE__)
        chk_begin("scratch_shared[%s]", dt(f32));
        t_scratch_shared(f32);
        chk_end();
#endif
        chk_begin("width_one[%s]", dt(f32));
        t_width_one(f32);
        chk_end();
        for (int v = 0; v < 3; v++) {
            static const char *nfn[] = {"inf_in_X", "inf_in_X+bn_input", "nan_in_y"};
            chk_begin("nonfinite[%s,%s]", nfn[v], dt(f32));
            t_nonfinite(f32, v == 1, v == 2);
            chk_end();
        }
        chk_begin("predict_nonfinite_flag[%s]", dt(f32));
        t_predict_nonfinite(f32);
        chk_end();
        chk_begin("overflowing_update[%s]", dt(f32));
        t_overflowing_update(f32);
        chk_end();
#ifndef _WIN32
        for (int csr = 0; csr < 2; csr++) {
            chk_begin("read_only_buffers[%s,%s]", csr ? "csr" : "dense", dt(f32));
            t_read_only(f32, csr);
            chk_end();
        }
#endif
        chk_begin("corrupted_weights[%s]", dt(f32));
        t_corrupted_weights(f32);
        chk_end();
        chk_begin("stop_flag[%s]", dt(f32));
        t_stop_flag(f32);
        chk_end();
        chk_begin("chunk_rows[%s]", dt(f32));
        t_chunks(f32);
        chk_end();
        chk_begin("threads_and_blas[%s]", dt(f32));
        t_threads(f32);
        chk_end();
    }
    chk_begin("sgemm_kernel[avx512]");
    t_sgemm_kernel(FNN_SGEMM_AVX512);
    chk_end();
    chk_begin("sgemm_kernel[avx2]");
    t_sgemm_kernel(FNN_SGEMM_AVX2);
    chk_end();
    chk_begin("dgemm_kernel[avx512]");
    t_dgemm_kernel(FNN_SGEMM_AVX512);
    chk_end();
    chk_begin("dgemm_kernel[avx2]");
    t_dgemm_kernel(FNN_SGEMM_AVX2);
    chk_end();
    chk_begin("own_kernel_rule[avx512]");
    t_own_kernel_rule();
    chk_end();
    for (int f32 = 1; f32 >= 0; f32--)
        for (int kind = FNN_SGEMM_AVX2; kind <= FNN_SGEMM_AVX512; kind++) {
            chk_begin("dgrad_transposed[%s,%s]", kind == FNN_SGEMM_AVX512 ? "avx512" : "avx2",
                      dt(f32));
            t_dgrad_transposed(f32, kind);
            chk_end();
        }
    return chk_summary();
}
