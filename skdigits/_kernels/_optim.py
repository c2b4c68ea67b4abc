"""Optimizer steps on flat parameter buffers, in place.

Every model keeps its parameters in one contiguous vector ``theta`` with a
gradient ``grad`` of the same shape, so one step function serves the linear
models and the MLP. Solver codes: ``SGD`` (0, with momentum and optional
Nesterov) and ``ADAM`` (1). ``t`` counts updates, starting at 1.
"""

import math

from ._numba import jit

SGD = 0
ADAM = 1


def _sgd_step_py(theta, grad, velocity, lr, momentum, nesterov):
    """SGD with (Nesterov) momentum; updates ``theta`` and ``velocity`` in place."""
    for i in range(theta.shape[0]):
        v = momentum * velocity[i] - lr * grad[i]
        velocity[i] = v
        if nesterov:
            theta[i] += momentum * v - lr * grad[i]
        else:
            theta[i] += v


sgd_step = jit(_sgd_step_py)


def _adam_step_py(theta, grad, m, v, lr, beta1, beta2, eps, t):
    """Adam (Kingma & Ba, 2015) with the bias correction folded into the step
    size; updates ``theta``, ``m`` and ``v`` in place."""
    lr_t = lr * math.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
    for i in range(theta.shape[0]):
        g = grad[i]
        mi = beta1 * m[i] + (1.0 - beta1) * g
        vi = beta2 * v[i] + (1.0 - beta2) * g * g
        m[i] = mi
        v[i] = vi
        theta[i] -= lr_t * mi / (math.sqrt(vi) + eps)


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
