"""What the Numba compile costs a new user: first fits, first prediction, first
report, each in a fresh process with an empty cache folder (issue 20, item 3).

Run as a script or under pytest (no full data needed; CI never runs
benchmarks)::

    python benchmarks/bench_compile.py
    python -m pytest benchmarks/bench_compile.py -s

Each figure comes from a new Python process whose ``NUMBA_CACHE_DIR`` is a
new, empty temporary folder, so every kernel it calls is compiled ("cold").
The same code then runs again in another new process on the folder the first
one filled ("warm": the kernels are loaded from the cache). The fits and the
prediction are timed inside the process, after the import and the loading of
the bundled sample; ``skdigits report --sample`` and ``skdigits compile``
are timed from outside, end to end (interpreter start and import
included). The table starts with the machine line. Timings are reported,
never asserted; the targets are those of issue 20.

The last two rows are the floor under those targets: the first call, on one
minibatch, of a minimal plain Numba kernel of a default epoch's work
(``_compile_floor.py``), timed as the fits are. Its cold figure less its warm
one is what Numba alone charges to compile such a kernel on this machine.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skdigits.benchmark import machine_line

_PRELUDE = (
    "import time, warnings; warnings.simplefilter('ignore'); "
    "import skdigits; from skdigits import MLPClassifier, SoftmaxRegression; "
    "from skdigits.datasets import load_mnist; "
    "X, y = load_mnist(sample=True, return_X_y=True); X = X / 255.0; "
)

#: measure -> (code printing the seconds, or None for the report; target)
MEASURES = {
    "first MLPClassifier().fit": (
        "t = time.perf_counter(); "
        "MLPClassifier(random_state=0).fit(X, y); "
        "print(time.perf_counter() - t)", 5.0),
    "first SoftmaxRegression().fit": (
        "t = time.perf_counter(); "
        "SoftmaxRegression(random_state=0).fit(X, y); "
        "print(time.perf_counter() - t)", 2.0),
    "first MLP predict_proba after a fit": (
        "m = MLPClassifier(random_state=0).fit(X, y); "
        "t = time.perf_counter(); m.predict_proba(X); "
        "print(time.perf_counter() - t)", 0.5),
    "skdigits report --sample, end to end": (["report", "--sample", "--force", "-q"],
                                             15.0),
    # the default set (the MLP's float32 epoch, the softmax's float32 and
    # float64 epochs, both forward passes) in one process per core; warm:
    # "nothing to compile". No target: issue 20 asks for the command
    "skdigits compile, end to end": (["compile", "-q"], None),
    # the floor: a minimal plain Numba kernel of a default epoch's work, one
    # function each (_compile_floor.py), first call on one minibatch after
    # the same imports and loading; cold less warm is what Numba charges
    "floor: a minimal softmax epoch": (("_compile_floor.py", "softmax"), None),
    "floor: a minimal MLP epoch": (("_compile_floor.py", "mlp"), None),
}

RESULTS = {}


def _seconds(name, cache_dir):
    """Seconds of measure ``name`` in a new process using ``cache_dir``."""
    code, _ = MEASURES[name]
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    if isinstance(code, (str, tuple)):
        argv = (["-c", _PRELUDE + code] if isinstance(code, str)
                else [str(Path(__file__).with_name(code[0])), *code[1:]])
        out = subprocess.run([sys.executable, *argv], env=env,
                             capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as out_dir:
        argv = code + (["--out", out_dir] if code[0] == "report" else [])
        tic = time.perf_counter()
        subprocess.run([sys.executable, "-m", "skdigits", *argv], env=env,
                       capture_output=True, text=True, check=True)
        return time.perf_counter() - tic


def measure(name):
    """Cold then warm seconds of measure ``name``, stored in ``RESULTS``."""
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = _seconds(name, cache_dir)
        warm = _seconds(name, cache_dir)
    RESULTS[name] = (cold, warm)
    return cold, warm


def table():
    lines = ["", machine_line(),
             f"{'measure':38} {'cold s':>8} {'warm s':>8} {'target':>8}"]
    for name, (cold, warm) in RESULTS.items():
        target = MEASURES[name][1]
        lines.append(f"{name:38} {cold:8.2f} {warm:8.2f} "
                     + (f"{target:8.1f}" if target is not None else f"{'-':>8}"))
    return "\n".join(lines) + "\n"


def test_first_mlp_fit():
    measure("first MLPClassifier().fit")


def test_first_softmax_fit():
    measure("first SoftmaxRegression().fit")


def test_first_mlp_predict_proba():
    measure("first MLP predict_proba after a fit")


def test_report_sample():
    measure("skdigits report --sample, end to end")


def test_compile_command():
    measure("skdigits compile, end to end")


def test_compile_floor():
    measure("floor: a minimal softmax epoch")
    measure("floor: a minimal MLP epoch")


def teardown_module(module):
    if RESULTS:
        sys.stderr.write(table())


if __name__ == "__main__":
    for name in MEASURES:
        measure(name)
    sys.stdout.write(table())
