"""Training epoch and forward pass of a multilayer perceptron, run by a team
of threads.

Layout
------
A network has ``L = len(sizes) - 1`` weight layers; layer ``l`` (0-based)
maps ``sizes[l]`` inputs to ``sizes[l + 1]`` outputs. All parameters live in
one flat vector ``theta``: layer ``l``'s weights start at ``w_off[l]`` and its
intercepts at ``b_off[l]``. The gradient and the optimizer state have the
same layout.

- A hidden layer's weights are stored in panels of ``PANEL`` columns: panel
  ``p`` holds columns ``[p * PANEL, p * PANEL + width)`` as one row-major
  ``(sizes[l], width)`` matrix, the panels one after the other. A panel is
  what one work item updates, in one contiguous sweep.
- The output layer's weights are one row-major ``(sizes[L - 1], ld)`` matrix
  (one row per hidden unit), with the outputs padded by zero columns to
  ``ld``, a multiple of ``PAD``, so its products run on whole vectors. The
  padding stays zero: its gradient is zero.
- ``ld[l]`` is the stored number of outputs (``sizes[l + 1]`` for hidden
  layers), which is also the number of intercepts.

Work split
----------
Each kernel is called once per thread of a team with the thread's index
``tid`` and the team size; the threads share every buffer and split the work
into items claimed one at a time (see ``_sync``): the panels of a layer, and
chunks of rows to gather. Every value is computed by one item in a fixed
order (see ``_gemm``), and the output layer's partial logits are added in a
fixed order, so the results are bit-identical whatever the number of
threads.

For the usual one-hidden-layer network a minibatch takes three phases:

1. item ``p``: the hidden units of panel ``p``, and their share of the
   logits (their product with the matching rows of the output weights);
2. chunks of rows: the shares added up (in a fixed order), the loss and its
   gradient;
3. item ``p`` computes the output weights' gradient for the panel's rows,
   the panel's deltas, the panel's gradient, and updates all three blocks;
   further items gather the next minibatch.

Deeper networks add one phase per extra hidden layer, forward and backward,
and update their hidden weights in a last phase.

Sparse (CSR) data takes the same phases: the first layer's products read
each row's non-zeros in place (``_sparse``), gathering a minibatch gathers
its labels and weights only, and for standardised inputs each panel's step
also leaves the centred intercepts of the next minibatch (so the panel is
swept once per minibatch, by its step). Its results are the bits of the
dense path on the same data. The CSR arrays ``indptr``, ``indices`` and
``data`` go to every kernel, None for dense data, and every function that
branches on the kind of data tests ``indptr is None`` (or ``is not None``)
on its own argument, alone or as one operand of ``and``. When that
argument is None Numba resolves the test when compiling (it prunes the
branch not taken), so the dense specialisation compiles none of the sparse
code: a cold dense fit compiles as fast as before sparse data was taken. (A
flag computed from the arrays is known at run time only, and an array
argument is not resolved either: the sparse specialisation compiles the
dense branches too, typed on the empty ``X``.)

Dropout (``fopt[F_DROPOUT]`` = ``p > 0``, training only): after the
activation, each hidden unit of each row is zeroed with probability ``p``
and otherwise scaled by ``1 / (1 - p)`` (``drop``); the backward pass applies
the same mask and scale to the deltas before the activation's derivative,
which it computes from the unscaled activation. The mask is recomputed, not
stored: it is a function of the key ``(iopt[I_SEED], iopt[I_EPOCH], the row
of the data, the unit's index across the hidden layers)`` (see ``_rng``),
so it does not depend on the threads, the minibatches or the kind of data.
With ``p = 0`` no mask is computed and the bits are those of a network
without dropout.

Activation codes are chosen in Python: ``IDENTITY`` (0), ``RELU`` (1),
``TANH`` (2), ``LOGISTIC`` (3), ``LEAKY_RELU`` (4, slope ``LEAKY_SLOPE`` for
negative inputs).
"""

import numpy as np

from ._batch import (
    F_DROPOUT,
    I_ACTIVATION,
    I_EPOCH,
    I_N_OUT,
    I_SEED,
    add_row,
    batch_rate,
    batch_rows,
    column_sums,
    gather_phase,
    l2_of,
    loss_phase,
    n_blocks,
    update,
)
from ._gemm import acc_rows, dot_rows, gather_rows, group_lists, identity_list
from ._numba import inline, jit, subroutine
from ._rng import UNIFORM_SCALE, key_word
from ._sparse import sparse_acc_rows, sparse_dot_rows, sparse_step
from ._sync import (
    BACKWARD_HIDDEN,
    BACKWARD_OUT,
    EPOCH_START,
    FORWARD,
    LOSS,
    MINIBATCH,
    barrier,
    claim,
)

IDENTITY = 0
RELU = 1
TANH = 2
LOGISTIC = 3
LEAKY_RELU = 4

ACTIVATIONS = {"identity": IDENTITY, "relu": RELU, "tanh": TANH,
               "logistic": LOGISTIC, "leaky_relu": LEAKY_RELU}

#: Slope of ``"leaky_relu"`` for negative inputs (PyTorch's default).
LEAKY_SLOPE = 0.01

#: Columns per panel of a hidden layer (and per work item).
PANEL = 64

#: The output layer's width is padded to a multiple of this (16 float32 =
#: one 64-byte vector, two float64 ones), whatever the dtype.
PAD = 16


def _panel_py(theta, sizes, w_off, l, p):
    """Panel ``p`` of hidden layer ``l``: a ``(sizes[l], width)`` view, with
    its first column."""
    c0 = p * PANEL
    width = min(PANEL, sizes[l + 1] - c0)
    start = w_off[l] + sizes[l] * c0
    return theta[start:start + sizes[l] * width].reshape((sizes[l], width)), c0


panel = subroutine(_panel_py)


def _output_weights_py(theta, sizes, w_off, b_off, ld):
    """The output layer's ``(sizes[L-1], ld)`` weights and ``(1, ld)``
    intercepts, as views."""
    l = sizes.shape[0] - 2
    W = theta[w_off[l]:w_off[l] + sizes[l] * ld[l]].reshape((sizes[l], ld[l]))
    b = theta[b_off[l]:b_off[l] + ld[l]].reshape((1, ld[l]))
    return W, b


output_weights = subroutine(_output_weights_py)


def _intercepts_py(theta, b_off, ld, l):
    """Layer ``l``'s intercepts as a ``(1, ld[l])`` view."""
    return theta[b_off[l]:b_off[l] + ld[l]].reshape((1, ld[l]))


intercepts = subroutine(_intercepts_py)


def _layer_rows_py(buf, a_off, l, n_rows, width):
    """Layer ``l``'s slot of an activation buffer as ``(n_rows, width)``."""
    return buf[a_off[l]:a_off[l] + n_rows * width].reshape((n_rows, width))


layer_rows = subroutine(_layer_rows_py)


def _bias_activate_py(Z, b, m, c0, c1, activation):
    """``Z[:m, c0:c1] = f(Z + b[c0:c1])`` in place (``b``: one row)."""
    dt = Z.dtype.type
    slope = dt(LEAKY_SLOPE)
    one = dt(1.0)
    zero = dt(0.0)
    bias = b[0, c0:c1]
    for i in range(m):
        row = Z[i, c0:c1]
        for j in range(c1 - c0):
            z = row[j] + bias[j]
            if activation == RELU:
                z = z if z > zero else zero
            elif activation == LEAKY_RELU:
                z = z if z > zero else slope * z
            elif activation == TANH:
                z = np.tanh(z)
            elif activation == LOGISTIC:
                z = one / (one + np.exp(-z))
            row[j] = z


bias_activate = subroutine(_bias_activate_py)


def _times_derivative_py(D, H, m, c0, c1, activation, hq):
    """``D[:m, c0:c1] *= f'(.)`` in place, where ``H`` holds the activation's
    output ``f(z)`` (every derivative here is a function of it) times
    ``1 / hq`` (dropout's scale, see ``drop``; ``hq`` is 1 without dropout).
    A dropped unit's delta is zero already."""
    dt = D.dtype.type
    slope = dt(LEAKY_SLOPE)
    one = dt(1.0)
    zero = dt(0.0)
    for i in range(m):
        drow = D[i, c0:c1]
        hrow = H[i, c0:c1]
        for j in range(c1 - c0):
            a = hrow[j]
            d = drow[j]
            if activation == RELU:
                d = d if a > zero else zero
            elif activation == LEAKY_RELU:
                d = d if a > zero else slope * d
            elif activation == TANH:
                a = a * hq
                d = d * (one - a * a)
            elif activation == LOGISTIC:
                a = a * hq
                d = d * a * (one - a)
            drow[j] = d


times_derivative = subroutine(_times_derivative_py)


def _drop_py(Z, m, c0, c1, rows, unit0, iopt, fopt):
    """Dropout of columns ``c0 .. c1`` of the first ``m`` rows of ``Z`` (the
    hidden units ``unit0 + c0 .. unit0 + c1`` of the data's rows ``rows``):
    each value is zeroed when the uniform of its key (see ``_rng``) falls below
    ``p = fopt[F_DROPOUT]``, and multiplied by ``1 / (1 - p)`` otherwise.
    The forward pass applies it to the activations, the backward pass to
    their deltas: the same mask and scale."""
    p = fopt[F_DROPOUT]
    zero = Z.dtype.type(0.0)
    scale = Z.dtype.type(1.0 / (1.0 - p))
    epoch_key = key_word(np.uint64(iopt[I_SEED]), iopt[I_EPOCH])
    for i in range(m):
        row_key = key_word(epoch_key, rows[i])
        row = Z[i, c0:c1]
        for j in range(c1 - c0):
            key = key_word(row_key, unit0 + c0 + j)
            if np.float64(key >> np.uint64(11)) * UNIFORM_SCALE < p:
                row[j] = zero
            else:
                row[j] *= scale


drop = subroutine(_drop_py)


def _unit_offset_py(sizes, l):
    """Index of hidden layer ``l``'s first unit across the hidden layers."""
    u = np.int64(0)
    for k in range(1, l + 1):
        u += sizes[k]
    return u


unit_offset = subroutine(_unit_offset_py)




def _transpose_panel_py(P, c0, T):
    """``T[c0 + j, f] = P[f, j]``: a panel of a hidden layer into the
    layer's transpose."""
    for f in range(P.shape[0]):
        for j in range(P.shape[1]):
            T[c0 + j, f] = P[f, j]


transpose_panel = subroutine(_transpose_panel_py)


def _transpose_view_py(Wt, t_off, ld, sizes, l):
    """Layer ``l``'s transpose, ``(ld[l], sizes[l])``."""
    return Wt[t_off[l]:t_off[l] + ld[l] * sizes[l]].reshape((ld[l], sizes[l]))


transpose_view = subroutine(_transpose_view_py)


def _forward_panel_py(theta, sizes, w_off, b_off, ld, l, p, X, xrows, m, lists,
                      counts, gstep, H, a_off, batch, activation, shift, beff):
    """Hidden units of panel ``p`` of layer ``l`` for the first ``m`` rows:
    ``f(input @ W + b)``, the input being ``X`` (layer 0, its group lists) or
    the previous layer's activations.

    Standardised inputs (``shift`` not empty): ``X`` holds the rows times
    their scale, and layer 0 subtracts ``shift @ W`` (the centring, which
    would fill the zeros of ``X``) from its intercepts, into ``beff``."""
    _I0 = np.int64(0)
    P, c0 = panel(theta, sizes, w_off, l, p)
    c1 = c0 + P.shape[1]
    Hl = layer_rows(H, a_off, l, batch, sizes[l + 1])
    dot_rows(Hl, _I0, c0, X, xrows, m, P, _I0, P.shape[1], lists, counts, _I0, gstep,
             _I0, sizes[l])
    b = intercepts(theta, b_off, ld, l)
    if l == 0 and shift.shape[0] > 0:
        centred_intercepts(P, shift, b, c0, beff)
        b = beff
    bias_activate(Hl, b, m, c0, c1, activation)
    return c0, c1


forward_panel = subroutine(_forward_panel_py, reads=("X",))


def _sparse_forward_panel_py(theta, sizes, w_off, b_off, ld, p, indptr, indices, data,
                             rows, m, scale, H, a_off, batch, activation, shift, beff):
    """``forward_panel`` of layer 0 for the CSR rows ``rows`` (see
    ``_sparse``), each value times its ``scale`` when that is not empty.
    Standardised inputs (``shift`` not empty) take the panel's centred
    intercepts from ``beff``, where the epoch's start and then each step of
    the panel (``_sparse.sparse_step``) leave them: no sweep of the panel
    here."""
    _I0 = np.int64(0)
    P, c0 = panel(theta, sizes, w_off, _I0, p)
    c1 = c0 + P.shape[1]
    Hl = layer_rows(H, a_off, _I0, batch, sizes[1])
    sparse_dot_rows(Hl, _I0, c0, indptr, indices, data, rows, m, scale, P, _I0,
                    P.shape[1])
    if shift.shape[0] > 0:
        bias_activate(Hl, beff, m, c0, c1, activation)
    else:
        bias_activate(Hl, intercepts(theta, b_off, ld, _I0), m, c0, c1, activation)
    return c0, c1


sparse_forward_panel = subroutine(_sparse_forward_panel_py)


def _centred_intercepts_py(P, shift, b, c0, beff):
    """``beff[0, c0 + j] = b[0, c0 + j] - sum_f shift[f] * P[f, j]``: the
    intercepts of panel ``P`` (first column ``c0``) for centred inputs."""
    width = P.shape[1]
    out = beff[0, c0:c0 + width]
    for j in range(width):
        out[j] = b[0, c0 + j]
    for f in range(P.shape[0]):
        cf = shift[f]
        if cf != 0:
            row = P[f]
            for j in range(width):
                out[j] -= cf * row[j]


centred_intercepts = subroutine(_centred_intercepts_py)


def _centre_gradient_py(G, shift, gb, c0):
    """``G[f, j] -= shift[f] * gb[0, c0 + j]``: the gradient of a first-layer
    panel for centred inputs, from the one of the uncentred rows and the
    intercepts' gradient (the panel's column sums of the deltas)."""
    width = G.shape[1]
    g = gb[0, c0:c0 + width]
    for f in range(G.shape[0]):
        cf = shift[f]
        if cf != 0:
            row = G[f]
            for j in range(width):
                row[j] -= cf * g[j]


centre_gradient = subroutine(_centre_gradient_py)


def _epoch_start_py(tid, n_threads, sync, X, Xalt, y, w, order, direct, indptr, scale,
                    shift, beff, sizes, w_off, b_off, ld, theta, Wt, t_off, Xb, ident,
                    lists, counts, yb, wb):
    """Before the first minibatch: the transposes of the weights (thread 0),
    for standardised sparse data (``indptr`` not None) the first layer's
    centred intercepts (one item per panel), and the first minibatch
    (everyone)."""
    _I0 = np.int64(0)
    last = sizes.shape[0] - 2
    if tid == 0:
        W, _ = output_weights(theta, sizes, w_off, b_off, ld)
        T = transpose_view(Wt, t_off, ld, sizes, last)
        for f in range(W.shape[0]):
            for j in range(W.shape[1]):
                T[j, f] = W[f, j]
        for l in range(1, last):
            for p in range(n_blocks(sizes[l + 1], PANEL)):
                P, c0 = panel(theta, sizes, w_off, l, p)
                transpose_panel(P, c0, transpose_view(Wt, t_off, ld, sizes, l))
    item = claim(sync)
    first = _I0
    if indptr is not None and shift.shape[0] > 0:
        first = n_blocks(sizes[1], PANEL)
        b = intercepts(theta, b_off, ld, _I0)
        while item < first:
            P, c0 = panel(theta, sizes, w_off, _I0, item)
            centred_intercepts(P, shift, b, c0, beff)
            item = claim(sync)
    gather_phase(sync, X, Xalt, y, w, order, _I0, min(Xb.shape[1], order.shape[0]),
                 direct,
                 indptr, scale, Xb, ident, lists, counts, yb, wb, _I0, item, first)
    barrier(sync, n_threads, np.int64(EPOCH_START))


_epoch_start = subroutine(_epoch_start_py)


def _forward_and_loss_py(n_threads, sync, sizes, w_off, b_off, ld, theta, A, arows,
                         ident, lists, counts, yb, Y, wb, dense, dense_counts, H, a_off,
                         Zp, Z, m, class_loss, class_weight, col_loss, stats, iopt,
                         fopt, shift, beff, indptr, indices, data, scale, grows):
    """The forward phases of a minibatch (hidden layer by hidden layer, each
    panel with its share of the logits), then the loss phase: the logits
    and the loss gradient into ``Z``. For sparse data (``indptr`` not None),
    the first layer reads the rows ``arows`` of the CSR arrays (times
    ``scale``). ``grows``: the minibatch's rows of the data (dropout's
    key)."""
    _I0 = np.int64(0)
    _I1 = np.int64(1)
    activation = iopt[I_ACTIVATION]
    last = sizes.shape[0] - 2
    batch = Z.shape[0]
    for l in range(last):
        item = claim(sync)
        while item < n_blocks(sizes[l + 1], PANEL):
            if l == 0:
                if indptr is not None:
                    c0, c1 = sparse_forward_panel(theta, sizes, w_off, b_off, ld, item,
                                                  indptr, indices, data, arows, m,
                                                  scale, H, a_off, batch, activation,
                                                  shift, beff)
                else:
                    c0, c1 = forward_panel(theta, sizes, w_off, b_off, ld, _I0, item,
                                           A, arows, m, lists, counts, _I1, H, a_off,
                                           batch, activation, shift, beff)
            else:
                c0, c1 = forward_panel(
                    theta, sizes, w_off, b_off, ld, l, item,
                    layer_rows(H, a_off, l - 1, batch, sizes[l]), ident, m, dense,
                    dense_counts, _I0, H, a_off, batch, activation, shift, beff)
            if fopt[F_DROPOUT] > 0.0:
                drop(layer_rows(H, a_off, l, batch, sizes[l + 1]), m, c0, c1, grows,
                     unit_offset(sizes, l), iopt, fopt)
            if l == last - 1:  # this panel's share of the logits
                Wo, bo = output_weights(theta, sizes, w_off, b_off, ld)
                Hl = layer_rows(H, a_off, l, batch, sizes[l + 1])
                dot_rows(Zp[item], _I0, _I0, Hl, ident, m, Wo, _I0, ld[last], dense,
                         dense_counts, _I0, _I0, c0, c1)
                if item == 0:
                    add_row(Zp[0], m, bo)
            item = claim(sync)
        barrier(sync, n_threads, np.int64(FORWARD))
    loss_phase(sync, Zp, n_blocks(sizes[last], PANEL), Z, yb, Y, wb, m, class_loss,
               class_weight, col_loss, stats, iopt, fopt)
    barrier(sync, n_threads, np.int64(LOSS))


_forward_and_loss = subroutine(_forward_and_loss_py)


def _sparse_panel_step_py(P, G, M, V, b, gb, mb, vb, c0, c1, indptr, indices, data,
                          rows, m, scale, D0, shift, gsum, beff, l2, lr, iopt, fopt,
                          t):
    """The gradient and the update of first-layer panel ``P`` (columns ``c0
    .. c1``) for the CSR rows ``rows`` (times ``scale``) with deltas ``D0``:
    its gradient scattered into the rows of ``G`` the minibatch touches,
    its intercepts' (the deltas' column sums, kept in ``gsum``) and
    their update, then the panel's (``_sparse.sparse_step``, which centres
    the gradient for standardised inputs and leaves the next centred
    intercepts in ``beff``). The same bits as the dense path."""
    _I0 = np.int64(0)
    _I1 = np.int64(1)
    sparse_acc_rows(G, _I0, indptr, indices, data, rows, m, scale, D0, _I0, c0,
                    c1 - c0)
    column_sums(D0, m, c0, c1, gb)
    for j in range(c1 - c0):
        gsum[j] = gb[0, c0 + j]
    update(b, gb, mb, vb, _I0, _I1, c0, c1, 0.0, lr, iopt, fopt, t)
    sparse_step(P, G, M, V, shift, gsum, b[0, c0:c1], beff[0, c0:c1], l2, lr, iopt,
                fopt, t)


_sparse_panel_step = subroutine(_sparse_panel_step_py)


def _backward_shallow_py(sync, sizes, w_off, b_off, ld, theta, grad, s1, s2, Wt, t_off,
                         A, arows, ident, lists, counts, dense, dense_counts, H, D,
                         a_off, Z, batch, m, lr, l2, iopt, fopt, t, shift, indptr,
                         indices, data, scale, gsum, beff, grows):
    """The backward phase of a one-hidden-layer network: item ``p`` does
    everything for the hidden units of panel ``p``. Returns the first item
    claimed past them. For sparse data (``indptr`` not None), the panel's
    gradient comes from the CSR rows ``arows`` (see ``mlp_epoch``)."""
    _I0 = np.int64(0)
    _I1 = np.int64(1)
    activation = iopt[I_ACTIVATION]
    n_out = iopt[I_N_OUT]
    hq = theta.dtype.type(1.0 - fopt[F_DROPOUT])  # 1 - p: see times_derivative
    n_hidden = sizes[1]
    Hl = layer_rows(H, a_off, _I0, batch, n_hidden)
    Dl = layer_rows(D, a_off, _I0, batch, n_hidden)
    Wo, bo = output_weights(theta, sizes, w_off, b_off, ld)
    Go, gbo = output_weights(grad, sizes, w_off, b_off, ld)
    Mo, mbo = output_weights(s1, sizes, w_off, b_off, ld)
    Vo, vbo = output_weights(s2, sizes, w_off, b_off, ld)
    T = transpose_view(Wt, t_off, ld, sizes, _I1)
    b = intercepts(theta, b_off, ld, _I0)
    gb = intercepts(grad, b_off, ld, _I0)
    mb = intercepts(s1, b_off, ld, _I0)
    vb = intercepts(s2, b_off, ld, _I0)
    item = claim(sync)
    while item < n_blocks(n_hidden, PANEL):
        c0 = item * PANEL
        c1 = min(c0 + PANEL, n_hidden)
        # output weights' gradient (rows c0..c1) and the panel's deltas
        acc_rows(Go, _I0, Hl, ident, m, Z, _I0, _I0, ld[1], dense, dense_counts, _I0,
                 _I0, c0, c1)
        dot_rows(Dl, _I0, c0, Z, ident, m, T, c0, c1, dense, dense_counts, _I0, _I0,
                 _I0, n_out)
        if fopt[F_DROPOUT] > 0.0:
            drop(Dl, m, c0, c1, grows, _I0, iopt, fopt)
        times_derivative(Dl, Hl, m, c0, c1, activation, hq)
        # the panel's gradient, from the minibatch
        P, _ = panel(theta, sizes, w_off, _I0, item)
        G, _ = panel(grad, sizes, w_off, _I0, item)
        M, _ = panel(s1, sizes, w_off, _I0, item)
        V, _ = panel(s2, sizes, w_off, _I0, item)
        if indptr is not None:
            _sparse_panel_step(P, G, M, V, b, gb, mb, vb, c0, c1, indptr, indices,
                               data, arows, m, scale, Dl, shift, gsum, beff, l2,
                               lr, iopt, fopt, t)
        else:
            acc_rows(G, _I0, A, arows, m, Dl, _I0, c0, c1 - c0, lists, counts, _I0,
                     _I1, _I0, sizes[0])
            column_sums(Dl, m, c0, c1, gb)
            if shift.shape[0] > 0:
                centre_gradient(G, shift, gb, c0)
            # updates: the panel (one sweep), its intercepts
            n = P.shape[0] * P.shape[1]
            update(P.reshape((1, n)), G.reshape((1, n)), M.reshape((1, n)),
                   V.reshape((1, n)), _I0, _I1, _I0, n, l2, lr, iopt, fopt, t)
            update(b, gb, mb, vb, _I0, _I1, c0, c1, 0.0, lr, iopt, fopt, t)
        # the output rows
        update(Wo, Go, Mo, Vo, c0, c1, _I0, ld[1], l2, lr, iopt, fopt, t)
        for f in range(c0, c1):
            for j in range(ld[1]):
                T[j, f] = Wo[f, j]
        if item == 0:
            column_sums(Z, m, _I0, ld[1], gbo)
            update(bo, gbo, mbo, vbo, _I0, _I1, _I0, ld[1], 0.0, lr, iopt, fopt, t)
        item = claim(sync)
    return item


_backward_shallow = subroutine(_backward_shallow_py)


def _n_update_items_py(sizes):
    """Items of the last phase of a deep network: every hidden panel."""
    n = 0
    for l in range(sizes.shape[0] - 2):
        n += n_blocks(sizes[l + 1], PANEL)
    return n


_n_update_items = subroutine(_n_update_items_py)


def _backward_deep_py(n_threads, sync, sizes, w_off, b_off, ld, theta, grad, s1, s2,
                      Wt, t_off, A, arows, ident, lists, counts, dense, dense_counts, H,
                      D, a_off, Z, batch, m, lr, l2, iopt, fopt, t, shift, indptr,
                      indices, data, scale, gsum, beff, grows):
    """The backward phases of a network with two or more hidden layers.
    Returns the first item claimed past the last phase's updates. For sparse
    data (``indptr`` not None), the first layer's gradient comes from the
    CSR rows ``arows`` (see ``mlp_epoch``)."""
    _I0 = np.int64(0)
    _I1 = np.int64(1)
    activation = iopt[I_ACTIVATION]
    n_out = iopt[I_N_OUT]
    hq = theta.dtype.type(1.0 - fopt[F_DROPOUT])  # 1 - p: see times_derivative
    last = sizes.shape[0] - 2
    # output layer: its gradient, the last hidden layer's deltas, its update
    n_units = sizes[last]
    Hl = layer_rows(H, a_off, last - 1, batch, n_units)
    Dl = layer_rows(D, a_off, last - 1, batch, n_units)
    Wo, bo = output_weights(theta, sizes, w_off, b_off, ld)
    Go, gbo = output_weights(grad, sizes, w_off, b_off, ld)
    Mo, mbo = output_weights(s1, sizes, w_off, b_off, ld)
    Vo, vbo = output_weights(s2, sizes, w_off, b_off, ld)
    T = transpose_view(Wt, t_off, ld, sizes, last)
    item = claim(sync)
    while item < n_blocks(n_units, PANEL):
        c0 = item * PANEL
        c1 = min(c0 + PANEL, n_units)
        acc_rows(Go, _I0, Hl, ident, m, Z, _I0, _I0, ld[last], dense, dense_counts,
                 _I0,
                 _I0, c0, c1)
        dot_rows(Dl, _I0, c0, Z, ident, m, T, c0, c1, dense, dense_counts, _I0, _I0,
                 _I0,
                 n_out)
        if fopt[F_DROPOUT] > 0.0:
            drop(Dl, m, c0, c1, grows, unit_offset(sizes, last - 1), iopt, fopt)
        times_derivative(Dl, Hl, m, c0, c1, activation, hq)
        update(Wo, Go, Mo, Vo, c0, c1, _I0, ld[last], l2, lr, iopt, fopt, t)
        for f in range(c0, c1):
            for j in range(ld[last]):
                T[j, f] = Wo[f, j]
        if item == 0:
            column_sums(Z, m, _I0, ld[last], gbo)
            update(bo, gbo, mbo, vbo, _I0, _I1, _I0, ld[last], 0.0, lr, iopt, fopt, t)
        item = claim(sync)
    barrier(sync, n_threads, np.int64(BACKWARD_OUT))
    # hidden layers l >= 1: their gradients, and the deltas of layer l - 1
    for l in range(last - 1, 0, -1):
        n_grad = n_blocks(sizes[l + 1], PANEL)
        n_prev = n_blocks(sizes[l], PANEL)
        Dl = layer_rows(D, a_off, l, batch, sizes[l + 1])
        Hp = layer_rows(H, a_off, l - 1, batch, sizes[l])
        Dp = layer_rows(D, a_off, l - 1, batch, sizes[l])
        gb = intercepts(grad, b_off, ld, l)
        item = claim(sync)
        while item < n_grad + n_prev:
            if item < n_grad:
                G, c0 = panel(grad, sizes, w_off, l, item)
                acc_rows(G, _I0, Hp, ident, m, Dl, _I0, c0, G.shape[1], dense,
                         dense_counts,
                         _I0, _I0, _I0, sizes[l])
                column_sums(Dl, m, c0, c0 + G.shape[1], gb)
            else:
                c0 = (item - n_grad) * PANEL
                c1 = min(c0 + PANEL, sizes[l])
                T = transpose_view(Wt, t_off, ld, sizes, l)
                dot_rows(Dp, _I0, c0, Dl, ident, m, T, c0, c1, dense, dense_counts, _I0,
                         _I0, _I0, sizes[l + 1])
                if fopt[F_DROPOUT] > 0.0:
                    drop(Dp, m, c0, c1, grows, unit_offset(sizes, l - 1), iopt, fopt)
                times_derivative(Dp, Hp, m, c0, c1, activation, hq)
            item = claim(sync)
        barrier(sync, n_threads, np.int64(BACKWARD_HIDDEN))
    # the first layer's gradient, then every hidden panel's update
    item = claim(sync)
    while item < _n_update_items(sizes):
        l = 0
        p = item
        while p >= n_blocks(sizes[l + 1], PANEL):
            p -= n_blocks(sizes[l + 1], PANEL)
            l += 1
        P, c0 = panel(theta, sizes, w_off, l, p)
        G, _ = panel(grad, sizes, w_off, l, p)
        M, _ = panel(s1, sizes, w_off, l, p)
        V, _ = panel(s2, sizes, w_off, l, p)
        c1 = c0 + P.shape[1]
        if l == 0 and indptr is not None:
            _sparse_panel_step(P, G, M, V, intercepts(theta, b_off, ld, _I0),
                               intercepts(grad, b_off, ld, _I0),
                               intercepts(s1, b_off, ld, _I0),
                               intercepts(s2, b_off, ld, _I0), c0, c1, indptr, indices,
                               data, arows, m, scale,
                               layer_rows(D, a_off, _I0, batch, sizes[1]), shift,
                               gsum, beff, l2, lr, iopt, fopt, t)
            item = claim(sync)
            continue
        if l == 0:
            D0 = layer_rows(D, a_off, _I0, batch, sizes[1])
            acc_rows(G, _I0, A, arows, m, D0, _I0, c0, c1 - c0, lists, counts, _I0,
                     _I1,
                     _I0,
                     sizes[0])
            gb = intercepts(grad, b_off, ld, _I0)
            column_sums(D0, m, c0, c1, gb)
            if shift.shape[0] > 0:
                centre_gradient(G, shift, gb, c0)
        n = P.shape[0] * P.shape[1]
        update(P.reshape((1, n)), G.reshape((1, n)), M.reshape((1, n)),
               V.reshape((1, n)), _I0, _I1, _I0, n, l2, lr, iopt, fopt, t)
        update(intercepts(theta, b_off, ld, l), intercepts(grad, b_off, ld, l),
               intercepts(s1, b_off, ld, l), intercepts(s2, b_off, ld, l), _I0, _I1, c0,
               c1, 0.0, lr, iopt, fopt, t)
        if l >= 1:
            transpose_panel(P, c0, transpose_view(Wt, t_off, ld, sizes, l))
        item = claim(sync)
    return item


_backward_deep = subroutine(_backward_deep_py)


def _epoch_py(tid, n_threads, sync, X, indptr, indices, data, y, Y, w, order, Xalt,
              direct, scale, shift, beff, sizes, w_off, b_off, ld, theta, grad, s1, s2,
              Wt, t_off, Xb, lists, counts, yb, wb, dense, dense_counts, H, D, a_off,
              Zp, Z, class_loss, class_weight, col_loss, stats, iopt, fopt, t, deep):
    """The epoch of ``mlp_epoch`` (``deep`` None: one hidden layer) and
    ``mlp_epoch_deep`` (``deep`` not None: two or more). Each entry point
    passes its own, so Numba compiles only the branch of its depth (it
    prunes branches on whether an argument is None, as for ``indptr``)."""
    n_rows = order.shape[0]
    batch = Xb.shape[1]
    n_batches = (n_rows + batch - 1) // batch
    ident = identity_list(batch)
    gsum = np.empty(PANEL, dtype=theta.dtype)
    _epoch_start(tid, n_threads, sync, X, Xalt, y, w, order, direct, indptr, scale,
                 shift, beff, sizes, w_off, b_off, ld, theta, Wt, t_off, Xb, ident,
                 lists, counts, yb, wb)
    for k in range(n_batches):
        cur = k % 2
        m = min(batch, n_rows - k * batch)
        t += 1
        A, arows = batch_rows(X, Xb, order, ident, k * batch, m, direct, cur)
        grows = order[k * batch:k * batch + m]
        _forward_and_loss(n_threads, sync, sizes, w_off, b_off, ld, theta, A, arows,
                          ident, lists[cur], counts[cur], yb[cur], Y, wb[cur], dense,
                          dense_counts, H, a_off, Zp, Z, m, class_loss, class_weight,
                          col_loss, stats, iopt, fopt, shift, beff, indptr,
                          indices, data, scale, grows)
        if deep is not None:
            item = _backward_deep(n_threads, sync, sizes, w_off, b_off, ld, theta,
                                  grad, s1, s2, Wt, t_off, A, arows, ident, lists[cur],
                                  counts[cur], dense, dense_counts, H, D, a_off, Z,
                                  batch, m, batch_rate(fopt, k, n_batches),
                                  l2_of(fopt, m), iopt, fopt, t, shift, indptr,
                                  indices, data, scale, gsum, beff, grows)
            first = _n_update_items(sizes)
        else:
            item = _backward_shallow(sync, sizes, w_off, b_off, ld, theta, grad, s1,
                                     s2, Wt, t_off, A, arows, ident, lists[cur],
                                     counts[cur], dense, dense_counts, H, D, a_off, Z,
                                     batch, m, batch_rate(fopt, k, n_batches),
                                     l2_of(fopt, m), iopt, fopt, t, shift, indptr,
                                     indices, data, scale, gsum, beff, grows)
            first = n_blocks(sizes[1], PANEL)
        if k + 1 < n_batches:
            start = (k + 1) * batch
            gather_phase(sync, X, Xalt, y, w, order, start, min(batch, n_rows - start),
                         direct, indptr, scale, Xb, ident, lists, counts, yb, wb,
                         1 - cur, item, first)
        barrier(sync, n_threads, np.int64(MINIBATCH))
    return t


_epoch = subroutine(_epoch_py)


def _epoch_of_py(tid, n_threads, sync, data, net, params, work, sums, opts, t, deep):
    """``_epoch`` on the named tuples of ``mlp_epoch`` (``deep``: as there),
    unpacked here for both entry points. Inlined into each (Numba copies its
    few statements there), so the epoch's body is one call below the entry
    point instead of two; compiled as a subroutine it cost a cold MLP fit
    about 0.1-0.2 s more."""
    X, indptr, indices, values, y, Y, w, order, Xalt, direct = data
    sizes, w_off, b_off, ld, t_off, a_off, scale, shift = net
    theta, grad, s1, s2 = params
    Wt, beff, Xb, lists, counts, yb, wb, dense, dense_counts, H, D, Zp, Z = work
    class_loss, class_weight, col_loss, stats = sums
    iopt, fopt = opts
    return _epoch(tid, n_threads, sync, X, indptr, indices, values, y, Y, w, order,
                  Xalt, direct, scale, shift, beff, sizes, w_off, b_off, ld, theta,
                  grad, s1, s2, Wt, t_off, Xb, lists, counts, yb, wb, dense,
                  dense_counts, H, D, a_off, Zp, Z, class_loss, class_weight,
                  col_loss, stats, iopt, fopt, t, deep)


_epoch_of = inline(_epoch_of_py)


def _mlp_epoch_py(tid, n_threads, sync, data, net, params, work, sums, opts, t):
    """One epoch of minibatch training of a one-hidden-layer network over the
    rows ``data.order`` (already shuffled), as thread ``tid`` of
    ``n_threads``; returns the step count. The arguments come in the named
    tuples of ``_boundary`` (``Data``, ``Net``, ``Params``, ``MLPWork``,
    ``Sums``, ``Options``); below, their fields by name.

    Buffers (shared by the team, allocated once per fit; ``B`` = batch size):
    ``Xb`` (2, B, n_features), ``lists`` (2, B/4, n_features), ``counts``
    (2, B/4), ``yb`` and ``wb`` (2, B): two minibatches, the one in use and
    the next one being gathered. ``H`` and ``D``: the hidden activations and
    their deltas, layer ``l`` at ``a_off[l]`` as (B, sizes[l + 1]). ``Zp``
    (n_panels, B, ld[-1]): partial logits; ``Z`` (B, ld[-1]): the logits,
    then the loss gradient. ``Wt``: the transpose of each
    layer ``l >= 1`` at ``t_off[l]`` as (ld[l], sizes[l]). ``dense``/
    ``dense_counts``: the list ``0, 1, 2, ...`` (at least as long as the
    widest layer) for dense inputs. The accumulators (``class_loss``... see
    ``loss_grad``) have one row per chunk of the loss phase (see ``_batch``);
    added up, they give the epoch's figures (each minibatch's loss measured
    before its update).

    Updates ``theta``, ``grad`` (left at zero), ``s1``/``s2``, ``Wt`` and the
    buffers in place. ``mlp_epoch_deep`` does the same for deeper networks;
    both run ``_epoch`` (the depth a constant of each, so each compiles the
    backward pass of its own depth only).

    Dense data: ``X`` holds the rows in the model's dtype (read in place when
    ``direct``), or is empty when they are in the other float dtype, in
    ``Xalt`` (copied and cast into ``Xb`` per minibatch; see
    ``_batch.gather_item``). The engine passes each input array read-only
    and in one type per model dtype (``_engine._models.KernelData``), so each
    entry point compiles once per model dtype and kind of data.

    Sparse data: ``indptr``, ``indices`` and ``data`` are the CSR arrays of
    the data (see ``_sparse``), read in place through ``order``; ``X`` and
    ``Xalt`` are empty ``(0, n_features)`` arrays, ``direct`` is true,
    ``Xb`` and ``lists`` have no columns (gathering a minibatch gathers its
    labels and weights only) and ``scale`` is empty: the engine hands the
    values over already scaled (``_engine._models.KernelData``), while
    ``shift`` keeps the centring. The first layer's products then run
    over each row's non-zeros, and its panels step through
    ``_sparse.sparse_step``, which also leaves the centred intercepts of the
    next minibatch in ``beff``. Dense data: the three are None, so that the
    dense specialisation compiles no sparse code (see the module's
    docstring).
    """
    return _epoch_of(tid, n_threads, sync, data, net, params, work, sums, opts, t,
                     None)


def _mlp_epoch_deep_py(tid, n_threads, sync, data, net, params, work, sums, opts, t):
    """``mlp_epoch`` for a network with two or more hidden layers."""
    return _epoch_of(tid, n_threads, sync, data, net, params, work, sums, opts, t,
                     net.sizes)


mlp_epoch = jit(_mlp_epoch_py)
mlp_epoch_deep = jit(_mlp_epoch_deep_py)


def _forward_py(tid, n_threads, sync, X, Xalt, indptr, indices, data, rows, sizes,
                w_off, b_off, ld, theta, activation, Xb, lists, counts, H, a_off,
                dense, dense_counts, out):
    """The body of ``mlp_forward``, on the arrays themselves."""
    _I0 = np.int64(0)
    _I1 = np.int64(1)
    last = sizes.shape[0] - 2
    block = Xb.shape[1]
    n_rows = rows.shape[0]
    Xt = Xb[tid]
    Ht = H[tid]
    ident = identity_list(block)
    no_shift = theta[:0]  # standardisation is folded into theta
    beff = intercepts(theta, b_off, ld, _I0)  # not written without a shift
    item = claim(sync)
    while item * block < n_rows:
        r0 = item * block
        m = min(block, n_rows - r0)
        if indptr is None:
            if Xalt.shape[0] > 0:  # float32 rows, widened exactly
                gather_rows(Xalt, rows, r0, m, Xt, _I0)
            else:
                gather_rows(X, rows, r0, m, Xt, _I0)
            group_lists(Xt, ident, m, lists[tid], counts[tid], _I0)
        for l in range(last):
            for p in range(n_blocks(sizes[l + 1], PANEL)):
                if l == 0:
                    if indptr is not None:
                        sparse_forward_panel(theta, sizes, w_off, b_off, ld, p, indptr,
                                             indices, data, rows[r0:], m, no_shift, Ht,
                                             a_off, block, activation, no_shift, beff)
                    else:
                        forward_panel(theta, sizes, w_off, b_off, ld, _I0, p, Xt, ident,
                                      m, lists[tid], counts[tid], _I1, Ht, a_off, block,
                                      activation, no_shift, beff)
                else:
                    forward_panel(theta, sizes, w_off, b_off, ld, l, p,
                                  layer_rows(Ht, a_off, l - 1, block, sizes[l]), ident,
                                  m,
                                  dense, dense_counts, _I0, Ht, a_off, block,
                                  activation, no_shift, beff)
        Wo, bo = output_weights(theta, sizes, w_off, b_off, ld)
        Zo = layer_rows(Ht, a_off, last, block, ld[last])
        Hl = layer_rows(Ht, a_off, last - 1, block, sizes[last])
        dot_rows(Zo, _I0, _I0, Hl, ident, m, Wo, _I0, ld[last], dense, dense_counts,
                 _I0,
                 _I0, _I0,
                 sizes[last])
        for i in range(m):
            for j in range(out.shape[1]):
                out[r0 + i, j] = Zo[i, j] + bo[0, j]
        item = claim(sync)


_forward = subroutine(_forward_py)


def _mlp_forward_py(tid, n_threads, sync, rows, layout, theta, activation, work, out):
    """Logits of the rows ``rows.rows`` of ``rows.X`` into ``out`` (one row
    each, its real outputs), in blocks of ``Xb.shape[1]`` rows claimed by the
    threads of a team. ``Xb``, ``lists``, ``counts`` and ``H`` hold one block per
    thread (first index ``tid``); ``H`` has a slot for every layer, the
    output one included. Every buffer is in ``theta``'s dtype. A row's
    logits depend on that row alone. Sparse data: the rows of the CSR
    arrays ``indptr``, ``indices``, ``data``, read in place (see
    ``_sparse``); ``X`` is then an empty ``(0, n_features)`` array and
    ``Xb``, ``lists`` have no columns. Dense data: the three are None (see
    the module's docstring), and the rows are in ``X`` (float64) or, when it
    is not empty, in ``Xalt`` (float32, widened exactly as they are copied):
    one signature for both, and float32 input needs no float64 copy. The
    arguments come in the named tuples of ``_boundary`` (``Rows``,
    ``Layout``, ``ForwardWork``); above, their fields by name."""
    X, Xalt, indptr, indices, values, row_ids = rows
    sizes, w_off, b_off, ld, a_off = layout
    Xb, lists, counts, H, dense, dense_counts = work
    _forward(tid, n_threads, sync, X, Xalt, indptr, indices, values, row_ids, sizes,
             w_off, b_off, ld, theta, activation, Xb, lists, counts, H, a_off, dense,
             dense_counts, out)


mlp_forward = jit(_mlp_forward_py)
