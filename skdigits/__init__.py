"""skdigits: scikit-learn compatible classifiers trained in Numba kernels.

Every estimator records a per-class loss history beside the overall loss and
accuracy curves. Plotting lives in :mod:`skdigits.plotting` and is imported only
when used.
"""

from .linear_model import SoftmaxRegression
from .neural_network import MLPClassifier

__version__ = "0.1.0.dev0"

__all__ = ["MLPClassifier", "SoftmaxRegression", "__version__"]
