"""Tests for fastnn.initializers.VarianceScaling: its distributions against the
formulas (FORMULAS.md) and Keras 3, its use as an estimator's kernel_initializer."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from fastnn import MLPClassifier, MLPRegressor
from fastnn.initializers import VarianceScaling

FAN_IN, FAN_OUT = 300, 700  # fan_in, fan_out and fan_avg all differ
TRUNC_STD = 0.87962566103423978


def fan(mode):
    return {"fan_in": FAN_IN, "fan_out": FAN_OUT, "fan_avg": (FAN_IN + FAN_OUT) / 2}[mode]


def reference_distribution(scale, mode, distribution):
    """scipy distribution of one weight, written from the formulas, and its bound."""
    n = fan(mode)
    if distribution == "uniform":
        limit = np.sqrt(3 * scale / n)
        return stats.uniform(loc=-limit, scale=2 * limit), limit
    if distribution == "truncated_normal":
        std = np.sqrt(scale / n) / TRUNC_STD
        return stats.truncnorm(-2, 2, scale=std), 2 * std
    return stats.norm(scale=np.sqrt(scale / n)), np.inf


CASES = [(s, m, d) for s in (0.5, 2.0) for m in ("fan_in", "fan_out", "fan_avg")
         for d in ("truncated_normal", "untruncated_normal", "uniform")]


@pytest.mark.parametrize("scale, mode, distribution", CASES)
def test_distribution_matches_formula(scale, mode, distribution):
    w = VarianceScaling(scale, mode, distribution)((FAN_IN, FAN_OUT), random_state=0)
    assert w.shape == (FAN_IN, FAN_OUT) and w.dtype == np.float64
    ref, bound = reference_distribution(scale, mode, distribution)
    # the variance is scale / n whatever the distribution
    np.testing.assert_allclose(w.var(), scale / fan(mode), rtol=0.02)
    assert abs(w.mean()) < 4 * np.sqrt(scale / fan(mode) / w.size)
    assert np.abs(w).max() <= bound
    # the whole shape: Kolmogorov-Smirnov on a subsample (independent draws)
    assert stats.kstest(w.ravel()[:20000], ref.cdf).pvalue > 1e-3


def test_truncated_normal_reaches_its_cut():
    # cut at 2 stddev of the underlying normal, not at 2 sqrt(scale / n)
    w = VarianceScaling(1.0, "fan_in", "truncated_normal")((FAN_IN, FAN_OUT), random_state=1)
    cut = 2 * np.sqrt(1.0 / FAN_IN) / TRUNC_STD
    assert 0.97 * cut < np.abs(w).max() <= cut
    w = VarianceScaling(1.0, "fan_in", "untruncated_normal")((FAN_IN, FAN_OUT), random_state=1)
    assert np.abs(w).max() > 1.2 * cut


@pytest.mark.parametrize("scale, mode, distribution", CASES[::4] + CASES[2::4])
def test_statistics_match_keras(scale, mode, distribution):
    keras = pytest.importorskip("keras")
    ours = VarianceScaling(scale, mode, distribution)((FAN_IN, FAN_OUT), random_state=0)
    theirs = np.asarray(keras.initializers.VarianceScaling(
        scale=scale, mode=mode, distribution=distribution, seed=0)((FAN_IN, FAN_OUT)),
        dtype=np.float64)
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.03)
    np.testing.assert_allclose(np.abs(ours).max(), np.abs(theirs).max(),
                               rtol=0.03 if distribution != "untruncated_normal" else 0.3)
    assert stats.ks_2samp(ours.ravel()[:20000], theirs.ravel()[:20000]).pvalue > 1e-3


NAMED = ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
         "lecun_normal"]


@pytest.mark.parametrize("name", NAMED)
def test_named_initializers_are_presets(name):
    X, y = make_classification(n_samples=60, n_features=7, random_state=0)
    by_name = MLPClassifier((9, 5), kernel_initializer=name, max_iter=1, random_state=3)
    by_object = clone(by_name).set_params(kernel_initializer=VarianceScaling.from_name(name))
    by_name.partial_fit(X, y, classes=[0, 1])
    by_object.partial_fit(X, y, classes=[0, 1])
    for wa, wb in zip(by_name.coefs_, by_object.coefs_):
        np.testing.assert_array_equal(wa, wb)


def test_presets_table():
    he = VarianceScaling.from_name("he_normal")
    assert he.get_params() == dict(scale=2.0, mode="fan_in", distribution="truncated_normal")
    assert VarianceScaling.from_name("glorot_uniform").get_params() == dict(
        scale=1.0, mode="fan_avg", distribution="uniform")
    assert VarianceScaling.from_name("lecun_normal").get_params() == dict(
        scale=1.0, mode="fan_in", distribution="truncated_normal")
    with pytest.raises(ValueError, match="he_normal"):
        VarianceScaling.from_name("auto")


def test_hidden_kernels_follow_the_object():
    # He with fan_avg (the chapter's example): hidden kernels have variance 2 / fan_avg
    X, y = make_classification(n_samples=50, n_features=400, random_state=0)
    init = VarianceScaling(2.0, "fan_avg", "uniform")
    # a negligible rate: one epoch leaves the initial kernels as drawn (to 1e-9)
    clf = MLPClassifier((600,), kernel_initializer=init, learning_rate_init=1e-12,
                        max_iter=1, random_state=0)
    clf.partial_fit(X, y, classes=[0, 1])
    w = clf.coefs_[0]
    np.testing.assert_allclose(w.var(), 2.0 / 500, rtol=0.03)
    assert np.sqrt(6.0 / 500) * 0.99 < np.abs(w).max() <= np.sqrt(6.0 / 500) + 1e-9
    assert init.get_params()["mode"] == "fan_avg"  # the estimator's object is untouched
    assert not hasattr(init, "scale_")


def test_same_random_state_same_weights_and_float32():
    X, y = make_classification(n_samples=40, n_features=6, random_state=0)
    make = lambda: MLPRegressor(hidden_layer_sizes=(8,), kernel_initializer=VarianceScaling(3.0, "fan_out"),  # noqa: E731
                                max_iter=1, random_state=5)
    a, b = make(), make()
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    c = make().partial_fit(X.astype(np.float32), y)
    assert c.coefs_[0].dtype == np.float32


def test_grid_search_over_initializer_parameters():
    X, y = make_classification(n_samples=90, n_features=5, random_state=0)
    est = MLPClassifier((6,), activation="elu", kernel_initializer=VarianceScaling(2.0),
                        max_iter=3, random_state=0)
    assert "kernel_initializer__mode" in est.get_params()
    search = GridSearchCV(est, {"kernel_initializer__mode": ["fan_in", "fan_avg"],
                                "kernel_initializer__scale": [1.0, 2.0]}, cv=2)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.kernel_initializer.mode in ("fan_in", "fan_avg")
    assert est.kernel_initializer.mode == "fan_in"


@pytest.mark.parametrize("bad", [dict(scale=0), dict(scale=-1.0), dict(scale=np.inf),
                                 dict(scale="2"), dict(mode="fan_sum"),
                                 dict(distribution="normal")])
def test_bad_parameters_raise_at_fit(bad):
    X, y = make_classification(n_samples=30, n_features=4, random_state=0)
    clf = MLPClassifier((3,), kernel_initializer=VarianceScaling(**bad), max_iter=1)
    with pytest.raises(ValueError, match="VarianceScaling"):
        clf.fit(X, y)


def test_other_objects_are_rejected():
    X, y = make_classification(n_samples=30, n_features=4, random_state=0)
    with pytest.raises(ValueError, match="kernel_initializer"):
        MLPClassifier((3,), kernel_initializer=object(), max_iter=1).fit(X, y)
