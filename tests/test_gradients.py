"""The C core's objective and backward pass (fastnn._core.loss_grad), checked in
float64 against an independent NumPy forward pass and against central finite
differences of the C objective.

The reference below is written from the formulas (fastnn.h, SPEC section 3,
Keras 3 / sklearn), not from the C code: Dense, BatchNorm with batch
statistics (biased variance, eps), the activations, sklearn's losses, the
penalty alpha / sum(sw) * (l1 |W|_1 + (1 - l1) / 2 |W|^2), and dropout
(inverted, or Keras AlphaDropout).  The dropout masks are drawn with a copy of
the counter-based RNG of csrc/rng.h: one uniform per element, keyed by
(seed, stream = chunk_start * n_layers + layer, flat element index), kept when
u >= rate.

Finite differences: h = 1e-6, central; a coordinate is skipped when a ReLU /
leaky ReLU pre-activation changes side within the stencil (the reference tells).
L1 penalties keep |W| >= 1e-2 so |W|_1 is smooth.  A coordinate fails when
|fd - g| > GRAD_TOL * max(1, |g|); test_check_detects_wrong_gradients shows
that a much smaller error than any real bug is caught.
"""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special
from hypothesis import HealthCheck, given, settings, strategies as st

from fastnn import _core
from fastnn._network import Layout

HIDDEN_ACTS = ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "selu", "swish",
               "gelu", "mish"]
OUT_ACT = {"squared_error": "identity", "log_loss": "softmax",
           "binary_log_loss": "logistic", "poisson": "exp"}
KINKED = {"relu", "leaky_relu"}
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
LEAKY = 0.01
BN_EPS = 1e-3
H = 1e-6                 # finite-difference step
GRAD_TOL = 1e-6          # |fd - g| <= GRAD_TOL * max(1, |g|)
OBJ_RTOL = 1e-10         # C objective vs the NumPy reference

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- test cases
class Case:
    """A network, random parameters, data and targets, all float64."""

    def __init__(self, units, hidden_act="tanh", loss="squared_error", *, n=8,
                 weighted=False, batch_norm=False, batch_norm_input=False, dropout=None,
                 alpha_dropout=False, penalty="l2", alpha=0.0, l1_ratio=0.15, seed=0,
                 kernel_std=0.5, leaky_slope=LEAKY):
        rng = np.random.default_rng(seed)
        self.units = list(units)
        self.L = len(units) - 1
        self.hidden_act, self.loss = hidden_act, loss
        self.acts = [hidden_act] * (self.L - 1) + [OUT_ACT[loss]]
        self.batch_norm, self.batch_norm_input = batch_norm, batch_norm_input
        self.dropout = None if dropout is None else [float(r) for r in dropout]
        self.alpha_dropout = alpha_dropout
        self.penalty, self.alpha, self.l1_ratio = penalty, alpha, l1_ratio
        self.layout = Layout(units, batch_norm=batch_norm, batch_norm_input=batch_norm_input)
        self.config = dict(
            activation=[_core.ACTIVATIONS[a] for a in self.acts], loss=_core.LOSSES[loss],
            alpha=alpha, penalty=_core.PENALTIES[penalty], l1_ratio=l1_ratio,
            dropout=self.dropout, alpha_dropout=alpha_dropout, leaky_slope=leaky_slope,
            bn_epsilon=BN_EPS, n_threads=1)
        self.net = self.network(np.float64)

        lay = self.layout
        p = np.empty(lay.n_params)
        for l in range(self.L):
            w = lay.kernel(p, l)
            std = kernel_std if kernel_std is not None else 1 / np.sqrt(units[l])
            w[...] = rng.normal(0, std, w.shape)
            if self.l1_part() > 0:  # keep |W|_1 differentiable within the stencil
                small = np.abs(w) < 1e-2
                w[small] = np.where(w[small] < 0, -1e-2, 1e-2)
            b = lay.bias(p, l)
            if b is not None:
                b[...] = rng.normal(0, 0.5, b.shape)
        for s in range(self.L):
            if lay.has_bn(s):
                g, b = lay.gamma_beta(p, s)
                g[...] = rng.uniform(0.5, 1.5, g.shape)
                b[...] = rng.normal(0, 0.3, b.shape)
        self.params = p

        n_in, n_out = units[0], units[-1]
        self.X = rng.normal(0, 1, (n, n_in))
        if loss == "squared_error":
            y = rng.normal(0, 1, (n, n_out))
        elif loss == "log_loss":
            y = np.eye(n_out)[rng.integers(0, n_out, n)]
        elif loss == "binary_log_loss":
            y = rng.integers(0, 2, (n, n_out)).astype(float)
        else:
            y = rng.poisson(1.0, (n, n_out)).astype(float)
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self.sw = rng.uniform(0.1, 3.0, n) if weighted else None

    def network(self, dtype, **override):
        return self.layout.network(dtype, **{**self.config, **override})

    def l1_part(self):
        return {"l2": 0.0, "l1": 1.0, "elasticnet": self.l1_ratio}[self.penalty] \
            if self.alpha > 0 else 0.0

    # -- the C core
    def c(self, params=None, *, net=None, chunk_rows=4096, dropout_on=False, seed=0,
          dtype=np.float64, sw="case"):
        """(loss, objective, grad) from the C core; grad starts as NaN so every
        coordinate must be written."""
        p = self.params if params is None else params
        sw = self.sw if isinstance(sw, str) else sw
        cast = lambda a: None if a is None else np.ascontiguousarray(a, dtype=dtype)
        grad = np.full(self.layout.n_params, np.nan, dtype=dtype)
        loss, obj = _core.loss_grad(net or (self.net if dtype == np.float64
                                            else self.network(dtype)),
                                    cast(p), cast(self.X), cast(self.y), cast(sw), grad,
                                    chunk_rows=chunk_rows, dropout_on=dropout_on, seed=seed)
        return loss, obj, grad

    def objective(self, params, **kw):
        return self.c(params, **kw)[1]


# ------------------------------------------------------- NumPy reference pass
def _mix64(z):
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _uniform(seed, stream, n):
    idx = np.arange(n, dtype=np.uint64)
    h = _mix64(np.uint64(seed) ^ _mix64(np.uint64(stream) ^ _mix64(idx)))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def ref_dropout(x, rate, alpha, seed, stream):
    keep = (_uniform(seed, stream, x.size) >= rate).reshape(x.shape)
    if alpha:  # keras.layers.AlphaDropout
        ap = -SELU_LAMBDA * SELU_ALPHA
        a = ((1 - rate) * (1 + rate * ap ** 2)) ** -0.5
        b = -a * ap * rate
        return a * np.where(keep, x, ap) + b
    return np.where(keep, x / (1 - rate), 0.0)


def ref_bn(x, gamma, beta):
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    return gamma * (x - mean) / np.sqrt(var + BN_EPS) + beta


def ref_act(name, x, slope=LEAKY):
    if name == "identity":
        return x
    if name == "logistic":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0)
    if name == "leaky_relu":
        return np.where(x > 0, x, slope * x)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    if name == "selu":
        return SELU_LAMBDA * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))
    if name == "swish":
        return x / (1 + np.exp(-x))
    if name == "gelu":  # exact form, Keras's approximate=False
        return 0.5 * x * (1 + scipy.special.erf(x / np.sqrt(2)))
    if name == "mish":
        return x * np.tanh(np.logaddexp(0, x))
    if name == "exp":
        return np.exp(x)
    if name == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise AssertionError(name)


def ref_forward(case, params, dropout_on=False, seed=0):
    """Output activations and the list of kinked (ReLU-type) pre-activations."""
    lay, L = case.layout, case.L
    h = case.X
    kinks = []
    if lay.has_bn(0):
        h = ref_bn(h, *lay.gamma_beta(params, 0))
    for l in range(L):
        hidden = l < L - 1
        if dropout_on and case.dropout is not None and case.dropout[l] > 0:
            h = ref_dropout(h, case.dropout[l], case.alpha_dropout, seed, l)
        z = h @ lay.kernel(params, l)
        b = lay.bias(params, l)
        if b is not None:
            z = z + b
        if hidden and case.batch_norm == "before":
            z = ref_bn(z, *lay.gamma_beta(params, l + 1))
        if hidden and case.acts[l] in KINKED:
            kinks.append(z)
        h = ref_act(case.acts[l], z)
        if hidden and case.batch_norm == "after":
            h = ref_bn(h, *lay.gamma_beta(params, l + 1))
    return h, kinks


def _xlogy(a, b):
    return np.where(a == 0, 0.0, a * np.log(np.where(a == 0, 1.0, b)))


def ref_loss_objective(case, params, dropout_on=False, seed=0):
    """(sklearn's reported loss, differentiated objective) in NumPy."""
    p, _ = ref_forward(case, params, dropout_on, seed)
    y = case.y
    eps = np.finfo(np.float64).eps
    if case.loss == "squared_error":
        per = 0.5 * (y - p) ** 2
    elif case.loss == "log_loss":
        per = -_xlogy(y, np.clip(p, eps, 1 - eps))
    elif case.loss == "binary_log_loss":
        pc = np.clip(p, eps, 1 - eps)
        per = -(_xlogy(y, pc) + _xlogy(1 - y, 1 - pc))
    else:
        per = _xlogy(y, y / p) - y + p
    sw = np.ones(len(y)) if case.sw is None else case.sw
    data = np.sum(sw * per.sum(axis=1)) / sw.sum()
    W = np.concatenate([case.layout.kernel(params, l).ravel() for l in range(case.L)])
    l1 = case.l1_part() if case.alpha > 0 else 0.0
    pen = case.alpha / sw.sum() * (l1 * np.abs(W).sum() + (1 - l1) / 2 * np.sum(W ** 2))
    reported = data / (y.shape[1] if case.loss == "squared_error" else 1) + pen
    return reported, data + pen


# ------------------------------------------------------------ the checks
def finite_differences(case, idx, *, dropout_on=False, seed=0, h=H):
    """Central differences of the C objective on coordinates idx; valid[j] is
    False when a ReLU-type pre-activation changes side within the stencil."""
    base = case.params
    kinked = case.L > 1 and case.hidden_act in KINKED
    if kinked:
        side = [k > 0 for k in ref_forward(case, base, dropout_on, seed)[1]]
    fd = np.empty(len(idx))
    valid = np.ones(len(idx), dtype=bool)
    for j, i in enumerate(idx):
        vals = []
        for step in (h, -h):
            p = base.copy()
            p[i] += step
            vals.append(case.objective(p, dropout_on=dropout_on, seed=seed))
            if kinked:
                ks = ref_forward(case, p, dropout_on, seed)[1]
                valid[j] &= all(np.array_equal(k > 0, s) for k, s in zip(ks, side))
        fd[j] = (vals[0] - vals[1]) / (2 * h)
    return fd, valid


def fd_noise(case, obj, dropout_on=False, seed=0, h=H):
    """Bound on the rounding error of a central difference: 2 * (rounding error
    of one objective evaluation) / (2h).  Evaluating the objective costs a few
    ulps of |objective|, plus the binary cross-entropy's log(1 - p) with p
    near 1: 1 - p is only known to about eps absolutely, so log(1 - p) to about
    eps / (1 - p).  This term only matters for saturated logistic outputs."""
    eps = np.finfo(np.float64).eps
    err = 16 * eps * max(1.0, abs(obj))
    if case.loss == "binary_log_loss":
        p, _ = ref_forward(case, case.params, dropout_on, seed)
        sw = np.ones(len(p)) if case.sw is None else case.sw
        edge = np.where(case.y == 0, 1 - p, p).clip(eps, None)
        err += 4 * eps * np.sum(sw[:, None] / edge) / sw.sum()
    return err / h


def grad_errors(g, fd, valid, noise=0.0):
    """Per-coordinate error in units of the tolerance (> 1 fails); 0 where skipped."""
    err = np.abs(fd - g) / (GRAD_TOL * np.maximum(1.0, np.abs(g)) + noise)
    return np.where(valid, err, 0.0)


def check_case(case, *, dropout_on=False, seed=0, max_coords=300, rng_seed=0):
    """Objective vs the reference, reported loss, then grad vs finite differences."""
    loss, obj, g = case.c(dropout_on=dropout_on, seed=seed)
    assert np.all(np.isfinite(g)), "gradient not fully written or non-finite"
    ref_loss, ref_obj = ref_loss_objective(case, case.params, dropout_on, seed)
    assert abs(obj - ref_obj) <= OBJ_RTOL * max(1.0, abs(ref_obj)), (obj, ref_obj)
    assert abs(loss - ref_loss) <= OBJ_RTOL * max(1.0, abs(ref_loss)), (loss, ref_loss)
    n = case.layout.n_params
    idx = np.arange(n)
    if n > max_coords:
        idx = np.sort(np.random.default_rng(rng_seed).choice(n, max_coords, replace=False))
    fd, valid = finite_differences(case, idx, dropout_on=dropout_on, seed=seed)
    err = grad_errors(g[idx], fd, valid, fd_noise(case, obj, dropout_on, seed))
    worst = int(np.argmax(err))
    assert err[worst] <= 1.0, (
        f"param {idx[worst]} ({describe(case.layout, idx[worst])}): "
        f"analytic {g[idx[worst]]!r}, finite difference {fd[worst]!r}; "
        f"{int(np.sum(err > 1))} of {int(valid.sum())} checked coordinates off")
    return g, fd, valid


def describe(lay, i):
    """Which tensor flat parameter i belongs to (for failure messages)."""
    for l in range(lay.n_layers):
        if lay.w_off[l] <= i < lay.w_off[l] + lay.units[l] * lay.units[l + 1]:
            return f"kernel {l}"
        if lay.b_off[l] >= 0 and lay.b_off[l] <= i < lay.b_off[l] + lay.units[l + 1]:
            return f"bias {l}"
    for s in range(lay.n_layers):
        if lay.bn_off[s] >= 0 and lay.bn_off[s] <= i < lay.bn_off[s] + 2 * lay.units[s]:
            return f"BN slot {s} {'gamma' if i < lay.bn_off[s] + lay.units[s] else 'beta'}"
    return "?"


# ------------------------------------------------------------ strategies
LOSS_VARIANTS = {  # name -> (loss, n_out)
    "squared_error-3": ("squared_error", 3),
    "log_loss-4": ("log_loss", 4),
    "binary-1": ("binary_log_loss", 1),
    "binary-multilabel-3": ("binary_log_loss", 3),
    "poisson-2": ("poisson", 2),
}


@st.composite
def architectures(draw, loss=None):
    loss = loss or draw(st.sampled_from(sorted(OUT_ACT)))
    n_in = draw(st.integers(1, 6))
    hidden = draw(st.lists(st.integers(1, 7), min_size=0, max_size=3))
    n_out = draw(st.integers(2, 4) if loss == "log_loss" else st.integers(1, 4))
    return loss, [n_in, *hidden, n_out]


# ------------------------------------------------------------ the tests
@pytest.mark.parametrize("variant", sorted(LOSS_VARIANTS))
@pytest.mark.parametrize("act", HIDDEN_ACTS)
def test_every_activation_and_loss(act, variant):
    loss, n_out = LOSS_VARIANTS[variant]
    seed = HIDDEN_ACTS.index(act) * 10 + sorted(LOSS_VARIANTS).index(variant)
    case = Case([4, 5, 6, n_out], act, loss, n=12, weighted=seed % 2 == 0, seed=seed,
                alpha=0.05)
    check_case(case)


@settings(max_examples=300, **SETTINGS)
@given(arch=architectures(), act=st.sampled_from(HIDDEN_ACTS), n=st.integers(1, 20),
       weighted=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_random_architectures(arch, act, n, weighted, seed):
    loss, units = arch
    check_case(Case(units, act, loss, n=n, weighted=weighted, seed=seed, alpha=1e-2))


@settings(max_examples=200, **SETTINGS)
@given(arch=architectures(), act=st.sampled_from(HIDDEN_ACTS), n=st.integers(2, 20),
       weighted=st.booleans(), bn=st.sampled_from([False, "before", "after"]),
       bn_input=st.booleans(), seed=st.integers(0, 2 ** 31 - 1))
def test_batch_norm(arch, act, n, weighted, bn, bn_input, seed):
    loss, units = arch
    check_case(Case(units, act, loss, n=n, weighted=weighted, batch_norm=bn,
                    batch_norm_input=bn_input, seed=seed))


@pytest.mark.parametrize("bn_input", [False, True])
@pytest.mark.parametrize("bn", ["before", "after"])
@pytest.mark.parametrize("act", ["tanh", "selu"])
def test_batch_norm_every_slot(act, bn, bn_input):
    """Two hidden layers with BN, more rows: every gamma/beta coordinate checked."""
    case = Case([3, 6, 5, 2], act, "squared_error", n=16, weighted=True, batch_norm=bn,
                batch_norm_input=bn_input, seed=7, alpha=0.02)
    g, fd, valid = check_case(case)
    assert valid.all()


@pytest.mark.parametrize("loss", sorted(OUT_ACT))
@pytest.mark.parametrize("bn", [False, "before", "after"])
def test_batch_norm_single_row(bn, loss):
    """Batch of one row: BN sees zero variance; must not crash and stay exact."""
    n_out = 3 if loss == "log_loss" else 2
    case = Case([3, 4, 4, n_out], "elu", loss, n=1, batch_norm=bn, batch_norm_input=True,
                seed=3)
    check_case(case)


@settings(max_examples=200, **SETTINGS)
@given(arch=architectures(), act=st.sampled_from(HIDDEN_ACTS), n=st.integers(1, 20),
       weighted=st.booleans(), alpha_dropout=st.booleans(),
       rates=st.lists(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.9]), min_size=4, max_size=4),
       bn=st.sampled_from([False, "before", "after"]), drop_seed=st.integers(0, 2 ** 32 - 1),
       seed=st.integers(0, 2 ** 31 - 1))
def test_dropout(arch, act, n, weighted, alpha_dropout, rates, bn, drop_seed, seed):
    loss, units = arch
    L = len(units) - 1
    case = Case(units, act, loss, n=n, weighted=weighted, dropout=rates[:L],
                alpha_dropout=alpha_dropout, batch_norm=bn if n > 1 else False, seed=seed)
    check_case(case, dropout_on=True, seed=drop_seed)


@pytest.mark.parametrize("alpha_dropout", [False, True])
def test_dropout_masks_and_off(alpha_dropout):
    """dropout_on=False ignores the rates; the seed changes the mask."""
    case = Case([5, 7, 7, 3], "selu", "log_loss", n=20, dropout=[0.2, 0.3, 0.4],
                alpha_dropout=alpha_dropout, seed=11)
    plain = Case([5, 7, 7, 3], "selu", "log_loss", n=20, seed=11)
    off = case.c(dropout_on=False)
    ref = plain.c()
    assert off[1] == ref[1] and np.array_equal(off[2], ref[2])
    a, b, c = (case.c(dropout_on=True, seed=s)[1] for s in (1, 1, 2))
    assert a == b and a != c and a != off[1]
    check_case(case, dropout_on=True, seed=2)


@pytest.mark.parametrize("alpha", [0.1, 3.0])
@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
@pytest.mark.parametrize("weighted", [False, True])
def test_penalties(penalty, alpha, weighted):
    case = Case([4, 6, 5, 3], "swish", "squared_error", n=9, weighted=weighted,
                penalty=penalty, alpha=alpha, l1_ratio=0.3, seed=5)
    check_case(case)
    # The penalty's own gradient on the kernels: alpha/sum(sw) (l1 sign(W) + (1-l1) W).
    free = Case([4, 6, 5, 3], "swish", "squared_error", n=9, weighted=weighted,
                penalty=penalty, alpha=0.0, l1_ratio=0.3, seed=5)
    g, g0 = case.c()[2], free.c()[2]
    sw_sum = 9.0 if case.sw is None else case.sw.sum()
    l1 = case.l1_part()
    for l in range(case.L):
        W = case.layout.kernel(case.params, l)
        want = alpha / sw_sum * (l1 * np.sign(W) + (1 - l1) * W)
        np.testing.assert_allclose(case.layout.kernel(g - g0, l), want, rtol=1e-10,
                                   atol=1e-12)
    biases = [case.layout.bias(g - g0, l) for l in range(case.L)]
    assert all(np.all(b == 0) for b in biases)  # biases are never penalised


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 7, 19, 20, 64, 0, -1])
@pytest.mark.parametrize("loss", sorted(OUT_ACT))
def test_chunking(loss, chunk_rows):
    n_out = 3 if loss == "log_loss" else 2
    case = Case([4, 7, 5, n_out], "tanh", loss, n=20, weighted=True, alpha=0.1,
                penalty="elasticnet", seed=13)
    l1, o1, g1 = case.c(chunk_rows=20)
    lc, oc, gc = case.c(chunk_rows=chunk_rows)
    assert abs(oc - o1) <= 1e-12 * max(1, abs(o1))
    assert abs(lc - l1) <= 1e-12 * max(1, abs(l1))
    np.testing.assert_allclose(gc, g1, rtol=1e-12, atol=1e-12 * max(1, np.abs(g1).max()))


@pytest.mark.parametrize("bn", ["before", "after"])
def test_chunking_ignored_with_batch_norm(bn):
    """BN couples the rows: chunk_rows must not split the batch."""
    case = Case([4, 7, 5, 2], "relu", "squared_error", n=20, batch_norm=bn,
                batch_norm_input=True, seed=17)
    full = case.c(chunk_rows=20)
    for chunk in (1, 3, 7):
        part = case.c(chunk_rows=chunk)
        assert part[:2] == full[:2] and np.array_equal(part[2], full[2])


F32_CASES = [
    ("tanh", "squared_error", False, False, None),
    ("relu", "log_loss", "before", True, None),
    ("elu", "binary_log_loss", "after", False, None),
    ("swish", "poisson", False, True, None),
    ("selu", "log_loss", False, False, [0.1, 0.2, 0.2]),
    ("logistic", "squared_error", "after", True, [0.0, 0.3, 0.1]),
    ("gelu", "binary_log_loss", False, False, None),
    ("mish", "log_loss", "after", False, [0.1, 0.0, 0.2]),
]


@pytest.mark.parametrize("act,loss,bn,bn_input,dropout", F32_CASES)
def test_float32_matches_float64(act, loss, bn, bn_input, dropout):
    n_out = 3
    case = Case([5, 6, 6, n_out], act, loss, n=20, weighted=True, batch_norm=bn,
                batch_norm_input=bn_input, dropout=dropout, alpha_dropout=act == "selu",
                alpha=0.05, seed=19)
    # Round the inputs to float32 so both runs see the same problem.
    for name in ("params", "X", "y", "sw"):
        setattr(case, name, getattr(case, name).astype(np.float32).astype(np.float64))
    on = dropout is not None
    l64, o64, g64 = case.c(dropout_on=on, seed=4)
    l32, o32, g32 = case.c(dtype=np.float32, dropout_on=on, seed=4)
    assert g32.dtype == np.float32 and np.all(np.isfinite(g32))
    assert abs(o32 - o64) <= 1e-4 * abs(o64)
    assert abs(l32 - l64) <= 1e-4 * abs(l64)
    scale = np.abs(g64).max()
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("act,bn,bn_input,dropout", [
    ("relu", False, False, None), ("elu", "before", True, [0.1, 0.2, 0.0]),
    ("swish", "after", False, None)])
def test_float32_kernel_matches_float64(act, bn, bn_input, dropout):
    """Widths above the small-product cutoff: float32 forward and weight
    gradient products run in the core's kernels where the CPU has them
    (csrc/sgemm_kernels.c), BLAS otherwise; float64 always in BLAS."""
    case = Case([20, 40, 24, 3], act, "log_loss", n=37, weighted=True, batch_norm=bn,
                batch_norm_input=bn_input, dropout=dropout, alpha=0.01, seed=29)
    for name in ("params", "X", "y", "sw"):
        setattr(case, name, getattr(case, name).astype(np.float32).astype(np.float64))
    on = dropout is not None
    g64 = case.c(dropout_on=on, seed=5)[2]
    g32 = case.c(dtype=np.float32, dropout_on=on, seed=5)[2]
    # (not the loss: log_loss clips probabilities at the dtype's epsilon)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5 * np.abs(g64).max())


@pytest.mark.parametrize("bn", [False, "before", "after"])
def test_large_network_blas_path(bn):
    """Shapes above the small-GEMM cutoff (4096 multiply-adds), so every product
    goes through BLAS; a random subset of 300 coordinates is checked."""
    case = Case([12, 40, 24, 5], "tanh", "log_loss", n=48, weighted=True, batch_norm=bn,
                batch_norm_input=bn is not False, alpha=0.01, seed=23, kernel_std=None)
    check_case(case, max_coords=300)


def test_thread_count_does_not_change_result():
    """Above the core's thresholds (element-wise loops over 64k elements, GEMMs
    split in column blocks from 256k multiply-adds): n_threads 1 and 2 agree
    bitwise."""
    case = Case([8, 128, 40, 3], "elu", "log_loss", n=600, weighted=True,
                batch_norm="after", batch_norm_input=True, dropout=[0.1, 0.2, 0.2],
                alpha=0.01, seed=29, kernel_std=None)
    one = case.c(dropout_on=True, seed=3)
    two = case.c(net=case.network(np.float64, n_threads=2), dropout_on=True, seed=3)
    assert one[:2] == two[:2] and np.array_equal(one[2], two[2])


def test_inputs_not_modified():
    case = Case([3, 4, 2], "tanh", "binary_log_loss", n=5, weighted=True, batch_norm="after",
                batch_norm_input=True, dropout=[0.2, 0.2], seed=31)
    before = [a.copy() for a in (case.params, case.X, case.y, case.sw)]
    case.c(dropout_on=True, seed=1)
    for a, b in zip(before, (case.params, case.X, case.y, case.sw)):
        assert np.array_equal(a, b)


def test_strided_and_sparse_X_match_dense():
    """Any strides, and CSR (int32/int64, unsorted indices), give the same numbers."""
    case = Case([6, 5, 3], "tanh", "log_loss", n=10, weighted=True, alpha=0.1, seed=47)
    ref = case.c()
    big = np.zeros((20, 12))
    big[::2, ::2] = case.X
    flipped = np.ascontiguousarray(case.X[::-1, ::-1])[::-1, ::-1]
    csr = sp.csr_matrix(case.X)
    csr64 = sp.csr_matrix(case.X)
    csr64.indices = csr64.indices.astype(np.int64)
    csr64.indptr = csr64.indptr.astype(np.int64)
    unsorted = sp.csr_matrix(case.X)
    for r in range(unsorted.shape[0]):  # reverse each row's entries
        a, b = unsorted.indptr[r], unsorted.indptr[r + 1]
        unsorted.indices[a:b] = unsorted.indices[a:b][::-1].copy()
        unsorted.data[a:b] = unsorted.data[a:b][::-1].copy()
    for X in (np.asfortranarray(case.X), big[::2, ::2], flipped, csr, csr64, unsorted):
        grad = np.full(case.layout.n_params, np.nan)
        out = _core.loss_grad(case.net, case.params, X, case.y, case.sw, grad)
        assert out == ref[:2] and np.array_equal(grad, ref[2])


# ---------------------------------------------- the check itself can fail
def test_check_detects_wrong_gradients():
    case = Case([3, 5, 4, 2], "leaky_relu", "squared_error", n=10, weighted=True,
                alpha=0.1, seed=37)
    g, fd, valid = check_case(case)
    assert valid.sum() > 0.9 * len(valid)
    # One coordinate off by 1e-5 (relative, or absolute below 1) is caught...
    k = int(np.argmax(valid))
    bad = g.copy()
    bad[k] += 1e-5 * max(1.0, abs(g[k]))
    assert grad_errors(bad, fd, valid)[k] > 1
    assert np.all(grad_errors(g, fd, valid) <= 1)
    # ...and so is a subtly wrong formula: backprop with leaky slope 0.02 on a
    # network whose forward pass uses 0.01 (any layer-1 unit with a negative
    # pre-activation makes the kernel-0 / bias-0 gradient wrong).
    wrong = case.c(net=case.network(np.float64, leaky_slope=0.02))[2]
    _, kinks = ref_forward(case, case.params)
    assert (kinks[0] < 0).any()
    assert np.any(grad_errors(wrong, fd, valid) > 1)
    # ...and a gradient scaled by (1 + 1e-4) overall.
    assert np.any(grad_errors(g * (1 + 1e-4), fd, valid) > 1)


def test_reference_detects_wrong_objective():
    """The NumPy reference is not trivially equal to anything: a wrong penalty
    (alpha not divided by sum(sw)) or a dropout mask from another seed differ."""
    case = Case([3, 5, 2], "tanh", "squared_error", n=6, weighted=True, alpha=0.3,
                dropout=[0.3, 0.3], seed=41)
    obj = case.c(dropout_on=True, seed=9)[1]
    assert abs(obj - ref_loss_objective(case, case.params, True, 9)[1]) <= OBJ_RTOL
    assert abs(obj - ref_loss_objective(case, case.params, True, 10)[1]) > 1e-6
    case.alpha = 0.3 * case.sw.sum()
    assert abs(obj - ref_loss_objective(case, case.params, True, 9)[1]) > 1e-6


# ------------------------------------------------------------ bad arguments
@pytest.fixture
def small():
    return Case([3, 4, 2], "tanh", "squared_error", n=5, weighted=True, seed=43)


def _call(case, params=None, X=None, y=None, sw="case", grad=None, net=None, **kw):
    lay = case.layout
    return _core.loss_grad(net or case.net, case.params if params is None else params,
                           case.X if X is None else X, case.y if y is None else y,
                           case.sw if isinstance(sw, str) else sw,
                           np.zeros(lay.n_params) if grad is None else grad, **kw)


def test_valid_call_works(small):
    loss, obj = _call(small)
    assert np.isfinite(loss) and np.isfinite(obj)


@pytest.mark.parametrize("what", [
    "params_short", "params_long", "params_2d", "params_f32", "grad_short", "grad_f32",
    "grad_list", "y_cols", "y_rows", "y_1d", "y_f32", "y_int", "y_fortran_strided",
    "X_cols", "X_int", "X_1d", "X_list", "sw_short", "sw_f32", "sw_2d", "no_rows",
])
def test_bad_arguments_raise(small, what):
    c, n_p = small, small.layout.n_params
    kw = {
        "params_short": dict(params=c.params[:-1].copy()),
        "params_long": dict(params=np.append(c.params, 0.0)),
        "params_2d": dict(params=c.params.reshape(1, -1)),
        "params_f32": dict(params=c.params.astype(np.float32)),
        "grad_short": dict(grad=np.zeros(n_p - 1)),
        "grad_f32": dict(grad=np.zeros(n_p, dtype=np.float32)),
        "grad_list": dict(grad=[0.0] * n_p),
        "y_cols": dict(y=np.zeros((5, 3))),
        "y_rows": dict(y=np.zeros((4, 2))),
        "y_1d": dict(y=np.zeros(10)),
        "y_f32": dict(y=c.y.astype(np.float32)),
        "y_int": dict(y=c.y.astype(np.int64)),
        "y_fortran_strided": dict(y=np.zeros((2, 5)).T),
        "X_cols": dict(X=np.zeros((5, 4))),
        "X_int": dict(X=c.X.astype(np.int64)),  # float32 X is converted (test_dtype)
        "X_1d": dict(X=np.zeros(15)),
        "X_list": dict(X=c.X.tolist()),
        "sw_short": dict(sw=np.ones(4)),
        "sw_f32": dict(sw=np.ones(5, dtype=np.float32)),
        "sw_2d": dict(sw=np.ones((5, 1))),
        "no_rows": dict(X=np.zeros((0, 3)), y=np.zeros((0, 2)), sw=None),
    }[what]
    with pytest.raises(ValueError):
        _call(small, **kw)


def test_float32_network_rejects_float64(small):
    net32 = small.network(np.float32)
    with pytest.raises(ValueError):
        _call(small, net=net32)


@pytest.mark.parametrize("rates", [[1.0, 0.0], [0.0, 1.0], [-0.1, 0.0], [0.5], [0.1, 0.1, 0.1]])
def test_bad_dropout_rates_raise(small, rates):
    with pytest.raises(ValueError):
        small.network(np.float64, dropout=rates)


@pytest.mark.parametrize("kw", [dict(activation=[2]), dict(activation=[2, 0, 0])])
def test_bad_activation_list_raises(small, kw):
    with pytest.raises(ValueError):
        small.network(np.float64, **kw)


@pytest.mark.parametrize("field, registry", [("loss", "LOSSES"), ("solver", "SOLVERS"),
                                             ("clip", "CLIP"), ("penalty", "PENALTIES"),
                                             ("activation", "ACTIVATIONS")])
@pytest.mark.parametrize("outside", ["count", "negative"])
def test_codes_outside_the_registries_raise(small, field, registry, outside):
    """The core indexes its registry tables with these codes: _core must
    reject any code outside them before C sees it."""
    bad = len(getattr(_core, registry)) if outside == "count" else -1
    value = [_core.ACTIVATIONS["tanh"], bad] if field == "activation" else bad
    with pytest.raises(ValueError, match=f"{field} code"):
        small.network(np.float64, **{field: value})


def test_bad_dtype_network_raises(small):
    with pytest.raises(ValueError):
        small.network(np.int32)


MALFORMED_CSR = {
    "column index >= n_features": "X.indices[:] = 10 ** 6",
    "negative column index": "X.indices[0] = -5",
    "negative indptr": "X.indptr[1] = -4",
}


@pytest.mark.parametrize("corruption", sorted(MALFORMED_CSR))
def test_malformed_csr_raises(corruption):
    """_core promises that no input reaching it makes C read or write out of
    bounds.  Run in a child process: the failure mode is a segfault or a
    silent heap write."""
    # The child loads only the extension module (not the package, for speed).
    code = textwrap.dedent(f"""
        import importlib.util, numpy as np, scipy.sparse as sp
        spec = importlib.util.spec_from_file_location("fastnn._core", {_core.__file__!r})
        _core = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_core)
        net = _core.Network(dtype=np.float64, units=[3, 4, 2], activation=[2, 0], loss=0,
                            w_off=[0, 12], b_off=[20, 24], bn_off=[-1, -1],
                            stat_off=[-1, -1], n_params=26, n_stats=0)
        X = sp.csr_matrix(np.arange(1.0, 16.0).reshape(5, 3))
        {MALFORMED_CSR[corruption]}
        try:
            _core.loss_grad(net, np.ones(26), X, np.zeros((5, 2)), None, np.zeros(26))
        except ValueError:
            print("ValueError")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, f"child crashed (exit code {proc.returncode})"
    assert proc.stdout.strip() == "ValueError", "malformed CSR accepted"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["elu", "selu"])
def test_elu_selu_forward_accuracy(act, dtype):
    """ELU/SELU use a vectorized expm1 on the negative side: within 2 ulp of
    numpy's expm1 from tiny to saturating inputs (no cancellation near 0)."""
    x = -np.concatenate([np.geomspace(1e-30, 1e4, 3000), [0.0, 0.3465735902799727, 87.0, 88.0,
                                                          700.0, 709.0, 745.0]])
    x = np.concatenate([x, -x[:50]]).astype(dtype)
    X, got = _through_identity_layers(act, x, dtype)
    want = ref_act(act, X.astype(np.float64)).astype(dtype).astype(np.float64)
    ulp = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
    assert np.all(np.abs(got - want) <= 2 * ulp + (4 if act == "selu" else 0) * ulp), \
        np.max(np.abs(got - want) / ulp)


def _through_identity_layers(act, x, dtype, k=8):
    """(X, act(X)): the values x as rows of k, through a fitted regressor
    whose kernels are set to the identity and biases to zero, so its output
    is the activation applied element-wise."""
    from fastnn import MLPRegressor
    X = np.resize(x, (-(-x.size // k), k)).astype(dtype)
    est = _with_identity_weights(MLPRegressor(hidden_layer_sizes=(k,), activation=act),
                                 X, X, dtype)
    return X, est.predict(X).astype(np.float64)


def _with_identity_weights(est, X, y, dtype):
    """est (one hidden layer as wide as X) fitted briefly, then its kernels set
    to the identity and its biases to zero."""
    k = X.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.set_params(max_iter=1, random_state=0).fit(X, y)
    est.coefs_ = [np.eye(k, dtype=dtype), np.eye(k, dtype=dtype)]
    est.intercepts_ = [np.zeros(k, dtype=dtype), np.zeros(k, dtype=dtype)]
    return est


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_output_accuracy(dtype):
    """The softmax output (a vectorized exp of logit - max) against NumPy's in
    float64, for logit spreads from 1e-6 to 1e3: within a few ulps of each
    probability beyond the rounding of logit - max in the model's dtype
    (which exp amplifies by |logit - max|), subnormal probabilities included
    (as NumPy's: log(predict_proba) stays finite down to them)."""
    k = 8
    rng = np.random.default_rng(5)
    spread = np.geomspace(1e-6, 1e3, 400)[:, None]
    X = (rng.standard_normal((400, k)) * spread).astype(dtype)
    y = np.arange(len(X)) % k
    from fastnn import MLPClassifier
    est = _with_identity_weights(MLPClassifier(hidden_layer_sizes=(k,), activation="identity"),
                                 X, y, dtype)
    got = est.predict_proba(X).astype(np.float64)
    x64 = X.astype(np.float64)
    want = ref_act("softmax", x64)
    cond = (x64.max(axis=1, keepdims=True) - x64) * np.finfo(dtype).eps * want
    err = np.abs(got - want) - cond - 4 * np.spacing(want.astype(dtype)).astype(np.float64)
    fi = np.finfo(dtype)
    subnormal = (want >= 2 * fi.smallest_subnormal) & (want < fi.tiny)
    assert (err <= 0).all() and subnormal.sum() >= 3, (err.max(), subnormal.sum())
    with np.errstate(divide="ignore"):
        assert np.isfinite(np.log(got[subnormal])).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["gelu", "mish"])
def test_gelu_mish_forward_accuracy(act, dtype):
    """GELU (erfc form: no cancellation on the negative side) and Mish (written
    in exp(-|x|): no overflow) against float64 references written otherwise
    (x * ndtr(x); x * tanh(log1p(exp(x)))), from tiny to saturating inputs."""
    x = np.geomspace(1e-30, 1e3, 2000)
    x = np.concatenate([-x, x, [0.0]]).astype(dtype)
    X, got = _through_identity_layers(act, x, dtype)
    x64 = X.astype(np.float64)
    if act == "gelu":
        want = x64 * scipy.special.ndtr(x64)
    else:
        with np.errstate(over="ignore"):
            want = x64 * np.tanh(np.log1p(np.exp(x64)))
    tiny = np.finfo(dtype).tiny  # results below the normal range may flush to 0
    ulp = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
    # erfc(z) amplifies the rounding of z = -x / sqrt 2 by 2 z^2 = x^2 (in
    # double, also for float32 models)
    cond = x64 ** 2 if act == "gelu" and dtype == np.float64 else 0.0
    err = np.abs(got - want) - (8 + cond) * ulp
    assert np.all((err <= 0) | (np.abs(want) < tiny / np.finfo(dtype).eps)), \
        np.max(np.abs(got - want) / ulp)


@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_per_layer_alpha(penalty, dtype):
    """layer_alpha = [a0, 0, a2]: the objective and gradient are those without
    a penalty plus, on each kernel l, a_l / sum(sw) * (l1 |W_l|_1 + (1 - l1) / 2
    |W_l|^2) and its gradient (NumPy); biases and the 0 layer get nothing."""
    case = Case([4, 5, 3, 2], "tanh", "squared_error", n=11, weighted=True, penalty=penalty,
                l1_ratio=0.25, seed=41)
    alphas = [0.7, 0.0, 1.3]
    lay = case.layout
    p = case.params.astype(dtype).astype(np.float64)
    _, obj0, g0 = case.c(p, dtype=dtype)
    _, obj, g = case.c(p, dtype=dtype, net=case.network(dtype, layer_alpha=alphas))
    l1 = {"l2": 0.0, "l1": 1.0, "elasticnet": 0.25}[penalty]
    scale = 1 / case.sw.astype(dtype).astype(np.float64).sum()
    want_pen, want_g = 0.0, np.zeros_like(g0, dtype=np.float64)
    for l, a in enumerate(alphas):
        W = lay.kernel(p, l)
        want_pen += a * scale * (l1 * np.abs(W).sum() + (1 - l1) / 2 * np.sum(W ** 2))
        lay.kernel(want_g, l)[...] = a * scale * (l1 * np.sign(W) + (1 - l1) * W)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert abs((obj - obj0) - want_pen) <= tol * max(1.0, abs(obj))
    diff = g.astype(np.float64) - g0.astype(np.float64)
    np.testing.assert_allclose(diff, want_g, rtol=tol, atol=tol * np.abs(g).max())
    assert np.all(lay.kernel(diff, 1) == 0) and np.abs(lay.kernel(diff, 2)).max() > 0


@pytest.mark.parametrize("chunk_rows", [4096, 5])
@pytest.mark.parametrize("units", [[10, 12, 16, 9, 3], [32, 8, 16, 2], [3, 8, 8, 8, 1]])
def test_register_block_widths(units, chunk_rows):
    """Layers 8..16 wide take the register-block small GEMM (forward, the
    transposed-A kernel gradient and the transposed-B input gradient, with
    chunks accumulating into the gradient): checked against finite
    differences and against the unchunked result."""
    case = Case(units, "tanh", "squared_error", n=23, weighted=True, seed=len(units),
                alpha=0.01)
    g, _, _ = check_case(case)
    _, _, g_chunked = case.c(chunk_rows=chunk_rows)
    np.testing.assert_allclose(g_chunked, g, rtol=1e-12, atol=1e-15)
