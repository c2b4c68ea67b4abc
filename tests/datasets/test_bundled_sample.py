"""The bundled sample and tools/build_sample.py, which builds it."""

import importlib.util
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from skdigits.datasets import load_mnist, read_idx, write_idx

REPO = Path(__file__).resolve().parents[2]
SIZE_BUDGET = 2_500_000  # bytes on disk, both datasets together
FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
SAMPLES = {"digits": "mnist-sample", "fashion": "fashion-mnist-sample"}
# Class counts of the full datasets (tests/../shared/data/README.md).
FULL_COUNTS = {
    ("digits", "train"): [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    ("digits", "test"): [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ("fashion", "train"): [6000] * 10,
    ("fashion", "test"): [1000] * 10,
}


@pytest.fixture(scope="module")
def build_sample():
    """The tools/build_sample.py module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "build_sample", REPO / "tools" / "build_sample.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample_files():
    root = resources.files("skdigits.datasets") / "data"
    return [root / folder / name for folder in SAMPLES.values() for name in FILES]


def test_sample_files_are_package_data():
    # setup.cfg ships data/*/*.gz; every sample file must match that pattern.
    for f in sample_files():
        assert f.is_file(), f
        assert f.name.endswith(".gz")
    data = resources.files("skdigits.datasets") / "data"
    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == sorted(
        SAMPLES.values()
    )


def test_sample_under_size_budget():
    total = sum(len(f.read_bytes()) for f in sample_files())
    assert total <= SIZE_BUDGET


@pytest.mark.parametrize("kind", ["digits", "fashion"])
@pytest.mark.parametrize("subset", ["train", "test"])
def test_sample_sizes_and_stratification(build_sample, kind, subset):
    n = build_sample.N_TRAIN if subset == "train" else build_sample.N_TEST
    y = load_mnist(kind, subset, sample=True).target
    assert y.shape == (n,)
    counts = np.bincount(y, minlength=10)
    assert (counts > 0).all() and counts.size == 10  # all ten classes
    full = np.asarray(FULL_COUNTS[kind, subset])
    quota = n * full / full.sum()
    assert np.all(np.abs(counts - quota) < 1)  # proportional, rounded
    assert counts.max() / counts.min() < 1.3  # equal-ish


def test_sample_descr_states_the_sizes(build_sample):
    descr = " ".join(load_mnist(sample=True).DESCR.split())
    assert f"{build_sample.N_TRAIN:,} rows of the training set" in descr
    assert f"{build_sample.N_TEST:,} rows of the test set" in descr
    assert f"seed {build_sample.SEED}" in descr
    assert "tools/build_sample.py" in descr


def test_sample_train_and_test_differ():
    train = load_mnist(sample=True).data
    test = load_mnist(subset="test", sample=True).data
    assert not np.array_equal(train[: len(test)], test)


# --------------------------------------------------------------------------
# The build script, on small fake "full" files


@pytest.fixture
def fake_full(tmp_path):
    """Fake full data: 200 train and 100 test rows per dataset, unbalanced."""
    rng = np.random.default_rng(0)
    root = tmp_path / "full"
    for name in ("mnist", "fashion-mnist"):
        folder = root / name
        folder.mkdir(parents=True)
        for prefix, n in (("train", 200), ("t10k", 100)):
            labels = np.sort(rng.integers(0, 10, size=n)).astype(np.uint8)
            images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            images[:, 0, 0] = labels  # lets tests match rows to labels
            images[:, 0, 1] = np.arange(n) % 256  # and find their index
            write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
            write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)  # raw
    return root


def build(build_sample, source, dest, **kwargs):
    kwargs = {"n_train": 50, "n_test": 20, **kwargs}
    return build_sample.build_sample(source, dest, **kwargs)


def test_build_is_deterministic(build_sample, fake_full, tmp_path):
    a = build(build_sample, fake_full, tmp_path / "a")
    b = build(build_sample, fake_full, tmp_path / "b")
    assert len(a) == len(b) == 8
    for path in a:
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert path.read_bytes() == twin.read_bytes()
    build(build_sample, fake_full, tmp_path / "c", seed=1)
    images = "mnist-sample/train-images-idx3-ubyte.gz"
    seed0, seed1 = tmp_path / "a" / images, tmp_path / "c" / images
    assert seed0.read_bytes() != seed1.read_bytes()


def test_build_output_is_a_stratified_subset(build_sample, fake_full, tmp_path):
    written = build(build_sample, fake_full, tmp_path / "out")
    assert all(size == p.stat().st_size for p, size in written.items())
    for name in ("mnist", "fashion-mnist"):
        for prefix, n in (("train", 50), ("t10k", 20)):
            full_images = read_idx(fake_full / name / f"{prefix}-images-idx3-ubyte.gz")
            full_labels = read_idx(fake_full / name / f"{prefix}-labels-idx1-ubyte")
            out = tmp_path / "out" / f"{name}-sample"
            images = read_idx(out / f"{prefix}-images-idx3-ubyte.gz")
            labels = read_idx(out / f"{prefix}-labels-idx1-ubyte.gz")
            assert images.shape == (n, 28, 28) and labels.shape == (n,)
            assert images.dtype == labels.dtype == np.uint8
            index = images[:, 0, 1].astype(int)  # the original row numbers
            assert np.all(np.diff(index) > 0)  # original order, no repeats
            np.testing.assert_array_equal(images, full_images[index])
            np.testing.assert_array_equal(labels, full_labels[index])
            full = np.bincount(full_labels, minlength=10)
            quota = n * full / full.sum()
            assert np.all(np.abs(np.bincount(labels, minlength=10) - quota) < 1)


def test_sample_built_from_fakes_loads(build_sample, fake_full, tmp_path,
                                       monkeypatch):
    # The built folders use the standard names, so load_mnist reads them.
    build(build_sample, fake_full, tmp_path / "out")
    (tmp_path / "out" / "mnist-sample").rename(tmp_path / "out" / "mnist")
    bunch = load_mnist("digits", "all", data_home=tmp_path / "out",
                       download_if_missing=False)
    assert bunch.data.shape == (70, 784)


@pytest.mark.parametrize("n", [0, 201])
def test_build_rejects_impossible_sizes(build_sample, fake_full, tmp_path, n):
    with pytest.raises(ValueError, match="cannot draw"):
        build(build_sample, fake_full, tmp_path / "out", n_train=n)


def test_build_reports_missing_source_files(build_sample, fake_full, tmp_path):
    (fake_full / "fashion-mnist" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        build(build_sample, fake_full, tmp_path / "out")


def test_stratified_indices(build_sample):
    y = np.r_[np.zeros(70), np.ones(20), np.full(10, 2)].astype(np.uint8)
    rng = np.random.default_rng(0)
    idx = build_sample.stratified_indices(y, 10, rng)
    assert np.all(np.diff(idx) > 0)
    assert np.bincount(y[idx]).tolist() == [7, 2, 1]
    idx = build_sample.stratified_indices(y, 15, rng)  # 10.5, 3, 1.5
    assert idx.size == 15 and np.bincount(y[idx]).tolist() == [11, 3, 1]


def test_build_main_cli(build_sample, fake_full, tmp_path, capsys):
    assert build_sample.main(
        [str(fake_full), "--dest", str(tmp_path / "out"), "--n-train", "30",
         "--n-test", "10", "--seed", "3"]
    ) == 0
    assert "total bytes" in capsys.readouterr().out
    assert read_idx(tmp_path / "out" / "mnist-sample" / FILES[1]).shape == (30,)
