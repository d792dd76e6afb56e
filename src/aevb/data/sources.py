"""Published files: find one in the data dir, else download it, verify it, store it atomically.

A file is looked for at ``<data_dir>/<folder>/<name>``, then in the same place under the
cache dir. When it is in neither and downloads are allowed, each public URL is tried in
turn; the bytes land in a temporary file that becomes ``<name>`` only once its checksum
matches, so a failed or mismatching download leaves nothing behind. Downloads go into the
data dir, or into the cache dir when the data dir is not writable.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aevb.atomic import atomic_path
from aevb.data.digests import check_md5, check_sha256
from aevb.data.errors import DataError, one_line
from aevb.data.locations import resolve_cache_dir

DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SourceFile:
    """One published file a dataset is built from.

    Attributes:
        folder: sub-folder of the data dir, e.g. ``"binarized_mnist"``.
        name: the file name as published.
        urls: public URLs, tried in order.
        decode: ``decode(path, name) -> np.ndarray``; ``name`` is used in error messages.
        md5: digest of the file's bytes, where the published bytes are canonical.
        sha256: digest of the decoded array (C order), where only the content is fixed
            (text and MATLAB files re-serialised by mirrors); such arrays are also kept in
            the compact cache (:mod:`aevb.data.cache`).
    """

    folder: str
    name: str
    urls: tuple[str, ...]
    decode: Callable[[Path, str], np.ndarray]
    md5: str | None = None
    sha256: str | None = None

    @property
    def relative(self) -> str:
        """``<folder>/<name>``."""
        return f"{self.folder}/{self.name}"


def fetch_url(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Copy the body of ``url`` into the file ``dest``; raises ``OSError`` on failure."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f, 1 << 20)


def verify(source: SourceFile, path: Path) -> np.ndarray | None:
    """Check ``path`` against the source's checksum; return the decoded array if decoded.

    Raises :class:`DataError` naming ``source.name`` on a mismatch or a corrupt file.
    """
    if source.md5 is not None:
        check_md5(path, source.md5, source.name)
    if source.sha256 is not None:
        x = source.decode(path, source.name)
        check_sha256(x, source.sha256, source.name)
        return x
    return None


def locate(source: SourceFile, data_dir: Path, *, download: bool) -> Path:
    """The path of ``source`` on disk, downloading it when missing and ``download`` is set.

    A file found on disk is returned as is (its checksum is checked where it is decoded);
    a downloaded file is verified before it is given its name.

    Raises:
        DataError: missing and downloads disabled, or every URL failed or mismatched; the
            message names the file, the folders searched and the URL to fetch it from.
    """
    folders = _search_folders(source, data_dir)
    for folder in folders:
        if (folder / source.name).is_file():
            return folder / source.name
    where = " and ".join(str(f) for f in folders)
    advice = (
        f"fetch it from {source.urls[0]} and set AEVB_DATA_DIR (or data_dir) to a folder "
        f"holding {source.relative}"
    )
    if not download:
        raise DataError(f"{source.name}: not found in {where} and download=False; {advice}")
    target = _writable_folder(folders)
    if target is None:
        raise DataError(f"{source.name}: not found in {where}, neither is writable; {advice}")
    failures: list[str] = []
    for url in source.urls:
        try:
            with atomic_path(target / source.name) as tmp:
                fetch_url(url, tmp)
                verify(source, tmp)
            return target / source.name
        except DataError as e:
            failures.append(f"{url}: {e}")
        except (OSError, ValueError) as e:
            failures.append(f"{url}: {one_line(e)}")
    raise DataError(
        f"{source.name}: not found in {where} and the download failed "
        f"({'; '.join(failures)}); {advice}"
    )


def _search_folders(source: SourceFile, data_dir: Path) -> list[Path]:
    folders = [data_dir / source.folder]
    cached = resolve_cache_dir() / source.folder
    if cached != folders[0]:
        folders.append(cached)
    return folders


def _writable_folder(folders: list[Path]) -> Path | None:
    """The first folder a file can be created in (probed: permissions alone can mislead)."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError:
            continue
        return folder
    return None
