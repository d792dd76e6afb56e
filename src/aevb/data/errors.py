"""The one exception type of :mod:`aevb.data`, and the file read that raises it."""

from __future__ import annotations

import os
from pathlib import Path


class DataError(ValueError):
    """Bad input data: a missing, truncated or corrupt file, or an option out of range.

    The message is one line that names the file (or option) and says what was expected,
    e.g. ``"binarized_mnist_test.amat: expected 784 values of 0 or 1 per line, line 17
    has 783"``.
    """


def read_bytes(path: str | os.PathLike, name: str | None = None) -> bytes:
    """The bytes of the file ``path``; a :class:`DataError` naming ``name`` (default: the
    file name) when it cannot be read (missing, a folder, no permission, I/O error)."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise DataError(
            f"{name or Path(path).name}: cannot read the file ({e.strerror or type(e).__name__})"
        ) from None
