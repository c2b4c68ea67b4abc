"""The BLAS-thread tuner: same results whatever it picks, and it picks the
setting that measured faster."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

import skdigits._threads as threads
from skdigits import MLPClassifier, SoftmaxRegression


@pytest.mark.parametrize("cls", [MLPClassifier, SoftmaxRegression])
def test_chunked_epochs_train_exactly_like_one_call(cls, monkeypatch):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    params = dict(batch_size=16, max_iter=3, random_state=0)
    whole = cls(**params).fit(X, y)
    # tune from 4 minibatches on, in chunks of 5 and probes of 2: 113
    # minibatches per epoch become many calls under both settings
    monkeypatch.setattr(threads, "MIN_BATCHES_TO_TUNE", 4)
    monkeypatch.setattr(threads, "CHUNK_BATCHES", 5)
    monkeypatch.setattr(threads, "PROBE_BATCHES", 2)
    monkeypatch.setattr(threads, "EXPLORE_EVERY", 3)
    tuners = []
    monkeypatch.setattr(threads.BlasTuner, "__init__", lambda self: (
        tuners.append(self), setattr(self, "cost", {threads.SINGLE: None,
                                                    threads.DEFAULT: None}),
        setattr(self, "chunks_since_explore", 0))[0] and None)
    chunked = cls(**params).fit(X, y)
    np.testing.assert_allclose(chunked.loss_curve_, whole.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(chunked.predict_proba(X), whole.predict_proba(X),
                               rtol=1e-10, atol=1e-12)
    assert chunked.t_ == whole.t_
    assert all(t.cost[threads.SINGLE] is not None for t in tuners)
    assert all(t.cost[threads.DEFAULT] is not None for t in tuners)


def _fake_epoch(monkeypatch, cost_of):
    """Run one tuned epoch of 1000 minibatches with a fake clock where a
    minibatch costs ``cost_of[setting]`` seconds; returns the settings used,
    with the number of minibatches each chunk held."""
    clock = [0.0]
    used = []
    current = [None]

    class Limit:
        def __init__(self, setting):
            self.setting = setting

        def __enter__(self):
            current[0] = self.setting

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(threads, "blas_limit", Limit)
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock[0])

    def run_chunk(start, stop, lr_a, lr_b):
        n = (stop - start) // 10
        used.append((current[0], n, lr_a, lr_b))
        clock[0] += n * cost_of[current[0]]

    tuner = threads.BlasTuner()
    tuner.run_epoch(run_chunk, 10_000, 10, 1.0, 0.0)
    return tuner, used


@pytest.mark.parametrize("fast", [threads.SINGLE, threads.DEFAULT])
def test_tuner_spends_the_epoch_on_the_faster_setting(monkeypatch, fast):
    slow = threads.DEFAULT if fast == threads.SINGLE else threads.SINGLE
    tuner, used = _fake_epoch(monkeypatch, {fast: 1.0, slow: 20.0})
    batches = {threads.SINGLE: 0, threads.DEFAULT: 0}
    for setting, n, _, _ in used:
        batches[setting] += n
    assert sum(batches.values()) == 1000
    # the slow setting only gets its short probes
    assert batches[slow] <= 0.1 * 1000
    assert tuner.cost[fast] < tuner.cost[slow]
    # the chunks tile the epoch and the learning rate runs 1 -> 0 across them
    assert used[0][2] == 1.0 and used[-1][3] == 0.0
    for (_, n, a, b), (_, _, a2, _) in zip(used, used[1:]):
        assert b == pytest.approx(a2)


def test_small_epochs_run_in_one_single_threaded_call(monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "blas_limit",
                        lambda s: calls.append(s) or __import__("contextlib").nullcontext())
    threads.BlasTuner().run_epoch(lambda *a: calls.append(a), 100, 10, 0.1, 0.1)
    assert calls == [threads.SINGLE, (0, 100, 0.1, 0.1)]


def test_env_var_fixes_the_thread_count(monkeypatch):
    seen = []
    monkeypatch.setattr(threads, "blas_limit",
                        lambda s: seen.append(s) or __import__("contextlib").nullcontext())
    monkeypatch.setenv("SKDIGITS_BLAS_THREADS", "2")
    threads.BlasTuner().run_epoch(lambda *a: seen.append(a), 100_000, 10, 0.1, 0.0)
    assert seen == [2, (0, 100_000, 0.1, 0.0)]  # one call, no tuning
    monkeypatch.setenv("SKDIGITS_BLAS_THREADS", "many")
    with pytest.raises(ValueError, match="SKDIGITS_BLAS_THREADS"):
        threads.BlasTuner().run_epoch(lambda *a: None, 100, 10, 0.1, 0.0)


def test_concurrent_fits_leave_the_blas_threads_as_they_were(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info, threadpool_limits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    monkeypatch.setattr(threads, "MIN_BATCHES_TO_TUNE", 4)
    monkeypatch.setattr(threads, "CHUNK_BATCHES", 3)
    monkeypatch.setattr(threads, "PROBE_BATCHES", 1)

    def blas():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    with threadpool_limits(2, "blas"):
        before = blas()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda s: MLPClassifier(hidden_layer_sizes=(16,), batch_size=8,
                                                  max_iter=3, random_state=s).fit(X, y),
                          range(8)))
        assert blas() == before
