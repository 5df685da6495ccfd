"""Robustness: hostile input, divergence, Ctrl-C, leaks, concurrency, threads.

Everything that hands hostile input (or a lot of work) to the C core runs in
ONE child pytest process (see ``isolated``): a segfault there fails the test
that crashed (the rest are re-run in a fresh child) instead of killing this
pytest. The real-SIGINT tests run their own subprocess.

Fuzz budget: ``FUZZ_EXAMPLES`` examples per hypothesis property,
``derandomize=True`` (deterministic in CI), no deadline. Run with ``-s`` to
see the leak (RSS) and concurrency (timing) figures.
"""

import gc
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

import fastnn
from fastnn import DivergenceError, MLPClassifier, MLPRegressor
from fastnn.schedules import Constant

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore::UserWarning",  # batch_size clipping, GradientWarning
)

FUZZ_EXAMPLES = 200
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), print_blob=False)

NONFINITE_MSG = r"(?i)\bnan\b|infinit|\binf\b"


# ---------------------------------------------------------------------------
# crash isolation: isolated tests run in one child pytest process
# ---------------------------------------------------------------------------
_CHILD_ENV = "FASTNN_ROBUSTNESS_CHILD"
_IN_CHILD = os.environ.get(_CHILD_ENV) == "1"
_ISOLATED = []

_CHILD_RUNNER = r'''
import json, sys, pytest
log = open(sys.argv[1], "a", buffering=1)
class Recorder:
    def pytest_runtest_logstart(self, nodeid, location):
        log.write(json.dumps({"event": "start", "name": nodeid.split("::")[-1]}) + "\n")
    def pytest_runtest_logreport(self, report):
        log.write(json.dumps({"event": "report", "name": report.nodeid.split("::")[-1],
                              "when": report.when, "outcome": report.outcome,
                              "longrepr": report.longreprtext, "stdout": report.capstdout,
                              "duration": report.duration}) + "\n")
sys.exit(pytest.main(sys.argv[2:], plugins=[Recorder()]))
'''


def isolated(fn):
    """Run this test in the shared child pytest process (crash isolation)."""
    name = fn.__name__
    _ISOLATED.append(name)
    if _IN_CHILD:
        return fn

    def test(_isolated_child):
        _isolated_child.check(name)

    test.__name__ = test.__qualname__ = name
    test.__doc__ = fn.__doc__
    return test


def _crash_excerpt(text):
    """The faulthandler traceback of a crashed child, else the end of its output."""
    i = text.find("Fatal Python error")
    if i >= 0:
        return "\n".join(text[i:].splitlines()[:40])[:4000]
    return text[-3000:]


class _ChildRun:
    def __init__(self, names, rootdir):
        self.results, self.crashes = {}, {}
        remaining = list(names)
        while remaining:
            with tempfile.TemporaryDirectory() as tmp:
                log = os.path.join(tmp, "log.jsonl")
                env = dict(os.environ, **{_CHILD_ENV: "1"})
                cmd = [sys.executable, "-c", _CHILD_RUNNER, log, "-q", "-o", "addopts=",
                       "-p", "no:cacheprovider", "--tb=short",
                       *[f"{__file__}::{n}" for n in remaining]]
                try:
                    proc = subprocess.run(cmd, env=env, cwd=rootdir, capture_output=True,
                                          text=True, timeout=900)
                    rc, tail = proc.returncode, _crash_excerpt(proc.stdout + proc.stderr)
                except subprocess.TimeoutExpired as e:
                    rc, tail = "timeout", str(e.stdout or "")[-3000:]
                started = []
                if os.path.exists(log):
                    with open(log) as f:
                        for line in f:
                            ev = json.loads(line)
                            if ev["event"] == "start":
                                started.append(ev["name"])
                            else:
                                self.results.setdefault(ev["name"], []).append(ev)
            unfinished = [n for n in started
                          if not any(r["when"] == "teardown" for r in self.results.get(n, []))]
            if not unfinished:
                missing = [n for n in remaining if n not in self.results]
                for n in missing:
                    self.crashes[n] = f"child pytest exited ({rc}) without running it:\n{tail}"
                break
            crashed = unfinished[0]
            self.crashes[crashed] = f"crashed the child process (exit status {rc}):\n{tail}"
            remaining = [n for n in remaining if n not in self.results and n != crashed]

    def check(self, name):
        if name in self.crashes:
            pytest.fail(f"{name} {self.crashes[name]}", pytrace=False)
        reports = self.results[name]
        for r in reports:
            if r["when"] == "call" and r["stdout"]:
                print(r["stdout"], end="")
        for r in reports:
            if r["outcome"] == "failed":
                pytest.fail(f"[child {r['when']}] {r['longrepr']}", pytrace=False)
        for r in reports:
            if r["outcome"] == "skipped":
                pytest.skip(r["longrepr"])


@pytest.fixture(scope="module")
def _isolated_child(request):
    here = Path(__file__).resolve()
    names = [item.name for item in request.session.items
             if Path(str(item.path)).resolve() == here and item.name in _ISOLATED]
    return _ChildRun(names, str(request.config.rootpath))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _est(kind, **kw):
    params = dict(hidden_layer_sizes=(3,), max_iter=3, random_state=0)
    params.update(kw)
    return MLPClassifier(**params) if kind == "clf" else MLPRegressor(**params)


def _targets(kind, rng, n, n_classes=3):
    if kind == "clf":
        return rng.randint(0, n_classes, size=n)
    return rng.randn(n)


def _train(est, method, X, y, sample_weight=None):
    if method == "partial_fit" and est.solver != "lbfgs":
        kw = {"classes": np.arange(3)} if isinstance(est, MLPClassifier) else {}
        est.partial_fit(X, y, sample_weight=sample_weight, **kw)
        est.partial_fit(X, y, sample_weight=sample_weight)
    else:
        est.fit(X, y, sample_weight=sample_weight)
    return est


def _params(est):
    out = list(est.coefs_) + list(est.intercepts_)
    for name in ("bn_gamma_", "bn_beta_", "bn_moving_mean_", "bn_moving_var_"):
        out += [a for a in getattr(est, name, []) if a is not None]
    return out


def assert_same_model(a, b):
    pa, pb = _params(a), _params(b)
    assert len(pa) == len(pb)
    for u, v in zip(pa, pb):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)


def assert_all_finite(est):
    for w in _params(est):
        assert np.isfinite(w).all()


def _outputs(est, X):
    out = [np.asarray(est.predict(X))]
    if isinstance(est, MLPClassifier):
        out.append(est.predict_proba(X))
    return out


def assert_same_outputs(est, Xa, Xb):
    for u, v in zip(_outputs(est, Xa), _outputs(est, Xb)):
        np.testing.assert_array_equal(u, v)


def _blas_threads():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()
                  if i["user_api"] == "blas")


# ---------------------------------------------------------------------------
# hostile input: dense layouts and dtypes
# ---------------------------------------------------------------------------
DTYPES = ["float64", "float32", "float16", "int64", "int32", "uint8", "bool", "object"]
LAYOUTS = ["C", "F", "row_strided", "col_strided", "negative_strides", "unaligned",
           "readonly", "broadcast", "list"]


def _cast(values, dtype):
    if dtype == "bool":
        return values > 0
    if dtype in ("int64", "int32"):
        return np.round(values * 2).astype(dtype)
    if dtype == "uint8":
        return np.round(np.abs(values) * 2).astype(dtype)
    if dtype == "object":
        return values.astype(object)
    return values.astype(dtype)


def _layout(A, layout):
    n, p = A.shape
    if layout == "F":
        return np.asfortranarray(A)
    if layout == "row_strided":
        B = np.zeros((2 * n, p), dtype=A.dtype)
        B[::2] = A
        return B[::2]
    if layout == "col_strided":
        B = np.zeros((n, 3 * p), dtype=A.dtype)
        B[:, ::3] = A
        return B[:, ::3]
    if layout == "negative_strides":
        return A[::-1, ::-1].copy()[::-1, ::-1]
    if layout == "unaligned" and A.dtype != object:
        buf = bytearray(A.nbytes + 1)
        B = np.frombuffer(buf, dtype=A.dtype, count=A.size, offset=1).reshape(A.shape)
        B[...] = A
        return B
    if layout == "readonly":
        B = A.copy()
        B.flags.writeable = False
        return B
    if layout == "broadcast":
        return np.broadcast_to(A[:1], A.shape)
    if layout == "list":
        return A.tolist()
    return A


def _canonical(X):
    """What validate_data makes of X: a C-contiguous float64 (float32 stays) copy."""
    dtype = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
    return np.ascontiguousarray(np.asarray(X, dtype=dtype))


@isolated
@FUZZ
@given(seed=st.integers(0, 2**16), n=st.sampled_from([1, 2, 3, 7, 20]),
       p=st.integers(1, 4), dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS),
       kind=st.sampled_from(["clf", "reg"]), solver=st.sampled_from(["adam", "sgd", "lbfgs"]),
       batch_size=st.sampled_from(["auto", 1, 1000]), n_classes=st.integers(1, 3),
       method=st.sampled_from(["fit", "partial_fit"]))
def test_fuzz_dense_layouts_and_dtypes_match_c_contiguous_float(
        seed, n, p, dtype, layout, kind, solver, batch_size, n_classes, method):
    """Fortran / strided / negative-stride / unaligned / read-only / broadcast /
    list X, and int / bool / float16 / object dtypes, fit and predict exactly
    as the C-contiguous float copy that validate_data makes of them;
    shapes include 1 row, 1 feature and batch_size >> n."""
    rng = np.random.RandomState(seed)
    Xv = _layout(_cast(rng.randn(n, p), dtype), layout)
    Xc = _canonical(Xv)
    y = _targets(kind, rng, n, n_classes)
    a = _train(_est(kind, solver=solver, batch_size=batch_size), method, Xv, y)
    b = _train(_est(kind, solver=solver, batch_size=batch_size), method, Xc, y)
    assert_same_model(a, b)
    assert_all_finite(a)
    assert_same_outputs(b, Xv, Xc)
    np.testing.assert_equal(a.score(Xv, y), b.score(Xc, y))


# ---------------------------------------------------------------------------
# hostile input: sparse formats
# ---------------------------------------------------------------------------
SPARSE_FORMATS = ["csr", "csc", "coo", "lil", "dok", "bsr", "dia"]


def _compressed(major, minor, data, n_major, shape, cls):
    order = np.argsort(major, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(major, minlength=n_major))])
    return cls((data[order], minor[order], indptr), shape=shape)


def _make_sparse(dense, fmt, container, explicit_zeros, duplicates, index64, rng):
    """dense as a sparse matrix/array of format fmt, optionally with stored
    zeros, duplicate entries (for csr/csc/coo) and int64 indices."""
    n, p = dense.shape
    rows, cols = np.nonzero(dense)
    data = dense[rows, cols]
    if explicit_zeros:
        zr, zc = np.nonzero(dense == 0)
        k = min(len(zr), 3)
        pick = rng.choice(len(zr), size=k, replace=False) if k else np.array([], int)
        rows, cols = np.r_[rows, zr[pick]], np.r_[cols, zc[pick]]
        data = np.r_[data, np.zeros(k, dtype=dense.dtype)]
    if duplicates and dense.dtype.kind == "f" and len(data):
        half = data / 2  # exact: v / 2 + v / 2 == v
        rows, cols, data = np.r_[rows, rows], np.r_[cols, cols], np.r_[half, half]
    rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    mat = container == "matrix"
    if fmt == "csr":
        X = _compressed(rows, cols, data, n, (n, p), sp.csr_matrix if mat else sp.csr_array)
    elif fmt == "csc":
        X = _compressed(cols, rows, data, p, (n, p), sp.csc_matrix if mat else sp.csc_array)
    else:
        coo = (sp.coo_matrix if mat else sp.coo_array)((data, (rows, cols)), shape=(n, p))
        X = coo if fmt == "coo" else coo.asformat(fmt)
    if index64:
        if fmt in ("csr", "csc", "bsr"):
            X.indices = X.indices.astype(np.int64)
            X.indptr = X.indptr.astype(np.int64)
        elif fmt == "coo":
            X.row = X.row.astype(np.int64)
            X.col = X.col.astype(np.int64)
    return X


@isolated
@FUZZ
@given(seed=st.integers(0, 2**16), n=st.sampled_from([1, 2, 5, 20]), p=st.integers(1, 5),
       density=st.sampled_from([0.0, 0.3, 1.0]), fmt=st.sampled_from(SPARSE_FORMATS),
       container=st.sampled_from(["matrix", "array"]),
       dtype=st.sampled_from(["float64", "float32", "int64", "bool"]),
       explicit_zeros=st.booleans(), duplicates=st.booleans(), index64=st.booleans(),
       kind=st.sampled_from(["clf", "reg"]), solver=st.sampled_from(["adam", "lbfgs"]),
       batch_norm=st.booleans(), method=st.sampled_from(["fit", "partial_fit"]))
def test_fuzz_sparse_formats_match_dense(seed, n, p, density, fmt, container, dtype,
                                         explicit_zeros, duplicates, index64, kind, solver,
                                         batch_norm, method):
    """csr/csc/coo/lil/dok/bsr/dia (matrix and array API; int64 indices;
    stored zeros; duplicate entries; empty) fit and predict exactly as their
    dense copy."""
    rng = np.random.RandomState(seed)
    dense = rng.randn(n, p) * (rng.rand(n, p) < density)
    dense = dense.astype(dtype) if dtype != "int64" else np.round(dense * 2).astype(dtype)
    Xs = _make_sparse(dense, fmt, container, explicit_zeros, duplicates, index64, rng)
    Xd = _canonical(Xs.toarray())
    y = _targets(kind, rng, n)
    bn = dict(batch_norm=batch_norm) if solver != "lbfgs" else {}
    a = _train(_est(kind, solver=solver, **bn), method, Xs, y)
    b = _train(_est(kind, solver=solver, **bn), method, Xd, y)
    assert_same_model(a, b)
    assert_same_outputs(b, Xs, Xd)


def test_malformed_csr_is_rejected_not_read():
    """CSR whose indices/indptr point outside the matrix: ValueError, no crash."""
    code = r'''
import warnings; warnings.simplefilter("ignore")
import numpy as np, scipy.sparse as sp
from fastnn import MLPClassifier
X = np.random.RandomState(0).randn(6, 3); y = np.array([0, 1] * 3)
clf = MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
def bad(kind):
    m = sp.csr_matrix(X)
    m.indices, m.indptr = m.indices.copy(), m.indptr.copy()
    if kind == "index_high": m.indices[4] = 10**6
    if kind == "index_negative": m.indices[4] = -5
    if kind == "indptr_high": m.indptr[3] = 10**6
    if kind == "indptr_decreasing": m.indptr[3] = 1
    if kind == "data_short": m.data = m.data[:5]
    return m
for kind in ["index_high", "index_negative", "indptr_high", "indptr_decreasing", "data_short"]:
    for what in ("fit", "predict"):
        try:
            if what == "fit":
                MLPClassifier((4,), max_iter=2).fit(bad(kind), y)
            else:
                clf.predict(bad(kind))
            print(kind, what, "ACCEPTED")
        except ValueError as e:
            print(kind, what, "ValueError", str(e).replace("\n", " ")[:80])
'''
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"crashed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    lines = proc.stdout.splitlines()
    assert len(lines) == 10, proc.stdout
    for line in lines:
        assert "ValueError" in line and re.search(r"(?i)malformed|X\.data|indices|indptr",
                                                  line), line


# ---------------------------------------------------------------------------
# hostile input: NaN / inf, shapes, lengths, dtypes, weights, labels
# ---------------------------------------------------------------------------
NONFINITE_PLACES = ["X", "y", "sample_weight", "partial_fit_X", "predict_X", "proba_X",
                    "score_X", "score_y"]


@isolated
@FUZZ
@given(seed=st.integers(0, 2**16), n=st.integers(2, 12), p=st.integers(1, 4),
       kind=st.sampled_from(["clf", "reg"]), where=st.sampled_from(NONFINITE_PLACES),
       value=st.sampled_from([np.nan, np.inf, -np.inf]), sparse=st.booleans(),
       solver=st.sampled_from(["adam", "lbfgs"]))
def test_fuzz_nonfinite_values_give_clear_valueerror(seed, n, p, kind, where, value, sparse,
                                                     solver):
    """NaN / +inf / -inf anywhere in X (dense or CSR), y or sample_weight, at
    fit, partial_fit, predict, predict_proba or score: a ValueError that says
    NaN or infinity (never a DivergenceError, a crash or a silent answer)."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    y = _targets(kind, rng, n, 2).astype(float)
    good = _est(kind, solver=solver).fit(X, y)
    i, j = rng.randint(n), rng.randint(p)
    Xbad = X.copy()
    Xbad[i, j] = value
    Xbad = sp.csr_matrix(Xbad) if sparse else Xbad
    ybad = y.copy()
    ybad[i] = value
    sw = np.ones(n)
    sw[i] = value
    if where == "proba_X" and kind == "reg":
        where = "predict_X"
    est = _est(kind, solver=solver if not where.startswith("partial") else "adam")
    calls = {
        "X": lambda: est.fit(Xbad, y),
        "y": lambda: est.fit(X, ybad),
        "sample_weight": lambda: est.fit(X, y, sample_weight=sw),
        "partial_fit_X": lambda: _train(est, "partial_fit", Xbad, y),
        "predict_X": lambda: good.predict(Xbad),
        "proba_X": lambda: good.predict_proba(Xbad),
        "score_X": lambda: good.score(Xbad, y),
        "score_y": lambda: good.score(X, ybad),
    }
    with pytest.raises(ValueError, match=NONFINITE_MSG) as info:
        calls[where]()
    assert not isinstance(info.value, DivergenceError)


SHAPE_CASES = {
    "y_too_short": r"inconsistent numbers of samples",
    "y_too_long": r"inconsistent numbers of samples",
    "sample_weight_length": r"sample_weight",
    "predict_features": r"features",
    "proba_features": r"features",
    "score_features": r"features",
    "partial_fit_features": r"features",
    "sparse_predict_features": r"features",
    "fit_zero_rows": r"0 sample",
    "predict_zero_rows": r"0 sample",
    "zero_features": r"0 feature",
    "X_1d": r"Expected 2D array",
    "X_3d": r"dim 3",
}


@isolated
@FUZZ
@given(seed=st.integers(0, 2**16), n=st.integers(2, 10), p=st.integers(1, 5),
       delta=st.integers(1, 3), kind=st.sampled_from(["clf", "reg"]),
       case=st.sampled_from(sorted(SHAPE_CASES)), sparse=st.booleans())
def test_fuzz_shape_mismatches_give_clear_valueerror(seed, n, p, delta, kind, case, sparse):
    """Mismatched y / sample_weight lengths, a wrong feature count at predict /
    predict_proba / score / partial_fit, 0 rows, 0 features, 1-D and 3-D X:
    a ValueError naming the problem."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    Xs = sp.csr_matrix(X) if sparse else X
    y = _targets(kind, rng, n, 2)
    good = _est(kind).fit(Xs, y)
    q = p + delta if rng.rand() < 0.5 or p - delta < 1 else p - delta
    Xq = rng.randn(n, q)
    Xq = sp.csr_matrix(Xq) if sparse else Xq
    est = _est(kind)
    calls = {
        "y_too_short": lambda: est.fit(Xs, y[:max(n - delta, 1)]),
        "y_too_long": lambda: est.fit(Xs, np.r_[y, y[:delta]]),
        "sample_weight_length": lambda: est.fit(Xs, y, sample_weight=np.ones(n + delta)),
        "predict_features": lambda: good.predict(Xq),
        "proba_features": lambda: (good.predict_proba(Xq) if kind == "clf"
                                   else good.predict(Xq)),
        "score_features": lambda: good.score(Xq, y),
        "partial_fit_features": lambda: good.partial_fit(Xq, y),
        "sparse_predict_features": lambda: good.predict(sp.csr_matrix(rng.randn(n, q))),
        "fit_zero_rows": lambda: est.fit(Xs[:0], y[:0]),
        "predict_zero_rows": lambda: good.predict(Xs[:0]),
        "zero_features": lambda: est.fit(X[:, :0], y),
        "X_1d": lambda: good.predict(X[0]),
        "X_3d": lambda: est.fit(X.reshape(n, p, 1), y),
    }
    with pytest.raises(ValueError, match=SHAPE_CASES[case]):
        calls[case]()


def _bad_dtype_cases():
    rng = np.random.RandomState(0)
    X = rng.randn(12, 3)
    y = np.array([0, 1] * 6)
    yr = rng.randn(12)
    fitted = MLPClassifier((3,), max_iter=2, random_state=0).fit(X, y)
    return [
        ("complex X", lambda: MLPClassifier(max_iter=2).fit(X + 1j, y), ValueError, "Complex"),
        ("complex sparse X", lambda: MLPClassifier(max_iter=2).fit(sp.csr_matrix(X + 1j), y),
         ValueError, "Complex"),
        ("complex predict X", lambda: fitted.predict(X.astype(complex)), ValueError, "Complex"),
        ("complex y", lambda: MLPRegressor(max_iter=2).fit(X, yr + 1j), ValueError, "Complex"),
        ("complex sample_weight",
         lambda: MLPClassifier(max_iter=2).fit(X, y, sample_weight=np.ones(12) + 1j),
         ValueError, "Complex"),
        ("string X", lambda: MLPClassifier(max_iter=2).fit(np.full((12, 3), "a"), y),
         ValueError, "(?i)string|convert"),
        ("string predict X", lambda: fitted.predict(np.full((12, 3), "a", dtype=object)),
         ValueError, "(?i)string|convert"),
        ("None in object X", lambda: MLPClassifier(max_iter=2).fit(
            np.where(X > 1, None, X).astype(object), y), ValueError, "NaN"),
        ("string y for regressor",
         lambda: MLPRegressor(max_iter=2).fit(X, np.array(["a", "b"] * 6)),
         ValueError, "(?i)string|convert"),
        ("mixed str/int labels", lambda: MLPClassifier(max_iter=2).fit(
            X, np.array(["a", 1] * 6, dtype=object)), (TypeError, ValueError), "str"),
        ("None label", lambda: MLPClassifier(max_iter=2).fit(
            X, np.array(["a", None] * 6, dtype=object)), (TypeError, ValueError), "None"),
        ("NaN label among strings", lambda: MLPClassifier(max_iter=2).fit(
            X, np.array(["a", np.nan] * 6, dtype=object)), ValueError, "NaN"),
        ("NaN float labels", lambda: MLPClassifier(max_iter=2).fit(X, np.where(y, np.nan, 1.0)),
         ValueError, "NaN"),
        ("NaN in partial_fit classes", lambda: MLPClassifier(max_iter=2).partial_fit(
            X, y, classes=np.array([0.0, np.nan])), ValueError, "NaN"),
        ("continuous y for classifier", lambda: MLPClassifier(max_iter=2).fit(X, yr),
         ValueError, "(?i)label type|continuous"),
        ("sparse y", lambda: MLPClassifier(max_iter=2).fit(X, sp.csr_matrix(y.reshape(-1, 1))),
         TypeError, "(?i)sparse"),
        ("float16 overflow", lambda: MLPClassifier(max_iter=2).fit(
            np.full((12, 3), 1e5).astype(np.float16), y), ValueError, NONFINITE_MSG),
        ("2-D sample_weight", lambda: MLPClassifier(max_iter=2).fit(
            X, y, sample_weight=np.ones((12, 1))), ValueError, "(?i)sample weights"),
        ("string sample_weight", lambda: MLPClassifier(max_iter=2).fit(
            X, y, sample_weight=np.array(["a"] * 12)), ValueError, "(?i)string|convert"),
        ("partial_fit without classes", lambda: MLPClassifier(max_iter=2).partial_fit(X, y),
         ValueError, "classes"),
        ("partial_fit unseen label", lambda: MLPClassifier(max_iter=2).partial_fit(
            X, y, classes=[0, 1]).partial_fit(X, y + 1), ValueError, "classes"),
    ]


@isolated
def test_bad_dtypes_and_labels_give_clear_errors():
    """complex / string / object X, y and sample_weight; NaN, None and mixed
    labels; sparse y; float16 overflow: a ValueError/TypeError naming it."""
    problems = []
    for name, call, exc, pattern in _bad_dtype_cases():
        try:
            call()
            problems.append(f"{name}: accepted")
        except exc as e:
            if not re.search(pattern, str(e)):
                problems.append(f"{name}: unclear message {str(e)[:200]!r}")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{name}: {type(e).__name__}: {str(e)[:200]}")
    assert not problems, "\n".join(problems)


@isolated
@FUZZ
@given(seed=st.integers(0, 2**16), n=st.integers(2, 12), kind=st.sampled_from(["clf", "reg"]),
       solver=st.sampled_from(["adam", "sgd", "lbfgs"]),
       weights=st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, -1.0]), min_size=12,
                        max_size=12))
def test_fuzz_zero_and_negative_sample_weights(seed, n, kind, solver, weights):
    """Weights with no positive sum: ValueError naming sample_weight. Otherwise
    a finite model (negative weights: or a clear ValueError)."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    y = _targets(kind, rng, n, 2)
    sw = np.array(weights[:n])
    est = _est(kind, solver=solver, max_iter=5)
    if not sw.sum() > 0:
        with pytest.raises(ValueError, match=r"(?i)sample.?weight"):
            est.fit(X, y, sample_weight=sw)
        return
    try:
        est.fit(X, y, sample_weight=sw)
    except ValueError as e:
        assert (sw < 0).any(), f"rejected non-negative weights: {e}"
        assert re.search(r"(?i)sample.?weight|negative|diverged", str(e)), str(e)
        return
    assert_all_finite(est)
    for out in _outputs(est, X):
        assert out.dtype.kind not in "fc" or np.isfinite(out).all()


@isolated
@FUZZ
@given(seed=st.integers(0, 2**16), n=st.integers(2, 10),
       weights=st.lists(st.sampled_from([0, 1, 2, 3]), min_size=10, max_size=10),
       kind=st.sampled_from(["clf", "reg"]))
def test_fuzz_integer_weights_equal_repeated_rows_lbfgs(seed, n, weights, kind):
    """lbfgs (full batch): weight 0 = row dropped, weight k = row repeated k times
    (few iterations: lbfgs amplifies rounding differences over many)."""
    sw = np.array(weights[:n], dtype=float)
    if sw.sum() == 0:
        sw[0] = 1.0
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 3)
    y = _targets(kind, rng, n, 2)
    rep = np.repeat(np.arange(n), sw.astype(int))
    if kind == "clf" and len(np.unique(y[rep])) != len(np.unique(y)):
        return  # dropping rows removed a class: not the same problem
    a = _est(kind, solver="lbfgs", max_iter=5).fit(X, y, sample_weight=sw)
    b = _est(kind, solver="lbfgs", max_iter=5).fit(X[rep], y[rep])
    Xt = rng.randn(20, 3)
    if kind == "clf":
        np.testing.assert_allclose(a.predict_proba(Xt), b.predict_proba(Xt), rtol=1e-6,
                                   atol=1e-9)
    else:
        np.testing.assert_allclose(a.predict(Xt), b.predict(Xt), rtol=1e-6, atol=1e-9)


LABEL_KINDS = ["int", "negative_int", "str", "object_str", "float", "bool"]


@isolated
@FUZZ
@given(seed=st.integers(0, 2**16), n=st.integers(1, 15), n_classes=st.integers(1, 4),
       label_kind=st.sampled_from(LABEL_KINDS), solver=st.sampled_from(["adam", "lbfgs"]))
def test_fuzz_labels_string_single_class(seed, n, n_classes, label_kind, solver):
    """Any label type gives the same model as integer-coded labels (classes
    sorted the same way); a single class is predicted everywhere."""
    rng = np.random.RandomState(seed)
    if label_kind == "bool":
        n_classes = min(n_classes, 2)
    X = rng.randn(n, 3)
    codes = rng.randint(0, n_classes, size=n)
    names = {"int": np.arange(4) * 3, "negative_int": np.arange(4) - 10,
             "str": np.array(["ant", "bee", "cat", "dog"]),
             "object_str": np.array(["ant", "bee", "cat", "dog"], dtype=object),
             "float": np.array([-2.0, 0.0, 3.0, 7.0]),
             "bool": np.array([False, True])}[label_kind]
    y = names[codes]
    a = _est("clf", solver=solver).fit(X, y)
    b = _est("clf", solver=solver).fit(X, codes)
    np.testing.assert_array_equal(a.classes_, names[np.unique(codes)])
    assert_same_model(a, b)
    Xt = rng.randn(7, 3)
    pred = a.predict(Xt)
    np.testing.assert_array_equal(pred, names[b.predict(Xt)])
    proba = a.predict_proba(Xt)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    if len(np.unique(codes)) == 1:
        assert (pred == y[0]).all()


@isolated
def test_mc_samples_negative_is_rejected():
    """predict_proba(mc_samples=-3) is a caller bug: expect a ValueError, not a
    silent deterministic pass."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 3), np.array([0, 1, 2] * 10)
    clf = MLPClassifier((5,), dropout=0.2, max_iter=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="mc_samples"):
        clf.predict_proba(X, mc_samples=-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_predict_checks_x_finiteness_through_the_first_layer(dtype, kind):
    """predict / predict_proba check dense X's finiteness as a side effect of
    the first layer (fnn_predict's flag) instead of a separate pass: every
    NaN or infinity, wherever it sits (any row, any column, in any chunk of
    rows), still raises sklearn's ValueError; MC dropout keeps the full
    check; finite X that overflows the first layer is not rejected."""
    rng = np.random.RandomState(1)
    X = rng.randn(600, 40).astype(dtype)
    y = _targets(kind, rng, 600, 3).astype(float)
    est = _est(kind, hidden_layer_sizes=(48,), max_iter=2, batch_size=64,
               random_state=0).fit(X, y)
    methods = [est.predict] + ([est.predict_proba] if kind == "clf" else [])
    for value in (np.nan, np.inf, -np.inf):
        for i, j in ((0, 0), (599, 39), (300, 17)):
            Xbad = X.copy()
            Xbad[i, j] = value
            for method in methods:
                with pytest.raises(ValueError, match=NONFINITE_MSG):
                    method(Xbad)
            mc = est.predict if kind == "reg" else est.predict_proba
            with pytest.raises(ValueError, match=NONFINITE_MSG):
                mc(Xbad, mc_samples=2)
    assert np.isfinite(est.predict(X).astype(float)).all()
    huge = X.astype(np.float64) * (1e36 if dtype == np.float32 else 1e305)
    est.predict(huge)  # finite input: whatever the network makes of it, no error


@isolated
def test_float32_model_rejects_float64_x_beyond_float32_range():
    """A float32 model casts float64 X to float32: finite X beyond float32's
    range becomes inf. Expect a clear ValueError (or a finite prediction, as
    sklearn, which computes in float64) -- not NaN predictions."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 3).astype(np.float32), rng.randn(30)
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    Xbig = X.astype(np.float64) * 1e300
    try:
        pred = reg.predict(Xbig)
    except ValueError as e:
        assert re.search(r"(?i)float32|too large|infinit|range", str(e)), str(e)
        return
    assert np.isfinite(pred).all(), f"silent non-finite predictions: {pred[:3]}"


@isolated
def test_float32_model_rejects_float64_y_beyond_float32_range():
    """float32 X trains in float32 and y is cast to float32: a finite float64 y
    beyond float32's range becomes inf. Expect a ValueError about y (observed:
    a DivergenceError blaming the learning rate, or with lbfgs a silently
    untrained model)."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 5).astype(np.float32)
    y = rng.randn(40) * 1e39
    problems = []
    for solver in ("adam", "lbfgs"):
        reg = MLPRegressor(hidden_layer_sizes=(3,), solver=solver, max_iter=5, random_state=0)
        try:
            reg.fit(X, y)
            problems.append(f"{solver}: fitted silently, loss_={reg.loss_}")
        except ValueError as e:
            if not re.search(r"(?i)\by\b.*(float32|range|large|infinit)", str(e)):
                problems.append(f"{solver}: {type(e).__name__}: {str(e)[:120]}")
    assert not problems, "\n".join(problems)


@isolated
def test_sample_weight_sum_overflow_is_handled():
    """Finite weights whose sum overflows (1e308 each) or whose reciprocal does
    (1e-320 each): expect a ValueError naming sample_weight or a real fit --
    observed: a DivergenceError blaming the learning rate (adam) or a silently
    untrained model (lbfgs)."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 5)
    y = X[:, 0] * 2
    problems = []
    for solver in ("adam", "lbfgs"):
        for w in (1e308, 1e-320):
            reg = MLPRegressor(hidden_layer_sizes=(3,), solver=solver, max_iter=5,
                               random_state=0)
            try:
                reg.fit(X, y, sample_weight=np.full(40, w))
            except ValueError as e:
                if not re.search(r"(?i)sample.?weight", str(e)):
                    problems.append(f"{solver}, w={w}: {type(e).__name__}: {str(e)[:90]}")
                continue
            if not (np.isfinite(reg.loss_) and reg.n_iter_ > 0):
                problems.append(f"{solver}, w={w}: fitted with loss_={reg.loss_}, "
                                f"n_iter_={reg.n_iter_}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# divergence
# ---------------------------------------------------------------------------
def _epoch_of(err):
    m = re.search(r"epoch (\d+)", str(err))
    assert m, f"message does not name the epoch: {err}"
    return int(m.group(1))


@isolated
def test_divergence_error_names_epoch_and_keeps_last_finite_weights():
    """One step per epoch (batch_size=n): the model kept is exactly the one
    after the last finite epoch, i.e. a fit with max_iter = epoch - 1."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 5)
    y = X[:, 0] * 20
    params = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1.0,
                  batch_size=40, max_iter=100, random_state=0)
    reg = MLPRegressor(**params)
    with pytest.raises(DivergenceError) as info:
        reg.fit(X, y)
    err = info.value
    assert isinstance(err, ValueError)
    k = _epoch_of(err)
    assert k > 1
    assert "learning_rate_init" in str(err) and "clipnorm" in str(err)
    assert reg.n_iter_ == k - 1 == len(reg.loss_curve_)
    assert np.isfinite(reg.loss_curve_).all()
    assert_all_finite(reg)
    ref = MLPRegressor(**{**params, "max_iter": k - 1}).fit(X, y)
    assert_same_model(reg, ref)
    assert np.isfinite(reg.predict(X)).all()
    reg.score(X, y)


def _divergence_cases():
    rng = np.random.RandomState(1)
    X = rng.randn(40, 5)
    yr = X[:, 0] * 2
    yc = (X[:, 0] > 0).astype(int)
    huge = X * 1e200
    return [
        ("adam, absurd X", MLPRegressor(hidden_layer_sizes=(4,), random_state=0), huge, yr, "fit"),
        ("classifier, absurd X", MLPClassifier((4,), random_state=0), huge, yc, "fit"),
        ("sgd lr=10", MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=10,
                                   random_state=0), X, yr * 10, "fit"),
        ("batch_norm", MLPRegressor(hidden_layer_sizes=(4,), batch_norm=True, solver="sgd",
                                    learning_rate_init=1e3, random_state=0), X, yr * 1e5, "fit"),
        ("dropout", MLPRegressor(hidden_layer_sizes=(4,), dropout=0.2, solver="sgd",
                                 learning_rate_init=10, random_state=0), X, yr * 10, "fit"),
        # (with restore_best_weights, sklearn's semantics instead: no error, see
        # tests/test_sklearn_behaviours.py)
        ("early_stopping", MLPRegressor(hidden_layer_sizes=(4,), early_stopping=True,
                                        restore_best_weights=False, solver="sgd",
                                        learning_rate_init=10, random_state=0),
         X, yr * 10, "fit"),
        ("float32", MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=1.0,
                                 random_state=0), (X * 10).astype(np.float32), yr * 100, "fit"),
        ("partial_fit", MLPRegressor(hidden_layer_sizes=(4,), random_state=0), huge, yr,
         "partial_fit"),
    ]


@isolated
def test_divergence_variants_raise_and_leave_usable_model():
    """adam/sgd, BN, dropout, early stopping, float32, classifier, partial_fit:
    DivergenceError naming the epoch with a hint; finite weights; predicts."""
    before = _blas_threads()
    problems = []
    for name, est, X, y, method in _divergence_cases():
        try:
            getattr(est, method)(X, y)
            problems.append(f"{name}: did not diverge")
            continue
        except DivergenceError as e:
            if not (re.search(r"epoch \d+", str(e)) and "learning_rate_init" in str(e)):
                problems.append(f"{name}: message {e}")
        except Exception as e:  # noqa: BLE001
            problems.append(f"{name}: {type(e).__name__}: {e}")
            continue
        if not all(np.isfinite(w).all() for w in _params(est)):
            problems.append(f"{name}: non-finite weights kept")
        Xp = X[:5] / (1e200 if np.abs(X).max() > 1e100 else 1)
        try:
            outs = _outputs(est, Xp)  # may be huge: the weights were exploding
        except Exception as e:  # noqa: BLE001
            problems.append(f"{name}: predict after divergence: {type(e).__name__}: {e}")
            continue
        if outs[0].shape != (5,):
            problems.append(f"{name}: predict shape {outs[0].shape}")
    assert _blas_threads() == before, "BLAS thread limit not restored after DivergenceError"
    assert not problems, "\n".join(problems)


@isolated
def test_lbfgs_absurd_targets_raise_divergence_error():
    """lbfgs whose loss is infinite (y ~ 1e300): expect DivergenceError, not a
    'fitted' model with loss_ = inf and only a ConvergenceWarning."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 5)
    reg = MLPRegressor(hidden_layer_sizes=(7,), solver="lbfgs", max_iter=50, random_state=0)
    try:
        reg.fit(X, X[:, 0] * 1e300)
    except DivergenceError as e:
        assert "lbfgs" in str(e) or re.search(r"(?i)iteration|epoch", str(e))
        assert_all_finite(reg)
        return
    pytest.fail(f"no DivergenceError: loss_={reg.loss_}, n_iter_={reg.n_iter_}")


@isolated
def test_lbfgs_absurd_inputs_raise_divergence_error():
    """lbfgs whose gradient is non-finite at the start (X ~ 1e200): expect
    DivergenceError, not an untrained model (n_iter_ = 0) with a
    ConvergenceWarning."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 5)
    clf = MLPClassifier((7,), solver="lbfgs", max_iter=50, random_state=0)
    try:
        clf.fit(X * 1e200, (X[:, 0] > 0).astype(int))
    except DivergenceError:
        assert_all_finite(clf)
        return
    pytest.fail(f"no DivergenceError: loss_={clf.loss_}, n_iter_={clf.n_iter_}")


@isolated
def test_lbfgs_large_but_sane_data_fits():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 5) * 1e3
    reg = MLPRegressor(hidden_layer_sizes=(7,), solver="lbfgs", max_iter=100,
                       random_state=0).fit(X, X[:, 0] * 1e3)
    assert np.isfinite(reg.loss_) and reg.n_iter_ > 0
    assert_all_finite(reg)


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------
class InterruptOnEpoch3(Constant):
    """A constant rate whose end_epoch raises KeyboardInterrupt on epoch 3."""

    def end_epoch(self, monitor):
        self.epochs_seen_ = getattr(self, "epochs_seen_", 0) + 1
        if self.epochs_seen_ == 3:
            raise KeyboardInterrupt


def _interrupted_fit():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 5)
    y = (X[:, 0] > 0).astype(int)
    params = dict(hidden_layer_sizes=(7,), max_iter=50, random_state=0)
    clf = MLPClassifier(learning_rate=InterruptOnEpoch3(), **params)
    try:
        with pytest.warns(UserWarning, match="Training interrupted by user"):
            clf.fit(X, y)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped fit")
    return clf, X, y, params


@isolated
def test_keyboard_interrupt_from_schedule_stops_after_epoch():
    before = _blas_threads()
    clf, X, y, params = _interrupted_fit()
    assert clf.n_iter_ == 3 < clf.max_iter
    assert len(clf.loss_curve_) == 3
    ref = MLPClassifier(**{**params, "max_iter": 3}).fit(X, y)
    assert_same_model(clf, ref)
    assert clf.predict(X).shape == (200,)
    assert np.isfinite(clf.predict_proba(X)).all()
    assert _blas_threads() == before


@isolated
def test_keyboard_interrupt_leaves_history_consistent():
    """Every history_ list has one entry per completed epoch (n_iter_)."""
    clf, *_ = _interrupted_fit()
    lens = {k: len(v) for k, v in clf.history_.items()}
    assert all(v == clf.n_iter_ for v in lens.values()), (clf.n_iter_, lens)


_SIGINT_CHILD = r'''
import json, time, warnings
import numpy as np
from fastnn import MLPClassifier
rng = np.random.RandomState(0)
X = rng.randn(2000, 20)
y = (X[:, 0] + X[:, 1] > 0).astype(int)
params = dict(hidden_layer_sizes=(64,), batch_size=32, tol=0.0, n_iter_no_change=10**6,
              random_state=0)
clf = MLPClassifier(max_iter=100000, **params)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print("READY", flush=True)
    t0 = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - t0
for w in caught:
    print("WARNING:", w.message, flush=True)
print("PREDICTION", clf.predict(X[:5]).tolist(), flush=True)
n = clf.n_iter_
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ref = MLPClassifier(max_iter=max(n, 1), **params).fit(X, y)
same = n > 0 and all(np.array_equal(a, b) for a, b in zip(clf.coefs_ + clf.intercepts_,
                                                          ref.coefs_ + ref.intercepts_))
print("RESULT", json.dumps({
    "n_iter": n, "max_iter": clf.max_iter, "seconds": seconds, "t": int(clf.t_),
    "has_loss": hasattr(clf, "loss_"), "loss_curve": len(clf.loss_curve_),
    "history": {k: len(v) for k, v in clf.history_.items()},
    "same_as_n_iter_epochs": bool(same)}), flush=True)
'''


@pytest.fixture(scope="module")
def sigint_run():
    proc = subprocess.Popen([sys.executable, "-c", _SIGINT_CHILD], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready = proc.stdout.readline()
        if ready.strip() == "READY":
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return "timeout", ready + out, err, None
    result = None
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    print("SIGINT child:", result)
    return proc.returncode, ready + out, err, result


def test_real_sigint_stops_fit_with_warning_and_usable_model(sigint_run):
    rc, out, err, result = sigint_run
    assert rc == 0, f"exit status {rc}\n{out}\n{err[-3000:]}"
    assert "WARNING: Training interrupted by user." in out, out
    assert re.search(r"PREDICTION \[[01](, [01]){4}\]", out), out
    assert result is not None and result["n_iter"] < result["max_iter"], out


def test_real_sigint_records_the_epoch_it_completed(sigint_run):
    """The epoch whose C call was running when Ctrl-C arrived is applied to the
    weights; it must also be counted (n_iter_, t_, loss_, loss_curve_,
    history_): the weights must equal those of a fit with max_iter=n_iter_."""
    rc, out, err, result = sigint_run
    assert result is not None, out + err[-3000:]
    n = result["n_iter"]
    assert result["has_loss"] and n >= 1, result
    assert result["loss_curve"] == n and all(v == n for v in result["history"].values()), result
    assert result["same_as_n_iter_epochs"], (
        f"weights differ from a {n}-epoch fit (n_iter_={n}, t_={result['t']}): the "
        "interrupted epoch was trained but not recorded")


# ---------------------------------------------------------------------------
# leaks
# ---------------------------------------------------------------------------
def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _leak_data():
    rng = np.random.RandomState(0)
    X = rng.randn(40, 4)
    return X, (X[:, 0] > 0).astype(int), X[:, 1] * 2, sp.csr_matrix(X * (X > 0))


def _leak_cycle(i, X, yc, yr, Xs):
    small = dict(hidden_layer_sizes=(6,), max_iter=4, random_state=i)
    v = i % 8
    if v == 0:
        MLPClassifier(**small).fit(X, yc).predict_proba(X)
    elif v == 1:
        MLPRegressor(batch_norm=True, batch_norm_input=True, **small).fit(X, yr).predict(X)
    elif v == 2:
        m = MLPClassifier(dropout=0.2, **small).fit(X, yc)
        m.predict_proba(X, mc_samples=3, return_std=True)
        m.predict(X)
    elif v == 3:
        MLPRegressor(**small).fit(Xs, yr).predict(Xs)
    elif v == 4:
        MLPClassifier(solver="lbfgs", **small).fit(X, yc).predict(Xs)
    elif v == 5:
        m = MLPRegressor(dropout=0.1, batch_norm="after", **small)
        m.partial_fit(X, yr).partial_fit(Xs, yr)
        m.predict(X, mc_samples=2, return_std=True)
    elif v == 6:
        m = MLPRegressor(**small)
        try:
            m.fit(X * 1e200, yr)
        except DivergenceError:
            pass
        m.predict(X)
    else:
        m = MLPClassifier(**small).fit(X, yc)
        for bad in (X[:, :3], np.where(X > 1, np.nan, X)):
            try:
                m.predict(bad)
            except ValueError:
                pass


@isolated
def test_no_memory_growth_over_500_fit_predict_cycles():
    data = _leak_data()
    warnings.simplefilter("ignore")
    for i in range(50):
        _leak_cycle(i, *data)
    gc.collect()
    before, threads_before = _rss_mb(), len(os.listdir("/proc/self/task"))
    t0 = time.perf_counter()
    for i in range(50, 500):
        _leak_cycle(i, *data)
    gc.collect()
    after, threads_after = _rss_mb(), len(os.listdir("/proc/self/task"))
    print(f"\nleaks: RSS after 50 warm-up cycles {before:.1f} MB, after 500 cycles "
          f"{after:.1f} MB (growth {after - before:+.2f} MB; {time.perf_counter() - t0:.1f}s "
          f"for 450 cycles); OS threads {threads_before} -> {threads_after}")
    assert after - before < 3.0
    assert threads_after <= threads_before


# ---------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------
_BLAS_SEEN = []


class _BlasProbe(Constant):
    """Records (in _BLAS_SEEN) the thread count of the BLAS library the core
    calls (the one behind scipy.linalg.cython_blas) at the end of every epoch.
    Other loaded BLAS libraries (numpy's) are not the core's and are left alone."""

    def end_epoch(self, monitor):
        from fastnn import _core

        _BLAS_SEEN.append([_core.blas_get_threads()])


def _concurrent_jobs():
    configs = [dict(batch_norm=True), dict(dropout=0.1), dict(solver="sgd", sparse=True),
               dict(solver="lbfgs")]
    jobs = []
    for i, cfg in enumerate(configs):
        rng = np.random.RandomState(10 + i)
        X = rng.randn(2000, 30)
        y = (X[:, :3].sum(axis=1) > 0).astype(int) + (X[:, 3] > 1)
        if cfg.pop("sparse", False):
            X = sp.csr_matrix(X * (X > 0.5))
        jobs.append((X, y, dict(hidden_layer_sizes=(64, 32), max_iter=10, random_state=i,
                                **cfg)))
    return jobs


def _in_threads(fn, n):
    out, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait()
            out[i] = fn(i)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


@isolated
def test_concurrent_fits_and_predicts_are_bitwise_sequential():
    """4 threads fitting 4 estimators at once (BN, dropout, sparse+sgd, lbfgs)
    equal the sequential fits bitwise; concurrent predicts (also on one shared
    model, MC dropout) equal sequential ones."""
    warnings.simplefilter("ignore")
    jobs = _concurrent_jobs()
    before = _blas_threads()
    t0 = time.perf_counter()
    seq = [MLPClassifier(**p).fit(X, y) for X, y, p in jobs]
    t_seq = time.perf_counter() - t0
    seq_out = [_outputs(m, X) for m, (X, _, _) in zip(seq, jobs)]
    t0 = time.perf_counter()
    conc = _in_threads(lambda i: MLPClassifier(**jobs[i][2]).fit(jobs[i][0], jobs[i][1]), 4)
    t_conc = time.perf_counter() - t0
    print(f"\nconcurrency: 4 fits sequential {t_seq:.2f}s, in 4 threads at once {t_conc:.2f}s "
          f"(core threads per fit: {fastnn._threads.n_threads()}, CPUs: {os.cpu_count()})")
    preds = _in_threads(lambda i: [_outputs(seq[i], jobs[i][0]) for _ in range(5)], 4)
    for i in range(4):
        for rep in preds[i]:
            for u, v in zip(rep, seq_out[i]):
                np.testing.assert_array_equal(u, v)
    shared = seq[1]
    ref = shared.predict_proba(jobs[1][0], mc_samples=4)
    for out in _in_threads(lambda i: shared.predict_proba(jobs[1][0], mc_samples=4), 4):
        np.testing.assert_array_equal(out, ref)
    assert _blas_threads() == before
    differ = [f"job {i} ({jobs[i][2]})" for i in range(4)
              if not all(np.array_equal(u, v) for u, v in zip(_params(seq[i]), _params(conc[i])))]
    assert not differ, f"concurrent fit differs from sequential: {differ}"


@isolated
def test_blas_held_at_one_thread_in_worker_threads():
    """fastnn holds BLAS at 1 thread during fit (src/fastnn/_threads.py) also
    when fit runs in a worker thread (threading, joblib's threading backend)."""
    rng = np.random.RandomState(0)
    X = rng.randn(100, 5)
    y = (X[:, 0] > 0).astype(int)
    _BLAS_SEEN.clear()
    _in_threads(lambda i: MLPClassifier((8,), max_iter=2, random_state=0,
                                        learning_rate=_BlasProbe()).fit(X, y), 1)
    assert _BLAS_SEEN and all(all(t == 1 for t in s) for s in _BLAS_SEEN), (
        f"BLAS threads seen during a fit in a worker thread: {_BLAS_SEEN}")


@isolated
def test_fit_in_worker_thread_equals_fit_in_main_thread():
    """Full-batch lbfgs (large GEMMs): the same model whichever thread fits it."""
    rng = np.random.RandomState(0)
    X = rng.randn(2000, 30)
    y = (X[:, :3].sum(axis=1) > 0).astype(int)
    params = dict(hidden_layer_sizes=(64, 32), solver="lbfgs", max_iter=3, random_state=0)
    main = MLPClassifier(**params).fit(X, y)
    worker = _in_threads(lambda i: MLPClassifier(**params).fit(X, y), 1)[0]
    assert_same_model(main, worker)


# ---------------------------------------------------------------------------
# thread control
# ---------------------------------------------------------------------------
@isolated
def test_thread_limit_does_not_change_the_model():
    """threadpool_limits(1) and (2) give bitwise identical models."""
    rng = np.random.RandomState(0)
    X = rng.randn(600, 40)
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    configs = [dict(), dict(batch_norm=True, dropout=0.1)]
    for cfg in configs:
        models = {}
        for n in (1, 2):
            with threadpool_limits(n):
                assert fastnn._threads.n_threads() == min(n, os.cpu_count())
                m = MLPClassifier((128, 64), max_iter=2, batch_size=300, random_state=0,
                                  **cfg).fit(X, y)
                models[n] = (m, m.predict_proba(X))
        assert_same_model(models[1][0], models[2][0])
        np.testing.assert_array_equal(models[1][1], models[2][1])


@isolated
def test_blas_held_at_one_thread_during_fit_and_restored_after():
    rng = np.random.RandomState(0)
    X = rng.randn(100, 5)
    y = (X[:, 0] > 0).astype(int)
    for limit in (None, 1):
        ctx = threadpool_limits(limit, user_api="blas") if limit else _nullcontext()
        with ctx:
            before = _blas_threads()
            clf = MLPClassifier((8,), max_iter=3, random_state=0, learning_rate=_BlasProbe())
            _BLAS_SEEN.clear()
            clf.fit(X, y)
            seen = list(_BLAS_SEEN)
            assert seen and all(all(t == 1 for t in s) for s in seen), seen
            assert _blas_threads() == before
            clf.predict_proba(sp.csr_matrix(X))
            clf.partial_fit(X, y)
            MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5).fit(X, X[:, 0])
            with pytest.raises(ValueError):
                clf.predict(X[:, :2])
            assert _blas_threads() == before


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@isolated
def test_gridsearch_n_jobs_2_matches_n_jobs_1():
    from sklearn.model_selection import GridSearchCV

    rng = np.random.RandomState(0)
    X = rng.randn(150, 6)
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    grid = {"hidden_layer_sizes": [(4,), (16,)], "alpha": [1e-4, 1.0]}
    est = MLPClassifier(max_iter=30, random_state=0)
    before = _blas_threads()
    g1 = GridSearchCV(est, grid, cv=3, n_jobs=1).fit(X, y)
    g2 = GridSearchCV(est, grid, cv=3, n_jobs=2).fit(X, y)
    assert g1.best_params_ == g2.best_params_
    np.testing.assert_array_equal(g1.cv_results_["mean_test_score"],
                                  g2.cv_results_["mean_test_score"])
    assert_same_model(g1.best_estimator_, g2.best_estimator_)
    assert _blas_threads() == before
