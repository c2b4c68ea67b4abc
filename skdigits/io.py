"""Saving and loading fitted models.

Models are saved in the `skops <https://skops.readthedocs.io>`_ format: a zip
file of JSON and NumPy arrays that loads without running code from the file,
as long as only trusted types are allowed in. :func:`load` allows skdigits'
own estimator classes besides what skops trusts by default (NumPy arrays,
plain Python values, scikit-learn's estimators such as ``Pipeline``), and
refuses anything else unless named in ``trusted``.

Pickle and joblib files run code from the file when they are loaded, so
:func:`load` refuses them unless ``allow_pickle=True`` says that the file
comes from a source you trust (``skdigits evaluate --trust-pickle`` on the
command line).

:func:`to_onnx` converts a fitted model to ONNX, to predict where Python does
not run (``skdigits export`` on the command line).
"""

import io
import json
import os
import zipfile

from . import _onnx
from ._fileio import atomic_write

__all__ = ["dump", "load", "to_onnx", "trusted_types", "ModelFileError",
           "UntrustedFileError"]

# skl2onnx.to_onnx converts skdigits' estimators (alone or in a pipeline) once
# this module is imported: the converters are registered when skl2onnx is
# imported, before or after this module (nothing is imported here)
_onnx.register_when_imported()

#: Name of the member holding skdigits' own metadata in a saved model.
METADATA_MEMBER = "skdigits.json"
#: Version of the metadata layout.
FORMAT_VERSION = 1
#: Metadata keys that describe the file itself, set by :func:`dump` only.
RESERVED_METADATA = ("format", "skdigits_version", "estimator")

#: Largest ``schema.json`` (the skops file's description of the objects) and
#: metadata member read; a real model's are a few kilobytes.
SCHEMA_LIMIT = 64 << 20
METADATA_LIMIT = 1 << 20
#: Most members a model file may hold.
MEMBER_LIMIT = 100_000
#: What the members outside skdigits estimators (a pipeline's transformers)
#: may inflate to: this many times the file's size, or ``OTHER_FLOOR`` bytes.
OTHER_RATIO = 32
OTHER_FLOOR = 64 << 20
#: Room a skdigits estimator's arrays get beyond its parameter count: the
#: stored width of an output layer is padded to at most this many columns.
_PAD_ROOM = 64


class ModelFileError(ValueError):
    """A model file that is damaged, oversized or inconsistent.

    Raised by :func:`load` for a damaged or truncated file, one declaring
    arrays larger than the model it describes, or one holding a model whose
    attributes disagree with each other. A subclass of :class:`ValueError`.

    See Also
    --------
    load : Load a model saved by :func:`dump`.

    Examples
    --------
    >>> import os, tempfile
    >>> from skdigits.io import ModelFileError, load
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "model.skops")
    ...     with open(path, "wb") as fh:
    ...         _ = fh.write(b"PK\\x03\\x04 cut short")
    ...     try:
    ...         load(path)
    ...     except ModelFileError as exc:
    ...         refused = "truncated" in str(exc)
    >>> refused
    True
    """


class UntrustedFileError(ValueError):
    """A model file that cannot be loaded without running code from it.

    Raised by :func:`load` for a pickle or joblib file (unless
    ``allow_pickle=True``), or for a skops file holding types nobody trusted.
    A subclass of :class:`ValueError`.

    See Also
    --------
    load : Load a model saved by :func:`dump`.
    trusted_types : The types trusted beyond skops' defaults.

    Examples
    --------
    >>> import os, pickle, tempfile
    >>> from skdigits.io import UntrustedFileError, load
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "model.pkl")
    ...     with open(path, "wb") as fh:
    ...         pickle.dump({"not": "a model"}, fh)
    ...     try:
    ...         load(path)
    ...     except UntrustedFileError as exc:
    ...         refused = "would run code" in str(exc)
    >>> refused
    True
    """


def trusted_types():
    """Return the types :func:`load` trusts beyond skops' defaults.

    These are the skdigits estimator classes; further types are allowed only
    through the ``trusted`` parameter of :func:`load`.

    Returns
    -------
    list of str
        Fully qualified class names, as :func:`skops.io.get_untrusted_types`
        reports them.

    See Also
    --------
    load : Load a model, trusting these types.
    skops.io.get_untrusted_types : The types in a file that skops does not
        trust by default.

    Examples
    --------
    >>> from skdigits.io import trusted_types
    >>> sorted(name.rsplit(".", 1)[1] for name in trusted_types())
    ['MLPClassifier', 'SoftmaxRegression']
    """
    from . import MLPClassifier, SoftmaxRegression

    return [f"{cls.__module__}.{cls.__qualname__}"
            for cls in (MLPClassifier, SoftmaxRegression)]


def dump(estimator, path, *, metadata=None):
    """Save ``estimator`` to ``path`` in the skops format, atomically.

    The file is written beside ``path`` and renamed onto it once complete and
    flushed to disk, so a crash or a kill leaves either the previous file or
    the new one, never a truncated file.

    Parameters
    ----------
    estimator : object
        A fitted skdigits estimator, or a scikit-learn object holding one
        (a ``Pipeline``, a fitted ``GridSearchCV``...).
    path : str or os.PathLike
        The file to write; ``.skops`` is the customary suffix.
    metadata : dict, default=None
        JSON-serialisable values stored beside the model (the command line
        records the dataset the model was trained on); :func:`load` returns
        them with ``return_metadata=True``. The keys ``"format"``,
        ``"skdigits_version"`` and ``"estimator"`` are the file's own.

    See Also
    --------
    load : Load a model saved by this function.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skdigits import SoftmaxRegression
    >>> from skdigits.io import dump, load
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1], [0.1, 0.8]])
    >>> clf = SoftmaxRegression(random_state=0).fit(X, [0, 1, 1, 0])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "model.skops")
    ...     dump(clf, path, metadata={"note": "toy"})
    ...     again, meta = load(path, return_metadata=True)
    >>> again.predict(X).tolist(), meta["note"]
    ([0, 1, 1, 0], 'toy')
    """
    import skops.io as sio

    from . import __version__

    reserved = sorted(set(metadata or ()) & set(RESERVED_METADATA))
    if reserved:  # they overrode the file's own and made it unreadable
        raise ValueError(
            f"metadata may not set {', '.join(map(repr, reserved))}: "
            f"{', '.join(RESERVED_METADATA)} describe the file itself")
    info = {**(metadata or {}), "format": FORMAT_VERSION,
            "skdigits_version": __version__, "estimator": type(estimator).__name__}
    text = json.dumps(info, indent=1, sort_keys=True)  # fails before writing
    # scikit-learn callbacks set with set_callbacks are objects of the
    # session (monitors, progress bars), not of the model: they are not saved,
    # so that load can trust every type in the file
    held = _take_sklearn_callbacks(estimator)
    try:
        buffer = io.BytesIO(sio.dumps(estimator))
    except RecursionError:
        raise ValueError(
            f"cannot save the {type(estimator).__name__}: it holds objects nested "
            "too deeply for a model file (look at the values of its parameters, "
            "such as callbacks)") from None
    finally:
        for obj, callbacks in held:
            obj._skl_callbacks = callbacks
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(METADATA_MEMBER, text)
    with atomic_write(path) as fh:
        fh.write(buffer.getvalue())


def _take_sklearn_callbacks(obj):
    """Remove ``_skl_callbacks`` from ``obj`` and the estimators inside it
    (pipeline steps, search results, parameters); returns what was removed,
    as ``(estimator, callbacks)`` pairs, to put back."""
    from sklearn.base import BaseEstimator

    from ._fitted import objects_within

    held = []
    for item in objects_within(obj):  # removed before the walk reads them
        if isinstance(item, BaseEstimator) and "_skl_callbacks" in vars(item):
            held.append((item, vars(item).pop("_skl_callbacks")))
    return held


def load(path, *, allow_pickle=False, trusted=None, return_metadata=False):
    """Load a model saved by :func:`dump` without running code from the file.

    A skops file is loaded when every type it holds is trusted: skops'
    defaults, :func:`trusted_types` and the names in ``trusted``. Any other
    file is refused with :class:`UntrustedFileError`, unless
    ``allow_pickle=True`` loads it with :func:`joblib.load`.

    Parameters
    ----------
    path : str or os.PathLike
        A skops file (as :func:`dump` writes), or with ``allow_pickle=True`` a
        pickle or joblib file.
    allow_pickle : bool, default=False
        Whether to load a file that is not a skops file as a pickle (with
        :func:`joblib.load`). Loading a pickle runs whatever code the file
        holds: allow it only for files from a source you trust.
    trusted : list of str, default=None
        Further type names to allow in a skops file, beyond skops' defaults
        and :func:`trusted_types` (for a ``Pipeline`` holding a third-party
        transformer, say). Check what a file holds with
        :func:`skops.io.get_untrusted_types`.
    return_metadata : bool, default=False
        Whether to return the metadata stored with the model as well (an empty
        dict for files without it).

    Returns
    -------
    estimator : object
        The model.
    metadata : dict
        Only with ``return_metadata=True``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UntrustedFileError
        If the file is not a skops file and ``allow_pickle`` is False, or if
        it holds types that are not trusted.

    See Also
    --------
    dump : Save a model.

    Examples
    --------
    See :func:`dump`.
    """
    import skops.io as sio

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            if fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06"):
                raise ModelFileError(
                    f"{path} is a damaged or truncated skops file (a zip file "
                    "whose directory cannot be read): save the model again.")
        if not allow_pickle:
            raise UntrustedFileError(
                f"{path} is not a skops file; loading it as a pickle or joblib "
                "file would run code from the file. Load it only if you trust "
                "where it comes from: allow_pickle=True (skdigits evaluate "
                "--trust-pickle), or save models with skdigits.io.dump.")
        import joblib

        estimator, metadata = joblib.load(path), {}
    else:
        _check_declared_sizes(path)
        metadata = _read_metadata(path)
        _check_format(metadata, path)
        allowed = set(trusted_types()) | set(trusted or ())
        found = sio.get_untrusted_types(file=path)
        refused = sorted(set(found) - allowed)
        if refused:
            raise UntrustedFileError(
                f"{path} holds types that are not trusted: {', '.join(refused)}. "
                "Loading them may run code; if you trust the file, name them in "
                "`trusted`.")
        try:
            estimator = sio.load(path, trusted=found)
        except (ValueError, TypeError, KeyError, AttributeError, OSError,
                RecursionError, zipfile.BadZipFile) as exc:
            raise ModelFileError(
                f"{path} is not a readable skops model file: "
                f"{type(exc).__name__}: {exc}") from exc
    _check_fitted(estimator, path)
    return (estimator, metadata) if return_metadata else estimator


def _check_format(metadata, path):
    """Refuse a file of a later model file format than this version reads,
    before its objects are built: they may mean something else now."""
    from . import __version__

    fmt = metadata.get("format", FORMAT_VERSION)
    # only an integer is a format number: before dump reserved the key, a
    # user's metadata could overwrite it with anything (such files load)
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT_VERSION:
        writer = metadata.get("skdigits_version")
        raise ModelFileError(
            f"{path} was written in model file format {fmt}"
            + (f" (skdigits {writer})" if isinstance(writer, str) else "")
            + f"; skdigits {__version__} reads format {FORMAT_VERSION} and "
            "earlier: upgrade skdigits to load it.")


def _check_fitted(obj, path):
    """Every fitted skdigits estimator in ``obj`` agrees with itself, and its
    public weights are those it predicts with (see ``_fitted``)."""
    from ._fitted import InconsistentModelError, check_fitted_state, fitted_estimators

    for est in fitted_estimators(obj):
        try:
            check_fitted_state(est, training=True, exports=True)
        except InconsistentModelError as exc:
            raise ModelFileError(f"{path}: {exc}") from None


def _check_declared_sizes(path):
    """Refuse a skops file before anything large is inflated.

    Every member's size is declared in the zip directory and every array's
    shape in its ``.npy`` header: both must agree, whatever the member's
    name; every member must be one the file's objects use; each skdigits
    estimator's arrays must fit the structure the file gives it (its
    feature, output, class and epoch counts); the rest (a pipeline's
    transformers) may inflate to at most ``OTHER_RATIO`` times the file's
    size (or ``OTHER_FLOOR``); and all of it must fit the memory available.
    """
    from ._system import check_memory

    def refuse(why):
        raise ModelFileError(f"{path} is refused: {why}.")

    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MEMBER_LIMIT:
                refuse(f"it holds {len(infos):,} members")
            sizes = {info.filename: info.file_size for info in infos}
            if sizes.get("schema.json", SCHEMA_LIMIT + 1) > SCHEMA_LIMIT:
                refuse("its schema.json is missing or larger than "
                       f"{SCHEMA_LIMIT >> 20} MiB")
            if sizes.get(METADATA_MEMBER, 0) > METADATA_LIMIT:
                refuse(f"its {METADATA_MEMBER} is larger than "
                       f"{METADATA_LIMIT >> 20} MiB")
            schema = json.loads(archive.read("schema.json"))
            refs = _file_refs(schema)
            unused = set(sizes) - set(refs) - {"schema.json", METADATA_MEMBER}
            if unused:
                refuse(f"it holds members no object uses: {sorted(unused)[:3]}")
            missing = set(refs) - set(sizes)
            if missing:
                refuse(f"its objects use members it lacks: {sorted(missing)[:3]}")
            infos = {info.filename: info for info in infos}
            headers = {name: _npy_header(archive, infos[name], refuse)
                       for name, kind in refs.items() if kind == "numpy"}
            caps = _structural_caps(schema, archive, headers)
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError,
            RecursionError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path} is a damaged skops file: "
                             f"{type(exc).__name__}: {exc}") from None
    for name, (count, _) in headers.items():
        cap = caps.get(name)
        if cap is not None and count > cap:
            refuse(f"{name} declares an array of {count:,} values, more than the "
                   f"{cap:,} its model can hold")
    other = sum(size for name, size in sizes.items()  # not capped above
                if name in refs and not (name in caps and name in headers))
    allowed = max(OTHER_FLOOR, OTHER_RATIO * os.path.getsize(path))
    if other > allowed:
        refuse(f"its objects other than skdigits estimators declare {other:,} "
               f"bytes, more than the {allowed:,} a file of its size may inflate "
               "to")
    total = sum(sizes.values())
    try:  # skops reads a member's bytes, then NumPy makes the array of them
        check_memory(2 * total, f"loading {path}")
    except MemoryError as exc:
        refuse(str(exc))


def _file_refs(schema):
    """``{member: kind}`` of every member the schema's objects read (kind:
    ``"numpy"`` for an array stored as ``.npy``, else the node's type)."""
    refs, stack = {}, [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                kind = node.get("type")
                if node.get("__loader__") == "NdArrayNode" or kind == "numpy":
                    kind = "numpy"
                refs[node["file"]] = str(kind)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return refs


def _npy_header(archive, info, refuse):
    """``(values, nbytes)`` declared by a ``.npy`` member's header, which
    must account for the member's declared size exactly."""
    import numpy as np

    with archive.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        start = fh.tell()
    if dtype.hasobject:
        refuse(f"{info.filename} holds Python objects")
    count = 1
    for n in shape:
        count *= int(n)
    nbytes = count * dtype.itemsize
    if start + nbytes != info.file_size:
        refuse(f"{info.filename} declares {info.file_size:,} bytes but its header "
               f"{shape} of {dtype} needs {start + nbytes:,}")
    return count, nbytes


def _structural_caps(schema, archive, headers):
    """The most values each array of a skdigits estimator in ``schema`` may
    hold, by member name: its parameter count (from its layer sizes or its
    feature and output counts), its curves' epochs times its classes."""
    caps = {}
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if (node.get("__class__") in _ESTIMATOR_NAMES
                and str(node.get("__module__", "")).startswith("skdigits")
                and isinstance(node.get("content"), dict)
                and isinstance(node["content"].get("content"), dict)):
            attrs = node["content"]["content"]
            cap = _estimator_cap(attrs, archive, headers)
            for name in _file_refs(attrs):
                caps[name] = cap
            continue
        stack.extend(node.values())
    return caps


#: The class names of skdigits' estimators, as a skops schema names them.
_ESTIMATOR_NAMES = ("MLPClassifier", "SoftmaxRegression")


def _json_value(node, default=None):
    """The value of a skops JSON node (a number or list), or ``default``."""
    if not isinstance(node, dict):
        return default
    content = node.get("content")
    if node.get("is_json") and isinstance(content, str):
        try:
            return json.loads(content)
        except ValueError:
            return default
    if isinstance(content, list):  # a list node: its items' values
        return [_json_value(item) for item in content]
    return default


def _estimator_cap(attrs, archive, headers):
    """The most values any one array of this estimator may hold."""
    import numpy as np

    def count(value):
        return int(value) if isinstance(value, int) and value >= 0 else 0

    n_features = count(_json_value(attrs.get("n_features_in_"), 0))
    n_outputs = count(_json_value(attrs.get("_n_outputs"), 0))
    classes = attrs.get("classes_")
    n_classes = (headers.get(classes.get("file"), (0, 0))[0]
                 if isinstance(classes, dict) else 0)
    sizes = [n_features, n_outputs]
    sizes_node = attrs.get("_sizes")
    if isinstance(sizes_node, dict) and sizes_node.get("file") in headers:
        n, nbytes = headers[sizes_node["file"]]
        if nbytes <= 8 * 4096:  # a few layers: small enough to read
            with archive.open(sizes_node["file"]) as fh:
                sizes = [count(int(v)) for v in np.load(fh).ravel()]
    n_params = sum((a + 1) * (b + _PAD_ROOM) for a, b in zip(sizes[:-1], sizes[1:]))
    curve = _json_value(attrs.get("loss_curve_"), [])
    n_epochs = len(curve) if isinstance(curve, list) else 0
    return max(n_params, (n_epochs + 1) * (max(n_classes, n_outputs) + 1),
               n_features, n_classes, 64)


def _read_metadata(path):
    with zipfile.ZipFile(path) as archive:
        if METADATA_MEMBER not in archive.namelist():
            return {}
        try:
            return dict(json.loads(archive.read(METADATA_MEMBER)))
        except (ValueError, TypeError):
            return {}


def to_onnx(estimator, X_sample, *, zipmap=False, float64=True, target_opset=None,
            options=None):
    """Convert a fitted model to ONNX, to predict where Python cannot run.

    Works for :class:`~skdigits.SoftmaxRegression` and
    :class:`~skdigits.MLPClassifier`, alone or inside a scikit-learn
    ``Pipeline`` or ``ColumnTransformer`` with scikit-learn's own
    transformers, through skl2onnx (``pip install "skdigits[onnx]"``). Once
    :mod:`skdigits.io` is imported, ``skl2onnx.to_onnx`` converts them too.

    The graph reproduces ``predict`` and ``predict_proba``: it computes in
    float64 as skdigits does (whatever the model's dtype), on the public
    weights, into which an MLP's standardisation is already folded. Its
    outputs follow skl2onnx's conventions for classifiers: ``label`` (int64
    or string; for multi-label targets the int64 indicator matrix), then
    ``probabilities`` (one column per class or label, in the input's float
    type).

    Parameters
    ----------
    estimator : object
        A fitted skdigits estimator, or a fitted scikit-learn object holding
        one (``Pipeline``, ``ColumnTransformer``).
    X_sample : array-like of shape (n_samples, n_features) or (n_samples,)
        A few rows of the input, dense: the graph's input takes their type
        (float32 gives a float32 input and float32 probabilities, float64
        float64 ones) and their number of features. A pandas DataFrame gives
        one input per column, as in skl2onnx. Strings (documents, for a text
        pipeline such as ``TfidfVectorizer``; 1-D as scikit-learn takes them)
        give a string input of one column.
    zipmap : bool or "columns", default=False
        False: the probabilities are a tensor. True: a list of dicts, class to
        probability (ONNX's ZipMap; float32 inputs only). ``"columns"``: one
        output per class (of the input's float type).
    float64 : bool, default=True
        Compute in float64, as skdigits' ``predict_proba`` does: the
        probabilities agree to about 1e-15 (a float64 model) or 1e-7 (a
        float32 model, whose weights are rounded to float32). False
        computes in the input's type, float32 for a float32 input: faster,
        within about 1e-6.
    target_opset : int, default=None
        ONNX opset of the graph; None: the latest skl2onnx supports.
    options : dict, default=None
        Further skl2onnx options, ``{id(step) or class: {name: value}}``
        (for skdigits' estimators: ``nocl``, ``output_class_labels``, and
        ``raw_scores``, which outputs ``decision_function`` in place of the
        probabilities).

    Returns
    -------
    onnx.ModelProto
        The graph; ``model.SerializeToString()`` gives the file's bytes.

    Raises
    ------
    ImportError
        If onnx or skl2onnx is not installed (the message names the extra).
    TypeError
        If ``X_sample`` is sparse (ONNX inputs are dense tensors), or a step
        of the pipeline has no skl2onnx converter.
    ValueError
        If a skdigits estimator cannot be expressed: labels that are neither
        integers nor strings, weights over ONNX's 2 GiB limit, or a ZipMap
        of float64 probabilities.

    See Also
    --------
    dump : Save a model in the skops format, to load it again in Python.
    skl2onnx.to_onnx : The conversion this function calls.

    Notes
    -----
    A row whose float64 logits overflow (inputs around 1e300) is computed
    again in extended precision by skdigits; the graph gives NaN there.

    Examples
    --------
    >>> import numpy as np
    >>> from skdigits import SoftmaxRegression
    >>> from skdigits.io import to_onnx
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1], [0.1, 0.8]],
    ...              dtype=np.float32)
    >>> clf = SoftmaxRegression(random_state=0).fit(X, ["b", "a", "a", "b"])
    >>> model = to_onnx(clf, X)
    >>> [out.name for out in model.graph.output]
    ['label', 'probabilities']
    """
    return _onnx.to_onnx(estimator, X_sample, zipmap=zipmap, float64=float64,
                         target_opset=target_opset, options=options)
