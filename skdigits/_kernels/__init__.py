"""Numba kernels: plain functions of arrays and scalars, compiled at module level.

Nothing here is public. Each module keeps the raw Python function of a kernel
(``_name_py``) beside its compiled twin (``name``) so tests can run the Python
version and benchmarks can compile variants. Serial kernels use ``cache=True``.
"""
