"""fastnn: fast multilayer perceptrons on the CPU behind the scikit-learn API.

``fastnn.MLPClassifier`` and ``fastnn.MLPRegressor`` are drop-in replacements
for scikit-learn's MLP estimators whose training loop runs in a C/OpenMP core,
and which add the techniques of "Training Deep Neural Networks" (Géron,
*Hands-On Machine Learning*, ch. 11) as constructor parameters.
"""

from . import initializers, schedules
from ._base import DivergenceError
from ._mlp import MLPClassifier, MLPRegressor
from . import presets
from .lr_finder import find_learning_rate
from ._progress import GradientWarning
from .plot import plot_history

__version__ = "0.1.0"
__all__ = ["MLPClassifier", "MLPRegressor", "DivergenceError", "GradientWarning", "plot_history",
           "find_learning_rate", "initializers", "presets", "schedules", "__version__"]
