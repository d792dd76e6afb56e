"""Fixtures of the data tests: an empty cache per test, no network, the shared real data."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache dir, no inherited data dir, and any download attempt fails loudly."""
    monkeypatch.setenv("AEVB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AEVB_DATA_DIR", raising=False)

    def no_network(url: str, dest: Path, timeout: float = 0.0) -> None:
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr("aevb.data.sources.fetch_url", no_network)
    return tmp_path / "cache"


@pytest.fixture
def shared_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    """``AEVB_DATA_DIR`` pointed at the read-only real datasets in ``../shared/data``."""
    assert SHARED_DATA.is_dir(), f"expected the shared datasets at {SHARED_DATA}"
    monkeypatch.setenv("AEVB_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA
