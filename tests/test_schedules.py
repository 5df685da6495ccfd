"""Tests for fastnn.schedules: each schedule against its formula, scikit-learn,
Keras 3 and Géron's OneCycleScheduler."""

import math
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.base import BaseEstimator, clone
from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

from fastnn.schedules import (
    SCHEDULE_NAMES,
    Adaptive,
    Constant,
    CosineDecay,
    Exponential,
    InvScaling,
    LearningRateSchedule,
    OneCycle,
    PiecewiseConstant,
    PolynomialDecay,
    Power,
    ReduceOnPlateau,
    make_schedule,
)

try:  # slow import: once per module
    import keras
except Exception:  # pragma: no cover - depends on the environment
    keras = None

LR0 = 0.01


def run(sched, lr0=LR0, n_epochs=10, steps_per_epoch=7, n_samples=50,
        epochs=None, monitors=None):
    """Drive ``sched`` through the estimator protocol; return the per-step rates."""
    sched.start(lr0, n_epochs=n_epochs, steps_per_epoch=steps_per_epoch,
                n_samples=n_samples)
    out, step, seen = [], 0, 0
    for epoch in range(n_epochs if epochs is None else epochs):
        lrs = sched.epoch_rates(epoch, step, steps_per_epoch, seen)
        assert lrs.dtype == np.float64 and lrs.shape == (steps_per_epoch,)
        if steps_per_epoch:
            assert sched.current_lr() == lrs[-1]
        out.append(lrs)
        step += steps_per_epoch
        seen += n_samples
        sched.end_epoch(monitors[epoch] if monitors is not None else 1.0)
    return np.concatenate(out)


# ---------------------------------------------------------------- Constant


def test_constant():
    lrs = run(Constant(), lr0=0.123)
    assert np.all(lrs == 0.123)


# --------------------------------------------------------------- InvScaling


@given(power_t=st.floats(0, 2), n_samples=st.integers(1, 5000),
       lr0=st.floats(1e-5, 1.0))
@settings(max_examples=50, deadline=None)
def test_invscaling_matches_formula_and_sklearn(power_t, n_samples, lr0):
    n_epochs, spe = 6, 3
    lrs = run(InvScaling(power_t=power_t), lr0=lr0, n_epochs=n_epochs,
              steps_per_epoch=spe, n_samples=n_samples).reshape(n_epochs, spe)
    assert np.all(lrs == lrs[:, :1])  # constant within an epoch
    expected = [lr0 / (e * n_samples + 1) ** power_t for e in range(n_epochs)]
    np.testing.assert_allclose(lrs[:, 0], expected, rtol=1e-14)
    assert lrs[0, 0] == lr0
    # bit for bit the rate scikit-learn's optimizer uses in each epoch
    opt = SGDOptimizer([np.zeros(1)], learning_rate_init=lr0,
                       lr_schedule="invscaling", power_t=power_t)
    t = 0
    for e in range(n_epochs):
        assert lrs[e, 0] == opt.learning_rate
        t += n_samples
        opt.iteration_ends(t)


def test_invscaling_uses_samples_seen_argument():
    s = InvScaling(power_t=1.0).start(1.0, 5, 2, 10)
    np.testing.assert_array_equal(s.epoch_rates(3, 6, 2, 99), [0.01, 0.01])


# ----------------------------------------------------------------- Adaptive


@pytest.mark.parametrize("lr0", [1e-3, 0.1, 3e-6, 1e-6, 5e-7])
def test_adaptive_matches_sklearn_trigger_stopping(lr0, capsys):
    sched = Adaptive().start(lr0, 100, 4, 40)
    opt = SGDOptimizer([np.zeros(1)], learning_rate_init=lr0,
                       lr_schedule="adaptive")
    msg = "Training loss did not improve more than tol=0.000100 for 10 consecutive epochs."
    for epoch in range(30):
        lrs = sched.epoch_rates(epoch, 4 * epoch, 4, 40 * epoch)
        assert np.all(lrs == opt.learning_rate)
        if epoch % 3 == 2:
            ours = sched.on_no_improvement(True, msg)
            out_ours = capsys.readouterr().out
            theirs = opt.trigger_stopping(msg, True)
            out_theirs = capsys.readouterr().out
            assert ours == theirs
            assert out_ours == out_theirs
            if ours:
                assert "Learning rate too small. Stopping." in out_ours
                return
    pytest.fail("Adaptive never stopped")


def test_adaptive_factor_and_min_lr():
    s = Adaptive(factor=0.5, min_lr=0.2).start(1.0, 10, 1, 1)
    seq = []
    for epoch in range(4):
        seq.append(s.epoch_rates(epoch, epoch, 1, epoch)[0])
        if s.on_no_improvement(False):
            break
    assert seq == [1.0, 0.5, 0.25, 0.125]
    assert s.current_lr() == 0.125


# ---------------------------------------------------- Power and Exponential


@given(s=st.one_of(st.none(), st.floats(0.5, 1e4)), c=st.floats(0, 3),
       lr0=st.floats(1e-5, 1.0), spe=st.integers(1, 20))
@settings(max_examples=50, deadline=None)
def test_power_formula(s, c, lr0, spe):
    lrs = run(Power(s=s, c=c), lr0=lr0, n_epochs=5, steps_per_epoch=spe)
    s_eff = 20 * spe if s is None else s
    expected = [lr0 / (1 + t / s_eff) ** c for t in range(5 * spe)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-13)
    assert lrs[0] == lr0


@given(s=st.one_of(st.none(), st.floats(0.5, 1e4)),
       lr0=st.floats(1e-5, 1.0), spe=st.integers(1, 20))
@settings(max_examples=50, deadline=None)
def test_exponential_formula(s, lr0, spe):
    lrs = run(Exponential(s=s), lr0=lr0, n_epochs=5, steps_per_epoch=spe)
    s_eff = 20 * spe if s is None else s
    expected = [lr0 * 0.1 ** (t / s_eff) for t in range(5 * spe)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-13)


def test_power_exponential_default_s_is_20_epochs():
    p = Power().start(1.0, 100, 30, 3000)
    assert p.s_ == 600
    assert p.epoch_rates(20, 600, 1, 0)[0] == pytest.approx(0.5)
    e = Exponential().start(1.0, 100, 30, 3000)
    assert e.s_ == 600
    assert e.epoch_rates(20, 600, 1, 0)[0] == pytest.approx(0.1)


@pytest.mark.parametrize("make", [lambda: Power(s=13, c=2),
                                  lambda: Exponential(s=9),
                                  lambda: OneCycle(),
                                  lambda: Constant()])
def test_step_schedules_do_not_depend_on_epoch_split(make):
    whole = make().start(0.05, 6, 10, 100).epoch_rates(0, 0, 60, 0)
    pieces = run(make(), lr0=0.05, n_epochs=6, steps_per_epoch=10,
                 n_samples=100)
    np.testing.assert_array_equal(whole, pieces)


@pytest.mark.keras
@pytest.mark.parametrize("s", [1, 7.5, 100])
def test_power_matches_keras_inverse_time_decay(s):
    keras = pytest.importorskip("keras")
    lrs = run(Power(s=s, c=1), lr0=0.02, n_epochs=10, steps_per_epoch=13)
    ref = keras.optimizers.schedules.InverseTimeDecay(0.02, decay_steps=s,
                                                      decay_rate=1)
    theirs = np.array([float(ref(t)) for t in range(lrs.size)])
    np.testing.assert_allclose(lrs, theirs, rtol=2e-6)


@pytest.mark.keras
@pytest.mark.parametrize("s", [1, 7.5, 100])
def test_exponential_matches_keras_exponential_decay(s):
    keras = pytest.importorskip("keras")
    lrs = run(Exponential(s=s), lr0=0.02, n_epochs=10, steps_per_epoch=13)
    ref = keras.optimizers.schedules.ExponentialDecay(0.02, decay_steps=s,
                                                      decay_rate=0.1)
    theirs = np.array([float(ref(t)) for t in range(lrs.size)])
    mask = theirs > 1e-30  # float32 underflow
    np.testing.assert_allclose(lrs[mask], theirs[mask], rtol=1e-5)


# --------------------------------------------------------- PiecewiseConstant


def piecewise_reference(boundaries, values, epoch):
    for b, v in zip(boundaries, values):
        if epoch < b:
            return v
    return values[-1]


@given(data=st.data(), spe=st.integers(1, 5), n_epochs=st.integers(1, 30))
@settings(max_examples=50, deadline=None)
def test_piecewise_formula(data, spe, n_epochs):
    bounds = sorted(data.draw(st.sets(st.integers(0, 40), min_size=1,
                                      max_size=5)))
    values = data.draw(st.lists(st.floats(1e-6, 1.0), min_size=len(bounds) + 1,
                                max_size=len(bounds) + 1))
    lrs = run(PiecewiseConstant(bounds, values), n_epochs=n_epochs,
              steps_per_epoch=spe).reshape(n_epochs, spe)
    for e in range(n_epochs):
        assert np.all(lrs[e] == piecewise_reference(bounds, values, e))


@pytest.mark.parametrize("n_epochs", [1, 2, 3, 4, 10, 200])
def test_piecewise_default(n_epochs):
    lrs = run(PiecewiseConstant(), lr0=0.5, n_epochs=n_epochs,
              steps_per_epoch=2).reshape(n_epochs, 2)[:, 0]
    b1 = max(1, n_epochs // 2)
    b2 = max(b1 + 1, 3 * n_epochs // 4)
    expected = [piecewise_reference([b1, b2], [0.5, 0.05, 0.005], e)
                for e in range(n_epochs)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)
    if n_epochs == 200:
        assert lrs[99] == 0.5 and lrs[100] == 0.05
        assert lrs[149] == 0.05 and lrs[150] == 0.005


@pytest.mark.keras
def test_piecewise_matches_keras_piecewise_constant_decay():
    keras = pytest.importorskip("keras")
    bounds, values, spe, n_epochs = [2, 5, 9], [0.1, 0.03, 0.01, 0.002], 7, 12
    lrs = run(PiecewiseConstant(bounds, values), n_epochs=n_epochs,
              steps_per_epoch=spe)
    ref = keras.optimizers.schedules.PiecewiseConstantDecay(
        [b * spe - 1 for b in bounds], values)
    theirs = np.array([float(ref(t)) for t in range(n_epochs * spe)])
    np.testing.assert_allclose(lrs, theirs, rtol=1e-6)


@pytest.mark.parametrize("bounds, values", [
    ([5, 5], [1, 2, 3]),
    ([5, 3], [1, 2, 3]),
    ([5], [1, 2, 3]),
    ([5, 6], [1, 2]),
    ([5], None),
    (None, [1.0]),
    ([5], [1.0, -1.0]),
    ([[1, 2]], [1.0, 2.0]),
    (["a"], [1.0, 2.0]),
    ([np.nan], [1.0, 2.0]),
])
def test_piecewise_bad_input(bounds, values):
    s = PiecewiseConstant(bounds, values)  # no validation in __init__
    with pytest.raises(ValueError):
        s.start(0.1, 10, 1, 10)


# ----------------------------------------------------------- ReduceOnPlateau


def plateau_reference(lr0, monitors, factor, patience, min_delta, min_lr,
                      cooldown):
    """Independent transcription of Keras 3 ReduceLROnPlateau(mode='min')."""
    lr, best, wait, cool, out = lr0, None, 0, 0, []
    for m in monitors:
        out.append(lr)
        if cool > 0:
            cool -= 1
            wait = 0
        if best is None or m - (-min_delta) < best:
            best, wait = m, 0
        elif not cool > 0:
            wait += 1
            if wait >= patience and lr > min_lr:
                lr = max(lr * factor, min_lr)
                cool, wait = cooldown, 0
    return out


plateau_params = dict(
    monitors=st.lists(st.one_of(st.sampled_from([1.0, 0.9, 0.5, 0.45]),
                                st.floats(0, 2)), min_size=1, max_size=30),
    factor=st.sampled_from([0.1, 0.2, 0.5, 0.9]),
    patience=st.integers(0, 4),
    min_delta=st.sampled_from([0.0, 0.01, 0.1]),
    min_lr=st.sampled_from([0.0, 1e-4, 2e-3]),
    cooldown=st.integers(0, 2),
)


@given(**plateau_params)
@settings(max_examples=100, deadline=None)
def test_plateau_matches_reference(monitors, factor, patience, min_delta,
                                   min_lr, cooldown):
    sched = ReduceOnPlateau(factor=factor, patience=patience,
                            min_delta=min_delta, min_lr=min_lr,
                            cooldown=cooldown)
    lrs = run(sched, lr0=0.01, n_epochs=len(monitors), steps_per_epoch=2,
              monitors=monitors).reshape(len(monitors), 2)
    assert np.all(lrs[:, 0] == lrs[:, 1])
    assert list(lrs[:, 0]) == plateau_reference(
        0.01, monitors, factor, patience, min_delta, min_lr, cooldown)


def test_plateau_defaults_geron():
    # Géron: factor 0.5, patience 5
    monitors = [1.0] + [2.0] * 12
    lrs = run(ReduceOnPlateau(), lr0=1.0, n_epochs=13, steps_per_epoch=1,
              monitors=monitors)
    # epochs 1..5 do not improve -> reduced after epoch 5, again after 10
    assert list(lrs) == [1.0] * 6 + [0.5] * 5 + [0.25] * 2


# Keras compares the monitor in float32 (ops.less on Python floats); fastnn in
# float64. On a grid of values exact in float32 (sums included) they must agree.
keras_plateau_params = dict(
    plateau_params,
    monitors=st.lists(st.integers(0, 64).map(lambda k: k / 32), min_size=1,
                      max_size=30),
    min_delta=st.sampled_from([0.0, 0.0625, 0.25]),
)


@pytest.mark.keras
@given(**keras_plateau_params)
@settings(max_examples=60, deadline=None)
def test_plateau_matches_keras_callback(monitors, factor, patience, min_delta,
                                        min_lr, cooldown):
    keras = pytest.importorskip("keras")

    class FakeOptimizer:
        learning_rate = 0.01

    class FakeModel:
        optimizer = FakeOptimizer()

    cb = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=factor, patience=patience, mode="min",
        min_delta=min_delta, cooldown=cooldown, min_lr=min_lr)
    model = FakeModel()
    cb.set_model(model)
    cb.on_train_begin()
    theirs = []
    for epoch, m in enumerate(monitors):
        theirs.append(float(model.optimizer.learning_rate))
        cb.on_epoch_end(epoch, {"val_loss": m})
    sched = ReduceOnPlateau(factor=factor, patience=patience,
                            min_delta=min_delta, min_lr=min_lr,
                            cooldown=cooldown)
    ours = run(sched, lr0=0.01, n_epochs=len(monitors), steps_per_epoch=1,
               monitors=monitors)
    assert list(ours) == theirs


# ------------------------------------------------------------------ OneCycle


class GeronOneCycleScheduler:
    """Géron's OneCycleScheduler (HOML 3rd ed., ch. 11), minus Keras."""

    def __init__(self, iterations, max_lr=1e-3, start_lr=None,
                 last_iterations=None, last_lr=None):
        self.iterations = iterations
        self.max_lr = max_lr
        self.start_lr = start_lr or max_lr / 10
        self.last_iterations = last_iterations or iterations // 10 + 1
        self.half_iteration = (iterations - self.last_iterations) // 2
        self.last_lr = last_lr or self.start_lr / 1000
        self.iteration = 0

    def _interpolate(self, iter1, iter2, lr1, lr2):
        return (lr2 - lr1) * (self.iteration - iter1) / (iter2 - iter1) + lr1

    def on_batch_begin(self, batch, logs):
        if self.iteration < self.half_iteration:
            lr = self._interpolate(0, self.half_iteration, self.start_lr,
                                   self.max_lr)
        elif self.iteration < 2 * self.half_iteration:
            lr = self._interpolate(self.half_iteration, 2 * self.half_iteration,
                                   self.max_lr, self.start_lr)
        else:
            lr = self._interpolate(2 * self.half_iteration, self.iterations,
                                   self.start_lr, self.last_lr)
        self.iteration += 1
        return lr


@given(n_epochs=st.integers(1, 40), spe=st.integers(1, 40),
       lr0=st.floats(1e-4, 1.0),
       max_lr=st.one_of(st.none(), st.floats(1e-4, 1.0)),
       start_lr=st.one_of(st.none(), st.floats(1e-5, 1e-1)),
       last_lr=st.one_of(st.none(), st.floats(1e-8, 1e-3)))
@settings(max_examples=100, deadline=None)
def test_one_cycle_matches_geron(n_epochs, spe, lr0, max_lr, start_lr,
                                 last_lr):
    lrs = run(OneCycle(max_lr=max_lr, start_lr=start_lr, last_lr=last_lr),
              lr0=lr0, n_epochs=n_epochs, steps_per_epoch=spe)
    ref = GeronOneCycleScheduler(n_epochs * spe,
                                 max_lr=lr0 if max_lr is None else max_lr,
                                 start_lr=start_lr, last_lr=last_lr)
    expected = [ref.on_batch_begin(i, None) for i in range(n_epochs * spe)]
    np.testing.assert_array_equal(lrs, expected)


def test_one_cycle_shape_and_clamp():
    s = OneCycle(max_lr=1.0).start(0.5, 10, 10, 100)  # 100 iterations
    assert (s.iterations_, s.last_iterations_, s.half_iteration_) == (100, 11, 44)
    r = s.epoch_rates(0, 0, 130, 0)
    assert r[0] == pytest.approx(0.1)
    assert r[44] == 1.0 and r.argmax() == 44
    assert r[88] == pytest.approx(0.1)
    assert np.all(np.diff(r[:45]) > 0) and np.all(np.diff(r[44:100]) < 0)
    assert np.all(r[100:] == pytest.approx(1e-4))  # clamped to last_lr
    assert r.min() >= 1e-4 * (1 - 1e-12)


@given(iterations=st.integers(1, 10**7))
def test_one_cycle_last_fraction_default_is_geron(iterations):
    s = OneCycle().start(0.1, iterations, 1, 1)
    assert s.last_iterations_ == iterations // 10 + 1


@pytest.mark.parametrize("frac", [0.0, 0.5, 0.99])
def test_one_cycle_last_fraction(frac):
    s = OneCycle(last_fraction=frac).start(0.1, 10, 10, 1)
    assert s.last_iterations_ == int(100 * frac) + 1
    r = s.epoch_rates(0, 0, 100, 0)
    assert np.all(np.isfinite(r)) and np.all(r > 0)


# --------------------------------------------------- sklearn API and factory

ALL = [Constant(), InvScaling(power_t=0.3), Adaptive(factor=0.1, min_lr=1e-5),
       Power(s=100, c=2), Exponential(s=50),
       PiecewiseConstant([2, 4], [0.1, 0.01, 0.001]),
       ReduceOnPlateau(factor=0.3, patience=2, min_delta=0.01, min_lr=1e-5,
                       cooldown=1),
       OneCycle(max_lr=0.1, start_lr=0.01, last_lr=1e-5, last_fraction=0.2),
       Exponential(s=7, staircase=True),
       PiecewiseConstant([5, 11], [0.1, 0.01, 0.001], unit="step"),
       CosineDecay(decay_steps=20, alpha=0.1, warmup_target=0.05, warmup_steps=4),
       PolynomialDecay(decay_steps=9, end_learning_rate=1e-3, power=2.0, cycle=True)]


@pytest.mark.parametrize("sched", ALL, ids=lambda s: type(s).__name__)
def test_sklearn_api_round_trip(sched):
    assert isinstance(sched, LearningRateSchedule)
    params = sched.get_params()
    c = clone(sched)
    assert type(c) is type(sched) and c.get_params() == params
    c2 = type(sched)().set_params(**params)
    assert c2.get_params() == params
    assert repr(c2) == repr(sched)
    # start() must not change constructor params, and clone drops state
    before = repr(sched.get_params())
    run(sched, n_epochs=5, steps_per_epoch=3)
    assert repr(sched.get_params()) == before
    assert not hasattr(clone(sched), "lr0_")
    # a clone gives the same rates
    np.testing.assert_array_equal(run(clone(sched), n_epochs=5, steps_per_epoch=3),
                                  run(sched, n_epochs=5, steps_per_epoch=3))


class _Holder(BaseEstimator):
    def __init__(self, learning_rate="constant", learning_rate_init=0.001):
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init


def test_nested_params_for_grid_search():
    from sklearn.model_selection import ParameterGrid

    est = _Holder(learning_rate=OneCycle())
    assert "learning_rate__max_lr" in est.get_params()
    for params in ParameterGrid({"learning_rate__max_lr": [0.1, 0.3]}):
        e = clone(est).set_params(**params)
        assert e.learning_rate.max_lr == params["learning_rate__max_lr"]
        assert est.learning_rate.max_lr is None
        sched = make_schedule(e.learning_rate, power_t=0.5)
        sched.start(0.001, 10, 10, 100)
        assert sched.epoch_rates(0, 0, 100, 0).max() == pytest.approx(
            params["learning_rate__max_lr"])


EXPECTED_TYPES = {
    "constant": Constant, "invscaling": InvScaling, "adaptive": Adaptive,
    "power": Power, "exponential": Exponential, "piecewise": PiecewiseConstant,
    "plateau": ReduceOnPlateau, "one_cycle": OneCycle,
    "cosine": CosineDecay, "polynomial": PolynomialDecay,
}


def test_schedule_names():
    assert set(SCHEDULE_NAMES) == set(EXPECTED_TYPES)
    assert isinstance(SCHEDULE_NAMES, tuple)


@pytest.mark.parametrize("name", sorted(EXPECTED_TYPES))
def test_make_schedule_strings(name):
    s = make_schedule(name, power_t=0.25)
    assert type(s) is EXPECTED_TYPES[name]
    assert s is not make_schedule(name, power_t=0.25)
    if name == "invscaling":
        assert s.power_t == 0.25
    else:
        assert s.get_params() == type(s)().get_params()
    lrs = run(s, lr0=0.01, n_epochs=4, steps_per_epoch=3)
    assert np.all(np.isfinite(lrs)) and np.all(lrs > 0)
    if name not in ("one_cycle",):
        assert lrs[0] == 0.01


def test_make_schedule_instance_is_cloned():
    inst = Power(s=3, c=2)
    s = make_schedule(inst, power_t=0.5)
    assert s is not inst and s.get_params() == inst.get_params()
    s.start(0.1, 3, 3, 3)
    assert not hasattr(inst, "lr0_")


@pytest.mark.parametrize("bad", ["Constant", "one-cycle", "", None, 0.1,
                                 Power, ("power",)])
def test_make_schedule_bad_value(bad):
    with pytest.raises(ValueError, match="one_cycle.*LearningRateSchedule"):
        make_schedule(bad, power_t=0.5)


@pytest.mark.parametrize("sched", [
    InvScaling(power_t=-1), InvScaling(power_t="a"),
    Adaptive(factor=0), Adaptive(factor=1.0), Adaptive(min_lr=-1),
    Power(s=0), Power(s=-3), Power(c=-1), Power(s=np.inf), Exponential(s=0),
    Exponential(s="x"),
    ReduceOnPlateau(factor=1.0), ReduceOnPlateau(factor=0),
    ReduceOnPlateau(patience=-1), ReduceOnPlateau(patience=1.5),
    ReduceOnPlateau(min_delta=-0.1), ReduceOnPlateau(min_lr=-1),
    ReduceOnPlateau(cooldown=-1),
    OneCycle(max_lr=0), OneCycle(start_lr=-1), OneCycle(last_lr=-1),
    OneCycle(last_fraction=1.0), OneCycle(last_fraction=-0.1),
    Exponential(staircase="yes"), PiecewiseConstant(unit="steps"),
    PiecewiseConstant([3], [0.1, 0.01], unit="batch"),
    CosineDecay(decay_steps=0), CosineDecay(decay_steps=2.5), CosineDecay(alpha=-0.1),
    CosineDecay(alpha=1.5), CosineDecay(warmup_target=0), CosineDecay(warmup_steps=-1),
    PolynomialDecay(decay_steps=0), PolynomialDecay(end_learning_rate=-1),
    PolynomialDecay(power=-1), PolynomialDecay(cycle=1),
], ids=repr)
def test_bad_params_raise_at_start(sched):
    with pytest.raises(ValueError):
        sched.start(0.01, 10, 3, 30)


@pytest.mark.parametrize("kwargs", [
    dict(lr0=0.0, n_epochs=1, steps_per_epoch=1, n_samples=1),
    dict(lr0=-1.0, n_epochs=1, steps_per_epoch=1, n_samples=1),
    dict(lr0=np.nan, n_epochs=1, steps_per_epoch=1, n_samples=1),
    dict(lr0=0.1, n_epochs=0, steps_per_epoch=1, n_samples=1),
    dict(lr0=0.1, n_epochs=1, steps_per_epoch=0, n_samples=1),
    dict(lr0=0.1, n_epochs=1, steps_per_epoch=1.5, n_samples=1),
    dict(lr0=0.1, n_epochs=1, steps_per_epoch=1, n_samples=-1),
])
def test_bad_start_arguments(kwargs):
    with pytest.raises(ValueError):
        Constant().start(**kwargs)


def test_protocol_misuse():
    with pytest.raises(RuntimeError):
        Constant().epoch_rates(0, 0, 1, 0)
    with pytest.raises(RuntimeError):
        Constant().current_lr()
    s = Constant().start(0.1, 1, 1, 1)
    assert s.current_lr() == 0.1  # before any step: lr0
    assert s.epoch_rates(0, 0, 0, 0).shape == (0,)
    with pytest.raises(ValueError):
        s.epoch_rates(-1, 0, 1, 0)


@pytest.mark.parametrize("sched", [Constant(), Power(), OneCycle(),
                                   ReduceOnPlateau(), PiecewiseConstant()],
                         ids=lambda s: type(s).__name__)
def test_no_improvement_stops_by_default(sched, capsys):
    sched.start(0.1, 10, 1, 1)
    assert sched.on_no_improvement(True, "No luck.") is True
    assert capsys.readouterr().out == "No luck. Stopping.\n"
    assert sched.on_no_improvement(False) is True
    assert capsys.readouterr().out == ""


def test_restart_resets_state():
    s = ReduceOnPlateau(patience=0)
    a = run(s, lr0=1.0, n_epochs=5, steps_per_epoch=1, monitors=[1, 2, 3, 4, 5])
    b = run(s, lr0=1.0, n_epochs=5, steps_per_epoch=1, monitors=[1, 2, 3, 4, 5])
    np.testing.assert_array_equal(a, b)
    assert list(a) == [1.0, 1.0, 0.5, 0.25, 0.125]
    ad = Adaptive().start(1.0, 5, 1, 1)
    ad.on_no_improvement()
    ad.start(1.0, 5, 1, 1)
    assert ad.epoch_rates(0, 0, 1, 0)[0] == 1.0


def test_keras_available_when_expected():
    # documents which branch ran; never fails when keras is absent
    if keras is None:
        pytest.skip("keras not importable")
    assert math.isclose(float(keras.optimizers.schedules.InverseTimeDecay(
        1.0, 1, 1)(1)), 0.5)


# ------------------------------------------- staircase, step boundaries, cosine, polynomial


@given(s=st.floats(0.5, 50), lr0=st.floats(1e-5, 1.0), spe=st.integers(1, 20))
@settings(max_examples=50, deadline=None)
def test_exponential_staircase_formula(s, lr0, spe):
    lrs = run(Exponential(s=s, staircase=True), lr0=lr0, n_epochs=5, steps_per_epoch=spe)
    expected = [lr0 * 0.1 ** math.floor(t / s) for t in range(5 * spe)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-13)


def test_exponential_staircase_holds_then_drops():
    lrs = run(Exponential(s=4, staircase=True), lr0=1.0, n_epochs=3, steps_per_epoch=4)
    np.testing.assert_allclose(lrs, [1.0] * 4 + [0.1] * 4 + [0.01] * 4, rtol=1e-15)


@pytest.mark.keras
@pytest.mark.parametrize("s", [1, 7.5, 20])
def test_exponential_staircase_matches_keras(s):
    keras = pytest.importorskip("keras")
    lrs = run(Exponential(s=s, staircase=True), lr0=0.02, n_epochs=6, steps_per_epoch=13)
    ref = keras.optimizers.schedules.ExponentialDecay(0.02, decay_steps=s, decay_rate=0.1,
                                                      staircase=True)
    theirs = np.array([float(ref(t)) for t in range(lrs.size)])
    mask = theirs > 1e-30  # float32 underflow
    np.testing.assert_allclose(lrs[mask], theirs[mask], rtol=1e-5)


def step_piecewise_reference(boundaries, values, t):
    for b, v in zip(boundaries, values):
        if t <= b:
            return v
    return values[-1]


@given(data=st.data(), spe=st.integers(1, 9), n_epochs=st.integers(1, 8))
@settings(max_examples=50, deadline=None)
def test_piecewise_step_formula(data, spe, n_epochs):
    bounds = sorted(data.draw(st.sets(st.integers(0, 80), min_size=1, max_size=5)))
    values = data.draw(st.lists(st.floats(1e-6, 1.0), min_size=len(bounds) + 1,
                                max_size=len(bounds) + 1))
    lrs = run(PiecewiseConstant(bounds, values, unit="step"), n_epochs=n_epochs,
              steps_per_epoch=spe)
    expected = [step_piecewise_reference(bounds, values, t) for t in range(n_epochs * spe)]
    np.testing.assert_array_equal(lrs, expected)


def test_piecewise_step_changes_inside_an_epoch():
    lrs = run(PiecewiseConstant([2, 5], [0.3, 0.2, 0.1], unit="step"), n_epochs=2,
              steps_per_epoch=4)
    assert list(lrs) == [0.3, 0.3, 0.3, 0.2, 0.2, 0.2, 0.1, 0.1]


def test_piecewise_step_default_uses_planned_steps():
    lrs = run(PiecewiseConstant(unit="step"), lr0=1.0, n_epochs=2, steps_per_epoch=10)
    # 20 planned steps: boundaries 10 and 15, Keras's rule t <= b
    np.testing.assert_allclose(lrs, [1.0] * 11 + [0.1] * 5 + [0.01] * 4, rtol=1e-15)


@pytest.mark.keras
def test_piecewise_step_matches_keras():
    keras = pytest.importorskip("keras")
    bounds, values = [3, 10, 24], [0.1, 0.03, 0.01, 0.002]
    lrs = run(PiecewiseConstant(bounds, values, unit="step"), n_epochs=5, steps_per_epoch=7)
    ref = keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)
    theirs = np.array([float(ref(t)) for t in range(lrs.size)])
    np.testing.assert_allclose(lrs, theirs, rtol=1e-6)


def cosine_reference(lr0, t, T, alpha=0.0, warmup_target=None, warmup_steps=0):
    """FORMULAS.md, one step at a time."""
    if warmup_target is None:
        return lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(t, T) / T)) + alpha)
    if t < warmup_steps:
        return lr0 + (warmup_target - lr0) * t / warmup_steps
    t = min(t - warmup_steps, T)
    return warmup_target * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t / T)) + alpha)


@given(T=st.integers(1, 60), alpha=st.floats(0, 1), lr0=st.floats(1e-5, 1.0),
       warm=st.one_of(st.none(), st.tuples(st.floats(1e-4, 2.0), st.integers(0, 30))),
       spe=st.integers(1, 9))
@settings(max_examples=60, deadline=None)
def test_cosine_formula(T, alpha, lr0, warm, spe):
    target, wsteps = warm if warm is not None else (None, 0)
    sched = CosineDecay(decay_steps=T, alpha=alpha, warmup_target=target, warmup_steps=wsteps)
    lrs = run(sched, lr0=lr0, n_epochs=10, steps_per_epoch=spe)
    expected = [cosine_reference(lr0, t, T, alpha, target, wsteps) for t in range(lrs.size)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=1e-300)


def test_cosine_default_spans_the_planned_training():
    lrs = run(CosineDecay(), lr0=1.0, n_epochs=4, steps_per_epoch=5)
    assert lrs[0] == 1.0 and lrs[10] == pytest.approx(0.5)
    assert np.all(np.diff(lrs) < 0)
    w = run(CosineDecay(warmup_target=2.0, warmup_steps=4), lr0=0.0001, n_epochs=4,
            steps_per_epoch=5)
    np.testing.assert_allclose(w[:5], [1e-4 + k * (2.0 - 1e-4) / 4 for k in range(5)])
    assert w[4] == 2.0 and np.all(np.diff(w[4:]) < 0)  # 16 decay steps end the plan
    assert CosineDecay(warmup_target=2.0, warmup_steps=4).start(1.0, 4, 5, 50).decay_steps_ == 16


@pytest.mark.keras
@pytest.mark.parametrize("kwargs", [dict(decay_steps=30),
                                    dict(decay_steps=25, alpha=0.2),
                                    dict(decay_steps=20, alpha=0.05, warmup_target=0.1,
                                         warmup_steps=8)])
def test_cosine_matches_keras(kwargs):
    keras = pytest.importorskip("keras")
    lrs = run(CosineDecay(**kwargs), lr0=0.02, n_epochs=6, steps_per_epoch=7)
    ref = keras.optimizers.schedules.CosineDecay(0.02, **kwargs)
    theirs = np.array([float(ref(t)) for t in range(lrs.size)])
    np.testing.assert_allclose(lrs, theirs, rtol=1e-5, atol=1e-9)


def polynomial_reference(lr0, t, T, end, power, cycle):
    if cycle:
        T = T * max(1, math.ceil(t / T))
    else:
        t = min(t, T)
    return (lr0 - end) * (1 - t / T) ** power + end


@given(T=st.integers(1, 40), end=st.floats(0, 1e-3), power=st.floats(0, 3),
       cycle=st.booleans(), lr0=st.floats(1e-3, 1.0), spe=st.integers(1, 9))
@settings(max_examples=60, deadline=None)
def test_polynomial_formula(T, end, power, cycle, lr0, spe):
    sched = PolynomialDecay(decay_steps=T, end_learning_rate=end, power=power, cycle=cycle)
    lrs = run(sched, lr0=lr0, n_epochs=8, steps_per_epoch=spe)
    expected = [polynomial_reference(lr0, t, T, end, power, cycle) for t in range(lrs.size)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def test_polynomial_default_reaches_end_at_the_last_planned_step():
    lrs = run(PolynomialDecay(), lr0=0.1, n_epochs=2, steps_per_epoch=5)
    np.testing.assert_allclose(lrs, [(0.1 - 1e-4) * (1 - t / 10) + 1e-4 for t in range(10)])
    s = PolynomialDecay().start(0.1, 2, 5, 50)
    assert s.epoch_rates(2, 10, 2, 0)[-1] == pytest.approx(1e-4)  # stays there


@pytest.mark.keras
@pytest.mark.parametrize("kwargs", [dict(decay_steps=30),
                                    dict(decay_steps=12, end_learning_rate=1e-3, power=2.0),
                                    dict(decay_steps=9, end_learning_rate=1e-3, power=0.5,
                                         cycle=True)])
def test_polynomial_matches_keras(kwargs):
    keras = pytest.importorskip("keras")
    lrs = run(PolynomialDecay(**kwargs), lr0=0.02, n_epochs=6, steps_per_epoch=7)
    ref = keras.optimizers.schedules.PolynomialDecay(0.02, **kwargs)
    theirs = np.array([float(ref(t)) for t in range(lrs.size)])
    np.testing.assert_allclose(lrs, theirs, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("make", [lambda: Exponential(s=5, staircase=True),
                                  lambda: PiecewiseConstant([4, 9], [0.3, 0.2, 0.1],
                                                            unit="step"),
                                  lambda: CosineDecay(warmup_target=0.1, warmup_steps=7),
                                  lambda: PolynomialDecay(decay_steps=13, cycle=True)])
def test_new_schedules_do_not_depend_on_epoch_split(make):
    whole = make().start(0.05, 6, 10, 100).epoch_rates(0, 0, 60, 0)
    pieces = run(make(), lr0=0.05, n_epochs=6, steps_per_epoch=10, n_samples=100)
    np.testing.assert_array_equal(whole, pieces)


# ----------------------------------------------------- in an estimator


NEW_SCHEDULES = [Exponential(s=40, staircase=True),
                 PiecewiseConstant([15, 30], [0.01, 0.003, 0.001], unit="step"),
                 CosineDecay(alpha=0.1, warmup_target=0.01, warmup_steps=10),
                 PolynomialDecay(end_learning_rate=1e-4, power=2.0),
                 "cosine", "polynomial"]


@pytest.mark.parametrize("sched", NEW_SCHEDULES, ids=repr)
def test_fit_with_each_new_schedule(sched):
    from sklearn.datasets import load_digits

    from fastnn import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = MLPClassifier((32,), learning_rate=sched, learning_rate_init=0.01,
                        batch_size=100, max_iter=5, random_state=0)
    clf.fit(X, y)
    spe = math.ceil(len(X) / 100)
    # history_ records each epoch's last step rate: the schedule's own values
    expected = make_schedule(sched).start(0.01, 5, spe, len(X))
    expected = expected.epoch_rates(0, 0, 5 * spe, 0)[spe - 1::spe]
    np.testing.assert_allclose(clf.history_["lr"], expected, rtol=1e-12)
    assert clf.score(X, y) > 0.8
    if not isinstance(sched, str):
        assert not hasattr(sched, "lr0_")  # the estimator's object is not fitted


@pytest.mark.parametrize("param, values, sched", [
    ("learning_rate__alpha", [0.0, 0.5], CosineDecay()),
    ("learning_rate__power", [1.0, 3.0], PolynomialDecay()),
    ("learning_rate__staircase", [False, True], Exponential(s=5)),
])
def test_grid_search_over_a_schedule_parameter(param, values, sched):
    from sklearn.datasets import make_classification
    from sklearn.model_selection import GridSearchCV

    from fastnn import MLPClassifier

    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    est = MLPClassifier((8,), learning_rate=sched, learning_rate_init=0.01, max_iter=3,
                        random_state=0)
    search = GridSearchCV(est, {param: values}, cv=2).fit(X, y)
    assert [p[param] for p in search.cv_results_["params"]] == values
    # the refitted model used the chosen value
    best = search.best_estimator_
    assert best.get_params()[param] == search.best_params_[param]
    expected = clone(best.learning_rate).start(0.01, 3, 1, 120).epoch_rates(0, 0, 3, 0)
    np.testing.assert_allclose(best.history_["lr"], expected, rtol=1e-12)
    assert est.get_params()[param] == sched.get_params()[param.split("__")[1]]
