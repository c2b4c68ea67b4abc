"""Fixtures for the dataset tests: an isolated environment and fake IDX folders.

Every test here runs with ``SKDIGITS_DATA`` unset, ``XDG_DATA_HOME`` pointing
at an empty temporary folder, no system folders, and an OpenML fetcher that
fails the test if called: no test reads the real user folder or touches the
network unless it sets that up itself.
"""

import socket

import numpy as np
import pytest

from skdigits.datasets import _base, _mnist, write_idx

#: The fetcher that downloads (``isolated_env`` replaces it).
REAL_FETCH_OPENML = _mnist._fetch_openml

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@pytest.fixture(autouse=True)
def isolated_env(data_home, monkeypatch, tmp_path_factory):
    """Isolate the search from the machine; ``data_home`` is read first.

    The shared ``data_home`` fixture (the full data, from ``SKDIGITS_DATA``)
    is evaluated before the variable is removed, so full-data tests can set
    it back from that fixture.
    """
    monkeypatch.delenv("SKDIGITS_DATA", raising=False)
    xdg = tmp_path_factory.mktemp("xdg_data_home")
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    monkeypatch.setattr(_base, "SYSTEM_DATA_DIRS", ())

    def no_network(*args, **kwargs):
        pytest.fail("a test called the OpenML fetcher without replacing it")

    monkeypatch.setattr(_mnist, "_fetch_openml", no_network)
    return xdg


def _fake_split(n, marker, rng):
    labels = np.arange(n, dtype=np.uint8) % 10
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = marker  # tells which folder the data came from
    return images, labels


@pytest.fixture
def make_idx_folder():
    """Return ``make(folder, *, marker=1, n_train=20, n_test=10, splits=..., gz=True)``.

    It writes small MNIST-shaped IDX files (28x28 uint8 images, labels cycling
    0..9, pixel (0, 0) of every image set to ``marker``) and returns a dict
    ``{split: (images, labels)}`` of what it wrote.
    """

    def make(folder, *, marker=1, n_train=20, n_test=10, splits=("train", "test"),
             gz=True):
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(marker)
        written = {}
        for split in splits:
            n = n_train if split == "train" else n_test
            images, labels = _fake_split(n, marker, rng)
            suffix = ".gz" if gz else ""
            write_idx(folder / (FILES[split][0] + suffix), images)
            write_idx(folder / (FILES[split][1] + suffix), labels)
            written[split] = (images, labels)
        return written

    return make


@pytest.fixture
def offline_openml(monkeypatch):
    """scikit-learn's OpenML URLs pointed at a local port nobody listens on
    (bound, so no other process takes it): the connection is refused at once,
    as on a machine without network, and nothing leaves the machine."""
    from sklearn.datasets import _openml

    if not hasattr(_openml, "_SEARCH_NAME"):  # pragma: no cover - moved
        pytest.skip("scikit-learn's OpenML URL constants moved")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    monkeypatch.setattr(_openml, "_SEARCH_NAME",
                        f"http://127.0.0.1:{port}/api/v1/json/data/list/"
                        "data_name/{}/limit/2")
    monkeypatch.setattr(_mnist, "_fetch_openml", REAL_FETCH_OPENML)
    yield port
    sock.close()
