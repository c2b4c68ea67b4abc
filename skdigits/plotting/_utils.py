"""Helpers shared by the displays: class names, epoch windows, axis limits.

Nothing here imports matplotlib.
"""

from collections.abc import Mapping
from numbers import Integral

import numpy as np


def _is_integer_label(value):
    return isinstance(value, (Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def _label_name(label, label_names):
    """Display name of one label value.

    ``label_names`` may be None (the label itself, as text), a mapping from
    label to name, or a sequence indexed by integer labels (such as the
    ``target_names`` of :func:`skdigits.datasets.load_mnist`). Labels that are
    not integers (class names already) are used as they are.
    """
    if isinstance(label, np.generic):
        label = label.item()
    if label_names is None:
        return str(label)
    if isinstance(label_names, Mapping):
        return str(label_names.get(label, label))
    if _is_integer_label(label):
        if not 0 <= label < len(label_names):
            raise ValueError(
                f"label {label} has no name: label_names holds {len(label_names)} "
                "names, indexed by the integer labels 0.."
                f"{len(label_names) - 1}. Pass a dict to name other labels."
            )
        return str(label_names[label])
    return str(label)


def _class_names(classes, class_names):
    """One display name per entry of ``classes`` (an estimator's ``classes_``).

    ``class_names`` may be None (the classes as text), a mapping from class
    to name, a sequence with one name per class (in the order of
    ``classes``) or, for integer classes, a sequence indexed by the class
    value (such as ``load_mnist(...).target_names`` for a model trained on
    some of the ten classes).
    """
    classes = list(np.asarray(classes).tolist())
    if class_names is None or isinstance(class_names, Mapping):
        return [_label_name(c, class_names) for c in classes]
    class_names = list(np.asarray(class_names, dtype=object).tolist())
    if len(class_names) == len(classes):
        return [str(name) for name in class_names]
    if all(_is_integer_label(c) and 0 <= c < len(class_names) for c in classes):
        return [str(class_names[c]) for c in classes]
    raise ValueError(
        f"class_names holds {len(class_names)} names for {len(classes)} classes "
        f"({classes}): give one name per class, a sequence indexed by the "
        "integer classes, or a dict from class to name."
    )


def _resolve_start(start, n_epochs):
    """First epoch shown (1-based) from ``start``; negative counts from the end."""
    if n_epochs < 1:
        raise ValueError("There is nothing to plot: the curves hold no epoch.")
    if not _is_integer_label(start) or start == 0:
        raise ValueError(
            f"start must be a non-zero integer (an epoch, 1 to {n_epochs}, or a "
            f"negative number counting from the last epoch); got {start!r}."
        )
    first = start if start > 0 else n_epochs + start + 1
    if not 1 <= first <= n_epochs:
        raise ValueError(
            f"start={start} is outside the {n_epochs} epochs recorded "
            f"(use 1 to {n_epochs}, or -1 to -{n_epochs})."
        )
    return int(first)


#: Curves whose values differ by at most this fraction of their size are
#: drawn as flat (see ``_zoom``).
FLAT_RELATIVE = 1e-9


def _zoom(ax, curves, first, n_epochs, log_scale, margin=0.05):
    """Set the x-limits to ``[first, n_epochs]`` and the y-limits to the range
    of ``curves`` (2-D, one column per line) over those epochs, widened by
    ``margin`` of that range on each side (in log space on a log scale).
    Returns the limits set, ``(xlim, ylim)``."""
    if first == n_epochs:
        xlim = (first - 0.5, first + 0.5)
    else:
        xlim = (first, n_epochs)
    ax.set_xlim(*xlim)
    window = np.concatenate([np.asarray(c, dtype=float)[first - 1:n_epochs].ravel()
                             for c in curves])
    window = window[np.isfinite(window)]
    if log_scale:
        window = window[window > 0]
    if window.size == 0:
        return xlim, ax.get_ylim()
    lo, hi = float(window.min()), float(window.max())
    # values a few ulps apart (every class at ln 10 after one epoch) are one
    # value: their "range" made a y-axis 4e-16 high, blank and unlabelled
    flat = hi - lo <= FLAT_RELATIVE * max(abs(lo), abs(hi))
    if log_scale:
        ratio = 1.1 if flat else hi / lo
        ylim = (lo / ratio ** margin, hi * ratio ** margin)
    else:
        span = max(abs(hi), 1.0) * 0.1 if flat else hi - lo
        ylim = (lo - margin * span, hi + margin * span)
    ax.set_ylim(*ylim)
    return xlim, ylim
