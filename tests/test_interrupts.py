"""Ctrl-C at any moment of a prediction or a fit on a large thread team.

SIGINT reaches Python in the main thread only, as a KeyboardInterrupt that
can arise at any bytecode: while the team starts its helpers, hands them
work, waits for them or stops them, and inside Numba's dispatcher during a
first compile. Whatever the moment, the interrupt must come out as a
KeyboardInterrupt (a fit that has finished an epoch keeps it and warns
instead), no thread may hang or outlive the call, and the model must give the
same bits afterwards.

Each storm runs in a child process with a time limit, so a deadlock fails
the test instead of hanging the suite. The child is this file run as a
script; it patches the core count so that a 2-core machine runs teams of 16
and 64 threads.
"""

import json
import os
import subprocess
import sys

import pytest

#: The child's verdict is the last line of its stdout, after this mark.
MARK = "STORM-RESULT "
#: Seconds after which a storm is taken for a deadlock (a few when it works).
HANG = 60


def _run_child(args, timeout=240, env=None):
    """Run this file as a child with ``args``; returns its verdict (a dict),
    or fails the test with what the child left when it hung or crashed.
    The child dumps its threads and exits when its storm lasts over a minute
    (``faulthandler``); ``timeout`` only backs that up, and leaves time for
    the kernels to compile when their cache is empty."""
    cmd = [sys.executable, os.path.abspath(__file__), *map(str, args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=env)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"the child hung (killed after {timeout} s): {args}\n"
                    f"{(err or '')[-6000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if "Timeout (" in proc.stderr:  # faulthandler's dump of a hung child
        pytest.fail(f"the child hung: {args}; its threads (main last):\n"
                    f"{proc.stderr[-6000:]}")
    if proc.returncode != 0 or not lines:
        pytest.fail(f"the child failed (exit {proc.returncode}): {args}\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(lines[-1][len(MARK):])


def _check(verdict):
    said = json.dumps(verdict)
    assert verdict["interrupted"] > 0, said  # the storm hit something
    assert verdict["errors"] == {}, said  # only KeyboardInterrupt came out
    assert verdict["leaked_threads"] == 0, said
    assert verdict["leaked_shares"] == 0, said
    assert verdict["same_bits"], said


@pytest.mark.parametrize("n_threads", [16, 64])
def test_ctrl_c_storm_during_predict_proba(n_threads):
    _check(_run_child(["predict", n_threads, 60, 0]))


@pytest.mark.parametrize("n_threads", [16, 64])
def test_ctrl_c_storm_during_fit(n_threads):
    _check(_run_child(["fit", n_threads, 40, 1]))


def test_ctrl_c_during_a_first_compile(tmp_path):
    # an empty Numba cache: each kernel compiles in its first call
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    _check(_run_child(["compile", 16, 12, 2, tmp_path], env=env))


def test_interrupts_deferred_raises_at_the_end_and_restores_the_handler():
    import _thread
    import signal

    from skdigits._engine._team import interrupts_deferred

    before = signal.getsignal(signal.SIGINT)
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            _thread.interrupt_main()
            for i in range(1000):  # bytecodes: the handler runs among them
                steps.append(i)
            steps.append("end")
    assert steps[-1] == "end"
    assert signal.getsignal(signal.SIGINT) is before
    # nested blocks: the interrupt comes at the end of the outer one
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            with interrupts_deferred():
                _thread.interrupt_main()
                sum(range(1000))
            steps.append("outer")
    assert steps[-1] == "outer"
    assert signal.getsignal(signal.SIGINT) is before
    with interrupts_deferred():  # nothing came: nothing is raised
        pass


def test_interrupts_deferred_is_a_no_op_outside_the_main_thread():
    import signal
    import threading

    from skdigits._engine._team import interrupts_deferred

    seen = []

    def body():
        with interrupts_deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGINT)]


def test_a_team_never_closed_stops_its_helpers_when_collected():
    # Ctrl-C can land as ``Team.__exit__`` starts, before it closes the team
    import gc
    import threading

    from skdigits._engine._team import Team

    def kernel(tid, n_threads, sync):
        return tid

    others = set(threading.enumerate())
    team = Team()
    assert team.run(3, kernel) == 0
    helpers = [t for t in threading.enumerate()
               if t.name == "skdigits-worker" and t not in others]
    assert len(helpers) == 2
    del team
    gc.collect()
    for thread in helpers:
        thread.join(5.0)
    assert not any(thread.is_alive() for thread in helpers)


# ---------------------------------------------------------------------------
# the child


def _leaked_workers(grace=5.0):
    """Helper threads still alive after a collection and ``grace`` seconds
    for them to end."""
    import gc
    import threading
    import time

    gc.collect()
    deadline = time.monotonic() + grace
    for t in threading.enumerate():
        if t.name == "skdigits-worker":
            t.join(max(0.0, deadline - time.monotonic()))
    return sum(t.name == "skdigits-worker" for t in threading.enumerate())


def _storm(kind, n_threads, rounds, seed):
    """Fit a small model, then run ``rounds`` calls of ``kind`` ("predict":
    ``predict_proba``; "fit") on ``n_threads`` threads, each hit by a SIGINT
    at a random moment; return the verdict."""
    import _thread
    import faulthandler
    import random
    import signal
    import threading
    import time
    import warnings

    import numpy as np
    from sklearn.datasets import load_digits

    from skdigits import MLPClassifier, _cores
    from skdigits._engine import _models

    sys.setswitchinterval(1e-4)  # the interrupter wakes when its sleep ends
    _cores.process_cores = lambda: n_threads
    # teams as large as asked, whatever the work (the kernels give the same
    # bits for any thread count)
    _models.MLPModel.max_threads = lambda self, batch_size: n_threads
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    params = dict(hidden_layer_sizes=(32,), batch_size=200, max_iter=4,
                  random_state=0, n_jobs=n_threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(**params).fit(X, y)
    expected = model.predict_proba(X)
    same = np.array_equal(expected, model.set_params(n_jobs=1).predict_proba(X))
    model.set_params(n_jobs=n_threads)

    def call():
        if kind == "predict":
            return model.predict_proba(X)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            MLPClassifier(**params).fit(X, y)
        return any("interrupted by the user" in str(w.message) for w in caught)

    spans = []
    for _ in range(5):
        tic = time.perf_counter()
        call()
        spans.append(time.perf_counter() - tic)
    span = sorted(spans)[2]  # how long one call takes

    # SIGINT raises KeyboardInterrupt during a call only: one that lands in
    # this loop's own code is counted and dropped
    state = {"in_call": False, "late": 0}

    def on_sigint(signum, frame):
        if state["in_call"]:
            raise KeyboardInterrupt
        state["late"] += 1

    signal.signal(signal.SIGINT, on_sigint)
    faulthandler.dump_traceback_later(HANG, exit=True)  # stacks if it hangs
    main = threading.main_thread().ident
    rng = random.Random(seed)
    go, sent = threading.Semaphore(0), threading.Semaphore(0)
    delays = []

    def interrupter():
        for i in range(rounds):
            go.acquire()
            time.sleep(delays[i])
            if i % 2:  # a real signal: it also breaks a wait in a lock
                signal.pthread_kill(main, signal.SIGINT)
            else:
                _thread.interrupt_main()
            sent.release()

    threading.Thread(target=interrupter, name="interrupter", daemon=True).start()
    counts = {"interrupted": 0, "completed": 0, "errors": {}}
    for i in range(rounds):
        delays.append(rng.uniform(0.0, span))
        go.release()
        state["in_call"] = True
        try:
            try:
                out = call()
            finally:
                state["in_call"] = False
            if out is True:  # a fit that kept its epochs
                counts["interrupted"] += 1
            else:
                counts["completed"] += 1
        except KeyboardInterrupt:
            counts["interrupted"] += 1
        except BaseException as exc:  # noqa: BLE001 - the finding itself
            key = f"{type(exc).__name__}: {exc}"[:200]
            counts["errors"][key] = counts["errors"].get(key, 0) + 1
        sent.acquire()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    faulthandler.cancel_dump_traceback_later()

    leaked = _leaked_workers()
    after = model.predict_proba(X)
    if kind == "fit":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            refit = MLPClassifier(**params).fit(X, y)
        after = refit.predict_proba(X)
    return dict(kind=kind, n_threads=n_threads, rounds=rounds,
                span_ms=round(1e3 * span, 2), late=state["late"],
                leaked_threads=leaked, leaked_shares=len(_cores._ACTIVE),
                same_bits=bool(same and np.array_equal(after, expected)), **counts)


#: A kernel compiled afresh in each round of the compile storm: every thread
#: claims items and meets the others at a barrier, as the real kernels do.
_KERNEL = """
from skdigits._kernels._numba import jit
from skdigits._kernels._sync import TEST_PHASE, barrier, claim


def _kernel_py(tid, n_threads, sync, out):
    i = claim(sync)
    while i < out.size:
        out[i] = i * {round}
        i = claim(sync)
    barrier(sync, n_threads, TEST_PHASE)


kernel = jit(_kernel_py)
"""


def _compile_storm(n_threads, rounds, seed, folder):
    """A first call of ``rounds`` fresh kernels (compiled and cached in
    ``NUMBA_CACHE_DIR``), each hit by a SIGINT at a random moment of its
    compile, then a call on a team of ``n_threads``; return the verdict."""
    import faulthandler
    import importlib.util
    import random
    import signal
    import threading
    import time

    import numpy as np

    from skdigits import _cores
    from skdigits._engine import _team

    # stacks if it hangs (the first kernel compiles the barrier too)
    faulthandler.dump_traceback_later(2 * HANG, exit=True)
    sys.setswitchinterval(1e-4)
    # Python's own handler, even when the parent ignores SIGINT (a job in
    # the background)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(seed)
    main = threading.main_thread().ident
    counts = {"interrupted": 0, "completed": 0, "errors": {}}
    same = True
    span = 0.3  # about the compile time of one kernel
    for r in range(rounds):
        path = os.path.join(folder, f"kernel_{seed}_{r}.py")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(_KERNEL.format(round=r))
        spec = importlib.util.spec_from_file_location(f"kernel_{seed}_{r}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out = np.zeros(1000)
        timer = threading.Timer(rng.uniform(0.0, span), signal.pthread_kill,
                                (main, signal.SIGINT))
        outcome = "completed"
        try:
            try:
                timer.start()
                with _team.Team() as team:
                    # odd rounds: the calling thread compiles alone
                    team.run(1 if r % 2 else n_threads, module.kernel, out)
            finally:
                timer.join()  # the SIGINT is sent: it lands in this try
                time.sleep(0.01)
        except KeyboardInterrupt:
            outcome = "interrupted"
        except BaseException as exc:  # noqa: BLE001 - the finding itself
            key = f"{type(exc).__name__}: {exc}"[:200]
            counts["errors"][key] = counts["errors"].get(key, 0) + 1
            outcome = None
        if outcome:
            counts[outcome] += 1
        try:  # the kernel works once the interrupt is over
            out[:] = 0
            with _team.Team() as team:
                team.run(n_threads, module.kernel, out)
            same = same and np.array_equal(out, np.arange(1000.0) * r)
        except BaseException as exc:  # noqa: BLE001
            key = f"afterwards {type(exc).__name__}: {exc}"[:200]
            counts["errors"][key] = counts["errors"].get(key, 0) + 1
    leaked = _leaked_workers()
    return dict(kind="compile", n_threads=n_threads, rounds=rounds,
                leaked_threads=leaked, leaked_shares=len(_cores._ACTIVE),
                same_bits=bool(same), **counts)


def _main(argv):
    kind, n_threads, rounds, seed = argv[:4]
    if kind == "compile":
        verdict = _compile_storm(int(n_threads), int(rounds), int(seed), argv[4])
    else:
        verdict = _storm(kind, int(n_threads), int(rounds), int(seed))
    print(MARK + json.dumps(verdict), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])


def test_interrupts_deferred_restores_the_handler_when_its_start_fails(monkeypatch):
    # an exception from another signal's handler right after ours is
    # installed must not leave it installed (Ctrl-C would be lost for good)
    import signal

    from skdigits._engine import _team

    before = signal.getsignal(signal.SIGINT)
    real = signal.signal
    calls = []

    def install_then_fail(signum, handler):
        previous = real(signum, handler)
        calls.append(handler)
        if len(calls) == 1:
            raise RuntimeError("another signal's handler raised here")
        return previous

    monkeypatch.setattr(_team.signal, "signal", install_then_fail)
    with pytest.raises(RuntimeError, match="another signal"):
        with _team.interrupts_deferred():
            pass
    monkeypatch.setattr(_team.signal, "signal", real)
    assert signal.getsignal(signal.SIGINT) is before
