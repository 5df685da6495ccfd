"""The chapter's two default configurations (Géron, *Hands-On Machine
Learning*, ch. 11, "Summary and Practical Guidelines"), one call each.

Each function returns an ordinary, unfitted fastnn estimator (or a
``Pipeline`` with a ``StandardScaler`` in front when ``standardize=True``):
keyword overrides are applied with ``set_params``, so anything can be changed,
and the result can be cloned and grid-searched like any estimator::

    from fastnn import presets
    clf = presets.deep_default(hidden_layer_sizes=(100,) * 8)   # BatchNorm: deep
    GridSearchCV(clf, {"learning_rate__max_lr": [1e-3, 3e-3], "alpha": [0, 1e-3]})

Both start training with 1cycle (:class:`fastnn.schedules.OneCycle`), which
plans its cycle over ``max_iter`` epochs: ``max_iter`` is the training length
(25 epochs, the chapter's 1cycle example), and the peak rate is
``learning_rate_init`` unless ``learning_rate__max_lr`` is set.
:func:`fastnn.find_learning_rate` suggests one.
"""

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._mlp import MLPClassifier, MLPRegressor
from .schedules import OneCycle

__all__ = ["deep_default", "self_normalizing", "DEEP_HIDDEN_LAYERS"]

#: A network with at least this many hidden layers counts as deep (BatchNorm
#: in :func:`deep_default`). The chapter gives no number; its shallow examples
#: have 2 or 3 hidden layers, its deep ones 20 or more.
DEEP_HIDDEN_LAYERS = 5

#: Epochs of the 1cycle schedule (the chapter's 1cycle example trains 25).
N_EPOCHS = 25

_TASKS = {"classification": MLPClassifier, "regression": MLPRegressor}


def _build(task, settings, overrides, standardize):
    if task not in _TASKS:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}.")
    est = _TASKS[task](**settings)
    est.set_params(**overrides)  # raises ValueError for an unknown name, as sklearn
    return make_pipeline(StandardScaler(), est) if standardize else est


def _n_hidden(overrides):
    sizes = overrides.get("hidden_layer_sizes", (100,))
    return len(sizes) if hasattr(sizes, "__len__") else 1


def deep_default(task="classification", *, standardize=False, **overrides):
    """The chapter's default configuration for a deep network.

    ==========================  ===============================================
    chapter's table             fastnn setting
    ==========================  ===============================================
    Kernel initializer: He      ``kernel_initializer='he_normal'``
    Activation: ELU             ``activation='elu'``
    Normalization: none if      ``batch_norm=True`` when there are at least
    shallow, BatchNorm if deep  :data:`DEEP_HIDDEN_LAYERS` hidden layers
    Regularization: early       ``early_stopping=True``,
    stopping (+ l2 if needed)   ``restore_best_weights=True``, ``alpha=0.0``
                                (raise ``alpha``, the l2 penalty, if needed)
    Optimizer: momentum (or     ``solver='nadam'`` (Nadam's defaults need the
    RMSProp or Nadam)           least tuning; ``solver='sgd'`` with
                                ``momentum=0.9`` needs a larger rate)
    Learning rate schedule:     ``learning_rate=OneCycle()``,
    1cycle                      ``max_iter=25``
    ==========================  ===============================================

    This is the table of the second edition, as the issue states it; the third
    edition's (Table 11-3) changes the activation to ReLU if shallow, Swish if
    deep, the optimizer to Nesterov momentum or AdamW and allows performance
    scheduling: ``deep_default(activation='swish', solver='sgd',
    learning_rate_init=0.1)`` or ``learning_rate='plateau'``.

    Parameters
    ----------
    task : {'classification', 'regression'}, default='classification'
        :class:`fastnn.MLPClassifier` or :class:`fastnn.MLPRegressor`.
    standardize : bool, default=False
        Return ``make_pipeline(StandardScaler(), estimator)`` (then
        grid-search the estimator's parameters with the ``mlpclassifier__`` or
        ``mlpregressor__`` prefix).
    **overrides
        Any estimator parameter, applied after the table's settings (nested
        ones too, e.g. ``learning_rate__max_lr=0.01``). "Deep" is decided from
        the ``hidden_layer_sizes`` given here (default ``(100,)``, shallow); an
        explicit ``batch_norm`` wins.

    Returns
    -------
    estimator : MLPClassifier, MLPRegressor or Pipeline
        Unfitted.
    """
    settings = dict(kernel_initializer="he_normal", activation="elu",
                    batch_norm=_n_hidden(overrides) >= DEEP_HIDDEN_LAYERS,
                    early_stopping=True, restore_best_weights=True, alpha=0.0,
                    solver="nadam", learning_rate=OneCycle(), max_iter=N_EPOCHS)
    return _build(task, settings, overrides, standardize)


def self_normalizing(task="classification", *, standardize=True, **overrides):
    """The chapter's configuration for a self-normalizing network.

    ==========================  ===============================================
    chapter's table             fastnn setting
    ==========================  ===============================================
    Kernel initializer: LeCun   ``kernel_initializer='lecun_normal'``
    Activation: SELU            ``activation='selu'``
    Normalization: none (self-  ``batch_norm=False``; inputs standardized
    normalization)              (``StandardScaler`` in front, see
                                ``standardize``): SELU's fixed point needs
                                inputs with mean 0 and variance 1
    Regularization: alpha       ``dropout_kind='alpha'``, ``dropout=0.0``
    dropout if needed           (raise ``dropout``, e.g. 0.1, if needed),
                                ``alpha=0.0``
    Optimizer: momentum (or     ``solver='nadam'``
    RMSProp or Nadam)
    Learning rate schedule:     ``learning_rate=OneCycle()``,
    1cycle                      ``max_iter=25``
    ==========================  ===============================================

    Self-normalization also needs a plain stack of Dense layers (no skip
    connections, no other regularization than alpha dropout). The third
    edition's table (11-4) has Nesterov momentum as optimizer and allows
    performance scheduling.

    Parameters
    ----------
    task : {'classification', 'regression'}, default='classification'
        :class:`fastnn.MLPClassifier` or :class:`fastnn.MLPRegressor`.
    standardize : bool, default=True
        Return ``make_pipeline(StandardScaler(), estimator)`` (grid-search the
        estimator's parameters with the ``mlpclassifier__`` or
        ``mlpregressor__`` prefix). Set False for inputs already standardized
        to get the estimator itself.
    **overrides
        Any estimator parameter, applied after the table's settings.

    Returns
    -------
    estimator : Pipeline, MLPClassifier or MLPRegressor
        Unfitted.
    """
    settings = dict(kernel_initializer="lecun_normal", activation="selu", batch_norm=False,
                    dropout=0.0, dropout_kind="alpha", alpha=0.0, solver="nadam",
                    learning_rate=OneCycle(), max_iter=N_EPOCHS)
    return _build(task, settings, overrides, standardize)
