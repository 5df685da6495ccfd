"""Transfer learning: start a model from another model's lower layers.

The chapter's recipe ("Reusing Pretrained Layers"): train model A, build B
from A's hidden layers and a fresh output layer, train B a few epochs with
the reused layers frozen, then unfreeze them and go on with a lower rate::

    B = fastnn.MLPClassifier(hidden_layer_sizes=A.hidden_layer_sizes,
                             initial_layers=fastnn.reuse_layers(A),
                             frozen_layers=len(A.coefs_) - 1, warm_start=True)
    B.fit(X_B, y_B)                          # reused layers frozen
    B.set_params(frozen_layers=0, learning_rate_init=1e-4)
    B.fit(X_B, y_B)                          # warm start: every layer trains

``initial_layers`` holds plain arrays (or a ``FrozenEstimator``), so
``clone`` and ``GridSearchCV`` copy it with the estimator.
"""

import numpy as np

__all__ = ["reuse_layers"]

_ARRAY_LISTS = ("coefs", "intercepts", "bn_gamma", "bn_beta", "bn_moving_mean",
                "bn_moving_var")


def _fitted_source(source):
    """The fitted MLP inside `source` (unwrapping sklearn's FrozenEstimator)."""
    inner = getattr(source, "estimator", None)
    if inner is not None and type(source).__name__ == "FrozenEstimator":
        source = inner
    if not isinstance(getattr(source, "coefs_", None), list):
        raise ValueError(
            f"Cannot reuse the layers of {type(source).__name__}: it is not a fitted "
            "multilayer perceptron (no coefs_). Fit it first; as a constructor parameter "
            "(initial_layers) wrap it in sklearn.frozen.FrozenEstimator, or pass "
            "fastnn.reuse_layers(model): clone() would otherwise copy it unfitted.")
    return source


def reuse_layers(source, n_layers=None):
    """The first hidden layers of a fitted MLP as plain arrays, for the
    ``initial_layers`` parameter of a new fastnn estimator.

    Parameters
    ----------
    source : fitted fastnn or sklearn.neural_network MLPClassifier/MLPRegressor
        Also accepted inside ``sklearn.frozen.FrozenEstimator``.
    n_layers : int, default=None
        How many hidden layers to reuse, counted from the input; None: all of
        them (the output layer is never reused: the new model gets a fresh
        one, as Keras's ``Sequential(model_A.layers[:-1])``).

    Returns
    -------
    layers : dict
        ``coefs`` and ``intercepts`` (one copy per reused Dense layer),
        ``activation`` (their activations), ``batch_norm`` and
        ``batch_norm_input`` (the source's BatchNorm placement) and, for a
        fastnn source, ``bn_gamma``, ``bn_beta``, ``bn_moving_mean``,
        ``bn_moving_var`` for BN slots 0..n_layers (None where there is no
        BatchNorm; slot 0 is the input BatchNorm). Plain arrays, lists and
        strings: ``clone`` deep-copies them.
    """
    src = _fitted_source(source)
    n_hidden = len(src.coefs_) - 1
    if n_layers is None:
        n_layers = n_hidden
    if isinstance(n_layers, bool) or not isinstance(n_layers, (int, np.integer)) \
            or not 1 <= n_layers <= n_hidden:
        raise ValueError(f"n_layers must be an int between 1 and the source's number of "
                         f"hidden layers ({n_hidden}), got {n_layers!r}.")
    n = int(n_layers)
    if hasattr(src, "bn_gamma_"):  # a fastnn model
        activation = src._hidden_activations(n_hidden)[:n]
        batch_norm, batch_norm_input = src._batch_norm_mode(), bool(src.batch_norm_input)
        bn = {name: [None if a is None else np.array(a) for a in
                     getattr(src, name + "_")[:n + 1]]
              for name in _ARRAY_LISTS[2:]}
    else:  # scikit-learn's MLP: one activation, no BatchNorm
        activation = [src.activation] * n
        batch_norm, batch_norm_input = False, False
        bn = {name: [None] * (n + 1) for name in _ARRAY_LISTS[2:]}
    return {"coefs": [np.array(w) for w in src.coefs_[:n]],
            "intercepts": [np.array(b) for b in src.intercepts_[:n]],
            "activation": list(activation), "batch_norm": batch_norm,
            "batch_norm_input": batch_norm_input, **bn}


def copy_initial_layers(est, initial_layers, layer_units, hidden_acts):
    """Overwrite the freshly initialized first layers of `est` (coefs_,
    intercepts_, bn_*_) with those of `initial_layers` (a reuse_layers dict
    or a fitted estimator); a ValueError names any mismatch."""
    layers = initial_layers
    if not isinstance(layers, dict):
        layers = reuse_layers(layers)
    missing = [k for k in ("coefs", "intercepts", "activation", "batch_norm",
                           "batch_norm_input") if k not in layers]
    if missing:
        raise ValueError(f"initial_layers lacks {missing}; build it with "
                         "fastnn.reuse_layers(model).")
    n = len(layers["coefs"])
    n_hidden = len(layer_units) - 2
    if not 1 <= n <= n_hidden:
        raise ValueError(f"initial_layers holds {n} layer(s) but this model has {n_hidden} "
                         "hidden layer(s): it reuses only hidden layers (the output layer is "
                         "always new).")
    want_features = np.shape(layers["coefs"][0])[0]
    if want_features != layer_units[0]:
        raise ValueError(f"initial_layers were trained on {want_features} features but X has "
                         f"{layer_units[0]}: the reused layers need the source's inputs.")
    for l in range(n):
        shape = (layer_units[l], layer_units[l + 1])
        if np.shape(layers["coefs"][l]) != shape:
            raise ValueError(
                f"initial_layers' layer {l} has shape {np.shape(layers['coefs'][l])} but this "
                f"model's is {shape}: the first {n} entries of hidden_layer_sizes must be the "
                f"source's {[np.shape(w)[1] for w in layers['coefs']]}.")
        if np.shape(layers["intercepts"][l]) != (shape[1],):
            raise ValueError(f"initial_layers' intercepts[{l}] must have shape ({shape[1]},).")
        if layers["activation"][l] != hidden_acts[l]:
            raise ValueError(f"initial_layers' layer {l} uses activation "
                             f"{layers['activation'][l]!r} but this model's uses "
                             f"{hidden_acts[l]!r}; set activation to match.")
    if layers["batch_norm"] != est._batch_norm_mode() or \
            bool(layers["batch_norm_input"]) != bool(est.batch_norm_input):
        raise ValueError(
            f"initial_layers come from a model with batch_norm={layers['batch_norm']!r}, "
            f"batch_norm_input={layers['batch_norm_input']!r}; this model has "
            f"batch_norm={est._batch_norm_mode()!r}, batch_norm_input="
            f"{bool(est.batch_norm_input)!r}: set the same BatchNorm placement.")
    dtype = est.coefs_[0].dtype
    for l in range(n):
        est.coefs_[l] = np.array(layers["coefs"][l], dtype=dtype)
        est.intercepts_[l] = np.array(layers["intercepts"][l], dtype=dtype)
    for name in _ARRAY_LISTS[2:]:
        target = getattr(est, name + "_")
        for s in range(n + 1):
            if target[s] is None:
                continue
            src = layers.get(name, [None] * (n + 1))[s]
            if src is None or np.shape(src) != target[s].shape:
                raise ValueError(f"initial_layers' {name}[{s}] must be an array of shape "
                                 f"{target[s].shape}.")
            target[s] = np.array(src, dtype=dtype)
