"""Reader for the IDX format of MNIST (``*-idx3-ubyte``, ``*-idx1-ubyte``), gzip or plain.

Layout: two zero bytes, a type code, the number of dimensions, then each dimension as a
big-endian uint32, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from aevb.data.errors import DataError, one_line, read_bytes

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike, *, name: str | None = None) -> np.ndarray:
    """Decode an IDX file; gunzip it first when its name ends in ``.gz``.

    Args:
        path: the file.
        name: the file name used in error messages (default: the file's own).

    Returns:
        the array in native byte order: uint8 ``(N, 28, 28)`` for MNIST images, uint8
        ``(N,)`` for labels.

    Raises:
        DataError: corrupt gzip data, a bad magic number, or a header whose shape does not
            match the number of bytes that follow it.
    """
    name = name or Path(path).name
    data = read_bytes(path, name)
    if name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{name}: corrupt gzip data ({one_line(e)})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        found = data[:4].hex(" ") if data else "an empty file"
        raise DataError(
            f"{name}: not an IDX file: expected magic bytes 00 00 <type> <ndim>, found {found}"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: IDX header truncated: expected {header} bytes, found {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_TYPES[data[2]])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(data) - header != expected:
        raise DataError(
            f"{name}: IDX header gives shape {shape} ({expected} bytes of data), "
            f"found {len(data) - header} bytes"
        )
    x = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return x.astype(dtype.newbyteorder("="))
