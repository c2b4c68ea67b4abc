"""The kernels' vector width and tile shape follow the compile target
(``_simd.VECTOR_BYTES``, ``TILE_VECTORS``): 64-byte vectors in 4 x 4 tiles
with AVX-512, 32-byte ones in 4 x 2 tiles with AVX2 (16 registers), 16 bytes
otherwise. Each output element is the same chain of fused multiply-adds
whatever the tiles, so they change the speed, never the bits: fits compiled
for this CPU with and without its AVX-512 (same FMA) must agree to the bit."""

import os
import subprocess
import sys
import textwrap

import pytest

from skdigits._kernels import _simd

_CHILD = textwrap.dedent("""
    import hashlib
    import numpy as np
    import scipy.sparse as sp
    from skdigits import MLPClassifier, SoftmaxRegression
    from skdigits._kernels import _simd

    rng = np.random.default_rng(0)
    X = rng.random((300, 70), dtype=np.float32)
    X[X < 0.4] = 0  # zeros for the kernels to skip
    y = rng.integers(0, 5, 300)
    h = hashlib.sha256()
    for model, data in (
            (MLPClassifier(hidden_layer_sizes=(70,), max_iter=3, random_state=0), X),
            (MLPClassifier(hidden_layer_sizes=(40, 23), solver="sgd", dtype="float64",
                           max_iter=2, random_state=0), X),
            (MLPClassifier(hidden_layer_sizes=(33,), max_iter=2, random_state=0),
             sp.csr_matrix(X)),
            (SoftmaxRegression(max_iter=3, random_state=0), X)):
        model.fit(data, y)
        for a in getattr(model, "coefs_", None) or [model.coef_]:
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(model.predict_proba(data).tobytes())
    print(_simd.VECTOR_BYTES, _simd.TILE_VECTORS, h.hexdigest())
""")


def _without_avx512(features):
    return ",".join("-" + f[1:] if f.startswith("+avx512") else f
                    for f in features.split(","))


def test_the_probe_reads_the_register_width_of_known_cpus():
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.skip("x86-64 CPU names")
    assert _simd.target_vector_bytes("skylake-avx512", "") == 64
    assert _simd.target_vector_bytes("haswell", "") == 32
    assert _simd.target_vector_bytes("sandybridge", "") == 32  # AVX, no FMA
    assert _simd.target_vector_bytes("generic", "") == 16
    assert _simd.target_vector_bytes("haswell", "-avx,-avx2,-fma") == 16


def test_tile_shapes_change_the_speed_never_the_bits(tmp_path):
    name, features = _simd.compile_target()
    if "+avx512f" not in features.split(","):
        pytest.skip("needs a CPU with AVX-512 to compare two tile shapes")
    assert (_simd.VECTOR_BYTES, _simd.TILE_VECTORS) == (64, 4)
    runs = []
    for env_features in (None, _without_avx512(features)):
        env = dict(os.environ)
        if env_features is not None:  # its own cache: another target
            env["NUMBA_CPU_FEATURES"] = env_features
            env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
        env["SKDIGITS_COMPILE_AHEAD"] = "0"
        runs.append(subprocess.Popen([sys.executable, "-W", "ignore", "-c", _CHILD],
                                     env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True))
    (wide, wide_err), (narrow, narrow_err) = (r.communicate(timeout=600) for r in runs)
    assert runs[0].returncode == 0, wide_err
    assert runs[1].returncode == 0, narrow_err
    wide, narrow = wide.split(), narrow.split()
    assert wide[:2] == ["64", "4"] and narrow[:2] == ["32", "2"]
    assert wide[2] == narrow[2]
