"""scikit-learn's callback API (sklearn.callback, scikit-learn >= 1.9): a fit
is a task, each epoch (stochastic solvers) or L-BFGS iteration a subtask that
reports the model as it is then; callbacks set on a search or a Pipeline
reach fastnn; a callback can stop a fit; a raising callback changes nothing.

fastnn is deterministic (same random_state, same bits), so the model a
callback sees after epoch k must be exactly a fresh fit with max_iter=k.
"""

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastnn import MLPClassifier, MLPRegressor

callback = pytest.importorskip("sklearn.callback")  # scikit-learn >= 1.9
from sklearn.callback import FitCallback, ScoringMonitor  # noqa: E402
from sklearn.callback.tests._utils import (  # noqa: E402  scikit-learn's own test callbacks
    FailingCallback, MetaEstimator, RecordingAutoPropagatedCallback, RecordingCallback,
    StopFitCallback)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class Recorder(FitCallback):
    """Records every hook with its task and the model it reports."""

    def __init__(self, stop_after_epoch=None, fail_after_epoch=None):
        self.stop_after_epoch = stop_after_epoch
        self.fail_after_epoch = fail_after_epoch
        self.calls = []

    def setup(self, estimator, context):
        self.calls.append(("setup", context.task_name, None, None))

    def teardown(self, estimator, context):
        self.calls.append(("teardown", context.task_name, None, None))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None, metadata=None,
                          fitted_estimator=None):
        self.calls.append(("begin", context.task_name, context.task_id, fitted_estimator))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None,
                        fitted_estimator=None):
        self.calls.append(("end", context.task_name, context.task_id, fitted_estimator))
        done = context.task_id + 1
        if context.task_name != "fit" and done == self.fail_after_epoch:
            raise RuntimeError("callback failed")
        return context.task_name != "fit" and done == self.stop_after_epoch

    def hooks(self, hook, task_name):
        return [c for c in self.calls if c[0] == hook and c[1] == task_name]


def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


def regression():
    X, y = make_regression(n_samples=200, n_features=6, noise=5.0, random_state=0)
    return X, y / 100


def quiet_fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


CASES = {
    "adam classifier": (MLPClassifier, digits, dict(hidden_layer_sizes=(16,))),
    "sgd classifier, BatchNorm, dropout": (
        MLPClassifier, digits, dict(hidden_layer_sizes=(16, 8), solver="sgd",
                                    batch_norm=True, dropout=0.1)),
    "nadam regressor": (MLPRegressor, regression, dict(hidden_layer_sizes=(8,),
                                                       solver="nadam", batch_size=50)),
}


@pytest.mark.parametrize("case", CASES)
def test_each_epoch_is_a_subtask_reporting_the_model_after_it(case):
    Est, make_data, params = CASES[case]
    X, y = make_data()
    rec = Recorder()
    est = quiet_fit(Est(max_iter=4, random_state=0, **params).set_callbacks(rec), X, y)
    assert [c[:3] for c in rec.calls if c[1] == "fit"] == [
        ("setup", "fit", None), ("begin", "fit", 0), ("end", "fit", 0), ("teardown", "fit", None)]
    begins, ends = rec.hooks("begin", "epoch"), rec.hooks("end", "epoch")
    assert [c[2] for c in begins] == [c[2] for c in ends] == [0, 1, 2, 3]
    # begin and end of each epoch alternate, between the fit's begin and end
    order = [c[0] for c in rec.calls if c[1] == "epoch"]
    assert order == ["begin", "end"] * 4
    for k, (_, _, _, model) in enumerate(ends, start=1):
        fresh = quiet_fit(Est(max_iter=k, random_state=0, **params), X, y)
        assert model is not est and model.n_iter_ == k
        np.testing.assert_array_equal(model.predict(X), fresh.predict(X))
        for a, b in zip(model.coefs_ + model.intercepts_, fresh.coefs_ + fresh.intercepts_):
            np.testing.assert_array_equal(a, b)
        assert model.loss_curve_ == fresh.loss_curve_
    # an epoch starts from the model the previous one ended with
    for (_, _, _, start), (_, _, _, before) in zip(begins[1:], ends[:-1]):
        np.testing.assert_array_equal(start.predict(X), before.predict(X))
    # the fit's end reports the estimator itself
    np.testing.assert_array_equal(rec.hooks("end", "fit")[0][3].predict(X), est.predict(X))


def test_scoring_monitor_logs_the_score_of_every_epoch():
    X, y = digits()
    params = dict(hidden_layer_sizes=(16,), random_state=0)
    monitor = ScoringMonitor(scoring="accuracy")
    est = quiet_fit(MLPClassifier(max_iter=5, **params).set_callbacks(monitor), X, y)
    rows = [r for r in monitor.get_logs().data if r["task_name"] == "epoch"]
    assert [r["task_id"] for r in rows] == list(range(est.n_iter_)) == [0, 1, 2, 3, 4]
    expected = [accuracy_score(y, quiet_fit(MLPClassifier(max_iter=k, **params), X, y).predict(X))
                for k in range(1, 6)]
    assert [r["accuracy"] for r in rows] == expected
    assert len(set(expected)) > 1  # the model changes from epoch to epoch


def test_scoring_monitor_scores_with_the_sample_weight():
    X, y = regression()
    sw = np.random.RandomState(0).uniform(0.1, 2.0, len(y))
    params = dict(hidden_layer_sizes=(8,), random_state=0)
    monitor = ScoringMonitor(scoring="r2")
    quiet_fit(MLPRegressor(max_iter=3, **params).set_callbacks(monitor), X, y, sample_weight=sw)
    rows = [r for r in monitor.get_logs().data if r["task_name"] == "epoch"]
    expected = [r2_score(y, quiet_fit(MLPRegressor(max_iter=k, **params), X, y,
                                      sample_weight=sw).predict(X), sample_weight=sw)
                for k in (1, 2, 3)]
    assert [r["r2"] for r in rows] == expected


@pytest.mark.parametrize("Est,make_data,frozen", [(MLPClassifier, digits, 0),
                                                  (MLPRegressor, regression, 0),
                                                  (MLPClassifier, digits, 1)])
def test_lbfgs_iterations_are_subtasks_reporting_the_iterate(Est, make_data, frozen):
    """frozen_layers: scipy optimizes part of the weights; the reported
    model has all of them."""
    X, y = make_data()
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0, frozen_layers=frozen)
    rec = Recorder()
    est = quiet_fit(Est(max_iter=6, **params).set_callbacks(rec), X, y)
    ends = rec.hooks("end", "lbfgs-iter")
    assert est.n_iter_ == 6
    assert [c[2] for c in ends] == [c[2] for c in rec.hooks("begin", "lbfgs-iter")] == \
        list(range(6))
    for k, (_, _, _, model) in enumerate(ends, start=1):
        fresh = quiet_fit(Est(max_iter=k, **params), X, y)
        np.testing.assert_array_equal(model.predict(X), fresh.predict(X))
        assert model.n_iter_ == fresh.n_iter_ == k
        assert model.loss_ == pytest.approx(fresh.loss_, rel=1e-6)
    np.testing.assert_array_equal(ends[-1][3].predict(X), est.predict(X))
    for k, (_, _, _, model) in enumerate(rec.hooks("begin", "lbfgs-iter")):
        assert model.n_iter_ == k


def test_lbfgs_stopping_before_max_iter_leaves_no_subtask_open():
    """Converging early (or running out of function evaluations) still pairs
    every begin with an end."""
    X, y = regression()
    rec = Recorder()
    est = quiet_fit(MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=500,
                                 max_fun=40, random_state=0).set_callbacks(rec), X, y)
    n_begins = len(rec.hooks("begin", "lbfgs-iter"))
    assert n_begins == len(rec.hooks("end", "lbfgs-iter")) >= est.n_iter_ > 0
    assert est.n_iter_ < 500


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_callback_can_stop_the_fit(solver):
    X, y = digits()
    params = dict(hidden_layer_sizes=(8,), solver=solver, random_state=0)
    rec = Recorder(stop_after_epoch=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a requested stop, not a failure
        est = MLPClassifier(max_iter=50, **params).set_callbacks(rec).fit(X, y)
    assert est.n_iter_ == 3
    task = "epoch" if solver == "adam" else "lbfgs-iter"
    assert len(rec.hooks("begin", task)) == len(rec.hooks("end", task)) == 3
    fresh = quiet_fit(MLPClassifier(max_iter=3, **params), X, y)
    np.testing.assert_array_equal(est.predict_proba(X), fresh.predict_proba(X))
    assert rec.calls[-1][0] == "teardown"


def test_scikit_learns_stop_callback_stops_after_the_first_epoch():
    X, y = digits()
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    est.set_callbacks(StopFitCallback()).fit(X, y)
    assert est.n_iter_ == 1


def test_partial_fit_is_one_task_with_one_epoch():
    X, y = digits()
    rec = Recorder()
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0).set_callbacks(rec)
    est.partial_fit(X, y, classes=np.unique(y)).partial_fit(X, y)
    assert [c[:3] for c in rec.calls if c[0] in ("begin", "end")] == [
        ("begin", "partial_fit", 0), ("begin", "epoch", 0), ("end", "epoch", 0),
        ("end", "partial_fit", 0)] * 2
    np.testing.assert_array_equal(rec.hooks("end", "epoch")[-1][3].predict(X), est.predict(X))


def test_early_stopping_epochs_report_their_own_weights_and_the_fit_the_best():
    X, y = digits()
    params = dict(hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=2, tol=0.5,
                  random_state=0)
    rec = Recorder()
    est = quiet_fit(MLPClassifier(max_iter=30, **params).set_callbacks(rec), X, y)
    ends = rec.hooks("end", "epoch")
    n = est.n_iter_
    assert len(ends) == n < 30
    assert np.argmax(est.validation_scores_) < n - 1  # the best epoch is not the last
    last = quiet_fit(MLPClassifier(max_iter=n, **{**params, "restore_best_weights": False}),
                     X, y)
    np.testing.assert_array_equal(ends[-1][3].coefs_[0], last.coefs_[0])
    np.testing.assert_array_equal(rec.hooks("end", "fit")[0][3].coefs_[0], est.coefs_[0])
    assert not np.array_equal(est.coefs_[0], last.coefs_[0])


# ---------------------------------------------------------------------------
# meta-estimators: searches, Pipeline, scikit-learn's test meta-estimator
# ---------------------------------------------------------------------------
def _no_unsupported_warning(record):
    assert not [w for w in record if "does not support callbacks" in str(w.message)]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_progress_bar_over_a_grid_search_shows_fastnns_epochs(n_jobs, capsys):
    pytest.importorskip("rich")
    X, y = digits()
    search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
                          {"alpha": [1e-4, 1e-2]}, cv=2, n_jobs=n_jobs)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        search.set_callbacks(callback.ProgressBar()).fit(X, y)
    _no_unsupported_warning(record)
    out = capsys.readouterr().out
    fits = re.findall(r"candidate-split-evaluation \| MLPClassifier - fit #\d", out)
    assert len(set(fits)) == 4
    assert "refit-with-best-params | MLPClassifier - fit" in out
    assert "100%" in out and not re.search(r"\b[0-9]{1,2}%", out)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_propagates_callbacks_to_every_epoch(n_jobs):
    X, y = digits()
    rec = RecordingAutoPropagatedCallback()
    search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
                          {"alpha": [1e-4, 1e-2]}, cv=2, n_jobs=n_jobs).set_callbacks(rec)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        search.fit(X, y)
    _no_unsupported_warning(record)
    epochs = [r for r in rec.record if r["name"] == "on_fit_task_end"
              and r["context"].task_name == "epoch"]
    assert len(epochs) == (4 + 1) * 3  # 2 candidates x 2 splits, the refit; 3 epochs each
    assert {r["context"].estimator_name for r in epochs} == {"MLPClassifier"}


def test_pipeline_reaches_fastnn_and_a_monitor_on_the_step_scores_its_epochs():
    X, y = digits()
    monitor = ScoringMonitor(scoring="accuracy")
    rec = RecordingAutoPropagatedCallback()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    pipe = make_pipeline(StandardScaler(), clf.set_callbacks(monitor)).set_callbacks(rec)
    pipe.fit(X, y)
    epochs = [r for r in rec.record if r["name"] == "on_fit_task_end"
              and r["context"].task_name == "epoch"]
    assert len(epochs) == 3
    rows = [r for r in monitor.get_logs().data if r["task_name"] == "epoch"]
    Xs = StandardScaler().fit_transform(X)
    expected = [accuracy_score(y, quiet_fit(clone(clf).set_params(max_iter=k), Xs, y).predict(Xs))
                for k in (1, 2, 3)]
    assert [r["accuracy"] for r in rows] == expected


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_scikit_learns_meta_estimator_check(n_jobs):
    """scikit-learn's own hook-count checks (sklearn/callback/tests), with
    fastnn as the inner estimator."""
    X, y = digits()
    n_outer, n_inner, max_iter = 2, 2, 3
    inner = MLPClassifier(hidden_layer_sizes=(4,), max_iter=max_iter, random_state=0)
    auto = RecordingAutoPropagatedCallback()
    MetaEstimator(inner, n_outer=n_outer, n_inner=n_inner, n_jobs=n_jobs).set_callbacks(
        auto).fit(X, y)
    n_tasks = int(np.sum(np.cumprod([1, n_outer, n_inner, max_iter])))
    assert auto.count_hooks("setup") == auto.count_hooks("teardown") == 1
    assert auto.count_hooks("on_fit_task_begin") == auto.count_hooks("on_fit_task_end") == n_tasks

    plain = RecordingCallback()
    MetaEstimator(clone(inner).set_callbacks(plain), n_outer=n_outer, n_inner=n_inner,
                  n_jobs=n_jobs).fit(X, y)
    n_fits = n_outer * n_inner
    assert plain.count_hooks("setup") == plain.count_hooks("teardown") == n_fits
    assert plain.count_hooks("on_fit_task_end") == n_fits * (1 + max_iter)


def test_callbacks_survive_pickle_and_clone():
    X, y = digits()
    monitor = ScoringMonitor(scoring="accuracy")
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    est.set_callbacks(monitor)
    assert clone(est)._skl_callbacks == [monitor]
    quiet_fit(est, X, y)
    assert est._skl_callbacks[0] is monitor  # a fit works on copies of its state, not this
    loaded = pickle.loads(pickle.dumps(est))
    quiet_fit(loaded, X, y)
    assert len([r for r in loaded._skl_callbacks[0].get_logs().data
                if r["task_name"] == "epoch"]) == 2


def test_set_callbacks_refuses_what_is_not_a_callback():
    with pytest.raises(TypeError, match="FitCallback protocol"):
        MLPClassifier().set_callbacks(object())


# ---------------------------------------------------------------------------
# all or nothing (tests/test_all_or_nothing.py's rule) when a callback raises
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver,call", [("adam", "fit"), ("lbfgs", "fit"),
                                         ("sgd", "partial_fit")])
def test_a_raising_callback_leaves_the_model_as_it_was(solver, call):
    X, y = digits()
    est = quiet_fit(MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=3,
                                  warm_start=True, random_state=0), X, y)
    before, attrs, out = pickle.dumps(est), dict(vars(est)), est.predict_proba(X)
    rec = Recorder(fail_after_epoch=2 if call == "fit" else 1)
    est.set_callbacks(rec)
    with pytest.raises(RuntimeError, match="callback failed"):
        getattr(est, call)(X, y)
    assert rec.hooks("end", "epoch" if solver != "lbfgs" else "lbfgs-iter")  # it ran
    assert rec.calls[-1][0] == "teardown"  # torn down all the same
    est.set_callbacks()
    assert set(vars(est)) == set(attrs)
    assert all(vars(est)[k] is v for k, v in attrs.items())
    assert pickle.dumps(est) == before
    np.testing.assert_array_equal(est.predict_proba(X), out)


@pytest.mark.parametrize("fail_at", ["setup", "on_fit_task_begin", "on_fit_task_end",
                                     "teardown"])
def test_scikit_learns_failing_callback(fail_at):
    X, y = digits()
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match=f"failed at {fail_at}"):
        est.set_callbacks(FailingCallback(fail_at=fail_at)).fit(X, y)
    if fail_at == "teardown":  # the fit itself succeeded
        assert est.n_iter_ == 2
    else:
        with pytest.raises(NotFittedError):
            est.predict(X)
    assert not hasattr(est, "_callback_fit_ctx")
