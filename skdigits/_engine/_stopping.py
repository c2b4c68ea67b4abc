"""When training stops improving: scikit-learn's MLP rule.

Without a validation split, an epoch counts as "no improvement" when its
training loss is above the best so far minus ``tol``; with one, when its
validation score (the accuracy, the negative loss, or a scorer's value:
higher is better) is below the best so far plus ``tol``, or NaN. Training stops after
more than ``n_iter_no_change`` such epochs in a row.
"""

import numpy as np

__all__ = ["NoImprovement"]


class NoImprovement:
    """The counter and the best values, continued across calls.

    Parameters
    ----------
    tol, n_iter_no_change : float, int
        The estimator's parameters.
    validation : bool
        Whether the rule watches the validation score (else the training
        loss).
    best_loss, best_score : float
        The best values so far (``inf`` / ``-inf`` for a new fit).
    count : int
        Epochs without improvement so far.
    """

    def __init__(self, tol, n_iter_no_change, validation, best_loss=np.inf,
                 best_score=-np.inf, count=0):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.validation = validation
        self.best_loss = best_loss
        self.best_score = best_score
        self.count = count

    def update(self, loss, score=None):
        """Record an epoch; returns True when it is the best so far (the
        lowest loss, or with validation the highest score)."""
        if self.validation:
            # a NaN score (a scorer undefined on the split) never improves
            improved = score > self.best_score
            self.count = 0 if score >= self.best_score + self.tol else self.count + 1
            if improved:
                self.best_score = score
            self.best_loss = min(self.best_loss, loss)
            return improved
        improved = loss < self.best_loss
        self.count = self.count + 1 if loss > self.best_loss - self.tol else 0
        if improved:
            self.best_loss = loss
        return improved

    @property
    def exhausted(self):
        """More than ``n_iter_no_change`` epochs without improvement."""
        return self.count > self.n_iter_no_change
