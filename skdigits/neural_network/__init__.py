"""Neural-network classifiers."""

from ._multilayer_perceptron import MLPClassifier

__all__ = ["MLPClassifier"]
