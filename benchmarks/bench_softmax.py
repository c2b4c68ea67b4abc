"""SoftmaxRegression against scikit-learn's LogisticRegression, side by side.

Run (full data needed; CI never runs benchmarks), with the BLAS kernel the
processor supports (this project's environment forces an older one)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE SKDIGITS_DATA=../shared/data \
        python -m pytest benchmarks/bench_softmax.py --benchmark-only -s

Both sides fit the same float32 data (pixels / 255) in the same process with
the same thread budget (skdigits' default, given to scikit-learn's BLAS
through ``threadpool_limits``); the printed table starts with the machine
line and gives fit times, test accuracies and the time ratio (target: at most
1/100 of ``LogisticRegression()``'s time, with test accuracy >= 0.925 on
MNIST). The JIT
compile is excluded from the skdigits timing (a warm-up fit on a few rows runs
first) and reported on its own, together with the cold-start time of a fresh
process (import + first fit on the bundled sample) with the Numba cache cold
and warm.
"""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from _bench_data import _data, _have_full_data  # benchmarks/, on sys.path under pytest

from skdigits import SoftmaxRegression
from skdigits._cores import effective_n_threads
from skdigits.benchmark import equal_budget, machine_line, settle

RESULTS = {}
BUDGET = effective_n_threads(None)


pytestmark = pytest.mark.skipif(
    not _have_full_data(),
    reason="full MNIST not found: set SKDIGITS_DATA (e.g. ../shared/data)")


@pytest.fixture(scope="module", params=["digits", "fashion"])
def dataset(request):
    return request.param, _data(request.param)


def _fit_sklearn(X, y):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    settle()
    with warnings.catch_warnings(), equal_budget(BUDGET):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression().fit(X, y)


def test_fit_sklearn_logistic_regression(benchmark, dataset):
    kind, (X, y, Xt, yt) = dataset
    model = benchmark.pedantic(_fit_sklearn, args=(X, y), rounds=1, iterations=1)
    RESULTS[(kind, "sklearn LogisticRegression()")] = (
        benchmark.stats.stats.median, model.score(Xt, yt))


def test_fit_skdigits_softmax_regression(benchmark, dataset):
    kind, (X, y, Xt, yt) = dataset
    tic = time.perf_counter()
    SoftmaxRegression(max_iter=1).fit(X[:512], y[:512])  # compile or load cache
    RESULTS[(kind, "compile/load")] = (time.perf_counter() - tic, np.nan)
    settle()
    model = benchmark.pedantic(
        lambda: SoftmaxRegression(random_state=0).fit(X, y), rounds=5,
        iterations=1)
    RESULTS[(kind, "skdigits SoftmaxRegression()")] = (
        benchmark.stats.stats.median, model.score(Xt, yt))


_COLD_START = (
    "import time; t = time.perf_counter(); import skdigits; "
    "from skdigits.datasets import load_mnist; "
    "X, y = load_mnist(sample=True, return_X_y=True); "
    "skdigits.SoftmaxRegression(random_state=0).fit(X / 255.0, y); "
    "print(time.perf_counter() - t)"
)


def _cold_start_seconds(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _COLD_START], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def test_cold_start(benchmark):
    with tempfile.TemporaryDirectory() as cache:
        cold = _cold_start_seconds(cache)
        warm = benchmark.pedantic(_cold_start_seconds, args=(cache,), rounds=3,
                                  iterations=1)
        warm = benchmark.stats.stats.median
    RESULTS[("sample", "cold start, empty Numba cache")] = (cold, np.nan)
    RESULTS[("sample", "cold start, warm Numba cache")] = (warm, np.nan)


def teardown_module(module):
    if not RESULTS:
        return
    lines = ["", machine_line(BUDGET),
             f"{'dataset':8} {'what':34} {'seconds':>8} {'test acc':>9} {'ratio':>7}"]
    for (kind, what), (sec, acc) in sorted(RESULTS.items()):
        ref = RESULTS.get((kind, "sklearn LogisticRegression()"))
        ratio = (f"{sec / ref[0]:7.3f}" if ref and what.startswith("skdigits")
                 else "")
        acc_s = "" if np.isnan(acc) else f"{acc:9.4f}"
        lines.append(f"{kind:8} {what:34} {sec:8.3f} {acc_s:>9} {ratio:>7}")
    sys.stderr.write("\n".join(lines) + "\n")
