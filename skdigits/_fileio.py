"""Writing files so that a crash or a kill never leaves a half-written one,
and checking an output folder before the work that fills it."""

import contextlib
import os
import secrets
import stat
import sys

__all__ = ["FolderInUseError", "ForeignFilesError", "OutputFolder", "atomic_write",
           "check_output_file", "check_writable_folder"]

#: How :func:`check_writable_folder` names its probe file.
_PROBE = ".skdigits-write-test-"
#: How the temporary files of an output folder's files end.
_TEMPORARY = ".skdigits.part"


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
def atomic_write(path, mode="wb", encoding=None, *, temporary=None):
    """Open a temporary file beside ``path`` for writing; on success, flush,
    fsync and rename it onto ``path``.

    A kill at any moment leaves either the file that was at ``path`` before,
    untouched, or the complete new one; an exception inside the block removes
    the temporary file and leaves ``path`` as it was. The new file gets the
    usual permissions (0666 less the umask). A symbolic link at ``path`` is
    replaced, never written through; a folder, device, pipe or socket there
    is refused with ``OSError`` before anything is written.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    mode : {"wb", "w"}, default="wb"
        Binary or text.
    encoding : str, default=None
        Encoding of a text file.
    temporary : str, default=None
        The temporary file's name, in the folder of ``path``; it must not
        exist. Default: a new name, ``.NAME.XXXXXXXX.part`` (NAME shortened
        when the whole would be longer than the file system takes).

    Yields
    ------
    file object
        The temporary file, open for writing.
    """
    path = os.path.abspath(os.fspath(path))
    _refuse_non_regular(path)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, temporary or _temporary_name(folder, name))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                     | getattr(os, "O_BINARY", 0), 0o666)
    except (FileNotFoundError, NotADirectoryError) as exc:
        # the user's path, not the temporary name beside it
        why = ("does not exist" if isinstance(exc, FileNotFoundError)
               else "is not a folder")
        raise type(exc)(exc.errno, f"cannot write {path}: its folder {folder} "
                        f"{why}") from None
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


def _refuse_non_regular(path, what="file"):
    """``OSError`` when ``path`` exists and is not a regular file: the whole
    file is replaced by a rename, which would put a regular file in place of
    a device (``/dev/null``), a pipe or a socket. A symbolic link is replaced
    itself, never written through: nothing outside the named path changes."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there (a missing
        return  # folder: atomic_write's open names it)
    if stat.S_ISLNK(mode):  # the link goes; what it points to must be a file
        try:
            mode = os.stat(path).st_mode
        except OSError:  # points nowhere: dangling, a loop, out of reach
            return
    if stat.S_ISDIR(mode):
        kind = "a link to a folder" if os.path.islink(path) else "a folder"
        raise IsADirectoryError(f"the {what} {path} is {kind}; name a file")
    if not stat.S_ISREG(mode):
        kind = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "a pipe" if stat.S_ISFIFO(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise OSError(f"the {what} {path} is {kind}; skdigits writes a new file "
                      "and renames it into place, so it writes only regular files")


def _name_max(folder):
    """The longest file name, in bytes, that ``folder`` takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows)
        return 255


def _temporary_name(folder, name):
    """``.NAME.XXXXXXXX.part``, NAME shortened as far as the folder's longest
    name needs (a 250-byte name is legal; its temporary one was not)."""
    suffix = f".{secrets.token_hex(4)}.part"
    room = max(_name_max(folder) - 1 - len(suffix), 1)
    encoded = os.fsencode(name)
    if len(encoded) <= room:
        return "." + name + suffix
    # cut whole characters only (a cut one would not decode on Windows)
    return "." + encoded[:room].decode(sys.getfilesystemencoding(), "ignore") + suffix


def check_output_file(path, what="output file"):
    """Raise ``OSError`` naming ``path`` unless :func:`atomic_write` can
    write it: a file name (not a folder, nor a name ending in a separator)
    that the file system takes, that is not a device, pipe or socket, in a
    folder where files can be created. For commands that check before their
    work."""
    path = os.fspath(path)
    if not path or path.endswith((os.sep, os.altsep or os.sep)):
        raise IsADirectoryError(f"the {what} {path!r} names a folder; name a file")
    target = os.path.abspath(path)
    folder, name = os.path.split(target)
    check_writable_folder(folder, what=f"folder of the {what}")
    limit = _name_max(folder)
    if len(os.fsencode(name)) > limit:
        raise OSError(f"the {what} name {name[:40]}... is {len(os.fsencode(name))} "
                      f"bytes long; the file system takes at most {limit}")
    _refuse_non_regular(target, what)


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
    probe = os.path.join(folder, f"{_PROBE}{secrets.token_hex(4)}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise PermissionError(
            f"cannot write into the {what} {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


class ForeignFilesError(ValueError):
    """An output folder holds files that the command did not write."""


class FolderInUseError(OSError):
    """Another skdigits run is writing into the output folder."""


@contextlib.contextmanager
def _folder_lock(folder, message):
    """Hold an exclusive lock on ``folder`` in the block; raise
    ``FolderInUseError(message)`` when another process (or another call in
    this one) holds it.

    The lock is ``flock`` on the folder itself, so no lock file is left
    behind and a killed run holds nothing. Where there is no ``flock``
    (Windows) or the file system refuses it, the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUseError(message) from None
        except OSError:
            pass  # no locks on this file system: as without flock
        yield
    finally:
        os.close(fd)  # releases the lock


class OutputFolder:
    """A folder that one command (``skdigits report``, ``skdigits search``)
    owns: it holds the command's files and nothing else.

    The command's files have fixed names (``is_own_name``). A folder is the
    command's when it holds the command's marker file, written before any
    other file so that an interrupted run is recognised too, or when
    ``legacy(folder)`` says so (a folder written before markers existed).
    The marker lists the files the command wrote there (and, while a run
    goes on, those it is about to write and their temporary files, see
    :meth:`temporary`): only files whose exact names it lists are ever
    removed, so a file of the user's is never taken for a stale one, even
    when its name looks like the command's or like a temporary file.
    One run at a time owns the folder (:meth:`claim`).

    Parameters
    ----------
    marker : str
        The marker file's name.
    generator : str
        What the marker says, e.g. ``"skdigits report"``.
    is_own_name : callable
        ``is_own_name(name)``: whether the command writes a file of that name.
    fixed : iterable of str
        The names every run writes (the page, the JSON, the marker): never
        stale.
    what : str
        How messages call the folder, e.g. ``"report folder"``.
    legacy : callable, default=None
        ``legacy(folder)``: whether an unmarked folder is the command's.
    error : type, default=ForeignFilesError
        The exception raised for foreign files.
    """

    def __init__(self, marker, generator, is_own_name, fixed, what, legacy=None,
                 error=ForeignFilesError):
        self.marker = marker
        self.generator = generator
        self._own = is_own_name
        self.fixed = frozenset(fixed) | {marker}
        self.what = what
        self.legacy = legacy
        self.error = error

    def is_own(self, name):
        """Whether ``name`` is one of the command's file names. Temporary
        files are not: they are the command's only when the marker lists
        them."""
        return name == self.marker or bool(self._own(name))

    @staticmethod
    def temporary(name):
        """The name of the temporary file that :meth:`write` writes ``name``
        through: the same in every run, so that the marker can list it
        before it exists and a later run can remove it when a kill left it."""
        return f".{name}{_TEMPORARY}"

    def write(self, folder, name, mode="wb", encoding=None):
        """:func:`atomic_write` of the file ``name`` in ``folder``, through
        its :meth:`temporary` file (which :meth:`prepare` listed)."""
        return atomic_write(os.path.join(folder, name), mode, encoding,
                            temporary=self.temporary(name))

    def _marker(self, folder):
        """The marker's content, or None when the folder has no valid one."""
        import json

        try:
            with open(os.path.join(folder, self.marker), encoding="utf-8") as fh:
                content = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(content, dict) or content.get("generator") != self.generator:
            return None
        return content

    def _write_marker(self, folder, files):
        """Write the marker, listing ``files`` and its own temporary file
        (which a kill while it is written would leave)."""
        import json

        files = set(files) | {self.temporary(self.marker)}
        with self.write(folder, self.marker, "w", encoding="utf-8") as fh:
            json.dump({"generator": self.generator, "files": sorted(files)}, fh)

    def is_marked(self, folder):
        """Whether ``folder`` is the command's."""
        return self._marker(folder) is not None or bool(
            self.legacy is not None and self.legacy(folder))

    @contextlib.contextmanager
    def claim(self, folder, *, force=False, planned=()):
        """:meth:`prepare` ``folder`` and own it until the block ends; yields
        what :meth:`prepare` returns.

        Raises :class:`FolderInUseError` when another run (of this command
        or another one sharing the folder) owns it: two runs into one folder
        would each list only their own files in the marker. A folder this
        call made is removed again when the block fails before writing any
        file but the marker.
        """
        created = not os.path.lexists(folder)
        os.makedirs(folder, exist_ok=True)
        with _folder_lock(folder, (
                f"the {self.what} {folder} is in use by another skdigits run: "
                "wait for it to end, or name another folder")):
            # only while this run holds the lock: a run refused because
            # another holds it never touches the other's folder
            try:
                yield self.prepare(folder, force=force, planned=planned)
            except BaseException:
                if created:
                    self._unmake(folder)
                raise

    def _unmake(self, folder):
        """Remove ``folder``, made by a run that failed before writing
        anything but its marker (a missing data folder, an interrupt): a
        failed command leaves no empty report folder behind. Anything else
        in it stays, and so does the folder."""
        ours = {self.marker, self.temporary(self.marker)}
        with contextlib.suppress(OSError):
            if set(os.listdir(folder)) <= ours:
                for name in ours:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(folder, name))
                os.rmdir(folder)

    def prepare(self, folder, *, force=False, planned=()):
        """Create ``folder`` or check what it holds, before any work, and
        mark it; call it through :meth:`claim`, which also locks the folder.

        Any file that the marker does not list (except the names every run
        writes; in a folder from before markers, any of the command's
        names), or any file at all in a folder that is not the command's,
        raises ``error`` unless ``force``; with
        ``force`` those files are left alone, except files named like the
        ``planned`` ones, which are replaced. Listed temporary files, left
        by a run that was killed, are removed. Returns the command's files
        from earlier runs there, for :meth:`finish`.
        """
        os.makedirs(folder, exist_ok=True)
        marker = self._marker(folder)
        ours = marker is not None or bool(
            self.legacy is not None and self.legacy(folder))
        # markers of the first versions named the generator only: such a
        # folder is judged by the command's names, as one from before markers
        has_list = marker is not None and isinstance(marker.get("files"), list)
        if has_list:
            listed = {f for f in marker["files"] if isinstance(f, str)}
        else:
            listed = set()
        # a probe of check_writable_folder lives for a moment: never foreign
        entries = [name for name in os.listdir(folder) if not name.startswith(_PROBE)]
        # in a marked folder a file is the command's when the marker lists it
        # (or every run writes it): a user's file that only bears one of the
        # command's names (fashion_samples.png beside a digits-only report)
        # was taken for the command's and replaced without --force
        foreign = sorted(name for name in entries if not ours or not (
            name in self.fixed
            or (self.is_own(name) and (not has_list or name in listed))
            or (name in listed and self._is_own_temporary(name))))
        if foreign and not force:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            why = ("skdigits did not write" if ours else
                   f"and no {self.generator} marker")
            raise self.error(
                f"the {self.what} {folder} holds {len(foreign)} file(s) {why} "
                f"({shown}): name an empty or new folder, or pass --force to "
                "write beside them")
        if not has_list and ours:  # written before file lists: its names
            listed = {name for name in entries if self.is_own(name)}
        previous = {name for name in entries if name in listed} - {self.marker}
        temporaries = {self.temporary(name) for name in {*planned, self.marker}}
        for name in sorted(previous & temporaries):
            self._remove(folder, name)  # a killed run's: in the way of this one
        previous -= temporaries
        # written first: an interrupted run leaves a folder that says which
        # files may be its own
        self._write_marker(folder, previous | set(planned) | temporaries)
        return previous

    @staticmethod
    def _remove(folder, name):
        """Remove the file ``name`` in ``folder`` (never through a symbolic
        link); returns its path, or None when it is not a plain file."""
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
            return path
        return None

    def finish(self, folder, previous, written):
        """Remove the command's files that an earlier (or interrupted) run
        left and this one did not write (``previous``: files the marker
        listed; only those with the command's names or temporary names of
        them, never through a symbolic link), then list this run's files in
        the marker. Returns the paths removed."""
        removed = []
        for name in sorted(set(previous) - set(written) - self.fixed):
            if ((self.is_own(name) or self._is_own_temporary(name))
                    and (path := self._remove(folder, name)) is not None):
                removed.append(path)
        self._write_marker(folder, set(written) - {self.marker})
        return removed

    def _is_own_temporary(self, name):
        """Whether ``name`` is the :meth:`temporary` of one of the command's
        file names."""
        inner = name[1:-len(_TEMPORARY)] if (
            name.startswith(".") and name.endswith(_TEMPORARY)) else ""
        return bool(inner) and self.is_own(inner)
