"""Predicting 10,000 MNIST test images: skdigits against onnxruntime running
the graph of :func:`skdigits.io.to_onnx`.

Run (full MNIST needed; CI never runs benchmarks), with the BLAS kernel the
processor supports (this project's environment forces an older one)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE SKDIGITS_DATA=../shared/data \\
        PYTHONPATH=benchmarks python -m pytest benchmarks/bench_onnx.py -s

(plain tests that time themselves; needs ``pip install ".[tests]"`` for
onnx, skl2onnx and onnxruntime). The models: the default MLPClassifier
(784-256-10, float32, standardised) and the default SoftmaxRegression, fitted
for 2 epochs on the full training set (the timing does not depend on how long
they trained). Every side predicts the same float32 rows (pixels / 255) in
this process with the same thread budget: skdigits' default (``n_jobs=None``)
as onnxruntime's ``intra_op_num_threads``. Each figure is the median of 7
runs after a warm-up. Two graphs: float64 arithmetic (the default, as
skdigits computes) and float32 arithmetic (``float64=False``); and, for
reference, one row at a time (the latency a web service sees, median over
200 calls). The table printed at the end (stderr: pass ``-s``) starts with
the machine line; its last column is how many CPUs other processes kept busy
during each timing (``*``: busy enough to slow it, as in ``skdigits
benchmark``). Timings are reported, never asserted; the tests assert only
that the graphs agree with ``predict``.
"""

import statistics
import sys
import time

import numpy as np
import pytest
from _bench_data import _data, _have_full_data  # benchmarks/, on sys.path under pytest

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._cores import effective_n_threads
from skdigits.benchmark import _Load, machine_line, settle

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

RESULTS = {}
BUDGET = effective_n_threads(None)
LOAD = _Load(BUDGET)  # the CPUs other processes keep busy, as skdigits benchmark
ROWS = 10_000
REPEATS = 7

pytestmark = pytest.mark.skipif(
    not _have_full_data(),
    reason="full MNIST not found: set SKDIGITS_DATA (e.g. ../shared/data)")

MODELS = {
    "MLPClassifier()": lambda: MLPClassifier(max_iter=2, random_state=0),
    "SoftmaxRegression()": lambda: SoftmaxRegression(max_iter=2, random_state=0),
}


def _median_seconds(fn, repeats=REPEATS):
    """``(median seconds, CPUs other processes kept busy meanwhile)``."""
    fn()  # warm-up: compiled kernels, onnxruntime's first run
    settle()
    LOAD.read()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times), LOAD.read()


def _session(model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = BUDGET
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def mnist():
    X, y, Xt, yt = _data("digits")
    return X, y, Xt[:ROWS]


@pytest.mark.parametrize("name", list(MODELS))
def test_predict_10000_rows(mnist, name):
    from skdigits.io import to_onnx

    X, y, Xt = mnist
    est = MODELS[name]().fit(X, y)
    expected = est.predict(Xt)
    RESULTS[(name, "skdigits predict")] = _median_seconds(lambda: est.predict(Xt))
    RESULTS[(name, "skdigits predict_proba")] = _median_seconds(
        lambda: est.predict_proba(Xt))
    for what, float64 in (("float64", True), ("float32", False)):
        sess = _session(to_onnx(est, Xt[:1], float64=float64))
        labels, proba = sess.run(None, {"X": Xt})
        assert np.mean(labels == expected) > 0.999
        assert np.abs(proba - est.predict_proba(Xt)).max() < 1e-5
        RESULTS[(name, f"onnxruntime, {what} arithmetic")] = _median_seconds(
            lambda s=sess: s.run(None, {"X": Xt}))
    # one row per call, as a service answering one request at a time
    sess = _session(to_onnx(est, Xt[:1]))
    one = Xt[:1]
    RESULTS[(name, "skdigits predict, 1 row")] = _median_seconds(
        lambda: est.predict(one), repeats=200)
    RESULTS[(name, "onnxruntime float64, 1 row")] = _median_seconds(
        lambda: sess.run(None, {"X": one}), repeats=200)


def teardown_module(module):
    if not RESULTS:
        return
    lines = ["", machine_line(BUDGET),
             f"{ROWS:,} MNIST test rows (float32 pixels / 255) unless '1 row'; "
             f"onnxruntime {ort.__version__}, median of {REPEATS} runs (1 row: 200)",
             f"{'model':20} {'what':34} {'ms':>9} {'vs skdigits':>12} "
             f"{'others busy':>11}"]
    marked = False
    for (name, what), (sec, others) in RESULTS.items():
        ref_key = "skdigits predict, 1 row" if what.endswith("1 row") else \
            "skdigits predict"
        ref = RESULTS.get((name, ref_key))
        ratio = f"{sec / ref[0]:11.2f}x" if ref else ""
        star = "*" if LOAD.busy(others) else " "
        marked |= star == "*"
        lines.append(f"{name:20} {what:34} {sec * 1e3:9.3f} {ratio:>12} "
                     f"{others:10.2f}{star}")
    if marked:
        lines.append("* taken while other processes kept CPUs the thread budget "
                     "needs busy: rerun on a quiet machine")
    sys.stderr.write("\n".join(lines) + "\n")
