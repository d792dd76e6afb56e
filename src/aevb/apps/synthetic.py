"""Synthetic data from a trained VAE: draws from the prior, N per class for a conditional
model, written in the formats data pipelines read (``aevb sample`` calls these).

Formats, chosen by the output path:

* ``.png`` (or another image suffix): one grid picture (a conditional model's classes in
  columns);
* ``.npy``: the rows, float32 ``(n, D)``;
* ``.npz``: ``x`` ``(n, D)`` and, for a conditional model, integer labels ``y`` ``(n,)``
  (aevb reads it back as a labelled dataset);
* ``.csv``: a header ``x0, ..., x{D-1}`` (and ``label``), one row per draw;
* a folder (a path ending in ``/``, or an existing folder): one 8-bit PNG per draw at the
  model's image size, ``000000.png``, ... (aevb reads it back as an image folder), and
  ``labels.csv`` (``file,label``) for a conditional model.

Draws are the means of p(x|z) for z from the prior (the usual choice for images: a
Bernoulli draw would add pixel noise), as :meth:`aevb.models.VAE.sample` gives them.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import torch

from aevb import memory
from aevb.atomic import atomic_dir, atomic_path, write_text
from aevb.models.protocol import Model

FORMATS = ("grid", "npy", "npz", "csv", "folder")


def class_labels(model: Model, per_class: int, classes: list[int] | None = None) -> torch.Tensor:
    """Labels ``(per_class * K,)`` for K classes (``classes``, default every class of a
    conditional model), cycling through the classes so that a grid with K columns shows
    one class per column."""
    c = model.config.condition_dim
    if not c:
        raise ValueError("per-class draws: this model is not conditional (no classes)")
    classes = list(range(c)) if not classes else list(classes)
    bad = [k for k in classes if not 0 <= k < c]
    if bad:
        raise ValueError(f"classes {bad}: expected labels in [0, {c})")
    return torch.tensor(classes * per_class)


@torch.no_grad()
def draw(
    model: Model,
    n: int,
    *,
    labels: torch.Tensor | None = None,
    temperature: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """``n`` synthetic rows, float32 ``(n, D)``: means of p(x|z) for z from the prior at
    ``temperature``; a conditional model needs ``labels`` ``(n,)``. The memory the draw
    needs is checked first (a one-line error when it does not fit)."""
    device = next(model.parameters()).device
    memory.check_fits(memory.sampling_bytes(model, n), f"-n {n}", "drawing", device)
    gen = torch.Generator(device=device).manual_seed(seed)
    x = model.sample(n, generator=gen, temperature=temperature, condition=labels)
    return x.cpu().numpy().astype(np.float32)


def output_format(path: str | os.PathLike) -> str:
    """The format of output ``path`` (see the module docstring): one of :data:`FORMATS`."""
    text = os.fspath(path)
    p = Path(text)
    if text.endswith(("/", os.sep)) or p.is_dir():
        return "folder"
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz", ".csv"):
        return suffix[1:]
    if suffix in (".png", ".jpg", ".jpeg", ".pdf", ".svg"):
        return "grid"
    raise ValueError(
        f"{text}: unknown output format {suffix or '(no suffix)'}: expected .png (a grid), "
        ".npy, .npz, .csv, or a folder (a path ending in /)"
    )


def write_samples(
    x: np.ndarray,
    path: str | os.PathLike,
    *,
    labels: np.ndarray | None = None,
    image_shape: tuple[int, ...] | None = None,
    nrow: int | None = None,
) -> Path:
    """Write rows ``x`` ``(n, D)`` (and their ``labels`` ``(n,)``) to ``path`` in the
    format its name says (:func:`output_format`); every write is atomic."""
    kind = output_format(path)
    path = Path(path)
    if kind in ("grid", "folder") and image_shape is None:
        raise ValueError(f"{path}: pictures need image data; this model has no image_shape")
    if kind == "grid":
        from aevb.viz import save_image_grid

        return save_image_grid(x, image_shape, path, nrow=nrow)
    if kind == "npy":
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, x)
    elif kind == "npz":
        arrays = {"x": x} if labels is None else {"x": x, "y": np.asarray(labels, np.int64)}
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    elif kind == "csv":
        write_text(path, _csv(x, labels))
    else:
        _write_folder(x, path, labels, image_shape)
    return path


def _csv(x: np.ndarray, labels: np.ndarray | None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    header = [f"x{j}" for j in range(x.shape[1])]
    writer.writerow(header if labels is None else [*header, "label"])
    for i, row in enumerate(x):
        cells = [f"{v:.6g}" for v in row]
        writer.writerow(cells if labels is None else [*cells, int(labels[i])])
    return out.getvalue()


def _write_folder(
    x: np.ndarray, path: Path, labels: np.ndarray | None, image_shape: tuple[int, ...]
) -> None:
    """One PNG per row (8-bit, the model's image size) and ``labels.csv``; the folder
    appears whole or not at all, and an existing non-empty folder is refused."""
    from PIL import Image

    if path.is_dir() and any(path.iterdir()):
        raise ValueError(f"{path}: the folder is not empty: expected a new or empty folder")
    shape = tuple(image_shape)
    levels = np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)
    names = [f"{i:06d}.png" for i in range(len(x))]
    with atomic_dir(path) as tmp:
        for name, row in zip(names, levels, strict=True):
            image = row.reshape(shape)
            if image.ndim == 3 and image.shape[2] == 1:
                image = image[:, :, 0]
            Image.fromarray(image).save(tmp / name)
        if labels is not None:
            rows = ["file,label", *(f"{f},{int(y)}" for f, y in zip(names, labels, strict=True))]
            (tmp / "labels.csv").write_text("\n".join(rows) + "\n")
