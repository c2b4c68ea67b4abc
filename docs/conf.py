"""Sphinx configuration: numpydoc, autosummary and sphinx-gallery, as
scikit-learn's documentation uses them, on pydata-sphinx-theme.

Build (from the repository root, after ``pip install ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery runs every ``examples/plot_*.py`` on the sample bundled with the
package, so the build needs no data files and no network.
"""

import re
from pathlib import Path

import skdigits

DOCS = Path(__file__).resolve().parent

# -- Project -----------------------------------------------------------------

project = "skdigits"
author = "the skdigits developers"
copyright = "2026, the skdigits developers"
release = skdigits.__version__
version = release

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates"]
# `name` (single backquotes) is code, as in scikit-learn's docstrings, where a
# trailing underscore (`n_features_in_`) must not become a link target.
default_role = "literal"

autosummary_generate = True
# "fit()" rather than "MLPClassifier.fit()" in the page's table of contents
toc_object_entries_show_parents = "hide"
autodoc_typehints = "none"
numpydoc_show_class_members = False  # the templates list the methods
numpydoc_class_members_toctree = False

# -- The gallery -------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # an example that fails fails the build, on its first error
    "abort_on_example_error": True,
    # links from the code to the API pages, and "Examples using X" on them
    "doc_module": ("skdigits",),
    "backreferences_dir": "generated/backreferences",
    "remove_config_comments": True,
    # show HTML reprs (an estimator's diagram), not "<... object at 0x...>"
    "capture_repr": ("_repr_html_",),
    "min_reported_time": 1,
    # no sg_execution_times page (it loads its table scripts from CDNs)
    "write_computation_times": False,
    "show_memory": False,
}

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skdigits {release}"
html_static_path = ["_static"]
html_css_files = ["skdigits.css"]
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
    "secondary_sidebar_items": ["page-toc"],
}
# No navigation sidebar on the landing page, the example pages and the pages
# without sub-pages: their figures, tables and code take the whole width (the
# gallery's index lists the examples; each page links to the next one).
html_sidebars = {"index": [], "auto_examples/plot_*": [], "benchmarks": [],
                 "scaling_out": []}
html_show_sourcelink = False


# -- Docstrings inherited from scikit-learn ----------------------------------
# The estimators inherit ``score``, ``get_params``, ``set_params`` and the
# ``set_*_request`` methods from scikit-learn, whose docstrings point into
# scikit-learn's own user guide (``:ref:`accuracy <accuracy_score>```). Those
# labels do not exist here: they become links to scikit-learn's pages, or
# plain text when the page is not known.

SKLEARN_URL = "https://scikit-learn.org/stable/"
SKLEARN_LABELS = {
    "accuracy_score": "modules/model_evaluation.html#accuracy-score",
    "metadata_routing": "metadata_routing.html",
    "glossary": "glossary.html",
}
_ROLE = re.compile(r":(ref|term):`([^`<]*?)\s*(?:<([^`>]+)>)?`")


def _sklearn_role(match):
    text, target = match.group(2), match.group(3) or match.group(2)
    if match.group(1) == "term":
        return f"`{text} <{SKLEARN_URL}glossary.html>`__"
    page = SKLEARN_LABELS.get(target)
    return f"`{text} <{SKLEARN_URL}{page}>`__" if page else text


def _resolve_sklearn_roles(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or ""
    if module.split(".")[0] != "sklearn":
        return
    lines[:] = [_ROLE.sub(_sklearn_role, line) for line in lines]


# -- Every public name has an API page ---------------------------------------

PUBLIC_MODULES = (
    "skdigits",
    "skdigits.datasets",
    "skdigits.plotting",
    "skdigits.metrics",
    "skdigits.io",
    "skdigits.linear_model",
    "skdigits.neural_network",
    "skdigits.benchmark",
)


def _documented_names():
    """Fully qualified names that ``api.rst`` documents, and where each
    ``autosummary`` block puts them."""
    names, module, in_summary = set(), None, False
    for line in (DOCS / "api.rst").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith(".. currentmodule::"):
            module = stripped.split("::", 1)[1].strip()
        elif stripped.startswith(".. autosummary::"):
            in_summary = True
        elif stripped.startswith((".. py:data::", ".. data::")):
            names.add(stripped.split("::", 1)[1].strip())
        elif in_summary:
            if line and not line[0].isspace():
                in_summary = False
            elif stripped and not stripped.startswith(":"):
                names.add(f"{module}.{stripped.lstrip('~')}")
    return names


def _check_api_coverage(app):
    """Warn (an error under ``-W``) when a name of a public ``__all__`` has no
    entry in ``api.rst``. Names re-exported from a subpackage count once."""
    import importlib

    documented = _documented_names()
    short = {name.rsplit(".", 1)[1] for name in documented}
    from sphinx.util import logging

    logger = logging.getLogger("skdigits.docs")
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if f"{module_name}.{name}" in documented or name in short:
                continue
            logger.warning("api.rst does not document %s.%s", module_name, name)


def setup(app):
    app.connect("autodoc-process-docstring", _resolve_sklearn_roles)
    app.connect("builder-inited", _check_api_coverage)

