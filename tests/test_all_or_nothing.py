"""Nothing lost (issue 16): a call that fails leaves the model as it was,
read-only state never crashes, errors keep their promises.

The rule (README, "When a call fails"): fit, partial_fit (also after
set_params) either succeed or leave the fitted state exactly as before the
call; a DivergenceError leaves the model at the last finite epoch, an
interrupted fit at the last finished epoch. Cases that could crash or hang
run in a child process with a timeout.
"""

import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from fastnn import DivergenceError, MLPClassifier, MLPRegressor, _core
from fastnn._network import Layout
from fastnn.schedules import Constant

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore::UserWarning",
)


def run_child(source, timeout=300, env=None):
    """Run Python source in a fresh interpreter; (returncode, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


def child_result(source, timeout=300, env=None):
    """The JSON the child prints on its last line; fails on a crash."""
    rc, out, err = run_child(source, timeout, env)
    assert rc == 0, f"child exited with {rc}\n{out[-2000:]}\n{err[-4000:]}"
    return json.loads(out.strip().splitlines()[-1])


def data(n=120, p=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    y = X[:, 0] + 0.5 * X[:, 1]
    return X, y, (y > 0).astype(int)


def snapshot(est):
    """Everything about a model: its pickle (every attribute's value)."""
    return pickle.dumps(est)


def weights(est):
    return est.coefs_ + est.intercepts_


def assert_all_finite(est):
    for a in weights(est):
        assert np.isfinite(a).all()
    for name in ("bn_gamma_", "bn_beta_", "bn_moving_mean_", "bn_moving_var_"):
        for a in getattr(est, name):
            assert a is None or np.isfinite(a).all()


# ---------------------------------------------------------------------------
# all or nothing: a rejected or failed call changes nothing
# ---------------------------------------------------------------------------
class FailAtEpoch(Constant):
    """A constant rate that raises `error` when asked for epoch `epoch`'s rates."""

    def __init__(self, epoch=2, error="runtime"):
        self.epoch = epoch
        self.error = error

    def epoch_rates(self, epoch, *args):
        if epoch == self.epoch:
            raise {"runtime": RuntimeError, "memory": MemoryError}[self.error]("boom")
        return super().epoch_rates(epoch, *args)


class RateAtEpoch(Constant):
    """A constant rate except `value` for every step of epoch `epoch`."""

    def __init__(self, epoch=2, value=-1.0):
        self.epoch = epoch
        self.value = value

    def epoch_rates(self, epoch, *args):
        rates = np.array(super().epoch_rates(epoch, *args), dtype=float)
        if epoch == self.epoch:
            rates[:] = self.value
        return rates


def _regressor(**kw):
    return MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0, **kw)


def _classifier(**kw):
    return MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0, **kw)


def _failing_calls():
    """(name, make the model, call that must raise, expected exception)."""
    X, y, yc = data()
    X32 = X.astype(np.float32)
    return [
        ("warm_start fit with two outputs",
         lambda: _regressor(warm_start=True).fit(X, y), lambda m: m.fit(X, np.c_[y, y]),
         ValueError),
        ("partial_fit with two outputs",
         lambda: _regressor().fit(X, y), lambda m: m.partial_fit(X, np.c_[y, y]), ValueError),
        ("partial_fit with fewer features",
         lambda: _regressor().fit(X, y), lambda m: m.partial_fit(X[:, :3], y), ValueError),
        ("warm_start fit with NaN in X",
         lambda: _regressor(warm_start=True).fit(X, y),
         lambda m: m.fit(np.where(X > 2, np.nan, X), y), ValueError),
        ("partial_fit with an unseen class",
         lambda: _classifier().fit(X, yc), lambda m: m.partial_fit(X, yc + 5), ValueError),
        ("warm_start fit with other classes",
         lambda: _classifier(warm_start=True).fit(X, yc), lambda m: m.fit(X, yc + 5),
         ValueError),
        ("set_params(hidden_layer_sizes) + partial_fit",
         lambda: _regressor().fit(X, y),
         lambda m: m.set_params(hidden_layer_sizes=(7,)).partial_fit(X, y), ValueError),
        ("set_params(two clippings) + fit",
         lambda: _regressor().fit(X, y),
         lambda m: m.set_params(clipnorm=1.0, clipvalue=1.0).fit(X, y), ValueError),
        ("set_params(epsilon=1e-50) + fit on float32",
         lambda: _regressor().fit(X, y), lambda m: m.set_params(epsilon=1e-50).fit(X32, y),
         ValueError),
        ("fresh fit whose schedule raises in epoch 3",
         lambda: _regressor().fit(X, y),
         lambda m: m.set_params(learning_rate=FailAtEpoch(2), max_iter=5).fit(X, y),
         RuntimeError),
        ("fresh fit running out of memory in epoch 3",
         lambda: _classifier().fit(X, yc),
         lambda m: m.set_params(learning_rate=FailAtEpoch(2, "memory"), max_iter=5).fit(X, yc),
         MemoryError),
        ("warm_start fit whose schedule gives a negative rate",
         lambda: _regressor(warm_start=True).fit(X, y),
         lambda m: m.set_params(learning_rate=RateAtEpoch(1, -0.5), max_iter=5).fit(X, y),
         ValueError),
        ("partial_fit whose schedule gives NaN",
         lambda: _regressor(learning_rate=RateAtEpoch(0, np.nan)),
         lambda m: m.partial_fit(X, y), ValueError),
        ("first classifier partial_fit whose schedule gives NaN",
         lambda: _classifier(learning_rate=RateAtEpoch(0, np.nan)),
         lambda m: m.partial_fit(X, yc, classes=[0, 1]), ValueError),
    ]


@pytest.mark.parametrize("case", range(len(_failing_calls())),
                         ids=[c[0] for c in _failing_calls()])
def test_failed_call_leaves_the_fitted_state_unchanged(case):
    name, make_model, call, error = _failing_calls()[case]
    model = make_model()
    X, *_ = data()
    fitted = hasattr(model, "coefs_")
    before = snapshot(model)
    attrs = dict(vars(model))
    out = model.predict(X) if fitted else None
    with pytest.raises(error):
        call(model)
    params = set(model.get_params(deep=False))
    # The very same objects are back (set_params changed only parameters) ...
    assert set(vars(model)) == set(attrs)
    for k, v in attrs.items():
        if k not in params:
            assert vars(model)[k] is v, k
    # ... with their values unchanged, and the model still predicts the same.
    model.set_params(**pickle.loads(before).get_params(deep=False))
    assert snapshot(model) == before
    if fitted:
        np.testing.assert_array_equal(model.predict(X), out)
    else:
        with pytest.raises(NotFittedError):
            model.predict(X)


def test_failed_first_fit_leaves_the_model_unfitted():
    X, y, _ = data()
    m = MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, learning_rate=FailAtEpoch(1))
    with pytest.raises(RuntimeError):
        m.fit(X, y)
    assert not hasattr(m, "coefs_") and not hasattr(m, "_optimizer_state")
    with pytest.raises(NotFittedError):
        m.predict(X)


def test_rejected_two_output_fit_names_the_mismatch():
    X, y, _ = data()
    m = _regressor(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match=r"2 output.*fitted with 1"):
        m.fit(X, np.c_[y, y])


def test_memory_error_from_the_core_rolls_back(monkeypatch):
    """A MemoryError from the C call (scratch allocation) in the second
    epoch: the model from before the call, bit for bit."""
    X, _, yc = data()
    m = _classifier(warm_start=True).fit(X, yc)
    before = snapshot(m)
    real, calls = _core.train_epoch, []

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("fastnn: could not allocate scratch memory")
        return real(*args, **kw)

    monkeypatch.setattr(_core, "train_epoch", failing)
    with pytest.raises(MemoryError):
        m.fit(X, yc)
    monkeypatch.undo()
    assert len(calls) == 2
    assert snapshot(m) == before


def test_successful_calls_are_unchanged_by_the_copying():
    """Working on copies changes no result: partial_fit twice equals a
    two-epoch fit (bitwise), as before."""
    X, y, _ = data()
    params = dict(hidden_layer_sizes=(6,), random_state=0, shuffle=False, batch_size=30)
    a = MLPRegressor(max_iter=2, **params).fit(X, y)
    b = MLPRegressor(max_iter=1, **params)
    b.partial_fit(X, y).partial_fit(X, y)
    for u, v in zip(weights(a), weights(b)):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("call", ["partial_fit", "warm_start", "fit"])
@pytest.mark.parametrize("batch_norm", [False, "before"])
def test_arrays_a_fit_ends_with_are_never_written_again(call, batch_norm):
    """A fit ends with its weights as views of the vectors it trained (no
    final copy); the arrays a user holds from it keep their values through
    the next partial_fit, warm start or fit, which train new vectors."""
    X, y, _ = data()
    m = MLPRegressor(hidden_layer_sizes=(6, 5), batch_norm=batch_norm, random_state=0,
                     max_iter=3).fit(X, y)
    trained = m.coefs_[0].base
    assert trained is not None and m.coefs_[-1].base is trained  # views, not copies
    held = [a for name in ("coefs_", "intercepts_", "bn_gamma_", "bn_moving_var_")
            for a in getattr(m, name) if a is not None]
    values = [a.copy() for a in held]
    if call == "partial_fit":
        m.partial_fit(X, y)
    else:
        m.set_params(warm_start=call == "warm_start", random_state=1).fit(X, y)
    for a, v in zip(held, values):
        np.testing.assert_array_equal(a, v)
    assert not np.array_equal(m.coefs_[0], values[0])
    assert not np.shares_memory(m.coefs_[0], held[0])


# ---------------------------------------------------------------------------
# divergence: finiteness after the update, last finite epoch
# ---------------------------------------------------------------------------
def _epoch_of(err):
    m = re.search(r"epoch (\d+)", str(err))
    assert m, f"message does not name the epoch: {err}"
    return int(m.group(1))


@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop"])
def test_huge_learning_rate_keeps_finite_weights(solver):
    """lr=1e39 (inf in float32): the loss and gradient are finite, the
    updated weights are not; the model must keep the last finite ones."""
    X, y, _ = data()
    X32 = X.astype(np.float32)
    m = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, learning_rate_init=1e39,
                     solver=solver, random_state=0)
    with pytest.raises(DivergenceError, match="keeps the last finite weights"):
        m.fit(X32, y)
    assert_all_finite(m)
    assert np.isfinite(m.predict(X32)).all()


def test_divergence_mid_epoch_rolls_back_to_the_last_finite_epoch():
    """Several steps per epoch: the model after DivergenceError is exactly a
    fit with max_iter = (diverging epoch - 1), optimizer state included."""
    X, y, _ = data(n=40)
    params = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1.0,
                  batch_size=10, random_state=0, shuffle=False)
    m = MLPRegressor(max_iter=100, **params)
    with pytest.raises(DivergenceError) as info:
        m.fit(X, y * 20)
    k = _epoch_of(info.value)
    assert k > 1 and m.n_iter_ == k - 1 == len(m.loss_curve_)
    ref = MLPRegressor(max_iter=k - 1, **params).fit(X, y * 20)
    for u, v in zip(weights(m), weights(ref)):
        np.testing.assert_array_equal(u, v)
    for key in ("m", "scalars"):
        np.testing.assert_array_equal(m._optimizer_state[key], ref._optimizer_state[key])
    assert m.t_ == ref.t_


def test_diverging_partial_fit_restores_the_optimizer_state():
    """Eleven steps are applied before the twelfth meets absurd rows: the
    weights and the optimizer state are those from before the call."""
    X, y, _ = data()
    m = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", batch_size=10, shuffle=False,
                     random_state=0).fit(X, y)
    state = {k: v.copy() for k, v in m._optimizer_state.items()}
    coefs = [c.copy() for c in m.coefs_]
    absurd = X.copy()
    absurd[-5:] *= 1e200
    with pytest.raises(DivergenceError):
        m.partial_fit(absurd, y)
    for k, v in state.items():
        np.testing.assert_array_equal(m._optimizer_state[k], v)
    for u, v in zip(m.coefs_, coefs):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("solver, m_init", [("adagrad", 0.25), ("adam", 0.0), ("sgd", 0.0)])
def test_first_epoch_divergence_leaves_the_fresh_optimizer_state(solver, m_init):
    """A fit whose first epoch diverges after steps were applied: the moments
    are refilled with their initial values (not copied before the epoch),
    v is kept only by the solvers that read it, and the weights are the
    initial ones."""
    X, y, _ = data()
    absurd = X.copy()
    absurd[-5:] *= 1e200
    params = dict(hidden_layer_sizes=(8,), solver=solver, batch_size=10, shuffle=False,
                  random_state=0, initial_accumulator_value=m_init if m_init else 0.1)
    m = MLPRegressor(**params)
    with pytest.raises(DivergenceError):
        m.fit(absurd, y)
    opt = m._optimizer_state
    n_params = sum(a.size for a in m.coefs_ + m.intercepts_)
    assert opt["scalars"][0] == 0 and m.t_ == 0
    assert opt["m"].shape == (n_params,) and np.all(opt["m"] == m_init)
    assert opt["v"].shape == ((n_params,) if solver == "adam" else (0,))
    assert not opt["v"].any()
    fresh = MLPRegressor(**dict(params, learning_rate_init=1e-300, max_iter=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh.fit(X[:10], y[:10])
    for u, v in zip(weights(m), weights(fresh)):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("value", [np.nan, np.inf, -1e-3])
def test_schedule_rates_are_checked_naming_the_epoch(value):
    X, y, _ = data()
    m = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                     learning_rate=RateAtEpoch(2, value))
    with pytest.raises(ValueError, match=r"epoch 3.*finite and >= 0"):
        m.fit(X, y)
    assert not hasattr(m, "coefs_")


@pytest.mark.parametrize("name, extra", [("epsilon", {}),
                                         ("batch_norm_epsilon", {"batch_norm": True})])
def test_stability_terms_that_vanish_in_float32_are_rejected(name, extra):
    X, y, _ = data()
    m = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                     **{name: 1e-50}, **extra)
    with pytest.raises(ValueError, match=name) as info:
        m.fit(X.astype(np.float32), y)
    assert "input data" not in str(info.value)
    m.fit(X, y)  # 1e-50 is a normal float64
    assert_all_finite(m)


# ---------------------------------------------------------------------------
# non-finite weights never give plausible predictions
# ---------------------------------------------------------------------------
def _corrupt(m, name):
    if name == "coefs_[0] NaN":
        m.coefs_[0][:] = np.nan
    elif name == "coefs_[1] inf":
        m.coefs_[1][0, 0] = np.inf
    elif name == "intercepts_[0] NaN":
        m.intercepts_[0][1] = np.nan
    elif name == "bn_moving_var_[1] negative":
        m.bn_moving_var_[1][:] = -5.0


@pytest.mark.parametrize("est", ["classifier", "regressor"])
@pytest.mark.parametrize("name", ["coefs_[0] NaN", "coefs_[1] inf", "intercepts_[0] NaN",
                                  "bn_moving_var_[1] negative"])
def test_non_finite_weights_raise_naming_the_attribute(est, name):
    X, y, yc = data()
    cls = MLPClassifier if est == "classifier" else MLPRegressor
    m = cls(hidden_layer_sizes=(6,), max_iter=3, random_state=0, batch_norm="after",
            dropout=0.1).fit(X, yc if est == "classifier" else y)
    _corrupt(m, name)
    attr = name.split()[0]
    calls = [lambda: m.predict(X)]
    if est == "classifier":
        calls += [lambda: m.predict_proba(X), lambda: m.predict_proba(X, mc_samples=2)]
    else:
        calls += [lambda: m.predict(X, mc_samples=2, return_std=True)]
    for call in calls:
        with pytest.raises(ValueError, match=re.escape(attr)):
            call()
    with pytest.raises(ValueError, match=re.escape(attr)):
        m.partial_fit(X, yc if est == "classifier" else y)


def test_core_relu_propagates_nan():
    """Below the Python check, the C forward pass itself never maps a NaN
    weight to a finite output (relu(NaN) used to be 0)."""
    layout = Layout([3, 4, 1])
    net = layout.network(np.float64, activation=[_core.ACTIVATIONS["relu"],
                                                 _core.ACTIVATIONS["identity"]],
                         loss=_core.LOSSES["squared_error"])
    params = np.random.RandomState(0).randn(layout.n_params)
    X = np.ones((5, 3))
    assert np.isfinite(_core.predict(net, params, np.empty(0), X)).all()
    layout.kernel(params, 0)[:] = np.nan
    assert np.isnan(_core.predict(net, params, np.empty(0), X)).all()


# ---------------------------------------------------------------------------
# corrupted fitted state: ValueErrors that name the attribute
# ---------------------------------------------------------------------------
_CORRUPTIONS = [
    ("del", "coefs_"), ("del", "intercepts_"), ("del", "bn_gamma_"), ("del", "out_activation_"),
    ("del", "n_outputs_"), ("del", "n_layers_"), ("del", "_label_binarizer"),
    ("set", "coefs_", "None"), ("set", "coefs_", "[]"), ("set", "intercepts_", "[1, 2]"),
    ("set", "coefs_", "[c.astype(np.int64) for c in m.coefs_]"),
    ("set", "coefs_", "[c.astype(np.float32) for c in m.coefs_[:1]] + m.coefs_[1:]"),
    ("set", "out_activation_", "'bogus'"), ("set", "n_outputs_", "7"),
    ("set", "n_layers_", "9"), ("set", "n_features_in_", "3"),
    ("set", "bn_moving_var_", "[None]"),
    ("del", "t_"), ("del", "loss_curve_"), ("del", "history_"),
    ("set", "_optimizer_state", "{'m': m._optimizer_state['m']}"),
    ("set", "_optimizer_state", "dict(m._optimizer_state, scalars=np.zeros(5))"),
    ("set", "_optimizer_state", "dict(m._optimizer_state, m=None)"),
    ("del", "_epoch"),
]

_CORRUPTED_CHILD = r'''
import json, warnings
import numpy as np
from fastnn import MLPClassifier
warnings.simplefilter("ignore")
rng = np.random.RandomState(0)
X = rng.randn(60, 5)
y = (X[:, 0] > 0).astype(int)
results = []
for case in CASES:
    m = MLPClassifier(hidden_layer_sizes=(6,), max_iter=2, random_state=0).fit(X, y)
    if case[0] == "del":
        delattr(m, case[1])
    else:
        setattr(m, case[1], eval(case[2]))
    for call in ("predict", "partial_fit"):
        try:
            m.predict(X) if call == "predict" else m.partial_fit(X, y)
            results.append([case, call, None, ""])
        except Exception as e:
            results.append([case, call, type(e).__name__, str(e)])
print(json.dumps(results))
'''


def test_corrupted_fitted_state_gives_valueerrors_naming_the_attribute():
    results = child_result(_CORRUPTED_CHILD.replace("CASES", repr(_CORRUPTIONS)))
    problems = []
    training_only = {"t_", "loss_curve_", "history_", "_optimizer_state", "_epoch"}
    for case, call, error, message in results:
        attr = case[1]
        if case == ["del", "coefs_"] and call == "partial_fit":
            continue  # an unfitted model: partial_fit starts afresh (as sklearn)
        if case in (["del", "n_outputs_"], ["del", "bn_gamma_"]) and call == "partial_fit":
            # Trains, as from weights set by hand (scikit-learn's attributes
            # only): fastnn's own attributes and the output count are made
            # from the weights and y, and checked, before C runs.
            continue
        if call == "predict" and attr in training_only:
            if error is not None:
                problems.append(f"{case} {call}: predict needs no {attr}: {error}: {message}")
            continue
        if error != "ValueError" or attr not in message:
            problems.append(f"{case} {call}: {error}: {message}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# read-only state and inputs
# ---------------------------------------------------------------------------
_READ_ONLY_CHILD = r'''
import json, pickle, tempfile, os, warnings
import joblib
import numpy as np
from fastnn import MLPClassifier, MLPRegressor
warnings.simplefilter("ignore")
rng = np.random.RandomState(0)
X = rng.randn(80, 5)
y = (X[:, 0] > 0).astype(int)
out = {}
for solver in ("adam", "sgd", "nadam"):
    m = MLPClassifier((16,), max_iter=3, solver=solver, batch_norm="after",
                      random_state=0).fit(X, y)
    path = os.path.join(tempfile.mkdtemp(), "m.joblib")
    joblib.dump(m, path)
    with open(path, "rb") as f:
        file_bytes = f.read()
    ro = joblib.load(path, mmap_mode="r")
    ro.partial_fit(X, y)
    ro.set_params(warm_start=True).fit(X, y)
    ref = pickle.loads(pickle.dumps(m))
    ref.partial_fit(X, y)
    ref.set_params(warm_start=True).fit(X, y)
    with open(path, "rb") as f:
        unchanged = f.read() == file_bytes
    out["mmap_" + solver] = [unchanged, bool(np.array_equal(ro.predict_proba(X),
                                                            ref.predict_proba(X)))]
    buffers = []
    data = pickle.dumps(m, protocol=5, buffer_callback=buffers.append)
    raw = [bytes(b.raw()) for b in buffers]
    copies = [bytes(r) for r in raw]
    oob = pickle.loads(data, buffers=raw)
    oob.partial_fit(X, y)
    oob.set_params(warm_start=True).fit(X, y)
    out["oob_" + solver] = [raw == copies, bool(np.array_equal(oob.predict_proba(X),
                                                               ref.predict_proba(X)))]
print(json.dumps(out))
'''


def test_read_only_fitted_state_is_copied_not_written():
    """joblib mmap_mode='r' and protocol-5 out-of-band read-only buffers:
    partial_fit and warm_start fit train on copies (no crash, the file and
    the buffers are unchanged) and give the same model as a writeable copy."""
    out = child_result(_READ_ONLY_CHILD)
    assert out and all(v == [True, True] for v in out.values()), out


def test_core_refuses_to_write_read_only_buffers():
    layout = Layout([3, 4, 1])
    net = layout.network(np.float64, activation=[3, 0], loss=_core.LOSSES["squared_error"])
    X, y = np.ones((4, 3)), np.ones((4, 1))
    fresh = lambda: np.zeros(layout.n_params)  # noqa: E731
    args = dict(params=fresh(), stats=np.empty(0), opt_m=fresh(), opt_v=fresh(),
                opt_scalars=np.array([0.0, 1.0]), grad_norm_sum=np.zeros(2))
    for name in ("params", "opt_m", "opt_v", "opt_scalars", "grad_norm_sum"):
        a = {k: v.copy() for k, v in args.items()}
        a[name].flags.writeable = False
        with pytest.raises(ValueError, match=f"{name} is read-only"):
            _core.train_epoch(net, a["params"], a["stats"], a["opt_m"], a["opt_v"],
                              a["opt_scalars"], X, y, None, np.arange(4), 2, np.ones(2), 0,
                              a["grad_norm_sum"])
    grad = fresh()
    grad.flags.writeable = False
    with pytest.raises(ValueError, match="grad is read-only"):
        _core.loss_grad(net, fresh(), X, y, None, grad)


@pytest.mark.parametrize("bad_row", [-1, 4, 2**40])
def test_core_refuses_row_indices_outside_x(bad_row):
    """Every index of the epoch's order is checked before C reads a row,
    the last as well as the first; nothing is written."""
    layout = Layout([3, 4, 1])
    net = layout.network(np.float64, activation=[3, 0], loss=_core.LOSSES["squared_error"])
    X, y = np.ones((4, 3)), np.ones((4, 1))
    params = np.linspace(-1, 1, layout.n_params)
    before = params.copy()
    for where in (0, 3):
        order = np.arange(4)
        order[where] = bad_row
        with pytest.raises(ValueError, match="order holds row indices outside X"):
            _core.train_epoch(net, params, np.empty(0), np.zeros_like(params),
                              np.zeros_like(params), np.array([0.0, 1.0]), X, y, None, order,
                              2, np.ones(2), 0, np.zeros(2))
        np.testing.assert_array_equal(params, before)


def test_read_only_inputs_are_accepted():
    X, y, yc = data()
    sw = np.linspace(0.5, 1.5, len(y))
    for a in (X, y, yc, sw):
        a.flags.writeable = False
    m = MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit(X, y, sw)
    m.partial_fit(X, y, sample_weight=sw)
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit(X, yc).predict(X)
    assert np.isfinite(m.predict(X)).all()


# ---------------------------------------------------------------------------
# inputs are never modified
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_csr_with_mixed_index_dtypes_comes_back_unchanged(solver):
    X, y, yc = data()
    Xs = sp.csr_matrix(X * (X > 0))
    Xs.indices = Xs.indices.astype(np.int32)
    Xs.indptr = Xs.indptr.astype(np.int64)
    copies = [Xs.data.copy(), Xs.indices.copy(), Xs.indptr.copy()]
    ids = [id(Xs.data), id(Xs.indices), id(Xs.indptr)]
    m = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, solver=solver, random_state=0)
    m.fit(Xs, yc)
    if solver != "lbfgs":
        m.partial_fit(Xs, yc)
    m.predict_proba(Xs)
    MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(
        Xs.astype(np.float32), y)
    assert [id(Xs.data), id(Xs.indices), id(Xs.indptr)] == ids
    assert Xs.indices.dtype == np.int32 and Xs.indptr.dtype == np.int64
    for now, then in zip((Xs.data, Xs.indices, Xs.indptr), copies):
        np.testing.assert_array_equal(now, then)


def test_dense_inputs_come_back_unchanged():
    X, y, yc = data()
    sw = np.linspace(0.5, 1.5, len(y))
    for Xin in (X, np.asfortranarray(X), X.astype(np.float32)):
        for est, target in ((MLPRegressor, y), (MLPClassifier, yc)):
            copies = [a.copy() for a in (Xin, target, sw)]
            m = est(hidden_layer_sizes=(5,), max_iter=2, batch_norm=True, dropout=0.1,
                    random_state=0).fit(Xin, target, sw)
            m.partial_fit(Xin, target, sample_weight=sw)
            m.predict(Xin)
            for now, then in zip((Xin, target, sw), copies):
                np.testing.assert_array_equal(now, then)


# ---------------------------------------------------------------------------
# memory on wide sparse input
# ---------------------------------------------------------------------------
_WIDE_CHILD = r'''
import json, warnings
import numpy as np
import scipy.sparse as sp
from fastnn import MLPClassifier, _core
warnings.simplefilter("ignore")
p = 300_000
rng = np.random.RandomState(0)
def wide(n, nnz):
    rows, cols = rng.randint(0, n, nnz), rng.randint(0, p, nnz)
    return sp.csr_matrix((rng.rand(nnz).astype(np.float32), (rows, cols)), shape=(n, p))
Xfit = wide(40, 400)
m = MLPClassifier((16,), max_iter=1, batch_size=4, random_state=0).fit(Xfit, np.arange(40) % 2)
X = wide(2000, 40_000)
def rss_mb(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field)) / 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # peak RSS (VmHWM) := current RSS
before = rss_mb("VmRSS:")
proba = m.predict_proba(X)
grown = rss_mb("VmHWM:") - before
print(json.dumps({"grown_mb": grown, "threads": _core.max_threads(),
                  "finite": bool(np.isfinite(proba).all()), "shape": list(proba.shape)}))
'''


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK),
                    reason="needs Linux's resettable peak RSS (/proc/self/clear_refs)")
def test_predict_on_wide_sparse_input_has_bounded_scratch_memory():
    """2000 x 300,000 CSR (40k non-zeros), 4 threads: 256-row chunks would
    densify ~300 MB per thread; scratch is bounded by bytes instead."""
    out = child_result(_WIDE_CHILD, env={"OMP_NUM_THREADS": "4"})
    print("wide sparse predict:", out)
    assert out["finite"] and out["shape"] == [2000, 2]
    assert out["grown_mb"] < 250, out


def test_bounded_chunks_predict_the_same():
    """The byte bound only changes the chunking, not the predictions."""
    rng = np.random.RandomState(0)
    X = sp.random(50, 20_000, density=1e-3, format="csr", random_state=rng)
    m = MLPRegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(X, rng.randn(50))
    layout = m._layout()
    params, stats = m._pack(layout, np.float64)
    net = layout.network(np.float64, **m._network_config(["relu"]))
    Xc = m._as_core_X(X, np.float64)
    np.testing.assert_allclose(_core.predict(net, params, stats, Xc),
                               _core.predict(net, params, stats, Xc, chunk_rows=256),
                               rtol=1e-12)


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------
_SECOND_CTRL_C_CHILD = r'''
import json, os, signal, threading, time, warnings
import numpy as np
from fastnn import MLPClassifier
from fastnn.schedules import Constant

class SignalTwice(Constant):
    """Constant rate; when armed, asking for epoch 1's rates (just before its
    C call) starts a thread that sends this process two SIGINTs."""
    def __init__(self, armed=False):
        self.armed = armed

    def epoch_rates(self, epoch, *args):
        if self.armed and epoch == 0:
            def send():
                for _ in range(2):
                    time.sleep(0.2)
                    os.kill(os.getpid(), signal.SIGINT)
            threading.Thread(target=send, daemon=True).start()
        return super().epoch_rates(epoch, *args)

rng = np.random.RandomState(0)
X = rng.randn(200_000, 20)
y = (X[:, 0] > 0).astype(int)
clf = MLPClassifier((256, 256), batch_size=1, max_iter=1, learning_rate=SignalTwice(),
                    random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf.fit(X[:100], y[:100])  # one short epoch: the last finished one
before = [a.copy() for a in clf.coefs_ + clf.intercepts_]
clf.set_params(warm_start=True, max_iter=2, learning_rate=SignalTwice(armed=True))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    clf.fit(X, y)  # 200,000 steps per epoch
proba = clf.predict_proba(X[:50])
print(json.dumps({
    "n_iter": clf.n_iter_, "t": int(clf.t_), "loss_curve": len(clf.loss_curve_),
    "weights_unchanged": all(np.array_equal(a, b)
                             for a, b in zip(clf.coefs_ + clf.intercepts_, before)),
    # A fit (warm or not) starts a fresh optimizer, as scikit-learn does.
    "fresh_optimizer": bool(clf._optimizer_state["scalars"][0] == 0
                            and not clf._optimizer_state["m"].any()
                            and not clf._optimizer_state["v"].any()),
    "finite": bool(np.isfinite(proba).all()),
    "warnings": [str(w.message) for w in caught]}))
'''


def test_second_ctrl_c_stops_inside_the_epoch():
    """Two Ctrl-C during a 200,000-step epoch's C call: fit returns with the
    warning before that epoch ends, and the model is exactly at the last
    finished epoch (weights, optimizer state, history), and predicts."""
    out = child_result(_SECOND_CTRL_C_CHILD, timeout=600)
    assert "Training interrupted by user." in out["warnings"], out
    assert out["n_iter"] == 0 and out["t"] == 100 and out["loss_curve"] == 1, out
    assert out["weights_unchanged"] and out["fresh_optimizer"], out
    assert out["finite"], out
