"""Output layers and losses: softmax cross-entropy and per-label logistic loss.

``loss_grad`` turns a block of logits into its gradient *in place* and adds the
block's loss to per-class accumulators, which is where the per-class loss
history of every skdigits estimator comes from.

Loss codes (chosen in Python, never strings in a kernel):

- ``SOFTMAX`` (0): multinomial cross-entropy over ``K`` logit columns.
- ``LOGISTIC`` (1): an independent binary logistic loss per column. With
  ``K >= 2`` columns the target of column ``j`` is ``y == j`` (one-vs-rest);
  with one column the target is ``y == 1`` (binary problem).

Multi-label targets (``LOGISTIC`` only) come as an indicator matrix ``Y``
(one row per sample, one ``uint8`` column per label); ``y`` then holds each
row's index into ``Y`` and the target of column ``j`` is ``Y[y, j]``. An
empty ``Y`` (shape ``(0, 0)``) means single-label targets.
"""

import math

from ._numba import jit, subroutine

SOFTMAX = 0
LOGISTIC = 1

#: Slots of the ``stats`` accumulator: the weighted loss, the weight and the
#: weight of the correctly classified rows.
STAT_LOSS = 0
STAT_WEIGHT = 1
STAT_CORRECT = 2
N_STATS = 3


def _log1pexp_py(x):
    """``log(1 + exp(x))`` without overflow."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


log1pexp = subroutine(_log1pexp_py)


def _sigmoid_py(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


sigmoid = subroutine(_sigmoid_py)


def _loss_grad_py(Z, y, Y, w, n_rows, loss, scale, smooth, class_loss, class_weight,
                  col_loss, stats):
    """Loss of ``Z[:n_rows]`` against labels ``y``; ``Z`` becomes dLoss/dZ.

    With label smoothing ``smooth`` (``eps``) the targets are ``(1 - eps)``
    times the one-hot labels plus ``eps / K`` (``K`` classes; ``eps / 2`` per
    binary logistic output). The gradient and ``stats``' loss are those of
    the smoothed objective; ``class_loss`` and ``col_loss`` stay the plain
    cross-entropy, so per-class figures compare across settings.

    Parameters
    ----------
    Z : ndarray of shape (n_block, n_out)
        Logits, overwritten in place by ``scale * w_i * dloss_i / dZ_i``.
    y : ndarray of shape (n_block,), int
        Class index of each row (``0 <= y < n_classes``), or with multi-label
        targets its row in ``Y``.
    Y : ndarray of shape (n_samples, n_out), uint8
        Multi-label indicator rows (``LOGISTIC`` only), or shape ``(0, 0)``.
        A row counts as correct when every label's sign matches; the
        per-class accumulators are not used (``col_loss`` is per label).
    w : ndarray of shape (n_block,)
        Sample weights (already multiplied by class weights).
    n_rows : int
        Rows of ``Z``/``y``/``w`` to use (the last minibatch is shorter).
    loss : int
        ``SOFTMAX`` or ``LOGISTIC``.
    scale : float
        Factor of the gradient, usually ``1 / batch_size``. ``0`` skips the
        gradient and leaves ``Z`` unchanged (evaluation only).
    smooth : float
        Label smoothing, in ``[0, 1)``; ``0`` for plain cross-entropy.
    class_loss, class_weight : ndarray of shape (n_classes,), float64
        Accumulate ``sum w_i * loss_i`` and ``sum w_i`` by the class of the row.
    col_loss : ndarray of shape (n_out,), float64
        Accumulates ``sum w_i * loss_ij`` for each output column (``LOGISTIC``
        only: the binary loss of each label in one-vs-rest).
    stats : ndarray of shape (3,), float64
        Accumulates total weighted loss (the objective), total weight,
        weighted correct count (slots ``STAT_*``).
    """
    n_out = Z.shape[1]
    multilabel = Y.shape[0] > 0
    keep = 1.0 - smooth
    spread = smooth / n_out if loss == SOFTMAX else 0.5 * smooth
    for i in range(n_rows):
        yi = y[i]
        wi = w[i]
        row = Z[i]
        # prediction, shared by both losses: argmax of the logits, or the sign
        # of a single logit
        best = 0
        zmax = row[0]
        for j in range(1, n_out):
            if row[j] > zmax:
                zmax = row[j]
                best = j
        if n_out == 1:
            best = 1 if row[0] > 0.0 else 0
        li = 0.0
        objective = 0.0
        if loss == SOFTMAX:
            # log-sum-exp as zmax + log1p(sum of the other terms): exact for
            # confident rows, where log(1 + tiny) would round to zero; each
            # exp once (kept in the row for the gradient)
            zy = row[yi]
            zsum = 0.0
            if smooth != 0.0:
                for j in range(n_out):
                    zsum += row[j]
            s = 0.0
            if scale != 0.0:
                for j in range(n_out):
                    e = math.exp(row[j] - zmax)
                    row[j] = e
                    if j != best:
                        s += e
            else:
                for j in range(n_out):
                    if j != best:
                        s += math.exp(row[j] - zmax)
            li = zmax + math.log1p(s) - zy
            objective = li
            if smooth != 0.0:  # - sum_j t_j log p_j, with sum_j t_j = 1
                objective = zmax + math.log1p(s) - keep * zy - spread * zsum
            if scale != 0.0:
                g = scale * wi
                inv = 1.0 / (1.0 + s)
                for j in range(n_out):
                    t = keep * (1.0 if j == yi else 0.0) + spread
                    row[j] = g * (row[j] * inv - t)
        else:
            g = scale * wi
            if multilabel:
                best = yi  # correct unless a label's sign disagrees below
            for j in range(n_out):
                if multilabel:
                    t = 1.0 if Y[yi, j] != 0 else 0.0
                    if (row[j] > 0.0) != (t > 0.5):
                        best = -1
                elif n_out == 1:
                    t = 1.0 if yi == 1 else 0.0
                else:
                    t = 1.0 if yi == j else 0.0
                z = row[j]
                softplus = log1pexp(z)
                lij = softplus - z * t
                li += lij
                col_loss[j] += wi * lij
                t = keep * t + spread
                objective += softplus - z * t
                if scale != 0.0:
                    row[j] = g * (sigmoid(z) - t)
        if not multilabel:
            class_loss[yi] += wi * li
            class_weight[yi] += wi
        stats[STAT_LOSS] += wi * objective
        stats[STAT_WEIGHT] += wi
        if best == yi:
            stats[STAT_CORRECT] += wi


#: For the engine, called from Python (the validation figures, L-BFGS).
loss_grad = jit(_loss_grad_py)
#: For the epoch kernels: compiled into them, not a program of its own (a
#: jitted callee is compiled, optimised and cached alone before the caller
#: links and optimises it again; see ``_numba``).
loss_grad_sub = subroutine(_loss_grad_py)
