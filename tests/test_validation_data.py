"""Your own validation data (issue 15) and what watches it (issue 14, item 5).

fit(X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None)
as scikit-learn's HistGradientBoosting; ``monitor`` ('val_score', scikit-learn's
rule, or 'val_loss', Keras's EarlyStopping rule) for early stopping, for the
weights restore_best_weights keeps and for ReduceOnPlateau; validation without
early stopping (X_val with early_stopping=False) as Keras's validation_data.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score

from fastnn import MLPClassifier, MLPRegressor
from fastnn.schedules import ReduceOnPlateau

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16
    return X[:1300], y[:1300], X[1300:], y[1300:]


def regression_data(n=300, p=6, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.randn(n)
    return X[:200], y[:200], X[200:], y[200:]


def small_clf(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (16,), "max_iter": 8, "random_state": 0,
                            **params})


def weights(est):
    return est.coefs_ + est.intercepts_


def assert_same_weights(a, b):
    for wa, wb in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)


# --------------------------------------------------------------- X_val itself
def test_validation_figures_are_those_of_the_given_set(digits):
    """history_'s val_loss and val_score, and validation_scores_, are the log
    loss and accuracy of the final weights on exactly X_val (computed here by
    scikit-learn's metrics), and the training data is not split (t_ counts
    every training sample each epoch)."""
    Xt, yt, Xv, yv = digits
    clf = small_clf(early_stopping=False).fit(Xt, yt, X_val=Xv, y_val=yv)
    assert clf.t_ == clf.n_iter_ * len(Xt)
    assert len(clf.history_["val_loss"]) == len(clf.validation_scores_) == clf.n_iter_
    assert clf.history_["val_loss"][-1] == pytest.approx(
        log_loss(yv, clf.predict_proba(Xv), labels=clf.classes_), rel=1e-9)
    assert clf.validation_scores_[-1] == accuracy_score(yv, clf.predict(Xv))
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_early_stopping_with_x_val_does_not_split_the_training_data(digits):
    Xt, yt, Xv, yv = digits
    clf = small_clf(early_stopping=True, restore_best_weights=False,
                    n_iter_no_change=100).fit(Xt, yt, X_val=Xv, y_val=yv)
    assert clf.t_ == clf.n_iter_ * len(Xt)
    assert clf.validation_scores_[-1] == accuracy_score(yv, clf.predict(Xv))
    assert clf.best_loss_ is None  # scikit-learn's early-stopping attributes


def test_validating_without_early_stopping_changes_no_weight(digits):
    """X_val with early_stopping=False only watches: the same model as
    without it (the training and its random draws are unchanged)."""
    Xt, yt, Xv, yv = digits
    plain = small_clf().fit(Xt, yt)
    watched = small_clf().fit(Xt, yt, X_val=Xv, y_val=yv)
    assert_same_weights(plain, watched)
    assert plain.validation_scores_ is None and "val_loss" not in plain.history_
    assert len(watched.validation_scores_) == watched.n_iter_


def test_without_early_stopping_training_stops_on_the_training_loss(digits):
    """scikit-learn's rule without early stopping is unchanged by X_val: the
    training loss stops the fit, however the validation figures move."""
    Xt, yt, Xv, yv = digits
    plain = small_clf(max_iter=200, tol=0.05, n_iter_no_change=2).fit(Xt, yt)
    watched = small_clf(max_iter=200, tol=0.05, n_iter_no_change=2).fit(
        Xt, yt, X_val=Xv, y_val=yv)
    assert plain.n_iter_ < 200
    assert watched.n_iter_ == plain.n_iter_
    assert watched.best_loss_ == min(watched.loss_curve_)


def test_sample_weight_val_weighs_the_validation_figures(digits):
    Xt, yt, Xv, yv = digits
    w = np.random.RandomState(1).uniform(0.1, 3, len(yv))
    clf = small_clf().fit(Xt, yt, X_val=Xv, y_val=yv, sample_weight_val=w)
    assert clf.history_["val_loss"][-1] == pytest.approx(
        log_loss(yv, clf.predict_proba(Xv), sample_weight=w, labels=clf.classes_), rel=1e-9)
    assert clf.validation_scores_[-1] == pytest.approx(
        accuracy_score(yv, clf.predict(Xv), sample_weight=w))


def test_regressor_validates_on_x_val():
    Xt, yt, Xv, yv = regression_data()
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=10, random_state=0).fit(
        Xt, yt, X_val=Xv, y_val=yv)
    pred = reg.predict(Xv)
    assert reg.history_["val_loss"][-1] == pytest.approx(
        0.5 * mean_squared_error(yv, pred), rel=1e-9)
    assert reg.validation_scores_[-1] == pytest.approx(r2_score(yv, pred), rel=1e-9)


def test_string_labels_and_labels_as_a_column(digits):
    Xt, yt, Xv, yv = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # y_val as a column: sklearn's warning
        clf = small_clf().fit(Xt, names[yt], X_val=Xv, y_val=names[yv].reshape(-1, 1))
    assert clf.validation_scores_[-1] == accuracy_score(names[yv], clf.predict(Xv))


def test_multilabel_validation(digits):
    Xt, yt, Xv, yv = digits
    Y = np.column_stack([yt % 2, yt > 4, yt == 0]).astype(int)
    Yv = np.column_stack([yv % 2, yv > 4, yv == 0]).astype(int)
    clf = small_clf().fit(Xt, Y, X_val=Xv, y_val=Yv)
    assert clf.validation_scores_[-1] == accuracy_score(Yv, clf.predict(Xv))
    assert clf.history_["val_loss"][-1] == pytest.approx(
        -np.mean(np.sum(Yv * np.log(clf.predict_proba(Xv))
                        + (1 - Yv) * np.log(1 - clf.predict_proba(Xv)), axis=1)), rel=1e-7)


def test_x_val_follows_the_models_dtype(digits):
    """float32 X trains in float32 whatever X_val's float type; dtype='float32'
    converts both; float64 values beyond float32 are refused, naming X."""
    Xt, yt, Xv, yv = digits
    a = small_clf().fit(Xt.astype(np.float32), yt, X_val=Xv, y_val=yv)
    b = small_clf().fit(Xt.astype(np.float32), yt, X_val=Xv.astype(np.float32), y_val=yv)
    assert a.coefs_[0].dtype == np.float32
    assert a.history_["val_loss"] == pytest.approx(b.history_["val_loss"], rel=1e-5)
    c = small_clf(dtype="float32").fit(Xt, yt, X_val=Xv, y_val=yv)
    assert c.history_["val_loss"] == pytest.approx(b.history_["val_loss"], rel=1e-5)
    huge = Xv.copy()
    huge[0, 0] = 1e300
    with pytest.raises(ValueError, match="beyond the range"):
        small_clf(dtype="float32").fit(Xt, yt, X_val=huge, y_val=yv)


def test_x_val_may_be_sparse(digits):
    import scipy.sparse as sp

    Xt, yt, Xv, yv = digits
    dense = small_clf().fit(Xt, yt, X_val=Xv, y_val=yv)
    sparse = small_clf().fit(Xt, yt, X_val=sp.csr_matrix(Xv), y_val=yv)
    assert sparse.history_["val_loss"] == pytest.approx(dense.history_["val_loss"], rel=1e-9)


def test_feature_names_of_x_val_are_checked(digits):
    pd = pytest.importorskip("pandas")
    Xt, yt, Xv, yv = digits
    cols = [f"f{i}" for i in range(Xt.shape[1])]
    dft, dfv = pd.DataFrame(Xt, columns=cols), pd.DataFrame(Xv, columns=cols)
    clf = small_clf(max_iter=2).fit(dft, yt, X_val=dfv, y_val=yv)
    assert len(clf.validation_scores_) == 2
    with pytest.raises(ValueError, match="feature names"):
        small_clf(max_iter=2).fit(dft, yt, X_val=dfv[cols[::-1]], y_val=yv)
    with pytest.warns(UserWarning, match="feature names"):
        small_clf(max_iter=2).fit(dft, yt, X_val=Xv, y_val=yv)


# ----------------------------------------------------------- refused, untouched
def _bad_validation(Xv, yv):
    X3 = Xv.copy()
    X3[3, 3] = np.nan
    return {
        "X_val without y_val": (dict(X_val=Xv), "y_val was not provided"),
        "y_val without X_val": (dict(y_val=yv), "X_val was not provided"),
        "weights alone": (dict(sample_weight_val=np.ones(len(yv))),
                          "X_val and y_val were not provided"),
        "NaN in X_val": (dict(X_val=X3, y_val=yv), "Input X_val contains NaN"),
        "too few columns": (dict(X_val=Xv[:, :5], y_val=yv), "features"),
        "length mismatch": (dict(X_val=Xv, y_val=yv[:-1]), "inconsistent numbers"),
        "one sample": (dict(X_val=Xv[:1], y_val=yv[:1]), "minimum of 2"),
        "unseen class": (dict(X_val=Xv, y_val=yv + 10), "classes not in y"),
        "multilabel y_val": (dict(X_val=Xv, y_val=np.column_stack([yv > 4, yv % 2])),
                             "class labels"),
        "weights length": (dict(X_val=Xv, y_val=yv, sample_weight_val=np.ones(3)),
                           "sample_weight"),
        "zero weights": (dict(X_val=Xv, y_val=yv, sample_weight_val=np.zeros(len(yv))),
                         "non-zero"),
        "negative sum": (dict(X_val=Xv, y_val=yv, sample_weight_val=-np.ones(len(yv))),
                         "sample_weight_val must have a positive"),
    }


@pytest.mark.parametrize("case", list(_bad_validation(np.zeros((5, 5)), np.zeros(5))))
def test_bad_validation_data_is_refused_and_changes_nothing(digits, case):
    """A clear ValueError, and a fitted model stays exactly as it was
    (tests/test_all_or_nothing.py's contract)."""
    Xt, yt, Xv, yv = digits
    kwargs, message = _bad_validation(Xv, yv)[case]
    clf = small_clf(max_iter=3, warm_start=True).fit(Xt, yt)
    before = pickle.dumps(clf)
    with pytest.raises(ValueError, match=message):
        clf.fit(Xt, yt, **kwargs)
    assert pickle.dumps(clf) == before


def test_regressor_refuses_mismatched_or_negative_targets():
    Xt, yt, Xv, yv = regression_data()
    with pytest.raises(ValueError, match="y_val has 2 output"):
        MLPRegressor(max_iter=2).fit(Xt, yt, X_val=Xv, y_val=np.column_stack([yv, yv]))
    with pytest.raises(ValueError, match="non-negative y_val"):
        MLPRegressor(loss="poisson", max_iter=2).fit(Xt, np.abs(yt), X_val=Xv, y_val=yv)


def test_multilabel_needs_multilabel_y_val(digits):
    Xt, yt, Xv, yv = digits
    Y = np.column_stack([yt % 2, yt > 4]).astype(int)
    with pytest.raises(ValueError, match="multilabel indicator matrix"):
        small_clf(max_iter=2).fit(Xt, Y, X_val=Xv, y_val=yv % 2)
    with pytest.raises(ValueError, match="has 3 labels"):
        small_clf(max_iter=2).fit(Xt, Y, X_val=Xv,
                                  y_val=np.column_stack([yv % 2, yv > 4, yv > 6]).astype(int))


def test_lbfgs_refuses_validation_data(digits):
    Xt, yt, Xv, yv = digits
    with pytest.raises(ValueError, match="stochastic solver"):
        small_clf(solver="lbfgs").fit(Xt, yt, X_val=Xv, y_val=yv)


def test_partial_fit_takes_no_validation_data(digits):
    Xt, yt, Xv, yv = digits
    with pytest.raises(TypeError, match="X_val"):
        small_clf().partial_fit(Xt, yt, classes=np.arange(10), X_val=Xv, y_val=yv)


def test_warm_start_can_start_validating(digits):
    """A warm-started fit with X_val after a fit without validation records
    from its own first epoch on."""
    Xt, yt, Xv, yv = digits
    clf = small_clf(max_iter=3, warm_start=True).fit(Xt, yt)
    assert clf.validation_scores_ is None
    clf.fit(Xt, yt, X_val=Xv, y_val=yv)
    assert len(clf.validation_scores_) == len(clf.history_["val_loss"]) == 3
    assert clf.validation_scores_[-1] == accuracy_score(yv, clf.predict(Xv))


# ------------------------------------------------------------ metadata routing
def test_metadata_routing_of_weights_and_validation_data(digits):
    """sample_weight still routes; X_val/y_val route like HistGradientBoosting's,
    and a Pipeline transforms X_val as X (transform_input)."""
    import sklearn
    from sklearn.model_selection import cross_validate
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    Xt, yt, Xv, yv = digits
    with sklearn.config_context(enable_metadata_routing=True):
        clf = small_clf(max_iter=3).set_fit_request(sample_weight=True, X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("mlp", clf)], transform_input=["X_val"])
        pipe.fit(Xt, yt, X_val=Xv, y_val=yv)
        mlp = pipe.named_steps["mlp"]
        assert mlp.validation_scores_[-1] == accuracy_score(yv, pipe.predict(Xv))

        w = np.where(yt == 3, 5.0, 1.0)
        routed = cross_validate(small_clf(max_iter=3).set_fit_request(sample_weight=True)
                                .set_score_request(sample_weight=False),
                                Xt, yt, params={"sample_weight": w}, cv=2,
                                return_estimator=True)
        unrouted = cross_validate(small_clf(max_iter=3), Xt, yt, cv=2, return_estimator=True)
        assert not np.array_equal(routed["estimator"][0].coefs_[0],
                                  unrouted["estimator"][0].coefs_[0])


# ------------------------------------------------------- monitor='val_loss'
def keras_early_stopping(val_loss, min_delta, patience):
    """(epoch it stops at, epoch whose weights it keeps), 1-based, of Keras's
    EarlyStopping(monitor='val_loss', min_delta, patience) on a recorded
    curve, written from its documented rule: `wait` grows every epoch; an
    improvement (``current + min_delta < best``, always the first epoch)
    moves `best` and resets `wait`; otherwise stop once ``wait >=
    patience``. The stop epoch is None when the curve ends first."""
    best, best_epoch, wait = None, None, 0
    for epoch, current in enumerate(val_loss, start=1):
        wait += 1
        if best is None or current + min_delta < best:
            best, best_epoch, wait = current, epoch, 0
        elif wait >= patience:
            return epoch, best_epoch
    return None, best_epoch


LONG = 60  # epochs of the recorded curve


def curve_clf(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (16,), "learning_rate_init": 0.01,
                            "random_state": 0, **params})


@pytest.fixture(scope="module")
def recorded(digits):
    """history_['val_loss'] of a long fit that validates on X_val and never
    stops (early stopping off, no training-loss stop)."""
    Xt, yt, Xv, yv = digits
    clf = curve_clf(max_iter=LONG, n_iter_no_change=10**6).fit(Xt, yt, X_val=Xv, y_val=yv)
    return clf.history_["val_loss"]


@pytest.mark.parametrize("tol, patience", [(0.01, 3), (0.0, 2), (0.02, 5)])
def test_val_loss_stops_where_keras_would_on_the_recorded_curve(digits, recorded, tol,
                                                                patience):
    """The same training (same draws: X_val is not split off) with early
    stopping on val_loss stops at the epoch Keras's rule gives on the
    recorded curve and keeps that rule's best epoch's weights (a fit of just
    that many epochs); restore_best_weights=False keeps the last epoch's."""
    Xt, yt, Xv, yv = digits
    stop, best = keras_early_stopping(recorded, tol, patience)
    assert stop is not None and best < stop < LONG  # the curve makes the case
    params = dict(max_iter=LONG, early_stopping=True, monitor="val_loss", tol=tol,
                  n_iter_no_change=patience)
    clf = curve_clf(**params).fit(Xt, yt, X_val=Xv, y_val=yv)
    assert clf.n_iter_ == stop
    np.testing.assert_array_equal(clf.history_["val_loss"], recorded[:stop])
    assert_same_weights(clf, curve_clf(max_iter=best, n_iter_no_change=10**6).fit(Xt, yt))
    last = curve_clf(restore_best_weights=False, **params).fit(Xt, yt, X_val=Xv, y_val=yv)
    assert last.n_iter_ == stop
    assert_same_weights(last, curve_clf(max_iter=stop, n_iter_no_change=10**6).fit(Xt, yt))


def test_val_loss_best_moves_only_by_more_than_tol(recorded):
    """The curve has an epoch better than the kept one, but by less than tol:
    Keras keeps the earlier epoch (the lowest loss is not what it keeps)."""
    stop, best = keras_early_stopping(recorded, 0.01, 3)
    assert int(np.argmin(recorded[:stop])) + 1 != best


def test_val_score_keeps_scikit_learns_rule(digits):
    """monitor='val_score' (the default) stops after n_iter_no_change + 1
    epochs without a score gain of tol and keeps the highest score's epoch."""
    Xt, yt, Xv, yv = digits
    clf = curve_clf(max_iter=LONG, early_stopping=True, n_iter_no_change=3).fit(
        Xt, yt, X_val=Xv, y_val=yv)
    scores, best, count = clf.validation_scores_, -np.inf, 0
    for epoch, s in enumerate(scores, start=1):
        count = count + 1 if s < best + clf.tol else 0
        best = max(best, s)
        if count > 3:
            break
    assert epoch == clf.n_iter_ < LONG
    best_epoch = int(np.argmax(scores)) + 1
    assert_same_weights(clf, curve_clf(max_iter=best_epoch, n_iter_no_change=10**6).fit(Xt, yt))


@pytest.mark.keras
def test_keras_early_stopping_agrees_on_the_recorded_curve(recorded):
    """keras.callbacks.EarlyStopping itself, fed the recorded curve, stops and
    restores where the reference above says."""
    keras = pytest.importorskip("keras")

    class Model:  # what EarlyStopping touches: weights (an epoch tag) and the flag
        stop_training = False
        epoch = 0

        def get_weights(self):
            return self.epoch

        def set_weights(self, w):
            self.restored = w

    for tol, patience in [(0.01, 3), (0.0, 2), (0.02, 5)]:
        model = Model()
        cb = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=tol,
                                           patience=patience, restore_best_weights=True)
        cb.set_model(model)
        cb.on_train_begin()
        for epoch, v in enumerate(recorded):
            model.epoch = epoch + 1
            cb.on_epoch_end(epoch, {"val_loss": v})
            if model.stop_training:
                break
        cb.on_train_end()
        assert (model.epoch, model.restored) == keras_early_stopping(recorded, tol, patience)


# ------------------------------------------------ plateau on validation data
def keras_reduce_lr_on_plateau(lr0, monitored, factor, patience):
    """The rate of each epoch under Keras's ReduceLROnPlateau (mode 'min',
    min_delta 0, no cooldown or floor) fed `monitored` after each epoch."""
    lr, best, wait, rates = lr0, None, 0, []
    for m in monitored:
        rates.append(lr)
        if best is None or m < best:
            best, wait = m, 0
        else:
            wait += 1
            if wait >= patience:
                lr, wait = lr * factor, 0
    return rates


@pytest.mark.parametrize("monitor", ["val_loss", "val_score"])
def test_plateau_watches_x_val_without_early_stopping(digits, monitor):
    """With X_val and early_stopping=False the schedule's rates follow the
    validation figure `monitor` names (the negated score for 'val_score'),
    as Keras's ReduceLROnPlateau with validation_data; training is not
    stopped by it."""
    Xt, yt, Xv, yv = digits
    clf = curve_clf(max_iter=40, n_iter_no_change=10**6, monitor=monitor,
                    learning_rate=ReduceOnPlateau(factor=0.5, patience=2)).fit(
        Xt, yt, X_val=Xv, y_val=yv)
    assert clf.n_iter_ == 40
    watched = (clf.history_["val_loss"] if monitor == "val_loss"
               else [-s for s in clf.history_["val_score"]])
    expected = keras_reduce_lr_on_plateau(0.01, watched, 0.5, 2)
    assert len(set(expected)) > 1  # the rate was cut: the case is made
    np.testing.assert_allclose(clf.history_["lr"], expected, rtol=1e-12)


def test_plateau_on_the_training_loss_when_not_validating(digits):
    Xt, yt, _, _ = digits
    clf = curve_clf(max_iter=40, n_iter_no_change=10**6, monitor="val_loss",
                    learning_rate=ReduceOnPlateau(factor=0.5, patience=1)).fit(Xt, yt)
    expected = keras_reduce_lr_on_plateau(0.01, clf.loss_curve_, 0.5, 1)
    np.testing.assert_allclose(clf.history_["lr"], expected, rtol=1e-12)


def test_validation_split_without_stopping(digits):
    """early_stopping=True with n_iter_no_change=np.inf holds out
    validation_fraction and watches it, and never stops on it."""
    Xt, yt, _, _ = digits
    clf = curve_clf(max_iter=25, early_stopping=True, n_iter_no_change=np.inf,
                    monitor="val_loss", restore_best_weights=False,
                    learning_rate=ReduceOnPlateau(factor=0.5, patience=1)).fit(Xt, yt)
    assert clf.n_iter_ == 25
    assert clf.t_ < 25 * len(Xt)  # trained on the split's rest only
    expected = keras_reduce_lr_on_plateau(0.01, clf.history_["val_loss"], 0.5, 1)
    np.testing.assert_allclose(clf.history_["lr"], expected, rtol=1e-12)


def test_early_stopping_trains_on_x_without_copying_its_rows():
    """The split keeps X whole: the epoch gathers the training rows through
    their indices (sklearn copies them out, 90% of X).  numpy reports its
    buffers to tracemalloc; the fit's peak stays far below X's size (the
    validation rows, 10%, are copied as sklearn does)."""
    import tracemalloc
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60_000, 50))
    y = X[:, 0] - 2 * X[:, 1]
    est = MLPRegressor(hidden_layer_sizes=(4,), early_stopping=True, max_iter=2,
                       batch_size=1000, random_state=0)
    tracemalloc.start()
    try:
        est.fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.3 * X.nbytes, (peak, X.nbytes)


def test_early_stopping_on_sparse_x_trains_as_on_dense_x(digits):
    """The CSR rows of the split are gathered by index as the dense ones:
    the same model, validation figures and all."""
    from scipy import sparse as sp
    X, y = digits[0], digits[1]
    params = dict(hidden_layer_sizes=(12,), max_iter=5, random_state=3, tol=0,
                  n_iter_no_change=50, validation_fraction=0.2, early_stopping=True)
    dense = MLPClassifier(**params).fit(X, y)
    csr = MLPClassifier(**params).fit(sp.csr_matrix(X), y)
    assert len(dense.validation_scores_) == 5
    assert csr.validation_scores_ == dense.validation_scores_
    assert csr.loss_curve_ == dense.loss_curve_
    for a, b in zip(csr.coefs_ + csr.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_array_equal(a, b)
