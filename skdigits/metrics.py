"""Metrics that complement :mod:`sklearn.metrics` for digit classifiers.

The confusion matrix itself is scikit-learn's: compute it with
:func:`sklearn.metrics.confusion_matrix` and draw it with
:class:`sklearn.metrics.ConfusionMatrixDisplay`. This module only adds
:func:`most_confused_pairs`, which reads the largest off-diagonal cells of
that matrix.
"""

from numbers import Integral

import numpy as np
from sklearn.metrics import confusion_matrix
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_consistent_length

__all__ = ["most_confused_pairs"]


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
