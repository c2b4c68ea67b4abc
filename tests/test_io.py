"""Model files: skops by default, no code runs from a file skdigits did not
write, and a killed save never destroys the previous file."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import skops.io as sio
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._fileio import atomic_write, check_writable_folder
from skdigits.io import UntrustedFileError, dump, load, trusted_types

X, y = load_digits(return_X_y=True)
X = X[:400] / 16.0
y = y[:400]

CONFIGS = [
    SoftmaxRegression(max_iter=3, random_state=0),
    SoftmaxRegression(multi_class="ovr", early_stopping=True, max_iter=3,
                      random_state=0),
    MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0),
    MLPClassifier(hidden_layer_sizes=(16, 8), early_stopping=True, max_iter=3,
                  class_weight="balanced", dtype="float64", random_state=0),
    MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, scoring="loss",
                  max_iter=3, random_state=0),
    SoftmaxRegression(early_stopping=True, scoring="f1_macro", max_iter=3,
                      random_state=0),
]


def _fitted(est, labels=y):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, labels)


def _new(est, **params):
    return clone(est).set_params(**params)


@pytest.mark.parametrize("est", CONFIGS, ids=repr)
def test_fitted_estimators_hold_only_trusted_types(est):
    model = _fitted(_new(est))
    untrusted = sio.get_untrusted_types(data=sio.dumps(model))
    assert set(untrusted) <= set(trusted_types())
    # and so skops loads them with nothing more trusted than our classes
    again = sio.loads(sio.dumps(model), trusted=trusted_types())
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("est", CONFIGS, ids=repr)
def test_warm_and_partial_fits_stay_trusted(est):
    model = _fitted(_new(est, warm_start=True))
    _fitted(model)
    if not est.early_stopping:
        model.partial_fit(X[:50], y[:50])
    assert set(sio.get_untrusted_types(data=sio.dumps(model))) <= set(trusted_types())


@pytest.mark.parametrize("est", CONFIGS, ids=repr)
def test_dump_load_round_trip_is_exact(est, tmp_path):
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six",
                       "seven", "eight", "nine"])[y]
    model = _fitted(_new(est), labels)
    path = tmp_path / "model.skops"
    dump(model, path, metadata={"dataset": "digits"})
    again, meta = load(path, return_metadata=True)
    assert type(again) is type(model)
    assert meta["dataset"] == "digits" and meta["estimator"] == type(model).__name__
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(again.loss_curve_per_class_,
                                  model.loss_curve_per_class_)
    assert again.get_params() == model.get_params()
    # plain skops reads the file too (the metadata is one more zip member)
    assert type(sio.load(path, trusted=trusted_types())) is type(model)


def test_pipelines_of_sklearn_and_skdigits_load(tmp_path):
    pipe = make_pipeline(StandardScaler(), SoftmaxRegression(random_state=0))
    _fitted(pipe)
    dump(pipe, tmp_path / "p.skops")
    np.testing.assert_array_equal(load(tmp_path / "p.skops").predict(X),
                                  pipe.predict(X))


class Mystery(StandardScaler):
    """A type nobody declared trusted."""


def test_untrusted_types_are_refused_unless_named(tmp_path):
    pipe = _fitted(make_pipeline(Mystery(), SoftmaxRegression(random_state=0)))
    path = tmp_path / "p.skops"
    dump(pipe, path)
    name = f"{Mystery.__module__}.Mystery"
    with pytest.raises(UntrustedFileError, match=name):
        load(path)
    assert load(path, trusted=[name]).predict(X[:3]).shape == (3,)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("writer", ["pickle", "joblib"])
def test_pickles_are_refused_without_consent(tmp_path, writer):
    marker = tmp_path / "exploited"
    path = tmp_path / f"evil.{writer}"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_Exploit(str(marker))))
    else:
        joblib.dump(_Exploit(str(marker)), path)
    with pytest.raises(UntrustedFileError, match="would run code from the file"):
        load(path)
    assert not marker.exists()
    load(path, allow_pickle=True)  # consent: the code runs
    assert marker.exists()


def test_load_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.skops"):
        load(tmp_path / "nope.skops")


def test_metadata_must_be_json(tmp_path):
    model = _fitted(SoftmaxRegression(max_iter=2, random_state=0))
    path = tmp_path / "m.skops"
    with pytest.raises(TypeError):
        dump(model, path, metadata={"bad": object()})
    assert not path.exists() and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# atomic writes


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_atomic_write_refuses_what_a_rename_would_destroy(tmp_path):
    """The rename put a regular file in place of a pipe, a socket or a
    device (``skdigits fit -o /dev/null`` replaced /dev/null)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="is a pipe"):
        with atomic_write(fifo) as fh:
            fh.write(b"x")
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
    link = tmp_path / "stdout"  # as /dev/stdout: a link to what is no file
    link.symlink_to(fifo)
    with pytest.raises(OSError, match="is a pipe"):
        with atomic_write(link) as fh:
            fh.write(b"x")
    assert link.is_symlink()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        with atomic_write(tmp_path) as fh:
            fh.write(b"x")


def test_atomic_write_names_the_users_path_when_its_folder_is_missing(tmp_path):
    """The error named the temporary file beside the path
    (.../.x.gz.6c2a069e.part)."""
    (tmp_path / "a_file").write_text("")
    for folder, why, error in [(tmp_path / "nodir", "does not exist",
                                FileNotFoundError),
                               (tmp_path / "a_file", "is not a folder",
                                NotADirectoryError)]:
        with pytest.raises(error, match=f"cannot write {folder / 'x.gz'}: its "
                                        f"folder {folder} {why}"):
            with atomic_write(folder / "x.gz") as fh:
                fh.write(b"x")


def test_atomic_write_replaces_a_link_never_its_target(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"theirs")
    link = tmp_path / "link"
    link.symlink_to(target)
    with atomic_write(link) as fh:
        fh.write(b"ours")
    assert target.read_bytes() == b"theirs"
    assert not link.is_symlink() and link.read_bytes() == b"ours"
    loop = tmp_path / "loop"  # a link to itself points nowhere: replaced
    loop.symlink_to(loop)
    with atomic_write(loop) as fh:
        fh.write(b"ours")
    assert not loop.is_symlink() and loop.read_bytes() == b"ours"


@settings(max_examples=20, deadline=None)
@given(length=st.integers(1, 255), wide=st.booleans())
def test_atomic_write_takes_every_name_the_file_system_takes(length, wide):
    """The temporary name beside the file added 15 bytes: a legal name of
    241 to 255 bytes could not be written."""
    import tempfile

    name = ("é" * (length // 2) if wide else "m" * length) or "m"
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        with atomic_write(path) as fh:
            fh.write(b"x")
        assert os.listdir(folder) == [name]


def test_atomic_write_replaces_only_when_complete(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as fh:
            fh.write(b"half of the new")
            raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write("new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_KILLED_WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from sklearn.datasets import load_digits
    from skdigits import MLPClassifier
    from skdigits.datasets import write_idx
    from skdigits.io import dump

    what, path = sys.argv[1], sys.argv[2]
    real_fsync = os.fsync

    def stall(fd):  # the new bytes are written but not yet in place
        print("writing", flush=True)
        time.sleep(60)

    os.fsync = stall
    if what == "dump":
        X, y = load_digits(return_X_y=True)
        dump(MLPClassifier(hidden_layer_sizes=(8,), max_iter=1,
                           random_state=1).fit(X / 16, y), path)
    else:
        write_idx(path, np.full(1000, 9, dtype=np.uint8))
""")


@pytest.mark.parametrize("what", ["dump", "write_idx"])
def test_a_save_killed_mid_write_leaves_the_previous_file(tmp_path, what):
    if what == "dump":
        path = tmp_path / "model.skops"
        old = _fitted(MLPClassifier(hidden_layer_sizes=(8,), max_iter=1,
                                    random_state=0))
        dump(old, path)
    else:
        from skdigits.datasets import read_idx, write_idx

        path = tmp_path / "labels-idx1-ubyte.gz"
        write_idx(path, np.zeros(10, dtype=np.uint8))
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, what, str(path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert path.read_bytes() == before  # the old file, whole
    if what == "dump":
        np.testing.assert_array_equal(load(path).predict(X), old.predict(X))
    else:
        np.testing.assert_array_equal(read_idx(path), np.zeros(10))


def test_check_writable_folder(tmp_path):
    check_writable_folder(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_writable_folder(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        check_writable_folder(tmp_path / "file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_folder_read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    with pytest.raises(PermissionError, match="cannot write into"):
        check_writable_folder(ro)


def test_dump_leaves_sklearn_callbacks_out(tmp_path):
    """set_callbacks stores session objects (monitors) on the estimator:
    saved, they made load refuse the file as untrusted."""
    callback = pytest.importorskip("sklearn.callback")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from skdigits import SoftmaxRegression
    from skdigits.datasets import load_mnist
    from skdigits.io import dump, load

    X, y = load_mnist(sample=True, return_X_y=True)
    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = SoftmaxRegression(max_iter=2, random_state=0).set_callbacks(monitor)
    pipe = make_pipeline(FunctionTransformer(np.float32), clf).fit(X[:500] / 255.0,
                                                                   y[:500])
    for obj in (clf, pipe):
        path = tmp_path / f"{type(obj).__name__}.skops"
        dump(obj, path)
        again = load(path)  # no untrusted type
        final = again if obj is clf else again[-1]
        assert "_skl_callbacks" not in vars(final)
        np.testing.assert_array_equal(final.coef_, clf.coef_)
    assert clf._skl_callbacks == [monitor]  # the live estimator keeps them
