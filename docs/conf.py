"""Sphinx configuration of fastnn's documentation site.

Build (from the repository root, with fastnn installed: ``pip install ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build uses no network: no intersphinx inventories, no remote assets.
Pages of the API reference land in ``api/generated/fastnn.<Name>.html``,
the address the estimators' HTML repr links to (``fastnn.DOCS_URL``).
"""

import fastnn

project = "fastnn"
author = "the fastnn developers"
copyright = "the fastnn developers"
release = version = fastnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "none"
# fastnn.onnx imports skl2onnx (an optional extra): not needed to document it.
autodoc_mock_imports = ["skl2onnx"]
# numpydoc: no member tables of inherited scikit-learn methods (their pages
# are scikit-learn's); the methods fastnn defines are documented in place.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

templates_path = ["_templates"]  # class pages: the class and its own methods
exclude_patterns = ["_build", "make_history_plot.py"]
html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "Fast MLPs on the CPU behind the scikit-learn API",
                      "fixed_sidebar": False}


def _skip_inherited_from_sklearn(app, what, name, obj, skip, options):
    """Document the methods fastnn defines; scikit-learn's own (score,
    get_params, set_*_request, ...) are documented by scikit-learn."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and callable(obj) and not module.startswith("fastnn"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_inherited_from_sklearn)
