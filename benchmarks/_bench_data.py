"""Full-data helpers shared by the benchmark suites (imported from the
benchmarks folder, which pytest puts on ``sys.path``)."""

import numpy as np

from skdigits.datasets import load_mnist


def _have_full_data(kind="digits"):
    """True when the full ``kind`` files are found (never downloads)."""
    try:
        load_mnist(kind, "test", download_if_missing=False)
        return True
    except OSError:
        return False


def _data(kind):
    """Full train and test sets, float32 pixels / 255."""
    X, y = load_mnist(kind, "train", return_X_y=True, download_if_missing=False)
    Xt, yt = load_mnist(kind, "test", return_X_y=True, download_if_missing=False)
    return (X.astype(np.float32) / 255, y, Xt.astype(np.float32) / 255, yt)
