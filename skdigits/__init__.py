"""skdigits: scikit-learn compatible classifiers trained in Numba kernels.

Every estimator records a per-class loss history beside the overall loss and
accuracy curves. Plotting lives in :mod:`skdigits.plotting` and is imported only
when used.

The estimators are imported on first use (``skdigits.MLPClassifier``, or
``from skdigits import MLPClassifier``), so that ``import skdigits`` alone,
and the command line's ``--help`` and ``--version``, load neither Numba nor
scikit-learn.
"""

import importlib

__version__ = "0.1.0.dev0"

__all__ = ["MLPClassifier", "SoftmaxRegression", "__version__"]

#: Public name -> the module that defines it.
_LAZY = {"MLPClassifier": "skdigits.neural_network",
         "SoftmaxRegression": "skdigits.linear_model"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'skdigits' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
