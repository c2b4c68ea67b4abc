"""Numba set-up shared by all kernels: the ``jit`` used everywhere and the
folder its on-disk cache lives in.

Numba's cache index files (``.nbi``) are pickles: whoever can write the cache
folder can run code as whoever next loads a kernel from it. So the kernels are
cached only in a folder that the current user alone can write, chosen once at
import:

1. ``NUMBA_CACHE_DIR``, when the user sets it: an explicit choice, left to
   Numba (it applies to every Numba library in the process); when Numba
   could not use it (a file, a folder it cannot create or write), no cache:
   Numba would fall back to folders this module has not checked;
2. the package's own ``__pycache__`` (Numba's default), when the package
   folder and that ``__pycache__`` belong to the current user and no one else
   can write them (an editable install, a virtual environment of one's own);
3. ``$XDG_CACHE_HOME/skdigits/numba`` (by default ``~/.cache/skdigits/numba``),
   created with mode 0700, used only when it and ``skdigits/`` above it belong
   to the current user with no group or other write bits, and no folder above
   them can be written by another user (sticky folders such as ``/tmp`` aside);
4. otherwise no cache at all: the kernels compile in each process, and a
   ``RuntimeWarning`` says why, once.

A predictable folder in a shared place (``/tmp/...``) is never used.

Numba marks a cached kernel stale only when the file of the kernel itself
changes, not when a function it calls (and compiled into it) changes in
another file: after ``git pull`` in an editable install a kernel could keep
running an old barrier or loss. So every kernel's cache entry is also keyed
by a digest of all the kernel sources (``SOURCES_DIGEST``).
"""

import gc
import hashlib
import os
import stat
import tempfile
import threading
import warnings

import numba
import numpy as np
from numba.core.extending import _Intrinsic

#: Where the kernels' cache lives: ``"numba"`` (``NUMBA_CACHE_DIR``, left to
#: Numba), ``"in-tree"``, ``"user"`` or ``"none"``; set at import.
CACHE_KIND = None
#: The cache folder for ``"user"`` (``None`` otherwise).
CACHE_DIR = None
#: Why the cache is off, for ``"none"``.
CACHE_PROBLEM = None


def _writable_by_others(st):
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _private_dir_problem(path, uid):
    """Why ``path`` is not a folder only ``uid`` can write (None when it is)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a folder"
    if st.st_uid != uid:
        return f"{path} belongs to uid {st.st_uid}, not to uid {uid}"
    if _writable_by_others(st):
        mode = stat.S_IMODE(st.st_mode)
        return f"{path} can be written by other users (mode {mode:o})"
    return None


def _ancestors_problem(path, uid):
    """Why another user could swap ``path`` through one of the folders above
    it (None when none can): each must belong to ``uid`` or root and be
    writable by no one else, unless it is sticky (``/tmp``)."""
    parent = os.path.dirname(path)
    while True:
        try:
            st = os.stat(parent)
        except OSError as exc:
            return f"{parent}: {exc.strerror or exc}"
        if st.st_uid not in (uid, 0):
            return f"{parent} belongs to uid {st.st_uid}"
        if _writable_by_others(st) and not st.st_mode & stat.S_ISVTX:
            return f"{parent} can be written by other users"
        up = os.path.dirname(parent)
        if up == parent:
            return None
        parent = up


def user_cache_dir(environ=None):
    """``$XDG_CACHE_HOME/skdigits/numba``, or ``~/.cache/skdigits/numba`` when
    ``XDG_CACHE_HOME`` is unset or not absolute (the XDG rule)."""
    environ = os.environ if environ is None else environ
    base = os.path.expanduser(environ.get("XDG_CACHE_HOME", ""))
    if not os.path.isabs(base):
        home = environ.get("HOME") or os.path.expanduser("~")
        base = os.path.join(home, ".cache")
    return os.path.join(os.path.abspath(base), "skdigits", "numba")


def _make_private_dir(path, uid):
    """Create ``path`` (mode 0700 for each new folder) and check that only
    ``uid`` can write it; returns the problem, or None when it is fit to use."""
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    except OSError as exc:
        return f"cannot create {path}: {exc.strerror or exc}"
    for folder in (path, parent):  # .../skdigits/numba and .../skdigits
        problem = _private_dir_problem(folder, uid)
        if problem:
            return problem
    return _ancestors_problem(parent, uid)


def choose_cache(package_dir, environ=None, uid=None):
    """Where to cache the kernels compiled from ``package_dir``.

    Returns ``(kind, folder, problem)``: ``kind`` is ``"numba"`` (the user set
    ``NUMBA_CACHE_DIR``), ``"in-tree"`` (``package_dir/__pycache__``),
    ``"user"`` (``folder``) or ``"none"`` (``problem`` says why no folder
    qualified). Creates the folder it chooses.
    """
    environ = os.environ if environ is None else environ
    if environ.get("NUMBA_CACHE_DIR"):
        # Numba's own probe: when it fails, Numba falls back to its other
        # folders, which this module has not checked, so no cache then
        chosen = environ["NUMBA_CACHE_DIR"]
        try:
            os.makedirs(chosen, exist_ok=True)
            tempfile.TemporaryFile(dir=chosen).close()
        except OSError as exc:
            return "none", None, (f"NUMBA_CACHE_DIR={chosen} cannot be used: "
                                  f"{exc.strerror or exc}")
        return "numba", None, None
    if uid is None:
        if not hasattr(os, "getuid"):  # no POSIX owners to check (Windows)
            return "numba", None, None
        uid = os.getuid()
    pycache = os.path.join(package_dir, "__pycache__")
    if (_private_dir_problem(package_dir, uid) is None
            and _ancestors_problem(package_dir, uid) is None):
        try:
            os.makedirs(pycache, mode=0o755, exist_ok=True)
        except OSError:
            pass
        if (_private_dir_problem(pycache, uid) is None
                and os.access(pycache, os.W_OK)):
            return "in-tree", None, None
    folder = user_cache_dir(environ)
    problem = _make_private_dir(folder, uid)
    if problem is None:
        return "user", folder, None
    return "none", None, problem


def sources_digest(folder):
    """SHA-256 of the ``.py`` files of ``folder`` (names and contents, in
    name order)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            digest.update(name.encode())
            with open(os.path.join(folder, name), "rb") as fh:
                digest.update(hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()


#: Digest of the kernel sources, part of every cache entry's key.
SOURCES_DIGEST = sources_digest(os.path.dirname(os.path.abspath(__file__)))


def debug_barriers(environ=None):
    """Seconds after which a thread waiting at a barrier gives up and the call
    fails naming the phase (``SKDIGITS_DEBUG_BARRIERS``; 0, the default: wait
    for ever, and no clock is read). A debugging aid: see ``_sync``."""
    environ = os.environ if environ is None else environ
    text = environ.get("SKDIGITS_DEBUG_BARRIERS", "").strip()
    if not text:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        warnings.warn(f"SKDIGITS_DEBUG_BARRIERS={text!r} is not a number of "
                      "seconds: the barriers wait for ever", RuntimeWarning,
                      stacklevel=2)
        return 0.0
    return seconds


#: The barriers' debug timeout, compiled into the kernels as a constant, so
#: part of every cache entry's key too.
DEBUG_BARRIERS = debug_barriers()


def _key_by_sources(dispatcher):
    """Make ``dispatcher``'s cache entries stale when any kernel source
    changes (Numba checks only the kernel's own file), or the barriers'
    debug mode. Uses Numba's cache
    internals; without them (another Numba version) the default applies."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    stamp = getattr(cache_file, "_source_stamp", None)
    if stamp is not None:
        cache_file._source_stamp = (stamp, SOURCES_DIGEST, DEBUG_BARRIERS)
    return dispatcher


def _configure():
    global CACHE_KIND, CACHE_DIR, CACHE_PROBLEM
    here = os.path.dirname(os.path.abspath(__file__))
    CACHE_KIND, CACHE_DIR, CACHE_PROBLEM = choose_cache(here)
    if CACHE_KIND == "none":
        warnings.warn(
            "skdigits compiles its kernels without an on-disk cache in this "
            "process (each new process compiles them again, a few seconds): "
            f"no folder only you can write was found ({CACHE_PROBLEM}). Set "
            "NUMBA_CACHE_DIR to a folder of your own to cache them.",
            RuntimeWarning, stacklevel=2)


_configure()


#: The collector's thresholds while a kernel compiles (Python's default:
#: 700, 10, 10): a young collection every 100,000 allocations instead of 700,
#: and full ones rarer still.
COMPILE_GC_THRESHOLDS = (100_000, 50, 100)


class _rare_collection:
    """Python's cyclic garbage collector made rare for the duration of a
    ``with`` block (``COMPILE_GC_THRESHOLDS``), its thresholds restored
    after it (a context manager).

    For compiling the kernels only: Numba's compiler creates and drops
    hundreds of thousands of objects, so the collector, whose passes walk
    the objects the process holds (NumPy's, SciPy's, scikit-learn's and
    Numba's own), ran hundreds of times during a cold fit: about 15 % of a
    cold ``MLPClassifier().fit`` (7.2-7.6 s with it, 6.3-6.4 s without) and
    17 % of a cold ``SoftmaxRegression().fit``. Rare rather than off: off,
    the garbage of the compile piled up until its end (a cold fit's peak
    resident memory 427 MB against 351 MB); rare, 358 MB for the same time.
    Whether the collector is on stays the user's choice. Blocks may nest or
    overlap (threads): the first to enter saves the thresholds and the last
    to leave restores them (thresholds set by another thread in between are
    lost). A process forked inside a block gets its thresholds back.
    """

    _depth = 0
    _lock = threading.Lock()
    _saved = None

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._depth == 0:
                cls._saved = gc.get_threshold()
                gc.set_threshold(*COMPILE_GC_THRESHOLDS)
            cls._depth += 1
        return self

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                gc.set_threshold(*cls._saved)
        return False

    @classmethod
    def _after_fork_in_child(cls):
        # the child has none of the parent's compiling threads
        cls._lock = threading.Lock()
        if cls._depth > 0:
            cls._depth = 0
            gc.set_threshold(*cls._saved)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rare_collection._after_fork_in_child)


def _compiling_with_rare_collection(dispatcher):
    """Make ``dispatcher`` compile (or load from the cache) with the garbage
    collector made rare (``_rare_collection``): Numba calls
    ``_compile_for_args`` only when no compiled
    version matches the arguments, so a call that runs compiled code is not
    affected. Without that method (another Numba) nothing changes."""
    compile_for_args = getattr(dispatcher, "_compile_for_args", None)
    if compile_for_args is None:
        return dispatcher

    def _compile_for_args(*args, **kws):
        with _rare_collection():
            return compile_for_args(*args, **kws)

    dispatcher._compile_for_args = _compile_for_args
    return dispatcher


def jit(func):
    """Compile ``func`` serially with the project's settings: nopython, cached
    in the folder chosen above, no fastmath (the kernels hold log/exp and
    epsilon guards), the garbage collector made rare while it compiles.

    ``error_model="numpy"``: a float division by zero gives inf/nan, as in
    NumPy, instead of a Python ``ZeroDivisionError``. The per-element check
    that Python semantics need stops LLVM from vectorising loops with a
    division (the Adam step runs about 6x slower with it); non-finite results
    are caught after each epoch instead.
    """
    options = dict(nogil=True, error_model="numpy", cache=CACHE_KIND != "none")
    if CACHE_KIND != "user":
        return _compiling_with_rare_collection(
            _key_by_sources(numba.njit(**options)(func)))
    # Numba reads its cache folder when the dispatcher is made and keeps it,
    # so it is set for this one call only: other Numba users in the process
    # keep their own cache.
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = CACHE_DIR
    try:
        return _compiling_with_rare_collection(
            _key_by_sources(numba.njit(**options)(func)))
    finally:
        numba.config.CACHE_DIR = saved


# Subroutines ---------------------------------------------------------------
#
# A Numba dispatcher called from another kernel is compiled as a program of
# its own: typed, lowered, optimised, turned into machine code and written to
# the cache, and then its optimised IR is linked into every caller, which
# optimises and compiles the bundle again. With kernels six levels deep each
# line went through LLVM four times in a cold start, and the 49 small
# dispatchers of an MLP fit each paid the fixed costs of a program. A
# subroutine is compiled once per signature and process into IR only: it is
# typed and lowered, its functions are tidied (LLVM's function passes), and
# it is linked into the entry point that calls it, which alone is optimised
# as a whole, compiled to machine code and cached. The code the entry point
# runs is the same (the whole-program optimisation always ran last), so the
# bits are too; a cold MLP fit compiles in about 60% of the time.

def _subroutine_flags():
    """The flags a subroutine compiles with: those of ``jit``, without
    machine code or a Python wrapper of its own."""
    from numba.core import compiler

    flags = compiler.Flags()
    flags.no_compile = True
    flags.no_cpython_wrapper = True
    flags.no_cfunc_wrapper = True
    flags.error_model = "numpy"
    flags.nrt = True
    return flags


def _ir_only(library):
    """Make ``library`` (a subroutine's) stop at optimised-per-function IR:
    no module-wide optimisation and no machine code, which its callers'
    finalisation does for the linked whole. Numba internals; when they are
    missing (another Numba) the library is finalised in full (slower, same
    code)."""
    needed = ("_finalize_dynamic_globals", "_verify_declare_only_symbols",
              "_finalize_final_module", "_optimize_final_module")
    if not all(hasattr(library, name) for name in needed):
        return library

    def finalize_final_module():
        library._finalize_dynamic_globals()
        library._verify_declare_only_symbols()
        library._finalized = True

    library._optimize_final_module = lambda: None
    library._finalize_final_module = finalize_final_module
    return library


class _Subroutine(_Intrinsic):
    """A kernel helper: compiled into its callers (see above); called from
    Python (by the tests), it compiles a dispatcher of its own, uncached,
    typed as from a kernel: the arrays it only reads are passed as read-only
    views."""

    def __call__(self, *args):
        if self._dispatcher is None:
            self._dispatcher = numba.njit(nogil=True, error_model="numpy")(
                self.py_func)
        reads = self._reads
        return self._dispatcher(*(_read_only(a) if i < len(reads) and reads[i] else a
                                  for i, a in enumerate(args)))

    def __repr__(self):
        return f"<skdigits subroutine {self.py_func.__name__}>"


def _read_only(value):
    """A read-only view of an array (anything else as it is)."""
    if isinstance(value, np.ndarray) and value.flags.writeable:
        value = value.view()
        value.flags.writeable = False
    return value


def subroutine(func, *, reads=()):
    """Compile ``func`` as a helper of the kernels' entry points (which use
    ``jit``): typed and lowered once per signature and process, linked into
    the entry point that calls it, never cached on its own. ``func`` takes
    positional arguments only. A function called from Python by the library
    must use ``jit``.

    ``reads`` names array parameters the helper only reads: they are typed
    read-only whatever the caller passes (Numba then refuses a write to them),
    so a helper called on the kernel's input (read-only) and on a buffer of
    its own (writable) compiles once instead of twice. The array is passed as
    it is: only its type changes.
    """
    import inspect

    from numba.core import compiler, types
    from numba.core.registry import cpu_target

    names = list(inspect.signature(func).parameters)
    unknown = set(reads) - set(names)
    if unknown:
        raise TypeError(f"{func.__name__} has no parameter {sorted(unknown)}")
    read_only = [name in reads for name in names]
    compiled = {}

    def typer(typingctx, *argtys):
        argtys = tuple(
            ty.copy(readonly=True) if ro and isinstance(ty, types.Array) else ty
            for ty, ro in zip(argtys, read_only))
        cres = compiled.get(argtys)
        if cres is None:
            targetctx = cpu_target.target_context
            library = _ir_only(targetctx.codegen().create_library(func.__qualname__))
            cres = compiler.compile_internal(typingctx, targetctx, library, func,
                                             argtys, None, _subroutine_flags(), {})
            compiled[argtys] = cres

        def codegen(context, builder, signature, args):
            context.active_code_library.add_linking_library(cres.library)
            return context.call_internal(builder, cres.fndesc, signature, args)

        return cres.signature, codegen

    # an intrinsic's typer takes the call's arguments by name
    params = ", ".join(names)
    namespace = {"typer": typer}
    exec(f"def {func.__name__}(typingctx, {params}):\n"
         f"    return typer(typingctx, {params})\n", namespace)
    sub = _Subroutine(func.__name__, namespace[func.__name__])
    sub.py_func = func
    sub.__doc__ = func.__doc__
    sub._dispatcher = None
    sub._reads = read_only  # per parameter, whether it is only read
    sub._compiled = compiled  # argument types -> compile result, this process
    sub._register()
    return sub


def inline(func):
    """Compile ``func`` into each of its callers at Numba's level (its IR is
    copied into the caller's and typed there): for a small helper called
    once per row of a loop, where a subroutine's call, with its arguments
    passed as structures, cost more than the row's work (a row of a
    one-column model is one element). Called from Python (the tests), it
    runs as an uncached dispatcher."""
    return numba.njit(inline="always", nogil=True, error_model="numpy")(func)
