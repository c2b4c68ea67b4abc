"""skdigits.plotting: the displays, tested through the artists they build
(Agg backend, the ``pyplot`` fixture)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler

from skdigits import MLPClassifier, SoftmaxRegression
from skdigits.datasets import load_mnist
from skdigits.plotting import (
    DigitGridDisplay,
    PerClassLossDisplay,
    TrainingCurveDisplay,
    plot_training_curves,
)

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def digits():
    return load_mnist("digits", sample=True)


@pytest.fixture(scope="module")
def fashion():
    return load_mnist("fashion", sample=True)


@pytest.fixture(scope="module")
def X_digits(digits):
    return digits.data[:1000] / 255.0


@pytest.fixture(scope="module")
def ovr(digits, X_digits):
    return SoftmaxRegression(multi_class="ovr", max_iter=8, random_state=0).fit(
        X_digits, digits.target[:1000])


@pytest.fixture(scope="module")
def fashion_model(fashion):
    return SoftmaxRegression(max_iter=6, random_state=0).fit(
        fashion.data[:1000] / 255.0, fashion.target[:1000])


@pytest.fixture(scope="module")
def mlp(digits, X_digits):
    return MLPClassifier(hidden_layer_sizes=(16,), max_iter=8, early_stopping=True,
                         random_state=0).fit(X_digits, digits.target[:1000])


@pytest.fixture(scope="module")
def wrapped(digits):
    """A fitted pipeline, and a grid and a randomized search over it."""
    X, y = digits.data[:600], digits.target[:600]
    pipe = make_pipeline(MinMaxScaler(),
                         SoftmaxRegression(max_iter=3, random_state=0)).fit(X, y)
    grid = {"softmaxregression__max_iter": [2, 4]}
    searches = [GridSearchCV(pipe, grid, cv=2).fit(X, y),
                RandomizedSearchCV(pipe, grid, n_iter=2, cv=2,
                                   random_state=0).fit(X, y)]
    return X, y, pipe, searches


def _bold(lines):
    return [line for line in lines if line.get_linewidth() > 2]


# ------------------------------------------------------------------ package
def test_importing_skdigits_does_not_import_matplotlib():
    code = ("import sys, skdigits, skdigits.plotting, skdigits.metrics; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_constructors_do_no_work(pyplot):
    for disp in (DigitGridDisplay(np.zeros((2, 3, 3)), [0, 1]),
                 PerClassLossDisplay(np.ones((3, 2)), class_names=["a", "b"]),
                 TrainingCurveDisplay([1.0, 0.5])):
        assert not [k for k in vars(disp) if k.endswith("_")]
    assert not pyplot.get_fignums()


# ------------------------------------------------------------------ grid
def test_grid_from_dataset_100_labels(pyplot, fashion):
    disp = DigitGridDisplay.from_dataset(
        fashion.data, fashion.target, label_names=fashion.target_names,
        random_state=0)
    # one Axes holds the whole grid (100 axes took seconds to make and draw)
    assert disp.figure_.axes == [disp.ax_]
    assert not disp.ax_.axison
    assert len(disp.images_) == len(disp.titles_) == 100
    assert len(disp.indices) == len(set(disp.indices)) == 100
    titles = [t.get_text() for t in disp.titles_]
    assert titles == [FASHION_NAMES[fashion.target[i]] for i in disp.indices]
    assert disp.frames_ == []
    assert disp.mistakes_ is None
    assert {t.get_color() for t in disp.titles_} == {"black"}
    np.testing.assert_array_equal(disp.images_[7].get_array(),
                                  fashion.images[disp.indices[7]])
    assert pyplot.get_fignums() == [disp.figure_.number]


def _cells(disp):
    """(row, column) of each image, from the images' places in the Axes."""
    left = sorted({im.get_extent()[0] for im in disp.images_})
    top = sorted({im.get_extent()[3] for im in disp.images_})
    return [(top.index(im.get_extent()[3]), left.index(im.get_extent()[0]))
            for im in disp.images_]


@pytest.mark.parametrize("n_images, n_cols, shape", [
    (100, None, (10, 10)), (7, 3, (3, 3)), (12, None, (3, 4)), (5, 5, (1, 5))])
def test_grid_images_fill_rows_in_order_and_titles_clear_them(
        pyplot, fashion, n_images, n_cols, shape):
    # row-major order, titles above their own image, no two titles touching
    disp = DigitGridDisplay.from_predictions(
        fashion.data, fashion.target, (fashion.target + 1) % 10, n_cols=n_cols,
        n_samples=n_images, label_names=fashion.target_names, random_state=0)
    rows, cols = shape
    assert _cells(disp) == [divmod(i, cols) for i in range(n_images)]
    assert max(r for r, _ in _cells(disp)) == rows - 1
    renderer = disp.figure_.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in disp.titles_]
    for box, image, title in zip(boxes, disp.images_, disp.titles_):
        picture = image.get_window_extent(renderer)
        assert box.y0 >= picture.y1 - 1, title.get_text()  # above its image
        assert picture.x0 - 2 <= (box.x0 + box.x1) / 2 <= picture.x1 + 2
    for i, a in enumerate(boxes):  # long two-line names included
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    figure_box = disp.figure_.bbox
    assert all(figure_box.contains(b.x0, b.y0) and figure_box.contains(b.x1, b.y1)
               for b in boxes)


def test_grid_sample_is_seeded(pyplot, digits):
    kw = dict(n_samples=8)
    a = DigitGridDisplay.from_dataset(digits.data, digits.target, random_state=3, **kw)
    b = DigitGridDisplay.from_dataset(digits.data, digits.target, random_state=3, **kw)
    c = DigitGridDisplay.from_dataset(digits.data, digits.target, random_state=4, **kw)
    d = DigitGridDisplay.from_predictions(digits.data, digits.target, digits.target,
                                          random_state=3, **kw)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.indices, d.indices)
    assert not np.array_equal(a.indices, c.indices)


def test_grid_predictions_mark_mistakes_only(pyplot, digits):
    X, y = digits.data[:36], digits.target[:36]
    y_pred = y.copy()
    wrong = np.array([3, 17, 22, 35])
    y_pred[wrong] = (y[wrong] + 1) % 10
    disp = DigitGridDisplay.from_predictions(X, y, y_pred, n_samples=None,
                                             mistake_color="red")
    np.testing.assert_array_equal(disp.indices, np.arange(36))
    from matplotlib.colors import same_color

    assert _cells(disp) == [divmod(i, 6) for i in range(36)]
    np.testing.assert_array_equal(np.flatnonzero(disp.mistakes_), wrong)
    assert len(disp.frames_) == len(wrong)
    for frame, i in zip(disp.frames_, wrong):  # a red frame around each mistake
        left, right, bottom, top = disp.images_[i].get_extent()
        assert frame.get_xy() == (left, top)
        assert (frame.get_width(), frame.get_height()) == (right - left, bottom - top)
        assert same_color(frame.get_edgecolor(), "red")
        assert not frame.get_fill()
    for i, text in enumerate(disp.titles_):
        if i in wrong:
            assert text.get_text() == f"{y_pred[i]} ({y[i]})"
            assert text.get_color() == "red"
        else:
            assert text.get_text() == str(y_pred[i])
            assert text.get_color() == "black"


def test_grid_from_estimator_titles_are_predictions(pyplot, fashion, fashion_model):
    test = load_mnist("fashion", subset="test", sample=True)
    X = test.data / 255.0
    disp = DigitGridDisplay.from_estimator(
        fashion_model, X, test.target, label_names=test.target_names,
        random_state=0, mistake_color="tab:red")
    y_pred = fashion_model.predict(X)[disp.indices]
    y_true = test.target[disp.indices]
    assert len(disp.titles_) == 100
    np.testing.assert_array_equal(disp.mistakes_, y_pred != y_true)
    assert disp.mistakes_.any() and not disp.mistakes_.all()
    for text, p, t in zip(disp.titles_, y_pred, y_true):
        if p == t:
            assert text.get_text() == FASHION_NAMES[p]
            assert text.get_color() == "black"
        else:  # long names: "pred\n(true)"
            assert text.get_text() == f"{FASHION_NAMES[p]}\n({FASHION_NAMES[t]})"
            assert text.get_color() == "tab:red"


def test_grid_pipeline_and_search(pyplot, wrapped):
    X, y, pipe, (search, _) = wrapped
    disp = DigitGridDisplay.from_estimator(pipe, X, y, n_samples=16, random_state=0)
    assert [t.get_text().split(" ")[0] for t in disp.titles_] == [
        str(p) for p in pipe.predict(X)[disp.indices]]
    disp = DigitGridDisplay.from_estimator(search, X, y, n_samples=16,
                                           random_state=0)
    assert _cells(disp) == [divmod(i, 4) for i in range(16)]
    assert [t.get_text().split(" ")[0] for t in disp.titles_] == [
        str(p) for p in search.predict(X)[disp.indices]]


def test_grid_string_classes_used_directly(pyplot, fashion):
    names = np.asarray(FASHION_NAMES)
    X, y = fashion.data[:500] / 255.0, names[fashion.target[:500]]
    clf = SoftmaxRegression(max_iter=3, random_state=0).fit(X, y)
    disp = DigitGridDisplay.from_estimator(clf, X, y, n_samples=9, random_state=0,
                                           label_names=names)
    pred = clf.predict(X)[disp.indices]
    # a mistake reads "predicted (true)" or "predicted\n(true)"
    assert [t.get_text().split("\n")[0].split(" (")[0] for t in disp.titles_] == \
        list(pred)


def test_grid_label_names_dict_and_errors(pyplot):
    images = np.zeros((3, 4, 4))
    disp = DigitGridDisplay(images, [0, 1, 2],
                            label_names={0: "zero", 1: "one"}).plot()
    assert [t.get_text() for t in disp.titles_] == ["zero", "one", "2"]
    with pytest.raises(ValueError, match="no name"):
        DigitGridDisplay(images, [0, 1, 5], label_names=["a", "b", "c"]).plot()


@pytest.mark.parametrize("kwargs,name", [
    ({"n_cols": 0}, "n_cols"), ({"n_cols": -3}, "n_cols"), ({"n_cols": 2.5}, "n_cols"),
    ({"n_samples": 2.5}, "n_samples"), ({"n_samples": True}, "n_samples"),
    ({"n_samples": 0}, "n_samples")])
def test_grid_counts_that_are_no_positive_integers_are_named(pyplot, kwargs, name):
    """n_cols=0 raised a bare ZeroDivisionError, n_cols=-3 matplotlib's
    "figure size must be positive", n_samples=2.5 NumPy's "expected a
    sequence of integers"."""
    X = np.zeros((6, 784))
    with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
        DigitGridDisplay.from_dataset(X, np.arange(6), **{"n_samples": 4, **kwargs})


def test_grid_uses_given_axes(pyplot, digits):
    fig, axes = pyplot.subplots(1, 2)
    disp = DigitGridDisplay.from_dataset(digits.data, digits.target, n_samples=5,
                                         random_state=0, ax=axes[1])
    assert pyplot.get_fignums() == [fig.number]
    assert disp.figure_ is fig and disp.ax_ is axes[1]
    assert len(fig.axes) == 2 and axes[0].axison and not axes[1].axison
    assert all(im.axes is axes[1] for im in disp.images_)
    assert [t.get_text() for t in axes[1].texts] == [
        str(digits.target[i]) for i in disp.indices]
    np.testing.assert_array_equal(disp.images_[2].get_array(),
                                  digits.images[disp.indices[2]])


def test_grid_in_given_figure(pyplot, digits):
    fig = pyplot.figure()
    left, right = fig.subfigures(1, 2)
    disp = DigitGridDisplay.from_dataset(digits.data, digits.target, n_samples=12,
                                         random_state=0, figure=right)
    assert pyplot.get_fignums() == [fig.number]
    assert disp.figure_ is right and right.axes == [disp.ax_]
    assert len(fig.axes) == 1 and _cells(disp) == [divmod(i, 4) for i in range(12)]


def test_grid_layout_options(pyplot, digits):
    disp = DigitGridDisplay.from_dataset(digits.data[:7], digits.target[:7],
                                         n_cols=3)
    assert _cells(disp) == [divmod(i, 3) for i in range(7)]
    np.testing.assert_array_equal(disp.indices, np.arange(7))
    disp = DigitGridDisplay.from_dataset(digits.images[:4], digits.target[:4])
    assert _cells(disp) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_grid_errors(pyplot, digits):
    with pytest.raises(ValueError, match="image_shape"):
        DigitGridDisplay.from_dataset(digits.data, digits.target, n_samples=4,
                                      image_shape=(20, 20))
    with pytest.raises(ValueError, match="ax must be one matplotlib Axes"):
        _, axes = pyplot.subplots(1, 2)
        DigitGridDisplay.from_dataset(digits.data, digits.target, n_samples=4,
                                      ax=axes)
    with pytest.raises(ValueError, match="not both"):
        DigitGridDisplay.from_dataset(digits.data, digits.target, n_samples=2,
                                      ax=axes, figure=pyplot.figure())
    with pytest.raises(ValueError):
        DigitGridDisplay.from_dataset(digits.data, digits.target[:10])
    with pytest.raises(NotFittedError):
        DigitGridDisplay.from_estimator(SoftmaxRegression(), digits.data,
                                        digits.target)


# ------------------------------------------------------------------ per class
def test_per_class_one_line_per_class_named(pyplot, fashion, fashion_model):
    disp = PerClassLossDisplay.from_estimator(fashion_model,
                                              class_names=fashion.target_names)
    curves = fashion_model.loss_curve_per_class_
    assert len(disp.lines_) == 10 == len(disp.ax_.get_lines())
    assert [line.get_label() for line in disp.lines_] == FASHION_NAMES
    assert [t.get_text() for t in disp.legend_.get_texts()] == FASHION_NAMES
    assert disp.ax_.get_legend() is disp.legend_
    for j, line in enumerate(disp.lines_):
        np.testing.assert_array_equal(line.get_xdata(),
                                      np.arange(1, fashion_model.n_iter_ + 1))
        np.testing.assert_allclose(line.get_ydata(), curves[:, j])
    assert disp.ax_.get_yscale() == "log"
    assert disp.figure_ is disp.ax_.figure
    assert disp.hardest_ == [FASHION_NAMES[j] for j in np.argsort(-curves[-1],
                                                                  kind="stable")]
    assert disp.validation_lines_ is None


def test_per_class_default_names_are_classes(pyplot, ovr):
    disp = PerClassLossDisplay.from_estimator(ovr)
    assert [line.get_label() for line in disp.lines_] == [str(c) for c in range(10)]


@pytest.mark.parametrize("k", [1, 3, 10])
def test_per_class_highlight_k(pyplot, ovr, k):
    disp = PerClassLossDisplay.from_estimator(ovr, highlight=k)
    bold = _bold(disp.lines_)
    assert len(bold) == k
    assert [line.get_label() for line in bold] == sorted(
        disp.hardest_[:k], key=lambda name: int(name))
    assert disp.highlighted_ == disp.hardest_[:k]
    final = ovr.loss_curve_per_class_[-1]
    assert disp.hardest_[0] == str(int(np.argmax(final)))
    faded = [line for line in disp.lines_ if line not in bold]
    assert all(line.get_alpha() < 1 for line in faded)


def test_per_class_highlight_names_and_none(pyplot, ovr):
    disp = PerClassLossDisplay.from_estimator(ovr, highlight=["0", "1"])
    assert [line.get_label() for line in _bold(disp.lines_)] == ["0", "1"]
    disp = PerClassLossDisplay.from_estimator(ovr)
    assert not _bold(disp.lines_) and disp.highlighted_ == []
    with pytest.raises(ValueError, match="unknown classes"):
        PerClassLossDisplay.from_estimator(ovr, highlight=["zero"])
    with pytest.raises(ValueError, match="highlight"):
        PerClassLossDisplay.from_estimator(ovr, highlight=11)


@pytest.mark.parametrize("start", [4, -3])
def test_per_class_start_zooms(pyplot, ovr, start):
    n = ovr.n_iter_
    first = start if start > 0 else n + start + 1
    disp = PerClassLossDisplay.from_estimator(ovr, start=start)
    assert disp.ax_.get_xlim() == (first, n)
    window = ovr.loss_curve_per_class_[first - 1:]
    lo, hi = disp.ax_.get_ylim()
    assert lo < window.min() and hi > window.max()
    # the margin is small (5% of the log range each side), not the full range
    ratio = window.max() / window.min()
    np.testing.assert_allclose([lo, hi], [window.min() / ratio ** 0.05,
                                          window.max() * ratio ** 0.05])
    assert hi < ovr.loss_curve_per_class_.max()
    # the lines keep every epoch; only the view is zoomed
    assert len(disp.lines_[0].get_xdata()) == n


@pytest.mark.parametrize("start", [0, 99, -99, 1.5])
def test_per_class_bad_start(pyplot, ovr, start):
    with pytest.raises(ValueError, match="start"):
        PerClassLossDisplay.from_estimator(ovr, start=start)


def test_per_class_validation(pyplot, mlp, ovr):
    disp = PerClassLossDisplay.from_estimator(mlp, validation=True)
    assert len(disp.lines_) == len(disp.validation_lines_) == 10
    for j, (line, vline) in enumerate(zip(disp.lines_, disp.validation_lines_)):
        assert vline.get_linestyle() == "--"
        assert vline.get_color() == line.get_color()
        np.testing.assert_allclose(vline.get_ydata(),
                                   mlp.validation_loss_curve_per_class_[:, j])
    # the legend names the classes only
    assert [t.get_text() for t in disp.legend_.get_texts()] == [
        str(c) for c in range(10)]
    with pytest.raises(ValueError, match="early_stopping"):
        PerClassLossDisplay.from_estimator(ovr, validation=True)


def test_per_class_legend_covers_no_curve_in_given_axes(pyplot, mlp):
    """In axes of the caller's figure (the grid-search example's two panels)
    the legend sat inside and covered the bold lines."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4), layout="constrained")
    for ax, start in zip(axes, (1, -4)):
        PerClassLossDisplay.from_estimator(mlp, highlight=3, ax=ax, start=start)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        box = ax.get_legend().get_window_extent(renderer)
        for other in axes:  # neither its own panel nor the neighbour's
            assert not box.overlaps(other.get_window_extent(renderer))
        assert fig.bbox.contains(box.x1 - 1, box.y0 + 1)  # not cut off


def test_per_class_validation_of_the_highlighted_only(pyplot, mlp):
    """Ten dashed lines over ten solid ones tangle: ``"highlighted"`` draws
    the validation curves of the bold classes only."""
    disp = PerClassLossDisplay.from_estimator(mlp, highlight=3,
                                              validation="highlighted")
    assert len(disp.validation_lines_) == 3
    labels = [line.get_label() for line in disp.lines_]
    cols = sorted(labels.index(name) for name in disp.highlighted_)
    for j, vline in zip(cols, disp.validation_lines_):
        assert vline.get_color() == disp.lines_[j].get_color()
        np.testing.assert_allclose(vline.get_ydata(),
                                   mlp.validation_loss_curve_per_class_[:, j])
    # the y-range fits what is drawn, not the hidden curves
    hidden = np.delete(mlp.validation_loss_curve_per_class_, cols, axis=1)
    drawn = np.concatenate([np.ravel(ln.get_ydata()) for ln in disp.ax_.get_lines()])
    if hidden.max() > drawn.max():
        assert disp.ax_.get_ylim()[1] < hidden.max()
    with pytest.raises(ValueError, match="'highlighted'"):
        PerClassLossDisplay.from_estimator(mlp, validation="all")


def test_per_class_convergence_ranking(pyplot):
    # class "fast" gets below 0.2 at epoch 2, "slow" at epoch 4, "never" never
    curves = np.array([[1.0, 1.0, 1.0],
                       [0.1, 0.8, 0.9],
                       [0.05, 0.5, 0.8],
                       [0.04, 0.15, 0.7]])
    disp = PerClassLossDisplay(curves, class_names=["fast", "slow", "never"]).plot(
        convergence_threshold=0.2)
    assert [line.get_label() for line in disp.lines_] == ["fast", "slow", "never"]
    np.testing.assert_array_equal(disp.convergence_epoch_, [2, 4, np.inf])
    assert disp.converged_first_ == ["fast", "slow", "never"]
    assert disp.hardest_ == ["never", "slow", "fast"]
    # default threshold: the mean of the final losses
    disp = PerClassLossDisplay(curves, class_names=["a", "b", "c"]).plot()
    assert disp.convergence_threshold_ == pytest.approx(np.mean([0.04, 0.15, 0.7]))
    np.testing.assert_array_equal(disp.convergence_epoch_, [2, 4, np.inf])
    assert disp.converged_first_ == ["a", "b", "c"]


def test_per_class_converged_first_on_digits(pyplot, ovr):
    disp = PerClassLossDisplay.from_estimator(ovr)
    epochs = disp.convergence_epoch_
    order = [int(c) for c in disp.converged_first_]
    assert list(epochs[order]) == sorted(epochs)
    # the easy digits converge before the hard ones
    assert set(disp.converged_first_[:3]) & {"0", "1"}
    assert set(disp.hardest_[:3]) & {"8", "9"}


def test_per_class_class_names_mapping(pyplot, digits, fashion):
    keep = np.isin(fashion.target, [3, 6, 8])
    clf = SoftmaxRegression(max_iter=3, random_state=0).fit(
        fashion.data[keep] / 255.0, fashion.target[keep])
    # indexed by class value
    disp = PerClassLossDisplay.from_estimator(clf, class_names=fashion.target_names)
    assert [line.get_label() for line in disp.lines_] == ["Dress", "Shirt", "Bag"]
    # one per class, and a dict
    disp = PerClassLossDisplay.from_estimator(clf, class_names=["d", "s", "b"])
    assert [line.get_label() for line in disp.lines_] == ["d", "s", "b"]
    disp = PerClassLossDisplay.from_estimator(clf, class_names={6: "shirt"})
    assert [line.get_label() for line in disp.lines_] == ["3", "shirt", "8"]
    with pytest.raises(ValueError, match="class_names"):
        PerClassLossDisplay.from_estimator(clf, class_names=["a", "b"])


def test_per_class_string_classes(pyplot, fashion):
    names = np.asarray(FASHION_NAMES)
    clf = SoftmaxRegression(max_iter=3, random_state=0).fit(
        fashion.data[:500] / 255.0, names[fashion.target[:500]])
    disp = PerClassLossDisplay.from_estimator(clf)
    assert [line.get_label() for line in disp.lines_] == list(clf.classes_)


def test_per_class_uses_given_ax(pyplot, ovr):
    fig, (ax1, ax2) = pyplot.subplots(1, 2)
    disp = PerClassLossDisplay.from_estimator(ovr, ax=ax2, log_scale=False)
    assert pyplot.get_fignums() == [fig.number]
    assert disp.ax_ is ax2 and disp.figure_ is fig
    assert len(ax2.get_lines()) == 10 and not ax1.get_lines()
    assert ax2.get_yscale() == "linear"


# ------------------------------------------------------------------ unwrapping
@pytest.mark.parametrize("display", [PerClassLossDisplay, TrainingCurveDisplay])
def test_unwraps_pipeline_and_searches(pyplot, wrapped, display):
    X, y, pipe, searches = wrapped
    disp = display.from_estimator(pipe)
    np.testing.assert_allclose(
        disp.lines_[0].get_ydata(),
        pipe[-1].loss_curve_per_class_[:, 0] if display is PerClassLossDisplay
        else pipe[-1].loss_curve_)

    for search in searches:
        best = search.best_estimator_[-1]
        disp = display.from_estimator(search)
        assert len(disp.lines_[0].get_xdata()) == best.n_iter_
        np.testing.assert_allclose(
            disp.lines_[0].get_ydata(),
            best.loss_curve_per_class_[:, 0] if display is PerClassLossDisplay
            else best.loss_curve_)


@pytest.mark.parametrize("display", [PerClassLossDisplay, TrainingCurveDisplay])
def test_unwrap_errors(pyplot, digits, display):
    X, y = digits.data[:300] / 255.0, digits.target[:300]
    with pytest.raises(NotFittedError, match="needs a fitted skdigits estimator"):
        display.from_estimator(SoftmaxRegression())
    with pytest.raises(NotFittedError, match="not fitted"):
        display.from_estimator(make_pipeline(MinMaxScaler(), MLPClassifier()))
    with pytest.raises(NotFittedError):
        display.from_estimator(GridSearchCV(SoftmaxRegression(), {"alpha": [1.0]}))
    no_refit = GridSearchCV(SoftmaxRegression(max_iter=2), {"alpha": [1e-5, 1e-3]},
                            cv=2, refit=False).fit(X, y)
    with pytest.raises(ValueError, match="refit=False"):
        display.from_estimator(no_refit)
    with pytest.raises(TypeError, match="DummyClassifier has no"):
        display.from_estimator(DummyClassifier().fit(X, y))
    with pytest.raises(TypeError, match="FunctionTransformer has no"):
        display.from_estimator(make_pipeline(FunctionTransformer()).fit(X, y))


# ------------------------------------------------------------------ curves
@pytest.mark.parametrize("metric, train, val", [
    ("loss", "loss_curve_", "validation_loss_curve_"),
    ("accuracy", "accuracy_curve_", "validation_scores_"),
])
def test_training_curve_train_and_validation(pyplot, mlp, metric, train, val):
    disp = TrainingCurveDisplay.from_estimator(mlp, metric=metric)
    epochs = np.arange(1, mlp.n_iter_ + 1)
    # the training loss is the objective, the validation loss the plain
    # cross-entropy (they differ with label smoothing or a penalty)
    labels = (["train (objective)", "validation (cross-entropy)"] if metric == "loss"
              else ["train", "validation"])
    assert [line.get_label() for line in disp.lines_] == labels
    assert disp.lines_ == [disp.line_, disp.validation_line_]
    for line, name in zip(disp.lines_, (train, val)):
        np.testing.assert_array_equal(line.get_xdata(), epochs)
        np.testing.assert_allclose(line.get_ydata(), getattr(mlp, name))
    assert disp.ax_.get_ylabel() == metric
    assert disp.ax_.get_xlim() == (1, mlp.n_iter_)
    assert [t.get_text() for t in disp.legend_.get_texts()] == labels


def test_training_curve_without_validation(pyplot, ovr):
    for metric in ("loss", "accuracy"):
        disp = TrainingCurveDisplay.from_estimator(ovr, metric=metric)
        assert disp.validation_line_ is None and len(disp.lines_) == 1


@pytest.mark.parametrize("metric", ["loss", "accuracy"])
def test_training_curve_zoom(pyplot, mlp, metric):
    n, start = mlp.n_iter_, 5
    disp = TrainingCurveDisplay.from_estimator(mlp, metric=metric, start=start)
    assert disp.ax_.get_xlim() == (start, n)
    curves = (mlp.loss_curve_, mlp.validation_loss_curve_) if metric == "loss" \
        else (mlp.accuracy_curve_, mlp.validation_scores_)
    window = np.concatenate([np.asarray(c)[start - 1:] for c in curves])
    lo, hi = window.min(), window.max()
    margin = 0.05 * (hi - lo)
    np.testing.assert_allclose(disp.ax_.get_ylim(), (lo - margin, hi + margin))
    full = np.concatenate([np.asarray(c) for c in curves])
    assert hi - lo < full.max() - full.min()


def test_training_curve_single_epoch_and_log(pyplot):
    disp = TrainingCurveDisplay([0.5]).plot()
    assert disp.ax_.get_xlim() == (0.5, 1.5)
    lo, hi = disp.ax_.get_ylim()
    assert lo < 0.5 < hi
    # one whole-number tick: MaxNLocator gave 0.5, 0.6, ... 1.5
    disp.figure_.canvas.draw()
    ticks = [t for t in disp.ax_.get_xticks() if 0.5 <= t <= 1.5]
    assert ticks == [1.0]
    locator = disp.ax_.xaxis.get_major_locator()
    assert list(locator.tick_values(3.5, 2.5)) == [3.0]  # inverted too
    assert len(locator.tick_values(0, 1e12)) < 20  # not every whole number


def test_curve_figures_pickle_into_a_fresh_process(pyplot):
    """The one-epoch tick fix first made a locator class inside a function,
    and figures stopped pickling."""
    import pickle

    fig = TrainingCurveDisplay([1.0, 0.5, 0.2]).plot().figure_
    code = ("import pickle, sys; fig = pickle.loads(sys.stdin.buffer.read()); "
            "print(type(fig.axes[0].xaxis.get_major_locator()).__name__)")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(fig),
                         capture_output=True, check=True,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.stdout.decode().strip() == "_EpochLocator"
    disp = TrainingCurveDisplay([1.0, 0.1, 0.01], validation=[1.0, 0.2, 0.1]).plot(
        log_scale=True, start=2)
    assert disp.ax_.get_yscale() == "log"
    lo, hi = disp.ax_.get_ylim()
    assert 0.005 < lo < 0.01 and 0.2 < hi < 0.3


@pytest.mark.parametrize("log_scale", [False, True])
def test_curves_equal_but_for_rounding_are_drawn_flat(pyplot, log_scale):
    """After one epoch (or a first partial_fit) every class's loss is ln 10,
    a few ulps apart: the y-axis spanned those ulps, so the plot was blank
    and had no tick labels."""
    value = np.log(10)
    curves = [[value, np.nextafter(value, 3)]]
    disp = PerClassLossDisplay(curves, class_names=["a", "b"]).plot(
        log_scale=log_scale)
    lo, hi = disp.ax_.get_ylim()
    assert lo < value < hi and hi - lo > 0.001 * value  # not a few ulps
    disp.figure_.canvas.draw()
    labels = [t.get_text() for t in disp.ax_.get_yticklabels() if t.get_text()]
    assert labels  # something to read the level by
    one = PerClassLossDisplay([[value, value]], class_names=["a", "b"],
                              validation_loss_per_class=[[value, value]]).plot(
                                  validation=True)
    assert all(line.get_marker() == "o" for line in one.lines_)  # else invisible
    assert all(line.get_markerfacecolor() == "none"  # told apart from training
               for line in one.validation_lines_)


def test_training_curve_errors(pyplot, mlp):
    with pytest.raises(ValueError, match="metric"):
        TrainingCurveDisplay.from_estimator(mlp, metric="f1")
    with pytest.raises(ValueError, match="metric"):
        TrainingCurveDisplay([1.0], metric="f1").plot()
    with pytest.raises(ValueError, match="validation"):
        TrainingCurveDisplay([1.0, 2.0], validation=[1.0]).plot()


def test_training_curve_sklearn_mlp_loss(pyplot, digits):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP

    with pytest.warns(ConvergenceWarning):
        sk = SkMLP(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(
            digits.data[:300] / 255.0, digits.target[:300])
    disp = TrainingCurveDisplay.from_estimator(sk)
    np.testing.assert_allclose(disp.line_.get_ydata(), sk.loss_curve_)
    with pytest.raises(TypeError, match="accuracy_curve_"):
        TrainingCurveDisplay.from_estimator(sk, metric="accuracy")


def test_training_curve_uses_given_ax(pyplot, mlp):
    fig, ax = pyplot.subplots()
    disp = TrainingCurveDisplay.from_estimator(mlp, ax=ax)
    assert disp.ax_ is ax and disp.figure_ is fig
    assert pyplot.get_fignums() == [fig.number]


def test_plot_training_curves(pyplot, mlp, ovr):
    out = plot_training_curves(mlp, zoom_start=-3)
    assert len(out.figure.axes) == 4
    assert out.loss.ax_.get_xlim() == (1, mlp.n_iter_)
    assert out.loss_zoom.ax_.get_xlim() == (mlp.n_iter_ - 2, mlp.n_iter_)
    assert out.accuracy_zoom.ax_.get_xlim() == (mlp.n_iter_ - 2, mlp.n_iter_)
    assert out.accuracy.ax_.get_ylabel() == "accuracy"
    assert len(out.loss.lines_) == 2
    out = plot_training_curves(ovr)
    assert len(out.figure.axes) == 2 and out.loss_zoom is None
    with pytest.raises(NotFittedError):
        plot_training_curves(SoftmaxRegression())


@pytest.mark.parametrize("top,bottom", [(0.25, 0.005), (0.25, 0.002), (0.9, 0.02),
                                        (3.0, 0.2), (0.25, 0.12)])
def test_log_axis_labels_a_tick_near_the_top_of_the_curves(pyplot, top, bottom):
    """The one-vs-rest digits curves start near 0.2 and fall to 0.005: the
    log axis must label a tick in the upper half of its range (matplotlib
    labelled none above 0.1 there), so the first epochs can be read."""
    from skdigits.plotting import PerClassLossDisplay

    epochs = np.arange(1, 11)[:, None]
    curves = np.exp(np.linspace(np.log(top), np.log(bottom), 10))[:, None] \
        * np.linspace(1.0, 0.9, 3)[None, :] + 0 * epochs
    disp = PerClassLossDisplay(curves, class_names=["a", "b", "c"]).plot()
    disp.figure_.canvas.draw()
    ax = disp.ax_
    low, high = ax.get_ylim()
    labelled = [t.get_position()[1] for t in ax.yaxis.get_ticklabels(which="both")
                if t.get_text() and low <= t.get_position()[1] <= high]
    assert labelled, "no labelled tick at all"
    # within a factor of 2 of where the highest curve starts
    assert max(labelled) >= top / 2, (labelled, (low, high))
