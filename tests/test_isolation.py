"""The test session's isolation holds at every fixture scope (see conftest.py)."""

from __future__ import annotations

import os
import socket
import urllib.request
from pathlib import Path

import pytest

from aevb.data.locations import resolve_cache_dir, resolve_data_dir


@pytest.fixture(scope="module")
def module_env() -> dict[str, str]:
    """What a module-scoped fixture sees: it runs before any function-scoped fixture."""
    return {
        "data": str(resolve_data_dir()),
        "cache": str(resolve_cache_dir()),
        "home": str(Path.home()),
    }


def test_module_scoped_fixture_reads_shared_data_and_a_private_cache(module_env, caller_home):
    shared = (Path(__file__).parents[2] / "shared" / "data").resolve()
    assert Path(module_env["data"]).resolve() == shared
    assert module_env["home"] != caller_home
    assert "isolated" in module_env["cache"] and "isolated" in module_env["home"]
    assert not module_env["cache"].startswith(str(caller_home))


def test_network_is_refused_but_loopback_is_not():
    with pytest.raises(AssertionError, match="network"):
        urllib.request.urlopen("http://example.com")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(AssertionError, match="network"):
            s.connect(("93.184.216.34", 80))
    finally:
        s.close()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(server.getsockname())
    finally:
        client.close()
        server.close()


def test_no_aevb_variable_leaks_from_the_calling_shell():
    names = sorted(k for k in os.environ if k.startswith("AEVB_"))
    assert names == ["AEVB_CACHE_DIR", "AEVB_DATA_DIR"]
