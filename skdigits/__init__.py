"""skdigits: scikit-learn compatible classifiers trained in Numba kernels.

Every estimator records a per-class loss history beside the overall loss and
accuracy curves. Plotting lives in :mod:`skdigits.plotting` and is imported only
when used.
"""

from .linear_model import SoftmaxRegression

__version__ = "0.1.0.dev0"

__all__ = ["SoftmaxRegression", "__version__"]
