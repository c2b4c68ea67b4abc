"""Training epoch and forward pass of a linear classifier (softmax or
one-vs-rest logistic), run by a team of threads.

Parameters live in one flat vector ``theta``: the weights ``W`` of shape
``(n_features, ld)``, row-major, followed by ``ld`` intercepts, where ``ld``
is the row width: the number of outputs, padded with zero columns to a
multiple of ``_mlp.PAD`` (so the dense products run on whole vectors; the
padding stays zero), or for a model fitted on sparse data with at most
``PAD // 2`` outputs the outputs as they are (the vector tiles cover what
they can, a scalar tail the rest: a binary model is one column; see
``_engine._models.linear_width``). The logits of a block ``X`` are ``X @ W +
b``.

A minibatch takes two phases: chunks of rows compute their logits, their
loss and its gradient; then item ``c`` computes the weights' gradient
for block ``c`` of ``FEATURE_BLOCK`` features and updates them, and further
items gather the next minibatch. The results do not depend on the number of
threads (see ``_mlp``). Sparse (CSR) data is read in place (see ``_sparse``),
with one more phase between the two: the minibatch's gradient scattered into
the rows it touches.

Wide sparse data (see ``LinearModel``) takes the lazy update: the item that
scatters the gradient also lists, in order, the features the minibatch
touches, and only their rows of ``W`` are stepped (with their L2 term), in
blocks of that list (``_optim.step_rows``); the other rows, their gradient
(zero) and their optimizer state are left as they are. A minibatch then
costs its non-zeros times the outputs, not the features times the outputs.
As TensorFlow's ``LazyAdam``, this is not the dense algorithm: dense Adam
(or momentum) keeps moving a weight on the decaying moments of past
minibatches, and shrinks every weight by its L2 term at every step. With the
``GRADIENT`` code (the full-batch solver, whose L2 term is added in Python)
the two agree exactly.
"""

import numpy as np

from ._batch import (
    F_BETA1,
    F_BETA2,
    F_EPS,
    F_MOMENTUM,
    F_SMOOTH,
    I_LOSS,
    I_N_OUT,
    I_NESTEROV,
    I_SOLVER,
    LOSS_ROWS,
    add_row,
    batch_rate,
    batch_rows,
    column_sums,
    gather_item,
    grad_scale,
    l2_of,
    n_blocks,
    update,
)
from ._gemm import acc_rows, dot_rows, gather_rows, group_lists, identity_list
from ._losses import loss_grad_sub as loss_grad
from ._numba import jit, subroutine
from ._optim import step_rows
from ._simd import TILE_ROWS
from ._sparse import sparse_acc_rows, sparse_dot_rows
from ._sync import LINEAR_INTERCEPTS, LINEAR_LOSS, LINEAR_UPDATE, barrier, claim

#: Features per work item.
FEATURE_BLOCK = 128

#: Touched features per work item of the lazy update.
TOUCHED_BLOCK = 2048


def _params_py(theta, n_features, ld):
    """``(W, b)`` as views of ``theta``; ``b`` as one row."""
    W = theta[:n_features * ld].reshape((n_features, ld))
    b = theta[n_features * ld:n_features * ld + ld].reshape((1, ld))
    return W, b


params = subroutine(_params_py)


def _epoch_py(tid, n_threads, sync, X, indptr, indices, data, y, Y, w, order, Xalt,
              direct, ld, theta, grad, s1, s2, Xb, lists, counts, yb, wb, Z, mark,
              touched, n_touched, class_loss, class_weight, col_loss, stats, iopt,
              fopt, t):
    """The body of ``linear_epoch``, on the arrays themselves."""
    _I0 = np.int64(0)
    _I1 = np.int64(1)
    n_features = X.shape[1]
    n_rows = order.shape[0]
    batch = Xb.shape[1]
    n_batches = (n_rows + batch - 1) // batch
    n_items = n_blocks(n_features, FEATURE_BLOCK)
    W, b = params(theta, n_features, ld)
    G, gb = params(grad, n_features, ld)
    M, mb = params(s1, n_features, ld)
    V, vb = params(s2, n_features, ld)
    ident = identity_list(batch)
    no_scale = theta[:0]
    lazy = indptr is not None and touched.shape[0] > 0
    solver = iopt[I_SOLVER]
    nesterov = iopt[I_NESTEROV] != 0
    for k in range(n_batches):
        start = k * batch
        m = min(batch, n_rows - start)
        lr = batch_rate(fopt, k, n_batches)
        l2 = l2_of(fopt, m)
        t += 1
        A, arows = batch_rows(X, Xb, order, ident, start, m, direct, _I0)
        # chunks of rows: gathered (their labels, weights and non-zero
        # columns, and the rows themselves unless read in place), their
        # logits, their loss and its gradient
        item = claim(sync)
        while item * LOSS_ROWS < m:
            r0 = item * LOSS_ROWS
            rows = min(LOSS_ROWS, m - r0)
            gather_item(X, Xalt, y, w, order, start, r0, rows, direct, indptr, no_scale,
                        Xb, ident, lists, counts, yb, wb, _I0)
            if indptr is not None:
                sparse_dot_rows(Z, r0, _I0, indptr, indices, data, arows[r0:], rows,
                                no_scale, W, _I0, ld)
            else:
                dot_rows(Z, r0, _I0, A, arows[r0:], rows, W, _I0, ld, lists[0],
                         counts[0], r0 // TILE_ROWS, _I1, _I0, n_features)
            add_row(Z[r0:], rows, b)
            loss_grad(Z[r0:r0 + rows, :iopt[I_N_OUT]], yb[0, r0:], Y, wb[0, r0:],
                      rows, iopt[I_LOSS], grad_scale(fopt, m), fopt[F_SMOOTH],
                      class_loss[item], class_weight[item], col_loss[item],
                      stats[item])
            item = claim(sync)
        barrier(sync, n_threads, np.int64(LINEAR_LOSS))
        if indptr is not None:
            # the whole minibatch's gradient scattered by one item; the
            # intercepts by another
            item = claim(sync)
            while item < 2:
                if item == 0:
                    sparse_acc_rows(G, _I0, indptr, indices, data, arows, m, no_scale,
                                    Z, _I0, _I0, ld)
                    if lazy:
                        n_touched[0] = touched_features(indptr, indices, arows, m,
                                                        mark, touched)
                else:
                    column_sums(Z, m, _I0, ld, gb)
                    update(b, gb, mb, vb, _I0, _I1, _I0, ld, 0.0, lr, iopt, fopt, t)
                item = claim(sync)
            barrier(sync, n_threads, np.int64(LINEAR_INTERCEPTS))
        # the weights' gradient and update, block of features by block (lazy:
        # block of touched features by block)
        item = claim(sync)
        if lazy:
            n_t = n_touched[0]
            while item * TOUCHED_BLOCK < n_t:
                i0 = item * TOUCHED_BLOCK
                step_rows(solver, W, G, M, V, touched, i0, min(i0 + TOUCHED_BLOCK, n_t),
                          mark, l2, lr, fopt[F_MOMENTUM], nesterov, fopt[F_BETA1],
                          fopt[F_BETA2], fopt[F_EPS], t)
                item = claim(sync)
        while not lazy and item < n_items:
            c0 = item * FEATURE_BLOCK
            c1 = min(c0 + FEATURE_BLOCK, n_features)
            if indptr is None:
                acc_rows(G, _I0, A, arows, m, Z, _I0, _I0, ld, lists[0], counts[0], _I0,
                         _I1, c0, c1)
            update(W, G, M, V, c0, c1, _I0, ld, l2, lr, iopt, fopt, t)
            if item == 0 and indptr is None:
                column_sums(Z, m, _I0, ld, gb)
                update(b, gb, mb, vb, _I0, _I1, _I0, ld, 0.0, lr, iopt, fopt, t)
            item = claim(sync)
        barrier(sync, n_threads, np.int64(LINEAR_UPDATE))
    return t


_epoch = subroutine(_epoch_py)


def _linear_epoch_py(tid, n_threads, sync, data, ld, params, work, sums, opts, t):
    """One epoch of minibatch training over the rows ``data.order`` (already
    shuffled), as thread ``tid`` of ``n_threads``; returns the step count.
    The arguments come in the named tuples of ``_boundary`` (``Data``,
    ``Params``, ``LinearWork``, ``Sums``, ``Options``; ``ld`` the weights'
    row width); below, their fields by name.

    Data and buffers as in ``_mlp.mlp_epoch``, but one minibatch at a time
    (buffer 0): each chunk of rows is gathered by the item that uses it.
    ``Z`` (B, ld): the logits, then the loss gradient. Options: ``iopt``
    (loss, solver, nesterov, number of real outputs) and ``fopt`` (see
    ``_batch``). Updates ``theta``, ``grad`` (left at zero), ``s1``/``s2`` and
    the buffers in place; the accumulators have one row per chunk of
    ``LOSS_ROWS`` rows (see ``_batch.loss_phase``).

    Sparse data: ``indptr``, ``indices`` and ``data`` are the CSR arrays of
    the data (see ``_sparse``), read in place, ``X`` an empty ``(0,
    n_features)`` array, ``direct`` true, and ``Xb`` and ``lists`` have no
    columns. The minibatch's gradient is then scattered into the rows of
    ``grad`` it touches by one item (item ``0`` of a phase of its own, the
    rows in order; item ``1`` steps the intercepts), before the blocks of
    features step. Dense data: the three are None, and every branch on the
    kind of data tests ``indptr is None`` itself, which Numba resolves when
    compiling for a None argument: the dense specialisation compiles no
    sparse code (see ``_mlp``).

    Lazy update (sparse data only, when ``touched`` is not empty): ``mark``
    (uint8, one per feature, all zero between minibatches) and ``touched``
    (int64, room for the most features a minibatch can touch) collect the
    minibatch's features, ``n_touched[0]`` their count; only their rows step
    (see the module docstring). Otherwise the three are empty.
    """
    X, indptr, indices, values, y, Y, w, order, Xalt, direct = data
    theta, grad, s1, s2 = params
    Xb, lists, counts, yb, wb, Z, mark, touched, n_touched = work
    class_loss, class_weight, col_loss, stats = sums
    iopt, fopt = opts
    return _epoch(tid, n_threads, sync, X, indptr, indices, values, y, Y, w, order,
                  Xalt, direct, ld, theta, grad, s1, s2, Xb, lists, counts, yb, wb,
                  Z, mark, touched, n_touched, class_loss, class_weight, col_loss,
                  stats, iopt, fopt, t)


linear_epoch = jit(_linear_epoch_py)


def _touched_features_py(indptr, indices, rows, m, mark, touched):
    """List in ``touched`` the features that the CSR rows ``rows[:m]`` hold,
    in order of first appearance (rows in order, then columns), marking each
    in ``mark``; returns their count."""
    n = 0
    for i in range(m):
        r = rows[i]
        for q in range(indptr[r], indptr[r + 1]):
            f = indices[q]
            if mark[f] == 0:
                mark[f] = 1
                touched[n] = f
                n += 1
    return n


touched_features = subroutine(_touched_features_py)


def _forward_py(tid, n_threads, sync, X, Xalt, indptr, indices, data, rows, ld,
                theta, Xb, lists, counts, Z, out):
    """The body of ``linear_forward``, on the arrays themselves."""
    _I0 = np.int64(0)
    _I1 = np.int64(1)
    n_features = X.shape[1]
    W, b = params(theta, n_features, ld)
    block = Xb.shape[1]
    n_rows = rows.shape[0]
    Xt = Xb[tid]
    Zb = Z[tid]
    ident = identity_list(block)
    no_scale = theta[:0]
    item = claim(sync)
    while item * block < n_rows:
        r0 = item * block
        m = min(block, n_rows - r0)
        if indptr is not None:
            sparse_dot_rows(Zb, _I0, _I0, indptr, indices, data, rows[r0:], m,
                            no_scale, W, _I0, ld)
        else:
            if Xalt.shape[0] > 0:  # float32 rows, widened exactly
                gather_rows(Xalt, rows, r0, m, Xt, _I0)
            else:
                gather_rows(X, rows, r0, m, Xt, _I0)
            group_lists(Xt, ident, m, lists[tid], counts[tid], _I0)
            dot_rows(Zb, _I0, _I0, Xt, ident, m, W, _I0, ld, lists[tid], counts[tid],
                     _I0, _I1, _I0, n_features)
        for i in range(m):
            for j in range(out.shape[1]):
                out[r0 + i, j] = Zb[i, j] + b[0, j]
        item = claim(sync)


_forward = subroutine(_forward_py)


def _linear_forward_py(tid, n_threads, sync, rows, ld, theta, work, out):
    """Logits of the rows ``rows.rows`` of ``rows.X`` into ``out`` (its real
    outputs), in blocks of ``Xb.shape[1]`` rows claimed by the threads of a team;
    ``Xb``, ``lists``, ``counts`` and ``Z`` hold one block per thread. A
    row's logits depend on that row alone. Sparse data: the rows of the CSR
    arrays ``indptr``, ``indices``, ``data``, read in place (see
    ``_sparse``); ``X`` is then an empty ``(0, n_features)`` array and
    ``Xb``, ``lists`` have no columns. Dense data: the three are None (see
    ``linear_epoch``), and the rows are in ``X`` (float64) or, when it is
    not empty, in ``Xalt`` (float32, widened exactly as they are copied):
    one signature for both, and float32 input needs no float64 copy.
    ``n_features`` is ``X.shape[1]`` (both have it). The arguments come in
    the named tuples of ``_boundary`` (``Rows``, ``LinearForwardWork``);
    above, their fields by name."""
    X, Xalt, indptr, indices, values, row_ids = rows
    Xb, lists, counts, Z = work
    _forward(tid, n_threads, sync, X, Xalt, indptr, indices, values, row_ids, ld,
             theta, Xb, lists, counts, Z, out)


linear_forward = jit(_linear_forward_py)
