"""Docstring examples of the estimator modules run as doctests; every public
parameter is documented."""

import doctest
import inspect

import pytest

import skdigits
import skdigits.io
import skdigits.linear_model._softmax
import skdigits.neural_network._multilayer_perceptron

ESTIMATOR_MODULES = [skdigits.linear_model._softmax,
                     skdigits.neural_network._multilayer_perceptron,
                     skdigits.io]


@pytest.mark.parametrize("module", ESTIMATOR_MODULES, ids=str)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("name", [n for n in skdigits.__all__ if n[0].isupper()])
def test_every_parameter_is_documented(name):
    cls = getattr(skdigits, name)
    doc = cls.__doc__
    for param in inspect.signature(cls).parameters:
        assert f"\n    {param} : " in doc, f"{name}.{param} is not documented"
    weights = "coefs_" if name == "MLPClassifier" else "coef_"
    for attr in (weights, "loss_curve_per_class_", "accuracy_curve_"):
        assert f"\n    {attr} : " in doc
