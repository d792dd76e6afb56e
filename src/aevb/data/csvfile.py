"""Reader for CSV files of numbers, one example per row, with an optional header row."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from aevb.data.errors import DataError, read_bytes

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def read_csv(path: str | os.PathLike) -> np.ndarray:
    """Parse a comma-separated file of numbers.

    The first row is taken as a header when none of its cells is a number. Blank lines
    are skipped. Row numbers in messages are line numbers of the file (1-based).

    Returns:
        float32 ``(N, D)``.

    Raises:
        DataError: empty file, a cell that is not a number (naming row and column), or
            rows with different numbers of cells.
    """
    path = Path(path)
    text = read_bytes(path).decode("utf-8-sig", errors="replace")
    try:
        rows = [(i + 1, row) for i, row in enumerate(csv.reader(io.StringIO(text))) if row]
    except csv.Error as e:  # e.g. a cell over the csv module's field size limit
        raise DataError(f"{path.name}: not a readable CSV file ({e})") from None
    rows = [(n, row) for n, row in rows if any(cell.strip() for cell in row)]
    if rows and not any(_is_number(cell) for cell in rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path.name}: empty file, expected rows of comma-separated numbers")
    width = len(rows[0][1])
    out = np.empty((len(rows), width), dtype=np.float32)
    for r, (line, row) in enumerate(rows):
        if len(row) != width:
            raise DataError(
                f"{path.name}: expected {width} columns in every row (as in row {rows[0][0]}), "
                f"row {line} has {len(row)}"
            )
        try:
            values = [float(cell) for cell in row]
        except ValueError:
            col = next(c for c, cell in enumerate(row) if not _is_number(cell))
            raise DataError(
                f"{path.name}: row {line}, column {col + 1}: expected a number, "
                f"found {row[col].strip()!r}"
            ) from None
        too_big = [c for c, v in enumerate(values) if _FLOAT32_MAX < abs(v) < math.inf]
        if too_big:  # float32 would make it inf without a word
            raise DataError(
                f"{path.name}: row {line}, column {too_big[0] + 1}: expected a number within "
                f"float32's range (about 3.4e38), found {row[too_big[0]].strip()!r}"
            )
        out[r] = values
    return out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
