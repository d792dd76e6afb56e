"""Compact cache of decoded arrays: parse a text or MATLAB file once, then load a ``.npy``.

The decoded uint8 array of a source with a known ``sha256`` is stored at
``<cache_dir>/<folder>/<stem>.npy`` (written atomically; never in the data dir, which may be
read-only). On the next load the ``.npy`` is read and its sha256 checked (tens of
milliseconds) instead of parsing the source again; a stale or corrupt cache file is
silently rebuilt.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from aevb.atomic import atomic_path
from aevb.data.digests import array_sha256
from aevb.data.locations import resolve_cache_dir
from aevb.data.sources import SourceFile, locate, verify


def cache_path(source: SourceFile) -> Path:
    """Where the decoded array of ``source`` is cached."""
    return resolve_cache_dir() / source.folder / f"{Path(source.name).stem}.npy"


def load_source(source: SourceFile, data_dir: Path, *, download: bool) -> np.ndarray:
    """The decoded, verified array of ``source``: from the cache, else from its file.

    Raises :class:`aevb.data.DataError` when the file is missing, corrupt or mismatched.
    """
    cached = _read_cache(source)
    if cached is not None:
        return cached
    path = locate(source, data_dir, download=download)
    x = verify(source, path)
    if x is None:
        return source.decode(path, source.name)
    _write_cache(source, x)  # decoded and matched its sha256
    return x


def _read_cache(source: SourceFile) -> np.ndarray | None:
    path = cache_path(source)
    if source.sha256 is None or not path.is_file():
        return None
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if x.dtype != np.uint8 or array_sha256(x) != source.sha256:
        return None
    return x


def _write_cache(source: SourceFile, x: np.ndarray) -> None:
    try:
        with atomic_path(cache_path(source)) as tmp:
            np.save(tmp, x)
    except OSError as e:
        warnings.warn(f"could not cache {source.name} in {cache_path(source)}: {e}", stacklevel=3)
