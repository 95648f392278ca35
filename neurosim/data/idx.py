"""A reader for the IDX format of MNIST and Fashion-MNIST, gzip-compressed or raw.

An IDX file is a header followed by the data, all big-endian:

- bytes 0-1: zero; byte 2: the element type (``0x08`` uint8, ``0x09`` int8,
  ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64);
  byte 3: the number of dimensions ``d``;
- ``d`` unsigned 32-bit sizes, then ``prod(sizes)`` elements, row-major.

So MNIST images have the magic number ``0x00000803`` (uint8, 3 dimensions) and labels
``0x00000801``. Every problem (bad gzip stream, wrong magic, unexpected number of
dimensions, too few or too many data bytes) raises :class:`~neurosim.errors.DataError`
naming the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from neurosim.errors import DataError

#: Element type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's content, decompressed if it is a gzip stream (detected by its magic)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc.strerror or exc}") from None
    if not raw.startswith(_GZIP_MAGIC):
        if path.suffix == ".gz":
            raise DataError(f"IDX file {path} ends in .gz but is not a gzip stream (first bytes {raw[:4].hex()})")
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(f"IDX file {path} is a truncated gzip stream (the download or copy was cut short)") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataError(f"IDX file {path} is a corrupt gzip stream: {exc}") from None


def parse_idx(data: bytes, source: str = "<bytes>", ndim: int | None = None) -> np.ndarray:
    """Decode the bytes of an IDX file into a native-endian numpy array.

    Parameters
    ----------
    data
        The uncompressed file content.
    source
        How to name the data in error messages (usually the file path).
    ndim
        If given, the number of dimensions the file must have.

    Examples
    --------
    >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])).tolist()
    [7, 8, 9]
    """
    if len(data) < 4:
        raise DataError(f"IDX file {source} is too short ({len(data)} bytes) to hold a header")
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"IDX file {source} has a bad magic number 0x{data[:4].hex()}: the first two bytes must be zero"
        )
    type_code, dims = data[2], data[3]
    if type_code not in IDX_TYPES:
        raise DataError(
            f"IDX file {source} has unknown element type 0x{type_code:02x} "
            f"(magic 0x{data[:4].hex()}); known: {', '.join(f'0x{c:02x}' for c in IDX_TYPES)}"
        )
    if dims == 0:
        raise DataError(f"IDX file {source} declares 0 dimensions")
    if ndim is not None and dims != ndim:
        raise DataError(f"IDX file {source} has {dims} dimensions, expected {ndim} (magic 0x{data[:4].hex()})")
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataError(f"IDX file {source} is truncated inside its header ({len(data)} of {header} bytes)")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=dims, offset=4))
    if 0 in shape:
        raise DataError(f"IDX file {source} declares shape {shape}, which holds no data")
    dtype = IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(data) - header
    if actual < expected:
        raise DataError(
            f"IDX file {source} is truncated: shape {shape} needs {expected} data bytes, found {actual}"
        )
    if actual > expected:
        raise DataError(
            f"IDX file {source} has {actual - expected} unexpected trailing bytes after the {expected} "
            f"data bytes of shape {shape}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) into a numpy array.

    Raises :class:`~neurosim.errors.DataError` naming ``path`` when the file is
    missing, unreadable, not a valid gzip stream, or not a well-formed IDX file
    (magic number, number of dimensions ``ndim`` if given, byte count).
    """
    path = Path(path)
    return parse_idx(_read_bytes(path), source=str(path), ndim=ndim)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``compress`` or the name ends in .gz).

    Used to make small test files; the element type follows the array's dtype.
    """
    path = Path(path)
    arr = np.asarray(array)
    for code, dtype in IDX_TYPES.items():
        if arr.dtype.kind == dtype.kind and arr.dtype.itemsize == dtype.itemsize:
            break
    else:
        raise DataError(
            f"cannot write dtype {arr.dtype} as IDX; use one of uint8, int8, int16, int32, float32, float64"
        )
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(arr, dtype=dtype).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path
