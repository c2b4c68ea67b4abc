"""The shared base of skdigits classifiers: parameters, the Python epoch loop,
learning curves, early stopping and batched prediction.

Subclasses supply the model: its output layout, parameter initialisation, the
compiled epoch kernel and the forward pass used for evaluation. Python owns the
loop over epochs (schedules, curves, stopping, logging, progress, Ctrl-C); each
epoch is one call into compiled code.
"""

import math
import time
import warnings
from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._kernels._losses import loss_grad
from ._kernels._optim import ADAM, SGD
from ._kernels._rng import new_state, shuffle
from ._threads import BlasTuner, fixed_threads
from ._logging import Progress, verbose_logger
from ._validation import (
    encode_labels,
    training_weights,
    validate_fit_data,
    validate_predict_data,
)

SOLVERS = {"sgd": SGD, "adam": ADAM}

#: Rows per block when predicting, so memory stays bounded on any input size.
PREDICT_BLOCK_ROWS = 2048



class TrainingDivergedError(FloatingPointError, ValueError):
    """Training produced a non-finite loss or non-finite weights."""


class BaseMinibatchClassifier(ClassifierMixin, BaseEstimator):
    """Base class of the minibatch classifiers (not for direct use)."""

    #: Minibatch updates that ``max_iter="auto"`` aims for, and the bounds on
    #: the number of epochs it may give.
    _auto_updates = 700
    _auto_min_epochs = 3
    _auto_max_epochs = 200

    _parameter_constraints: dict = {
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"),
                       StrOptions({"auto"})],
        "learning_rate": [
            StrOptions({"constant", "invscaling", "adaptive", "cosine", "step"})
        ],
        "lr_step_size": [Interval(Integral, 1, None, closed="left")],
        "lr_gamma": [Interval(Real, 0, 1, closed="right")],
        "callbacks": [list, tuple, callable, None],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left"),
                     StrOptions({"auto"})],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    # ------------------------------------------------------------------
    # model hooks
    @abstractmethod
    def _output_layout(self, n_classes):
        """Return ``(n_outputs, loss_code)`` for ``n_classes`` classes."""

    @abstractmethod
    def _init_theta(self, n_features, n_outputs, rng, dtype):
        """A new flat parameter vector."""

    @abstractmethod
    def _make_workspace(self, n_features, dtype, batch_size):
        """Buffers for the epoch kernel, allocated once per fit."""

    @abstractmethod
    def _run_epoch(self, X, y, w, order, ws, lr0, lr1, t, acc):
        """Call the compiled epoch kernel on the rows ``order`` (already
        shuffled: the kernel must not shuffle), with the learning rate moving
        from ``lr0`` to ``lr1``; return the new step count."""

    @abstractmethod
    def _forward(self, X_block, theta):
        """Logits of a block of rows (``n_rows, n_outputs``)."""

    @abstractmethod
    def _export_params(self, theta):
        """Set the public fitted attributes (``coef_``...) from ``theta``."""

    # ------------------------------------------------------------------
    # parameters
    def _more_validate_params(self):
        """Checks beyond the constraints table, made before anything is set."""
        self._callbacks()
        fixed_threads()  # a bad SKDIGITS_BLAS_THREADS fails here, not mid-fit

    def _batch_size(self, n_train):
        """Rows per minibatch: ``batch_size`` ("auto": 200, as in scikit-learn),
        at most ``n_train``."""
        size = 200 if self.batch_size == "auto" else int(self.batch_size)
        return max(1, min(size, n_train))

    def _resolve_max_iter(self, n_train):
        if self.max_iter != "auto":
            return int(self.max_iter)
        n_batches = math.ceil(n_train / self._batch_size(n_train))
        epochs = math.ceil(self._auto_updates / n_batches)
        return int(min(self._auto_max_epochs, max(self._auto_min_epochs, epochs)))

    def _model_dtype(self, X):
        """dtype the model trains in, given the validated ``X``."""
        return X.dtype

    def _fit_dtypes(self):
        """dtypes ``X`` may keep on validation (the first is used otherwise)."""
        return (np.float64, np.float32)

    def _check_warm_layout(self, n_features, n_outputs):
        """Raise when the kept weights cannot continue (architecture changed)."""

    def _epoch_rates(self, epoch, n_epochs):
        """Learning rate at the start and at the end of epoch ``epoch``;
        ``ValueError`` naming the parameter when it is not a finite number."""
        lr = self.learning_rate_init
        try:
            if self.learning_rate == "cosine":
                def at(e):
                    return 0.5 * lr * (1.0 + math.cos(math.pi * min(e, n_epochs)
                                                      / n_epochs))

                rates = at(epoch), at(epoch + 1)
            elif self.learning_rate == "invscaling":
                rate = lr / (epoch + 1) ** self.power_t
                rates = rate, rate
            elif self.learning_rate == "adaptive":
                rates = self._adaptive_lr, self._adaptive_lr
            elif self.learning_rate == "step":
                rate = lr * self.lr_gamma ** (epoch // self.lr_step_size)
                rates = rate, rate
            else:
                rates = lr, lr
        except OverflowError:
            rates = (math.inf, math.inf)
        if not all(math.isfinite(r) for r in rates):
            culprit = ("power_t" if self.learning_rate == "invscaling"
                       else "learning_rate_init")
            raise ValueError(
                f"The {self.learning_rate!r} learning-rate schedule overflows at "
                f"epoch {epoch + 1} with learning_rate_init="
                f"{self.learning_rate_init!r}, power_t={self.power_t!r}: use a "
                f"smaller {culprit}.")
        return rates

    def _check_schedule(self, n_epochs, first_epoch):
        """Fail before training when a learning rate of this call, or Adam's
        bias-corrected first step, is not a finite number."""
        for epoch in range(first_epoch, first_epoch + n_epochs):
            self._epoch_rates(epoch, n_epochs)
        if self.solver == "adam":
            with np.errstate(over="ignore"):
                first = (np.float64(self.learning_rate_init)
                         * math.sqrt(1.0 - self.beta_2) / (1.0 - self.beta_1))
            if not np.isfinite(first):
                raise ValueError(
                    f"learning_rate_init={self.learning_rate_init!r} overflows "
                    f"Adam's first step (divided by 1 - beta_1 = "
                    f"{1.0 - self.beta_1:g}): use a smaller learning_rate_init.")

    # ------------------------------------------------------------------
    # fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data. SoftmaxRegression trains float32 input in float32
            and anything else in float64; MLPClassifier trains in its
            ``dtype`` (float32 by default) without copying float input.
        y : array-like of shape (n_samples,)
            Labels: integers, strings or any sortable values, two or more
            classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in the loss (multiplied by
            ``class_weight``). ``None`` gives every sample weight 1.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._more_validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over ``X``, ``y``, starting from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Labels, each one of ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every label the model will ever see. Required on the first call,
            ignored afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.

        Returns
        -------
        self : object
            The updated estimator.
        """
        self._validate_params()
        self._more_validate_params()
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit."
                )
        return self._fit(X, y, sample_weight=sample_weight, incremental=True,
                         classes=classes)

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        # a call that fails before finishing an epoch leaves the estimator as
        # it was (unfitted, or the previous model), never half-set-up; the
        # arrays that kernels update in place are copied
        saved = dict(self.__dict__)
        for name in ("_theta", "_rng_state"):
            if name in saved:
                saved[name] = saved[name].copy()
        if "_opt_state" in saved:
            saved["_opt_state"] = tuple(a.copy() for a in saved["_opt_state"])
        self._epochs_this_call = 0
        try:
            return self._fit_checked(X, y, sample_weight, incremental, classes)
        except BaseException:
            if self.__dict__.get("_epochs_this_call", 0) == 0:
                self.__dict__.clear()
                self.__dict__.update(saved)
            raise

    def _fit_checked(self, X, y, sample_weight, incremental, classes):
        first_pass = not hasattr(self, "_theta") or (
            not incremental and not self.warm_start
        )
        X, y = validate_fit_data(self, X, y, reset=first_pass,
                                 dtypes=self._fit_dtypes())
        if first_pass or not incremental:
            dtype = np.dtype(self._model_dtype(X))
        else:  # partial_fit keeps the model's dtype; minibatches are cast
            dtype = self._theta.dtype
        if first_pass:
            self.classes_ = np.unique(y if classes is None else classes)
            if classes is not None:
                classes = np.asarray(classes)
                if len(np.unique(classes)) != len(classes):
                    raise ValueError("classes must not contain duplicates.")
        elif not incremental and not np.array_equal(np.unique(y), self.classes_):
            # warm_start with other labels: sklearn's MLP refuses too
            if not set(np.unique(y)).issubset(set(self.classes_)):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes "
                    f"as in the previous call to fit. Previously got "
                    f"{self.classes_}, `y` has {np.unique(y)}"
                )
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes, "
                f"but the data contains only one class: {self.classes_[0]!r}."
            )
        y_idx = encode_labels(y, self.classes_)
        w = training_weights(sample_weight, self.class_weight, X, y_idx,
                             self.classes_, y, dtype)
        n_outputs, loss_code = self._output_layout(n_classes)
        n_features = X.shape[1]

        rng = check_random_state(self.random_state)
        if first_pass:
            self._rng_state = new_state(rng)
            self._theta = self._init_theta(n_features, n_outputs, rng, dtype)
            self._reset_curves(n_classes)
            self.n_iter_ = 0
            self.t_ = 0
        else:
            self._check_warm_layout(n_features, n_outputs)
            if self._theta.dtype != dtype:
                self._theta = self._theta.astype(dtype)
        self._n_outputs = n_outputs
        self._loss_code = loss_code
        if not first_pass and incremental and self._opt_state[0].dtype != dtype:
            self._opt_state = tuple(a.astype(dtype) for a in self._opt_state)
        if first_pass or not incremental:
            self._opt_state = (np.zeros_like(self._theta),
                               np.zeros_like(self._theta))
            self._opt_t = 0
            self._adaptive_lr = float(self.learning_rate_init)
            self._no_improvement_count = 0

        # validation split (fit with early stopping only), as row indices: the
        # data is never copied
        train_idx = np.arange(X.shape[0], dtype=np.int64)
        val_idx = None
        if self.early_stopping and not incremental:
            train_idx, val_idx = self._split_validation(X.shape[0], y_idx, rng)
            if not w[train_idx].sum() > 0:
                raise ValueError(
                    "Every sample with a positive weight fell into the validation "
                    "split, so there is nothing to train on: give more samples a "
                    "positive weight, lower validation_fraction, or set "
                    "early_stopping=False.")
            if self.validation_scores_ is None:  # warm start after a fit without
                # early stopping: the earlier epochs had no validation (NaN),
                # so every curve keeps one entry per epoch
                self.validation_scores_ = [np.nan] * self.n_iter_
                self.validation_loss_curve_ = [np.nan] * self.n_iter_
                self.validation_loss_curve_per_class_ = np.full(
                    (self.n_iter_, n_classes), np.nan)
                self.best_validation_score_ = -np.inf
        n_epochs = 1 if incremental else self._resolve_max_iter(len(train_idx))
        self._check_schedule(n_epochs, self.n_iter_ if incremental else 0)
        self._train(X, y_idx, w, train_idx, val_idx, n_epochs, incremental)
        return self

    def _split_validation(self, n_samples, y_idx, rng):
        """Stratified (where possible) train/validation row indices."""
        n_val = math.ceil(self.validation_fraction * n_samples)
        if n_samples - n_val < 1:
            raise ValueError(
                "The validation set is too small: increase `validation_fraction` "
                f"(now {self.validation_fraction}) or the number of samples "
                f"(now {n_samples}), or set early_stopping=False."
            )
        stratify = y_idx
        counts = np.bincount(y_idx)
        present = counts[counts > 0]
        if (present.min() < 2 or n_val < len(present)
                or n_samples - n_val < len(present)):
            stratify = None
        seed = rng.randint(np.iinfo(np.int32).max)
        train_idx, val_idx = train_test_split(
            np.arange(n_samples, dtype=np.int64), test_size=n_val,
            random_state=seed, stratify=stratify)
        return train_idx, val_idx

    def _reset_curves(self, n_classes):
        self.loss_curve_ = []
        self.loss_curve_per_class_ = np.empty((0, n_classes))
        self.accuracy_curve_ = []
        self.best_loss_ = np.inf
        if self.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.validation_loss_curve_per_class_ = np.empty((0, n_classes))
            self.best_validation_score_ = -np.inf
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            for name in ("validation_loss_curve_",
                         "validation_loss_curve_per_class_"):
                if hasattr(self, name):
                    delattr(self, name)

    def _penalty(self, theta):
        return 0.0

    def _train(self, X, y, w, train_idx, val_idx, n_epochs, incremental):
        log = verbose_logger(type(self).__module__, self.verbose)
        n_classes = len(self.classes_)
        order = np.array(train_idx, dtype=np.int64)
        n_train = len(order)
        batch_size = self._batch_size(n_train)
        ws = self._make_workspace(X.shape[1], self._theta.dtype, batch_size)
        # the tuner's measurements last for this call: a fitted estimator
        # holds arrays and plain values only (pickle, skops, clone)
        tuner = BlasTuner()

        def run_chunk(start, stop, lr_a, lr_b):
            # rows order[start:stop], already shuffled; the learning rate moves
            # from lr_a to lr_b over them
            self._opt_t = self._run_epoch(X, y, w, order[start:stop], ws, lr_a,
                                          lr_b, self._opt_t, acc)

        callbacks = self._callbacks()
        acc = dict(class_loss=np.zeros(n_classes), class_weight=np.zeros(n_classes),
                   col_loss=np.zeros(self._n_outputs), stats=np.zeros(3))
        early = val_idx is not None
        # validation rows that all weigh zero would give 0/0 figures: measure
        # them unweighted instead
        w_val = w if not early or w[val_idx].sum() > 0 else np.ones_like(w)
        best_theta = None
        if early and self.n_iter_ > 0 and len(self.validation_scores_):
            best_theta = self._theta.copy()
        progress = Progress(n_epochs, self.verbose >= 2, type(self).__name__)
        stopped_by = None
        snapshot = self._snapshot()
        try:
            for epoch in range(n_epochs):
                if self.learning_rate == "cosine" and incremental:
                    lr0 = lr1 = self.learning_rate_init
                elif incremental:  # schedules count the epochs of all calls
                    lr0, lr1 = self._epoch_rates(self.n_iter_, n_epochs)
                else:
                    lr0, lr1 = self._epoch_rates(epoch, n_epochs)
                for a in acc.values():
                    a[:] = 0.0
                tic = time.perf_counter()
                if self.shuffle:
                    shuffle(order, self._rng_state)
                tuner.run_epoch(run_chunk, n_train, batch_size, lr0, lr1)
                elapsed = time.perf_counter() - tic
                loss = acc["stats"][0] / acc["stats"][1] + self._penalty(self._theta)
                if not (np.isfinite(loss) and np.all(np.isfinite(self._theta))):
                    self._theta = snapshot[0]
                    # fresh moments, so that a later call can recover
                    self._opt_state = (np.zeros_like(self._theta),
                                       np.zeros_like(self._theta))
                    self._opt_t = 0
                    self._export_params(self._theta)
                    raise TrainingDivergedError(self._diverged_message(loss, X))
                train_acc = float(acc["stats"][2] / acc["stats"][1])
                info = {"loss": float(loss), "accuracy": train_acc, "lr": lr1}
                if early:
                    val_loss, val_acc, val_pc = self._evaluate(X, y, w_val, val_idx)
                    info.update(val_loss=val_loss, val_accuracy=val_acc)
                # record the epoch only once all its figures exist, so an
                # interrupt never leaves the curves out of step with n_iter_
                snapshot = self._snapshot()
                per_class = self._per_class_from(acc)
                self.n_iter_ += 1
                self._epochs_this_call += 1
                self.t_ += n_train
                self.loss_curve_.append(float(loss))
                self.accuracy_curve_.append(train_acc)
                self.loss_curve_per_class_ = np.vstack(
                    [self.loss_curve_per_class_, per_class[None, :]])
                if early:
                    self.validation_loss_curve_.append(val_loss)
                    self.validation_scores_.append(val_acc)
                    self.validation_loss_curve_per_class_ = np.vstack(
                        [self.validation_loss_curve_per_class_, val_pc[None, :]])
                elif self.validation_scores_ is not None:
                    # a warm fit without early stopping after one with it
                    # (or partial_fit): no validation this epoch
                    self.validation_loss_curve_.append(np.nan)
                    self.validation_scores_.append(np.nan)
                    self.validation_loss_curve_per_class_ = np.vstack(
                        [self.validation_loss_curve_per_class_,
                         np.full((1, n_classes), np.nan)])
                # the public weights follow every epoch, so callbacks (and an
                # exception in one) see a consistent model
                self._export_params(self._theta)
                if self.verbose:
                    log.info("Epoch %d, %s, %.3fs", self.n_iter_,
                             ", ".join(f"{k} = {v:.6g}" for k, v in info.items()),
                             elapsed)
                progress.update(**{k: v for k, v in info.items() if k != "lr"})
                improved = self._update_no_improvement(early)
                if early and improved:
                    best_theta = self._theta.copy()
                if callbacks and self._call_callbacks(
                        callbacks, info, elapsed, per_class,
                        val_pc if early else None):
                    stopped_by = "callback"
                    if self.verbose:
                        log.info("Training stopped by a callback after %d epochs.",
                                 self.n_iter_)
                    break
                if self._no_improvement_count > self.n_iter_no_change:
                    if self.learning_rate == "adaptive" and self.solver == "sgd" \
                            and self._adaptive_lr > 1e-6:
                        self._adaptive_lr /= 5.0
                        self._no_improvement_count = 0
                        if self.verbose:
                            log.info("Setting learning rate to %f",
                                     self._adaptive_lr)
                        continue
                    if incremental:  # partial_fit never stops by itself
                        break
                    stopped_by = "tol"
                    if self.verbose:
                        log.info("Training stopped after %d epochs: %s did not "
                                 "improve by more than tol=%g for %d consecutive "
                                 "epochs.", self.n_iter_,
                                 "validation score" if early else "training loss",
                                 self.tol, self.n_iter_no_change)
                    break
                if incremental:
                    break
            else:
                if (not incremental and self.max_iter != "auto"
                        and self.learning_rate != "cosine"):
                    warnings.warn(
                        f"{type(self).__name__}: maximum iterations "
                        f"({self.max_iter}) reached and the optimization "
                        "hasn't converged yet.", ConvergenceWarning)
        except KeyboardInterrupt:
            if self._epochs_this_call == 0:
                raise  # nothing to keep: _fit puts the estimator back as it was
            self._restore(snapshot)
            warnings.warn(
                f"Training interrupted by the user after {self.n_iter_} epochs; "
                "the model keeps the weights of the last finished epoch.")
        finally:
            progress.close()
        if early and best_theta is not None:
            # restore the weights of the best validation epoch
            self._theta = best_theta
        self._export_params(self._theta)
        self._stopped_by = stopped_by
        return self

    def _diverged_message(self, loss, X):
        message = (f"{type(self).__name__} diverged at epoch {self.n_iter_ + 1}: "
                   f"the loss became {loss}.")
        with np.errstate(over="ignore", invalid="ignore"):
            top = float(np.max(np.abs(X))) if X.size else 0.0
        if top > 1e6:
            return (f"{message} The features reach magnitude {top:.3g}, too large "
                    "to train on: scale them first (e.g. pixels / 255 or "
                    "StandardScaler).")
        return (f"{message} Use a smaller learning_rate_init (now "
                f"{self.learning_rate_init}), scale the features (e.g. pixels / "
                "255 or StandardScaler), or a larger alpha.")

    def _snapshot(self):
        """Weights and optimizer state, to go back to the last whole epoch."""
        s1, s2 = self._opt_state
        return self._theta.copy(), s1.copy(), s2.copy(), self._opt_t

    def _restore(self, snapshot):
        theta, s1, s2, t = snapshot
        self._theta, self._opt_state, self._opt_t = theta, (s1, s2), t

    def _update_no_improvement(self, early):
        """sklearn's MLP rule; returns True when this epoch is the best so far."""
        if early:
            score = self.validation_scores_[-1]
            improved = score > self.best_validation_score_
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if improved:
                self.best_validation_score_ = score
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
            return improved
        loss = self.loss_curve_[-1]
        if loss > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        improved = loss < self.best_loss_
        if improved:
            self.best_loss_ = loss
        return improved

    def _per_class_from(self, acc):
        """Per-class loss of one epoch from the kernel's accumulators."""
        weight = acc["class_weight"]
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(weight > 0, acc["class_loss"] / weight, np.nan)
        return per_class

    def _callbacks(self):
        cbs = self.callbacks
        if cbs is None:
            return []
        if callable(cbs):
            return [cbs]
        for cb in cbs:
            if not callable(cb):
                raise TypeError(
                    f"callbacks must be callables (or a list of them); got {cb!r}.")
        return list(cbs)

    def _call_callbacks(self, callbacks, info, elapsed, per_class, val_per_class):
        """Call each callback with this epoch's figures; True means stop."""
        record = {"epoch": self.n_iter_, **info, "time": elapsed,
                  "loss_per_class": np.array(per_class, copy=True)}
        if val_per_class is not None:
            record["val_loss_per_class"] = np.array(val_per_class, copy=True)
        stop = False
        for cb in callbacks:
            if cb(self, dict(record)):
                stop = True
        return stop

    def _evaluate(self, X, y, w, rows):
        """Loss (with penalty), accuracy and per-class loss on the rows
        ``rows`` of the data (the held-out validation set)."""
        n_classes = len(self.classes_)
        acc = dict(class_loss=np.zeros(n_classes), class_weight=np.zeros(n_classes),
                   col_loss=np.zeros(self._n_outputs), stats=np.zeros(3))
        dtype = self._theta.dtype
        for start in range(0, len(rows), PREDICT_BLOCK_ROWS):
            idx = rows[start:start + PREDICT_BLOCK_ROWS]
            block = np.ascontiguousarray(X[idx], dtype=dtype)
            Z = np.ascontiguousarray(self._forward(block, self._theta))
            loss_grad(Z, y[idx], w[idx], Z.shape[0], self._loss_code,
                      0.0, acc["class_loss"], acc["class_weight"], acc["col_loss"],
                      acc["stats"])
        loss = acc["stats"][0] / acc["stats"][1] + self._penalty(self._theta)
        return (float(loss), float(acc["stats"][2] / acc["stats"][1]),
                self._per_class_from(acc))

    # ------------------------------------------------------------------
    # prediction
    def _blocks(self, X, transform):
        """``transform(logits)`` of every row of ``X``, in float64 blocks of
        ``PREDICT_BLOCK_ROWS`` rows, so a row's result never depends on its
        neighbours, nor on the dtype the model was trained in.

        A row whose float64 logits are not finite (huge but finite inputs)
        is computed again in extended precision, ``transform`` included,
        and only then rounded to float64.
        """
        check_is_fitted(self)
        X = validate_predict_data(self, X)
        out = None
        for start in range(0, max(X.shape[0], 1), PREDICT_BLOCK_ROWS):
            block = np.ascontiguousarray(X[start:start + PREDICT_BLOCK_ROWS],
                                         dtype=np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                Z = self._forward(block, self._theta)
                R = transform(Z)
                bad = ~np.isfinite(Z).all(axis=1)
                if bad.any():
                    exact = self._forward_exact(block[bad].astype(np.longdouble))
                    R[bad] = transform(exact)
            if out is None:
                out = np.empty((X.shape[0], R.shape[1]), dtype=np.float64)
            out[start:start + len(R)] = R
        return out

    def _forward_exact(self, rows):
        """Logits of ``rows`` (``np.longdouble``) computed by NumPy in their
        dtype; used for the rare rows whose float64 logits overflow."""
        raise NotImplementedError

    def _log_proba_rows(self, Z):
        """Log-probabilities from logits, in the dtype of ``Z``."""
        if Z.shape[1] == 1:
            z = Z[:, 0]
            return np.column_stack([-np.logaddexp(0, z), -np.logaddexp(0, -z)])
        if self._loss_code == 0:  # softmax
            return Z - _logsumexp_rows(Z)
        # one-vs-rest: normalise the per-label sigmoids, as sklearn does
        log_p = -np.logaddexp(0, -Z)
        return log_p - _logsumexp_rows(log_p)

    def decision_function(self, X):
        """Raw scores (logits) for each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Logits; for two classes, the logit of ``classes_[1]``. Rows whose
            logits exceed the float64 range hold ``inf``.
        """
        Z = self._blocks(X, lambda Z: Z.astype(np.float64))
        return Z[:, 0] if Z.shape[1] == 1 else Z

    def predict(self, X):
        """Predict the class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, taken from ``classes_``: the most probable
            class of each sample.
        """
        idx = self.predict_log_proba(X).argmax(axis=1)
        return self.classes_[idx]

    def predict_proba(self, X):
        """Probability of each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities in the order of ``classes_``; rows sum to 1
            and are finite for any finite input.
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Logarithm of the probability of each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.
        """
        log_p = self._blocks(X, lambda Z: self._log_proba_rows(Z).astype(np.float64))
        nan_rows = np.isnan(log_p).any(axis=1)
        if nan_rows.any():  # not even extended precision held them
            warnings.warn(
                f"{int(nan_rows.sum())} rows overflow the model even in extended "
                "precision; their probabilities are set uniform. Scale the "
                "features.", RuntimeWarning, stacklevel=2)
            log_p[nan_rows] = -np.log(log_p.shape[1])
        return log_p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.classifier_tags.multi_class = True
        return tags


def _logsumexp_rows(Z):
    m = Z.max(axis=1, keepdims=True)
    m[~np.isfinite(m)] = 0  # all -inf (or +inf): no shift
    return m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True))
