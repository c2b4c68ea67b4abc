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
- The cores are those the process may use: its affinity mask (which a
  cpuset sets too) and the CPU quota of its cgroup and the cgroup's parents
  (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), as joblib's
  ``cpu_count`` counts them; a quota of 1.5 CPUs allows 2 threads.
- With ``n_jobs=None`` a fit also leaves alone the CPUs that other processes
  keep busy, measured every epoch from the per-CPU counters of the CPUs the
  process may run on only: a container or cpuset on a busy host whose own
  CPUs are idle keeps all its threads.

None of this changes the results: the kernels give the same bits for any
number of threads. Nothing here changes a setting other code can see (no
BLAS or OpenMP limits, no environment variables).
"""

import itertools
import math
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

#: The files the core budget reads (module-level so that tests can point them
#: at fake ones): the CPU counters, the runnable tasks, this process's cgroup
#: and where the cgroup file systems are mounted.
PROC_STAT = "/proc/stat"
PROC_LOADAVG = "/proc/loadavg"
PROC_SELF_CGROUP = "/proc/self/cgroup"
CGROUP_ROOT = "/sys/fs/cgroup"


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
    """Physical cores this process may run on, as joblib counts them (the
    affinity mask, which a cpuset sets too, and the CPU quota of the cgroup
    at the cgroup mount's root, that is a container's own), within the CPU
    quota of the cgroup this process is in and of its parents (which joblib
    does not read: ``systemd-run -p CPUQuota=``, a pod's slice on a host);
    in a dask worker's task, at most the worker's threads (the fits running
    in the worker share them).

    A quota counts as many CPUs as it gives time to, rounded up, as joblib
    rounds it: 1.5 CPUs allow 2 threads, which then share 1.5 CPUs of time.
    """
    from joblib import cpu_count

    cores = max(1, cpu_count(only_physical_cores=True))
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, quota)
    worker_threads = _dask_worker_threads()
    return cores if worker_threads is None else min(cores, worker_threads)


def _cgroup_cpu_quota():
    """The CPUs the quotas of this process's cgroup and its parents allow
    (the smallest, rounded up), or None when none is set or readable. Reads
    cgroup v2's ``cpu.max`` and v1's ``cpu.cfs_quota_us`` and
    ``cpu.cfs_period_us``."""
    try:
        with open(PROC_SELF_CGROUP, encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and not controllers:  # v2, the unified hierarchy
            base, read = CGROUP_ROOT, _cpu_max
        elif "cpu" in controllers.split(","):  # v1, the cpu controller
            base, read = os.path.join(CGROUP_ROOT, "cpu"), _cfs_quota
        else:
            continue
        # the cgroup, then its parents up to the mount's root (in a container
        # without a cgroup namespace the path is the host's: only the mount's
        # root exists there, and it is the container's cgroup)
        names = [name for name in path.split("/") if name]
        for depth in range(len(names), -1, -1):
            quota = read(os.path.join(base, *names[:depth]))
            if quota is not None:
                quotas.append(quota)
    return min(quotas) if quotas else None


def _quota_cpus(quota, period):
    quota, period = int(quota), int(period)
    if quota <= 0 or period <= 0:  # -1: no quota (v1)
        return None
    return max(1, math.ceil(quota / period))


def _cpu_max(folder):
    try:
        with open(os.path.join(folder, "cpu.max"), encoding="ascii") as fh:
            quota, period = fh.read().split()
        return None if quota == "max" else _quota_cpus(quota, period)
    except (OSError, ValueError):
        return None


def _cfs_quota(folder):
    try:
        with open(os.path.join(folder, "cpu.cfs_quota_us"), encoding="ascii") as fh:
            quota = fh.read()
        with open(os.path.join(folder, "cpu.cfs_period_us"), encoding="ascii") as fh:
            period = fh.read()
        return _quota_cpus(quota, period)
    except (OSError, ValueError):
        return None


def _allowed_cpus():
    """The CPUs this process may run on (its affinity mask; a cpuset sets
    it), or None where the platform does not say."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError, NotImplementedError):
        return None


class _CpuMeter:
    """How many of the CPUs this process may run on other processes keep
    busy, from the per-CPU lines of ``/proc/stat``: the busy time of those
    CPUs minus this process's own (which runs on them only), per second of
    wall time since the last reading. The rest of the machine is not read: a
    container or cpuset on a busy host sees only its own CPUs. ``cpus`` is
    how many CPUs the last reading covered. Elsewhere (no ``/proc``) it
    reports none busy."""

    def __init__(self):
        self.cpus = 0
        self._estimate = None
        self._last = self._read()
        if self._last is not None:
            self.cpus = len(self._last[3])

    @staticmethod
    def _read():
        """(monotonic time, busy seconds of the allowed CPUs, this process's
        CPU seconds, the allowed CPUs read, every CPU's count), or None."""
        allowed = _allowed_cpus()
        try:
            with open(PROC_STAT, encoding="ascii") as fh:
                lines = [line for line in fh if line.startswith("cpu")]
        except OSError:
            return None
        busy, read, n_cpus = 0, [], 0
        for line in lines:
            fields = line.split()
            try:
                cpu = int(fields[0][3:])  # "cpu" alone is the machine's total
            except ValueError:
                continue
            n_cpus += 1
            if allowed is not None and cpu not in allowed:
                continue
            ticks = [int(v) for v in fields[1:]]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
            busy += sum(ticks[:8]) - idle  # up to steal; guest is inside user
            read.append(cpu)
        if not read:
            return None
        return (time.monotonic(), busy / _CLOCK_TICKS, time.process_time(),
                frozenset(read), n_cpus)

    @staticmethod
    def _running_now(reading):
        """Runnable tasks on the allowed CPUs right now, less the calling
        thread. ``/proc/loadavg`` counts the whole machine's: where the
        process may use only some CPUs, only the tasks beyond one per other
        CPU are taken to run on its own."""
        try:
            with open(PROC_LOADAVG, encoding="ascii") as fh:
                running = int(fh.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0.0
        elsewhere = reading[4] - len(reading[3])
        return float(min(len(reading[3]), max(0, running - 1 - elsewhere)))

    def others(self):
        """CPUs busy with other processes since the reading this one is
        measured from: the last one at least 20 ms (two clock ticks) ago.
        Before such a reading: the runnable tasks right now."""
        now = self._read()
        last = self._last
        if now is None:
            return 0.0
        self.cpus = len(now[3])
        if last is None or last[3] != now[3]:  # a new set of CPUs: start again
            self._last, self._estimate = now, None
            return self._running_now(now)
        wall = now[0] - last[0]
        if wall < 0.02:  # too short to tell: the last measure, or what runs now
            if self._estimate is None:
                return self._running_now(now)
            return self._estimate
        self._last = now
        busy = (now[1] - last[1]) - (now[2] - last[2])
        self._estimate = max(0.0, busy / wall)
        return self._estimate


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
            others = self._meter.others()
            # the CPUs the meter reads, or the cores where they are more (a
            # quota or a dask worker's threads make the cores fewer, SMT
            # makes the CPUs more): on a quiet machine nothing is cut
            free = max(cores, self._meter.cpus) - others
            n = min(n, max(1, int(free + 0.5)))
        return n
