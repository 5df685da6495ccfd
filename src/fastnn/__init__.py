"""fastnn: fast multilayer perceptrons on the CPU behind the scikit-learn API.

``fastnn.MLPClassifier`` and ``fastnn.MLPRegressor`` are drop-in replacements
for scikit-learn's MLP estimators whose training loop runs in a C/OpenMP core,
and which add the techniques of "Training Deep Neural Networks" (Géron,
*Hands-On Machine Learning*, ch. 11) as constructor parameters.
"""

from . import initializers, schedules
from ._base import DOCS_URL, DivergenceError
from ._mlp import MLPClassifier, MLPRegressor
from . import presets
from .lr_finder import find_learning_rate
from ._progress import GradientWarning
from .plot import plot_history
from .transfer import reuse_layers

__version__ = "0.1.0"

#: The types to trust when loading a fastnn model with skops:
#: ``skops.io.load(path, trusted=fastnn.SKOPS_TRUSTED_TYPES)``. The estimators,
#: the schedules of :mod:`fastnn.schedules` that ``learning_rate`` may hold and
#: the initializer objects ``kernel_initializer`` may hold.
SKOPS_TRUSTED_TYPES = [
    f"{cls.__module__}.{cls.__qualname__}"
    for cls in (MLPClassifier, MLPRegressor, initializers.VarianceScaling,
                *(getattr(schedules, name) for name in schedules.__all__))
    if isinstance(cls, type) and cls is not schedules.LearningRateSchedule
]

__all__ = ["MLPClassifier", "MLPRegressor", "DivergenceError", "GradientWarning", "plot_history",
           "find_learning_rate", "initializers", "presets", "schedules", "SKOPS_TRUSTED_TYPES",
           "DOCS_URL", "reuse_layers", "__version__"]
