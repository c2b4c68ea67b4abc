"""The study report behind ``skdigits report``: train the one-vs-rest softmax
model and the MLP on each dataset, draw every plot of the study as PNG, judge
the study's claims from the run, and write one HTML page and a JSON file with
the figures, the verdicts and the run's context.

The same data, seed and package give the same report: every figure, verdict
and PNG, byte for byte. Only the ``timings`` block and the date of
``report.json`` (and the page's timing column) change from run to run.

The folder holds exactly what the page shows: files an earlier report wrote
that no longer belong are removed, and a folder holding files skdigits did
not write is refused unless ``force=True``.

Library code: it logs through :mod:`logging`, shows a progress bar per fit
when asked, and returns what it measured; the command line prints.
"""

import base64
import contextlib
import datetime
import hashlib
import html
import json
import logging
import math
import os
import time
import warnings

import numpy as np

from . import _claims
from ._fileio import ForeignFilesError, OutputFolder
from ._logging import Progress, fit_outcome, kept_epoch, stopping_target

logger = logging.getLogger(__name__)

DATASETS = ("digits", "fashion")
TITLES = {"digits": "MNIST digits", "fashion": "Fashion-MNIST"}
#: The files a report writes besides its PNGs; the marker says the folder
#: holds a report.
PAGE, JSON, MARKER = "index.html", "report.json", ".skdigits-report"
GENERATOR = "skdigits report"
#: The figures of each dataset, in the order of the page.
FIGURES = ("samples", "ovr_loss_per_class", "predictions", "mlp_curves",
           "mlp_loss_per_class", "confusion")
#: Every name a report may write; nothing else is ever removed.
REPORT_FILES = frozenset({PAGE, JSON, MARKER} | {
    f"{kind}_{figure}.png" for kind in ("digits", "fashion") for figure in FIGURES})
#: The rows of the grid of training images fitted for the compile warm-up.
WARM_UP_ROWS = 512
#: The fits' names on the console, after the dataset's title: short enough
#: for a readable progress bar at 80 columns. Claim 1's fit is announced
#: with a line that says what it is for.
BAR_NAMES = {"ovr": "one-vs-rest softmax", "mlp": "MLP",
             "claim 1": "second MLP"}


class ReportFolderError(ForeignFilesError):
    """The output folder holds files that skdigits did not write."""


def load_study_data(kind, *, data_home=None, sample=False, download=False):
    """Train and test Bunches of ``kind``; the full files when found (or
    downloaded), else the bundled sample. Returns ``(train, test, source)``."""
    from .datasets import DataNotFoundError, load_mnist

    if not sample:
        try:
            train = load_mnist(kind, "train", data_home=data_home,
                               download_if_missing=download)
            test = load_mnist(kind, "test", data_home=data_home,
                              download_if_missing=download)
            return train, test, (f"full dataset in {train.data_home} "
                                 f"({train.get('source', 'files')})")
        except DataNotFoundError:
            if data_home is not None or download:
                # the user named a folder or asked for the download: do not
                # hide that it is wrong or failed
                raise
            logger.info("%s: full files not found, using the sample (--download gets "
                        "them)", TITLES[kind])
            source = "bundled sample, as the full files were not found"
    else:
        source = "bundled sample"
    train = load_mnist(kind, "train", sample=True)
    test = load_mnist(kind, "test", sample=True)
    return train, test, source


# ---------------------------------------------------------------- the folder


def _first_version_report(out_dir):
    """Whether ``out_dir`` holds a report of the first version, written
    before the marker existed: a ``report.json`` with a seed and datasets
    with figures."""
    try:
        with open(os.path.join(out_dir, JSON), encoding="utf-8") as fh:
            old = json.load(fh)
    except (OSError, ValueError):
        return False
    return (isinstance(old, dict) and "seed" in old
            and isinstance(old.get("datasets"), list) and bool(old["datasets"])
            and all(isinstance(d, dict) and isinstance(d.get("figures"), dict)
                    for d in old["datasets"]))


#: The report's folder: its fixed file names (:data:`REPORT_FILES`) and its
#: marker; nothing else in it is ever written over or removed.
FOLDER = OutputFolder(MARKER, GENERATOR, REPORT_FILES.__contains__, {PAGE, JSON},
                      "report folder", legacy=_first_version_report,
                      error=ReportFolderError)


def prepare_folder(out_dir, *, force=False, planned=()):
    """Create ``out_dir`` or check what it holds, before any training (see
    :meth:`~skdigits._fileio.OutputFolder.prepare`; :func:`build_report`
    also locks the folder); returns the report files already there."""
    return FOLDER.prepare(out_dir, force=force, planned=planned)


def remove_stale(out_dir, previous, written):
    """Remove the report files an earlier (or interrupted) report left that
    this one did not write."""
    for path in FOLDER.finish(out_dir, previous, written):
        logger.info("Removed %s, left by an earlier report", path)


# ---------------------------------------------------------------- fitting


class _Advance:
    """The estimator's ``callbacks``: advance a :class:`Progress` each epoch,
    showing the validation accuracy (what early stopping watches) if any."""

    def __init__(self, progress):
        self.progress = progress

    def __call__(self, est, info):
        self.progress.update(val_accuracy=info.get("val_accuracy"))


def _planned_epochs(model, n_rows):
    n_train = n_rows
    if getattr(model, "early_stopping", False):
        n_train -= math.ceil(model.validation_fraction * n_rows)
    return model._resolve_max_iter(max(n_train, 1))


#: How the estimators' warning begins when Ctrl-C stopped a fit.
_INTERRUPTED = "Training interrupted by the user"


@contextlib.contextmanager
def interrupts_raised():
    """Raise ``KeyboardInterrupt`` as soon as a fit in the block absorbs a
    Ctrl-C.

    The estimators, like scikit-learn's MLP, turn a Ctrl-C inside ``fit``
    into a warning and keep the last finished epoch. A command the user
    interrupted must stop instead: not go on with a truncated model, nor fit
    the next candidate of a search. The warning is made an error where it is
    given, so the fit stops there, and that error leaves the block as
    ``KeyboardInterrupt``. scikit-learn passes the warning filters on to
    joblib's workers, so a search's fits in other processes stop the same way.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=_INTERRUPTED, category=UserWarning)
        try:
            yield
        except UserWarning as exc:
            if str(exc).startswith(_INTERRUPTED):
                raise KeyboardInterrupt from None
            raise


def fit_model(model, X, y, *, progress=None):
    """``model.fit(X, y)``; returns the seconds it took.

    ``progress``: a description to show the fit under. On a terminal, a
    progress bar that ends saying how the fit ended; elsewhere (a pipe, a
    log file) one INFO line at the end that says the same, e.g. ``"MNIST
    digits, MLP: stopped early at epoch 16, keeps epoch 5 (0.29 s)"``.
    A Ctrl-C that the estimator absorbed is raised again as
    ``KeyboardInterrupt`` (see :func:`interrupts_raised`).
    ConvergenceWarning is dropped (a fixed epoch budget is the point).
    """
    from sklearn.exceptions import ConvergenceWarning

    bar = None
    if progress:
        planned = _planned_epochs(model, len(X))
        bar = Progress(planned, True, progress)
        callbacks = model.callbacks
        model.set_params(callbacks=_Advance(bar))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with interrupts_raised():
                tic = time.perf_counter()
                model.fit(X, y)
                seconds = time.perf_counter() - tic
    except BaseException:
        if bar is not None:
            bar.close()  # a fit that failed leaves its bar where it stopped
        raise
    finally:
        if bar is not None:
            model.set_params(callbacks=callbacks)
    if bar is not None:
        text = f"{fit_outcome(model, planned, bar.n)} ({seconds:.2f} s)"
        if bar.shown:
            bar.finish(text)
        else:
            logger.info("%s: %s", progress, text)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn(w.message, w.category, stacklevel=2)
    return seconds


def warm_up(model, X, y):
    """Compile (or load from Numba's cache) what ``model`` runs, on a few rows
    and one epoch of a copy; returns the seconds it took, so that the timed
    fit leaves them out."""
    from sklearn.base import clone

    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with interrupts_raised():
            clone(model).set_params(max_iter=1, verbose=0).fit(
                X[:WARM_UP_ROWS], y[:WARM_UP_ROWS])
    return time.perf_counter() - tic


def _class_cross_entropy(proba, y, n_classes):
    """Mean cross-entropy of each class's rows (NaN for an absent class)."""
    p = np.clip(proba[np.arange(len(y)), y], 1e-300, 1.0)
    loss = -np.log(p)
    counts = np.bincount(y, minlength=n_classes)
    sums = np.bincount(y, weights=loss, minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


# ---------------------------------------------------------------- plots


def _save(fig, path):
    with FOLDER.write(*os.path.split(path)) as fh:
        fig.savefig(fh, dpi=90, format="png", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return os.path.basename(path)


def _mark_kept(ax, epoch, *, annotate=True):
    """A dotted vertical line at the kept epoch, labelled at its top on the
    side with more room (unless a legend names it); returns the line."""
    line = ax.axvline(epoch, color="0.25", linestyle=":", linewidth=1.4,
                      zorder=1, label=f"kept weights (epoch {epoch})")
    lo, hi = ax.get_xlim()
    if epoch >= hi:  # on the frame the line would not show: make room
        ax.set_xlim(lo, epoch + 0.03 * (epoch - lo))
    if not annotate:
        return line
    lo, hi = ax.get_xlim()
    right = epoch <= (lo + hi) / 2
    ax.annotate(f"kept: epoch {epoch}", xy=(epoch, 1.0),
                xycoords=("data", "axes fraction"), xytext=(4 if right else -4, -4),
                textcoords="offset points", ha="left" if right else "right",
                va="top", fontsize="small", color="0.25")
    return line


# ---------------------------------------------------------------- the study


def _json_params(model):
    out = {}
    for key, value in sorted(model.get_params().items()):
        if key == "callbacks":
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, (str, int, float, bool, list, type(None))):
            value = repr(value)
        out[key] = value
    return out


def _file_record(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": os.path.abspath(path), "sha256": digest.hexdigest()}


def study(kind, out_dir, *, data_home=None, sample=False, download=False, seed=0,
          max_iter=None, progress=False, verbose=0, on_fit=None, warmed=None):
    """Run the study on one dataset, writing its PNGs into ``out_dir``.

    ``progress`` shows one bar per fit; ``verbose`` is passed to the
    estimators (their per-epoch log lines); ``on_fit(kind, summary)`` is
    called after each fit; ``warmed`` (a dict) records the compile warm-up
    of each model, so that each is warmed once per report.

    Returns a dict of everything the page shows: data source and files, one
    entry per model (parameters, epochs, kept epoch, accuracies of the kept
    model), the observations, the facts the claims are judged on, the PNG
    file names, and the fit times under ``"timings"``.
    """
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix, recall_score

    from . import MLPClassifier, SoftmaxRegression
    from .metrics import most_confused_pairs, per_class_loss_rankings
    from .plotting import DigitGridDisplay, PerClassLossDisplay, plot_training_curves

    warmed = {} if warmed is None else warmed
    train, test, source = load_study_data(kind, data_home=data_home, sample=sample,
                                          download=download)
    names = [str(n) for n in train.target_names]
    n_classes = len(names)
    X = train.data.astype(np.float32) / 255.0
    Xt = test.data.astype(np.float32) / 255.0
    y, yt = train.target, test.target
    missing = sorted(set(range(n_classes)) - set(np.unique(y).tolist()))
    if missing:
        raise ValueError(
            f"the {TITLES[kind]} training data lacks class(es) "
            f"{', '.join(names[k] for k in missing)}: the study needs all "
            f"{n_classes}")
    _compile_forward_ahead()
    epochs = "auto" if max_iter is None else max_iter
    files = [_file_record(f) for f in (train.filenames or []) + (test.filenames or [])]
    result = {"dataset": kind, "title": TITLES[kind], "source": source,
              "sample": train.filenames is None, "files": files,
              "n_train": int(len(X)), "n_test": int(len(Xt)), "figures": {},
              "models": {}, "observations": [], "timings": {}}
    fig = result["figures"]
    prefix = os.path.join(out_dir, kind)

    def run(key, label, model):
        if key not in warmed:
            warmed[key] = warm_up(model, X, y)
        desc = f"{TITLES[kind]}, {BAR_NAMES[key]}" if progress else None
        seconds = fit_model(model, X, y, progress=desc)
        kept = kept_epoch(model)
        # the one ranking of the classes the page gives for this model: by
        # training loss at the epoch it keeps; its plot's bold classes and
        # the observations both use it
        hardest = per_class_loss_rankings(
            np.asarray(model.loss_curve_per_class_)[:kept], class_names=names).hardest
        proba = model.predict_proba(X)
        pred = model.classes_[np.argmax(proba, axis=1)]
        per_class = _class_cross_entropy(proba, y, n_classes)
        summary = {
            "model": label, "params": _json_params(model),
            "epochs": int(model.n_iter_), "kept_epoch": kept,
            # what early stopping watched (its scoring), None without it
            "stopped_on": stopping_target(model),
            # the MLP's dropout probability (0.0: off), None for a model
            # without hidden layers
            "dropout": (float(model.dropout) if hasattr(model, "dropout")
                        else None),
            "hardest": [str(n) for n in hardest],
            "train_accuracy": float(np.mean(pred == y)),
            "train_loss_per_class": [float(v) for v in per_class],
            "train_loss": float(np.mean(-np.log(np.clip(
                proba[np.arange(len(y)), y], 1e-300, 1.0)))),
            "test_accuracy": float(model.score(Xt, yt)),
        }
        result["models"][key] = summary
        result["timings"][key] = float(seconds)
        if on_fit is not None:
            on_fit(kind, dict(summary, fit_seconds=seconds, source=source))
        return model

    # 1. a grid of 100 random training samples with their labels
    grid = DigitGridDisplay.from_dataset(train.data, y, n_samples=100,
                                         random_state=seed, label_names=names)
    fig["samples"] = _save(grid.figure_, f"{prefix}_samples.png")

    # 2. one-vs-rest logistic regression: loss of each label's model
    # at least 15 epochs (about 1.5 s on full MNIST), so each curve has points
    # to show where the default's 2 epochs would give only two
    ovr = run("ovr", "SoftmaxRegression(multi_class='ovr')", SoftmaxRegression(
        multi_class="ovr", random_state=seed, verbose=verbose,
        max_iter=epochs if max_iter is not None else
        max(15, SoftmaxRegression()._resolve_max_iter(len(X)))))
    ovr_hardest = result["models"]["ovr"]["hardest"][:_claims.TOP_HARD]
    ovr_kept = result["models"]["ovr"]["kept_epoch"]
    per_class = PerClassLossDisplay.from_estimator(ovr, class_names=names,
                                                   highlight=ovr_hardest)
    per_class.ax_.set_title(
        f"{TITLES[kind]}: loss of each label's one-vs-rest model\n"
        f"bold: {', '.join(ovr_hardest)}, the highest at epoch {ovr_kept}, "
        "the last, which the model keeps", fontsize="medium")
    fig["ovr_loss_per_class"] = _save(per_class.figure_,
                                      f"{prefix}_ovr_loss_per_class.png")

    # 3-7. the MLP, with a validation split for the validation curves
    mlp = run("mlp", f"MLPClassifier(early_stopping=True, n_iter_no_change={PATIENCE})",
              MLPClassifier(early_stopping=True, n_iter_no_change=PATIENCE,
                            random_state=seed, max_iter=epochs, verbose=verbose))
    kept = result["models"]["mlp"]["kept_epoch"]
    mlp_hardest = result["models"]["mlp"]["hardest"][:_claims.TOP_HARD]
    y_pred = mlp.predict(Xt)
    preds = DigitGridDisplay.from_predictions(test.data, yt, y_pred, n_samples=100,
                                              random_state=seed, label_names=names)
    fig["predictions"] = _save(preds.figure_, f"{prefix}_predictions.png")
    result["grid_mistakes"] = int(preds.mistakes_.sum())

    zoom = max(1, mlp.n_iter_ // 2) if mlp.n_iter_ >= 4 else None
    curves = plot_training_curves(mlp, zoom_start=zoom)
    for panel in ("loss", "accuracy", "loss_zoom", "accuracy_zoom"):
        if curves[panel] is not None:
            line = _mark_kept(curves[panel].ax_, kept, annotate=False)
            curves[panel].ax_.get_legend().remove()
    # one legend for the four panels, below them, where it covers no curve
    curves.figure.legend(handles=curves.loss.lines_ + [line],
                         loc="outside lower center", ncols=3, fontsize="small")
    fig["mlp_curves"] = _save(curves.figure, f"{prefix}_mlp_curves.png")
    mlp_pc = PerClassLossDisplay.from_estimator(
        mlp, class_names=names, highlight=mlp_hardest, validation="highlighted")
    _mark_kept(mlp_pc.ax_, kept)
    mlp_pc.ax_.set_title(
        f"{TITLES[kind]}: MLP cross-entropy per class\n"
        f"bold: {', '.join(mlp_hardest)}, the highest at the kept epoch {kept}; "
        "dashed: their validation", fontsize="medium")
    fig["mlp_loss_per_class"] = _save(mlp_pc.figure_,
                                      f"{prefix}_mlp_loss_per_class.png")

    cm_fig, cm_ax = plt.subplots(figsize=(7.5, 6.5), layout="constrained")
    ConfusionMatrixDisplay.from_predictions(yt, y_pred, display_labels=names,
                                            ax=cm_ax, xticks_rotation=45,
                                            colorbar=False)
    cm_ax.set_title(f"{TITLES[kind]}: MLP confusion matrix (test)")
    fig["confusion"] = _save(cm_fig, f"{prefix}_confusion.png")

    # the facts the claims are judged on, from this run. Claim 1 (some grid
    # images are hard to make out) is judged by an MLP that never saw them:
    # the same settings, trained without the grid's rows
    grid_rows = np.asarray(grid.indices)
    grid_labels = y[grid_rows]
    grid_proba = None
    if kind == "digits":  # the only dataset claim 1 is about
        logger.info("%s: for claim 1, a second MLP rates the 100 grid images "
                    "it never saw", TITLES[kind])
        held_out = MLPClassifier(**mlp.get_params())
        fit_model(held_out, np.delete(X, grid_rows, axis=0), np.delete(y, grid_rows),
                  progress=f"{TITLES[kind]}, {BAR_NAMES['claim 1']}"
                  if progress else None)
        grid_proba = held_out.predict_proba(X[grid_rows])
    m = result["models"]["mlp"]
    result["facts"] = {
        "names": names,
        "ovr_loss_per_class": np.asarray(ovr.loss_curve_per_class_).tolist(),
        "mlp_loss": [float(v) for v in mlp.loss_curve_],
        "mlp_train_accuracy": [float(v) for v in mlp.accuracy_curve_],
        "mlp_val_accuracy": [float(v) for v in (mlp.validation_scores_ or [])],
        "kept_epoch": kept,
        "kept_train_accuracy": m["train_accuracy"],
        "kept_train_loss": m["train_loss"],
        "test_accuracy": m["test_accuracy"],
        "confusion": confusion_matrix(yt, y_pred,
                                      labels=np.arange(n_classes)).tolist(),
        "grid_labels": [int(v) for v in grid_labels],
        "grid_label_proba": None if grid_proba is None else [
            float(grid_proba[i, v]) for i, v in enumerate(grid_labels)],
        "grid_right": None if grid_proba is None else [
            bool(v) for v in (np.argmax(grid_proba, axis=1) == grid_labels)],
        "predictions_right": [bool(v) for v in ~np.asarray(preds.mistakes_)],
    }

    # observations, from this run and the kept models
    pairs = most_confused_pairs(yt, y_pred, labels=np.arange(n_classes), k=5,
                                symmetric=True)
    result["confused_pairs"] = [(names[int(a)], names[int(b)], int(n))
                                for a, b, n in pairs]
    result["ovr_converged_first"] = [str(c) for c in per_class.converged_first_[:3]]
    result["ovr_hardest"] = ovr_hardest
    result["mlp_hardest"] = mlp_hardest
    recall = recall_score(yt, y_pred, labels=np.arange(n_classes), average=None,
                          zero_division=0)
    result["mlp_lowest_recall"] = [(names[k], float(recall[k]))
                                   for k in np.argsort(recall, kind="stable")[:3]]
    obs = result["observations"]
    obs.append(
        f"One-vs-rest: the labels whose loss fell first are "
        f"{_join(result['ovr_converged_first'])}; the hardest, with the highest "
        f"loss at epoch {ovr_kept}, the last, are {_join(ovr_hardest)}, bold in "
        "its per-class plot.")
    obs.append(f"MLP at epoch {kept}, whose weights it keeps: the classes with "
               f"the highest training cross-entropy are {_join(mlp_hardest)}, "
               "bold in its per-class plot; the lowest test recall is "
               + ", ".join(f"{n} ({r:.3f})" for n, r in result["mlp_lowest_recall"])
               + ".")
    if result["confused_pairs"]:
        obs.append("Most confused pairs on the test set (both directions): "
                   + ", ".join(f"{a} vs {b} ({n})"
                               for a, b, n in result["confused_pairs"])
                   + ".")
    models = result["models"]
    obs.append(
        f"Test accuracy: MLP {models['mlp']['test_accuracy']:.4f} (weights of "
        f"epoch {kept} of {models['mlp']['epochs']}), one-vs-rest "
        f"{models['ovr']['test_accuracy']:.4f} after {models['ovr']['epochs']} "
        "epochs.")
    target = stopping_target(mlp)
    if target == "validation loss":  # validation_scores_ hold its negative
        obs.append(f"MLP early stopping watched the validation loss, lowest at "
                   f"epoch {kept} ({-mlp.best_validation_score_:.4f}); the model "
                   "keeps those weights, and every MLP figure on this page comes "
                   "from them.")
    elif target is not None:
        obs.append(f"MLP early stopping watched the {target}, which peaked at "
                   f"epoch {kept} ({mlp.best_validation_score_:.4f}); the model "
                   "keeps those weights, and every MLP figure on this page comes "
                   "from them.")
    return result


def _join(items):
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------- context


def run_context(*, seed, max_iter):
    """Package and library versions, seed, machine, BLAS and date of this run."""
    import platform

    import numba
    import sklearn

    from . import __version__
    from ._cores import effective_n_threads
    from ._system import machine_info

    info = machine_info()
    return {
        "skdigits": __version__, "python": platform.python_version(),
        "numpy": np.__version__, "scikit-learn": sklearn.__version__,
        "numba": numba.__version__, "seed": seed,
        "max_iter": "auto" if max_iter is None else max_iter,
        "machine": {"cpu": info["cpu"], "logical_cores": info["logical_cores"],
                    "threads": effective_n_threads(None), "blas": info["blas"],
                    "forced": info["forced"], "platform": info["platform"]},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }


# ---------------------------------------------------------------- the page

_CAPTIONS = {
    "samples": "100 random training images with their labels.",
    "ovr_loss_per_class": "Loss of each label's one-vs-rest model against the "
                          "epoch; in bold the three highest at the last epoch, "
                          "which the model keeps.",
    "predictions": "100 random test images with the MLP's predictions; "
                   "mistakes in red as \"predicted (true)\".",
    "mlp_curves": "MLP loss (training: the objective; validation: the "
                  "cross-entropy) and accuracy against the epoch; the lower row "
                  "zooms on the late epochs. The dotted line marks the epoch "
                  "whose weights the model keeps.",
    "mlp_loss_per_class": "MLP cross-entropy of each class against the epoch; "
                          "in bold the three highest at the kept epoch, which "
                          "the dotted line marks, with their validation "
                          "cross-entropy dashed.",
    "confusion": "MLP confusion matrix on the test set.",
}

_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
    "color:#222}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
    "padding:.3em .7em;text-align:right;vertical-align:top}"
    "th:first-child,td:first-child{text-align:left}td.text,th.text{text-align:left}"
    "figure{margin:1.5em 0}figcaption{color:#555}.confirmed{color:#1a7f37}"
    ".partly{color:#9a6700}.not{color:#cf222e}.unmeasured{color:#57606a}"
    "dl.context dt{font-weight:bold;float:left;clear:left;width:9em}"
    "dl.context dd{margin-left:10em}")

_VERDICT_CLASS = {_claims.CONFIRMED: "confirmed", _claims.PARTLY: "partly",
                  _claims.NOT_CONFIRMED: "not", _claims.NOT_MEASURED: "unmeasured"}


def _img_src(out_dir, name, embed):
    if not embed:
        return html.escape(name)
    with open(os.path.join(out_dir, name), "rb") as fh:
        return "data:image/png;base64," + base64.b64encode(fh.read()).decode("ascii")


#: Epochs without a better validation accuracy before the report's MLP stops
#: (scikit-learn's default, and skdigits', is 10). On the bundled samples'
#: 300 validation images, 10 stopped on noise: over seeds 0-7 the test
#: accuracy was 0.8261 (Fashion-MNIST) and 0.9334 (digits) on average, seed 0
#: of Fashion-MNIST keeping epoch 3 at 0.793, below the linear model; 20 gave
#: 0.8347 and 0.9389. On the full data the defaults run fewer epochs than
#: that, so the MLP runs them all and keeps its best.
PATIENCE = 20


def _mlp_recipe(params):
    """The MLP that ran, in words, from its parameters as ``report.json``
    keeps them (``models.mlp.params``)."""
    from .neural_network import MLPClassifier

    hidden = "-".join(str(h) for h in params["hidden_layer_sizes"])
    activation = {"relu": "ReLU", "leaky_relu": "leaky ReLU"}.get(
        params["activation"], params["activation"])
    inputs = ("inputs standardised inside the estimator" if params["standardize"]
              else "raw inputs")
    epochs = params["max_iter"]
    budget = (f"about {MLPClassifier._auto_updates} updates" if epochs == "auto"
              else f"{epochs} epochs (--max-iter)")
    return (f"784-{hidden}-10 {activation}, {inputs}, label smoothing "
            f"{params['label_smoothing']:g}, L2 penalty alpha={params['alpha']:g}, "
            f"{params['solver'].capitalize()} on a {params['learning_rate']} "
            f"schedule from {params['learning_rate_init']:g}, batch "
            f"{params['batch_size']}, {budget}")


def _render(report, out_dir, embed):
    esc = html.escape
    ctx = report["run"]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>skdigits report</title>", f"<style>{_STYLE}</style></head><body>",
        "<h1>skdigits report</h1>",
        f"<p>Seed {ctx['seed']}. Each section trains a one-vs-rest "
        "SoftmaxRegression and an MLPClassifier (10% of the training set held "
        "out for validation) and scores them on the test set. Every number, "
        "verdict and observation below comes from this run; the same seed "
        "gives the same report.</p>",
        "<p>Both models use skdigits' defaults (every parameter is listed "
        "under Run below). SoftmaxRegression: Adam on a cosine schedule from "
        "0.05, " + ("at least 15 epochs, so that each label's curve has points"
                    if ctx["max_iter"] == "auto" else
                    f"{ctx['max_iter']} epochs (--max-iter)") + ". MLPClassifier: "
        + _mlp_recipe(report["datasets"][0]["models"]["mlp"]["params"])
        + "; the epochs each model ran are in its table. "
        "The training loss curve is the objective minimised "
        "(label smoothing and L2 penalty included); the per-class and "
        "validation curves are the plain cross-entropy. The MLP stops after "
        f"{PATIENCE} epochs without a better validation accuracy (10 by "
        "default: on a sample's 300 validation images that stops on noise) "
        "and keeps the weights of its best validation epoch, which the "
        "tables use.</p>",
    ]
    parts += _render_claims(report)
    for r in report["datasets"]:
        parts.append(f"<h2>{esc(r['title'])}</h2>")
        parts.append(f"<p>Data: {esc(r['source'])}; {r['n_train']} training and "
                     f"{r['n_test']} test images.</p>")
        parts.append(
            "<table><tr><th>model</th><th>epochs</th><th>kept epoch</th>"
            "<th>early stopping on</th><th>dropout</th><th>fit (s)</th>"
            "<th>train accuracy (kept model)</th><th>test accuracy</th></tr>")
        for key, m in r["models"].items():
            seconds = report["timings"]["fit_seconds"][r["dataset"]][key]
            parts.append(
                f"<tr><td>{esc(m['model'])}</td><td>{m['epochs']}</td>"
                f"<td>{m['kept_epoch']}</td>"
                f"<td>{esc(m.get('stopped_on') or 'off')}</td>"
                f"<td>{dropout_cell(m.get('dropout'))}</td><td>{seconds:.2f}</td>"
                f"<td>{m['train_accuracy']:.4f}</td>"
                f"<td>{m['test_accuracy']:.4f}</td></tr>")
        parts.append("</table><h3>Observations</h3><ul>")
        parts += [f"<li>{esc(o)}</li>" for o in r["observations"]]
        parts.append("</ul>")
        for key, name in r["figures"].items():
            parts.append(f'<figure><img src="{_img_src(out_dir, name, embed)}" '
                         f'alt="{esc(key)}"><figcaption>'
                         f"{esc(_CAPTIONS.get(key, key))}</figcaption></figure>")
    parts += _render_context(report)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def dropout_cell(dropout):
    """The report table's dropout cell: ``"p = 0.2"`` when it was on,
    ``"off"`` for an MLP without it, ``"none (no hidden layer)"`` for a
    model without hidden layers (``None``)."""
    if dropout is None:
        return "none (no hidden layer)"
    return f"p = {dropout:g}" if dropout > 0 else "off"


def _render_claims(report):
    esc = html.escape
    parts = ["<h2>The study's claims, judged from this run</h2>"]
    if any(r["sample"] for r in report["datasets"]):
        parts.append("<p><strong>These verdicts come from the bundled sample, a "
                     "small part of the data: a small sample can flip a "
                     "verdict.</strong></p>")
    parts.append(f"<p>Verdicts: {esc(_claims.format_counts(report['claims']))}."
                 "</p>")
    parts.append('<table><tr><th>claim</th><th class="text">verdict</th>'
                 '<th class="text">evidence</th></tr>')
    for c in report["claims"]:
        parts.append(
            f"<tr><td class=\"text\">{esc(c['id'])}. {esc(c['claim'])}</td>"
            f"<td class=\"text {_VERDICT_CLASS[c['verdict']]}\">"
            f"{esc(c['verdict'])}</td><td class=\"text\">{esc(c['evidence'])}"
            "</td></tr>")
    parts.append("</table><h3>How the verdicts are reached</h3><ul>")
    parts += [f"<li>{esc(t)}</li>" for t in report["thresholds"]]
    parts.append(f"<li>Claim 3b: {esc(_claims.NAME_NOTE)}</li></ul>")
    return parts


def _render_context(report):
    esc = html.escape
    ctx, timings = report["run"], report["timings"]
    machine = ctx["machine"]
    rows = [
        ("skdigits", ctx["skdigits"]),
        ("libraries", f"Python {ctx['python']}, NumPy {ctx['numpy']}, "
                      f"scikit-learn {ctx['scikit-learn']}, Numba {ctx['numba']}"),
        ("seed", str(ctx["seed"])),
        ("epochs", str(ctx["max_iter"])),
        ("machine", f"{machine['cpu']}, {machine['logical_cores']} logical cores, "
                    f"{machine['threads']} threads; {machine['platform']}"),
        ("BLAS", ("; ".join(machine["blas"]) or "none loaded") + (
            "; forced by the environment: " + " ".join(machine["forced"])
            if machine.get("forced") else "")),
        ("date", ctx["date"]),
        ("compile", "first fit of each model in this process, on "
                    f"{WARM_UP_ROWS} rows for one epoch (Numba compile or "
                    "cache load), left out of the fit times: " + ", ".join(
                        f"{k} {v:.2f} s" for k, v in
                        timings["compile_seconds"].items())),
    ]
    parts = ["<h2>Run</h2>", '<dl class="context">']
    parts += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows]
    parts.append("</dl><h3>Data files</h3><ul>")
    for r in report["datasets"]:
        if not r["files"]:
            parts.append(f"<li>{esc(r['title'])}: the sample bundled with "
                         f"skdigits {esc(ctx['skdigits'])}</li>")
        for f in r["files"]:
            parts.append(f"<li><code>{esc(f['path'])}</code> SHA-256 "
                         f"<code>{f['sha256']}</code></li>")
    parts.append("</ul><h3>Parameters (the same for each dataset)</h3>")
    for r in report["datasets"][:1]:
        for m in r["models"].values():
            params = ", ".join(f"{k}={v!r}" for k, v in m["params"].items())
            parts.append(f"<p><strong>{esc(m['model'])}</strong>: "
                         f"<code>{esc(params)}</code></p>")
    return parts


def write_report(results, out_dir, *, seed, max_iter=None, compile_seconds=None,
                 embed=False, previous=()):
    """Judge the claims and write ``report.json`` and ``index.html`` for
    ``results``; remove the files of an earlier report (``previous``) that
    this one no longer writes. ``embed`` puts the PNGs inside the page, for
    a page that can be sent on its own. Returns ``(page_path, report)``."""
    results = [dict(r) for r in results]
    fit_seconds = {r["dataset"]: r.pop("timings") for r in results}
    facts = {r["dataset"]: r["facts"] for r in results}
    sample = any(r["sample"] for r in results)
    figures = [name for r in results for name in r["figures"].values()]
    report = {
        "generator": GENERATOR,
        "run": run_context(seed=seed, max_iter=max_iter),
        "seed": seed,
        "claims": _claims.judge(facts, sample=sample),
        "thresholds": list(_claims.THRESHOLDS),
        "name_note": _claims.NAME_NOTE,
        "datasets": results,
        "timings": {"compile_seconds": dict(compile_seconds or {}),
                    "fit_seconds": fit_seconds},
        "files": sorted(figures) + [JSON, PAGE, MARKER],
    }
    with FOLDER.write(out_dir, JSON, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, allow_nan=False)
    page = os.path.join(out_dir, PAGE)
    with FOLDER.write(out_dir, PAGE, "w", encoding="utf-8") as fh:
        fh.write(_render(report, out_dir, embed))
    remove_stale(out_dir, previous, report["files"])
    return page, report


#: The kernels the study runs (float32 models on dense images), by job
#: (see ``_warmup``), in the order the study needs them.
REPORT_JOBS = ("linear_epoch-float32-dense", "linear_forward-dense",
               "mlp_epoch-float32-dense", "mlp_forward-dense")

#: Seconds the report's compiles add to a cold run on the reference machine
#: (a 2-core Zen 5): a cold sample report took 12.5 s, a warm one 6.1 s
#: (bench_compile); after a fresh install, 14.6 s and 6.6-7.4 s.
REPORT_COMPILE_SECONDS = 7.0


def _announce_compile():
    """On a cold cache, log that the kernels compile once, and about how
    long it takes."""
    from . import _warmup

    cold = _warmup.cold_jobs(REPORT_JOBS)
    if not cold:
        return
    # the fits then say nothing more (their jobs are announced)
    _warmup.announce(cold, REPORT_COMPILE_SECONDS * (
        _warmup.estimate_seconds(cold, 1) / _warmup.estimate_seconds(REPORT_JOBS, 1)))


def _compile_forward_ahead():
    """On a cold cache, start compiling both forward passes in one background
    process (see ``_warmup``), once the data is there and checked; returns
    what ``_warmup.start`` does.

    The epochs compile in this process: compiling the MLP's epoch in another
    process while this one compiles the softmax's was slower on 2 cores
    (17.2-17.7 s against 15.3-15.8 s for a cold sample report), as the
    kernels share most of their subroutines and each process compiles them
    again. The forward passes share few with the epochs. Started here rather
    than by each model's first fit, the MLP's is ready when its warm-up epoch
    ends, instead of that epoch waiting about 0.9 s for it. (Where the cache
    index cannot be read, ``_warmup.settle`` waits for the whole process, not
    for the one kernel: both forward passes, about 5 s.)"""
    from . import _warmup

    if not _warmup.ahead_enabled():
        return []
    return _warmup.start([job for job in REPORT_JOBS if "forward" in job], 1,
                         errors=False)


def build_report(out_dir, datasets=DATASETS, *, data_home=None, sample=False,
                 download=False, seed=0, max_iter=None, progress=False, verbose=0,
                 embed=False, force=False, on_dataset=None, on_fit=None):
    """Run the study on each of ``datasets`` and write the report into
    ``out_dir`` (created if needed; see :func:`prepare_folder` for a folder
    that holds files). ``on_dataset(result)`` is called after each dataset,
    ``on_fit(kind, summary)`` after each fit. On a cold cache it first logs
    (INFO, which the CLI shows) that the kernels compile, once, and about how
    long it takes. Returns ``(page_path, report)``."""
    planned = {PAGE, JSON} | {f"{kind}_{figure}.png" for kind in datasets
                               for figure in FIGURES}
    with FOLDER.claim(out_dir, force=force, planned=planned) as previous:
        _announce_compile()
        results, warmed = [], {}
        for kind in datasets:
            result = study(kind, out_dir, data_home=data_home, sample=sample,
                           download=download, seed=seed, max_iter=max_iter,
                           progress=progress, verbose=verbose, on_fit=on_fit,
                           warmed=warmed)
            results.append(result)
            if on_dataset is not None:
                on_dataset(result)
        return write_report(results, out_dir, seed=seed, max_iter=max_iter,
                            compile_seconds=warmed, embed=embed, previous=previous)
