"""Same data, parameters and random_state: the same bits, wherever and however
the fit runs. One test per case: another process, a worker thread, another
number of threads or cores, a busy machine, ``threadpool_limits``.

Each compares a digest of everything a fit produces: the weights, every curve,
and the predicted probabilities.
"""

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits.datasets import load_mnist

CONFIGS = {
    "mlp": "MLPClassifier(max_iter=2, random_state=0)",
    "mlp deep early stopping": "MLPClassifier(hidden_layer_sizes=(200, 70), "
                               "early_stopping=True, max_iter=2, random_state=1)",
    "softmax": "SoftmaxRegression(max_iter=3, random_state=0)",
    "softmax ovr float64": "SoftmaxRegression(multi_class='ovr', max_iter=2, "
                           "random_state=0)",
}


def _data():
    X, y = load_mnist("fashion", "train", sample=True, return_X_y=True)
    Xt = load_mnist("fashion", "test", sample=True, return_X_y=True)[0]
    return X / np.float32(255), y, Xt / 255.0


def digest(model, Xt):
    """Hash of every array a fit produces."""
    h = hashlib.sha256()
    weights = model.coefs_ + model.intercepts_ if hasattr(model, "coefs_") else \
        [model.coef_, model.intercept_]
    for a in [*weights, model.loss_curve_, model.accuracy_curve_,
              model.loss_curve_per_class_, model.predict_proba(Xt)]:
        h.update(np.ascontiguousarray(np.asarray(a)).tobytes())
    for name in ("validation_scores_", "validation_loss_curve_per_class_"):
        if getattr(model, name, None) is not None:
            h.update(np.asarray(getattr(model, name)).tobytes())
    return h.hexdigest()


def fit_digest(config, **params):
    X, y, Xt = _data()
    if "ovr" in config:
        X = X.astype(np.float64)
    model = eval(config, {"MLPClassifier": MLPClassifier,
                          "SoftmaxRegression": SoftmaxRegression})
    return digest(model.set_params(**params).fit(X, y), Xt)


@pytest.fixture(scope="module")
def reference():
    """Each configuration fitted here, in the main thread, with defaults."""
    return {name: fit_digest(config) for name, config in CONFIGS.items()}


_CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {tests!r})
    from test_determinism import CONFIGS, fit_digest
    if {pin}:
        os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})
    for name, config in CONFIGS.items():
        print(name, "=", fit_digest(config))
""")


def _run_child(pin=False, **env):
    code = _CHILD.format(tests=os.path.dirname(__file__), pin=pin)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=600, check=True)
    return dict(line.split(" = ") for line in out.stdout.strip().splitlines())


def test_another_process_gives_the_same_bits(reference):
    assert _run_child() == reference


def test_one_core_gives_the_same_bits(reference):
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    assert _run_child(pin=True) == reference


def test_omp_num_threads_gives_the_same_bits(reference):
    # how loky and dask's nanny limit a worker
    assert _run_child(OMP_NUM_THREADS="1") == reference


@pytest.mark.parametrize("name", CONFIGS)
def test_a_worker_thread_gives_the_same_bits(name, reference):
    with ThreadPoolExecutor(1) as ex:
        assert ex.submit(fit_digest, CONFIGS[name]).result() == reference[name]


@pytest.mark.parametrize("n_jobs", [1, 2, 3, -1])
@pytest.mark.parametrize("name", CONFIGS)
def test_any_number_of_threads_gives_the_same_bits(name, n_jobs, reference):
    assert fit_digest(CONFIGS[name], n_jobs=n_jobs) == reference[name]


@pytest.mark.parametrize("name", CONFIGS)
def test_threadpool_limits_give_the_same_bits(name, reference):
    with threadpool_limits(1):
        assert fit_digest(CONFIGS[name]) == reference[name]


def test_concurrent_fits_give_the_same_bits(reference):
    names = list(CONFIGS) * 2
    with ThreadPoolExecutor(len(names)) as ex:
        results = list(ex.map(lambda n: fit_digest(CONFIGS[n]), names))
    assert results == [reference[n] for n in names]


def test_a_busy_machine_gives_the_same_bits(reference):
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        for name, config in CONFIGS.items():
            assert fit_digest(config) == reference[name]
    finally:
        for p in busy:
            p.kill()


@pytest.mark.full_data
def test_full_mnist_fits_agree_in_every_setting(data_home):
    """The reported case: ``MLPClassifier(max_iter=2, random_state=0)`` on the
    60 000 MNIST images, in the main thread, a worker thread, under
    ``threadpool_limits(1)`` and with one or two threads."""
    X, y = load_mnist("digits", "train", data_home=data_home, return_X_y=True)
    X = X / np.float32(255)
    Xt = X[:2000]

    def run(**params):
        return digest(MLPClassifier(max_iter=2, random_state=0, **params).fit(X, y),
                      Xt)

    first = run()
    with ThreadPoolExecutor(1) as ex:
        assert ex.submit(run).result() == first
    with threadpool_limits(1):
        assert run() == first
    assert run(n_jobs=1) == first
    assert run(n_jobs=2) == first
