"""Estimator-level tests of the chapter's techniques (SPEC section 2 table):
BatchNorm folding, clipping, dropout and MC dropout, max-norm, penalties,
schedules as parameters, history_, divergence."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from fastnn import DivergenceError, MLPClassifier, MLPRegressor
from fastnn.schedules import OneCycle, ReduceOnPlateau

ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "selu", "swish",
               "gelu", "mish"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X)[:600], y[:600]


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=300, n_features=8, noise=5.0, random_state=0)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


# --------------------------------------------------------------------------- BN
@pytest.mark.parametrize("batch_norm", ["before", "after", True])
@pytest.mark.parametrize("bn_input", [False, True])
def test_batchnorm_folding_matches_unfolded_inference(digits, batch_norm, bn_input):
    """predict folds BN into Dense; the unfolded network in inference mode (the
    MC path with no dropout, one pass) must give the same output to 1e-5."""
    X, y = digits
    # Enough steps for the moving statistics (momentum 0.9) to settle.
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), batch_norm=batch_norm,
                        batch_norm_input=bn_input, batch_norm_momentum=0.9, batch_size=32,
                        max_iter=20, random_state=0).fit(X, y)
    folded = clf.predict_proba(X)
    unfolded = clf.predict_proba(X, mc_samples=1)  # dropout is 0: deterministic
    np.testing.assert_allclose(unfolded, folded, rtol=1e-5, atol=1e-7)
    assert clf.score(X, y) > 0.95


def test_folded_network_is_a_plain_network(digits):
    """Folded inference runs exactly the network a model without BN would run
    (same layout, no BN slots, no statistics), so it costs the same."""
    from fastnn._network import Layout

    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), batch_norm="after",
                        batch_norm_input=True, max_iter=2, random_state=0).fit(X, y)
    layout = clf._layout()
    params, stats = clf._pack(layout, clf.coefs_[0].dtype)
    plain, folded = layout.fold(params, stats, clf.batch_norm_epsilon)
    reference = Layout(layout.units)
    assert plain.n_stats == 0 and not any(plain.has_bn(s) for s in range(plain.n_layers))
    assert (plain.w_off, plain.b_off, plain.n_params) == \
           (reference.w_off, reference.b_off, reference.n_params)
    assert folded.shape == (reference.n_params,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_network_without_batchnorm_folds_to_itself_without_a_copy(digits, dtype):
    """Nothing to fold: fold returns the plain layout and the vector it was
    given (a validating fit on a wide network used to copy every parameter
    through float64 at each validation), and predictions read it as before."""
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=2, random_state=0).fit(
        X.astype(dtype), y)
    layout = clf._layout()
    params, stats = clf._pack(layout, clf.coefs_[0].dtype)
    before = params.copy()
    plain, folded = layout.fold(params, stats, clf.batch_norm_epsilon)
    assert folded is params
    np.testing.assert_array_equal(params, before)
    assert (plain.w_off, plain.b_off, plain.n_params) == \
           (layout.w_off, layout.b_off, layout.n_params)
    by_hand = X.astype(dtype)
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        by_hand = by_hand @ w + b
        if i < len(clf.coefs_) - 1:
            by_hand = np.maximum(by_hand, 0)
    by_hand = np.exp(by_hand - by_hand.max(1, keepdims=True))
    by_hand /= by_hand.sum(1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X.astype(dtype)), by_hand, rtol=1e-4,
                               atol=1e-6)


def test_batchnorm_attributes_and_bias_rules(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(20, 10), batch_norm="before",
                        batch_norm_input=True, max_iter=3, random_state=0).fit(X, y)
    assert len(clf.bn_gamma_) == 3
    assert clf.bn_gamma_[0].shape == (64,) and clf.bn_gamma_[1].shape == (20,)
    assert clf.bn_gamma_[2].shape == (10,)
    for attr in ("bn_beta_", "bn_moving_mean_", "bn_moving_var_"):
        assert [None if a is None else a.shape for a in getattr(clf, attr)] == \
               [(64,), (20,), (10,)]
    # BN before the activation replaces the hidden Dense biases (kept at 0).
    assert np.all(clf.intercepts_[0] == 0) and np.all(clf.intercepts_[1] == 0)
    assert np.any(clf.intercepts_[2] != 0)  # the output layer keeps its bias
    # Moving statistics moved away from their (0, 1) start.
    assert np.any(clf.bn_moving_mean_[1] != 0)
    after = MLPClassifier(hidden_layer_sizes=(20,), batch_norm="after", max_iter=3,
                          random_state=0).fit(X, y)
    assert after.bn_gamma_[0] is None and after.bn_gamma_[1].shape == (20,)
    assert np.any(after.intercepts_[0] != 0)  # BN after keeps the Dense bias


def test_batchnorm_warm_start_uses_set_arrays(digits):
    """Setting BN arrays by hand changes predictions (they are really used)."""
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), batch_norm=True, max_iter=2,
                        random_state=0).fit(X, y)
    before = clf.predict_proba(X)
    clf.bn_moving_var_[1] = clf.bn_moving_var_[1] * 4
    assert not np.allclose(clf.predict_proba(X), before)


# --------------------------------------------------------------------- clipping
@pytest.mark.parametrize("kw", [dict(clipvalue=1.0, clipnorm=1.0),
                                dict(clipnorm=1.0, global_clipnorm=1.0),
                                dict(clipvalue=0.5, global_clipnorm=2.0)])
def test_at_most_one_clipping_mode(digits, kw):
    X, y = digits
    with pytest.raises(ValueError, match="at most one"):
        MLPClassifier(max_iter=1, **kw).fit(X, y)


@pytest.mark.parametrize("kw", [dict(clipvalue=1e-4), dict(clipnorm=1e-4),
                                dict(global_clipnorm=1e-4)])
def test_tight_clipping_slows_learning(digits, kw):
    """With a tiny clip, SGD steps are bounded, so the weights move far less."""
    X, y = digits
    base = dict(hidden_layer_sizes=(16,), solver="sgd", momentum=0.0, max_iter=2,
                learning_rate_init=0.1, random_state=0)
    free = MLPClassifier(**base).fit(X, y)
    clipped = MLPClassifier(**base, **kw).fit(X, y)
    assert free.loss_ < clipped.loss_


# ---------------------------------------------------------------------- dropout
def test_dropout_validation(digits):
    X, y = digits
    with pytest.raises(ValueError, match="per Dense layer"):
        MLPClassifier(hidden_layer_sizes=(8, 8), dropout=[0.1, 0.2], max_iter=1).fit(X, y)
    with pytest.raises(ValueError):
        MLPClassifier(dropout=1.0, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="lbfgs"):
        MLPClassifier(dropout=0.2, solver="lbfgs", max_iter=1).fit(X, y)


def test_mc_dropout_mean_and_std(regression):
    X, y = regression
    reg = MLPRegressor(hidden_layer_sizes=(64,), dropout=[0.0, 0.3], max_iter=30,
                       random_state=0).fit(X, y)
    mean, std = reg.predict(X, return_std=True, mc_samples=50)
    assert mean.shape == std.shape == (X.shape[0],)
    assert np.all(std > 0)
    # The MC mean approximates the deterministic (expected) prediction.
    plain = reg.predict(X)
    assert np.corrcoef(mean, plain)[0, 1] > 0.99
    # Repeatable with a fixed random_state.
    np.testing.assert_array_equal(reg.predict(X, mc_samples=5), reg.predict(X, mc_samples=5))
    no_drop = MLPRegressor(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    _, std0 = no_drop.predict(X, return_std=True, mc_samples=5)
    np.testing.assert_array_equal(std0, 0)


def test_mc_dropout_classifier_probabilities(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), dropout=0.2, max_iter=10,
                        random_state=0).fit(X, y)
    p, s = clf.predict_proba(X, mc_samples=20, return_std=True)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert p.shape == s.shape == (X.shape[0], 10) and s.max() > 0


def test_dropout_kind_auto_selects_alpha_for_selu(digits):
    X, y = digits
    a = MLPClassifier(hidden_layer_sizes=(16,), activation="selu", dropout=0.2,
                      max_iter=3, random_state=0).fit(X, y)
    s = MLPClassifier(hidden_layer_sizes=(16,), activation="selu", dropout=0.2,
                      dropout_kind="standard", max_iter=3, random_state=0).fit(X, y)
    b = MLPClassifier(hidden_layer_sizes=(16,), activation="selu", dropout=0.2,
                      dropout_kind="alpha", max_iter=3, random_state=0).fit(X, y)
    assert a._alpha_dropout(["selu"]) and not s._alpha_dropout(["selu"])
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], s.coefs_[0])


# --------------------------------------------------------------------- max-norm
@pytest.mark.parametrize("r", [0.1, 0.5])
def test_max_norm_bounds_every_unit(digits, r):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_norm=r, max_iter=3,
                        random_state=0).fit(X, y)
    for w in clf.coefs_:
        assert np.linalg.norm(w, axis=0).max() <= r * (1 + 1e-6)
    free = MLPClassifier(hidden_layer_sizes=(32,), max_iter=3, random_state=0).fit(X, y)
    assert np.linalg.norm(free.coefs_[0], axis=0).max() > r


def _keras_max_norm(w, r):
    """Keras MaxNorm(r, axis=0), written in NumPy."""
    norm = np.linalg.norm(w, axis=0)
    return w * (np.minimum(norm, r) / (1e-7 + norm))


def test_per_layer_max_norm_matches_numpy(digits):
    """max_norm=[r0, None, r2]: each listed layer's columns rescaled as Keras's
    MaxNorm (NumPy reference), the None layer untouched.  A learning rate of
    1e-300 leaves the update itself below every weight's rounding."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(12, 8), solver="sgd", momentum=0.0, alpha=0.0, max_iter=1,
              batch_size=len(X), random_state=0, warm_start=True)
    clf = MLPClassifier(**kw).fit(X, y)
    rng = np.random.RandomState(1)
    start = [rng.normal(size=w.shape) for w in clf.coefs_]
    clf.coefs_ = [w.copy() for w in start]
    clf.set_params(learning_rate_init=1e-300, max_norm=[0.5, None, 0.8]).fit(X, y)
    np.testing.assert_allclose(clf.coefs_[0], _keras_max_norm(start[0], 0.5), rtol=1e-12)
    np.testing.assert_array_equal(clf.coefs_[1], start[1])
    np.testing.assert_allclose(clf.coefs_[2], _keras_max_norm(start[2], 0.8), rtol=1e-12)
    assert np.linalg.norm(start[1], axis=0).max() > 0.8  # it would have been constrained


def test_output_layer_left_out_of_max_norm(digits):
    X, y = digits
    r = 0.3
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), max_norm=[r, r, None], max_iter=3,
                        random_state=0).fit(X, y)
    for w in clf.coefs_[:2]:
        assert np.linalg.norm(w, axis=0).max() <= r * (1 + 1e-6)
    assert np.linalg.norm(clf.coefs_[2], axis=0).max() > r


@pytest.mark.parametrize("param,value", [("max_norm", 0.4), ("alpha", 0.5)])
def test_per_layer_list_of_one_value_equals_scalar(digits, param, value):
    X, y = digits
    kw = dict(hidden_layer_sizes=(16, 8), max_iter=3, random_state=0, penalty="elasticnet")
    a = MLPClassifier(**{param: value}, **kw).fit(X, y)
    b = MLPClassifier(**{param: [value] * 3}, **kw).fit(X, y)
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)


def test_per_layer_alpha_penalizes_only_listed_layers(regression):
    X, y = regression
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.01, max_iter=30,
              random_state=0)
    free = MLPRegressor(alpha=0.0, **kw).fit(X, y)
    hidden_only = MLPRegressor(alpha=[50.0, None], **kw).fit(X, y)
    assert np.linalg.norm(hidden_only.coefs_[0]) < 0.5 * np.linalg.norm(free.coefs_[0])


@pytest.mark.parametrize("kw,match", [
    (dict(max_norm=[0.5, 0.5]), "one per Dense layer"),
    (dict(alpha=[0.1, -1.0, 0.1]), ">= 0"),
    (dict(max_norm=[0.5, 0.0, None]), "> 0"),
])
def test_per_layer_values_validated(digits, kw, match):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(8, 8), max_iter=1, **kw)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "coefs_")  # refused before anything was set


# -------------------------------------------------------------------- penalties
def test_l1_penalty_gives_sparser_weights_than_l2(regression):
    X, y = regression
    kw = dict(hidden_layer_sizes=(32,), alpha=5.0, solver="sgd", learning_rate_init=0.01,
              max_iter=60, random_state=0)
    l1 = MLPRegressor(penalty="l1", **kw).fit(X, y)
    l2 = MLPRegressor(penalty="l2", **kw).fit(X, y)
    small = lambda m: np.mean(np.abs(m.coefs_[0]) < 1e-2)  # noqa: E731
    assert small(l1) > small(l2)


@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
def test_penalty_in_reported_loss(regression, penalty):
    """loss_ includes the penalty: a larger alpha reports a larger loss at the
    same weights after the first epoch's start (monotone in alpha)."""
    X, y = regression
    losses = []
    for alpha in (0.0, 1.0, 10.0):
        m = MLPRegressor(hidden_layer_sizes=(8,), alpha=alpha, penalty=penalty,
                         max_iter=1, learning_rate_init=1e-9, random_state=0).fit(X, y)
        losses.append(m.loss_)
    assert losses[0] < losses[1] < losses[2]


# -------------------------------------------------------- activations, solvers
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_learns(digits, activation):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(32,), activation=activation, batch_size=32,
                        max_iter=20, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


def test_activation_per_layer(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16, 16), activation=["selu", "swish"],
                        batch_size=32, max_iter=10, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match="one per hidden layer"):
        MLPClassifier(hidden_layer_sizes=(16, 16), activation=["relu"], max_iter=1).fit(X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam", "adagrad", "rmsprop", "adamax", "nadam",
                                    "adamw", "lbfgs"])
def test_every_solver_learns(digits, solver):
    X, y = digits
    lr = {"sgd": 0.05, "adagrad": 0.05}.get(solver, 1e-3)
    clf = MLPClassifier(hidden_layer_sizes=(32,), solver=solver, learning_rate_init=lr,
                        batch_size=32, max_iter=20, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


def test_negative_slope_reaches_leaky_relu(digits):
    """negative_slope changes a leaky_relu fit (and nothing else's)."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), max_iter=2, random_state=0)
    a = MLPClassifier(activation="leaky_relu", **kw).fit(X, y)
    b = MLPClassifier(activation="leaky_relu", negative_slope=0.2, **kw).fit(X, y)
    assert not np.array_equal(a.coefs_[0], b.coefs_[0])
    c = MLPClassifier(activation="relu", **kw).fit(X, y)
    d = MLPClassifier(activation="relu", negative_slope=0.2, **kw).fit(X, y)
    np.testing.assert_array_equal(c.coefs_[0], d.coefs_[0])
    # prediction follows a slope set after fitting (the cached network is rebuilt)
    p20 = b.predict_proba(X[:5])
    np.testing.assert_allclose(p20, _manual_proba(b, X[:5], 0.2), rtol=1e-9, atol=1e-12)
    b.set_params(negative_slope=0.01)
    p01 = b.predict_proba(X[:5])
    np.testing.assert_allclose(p01, _manual_proba(b, X[:5], 0.01), rtol=1e-9, atol=1e-12)
    assert np.abs(p20 - p01).max() > 1e-6


def _manual_proba(clf, X, slope):
    h = X @ clf.coefs_[0] + clf.intercepts_[0]
    h = np.where(h > 0, h, slope * h)
    z = h @ clf.coefs_[1] + clf.intercepts_[1]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_adamw_weight_decay(digits):
    """weight_decay=0 is Adam bit for bit; a positive decay shrinks every
    trained tensor (kernels and biases, as Keras) compared with Adam."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0, batch_size=64)
    adam = MLPClassifier(solver="adam", **kw).fit(X, y)
    zero = MLPClassifier(solver="adamw", weight_decay=0.0, **kw).fit(X, y)
    for a, b in zip(adam.coefs_ + adam.intercepts_, zero.coefs_ + zero.intercepts_):
        np.testing.assert_array_equal(a, b)
    decayed = MLPClassifier(solver="adamw", weight_decay=50.0, **kw).fit(X, y)
    for a, b in zip(adam.coefs_ + adam.intercepts_, decayed.coefs_ + decayed.intercepts_):
        assert np.linalg.norm(b) < np.linalg.norm(a)
    assert MLPClassifier().weight_decay == 0.004  # Keras 3's AdamW default
    with pytest.raises(ValueError, match="weight_decay"):
        MLPClassifier(solver="adamw", weight_decay=-1.0, max_iter=1).fit(X, y)


@pytest.mark.parametrize("init", ["glorot_uniform", "glorot_normal", "he_uniform",
                                  "he_normal", "lecun_uniform", "lecun_normal"])
def test_kernel_initializer_scales_hidden_weights(init):
    X = np.zeros((10, 400))
    y = np.arange(10) % 2
    clf = MLPClassifier(hidden_layer_sizes=(300,), kernel_initializer=init, max_iter=1,
                        learning_rate_init=1e-12, random_state=0).fit(X, y)
    fan_in, fan_out = 400, 300
    target = {"glorot": 2 / (fan_in + fan_out), "he": 2 / fan_in, "lecun": 1 / fan_in}
    expected = target[init.split("_")[0]]
    assert clf.coefs_[0].var() == pytest.approx(expected, rel=0.03)


# -------------------------------------------------------------------- schedules
@pytest.mark.parametrize("schedule", ["power", "exponential", "piecewise", "one_cycle",
                                      OneCycle(max_lr=0.01),
                                      # min_delta so large that no epoch "improves"
                                      ReduceOnPlateau(patience=1, min_delta=1e9)])
def test_schedules_drive_the_learning_rate(digits, schedule):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", learning_rate=schedule,
                        learning_rate_init=0.02, max_iter=12, early_stopping=True,
                        n_iter_no_change=100, random_state=0).fit(X, y)
    lrs = clf.history_["lr"]
    assert len(lrs) == clf.n_iter_ == 12
    assert len(set(np.round(lrs, 12))) > 1  # the rate changed over the epochs


def test_plateau_keeps_rate_while_improving(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate="plateau", max_iter=8,
                        batch_size=32, random_state=0).fit(X, y)
    assert np.all(np.diff(clf.loss_curve_) < 0)  # always improving...
    assert clf.history_["lr"] == [0.001] * 8  # ...so the rate never drops


def test_constant_rate_recorded(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    assert clf.history_["lr"] == [0.001] * 3


def test_nested_schedule_params_in_grid_search(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(16,), learning_rate=OneCycle(), max_iter=3,
                        random_state=0)
    gs = GridSearchCV(est, {"learning_rate__max_lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert gs.best_params_["learning_rate__max_lr"] in (1e-3, 1e-2)
    assert clone(est).learning_rate is not est.learning_rate
    assert gs.cv_results_["param_learning_rate__max_lr"].tolist() == [1e-3, 1e-2]


# ---------------------------------------------------------------------- history
def test_history_contents(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), early_stopping=True, max_iter=6,
                        n_iter_no_change=100, random_state=0).fit(X, y)
    h = clf.history_
    assert set(h) >= {"loss", "val_loss", "val_score", "lr", "grad_norm", "time"}
    n = clf.n_iter_
    assert all(len(h[k]) == n for k in ("loss", "val_loss", "val_score", "lr", "grad_norm",
                                        "time"))
    assert h["loss"] == clf.loss_curve_
    assert h["val_score"] == clf.validation_scores_
    assert all(len(g) == 3 and all(v > 0 for v in g) for g in h["grad_norm"])
    assert all(t > 0 for t in h["time"])
    pickle.loads(pickle.dumps(clf))


# -------------------------------------------------------------------- divergence
def test_divergence_is_reported_and_model_still_predicts(regression):
    X, y = regression
    reg = MLPRegressor(hidden_layer_sizes=(32,), solver="sgd", momentum=0.0,
                       learning_rate_init=1e6, max_iter=50, random_state=0)
    with pytest.raises(DivergenceError, match=r"epoch \d+.*clipnorm"):
        reg.fit(X, y * 1e3)
    for w in reg.coefs_ + reg.intercepts_:
        assert np.all(np.isfinite(w))
    assert reg.predict(X).shape == (X.shape[0],)
