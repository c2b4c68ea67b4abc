"""MLPClassifier against PyTorch and scikit-learn's MLPClassifier, side by side.

Run (full data needed; CI never runs benchmarks), with the BLAS kernel the
processor supports (this project's environment forces an older one)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE SKDIGITS_DATA=../shared/data \
        python -m pytest benchmarks/bench_mlp.py --benchmark-only -s

``SKDIGITS_BENCH_EPOCHS`` (default 10) sets the epochs of the throughput part;
``-k`` picks parts (``-k throughput``,
``-k memory``, ``-k compile``). All sides fit the same float32 data (pixels /
255) in the same process, one after the other, with the same thread budget
(skdigits' default, given to scikit-learn's BLAS through ``threadpool_limits``
and to PyTorch through ``torch.set_num_threads``); the table printed at the end
(to stderr, so pass ``-s``) gives each figure beside the peer's from the same
run, the ratio and the target, after the machine line. Timings are reported,
never asserted; the tests assert only that the results are sane (accuracies,
finite positive times) and that skdigits reaches its accuracy targets.

1. Throughput: 784-256-10 ReLU, Adam lr 1e-3 (constant), batch 128, alpha
   1e-4 (sklearn, skdigits) / no weight decay (torch), ``E`` epochs; seconds
   per epoch = fit wall time / epochs run, and test accuracy. skdigits is
   timed after a warm-up fit on a few rows (compile / cache load excluded,
   reported in part 5); torch gets a few warm-up batches as well.
   Targets: skdigits <= 1.0 x torch and <= 0.66 x sklearn.
2-3. Time to accuracy and Fashion-MNIST with the defaults, over seeds 0-4:
   ``bench_recipe.py``.
4. Peak memory of a default ``MLPClassifier(max_iter=2)`` fit on full MNIST,
   in a fresh process that loaded the float32 training set from ``.npy`` and
   did a warm-up fit: RSS read from ``/proc/self/statm`` by a thread every
   ~2 ms (the kernels release the GIL), cross-checked with the kernel's
   high-water mark (``VmHWM`` after resetting it through
   ``/proc/self/clear_refs``). Ratio = (data + peak increase) / (data +
   weights + buffers), where data = X and y bytes and weights + buffers =
   4 x parameters (weights, gradient, Adam's two moments) + the minibatch,
   activation and backprop buffers of one batch, all float32. Target <= 1.5.
5. Compile / load overhead: in a fresh process, the first
   ``MLPClassifier(max_iter=1, hidden_layer_sizes=(256,))`` fit on 1000 rows
   minus a second identical fit, with a warm Numba cache (target <= 2 s,
   median of 3 processes) and with an empty one (reported). Both use a
   private temporary ``NUMBA_CACHE_DIR``.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest
from _bench_data import _data, _have_full_data  # benchmarks/, on sys.path under pytest

from skdigits import MLPClassifier
from skdigits._cores import effective_n_threads
from skdigits.benchmark import (
    TorchMLP,
    equal_budget,
    fit_quietly,
    machine_line,
    settle,
    skdigits_mlp,
    sklearn_mlp,
)

EPOCHS = int(os.environ.get("SKDIGITS_BENCH_EPOCHS", "10"))
BATCH = 128
LR = 1e-3
WARMUP_ROWS = 512

RESULTS = {}
BUDGET = effective_n_threads(None)
LOAD_AT_START = os.getloadavg()


pytestmark = pytest.mark.skipif(
    not _have_full_data(),
    reason="full MNIST not found: set SKDIGITS_DATA (e.g. ../shared/data)")


@pytest.fixture(scope="module")
def mnist():
    return _data("digits")


@pytest.fixture(scope="module")
def warm(mnist):
    """Compile (or load from the Numba cache) the kernels every timed
    skdigits fit uses, so that no timing includes it."""
    X, y = mnist[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(max_iter=1, random_state=0).fit(X[:WARMUP_ROWS], y[:WARMUP_ROWS])
        MLPClassifier(max_iter=1, learning_rate="constant", random_state=0).fit(
            X[:WARMUP_ROWS], y[:WARMUP_ROWS])


@pytest.fixture(scope="module")
def npy_dir(mnist):
    """The float32 training set as .npy files, for the subprocess parts."""
    X, y = mnist[:2]
    with tempfile.TemporaryDirectory(prefix="skdigits-bench-mlp-") as d:
        np.save(os.path.join(d, "X.npy"), X)
        np.save(os.path.join(d, "y.npy"), y)
        np.save(os.path.join(d, "X1000.npy"), X[:1000])
        np.save(os.path.join(d, "y1000.npy"), y[:1000])
        yield d


def _torch():
    """The torch module, or skip (recording why, for the table)."""
    try:
        import torch
    except ImportError as exc:
        RESULTS["torch_missing"] = f"torch not importable ({exc})"
        pytest.skip(f"torch column skipped: torch not importable ({exc})")
    return torch


def _check_time(sec):
    assert math.isfinite(sec) and sec > 0, sec


# ---------------------------------------------------------------------------
# fits

def _fit_skdigits_throughput(X, y, epochs):
    model = skdigits_mlp((256,), batch_size=BATCH, learning_rate_init=LR,
                         epochs=epochs)
    fit_quietly(model, X, y)
    return model


def _fit_sklearn_throughput(X, y, epochs):
    model = sklearn_mlp((256,), batch_size=BATCH, learning_rate_init=LR,
                        epochs=epochs)
    fit_quietly(model, X, y)
    return model


def _torch_net(torch, hidden, seed=0):
    return TorchMLP(torch, 784, 10, hidden, batch_size=BATCH,
                    learning_rate_init=LR, seed=seed)


def _torch_warmup(torch, X, y, hidden):
    _torch_net(torch, hidden, seed=1).epoch(X[:WARMUP_ROWS], y[:WARMUP_ROWS])


def _torch_tensors(torch, mnist):
    X, y, Xt, yt = mnist
    net = _torch_net(torch, (8,))
    return (*net.tensors(X, y), *net.tensors(Xt, yt))


# ---------------------------------------------------------------------------
# 1. throughput

def test_throughput_skdigits(benchmark, mnist, warm):
    X, y, Xt, yt = mnist
    settle()
    model = benchmark.pedantic(_fit_skdigits_throughput, args=(X, y, EPOCHS),
                               rounds=1, iterations=1)
    sec = benchmark.stats.stats.median
    acc = model.score(Xt, yt)
    RESULTS["tp skdigits"] = dict(epoch=sec / model.n_iter_, acc=acc,
                                  n_iter=model.n_iter_)
    assert model.n_iter_ == EPOCHS
    _check_time(sec)
    assert acc > 0.95 if EPOCHS >= 2 else acc > 0.9


def test_throughput_sklearn(benchmark, mnist):
    X, y, Xt, yt = mnist
    with equal_budget(BUDGET):
        settle()
        model = benchmark.pedantic(_fit_sklearn_throughput, args=(X, y, EPOCHS),
                                   rounds=1, iterations=1)
    sec = benchmark.stats.stats.median
    acc = model.score(Xt, yt)
    RESULTS["tp sklearn"] = dict(epoch=sec / model.n_iter_, acc=acc,
                                 n_iter=model.n_iter_)
    assert model.n_iter_ == EPOCHS
    _check_time(sec)
    assert acc > 0.95 if EPOCHS >= 2 else acc > 0.9


def test_throughput_torch(benchmark, mnist):
    torch = _torch()
    X, y, Xt, yt = _torch_tensors(torch, mnist)
    _torch_warmup(torch, X, y, (256,))
    net = _torch_net(torch, (256,))

    def fit():
        for _ in range(EPOCHS):
            net.epoch(X, y)

    with equal_budget(BUDGET):
        settle()
        benchmark.pedantic(fit, rounds=1, iterations=1)
        threads = torch.get_num_threads()
    sec = benchmark.stats.stats.median
    acc = net.accuracy(Xt, yt)
    RESULTS["tp torch"] = dict(epoch=sec / EPOCHS, acc=acc, n_iter=EPOCHS,
                               threads=threads)
    _check_time(sec)
    assert acc > 0.95 if EPOCHS >= 2 else acc > 0.9


# ---------------------------------------------------------------------------
# 4. peak memory

_MEMORY_CHILD = r"""
import json, os, sys, threading, time
import numpy as np

X = np.load(sys.argv[1])
y = np.load(sys.argv[2])
from skdigits import MLPClassifier

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def hwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


MLPClassifier(max_iter=1, random_state=0).fit(X[:512], y[:512])  # warm-up
import gc
gc.collect()
try:  # reset the kernel's peak-RSS mark to the current RSS
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    hwm_reset = True
except OSError:
    hwm_reset = False
base = rss()
peak = [base]
samples = [0]
stop = threading.Event()


def sample():
    while not stop.is_set():
        r = rss()
        samples[0] += 1
        if r > peak[0]:
            peak[0] = r
        time.sleep(0.002)


thread = threading.Thread(target=sample, daemon=True)
thread.start()
tic = time.perf_counter()
clf = MLPClassifier(max_iter=2, random_state=0).fit(X, y)
fit_s = time.perf_counter() - tic
stop.set()
thread.join()
peak[0] = max(peak[0], rss())
n_params = sum(W.size for W in clf.coefs_) + sum(b.size for b in clf.intercepts_)
sizes = [X.shape[1], *[W.shape[1] for W in clf.coefs_]]
item = clf.coefs_[0].dtype.itemsize
batch = 128
buffers = item * (4 * n_params                       # weights, grad, Adam m, v
                  + batch * sizes[0]                 # minibatch
                  + batch * sum(sizes[1:])           # activations
                  + batch * max(sizes[1:-1]))        # backprop deltas
print(json.dumps(dict(base=base, peak=peak[0], hwm=hwm() if hwm_reset else None,
                      samples=samples[0], fit_s=fit_s, data=X.nbytes + y.nbytes,
                      buffers=buffers, n_iter=clf.n_iter_,
                      dtype=str(clf.coefs_[0].dtype))))
"""


def _run_child(code, args, env=None):
    out = subprocess.run([sys.executable, "-c", code, *args], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"child failed ({out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_memory_peak(benchmark, npy_dir):
    args = (os.path.join(npy_dir, "X.npy"), os.path.join(npy_dir, "y.npy"))
    settle()
    r = benchmark.pedantic(_run_child, args=(_MEMORY_CHILD, args), rounds=1,
                           iterations=1)
    inc = r["peak"] - r["base"]
    if r["hwm"] is not None:
        inc = max(inc, r["hwm"] - r["base"])  # the sampler may miss a spike
    r["increase"] = inc
    r["ratio"] = (r["data"] + inc) / (r["data"] + r["buffers"])
    RESULTS["memory"] = r
    assert r["n_iter"] == 2 and r["samples"] > 0 and r["data"] > 0
    assert inc >= 0 and r["peak"] >= r["base"] > 0
    _check_time(r["fit_s"])


# ---------------------------------------------------------------------------
# 5. compile / load overhead

_COMPILE_CHILD = r"""
import json, sys, time, warnings
import numpy as np

X = np.load(sys.argv[1])
y = np.load(sys.argv[2])
tic = time.perf_counter()
from skdigits import MLPClassifier
imp = time.perf_counter() - tic
times = []
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for _ in range(2):
        tic = time.perf_counter()
        MLPClassifier(max_iter=1, hidden_layer_sizes=(256,)).fit(X, y)
        times.append(time.perf_counter() - tic)
print(json.dumps(dict(import_s=imp, first=times[0], second=times[1])))
"""


def test_compile_overhead(benchmark, npy_dir):
    args = (os.path.join(npy_dir, "X1000.npy"), os.path.join(npy_dir, "y1000.npy"))
    with tempfile.TemporaryDirectory(prefix="skdigits-bench-numba-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = _run_child(_COMPILE_CHILD, args, env)  # fills the cache
        runs = []

        def warm_run():
            runs.append(_run_child(_COMPILE_CHILD, args, env))

        benchmark.pedantic(warm_run, rounds=3, iterations=1)
    overheads = sorted(r["first"] - r["second"] for r in runs)
    RESULTS["compile cold"] = dict(overhead=cold["first"] - cold["second"],
                                   **cold)
    RESULTS["compile warm"] = dict(overhead=overheads[len(overheads) // 2],
                                   all=overheads,
                                   import_s=float(np.median([r["import_s"]
                                                             for r in runs])))
    for r in [cold, *runs]:
        _check_time(r["first"])
        _check_time(r["second"])


# ---------------------------------------------------------------------------
# table

def _fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def _rows():
    """(measure, skdigits, peer, peer name, ratio, target, met) strings."""
    rows = []
    no_torch = RESULTS.get("torch_missing")

    def add(measure, ours, peer, peer_name, ratio, target, met):
        rows.append((measure, ours, peer, peer_name, ratio, target,
                     "" if met is None else ("yes" if met else "NO")))

    def compare(measure, ours, key, field, peer_name, limit, spec=".3f"):
        peer = RESULTS.get(key, {}).get(field)
        if peer is None:
            why = no_torch if peer_name == "torch" and no_torch else "not run"
            add(measure, _fmt(ours, spec), "n/a", f"{peer_name} ({why})", "",
                f"<= {limit:.2f}x", None)
            return
        ratio = None if ours is None else ours / peer
        add(measure, _fmt(ours, spec), format(peer, spec), peer_name,
            _fmt(ratio, ".3f"), "" if limit is None else f"<= {limit:.2f}x",
            None if ratio is None or limit is None else ratio <= limit)

    # 1. throughput
    tp = RESULTS.get("tp skdigits", {})
    if tp or "tp sklearn" in RESULTS or "tp torch" in RESULTS:
        m = f"1. s/epoch, {EPOCHS} ep, 256 h, b128 (a)"
        compare(m, tp.get("epoch"), "tp torch", "epoch", "torch", 1.0)
        compare(m, tp.get("epoch"), "tp sklearn", "epoch", "sklearn", 0.66)
        m = f"1. test acc after {EPOCHS} epochs"
        for key, name in (("tp torch", "torch"), ("tp sklearn", "sklearn")):
            peer = RESULTS.get(key, {}).get("acc")
            why = no_torch if name == "torch" and no_torch else "not run"
            add(m, _fmt(tp.get("acc"), ".4f"), _fmt(peer, ".4f"),
                name if peer is not None else f"{name} ({why})", "", "", None)

    # 4. memory
    r = RESULTS.get("memory")
    if r:
        mb = 2.0 ** 20
        add("4. peak RSS increase during fit, MiB (c)",
            f"{r['increase'] / mb:.1f}", "", "", "", "", None)
        add("4. data + increase, MiB (c)",
            f"{(r['data'] + r['increase']) / mb:.1f}",
            f"{(r['data'] + r['buffers']) / mb:.1f}", "data+weights+buffers",
            f"{r['ratio']:.3f}", "<= 1.50", r["ratio"] <= 1.5)
        add("4. RSS before fit / peak total, MiB", f"{r['base'] / mb:.1f}",
            f"{r['peak'] / mb:.1f}", "peak total (sampled)",
            f"{r['peak'] / r['base']:.3f}", "", None)

    # 5. compile
    w = RESULTS.get("compile warm")
    if w:
        add("5. first-fit overhead, warm cache, s (d)", f"{w['overhead']:.3f}",
            "", "", "", "<= 2.0 s", w["overhead"] <= 2.0)
    c = RESULTS.get("compile cold")
    if c:
        add("5. first-fit overhead, empty cache, s", f"{c['overhead']:.3f}",
            "", "", "", "", None)
    return rows


def teardown_module(module):
    rows = _rows()
    if not rows:
        return
    head = ("measure", "skdigits", "peer", "peer is", "ratio", "target", "met")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["", machine_line(BUDGET),
             "MLPClassifier on full MNIST (pixels / 255, float32)"]
    for row in [head, *rows]:
        lines.append("  ".join(
            cell.ljust(w) if i in (0, 3) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    notes = [
        "(a) skdigits timed after a warm-up fit on "
        f"{WARMUP_ROWS} rows: compile / cache load excluded (see 5); "
        "s/epoch = fit wall time / epochs",
        "(b) skdigits: MLPClassifier(random_state=0) fit time; torch: "
        "training time only, test accuracy checked after each epoch untimed",
        "(c) fresh process, RSS sampled every ~2 ms and VmHWM; "
        "ratio = (data + increase) / (data + weights + buffers)",
        "(d) median of 3 fresh processes: first minus second identical fit "
        "on 1000 rows",
    ]
    t = RESULTS.get("tp torch") or {}
    if t.get("threads"):
        notes.append(f"torch threads: {t['threads']}")
    try:
        from threadpoolctl import threadpool_info

        notes.append("thread pools: " + ", ".join(
            f"{p.get('internal_api')} {p.get('num_threads')}"
            for p in threadpool_info()))
    except Exception:  # threadpoolctl is optional here
        pass
    if RESULTS.get("torch_missing"):
        notes.append(f"torch column n/a: {RESULTS['torch_missing']}")
    c, w = RESULTS.get("compile cold"), RESULTS.get("compile warm")
    if c and w:
        notes.append(f"import skdigits: {c['import_s']:.2f} s cold cache, "
                     f"{w['import_s']:.2f} s warm; warm overheads "
                     + ", ".join(f"{x:.3f}" for x in w["all"]))
    r = RESULTS.get("memory")
    if r:
        hwm_inc = None if r["hwm"] is None else (r["hwm"] - r["base"]) / 2**20
        notes.append(f"memory: {r['samples']} samples; VmHWM-based "
                     f"increase {_fmt(hwm_inc, '.1f')}"
                     f" MiB; data {r['data'] / 2**20:.1f} MiB, weights+buffers "
                     f"{r['buffers'] / 2**20:.2f} MiB ({r['dtype']})")
    notes.append("load average at start %.2f %.2f %.2f, at end %.2f %.2f %.2f, "
                 "%d CPUs" % (*LOAD_AT_START, *os.getloadavg(), os.cpu_count()))
    lines += notes
    sys.stderr.write("\n".join(lines) + "\n")
