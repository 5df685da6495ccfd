"""Saving and loading fastnn models with skops (skipped without skops), and the
pickle state that skops and pickle share."""

import importlib
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning

import fastnn
from fastnn import SKOPS_TRUSTED_TYPES, MLPClassifier, MLPRegressor
from fastnn.schedules import OneCycle, ReduceOnPlateau


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(n_samples=200, n_features=6, n_classes=3, n_informative=4,
                               random_state=0)
    return X, np.array(["a", "b", "c"])[y]


@pytest.fixture(scope="module")
def reg_data():
    X, y = make_regression(n_samples=200, n_features=6, noise=1.0, random_state=0)
    return X, y / y.std()


def _fitted_attributes(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}


def _assert_same_model(a, b):
    fa, fb = _fitted_attributes(a), _fitted_attributes(b)
    assert fa.keys() == fb.keys()
    for name in ("coefs_", "intercepts_", "bn_gamma_", "bn_moving_var_"):
        for x, y in zip(fa[name], fb[name]):
            if x is None:
                assert y is None
            else:
                np.testing.assert_array_equal(x, y)
    timeless = [{k: v for k, v in h.items() if k != "time"}
                for h in (fa["history_"], fb["history_"])]
    assert timeless[0] == timeless[1]
    assert a.get_params().keys() == b.get_params().keys()


def _full_class_path(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def test_trusted_types_are_importable_classes():
    assert _full_class_path(MLPClassifier) in SKOPS_TRUSTED_TYPES
    assert _full_class_path(MLPRegressor) in SKOPS_TRUSTED_TYPES
    assert _full_class_path(OneCycle) in SKOPS_TRUSTED_TYPES
    for path in SKOPS_TRUSTED_TYPES:
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type)


def test_pickle_keeps_a_string_schedules_state(clf_data):
    X, y = clf_data
    clf = MLPClassifier((8,), learning_rate="plateau", max_iter=8, random_state=0).fit(X, y)
    # the state holds the schedule as plain data, not as a fastnn object
    saved = clf.__getstate__()["_schedule"]
    assert saved["class"] == "ReduceOnPlateau"
    assert isinstance(clf._schedule, ReduceOnPlateau)  # the live model is unchanged
    back = pickle.loads(pickle.dumps(clf))
    assert type(back._schedule) is ReduceOnPlateau
    assert vars(back._schedule) == vars(clf._schedule)

    bad = dict(clf.__getstate__(), _schedule={"class": "dumps", "attributes": {}})
    with pytest.raises(ValueError, match="unknown fastnn schedule"):
        MLPClassifier().__setstate__(bad)


skops_io = pytest.importorskip("skops.io")


def _round_trip(est):
    data = skops_io.dumps(est)
    untrusted = skops_io.get_untrusted_types(data=data)
    assert set(untrusted) <= set(SKOPS_TRUSTED_TYPES)
    return skops_io.loads(data, trusted=SKOPS_TRUSTED_TYPES), untrusted


@pytest.mark.parametrize("params", [
    {},
    {"learning_rate": "plateau", "batch_norm": True, "early_stopping": True},
    {"solver": "lbfgs"},
])
def test_classifier_round_trip_trusts_only_the_estimator(clf_data, params):
    X, y = clf_data
    clf = MLPClassifier((8, 6), max_iter=8, random_state=0, **params).fit(X, y)
    back, untrusted = _round_trip(clf)
    # a fit made up no type the user did not pass
    assert untrusted == [_full_class_path(MLPClassifier)]
    _assert_same_model(clf, back)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_round_trip_continues_training_alike(reg_data, loss):
    X, y = reg_data
    y = np.exp(y) if loss == "poisson" else y
    reg = MLPRegressor(loss=loss, hidden_layer_sizes=(8,), learning_rate="plateau",
                       max_iter=6, random_state=0).fit(X, y)
    back, untrusted = _round_trip(reg)
    assert untrusted == [_full_class_path(MLPRegressor)]
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    # the schedule, optimizer state and random stream came back: one more
    # epoch gives the same model as on the original
    reg.partial_fit(X, y)
    back.partial_fit(X, y)
    _assert_same_model(reg, back)


def test_user_schedule_object_round_trip(clf_data):
    X, y = clf_data
    clf = MLPClassifier((8,), learning_rate=OneCycle(max_lr=0.01), max_iter=5,
                        random_state=0).fit(X, y)
    back, untrusted = _round_trip(clf)
    assert sorted(untrusted) == sorted([_full_class_path(MLPClassifier),
                                        _full_class_path(OneCycle)])
    assert back.learning_rate.get_params() == clf.learning_rate.get_params()
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_load_without_trust_is_refused(clf_data):
    X, y = clf_data
    data = skops_io.dumps(MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y))
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        skops_io.loads(data)
    assert fastnn.SKOPS_TRUSTED_TYPES is SKOPS_TRUSTED_TYPES
