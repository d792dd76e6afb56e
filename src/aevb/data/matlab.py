"""Reader for one variable of a MATLAB ``.mat`` file (v4 to v7.2; Frey Face is v5).

scipy's v5 reader is C code that trusts the file: a type code out of range or a byte count
past the end of its parent crashes the process (scipy issue #6072, pull request #25349), an
unknown array class ends in an ``UnboundLocalError``, and a corrupt dimension makes it build
an array of 10^9 elements out of a few bytes. :func:`_check_v5_elements` therefore walks
every tag and matrix header before scipy reads the file, and refuses a bad one with a
:class:`DataError`. scipy's warnings (e.g. "returned data may be corrupt") are errors too.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from aevb.data.errors import DataError, one_line, read_bytes

_V5_HEADER = 128
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_MI_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18})
"""The element type codes of the v5 format (miINT8 .. miUTF32); 8, 10 and 11 are unused."""
_MI_SMALL_TYPES = _MI_TYPES - {_MI_MATRIX, _MI_COMPRESSED}
_MI_UINT32 = 6
_MI_DIMS_TYPES = {5: "i", 6: "I"}
"""Dimensions are miINT32; some writers use miUINT32, which scipy also reads."""
_MX_CLASSES = range(1, 18)
"""Array class codes (mxCELL .. mxOPAQUE), the low byte of a matrix's array flags."""
_MX_SPARSE = 5


def read_mat_variable(
    path: str | os.PathLike,
    variable: str,
    *,
    shape: tuple[int, ...] | None = None,
    dtype: np.dtype | type | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Read ``variable`` from a ``.mat`` file and check its shape and dtype.

    Args:
        path: the file.
        variable: the MATLAB variable name, e.g. ``"ff"``.
        shape: the shape expected (as MATLAB stores it), or None for any.
        dtype: the dtype expected, or None for any.
        name: the file name used in error messages (default: the file's own).

    Returns:
        the array, C order.

    Raises:
        DataError: unreadable, truncated or corrupt file, missing variable, wrong shape or
            dtype.
    """
    from scipy.io import loadmat  # scipy is slow to import; only this reader needs it
    from scipy.io.matlab import MatReadError, matfile_version

    name = name or Path(path).name
    data = read_bytes(path, name)
    try:
        if matfile_version(io.BytesIO(data))[0] == 1:
            _check_v5_elements(data, name)
        with warnings.catch_warnings():  # e.g. "returned data may be corrupt": refuse it
            warnings.simplefilter("error", UserWarning)
            contents = loadmat(io.BytesIO(data))
    except DataError:
        raise
    except (
        MatReadError,
        ValueError,
        TypeError,
        OSError,
        EOFError,
        NotImplementedError,
        struct.error,
        zlib.error,
        OverflowError,
        MemoryError,
        IndexError,
        KeyError,
        UnicodeError,
        UserWarning,
    ) as e:
        raise DataError(f"{name}: not a readable MATLAB .mat file ({one_line(e)})") from None
    if variable not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise DataError(f"{name}: expected a variable {variable!r}, found {found}")
    x = np.asarray(contents[variable])
    if shape is not None and x.shape != tuple(shape):
        raise DataError(f"{name}: expected {variable!r} of shape {tuple(shape)}, found {x.shape}")
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise DataError(
            f"{name}: expected {variable!r} of dtype {np.dtype(dtype)}, found {x.dtype}"
        )
    return np.ascontiguousarray(x)


def _check_v5_elements(data: bytes, name: str) -> None:
    """Raise :class:`DataError` unless every element tag of a v5 file is in range.

    Checks, recursively through matrices and compressed variables, that each tag has a
    known type code and a byte count that fits inside its parent, and each matrix a sound
    header (:func:`_check_matrix_header`). ``data`` is the whole file: a 128-byte header
    (byte order at 126..127), then the variables.
    """
    order = "<" if data[126:128] == b"IM" else ">"
    _check_elements(data, _V5_HEADER, len(data), order, name, top=True)


def _check_elements(data: bytes, start: int, end: int, order: str, name: str, *, top: bool) -> None:
    """Walk the tagged elements in ``data[start:end]``; ``top``: variables of the file.

    Top-level elements follow each other without padding; elements inside a matrix are
    padded to 8 bytes. A small element packs type and byte count (<= 4) in one word.
    """
    corrupt = f"{name}: truncated or corrupt MATLAB .mat file"
    pos = start
    while pos < end:
        if end - pos < 8:
            raise DataError(f"{corrupt}: {end - pos} bytes left at byte {pos}, expected a tag")
        word, nbytes = struct.unpack_from(order + "II", data, pos)
        if word >> 16:
            if (word & 0xFFFF) not in _MI_SMALL_TYPES or word >> 16 > 4:
                raise DataError(f"{corrupt}: bad small element tag {word:#010x} at byte {pos}")
            pos += 8
            continue
        if word not in _MI_TYPES or (word == _MI_COMPRESSED and not top):
            raise DataError(f"{corrupt}: unknown element type {word} at byte {pos}")
        body, body_end = pos + 8, pos + 8 + nbytes
        if body_end > end:
            raise DataError(
                f"{corrupt}: element at byte {pos} claims {nbytes} bytes, {end - body} are left"
            )
        if word == _MI_MATRIX and nbytes:
            _check_matrix_header(data, body, body_end, order, name)
            _check_elements(data, body, body_end, order, name, top=False)
        elif word == _MI_COMPRESSED:
            inner = _inflate(data[body:body_end], name, pos)
            _check_elements(inner, 0, len(inner), order, name, top=False)
        pos = body_end if top else min(end, body + -(-nbytes // 8) * 8)


def _check_matrix_header(data: bytes, start: int, end: int, order: str, name: str) -> None:
    """The array flags and dimensions that open the matrix in ``data[start:end]``.

    The class (low byte of the flags) must be known, and the dimensions non-negative and,
    except for sparse matrices, no more elements than the matrix has bytes: every element
    takes at least one byte, so a corrupt dimension cannot make scipy build an array of
    10^9 elements out of a few bytes.
    """
    corrupt = f"{name}: truncated or corrupt MATLAB .mat file"
    if end - start < 24:
        raise DataError(f"{corrupt}: matrix at byte {start - 8} too short for its header")
    word, nbytes = struct.unpack_from(order + "II", data, start)
    if word != _MI_UINT32 or nbytes != 8:
        raise DataError(f"{corrupt}: expected array flags at byte {start}")
    mx_class = struct.unpack_from(order + "I", data, start + 8)[0] & 0xFF
    if mx_class not in _MX_CLASSES:
        raise DataError(f"{corrupt}: unknown array class {mx_class} at byte {start + 8}")
    word, nbytes = struct.unpack_from(order + "II", data, start + 16)
    dims_type, dims_at = word, start + 24
    if word >> 16:  # small element: type and byte count in one word, the values after it
        dims_type, nbytes, dims_at = word & 0xFFFF, word >> 16, start + 20
    if dims_type not in _MI_DIMS_TYPES or nbytes % 4 or dims_at + nbytes > end:
        raise DataError(f"{corrupt}: expected the array dimensions at byte {start + 16}")
    dims = struct.unpack_from(f"{order}{nbytes // 4}{_MI_DIMS_TYPES[dims_type]}", data, dims_at)
    if any(d < 0 for d in dims) or (mx_class != _MX_SPARSE and math.prod(dims) > end - start):
        raise DataError(
            f"{corrupt}: dimensions {list(dims)} at byte {dims_at} do not fit the "
            f"{end - start} bytes of the matrix"
        )


def _inflate(chunk: bytes, name: str, pos: int) -> bytes:
    """The zlib-compressed variable that starts at byte ``pos``."""
    try:
        return zlib.decompress(chunk)
    except (zlib.error, MemoryError) as e:
        raise DataError(
            f"{name}: truncated or corrupt MATLAB .mat file: compressed variable at byte "
            f"{pos} does not decompress ({e})"
        ) from None
