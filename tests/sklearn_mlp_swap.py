"""pytest plugin: run scikit-learn's own MLP tests against fastnn.

Loaded with ``-p sklearn_mlp_swap`` by tests/test_sklearn_suite.py, before
pytest collects scikit-learn's installed ``neural_network/tests/test_mlp.py``.
It swaps fastnn's estimators into ``sklearn.neural_network`` (so the test
module's ``from sklearn.neural_network import MLPClassifier, MLPRegressor``
imports fastnn's) and deselects the tests that read scikit-learn's private
internals, which fastnn does not have.
"""

import pytest
import sklearn.neural_network

import fastnn

#: test name -> why it cannot run on fastnn (it reads a private attribute).
PRIVATE_INTERNALS = {
    "test_gradient": "calls sklearn's private _loss_grad_lbfgs (fastnn computes the "
                     "gradient in C; tests/test_gradients.py checks it)",
    "test_learning_rate_warmstart": "reads sklearn's private _optimizer.learning_rate",
    "test_adaptive_learning_rate": "reads sklearn's private _optimizer.learning_rate",
}


def pytest_configure(config):
    # In the hook, not at import: tests/test_sklearn_suite.py imports this
    # module for PRIVATE_INTERNALS without swapping anything in its process.
    sklearn.neural_network.MLPClassifier = fastnn.MLPClassifier
    sklearn.neural_network.MLPRegressor = fastnn.MLPRegressor


def pytest_collection_modifyitems(config, items):
    kept, dropped = [], []
    for item in items:
        module = getattr(item, "module", None)
        if getattr(module, "MLPClassifier", fastnn.MLPClassifier) is not fastnn.MLPClassifier:
            raise pytest.UsageError(f"{module.__name__} did not import fastnn's estimators")
        name = getattr(item, "originalname", None) or item.name
        (dropped if name in PRIVATE_INTERNALS else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config):
    return ("sklearn_mlp_swap: sklearn.neural_network.MLPClassifier/MLPRegressor are "
            "fastnn's; deselected: " + ", ".join(sorted(PRIVATE_INTERNALS)))
