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

from ._numba import subroutine

SGD = 0
ADAM = 1
GRADIENT = 2


def _adam_rate_py(lr, beta1, beta2, t):
    """Adam's step size at update ``t`` with the bias correction folded in."""
    return lr * math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)


adam_rate = subroutine(_adam_rate_py)


def _step_block_py(solver, P, G, S1, S2, r0, r1, c0, c1, l2, lr, momentum,
                   nesterov, beta1, beta2, eps, t):
    """One update of the block ``P[r0:r1, c0:c1]`` with gradient ``G + l2 *
    P``; updates ``P``, the state ``S1``/``S2`` (velocity for SGD; moments for
    Adam) in place, and zeroes ``G``. All four are C-ordered 2-D arrays of
    the same shape; the block's rows are processed as contiguous slices."""
    dt = P.dtype.type
    l2_ = dt(l2)
    if solver == ADAM:
        lr_t = dt(adam_rate(lr, beta1, beta2, t))
        b1 = dt(beta1)
        b2 = dt(beta2)
        c1_ = dt(1.0 - beta1)
        c2_ = dt(1.0 - beta2)
        eps_ = dt(eps)
        for i in range(r0, r1):
            p = P[i, c0:c1]
            g = G[i, c0:c1]
            m = S1[i, c0:c1]
            v = S2[i, c0:c1]
            for j in range(c1 - c0):
                gj = g[j] + l2_ * p[j]
                g[j] = 0
                mj = b1 * m[j] + c1_ * gj
                vj = b2 * v[j] + c2_ * gj * gj
                m[j] = mj
                v[j] = vj
                p[j] -= lr_t * mj / (np.sqrt(vj) + eps_)
    elif solver == GRADIENT:
        for i in range(r0, r1):
            p = P[i, c0:c1]
            g = G[i, c0:c1]
            s = S1[i, c0:c1]
            for j in range(c1 - c0):
                s[j] += g[j] + l2_ * p[j]
                g[j] = 0
    else:
        lr_ = dt(lr)
        mu = dt(momentum)
        for i in range(r0, r1):
            p = P[i, c0:c1]
            g = G[i, c0:c1]
            vel = S1[i, c0:c1]
            for j in range(c1 - c0):
                gj = g[j] + l2_ * p[j]
                g[j] = 0
                v = mu * vel[j] - lr_ * gj
                vel[j] = v
                if nesterov:
                    p[j] += mu * v - lr_ * gj
                else:
                    p[j] += v


step_block = subroutine(_step_block_py)


def _step_rows_py(solver, P, G, S1, S2, rows, i0, i1, mark, l2, lr, momentum,
                  nesterov, beta1, beta2, eps, t):
    """``step_block`` of the rows ``rows[i0:i1]`` of ``P`` only (all their
    columns), with the same arithmetic element by element; clears their
    ``mark``. The lazy update of wide sparse data (see ``_linear``): the rows
    of the other features, their gradient and their state are not touched,
    so they skip this update (no L2 decay, no moment decay, no momentum
    step). ``P``, ``G``, ``S1``, ``S2``: C-ordered 2-D arrays of one shape."""
    dt = P.dtype.type
    width = P.shape[1]
    l2_ = dt(l2)
    zero = dt(0)
    if solver == ADAM:
        lr_t = dt(adam_rate(lr, beta1, beta2, t))
        b1 = dt(beta1)
        b2 = dt(beta2)
        c1_ = dt(1.0 - beta1)
        c2_ = dt(1.0 - beta2)
        eps_ = dt(eps)
        for i in range(i0, i1):
            k = rows[i]
            mark[k] = 0
            p = P[k]
            g = G[k]
            m = S1[k]
            v = S2[k]
            for j in range(width):
                gj = g[j] + l2_ * p[j]
                g[j] = zero
                mj = b1 * m[j] + c1_ * gj
                vj = b2 * v[j] + c2_ * gj * gj
                m[j] = mj
                v[j] = vj
                p[j] -= lr_t * mj / (np.sqrt(vj) + eps_)
    elif solver == GRADIENT:
        for i in range(i0, i1):
            k = rows[i]
            mark[k] = 0
            p = P[k]
            g = G[k]
            s = S1[k]
            for j in range(width):
                s[j] += g[j] + l2_ * p[j]
                g[j] = zero
    else:
        lr_ = dt(lr)
        mu = dt(momentum)
        for i in range(i0, i1):
            k = rows[i]
            mark[k] = 0
            p = P[k]
            g = G[k]
            vel = S1[k]
            for j in range(width):
                gj = g[j] + l2_ * p[j]
                g[j] = zero
                v = mu * vel[j] - lr_ * gj
                vel[j] = v
                if nesterov:
                    p[j] += mu * v - lr_ * gj
                else:
                    p[j] += v


step_rows = subroutine(_step_rows_py)
