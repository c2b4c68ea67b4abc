"""A small seeded random generator for kernels (xorshift64*).

The state is a one-element ``uint64`` array owned by the caller and advanced in
place, so a seed drawn from ``random_state`` fully determines a training run and
the global NumPy generator is never touched.
"""

import numpy as np

from ._numba import jit, subroutine


def new_state(random_state):
    """Draw a fresh kernel state from a ``numpy.random.RandomState``."""
    seed = random_state.randint(1, np.iinfo(np.int32).max, size=2).astype(np.uint64)
    state = np.empty(1, dtype=np.uint64)
    state[0] = (seed[0] << np.uint64(32)) ^ seed[1] ^ np.uint64(0x9E3779B97F4A7C15)
    if state[0] == 0:
        state[0] = np.uint64(1)
    return state


def _next_uint64_py(state):
    """Advance ``state`` in place and return the next 64-bit value."""
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return x * np.uint64(0x2545F4914F6CDD1D)


next_uint64 = subroutine(_next_uint64_py)


def _randbelow_py(state, n):
    """Uniform integer in ``[0, n)`` (``n`` small against 2**64, so the modulo
    bias is far below anything a shuffle can show)."""
    return np.int64((next_uint64(state) >> np.uint64(11)) % np.uint64(n))


randbelow = subroutine(_randbelow_py)


def _shuffle_py(order, state):
    """Fisher-Yates shuffle of ``order`` in place."""
    for i in range(order.shape[0] - 1, 0, -1):
        j = randbelow(state, i + 1)
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp


shuffle = jit(_shuffle_py)
