"""The barriers' debug mode (``SKDIGITS_DEBUG_BARRIERS``): a thread that
misses a barrier becomes an error naming the phase instead of a hang, and
without the mode the barrier reads no clock. Each case runs in a subprocess,
since the setting is compiled into the kernels at import."""

import os
import subprocess
import sys
import textwrap

import pytest

from skdigits._kernels import _numba

_SKIPS = textwrap.dedent("""
    import time
    import numba, numpy as np
    from skdigits._kernels import _sync
    from skdigits._engine._team import Team

    @numba.njit(nogil=True)
    def skips(tid, n, sync):
        _sync.barrier(sync, n, np.int64(_sync.LOSS))  # every thread
        if tid == 0:  # thread 1 misses the next one
            _sync.barrier(sync, n, np.int64(_sync.MINIBATCH))
        return tid

    @numba.njit(nogil=True)
    def keeps(tid, n, sync):
        _sync.barrier(sync, n, np.int64(_sync.LOSS))
        return tid

    print("time called:", "@time(" in keeps.inspect_llvm(keeps.signatures[0])
          if keeps(0, 1, np.zeros(_sync.SYNC_SIZE, np.int64)) == 0 else None)
    with Team() as team:
        print("kept:", team.run(2, keeps))
        if _sync.DEBUG_BARRIERS > 0:
            tic = time.monotonic()
            try:
                team.run(2, skips)
            except _sync.BarrierTimeout as exc:
                print("error:", exc)
            print("seconds:", round(time.monotonic() - tic))
            print("kept again:", team.run(2, keeps))
""")


def _run(debug):
    env = dict(os.environ)
    env.pop("SKDIGITS_DEBUG_BARRIERS", None)
    if debug is not None:
        env["SKDIGITS_DEBUG_BARRIERS"] = debug
    out = subprocess.run([sys.executable, "-c", _SKIPS], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())


def test_a_missed_barrier_is_an_error_naming_its_phase_in_debug_mode():
    got = _run("1")
    assert got["error"] == (
        "skips: a thread waited more than 1 s at the barrier after a minibatch "
        "(backward pass, updates, next gather) (barrier 2 of the call); 1 of 2 "
        "threads had arrived, so another one missed it (SKDIGITS_DEBUG_BARRIERS)")
    # the clock has one-second steps: more than 1 s, at most about 3
    assert 1 <= int(got["seconds"]) <= 4
    # the team works on after the error, and barriers that all reach return
    assert got["kept"] == got["kept again"] == "0"
    assert got["time called"] == "True"


def test_without_debug_mode_the_barrier_reads_no_clock():
    got = _run(None)
    assert got == {"time called": "False", "kept": "0"}


@pytest.mark.parametrize("text, seconds, warns", [
    ("", 0.0, False), ("2.5", 2.5, False), ("0", 0.0, False),
    ("soon", 0.0, True), ("-1", 0.0, True), ("inf", 0.0, True), ("nan", 0.0, True),
])
def test_the_setting_is_seconds_or_a_warning(text, seconds, warns, recwarn):
    assert _numba.debug_barriers({"SKDIGITS_DEBUG_BARRIERS": text}) == seconds
    assert any("SKDIGITS_DEBUG_BARRIERS" in str(w.message) for w in recwarn) == warns


def test_the_debug_setting_keys_the_kernels_cache():
    from skdigits._kernels import _mlp

    stamp = _mlp.mlp_epoch._cache._cache_file._source_stamp
    assert stamp[1:] == (_numba.SOURCES_DIGEST, _numba.DEBUG_BARRIERS)
