"""Matrix products over groups of rows, skipping exact zeros.

The rows of a minibatch come in groups of ``TILE_ROWS`` (4). For each group,
``group_lists`` records the sorted columns where any of its rows is non-zero
(a pixel column that is blank in all four images is skipped: about 60 % of
MNIST's, 20 % of Fashion-MNIST's). The products then sum over those columns
only. Each output element is a chain of fused multiply-adds over its list in
increasing order, so the result is exactly that of the dense product in the
same order (a skipped term is ``fma(0, w, acc) = acc``), whatever the tiling,
the group or the thread.

Arrays are C-ordered 2-D; every function takes row and column offsets so a
kernel can work on a block of a larger buffer in place. A list set is an
int32 array ``lists`` of shape ``(n_groups, n_columns)`` with ``counts``;
group ``g`` of a call uses list ``g0 + gstep * g``. ``gstep=0`` means a dense
input: every group uses list ``g0``, which must be ``0, 1, 2, ...``. Only the
list entries in ``[k0, k1)`` are used (lists are sorted, so that is one range
of each).
"""

import numpy as np

from ._numba import inline, subroutine
from ._simd import (
    TILE_ROWS,
    TILE_VECTORS,
    VECTOR_BYTES,
    acc_tile_1x1,
    acc_tile_1x4,
    acc_tile_4x1,
    acc_tile_4x4,
    dot_tile_1x1,
    dot_tile_1x4,
    dot_tile_4x1,
    dot_tile_4x4,
    fma,
)


def _lanes_py(a):
    """Elements of ``a``'s dtype per vector (``VECTOR_BYTES``)."""
    return VECTOR_BYTES // a.itemsize


lanes_of = subroutine(_lanes_py)


def _group_lists_py(X, rows, m, lists, counts, g0):
    """For each group of ``TILE_ROWS`` of the ``m`` rows ``X[rows[i]]``:
    ``lists[g0 + g, :counts[g0 + g]]`` = the columns where one of the group's
    rows is non-zero, in increasing order. Updates ``lists`` and ``counts``
    in place.

    A vectorised pass marks the non-zero columns in bytes; the bytes are then
    read eight at a time, so a run of blank columns costs one test per eight.
    """
    n_cols = X.shape[1]
    n_words = (n_cols + 7) // 8
    flags = zeroed_bytes(8 * n_words)
    words = flags.view(np.uint64)
    for g in range((m + TILE_ROWS - 1) // TILE_ROWS):
        i = g * TILE_ROWS
        n_rows = min(TILE_ROWS, m - i)
        if n_rows == TILE_ROWS:
            x0 = X[rows[i]]
            x1 = X[rows[i + 1]]
            x2 = X[rows[i + 2]]
            x3 = X[rows[i + 3]]
            for k in range(n_cols):
                flags[k] = (x0[k] != 0) | (x1[k] != 0) | (x2[k] != 0) | (x3[k] != 0)
        else:
            for k in range(n_cols):
                nz = False
                for r in range(n_rows):
                    nz |= X[rows[i + r], k] != 0
                flags[k] = nz
        out = lists[g0 + g]
        pos = 0
        for word in range(n_words):
            if words[word] == 0:
                continue
            for k in range(8 * word, min(8 * word + 8, n_cols)):
                out[pos] = k
                pos += flags[k]
        counts[g0 + g] = pos


group_lists = subroutine(_group_lists_py, reads=("X",))


# Small helpers written out rather than taken from NumPy: Numba compiles each
# NumPy function it supports (np.arange, np.zeros, np.searchsorted) as a
# program of its own, optimised alone and linked into every kernel that calls
# it; the three cost a cold fit about 0.4 s (MLP) to 0.6 s (softmax) of
# compiling, these loops nothing measurable. Same results.

def _identity_list_py(n):
    """``np.arange(n)`` (int64)."""
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = i
    return out


identity_list = inline(_identity_list_py)


def _zeroed_bytes_py(n):
    """``np.zeros(n, dtype=np.uint8)``."""
    out = np.empty(n, dtype=np.uint8)
    for i in range(n):
        out[i] = 0
    return out


zeroed_bytes = inline(_zeroed_bytes_py)


def _lower_bound_py(row, k):
    """``np.searchsorted(row, k)`` for the increasing ``row``: the first
    position whose value is at least ``k`` (``len(row)`` when none is)."""
    lo = 0
    hi = row.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if row[mid] < k:
            lo = mid + 1
        else:
            hi = mid
    return lo


lower_bound = inline(_lower_bound_py)


def _list_range_py(lists, counts, g, gstep, k0, k1):
    """Positions ``(p0, p1)`` of the entries of list ``g`` within ``[k0, k1)``
    (for ``gstep=0``, the dense list ``0, 1, 2, ...``: ``k0, k1``)."""
    n = counts[g]
    if gstep == 0:
        return min(k0, n), min(k1, n)
    if n == 0 or (k0 <= lists[g, 0] and k1 > lists[g, n - 1]):
        return 0, n
    row = lists[g, :n]
    return lower_bound(row, k0), lower_bound(row, k1)


list_range = subroutine(_list_range_py)


def _row_offsets_py(arows, i, lda):
    """Flat offsets of the (up to four) rows ``arows[i ..]`` of a matrix with
    rows of ``lda`` elements."""
    a0 = arows[i] * lda
    a1 = arows[i + 1] * lda if i + 1 < arows.shape[0] else a0
    a2 = arows[i + 2] * lda if i + 2 < arows.shape[0] else a0
    a3 = arows[i + 3] * lda if i + 3 < arows.shape[0] else a0
    return a0, a1, a2, a3


row_offsets = subroutine(_row_offsets_py)


def _dot_rows_py(out, orow, ocol, A, arows, m, B, c0, c1, lists, counts, g0, gstep,
                 k0, k1):
    """``out[orow + i, ocol + j - c0] = sum_k A[arows[i], k] * B[k, j]`` for
    ``i < m`` and ``c0 <= j < c1``, over the ``k`` of the row's group list
    within ``[k0, k1)``. Sets that block of ``out`` in place."""
    L = lanes_of(out)
    W = L * TILE_VECTORS
    ldo = out.shape[1]
    lda = A.shape[1]
    ldb = B.shape[1]
    ldl = lists.shape[1]
    for g in range((m + TILE_ROWS - 1) // TILE_ROWS):
        i = g * TILE_ROWS
        rows = min(TILE_ROWS, m - i)
        gl = g0 + gstep * g
        p0, p1 = list_range(lists, counts, gl, gstep, k0, k1)
        lp = gl * ldl + p0
        n = p1 - p0
        if rows == TILE_ROWS:
            o = (orow + i) * ldo + ocol
            a0, a1, a2, a3 = row_offsets(arows, i, lda)
            j = c0
            while j + W <= c1:
                dot_tile_4x4(out, o + j - c0, ldo, A, a0, a1, a2, a3, B, j, ldb, lists,
                             lp, n)
                j += W
            while j + L <= c1:
                dot_tile_4x1(out, o + j - c0, ldo, A, a0, a1, a2, a3, B, j, ldb, lists,
                             lp, n)
                j += L
            if j < c1:
                for r, a in enumerate((a0, a1, a2, a3)):
                    _dot_tail(out, o + r * ldo - c0, A, a, B, j, c1, lists, lp, n)
        else:
            for r in range(rows):
                o = (orow + i + r) * ldo + ocol
                a = arows[i + r] * lda
                j = c0
                while j + W <= c1:
                    dot_tile_1x4(out, o + j - c0, ldo, A, a, a, a, a, B, j, ldb, lists,
                                 lp, n)
                    j += W
                while j + L <= c1:
                    dot_tile_1x1(out, o + j - c0, ldo, A, a, a, a, a, B, j, ldb, lists,
                                 lp, n)
                    j += L
                _dot_tail(out, o - c0, A, a, B, j, c1, lists, lp, n)


def _dot_tail_py(out, o, A, a, B, j0, j1, lists, lp, n):
    """The columns ``j0 .. j1`` left over by the vector tiles, one element at
    a time, with the same chain of fused multiply-adds."""
    flat_out = out.reshape(-1)
    flat_a = A.reshape(-1)
    flat_l = lists.reshape(-1)
    ldb = B.shape[1]
    flat_b = B.reshape(-1)
    zero = out.dtype.type(0)
    for j in range(j0, j1):
        acc = zero
        for q in range(n):
            k = flat_l[lp + q]
            acc = fma(flat_a[a + k], flat_b[k * ldb + j], acc)
        flat_out[o + j] = acc


_dot_tail = subroutine(_dot_tail_py, reads=("A",))
dot_rows = subroutine(_dot_rows_py, reads=("A",))


def _acc_rows_py(G, gcol, A, arows, m, D, drow, dcol, width, lists, counts, g0,
                 gstep, k0, k1):
    """``G[k, gcol + j] += sum_i A[arows[i], k] * D[drow + i, dcol + j]`` for
    ``j < width``, over the rows ``i < m`` (in order) and, for each, the ``k``
    of its group list within ``[k0, k1)``. Updates ``G`` in place."""
    L = lanes_of(G)
    W = L * TILE_VECTORS
    ldg = G.shape[1]
    lda = A.shape[1]
    ldd = D.shape[1]
    ldl = lists.shape[1]
    for g in range((m + TILE_ROWS - 1) // TILE_ROWS):
        i = g * TILE_ROWS
        rows = min(TILE_ROWS, m - i)
        gl = g0 + gstep * g
        p0, p1 = list_range(lists, counts, gl, gstep, k0, k1)
        lp = gl * ldl + p0
        n = p1 - p0
        if rows == TILE_ROWS:
            a0, a1, a2, a3 = row_offsets(arows, i, lda)
            d = (drow + i) * ldd + dcol
            j = 0
            while j + W <= width:
                acc_tile_4x4(G, gcol + j, ldg, A, a0, a1, a2, a3, D, d + j, ldd, lists,
                             lp, n)
                j += W
            while j + L <= width:
                acc_tile_4x1(G, gcol + j, ldg, A, a0, a1, a2, a3, D, d + j, ldd, lists,
                             lp, n)
                j += L
            if j < width:
                _acc_tail(G, gcol, A, arows, i, rows, D, d, ldd, j, width, lists, lp,
                          n)
        else:
            one = np.int64(1)  # not a literal: one compiled _acc_tail
            for r in range(rows):
                a = arows[i + r] * lda
                d = (drow + i + r) * ldd + dcol
                j = 0
                while j + W <= width:
                    acc_tile_1x4(G, gcol + j, ldg, A, a, a, a, a, D, d + j, ldd, lists,
                                 lp, n)
                    j += W
                while j + L <= width:
                    acc_tile_1x1(G, gcol + j, ldg, A, a, a, a, a, D, d + j, ldd, lists,
                                 lp, n)
                    j += L
                _acc_tail(G, gcol, A, arows, i + r, one, D, d, ldd, j, width, lists,
                          lp, n)


def _acc_tail_py(G, gcol, A, arows, i, rows, D, d, ldd, j0, j1, lists, lp, n):
    """Columns ``j0 .. j1`` left over by the vector tiles, element by element,
    for the ``rows`` rows ``arows[i ..]``."""
    flat_g = G.reshape(-1)
    flat_d = D.reshape(-1)
    flat_l = lists.reshape(-1)
    ldg = G.shape[1]
    for q in range(n):
        k = flat_l[lp + q]
        for j in range(j0, j1):
            acc = flat_g[k * ldg + gcol + j]
            for r in range(rows):
                acc = fma(A[arows[i + r], k], flat_d[d + r * ldd + j], acc)
            flat_g[k * ldg + gcol + j] = acc


_acc_tail = subroutine(_acc_tail_py, reads=("A",))
acc_rows = subroutine(_acc_rows_py, reads=("A",))


def _gather_rows_py(X, order, start, m, out, orow):
    """``out[orow + i] = X[order[start + i]]`` for ``i < m``, cast to ``out``'s
    dtype. Updates ``out`` in place."""
    for i in range(m):
        src = X[order[start + i]]
        dst = out[orow + i]
        for f in range(X.shape[1]):
            dst[f] = src[f]


gather_rows = subroutine(_gather_rows_py)


def _gather_rows_scaled_py(X, order, start, m, out, orow, scale):
    """``out[orow + i] = X[order[start + i]] * scale`` for ``i < m`` (each
    column times its factor; zeros stay zeros), in ``out``'s dtype."""
    for i in range(m):
        src = X[order[start + i]]
        dst = out[orow + i]
        for f in range(X.shape[1]):
            dst[f] = src[f] * scale[f]


gather_rows_scaled = subroutine(_gather_rows_scaled_py)
