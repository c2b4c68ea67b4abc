"""The full-batch solver: scipy's L-BFGS-B on the loss and gradient of all
training rows, computed by the epoch kernels.

The objective is scikit-learn's: the weighted mean loss over the training
rows plus ``l2 / 2 * ||W||^2`` (``l2`` chosen by the estimator: scikit-learn's
MLP divides ``alpha`` by the total sample weight). Each evaluation runs one
"epoch" of the model's kernels over the rows in their order, in blocks of
``BLOCK_ROWS`` (so memory stays bounded), with the ``GRADIENT`` solver code:
the kernels add each block's gradient into an accumulator instead of taking
a step. scipy owns the iterations; Python records one entry of every curve
per iteration, as the minibatch engine does per epoch.
"""

import time
import warnings

import numpy as np
import scipy.optimize
from scipy.sparse import issparse
from sklearn.utils.optimize import _check_optimize_result

from .._cores import CoreShare
from .._kernels._batch import (
    I_ACTIVATION,
    I_LOSS,
    I_N_OUT,
    I_SOLVER,
    N_IOPT,
    float_options,
)
from .._kernels._optim import GRADIENT
from .._logging import Progress, verbose_logger
from .._sklearn_callbacks import NO_TASKS
from ._history import Checkpoint, History
from ._models import Accumulators, aligned, aligned_zeros, no_labels
from ._state import TrainState
from ._team import Team
from ._train import TrainingDivergedError

__all__ = ["train_lbfgs", "BLOCK_ROWS"]

#: Rows per block of a loss-and-gradient evaluation.
BLOCK_ROWS = 1024

#: Evaluations one line search may take (scipy's default is 20), as
#: scikit-learn's ``LogisticRegression``. Features of magnitude ``s`` make the
#: first trial step (``1 / ||gradient||`` along it, weights of order one) about
#: ``s`` times too long, and each backtrack shortens it about fourfold: 20 reach
#: ``s`` near 1e12, 50 about 1e25 to 1e30 (beyond, ``_refuse_stuck_start``).
MAX_LINE_SEARCH = 50

#: Feature magnitude beyond which a failed first step is blamed on the data
#: (as the minibatch solvers' divergence message).
LARGE_FEATURES = 1e6


def _refuse_stuck_start(est, result, X, x0):
    """Raise ``TrainingDivergedError`` when L-BFGS left the starting weights
    ``x0`` as they were on features too large to train on: a line search
    that gave up, or an iteration that scipy counts (and may even call a
    success, "relative reduction of f") that moved nothing. Otherwise the
    starting weights came back as a model, with a ConvergenceWarning or with
    no warning at all. Starting weights whose gradient is already within
    ``tol`` (a warm start of a converged model) are an optimum, not stuck."""
    if not np.array_equal(result.x, x0):
        return
    jac = np.asarray(getattr(result, "jac", np.inf))
    if np.max(np.abs(jac), initial=0.0) <= est.tol:
        return  # an optimum already (a warm start of a converged model)
    with np.errstate(over="ignore", invalid="ignore"):
        values = X.data if issparse(X) else X
        top = float(np.max(np.abs(values))) if values.size else 0.0
    if top > LARGE_FEATURES:
        raise TrainingDivergedError(
            f"{type(est).__name__}: L-BFGS could not take a single step: the "
            f"features reach magnitude {top:.3g}, too large to train on: scale "
            "them first (e.g. pixels / 255 or StandardScaler).")


class _Objective:
    """The loss and gradient of ``theta`` over the training rows, with the
    figures of the last evaluation (for the curves)."""

    def __init__(self, est, model, X, y, w, rows, Y, l2, team, n_threads):
        self.model, self.X, self.y, self.w = model, X, y, w
        self.Y = no_labels() if Y is None else Y
        self.order = np.array(rows, dtype=np.int64)
        self.team, self.l2 = team, l2
        dtype = est._theta.dtype
        block = max(1, min(BLOCK_ROWS, len(self.order)))
        self.n_threads = max(1, min(n_threads, model.max_threads(block)))
        self.ws = model.workspace(block, dtype, sparse=issparse(X))
        self.acc = Accumulators.for_batches(block, len(est.classes_), model.n_outputs)
        self.theta = aligned_zeros(model.n_params, dtype)
        self.state = (aligned_zeros(model.n_params, dtype),
                      aligned_zeros(model.n_params, dtype))
        self.mask = model.weight_mask()
        self.iopt = np.zeros(N_IOPT, dtype=np.int64)
        self.iopt[[I_ACTIVATION, I_LOSS, I_SOLVER, I_N_OUT]] = (
            getattr(model, "activation", 0), model.loss, GRADIENT, model.n_outputs)
        total = float(np.sum(w[self.order], dtype=np.float64))
        self.fopt = float_options(0.0, smooth=est.label_smoothing, scale=1.0 / total)
        self.last = None

    def __call__(self, x):
        self.theta[:] = x
        self.state[0][:] = 0
        self.acc.reset()
        self.model.run_epoch(self.team, self.n_threads, self.X, self.y, self.Y, self.w,
                             self.order, self.theta, self.state, self.ws, self.acc,
                             self.iopt, self.fopt, 0)
        sums = self.acc.totals()
        theta = self.theta.astype(np.float64)
        weights = theta[self.mask]
        with np.errstate(over="ignore", invalid="ignore"):
            loss = sums.mean_loss() + 0.5 * self.l2 * float(np.dot(weights, weights))
            grad = self.state[0].astype(np.float64)
            grad[self.mask] += self.l2 * weights
        if not np.isfinite(loss):
            loss = np.inf
        self.last = (np.array(x, copy=True), float(loss), sums.accuracy(),
                     sums.per_class(self.model.loss, self.model.n_outputs))
        return float(loss), grad

    def figures(self, x):
        """``(loss, accuracy, per_class)`` at ``x`` (evaluated again unless it
        was the last point)."""
        if self.last is None or not np.array_equal(self.last[0], x):
            self(x)
        return self.last[1:]


def train_lbfgs(est, model, X, y, w, rows, max_iter, Y, l2, tasks=NO_TASKS,
                publish=None):
    """Minimise ``est``'s full-batch objective over the rows ``rows`` from its
    current weights (``est._theta``) with at most ``max_iter`` iterations and
    ``est.max_fun`` evaluations; returns the ``TrainState`` it ends in (the
    weights, the curves, one entry per iteration, and ``n_iter_``), which
    ``publish(state)`` copies into the estimator after each iteration and at
    the end (see ``_train.train``). ``Y``: the multi-label
    indicator matrix, or None. ``tasks``: scikit-learn's callback hooks of
    this fit, one subtask per iteration (see ``skdigits._sklearn_callbacks``):
    scipy reports an iteration once it is done, so each report ends one and
    begins the next, and the one begun after the last iteration ends empty,
    as in scikit-learn's ``LogisticRegression``."""
    publish = (lambda state: None) if publish is None else publish
    state = TrainState(est)
    history = History(len(est.classes_), state)
    log = verbose_logger(type(est).__module__, est.verbose)
    progress = Progress(max_iter, est.verbose >= 2, type(est).__name__)
    callbacks = est._callbacks()
    dtype = state._theta.dtype
    x0 = state._theta.astype(np.float64)
    # the state after the last recorded iteration, what an interrupt keeps
    checkpoint = [Checkpoint(state)]
    tic = [time.perf_counter()]

    with CoreShare(est.n_jobs) as share, Team() as team:
        objective = _Objective(est, model, X, y, w, rows, Y, l2, team, share.threads())

        def record(intermediate_result):
            x = intermediate_result.x
            loss, accuracy, per_class = objective.figures(x)
            state._theta = aligned(x.astype(dtype))
            history.append(loss, accuracy, per_class)
            state.n_iter_ += 1
            state._n_epochs_total += 1
            state._epochs_this_call += 1
            history.export(state)
            state.best_loss_ = min(state.best_loss_, loss)
            state.weights = model.unpack(state._theta)
            checkpoint[0] = Checkpoint(state)  # one assignment: all or nothing
            publish(state)
            elapsed = time.perf_counter() - tic[0]
            tic[0] = time.perf_counter()
            if est.verbose:
                log.info("Iteration %d, loss = %.6g, accuracy = %.6g, %.3fs",
                         state._n_epochs_total, loss, accuracy, elapsed)
            progress.update(loss=loss, accuracy=accuracy)
            shown = {"loss": loss, "accuracy": accuracy, "lr": np.nan}
            stop = bool(callbacks) and est._call_callbacks(callbacks, shown, elapsed,
                                                          per_class, None)
            stop = tasks.end() or stop
            if stop:
                raise StopIteration  # scipy ends the minimisation here
            tasks.begin()

        tasks.begin()
        try:
            result = scipy.optimize.minimize(
                objective, x0, method="L-BFGS-B", jac=True, callback=record,
                options={"maxiter": max_iter, "maxfun": getattr(est, "max_fun", 15000),
                         "gtol": est.tol, "maxls": MAX_LINE_SEARCH})
        except KeyboardInterrupt:
            checkpoint[0].restore(state)  # wherever it landed
            if state._epochs_this_call == 0:
                raise
            result = None
            warnings.warn(
                f"Training interrupted by the user after {state.n_iter_} iterations; "
                "the model keeps the weights of the last finished iteration.")
        finally:
            progress.close()
    tasks.abandon()
    if result is not None:
        _refuse_stuck_start(est, result, X, x0)
    x = state._theta if result is None else result.x
    theta = aligned(np.asarray(x).astype(dtype))
    if not np.all(np.isfinite(theta)):
        raise TrainingDivergedError(
            f"{type(est).__name__}: L-BFGS produced non-finite weights; scale the "
            "features (e.g. pixels / 255 or StandardScaler) or use a larger alpha.")
    state._theta = theta
    if state._epochs_this_call == 0:  # no iteration: the curves exist all the same
        history.export(state)
    state.weights = model.unpack(theta)
    state._stopped_by = None
    if result is not None:
        # scikit-learn's reading of the result: n_iter_ and a ConvergenceWarning
        # when it stopped at max_iter or max_fun
        if result.status == 99 or "callback" in str(result.message).lower():
            state._stopped_by = "callback"
            state.n_iter_ = int(result.nit)
        else:
            state.n_iter_ = _check_optimize_result("lbfgs", result, max_iter)
        if est._has_loss_attribute:  # sklearn's MLP: loss_ = the final objective
            state.loss_ = float(result.fun)
    publish(state)
    return state
