"""Column statistics of a data matrix, for standardised inputs."""

import numpy as np

from ._numba import jit


def _column_moments_py(X, rows, w, mean, var):
    """Weighted ``mean[f]`` and ``var[f]`` (population variance) of each
    column of ``X`` over the rows ``rows``, with weights ``w[rows]``; in
    float64, two passes in row order (the same bits whatever runs it). Sets
    ``mean`` and ``var`` in place. The weights must have a positive sum."""
    d = X.shape[1]
    for f in range(d):
        mean[f] = 0.0
        var[f] = 0.0
    total = 0.0
    for i in rows:
        wi = np.float64(w[i])
        if wi == 0.0:
            continue
        total += wi
        row = X[i]
        for f in range(d):
            mean[f] += wi * np.float64(row[f])
    for f in range(d):
        mean[f] /= total
    for i in rows:
        wi = np.float64(w[i])
        if wi == 0.0:
            continue
        row = X[i]
        for f in range(d):
            diff = np.float64(row[f]) - mean[f]
            var[f] += wi * diff * diff
    for f in range(d):
        var[f] /= total


column_moments = jit(_column_moments_py)
