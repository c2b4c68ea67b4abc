"""Displays of the curves a skdigits estimator records while it trains:
the loss of each class, and the overall loss and accuracy per epoch."""

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._optional_dependencies import check_matplotlib_support

from .._unwrap import fitted_final_estimator as _fitted_final_estimator
from ..metrics import per_class_loss_rankings
from ._utils import _class_names, _resolve_start, _zoom

__all__ = ["PerClassLossDisplay", "TrainingCurveDisplay", "plot_training_curves"]

_METRICS = {
    # metric -> (training curve, validation curve)
    "loss": ("loss_curve_", "validation_loss_curve_"),
    "accuracy": ("accuracy_curve_", "validation_scores_"),
    # what early stopping watched (its scoring): validation only
    "score": (None, "validation_scores_"),
}
#: Legend labels of the training and validation lines: ``loss_curve_`` is the
#: objective minimised (label smoothing and L2 penalty included), the
#: validation loss the plain cross-entropy.
_CURVE_LABELS = {"loss": ("train (objective)", "validation (cross-entropy)"),
                 "accuracy": ("train", "validation")}

def _scoring_of(est):
    """What an estimator's ``validation_scores_`` hold: ``"accuracy"`` (also
    for a model saved before ``scoring`` existed, or a scikit-learn MLP),
    ``"loss"`` (the negative loss) or a scorer's name."""
    return getattr(est, "_validation_scoring", None) or "accuracy"


def _score_label(score_name):
    """Legend label of the curve early stopping watched."""
    if score_name == "loss":
        return "validation loss (early stopping: lowest kept)"
    return f"validation {score_name} (early stopping: highest kept)"


def _epoch_locator_class():
    """``_EpochLocator``: a ``MaxNLocator(integer=True)`` that, with fewer
    than three whole numbers in view, ticks those alone (MaxNLocator falls
    back to fractions then: one epoch read 0.5, 0.6, ... 1.5). Defined on
    first use, since importing skdigits.plotting imports no matplotlib, and
    as a module attribute, so figures pickle and unpickle."""
    cls = globals().get("_EpochLocator")
    if cls is None:
        from matplotlib.ticker import MaxNLocator

        class _EpochLocator(MaxNLocator):
            def tick_values(self, vmin, vmax):
                lo, hi = sorted((vmin, vmax))
                first, last = np.ceil(lo), np.floor(hi)
                if last - first < 2:  # counted, not listed: views may be huge
                    return np.arange(first, last + 1)
                return super().tick_values(vmin, vmax)

        _EpochLocator.__qualname__ = "_EpochLocator"
        globals()["_EpochLocator"] = cls = _EpochLocator
    return cls


def __getattr__(name):
    # unpickling a figure looks the locator's class up here (PEP 562)
    if name == "_EpochLocator":
        return _epoch_locator_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _integer_epochs(ax):
    """Epoch ticks on whole numbers only (a 3-epoch run shows 1, 2, 3; one
    epoch, 1 alone)."""
    ax.xaxis.set_major_locator(_epoch_locator_class()(integer=True))


def _check_metric(metric):
    if metric not in _METRICS:
        raise ValueError(
            f"metric must be one of {sorted(_METRICS)}; got {metric!r}.")


def _new_axes(ax, figsize):
    """``(ax, figure, created)``: the axes given, or new ones in a new figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return ax, fig, True
    return ax, ax.figure, False


def _set_log_scale(ax):
    """Logarithmic y-axis with plain-number tick labels (0.05, not 5e-2).

    matplotlib's log formatters decide which ticks get a label, except that
    over up to three decades the minor ticks at 2 and 5 times a power of ten
    are labelled too: matplotlib labels no minor tick past one decade, so
    curves from 0.25 down to 0.005 showed no label above 0.1.
    """
    import math

    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLogFormatter(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            if not self.labelOnlyBase and x > 0:
                low, high = self.axis.get_view_interval()
                mantissa = x / 10 ** math.floor(math.log10(x))
                if (low > 0 and math.log10(high / low) <= 3
                        and min(abs(mantissa - 2), abs(mantissa - 5)) < 1e-6):
                    return f"{x:g}"
            return f"{x:g}" if super().__call__(x, pos) else ""

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLogFormatter())
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


class PerClassLossDisplay:
    """Loss of each class against the epoch.

    One line per class, labelled with the class name, from an estimator's
    ``loss_curve_per_class_`` (and optionally its
    ``validation_loss_curve_per_class_``, dashed). It shows which classes the
    model learns first and which stay hard: on MNIST, 0 and 1 fall fast while
    8 and 9 stay high; on Fashion-MNIST, Shirt, Pullover and Coat stay high.

    Build it with :meth:`from_estimator`; the constructor only stores the
    curves given to it. Call :meth:`plot` to draw.

    Parameters
    ----------
    loss_per_class : array-like of shape (n_epochs, n_classes)
        The training loss of each class at each epoch: an estimator's
        ``loss_curve_per_class_``, the plain cross-entropy (no label
        smoothing, no penalty), so the curves compare across settings.

    class_names : array-like of str of shape (n_classes,)
        The name of each class (column), used as the label of its line.

    validation_loss_per_class : array-like of shape (n_epochs, n_classes), \
            default=None
        The loss of each class on held-out data at each epoch, if recorded.

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
        One line per class (in the order of ``class_names``), labelled with
        the class name.

    validation_lines_ : list of matplotlib Line2D or None
        The dashed validation line of each class drawn (every class, or the
        highlighted ones with ``validation="highlighted"``), in the colour of
        its training line; None when the validation curves are not drawn.

    ax_ : matplotlib Axes
        The axes drawn in.

    figure_ : matplotlib Figure
        The figure holding ``ax_``.

    legend_ : matplotlib Legend
        The legend: one entry per class, the class names.

    final_loss_ : ndarray of shape (n_classes,)
        The last finite training loss of each class.

    hardest_ : list of str
        The class names ordered by ``final_loss_``, highest first (ties in
        the order of ``class_names``).

    highlighted_ : list of str
        The class names drawn bold (empty without ``highlight``).

    convergence_threshold_ : float
        The loss below which a class counts as converged (see :meth:`plot`).

    convergence_epoch_ : ndarray of shape (n_classes,)
        The first epoch (1-based) at which each class's training loss is at
        most ``convergence_threshold_``; ``inf`` for a class that never gets
        there.

    converged_first_ : list of str
        The class names ordered by ``convergence_epoch_``, earliest first;
        ties, and the classes that never converge, in order of
        ``final_loss_``, lowest first.

    See Also
    --------
    TrainingCurveDisplay : The overall loss or accuracy per epoch.

    Notes
    -----
    The training loss of an epoch is the mean over its minibatches, measured
    while the weights change; the validation loss is measured at the end of
    the epoch. With ``multi_class="ovr"`` the loss of a class is the binary
    loss of that class's one-vs-rest model; otherwise it is the mean
    cross-entropy of the samples of that class.

    Examples
    --------
    >>> from skdigits import SoftmaxRegression
    >>> from skdigits.datasets import load_mnist
    >>> from skdigits.plotting import PerClassLossDisplay
    >>> data = load_mnist("fashion", sample=True)
    >>> clf = SoftmaxRegression(multi_class="ovr", max_iter=5, random_state=0)
    >>> clf = clf.fit(data.data / 255.0, data.target)
    >>> disp = PerClassLossDisplay.from_estimator(
    ...     clf, class_names=data.target_names, highlight=3)
    >>> [line.get_label() for line in disp.lines_][:3]
    ['T-shirt/top', 'Trouser', 'Pullover']
    >>> "Shirt" in disp.hardest_[:3]
    True
    """

    def __init__(self, loss_per_class, *, class_names,
                 validation_loss_per_class=None):
        self.loss_per_class = loss_per_class
        self.class_names = class_names
        self.validation_loss_per_class = validation_loss_per_class

    def plot(self, *, ax=None, highlight=None, start=1, log_scale=True,
             validation=False, convergence_threshold=None, legend_kw=None):
        """Draw the loss of each class against the epoch.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw in. By default a new figure and axes are made.

        highlight : int or list of str, default=None
            Classes to emphasise: an int ``k`` draws the ``k`` classes with the
            highest final loss (``hardest_[:k]``) bold and fades the others; a
            list of class names draws those bold. None draws every class
            alike.

        start : int, default=1
            First epoch shown (1-based); a negative number counts from the
            last epoch (``-10``: the last ten). The x-limits become
            ``[start, n_epochs]`` and the y-limits the range of the curves
            drawn over those epochs, with a small margin: a zoomed view of
            the late epochs.

        log_scale : bool, default=True
            Use a logarithmic y-axis.

        validation : bool or "highlighted", default=False
            Also draw each class's validation loss, dashed. ``"highlighted"``
            draws it only for the highlighted classes, so that ten dashed
            lines do not tangle with ten solid ones. Needs
            ``validation_loss_per_class``.

        convergence_threshold : float, default=None
            The loss below which a class counts as converged, for
            ``convergence_epoch_`` and ``converged_first_``. By default the
            mean of the classes' final losses, so the classes that get below
            the average early are those that converge first.

        legend_kw : dict, default=None
            Extra keyword arguments passed to ``Axes.legend``. By default the
            legend sits beside the axes, on the right, where it hides no
            curve (ten curves leave no free corner inside). In a figure of
            your own, give it a layout that makes room for it, such as
            ``layout="constrained"``.

        Returns
        -------
        display : PerClassLossDisplay
            The display, with ``lines_``, ``ax_``, ``figure_`` and the
            class rankings set.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")

        curves = np.asarray(self.loss_per_class, dtype=float)
        if curves.ndim != 2:
            raise ValueError(
                "loss_per_class must be 2-D (n_epochs, n_classes); got shape "
                f"{curves.shape}.")
        n_epochs, n_classes = curves.shape
        names = [str(name) for name in np.asarray(self.class_names).tolist()]
        if len(names) != n_classes:
            raise ValueError(
                f"class_names holds {len(names)} names for {n_classes} classes.")
        val = None
        if validation not in (True, False, "highlighted"):
            raise ValueError(
                f"validation must be True, False or 'highlighted'; got "
                f"{validation!r}.")
        if validation:
            if self.validation_loss_per_class is None:
                raise ValueError(
                    "validation=True needs validation_loss_per_class (fit the "
                    "estimator with early_stopping=True).")
            val = np.asarray(self.validation_loss_per_class, dtype=float)
            if val.shape != curves.shape:
                raise ValueError(
                    f"validation_loss_per_class has shape {val.shape}; expected "
                    f"{curves.shape}, like loss_per_class.")
        first = _resolve_start(start, n_epochs)

        ranks = per_class_loss_rankings(curves, class_names=names,
                                        convergence_threshold=convergence_threshold)
        final, hardest = ranks.final_loss, ranks.hardest
        convergence_threshold = ranks.convergence_threshold
        epoch, converged_first = ranks.convergence_epoch, ranks.converged_first

        if highlight is None:
            highlighted = []
        elif isinstance(highlight, (int, np.integer)) and not isinstance(
                highlight, bool):
            if not 0 <= highlight <= n_classes:
                raise ValueError(
                    f"highlight={highlight} must be between 0 and the number of "
                    f"classes, {n_classes}.")
            highlighted = hardest[:int(highlight)]
        else:
            highlighted = [str(h) for h in highlight]
            unknown = sorted(set(highlighted) - set(names))
            if unknown:
                raise ValueError(
                    f"highlight names unknown classes {unknown}; the classes are "
                    f"{names}.")

        ax, fig, created = _new_axes(ax, (8, 4.8))
        epochs = np.arange(1, n_epochs + 1)
        self.lines_ = []
        self.validation_lines_ = [] if val is not None else None
        # one epoch is one point per class: a line of one point draws nothing
        dot = dict(marker="o", markersize=5) if n_epochs == 1 else {}
        for j, name in enumerate(names):
            if not highlighted:
                style = dict(linewidth=1.5, alpha=1.0, zorder=2, **dot)
            elif name in highlighted:
                style = dict(linewidth=2.8, alpha=1.0, zorder=3, **dot)
            else:
                style = dict(linewidth=1.0, alpha=0.35, zorder=2, **dot)
            (line,) = ax.plot(epochs, curves[:, j], label=name, **style)
            self.lines_.append(line)
            if val is not None and (validation is True or name in highlighted):
                hollow = {"markerfacecolor": "none"} if dot else {}
                (vline,) = ax.plot(epochs, val[:, j], linestyle="--",
                                   color=line.get_color(), label=f"_{name} (val)",
                                   **style, **hollow)
                self.validation_lines_.append(vline)
        if log_scale:
            _set_log_scale(ax)
        if val is not None and validation == "highlighted":
            val = val[:, [names.index(h) for h in highlighted]]
        drawn = [curves] if val is None else [curves, val]
        _zoom(ax, drawn, first, n_epochs, log_scale)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.set_ylabel("cross-entropy per class" + (" (dashed: validation)"
                                                   if val is not None else ""))
        title = "Training cross-entropy per class"
        if first > 1:
            title += f", epochs {first} to {n_epochs}"
        if highlighted:
            title += f" (bold: {', '.join(highlighted)})"
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        legend_kw = {} if legend_kw is None else dict(legend_kw)
        legend_kw.setdefault("fontsize", "small")
        legend_kw.setdefault("title", "class")
        # beside the axes, where it hides no curve (also in the caller's
        # axes: inside, ten curves leave no free corner)
        legend_kw.setdefault("loc", "upper left")
        legend_kw.setdefault("bbox_to_anchor", (1.01, 1.0))
        self.legend_ = ax.legend(handles=self.lines_, **legend_kw)

        self.ax_ = ax
        self.figure_ = fig
        self.final_loss_ = final
        self.hardest_ = hardest
        self.highlighted_ = highlighted
        self.convergence_threshold_ = convergence_threshold
        self.convergence_epoch_ = epoch
        self.converged_first_ = converged_first
        return self

    @classmethod
    def from_estimator(cls, estimator, *, class_names=None, highlight=None,
                       start=1, log_scale=True, validation=False,
                       convergence_threshold=None, ax=None, legend_kw=None):
        """Draw the per-class loss curves a fitted estimator recorded.

        Parameters
        ----------
        estimator : estimator instance
            A fitted skdigits estimator, a :class:`~sklearn.pipeline.Pipeline`
            ending in one, or a fitted
            :class:`~sklearn.model_selection.GridSearchCV` or
            :class:`~sklearn.model_selection.RandomizedSearchCV` over one
            (its ``best_estimator_`` is used).

        class_names : array-like of str or dict, default=None
            Names of the classes: one per entry of ``classes_``, a sequence
            indexed by integer classes (such as ``load_mnist(...).target_names``)
            or a dict from class to name. By default the classes themselves.

        highlight : int or list of str, default=None
            The ``k`` hardest classes, or the named classes, drawn bold and
            the others faded. See :meth:`plot`.

        start : int, default=1
            First epoch shown; negative counts from the end. See :meth:`plot`.

        log_scale : bool, default=True
            Use a logarithmic y-axis.

        validation : bool or "highlighted", default=False
            Also draw the validation loss of each class, dashed (needs an
            estimator fitted with ``early_stopping=True``); ``"highlighted"``
            draws it only for the highlighted classes.

        convergence_threshold : float, default=None
            The loss below which a class counts as converged. See
            :meth:`plot`.

        ax : matplotlib Axes, default=None
            Axes to draw in. By default a new figure and axes are made.

        legend_kw : dict, default=None
            Extra keyword arguments passed to ``Axes.legend``.

        Returns
        -------
        display : PerClassLossDisplay
            The drawn display.

        Raises
        ------
        NotFittedError
            If the estimator is not fitted.
        TypeError
            If the estimator records no per-class loss.
        ValueError
            If ``validation=True`` and the estimator has no validation curves.

        Examples
        --------
        >>> from skdigits import MLPClassifier
        >>> from skdigits.datasets import load_mnist
        >>> from skdigits.plotting import PerClassLossDisplay
        >>> X, y = load_mnist(sample=True, return_X_y=True)
        >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=6,
        ...                     early_stopping=True, random_state=0)
        >>> clf = clf.fit(X / 255.0, y)
        >>> disp = PerClassLossDisplay.from_estimator(clf, validation=True,
        ...                                           start=-3)
        >>> disp.ax_.get_xlim() == (clf.n_iter_ - 2, clf.n_iter_)
        True
        >>> len(disp.lines_), len(disp.validation_lines_)
        (10, 10)
        """
        est = _fitted_final_estimator(
            estimator, ["classes_", "loss_curve_per_class_"],
            f"{cls.__name__}.from_estimator")
        names = _class_names(est.classes_, class_names)
        val = getattr(est, "validation_loss_curve_per_class_", None)
        if validation and (val is None or getattr(est, "validation_scores_",
                                                  None) is None):
            raise ValueError(
                f"{type(est).__name__} recorded no validation loss: fit it with "
                "early_stopping=True, or pass validation=False.")
        if getattr(est, "validation_scores_", None) is None:
            val = None  # left from an earlier fit with early stopping
        disp = cls(est.loss_curve_per_class_, class_names=names,
                   validation_loss_per_class=val)
        return disp.plot(ax=ax, highlight=highlight, start=start,
                         log_scale=log_scale, validation=validation,
                         convergence_threshold=convergence_threshold,
                         legend_kw=legend_kw)


class TrainingCurveDisplay:
    """Training (and validation) loss or accuracy against the epoch.

    Draws an estimator's ``loss_curve_`` or ``accuracy_curve_`` and, when it
    was fitted with ``early_stopping=True``, its ``validation_loss_curve_``
    or ``validation_scores_``. With ``start`` the axes zoom on the late
    epochs, where the curves are too flat to read at full scale.

    Build it with :meth:`from_estimator`; the constructor only stores the
    curves given to it. Call :meth:`plot` to draw.

    Parameters
    ----------
    train : array-like of shape (n_epochs,)
        The training loss or accuracy at each epoch.

    validation : array-like of shape (n_epochs,), default=None
        The validation loss or accuracy at each epoch, if recorded.

    metric : {"loss", "accuracy", "score"}, default="loss"
        What the curves measure, for the axis label and the title.
        ``"score"``: the validation score early stopping watched (named by
        ``score_name``); ``train`` may then be None.

    score_name : str, default=None
        What early stopping watched (the estimator's ``scoring``:
        ``"accuracy"``, ``"loss"`` or a scorer's name), for the label of the
        validation curve with ``metric="score"``, and of the validation loss
        when it is ``"loss"``. None: ``"score"``.

    Attributes
    ----------
    line_ : matplotlib Line2D or None
        The training curve (label ``"train"``); None when ``train`` is None.

    validation_line_ : matplotlib Line2D or None
        The validation curve (label ``"validation"``); None without
        validation data.

    lines_ : list of matplotlib Line2D
        The curves drawn: ``line_``, then ``validation_line_`` if any.

    ax_ : matplotlib Axes
        The axes drawn in.

    figure_ : matplotlib Figure
        The figure holding ``ax_``.

    See Also
    --------
    PerClassLossDisplay : The loss of each class per epoch.
    plot_training_curves : Loss and accuracy side by side, with zoomed views.

    Notes
    -----
    The training figures of an epoch are means over its minibatches,
    measured while the weights change; the validation figures are measured
    at the end of the epoch. Both losses include the L2 penalty.

    Examples
    --------
    >>> from skdigits import MLPClassifier
    >>> from skdigits.datasets import load_mnist
    >>> from skdigits.plotting import TrainingCurveDisplay
    >>> X, y = load_mnist(sample=True, return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=6,
    ...                     early_stopping=True, random_state=0)
    >>> clf = clf.fit(X / 255.0, y)
    >>> disp = TrainingCurveDisplay.from_estimator(clf, metric="accuracy")
    >>> [line.get_label() for line in disp.lines_]
    ['train', 'validation']
    >>> zoom = TrainingCurveDisplay.from_estimator(clf, start=3)
    >>> zoom.ax_.get_xlim() == (3.0, clf.n_iter_)
    True
    """

    def __init__(self, train, *, validation=None, metric="loss", score_name=None):
        self.train = train
        self.validation = validation
        self.metric = metric
        self.score_name = score_name

    def plot(self, *, ax=None, start=1, log_scale=False, legend_kw=None):
        """Draw the curves against the epoch (1 to ``n_epochs``).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw in. By default a new figure and axes are made.

        start : int, default=1
            First epoch shown (1-based); a negative number counts from the
            last epoch. The x-limits become ``[start, n_epochs]`` and the
            y-limits the range of the curves over those epochs, with a small
            margin: a zoomed view of the late epochs.

        log_scale : bool, default=False
            Use a logarithmic y-axis.

        legend_kw : dict, default=None
            Extra keyword arguments passed to ``Axes.legend``.

        Returns
        -------
        display : TrainingCurveDisplay
            The display, with ``line_``, ``validation_line_``, ``lines_``,
            ``ax_`` and ``figure_`` set.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        _check_metric(self.metric)
        score = self.metric == "score"
        if self.train is None and not (score and self.validation is not None):
            raise ValueError("train is None: only metric='score' draws the "
                             "validation curve alone.")
        train = None if self.train is None else np.asarray(self.train, dtype=float)
        val = None
        if self.validation is not None:
            val = np.asarray(self.validation, dtype=float)
        shape = (train if train is not None else val).shape
        if len(shape) != 1:
            raise ValueError(f"train must be 1-D; got shape {shape}.")
        if train is not None and val is not None and val.shape != train.shape:
            raise ValueError(
                f"validation has shape {val.shape}; expected {train.shape}, "
                "like train.")
        n_epochs = shape[0]
        first = _resolve_start(start, n_epochs)

        ax, fig, _ = _new_axes(ax, (6, 4))
        epochs = np.arange(1, n_epochs + 1)
        marker = "o" if n_epochs <= 30 else None
        name = self.score_name or "score"
        if score:
            train_label, val_label = "train", _score_label(name)
        else:
            train_label, val_label = _CURVE_LABELS[self.metric]
            if self.metric == "loss" and self.score_name == "loss":
                val_label = "validation (cross-entropy; early stopping: lowest kept)"
        self.line_ = None
        if train is not None:
            (self.line_,) = ax.plot(epochs, train, label=train_label, marker=marker,
                                    markersize=3)
        self.validation_line_ = None
        if val is not None:
            (self.validation_line_,) = ax.plot(epochs, val, label=val_label,
                                               marker=marker, markersize=3)
        self.lines_ = [line for line in (self.line_, self.validation_line_)
                       if line is not None]
        if log_scale:
            _set_log_scale(ax)
        _zoom(ax, [c for c in (train, val) if c is not None], first, n_epochs,
              log_scale)
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        if score:
            ax.set_ylabel("loss" if name == "loss" else name)
            title = ("Validation " + ("loss" if name == "loss" else name)
                     + " (early stopping)")
        else:
            ax.set_ylabel(self.metric)
            title = ("Training and validation " if val is not None
                     else "Training ") + self.metric
        if first > 1:
            title += f", epochs {first} to {n_epochs}"
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        legend_kw = {} if legend_kw is None else dict(legend_kw)
        self.legend_ = ax.legend(handles=self.lines_, **legend_kw)
        self.ax_ = ax
        self.figure_ = fig
        return self

    @classmethod
    def from_estimator(cls, estimator, *, metric="loss", start=1, log_scale=False,
                       ax=None, legend_kw=None):
        """Draw the loss or accuracy curves a fitted estimator recorded.

        Parameters
        ----------
        estimator : estimator instance
            A fitted skdigits estimator, a :class:`~sklearn.pipeline.Pipeline`
            ending in one, or a fitted
            :class:`~sklearn.model_selection.GridSearchCV` or
            :class:`~sklearn.model_selection.RandomizedSearchCV` over one
            (its ``best_estimator_`` is used). For ``metric="loss"``, any
            fitted estimator with ``loss_curve_`` (such as scikit-learn's
            ``MLPClassifier``) also works.

        metric : {"loss", "accuracy", "score"}, default="loss"
            ``"loss"`` draws ``loss_curve_`` and ``validation_loss_curve_``;
            ``"accuracy"`` draws ``accuracy_curve_`` and the validation
            accuracy (``validation_scores_``, when early stopping watched the
            accuracy, ``scoring=None``). ``"score"`` draws what early stopping
            watched alone, labelled by its ``scoring``: the validation
            accuracy, the validation loss (as a loss, lower is better: not
            the negative ``validation_scores_``) or the scorer's values. The
            validation curves are drawn when the estimator was fitted with
            ``early_stopping=True``; ``"score"`` needs it.

        start : int, default=1
            First epoch shown; negative counts from the end. See :meth:`plot`.

        log_scale : bool, default=False
            Use a logarithmic y-axis.

        ax : matplotlib Axes, default=None
            Axes to draw in. By default a new figure and axes are made.

        legend_kw : dict, default=None
            Extra keyword arguments passed to ``Axes.legend``.

        Returns
        -------
        display : TrainingCurveDisplay
            The drawn display.

        Raises
        ------
        NotFittedError
            If the estimator is not fitted.
        TypeError
            If the estimator records no such curve.
        ValueError
            If ``metric="score"`` and the estimator recorded no validation
            scores.

        Examples
        --------
        >>> from sklearn.model_selection import GridSearchCV
        >>> from skdigits import SoftmaxRegression
        >>> from skdigits.datasets import load_mnist
        >>> from skdigits.plotting import TrainingCurveDisplay
        >>> X, y = load_mnist(sample=True, return_X_y=True)
        >>> search = GridSearchCV(SoftmaxRegression(max_iter=2, random_state=0),
        ...                       {"alpha": [1e-5, 1e-3]}, cv=2)
        >>> search = search.fit(X / 255.0, y)
        >>> disp = TrainingCurveDisplay.from_estimator(search)
        >>> disp.validation_line_ is None
        True
        >>> len(disp.line_.get_xdata()) == search.best_estimator_.n_iter_
        True
        """
        _check_metric(metric)
        train_name, val_name = _METRICS[metric]
        est = _fitted_final_estimator(estimator, [train_name or "loss_curve_"],
                                      f"{cls.__name__}.from_estimator")
        scoring = _scoring_of(est)
        val = getattr(est, val_name, None)
        if metric != "accuracy" and getattr(est, "validation_scores_", None) is None:
            val = None  # left from an earlier fit with early stopping
        if metric == "accuracy" and scoring != "accuracy":
            val = None  # validation_scores_ hold another score
        if metric == "score":
            if val is None:
                raise ValueError(
                    "metric='score' draws the validation score early stopping "
                    "watched: fit the estimator with early_stopping=True.")
            if scoring == "loss":  # drawn as a loss: lower is better
                val = est.validation_loss_curve_
        train = None if train_name is None else getattr(est, train_name)
        disp = cls(None if train is None else np.asarray(train, dtype=float),
                   validation=None if val is None else np.asarray(val, dtype=float),
                   metric=metric, score_name=scoring)
        return disp.plot(ax=ax, start=start, log_scale=log_scale,
                         legend_kw=legend_kw)


def plot_training_curves(estimator, *, zoom_start=None, figure=None,
                         log_scale=False):
    """Loss and accuracy per epoch side by side, with optional zoomed views.

    One row of two panels: loss (training, and validation when recorded) and
    accuracy (likewise), and a third, the validation score, when early
    stopping watched a scorer (``scoring`` neither None nor ``"loss"``; the
    loss and accuracy panels show those). With ``zoom_start``, a second row
    shows the same curves from that epoch on, with the axes fitted to them.

    Parameters
    ----------
    estimator : estimator instance
        A fitted skdigits estimator, a :class:`~sklearn.pipeline.Pipeline`
        ending in one, or a fitted search over one (its ``best_estimator_``).

    zoom_start : int, default=None
        First epoch of the zoomed panels (negative counts from the last
        epoch). None draws no zoomed panels.

    figure : matplotlib Figure or SubFigure, default=None
        Figure to draw in. By default a new figure is created.

    log_scale : bool, default=False
        Use a logarithmic y-axis for the loss panels.

    Returns
    -------
    displays : :class:`~sklearn.utils.Bunch`
        ``figure``, and the :class:`TrainingCurveDisplay` of each panel:
        ``loss``, ``accuracy``, ``score``, ``loss_zoom``, ``accuracy_zoom``
        and ``score_zoom`` (the zoomed ones None without ``zoom_start``, the
        score ones None without a scorer).

    See Also
    --------
    TrainingCurveDisplay : One panel of this figure.

    Examples
    --------
    >>> from skdigits import MLPClassifier
    >>> from skdigits.datasets import load_mnist
    >>> from skdigits.plotting import plot_training_curves
    >>> X, y = load_mnist(sample=True, return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=6,
    ...                     early_stopping=True, random_state=0)
    >>> clf = clf.fit(X / 255.0, y)
    >>> curves = plot_training_curves(clf, zoom_start=-4)
    >>> len(curves.figure.axes)
    4
    >>> curves.loss_zoom.ax_.get_xlim() == (clf.n_iter_ - 3, clf.n_iter_)
    True
    """
    check_matplotlib_support("plot_training_curves")
    import matplotlib.pyplot as plt

    # check once, with this function's name in the messages
    est = _fitted_final_estimator(estimator, ["loss_curve_", "accuracy_curve_"],
                                  "plot_training_curves")
    scorer = (getattr(est, "validation_scores_", None) is not None
              and _scoring_of(est) not in ("accuracy", "loss"))
    n_rows = 1 if zoom_start is None else 2
    n_cols = 3 if scorer else 2
    if figure is None:
        figure = plt.figure(figsize=(5.5 * n_cols, 3.8 * n_rows),
                            layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    out = Bunch(figure=figure, loss_zoom=None, accuracy_zoom=None, score=None,
                score_zoom=None)
    if scorer:
        out.score = TrainingCurveDisplay.from_estimator(
            estimator, metric="score", ax=axes[0, 2])
        if zoom_start is not None:
            out.score_zoom = TrainingCurveDisplay.from_estimator(
                estimator, metric="score", ax=axes[1, 2], start=zoom_start)
    out.loss = TrainingCurveDisplay.from_estimator(
        estimator, metric="loss", ax=axes[0, 0], log_scale=log_scale)
    out.accuracy = TrainingCurveDisplay.from_estimator(
        estimator, metric="accuracy", ax=axes[0, 1])
    if zoom_start is not None:
        out.loss_zoom = TrainingCurveDisplay.from_estimator(
            estimator, metric="loss", ax=axes[1, 0], start=zoom_start,
            log_scale=log_scale)
        out.accuracy_zoom = TrainingCurveDisplay.from_estimator(
            estimator, metric="accuracy", ax=axes[1, 1], start=zoom_start)
    return out
