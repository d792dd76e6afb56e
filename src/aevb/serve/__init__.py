"""``aevb serve``: a local web explorer of a trained model (docs/serve.md).

:mod:`aevb.serve.explorer` holds the model side (decoding, encoding, scores, manifold,
projection) on the library's functions; :mod:`aevb.serve.app` the HTTP API and page
(FastAPI, the ``serve`` extra); :mod:`aevb.serve.uploads` reads uploaded images safely;
:mod:`aevb.serve.cli` the command. Importing this package imports no web framework:
``create_app`` is loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from aevb.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'aevb.serve' has no attribute {name!r}")
