"""IDX reader and writer: round trips, byte layout, and every corrupt-file case."""

import doctest
import gzip
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skdigits.datasets import _base, _idx, _mnist, read_idx, write_idx

IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def header(code, shape):
    return bytes([0, 0, code, len(shape)]) + b"".join(
        int(d).to_bytes(4, "big") for d in shape
    )


def put(path, payload, gz):
    path.write_bytes(gzip.compress(payload, mtime=0) if gz else payload)
    return path


# --------------------------------------------------------------------------
# Round trips


@settings(max_examples=60, deadline=None)
@given(
    array=st.sampled_from(list(IDX_DTYPES.values())).flatmap(
        lambda dt: hnp.arrays(
            # both byte orders on input; the file is always big-endian
            dtype=st.sampled_from([dt, dt.newbyteorder("=")]),
            shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
        )
    ),
    gz=st.booleans(),
)
def test_round_trip_every_dtype_and_shape(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("rt") / ("a-idx" + (".gz" if gz else ""))
    write_idx(path, array)
    out = read_idx(path)
    assert out.shape == array.shape
    assert out.dtype == array.dtype.newbyteorder("=")
    assert out.dtype.isnative
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, array)  # NaNs compare equal here
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz


@pytest.mark.parametrize("code, dtype", IDX_DTYPES.items())
@pytest.mark.parametrize("gz", [False, True])
def test_read_hand_written_file(tmp_path, code, dtype, gz):
    expected = np.arange(24).reshape(2, 3, 4).astype(dtype)
    path = put(tmp_path / "f", header(code, (2, 3, 4)) + expected.tobytes(), gz)
    out = read_idx(path)
    assert out.dtype == dtype.newbyteorder("=") and out.dtype.isnative
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("code, dtype", IDX_DTYPES.items())
def test_written_bytes_follow_the_spec(tmp_path, code, dtype):
    array = np.arange(6, dtype=dtype.newbyteorder("=")).reshape(3, 2)
    write_idx(tmp_path / "f", array)
    assert (tmp_path / "f").read_bytes() == header(code, (3, 2)) + array.astype(
        dtype
    ).tobytes()


def test_gzip_detected_by_magic_bytes_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "raw", array)
    write_idx(tmp_path / "zipped.gz", array)
    os.replace(tmp_path / "raw", tmp_path / "raw-named.gz")
    os.replace(tmp_path / "zipped.gz", tmp_path / "zipped-named-raw")
    np.testing.assert_array_equal(read_idx(tmp_path / "raw-named.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "zipped-named-raw"), array)


def test_gzip_output_is_reproducible(tmp_path):
    array = np.arange(1000, dtype=np.int32)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    a = (tmp_path / "a.gz").read_bytes()
    assert a == (tmp_path / "b.gz").read_bytes()
    assert a[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert a[3] & 0x08 == 0  # no file name stored


def test_write_leaves_no_temporary_file(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros(3, np.uint8))
    write_idx(tmp_path / "a.gz", np.ones(3, np.uint8))  # overwrite
    assert [p.name for p in tmp_path.iterdir()] == ["a.gz"]
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), np.ones(3))


def test_str_path_and_array_like(tmp_path):
    write_idx(str(tmp_path / "a"), np.array([[1.5, 2.0]], dtype=np.float32).tolist())
    out = read_idx(str(tmp_path / "a"))  # a list of floats becomes float64
    assert out.dtype == np.float64
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), [[1.5, 2.0]])


@pytest.mark.parametrize(
    "array, problem",
    [
        (np.array(3, dtype=np.uint8), "dimensions"),
        (np.zeros(2, dtype=np.int64), "dtype"),
        (np.zeros(2, dtype=np.uint16), "dtype"),
        (np.zeros(2, dtype=bool), "dtype"),
        (np.zeros(2, dtype=np.complex64), "dtype"),
        (np.array(["a"]), "dtype"),
    ],
)
def test_write_rejects(tmp_path, array, problem):
    path = tmp_path / "bad-idx"
    with pytest.raises(ValueError, match=problem) as info:
        write_idx(path, array)
    assert str(path) in str(info.value)
    assert not path.exists()


@pytest.mark.parametrize("name", ["raw-idx", "packed-idx.gz"])
@pytest.mark.parametrize("level", [10, -1, 2.5, "x", True])
def test_a_bad_compresslevel_is_refused_for_any_file(tmp_path, name, level):
    """A raw file raised only for some bad levels (and only after copying the
    array), and compresslevel="x" gave a bare TypeError."""
    with pytest.raises(ValueError, match="compresslevel must be an integer"):
        write_idx(tmp_path / name, np.zeros(3, np.uint8), compresslevel=level)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# Corrupt files: ValueError naming the file and the problem

U8 = 0x08
CORRUPT = {
    "empty": (b"", "truncated header"),
    "short magic": (b"\x00\x00\x08", "truncated header"),
    "wrong magic": (b"\x01\x02\x08\x01" + b"\x00\x00\x00\x01" + b"\x07",
                    "wrong magic number"),
    "second magic byte": (b"\x00\x01\x08\x01" + b"\x00\x00\x00\x01" + b"\x07",
                          "wrong magic number"),
    "unknown dtype": (b"\x00\x00\x0a\x01" + b"\x00\x00\x00\x01" + b"\x07",
                      "unknown data type code 0x0A"),
    "zero ndim": (b"\x00\x00\x08\x00" + b"\x07", "zero dimensions"),
    "truncated dims": (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02" * 2,
                       "truncated header"),
    "truncated data": (header(U8, (2, 3)) + bytes(5), "truncated data"),
    "truncated float data": (header(0x0E, (2,)) + bytes(15), "truncated data"),
    "trailing bytes": (header(U8, (2, 3)) + bytes(7), "trailing bytes"),
    # a raw file's size is known: too little data; a gzip stream's is not:
    # more than read_idx accepts, before anything is allocated
    "huge header": (header(0x0E, (2**32 - 1,) * 4),
                    "truncated data|more than the 2147483648 bytes"),
    "more dimensions than NumPy": (header(U8, (1,) * 65) + b"\x07",
                                   "65 dimensions; NumPy arrays have at most"),
}


@pytest.mark.parametrize("case", CORRUPT)
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_file(tmp_path, case, gz):
    payload, problem = CORRUPT[case]
    path = put(tmp_path / "corrupt-idx", payload, gz)
    with pytest.raises(ValueError, match=problem) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def _gz(payload=header(U8, (100,)) + bytes(range(100))):
    return gzip.compress(payload, mtime=0)


CORRUPT_GZIP = {
    "cut stream": _gz()[: len(_gz()) // 2],
    "bad crc": _gz()[:-8] + bytes([_gz()[-8] ^ 0xFF]) + _gz()[-7:],
    "bad length": _gz()[:-4] + b"\x00\x00\x00\x00",
    "bad deflate data": _gz()[:10] + b"\xff" * 20,
    "only magic": b"\x1f\x8b",
    "garbage after member": _gz() + b"garbage!",
}


@pytest.mark.parametrize("case", CORRUPT_GZIP)
def test_corrupt_gzip(tmp_path, case):
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(CORRUPT_GZIP[case])
    with pytest.raises(ValueError, match="corrupt gzip stream") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def _zeros_gz(path, payload_header, n_zeros):
    """``payload_header`` then ``n_zeros`` zero bytes, gzipped in chunks."""
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(payload_header)
        chunk = bytes(1 << 24)
        for _ in range(n_zeros // len(chunk)):
            f.write(chunk)
    return path


def _peak_bytes(func):
    import tracemalloc

    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    # 12 bytes declared, 256 MiB of zeros behind them: read 13 bytes, refuse
    path = _zeros_gz(tmp_path / "bomb-idx2-ubyte.gz", header(U8, (3, 4)), 2**28)
    assert path.stat().st_size < 2**21

    def read():
        with pytest.raises(ValueError, match="trailing bytes") as info:
            read_idx(path)
        assert str(path) in str(info.value)

    assert _peak_bytes(read) < 2**23


def test_declared_size_above_the_limit_fails_before_allocating(tmp_path):
    path = put(tmp_path / "big-idx1-ubyte", header(U8, (2**31 + 1,)), gz=True)
    with pytest.raises(ValueError, match="more than the") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    small = put(tmp_path / "small-idx1-ubyte", header(U8, (11,)) + bytes(11), gz=True)
    with pytest.raises(ValueError, match="more than the 10 bytes"):
        read_idx(small, max_bytes=10)
    assert read_idx(small, max_bytes=11).shape == (11,)


@pytest.mark.parametrize("code", [U8, 0x0E])
def test_peak_memory_is_about_the_array(tmp_path, code):
    dtype = IDX_DTYPES[code]
    n = (2**25) // dtype.itemsize  # 32 MiB of data
    path = _zeros_gz(tmp_path / "x-idx1.gz", header(code, (n,)), 2**25)
    out = {}
    peak = _peak_bytes(lambda: out.setdefault("a", read_idx(path)))
    assert out["a"].shape == (n,) and not out["a"].any()
    assert out["a"].dtype == dtype.newbyteorder("=")
    assert peak < 1.1 * 2**25


def test_missing_file(tmp_path):
    path = tmp_path / "nope-idx3-ubyte.gz"
    with pytest.raises(FileNotFoundError, match="nope-idx3-ubyte.gz"):
        read_idx(path)


def test_concatenated_gzip_members_are_one_stream(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    payload = header(U8, (10,)) + array.tobytes()
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(payload[:7]) + gzip.compress(payload[7:]))
    np.testing.assert_array_equal(read_idx(path), array)


# --------------------------------------------------------------------------
# Docstring examples of the datasets modules run as doctests


@pytest.mark.parametrize("module", [_idx, _base, _mnist])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
