"""Readers for NumPy ``.npy`` and ``.npz`` files of user data (no pickled objects)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from aevb.data.errors import DataError


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """The array stored in a ``.npy`` file, any shape and numeric dtype.

    Raises :class:`DataError` for an empty, corrupt or non-numeric file.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path.name}: empty file, expected a NumPy .npy array")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path.name}: not a readable .npy file ({_one_line(e)})") from None
    return _numeric(x, path.name)


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Examples and optional labels from a ``.npz`` file.

    The examples are the only array in the file, or the array named ``x``; labels are the
    array named ``y`` when present next to ``x``.

    Returns:
        ``(x, y)``: ``x`` of any shape with a numeric dtype; ``y`` or None.

    Raises :class:`DataError` for an empty or corrupt file, or no single/``x`` array.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path.name}: empty file, expected a NumPy .npz archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.keys()}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path.name}: not a readable .npz file ({_one_line(e)})") from None
    if len(arrays) == 1:
        return _numeric(next(iter(arrays.values())), path.name), None
    if "x" not in arrays:
        raise DataError(
            f"{path.name}: expected a single array or one named 'x', found keys {list(arrays)}"
        )
    return _numeric(arrays["x"], path.name), arrays.get("y")


def _numeric(x: np.ndarray, name: str) -> np.ndarray:
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{name}: expected a numeric array, found dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{name}: expected real numbers, found dtype {x.dtype}")
    return x


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
