"""Géron's learning-rate finder: one epoch with an exponentially growing rate.

``find_learning_rate(est, X, y)`` trains a clone of ``est`` for one epoch
whose rate grows exponentially from ``min_lr`` to ``max_lr``, one value per
mini-batch, records the loss of every mini-batch, and stops once the loss
shoots up. The loss falls at first, flattens, then climbs as the rate becomes
too large: the rate where it turns is about the largest usable one, and, as
Géron advises for 1cycle, a good ``max_lr`` is about a tenth of it::

    result = fastnn.find_learning_rate(clf, X_train, y_train)
    clf.set_params(learning_rate=OneCycle(max_lr=result.suggested_max_lr))
    result.plot()        # loss vs rate, log x axis (matplotlib)

The estimator passed in is never modified (nor fitted): the search runs on
``sklearn.base.clone(estimator)``.
"""

import math
import warnings

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import _num_samples

from ._base import DivergenceError
from .schedules import LearningRateSchedule, _check_int, _check_real

__all__ = ["find_learning_rate", "LRFinderResult"]


class _ExponentialRamp(LearningRateSchedule):
    """``min_lr * (max_lr / min_lr) ** (t / (n_steps - 1))`` at global step t:
    min_lr at the first step, max_lr at step n_steps - 1."""

    def __init__(self, min_lr=1e-6, max_lr=10.0, n_steps=100):
        self.min_lr = min_lr
        self.max_lr = max_lr
        self.n_steps = n_steps

    def _validate(self):
        _check_real("min_lr", self.min_lr, low=0, low_open=True)
        _check_real("max_lr", self.max_lr, low=self.min_lr, low_open=True)
        _check_int("n_steps", self.n_steps, 1)

    def _rates(self, epoch, steps, samples_seen):
        fraction = steps / max(self.n_steps - 1, 1)
        return self.min_lr * (self.max_lr / self.min_lr) ** fraction


def _centered_mean(x, window):
    """Mean over a centered window of odd width (shrunk at the ends): smooths
    without shifting the curve towards higher rates as a running mean would."""
    half = window // 2
    sums = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(len(x))
    lo, hi = np.maximum(i - half, 0), np.minimum(i + half + 1, len(x))
    return (sums[hi] - sums[lo]) / (hi - lo)


class LRFinderResult:
    """What :func:`find_learning_rate` found.

    Attributes
    ----------
    rates : ndarray of float
        The rate of each mini-batch step, growing exponentially.
    losses : ndarray of float
        The loss of each step's mini-batch (as the estimator's ``loss_``,
        penalty included), measured before that step's update.
    smoothed_losses : ndarray of float
        ``losses`` averaged over a centered window of ``window`` steps.
    turning_lr : float
        The rate at the minimum of ``smoothed_losses``: where the loss stops
        falling and starts to shoot up.
    suggested_max_lr : float
        ``turning_lr / 10``, a ``max_lr`` for :class:`fastnn.schedules.OneCycle`.
    stopped_early : bool
        True when the loss shot up (exceeded ``stop_factor`` times its
        minimum, or became non-finite) before ``max_lr``.
    """

    def __init__(self, rates, losses, window, stopped_early):
        self.rates = np.asarray(rates, dtype=np.float64)
        self.losses = np.asarray(losses, dtype=np.float64)
        self.smoothed_losses = _centered_mean(self.losses, window)
        self.turning_lr = float(self.rates[np.argmin(self.smoothed_losses)])
        self.suggested_max_lr = self.turning_lr / 10
        self.stopped_early = bool(stopped_early)

    def __repr__(self):
        return (f"LRFinderResult(steps={len(self.rates)}, turning_lr={self.turning_lr:.3g}, "
                f"suggested_max_lr={self.suggested_max_lr:.3g}, "
                f"stopped_early={self.stopped_early})")

    def plot(self, ax=None):
        """Loss against rate on a log x axis (needs matplotlib).

        Draws the per-step losses, their smoothed curve, and vertical lines at
        ``turning_lr`` and ``suggested_max_lr``.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None makes a new figure.

        Returns
        -------
        ax : matplotlib Axes
        """
        from .plot import _import_pyplot

        if ax is None:
            _, ax = _import_pyplot().subplots(figsize=(6, 4))
        ax.plot(self.rates, self.losses, alpha=0.3, label="loss per step")
        ax.plot(self.rates, self.smoothed_losses, label="smoothed")
        ax.axvline(self.turning_lr, color="gray", linestyle=":", label="turning point")
        ax.axvline(self.suggested_max_lr, color="green", linestyle="--",
                   label=f"suggested max_lr = {self.suggested_max_lr:.2g}")
        ax.set_xscale("log")
        finite = self.losses[np.isfinite(self.losses)]
        if finite.size:  # as Géron's plot: from the minimum to a bit above the start
            low, start = finite.min(), finite[0]
            ax.set_ylim(low - 0.05 * (start - low), start + 0.5 * (start - low) + 1e-12)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.legend()
        return ax


def find_learning_rate(estimator, X, y, *, min_lr=1e-6, max_lr=10.0, epochs=1,
                       stop_factor=4.0, window=5, sample_weight=None, plot=False, ax=None):
    """Géron's learning-rate finder: train a clone with an exponentially
    growing rate and record the loss of every mini-batch.

    A clone of ``estimator`` trains for ``epochs`` epoch(s) of mini-batches
    (the estimator's ``batch_size``, shuffled by its ``random_state`` when
    ``shuffle``) with the rate ``min_lr * (max_lr / min_lr) ** (t / (n - 1))``
    at step ``t`` of ``n``: the factor ``(max_lr / min_lr) ** (1 / (n - 1))``
    per step. Each step is one ``partial_fit`` on one mini-batch, so the
    optimizer state (Adam's moments, momentum) carries over from step to step
    as in a normal epoch. The search stops when the running mean of the last
    ``window`` losses exceeds ``stop_factor`` times its smallest value so far,
    or the loss becomes NaN or infinite.

    The turning point is the rate at the minimum of the smoothed loss; the
    suggested ``max_lr`` for 1cycle is a tenth of it (Géron: "about 10 times
    lower than the turning point").

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        Any stochastic solver (not ``'lbfgs'``). Never modified: the search
        uses ``clone(estimator)`` with ``learning_rate``, ``early_stopping``
        (False), ``warm_start`` and ``verbose`` replaced.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    min_lr : float, default=1e-6
        Rate of the first step, > 0.
    max_lr : float, default=10.0
        Rate of the last step, > min_lr.
    epochs : int, default=1
        Epochs the rate takes to grow from ``min_lr`` to ``max_lr``.
    stop_factor : float, default=4.0
        Stop when the smoothed loss exceeds this many times its minimum;
        ``np.inf`` never stops early.
    window : int, default=5
        Width (steps, odd) of the running and centered means.
    sample_weight : array-like of shape (n_samples,) or None, default=None
    plot : bool, default=False
        Also draw the curve (:meth:`LRFinderResult.plot`); the axes are then
        in the result's ``ax`` attribute.
    ax : matplotlib Axes or None, default=None
        Draw into these axes (implies ``plot=True``).

    Returns
    -------
    result : LRFinderResult
        ``rates``, ``losses``, ``smoothed_losses``, ``turning_lr``,
        ``suggested_max_lr``, ``stopped_early`` (and ``ax`` when plotted).

    Warns
    -----
    UserWarning
        When the loss did not shoot up before ``max_lr``: the turning point
        may lie beyond it.
    """
    if getattr(estimator, "solver", None) == "lbfgs":
        raise ValueError("find_learning_rate needs a stochastic solver; lbfgs uses no "
                         "learning rate.")
    _check_int("epochs", epochs, 1)
    if not stop_factor >= 1:  # np.inf allowed
        raise ValueError(f"stop_factor must be >= 1, got {stop_factor!r}.")
    _check_int("window", window, 1)
    if window % 2 == 0:
        raise ValueError(f"window must be odd, got {window}.")
    n_samples = _num_samples(X)
    if n_samples < 1:
        raise ValueError("X has no samples.")
    batch_size = estimator.batch_size
    batch_size = min(200, n_samples) if batch_size == "auto" else min(int(batch_size),
                                                                       n_samples)
    steps_per_epoch = math.ceil(n_samples / batch_size)
    n_steps = epochs * steps_per_epoch
    ramp = _ExponentialRamp(min_lr=min_lr, max_lr=max_lr, n_steps=n_steps)
    ramp.start(1.0, 1, 1, 0)  # validates min_lr and max_lr before any training

    est = clone(estimator).set_params(learning_rate=ramp, early_stopping=False,
                                      warm_start=False, verbose=False)
    partial_kwargs = {"classes": unique_labels(y)} if is_classifier(est) else {}
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
    class_weight = est.get_params().get("class_weight")
    if class_weight is not None:  # weights from the whole y, not from each mini-batch
        balance = compute_sample_weight(class_weight, y)
        sample_weight = balance if sample_weight is None else sample_weight * balance
        est.set_params(class_weight=None)
    rng = check_random_state(est.random_state)  # the clone's copy: the original stays as it is
    order = np.arange(n_samples)

    rates, losses, stopped = [], [], False
    best_running = np.inf
    for step in range(n_steps):
        if step % steps_per_epoch == 0 and est.shuffle:
            rng.shuffle(order)
        k = step % steps_per_epoch
        rows = order[k * batch_size:(k + 1) * batch_size]
        # one partial_fit on len(rows) samples is exactly one optimizer step
        est.batch_size = len(rows)
        weights = None if sample_weight is None else sample_weight[rows]
        try:
            est.partial_fit(_safe_indexing(X, rows), _safe_indexing(y, rows),
                            sample_weight=weights, **partial_kwargs)
        except DivergenceError:  # the loss became NaN or infinite: it shot up
            stopped = True
            break
        partial_kwargs = {}
        rates.append(float(est.history_["lr"][-1]))
        losses.append(float(est.loss_))
        if len(losses) >= window:
            running = float(np.mean(losses[-window:]))
            best_running = min(best_running, running)
            if running > stop_factor * best_running:
                stopped = True
                break
    if not losses:
        raise ValueError(f"The loss was not finite even at min_lr={min_lr}; lower min_lr "
                         "or scale the data.")
    if not stopped:
        warnings.warn(f"The loss did not shoot up before max_lr={max_lr}: the turning point "
                      "may lie beyond it; try a larger max_lr.", UserWarning)
    result = LRFinderResult(rates, losses, window, stopped)
    if plot or ax is not None:
        result.ax = result.plot(ax)
    return result
