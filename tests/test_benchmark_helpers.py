"""skdigits.benchmark: the public helpers behind ``skdigits benchmark`` and
the scripts in benchmarks/ (moved out of the CLI and the private _peers)."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdigits import benchmark


def test_format_table_gives_ratios_to_skdigits_row_of_each_group():
    rows = [
        {"group": "mlp", "implementation": "skdigits MLPClassifier", "seconds": 2.0,
         "epochs": 4, "accuracy": 0.9},
        {"group": "mlp", "implementation": "sklearn MLPClassifier", "seconds": 9.0,
         "epochs": 4, "accuracy": 0.91},
        {"group": "softmax", "implementation": "skdigits SoftmaxRegression()",
         "seconds": 0.5, "epochs": 2, "accuracy": 0.8},
        {"group": "softmax", "implementation": "sklearn LogisticRegression()",
         "seconds": 0.25, "epochs": 100, "accuracy": 0.85},
    ]
    lines = benchmark.format_table(rows)
    body = [ln for ln in lines if ln.startswith(("mlp ", "softmax "))]
    # softmax rows first, in the order given, each against its group's skdigits
    assert [ln.split()[-1] for ln in body] == ["1.00x", "0.50x", "1.00x", "4.50x"]
    assert body[3].split()[-3] == "2.250"  # seconds per epoch
    assert "time ratio" in lines[0] and "above 1: skdigits is faster" in lines[-1]


def test_run_benchmark_rows_on_the_sample():
    from skdigits.datasets import load_mnist

    X, y = load_mnist(sample=True, return_X_y=True)
    Xt, yt = load_mnist("digits", "test", sample=True, return_X_y=True)
    X, Xt = X[:600] / 255.0, Xt[:300] / 255.0
    rows = benchmark.run_benchmark(X, y[:600], Xt, yt[:300], models=["mlp"],
                                   epochs=1, hidden=(8,), n_jobs=1)
    impls = [r["implementation"] for r in rows]
    assert impls[:2] == ["skdigits MLPClassifier", "sklearn MLPClassifier"]
    assert all(r["group"] == "mlp" and r["seconds"] > 0 and 0 <= r["accuracy"] <= 1
               for r in rows)
    assert all(r["epochs"] == 1 for r in rows)
    if len(rows) == 2:  # no PyTorch: said, not silently dropped
        assert "PyTorch column skipped" in rows[0]["notes"][0]


def test_machine_line_and_info_name_the_blas_kernel(monkeypatch):
    from skdigits._system import machine_info

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    info = machine_info()
    assert info["cpu"] and info["logical_cores"] >= 1 and info["physical_cores"] >= 1
    assert "OPENBLAS_CORETYPE=Haswell" in info["forced"]
    assert all("kernel" in b for b in info["blas"])
    line = benchmark.machine_line(3)
    assert line.startswith(f"machine: {info['cpu']}, ")
    assert "forced: OPENBLAS_CORETYPE=Haswell" in line
    assert line.endswith("thread budget 3 for every side")


@pytest.mark.parametrize("name", benchmark.__all__)
def test_every_public_name_is_documented(name):
    obj = getattr(benchmark, name)
    assert obj.__doc__ and len(obj.__doc__.strip()) > 20
    assert not np.isscalar(obj)


def test_fit_quietly_keeps_the_console_quiet_for_a_clipped_batch(recwarn):
    """skdigits benchmark --batch-size above the samples printed
    scikit-learn's clipping notice (skdigits clips silently)."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    rng = np.random.default_rng(0)
    X, y = rng.random((20, 3)), np.arange(20) % 2
    model = SkMLP((2,), batch_size=1000, max_iter=1, random_state=0)
    assert benchmark.fit_quietly(model, X, y) > 0
    assert model.n_iter_ == 1
    assert not [w for w in recwarn if "batch_size" in str(w.message)]


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.skipif(not (BENCHMARKS / "bench_compile.py").is_file(),
                    reason="the source tree's benchmarks/ is not beside the tests")
def test_benchmarks_run_in_one_process():
    """setup.cfg's addopts spread the tests over pytest-xdist workers; a
    benchmark spread that way times its sides while another worker runs a
    second benchmark on the other core, and each worker prints half a table.
    The benchmarks' own conftest keeps them in one process."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "-k", "no_benchmark_has_this_name", str(BENCHMARKS / "bench_compile.py")],
        capture_output=True, text=True, cwd=BENCHMARKS.parent, timeout=300,
        env={**os.environ, "PYTEST_XDIST_AUTO_NUM_WORKERS": ""})
    out = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, out
    assert re.search(r"\b[1-9]\d* deselected", out), out  # collected here
    assert "bringing up nodes" not in out, out


@pytest.mark.skipif(not (BENCHMARKS / "bench_sparse.py").is_file(),
                    reason="the source tree's benchmarks/ is not beside the tests")
def test_the_sparse_benchmark_gives_scikit_learn_only_its_own_parameters(
        monkeypatch):
    """bench_sparse's text-like part pins skdigits' label smoothing; passed
    to scikit-learn's MLP too (which has none), the part stopped with a
    TypeError from issue 23 on. Both sides otherwise train alike."""
    import importlib

    from sklearn.neural_network import MLPClassifier as SkMLP

    from skdigits import MLPClassifier

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("bench_sparse")
    SkMLP(**bench.SK_WIDE)._validate_params()
    MLPClassifier(**bench.WIDE)._validate_params()
    shared = set(bench.WIDE) & set(bench.SK_WIDE)
    assert set(bench.WIDE) - shared == {"label_smoothing"}
    assert all(bench.WIDE[k] == bench.SK_WIDE[k] for k in shared - {"n_iter_no_change"})


def _benchmark_module(name):
    """The module ``name`` of benchmarks/ (for tests that cannot take the
    monkeypatch fixture, such as hypothesis tests)."""
    import importlib

    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def _adam_reference(param, grad, m, v, t, lr):
    m[:] = 0.9 * m + 0.1 * grad
    v[:] = 0.999 * v + 0.001 * grad * grad
    param -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)


def _softmax_rows(Z):
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def _floor_epoch_reference(X, y, params, lr, alpha, batch_size):
    """A float64 NumPy epoch of minibatch Adam on a softmax regression
    (``params`` = [W, b]) or a one-hidden-layer ReLU network ([W1, b1, W2,
    b2]); returns the mean loss, the parameters updated in place."""
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    loss, t = 0.0, 0
    for start in range(0, len(X), batch_size):
        Xb, yb = X[start:start + batch_size], y[start:start + batch_size]
        rows = np.arange(len(Xb))
        A = [Xb]
        for W, b in zip(params[::2], params[1::2]):
            Z = A[-1] @ W + b
            A.append(np.maximum(Z, 0) if len(A) < len(params) // 2 else Z)
        P = _softmax_rows(A[-1])
        loss -= np.log(P[rows, yb]).sum()
        P[rows, yb] -= 1
        grads, delta = [], P
        for layer in range(len(params) // 2 - 1, -1, -1):
            W = params[2 * layer]
            grads[:0] = [A[layer].T @ delta / len(Xb) + alpha * W,
                         delta.sum(axis=0) / len(Xb)]
            delta = (delta @ W.T) * (A[layer] > 0)
        t += 1
        for p, g, (m, v) in zip(params, grads, moments):
            _adam_reference(p, g, m, v, t, lr)
    return loss / len(X)


@pytest.mark.skipif(not (BENCHMARKS / "_compile_floor.py").is_file(),
                    reason="the source tree's benchmarks/ is not beside the tests")
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 9), d=st.integers(1, 5), k=st.integers(2, 4),
       batch_size=st.integers(1, 4), mlp=st.booleans(),
       alpha=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 99))
def test_the_compile_floor_kernels_train_as_adam_does(n, d, k, batch_size, mlp,
                                                      alpha, seed):
    """bench_compile's compile floor is only a floor if its kernels do a
    default fit's work: each epoch equals a float64 NumPy epoch of minibatch
    Adam with the L2 penalty (run as Python, so nothing compiles here)."""
    floor = _benchmark_module("_compile_floor")
    rng = np.random.default_rng(seed)
    X = rng.random((n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    if mlp:
        args = list(floor.mlp_args(X, y, k, n_hidden=3, seed=seed))
        args[-1] = batch_size
        epoch, params = floor._mlp_epoch, args[2:6]
    else:
        args = list(floor.softmax_args(X, y, k))
        args[2] = rng.normal(size=args[2].shape).astype(np.float32)
        args[-1] = batch_size
        epoch, params = floor._softmax_epoch, args[2:4]
    args[-2] = alpha
    expected = [p.astype(np.float64) for p in params]
    lr = args[-3]
    expected_loss = _floor_epoch_reference(X.astype(np.float64), y, expected, lr,
                                           alpha, batch_size)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(floor, "_adam", floor._adam.py_func)
        loss, steps = epoch(*args)
    assert steps == -(-n // batch_size)
    assert loss == pytest.approx(expected_loss, rel=1e-5, abs=1e-6)
    for got, want in zip(params, expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not (BENCHMARKS / "bench_compile.py").is_file(),
                    reason="the source tree's benchmarks/ is not beside the tests")
def test_the_compile_benchmark_times_the_fits_after_every_import():
    """bench_compile times a first fit after the imports, as it says; the
    estimators' modules are imported lazily (``skdigits.__getattr__``), so a
    measure naming ``skdigits.MLPClassifier`` inside the timer also timed
    their import (about 0.3 s of each first fit, cold or warm)."""
    bench = _benchmark_module("bench_compile")
    probe = (bench._PRELUDE + "import sys; print(sorted(m for m in sys.modules "
             "if m.startswith('skdigits.')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                         text=True, check=True, timeout=120)
    loaded = set(ast.literal_eval(out.stdout.strip().splitlines()[-1]))
    assert {"skdigits.linear_model._softmax",
            "skdigits.neural_network._multilayer_perceptron"} <= loaded
    for name, (code, _) in bench.MEASURES.items():
        if isinstance(code, str):
            timed = code.split("time.perf_counter()")[1]
            assert "skdigits." not in timed, name
