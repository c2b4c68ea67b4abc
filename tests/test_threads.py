"""How many threads a fit or a prediction uses, and fits running together."""

import threading
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from skdigits import MLPClassifier, SoftmaxRegression, _cores
from skdigits._engine import _team
from skdigits.datasets import load_mnist


@pytest.fixture(scope="module")
def data():
    X, y = load_mnist("digits", "train", sample=True, return_X_y=True)
    return X[:1500] / np.float32(255), y[:1500]


@pytest.fixture
def team_sizes(monkeypatch):
    """The thread count of every kernel call, by calling thread."""
    sizes = {}
    lock = threading.Lock()
    real = _team.Team.run

    def spy(self, n, kernel, *args):
        with lock:
            sizes.setdefault(threading.get_ident(), []).append(n)
        return real(self, n, kernel, *args)

    monkeypatch.setattr(_team.Team, "run", spy)
    monkeypatch.setattr(_cores, "process_cores", lambda: 4)
    # a quiet machine, whatever this one is doing
    monkeypatch.setattr(_cores._CpuMeter, "others", lambda self: 0.0)
    return sizes


def _all(sizes):
    return [n for calls in sizes.values() for n in calls]


def test_a_fit_uses_the_cores_by_default_and_n_jobs_overrides(data, team_sizes,
                                                              monkeypatch):
    X, y = data
    monkeypatch.setattr(_cores, "effective_n_threads",
                        lambda n_jobs: {None: 4, -1: 4}.get(n_jobs, n_jobs))
    MLPClassifier(max_iter=2, random_state=0).fit(X, y)
    assert set(_all(team_sizes)) == {4}  # 4 panels of 64 hidden units
    team_sizes.clear()
    MLPClassifier(max_iter=2, random_state=0, n_jobs=2).fit(X, y)
    assert set(_all(team_sizes)) == {2}
    team_sizes.clear()
    # never more threads than work items: one panel of 16 hidden units
    MLPClassifier(hidden_layer_sizes=(16,), max_iter=2, n_jobs=4).fit(X, y)
    assert set(_all(team_sizes)) == {1}


def test_threadpool_limits_bound_the_default(data, team_sizes):
    X, y = data
    with threadpool_limits(limits=1, user_api="openmp"):
        model = SoftmaxRegression(max_iter=2).fit(X, y)
        model.predict(X)
    assert set(_all(team_sizes)) == {1}


def test_predictions_use_the_threads_and_do_not_depend_on_them(data):
    X, y = data
    model = MLPClassifier(max_iter=2, random_state=0).fit(X, y)
    proba = {n: model.set_params(n_jobs=n).predict_proba(X) for n in (1, 2, 3)}
    np.testing.assert_array_equal(proba[1], proba[2])
    np.testing.assert_array_equal(proba[1], proba[3])


@pytest.mark.parametrize("Est", [MLPClassifier, SoftmaxRegression])
def test_a_prediction_gets_no_more_threads_than_blocks_of_rows(data, team_sizes, Est):
    """A team thread works on blocks of 256 rows, so a prediction of fewer
    rows runs in the calling thread alone (no helper thread started, no
    share of the cores read from /proc), and a larger one gets a thread per
    block at most. The results do not change."""
    from skdigits._engine._models import PREDICT_BLOCK

    X, y = data
    model = Est(max_iter=2, random_state=0, n_jobs=4).fit(X, y)
    whole = model.predict_proba(X)
    team_sizes.clear()
    for n_rows in (1, 3, PREDICT_BLOCK, PREDICT_BLOCK + 1, 3 * PREDICT_BLOCK):
        np.testing.assert_array_equal(model.predict_proba(X[:n_rows]), whole[:n_rows])
    assert _all(team_sizes) == [1, 1, 1, 2, 3]
    # n_jobs=0, set after the fit, is refused whatever the number of rows
    model.set_params(n_jobs=0)
    for n_rows in (1, PREDICT_BLOCK + 1):
        with pytest.raises(ValueError, match="n_jobs == 0"):
            model.predict_proba(X[:n_rows])


def test_a_one_row_prediction_allocates_buffers_for_one_row(data):
    """The per-thread buffers hold a block of at most the rows predicted: a
    one-row prediction of a linear model used to allocate 4 threads' blocks
    of 256 rows of 784 float64 (3.8 MB traced, now 0.1 MB). (The MLP's
    peak is the float64 copies that fold the standardisation into its first
    layer, made at every call.)"""
    import tracemalloc

    X, y = data
    model = SoftmaxRegression(max_iter=2, random_state=0, n_jobs=4).fit(X, y)
    expected = model.predict_proba(X[:5])[:1]
    tracemalloc.start()
    try:
        proba = model.predict_proba(X[:1])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(proba, expected)
    assert peak < 2 * X.shape[1] * model.coef_.shape[0] * 8 + 100_000, peak


def test_fits_running_together_share_the_cores(data, team_sizes):
    X, y = data
    barrier = threading.Barrier(2)

    def fit(seed):
        barrier.wait()  # start together
        return MLPClassifier(max_iter=3, random_state=seed).fit(X, y)

    with ThreadPoolExecutor(2) as ex:
        a, b = ex.map(fit, [0, 1])
    # two fits on 4 cores: two threads each while both run, never more
    per_fit = [calls for calls in team_sizes.values()]
    assert len(per_fit) == 2
    assert all(max(calls) <= 2 for calls in per_fit)
    alone = MLPClassifier(max_iter=3, random_state=1).fit(X, y)
    np.testing.assert_array_equal(b.coefs_[0], alone.coefs_[0])


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_grid_search_in_parallel_gives_the_sequential_results(data, backend):
    X, y = data
    grid = {"alpha": [1e-5, 1e-3], "hidden_layer_sizes": [(32,), (64,)]}
    base = MLPClassifier(max_iter=2, random_state=0)
    seq = GridSearchCV(base, grid, cv=2).fit(X, y)
    with joblib.parallel_config(backend=backend):
        par = GridSearchCV(base, grid, cv=2, n_jobs=2).fit(X, y)
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(par.cv_results_[key], seq.cv_results_[key])


def _threads_in_worker():
    from skdigits._cores import CoreShare, process_cores

    with CoreShare(None) as share:
        return share.wanted, process_cores()


def test_a_loky_worker_takes_its_share_of_the_cores():
    # loky gives each of n_jobs workers cores // n_jobs threads through
    # OMP_NUM_THREADS; a fit in a worker must not take every core.
    # The tests run in pytest's importlib mode, where a worker cannot import
    # this module by name: its function travels by value
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    out = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_threads_in_worker)() for _ in range(2))
    for wanted, cores in out:
        assert wanted == max(1, joblib.cpu_count() // 2)
        assert wanted <= cores
