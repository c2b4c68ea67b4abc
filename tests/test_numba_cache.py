"""The kernels' Numba cache lives only where the current user alone can write.

Numba unpickles the cache's index files, so a cache folder that another user
can plant or write is a way to run code as whoever next fits a model. The
attack tests plant folders owned by another uid, which needs root; they are
skipped otherwise.
"""

import os
import pickle
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import skdigits
from skdigits._kernels import _numba

OTHER_UID = 65534  # nobody
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="planting a folder owned by another user needs root")


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"))
    env.update(extra)
    return env


def _package(tmp_path, owner):
    """A folder standing for an installed package, owned by ``owner``."""
    pkg = tmp_path / "site" / "pkg"
    pkg.mkdir(parents=True)
    for folder in (pkg.parent, pkg):
        os.chown(folder, owner, -1)
        folder.chmod(0o755)
    return str(pkg)


def test_explicit_numba_cache_dir_is_left_to_numba(tmp_path):
    kind, folder, _ = _numba.choose_cache(
        str(tmp_path), _env(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "mine")))
    assert (kind, folder) == ("numba", None)


def test_a_numba_cache_dir_that_is_a_file_turns_the_cache_off(tmp_path):
    """Numba falls back to its other cache folders, which this module has
    not checked; skdigits compile then named the file as the cache."""
    (tmp_path / "a_file").write_text("")
    kind, folder, problem = _numba.choose_cache(
        str(tmp_path), _env(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "a_file")))
    assert (kind, folder) == ("none", None)
    assert "a_file cannot be used" in problem
    # a folder below a file cannot be made, nor one in /proc written
    unusable_folders = [tmp_path / "a_file" / "c"]
    if sys.platform.startswith("linux"):  # read-only even for root
        unusable_folders.append("/proc/skdigits-cache")
    for unusable in unusable_folders:
        kind, _, problem = _numba.choose_cache(
            str(tmp_path), _env(tmp_path, NUMBA_CACHE_DIR=str(unusable)))
        assert kind == "none" and f"{unusable} cannot be used" in problem
    kind, _, _ = _numba.choose_cache(  # a new folder in a folder: Numba's to make
        str(tmp_path), _env(tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "new" / "c")))
    assert kind == "numba"


def test_own_package_folder_caches_in_tree(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir(mode=0o755)
    kind, _, _ = _numba.choose_cache(str(pkg), _env(tmp_path))
    assert kind == "in-tree"
    assert (pkg / "__pycache__").is_dir()


def test_group_writable_package_uses_the_private_user_folder(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    pkg.chmod(0o777)
    kind, folder, _ = _numba.choose_cache(str(pkg), _env(tmp_path))
    assert kind == "user"
    assert folder == str(tmp_path / "xdg" / "skdigits" / "numba")
    for path in (folder, os.path.dirname(folder)):
        st = os.stat(path)
        assert st.st_uid == os.getuid()
        assert stat.S_IMODE(st.st_mode) == 0o700


def test_xdg_rule_for_the_user_folder(tmp_path):
    assert _numba.user_cache_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == \
        "/c/skdigits/numba"
    for xdg in ("", "relative/path"):  # ignored, as the XDG spec says
        assert _numba.user_cache_dir({"XDG_CACHE_HOME": xdg, "HOME": "/h"}) == \
            "/h/.cache/skdigits/numba"


def test_a_plain_file_in_the_way_turns_the_cache_off_not_the_import(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    pkg.chmod(0o777)
    (tmp_path / "xdg" / "skdigits").mkdir(parents=True, mode=0o700)
    (tmp_path / "xdg" / "skdigits" / "numba").write_text("in the way")
    kind, folder, problem = _numba.choose_cache(str(pkg), _env(tmp_path))
    assert (kind, folder) == ("none", None)
    assert "not a folder" in problem


def test_no_writable_home_turns_the_cache_off(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    pkg.chmod(0o777)
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = _env(tmp_path, XDG_CACHE_HOME=str(blocker / "cache"))
    kind, _, problem = _numba.choose_cache(str(pkg), env)
    assert kind == "none" and "cannot create" in problem


@needs_root
def test_planted_user_folder_owned_by_another_user_is_refused(tmp_path):
    pkg = _package(tmp_path, OTHER_UID)  # a system install: not ours
    planted = tmp_path / "xdg" / "skdigits" / "numba"
    planted.mkdir(parents=True)
    for folder in (planted.parent, planted):
        os.chown(folder, OTHER_UID, -1)
        folder.chmod(0o777)
    kind, folder, problem = _numba.choose_cache(pkg, _env(tmp_path))
    assert (kind, folder) == ("none", None)
    assert str(OTHER_UID) in problem


@needs_root
def test_a_folder_above_writable_by_another_user_is_refused(tmp_path):
    pkg = _package(tmp_path, OTHER_UID)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, OTHER_UID, -1)
    kind, _, problem = _numba.choose_cache(
        pkg, _env(tmp_path, XDG_CACHE_HOME=str(shared / "cache")))
    assert kind == "none" and "belongs to uid" in problem


@needs_root
def test_the_old_predictable_temp_folder_is_never_used(tmp_path, monkeypatch):
    # the attack on the previous scheme: another user creates
    # <tmp>/skdigits-numba-cache-<uid> first, world-writable
    planted = tmp_path / f"skdigits-numba-cache-{os.getuid()}"
    planted.mkdir()
    os.chown(planted, OTHER_UID, -1)
    planted.chmod(0o777)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    pkg = _package(tmp_path, OTHER_UID)
    kind, folder, _ = _numba.choose_cache(pkg, _env(tmp_path))
    assert folder is None or not folder.startswith(str(planted))
    assert kind in ("user", "none")
    assert not any(planted.iterdir())


class _Exploit:
    """Unpickling this creates ``marker``: what a planted index file could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@needs_root
def test_planted_cache_with_crafted_index_files_runs_nothing(tmp_path):
    """End to end: a read-only install (owned by another user), and an
    attacker's world-writable ``skdigits/numba`` folder in the victim's cache
    home holding crafted index files under the very names Numba would read.
    A fit must load none of them, and say that it runs uncached."""
    import shutil

    site = tmp_path / "site"
    shutil.copytree(Path(skdigits.__file__).parent, site / "skdigits",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    planted = tmp_path / "xdg" / "skdigits" / "numba"
    fit = textwrap.dedent("""
        import warnings
        warnings.simplefilter("always")
        import numpy as np
        from skdigits import SoftmaxRegression
        rng = np.random.default_rng(0)
        X = rng.random((64, 5)); y = np.arange(64) % 3
        print(SoftmaxRegression(max_iter=2, random_state=0).fit(X, y).n_iter_)
    """)
    run = dict(capture_output=True, text=True, cwd=tmp_path, timeout=300)
    # the names Numba would use: a first run writes a real cache there
    first = subprocess.run([sys.executable, "-c", fit], **run, env=_env(
        tmp_path, PYTHONPATH=str(site), NUMBA_CACHE_DIR=str(planted)))
    assert first.returncode == 0, first.stderr
    index_files = list(planted.rglob("*.nbi"))
    assert index_files
    marker = tmp_path / "exploited"
    for path in index_files:
        path.write_bytes(pickle.dumps(_Exploit(str(marker))))
    for path in [*planted.rglob("*"), planted, planted.parent]:
        os.chown(path, OTHER_UID, -1)
        path.chmod(0o777)
    for path in [site, *site.rglob("*")]:  # installed by someone else
        os.chown(path, OTHER_UID, -1)
        path.chmod(0o755 if path.is_dir() else 0o644)

    victim = subprocess.run([sys.executable, "-c", fit], **run,
                            env=_env(tmp_path, PYTHONPATH=str(site)))
    assert victim.returncode == 0, victim.stderr
    assert victim.stdout.strip() == "2"
    assert not marker.exists(), "a planted index file was unpickled"
    assert "without an on-disk cache" in victim.stderr
    assert "belongs to uid 65534" in victim.stderr


def _kernel_objects():
    from skdigits._kernels import (
        _batch,
        _gemm,
        _linear,
        _losses,
        _mlp,
        _optim,
        _rng,
        _sparse,
        _stats,
        _sync,
    )

    return [(mod.__name__.rsplit(".", 1)[1], name, obj)
            for mod in (_batch, _gemm, _linear, _losses, _mlp, _optim, _rng, _sparse,
                        _stats, _sync)
            for name, obj in vars(mod).items()]


def test_entry_points_are_cached_and_not_fastmath():
    from numba.core.registry import CPUDispatcher

    from skdigits._kernels._signatures import ENTRY_POINTS

    dispatchers = {f"{mod}.{name}": obj for mod, name, obj in _kernel_objects()
                   if isinstance(obj, CPUDispatcher)
                   and obj.py_func.__module__.endswith(mod)}  # not the imported
    # the helpers copied into their callers by Numba (_numba.inline)
    inlined = {key: k for key, k in dispatchers.items()
               if k.targetoptions.get("inline") == "always"}
    kernels = {key: k for key, k in dispatchers.items() if key not in inlined}
    entries = {f"{mod}.{name}" for mod, names in ENTRY_POINTS.items() for name in names}
    # every kernel called from Python is a cached dispatcher, and no other is
    assert set(kernels) == entries
    for k in inlined.values():
        assert not k.targetoptions.get("fastmath")
        assert k.targetoptions.get("error_model") == "numpy"
    for k in kernels.values():
        assert k._cache is not None and type(k._cache).__name__ == "FunctionCache"
        assert not k.targetoptions.get("fastmath")
        # NumPy's error model: a division guard would stop vectorisation
        assert k.targetoptions.get("error_model") == "numpy"


def test_helpers_are_subroutines_with_the_kernels_flags():
    flags = _numba._subroutine_flags()
    assert flags.error_model == "numpy" and not flags.fastmath
    assert flags.no_compile and flags.no_cpython_wrapper
    subs = {name for _, name, obj in _kernel_objects()
            if isinstance(obj, _numba._Subroutine)}
    assert {"step_block", "dot_rows", "acc_rows", "barrier", "sparse_dot_rows",
            "sparse_acc_rows", "update", "loss_phase", "group_lists"} <= subs


def test_a_helper_called_from_python_gives_the_compiled_result():
    from skdigits._kernels._gemm import list_range

    lists = np.array([[1, 4, 6, 9]], dtype=np.int32)
    counts = np.array([4], dtype=np.int64)
    for k0, k1 in [(0, 10), (2, 7), (5, 6), (10, 12), (0, 1)]:
        expected = tuple(int(v) for v in np.searchsorted(lists[0], [k0, k1]))
        assert tuple(list_range(lists, counts, 0, 1, k0, k1)) == expected


def test_a_cold_fit_caches_its_entry_points_only(tmp_path):
    """The suite's one cold compile into an empty cache, in a subprocess
    (every other test shares the run's cache). Helpers are compiled into the
    entry points that call them, not cached (nor compiled to machine code) on
    their own: before, a cold MLP fit wrote an index per helper (49 of them).
    The fit compiles its forward pass in a background process meanwhile, so
    the first ``predict_proba`` loads it. A second process then loads every
    kernel from the cache, compiling none."""
    code = ("import numpy as np, skdigits\n"
            "from skdigits._kernels import _signatures\n"
            "rng = np.random.default_rng(0)\n"
            "X = rng.random((64, 12)).astype(np.float32); y = np.arange(64) % 3\n"
            "m = skdigits.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2,\n"
            "                           random_state=0).fit(X, y)\n"
            "m.predict_proba(X)\n"
            "for key, d in _signatures.dispatchers().items():\n"
            "    print(key, sum(d.stats.cache_hits.values()),\n"
            "          sum(d.stats.cache_misses.values()))\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        runs.append({key: (int(hits), int(misses)) for key, hits, misses in
                     (line.split() for line in out.stdout.splitlines())})
    names = sorted({p.name.split(".")[1].rsplit("-", 1)[0]
                    for p in (tmp_path / "cache").rglob("*.nbi")})
    # the loss is compiled into the epoch (a subroutine): the jitted
    # loss_grad, for the engine's Python calls with early stopping, only by
    # the background job of the forward pass, after it (the process may be
    # stopped before: see test_warmup's test_compile_fills_an_empty_cache...)
    entry_points = {"_column_moments_py", "_mlp_epoch_py", "_mlp_forward_py",
                    "_shuffle_py"}
    assert set(names) - {"_loss_grad_py"} == entry_points, names
    cold, warm = runs
    # without early stopping, the fit itself never compiled the loss
    assert cold["_losses.loss_grad"] == (0, 0)
    # the cold process compiled everything but the forward pass, which the
    # fit had compiled in a background process (_warmup.compile_ahead): the
    # first predict_proba loaded it
    assert cold.pop("_mlp.mlp_forward") == (1, 0)
    assert cold["_mlp.mlp_epoch"] == (0, 1)
    assert sum(h for h, _ in cold.values()) == 0
    assert sum(m for _, m in cold.values()) >= 3
    # the warm one loaded it all
    assert sum(h for h, _ in warm.values()) >= 4
    assert sum(m for _, m in warm.values()) == 0
    # the warm-up's job names agree with what a fit and a prediction compile
    out = subprocess.run([sys.executable, "-m", "skdigits", "compile", "--models",
                          "mlp"], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("nothing to compile"), out.stdout


def test_the_chosen_folder_is_private():
    if _numba.CACHE_KIND == "user":
        assert _numba._private_dir_problem(_numba.CACHE_DIR, os.getuid()) is None
    assert _numba.CACHE_KIND in ("numba", "in-tree", "user")


def _toy_kernel(folder, name):
    """Import (again) a module in ``folder`` holding one kernel made with
    skdigits' ``jit``."""
    import importlib.util

    path = folder / "toy_kernel.py"
    if not path.exists():
        path.write_text("from skdigits._kernels._numba import jit\n\n"
                        "def _add_one_py(x):\n    return x + 1\n\n"
                        "add_one = jit(_add_one_py)\n")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.add_one


def test_sources_digest_follows_every_kernel_file(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("ignored")
    before = _numba.sources_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("still ignored")
    assert _numba.sources_digest(tmp_path) == before
    (tmp_path / "b.py").write_text("y = 3\n")
    assert _numba.sources_digest(tmp_path) != before


@pytest.mark.skipif(_numba.CACHE_KIND == "none", reason="kernels are not cached here")
def test_a_cached_kernel_goes_stale_when_another_kernel_source_changes(
        tmp_path, monkeypatch):
    # Numba alone reloads a kernel whose own file is unchanged even when a
    # function compiled into it (another file) changed
    monkeypatch.setattr(_numba, "CACHE_KIND", "in-tree")
    first = _toy_kernel(tmp_path, "toy_a")
    assert first(1) == 2
    again = _toy_kernel(tmp_path, "toy_b")  # a new process, nothing changed
    assert again(1) == 2 and again.stats.cache_hits
    monkeypatch.setattr(_numba, "SOURCES_DIGEST", "another version of _kernels/")
    changed = _toy_kernel(tmp_path, "toy_c")
    assert changed(1) == 2
    assert not changed.stats.cache_hits and changed.stats.cache_misses


def test_every_kernel_is_keyed_by_the_kernel_sources():
    from skdigits._kernels import _linear, _mlp, _stats

    for kernel in (_linear.linear_epoch, _mlp.mlp_epoch, _stats.column_moments):
        stamp = kernel._cache._cache_file._source_stamp
        assert stamp[1] == _numba.SOURCES_DIGEST


def _collector_seen_by_the_compile(dispatcher, *args):
    """The garbage collector's thresholds when Numba began compiling
    ``dispatcher`` for ``args`` (read by a listener of its compile event)."""
    import gc

    from numba.core import event

    seen = []

    class Listener(event.Listener):
        def on_start(self, ev):
            seen.append(gc.get_threshold())

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", Listener()):
        dispatcher(*args)
    return seen


def test_kernels_compile_with_the_garbage_collector_made_rare():
    """Compiling creates and drops objects by the hundred thousand, and each
    collector pass walks the objects of the process: the collector runs
    rarely while a kernel compiles (about 15 % of a cold fit), its
    thresholds come back after, and whether it is on stays the user's
    choice. A call that runs compiled code does not touch it."""
    import gc

    import numba

    from skdigits._kernels._signatures import ENTRY_POINTS

    def add(a, b):
        return a + b

    kernel = _numba._compiling_with_rare_collection(numba.njit(add))
    before = gc.get_threshold()
    assert before != _numba.COMPILE_GC_THRESHOLDS
    assert _collector_seen_by_the_compile(kernel, 1, 2) == [
        _numba.COMPILE_GC_THRESHOLDS]
    assert gc.get_threshold() == before and gc.isenabled()
    assert _collector_seen_by_the_compile(kernel, 1, 2) == []  # compiled: no event
    gc.disable()
    try:
        assert len(_collector_seen_by_the_compile(kernel, 1.0, 2.0)) == 1
        assert not gc.isenabled()
    finally:
        gc.enable()
    # nested and overlapping blocks: restored only when the last one ends
    with _numba._rare_collection():
        with _numba._rare_collection():
            assert gc.get_threshold() == _numba.COMPILE_GC_THRESHOLDS
        assert gc.get_threshold() == _numba.COMPILE_GC_THRESHOLDS
    assert gc.get_threshold() == before
    # an exception inside restores them too
    with pytest.raises(Exception):
        kernel("a", 1)
    assert gc.get_threshold() == before
    # every entry point compiles so (jit installs it)
    for module, names in ENTRY_POINTS.items():
        mod = __import__(f"skdigits._kernels.{module}", fromlist=["_"])
        for name in names:
            wrapper = vars(getattr(mod, name)).get("_compile_for_args")
            assert wrapper is not None and wrapper.__qualname__.startswith(
                "_compiling_with_rare_collection"), (module, name)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_process_forked_while_a_kernel_compiles_gets_its_collector_back():
    """A child forked inside the block has no compile to end it: its
    thresholds are restored at the fork, and its own blocks count from
    zero."""
    import ast
    import gc

    before = gc.get_threshold()
    read, write = os.pipe()
    with _numba._rare_collection():
        pid = os.fork()
        if pid == 0:  # the child
            try:
                with _numba._rare_collection():
                    inside = gc.get_threshold()
                os.write(write, repr((gc.get_threshold(), inside)).encode())
            finally:
                os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        after_fork, inside = ast.literal_eval(fh.read())
    os.waitpid(pid, 0)
    assert after_fork == before
    assert inside == _numba.COMPILE_GC_THRESHOLDS
    assert gc.get_threshold() == before


def test_a_helper_that_only_reads_an_array_compiles_once_for_both_kinds():
    """``subroutine(..., reads=...)``: a helper called on the read-only input
    and on a writable buffer of the kernel compiles one signature (the
    products and the group lists were compiled twice per fit), and a write to
    such a parameter is refused when it compiles."""
    import numba
    from numba.core.errors import TypingError

    def _row_sum_py(X, i):
        total = 0.0
        for k in range(X.shape[1]):
            total += X[i, k]
        return total

    row_sum = _numba.subroutine(_row_sum_py, reads=("X",))

    def _both_py(X, Y):
        return row_sum(X, 0) + row_sum(Y, 1)

    X = np.arange(6.0).reshape(2, 3)
    readonly = X.copy()
    readonly.flags.writeable = False
    assert numba.njit(_both_py)(readonly, X.copy()) == 3.0 + 12.0
    compiled = list(row_sum._compiled)
    assert len(compiled) == 1 and not compiled[0][0].mutable

    def _writes_py(X):
        X[0, 0] = 1.0
        return X[0, 0]

    writes = _numba.subroutine(_writes_py, reads=("X",))

    def _call_py(X):
        return writes(X)

    with pytest.raises(TypingError):
        numba.njit(_call_py)(X.copy())
    # called from Python (as the tests do) it is typed as from a kernel:
    # the array is read-only there too, and the caller's stays writable
    mine = X.copy()
    assert row_sum(mine, 1) == 12.0 and mine.flags.writeable
    assert not row_sum._dispatcher.signatures[0][0].mutable
    with pytest.raises(TypingError):
        writes(mine)
    assert mine[0, 0] == 0.0
    with pytest.raises(TypeError, match="no parameter"):
        _numba.subroutine(_writes_py, reads=("Y",))
