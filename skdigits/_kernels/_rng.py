"""A small seeded random generator for kernels (xorshift64*), and the
counter-based one of dropout.

The state is a one-element ``uint64`` array owned by the caller and advanced in
place, so a seed drawn from ``random_state`` fully determines a training run and
the global NumPy generator is never touched.

Dropout needs no state: whether hidden unit ``unit`` of row ``row`` is kept
in epoch ``epoch`` is a function of ``(seed, epoch, row, unit)`` alone
(``key_word`` chains the words through splitmix64's finaliser; the last
key's top 53 bits give a float in [0, 1)), so the masks do
not depend on the threads, the minibatch a row falls in or the kind of data.
"""

import numpy as np

from ._numba import jit, subroutine

#: splitmix64's increment (the golden ratio in 64 bits), also the constant
#: ``new_state`` mixes into the seed.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def new_state(random_state):
    """Draw a fresh kernel state from a ``numpy.random.RandomState``."""
    seed = random_state.randint(1, np.iinfo(np.int32).max, size=2).astype(np.uint64)
    state = np.empty(1, dtype=np.uint64)
    state[0] = (seed[0] << np.uint64(32)) ^ seed[1] ^ _GOLDEN
    if state[0] == 0:
        state[0] = np.uint64(1)
    return state


def new_seed(random_state):
    """Draw a dropout seed (a non-negative int64) from a
    ``numpy.random.RandomState``."""
    return int(random_state.randint(np.iinfo(np.int64).max, dtype=np.int64))


def _key_word_py(key, word):
    """``key`` with the non-negative integer ``word`` absorbed: splitmix64's
    finaliser (a bijection of the 64-bit words) of ``key`` advanced ``word +
    1`` steps of its sequence, so injective in ``word`` for a given ``key``.
    The top 53 bits of the last key of a chain, times ``2**-53``, are a
    uniform in [0, 1) (``_mlp.drop``)."""
    z = key + (np.uint64(word) + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


key_word = subroutine(_key_word_py)

#: ``2**-53``: a key's top 53 bits times this are a uniform in [0, 1).
UNIFORM_SCALE = 1.0 / 9007199254740992.0


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
