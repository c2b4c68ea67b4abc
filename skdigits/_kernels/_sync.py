"""How the threads of a team share one kernel call: a barrier and a shared
work counter, both in an int64 array ``sync`` of ``SYNC_SIZE`` zeros owned by
the caller (one per call).

Work is split into items that do not depend on the thread that runs them;
each thread claims the next free item (``claim``) until none is left, then
waits at the barrier for the others. So a thread slowed down by another
process simply claims fewer items, and the results never depend on who ran
what. A waiting thread yields its core after a short spin, so it never takes
CPU time from the thread it waits for.
"""

from ._numba import jit
from ._simd import atomic_add, atomic_load, atomic_store, yield_cpu

#: Slots of ``sync``, 64 bytes apart (no false sharing between them).
ARRIVED = 0
GENERATION = 8
CLAIM = 16
SYNC_SIZE = 24

#: Polls of the barrier before a waiting thread starts yielding its core.
SPIN_POLLS = 2000


def _barrier_py(sync, n_threads):
    """Wait until all ``n_threads`` threads have arrived; the last to arrive
    resets the work counter (``CLAIM``) for the next phase and releases the
    others."""
    if n_threads == 1:
        sync[CLAIM] = 0
        return
    generation = atomic_load(sync, GENERATION)
    if atomic_add(sync, ARRIVED, 1) == n_threads - 1:
        atomic_store(sync, ARRIVED, 0)
        atomic_store(sync, CLAIM, 0)
        atomic_add(sync, GENERATION, 1)
        return
    polls = 0
    while atomic_load(sync, GENERATION) == generation:
        polls += 1
        if polls > SPIN_POLLS:
            yield_cpu()


barrier = jit(_barrier_py)


def _claim_py(sync):
    """The next work item of the current phase (0, 1, 2, ... across all the
    threads of the team)."""
    return atomic_add(sync, CLAIM, 1)


claim = jit(_claim_py)
