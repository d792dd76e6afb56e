"""Uploaded images, read as the model's input rows: the format is judged by the file's first
bytes (never its name or the client's content type), the size is bounded before decoding,
and anything Pillow cannot decode is a :class:`UploadError` with an HTTP status, never a
crash."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from aevb.data.errors import one_line

MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
"""The first bytes of each accepted format, and Pillow's name of it."""
MAX_UPLOAD_BYTES = 5_000_000
"""Default largest upload (``aevb serve --max-upload-bytes``, ``create_app``'s default)."""
MAX_PIXELS = 4096 * 4096
"""Largest image (width x height) decoded: a small file can declare a huge canvas."""


class UploadError(ValueError):
    """An upload that cannot be read as an image; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def sniff(data: bytes) -> str:
    """The format of ``data`` from its magic bytes: ``"PNG"`` or ``"JPEG"``; else a 415."""
    for magic, name in MAGIC.items():
        if data.startswith(magic):
            return name
    raise UploadError(
        "expected a PNG or JPEG image (judged by the file's first bytes, not its name)", 415
    )


def read_image(data: bytes, image_shape: Sequence[int], *, invert: bool = False) -> np.ndarray:
    """The image in ``data`` as one row of the model's input: float32 ``(D,)`` in [0, 1].

    The image is turned upright (JPEG orientation tag), composited onto white where it is
    transparent, converted to greyscale or RGB as ``image_shape`` ``(H, W)`` or ``(H, W, C)``
    says, resized to it (bilinear) and divided by 255; ``invert`` gives 1 - value (dark
    strokes on white paper -> MNIST's white on black).
    """
    from PIL import Image, ImageOps

    kind = sniff(data)
    h, w = int(image_shape[0]), int(image_shape[1])
    colour = len(image_shape) == 3 and int(image_shape[2]) == 3
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as im:
            width, height = im.size
            if width * height > MAX_PIXELS:
                raise UploadError(
                    f"a {width}x{height} image: expected at most {MAX_PIXELS:,} pixels", 413
                )
            im.load()
            im = ImageOps.exif_transpose(im)
            if "A" in im.getbands() or "transparency" in im.info:
                rgba = im.convert("RGBA")
                im = Image.new("RGBA", rgba.size, "white")
                im.alpha_composite(rgba)
            im = im.convert("RGB" if colour else "L").resize((w, h), Image.Resampling.BILINEAR)
            pixels = np.asarray(im, dtype=np.float32) / 255.0
    except UploadError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure is the file's fault: a 400
        raise UploadError(f"not a readable {kind} image ({one_line(e)})", 400) from None
    row = pixels.reshape(-1)
    return 1.0 - row if invert else row
