"""Data folders: the per-user data home and the search for dataset files."""

import os
from pathlib import Path

from sklearn.utils._param_validation import validate_params

__all__ = ["get_data_home", "DataNotFoundError"]

#: Environment variable naming a folder that holds ``mnist/`` and
#: ``fashion-mnist/`` with the IDX files.
DATA_ENV_VAR = "SKDIGITS_DATA"

#: System-wide dataset roots, searched last. Debian's ``dataset-*`` packages
#: install below ``/usr/share/datasets/<name>/`` (``dataset-fashion-mnist``
#: installs ``/usr/share/datasets/fashion-mnist/``); the same convention is
#: checked for ``mnist/``. Tests monkeypatch this tuple.
SYSTEM_DATA_DIRS = ("/usr/share/datasets",)


class DataNotFoundError(FileNotFoundError):
    """The dataset files were found in no searched folder and not downloaded.

    A subclass of :class:`FileNotFoundError` (hence of :class:`OSError`). Its
    message lists every folder that was searched and says how to provide the
    files. When a download failed, the exception it raised is the
    ``__cause__``.

    Parameters
    ----------
    message : str
        The error message.

    searched : iterable of str, default=()
        The folders that were searched, in search order.

    kind : {"digits", "fashion"}, default=None
        The dataset that was not found.

    reason : {"not_found", "missing_data_home", "download_failed"}, \
            default=None
        Why: the files are in none of the folders searched (and the
        download was disabled), the ``data_home`` given does not exist, or
        the download failed.

    Attributes
    ----------
    searched : list of str
        The folders that were searched, in search order.

    kind : str or None
        The ``kind`` parameter.

    reason : str or None
        The ``reason`` parameter, for callers that say it in their own
        words (the ``skdigits`` command names its options).

    See Also
    --------
    load_mnist : The loader that raises it.
    get_data_home : The per-user data folder, one of the places searched.

    Examples
    --------
    >>> from skdigits.datasets import DataNotFoundError, load_mnist
    >>> try:
    ...     X, y = load_mnist(download_if_missing=False, return_X_y=True)
    ... except DataNotFoundError:  # no local copy: fall back on the sample
    ...     X, y = load_mnist(sample=True, return_X_y=True)
    >>> X.shape[1]
    784
    """

    def __init__(self, message, searched=(), *, kind=None, reason=None):
        super().__init__(message)
        self.searched = list(searched)
        self.kind = kind
        self.reason = reason


@validate_params(
    {"data_home": [str, os.PathLike, None], "create": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def get_data_home(data_home=None, *, create=False):
    """Return the path of the skdigits per-user data folder.

    The folder is ``data_home`` if given. Otherwise it is
    ``$XDG_DATA_HOME/skdigits`` when the ``XDG_DATA_HOME`` environment
    variable holds an absolute path, and ``~/.local/share/skdigits`` when it
    does not (following the XDG Base Directory specification). A leading
    ``~`` is expanded to the user's home folder.

    Downloaded datasets are stored below this folder, in ``mnist/`` and
    ``fashion-mnist/``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder to use instead of the default.

    create : bool, default=False
        Whether to create the folder (and its parents) when it does not exist.

    Returns
    -------
    str
        Absolute path of the data folder.

    See Also
    --------
    load_mnist : Load MNIST or Fashion-MNIST, searching this folder.

    Examples
    --------
    >>> from skdigits.datasets import get_data_home
    >>> get_data_home("/tmp/skdigits_data")
    '/tmp/skdigits_data'
    """
    if data_home is None:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        xdg = os.path.expanduser(xdg)
        if not os.path.isabs(xdg):  # unset, empty or relative: ignored (XDG spec)
            xdg = os.path.join(os.path.expanduser("~"), ".local", "share")
        data_home = os.path.join(xdg, "skdigits")
    data_home = os.path.abspath(os.path.expanduser(os.fspath(data_home)))
    if create:
        os.makedirs(data_home, exist_ok=True)
    return data_home


def _find_files(folder, basenames):
    """Paths of ``basenames`` in ``folder`` (raw name first, then ``.gz``).

    Returns ``(found, missing)``: ``found`` maps each base name present to
    its path, ``missing`` lists the base names with neither file.
    """
    found, missing = {}, []
    for name in basenames:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            missing.append(name)
    return found, missing


def _candidate_folders(subfolder, data_home=None):
    """Folders to search for a dataset, in order, with where each comes from.

    Parameters
    ----------
    subfolder : str
        The dataset's folder name, ``"mnist"`` or ``"fashion-mnist"``.

    data_home : str or path-like, default=None
        The ``data_home`` argument of the loader.

    Returns
    -------
    candidates : list of (Path or None, str)
        ``(folder, origin)`` pairs: only ``data_home/subfolder`` and
        ``data_home`` when ``data_home`` is given. ``folder`` is None for an unset
        environment variable, which is still reported in error messages.
    """
    if data_home is not None:
        # an explicit folder is the only place searched: falling back on
        # another would silently ignore what the user asked for
        root = Path(get_data_home(data_home))
        return [(root / subfolder, "data_home argument"),
                (root, "data_home argument")]
    candidates = []
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        env_root = Path(os.path.abspath(os.path.expanduser(env)))
        candidates.append((env_root / subfolder, f"${DATA_ENV_VAR}"))
    else:
        candidates.append((None, f"${DATA_ENV_VAR} (not set)"))
    candidates.append((Path(get_data_home()) / subfolder, "user data folder"))
    for root in SYSTEM_DATA_DIRS:
        candidates.append((Path(root) / subfolder, "system folder"))
    return candidates


def _search(subfolder, basenames, data_home=None):
    """Find the first folder that holds all ``basenames``.

    Returns
    -------
    paths : dict or None
        Base name -> path for the first complete folder, or None.
    folder : Path or None
        That folder.
    origin : str or None
        Where the folder came from (``"data_home argument"``, ...).
    report : list of str
        One line per searched folder, saying what it lacked; used in the
        error message when nothing is found.
    searched : list of str
        The folders searched, in order.
    """
    report, searched = [], []
    for folder, origin in _candidate_folders(subfolder, data_home):
        if folder is None:
            report.append(f"  - {origin}")
            continue
        searched.append(str(folder))
        if not folder.is_dir():
            report.append(f"  - {folder} ({origin}): no such folder")
            continue
        found, missing = _find_files(folder, basenames)
        if not missing:
            return found, folder, origin, report, searched
        report.append(
            f"  - {folder} ({origin}): missing "
            + ", ".join(f"{m}[.gz]" for m in missing)
        )
    return None, None, None, report, searched
