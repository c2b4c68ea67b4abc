"""Dataset loaders: MNIST and Fashion-MNIST from IDX files, and IDX I/O.

A small stratified sample of both datasets ships with the package, so
``load_mnist(sample=True)`` works offline.
"""

from ._base import DataNotFoundError, get_data_home
from ._idx import read_idx, write_idx
from ._mnist import load_mnist

__all__ = [
    "DataNotFoundError",
    "get_data_home",
    "load_mnist",
    "read_idx",
    "write_idx",
]
