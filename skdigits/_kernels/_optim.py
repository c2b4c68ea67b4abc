"""Optimizer steps on flat parameter buffers, in place.

Every model keeps its parameters in one contiguous vector ``theta`` with a
gradient ``grad`` of the same shape, so one step function serves the linear
models and the MLP. Solver codes: ``SGD`` (0, with momentum and optional
Nesterov) and ``ADAM`` (1). ``t`` counts updates, starting at 1.

The element-wise arithmetic runs in the dtype of ``theta``: the scalars are
cast once per step, so a float32 model is updated in float32 (vectorised
8 lanes wide) rather than promoted to float64 element by element.
"""

import math

import numpy as np

from ._numba import jit

SGD = 0
ADAM = 1


def _sgd_step_py(theta, grad, velocity, lr, momentum, nesterov):
    """SGD with (Nesterov) momentum; updates ``theta`` and ``velocity`` in place."""
    dt = theta.dtype.type
    lr_ = dt(lr)
    mu = dt(momentum)
    if nesterov:
        for i in range(theta.shape[0]):
            g = grad[i]
            v = mu * velocity[i] - lr_ * g
            velocity[i] = v
            theta[i] += mu * v - lr_ * g
    else:
        for i in range(theta.shape[0]):
            v = mu * velocity[i] - lr_ * grad[i]
            velocity[i] = v
            theta[i] += v


sgd_step = jit(_sgd_step_py)


def _adam_step_py(theta, grad, m, v, lr, beta1, beta2, eps, t):
    """Adam (Kingma & Ba, 2015) with the bias correction folded into the step
    size; updates ``theta``, ``m`` and ``v`` in place."""
    dt = theta.dtype.type
    lr_t = dt(lr * math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t))
    b1 = dt(beta1)
    b2 = dt(beta2)
    c1 = dt(1.0 - beta1)
    c2 = dt(1.0 - beta2)
    eps_ = dt(eps)
    for i in range(theta.shape[0]):
        g = grad[i]
        mi = b1 * m[i] + c1 * g
        vi = b2 * v[i] + c2 * g * g
        m[i] = mi
        v[i] = vi
        theta[i] -= lr_t * mi / (np.sqrt(vi) + eps_)


adam_step = jit(_adam_step_py)


def _step_py(solver, theta, grad, s1, s2, lr, momentum, nesterov, beta1, beta2,
             eps, t):
    """One update of ``theta`` in place by the solver code ``solver``.

    ``s1``/``s2`` are the solver's state buffers (velocity for SGD; first and
    second moments for Adam), updated in place.
    """
    if solver == ADAM:
        adam_step(theta, grad, s1, s2, lr, beta1, beta2, eps, t)
    else:
        sgd_step(theta, grad, s1, lr, momentum, nesterov)


step = jit(_step_py)
