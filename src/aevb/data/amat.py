"""Reader for ``.amat`` text matrices of binary pixels (Larochelle & Murray's binarized MNIST).

One example per line: ``cols`` values ``0``/``1`` separated by single spaces. The published
files use exactly that layout with ``\\n`` line ends, so each line is ``2 * cols`` bytes and
the whole file is decoded by viewing it as a byte array and taking every other byte (78 MB
in well under a second). Files that differ in layout (``\\r\\n``, extra spaces, tabs) go
through a general parser, which also reports the first bad line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aevb.data.errors import DataError, read_bytes

_SPACE, _NEWLINE, _ZERO = ord(" "), ord("\n"), ord("0")


def read_amat(
    path: str | os.PathLike,
    *,
    cols: int = 784,
    rows: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Decode a binary ``.amat`` file.

    Args:
        path: the file.
        cols: values per line.
        rows: the number of lines expected, or None for any.
        name: the file name used in error messages (default: the file's own).

    Returns:
        uint8 ``(rows, cols)`` array of 0 and 1, C order.

    Raises:
        DataError: empty or truncated file, wrong count of values, a value not 0 or 1, or
            a line count other than ``rows``.
    """
    name = name or Path(path).name
    raw = np.frombuffer(read_bytes(path, name), dtype=np.uint8)
    x = _decode_fixed_layout(raw, cols)
    if x is None:
        x = _decode_general(raw.tobytes(), cols, name)
    if rows is not None and x.shape[0] != rows:
        raise DataError(f"{name}: expected {rows} lines of {cols} values, found {x.shape[0]}")
    return x


def _decode_fixed_layout(raw: np.ndarray, cols: int) -> np.ndarray | None:
    """The fast path; None when the bytes are not exactly the canonical layout."""
    width = 2 * cols
    if raw.size == 0 or raw.size % width:
        return None
    lines = raw.reshape(-1, width)
    if not (lines[:, 1:-1:2] == _SPACE).all() or not (lines[:, -1] == _NEWLINE).all():
        return None
    values = lines[:, 0::2] - np.uint8(_ZERO)  # bytes below '0' wrap round to > 1
    if (values > 1).any():
        return None
    return values


def _decode_general(data: bytes, cols: int, name: str) -> np.ndarray:
    """Any whitespace between values and any line ending; errors name the line."""
    lines = data.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{name}: empty file, expected lines of {cols} values of 0 or 1")
    out = np.empty((len(lines), cols), dtype=np.uint8)
    expected = f"{name}: expected {cols} values of 0 or 1 per line"
    for i, line in enumerate(lines):
        tokens = line.split()
        if len(tokens) != cols:
            raise DataError(f"{expected}, line {i + 1} has {len(tokens)}")
        joined = b"".join(tokens)
        values = np.frombuffer(joined, dtype=np.uint8) - np.uint8(_ZERO)
        if len(joined) != cols or (values > 1).any():
            j, bad = next((j, t) for j, t in enumerate(tokens) if t not in (b"0", b"1"))
            shown = bad.decode("utf-8", errors="replace")
            raise DataError(f"{expected}, line {i + 1} value {j + 1} is {shown!r}")
        out[i] = values
    return out
