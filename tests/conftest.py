"""Shared fixtures: data from ../shared/data, a private cache and home, no network.

Isolation is set up once for the whole session, before any fixture of any scope runs, so a
module- or session-scoped fixture that trains a model sees the same environment as a test:
``AEVB_DATA_DIR`` points at the read-only real datasets, the cache dir, ``XDG_CACHE_HOME``
and ``HOME`` at fresh temporary folders, and any attempt to reach the network fails. The
environment variables are inherited by the subprocesses that tests start (torchrun, the
console script).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CALLER_HOME = os.environ.get("HOME")  # the home of whoever ran pytest, before isolation


def _is_local(address: object) -> bool:
    """Whether a socket address is on this machine (loopback or a Unix socket)."""
    if not isinstance(address, tuple):  # AF_UNIX paths
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: object = "", *args, **kwargs):
    raise AssertionError(f"tests must not use the network: {what}")


@pytest.fixture(scope="session", autouse=True)
def _isolated_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Data dir, cache dir and home isolated, network refused: for every scope and test."""
    base = tmp_path_factory.mktemp("isolated")
    home = base / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("AEVB_")]:
            mp.delenv(name)
        mp.setenv("AEVB_DATA_DIR", str(SHARED_DATA))
        mp.setenv("AEVB_CACHE_DIR", str(base / "aevb-cache"))
        mp.setenv("XDG_CACHE_HOME", str(base / "xdg-cache"))
        mp.setenv("HOME", str(home))
        import urllib.request

        import aevb.data.sources

        mp.setattr(urllib.request, "urlopen", _refuse)
        mp.setattr(aevb.data.sources, "fetch_url", _refuse)
        real_connect = socket.socket.connect

        def connect(self, address):
            if not _is_local(address):
                _refuse(address)
            return real_connect(self, address)

        mp.setattr(socket.socket, "connect", connect)
        yield


@pytest.fixture(scope="session")
def caller_home() -> str | None:
    """``HOME`` of whoever ran pytest, before the session's isolation replaced it."""
    return CALLER_HOME


@pytest.fixture
def shared_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    """``AEVB_DATA_DIR`` pointed at the read-only real datasets in ``../shared/data``, for
    tests whose own fixtures removed it (the data tests)."""
    assert SHARED_DATA.is_dir(), f"expected the shared datasets at {SHARED_DATA}"
    monkeypatch.setenv("AEVB_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture
def one_thread():
    """For tests of tiny tensors: one thread is fastest, and it cannot stall on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture
def sigint_handled() -> Iterator[None]:
    """SIGINT raising KeyboardInterrupt, as in a terminal, for the test's duration. A suite
    started in the background by a script inherits SIGINT ignored, and training leaves an
    ignored signal ignored (aevb.training.Trainer._stopping_on_signals)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
