"""Numba kernels: plain functions of arrays and scalars, compiled at module level.

Nothing here is public. Each module keeps the raw Python function of a kernel
(``_name_py``) beside its compiled twin (``name``) so tests can run the Python
version and benchmarks can compile variants. The entry points, the kernels
called from Python (listed in ``_signatures.ENTRY_POINTS``), use ``jit``:
compiled, cached, callable from Python. Every other kernel is a
``subroutine``: compiled into the entry points that call it, once per
signature and process, never cached on its own (see ``_numba``).

Integer constants passed from one kernel to another go through ``np.int64``
locals (``_I0 = np.int64(0)``): Numba compiles a separate version of the
callee for each literal argument, which multiplies the compile time.
"""
