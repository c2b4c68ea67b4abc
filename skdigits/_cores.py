"""The core budget: how many threads a fit may use. The engine, the CLI, the
report, the search and the benchmark all count cores here.

- ``n_jobs`` follows scikit-learn's OpenMP estimators (HistGradientBoosting):
  ``None`` is every core the process may use, within ``OMP_NUM_THREADS``,
  ``threadpool_limits`` in the calling thread and the share a joblib worker
  gets (loky sets ``OMP_NUM_THREADS`` to it); ``-1`` is all cores, ``k`` is
  ``k`` threads, ``-2`` all but one.
- In a task of a dask.distributed worker the worker's thread count
  (``--nthreads``, ``threads_per_worker``) takes the place of the cores:
  ``None`` and ``-1`` are that many threads, and the fits running in the
  worker share them. Dask's nanny sets ``OMP_NUM_THREADS=1`` whatever the
  worker's thread count (one BLAS thread per task thread), so the variable
  would pin every fit to one thread; it is not read there.
- Fits running at the same time in one process (threads: joblib's threading
  backend, dask worker threads) share the process's cores: each gets
  ``cores // fits`` threads (at least one), re-checked every epoch.
- With ``n_jobs=None`` a fit also leaves alone the cores that other processes
  keep busy, measured every epoch from the system's CPU counters.

None of this changes the results: the kernels give the same bits for any
number of threads. Nothing here changes a setting other code can see (no
BLAS or OpenMP limits, no environment variables).
"""

import itertools
import os
import sys
import threading
import time
import weakref

__all__ = ["effective_n_threads", "process_cores", "CoreShare"]


def effective_n_threads(n_jobs=None):
    """Threads a fit with this ``n_jobs`` asks for, as scikit-learn's OpenMP
    estimators count them, or, in a dask worker's task, counted from the
    worker's threads (see the module docstring)."""
    worker_threads = _dask_worker_threads()
    if worker_threads is not None:
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 is invalid")
        if n_jobs is None:
            return worker_threads
        return max(1, worker_threads + n_jobs + 1) if n_jobs < 0 else int(n_jobs)
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    return max(1, int(_openmp_effective_n_threads(n_jobs)))


#: The name dask's nanny gives the process it starts for its worker.
_NANNY_PROCESS = "Dask Worker process (from Nanny)"


def _dask_worker_threads():
    """The thread count of the dask.distributed worker that runs the calling
    code, or None outside a worker.

    The worker is the one whose task runs in the calling thread; else, in a
    process the nanny started for its one worker, that worker (code run by
    ``Client.run``, threads a task started). Never imports ``distributed``:
    a process that has not imported it runs no worker.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        worker = distributed.get_worker()
    except (ValueError, AttributeError):  # not in a task; a partial import
        worker = None
    if worker is None:
        import multiprocessing

        workers = list(getattr(getattr(distributed, "Worker", None), "_instances", ()))
        nanny_started = multiprocessing.current_process().name == _NANNY_PROCESS
        if len(workers) != 1 or not nanny_started:
            return None
        worker = workers[0]
    nthreads = getattr(getattr(worker, "state", worker), "nthreads", None)
    try:
        return max(1, int(nthreads))
    except (TypeError, ValueError):
        return None


def process_cores():
    """Physical cores this process may run on (affinity and cgroup quotas
    included), as joblib counts them; in a dask worker's task, at most the
    worker's threads (the fits running in the worker share them)."""
    from joblib import cpu_count

    cores = max(1, cpu_count(only_physical_cores=True))
    worker_threads = _dask_worker_threads()
    return cores if worker_threads is None else min(cores, worker_threads)


class _CpuMeter:
    """How many cores other processes keep busy, from ``/proc/stat``: the
    machine's busy time minus this process's own, per second of wall time
    since the last reading. Elsewhere (no ``/proc``) it reports none."""

    def __init__(self):
        self._last = self._read()

    @staticmethod
    def _read():
        try:
            with open("/proc/stat", encoding="ascii") as fh:
                fields = fh.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu":
            return None
        ticks = [int(v) for v in fields[1:]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        busy = sum(ticks[:8]) - idle  # up to steal; guest is inside user
        return time.monotonic(), busy / _CLOCK_TICKS, time.process_time()

    @staticmethod
    def _running_now():
        """Runnable tasks on the machine right now, less the calling thread."""
        try:
            with open("/proc/loadavg", encoding="ascii") as fh:
                running = int(fh.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0.0
        return max(0.0, running - 1.0)

    def others(self):
        """Cores busy with other processes since the last call (on the
        first call: the runnable tasks right now)."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None:
            return 0.0
        wall = now[0] - last[0]
        if wall < 0.02:  # too short to tell: what runs right now
            return self._running_now()
        busy = (now[1] - last[1]) - (now[2] - last[2])
        return max(0.0, busy / wall)


try:
    _CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
    _CLOCK_TICKS = 100

_SHARE_LOCK = threading.Lock()
#: The running fits' shares, by id. Weak: a share whose ``__exit__`` a
#: Ctrl-C skipped (it can land as ``__exit__`` starts) leaves once collected.
_ACTIVE = weakref.WeakValueDictionary()
_IDS = itertools.count()


class CoreShare:
    """A running fit's claim on the process's cores (a context manager).

    ``threads()`` says how many threads the fit's next kernel call gets:
    ``n_jobs``'s count, at most the fit's fair share of the cores among the
    fits running now, and, for ``n_jobs=None``, at most the cores other
    processes leave free.
    """

    def __init__(self, n_jobs):
        self.n_jobs = n_jobs
        self.wanted = effective_n_threads(n_jobs)
        self._meter = _CpuMeter() if n_jobs is None else None
        self._id = next(_IDS)

    def __enter__(self):
        with _SHARE_LOCK:
            _ACTIVE[self._id] = self
        return self

    def __exit__(self, *exc):
        with _SHARE_LOCK:
            _ACTIVE.pop(self._id, None)
        return False

    def threads(self):
        cores = process_cores()
        with _SHARE_LOCK:
            n_fits = max(1, len(_ACTIVE))
        n = min(self.wanted, max(1, cores // n_fits))
        if self._meter is not None and n > 1:
            free = cores - self._meter.others()
            n = min(n, max(1, int(free + 0.5)))
        return n
