"""Forward pass, backward pass and training epoch of a multilayer perceptron.

Layout
------
A network has ``L = len(sizes) - 1`` layers; layer ``l`` (1-based) maps
``sizes[l - 1]`` inputs to ``sizes[l]`` outputs. All parameters live in one
flat vector ``theta`` (so the optimizers of ``_optim`` serve it unchanged):
layer ``l``'s weights ``W_l``, shape ``(sizes[l - 1], sizes[l])`` row-major,
start at ``w_off[l - 1]`` and its intercepts at ``b_off[l - 1]``. The gradient
``grad`` has the same layout.

Activations of a minibatch live in one flat buffer ``acts``: the output of
layer ``l`` (after its activation function; the logits for the last layer)
is ``acts[a_off[l - 1]:]`` viewed as ``(m, sizes[l])`` for a batch of ``m``
rows. The backward pass overwrites each slot with the gradient of the loss
with respect to that layer's pre-activation, so the only extra buffer is
``D`` (one hidden layer's worth) for the product ``delta @ W.T``.

Matrix products go to BLAS through ``np.dot`` with preallocated outputs;
bias, activation and its derivative are fused loops. Nothing is allocated per
minibatch.

Activation codes are chosen in Python: ``IDENTITY`` (0), ``RELU`` (1),
``TANH`` (2), ``LOGISTIC`` (3), ``LEAKY_RELU`` (4, slope ``LEAKY_SLOPE`` for
negative inputs).
"""

import numpy as np

from ._linear import gather
from ._losses import loss_grad
from ._numba import jit
from ._optim import step
from ._rng import shuffle

IDENTITY = 0
RELU = 1
TANH = 2
LOGISTIC = 3
LEAKY_RELU = 4

ACTIVATIONS = {"identity": IDENTITY, "relu": RELU, "tanh": TANH,
               "logistic": LOGISTIC, "leaky_relu": LEAKY_RELU}

#: Slope of ``"leaky_relu"`` for negative inputs (PyTorch's default).
LEAKY_SLOPE = 0.01


def layout(sizes):
    """Offsets of the weights and intercepts of each layer in ``theta``.

    Returns ``(w_off, b_off, n_params)`` with ``w_off``/``b_off`` int64 arrays
    of length ``len(sizes) - 1``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n_layers = len(sizes) - 1
    w_off = np.empty(n_layers, dtype=np.int64)
    b_off = np.empty(n_layers, dtype=np.int64)
    pos = 0
    for l in range(n_layers):
        w_off[l] = pos
        pos += sizes[l] * sizes[l + 1]
        b_off[l] = pos
        pos += sizes[l + 1]
    return w_off, b_off, int(pos)


def act_layout(sizes, n_rows):
    """Offsets of each layer's output in an activation buffer for ``n_rows``
    rows; returns ``(a_off, total_length)``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    a_off = np.empty(len(sizes) - 1, dtype=np.int64)
    pos = 0
    for l in range(1, len(sizes)):
        a_off[l - 1] = pos
        pos += n_rows * sizes[l]
    return a_off, int(pos)


def _bias_activate_py(Z, b, activation):
    """``Z = f(Z + b)`` in place, row by row."""
    dt = Z.dtype.type
    slope = dt(LEAKY_SLOPE)
    one = dt(1.0)
    zero = dt(0.0)
    n, k = Z.shape
    for i in range(n):
        for j in range(k):
            z = Z[i, j] + b[j]
            if activation == RELU:
                z = z if z > zero else zero
            elif activation == LEAKY_RELU:
                z = z if z > zero else slope * z
            elif activation == TANH:
                z = np.tanh(z)
            elif activation == LOGISTIC:
                z = one / (one + np.exp(-z))
            Z[i, j] = z


bias_activate = jit(_bias_activate_py)


def _activation_backward_py(A, D, activation):
    """``A = D * f'(.)`` in place, where ``A`` holds the activation's output
    ``f(z)`` (every derivative here is a function of it)."""
    dt = A.dtype.type
    slope = dt(LEAKY_SLOPE)
    one = dt(1.0)
    zero = dt(0.0)
    n, k = A.shape
    for i in range(n):
        for j in range(k):
            a = A[i, j]
            d = D[i, j]
            if activation == RELU:
                d = d if a > zero else zero
            elif activation == LEAKY_RELU:
                d = d if a > zero else slope * d
            elif activation == TANH:
                d = d * (one - a * a)
            elif activation == LOGISTIC:
                d = d * a * (one - a)
            A[i, j] = d


activation_backward = jit(_activation_backward_py)


def _param_views_py(theta, sizes, w_off, b_off, l):
    """Weights and intercepts of layer ``l`` (0-based) as views of ``theta``."""
    n_in = sizes[l]
    n_out = sizes[l + 1]
    W = theta[w_off[l]:w_off[l] + n_in * n_out].reshape((n_in, n_out))
    b = theta[b_off[l]:b_off[l] + n_out]
    return W, b


param_views = jit(_param_views_py)


def _act_view_py(acts, a_off, sizes, l, m):
    """Output of layer ``l`` (0-based) for a batch of ``m`` rows."""
    k = sizes[l + 1]
    return acts[a_off[l]:a_off[l] + m * k].reshape((m, k))


act_view = jit(_act_view_py)


def _forward_batch_py(Xv, theta, sizes, w_off, b_off, acts, a_off, activation):
    """Forward pass of the rows ``Xv``; the last slot of ``acts`` gets the
    logits. Hidden layers apply ``activation``; the output layer none."""
    m = Xv.shape[0]
    n_layers = sizes.shape[0] - 1
    W, b = param_views(theta, sizes, w_off, b_off, 0)
    H = act_view(acts, a_off, sizes, 0, m)
    np.dot(Xv, W, H)
    bias_activate(H, b, activation if n_layers > 1 else IDENTITY)
    for l in range(1, n_layers):
        W, b = param_views(theta, sizes, w_off, b_off, l)
        A = act_view(acts, a_off, sizes, l - 1, m)
        H = act_view(acts, a_off, sizes, l, m)
        np.dot(A, W, H)
        bias_activate(H, b, activation if l < n_layers - 1 else IDENTITY)


forward_batch = jit(_forward_batch_py)


def _layer_grad_py(A_in, delta, W, gW, gb, alpha):
    """``gW = A_in.T @ delta + alpha * W`` and ``gb`` = column sums of ``delta``."""
    np.dot(A_in.T, delta, gW)
    if alpha != 0.0:
        a = gW.dtype.type(alpha)
        n_in, n_out = W.shape
        for f in range(n_in):
            for j in range(n_out):
                gW[f, j] += a * W[f, j]
    gb[:] = 0.0
    m, n_out = delta.shape
    for i in range(m):
        for j in range(n_out):
            gb[j] += delta[i, j]


layer_grad = jit(_layer_grad_py)


def _backward_batch_py(Xv, theta, grad, sizes, w_off, b_off, acts, a_off, D,
                       activation, alpha):
    """Backward pass: the last slot of ``acts`` must hold dLoss/dlogits (from
    ``loss_grad``). Fills ``grad`` (with ``alpha * W`` added to each weight
    gradient) and overwrites the hidden slots of ``acts`` with their deltas."""
    m = Xv.shape[0]
    n_layers = sizes.shape[0] - 1
    for l in range(n_layers - 1, 0, -1):
        W, _ = param_views(theta, sizes, w_off, b_off, l)
        gW, gb = param_views(grad, sizes, w_off, b_off, l)
        delta = act_view(acts, a_off, sizes, l, m)
        A = act_view(acts, a_off, sizes, l - 1, m)
        layer_grad(A, delta, W, gW, gb, alpha)
        Dv = D[:m * sizes[l]].reshape((m, sizes[l]))
        np.dot(delta, W.T, Dv)
        activation_backward(A, Dv, activation)
    W, _ = param_views(theta, sizes, w_off, b_off, 0)
    gW, gb = param_views(grad, sizes, w_off, b_off, 0)
    layer_grad(Xv, act_view(acts, a_off, sizes, 0, m), W, gW, gb, alpha)


backward_batch = jit(_backward_batch_py)


def _mlp_epoch_py(X, y, w, order, do_shuffle, rng_state, sizes, w_off, b_off,
                  theta, grad, s1, s2, Xb, yb, wb, acts, a_off, D, activation,
                  loss, alpha, lr0, lr1, solver, momentum, nesterov, beta1,
                  beta2, eps, t, class_loss, class_weight, col_loss, stats):
    """Run one epoch of minibatch training; returns the updated step count.

    Visits the rows that ``order`` lists, ``Xb.shape[0]`` at a time (shuffled
    first when ``do_shuffle``). For each minibatch of ``m`` rows: gather (and
    cast to the model's dtype), forward, loss and per-class loss (see
    ``loss_grad``, measured before the update), backward with the L2 term
    ``alpha / m * W`` (scikit-learn's scaling of ``alpha``), and one optimizer
    step. The learning rate moves linearly from ``lr0`` to ``lr1`` over the
    epoch. Updates ``theta``, ``grad``, ``s1``/``s2``, the buffers, ``order``,
    ``rng_state`` and the accumulators in place.
    """
    n_samples = order.shape[0]
    batch_size = Xb.shape[0]
    n_layers = sizes.shape[0] - 1
    if do_shuffle:
        shuffle(order, rng_state)
    n_batches = (n_samples + batch_size - 1) // batch_size
    for k in range(n_batches):
        start = k * batch_size
        m = min(batch_size, n_samples - start)
        gather(X, y, w, order, start, m, Xb, yb, wb)
        Xv = Xb[:m]
        forward_batch(Xv, theta, sizes, w_off, b_off, acts, a_off, activation)
        logits = act_view(acts, a_off, sizes, n_layers - 1, m)
        loss_grad(logits, yb, wb, m, loss, 1.0 / m, class_loss, class_weight,
                  col_loss, stats)
        backward_batch(Xv, theta, grad, sizes, w_off, b_off, acts, a_off, D,
                       activation, alpha / m)
        lr = lr0 + (lr1 - lr0) * k / n_batches
        t += 1
        step(solver, theta, grad, s1, s2, lr, momentum, nesterov, beta1, beta2,
             eps, t)
    return t


mlp_epoch = jit(_mlp_epoch_py)


def _mlp_forward_py(X, theta, sizes, w_off, b_off, activation, out):
    """Logits of the rows of ``X`` (already in the model's dtype) into
    ``out``, shape ``(n_rows, sizes[-1])``; allocates one activation buffer
    for the block."""
    m = X.shape[0]
    a_off = np.empty(sizes.shape[0] - 1, dtype=np.int64)
    pos = 0
    for l in range(1, sizes.shape[0]):
        a_off[l - 1] = pos
        pos += m * sizes[l]
    acts = np.empty(pos, dtype=theta.dtype)
    forward_batch(X, theta, sizes, w_off, b_off, acts, a_off, activation)
    out[:, :] = act_view(acts, a_off, sizes, sizes.shape[0] - 2, m)


mlp_forward = jit(_mlp_forward_py)


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
