"""``skdigits search``: a grid search over one estimator's parameters, run in
local processes or on a dask.distributed cluster, and written like the report:
``results.json`` and ``index.html`` with PNGs beside it.

The grid is given one parameter at a time, ``NAME=V1,V2,...``: the values are
Python literals (``1e-4``, ``True``, ``None``, ``(128, 64)``) or, when they
are not, plain strings (``relu``). Commas inside brackets or quotes do not
separate values, so ``hidden_layer_sizes=128,(128,64)`` holds two values. For
``hidden_layer_sizes`` a number ``128`` means ``(128,)`` and ``128x64`` means
``(128, 64)``, which needs no quoting in a shell.

The search is scikit-learn's :class:`~sklearn.model_selection.GridSearchCV`
(``cv=K`` folds, stratified, not shuffled; accuracy; the best candidate
refitted on the whole training split) run through joblib: the ``loky``
backend with one process per core, or the ``dask`` backend on a
``distributed.Client``. The fits leave ``n_jobs`` at its default, so that each
uses the threads of the process or dask worker it runs in (one per loky
process when there is one process per core) and the refit every core. The
scores do not depend on where the fits ran: the kernels give the same bits
for any number of threads.

The same data, grid and seed give the same ``results.json`` and PNGs; only
the ``timings`` block and the run's date and machine change. The folder
holds exactly what the page shows: files an earlier search wrote that no
longer belong are removed, and a folder holding files skdigits did not write
is refused unless ``force=True``. One search (or report) at a time writes
into a folder; another one meanwhile is refused.

Library code: it logs through :mod:`logging`. The command line (argument
parsing, messages, the final lines) is in :mod:`skdigits.cli`.
"""

import ast
import contextlib
import html
import json
import logging
import math
import os
import re
import time
import warnings

import numpy as np

from ._fileio import ForeignFilesError, OutputFolder

logger = logging.getLogger(__name__)

#: The files a search writes besides its PNGs; the marker says the folder
#: holds a search's results.
PAGE, JSON, MARKER = "index.html", "results.json", ".skdigits-search"
GENERATOR = "skdigits search"
#: The PNG of the best model's per-class loss curves.
LOSS_PNG = "best_loss_per_class.png"
_FIXED_FILES = frozenset({PAGE, JSON, MARKER, LOSS_PNG})
#: The PNG of the scores against one grid parameter.
_SCORE_PNG = re.compile(r"score_[A-Za-z_][A-Za-z0-9_]*\.png")
#: Seconds to wait for the scheduler to answer, then for a first worker.
CONNECT_TIMEOUT = 10
WORKERS_TIMEOUT = 30
#: The most candidates a grid may hold: each is a row of the page and of
#: results.json, and ``cv`` fits.
MAX_CANDIDATES = 100_000
#: More grid values to check than this (about 0.3 ms each) log a line first.
CHECK_LOG_VALUES = 1000
#: More combinations of the other parameters than this: a score plot shows
#: the best of them for each value instead of one line per combination.
MAX_SERIES = 8

_SIZES = "hidden_layer_sizes"
_SIZES_TEXT = re.compile(r"[0-9]+(?:x[0-9]+)*")
_OPENING, _CLOSING = "([{", ")]}"


# ---------------------------------------------------------------- the grid


def _split_values(text):
    """Split ``text`` at the commas outside brackets and quotes."""
    items, depth, quote, start, escaped = [], [], None, 0, False
    for i, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in _OPENING:
            depth.append(_CLOSING[_OPENING.index(char)])
        elif char in _CLOSING:
            if not depth or depth.pop() != char:
                raise ValueError(f"unbalanced {char!r} in {text!r}")
        elif char == "," and not depth:
            items.append(text[start:i])
            start = i + 1
    if quote:
        raise ValueError(f"unclosed quote {quote} in {text!r}")
    if depth:
        raise ValueError(f"missing {depth[-1]!r} in {text!r}")
    items.append(text[start:])
    return [item.strip() for item in items]


def _value(name, text):
    """One grid value: a Python literal, else the text itself; for
    ``hidden_layer_sizes`` a tuple of ints."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = text
    if name != _SIZES:
        return value
    if isinstance(value, str) and _SIZES_TEXT.fullmatch(value):
        return tuple(int(v) for v in value.split("x"))
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, list):
        return tuple(value)
    return value  # anything else is for the estimator to accept or refuse


def parse_grid_option(text):
    """``"NAME=V1,V2,..."`` (one ``--grid`` option) -> ``(name, values)``.

    Raises ``ValueError`` with a one-line message for a missing ``=``, a name
    that is not an identifier, an empty value, unbalanced brackets or quotes,
    or a value given twice.
    """
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError("expected NAME=V1,V2,... (e.g. alpha=1e-5,1e-4), got "
                         f"{text!r}")
    items = _split_values(rest)
    if any(not item for item in items):
        raise ValueError(f"{name}: an empty value in {rest!r} (values are separated "
                         "by commas)")
    values, seen = [], set()
    for item in items:
        value = _value(name, item)
        if repr(value) in seen:
            raise ValueError(f"{name}: the value {value!r} is given twice")
        seen.add(repr(value))
        values.append(value)
    return name, values


def build_grid(estimator, options, fixed=None):
    """The parameter grid of ``(name, values)`` pairs (parsed ``--grid``
    options), checked against ``estimator``: every name must be one of its
    parameters, given once, and not also among the ``fixed`` ones; the grid
    may hold at most :data:`MAX_CANDIDATES` candidates; and every value must
    pass the estimator's parameter validation.

    Each value is checked once, set alone on ``estimator``, not each
    candidate: a grid of a million candidates is a few lists of ten values.
    The estimators' checks (the constraints table and
    ``_more_validate_params``) each concern one parameter; a check across
    parameters would stop the search at its first fit instead. More than
    :data:`CHECK_LOG_VALUES` values to check log a line first.

    Returns a dict ``name -> list of values`` in the order given. Raises
    ``ValueError`` with a one-line message.
    """
    from sklearn.base import clone

    valid = estimator.get_params()
    grid = {}
    for name, values in options:
        if name not in valid:
            raise ValueError(
                f"{type(estimator).__name__} has no parameter {name} (--grid "
                f"{name}=...); valid: {', '.join(sorted(valid))}")
        if name in grid:
            raise ValueError(f"--grid {name} is given twice: list all its values "
                             "in one option")
        if name in (fixed or ()):
            raise ValueError(f"{name} is both searched (--grid) and fixed "
                             "(--param, --max-iter): give it once")
        grid[name] = list(values)
    count = n_candidates(grid)
    if count > MAX_CANDIDATES:
        sizes = " x ".join(str(len(v)) for v in grid.values())
        raise ValueError(
            f"the grid holds {count} candidates ({sizes} values), more than the "
            f"{MAX_CANDIDATES} a search takes: search fewer values, e.g. a "
            "coarse grid first and then a finer one around its best")
    n_values = sum(len(v) for v in grid.values())
    if n_values > CHECK_LOG_VALUES:
        logger.info("Checking the %d values of the grid's %d parameters", n_values,
                    len(grid))
    for name, values in grid.items():
        for value in values:
            candidate = clone(estimator).set_params(**{name: value})
            try:
                candidate._validate_params()
                more = getattr(candidate, "_more_validate_params", None)
                if more is not None:
                    more()
            except (ValueError, TypeError) as exc:
                message = " ".join(str(exc).split())
                raise ValueError(f"the value {name}={value!r} is refused: "
                                 f"{message}") from None
    return grid


def n_candidates(grid):
    """How many candidates ``grid`` holds."""
    return math.prod(len(values) for values in grid.values())


# ---------------------------------------------------------------- running


def _skdigits_version():
    """skdigits' version where this runs (a dask worker, in the check)."""
    from . import __version__

    return __version__


def search_jobs(estimator, grid, sparse=False):
    """The kernel jobs (see ``_warmup``) the fits of a search of ``grid``
    (``{name: [values]}``) on ``estimator`` run: each candidate's epoch and
    the forward pass its scoring uses."""
    from sklearn.model_selection import ParameterGrid

    from . import _warmup

    jobs = []
    for params in ParameterGrid(grid):
        candidate = estimator.__class__(**{**estimator.get_params(), **params})
        jobs += _warmup.jobs_for(candidate, sparse=sparse, dtype="float32")
    return list(dict.fromkeys(jobs))


def _warm_up_here(jobs):
    from . import _warmup
    from ._cores import process_cores

    _warmup.wait_quietly(_warmup.start(jobs, process_cores()))


def _warm_worker(jobs):
    """On a dask worker: compile ``jobs`` into this machine's cache in
    background processes, from a thread, so that the worker's event loop
    goes on; the search's fits in this worker wait for them
    (``_warmup.settle``) rather than compiling them again. Returns at
    once."""
    import threading

    threading.Thread(target=_warm_up_here, args=(list(jobs),),
                     name="skdigits-warm-up", daemon=True).start()


@contextlib.contextmanager
def search_backend(scheduler=None, *, n_jobs=None, jobs=()):
    """Run the joblib calls in the block on a dask cluster or in local
    processes; yields ``(n_jobs, where)``: the ``n_jobs`` to give
    ``GridSearchCV`` and a dict describing where the fits run.

    With ``scheduler`` (an address such as ``tcp://10.0.0.5:8786``) a
    ``distributed.Client`` connects to it, waits for a first worker and checks
    that the workers run this skdigits; the joblib ``dask`` backend then sends
    the fits (and the data, once per worker) to the workers. Without it, the
    fits run in ``n_jobs`` local processes (joblib's ``loky``; default: one
    per core).

    ``jobs`` (see ``search_jobs``): the kernels the fits run, compiled into
    the cache while the block loads the data (``run_search`` waits for
    them), by the workers of a cluster for their own machines, in this
    machine's processes for a local search, so that the fits load them
    instead of each compiling them.

    Raises ``ImportError`` when dask.distributed is missing, ``OSError`` when
    the scheduler cannot be reached or no worker joins, ``ValueError`` when
    the workers lack skdigits or run another version.
    """
    import joblib

    from . import _warmup

    if scheduler is None:
        from ._cores import process_cores

        n = process_cores() if n_jobs is None else int(n_jobs)
        n = process_cores() if n < 0 else n
        logger.debug("Local search: %d process(es)", n)
        started = _warmup.start(list(jobs), n)
        try:
            with joblib.parallel_config(backend="loky"):
                yield n, {"backend": "loky", "processes": n}
        finally:
            _warmup.stop(started)
        return
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("--scheduler needs dask.distributed: pip install "
                          "'skdigits[dask]' (or dask[distributed])") from None
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, ValueError) as exc:
        message = " ".join(str(exc).split())
        raise OSError(f"cannot reach the dask scheduler at {scheduler}: "
                      f"{message}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except (OSError, TimeoutError):
            raise OSError(f"no dask worker joined the scheduler at {scheduler} "
                          f"within {WORKERS_TIMEOUT} s") from None
        _check_workers(client, scheduler)
        if jobs:  # each worker warms up while the data travels
            client.run(_warm_worker, list(jobs))
        threads = client.nthreads()
        where = {"backend": "dask", "scheduler": scheduler,
                 "workers": len(threads), "threads": int(sum(threads.values()))}
        logger.info("Dask cluster at %s: %d workers, %d threads", scheduler,
                    where["workers"], where["threads"])
        with joblib.parallel_config(backend="dask", client=client):
            yield -1, where
    finally:
        client.close()


def _check_workers(client, scheduler):
    from . import __version__

    try:
        versions = client.run(_skdigits_version)
    except Exception as exc:  # the worker's own error, whatever it is
        raise ValueError(
            f"the dask workers of {scheduler} cannot run skdigits "
            f"({type(exc).__name__}: {' '.join(str(exc).split())}): install "
            f"skdigits {__version__} on every worker") from None
    other = sorted({v for v in versions.values() if v != __version__})
    if other:
        raise ValueError(
            f"the dask workers of {scheduler} run skdigits {', '.join(other)}, "
            f"this machine {__version__}: install the same version everywhere")


def run_search(estimator, grid, X, y, *, cv=3, n_jobs=None):
    """Fit ``GridSearchCV(estimator, grid, cv=cv, n_jobs=n_jobs)`` on
    ``(X, y)`` with joblib's current backend (see :func:`search_backend`);
    returns ``(search, seconds)``.

    A fit that fails stops the search (``error_score="raise"``), and so does
    a Ctrl-C that a fit absorbed: it leaves as ``KeyboardInterrupt``, in the
    fits of this process (``n_jobs=1``, the refit) as in the others.
    ConvergenceWarning is dropped: a fixed epoch budget is the point.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    from . import _warmup
    from ._report import interrupts_raised

    search = GridSearchCV(estimator, grid, cv=cv, n_jobs=n_jobs, refit=True,
                          error_score="raise")
    # the kernels search_backend is compiling: the local workers load them
    _warmup.wait_quietly()
    logger.info("Searching %d candidates x %d folds = %d fits",
                n_candidates(grid), cv, n_candidates(grid) * cv)
    with warnings.catch_warnings():
        # scikit-learn passes the filters on to the joblib workers
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        tic = time.perf_counter()
        with interrupts_raised():  # no search goes on with a truncated fit
            search.fit(X, y)
        seconds = time.perf_counter() - tic
    return search, seconds


# ---------------------------------------------------------------- results


def _plain(value):
    """``value`` as plain JSON: tuples as lists, NumPy scalars as Python
    ones, non-finite floats as None, anything else as its repr."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


#: The cv_results_ columns that change from run to run.
_TIMING = re.compile(r"(mean|std)_(fit|score)_time")


def cv_results_json(cv_results):
    """``(results, timings)``: ``cv_results_`` as plain JSON lists, without
    and with only its timing columns (masked entries are None)."""
    results, timings = {}, {}
    for key, column in cv_results.items():
        if key == "params":
            values = [_plain(p) for p in column]
        elif np.ma.isMaskedArray(column):
            mask = np.ma.getmaskarray(column)
            values = [None if m else _plain(v) for v, m in zip(column.data, mask)]
        else:
            values = [_plain(v) for v in column]
        (timings if _TIMING.fullmatch(key) else results)[key] = values
    return results, timings


def _label(value):
    if isinstance(value, tuple) and value and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "x".join(str(v) for v in value)  # hidden_layer_sizes
    return repr(value) if isinstance(value, str) else str(value)


def _new_figure(figsize):
    """A figure outside pyplot: no backend, no global state."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _save(fig, out_dir, name):
    with FOLDER.write(out_dir, name) as fh:
        fig.savefig(fh, dpi=90, format="png", metadata={"Software": None})
    return name


def plot_param_scores(cv_results, grid, name, *, ax):
    """Mean test score of the candidates against the values of the grid
    parameter ``name``, the fold scores' standard deviation as error bars:
    one line per combination of the other parameters (at most
    :data:`MAX_SERIES`; beyond, the best of them for each value)."""
    values = grid[name]
    position = {repr(v): j for j, v in enumerate(values)}
    others = [k for k in grid if k != name]
    mean = np.asarray(cv_results["mean_test_score"], dtype=float)
    std = np.asarray(cv_results["std_test_score"], dtype=float)
    groups = {}  # the other parameters' values -> {position: candidate}
    for i, params in enumerate(cv_results["params"]):
        key = tuple(_label(params[k]) for k in others)
        groups.setdefault(key, {})[position[repr(params[name])]] = i
    if len(groups) <= MAX_SERIES:
        series = [(", ".join(f"{k}={v}" for k, v in zip(others, key)) or None,
                   [(j, rows[j]) for j in sorted(rows)])
                  for key, rows in groups.items()]
    else:
        best = {}
        for rows in groups.values():
            for j, i in rows.items():
                if j not in best or mean[i] > mean[best[j]]:
                    best[j] = i
        series = [(f"best over {', '.join(others)}", sorted(best.items()))]
    width = 0.3 / max(1, len(series))
    for s, (label, points) in enumerate(series):
        x = np.array([j for j, _ in points], dtype=float)
        x += (s - (len(series) - 1) / 2) * width
        rows = [i for _, i in points]
        ax.errorbar(x, mean[rows], yerr=std[rows], marker="o", capsize=3,
                    label=label)
    ax.set_xticks(range(len(values)), [_label(v) for v in values])
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xlabel(name)
    ax.set_ylabel("mean CV accuracy (error bars: std over folds)")
    ax.set_title(f"Cross-validated accuracy against {name}", fontsize="medium")
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1 or series[0][0]:
        ax.legend(fontsize="small", loc="best")
    return ax


class SearchFolderError(ForeignFilesError):
    """The output folder holds files that ``skdigits search`` did not write."""


def _is_search_file(name):
    """Whether ``name`` is one a search writes."""
    return name in _FIXED_FILES or _SCORE_PNG.fullmatch(name) is not None


#: The search's folder: its file names and its marker; nothing else in it is
#: ever written over or removed.
FOLDER = OutputFolder(MARKER, GENERATOR, _is_search_file, {PAGE, JSON},
                      "output folder", error=SearchFolderError)


def claim_folder(out_dir, *, force=False, planned=()):
    """Create ``out_dir`` or check what it holds, before any fit, and own it
    until the block ends (see :meth:`~skdigits._fileio.OutputFolder.claim`);
    yields the search files already there. Another search into the folder
    meanwhile raises :class:`~skdigits._fileio.FolderInUseError`."""
    return FOLDER.claim(out_dir, force=force, planned=planned)


def remove_stale(out_dir, previous, written):
    """Remove the files an earlier (or interrupted) search left that this one
    did not write."""
    for path in FOLDER.finish(out_dir, previous, written):
        logger.info("Removed %s, left by an earlier search", path)


def write_results(out_dir, search, grid, *, test_accuracy, info, class_names=None,
                  previous=()):
    """Write ``results.json``, ``index.html`` and the PNGs of a fitted
    ``search`` into ``out_dir``; remove the files of an earlier search
    (``previous``) that this one no longer writes.

    ``info`` holds the run's description (model, dataset, data source, sizes,
    cv, seed, fixed parameters, where the fits ran, timings); it is stored
    in ``results.json`` as given. Returns ``(page_path, results)``.
    """
    from ._report import run_context
    from .plotting import PerClassLossDisplay

    cv_results, fold_timings = cv_results_json(search.cv_results_)
    figures = {}
    for name in grid:
        fig = _new_figure((6.4, 4.2))
        plot_param_scores(search.cv_results_, grid, name, ax=fig.add_subplot())
        figures[f"score_{name}"] = _save(fig, out_dir, f"score_{name}.png")
    fig = _new_figure((8.5, 4.5))
    disp = PerClassLossDisplay.from_estimator(
        search.best_estimator_, class_names=class_names, highlight=3,
        ax=fig.add_subplot())
    disp.ax_.set_title("Best model refitted on the training split: loss of each "
                       f"class (bold: {', '.join(disp.highlighted_)})",
                       fontsize="medium")
    figures["best_loss_per_class"] = _save(fig, out_dir, LOSS_PNG)

    info = dict(info)
    timings = dict(info.pop("timings", {}))
    timings.update(fold_timings)
    results = {
        **info,
        "grid": _plain(grid),
        "n_candidates": n_candidates(grid),
        "best_index": int(search.best_index_),
        "best_params": _plain(search.best_params_),
        "best_score": float(search.best_score_),
        "best_std": float(search.cv_results_["std_test_score"][search.best_index_]),
        "best_epochs": int(getattr(search.best_estimator_, "n_iter_", 0)),
        "test_accuracy": float(test_accuracy),
        "cv_results": cv_results,
        "figures": figures,
        "run": run_context(seed=info.get("seed"), max_iter=info.get("max_iter")),
        "timings": timings,
        "files": sorted(figures.values()) + [JSON, PAGE, MARKER],
    }
    with FOLDER.write(out_dir, JSON, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
    page = os.path.join(out_dir, PAGE)
    with FOLDER.write(out_dir, PAGE, "w", encoding="utf-8") as fh:
        fh.write(_render(results))
    remove_stale(out_dir, previous, results["files"])
    logger.debug("Wrote %s, %s and %d PNG files", JSON, PAGE, len(figures))
    return page, results


_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
    "padding:.3em .7em;text-align:right}th.text,td.text{text-align:left}"
    "tr.best{font-weight:bold;background:#f3f8f3}figure{margin:1.5em 0}"
    "figcaption{color:#555}dl.context dt{font-weight:bold;float:left;clear:left;"
    "width:9em}dl.context dd{margin-left:10em}")


def _where_text(where):
    if where.get("backend") == "dask":
        return (f"dask cluster at {where['scheduler']} ({where['workers']} workers, "
                f"{where['threads']} threads)")
    n = where.get("processes", 1)
    return "this process" if n == 1 else f"{n} local processes (joblib loky)"


def _render(results):
    esc = html.escape
    grid, cv = results["grid"], results["cv_results"]
    names = list(grid)
    folds = results["cv"]
    best = results["best_params"]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>skdigits search</title>", f"<style>{_STYLE}</style></head><body>",
        f"<h1>skdigits search: {esc(results['model'])}</h1>",
        f"<p>Data: {esc(results['dataset'])}, {esc(results['data'])}; "
        f"{results['n_train']} training and {results['n_test']} test images. "
        f"{results['n_candidates']} candidates, each scored by {folds}-fold "
        "cross-validation (stratified, not shuffled) on the training split; the "
        "best one was refitted on the whole training split and scored on the "
        "test split. Seed " + esc(str(results["seed"])) + "; the same seed gives "
        "the same scores.</p>",
        "<p><strong>Best: " + esc(", ".join(f"{k}={_label_json(v)}"
                                             for k, v in best.items())) +
        f"</strong>, CV accuracy {results['best_score']:.4f} &plusmn; "
        f"{results['best_std']:.4f}, test accuracy "
        f"{results['test_accuracy']:.4f} ({results['best_epochs']} epochs).</p>",
        "<h2>Candidates</h2>",
        "<table><tr><th>rank</th>" + "".join(
            f'<th class="text">{esc(n)}</th>' for n in names) +
        "<th>mean CV accuracy</th><th>std</th>" + "".join(
            f"<th>fold {k + 1}</th>" for k in range(folds)) +
        "<th>mean fit (s)</th></tr>",
    ]
    fit_time = results["timings"].get("mean_fit_time", [])
    order = sorted(range(len(cv["params"])),
                   key=lambda i: (cv["rank_test_score"][i], i))
    for i in order:
        params = cv["params"][i]
        row = ' class="best"' if i == results["best_index"] else ""
        cells = "".join(f'<td class="text">{esc(_label_json(params[n]))}</td>'
                        for n in names)
        splits = "".join(f"<td>{_score(cv[f'split{k}_test_score'][i])}</td>"
                         for k in range(folds))
        seconds = f"{fit_time[i]:.2f}" if i < len(fit_time) else ""
        parts.append(
            f'<tr{row}><td>{cv["rank_test_score"][i]}</td>{cells}'
            f"<td>{_score(cv['mean_test_score'][i])}</td>"
            f"<td>{_score(cv['std_test_score'][i])}</td>{splits}"
            f"<td>{seconds}</td></tr>")
    parts.append("</table><h2>Scores against each parameter</h2>")
    for name in names:
        png = results["figures"][f"score_{name}"]
        parts.append(
            f'<figure><img src="{esc(png)}" alt="score against {esc(name)}">'
            f"<figcaption>Mean cross-validated accuracy of the candidates for each "
            f"value of {esc(name)}, with the standard deviation over the {folds} "
            "folds as error bars; one line per setting of the other searched "
            "parameters.</figcaption></figure>")
    parts.append(
        "<h2>The best model</h2>"
        f'<figure><img src="{esc(results["figures"]["best_loss_per_class"])}" '
        'alt="per-class loss of the best model"><figcaption>Training loss of each '
        "class against the epoch for the best candidate refitted on the whole "
        "training split; the three hardest classes in bold.</figcaption></figure>")
    parts += _render_context(results)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _score(value):
    return "" if value is None else f"{value:.4f}"


def _label_json(value):
    """A value read back from JSON, shown as :func:`_label` shows it."""
    return _label(tuple(value) if isinstance(value, list) else value)


def _render_context(results):
    esc = html.escape
    ctx = results["run"]
    machine = ctx["machine"]
    fixed = ", ".join(f"{k}={v!r}" for k, v in results["params"].items())
    fixed = f"{fixed}; the defaults otherwise" if fixed else "the defaults"
    rows = [
        ("skdigits", ctx["skdigits"]),
        ("libraries", f"Python {ctx['python']}, NumPy {ctx['numpy']}, "
                      f"scikit-learn {ctx['scikit-learn']}, Numba {ctx['numba']}"),
        ("fits ran on", _where_text(results["where"])),
        ("this machine", f"{machine['cpu']}, {machine['logical_cores']} logical "
                         f"cores; {machine['platform']}"),
        ("date", ctx["date"]),
        ("search time", f"{results['timings'].get('search_seconds', 0.0):.1f} s "
                        "(fits, refit and Numba compilation in each process)"),
        ("parameters", fixed),
    ]
    parts = ["<h2>Run</h2>", '<dl class="context">']
    parts += [f"<dt>{esc(k)}</dt><dd>{esc(str(v))}</dd>" for k, v in rows]
    parts.append("</dl>")
    return parts
