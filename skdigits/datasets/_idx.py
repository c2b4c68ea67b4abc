"""Reading and writing IDX files, the format of the MNIST distributions.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension,
then the array data in C order and big-endian byte order:

* magic bytes 0 and 1 are zero;
* magic byte 2 is the data type code (see ``_IDX_DTYPES``);
* magic byte 3 is the number of dimensions.

Files may be gzip-compressed; compression is detected from the gzip magic
bytes ``1f 8b``, never from the file name.
"""

import gzip
import logging
import numbers
import os
import zlib

import numpy as np

from .._fileio import atomic_write

__all__ = ["read_idx", "write_idx"]

logger = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian dtype stored in the file.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# (kind, itemsize) of a native or non-native dtype -> IDX type code.
_IDX_CODES = {(dt.kind, dt.itemsize): code for code, dt in _IDX_DTYPES.items()}

_MAX_DIM = 2**32 - 1
#: Most dimensions a NumPy array can have (64 in NumPy 2, 32 before).
_MAX_NDIM = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32


#: Largest array ``read_idx`` accepts by default (bytes): far above any real
#: IDX dataset (full MNIST's training images are 47 MB, EMNIST's largest split
#: 0.55 GB), so a header declaring more is refused before anything is
#: allocated.
MAX_BYTES = 2**31

#: Bytes read per call while streaming the data.
_CHUNK = 1 << 20


def _corrupt_gzip(path, exc):
    # gzip.BadGzipFile (CRC, length or header errors) is an OSError; a cut
    # stream raises EOFError; damaged deflate data raises zlib.error.
    return ValueError(f"Cannot read IDX file {path!r}: corrupt gzip stream ({exc})")


def _read_exact(stream, n):
    """Up to ``n`` bytes from ``stream`` (fewer only at the end)."""
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_idx(path, *, max_bytes=MAX_BYTES):
    """Read an IDX file into a NumPy array.

    The file may be gzip-compressed or raw; compression is detected from the
    gzip magic bytes (``1f 8b``), not from the file name. The array has the
    data type and shape declared in the file header, in native byte order.

    The file is read as a stream: the header is checked first, then exactly
    the bytes it declares are read into the array, then one more byte to
    detect trailing data. Memory therefore stays at about the size of the
    declared array, whatever a compressed file expands to.

    Parameters
    ----------
    path : str or os.PathLike
        Path of the IDX file, for example ``train-images-idx3-ubyte.gz``.

    max_bytes : int, default=2**31
        Largest array, in bytes, that the header may declare; a header that
        declares more raises ``ValueError`` before anything is allocated.

    Returns
    -------
    ndarray
        Writable, C-contiguous array of dtype ``uint8``, ``int8``, ``int16``,
        ``int32``, ``float32`` or ``float64`` (native byte order), with the
        shape the header declares.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a valid IDX file: a truncated header, a wrong
        magic number, an unknown data type code, zero dimensions or more
        than NumPy supports, a data size that does not match the header
        (truncated data or trailing bytes), a declared size above
        ``max_bytes``, or a corrupt gzip stream. The message names the file.

    See Also
    --------
    write_idx : Write an array to an IDX file.
    load_mnist : Load MNIST or Fashion-MNIST from IDX files.

    Examples
    --------
    >>> import numpy as np
    >>> from skdigits.datasets import read_idx, write_idx
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "labels-idx1-ubyte.gz")
    ...     write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
    ...     read_idx(path)
    array([5, 0, 4], dtype=uint8)
    """
    path = os.fspath(path)
    return _open_stream(
        path, lambda stream, size: _read_stream(stream, path, max_bytes, size))


def _fail(path, problem):
    return ValueError(f"Invalid IDX file {path!r}: {problem}")


def _read_header(stream, path):
    """The dtype (as stored), shape and header size that ``stream``'s IDX
    header declares; the stream is left at the first byte of data."""

    def fail(problem):
        return _fail(path, problem)

    magic = _read_exact(stream, 4)
    if len(magic) < 4:
        raise fail(
            f"truncated header: {len(magic)} bytes, the magic number needs 4"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise fail(
            f"wrong magic number 0x{magic.hex()}: the first two bytes must be zero"
        )
    code, ndim = magic[2], magic[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise fail(f"unknown data type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise fail("the header declares zero dimensions")
    if ndim > _MAX_NDIM:
        raise fail(
            f"the header declares {ndim} dimensions; NumPy arrays have at most "
            f"{_MAX_NDIM}"
        )
    header_size = 4 + 4 * ndim
    dims = _read_exact(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise fail(
            f"truncated header: {4 + len(dims)} bytes, {ndim} dimensions need "
            f"{header_size}"
        )
    shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
    return _IDX_DTYPES[code], shape, header_size


def _open_stream(path, read):
    """``read(stream, file_size)`` on the IDX file ``path``, decompressed
    when it is gzip-compressed (``file_size`` None then)."""
    path = os.fspath(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            return read(raw, os.fstat(raw.fileno()).st_size)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return read(stream, None)
        except (OSError, EOFError, zlib.error) as exc:
            raise _corrupt_gzip(path, exc) from exc


def read_idx_header(path):
    """The data type (native byte order) and shape an IDX file declares,
    from its header alone: a caller can check them before any data is read
    or memory allocated. Raises ``ValueError`` as :func:`read_idx` does for
    a bad header."""
    dtype, shape, _ = _open_stream(
        path, lambda stream, size: _read_header(stream, os.fspath(path)))
    return dtype.newbyteorder("="), shape


def _read_stream(stream, path, max_bytes, file_size):
    """Read one IDX array from ``stream``; ``file_size`` is the size of a raw
    file (None for a decompressed stream)."""

    def fail(problem):
        return _fail(path, problem)

    dtype, shape, header_size = _read_header(stream, path)
    count = 1
    for d in shape:
        count *= d  # Python ints: no overflow for absurd headers
    expected = count * dtype.itemsize
    declared = f"shape {shape} of {dtype.name} ({expected} bytes)"
    if file_size is not None and file_size - header_size != expected:
        actual = file_size - header_size
        if actual < expected:
            raise fail(
                f"truncated data: the header declares {declared} but the file "
                f"holds {actual} bytes after the header"
            )
        raise fail(
            f"{actual - expected} trailing bytes after the {expected} bytes of "
            f"data the header declares (shape {shape}, {dtype.name})"
        )
    if expected > max_bytes:
        raise fail(
            f"the header declares {declared}, more than the {max_bytes} bytes "
            "read_idx accepts (max_bytes)"
        )
    array = np.empty(count, dtype=dtype)
    view = memoryview(array.view(np.uint8).reshape(-1))
    got = 0
    while got < expected:
        n = stream.readinto(view[got:got + _CHUNK])
        if not n:
            raise fail(
                f"truncated data: the header declares {declared} but the file "
                f"holds {got} bytes after the header"
            )
        got += n
    if stream.read(1):
        raise fail(
            f"trailing bytes after the {expected} bytes of data the header "
            f"declares (shape {shape}, {dtype.name})"
        )
    if not dtype.isnative:  # in place: no second copy of the data
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    try:
        return array.reshape(shape)
    except ValueError:  # no elements, but dimensions NumPy cannot index
        raise fail(f"the header declares shape {shape}, which NumPy cannot "
                   "hold") from None


def write_idx(path, array, *, compresslevel=9):
    """Write an array to an IDX file, gzip-compressed if ``path`` ends in ``.gz``.

    The file is written to a temporary file in the same folder, flushed to
    disk and then renamed, so an interrupted write (even a kill) never leaves
    a partial file under ``path``, and the file that was there stays intact
    until the new one is complete. Compressed output is reproducible: the gzip
    header carries no file name and a zero modification time.

    Parameters
    ----------
    path : str or os.PathLike
        Destination path. A name ending in ``.gz`` gives a gzip-compressed
        file.

    array : array-like
        Array with at least one dimension, of dtype ``uint8``, ``int8``,
        ``int16``, ``int32``, ``float32`` or ``float64`` (either byte order).
        Each dimension must be below ``2**32``.

    compresslevel : int, default=9
        The gzip compression level, an integer from 0 to 9 (checked first,
        whatever the file; raw files do not use it).

    Raises
    ------
    ValueError
        If ``compresslevel`` is not an integer from 0 to 9, or the array has
        zero dimensions, more than 255 dimensions, a dimension of ``2**32``
        or more, or a dtype IDX cannot store.

    See Also
    --------
    read_idx : Read an IDX file.

    Examples
    --------
    >>> import numpy as np
    >>> from skdigits.datasets import read_idx, write_idx
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "x-idx2-double")
    ...     write_idx(path, np.eye(2))
    ...     read_idx(path)
    array([[1., 0.],
           [0., 1.]])
    """
    path = os.fspath(path)
    if (isinstance(compresslevel, bool)
            or not isinstance(compresslevel, numbers.Integral)
            or not 0 <= compresslevel <= 9):
        raise ValueError(
            f"compresslevel must be an integer in [0, 9], got {compresslevel!r}")
    array = np.asarray(array)
    code = _IDX_CODES.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        supported = ", ".join(dt.name for dt in _IDX_DTYPES.values())
        raise ValueError(
            f"Cannot write {path!r}: IDX cannot store dtype {array.dtype} "
            f"(supported: {supported})"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(
            f"Cannot write {path!r}: IDX needs 1 to 255 dimensions, the array "
            f"has {array.ndim}"
        )
    if any(d > _MAX_DIM for d in array.shape):
        raise ValueError(
            f"Cannot write {path!r}: dimension of shape {array.shape} exceeds "
            f"{_MAX_DIM}"
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(
        array.shape, dtype=">u4"
    ).tobytes()
    data = np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    # Write beside the target, fsync, then rename: readers never see a
    # partial file, and a kill leaves the previous file intact.
    with atomic_write(path) as f:
        if path.endswith(".gz"):
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=f, compresslevel=compresslevel,
                mtime=0,
            ) as gz:
                gz.write(header)
                gz.write(data)
        else:
            f.write(header)
            f.write(data)
    logger.debug("Wrote IDX file %s (shape %s, %s)", path, array.shape, array.dtype)

