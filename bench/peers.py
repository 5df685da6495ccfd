"""One runner per library ("peer"), all with the same interface.

``setup(threads)`` imports the library and pins its thread pools (called once,
in a fresh worker process, before any data exists); ``build(w)`` makes a fresh
untrained model (untimed: Keras compiles here, torch builds its optimizer);
``fit(model, X, y, w)`` is what gets timed; ``predict_proba(model, X)`` is timed
in the ``predict`` workload, ``predict_small(model, X)`` (predict_proba the way
a service calls it on a few rows) in the ``latency`` workload; ``score``
(accuracy or R^2 on training rows) is an untimed sanity check that every peer
really trained.

Equivalence choices (same for every peer unless noted): float32 (float64 X, as in
``chapter64``, is converted to float32 inside the timed fit by torch, Keras and
JAX, as Keras does; fastnn and sklearn compute in float64), same data and
architecture, same optimizer and batch size, shuffling every epoch, no weight
penalty, no early stopping, no validation split, no metrics.
"""
from __future__ import annotations

import os
import time
import warnings

import numpy as np

from bench.workloads import Workload

HUGE = 10 ** 9  # n_iter_no_change: never stop early


def _limit_threadpools(threads):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=threads)


def _ignore_convergence_warnings():
    from sklearn.exceptions import ConvergenceWarning
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", message=r".*(converge|[Mm]aximum iterations).*")


def _dist_version(name):
    import importlib.metadata
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _float32(X):
    """X as float32 (a copy only when it is not float32 already)."""
    return np.ascontiguousarray(X, dtype=np.float32)


def _r2(pred, y):
    pred = np.asarray(pred, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    return float(1.0 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


# --------------------------------------------------------------------------- sklearn-API
class _SklearnAPI:
    """Shared by fastnn and scikit-learn (same estimator interface)."""
    module = ""

    def setup(self, threads):
        self._limits = _limit_threadpools(threads)  # after import: sees the library's OpenMP/BLAS

    def params(self, w: Workload) -> dict:
        p = dict(hidden_layer_sizes=w.hidden, activation=w.activation, solver=w.solver,
                 learning_rate_init=w.lr, batch_size=w.batch_size, max_iter=w.epochs,
                 shuffle=True, random_state=0, tol=0.0, n_iter_no_change=HUGE, alpha=0.0,
                 early_stopping=False)
        if w.solver == "sgd":
            p.update(momentum=w.momentum, nesterovs_momentum=False)
        return p

    def build(self, w):
        cls = self.MLPClassifier if w.task == "classification" else self.MLPRegressor
        return cls(**self.params(w))

    def fit(self, model, X, y, w):
        with warnings.catch_warnings():
            _ignore_convergence_warnings()
            model.fit(X, y)
        return model

    def predict_proba(self, model, X):
        return model.predict_proba(X)

    predict_small = predict_proba

    def search(self, w, X, y):
        """The grid search a scikit-learn user runs every day (workload `search`)."""
        from sklearn.model_selection import GridSearchCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        pipe = make_pipeline(StandardScaler(),
                             self.MLPClassifier(max_iter=w.epochs, random_state=0))
        grid = {"mlpclassifier__hidden_layer_sizes": [(100,), (256, 128)],
                "mlpclassifier__alpha": [1e-4, 1e-2],
                "mlpclassifier__learning_rate_init": [1e-3, 3e-3]}
        with warnings.catch_warnings():
            _ignore_convergence_warnings()
            return GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)

    def score(self, model, X, y, w):
        return float(model.score(X, y))


class FastnnPeer(_SklearnAPI):
    name = "fastnn"

    def setup(self, threads):
        import fastnn
        try:
            self.MLPClassifier, self.MLPRegressor = fastnn.MLPClassifier, fastnn.MLPRegressor
        except AttributeError as e:  # package present but estimators not there (yet)
            raise ImportError(f"fastnn {_dist_version('fastnn')} has no MLPClassifier/MLPRegressor "
                              f"yet ({os.path.dirname(fastnn.__file__)})") from e
        super().setup(threads)
        return {"fastnn": getattr(fastnn, "__version__", None) or _dist_version("fastnn")}

    def params(self, w):
        p = super().params(w)
        if w.batch_norm:
            p["batch_norm"] = "before"
        if w.kernel_initializer:
            p["kernel_initializer"] = w.kernel_initializer
        if w.clipnorm is not None:
            p["clipnorm"] = w.clipnorm
        return p


class SklearnPeer(_SklearnAPI):
    name = "sklearn"

    def setup(self, threads):
        import sklearn
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        self.MLPClassifier, self.MLPRegressor = MLPClassifier, MLPRegressor
        super().setup(threads)
        return {"sklearn": sklearn.__version__}


# --------------------------------------------------------------------------- PyTorch
class TorchPeer:
    """Plain nn.Sequential loop; DataLoader-free (index tensors by a per-epoch permutation)."""
    name = "torch"

    def setup(self, threads):
        import torch
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
        self.torch = torch
        self._limits = _limit_threadpools(threads)
        return {"torch": torch.__version__}

    def build(self, w):
        torch, nn = self.torch, self.torch.nn
        torch.manual_seed(0)
        act = {"relu": nn.ReLU, "elu": nn.ELU, "swish": nn.SiLU}[w.activation]
        layers, fan_in = [], w.n_features
        for h in w.hidden:
            lin = nn.Linear(fan_in, h, bias=not w.batch_norm)
            if w.kernel_initializer == "he_normal":
                nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            layers.append(lin)
            if w.batch_norm:  # Keras semantics: moving = 0.99*moving + 0.01*batch, eps 1e-3
                layers.append(nn.BatchNorm1d(h, momentum=0.01, eps=1e-3))
            layers.append(act())
            fan_in = h
        layers.append(nn.Linear(fan_in, w.layer_sizes[-1]))
        model = nn.Sequential(*layers)
        params = list(model.parameters())
        if w.solver == "adam":
            opt = torch.optim.Adam(params, lr=w.lr, eps=1e-8)
        elif w.solver == "nadam":  # momentum_decay default 4e-3 differs slightly from Keras: fine for timing
            opt = torch.optim.NAdam(params, lr=w.lr, eps=1e-8)
        elif w.solver == "sgd":
            opt = torch.optim.SGD(params, lr=w.lr, momentum=w.momentum, nesterov=False)
        else:
            raise ValueError(w.solver)
        return model, opt

    def fit(self, model_opt, X, y, w):
        torch = self.torch
        model, opt = model_opt
        params = [p for p in model.parameters()]
        Xt = torch.from_numpy(_float32(X))
        if w.task == "classification":
            yt, loss_fn = torch.from_numpy(y), torch.nn.CrossEntropyLoss()
        else:
            yt, loss_fn = torch.from_numpy(y).view(-1, 1), torch.nn.MSELoss()
        gen = torch.Generator().manual_seed(0)
        n, bs = X.shape[0], w.batch_size
        clip = torch.nn.utils.clip_grad_norm_
        model.train()
        for _ in range(w.epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, bs):
                idx = perm[s:s + bs]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(Xt[idx]), yt[idx])
                loss.backward()
                if w.clipnorm is not None:  # Keras clipnorm is per tensor, not global
                    for p in params:
                        clip(p, w.clipnorm)
                opt.step()
        return model_opt

    def predict_proba(self, model_opt, X):
        torch = self.torch
        model = model_opt[0]
        model.eval()
        with torch.inference_mode():
            return torch.softmax(model(torch.from_numpy(_float32(X))), dim=1).numpy()

    predict_small = predict_proba  # eager mode, inference_mode: already the cheap path

    def score(self, model_opt, X, y, w):
        torch = self.torch
        model = model_opt[0]
        model.eval()
        with torch.inference_mode():
            out = model(torch.from_numpy(_float32(X))).numpy()
        if w.task == "classification":
            return float((out.argmax(1) == y).mean())
        return _r2(out, y)


# --------------------------------------------------------------------------- Keras 3 / TF
class KerasPeer:
    """keras.Sequential on the TensorFlow backend.

    jit_compile is left at the Keras default ("auto"), which Keras resolves to
    False (no XLA) on a CPU-only machine; the resolved value is reported.  The
    model is built and compiled before the timer; the timed ``fit`` call
    therefore includes Keras' one-time tracing of the train function (what a user
    pays on a normal ``fit``).
    """
    name = "keras"

    def setup(self, threads):
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras
        self.tf, self.keras = tf, keras
        self._limits = _limit_threadpools(threads)
        return {"tensorflow": tf.__version__, "keras": keras.__version__}

    def build(self, w):
        keras = self.keras
        L = keras.layers
        keras.utils.set_random_seed(0)
        init = w.kernel_initializer or "glorot_uniform"
        layers = [keras.Input((w.n_features,))]
        for h in w.hidden:
            if w.batch_norm:
                layers += [L.Dense(h, use_bias=False, kernel_initializer=init),
                           L.BatchNormalization(momentum=0.99, epsilon=1e-3),
                           L.Activation(w.activation)]
            else:
                layers.append(L.Dense(h, activation=w.activation, kernel_initializer=init))
        if w.task == "classification":
            layers.append(L.Dense(w.n_classes, activation="softmax"))
            loss = "sparse_categorical_crossentropy"
        else:
            layers.append(L.Dense(1))
            loss = "mse"
        model = keras.Sequential(layers)
        clip = {} if w.clipnorm is None else {"clipnorm": w.clipnorm}
        if w.solver == "adam":
            opt = keras.optimizers.Adam(learning_rate=w.lr, epsilon=1e-8, **clip)
        elif w.solver == "nadam":
            opt = keras.optimizers.Nadam(learning_rate=w.lr, epsilon=1e-8, **clip)
        elif w.solver == "sgd":
            opt = keras.optimizers.SGD(learning_rate=w.lr, momentum=w.momentum, nesterov=False, **clip)
        else:
            raise ValueError(w.solver)
        model.compile(optimizer=opt, loss=loss)
        return model

    def fit(self, model, X, y, w):
        model.fit(X, y, batch_size=w.batch_size, epochs=w.epochs, shuffle=True, verbose=0)
        self.jit_compile = bool(getattr(model, "jit_compile", False))
        return model

    def predict_proba(self, model, X):
        # one batch = the whole array, like the other peers (default batch_size 32 would be unfair)
        return model.predict(X, batch_size=X.shape[0], verbose=0)

    def predict_small(self, model, X):
        # model.predict builds a data pipeline per call; a direct call is the few-rows path
        return model(X, training=False).numpy()

    def score(self, model, X, y, w):
        out = model.predict(X, batch_size=4096, verbose=0)
        if w.task == "classification":
            return float((out.argmax(1) == y).mean())
        return _r2(out, y)


# --------------------------------------------------------------------------- JAX
class JaxPeer:
    """Pure JAX (no flax/optax): Dense, BatchNorm, activations, losses, clipnorm
    and the optimizers are written out below, with Keras' semantics and formulas.

    One epoch is one jit-compiled function: a ``lax.scan`` of the training step
    over the full mini-batches of a per-epoch permutation; a last partial batch
    goes through a separately jitted step.  Compilation happens inside the timed
    fit (each timed run builds a fresh model, hence fresh jitted functions).
    float32 throughout (jax_enable_x64 stays off): float64 X is converted in the
    timed fit, as Keras does.

    Threads: XLA's CPU client sizes its thread pools (the Eigen intra-op pool
    and the client's task pool) from the NPROC environment variable when it is
    set, else from the CPUs available, so setup sets NPROC=threads before jax
    is imported.  The often-quoted XLA_FLAGS ``--xla_cpu_multi_thread_eigen=false
    intra_op_parallelism_threads=1`` do not limit them in jax 0.10: a jitted
    2048x2048 matmul loop kept 4 threads busy with those flags, 1 with NPROC=1
    (per-thread CPU time in /proc/self/task, 2-CPU machine).
    """
    name = "jax"
    BN_MOMENTUM, BN_EPS = 0.99, 1e-3
    BETA1, BETA2, EPS = 0.9, 0.999, 1e-8

    def setup(self, threads):
        os.environ["NPROC"] = str(threads)
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        import jaxlib
        self.jax, self.jnp = jax, jax.numpy
        self._limits = _limit_threadpools(threads)
        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}

    # ---- model -------------------------------------------------------------
    def _init_params(self, w):
        jax, jnp = self.jax, self.jnp
        key = jax.random.PRNGKey(0)
        sizes = w.layer_sizes
        params, stats = [], []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            key, sub = jax.random.split(key)
            if w.kernel_initializer == "he_normal":  # Keras: truncated at 2 sd, sd sqrt(2/fan_in)
                W = jax.random.truncated_normal(sub, -2.0, 2.0, (a, b)) * (np.sqrt(2.0 / a) / 0.87962566103423978)
            else:  # Keras' default, glorot_uniform
                lim = np.sqrt(6.0 / (a + b))
                W = jax.random.uniform(sub, (a, b), minval=-lim, maxval=lim)
            hidden = i < len(sizes) - 2
            if hidden and w.batch_norm:  # Dense without bias, then BatchNorm
                params.append({"W": W, "gamma": jnp.ones(b), "beta": jnp.zeros(b)})
                stats.append({"mean": jnp.zeros(b), "var": jnp.ones(b)})
            else:
                params.append({"W": W, "b": jnp.zeros(b)})
                if hidden:
                    stats.append({})
        return params, stats

    def _forward(self, w, params, stats, x, training):
        """Output-layer values (logits, or the regression output) and the new BN statistics."""
        jax, jnp = self.jax, self.jnp
        act = {"relu": lambda z: jnp.maximum(z, 0.0),
               "elu": lambda z: jnp.where(z > 0, z, jnp.expm1(jnp.minimum(z, 0.0))),
               "swish": lambda z: z * jax.nn.sigmoid(z)}[w.activation]
        m, eps = self.BN_MOMENTUM, self.BN_EPS
        h, new_stats = x, []
        for layer, st in zip(params[:-1], stats):
            z = h @ layer["W"]
            if "gamma" in layer:
                if training:  # batch statistics (biased variance); moving averages updated
                    mu, var = z.mean(0), z.var(0)
                    st = {"mean": m * st["mean"] + (1 - m) * jax.lax.stop_gradient(mu),
                          "var": m * st["var"] + (1 - m) * jax.lax.stop_gradient(var)}
                else:
                    mu, var = st["mean"], st["var"]
                z = (z - mu) * jax.lax.rsqrt(var + eps) * layer["gamma"] + layer["beta"]
            else:
                z = z + layer["b"]
            new_stats.append(st)
            h = act(z)
        return h @ params[-1]["W"] + params[-1]["b"], new_stats

    def _loss(self, w, params, stats, xb, yb):
        jnp = self.jnp
        out, new_stats = self._forward(w, params, stats, xb, True)
        if w.task == "classification":  # softmax cross-entropy, integer labels
            logp = out - _logsumexp(jnp, out)
            loss = -jnp.take_along_axis(logp, yb[:, None], axis=1).mean()
        else:  # Keras' MSE
            loss = ((out[:, 0] - yb) ** 2).mean()
        return loss, new_stats

    def _optimizer(self, w):
        """(init(params) -> state, update(params, grads, state) -> (params, state))."""
        jnp, tmap = self.jnp, self.jax.tree_util.tree_map
        lr, b1, b2, eps = w.lr, self.BETA1, self.BETA2, self.EPS
        zeros = lambda params: tmap(jnp.zeros_like, params)  # noqa: E731
        if w.solver == "sgd":  # v <- mu v - lr g; theta <- theta + v
            def update(params, g, s):
                v = tmap(lambda v, g: w.momentum * v - lr * g, s["v"], g)
                return tmap(lambda p, v: p + v, params, v), {"v": v}
            return (lambda params: {"v": zeros(params)}), update

        def moments(g, s):
            m = tmap(lambda m, g: b1 * m + (1 - b1) * g, s["m"], g)
            v = tmap(lambda v, g: b2 * v + (1 - b2) * g * g, s["v"], g)
            return m, v

        if w.solver == "adam":
            def update(params, g, s):
                t = s["t"] + 1
                m, v = moments(g, s)
                lr_t = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                params = tmap(lambda p, m, v: p - lr_t * m / (jnp.sqrt(v) + eps), params, m, v)
                return params, {"t": t, "m": m, "v": v}
            return (lambda params: {"t": jnp.float32(0), "m": zeros(params), "v": zeros(params)}), update
        if w.solver == "nadam":  # Keras 3's formula (FORMULAS.md)
            def update(params, g, s):
                t = s["t"] + 1
                mu_t = b1 * (1 - 0.5 * 0.96 ** t)
                mu_next = b1 * (1 - 0.5 * 0.96 ** (t + 1))
                prod = s["prod"] * mu_t
                m, v = moments(g, s)
                c_m, c_g, c_v = mu_next / (1 - prod * mu_next), (1 - mu_t) / (1 - prod), 1 / (1 - b2 ** t)
                params = tmap(lambda p, m, v, g: p - lr * (c_m * m + c_g * g) / (jnp.sqrt(v * c_v) + eps),
                              params, m, v, g)
                return params, {"t": t, "prod": prod, "m": m, "v": v}
            return (lambda params: {"t": jnp.float32(0), "prod": jnp.float32(1), "m": zeros(params),
                                    "v": zeros(params)}), update
        raise ValueError(w.solver)

    def build(self, w):
        """Fresh parameters and fresh (not yet compiled) jitted functions."""
        jax, jnp = self.jax, self.jnp
        params, stats = self._init_params(w)
        opt_init, opt_update = self._optimizer(w)
        grad_fn = jax.value_and_grad(lambda p, s, xb, yb: self._loss(w, p, s, xb, yb), has_aux=True)
        c = w.clipnorm

        def step(state, xb, yb):
            params, stats, opt = state
            (_, stats), g = grad_fn(params, stats, xb, yb)
            if c is not None:  # Keras clipnorm: per tensor, g * c / max(||g||, c)
                g = jax.tree_util.tree_map(lambda g: g * (c / jnp.maximum(jnp.sqrt((g * g).sum()), c)), g)
            params, opt = opt_update(params, g, opt)
            return params, stats, opt

        def epoch(state, X, y, batches):  # batches: (n_batches, batch_size) row indices
            return jax.lax.scan(lambda st, idx: (step(st, X[idx], y[idx]), None), state, batches)[0]

        forward = lambda p, s, x: self._forward(w, p, s, x, False)[0]  # noqa: E731
        return {"state": (params, stats, opt_init(params)),
                "epoch": jax.jit(epoch),
                "last_batch": jax.jit(lambda state, X, y, idx: step(state, X[idx], y[idx])),
                "forward": jax.jit(forward),
                "proba": jax.jit(lambda p, s, x: jax.nn.softmax(forward(p, s, x), axis=1))}

    # ---- peer interface ------------------------------------------------------
    def fit(self, model, X, y, w):
        jnp = self.jnp
        Xd = jnp.asarray(_float32(X))
        yd = jnp.asarray(y.astype(np.int32 if w.task == "classification" else np.float32))
        n, bs = X.shape[0], w.batch_size
        full = n // bs * bs
        rng = np.random.default_rng(0)
        state = model["state"]
        for _ in range(w.epochs):
            perm = rng.permutation(n).astype(np.int32)
            if full:
                state = model["epoch"](state, Xd, yd, perm[:full].reshape(-1, bs))
            if full < n:
                state = model["last_batch"](state, Xd, yd, perm[full:])
        model["state"] = self.jax.block_until_ready(state)
        return model

    def predict_proba(self, model, X):
        params, stats, _ = model["state"]
        return np.asarray(model["proba"](params, stats, _float32(X)))

    predict_small = predict_proba

    def score(self, model, X, y, w):
        params, stats, _ = model["state"]
        out = np.asarray(model["forward"](params, stats, _float32(X)))
        if w.task == "classification":
            return float((out.argmax(1) == y).mean())
        return _r2(out, y)


def _logsumexp(jnp, z):
    """log(sum(exp(z))) over axis 1, keepdims, shifted by the row max for stability."""
    mx = jnp.max(z, axis=1, keepdims=True)
    return mx + jnp.log(jnp.exp(z - mx).sum(axis=1, keepdims=True))


PEERS = {"fastnn": FastnnPeer, "sklearn": SklearnPeer, "torch": TorchPeer, "keras": KerasPeer,
         "jax": JaxPeer}
# what must be importable for each peer (checked with importlib.util.find_spec, no import)
REQUIRES = {"fastnn": ("fastnn",), "sklearn": ("sklearn",), "torch": ("torch",),
            "keras": ("tensorflow", "keras"), "jax": ("jax",)}


# --------------------------------------------------------------------------- sgemm roofline
def measure_sgemm(w: Workload, threads: int, min_time: float = 1.0) -> dict:
    """GFLOP/s of the exact GEMMs of one training step of ``w`` (batch w.batch_size).

    Forward X@W per layer; backward dW = X^T dZ per layer and dX = dZ W^T for every
    layer but the first.  Measured with scipy's BLAS sgemm (the BLAS fastnn calls
    through scipy.linalg.cython_blas; F-ordered views, preallocated outputs, no
    copies) and with numpy float32 matmul; best of 3 timed loops each.
    """
    from scipy.linalg.blas import sgemm
    lim = _limit_threadpools(threads)  # noqa: F841  (keep alive)
    rng = np.random.default_rng(1)
    m = w.batch_size
    sizes = w.layer_sizes
    L = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        L.append(dict(
            X=rng.standard_normal((m, a), dtype=np.float32),
            W=rng.standard_normal((a, b), dtype=np.float32) * np.float32(0.01),
            dZ=rng.standard_normal((m, b), dtype=np.float32),
            Z=np.empty((m, b), np.float32), dW=np.empty((a, b), np.float32, order="F"),
            dW_c=np.empty((a, b), np.float32), dX=np.empty((m, a), np.float32)))
    flops = sum(2.0 * m * a * b * (2 if i == 0 else 3)
                for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))

    def step_scipy():
        for l in L:  # Z^T = W^T X^T  (all F-ordered views of C arrays)
            sgemm(1.0, l["W"].T, l["X"].T, beta=0.0, c=l["Z"].T, overwrite_c=1)
        for i in range(len(L) - 1, -1, -1):
            l = L[i]
            sgemm(1.0, l["X"].T, l["dZ"].T, beta=0.0, c=l["dW"], trans_b=1, overwrite_c=1)
            if i > 0:  # dX^T = W dZ^T
                sgemm(1.0, l["W"].T, l["dZ"].T, beta=0.0, c=l["dX"].T, trans_a=1, overwrite_c=1)

    def step_numpy():
        for l in L:
            np.matmul(l["X"], l["W"], out=l["Z"])
        for i in range(len(L) - 1, -1, -1):
            l = L[i]
            np.matmul(l["X"].T, l["dZ"], out=l["dW_c"])
            if i > 0:
                np.matmul(l["dZ"], l["W"].T, out=l["dX"])

    def rate(step):
        step()  # warm-up
        best = 0.0
        for _ in range(3):
            k, t0 = 0, time.perf_counter()
            while True:
                step(); k += 1
                dt = time.perf_counter() - t0
                if dt >= min_time / 3:
                    break
            best = max(best, k * flops / dt / 1e9)
        return best

    # correctness of the no-copy scipy calls (one layer, vs numpy)
    step_scipy()
    l = L[-1]
    assert np.allclose(l["Z"], l["X"] @ l["W"], rtol=1e-3, atol=1e-2)
    assert np.allclose(l["dW"], l["X"].T @ l["dZ"], rtol=1e-3, atol=1e-1)
    assert np.allclose(l["dX"], l["dZ"] @ l["W"].T, rtol=1e-3, atol=1e-2)
    g_scipy, g_numpy = rate(step_scipy), rate(step_numpy)
    return {"sgemm_gflops_scipy": g_scipy, "sgemm_gflops_numpy": g_numpy,
            "sgemm_gflops": max(g_scipy, g_numpy), "step_gemm_flops": flops}
