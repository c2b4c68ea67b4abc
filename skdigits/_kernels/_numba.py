"""Numba set-up shared by all kernels: the ``njit`` used everywhere and a cache
folder that works on read-only installs."""

import os
import tempfile

import numba


def _ensure_writable_cache():
    """Point ``NUMBA_CACHE_DIR`` at a writable folder when the package is not.

    Numba writes its cache beside the source (``__pycache__``). On a read-only
    install (system site-packages, a container image) that fails with "cannot
    cache function ... no locator available". When the user has not chosen a
    cache folder and ours is not writable, use one in the temp folder.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    pycache = os.path.join(here, "__pycache__")
    target = pycache if os.path.isdir(pycache) else here
    if os.access(target, os.W_OK):
        return
    cache_dir = os.path.join(tempfile.gettempdir(), f"skdigits-numba-cache-{os.getuid()}"
                             if hasattr(os, "getuid") else "skdigits-numba-cache")
    os.makedirs(cache_dir, exist_ok=True)
    numba.config.CACHE_DIR = cache_dir


_ensure_writable_cache()


def jit(func):
    """Compile ``func`` serially with the project's settings: nopython, cached,
    no fastmath (the kernels hold log/exp and epsilon guards).

    ``error_model="numpy"``: a float division by zero gives inf/nan, as in
    NumPy, instead of a Python ``ZeroDivisionError``. The per-element check
    that Python semantics need stops LLVM from vectorising loops with a
    division (the Adam step runs about 6x slower with it); non-finite results
    are caught after each epoch instead.
    """
    return numba.njit(cache=True, nogil=True, error_model="numpy")(func)
