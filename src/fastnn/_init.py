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
With these Keras initializers biases start at 0.

``sklearn`` is scikit-learn's own scheme (:func:`init_sklearn_layer`): kernel
*and* bias uniform in ±sqrt(factor / (fan_in + fan_out)), factor 6 (2 for
logistic), drawn kernel first, then bias, from the estimator's RandomState, so
that the same ``random_state`` gives scikit-learn's initial weights.
"""

import numpy as np

from ._core import AUTO_INITIALIZER

__all__ = ["INITIALIZERS", "SKLEARN_ACTIVATIONS", "resolve_initializer", "init_kernel",
           "init_sklearn_layer"]

#: Draws per piece when a kernel is drawn in float64 and kept in another dtype.
_DRAW_PIECE = 1 << 16

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
INITIALIZERS = ("auto", "sklearn") + tuple(_SPECS)

#: scikit-learn's hidden activations: 'auto' initializes them as scikit-learn
#: does (their rows of the C core's activation registry say "sklearn").
SKLEARN_ACTIVATIONS = frozenset(a for a, init in AUTO_INITIALIZER.items() if init == "sklearn")

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
    activation registry (``csrc/fastnn.h``): ``'sklearn'`` for scikit-learn's activations (identity,
    logistic, tanh, relu: the same ``random_state`` then gives scikit-learn's
    model), ``'he_uniform'`` for the chapter's leaky_relu, elu and swish,
    ``'lecun_normal'`` for selu (the self-normalizing setting recommended by
    Klambauer et al., Keras and Géron) and ``'glorot_uniform'`` for anything
    else.

    Parameters
    ----------
    name : str
        One of :data:`INITIALIZERS`.
    activation : str
        The activation following the layer.

    Returns
    -------
    name : str
        A concrete initializer name (never ``'auto'``); ``'sklearn'`` is
        drawn by :func:`init_sklearn_layer`, the others by :func:`init_kernel`.

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


def _check_layer_args(fan_in, fan_out, dtype):
    for arg, val in (("fan_in", fan_in), ("fan_out", fan_out)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{arg} must be an integer >= 1, got {val!r}.")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating dtype, got {dtype}.")
    return dtype


def init_sklearn_layer(fan_in, fan_out, activation, rng, dtype=np.float64):
    """scikit-learn's initialization of one Dense layer (Glorot et al.).

    Kernel and bias are uniform in ±sqrt(factor / (fan_in + fan_out)) with
    factor 2 for 'logistic', 6 otherwise, drawn in float64 in this order
    (kernel of shape (fan_in, fan_out), then bias) and then cast: the same
    draws from ``rng`` as scikit-learn's ``MLP._init_coef``.

    Parameters
    ----------
    fan_in, fan_out : int
        Number of inputs and outputs of the layer, >= 1.
    activation : str
        The activation that sets the factor. scikit-learn uses its
        ``activation`` parameter for every layer, the output layer included.
    rng : numpy.random.RandomState
        Source of randomness (``sklearn.utils.check_random_state`` output).
    dtype : dtype, default=np.float64
        Floating dtype of the result.

    Returns
    -------
    kernel : ndarray of shape (fan_in, fan_out)
    bias : ndarray of shape (fan_out,)
    """
    dtype = _check_layer_args(fan_in, fan_out, dtype)
    factor = 2.0 if activation == "logistic" else 6.0
    bound = np.sqrt(factor / (fan_in + fan_out))
    shape = (int(fan_in), int(fan_out))
    if dtype == np.float64:
        kernel = rng.uniform(-bound, bound, shape)
    else:
        # The float64 draws in pieces, each cast as it comes: the same
        # stream, without a float64 copy of the whole kernel (twice the
        # float32 kernel's memory, all of it fresh pages in a new fit).
        kernel = np.empty(shape, dtype)
        flat = kernel.reshape(-1)
        for start in range(0, flat.size, _DRAW_PIECE):
            stop = min(start + _DRAW_PIECE, flat.size)
            flat[start:stop] = rng.uniform(-bound, bound, stop - start)
    bias = rng.uniform(-bound, bound, int(fan_out))
    return kernel, bias.astype(dtype, copy=False)


def init_kernel(name, fan_in, fan_out, rng, dtype=np.float64):
    """Draw a Dense kernel of shape ``(fan_in, fan_out)``.

    Parameters
    ----------
    name : str
        A concrete Keras initializer (one of :data:`INITIALIZERS` except
        ``'auto'`` and ``'sklearn'``; see :func:`resolve_initializer`).
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
        For an unknown name, ``'auto'``, ``'sklearn'``, non-positive fans or a
        non-float dtype.
    """
    if hasattr(name, "draw_kernel"):  # an object, e.g. initializers.VarianceScaling
        return name.draw_kernel(fan_in, fan_out, rng, dtype)
    if not isinstance(name, str) or name not in _SPECS:
        if name == "auto":
            raise ValueError(
                "kernel_initializer 'auto' must be resolved with "
                "resolve_initializer() before init_kernel()."
            )
        if name == "sklearn":
            raise ValueError("kernel_initializer 'sklearn' draws the bias too: use "
                             "init_sklearn_layer().")
        raise _unknown(name)
    dtype = _check_layer_args(fan_in, fan_out, dtype)

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
