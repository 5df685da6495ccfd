"""Learning-rate schedules for the ``learning_rate`` parameter of fastnn's MLPs.

A schedule is a small scikit-learn estimator: its constructor parameters are
plain hyper-parameters (``get_params``/``set_params``/``clone`` work, so
``GridSearchCV(est, {"learning_rate__max_lr": [...]})`` works when an instance is
passed as ``learning_rate``), and everything computed during training lives in
attributes ending in ``_`` set by :meth:`LearningRateSchedule.start`.

The estimator drives a schedule with this protocol (``lr0`` is the estimator's
``learning_rate_init``)::

    sched = make_schedule(est.learning_rate, power_t=est.power_t)
    sched.start(lr0, n_epochs=max_iter, steps_per_epoch=ceil(n / batch),
                n_samples=n)                       # once per fit
    for epoch in range(max_iter):
        lrs = sched.epoch_rates(epoch, first_step, n_steps, samples_seen)
        ...                                        # train with lrs[i] at step i
        sched.end_epoch(monitor)                   # lower is better (see end_epoch)
        if no_improvement_count > n_iter_no_change:
            if sched.on_no_improvement(verbose, msg):
                break                              # stop training
            no_improvement_count = 0

Steps are global optimizer steps, counted from 0. Only the solvers ``'sgd'``,
``'adam'``, ... use a schedule; ``'lbfgs'`` ignores it.
"""

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, clone

__all__ = [
    "LearningRateSchedule",
    "Constant",
    "InvScaling",
    "Adaptive",
    "Power",
    "Exponential",
    "PiecewiseConstant",
    "ReduceOnPlateau",
    "OneCycle",
    "CosineDecay",
    "PolynomialDecay",
    "make_schedule",
    "SCHEDULE_NAMES",
]

#: Number of epochs' worth of steps used for ``s`` when ``Power``/``Exponential``
#: get ``s=None`` (Géron's choice in *Hands-On Machine Learning*, ch. 11).
DEFAULT_S_EPOCHS = 20


def _check_real(name, value, *, low=None, high=None, low_open=False,
                high_open=False, allow_none=False):
    if value is None and allow_none:
        return
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not math.isfinite(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}.")
    if low is not None and (value < low or (low_open and value == low)):
        op = ">" if low_open else ">="
        raise ValueError(f"{name} must be {op} {low}, got {value!r}.")
    if high is not None and (value > high or (high_open and value == high)):
        op = "<" if high_open else "<="
        raise ValueError(f"{name} must be {op} {high}, got {value!r}.")


def _check_int(name, value, low):
    if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
            or value < low):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")


class LearningRateSchedule(BaseEstimator):
    """Base class of all learning-rate schedules.

    Subclasses implement ``_rates(epoch, steps, samples_seen)`` and optionally
    ``_validate``, ``end_epoch`` and ``on_no_improvement``.

    Attributes
    ----------
    lr0_ : float
        Initial learning rate (the estimator's ``learning_rate_init``).
    n_epochs_ : int
        Planned number of epochs (the estimator's ``max_iter``).
    steps_per_epoch_ : int
        Mini-batches per epoch.
    n_samples_ : int
        Training samples per epoch.
    lr_ : float
        The rate of the last step returned by :meth:`epoch_rates` (``lr0_``
        before the first call).
    """

    def start(self, lr0, n_epochs, steps_per_epoch, n_samples):
        """Reset the schedule for a new ``fit``.

        Parameters
        ----------
        lr0 : float
            Initial learning rate, > 0.
        n_epochs : int
            Planned number of epochs, >= 1.
        steps_per_epoch : int
            Optimizer steps (mini-batches) per epoch, >= 1.
        n_samples : int
            Training samples per epoch, >= 0.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If an argument or a constructor parameter is invalid.
        """
        _check_real("learning_rate_init", lr0, low=0, low_open=True)
        _check_int("n_epochs", n_epochs, 1)
        _check_int("steps_per_epoch", steps_per_epoch, 1)
        _check_int("n_samples", n_samples, 0)
        self.lr0_ = float(lr0)
        self.n_epochs_ = int(n_epochs)
        self.steps_per_epoch_ = int(steps_per_epoch)
        self.n_samples_ = int(n_samples)
        self.lr_ = self.lr0_
        self._validate()
        return self

    def _validate(self):
        """Check the constructor parameters and derive fitted state."""

    def _rates(self, epoch, steps, samples_seen):
        raise NotImplementedError

    def epoch_rates(self, epoch, first_step, n_steps, samples_seen):
        """Learning rates for the steps of one epoch.

        Parameters
        ----------
        epoch : int
            0-based epoch index (counted from the start of ``fit``).
        first_step : int
            0-based global index of the epoch's first optimizer step.
        n_steps : int
            Number of optimizer steps in this epoch.
        samples_seen : int
            Training samples processed before this epoch.

        Returns
        -------
        lrs : ndarray of shape (n_steps,), dtype float64
            ``lrs[i]`` is the rate of global step ``first_step + i``.
        """
        if not hasattr(self, "lr0_"):
            raise RuntimeError(
                f"{type(self).__name__}.start() must be called before "
                "epoch_rates()."
            )
        _check_int("epoch", epoch, 0)
        _check_int("first_step", first_step, 0)
        _check_int("n_steps", n_steps, 0)
        _check_int("samples_seen", samples_seen, 0)
        steps = np.arange(first_step, first_step + n_steps, dtype=np.float64)
        lrs = np.asarray(self._rates(int(epoch), steps, int(samples_seen)),
                         dtype=np.float64)
        lrs = np.broadcast_to(lrs, (n_steps,)).copy()
        if n_steps:
            self.lr_ = float(lrs[-1])
        return lrs

    def end_epoch(self, monitor):
        """Report the epoch's monitored figure, lower is better.

        When the estimator validates (early stopping, or fit's ``X_val``) it
        is the validation loss with ``monitor='val_loss'`` and the negated
        validation score with ``monitor='val_score'``; otherwise the training
        loss.

        Parameters
        ----------
        monitor : float
            The figure to monitor; lower is better.
        """

    def on_no_improvement(self, verbose=False, msg=""):
        """Called when the loss has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs.

        Parameters
        ----------
        verbose : bool, default=False
            Print a message (as scikit-learn does).
        msg : str, default=""
            The estimator's explanation, printed before this method's verdict
            (pass scikit-learn's message to reproduce its verbose output).

        Returns
        -------
        stop : bool
            True if training should stop. The base class always stops.
        """
        if verbose:
            print(msg + " Stopping." if msg else "Stopping.")
        return True

    def current_lr(self):
        """Rate of the last step returned by :meth:`epoch_rates`.

        Returns
        -------
        lr : float
        """
        if not hasattr(self, "lr_"):
            raise RuntimeError(
                f"{type(self).__name__}.start() must be called first."
            )
        return self.lr_


class Constant(LearningRateSchedule):
    """Constant learning rate ``learning_rate_init`` (``learning_rate='constant'``).

    Examples
    --------
    >>> from fastnn.schedules import Constant
    >>> Constant().start(0.01, 10, 5, 100).epoch_rates(0, 0, 3, 0)
    array([0.01, 0.01, 0.01])
    """

    def _rates(self, epoch, steps, samples_seen):
        return self.lr0_


class InvScaling(LearningRateSchedule):
    """scikit-learn's ``'invscaling'`` schedule.

    During an epoch the rate is ``lr0 / (samples_seen + 1) ** power_t``, where
    ``samples_seen`` counts the training samples processed before that epoch
    (so the first epoch uses ``lr0``). This is bit-for-bit scikit-learn's
    ``SGDOptimizer`` update, which changes the rate at the end of each epoch.

    Parameters
    ----------
    power_t : float, default=0.5
        Exponent, >= 0.
    """

    def __init__(self, power_t=0.5):
        self.power_t = power_t

    def _validate(self):
        _check_real("power_t", self.power_t, low=0)

    def _rates(self, epoch, steps, samples_seen):
        return float(self.lr0_) / (samples_seen + 1) ** self.power_t


class Adaptive(LearningRateSchedule):
    """scikit-learn's ``'adaptive'`` schedule.

    The rate stays constant while the loss keeps improving. Each time the
    estimator reports ``n_iter_no_change`` epochs without an improvement of
    ``tol``, :meth:`on_no_improvement` stops training if the rate is already
    ``<= min_lr``, and otherwise divides it by ``1 / factor`` (5 by default, as
    scikit-learn, bit for bit) and lets training continue.

    Parameters
    ----------
    factor : float, default=0.2
        Multiplier applied to the rate, in (0, 1).
    min_lr : float, default=1e-6
        Training stops instead of reducing a rate that is ``<= min_lr``.
    """

    def __init__(self, factor=0.2, min_lr=1e-6):
        self.factor = factor
        self.min_lr = min_lr

    def _validate(self):
        _check_real("factor", self.factor, low=0, high=1, low_open=True,
                    high_open=True)
        _check_real("min_lr", self.min_lr, low=0)
        self.current_ = self.lr0_

    def _rates(self, epoch, steps, samples_seen):
        return self.current_

    def on_no_improvement(self, verbose=False, msg=""):
        """Reduce the rate, or stop when it is already ``<= min_lr``.

        Same order and messages as scikit-learn's
        ``SGDOptimizer.trigger_stopping``.

        Returns
        -------
        stop : bool
        """
        if self.current_ <= self.min_lr:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.current_ /= 1.0 / self.factor
        if verbose:
            print(msg + " Setting learning rate to %f" % self.current_)
        return False


class Power(LearningRateSchedule):
    """Power scheduling (Géron), per step: ``lr0 / (1 + t / s) ** c``.

    ``t`` is the 0-based global step. With ``c=1`` this is Keras'
    ``InverseTimeDecay(lr0, decay_steps=s, decay_rate=1)``.

    Parameters
    ----------
    s : float or None, default=None
        Steps over which the rate drops to ``lr0 / 2**c``, > 0. None means
        20 epochs' worth of steps, ``20 * steps_per_epoch`` (Géron's choice).
    c : float, default=1
        Exponent, >= 0.

    Attributes
    ----------
    s_ : float
        The ``s`` in use.
    """

    def __init__(self, s=None, c=1):
        self.s = s
        self.c = c

    def _validate(self):
        _check_real("s", self.s, low=0, low_open=True, allow_none=True)
        _check_real("c", self.c, low=0)
        self.s_ = float(DEFAULT_S_EPOCHS * self.steps_per_epoch_
                        if self.s is None else self.s)

    def _rates(self, epoch, steps, samples_seen):
        return self.lr0_ / (1.0 + steps / self.s_) ** self.c


class Exponential(LearningRateSchedule):
    """Exponential scheduling (Géron), per step: ``lr0 * 0.1 ** (t / s)``.

    ``t`` is the 0-based global step; the rate drops 10-fold every ``s`` steps.
    Same as Keras' ``ExponentialDecay(lr0, decay_steps=s, decay_rate=0.1,
    staircase=staircase)``.

    Parameters
    ----------
    s : float or None, default=None
        Steps per 10-fold decrease, > 0. None means 20 epochs' worth of steps,
        ``20 * steps_per_epoch`` (Géron's choice).
    staircase : bool, default=False
        Use ``floor(t / s)`` as the exponent: the rate stays constant for
        ``s`` steps, then drops 10-fold at once.

    Attributes
    ----------
    s_ : float
        The ``s`` in use.
    """

    def __init__(self, s=None, staircase=False):
        self.s = s
        self.staircase = staircase

    def _validate(self):
        _check_real("s", self.s, low=0, low_open=True, allow_none=True)
        if not isinstance(self.staircase, (bool, np.bool_)):
            raise ValueError(f"staircase must be a bool, got {self.staircase!r}.")
        self.s_ = float(DEFAULT_S_EPOCHS * self.steps_per_epoch_
                        if self.s is None else self.s)

    def _rates(self, epoch, steps, samples_seen):
        exponent = steps / self.s_
        if self.staircase:
            exponent = np.floor(exponent)
        return self.lr0_ * 0.1 ** exponent


class PiecewiseConstant(LearningRateSchedule):
    """Piecewise-constant rate by epoch (Géron) or by step (Keras).

    With ``unit='epoch'``, epoch ``e`` (0-based) uses ``values[i]`` for the
    first ``i`` with ``e < boundaries[i]``, and ``values[-1]`` from
    ``boundaries[-1]`` on (Géron's ``piecewise_constant_fn``).

    With ``unit='step'``, the 0-based global step ``t`` uses ``values[i]`` for
    the first ``i`` with ``t <= boundaries[i]``, and ``values[-1]`` after
    ``boundaries[-1]``: exactly Keras' ``PiecewiseConstantDecay(boundaries,
    values)``, so Keras boundaries carry over unchanged (note ``<=``: the
    switch comes one step later than the epoch rule would put it).

    Values are absolute rates (as Keras'), not multipliers of
    ``learning_rate_init``.

    Parameters
    ----------
    boundaries : sequence of numbers or None, default=None
        Strictly increasing boundaries, in epochs or steps (``unit``).
    values : sequence of float or None, default=None
        Rates, ``len(boundaries) + 1`` of them, each > 0.
        When both are None (``learning_rate='piecewise'``) the rates are
        ``[lr0, lr0 / 10, lr0 / 100]`` with boundaries at 50% and 75% of the
        planned epochs (or steps): with ``n`` that number,
        ``b1 = max(1, n // 2)``, ``b2 = max(b1 + 1, 3 * n // 4)``.
    unit : {'epoch', 'step'}, default='epoch'
        What the boundaries count.

    Attributes
    ----------
    boundaries_ : ndarray of float64
    values_ : ndarray of float64
    """

    def __init__(self, boundaries=None, values=None, unit="epoch"):
        self.boundaries = boundaries
        self.values = values
        self.unit = unit

    def _validate(self):
        if self.unit not in ("epoch", "step"):
            raise ValueError(f"unit must be 'epoch' or 'step', got {self.unit!r}.")
        if (self.boundaries is None) != (self.values is None):
            raise ValueError(
                "PiecewiseConstant needs both boundaries and values, or "
                "neither (for the default)."
            )
        if self.boundaries is None:
            n = self.n_epochs_
            if self.unit == "step":
                n *= self.steps_per_epoch_
            b1 = max(1, n // 2)
            b2 = max(b1 + 1, (3 * n) // 4)
            self.boundaries_ = np.array([b1, b2], dtype=np.float64)
            self.values_ = np.array(
                [self.lr0_, self.lr0_ / 10, self.lr0_ / 100])
            return
        try:
            b = np.asarray(self.boundaries, dtype=np.float64)
            v = np.asarray(self.values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                "boundaries and values must be sequences of numbers.") from exc
        if b.ndim != 1 or v.ndim != 1:
            raise ValueError("boundaries and values must be 1-d sequences.")
        if len(v) != len(b) + 1:
            raise ValueError(
                "len(values) must be len(boundaries) + 1, got "
                f"{len(v)} values and {len(b)} boundaries."
            )
        if not (np.all(np.isfinite(b)) and np.all(np.isfinite(v))):
            raise ValueError("boundaries and values must be finite.")
        if np.any(np.diff(b) <= 0):
            raise ValueError(
                f"boundaries must be strictly increasing, got {self.boundaries!r}."
            )
        if np.any(v <= 0):
            raise ValueError(f"values must be > 0, got {self.values!r}.")
        self.boundaries_ = b
        self.values_ = v

    def _rates(self, epoch, steps, samples_seen):
        if self.unit == "step":
            return self.values_[np.searchsorted(self.boundaries_, steps, side="left")]
        return self.values_[np.searchsorted(self.boundaries_, epoch, side="right")]


class ReduceOnPlateau(LearningRateSchedule):
    """Performance scheduling: Keras' ``ReduceLROnPlateau`` (``mode='min'``).

    At the end of each epoch, with ``monitor`` the figure the estimator's own
    ``monitor`` parameter names on its validation data (the validation loss
    for ``'val_loss'``, the negated validation score for ``'val_score'``, so
    that ``min_delta`` is then a score margin), or the training loss when not
    validating: if ``monitor < best - min_delta`` (or it is the
    first epoch) then ``best = monitor`` and ``wait = 0``; otherwise
    ``wait += 1`` and, once ``wait >= patience``, the rate becomes
    ``max(lr * factor, min_lr)`` (only if ``lr > min_lr``) and ``wait = 0``.
    After a reduction, ``cooldown`` epochs pass before ``wait`` counts again.
    The reduced rate applies from the next epoch. Same order of operations as
    Keras 3, but the comparison is done in float64 (Keras compares in
    float32). The estimator's own ``n_iter_no_change`` stopping is unchanged.
    Validation data without stopping early, as Keras's ``ReduceLROnPlateau``
    with ``validation_data``: fit's ``X_val``/``y_val`` with
    ``early_stopping=False`` (or ``early_stopping=True`` with
    ``n_iter_no_change=np.inf`` to watch the ``validation_fraction`` split).

    Parameters
    ----------
    factor : float, default=0.5
        Multiplier, in (0, 1).
    patience : int, default=5
        Epochs without improvement before reducing, >= 0.
    min_delta : float, default=0
        Minimum decrease that counts as an improvement, >= 0.
    min_lr : float, default=0
        Lower bound on the rate, >= 0.
    cooldown : int, default=0
        Epochs to wait after a reduction before counting again, >= 0.

    Attributes
    ----------
    best_ : float or None
    wait_ : int
    cooldown_counter_ : int
    current_ : float
        Rate used in the next epoch.
    """

    def __init__(self, factor=0.5, patience=5, min_delta=0, min_lr=0,
                 cooldown=0):
        self.factor = factor
        self.patience = patience
        self.min_delta = min_delta
        self.min_lr = min_lr
        self.cooldown = cooldown

    def _validate(self):
        _check_real("factor", self.factor, low=0, high=1, low_open=True,
                    high_open=True)
        _check_int("patience", self.patience, 0)
        _check_real("min_delta", self.min_delta, low=0)
        _check_real("min_lr", self.min_lr, low=0)
        _check_int("cooldown", self.cooldown, 0)
        self.best_ = None
        self.wait_ = 0
        self.cooldown_counter_ = 0
        self.current_ = self.lr0_

    def _rates(self, epoch, steps, samples_seen):
        return self.current_

    def end_epoch(self, monitor):
        """Update the plateau state with this epoch's monitored loss."""
        monitor = float(monitor)
        if self.cooldown_counter_ > 0:
            self.cooldown_counter_ -= 1
            self.wait_ = 0
        if self.best_ is None or monitor + self.min_delta < self.best_:
            self.best_ = monitor
            self.wait_ = 0
        elif self.cooldown_counter_ <= 0:
            self.wait_ += 1
            if self.wait_ >= self.patience and self.current_ > self.min_lr:
                self.current_ = max(self.current_ * self.factor, self.min_lr)
                self.cooldown_counter_ = self.cooldown
                self.wait_ = 0


class OneCycle(LearningRateSchedule):
    """1cycle scheduling, per step (Géron's ``OneCycleScheduler``).

    With ``iterations = n_epochs * steps_per_epoch``,
    ``last_iterations = int(iterations * last_fraction) + 1`` and
    ``half = (iterations - last_iterations) // 2``, the rate goes linearly
    from ``start_lr`` to ``max_lr`` over steps ``[0, half)``, back to
    ``start_lr`` over ``[half, 2 * half)``, then down to ``last_lr`` at step
    ``iterations``, and stays at ``last_lr`` after that.

    Parameters
    ----------
    max_lr : float or None, default=None
        Peak rate; None means ``learning_rate_init``.
    start_lr : float or None, default=None
        Initial rate; None means ``max_lr / 10``.
    last_lr : float or None, default=None
        Final rate; None means ``start_lr / 1000``.
    last_fraction : float, default=0.1
        Fraction of the steps spent on the final decrease, in [0, 1).
        0.1 gives Géron's ``iterations // 10 + 1``.

    Attributes
    ----------
    iterations_, last_iterations_, half_iteration_ : int
    max_lr_, start_lr_, last_lr_ : float
    """

    def __init__(self, max_lr=None, start_lr=None, last_lr=None,
                 last_fraction=0.1):
        self.max_lr = max_lr
        self.start_lr = start_lr
        self.last_lr = last_lr
        self.last_fraction = last_fraction

    def _validate(self):
        _check_real("max_lr", self.max_lr, low=0, low_open=True,
                    allow_none=True)
        _check_real("start_lr", self.start_lr, low=0, low_open=True,
                    allow_none=True)
        _check_real("last_lr", self.last_lr, low=0, allow_none=True)
        _check_real("last_fraction", self.last_fraction, low=0, high=1,
                    high_open=True)
        self.max_lr_ = float(self.lr0_ if self.max_lr is None else self.max_lr)
        self.start_lr_ = float(self.max_lr_ / 10 if self.start_lr is None
                               else self.start_lr)
        self.last_lr_ = float(self.start_lr_ / 1000 if self.last_lr is None
                              else self.last_lr)
        self.iterations_ = self.n_epochs_ * self.steps_per_epoch_
        self.last_iterations_ = int(self.iterations_ * self.last_fraction) + 1
        self.half_iteration_ = (self.iterations_ - self.last_iterations_) // 2

    @staticmethod
    def _interpolate(it, iter1, iter2, rate1, rate2):
        # Géron's formula, verbatim (vectorized over ``it``).
        return (rate2 - rate1) * (it - iter1) / (iter2 - iter1) + rate1

    def _rates(self, epoch, steps, samples_seen):
        half, total = self.half_iteration_, self.iterations_
        start, peak, last = self.start_lr_, self.max_lr_, self.last_lr_
        with np.errstate(divide="ignore", invalid="ignore"):
            up = self._interpolate(steps, 0, half, start, peak)
            down = self._interpolate(steps, half, 2 * half, peak, start)
            tail = self._interpolate(steps, 2 * half, total, start, last)
        return np.select(
            [steps < half, steps < 2 * half, steps < total],
            [up, down, tail],
            default=last,
        )


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warm-up, per step (Keras' ``CosineDecay``).

    With ``t`` the 0-based global step and ``T = decay_steps``:

    - without warm-up (``warmup_target=None``):
      ``lr = lr0 * ((1 - alpha) * d(t) + alpha)``,
      ``d(t) = 0.5 * (1 + cos(pi * min(t, T) / T))``;
    - with warm-up: for ``t < warmup_steps`` the rate rises linearly,
      ``lr0 + (warmup_target - lr0) * t / warmup_steps``; after that it decays
      as above from ``warmup_target`` with ``t - warmup_steps`` steps done.

    ``lr0`` is the estimator's ``learning_rate_init``. After the decay the
    rate stays at ``alpha`` times its peak.

    Parameters
    ----------
    decay_steps : int or None, default=None
        Steps of the cosine decay, >= 1. None means the rest of the planned
        training: ``n_epochs * steps_per_epoch - warmup_steps`` (at least 1).
    alpha : float, default=0.0
        Final rate as a fraction of the peak, in [0, 1].
    warmup_target : float or None, default=None
        Rate reached at the end of the warm-up, > 0; None: no warm-up.
    warmup_steps : int, default=0
        Length of the warm-up, >= 0 (used only with ``warmup_target``).

    Attributes
    ----------
    decay_steps_ : int
        The ``decay_steps`` in use.
    """

    def __init__(self, decay_steps=None, alpha=0.0, warmup_target=None, warmup_steps=0):
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _validate(self):
        if self.decay_steps is not None:
            _check_int("decay_steps", self.decay_steps, 1)
        _check_real("alpha", self.alpha, low=0, high=1)
        _check_real("warmup_target", self.warmup_target, low=0, low_open=True,
                    allow_none=True)
        _check_int("warmup_steps", self.warmup_steps, 0)
        warmup = self.warmup_steps if self.warmup_target is not None else 0
        self.decay_steps_ = int(self.decay_steps if self.decay_steps is not None else
                                max(1, self.n_epochs_ * self.steps_per_epoch_ - warmup))

    def _decayed(self, t, peak):
        done = np.minimum(t, self.decay_steps_) / self.decay_steps_
        return peak * ((1 - self.alpha) * 0.5 * (1 + np.cos(np.pi * done)) + self.alpha)

    def _rates(self, epoch, steps, samples_seen):
        if self.warmup_target is None or self.warmup_steps == 0:
            peak = self.lr0_ if self.warmup_target is None else self.warmup_target
            return self._decayed(steps, peak)
        w = self.warmup_steps
        rising = self.lr0_ + (self.warmup_target - self.lr0_) * steps / w
        return np.where(steps < w, rising, self._decayed(steps - w, self.warmup_target))


class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay, per step (Keras' ``PolynomialDecay``).

    With ``t`` the 0-based global step and ``T = decay_steps``:
    ``lr = (lr0 - end_learning_rate) * (1 - min(t, T) / T) ** power +
    end_learning_rate``, so the rate goes from ``lr0`` (the estimator's
    ``learning_rate_init``) to ``end_learning_rate`` in ``T`` steps and stays
    there. With ``cycle=True``, ``T`` becomes the first multiple of
    ``decay_steps`` that is >= ``t`` (``decay_steps`` at ``t = 0``), and
    ``min(t, T)`` is just ``t``: the decay restarts, ever slower.

    Parameters
    ----------
    decay_steps : int or None, default=None
        Steps of the decay, >= 1. None means the whole planned training,
        ``n_epochs * steps_per_epoch``.
    end_learning_rate : float, default=1e-4
        Final rate, >= 0 (Keras' default).
    power : float, default=1.0
        Exponent, >= 0; 1 is a linear decay.
    cycle : bool, default=False

    Attributes
    ----------
    decay_steps_ : int
        The ``decay_steps`` in use.
    """

    def __init__(self, decay_steps=None, end_learning_rate=1e-4, power=1.0, cycle=False):
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle

    def _validate(self):
        if self.decay_steps is not None:
            _check_int("decay_steps", self.decay_steps, 1)
        _check_real("end_learning_rate", self.end_learning_rate, low=0)
        _check_real("power", self.power, low=0)
        if not isinstance(self.cycle, (bool, np.bool_)):
            raise ValueError(f"cycle must be a bool, got {self.cycle!r}.")
        self.decay_steps_ = int(self.decay_steps if self.decay_steps is not None
                                else self.n_epochs_ * self.steps_per_epoch_)

    def _rates(self, epoch, steps, samples_seen):
        T = float(self.decay_steps_)
        if self.cycle:
            T = T * np.maximum(1.0, np.ceil(steps / T))
            t = steps
        else:
            t = np.minimum(steps, T)
        end = self.end_learning_rate
        return (self.lr0_ - end) * (1.0 - t / T) ** self.power + end


_FACTORIES = {
    "constant": lambda power_t: Constant(),
    "invscaling": lambda power_t: InvScaling(power_t=power_t),
    "adaptive": lambda power_t: Adaptive(),
    "power": lambda power_t: Power(),
    "exponential": lambda power_t: Exponential(),
    "piecewise": lambda power_t: PiecewiseConstant(),
    "plateau": lambda power_t: ReduceOnPlateau(),
    "one_cycle": lambda power_t: OneCycle(),
    "cosine": lambda power_t: CosineDecay(),
    "polynomial": lambda power_t: PolynomialDecay(),
}

#: Valid string values of the estimators' ``learning_rate`` parameter.
SCHEDULE_NAMES = tuple(_FACTORIES)


def make_schedule(learning_rate, *, power_t=0.5):
    """Turn an estimator's ``learning_rate`` parameter into a fresh schedule.

    Parameters
    ----------
    learning_rate : str or LearningRateSchedule
        One of :data:`SCHEDULE_NAMES` (that schedule with its defaults), or a
        schedule instance, which is cloned (the original is never modified).
    power_t : float, default=0.5
        Used only by ``'invscaling'``; an ``InvScaling`` instance keeps its own.

    Returns
    -------
    schedule : LearningRateSchedule
        Unstarted; call ``start`` before use.

    Raises
    ------
    ValueError
        For any other value.
    """
    if isinstance(learning_rate, LearningRateSchedule):
        return clone(learning_rate)
    if isinstance(learning_rate, str) and learning_rate in _FACTORIES:
        return _FACTORIES[learning_rate](power_t)
    raise ValueError(
        "learning_rate must be one of "
        f"{', '.join(repr(n) for n in SCHEDULE_NAMES)} or a "
        f"fastnn.schedules.LearningRateSchedule instance, got {learning_rate!r}."
    )
