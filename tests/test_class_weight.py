"""MLPClassifier(class_weight=...) equals fitting with
sample_weight = compute_sample_weight(class_weight, y) (times a given
sample_weight), as scikit-learn's linear models and trees define it."""
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import recall_score
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.class_weight import compute_sample_weight

from fastnn import MLPClassifier


def _data(weights=(0.9, 0.1), n=600, seed=0):
    X, y = make_classification(n_samples=n, n_features=8, n_informative=4, weights=list(weights),
                               class_sep=0.6, random_state=seed)
    return X, y


def _same_model(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.coefs_ + a.intercepts_,
                                                    b.coefs_ + b.intercepts_))


@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 7.5}, {1: 3.0}])
def test_equals_sample_weight(class_weight):
    X, y = _data()
    kw = dict(hidden_layer_sizes=(16,), max_iter=15, random_state=0)
    a = MLPClassifier(class_weight=class_weight, **kw).fit(X, y)
    b = MLPClassifier(**kw).fit(X, y, sample_weight=compute_sample_weight(class_weight, y))
    assert _same_model(a, b) and a.loss_curve_ == b.loss_curve_
    sw = np.random.RandomState(1).uniform(0.5, 2, len(y))
    c = MLPClassifier(class_weight=class_weight, **kw).fit(X, y, sample_weight=sw)
    d = MLPClassifier(**kw).fit(X, y, sample_weight=sw * compute_sample_weight(class_weight, y))
    assert _same_model(c, d)
    assert not _same_model(a, MLPClassifier(**kw).fit(X, y))  # the weights do something


def test_string_labels_and_multilabel():
    X, y = _data()
    labels = np.array(["neg", "pos"])[y]
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    a = MLPClassifier(class_weight={"pos": 4.0}, **kw).fit(X, labels)
    b = MLPClassifier(**kw).fit(X, labels, sample_weight=np.where(y == 1, 4.0, 1.0))
    assert _same_model(a, b)
    Y = np.c_[y, 1 - y, (X[:, 0] > 0).astype(int)]
    cw = [{0: 1, 1: 2}, {0: 1, 1: 1}, {0: 3, 1: 1}]
    a = MLPClassifier(class_weight=cw, **kw).fit(X, Y)
    b = MLPClassifier(**kw).fit(X, Y, sample_weight=compute_sample_weight(cw, Y))
    assert _same_model(a, b)


def test_partial_fit():
    X, y = _data()
    kw = dict(hidden_layer_sizes=(8,), random_state=0)
    a, b = MLPClassifier(class_weight={1: 5.0}, **kw), MLPClassifier(**kw)
    for part in np.array_split(np.arange(len(y)), 3):
        a.partial_fit(X[part], y[part], classes=[0, 1])
        b.partial_fit(X[part], y[part], classes=[0, 1],
                      sample_weight=np.where(y[part] == 1, 5.0, 1.0))
    assert _same_model(a, b)
    with pytest.raises(ValueError, match="compute_class_weight"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])


def test_minority_recall_improves():
    X, y = _data(weights=(0.95, 0.05), n=2000, seed=3)
    kw = dict(hidden_layer_sizes=(16,), max_iter=60, random_state=0)
    plain = recall_score(y, MLPClassifier(**kw).fit(X, y).predict(X))
    balanced = recall_score(y, MLPClassifier(class_weight="balanced", **kw).fit(X, y).predict(X))
    assert balanced > plain


def test_bad_values():
    X, y = _data()
    with pytest.raises(InvalidParameterError):
        MLPClassifier(class_weight="heavy", max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        MLPClassifier(class_weight="balanced", max_iter=1).fit(X, y, sample_weight=np.ones(3))
