"""Metrics that complement :mod:`sklearn.metrics` for digit classifiers.

The confusion matrix itself is scikit-learn's: compute it with
:func:`sklearn.metrics.confusion_matrix` and draw it with
:class:`sklearn.metrics.ConfusionMatrixDisplay`. This module adds
:func:`most_confused_pairs`, which reads the largest off-diagonal cells of
that matrix, and :func:`per_class_loss_rankings`, which ranks the classes by
their loss history (``loss_curve_per_class_``).
"""

from numbers import Integral

import numpy as np
from sklearn.metrics import confusion_matrix
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_consistent_length

__all__ = ["most_confused_pairs", "per_class_loss_rankings"]


def _python_scalar(value):
    """A NumPy scalar as the matching Python scalar (other values unchanged)."""
    return value.item() if isinstance(value, np.generic) else value


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "labels": ["array-like", None],
        "k": [Interval(Integral, 1, None, closed="left"), None],
        "symmetric": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def most_confused_pairs(y_true, y_pred, *, labels=None, k=5, symmetric=False):
    """The pairs of classes most often confused, with their counts.

    Reads the off-diagonal cells of the confusion matrix computed by
    :func:`sklearn.metrics.confusion_matrix` and returns the ``k`` largest
    ones. Cells with a count of zero are never returned, so fewer than ``k``
    pairs come back when the classifier makes few kinds of mistakes.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.

    y_pred : array-like of shape (n_samples,)
        Predicted labels, as returned by a classifier.

    labels : array-like of shape (n_classes,), default=None
        The labels to consider, in the order used to break ties. By default,
        the sorted union of the labels in ``y_true`` and ``y_pred``. Samples
        whose true or predicted label is not in ``labels`` are ignored (as in
        :func:`sklearn.metrics.confusion_matrix`).

    k : int or None, default=5
        Number of pairs to return at most. ``None`` returns every confused
        pair.

    symmetric : bool, default=False
        If False, ``(a, b)`` and ``(b, a)`` are different pairs: true class
        ``a`` predicted as ``b``, and the reverse. If True, the two directions
        are added together and each unordered pair is returned once, as
        ``(a, b, count)`` with ``a`` before ``b`` in ``labels``.

    Returns
    -------
    pairs : list of tuple (true, predicted, count)
        The confused pairs, the largest count first. Ties are broken by the
        position of the true label in ``labels``, then by that of the
        predicted label, so the result is deterministic. Labels are returned
        as Python scalars (``int``, ``str``...) and counts as ``int``. With
        ``symmetric=True`` the first two items are the pair's two labels and
        the count covers both directions.

    See Also
    --------
    sklearn.metrics.confusion_matrix : The matrix the pairs are read from.
    sklearn.metrics.ConfusionMatrixDisplay : Plot the confusion matrix.

    Examples
    --------
    >>> from skdigits.metrics import most_confused_pairs
    >>> y_true = [3, 3, 3, 5, 5, 8, 8, 8, 9]
    >>> y_pred = [5, 5, 3, 3, 5, 3, 9, 8, 8]
    >>> most_confused_pairs(y_true, y_pred, k=3)
    [(3, 5, 2), (5, 3, 1), (8, 3, 1)]
    >>> most_confused_pairs(y_true, y_pred, symmetric=True)
    [(3, 5, 3), (8, 9, 2), (3, 8, 1)]

    Class names instead of labels: pass the names themselves.

    >>> names = {3: "three", 5: "five", 8: "eight", 9: "nine"}
    >>> most_confused_pairs([names[y] for y in y_true],
    ...                     [names[y] for y in y_pred], k=1)
    [('three', 'five', 2)]

    With the bundled MNIST sample and a quickly trained model:

    >>> from sklearn.metrics import ConfusionMatrixDisplay
    >>> from skdigits import SoftmaxRegression
    >>> from skdigits.datasets import load_mnist
    >>> train = load_mnist(sample=True)
    >>> test = load_mnist(subset="test", sample=True)
    >>> clf = SoftmaxRegression(max_iter=5, random_state=0)
    >>> clf = clf.fit(train.data / 255.0, train.target)
    >>> y_pred = clf.predict(test.data / 255.0)
    >>> pairs = most_confused_pairs(test.target, y_pred, k=3)
    >>> len(pairs), all(true != pred for true, pred, _ in pairs)
    (3, True)
    >>> disp = ConfusionMatrixDisplay.from_predictions(
    ...     test.target, y_pred, display_labels=test.target_names)
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if labels is None:
        labels = np.unique(np.concatenate([y_true.ravel(), y_pred.ravel()]))
    labels = np.asarray(labels)
    if labels.size < 2:
        # no pair to confuse (and sklearn warns about a 1x1 matrix)
        check_consistent_length(y_true, y_pred)
        return []
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    counts = cm.astype(np.int64)
    np.fill_diagonal(counts, 0)
    if symmetric:
        counts = np.triu(counts + counts.T)
    rows, cols = np.nonzero(counts)
    values = counts[rows, cols]
    # rows/cols come back in row-major order; a stable sort on the count
    # (largest first) keeps that order among ties
    order = np.argsort(-values, kind="stable")
    if k is not None:
        order = order[:k]
    return [
        (_python_scalar(labels[rows[i]]), _python_scalar(labels[cols[i]]),
         int(values[i]))
        for i in order
    ]


def _last_finite(curves):
    """Last finite value of each column of a 2-D array (NaN if none)."""
    out = np.full(curves.shape[1], np.nan)
    for j in range(curves.shape[1]):
        finite = np.flatnonzero(np.isfinite(curves[:, j]))
        if finite.size:
            out[j] = curves[finite[-1], j]
    return out


def per_class_loss_rankings(loss_per_class, *, class_names=None,
                            convergence_threshold=None):
    """Rank the classes by their loss history: hardest, and first converged.

    The rankings :class:`~skdigits.plotting.PerClassLossDisplay` shows,
    computed from a ``loss_curve_per_class_`` without drawing anything.

    Parameters
    ----------
    loss_per_class : array-like of shape (n_epochs, n_classes)
        The loss of each class at each epoch, as an estimator's
        ``loss_curve_per_class_``. Non-finite values (a class absent from
        an epoch) are skipped.

    class_names : array-like of shape (n_classes,), default=None
        The names used in the rankings; by default ``"0"``, ``"1"``...

    convergence_threshold : float, default=None
        The loss at or below which a class counts as converged. By default
        the mean of the classes' final losses, so the classes that get below
        the average early are those that converge first.

    Returns
    -------
    rankings : :class:`~sklearn.utils.Bunch`
        With ``final_loss`` (the last finite loss of each class, NaN for
        none), ``hardest`` (the names by final loss, highest first; ties
        keep the class order), ``convergence_threshold``,
        ``convergence_epoch`` (the first epoch, 1-based, at or below the
        threshold; ``inf`` for never) and ``converged_first`` (the names by
        convergence epoch, ties broken by the lower final loss).

    See Also
    --------
    skdigits.plotting.PerClassLossDisplay : Draw the curves with these
        rankings.

    Examples
    --------
    >>> from skdigits.metrics import per_class_loss_rankings
    >>> curves = [[0.9, 0.5, 0.7], [0.4, 0.45, 0.6], [0.2, 0.4, 0.6]]
    >>> ranks = per_class_loss_rankings(curves, class_names=["a", "b", "c"])
    >>> ranks.hardest
    ['c', 'b', 'a']
    >>> ranks.converged_first, ranks.convergence_epoch.tolist()
    (['a', 'b', 'c'], [2.0, 3.0, inf])
    """
    curves = np.asarray(loss_per_class, dtype=float)
    if curves.ndim != 2:
        raise ValueError(
            "loss_per_class must be 2-D (n_epochs, n_classes); got shape "
            f"{curves.shape}.")
    names = ([str(j) for j in range(curves.shape[1])] if class_names is None
             else [str(n) for n in np.asarray(class_names).tolist()])
    if len(names) != curves.shape[1]:
        raise ValueError(
            f"class_names holds {len(names)} names for {curves.shape[1]} classes.")
    final = _last_finite(curves)
    key = np.where(np.isnan(final), -np.inf, final)
    hardest = [names[j] for j in np.argsort(-key, kind="stable")]
    if convergence_threshold is None:
        finite = final[np.isfinite(final)]
        convergence_threshold = float(finite.mean()) if finite.size else np.nan
    below = curves <= convergence_threshold
    epoch = np.where(below.any(axis=0), below.argmax(axis=0) + 1.0, np.inf)
    tie = np.where(np.isnan(final), np.inf, final)
    converged_first = [names[j] for j in np.lexsort((tie, epoch))]
    return Bunch(final_loss=final, hardest=hardest,
                 convergence_threshold=convergence_threshold,
                 convergence_epoch=epoch, converged_first=converged_first)

