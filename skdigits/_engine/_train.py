"""The epoch loop: Python runs it, one kernel call per epoch.

``train`` runs the epochs of one ``fit`` or ``partial_fit`` call on a
``TrainState`` (see ``_state``), which the estimator copies into its fitted
attributes: the engine reads the estimator's parameters and never sets its
attributes. ``_Run`` holds what lives for that call only (the model's
buffers, the threads, the stopping rule, the best weights), so the estimator
keeps arrays and plain values only.
"""

import time
import warnings

import numpy as np
from scipy.sparse import issparse
from sklearn.exceptions import ConvergenceWarning

from .._cores import CoreShare
from .._kernels._batch import (
    F_KNEE,
    F_LR0,
    F_LR1,
    F_LRK,
    I_ACTIVATION,
    I_EPOCH,
    I_LOSS,
    I_N_OUT,
    I_NESTEROV,
    I_SEED,
    I_SOLVER,
    N_IOPT,
    float_options,
)
from .._kernels._losses import loss_grad
from .._kernels._rng import shuffle
from .._logging import Progress, fit_outcome, verbose_logger
from .._sklearn_callbacks import NO_TASKS
from ._history import Checkpoint, History
from ._models import Accumulators, aligned, no_labels
from ._state import TrainState
from ._stopping import NoImprovement
from ._team import Team, interrupts_deferred

__all__ = ["train", "TrainingDivergedError", "evaluate"]


class TrainingDivergedError(FloatingPointError, ValueError):
    """Training produced a non-finite loss or non-finite weights."""


def evaluate(model, team, n_threads, X, y, w, rows, theta, n_classes, Y=None):
    """Plain cross-entropy (no penalty, no label smoothing), accuracy and
    per-class loss of ``theta`` on the rows ``rows`` (the validation split),
    in float64."""
    Z = model.logits(team, n_threads, X, rows, theta)
    acc = Accumulators(1, n_classes, model.n_outputs)
    with interrupts_deferred():  # a kernel outside a team (see Team)
        loss_grad(Z, y[rows], no_labels() if Y is None else Y,
                  w[rows].astype(np.float64), len(rows), model.loss, 0.0, 0.0,
                  acc.class_loss[0], acc.class_weight[0], acc.col_loss[0],
                  acc.stats[0])
    sums = acc.totals()
    return (sums.mean_loss(), sums.accuracy(),
            sums.per_class(model.loss, model.n_outputs))


def train(est, model, X, y, w, train_idx, val_idx, n_epochs, incremental, Y=None,
          tasks=NO_TASKS, publish=None, score=None):
    """Run up to ``n_epochs`` epochs of ``est`` (its parameters, and the
    fitted state it holds: ``_theta``, ``_opt_state``, ``_opt_t``,
    ``_rng_state``...) on the rows ``train_idx``, validating on ``val_idx``
    (or None); returns the ``TrainState`` it ends in. ``Y``: the multi-label
    indicator matrix (``y`` then indexes its rows), or None. ``tasks``:
    scikit-learn's callback hooks of this fit, one subtask per epoch (see
    ``skdigits._sklearn_callbacks``). ``publish(state)``, the estimator's,
    copies the state into its attributes: called after each recorded epoch
    (before the callbacks, which see that epoch's model), when training ends
    and before an error leaves. ``score(state, val_loss, val_accuracy)``: the
    validation score early stopping watches (higher is better), given the
    state holding the epoch's weights and the validation figures measured;
    None watches the validation accuracy. A ``score`` whose attribute
    ``predicts`` is true predicts with the state: the engine sets the state's
    public weights first.

    A KeyboardInterrupt becomes a warning, as in scikit-learn's MLP, once an
    epoch is recorded: wherever it lands, the state goes back to the
    checkpoint taken after its last recorded epoch, so its weights, optimizer
    state, random state, counters and curves all describe that epoch, as the
    uninterrupted fit held them after it (so a later call continues
    alike). Another exception (a scorer's, a callback's) goes back to that
    checkpoint too, publishes it and propagates. The state returned has been
    published."""
    state = TrainState(est)
    run = _Run(est, model, state, X, y, w, train_idx, val_idx, n_epochs, incremental,
               Y, publish, score)
    with CoreShare(est.n_jobs) as share, Team() as team:
        run.start()
        try:
            for epoch in range(n_epochs):
                tasks.begin()
                figures = run.epoch(team, share.threads(), epoch)
                run.record(figures)
                if tasks.end():
                    run.callback_stop = True
                if run.should_stop(figures):
                    break
            else:
                run.max_iter_reached()
            run.finish()
        except KeyboardInterrupt:
            run.rollback()
            if state._epochs_this_call == 0:
                raise  # nothing to keep: the estimator goes back as it was
            tasks.abandon()
            warnings.warn(
                f"Training interrupted by the user after {state.n_iter_} epochs; "
                "the model keeps the weights of the last finished epoch.")
            run.finish()
        except TrainingDivergedError:
            raise  # rolled back and published by run.epoch
        except Exception:
            # a scorer or callback that raises after the kernel updated the
            # shared weights in place: back to the last recorded epoch, so
            # that the estimator's weights agree with its counters and curves
            run.rollback()
            if state._epochs_this_call > 0:
                run.publish_weights()
            raise
        finally:
            run.close()
    return state


class _Run:
    """The state of one ``fit``/``partial_fit`` call."""

    def __init__(self, est, model, state, X, y, w, train_idx, val_idx, n_epochs,
                 incremental, Y=None, publish=None, score=None):
        self.est, self.model, self.state = est, model, state
        # what early stopping watches; val_score is shown beside val_loss and
        # val_accuracy when it is not the accuracy
        self.named_score = score is not None and est.scoring is not None
        self.score = ((lambda state, loss, accuracy: accuracy) if score is None
                      else score)
        self.publish = (lambda state: None) if publish is None else publish
        self.X, self.y, self.w = X, y, w
        self.Y = no_labels() if Y is None else Y
        self.order = np.array(train_idx, dtype=np.int64)
        self.val_idx = val_idx
        self.n_epochs = n_epochs
        self.incremental = incremental
        self.n_classes = len(est.classes_)
        self.batch_size = est._batch_size(len(self.order))
        self.early = val_idx is not None
        # validation rows that all weigh zero would give 0/0 figures: measure
        # them unweighted instead
        self.w_val = w if not self.early or w[val_idx].sum() > 0 else np.ones_like(w)
        # the curves continue those of earlier calls (a first fit has none)
        self.history = History(self.n_classes, state, validation=self.early)
        best_score = getattr(state, "best_validation_score_", None)
        best_loss = getattr(state, "best_loss_", None)
        self.stopper = NoImprovement(
            est.tol, est.n_iter_no_change, self.early,
            np.inf if best_loss is None else best_loss,
            -np.inf if best_score is None else best_score, state._no_improvement_count)
        self.schedule = est._schedule()
        self.l2_fixed, self.l2_per_row, self.penalty_scale = est._l2(self.batch_size)
        self.callbacks = est._callbacks()
        self.log = verbose_logger(type(est).__module__, est.verbose)
        self.progress = Progress(n_epochs, est.verbose >= 2, type(est).__name__)
        self.best_theta = None
        if self.early and getattr(state, "validation_scores_", None):
            self.best_theta = state._theta.copy()  # continuing an early-stopped fit
        self.checkpoint = None
        self.refreshing = False
        self.stopped_by = None
        self.lowered_lr = False

    def start(self):
        dtype = self.state._theta.dtype
        self.ws = self.model.workspace(self.batch_size, dtype, sparse=issparse(self.X))
        self.acc = Accumulators.for_batches(self.batch_size, self.n_classes,
                                            self.model.n_outputs)
        est = self.est
        self.iopt = np.zeros(N_IOPT, dtype=np.int64)
        # dropout (the MLP's): its masks are keyed by the fit's seed, the
        # epoch (counting those of earlier calls) and the row (see _kernels._mlp)
        dropout = float(getattr(est, "dropout", 0.0))
        self.iopt[[I_ACTIVATION, I_LOSS, I_SOLVER, I_NESTEROV, I_N_OUT, I_SEED]] = (
            getattr(self.model, "activation", 0), self.model.loss, est._solver_code(),
            int(est.nesterovs_momentum), self.model.n_outputs,
            getattr(est, "_dropout_seed", 0) if dropout > 0 else 0)
        self.fopt = float_options(
            0.0, l2_fixed=self.l2_fixed, l2_per_row=self.l2_per_row,
            momentum=est.momentum, beta1=est.beta_1, beta2=est.beta_2,
            eps=est.epsilon, smooth=est.label_smoothing, dropout=dropout)
        self.commit()

    def penalty(self, theta):
        return self.penalty_scale * self.model.penalty_norm(theta)

    def epoch(self, team, n_threads, epoch):
        """Train one epoch; returns its figures, or raises
        ``TrainingDivergedError`` (the weights back at the last good epoch)."""
        est, model, state = self.est, self.model, self.state
        rates = est._epoch_rates(self.schedule, epoch, self.n_epochs,
                                 self.incremental)
        lr0, lr1 = rates[:2]
        lr_knee, knee = rates[2:] if len(rates) == 4 else (lr1, 1.0)
        # on cache lines, so that no line is written by two threads
        state._theta = aligned(state._theta)
        state._opt_state = tuple(aligned(a) for a in state._opt_state)
        if est.shuffle:
            # a kernel called outside a team: Ctrl-C held back here too, so
            # that it cannot cut a first compile short (see Team)
            with interrupts_deferred():
                shuffle(self.order, state._rng_state)
        self.acc.reset()
        self.fopt[[F_LR0, F_LR1, F_LRK, F_KNEE]] = lr0, lr1, lr_knee, knee
        self.iopt[I_EPOCH] = state._n_epochs_total  # dropout's key
        n_threads = min(n_threads, model.max_threads(self.batch_size))
        tic = time.perf_counter()
        t = model.run_epoch(team, n_threads, self.X, self.y, self.Y, self.w, self.order,
                            state._theta, state._opt_state, self.ws, self.acc,
                            self.iopt, self.fopt, state._opt_t)
        elapsed = time.perf_counter() - tic
        sums = self.acc.totals()
        loss = sums.mean_loss() + self.penalty(state._theta)
        if not (np.isfinite(loss) and np.all(np.isfinite(state._theta))):
            self.rollback(fresh_moments=True)
            self.publish_weights()
            raise TrainingDivergedError(est._diverged_message(loss, self.X))
        state._opt_t = t
        figures = {"loss": float(loss), "accuracy": sums.accuracy(),
                   "lr": lr1, "time": elapsed,
                   "per_class": sums.per_class(model.loss, model.n_outputs)}
        if self.early:
            val_loss, val_acc, val_pc = evaluate(
                model, team, n_threads, self.X, self.y, self.w_val, self.val_idx,
                state._theta, self.n_classes, self.Y)
            figures.update(val_loss=val_loss, val_accuracy=val_acc,
                           val_per_class=val_pc)
            if getattr(self.score, "predicts", False):  # with the epoch's weights
                state.weights = model.unpack(state._theta)
            figures["val_score"] = self.score(state, val_loss, val_acc)
        return figures

    def record(self, f):
        """Add the epoch to the curves and the public attributes, apply the
        plateau rule, and take the checkpoint (so callbacks, and an exception
        or interrupt in one, see a consistent model); then log, show
        progress, call the callbacks."""
        est, state = self.est, self.state
        validation = ((f["val_score"], f["val_loss"], f["val_per_class"])
                      if self.early else None)
        self.history.append(f["loss"], f["accuracy"], f["per_class"], validation)
        state.n_iter_ += 1
        state._n_epochs_total += 1
        state._epochs_this_call += 1
        state.t_ += len(self.order)
        self.history.export(state)
        improved = self.stopper.update(f["loss"], f.get("val_score"))
        if self.early and improved:
            self.best_theta = state._theta.copy()
        state._no_improvement_count = self.stopper.count
        # scikit-learn's convention: with early stopping the validation score
        # plays the role of best_loss_, which is None
        state.best_loss_ = None if self.early else self.stopper.best_loss
        if self.early:
            state.best_validation_score_ = self.stopper.best_score
        state.weights = self.model.unpack(state._theta)
        self.plateau()
        self.commit()
        self.publish(state)
        shown = {k: f[k] for k in ("loss", "accuracy", "lr", "val_loss", "val_accuracy")
                 if k in f}
        if self.named_score:
            shown["val_score"] = f["val_score"]
        if est.verbose:
            self.log.info("Epoch %d, %s, %.3fs", state._n_epochs_total,
                          ", ".join(f"{k} = {v:.6g}" for k, v in shown.items()),
                          f["time"])
            if self.lowered_lr:
                self.log.info("Setting learning rate to %f", self.schedule.lr)
        self.progress.update(**{k: v for k, v in shown.items() if k != "lr"})
        self.callback_stop = bool(self.callbacks) and est._call_callbacks(
            self.callbacks, shown, f["time"], f["per_class"], f.get("val_per_class"))

    def plateau(self):
        """sgd's ``"adaptive"`` rate: after ``n_iter_no_change`` epochs
        without improvement, divide the rate and start counting again (part
        of the epoch's state, so before the checkpoint)."""
        est = self.est
        self.lowered_lr = (self.stopper.exhausted and est.learning_rate == "adaptive"
                           and est.solver == "sgd" and self.schedule.plateau())
        if self.lowered_lr:
            self.state._adaptive_lr = self.schedule.lr
            self.stopper.count = self.state._no_improvement_count = 0

    def should_stop(self, f):
        """Whether to end the call after this epoch (a callback asked, or no
        improvement for ``n_iter_no_change`` epochs)."""
        est = self.est
        if self.callback_stop:
            self.stopped_by = "callback"
            if est.verbose:
                self.log.info("Training stopped by a callback after %d epochs.",
                              self.state.n_iter_)
            return True
        if self.stopper.exhausted:
            if self.incremental:  # partial_fit never stops by itself
                return True
            self.stopped_by = "tol"
            if est.verbose:
                self.log.info(
                    "Training stopped after %d epochs: %s did not improve by more "
                    "than tol=%g for %d consecutive epochs.", self.state.n_iter_,
                    self.watched() if self.early else "training loss", est.tol,
                    est.n_iter_no_change)
            return True
        return self.incremental

    def watched(self):
        """What early stopping watches, for the log."""
        name = getattr(self.est, "_validation_scoring", "accuracy")
        if name == "accuracy" and not self.named_score:
            return "validation score"  # scikit-learn's words
        if name == "loss":
            return "validation loss"
        return f"validation score ({name})"

    def max_iter_reached(self):
        est = self.est
        # a schedule that anneals to zero over max_iter epochs ends there by
        # design, as does max_iter="auto"'s budget: no warning for those
        if not self.incremental and est.max_iter != "auto" \
                and est.learning_rate not in ("cosine", "onecycle"):
            warnings.warn(
                f"{type(est).__name__}: maximum iterations ({est.max_iter}) reached "
                "and the optimization hasn't converged yet.", ConvergenceWarning)

    def commit(self):
        """Take the checkpoint of the epoch just recorded (or of the start):
        one assignment, so that an interrupt leaves the previous one whole.
        Later checkpoints reuse the first one's arrays (a fit holding two
        while taking one needed three more copies of the parameters); while
        one is being refreshed, the training state itself holds the state
        being kept, so an interrupt then keeps that (see ``rollback``)."""
        if self.checkpoint is None:
            self.checkpoint = (Checkpoint(self.state), self.best_theta)
            return
        self.refreshing = True
        self.checkpoint[0].refresh(self.state)
        self.checkpoint = (self.checkpoint[0], self.best_theta)
        self.refreshing = False

    def rollback(self, fresh_moments=False):
        """Go back to the checkpoint: the weights, optimizer state, random
        state, counters and curves of the last recorded epoch, as a whole;
        ``fresh_moments`` also clears the optimizer state (after a
        divergence, so that a later call can recover)."""
        if self.checkpoint is None:
            return
        state = self.state
        if self.refreshing:  # the training state holds the state being kept
            self.refreshing = False
            self.checkpoint = None  # torn: the training state is the one
            if fresh_moments:
                state._opt_state = self.model.new_state(state._theta.dtype)
                state._opt_t = 0
            return
        checkpoint, self.best_theta = self.checkpoint
        checkpoint.restore(state)
        if fresh_moments:
            state._opt_state = self.model.new_state(state._theta.dtype)
            state._opt_t = 0

    def close(self):
        self.progress.close()

    def publish_weights(self):
        """Give the state the public weights of its parameters and hand it to
        the estimator (``publish``)."""
        self.state.weights = self.model.unpack(self.state._theta)
        self.publish(self.state)

    def finish(self):
        state = self.state
        if self.early and self.best_theta is not None:
            state._theta = self.best_theta  # the best validation epoch's weights
        state._stopped_by = self.stopped_by
        self.publish_weights()
        # the bar ends saying where and why training stopped
        self.progress.finish(fit_outcome(state, self.n_epochs, self.progress.n))
