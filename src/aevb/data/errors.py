"""The one exception type of :mod:`aevb.data`, the file read that raises it, and the
one-line form of an exception's message that every error of the package quotes."""

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


def one_line(e: BaseException | str) -> str:
    """A message on one line, its whitespace runs collapsed (some libraries' span several
    lines); an exception without a message is named by its type."""
    text = " ".join(str(e).split())
    return text or ("" if isinstance(e, str) else type(e).__name__)
