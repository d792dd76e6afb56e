"""Shared fixtures: data from ../shared/data, a private cache, fixed torch threads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_data_dirs(monkeypatch, tmp_path_factory):
    """Tests read datasets from ../shared/data and never download or touch ~/.cache."""
    monkeypatch.setenv("AEVB_DATA_DIR", str(SHARED_DATA))
    monkeypatch.setenv("AEVB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "aevb-cache"))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open a URL fails the test."""
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError("tests must not use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def one_thread():
    """For tests of tiny tensors: one thread is fastest, and it cannot stall on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
