"""Learning-rate schedules: the rate at the start and at the end of an epoch.

The epoch kernels move the rate linearly from the first to the second value
over the epoch's minibatches, so a smooth schedule (cosine) changes at every
minibatch, not by steps. A schedule with a corner inside an epoch (the end
of the one-cycle warm-up) returns two more values, the rate at the corner
and where it falls (a fraction of the epoch): ``(lr0, lr1, lr_knee, knee)``.
``n_epochs`` is the number of epochs the schedule spans (the fit's
``max_iter``).

Every schedule keeps one promise, on which the estimators' check of a fit's
rates relies to cost a few calls whatever ``max_iter`` is: a rate that is not
finite at some epoch is not finite at any later one. The rates never rise
above the one they start from or peak at (``lr``), and the one computation
that can overflow, ``invscaling``'s ``(epoch + 1) ** power_t``, overflows
from some epoch on.
"""

import math

__all__ = ["SCHEDULES", "make_schedule"]


class Constant:
    """The same rate throughout."""

    def __init__(self, lr):
        self.lr = lr

    def rates(self, epoch, n_epochs):
        return self.lr, self.lr


class InvScaling:
    """``lr / (epoch + 1) ** power_t``, constant within an epoch."""

    def __init__(self, lr, power_t):
        self.lr = lr
        self.power_t = power_t

    def rates(self, epoch, n_epochs):
        rate = self.lr / (epoch + 1) ** self.power_t
        return rate, rate


class Cosine:
    """From ``lr`` down to zero over ``n_epochs`` along half a cosine."""

    def __init__(self, lr):
        self.lr = lr

    def _at(self, e, n_epochs):
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * min(e, n_epochs) / n_epochs))

    def rates(self, epoch, n_epochs):
        return self._at(epoch, n_epochs), self._at(epoch + 1, n_epochs)


class OneCycle:
    """Linear warm-up from zero to ``lr`` over the first ``warmup_fraction``
    of the ``n_epochs``, then linear decay to zero (a one-cycle schedule)."""

    def __init__(self, lr, warmup_fraction):
        self.lr = lr
        self.warmup = warmup_fraction

    def _at(self, e, n_epochs):
        p = min(e, n_epochs) / n_epochs
        if p < self.warmup:
            return self.lr * (p / self.warmup)
        return self.lr * ((1.0 - p) / (1.0 - self.warmup))

    def rates(self, epoch, n_epochs):
        lr0, lr1 = self._at(epoch, n_epochs), self._at(epoch + 1, n_epochs)
        p0, p1 = epoch / n_epochs, (epoch + 1) / n_epochs
        if p0 < self.warmup < p1:  # the peak falls inside this epoch
            return lr0, lr1, self.lr, (self.warmup - p0) / (p1 - p0)
        return lr0, lr1


class Step:
    """``lr * gamma ** (epoch // step_size)``."""

    def __init__(self, lr, step_size, gamma):
        self.lr = lr
        self.step_size = step_size
        self.gamma = gamma

    def rates(self, epoch, n_epochs):
        rate = self.lr * self.gamma ** (epoch // self.step_size)
        return rate, rate


class Adaptive:
    """scikit-learn's ``"adaptive"``: constant until the loss stops
    improving, then divided by 5 (``plateau``), down to 1e-6."""

    def __init__(self, lr):
        self.lr = lr

    def rates(self, epoch, n_epochs):
        return self.lr, self.lr

    def plateau(self):
        """Divide the rate by 5 if it is still above 1e-6; returns whether it
        was (False: the rate is spent, training should stop)."""
        if self.lr <= 1e-6:
            return False
        self.lr /= 5.0
        return True


SCHEDULES = ("constant", "invscaling", "adaptive", "cosine", "step", "onecycle")


def make_schedule(name, lr, *, power_t=0.5, step_size=10, gamma=0.1,
                  warmup_fraction=0.2):
    """The schedule called ``name`` starting from (peaking at) ``lr``."""
    if name == "onecycle":
        return OneCycle(lr, warmup_fraction)
    if name == "invscaling":
        return InvScaling(lr, power_t)
    if name == "cosine":
        return Cosine(lr)
    if name == "step":
        return Step(lr, step_size, gamma)
    if name == "adaptive":
        return Adaptive(lr)
    return Constant(lr)
