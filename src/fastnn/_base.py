"""Shared estimator logic: validation, initialization, the epoch loop driver,
lbfgs, early stopping, prediction (BatchNorm folded, or MC dropout).

The per-sample work all happens in C (fastnn._core); Python does O(layers)
work per epoch.
"""

import copy
import time
import warnings
import weakref
from numbers import Integral, Real
from types import SimpleNamespace

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import (_assert_all_finite, _check_sample_weight, check_array,
                                      check_consistent_length, check_is_fitted, column_or_1d,
                                      validate_data)

from . import _core
from ._callbacks import CALLBACK_STATE, CallbackSupportMixin, FitCallbacks
from ._threads import adaptive_threads, blas_single_threaded, n_threads
from ._init import INITIALIZERS, init_kernel, init_sklearn_layer, resolve_initializer
from ._network import SLOT_MOMENT_M, SLOT_MOMENT_V, Layout, staggered_zeros
from ._progress import (EpochProgress, GradientMonitor, InterruptAtEpochEnd, epoch_chunks,
                        epoch_line)
from .schedules import SCHEDULE_NAMES, make_schedule
from .transfer import copy_initial_layers

HIDDEN_ACTIVATIONS = _core.HIDDEN_ACTIVATIONS
STOCHASTIC_SOLVERS = tuple(_core.SOLVERS)  # every solver of the C core; lbfgs is scipy's
#: Where the documentation site built from docs/ is published; the estimators'
#: HTML repr (Jupyter) links to their page under it.
DOCS_URL = "https://fastnn.readthedocs.io/en/latest/"


# scikit-learn's error for a fit that ends with NaN or infinite weights; every
# divergence error starts with it, so code written for scikit-learn matches it.
NONFINITE_WEIGHTS_MSG = ("Solver produced non-finite parameter weights. The input data may "
                         "contain large values and need to be preprocessed.")


# Inference networks of fitted estimators (BatchNorm folded, the C descriptor
# built), kept outside the estimators themselves: predict must not change an
# estimator's __dict__ (scikit-learn's check_dict_unchanged) nor its pickle.
_INFERENCE_CACHE = weakref.WeakKeyDictionary()


class _InferenceNetwork:
    """A folded network ready for _core.predict, with copies of the fitted
    arrays it was built from and the settings that shaped it."""

    def __init__(self, key, arrays, net, params):
        self.key, self.net, self.params = key, net, params
        self.arrays = [np.ascontiguousarray(a).copy() for a in arrays]
        self.empty_stats = np.empty(0, dtype=params.dtype)

    def built_from(self, key, arrays):
        """True when key and every array (shape, dtype, values) are the same:
        an array a user assigned, or edited in place, is seen."""
        return key == self.key and _core.same_arrays(arrays, self.arrays)


def _check_fitted(est):
    """scikit-learn's check_is_fitted, without its scan of every attribute
    (a tenth of a one-row prediction) when coefs_ is there."""
    if "coefs_" not in est.__dict__:
        check_is_fitted(est)  # NotFittedError, as scikit-learn
        est._check_fitted_state()  # fitted, yet coefs_ gone: a ValueError naming it


OUTPUT_ACTIVATIONS = ("identity", "exp", "logistic", "softmax")
# Fitted arrays a fit only ever replaces, never writes into: a fit shares
# them instead of copying (see BaseMultilayerPerceptron._fit).
WEIGHT_LISTS = ("coefs_", "intercepts_", "bn_gamma_", "bn_beta_", "bn_moving_mean_",
                "bn_moving_var_")


class DivergenceError(ValueError):
    """Training diverged: the loss or a gradient became NaN or infinite.

    The estimator keeps the last finite weights and can still predict."""


def _divergence_error(epoch):
    return DivergenceError(
        f"{NONFINITE_WEIGHTS_MSG} Training diverged in epoch {epoch}: the loss or a "
        "gradient became NaN or infinite. The model keeps the last finite weights. Try a "
        "lower learning_rate_init, gradient clipping (clipnorm=1.0), batch_norm=True, or "
        "scaling the inputs.")


def _warn_diverged_early_stopping(epoch):
    """scikit-learn's behaviour when early stopping meets divergence: no error,
    NaN validation scores for the remaining epochs, the best epoch's weights."""
    warnings.warn(
        f"Training diverged in epoch {epoch}: the loss or a gradient became NaN or "
        "infinite. As scikit-learn, the remaining epochs record NaN losses and validation "
        "scores and early stopping restores the best epoch's weights. Try a lower "
        "learning_rate_init, gradient clipping (clipnorm=1.0) or scaling the inputs.",
        ConvergenceWarning, stacklevel=6)


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


def _checked_sample_weight(sample_weight, X, name):
    """scikit-learn's check of sample weights for X, and a positive, finite
    sum in X's float type (losses and scores divide by it)."""
    if sample_weight is None:
        return None
    sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
    total = float(np.sum(sample_weight, dtype=np.float64))
    if not (np.isfinite(total) and total > np.finfo(X.dtype).tiny):
        raise ValueError(f"{name} must have a positive, finite sum representable in "
                         f"{X.dtype} (got {total}).")
    return sample_weight


def _check_mc_samples(mc_samples):
    if type(mc_samples) is int and mc_samples >= 0:  # the common case, without ABC checks
        return mc_samples
    if isinstance(mc_samples, (bool, np.bool_)) or not isinstance(mc_samples, Integral) \
            or mc_samples < 0:
        raise ValueError(f"mc_samples must be a non-negative integer, got {mc_samples!r}.")
    return int(mc_samples)


class BaseMultilayerPerceptron(CallbackSupportMixin, BaseEstimator):
    """Shared base of MLPClassifier and MLPRegressor (not for direct use)."""

    # scikit-learn's HTML repr links to "{module}.{name}.html" under this
    # template, where module is the public one ("fastnn" for fastnn._mlp).
    _doc_link_module = "fastnn"
    _doc_link_template = DOCS_URL + "api/generated/{estimator_module}.{estimator_name}.html"

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
        "kernel_initializer": [StrOptions(set(INITIALIZERS)), HasMethods(["draw_kernel"])],
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
        "frozen_layers": [Interval(Integral, 0, None, closed="left")],
        "initial_layers": [None, dict, HasMethods(["predict"])],
        "monitor": [StrOptions({"val_score", "val_loss"})],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size,
                 learning_rate, learning_rate_init, power_t, max_iter, loss, shuffle,
                 random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
                 early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                 n_iter_no_change, max_fun, rho, initial_accumulator_value,
                 kernel_initializer, batch_norm, batch_norm_input, batch_norm_momentum,
                 batch_norm_epsilon, clipvalue, clipnorm, global_clipnorm, penalty, l1_ratio,
                 dropout, dropout_kind, max_norm, restore_best_weights, dtype,
                 negative_slope, weight_decay, frozen_layers, initial_layers, monitor):
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
        self.frozen_layers = frozen_layers
        self.initial_layers = initial_layers
        self.monitor = monitor

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

    def _frozen_layers(self, n_layers):
        k = self.frozen_layers
        if k >= n_layers:
            raise ValueError(f"frozen_layers={k} must be smaller than the number of Dense "
                             f"layers (len(hidden_layer_sizes) + 1 = {n_layers}): the output "
                             "layer is always trained.")
        return int(k)

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
            frozen_layers=self._frozen_layers(L),
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
        self.out_activation_ = self._output_activation()
        self._initialize_weights(layer_units, dtype, hidden_acts)
        self._initialize_batch_norm(layer_units, dtype)
        if self.initial_layers is not None:
            copy_initial_layers(self, self.initial_layers, layer_units, hidden_acts)
        self._initialize_history()
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

    def _output_activation(self):
        if not is_classifier(self):
            return "exp" if self.loss == "poisson" else "identity"
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax"
        return "logistic"

    def _complete_state(self, layer_units):
        """Create what a warm start or partial_fit needs and a model whose
        coefs_ and intercepts_ were set by hand may lack (fastnn's own
        attributes such as bn_gamma_ and history_, and the bookkeeping a fresh
        fit starts), as _initialize would, without touching the weights."""
        dtype = self._model_dtype()
        if not hasattr(self, "bn_gamma_"):
            self._initialize_batch_norm(layer_units, dtype)
        if not hasattr(self, "history_"):
            self._initialize_history()
        if self.early_stopping:
            self.history_.setdefault("val_loss", [])
            self.history_.setdefault("val_score", [])
        defaults = {"n_iter_": 0, "t_": 0, "n_layers_": len(layer_units),
                    "n_features_in_": layer_units[0]}
        if not hasattr(self, "out_activation_"):
            defaults["out_activation_"] = self._output_activation()
        if self.solver != "lbfgs":
            defaults.update(loss_curve_=[], _no_improvement_count=0,
                            best_loss_=None if self.early_stopping else np.inf,
                            validation_scores_=[] if self.early_stopping else None,
                            best_validation_score_=-np.inf if self.early_stopping else None)
        for name, value in defaults.items():
            if not hasattr(self, name):
                setattr(self, name, value)

    def _initialize_weights(self, layer_units, dtype, hidden_acts):
        """Draw coefs_ and intercepts_, layer by layer from self._random_state.

        Each layer follows kernel_initializer resolved for its activation; the
        output layer's activation is, as in scikit-learn, the `activation`
        parameter (the last hidden one when given per layer). scikit-learn's
        scheme draws kernel and bias; with a Keras initializer the output
        layer keeps Keras's Dense default (Glorot uniform) and biases start at
        0. With kernel_initializer='auto' and scikit-learn's activations this
        is scikit-learn's _init_coef draw for draw."""
        if isinstance(self.activation, str):
            output_act = self.activation
        else:
            output_act = hidden_acts[-1] if hidden_acts else "identity"
        self.coefs_, self.intercepts_ = [], []
        for l, act in enumerate(hidden_acts + [output_act]):
            fan_in, fan_out = layer_units[l], layer_units[l + 1]
            name = resolve_initializer(self.kernel_initializer, act)
            if name == "sklearn":
                kernel, bias = init_sklearn_layer(fan_in, fan_out, act, self._random_state,
                                                  dtype)
            else:
                if l == len(hidden_acts):
                    name = "glorot_uniform"
                kernel = init_kernel(name, fan_in, fan_out, self._random_state, dtype)
                bias = np.zeros(fan_out, dtype=dtype)
            self.coefs_.append(kernel)
            self.intercepts_.append(bias)

    def _initialize_batch_norm(self, layer_units, dtype):
        """bn_* lists: gamma 1, beta 0, moving mean 0, moving variance 1 where
        a BatchNorm layer is, None elsewhere."""
        layout = Layout(layer_units, self._batch_norm_mode(), self.batch_norm_input)
        self.bn_gamma_, self.bn_beta_ = [], []
        self.bn_moving_mean_, self.bn_moving_var_ = [], []
        for s in range(layout.n_layers):
            w = layer_units[s]
            have = layout.has_bn(s)
            self.bn_gamma_.append(np.ones(w, dtype=dtype) if have else None)
            self.bn_beta_.append(np.zeros(w, dtype=dtype) if have else None)
            self.bn_moving_mean_.append(np.zeros(w, dtype=dtype) if have else None)
            self.bn_moving_var_.append(np.ones(w, dtype=dtype) if have else None)

    def _initialize_history(self):
        self.history_ = {"loss": [], "lr": [], "grad_norm": [], "time": []}
        if self.early_stopping:
            self.history_["val_loss"] = []
            self.history_["val_score"] = []

    def _model_dtype(self):
        return self.coefs_[0].dtype

    def _pack(self, layout, dtype):
        return layout.pack(self.coefs_, self.intercepts_, self.bn_gamma_, self.bn_beta_,
                           self.bn_moving_mean_, self.bn_moving_var_, dtype)

    def _unpack(self, layout, params, stats):
        (self.coefs_, self.intercepts_, self.bn_gamma_, self.bn_beta_,
         self.bn_moving_mean_, self.bn_moving_var_) = layout.unpack(params, stats, copy=False)

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
            X = X.tocsr()  # may be the caller's matrix: never assign to its attributes
            data = X.data
            if data.dtype not in floats:
                data = _cast_finite(data, dtype, "X")
            elif check_range:
                _check_range(X, dtype, "X")
            indices, indptr = X.indices, X.indptr
            if indices.dtype != indptr.dtype:
                idx = np.result_type(indices.dtype, indptr.dtype)
                indices, indptr = indices.astype(idx), indptr.astype(idx)
            X = sp.csr_matrix((np.ascontiguousarray(data), np.ascontiguousarray(indices),
                               np.ascontiguousarray(indptr)), shape=X.shape, copy=False)
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
    def _fit(self, X, y, sample_weight=None, incremental=False, setup=None, X_val=None,
             y_val=None, sample_weight_val=None):
        """fit and partial_fit, all or nothing (README, "When a call fails");
        setup: the caller's own first changes to the estimator, made inside;
        X_val, y_val, sample_weight_val: fit's own validation data.

        The call trains on its own writeable copies of the fitted state (the
        originals may be read-only: a joblib mmap_mode='r' load, out-of-band
        pickle buffers) and is never written into. When it raises, the
        estimator gets its state from before the call back, except after a
        DivergenceError, which documents that the model keeps the last
        finite epoch. A callback that raises (scikit-learn's callback API,
        fastnn._callbacks) fails the call like any other error."""
        callbacks = FitCallbacks(self, X, y, sample_weight, incremental)
        before = dict(vars(self))
        appended_to = self._detach_fitted_state()
        try:
            if setup is not None:
                setup()
            self._fit_callbacks = callbacks  # for the epoch and lbfgs loops
            self._fit_once(X, y, sample_weight, incremental, X_val, y_val, sample_weight_val)
            callbacks.end_fit()
            return self
        except DivergenceError:
            raise
        except BaseException:
            for history, length in appended_to:
                del history[length:]
            vars(self).clear()
            vars(self).update(before)
            raise
        finally:
            vars(self).pop("_fit_callbacks", None)

    def _detach_fitted_state(self):
        """Replace every fitted attribute (a name that starts or ends with an
        underscore, by scikit-learn's convention) by a deep copy, except the
        weight arrays (a fit replaces them, never writes into them),
        _random_state (every fit makes a new one), _optimizer_state (a fit
        replaces it; partial_fit with a copy, _optimizer_state_for), the
        callback API's state (CALLBACK_STATE: shared with the callbacks) and
        the history lists (loss_curve_, history_'s lists: a fit only appends
        to them; copying them made a loop of partial_fit calls quadratic).
        Returns those lists with their lengths, to cut them back after a
        failure."""
        fitted = [name for name in vars(self) if name.startswith("_") or name.endswith("_")]
        memo, appended_to = {}, []
        for name in fitted:
            value = getattr(self, name)
            if name in ("_random_state", "_optimizer_state") or name in CALLBACK_STATE:
                memo[id(value)] = value
            elif name in WEIGHT_LISTS:
                memo.update((id(a), a) for a in value or ())
            else:
                for v in value.values() if isinstance(value, dict) else (value,):
                    if isinstance(v, list):
                        memo[id(v)] = v
                        appended_to.append((v, len(v)))
        for name in fitted:
            setattr(self, name, copy.deepcopy(getattr(self, name), memo))
        return appended_to

    def _check_float_params(self, dtype):
        """Stability terms that vanish in the model's dtype would divide by
        zero (epsilon=1e-50 is 0 in float32): a ValueError naming them, not
        NaN weights blamed on the data."""
        tiny = np.finfo(dtype).tiny
        used = []
        if self.solver in STOCHASTIC_SOLVERS and self.solver != "sgd":
            used.append("epsilon")
        if self._batch_norm_mode() or self.batch_norm_input:
            used.append("batch_norm_epsilon")
        for name in used:
            value = getattr(self, name)
            if value < tiny:
                raise ValueError(f"{name}={value!r} is below the smallest normal {dtype} "
                                 f"({tiny:.3g}) and would divide by zero; use a larger "
                                 f"{name}" + (" or fit on float64 data" if dtype == np.float32
                                              else "") + ".")

    def _check_fitted_state(self, training=False, values=True):
        """A ValueError naming the attribute when the fitted state cannot be
        used (a corrupted or hand-edited pickle), before anything reaches C.
        training: also the state partial_fit and warm_start continue from;
        values: with training, also the weights' values (O(parameters))."""
        def corrupted(name, what):
            raise ValueError(f"Corrupted fitted state: {name} {what}.")

        required = ["n_outputs_", "n_layers_", "out_activation_", *WEIGHT_LISTS]
        if isinstance(self, ClassifierMixin):  # is_classifier's tags cost a third of this
            required.append("_label_binarizer")
        for name in required:
            if not hasattr(self, name):
                corrupted(name, "is missing")
        coefs = self.coefs_
        if not isinstance(coefs, list) or not coefs:
            corrupted("coefs_", "must be a non-empty list of arrays")
        for name in WEIGHT_LISTS:
            value = getattr(self, name)
            if not isinstance(value, list) or len(value) != len(coefs):
                corrupted(name, f"must be a list of {len(coefs)} entries")
        dtype = getattr(coefs[0], "dtype", None)
        if dtype not in (np.float32, np.float64):
            corrupted("coefs_[0]", "must be a float32 or float64 array")
        for name in WEIGHT_LISTS:
            for i, a in enumerate(getattr(self, name)):
                if a is None and name.startswith("bn_"):
                    continue
                ndim = 2 if name == "coefs_" else 1
                if not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != ndim:
                    corrupted(f"{name}[{i}]", f"must be a {ndim}-D {dtype} array")
        if self.out_activation_ not in OUTPUT_ACTIVATIONS:
            corrupted("out_activation_", f"is {self.out_activation_!r}, not one of "
                      f"{OUTPUT_ACTIVATIONS}")
        if self.n_layers_ != len(coefs) + 1:
            corrupted("n_layers_", f"is {self.n_layers_!r} but coefs_ has {len(coefs)} layers")
        if self.n_outputs_ != coefs[-1].shape[1]:
            corrupted("n_outputs_", f"is {self.n_outputs_!r} but coefs_[-1] has "
                      f"{coefs[-1].shape[1]} columns")
        if getattr(self, "n_features_in_", coefs[0].shape[0]) != coefs[0].shape[0]:
            corrupted("n_features_in_", f"is {self.n_features_in_!r} but coefs_[0] has "
                      f"{coefs[0].shape[0]} rows")
        if not training:
            return
        if values:
            self._check_fitted_values()
        if self.solver == "lbfgs":
            return
        for name, kind, what in (("t_", Integral, "an int"), ("loss_curve_", list, "a list"),
                                 ("history_", dict, "a dict"),
                                 ("_no_improvement_count", Integral, "an int")):
            if not isinstance(getattr(self, name, None), kind):
                corrupted(name, f"must be {what}")
        opt = getattr(self, "_optimizer_state", None)
        if opt is not None:
            if not isinstance(opt, dict) or set(opt) != {"m", "v", "scalars"}:
                corrupted("_optimizer_state", "must be a dict with 'm', 'v' and 'scalars'")
            for key, shape in (("m", None), ("v", None), ("scalars", (2,))):
                a = opt[key]
                if not isinstance(a, np.ndarray) or a.ndim != 1 or \
                        (shape is not None and (a.shape != shape or a.dtype != np.float64)):
                    corrupted(f"_optimizer_state[{key!r}]", "has the wrong type or shape")
        if hasattr(self, "_schedule") and not isinstance(getattr(self, "_epoch", None),
                                                         Integral):
            corrupted("_epoch", "must be an int")

    def _check_fitted_values(self):
        """A ValueError naming the first weight array with a NaN or infinite
        value, or a negative moving variance. O(parameters): predict runs it
        only when the packed or folded weights are not all finite."""
        for name in WEIGHT_LISTS:
            for i, a in enumerate(getattr(self, name)):
                if a is None:
                    continue
                if not np.isfinite(a).all():
                    raise ValueError(f"Corrupted fitted state: {name}[{i}] holds NaN or "
                                     "infinite values.")
                if name == "bn_moving_var_" and (a < 0).any():
                    raise ValueError(f"Corrupted fitted state: {name}[{i}] holds negative "
                                     "variances.")

    def _state_from_a_fit(self):
        """Whether the fitted state was written by a fastnn fit rather than
        set by hand.  A fit writes history_ and bn_gamma_ (fastnn's own) and
        scikit-learn's scalars such as n_outputs_; a user sets coefs_ and
        intercepts_, maybe the BatchNorm arrays, maybe scikit-learn's scalars
        (scikit-learn's own test_fit does), never history_."""
        state = self.__dict__
        return "history_" in state or ("bn_gamma_" in state and "n_outputs_" in state)

    def _fit_once(self, X, y, sample_weight=None, incremental=False, X_val=None, y_val=None,
                  sample_weight_val=None):
        validating_on_given_data = self._check_validation_arguments(X_val, y_val,
                                                                    sample_weight_val)
        hidden = self._hidden_sizes()
        hidden_acts = self._hidden_activations(len(hidden))
        self._dropout_rates(len(hidden) + 1)
        self._per_layer("alpha", len(hidden) + 1)
        self._per_layer("max_norm", len(hidden) + 1)
        self._frozen_layers(len(hidden) + 1)
        self._clip()
        self._check_solver_options()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        checked_early = not first_pass and self._state_from_a_fit()
        if checked_early:
            # A corrupted attribute is named before anything else.  Weights
            # set by hand are completed first (_complete_state), then checked.
            self._check_fitted_state(training=True)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = _checked_sample_weight(sample_weight, X, "sample_weight")
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        validation = None
        if validating_on_given_data:
            # After X and y: X_val is held to X's features, y_val to y's classes.
            X_val, y_val = self._validate_val_input(X_val, y_val)
            if y_val.ndim == 1:
                y_val = y_val.reshape((-1, 1))
            if y_val.shape[1] != y.shape[1]:
                raise ValueError(f"y_val has {y_val.shape[1]} output(s) but y has "
                                 f"{y.shape[1]}.")
            validation = (X_val, y_val, _checked_sample_weight(sample_weight_val, X_val,
                                                               "sample_weight_val"))
        if not first_pass and y.shape[1] != getattr(self, "n_outputs_", y.shape[1]):
            raise ValueError(f"y has {y.shape[1]} output(s) but the model was fitted with "
                             f"{self.n_outputs_}; warm_start and partial_fit continue the "
                             "same model.")
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            compute = X.dtype if self.dtype is None else np.dtype(self.dtype)
            self._initialize(y, layer_units, compute, hidden_acts)
        else:
            self._complete_state(layer_units)  # touches no weight: values checked once
            self._check_fitted_state(training=True, values=not checked_early)
        dtype = self._model_dtype()
        self._check_float_params(dtype)
        X = self._as_core_X(X, dtype)
        y = np.ascontiguousarray(_cast_finite(y, dtype, "y"))
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(_cast_finite(sample_weight, dtype,
                                                              "sample_weight"))
        if validation is not None:
            X_val, y_val, sample_weight_val = validation
            validation = (self._as_core_X(X_val, dtype),
                          np.ascontiguousarray(_cast_finite(y_val, dtype, "y_val")),
                          None if sample_weight_val is None else np.ascontiguousarray(
                              _cast_finite(sample_weight_val, dtype, "sample_weight_val")))
        layout = self._layout()
        net = layout.network(dtype, **self._network_config(hidden_acts))
        params, stats = self._pack(layout, dtype)
        with blas_single_threaded():
            if self.solver == "lbfgs":
                self._fit_lbfgs(net, layout, params, stats, X, y, sample_weight)
            else:
                self._fit_stochastic(net, layout, params, stats, X, y, sample_weight,
                                     incremental, validation)
        return self

    def _check_validation_arguments(self, X_val, y_val, sample_weight_val):
        """True when fit was given its own validation data; HistGradientBoosting's
        errors when half of it is missing."""
        if X_val is None and y_val is None:
            if sample_weight_val is not None:
                raise ValueError("sample_weight_val is provided, but X_val and y_val were "
                                 "not provided.")
            return False
        if y_val is None:
            raise ValueError("X_val is provided, but y_val was not provided.")
        if X_val is None:
            raise ValueError("y_val is provided, but X_val was not provided.")
        if self.solver == "lbfgs":
            raise ValueError("X_val and y_val need a stochastic solver: solver='lbfgs' "
                             "has no epochs to validate.")
        return True

    def _validate_val_arrays(self, X_val, y_val, **y_checks):
        """X_val checked as predict checks X: finite, at least 2 samples (as
        the validation split), the fitted features (count and names); y_val
        by check_array with y_checks, as long as X_val, one column made 1-D
        (as y). The estimators check y_val's values themselves."""
        checked = check_array(X_val, accept_sparse=["csr", "csc"],
                              dtype=(np.float64, np.float32), ensure_min_samples=2,
                              input_name="X_val", estimator=self)
        validate_data(self, X_val, reset=False, skip_check_array=True)  # names, count
        y_val = check_array(y_val, ensure_2d=False, input_name="y_val", estimator=self,
                            **y_checks)
        check_consistent_length(checked, y_val)
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        return checked, y_val

    def _fit_lbfgs(self, net, layout, params, stats, X, y, sample_weight):
        grad = np.empty_like(params)
        start = params.copy()
        callbacks = self._fit_callbacks
        # L-BFGS-B sees only the trainable parameters (frozen_layers).
        trained = slice(None) if not self.frozen_layers else \
            layout.trainable(self.frozen_layers)

        def fun(x):
            callbacks.lbfgs_evaluation()
            params[trained] = x
            _, objective = _core.loss_grad(net, params, X, y, sample_weight, grad)
            g = grad[trained]
            if not (np.isfinite(objective) and np.isfinite(g).all()):
                return np.inf, np.zeros_like(x)  # the line search backs off
            return objective, g.astype(np.float64)

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # scipy >= 1.15 deprecates iprint; its value still matches sklearn's.
            warnings.simplefilter("ignore", DeprecationWarning)
            res = scipy.optimize.minimize(
                fun, params[trained].astype(np.float64), method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         "iprint": iprint},
                callback=callbacks.lbfgs_callback(layout, start, stats, trained))
        self.n_iter_ = int(res.nit)
        if not np.isfinite(res.fun):
            self._unpack(layout, start, stats)
            raise DivergenceError(
                f"{NONFINITE_WEIGHTS_MSG} "
                "lbfgs could not evaluate a finite loss (the loss or its gradient is NaN or "
                "infinite from the starting point); the model keeps its starting weights. "
                "Scale the inputs and targets (e.g. StandardScaler).")
        if res.status != 0 and not callbacks.stopped:
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status={res.status}): {res.message}. Increase the number of "
                          "iterations (max_iter) or scale the data.", ConvergenceWarning)
        params[trained] = res.x
        self.loss_, _ = _core.loss_grad(net, params, X, y, sample_weight, grad)
        self._unpack(layout, params, stats)
        self.history_["loss"].append(self.loss_)
        self.history_["time"].append(time.perf_counter() - t0)
        self._check_finite_weights()

    def _check_finite_weights(self):
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError(NONFINITE_WEIGHTS_MSG)

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _v_length(self, n_params):
        """v's length: the solvers without a second moment keep an empty v,
        so a fit neither allocates nor copies a vector it never reads."""
        return n_params if self.solver in _core.SOLVERS_WITH_V else 0

    def _new_optimizer_state(self, n_params, dtype):
        init = self.initial_accumulator_value if self.solver == "adagrad" else 0.0
        m = staggered_zeros(n_params, dtype, SLOT_MOMENT_M)
        v = staggered_zeros(self._v_length(n_params), dtype, SLOT_MOMENT_V)
        if init:
            m[...] = init
        return {"m": m, "v": v,
                "scalars": np.array([0.0, 1.0])}

    def _fit_stochastic(self, net, layout, params, stats, X, y, sample_weight, incremental,
                        validation=None):
        """The epoch loop of the stochastic solvers, as sklearn's: train an
        epoch, record it, update the no-improvement count, stop or go on."""
        run = self._start_stochastic(net, layout, params, stats, X, y, sample_weight,
                                     incremental, validation)
        ctrl_c = InterruptAtEpochEnd()
        try:
            self.n_iter_ = 0  # per call, as sklearn (partial_fit leaves 1)
            for it in range(self.max_iter):
                t0 = time.perf_counter()
                self._fit_callbacks.begin_epoch(run)
                lrs, loss_sum, n_steps = self._run_epoch(run)
                monitor = self._record_epoch(run, lrs, loss_sum, n_steps)
                # The epoch is fully recorded before any user code (a schedule)
                # runs, and before a held Ctrl-C stops the loop.
                self.history_["time"].append(time.perf_counter() - t0)
                if self.verbose:
                    self._print_epoch(run.val is not None)
                self._schedule.end_epoch(monitor)
                if self._fit_callbacks.end_epoch(run):  # a callback asked to stop
                    break
                if ctrl_c.requested:
                    raise KeyboardInterrupt
                if self._stop_without_improvement(run) or incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            ctrl_c.close()
        if self.early_stopping and self.restore_best_weights:
            run.params, run.stats = run.best
        self._unpack(layout, run.params, run.stats)
        self._check_finite_weights()

    def _start_stochastic(self, net, layout, params, stats, X, y, sample_weight, incremental,
                          validation=None):
        """Everything one stochastic fit keeps across its epochs, in one
        namespace: the network and its buffers, optimizer state, the training
        data and validation data (given, or split off for early stopping),
        batch size, rates, seed."""
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        opt, opt_from = self._optimizer_state_for(layout, params, incremental)
        (*train, rows), val = self._split_validation(X, y, sample_weight, validation)
        if val is not None:
            self._start_validation_record()
        n_samples = len(rows)
        batch_size = self._batch_size(n_samples)
        steps_per_epoch = -(-n_samples // batch_size)
        self._start_schedule(n_samples, steps_per_epoch, incremental)
        # sklearn's learning_rate strings only ever drive the 'sgd' solver.
        fixed_lr = (self.solver != "sgd" and isinstance(self.learning_rate, str)
                    and self.learning_rate in ("constant", "invscaling", "adaptive"))
        # Drawn only when masks are needed, so that without dropout the random
        # stream (and so the shuffling) is exactly sklearn's.
        net_has_dropout = any(r > 0 for r in self._dropout_rates(layout.n_layers))
        seed = int(self._random_state.randint(0, 2**31 - 1)) if net_has_dropout else 0
        return SimpleNamespace(
            net=net, layout=layout, params=params, stats=stats, opt=opt, opt_from=opt_from,
            train=train, val=val, n_samples=n_samples, batch_size=batch_size,
            steps_per_epoch=steps_per_epoch, incremental=incremental,
            fixed_lrs=(np.full(steps_per_epoch, float(self.learning_rate_init))
                       if fixed_lr else None),
            seed=seed, order=rows,
            grad_norm_sum=np.zeros(layout.n_layers), monitor_grads=GradientMonitor(),
            best=(params.copy(), stats.copy()) if val is not None else None,
            best_val_loss=None, diverged=False)

    def _optimizer_state_for(self, layout, params, incremental):
        """The optimizer's state for this call, and the state it continues
        (None when fresh).  partial_fit keeps its moments: it trains on a copy
        (a fit never writes into the fitted state, _fit), and the original,
        left as it was, is what the call's first epoch rolls back to."""
        opt = getattr(self, "_optimizer_state", None)
        if not incremental or opt is None or opt["m"].shape != params.shape \
                or opt["m"].dtype != params.dtype \
                or opt["v"].shape != (self._v_length(params.size),):
            self._optimizer_state = self._new_optimizer_state(layout.n_params, params.dtype)
            return self._optimizer_state, None
        self._optimizer_state = {key: a.copy() for key, a in opt.items()}
        return self._optimizer_state, opt

    def _split_validation(self, X, y, sample_weight, validation=None):
        """(X, y, sample_weight, rows) to train on, and the validation data
        (X, y, labels, sample_weight): fit's X_val, y_val, sample_weight_val
        when given (nothing is split off), else with early stopping split off
        as sklearn does (same draws); None when not validating.  rows: the
        indices of X's training rows, in sklearn's X_train order.  The C
        epoch gathers its batches through them, so the training rows are
        never copied out of X (sklearn copies them: on the chapter data,
        54,000 x 784 floats, that copy took 0.4-0.5 s, about half an epoch)."""
        rows = np.arange(X.shape[0], dtype=np.int64)
        if validation is not None:
            X_val, y_val, sw_val = validation
            return (X, y, sample_weight, rows), (X_val, y_val, self._val_labels(y_val), sw_val)
        if not self.early_stopping:
            return (X, y, sample_weight, rows), None
        should_stratify = is_classifier(self) and self.n_outputs_ == 1
        # On the binarized target as bool, as sklearn: y is already cast to
        # the model's float dtype, and the split's errors name its classes.
        stratify = (y != 0) if should_stratify else None
        # Splitting the indices draws what splitting the arrays draws: the
        # splitter sees only the row count and `stratify`.
        rows, val_rows = train_test_split(rows, random_state=self._random_state,
                                          test_size=self.validation_fraction, stratify=stratify)
        if len(val_rows) < 2:
            raise ValueError("The validation set is too small. Increase "
                             "'validation_fraction' or the size of your dataset.")
        y_val = y[val_rows]
        sw_val = None if sample_weight is None else sample_weight[val_rows]
        return ((X, y, sample_weight, rows),
                (_safe_indexing(X, val_rows), y_val, self._val_labels(y_val), sw_val))

    def _val_labels(self, y_val):
        """What the validation score compares predictions with: the labels
        (classifier) of the binarized y_val, else y_val itself."""
        return self._label_binarizer.inverse_transform(y_val) if is_classifier(self) else y_val

    def _start_validation_record(self):
        """validation_scores_, best_validation_score_ and history_'s
        validation lists, for a fit that validates after one (warm start)
        or an initialization (early_stopping=False) that did not."""
        self.history_.setdefault("val_loss", [])
        self.history_.setdefault("val_score", [])
        if self.validation_scores_ is None:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf

    def _start_schedule(self, n_samples, steps_per_epoch, incremental):
        if not incremental or not hasattr(self, "_schedule"):
            self._schedule = make_schedule(self.learning_rate, power_t=self.power_t)
            self._schedule.start(float(self.learning_rate_init), n_epochs=self.max_iter,
                                 steps_per_epoch=steps_per_epoch, n_samples=n_samples)
            self._epoch = 0

    def _epoch_rates(self, run):
        """The learning rate of each step of the coming epoch."""
        if run.fixed_lrs is not None:
            return run.fixed_lrs
        # A fresh schedule's first epoch counts no samples seen (sklearn
        # makes a new optimizer per fit: its first epoch runs at lr0).
        seen = self.t_ if self._epoch > 0 else 0
        return np.ascontiguousarray(self._schedule.epoch_rates(
            self._epoch, int(run.opt["scalars"][0]), run.steps_per_epoch, seen),
            dtype=np.float64)

    def _run_epoch(self, run):
        """Shuffle (sklearn's draw), then one epoch in C. Returns (rates,
        loss_sum, n_steps); after a divergence with early stopping, NaN."""
        if self.shuffle:
            self._random_state.shuffle(run.order)
        lrs = self._epoch_rates(run)
        run.grad_norm_sum[:] = 0
        if run.diverged:
            return lrs, np.nan, 0
        try:
            # In the call's first epoch params is as _fit_once packed it, and
            # the optimizer state as the one it continues (or fresh).
            first = self.n_iter_ == 0
            loss_sum, n_steps = self._train_one_epoch(
                run.net, run.params, run.stats, run.opt, *run.train, run.order,
                run.batch_size, lrs, run.seed, run.grad_norm_sum, run.incremental,
                run.layout if first else None, run.opt_from if first else None)
        except _core.NonFiniteError:
            self._on_divergence(run)
            return lrs, np.nan, 0
        return lrs, loss_sum, n_steps

    def _on_divergence(self, run):
        """Keep the last finite weights; raise, or with early stopping (and
        restore_best_weights) go on as sklearn does: warn, NaN epochs, best
        weights restored at the end."""
        self._unpack(run.layout, run.params, run.stats)
        if not (self.early_stopping and self.restore_best_weights):
            raise _divergence_error(self._epoch + 1) from None
        run.diverged = True
        _warn_diverged_early_stopping(self._epoch + 1)

    def _record_epoch(self, run, lrs, loss_sum, n_steps):
        """loss_, t_, loss_curve_, history_ and, when validating, the
        validation figures; updates the no-improvement count. Returns the
        figure a schedule watches, lower is better: when validating the
        validation loss (monitor='val_loss') or the negated validation score
        (monitor='val_score'), else the training loss."""
        self._epoch += 1
        self.n_iter_ += 1
        self.loss_ = loss_sum / run.n_samples
        self.t_ += run.n_samples
        self.loss_curve_.append(self.loss_)
        h = self.history_
        h["loss"].append(self.loss_)
        h["lr"].append(float(lrs[-1]) if len(lrs) else float(self.learning_rate_init))
        steps = max(n_steps, 1)  # Python floats: numpy costs microseconds on tiny epochs
        h["grad_norm"].append([norm / steps for norm in run.grad_norm_sum.tolist()])
        run.monitor_grads.check(self._epoch, h["grad_norm"][-1], run.layout.n_layers,
                                self.frozen_layers)
        if run.val is None:
            self._update_no_improvement_count(run, None, None)
            return self.loss_
        val_loss, val_score = self._validate(run)
        h["val_loss"].append(val_loss)
        h["val_score"].append(val_score)
        self.validation_scores_.append(val_score)
        self._update_no_improvement_count(run, val_loss, val_score)
        return val_loss if self.monitor == "val_loss" else -val_score

    def _validate(self, run):
        """(validation loss, validation score) of the current weights; NaN
        once diverged (sklearn's weights are NaN from there on)."""
        if run.diverged:
            return np.nan, np.nan
        X_val, y_val, y_val_labels, sw_val = run.val
        out = self._forward_flat(run.layout, run.params, run.stats, X_val)
        return (_loss_value(self._loss_name(), y_val, out, sw_val),
                self._score_from_output(out, y_val_labels, sw_val))

    def _update_no_improvement_count(self, run, val_loss, val_score):
        """The count of epochs without improvement that stops training. With
        early stopping it watches the validation data and keeps the best
        weights: scikit-learn's rule on the score (monitor='val_score'), or
        Keras's EarlyStopping rule on the loss (monitor='val_loss'). Without,
        scikit-learn's rule on the training loss (validation data, if given,
        is only recorded). best_validation_score_ is the highest score."""
        if not self.early_stopping:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]
            if val_score is not None and val_score > self.best_validation_score_:
                self.best_validation_score_ = val_score
            return
        if self.monitor == "val_loss":
            # Keras: improved when val_loss < best - min_delta (min_delta = tol);
            # only then does `best` move (NaN never improves). The first epoch
            # of a fit always improves: each fit starts a new EarlyStopping.
            if run.best_val_loss is None or val_loss < run.best_val_loss - self.tol:
                run.best_val_loss = val_loss
                self._no_improvement_count = 0
                run.best = (run.params.copy(), run.stats.copy())
            else:
                self._no_improvement_count += 1
            if val_score > self.best_validation_score_:
                self.best_validation_score_ = val_score
            return
        if val_score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if val_score > self.best_validation_score_:
            self.best_validation_score_ = val_score
            run.best = (run.params.copy(), run.stats.copy())

    def _print_epoch(self, validating):
        h = self.history_
        print(epoch_line(self.n_iter_, h, h["time"][-1]), flush=True)
        if validating:
            print("Validation score: %f" % self.validation_scores_[-1], flush=True)

    def _stop_without_improvement(self, run):
        """After n_iter_no_change epochs without improvement: stop, or let
        the schedule lower the rate ('adaptive', 'plateau') and go on."""
        on_val_loss = self.early_stopping and self.monitor == "val_loss"
        # Keras's EarlyStopping stops once `wait >= patience`; scikit-learn
        # once its count exceeds n_iter_no_change.
        if (self._no_improvement_count < self.n_iter_no_change if on_val_loss
                else self._no_improvement_count <= self.n_iter_no_change):
            return False
        what = ("Training loss" if not self.early_stopping else
                "Validation loss" if on_val_loss else "Validation score")
        msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
               % (what, self.tol, self.n_iter_no_change))
        if run.fixed_lrs is not None:
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._schedule.on_no_improvement(verbose=self.verbose, msg=msg):
            return True
        self._no_improvement_count = 0
        return False

    def _train_one_epoch(self, net, params, stats, opt, X, y, sample_weight, order,
                         batch_size, lrs, seed, grad_norm_sum, incremental, packed_from=None,
                         opt_from=None):
        """One epoch, all or nothing: on divergence (a NaN or infinite loss,
        gradient or updated weight) or a Ctrl-C that stops the C loop, the
        parameters, statistics and optimizer state are put back as they were
        at the epoch's start (the last finite epoch) before the error
        propagates.  packed_from: the Layout params was packed with from the
        fitted arrays, unchanged since (a call's first epoch).  Those arrays
        then hold the starting parameters: on failure they are packed again,
        instead of copying params before every such epoch (wide's 25 MB copy
        was 60-80 ms of fresh pages in a first fit).  opt_from: the optimizer
        state opt was copied from, unchanged since (partial_fit's first epoch):
        the moments are put back from it on failure, not from another copy."""
        self._check_rates(lrs)
        state = (params, stats, opt["m"], opt["v"], opt["scalars"])
        # Before the first update (t = 0) a moment vector holds one value,
        # its initial one: it is kept as that value and refilled on failure
        # rather than copied, which spares a new fit the copy's fresh pages
        # (the kernel zeroes each on first touch; wide's moments are 25 MB).
        untouched = opt["scalars"][0] == 0

        def moment_start(a):
            return a.flat[0] if untouched and a.size and a.min() == a.max() else a.copy()

        start = [None if packed_from is not None else params.copy(), stats.copy(),
                 *((opt_from["m"], opt_from["v"]) if opt_from is not None
                   else (moment_start(opt["m"]), moment_start(opt["v"]))),
                 opt["scalars"].copy()]
        try:
            # The core raises NonFiniteError too when the updates made the
            # weights NaN or infinite.
            return self._run_epoch_steps(net, params, stats, opt, X, y, sample_weight, order,
                                         batch_size, lrs, seed, grad_norm_sum, incremental)
        except (_core.NonFiniteError, KeyboardInterrupt):
            if packed_from is not None:
                start[0] = self._pack(packed_from, params.dtype)[0]
            for now, then in zip(state, start):
                now[...] = then
            raise

    def _check_rates(self, lrs):
        """The schedule's rates for this epoch are finite and >= 0."""
        bad = _core.first_bad_rate(lrs)  # a loop in C: numpy's checks cost 3 us per epoch
        if bad >= 0:
            raise ValueError(f"The learning-rate schedule gave the rate {lrs[bad]!r} for "
                             f"step {bad} of epoch {self._epoch + 1}; rates must be finite "
                             "and >= 0.")

    def _run_epoch_steps(self, net, params, stats, opt, X, y, sample_weight, order,
                         batch_size, lrs, seed, grad_norm_sum, incremental):
        """One epoch in C: a single call, or (verbose >= 2) one call per chunk
        of steps so a progress bar can advance in between (numbered within
        this call, as the verbose lines: partial_fit runs epoch 1 of 1). A
        second Ctrl-C stops the C loop after its current step
        (KeyboardInterrupt)."""
        chunks = epoch_chunks(len(lrs), int(self.verbose))
        if len(chunks) == 1:
            return _core.train_epoch(net, params, stats, opt["m"], opt["v"], opt["scalars"],
                                     X, y, sample_weight, order, batch_size, lrs, seed,
                                     grad_norm_sum,
                                     interrupt_after=InterruptAtEpochEnd.presses_to_stop())
        bar = EpochProgress(self.n_iter_ + 1, 1 if incremental else self.max_iter, len(lrs),
                            int(self.verbose))
        loss_sum, n_steps = 0.0, 0
        try:
            for s0, s1 in chunks:
                rows = order[s0 * batch_size:s1 * batch_size]
                part_loss, part_steps = _core.train_epoch(
                    net, params, stats, opt["m"], opt["v"], opt["scalars"], X, y,
                    sample_weight, rows, batch_size, lrs[s0:s1], seed, grad_norm_sum,
                    interrupt_after=InterruptAtEpochEnd.presses_to_stop())
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
        if mc_samples:  # plain passes check when they (re)build their network
            self._check_fitted_state()  # the public methods ran check_is_fitted
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
        # Built (and the fitted state checked) before X is looked at, so a
        # corrupted fitted state is named before any complaint about X.
        inference = None if mc_samples else self._inference_network()
        if defer:
            fast = self._plain_predict_X(X)
            X = fast if fast is not None else self._validate_predict_X(X, ensure_all_finite=False)
        elif check_input:
            X = self._validate_predict_X(X)
        else:
            X = self._as_core_X(X, self._model_dtype())
        if not mc_samples:
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
        """The settings and fitted scalars that shape the inference network
        (and that _check_fitted_state checked when it was built) beside the
        arrays; None when they cannot be read."""
        state = self.__dict__
        try:
            act = self.activation
            return (act if isinstance(act, str) else tuple(act), state["out_activation_"],
                    state["n_outputs_"], state["n_layers_"], state.get("n_features_in_"),
                    "_label_binarizer" in state, self._batch_norm_mode(),
                    bool(self.batch_norm_input), float(self.batch_norm_epsilon),
                    getattr(self, "negative_slope", None))
        except (KeyError, TypeError, ValueError):
            return None

    def _inference_network(self):
        """The folded network for plain prediction, built once and reused
        while the fitted arrays and the settings that shape it stay the same
        (compared on every call: O(parameters), far less than a rebuild).
        A rebuild first checks the fitted state (a ValueError naming a
        corrupted attribute), and the values when the weights are not finite."""
        try:
            arrays = [a for name in WEIGHT_LISTS for a in getattr(self, name) if a is not None]
        except (AttributeError, TypeError):
            arrays = None
        key = self._inference_key()
        cached = _INFERENCE_CACHE.get(self)
        if cached is None or arrays is None or key is None or not cached.built_from(key, arrays):
            self._check_fitted_state()
            layout = self._layout()
            dtype = self._model_dtype()
            params, stats = self._pack(layout, dtype)
            plain, folded = layout.fold(params, stats, float(self.batch_norm_epsilon))
            if not np.isfinite(folded).all():  # never a plausible prediction from them
                self._check_fitted_values()
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
            self._check_fitted_values()  # O(parameters), like each of the passes
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
        if not np.isfinite(folded).all():  # never a plausible prediction from them
            self._check_fitted_values()
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

    # ------------------------------------------------------------------
    # persistence (pickle, joblib, skops)
    # ------------------------------------------------------------------
    def __getstate__(self):
        """A fit keeps its schedule (for partial_fit to continue it). One of
        fastnn's own is saved as its class name and attributes, so that
        loading a model with skops needs trust only in the types the user
        passed (fastnn.SKOPS_TRUSTED_TYPES), not in one a fit made up."""
        from . import schedules

        state = dict(super().__getstate__())
        schedule = state.get("_schedule")
        if type(schedule).__module__ == schedules.__name__:
            state["_schedule"] = {"class": type(schedule).__name__,
                                  "attributes": dict(vars(schedule))}
        return state

    def __setstate__(self, state):
        from . import schedules

        saved = state.get("_schedule")
        if isinstance(saved, dict):
            cls = getattr(schedules, saved["class"], None)
            if not (isinstance(cls, type) and issubclass(cls, schedules.LearningRateSchedule)):
                raise ValueError(f"unknown fastnn schedule {saved['class']!r} in the saved "
                                 "state")
            schedule = cls.__new__(cls)
            schedule.__dict__.update(saved["attributes"])
            state = {**state, "_schedule": schedule}
        super().__setstate__(state)
