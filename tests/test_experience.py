"""verbose output, progress bars and gradient diagnostics."""

import re
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from fastnn import GradientWarning, MLPClassifier
from fastnn._progress import epoch_chunks


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_verbose_prints_one_keras_like_line_per_epoch(digits, capsys):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=4, early_stopping=True,
                        n_iter_no_change=100, verbose=1, random_state=0).fit(X, y)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("Epoch")]
    assert len(lines) == clf.n_iter_ == 4
    pat = (r"Epoch (\d+)/4 - [\d.]+s - loss: ([\d.]+) - val_loss: ([\d.]+) - "
           r"val_score: ([\d.]+) - lr: 0.001")
    for i, line in enumerate(lines):
        m = re.fullmatch(pat, line)
        assert m, line
        assert int(m.group(1)) == i + 1
        assert float(m.group(2)) == pytest.approx(clf.loss_curve_[i], rel=1e-5)
        assert float(m.group(4)) == pytest.approx(clf.validation_scores_[i], abs=1e-6)


def test_silent_by_default(digits, capsys):
    X, y = digits
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_epoch_chunks_cover_every_step_once():
    assert epoch_chunks(100, 1) == [(0, 100)]
    for n in (1, 2, 49, 50, 51, 1000, 1875):
        chunks = epoch_chunks(n, 2)
        assert chunks[0][0] == 0 and chunks[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
        assert len(chunks) <= 50


def test_verbose2_chunked_epochs_train_identically(digits, capsys):
    """Calling C once per chunk of steps (progress bar) gives bitwise the same
    model as one call per epoch."""
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), batch_size=16, max_iter=3, random_state=0,
              batch_norm=True, dropout=0.1)
    one = MLPClassifier(verbose=0, **kw).fit(X, y)
    chunked = MLPClassifier(verbose=2, **kw).fit(X, y)
    for a, b in zip(one.coefs_ + one.intercepts_, chunked.coefs_ + chunked.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(one.loss_curve_, chunked.loss_curve_, rtol=1e-12)
    err = capsys.readouterr().err
    if "tqdm" in sys.modules:
        assert "Epoch 1/3" in err  # the bar is drawn on stderr


def test_vanishing_gradients_warn_with_layer_and_hint(digits):
    X, y = digits
    with pytest.warns(GradientWarning, match=r"Vanishing gradients.*hidden layer 1.*"
                                             r"(kernel_initializer|batch_norm)"):
        MLPClassifier(hidden_layer_sizes=(64,) * 8, activation="logistic",
                      kernel_initializer="glorot_uniform", max_iter=2,
                      random_state=0).fit(X, y)


def test_exploding_gradients_warn(digits):
    X, y = digits
    with pytest.warns(GradientWarning, match=r"Exploding gradients.*clipnorm"):
        MLPClassifier(hidden_layer_sizes=(32,), max_iter=2, random_state=0).fit(X * 1e6, y)


@pytest.mark.parametrize("kw", [dict(activation="relu"), dict(activation="tanh"),
                                dict(activation="logistic", batch_norm=True)])
def test_healthy_networks_do_not_warn(digits, kw):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientWarning)
        MLPClassifier(hidden_layer_sizes=(64,) * 8, max_iter=3, random_state=0,
                      **kw).fit(X, y)


def test_cli_demo_prints_accuracy_and_time_for_both(capsys):
    from fastnn.__main__ import main

    main(["demo", "--max-iter", "3"])
    out = capsys.readouterr().out
    lines = {l.split()[0]: l for l in out.splitlines() if "test accuracy" in l}
    assert set(lines) == {"fastnn", "sklearn"}
    for line in lines.values():
        m = re.search(r"test accuracy (\d\.\d+)\s+fit time ([\d.]+) s\s+epochs 3", line)
        assert m, line
        assert 0.25 < float(m.group(1)) <= 1.0  # 10 classes: chance is 0.1


def test_cli_default_subcommand_is_demo(capsys):
    from fastnn.__main__ import main

    main(["--max-iter", "2"])
    assert "fastnn   test accuracy" in capsys.readouterr().out


def test_package_never_imports_the_benchmarks():
    """bench/ exists only in a source checkout: an installed wheel must work
    without it."""
    import ast
    from pathlib import Path

    import fastnn

    sources = sorted(Path(fastnn.__file__).parent.glob("*.py"))
    assert sources
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "bench" or n.startswith("bench.") for n in names), path
