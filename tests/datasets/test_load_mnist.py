"""load_mnist: the loader contract, the search order, offline failure, downloads."""

import logging
import os
import socket
import time
import urllib.error
from http.client import IncompleteRead

import numpy as np
import pytest
import sklearn.datasets
from sklearn.datasets._openml import OpenMLError
from sklearn.utils import Bunch
from sklearn.utils._param_validation import InvalidParameterError

import skdigits.datasets
from skdigits.datasets import (
    DataNotFoundError,
    _base,
    _mnist,
    get_data_home,
    load_mnist,
    read_idx,
    write_idx,
)
from skdigits.datasets._mnist import _fetch_openml as real_fetch_openml

FOLDER = {"digits": "mnist", "fashion": "fashion-mnist"}
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
BUNCH_KEYS = {"data", "images", "target", "target_names", "feature_names",
              "frame", "DESCR", "data_home", "source", "filenames"}


def test_public_api():
    assert sorted(skdigits.datasets.__all__) == sorted(
        ["load_mnist", "read_idx", "write_idx", "get_data_home", "DataNotFoundError"]
    )
    assert issubclass(DataNotFoundError, FileNotFoundError)
    assert issubclass(DataNotFoundError, OSError)


# --------------------------------------------------------------------------
# Loader contract (fake files and the bundled sample)


def check_bunch(bunch, kind, n):
    assert isinstance(bunch, Bunch)
    assert set(bunch) == BUNCH_KEYS
    X, images, y = bunch.data, bunch.images, bunch.target
    assert X.shape == (n, 784) and X.dtype == np.uint8 and X.flags.c_contiguous
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert np.shares_memory(images, X)  # a view, not a copy
    np.testing.assert_array_equal(images.reshape(n, -1), X)
    assert y.shape == (n,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() <= 9
    names = FASHION_NAMES if kind == "fashion" else [str(d) for d in range(10)]
    assert isinstance(bunch.target_names, np.ndarray)
    assert bunch.target_names.dtype.kind == "U"
    assert bunch.target_names.tolist() == names
    assert len(bunch.feature_names) == 784
    assert bunch.feature_names[0] == "pixel_0_0"
    assert bunch.feature_names[29] == "pixel_1_1"
    assert bunch.feature_names[-1] == "pixel_27_27"
    assert bunch.frame is None
    assert isinstance(bunch.DESCR, str)
    assert ("Fashion-MNIST" if kind == "fashion" else "MNIST") in bunch.DESCR


@pytest.mark.parametrize("kind", ["digits", "fashion"])
@pytest.mark.parametrize("subset, n", [("train", 20), ("test", 10), ("all", 30)])
def test_contract_on_fake_files(tmp_path, make_idx_folder, kind, subset, n):
    written = make_idx_folder(tmp_path / FOLDER[kind])
    bunch = load_mnist(kind, subset, data_home=tmp_path, download_if_missing=False)
    check_bunch(bunch, kind, n)
    splits = ["train", "test"] if subset == "all" else [subset]
    np.testing.assert_array_equal(
        bunch.images, np.concatenate([written[s][0] for s in splits])
    )
    np.testing.assert_array_equal(
        bunch.target, np.concatenate([written[s][1] for s in splits])
    )
    assert bunch.data_home == str(tmp_path / FOLDER[kind])
    assert bunch.source == "data_home argument"
    assert "bundled sample" not in bunch.DESCR.lower()
    # the files read, images then labels of each split (the report hashes them)
    names = {"train": ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
             "test": ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]}
    assert [os.path.basename(f) for f in bunch.filenames] == [
        n + ".gz" for s in splits for n in names[s]]
    assert all(os.path.isfile(f) for f in bunch.filenames)

    X, y = load_mnist(kind, subset, data_home=tmp_path, return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)
    assert X.dtype == np.uint8 and y.dtype == np.int64


@pytest.mark.parametrize("kind", ["digits", "fashion"])
@pytest.mark.parametrize("subset, n", [("train", 3000), ("test", 1000), ("all", 4000)])
def test_contract_on_sample(kind, subset, n):
    bunch = load_mnist(kind, subset, sample=True)
    check_bunch(bunch, kind, n)
    assert bunch.source == "bundled sample" and bunch.data_home is None
    assert bunch.filenames is None
    assert "bundled sample" in bunch.DESCR.lower()
    X, y = load_mnist(kind, subset, sample=True, return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)


def test_subset_all_is_train_then_test(tmp_path, make_idx_folder):
    make_idx_folder(tmp_path / "mnist", n_train=20, n_test=10)
    train = load_mnist("digits", "train", data_home=tmp_path)
    test = load_mnist("digits", "test", data_home=tmp_path)
    both = load_mnist("digits", "all", data_home=tmp_path)
    np.testing.assert_array_equal(both.data, np.vstack([train.data, test.data]))
    np.testing.assert_array_equal(both.target, np.r_[train.target, test.target])


def test_returned_arrays_are_writable(tmp_path, make_idx_folder):
    make_idx_folder(tmp_path / "mnist")
    X, y = load_mnist(data_home=tmp_path, return_X_y=True)
    X[0, 0] = 0
    y[0] = 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "mnist"},
        {"kind": "Digits"},
        {"subset": "validation"},
        {"subset": None},
        {"return_X_y": "yes"},
        {"download_if_missing": 1.5},
        {"sample": "true"},
        {"data_home": 3},
    ],
)
def test_invalid_parameters(kwargs):
    with pytest.raises(InvalidParameterError):
        load_mnist(**kwargs)


def test_keyword_only_arguments():
    with pytest.raises(TypeError):
        load_mnist("digits", "train", None)


# --------------------------------------------------------------------------
# Files that are found but wrong: ValueError naming the file


def _write_split(folder, images, labels, split="train"):
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)


@pytest.mark.parametrize(
    "images, labels, problem, bad_file",
    [
        (np.zeros((3, 28, 28), np.float32), np.zeros(3, np.uint8),
         "expected uint8 images", "images"),
        (np.zeros((3, 28, 27), np.uint8), np.zeros(3, np.uint8),
         "shape", "images"),
        (np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), "shape", "images"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros(4, np.uint8),
         "3 images but", "images"),
        (np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 10], np.uint8),
         "label 10", "labels"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.int32),
         "expected a uint8 vector", "labels"),
    ],
)
def test_wrong_content_is_reported(tmp_path, images, labels, problem, bad_file):
    _write_split(tmp_path / "mnist", images, labels)
    with pytest.raises(ValueError, match=problem) as info:
        load_mnist(data_home=tmp_path, download_if_missing=False)
    assert f"train-{bad_file}-idx" in str(info.value)
    assert str(tmp_path / "mnist") in str(info.value)


@pytest.mark.parametrize("image_dims, n_labels, problem", [
    ((1, 20000, 20000), 1, "expected uint8 images of shape"),
    ((5000, 28, 28), 4000, "5000 images but"),
    # over read_idx's 2 GiB: refused before the labels are read (here they
    # are a bare header too, so reading them would be a truncation error)
    ((3_000_000, 28, 28), None, "more than the 2147483648 bytes"),
])
def test_headers_are_checked_before_any_data_is_read(tmp_path, image_dims,
                                                     n_labels, problem):
    """A 1.7 MB gzip declaring one 20000 x 20000 image made the loader inflate
    400 MB before it looked at the shape, and mismatched counts were found
    only after both files were read. Here the images file holds its header
    and no data at all: reading it would be a truncation error, so the
    layout error shows the header was judged first."""
    import gzip
    import struct

    folder = tmp_path / "mnist"
    folder.mkdir()
    header = b"\0\0\x08\x03" + struct.pack(">III", *image_dims)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header))
    labels = folder / "train-labels-idx1-ubyte.gz"
    if n_labels is None:
        labels.write_bytes(gzip.compress(b"\0\0\x08\x01"
                                         + struct.pack(">I", image_dims[0])))
    else:
        write_idx(labels, np.zeros(n_labels, np.uint8))
    with pytest.raises(ValueError, match=problem):
        load_mnist(data_home=tmp_path, download_if_missing=False)


def test_a_header_naming_no_element_but_huge_dimensions_is_named(tmp_path):
    import struct

    from skdigits.datasets import read_idx

    path = tmp_path / "odd-idx3-ubyte"
    path.write_bytes(b"\0\0\x08\x04" + struct.pack(">IIII", 0, *[2**32 - 1] * 3))
    with pytest.raises(ValueError, match=f"Invalid IDX file '{path}'.*NumPy cannot"):
        read_idx(path)


def test_corrupt_file_found_is_not_skipped(tmp_path, make_idx_folder, monkeypatch):
    # A corrupt file in the first folder is an error, not a reason to go on.
    make_idx_folder(tmp_path / "first" / "mnist")
    make_idx_folder(tmp_path / "second" / "mnist")
    monkeypatch.setenv("SKDIGITS_DATA", str(tmp_path / "second"))
    bad = tmp_path / "first" / "mnist" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(ValueError, match="corrupt gzip stream") as info:
        load_mnist(data_home=tmp_path / "first")
    assert str(bad) in str(info.value)


# --------------------------------------------------------------------------
# get_data_home


def test_get_data_home_xdg(isolated_env, tmp_path, monkeypatch):
    assert get_data_home() == str(isolated_env / "skdigits")
    assert not (isolated_env / "skdigits").exists()  # create=False by default
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert get_data_home(create=True) == str(tmp_path / "xdg" / "skdigits")
    assert (tmp_path / "xdg" / "skdigits").is_dir()


@pytest.mark.parametrize("xdg", [None, "", "relative/path"])
def test_get_data_home_falls_back_to_local_share(tmp_path, monkeypatch, xdg):
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME")
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    expected = tmp_path / ".local" / "share" / "skdigits"
    assert get_data_home() == str(expected)
    assert not expected.exists()


def test_get_data_home_argument(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_data_home("~/data") == str(tmp_path / "data")
    assert get_data_home(tmp_path / "x" / "y", create=True) == str(tmp_path / "x" / "y")
    assert (tmp_path / "x" / "y").is_dir()
    with pytest.raises(InvalidParameterError):
        get_data_home(42)


# --------------------------------------------------------------------------
# Search order


def marker_of(bunch):
    return int(bunch.images[0, 0, 0])


@pytest.fixture
def four_places(tmp_path, make_idx_folder, monkeypatch, isolated_env):
    """Fake MNIST in data_home, $SKDIGITS_DATA, the user folder and a system folder.

    Markers 1 to 4, in search order. Returns the folders.
    """
    places = {
        "data_home argument": tmp_path / "arg" / "mnist",
        "$SKDIGITS_DATA": tmp_path / "env" / "mnist",
        "user data folder": isolated_env / "skdigits" / "mnist",
        "system folder": tmp_path / "system" / "mnist",
    }
    for marker, folder in enumerate(places.values(), start=1):
        make_idx_folder(folder, marker=marker)
    monkeypatch.setenv("SKDIGITS_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(_base, "SYSTEM_DATA_DIRS", (str(tmp_path / "system"),))
    return places


def test_search_order(four_places):
    import shutil

    places = list(four_places.items())[1:]  # without data_home
    for marker, (origin, folder) in enumerate(places, start=2):
        bunch = load_mnist(download_if_missing=False)
        assert marker_of(bunch) == marker
        assert bunch.source == origin
        assert bunch.data_home == str(folder)
        shutil.rmtree(folder)  # next time, the next place wins
    with pytest.raises(DataNotFoundError):
        load_mnist(download_if_missing=False)


def test_explicit_data_home_is_the_only_place_searched(four_places, tmp_path):
    data_home = four_places["data_home argument"].parent
    bunch = load_mnist(data_home=data_home, download_if_missing=False)
    assert (marker_of(bunch), bunch.source) == (1, "data_home argument")
    import shutil

    shutil.rmtree(data_home / "mnist")
    # the files exist in $SKDIGITS_DATA and elsewhere, but the user named
    # another folder: say it lacks them rather than read something else
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(data_home=data_home, download_if_missing=False)
    assert info.value.searched == [str(data_home / "mnist"), str(data_home)]


@pytest.mark.parametrize("download", [False, True])
def test_missing_data_home_is_an_error_naming_it(four_places, tmp_path, download,
                                                 monkeypatch):
    monkeypatch.setattr("skdigits.datasets._mnist._download", None)  # never called
    nowhere = tmp_path / "no" / "such" / "dir"
    with pytest.raises(DataNotFoundError, match=f"{nowhere} does not exist"):
        load_mnist(data_home=nowhere, download_if_missing=download)
    assert not nowhere.exists()


def test_without_data_home_env_var_comes_first(four_places):
    bunch = load_mnist(download_if_missing=False)
    assert (marker_of(bunch), bunch.source) == (2, "$SKDIGITS_DATA")


def test_data_home_subfolder_before_data_home_itself(tmp_path, make_idx_folder):
    make_idx_folder(tmp_path, marker=7)
    assert marker_of(load_mnist(data_home=tmp_path)) == 7  # files directly inside
    make_idx_folder(tmp_path / "mnist", marker=8)
    bunch = load_mnist(data_home=tmp_path)
    assert marker_of(bunch) == 8 and bunch.data_home == str(tmp_path / "mnist")


def test_kinds_use_their_own_folders(tmp_path, make_idx_folder):
    make_idx_folder(tmp_path / "mnist", marker=1)
    make_idx_folder(tmp_path / "fashion-mnist", marker=2)
    assert marker_of(load_mnist("digits", data_home=tmp_path)) == 1
    assert marker_of(load_mnist("fashion", data_home=tmp_path)) == 2


def test_system_folder_for_fashion_debian_layout(tmp_path, make_idx_folder,
                                                 monkeypatch):
    make_idx_folder(tmp_path / "usr-share-datasets" / "fashion-mnist", marker=5)
    system = str(tmp_path / "usr-share-datasets")
    monkeypatch.setattr(_base, "SYSTEM_DATA_DIRS", (system,))
    bunch = load_mnist("fashion", download_if_missing=False)
    assert (marker_of(bunch), bunch.source) == (5, "system folder")


def test_default_system_folder_is_debians(monkeypatch):
    monkeypatch.undo()  # drop the isolation fixture's empty tuple
    assert _base.SYSTEM_DATA_DIRS == ("/usr/share/datasets",)


def test_folder_counts_only_if_complete_for_the_subset(tmp_path, make_idx_folder,
                                                       monkeypatch, isolated_env):
    make_idx_folder(tmp_path / "env" / "mnist", marker=1, splits=("train",))
    make_idx_folder(isolated_env / "skdigits" / "mnist", marker=2)
    monkeypatch.setenv("SKDIGITS_DATA", str(tmp_path / "env"))
    assert marker_of(load_mnist("digits", "train")) == 1
    assert marker_of(load_mnist("digits", "test")) == 2
    assert marker_of(load_mnist("digits", "all")) == 2


def test_raw_and_gzipped_files_mixed(tmp_path, make_idx_folder):
    folder = tmp_path / "mnist"
    written = make_idx_folder(folder, gz=False)
    gz = folder / "train-labels-idx1-ubyte.gz"
    write_idx(gz, written["train"][1])
    os.remove(folder / "train-labels-idx1-ubyte")
    bunch = load_mnist("digits", "all", data_home=tmp_path)
    assert bunch.data.shape == (30, 784)


def test_env_var_expands_user(tmp_path, make_idx_folder, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    make_idx_folder(tmp_path / "datasets" / "mnist", marker=3)
    monkeypatch.setenv("SKDIGITS_DATA", "~/datasets")
    bunch = load_mnist(download_if_missing=False)
    assert bunch.data_home == str(tmp_path / "datasets" / "mnist")


def test_loading_logs_the_folder(tmp_path, make_idx_folder, caplog):
    make_idx_folder(tmp_path / "mnist")
    with caplog.at_level(logging.INFO, logger="skdigits.datasets"):
        load_mnist(data_home=tmp_path)
    assert str(tmp_path / "mnist") in caplog.text
    assert "data_home argument" in caplog.text


def test_no_output_on_stdout(tmp_path, make_idx_folder, capsys):
    make_idx_folder(tmp_path / "mnist")
    load_mnist(data_home=tmp_path)
    load_mnist(sample=True)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------
# Offline failure


@pytest.mark.parametrize("subset", ["train", "test", "all"])
def test_not_found_lists_every_folder(tmp_path, monkeypatch, isolated_env, subset):
    monkeypatch.setenv("SKDIGITS_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(_base, "SYSTEM_DATA_DIRS", ("/nonexistent/datasets",))
    (tmp_path / "env" / "fashion-mnist").mkdir(parents=True)
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("fashion", subset, download_if_missing=False)
    message = str(info.value)
    expected = [
        tmp_path / "env" / "fashion-mnist",
        isolated_env / "skdigits" / "fashion-mnist",
        "/nonexistent/datasets/fashion-mnist",
    ]
    assert info.value.searched == [str(p) for p in expected]
    positions = [message.index(str(p) + " (") for p in expected]
    assert positions == sorted(positions)  # listed in search order
    missing_line = next(line for line in message.splitlines() if "missing" in line)
    assert str(tmp_path / "env" / "fashion-mnist") in missing_line  # empty folder
    assert ("t10k-images-idx3-ubyte[.gz]" in missing_line) == (subset != "train")
    assert ("train-images-idx3-ubyte[.gz]" in missing_line) == (subset != "test")
    assert "no such folder" in message
    assert "download_if_missing=False" in message
    assert "SKDIGITS_DATA" in message and "sample=True" in message
    assert "download_if_missing=True" in message  # how to get the files
    assert not (isolated_env / "skdigits").exists()  # nothing created


def test_not_found_in_data_home_lists_only_it(tmp_path, isolated_env):
    (tmp_path / "arg" / "fashion-mnist").mkdir(parents=True)
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("fashion", data_home=tmp_path / "arg", download_if_missing=False)
    assert info.value.searched == [str(tmp_path / "arg" / "fashion-mnist"),
                                   str(tmp_path / "arg")]
    assert "missing train-images-idx3-ubyte[.gz]" in str(info.value)


def test_not_found_mentions_unset_env_var(isolated_env):
    with pytest.raises(DataNotFoundError, match=r"\$SKDIGITS_DATA \(not set\)"):
        load_mnist(download_if_missing=False)


def test_sample_never_searches_or_downloads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the sample does not depend on the cwd
    bunch = load_mnist(sample=True, data_home=tmp_path / "nowhere",
                       download_if_missing=True)
    assert bunch.source == "bundled sample"
    assert not (tmp_path / "nowhere").exists()


# --------------------------------------------------------------------------
# Download (the fetcher is always replaced: no test touches the network)


@pytest.fixture
def small_openml(monkeypatch):
    """Shrink the OpenML spec to 20 train + 10 test rows; return a fake fetcher."""
    # Unbalanced on purpose, so a wrong row order changes the train counts.
    y = np.r_[np.arange(10), np.arange(10) // 2, np.full(10, 9)]
    spec = dict(_mnist._OPENML["digits"], n_train=20, n_test=10,
                train_counts=tuple(np.bincount(y[:20], minlength=10)))
    monkeypatch.setitem(_mnist._OPENML, "digits", spec)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(30, 784)).astype(np.float64)
    calls = []

    def fake_fetch(name, version):
        calls.append((name, version))
        return X.copy(), y.astype(str).astype(object)  # as OpenML gives them

    fake_fetch.calls = calls
    fake_fetch.X, fake_fetch.y = X, y
    monkeypatch.setattr(_mnist, "_fetch_openml", fake_fetch)
    return fake_fetch


NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_download_caches_in_data_home(tmp_path, small_openml, caplog):
    with caplog.at_level(logging.INFO, logger="skdigits.datasets"):
        bunch = load_mnist("digits", "test", data_home=tmp_path)
    assert small_openml.calls == [("mnist_784", 1)]
    assert "OpenML" in caplog.text
    folder = tmp_path / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES)
    assert bunch.source == "download from OpenML"
    assert bunch.data_home == str(folder)
    np.testing.assert_array_equal(bunch.data, small_openml.X[20:])
    np.testing.assert_array_equal(bunch.target, small_openml.y[20:])
    train = read_idx(folder / "train-images-idx3-ubyte.gz")
    assert train.shape == (20, 28, 28) and train.dtype == np.uint8
    np.testing.assert_array_equal(train.reshape(20, -1), small_openml.X[:20])

    again = load_mnist("digits", "all", data_home=tmp_path)  # cached now
    assert small_openml.calls == [("mnist_784", 1)]
    assert again.source == "data_home argument"
    np.testing.assert_array_equal(again.data, small_openml.X)


def test_download_caches_in_user_folder_by_default(isolated_env, small_openml):
    bunch = load_mnist()
    folder = isolated_env / "skdigits" / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES)
    assert bunch.data_home == str(folder)
    assert load_mnist().source == "user data folder"


def test_download_fashion_names(tmp_path, monkeypatch):
    monkeypatch.setitem(_mnist._OPENML, "fashion",
                        dict(_mnist._OPENML["fashion"], n_train=10, n_test=10,
                             train_counts=(1,) * 10))
    calls = []

    def fake_fetch(name, version):
        calls.append((name, version))
        return np.zeros((20, 784)), np.tile(np.arange(10).astype(str), 2)

    monkeypatch.setattr(_mnist, "_fetch_openml", fake_fetch)
    bunch = load_mnist("fashion", data_home=tmp_path)
    assert calls == [("Fashion-MNIST", 1)]
    assert (tmp_path / "fashion-mnist" / NAMES[0]).is_file()
    assert bunch.target_names[0] == "T-shirt/top"


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda X, y: (X[:-1], y[:-1]), "shape"),
        (lambda X, y: (X[:, :-1], y), "shape"),
        (lambda X, y: (X + 0.5, y), "not integers in \\[0, 255\\]"),
        (lambda X, y: (X - 1, y), "not integers in \\[0, 255\\]"),
        (lambda X, y: (np.where(X > 128, np.nan, X), y), "not integers"),
        (lambda X, y: (X, np.where(y == "3", "cat", y)), "labels are not integers"),
        (lambda X, y: (X, np.where(y == "3", "11", y)), "labels outside"),
        (lambda X, y: (X, y[::-1].copy()), "train-then-test order"),
    ],
)
def test_download_with_unexpected_content(tmp_path, small_openml, monkeypatch,
                                          change, problem):
    X, y = small_openml.X, small_openml.y.astype(str).astype(object)
    monkeypatch.setattr(_mnist, "_fetch_openml", lambda name, version: change(X, y))
    with pytest.raises(ValueError, match=problem):
        load_mnist(data_home=tmp_path)
    assert not (tmp_path / "mnist").exists()  # nothing half-written


@pytest.mark.parametrize(
    "error",
    [
        urllib.error.URLError("[Errno -2] Name or service not known"),
        urllib.error.HTTPError("https://www.openml.org", 503, "Unavailable", {}, None),
        TimeoutError("timed out"),
        socket.timeout("timed out"),
        ConnectionResetError("reset"),
        IncompleteRead(b"partial"),
        EOFError("Compressed file ended"),
        OpenMLError("dataset not found"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_network_error_gives_clear_error_fast(tmp_path, monkeypatch, isolated_env,
                                              error):
    def failing_fetch(name, version):
        raise error

    monkeypatch.setattr(_mnist, "_fetch_openml", failing_fetch)
    start = time.perf_counter()
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("digits", data_home=tmp_path)
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert "download from OpenML into" in message and "failed" in message
    assert type(error).__name__ in message
    assert str(tmp_path / "mnist") in message  # searched, and the target
    assert info.value.__cause__ is error
    assert not (tmp_path / "mnist").exists()
    # one sentence, not a bullet list (the command line runs it together)
    assert "\n" not in message and message.count(". ") == 0
    assert message.endswith("or use sample=True.")
    assert (info.value.kind, info.value.reason) == ("digits", "download_failed")


def test_download_disabled_never_calls_fetcher(tmp_path, small_openml):
    with pytest.raises(DataNotFoundError):
        load_mnist(data_home=tmp_path, download_if_missing=False)
    assert small_openml.calls == []


def test_other_errors_from_fetcher_propagate(tmp_path, monkeypatch):
    def buggy(name, version):
        raise KeyError("bug")

    monkeypatch.setattr(_mnist, "_fetch_openml", buggy)
    with pytest.raises(KeyError):
        load_mnist(data_home=tmp_path)


# The real fetcher, with sklearn's fetch_openml replaced (no network)


def test_fetcher_arguments_and_socket_timeout(monkeypatch):
    seen = {}
    before = socket.getdefaulttimeout()

    def fake_fetch_openml(name, **kwargs):
        seen.update(kwargs, name=name, timeout=socket.getdefaulttimeout())
        return np.zeros((1, 784)), np.array(["0"], dtype=object)

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_fetch_openml)
    X, y = real_fetch_openml("mnist_784", 1)
    assert X.shape == (1, 784)
    assert seen["name"] == "mnist_784" and seen["version"] == 1
    assert seen["as_frame"] is False and seen["return_X_y"] is True
    assert seen["n_retries"] == 1 and seen["delay"] == 0
    assert seen["cache"] is False
    assert seen["parser"] in {"pandas", "liac-arff"}
    assert seen["timeout"] == _mnist._DOWNLOAD_TIMEOUT > 0
    assert socket.getdefaulttimeout() == before  # restored


def test_fetcher_restores_socket_timeout_on_error(monkeypatch):
    before = socket.getdefaulttimeout()

    def fake_fetch_openml(name, **kwargs):
        raise socket.timeout("timed out")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_fetch_openml)
    with pytest.raises(TimeoutError):
        real_fetch_openml("mnist_784", 1)
    assert socket.getdefaulttimeout() == before


# The real fetcher against a closed local port: what an offline machine gets


def test_offline_download_is_one_sentence_without_raw_warnings(
        tmp_path, offline_openml, recwarn, caplog):
    # before: scikit-learn's "A network error occurred ... Retrying..." warning
    # on the console, then a message of 14 lines
    import warnings

    warnings.simplefilter("always")
    with caplog.at_level(logging.DEBUG, logger="skdigits.datasets"):
        with pytest.raises(DataNotFoundError) as info:
            load_mnist("fashion", data_home=tmp_path)
    assert not [w for w in recwarn if "network error" in str(w.message)]
    retried = [r for r in caplog.records if "Retrying" in r.getMessage()]
    assert retried and all(r.levelno == logging.DEBUG for r in retried)
    error = info.value
    assert error.reason == "download_failed" and error.kind == "fashion"
    assert isinstance(error.__cause__, urllib.error.URLError)
    message = str(error)
    assert "\n" not in message
    assert f"into {tmp_path / 'fashion-mnist'} failed (URLError:" in message
    assert "data_home" in message and "sample=True" in message


def test_not_found_and_missing_data_home_say_why(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_mnist("fashion", data_home=tmp_path, download_if_missing=False)
    assert (info.value.kind, info.value.reason) == ("fashion", "not_found")
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(data_home=tmp_path / "nowhere")
    assert (info.value.kind, info.value.reason) == ("digits", "missing_data_home")
