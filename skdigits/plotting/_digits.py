"""DigitGridDisplay: a grid of images titled with their labels or predictions."""

import math
import numbers

import numpy as np
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ._utils import _label_name

__all__ = ["DigitGridDisplay"]

#: Titles longer than this are split over two lines ("pred" / "(true)").
_WRAP_AT = 12


def _count(name, value):
    """``value`` as a positive int, or a ``ValueError`` naming ``name`` (a
    bare ZeroDivisionError or NumPy's "expected a sequence of integers"
    before)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < 1):
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return int(value)


def _sample_rows(n_rows, n_samples, random_state):
    """Indices of ``n_samples`` distinct rows drawn at random (all rows, in
    order, when ``n_samples`` is None or at least ``n_rows``)."""
    if n_samples is not None:
        n_samples = _count("n_samples", n_samples)
    if n_samples is None or n_samples >= n_rows:
        return np.arange(n_rows)
    rng = check_random_state(random_state)
    return rng.choice(n_rows, size=n_samples, replace=False)


def _as_images(X, image_shape):
    """Rows of ``X`` as an array of images, shape (n, height, width)."""
    if hasattr(X, "toarray"):  # a sparse matrix: the few rows drawn
        X = X.toarray()
    X = np.asarray(X)
    if X.ndim == 3:
        return X
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_samples, n_pixels) or 3-D (n_samples, height, "
            f"width); got an array of shape {X.shape}."
        )
    height, width = image_shape
    if X.shape[1] != height * width:
        raise ValueError(
            f"X has {X.shape[1]} features, which cannot be shown as images of "
            f"shape {tuple(image_shape)} ({height * width} pixels); pass the "
            "right image_shape."
        )
    return X.reshape(X.shape[0], height, width)


def _refuse_multilabel(*targets):
    """A clear error for multi-label targets or predictions, which a title of
    one label cannot show."""
    if any(np.ndim(t) == 2 for t in targets):
        raise ValueError(
            "DigitGridDisplay titles each image with one label, but got a "
            "multi-label indicator matrix (one column per label): draw one "
            "label at a time, e.g. y[:, j] and model.predict(X)[:, j].")


class DigitGridDisplay:
    """Grid of images titled with their labels or a classifier's predictions.

    The predictions are optional: without them each image shows its label.

    The grid is drawn in one matplotlib Axes (one image artist and one
    title per image, so a grid of 100 draws in a fraction of a second).
    Without predictions the
    title is the image's label. With predictions it is the predicted label;
    for a mistake it reads ``"predicted (true)"`` and is drawn, with the
    frame, in a marking colour (red by default). When a mistake's title is
    too long for one line (class names such as Fashion-MNIST's), every
    mistake's title is split as ``"predicted\\n(true)"``.

    Build it with :meth:`from_dataset` (a random sample of a dataset with its
    labels), :meth:`from_predictions` or :meth:`from_estimator` (a random
    sample with a classifier's predictions). The constructor only stores what
    it is given; call :meth:`plot` to draw.

    Parameters
    ----------
    images : array-like of shape (n_images, height, width)
        The images, in the order they are drawn (row by row).

    labels : array-like of shape (n_images,)
        The true label of each image.

    predictions : array-like of shape (n_images,), default=None
        The predicted label of each image. None draws the labels only.

    label_names : array-like of str or dict, default=None
        Names shown for integer labels: a sequence indexed by the label (such
        as the ``target_names`` of :func:`skdigits.datasets.load_mnist`) or a
        dict from label to name. Labels that are not integers (strings, such
        as the ``classes_`` of a model trained on class names) are shown as
        they are. None shows every label as it is.

    indices : array-like of shape (n_images,), default=None
        Row of each image in the data it was drawn from (set by the
        ``from_*`` constructors); kept for reference, not drawn.

    Attributes
    ----------
    figure_ : matplotlib Figure or SubFigure
        The figure holding the grid.

    ax_ : matplotlib Axes
        The Axes the grid is drawn in (its axis lines switched off). Image
        ``i`` is in row ``i // n_cols`` and column ``i % n_cols``; in data
        units an image is ``width`` by ``height`` pixels, and
        ``images_[i].get_extent()`` gives its place.

    images_ : list of matplotlib AxesImage
        Each image, in order.

    titles_ : list of matplotlib Text
        The title of each image.

    frames_ : list of matplotlib Rectangle
        The frame of each mistake, in the order of
        ``np.flatnonzero(mistakes_)``; empty without predictions.

    mistakes_ : ndarray of shape (n_images,), dtype=bool, or None
        True where the prediction differs from the label; None without
        predictions.

    See Also
    --------
    sklearn.metrics.ConfusionMatrixDisplay : Confusion matrix of a classifier.
    skdigits.metrics.most_confused_pairs : The pairs of classes most often
        confused.

    Examples
    --------
    100 training samples of Fashion-MNIST with their class names:

    >>> from skdigits.datasets import load_mnist
    >>> from skdigits.plotting import DigitGridDisplay
    >>> data = load_mnist("fashion", sample=True)
    >>> disp = DigitGridDisplay.from_dataset(
    ...     data.data, data.target, label_names=data.target_names, random_state=0)
    >>> len(disp.images_), len(disp.titles_)
    (100, 100)
    >>> disp.titles_[0].get_text() in set(data.target_names)
    True

    The predictions of a model on 100 test samples, mistakes in red:

    >>> from skdigits import SoftmaxRegression
    >>> test = load_mnist("fashion", subset="test", sample=True)
    >>> clf = SoftmaxRegression(max_iter=3, random_state=0)
    >>> clf = clf.fit(data.data / 255.0, data.target)
    >>> disp = DigitGridDisplay.from_estimator(
    ...     clf, test.data / 255.0, test.target, label_names=test.target_names,
    ...     random_state=0)
    >>> int(disp.mistakes_.sum()) == sum(
    ...     t.get_color() == "red" for t in disp.titles_)
    True
    """

    def __init__(self, images, labels, *, predictions=None, label_names=None,
                 indices=None):
        self.images = images
        self.labels = labels
        self.predictions = predictions
        self.label_names = label_names
        self.indices = indices

    def plot(self, *, ax=None, figure=None, n_cols=None, cmap="gray_r",
             mistake_color="red", correct_color="black", fontsize=None,
             imshow_kw=None):
        """Draw the grid.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw the grid in (its aspect is set to equal and its
            axis lines are switched off). The room left for the titles
            suits about an inch per image. Cannot be combined with
            ``figure``. By default a new figure sized for the grid is made.

        figure : matplotlib Figure or SubFigure, default=None
            Figure in which to add the Axes of the grid. By default, and
            when ``ax`` is None, a new figure is created.

        n_cols : int, default=None
            Columns of the grid made by the display. By default
            ``ceil(sqrt(n_images))``: a 10x10 grid for 100 images.

        cmap : str or matplotlib Colormap, default="gray_r"
            Colormap of the images (``"gray_r"``: dark strokes on white).

        mistake_color : color, default="red"
            Colour of the title and frame of each wrong prediction.

        correct_color : color, default="black"
            Colour of the other titles.

        fontsize : float, default=None
            Font size of the titles, in points. By default 10 when every
            title line is short (digits), else 8.

        imshow_kw : dict, default=None
            Extra keyword arguments passed to ``Axes.imshow``.

        Returns
        -------
        display : DigitGridDisplay
            The display, with ``figure_``, ``ax_``, ``images_``, ``titles_``,
            ``frames_`` and ``mistakes_`` set.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        images = np.asarray(self.images)
        if images.ndim != 3:
            raise ValueError(
                "images must be an array of shape (n_images, height, width); "
                f"got shape {images.shape}."
            )
        n_images = images.shape[0]
        labels = np.asarray(self.labels)
        if labels.shape != (n_images,):
            raise ValueError(
                f"labels must hold one label per image ({n_images}); got "
                f"shape {labels.shape}."
            )
        if self.predictions is not None:
            predictions = np.asarray(self.predictions)
            if predictions.shape != (n_images,):
                raise ValueError(
                    f"predictions must hold one label per image ({n_images}); "
                    f"got shape {predictions.shape}."
                )
            mistakes = predictions != labels
        else:
            predictions = None
            mistakes = None

        true_names = [_label_name(label, self.label_names) for label in labels]
        if predictions is None:
            titles = true_names
            colors = [correct_color] * n_images
            two_lines = False
        else:
            pred_names = [_label_name(p, self.label_names) for p in predictions]
            # one layout for every mistake: on two lines if any is too long
            two_lines = any(
                len(pred_names[i]) + len(true_names[i]) + 3 > _WRAP_AT
                for i in np.flatnonzero(mistakes))
            sep = "\n" if two_lines else " "
            titles = [f"{pred_names[i]}{sep}({true_names[i]})" if mistakes[i]
                      else pred_names[i] for i in range(n_images)]
            colors = [mistake_color if mistakes[i] else correct_color
                      for i in range(n_images)]
        if fontsize is None:
            longest = max((len(line) for t in titles for line in t.split("\n")),
                          default=0)
            fontsize = 10 if longest <= 6 else 8

        if ax is not None and figure is not None:
            raise ValueError("Pass ax or figure, not both.")
        if ax is not None and not hasattr(ax, "add_artist"):
            raise ValueError(
                "ax must be one matplotlib Axes: the whole grid is drawn in it "
                f"(got {type(ax).__name__}).")
        height, width = images.shape[1:]
        if n_cols is None:
            n_cols = max(1, math.ceil(math.sqrt(n_images)))
        n_cols = min(_count("n_cols", n_cols), max(n_images, 1))
        n_rows = max(1, math.ceil(n_images / n_cols))
        # the grid in the axes' data units (pixels): a gap of 8% of an image
        # between columns, and above each image room for its title, sized for
        # about an inch per image (the figure the display makes)
        title_inches = (2 if two_lines else 1) * fontsize * 1.3 / 72 + 0.04
        gap = max(1.0, 0.08 * width)
        per_inch = width + gap
        top = title_inches * per_inch
        cell_w, cell_h = width + gap, height + top
        if ax is None:
            fig_w = (cell_w * n_cols) / per_inch + 0.2
            fig_h = (cell_h * n_rows) / per_inch + 0.1
            if figure is None:
                fig = plt.figure(figsize=(fig_w, fig_h))
                ax = fig.add_axes((0.1 / fig_w, 0.05 / fig_h, 1 - 0.2 / fig_w,
                                   1 - 0.1 / fig_h))
            else:
                fig = figure
                ax = fig.add_subplot()
        fig = ax.figure

        imshow_kw = {} if imshow_kw is None else dict(imshow_kw)
        imshow_kw.setdefault("cmap", cmap)
        imshow_kw.setdefault("interpolation", "nearest")
        imshow_kw.pop("extent", None)
        from matplotlib.patches import Rectangle

        self.images_, self.titles_, self.frames_ = [], [], []
        for i in range(n_images):
            x0 = (i % n_cols) * cell_w
            y0 = (i // n_cols) * cell_h + top
            self.images_.append(ax.imshow(
                images[i], extent=(x0, x0 + width, y0 + height, y0),
                origin="upper", **imshow_kw))
            self.titles_.append(ax.text(
                x0 + width / 2, y0 - 0.04 * per_inch, titles[i], ha="center",
                va="bottom", color=colors[i], fontsize=fontsize))
            if mistakes is not None and mistakes[i]:
                frame = Rectangle((x0, y0), width, height, fill=False,
                                  edgecolor=mistake_color, linewidth=1.5)
                self.frames_.append(ax.add_patch(frame))
        ax.set_xlim(-gap / 2, n_cols * cell_w - gap / 2)
        ax.set_ylim(n_rows * cell_h, 0)
        ax.set_aspect("equal")
        ax.set_axis_off()
        self.figure_ = fig
        self.ax_ = ax
        self.mistakes_ = mistakes
        return self

    @classmethod
    def from_dataset(cls, X, y, *, n_samples=100, random_state=None,
                     label_names=None, image_shape=(28, 28), ax=None, figure=None,
                     n_cols=None, cmap="gray_r", fontsize=None, imshow_kw=None):
        """Draw a random sample of a dataset, titled with the labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or \
                (n_samples, height, width)
            The images: flattened rows (as in ``load_mnist(...).data``) or
            2-D images.

        y : array-like of shape (n_samples,)
            The labels.

        n_samples : int or None, default=100
            Number of rows drawn at random, without replacement. None, or a
            number at least the number of rows, draws every row in order.

        random_state : int, RandomState instance or None, default=None
            Seeds the draw of the rows. Pass an int for the same sample on
            every call.

        label_names : array-like of str or dict, default=None
            Names of the labels (see the class description), such as
            ``load_mnist(...).target_names``.

        image_shape : tuple of int, default=(28, 28)
            ``(height, width)`` of an image, used to reshape flattened rows.

        ax : matplotlib Axes, default=None
            Axes to draw the grid in. See :meth:`plot`.

        figure : matplotlib Figure or SubFigure, default=None
            Figure in which to make the grid. See :meth:`plot`.

        n_cols : int, default=None
            Columns of the grid; by default a square-ish grid.

        cmap : str or matplotlib Colormap, default="gray_r"
            Colormap of the images.

        fontsize : float, default=None
            Font size of the titles.

        imshow_kw : dict, default=None
            Extra keyword arguments passed to ``Axes.imshow``.

        Returns
        -------
        display : DigitGridDisplay
            The drawn display; ``indices`` holds the rows drawn.

        Examples
        --------
        >>> from skdigits.datasets import load_mnist
        >>> from skdigits.plotting import DigitGridDisplay
        >>> data = load_mnist(sample=True)
        >>> disp = DigitGridDisplay.from_dataset(
        ...     data.data, data.target, n_samples=12, random_state=0)
        >>> len(disp.images_)
        12
        >>> [t.get_text() for t in disp.titles_] == [
        ...     str(data.target[i]) for i in disp.indices]
        True
        """
        check_consistent_length(X, y)
        idx = _sample_rows(len(y), n_samples, random_state)
        images = _as_images(_safe_indexing(X, idx), image_shape)
        labels = np.asarray(_safe_indexing(y, idx))
        disp = cls(images, labels, label_names=label_names, indices=idx)
        return disp.plot(ax=ax, figure=figure, n_cols=n_cols, cmap=cmap,
                         fontsize=fontsize, imshow_kw=imshow_kw)

    @classmethod
    def from_predictions(cls, X, y_true, y_pred, *, n_samples=100,
                         random_state=None, label_names=None, image_shape=(28, 28),
                         ax=None, figure=None, n_cols=None, cmap="gray_r",
                         mistake_color="red", correct_color="black", fontsize=None,
                         imshow_kw=None):
        """Draw a random sample of images, titled with the predictions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_pixels) or \
                (n_samples, height, width)
            The images: flattened rows or 2-D images.

        y_true : array-like of shape (n_samples,)
            The true labels.

        y_pred : array-like of shape (n_samples,)
            The predicted labels.

        n_samples : int or None, default=100
            Number of rows drawn at random, without replacement. None, or a
            number at least the number of rows, draws every row in order.

        random_state : int, RandomState instance or None, default=None
            Seeds the draw of the rows. The same seed draws the same rows as
            :meth:`from_dataset` on data of the same length.

        label_names : array-like of str or dict, default=None
            Names of the labels (see the class description).

        image_shape : tuple of int, default=(28, 28)
            ``(height, width)`` of an image, used to reshape flattened rows.

        ax : matplotlib Axes, default=None
            Axes to draw the grid in. See :meth:`plot`.

        figure : matplotlib Figure or SubFigure, default=None
            Figure in which to make the grid. See :meth:`plot`.

        n_cols : int, default=None
            Columns of the grid; by default a square-ish grid.

        cmap : str or matplotlib Colormap, default="gray_r"
            Colormap of the images.

        mistake_color : color, default="red"
            Colour of the title and frame of each wrong prediction.

        correct_color : color, default="black"
            Colour of the other titles.

        fontsize : float, default=None
            Font size of the titles.

        imshow_kw : dict, default=None
            Extra keyword arguments passed to ``Axes.imshow``.

        Returns
        -------
        display : DigitGridDisplay
            The drawn display.

        Examples
        --------
        >>> import numpy as np
        >>> from skdigits.plotting import DigitGridDisplay
        >>> X = np.zeros((4, 64))
        >>> disp = DigitGridDisplay.from_predictions(
        ...     X, [0, 1, 2, 3], [0, 1, 3, 3], image_shape=(8, 8))
        >>> [t.get_text() for t in disp.titles_]
        ['0', '1', '3 (2)', '3']
        >>> disp.mistakes_.tolist()
        [False, False, True, False]
        """
        check_consistent_length(X, y_true, y_pred)
        _refuse_multilabel(y_true, y_pred)
        idx = _sample_rows(len(y_true), n_samples, random_state)
        images = _as_images(_safe_indexing(X, idx), image_shape)
        disp = cls(images, np.asarray(_safe_indexing(y_true, idx)),
                   predictions=np.asarray(_safe_indexing(y_pred, idx)),
                   label_names=label_names, indices=idx)
        return disp.plot(ax=ax, figure=figure, n_cols=n_cols, cmap=cmap,
                         mistake_color=mistake_color, correct_color=correct_color,
                         fontsize=fontsize, imshow_kw=imshow_kw)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, n_samples=100, random_state=None,
                       label_names=None, image_shape=(28, 28), ax=None,
                       figure=None, n_cols=None, cmap="gray_r",
                       mistake_color="red", correct_color="black", fontsize=None,
                       imshow_kw=None):
        """Draw a random sample of images, titled with a classifier's predictions.

        Parameters
        ----------
        estimator : estimator instance
            A fitted classifier: a skdigits estimator, or any object with
            ``predict`` such as a :class:`~sklearn.pipeline.Pipeline` or a
            :class:`~sklearn.model_selection.GridSearchCV`.

        X : array-like of shape (n_samples, n_pixels)
            The input of ``estimator.predict``, also drawn as the images
            (reshaped to ``image_shape``).

        y : array-like of shape (n_samples,)
            The true labels.

        n_samples : int or None, default=100
            Number of rows drawn at random, without replacement.

        random_state : int, RandomState instance or None, default=None
            Seeds the draw of the rows.

        label_names : array-like of str or dict, default=None
            Names of integer labels (see the class description). String
            classes are shown as they are.

        image_shape : tuple of int, default=(28, 28)
            ``(height, width)`` of an image.

        ax : matplotlib Axes, default=None
            Axes to draw the grid in. See :meth:`plot`.

        figure : matplotlib Figure or SubFigure, default=None
            Figure in which to make the grid. See :meth:`plot`.

        n_cols : int, default=None
            Columns of the grid; by default a square-ish grid.

        cmap : str or matplotlib Colormap, default="gray_r"
            Colormap of the images.

        mistake_color : color, default="red"
            Colour of the title and frame of each wrong prediction.

        correct_color : color, default="black"
            Colour of the other titles.

        fontsize : float, default=None
            Font size of the titles.

        imshow_kw : dict, default=None
            Extra keyword arguments passed to ``Axes.imshow``.

        Returns
        -------
        display : DigitGridDisplay
            The drawn display.

        Examples
        --------
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.preprocessing import MinMaxScaler
        >>> from skdigits import SoftmaxRegression
        >>> from skdigits.datasets import load_mnist
        >>> from skdigits.plotting import DigitGridDisplay
        >>> X, y = load_mnist(sample=True, return_X_y=True)
        >>> model = make_pipeline(MinMaxScaler(),
        ...                       SoftmaxRegression(max_iter=3, random_state=0))
        >>> model = model.fit(X, y)
        >>> disp = DigitGridDisplay.from_estimator(model, X, y, n_samples=16,
        ...                                        random_state=0)
        >>> int(disp.mistakes_.sum()) == len(disp.frames_)
        True
        """
        check_is_fitted(estimator)
        y_pred = estimator.predict(X)
        return cls.from_predictions(
            X, y, y_pred, n_samples=n_samples, random_state=random_state,
            label_names=label_names, image_shape=image_shape, ax=ax,
            figure=figure, n_cols=n_cols, cmap=cmap, mistake_color=mistake_color,
            correct_color=correct_color, fontsize=fontsize, imshow_kw=imshow_kw)
