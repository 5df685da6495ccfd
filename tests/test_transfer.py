"""Transfer learning: frozen_layers, initial_layers and fastnn.reuse_layers.

Frozen layers (and their BatchNorm, moving statistics included) must keep
their values bit for bit under every solver; a frozen BatchNorm normalizes
with its moving statistics during training (checked against a NumPy forward
pass); the trainable part's gradient is checked by finite differences.
"""

import copy
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

import fastnn
from fastnn import MLPClassifier, MLPRegressor, _core
from fastnn._network import Layout

SOLVERS = ["sgd", "adam", "adagrad", "rmsprop", "adamax", "nadam", "adamw", "lbfgs"]
BN_EPS = 1e-3


pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _frozen_arrays(model, k):
    """The arrays frozen_layers=k must leave alone: kernels and biases of
    layers < k, every BN array of slots 0..k."""
    out = [model.coefs_[l] for l in range(k)] + [model.intercepts_[l] for l in range(k)]
    for name in ("bn_gamma_", "bn_beta_", "bn_moving_mean_", "bn_moving_var_"):
        out += [a for a in getattr(model, name)[:k + 1] if a is not None]
    return [a.copy() for a in out]


# ---------------------------------------------------------------- warm start
def test_warm_start_from_hand_set_weights(digits):
    """Weights set on an unfitted estimator are where training starts."""
    X, y = digits
    rng = np.random.default_rng(0)
    units = [64, 20, 10]
    coefs = [rng.normal(0, 0.3, (units[l], units[l + 1])) for l in range(2)]
    intercepts = [rng.normal(0, 0.1, units[l + 1]) for l in range(2)]
    m = MLPClassifier((20,), solver="sgd", learning_rate_init=1e-9, max_iter=1,
                      warm_start=True, random_state=0)
    m.coefs_ = [c.copy() for c in coefs]
    m.intercepts_ = [b.copy() for b in intercepts]
    m.fit(X, y)
    for got, want in zip(m.coefs_ + m.intercepts_, coefs + intercepts):
        np.testing.assert_allclose(got, want, atol=1e-6)
    fresh = MLPClassifier((20,), solver="sgd", learning_rate_init=1e-9, max_iter=1,
                          random_state=0).fit(X, y)
    assert not np.allclose(fresh.coefs_[0], coefs[0], atol=1e-3)


def test_warm_start_from_hand_set_batch_norm_arrays(digits):
    """BatchNorm arrays set by hand beside the weights (SPEC section 2) are
    where training starts too, on an estimator that was never fitted."""
    X, y = digits
    src = MLPClassifier((20,), batch_norm="before", batch_norm_input=True, max_iter=3,
                        random_state=0).fit(X, y)
    m = MLPClassifier((20,), batch_norm="before", batch_norm_input=True, solver="sgd",
                      momentum=0, learning_rate_init=1e-9, max_iter=1, warm_start=True,
                      random_state=1)
    names = ("coefs_", "intercepts_", "bn_gamma_", "bn_beta_")
    for name in names + ("bn_moving_mean_", "bn_moving_var_"):
        setattr(m, name, [None if a is None else a.copy() for a in getattr(src, name)])
    m.fit(X, y)
    for name in names:
        for got, want in zip(getattr(m, name), getattr(src, name)):
            if want is not None:
                np.testing.assert_allclose(got, want, atol=1e-6)


# ---------------------------------------------------------- frozen, bitwise
@pytest.mark.parametrize("solver", SOLVERS)
def test_frozen_layers_keep_their_values(digits, solver):
    X, y = digits
    bn = solver != "lbfgs"  # lbfgs takes no BatchNorm
    kw = dict(solver=solver, random_state=0, batch_norm=bn, batch_norm_input=bn,
              max_iter=3, alpha=1e-2, max_norm=1.5, learning_rate_init=1e-2)
    start = MLPClassifier((24, 16, 12), **kw).fit(X, y)
    frozen = _frozen_arrays(start, 2)
    m = copy.deepcopy(start).set_params(warm_start=True, frozen_layers=2, clipvalue=0.01)
    m.fit(X, y)
    for a, b in zip(frozen, _frozen_arrays(m, 2)):
        assert a.tobytes() == b.tobytes()
    # the rest trained
    assert not np.array_equal(m.coefs_[2], start.coefs_[2])
    assert not np.array_equal(m.coefs_[3], start.coefs_[3])
    if bn:  # slot 3 (after hidden layer 3) is trainable: its statistics moved
        assert not np.array_equal(m.bn_moving_mean_[3], start.bn_moving_mean_[3])
        assert not np.array_equal(m.bn_gamma_[3], start.bn_gamma_[3])


def test_frozen_optimizer_state_untouched(digits):
    X, y = digits
    m = MLPClassifier((16, 8), solver="adagrad", batch_norm=True, frozen_layers=1,
                      max_iter=2, random_state=0).fit(X, y)
    layout = m._layout()
    frozen = ~layout.trainable(1)
    assert frozen.sum() == 64 * 16 + 2 * 16  # W0 (no bias: BN before), BN slot 1
    m_state = m._optimizer_state["m"]
    assert np.all(m_state[frozen] == m.initial_accumulator_value)
    assert np.all(m_state[~frozen] > m.initial_accumulator_value)


def test_frozen_with_partial_fit_and_global_clipnorm(digits):
    X, y = digits
    m = MLPRegressor(hidden_layer_sizes=(16, 8), batch_norm="after", global_clipnorm=0.5, frozen_layers=1,
                     random_state=0)
    m.partial_fit(X, y)
    frozen = _frozen_arrays(m, 1)
    for _ in range(3):
        m.partial_fit(X, y)
    for a, b in zip(frozen, _frozen_arrays(m, 1)):
        assert a.tobytes() == b.tobytes()
    assert m.history_["grad_norm"][-1][0] == 0  # no gradient for the frozen kernel
    assert m.history_["grad_norm"][-1][1] > 0


def test_unfreezing_trains_every_layer(digits):
    X, y = digits
    m = MLPClassifier((16,), frozen_layers=1, warm_start=True, max_iter=2,
                      random_state=0).fit(X, y)
    w0 = m.coefs_[0].copy()
    m.set_params(frozen_layers=0).fit(X, y)
    assert not np.array_equal(m.coefs_[0], w0)


@pytest.mark.parametrize("hidden,k", [((8, 4), 3), ((8,), 2), ((8,), -1)])
def test_bad_frozen_layers(digits, hidden, k):
    X, y = digits
    with pytest.raises(ValueError, match="frozen_layers"):
        MLPClassifier(hidden, frozen_layers=k, max_iter=1).fit(X, y)


# ------------------------------------------- frozen BN and gradients (core)
def _net(units, batch_norm, bn_input, frozen, alpha=0.0):
    layout = Layout(units, batch_norm, bn_input)
    acts = [_core.ACTIVATIONS["tanh"]] * (len(units) - 2) + [_core.ACTIVATIONS["identity"]]
    net = layout.network(np.float64, activation=acts, loss=_core.LOSSES["squared_error"],
                         bn_epsilon=BN_EPS, alpha=alpha, frozen_layers=frozen)
    return layout, net


def _random_state(layout, rng):
    params = rng.normal(0, 0.5, layout.n_params)
    stats = np.empty(layout.n_stats)
    for s in range(layout.n_layers):
        if layout.has_bn(s):
            g, _ = layout.gamma_beta(params, s)
            g += 1.0
            mean, var = layout.moving(stats, s)
            mean[...] = rng.normal(0, 0.5, mean.shape)
            var[...] = rng.uniform(0.5, 2.0, var.shape)
    return params, stats


def _ref_objective(layout, params, stats, X, y, frozen, alpha):
    """NumPy forward: BN slots <= frozen (when frozen > 0) with the moving
    statistics, the others with the batch's (biased variance)."""
    def bn(s, h):
        g, b = layout.gamma_beta(params, s)
        if frozen and s <= frozen:
            mean, var = layout.moving(stats, s)
        else:
            mean, var = h.mean(axis=0), h.var(axis=0)
        return g * (h - mean) / np.sqrt(var + BN_EPS) + b

    L = layout.n_layers
    h = bn(0, X) if layout.has_bn(0) else X
    for l in range(L):
        z = h @ layout.kernel(params, l)
        if layout.bias(params, l) is not None:
            z = z + layout.bias(params, l)
        if l == L - 1:
            h = z
            break
        if layout.batch_norm == "before":
            z = bn(l + 1, z)
        h = np.tanh(z)
        if layout.batch_norm == "after":
            h = bn(l + 1, h)
    n = X.shape[0]
    penalty = sum(0.5 * alpha / n * np.sum(layout.kernel(params, l) ** 2)
                  for l in range(frozen, L))
    return 0.5 * np.sum((h - y) ** 2) / n + penalty


@pytest.mark.parametrize("batch_norm,bn_input", [(False, False), ("before", True),
                                                 ("after", False), ("after", True)])
@pytest.mark.parametrize("frozen", [1, 2])
def test_frozen_gradient_and_inference_mode_bn(batch_norm, bn_input, frozen):
    rng = np.random.default_rng(frozen)
    units = [4, 5, 6, 3, 2]
    alpha = 0.3
    layout, net = _net(units, batch_norm, bn_input, frozen, alpha)
    params, stats = _random_state(layout, rng)
    X, y = rng.normal(size=(9, 4)), rng.normal(size=(9, 2))
    grad = np.full(layout.n_params, np.nan)
    _, obj = _core.loss_grad(net, params, X, y, None, grad, stats=stats)
    assert obj == pytest.approx(_ref_objective(layout, params, stats, X, y, frozen, alpha),
                                rel=1e-12)
    trainable = layout.trainable(frozen)
    assert np.all(grad[~trainable] == 0)
    h = 1e-6
    for i in np.flatnonzero(trainable):
        p = params.copy()
        p[i] += h
        fp = _core.loss_grad(net, p, X, y, None, np.empty_like(p), stats=stats)[1]
        p[i] -= 2 * h
        fm = _core.loss_grad(net, p, X, y, None, np.empty_like(p), stats=stats)[1]
        fd = (fp - fm) / (2 * h)
        assert abs(fd - grad[i]) <= 1e-6 * max(1.0, abs(grad[i])), i


def test_frozen_gradient_matches_unfrozen_without_bn():
    """Without BatchNorm freezing changes no forward value: the trainable
    part's gradient is the full network's, minus the frozen penalty."""
    rng = np.random.default_rng(5)
    units = [4, 5, 6, 2]
    layout, full = _net(units, False, False, 0, alpha=0.0)
    _, part = _net(units, False, False, 2, alpha=0.0)
    params = rng.normal(0, 0.5, layout.n_params)
    X, y = rng.normal(size=(7, 4)), rng.normal(size=(7, 2))
    g_full, g_part = np.empty_like(params), np.empty_like(params)
    o_full = _core.loss_grad(full, params, X, y, None, g_full)[1]
    o_part = _core.loss_grad(part, params, X, y, None, g_part)[1]
    mask = layout.trainable(2)
    assert o_full == o_part
    np.testing.assert_array_equal(g_part[mask], g_full[mask])
    assert np.any(g_full[~mask] != 0) and np.all(g_part[~mask] == 0)


def test_frozen_bn_needs_stats():
    layout, net = _net([3, 4, 2], "before", False, 1)
    params, _ = _random_state(layout, np.random.default_rng(0))
    with pytest.raises(ValueError):
        _core.loss_grad(net, params, np.ones((3, 3)), np.ones((3, 2)), None,
                        np.empty(layout.n_params))


def test_frozen_bn_trains_on_moving_statistics(digits):
    """One SGD step on the output layer alone: its gradient is computed from
    hidden features normalized with the moving statistics."""
    X, y = digits
    X, y = X[:50], y[:50]
    m = MLPRegressor(hidden_layer_sizes=(6,), batch_norm="before", solver="sgd", momentum=0.0, alpha=0.0,
                     batch_size=50, shuffle=False, max_iter=1, random_state=0,
                     learning_rate_init=0.1, warm_start=True).fit(X, y)
    rng = np.random.default_rng(1)  # a state of our own (momentum 0: no memory)
    m.coefs_ = [rng.normal(0, 0.3, (64, 6)), rng.normal(0, 0.3, (6, 1))]
    m.intercepts_ = [np.zeros(6), np.array([0.5])]
    m.bn_gamma_ = [None, rng.uniform(0.5, 1.5, 6)]
    m.bn_beta_ = [None, rng.normal(0, 0.2, 6)]
    m.bn_moving_mean_ = [None, rng.normal(0, 0.5, 6)]
    m.bn_moving_var_ = [None, rng.uniform(0.5, 2.0, 6)]
    W1, b1 = m.coefs_[1].copy(), m.intercepts_[1].copy()
    g, b, mu, var = m.bn_gamma_[1], m.bn_beta_[1], m.bn_moving_mean_[1], m.bn_moving_var_[1]
    m.set_params(frozen_layers=1).fit(X, y)
    h = np.maximum(g * (X @ m.coefs_[0] - mu) / np.sqrt(var + BN_EPS) + b, 0)
    delta = (h @ W1 + b1 - y[:, None]) / len(X)
    np.testing.assert_allclose(m.coefs_[1], W1 - 0.1 * h.T @ delta, rtol=1e-10)
    np.testing.assert_allclose(m.intercepts_[1], b1 - 0.1 * delta.sum(0), rtol=1e-10)


# ------------------------------------------------------------------- reuse
def test_reuse_from_fastnn_with_batch_norm(digits):
    X, y = digits
    A = MLPClassifier((20, 12), batch_norm="after", batch_norm_input=True, max_iter=3,
                      random_state=0).fit(X, y)
    layers = fastnn.reuse_layers(A)
    assert len(layers["coefs"]) == 2 and layers["batch_norm"] == "after"
    B = MLPClassifier((20, 12), batch_norm="after", batch_norm_input=True, max_iter=1,
                      random_state=1, initial_layers=layers, frozen_layers=2)
    B.fit(X, y % 2)
    for a, b in zip(_frozen_arrays(A, 2), _frozen_arrays(B, 2)):
        assert a.tobytes() == b.tobytes()
    assert B.coefs_[2].shape == (12, 1)  # a fresh output layer for the new task
    one = fastnn.reuse_layers(A, n_layers=1)
    assert len(one["coefs"]) == 1 and len(one["bn_gamma"]) == 2


def test_reuse_from_sklearn_mlp(digits):
    X, y = digits
    A = SkMLPClassifier((20, 10), max_iter=20, random_state=0).fit(X, y)
    B = MLPRegressor(hidden_layer_sizes=(20, 10, 5), max_iter=2, random_state=0, frozen_layers=2,
                     initial_layers=FrozenEstimator(A)).fit(X, y.astype(float))
    for l in range(2):
        assert B.coefs_[l].tobytes() == A.coefs_[l].tobytes()
        assert B.intercepts_[l].tobytes() == A.intercepts_[l].tobytes()
    fresh = MLPRegressor(hidden_layer_sizes=(20, 10, 5), max_iter=2, random_state=0).fit(X, y.astype(float))
    assert not np.array_equal(fresh.coefs_[0], A.coefs_[0])


@pytest.mark.parametrize("change,match", [
    (dict(hidden_layer_sizes=(21, 10)), "shape"),
    (dict(hidden_layer_sizes=(20,)), "hidden layer"),
    (dict(activation="tanh"), "activation"),
    (dict(batch_norm=True), "BatchNorm"),
])
def test_reuse_mismatch_errors(digits, change, match):
    X, y = digits
    A = MLPClassifier((20, 10), max_iter=1, random_state=0).fit(X, y)
    kw = dict(hidden_layer_sizes=(20, 10), max_iter=1, initial_layers=fastnn.reuse_layers(A))
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**kw).fit(X, y)


def test_reuse_input_size_and_unfitted_errors(digits):
    X, y = digits
    A = MLPClassifier((10,), max_iter=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="64 features but X has 63"):
        MLPClassifier((10,), max_iter=1, initial_layers=fastnn.reuse_layers(A)).fit(
            X[:, 1:], y)
    with pytest.raises(ValueError, match="FrozenEstimator"):
        MLPClassifier((10,), max_iter=1, initial_layers=clone(A)).fit(X, y)
    with pytest.raises(ValueError, match="n_layers"):
        fastnn.reuse_layers(A, n_layers=2)


def test_clone_pickle_and_grid_search(digits):
    X, y = digits
    A = MLPClassifier((16,), max_iter=3, random_state=0).fit(X, y)
    for initial in (fastnn.reuse_layers(A), FrozenEstimator(A)):
        B = MLPClassifier((16,), max_iter=2, frozen_layers=1, random_state=0,
                          initial_layers=initial)
        C = clone(B)
        C.fit(X, y % 2)
        assert C.coefs_[0].tobytes() == A.coefs_[0].tobytes()
        D = pickle.loads(pickle.dumps(C))
        np.testing.assert_array_equal(D.predict_proba(X), C.predict_proba(X))
        search = GridSearchCV(B, {"learning_rate_init": [1e-3, 1e-2]}, cv=2).fit(X, y % 2)
        assert search.best_estimator_.coefs_[0].tobytes() == A.coefs_[0].tobytes()
    layers = fastnn.reuse_layers(A)
    C = clone(MLPClassifier(initial_layers=layers))
    assert C.initial_layers["coefs"][0] is not layers["coefs"][0]
    np.testing.assert_array_equal(C.initial_layers["coefs"][0], layers["coefs"][0])


# ------------------------------------------------ the chapter's workflow
def test_chapter_workflow(digits):
    """Model A on 8 digit classes; B reuses its hidden layers for 8 vs 9
    with few samples: frozen first, then unfrozen with a lower rate."""
    X, y = digits
    a = y < 8
    A = MLPClassifier((64, 32), max_iter=30, random_state=0).fit(X[a], y[a])
    b = ~a
    Xb, yb = X[b], (y[b] == 9).astype(int)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(Xb))
    train, test = idx[:40], idx[40:]
    B = MLPClassifier((64, 32), initial_layers=fastnn.reuse_layers(A), frozen_layers=2,
                      warm_start=True, max_iter=20, learning_rate_init=1e-2, random_state=0)
    B.fit(Xb[train], yb[train])
    assert B.coefs_[0].tobytes() == A.coefs_[0].tobytes()
    B.set_params(frozen_layers=0, learning_rate_init=1e-4, max_iter=10)
    B.fit(Xb[train], yb[train])
    assert not np.array_equal(B.coefs_[0], A.coefs_[0])
    assert B.score(Xb[test], yb[test]) > 0.8  # chance: 0.5
    search = GridSearchCV(clone(B).set_params(warm_start=False, frozen_layers=2),
                          {"learning_rate_init": [1e-3, 1e-2]}, cv=2)
    search.fit(Xb[train], yb[train])
    assert search.best_estimator_.coefs_[1].tobytes() == A.coefs_[1].tobytes()
