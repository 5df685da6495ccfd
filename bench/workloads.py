"""Benchmark workload definitions, synthetic data and FLOP counting.

Every workload is a frozen :class:`Workload`; ``get(name, quick)`` returns the
full-size or the ``--quick`` (smoke-run) variant.  Data is synthetic, generated
from a fixed seed directly in float32 (chunked, so generating it never holds a
float64 copy and does not inflate the worker's peak RSS) and C-contiguous;
``dtype='float64'`` workloads get the same values converted to float64.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

SEED = 0


@dataclass(frozen=True)
class Workload:
    name: str
    task: str                      # 'classification' | 'regression'
    n_samples: int
    n_features: int
    n_classes: int                 # 0 for regression
    hidden: tuple
    activation: str                # 'relu' | 'swish' | 'elu'
    batch_norm: bool               # BatchNorm before the activation, Dense without bias
    solver: str                    # 'adam' | 'nadam' | 'sgd'
    lr: float
    batch_size: int
    epochs: int
    kernel_initializer: str | None = None   # None: each library's default
    clipnorm: float | None = None           # Keras per-tensor clipnorm
    momentum: float = 0.9                   # sgd only (no Nesterov)
    mode: str = "fit"              # 'fit' | 'predict' | 'search' | 'latency'
    data: str = "synthetic"        # 'synthetic' | 'digits4' (load_digits stacked 4 times, float64)
    dtype: str = "float32"         # X's dtype (synthetic data; digits4 is float64)
    predict_fit_rows: int = 2000   # predict/latency mode: rows of the brief untimed fit
    latency_rows: tuple = (1, 100)  # latency mode: rows per predict_proba call
    latency_batches: int = 7       # latency mode: best of this many batches of calls ...
    latency_batch_seconds: float = 0.2  # ... each about this long
    description: str = ""

    @property
    def layer_sizes(self):
        out = self.n_classes if self.task == "classification" else 1
        return (self.n_features, *self.hidden, out)


_FULL = {
    "tiny": Workload(
        "tiny", "regression", 506, 13, 0, (8, 8, 8), "swish", True, "adam", 1e-3, 32, 200,
        kernel_initializer="he_normal",
        description="506x13 regression, (8,8,8) BN-before-swish, Adam, batch 32, 200 epochs"),
    "chapter": Workload(
        "chapter", "classification", 60000, 784, 10, (300, 100), "relu", False, "adam", 1e-3, 32, 1,
        description="60000x784, 10 classes, (300,100) relu, Adam 1e-3, batch 32, 1 epoch"),
    "chapter_bn": Workload(
        "chapter_bn", "classification", 60000, 784, 10, (300, 100), "elu", True, "nadam", 1e-3, 32, 1,
        kernel_initializer="he_normal", clipnorm=1.0,
        description="chapter with BN-before-ELU (no bias), he_normal, Nadam, clipnorm=1"),
    "wide": Workload(
        "wide", "classification", 16384, 1024, 10, (2048, 2048), "relu", False, "sgd", 1e-2, 512, 1,
        momentum=0.9,
        description="16384x1024, 10 classes, (2048,2048) relu, SGD momentum 0.9 lr 0.01, batch 512, 1 epoch"),
    "chapter64": Workload(
        "chapter64", "classification", 60000, 784, 10, (300, 100), "relu", False, "adam", 1e-3, 32, 1,
        dtype="float64",
        description="chapter with float64 X (as StandardScaler or pandas give it); torch, keras and jax"
                    " convert it to float32, fastnn and sklearn compute in float64"),
    "predict": Workload(
        "predict", "classification", 60000, 784, 10, (300, 100), "relu", False, "adam", 1e-3, 32, 1,
        mode="predict",
        description="predict_proba of 60000 rows on the chapter network (brief untimed fit first)"),
    "search": Workload(
        "search", "classification", 7188, 64, 10, (100,), "relu", False, "adam", 1e-3, 200, 30,
        mode="search", data="digits4",
        description="GridSearchCV(StandardScaler + MLPClassifier(max_iter=30)) over hidden (100,)/(256,128),"
                    " alpha 1e-4/1e-2, lr 1e-3/3e-3, cv=3, n_jobs=1, on load_digits stacked 4x (float64)"),
    "latency": Workload(
        "latency", "classification", 1797, 64, 10, (100,), "relu", False, "adam", 1e-3, 200, 10,
        mode="latency", predict_fit_rows=1797,
        description="predict_proba of 1 row and of 100 rows on a digits-sized network (64-100-10),"
                    " microseconds per call (brief untimed fit first)"),
}

# --quick: same architectures (so sgemm shapes stay meaningful), fewer rows / epochs.
_QUICK = {
    "tiny": dict(epochs=10),
    "chapter": dict(n_samples=1600),
    "chapter_bn": dict(n_samples=1600),
    "wide": dict(n_samples=2048),
    "chapter64": dict(n_samples=1600),
    "predict": dict(n_samples=4000),
    "latency": dict(latency_batches=3, latency_batch_seconds=0.02),
    "search": dict(epochs=3),
}

NAMES = tuple(_FULL)


def get(name: str, quick: bool = False) -> Workload:
    w = _FULL[name]
    return dataclasses.replace(w, **_QUICK[name]) if quick else w


def peer_unsupported(peer: str, w: Workload) -> str | None:
    """Why a peer cannot run this workload (None if it can)."""
    if w.mode == "search" and peer not in ("fastnn", "sklearn"):
        return "a GridSearchCV over scikit-learn estimators"
    return sklearn_unsupported(w) if peer == "sklearn" else None


def sklearn_unsupported(w: Workload) -> str | None:
    """Why sklearn's MLP cannot express this workload (None if it can)."""
    why = []
    if w.batch_norm:
        why.append("BatchNorm")
    if w.activation not in ("relu", "tanh", "logistic", "identity"):
        why.append(f"{w.activation} activation")
    if w.solver not in ("adam", "sgd", "lbfgs"):
        why.append(f"{w.solver} solver")
    if w.clipnorm is not None:
        why.append("clipnorm")
    return None if not why else "sklearn has no " + ", ".join(why)


def make_data(w: Workload):
    """(X, y) for the workload: C-contiguous synthetic data from a fixed seed
    (float32, or the same values in float64 when ``w.dtype`` says so), or for
    ``digits4`` scikit-learn's digits stacked 4 times, in float64 as a
    scikit-learn user has them.

    Classification: Gaussian clusters, one centre per class (unit noise, centres
    ~ N(0, 0.12^2) per feature, so classes overlap a little), y int64.
    Regression: linear target plus a fixed random tanh feature and Gaussian
    noise, y float32, standardised.
    """
    if w.data == "digits4":
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        return np.vstack([X] * 4), np.concatenate([y] * 4)
    rng = np.random.default_rng(SEED)
    n, d = w.n_samples, w.n_features
    X = rng.standard_normal((n, d), dtype=np.float32)
    chunk = 1024  # small temporaries: keeps the pre-fit RSS baseline honest
    if w.task == "classification":
        y = rng.integers(0, w.n_classes, size=n, dtype=np.int64)
        centres = (0.12 * rng.standard_normal((w.n_classes, d))).astype(np.float32)
        for s in range(0, n, chunk):
            X[s:s + chunk] += centres[y[s:s + chunk]]
    else:
        coef = rng.standard_normal(d).astype(np.float32) / np.sqrt(d)
        v = rng.standard_normal(d).astype(np.float32) / np.sqrt(d)
        y = X @ coef + np.tanh(2.0 * (X @ v)) + 0.1 * rng.standard_normal(n, dtype=np.float32)
        y = ((y - y.mean()) / y.std()).astype(np.float32)
    if w.dtype == "float64":
        X = X.astype(np.float64)  # the float32 array is freed: one float64 copy at the end
    assert X.dtype == np.dtype(w.dtype) and X.flags.c_contiguous
    return X, y


def train_gemm_flops(w: Workload) -> float:
    """GEMM FLOPs of one training epoch: forward + backward.

    Per Dense layer (fan_in a, fan_out b, batch m): forward 2mab, weight gradient
    2mab, input gradient 2mab except for the first layer (its input is the data).
    """
    total = 0.0
    sizes = w.layer_sizes
    for start in range(0, w.n_samples, w.batch_size):
        m = min(w.batch_size, w.n_samples - start)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            total += 2.0 * m * a * b * (2 if i == 0 else 3)
    return total * w.epochs
