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


def _sparse_column_moments_py(indptr, indices, data, rows, w, mean, var):
    """``column_moments`` of a CSR matrix (``indptr``, ``indices``,
    ``data``) over the rows ``rows``, reading only the stored entries: the
    zeros of column ``f`` add ``mean[f] ** 2`` times their weight to the
    variance, and that weight is the total less the weight of the rows that
    store an entry in ``f``. Same order of sums as ``column_moments`` for
    the stored entries. The weights must have a positive sum."""
    d = mean.shape[0]
    stored = np.zeros(d)
    for f in range(d):
        mean[f] = 0.0
        var[f] = 0.0
    total = 0.0
    for i in rows:
        wi = np.float64(w[i])
        if wi == 0.0:
            continue
        total += wi
        for k in range(indptr[i], indptr[i + 1]):
            mean[indices[k]] += wi * np.float64(data[k])
    for f in range(d):
        mean[f] /= total
    for i in rows:
        wi = np.float64(w[i])
        if wi == 0.0:
            continue
        for k in range(indptr[i], indptr[i + 1]):
            f = indices[k]
            diff = np.float64(data[k]) - mean[f]
            var[f] += wi * diff * diff
            stored[f] += wi
    for f in range(d):
        zeros = max(total - stored[f], 0.0)  # rounding may leave -0.0000...1
        var[f] = (var[f] + zeros * mean[f] * mean[f]) / total


sparse_column_moments = jit(_sparse_column_moments_py)
