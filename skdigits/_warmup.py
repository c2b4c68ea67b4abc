"""Compile the kernels ahead of time, in parallel processes (issue 20, item 3).

A cold start compiles each entry point a fit or a prediction needs, one after
the other, in the process that needs it: about 7 s for the MLP epoch, 5 s for
the softmax epoch and 2.5 s for a forward pass after an epoch on a 2-core Zen 5. Numba's
compiler holds a process-wide lock, so threads cannot share the work, but
processes can: each compiles its part into the on-disk cache, and the process
that needs a kernel then loads it (a few hundredths of a second).

A *job* names one specialisation of one entry point, ``"kernel-dtype-kind"``
(``"mlp_epoch-float32-dense"``, ``"mlp_forward-csr"``: the forward passes run
in float64 whatever the model's dtype). A job is run by a tiny workload on
random data in a fresh process (``skdigits._warmup.main``), which
compiles exactly the specialisation a real fit or prediction of that kind
uses, since the engine makes every kernel argument canonical first
(``_engine._models.KernelData``). A forward pass's job also compiles the loss
of a validation split (``_losses.loss_grad``), which a fit with early stopping
runs after each epoch.

- ``warm_up(jobs, n_jobs)`` runs the jobs not yet in the cache in up to
  ``n_jobs`` processes and waits: ``skdigits compile`` (fleets, container
  images), dask workers before a search.
- ``start(jobs, n_procs)`` starts them and returns: the report starts both
  forward passes this way, in one process, once its data is loaded.
- ``compile_ahead(job)`` starts one job in the background and returns:
  the first fit of a process starts its model's forward pass this way, so the
  first ``predict`` after it does not wait for another compile.
- ``settle(kernel)``, called by the engine before it runs an entry point,
  waits for a job of this process that is compiling that kernel, rather than
  compiling it a second time; it waits for the kernel, not for the process to
  end.

Nothing here changes what the kernels compute: the cache holds the same code
that compiling in-process would give. Without an on-disk cache (see
``_kernels._numba``) every process compiles for itself, so nothing is started.
``SKDIGITS_COMPILE_AHEAD=0`` turns the background compiles of ``fit`` and of
the report off.
"""

import atexit
import logging
import os
import subprocess
import sys
import threading
import time

import numpy as np

__all__ = ["JOBS", "ahead_enabled", "cold_jobs", "compile_ahead",
           "estimate_seconds", "jobs_for", "settle", "start", "wait", "warm_up"]

logger = logging.getLogger(__name__)

#: Entry point -> (kernel module, seconds its job took on the reference
#: machine, a 2-core AMD EPYC Zen 5, in a process of its own with an empty
#: cache, less the 1 s of the process's imports; for ordering the jobs and the
#: estimate logged before a wait). Measured 2026-12-07, at 3fa7ddb.
KERNELS = {
    "mlp_epoch": ("_mlp", 5.6),
    "mlp_epoch_deep": ("_mlp", 6.7),
    "mlp_forward": ("_mlp", 2.8),
    "linear_epoch": ("_linear", 3.8),
    "linear_forward": ("_linear", 2.1),
}
_EPOCHS = ("mlp_epoch", "mlp_epoch_deep", "linear_epoch")
DTYPES = ("float32", "float64")
KINDS = ("dense", "csr")


def _job_names():
    names = []
    for kernel in KERNELS:
        for kind in KINDS:
            if kernel in _EPOCHS:
                names += [f"{kernel}-{dtype}-{kind}" for dtype in DTYPES]
            else:
                names.append(f"{kernel}-{kind}")
    return tuple(names)


#: Every job, by name.
JOBS = _job_names()

#: Background compiles started by this process: job -> Popen.
RUNNING = {}
#: Background processes whose jobs are all done, not yet seen to end (see
#: ``settle``).
FINISHING = set()
_LOCK = threading.Lock()
#: Seconds ``settle`` waits for a background compile before compiling itself.
SETTLE_TIMEOUT = 120.0


def parse(job):
    """``(kernel, dtype or None, kind)`` of job ``job``; ValueError when it
    is not one of ``JOBS``."""
    if job not in JOBS:
        raise ValueError(f"unknown kernel job {job!r}; known: {', '.join(JOBS)}")
    parts = job.split("-")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], None,
                                                                    parts[1])


def jobs_for(estimator, sparse=False, dtype=None, predict=True):
    """The jobs a fit of ``estimator`` (an unfitted skdigits estimator, its
    parameters set) needs on dense (or, ``sparse``, CSR) data, and with
    ``predict`` its prediction. ``dtype``: the data's float dtype, for an
    estimator whose ``dtype`` is None or absent (``SoftmaxRegression``: the
    data's)."""
    kind = "csr" if sparse else "dense"
    model_dtype = getattr(estimator, "dtype", None) or dtype or "float64"
    try:  # a name, a NumPy type or dtype (np.float32)
        model_dtype = np.dtype(model_dtype).name
    except TypeError:
        model_dtype = str(model_dtype)
    if model_dtype not in DTYPES:
        model_dtype = "float64"
    if hasattr(estimator, "hidden_layer_sizes"):
        sizes = estimator.hidden_layer_sizes
        depth = 1 if isinstance(sizes, int) else len(tuple(sizes))
        kernel = "mlp_epoch" if depth <= 1 else "mlp_epoch_deep"
        forward = "mlp_forward"
    else:
        kernel, forward = "linear_epoch", "linear_forward"
    jobs = [f"{kernel}-{model_dtype}-{kind}"]
    if predict:
        jobs.append(f"{forward}-{kind}")
    return jobs


def forward_job(model, sparse=False):
    """The job of the forward pass of ``model`` (an ``_engine._models``
    model) on dense or CSR data."""
    kernel = "mlp_forward" if hasattr(model, "sizes") else "linear_forward"
    return f"{kernel}-{'csr' if sparse else 'dense'}"


def epoch_job(model, dtype, sparse=False):
    """The job of the epoch kernel ``model`` (an ``_engine._models`` model)
    trains with in ``dtype`` on dense or CSR data."""
    if hasattr(model, "sizes"):
        kernel = "mlp_epoch" if len(model.sizes) <= 3 else "mlp_epoch_deep"
    else:
        kernel = "linear_epoch"
    return f"{kernel}-{np.dtype(dtype).name}-{'csr' if sparse else 'dense'}"


#: Jobs whose compile this process has announced.
ANNOUNCED = set()


def announce(jobs, seconds=None):
    """Log at INFO, once per process, that the kernels of ``jobs`` not yet
    cached are being compiled, with about how long it takes (``seconds``, or
    the reference machine's figures); returns the jobs announced."""
    todo = [job for job in jobs if job not in ANNOUNCED and job not in _KNOWN]
    cold = []
    for job in todo:
        if is_cached(job):
            _KNOWN.add(job)
        else:
            cold.append(job)
    if not cold:
        return []
    ANNOUNCED.update(cold)
    if seconds is None:
        seconds = estimate_seconds(cold, 1)
    logger.info("Compiling skdigits' kernels for this CPU, once (about %.0f s)",
                seconds)
    return cold


def _dispatcher(kernel):
    import importlib

    return getattr(importlib.import_module(f"skdigits._kernels.{KERNELS[kernel][0]}"),
                   kernel)


def _matches(job, signature):
    """Whether ``signature`` (type names, named tuples spelled out: see
    ``_signatures.flatten``) is job ``job``'s specialisation."""
    from ._kernels import _signatures

    kernel, dtype, kind = parse(job)
    key = f"{KERNELS[kernel][0]}.{kernel}"
    theta, indptr = _signatures._axes_of(key, signature)
    if (indptr == "none") != (kind == "dense"):
        return False
    return dtype is None or f"({dtype}," in theta


def is_cached(job):
    """Whether job ``job``'s specialisation is compiled in this process or in
    the on-disk cache for this CPU (Numba's cache index, read through its
    internals; None when they are missing: unknown)."""
    from ._kernels import _signatures

    kernel, _, _ = parse(job)
    disp = _dispatcher(kernel)
    if any(_matches(job, _signatures.flatten(sig)) for sig in disp.signatures):
        return True
    cache_file = getattr(getattr(disp, "_cache", None), "_cache_file", None)
    if cache_file is None or not hasattr(cache_file, "_load_index"):
        return None
    try:
        index = cache_file._load_index()
        magic = disp.targetctx.codegen().magic_tuple()
    except Exception:  # an unreadable index: Numba compiles as usual
        return None
    return any(key[1] == magic and _matches(job, _signatures.flatten(key[0]))
               for key in index)


def cold_jobs(jobs):
    """The jobs of ``jobs`` whose kernels a process would compile (not known
    to be in the cache), in their order, without repeats."""
    return [job for job in dict.fromkeys(jobs) if is_cached(job) is not True]


def _caching():
    from ._kernels import _numba

    return _numba.CACHE_KIND != "none"


def _schedule(jobs, n_procs):
    """``jobs`` split into at most ``n_procs`` lists, longest first onto the
    least loaded (the classic LPT rule); each list's total seconds. Each list
    keeps the order of ``jobs``: a process compiles first what is needed
    first."""
    lists = [[] for _ in range(max(1, min(n_procs, len(jobs))))]
    loads = [0.0] * len(lists)
    for job in sorted(jobs, key=lambda j: -KERNELS[parse(j)[0]][1]):
        i = loads.index(min(loads))
        lists[i].append(job)
        loads[i] += KERNELS[parse(job)[0]][1]
    order = {job: i for i, job in enumerate(jobs)}
    return [sorted(part, key=order.__getitem__) for part in lists], loads


def estimate_seconds(jobs, n_procs):
    """Seconds ``warm_up(jobs, n_procs)`` takes on the reference machine."""
    jobs = list(jobs)
    return max(_schedule(jobs, n_procs)[1]) if jobs else 0.0


def _command(jobs):
    """A child running ``jobs`` with this very skdigits: its folder goes
    first on the child's path, before the working folder (which ``-m`` and
    ``-c`` put first, and which may hold another checkout)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from skdigits._warmup import main; sys.exit(main())")
    return [sys.executable, "-c", code, here, *jobs]


def _environ():
    """The children's environment: this one, without the background
    compiles of their own fits."""
    return dict(os.environ, SKDIGITS_COMPILE_AHEAD="0")


def start(jobs, n_procs, errors=True):
    """Start compiling the jobs of ``jobs`` not known to be cached, in up to
    ``n_procs`` background processes (spread by ``_schedule``: longest
    first, each process in the order of ``jobs``), and return
    ``[(jobs, Popen), ...]``. Each job is listed in ``RUNNING`` until
    ``settle`` or ``wait`` sees it done. Nothing is started without an
    on-disk cache. ``errors=False``: their error output is
    dropped (no one will ``wait`` for them to read it)."""
    for job in jobs:
        parse(job)
    if not _caching() or n_procs < 1:
        return []
    with _LOCK:
        todo = [job for job in cold_jobs(jobs) if job not in RUNNING]
        if not todo:
            return []
        started = []
        for part in _schedule(todo, int(n_procs))[0]:
            proc = subprocess.Popen(_command(part), env=_environ(),
                                    stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE if errors else
                                    subprocess.DEVNULL, text=True)
            RUNNING.update(dict.fromkeys(part, proc))
            started.append((part, proc))
    logger.debug("Compiling %s in %d background process(es)", ", ".join(todo),
                 len(started))
    return started


def wait(started):
    """Wait for the processes ``start`` returned; RuntimeError naming the
    jobs and the last line of the error of any that failed. On an exception
    here (Ctrl-C) the processes are stopped."""
    failed = []
    try:
        for part, proc in started:
            _, err = proc.communicate()
            with _LOCK:
                for job in part:
                    RUNNING.pop(job, None)
            if proc.returncode != 0:
                last = (err or "").strip().splitlines()
                failed.append(f"{', '.join(part)}: "
                              f"{last[-1] if last else f'exit {proc.returncode}'}")
    finally:
        for _, proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if failed:
        raise RuntimeError("compiling skdigits' kernels failed: " + "; ".join(failed))


def stop(started):
    """Stop the processes of ``started`` (as ``start`` returns) still running
    and forget their jobs: for a caller that leaves early (an error, Ctrl-C)
    or no longer needs them."""
    for part, proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stderr,):
            if stream is not None:
                stream.close()
        with _LOCK:
            for job in part:
                if RUNNING.get(job) is proc:
                    del RUNNING[job]


def wait_quietly(started=None):
    """``wait`` for ``started`` (None: every process of ``RUNNING``), a
    failure only logged: whoever needs a kernel it did not compile compiles
    it."""
    if started is None:
        procs = {}
        for job, proc in list(RUNNING.items()):
            procs.setdefault(proc, []).append(job)
        started = [(part, proc) for proc, part in procs.items()]
    try:
        wait(started)
    except RuntimeError as exc:
        logger.warning("%s; each process compiles what it needs instead", exc)


def warm_up(jobs, n_jobs=None):
    """Compile the kernels of ``jobs`` (names from ``JOBS``) that are not in
    the on-disk cache yet, in up to ``n_jobs`` processes (None: one per core
    this process may use), and wait for them. Returns the jobs it compiled.

    Raises RuntimeError, naming the job and the last line of its error, when
    a process fails (the cache keeps what the others compiled).
    """
    if n_jobs is None:
        from ._cores import process_cores

        n_jobs = process_cores()
    tic = time.perf_counter()
    started = start(jobs, n_jobs)
    wait(started)
    done = [job for part, _ in started for job in part]
    if done:
        logger.debug("Compiled %d kernel(s) in %d process(es) in %.1f s: %s",
                    len(done), len(started), time.perf_counter() - tic,
                    ", ".join(done))
    return done


def ahead_enabled():
    """Whether background compiles may start: not with
    ``SKDIGITS_COMPILE_AHEAD=0``, in a frozen application, or with fewer than
    two cores for this process."""
    if os.environ.get("SKDIGITS_COMPILE_AHEAD", "1").strip() in ("0", "false", "no"):
        return False
    if getattr(sys, "frozen", False) or not sys.executable:
        return False
    from ._cores import process_cores

    return process_cores() >= 2


#: Jobs this process found cached: not looked up again.
_KNOWN = set()


def compile_ahead(job):
    """Start compiling job ``job`` in a background process when this process
    has not compiled it, the cache does not hold it, no such process runs and
    a second core is free for it (``SKDIGITS_COMPILE_AHEAD=0``: never).
    Returns whether one was started. Its errors are left to the compile that
    would happen anyway, when the kernel is first called."""
    if job in _KNOWN or job in RUNNING or not ahead_enabled():
        return False
    if is_cached(job):
        _KNOWN.add(job)
        return False
    return bool(start([job], 1, errors=False))


def settle(kernel):
    """Wait (at most ``SETTLE_TIMEOUT`` s) until the background compiles of
    this process that build entry point ``kernel`` (a dispatcher) have put it
    in the cache (or stopped), so that the call loads it instead of compiling
    it a second time."""
    if not RUNNING:
        return
    name = getattr(getattr(kernel, "py_func", None), "__name__", "").strip("_")
    name = name[:-3] if name.endswith("_py") else name
    jobs = [job for job in list(RUNNING) if parse(job)[0] == name]
    deadline = time.monotonic() + SETTLE_TIMEOUT
    for job in jobs:
        proc = RUNNING.get(job)
        while (proc is not None and proc.poll() is None and not is_cached(job)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        with _LOCK:
            RUNNING.pop(job, None)
            if proc is not None and proc not in RUNNING.values():
                # its jobs are done; it may still compile the validation
                # loss, or be exiting: no one waits for it
                FINISHING.add(proc)
    _reap_finished()


def _reap_finished():
    """Forget the processes of ``FINISHING`` that have ended."""
    with _LOCK:
        for proc in [p for p in FINISHING if p.poll() is not None]:
            FINISHING.discard(proc)
            _reap(proc)


def _reap(proc, seconds=5.0):
    """Wait (at most ``seconds``, then stop it) for a process, and close its
    error stream."""
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


@atexit.register
def _stop_at_exit():
    """Processes still compiling when this one ends are stopped: they were
    for this process (the cache keeps what they finished)."""
    for proc in set(RUNNING.values()) | FINISHING:
        if proc.poll() is None:
            proc.kill()
        _reap(proc)
    RUNNING.clear()
    FINISHING.clear()


# The jobs' workloads, run in the child processes ---------------------------

def _data(kind, n_rows=24, n_features=6, n_classes=3):
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = rng.random((n_rows, n_features))
    X[X < 0.3] = 0.0
    y = np.arange(n_rows) % n_classes
    return (sp.csr_matrix(X) if kind == "csr" else X), y


def run_job(job):
    """Compile job ``job``'s kernel in this process by a tiny workload."""
    import warnings

    kernel, dtype, kind = parse(job)
    X, y = _data(kind)
    if dtype is not None:
        X = X.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kernel in _EPOCHS:
            from . import MLPClassifier, SoftmaxRegression

            if kernel == "linear_epoch":
                est = SoftmaxRegression(max_iter=1, batch_size=8)  # X's dtype
            else:
                hidden = (4,) if kernel == "mlp_epoch" else (4, 4)
                est = MLPClassifier(hidden_layer_sizes=hidden, max_iter=1,
                                    batch_size=8, dtype=dtype, random_state=0)
            est.fit(X, y)
            return
        from ._engine._models import LinearModel, MLPModel
        from ._engine._team import Team
        from ._engine._train import evaluate
        from ._kernels import _losses, _mlp

        if kernel == "mlp_forward":
            model = MLPModel([X.shape[1], 4, 3], _mlp.RELU, _losses.SOFTMAX)
        else:
            model = LinearModel(X.shape[1], 3, _losses.SOFTMAX)
        theta = model.init_params(np.random.default_rng(0), np.float64)
        rows = np.arange(X.shape[0], dtype=np.int64)
        # the forward pass, then the loss of a validation split
        # (``_losses.loss_grad``), as a fit with early stopping runs them
        with Team() as team:
            evaluate(model, team, 1, X, y.astype(np.int64), np.ones(X.shape[0]),
                     rows, theta, 3)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    for job in argv:
        parse(job)
    for job in argv:
        run_job(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
