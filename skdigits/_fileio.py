"""Writing files so that a crash or a kill never leaves a half-written one,
and checking an output folder before the work that fills it."""

import contextlib
import os
import secrets

__all__ = ["atomic_write", "check_writable_folder"]


def _fsync_folder(folder):
    """Make a rename in ``folder`` durable (a no-op where folders cannot be
    opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Open a temporary file beside ``path`` for writing; on success, flush,
    fsync and rename it onto ``path``.

    A kill at any moment leaves either the file that was at ``path`` before,
    untouched, or the complete new one; an exception inside the block removes
    the temporary file and leaves ``path`` as it was. The new file gets the
    usual permissions (0666 less the umask).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    mode : {"wb", "w"}, default="wb"
        Binary or text.
    encoding : str, default=None
        Encoding of a text file.

    Yields
    ------
    file object
        The temporary file, open for writing.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with open(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def check_writable_folder(folder, what="output folder"):
    """Raise ``OSError`` naming ``folder`` unless files can be created in it.

    Tries for real (creates and removes an empty file), so a read-only file
    system or a folder of another user is caught even where permission bits
    would not tell (as root).
    """
    folder = os.fspath(folder) or "."
    if not os.path.exists(folder):
        raise FileNotFoundError(f"the {what} {folder} does not exist")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"the {what} {folder} is not a folder")
    probe = os.path.join(folder, f".skdigits-write-test-{secrets.token_hex(4)}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise PermissionError(
            f"cannot write into the {what} {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)
