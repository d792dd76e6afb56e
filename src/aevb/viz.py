"""Pictures of a trained model: sample grids, reconstructions, the 2-D latent manifold,
interpolations and training curves (Kingma & Welling 2013, Figures 2, 4 and 5).

Images are rows of a ``(N, D)`` array with values in [0, 1], reshaped to the model's
``config.image_shape``: ``(H, W)`` for greyscale or ``(H, W, C)`` (channels last, C = 1
or 3). Every file is written through :func:`aevb.atomic.atomic_path`, so a failed write
leaves nothing behind. Figures are drawn with matplotlib's Agg canvas directly (no pyplot),
so drawing touches no global state and works without a display.

Functions that take a model use only :class:`aevb.models.protocol.Model`. They run under
``torch.no_grad()`` with the model in eval mode and restore its modes after. For a
conditional model, data rows end with their condition columns (so "``(D,)``" below reads
``(D + C,)``); samples are drawn one class per column and a manifold is drawn for one
class (``label``). Manifolds and traversals move the code (z_1; z_L of a top-down
hierarchy, whose lower layers then sit at the means of p(z_l|z_{l+1})) in units of a
standard normal: for a mixture prior, a VampPrior or a bottom-up hierarchy (whose z_1 is
not N(0, I) a priori) they show a slice of the decoder, not equal-mass regions of the prior.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib import image as mpimg
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from aevb.atomic import atomic_path
from aevb.models.protocol import Model

SEPARATOR = 1.0
"""Value of the 1-pixel lines between tiles and of the empty tiles that pad the last row."""
MIN_SIDE = 256
"""With ``scale=None`` pictures are enlarged by the smallest integer factor that makes
their longer side at least this many pixels (8x8 digits would otherwise be specks)."""
DPI = 100
"""Dots per inch of the saved figures."""
CURVES = {"train_bound": "train", "valid_bound": "validation", "test_bound": "test"}
"""History keys drawn by :func:`plot_training_curve`, with their legend labels."""


# --- grids -----------------------------------------------------------------------------


def image_grid(
    images: np.ndarray | Tensor,
    image_shape: Sequence[int],
    nrow: int,
    *,
    pad_value: float = SEPARATOR,
) -> np.ndarray:
    """Tile ``images`` into one picture, ``nrow`` images per row, left to right, top down.

    Args:
        images: ``(N, D)`` with D = prod(image_shape) (``(N, *image_shape)`` is accepted
            too); values are clipped to [0, 1].
        image_shape: ``(H, W)`` or ``(H, W, C)`` with C in {1, 3}, channels last.
        nrow: images per row; the grid has ``min(nrow, N)`` columns and
            ``ceil(N / nrow)`` rows, the last row padded with empty tiles.
        pad_value: value of the 1-pixel separators and of the padding tiles.

    Returns:
        ``(R*H + R-1, K*W + K-1)`` for greyscale, ``(R*H + R-1, K*W + K-1, 3)`` for RGB,
        float32 in [0, 1], where R is the number of rows and K the number of columns.
    """
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise ValueError(f"image_shape={shape}: expected (H, W) or (H, W, C) with C in 1 or 3")
    if nrow < 1:
        raise ValueError(f"nrow={nrow}: expected at least 1")
    if isinstance(images, Tensor):
        images = images.detach().cpu().float().numpy()
    array = np.asarray(images, dtype=np.float32)
    n = array.shape[0] if array.ndim > 0 else 0
    if n == 0:
        raise ValueError("image_grid: no images to draw")
    d = math.prod(shape)
    if array[0].size != d:
        raise ValueError(
            f"image_grid: images of shape {array.shape} do not match image_shape={shape} "
            f"({d} values each)"
        )
    h, w = shape[0], shape[1]
    channels = () if len(shape) == 2 or shape[2] == 1 else (3,)
    tiles = np.clip(array.reshape(n, h, w, *channels), 0.0, 1.0)

    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, *channels), pad_value, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = tiles[i]
    return grid


def save_image_grid(
    images: np.ndarray | Tensor,
    image_shape: Sequence[int],
    path: str | os.PathLike,
    nrow: int | None = None,
    title: str | None = None,
    *,
    scale: int | None = None,
) -> Path:
    """Save ``images`` ``(N, D)`` as a grid picture (PNG unless the suffix says otherwise).

    ``nrow`` images per row (default ``ceil(sqrt(N))``, a square grid). Without a title the
    file holds the grid exactly, each grid pixel a ``scale x scale`` block: the picture is
    ``(scale * H_total, scale * W_total)`` pixels. With a title it is a figure with the title
    above the grid. ``scale=None`` picks the factor from :data:`MIN_SIDE`.
    """
    if nrow is None:
        nrow = math.ceil(math.sqrt(len(images)))
    grid = image_grid(images, image_shape, nrow)
    if title is not None:
        return save_figure(_picture(grid, scale, title=title), path)
    return _save_pixels(grid, path, scale)


# --- pictures of a model ---------------------------------------------------------------


def plot_samples(
    model: Model,
    path: str | os.PathLike,
    n: int = 100,
    *,
    seed: int = 0,
    temperature: float = 1.0,
    scale: int | None = None,
) -> Path:
    """Save a square grid of ``n`` means of p(x|z), z drawn from the prior (Figure 5).

    ``seed`` makes the picture reproducible; ``temperature`` scales the prior's standard
    deviation. The grid is saved pixel-exact, enlarged by ``scale`` (see
    :func:`save_image_grid`).
    """
    shape = _image_shape(model)
    _check_positive("n", n)
    classes = model.config.condition_dim
    nrow = classes or math.ceil(math.sqrt(n))
    with _drawing(model) as (device, _):
        generator = torch.Generator(device=device).manual_seed(seed)
        labels = torch.arange(n) % classes if classes else None  # one class per column
        images = model.sample(n, generator=generator, temperature=temperature, condition=labels)
    return save_image_grid(images, shape, path, nrow=nrow, scale=scale)


def plot_reconstructions(
    model: Model,
    x: Tensor,
    path: str | os.PathLike,
    n: int = 10,
    *,
    scale: int | None = None,
) -> Path:
    """Save the first ``n`` rows of ``x`` ``(B, D)`` above their reconstructions.

    The reconstruction of x is the mean of p(x|z) at z = E[q(z|x)]. Rows are labelled
    "input" and "reconstruction".
    """
    shape = _image_shape(model)
    _check_positive("n", n)
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"x of shape {tuple(x.shape)}: expected a non-empty batch (B, D)")
    x = x[:n]
    with _drawing(model) as (device, dtype):
        inputs = x.to(device=device, dtype=dtype)
        recons = model.reconstruct(inputs)
    k = x.shape[0]
    grid = image_grid(torch.cat([model.separate_condition(inputs)[0], recons]), shape, nrow=k)
    h = shape[0]
    fig = _picture(
        grid, scale, yticks=[(_centre(0, h), "input"), (_centre(1, h), "reconstruction")]
    )
    return save_figure(fig, path)


def manifold_grid(
    model: Model,
    n: int = 20,
    *,
    dims: Sequence[int] = (0, 1),
    base: Tensor | None = None,
    label: int = 0,
) -> Tensor:
    """Means of p(x|z) over an ``n x n`` grid of latent points (Figure 4): ``(n*n, D)``.

    The grid coordinates ``(i + 0.5) / n``, i = 0..n-1, spaced evenly inside the unit
    square, are mapped through the inverse Gaussian CDF, so the points have equal prior
    mass between them. Latent ``dims[0]`` varies along the columns (low to high, left to
    right) and ``dims[1]`` along the rows (high to low, top to bottom); the other latents
    are fixed at ``base`` ``(Nz,)`` (default zeros, the prior mean), giving a 2-D slice when
    Nz > 2. Row-major: entry ``r*n + c`` is row r, column c. Returned on the CPU.
    A conditional model is drawn for class ``label``.
    """
    nz = code_dim(model)
    d0, d1 = _check_dims(dims, nz)
    _check_positive("n", n)
    if base is not None and tuple(base.shape) != (nz,):
        raise ValueError(f"base of shape {tuple(base.shape)}: expected ({nz},), the code size")
    with _drawing(model) as (device, dtype):
        values = manifold_values(n).to(device=device, dtype=dtype)
        start = torch.zeros(nz) if base is None else base.detach()
        z = start.to(device=device, dtype=dtype).expand(n, n, nz).clone()  # (row, col, Nz)
        z[:, :, d0] = values[None, :]
        z[:, :, d1] = values.flip(0)[:, None]
        condition = _class_condition(model, label, n * n)
        return model.decode(z.reshape(n * n, nz), condition).mean.cpu()


def code_dim(model: Model) -> int:
    """Size of the code ``model.encode`` infers (``config.code_dim``)."""
    return model.config.code_dim


def _class_condition(model: Model, label: int, n: int) -> Tensor | None:
    """``n`` copies of one-hot ``label`` for a conditional model, else None."""
    if not model.config.condition_dim:
        return None
    return model.as_condition(torch.full((n,), int(label), dtype=torch.long), n)


def _row_condition(model: Model, row: Tensor, n: int) -> Tensor | None:
    """``n`` copies of the condition columns of data ``row`` ``(D + C,)``, or None."""
    condition = model.separate_condition(row[None])[1]
    return None if condition is None else condition.expand(n, -1)


def manifold_values(n: int) -> Tensor:
    """The ``n`` latent values of one manifold axis, ascending: ``ndtri((i + 0.5) / n)``,
    ``(n,)`` float64."""
    _check_positive("n", n)
    return torch.special.ndtri((torch.arange(n, dtype=torch.float64) + 0.5) / n)


def plot_manifold(
    model: Model,
    path: str | os.PathLike,
    n: int = 20,
    *,
    dims: Sequence[int] = (0, 1),
    base: Tensor | None = None,
    label: int = 0,
    scale: int | None = None,
) -> Path:
    """Save the ``n x n`` latent manifold of :func:`manifold_grid` as a picture.

    The axes are labelled ``z[dims[0]]`` (across) and ``z[dims[1]]`` (down, high to low),
    with the latent values of the outermost tiles as ticks.
    """
    shape = _image_shape(model)
    images = manifold_grid(model, n, dims=dims, base=base, label=label)
    d0, d1 = (int(d) for d in dims)
    grid = image_grid(images, shape, nrow=n)
    v = manifold_values(n).tolist()
    h, w = shape[0], shape[1]
    fig = _picture(
        grid,
        scale,
        xticks=[(_centre(0, w), f"{v[0]:.2f}"), (_centre(n - 1, w), f"{v[-1]:.2f}")],
        yticks=[(_centre(0, h), f"{v[-1]:.2f}"), (_centre(n - 1, h), f"{v[0]:.2f}")],
        xlabel=f"z[{d0}]",
        ylabel=f"z[{d1}]",
    )
    return save_figure(fig, path)


def interpolate(model: Model, x0: Tensor, x1: Tensor, steps: int = 10) -> Tensor:
    """Decode ``steps`` points on the line between the posterior means of ``x0`` and ``x1``.

    ``x0`` and ``x1`` are ``(D,)``. The points are z_t = (1 - t) mu0 + t mu1 for t evenly
    spaced in [0, 1], ends included; returns the means of p(x|z_t), ``(steps, D)``, on the
    CPU. A conditional model decodes every point with ``x0``'s condition.
    """
    if steps < 2:
        raise ValueError(f"steps={steps}: expected at least 2 (the two end points)")
    if x0.dim() != 1 or x0.shape != x1.shape:
        raise ValueError(
            f"x0 {tuple(x0.shape)} and x1 {tuple(x1.shape)}: expected two vectors of shape (D,)"
        )
    with _drawing(model) as (device, dtype):
        mu = model.encode(torch.stack([x0, x1]).to(device=device, dtype=dtype)).mean  # (2, Nz)
        t = torch.linspace(0.0, 1.0, steps, device=device, dtype=mu.dtype)[:, None]
        condition = _row_condition(model, x0.to(device=device, dtype=dtype), steps)
        return model.decode((1 - t) * mu[0] + t * mu[1], condition).mean.cpu()


def plot_interpolation(
    model: Model,
    x0: Tensor,
    x1: Tensor,
    path: str | os.PathLike,
    steps: int = 10,
    *,
    scale: int | None = None,
) -> Path:
    """Save one row: input ``x0``, the ``steps`` images of :func:`interpolate`, input ``x1``."""
    shape = _image_shape(model)
    between = interpolate(model, x0, x1, steps)
    ends = [model.separate_condition(v.detach().cpu().float()[None])[0] for v in (x0, x1)]
    row = torch.cat([ends[0], between.float(), ends[1]])
    grid = image_grid(row, shape, nrow=steps + 2)
    w = shape[1]
    fig = _picture(
        grid, scale, xticks=[(_centre(0, w), "input x0"), (_centre(steps + 1, w), "input x1")]
    )
    return save_figure(fig, path)


def traversal(
    model: Model,
    x: Tensor,
    *,
    dims: Sequence[int] | None = None,
    n: int = 9,
    span: float = 3.0,
) -> Tensor:
    """Vary one latent dimension at a time around the posterior mean of ``x`` ``(D,)``.

    Row r sets dimension ``dims[r]`` to ``n`` values evenly spaced in [-span, span]
    (standard deviations of the prior), the others staying at the posterior mean; returns
    the decoded means, ``(len(dims) * n, D)``, row-major, on the CPU. The standard
    beta-VAE picture of what each latent dimension encodes.
    """
    latent = code_dim(model)
    dims = list(range(latent)) if dims is None else list(dims)
    for d in dims:
        if not 0 <= d < latent:
            raise ValueError(f"dims: {d} is not a latent dimension; expected 0..{latent - 1}")
    _check_positive("n", n)
    with _drawing(model) as (device, dtype):
        row = x.reshape(-1).to(device=device, dtype=dtype)
        mu = model.encode(row[None]).mean[0]
        values = torch.linspace(-span, span, n, device=device, dtype=mu.dtype)
        z = mu.repeat(len(dims) * n, 1)
        for r, d in enumerate(dims):
            z[r * n : (r + 1) * n, d] = values
        return model.decode(z, _row_condition(model, row, z.shape[0])).mean.cpu()


def plot_traversal(
    model: Model,
    x: Tensor,
    path: str | os.PathLike,
    *,
    dims: Sequence[int] | None = None,
    n: int = 9,
    span: float = 3.0,
    scale: int | None = None,
) -> Path:
    """Save :func:`traversal` as a grid: one row per latent dimension, labelled z[d]."""
    shape = _image_shape(model)
    dims = list(range(code_dim(model))) if dims is None else list(dims)
    grid = image_grid(traversal(model, x, dims=dims, n=n, span=span), shape, nrow=n)
    h, w = shape[0], shape[1]
    fig = _picture(
        grid,
        scale,
        yticks=[(_centre(r, h), f"z[{d}]") for r, d in enumerate(dims)],
        xticks=[(_centre(0, w), f"-{span:g}"), (_centre(n - 1, w), f"+{span:g}")],
    )
    return save_figure(fig, path)


# --- training curves -------------------------------------------------------------------


def plot_training_curve(
    history: Sequence[Mapping[str, float]],
    path: str | os.PathLike,
    *,
    log_x: bool = True,
    title: str | None = None,
) -> Path:
    """Save the lower bound against the number of training examples seen (Figure 2).

    Each row of ``history`` has ``"examples"`` and any of ``"train_bound"``,
    ``"valid_bound"``, ``"test_bound"`` (nats per example). Missing or NaN entries are
    skipped, and series with no values are left out. With ``log_x`` the x axis is
    logarithmic, and points at zero examples are dropped.
    """
    if len(history) == 0:
        raise ValueError("plot_training_curve: history is empty")
    series: dict[str, tuple[list[float], list[float]]] = {}
    for i, row in enumerate(history):
        if "examples" not in row:
            raise ValueError(f"plot_training_curve: history row {i} has no 'examples' entry")
        examples = float(row["examples"])
        if log_x and examples <= 0:
            continue
        for key in CURVES:
            value = float(row.get(key, math.nan))
            if math.isfinite(value):
                xs, ys = series.setdefault(key, ([], []))
                xs.append(examples)
                ys.append(value)
    if not series:
        raise ValueError(
            "plot_training_curve: no finite train_bound, valid_bound or test_bound values"
            + (" at examples > 0 (log x axis)" if log_x else "")
        )
    fig = Figure(figsize=(6.0, 4.0), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, label in CURVES.items():
        if key in series:
            ax.plot(*series[key], marker="." if len(series[key][0]) < 50 else None, label=label)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("# training examples seen")
    ax.set_ylabel("lower bound on log p(x) (nats)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    if title is not None:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path, tight=False)


# --- helpers ---------------------------------------------------------------------------


def _image_shape(model: Model) -> tuple[int, ...]:
    shape = model.config.image_shape
    if shape is None:
        raise ValueError("pictures need image data: this model's config has no image_shape")
    return tuple(int(s) for s in shape)


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name}={value}: expected at least 1")


def _check_dims(dims: Sequence[int], latent_dim: int) -> tuple[int, int]:
    dims = tuple(dims)
    ok = (
        len(dims) == 2
        and all(isinstance(d, int | np.integer) for d in dims)
        and dims[0] != dims[1]
        and all(0 <= d < latent_dim for d in dims)
    )
    if not ok:
        raise ValueError(f"dims={dims}: expected two distinct latent indices in [0, {latent_dim})")
    return int(dims[0]), int(dims[1])


@contextlib.contextmanager
def _drawing(model: Model) -> Iterator[tuple[torch.device, torch.dtype]]:
    """Eval mode and no gradients for the block; yields the parameters' device and dtype.

    Each submodule's own training flag is restored afterwards, not just the top one's.
    """
    modes = [(m, m.training) for m in model.modules()]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    model.eval()
    try:
        with torch.no_grad():
            yield device, dtype
    finally:
        for m, training in modes:
            m.training = training


def _centre(index: int, size: int) -> float:
    """Pixel coordinate of the middle of tile ``index`` along an axis of tiles ``size`` long."""
    return index * (size + 1) + (size - 1) / 2


def _scale(grid: np.ndarray, scale: int | None) -> int:
    if scale is None:
        return max(1, math.ceil(MIN_SIDE / max(grid.shape[:2])))
    if scale < 1:
        raise ValueError(f"scale={scale}: expected an integer of at least 1")
    return int(scale)


def _save_pixels(grid: np.ndarray, path: str | os.PathLike, scale: int | None) -> Path:
    """Write ``grid`` ``(H, W)`` or ``(H, W, 3)`` with each pixel a ``scale x scale`` block."""
    k = _scale(grid, scale)
    # Quantise here, rounding to the nearest 8-bit level: a colormap would truncate.
    levels = np.rint(np.clip(grid, 0.0, 1.0) * 255).astype(np.uint8)
    if levels.ndim == 2:
        levels = np.repeat(levels[:, :, None], 3, axis=2)
    big = np.repeat(np.repeat(levels, k, axis=0), k, axis=1)
    with atomic_path(path) as tmp:
        mpimg.imsave(tmp, big)
    return Path(path)


def _picture(
    grid: np.ndarray,
    scale: int | None,
    *,
    title: str | None = None,
    xticks: Sequence[tuple[float, str]] = (),
    yticks: Sequence[tuple[float, str]] = (),
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> Figure:
    """A figure showing ``grid`` at ``scale`` screen pixels per grid pixel, with labels.

    The axes fill the figure exactly, so the image is not resampled; labels and title sit
    outside it and are kept by saving with a tight bounding box.
    """
    k = _scale(grid, scale)
    height, width = grid.shape[:2]
    fig = Figure(figsize=(width * k / DPI, height * k / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
    ax.set_xticks([p for p, _ in xticks], [label for _, label in xticks])
    ax.set_yticks([p for p, _ in yticks], [label for _, label in yticks])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, *, tight: bool = True) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight" if tight else None, facecolor="white")
    return Path(path)
