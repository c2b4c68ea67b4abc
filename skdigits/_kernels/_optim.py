"""Optimizer steps on blocks of parameters, in place.

Every model keeps its parameters in one flat vector ``theta``; the optimizer
state (``s1``, ``s2``) and the gradient have the same layout. The epoch
kernels update a model block by block (a layer's columns, its intercepts),
each block by the thread that computed its gradient, through ``step_block``
on 2-D views of those vectors. Solver codes: ``SGD`` (0, with momentum and
optional Nesterov), ``ADAM`` (1) and ``GRADIENT`` (2): no step at all; the
gradient (``G + l2 * P``) is added into ``S1``, which the full-batch solver
reads after an epoch over all rows. ``t`` counts updates, starting at 1.

``step_block`` adds the L2 term ``l2 * P`` to the gradient, and sets the
gradient back to zero once used, so the next minibatch can accumulate into
it without a separate pass.

The element-wise arithmetic runs in the dtype of the parameters: the scalars
are cast once per block, so a float32 model is updated in float32
(vectorised) rather than promoted to float64 element by element.
"""

import math

import numpy as np

from ._numba import inline, subroutine

SGD = 0
ADAM = 1
GRADIENT = 2


def _adam_rate_py(lr, beta1, beta2, t):
    """Adam's step size at update ``t`` with the bias correction folded in."""
    return lr * math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)


adam_rate = subroutine(_adam_rate_py)


def _step_scalars_py(P, l2, lr, momentum, beta1, beta2, eps, t):
    """The scalars of one update in ``P``'s dtype, cast once per block:
    ``(l2, lr, momentum, Adam's step size at update t, beta1, beta2,
    1 - beta1, 1 - beta2, eps)``."""
    dt = P.dtype.type
    return (dt(l2), dt(lr), dt(momentum), dt(adam_rate(lr, beta1, beta2, t)),
            dt(beta1), dt(beta2), dt(1.0 - beta1), dt(1.0 - beta2), dt(eps))


step_scalars = subroutine(_step_scalars_py)


def _step_row_py(solver, p, g, s1, s2, nesterov, scalars):
    """One update of the vector ``p`` (a row, or a row's slice) with gradient
    ``g + l2 * p``: the state ``s1``/``s2`` (velocity for SGD; moments for
    Adam) updated and ``g`` zeroed in place; ``scalars`` from
    ``step_scalars``. The one element-wise step of every optimizer path
    (dense blocks, the lazy update's rows, sparse panels)."""
    l2_, lr_, mu, lr_t, b1, b2, c1_, c2_, eps_ = scalars
    zero = p.dtype.type(0)
    if solver == ADAM:
        for j in range(p.shape[0]):
            gj = g[j] + l2_ * p[j]
            g[j] = zero
            mj = b1 * s1[j] + c1_ * gj
            vj = b2 * s2[j] + c2_ * gj * gj
            s1[j] = mj
            s2[j] = vj
            p[j] -= lr_t * mj / (np.sqrt(vj) + eps_)
    elif solver == GRADIENT:
        for j in range(p.shape[0]):
            s1[j] += g[j] + l2_ * p[j]
            g[j] = zero
    else:
        for j in range(p.shape[0]):
            gj = g[j] + l2_ * p[j]
            g[j] = zero
            v = mu * s1[j] - lr_ * gj
            s1[j] = v
            if nesterov:
                p[j] += mu * v - lr_ * gj
            else:
                p[j] += v


step_row = inline(_step_row_py)


def _step_block_py(solver, P, G, S1, S2, r0, r1, c0, c1, l2, lr, momentum,
                   nesterov, beta1, beta2, eps, t):
    """One update of the block ``P[r0:r1, c0:c1]`` with gradient ``G + l2 *
    P``; updates ``P``, the state ``S1``/``S2`` (velocity for SGD; moments for
    Adam) in place, and zeroes ``G``. All four are C-ordered 2-D arrays of
    the same shape; the block's rows are processed as contiguous slices."""
    scalars = step_scalars(P, l2, lr, momentum, beta1, beta2, eps, t)
    for i in range(r0, r1):
        step_row(solver, P[i, c0:c1], G[i, c0:c1], S1[i, c0:c1], S2[i, c0:c1],
                 nesterov, scalars)


step_block = subroutine(_step_block_py)


def _step_rows_py(solver, P, G, S1, S2, rows, i0, i1, mark, l2, lr, momentum,
                  nesterov, beta1, beta2, eps, t):
    """``step_block`` of the rows ``rows[i0:i1]`` of ``P`` only (all their
    columns), with the same arithmetic element by element; clears their
    ``mark``. The lazy update of wide sparse data (see ``_linear``): the rows
    of the other features, their gradient and their state are not touched,
    so they skip this update (no L2 decay, no moment decay, no momentum
    step). ``P``, ``G``, ``S1``, ``S2``: C-ordered 2-D arrays of one shape."""
    scalars = step_scalars(P, l2, lr, momentum, beta1, beta2, eps, t)
    for i in range(i0, i1):
        k = rows[i]
        mark[k] = 0
        step_row(solver, P[k], G[k], S1[k], S2[k], nesterov, scalars)


step_rows = subroutine(_step_rows_py)
