"""``aevb serve RUN_OR_MODEL``: the web explorer on a local port (:mod:`aevb.serve.app`).

Its options are added without importing FastAPI, so that ``aevb --help`` works, and starts
fast, without the ``serve`` extra; the command itself says in one line how to install it.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import warnings
from typing import Any

from aevb.argtypes import count
from aevb.serve.uploads import MAX_UPLOAD_BYTES

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Hosts that only this machine can reach: binding anything else warns."""
EXTRA = ("fastapi", "uvicorn", "multipart")
"""The modules the serve extra installs (python-multipart's is ``multipart``)."""


def add_options(sub: Any) -> None:
    """``aevb serve``'s options."""
    from aevb.options import add_data_args, add_model_path

    p = sub.add_parser(
        "serve",
        help="a local web explorer: latent sliders, samples, uploads with anomaly scores",
        description=(
            "Serve a web page that explores a trained model: a slider per latent dimension "
            "with the decoded image, the 2-D manifold or a projection of encoded data, draws "
            "from the prior, interpolations, uploaded images with their reconstruction and "
            "anomaly scores, the model card and the training curve."
        ),
    )
    add_model_path(p)
    next(a for a in p._actions if a.dest == "model").metavar = "RUN_OR_MODEL"
    add_data_args(p, default_help="the run's training data")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1); any but a loopback address "
        "exposes the explorer, which has no authentication, to the network: a warning",
    )
    p.add_argument(
        "--port", type=count(1, 65535), default=8000, help="port to listen on (default: 8000)"
    )
    p.add_argument(
        "--max-upload-bytes",
        type=count(1024, 10**9),
        default=MAX_UPLOAD_BYTES,
        help="largest image upload accepted, in bytes (default: 5,000,000); larger ones "
        "are refused with HTTP 413",
    )
    p.set_defaults(handler=serve)


def check_extra() -> None:
    """A one-line error unless FastAPI, uvicorn and python-multipart are installed."""
    if any(importlib.util.find_spec(name) is None for name in EXTRA):
        raise ValueError("aevb serve needs the serve extra: pip install 'aevb[serve]'")


def is_local(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (a loopback address)."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def reference_data(args: argparse.Namespace):
    """The data ``--data`` names, else the run's training data when it can be loaded
    (a warning otherwise: the explorer then runs without reference data); None when there
    is none."""
    from aevb import commands
    from aevb import data as aevb_data
    from aevb.runfolder import RunFolder

    run = RunFolder.of_model(args.model)
    fallback = run.data_name() if run is not None else None
    if args.data is None and fallback is None:
        return None
    try:
        return commands.load_data(args, fallback)
    except aevb_data.DataError as e:
        if args.data is not None:
            raise
        warnings.warn(
            f"no reference data ({e}): scores without percentiles, sliders in index order, "
            "no projection; pass --data",
            stacklevel=2,
        )
        return None


def serve(args: argparse.Namespace) -> str:
    """``aevb serve``: build the app and serve it until interrupted."""
    check_extra()
    import uvicorn

    from aevb.serve.app import create_app
    from aevb.training import resolve_device

    if not is_local(args.host):
        warnings.warn(
            f"--host {args.host}: the explorer is reachable from the network, with no "
            "authentication; anyone who can reach this port can use the model",
            stacklevel=2,
        )
    app = create_app(
        args.model,
        data=reference_data(args),
        max_upload_bytes=args.max_upload_bytes,
        device=resolve_device(args.device),
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"aevb serve: http://{host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return ""
