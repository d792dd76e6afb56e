"""A :class:`Dataset` from the user's own files: ``.npy``, ``.npz``, ``.csv`` or an image folder.

- ``.npy``/``.npz``: a 2-D ``(N, D)`` array, or N images ``(N, H, W)`` / ``(N, H, W, C)``
  which are flattened row-major (``image_shape`` records the image shape). An ``.npz``
  holds a single array, or examples ``x`` with optional integer labels ``y``.
- ``.csv``: numbers, one example per row, optional header row.
- a folder of PNG/JPEG images: greyscale ``(H, W)`` or RGB ``(H, W, 3)``.

Values, by dtype (:func:`scale_values`; ``Dataset.scaling`` records what was done):

- uint8 arrays with a value above 1 are 8-bit pixels: divided by 255, into [0, 1];
- image folders' 8-bit pixels are always divided by 255;
- everything else (0/1 uint8, booleans, other integer dtypes, floats and CSV numbers) is
  kept as it is: the dtype decides, never the values alone.

The rows are split into train / valid / test by a seeded permutation; the suggested
likelihood is ``"bernoulli"`` when every value lies in [0, 1], else ``"gaussian"``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aevb.data.csvfile import read_csv
from aevb.data.dataset import Dataset
from aevb.data.errors import DataError
from aevb.data.images import read_image_folder
from aevb.data.npyfile import read_npy, read_npz
from aevb.data.splits import split_indices, split_sizes
from aevb.data.validation import check_finite, suggest_likelihood

USER_SUFFIXES = (".npy", ".npz", ".csv")


def load_user_data(
    path: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    name: str | None = None,
) -> Dataset:
    """Load examples from a file or image folder and split them.

    Args:
        path: a ``.npy``, ``.npz`` or ``.csv`` file, or a folder of PNG/JPEG images.
        image_size: ``(H, W)`` to resize folder images to; only for image folders.
        valid_fraction: share of the rows for the validation split (rounded; 0 for none).
        test_fraction: share of the rows for the test split (rounded; 0 for none).
        seed: seed of the ``np.random.default_rng`` permutation that assigns rows to splits.
        name: the dataset name (default: the file or folder stem).

    Raises:
        DataError: missing path, unsupported type, empty or corrupt content, NaN/inf,
            wrong array rank, bad fractions; the message names the file or option.
    """
    path = Path(path).expanduser()
    x, y, image_shape, (scaling, divisor) = read_examples(path, image_size=image_size)
    n_train, n_valid, n_test = split_sizes(len(x), valid_fraction, test_fraction)
    train, valid, test = split_indices(len(x), n_train, n_valid, seed)
    parts = {"train": train, "valid": valid, "test": test}
    return Dataset(
        name=name or path.stem,
        train=x[parts["train"]],
        valid=x[parts["valid"]] if n_valid else None,
        test=x[parts["test"]] if n_test else None,
        image_shape=image_shape,
        likelihood=suggest_likelihood(x),
        labels={} if y is None else {s: y[i] for s, i in parts.items() if len(i)},
        scaling=scaling,
        divisor=divisor,
    )


def read_examples(
    path: str | os.PathLike, *, image_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray | None, tuple[int, ...] | None, tuple[str, float]]:
    """Every example of a user file or image folder, in the file's order, unsplit:
    float32 rows ``(N, D)``, int64 labels ``(N,)`` or None, the image shape or None, and
    the scaling (words, divisor) as :func:`scale_values` gives it. Errors as
    :func:`load_user_data`'s."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if image_size is not None and not path.is_dir():
        raise DataError(f"image_size: applies to image folders only, {path.name} is a file")
    labels = None
    pixels = path.is_dir()
    if pixels:
        x = read_image_folder(path, image_size=image_size)
    elif path.suffix.lower() == ".npy":
        x = read_npy(path)
    elif path.suffix.lower() == ".npz":
        x, labels = read_npz(path)
    elif path.suffix.lower() == ".csv":
        x = read_csv(path)
    else:
        raise DataError(
            f"{path.name}: unsupported file type {path.suffix!r}: expected .npy, .npz, .csv "
            f"or a folder of PNG/JPEG images"
        )
    x, image_shape = _as_examples(x, path.name)
    x, scaling, divisor = scale_values(x, pixels=pixels)
    y = None if labels is None else _as_labels(labels, len(x), path.name)
    return x, y, image_shape, (scaling, divisor)


def scale_values(x: np.ndarray, *, pixels: bool = False) -> tuple[np.ndarray, str, float]:
    """float32 values of the examples ``x`` ``(N, D)``, how they were derived in words, and
    what they were divided by.

    The dtype decides, never the values alone: uint8 arrays with a value above 1 are 8-bit
    pixels and divided by 255, as are all values when ``pixels`` (an image folder).
    Everything else (0/1 uint8, booleans, other integer dtypes, floats) is kept as it is;
    the scaling is then ``"none"``. Other integers in 0..255 may be counts or categories
    as well as pixels, so they are not guessed at (``aevb train`` prints a note instead).
    """
    if pixels:
        return x.astype(np.float32) / 255.0, f"{x.dtype} image pixels 0..255 divided by 255", 255.0
    if x.dtype == np.uint8 and x.size and int(x.max()) > 1:
        return x.astype(np.float32) / 255.0, "uint8 0..255 divided by 255", 255.0
    return np.ascontiguousarray(x, dtype=np.float32), "none", 1.0


def _as_examples(x: np.ndarray, name: str) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """``(N, D)`` rows of the source's dtype and the image shape (None for 2-D input)."""
    if x.ndim not in (2, 3, 4):
        raise DataError(
            f"{name}: expected a 2-D (N, D) array or N images (N, H, W) / (N, H, W, C), "
            f"found shape {x.shape}"
        )
    if x.size == 0:
        raise DataError(f"{name}: empty array of shape {x.shape}, expected at least one example")
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    image_shape = tuple(int(s) for s in x.shape[1:]) if x.ndim > 2 else None
    check_finite(x, name)
    return x.reshape(len(x), -1), image_shape


def _as_labels(y: np.ndarray, n: int, name: str) -> np.ndarray:
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"{name}: expected labels 'y' as {n} integers (one per example), "
            f"found {y.dtype} {y.shape}"
        )
    return y.astype(np.int64)
