"""Tests for fastnn.find_learning_rate (Géron's learning-rate finder)."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits

from fastnn import MLPClassifier, MLPRegressor, find_learning_rate


def linear_problem(seed, n=2000, d=8):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    y = X @ rng.randn(d) + 0.1 * rng.randn(n)
    return X, y


def linear_sgd(seed=0):
    # a linear model, plain SGD: on squared error (loss 0.5 * mean (y - Xw)^2)
    # with standardized, uncorrelated inputs the Hessian is ~ the identity,
    # and gradient descent diverges beyond a rate of 2 / (largest eigenvalue)
    return MLPRegressor(hidden_layer_sizes=(), solver="sgd", momentum=0.0, batch_size=32,
                        random_state=seed)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_turning_point_where_gradient_descent_diverges(seed, scale):
    X, y = linear_problem(seed)
    # scaling X by c scales the Hessian by c^2: the divergence rate by 1 / c^2
    result = find_learning_rate(linear_sgd(seed), X * scale, y, min_lr=1e-5, max_lr=100)
    assert result.stopped_early
    divergence = 2.0 / scale ** 2
    assert divergence / 4 < result.turning_lr < 2 * divergence
    assert result.suggested_max_lr == pytest.approx(result.turning_lr / 10)
    # the loss shot up: the last steps are far above the minimum
    assert result.losses[-5:].mean() > 4 * result.smoothed_losses.min() * 0.99


def test_suggestion_trains_well_with_one_cycle():
    from fastnn.schedules import OneCycle

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = MLPClassifier((64,), batch_size=32, max_iter=5, random_state=0)
    result = find_learning_rate(clf, X, y)
    # Adam on digits: the loss turns somewhere between 1e-3 and 1
    assert 1e-3 < result.turning_lr < 1.0
    tuned = clone(clf).set_params(learning_rate=OneCycle(max_lr=result.suggested_max_lr))
    assert tuned.fit(X, y).score(X, y) > 0.95


def test_estimator_left_untouched():
    X, y = load_digits(return_X_y=True)
    clf = MLPClassifier((16,), batch_size=64, early_stopping=True, verbose=True,
                        random_state=0)
    before = pickle.dumps(clf)
    params = clf.get_params()
    find_learning_rate(clf, X / 16.0, y, max_lr=1.0, stop_factor=np.inf)
    assert pickle.dumps(clf) == before and clf.get_params() == params
    assert not hasattr(clf, "coefs_")
    # a fitted estimator keeps its weights
    fitted = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    Xr, yr = linear_problem(0, n=200)
    fitted.fit(Xr, yr)
    coefs = [w.copy() for w in fitted.coefs_]
    find_learning_rate(fitted, Xr, yr, stop_factor=np.inf, max_lr=1e-2)
    for a, b in zip(coefs, fitted.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("epochs", [1, 2])
def test_rates_grow_exponentially_over_the_epochs(epochs):
    X, y = linear_problem(0, n=330)
    est = linear_sgd().set_params(batch_size=50)  # 7 steps per epoch, the last one ragged
    with pytest.warns(UserWarning, match="did not shoot up"):
        result = find_learning_rate(est, X, y, min_lr=1e-6, max_lr=1e-2, epochs=epochs,
                                    stop_factor=np.inf)
    n = 7 * epochs
    assert len(result.rates) == len(result.losses) == n
    expected = 1e-6 * (1e-2 / 1e-6) ** (np.arange(n) / (n - 1))
    np.testing.assert_allclose(result.rates, expected, rtol=1e-12)
    ratios = result.rates[1:] / result.rates[:-1]
    np.testing.assert_allclose(ratios, (1e4) ** (1 / (n - 1)), rtol=1e-12)
    assert not result.stopped_early
    assert np.all(np.isfinite(result.losses))
    assert result.losses[-1] < result.losses[0]  # small rates: the loss only falls


def test_early_stop_when_the_loss_shoots_up():
    X, y = linear_problem(0, n=3200)
    est = linear_sgd()
    full = find_learning_rate(est, X, y, min_lr=1e-4, max_lr=1e3)
    n_steps = 100
    assert full.stopped_early and len(full.rates) < n_steps
    # stopped at the first step whose running mean of 5 losses passed 4x its minimum
    running = np.convolve(full.losses, np.ones(5) / 5, mode="valid")
    assert running[-1] > 4 * running.min()
    assert np.all(running[:-1] <= 4 * np.minimum.accumulate(running)[:-1])
    # a larger stop_factor goes further (or diverges to a non-finite loss)
    patient = find_learning_rate(est, X, y, min_lr=1e-4, max_lr=1e3, stop_factor=1e6)
    assert len(patient.rates) > len(full.rates)
    np.testing.assert_array_equal(patient.rates[:len(full.rates)], full.rates)


def test_plot(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    X, y = linear_problem(0, n=640)
    result = find_learning_rate(linear_sgd(), X, y, min_lr=1e-4, max_lr=100, plot=True)
    ax = result.ax
    assert ax.get_xscale() == "log"
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), result.rates)
    np.testing.assert_array_equal(line.get_ydata(), result.losses)
    assert any(np.allclose(l.get_xdata(), result.suggested_max_lr) for l in ax.get_lines())
    ax.figure.savefig(tmp_path / "lr.png")
    fig, own = matplotlib.pyplot.subplots()
    assert result.plot(ax=own) is own
    matplotlib.pyplot.close("all")


def test_classifier_sample_weight_and_lists():
    X, y = load_digits(return_X_y=True)
    X, y = (X / 16.0)[:300], y[:300]
    w = np.ones(len(y))
    result = find_learning_rate(MLPClassifier((8,), random_state=0, batch_size=30),
                                X.tolist(), [str(v) for v in y], sample_weight=w,
                                max_lr=1.0, stop_factor=np.inf)
    assert len(result.rates) == 10
    # class weights are computed on the whole y ('balanced' per mini-batch would differ)
    X, y = X[:200], np.where(y[:200] == 0, 0, 1)
    clf = MLPClassifier((8,), random_state=0, batch_size=20, class_weight="balanced")
    weighted = find_learning_rate(clf, X, y, max_lr=1e-3, stop_factor=np.inf)
    w = np.where(y == 0, len(y) / (2 * np.sum(y == 0)), len(y) / (2 * np.sum(y == 1)))
    by_hand = find_learning_rate(clf.set_params(class_weight=None), X, y, sample_weight=w,
                                 max_lr=1e-3, stop_factor=np.inf)
    np.testing.assert_allclose(weighted.losses, by_hand.losses, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(min_lr=0), dict(min_lr=1.0, max_lr=0.5),
                                    dict(epochs=0), dict(stop_factor=0.5),
                                    dict(window=4), dict(window=0)])
def test_bad_arguments(kwargs):
    X, y = linear_problem(0, n=50)
    with pytest.raises(ValueError):
        find_learning_rate(linear_sgd(), X, y, **kwargs)


def test_lbfgs_rejected():
    X, y = linear_problem(0, n=50)
    with pytest.raises(ValueError, match="stochastic"):
        find_learning_rate(MLPRegressor(solver="lbfgs"), X, y)
