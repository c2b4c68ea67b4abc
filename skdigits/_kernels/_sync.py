"""How the threads of a team share one kernel call: a barrier and a shared
work counter, both in an int64 array ``sync`` of ``SYNC_SIZE`` zeros owned by
the caller (one per call), and the atomics and the yield they are made of.
The Python side of the team (its threads, Ctrl-C) is ``_engine._team``.

Work is split into items that do not depend on the thread that runs them;
each thread claims the next free item (``claim``) until none is left, then
waits at the barrier for the others. So a thread slowed down by another
process simply claims fewer items, and the results never depend on who ran
what. A waiting thread yields its core after a short spin, so it never takes
CPU time from the thread it waits for.

The rules (also in the contributors' docs, "Threads and barriers"): every
thread of the call reaches every barrier, in the same order, the same number
of times; work is shared only through ``claim``, between two barriers. A
thread that skips a barrier makes the others wait for ever.
``SKDIGITS_DEBUG_BARRIERS=SECONDS`` turns that hang into an error: a thread
that has waited longer gives up, aborts the call, and the team raises
``BarrierTimeout`` naming the barrier's phase (``PHASES``), its rank in the
call and how many threads had arrived. The setting is compiled into the
kernels (and keys their cache); without it no clock is read.

``ABORT`` lets a call end early when one thread cannot take part (an
exception before it entered the kernel, or inside it): once set, every
barrier returns at once and every claim finds no work left, so the other
threads leave the kernel without waiting for the missing one. The results
of an aborted call are garbage and are thrown away by the caller.
"""

import sys

import llvmlite.ir as ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._numba import DEBUG_BARRIERS, subroutine
from ._simd import _I32, _I64, _data

#: Slots of ``sync``, 64 bytes apart (no false sharing between them), then
#: three written only when a debug timeout fires: the phase's number plus
#: one, the barrier's rank in the call, the threads that had arrived.
ARRIVED = 0
GENERATION = 8
CLAIM = 16
ABORT = 24
TIMED_OUT_PHASE = 32
TIMED_OUT_BARRIER = 33
TIMED_OUT_ARRIVED = 34
SYNC_SIZE = 40

#: What each barrier ends, by its ``phase`` argument (for the debug error).
PHASES = (
    "epoch start (transposes, centred intercepts, first minibatch)",  # 0
    "a hidden layer's forward pass",  # 1
    "the loss",  # 2
    "a minibatch (backward pass, updates, next gather)",  # 3
    "the output layer's backward pass",  # 4
    "a hidden layer's backward pass",  # 5
    "the linear model's logits and loss",  # 6
    "the linear model's intercepts (lazy update)",  # 7
    "the linear model's weights update",  # 8
    "a test's phase",  # 9
)
EPOCH_START, FORWARD, LOSS, MINIBATCH, BACKWARD_OUT, BACKWARD_HIDDEN = range(6)
LINEAR_LOSS, LINEAR_INTERCEPTS, LINEAR_UPDATE, TEST_PHASE = range(6, 10)

#: What ``claim`` returns once the call is aborted: past every phase's items.
NO_WORK = 1 << 40

#: Polls of the barrier before a waiting thread starts yielding its core.
SPIN_POLLS = 2000


# ------------------------------------------------- atomics and the clock

def _int64_slot(context, builder, aryty, ary, i):
    return builder.gep(_data(context, builder, aryty, ary, _I64), [i])


@intrinsic
def atomic_add(typingctx, ary, i, value):
    """``ary[i] += value`` atomically (sequentially consistent); returns the
    old value. ``ary`` is an int64 array."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None
    sig = types.int64(ary, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ary_, i_, value_ = args
        ptr = _int64_slot(context, builder, signature.args[0], ary_, i_)
        return builder.atomic_rmw("add", ptr, value_, "seq_cst")

    return sig, codegen


@intrinsic
def atomic_load(typingctx, ary, i):
    """``ary[i]``, read atomically (sequentially consistent)."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None
    sig = types.int64(ary, types.intp)

    def codegen(context, builder, signature, args):
        ary_, i_ = args
        ptr = _int64_slot(context, builder, signature.args[0], ary_, i_)
        return builder.load_atomic(ptr, "seq_cst", 8)

    return sig, codegen


@intrinsic
def atomic_store(typingctx, ary, i, value):
    """``ary[i] = value``, written atomically (sequentially consistent)."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None
    sig = types.void(ary, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ary_, i_, value_ = args
        ptr = _int64_slot(context, builder, signature.args[0], ary_, i_)
        builder.store_atomic(value_, ptr, "seq_cst", 8)
        return context.get_dummy_value()

    return sig, codegen


_HAS_SCHED_YIELD = sys.platform != "win32"


@intrinsic
def yield_cpu(typingctx):
    """Let another runnable thread have this core (``sched_yield``), so a
    thread that waits for its team never takes CPU time from the thread it
    waits for, nor from other processes."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _HAS_SCHED_YIELD:
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_I32, []), "sched_yield")
            builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def wall_seconds(typingctx):
    """Seconds since the epoch (C's ``time``), for the barriers' debug
    timeout only; 0 on Windows (no timeout there)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        if sys.platform == "win32":
            return ir.Constant(_I64, 0)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_I64, [_I64.as_pointer()]), "time")
        return builder.call(fn, [ir.Constant(_I64.as_pointer(), None)])

    return sig, codegen


# ------------------------------------------------------ the barrier

def _barrier_py(sync, n_threads, phase):
    """Wait until all ``n_threads`` threads have arrived at the end of phase
    ``phase`` (one of ``PHASES``); the last to arrive resets the work counter
    (``CLAIM``) for the next phase and releases the others."""
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
    since = 0
    while atomic_load(sync, GENERATION) == generation:
        if atomic_load(sync, ABORT) != 0:
            return
        polls += 1
        if polls > SPIN_POLLS:
            yield_cpu()
            if DEBUG_BARRIERS > 0:  # a constant: no code without the debug mode
                now = wall_seconds()
                if since == 0:
                    since = now
                elif now - since > DEBUG_BARRIERS:
                    atomic_store(sync, TIMED_OUT_BARRIER, generation)
                    atomic_store(sync, TIMED_OUT_ARRIVED, atomic_load(sync, ARRIVED))
                    atomic_store(sync, TIMED_OUT_PHASE, phase + 1)
                    atomic_store(sync, ABORT, 1)
                    return


barrier = subroutine(_barrier_py)


def _claim_py(sync):
    """The next work item of the current phase (0, 1, 2, ... across all the
    threads of the team), or ``NO_WORK`` once the call is aborted."""
    if atomic_load(sync, ABORT) != 0:
        return NO_WORK
    return atomic_add(sync, CLAIM, 1)


claim = subroutine(_claim_py)


class BarrierTimeout(RuntimeError):
    """A thread waited longer than ``SKDIGITS_DEBUG_BARRIERS`` seconds at a
    barrier: another thread of its team missed it."""


def timed_out(sync, kernel_name, n_threads):
    """The ``BarrierTimeout`` of a call whose ``sync`` records a debug timeout,
    or None."""
    phase = int(sync[TIMED_OUT_PHASE]) - 1
    if phase < 0:
        return None
    name = PHASES[phase] if phase < len(PHASES) else f"phase {phase}"
    return BarrierTimeout(
        f"{kernel_name}: a thread waited more than {DEBUG_BARRIERS:g} s at the "
        f"barrier after {name} (barrier {int(sync[TIMED_OUT_BARRIER]) + 1} of "
        f"the call); {int(sync[TIMED_OUT_ARRIVED])} of {n_threads} threads had "
        "arrived, so another one missed it (SKDIGITS_DEBUG_BARRIERS)")


def abort(sync):
    """Make the threads of the call that uses ``sync`` leave it at once (see
    the module docstring). A plain Python function: an aligned 8-byte store,
    which the kernels' atomic loads see."""
    sync[ABORT] = 1
