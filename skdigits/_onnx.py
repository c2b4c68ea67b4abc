"""ONNX export: skl2onnx converters, shape calculators and parsers for
skdigits' classifiers, and the function behind :func:`skdigits.io.to_onnx`.

The graph reproduces ``predict`` and ``predict_proba``:

- the public weights (``coefs_``/``intercepts_``, ``coef_``/``intercept_``)
  already act on the raw inputs (an MLP's standardisation is folded into its
  first layer), so the graph holds nothing else of the training;
- by default it computes in float64, as skdigits' prediction does whatever
  the model's dtype: the input is cast to double, the weights of a float32
  model are stored in float32 and cast to double once (ONNX Runtime folds
  that cast when it loads the graph);
- the probabilities follow ``_log_proba_rows``: softmax, a binary model's
  ``(sigmoid(-z), sigmoid(z))``, one-vs-rest's sigmoids divided by their sum
  (a softmax of their logarithms, finite on any finite logits), a
  multi-label model's sigmoid of each label; the label is the class of the
  largest probability, or for multi-label targets the indicator matrix of
  the positive logits (``predict``'s ``Z > 0``).

The outputs follow skl2onnx's conventions for classifiers (a label, then the
probabilities, which ``zipmap`` may turn into a list of dicts) and the
probabilities take the input's float type.

Nothing here imports onnx, skl2onnx (or NumPy) at import time:
:mod:`skdigits.io` imports this module to register the converters the moment
skl2onnx is imported (see :func:`register_when_imported`), so that importing
:mod:`skdigits.io` costs nothing where skl2onnx is never used.
"""

import importlib.util
import sys

from ._logging import logger

__all__ = ["MissingExtraError", "describe", "opset_problem", "register",
           "register_when_imported", "to_onnx"]

#: Largest ONNX file: protobuf refuses to serialise a message over 2 GiB.
PROTOBUF_LIMIT = 2**31 - 1
#: Room left below the limit for everything but the weights.
_MARGIN = 1 << 20
#: Oldest opset the graphs are written for (ONNX 1.4: Greater and Max of
#: doubles; onnxruntime runs them from 8, not 7).
MIN_OPSET = 9

_EXTRA = 'pip install "skdigits[onnx]"'

#: Options each skdigits converter accepts, with skl2onnx's classifier
#: options first (values: the allowed ones, the default first).
OPTIONS = {
    "zipmap": [True, False, "columns"],
    "nocl": [False, True],
    "output_class_labels": [False, True],
    "raw_scores": [False, True],
    "float64": [True, False],
}

_registered = False


class MissingExtraError(ImportError):
    """onnx or skl2onnx is not installed."""


def _require():
    """Import onnx and skl2onnx, or say which extra installs them."""
    missing = [name for name in ("onnx", "skl2onnx")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"ONNX export needs {' and '.join(missing)}, which "
            f"{'are' if len(missing) > 1 else 'is'} not installed: {_EXTRA}")
    import onnx
    import skl2onnx

    return onnx, skl2onnx


# ---------------------------------------------------------------- what a model is


def _classifiers():
    from .linear_model import SoftmaxRegression
    from .neural_network import MLPClassifier

    return MLPClassifier, SoftmaxRegression


class _Spec:
    """What the graph of one fitted skdigits estimator needs, read from its
    public weights (and, like its ``predict``, from the kind of target and
    loss it was fitted with)."""

    def __init__(self, est):
        import numpy as np
        from sklearn.utils.validation import check_is_fitted

        from ._fitted import InconsistentModelError, check_fitted_state

        MLPClassifier, _ = _classifiers()
        check_is_fitted(est)
        try:  # the public weights are exactly those predict uses
            check_fitted_state(est, exports=True)
        except InconsistentModelError as exc:
            raise ValueError(
                f"cannot export this {type(est).__name__}: {exc}") from None
        self.name = type(est).__name__
        if isinstance(est, MLPClassifier):
            self.layers = [(np.asarray(W), np.asarray(b))
                           for W, b in zip(est.coefs_, est.intercepts_)]
            self.activation = est.activation
        else:
            self.layers = [(np.asarray(est.coef_).T, np.asarray(est.intercept_))]
            self.activation = None
        self.dtype = self.layers[0][0].dtype
        self.n_features = int(self.layers[0][0].shape[0])
        n_outputs = int(self.layers[-1][0].shape[1])
        self.classes = np.asarray(est.classes_)
        # what predict reads: see BaseMinibatchClassifier._log_proba_rows
        if getattr(est, "_multilabel", False):
            self.kind = "multilabel"
        elif n_outputs == 1:
            self.kind = "binary"
        elif getattr(est, "_loss_code", 0) == 0:
            self.kind = "softmax"
        else:
            self.kind = "ovr"
        self.label_type = _label_type(self.classes, self.name, self.kind)

    def weight_bytes(self, float64):
        import numpy as np

        # float32 weights are stored as they are, even in a float64 graph
        size = 8 if float64 and self.dtype == np.float64 else 4
        return sum((W.size + b.size) * size for W, b in self.layers)


def _label_type(classes, name, kind):
    """``"int64"`` or ``"string"``: the type of the label output (skl2onnx's
    rule: integers, booleans and whole floats become int64)."""
    import numpy as np

    if kind == "multilabel" or classes.dtype.kind in "ib":
        return "int64"
    if classes.dtype.kind == "u":
        if int(classes.max()) < 2**63:
            return "int64"
        raise ValueError(
            f"cannot export this {name}: its classes_ reach {int(classes.max())}, "
            "beyond the largest int64 (2**63 - 1), and an ONNX label is an int64 "
            "or a string: train it on smaller integers or on strings")
    if classes.dtype.kind == "f":
        if np.all(np.isfinite(classes)) and np.all(classes == np.round(classes)):
            if np.all((classes >= -2.0**63) & (classes < 2.0**63)):
                return "int64"
            raise ValueError(
                f"cannot export this {name}: its classes_ {classes.tolist()[:6]} "
                "are whole numbers beyond the int64 range, and an ONNX label is "
                "an int64 or a string: train it on smaller integers or on strings")
        raise ValueError(
            f"cannot export this {name}: its classes_ {classes.tolist()[:6]} are "
            "floats that are not whole numbers, and an ONNX label is an int64 or a "
            "string: train it on integer or string labels")
    if classes.dtype.kind == "U" or all(isinstance(c, str) for c in classes):
        return "string"
    raise ValueError(
        f"cannot export this {name}: its classes_ are of type "
        f"{type(classes[0]).__name__}, and an ONNX label is an int64 or a string: "
        "train it on integer or string labels")


def _class_values(classes, label_type):
    import numpy as np

    if label_type == "int64":
        return np.asarray(classes).astype(np.int64)
    return np.array([str(c) for c in classes], dtype=object)


# ---------------------------------------------------------------- skl2onnx hooks


def _input_is_double(operator):
    from skl2onnx.common.data_types import DoubleTensorType

    return isinstance(operator.inputs[0].type, DoubleTensorType)


def _parse(scope, model, inputs, custom_parsers=None):
    """skl2onnx's classifier parser, with a clear refusal of a ZipMap over
    double probabilities (ONNX's ZipMap takes float32 only; ``"columns"``
    needs none)."""
    from skl2onnx._parse import _parse_sklearn_classifier
    from skl2onnx.common.data_types import DoubleTensorType

    options = scope.get_options(model, dict(zipmap=True))
    if options.get("zipmap") is True and isinstance(inputs[0].type,
                                                    DoubleTensorType):
        raise ValueError(
            f"cannot export this {type(model).__name__} with zipmap: its input is "
            "float64, so are its probabilities, and ONNX's ZipMap takes float32 "
            "only; pass zipmap=False (options={id(model): {'zipmap': False}} to "
            "skl2onnx) or a float32 sample")
    return _parse_sklearn_classifier(scope, model, inputs,
                                     custom_parsers=custom_parsers)


def _shape(operator):
    """Output types and shapes: the label (int64 or string; ``[N, labels]``
    for multi-label targets) and the probabilities (the input's float
    type)."""
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=1,
                                   output_count_range=2)
    spec = _Spec(operator.raw_operator)
    n = operator.inputs[0].get_first_dimension()
    shape = operator.inputs[0].type.shape
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != spec.n_features:
        raise ValueError(
            f"cannot export this {spec.name}: it takes {spec.n_features} features, "
            f"the input of its step in the graph has {shape[1]}")
    options = operator.scope_inst.get_options(operator.raw_operator, {"nocl": False})
    if spec.kind == "multilabel":
        label = Int64TensorType([n, len(spec.classes)])
    elif spec.label_type == "string" and not options.get("nocl", False):
        label = StringTensorType([n])
    else:
        label = Int64TensorType([n])
    operator.outputs[0].type = label
    proba = DoubleTensorType if _input_is_double(operator) else FloatTensorType
    operator.outputs[1].type = proba([n, len(spec.classes)])


def _convert(scope, operator, container):
    """Add the nodes of one fitted skdigits estimator."""
    import numpy as np
    from onnx import TensorProto, numpy_helper
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    est = operator.raw_operator
    spec = _Spec(est)
    options = container.get_options(est, dict(float64=True, nocl=False,
                                              raw_scores=False))
    double_in = _input_is_double(operator)
    double = bool(options["float64"]) or double_in
    ftype = TensorProto.DOUBLE if double else TensorProto.FLOAT
    fdtype = np.float64 if double else np.float32
    out_type = TensorProto.DOUBLE if double_in else TensorProto.FLOAT

    def name(base):
        return scope.get_unique_variable_name(base)

    def node(op, inputs, **attrs):
        out = name(op.lower())
        container.add_node(op, inputs, out, name=scope.get_unique_operator_name(op),
                           **attrs)
        return out

    def const(base, values, dtype=None):
        values = np.asarray(values, dtype=dtype)
        var = name(base)
        if values.dtype == object:  # strings
            container.add_initializer(var, TensorProto.STRING, list(values.shape),
                                      [s.encode("utf-8") for s in values])
        else:
            container.add_initializer(var, None, None,
                                      numpy_helper.from_array(values, var))
        return var

    def weights(base, values):
        """A weight in the graph's type; a float32 weight of a float64 graph
        is stored in float32 and cast (exact)."""
        values = np.ascontiguousarray(values)
        if double and values.dtype == np.float32:
            return node("Cast", [const(base, values)], to=ftype)
        return const(base, values.astype(fdtype, copy=False))

    H = operator.inputs[0].full_name
    if double != double_in or not isinstance(
            operator.inputs[0].type, (DoubleTensorType, FloatTensorType)):
        H = node("Cast", [H], to=ftype)
    last = len(spec.layers) - 1
    for layer, (W, b) in enumerate(spec.layers):
        H = node("MatMul", [H, weights("coefficient", W)])
        H = node("Add", [H, weights("intercepts", b)])
        if layer < last:
            H = _activation(node, const, spec.activation, H, fdtype)
    Z = H  # the logits
    if spec.kind == "softmax":
        P = node("Softmax", [Z], axis=1)
    elif spec.kind == "binary":
        P = node("Concat", [node("Sigmoid", [node("Neg", [Z])]),
                            node("Sigmoid", [Z])], axis=1)
    elif spec.kind == "ovr":
        # the sigmoids divided by their sum, as predict_proba computes them:
        # in logs, log sigmoid(z) = min(z, 0) - log(1 + exp(-|z|)), then a
        # softmax (sigmoid / sum of sigmoids would give 0 / 0 on a row whose
        # logits all lie below -745, -104 in float32)
        log_1p = node("Log", [node("Add", [
            const("one", np.ones(1, fdtype)),
            node("Exp", [node("Neg", [node("Abs", [Z])])])])])
        log_s = node("Sub", [node("Min", [Z, const("zero", np.zeros(1, fdtype))]),
                             log_1p])
        P = node("Softmax", [log_s], axis=1)
    else:  # multi-label
        P = node("Sigmoid", [Z])
    proba_out, label_out = operator.outputs[1].full_name, operator.outputs[0].full_name
    scores = P
    if options["raw_scores"]:  # decision_function, as skl2onnx's classifiers
        # give it (the converters of CalibratedClassifierCV, OneVsRestClassifier
        # and BaggingClassifier ask for it): two columns (-z, z) for two classes
        scores = node("Concat", [node("Neg", [Z]), Z], axis=1) \
            if spec.kind == "binary" else Z
    if out_type == ftype:
        container.add_node("Identity", [scores], proba_out,
                           name=scope.get_unique_operator_name("Identity"))
    else:
        container.add_node("Cast", [scores], proba_out, to=out_type,
                           name=scope.get_unique_operator_name("Cast"))
    if spec.kind == "multilabel":  # predict: Z > 0, per label
        positive = node("Greater", [Z, const("zero", np.zeros(1, fdtype))])
        container.add_node("Cast", [positive], label_out, to=TensorProto.INT64,
                           name=scope.get_unique_operator_name("Cast"))
        return
    index = node("ArgMax", [P], axis=1, keepdims=0)
    if options["nocl"]:
        container.add_node("Identity", [index], label_out,
                           name=scope.get_unique_operator_name("Identity"))
        return
    classes = const("classes", _class_values(spec.classes, spec.label_type))
    container.add_node("Gather", [classes, index], label_out, axis=0,
                       name=scope.get_unique_operator_name("Gather"))


def _activation(node, const, activation, H, fdtype):
    """A hidden layer's activation, as the kernels compute it."""
    import numpy as np

    from ._kernels._mlp import LEAKY_SLOPE

    if activation == "relu":
        return node("Relu", [H])
    if activation == "tanh":
        return node("Tanh", [H])
    if activation == "logistic":
        return node("Sigmoid", [H])
    if activation == "leaky_relu":
        # max(h, slope * h) is the kernels' "h if h > 0 else slope * h"; ONNX's
        # LeakyRelu holds its slope as a float32 attribute (0.01 is not one)
        slope = const("slope", np.array([LEAKY_SLOPE], dtype=fdtype))
        return node("Max", [H, node("Mul", [H, slope])])
    if activation == "identity":
        return H
    raise ValueError(f"cannot export the activation {activation!r}")


def register():
    """Register skdigits' converters, shape calculators and parsers with
    skl2onnx (once; later calls do nothing)."""
    global _registered
    if _registered:
        return
    _, skl2onnx = _require()
    for cls in _classifiers():
        skl2onnx.update_registered_converter(
            cls, f"Skdigits{cls.__name__}", _shape, _convert, parser=_parse,
            options=OPTIONS)
    _registered = True


class _RegisteringLoader:
    """A module loader that registers the converters once the module it
    loads (skl2onnx) has run; anything else is the wrapped loader's."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, attr):
        if attr == "_loader":  # not set yet (a copy): no endless recursion
            raise AttributeError(attr)
        return getattr(self._loader, attr)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        _remove_hook()
        self._loader.exec_module(module)
        _register_quietly()


class _RegisterOnImport:
    """A meta path finder that finds nothing itself: when skl2onnx is about
    to be imported, it hands back the spec the finders after it give, its
    loader wrapped so that the converters are registered once skl2onnx has
    loaded (``importlib.abc.MetaPathFinder``'s protocol, without importing
    that module and the 9 ms of ``importlib.resources`` it brings). It stays
    in place until skl2onnx is loaded: a look for skl2onnx
    (``importlib.util.find_spec``) that imports nothing leaves it armed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "skl2onnx":
            return None
        # ask the other finders directly (importlib.util.find_spec would
        # come back here)
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if isinstance(finder, _RegisterOnImport) or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and not isinstance(
                        spec.loader, _RegisteringLoader):
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


def _remove_hook():
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not isinstance(f, _RegisterOnImport)]


def _register_quietly():
    try:
        register()
    except Exception as exc:  # never break the import of skl2onnx
        logger.warning("skdigits could not register its ONNX converters with "
                       "skl2onnx (%s: %s); skdigits.io.to_onnx will say why",
                       type(exc).__name__, exc)


def register_when_imported():
    """Register the converters now if skl2onnx is already imported, else the
    moment it is (``skl2onnx.to_onnx`` then converts skdigits' estimators,
    alone or inside a pipeline)."""
    if "skl2onnx" in sys.modules:
        _register_quietly()
    elif not _registered and not any(isinstance(f, _RegisterOnImport)
                                     for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())


# ---------------------------------------------------------------- the export


def _final_step(estimator):
    """The estimator that makes the predictions: pipelines' last steps and
    searches' ``best_estimator_``, unwrapped."""
    from sklearn.pipeline import Pipeline

    est = estimator
    while True:
        if isinstance(est, Pipeline):
            est = est.steps[-1][1]
        elif hasattr(est, "best_estimator_"):
            est = est.best_estimator_
        else:
            return est


def _check_sample(X_sample):
    import numpy as np
    from scipy.sparse import issparse

    if issparse(X_sample):
        raise TypeError(
            "X_sample is a sparse matrix, but the input of an ONNX graph is a dense "
            "tensor: pass dense rows (e.g. X_sample[:1].toarray()); the graph then "
            "takes each row densely, every feature stored")
    if hasattr(X_sample, "columns") and hasattr(X_sample, "dtypes"):
        return X_sample  # a DataFrame: one graph input per column (skl2onnx)
    X = np.asarray(X_sample)
    if X.ndim == 1 and X.dtype.kind in "UO":  # documents (a text pipeline)
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(
            f"X_sample must be a 2-D array of at least one row (rows x features), "
            f"or documents, not of shape {X.shape}")
    if X.dtype.kind not in "fiubUO":
        raise TypeError(f"X_sample must hold numbers or strings, not {X.dtype}")
    if X.dtype.kind == "f" and X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32)
    return X[:1]


def opset_problem(target_opset):
    """Why ``target_opset`` cannot be written (``"8 is out of range: ..."``),
    or None (None too, or only the lower bound checked, where skl2onnx is
    not installed)."""
    if target_opset is None:
        return None
    latest = version = None
    if "skl2onnx" in sys.modules or importlib.util.find_spec("skl2onnx"):
        import skl2onnx

        latest = skl2onnx.get_latest_tested_opset_version()
        version = skl2onnx.__version__
    if target_opset < MIN_OPSET or latest is not None and target_opset > latest:
        return (f"{target_opset} is out of range: the graphs need opset "
                f"{MIN_OPSET} or later" + (
                    f", and skl2onnx {version} writes opsets up to {latest}"
                    if latest is not None else ""))
    return None


def _check_fitted_steps(estimator):
    """scikit-learn's ``check_is_fitted`` on ``estimator`` and, for a
    Pipeline, on each of its steps that is scikit-learn's or skdigits'
    (nested pipelines too): a third-party step may be stateless with no
    fitted attribute to tell, and skl2onnx names it anyway when it has no
    converter."""
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            if (step is not None and not isinstance(step, str)
                    and type(step).__module__.startswith(("sklearn.", "skdigits."))):
                _check_fitted_steps(step)


def to_onnx(estimator, X_sample, *, zipmap=False, float64=True, target_opset=None,
            options=None):
    """See :func:`skdigits.io.to_onnx`."""
    from sklearn.base import is_classifier

    from ._fitted import fitted_estimators, objects_within

    # up front: an unfitted pipeline failed inside skl2onnx with an
    # AttributeError on its first step, a non-estimator with one on its tags;
    # a Pipeline counts as fitted when its last step is, so each step is
    # checked (stateless ones, such as FunctionTransformer, pass)
    _check_fitted_steps(estimator)
    onnx, skl2onnx = _require()
    register()
    problem = opset_problem(target_opset)
    if problem:
        raise ValueError(f"target_opset={problem}")
    X = _check_sample(X_sample)
    MLPClassifier, SoftmaxRegression = _classifiers()
    ours = [obj for obj in objects_within(estimator)
            if isinstance(obj, (MLPClassifier, SoftmaxRegression))]
    fitted = {id(e) for e in fitted_estimators(estimator)}
    for est in ours:
        if id(est) not in fitted:
            continue  # an unfitted template (a search's estimator): not in the graph
        spec = _Spec(est)
        if spec.weight_bytes(float64) > PROTOBUF_LIMIT - _MARGIN:
            raise ValueError(
                f"cannot export this {spec.name}: its weights take "
                f"{spec.weight_bytes(float64) / 2**30:.1f} GiB, over the 2 GiB an "
                "ONNX file may hold")
    opts = {}
    final = _final_step(estimator)
    if is_classifier(final):
        opts[id(final)] = {"zipmap": zipmap}
    for est in ours:
        opts.setdefault(id(est), {})["float64"] = bool(float64)
    for key, value in (options or {}).items():
        opts.setdefault(key, {}).update(value)
    try:
        model = skl2onnx.to_onnx(estimator, X, options=opts, target_opset=target_opset,
                                 name=f"skdigits {type(estimator).__name__}")
    except (skl2onnx.common.exceptions.MissingShapeCalculator,
            skl2onnx.common.exceptions.MissingConverter) as exc:
        first = str(exc).strip().splitlines()[0]
        raise TypeError(f"cannot export this {type(estimator).__name__} to ONNX: "
                        f"{first} (skl2onnx converts scikit-learn's own estimators "
                        "and skdigits'; a third-party step needs its own "
                        "converter)") from None
    from . import __version__

    onnx.helper.set_model_props(model, {"skdigits_version": __version__,
                                        "float64": str(bool(float64))})
    return model


# ---------------------------------------------------------------- describing a graph


def _type_words(type_proto):
    from onnx import TensorProto

    which = type_proto.WhichOneof("value")
    if which == "tensor_type":
        t = type_proto.tensor_type
        elem = TensorProto.DataType.Name(t.elem_type).lower()
        dims = [d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "N")
                for d in t.shape.dim]
        return f"{elem} [{', '.join(dims)}]" if dims else elem
    if which == "sequence_type":
        return f"sequence of {_type_words(type_proto.sequence_type.elem_type)}"
    if which == "map_type":
        m = type_proto.map_type
        key = TensorProto.DataType.Name(m.key_type).lower()
        return f"map {key} -> {_type_words(m.value_type)}"
    return which or "unknown"


def describe(model):
    """``[(kind, name, type), ...]`` of an ONNX model's inputs then outputs,
    ``kind`` being ``"input"`` or ``"output"`` and ``type`` words such as
    ``float [N, 784]``."""
    initializers = {init.name for init in model.graph.initializer}
    rows = [("input", v.name, _type_words(v.type)) for v in model.graph.input
            if v.name not in initializers]
    rows += [("output", v.name, _type_words(v.type)) for v in model.graph.output]
    return rows
