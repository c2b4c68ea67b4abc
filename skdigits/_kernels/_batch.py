"""Pieces shared by the team-run epoch kernels: the option slots, gathering
minibatches, adding up partial logits, and the optimizer call.

A kernel's options come in two small arrays chosen in Python: ``iopt``
(int64, slots ``I_*``) and ``fopt`` (float64, slots ``F_*``). The L2 term of a
minibatch of ``m`` rows is ``fopt[F_L2_FIXED] + fopt[F_L2_PER_ROW] / m``
times the weights: the estimator decides its convention (scikit-learn's MLP
divides ``alpha`` by the minibatch size, a linear model does not).
"""

import numpy as np

from ._gemm import gather_rows, gather_rows_scaled, group_lists
from ._losses import loss_grad_sub as loss_grad
from ._numba import subroutine
from ._optim import step_block
from ._simd import TILE_ROWS
from ._sync import claim

I_ACTIVATION, I_LOSS, I_SOLVER, I_NESTEROV, I_N_OUT, I_SEED, I_EPOCH = range(7)
N_IOPT = 7
(F_L2_FIXED, F_L2_PER_ROW, F_LR0, F_LR1, F_MOMENTUM, F_BETA1, F_BETA2,
 F_EPS, F_SMOOTH, F_LRK, F_KNEE, F_SCALE, F_DROPOUT) = range(13)
N_FOPT = 13


def float_options(lr0, lr1=None, *, l2_fixed=0.0, l2_per_row=0.0, momentum=0.0,
                  beta1=0.9, beta2=0.999, eps=1e-8, smooth=0.0, lr_knee=0.0,
                  knee=1.0, scale=0.0, dropout=0.0):
    """The float options of the epoch kernels as an array (``F_*`` slots):
    learning rate from ``lr0`` to ``lr1`` (``lr0`` when None) over the epoch,
    through ``lr_knee`` at the fraction ``knee`` of it when ``knee < 1``.
    ``scale`` is the factor of the loss gradient (``0``: one over the rows of
    each minibatch; the full-batch solver passes one over the total
    weight). ``dropout``: the probability that the MLP's epoch drops a
    hidden unit of a row (with ``iopt[I_SEED]`` and ``iopt[I_EPOCH]``, the
    key of its masks: see ``_mlp``)."""
    fopt = np.zeros(N_FOPT)
    fopt[[F_L2_FIXED, F_L2_PER_ROW, F_LR0, F_LR1, F_MOMENTUM, F_BETA1, F_BETA2, F_EPS,
          F_SMOOTH, F_LRK, F_KNEE, F_SCALE, F_DROPOUT]] = (
        l2_fixed, l2_per_row, lr0, lr0 if lr1 is None else lr1, momentum, beta1,
        beta2, eps, smooth, lr_knee, knee, scale, dropout)
    return fopt

#: Rows gathered per work item.
GATHER_ROWS = 8 * TILE_ROWS


def _n_blocks_py(n, width):
    """Blocks of ``width`` needed to cover ``n``."""
    return (n + width - 1) // width


n_blocks = subroutine(_n_blocks_py)


def _gather_item_py(X, Xalt, y, w, order, start, r0, m, direct, indptr, scale, Xb,
                    ident, lists, counts, yb, wb, buf):
    """Rows ``r0 .. r0 + m`` of the minibatch that starts at ``order[start]``,
    into buffer ``buf``: their labels and weights, and the non-zero columns of
    their row groups. Unless ``direct`` (the kernels then read the rows of
    ``X`` in place: ``X`` is already in the model's dtype), the rows are
    copied (and cast) into ``Xb[buf]`` first, each column times its factor in
    ``scale`` when that is not empty (standardised inputs). Dense rows come
    from ``X`` (in the model's dtype) or, when it is not empty, ``Xalt`` (the
    other float dtype): one compiled signature per model dtype, whatever the
    data's, and the same bits as a cast of the whole data would not give
    (a float64 row times a float32 scale is rounded once). For CSR data
    (``indptr`` its row pointers, which the kernels read in place: see
    ``_sparse``) only the labels and weights are gathered; ``indptr`` is
    None for dense data (a type of its own: see ``_mlp``)."""
    if indptr is None:
        if direct:
            group_lists(X, order[start + r0:], m, lists[buf], counts[buf],
                        r0 // TILE_ROWS)
        else:
            if Xalt.shape[0] > 0:
                if scale.shape[0] > 0:
                    gather_rows_scaled(Xalt, order, start + r0, m, Xb[buf], r0, scale)
                else:
                    gather_rows(Xalt, order, start + r0, m, Xb[buf], r0)
            elif scale.shape[0] > 0:
                gather_rows_scaled(X, order, start + r0, m, Xb[buf], r0, scale)
            else:
                gather_rows(X, order, start + r0, m, Xb[buf], r0)
            group_lists(Xb[buf], ident[r0:], m, lists[buf], counts[buf],
                        r0 // TILE_ROWS)
    for i in range(m):
        yb[buf, r0 + i] = y[order[start + r0 + i]]
        wb[buf, r0 + i] = w[order[start + r0 + i]]


gather_item = subroutine(_gather_item_py)


def _gather_phase_py(sync, X, Xalt, y, w, order, start, m, direct, indptr, scale, Xb,
                     ident, lists, counts, yb, wb, buf, item, first):
    """Claim gather items, numbered from ``first`` in the current phase,
    until none is left; ``item`` is one already claimed. ``indptr``: as in
    ``gather_item``."""
    n_gather = n_blocks(m, GATHER_ROWS)
    while item - first < n_gather:
        r0 = (item - first) * GATHER_ROWS
        gather_item(X, Xalt, y, w, order, start, r0, min(GATHER_ROWS, m - r0), direct,
                    indptr, scale, Xb, ident, lists, counts, yb, wb, buf)
        item = claim(sync)


gather_phase = subroutine(_gather_phase_py)


def _batch_rows_py(X, Xb, order, ident, start, m, direct, buf):
    """The matrix and the row index the kernels read minibatch ``buf`` from:
    the data in place (``X``, rows ``order[start:]``) when ``direct``, else
    the copied rows ``Xb[buf]``."""
    if direct:
        return X, order[start:start + m]
    return Xb[buf], ident[:m]


batch_rows = subroutine(_batch_rows_py)


#: Rows per work item of the loss phase.
LOSS_ROWS = 8 * TILE_ROWS


def _loss_phase_py(sync, Zp, n_parts, Z, yb, Y, wb, m, class_loss, class_weight,
                   col_loss, stats, iopt, fopt):
    """Claim chunks of ``LOSS_ROWS`` rows of the minibatch: add up the
    chunk's partial logits into ``Z`` (in part order; none when ``n_parts`` is
    0: ``Z`` holds the logits already), then compute their loss and its
    gradient, which replaces them in ``Z``. Chunk ``c`` adds its sums to row
    ``c`` of the accumulators, so the epoch's totals (the rows added up in
    order) do not depend on the threads. The intercepts are in part 0 (added
    by the item that computed it): no parameter is read here, since another
    thread may already be updating them."""
    k = Z.shape[1]
    item = claim(sync)
    while item * LOSS_ROWS < m:
        r0 = item * LOSS_ROWS
        r1 = min(r0 + LOSS_ROWS, m)
        if n_parts > 0:
            for i in range(r0, r1):
                z = Z[i]
                z0 = Zp[0, i]
                for j in range(k):
                    z[j] = z0[j]
            for p in range(1, n_parts):
                for i in range(r0, r1):
                    z = Z[i]
                    zp = Zp[p, i]
                    for j in range(k):
                        z[j] += zp[j]
        loss_grad(Z[r0:r1, :iopt[I_N_OUT]], yb[r0:r1], Y, wb[r0:r1], r1 - r0,
                  iopt[I_LOSS], grad_scale(fopt, m), fopt[F_SMOOTH], class_loss[item],
                  class_weight[item], col_loss[item], stats[item])
        item = claim(sync)


loss_phase = subroutine(_loss_phase_py)


def _add_row_py(Z, m, b):
    """``Z[:m] += b`` (``b``: one row)."""
    for i in range(m):
        z = Z[i]
        for j in range(Z.shape[1]):
            z[j] += b[0, j]


add_row = subroutine(_add_row_py)


def _column_sums_py(D, m, c0, c1, out):
    """``out[0, c0:c1] += sum_i D[i, c0:c1]`` over the first ``m`` rows, in
    row order."""
    acc = out[0, c0:c1]
    for i in range(m):
        row = D[i, c0:c1]
        for j in range(c1 - c0):
            acc[j] += row[j]


column_sums = subroutine(_column_sums_py)


def _update_py(P, G, S1, S2, r0, r1, c0, c1, l2, lr, iopt, fopt, t):
    """``step_block`` with the solver settings of ``iopt``/``fopt``."""
    step_block(iopt[I_SOLVER], P, G, S1, S2, r0, r1, c0, c1, l2, lr,
               fopt[F_MOMENTUM], iopt[I_NESTEROV] != 0, fopt[F_BETA1],
               fopt[F_BETA2], fopt[F_EPS], t)


update = subroutine(_update_py)


def _batch_rate_py(fopt, k, n_batches):
    """Learning rate of minibatch ``k``: linear from ``lr0`` to ``lr1``, or,
    with a knee at the fraction ``knee < 1`` of the epoch, linear from
    ``lr0`` to ``lrk`` there and then to ``lr1`` (one-cycle warm-up ending
    inside an epoch)."""
    knee = fopt[F_KNEE]
    if knee >= 1.0:
        return fopt[F_LR0] + (fopt[F_LR1] - fopt[F_LR0]) * k / n_batches
    x = k / n_batches
    if x < knee:
        return fopt[F_LR0] + (fopt[F_LRK] - fopt[F_LR0]) * (x / knee)
    return fopt[F_LRK] + (fopt[F_LR1] - fopt[F_LRK]) * ((x - knee) / (1.0 - knee))


batch_rate = subroutine(_batch_rate_py)


def _grad_scale_py(fopt, m):
    """The factor of the loss gradient of a minibatch of ``m`` rows."""
    return fopt[F_SCALE] if fopt[F_SCALE] > 0.0 else 1.0 / m


grad_scale = subroutine(_grad_scale_py)


def _l2_py(fopt, m):
    """The L2 coefficient for a minibatch of ``m`` rows."""
    return fopt[F_L2_FIXED] + fopt[F_L2_PER_ROW] / m


l2_of = subroutine(_l2_py)
