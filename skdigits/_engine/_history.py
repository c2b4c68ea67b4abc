"""The learning curves of a fit, one entry per epoch, kept in step.

Six curves: the training loss (the objective), the training accuracy, the
loss of each class, and with a validation split its accuracy
(``validation_scores_``), its loss and the loss of each class. An epoch
without validation (a fit without early stopping after one with it, or
``partial_fit``) gets NaN in the validation curves, so every curve always
has one entry per epoch.

``Checkpoint`` keeps the curves in step with everything else that says where
training stands (weights, optimizer moments and step count, the shuffle's
random state, the counters), so that an interrupted fit can go back to its
last recorded epoch as a whole.
"""

import numpy as np

__all__ = ["History", "Checkpoint"]

_LISTS = ("loss_curve_", "accuracy_curve_")
_VALIDATION = ("validation_scores_", "validation_loss_curve_")
_CURVES = (*_LISTS, "loss_curve_per_class_", *_VALIDATION,
           "validation_loss_curve_per_class_")
#: The estimator's values that say where training stands, besides the curves
#: and the arrays (``_theta``, ``_opt_state``, ``_rng_state``).
_VALUES = ("n_iter_", "_n_epochs_total", "_epochs_this_call", "t_", "_opt_t",
           "_adaptive_lr", "_no_improvement_count", "best_loss_",
           "best_validation_score_")


class History:
    """The curves of an estimator, continued from its fitted attributes.

    Parameters
    ----------
    n_classes : int
        Columns of the per-class curves.
    estimator : object, default=None
        A fitted estimator whose curves to continue (warm start,
        ``partial_fit``); None starts empty.
    validation : bool, default=False
        Whether this call validates: the validation curves then exist (padded
        with NaN for earlier epochs without validation).
    """

    def __init__(self, n_classes, estimator=None, validation=False):
        self.n_classes = n_classes
        self.loss = list(getattr(estimator, "loss_curve_", []) or [])
        self.accuracy = list(getattr(estimator, "accuracy_curve_", []) or [])
        per_class = getattr(estimator, "loss_curve_per_class_", None)
        self.per_class = (np.empty((0, n_classes)) if per_class is None
                          else np.array(per_class, dtype=float))
        scores = getattr(estimator, "validation_scores_", None)
        self.has_validation = scores is not None or validation
        n_epochs = len(self.loss)
        if scores is not None:
            self.val_scores = list(scores)
            self.val_loss = list(getattr(estimator, "validation_loss_curve_", []))
            self.val_per_class = np.array(
                getattr(estimator, "validation_loss_curve_per_class_"), dtype=float)
        elif validation:  # earlier epochs had no validation
            self.val_scores = [np.nan] * n_epochs
            self.val_loss = [np.nan] * n_epochs
            self.val_per_class = np.full((n_epochs, n_classes), np.nan)

    @property
    def n_epochs(self):
        return len(self.loss)

    def append(self, loss, accuracy, per_class, validation=None):
        """Record one epoch; ``validation`` is ``(score, loss, per_class)`` or
        None."""
        self.loss.append(float(loss))
        self.accuracy.append(float(accuracy))
        self.per_class = np.vstack([self.per_class, np.asarray(per_class)[None, :]])
        if not self.has_validation:
            return
        if validation is None:
            validation = (np.nan, np.nan, np.full(self.n_classes, np.nan))
        score, val_loss, val_per_class = validation
        self.val_scores.append(float(score))
        self.val_loss.append(float(val_loss))
        self.val_per_class = np.vstack(
            [self.val_per_class, np.asarray(val_per_class)[None, :]])

    def export(self, estimator):
        """Set the estimator's curve attributes (copies)."""
        estimator.loss_curve_ = list(self.loss)
        estimator.accuracy_curve_ = list(self.accuracy)
        estimator.loss_curve_per_class_ = self.per_class.copy()
        if self.has_validation:
            estimator.validation_scores_ = list(self.val_scores)
            estimator.validation_loss_curve_ = list(self.val_loss)
            estimator.validation_loss_curve_per_class_ = self.val_per_class.copy()
        else:
            estimator.validation_scores_ = None
            for name in ("validation_loss_curve_", "validation_loss_curve_per_class_"):
                estimator.__dict__.pop(name, None)


class Checkpoint:
    """A training state (``_state.TrainState``, or an estimator) at one
    moment: its weights, optimizer moments and step count, the shuffle's
    random state, the counters, the early-stopping figures and every curve.

    Taken after each recorded epoch, it is what an interrupted fit goes back
    to, so that all of these describe the same epoch. The arrays the kernels
    update in place are copied; the curves are not, since ``History.export``
    sets new objects for every epoch.

    Parameters
    ----------
    estimator : object
        The training state (or estimator) whose state to keep: the fitted
        attributes' names in its ``__dict__``.
    """

    def __init__(self, estimator):
        d = estimator.__dict__
        self.values = {name: d[name] for name in _VALUES + _CURVES if name in d}
        self.theta = d["_theta"].copy()
        self.opt_state = (tuple(a.copy() for a in d["_opt_state"])
                          if "_opt_state" in d else None)
        self.rng_state = d["_rng_state"].copy() if "_rng_state" in d else None

    def refresh(self, estimator):
        """Take the estimator's state again, copying its arrays into the ones
        kept here when they have the same shape and dtype (no new memory: a
        fit would otherwise hold two checkpoints while taking one). An
        interrupt midway leaves this checkpoint torn: the caller knows that
        the estimator itself then holds the state being taken."""
        d = estimator.__dict__
        self.values = {name: d[name] for name in _VALUES + _CURVES if name in d}
        self.theta = _copy_into(self.theta, d["_theta"])
        if "_opt_state" in d:
            kept = self.opt_state or (None,) * len(d["_opt_state"])
            self.opt_state = tuple(_copy_into(k, a)
                                   for k, a in zip(kept, d["_opt_state"]))
        else:
            self.opt_state = None
        self.rng_state = (_copy_into(self.rng_state, d["_rng_state"])
                          if "_rng_state" in d else None)

    def restore(self, estimator):
        """Put the estimator back in this state (the public weights are left
        to the caller, which exports them from ``_theta``)."""
        d = estimator.__dict__
        for name in _VALUES + _CURVES:
            if name in self.values:
                d[name] = self.values[name]
            else:
                d.pop(name, None)
        d["_theta"] = self.theta.copy()
        if self.opt_state is not None:
            d["_opt_state"] = tuple(a.copy() for a in self.opt_state)
        if self.rng_state is not None:
            d["_rng_state"] = self.rng_state.copy()


def _copy_into(kept, a):
    """``a`` copied into ``kept`` when it fits, else a new copy."""
    if (kept is not None and kept.shape == a.shape and kept.dtype == a.dtype
            and kept is not a):
        np.copyto(kept, a)
        return kept
    return a.copy()
