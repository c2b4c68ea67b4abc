"""scikit-learn's callback API (``sklearn.callback``) for skdigits estimators.

scikit-learn 1.9 added ``sklearn.callback`` (experimental): callbacks set with
``estimator.set_callbacks(...)`` see a fit as a tree of tasks, and meta-estimators
(``GridSearchCV``, ``Pipeline``) graft the trees of their sub-estimators onto
their own. skdigits maps a ``fit`` onto that tree as scikit-learn's iterative
estimators do (``LogisticRegression`` with ``solver="lbfgs"``):

- the fit is the root task, ``"fit"``;
- each epoch is a subtask, ``"epoch"``; with ``solver="lbfgs"`` each L-BFGS
  iteration is one, ``"lbfgs-iter"``, and, as in ``LogisticRegression``, the
  iteration begun after the last one scipy ran ends as an empty task;
- every hook may ask for the data given to ``fit`` (``X``, ``y``), its
  ``sample_weight`` (``metadata``) and a ``fitted_estimator``: a copy of the
  estimator that predicts with the weights of that moment (the root task's end:
  the fitted estimator). A copy is only made when a hook asks for one;
- an ``on_fit_task_end`` hook that returns True ends training after that epoch
  or iteration, as a skdigits ``callbacks=`` callable that returns True does.

``partial_fit`` calls no hook (no scikit-learn estimator's ``partial_fit`` does
yet). Nothing here changes what training computes: the hooks draw no random
numbers and see copies of the weights.

With a scikit-learn that has no ``sklearn.callback`` (before 1.9) the import
below fails quietly: the estimators then have no ``set_callbacks`` (asking for
it raises an ``AttributeError`` whose cause names the version needed) and
``fit`` runs as before, with hooks that do nothing.
"""

import copy

try:
    from sklearn.callback import CallbackSupportMixin as _Support
except ImportError:  # scikit-learn < 1.9
    _Support = None

__all__ = ["FIT_ATTRIBUTES", "NO_TASKS", "available", "fit_tasks",
           "set_callbacks", "support_check"]

#: The attributes scikit-learn sets on the estimator for the length of one fit
#: (the root context, the callbacks to tear down); its ``_fit_context`` tears
#: the callbacks down and deletes them when ``fit`` returns or raises.
FIT_ATTRIBUTES = ("_callback_fit_ctx", "_skl_callbacks_to_teardown")

_MISSING = object()


def available():
    """Whether this scikit-learn has the callback API."""
    return _Support is not None


def support_check(estimator):
    """``available_if`` check of ``set_callbacks``: True, or an
    ``AttributeError`` that says which scikit-learn is needed."""
    if _Support is None:
        import sklearn

        raise AttributeError(
            f"{type(estimator).__name__}.set_callbacks needs scikit-learn's callback "
            f"API (sklearn.callback, scikit-learn >= 1.9); this is scikit-learn "
            f"{sklearn.__version__}. skdigits' own callbacks= parameter works with "
            "every supported version.")
    return True


def set_callbacks(estimator, callbacks):
    """scikit-learn's ``set_callbacks`` on ``estimator``; returns it."""
    return _Support.set_callbacks(estimator, *callbacks)


class _NoTasks:
    """Hooks that do nothing: scikit-learn without the callback API, and
    ``partial_fit``."""

    def begin(self):
        pass

    def end(self):
        return False

    def abandon(self):
        pass

    def end_fit(self):
        pass


NO_TASKS = _NoTasks()


def fit_tasks(estimator, model, X, y, sample_weight, *, max_subtasks, subtask_name):
    """The task tree of one ``fit`` of ``estimator``, its root task begun
    (``NO_TASKS`` without the callback API).

    Parameters
    ----------
    estimator : BaseMinibatchClassifier
        The estimator being fitted: its weights are ``_theta``, which
        ``model.unpack`` turns into what ``estimator._export`` publishes.
    model : object
        The engine's model of this fit (``_engine._models``).
    X, y : array-like
        The data given to ``fit``, validated.
    sample_weight : array-like or None
        The ``sample_weight`` given to ``fit`` (the hooks' ``metadata``).
    max_subtasks : int
        Most subtasks the fit may have.
    subtask_name : str
        Name of each subtask (``"epoch"``, ``"lbfgs-iter"``).
    """
    if _Support is None:
        return NO_TASKS
    return FitTasks(estimator, model, X, y, sample_weight, max_subtasks=max_subtasks,
                    subtask_name=subtask_name)


class FitTasks:
    """The root task of one fit and its subtasks, one open at a time.

    Creating it sets up the callbacks (``_init_callback_context``) and begins
    the root task; the engine then calls ``begin`` and ``end`` around each
    epoch, ``abandon`` for a subtask that never finished, and ``end_fit`` once
    the estimator holds its final weights.
    """

    def __init__(self, estimator, model, X, y, sample_weight, *, max_subtasks,
                 subtask_name):
        self.estimator = estimator
        self.model = model
        self.subtask_name = subtask_name
        self.data = {"X": X, "y": y, "metadata": (
            None if sample_weight is None else {"sample_weight": sample_weight})}
        self.current = None
        self.root = _Support._init_callback_context(estimator,
                                                   max_subtasks=max_subtasks)
        self.root.call_on_fit_task_begin(estimator=estimator, **self.data)

    def begin(self):
        """Begin the next subtask, from the weights the estimator has now."""
        self.current = self.root.subcontext(task_name=self.subtask_name)
        self.current.call_on_fit_task_begin(
            estimator=self.estimator, reconstruction_attributes=self.fitted_state,
            **self.data)

    def end(self):
        """End the open subtask at the weights the estimator has now; returns
        whether a callback asks to stop training."""
        context, self.current = self.current, None
        return bool(context.call_on_fit_task_end(
            estimator=self.estimator, reconstruction_attributes=self.fitted_state,
            **self.data))

    def abandon(self):
        """End the open subtask, if any, as an empty task (no data, no
        estimator): it never finished."""
        context, self.current = self.current, None
        if context is not None:
            context.call_on_fit_task_end(estimator=self.estimator)

    def end_fit(self):
        """End the root task; the estimator is fitted."""
        self.abandon()
        self.root.call_on_fit_task_end(estimator=self.estimator,
                                       reconstruction_attributes={}, **self.data)

    def fitted_state(self):
        """The attributes that turn a shallow copy of the estimator into one
        that predicts with the weights it has now: the weights (copied, since
        the kernels update them in place) and the public attributes
        ``_export`` makes of them."""
        estimator = self.estimator
        shadow = copy.copy(estimator)
        shadow._theta = estimator._theta.copy()
        shadow._export(self.model.unpack(shadow._theta))
        current = vars(estimator)
        return {name: value for name, value in vars(shadow).items()
                if current.get(name, _MISSING) is not value}
