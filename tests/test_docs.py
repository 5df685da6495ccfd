"""The documentation site (docs/): its examples run, and the estimators' HTML
repr links to their API pages."""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest
from sklearn.utils import estimator_html_repr

from fastnn import DOCS_URL, MLPClassifier, MLPRegressor

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"

# The packages each guide page's examples import beyond fastnn's own needs.
GUIDE_PAGES = {
    "quickstart": [],
    "techniques": [],
    "diagnosing": ["matplotlib"],
    "callbacks": ["sklearn.callback", "rich"],
    "dask": ["dask", "distributed", "dask_ml"],
    "export": ["skops", "skl2onnx", "onnxruntime"],
}


def _python_blocks(rst):
    """The bodies of a page's ``.. code-block:: python`` directives."""
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", rst, re.M):
        lines = match.group(1).splitlines()
        blocks.append("\n".join(line[4:] for line in lines).strip() + "\n")
    return blocks


@pytest.mark.parametrize("page", sorted(GUIDE_PAGES))
def test_guide_examples_run(page, tmp_path):
    for module in GUIDE_PAGES[page]:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    blocks = _python_blocks((DOCS / "guide" / f"{page}.rst").read_text())
    assert blocks, f"docs/guide/{page}.rst has no python example"
    script = tmp_path / f"guide_{page}.py"  # not "dask.py": it would shadow dask
    script.write_text("\n".join(blocks))
    # one script per page, as a reader would paste it; in a scratch directory
    # (examples write files)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_every_guide_page_is_tested():
    pages = {p.stem for p in (DOCS / "guide").glob("*.rst")}
    assert pages == set(GUIDE_PAGES)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_html_repr_links_to_the_api_page(Est):
    link = Est()._get_doc_link()
    assert link == f"{DOCS_URL}api/generated/fastnn.{Est.__name__}.html"
    assert link in estimator_html_repr(Est())
    # the page exists: docs/api/index.rst generates it (autosummary, toctree
    # "generated", in module fastnn)
    api = (DOCS / "api" / "index.rst").read_text()
    assert ".. currentmodule:: fastnn\n" in api
    assert re.search(rf"^   {Est.__name__}$", api, re.M)
    assert ":toctree: generated" in api


def test_license_file_matches_pyproject():
    root = DOCS.parent
    assert 'license = { text = "BSD-3-Clause" }' in (root / "pyproject.toml").read_text()
    text = (root / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c) the fastnn developers" in text
