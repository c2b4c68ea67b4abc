"""What a fitted estimator holds must agree with itself before any kernel
reads it.

The kernels size their buffers from the model's layout (layer sizes, output
count) and index the flat parameter vector ``_theta`` by it; the input is
checked against ``n_features_in_``. Nothing but these checks ties the two
together once an estimator comes from a file (or from a user who set an
attribute by hand), so a file that lies about one of them would make a
kernel read or write outside its arrays. :func:`check_fitted_state` checks
every fitted attribute against the others and raises
:class:`InconsistentModelError` naming the first disagreement; the
prediction and training paths call it before any kernel, and
``skdigits.io.load`` after loading (there also checking that the public
weights, ``coefs_`` or ``coef_``, are the ones the model predicts with).
"""

from numbers import Integral, Real

import numpy as np

from ._kernels._losses import LOGISTIC

__all__ = ["InconsistentModelError", "array_attr", "check_fitted_state", "fail",
           "fitted_estimators", "objects_within"]

#: Largest layer (or feature count) a model may declare: the kernels index
#: with int64 and a layer of more units could not be allocated anyway.
MAX_UNITS = 1 << 40

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class InconsistentModelError(ValueError):
    """A fitted estimator whose attributes disagree with each other (a
    damaged or hand-edited model file, or an attribute set by hand)."""


def fail(est, message):
    raise InconsistentModelError(
        f"{type(est).__name__} is inconsistent: {message}; the model file is "
        "damaged or was edited, so it cannot be used (fit the model again).")


_MISSING = object()


def _get(est, name):
    value = getattr(est, name, _MISSING)
    if value is _MISSING:
        fail(est, f"{name} is missing")
    return value


def _int(est, name, low=0, high=None):
    value = _get(est, name)
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)):
        fail(est, f"{name} is {value!r}, not an integer")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        fail(est, f"{name} is {value}, it must be {bound}")
    return value


def array_attr(est, name, value, *, ndim, shape=None, dtypes=None, finite=False):
    if not isinstance(value, np.ndarray):
        fail(est, f"{name} is a {type(value).__name__}, not a NumPy array")
    if value.ndim != ndim:
        fail(est, f"{name} has {value.ndim} dimensions, not {ndim}")
    if shape is not None and value.shape != tuple(shape):
        fail(est, f"{name} has shape {value.shape}, not {tuple(shape)}")
    if dtypes is not None and value.dtype not in dtypes:
        fail(est, f"{name} has dtype {value.dtype}, not "
                   f"{' or '.join(str(d) for d in dtypes)}")
    if finite and value.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            if not np.isfinite(value).all():
                fail(est, f"{name} holds values that are not finite")
    return value


def _curve(est, name, length=None):
    value = getattr(est, name, None)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (Real, np.floating)) and not isinstance(v, bool)
            for v in value):
        fail(est, f"{name} is not a list of numbers")
    if length is not None and len(value) != length:
        fail(est, f"{name} has {len(value)} entries, but loss_curve_ has {length}")
    return value


def check_fitted_state(est, *, training=False, exports=False):
    """Raise :class:`InconsistentModelError` unless the fitted attributes of
    ``est`` (a fitted skdigits estimator) agree with each other.

    Parameters
    ----------
    est : BaseMinibatchClassifier
        A fitted estimator.
    training : bool, default=False
        Also check what only training reads (the optimizer state, the
        shuffle's random state, the step counters).
    exports : bool, default=False
        Also check that the public weights (``coefs_``/``intercepts_``,
        ``coef_``/``intercept_``) and the values derived from them are
        exactly what the model predicts with.
    """
    n_features = _int(est, "n_features_in_", 1, MAX_UNITS)
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        array_attr(est, "feature_names_in_", names, ndim=1, shape=(n_features,))
    classes = _get(est, "classes_")
    array_attr(est, "classes_", classes, ndim=1)
    n_classes = len(classes)
    if n_classes < 2:
        fail(est, f"classes_ has {n_classes} class, a classifier needs 2 or more")
    try:
        ordered = np.array_equal(np.unique(classes), classes)
    except TypeError:  # labels that do not compare
        ordered = False
    if not ordered:
        fail(est, "classes_ is not sorted and free of duplicates")
    multilabel = getattr(est, "_multilabel", False)
    if not isinstance(multilabel, (bool, np.bool_)):
        fail(est, f"_multilabel is {multilabel!r}, not a boolean")
    if multilabel and not np.array_equal(classes, np.arange(n_classes)):
        fail(est, "a multi-label model's classes_ must be its column indices")
    n_outputs = _int(est, "_n_outputs", 1, MAX_UNITS)
    loss = _int(est, "_loss_code", 0, 1)
    # the outputs follow from the classes, whatever the parameters say now
    # (set_params after fit changes the next fit, not this model)
    if multilabel or n_classes > 2:
        expected = n_classes
    else:
        expected = 1
    if n_outputs != expected or (expected == 1 or multilabel) and loss != LOGISTIC:
        fail(est, f"{n_classes} classes{' (multi-label)' if multilabel else ''} "
                  f"need {expected} output{'s' if expected > 1 else ''}, but the "
                  f"model has {n_outputs} with loss code {loss}")
    if exports:  # a file's parameters, as fit would check them
        try:
            est._validate_params()
        except ValueError as exc:  # sklearn's InvalidParameterError
            fail(est, f"its parameters do not validate ({exc})")
    # the subclass checks its own structure (layer sizes, standardisation)
    # before the model is built from it
    est._check_fitted_structure(n_features, n_outputs)
    model = est._model()
    if model.n_features != n_features or model.n_outputs != n_outputs:
        fail(est, "the network's input or output size disagrees with "
                   "n_features_in_ or the classes")
    theta = _get(est, "_theta")
    if isinstance(theta, np.ndarray) and theta.shape != (model.n_params,):
        fail(est, f"_theta has shape {theta.shape}, not ({model.n_params},) as "
                  f"n_features_in_={n_features} and {n_outputs} outputs need")
    # finiteness costs a pass over the weights: checked where a model comes
    # in (load) and before training continues, not at every prediction (a
    # weight that is not finite gives NaN, never a read outside an array)
    array_attr(est, "_theta", theta, ndim=1, shape=(model.n_params,),
               dtypes=_FLOATS, finite=training or exports)
    if not theta.flags.c_contiguous:
        fail(est, "_theta is not a contiguous array")
    curves = _check_curves(est, n_classes)
    if training:
        _check_training_state(est, theta, curves)
    if exports:
        _check_exports(est, model, theta)
    return model


def _check_curves(est, n_classes):
    """The recorded curves have one entry per epoch, one column per class."""
    losses = _curve(est, "loss_curve_")
    n_epochs = None if losses is None else len(losses)
    _curve(est, "accuracy_curve_", n_epochs)
    per_class = getattr(est, "loss_curve_per_class_", None)
    if per_class is not None:
        array_attr(est, "loss_curve_per_class_", per_class, ndim=2,
               shape=(0 if n_epochs is None else n_epochs, n_classes))
    scores = _curve(est, "validation_scores_")
    if scores is not None:
        n_val = len(scores)
        _curve(est, "validation_loss_curve_", n_val)
        val_per_class = getattr(est, "validation_loss_curve_per_class_", None)
        if val_per_class is not None:
            array_attr(est, "validation_loss_curve_per_class_", val_per_class, ndim=2,
                   shape=(n_val, n_classes))
    return n_epochs


def _check_training_state(est, theta, n_epochs):
    """What only training reads: the optimizer state, the random state and
    the counters."""
    state = getattr(est, "_opt_state", None)
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        fail(est, "_opt_state is not a pair of arrays")
    for k, moment in enumerate(state):
        array_attr(est, f"_opt_state[{k}]", moment, ndim=1, shape=theta.shape,
               dtypes=(theta.dtype,), finite=True)
    array_attr(est, "_rng_state", getattr(est, "_rng_state", None), ndim=1, shape=(1,),
           dtypes=(np.dtype(np.uint64),))
    for name in ("_opt_t", "t_", "n_iter_"):
        _int(est, name)
    if hasattr(est, "_n_epochs_total"):
        _int(est, "_n_epochs_total")
    if hasattr(est, "_dropout_seed"):
        _int(est, "_dropout_seed")


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN
    return type(a) is type(b) and a == b


def _check_exports(est, model, theta):
    """The public weights are those the model predicts with (``_theta``)."""
    import copy

    shadow = copy.copy(est)
    try:
        shadow._export(model.unpack(theta))
    except AttributeError as exc:
        fail(est, f"an attribute the weights are published with is missing ({exc})")
    held = vars(est)
    for name, value in vars(shadow).items():
        if name not in held:
            fail(est, f"{name} is missing")
        if not _same(held[name], value):
            fail(est, f"{name} does not match the weights the model predicts with")


def objects_within(obj):
    """``obj`` and every object held inside it, each once: the values of
    lists, tuples, dicts and of the attributes of any object with a
    ``__dict__`` (estimators, the steps of a ``Pipeline``, the results of a
    search, the calibrated classifiers of ``CalibratedClassifierCV``). An
    object's attributes are read when the walk resumes after yielding it, so
    the caller may remove some first. Walks without recursion, so a deeply
    nested object cannot exhaust the stack."""
    import types

    plain = (type, types.ModuleType, types.FunctionType, types.MethodType,
             np.ndarray)
    seen, stack = set(), [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif hasattr(item, "__dict__") and not isinstance(item, plain):
            stack.extend(reversed(list(vars(item).values())))


def fitted_estimators(obj):
    """The fitted skdigits estimators inside ``obj`` (see
    :func:`objects_within`), each once."""
    from ._base import BaseMinibatchClassifier

    return [item for item in objects_within(obj)
            if isinstance(item, BaseMinibatchClassifier) and (
                "_theta" in vars(item) or any(  # fitted, as check_is_fitted says
                    k.endswith("_") and not k.startswith("__") for k in vars(item)))]
