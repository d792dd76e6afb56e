"""Atomic file and folder writes: a reader sees the old content or the new, never half.

Every file aevb writes (datasets, checkpoints, CSV, PNG) goes through these helpers, so an
interrupted run never leaves a truncated file behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


class WriteError(OSError):
    """Writing ``path`` failed (disk full, quota, permissions); its previous content is intact.

    The message is one line, e.g. ``no space left on device while writing
    runs/x/checkpoint; the previous checkpoint is intact``.
    """

    def __init__(self, reason: str, path: Path) -> None:
        previous = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
        super().__init__(f"{reason} while writing {path}; {previous}")
        self.reason, self.path = reason, path

    def __reduce__(self):  # pickled as it is (its message is not rebuilt from the disk)
        return _rebuilt_write_error, (str(self), self.reason, self.path)


def _rebuilt_write_error(message: str, reason: str, path: Path) -> WriteError:
    """A :class:`WriteError` with its message as it was, for unpickling (e.g. from a
    worker process of ``aevb reproduce --jobs``)."""
    error = WriteError.__new__(WriteError)
    OSError.__init__(error, message)
    error.reason, error.path = reason, path
    return error


def _write_failure(error: Exception, tmp: Path) -> str | None:
    """Why writing ``tmp`` failed, in words, when ``error`` is a failed write; else None.

    An OSError naming another file than ``tmp`` (say, a file read while writing) is not a
    failed write. Libraries that write in native code report a full disk in their own
    exception type, recognised by the operating system's text.
    """
    if isinstance(error, WriteError):
        return error.reason
    if isinstance(error, OSError) and error.errno is not None:
        name = Path(error.filename) if error.filename else None
        if name is None or name == tmp or tmp in name.parents:
            text = error.strerror or os.strerror(error.errno)
            return text[:1].lower() + text[1:]
    if "No space left on device" in str(error) or "StorageFull" in str(error):
        return "no space left on device"
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only on success.

    On an exception the temporary file is removed and ``path`` is left untouched; a failed
    write (disk full, ...) is raised as :class:`WriteError`. The suffix is kept so that
    writers which infer the format from it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp.", suffix=path.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _default_mode(0o666))  # mkstemp creates 0600 files
        os.replace(tmp_path, path)
    except Exception as e:
        reason = _write_failure(e, tmp_path)
        if reason is None:
            raise
        raise WriteError(reason, path) from e
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces the folder ``path``.

    The swap is two renames (old aside, new into place) and the old folder is deleted
    afterwards; :func:`recover_dir` repairs the one window in which neither name exists.
    A failed write (disk full, ...) is raised as :class:`WriteError` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.new."))
    try:
        yield tmp
        os.chmod(tmp, _default_mode(0o777))  # mkdtemp creates 0700 folders
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists():
            shutil.rmtree(old)
    except Exception as e:
        reason = _write_failure(e, tmp)
        if reason is None:
            raise
        raise WriteError(reason, path) from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _default_mode(full: int) -> int:
    """``full`` less the process umask: the mode a plain ``open``/``mkdir`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return full & ~umask


def recover_dir(path: str | os.PathLike) -> Path:
    """Return ``path``, first restoring it from the aside copy if a swap was interrupted."""
    path = Path(path)
    old = path.with_name(f".{path.name}.old")
    if not path.exists() and old.exists():
        os.replace(old, path)
    return path


# Names of what the helpers above leave behind when a writer is killed mid-write:
# ".<stem>.tmp.<8 random>[suffix]" files (atomic_path), ".<name>.new.<8 random>" folders
# (atomic_dir) and ".<name>.old" folders (the aside copy of a swap).
_TMP_FILE = re.compile(r"\..+\.tmp\.[a-z0-9_]{8}(\.[^.]*)?")
_NEW_DIR = re.compile(r"\..+\.new\.[a-z0-9_]{8}")
_OLD_DIR = re.compile(r"\.(.+)\.old")


def remove_leftovers(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders a killed writer left in ``folder``.

    Only for a folder no other process is writing (e.g. a run folder whose lock is held):
    another writer's temporary files look the same. An aside copy ``.<name>.old`` whose
    ``<name>`` is missing is an interrupted swap and is restored, not removed. Returns
    the paths removed.
    """
    folder = Path(folder)
    removed = []
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        if entry.is_dir() and _OLD_DIR.fullmatch(entry.name):
            original = entry.with_name(_OLD_DIR.fullmatch(entry.name).group(1))
            if not original.exists():
                recover_dir(original)
                continue
        elif not (
            (entry.is_dir() and _NEW_DIR.fullmatch(entry.name))
            or (entry.is_file() and _TMP_FILE.fullmatch(entry.name))
        ):
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry)
    return removed
