"""Kernel initializer objects for the estimators' ``kernel_initializer`` parameter.

:class:`VarianceScaling` is Keras 3's ``keras.initializers.VarianceScaling``:
every named initializer is one of its presets,

====================  ==================================================
name                  equivalent object
====================  ==================================================
``'glorot_uniform'``  ``VarianceScaling(1.0, 'fan_avg', 'uniform')``
``'glorot_normal'``   ``VarianceScaling(1.0, 'fan_avg', 'truncated_normal')``
``'he_uniform'``      ``VarianceScaling(2.0, 'fan_in', 'uniform')``
``'he_normal'``       ``VarianceScaling(2.0, 'fan_in', 'truncated_normal')``
``'lecun_uniform'``   ``VarianceScaling(1.0, 'fan_in', 'uniform')``
``'lecun_normal'``    ``VarianceScaling(1.0, 'fan_in', 'truncated_normal')``
====================  ==================================================

and with the same ``random_state`` an estimator draws the same weights from the
name and from the object (``VarianceScaling.from_name(name)``). The object adds
the combinations the names do not have, e.g. He with ``mode='fan_avg'`` (the
chapter's example), and its parameters can be grid-searched::

    GridSearchCV(MLPClassifier(kernel_initializer=VarianceScaling(2.0)),
                 {"kernel_initializer__mode": ["fan_in", "fan_avg"]})
"""

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from ._init import _SPECS, _TRUNC_STD, _truncated_standard_normal

__all__ = ["VarianceScaling"]

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

# name -> (scale, mode, distribution), the table in the module docstring: the
# named initializers of _init.py, whose "normal" is Keras's truncated normal.
PRESETS = {name: (scale, mode, "truncated_normal" if dist == "normal" else dist)
           for name, (scale, mode, dist) in _SPECS.items()}


class VarianceScaling(BaseEstimator):
    """Kernels with variance ``scale / n`` (Keras 3 ``VarianceScaling``).

    ``n`` is ``fan_in``, ``fan_out`` or ``(fan_in + fan_out) / 2`` depending
    on ``mode``. Distributions:

    - ``'truncated_normal'``: N(0, stddev²) cut at ±2·stddev, with
      ``stddev = sqrt(scale / n) / 0.87962566103423978`` (the divisor is the
      standard deviation of a standard normal cut at ±2, so the variance is
      exactly ``scale / n``);
    - ``'untruncated_normal'``: N(0, scale / n);
    - ``'uniform'``: U(-limit, limit) with ``limit = sqrt(3 * scale / n)``.

    Pass an instance as ``kernel_initializer`` to fastnn's estimators (hidden
    layers; the output layer keeps Glorot uniform, biases start at 0).

    There is no ``seed``: inside an estimator the kernels are drawn from the
    estimator's ``random_state`` stream, like the named initializers, so
    ``random_state`` alone decides the starting weights and a clone draws the
    same ones. Called directly, ``random_state`` is an argument of
    :meth:`__call__`.

    Parameters
    ----------
    scale : float, default=1.0
        Variance multiplier, > 0 (2 for He, 1 for Glorot and LeCun).
    mode : {'fan_in', 'fan_out', 'fan_avg'}, default='fan_in'
    distribution : {'truncated_normal', 'untruncated_normal', 'uniform'}, \
            default='truncated_normal'

    Examples
    --------
    >>> from fastnn import MLPClassifier
    >>> from fastnn.initializers import VarianceScaling
    >>> he_avg = VarianceScaling(scale=2.0, mode="fan_avg", distribution="uniform")
    >>> clf = MLPClassifier(activation="elu", kernel_initializer=he_avg)
    >>> VarianceScaling.from_name("he_normal")
    VarianceScaling(scale=2.0)
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        self.scale = scale
        self.mode = mode
        self.distribution = distribution

    @classmethod
    def from_name(cls, name):
        """The object equivalent to a named initializer (table above).

        Parameters
        ----------
        name : str
            One of ``'glorot_uniform'``, ``'glorot_normal'``, ``'he_uniform'``,
            ``'he_normal'``, ``'lecun_uniform'``, ``'lecun_normal'``.

        Returns
        -------
        initializer : VarianceScaling
        """
        if name not in PRESETS:
            raise ValueError(f"name must be one of {', '.join(map(repr, PRESETS))}, "
                             f"got {name!r}.")
        scale, mode, distribution = PRESETS[name]
        return cls(scale=scale, mode=mode, distribution=distribution)

    def _check_params(self):
        if (not isinstance(self.scale, numbers.Real) or isinstance(self.scale, bool)
                or not math.isfinite(self.scale) or self.scale <= 0):
            raise ValueError(f"VarianceScaling scale must be a finite number > 0, "
                             f"got {self.scale!r}.")
        if self.mode not in MODES:
            raise ValueError(f"VarianceScaling mode must be one of {MODES}, got {self.mode!r}.")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"VarianceScaling distribution must be one of {DISTRIBUTIONS}, "
                             f"got {self.distribution!r}.")

    def draw_kernel(self, fan_in, fan_out, rng, dtype=np.float64):
        """A ``(fan_in, fan_out)`` kernel drawn from ``rng`` (the hook the
        estimators call, through ``fastnn._init.init_kernel``).

        Values are drawn in float64 with the same calls as the named
        initializers, then cast to ``dtype``.
        """
        self._check_params()
        for arg, val in (("fan_in", fan_in), ("fan_out", fan_out)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"{arg} must be an integer >= 1, got {val!r}.")
        n = {"fan_in": fan_in, "fan_out": fan_out,
             "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        shape = (int(fan_in), int(fan_out))
        variance = float(self.scale) / n
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            w = rng.uniform(-limit, limit, size=shape)
        elif self.distribution == "truncated_normal":
            w = _truncated_standard_normal(rng, shape) * (math.sqrt(variance) / _TRUNC_STD)
        else:
            w = rng.standard_normal(shape) * math.sqrt(variance)
        return w.astype(dtype, copy=False)

    def __call__(self, shape, random_state=None, dtype=np.float64):
        """Draw a kernel of ``shape = (fan_in, fan_out)`` (as Keras's
        ``initializer(shape)``).

        Parameters
        ----------
        shape : tuple of two ints
        random_state : int, RandomState instance or None, default=None
            As scikit-learn's ``random_state``.
        dtype : floating dtype, default=np.float64

        Returns
        -------
        kernel : ndarray of shape ``shape``
        """
        if len(shape) != 2:
            raise ValueError(f"shape must be (fan_in, fan_out), got {shape!r}.")
        return self.draw_kernel(shape[0], shape[1], check_random_state(random_state), dtype)
