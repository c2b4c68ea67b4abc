"""The study report behind ``skdigits report``: train the one-vs-rest softmax
model and the MLP on each dataset, draw every plot of the study as PNG, and
write one HTML page (no external files besides the PNGs beside it) with the
figures and the observations computed from this run.

Library code: it logs through :mod:`logging` and returns what it measured; the
command line prints.
"""

import html
import json
import logging
import os
import time
import warnings

import numpy as np

from ._fileio import atomic_write

logger = logging.getLogger(__name__)

DATASETS = ("digits", "fashion")
TITLES = {"digits": "MNIST digits", "fashion": "Fashion-MNIST"}


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
            return train, test, f"full dataset ({train.get('source', 'files')})"
        except DataNotFoundError:
            if data_home is not None:
                raise  # the user named a folder: do not hide that it is wrong
            logger.info("%s: full files not found, using the bundled sample", kind)
            source = "bundled sample (the full files were not found)"
    else:
        source = "bundled sample"
    train = load_mnist(kind, "train", sample=True)
    test = load_mnist(kind, "test", sample=True)
    return train, test, source


def _save(fig, path):
    with atomic_write(path) as fh:
        fig.savefig(fh, dpi=90, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return os.path.basename(path)


def _names(values, target_names):
    return [str(target_names[int(v)]) for v in values]


def fit_model(model, X, y):
    """``model.fit(X, y)``; returns the seconds it took.

    A Ctrl-C that the estimator absorbed (it keeps the last finished epoch and
    warns) is raised again as ``KeyboardInterrupt``: a command the user
    interrupted must stop, not go on with a truncated model.
    ConvergenceWarning is dropped (a fixed epoch budget is the point).
    """
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tic = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - tic
    for w in caught:
        if "interrupted by the user" in str(w.message):
            raise KeyboardInterrupt
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn(w.message, w.category, stacklevel=2)
    return seconds


def study(kind, out_dir, *, data_home=None, sample=False, download=False, seed=0,
          max_iter=None, progress=False):
    """Run the study on one dataset, writing its PNGs into ``out_dir``.

    Returns a dict of everything the page shows: data source and sizes, one
    entry per model (epochs, fit time, accuracies), the observations and the
    PNG file names.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg", force=True)
    from sklearn.metrics import ConfusionMatrixDisplay, recall_score

    from . import MLPClassifier, SoftmaxRegression
    from .metrics import most_confused_pairs
    from .plotting import DigitGridDisplay, PerClassLossDisplay, plot_training_curves

    train, test, source = load_study_data(kind, data_home=data_home, sample=sample,
                                          download=download)
    names = list(train.target_names)
    X = train.data.astype(np.float32) / 255.0
    Xt = test.data.astype(np.float32) / 255.0
    y, yt = train.target, test.target
    verbose = 2 if progress else 0
    epochs = "auto" if max_iter is None else max_iter
    result = {"dataset": kind, "title": TITLES[kind], "source": source,
              "n_train": int(len(X)), "n_test": int(len(Xt)), "figures": {},
              "models": {}, "observations": []}
    fig = result["figures"]
    prefix = os.path.join(out_dir, kind)

    # 1. a grid of 100 random training samples with their labels
    grid = DigitGridDisplay.from_dataset(train.data, y, n_samples=100,
                                         random_state=seed, label_names=names)
    fig["samples"] = _save(grid.figure_, f"{prefix}_samples.png")

    # 2. one-vs-rest logistic regression: loss of each label's model
    # at least 15 epochs (about 1.5 s on full MNIST), so each curve has points
    # to show where the default's 2 epochs would give only two
    ovr = SoftmaxRegression(multi_class="ovr", random_state=seed,
                            max_iter=epochs if max_iter is not None else
                            max(15, SoftmaxRegression()._resolve_max_iter(len(X))),
                            verbose=verbose)
    seconds = fit_model(ovr, X, y)
    result["models"]["ovr"] = _model_summary(
        "SoftmaxRegression(multi_class='ovr')", ovr, seconds, Xt, yt)
    per_class = PerClassLossDisplay.from_estimator(ovr, class_names=names, highlight=3)
    per_class.ax_.set_title(f"{TITLES[kind]}: loss of each label's one-vs-rest model")
    fig["ovr_loss_per_class"] = _save(per_class.figure_,
                                      f"{prefix}_ovr_loss_per_class.png")

    # 3-7. the MLP, with a validation split for the validation curves
    mlp = MLPClassifier(early_stopping=True, random_state=seed, max_iter=epochs,
                        verbose=verbose)
    seconds = fit_model(mlp, X, y)
    result["models"]["mlp"] = _model_summary(
        "MLPClassifier(early_stopping=True)", mlp, seconds, Xt, yt)
    y_pred = mlp.predict(Xt)
    preds = DigitGridDisplay.from_predictions(test.data, yt, y_pred, n_samples=100,
                                              random_state=seed, label_names=names)
    fig["predictions"] = _save(preds.figure_, f"{prefix}_predictions.png")
    result["grid_mistakes"] = int(preds.mistakes_.sum())

    zoom = max(1, mlp.n_iter_ // 2) if mlp.n_iter_ >= 4 else None
    curves = plot_training_curves(mlp, zoom_start=zoom)
    fig["mlp_curves"] = _save(curves.figure, f"{prefix}_mlp_curves.png")
    mlp_pc = PerClassLossDisplay.from_estimator(mlp, class_names=names, highlight=3,
                                                validation=True)
    mlp_pc.ax_.set_title(
        f"{TITLES[kind]}: MLP cross-entropy per class (dashed: validation)")
    fig["mlp_loss_per_class"] = _save(mlp_pc.figure_,
                                      f"{prefix}_mlp_loss_per_class.png")

    import matplotlib.pyplot as plt

    cm_fig, cm_ax = plt.subplots(figsize=(7.5, 6.5), layout="constrained")
    ConfusionMatrixDisplay.from_predictions(yt, y_pred, display_labels=names,
                                            ax=cm_ax, xticks_rotation=45,
                                            colorbar=False)
    cm_ax.set_title(f"{TITLES[kind]}: MLP confusion matrix (test)")
    fig["confusion"] = _save(cm_fig, f"{prefix}_confusion.png")

    # observations, from this run
    pairs = most_confused_pairs(yt, y_pred, labels=np.arange(len(names)), k=5,
                                symmetric=True)
    result["confused_pairs"] = [(names[int(a)], names[int(b)], int(n))
                                for a, b, n in pairs]
    result["ovr_converged_first"] = [str(c) for c in per_class.converged_first_[:3]]
    result["ovr_hardest"] = [str(c) for c in per_class.hardest_[:3]]
    result["mlp_hardest"] = [str(c) for c in mlp_pc.hardest_[:3]]
    recall = recall_score(yt, y_pred, labels=np.arange(len(names)), average=None,
                          zero_division=0)
    result["mlp_lowest_recall"] = [(names[k], float(recall[k]))
                                   for k in np.argsort(recall)[:3]]
    obs = result["observations"]
    obs.append(
        f"One-vs-rest: the labels whose loss fell first are "
        f"{_join(result['ovr_converged_first'])}; the hardest at the end "
        f"(highest final loss) are {_join(result['ovr_hardest'])}.")
    obs.append(f"MLP: the classes with the highest final training loss are "
               f"{_join(result['mlp_hardest'])}; the lowest test recall is "
               + ", ".join(f"{n} ({r:.3f})" for n, r in result["mlp_lowest_recall"])
               + ".")
    if result["confused_pairs"]:
        obs.append("Most confused pairs on the test set (both directions): "
                   + ", ".join(f"{a} vs {b} ({n})" for a, b, n in result["confused_pairs"])
                   + ".")
    m = result["models"]
    obs.append(
        f"Test accuracy: MLP {m['mlp']['test_accuracy']:.4f} after "
        f"{m['mlp']['epochs']} epochs, one-vs-rest "
        f"{m['ovr']['test_accuracy']:.4f} after {m['ovr']['epochs']} epochs.")
    if mlp.validation_scores_:
        best = int(np.argmax(mlp.validation_scores_)) + 1
        obs.append(f"MLP validation accuracy peaked at epoch {best} "
                   f"({mlp.best_validation_score_:.4f}); the model keeps those "
                   "weights.")
    return result


def _join(items):
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _model_summary(label, model, seconds, Xt, yt):
    return {"model": label, "epochs": int(model.n_iter_), "fit_seconds": float(seconds),
            "train_accuracy": float(model.accuracy_curve_[-1]),
            "test_accuracy": float(model.score(Xt, yt)),
            "final_loss": float(model.loss_curve_[-1])}


def write_report(results, out_dir, *, seed):
    """Write ``index.html`` and ``report.json`` for ``results``; returns the
    path of the page."""
    page = os.path.join(out_dir, "index.html")
    with atomic_write(os.path.join(out_dir, "report.json"), "w",
                      encoding="utf-8") as fh:
        json.dump({"seed": seed, "datasets": results}, fh, indent=2)
    esc = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>skdigits report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;"
        "padding:0 1em;color:#222}img{max-width:100%;border:1px solid #ddd;"
        "margin:.5em 0}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}"
        "th:first-child,td:first-child{text-align:left}"
        "figure{margin:1.5em 0}figcaption{color:#555}</style></head><body>",
        "<h1>skdigits report</h1>",
        f"<p>Seed {seed}. Each section trains a one-vs-rest SoftmaxRegression "
        "and an MLPClassifier (10% of the training set held out for "
        "validation) and scores them on the test set. Every number and "
        "observation below comes from this run.</p>",
        "<p>Both models use skdigits' defaults. SoftmaxRegression: Adam on "
        "a cosine schedule from 0.05 (here at least 15 epochs, so that each "
        "label's curve has points). MLPClassifier: 784-256-10 "
        "ReLU, inputs standardised inside the estimator, label smoothing "
        "0.1, Adam on a cosine schedule from 4e-3, batch 128, about 4200 "
        "updates (9 epochs on full MNIST). The training loss curve is the "
        "objective minimised (label smoothing and L2 penalty included); the "
        "per-class and validation curves are the plain cross-entropy.</p>",
    ]
    captions = {
        "samples": "100 random training images with their labels.",
        "ovr_loss_per_class": "Loss of each label's one-vs-rest model against "
                              "the epoch (the three hardest in bold).",
        "predictions": "100 random test images with the MLP's predictions; "
                       "mistakes in red as \"predicted (true)\".",
        "mlp_curves": "MLP loss (training: the objective; validation: the "
                      "cross-entropy) and accuracy against the epoch; the lower "
                      "row zooms on the late epochs.",
        "mlp_loss_per_class": "MLP cross-entropy of each class against the "
                              "epoch (dashed: validation).",
        "confusion": "MLP confusion matrix on the test set.",
    }
    for r in results:
        parts.append(f"<h2>{esc(r['title'])}</h2>")
        parts.append(f"<p>Data: {esc(r['source'])}; {r['n_train']} training and "
                     f"{r['n_test']} test images.</p>")
        parts.append("<table><tr><th>model</th><th>epochs</th><th>fit (s)</th>"
                     "<th>train accuracy (last epoch)</th><th>test accuracy</th></tr>")
        for m in r["models"].values():
            parts.append(
                f"<tr><td>{esc(m['model'])}</td><td>{m['epochs']}</td>"
                f"<td>{m['fit_seconds']:.2f}</td><td>{m['train_accuracy']:.4f}</td>"
                f"<td>{m['test_accuracy']:.4f}</td></tr>")
        parts.append("</table><h3>Observations</h3><ul>")
        parts += [f"<li>{esc(o)}</li>" for o in r["observations"]]
        parts.append("</ul>")
        for key, name in r["figures"].items():
            parts.append(f'<figure><img src="{esc(name)}" alt="{esc(key)}">'
                         f"<figcaption>{esc(captions.get(key, key))}</figcaption>"
                         "</figure>")
    parts.append("<p>Fit times include the Numba compile or cache load of the "
                 "first fit in the process.</p></body></html>")
    with atomic_write(page, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts) + "\n")
    return page


def build_report(out_dir, datasets=DATASETS, *, data_home=None, sample=False,
                 download=False, seed=0, max_iter=None, progress=False,
                 on_dataset=None):
    """Run the study on each of ``datasets`` and write the report into
    ``out_dir`` (created if needed). ``on_dataset(result)`` is called after
    each dataset. Returns ``(page_path, results)``."""
    os.makedirs(out_dir, exist_ok=True)
    results = []
    for kind in datasets:
        result = study(kind, out_dir, data_home=data_home, sample=sample,
                       download=download, seed=seed, max_iter=max_iter,
                       progress=progress)
        results.append(result)
        if on_dataset is not None:
            on_dataset(result)
    return write_report(results, out_dir, seed=seed), results
