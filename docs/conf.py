"""Sphinx configuration (numpydoc + sphinx-gallery, as scikit-learn does).

Build: ``pip install sphinx numpydoc sphinx-gallery && sphinx-build docs docs/_build``.
"""

project = "skdigits"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
}
html_theme = "alabaster"
