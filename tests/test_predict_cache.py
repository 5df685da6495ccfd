"""Prediction reuses one folded inference network while the fitted arrays and
the settings that shape it stay the same, and rebuilds it when they change:
arrays a user assigns or edits in place included.  One-row predictions skip
scikit-learn's validate_data for plain float arrays, and must still raise and
warn exactly where it would."""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from fastnn import MLPClassifier, MLPRegressor
from fastnn._base import _INFERENCE_CACHE


def _reference(est, X):
    """The regressor's forward pass in NumPy from its public arrays (no BatchNorm)."""
    acts = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
            "identity": lambda z: z, "logistic": lambda z: 1 / (1 + np.exp(-z))}
    h = X
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        h = h @ W + b
        if i < len(est.coefs_) - 1:
            h = acts[est.activation](h)
    return h.ravel()


@pytest.fixture
def reg():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 5)
    y = X @ rng.randn(5) + 0.1 * rng.randn(200)
    return MLPRegressor(hidden_layer_sizes=(16, 8), max_iter=20, random_state=0).fit(X, y), X


def test_cached_network_follows_assigned_and_edited_arrays(reg):
    est, X = reg
    np.testing.assert_allclose(est.predict(X), _reference(est, X), rtol=1e-10)
    first = _INFERENCE_CACHE[est]
    est.predict(X[:1])
    assert _INFERENCE_CACHE[est] is first  # reused while nothing changed
    est.coefs_[0][:] *= 0.5  # edited in place
    np.testing.assert_allclose(est.predict(X), _reference(est, X), rtol=1e-10)
    est.intercepts_[2] = est.intercepts_[2] + 3.0  # a new array assigned
    np.testing.assert_allclose(est.predict(X), _reference(est, X), rtol=1e-10)
    est.coefs_ = [c * 2 for c in est.coefs_]  # a new list assigned
    np.testing.assert_allclose(est.predict(X), _reference(est, X), rtol=1e-10)
    assert _INFERENCE_CACHE[est] is not first


def test_cached_network_follows_strided_and_retyped_arrays(reg):
    """The cache compares bytes of C-contiguous arrays; a strided (Fortran
    or sliced) array the user assigns is compared by value, and one of
    another dtype is seen (and refused by the rebuild's check)."""
    est, X = reg
    est.predict(X[:1])
    first = _INFERENCE_CACHE[est]
    est.coefs_[0] = np.asfortranarray(est.coefs_[0])  # same values, other layout
    est.predict(X[:1])
    assert _INFERENCE_CACHE[est] is first
    wide = np.zeros((est.coefs_[1].shape[0], 2 * est.coefs_[1].shape[1]))
    wide[:, ::2] = est.coefs_[1] * 0.5
    est.coefs_[1] = wide[:, ::2]  # strided, new values
    np.testing.assert_allclose(est.predict(X), _reference(est, X), rtol=1e-10)
    assert _INFERENCE_CACHE[est] is not first
    est.intercepts_[0] = est.intercepts_[0].astype(np.float32)  # same values, other dtype
    with pytest.raises(ValueError, match="intercepts_"):  # seen, and named by the rebuild
        est.predict(X[:1])


def test_cached_network_follows_settings(reg):
    est, X = reg
    before = est.predict(X)
    est.set_params(activation="tanh")
    after = est.predict(X)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _reference(est, X), rtol=1e-10)


def test_cached_network_follows_batchnorm_arrays():
    rng = np.random.RandomState(1)
    X = rng.randn(300, 6)
    y = (X[:, 0] > 0).astype(int)
    est = MLPClassifier((8,), batch_norm=True, max_iter=5, random_state=0).fit(X, y)
    p0 = est.predict_proba(X)
    est.bn_moving_mean_[1][:] += 1.0
    p1 = est.predict_proba(X)
    assert not np.allclose(p0, p1)
    fresh = pickle.loads(pickle.dumps(est))  # no cache: built from the arrays alone
    np.testing.assert_array_equal(fresh.predict_proba(X), p1)


def test_predict_leaves_state_and_pickle_alone(reg):
    est, X = reg
    before = dict(est.__dict__)
    est.predict(X[:1])
    assert est.__dict__.keys() == before.keys()
    assert all(est.__dict__[k] is v for k, v in before.items())
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))


def test_one_row_fast_path_keeps_sklearns_checks(reg):
    est, X = reg
    row = X[:1]
    np.testing.assert_array_equal(est.predict(row), est.predict(X)[:1])
    np.testing.assert_array_equal(est.predict(row.astype(np.float32)),
                                  est.predict(row.astype(np.float32).astype(np.float64)))
    np.testing.assert_allclose(est.predict(row.astype(int)), est.predict(row.astype(int) * 1.0))
    with pytest.raises(ValueError, match="5 features"):
        est.predict(X[:1, :4])
    with pytest.raises(ValueError, match="NaN"):
        est.predict(np.full((1, 5), np.nan))
    with pytest.raises(ValueError, match="infinity"):
        est.predict(np.array([[0, 0, np.inf, 0, 0.0]]))
    with pytest.raises(ValueError):
        est.predict(X[0])  # 1-D
    with pytest.raises(ValueError):
        est.predict(X[:0])  # no rows
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(row)


def test_fast_path_keeps_feature_name_warnings():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(100, 3), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    est = MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.predict_proba(X.to_numpy()[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict_proba(X.iloc[:1])
