# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Thin wrapper over the C core (csrc/fastnn.h): buffers in, status out.

Every function checks the dtype, size and layout of each buffer it hands to C,
so no input that reaches this module can make C read or write out of bounds.
The C calls run without the GIL.
"""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.math cimport INFINITY
from scipy.linalg.cython_blas cimport dgemm, sgemm

import os

from cpython.exc cimport PyErr_CheckSignals

cnp.import_array()


cdef extern from *:
    """
    #include <signal.h>
    #include <string.h>
    /* Ctrl-C while an epoch runs in C without the GIL.  Python's own SIGINT
     * handler only runs once the C call returns, so this one, installed for
     * the duration of the call, counts the signals itself, raises the flag
     * the C loop polls between steps once enough have arrived, and passes
     * every signal on to Python's handler. */
    static volatile int32_t fnn_sigint_stop = 0;
    static volatile sig_atomic_t fnn_sigints_left = 0;
    #ifdef _WIN32
    static int fnn_watch_sigint(int count) { (void)count; fnn_sigint_stop = 0; return 0; }
    static void fnn_unwatch_sigint(void) {}
    #else
    static struct sigaction fnn_previous_sigint;
    static void fnn_on_sigint(int signum)
    {
        if (--fnn_sigints_left <= 0)
            fnn_sigint_stop = 1;
        if (!(fnn_previous_sigint.sa_flags & SA_SIGINFO) &&
            fnn_previous_sigint.sa_handler != SIG_DFL && fnn_previous_sigint.sa_handler != SIG_IGN)
            fnn_previous_sigint.sa_handler(signum);
    }
    static int fnn_watch_sigint(int count)
    {
        struct sigaction act;
        memset(&act, 0, sizeof act);
        sigemptyset(&act.sa_mask);
        act.sa_handler = fnn_on_sigint;
        act.sa_flags = SA_ONSTACK;
        fnn_sigint_stop = 0;
        fnn_sigints_left = count;
        return sigaction(SIGINT, &act, &fnn_previous_sigint) == 0;
    }
    static void fnn_unwatch_sigint(void) { sigaction(SIGINT, &fnn_previous_sigint, NULL); }
    #endif
    """
    int32_t fnn_sigint_stop
    int fnn_watch_sigint(int count) nogil
    void fnn_unwatch_sigint() nogil


cdef extern from "fastnn.h":
    ctypedef int fnn_status
    int FNN_OK, FNN_ERR_NOMEM, FNN_ERR_NONFINITE, FNN_ERR_BADARG

    # The registries (fastnn.h): one table entry per code.
    int FNN_ACT_COUNT, FNN_LOSS_COUNT, FNN_BN_COUNT, FNN_SOLVER_COUNT, FNN_CLIP_COUNT
    int FNN_PENALTY_COUNT
    ctypedef struct fnn_activation_info:
        const char *name
        int32_t hidden
        const char *auto_init
    ctypedef struct fnn_solver_info:
        const char *name
        int32_t uses_v
    const fnn_activation_info fnn_activation_table[]
    const fnn_solver_info fnn_solver_table[]
    const char *const fnn_loss_names[]
    const char *const fnn_batch_norm_names[]
    const char *const fnn_clip_names[]
    const char *const fnn_penalty_names[]

    int FNN_PAGE_SLOT_BYTES, FNN_SLOT_PARAMS, FNN_SLOT_MOMENT_M, FNN_SLOT_MOMENT_V, FNN_SLOT_GRAD

    ctypedef void (*fnn_sgemm_t)(char *, char *, int *, int *, int *, float *, float *,
                                 int *, float *, int *, float *, float *, int *) noexcept nogil
    ctypedef void (*fnn_dgemm_t)(char *, char *, int *, int *, int *, double *, double *,
                                 int *, double *, int *, double *, double *, int *) noexcept nogil

    ctypedef struct fnn_net:
        int32_t n_layers
        const int64_t *units
        const int32_t *activation
        int32_t loss
        double leaky_slope
        int32_t batch_norm
        int32_t batch_norm_input
        double bn_momentum
        double bn_epsilon
        const double *dropout
        int32_t alpha_dropout
        int32_t penalty
        double alpha
        double l1_ratio
        double max_norm
        const double *layer_alpha
        const double *layer_max_norm
        int32_t clip
        double clip_value
        int32_t solver
        double momentum
        int32_t nesterov
        double beta_1
        double beta_2
        double epsilon
        double rho
        double weight_decay
        const int64_t *w_off
        const int64_t *b_off
        const int64_t *bn_off
        const int64_t *stat_off
        int64_t n_params
        int64_t n_stats
        int32_t frozen_layers
        int32_t n_threads
        fnn_thread_policy *thread_policy
        fnn_scratch *scratch

    ctypedef struct fnn_thread_policy:
        int64_t steps[2]
    void fnn_thread_policy_reset(fnn_thread_policy *)

    ctypedef struct fnn_scratch:
        pass
    fnn_scratch *fnn_scratch_new()
    void fnn_scratch_free(fnn_scratch *)

    ctypedef struct fnn_blas:
        fnn_sgemm_t sgemm
        fnn_dgemm_t dgemm
        int32_t n_threads
        int32_t sgemm_kernel

    int fnn_sgemm_kernel_available()

    ctypedef struct fnn_data:
        int64_t n_rows, n_cols
        const void *x
        int64_t row_stride, col_stride
        const void *csr_data
        const void *csr_indices
        const void *csr_indptr
        int32_t csr_index64
        int32_t x_other_type
        const void *y
        const void *sample_weight

    ctypedef struct fnn_optstate:
        void *m
        void *v
        int64_t t
        double nadam_mu_product

    ctypedef struct fnn_epoch_report:
        double loss_sum
        double *grad_norm_sum
        int64_t n_steps
        const int32_t *stop

    fnn_status fnn_train_epoch_f32(const fnn_net *, const fnn_blas *, float *, float *,
                                   fnn_optstate *, const fnn_data *, const int64_t *, int64_t,
                                   int64_t, const double *, uint64_t,
                                   fnn_epoch_report *) nogil
    fnn_status fnn_train_epoch_f64(const fnn_net *, const fnn_blas *, double *, double *,
                                   fnn_optstate *, const fnn_data *, const int64_t *, int64_t,
                                   int64_t, const double *, uint64_t,
                                   fnn_epoch_report *) nogil
    fnn_status fnn_loss_grad_stats_f32(const fnn_net *, const fnn_blas *, const float *,
                                       const float *, const fnn_data *, int64_t, int32_t,
                                       uint64_t, double *, double *, float *) nogil
    fnn_status fnn_loss_grad_stats_f64(const fnn_net *, const fnn_blas *, const double *,
                                       const double *, const fnn_data *, int64_t, int32_t,
                                       uint64_t, double *, double *, double *) nogil
    fnn_status fnn_predict_f32(const fnn_net *, const fnn_blas *, const float *, const float *,
                               const fnn_data *, int64_t, int32_t, uint64_t, float *,
                               int32_t *) nogil
    fnn_status fnn_predict_f64(const fnn_net *, const fnn_blas *, const double *,
                               const double *, const fnn_data *, int64_t, int32_t, uint64_t,
                               double *, int32_t *) nogil
    ctypedef struct fnn_blas_threads:
        int (*get)() noexcept nogil
        void (*set)(int) noexcept nogil
    int fnn_find_blas_thread_control(void *blas_function, fnn_blas_threads *out)
    int fnn_has_openmp()
    int fnn_max_threads()
    int fnn_forked_serial()


# Name -> code dicts, read from the C core's registries (fastnn.h), so a
# row added there appears here.  The "none" rows of batch_norm and clip are
# spelled False and None, as the estimators' parameters.
cdef dict _codes(const char *const *names, int count, none=None):
    return {(none if names[i] == b"none" else names[i].decode()): i for i in range(count)}


ACTIVATIONS = {fnn_activation_table[i].name.decode(): i for i in range(FNN_ACT_COUNT)}
#: Activations allowed in hidden layers (the others are output activations).
HIDDEN_ACTIVATIONS = tuple(name for name, i in ACTIVATIONS.items()
                           if fnn_activation_table[i].hidden)
#: The initializer kernel_initializer='auto' picks for a layer, by its activation.
AUTO_INITIALIZER = {name: fnn_activation_table[i].auto_init.decode()
                    for name, i in ACTIVATIONS.items()}
LOSSES = _codes(fnn_loss_names, FNN_LOSS_COUNT)
BATCH_NORM = _codes(fnn_batch_norm_names, FNN_BN_COUNT, none=False)
SOLVERS = {fnn_solver_table[i].name.decode(): i for i in range(FNN_SOLVER_COUNT)}
#: The solvers that keep a second moment vector (opt_v) beside opt_m.
SOLVERS_WITH_V = frozenset(fnn_solver_table[i].name.decode() for i in range(FNN_SOLVER_COUNT)
                           if fnn_solver_table[i].uses_v)
CLIP = _codes(fnn_clip_names, FNN_CLIP_COUNT)
PENALTIES = _codes(fnn_penalty_names, FNN_PENALTY_COUNT)

# Where each vector the optimizer streams starts within a 4 KiB page, in
# units of PAGE_SLOT_BYTES (see _network.staggered_empty); the core puts the
# gradient in SLOT_GRAD.
PAGE_SLOT_BYTES = FNN_PAGE_SLOT_BYTES
SLOT_PARAMS = FNN_SLOT_PARAMS
SLOT_MOMENT_M = FNN_SLOT_MOMENT_M
SLOT_MOMENT_V = FNN_SLOT_MOMENT_V
SLOT_GRAD = FNN_SLOT_GRAD


class NonFiniteError(ArithmeticError):
    """The loss or a gradient became NaN or infinite (no update was applied)."""


def has_openmp():
    """True when the core was compiled with OpenMP."""
    return bool(fnn_has_openmp())


def max_threads():
    """Threads the core's OpenMP regions would use now (follows threadpoolctl;
    1 in a process forked after the core ran threads)."""
    return fnn_max_threads()


def forked_serial():
    """True in a process forked after the core ran threads: GNU OpenMP's pool
    does not survive fork, so the core runs serially there."""
    return bool(fnn_forked_serial())


cdef fnn_blas BLAS
BLAS.sgemm = <fnn_sgemm_t>sgemm
BLAS.dgemm = <fnn_dgemm_t>dgemm
BLAS.n_threads = 1

# The core's own float32 product kernels (csrc/sgemm_kernels.c), by name.
SGEMM_KERNELS = {"off": 0, "avx2": 1, "avx512": 2}
_KERNEL_NAMES = {v: k for k, v in SGEMM_KERNELS.items()}


def _kernel_setting(value):
    """A FNN_SGEMM_* cap from 'best', 'avx512', 'avx2', 'off' (or a bool)."""
    if value is True or value == "best":
        return SGEMM_KERNELS["avx512"]
    if value is False:
        return 0
    try:
        return SGEMM_KERNELS[str(value).strip().lower()]
    except KeyError:
        raise ValueError(f"sgemm kernel must be one of 'best', 'avx512', 'avx2', 'off', "
                         f"got {value!r}") from None


# FASTNN_SGEMM_KERNEL=off (or 0) keeps every product in BLAS; =avx2 caps the
# kernels at AVX2 (to compare them on an AVX-512 machine).
_env = os.environ.get("FASTNN_SGEMM_KERNEL", "best").strip() or "best"
BLAS.sgemm_kernel = 0 if _env == "0" else _kernel_setting(_env)

# The thread-count controls of the library behind scipy's sgemm.
cdef fnn_blas_threads BLAS_THREADS
fnn_find_blas_thread_control(<void *>sgemm, &BLAS_THREADS)


def blas_get_threads():
    """Threads of the BLAS the core calls, or None when unknown."""
    if BLAS_THREADS.get == NULL:
        return None
    return BLAS_THREADS.get()


def blas_set_threads(int n):
    """Set the threads of the BLAS the core calls (process-wide); False when
    its controls are unknown."""
    if BLAS_THREADS.set == NULL:
        return False
    BLAS_THREADS.set(n)
    return True


def sgemm_kernel_available():
    """The widest of the core's float32 kernels this CPU can run: 'avx512',
    'avx2' or None."""
    kind = fnn_sgemm_kernel_available()
    return _KERNEL_NAMES[kind] if kind else None


def sgemm_kernel_in_use():
    """The kernel family products run in where it pays off ('avx512' or
    'avx2'; which shapes each takes, float32 and float64, is the rule in
    csrc/dense.c, own_kernel_for), or None when they all go to BLAS."""
    kind = min(BLAS.sgemm_kernel, fnn_sgemm_kernel_available())
    return _KERNEL_NAMES[kind] if kind else None


def use_sgemm_kernel(kind):
    """Cap the core's float32 kernels, process-wide: 'best' (the default;
    True), 'avx512', 'avx2' or 'off' (False: every product in BLAS).
    Returns the previous setting's name."""
    previous = _KERNEL_NAMES[BLAS.sgemm_kernel]
    BLAS.sgemm_kernel = _kernel_setting(kind)
    return previous


cdef inline fnn_blas blas_for(Network net):
    """A per-call copy (concurrent calls may use different thread counts)."""
    cdef fnn_blas b = BLAS
    b.n_threads = net.net.n_threads
    return b


cdef check_status(fnn_status status):
    if status == FNN_OK:
        return
    if status == FNN_ERR_NOMEM:
        raise MemoryError("fastnn: could not allocate scratch memory")
    if status == FNN_ERR_NONFINITE:
        raise NonFiniteError("the loss or a gradient became NaN or infinite")
    raise ValueError("fastnn: the C core rejected its arguments (status %d)" % status)


cdef inline void *data_ptr(cnp.ndarray a):
    return cnp.PyArray_DATA(a)


cdef int code(object value, int count, str name) except -1:
    """`value` as a registry code in [0, count), else ValueError (the core
    indexes its tables with it)."""
    if not 0 <= value < count:
        raise ValueError("%s code %r is outside the core's 0..%d" % (name, value, count - 1))
    return value


cdef cnp.ndarray vec(object a, object dtype, Py_ssize_t size, str name, bint out=False):
    """`a` as a C-contiguous 1-D array of dtype and size, else ValueError.
    out: C writes into it, so it must be writeable (a read-only memmap or
    out-of-band pickle buffer would crash or be corrupted)."""
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != 1 \
            or a.shape[0] != size or not a.flags.c_contiguous:
        raise ValueError("%s must be a contiguous %s vector of size %d" % (name, dtype, size))
    if out and not a.flags.writeable:
        raise ValueError("%s is read-only; the core writes into it (copy it first)" % name)
    return a


# Row buffers of one predict or loss_grad workspace stay within this many
# bytes: a fixed number of rows of a 300,000-wide sparse X would densify to
# gigabytes per thread. Typical networks keep the default chunk sizes.
SCRATCH_BYTES = 64 << 20


cdef int64_t rows_within_scratch(Network net, int64_t max_rows):
    """At most max_rows, fewer when that many rows of the workspace's
    buffers (train.c, ws_init: gathered inputs, dropout copies, every
    layer's outputs, the backward buffers) would exceed SCRATCH_BYTES."""
    cdef int64_t inputs = net.net.units[0], widest = inputs, layers = 0, u
    for l in range(1, net.net.n_layers + 1):
        u = net.net.units[l]
        layers += u
        widest = max(widest, u)
    cdef int64_t per_row = net.dtype.itemsize * (4 * inputs + 2 * widest + 6 * layers) + 32
    return max(1, min(max_rows, SCRATCH_BYTES // per_row))


cdef class Network:
    """The C network descriptor plus the arrays it points into.

    Built by fastnn._network.Layout; see fastnn.h for every field.
    """
    cdef fnn_net net
    cdef fnn_thread_policy policy
    cdef readonly object dtype
    cdef object _arrays

    def __cinit__(self):
        # Training calls (epochs, lbfgs's gradients) keep their workspace here
        # from one call to the next (freed with this object, at the end of a
        # fit); NULL (out of memory) only means each call allocates its own.
        self.net.scratch = fnn_scratch_new()

    def __dealloc__(self):
        fnn_scratch_free(self.net.scratch)

    def __init__(self, *, dtype, units, activation, loss, w_off, b_off, bn_off, stat_off,
                 n_params, n_stats, dropout=None, leaky_slope=0.01, batch_norm=0,
                 batch_norm_input=False, bn_momentum=0.99, bn_epsilon=1e-3,
                 alpha_dropout=False, penalty=0, alpha=0.0, l1_ratio=0.15, max_norm=0.0,
                 layer_alpha=None, layer_max_norm=None, clip=0, clip_value=0.0, solver=1, momentum=0.9, nesterov=True,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, rho=0.9, weight_decay=0.0,
                 n_threads=1, adaptive_threads=True, frozen_layers=0):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError("dtype must be float32 or float64")
        cdef cnp.ndarray u = np.ascontiguousarray(units, dtype=np.int64)
        cdef Py_ssize_t L = u.shape[0] - 1
        if L < 1 or (u < 1).any():
            raise ValueError("units must hold at least two positive sizes")
        cdef cnp.ndarray act = vec(np.asarray(activation, dtype=np.int32), np.int32, L, "activation")
        for a in act:
            code(a, FNN_ACT_COUNT, "activation")
        cdef cnp.ndarray wo = vec(np.asarray(w_off, dtype=np.int64), np.int64, L, "w_off")
        cdef cnp.ndarray bo = vec(np.asarray(b_off, dtype=np.int64), np.int64, L, "b_off")
        cdef cnp.ndarray no = vec(np.asarray(bn_off, dtype=np.int64), np.int64, L, "bn_off")
        cdef cnp.ndarray so = vec(np.asarray(stat_off, dtype=np.int64), np.int64, L, "stat_off")
        # Every tensor must lie inside the parameter / statistics vectors.
        for l in range(L):
            if wo[l] < 0 or wo[l] + u[l] * u[l + 1] > n_params:
                raise ValueError("kernel %d lies outside the parameter vector" % l)
            if bo[l] >= 0 and bo[l] + u[l + 1] > n_params:
                raise ValueError("bias %d lies outside the parameter vector" % l)
            if no[l] >= 0 and (no[l] + 2 * u[l] > n_params or so[l] < 0
                               or so[l] + 2 * u[l] > n_stats):
                raise ValueError("BatchNorm slot %d lies outside its vectors" % l)
        cdef cnp.ndarray dr = None
        if dropout is not None:
            dr = vec(np.asarray(dropout, dtype=np.float64), np.float64, L, "dropout")
            if ((dr < 0) | (dr >= 1)).any():
                raise ValueError("dropout rates must lie in [0, 1)")
        # One penalty strength (>= 0) / max norm (<= 0: none) per Dense kernel.
        cdef cnp.ndarray la = None, lm = None
        if layer_alpha is not None:
            la = vec(np.asarray(layer_alpha, dtype=np.float64), np.float64, L, "layer_alpha")
            if not (la >= 0).all():
                raise ValueError("layer_alpha values must be >= 0")
        if layer_max_norm is not None:
            lm = vec(np.asarray(layer_max_norm, dtype=np.float64), np.float64, L,
                     "layer_max_norm")
        self._arrays = (u, act, wo, bo, no, so, dr, la, lm)
        self.net.n_layers = <int32_t>L
        self.net.units = <const int64_t *>data_ptr(u)
        self.net.activation = <const int32_t *>data_ptr(act)
        self.net.loss = code(loss, FNN_LOSS_COUNT, "loss")
        self.net.leaky_slope = leaky_slope
        self.net.batch_norm = code(batch_norm, FNN_BN_COUNT, "batch_norm")
        self.net.batch_norm_input = bool(batch_norm_input)
        self.net.bn_momentum = bn_momentum
        self.net.bn_epsilon = bn_epsilon
        self.net.dropout = <const double *>data_ptr(dr) if dr is not None else NULL
        self.net.alpha_dropout = bool(alpha_dropout)
        self.net.penalty = code(penalty, FNN_PENALTY_COUNT, "penalty")
        self.net.alpha = alpha
        self.net.l1_ratio = l1_ratio
        self.net.max_norm = max_norm if max_norm is not None else 0.0
        self.net.layer_alpha = <const double *>data_ptr(la) if la is not None else NULL
        self.net.layer_max_norm = <const double *>data_ptr(lm) if lm is not None else NULL
        self.net.clip = code(clip, FNN_CLIP_COUNT, "clip")
        self.net.clip_value = clip_value
        self.net.solver = code(solver, FNN_SOLVER_COUNT, "solver")
        self.net.momentum = momentum
        self.net.nesterov = bool(nesterov)
        self.net.beta_1 = beta_1
        self.net.beta_2 = beta_2
        self.net.epsilon = epsilon
        self.net.rho = rho
        self.net.weight_decay = weight_decay
        self.net.w_off = <const int64_t *>data_ptr(wo)
        self.net.b_off = <const int64_t *>data_ptr(bo)
        self.net.bn_off = <const int64_t *>data_ptr(no)
        self.net.stat_off = <const int64_t *>data_ptr(so)
        self.net.n_params = n_params
        self.net.n_stats = n_stats
        if not 0 <= frozen_layers < L:
            raise ValueError("frozen_layers must lie in [0, n_layers)")
        self.net.frozen_layers = frozen_layers
        self.n_threads = n_threads
        # Training steps pick between n_threads and one thread by timing
        # themselves (csrc/threads.c); the choice lasts as long as this object.
        fnn_thread_policy_reset(&self.policy)
        self.net.thread_policy = &self.policy if adaptive_threads else NULL

    @property
    def n_layers(self):
        return self.net.n_layers

    @property
    def n_params(self):
        return self.net.n_params

    @property
    def n_threads(self):
        return self.net.n_threads

    @n_threads.setter
    def n_threads(self, value):
        self.net.n_threads = max(1, int(value))

    @property
    def thread_steps(self):
        """Training steps run so far on (one thread, n_threads); (0, 0) when the
        thread count is fixed or n_threads is 1 (steps are then not counted)."""
        return int(self.policy.steps[0]), int(self.policy.steps[1])


cdef object fill_data(fnn_data *d, Network net, object X, object y, object sw, bint need_y):
    """Describe X (float32 or float64 ndarray, any strides, or a CSR matrix
    with sorted-or-not, in-range indices; values of the other float type than
    the network's are converted by C batch by batch), y and sample_weight
    (of the network's dtype) for C.  Returns
    the objects that must stay alive during the call."""
    dtype = net.dtype
    cdef Py_ssize_t itemsize = dtype.itemsize
    cdef int64_t n_rows, n_cols
    cdef cnp.ndarray xa, data, indices, indptr
    d.x = NULL
    d.csr_data = NULL
    d.csr_indices = NULL
    d.csr_indptr = NULL
    d.csr_index64 = 0
    d.x_other_type = 0
    if isinstance(X, np.ndarray):
        xa = X
        if xa.ndim != 2 or xa.dtype not in (np.float32, np.float64):
            raise ValueError("X must be a 2-D float32 or float64 array")
        # X of the other float type is converted by C as batches are gathered.
        d.x_other_type = xa.dtype != dtype
        itemsize = xa.dtype.itemsize
        if xa.strides[0] % itemsize or xa.strides[1] % itemsize:
            raise ValueError("X's strides must be multiples of its item size")
        n_rows, n_cols = xa.shape[0], xa.shape[1]
        d.x = data_ptr(xa)
        d.row_stride = xa.strides[0] // itemsize
        d.col_stride = xa.strides[1] // itemsize
        keep = [xa]
    else:  # scipy CSR: C indexes with indptr and indices, so check them all
        if getattr(X, "format", None) != "csr":
            raise ValueError("X must be a NumPy array or a CSR matrix")
        n_rows, n_cols = X.shape
        nnz = len(X.indices)
        data_dtype = X.data.dtype if X.data.dtype in (np.float32, np.float64) else dtype
        data = vec(X.data, data_dtype, nnz, "X.data")
        d.x_other_type = data_dtype != dtype
        idx_dtype = X.indices.dtype
        if idx_dtype not in (np.int32, np.int64):
            raise ValueError("CSR indices must be int32 or int64")
        indices = vec(X.indices, idx_dtype, nnz, "X.indices")
        indptr = vec(X.indptr, idx_dtype, n_rows + 1, "X.indptr")
        if (indptr[0] != 0 or indptr[n_rows] != nnz or (np.diff(indptr) < 0).any()
                or (nnz and (indices.min() < 0 or indices.max() >= n_cols))):
            raise ValueError("X is a malformed CSR matrix (indices or indptr out of range)")
        d.csr_data = data_ptr(data)
        d.csr_indices = data_ptr(indices)
        d.csr_indptr = data_ptr(indptr)
        d.csr_index64 = idx_dtype == np.int64
        keep = [data, indices, indptr]
    if n_cols != net.net.units[0]:
        raise ValueError("X has %d features, the network expects %d"
                         % (n_cols, net.net.units[0]))
    d.n_rows = n_rows
    d.n_cols = n_cols
    d.y = NULL
    d.sample_weight = NULL
    cdef cnp.ndarray ya, swa
    if need_y:
        n_out = net.net.units[net.net.n_layers]
        if not isinstance(y, np.ndarray) or y.dtype != dtype or y.ndim != 2 \
                or y.shape[0] != n_rows or y.shape[1] != n_out or not y.flags.c_contiguous:
            raise ValueError("y must be a contiguous %s array of shape (%d, %d)"
                             % (dtype, n_rows, n_out))
        ya = y
        d.y = data_ptr(ya)
        keep.append(ya)
    if sw is not None:
        swa = vec(sw, dtype, n_rows, "sample_weight")
        d.sample_weight = data_ptr(swa)
        keep.append(swa)
    return keep


def first_bad_rate(lrs):
    """The index of the first of a float64 vector's learning rates that is
    NaN, infinite or negative; -1 when every one is finite and >= 0."""
    cdef cnp.ndarray a = np.ascontiguousarray(lrs, dtype=np.float64)
    cdef const double *r = <const double *>data_ptr(a)
    cdef Py_ssize_t i
    for i in range(a.shape[0]):
        if not (r[i] >= 0 and r[i] < INFINITY):
            return i
    return -1


def train_epoch(Network net, params, stats, opt_m, opt_v, opt_scalars, X, y, sample_weight,
                order, Py_ssize_t batch_size, lrs, uint64_t seed, grad_norm_sum, *,
                int interrupt_after=0):
    """Train one epoch in C.  opt_scalars is a float64 array [t, nadam_mu_product],
    updated in place; grad_norm_sum (float64, n_layers) is added to.
    Returns (loss_sum, n_steps); raises NonFiniteError (after the last finite step).
    interrupt_after > 0 (main thread only): the interrupt_after-th Ctrl-C
    during the call ends the epoch after the current step and raises
    KeyboardInterrupt (params then hold the last finished step)."""
    dtype = net.dtype
    cdef fnn_data d
    keep = fill_data(&d, net, X, y, sample_weight, True)
    cdef cnp.ndarray p = vec(params, dtype, net.net.n_params, "params", True)
    cdef cnp.ndarray st = vec(stats, dtype, net.net.n_stats, "stats", True)
    cdef cnp.ndarray o = vec(order, np.int64, len(order), "order")
    cdef Py_ssize_t n_order = o.shape[0]
    cdef const int64_t *op = <const int64_t *>data_ptr(o)
    cdef Py_ssize_t i
    for i in range(n_order):  # numpy's min() and max() cost 3 us per epoch on small X
        if op[i] < 0 or op[i] >= d.n_rows:
            raise ValueError("order holds row indices outside X")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    cdef Py_ssize_t n_steps = (n_order + batch_size - 1) // batch_size
    cdef cnp.ndarray r = vec(lrs, np.float64, n_steps, "lrs")
    cdef cnp.ndarray g = vec(grad_norm_sum, np.float64, net.net.n_layers, "grad_norm_sum", True)
    cdef cnp.ndarray sc = vec(opt_scalars, np.float64, 2, "opt_scalars", True)
    cdef fnn_optstate opt
    cdef cnp.ndarray m, v
    # Every solver keeps a first buffer (velocity, moment or accumulator).
    m = vec(opt_m, dtype, net.net.n_params, "opt_m", True)
    opt.m = data_ptr(m)
    opt.v = NULL
    if fnn_solver_table[net.net.solver].uses_v:
        v = vec(opt_v, dtype, net.net.n_params, "opt_v", True)
        opt.v = data_ptr(v)
    opt.t = <int64_t>sc[0]
    opt.nadam_mu_product = sc[1]
    cdef fnn_epoch_report rep
    rep.grad_norm_sum = <double *>data_ptr(g)
    rep.stop = NULL
    cdef bint watching = interrupt_after > 0 and fnn_watch_sigint(interrupt_after)
    if watching:
        rep.stop = <const int32_t *>&fnn_sigint_stop
    cdef fnn_status status
    cdef fnn_blas blas = blas_for(net)
    cdef int64_t bs = batch_size
    cdef void *pp = data_ptr(p)
    cdef void *stp = data_ptr(st)
    cdef const double *rp = <const double *>data_ptr(r)
    if dtype == np.float32:
        with nogil:
            status = fnn_train_epoch_f32(&net.net, &blas, <float *>pp, <float *>stp, &opt, &d,
                                         op, n_order, bs, rp, seed, &rep)
    else:
        with nogil:
            status = fnn_train_epoch_f64(&net.net, &blas, <double *>pp, <double *>stp, &opt,
                                         &d, op, n_order, bs, rp, seed, &rep)
    if watching:
        fnn_unwatch_sigint()
    sc[0] = opt.t
    sc[1] = opt.nadam_mu_product
    if watching and fnn_sigint_stop and status == FNN_OK:
        PyErr_CheckSignals()  # Python's handlers run now (and may raise it themselves)
        raise KeyboardInterrupt
    if status == FNN_ERR_NONFINITE:
        raise NonFiniteError(rep.n_steps)
    check_status(status)
    return rep.loss_sum, rep.n_steps


def loss_grad(Network net, params, X, y, sample_weight, grad, *, chunk_rows=None,
              bint dropout_on=False, uint64_t seed=0, stats=None):
    """Full-batch (loss, objective) with the objective's gradient written to grad.
    chunk_rows: rows per pass (None: 4096, fewer on wide input, see SCRATCH_BYTES).
    stats: the BN moving statistics, needed when a frozen layer has BatchNorm
    (it normalizes with them); frozen parameters get a zero gradient."""
    dtype = net.dtype
    cdef fnn_data d
    keep = fill_data(&d, net, X, y, sample_weight, True)
    if d.n_rows < 1:
        raise ValueError("loss_grad needs at least one row")
    cdef cnp.ndarray p = vec(params, dtype, net.net.n_params, "params")
    cdef cnp.ndarray g = vec(grad, dtype, net.net.n_params, "grad", True)
    cdef double loss = 0, objective = 0
    cdef fnn_status status
    cdef fnn_blas blas = blas_for(net)
    cdef int64_t chunk = rows_within_scratch(net, 4096) if chunk_rows is None else chunk_rows
    cdef int32_t drop = dropout_on
    cdef void *pp = data_ptr(p)
    cdef void *gp = data_ptr(g)
    cdef cnp.ndarray st = None
    cdef void *stp = NULL
    if stats is not None:
        st = vec(stats, dtype, net.net.n_stats, "stats")
        stp = data_ptr(st)
    if dtype == np.float32:
        with nogil:
            status = fnn_loss_grad_stats_f32(&net.net, &blas, <const float *>pp,
                                             <const float *>stp, &d, chunk, drop, seed,
                                             &loss, &objective, <float *>gp)
    else:
        with nogil:
            status = fnn_loss_grad_stats_f64(&net.net, &blas, <const double *>pp,
                                             <const double *>stp, &d, chunk, drop, seed,
                                             &loss, &objective, <double *>gp)
    check_status(status)
    return loss, objective


def predict(Network net, params, stats, X, *, chunk_rows=None,
            bint dropout_on=False, uint64_t seed=0, bint return_nonfinite=False):
    """Output activations for X (inference mode; one MC-dropout sample when
    dropout_on), chunk_rows rows per pass and thread (None: 256, fewer on
    wide input, see SCRATCH_BYTES).  With return_nonfinite, also whether
    some first-layer output was NaN or infinite: False proves X finite when
    dropout is off (see fnn_predict in fastnn.h)."""
    dtype = net.dtype
    cdef fnn_data d
    keep = fill_data(&d, net, X, None, None, False)
    cdef cnp.ndarray p = vec(params, dtype, net.net.n_params, "params")
    cdef cnp.ndarray st = vec(stats, dtype, net.net.n_stats, "stats")
    cdef cnp.ndarray out = np.empty((d.n_rows, net.net.units[net.net.n_layers]), dtype=dtype)
    cdef fnn_status status
    cdef fnn_blas blas = blas_for(net)
    cdef int64_t chunk = rows_within_scratch(net, 256) if chunk_rows is None else chunk_rows
    cdef int32_t drop = dropout_on
    cdef void *pp = data_ptr(p)
    cdef void *stp = data_ptr(st)
    cdef void *outp = data_ptr(out)
    cdef int32_t nonfinite = 0
    if dtype == np.float32:
        with nogil:
            status = fnn_predict_f32(&net.net, &blas, <const float *>pp, <const float *>stp, &d,
                                     chunk, drop, seed, <float *>outp, &nonfinite)
    else:
        with nogil:
            status = fnn_predict_f64(&net.net, &blas, <const double *>pp, <const double *>stp,
                                     &d, chunk, drop, seed, <double *>outp, &nonfinite)
    check_status(status)
    return (out, nonfinite != 0) if return_nonfinite else out


from libc.string cimport memcmp


def same_arrays(arrays, copies):
    """True when arrays[i] and copies[i] have the same shape, dtype and bytes
    for every i (copies: C-contiguous). A memcmp, without numpy's temporary
    boolean arrays: the check the cached inference network makes on every
    prediction, so a user's assigned or edited weights are seen."""
    if len(arrays) != len(copies):
        return False
    cdef cnp.ndarray a, c
    for x, y in zip(arrays, copies):
        # shapes compared as Python tuples (a typed ndarray's .shape is a pointer)
        if type(x) is not np.ndarray or x.dtype != y.dtype or x.shape != y.shape:
            return False
        a, c = x, y
        if not cnp.PyArray_IS_C_CONTIGUOUS(a):
            if not np.array_equal(a, c):
                return False
        elif memcmp(cnp.PyArray_DATA(a), cnp.PyArray_DATA(c), cnp.PyArray_NBYTES(c)) != 0:
            return False
    return True
