"""Kernel initializers (NumPy), with Keras 3 ``VarianceScaling`` semantics.

========================  =====  ========  =====================================
name                      scale  fan       distribution
========================  =====  ========  =====================================
``glorot_uniform``        1      fan_avg   U(-limit, limit), limit = sqrt(3 scale / fan)
``glorot_normal``         1      fan_avg   truncated normal (see below)
``he_uniform``            2      fan_in    uniform
``he_normal``             2      fan_in    truncated normal
``lecun_uniform``         1      fan_in    uniform
``lecun_normal``          1      fan_in    truncated normal
========================  =====  ========  =====================================

``fan_avg = (fan_in + fan_out) / 2``. The truncated normal is N(0, stddev²)
cut at ±2·stddev with ``stddev = sqrt(scale / fan) / 0.87962566103423978``;
the divisor restores the variance to exactly ``scale / fan``.
Biases are not handled here: they start at 0.
"""

import numpy as np

from ._core import AUTO_INITIALIZER

__all__ = ["INITIALIZERS", "resolve_initializer", "init_kernel"]

# name -> (scale, fan mode, distribution)
_SPECS = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "normal"),
}

#: Valid values of the estimators' ``kernel_initializer`` parameter.
INITIALIZERS = ("auto",) + tuple(_SPECS)

# stddev of a standard normal truncated to [-2, 2] (Keras' constant).
_TRUNC_STD = 0.87962566103423978


def _unknown(name):
    return ValueError(
        "kernel_initializer must be one of "
        f"{', '.join(repr(n) for n in INITIALIZERS)}, got {name!r}."
    )


def resolve_initializer(name, activation):
    """Resolve ``'auto'`` to a concrete initializer for a layer's activation.

    ``'auto'`` takes the activation's ``auto_init`` entry in the C core's
    activation registry (``csrc/fastnn.h``), today:
    ``'he_uniform'`` for relu, leaky_relu, elu and swish,
    ``'lecun_normal'`` for selu (the self-normalizing setting recommended by
    Klambauer et al., Keras and Géron) and ``'glorot_uniform'`` for anything
    else (identity, logistic, tanh, ...). For tanh/identity this is exactly
    scikit-learn's own initialization of the weights (U(±sqrt(6/(fan_in +
    fan_out)))); for logistic scikit-learn uses a bound sqrt(2) times smaller.

    Parameters
    ----------
    name : str
        One of :data:`INITIALIZERS`.
    activation : str
        The activation following the layer.

    Returns
    -------
    name : str
        A concrete initializer name (never ``'auto'``).

    Raises
    ------
    ValueError
        If ``name`` is not a valid initializer.
    """
    if hasattr(name, "draw_kernel"):  # an object, e.g. initializers.VarianceScaling
        return name
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise _unknown(name)
    if name != "auto":
        return name
    return AUTO_INITIALIZER.get(activation, "glorot_uniform")


def _truncated_standard_normal(rng, size):
    """Standard normal truncated to [-2, 2], by rejection (deterministic)."""
    out = rng.standard_normal(size)
    flat = out.reshape(-1)
    bad = np.flatnonzero(np.abs(flat) > 2.0)
    while bad.size:
        flat[bad] = rng.standard_normal(bad.size)
        bad = bad[np.abs(flat[bad]) > 2.0]
    return out


def init_kernel(name, fan_in, fan_out, rng, dtype=np.float64):
    """Draw a Dense kernel of shape ``(fan_in, fan_out)``.

    Parameters
    ----------
    name : str
        A concrete initializer (one of :data:`INITIALIZERS` except ``'auto'``;
        see :func:`resolve_initializer`).
    fan_in, fan_out : int
        Number of inputs and outputs of the layer, >= 1.
    rng : numpy.random.RandomState
        Source of randomness (``sklearn.utils.check_random_state`` output).
    dtype : dtype, default=np.float64
        Floating dtype of the result; values are drawn in float64 then cast.

    Returns
    -------
    kernel : ndarray of shape (fan_in, fan_out)

    Raises
    ------
    ValueError
        For an unknown name, ``'auto'``, non-positive fans or a non-float dtype.
    """
    if hasattr(name, "draw_kernel"):  # an object, e.g. initializers.VarianceScaling
        return name.draw_kernel(fan_in, fan_out, rng, dtype)
    if not isinstance(name, str) or name not in _SPECS:
        if name == "auto":
            raise ValueError(
                "kernel_initializer 'auto' must be resolved with "
                "resolve_initializer() before init_kernel()."
            )
        raise _unknown(name)
    for arg, val in (("fan_in", fan_in), ("fan_out", fan_out)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{arg} must be an integer >= 1, got {val!r}.")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating dtype, got {dtype}.")

    scale, mode, dist = _SPECS[name]
    fan = fan_in if mode == "fan_in" else (fan_in + fan_out) / 2.0
    shape = (int(fan_in), int(fan_out))
    if dist == "uniform":
        limit = np.sqrt(3.0 * scale / fan)
        w = rng.uniform(-limit, limit, size=shape)
    else:
        stddev = np.sqrt(scale / fan) / _TRUNC_STD
        w = _truncated_standard_normal(rng, shape) * stddev
    return w.astype(dtype, copy=False)
