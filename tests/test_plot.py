"""Tests for fastnn.plot.plot_history (skipped without matplotlib)."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastnn import MLPClassifier, MLPRegressor
from fastnn.plot import plot_history

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HIDDEN = (16, 12, 8)
N_DENSE = len(HIDDEN) + 1


@pytest.fixture(autouse=True)
def _quiet_and_close():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X)[:500], y[:500]


def _fit(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(**{"hidden_layer_sizes": HIDDEN, "max_iter": 6,
                                "random_state": 0, **kw}).fit(X, y)


@pytest.fixture(scope="module")
def clf_es(digits):
    # An exponential schedule, so the learning-rate line is not constant.
    return _fit(*digits, early_stopping=True, n_iter_no_change=100, solver="sgd",
                learning_rate="exponential", learning_rate_init=0.05)


@pytest.fixture(scope="module")
def clf(digits):
    return _fit(*digits)


def _curves(ax):
    """The data lines of an axes (not the best-epoch marker)."""
    return [line for line in ax.lines if line.get_gid() != "best_epoch"]


def _best_line(ax):
    (line,) = [line for line in ax.lines if line.get_gid() == "best_epoch"]
    return line


def _xy(line):
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def test_three_panels_with_twin_score_axis(clf_es):
    fig = plot_history(clf_es)
    assert isinstance(fig, matplotlib.figure.Figure)
    # three panels, plus the twin axis of the validation score
    assert len(fig.axes) == 4
    ax_loss, ax_lr, ax_grad, ax_score = fig.axes
    assert [len(_curves(ax)) for ax in (ax_loss, ax_lr, ax_grad, ax_score)] == [2, 1, N_DENSE, 1]
    assert ax_score.get_shared_x_axes().joined(ax_score, ax_loss)


def test_without_early_stopping_one_loss_line(clf):
    assert "val_loss" not in clf.history_
    fig = plot_history(clf)
    assert len(fig.axes) == 3
    assert [len(_curves(ax)) for ax in fig.axes] == [1, 1, N_DENSE]


def test_line_data_equal_history(clf_es):
    h = clf_es.history_
    n = len(h["loss"])
    assert n == clf_es.n_iter_ == 6
    epochs = np.arange(1, n + 1)
    ax_loss, ax_lr, ax_grad, ax_score = plot_history(clf_es).axes

    by_label = {line.get_label(): line for line in _curves(ax_loss)}
    for label, key in [("training loss", "loss"), ("validation loss", "val_loss")]:
        x, yv = _xy(by_label[label])
        np.testing.assert_array_equal(x, epochs)
        np.testing.assert_array_equal(yv, h[key])
    x, yv = _xy(ax_score.lines[0])
    np.testing.assert_array_equal(x, epochs)
    np.testing.assert_array_equal(yv, h["val_score"])

    x, yv = _xy(ax_lr.lines[0])
    np.testing.assert_array_equal(x, epochs)
    np.testing.assert_array_equal(yv, h["lr"])
    assert yv[0] > yv[-1]  # the schedule decays

    grads = np.asarray(h["grad_norm"], float)
    assert grads.shape == (n, N_DENSE)
    for j, line in enumerate(ax_grad.lines):
        x, yv = _xy(line)
        np.testing.assert_array_equal(x, epochs)
        np.testing.assert_array_equal(yv, grads[:, j])


def test_labels_titles_and_legends(clf_es):
    ax_loss, ax_lr, ax_grad, ax_score = plot_history(clf_es).axes
    assert [ax.get_title() for ax in (ax_loss, ax_lr, ax_grad)] == [
        "loss", "learning rate", "gradient norm per layer"]
    for ax in (ax_loss, ax_lr, ax_grad):
        assert ax.get_xlabel() == "epoch"
        assert ax.get_ylabel()
    assert "accuracy" in ax_score.get_ylabel()
    layer_names = ["layer 1", "layer 2", "layer 3", "output"]
    assert [line.get_label() for line in ax_grad.lines] == layer_names
    assert [t.get_text() for t in ax_grad.get_legend().get_texts()] == layer_names
    loss_legend = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert loss_legend[:3] == ["training loss", "validation loss", "validation score (accuracy)"]
    assert loss_legend[3].startswith("best epoch (")
    assert len(loss_legend) == 4


def test_log_scales(clf):
    ax_loss, ax_lr, ax_grad = plot_history(clf).axes
    assert (ax_loss.get_yscale(), ax_lr.get_yscale(), ax_grad.get_yscale()) == (
        "linear", "log", "log")
    _, ax_lr, ax_grad = plot_history(clf, log_lr=False, log_grad=False).axes
    assert (ax_lr.get_yscale(), ax_grad.get_yscale()) == ("linear", "linear")


def test_figsize(clf):
    fig = plot_history(clf, figsize=(9, 3))
    np.testing.assert_allclose(fig.get_size_inches(), (9, 3))


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_not_fitted(Est):
    with pytest.raises(NotFittedError):
        plot_history(Est())
    with pytest.raises(NotFittedError):
        plot_history(make_pipeline(StandardScaler(), Est()))


def test_given_axes(clf_es):
    fig, axs = plt.subplots(3, 1)
    out = plot_history(clf_es, axes=axs)
    assert out is fig
    assert [len(_curves(ax)) for ax in axs] == [2, 1, N_DENSE]
    assert len(fig.axes) == 4  # the three given + the score's twin

    # a 2-D grid and a list are accepted too; the other axes are untouched
    fig2, grid = plt.subplots(2, 3)
    assert plot_history(clf_es, axes=grid[1]) is fig2
    assert [len(_curves(ax)) for ax in grid[0]] == [0, 0, 0]
    assert [len(_curves(ax)) for ax in grid[1]] == [2, 1, N_DENSE]
    assert plot_history(clf_es, axes=list(grid[0])) is fig2


def test_axes_in_subfigure_return_root_figure(clf):
    fig = plt.figure()
    top, bottom = fig.subfigures(2, 1)
    axs = bottom.subplots(1, 3)
    assert plot_history(clf, axes=axs) is fig
    assert [len(_curves(ax)) for ax in axs] == [1, 1, N_DENSE]


def test_wrong_number_of_axes(clf):
    _, axs = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="3 matplotlib Axes"):
        plot_history(clf, axes=axs)


def test_lbfgs_plots_what_there_is(digits):
    est = _fit(*digits, solver="lbfgs", max_iter=15, early_stopping=True)
    assert est.history_["lr"] == [] and est.history_["grad_norm"] == []
    fig = plot_history(est)
    ax_loss, ax_lr, ax_grad = fig.axes  # no score axis: lbfgs records no validation
    assert [len(_curves(ax)) for ax in fig.axes] == [1, 0, 0]
    x, yv = _xy(ax_loss.lines[0])
    np.testing.assert_array_equal(x, [est.n_iter_])
    np.testing.assert_array_equal(yv, est.history_["loss"])
    assert ax_loss.lines[0].get_marker() == "o"  # a lone point must be visible
    for ax in (ax_lr, ax_grad):
        assert any("lbfgs" in t.get_text() for t in ax.texts)


def test_regressor(digits):
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=4, early_stopping=True,
                           random_state=0).fit(X, y / y.std())
    fig = plot_history(reg)
    assert [len(_curves(ax)) for ax in fig.axes] == [2, 1, 2, 1]
    assert [line.get_label() for line in fig.axes[2].lines] == ["layer 1", "output"]
    assert "R²" in fig.axes[3].get_ylabel()


def test_pipeline_plots_last_step(digits, clf):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=HIDDEN, max_iter=3, random_state=0)).fit(X, y)
    ax_loss = plot_history(pipe).axes[0]
    np.testing.assert_array_equal(ax_loss.lines[0].get_ydata(), pipe[-1].history_["loss"])


def test_estimator_without_history(digits):
    # scikit-learn's MLP has loss_curve_ and validation_scores_ but no history_
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkMLPClassifier(hidden_layer_sizes=(8,), max_iter=5, early_stopping=True,
                             random_state=0).fit(X, y)
    fig = plot_history(sk)
    assert [len(_curves(ax)) for ax in fig.axes] == [1, 0, 0, 1]
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), sk.loss_curve_)
    np.testing.assert_array_equal(fig.axes[3].lines[0].get_ydata(), sk.validation_scores_)

    class Fitted(BaseEstimator):
        def fit(self, X, y):
            self.n_iter_ = 3  # fitted by sklearn's rule, but nothing to plot
            return self

    with pytest.raises(ValueError, match="no training history"):
        plot_history(Fitted().fit(X, y))


def test_missing_matplotlib_raises_with_hint(clf, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib") as info:
        plot_history(clf)
    assert 'pip install ".[plot]"' in str(info.value)


def test_fastnn_imports_without_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import fastnn, fastnn.plot\n"
            "assert callable(fastnn.plot.plot_history)\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())


# ----------------------------------------------------------------------
# the best epoch and the legend's place
# ----------------------------------------------------------------------
def test_best_epoch_marked_with_restored_weights(clf_es):
    ax_loss = plot_history(clf_es).axes[0]
    line = _best_line(ax_loss)
    best = int(np.argmax(clf_es.history_["val_score"])) + 1
    np.testing.assert_array_equal(line.get_xdata(), [best, best])
    assert clf_es.best_validation_score_ == clf_es.history_["val_score"][best - 1]
    assert line.get_label() == f"best epoch ({best}, validation score): weights restored"


def test_best_epoch_without_restoring(digits):
    est = _fit(*digits, early_stopping=True, restore_best_weights=False,
               n_iter_no_change=100, max_iter=8)
    line = _best_line(plot_history(est).axes[0])
    best = int(np.argmax(est.history_["val_score"])) + 1
    np.testing.assert_array_equal(line.get_xdata(), [best, best])
    assert "restored" not in line.get_label()


def test_best_epoch_by_training_loss_without_validation(clf):
    line = _best_line(plot_history(clf).axes[0])
    best = int(np.argmin(clf.history_["loss"])) + 1
    np.testing.assert_array_equal(line.get_xdata(), [best, best])
    assert line.get_label() == f"best epoch ({best}, training loss)"


def test_sklearn_early_stopping_always_restores(digits):
    X, y = digits
    sk = SkMLPClassifier(hidden_layer_sizes=(8,), max_iter=6, early_stopping=True,
                         random_state=0).fit(X, y)
    assert _best_line(plot_history(sk).axes[0]).get_label().endswith("weights restored")


def test_lbfgs_marks_no_best_epoch(digits):
    ax_loss = plot_history(_fit(*digits, solver="lbfgs", max_iter=5)).axes[0]
    assert all(line.get_gid() != "best_epoch" for line in ax_loss.lines)


class _Recorded(BaseEstimator):
    """An estimator whose 'fit' records a hand-made history."""

    def __init__(self, loss=(), val_loss=None, val_score=None):
        self.loss, self.val_loss, self.val_score = loss, val_loss, val_score

    def fit(self, X=None, y=None):
        self.history_ = {"loss": self.loss, "val_loss": self.val_loss,
                         "val_score": self.val_score, "lr": [1e-3] * len(self.loss),
                         "grad_norm": [[1.0]] * len(self.loss)}
        return self


def _covered_curves(fig):
    """Labels of the curves of the loss panel (and its twin) that pass
    under the loss legend, found by sampling every segment finely."""
    fig.canvas.draw()
    ax_loss = fig.axes[0]
    box = ax_loss.get_legend().get_window_extent()
    twins = [ax for ax in fig.axes[3:]]
    covered = []
    for ax in [ax_loss, *twins]:
        for line in _curves(ax):
            xy = line.get_transform().transform(np.asarray(line.get_xydata(), float))
            t = np.linspace(0, 1, 200)[:, None]
            pts = np.vstack([a + t * (b - a) for a, b in zip(xy[:-1], xy[1:])] or [xy])
            if box.count_contains(pts):
                covered.append(line.get_label())
    return covered


@pytest.mark.parametrize("history", [
    # a loss that rises to the top right corner, where the legend would go first
    dict(loss=list(np.linspace(0.1, 2.0, 30))),
    # curves through every corner and the centre: no spot is free
    dict(loss=[0.0, 1.0] * 15, val_loss=[1.0, 0.0] * 15, val_score=[0.5, 0.9, 0.1] * 10),
    dict(loss=list(np.linspace(2, 0.1, 30)), val_loss=list(np.linspace(2.2, 0.3, 30)),
         val_score=list(np.linspace(0.1, 0.9, 30))),
])
def test_loss_legend_covers_no_curve(history):
    fig = plot_history(_Recorded(**history).fit())
    assert _covered_curves(fig) == []
    # and it stays inside the panel
    ax_loss = fig.axes[0]
    assert ax_loss.bbox.contains(*ax_loss.get_legend().get_window_extent().p0)
    assert ax_loss.bbox.contains(*ax_loss.get_legend().get_window_extent().p1)


def test_fitted_models_legends_cover_no_curve(clf_es, clf, digits):
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=8, early_stopping=True,
                       random_state=0).fit(X, y / y.std())
    for est in (clf_es, clf, reg):
        assert _covered_curves(plot_history(est)) == []


def test_best_epoch_by_validation_loss_is_the_restored_one(digits):
    """monitor='val_loss': the marked epoch is the one early stopping kept
    (a fit of that many epochs gives the same weights)."""
    X, y = digits
    kw = dict(monitor="val_loss", n_iter_no_change=2, tol=0.02, solver="sgd",
              learning_rate_init=0.05, max_iter=30)
    est = MLPClassifier(hidden_layer_sizes=HIDDEN, random_state=0, early_stopping=True, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X[:400], y[:400], X_val=X[400:], y_val=y[400:])
    line = _best_line(plot_history(est).axes[0])
    best = int(line.get_xdata()[0])
    assert line.get_label() == f"best epoch ({best}, validation loss): weights restored"
    assert best < est.n_iter_ < 30
    kept = _fit(X[:400], y[:400], **{**kw, "max_iter": best})
    for a, b in zip(est.coefs_, kept.coefs_):
        np.testing.assert_array_equal(a, b)
