"""The Numba cache falls back to a writable folder on read-only installs."""

import os

import numba

from skdigits._kernels import _numba


def test_read_only_install_moves_cache_to_temp(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setattr(_numba.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(_numba.os, "access", lambda path, mode: False)
    _numba._ensure_writable_cache()
    assert numba.config.CACHE_DIR.startswith(str(tmp_path))
    assert os.path.isdir(numba.config.CACHE_DIR)


def test_user_choice_and_writable_install_are_left_alone(monkeypatch, tmp_path):
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setattr(_numba.os, "access", lambda path, mode: False)
    _numba._ensure_writable_cache()
    assert numba.config.CACHE_DIR == ""
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(_numba.os, "access", lambda path, mode: True)
    _numba._ensure_writable_cache()
    assert numba.config.CACHE_DIR == ""


def test_kernels_are_cached_and_not_fastmath():
    from numba.core.registry import CPUDispatcher

    from skdigits._kernels import _linear, _losses, _mlp, _optim, _rng

    kernels = [obj for mod in (_linear, _losses, _mlp, _optim, _rng)
               for obj in vars(mod).values() if isinstance(obj, CPUDispatcher)]
    assert {"mlp_epoch", "mlp_forward", "linear_epoch", "step"} <= {
        k.py_func.__name__.removeprefix("_").removesuffix("_py") for k in kernels}
    for k in kernels:
        assert k._cache is not None and type(k._cache).__name__ == "FunctionCache"
        assert not k.targetoptions.get("fastmath")
        # NumPy's error model: a division guard would stop vectorisation
        assert k.targetoptions.get("error_model") == "numpy"
