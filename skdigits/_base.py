"""The shared base of skdigits classifiers: parameters, input handling, the
glue from ``fit``/``partial_fit`` to the training engine, and prediction.

The engine (``skdigits._engine``) runs the epochs; a model object
(``_engine._models``) describes the parameters and calls the kernels.
Subclasses say which model they build (``_model``), how its outputs map to
the classes (``_output_layout``), how ``alpha`` scales (``_l2``) and which
public attributes the weights become (``_export``).
"""

import difflib
import inspect
import math
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from . import _warmup
from ._engine._lbfgs import train_lbfgs
from ._engine._predict import predict_rows
from ._engine._schedules import SCHEDULES, make_schedule
from ._engine._train import TrainingDivergedError, train
from ._fitted import check_fitted_state
from ._kernels._optim import ADAM, GRADIENT, SGD
from ._kernels._rng import new_seed, new_state
from ._logging import caller_stacklevel
from ._sklearn_callbacks import FIT_ATTRIBUTES, NO_TASKS, fit_tasks, support_check
from ._sklearn_callbacks import set_callbacks as _set_sklearn_callbacks
from ._system import check_memory
from ._validation import (
    check_classes,
    encode_labels,
    training_weights,
    validate_fit_data,
    validate_predict_data,
)

__all__ = ["BaseMinibatchClassifier", "TrainingDivergedError"]

SOLVERS = {"sgd": SGD, "adam": ADAM, "lbfgs": GRADIENT}

#: ``max_iter="auto"`` with ``solver="lbfgs"``: scikit-learn's default.
LBFGS_AUTO_ITER = 200


class BaseMinibatchClassifier(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of the minibatch classifiers (not for direct use)."""

    #: Minibatch updates that ``max_iter="auto"`` aims for, and the bounds on
    #: the number of epochs it may give.
    _auto_updates = 470
    _auto_min_epochs = 2
    _auto_max_epochs = 200
    #: Whether the estimator exposes ``loss_`` (sklearn's MLP does).
    _has_loss_attribute = False

    _parameter_constraints: dict = {
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"),
                       StrOptions({"auto"})],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        "lr_step_size": [Interval(Integral, 1, None, closed="left")],
        "lr_gamma": [Interval(Real, 0, 1, closed="right")],
        "warmup_fraction": [Interval(Real, 0, 1, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
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
        # as in HistGradientBoostingClassifier; names checked by _check_scoring
        "scoring": [str, callable, None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "n_jobs": [Integral, None],
    }

    # ------------------------------------------------------------------
    # what a subclass says
    @abstractmethod
    def _output_layout(self, n_classes):
        """``(n_outputs, loss_code)`` for ``n_classes`` classes."""

    @abstractmethod
    def _model(self, n_features=None, n_outputs=None, loss=None):
        """The engine's model (``_engine._models``) for these sizes and loss
        code, or the fitted one when None."""

    @abstractmethod
    def _l2(self, batch_size):
        """``(l2_fixed, l2_per_row, penalty_scale)``: the L2 gradient is
        ``(l2_fixed + l2_per_row / m) * W`` for a minibatch of ``m`` rows, and
        the objective adds ``penalty_scale * ||W||^2``."""

    def _fit_input_statistics(self, X, rows, w, dtype):
        """Learn what the model needs to know of the training inputs (rows
        ``rows`` of ``X``, weights ``w``) before the first epoch of a model
        of dtype ``dtype``: the MLP's standardisation. Returns whether there
        was anything to learn (the model is then built again). Nothing by
        default."""
        return False

    @abstractmethod
    def _export(self, weights):
        """Set the public fitted attributes from ``[(W, b), ...]``."""

    # ------------------------------------------------------------------
    # parameters
    def _more_validate_params(self):
        """Checks beyond the constraints table, made before anything is set."""
        self._callbacks()
        self._check_scoring()
        self._check_n_jobs()

    def _check_n_jobs(self):
        if self.n_jobs == 0:
            raise ValueError("n_jobs == 0 has no meaning: use None (the cores the "
                             "process may use), -1 (all cores) or a count.")

    def _check_scoring(self):
        """``scoring``: None, ``"loss"``, a scikit-learn scorer name or a
        callable (the constraints table checks the type)."""
        scoring = self.scoring
        if not isinstance(scoring, str) or scoring == "loss":
            return
        names = get_scorer_names()
        if scoring not in names:
            close = difflib.get_close_matches(scoring, names, n=3)
            hint = (f" Did you mean {' or '.join(map(repr, close))}?" if close
                    else "")
            raise ValueError(
                f"scoring={scoring!r} is neither 'loss' nor the name of a "
                "scikit-learn scorer (sklearn.metrics.get_scorer_names() lists "
                f"them).{hint}")

    def _validation_scorer(self, X, y, val_idx, weights):
        """What early stopping watches: ``(name, score)``, where
        ``score(state, val_loss, val_accuracy)`` gives the validation score of
        the training state ``state`` (higher is better) from the validation
        loss and accuracy the engine measured. ``scoring=None`` gives the
        accuracy and ``"loss"`` the negative loss, without another pass; a
        scorer is called as ``scorer(estimator, X_val, y_val)`` on an
        estimator holding the state's model (``sample_weight=`` the
        validation rows' weights, when the fit had sample or class weights),
        as HistGradientBoostingClassifier calls it."""
        scoring = self.scoring
        if scoring is None:
            return "accuracy", lambda state, loss, accuracy: accuracy
        if scoring == "loss":
            return "loss", lambda state, loss, accuracy: -loss
        scorer = check_scoring(self, scoring)
        name = self._scoring_name()
        X_val, y_val = X[val_idx], y[val_idx]
        kwargs = {}
        if weights is not None and weights[val_idx].sum() > 0:
            kwargs["sample_weight"] = weights[val_idx]

        def score(state, loss, accuracy):
            value = scorer(self._shadow(state), X_val, y_val, **kwargs)
            try:
                return float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"The scoring callable {name} must return a number; it "
                    f"returned {value!r}.") from None

        score.predicts = True  # the engine sets state.weights first
        return name, score

    def _batch_size(self, n_train):
        """Rows per minibatch: ``batch_size`` ("auto": 200, as in scikit-learn),
        at most ``n_train``."""
        size = 200 if self.batch_size == "auto" else int(self.batch_size)
        return max(1, min(size, n_train))

    def _resolve_max_iter(self, n_train):
        if self.max_iter != "auto":
            return int(self.max_iter)
        if self.solver == "lbfgs":
            return LBFGS_AUTO_ITER
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

    def _check_fitted_structure(self, n_features, n_outputs):
        """Check the fitted attributes the model is built from, beyond the
        ones every estimator has (see ``_fitted.check_fitted_state``)."""

    def _solver_code(self):
        return SOLVERS[self.solver]

    def _schedule(self):
        """This call's learning-rate schedule (``adaptive`` continues from the
        rate it reached)."""
        lr = (self._adaptive_lr if self.learning_rate == "adaptive"
              else self.learning_rate_init)
        return make_schedule(self.learning_rate, lr, power_t=self.power_t,
                             step_size=self.lr_step_size, gamma=self.lr_gamma,
                             warmup_fraction=self.warmup_fraction)

    def _epoch_rates(self, schedule, epoch, n_epochs, incremental):
        """Learning rates at the start and the end of this call's epoch
        ``epoch``; ``ValueError`` naming the parameter when one overflows.
        ``partial_fit`` counts the epochs of all calls, and keeps the cosine
        and one-cycle schedules at ``learning_rate_init`` (they need the
        number of epochs to come). A schedule may add the rate at a corner
        inside the epoch and its place (see ``_engine._schedules``)."""
        if incremental and self.learning_rate in ("cosine", "onecycle"):
            return self.learning_rate_init, self.learning_rate_init
        if incremental:
            epoch = self._n_epochs_total + epoch
        try:
            rates = schedule.rates(epoch, n_epochs)
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

    def _finite_rates(self, schedule, epoch, n_epochs, incremental):
        try:
            self._epoch_rates(schedule, epoch, n_epochs, incremental)
        except ValueError:
            return False
        return True

    def _check_schedule(self, n_epochs, incremental):
        """Fail before training when a learning rate of this call, or Adam's
        bias-corrected first step, is not a finite number.

        A few rates are computed whatever ``n_epochs`` is: a schedule's rate,
        once not finite, stays so at every later epoch (see
        ``_engine._schedules``), so the first and the last epoch tell whether
        any fails, and when the last does, a bisection finds the first that
        does, for the message."""
        schedule = self._schedule()
        self._epoch_rates(schedule, 0, n_epochs, incremental)
        good, bad = 0, n_epochs - 1
        if bad > good and not self._finite_rates(schedule, bad, n_epochs, incremental):
            while bad - good > 1:  # finite at good, not at bad
                mid = (good + bad) // 2
                if self._finite_rates(schedule, mid, n_epochs, incremental):
                    good = mid
                else:
                    bad = mid
            self._epoch_rates(schedule, bad, n_epochs, incremental)  # raises
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
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. SoftmaxRegression trains float32 input in float32
            and anything else in float64; MLPClassifier trains in its
            ``dtype`` (float32 by default) without copying float input. A
            sparse matrix (CSR or CSC) is never made dense.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels: integers, strings or any sortable values, two or more
            classes; or a multi-label indicator matrix of 0 and 1.
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

    @available_if(support_check)
    def set_callbacks(self, *callbacks):
        """Set scikit-learn callbacks (``sklearn.callback``).

        Needs scikit-learn >= 1.9, whose callback API is experimental; with
        an older scikit-learn the estimator has no ``set_callbacks``. The fit
        is the root task and each epoch a subtask (with ``solver="lbfgs"``,
        each iteration), so ``sklearn.callback.ScoringMonitor`` logs one row
        per epoch and ``sklearn.callback.ProgressBar`` advances once per
        epoch, also inside ``GridSearchCV`` and ``Pipeline``. A callback whose
        ``on_fit_task_end`` returns True stops training after that epoch.
        ``partial_fit`` calls no callback. The ``callbacks`` parameter is
        separate and works with every scikit-learn.

        Parameters
        ----------
        *callbacks : callback instances
            Callbacks following ``sklearn.callback.FitCallback``; none
            removes those set before.

        Returns
        -------
        self : object
            The estimator.
        """
        return _set_sklearn_callbacks(self, callbacks)

    def _minibatch_solver(self):
        """Whether ``partial_fit`` exists: not for the full-batch ``"lbfgs"``,
        as in scikit-learn."""
        return self.solver != "lbfgs"

    @available_if(_minibatch_solver)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over ``X``, ``y``, starting from the current weights.

        Only for the minibatch solvers (``"adam"``, ``"sgd"``): with
        ``solver="lbfgs"`` the estimator has no ``partial_fit``, as in
        scikit-learn.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels, each one of ``classes``, or a multi-label indicator
            matrix.
        classes : array-like of shape (n_classes,), default=None
            Every label the model will ever see. Required on the first call;
            a later call may repeat it, but not change it.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.

        Returns
        -------
        self : object
            The updated estimator.
        """
        self._validate_params()
        self._more_validate_params()
        if self.early_stopping:  # scikit-learn's MLP refuses it too
            raise ValueError("partial_fit does not support early_stopping=True")
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit.")
        elif classes is not None and not np.array_equal(
                np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(
                f"`classes={np.asarray(classes).tolist()}` is not the same as on "
                f"the first call to partial_fit, which was "
                f"{self.classes_.tolist()}.")
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
                # scikit-learn's callbacks are torn down after fit raises: keep
                # what its teardown needs
                fit_state = {name: self.__dict__[name] for name in FIT_ATTRIBUTES
                             if name in self.__dict__}
                self.__dict__.clear()
                self.__dict__.update(saved)
                self.__dict__.update(fit_state)
            raise

    def _fit_checked(self, X, y, sample_weight, incremental, classes):
        first_pass = not hasattr(self, "_theta") or (
            not incremental and not self.warm_start)
        X, y = validate_fit_data(self, X, y, reset=first_pass,
                                 dtypes=self._fit_dtypes())
        if first_pass or not incremental:
            dtype = np.dtype(self._model_dtype(X))
        else:  # partial_fit keeps the model's dtype; minibatches are cast
            dtype = self._theta.dtype
        multilabel = y.ndim == 2
        self._set_classes(y, classes, first_pass, incremental)
        self._multilabel = multilabel
        n_classes = len(self.classes_)
        if multilabel:  # the kernels read the targets from Y, y indexes its rows
            Y = np.ascontiguousarray(y, dtype=np.uint8)
            y_idx = np.arange(y.shape[0], dtype=np.int64)
        else:
            Y = None
            y_idx = encode_labels(y, self.classes_)
        w, raw_weight = training_weights(sample_weight, self.class_weight, X, y_idx,
                                         self.classes_, y, dtype)
        n_outputs, loss_code = self._output_layout(n_classes)
        model = self._model(X.shape[1], n_outputs, loss_code)
        # a cold cache: say why the wait (INFO, once), and compile the
        # prediction's kernel in another process meanwhile (see _warmup)
        _warmup.announce([_warmup.epoch_job(model, dtype, issparse(X))])
        _warmup.compile_ahead(_warmup.forward_job(model, issparse(X)))
        rng = check_random_state(self.random_state)
        if first_pass:
            check_memory(model.fit_bytes(self._batch_size(X.shape[0]), dtype.itemsize,
                                         sparse=issparse(X)),
                         self._describe(model))
            self._rng_state = new_state(rng)
            self._theta = self._init_params(model, rng, dtype)
            self._n_epochs_total = 0
            self.t_ = 0
            for name in ("loss_curve_", "accuracy_curve_", "loss_curve_per_class_",
                         "validation_scores_", "validation_loss_curve_",
                         "validation_loss_curve_per_class_", "best_loss_",
                         "best_validation_score_", "_validation_scoring"):
                self.__dict__.pop(name, None)
        else:
            self._check_warm_layout(X.shape[1], n_outputs)
            # the kept state (perhaps loaded from a file) must agree with
            # itself before a kernel continues from it
            check_fitted_state(self, training=True)
            if not hasattr(self, "_n_epochs_total"):  # saved by an older version
                self._n_epochs_total = len(getattr(self, "loss_curve_", None) or [])
            if self._theta.dtype != dtype:
                self._theta = self._theta.astype(dtype)
        self._n_outputs = n_outputs
        self._loss_code = loss_code
        # scikit-learn's conventions: n_iter_ counts this call's epochs; with
        # early stopping the validation score plays the role of best_loss_
        self.n_iter_ = 0
        early = self.early_stopping and not incremental and self.solver != "lbfgs"
        if early:
            self._restart_validation_scores()
            self.best_loss_ = None
            if getattr(self, "best_validation_score_", None) is None:
                self.best_validation_score_ = -np.inf
        else:
            if getattr(self, "best_loss_", None) is None:
                self.best_loss_ = np.inf
            self.best_validation_score_ = getattr(self, "best_validation_score_",
                                                  None)
        if first_pass or not incremental:
            self._opt_state = model.new_state(dtype)
            self._opt_t = 0
            self._adaptive_lr = float(self.learning_rate_init)
            self._no_improvement_count = 0
        elif self._opt_state[0].dtype != dtype:
            self._opt_state = tuple(a.astype(dtype) for a in self._opt_state)
        # validation split (fit with early stopping only), as row indices: the
        # data is never copied
        train_idx = np.arange(X.shape[0], dtype=np.int64)
        val_idx = None
        if early:
            train_idx, val_idx = self._split_validation(
                X.shape[0], None if multilabel else y_idx, rng)
            if not w[train_idx].sum() > 0:
                raise ValueError(
                    "Every sample with a positive weight fell into the validation "
                    "split, so there is nothing to train on: give more samples a "
                    "positive weight, lower validation_fraction, or set "
                    "early_stopping=False.")
        if first_pass:
            if self._fit_input_statistics(X, train_idx, w, dtype):
                model = self._model(X.shape[1], n_outputs, loss_code)
        if first_pass or not hasattr(self, "_dropout_seed"):
            # the key of dropout's masks for this fit and the calls that
            # continue it; drawn last, so that the other draws stay as they
            # were before dropout (a model saved by an older version draws
            # one when continued)
            self._dropout_seed = new_seed(rng)
        n_epochs = 1 if incremental else self._resolve_max_iter(len(train_idx))
        lbfgs = self.solver == "lbfgs"
        if not lbfgs:
            self._check_schedule(n_epochs, incremental)
        # scikit-learn's callbacks (set_callbacks): the fit is the root task,
        # each epoch (L-BFGS iteration) a subtask; L-BFGS may begin one more
        # iteration than it runs, as in LogisticRegression
        tasks = NO_TASKS if incremental else fit_tasks(
            self, model, X, y, sample_weight,
            max_subtasks=n_epochs + 1 if lbfgs else n_epochs,
            subtask_name="lbfgs-iter" if lbfgs else "epoch")
        # the engine trains a state of its own, which _adopt copies into the
        # fitted attributes after each epoch and at the end
        if lbfgs:
            train_lbfgs(self, model, X, y_idx, w, train_idx, n_epochs, Y,
                        self._l2_full(float(raw_weight[train_idx].sum())), tasks=tasks,
                        publish=self._adopt)
        else:
            score = None
            if early:
                weighted = sample_weight is not None or self.class_weight is not None
                self._validation_scoring, score = self._validation_scorer(
                    X, y, val_idx, raw_weight if weighted else None)
            train(self, model, X, y_idx, w, train_idx, val_idx, n_epochs, incremental,
                  Y, tasks=tasks, publish=self._adopt, score=score)
        tasks.end_fit()
        return self

    def _scoring_name(self):
        """The name of what ``scoring`` makes early stopping watch."""
        scoring = self.scoring
        if scoring is None:
            return "accuracy"
        return scoring if isinstance(scoring, str) else _callable_name(scoring)

    def _restart_validation_scores(self):
        """A warm start that scores the validation split otherwise than the
        fit it continues: the earlier epochs' scores measured something else,
        so they become NaN (as for epochs without validation) and the best
        score starts again."""
        scores = getattr(self, "validation_scores_", None)
        if scores is None:
            return
        if getattr(self, "_validation_scoring", "accuracy") != self._scoring_name():
            self.validation_scores_ = [np.nan] * len(scores)
            self.best_validation_score_ = -np.inf

    def _adopt(self, state):
        """Copy the engine's training state (``_engine._state.TrainState``)
        into the fitted attributes, with the public weights ``_export`` makes
        of it, in one assignment: an interrupt leaves the estimator as it
        was before or after, never in between."""
        self.__dict__ = self._shadow(state).__dict__

    def _shadow(self, state):
        """A new estimator of this type holding this one's parameters and
        fitted attributes with the training state ``state`` copied in (the
        arrays shared): the model of that state, to predict with, while this
        estimator stays as it is."""
        values, absent = state.fitted()
        fitted = dict(self.__dict__)
        fitted.update(values)
        for name in absent:
            fitted.pop(name, None)
        shadow = object.__new__(type(self))  # _export reads the new values
        shadow.__dict__ = fitted
        shadow._export(state.weights)
        return shadow

    def _l2_full(self, total_weight):
        """The L2 coefficient ``c`` of the full-batch objective (the mean loss
        plus ``c / 2 * ||W||^2``) given the training rows' total weight
        (before ``training_weights`` rescales it)."""
        return float(self.alpha)

    def _set_classes(self, y, classes, first_pass, incremental):
        if y.ndim == 2:  # multi-label: one column per label, as scikit-learn
            self._check_multilabel(y)
            labels = np.arange(y.shape[1])
            if first_pass:
                if classes is not None and not np.array_equal(
                        np.unique(np.asarray(classes)), labels):
                    raise ValueError(
                        f"With multi-label y of {y.shape[1]} columns, classes must "
                        f"be {labels.tolist()} (the column indices); got "
                        f"{np.asarray(classes).tolist()}.")
                self.classes_ = labels
            elif (not getattr(self, "_multilabel", False)
                  or len(self.classes_) != len(labels)):
                raise ValueError(
                    f"y has {y.shape[1]} label columns, but the model was fitted "
                    f"on {self._target_description()}: set warm_start=False (or "
                    "call fit instead of partial_fit) to train a new model.")
            return
        if not first_pass and getattr(self, "_multilabel", False):
            raise ValueError(
                "y is a vector of labels, but the model was fitted on a multi-label "
                f"indicator matrix of {len(self.classes_)} columns: set "
                "warm_start=False (or call fit instead of partial_fit) to train a "
                "new model.")
        if first_pass:
            if classes is not None:
                classes = check_classes(classes)
            self.classes_ = np.unique(y if classes is None else classes)
        elif not incremental and not set(np.unique(y)).issubset(set(self.classes_)):
            # warm_start with other labels: sklearn's MLP refuses too
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in "
                f"the previous call to fit. Previously got {self.classes_}, `y` has "
                f"{np.unique(y)}")
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes, but "
                f"the data contains only one class: {self.classes_[0]!r}.")

    def _supports_multilabel(self):
        """Whether this configuration fits multi-label targets."""
        return True

    def _target_description(self):
        if getattr(self, "_multilabel", False):
            return f"a multi-label indicator matrix of {len(self.classes_)} columns"
        return f"the classes {self.classes_.tolist()}"

    def _check_multilabel(self, y):
        """Checks of a multi-label ``y`` beyond scikit-learn's, and the
        estimator's own (``class_weight`` has no meaning per label)."""
        if self.class_weight is not None:
            raise ValueError(
                "class_weight is not supported with multi-label y (an indicator "
                "matrix); weigh the samples with sample_weight instead.")

    def _init_params(self, model, rng, dtype):
        return model.init_params(rng, dtype)

    def _describe(self, model):
        """How the model is named in a memory error."""
        return f"{type(self).__name__} ({model.n_params:,} parameters)"

    def _split_validation(self, n_samples, y_idx, rng):
        """Stratified train/validation row indices (``y_idx`` None: not
        stratified, as for multi-label targets). When some class is too
        small to stratify, the split is drawn at random, with a warning."""
        n_val = math.ceil(self.validation_fraction * n_samples)
        if n_samples - n_val < 1:
            raise ValueError(
                "The validation set is too small: increase `validation_fraction` "
                f"(now {self.validation_fraction}) or the number of samples "
                f"(now {n_samples}), or set early_stopping=False."
            )
        stratify = y_idx
        if y_idx is not None:
            counts = np.bincount(y_idx)
            present = counts[counts > 0]
            if (present.min() < 2 or n_val < len(present)
                    or n_samples - n_val < len(present)):
                stratify = None
                reason = (f"a class has only {present.min()} sample"
                          if present.min() < 2 else
                          f"{len(present)} classes do not fit in a validation split "
                          f"of {n_val} and a training split of {n_samples - n_val} "
                          "samples")
                sklearn = ("; scikit-learn's MLPClassifier raises here"
                           if len(present) == 2 else "")
                warnings.warn(
                    f"The validation split for early stopping cannot be "
                    f"stratified ({reason}), so it is drawn at random instead"
                    f"{sklearn}. Increase validation_fraction or the number of "
                    "samples of each class to stratify it.",
                    UserWarning, stacklevel=caller_stacklevel())
        seed = rng.randint(np.iinfo(np.int32).max)
        train_idx, val_idx = train_test_split(
            np.arange(n_samples, dtype=np.int64), test_size=n_val,
            random_state=seed, stratify=stratify)
        return train_idx, val_idx

    def _diverged_message(self, loss, X):
        message = (f"{type(self).__name__} diverged at epoch "
                   f"{self._n_epochs_total + 1}: the loss became {loss}.")
        with np.errstate(over="ignore", invalid="ignore"):
            values = X.data if issparse(X) else X
            top = float(np.max(np.abs(values))) if values.size else 0.0
        if top > 1e6:
            return (f"{message} The features reach magnitude {top:.3g}, too large "
                    "to train on: scale them first (e.g. pixels / 255 or "
                    "StandardScaler).")
        return (f"{message} Use a smaller learning_rate_init (now "
                f"{self.learning_rate_init}), scale the features (e.g. pixels / "
                "255 or StandardScaler), or a larger alpha.")

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
        record = {"epoch": self._n_epochs_total, **info, "time": elapsed,
                  "loss_per_class": np.array(per_class, copy=True)}
        if val_per_class is not None:
            record["val_loss_per_class"] = np.array(val_per_class, copy=True)
        stop = False
        for cb in callbacks:
            if cb(self, dict(record)):
                stop = True
        return stop

    # ------------------------------------------------------------------
    # prediction
    def _blocks(self, X, transform):
        """``transform(logits)`` of every row of ``X``, in float64, by the
        engine (see ``_engine._predict.predict_rows``)."""
        check_is_fitted(self)
        # a model loaded from a file, or edited by hand, must agree with
        # itself before a kernel sizes its buffers from it
        model = check_fitted_state(self)
        X = validate_predict_data(self, X)
        self._check_n_jobs()  # set after the fit: small predictions read no budget
        return predict_rows(model, self._theta, X, transform, n_jobs=self.n_jobs)

    def _log_proba_rows(self, Z):
        """Log-probabilities from logits, in the dtype of ``Z``."""
        if getattr(self, "_multilabel", False):  # each label on its own
            return -np.logaddexp(0, -Z)
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
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
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
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Predicted labels, taken from ``classes_``: the most probable
            class of each sample. For a multi-label model, the indicator
            matrix of the labels whose probability exceeds 1/2.
        """
        if getattr(self, "_multilabel", False):
            return self._blocks(X, lambda Z: Z > 0).astype(int)
        idx = self.predict_log_proba(X).argmax(axis=1)
        return self.classes_[idx]

    def predict_proba(self, X):
        """Probability of each class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities in the order of ``classes_``; rows sum to 1
            and are finite for any finite input. For a multi-label model,
            the probability of each label on its own (rows need not sum
            to 1).
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X):
        """Logarithm of the probability of each class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.
        """
        import warnings

        log_p = self._blocks(X, lambda Z: self._log_proba_rows(Z).astype(np.float64))
        nan_rows = np.isnan(log_p).any(axis=1)
        if nan_rows.any():  # not even extended precision held them
            warnings.warn(
                f"{int(nan_rows.sum())} rows overflow the model even in extended "
                "precision; their probabilities are set uniform. Scale the "
                "features.", RuntimeWarning, stacklevel=caller_stacklevel())
            log_p[nan_rows] = -np.log(log_p.shape[1])
        return log_p

    def __setstate__(self, state):
        # a model saved by an older skdigits lacks the parameters added since
        # (max_fun...): they take their defaults, so repr, get_params, clone
        # and further training work
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if (param.default is not inspect.Parameter.empty
                    and name not in state):
                state[name] = param.default
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = self._supports_multilabel()
        tags.input_tags.sparse = True
        return tags


def _callable_name(scorer):
    """How a scoring callable is named in messages, curves and plots."""
    func = getattr(scorer, "_score_func", scorer)  # make_scorer's objects
    return getattr(func, "__name__", None) or type(scorer).__name__


def _logsumexp_rows(Z):
    m = Z.max(axis=1, keepdims=True)
    m[~np.isfinite(m)] = 0  # all -inf (or +inf): no shift
    return m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True))
