"""The NumPy side of the MLP's parameter layout: where each layer's weights
and intercepts sit in the flat vector ``theta`` that the kernels
(``_kernels._mlp``) train, ways in and out of it, and the float64 NumPy
forward pass the prediction falls back on for rows that overflow. Kept out of
the kernel modules, which hold only compiled code and its constants.

``theta`` holds, layer by layer, the weights then the intercepts. A hidden
layer's weights are stored in panels of ``PANEL`` columns, each a row-major
``(n_in, width)`` block, so that a work item reads one contiguous block; the
output layer's are one row-major ``(n_in, ld)`` block, its width padded to a
multiple of ``PAD``.
"""

import numpy as np

from .._kernels._mlp import LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, PAD, PANEL, RELU, TANH

__all__ = ["forward_numpy", "layout", "pack", "put_rows", "unpack", "unpack_layer"]


def layout(sizes):
    """Offsets of each layer in ``theta``.

    Returns ``(w_off, b_off, ld, n_params)``: int64 arrays of length
    ``len(sizes) - 1`` (``ld``: the stored width of each layer) and the
    length of ``theta``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n_layers = len(sizes) - 1
    w_off = np.empty(n_layers, dtype=np.int64)
    b_off = np.empty(n_layers, dtype=np.int64)
    ld = sizes[1:].copy()
    ld[-1] = -(-ld[-1] // PAD) * PAD
    pos = 0
    for l in range(n_layers):
        w_off[l] = pos
        pos += sizes[l] * ld[l]
        b_off[l] = pos
        pos += ld[l]
    return w_off, b_off, ld, int(pos)


def unpack(theta, sizes):
    """The weights and intercepts of each layer, as row-major ``(n_in,
    n_out)`` arrays and vectors (copies, without padding)."""
    return [unpack_layer(theta, sizes, l) for l in range(len(sizes) - 1)]


def unpack_layer(theta, sizes, l):
    """Layer ``l``'s ``(W, b)`` of ``unpack``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    w_off, b_off, ld, _ = layout(sizes)
    n_in, n_out = int(sizes[l]), int(sizes[l + 1])
    if l == len(sizes) - 2:  # a view of theta: copied
        W = np.array(theta[w_off[l]:w_off[l] + n_in * ld[l]].reshape(n_in, ld[l])[
            :, :n_out])
    else:
        W = np.empty((n_in, n_out), dtype=theta.dtype)
        for c0 in range(0, n_out, PANEL):
            width = min(PANEL, n_out - c0)
            start = w_off[l] + n_in * c0
            W[:, c0:c0 + width] = theta[start:start + n_in * width].reshape(
                n_in, width)
    return W, theta[b_off[l]:b_off[l] + n_out].copy()


def pack(weights, dtype):
    """``theta`` from ``[(W, b), ...]`` (the inverse of ``unpack``)."""
    sizes = [weights[0][0].shape[0]] + [W.shape[1] for W, _ in weights]
    theta = np.zeros(layout(sizes)[3], dtype=dtype)
    for l, (W, b) in enumerate(weights):
        put_rows(theta, sizes, l, 0, W, b)
    return theta


def put_rows(theta, sizes, l, r0, W_rows, b=None):
    """Store rows ``r0 ..`` of layer ``l``'s row-major weights (and, when
    given, its intercepts) into ``theta`` in place."""
    sizes = np.asarray(sizes, dtype=np.int64)
    w_off, b_off, ld, _ = layout(sizes)
    n_in, n_out = int(sizes[l]), int(sizes[l + 1])
    r1 = r0 + W_rows.shape[0]
    if l == len(sizes) - 2:
        theta[w_off[l]:w_off[l] + n_in * ld[l]].reshape(n_in, ld[l])[
            r0:r1, :n_out] = W_rows
    else:
        for c0 in range(0, n_out, PANEL):
            width = min(PANEL, n_out - c0)
            start = w_off[l] + n_in * c0
            theta[start:start + n_in * width].reshape(n_in, width)[r0:r1] = \
                W_rows[:, c0:c0 + width]
    if b is not None:
        theta[b_off[l]:b_off[l] + n_out] = b


def forward_numpy(X, weights, activation):
    """Logits of ``X`` by NumPy, in the dtype of ``X`` (``np.longdouble``
    for the rows whose float64 logits overflow). ``weights`` is a list of
    ``(W, b)`` per layer; hidden layers apply ``activation`` (a code)."""
    dt = X.dtype.type
    H = X
    for l, (W, b) in enumerate(weights):
        H = H @ W.astype(X.dtype) + b.astype(X.dtype)
        if l == len(weights) - 1:
            break
        if activation == RELU:
            H = np.maximum(H, dt(0))
        elif activation == LEAKY_RELU:
            H = np.where(H > 0, H, dt(LEAKY_SLOPE) * H)
        elif activation == TANH:
            H = np.tanh(H)
        elif activation == LOGISTIC:
            H = dt(1) / (dt(1) + np.exp(-H))
    return H

