"""The training engine: an MLP epoch against the matrix-product floor, PyTorch
and scikit-learn, with a busy neighbour, and two fits in two threads.

Run (full data needed; CI never runs benchmarks), with the BLAS kernel the
processor supports (this project's environment forces an older one)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE SKDIGITS_DATA=../shared/data \\
        python -m pytest benchmarks/bench_engine.py -s

(plain tests that time themselves: no ``--benchmark-only``).

Every side runs in this process with the same thread budget: skdigits'
default (``n_jobs=None``: the cores the process may use), given to BLAS
(NumPy, scikit-learn) through ``threadpool_limits`` and to PyTorch through
``torch.set_num_threads``. The table printed at the end (stderr: pass ``-s``)
starts with the machine line. Timings are reported, never asserted: the
assertions only check that the results are sane.

1. The floor: the two first-layer products of every minibatch of a full-MNIST
   epoch (128x784 @ 784x256 and its transposed weight-gradient product)
   through NumPy's BLAS. The same with one thread.
2. The epoch: a 784-256-10 MLP (batch 128, Adam, float32; the default size
   until issue 23), median of 3 epochs, against the floor (target <= 1.25x),
   PyTorch 2.13 (the same network, Adam, batch 128) and scikit-learn's
   MLPClassifier (one epoch). Fashion-MNIST's epoch too (its pixels have
   fewer zeros to skip). The default size since issue 23, 784-512-10,
   against the floor of its own first layer.
3. A busy neighbour: the same epochs while another process keeps one core
   busy, against the idle epoch (target <= 2x); the floor too.
4. Threads: two 2-epoch fits in two threads against the same fits one after
   the other (target <= 1.3x).
5. Prediction: ``predict_proba`` of 500 000 rows by the MLP and by
   ``SoftmaxRegression``, idle and with a busy neighbour.
"""

import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _bench_data import _data, _have_full_data  # benchmarks/, on sys.path

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._cores import effective_n_threads
from skdigits.benchmark import (
    TorchMLP,
    equal_budget,
    floor_epoch_seconds,
    import_torch,
    machine_line,
    settle,
    sklearn_mlp,
)

BUDGET = effective_n_threads(None)
RESULTS = {}

pytestmark = pytest.mark.skipif(
    not _have_full_data() or not _have_full_data("fashion"),
    reason="full MNIST / Fashion-MNIST not found: set SKDIGITS_DATA")


@pytest.fixture(scope="module")
def mnist():
    data = _data("digits")
    MLPClassifier(max_iter=1).fit(data[0][:512], data[1][:512])  # compile / load
    return data


@pytest.fixture
def busy():
    """Another process keeping one core busy for the test's duration."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _epochs(X, y, n=3, hidden=(256,), **params):
    """Median seconds of an epoch of a ``784-hidden-10`` MLP (the kernel's
    time, from the callback), and the fitted model."""
    times = []
    settle()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=hidden, max_iter=n,
                              learning_rate="constant",
                              learning_rate_init=1e-3, random_state=0,
                              callbacks=lambda est, info: times.append(info["time"]),
                              **params).fit(X, y)
    return float(np.median(times)), model


def test_floor(mnist):
    settle()
    with equal_budget(BUDGET):
        RESULTS["floor"] = floor_epoch_seconds(60000)
    with equal_budget(1):
        RESULTS["floor, 1 thread"] = floor_epoch_seconds(60000)
    assert RESULTS["floor"] > 0


def test_epoch_skdigits(mnist):
    X, y, Xt, yt = mnist
    sec, model = _epochs(X, y)
    RESULTS["skdigits"] = sec
    RESULTS["skdigits, 1 thread"] = _epochs(X, y, n_jobs=1)[0]
    assert model.score(Xt, yt) > 0.95


def test_epoch_default_width(mnist):
    X, y, Xt, yt = mnist
    width = MLPClassifier().hidden_layer_sizes
    settle()
    with equal_budget(BUDGET):
        RESULTS["floor, default width"] = floor_epoch_seconds(60000, hidden=width[0])
    sec, model = _epochs(X, y, hidden=width)
    RESULTS["skdigits, default width"] = sec
    RESULTS["default width"] = f"784-{'-'.join(map(str, width))}-10"
    assert model.score(Xt, yt) > 0.95


def test_epoch_fashion(mnist):
    X, y, Xt, yt = _data("fashion")
    sec, model = _epochs(X, y)
    RESULTS["skdigits, Fashion-MNIST"] = sec
    assert model.score(Xt, yt) > 0.8


def test_epoch_torch(mnist):
    torch, why = import_torch()
    if torch is None:
        RESULTS["torch missing"] = why
        pytest.skip(why)
    X, y, Xt, yt = mnist
    with equal_budget(BUDGET):
        net = TorchMLP(torch, 784, 10, (256,), batch_size=128, learning_rate_init=1e-3)
        Xtr, ytr = net.tensors(X, y)
        net.epoch(Xtr[:512], ytr[:512])  # warm-up
        net = TorchMLP(torch, 784, 10, (256,), batch_size=128, learning_rate_init=1e-3)
        settle()
        RESULTS["PyTorch"] = float(np.median([net.epoch(Xtr, ytr) for _ in range(3)]))
        RESULTS["torch version"] = (f"{torch.__version__}, "
                                    f"{torch.get_num_threads()} threads")
        assert net.accuracy(*net.tensors(Xt, yt)) > 0.95


def test_epoch_sklearn(mnist):
    X, y, Xt, yt = mnist
    model = sklearn_mlp((256,), batch_size=128, learning_rate_init=1e-3, epochs=1)
    with equal_budget(BUDGET), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        settle()
        tic = time.perf_counter()
        model.fit(X, y)
        RESULTS["scikit-learn"] = time.perf_counter() - tic
    assert model.score(Xt, yt) > 0.9


def test_busy_neighbour(mnist, busy):
    X, y, _, _ = mnist
    RESULTS["skdigits, busy neighbour"] = _epochs(X, y)[0]
    settle()
    with equal_budget(BUDGET):
        RESULTS["floor, busy neighbour"] = floor_epoch_seconds(60000)
    with equal_budget(1):
        RESULTS["floor, 1 thread, busy neighbour"] = floor_epoch_seconds(60000)


def _fit(X, y, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tic = time.perf_counter()
        MLPClassifier(max_iter=2, random_state=seed).fit(X, y)
        return time.perf_counter() - tic


def test_two_fits_in_two_threads(mnist):
    X, y, _, _ = mnist
    sequential = []
    threaded = []
    for _ in range(2):  # interleaved, to share the machine's moods
        settle()
        tic = time.perf_counter()
        _fit(X, y, 0)
        _fit(X, y, 1)
        sequential.append(time.perf_counter() - tic)
        settle()
        tic = time.perf_counter()
        with ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda seed: _fit(X, y, seed), [0, 1]))
        threaded.append(time.perf_counter() - tic)
    RESULTS["two fits, one after the other"] = float(np.median(sequential))
    RESULTS["two fits, two threads"] = float(np.median(threaded))


@pytest.fixture(scope="module")
def big():
    X, y, Xt, _ = _data("digits")
    models = {"MLP": MLPClassifier(max_iter=2, random_state=0).fit(X, y),
              "softmax": SoftmaxRegression(random_state=0).fit(X, y)}
    return models, np.tile(Xt, (50, 1))


def _predict_seconds(model, X):
    settle()
    tic = time.perf_counter()
    proba = model.predict_proba(X)
    assert np.isfinite(proba).all()
    return time.perf_counter() - tic


@pytest.mark.parametrize("name", ["MLP", "softmax"])
def test_predict_idle(big, name):
    models, X = big
    RESULTS[f"{name} predict_proba 500k rows"] = _predict_seconds(models[name], X)


@pytest.mark.parametrize("name", ["MLP", "softmax"])
def test_predict_busy(big, busy, name):
    models, X = big
    RESULTS[f"{name} predict_proba 500k rows, busy neighbour"] = _predict_seconds(
        models[name], X)


def teardown_module(module):
    if not RESULTS:
        return
    r = RESULTS

    def row(name, value, ratio="", target=""):
        return f"{name:50} {value:>10} {ratio:>13} {target:>9}"

    def sec(name):
        return f"{r[name]:.3f} s" if name in r else "-"

    def ratio(a, b):
        return f"{r[a] / r[b]:.2f}x" if a in r and b in r else "-"

    lines = ["", machine_line(BUDGET),
             row("MNIST epoch (784-256-10, batch 128, Adam)", "seconds", "ratio",
                 "target"),
             row("floor: first-layer products, BLAS", sec("floor")),
             row("floor, 1 thread", sec("floor, 1 thread")),
             row("skdigits", sec("skdigits"), ratio("skdigits", "floor") + " floor",
                 "<= 1.25x"),
             row("skdigits, 1 thread", sec("skdigits, 1 thread"),
                 ratio("skdigits, 1 thread", "floor, 1 thread") + " floor"),
             row("skdigits, Fashion-MNIST", sec("skdigits, Fashion-MNIST"),
                 ratio("skdigits, Fashion-MNIST", "floor") + " floor"),
             row(f"floor, the default {r.get('default width', '-')}",
                 sec("floor, default width")),
             row(f"skdigits, the default {r.get('default width', '-')}",
                 sec("skdigits, default width"),
                 ratio("skdigits, default width", "floor, default width") + " floor"),
             row(f"PyTorch ({r.get('torch version', r.get('torch missing', '-'))})",
                 sec("PyTorch"), ratio("skdigits", "PyTorch") + " torch"),
             row("scikit-learn MLPClassifier", sec("scikit-learn"),
                 ratio("skdigits", "scikit-learn") + " sklearn"),
             row("skdigits, busy neighbour", sec("skdigits, busy neighbour"),
                 ratio("skdigits, busy neighbour", "skdigits") + " idle", "<= 2x"),
             row("floor, busy neighbour", sec("floor, busy neighbour"),
                 ratio("floor, busy neighbour", "floor") + " idle"),
             row("floor, 1 thread, busy neighbour",
                 sec("floor, 1 thread, busy neighbour")),
             row("two fits, one after the other", sec("two fits, one after the other")),
             row("two fits, two threads", sec("two fits, two threads"),
                 ratio("two fits, two threads", "two fits, one after the other"),
                 "<= 1.3x"),
             *[line for name in ("MLP", "softmax") for line in (
                 row(f"{name} predict_proba 500k rows",
                     sec(f"{name} predict_proba 500k rows")),
                 row(f"{name} predict_proba 500k rows, busy neighbour",
                     sec(f"{name} predict_proba 500k rows, busy neighbour"),
                     ratio(f"{name} predict_proba 500k rows, busy neighbour",
                           f"{name} predict_proba 500k rows") + " idle"))]]
    sys.stderr.write("\n".join(lines) + "\n")
