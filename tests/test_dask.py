"""Grid searches on a dask.distributed cluster (joblib's dask backend and
``skdigits search --scheduler``): the scores of a local run, and each
worker's fits on that worker's threads."""

import argparse
import json
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

distributed = pytest.importorskip("distributed")

# dashboard_address=None turns the dashboard off, but the scheduler's HTTP
# server still asks for port 8787 first: a second cluster warns that it is taken
pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use")

# The tests run in pytest's importlib mode (against the installed package),
# where a worker cannot import this module by name, and dask pickles a task's
# function by reference: the functions run in the workers travel by value.
import cloudpickle  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _ByValue:
    """``func``, pickled by value: unpickled, it is ``func`` itself."""

    def __init__(self, func):
        self.func = func
        self.__name__ = func.__name__

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)

    def __reduce__(self):
        return cloudpickle.loads, (cloudpickle.dumps(self.func),)


from skdigits import MLPClassifier  # noqa: E402
from skdigits.cli import add_search_parser as add_parser  # noqa: E402
from skdigits.datasets import load_mnist  # noqa: E402

GRID = {"alpha": [1e-5, 1e-2], "hidden_layer_sizes": [(8,), (16,)]}
SCORES = ("mean_test_score", "std_test_score", "rank_test_score",
          "split0_test_score", "split1_test_score")


def _cluster(threads_per_worker, n_workers):
    return distributed.LocalCluster(
        n_workers=n_workers, processes=True, threads_per_worker=threads_per_worker,
        dashboard_address=None)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each, no dashboard."""
    with _cluster(1, 2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    X, y = load_mnist(sample=True, return_X_y=True)
    Xt, yt = load_mnist(subset="test", sample=True, return_X_y=True)
    return X.astype(np.float32) / 255, y, Xt.astype(np.float32) / 255, yt


@pytest.fixture(scope="module")
def local_search(data):
    X, y, _, _ = data
    return GridSearchCV(MLPClassifier(max_iter=3, random_state=0), GRID,
                        cv=2).fit(X, y)


def test_a_search_on_the_cluster_gives_the_local_scores(client, data, local_search):
    X, y, _, _ = data
    with distributed.get_task_stream(client) as tasks, \
            joblib.parallel_config(backend="dask"):
        remote = GridSearchCV(MLPClassifier(max_iter=3, random_state=0), GRID,
                              cv=2, n_jobs=-1).fit(X, y)
    assert tasks.data, "no task ran on the cluster"
    assert {t["worker"] for t in tasks.data} <= set(client.nthreads())
    for key in SCORES:
        np.testing.assert_array_equal(remote.cv_results_[key],
                                      local_search.cv_results_[key], err_msg=key)
    assert remote.best_params_ == local_search.best_params_
    np.testing.assert_array_equal(remote.best_estimator_.coefs_[0],
                                  local_search.best_estimator_.coefs_[0])


# ---------------------------------------------------------------- threads


def _thread_counts():
    """What a fit's threads resolve to where this runs."""
    from skdigits._cores import CoreShare, effective_n_threads, process_cores

    with CoreShare(-1) as one:
        alone = one.threads()
        with CoreShare(-1) as two:
            together = (one.threads(), two.threads())
    return {"none": effective_n_threads(None), "all": effective_n_threads(-1),
            "cores": process_cores(), "alone": alone, "together": together}


def _expected(threads):
    cores = min(threads, joblib.cpu_count(only_physical_cores=True))
    return {"none": threads, "all": threads, "cores": cores, "alone": cores,
            "together": (max(1, cores // 2),) * 2}


def _team_sizes_of_a_fit():
    """The thread count of every kernel call of a real fit (n_jobs=None) on a
    quiet machine, measured inside the worker."""
    from skdigits import _cores
    from skdigits._engine import _team

    X, y = load_mnist(sample=True, return_X_y=True)
    sizes, run, others = [], _team.Team.run, _cores._CpuMeter.others

    def spy(self, n, kernel, *args):
        sizes.append(n)
        return run(self, n, kernel, *args)

    _team.Team.run, _cores._CpuMeter.others = spy, lambda self: 0.0
    try:
        MLPClassifier(max_iter=1, random_state=0).fit(X[:1500] / 255.0, y[:1500])
    finally:
        _team.Team.run, _cores._CpuMeter.others = run, others
    return sorted(set(sizes))


def test_one_thread_workers_run_their_fits_on_one_thread(client):
    # the nanny's OMP_NUM_THREADS=1 gave this before, but the cores a fit may
    # share were the machine's
    assert client.submit(_ByValue(_thread_counts), pure=False).result() == _expected(1)
    for counts in client.run(_ByValue(_thread_counts)).values():
        assert counts == _expected(1)


def test_a_two_thread_worker_gives_its_fits_both_threads():
    # the nanny sets OMP_NUM_THREADS=1 whatever the worker's threads: a fit
    # with n_jobs=None took one thread of the two
    with _cluster(2, 1) as cluster, distributed.Client(cluster) as client:
        in_task = client.submit(_ByValue(_thread_counts), pure=False).result()
        in_run = list(client.run(_ByValue(_thread_counts)).values())
        sizes = client.submit(_ByValue(_team_sizes_of_a_fit), pure=False).result()
    assert in_task == _expected(2)
    assert in_run == [_expected(2)]  # Client.run: outside a task, same worker
    assert sizes == [_expected(2)["alone"]]


def test_outside_a_worker_nothing_changes_and_distributed_is_not_imported():
    code = ("import sys\n"
            "from sklearn.utils._openmp_helpers import _openmp_effective_n_threads\n"
            "from skdigits._cores import effective_n_threads, process_cores\n"
            "assert effective_n_threads(None) == "
            "max(1, _openmp_effective_n_threads())\n"
            "process_cores()\n"
            "assert 'distributed' not in sys.modules, 'distributed imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    # here distributed is imported, but no task runs in this thread
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    from skdigits._cores import effective_n_threads

    assert effective_n_threads(None) == max(1, _openmp_effective_n_threads())


# ---------------------------------------------------------------- the command


def run_search(argv):
    parser = argparse.ArgumentParser(prog="skdigits")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["search", *argv])
    return args.func(args)


ARGV = ["--sample", "--model", "mlp", "--grid", "alpha=1e-5,1e-2",
        "--grid", "hidden_layer_sizes=8,16", "--max-iter", "3", "--cv", "2", "-q"]


def test_search_command_on_the_cluster(cluster, data, local_search, tmp_path, capsys):
    _, _, Xt, yt = data
    out = tmp_path / "out"
    assert run_search([*ARGV, "--scheduler", cluster.scheduler_address,
                       "--out", str(out)]) == 0
    assert "2 workers, 2 threads" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["where"] == {"backend": "dask", "workers": 2, "threads": 2,
                                "scheduler": cluster.scheduler_address}
    for key in SCORES:
        assert results["cv_results"][key] == local_search.cv_results_[key].tolist()
    assert results["test_accuracy"] == local_search.score(Xt, yt)


def test_unreachable_scheduler_is_one_line(tmp_path, monkeypatch):
    from skdigits import _search

    monkeypatch.setattr(_search, "CONNECT_TIMEOUT", 1)
    with pytest.raises(OSError, match="cannot reach the dask scheduler at "
                                      "tcp://127.0.0.1:9") as exc:
        run_search([*ARGV, "--scheduler", "tcp://127.0.0.1:9",
                    "--out", str(tmp_path / "out")])
    assert "\n" not in str(exc.value)


def test_workers_running_another_skdigits_are_refused(cluster, tmp_path, monkeypatch):
    import skdigits

    monkeypatch.setattr(skdigits, "__version__", "0.0.0-elsewhere")
    with pytest.raises(ValueError, match="run skdigits .*this machine "
                                         "0.0.0-elsewhere"):
        run_search([*ARGV, "--scheduler", cluster.scheduler_address,
                    "--out", str(tmp_path / "out")])


def test_the_search_backend_warms_each_worker_while_the_data_travels(monkeypatch):
    """``search_backend(..., jobs=...)`` has every worker start compiling the
    kernels of the search in background processes and return at once. An
    in-process worker (``processes=False``) shares this process's
    ``_warmup``, so the processes it started show here; the jobs are faked
    (always cold, a short sleep) so that nothing is compiled."""
    import sys
    import time

    from skdigits import _warmup
    from skdigits._search import search_backend

    monkeypatch.setattr(_warmup, "is_cached", lambda job: False)
    monkeypatch.setattr(_warmup, "_command", lambda jobs: [
        sys.executable, "-c", "import time; time.sleep(1.0)"])
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        with search_backend(cluster.scheduler_address,
                            jobs=["mlp_forward-csr"]) as (_, where):
            deadline = time.monotonic() + 30
            while "mlp_forward-csr" not in _warmup.RUNNING:
                assert time.monotonic() < deadline, "no worker started a warm-up"
                time.sleep(0.05)
            assert where["workers"] == 1
            tic = time.monotonic()
            _warmup.settle(__import__("skdigits._kernels._mlp").
                           _kernels._mlp.mlp_forward)
            assert time.monotonic() - tic < 5
    assert "mlp_forward-csr" not in _warmup.RUNNING
