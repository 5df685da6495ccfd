"""Tests for fastnn.presets: the chapter's two default configurations."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fastnn import MLPClassifier, MLPRegressor, presets
from fastnn.schedules import OneCycle

# The chapter's tables (Géron, ch. 11, "Summary and Practical Guidelines"),
# written down here independently of the module.
DEEP = dict(kernel_initializer="he_normal", activation="elu", early_stopping=True,
            restore_best_weights=True, alpha=0.0, solver="nadam")
SELF_NORMALIZING = dict(kernel_initializer="lecun_normal", activation="selu", batch_norm=False,
                        dropout=0.0, dropout_kind="alpha", alpha=0.0, solver="nadam")


def check_settings(est, expected):
    params = est.get_params()
    for name, value in expected.items():
        assert params[name] == value, name
    assert isinstance(est.learning_rate, OneCycle)  # 1cycle, with its defaults
    assert est.learning_rate.get_params() == OneCycle().get_params()


@pytest.mark.parametrize("task, cls", [("classification", MLPClassifier),
                                       ("regression", MLPRegressor)])
def test_deep_default_is_the_chapters_table(task, cls):
    est = presets.deep_default(task)
    assert type(est) is cls
    check_settings(est, DEEP)
    assert est.batch_norm is False  # (100,) is shallow
    deep = presets.deep_default(task, hidden_layer_sizes=(50,) * 10)
    assert deep.batch_norm is True and deep.hidden_layer_sizes == (50,) * 10
    check_settings(deep, DEEP)
    assert presets.deep_default(task, hidden_layer_sizes=(50,) * 4).batch_norm is False
    # an explicit choice wins over the depth rule
    assert presets.deep_default(task, hidden_layer_sizes=(50,) * 10,
                                batch_norm="after").batch_norm == "after"


@pytest.mark.parametrize("task, cls", [("classification", MLPClassifier),
                                       ("regression", MLPRegressor)])
def test_self_normalizing_is_the_chapters_table(task, cls):
    pipe = presets.self_normalizing(task)
    assert isinstance(pipe, Pipeline) and len(pipe.steps) == 2
    scaler, est = pipe.steps[0][1], pipe.steps[1][1]
    assert isinstance(scaler, StandardScaler) and scaler.with_mean and scaler.with_std
    assert type(est) is cls
    check_settings(est, SELF_NORMALIZING)
    bare = presets.self_normalizing(task, standardize=False)
    assert type(bare) is cls
    check_settings(bare, SELF_NORMALIZING)


def test_settings_survive_fit_and_train_well():
    X, y = make_classification(n_samples=400, n_features=10, n_informative=6,
                               random_state=0)
    X = X * 50 + 3  # self-normalization needs the scaler in front
    small = dict(batch_size=32, learning_rate__max_lr=0.01, random_state=0)
    for est in (presets.self_normalizing(**small),
                presets.deep_default(standardize=True, hidden_layer_sizes=(16,) * 5, **small)):
        est.fit(X, y)
        assert est.score(X, y) > 0.85
    mlp = est[-1]
    assert mlp.bn_gamma_[1] is not None  # deep: BatchNorm on hidden layers
    assert len(mlp.history_["val_score"]) >= 1  # early stopping validated each epoch


def test_alpha_dropout_when_dropout_is_raised():
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    est = presets.self_normalizing(standardize=False, dropout=0.1, max_iter=2,
                                   random_state=0)
    assert est._alpha_dropout(["selu"]) is True
    est.fit(X, y)
    assert est.dropout == 0.1


def test_overrides_are_plain_parameters():
    est = presets.deep_default("regression", solver="sgd", learning_rate_init=0.05,
                               learning_rate__max_lr=0.1, max_iter=7, random_state=3)
    assert est.solver == "sgd" and est.learning_rate.max_lr == 0.1 and est.max_iter == 7
    assert est.kernel_initializer == "he_normal"
    c = clone(est)
    assert c.get_params()["learning_rate__max_lr"] == 0.1
    with pytest.raises(ValueError):
        presets.deep_default(no_such_parameter=1)
    with pytest.raises(ValueError, match="task"):
        presets.self_normalizing("clustering")
    # each call has its own schedule object
    assert presets.deep_default().learning_rate is not presets.deep_default().learning_rate


def test_grid_search_over_preset_parameters():
    X, y = make_regression(n_samples=120, n_features=5, noise=1.0, random_state=0)
    y = y / y.std()
    search = GridSearchCV(presets.deep_default("regression", hidden_layer_sizes=(8,),
                                               max_iter=4, random_state=0),
                          {"learning_rate__max_lr": [1e-3, 1e-2], "alpha": [0.0, 1e-3]},
                          cv=2)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    best = search.best_estimator_
    assert best.activation == "elu" and best.learning_rate.max_lr in (1e-3, 1e-2)
    pipe_search = GridSearchCV(presets.self_normalizing("regression", max_iter=3,
                                                        random_state=0),
                               {"mlpregressor__dropout": [0.0, 0.1]}, cv=2)
    pipe_search.fit(X, y)
    assert pipe_search.best_estimator_[-1].activation == "selu"
    assert np.isfinite(pipe_search.best_score_)
