"""Full MNIST / Fashion-MNIST through SKDIGITS_DATA (skipped when it is not set)."""

import importlib.util
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from skdigits.datasets import load_mnist, read_idx

pytestmark = pytest.mark.full_data

REPO = Path(__file__).resolve().parents[2]
# Label counts from the data README (../shared/data/README.md).
COUNTS = {
    ("digits", "train"): [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    ("digits", "test"): [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ("fashion", "train"): [6000] * 10,
    ("fashion", "test"): [1000] * 10,
}
FOLDER = {"digits": "mnist", "fashion": "fashion-mnist"}


@pytest.fixture
def full_env(data_home, monkeypatch):
    """Point SKDIGITS_DATA back at the full data (the isolation fixture unset it)."""
    monkeypatch.setenv("SKDIGITS_DATA", str(data_home))
    return data_home


@pytest.mark.parametrize("kind", ["digits", "fashion"])
@pytest.mark.parametrize("subset, n", [("train", 60000), ("test", 10000)])
def test_full_dataset(full_env, kind, subset, n):
    bunch = load_mnist(kind, subset, download_if_missing=False)
    assert bunch.source == "$SKDIGITS_DATA"
    assert Path(bunch.data_home).resolve() == (Path(full_env) / FOLDER[kind]).resolve()
    assert bunch.data.shape == (n, 784) and bunch.data.dtype == np.uint8
    assert bunch.images.shape == (n, 28, 28)
    assert bunch.target.shape == (n,) and bunch.target.dtype == np.int64
    assert np.bincount(bunch.target, minlength=10).tolist() == COUNTS[kind, subset]
    assert bunch.data.max() == 255 and bunch.data.min() == 0


def test_full_all_is_70000_rows(full_env):
    X, y = load_mnist("digits", "all", return_X_y=True, download_if_missing=False)
    assert X.shape == (70000, 784) and y.shape == (70000,)
    expected = np.add(COUNTS["digits", "train"], COUNTS["digits", "test"])
    assert np.bincount(y).tolist() == expected.tolist()


def test_read_full_train_images_fast(full_env):
    path = full_env / "mnist" / "train-images-idx3-ubyte.gz"
    read_idx(path)  # warm the page cache
    start = time.perf_counter()
    images = read_idx(path)
    elapsed = time.perf_counter() - start
    assert images.shape == (60000, 28, 28)
    assert elapsed < 1.0, f"read_idx took {elapsed:.2f} s"


def test_bundled_sample_is_rebuilt_byte_for_byte(full_env, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "build_sample", REPO / "tools" / "build_sample.py"
    )
    build_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_sample)
    written = build_sample.build_sample(full_env, tmp_path)
    bundled = resources.files("skdigits.datasets") / "data"
    assert len(written) == 8
    for path in written:
        twin = bundled / path.parent.name / path.name
        assert path.read_bytes() == twin.read_bytes(), path.name


@pytest.mark.parametrize("kind", ["digits", "fashion"])
def test_sample_rows_come_from_the_full_data(full_env, kind):
    sample = load_mnist(kind, "test", sample=True)
    full = load_mnist(kind, "test", download_if_missing=False)
    # Every sample row is a full-data row with the same label, in order.
    keys = {row.tobytes(): i for i, row in enumerate(full.data)}
    index = np.array([keys[row.tobytes()] for row in sample.data])
    assert np.all(np.diff(index) > 0)
    np.testing.assert_array_equal(full.target[index], sample.target)
