"""The data tests start from nothing: an empty cache of their own and no data dir.

The network is refused and ``shared_data`` is defined for every test, in ../conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache dir per test and no inherited data dir; returns the cache dir."""
    monkeypatch.setenv("AEVB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AEVB_DATA_DIR", raising=False)
    return tmp_path / "cache"
