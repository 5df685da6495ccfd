"""scikit-learn's estimator checks, run on both estimators (none expected to fail)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastnn import MLPClassifier, MLPRegressor


@parametrize_with_checks(
    [MLPClassifier(max_iter=100, random_state=0), MLPRegressor(max_iter=100, random_state=0)]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
