"""fastnn inside the scikit-learn ecosystem, and on real data sets.

pickle, clone, Pipeline, GridSearchCV (against sklearn's own MLPs on
load_digits / load_breast_cancer / load_diabetes), input formats (dense C/F
order, strided views, CSR, CSC, float32), target types, warm_start and
partial_fit, determinism (also across thread counts), sample_weight and the
fitted attributes.
"""

import os
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler

import fastnn
from fastnn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs(n=150, n_features=6, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.randn(n_classes, n_features) * 2
    y = rng.randint(n_classes, size=n)
    X = centers[y] + rng.randn(n, n_features)
    return X, y


def regression(n=150, n_features=6, n_outputs=1, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, n_features)
    W = rng.randn(n_features, n_outputs)
    y = np.tanh(X @ W) + 0.05 * rng.randn(n, n_outputs)
    return X, (y.ravel() if n_outputs == 1 else y)


def all_weights(est):
    return est.coefs_ + est.intercepts_


def assert_weights_equal(a, b):
    for u, v in zip(all_weights(a), all_weights(b), strict=True):
        np.testing.assert_array_equal(u, v)


SMALL = dict(hidden_layer_sizes=(16,), max_iter=15, random_state=0)


# ---------------------------------------------------------------------------
# pickle, clone, Pipeline, GridSearchCV
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("Est, data", [(MLPClassifier, blobs), (MLPRegressor, regression)])
def test_pickle_round_trip(Est, data):
    X, y = data()
    est = Est(**SMALL, batch_norm=True, dropout=0.1).fit(X, y)
    est2 = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est2.predict(X), est.predict(X))
    if Est is MLPClassifier:
        np.testing.assert_array_equal(est2.predict_proba(X), est.predict_proba(X))
    assert_weights_equal(est, est2)
    assert est2.loss_curve_ == est.loss_curve_
    # the unpickled model keeps training like the original
    est.set_params(warm_start=True, max_iter=2).fit(X, y)
    est2.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert_weights_equal(est, est2)


def test_clone_is_unfitted_with_same_params():
    est = MLPClassifier(hidden_layer_sizes=(5, 3), solver="nadam", alpha=0.01,
                        learning_rate=fastnn.schedules.OneCycle(max_lr=0.05), dropout=0.2,
                        random_state=3, max_iter=5)
    X, y = blobs()
    est.fit(X, y)
    c = clone(est)
    assert not hasattr(c, "coefs_") and not hasattr(c, "classes_")
    p, q = est.get_params(deep=False), c.get_params(deep=False)
    assert p.keys() == q.keys()
    for k in p:
        if k == "learning_rate":
            assert q[k] is not p[k] and q[k].get_params() == p[k].get_params()
        else:
            assert q[k] == p[k], k
    # the clone fits to the same model (same random_state)
    assert_weights_equal(c.fit(X, y), est)


def test_pipeline_with_scaler():
    X, y = load_breast_cancer(return_X_y=True)
    # 60 epochs: with scikit-learn's initialization (the default) 30 epochs of
    # two adam steps are not enough on this split (0.86), as in scikit-learn
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(hidden_layer_sizes=(16,), max_iter=60,
                                           random_state=0))])
    pipe.fit(X[:400], y[:400])
    assert pipe.score(X[400:], y[400:]) > 0.9
    assert pipe.predict_proba(X[400:]).shape == (len(X) - 400, 2)
    # unscaled inputs (values up to ~4000) train much worse: the scaler is used
    raw = MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, random_state=0)
    assert raw.fit(X[:400], y[:400]).score(X[400:], y[400:]) < pipe.score(X[400:], y[400:])


def _grid_best(Est, X, y, params, grid):
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", Est(**params))])
    gs = GridSearchCV(pipe, grid, cv=3, n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gs.fit(X, y)
    return gs


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "diabetes"])
def test_grid_search_matches_sklearn(name):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        pair, tol = (SkClassifier, MLPClassifier), 0.03
        params = dict(hidden_layer_sizes=(32,), max_iter=20, learning_rate_init=0.01,
                      random_state=0)
    elif name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        pair, tol = (SkClassifier, MLPClassifier), 0.03
        params = dict(hidden_layer_sizes=(16,), max_iter=30, learning_rate_init=0.01,
                      random_state=0)
    else:
        X, y = load_diabetes(return_X_y=True)
        pair, tol = (SkRegressor, MLPRegressor), 0.05
        params = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=60, random_state=0)
    grid = {"mlp__alpha": [1e-4, 1.0]}
    sk = _grid_best(pair[0], X, y, params, grid)
    fn = _grid_best(pair[1], X, y, params, grid)
    assert isinstance(fn.best_estimator_.named_steps["mlp"], pair[1])
    assert fn.cv_results_["mean_test_score"].shape == (2,)
    assert abs(fn.best_score_ - sk.best_score_) < tol, (fn.best_score_, sk.best_score_)
    assert fn.best_score_ > (0.9 if pair[1] is MLPClassifier else 0.3)


def test_grid_search_over_schedule_parameter():
    X, y = blobs(n=120)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                        learning_rate=fastnn.schedules.OneCycle())
    gs = GridSearchCV(est, {"learning_rate__max_lr": [0.01, 0.1]}, cv=3).fit(X, y)
    lrs = [p["learning_rate__max_lr"] for p in gs.cv_results_["params"]]
    assert lrs == [0.01, 0.1]
    assert gs.best_estimator_.learning_rate.max_lr in (0.01, 0.1)


# ---------------------------------------------------------------------------
# input formats
# ---------------------------------------------------------------------------
def sparse_data(n=120, n_features=20, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, n_features) * (rng.rand(n, n_features) < 0.2)
    y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 0.5)
    return X, y


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_dense_csr_csc_same_weights(Est, solver):
    X, y = sparse_data()
    kw = dict(hidden_layer_sizes=(12,), solver=solver, max_iter=8, batch_size=32,
              random_state=0)
    dense = Est(**kw).fit(X, y)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        m = Est(**kw).fit(fmt(X), y)
        for a, b in zip(all_weights(dense), all_weights(m), strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(m.predict(fmt(X)), dense.predict(X), rtol=1e-10,
                                   atol=1e-12)
        if Est is MLPClassifier:
            np.testing.assert_allclose(m.predict_proba(fmt(X)), dense.predict_proba(X),
                                       rtol=1e-10, atol=1e-12)


def test_sparse_predict_matches_dense_predict():
    X, y = sparse_data()
    est = MLPRegressor(hidden_layer_sizes=(12,), max_iter=5, random_state=0).fit(X, y)
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        np.testing.assert_allclose(est.predict(fmt(X)), est.predict(X), rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("Est, data", [(MLPClassifier, blobs), (MLPRegressor, regression)])
def test_float32_trains_in_float32(Est, data):
    X, y = data()
    kw = dict(hidden_layer_sizes=(16,), max_iter=10, random_state=0, solver="sgd",
              learning_rate_init=0.05)
    m32 = Est(**kw).fit(X.astype(np.float32), y)
    m64 = Est(**kw).fit(X, y)
    for w in all_weights(m32):
        assert w.dtype == np.float32
    for w in all_weights(m64):
        assert w.dtype == np.float64
    out32 = m32.predict_proba(X.astype(np.float32)) if Est is MLPClassifier \
        else m32.predict(X.astype(np.float32))
    out64 = m64.predict_proba(X) if Est is MLPClassifier else m64.predict(X)
    assert out32.dtype == np.float32 and out64.dtype == np.float64
    np.testing.assert_allclose(out32, out64, rtol=1e-3, atol=1e-3)
    for a, b in zip(all_weights(m32), all_weights(m64)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(m32.loss_curve_, m64.loss_curve_, rtol=1e-4)


@pytest.mark.parametrize("Est, data", [(MLPClassifier, blobs), (MLPRegressor, regression)])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_fortran_and_strided_inputs(Est, data, solver):
    X, y = data(n_features=12)
    kw = dict(hidden_layer_sizes=(10,), max_iter=6, random_state=0, solver=solver,
              batch_size=32)
    variants = {
        "fortran": np.asfortranarray(X),
        "strided": X[:, ::2],
        "fortran_strided": np.asfortranarray(X)[:, ::2],
        "row_strided": np.repeat(X, 2, axis=0)[::2],
    }
    ref_full = Est(**kw).fit(np.ascontiguousarray(X), y)
    ref_half = Est(**kw).fit(np.ascontiguousarray(X[:, ::2]), y)
    for name, Xv in variants.items():
        ref = ref_half if Xv.shape[1] != X.shape[1] else ref_full
        m = Est(**kw).fit(Xv, y)
        assert_weights_equal(m, ref)
        np.testing.assert_array_equal(m.predict(Xv), ref.predict(np.ascontiguousarray(Xv)))


# ---------------------------------------------------------------------------
# target types and probabilities
# ---------------------------------------------------------------------------
def test_string_class_labels():
    X, y = blobs()
    names = np.array(["cat", "dog", "emu"])
    est = MLPClassifier(**SMALL).fit(X, names[y])
    assert list(est.classes_) == ["cat", "dog", "emu"]
    pred = est.predict(X)
    assert set(pred) <= set(names)
    # same model as with integer labels 0,1,2 (sorted order preserved)
    est_int = MLPClassifier(**SMALL).fit(X, y)
    np.testing.assert_array_equal(pred, names[est_int.predict(X)])
    assert est.score(X, names[y]) == est_int.score(X, y)


def test_binary_string_labels():
    X, y = blobs(n_classes=2)
    labels = np.array(["no", "yes"])[y]
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, learning_rate_init=0.01,
                        random_state=0).fit(X, labels)
    assert est.n_outputs_ == 1 and est.out_activation_ == "logistic"
    assert est.coefs_[-1].shape == (16, 1)
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_array_equal(est.predict(X), est.classes_[proba.argmax(axis=1)])
    assert est.score(X, labels) > 0.9


@pytest.mark.parametrize("labels", [np.array([3, 7, 11]), np.array([-2.0, 0.0, 5.0]),
                                    np.array(["cat", "dog", "emu"]),
                                    np.array(["cat", "dog", "emu"], dtype=object)])
def test_one_hot_targets_are_label_binarizers(labels):
    """The indicator targets, a direct comparison for multiclass labels, are
    LabelBinarizer's: for y and for a batch that lacks a class."""
    X, y = blobs()
    est = MLPClassifier(**SMALL).fit(X, labels[y])
    lb = LabelBinarizer().fit(labels[y])
    for part in (labels[y], labels[y][y != 1]):
        got = est._one_hot(part)
        assert got.dtype == bool and got.shape == (len(part), 3)
        np.testing.assert_array_equal(got, lb.transform(part).astype(bool))


def test_multilabel_indicator():
    rng = np.random.RandomState(0)
    X = rng.randn(400, 6)
    Y = np.c_[X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] > 0.5].astype(int)
    X, Y, X_test, Y_test = X[:200], Y[:200], X[200:], Y[200:]
    kw = dict(hidden_layer_sizes=(32,), max_iter=100, learning_rate_init=0.01, random_state=0)
    est = MLPClassifier(**kw).fit(X, Y)
    assert est.out_activation_ == "logistic" and est.n_outputs_ == 3
    pred = est.predict(X)
    assert pred.shape == Y.shape
    assert set(np.unique(pred)) <= {0, 1}
    proba = est.predict_proba(X)
    assert proba.shape == Y.shape
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert est.score(X_test, Y_test) > 0.75  # subset accuracy
    sk = SkClassifier(**kw).fit(X, Y)
    assert abs(est.score(X_test, Y_test) - sk.score(X_test, Y_test)) < 0.1


def test_multi_output_regression():
    X, Y = regression(n=200, n_outputs=3)
    est = MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=200,
                       random_state=0).fit(X, Y)
    assert est.n_outputs_ == 3 and est.coefs_[-1].shape == (32, 3)
    pred = est.predict(X)
    assert pred.shape == (200, 3)
    assert est.score(X, Y) > 0.9
    # single-output y as a column gives a 1-d prediction (as sklearn)
    est1 = MLPRegressor(**SMALL).fit(X, Y[:, 0])
    assert est1.predict(X).shape == (200,)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_predict_proba_and_log_proba(n_classes):
    X, y = blobs(n_classes=n_classes)
    est = MLPClassifier(**SMALL).fit(X, y)
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), n_classes)
    assert np.all(proba >= 0) and np.all(proba <= 1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba), rtol=1e-14)
    np.testing.assert_array_equal(est.predict(X), est.classes_[proba.argmax(axis=1)])


# ---------------------------------------------------------------------------
# warm_start and partial_fit
# ---------------------------------------------------------------------------
def test_warm_start_continues_from_previous_weights():
    X, y = blobs()
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", momentum=0.0, shuffle=False,
              learning_rate_init=0.05, tol=0.0, n_iter_no_change=1000, random_state=0)
    ws = MLPClassifier(**kw, warm_start=True, max_iter=5).fit(X, y)
    first_curve = list(ws.loss_curve_)
    ws.fit(X, y)
    assert ws.n_iter_ == 5  # per call, as sklearn
    assert len(ws.loss_curve_) == 10 and ws.loss_curve_[:5] == first_curve
    assert ws.loss_curve_[5] < first_curve[-1]  # continues downward
    assert ws.t_ == 10 * len(X)
    # plain SGD has no optimizer state: 5 + 5 epochs == 10 epochs in one fit
    once = MLPClassifier(**kw, max_iter=10).fit(X, y)
    for a, b in zip(all_weights(ws), all_weights(once)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ws.loss_curve_, once.loss_curve_, rtol=1e-12)


def test_without_warm_start_refit_starts_over():
    X, y = blobs()
    est = MLPClassifier(**SMALL)
    est.fit(X, y)
    w1 = [w.copy() for w in all_weights(est)]
    est.fit(X, y)
    assert len(est.loss_curve_) == est.n_iter_
    for a, b in zip(w1, all_weights(est)):
        np.testing.assert_array_equal(a, b)


def test_warm_start_rejects_new_classes():
    X, y = blobs(n_classes=3)
    est = MLPClassifier(**SMALL, warm_start=True).fit(X, y)
    y2 = y.copy()
    y2[0] = 7
    with pytest.raises(ValueError, match="warm_start"):
        est.fit(X, y2)


def test_partial_fit_stream_improves_score():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:], y[1400:]
    est = MLPClassifier(hidden_layer_sizes=(32,), batch_size=50, learning_rate_init=0.01,
                        random_state=0)
    classes = np.unique(y)
    chunks = np.array_split(np.arange(len(X_train)), 7)
    est.partial_fit(X_train[chunks[0]], y_train[chunks[0]], classes=classes)
    first = est.score(X_test, y_test)
    t = est.t_
    for _ in range(3):
        for c in chunks:
            est.partial_fit(X_train[c], y_train[c])
            assert est.n_iter_ == 1
    assert est.t_ == t + 3 * len(X_train)
    assert est.score(X_test, y_test) > first + 0.3
    assert est.score(X_test, y_test) > 0.8


def test_partial_fit_regressor_stream():
    X, y = regression(n=600)
    est = MLPRegressor(hidden_layer_sizes=(16,), random_state=0, learning_rate_init=0.01)
    est.partial_fit(X[:100], y[:100])
    first = est.score(X, y)
    for _ in range(10):
        for s in range(0, 600, 100):
            est.partial_fit(X[s:s + 100], y[s:s + 100])
    assert est.score(X, y) > max(first, 0) + 0.2


def test_partial_fit_classes_handling():
    X, y = blobs(n_classes=3)
    est = MLPClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    # classes may include labels that are absent from the first chunk
    est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2, 3])
    np.testing.assert_array_equal(est.classes_, [0, 1, 2, 3])
    assert est.predict_proba(X).shape == (len(X), 4)
    est.partial_fit(X, y)  # class 2 seen later: fine
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, np.where(y == 0, 9, y))  # 9 not in classes
    # sklearn's behaviour in the same situations
    sk = SkClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes must be passed"):
        sk.partial_fit(X, y)
    sk.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="classes"):
        sk.partial_fit(X, np.where(y == 0, 9, y))


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_partial_fit_unavailable_for_lbfgs(Est):
    est = Est(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit"):
        est.partial_fit
    for solver in ("sgd", "adam", "nadam", "rmsprop", "adagrad", "adamax"):
        assert hasattr(Est(solver=solver), "partial_fit")


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("params", [
    dict(solver="adam"),
    dict(solver="sgd", batch_norm=True, dropout=0.2),
    dict(solver="lbfgs"),
    dict(solver="rmsprop", early_stopping=True, validation_fraction=0.2),
], ids=["adam", "sgd_bn_dropout", "lbfgs", "rmsprop_early_stopping"])
def test_same_random_state_is_bitwise_reproducible(params):
    X, y = blobs(n=200)
    kw = dict(hidden_layer_sizes=(16, 8), max_iter=8, **params)
    a = MLPClassifier(**kw, random_state=5).fit(X, y)
    b = MLPClassifier(**kw, random_state=5).fit(X, y)
    c = MLPClassifier(**kw, random_state=6).fit(X, y)
    assert_weights_equal(a, b)
    if params["solver"] != "lbfgs":
        assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])
    # a RandomState instance is consumed: two fits differ, as in sklearn
    rs = np.random.RandomState(5)
    d = MLPClassifier(**kw, random_state=rs)
    w1 = d.fit(X, y).coefs_[0].copy()
    assert np.array_equal(w1, a.coefs_[0])
    assert not np.array_equal(d.fit(X, y).coefs_[0], w1)


def _fit_with_threads(Est, n_threads, X, y, **kw):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastnn import _core

    with threadpoolctl.threadpool_limits(n_threads):  # OpenMP and BLAS
        assert _core.max_threads() == n_threads
        return Est(**kw).fit(X, y)


def _threads_data(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(2000, 100)
    return X, rng.randint(10, size=2000)


def test_thread_count_does_not_change_result():
    """SPEC 3: results must not depend on the thread count (OpenMP kernels,
    BatchNorm batch reductions, dropout masks, BLAS products)."""
    X, y = _threads_data()
    kw = dict(hidden_layer_sizes=(256, 256), max_iter=2, batch_size=200, random_state=0,
              batch_norm=True, dropout=0.1)
    r1 = _fit_with_threads(MLPClassifier, 1, X, y, **kw)
    r2 = _fit_with_threads(MLPClassifier, 2, X, y, **kw)
    assert_weights_equal(r1, r2)
    assert r1.loss_curve_ == r2.loss_curve_
    for name in ("bn_moving_mean_", "bn_moving_var_", "bn_gamma_"):
        for a, b in zip(getattr(r1, name), getattr(r2, name)):
            if a is not None:
                np.testing.assert_array_equal(a, b)


def test_thread_count_does_not_change_result_large_batch():
    X, y = _threads_data()
    kw = dict(hidden_layer_sizes=(128,), max_iter=2, batch_size=1000, random_state=0)
    r1 = _fit_with_threads(MLPClassifier, 1, X, y, **kw)
    r2 = _fit_with_threads(MLPClassifier, 2, X, y, **kw)
    assert_weights_equal(r1, r2)


def test_thread_count_does_not_change_result_parallel_kernels():
    """Shapes above the core's thresholds, so the GEMMs are split into column
    blocks on OpenMP threads and the element-wise loops run in parallel
    (csrc/dense.c FNN_SPLIT_GEMM, csrc/internal.h FNN_OMP_MIN_WORK)."""
    rng = np.random.RandomState(0)
    X = rng.randn(2048, 1024).astype(np.float32)
    y = rng.randint(10, size=2048)
    kw = dict(hidden_layer_sizes=(1024,), batch_size=2048, max_iter=2, random_state=0,
              batch_norm=True, dropout=0.1, solver="nadam", clipnorm=1.0)
    r1 = _fit_with_threads(MLPClassifier, 1, X, y, **kw)
    r2 = _fit_with_threads(MLPClassifier, 2, X, y, **kw)
    assert_weights_equal(r1, r2)
    np.testing.assert_array_equal(r1.predict_proba(X), r2.predict_proba(X))


@pytest.mark.parametrize("kind", ["avx512", "avx2"])
def test_sgemm_kernel_matches_blas_and_is_thread_independent(kind):
    """float32 products with an untransposed B run in the core's kernels
    where the CPU has them (csrc/sgemm_kernels.c; AVX2 takes forward products
    of mini-batches only): at mini-batch shapes (few rows, short inner
    dimension, split across threads) each must train bitwise alike on 1 and
    2 threads, and like the BLAS path up to rounding."""
    from fastnn import _core

    if _core.SGEMM_KERNELS.get(_core.sgemm_kernel_available(), 0) < _core.SGEMM_KERNELS[kind]:
        pytest.skip(f"this CPU cannot run the {kind} kernel: every product runs in BLAS")
    rng = np.random.RandomState(0)
    X = rng.randn(640, 300).astype(np.float32)
    y = rng.randint(10, size=640)
    kw = dict(hidden_layer_sizes=(300, 100), batch_size=32, max_iter=2, random_state=0,
              solver="sgd", momentum=0.9, learning_rate_init=0.01, tol=0)
    previous = _core.use_sgemm_kernel(kind)
    try:
        assert _core.sgemm_kernel_in_use() == kind
        r1 = _fit_with_threads(MLPClassifier, 1, X, y, **kw)
        r2 = _fit_with_threads(MLPClassifier, 2, X, y, **kw)
        _core.use_sgemm_kernel("off")
        assert _core.sgemm_kernel_in_use() is None
        blas = _fit_with_threads(MLPClassifier, 2, X, y, **kw)
    finally:
        _core.use_sgemm_kernel(previous)
    assert_weights_equal(r1, r2)
    for a, b in zip(all_weights(r1), all_weights(blas)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    assert not all(np.array_equal(a, b) for a, b in zip(all_weights(r1), all_weights(blas)))


def test_sgemm_kernel_environment_setting():
    """FASTNN_SGEMM_KERNEL (read at import): off keeps every product in BLAS,
    avx2 caps the kernels at AVX2; an unknown value is refused."""
    import subprocess
    import sys

    from fastnn import _core

    code = "from fastnn import _core; print(_core.sgemm_kernel_in_use())"
    out = {}
    for value in ("off", "0", "avx2", "best", "bogus"):
        env = dict(os.environ, FASTNN_SGEMM_KERNEL=value)
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True)
        out[value] = run.stdout.strip() if run.returncode == 0 else run.stderr
    best = _core.sgemm_kernel_available()
    assert out["off"] == out["0"] == "None"
    assert out["best"] == str(best)
    assert out["avx2"] == ("avx2" if best is not None else "None")
    assert "must be one of" in out["bogus"]


def test_thread_count_does_not_change_lbfgs_result():
    X, _ = _threads_data(1)
    y = X[:, :5].sum(axis=1)
    kw = dict(hidden_layer_sizes=(128,), solver="lbfgs", max_iter=3, random_state=0)
    r1 = _fit_with_threads(MLPRegressor, 1, X, y, **kw)
    r2 = _fit_with_threads(MLPRegressor, 2, X, y, **kw)
    assert_weights_equal(r1, r2)


# ---------------------------------------------------------------------------
# sample_weight
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("Est, data", [(MLPClassifier, blobs), (MLPRegressor, regression)])
def test_integer_sample_weight_equals_repeated_rows(Est, data):
    X, y = data(n=80)
    sw = np.random.RandomState(2).randint(1, 4, size=len(X))
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0,
              alpha=0.01)
    weighted = Est(**kw).fit(X, y, sample_weight=sw)
    repeated = Est(**kw).fit(np.repeat(X, sw, axis=0), np.repeat(y, sw, axis=0))
    for a, b in zip(all_weights(weighted), all_weights(repeated)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-8)
    # and the weights matter
    plain = Est(**kw).fit(X, y)
    assert not np.allclose(plain.coefs_[0], weighted.coefs_[0], rtol=1e-3)


@pytest.mark.parametrize("Est, data", [(MLPClassifier, blobs), (MLPRegressor, regression)])
def test_zero_sample_weight_ignores_rows(Est, data):
    X, y = data(n=80)
    keep = np.random.RandomState(3).rand(len(X)) < 0.7
    if Est is MLPClassifier:
        keep[np.searchsorted(y, 0)] = True  # nothing dropped needs a new class
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0,
              alpha=0.01)
    # garbage in the ignored rows must not matter
    X_noisy = X.copy()
    X_noisy[~keep] *= 100
    weighted = Est(**kw).fit(X_noisy, y, sample_weight=keep.astype(float))
    subset = Est(**kw).fit(X[keep], y[keep])
    for a, b in zip(all_weights(weighted), all_weights(subset)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_sample_weight_with_sgd_matches_sklearn_semantics():
    """As sklearn: the data loss and its gradient are weighted averages, the
    penalty is divided by the batch's weight sum, so a weight of 2 on every
    row equals unit weights with half the alpha."""
    X, y = regression()
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", max_iter=5, random_state=0,
              shuffle=True)
    a = MLPRegressor(**kw, alpha=0.05).fit(X, y)
    b = MLPRegressor(**kw, alpha=0.1).fit(X, y, sample_weight=np.full(len(X), 2.0))
    for u, v in zip(all_weights(a), all_weights(b)):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------
# fitted attributes
# ---------------------------------------------------------------------------
def test_fitted_attributes_classifier():
    X, y = blobs(n_features=6, n_classes=3)
    est = MLPClassifier(hidden_layer_sizes=(10, 7), max_iter=12, random_state=0,
                        n_iter_no_change=100).fit(X, y)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert [c.shape for c in est.coefs_] == [(6, 10), (10, 7), (7, 3)]
    assert [b.shape for b in est.intercepts_] == [(10,), (7,), (3,)]
    assert est.n_features_in_ == 6
    assert not hasattr(est, "feature_names_in_")
    assert est.n_layers_ == 4 and est.n_outputs_ == 3
    assert est.out_activation_ == "softmax"
    assert isinstance(est.loss_, float) and np.isfinite(est.loss_)
    assert isinstance(est.loss_curve_, list) and len(est.loss_curve_) == est.n_iter_ == 12
    assert est.loss_ == est.loss_curve_[-1]
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    assert est.t_ == 12 * len(X)
    assert isinstance(est.n_iter_, int)
    h = est.history_
    assert {"loss", "lr", "grad_norm", "time"} <= set(h)
    assert "val_loss" not in h and "val_score" not in h
    assert h["loss"] == est.loss_curve_
    assert all(len(v) == 12 for v in (h["lr"], h["grad_norm"], h["time"]))
    assert all(len(g) == 3 for g in h["grad_norm"])  # one per Dense layer
    assert all(np.isfinite(g).all() and min(g) > 0 for g in h["grad_norm"])
    assert all(t >= 0 for t in h["time"])
    assert h["lr"] == [est.learning_rate_init] * 12
    assert est.bn_gamma_ == [None, None, None]


def test_fitted_attributes_early_stopping():
    X, y = regression(n=200)
    est = MLPRegressor(hidden_layer_sizes=(10,), max_iter=40, early_stopping=True,
                       random_state=0, learning_rate_init=0.01).fit(X, y)
    assert est.out_activation_ == "identity" and est.n_outputs_ == 1
    assert est.best_loss_ is None
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_)
    assert est.best_validation_score_ == max(est.validation_scores_)
    h = est.history_
    assert h["val_score"] == est.validation_scores_
    assert len(h["val_loss"]) == est.n_iter_ and all(v > 0 for v in h["val_loss"])


def test_fitted_attributes_lbfgs_and_poisson():
    rng = np.random.RandomState(0)
    X = rng.randn(100, 4)
    y = rng.poisson(np.exp(X[:, 0] * 0.5))
    est = MLPRegressor(loss="poisson", hidden_layer_sizes=(5,), solver="lbfgs",
                       max_iter=50, random_state=0).fit(X, y)
    sk = SkRegressor(loss="poisson", hidden_layer_sizes=(5,), solver="lbfgs",
                     max_iter=50, random_state=0).fit(X, y)
    assert est.out_activation_ == sk.out_activation_ == "exp"
    assert np.all(est.predict(X) > 0)
    assert 0 < est.n_iter_ <= 50
    assert np.isfinite(est.loss_)
    # lbfgs has no loss curve, as sklearn
    for name in ("loss_curve_", "best_loss_", "validation_scores_"):
        assert hasattr(est, name) == hasattr(sk, name), name


def test_fitted_attributes_batch_norm():
    X, y = blobs(n_features=6)
    est = MLPClassifier(hidden_layer_sizes=(10, 7), batch_norm=True, batch_norm_input=True,
                        max_iter=3, random_state=0).fit(X, y)
    assert [None if g is None else g.shape for g in est.bn_gamma_] == [(6,), (10,), (7,)]
    for name in ("bn_beta_", "bn_moving_mean_", "bn_moving_var_"):
        assert [a.shape for a in getattr(est, name)] == [(6,), (10,), (7,)]
    assert np.all(est.bn_moving_var_[1] > 0)


def test_feature_names_in_with_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = blobs(n_features=4)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = MLPClassifier(**SMALL).fit(df, y)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="feature names"):
        pred_array = est.predict(X)
    np.testing.assert_array_equal(est.predict(df), pred_array)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df[["b", "a", "c", "d"]])
    # fitted on an array, no names are stored; predicting from a frame warns
    est2 = MLPClassifier(**SMALL).fit(X, y)
    assert not hasattr(est2, "feature_names_in_")
    with pytest.warns(UserWarning, match="feature names"):
        est2.predict(df)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 266610])
def test_flat_buffers_start_at_distinct_page_offsets(dtype, n):
    """Parameters and optimizer moments are streamed together: each starts at
    its own offset within a 4 KiB page (no 4K aliasing between them)."""
    from fastnn._network import PAGE_SLOT_BYTES, staggered_empty
    arrays = [staggered_empty(n, dtype, slot) for slot in range(3)]
    for slot, a in enumerate(arrays):
        assert a.shape == (n,) and a.dtype == dtype and a.flags.c_contiguous
        assert a.ctypes.data % 4096 == slot * PAGE_SLOT_BYTES
    X, y = load_digits(return_X_y=True)
    m = MLPClassifier(hidden_layer_sizes=(16,), max_iter=1, random_state=0).fit(
        X[:100].astype(dtype), y[:100])
    offsets = {m._optimizer_state[k].ctypes.data % 4096 for k in ("m", "v")}
    assert len(offsets) == 2
