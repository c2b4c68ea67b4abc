"""The kernels' entry points compile only the signatures of the table in
``skdigits._kernels._signatures`` (issue 20, item 2)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import sparse

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits._kernels import _signatures


@pytest.fixture(scope="module")
def pixels():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(300, 20)).astype(np.uint8)
    X[:, :5] = 0  # blank pixels, as in MNIST
    y = rng.integers(0, 3, size=300)
    return X, y


def _variants(X):
    """The same values in every dtype, memory order and writeability
    ``predict`` is given; None for the CSR variants of dense tests."""
    ro = X.astype(np.float64)
    ro.flags.writeable = False
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    return {
        "uint8": X,
        "int64": X.astype(np.int64),
        "float16": X.astype(np.float16),
        "float32 F": np.asfortranarray(X.astype(np.float32)),
        "float64 F": np.asfortranarray(X.astype(np.float64)),
        "float64 read-only": ro,
        "float64 strided": wide[:, ::2],
    }


def _csr64(X, dtype):
    Xs = sparse.csr_matrix(X.astype(dtype))
    Xs.indices = Xs.indices.astype(np.int64)
    Xs.indptr = Xs.indptr.astype(np.int64)
    return Xs


def _csr_variants(X):
    base = sparse.csr_matrix(X.astype(np.float64))
    small = sparse.csr_matrix(X.astype(np.float32))
    small.indices = small.indices.astype(np.int32)
    small.indptr = small.indptr.astype(np.int32)
    ro = _csr64(X, np.float64)
    ro.data.flags.writeable = False
    ro.indices.flags.writeable = False
    return {"csr int32": base, "csr float32 int32": small, "csr read-only": ro,
            "csr uint8": sparse.csr_matrix(X)}


@pytest.mark.parametrize("make", [
    lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0),
    lambda: MLPClassifier(hidden_layer_sizes=(8, 6), max_iter=2, random_state=0),
    lambda: SoftmaxRegression(max_iter=2, random_state=0),
], ids=["mlp", "deep mlp", "softmax"])
def test_predict_input_compiles_no_new_forward_pass(pixels, make):
    # any dtype, memory order or writeability of X, and any index dtype of a
    # CSR matrix, reuses the forward pass compiled for float64: the input is
    # cast in Python, in blocks of rows; the probabilities are those of the
    # same values as float64
    X, y = pixels
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make().fit(X / 255.0, y)
    key = ("_linear.linear_forward" if isinstance(model, SoftmaxRegression)
           else "_mlp.mlp_forward")
    forward = _signatures.dispatchers()[key]
    # the types the forward pass is compiled for: float32 or float64 C-ordered
    # arrays, CSR with such data and int64 indices
    expected = model.predict_proba(X.astype(np.float64))
    assert_array_equal(model.predict_proba(X.astype(np.float32)), expected)
    expected_csr = model.predict_proba(_csr64(X, np.float64))
    assert_array_equal(model.predict_proba(_csr64(X, np.float32)), expected_csr)
    before = set(forward.signatures)
    for name, Xv in _variants(X).items():
        assert_array_equal(model.predict_proba(Xv), expected, err_msg=name)
    for name, Xv in _csr_variants(X).items():
        assert_array_equal(model.predict_proba(Xv), expected_csr, err_msg=name)
    new = set(forward.signatures) - before
    assert not new, f"{key} compiled {new}"
    for sig in forward.signatures:
        assert _signatures.why_not_allowed(key, _signatures.flatten(sig)) is None


def test_predict_in_blocks_matches_one_block(pixels, monkeypatch):
    # the blocks of rows are cast one by one; the logits of a row depend on
    # that row alone, so the block size changes no bit
    X, y = pixels
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2,
                          random_state=0).fit(X / 255.0, y)
    whole = model.predict_proba(X)
    import skdigits._engine._models as models

    blocks = models.canonical_row_blocks
    monkeypatch.setattr(models, "canonical_row_blocks",
                        lambda X, rows: blocks(X, rows, block=7))
    assert_array_equal(model.predict_proba(X), whole)
    assert_array_equal(model.predict_proba(sparse.csr_matrix(X)),
                       model.predict_proba(_csr64(X, np.float64)))


def test_table_names_the_argument_outside_it():
    key = "_mlp.mlp_forward"
    allowed = _signatures.ALLOWED[key]
    sig = tuple(types[0] for types in allowed)
    assert _signatures.why_not_allowed(key, sig) is None
    bad = (*sig[:3], "array(uint8, 2d, F)", *sig[4:])
    assert _signatures.why_not_allowed(key, bad) == (
        f"{key}: argument 3: array(uint8, 2d, F)")
    assert "no entry" in _signatures.why_not_allowed("_mlp.nothing", sig)
    assert "arguments" in _signatures.why_not_allowed(key, sig[:-1])


def test_every_entry_point_has_a_table_entry():
    assert set(_signatures.ALLOWED) == set(_signatures.dispatchers())
    for key, allowed in _signatures.ALLOWED.items():
        assert len(allowed) == len(_signatures.flat_names(key)), key


def test_entry_points_take_named_tuples_in_one_line():
    # the typed boundary: every epoch and forward pass takes a few named
    # tuples (_kernels._boundary), its parameter list fits on one line
    import inspect

    for key, disp in _signatures.dispatchers().items():
        if key.endswith(("_epoch", "_epoch_deep", "_forward")):
            params = list(inspect.signature(disp.py_func).parameters)
            assert len(params) <= 10, key
            assert len(f"def {disp.py_func.__name__}({', '.join(params)}):") <= 88
            assert set(_signatures._tuples(key)) & set(params), key


def _inner_session(tmp_path, test_file, workers):
    """A pytest session, in a subprocess, of ``tmp_path / test_file`` with
    this suite's conftest (its end-of-session check) and no other settings,
    in ``workers`` (pytest-xdist options, or none)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p",
         "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), *workers,
         str(tmp_path / test_file)],
        cwd=tmp_path, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_session_fails_on_a_signature_outside_the_table(tmp_path, workers):
    # the check at the end of the session turns a signature the table does
    # not allow into a failed run that names the kernel and its types
    (tmp_path / "test_one.py").write_text(textwrap.dedent("""
        import numpy as np
        from skdigits._kernels import _rng, _signatures

        def test_shuffle():
            _signatures.ALLOWED.pop("_rng.shuffle")
            _rng.shuffle(np.arange(4, dtype=np.int64),
                        _rng.new_state(np.random.RandomState(0)))
    """))
    out = _inner_session(tmp_path, "test_one.py", workers)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    assert "kernel signatures outside the table" in out.stdout
    assert "_rng.shuffle(" in out.stdout
    assert "_rng.shuffle has no entry in the table" in out.stdout


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_session_fails_on_two_signatures_for_one_axis_value(tmp_path, workers):
    # two tests compile loss_grad for the same logits and accumulators with
    # float64 and float32 weights, each allowed by the table: together they
    # are a specialisation Python should have made canonical. Under xdist
    # they may run in different workers: the controller sees both
    (tmp_path / "test_two.py").write_text(textwrap.dedent("""
        import numpy as np
        import pytest
        from skdigits._kernels import _losses

        @pytest.mark.parametrize("wdtype", [np.float64, np.float32])
        def test_loss(wdtype):
            Z = np.zeros((4, 3))
            acc = [np.zeros(8) for _ in range(4)]
            _losses.loss_grad(Z, np.arange(4) % 3, np.zeros((0, 0), np.uint8),
                              np.ones(4, wdtype), 4, _losses.SOFTMAX, 1.0, 0.0,
                              *acc)
    """))
    out = _inner_session(tmp_path, "test_two.py", workers)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "2 passed" in out.stdout
    assert "_losses.loss_grad holds 2 signatures for" in out.stdout
