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
"""

import io
import json
import os
import zipfile

from ._fileio import atomic_write

__all__ = ["dump", "load", "trusted_types", "UntrustedFileError"]

#: Name of the member holding skdigits' own metadata in a saved model.
METADATA_MEMBER = "skdigits.json"
#: Version of the metadata layout.
FORMAT_VERSION = 1


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
    ...         print("refused")
    refused
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
        them with ``return_metadata=True``.

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

    info = {"format": FORMAT_VERSION, "skdigits_version": __version__,
            "estimator": type(estimator).__name__, **(metadata or {})}
    text = json.dumps(info, indent=1, sort_keys=True)  # fails before writing
    # scikit-learn callbacks set with set_callbacks are objects of the
    # session (monitors, progress bars), not of the model: they are not saved,
    # so that load can trust every type in the file
    held = _take_sklearn_callbacks(estimator)
    try:
        buffer = io.BytesIO(sio.dumps(estimator))
    finally:
        for obj, callbacks in held:
            obj._skl_callbacks = callbacks
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(METADATA_MEMBER, text)
    with atomic_write(path) as fh:
        fh.write(buffer.getvalue())


def _take_sklearn_callbacks(obj, _seen=None):
    """Remove ``_skl_callbacks`` from ``obj`` and the estimators inside it
    (pipeline steps, search results, parameters); returns what was removed,
    as ``(estimator, callbacks)`` pairs, to put back."""
    from sklearn.base import BaseEstimator

    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    held = []
    if isinstance(obj, BaseEstimator):
        if "_skl_callbacks" in vars(obj):
            held.append((obj, vars(obj).pop("_skl_callbacks")))
        children = list(vars(obj).values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    elif isinstance(obj, dict):
        children = list(obj.values())
    else:
        return held
    for child in children:
        held += _take_sklearn_callbacks(child, seen)
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
        if not allow_pickle:
            raise UntrustedFileError(
                f"{path} is not a skops file; loading it as a pickle or joblib "
                "file would run code from the file. Load it only if you trust "
                "where it comes from: allow_pickle=True (skdigits evaluate "
                "--trust-pickle), or save models with skdigits.io.dump.")
        import joblib

        estimator, metadata = joblib.load(path), {}
    else:
        allowed = set(trusted_types()) | set(trusted or ())
        found = sio.get_untrusted_types(file=path)
        refused = sorted(set(found) - allowed)
        if refused:
            raise UntrustedFileError(
                f"{path} holds types that are not trusted: {', '.join(refused)}. "
                "Loading them may run code; if you trust the file, name them in "
                "`trusted`.")
        estimator = sio.load(path, trusted=found)
        metadata = _read_metadata(path)
    return (estimator, metadata) if return_metadata else estimator


def _read_metadata(path):
    with zipfile.ZipFile(path) as archive:
        if METADATA_MEMBER not in archive.namelist():
            return {}
        try:
            return dict(json.loads(archive.read(METADATA_MEMBER)))
        except (ValueError, TypeError):
            return {}
