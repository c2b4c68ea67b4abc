"""Shared fixtures: full-data location, matplotlib, small random problems."""

import os
from pathlib import Path

# sklearn's array-API check (NumPy namespace) runs only when scipy is imported
# with this set; without it the check would be skipped.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest

_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def full_data_home():
    """Folder named by ``SKDIGITS_DATA`` when it holds both full datasets, else None."""
    root = os.environ.get("SKDIGITS_DATA")
    if not root:
        return None
    root = Path(root).expanduser()
    for sub in ("mnist", "fashion-mnist"):
        for name in _FILES:
            if not ((root / sub / name).exists()
                    or (root / sub / (name + ".gz")).exists()):
                return None
    return root


def pytest_collection_modifyitems(config, items):
    if full_data_home() is not None:
        return
    skip = pytest.mark.skip(
        reason="full MNIST/Fashion-MNIST IDX files not found: set SKDIGITS_DATA to a "
        "folder holding mnist/ and fashion-mnist/ (CI sets it to ../shared/data)"
    )
    for item in items:
        if "full_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data_home():
    """Path of the full datasets (tests using it must be marked ``full_data``)."""
    return full_data_home()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def pyplot():
    """matplotlib.pyplot on the Agg backend, all figures closed before and after."""
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.close("all")
    yield plt
    plt.close("all")
