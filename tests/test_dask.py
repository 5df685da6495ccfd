"""fastnn on a real distributed engine: dask.distributed.

* GridSearchCV under ``joblib.parallel_backend("dask")`` on a LocalCluster,
  with a nested schedule parameter in the grid (``learning_rate__max_lr``):
  the fits run on the workers and give the same results as the sequential
  search.
* ``dask_ml.wrappers.Incremental`` driving ``partial_fit`` over a dask array of
  several chunks, for both estimators: one call per block, the same model as a
  plain in-memory loop over the blocks, and ``predict`` on a dask array.

Skipped when dask.distributed / dask-ml are not installed.
"""

import re

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, train_test_split
from threadpoolctl import threadpool_limits

# "distributed" is the package behind dask.distributed (its absence is a clean
# ModuleNotFoundError, while dask.distributed raises a plain ImportError).
distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import fastnn  # noqa: E402
from fastnn.schedules import OneCycle  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CHUNK = 200


@pytest.fixture(scope="module")
def client():
    # processes=True: each worker is its own Python process, as on a real
    # cluster, so the estimators (with their nested schedule objects) and the
    # partially fitted model handed from one partial_fit block to the next are
    # really pickled and shipped; with processes=False (threads inside this
    # process) nothing is serialized and these tests would prove much less.
    # It is reliable in CI: distributed starts workers with the "spawn" method
    # (no fork after OpenMP/BLAS threads exist), and its nanny sets
    # OMP_NUM_THREADS=1 in each worker, so 2 workers x 1 thread fit 2 cores.
    # Start-up costs ~3 s, paid once for the module. The with-blocks close the
    # client and the cluster at teardown, also when a test failed.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def key_name(key):
    return key[0] if isinstance(key, tuple) else str(key)


def one_thread():
    # The workers run fastnn's core on one OpenMP thread (OMP_NUM_THREADS=1);
    # the in-process reference runs on the same count, so "same random_state,
    # same data, same thread count" makes the results bitwise comparable.
    return threadpool_limits(limits=1, user_api="openmp")


def test_grid_search_on_dask_cluster(client, digits):
    X, y = digits
    est = fastnn.MLPClassifier(hidden_layer_sizes=(32,), learning_rate=OneCycle(),
                               max_iter=15, random_state=0)
    grid = {"learning_rate__max_lr": [3e-3, 3e-2], "alpha": [1e-4, 1e-2]}
    n_fits = 4 * 3
    workers = set(client.scheduler_info()["workers"])

    with one_thread():  # the in-process refit
        with distributed.get_task_stream(client) as ts, joblib.parallel_backend("dask"):
            on_dask = GridSearchCV(clone(est), grid, cv=3).fit(X, y)
        reference = GridSearchCV(clone(est), grid, cv=3).fit(X, y)  # sequential

    # The fits ran on the cluster: joblib's dask backend submits batches named
    # "[mixed_]batch_of__fit_and_score_<n>_calls-<id>"; they add up to every
    # (candidate, fold) pair, each on one of the cluster's workers.
    calls = 0
    for task in ts.data:
        m = re.search(r"batch_of__fit_and_score_(\d+)_calls", key_name(task["key"]))
        if m:
            calls += int(m.group(1))
            assert task["worker"] in workers
    assert calls == n_fits, [key_name(t["key"]) for t in ts.data]

    # Same search result as without dask.
    assert on_dask.best_params_ == reference.best_params_
    assert on_dask.cv_results_["params"] == reference.cv_results_["params"]
    for k, v in reference.cv_results_.items():
        if k.endswith("_time") or k == "params":
            continue
        assert_array_equal(np.asarray(on_dask.cv_results_[k]), np.asarray(v), err_msg=k)
    assert on_dask.best_score_ > 0.9

    # The nested parameter reached the schedule of the refitted model.
    best = on_dask.best_estimator_
    assert isinstance(best.learning_rate, OneCycle)
    assert best.learning_rate.max_lr == on_dask.best_params_["learning_rate__max_lr"]
    assert est.learning_rate.max_lr is None  # the template was not touched
    for a, b in zip(best.coefs_ + best.intercepts_,
                    reference.best_estimator_.coefs_ + reference.best_estimator_.intercepts_):
        assert_array_equal(a, b)


def run_incremental(client, est, X_train, y_train, scoring, **fit_kwargs):
    """Fit ``Incremental(est)`` on X_train/y_train in blocks of CHUNK rows and
    check partial_fit ran once per block, in order, on the workers."""
    wrappers = pytest.importorskip("dask_ml.wrappers")
    dX = da.from_array(X_train, chunks=(CHUNK, -1))
    dy = da.from_array(y_train, chunks=CHUNK)
    n_blocks = dX.numblocks[0]
    assert n_blocks > 1

    # shuffle_blocks=False: blocks in order, so a plain loop can replay them.
    inc = wrappers.Incremental(est, scoring=scoring, shuffle_blocks=False)
    with distributed.get_task_stream(client) as ts:
        inc.fit(dX, dy, **fit_kwargs)
    model = inc.estimator_

    # One partial_fit per block: dask-ml chains tasks ("fit-<token>", i), one
    # per block i >= 0 (i = -1 holds the unfitted model), and the model saw
    # every sample once.
    fit_tasks = {t["key"] for t in ts.data
                 if key_name(t["key"]).startswith("fit-") and t["key"][1] >= 0}
    assert len(fit_tasks) == n_blocks
    assert model.t_ == len(X_train)

    # ... and it is the same model, bit for bit, as partial_fit on the same
    # blocks in memory (the model was pickled between worker processes along
    # the way: optimizer state included).
    ref = clone(est)
    with one_thread():
        for start in range(0, len(X_train), CHUNK):
            ref.partial_fit(X_train[start:start + CHUNK], y_train[start:start + CHUNK],
                            **fit_kwargs)
    assert ref.t_ == model.t_
    for a, b in zip(ref.coefs_ + ref.intercepts_, model.coefs_ + model.intercepts_):
        assert_array_equal(a, b)
    return inc, model


def test_incremental_classifier(client, digits):
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    est = fastnn.MLPClassifier(hidden_layer_sizes=(64,), batch_size=32,
                               learning_rate_init=1e-2, random_state=0)
    inc, model = run_incremental(client, est, X_train, y_train, "accuracy",
                                 classes=np.unique(y))

    dX_test = da.from_array(X_test, chunks=(CHUNK, -1))
    dy_test = da.from_array(y_test, chunks=CHUNK)
    assert inc.score(dX_test, dy_test) > 0.85  # one pass over the data
    pred = inc.predict(dX_test)
    assert isinstance(pred, da.Array)
    assert_array_equal(pred.compute(), model.predict(X_test))
    proba = inc.predict_proba(dX_test)
    assert isinstance(proba, da.Array)
    assert_allclose(proba.compute(), model.predict_proba(X_test), rtol=1e-12, atol=1e-14)


def test_incremental_regressor(client):
    rng = np.random.RandomState(0)
    X = rng.randn(1200, 8)
    y = X @ rng.randn(8) + 0.5 * np.sin(2 * X[:, 0]) + 0.1 * rng.randn(1200)
    y = (y - y.mean()) / y.std()
    X_train, X_test, y_train, y_test = X[:1000], X[1000:], y[:1000], y[1000:]
    est = fastnn.MLPRegressor(hidden_layer_sizes=(32,), batch_size=32,
                              learning_rate_init=1e-2, random_state=0)
    # scoring is explicit: Incremental's default for regressors is dask-ml's
    # r2 scorer, which fails on dask >= 2025.2 ("cannot broadcast shape (nan,)
    # to shape (nan,)", dask/dask-ml#1012).
    inc, model = run_incremental(client, est, X_train, y_train, "neg_mean_squared_error")

    dX_test = da.from_array(X_test, chunks=(100, -1))
    dy_test = da.from_array(y_test, chunks=100)
    assert inc.score(dX_test, dy_test) > -0.3  # targets are standardized
    pred = inc.predict(dX_test)
    assert isinstance(pred, da.Array)
    pred = pred.compute()
    # Equal up to the last bit: a product over 100 rows may take another
    # kernel path than one over 200 rows.
    assert_allclose(pred, model.predict(X_test), rtol=1e-12, atol=1e-12)
    assert r2_score(y_test, pred) > 0.7
