"""Make docs/history.png: vanishing gradients in a deep sigmoid MLP, and the cure.

Two real fits on scikit-learn's digits of the same deep network, 8 hidden
layers of 64 sigmoid units, trained with SGD and early stopping:

* top row: no BatchNorm, Glorot uniform initialization: the gradient norm
  shrinks layer after layer going down the network, the lower layers barely
  learn, and accuracy stays at chance;
* bottom row: ``batch_norm=True`` and He initialization: every layer's
  gradient has the same order of magnitude, and the network learns.

Run from the repository root (needs matplotlib): ``python docs/make_history_plot.py``.
"""

import pathlib
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from fastnn import MLPClassifier  # noqa: E402
from fastnn.plot import plot_history  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / "history.png"

COMMON = dict(hidden_layer_sizes=(64,) * 8, activation="logistic", solver="sgd",
              learning_rate_init=0.01, batch_size=32, max_iter=100, early_stopping=True,
              n_iter_no_change=10, random_state=0)
RUNS = [
    # Glorot named explicitly: the default for sigmoid is now scikit-learn's
    # scheme (Glorot's bound for sigmoid, biases drawn too), and the figure
    # and the README's numbers come from Keras's Glorot uniform.
    ("8 × 64 sigmoid, no BatchNorm, Glorot init", dict(kernel_initializer="glorot_uniform")),
    ("8 × 64 sigmoid, batch_norm=True, He init",
     dict(batch_norm=True, kernel_initializer="he_normal", batch_norm_momentum=0.9)),
]


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

    fig = plt.figure(figsize=(13, 7), layout="constrained")
    rows = fig.subfigures(len(RUNS), 1, hspace=0.04)
    grad_axes = []
    for row, (title, params) in zip(rows, RUNS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = MLPClassifier(**COMMON, **params).fit(X_train, y_train)
        g = np.asarray(clf.history_["grad_norm"])
        acc = clf.score(X_test, y_test)
        print(f"{title}: {clf.n_iter_} epochs, {sum(clf.history_['time']):.1f} s, "
              f"test accuracy {acc:.3f}, best validation accuracy "
              f"{clf.best_validation_score_:.3f}; epoch-1 gradient norms "
              f"layer 1 {g[0, 0]:.1e}, output {g[0, -1]:.1e} (ratio {g[0, 0] / g[0, -1]:.1e}); "
              f"last epoch ratio {g[-1, 0] / g[-1, -1]:.1e}")
        axes = row.subplots(1, 3)
        plot_history(clf, axes=axes)
        row.suptitle(f"{title}: test accuracy {acc:.1%}", fontweight="bold")
        grad_axes.append(axes[2])

    # the same gradient-norm scale in both rows, so the gap is visible
    lo = min(ax.get_ylim()[0] for ax in grad_axes)
    hi = max(ax.get_ylim()[1] for ax in grad_axes)
    for ax in grad_axes:
        ax.set_ylim(lo, hi)
    fig.savefig(OUT, dpi=85, pil_kwargs={"optimize": True, "compress_level": 9})
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
