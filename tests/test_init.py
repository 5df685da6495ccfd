"""Tests for fastnn._init: kernel initializers with Keras 3 VarianceScaling semantics,
and scikit-learn's own scheme."""

import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats
from sklearn.utils import check_random_state

import fastnn
from fastnn._init import INITIALIZERS, init_kernel, init_sklearn_layer, resolve_initializer

try:  # slow import: once per module
    import keras
except Exception:  # pragma: no cover - depends on the environment
    keras = None

FAN_IN, FAN_OUT = 800, 1250  # non-square, so fan_in / fan_out / fan_avg differ

# written independently of the module: name -> (scale, fan, distribution)
TARGETS = {
    "glorot_uniform": (1.0, (FAN_IN + FAN_OUT) / 2, "uniform"),
    "glorot_normal": (1.0, (FAN_IN + FAN_OUT) / 2, "normal"),
    "he_uniform": (2.0, FAN_IN, "uniform"),
    "he_normal": (2.0, FAN_IN, "normal"),
    "lecun_uniform": (1.0, FAN_IN, "uniform"),
    "lecun_normal": (1.0, FAN_IN, "normal"),
}
CONCRETE = sorted(TARGETS)


def exact_distribution(name):
    scale, fan, dist = TARGETS[name]
    if dist == "uniform":
        limit = np.sqrt(3 * scale / fan)
        return stats.uniform(loc=-limit, scale=2 * limit), limit
    std_raw = np.sqrt(scale / fan) / 0.87962566103423978
    return stats.truncnorm(-2, 2, loc=0, scale=std_raw), 2 * std_raw


@pytest.fixture(scope="module")
def samples():
    return {name: init_kernel(name, FAN_IN, FAN_OUT, check_random_state(42),
                              np.float64)
            for name in CONCRETE}


def test_initializer_names():
    assert isinstance(INITIALIZERS, tuple)
    assert set(INITIALIZERS) == {"auto", "sklearn", *CONCRETE}


@pytest.mark.parametrize("name", CONCRETE)
def test_moments_and_support(name, samples):
    w = samples[name]
    assert w.shape == (FAN_IN, FAN_OUT) and w.dtype == np.float64
    scale, fan, dist = TARGETS[name]
    target_var = scale / fan
    assert abs(w.var() / target_var - 1) < 0.03
    assert abs(w.mean()) < 5 * np.sqrt(target_var / w.size)
    _, bound = exact_distribution(name)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.999 * bound  # the support is actually used
    if dist == "normal":
        # truncation really happens at 2 raw std: no mass in the tails,
        # but about 4.55% (renormalized) of a plain normal would be there
        assert np.mean(np.abs(w) > 1.9 * bound / 2) < 0.02


@pytest.mark.parametrize("name", CONCRETE)
def test_ks_against_exact_distribution(name, samples):
    dist, _ = exact_distribution(name)
    w = samples[name].ravel()
    assert stats.kstest(w, dist.cdf).pvalue > 1e-3


@pytest.mark.parametrize("name", CONCRETE)
def test_ks_rejects_neighbouring_distribution(name, samples):
    # guard: the KS test above has the power to tell the fan modes apart
    scale, fan, dist = TARGETS[name]
    wrong_fan = FAN_OUT if fan != FAN_OUT else FAN_IN
    if dist == "uniform":
        lim = np.sqrt(3 * scale / wrong_fan)
        wrong = stats.uniform(loc=-lim, scale=2 * lim)
    else:
        wrong = stats.norm(scale=np.sqrt(scale / fan))  # untruncated
    assert stats.kstest(samples[name].ravel()[:200_000], wrong.cdf).pvalue < 1e-6


@pytest.mark.parametrize("name", CONCRETE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_determinism(name, dtype):
    a = init_kernel(name, 30, 20, check_random_state(7), dtype)
    b = init_kernel(name, 30, 20, check_random_state(7), dtype)
    c = init_kernel(name, 30, 20, check_random_state(8), dtype)
    assert a.dtype == dtype and a.shape == (30, 20)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # generated in float64, then cast
    ref = init_kernel(name, 30, 20, check_random_state(7), np.float64)
    np.testing.assert_array_equal(a, ref.astype(dtype))
    # the rng advances: two layers from one rng differ
    rng = check_random_state(7)
    assert not np.array_equal(init_kernel(name, 30, 20, rng, dtype),
                              init_kernel(name, 30, 20, rng, dtype))


@given(name=st.sampled_from(CONCRETE), fan_in=st.integers(1, 40),
       fan_out=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_small_shapes_respect_bounds(name, fan_in, fan_out, seed):
    w = init_kernel(name, fan_in, fan_out, check_random_state(seed), np.float64)
    assert w.shape == (fan_in, fan_out)
    scale = {"glorot": 1.0, "he": 2.0, "lecun": 1.0}[name.split("_")[0]]
    fan = (fan_in + fan_out) / 2 if name.startswith("glorot") else fan_in
    if name.endswith("uniform"):
        bound = np.sqrt(3 * scale / fan)
    else:
        bound = 2 * np.sqrt(scale / fan) / 0.87962566103423978
    assert np.all(np.abs(w) <= bound)
    assert np.all(np.isfinite(w))


@pytest.mark.parametrize("activation, expected", [
    ("relu", "sklearn"), ("identity", "sklearn"), ("logistic", "sklearn"),
    ("tanh", "sklearn"),
    ("leaky_relu", "he_uniform"), ("elu", "he_uniform"), ("swish", "he_uniform"),
    ("selu", "lecun_normal"), ("softmax", "glorot_uniform"),
])
def test_auto_resolution(activation, expected):
    assert resolve_initializer("auto", activation) == expected


@pytest.mark.parametrize("name", CONCRETE)
def test_explicit_name_is_kept(name):
    for act in ("relu", "selu", "tanh"):
        assert resolve_initializer(name, act) == name


@pytest.mark.parametrize("bad", ["he", "Glorot_Uniform", "", None, 3, "xavier"])
def test_unknown_name(bad):
    with pytest.raises(ValueError, match="he_uniform.*lecun_normal"):
        resolve_initializer(bad, "relu")
    with pytest.raises(ValueError, match="he_uniform.*lecun_normal"):
        init_kernel(bad, 3, 3, check_random_state(0), np.float64)


def test_auto_must_be_resolved_first():
    with pytest.raises(ValueError, match="resolve_initializer"):
        init_kernel("auto", 3, 3, check_random_state(0), np.float64)
    with pytest.raises(ValueError, match="init_sklearn_layer"):
        init_kernel("sklearn", 3, 3, check_random_state(0), np.float64)


# ------------------------------------------------------------ scikit-learn's scheme
@pytest.mark.parametrize("activation, factor", [("relu", 6), ("tanh", 6), ("identity", 6),
                                                ("selu", 6), ("logistic", 2)])
def test_sklearn_layer_bound_and_draw_order(activation, factor):
    """Kernel then bias, uniform in +-sqrt(factor / (fan_in + fan_out)): the
    same numbers as one uniform draw of fan_in * fan_out + fan_out values."""
    fan_in, fan_out = 30, 20
    bound = np.sqrt(factor / (fan_in + fan_out))
    kernel, bias = init_sklearn_layer(fan_in, fan_out, activation, check_random_state(4))
    assert kernel.shape == (fan_in, fan_out) and bias.shape == (fan_out,)
    flat = check_random_state(4).uniform(-bound, bound, fan_in * fan_out + fan_out)
    np.testing.assert_array_equal(kernel.ravel(), flat[:fan_in * fan_out])
    np.testing.assert_array_equal(bias, flat[fan_in * fan_out:])
    assert np.abs(kernel).max() > 0.9 * bound  # the bound is used, not a smaller one


@pytest.mark.parametrize("fan_in, fan_out", [(5, 3), (700, 300)])
def test_sklearn_layer_float32_is_the_float64_draw_cast(fan_in, fan_out):
    """Also for a kernel drawn in several pieces (700 x 300 > 3 pieces of
    2**16): the same stream as one draw, then the bias."""
    k64, b64 = init_sklearn_layer(fan_in, fan_out, "relu", check_random_state(0), np.float64)
    k32, b32 = init_sklearn_layer(fan_in, fan_out, "relu", check_random_state(0), np.float32)
    assert k32.dtype == b32.dtype == np.float32 and k32.shape == (fan_in, fan_out)
    np.testing.assert_array_equal(k32, k64.astype(np.float32))
    np.testing.assert_array_equal(b32, b64.astype(np.float32))


def _initial_weights(**params):
    """An estimator's initial coefs_/intercepts_ (fitted 1 epoch at a rate
    too small to move them)."""
    X = np.random.RandomState(0).randn(40, 6)
    y = np.arange(40) % 3
    clf = fastnn.MLPClassifier(hidden_layer_sizes=(9, 5), solver="sgd", momentum=0.0,
                               learning_rate_init=1e-300, max_iter=1, random_state=7,
                               **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    return clf.coefs_, clf.intercepts_


def test_estimator_default_is_sklearn_scheme_for_sklearn_activations():
    from sklearn.neural_network import MLPClassifier as SkClassifier

    X = np.random.RandomState(0).randn(40, 6)
    y = np.arange(40) % 3
    for act in ("relu", "logistic"):
        W, b = _initial_weights(activation=act)
        sk = SkClassifier(hidden_layer_sizes=(9, 5), solver="sgd", momentum=0.0,
                          learning_rate_init=1e-300, max_iter=1, random_state=7,
                          activation=act)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk.fit(X, y)
        for ours, theirs in zip(W + b, sk.coefs_ + sk.intercepts_):
            np.testing.assert_array_equal(ours, theirs)
        assert all(np.any(v != 0) for v in b)  # biases drawn, not zero
    # 'sklearn' named explicitly gives the same draws for a chapter activation
    W_selu, b_selu = _initial_weights(activation="selu", kernel_initializer="sklearn")
    W_relu, b_relu = _initial_weights(activation="relu")
    for a, c in zip(W_selu + b_selu, W_relu + b_relu):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("activation, name", [("selu", "lecun_normal"), ("elu", "he_uniform")])
def test_estimator_auto_keeps_chapter_rule_for_chapter_activations(activation, name):
    W, b = _initial_weights(activation=activation)
    rng = check_random_state(7)
    expected = [init_kernel(name, 6, 9, rng), init_kernel(name, 9, 5, rng),
                init_kernel("glorot_uniform", 5, 3, rng)]
    for ours, theirs in zip(W, expected):
        np.testing.assert_array_equal(ours, theirs)
    assert all(np.abs(v).max() < 1e-200 for v in b)  # Keras: zero biases (moved by ~1e-300)


@pytest.mark.parametrize("fan_in, fan_out, dtype", [
    (0, 3, np.float64), (3, 0, np.float64), (-1, 3, np.float64),
    (2.5, 3, np.float64), (3, 3, np.int64), (True, 3, np.float64),
])
def test_bad_arguments(fan_in, fan_out, dtype):
    with pytest.raises(ValueError):
        init_kernel("he_normal", fan_in, fan_out, check_random_state(0), dtype)


@pytest.mark.keras
@pytest.mark.parametrize("name", CONCRETE)
def test_same_distribution_as_keras(name):
    keras = pytest.importorskip("keras")
    shape = (300, 700)
    cls = getattr(keras.initializers,
                  "".join(part.capitalize() for part in name.split("_")))
    theirs = keras.ops.convert_to_numpy(
        cls(seed=3)(shape, dtype="float32")).astype(np.float64).ravel()
    ours = init_kernel(name, *shape, check_random_state(3), np.float64).ravel()
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    assert abs(ours.var() / theirs.var() - 1) < 0.03
    # same support (Keras' bound, up to float32 rounding)
    assert np.abs(theirs).max() <= np.abs(ours).max() * 1.01
    assert np.abs(ours).max() <= np.abs(theirs).max() * 1.01
