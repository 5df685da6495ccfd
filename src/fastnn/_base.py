"""Shared estimator logic: validation, initialization, the epoch loop driver,
lbfgs, early stopping, prediction (BatchNorm folded, or MC dropout).

The per-sample work all happens in C (fastnn._core); Python does O(layers)
work per epoch.
"""

import time
import warnings
import weakref
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import (_assert_all_finite, _check_sample_weight, check_is_fitted,
                                      validate_data)

from . import _core
from ._threads import adaptive_threads, blas_single_threaded, n_threads
from ._init import INITIALIZERS, init_kernel, resolve_initializer
from ._network import SLOT_MOMENT_M, SLOT_MOMENT_V, Layout, staggered_empty
from ._progress import (EpochProgress, GradientMonitor, InterruptAtEpochEnd, epoch_chunks,
                        epoch_line)
from .schedules import SCHEDULE_NAMES, make_schedule

HIDDEN_ACTIVATIONS = _core.HIDDEN_ACTIVATIONS
STOCHASTIC_SOLVERS = tuple(_core.SOLVERS)  # every solver of the C core; lbfgs is scipy's


# Inference networks of fitted estimators (BatchNorm folded, the C descriptor
# built), kept outside the estimators themselves: predict must not change an
# estimator's __dict__ (scikit-learn's check_dict_unchanged) nor its pickle.
_INFERENCE_CACHE = weakref.WeakKeyDictionary()
_FITTED_ARRAYS = ("coefs_", "intercepts_", "bn_gamma_", "bn_beta_", "bn_moving_mean_",
                  "bn_moving_var_")


class _InferenceNetwork:
    """A folded network ready for _core.predict, with copies of the fitted
    arrays it was built from and the settings that shaped it."""

    def __init__(self, key, arrays, net, params):
        self.key, self.net, self.params = key, net, params
        self.arrays = [a.copy() for a in arrays]
        self.empty_stats = np.empty(0, dtype=params.dtype)

    def built_from(self, key, arrays):
        """True when key and every array (shape, dtype, values) are the same:
        an array a user assigned, or edited in place, is seen."""
        return key == self.key and len(arrays) == len(self.arrays) and all(
            a.shape == c.shape and a.dtype == c.dtype and np.array_equal(a, c)
            for a, c in zip(arrays, self.arrays))


def _check_fitted(est):
    """scikit-learn's check_is_fitted, without its scan of every attribute
    (a tenth of a one-row prediction) when coefs_ is there."""
    if "coefs_" not in est.__dict__:
        check_is_fitted(est)


class DivergenceError(ValueError):
    """Training diverged: the loss or a gradient became NaN or infinite.

    The estimator keeps the last finite weights and can still predict."""


def _loss_value(loss, y, p, sample_weight=None):
    """sklearn's reported data losses (neural_network/_base.py), in NumPy."""
    from scipy.special import xlogy

    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if loss == "squared_error":
        return 0.5 * np.average((y - p) ** 2, weights=sample_weight, axis=0).mean()
    if loss == "poisson":
        return np.average(xlogy(y, y / p) - y + p, weights=sample_weight, axis=0).sum()
    eps = np.finfo(np.float64).eps
    p = np.clip(p, eps, 1 - eps)
    if loss == "binary_log_loss":
        per = xlogy(y, p) + xlogy(1 - y, 1 - p)
    else:
        per = xlogy(y, p)
    return -np.average(per, weights=sample_weight, axis=0).sum()


def _cast_finite(a, dtype, name):
    """`a` as `dtype`; a ValueError when finite values overflow the narrower
    type (a float32 model fed float64 data beyond float32's range)."""
    if a.dtype == dtype:
        return a
    out = a.astype(dtype)
    if np.issubdtype(dtype, np.floating) and not np.isfinite(out).all() \
            and np.isfinite(a).all():
        raise ValueError(f"{name} has values beyond the range of this model's {dtype} "
                         "(it was fitted on float32 data); scale the data or fit on "
                         "float64.")
    return out


def _check_range(X, dtype, name):
    """A ValueError when finite float64 values of X overflow a float32 model
    (X is converted batch by batch in C, so it is checked here, without a copy)."""
    if np.dtype(dtype) != np.float32 or X.dtype != np.float64:
        return
    values = X.data if sp.issparse(X) else X
    big = float(np.finfo(np.float32).max)
    if values.size and (values.max() > big or values.min() < -big):
        raise ValueError(f"{name} has values beyond the range of this model's float32; scale "
                         "the data, or fit with dtype='float64'.")


def _check_mc_samples(mc_samples):
    if isinstance(mc_samples, (bool, np.bool_)) or not isinstance(mc_samples, Integral) \
            or mc_samples < 0:
        raise ValueError(f"mc_samples must be a non-negative integer, got {mc_samples!r}.")
    return int(mc_samples)


class BaseMultilayerPerceptron(BaseEstimator):
    """Shared base of MLPClassifier and MLPRegressor (not for direct use)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS)), list, tuple],
        "solver": [StrOptions({"lbfgs", *STOCHASTIC_SOLVERS})],
        "alpha": [Interval(Real, 0, None, closed="left"), "array-like"],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions(set(SCHEDULE_NAMES)),
                          HasMethods(["start", "epoch_rates", "end_epoch"])],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "rho": [Interval(Real, 0, 1, closed="both")],
        "initial_accumulator_value": [Interval(Real, 0, None, closed="left")],
        "kernel_initializer": [StrOptions(set(INITIALIZERS))],
        "batch_norm": ["boolean", StrOptions({"before", "after"})],
        "batch_norm_input": ["boolean"],
        "batch_norm_momentum": [Interval(Real, 0, 1, closed="both")],
        "batch_norm_epsilon": [Interval(Real, 0, None, closed="neither")],
        "clipvalue": [Interval(Real, 0, None, closed="neither"), None],
        "clipnorm": [Interval(Real, 0, None, closed="neither"), None],
        "global_clipnorm": [Interval(Real, 0, None, closed="neither"), None],
        "penalty": [StrOptions({"l2", "l1", "elasticnet"})],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "dropout_kind": [StrOptions({"auto", "standard", "alpha"})],
        "max_norm": [Interval(Real, 0, None, closed="neither"), None, "array-like"],
        "restore_best_weights": ["boolean"],
        "dtype": [None, StrOptions({"float32", "float64"}),
                  Options(type, {np.float32, np.float64})],
        "negative_slope": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size,
                 learning_rate, learning_rate_init, power_t, max_iter, loss, shuffle,
                 random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                 early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                 n_iter_no_change, max_fun, rho, initial_accumulator_value,
                 kernel_initializer, batch_norm, batch_norm_input, batch_norm_momentum,
                 batch_norm_epsilon, clipvalue, clipnorm, global_clipnorm, penalty, l1_ratio,
                 dropout, dropout_kind, max_norm, restore_best_weights, dtype,
                 negative_slope, weight_decay):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.rho = rho
        self.initial_accumulator_value = initial_accumulator_value
        self.kernel_initializer = kernel_initializer
        self.batch_norm = batch_norm
        self.batch_norm_input = batch_norm_input
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_epsilon = batch_norm_epsilon
        self.clipvalue = clipvalue
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.dropout = dropout
        self.dropout_kind = dropout_kind
        self.max_norm = max_norm
        self.restore_best_weights = restore_best_weights
        self.dtype = dtype
        self.negative_slope = negative_slope
        self.weight_decay = weight_decay

    # ------------------------------------------------------------------
    # hyper-parameters resolved for one fit
    # ------------------------------------------------------------------
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if any(not isinstance(s, Integral) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _hidden_activations(self, n_hidden):
        act = self.activation
        if isinstance(act, str):
            return [act] * n_hidden
        act = list(act)
        if len(act) != n_hidden:
            raise ValueError(f"activation has {len(act)} entries but there are {n_hidden} "
                             "hidden layers; give one per hidden layer or a single string.")
        for a in act:
            if a not in HIDDEN_ACTIVATIONS:
                raise ValueError(f"activation {a!r} is not one of {HIDDEN_ACTIVATIONS}.")
        return act

    def _batch_norm_mode(self):
        bn = self.batch_norm
        if bn is True or bn == "before":
            return "before"
        if bn == "after":
            return "after"
        return False

    def _dropout_rates(self, n_layers):
        d = self.dropout
        if np.ndim(d) == 0:
            rates = [float(d)] * n_layers
        else:
            rates = [float(r) for r in d]
            if len(rates) != n_layers:
                raise ValueError(f"dropout has {len(rates)} rates; give one float or one rate "
                                 f"per Dense layer (len(hidden_layer_sizes) + 1 = {n_layers}).")
        if any(not (0 <= r < 1) for r in rates):
            raise ValueError(f"dropout rates must lie in [0, 1), got {rates}.")
        return rates

    def _per_layer(self, name, n_layers):
        """(scalar, None) for a float (or None) parameter, (0.0, one value per
        Dense layer) for a list: None entries become 0 (no penalty, no
        constraint).  The core takes the scalar path for a scalar, as it
        did before per-layer values existed."""
        value = getattr(self, name)
        if value is None or np.ndim(value) == 0:
            return (0.0 if value is None else float(value)), None
        values = list(value)
        if len(values) != n_layers:
            raise ValueError(f"{name} has {len(values)} values; give one value or one per "
                             f"Dense layer (len(hidden_layer_sizes) + 1 = {n_layers}), None "
                             "for a layer left out.")
        lowest = 0 if name == "alpha" else np.nextafter(0, 1)
        for v in values:
            if v is not None and not (isinstance(v, Real) and np.isfinite(v) and v >= lowest):
                raise ValueError(f"{name} values must be {'>= 0' if name == 'alpha' else '> 0'} "
                                 f"or None, got {values}.")
        return 0.0, [0.0 if v is None else float(v) for v in values]

    def _alpha_dropout(self, hidden_acts):
        if self.dropout_kind == "auto":
            return len(hidden_acts) > 0 and all(a == "selu" for a in hidden_acts)
        return self.dropout_kind == "alpha"

    def _clip(self):
        set_ = [(k, v) for k, v in (("value", self.clipvalue), ("norm", self.clipnorm),
                                    ("global_norm", self.global_clipnorm)) if v is not None]
        if len(set_) > 1:
            raise ValueError("Set at most one of clipvalue, clipnorm and global_clipnorm "
                             f"(got {', '.join('clip' + k if k != 'global_norm' else 'global_clipnorm' for k, _ in set_)}).")
        return set_[0] if set_ else (None, 0.0)

    def _check_solver_options(self):
        if self.solver == "lbfgs":
            if self._batch_norm_mode() or self.batch_norm_input:
                raise ValueError("solver='lbfgs' does not support BatchNorm (its statistics "
                                 "are mini-batch quantities); use a stochastic solver.")
            if any(r > 0 for r in np.ravel(self.dropout)):
                raise ValueError("solver='lbfgs' does not support dropout (a random objective "
                                 "breaks its line search); use a stochastic solver.")

    def _network_config(self, hidden_acts):
        clip, clip_value = self._clip()
        L = len(hidden_acts) + 1
        rates = self._dropout_rates(L)
        solver = self.solver if self.solver != "lbfgs" else "sgd"
        alpha, layer_alpha = self._per_layer("alpha", L)
        max_norm, layer_max_norm = self._per_layer("max_norm", L)
        return dict(
            activation=[_core.ACTIVATIONS[a] for a in hidden_acts]
            + [_core.ACTIVATIONS[self.out_activation_]],
            loss=_core.LOSSES[self._loss_name()],
            leaky_slope=float(self.negative_slope),
            bn_momentum=float(self.batch_norm_momentum),
            bn_epsilon=float(self.batch_norm_epsilon),
            dropout=rates if any(r > 0 for r in rates) else None,
            alpha_dropout=self._alpha_dropout(hidden_acts),
            penalty=_core.PENALTIES[self.penalty],
            alpha=alpha,
            layer_alpha=layer_alpha,
            l1_ratio=float(self.l1_ratio),
            max_norm=max_norm,
            layer_max_norm=layer_max_norm,
            clip=_core.CLIP[clip],
            clip_value=float(clip_value),
            solver=_core.SOLVERS[solver],
            momentum=float(self.momentum),
            nesterov=bool(self.nesterovs_momentum),
            beta_1=float(self.beta_1),
            beta_2=float(self.beta_2),
            epsilon=float(self.epsilon),
            rho=float(self.rho),
            weight_decay=float(self.weight_decay),
            n_threads=n_threads(),
            adaptive_threads=adaptive_threads(),
        )

    def _loss_name(self):
        if is_classifier(self):
            return "binary_log_loss" if self.out_activation_ == "logistic" else "log_loss"
        return self.loss

    def _layout(self):
        units = [self.n_features_in_] + self._hidden_sizes() + [self.n_outputs_]
        return Layout(units, self._batch_norm_mode(), self.batch_norm_input)

    # ------------------------------------------------------------------
    # initialization and the flat buffers
    # ------------------------------------------------------------------
    def _initialize(self, y, layer_units, dtype, hidden_acts):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        layout = Layout(layer_units, self._batch_norm_mode(), self.batch_norm_input)
        rng = self._random_state
        self.coefs_, self.intercepts_ = [], []
        for l in range(layout.n_layers):
            act = hidden_acts[l] if l < len(hidden_acts) else self.out_activation_
            # The output layer keeps Keras's Dense default (Glorot uniform).
            name = (resolve_initializer(self.kernel_initializer, act)
                    if l < len(hidden_acts) else "glorot_uniform")
            self.coefs_.append(init_kernel(name, layer_units[l], layer_units[l + 1], rng, dtype))
            self.intercepts_.append(np.zeros(layer_units[l + 1], dtype=dtype))
        self.bn_gamma_, self.bn_beta_ = [], []
        self.bn_moving_mean_, self.bn_moving_var_ = [], []
        for s in range(layout.n_layers):
            w = layer_units[s]
            have = layout.has_bn(s)
            self.bn_gamma_.append(np.ones(w, dtype=dtype) if have else None)
            self.bn_beta_.append(np.zeros(w, dtype=dtype) if have else None)
            self.bn_moving_mean_.append(np.zeros(w, dtype=dtype) if have else None)
            self.bn_moving_var_.append(np.ones(w, dtype=dtype) if have else None)
        self.history_ = {"loss": [], "lr": [], "grad_norm": [], "time": []}
        if self.early_stopping:
            self.history_["val_loss"] = []
            self.history_["val_score"] = []
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _model_dtype(self):
        return self.coefs_[0].dtype

    def _pack(self, layout, dtype):
        return layout.pack(self.coefs_, self.intercepts_, self.bn_gamma_, self.bn_beta_,
                           self.bn_moving_mean_, self.bn_moving_var_, dtype)

    def _unpack(self, layout, params, stats):
        (self.coefs_, self.intercepts_, self.bn_gamma_, self.bn_beta_,
         self.bn_moving_mean_, self.bn_moving_var_) = layout.unpack(params, stats)

    # ------------------------------------------------------------------
    # input handling
    # ------------------------------------------------------------------
    @staticmethod
    def _as_core_X(X, dtype, check_range=True):
        """X as the core takes it: a dense float array (any strides: no copy
        for float C- or F-ordered input) or a checked CSR matrix.  Float data
        of the other float type than `dtype` is not copied: C converts it a
        batch at a time.  check_range: refuse float64 values beyond a float32
        model's range now (prediction checks only when an output is not
        finite, see _forward_unlocked)."""
        floats = (np.float32, np.float64)
        if sp.issparse(X):
            X = X.tocsr()
            if X.dtype not in floats:
                X = X.astype(dtype)
                _cast_finite(X.data, dtype, "X")
            elif check_range:
                _check_range(X, dtype, "X")
            if X.indices.dtype != X.indptr.dtype:
                idx = np.result_type(X.indices.dtype, X.indptr.dtype)
                X.indices = X.indices.astype(idx)
                X.indptr = X.indptr.astype(idx)
            X.data = np.ascontiguousarray(X.data)
            X.indices = np.ascontiguousarray(X.indices)
            X.indptr = np.ascontiguousarray(X.indptr)
            return X  # its structure is checked by _core before C sees it
        X = np.asarray(X)
        if X.dtype not in floats:
            X = _cast_finite(X, dtype, "X")
        elif check_range:
            _check_range(X, dtype, "X")
        return X

    # ------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden = self._hidden_sizes()
        hidden_acts = self._hidden_activations(len(hidden))
        self._dropout_rates(len(hidden) + 1)
        self._per_layer("alpha", len(hidden) + 1)
        self._per_layer("max_norm", len(hidden) + 1)
        self._clip()
        self._check_solver_options()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
            total = float(np.sum(sample_weight, dtype=np.float64))
            if not (np.isfinite(total) and total > np.finfo(X.dtype).tiny):
                raise ValueError(f"sample_weight must have a positive, finite sum "
                                 f"representable in {X.dtype} (got {total}).")
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            compute = X.dtype if self.dtype is None else np.dtype(self.dtype)
            self._initialize(y, layer_units, compute, hidden_acts)
        dtype = self._model_dtype()
        X = self._as_core_X(X, dtype)
        y = np.ascontiguousarray(_cast_finite(y, dtype, "y"))
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(_cast_finite(sample_weight, dtype,
                                                              "sample_weight"))
        layout = self._layout()
        net = layout.network(dtype, **self._network_config(hidden_acts))
        params, stats = self._pack(layout, dtype)
        with blas_single_threaded():
            if self.solver == "lbfgs":
                self._fit_lbfgs(net, layout, params, stats, X, y, sample_weight)
            else:
                self._fit_stochastic(net, layout, params, stats, X, y, sample_weight,
                                     incremental)
        return self

    def _fit_lbfgs(self, net, layout, params, stats, X, y, sample_weight):
        grad = np.empty_like(params)
        start = params.copy()

        def fun(x):
            params[...] = x
            _, objective = _core.loss_grad(net, params, X, y, sample_weight, grad)
            if not (np.isfinite(objective) and np.isfinite(grad).all()):
                return np.inf, np.zeros_like(x)  # the line search backs off
            return objective, grad.astype(np.float64)

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # scipy >= 1.15 deprecates iprint; its value still matches sklearn's.
            warnings.simplefilter("ignore", DeprecationWarning)
            res = scipy.optimize.minimize(
                fun, params.astype(np.float64), method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         "iprint": iprint})
        self.n_iter_ = int(res.nit)
        if not np.isfinite(res.fun):
            self._unpack(layout, start, stats)
            raise DivergenceError(
                "lbfgs could not evaluate a finite loss (the loss or its gradient is NaN or "
                "infinite from the starting point); the model keeps its starting weights. "
                "Scale the inputs and targets (e.g. StandardScaler).")
        if res.status != 0:
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status={res.status}): {res.message}. Increase the number of "
                          "iterations (max_iter) or scale the data.", ConvergenceWarning)
        params[...] = res.x
        self.loss_, _ = _core.loss_grad(net, params, X, y, sample_weight, grad)
        self._unpack(layout, params, stats)
        self.history_["loss"].append(self.loss_)
        self.history_["time"].append(time.perf_counter() - t0)
        self._check_finite_weights()

    def _check_finite_weights(self):
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _new_optimizer_state(self, n_params, dtype):
        init = self.initial_accumulator_value if self.solver == "adagrad" else 0.0
        m = staggered_empty(n_params, dtype, SLOT_MOMENT_M)
        v = staggered_empty(n_params, dtype, SLOT_MOMENT_V)
        m[...] = init
        v[...] = 0
        return {"m": m, "v": v,
                "scalars": np.array([0.0, 1.0])}

    def _fit_stochastic(self, net, layout, params, stats, X, y, sample_weight, incremental):
        dtype = params.dtype
        net_has_dropout = any(r > 0 for r in self._dropout_rates(layout.n_layers))
        if not incremental or not hasattr(self, "_optimizer_state") \
                or self._optimizer_state["m"].shape != params.shape \
                or self._optimizer_state["m"].dtype != dtype:
            self._optimizer_state = self._new_optimizer_state(layout.n_params, dtype)
        opt = self._optimizer_state
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            should_stratify = is_classifier(self) and self.n_outputs_ == 1
            stratify = y if should_stratify else None
            arrays = [X, y] if sample_weight is None else [X, y, sample_weight]
            split = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, y_train, y_val = split[:4]
            sw_train, sw_val = (split[4], split[5]) if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val_labels = (self._label_binarizer.inverse_transform(y_val)
                            if is_classifier(self) else y_val)
            y_train = np.ascontiguousarray(y_train)
            if sw_train is not None:
                sw_train = np.ascontiguousarray(sw_train)
        else:
            X_train, y_train, sw_train = X, y, sample_weight
        n_samples = X_train.shape[0]
        batch_size = self._batch_size(n_samples)
        steps_per_epoch = -(-n_samples // batch_size)
        if not incremental or not hasattr(self, "_schedule"):
            self._schedule = make_schedule(self.learning_rate, power_t=self.power_t)
            self._schedule.start(float(self.learning_rate_init), n_epochs=self.max_iter,
                                 steps_per_epoch=steps_per_epoch, n_samples=n_samples)
            self._epoch = 0
        # sklearn's learning_rate strings only ever drive the 'sgd' solver.
        fixed_lr = (self.solver != "sgd" and isinstance(self.learning_rate, str)
                    and self.learning_rate in ("constant", "invscaling", "adaptive"))
        if fixed_lr:  # the same every epoch
            lrs = np.full(steps_per_epoch, float(self.learning_rate_init))
        # Drawn only when masks are needed, so that without dropout the random
        # stream (and so the shuffling) is exactly sklearn's.
        seed = int(self._random_state.randint(0, 2**31 - 1)) if net_has_dropout else 0
        order = np.arange(n_samples, dtype=np.int64)
        grad_norm_sum = np.zeros(layout.n_layers)
        monitor_grads = GradientMonitor()
        if early_stopping:
            best = (params.copy(), stats.copy())
        ctrl_c = InterruptAtEpochEnd()
        try:
            self.n_iter_ = 0  # per call, as sklearn (partial_fit leaves 1)
            for it in range(self.max_iter):
                t0 = time.perf_counter()
                if self.shuffle:
                    self._random_state.shuffle(order)
                if not fixed_lr:
                    # A fresh schedule's first epoch counts no samples seen (sklearn
                    # makes a new optimizer per fit: its first epoch runs at lr0).
                    seen = self.t_ if self._epoch > 0 else 0
                    lrs = np.ascontiguousarray(self._schedule.epoch_rates(
                        self._epoch, int(opt["scalars"][0]), steps_per_epoch, seen),
                        dtype=np.float64)
                grad_norm_sum[:] = 0
                try:
                    loss_sum, n_steps = self._train_one_epoch(
                        net, params, stats, opt, X_train, y_train, sw_train, order,
                        batch_size, lrs, seed, grad_norm_sum)
                except _core.NonFiniteError:
                    self._unpack(layout, params, stats)
                    raise DivergenceError(
                        f"Training diverged in epoch {self._epoch + 1}: the loss or a "
                        "gradient became NaN or infinite. The model keeps the last finite "
                        "weights. Try a lower learning_rate_init, gradient clipping "
                        "(clipnorm=1.0), batch_norm=True, or scaling the inputs.") from None
                self._epoch += 1
                self.n_iter_ += 1
                self.loss_ = loss_sum / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                h = self.history_
                h["loss"].append(self.loss_)
                h["lr"].append(float(lrs[-1]) if len(lrs) else float(self.learning_rate_init))
                h["grad_norm"].append(list(grad_norm_sum / max(n_steps, 1)))
                monitor_grads.check(self._epoch, h["grad_norm"][-1], layout.n_layers)
                monitor = self.loss_
                if early_stopping:
                    out = self._forward_flat(layout, params, stats, X_val)
                    val_loss = _loss_value(self._loss_name(), y_val, out, sw_val)
                    h["val_loss"].append(val_loss)
                    monitor = val_loss
                    val_score = self._score_from_output(out, y_val_labels, sw_val)
                    h["val_score"].append(val_score)
                    self.validation_scores_.append(val_score)
                    if val_score < self.best_validation_score_ + self.tol:
                        self._no_improvement_count += 1
                    else:
                        self._no_improvement_count = 0
                    if val_score > self.best_validation_score_:
                        self.best_validation_score_ = val_score
                        best = (params.copy(), stats.copy())
                else:
                    if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                        self._no_improvement_count += 1
                    else:
                        self._no_improvement_count = 0
                    if self.loss_curve_[-1] < self.best_loss_:
                        self.best_loss_ = self.loss_curve_[-1]
                # The epoch is fully recorded before any user code (a schedule)
                # runs, and before a held Ctrl-C stops the loop.
                h["time"].append(time.perf_counter() - t0)
                if self.verbose:
                    print(epoch_line(self._epoch, self.max_iter, h, h["time"][-1]), flush=True)
                self._schedule.end_epoch(monitor)
                if ctrl_c.requested:
                    raise KeyboardInterrupt
                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
                        msg = ("Validation score did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    else:
                        msg = ("Training loss did not improve more than tol=%f for %d "
                               "consecutive epochs." % (self.tol, self.n_iter_no_change))
                    stop = True if fixed_lr else self._schedule.on_no_improvement(
                        verbose=self.verbose, msg=msg)
                    if fixed_lr and self.verbose:
                        print(msg + " Stopping.")
                    if stop:
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            ctrl_c.close()
        if early_stopping and self.restore_best_weights:
            params, stats = best
        self._unpack(layout, params, stats)
        self._check_finite_weights()

    def _train_one_epoch(self, net, params, stats, opt, X, y, sample_weight, order,
                         batch_size, lrs, seed, grad_norm_sum):
        """One epoch in C: a single call, or (verbose >= 2) one call per chunk
        of steps so a progress bar can advance in between."""
        chunks = epoch_chunks(len(lrs), int(self.verbose))
        if len(chunks) == 1:
            return _core.train_epoch(net, params, stats, opt["m"], opt["v"], opt["scalars"],
                                     X, y, sample_weight, order, batch_size, lrs, seed,
                                     grad_norm_sum)
        bar = EpochProgress(self._epoch + 1, self.max_iter, len(lrs), int(self.verbose))
        loss_sum, n_steps = 0.0, 0
        try:
            for s0, s1 in chunks:
                rows = order[s0 * batch_size:s1 * batch_size]
                part_loss, part_steps = _core.train_epoch(
                    net, params, stats, opt["m"], opt["v"], opt["scalars"], X, y,
                    sample_weight, rows, batch_size, lrs[s0:s1], seed, grad_norm_sum)
                loss_sum += part_loss
                n_steps += part_steps
                bar.advance(s1 - s0, loss_sum / min(len(order), s1 * batch_size))
        finally:
            bar.close()
        return loss_sum, n_steps

    # ------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------
    def _validate_predict_X(self, X, ensure_all_finite=True):
        _check_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                          dtype=(np.float64, np.float32), ensure_all_finite=ensure_all_finite)
        return self._as_core_X(X, self._model_dtype(), check_range=ensure_all_finite)

    def _forward(self, X, mc_samples=0, return_std=False, check_input=False):
        mc_samples = _check_mc_samples(mc_samples)
        with blas_single_threaded():
            return self._forward_unlocked(X, mc_samples, return_std, check_input)

    def _forward_unlocked(self, X, mc_samples, return_std, check_input):
        """Output activations: BatchNorm folded into Dense (the same cost as a
        plain network) or, with mc_samples > 0, the mean (and std) of that many
        passes with dropout on and BatchNorm in inference mode."""
        # A plain pass over dense X checks X's finiteness itself, as a side
        # effect of the first layer (fnn_predict in fastnn.h): a separate
        # pass over X cost 5% of predict_proba on the chapter network.
        defer = check_input and not mc_samples and not sp.issparse(X)
        if defer:
            fast = self._plain_predict_X(X)
            X = fast if fast is not None else self._validate_predict_X(X, ensure_all_finite=False)
        elif check_input:
            X = self._validate_predict_X(X)
        else:
            X = self._as_core_X(X, self._model_dtype())
        if not mc_samples:
            inference = self._inference_network()
            out, nonfinite = _core.predict(inference.net, inference.params,
                                           inference.empty_stats, X, return_nonfinite=True)
            if defer and nonfinite:  # X's fault, or overflow of finite X
                _assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
                _check_range(X, self._model_dtype(), "X")
            return (out, np.zeros_like(out)) if return_std else out
        layout = self._layout()
        params, stats = self._pack(layout, self._model_dtype())
        return self._forward_flat(layout, params, stats, X, mc_samples, return_std,
                                  check_finite=defer)

    def _plain_predict_X(self, X):
        """X ready for the core without scikit-learn's validate_data, when X
        is a plain 2-D float ndarray of the fitted width and the estimator
        was fitted without feature names: validate_data would only confirm
        that (finiteness is checked by the first layer, see
        _forward_unlocked), and it is half the time of a one-row prediction.
        None otherwise: validate_data then raises or warns as scikit-learn."""
        if (type(X) is not np.ndarray or X.ndim != 2 or X.shape[0] < 1
                or X.dtype not in (np.float32, np.float64)):
            return None
        state = self.__dict__
        if "coefs_" not in state or "feature_names_in_" in state \
                or X.shape[1] != state.get("n_features_in_"):
            return None
        return X

    def _inference_key(self):
        """The settings that shape the inference network beside the arrays."""
        act = self.activation
        return (act if isinstance(act, str) else tuple(act), self.out_activation_,
                self._batch_norm_mode(), bool(self.batch_norm_input),
                float(self.batch_norm_epsilon), getattr(self, "negative_slope", None))

    def _inference_network(self):
        """The folded network for plain prediction, built once and reused
        while the fitted arrays and the settings that shape it stay the same
        (compared on every call: O(parameters), far less than a rebuild)."""
        arrays = [a for name in _FITTED_ARRAYS for a in (getattr(self, name, None) or [])
                  if a is not None]
        key = self._inference_key()
        cached = _INFERENCE_CACHE.get(self)
        if cached is None or not cached.built_from(key, arrays):
            layout = self._layout()
            dtype = self._model_dtype()
            params, stats = self._pack(layout, dtype)
            plain, folded = layout.fold(params, stats, float(self.batch_norm_epsilon))
            config = self._network_config(self._hidden_activations(len(self._hidden_sizes())))
            config["dropout"] = None
            cached = _InferenceNetwork(key, arrays, plain.network(dtype, **config), folded)
            _INFERENCE_CACHE[self] = cached
        cached.net.n_threads = n_threads()  # follows threadpoolctl limits, fork
        return cached

    def _forward_flat(self, layout, params, stats, X, mc_samples=0, return_std=False,
                      check_finite=False):
        """_forward on the flat parameter and statistics vectors (used as they
        are during fit, without a round trip through coefs_ and the BN lists).
        check_finite: raise sklearn's error if X holds NaN or infinity."""
        dtype = params.dtype
        hidden_acts = self._hidden_activations(len(self._hidden_sizes()))
        config = self._network_config(hidden_acts)
        if mc_samples:
            net = layout.network(dtype, **config)
            rng = check_random_state(self.random_state)
            seeds = rng.randint(0, 2**31 - 1, size=mc_samples)
            # Welford's running mean and sum of squared deviations: exact zero
            # spread when every pass agrees (no dropout).
            mean = m2 = None
            for k, seed in enumerate(seeds, start=1):
                out = _core.predict(net, params, stats, X, dropout_on=True,
                                    seed=int(seed)).astype(np.float64)
                if mean is None:
                    mean, m2 = out, np.zeros_like(out)
                else:
                    delta = out - mean
                    mean = mean + delta / k
                    m2 += delta * (out - mean)
            if return_std:
                return mean.astype(dtype), np.sqrt(m2 / len(seeds)).astype(dtype)
            return mean.astype(dtype)
        plain, folded = layout.fold(params, stats, float(self.batch_norm_epsilon))
        config["dropout"] = None
        net = plain.network(dtype, **config)
        out, nonfinite = _core.predict(net, folded, np.empty(0, dtype=dtype), X,
                                       return_nonfinite=True)
        if check_finite and nonfinite:  # X's fault, or overflow of finite X
            _assert_all_finite(X, input_name="X", estimator_name=type(self).__name__)
        if return_std:
            return out, np.zeros_like(out)
        return out

    def _score_from_output(self, out, y_true, sample_weight):
        """Validation score (accuracy or R^2) from output activations."""
        y_pred = self._output_to_prediction(out)
        if np.issubdtype(np.asarray(y_pred).dtype, np.floating) and \
                not np.isfinite(y_pred).all():
            return np.nan
        return self._score_function(y_true, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
