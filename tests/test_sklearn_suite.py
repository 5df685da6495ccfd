"""scikit-learn's own MLP tests, run against fastnn.

Runs the installed ``sklearn/neural_network/tests/test_mlp.py`` in a fresh
pytest process with the plugin tests/sklearn_mlp_swap.py, which puts
fastnn's estimators in place of scikit-learn's before the module is imported
and deselects the tests that read scikit-learn's private internals (listed
there, one reason each). Nothing of scikit-learn's test code is copied.
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import sklearn

from sklearn_mlp_swap import PRIVATE_INTERNALS

TESTS_DIR = Path(__file__).resolve().parent
SKLEARN_TESTS = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
# sklearn 1.9.1 has 59 test items in test_mlp.py, 3 of them deselected here:
# far fewer running means the swap or the collection went wrong.
MIN_TESTS_RUN = 45


def test_deselected_tests_exist_in_sklearns_file():
    """The list of private-internals tests names tests that exist (it
    would silently deselect nothing after a rename)."""
    source = SKLEARN_TESTS.read_text()
    for name, reason in PRIVATE_INTERNALS.items():
        assert f"def {name}(" in source, name
        assert reason


def test_sklearn_mlp_suite_passes_on_fastnn(tmp_path):
    assert SKLEARN_TESTS.exists(), f"scikit-learn's MLP tests are not installed: {SKLEARN_TESTS}"
    junit = tmp_path / "junit.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR)] + [p for p in
                                         env.get("PYTHONPATH", "").split(os.pathsep) if p])
    # --pyargs: collected as sklearn's package, so sklearn's conftest (its
    # fixtures, e.g. global_random_seed) applies; cwd outside the project so
    # fastnn's own pytest configuration does not.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "sklearn.neural_network.tests.test_mlp",
         "-p", "sklearn_mlp_swap", "-p", "no:cacheprovider", "-q", "-rfE",
         f"--junitxml={junit}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    report = proc.stdout[-5000:] + proc.stderr[-2000:]
    # exit 0 only: 1 = failures, 5 = no tests collected, others = errors
    assert proc.returncode == 0, report
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}
    assert counts["failures"] == counts["errors"] == 0, report
    ran = counts["tests"] - counts["skipped"]
    assert ran >= MIN_TESTS_RUN, (counts, report)
    # (the plugin itself stops the run if the module did not get fastnn's estimators)
    assert f"{len(PRIVATE_INTERNALS)} deselected" in proc.stdout, report
