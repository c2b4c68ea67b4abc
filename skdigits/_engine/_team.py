"""The thread team: threads that run one kernel call together, and the
Ctrl-C guard around its calls. How many threads a call gets is the core
budget's business (``skdigits._cores``).

Ctrl-C: Python turns SIGINT into a KeyboardInterrupt in the main thread, at
any bytecode, including inside ``threading``'s locks and inside Numba's
dispatcher and compiler (whose lock it can leave held). So a team's call and
its closing hold the interrupt back (``interrupts_deferred``) and raise it
once its threads are idle again; the main thread's own part of a kernel call
cannot be interrupted anyway (compiled code runs no bytecode), so Ctrl-C comes
no later than before.
"""

import signal
import threading
import weakref

import numpy as np

from .. import _warmup
from .._kernels._sync import SYNC_SIZE, abort, timed_out

__all__ = ["Team", "interrupts_deferred"]


class interrupts_deferred:
    """Hold Ctrl-C back for the duration of a ``with`` block in the main
    thread, and raise it at the end of the block (a context manager).

    Inside the block SIGINT is only recorded; at the end the handler that was
    in place before is restored and, when a SIGINT came, called (the default
    one raises KeyboardInterrupt), so the block's clean-up can never be cut
    in two and the interrupt is never lost. A no-op outside the main thread
    (which Python's SIGINT never interrupts) and when SIGINT has no Python
    handler (ignored, or the process's default action). Blocks may nest.
    Only for short sections and ones that run compiled code: the Python code
    inside cannot be interrupted.
    """

    def __init__(self):
        self._previous = None
        self._caught = None

    def __enter__(self):
        # a SIGINT already pending is raised here, by the current handler,
        # before anything is held back
        if (threading.current_thread() is threading.main_thread()
                and callable(signal.getsignal(signal.SIGINT))):
            previous = signal.getsignal(signal.SIGINT)
            try:
                self._previous = previous
                signal.signal(signal.SIGINT, self._record)
            except ValueError:  # not the main interpreter's main thread
                self._previous = None
            except BaseException:  # another signal's exception: undo
                signal.signal(signal.SIGINT, previous)
                self._previous = None
                raise
        return self

    def _record(self, signum, frame):
        if self._caught is None:
            self._caught = (signum, frame)

    def __exit__(self, *exc):
        previous = self._previous
        if previous is None:
            return False
        try:  # the handler first, so nothing can leave ours installed
            signal.signal(signal.SIGINT, previous)  # records one still pending
        finally:
            self._previous = None
        caught, self._caught = self._caught, None
        if caught is not None:
            previous(*caught)
        return False


class Team:
    """Threads that run one kernel call together (a context manager).

    ``run(n, kernel, *args)`` calls ``kernel(tid, n, sync, *args)`` in ``n``
    threads at once, the calling thread being ``tid = 0``, with a fresh
    ``sync`` array, and returns thread 0's result. The kernels release the
    GIL (``nogil``). Helper threads are started when first needed and stop
    when the team closes, or, should Ctrl-C skip the closing, when the team
    is collected.

    A call and the closing hold Ctrl-C back (``interrupts_deferred``): the
    KeyboardInterrupt comes once every helper is idle again, and a first
    call's compile is never cut short (which could leave Numba's compiler
    lock held, or a half-built kernel).
    """

    def __init__(self):
        self._workers = []
        # stops the helpers of a team that was never closed
        weakref.finalize(self, _stop_all, self._workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _grow(self, n_helpers):
        while len(self._workers) < n_helpers:
            self._workers.append(_Worker())

    def run(self, n, kernel, *args):
        if _warmup.RUNNING:  # a background process is compiling a kernel
            _warmup.settle(kernel)
        sync = np.zeros(SYNC_SIZE, dtype=np.int64)
        with interrupts_deferred():
            if n <= 1:
                return kernel(0, 1, sync, *args)
            return self._run(n, kernel, sync, args)

    def _run(self, n, kernel, sync, args):
        self._grow(n - 1)
        started = []
        try:
            for tid, worker in enumerate(self._workers[:n - 1], start=1):
                worker.submit(kernel, (tid, n, sync, *args))
                started.append(worker)
            result = kernel(0, n, sync, *args)
        except BaseException:
            # this thread will not reach the kernel's barriers (for example
            # it could not start a helper): release the helpers
            abort(sync)
            raise
        finally:
            errors = [e for e in (worker.wait() for worker in started) if e]
        if errors:
            raise errors[0]
        late = timed_out(sync, _name(kernel), n)
        if late is not None:  # SKDIGITS_DEBUG_BARRIERS: a missed barrier
            raise late
        return result

    def close(self):
        """Stop and join every helper."""
        with interrupts_deferred():
            workers = list(self._workers)
            del self._workers[:]
            _stop_all(workers)  # tell every helper first: none is left behind
            for worker in workers:
                worker.join()


def _name(kernel):
    """``mlp_epoch`` for the dispatcher of ``_mlp_epoch_py``."""
    name = getattr(getattr(kernel, "py_func", kernel), "__name__", "a kernel")
    name = name.strip("_")
    return name[:-3] if name.endswith("_py") else name


def _stop_all(workers):
    for worker in workers:
        worker.stop()


class _Worker:
    """One helper thread: runs submitted calls, one at a time. A call that
    raises aborts its kernel call (its ``sync``, the third argument), so the
    other threads do not wait for this one at a barrier. The thread holds no
    reference to its team."""

    def __init__(self):
        self._call = None
        self._error = None
        self._ready = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._thread = threading.Thread(target=self._loop, name="skdigits-worker",
                                        daemon=True)
        self._thread.start()

    def _loop(self):
        while True:
            self._ready.acquire()
            call = self._call
            if call is None:
                return
            kernel, args = call
            try:
                kernel(*args)
            except BaseException as exc:  # reported by the caller's wait()
                abort(args[2])
                self._error = exc
            self._done.release()

    def submit(self, kernel, args):
        self._error = None
        self._call = (kernel, args)
        self._ready.release()

    def wait(self):
        self._done.acquire()
        self._call = None
        return self._error

    def stop(self):
        """Ask the thread to end once it is idle (does not wait)."""
        self._call = None
        self._ready.release()

    def join(self):
        self._thread.join()
