"""Readers for NumPy ``.npy`` and ``.npz`` files of user data (no pickled objects).

The ``.npy`` header (shape and dtype) is read and checked against the bytes that follow it
before any array is allocated, so a corrupt header that claims 10^12 values is a one-line
:class:`DataError`, not an allocation failure; a ``.npz`` archive is read member by member
with :mod:`zipfile`, each member the same way.
"""

from __future__ import annotations

import io
import math
import os
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from aevb.data.errors import DataError, one_line

_HEADER_ERRORS = (ValueError, TypeError, KeyError, SyntaxError, tokenize.TokenError, EOFError)
"""What numpy's header parsers raise on a corrupt header (tokenize and ast run on it)."""
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,  # a compression method zipfile lacks
    RuntimeError,  # an encrypted member
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    UnicodeDecodeError,
)


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """The array stored in a ``.npy`` file, any shape and numeric dtype.

    Raises :class:`DataError` for an empty, truncated, corrupt or non-numeric file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            raise DataError(f"{path.name}: empty file, expected a NumPy .npy array")
        with open(path, "rb") as f:
            x = _read_array(f, size, path.name)
    except OSError as e:
        raise DataError(f"{path.name}: cannot read the file ({one_line(e)})") from None
    return _numeric(x, path.name)


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Examples and optional labels from a ``.npz`` file.

    The examples are the only array in the file, or the array named ``x``; labels are the
    array named ``y`` when present next to ``x``.

    Returns:
        ``(x, y)``: ``x`` of any shape with a numeric dtype; ``y`` or None.

    Raises :class:`DataError` for an empty, truncated or corrupt file, or no single/``x``
    array.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path.name}: empty file, expected a NumPy .npz archive")
        arrays = _read_archive(path)
    except DataError:
        raise
    except _ZIP_ERRORS as e:
        raise DataError(f"{path.name}: not a readable .npz file ({one_line(e)})") from None
    if len(arrays) == 1:
        return _numeric(next(iter(arrays.values())), path.name), None
    if "x" not in arrays:
        raise DataError(
            f"{path.name}: expected a single array or one named 'x', found keys {list(arrays)}"
        )
    return _numeric(arrays["x"], path.name), arrays.get("y")


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    """Every member of a ``.npz`` archive, keyed by its name without ``.npy``."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            with archive.open(info) as f:
                arrays[key] = _read_array(f, info.file_size, f"{path.name}: member {key!r}")
    if not arrays:
        raise DataError(f"{path.name}: empty archive, expected NumPy arrays")
    return arrays


def _read_array(f: BinaryIO, size: int, label: str) -> np.ndarray:
    """One ``.npy`` array from ``f``, which holds ``size`` bytes in all.

    The header's shape and dtype must account for exactly the bytes after it; only then
    are they read. Object (pickled) arrays are refused.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"format version {version[0]}.{version[1]} is not read")
    except _HEADER_ERRORS as e:
        raise DataError(f"{label}: not a readable .npy array ({one_line(e)})") from None
    if dtype.hasobject:
        raise DataError(f"{label}: expected a numeric array, found dtype {dtype} (pickles)")
    nbytes = math.prod(shape) * dtype.itemsize
    left = size - f.tell()
    if nbytes != left:
        raise DataError(
            f"{label}: truncated or corrupt .npy array: header gives shape {shape} of "
            f"{dtype} ({nbytes} bytes), found {left} bytes"
        )
    order = "F" if fortran_order else "C"
    if isinstance(f, io.BufferedReader):  # a file on disk: read straight into the array
        flat = np.fromfile(f, dtype=dtype, count=math.prod(shape))
    else:  # a zip member, whose size the archive only claims: bytes as they arrive
        flat = np.frombuffer(f.read(nbytes), dtype=dtype).copy()
    if flat.nbytes != nbytes:
        raise DataError(f"{label}: truncated .npy array: expected {nbytes} bytes of data")
    return flat.reshape(shape, order=order)


def _numeric(x: np.ndarray, name: str) -> np.ndarray:
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{name}: expected a numeric array, found dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{name}: expected real numbers, found dtype {x.dtype}")
    return x
