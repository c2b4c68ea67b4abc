"""Public docstrings validate with numpydoc, under scikit-learn's rules; the
examples in them run as doctests through pytest's ``--doctest-modules`` on the
installed package (see setup.cfg and the README's test command)."""

import importlib
import inspect

import pytest

numpydoc_validation = pytest.importorskip("numpydoc.validate")
from numpydoc.docscrape import ClassDoc  # noqa: E402

PUBLIC_MODULES = ["skdigits", "skdigits.benchmark", "skdigits.datasets",
                  "skdigits.io", "skdigits.linear_model", "skdigits.metrics",
                  "skdigits.neural_network", "skdigits.plotting"]


def _public_objects():
    """``(object, method name or None, import path)`` of every public class,
    method, property and function."""
    seen = set()
    for mod_name in PUBLIC_MODULES:
        module = importlib.import_module(mod_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            path = f"{obj.__module__}.{obj.__qualname__}"
            if path in seen:
                continue
            seen.add(path)
            yield obj, None, path
            if not inspect.isclass(obj):
                continue
            for attr in sorted(dir(obj)):
                if attr.startswith("_"):
                    continue
                static = inspect.getattr_static(obj, attr, None)
                owner = next((k for k in obj.__mro__ if attr in vars(k)), None)
                if owner is None or not owner.__module__.startswith("skdigits"):
                    continue  # inherited from scikit-learn or Python
                if callable(getattr(obj, attr, None)) or isinstance(static, property):
                    yield obj, attr, f"{path}.{attr}"


OBJECTS = list(_public_objects())


def _filter_errors(errors, obj, method):
    """scikit-learn's rules (sklearn/tests/test_docstrings.py): RT02, GL01
    and GL02 are ignored; PR02 and GL08 for properties; EX01, SA01 and ES01
    are required of classes and functions only, not of methods."""
    for code, message in errors:
        if code in ("RT02", "GL01", "GL02"):
            continue
        if code in ("PR02", "GL08") and method is not None and isinstance(
                inspect.getattr_static(obj, method), property):
            continue
        if method is not None and code in ("EX01", "SA01", "ES01"):
            continue
        yield code, message


@pytest.mark.parametrize("obj, method, path", OBJECTS, ids=[p for *_, p in OBJECTS])
def test_docstring(obj, method, path):
    res = numpydoc_validation.validate(path)
    errors = list(_filter_errors(res["errors"], obj, method))
    assert not errors, "\n".join([path] + [f" - {c}: {m}" for c, m in errors])


def test_every_public_name_is_validated():
    import skdigits

    paths = {p for *_, p in OBJECTS}
    for name in skdigits.__all__:
        obj = getattr(skdigits, name)
        if inspect.isclass(obj):
            assert f"{obj.__module__}.{obj.__qualname__}" in paths
            assert f"{obj.__module__}.{obj.__qualname__}.fit" in paths


@pytest.mark.parametrize("name", ["MLPClassifier", "SoftmaxRegression"])
def test_the_fitted_attributes_are_documented(name):
    import skdigits

    documented = {p.name for p in ClassDoc(getattr(skdigits, name))["Attributes"]}
    weights = "coefs_" if name == "MLPClassifier" else "coef_"
    for attr in (weights, "loss_curve_per_class_", "accuracy_curve_", "n_iter_",
                 "classes_", "n_features_in_"):
        assert attr in documented


def test_doctests_are_collected(request):
    """The docstrings' examples run: pytest collects them (setup.cfg)."""
    assert request.config.option.doctestmodules
