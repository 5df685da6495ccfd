"""The dtype parameter: the network computes in dtype whatever the input's
float type; X of the other type is converted by C a batch at a time (never
copied whole), giving exactly the model that X.astype(dtype) gives."""
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from fastnn import MLPClassifier, MLPRegressor

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def _data(n=600, d=12, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def _same(a, b):
    arrays = lambda m: m.coefs_ + m.intercepts_  # noqa: E731
    return all(np.array_equal(p, q) and p.dtype == q.dtype
               for p, q in zip(arrays(a), arrays(b)))


@pytest.mark.parametrize("layout", ["C", "F", "csr", "strided"])
@pytest.mark.parametrize("solver, extra", [("adam", {}), ("lbfgs", {}),
                                           ("sgd", {"early_stopping": True}),
                                           ("nadam", {"batch_norm": True, "dropout": 0.1})])
def test_float32_from_float64_equals_astype(layout, solver, extra):
    X, y = _data()
    X64 = {"C": X, "F": np.asfortranarray(X), "csr": sp.csr_matrix(np.where(X > 0.5, X, 0)),
           "strided": np.repeat(X, 2, axis=1)[:, ::2]}[layout]
    kw = dict(hidden_layer_sizes=(16,), solver=solver, max_iter=4, random_state=0, **extra)
    a = MLPClassifier(dtype="float32", **kw).fit(X64, y)
    b = MLPClassifier(**kw).fit(X64.astype(np.float32), y)
    assert a.coefs_[0].dtype == np.float32 and _same(a, b)
    assert a.loss_curve_ == b.loss_curve_ if solver != "lbfgs" else a.loss_ == b.loss_
    np.testing.assert_array_equal(a.predict_proba(X64), b.predict_proba(X64.astype(np.float32)))


def test_float64_model_from_float32_input():
    X, y = _data()
    X32 = X.astype(np.float32)
    a = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0, dtype="float64")
    b = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    a.fit(X32, y)
    b.fit(X32.astype(np.float64), y)
    assert a.coefs_[0].dtype == np.float64 and _same(a, b)
    np.testing.assert_array_equal(a.predict(X32), b.predict(X32.astype(np.float64)))
    np.testing.assert_array_equal(MLPRegressor(hidden_layer_sizes=(8,), max_iter=5,
                                               random_state=0, dtype=np.float64).fit(X32, y)
                                  .predict(X32), a.predict(X32))


def test_default_follows_the_input_and_warm_start_keeps_the_model_type():
    X, y = _data()
    assert MLPClassifier((4,), max_iter=2).fit(X, y).coefs_[0].dtype == np.float64
    assert MLPClassifier((4,), max_iter=2).fit(X.astype(np.float32), y).coefs_[0].dtype \
        == np.float32
    m = MLPClassifier((4,), max_iter=2, warm_start=True, dtype="float32").fit(X, y)
    m.set_params(dtype=None).fit(X, y)
    assert m.coefs_[0].dtype == np.float32


def test_x_is_never_copied_whole():
    X, y = _data(n=20000, d=50)
    est = MLPClassifier((16,), max_iter=1, batch_size=64, random_state=0, dtype="float32")
    est.fit(X[:50], y[:50])  # warm up imports and caches
    tracemalloc.start()
    try:
        est.fit(X, y)
        fit_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        est.predict_proba(X)
        predict_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A float32 copy of X would be 4 MB; the output of predict_proba is 160 kB.
    assert fit_peak < X.nbytes / 4, fit_peak
    assert predict_peak < X.nbytes / 4, predict_peak


def test_values_beyond_float32():
    X, y = _data()
    big = X.copy()
    big[3, 2] = 1e300
    with pytest.raises(ValueError, match="beyond the range"):
        MLPClassifier((4,), max_iter=1, dtype="float32").fit(big, y)
    est = MLPClassifier((4,), max_iter=1, dtype="float32").fit(X, y)
    with pytest.raises(ValueError, match="beyond the range"):
        est.predict(big)
    with pytest.raises(ValueError, match="beyond the range"):
        est.predict(sp.csr_matrix(big))


@pytest.mark.parametrize("bad", ["float16", "half", np.int32, 32])
def test_bad_dtype(bad):
    X, y = _data()
    with pytest.raises(InvalidParameterError):
        MLPClassifier(max_iter=1, dtype=bad).fit(X, y)
