"""Threads on a machine that is not ours: fork safety and the per-step choice
of the thread count (csrc/threads.c).

GNU OpenMP's thread pool does not survive fork: a child that enters a
parallel region after the parent ran one waits forever.  Each fork case runs
in a fresh interpreter with a timeout, so a hang fails the test, not CI.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse

from fastnn import MLPClassifier, MLPRegressor, _core
from fastnn._threads import adaptive_threads

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# The parent fits a network large enough for every kind of parallel region
# (split products, element-wise passes, the update) on two threads, so its
# OpenMP pool exists when it forks.
PARENT = """
import os, sys
import numpy as np
from fastnn import MLPClassifier, _core
rng = np.random.RandomState(0)
X = rng.randn(2000, 100).astype(np.float32)
y = (X[:, 0] + X[:, 1] > 0).astype(int)
def fit():
    return MLPClassifier((700,), max_iter=1, batch_size=200, random_state=0).fit(X, y)
m = fit()
p = m.predict_proba(X)
assert not _core.forked_serial()
"""


def run_parent(child_code, timeout=180):
    code = textwrap.dedent(PARENT) + textwrap.dedent(child_code)
    env = dict(os.environ, OMP_NUM_THREADS="2")  # a pool even on a 1-core runner
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_os_fork_child_fits_and_predicts_like_the_parent():
    out = run_parent("""
        pid = os.fork()
        if pid == 0:
            ok = _core.forked_serial() and _core.max_threads() == 1
            ok &= np.array_equal(m.predict_proba(X), p)
            m2 = fit()   # a fresh fit in the child: the parent's model, bit for bit
            ok &= all(np.array_equal(a, b) for a, b in zip(m2.coefs_, m.coefs_))
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        # The parent keeps its threads and its results.
        assert not _core.forked_serial()
        assert np.array_equal(m.predict_proba(X), p)
    """)
    assert "child 0" in out


def test_multiprocessing_fork_pool():
    out = run_parent("""
        import multiprocessing as mp
        def child(i):
            m2 = fit()
            return m2.predict_proba(X), m.predict_proba(X)
        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map(child, range(2))
        for fresh, old in results:
            assert np.array_equal(fresh, p) and np.array_equal(old, p)
        print("pool ok")
    """)
    assert "pool ok" in out


def test_joblib_multiprocessing_backend():
    out = run_parent("""
        from joblib import Parallel, delayed
        def child(i):
            return fit().predict_proba(X)
        res = Parallel(n_jobs=2, backend="multiprocessing")(delayed(child)(i) for i in range(2))
        assert all(np.array_equal(r, p) for r in res)
        print("joblib ok")
    """)
    assert "joblib ok" in out


def test_fork_before_any_parallel_region_keeps_threads():
    # A child forked before the core ever ran threads has a usable pool.
    code = textwrap.dedent("""
        import os
        from fastnn import _core
        pid = os.fork()
        if pid == 0:
            os._exit(0 if not _core.forked_serial() and _core.max_threads() == 2 else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
    """)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    expected = "child 0" if _core.has_openmp() else "child 3"
    assert expected in proc.stdout


def _fit(est, X, y):
    est.fit(X, y)
    return [c.copy() for c in est.coefs_] + [b.copy() for b in est.intercepts_], \
        list(est.loss_curve_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_choice_changes_no_bit(monkeypatch, dtype):
    """Adaptive steps (whichever count each step ran on), fixed two threads
    and one thread give the same model, bit for bit."""
    from threadpoolctl import threadpool_limits
    rng = np.random.RandomState(1)
    X = rng.randn(3000, 200).astype(dtype)
    y = X[:, :3] @ rng.randn(3) + 0.1 * rng.randn(3000)
    kw = dict(hidden_layer_sizes=(300, 100), batch_size=64, max_iter=3, random_state=0,
              batch_norm=True, activation="elu", solver="nadam", dropout=0.1)
    monkeypatch.setenv("FASTNN_THREADS", "adaptive")
    adaptive = _fit(MLPRegressor(**kw), X, y)
    monkeypatch.setenv("FASTNN_THREADS", "fixed")
    fixed = _fit(MLPRegressor(**kw), X, y)
    with threadpool_limits(1):
        one = _fit(MLPRegressor(**kw), X, y)
    for other in (fixed, one):
        assert all(np.array_equal(a, b) for a, b in zip(adaptive[0], other[0]))
        assert adaptive[1] == other[1]


@pytest.mark.parametrize("layout", ["contiguous", "strided", "float64_to_float32", "csr"])
def test_batches_gathered_on_two_threads_give_one_threads_model(monkeypatch, layout):
    """Batches of 50 x 300 elements are gathered on both threads (from
    csrc/dense.c's FNN_SPLIT_GATHER, 8192, on): every layout of X trains the
    model one thread trains, bit for bit."""
    from threadpoolctl import threadpool_limits
    rng = np.random.RandomState(2)
    wide = rng.randn(600, 600)
    y = rng.randint(0, 3, 600)
    kw = dict(hidden_layer_sizes=(20,), batch_size=50, max_iter=2, random_state=0)
    if layout == "contiguous":
        X = np.ascontiguousarray(wide[:, :300], dtype=np.float32)
    elif layout == "strided":
        X = wide[:, ::2]
        assert not X.flags.c_contiguous
    elif layout == "float64_to_float32":
        X = np.ascontiguousarray(wide[:, :300])
        kw["dtype"] = "float32"
    else:
        X = scipy.sparse.csr_matrix(wide[:, :300] * (rng.rand(600, 300) < 0.3))
    monkeypatch.setenv("FASTNN_THREADS", "fixed")
    two = _fit(MLPClassifier(**kw), X, y)
    with threadpool_limits(1):
        one = _fit(MLPClassifier(**kw), X, y)
    assert all(np.array_equal(a, b) for a, b in zip(two[0], one[0]))
    assert two[1] == one[1]


def test_thread_setting_is_validated(monkeypatch):
    monkeypatch.setenv("FASTNN_THREADS", "fixed")
    assert adaptive_threads() is False
    monkeypatch.delenv("FASTNN_THREADS")
    assert adaptive_threads() is True
    monkeypatch.setenv("FASTNN_THREADS", "sometimes")
    with pytest.raises(ValueError, match="FASTNN_THREADS"):
        MLPClassifier(max_iter=1).fit(np.eye(4), [0, 1, 0, 1])


def _epoch_net(n_threads, adaptive):
    from fastnn._network import Layout
    layout = Layout([20, 64, 1])
    net = layout.network(np.float64, activation=[_core.ACTIVATIONS["relu"],
                                                 _core.ACTIVATIONS["identity"]],
                         loss=_core.LOSSES["squared_error"], solver=_core.SOLVERS["sgd"],
                         n_threads=n_threads, adaptive_threads=adaptive)
    params = np.random.RandomState(0).uniform(-0.1, 0.1, layout.n_params)
    return net, params


@pytest.mark.parametrize("n_threads, adaptive, counted", [(2, True, True), (2, False, False),
                                                          (1, True, False)])
def test_steps_are_counted_per_thread_count(n_threads, adaptive, counted):
    """The policy times every step but the first of each epoch call (which
    also pays for the workspace's first touches); it is off with a fixed
    count or a single thread."""
    net, params = _epoch_net(n_threads, adaptive)
    rng = np.random.RandomState(0)
    X = rng.randn(640, 20)
    y = X[:, :1].copy()
    m, v = np.zeros_like(params), np.zeros_like(params)
    for epoch in range(3):
        _core.train_epoch(net, params, np.zeros(0), m, v, np.array([0.0, 1.0]), X, y, None,
                          np.arange(640), 32, np.full(20, 1e-3), epoch, np.zeros(2))
    one, many = net.thread_steps
    assert one + many == (3 * 19 if counted else 0)


