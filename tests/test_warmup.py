"""Compiling the kernels ahead of time (``skdigits._warmup``, ``skdigits
compile``): which jobs an estimator needs, how they are spread over
processes, waiting for and stopping them, and, in subprocesses with an empty
cache, that a warmed cache leaves a fit and its prediction nothing to
compile. The background compile of a fit's forward pass is covered by
``test_numba_cache.test_a_cold_fit_caches_its_entry_points_only``."""

import logging
import os
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdigits import MLPClassifier, SoftmaxRegression, _warmup
from skdigits._search import search_jobs
from skdigits.cli import main


@pytest.fixture(autouse=True)
def _no_leftovers():
    yield
    for proc in set(_warmup.RUNNING.values()) | _warmup.FINISHING:
        proc.kill()
        proc.wait()
    _warmup.RUNNING.clear()
    _warmup.FINISHING.clear()


def test_jobs_name_the_specialisation_an_estimator_compiles():
    assert _warmup.jobs_for(MLPClassifier()) == ["mlp_epoch-float32-dense",
                                                "mlp_forward-dense"]
    assert _warmup.jobs_for(MLPClassifier(hidden_layer_sizes=(8, 8), dtype="float64"),
                            sparse=True) == ["mlp_epoch_deep-float64-csr",
                                             "mlp_forward-csr"]
    # dtype=None and SoftmaxRegression follow the data
    assert _warmup.jobs_for(MLPClassifier(dtype=None), dtype="float64",
                            predict=False) == ["mlp_epoch-float64-dense"]
    assert _warmup.jobs_for(SoftmaxRegression(), dtype="float32") == [
        "linear_epoch-float32-dense", "linear_forward-dense"]
    assert _warmup.jobs_for(SoftmaxRegression()) == ["linear_epoch-float64-dense",
                                                    "linear_forward-dense"]
    for job in _warmup.JOBS:
        kernel, dtype, kind = _warmup.parse(job)
        assert kernel in _warmup.KERNELS and kind in _warmup.KINDS
        assert (dtype is None) == kernel.endswith("_forward")
    with pytest.raises(ValueError, match="unknown kernel job 'mlp_epoch-int8-dense'"):
        _warmup.parse("mlp_epoch-int8-dense")


def test_a_search_warms_every_candidate_s_kernels_once():
    grid = {"hidden_layer_sizes": [(16,), (16, 16), (32,)], "alpha": [1e-4, 1e-3]}
    assert search_jobs(MLPClassifier(), grid) == [
        "mlp_epoch-float32-dense", "mlp_forward-dense",
        "mlp_epoch_deep-float32-dense"]


@settings(max_examples=150, deadline=None)
@given(jobs=st.lists(st.sampled_from(_warmup.JOBS), min_size=1, unique=True),
       n=st.integers(1, 8))
def test_the_schedule_runs_each_job_once_in_the_order_given(jobs, n):
    lists, loads = _warmup._schedule(jobs, n)
    assert 1 <= len(lists) <= min(n, len(jobs))
    assert sorted(j for part in lists for j in part) == sorted(jobs)
    cost = {j: _warmup.KERNELS[_warmup.parse(j)[0]][1] for j in jobs}
    for part, load in zip(lists, loads):
        assert part and load == pytest.approx(sum(cost[j] for j in part))
        # a process compiles first what its caller needs first
        assert part == [j for j in jobs if j in part]
    # the rule's guarantee: within 4/3 of the best split (found by trying
    # every split when there are few)
    if len(jobs) <= 7 and n <= 3:
        import itertools

        best = min(max(sum(cost[j] for j, p in zip(jobs, split) if p == k)
                       for k in range(n))
                   for split in itertools.product(range(n), repeat=len(jobs)))
        assert max(loads) <= 4 / 3 * best + 1e-9
    assert _warmup.estimate_seconds(jobs, n) == max(loads)


def _fake_jobs(monkeypatch, code):
    """Jobs always cold, run by ``python -c code`` instead of a workload."""
    monkeypatch.setattr(_warmup, "is_cached", lambda job: False)
    monkeypatch.setattr(_warmup, "_command",
                        lambda jobs: [sys.executable, "-c", code, *jobs])


def test_a_failed_compile_names_the_job_and_its_error(monkeypatch):
    _fake_jobs(monkeypatch, "import sys; sys.exit('LLVM ran out of patience')")
    with pytest.raises(RuntimeError, match=r"compiling skdigits' kernels failed: "
                       r"mlp_forward-csr: LLVM ran out of patience"):
        _warmup.warm_up(["mlp_forward-csr"], 2)
    assert not _warmup.RUNNING


def test_warm_up_runs_the_jobs_in_parallel_processes(monkeypatch):
    _fake_jobs(monkeypatch, "import time; time.sleep(1.5)")
    tic = time.perf_counter()
    done = _warmup.warm_up(["mlp_forward-csr", "linear_forward-csr"], 2)
    # two processes of 1.5 s each, side by side (one after the other: 3 s)
    assert time.perf_counter() - tic < 2.8
    assert sorted(done) == ["linear_forward-csr", "mlp_forward-csr"]
    assert not _warmup.RUNNING


def test_settle_waits_for_the_kernel_s_own_jobs_only(monkeypatch):
    _fake_jobs(monkeypatch, "import time; time.sleep(1.0)")
    from skdigits._kernels import _linear, _mlp

    _warmup.start(["mlp_forward-csr"], 1)
    tic = time.perf_counter()
    _warmup.settle(_linear.linear_forward)  # another kernel: no wait
    assert time.perf_counter() - tic < 0.5 and "mlp_forward-csr" in _warmup.RUNNING
    _warmup.settle(_mlp.mlp_forward)
    assert time.perf_counter() - tic >= 0.9 and not _warmup.RUNNING


def test_settle_returns_once_the_kernel_is_cached_not_when_its_process_ends(
        monkeypatch, tmp_path):
    """A forward pass's job goes on to compile the validation loss: the
    prediction waiting for the forward pass does not wait for that too. The
    process is left to end on its own (or be stopped at exit)."""
    marker = tmp_path / "cached"
    _fake_jobs(monkeypatch, f"import pathlib, time; pathlib.Path({str(marker)!r})"
                            ".touch(); time.sleep(60)")
    monkeypatch.setattr(_warmup, "is_cached", lambda job: marker.exists())
    from skdigits._kernels import _mlp

    ((_, proc),) = _warmup.start(["mlp_forward-csr"], 1)
    _warmup.settle(_mlp.mlp_forward)
    assert marker.exists() and not _warmup.RUNNING
    assert proc.poll() is None and proc in _warmup.FINISHING
    proc.kill()
    proc.wait()
    _warmup.settle(_mlp.mlp_forward)  # nothing left to wait for
    _warmup._reap_finished()
    assert not _warmup.FINISHING


def test_stop_ends_the_processes_of_a_caller_that_leaves(monkeypatch):
    _fake_jobs(monkeypatch, "import time; time.sleep(60)")
    started = _warmup.start(["mlp_forward-csr", "linear_forward-csr"], 2)
    procs = [proc for _, proc in started]
    _warmup.stop(started)
    assert all(proc.returncode is not None for proc in procs)
    assert not _warmup.RUNNING


def test_the_background_compile_of_fit_can_be_turned_off(monkeypatch):
    calls = []
    monkeypatch.setattr(_warmup, "_KNOWN", set())
    monkeypatch.setattr(_warmup, "is_cached", lambda job: False)
    monkeypatch.setattr(_warmup, "start",
                        lambda jobs, n, errors=True: calls.append(jobs) or [])
    monkeypatch.setenv("SKDIGITS_COMPILE_AHEAD", "0")
    assert not _warmup.compile_ahead("mlp_forward-csr")
    assert calls == []
    monkeypatch.setattr("skdigits._cores.process_cores", lambda: 1)
    monkeypatch.setenv("SKDIGITS_COMPILE_AHEAD", "1")
    assert not _warmup.compile_ahead("mlp_forward-csr")  # no second core
    monkeypatch.setattr("skdigits._cores.process_cores", lambda: 2)
    _warmup.compile_ahead("mlp_forward-csr")
    assert calls == [["mlp_forward-csr"]]


def test_a_cached_job_is_never_started(monkeypatch):
    # this suite's own kernels: compiled here already
    import numpy as np

    X = np.random.default_rng(0).random((30, 4))
    SoftmaxRegression(max_iter=1).fit(X, np.arange(30) % 3).predict(X)
    assert _warmup.is_cached("linear_epoch-float64-dense")
    assert _warmup.is_cached("linear_forward-dense")
    assert _warmup.cold_jobs(["linear_forward-dense",
                              "linear_epoch-float64-dense"]) == []
    assert not _warmup.compile_ahead("linear_forward-dense")
    assert _warmup.start(["linear_forward-dense"], 2) == []


def test_the_report_says_once_that_it_compiles(monkeypatch, caplog):
    from skdigits import _report

    monkeypatch.setattr(_warmup, "ANNOUNCED", set())
    monkeypatch.setattr(_warmup, "_KNOWN", set())
    monkeypatch.setattr(_warmup, "is_cached", lambda job: False)
    with caplog.at_level(logging.INFO, logger="skdigits"):
        _report._announce_compile()
        _report._announce_compile()  # said once
    assert [r.getMessage() for r in caplog.records] == [
        "Compiling skdigits' kernels for this CPU, once (about 7 s)"]
    # the report's fits then say nothing of their own
    assert _warmup.ANNOUNCED == set(_report.REPORT_JOBS)
    caplog.clear()
    monkeypatch.setattr(_warmup, "ANNOUNCED", set())
    monkeypatch.setattr(_warmup, "is_cached", lambda job: True)
    with caplog.at_level(logging.INFO, logger="skdigits"):
        _report._announce_compile()
    assert caplog.records == []


def test_the_report_compiles_both_forward_passes_in_the_background(monkeypatch):
    """In one process, the softmax's first (the study needs it first), the
    epochs being left to the report's own process; never a job cached or
    already compiling, nor with the background compiles turned off."""
    from skdigits import _report

    popen = []

    class Proc:
        def __init__(self, argv, **kwargs):
            popen.append(argv[4:])  # the jobs (see _warmup._command)

        def poll(self):
            return 0

        kill = wait = poll

    monkeypatch.setattr(_warmup.subprocess, "Popen", Proc)
    monkeypatch.setattr(_warmup, "_caching", lambda: True)
    monkeypatch.setattr(_warmup, "ahead_enabled", lambda: True)
    monkeypatch.setattr(_warmup, "is_cached", lambda job: False)
    _report._compile_forward_ahead()
    assert popen == [["linear_forward-dense", "mlp_forward-dense"]]
    _report._compile_forward_ahead()  # the second dataset: still compiling
    assert len(popen) == 1
    _warmup.RUNNING.clear()
    monkeypatch.setattr(_warmup, "is_cached", lambda job: job.startswith("linear"))
    _report._compile_forward_ahead()
    assert popen[1:] == [["mlp_forward-dense"]]
    _warmup.RUNNING.clear()
    monkeypatch.setattr(_warmup, "is_cached", lambda job: False)
    monkeypatch.setattr(_warmup, "ahead_enabled", lambda: False)
    assert _report._compile_forward_ahead() == [] and len(popen) == 2


def test_compile_without_a_cache_is_a_one_line_error(monkeypatch, capsys):
    from skdigits._kernels import _numba

    monkeypatch.setattr(_numba, "CACHE_KIND", "none")
    monkeypatch.setattr(_numba, "CACHE_PROBLEM", "/home/x is not a folder")
    assert main(["compile"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("skdigits compile: error: no kernel cache to fill: /home/x is "
                   "not a folder (set NUMBA_CACHE_DIR to a folder of your own)")


@pytest.mark.parametrize("argv, jobs", [
    ([], ["mlp_epoch-float32-dense", "mlp_forward-dense", "linear_epoch-float32-dense",
          "linear_epoch-float64-dense", "linear_forward-dense"]),
    (["--models", "mlp", "--dtype", "both", "--deep", "--sparse"],
     ["mlp_epoch-float32-dense", "mlp_epoch-float64-dense",
      "mlp_epoch_deep-float32-dense", "mlp_epoch_deep-float64-dense",
      "mlp_forward-dense", "mlp_epoch-float32-csr", "mlp_epoch-float64-csr",
      "mlp_epoch_deep-float32-csr", "mlp_epoch_deep-float64-csr", "mlp_forward-csr"]),
    (["--models", "softmax", "--dtype", "float64"],
     ["linear_epoch-float64-dense", "linear_forward-dense"]),
    (["--all"], list(_warmup.JOBS)),
])
def test_compile_options_choose_the_jobs(argv, jobs, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(_warmup, "cold_jobs", lambda js: list(js))
    monkeypatch.setattr(_warmup, "warm_up", lambda js, n: seen.append((js, n)) or js)
    assert main(["compile", "--n-jobs", "3", *argv]) == 0
    (ran, n), = seen
    assert ran == jobs and n == min(3, len(jobs))
    out = capsys.readouterr().out
    assert out.startswith(f"compiling {len(jobs)} kernel(s) for this CPU in {n} "
                          "process(es), about ")


def test_compile_fills_an_empty_cache_so_that_nothing_compiles_later(tmp_path):
    """End to end, in subprocesses: ``skdigits compile`` for the softmax in
    float64 (two processes), then a fresh process fits (with early stopping:
    the forward pass's job also compiles the validation loss) and predicts
    and compiles nothing; a second ``skdigits compile`` finds nothing to
    do."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    run = dict(env=env, capture_output=True, text=True, timeout=600)
    argv = [sys.executable, "-m", "skdigits", "compile", "--models", "softmax",
            "--dtype", "float64", "--n-jobs", "2"]
    first = subprocess.run(argv, **run)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("compiling 2 kernel(s) for this CPU in 2 "
                                   "process(es)"), first.stdout
    code = ("import numpy as np, skdigits\n"
            "from skdigits._kernels import _signatures\n"
            "rng = np.random.default_rng(1)\n"
            "X = rng.random((200, 30)); y = np.arange(200) % 4\n"
            "m = skdigits.SoftmaxRegression(max_iter=3, random_state=0,\n"
            "                              early_stopping=True).fit(X, y)\n"
            "m.predict_proba(X)\n"
            "ds = _signatures.dispatchers().values()\n"
            "print(sum(sum(d.stats.cache_hits.values()) for d in ds),\n"
            "      sum(sum(d.stats.cache_misses.values()) for d in ds))\n")
    fit = subprocess.run([sys.executable, "-W", "ignore", "-c", code], **run)
    assert fit.returncode == 0, fit.stderr
    hits, misses = map(int, fit.stdout.split())
    assert misses == 0 and hits >= 2
    again = subprocess.run(argv, **run)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("nothing to compile"), again.stdout


def test_a_cold_fit_says_once_that_it_compiles(monkeypatch, caplog):
    """The library's first-run line (INFO, which the CLI shows): once per
    kernel and process, and never for a cached kernel."""
    import numpy as np

    X = np.random.default_rng(0).random((40, 5))
    y = np.arange(40) % 2
    monkeypatch.setattr(_warmup, "ANNOUNCED", set())
    monkeypatch.setattr(_warmup, "_KNOWN", set())
    monkeypatch.setattr(_warmup, "compile_ahead", lambda job: False)
    monkeypatch.setattr(_warmup, "is_cached", lambda job: job.startswith("linear"))
    with caplog.at_level(logging.INFO, logger="skdigits"):
        SoftmaxRegression(max_iter=1).fit(X, y)  # cached: nothing said
        MLPClassifier(max_iter=1, hidden_layer_sizes=(4,)).fit(X, y)
        MLPClassifier(max_iter=1, hidden_layer_sizes=(4,)).fit(X, y)
        MLPClassifier(max_iter=1, hidden_layer_sizes=(4, 4), dtype="float64").fit(X, y)
    said = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
    assert said == [f"Compiling skdigits' kernels for this CPU, once (about {s} s)"
                    for s in (6, 7)]  # the shallow epoch's, then the deep one's
    assert _warmup.ANNOUNCED == {"mlp_epoch-float32-dense",
                                 "mlp_epoch_deep-float64-dense"}
