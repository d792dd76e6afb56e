"""One writer per run folder: an exclusive lock held for the whole of a training run.

The lock is ``fcntl.flock`` on ``<run>/.lock``, a file that stays in the folder (so
``--overwrite``, which clears the run's outputs, never removes it). The kernel releases a
flock when its process ends, however it ends, so a lock left by a killed run is free for
the next one. The file's content, the holder's PID, host and start time, serves only the
messages: a second writer is told who holds the folder, and a run that takes over the lock
of a run that ended without releasing it says so.

Within one process the lock is re-entrant: ``aevb train`` holds it around training and the
pictures, and :func:`aevb.run.train` takes it again inside.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None

LOCK_FILE = ".lock"

_held: dict[Path, int] = {}
"""Lock files this process holds, with how many ``hold`` blocks are open on each."""


class RunFolderInUse(FileExistsError):
    """Another live process is writing the run folder; the message names it."""


def owner_record() -> dict[str, object]:
    """This process as a lock holder: PID, host name, start time (UTC, ISO 8601)."""
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": started}


def describe(holder: dict[str, object] | None) -> str:
    """``PID 1234 on host h (started ...)``, or ``another process`` when unknown."""
    if not holder or "pid" not in holder:
        return "another process"
    host, started = holder.get("host", "?"), holder.get("started", "?")
    return f"PID {holder['pid']} on host {host} (started {started})"


def _read(fd: int) -> dict[str, object] | None:
    """The holder recorded in an open lock file; None when it is empty or unreadable."""
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    if not raw.strip():
        return None
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}  # content of another kind: a holder, but an unknown one
    return holder if isinstance(holder, dict) else {}


def _write(fd: int, holder: dict[str, object] | None) -> None:
    """Replace the lock file's content by ``holder`` (None: empty, the lock is free)."""
    os.ftruncate(fd, 0)
    if holder is not None:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(holder) + "\n").encode("utf-8"))


@contextlib.contextmanager
def hold(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold the run folder ``folder`` (created if missing) exclusively for the block.

    Raises :class:`RunFolderInUse` at once when another process holds it. A lock file
    whose holder ended without releasing it is taken over with a ``RuntimeWarning``.
    A folder created here that holds nothing but the lock file at the end (a run that
    failed before writing anything) is removed. On a file system without flock support
    the block runs unlocked, with a warning.
    Yields the lock file's path.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / LOCK_FILE).resolve()
    if path in _held:  # re-entered by the process that holds it
        _held[path] += 1
        try:
            yield path
        finally:
            _held[path] -= 1
        return
    if fcntl is None:  # pragma: no cover
        yield path
        return
    fd, locked = _open_locked(path, folder)
    try:
        if locked:
            previous = _read(fd)
            if previous is not None:
                warnings.warn(
                    f"run folder {folder}: taking over the lock of {describe(previous)}, "
                    "which ended without releasing it",
                    RuntimeWarning,
                    stacklevel=3,
                )
            _write(fd, owner_record())
        _held[path] = 1
        try:
            yield path
        finally:
            del _held[path]
            # a run that failed before writing anything leaves no folder behind
            if not (created and _remove_if_empty(folder, path)) and locked:
                _write(fd, None)  # emptied before the kernel lock goes: never stale
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def _open_locked(path: Path, folder: Path) -> tuple[int, bool]:
    """Open the lock file ``path`` and take its flock: ``(descriptor, locked)``.

    Retried when the file this descriptor locks is no longer ``path``: a holder that
    removed its empty folder on release (see :func:`hold`) unlinked the file that this
    process had opened while it waited, so a lock on it would guard nothing.
    """
    for _ in range(100):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            locked = _acquire(fd, folder)
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
        except BaseException:
            os.close(fd)
            raise
        if current or not locked:
            return fd, locked
        os.close(fd)
    raise RunFolderInUse(f"run folder {folder}: its lock file keeps being replaced; try again")


def _remove_if_empty(folder: Path, path: Path) -> bool:
    """Remove ``folder`` when it holds nothing but the lock file ``path``; whether it did.

    Called by the holder: another process that opened ``path`` meanwhile finds, once it
    gets the flock, that the file is gone and opens a new one (:func:`_open_locked`).
    """
    try:
        if os.listdir(folder) != [LOCK_FILE]:
            return False
        path.unlink()
    except OSError:
        return False
    with contextlib.suppress(OSError):  # another writer may have created it again
        folder.rmdir()
    return True


def _acquire(fd: int, folder: Path) -> bool:
    """Take the flock on ``fd`` without waiting; False when the file system has no flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunFolderInUse(
            f"run folder {folder} is in use by {describe(_read(fd))}; wait for it or "
            "choose another --out"
        ) from None
    except OSError as e:  # e.g. ENOLCK on a network file system without a lock daemon
        warnings.warn(
            f"run folder {folder}: cannot lock it ({e.strerror}); another run writing it "
            "at the same time would not be detected",
            RuntimeWarning,
            stacklevel=4,
        )
        return False
    return True
