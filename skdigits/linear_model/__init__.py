"""Linear classifiers trained by minibatch gradient descent in Numba kernels."""

from ._softmax import SoftmaxRegression

__all__ = ["SoftmaxRegression"]
