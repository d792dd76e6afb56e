"""Kingma & Welling (2013), Figures 4 and 5: learned 2-D manifolds (Frey Face, MNIST) and
random samples from MNIST models with 2, 5, 10 and 20 latent variables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from matplotlib.figure import Figure

from aevb.io import load_model
from aevb.reproduce.runs import RunSpec, paper_spec, run_all
from aevb.runfolder import RunFolder
from aevb.viz import image_grid, manifold_grid, save_figure

FIGURE5_LATENTS = (2, 5, 10, 20)


def _specs(
    out: Path, budget: int | dict[str, int] | None, jobs: int, data_dir: str | None
) -> list[RunSpec]:
    specs = []
    for dataset, latents in (("frey_face", (2,)), ("binarized_mnist", FIGURE5_LATENTS)):
        spec, _ = paper_spec(dataset, "aevb", budget, out / "runs", jobs=jobs, data_dir=data_dir)
        specs += [replace(spec, latent_dim=nz) for nz in latents]
    return specs


def run(
    out: Path,
    *,
    budget: int | dict[str, int] | None = None,
    jobs: int = 2,
    data_dir: str | None = None,
) -> dict:
    """Train (or reuse) the models and draw both figures."""
    specs = _specs(out, budget, jobs, data_dir)
    run_all(specs, out / "runs", jobs=jobs, data_dir=data_dir)
    models = {
        (s.dataset, s.latent_dim): load_model(RunFolder(out / "runs" / s.name).checkpoint)
        for s in specs
    }
    figure4 = plot_manifolds(
        [
            ("(a) Learned Frey Face manifold", models[("frey_face", 2)]),
            ("(b) Learned MNIST manifold", models[("binarized_mnist", 2)]),
        ],
        out / "figure4.png",
    )
    figure5 = plot_samples(
        [
            (f"({chr(97 + i)}) {nz}-D latent space", models[("binarized_mnist", nz)])
            for i, nz in enumerate(FIGURE5_LATENTS)
        ],
        out / "figure5.png",
    )
    return {"figure4": figure4, "figure5": figure5}


def _panels(panels: list[tuple[str, torch.Tensor, tuple[int, ...], int]], path: Path) -> Path:
    # big enough that every image pixel gets at least one screen pixel (no resampling
    # artefacts in the 1-pixel separators)
    side = max(max(image_grid(p[1][:1], p[2], 1).shape) * p[3] for p in panels) / 100 + 0.5
    fig = Figure(figsize=(side * len(panels), side + 0.4), dpi=100)
    for i, (title, images, shape, nrow) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.imshow(
            image_grid(images, shape, nrow), cmap="gray", vmin=0, vmax=1, interpolation="nearest"
        )
        ax.set_title(title, fontsize=9, y=-0.12)
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_manifolds(models: list[tuple[str, torch.nn.Module]], path: Path, n: int = 20) -> Path:
    """Figure 4: each model's manifold, a unit-square grid through the inverse Gaussian CDF."""
    return _panels([(t, manifold_grid(m, n), m.config.image_shape, n) for t, m in models], path)


def plot_samples(models: list[tuple[str, torch.nn.Module]], path: Path, n: int = 100) -> Path:
    """Figure 5: random samples (means of p(x|z), z from the prior) of each model."""
    panels = []
    for title, m in models:
        x = m.sample(n, generator=torch.Generator().manual_seed(0))
        panels.append((title, x, m.config.image_shape, int(n**0.5)))
    return _panels(panels, path)
