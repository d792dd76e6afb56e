"""Reader for one variable of a MATLAB ``.mat`` file (v4 to v7.2; Frey Face is v5)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aevb.data.errors import DataError


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
        DataError: unreadable file, missing variable, wrong shape or dtype.
    """
    from scipy.io import loadmat  # scipy is slow to import; only this reader needs it
    from scipy.io.matlab import MatReadError

    name = name or Path(path).name
    try:
        contents = loadmat(path)
    except (MatReadError, ValueError, TypeError, OSError, EOFError, NotImplementedError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{name}: not a readable MATLAB .mat file ({reason})") from None
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
