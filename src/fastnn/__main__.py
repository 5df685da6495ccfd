"""``python -m fastnn [demo]``.

``demo`` (the default) trains on scikit-learn's digits and prints test
accuracy and fit time for fastnn and sklearn's MLPClassifier with the same
settings (same data split, architecture, solver and epochs).
The benchmark suite is not part of the package: run ``python -m bench`` from
a source checkout.
"""

import argparse
import sys
import time
import warnings

import numpy as np


def demo(max_iter=200, hidden=(100,), seed=0):
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP
    from sklearn.preprocessing import StandardScaler

    from . import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25,
                                                        random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    settings = dict(hidden_layer_sizes=hidden, solver="adam", max_iter=max_iter,
                    random_state=seed)
    print(f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test rows, "
          f"{X.shape[1]} features, 10 classes; MLP {settings}")
    rows = []
    for name, cls in (("fastnn", MLPClassifier), ("sklearn", SkMLP)):
        est = cls(**settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            est.fit(X_train, y_train)
            seconds = time.perf_counter() - t0
        acc = est.score(X_test, y_test)
        rows.append((name, acc, seconds, est.n_iter_))
        print(f"{name:8s} test accuracy {acc:.4f}   fit time {seconds:.3f} s   "
              f"epochs {est.n_iter_}")
    speedup = rows[1][2] / rows[0][2]
    print(f"fastnn fit is {speedup:.1f}x the speed of sklearn's "
          f"(accuracy difference {rows[0][1] - rows[1][1]:+.4f})")
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "demo":
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="python -m fastnn [demo]", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-iter", type=int, default=200, help="epochs (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    np.set_printoptions(precision=4)
    demo(max_iter=args.max_iter, seed=args.seed)


if __name__ == "__main__":
    main()
