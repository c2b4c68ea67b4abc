"""The ``skdigits`` command line (the one module that writes to stdout).

Sub-commands: ``report`` (the whole study: PNGs and an HTML page), ``fit``
(train one estimator, optionally save it), ``evaluate`` (score a saved model),
``export`` (a saved model as ONNX) and ``benchmark`` (speed against
scikit-learn and, where installed, PyTorch).

Exit codes: 0 success, 1 a runtime problem (data not found, training failed,
unreadable file), 2 bad arguments (argparse's convention), 130 interrupted
by Ctrl-C (the shell's convention).
"""

import argparse
import ast
import os
import sys
import textwrap
import time

import numpy as np

from . import __version__

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

MODELS = ("softmax", "mlp")


class CLIError(Exception):
    """An error reported as one line on stderr."""


# ---------------------------------------------------------------- helpers


def _load(dataset, subset, args, fallback=False):
    """The ``subset`` Bunch of ``dataset`` for a command. With ``fallback``
    (``fit``, ``evaluate``, as ``report``), missing full files give the bundled
    sample, and ``_where`` says so; otherwise the loader's error, which
    ``main`` says in the command's own words (``_data_error``)."""
    from .datasets import DataNotFoundError, load_mnist

    try:
        return load_mnist(dataset, subset, data_home=args.data_home,
                          sample=args.sample, download_if_missing=args.download)
    except DataNotFoundError:
        if fallback and not args.download and args.data_home is None:
            args.fell_back = True
            return load_mnist(dataset, subset, sample=True)
        raise  # the download's failure, the wrong folder, no files


#: The longest error line about missing data, "skdigits COMMAND: error: "
#: included (the longest command is "benchmark").
_MAX_LINE = 300
_PREFIX = len("skdigits benchmark: error: ")


def _data_error(exc):
    """A ``DataNotFoundError`` in the command line's words: its options and
    SKDIGITS_DATA, not load_mnist's arguments, in one line; None for a
    reason it does not know. The loader's message speaks Python."""
    title = {"digits": "MNIST", "fashion": "Fashion-MNIST"}.get(exc.kind, "dataset")
    if exc.reason == "download_failed":
        head = f"could not download the {title} files from OpenML"
        advice = ("; without a network, pass --data-home DIR or set SKDIGITS_DATA "
                  "(a folder holding mnist/ and fashion-mnist/), or use --sample")
        room = _MAX_LINE - _PREFIX - len(head) - len(advice) - len(" ()")
        return f"{head} ({_cause_words(exc.__cause__, room)}){advice}"
    if exc.reason == "missing_data_home" and exc.searched:
        advice = (" does not exist (or is not a folder): name the folder that "
                  "holds mnist/ and fashion-mnist/, or the IDX files themselves")
        room = _MAX_LINE - _PREFIX - len("--data-home ") - len(advice)
        return f"--data-home {_cut(exc.searched[0], room)}{advice}"
    if exc.reason == "not_found":
        head = f"the {title} files are not in "
        advice = ("; pass --data-home DIR or set SKDIGITS_DATA (a folder holding "
                  "mnist/ and fashion-mnist/), add --download to fetch them from "
                  "OpenML, or use --sample")
        room = _MAX_LINE - _PREFIX - len(head) - len(advice)
        return f"{head}{_cut(', '.join(exc.searched) or 'any folder', room)}{advice}"
    return None


def _cut(text, room):
    return text if len(text) <= room else text[:max(room - 3, 0)] + "..."


def _cause_words(cause, room):
    """Why a download failed, in at most ``room`` characters: the system's
    words ("Name or service not known", "Connection refused") rather than
    urllib's wrapping of them."""
    import urllib.error

    if isinstance(cause, urllib.error.HTTPError):
        text = f"HTTP error {cause.code}: {cause.reason}"
    else:
        if isinstance(cause, urllib.error.URLError):
            cause = cause.reason  # an OSError, or a str
        if isinstance(cause, OSError) and cause.strerror:
            text = cause.strerror
        else:
            text = str(cause).strip() or type(cause).__name__
    return _cut(" ".join(text.split()), room)


def _pixels(bunch):
    return bunch.data.astype(np.float32) / 255.0


def _where(bunch, args):
    """Where a command's data came from, as the report says it."""
    if getattr(args, "fell_back", False):
        return "bundled sample, as the full files were not found"
    return "bundled sample" if args.sample else bunch.get("source", "files")


def _describe(dataset, train, test, args):
    print(f"{dataset}: {len(train.data)} train / {len(test.data)} test images "
          f"({_where(train, args)})")


def _parse_params(pairs):
    """``["alpha=1e-3", "hidden_layer_sizes=(64, 32)"]`` -> dict; values are
    Python literals, or plain strings when they are not."""
    params = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        params[key.strip()] = value
    return params


def _make_model(args):
    from . import MLPClassifier, SoftmaxRegression

    params = {"random_state": args.seed, "verbose": int(args.verbose > 0)}
    if args.model == "softmax":
        cls = SoftmaxRegression
        params["multi_class"] = args.multi_class
    else:
        cls = MLPClassifier
    if args.max_iter is not None:
        params["max_iter"] = args.max_iter
    params.update(_parse_params(args.param))
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise CLIError(f"{cls.__name__} has no parameter {', '.join(unknown)}; "
                       f"valid: {', '.join(sorted(valid))}")
    return cls(**params)


# ---------------------------------------------------------------- fit


def _check_output_file(path):
    """Fail before any training when ``path`` cannot be written."""
    from ._fileio import check_output_file

    if os.path.isdir(path):
        raise CLIError(f"the output {path} is a folder; name a file, e.g. "
                       f"{os.path.join(path, 'model.skops')}")
    check_output_file(path)


def _cmd_fit(args):
    # everything that can be checked fails before the data loads and the
    # training starts: parameters, then the output file
    model = _make_model(args)
    model._validate_params()
    model._more_validate_params()  # e.g. a scoring name, before the data loads
    if args.output:
        _check_output_file(args.output)
    train = _load(args.dataset, "train", args, fallback=True)
    test = _load(args.dataset, "test", args, fallback=True)
    X, Xt = _pixels(train), _pixels(test)
    names = np.asarray(train.target_names)
    _describe(args.dataset, train, test, args)
    from ._report import fit_model

    seconds = fit_model(model, X, train.target, progress=(
        type(model).__name__ if args.progress and not args.verbose else None))
    if args.output:
        from .io import dump

        dump(model, args.output, metadata={
            "dataset": args.dataset, "n_train": int(len(X)),
            "data": _where(train, args)})
    acc = model.score(Xt, test.target)
    desc = (f"multi_class={model.multi_class!r}" if args.model == "softmax"
            else f"hidden_layer_sizes={tuple(model._hidden_sizes())!r}")
    # and the parameters the user set (dropout=0.2 would not show otherwise)
    desc = ", ".join([desc] + [f"{key}={value!r}" for key, value in
                               _parse_params(args.param).items()
                               if key not in ("hidden_layer_sizes", "multi_class")])
    print(f"{type(model).__name__}({desc}): {model.n_iter_} epochs in {seconds:.2f} s, "
          f"train accuracy {model.accuracy_curve_[-1]:.4f}, test accuracy {acc:.4f}")
    last = model.loss_curve_per_class_[-1]
    order = np.argsort(last)
    print("cross-entropy per class, last epoch (easiest first): " + ", ".join(
        f"{names[k]} {last[k]:.3f}" for k in order))
    if args.output:
        print(f"model saved to {args.output}")
    return EXIT_OK


# ---------------------------------------------------------------- evaluate


def _read_model(path, trust_pickle):
    """The model in ``path`` and the metadata saved with it."""
    from .io import ModelFileError, UntrustedFileError, load

    if os.path.isdir(path):
        raise CLIError(f"{path} is a folder; name a model file, e.g. "
                       f"{os.path.join(path, 'model.skops')}")
    if not os.path.isfile(path):
        raise CLIError(f"model file not found: {path}")
    if os.path.getsize(path) == 0:
        raise CLIError(f"{path} is empty: not a model file")
    try:
        model, meta = load(path, allow_pickle=trust_pickle, return_metadata=True)
    except UntrustedFileError as exc:
        if trust_pickle or "not a skops file" not in str(exc):
            raise CLIError(str(exc)) from None
        raise CLIError(
            f"{path} is not a skops file. If it is a pickle or joblib file, "
            "loading it runs code from the file: skdigits saves models as "
            "skops files (skdigits fit -o model.skops); pass --trust-pickle "
            "only if you trust where this file comes from."
        ) from None
    except ModelFileError as exc:  # damaged, oversized or inconsistent
        raise CLIError(str(exc)) from None
    except Exception as exc:  # unpickling raises many kinds of errors
        raise CLIError(f"cannot read model file {path}: "
                       f"{type(exc).__name__}: {exc}") from None
    if not (hasattr(model, "predict") and hasattr(model, "classes_")):
        raise CLIError(f"{path} does not hold a fitted classifier "
                       f"(it holds a {type(model).__name__})")
    return model, meta


def _check_model_fits_data(model, meta, data, args):
    """Refuse to score a model on data it was not trained for."""
    trained_on = meta.get("dataset")
    if trained_on is not None and trained_on != args.dataset:
        raise CLIError(
            f"{args.model_file} was trained on {trained_on}, not on "
            f"{args.dataset}: pass --dataset {trained_on}")
    n_features = data.data.shape[1]
    if getattr(model, "n_features_in_", n_features) != n_features:
        raise CLIError(f"the model expects {model.n_features_in_} features, the "
                       f"{args.dataset} images have {n_features}")
    classes = np.asarray(model.classes_)
    labels = np.unique(data.target)
    same_kind = classes.dtype.kind in "iu" and labels.dtype.kind in "iu"
    if not same_kind or not np.isin(labels, classes).all():
        shown = classes.tolist()[:12]
        raise CLIError(
            f"the model's classes {shown} are not the {args.dataset} labels "
            f"{labels.tolist()}: it was trained on other data")


def _cmd_evaluate(args):
    from sklearn.metrics import classification_report

    from .metrics import most_confused_pairs

    model, meta = _read_model(args.model_file, args.trust_pickle)
    if args.dataset is None:  # the dataset the file says, else the digits
        args.dataset = meta.get("dataset", "digits")
    data = _load(args.dataset, args.subset, args, fallback=True)
    _check_model_fits_data(model, meta, data, args)
    X = _pixels(data)
    names = [str(n) for n in data.target_names]
    where = _where(data, args)
    tic = time.perf_counter()
    y_pred = model.predict(X)
    seconds = time.perf_counter() - tic
    from ._unwrap import fitted_final_estimator

    name = type(fitted_final_estimator(model, (), "skdigits evaluate")).__name__
    acc = float(np.mean(y_pred == data.target))
    print(f"{name} from {args.model_file} on {args.dataset} {args.subset} "
          f"({len(X)} images, {where}): accuracy {acc:.4f}, "
          f"predicted in {seconds:.2f} s")
    labels = np.arange(len(names))
    print(classification_report(data.target, y_pred, labels=labels,
                                target_names=names, digits=4, zero_division=0))
    pairs = most_confused_pairs(data.target, y_pred, labels=labels, k=args.top)
    print("most confused (true -> predicted: count): " + (", ".join(
        f"{names[int(a)]} -> {names[int(b)]}: {n}" for a, b, n in pairs) or "none"))
    return EXIT_OK


# ---------------------------------------------------------------- export


def _size_words(n_bytes):
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes} bytes"


def _check_export_args(parser, args):
    """Bad arguments of ``export`` exit 2, before any file is read."""
    if not args.output:
        parser.error("OUTPUT is empty: name the ONNX file to write, e.g. model.onnx")
    if args.opset is not None:
        from ._onnx import opset_problem

        problem = opset_problem(args.opset)
        if problem:
            parser.error(f"--opset {problem}")


def _cmd_export(args):
    # the output is checked before the model is read and converted
    if os.path.isdir(args.output):
        raise CLIError(f"the output {args.output} is a folder; name a file, e.g. "
                       f"{os.path.join(args.output, 'model.onnx')}")
    _check_output_file(args.output)
    if os.path.exists(args.output) and os.path.exists(args.model_file) and \
            os.path.samefile(args.output, args.model_file):
        raise CLIError(f"the output {args.output} is the model file itself; name "
                       "another file, e.g. model.onnx")
    from ._onnx import MissingExtraError, _require, describe
    from .io import to_onnx

    try:  # before the model is read
        _require()
    except MissingExtraError as exc:
        raise CLIError(str(exc)) from None
    model, _ = _read_model(args.model_file, args.trust_pickle)
    n_features = getattr(model, "n_features_in_", None)
    if n_features is None:
        raise CLIError(f"{args.model_file} holds a {type(model).__name__} that does "
                       "not say how many features it takes (no n_features_in_)")
    if getattr(model, "feature_names_in_", None) is not None:
        raise CLIError(
            f"{args.model_file} was fitted on a DataFrame with named columns; export "
            "it from Python with skdigits.io.to_onnx(model, X_sample), X_sample a "
            "DataFrame of a few rows (one graph input per column)")
    sample = np.zeros((1, int(n_features)), dtype=args.input_dtype)
    onnx_model = to_onnx(model, sample, zipmap=args.zipmap,
                         float64=args.precision == "float64", target_opset=args.opset)
    data = onnx_model.SerializeToString()
    from ._fileio import atomic_write

    with atomic_write(args.output) as fh:
        fh.write(data)
    opset = next((op.version for op in onnx_model.opset_import if op.domain in
                  ("", "ai.onnx")), "?")
    from ._fitted import fitted_estimators

    arithmetic = ""
    if fitted_estimators(model):  # what --precision chose for skdigits' models;
        # a float64 input is computed in float64 whatever --precision says
        arithmetic = ", float64 arithmetic" if "float64" in (
            args.precision, args.input_dtype) else ", float32 arithmetic"
    print(f"{args.model_file} -> {args.output}: {_size_words(len(data))}, ONNX "
          f"opset {opset}{arithmetic}")
    rows = describe(onnx_model)
    width = max(len(name) for _, name, _ in rows)
    for kind, name, words in rows:
        print(f"  {kind:6} {name:{width}}  {words}")
    return EXIT_OK


# ---------------------------------------------------------------- report


def _check_out_folder(out, contents, what):
    """Fail before any work when ``--out`` names a file, or a folder (or the
    folder above a new one) where files cannot be created."""
    from ._fileio import check_writable_folder

    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out} is a file, not a folder: name a folder for "
                       f"{contents}")
    if os.path.isdir(out):
        check_writable_folder(out, what=what)
    else:
        check_writable_folder(os.path.dirname(os.path.abspath(out)),
                              what="folder above --out")


def _cmd_report(args):
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window
    from ._report import build_report

    _check_out_folder(args.out, "the report", "report folder")

    datasets = ("digits", "fashion") if args.dataset == "both" else (args.dataset,)
    titles = {"digits": "MNIST", "fashion": "Fashion-MNIST"}

    def fitted(kind, m):  # one line per fit with --quiet
        if args.quiet:
            print(f"{titles[kind]} ({m['source']}): {m['model']}: "
                  f"{m['epochs']} epochs in {m['fit_seconds']:.2f} s, "
                  f"test accuracy {m['test_accuracy']:.4f}")

    def announce(result):
        if args.quiet:
            return
        print(f"{result['title']}: {result['source']}, {result['n_train']} train / "
              f"{result['n_test']} test images")
        for m in result["models"].values():  # within 80 columns: the class
            # name only (the fit lines above say which model, the page gives
            # the parameters)
            print(f"  {m['model'].split('(')[0]}: test accuracy "
                  f"{m['test_accuracy']:.4f} at epoch {m['kept_epoch']} of "
                  f"{m['epochs']}")

    page, report = build_report(
        args.out, datasets, data_home=args.data_home, sample=args.sample,
        download=args.download, seed=args.seed, max_iter=args.max_iter,
        progress=not (args.quiet or args.verbose), verbose=int(args.verbose > 0),
        embed=args.self_contained, force=args.force, on_dataset=announce,
        on_fit=fitted)
    from ._claims import format_counts

    # the counts in one order on every run, and with --quiet too
    print(f"claims: {format_counts(report['claims'])}")
    n_png = sum(name.endswith(".png") for name in report["files"])
    print(f"report written: {page} ({n_png} PNG files "
          f"{'embedded in it and ' if args.self_contained else ''}beside it)")
    return EXIT_OK


# ---------------------------------------------------------------- benchmark


def _cmd_benchmark(args):
    from ._cores import effective_n_threads
    from .benchmark import format_table, machine_line, run_benchmark

    train = _load(args.dataset, "train", args)
    test = _load(args.dataset, "test", args)
    _describe(args.dataset, train, test, args)
    print(machine_line(effective_n_threads(args.n_jobs)), flush=True)
    # a status line per side on a terminal, else one log line per side
    rows = run_benchmark(_pixels(train), train.target, _pixels(test), test.target,
                         models=args.models, epochs=args.epochs, hidden=args.hidden,
                         batch_size=args.batch_size, seed=args.seed,
                         n_jobs=args.n_jobs,
                         progress=not (args.quiet or args.verbose))
    for note in rows[0].get("notes", ()) if rows else ():
        print(note)
    print("\n".join(format_table(rows)))
    return EXIT_OK


# ---------------------------------------------------------------- search


def _grid_type(text):
    from ._search import parse_grid_option

    try:
        return parse_grid_option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _folds(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"cross-validation needs at least 2 folds, "
                                         f"got {value}")
    return value


_GRID_HELP = """\
grid syntax: --grid NAME=V1,V2,... (repeat for each parameter). Values are
Python literals (1e-4, 0.5, True, None, 'adam') or plain words (relu); commas
inside brackets do not separate values. hidden_layer_sizes: 128 is (128,), and
128x64 or "(128,64)" is two layers, e.g.
  --grid alpha=1e-5,1e-4 --grid hidden_layer_sizes=128,256,128x64
A grid holds at most 100000 candidates (the product of the value counts).

Without --scheduler the fits run in local processes, one per core (or
--n-jobs); with --scheduler tcp://HOST:8786 they run on that dask cluster,
whose workers need skdigits installed (the same version).
"""


def _compile_jobs(args):
    """The kernel jobs ``skdigits compile`` runs for its options."""
    from ._warmup import JOBS

    if args.every:
        return list(JOBS)
    kinds = ("dense", "csr") if args.sparse else ("dense",)
    jobs = []
    for kind in kinds:
        if "mlp" in args.models:
            dtypes = ("float32", "float64") if args.dtype == "both" else (
                args.dtype or "float32",)
            epochs = ("mlp_epoch", "mlp_epoch_deep") if args.deep else ("mlp_epoch",)
            jobs += [f"{e}-{d}-{kind}" for e in epochs for d in dtypes]
            jobs.append(f"mlp_forward-{kind}")
        if "softmax" in args.models:
            dtypes = (args.dtype,) if args.dtype in ("float32", "float64") else (
                "float32", "float64")
            jobs += [f"linear_epoch-{d}-{kind}" for d in dtypes]
            jobs.append(f"linear_forward-{kind}")
    return jobs


def _cmd_compile(args):
    from . import _warmup
    from ._cores import process_cores
    from ._kernels import _numba

    if _numba.CACHE_KIND == "none":
        raise CLIError("no kernel cache to fill: " + _numba.CACHE_PROBLEM
                       + " (set NUMBA_CACHE_DIR to a folder of your own)")
    jobs = _compile_jobs(args)
    cold = _warmup.cold_jobs(jobs)
    where = _numba.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR") or (
        "skdigits' __pycache__ folders")
    if not cold:
        if not args.quiet:
            print(f"nothing to compile: the cache ({where}) holds all "
                  f"{len(jobs)} kernel(s) for this CPU")
        return EXIT_OK
    n = process_cores() if args.n_jobs is None or args.n_jobs < 0 else args.n_jobs
    n = max(1, min(n, len(cold)))
    if not args.quiet:
        print(f"compiling {len(cold)} kernel(s) for this CPU in {n} process(es), "
              f"about {_warmup.estimate_seconds(cold, n):.0f} s: {', '.join(cold)}",
              flush=True)
    tic = time.perf_counter()
    _warmup.warm_up(cold, n)
    if not args.quiet:
        print(f"compiled in {time.perf_counter() - tic:.1f} s into {where}")
    return EXIT_OK


def add_search_parser(subparsers):
    """Register the ``search`` sub-command on ``subparsers`` (the object
    ``ArgumentParser.add_subparsers`` returns); returns its parser. The
    search itself is in ``skdigits._search``."""
    p = subparsers.add_parser(
        "search", help="grid search over an estimator's parameters, locally or "
                       "on a dask cluster; writes a page and a JSON file",
        description=textwrap.fill(
            "Cross-validate every combination of the --grid values on the train "
            "split (GridSearchCV, accuracy), refit the best on the whole train "
            "split and score it on the test split. Writes results.json, "
            "index.html (the candidates, a plot of the score against each "
            "parameter, the best model's per-class loss curves) and the PNGs "
            "into --out.", 78),
        epilog=_GRID_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_options(p)
    p.add_argument("--model", choices=MODELS, default="softmax")
    p.add_argument("--grid", action="append", type=_grid_type, required=True,
                   metavar="NAME=V1,V2,...",
                   help="a parameter and the values to try (repeatable; see below)")
    p.add_argument("--param", action="append", type=_key_value,
                   metavar="KEY=VALUE",
                   help="a fixed estimator parameter, as a Python literal "
                        "(repeatable)")
    p.add_argument("--cv", type=_folds, default=3, metavar="K",
                   help="cross-validation folds (default: 3)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="random_state of every fit (default: 0)")
    p.add_argument("--max-iter", type=_positive_int, default=None, metavar="N",
                   help="epochs per fit (default: the model's 'auto')")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       type=_scheduler_address,
                       help="run the fits on the dask cluster of this scheduler "
                            "(e.g. tcp://10.0.0.5:8786)")
    where.add_argument("--n-jobs", type=_positive_int, default=None, metavar="N",
                       help="local processes (default: one per core)")
    p.add_argument("--out", metavar="DIR", type=_path, default="skdigits-search",
                   help="output folder (default: ./skdigits-search)")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds files skdigits did not "
                        "write (they are left alone, except files named like the "
                        "search's own, which are replaced)")
    p.add_argument("-o", "--save-model", metavar="FILE", type=_path, default=None,
                   help="save the best model here, in the skops format "
                        "(e.g. best.skops); checked before the search")
    _console_options(p, quiet_help="no log lines, only the results")
    p.set_defaults(func=_cmd_search, parser=p)  # its own usage on errors
    return p


def _base_estimator(args):
    """The estimator every candidate starts from, and the parameters the
    command line set on it: ``(estimator, params, fixed)``, where ``fixed``
    (``--param``, ``--max-iter``) may not be searched too; ``--seed`` may."""
    from . import MLPClassifier, SoftmaxRegression

    cls = SoftmaxRegression if args.model == "softmax" else MLPClassifier
    fixed = {} if args.max_iter is None else {"max_iter": args.max_iter}
    fixed.update(_parse_params(args.param))
    params = {"random_state": args.seed, **fixed}
    valid = cls().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise CLIError(f"{cls.__name__} has no parameter {', '.join(unknown)} "
                       f"(--param); valid: {', '.join(sorted(valid))}")
    estimator = cls(**params)
    estimator._validate_params()
    return estimator, params, fixed


def _scheduler_address(text):
    """A dask scheduler address, ``[PROTOCOL://]HOST:PORT``, checked before
    any connection (a malformed one made distributed wait for its timeout
    and print a traceback when the client was collected)."""
    import re

    if not re.fullmatch(r"([a-z]+://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):\d{1,5}",
                         text):
        raise argparse.ArgumentTypeError(
            f"not a scheduler address: {text!r}; give HOST:PORT or "
            "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    return text


def _inside(path, folder):
    """Whether ``path`` lies in ``folder`` (or below it)."""
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder


def _cmd_search(args):
    from ._search import (
        JSON,
        LOSS_PNG,
        PAGE,
        _plain,
        _where_text,
        build_grid,
        claim_folder,
        run_search,
        search_backend,
        search_jobs,
        write_results,
    )

    if args.sample and args.data_home:
        raise CLIError("--sample and --data-home exclude each other: the bundled "
                       "sample needs no data folder")
    # everything that can be checked fails before the data loads
    estimator, params, fixed = _base_estimator(args)
    grid = build_grid(estimator, args.grid, fixed)
    _check_out_folder(args.out, "the results", "output folder")
    if args.save_model and _inside(args.save_model, args.out):
        raise CLIError(
            f"-o {args.save_model} is inside --out {args.out}, which holds only "
            "the search's own files: save the model elsewhere")
    if args.save_model:
        _check_output_file(args.save_model)
    planned = {PAGE, JSON, LOSS_PNG} | {f"score_{name}.png" for name in grid}
    # the folder is this search's alone until its files are written
    with claim_folder(args.out, force=args.force, planned=planned) as previous:
        with search_backend(args.scheduler, n_jobs=args.n_jobs,
                            jobs=search_jobs(estimator, grid)) as (n_jobs, where):
            train = _load(args.dataset, "train", args, fallback=True)
            test = _load(args.dataset, "test", args, fallback=True)
            if not args.quiet:
                _describe(args.dataset, train, test, args)
            X, Xt = _pixels(train), _pixels(test)
            search, seconds = run_search(estimator, grid, X, train.target,
                                         cv=args.cv, n_jobs=n_jobs)
        accuracy = search.score(Xt, test.target)
        source = _where(train, args)
        info = {
            "command": "skdigits search", "model": type(estimator).__name__,
            "dataset": args.dataset, "data": source, "n_train": int(len(X)),
            "n_test": int(len(Xt)), "cv": args.cv, "seed": args.seed,
            "max_iter": args.max_iter, "params": _plain(params), "where": where,
            "timings": {"search_seconds": seconds},
        }
        page, results = write_results(
            args.out, search, grid, test_accuracy=accuracy, info=info,
            class_names=[str(n) for n in train.target_names], previous=previous)
    if args.save_model:
        from .io import dump

        dump(search.best_estimator_, args.save_model, metadata={
            "dataset": args.dataset, "n_train": int(len(X)), "data": source,
            "search": {"best_params": results["best_params"],
                       "best_score": results["best_score"]}})
    best = ", ".join(f"{k}={v!r}" for k, v in search.best_params_.items())
    print(f"best of {results['n_candidates']} candidates: {best}: {args.cv}-fold CV "
          f"accuracy {results['best_score']:.4f} +/- {results['best_std']:.4f}, "
          f"test accuracy {accuracy:.4f} (searched in {seconds:.1f} s on "
          f"{_where_text(where)})")
    print(f"results written: {page} ({len(results['figures'])} PNG files beside it)")
    if args.save_model:
        print(f"best model saved to {args.save_model}")
    return EXIT_OK


# ---------------------------------------------------------------- parser


def _seed(text):
    """A ``random_state`` seed: what NumPy's legacy generator takes."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 2**32 - 1:
        raise argparse.ArgumentTypeError(
            f"must be between 0 and 2**32 - 1, got {value}")
    return value


def _path(text):
    """A file or folder name: not empty."""
    if not text:
        raise argparse.ArgumentTypeError("an empty name; name a file or folder")
    return text


def _key_value(text):
    """``--param KEY=VALUE``: the shape only (the estimator checks the rest)."""
    key, sep, _ = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expects KEY=VALUE, got {text!r}")
    return text


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _n_jobs(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("0 threads: give a positive count or -1")
    return value


def _model_list(text):
    models = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if not models or bad:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(MODELS)} (comma-separated), got {text!r}")
    return models


def _data_options(parser, *, both=False, default="digits", default_help=None):
    choices = ["digits", "fashion", "both"] if both else ["digits", "fashion"]
    parser.add_argument("--dataset", choices=choices, default=default,
                        help=f"which dataset (default: {default_help or default})")
    parser.add_argument("--sample", action="store_true",
                        help="use the sample bundled with the package "
                             "(no files needed)")
    parser.add_argument("--data-home", metavar="DIR", default=None,
                        help="folder holding mnist/ and fashion-mnist/ (default: "
                             "$SKDIGITS_DATA, then the per-user data folder)")
    parser.add_argument("--download", action="store_true",
                        help="download the files from OpenML when they are not found")


#: ``-v`` of the commands that train nothing
NO_EPOCHS_VERBOSE = "more log lines; -vv also logs debug lines"


def _console_options(parser, quiet_help, verbose_help=(
        "log each epoch (instead of progress bars); -vv also logs debug lines")):
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    talk.add_argument("-v", "--verbose", action="count", default=0,
                      help=verbose_help)


def build_parser():
    """The argument parser of the ``skdigits`` command."""
    parser = argparse.ArgumentParser(
        prog="skdigits",
        description="Train, inspect and benchmark skdigits classifiers on MNIST "
                    "and Fashion-MNIST.",
        epilog="Exit codes: 0 success, 1 runtime error (message on one line), "
               "2 bad arguments, 130 interrupted.")
    parser.add_argument("--version", action="version",
                        version=f"skdigits {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    rep = sub.add_parser(
        "report", help="run the whole study and write PNGs and an HTML page",
        description="Train a one-vs-rest SoftmaxRegression and an MLPClassifier "
                    "on digits and on Fashion-MNIST, then write every plot of the "
                    "study (samples, per-class loss, predictions with mistakes, "
                    "loss and accuracy curves with a zoom, confusion matrix) as "
                    "PNG and an index.html that shows them with the figures and "
                    "observations of the run. Uses the full datasets when found, "
                    "the bundled sample otherwise.")
    _data_options(rep, both=True, default="both")
    rep.add_argument("--out", metavar="DIR", type=_path,
                     default="skdigits-report",
                     help="output folder (default: ./skdigits-report)")
    rep.add_argument("--seed", type=_seed, default=0)
    rep.add_argument("--max-iter", type=_positive_int, default=None, metavar="N",
                     help="epochs per model (default: each model's 'auto')")
    rep.add_argument("--force", action="store_true",
                     help="write into a folder that holds files skdigits did not "
                          "write (they are left alone, except files named like the "
                          "report's own, which are replaced); without it such a "
                          "folder is refused")
    rep.add_argument("--self-contained", action="store_true",
                     help="embed the PNGs in index.html, so that the page can be "
                          "sent on its own (the PNGs are still written)")
    _console_options(rep, quiet_help="no progress bars: one line per model of the "
                                      "study, then the verdicts")
    rep.set_defaults(func=_cmd_report, parser=rep)  # its own usage on errors

    fit = sub.add_parser(
        "fit", help="train one estimator and report accuracy and per-class loss",
        description="Train SoftmaxRegression or MLPClassifier on the train split, "
                    "score it on the test split, print the per-class loss of the "
                    "last epoch, and optionally save the model (skops format).")
    _data_options(fit)
    fit.add_argument("--model", choices=MODELS, default="softmax")
    fit.add_argument("--multi-class", choices=["multinomial", "ovr"],
                     default="multinomial", help="SoftmaxRegression only")
    fit.add_argument("--param", action="append", type=_key_value,
                     metavar="KEY=VALUE",
                     help="any estimator parameter, as a Python literal, e.g. "
                          "--param 'hidden_layer_sizes=(128, 64)' (repeatable)")
    fit.add_argument("--max-iter", type=_positive_int, default=None, metavar="N")
    fit.add_argument("--seed", type=_seed, default=0)
    fit.add_argument("--progress", action="store_true",
                     help="show a progress bar on a terminal; elsewhere one line "
                          "when the fit ends")
    _console_options(fit, quiet_help="no log lines, only the results")
    fit.add_argument("-o", "--output", metavar="FILE", type=_path, default=None,
                     help="save the fitted model here, in the skops format "
                          "(e.g. model.skops); checked before training")
    fit.set_defaults(func=_cmd_fit, parser=fit)  # its own usage on errors

    ev = sub.add_parser(
        "evaluate", help="score a saved model: accuracy, classification report, "
                         "most confused pairs",
        description="Load a model saved by `skdigits fit -o` (a skops file, "
                    "loaded without running code from it) and score it on a "
                    "split of the dataset it was trained on. Pickle and joblib "
                    "files run code when loaded: they are refused unless "
                    "--trust-pickle is given.")
    ev.add_argument("model_file", metavar="MODEL", help="skops file")
    _data_options(ev, default=None,
                  default_help="the one recorded in the model file, else digits")
    ev.add_argument("--trust-pickle", action="store_true",
                    help="load a pickle/joblib file: this runs code from the "
                         "file, so only for files you trust")
    ev.add_argument("--subset", choices=["test", "train"], default="test")
    ev.add_argument("--top", type=_positive_int, default=5, metavar="K",
                    help="how many confused pairs to list (default: 5)")
    _console_options(ev, quiet_help="no log lines, only the results",
                     verbose_help=NO_EPOCHS_VERBOSE)
    ev.set_defaults(func=_cmd_evaluate, parser=ev)  # its own usage on errors

    exp = sub.add_parser(
        "export", help="convert a saved model to ONNX, to predict without Python",
        description="Load a model saved by `skdigits fit -o` as `evaluate` does "
                    "(a skops file, loaded without running code from it; pickle "
                    "and joblib files only with --trust-pickle) and write it as "
                    "an ONNX graph that reproduces predict and predict_proba, "
                    "atomically. Prints the graph's inputs, outputs and size. "
                    "Needs onnx and skl2onnx: pip install \"skdigits[onnx]\".")
    exp.add_argument("model_file", metavar="MODEL", help="skops file")
    exp.add_argument("output", metavar="OUTPUT", help="ONNX file to write "
                                                      "(e.g. model.onnx)")
    exp.add_argument("--trust-pickle", action="store_true",
                     help="load a pickle/joblib file: this runs code from the "
                          "file, so only for files you trust")
    exp.add_argument("--input-dtype", choices=["float32", "float64"],
                     default="float32",
                     help="type of the graph's input and probabilities "
                          "(default: float32)")
    exp.add_argument("--precision", choices=["float64", "float32"],
                     default="float64",
                     help="arithmetic inside the graph: float64 as skdigits' "
                          "predict (default), or float32 (with a float32 input), "
                          "faster and within about 1e-6")
    exp.add_argument("--zipmap", action="store_true",
                     help="probabilities as a list of {class: probability} "
                          "(ONNX's ZipMap, float32 input only) instead of a "
                          "tensor")
    exp.add_argument("--opset", type=_positive_int, default=None, metavar="N",
                     help="ONNX opset (default: the latest skl2onnx supports)")
    _console_options(exp, quiet_help="no log lines, only the results",
                     verbose_help=NO_EPOCHS_VERBOSE)
    exp.set_defaults(func=_cmd_export, parser=exp)  # its own usage on errors

    bench = sub.add_parser(
        "benchmark", help="speed table against scikit-learn (and PyTorch)",
        description="Fit skdigits and its peers on the same data in this process "
                    "and print fit time, time per epoch, test accuracy and the "
                    "time ratio. The MLP rows train the same network with Adam "
                    "(lr 1e-3, constant) for the same number of epochs. Takes "
                    "minutes on the full data: each side shows a status line as "
                    "it runs. The load other processes put on the CPUs is "
                    "measured before, during and after the fits; a ratio taken "
                    "under load is marked with *.")
    _data_options(bench)
    bench.add_argument("--models", type=_model_list, default=list(MODELS),
                       metavar="LIST", help="softmax,mlp (default: both)")
    bench.add_argument("--epochs", type=_positive_int, default=3, metavar="N",
                       help="MLP epochs (default: 3)")
    bench.add_argument("--hidden", type=_positive_int, nargs="+", default=[256],
                       metavar="UNITS", help="MLP hidden layer sizes (default: 256)")
    bench.add_argument("--batch-size", type=_positive_int, default=128, metavar="N")
    bench.add_argument("--seed", type=_seed, default=0)
    bench.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N",
                       help="threads for every side: skdigits' n_jobs, and the "
                            "same count for scikit-learn's BLAS and PyTorch "
                            "(default: the cores this process may use; -1 all)")
    _console_options(bench, quiet_help="no status or log lines, only the results")
    bench.set_defaults(func=_cmd_benchmark, parser=bench)  # its own usage on errors
    add_search_parser(sub)

    comp = sub.add_parser(
        "compile", help="compile the kernels into the cache ahead of time "
                        "(container images, fleets)",
        description="Compile skdigits' Numba kernels for this CPU into the "
                    "on-disk cache, in parallel processes, so that the first fit "
                    "and prediction of a process load them instead (a few "
                    "hundredths of a second instead of seconds). Kernels already "
                    "in the cache are skipped. Without options: what the "
                    "defaults and the report use on dense data.")
    comp.add_argument("--models", type=_model_list, default=list(MODELS),
                      metavar="LIST", help="softmax,mlp (default: both)")
    comp.add_argument("--dtype", choices=["float32", "float64", "both"],
                      default=None, help="model dtype (default: the MLP's float32, "
                                         "and float32 and float64 for the softmax, "
                                         "which follows the data)")
    comp.add_argument("--sparse", action="store_true",
                      help="also the kernels for CSR data")
    comp.add_argument("--deep", action="store_true",
                      help="also the MLP epoch of two or more hidden layers")
    comp.add_argument("--all", action="store_true", dest="every",
                      help="every kernel, every dtype, dense and CSR")
    comp.add_argument("--n-jobs", type=_n_jobs, default=None, metavar="N",
                      help="processes (default: the cores this process may use; "
                           "-1 all)")
    _console_options(comp, quiet_help="only errors",
                     verbose_help=NO_EPOCHS_VERBOSE)
    comp.set_defaults(func=_cmd_compile, parser=comp)  # its own usage on errors
    for command in sub.choices.values():
        command.add_argument("--debug", action="store_true",
                             help="on an error, print the full traceback too")
    return parser


def _one_line(exc):
    """An exception as one line: its message, or its type when it has none."""
    datasets = sys.modules.get(f"{__package__}.datasets._base")
    if datasets is not None and isinstance(exc, datasets.DataNotFoundError):
        words = _data_error(exc)
        if words:
            return words
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = " ".join(lines)
    if isinstance(exc, MemoryError):
        return "out of memory" + (f": {text}" if text else
                                  " (try a smaller model or less data)")
    if isinstance(exc, (OSError, ValueError, TypeError, CLIError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv=None):
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    # errors found after parsing show the subcommand's usage, as argparse's own
    parser = args.parser
    if getattr(args, "sample", False) and getattr(args, "data_home", None):
        # an explicit path is never ignored
        parser.error("--sample and --data-home exclude each other: the bundled "
                     "sample needs no data folder")
    if getattr(args, "zipmap", False) and getattr(args, "input_dtype", "") == "float64":
        parser.error("--zipmap needs float32 probabilities (ONNX's ZipMap takes no "
                     "float64): drop --zipmap or --input-dtype float64")
    if getattr(args, "command", None) == "export":
        _check_export_args(parser, args)
    handler = _start_logging(args)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"skdigits {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # every failure: one line, exit code 1
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"skdigits {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        _stop_logging(handler)


def _start_logging(args):
    """Show skdigits' log records on stderr from the first line on: INFO
    (which files are read, what is removed) by default, WARNING with
    ``--quiet``, DEBUG with ``-vv``. Per-epoch lines come only with ``-v``
    (the estimators' ``verbose``). The records stop at this handler, so
    each shows once; the logger is restored when the command ends."""
    import logging

    from ._logging import BarAwareHandler, logger

    level = (logging.WARNING if getattr(args, "quiet", False) else
             logging.DEBUG if getattr(args, "verbose", 0) >= 2 else logging.INFO)
    handler = BarAwareHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(level)
    handler._skdigits_saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler


def _stop_logging(handler):
    if handler is not None:
        from ._logging import logger

        logger.removeHandler(handler)
        logger.setLevel(handler._skdigits_saved[0])
        logger.propagate = handler._skdigits_saved[1]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
