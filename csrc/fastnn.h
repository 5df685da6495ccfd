/*
 * fastnn.h -- the whole public API of the fastnn C core.
 *
 * The core trains and evaluates a multilayer perceptron described by an
 * `fnn_net`.  Every long-lived buffer (parameters, BatchNorm moving
 * statistics, optimizer state, data) is owned by the caller (Python/NumPy);
 * the core only gets pointers and offsets, allocates scratch memory for the
 * duration of one call and frees it before returning.
 *
 * Every kernel exists for float (`_f32`) and double (`_f64`); the body is
 * written once (see generic.h).  Functions return an `fnn_status`; the core
 * never prints, exits or aborts.
 */
#ifndef FASTNN_H
#define FASTNN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FNN_OK = 0,
    FNN_ERR_NOMEM = 1,     /* a scratch allocation failed */
    FNN_ERR_NONFINITE = 2, /* loss or gradient became NaN/inf: no update applied */
    FNN_ERR_BADARG = 3     /* inconsistent sizes or codes */
} fnn_status;

/*
 * The registries: every choice the network offers (activation, loss,
 * BatchNorm placement, solver, clipping mode, penalty) is declared once, as
 * a row of an X-macro list below.  Each list generates
 *   - the enum of codes, FNN_<KIND>_<ROW> (codes follow the row order),
 *   - FNN_<KIND>_COUNT, the bound of every range check (fnn_check_net),
 *   - a table of per-row properties (fnn_activation_table, ...), whose
 *     `name` is the Python spelling: fastnn._core builds its name -> code
 *     dicts from these tables.
 * Adding an activation or a solver is one row here plus its `case` in the
 * kernel (activation.c, optim.c); -Wswitch-enum flags a missing case.
 * The tables are defined in registry.c.
 */
#define FNN_ENUM_ENTRY(prefix, id) prefix##id,
#define FNN_COUNT_ENTRY(...) +1

/* Activations: X(ID, name, hidden, auto_init).  hidden: usable in a hidden
 * layer (the others are output activations, whose gradient is fused into the
 * loss or taken as is); auto_init: the kernel initializer
 * kernel_initializer='auto' picks for a layer followed by it ("sklearn":
 * scikit-learn's own scheme, so the same random_state gives its model). */
#define FNN_ACTIVATIONS(X)                                    \
    X(IDENTITY, "identity", 1, "sklearn")                     \
    X(LOGISTIC, "logistic", 1, "sklearn")                     \
    X(TANH, "tanh", 1, "sklearn")                             \
    X(RELU, "relu", 1, "sklearn")                             \
    X(LEAKY_RELU, "leaky_relu", 1, "he_uniform")              \
    X(ELU, "elu", 1, "he_uniform")                            \
    X(SELU, "selu", 1, "lecun_normal")                        \
    X(SWISH, "swish", 1, "he_uniform")                        \
    X(SOFTMAX, "softmax", 0, "glorot_uniform")                \
    X(EXP, "exp", 0, "glorot_uniform")                        \
    X(GELU, "gelu", 1, "he_uniform")                          \
    X(MISH, "mish", 1, "he_uniform")

/* Losses, each paired with its canonical output activation, so that the
 * gradient w.r.t. the output pre-activation is (prediction - target):
 * X(ID, name).
 *   SQUARED      identity output; sklearn: mean over outputs of 0.5 (y-p)^2
 *   LOG          softmax output, categorical cross-entropy
 *   BINARY_LOG   logistic output(s), binary cross-entropy per output
 *   POISSON      exp output, half Poisson deviance */
#define FNN_LOSSES(X)                    \
    X(SQUARED, "squared_error")          \
    X(LOG, "log_loss")                   \
    X(BINARY_LOG, "binary_log_loss")     \
    X(POISSON, "poisson")

/* BatchNorm on the hidden layers: X(ID, name); "none" is Python's False. */
#define FNN_BATCH_NORMS(X) X(NONE, "none") X(BEFORE, "before") X(AFTER, "after")

/* Solvers: X(ID, name, uses_v).  Every solver keeps the buffer m (sgd
 * velocity, adam/adamax/nadam 1st moment, adagrad accumulator, rmsprop mean
 * square); uses_v: it also keeps v (adam/adamw/nadam 2nd moment, adamax
 * infinity norm).  SGD has momentum / Nesterov (sklearn's SGDOptimizer). */
#define FNN_SOLVERS(X)         \
    X(SGD, "sgd", 0)           \
    X(ADAM, "adam", 1)         \
    X(ADAGRAD, "adagrad", 0)   \
    X(RMSPROP, "rmsprop", 0)   \
    X(ADAMAX, "adamax", 1)     \
    X(NADAM, "nadam", 1)       \
    X(ADAMW, "adamw", 1)

/* Gradient clipping (Keras semantics): X(ID, name); "none" is Python's None. */
#define FNN_CLIPS(X) X(NONE, "none") X(VALUE, "value") X(NORM, "norm") X(GLOBAL_NORM, "global_norm")

/* Penalties on Dense kernels: X(ID, name). */
#define FNN_PENALTIES(X) X(L2, "l2") X(L1, "l1") X(ELASTICNET, "elasticnet")

#define FNN_ENUM_ACT(id, ...) FNN_ENUM_ENTRY(FNN_ACT_, id)
#define FNN_ENUM_LOSS(id, ...) FNN_ENUM_ENTRY(FNN_LOSS_, id)
#define FNN_ENUM_BN(id, ...) FNN_ENUM_ENTRY(FNN_BN_, id)
#define FNN_ENUM_SOLVER(id, ...) FNN_ENUM_ENTRY(FNN_SOLVER_, id)
#define FNN_ENUM_CLIP(id, ...) FNN_ENUM_ENTRY(FNN_CLIP_, id)
#define FNN_ENUM_PENALTY(id, ...) FNN_ENUM_ENTRY(FNN_PENALTY_, id)
typedef enum { FNN_ACTIVATIONS(FNN_ENUM_ACT) } fnn_activation;
typedef enum { FNN_LOSSES(FNN_ENUM_LOSS) } fnn_loss;
typedef enum { FNN_BATCH_NORMS(FNN_ENUM_BN) } fnn_batch_norm;
typedef enum { FNN_SOLVERS(FNN_ENUM_SOLVER) } fnn_solver;
typedef enum { FNN_CLIPS(FNN_ENUM_CLIP) } fnn_clip;
typedef enum { FNN_PENALTIES(FNN_ENUM_PENALTY) } fnn_penalty;
/* Counts apart from the enums, so -Wswitch-enum does not ask for a case. */
enum {
    FNN_ACT_COUNT = 0 FNN_ACTIVATIONS(FNN_COUNT_ENTRY),
    FNN_LOSS_COUNT = 0 FNN_LOSSES(FNN_COUNT_ENTRY),
    FNN_BN_COUNT = 0 FNN_BATCH_NORMS(FNN_COUNT_ENTRY),
    FNN_SOLVER_COUNT = 0 FNN_SOLVERS(FNN_COUNT_ENTRY),
    FNN_CLIP_COUNT = 0 FNN_CLIPS(FNN_COUNT_ENTRY),
    FNN_PENALTY_COUNT = 0 FNN_PENALTIES(FNN_COUNT_ENTRY)
};

typedef struct {
    const char *name;
    int32_t hidden;
    const char *auto_init;
} fnn_activation_info;
typedef struct {
    const char *name;
    int32_t uses_v;
} fnn_solver_info;
extern const fnn_activation_info fnn_activation_table[FNN_ACT_COUNT];
extern const fnn_solver_info fnn_solver_table[FNN_SOLVER_COUNT];
extern const char *const fnn_loss_names[FNN_LOSS_COUNT];
extern const char *const fnn_batch_norm_names[FNN_BN_COUNT];
extern const char *const fnn_clip_names[FNN_CLIP_COUNT];
extern const char *const fnn_penalty_names[FNN_PENALTY_COUNT];

/* Where, within a 4096-byte page, each flat vector the update streams
 * together starts: slot * FNN_PAGE_SLOT_BYTES bytes past a page boundary
 * (parameters, moments: Python's _network.staggered_empty; gradient: the
 * core's workspace).  Distinct offsets avoid 4K aliasing between them. */
enum {
    FNN_PAGE_SLOT_BYTES = 512,
    FNN_SLOT_PARAMS = 0,
    FNN_SLOT_MOMENT_M = 1,
    FNN_SLOT_MOMENT_V = 2,
    FNN_SLOT_GRAD = 3
};

/* BLAS gemm, Fortran calling convention (column-major), exactly the
 * signature of scipy.linalg.cython_blas.sgemm / dgemm. */
typedef void (*fnn_sgemm_t)(char *transa, char *transb, int *m, int *n, int *k,
                            float *alpha, float *a, int *lda, float *b, int *ldb,
                            float *beta, float *c, int *ldc);
typedef void (*fnn_dgemm_t)(char *transa, char *transb, int *m, int *n, int *k,
                            double *alpha, double *a, int *lda, double *b, int *ldb,
                            double *beta, double *c, int *ldc);

/*
 * A network: L = n_layers Dense layers (hidden layers + output layer).
 *
 * Layer l (0 <= l < L) maps units[l] -> units[l+1]:
 *     x   = dropout_l(h_l)                  (training / MC dropout only)
 *     z   = x W_l + b_l                     W_l is units[l] x units[l+1], row-major
 *     pre = BN(z)  if batch_norm == BEFORE and l < L-1, else z
 *     a   = act_l(pre)
 *     h_{l+1} = BN(a) if batch_norm == AFTER and l < L-1, else a
 * with h_0 = BN(X) when batch_norm_input, else X.
 *
 * BatchNorm slots are numbered 0..L-1: slot 0 is the input BN (width
 * units[0]), slot l >= 1 follows hidden layer l (width units[l]).
 */
typedef struct {
    int32_t n_layers;
    const int64_t *units;       /* n_layers + 1 */
    const int32_t *activation;  /* n_layers; the last is the output activation */
    int32_t loss;               /* FNN_LOSS_* */
    double leaky_slope;         /* negative-side slope of leaky ReLU */

    int32_t batch_norm;         /* FNN_BN_* for the hidden layers */
    int32_t batch_norm_input;   /* 1: BN slot 0 normalizes the inputs */
    double bn_momentum;         /* Keras: moving = m*moving + (1-m)*batch */
    double bn_epsilon;

    const double *dropout;      /* n_layers rates, on the input of each Dense; NULL: none */
    int32_t alpha_dropout;      /* 1: Keras AlphaDropout instead of inverted dropout */

    int32_t penalty;            /* FNN_PENALTY_* on Dense kernels (never biases, BN) */
    double alpha;               /* strength, divided by the batch's weight sum as sklearn */
    double l1_ratio;            /* elasticnet mix */
    double max_norm;            /* > 0: Keras MaxNorm(max_norm, axis=0) on each kernel */
    /* Per-layer values (n_layers each) replacing alpha / max_norm when not
     * NULL: layer l's kernel gets penalty strength layer_alpha[l] (0: none)
     * and max-norm layer_max_norm[l] (<= 0: unconstrained). */
    const double *layer_alpha;
    const double *layer_max_norm;

    int32_t clip;               /* FNN_CLIP_* */
    double clip_value;

    int32_t solver;             /* FNN_SOLVER_* */
    double momentum;            /* sgd */
    int32_t nesterov;           /* sgd */
    double beta_1, beta_2;      /* adam, adamax, nadam */
    double epsilon;             /* adam, adagrad, rmsprop, adamax, nadam */
    double rho;                 /* rmsprop */
    double weight_decay;        /* adamw: theta -= lr * weight_decay * theta before the
                                   Adam step, on every parameter (Keras 3 AdamW) */

    /* Layout of the flat parameter vector, offsets in elements, -1 = absent. */
    const int64_t *w_off;       /* n_layers: Dense kernels */
    const int64_t *b_off;       /* n_layers: Dense biases (-1 when BN-before replaces it) */
    const int64_t *bn_off;      /* n_layers BN slots: gamma at off, beta at off + width */
    const int64_t *stat_off;    /* n_layers BN slots, in the stats vector: mean, then var */
    int64_t n_params;
    int64_t n_stats;

    /* Transfer learning (Keras trainable=False): the first frozen_layers
     * Dense layers (0 <= frozen_layers < n_layers) keep their kernels and
     * biases, and BN slots 0..frozen_layers (when frozen_layers > 0) their
     * gamma, beta and moving statistics: no gradient, penalty, clipping,
     * update or max-norm touches them, the backward pass stops at the lowest
     * trainable layer, and the frozen BN slots normalize with their moving
     * statistics during training too (Keras's inference mode). */
    int32_t frozen_layers;

    int32_t n_threads;          /* OpenMP threads for the element-wise kernels (>= 1) */
    /* Training steps choose between n_threads and one thread by measuring
     * themselves (threads.c); NULL: every step runs on n_threads. */
    struct fnn_thread_policy *thread_policy;
    /* The workspace of fnn_train_epoch and fnn_loss_grad, kept from one call
     * to the next (fnn_scratch_new); NULL: every call allocates its own. */
    struct fnn_scratch *scratch;
} fnn_net;

/*
 * A training call's buffers, kept by the caller from epoch to epoch (or from
 * one lbfgs evaluation to the next): each call would otherwise allocate its
 * workspace anew and fault in its pages again (a (2048, 2048) network's
 * 60 MB: 16 k page faults, 4% of an epoch).  A later call reuses a buffer
 * of the same size, zeroed as new, and replaces one of another size.  Calls
 * that overlap in time (threads training one network) do not share it: the
 * second allocates its own.
 */
typedef struct fnn_scratch fnn_scratch;
fnn_scratch *fnn_scratch_new(void); /* NULL when out of memory */
void fnn_scratch_free(fnn_scratch *scratch); /* NULL: nothing */

/*
 * The thread-count choice of one fit, kept by the caller from epoch to epoch
 * (threads.c): steps run in windows of a few milliseconds on one count; now
 * and then a window tries the other count, which takes over when it was
 * faster per row than the current count's mean since the last trial.
 * Results do not depend on the choice, only the time does.
 */
typedef struct fnn_thread_policy {
    int32_t use_many;           /* 1: steps run on n_threads, 0: on one thread */
    int32_t probing;            /* 1: the current window tries the other count */
    double sec_per_row[2];      /* last window's seconds per row on one thread [0] and
                                   on n_threads [1]; 0 = not measured yet */
    double credit;              /* seconds run since the last trial */
    int64_t rows_since_trial;   /* rows run since the last trial */
    int64_t windows;            /* windows since the last trial */
    int64_t window_rows, window_steps;
    double window_seconds;
    int64_t steps[2];           /* steps run on one thread [0] and on n_threads [1] */
} fnn_thread_policy;

/* Start a policy: steps on n_threads first. */
void fnn_thread_policy_reset(fnn_thread_policy *policy);
/* Threads the next step uses (1 or max_threads); NULL policy: max_threads. */
int fnn_thread_policy_threads(const fnn_thread_policy *policy, int max_threads);
/* Account a step of `rows` rows that took `seconds` on the count given by
 * fnn_thread_policy_threads, and choose the count of the next steps. */
void fnn_thread_policy_record(fnn_thread_policy *policy, int64_t rows, double seconds);

/* The core's own single-precision product kernels (sgemm_kernels.c). */
enum { FNN_SGEMM_OFF = 0, FNN_SGEMM_AVX2 = 1, FNN_SGEMM_AVX512 = 2 };

/* The BLAS to call.  Large products are split into blocks computed on
 * n_threads OpenMP threads, each block one BLAS call: the caller holds
 * BLAS's own threading at 1 meanwhile (one thread pool, no oversubscription).
 * sgemm_kernel is the widest of the core's own kernels that may replace
 * BLAS for single-precision products whose B is not transposed (FNN_SGEMM_*;
 * the CPU may allow less, see fnn_sgemm_kernel_available); FNN_SGEMM_OFF
 * keeps every product in BLAS. */
typedef struct {
    fnn_sgemm_t sgemm;
    fnn_dgemm_t dgemm;
    int32_t n_threads;
    int32_t sgemm_kernel;
} fnn_blas;

/* The widest sgemm kernel this build and CPU can run (FNN_SGEMM_*). */
int fnn_sgemm_kernel_available(void);

/*
 * Training data (or data to predict on): X is either dense, element (i, j)
 * at x[i*row_stride + j*col_stride] (any strides, no copy needed), or CSR
 * when csr_indptr != NULL.  y and sample_weight have the network's type; X
 * too, unless x_other_type.
 */
typedef struct {
    int64_t n_rows, n_cols;
    const void *x;
    int64_t row_stride, col_stride;
    const void *csr_data;
    const void *csr_indices;    /* int32 or int64, see csr_index64 */
    const void *csr_indptr;
    int32_t csr_index64;
    int32_t x_other_type;       /* 1: X (dense, or CSR values) is of the other floating
                                   type (double for a float network, float for a double
                                   one), converted row by row as batches are gathered */
    const void *y;              /* n_rows x n_outputs, row-major; NULL for predict */
    const void *sample_weight;  /* n_rows; NULL means all ones */
} fnn_data;

/* Optimizer state; m and v are caller-owned buffers of n_params elements
 * of the network's type (NULL where the solver does not use them). */
typedef struct {
    void *m;                    /* sgd velocity, adam/adamax/nadam 1st moment,
                                   adagrad accumulator, rmsprop mean square */
    void *v;                    /* adam/nadam 2nd moment, adamax infinity norm */
    int64_t t;                  /* number of updates applied so far */
    double nadam_mu_product;    /* Keras Nadam's running product of mu_t (1 at start) */
} fnn_optstate;

/* What one epoch reports back. */
typedef struct {
    double loss_sum;            /* sum over steps of batch_loss * batch_rows (sklearn's) */
    double *grad_norm_sum;      /* caller-provided, n_layers: sum over steps of ||dW_l||_2 */
    int64_t n_steps;            /* steps completed (updates applied) */
    const volatile int32_t *stop; /* NULL, or polled before each step: non-zero ends the
                                     epoch early with FNN_OK (a Ctrl-C, set by the caller's
                                     signal handler while this call runs) */
} fnn_epoch_report;

/*
 * Train one epoch: visit rows order[0..n_order) in mini-batches of
 * batch_size (the last one may be smaller); step s uses learning rate lrs[s].
 * Dropout masks come from a counter-based RNG keyed by (seed, step, layer,
 * element), so they do not depend on the thread count.
 * On FNN_ERR_NONFINITE the failing step's update was not applied; the
 * epoch also ends with FNN_ERR_NONFINITE when its updates left a parameter or
 * a BN statistic NaN or infinite (a finite gradient times a huge rate), those
 * updates applied: the caller puts back its copy from before the call.
 */
fnn_status fnn_train_epoch_f32(const fnn_net *net, const fnn_blas *blas, float *params,
                               float *stats, fnn_optstate *opt, const fnn_data *data,
                               const int64_t *order, int64_t n_order, int64_t batch_size,
                               const double *lrs, uint64_t seed, fnn_epoch_report *report);
fnn_status fnn_train_epoch_f64(const fnn_net *net, const fnn_blas *blas, double *params,
                               double *stats, fnn_optstate *opt, const fnn_data *data,
                               const int64_t *order, int64_t n_order, int64_t batch_size,
                               const double *lrs, uint64_t seed, fnn_epoch_report *report);

/*
 * The objective and its gradient over all rows of `data` as one batch
 * (BatchNorm in training mode with batch statistics, which are not written
 * back; dropout masks keyed by `seed` when `dropout_on`).  The objective is
 * the one whose gradient sklearn's backprop computes: data loss + penalty,
 * with the squared error summed (not averaged) over outputs.  Used by the
 * lbfgs solver and the gradient checks.  Without BatchNorm the rows are
 * processed in chunks of `chunk_rows` to bound memory.
 * *loss_out receives sklearn's reported loss (squared error averaged over
 * outputs); *objective_out the differentiated objective.
 */
fnn_status fnn_loss_grad_f32(const fnn_net *net, const fnn_blas *blas, const float *params,
                             const fnn_data *data, int64_t chunk_rows, int32_t dropout_on,
                             uint64_t seed, double *loss_out, double *objective_out,
                             float *grad);
fnn_status fnn_loss_grad_f64(const fnn_net *net, const fnn_blas *blas, const double *params,
                             const fnn_data *data, int64_t chunk_rows, int32_t dropout_on,
                             uint64_t seed, double *loss_out, double *objective_out,
                             double *grad);
/* fnn_loss_grad with the BN moving statistics `stats`, which frozen BN slots
 * (fnn_net.frozen_layers) normalize with; NULL when none is frozen.  (With
 * frozen layers, either writes a zero gradient for the frozen tensors.) */
fnn_status fnn_loss_grad_stats_f32(const fnn_net *net, const fnn_blas *blas,
                                   const float *params, const float *stats,
                                   const fnn_data *data, int64_t chunk_rows, int32_t dropout_on,
                                   uint64_t seed, double *loss_out, double *objective_out,
                                   float *grad);
fnn_status fnn_loss_grad_stats_f64(const fnn_net *net, const fnn_blas *blas,
                                   const double *params, const double *stats,
                                   const fnn_data *data, int64_t chunk_rows, int32_t dropout_on,
                                   uint64_t seed, double *loss_out, double *objective_out,
                                   double *grad);

/*
 * Forward pass in inference mode (BatchNorm with moving statistics) in
 * chunks of chunk_rows; out is n_rows x units[n_layers], row-major, holding
 * the output activation.  dropout_on = 1 gives one Monte-Carlo dropout
 * sample keyed by seed.
 * nonfinite (may be NULL) receives 1 when some first Dense layer output was
 * NaN or infinite, else 0.  Without dropout on the inputs a NaN or infinity
 * anywhere in a row of X makes all of that row's first-layer outputs
 * non-finite, so 0 proves X finite (1 can also come from overflow of finite
 * inputs): the caller checks X itself only then.
 */
fnn_status fnn_predict_f32(const fnn_net *net, const fnn_blas *blas, const float *params,
                           const float *stats, const fnn_data *data, int64_t chunk_rows,
                           int32_t dropout_on, uint64_t seed, float *out, int32_t *nonfinite);
fnn_status fnn_predict_f64(const fnn_net *net, const fnn_blas *blas, const double *params,
                           const double *stats, const fnn_data *data, int64_t chunk_rows,
                           int32_t dropout_on, uint64_t seed, double *out, int32_t *nonfinite);

/* Global thread-count controls of a BLAS library (OpenBLAS or MKL). */
typedef struct {
    int (*get)(void);
    void (*set)(int);
} fnn_blas_threads;

/* Find the controls of the library that defines blas_function (e.g. the
 * sgemm handed to the core); returns 1 when found. */
int fnn_find_blas_thread_control(void *blas_function, fnn_blas_threads *out);

/* 1 when the core was built with OpenMP. */
int fnn_has_openmp(void);
/* Threads an OpenMP region would use now (omp_get_max_threads(): follows
 * OMP_NUM_THREADS and threadpoolctl limits); 1 without OpenMP, and 1 in a
 * process forked after the core ran a parallel region (threads.c). */
int fnn_max_threads(void);
/* 1 in a process forked after the core ran a parallel region: every region
 * of the core runs serially there (GNU OpenMP's pool does not survive fork). */
int fnn_forked_serial(void);

#ifdef __cplusplus
}
#endif

#endif /* FASTNN_H */
