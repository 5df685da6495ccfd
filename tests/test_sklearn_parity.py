"""Numerical parity with scikit-learn's MLP estimators.

Cold fits: with scikit-learn's activations and the default
``kernel_initializer='auto'``, the same ``random_state`` gives scikit-learn's
model (same initial draws, validation split, shuffles and batches): see
``test_cold_fit_*``.  The other tests isolate one part of the training path:
each starts both estimators from the *same* weights: each is fitted once with
``warm_start=True, max_iter=1`` (which creates the fitted attributes), then
``coefs_``/``intercepts_`` of both are overwritten with the same random arrays
and both are fitted again.  With ``shuffle=False`` the two then perform the
same sequence of floating-point updates, so weights must agree to rounding."""


import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

import fastnn

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_SAMPLES, N_FEATURES = 67, 5  # 67 with batch 16: 5 steps, the last one short
TASKS = ["binary", "multiclass", "multilabel", "reg", "reg_multi", "poisson"]


def make_task(task, seed=0, n=N_SAMPLES):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, N_FEATURES)
    if task == "binary":
        y = (X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.randn(n) > 0).astype(int)
    elif task == "multiclass":
        y = np.digitize(X[:, 0] - X[:, 2] + 0.3 * rng.randn(n), [-0.7, 0.7])
    elif task == "multilabel":
        y = np.c_[X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] > 0.5].astype(int)
    elif task == "reg":
        y = X[:, 0] - 2 * X[:, 1] ** 2 + 0.1 * rng.randn(n)
    elif task == "reg_multi":
        y = np.c_[X[:, 0] - X[:, 1], np.sin(X[:, 2]) + 0.1 * rng.randn(n)]
    elif task == "poisson":
        y = rng.poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1])).astype(float)
    else:  # pragma: no cover
        raise ValueError(task)
    return X, y


def estimator_classes(task):
    if task in ("binary", "multiclass", "multilabel"):
        return SkClassifier, fastnn.MLPClassifier, {}
    if task == "poisson":
        return SkRegressor, fastnn.MLPRegressor, {"loss": "poisson"}
    return SkRegressor, fastnn.MLPRegressor, {}


def random_weights(model, seed=1, scale=0.5):
    rng = np.random.RandomState(seed)
    W = [rng.uniform(-scale, scale, c.shape) for c in model.coefs_]
    b = [rng.uniform(-scale, scale, c.shape) for c in model.intercepts_]
    return W, b


def set_weights(model, W, b):
    model.coefs_ = [w.copy() for w in W]
    model.intercepts_ = [v.copy() for v in b]


def same_start(task, base, params, sample_weight, n=N_SAMPLES, scale=0.5):
    """sklearn and fastnn warm-start estimators (`base` settings, then the
    task's, then `params`) fitted once to set up their state, then given the
    same random weights. Returns sk, fn, X, y, W, b."""
    sk_cls, fn_cls, extra = estimator_classes(task)
    X, y = make_task(task, n=n)
    kw = dict(base)
    kw.update(extra)
    kw.update(params)
    kw.update(warm_start=True, max_iter=1)
    sk, fn = sk_cls(**kw), fn_cls(**kw)
    sk.fit(X, y, sample_weight=sample_weight)
    fn.fit(X, y, sample_weight=sample_weight)
    W, b = random_weights(sk, scale=scale)
    for m in (sk, fn):
        set_weights(m, W, b)
    return sk, fn, X, y, W, b


def paired(task, sample_weight=None, epochs=3, reset_t=False, **params):
    """sklearn and fastnn estimators fitted `epochs` epochs from the same weights."""
    base = dict(hidden_layer_sizes=(7, 4), alpha=0.01, batch_size=16, shuffle=False,
                tol=0.0, n_iter_no_change=10_000, random_state=0, learning_rate_init=0.05,
                activation="tanh")
    sk, fn, X, y, _, _ = same_start(task, base, params, sample_weight)
    for m in (sk, fn):
        if m.solver != "lbfgs":
            m.loss_curve_ = []
            m.best_loss_ = np.inf if not m.early_stopping else None
            m._no_improvement_count = 0
        if reset_t:
            m.t_ = 0
        m.set_params(max_iter=epochs)
        m.fit(X, y, sample_weight=sample_weight)
    return sk, fn, X, y


def assert_same_weights(sk, fn, rtol=1e-6, atol=1e-12):
    assert len(sk.coefs_) == len(fn.coefs_)
    for a, b in zip(sk.coefs_ + sk.intercepts_, fn.coefs_ + fn.intercepts_):
        assert b.dtype == np.float64
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


def sample_weights(n=N_SAMPLES, seed=3):
    return np.random.RandomState(seed).uniform(0.2, 3.0, n)


OPTIMIZERS = {
    "sgd": dict(solver="sgd", momentum=0.0),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam", learning_rate_init=0.01),
}


# ---------------------------------------------------------------------------
# stochastic solvers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_stochastic_solver_parity(opt, task, weighted):
    sw = sample_weights() if weighted else None
    sk, fn, _, _ = paired(task, sample_weight=sw, **OPTIMIZERS[opt])
    assert_same_weights(sk, fn)
    assert len(fn.loss_curve_) == 3
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=1e-9)
    assert fn.loss_ == pytest.approx(sk.loss_, rel=1e-9)
    assert fn.n_iter_ == sk.n_iter_ == 3
    assert fn.t_ == sk.t_
    assert fn.out_activation_ == sk.out_activation_
    # the weights moved: the comparison is not trivially start == start
    W0, _ = random_weights(sk)
    assert not np.allclose(fn.coefs_[0], W0[0])


@pytest.mark.parametrize("task", ["binary", "reg"])
@pytest.mark.parametrize("opt", ["nesterov", "adam"])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_activation_parity(activation, opt, task):
    sk, fn, _, _ = paired(task, activation=activation, **OPTIMIZERS[opt])
    assert_same_weights(sk, fn)
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("task", ["multiclass", "reg"])
@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov"])
def test_invscaling_parity(opt, task):
    # t_ = 0 before the compared fit, as on a cold fit (see the warm-start
    # test below for t_ > 0)
    sk, fn, _, _ = paired(task, learning_rate="invscaling", power_t=0.25, epochs=4,
                          reset_t=True, **OPTIMIZERS[opt])
    # sklearn's rate after the fit: lr0 / (t_ + 1) ** power_t, t_ counting samples
    assert sk._optimizer.learning_rate < 0.05
    assert_same_weights(sk, fn)
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=1e-9)
    # the rate of epoch k is lr0 / (samples seen before it + 1) ** power_t
    expected = [0.05 / (k * N_SAMPLES + 1) ** 0.25 for k in range(4)]
    np.testing.assert_allclose(fn.history_["lr"][-4:], expected, rtol=1e-12)


def test_invscaling_warm_start_first_epoch_uses_lr0():
    # both estimators come out of a 1-epoch fit with t_ = 67; the second fit's
    # first epoch runs at learning_rate_init in sklearn
    sk, fn, _, _ = paired("reg", solver="sgd", momentum=0.0, learning_rate="invscaling",
                          epochs=1)
    assert sk.t_ == fn.t_ == 2 * N_SAMPLES
    assert fn.history_["lr"][-1] == sk.learning_rate_init
    assert_same_weights(sk, fn)


@pytest.mark.parametrize("task", ["multiclass", "reg"])
@pytest.mark.parametrize("opt", ["sgd", "momentum", "nesterov"])
def test_adaptive_parity(opt, task):
    # tol larger than any improvement: every epoch counts as "no improvement",
    # so with n_iter_no_change=1 sklearn divides the rate by 5 every 2nd epoch.
    sk, fn, _, _ = paired(task, learning_rate="adaptive", epochs=7, tol=10.0,
                          n_iter_no_change=1, **OPTIMIZERS[opt])
    assert sk._optimizer.learning_rate < 0.05 / 5  # the path was exercised
    assert fn.n_iter_ == sk.n_iter_ == 7
    assert_same_weights(sk, fn)
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=1e-9)


def test_adam_with_invscaling_string_keeps_constant_rate():
    """sklearn's learning_rate strings only drive 'sgd'; adam ignores them."""
    sk, fn, _, _ = paired("reg", solver="adam", learning_rate="invscaling", epochs=4,
                          learning_rate_init=0.01)
    assert_same_weights(sk, fn)


def test_float32_parity_loose():
    """float32 training follows sklearn's float32 training to float32 rounding."""
    X, y = make_task("multiclass")
    X = X.astype(np.float32)
    kw = dict(hidden_layer_sizes=(7,), solver="sgd", batch_size=16, shuffle=False,
              alpha=0.01, tol=0.0, n_iter_no_change=10_000, learning_rate_init=0.05,
              warm_start=True, max_iter=1, random_state=0)
    sk, fn = SkClassifier(**kw).fit(X, y), fastnn.MLPClassifier(**kw).fit(X, y)
    W, b = random_weights(sk)
    for m in (sk, fn):
        set_weights(m, [w.astype(np.float32) for w in W], [v.astype(np.float32) for v in b])
        m.set_params(max_iter=3).fit(X, y)
    for a, c in zip(sk.coefs_ + sk.intercepts_, fn.coefs_ + fn.intercepts_):
        assert c.dtype == np.float32
        np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# lbfgs
# ---------------------------------------------------------------------------
# Tolerance: both estimators hand scipy's L-BFGS-B the same objective and
# gradient, in the same parameter order (kernels, then biases), equal up to
# the summation order of float64 reductions (BLAS/OpenMP vs NumPy), i.e.
# ~1e-16 relative per evaluation.  L-BFGS-B amplifies such differences through
# its curvature pairs and line searches; over 20 iterations on these small,
# well-conditioned problems they stay near 1e-10 relative (measured), so
# rtol=1e-7 keeps a 1000x margin while any real difference in the loss or
# gradient (a missing factor, the penalty's scaling, a sign) moves the weights
# at the 1e-2 level within the first iteration.
LBFGS_RTOL, LBFGS_ATOL = 1e-7, 1e-10


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "reg", "poisson"])
def test_lbfgs_parity(task, weighted):
    sw = sample_weights() if weighted else None
    sk, fn, _, _ = paired(task, sample_weight=sw, solver="lbfgs", epochs=20)
    assert fn.n_iter_ == sk.n_iter_ == 20
    assert_same_weights(sk, fn, rtol=LBFGS_RTOL, atol=LBFGS_ATOL)
    assert fn.loss_ == pytest.approx(sk.loss_, rel=1e-8)


def _half_squared_error_summed_over_outputs(y_true, y_pred, sample_weight=None):
    return 0.5 * np.average((y_true - y_pred) ** 2, weights=sample_weight, axis=0).sum()


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lbfgs_parity_multi_output_squared_error(weighted, monkeypatch):
    """Documented deviation (csrc/fastnn.h, fnn_loss_grad): for several outputs
    sklearn hands L-BFGS the squared error *averaged* over outputs but the
    gradient of the error *summed* over outputs (inconsistent f and g, which
    skews its line search); fastnn minimizes the summed objective, the one its
    gradient belongs to, and reports sklearn's averaged loss in ``loss_``.
    So compare against sklearn with its loss made consistent (summed)."""
    from sklearn.neural_network._base import LOSS_FUNCTIONS, squared_loss

    sw = sample_weights() if weighted else None
    monkeypatch.setitem(LOSS_FUNCTIONS, "squared_error",
                        _half_squared_error_summed_over_outputs)
    sk, fn, X, y = paired("reg_multi", sample_weight=sw, solver="lbfgs", epochs=20)
    assert fn.n_iter_ == sk.n_iter_ == 20
    assert_same_weights(sk, fn, rtol=LBFGS_RTOL, atol=LBFGS_ATOL)
    # fastnn's loss_ is sklearn's reported (output-averaged) loss + penalty
    pen = 0.5 * fn.alpha * sum((w ** 2).sum() for w in fn.coefs_)
    pen /= X.shape[0] if sw is None else sw.sum()
    expected = squared_loss(y, fn.predict(X), sw) + pen
    assert fn.loss_ == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------------------
# early stopping
# ---------------------------------------------------------------------------
def paired_early_stopping(task, sample_weight=None, epochs=12, **params):
    """Like `paired`, with early stopping and the validation state reset.

    The validation split comes from ``train_test_split(random_state=
    self._random_state)`` where ``_random_state = check_random_state(
    random_state)`` is recreated on every fit; on a warm-started fit neither
    library draws initial weights first, so both split with a fresh
    RandomState(random_state) and the splits are identical."""
    base = dict(hidden_layer_sizes=(8,), alpha=0.01, batch_size=16, shuffle=False,
                tol=0.0, n_iter_no_change=3, random_state=4, activation="tanh",
                early_stopping=True, validation_fraction=0.25, solver="sgd",
                learning_rate_init=0.3, momentum=0.9)
    sk, fn, X, y, W, b = same_start(task, base, params, sample_weight, n=120, scale=1.0)
    for m in (sk, fn):
        m.loss_curve_ = []
        m.validation_scores_ = []
        m.best_validation_score_ = -np.inf
        m._no_improvement_count = 0
        m.set_params(max_iter=epochs)
    # sklearn restores `_best_coefs` even when no epoch of this fit improved
    sk._best_coefs, sk._best_intercepts = [w.copy() for w in W], [v.copy() for v in b]
    for m in (sk, fn):
        m.fit(X, y, sample_weight=sample_weight)
    return sk, fn


@pytest.mark.parametrize("shuffle", [False, True], ids=["in_order", "shuffled"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "reg"])
def test_early_stopping_parity(task, weighted, shuffle):
    """shuffled: fastnn trains on X's rows through the split's indices,
    sklearn on its copied X_train; the batches must still be the same."""
    sw = sample_weights(120) if weighted else None
    sk, fn = paired_early_stopping(task, sample_weight=sw, shuffle=shuffle)
    assert fn.n_iter_ == sk.n_iter_
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(fn.validation_scores_, sk.validation_scores_, rtol=1e-9,
                               atol=1e-12)
    assert fn.best_validation_score_ == pytest.approx(sk.best_validation_score_, rel=1e-9)
    assert fn.best_loss_ is None and sk.best_loss_ is None
    # restored (best-epoch) weights
    assert_same_weights(sk, fn)


def test_early_stopping_restores_a_non_final_epoch():
    """Guard for the test above: in this setting the best validation epoch is
    not the last one, so the restored weights differ from the final ones."""
    sk, fn = paired_early_stopping("reg")
    scores = np.asarray(sk.validation_scores_)
    assert np.argmax(scores) < len(scores) - 1
    assert_same_weights(sk, fn)
    np.testing.assert_allclose(fn.validation_scores_, scores, rtol=1e-9)


# ---------------------------------------------------------------------------
# cold fits: the same random_state gives scikit-learn's model
# ---------------------------------------------------------------------------
COLD_SOLVERS = {**OPTIMIZERS, "lbfgs": dict(solver="lbfgs")}


def cold_pair(task, random_state, **params):
    """sklearn and fastnn fitted from scratch with the same parameters (the
    defaults that draw randomness left on: shuffling, sklearn's batches).
    random_state: an int, or a callable making a fresh RandomState for each."""
    sk_cls, fn_cls, extra = estimator_classes(task)
    X, y = make_task(task, n=150)
    kw = dict(hidden_layer_sizes=(7, 4), max_iter=15, batch_size=32, learning_rate_init=0.05,
              **extra)
    kw.update(params)
    state = random_state if callable(random_state) else (lambda: random_state)
    return [cls(random_state=state(), **kw).fit(X, y) for cls in (sk_cls, fn_cls)]


def assert_same_fit(sk, fn, rtol=1e-6, check_loss=True):
    assert fn.n_iter_ == sk.n_iter_
    assert_same_weights(sk, fn, rtol=rtol, atol=1e-10)
    if sk.solver == "lbfgs":
        if check_loss:
            assert fn.loss_ == pytest.approx(sk.loss_, rel=rtol)
        return
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=rtol)
    if sk.validation_scores_ is None:
        assert fn.validation_scores_ is None
    else:
        np.testing.assert_allclose(fn.validation_scores_, sk.validation_scores_, rtol=rtol)
        assert fn.best_validation_score_ == pytest.approx(sk.best_validation_score_, rel=rtol)


@pytest.mark.parametrize("random_state", [0, lambda: np.random.RandomState(1)],
                         ids=["int", "RandomState"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("opt", list(COLD_SOLVERS))
def test_cold_fit_equals_sklearn(opt, task, random_state, monkeypatch):
    multi_output_lbfgs = opt == "lbfgs" and task == "reg_multi"
    if multi_output_lbfgs:
        # the documented deviation (test_lbfgs_parity_multi_output_squared_error):
        # compare with sklearn's objective made consistent with its gradient
        from sklearn.neural_network._base import LOSS_FUNCTIONS
        monkeypatch.setitem(LOSS_FUNCTIONS, "squared_error",
                            _half_squared_error_summed_over_outputs)
    sk, fn = cold_pair(task, random_state, **COLD_SOLVERS[opt])
    # (patched, sklearn's loss_ is the summed loss; fastnn reports the mean)
    assert_same_fit(sk, fn, check_loss=not multi_output_lbfgs)
    assert fn.n_iter_ >= 2  # the models trained, not just initialized


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "reg", "poisson"])
@pytest.mark.parametrize("opt", ["sgd", "nesterov", "adam"])
def test_cold_fit_with_early_stopping_equals_sklearn(opt, task):
    """The validation split (stratified for binary targets) and the restored
    best weights are sklearn's too."""
    sk, fn = cold_pair(task, 5, early_stopping=True, validation_fraction=0.2,
                       n_iter_no_change=3, max_iter=40, **OPTIMIZERS[opt])
    assert_same_fit(sk, fn)
    assert len(fn.validation_scores_) == fn.n_iter_


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_cold_fit_equals_sklearn_per_activation(activation):
    """logistic draws with a smaller bound (factor 2 instead of 6)."""
    sk, fn = cold_pair("multiclass", 2, activation=activation, solver="sgd")
    assert_same_fit(sk, fn)


def test_cold_fit_equals_sklearn_without_hidden_layers_and_with_float32_loose():
    sk, fn = cold_pair("binary", 3, hidden_layer_sizes=(), activation="logistic")
    assert_same_fit(sk, fn)
    X, y = make_task("reg", n=150)
    X = X.astype(np.float32)
    kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    sk, fn = SkRegressor(**kw).fit(X, y), fastnn.MLPRegressor(**kw).fit(X, y)
    for a, c in zip(sk.coefs_ + sk.intercepts_, fn.coefs_ + fn.intercepts_):
        assert c.dtype == np.float32
        np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# partial_fit
# ---------------------------------------------------------------------------
def paired_partial_fit(task, reset_optimizer, weighted=False, **params):
    sk_cls, fn_cls, extra = estimator_classes(task)
    X, y = make_task(task, n=90)
    kw = dict(hidden_layer_sizes=(6,), alpha=0.01, batch_size=16, shuffle=False,
              random_state=0, learning_rate_init=0.05, activation="relu")
    kw.update(extra)
    kw.update(params)
    sk, fn = sk_cls(**kw), fn_cls(**kw)
    first = {}
    if task in ("binary", "multiclass"):
        first = dict(classes=np.unique(y))
    elif task == "multilabel":
        first = dict(classes=np.arange(y.shape[1]))  # required by both, unused
    sk.partial_fit(X[:30], y[:30], **first)
    fn.partial_fit(X[:30], y[:30], **first)
    W, b = random_weights(sk)
    for m in (sk, fn):
        set_weights(m, W, b)
        m.loss_curve_ = []
    if reset_optimizer:
        # the first call updated each optimizer's state (moments, velocities)
        # from different weights: start both afresh (private attributes)
        del sk._optimizer
        del fn._optimizer_state
    sw = sample_weights(len(X)) if weighted else None
    for start in (0, 30, 60, 0):
        part = slice(start, start + 30)
        w = None if sw is None else sw[part]
        sk.partial_fit(X[part], y[part], sample_weight=w)
        fn.partial_fit(X[part], y[part], sample_weight=w)
    return sk, fn


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "reg", "poisson"])
def test_partial_fit_parity_plain_sgd(task, weighted):
    # momentum=0: the optimizer has no state that depends on the first call
    sk, fn = paired_partial_fit(task, reset_optimizer=False, weighted=weighted,
                                solver="sgd", momentum=0.0)
    assert fn.n_iter_ == sk.n_iter_ == 1
    assert fn.t_ == sk.t_
    assert_same_weights(sk, fn)
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("task", ["multiclass", "reg_multi"])
@pytest.mark.parametrize("opt", ["nesterov", "adam"])
def test_partial_fit_parity_stateful(task, opt):
    sk, fn = paired_partial_fit(task, reset_optimizer=True, **OPTIMIZERS[opt])
    assert_same_weights(sk, fn)
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=1e-9)


def test_partial_fit_invscaling_parity():
    # sklearn's optimizer persists across partial_fit calls and sets the rate
    # to lr0 / (t_ + 1) ** power_t at the end of each call
    sk, fn = paired_partial_fit("reg", reset_optimizer=False, solver="sgd", momentum=0.0,
                                learning_rate="invscaling", power_t=0.3)
    assert sk._optimizer.learning_rate < sk.learning_rate_init
    assert_same_weights(sk, fn)
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=1e-9)


# ---------------------------------------------------------------------------
# prediction from the same weights
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASKS)
def test_predict_parity(task):
    sk_cls, fn_cls, extra = estimator_classes(task)
    X, y = make_task(task)
    kw = dict(hidden_layer_sizes=(9, 6), max_iter=2, activation="logistic", random_state=0,
              **extra)
    sk, fn = sk_cls(**kw).fit(X, y), fn_cls(**kw).fit(X, y)
    W, b = random_weights(sk, scale=1.0)
    set_weights(sk, W, b)
    set_weights(fn, W, b)
    X_test = np.random.RandomState(9).randn(50, N_FEATURES) * 2
    np.testing.assert_allclose(fn.predict(X_test), sk.predict(X_test), rtol=1e-12,
                               atol=1e-12)
    if fn_cls is fastnn.MLPClassifier:
        np.testing.assert_allclose(fn.predict_proba(X_test), sk.predict_proba(X_test),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fn.predict_log_proba(X_test),
                                   sk.predict_log_proba(X_test), rtol=1e-12, atol=1e-12)
        assert fn.score(X_test, sk.predict(X_test)) == 1.0
    else:
        y_test = sk.predict(X_test)
        assert fn.score(X_test, y_test + 0.1) == pytest.approx(sk.score(X_test, y_test + 0.1),
                                                               rel=1e-12)


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_predict_proba_parity_activations(activation):
    X, y = make_task("multiclass")
    kw = dict(hidden_layer_sizes=(9,), max_iter=2, activation=activation, random_state=0)
    sk, fn = SkClassifier(**kw).fit(X, y), fastnn.MLPClassifier(**kw).fit(X, y)
    W, b = random_weights(sk, scale=1.0)
    set_weights(sk, W, b)
    set_weights(fn, W, b)
    np.testing.assert_allclose(fn.predict_proba(X), sk.predict_proba(X), rtol=1e-12,
                               atol=1e-12)
