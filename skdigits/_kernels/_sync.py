"""How the threads of a team share one kernel call: a barrier and a shared
work counter, both in an int64 array ``sync`` of ``SYNC_SIZE`` zeros owned by
the caller (one per call).

Work is split into items that do not depend on the thread that runs them;
each thread claims the next free item (``claim``) until none is left, then
waits at the barrier for the others. So a thread slowed down by another
process simply claims fewer items, and the results never depend on who ran
what. A waiting thread yields its core after a short spin, so it never takes
CPU time from the thread it waits for.

``ABORT`` lets a call end early when one thread cannot take part (an
exception before it entered the kernel, or inside it): once set, every
barrier returns at once and every claim finds no work left, so the other
threads leave the kernel without waiting for the missing one. The results
of an aborted call are garbage and are thrown away by the caller.
"""

from ._numba import subroutine
from ._simd import atomic_add, atomic_load, atomic_store, yield_cpu

#: Slots of ``sync``, 64 bytes apart (no false sharing between them).
ARRIVED = 0
GENERATION = 8
CLAIM = 16
ABORT = 24
SYNC_SIZE = 32

#: What ``claim`` returns once the call is aborted: past every phase's items.
NO_WORK = 1 << 40

#: Polls of the barrier before a waiting thread starts yielding its core.
SPIN_POLLS = 2000


def _barrier_py(sync, n_threads):
    """Wait until all ``n_threads`` threads have arrived; the last to arrive
    resets the work counter (``CLAIM``) for the next phase and releases the
    others."""
    if n_threads == 1:
        sync[CLAIM] = 0
        return
    if atomic_load(sync, ABORT) != 0:
        return
    generation = atomic_load(sync, GENERATION)
    if atomic_add(sync, ARRIVED, 1) == n_threads - 1:
        atomic_store(sync, ARRIVED, 0)
        atomic_store(sync, CLAIM, 0)
        atomic_add(sync, GENERATION, 1)
        return
    polls = 0
    while atomic_load(sync, GENERATION) == generation:
        if atomic_load(sync, ABORT) != 0:
            return
        polls += 1
        if polls > SPIN_POLLS:
            yield_cpu()


barrier = subroutine(_barrier_py)


def _claim_py(sync):
    """The next work item of the current phase (0, 1, 2, ... across all the
    threads of the team), or ``NO_WORK`` once the call is aborted."""
    if atomic_load(sync, ABORT) != 0:
        return NO_WORK
    return atomic_add(sync, CLAIM, 1)


claim = subroutine(_claim_py)


def abort(sync):
    """Make the threads of the call that uses ``sync`` leave it at once (see
    the module docstring). A plain Python function: an aligned 8-byte store,
    which the kernels' atomic loads see."""
    sync[ABORT] = 1
