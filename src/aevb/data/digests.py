"""Checksums of published files (md5 of the bytes) and of decoded arrays (sha256)."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from aevb.data.errors import DataError


def file_md5(path: str | os.PathLike) -> str:
    """Hex md5 digest of a file's bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_sha256(x: np.ndarray) -> str:
    """Hex sha256 of an array's bytes in C order (dtype and shape are not hashed)."""
    return hashlib.sha256(np.ascontiguousarray(x).data).hexdigest()


def check_md5(path: str | os.PathLike, expected: str, name: str) -> None:
    """Raise :class:`DataError` unless the file at ``path`` has md5 ``expected``."""
    actual = file_md5(path)
    if actual != expected:
        raise DataError(f"{name}: md5 mismatch: expected {expected}, found {actual} ({path})")


def check_sha256(x: np.ndarray, expected: str, name: str) -> None:
    """Raise :class:`DataError` unless the array decoded from ``name`` has sha256 ``expected``."""
    actual = array_sha256(x)
    if actual != expected:
        raise DataError(
            f"{name}: sha256 of the decoded {x.dtype} array {x.shape} mismatch: "
            f"expected {expected}, found {actual}"
        )
