"""Keras-parity suite for the "Training Deep Neural Networks" techniques.

Each parity test builds the same network in fastnn and in Keras 3 (float64,
identical initial weights copied from the fastnn estimator, which is first
fitted once with ``max_iter=1, warm_start=True`` and then given random
kernels, biases and BatchNorm arrays), runs the same full-batch steps
(fastnn: ``batch_size=n_samples, shuffle=False``; Keras: a manual loop of
``tf.GradientTape`` + ``optimizer.apply_gradients`` over the matching loss)
and compares every trained tensor.  The error measure is the relative error
of the *change* of each tensor over the steps,
``max|delta_fastnn - delta_keras| / max|delta_keras|`` (stricter than the
error on the weights themselves), worst over tensors, together with the
relative error of ``loss_curve_`` against the Keras loss of each step; the
bound is 1e-5.  Run ``pytest -s tests/test_keras_parity.py`` to see the worst
error of each test (and a summary at the end of the module).

Keras casts Python-float hyperparameters through float32
(``ops.cast(0.9, "float64")`` is 0.89999998): momentum 0.9 limits agreement
to ~3e-8, beta_2 = 0.999 to ~1e-5 (through 1 - beta_2), Nadam's fixed 0.96
decay to ~2e-8, and ``tf.nn.leaky_relu``'s float32 slope to ~4e-10.  Most
tests therefore use float32-exact values (momentum 0.875, betas 0.75 and
1 - 2**-6, epsilon 2**-14, alpha / n a power of two) and agree to float64
rounding; the sgd momentum cases keep 0.9.

Loss conventions matched on the Keras side (sklearn's, used by fastnn):
squared error: gradient (p - y)/n per output, i.e. Keras loss
``0.5 * n_outputs * MSE``; softmax: categorical cross-entropy, mean over
samples; logistic: binary cross-entropy summed over outputs, mean over
samples; poisson: ``mean(sum(exp(z) - y z))``.  Penalties: fastnn's L2
``0.5 alpha |W|^2 / n`` is Keras ``L2(alpha / (2 n))`` on the kernels, L1
``alpha |W|_1 / n`` is ``L1(alpha / n)``, elastic net is ``L1L2`` with the
``l1_ratio`` split.  Learning-rate schedules are covered in
tests/test_schedules.py.

Parity tests (fastnn vs Keras):

- test_solver_parity[sgd, sgd_momentum, sgd_nesterov, sgd_nesterov_0.875,
  adam, adagrad, rmsprop, adamax, nadam, adamw]: every stochastic solver vs SGD / Adam /
  Adagrad / RMSprop / Adamax / Nadam / AdamW, non-default betas, rho, accumulator,
  epsilon and weight decay; test_adamw_batch_norm_parity: AdamW decays BatchNorm's
  gamma and beta too, as Keras.
- test_loss_parity[regression, regression_2out, poisson, binary,
  multilabel, multiclass]: output activations and loss conventions.
- test_activation_parity[identity, logistic, tanh, relu, leaky_relu, elu,
  selu, swish, gelu, mish]: hidden activations (leaky ReLU slope 0.01 as
  ``LeakyReLU(negative_slope=0.01)``, swish as ``silu``, gelu as
  ``gelu(approximate=False)``); test_leaky_relu_negative_slope_parity:
  ``negative_slope=0.2``, Keras's ``leaky_relu`` default;
  test_mixed_activations_parity: one activation per hidden layer.
- test_clipping_parity[clipvalue, clipnorm, global_clipnorm]: with values
  that are asserted to clip.
- test_batch_norm_parity[before, after, before_input, after_input,
  input_only]: kernels, biases, gamma/beta and moving mean/variance with
  non-default ``batch_norm_momentum``/``batch_norm_epsilon``; also
  ``predict_proba`` (BN folded) vs Keras inference.
- test_penalty_parity[l2, l1, elasticnet].
- test_max_norm_parity: ``MaxNorm(r, axis=0)`` on every kernel, r binding;
  test_per_layer_max_norm_and_alpha_parity: ``max_norm=[r, r, None]`` and
  ``alpha=[a, None, b]`` as per-layer Keras constraints and regularizers.
- test_minibatch_parity: 2 epochs of 3 unshuffled mini-batches (BN after +
  input BN, nadam, L2): several steps inside one C epoch call.
- test_frozen_layers_parity[frozen 1, 2 x plain, before, before_input,
  after_input x adam, sgd_momentum]: ``frozen_layers=k`` on a 3-hidden-layer
  network as ``trainable = False`` on the first k Dense layers, their
  BatchNorm and the input BatchNorm (inference mode in training), with L2 and
  a binding max-norm: frozen tensors unchanged bit for bit in both, the
  others' changes, ``loss_curve_`` (Keras counts only trainable weights'
  penalty, as fastnn's ``loss_``) and ``predict_proba`` match;
  test_frozen_layers_minibatch_parity: 3 mini-batches per epoch, nadam;
  test_frozen_layers_adamw_global_clipnorm_parity: weight decay and the
  global norm over the trainable variables only.
- test_float32_parity: fastnn in float32 vs Keras in float64 (BN, adam,
  clipnorm, L2), bound 1e-4.
- test_combined_parity: BN after + input BN, nadam, global_clipnorm,
  elastic net and max-norm together.
- test_alpha_dropout_matches_keras: AlphaDropout's affine coefficients
  (exact) and output statistics on SELU activations vs
  ``keras.layers.AlphaDropout``.
- test_dropout_matches_keras: inverted dropout's keep rate and scaling vs
  ``keras.layers.Dropout``.

Dropout statistics on fastnn alone (masks cannot be compared one by one):
test_dropout_keep_rate_and_expectation, test_alpha_dropout_self_normalizing,
test_mc_dropout_std.
"""

import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastnn import MLPClassifier, MLPRegressor, _core
from fastnn._network import Layout

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":  # pragma: no cover - environment
    pytest.skip("the Keras-parity suite needs KERAS_BACKEND=tensorflow",
                allow_module_level=True)

pytestmark = pytest.mark.keras

N, D = 24, 4
HIDDEN = (5, 3)
TOL = 1e-5
MOM = 0.875  # float32-exact: Keras casts Python-float hyperparameters through float32
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717

RESULTS = {}  # test id -> worst relative error


def _record(name, err, what="worst relative error"):
    RESULTS[name] = (err, what)
    print(f"\n[keras-parity] {name}: {what} {err:.3e}")


@pytest.fixture(scope="module", autouse=True)
def _float64_keras():
    old = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(old)
    if RESULTS:
        width = max(len(k) for k in RESULTS)
        print("\n[keras-parity] summary")
        for k, (v, what) in RESULTS.items():
            print(f"  {k:<{width}}  {v:.3e}  ({what})")


# ----------------------------------------------------------------------
# data, the two models, the two training loops
# ----------------------------------------------------------------------
def _data(kind, seed=0):
    """X and the target matrix both libraries train on (fastnn's y, Keras's Y)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N, D))
    if kind == "regression":
        y = X @ rng.normal(size=D) + 0.3 * rng.normal(size=N)
        return X, y, y[:, None]
    if kind == "regression_2out":
        y = X @ rng.normal(size=(D, 2)) + 0.3 * rng.normal(size=(N, 2))
        return X, y, y
    if kind == "poisson":
        y = rng.poisson(np.exp(0.3 * X[:, 0] + 0.5)).astype(np.float64)
        return X, y, y[:, None]
    if kind == "binary":
        y = rng.permutation(np.arange(N) % 2)
        return X, y, y[:, None].astype(np.float64)
    if kind == "multilabel":
        y = (rng.uniform(size=(N, 3)) < 0.5).astype(int)
        y[0], y[1] = 1, 0  # every column holds both labels
        return X, y, y.astype(np.float64)
    assert kind == "multiclass"
    y = rng.permutation(np.arange(N) % 3)
    return X, y, np.eye(3)[y]


def _bn_mode(est):
    bn = est.batch_norm
    return "before" if bn is True or bn == "before" else ("after" if bn == "after" else None)


def _has_bias(est, l):
    return not (_bn_mode(est) == "before" and l < len(est.coefs_) - 1)


def _bn_slots(est):
    return [s for s, g in enumerate(est.bn_gamma_) if g is not None]


def _snapshot(est):
    """Every trained tensor (and BN moving statistics) of a fastnn estimator."""
    out = {}
    for l, (w, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        out[f"W{l}"] = np.array(w, dtype=np.float64)
        if _has_bias(est, l):
            out[f"b{l}"] = np.array(b, dtype=np.float64)
    for s in _bn_slots(est):
        out[f"gamma{s}"] = np.array(est.bn_gamma_[s], dtype=np.float64)
        out[f"beta{s}"] = np.array(est.bn_beta_[s], dtype=np.float64)
        out[f"moving_mean{s}"] = np.array(est.bn_moving_mean_[s], dtype=np.float64)
        out[f"moving_var{s}"] = np.array(est.bn_moving_var_[s], dtype=np.float64)
    return out


def _randomize(est, rng, kernel_scale=1.0):
    """Random kernels, biases and BN arrays in the model's dtype."""
    dt = est.coefs_[0].dtype
    est.coefs_ = [(kernel_scale * rng.normal(size=w.shape) / np.sqrt(w.shape[0])).astype(dt)
                  for w in est.coefs_]
    est.intercepts_ = [(0.2 * rng.normal(size=b.shape) if _has_bias(est, l)
                        else np.zeros(b.shape)).astype(dt)
                       for l, b in enumerate(est.intercepts_)]
    for s in _bn_slots(est):
        w = est.bn_gamma_[s].shape
        est.bn_gamma_[s] = (1.0 + 0.3 * rng.normal(size=w)).astype(dt)
        est.bn_beta_[s] = (0.2 * rng.normal(size=w)).astype(dt)
        est.bn_moving_mean_[s] = (0.5 * rng.normal(size=w)).astype(dt)
        est.bn_moving_var_[s] = rng.uniform(0.5, 2.0, size=w).astype(dt)


def _fastnn(kind, n_steps, seed, kernel_scale=1.0, batch_size=N, dtype=np.float64,
            **params):
    """A fastnn estimator with random initial tensors, trained n_steps epochs of
    unshuffled mini-batches (one full-batch step each by default); returns
    (estimator, initial snapshot, X, Y).  float32 X trains fastnn in float32."""
    X, y, Y = _data(kind)
    X = X.astype(dtype)
    if kind in ("regression", "regression_2out", "poisson"):
        cls = MLPRegressor
        if kind == "poisson":
            params["loss"] = "poisson"
    else:
        cls = MLPClassifier
    base = dict(hidden_layer_sizes=HIDDEN, activation="tanh", solver="sgd", momentum=0.0,
                learning_rate_init=0.05, alpha=0.0, batch_size=batch_size, shuffle=False,
                max_iter=1, warm_start=True, random_state=0)
    base.update(params)
    est = cls(**base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        _randomize(est, np.random.RandomState(seed), kernel_scale)
        init = _snapshot(est)
        est.set_params(max_iter=n_steps)
        est.fit(X, y)
    assert est.n_iter_ == n_steps  # loss_curve_ keeps the first fit's epoch (warm start)
    return est, init, X, Y


def _activation_layer(name, negative_slope=0.01):
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=negative_slope)
    fn = {"identity": "linear", "logistic": "sigmoid", "swish": keras.activations.silu,
          "gelu": lambda x: keras.activations.gelu(x, approximate=False),
          "mish": keras.activations.mish}
    return keras.layers.Activation(fn.get(name, name))


def _per_layer(value, L):
    """A scalar-or-per-layer parameter (alpha, max_norm) as one value per layer."""
    return list(value) if np.ndim(value) else [value] * L


def _regularizer(est, n, a):
    if a is None or a == 0:
        return None
    if est.penalty == "l2":
        return keras.regularizers.L2(a / (2 * n))
    if est.penalty == "l1":
        return keras.regularizers.L1(a / n)
    r = est.l1_ratio
    return keras.regularizers.L1L2(l1=a * r / n, l2=a * (1 - r) / (2 * n))


def _keras_model(est, n, init):
    """The Keras twin of ``est`` holding the tensors of ``init``.  Returns
    (model, dense layers, {slot: BatchNormalization layer})."""
    L = len(est.coefs_)
    acts = est.activation if not isinstance(est.activation, str) else [est.activation] * (L - 1)
    mode = _bn_mode(est)
    alphas, max_norms = _per_layer(est.alpha, L), _per_layer(est.max_norm, L)

    def bn():
        return keras.layers.BatchNormalization(momentum=est.batch_norm_momentum,
                                               epsilon=est.batch_norm_epsilon)

    model = keras.Sequential([keras.Input((est.coefs_[0].shape[0],), dtype="float64")])
    dense, bns = [], {}
    if est.batch_norm_input:
        bns[0] = bn()
        model.add(bns[0])
    for l in range(L):
        constraint = (keras.constraints.MaxNorm(max_norms[l], axis=0)
                      if max_norms[l] is not None else None)
        d = keras.layers.Dense(est.coefs_[l].shape[1], use_bias=_has_bias(est, l),
                               kernel_regularizer=_regularizer(est, n, alphas[l]),
                               kernel_constraint=constraint)
        model.add(d)
        dense.append(d)
        if l < L - 1:
            if mode == "before":
                bns[l + 1] = bn()
                model.add(bns[l + 1])
            model.add(_activation_layer(acts[l], est.negative_slope))
            if mode == "after":
                bns[l + 1] = bn()
                model.add(bns[l + 1])
    for l, d in enumerate(dense):
        d.set_weights([init[f"W{l}"]] + ([init[f"b{l}"]] if _has_bias(est, l) else []))
    for s, b in bns.items():
        b.set_weights([init[f"gamma{s}"], init[f"beta{s}"], init[f"moving_mean{s}"],
                       init[f"moving_var{s}"]])
    # frozen_layers=k: trainable=False on the first k Dense layers, the
    # BatchNorm after each of them and the input BatchNorm (slots 0..k)
    k = est.frozen_layers
    for l in range(k):
        dense[l].trainable = False
    for s, b in bns.items():
        if k and s <= k:
            b.trainable = False
    return model, dense, bns


def _frozen_names(est):
    """The snapshot names of the tensors frozen_layers keeps fixed."""
    k = est.frozen_layers
    names = {f"W{l}" for l in range(k)} | {f"b{l}" for l in range(k) if _has_bias(est, l)}
    for s in _bn_slots(est):
        if k and s <= k:
            names |= {f"gamma{s}", f"beta{s}", f"moving_mean{s}", f"moving_var{s}"}
    return names


def _keras_snapshot(dense, bns):
    out = {}
    for l, d in enumerate(dense):
        out[f"W{l}"] = d.kernel.numpy()
        if d.use_bias:
            out[f"b{l}"] = d.bias.numpy()
    for s, b in bns.items():
        out[f"gamma{s}"] = b.gamma.numpy()
        out[f"beta{s}"] = b.beta.numpy()
        out[f"moving_mean{s}"] = b.moving_mean.numpy()
        out[f"moving_var{s}"] = b.moving_variance.numpy()
    return out


def _keras_loss(est, z, Y):
    """The objective whose gradient fastnn follows (a Keras tensor) and the data
    loss as fastnn reports it in ``loss_curve_`` (sklearn's definitions: mean
    over all outputs for squared error, probabilities clipped to [eps, 1 - eps])."""
    ops = keras.ops
    out = est.out_activation_
    zn, Yn = z.numpy(), Y.numpy()
    eps = np.finfo(np.float64).eps
    if out == "identity":
        obj = 0.5 * ops.mean(ops.sum(ops.square(z - Y), axis=1))
        return obj, 0.5 * np.mean((zn - Yn) ** 2)
    if out == "exp":  # half Poisson deviance; y log y - y does not depend on z
        obj = ops.mean(ops.sum(ops.exp(z) - Y * z, axis=1))
        p = np.exp(zn)
        ylogy = np.where(Yn > 0, Yn * np.log(np.where(Yn > 0, Yn, 1.0)), 0.0)
        return obj, np.mean(np.sum(ylogy - Yn * np.log(p) - Yn + p, axis=1))
    if out == "softmax":
        obj = ops.mean(keras.losses.categorical_crossentropy(Y, z, from_logits=True))
        p = np.clip(keras.ops.softmax(z).numpy(), eps, 1 - eps)
        return obj, -np.mean(np.sum(Yn * np.log(p), axis=1))
    assert out == "logistic"
    obj = Y.shape[1] * ops.mean(keras.losses.binary_crossentropy(Y, z, from_logits=True))
    p = np.clip(1 / (1 + np.exp(-zn)), eps, 1 - eps)
    return obj, -np.mean(np.sum(Yn * np.log(p) + (1 - Yn) * np.log(1 - p), axis=1))


def _keras_optimizer(est):
    common = dict(learning_rate=est.learning_rate_init, clipvalue=est.clipvalue,
                  clipnorm=est.clipnorm, global_clipnorm=est.global_clipnorm)
    s, eps = est.solver, est.epsilon
    if s == "sgd":
        return keras.optimizers.SGD(momentum=est.momentum,
                                    nesterov=bool(est.nesterovs_momentum and est.momentum > 0),
                                    **common)
    if s == "adam":
        return keras.optimizers.Adam(beta_1=est.beta_1, beta_2=est.beta_2, epsilon=eps, **common)
    if s == "adagrad":
        return keras.optimizers.Adagrad(initial_accumulator_value=est.initial_accumulator_value,
                                        epsilon=eps, **common)
    if s == "rmsprop":
        return keras.optimizers.RMSprop(rho=est.rho, momentum=0.0, centered=False, epsilon=eps,
                                        **common)
    if s == "adamax":
        return keras.optimizers.Adamax(beta_1=est.beta_1, beta_2=est.beta_2, epsilon=eps,
                                       **common)
    if s == "adamw":
        return keras.optimizers.AdamW(weight_decay=est.weight_decay, beta_1=est.beta_1,
                                      beta_2=est.beta_2, epsilon=eps, **common)
    assert s == "nadam"
    return keras.optimizers.Nadam(beta_1=est.beta_1, beta_2=est.beta_2, epsilon=eps, **common)


def _keras_train(est, model, X, Y, n_epochs, batch_size=N):
    """n_epochs passes over unshuffled mini-batches; returns (loss per epoch as
    fastnn reports it: row-weighted mean of the batch losses, gradients of the
    first step)."""
    opt = _keras_optimizer(est)
    variables = model.trainable_variables
    losses, first_grads = [], None
    for _ in range(n_epochs):
        epoch_loss = 0.0
        for start in range(0, len(X), batch_size):
            Xt = tf.constant(X[start:start + batch_size])
            Yt = tf.constant(Y[start:start + batch_size])
            with tf.GradientTape() as tape:
                z = model(Xt, training=True)
                obj, reported = _keras_loss(est, z, Yt)
                penalty = (tf.add_n(model.losses) if model.losses
                           else tf.constant(0.0, tf.float64))
                total = obj + penalty
            grads = tape.gradient(total, variables)
            if first_grads is None:
                first_grads = [g.numpy() for g in grads]
            opt.apply_gradients(zip(grads, variables))
            epoch_loss += (float(reported) + float(penalty)) * len(Xt)
        losses.append(epoch_loss / len(X))
    return np.array(losses), first_grads


def _change_errors(init, fast, kera, frozen=()):
    """Relative error of each tensor's change over the steps.  A tensor whose
    exact gradient is zero (the input BN's beta when a bias-free Dense and a BN
    follow: BN removes any shift) moves by rounding noise only; its change is
    compared with max(1, |w|) instead (both noises are ~1e-15).  The frozen
    tensors must stay unchanged, bit for bit, in both."""
    errs = {}
    for name, w0 in init.items():
        dk = kera[name] - w0
        df = fast[name] - w0
        size = max(1.0, np.max(np.abs(w0)))
        scale = np.max(np.abs(dk))
        if scale < 1e-10 * size:
            scale = size
        errs[name] = float(np.max(np.abs(df - dk)) / scale)
    for name in frozen:
        assert np.array_equal(fast[name], init[name]), f"fastnn changed frozen {name}"
        assert np.array_equal(kera[name], init[name]), f"Keras changed frozen {name}"
    moved = [name for name, w0 in init.items() if np.max(np.abs(kera[name] - w0)) > 1e-6]
    assert len(moved) >= len(init) - len(frozen) - 1, \
        f"tensors that did not move: {set(init) - set(moved) - set(frozen)}"
    return errs


def parity(name, kind="multiclass", n_steps=3, seed=0, kernel_scale=1.0, batch_size=N,
           dtype=np.float64, tol=TOL, **params):
    """Train fastnn and its Keras twin (always float64) for n_steps epochs (full
    batch unless batch_size is given); assert and record the worst relative error."""
    est, init, X, Y = _fastnn(kind, n_steps, seed, kernel_scale, batch_size, dtype, **params)
    model, dense, bns = _keras_model(est, batch_size, init)
    X = X.astype(np.float64)
    k_losses, grads = _keras_train(est, model, X, Y, n_steps, batch_size)
    fast, kera = _snapshot(est), _keras_snapshot(dense, bns)
    assert set(fast) == set(kera) == set(init)
    errs = _change_errors(init, fast, kera, _frozen_names(est))
    errs["loss_curve_"] = float(np.max(np.abs(np.array(est.loss_curve_[-n_steps:]) - k_losses)
                                       / np.abs(k_losses)))
    worst = max(errs.values())
    _record(name, worst)
    assert worst < tol, {k: f"{v:.2e}" for k, v in errs.items()}
    return est, model, grads, X


# ----------------------------------------------------------------------
# optimizers
# ----------------------------------------------------------------------
# Non-default values, float32-exact (see the module docstring); epsilon is
# large enough (6e-5 against gradients of ~1e-2) that its placement matters.
B1, B2, RHO, EPS = 0.75, 1 - 2.0 ** -6, 0.75, 2.0 ** -14
SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0),
    "sgd_momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "sgd_nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "sgd_nesterov_0.875": dict(solver="sgd", momentum=MOM, nesterovs_momentum=True),
    "adam": dict(solver="adam", beta_1=B1, beta_2=B2, epsilon=EPS, learning_rate_init=0.01),
    "adagrad": dict(solver="adagrad", initial_accumulator_value=0.0625, epsilon=EPS,
                    learning_rate_init=0.05),
    "rmsprop": dict(solver="rmsprop", rho=RHO, epsilon=EPS, learning_rate_init=0.01),
    "adamax": dict(solver="adamax", beta_1=B1, beta_2=B2, epsilon=EPS,
                   learning_rate_init=0.01),
    "nadam": dict(solver="nadam", beta_1=B1, beta_2=B2, epsilon=EPS,
                  learning_rate_init=0.01),
    "adamw": dict(solver="adamw", beta_1=B1, beta_2=B2, epsilon=EPS, learning_rate_init=0.01,
                  weight_decay=2.5),
}


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_solver_parity(solver):
    parity(f"solver[{solver}]", n_steps=4, activation="relu", **SOLVERS[solver])


# ----------------------------------------------------------------------
# output activations and losses, hidden activations
# ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["regression", "regression_2out", "poisson", "binary",
                                  "multilabel", "multiclass"])
def test_loss_parity(kind):
    lr = 0.01 if kind == "poisson" else 0.05
    parity(f"loss[{kind}]", kind=kind, solver="sgd", momentum=MOM, learning_rate_init=lr)


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu", "leaky_relu",
                                        "elu", "selu", "swish", "gelu", "mish"])
def test_activation_parity(activation):
    # kernel_scale 2 puts many pre-activations on the negative side (leaky/elu/selu)
    parity(f"activation[{activation}]", activation=activation, kernel_scale=2.0,
           solver="sgd", momentum=MOM)


def test_leaky_relu_negative_slope_parity():
    # Keras 3's keras.activations.leaky_relu default slope, 0.2 (the chapter's)
    assert keras.activations.leaky_relu(keras.ops.convert_to_tensor([-1.0])).numpy()[0] \
        == pytest.approx(-0.2)
    parity("activation[leaky_relu, negative_slope=0.2]", activation="leaky_relu",
           negative_slope=0.2, kernel_scale=2.0, solver="sgd", momentum=MOM)


def test_adamw_batch_norm_parity():
    # Keras AdamW decays every trainable variable, BatchNorm's gamma and beta
    # included (none excluded by default): so does fastnn
    parity("solver[adamw, batch_norm]", n_steps=4, activation="elu", batch_norm="after",
           batch_norm_input=True, solver="adamw", beta_1=B1, beta_2=B2, epsilon=EPS,
           learning_rate_init=0.01, weight_decay=2.5, alpha=0.5)


def test_mixed_activations_parity():
    parity("activation[list]", activation=["selu", "leaky_relu"], solver="adam",
           beta_1=B1, beta_2=B2, learning_rate_init=0.01)


# ----------------------------------------------------------------------
# gradient clipping
# ----------------------------------------------------------------------
def _n_weight_tensors(model):
    return len(model.trainable_variables)


@pytest.mark.parametrize("mode", ["clipvalue", "clipnorm", "global_clipnorm"])
def test_clipping_parity(mode):
    value = {"clipvalue": 0.05, "clipnorm": 0.1, "global_clipnorm": 0.15}[mode]
    est, model, grads, _ = parity(f"clip[{mode}]", solver="sgd", momentum=MOM,
                                  learning_rate_init=0.1, **{mode: value})
    assert _n_weight_tensors(model) == len(grads)
    # the chosen value clips some gradients of the first step and leaves others
    if mode == "clipvalue":
        g = np.concatenate([x.ravel() for x in grads])
        assert np.abs(g).max() > value and (np.abs(g) < value).any()
    elif mode == "clipnorm":
        norms = np.array([np.linalg.norm(x) for x in grads])
        assert (norms > value).any() and (norms < value).any()
    else:
        assert np.sqrt(sum(np.sum(x * x) for x in grads)) > value


# ----------------------------------------------------------------------
# BatchNorm
# ----------------------------------------------------------------------
BN_CASES = {
    "before": dict(batch_norm="before"),
    "after": dict(batch_norm="after"),
    "before_input": dict(batch_norm=True, batch_norm_input=True),
    "after_input": dict(batch_norm="after", batch_norm_input=True),
    "input_only": dict(batch_norm=False, batch_norm_input=True),
}


@pytest.mark.parametrize("case", list(BN_CASES))
def test_batch_norm_parity(case):
    est, model, _, X = parity(f"batch_norm[{case}]", activation="elu", solver="sgd",
                              momentum=MOM, learning_rate_init=0.1, batch_norm_momentum=0.8,
                              batch_norm_epsilon=0.02, **BN_CASES[case])
    # inference: BN folded into the Dense layers vs Keras with moving statistics
    p_keras = keras.ops.softmax(model(tf.constant(X), training=False)).numpy()
    p_fast = est.predict_proba(X)
    err = float(np.max(np.abs(p_fast - p_keras) / p_keras))
    _record(f"batch_norm[{case}] predict_proba", err)
    assert err < TOL


# ----------------------------------------------------------------------
# penalties and max-norm
# ----------------------------------------------------------------------
@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
def test_penalty_parity(penalty):
    # alpha / n and the l1_ratio split float32-exact (Keras casts the factors)
    parity(f"penalty[{penalty}]", kind="regression", activation="tanh", penalty=penalty,
           alpha=0.75, l1_ratio=0.25, solver="sgd", momentum=MOM, learning_rate_init=0.02)


def test_max_norm_parity():
    r = 0.6
    _, init, _, _ = _fastnn("multiclass", 1, 0)  # the same initial tensors as parity's
    # the constraint binds: every layer starts with units whose norm exceeds r
    assert all(np.linalg.norm(init[f"W{l}"], axis=0).max() > r for l in range(len(HIDDEN) + 1))
    est, model, _, _ = parity("max_norm", activation="relu", max_norm=r, solver="adam",
                              beta_1=B1, beta_2=B2, learning_rate_init=0.01)
    for w in est.coefs_:
        assert np.linalg.norm(w, axis=0).max() <= r * (1 + 1e-9)


def test_per_layer_max_norm_and_alpha_parity():
    # Keras constrains / penalizes only the layers given a kernel_constraint /
    # kernel_regularizer: here the hidden layers' max-norm and no penalty on
    # the second hidden layer
    r = 0.6
    _, init, _, _ = _fastnn("multiclass", 1, 0)
    assert np.linalg.norm(init["W2"], axis=0).max() > r
    est, _, _, _ = parity("per_layer", activation="relu", max_norm=[r, r, None],
                          alpha=[0.75, None, 0.25], solver="adam", beta_1=B1, beta_2=B2,
                          learning_rate_init=0.01)
    for w in est.coefs_[:2]:
        assert np.linalg.norm(w, axis=0).max() <= r * (1 + 1e-9)
    assert np.linalg.norm(est.coefs_[2], axis=0).max() > r  # the output layer is free


def test_minibatch_parity():
    # 3 unshuffled mini-batches per epoch: several optimizer steps inside one
    # C call (step count, Nadam's running product, BN moving statistics per
    # batch, the penalty scaled by the batch size)
    parity("minibatch", n_steps=2, batch_size=8, activation="relu", batch_norm="after",
           batch_norm_input=True, solver="nadam", beta_1=B1, beta_2=B2, epsilon=EPS,
           learning_rate_init=0.02, alpha=0.5)


def test_float32_parity():
    # fastnn trains in float32 (float32 X), Keras in float64: float32 rounding only
    parity("float32 (tol 1e-4)", n_steps=3, dtype=np.float32, tol=1e-4, activation="elu",
           batch_norm="after", batch_norm_input=True, solver="adam", beta_1=B1, beta_2=B2,
           epsilon=EPS, learning_rate_init=0.01, clipnorm=0.1, alpha=0.75)


def test_combined_parity():
    r, c = 0.9, 0.5
    _, init, _, _ = _fastnn("multiclass", 1, 0)  # the same initial kernels as parity's
    assert any(np.linalg.norm(init[f"W{l}"], axis=0).max() > r for l in range(len(HIDDEN) + 1))
    _, _, grads, _ = parity(
        "combined", n_steps=4, activation="selu", batch_norm="after", batch_norm_input=True,
        batch_norm_momentum=0.9, solver="nadam", beta_1=B1, beta_2=B2, epsilon=1e-5,
        learning_rate_init=0.02, global_clipnorm=c, penalty="elasticnet", alpha=0.75,
        l1_ratio=0.25, max_norm=r)
    assert np.sqrt(sum(np.sum(g * g) for g in grads)) > c  # the clipping binds


# ----------------------------------------------------------------------
# frozen layers (Keras layer.trainable = False)
# ----------------------------------------------------------------------
FROZEN_BN_CASES = {
    "plain": dict(batch_norm=False),
    "before": dict(batch_norm="before"),
    "before_input": dict(batch_norm="before", batch_norm_input=True),
    "after_input": dict(batch_norm="after", batch_norm_input=True),
}


@pytest.mark.parametrize("solver", ["adam", "sgd_momentum"])
@pytest.mark.parametrize("case", list(FROZEN_BN_CASES))
@pytest.mark.parametrize("frozen", [1, 2])
def test_frozen_layers_parity(frozen, case, solver):
    # 3 hidden layers, the first `frozen` Dense layers (and their BatchNorm,
    # which then runs in inference mode) frozen, with an L2 penalty and a
    # binding max-norm: Keras regularizes, constrains and updates only the
    # trainable weights, and so does fastnn (loss_curve_ would differ by the
    # frozen kernels' penalty, ~0.1, if either counted it)
    r = 0.6
    params = dict(hidden_layer_sizes=(5, 4, 3), activation="elu", frozen_layers=frozen,
                  penalty="l2", alpha=0.75, max_norm=r, batch_norm_momentum=0.8,
                  batch_norm_epsilon=0.02, **SOLVERS[solver], **FROZEN_BN_CASES[case])
    _, init, _, _ = _fastnn("multiclass", 1, 0, **params)  # parity's initial tensors
    assert all(np.linalg.norm(init[f"W{l}"], axis=0).max() > r for l in range(4))
    est, model, _, X = parity(f"frozen_layers[{frozen}, {case}, {solver}]", n_steps=4,
                              **params)
    # the max-norm bound the trained kernels and left the frozen ones alone
    for l, w in enumerate(est.coefs_):
        assert (np.linalg.norm(w, axis=0).max() > r) == (l < frozen)
    n_bn = len(_bn_slots(est))
    n_frozen_bn = sum(1 for s in _bn_slots(est) if s <= frozen)
    n_vars = sum(2 if _has_bias(est, l) else 1 for l in range(frozen, 4)) \
        + 2 * (n_bn - n_frozen_bn)
    assert len(model.trainable_variables) == n_vars
    # inference: BN folded into the Dense layers vs Keras with moving statistics
    p_keras = keras.ops.softmax(model(tf.constant(X), training=False)).numpy()
    err = float(np.max(np.abs(est.predict_proba(X) - p_keras) / p_keras))
    _record(f"frozen_layers[{frozen}, {case}, {solver}] predict_proba", err)
    assert err < TOL


def test_frozen_layers_minibatch_parity():
    # several steps inside one C epoch call: the frozen BatchNorm keeps its
    # moving statistics from batch to batch, the trainable one updates them
    parity("frozen_layers[minibatch]", n_steps=2, batch_size=8, hidden_layer_sizes=(5, 4, 3),
           activation="relu", batch_norm="after", batch_norm_input=True, frozen_layers=2,
           solver="nadam", beta_1=B1, beta_2=B2, epsilon=EPS, learning_rate_init=0.02,
           alpha=0.5)


def test_frozen_layers_adamw_global_clipnorm_parity():
    # Keras's AdamW decays and global_clipnorm measures only the trainable
    # variables: fastnn's weight decay and global norm skip the frozen ones
    c = 0.15
    _, _, grads, _ = parity(
        "frozen_layers[adamw, global_clipnorm]", n_steps=4, hidden_layer_sizes=(5, 4, 3),
        activation="elu", batch_norm="after", batch_norm_input=True, frozen_layers=2,
        solver="adamw", beta_1=B1, beta_2=B2, epsilon=EPS, learning_rate_init=0.01,
        weight_decay=2.5, global_clipnorm=c, alpha=0.5)
    assert np.sqrt(sum(np.sum(g * g) for g in grads)) > c  # the clipping binds


# ----------------------------------------------------------------------
# dropout (statistics; masks cannot be compared one by one)
# ----------------------------------------------------------------------
def _identity_dropout(X, rate, alpha, seed):
    """One MC pass of fastnn's dropout through a Dense layer fixed to the identity."""
    d = X.shape[1]
    layout = Layout([d, d])
    net = layout.network(np.float64, activation=[_core.ACTIVATIONS["identity"]],
                         loss=_core.LOSSES["squared_error"], dropout=[rate],
                         alpha_dropout=alpha)
    params = np.zeros(layout.n_params)
    layout.kernel(params, 0)[...] = np.eye(d)
    return _core.predict(net, params, np.zeros(0), np.ascontiguousarray(X), dropout_on=True,
                         seed=seed)


def _selu_activations(n=4000, d=50, seed=0):
    """Standard normal inputs through a LeCun-normal Dense layer and SELU."""
    rng = np.random.RandomState(seed)
    z = rng.normal(size=(n, 100)) @ (rng.normal(size=(100, d)) / np.sqrt(100))
    return SELU_LAMBDA * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))


def test_dropout_keep_rate_and_expectation():
    p = 0.3
    X = np.random.RandomState(0).uniform(1.0, 2.0, size=(2000, 50))
    out = _identity_dropout(X, p, False, seed=7)
    keep = out != 0
    n = keep.size
    sd = np.sqrt(p * (1 - p) / n)
    assert abs(keep.mean() - (1 - p)) < 5 * sd
    col_sd = np.sqrt(p * (1 - p) / X.shape[0])
    assert np.all(np.abs(keep.mean(axis=0) - (1 - p)) < 5 * col_sd)
    np.testing.assert_allclose(out[keep], X[keep] / (1 - p), rtol=1e-12)
    # expectation preserved: E[out] = E[x]
    sd_mean = np.sqrt(np.mean(X ** 2) * p / (1 - p) / n)
    assert abs(out.mean() - X.mean()) < 5 * sd_mean
    # seeded: same seed same mask, another seed another mask
    np.testing.assert_array_equal(out, _identity_dropout(X, p, False, seed=7))
    assert (keep != (_identity_dropout(X, p, False, seed=8) != 0)).any()


def test_dropout_matches_keras():
    p = 0.3
    X = np.random.RandomState(1).uniform(1.0, 2.0, size=(2000, 50))
    fast = _identity_dropout(X, p, False, seed=3)
    kera = keras.layers.Dropout(p, seed=3)(tf.constant(X), training=True).numpy()
    kf, kk = fast != 0, kera != 0
    np.testing.assert_allclose(fast[kf], X[kf] / (1 - p), rtol=1e-12)
    np.testing.assert_allclose(kera[kk], X[kk] / (1 - p), rtol=1e-12)
    sd = np.sqrt(2 * p * (1 - p) / X.size)
    err = abs(kf.mean() - kk.mean())
    _record("dropout keep rate", err, "|fastnn - keras|")
    assert err < 5 * sd


def _alpha_coefficients(p):
    """Keras AlphaDropout: dropped units -> alpha' = -lambda alpha, then a x + b."""
    ap = -SELU_LAMBDA * SELU_ALPHA
    a = ((1 - p) * (1 + p * ap ** 2)) ** -0.5
    return a, -a * ap * p, ap


def test_alpha_dropout_self_normalizing():
    p = 0.2
    H = _selu_activations()
    assert abs(H.mean()) < 0.05 and abs(H.var() - 1) < 0.1
    out = _identity_dropout(H, p, True, seed=11)
    assert abs(out.mean()) < 0.05 and abs(out.var() - 1) < 0.1
    assert abs(out.mean() - H.mean()) < 0.02
    assert abs(out.var() - H.var()) < 0.03
    a, b, ap = _alpha_coefficients(p)
    keep = ~np.isclose(out, a * ap + b, rtol=0, atol=1e-12)
    assert abs(keep.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / out.size)


def test_alpha_dropout_matches_keras():
    p = 0.2
    # exact affine coefficients: inputs 0 and 1 give outputs b / a + b when kept,
    # a alpha' + b when dropped (the value common to both)
    a, b, ap = _alpha_coefficients(p)
    X01 = np.tile([0.0, 1.0], (500, 20))

    def coefficients(out):
        v0, v1 = np.unique(out[:, 0::2]), np.unique(out[:, 1::2])
        assert len(v0) == 2 and len(v1) == 2
        dropped = np.intersect1d(np.round(v0, 12), np.round(v1, 12))
        assert len(dropped) == 1
        kept0 = v0[np.abs(v0 - dropped[0]) > 1e-9][0]
        kept1 = v1[np.abs(v1 - dropped[0]) > 1e-9][0]
        return np.array([kept1 - kept0, kept0, dropped[0]])  # a, b, a alpha' + b

    c_fast = coefficients(_identity_dropout(X01, p, True, seed=5))
    c_keras = coefficients(keras.layers.AlphaDropout(p, seed=5)(tf.constant(X01),
                                                               training=True).numpy())
    np.testing.assert_allclose(c_keras, [a, b, a * ap + b], rtol=1e-12)
    coef_err = float(np.max(np.abs(c_fast - c_keras) / np.abs(c_keras)))
    _record("alpha_dropout coefficients", coef_err)
    assert coef_err < 1e-12
    # statistics on SELU activations
    H = _selu_activations(seed=1)
    fast = _identity_dropout(H, p, True, seed=9)
    kera = keras.layers.AlphaDropout(p, seed=9)(tf.constant(H), training=True).numpy()
    d_mean, d_var = abs(fast.mean() - kera.mean()), abs(fast.var() - kera.var())
    _record("alpha_dropout mean", d_mean, "|fastnn - keras|")
    _record("alpha_dropout variance", d_var, "|fastnn - keras|")
    assert d_mean < 0.02 and d_var < 0.03
    drop_value = a * ap + b
    keep_f = ~np.isclose(fast, drop_value, rtol=0, atol=1e-12)
    keep_k = ~np.isclose(kera, drop_value, rtol=0, atol=1e-12)
    assert abs(keep_f.mean() - keep_k.mean()) < 5 * np.sqrt(2 * p * (1 - p) / H.size)


def test_mc_dropout_std():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    y = X @ rng.normal(size=4)
    kw = dict(hidden_layer_sizes=(16,), max_iter=30, random_state=0,
              learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor(dropout=0.2, **kw).fit(X, y)
        plain = MLPRegressor(dropout=0.0, **kw).fit(X, y)
        clf = MLPClassifier(dropout=0.2, **kw).fit(X, y > 0)
    mean, std = reg.predict(X, mc_samples=10, return_std=True)
    assert mean.shape == std.shape == (60,)
    assert np.all(std > 0)
    mean2, std2 = reg.predict(X, mc_samples=10, return_std=True)
    np.testing.assert_array_equal(mean, mean2)  # seeded by random_state
    mean0, std0 = plain.predict(X, mc_samples=10, return_std=True)
    np.testing.assert_array_equal(std0, 0)
    np.testing.assert_allclose(mean0, plain.predict(X), rtol=1e-10)
    proba, pstd = clf.predict_proba(X, mc_samples=10, return_std=True)
    assert proba.shape == pstd.shape == (60, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert np.all(pstd > 0)
