"""One training epoch of a linear classifier (softmax or one-vs-rest logistic).

Parameters live in one flat vector ``theta``: the weights ``W`` of shape
(n_features, n_out), row-major, followed by the ``n_out`` intercepts. The
logits of a block ``X`` are ``X @ W + b``.
"""

import numpy as np

from ._losses import loss_grad
from ._numba import jit
from ._optim import step
from ._rng import shuffle


def _gather_py(X, y, w, order, start, m, Xb, yb, wb):
    """Copy rows ``order[start:start + m]`` of ``X``/``y``/``w`` into the batch buffers."""
    n_features = X.shape[1]
    for i in range(m):
        r = order[start + i]
        for f in range(n_features):
            Xb[i, f] = X[r, f]
        yb[i] = y[r]
        wb[i] = w[r]


gather = jit(_gather_py)


def _linear_epoch_py(X, y, w, order, do_shuffle, rng_state, theta, grad, s1, s2,
                     Xb, Z, yb, wb, n_out, loss, alpha, lr0, lr1, solver,
                     momentum, nesterov, beta1, beta2, eps, t, class_loss,
                     class_weight, col_loss, stats):
    """Run one epoch of minibatch training; returns the updated step count.

    The epoch visits the rows that ``order`` lists (all of ``X``, or its
    training part when a validation set is held out), ``batch_size`` at a time.
    Updates in place: ``theta``, ``grad``, the solver state ``s1``/``s2``, the
    batch buffers ``Xb``/``Z``/``yb``/``wb``, ``order`` (shuffled when
    ``do_shuffle``), ``rng_state``, and the accumulators ``class_loss``,
    ``class_weight``, ``col_loss`` and ``stats`` (see ``loss_grad``), which hold
    the loss of each minibatch measured before its update. The learning rate
    moves linearly from ``lr0`` to ``lr1`` over the epoch's batches. The L2
    penalty ``alpha / 2 * ||W||^2`` enters the gradient, not the accumulators.
    """
    n_samples = order.shape[0]
    n_features = X.shape[1]
    batch_size = Xb.shape[0]
    if do_shuffle:
        shuffle(order, rng_state)
    n_w = n_features * n_out
    W = theta[:n_w].reshape((n_features, n_out))
    b = theta[n_w:]
    gW = grad[:n_w].reshape((n_features, n_out))
    gb = grad[n_w:]
    n_batches = (n_samples + batch_size - 1) // batch_size
    for k in range(n_batches):
        start = k * batch_size
        m = min(batch_size, n_samples - start)
        gather(X, y, w, order, start, m, Xb, yb, wb)
        Xv = Xb[:m]
        Zv = Z[:m]
        np.dot(Xv, W, Zv)
        for i in range(m):
            for j in range(n_out):
                Zv[i, j] += b[j]
        loss_grad(Zv, yb, wb, m, loss, 1.0 / m, class_loss, class_weight,
                  col_loss, stats)
        np.dot(Xv.T, Zv, gW)
        if alpha != 0.0:
            for f in range(n_features):
                for j in range(n_out):
                    gW[f, j] += alpha * W[f, j]
        for j in range(n_out):
            acc = 0.0
            for i in range(m):
                acc += Zv[i, j]
            gb[j] = acc
        lr = lr0 + (lr1 - lr0) * k / n_batches
        t += 1
        step(solver, theta, grad, s1, s2, lr, momentum, nesterov, beta1, beta2,
             eps, t)
    return t


linear_epoch = jit(_linear_epoch_py)
