"""Where datasets are looked for (the data dir) and where derived files go (the cache dir).

Data dir: the ``data_dir`` argument, else ``$AEVB_DATA_DIR``, else the cache dir. It holds
the published files in one sub-folder per dataset (``<data_dir>/binarized_mnist/...``) and
may be read-only.

Cache dir: ``$AEVB_CACHE_DIR``, else ``$XDG_CACHE_HOME/aevb``, else ``~/.cache/aevb``. It holds
downloads that could not go into the data dir and the compact decoded arrays.
"""

from __future__ import annotations

import os
from pathlib import Path


def resolve_cache_dir() -> Path:
    """The user cache folder of aevb (it need not exist yet)."""
    explicit = os.environ.get("AEVB_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "aevb"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder searched for dataset files: ``data_dir``, ``$AEVB_DATA_DIR``, the cache dir."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("AEVB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return resolve_cache_dir()
