"""scikit-learn's behaviours where a user meets them (issue 12): divergence
with early stopping, the error texts, the stratified validation split, and
partial_fit / warm_start from weights set by hand."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

import fastnn
from fastnn import DivergenceError

SKLEARN_NONFINITE = ("Solver produced non-finite parameter weights. The input data may "
                     "contain large values and need to be preprocessed.")


def fit_quietly(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y, **kw)


def test_divergence_with_early_stopping_warns_records_nan_and_restores_best():
    """sklearn keeps training a diverged model with early stopping: NaN
    validation scores, the best epoch's weights at the end, no error."""
    X, y = load_iris(return_X_y=True)
    p = dict(hidden_layer_sizes=(20,), activation="identity", solver="sgd",
             learning_rate_init=1.0, max_iter=20, early_stopping=True, random_state=0)
    sk = fit_quietly(SkRegressor(**p), X, y)
    fn = fastnn.MLPRegressor(**p)
    with pytest.warns(ConvergenceWarning, match=r"diverged in epoch \d+"):
        fn.fit(X, y)
    assert fn.n_iter_ == sk.n_iter_ == 20
    np.testing.assert_array_equal(np.isnan(fn.validation_scores_),
                                  np.isnan(sk.validation_scores_))
    assert np.isnan(fn.validation_scores_[-1]) and isinstance(fn.validation_scores_[-1], float)
    finite = ~np.isnan(sk.validation_scores_)
    assert finite.sum() >= 2
    np.testing.assert_allclose(np.asarray(fn.validation_scores_)[finite],
                               np.asarray(sk.validation_scores_)[finite], rtol=1e-6)
    assert fn.best_validation_score_ == pytest.approx(sk.best_validation_score_, rel=1e-6)
    for a, b in zip(fn.coefs_ + fn.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)
    assert np.isfinite(fn.predict(X)).all()


def test_divergence_without_early_stopping_raises_sklearns_text_first():
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(10)
    for est in (fastnn.MLPRegressor(), fastnn.MLPRegressor(solver="lbfgs")):
        with pytest.raises(DivergenceError) as info:
            fit_quietly(est, X, y)
        assert str(info.value).startswith(SKLEARN_NONFINITE)


def test_early_stopping_split_error_names_the_class_as_sklearn():
    X, y = [[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1]
    messages = []
    for cls in (SkClassifier, fastnn.MLPClassifier):
        with pytest.raises(ValueError) as info:
            cls(early_stopping=True).fit(X, y)
        messages.append(str(info.value))
    assert messages[1] == messages[0]
    assert "['True']" in messages[1]


def _hand_set(model, coefs, intercepts, sklearn_needs):
    model.coefs_ = [c.copy() for c in coefs]
    model.intercepts_ = [b.copy() for b in intercepts]
    if sklearn_needs:  # the attributes sklearn's own loop reads
        model.n_outputs_ = coefs[-1].shape[1]
        model.n_layers_ = len(coefs) + 1
        model.n_features_in_ = coefs[0].shape[0]
        model.out_activation_ = "logistic"
        model.n_iter_ = model.t_ = 0
        model.best_loss_ = np.inf
        model.loss_curve_ = []
        model._no_improvement_count = 0


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_training_from_weights_set_by_hand(how):
    """Only sklearn's public attributes set (fastnn's bn_gamma_, history_, ...
    are created as needed), and the result is sklearn's."""
    rng = np.random.RandomState(0)
    X = rng.randn(30, 3)
    y = (X[:, 0] > 0).astype(int)
    coefs = [rng.uniform(-0.5, 0.5, (3, 4)), rng.uniform(-0.5, 0.5, (4, 1))]
    intercepts = [rng.uniform(-0.5, 0.5, 4), rng.uniform(-0.5, 0.5, 1)]
    p = dict(hidden_layer_sizes=(4,), solver="sgd", activation="logistic", alpha=0.1,
             learning_rate_init=0.1, momentum=0.0, max_iter=3, random_state=1,
             warm_start=how == "warm_start")
    models = []
    for cls, sklearn_needs in ((SkClassifier, True), (fastnn.MLPClassifier, False)):
        m = cls(**p)
        _hand_set(m, coefs, intercepts, sklearn_needs)
        if how == "partial_fit":
            m.partial_fit(X, y, classes=[0, 1])
        else:
            fit_quietly(m, X, y)
        models.append(m)
    sk, fn = models
    assert fn.bn_gamma_ == [None, None]
    assert fn.n_iter_ == sk.n_iter_ and fn.t_ == sk.t_
    np.testing.assert_allclose(fn.loss_curve_, sk.loss_curve_, rtol=1e-9)
    for a, b in zip(fn.coefs_ + fn.intercepts_, sk.coefs_ + sk.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    assert not np.allclose(fn.coefs_[0], coefs[0])  # it trained


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("source", ["by_hand", "a_fit"])
def test_nan_weights_to_train_from_are_named(how, source):
    """A NaN in the weights partial_fit or warm_start would continue from is
    a ValueError naming the array, whether the weights were set by hand
    (checked after the state is completed) or come from a fit (checked
    first), never a divergence blamed on the data; nothing is changed."""
    rng = np.random.RandomState(0)
    X = rng.randn(30, 3)
    y = (X[:, 0] > 0).astype(int)
    m = fastnn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=1,
                             warm_start=how == "warm_start")
    if source == "by_hand":
        _hand_set(m, [rng.randn(3, 4), rng.randn(4, 1)], [rng.randn(4), rng.randn(1)], False)
    else:
        fit_quietly(m, X, y)
    m.coefs_[1][2, 0] = np.nan
    before = [c.copy() for c in m.coefs_]
    with pytest.raises(ValueError, match=r"coefs_\[1\] holds NaN"):
        if how == "partial_fit":
            m.partial_fit(X, y, classes=[0, 1])
        else:
            fit_quietly(m, X, y)
    for a, b in zip(m.coefs_, before):
        np.testing.assert_array_equal(a, b)
