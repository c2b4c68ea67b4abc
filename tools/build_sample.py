"""Build the stratified MNIST / Fashion-MNIST samples bundled with skdigits.

From the full IDX files in ``SOURCE/mnist/`` and ``SOURCE/fashion-mnist/``
this writes, for each dataset, a stratified subset of the training split and
of the test split as gzipped IDX files with the standard names into
``skdigits/datasets/data/mnist-sample/`` and
``skdigits/datasets/data/fashion-mnist-sample/``.

The build is reproducible: the same inputs and options give byte-identical
files (fixed seed, sorted row order, gzip header without name or time).

Usage::

    python tools/build_sample.py [SOURCE] [--dest DIR] [--n-train N]
                                 [--n-test N] [--seed S]

``SOURCE`` defaults to ``$SKDIGITS_DATA``, else ``../shared/data`` next to
the repository.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from skdigits.datasets import read_idx, write_idx
from skdigits.datasets._base import _find_files

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO / "skdigits" / "datasets" / "data"

#: Full-data folder name -> sample folder name.
DATASETS = {"mnist": "mnist-sample", "fashion-mnist": "fashion-mnist-sample"}
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: Rows per split in the bundled sample, and the seed.
N_TRAIN = 3000
N_TEST = 1000
SEED = 0
COMPRESSLEVEL = 9


def default_source():
    """``$SKDIGITS_DATA`` if set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("SKDIGITS_DATA")
    return Path(env).expanduser() if env else (REPO.parent / "shared" / "data")


def stratified_indices(y, n, rng):
    """Sorted indices of a stratified sample of ``n`` rows of labels ``y``.

    Each class gets a share of ``n`` proportional to its frequency in ``y``
    (largest-remainder rounding, ties to the smaller class label); the rows
    of each class are drawn without replacement by ``rng``.
    """
    y = np.asarray(y)
    if not 0 < n <= y.shape[0]:
        raise ValueError(f"cannot draw {n} rows from {y.shape[0]}")
    classes, counts = np.unique(y, return_counts=True)
    quotas = n * counts / counts.sum()
    take = np.floor(quotas).astype(np.int64)
    remainder = n - int(take.sum())
    order = np.argsort(-(quotas - take), kind="stable")
    take[order[:remainder]] += 1
    chosen = [
        rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)
    ]
    return np.sort(np.concatenate(chosen))


def build_sample(source=None, dest=None, *, n_train=N_TRAIN, n_test=N_TEST,
                 seed=SEED, datasets=tuple(DATASETS)):
    """Write the stratified samples; return ``{path: size_in_bytes}``.

    Parameters
    ----------
    source : str or path-like, default=None
        Folder holding ``mnist/`` and ``fashion-mnist/`` with the four full
        IDX files each (raw or ``.gz``). None means :func:`default_source`.
    dest : str or path-like, default=None
        Folder receiving ``mnist-sample/`` and ``fashion-mnist-sample/``.
        None means the package's ``skdigits/datasets/data``.
    n_train, n_test : int
        Rows drawn from the training and the test split of each dataset.
    seed : int
        Seed of the random draw; each dataset uses its own generator
        seeded with ``seed``.
    datasets : tuple of str
        Full-data folder names to sample.
    """
    source = Path(source) if source is not None else default_source()
    dest = Path(dest) if dest is not None else DEFAULT_DEST
    written = {}
    for name in datasets:
        folder = source / name
        files, missing = _find_files(folder, [f for s in SPLITS.values() for f in s])
        if missing:
            raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}[.gz]")
        out = dest / DATASETS[name]
        out.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for split, n in (("train", n_train), ("test", n_test)):
            images_name, labels_name = SPLITS[split]
            images = read_idx(files[images_name])
            labels = read_idx(files[labels_name])
            rows = stratified_indices(labels, n, rng)
            for base, array in ((images_name, images), (labels_name, labels)):
                path = out / (base + ".gz")
                write_idx(path, array[rows], compresslevel=COMPRESSLEVEL)
                written[path] = path.stat().st_size
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", default=None,
                        help="folder with mnist/ and fashion-mnist/ "
                             "(default: $SKDIGITS_DATA or ../shared/data)")
    parser.add_argument("--dest", default=None,
                        help=f"output folder (default: {DEFAULT_DEST})")
    parser.add_argument("--n-train", type=int, default=N_TRAIN)
    parser.add_argument("--n-test", type=int, default=N_TEST)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    written = build_sample(args.source, args.dest, n_train=args.n_train,
                           n_test=args.n_test, seed=args.seed)
    for path, size in written.items():
        print(f"{size:>10,d}  {path}")
    print(f"{sum(written.values()):>10,d}  total bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
