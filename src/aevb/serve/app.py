"""The HTTP side of ``aevb serve``: a FastAPI app over an :class:`~aevb.serve.explorer.Explorer`.

Endpoints (JSON unless said otherwise; images in JSON are ``data:image/png;base64,...``):

* ``GET /``, ``GET /static/{name}``: the page, its script and style (package data);
* ``GET /api/info``: the model and what the page can show of it;
* ``POST /api/decode`` ``{z, label}``: the decoded image (``image/png``);
* ``GET /api/manifold?label=``: a 2-D latent space's manifold picture and its axis values;
* ``GET /api/projection``: the PCA projection of encoded test data (larger latent spaces);
* ``POST /api/sample`` ``{n, temperature, seed, label}``: draws from the prior, with codes;
* ``POST /api/interpolate`` ``{a, b, steps, label}``: images between two codes;
* ``POST /api/upload`` (multipart: ``file``, ``invert``, ``label``, ``k``): an image's
  reconstruction, posterior mean and anomaly scores;
* ``GET /api/card``, ``GET /api/curve.png``: the model card and the training curve.

Bad input is a 4xx with ``{"detail": message}``: 413 for a body or image too large, 415
for an upload that is not a PNG or JPEG by its content, 422 for values out of range
(counts and k bounded, codes finite, the code's length the model's), 404 for what this
model has not got. Request bodies are limited as they arrive, declared length or not.
"""

from __future__ import annotations

import base64
import os
from importlib import resources
from typing import Annotated, Any

import torch
from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from aevb import data as aevb_data
from aevb.data.errors import one_line
from aevb.serve.explorer import DEFAULT_K, Z_LIMIT, Explorer
from aevb.serve.uploads import MAX_UPLOAD_BYTES, UploadError

MAX_SAMPLES = 64
"""Most draws one request may ask for."""
MAX_STEPS = 32
"""Most images of one interpolation."""
MAX_K = 2000
"""Most importance samples of an upload's negative log-likelihood."""
MAX_CODE = 100_000
"""Longest code a request may carry (the model's own code size is checked after)."""
FORM_OVERHEAD = 64 * 1024
"""Room in a request body for the multipart framing and fields around an upload."""
STATIC = {
    "explorer.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
"""The page's files beside ``index.html`` (package data of :mod:`aevb.serve`)."""

Value = Annotated[float, Field(allow_inf_nan=False, ge=-Z_LIMIT, le=Z_LIMIT)]
Code = Annotated[list[Value], Field(min_length=1, max_length=MAX_CODE)]
Label = Annotated[int | None, Field(ge=0)]


class DecodeRequest(BaseModel):
    """A code ``z`` ``(Nz,)`` and, for a conditional model, its class."""

    z: Code
    label: Label = None


class SampleRequest(BaseModel):
    """``n`` draws from the prior at ``temperature`` (scales its standard deviation)."""

    n: int = Field(16, ge=1, le=MAX_SAMPLES)
    temperature: float = Field(1.0, ge=0.0, le=10.0, allow_inf_nan=False)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    label: Label = None


class InterpolateRequest(BaseModel):
    """``steps`` codes from ``a`` to ``b``, ends included."""

    a: Code
    b: Code
    steps: int = Field(10, ge=2, le=MAX_STEPS)
    label: Label = None


def data_url(png: bytes) -> str:
    """``png`` bytes as a ``data:`` URL an ``<img>`` shows."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413, from its
    declared length before it is read, else as soon as the bytes received exceed it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"request body over {self.limit:,} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            error = self._too_large()
            response = JSONResponse({"detail": error.detail}, status_code=error.status_code)
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # raised inside the handler's read: answered as a 413
                raise self._too_large()
            return message

        await self.app(scope, limited, send)


def create_app(
    model_path: str | os.PathLike,
    *,
    data: aevb_data.Dataset | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    device: str | torch.device = "cpu",
) -> FastAPI:
    """The explorer's web app for the model at ``model_path`` (a run or model folder).

    ``data`` is the reference data (``aevb serve`` passes the run's training data, or
    ``--data``); None shows scores without percentiles, sliders in index order and no
    projection. Uploads over ``max_upload_bytes`` are refused with 413.
    """
    explorer = Explorer(model_path, data=data, device=device)
    app = FastAPI(title=f"aevb explorer: {explorer.name}", docs_url=None, redoc_url=None)
    app.state.explorer = explorer
    app.add_middleware(BodyLimit, limit=max_upload_bytes + FORM_OVERHEAD)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, error: ValueError) -> JSONResponse:
        status = error.status if isinstance(error, UploadError) else 422
        return JSONResponse({"detail": one_line(error)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(error)}, status_code=422)

    @app.exception_handler(LookupError)
    async def absent(request: Request, error: LookupError) -> JSONResponse:
        return JSONResponse({"detail": one_line(error)}, status_code=404)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(_static("index.html").decode("utf-8"))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, f"no file {name!r}")
        return Response(_static(name), media_type=STATIC[name])

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return {
            **explorer.info(),
            "limits": {
                "samples": MAX_SAMPLES,
                "steps": MAX_STEPS,
                "k": MAX_K,
                "upload_bytes": max_upload_bytes,
            },
        }

    @app.post("/api/decode")
    def decode(request: DecodeRequest) -> Response:
        return Response(explorer.decode(request.z, request.label), media_type="image/png")

    @app.get("/api/manifold")
    def manifold(label: Annotated[int | None, Query(ge=0)] = None) -> dict[str, Any]:
        png, values = explorer.manifold(label)
        return {"image": data_url(png), "values": values, "image_shape": explorer.image_shape}

    @app.get("/api/projection")
    def projection() -> dict[str, Any]:
        if explorer.projection is None:
            raise LookupError(
                "no projection: it needs reference data and more than 2 latent dimensions"
            )
        return explorer.projection

    @app.post("/api/sample")
    def sample(request: SampleRequest) -> dict[str, Any]:
        draws = explorer.samples(
            request.n, temperature=request.temperature, seed=request.seed, label=request.label
        )
        return {"samples": [{"image": data_url(png), "z": z} for png, z in draws]}

    @app.post("/api/interpolate")
    def interpolate(request: InterpolateRequest) -> dict[str, Any]:
        pngs = explorer.interpolate(request.a, request.b, request.steps, request.label)
        return {"images": [data_url(png) for png in pngs]}

    @app.post("/api/upload")
    def upload(
        file: Annotated[UploadFile, File(description="a PNG or JPEG image")],
        invert: Annotated[bool, Form()] = False,
        label: Annotated[int | None, Form(ge=0)] = None,
        k: Annotated[int, Form(ge=1, le=MAX_K)] = DEFAULT_K,
    ) -> dict[str, Any]:
        content = file.file.read(max_upload_bytes + 1)
        if len(content) > max_upload_bytes:
            raise UploadError(f"upload over {max_upload_bytes:,} bytes", 413)
        result = explorer.upload(content, invert=invert, label=label, k=k)
        for key in ("input", "reconstruction"):
            result[key] = data_url(result[key])
        return result

    @app.get("/api/card")
    def card() -> dict[str, str]:
        if explorer.card is None:
            raise LookupError("no model card (a model saved outside a training run)")
        return {"text": explorer.card}

    @app.get("/api/curve.png")
    def curve() -> Response:
        if explorer.curve is None:
            raise LookupError("no training curve (no run history beside this model)")
        return Response(explorer.curve, media_type="image/png")

    return app


def validation_message(error: RequestValidationError) -> str:
    """The request's invalid fields in one line, ``n: Input should be ...; z.3: ...``,
    without echoing the values (a NaN could not even be written back as JSON)."""
    parts = []
    for e in error.errors():
        if e.get("type") == "json_invalid":
            return "body: not valid JSON"
        where = ".".join(str(p) for p in e.get("loc", ())[1:]) or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts[:5])


def _static(name: str) -> bytes:
    """A file of the page, read from the package (a folder, a wheel or a zip alike)."""
    return resources.files("aevb.serve").joinpath("static", name).read_bytes()
