"""Reader for a folder of PNG/JPEG images (Pillow): greyscale or RGB, one size or resized."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from aevb.data.errors import DataError, one_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, MemoryError)
"""What Pillow's decoders raise on a truncated or corrupt file (SyntaxError: a broken PNG)."""


def image_files(folder: str | os.PathLike) -> list[Path]:
    """PNG/JPEG files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_folder(
    folder: str | os.PathLike, *, image_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Load every image of a folder, in name order.

    All images are greyscale unless any is colour, in which case all become RGB.

    Args:
        folder: a folder of ``.png``/``.jpg``/``.jpeg`` files (other files are ignored).
        image_size: ``(H, W)`` to resize every image to (bilinear); None requires all
            images to share one size.

    Returns:
        uint8 ``(N, H, W)`` greyscale or ``(N, H, W, 3)`` RGB.

    Raises:
        DataError: no images, an unreadable image, or (without ``image_size``) images of
            different sizes, naming the first file that differs.
    """
    from PIL import Image, UnidentifiedImageError  # only this reader needs Pillow

    folder = Path(folder)
    files = image_files(folder)
    if not files:
        raise DataError(f"{folder}: expected PNG or JPEG images in the folder, found none")
    if image_size is not None:
        if len(image_size) != 2 or any(int(s) < 1 for s in image_size):
            raise DataError(f"image_size={tuple(image_size)}: expected (H, W), both positive")
        image_size = (int(image_size[0]), int(image_size[1]))
    images = []
    for path in files:
        try:
            with Image.open(path) as im:
                im.load()
                images.append(im.copy())
        except _IMAGE_ERRORS + (UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise DataError(f"{path}: not a readable image ({one_line(e)})") from None
    mode = "L" if all(im.mode in _GREY_MODES for im in images) else "RGB"
    first = images[0].size
    arrays = []
    for path, im in zip(files, images, strict=True):
        if image_size is not None:
            im = im.convert(mode).resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
        elif im.size != first:
            raise DataError(
                f"{path}: expected every image to be {first[1]}x{first[0]} (HxW) like "
                f"{files[0].name}, found {im.size[1]}x{im.size[0]}; pass image_size=(H, W) "
                f"to resize"
            )
        arrays.append(np.asarray(im.convert(mode), dtype=np.uint8))
    return np.stack(arrays)
