"""Loader for MNIST and Fashion-MNIST from IDX files."""

import contextlib
import importlib.util
import logging
import os
import socket
import warnings
from http.client import HTTPException
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params

from ._base import DATA_ENV_VAR, DataNotFoundError, _search, get_data_home
from ._idx import MAX_BYTES, read_idx, read_idx_header, write_idx

__all__ = ["load_mnist"]

logger = logging.getLogger(__name__)

_IMAGES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
_LABELS = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}
_SPLITS = {"train": ("train",), "test": ("test",), "all": ("train", "test")}

_DIGIT_NAMES = tuple(str(d) for d in range(10))
_FASHION_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# kind -> folder name, bundled-sample folder, DESCR file, target names, title.
_KINDS = {
    "digits": {
        "folder": "mnist",
        "sample": "mnist-sample",
        "descr": "mnist.rst",
        "target_names": _DIGIT_NAMES,
        "title": "MNIST",
    },
    "fashion": {
        "folder": "fashion-mnist",
        "sample": "fashion-mnist-sample",
        "descr": "fashion_mnist.rst",
        "target_names": _FASHION_NAMES,
        "title": "Fashion-MNIST",
    },
}

# OpenML copies. Both hold the 60,000 training images followed by the 10,000
# test images (mnist_784's description says so; for Fashion-MNIST the label
# counts checked after the download guard the order: 6,000 of each class in
# the first 60,000 rows).
_OPENML = {
    "digits": {
        "name": "mnist_784",
        "version": 1,
        "n_train": 60000,
        "n_test": 10000,
        "train_counts": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    },
    "fashion": {
        "name": "Fashion-MNIST",
        "version": 1,
        "n_train": 60000,
        "n_test": 10000,
        "train_counts": (6000,) * 10,
    },
}

#: Socket timeout, in seconds, for each network operation of a download.
_DOWNLOAD_TIMEOUT = 30.0

_SHAPE = (28, 28)
_N_FEATURES = _SHAPE[0] * _SHAPE[1]
_FEATURE_NAMES = [f"pixel_{i}_{j}" for i in range(_SHAPE[0]) for j in range(_SHAPE[1])]


@contextlib.contextmanager
def _socket_timeout(seconds):
    """Set the default socket timeout for the duration of the block.

    ``fetch_openml`` opens its URLs without a timeout, so the process-wide
    default is what bounds each network operation. This is not thread-safe,
    like any change to process-wide state.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _fetch_openml(name, version):
    """Download one OpenML dataset; return ``(X, y)`` as NumPy arrays.

    Kept at module level so tests replace it and never touch the network.
    One retry without delay, a bounded socket timeout, and no caching in
    scikit-learn's own data home (the loader caches IDX files instead).
    """
    from sklearn.datasets import fetch_openml

    # pandas parses the 70,000 x 784 ARFF much faster; liac-arff needs nothing.
    parser = "pandas" if importlib.util.find_spec("pandas") else "liac-arff"
    # scikit-learn warns before its retry; the error, if the retry fails too,
    # says what happened, so the warning is only logged (at DEBUG)
    caught = []
    with _socket_timeout(_DOWNLOAD_TIMEOUT):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                return fetch_openml(
                    name,
                    version=version,
                    return_X_y=True,
                    as_frame=False,
                    parser=parser,
                    cache=False,
                    n_retries=1,
                    delay=0.0,
                )
        finally:
            _pass_on(caught)


#: How scikit-learn's warning before a retry begins.
_RETRY_WARNING = "A network error occurred while downloading"


def _pass_on(caught):
    """Warnings caught during a download: the retry notices logged, the
    others warned again."""
    for w in caught:
        if str(w.message).startswith(_RETRY_WARNING):
            logger.debug("%s", w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _download_errors():
    """Exception types that mean "the download did not work"."""
    errors = [OSError, EOFError, HTTPException]  # URLError, timeouts: OSError
    try:
        from sklearn.datasets._openml import OpenMLError

        errors.append(OpenMLError)
    except ImportError:  # pragma: no cover - private location moved
        pass
    return tuple(errors)


def _download(kind, folder):
    """Fetch ``kind`` from OpenML and store its four IDX files in ``folder``."""
    spec = _OPENML[kind]
    title = _KINDS[kind]["title"]
    logger.info(
        "Downloading %s from OpenML (%s, version %s) into %s",
        title, spec["name"], spec["version"], folder,
    )
    X, y = _fetch_openml(spec["name"], spec["version"])
    if hasattr(X, "toarray"):  # sparse
        X = X.toarray()
    X = np.asarray(X)
    y = np.asarray(y)
    n_train, n_test = spec["n_train"], spec["n_test"]
    n = n_train + n_test
    if X.shape != (n, _N_FEATURES) or y.shape != (n,):
        raise ValueError(
            f"OpenML dataset {spec['name']!r} has X of shape {X.shape} and y of "
            f"shape {y.shape}; expected ({n}, {_N_FEATURES}) and ({n},)"
        )
    in_range = bool(X.min() >= 0 and X.max() <= 255)  # False for NaN
    images = X.astype(np.uint8) if in_range else None
    if not in_range or not np.array_equal(images, X):
        raise ValueError(
            f"OpenML dataset {spec['name']!r}: pixel values are not integers "
            "in [0, 255]"
        )
    try:
        labels = y.astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"OpenML dataset {spec['name']!r}: labels are not integers "
            f"({y[:5]!r}...)"
        ) from exc
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(
            f"OpenML dataset {spec['name']!r}: labels outside 0..9"
        )
    counts = tuple(np.bincount(labels[:n_train], minlength=10).tolist())
    if spec.get("train_counts") is not None and counts != tuple(spec["train_counts"]):
        raise ValueError(
            f"OpenML dataset {spec['name']!r}: the label counts of the first "
            f"{n_train} rows are {counts}, not the {tuple(spec['train_counts'])} "
            "of the original training set, so the rows are not in the "
            "train-then-test order this loader relies on"
        )
    images = images.reshape(n, *_SHAPE)
    labels = labels.astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", slice(0, n_train)), ("test", slice(n_train, n))):
        write_idx(folder / (_IMAGES[split] + ".gz"), images[rows], compresslevel=6)
        write_idx(folder / (_LABELS[split] + ".gz"), labels[rows], compresslevel=6)
    logger.info("Saved %s as gzipped IDX files in %s", title, folder)


def _read_split(images_path, labels_path):
    """Read and check one split's images and labels: their headers first, so
    that a file declaring another layout (or another count than its partner)
    is refused before its data is read, whatever it would inflate to."""
    image_dtype, image_shape = read_idx_header(images_path)
    label_dtype, label_shape = read_idx_header(labels_path)
    if (image_dtype != np.uint8 or len(image_shape) != 3
            or image_shape[1:] != _SHAPE):
        raise ValueError(
            f"{os.fspath(images_path)!r} holds {image_dtype} images of shape "
            f"{image_shape}; expected uint8 images of shape (n, 28, 28)"
        )
    if label_dtype != np.uint8 or len(label_shape) != 1:
        raise ValueError(
            f"{os.fspath(labels_path)!r} holds {label_dtype} labels of shape "
            f"{label_shape}; expected a uint8 vector"
        )
    if label_shape[0] != image_shape[0]:
        raise ValueError(
            f"{os.fspath(images_path)!r} holds {image_shape[0]} images but "
            f"{os.fspath(labels_path)!r} holds {label_shape[0]} labels"
        )
    image_bytes = image_shape[0] * _SHAPE[0] * _SHAPE[1]
    if image_bytes > MAX_BYTES:  # before the labels are read, too
        raise ValueError(
            f"{os.fspath(images_path)!r} declares {image_shape[0]} images "
            f"({image_bytes} bytes), more than the {MAX_BYTES} bytes read_idx "
            "accepts")
    # bounded by the headers just checked: a file replaced meanwhile by one
    # declaring more is refused
    labels = read_idx(labels_path, max_bytes=label_shape[0])
    images = read_idx(images_path, max_bytes=image_bytes)
    if (images.shape != image_shape or labels.shape != label_shape
            or images.dtype != np.uint8 or labels.dtype != np.uint8):
        raise ValueError(f"{os.fspath(images_path)!r} or {os.fspath(labels_path)!r} "
                         "changed while it was being read")
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"{os.fspath(labels_path)!r} holds label {labels.max()}; labels "
            "must be in 0..9"
        )
    return images, labels


def _read_files(paths, splits):
    """Read the splits from ``paths`` (base name -> path), train first."""
    parts = [_read_split(paths[_IMAGES[s]], paths[_LABELS[s]]) for s in splits]
    if len(parts) == 1:
        images, labels = parts[0]
    else:
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
    return images, labels


def _read_sample(kind, splits):
    """Read the bundled sample through importlib.resources."""
    root = resources.files("skdigits.datasets") / "data" / _KINDS[kind]["sample"]
    with contextlib.ExitStack() as stack:
        paths = {}
        for s in splits:
            for name in (_IMAGES[s], _LABELS[s]):
                resource = root / (name + ".gz")
                paths[name] = stack.enter_context(resources.as_file(resource))
        return _read_files(paths, splits)


def _descr(kind, sample):
    descr_dir = resources.files("skdigits.datasets") / "descr"
    text = (descr_dir / _KINDS[kind]["descr"]).read_text(encoding="utf-8")
    if sample:
        text += "\n" + (descr_dir / "sample.rst").read_text(encoding="utf-8")
    return text


def _not_found_message(kind, subset, report, download_note):
    info = _KINDS[kind]
    needed = [n for s in _SPLITS[subset] for n in (_IMAGES[s], _LABELS[s])]
    return "\n".join(
        [
            f"{info['title']} files for subset={subset!r} not found "
            f"({', '.join(n + '[.gz]' for n in needed)}). Searched, in order:",
            *report,
            download_note,
            "To provide the files, either:",
            "  - put the four IDX files (train-images-idx3-ubyte, "
            "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
            "t10k-labels-idx1-ubyte, each raw or .gz) in one of the folders "
            "above, or pass that folder as data_home;",
            f"  - set {DATA_ENV_VAR} to a folder holding {_KINDS['digits']['folder']}/ "
            f"and {_KINDS['fashion']['folder']}/ with those files;",
            "  - call load_mnist(..., download_if_missing=True) with network "
            "access to fetch them from OpenML.",
            "For a small offline sample, use load_mnist(..., sample=True).",
        ]
    )


def _download_failed_message(kind, subset, searched, target_folder, exc):
    """The download's failure, in one sentence: where the files were looked
    for, what failed, and how to do without a network."""
    info = _KINDS[kind]
    folders = ", ".join(searched) or "none"
    return (
        f"The {info['title']} files for subset={subset!r} are in none of the "
        f"folders searched ({folders}) and the download from OpenML into "
        f"{target_folder} failed ({type(exc).__name__}: {exc}); without network "
        "access, put the four IDX files in a folder and pass it as data_home "
        f"(or set {DATA_ENV_VAR} to a folder holding {info['folder']}/), or use "
        "sample=True."
    )


@validate_params(
    {
        "kind": [StrOptions({"digits", "fashion"})],
        "subset": [StrOptions({"train", "test", "all"})],
        "data_home": [str, os.PathLike, None],
        "return_X_y": ["boolean"],
        "download_if_missing": ["boolean"],
        "sample": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_mnist(
    kind="digits",
    subset="train",
    *,
    data_home=None,
    return_X_y=False,
    download_if_missing=True,
    sample=False,
):
    """Load the MNIST digits or Fashion-MNIST dataset (classification).

    Both datasets hold 28x28 grayscale images with pixel values 0 to 255 in
    ten classes: 60,000 training and 10,000 test images.

    =================   ==============
    Classes                         10
    Samples total                70000
    Samples (train)              60000
    Samples (test)               10000
    Dimensionality                 784
    Features            integers 0-255
    =================   ==============

    The four standard IDX files (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte``, each raw or gzipped as ``.gz``) are searched
    for in these folders, in order, and the first folder that holds the
    files the subset needs is used:

    1. ``data_home/<name>/``, then ``data_home/`` itself, when ``data_home``
       is given, and nothing else: an explicit ``data_home`` is never
       silently replaced by another folder, and one that does not exist is
       an error;
    2. ``$SKDIGITS_DATA/<name>/``, when that environment variable is set;
    3. ``get_data_home()/<name>/``, the per-user data folder;
    4. ``/usr/share/datasets/<name>/`` (Debian's dataset packages).

    ``<name>`` is ``mnist`` for the digits and ``fashion-mnist`` for
    Fashion-MNIST. When no folder holds the files and
    ``download_if_missing`` is True, the dataset is fetched from OpenML
    (``mnist_784`` or ``Fashion-MNIST``, version 1) and stored as gzipped
    IDX files in ``data_home/<name>/``, or in the per-user data folder when
    ``data_home`` is None.

    Parameters
    ----------
    kind : {"digits", "fashion"}, default="digits"
        Which dataset: the MNIST handwritten digits or Fashion-MNIST.

    subset : {"train", "test", "all"}, default="train"
        Which split to load. ``"all"`` is the training split followed by the
        test split (70,000 rows for the full datasets).

    data_home : str or path-like, default=None
        The folder to read the files from (``data_home/<name>/`` or
        ``data_home/`` itself), and where downloads are stored. When given,
        no other folder is searched, and it must exist. By default, the
        search above, with downloads going to the per-user data folder from
        :func:`get_data_home`.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch object.

    download_if_missing : bool, default=True
        If False, raise :class:`DataNotFoundError` when the files are not
        found instead of downloading them from OpenML.

    sample : bool, default=False
        If True, load the small stratified sample bundled with skdigits
        instead (no search, no download; ``data_home`` and
        ``download_if_missing`` are ignored). Its size is given in the
        ``DESCR`` of the result.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        data : ndarray of shape (n_samples, 784), dtype=uint8
            The flattened images, C-contiguous, one row per image.
        images : ndarray of shape (n_samples, 28, 28), dtype=uint8
            The images, a view of ``data``.
        target : ndarray of shape (n_samples,), dtype=int64
            The class labels, 0 to 9.
        target_names : ndarray of shape (10,), dtype=str
            The class names: ``"0"`` to ``"9"`` for the digits, ``"T-shirt/top"``
            to ``"Ankle boot"`` for Fashion-MNIST.
        feature_names : list of str
            ``"pixel_<row>_<col>"`` for each of the 784 columns.
        frame : None
            Kept for compatibility with scikit-learn loaders.
        DESCR : str
            The full description of the dataset.
        data_home : str or None
            The folder the files were read from, or None for the bundled
            sample.
        source : str
            Where that folder came from: ``"data_home argument"``,
            ``"$SKDIGITS_DATA"``, ``"user data folder"``, ``"system folder"``,
            ``"download from OpenML"`` or ``"bundled sample"``.
        filenames : list of str or None
            The gzipped IDX files read (images, then labels, of each split),
            or None for the bundled sample.

    (data, target) : tuple if ``return_X_y`` is True
        The ``data`` and ``target`` arrays described above.

    Raises
    ------
    DataNotFoundError
        If the files are found nowhere and ``download_if_missing`` is False,
        or the download fails. The message lists the folders searched.
    ValueError
        If a file found is not a valid IDX file of MNIST-shaped data.

    See Also
    --------
    get_data_home : The per-user data folder.
    read_idx : Read one IDX file.

    Notes
    -----
    Set the ``skdigits.datasets`` logger to DEBUG or INFO to see which
    folder the files are read from.

    Examples
    --------
    >>> from skdigits.datasets import load_mnist
    >>> bunch = load_mnist(sample=True)
    >>> bunch.data.shape, bunch.images.shape, bunch.target.shape
    ((3000, 784), (3000, 28, 28), (3000,))
    >>> bunch.source
    'bundled sample'
    >>> X, y = load_mnist("fashion", "test", sample=True, return_X_y=True)
    >>> X.shape, sorted(set(y.tolist())) == list(range(10))
    ((1000, 784), True)
    """
    info = _KINDS[kind]
    splits = _SPLITS[subset]

    if sample:
        images, labels = _read_sample(kind, splits)
        folder, origin, filenames = None, "bundled sample", None
        logger.debug("Loaded the bundled %s sample (subset=%r)", info["title"], subset)
    else:
        if data_home is not None and not os.path.isdir(get_data_home(data_home)):
            raise DataNotFoundError(
                f"data_home {get_data_home(data_home)} does not exist (or is not "
                "a folder): name the folder that holds "
                f"{info['folder']}/ or the IDX files themselves.",
                [get_data_home(data_home)], kind=kind, reason="missing_data_home",
            )
        basenames = [n for s in splits for n in (_IMAGES[s], _LABELS[s])]
        paths, found_in, origin, report, searched = _search(
            info["folder"], basenames, data_home
        )
        if paths is None:
            target_folder = Path(get_data_home(data_home)) / info["folder"]
            if not download_if_missing:
                raise DataNotFoundError(
                    _not_found_message(
                        kind, subset, report,
                        "Download disabled (download_if_missing=False).",
                    ),
                    searched, kind=kind, reason="not_found",
                )
            try:
                _download(kind, target_folder)
            except _download_errors() as exc:
                raise DataNotFoundError(
                    _download_failed_message(kind, subset, searched, target_folder,
                                             exc),
                    searched, kind=kind, reason="download_failed",
                ) from exc
            paths = {name: target_folder / (name + ".gz") for name in basenames}
            found_in, origin = target_folder, "download from OpenML"
        folder = str(found_in)
        logger.info(
            "Loading %s (subset=%r) from %s (%s)", info["title"], subset, folder,
            origin,
        )
        images, labels = _read_files(paths, splits)
        filenames = [os.fspath(paths[name]) for name in basenames]

    n_samples = images.shape[0]
    data = np.ascontiguousarray(images.reshape(n_samples, _N_FEATURES))
    target = labels.astype(np.int64)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=data.reshape(n_samples, *_SHAPE),
        target=target,
        target_names=np.asarray(info["target_names"]),
        feature_names=list(_FEATURE_NAMES),
        frame=None,
        DESCR=_descr(kind, sample),
        data_home=folder,
        source=origin,
        filenames=filenames,
    )
