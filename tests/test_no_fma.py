"""Kernels compiled for a CPU without fused multiply-add.

``NUMBA_CPU_NAME=generic`` (x86-64's baseline: SSE2, no FMA) stands for an
old CPU or a VM that hides FMA. There ``skdigits._kernels._simd`` makes each
step of a product a multiply then an add instead of a call to libm's ``fma``
per element, and warns once at import. The results must still be the same
bits for any thread count and agree with a float64 forward pass.

One subprocess (a fresh Numba cache, so it compiles for ``generic``) fits and
predicts; the tests read its report.
"""

import json
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba.core import config

from skdigits._kernels import _simd

_CHILD = textwrap.dedent("""
    import json

    import numpy as np
    from numba import njit

    from skdigits import MLPClassifier
    from skdigits._kernels import _simd

    rng = np.random.default_rng(0)
    X = rng.random((200, 30), dtype=np.float32)
    X[X < 0.3] = 0  # zeros for the kernels to skip
    y = rng.integers(0, 3, 200)

    def fit(n_jobs):
        return MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0,
                             n_jobs=n_jobs).fit(X, y)

    one, two = fit(1), fit(2)

    @njit
    def scalar_fma(a, b, c):
        return _simd.fma(a, b, c)

    scalar_fma(np.float32(1), np.float32(2), np.float32(3))
    asm = "".join(scalar_fma.inspect_asm().values())
    print(json.dumps({
        "cpu_name": getattr(_simd, "CPU_NAME", None),
        "has_fma": bool(getattr(_simd, "HAS_FMA", True)),
        "same_bits": all(a.tobytes() == b.tobytes() for a, b in zip(
            one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_)),
        "coefs": [w.tolist() for w in one.coefs_],
        "intercepts": [b.tolist() for b in one.intercepts_],
        "proba": one.predict_proba(X).tolist(),
        "dtype": str(one.coefs_[0].dtype),
        "calls_libm_fma": "fmaf" in asm,
    }))
""")

_MESSAGE = "has no fused multiply-add"


@pytest.fixture(scope="module")
def generic_run(tmp_path_factory):
    """Report and stderr of a fit compiled with ``NUMBA_CPU_NAME=generic``."""
    tmp = tmp_path_factory.mktemp("no_fma")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CPU_FEATURES", "PYTHONWARNINGS")}
    env.update(NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp / "numba"))
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_generic_warns_exactly_once(generic_run):
    report, stderr = generic_run
    assert (report["cpu_name"], report["has_fma"]) == ("generic", False)
    assert stderr.count(_MESSAGE) == 1, stderr
    line = next(ln for ln in stderr.splitlines() if _MESSAGE in ln)
    assert "RuntimeWarning" in line and "NUMBA_CPU_NAME" in line
    assert "number of threads" in line


def test_generic_compiles_no_libm_fma_call(generic_run):
    # llvm.fma without an FMA instruction is a libm call per element: slow
    assert not generic_run[0]["calls_libm_fma"]


def test_generic_bits_do_not_depend_on_the_thread_count(generic_run):
    assert generic_run[0]["same_bits"]


def test_generic_predictions_match_a_float64_forward_pass(generic_run):
    report, _ = generic_run
    assert report["dtype"] == "float32"
    rng = np.random.default_rng(0)  # the child's data
    X = rng.random((200, 30), dtype=np.float32)
    X[X < 0.3] = 0
    A = X.astype(np.float64)
    n_layers = len(report["coefs"])
    for i, (W, b) in enumerate(zip(report["coefs"], report["intercepts"])):
        A = A @ np.asarray(W) + np.asarray(b)
        if i < n_layers - 1:
            A = np.maximum(A, 0)  # relu, the default
    A = np.exp(A - A.max(axis=1, keepdims=True))
    proba = A / A.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(report["proba"], proba, rtol=1e-5, atol=1e-6)


def test_this_process_decides_by_numbas_rule():
    name, features = _simd.compile_target(config.CPU_NAME, config.CPU_FEATURES)
    assert _simd.CPU_NAME == name
    assert _simd.HAS_FMA == _simd.target_has_fma(name, features)


def test_no_warning_where_the_target_has_fma():
    if not _simd.HAS_FMA:
        pytest.skip("this machine's compile target has no FMA")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    out = subprocess.run([sys.executable, "-W", "always", "-c",
                          "import skdigits._kernels._simd"],
                         capture_output=True, text=True, env=env, timeout=300,
                         check=True)
    assert _MESSAGE not in out.stderr


def test_compile_target_follows_numba():
    import llvmlite.binding as ll
    from numba.core.codegen import get_host_cpu_features

    host = ll.get_host_cpu_name()
    assert _simd.compile_target(None, None) == (host, get_host_cpu_features())
    assert _simd.compile_target("generic", "") == ("generic", "")
    assert _simd.compile_target("haswell", None) == ("haswell",
                                                      get_host_cpu_features())
    assert _simd.compile_target(None, "+fma") == (host, "+fma")


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="x86 CPU names")
@pytest.mark.parametrize("cpu, features, expected", [
    ("generic", "", False),         # NUMBA_CPU_NAME=generic: x86-64 baseline
    ("nehalem", "", False),
    ("sandybridge", "", False),     # AVX without FMA
    ("haswell", "", True),
    ("x86-64-v3", "", True),
    ("bdver1", "", True),           # FMA4 is fused too
    ("haswell", "-fma", False),     # a VM that hides FMA
    ("generic", "+fma", True),
    ("generic", "+avx2", False),
])
def test_target_has_fma(cpu, features, expected):
    assert _simd.target_has_fma(cpu, features) is expected
