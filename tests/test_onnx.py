"""ONNX export (fastnn.onnx): onnxruntime's outputs equal fastnn's.

Skipped when skl2onnx or onnxruntime is not installed (pip install ".[onnx]").
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("skl2onnx")
rt = pytest.importorskip("onnxruntime")

from skl2onnx import to_onnx  # noqa: E402

import fastnn.onnx  # noqa: E402,F401  (registers the converters)
from fastnn import MLPClassifier, MLPRegressor  # noqa: E402
from fastnn._base import HIDDEN_ACTIVATIONS  # noqa: E402

# How close onnxruntime must come to fastnn: a few float32 roundings (the
# products are summed in another order), float64 roundings for float64.
TOL = {np.float32: 2e-5, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(dtype, n_classes=3, n=240):
    X, y = make_classification(n_samples=n, n_features=8, n_informative=5,
                               n_classes=n_classes, random_state=0)
    return X.astype(dtype), y


def _run(model, X, **options):
    onx = to_onnx(model, X[:1], options=options or None, target_opset=17)
    sess = rt.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: X})


def _assert_close(actual, expected, dtype):
    expected = np.asarray(expected)
    assert actual.dtype == dtype
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL[dtype] * scale)


def _assert_labels(labels, est, X, proba):
    """Labels equal fastnn's, except on float32 near-ties of the top two
    probabilities (where one rounding may flip the argmax)."""
    expected = est.predict(X)
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-4
    np.testing.assert_array_equal(labels[clear], expected[clear])
    assert clear.mean() > 0.9


ACTIVATION_CASES = [*HIDDEN_ACTIVATIONS, ["elu", "swish", "selu"],
                    ["leaky_relu", "identity", "tanh"], ["logistic", "relu", "elu"]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATION_CASES, ids=str)
def test_every_activation_multiclass(activation, dtype):
    X, y = _data(dtype)
    clf = MLPClassifier((12, 10, 6), activation=activation, max_iter=15,
                        random_state=0).fit(X, y)
    labels, proba = _run(clf, X, zipmap=False)
    expected = clf.predict_proba(X)
    if "gelu" in np.ravel(activation) and dtype == np.float64:
        dtype_tol = np.float32  # onnxruntime's Erf is float32 only (fastnn.onnx)
        np.testing.assert_allclose(proba, expected, rtol=0, atol=TOL[dtype_tol])
    else:
        _assert_close(proba, expected, dtype)
    _assert_labels(labels, clf, X, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_norm,batch_norm_input",
                         [("before", False), ("after", False), (False, True),
                          ("after", True)])
def test_batch_norm_folded(batch_norm, batch_norm_input, dtype):
    X, y = _data(dtype)
    clf = MLPClassifier((12, 8), activation="elu", batch_norm=batch_norm,
                        batch_norm_input=batch_norm_input, max_iter=15,
                        random_state=0).fit(X, y)
    # trained BN statistics, not the identity they start as
    assert any(m is not None and np.abs(m).max() > 0.01 for m in clf.bn_moving_mean_)
    labels, proba = _run(clf, X, zipmap=False)
    _assert_close(proba, clf.predict_proba(X), dtype)
    _assert_labels(labels, clf, X, proba)


def test_leaky_relu_uses_the_estimators_slope():
    if "negative_slope" not in MLPClassifier().get_params():
        pytest.skip("this fastnn has no negative_slope parameter")
    X, y = _data(np.float64)
    clf = MLPClassifier((10,), activation="leaky_relu", negative_slope=0.3, max_iter=10,
                        random_state=0).fit(X, y)
    _, proba = _run(clf, X, zipmap=False)
    _assert_close(proba, clf.predict_proba(X), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary(dtype):
    X, y = _data(dtype, n_classes=2)
    clf = MLPClassifier((10,), activation="swish", max_iter=15, random_state=0).fit(X, y)
    assert clf.n_outputs_ == 1
    labels, proba = _run(clf, X, zipmap=False)
    assert proba.shape == (len(X), 2)
    _assert_close(proba, clf.predict_proba(X), dtype)
    _assert_labels(labels, clf, X, proba)


@pytest.mark.parametrize("dtype", DTYPES)
def test_string_labels_and_zipmap(dtype):
    X, y = _data(dtype)
    names = np.array(["cat", "dog", "eel"])[y]
    clf = MLPClassifier((10,), max_iter=15, random_state=0).fit(X, names)
    labels, proba = _run(clf, X, zipmap=False)
    assert labels.dtype == object
    _assert_labels(labels, clf, X, proba)
    _assert_close(proba, clf.predict_proba(X), dtype)
    if dtype == np.float64:
        return  # onnxruntime's ZipMap takes float32 only (as with sklearn's MLP)
    # default options: one {class: probability} dict per row, as for sklearn's MLP
    labels, dicts = _run(clf, X)
    assert list(dicts[0]) == ["cat", "dog", "eel"]
    zipped = np.array([[row[c] for c in clf.classes_] for row in dicts])
    np.testing.assert_allclose(zipped, clf.predict_proba(X), atol=TOL[np.float32])


@pytest.mark.parametrize("dtype", DTYPES)
def test_multilabel(dtype):
    X, Y = make_multilabel_classification(n_samples=200, n_features=8, n_classes=4,
                                          random_state=0)
    X = X.astype(dtype)
    clf = MLPClassifier((16,), activation="tanh", max_iter=30, random_state=0).fit(X, Y)
    labels, proba = _run(clf, X, zipmap=False)
    expected = clf.predict_proba(X)
    _assert_close(proba, expected, dtype)
    assert labels.shape == Y.shape and labels.dtype == np.int64
    clear = np.abs(expected - 0.5) > 1e-4
    np.testing.assert_array_equal(labels[clear], clf.predict(X)[clear])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,n_outputs", [("squared_error", 1), ("squared_error", 3),
                                            ("poisson", 1)])
def test_regressor(loss, n_outputs, dtype):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 6)
    W = rng.randn(6, n_outputs)
    y = np.exp(0.3 * X @ W) if loss == "poisson" else X @ W + 0.1 * rng.randn(200, n_outputs)
    y = y.ravel() if n_outputs == 1 else y
    reg = MLPRegressor(loss=loss, hidden_layer_sizes=(12, 8), activation=["selu", "swish"],
                       batch_norm="after", max_iter=20, random_state=0).fit(X.astype(dtype), y)
    assert reg.out_activation_ == ("exp" if loss == "poisson" else "identity")
    (out,) = _run(reg, X.astype(dtype))
    assert out.shape == (200, n_outputs)
    _assert_close(out, reg.predict(X.astype(dtype)).reshape(200, n_outputs), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inside_pipeline(dtype):
    X, y = _data(dtype)
    pipe = make_pipeline(StandardScaler(), MLPClassifier((10, 10), activation="selu",
                                                         max_iter=15, random_state=0))
    pipe.fit(X * 100, y)
    labels, proba = _run(pipe, X * 100, zipmap=False)
    _assert_close(proba, pipe.predict_proba(X * 100), dtype)
    _assert_labels(labels, pipe, X * 100, proba)

    reg = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(10,), max_iter=15, random_state=0))
    reg.fit(X, y.astype(float))
    (out,) = _run(reg, X)
    _assert_close(out.ravel(), reg.predict(X), dtype)


def test_without_skl2onnx_import_error_names_the_extra():
    code = ("import sys; sys.modules['skl2onnx'] = None\n"
            "try:\n"
            "    import fastnn.onnx\n"
            "except ImportError as e:\n"
            "    assert 'pip install \".[onnx]\"' in str(e), e\n"
            "else:\n"
            "    raise SystemExit('no ImportError')\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())
