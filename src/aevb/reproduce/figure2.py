"""Kingma & Welling (2013), Figure 2: the lower bound against training examples seen, AEVB
against wake-sleep, for several latent sizes on MNIST (500 hidden units) and Frey Face
(200 hidden units)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from matplotlib.figure import Figure

from aevb.reproduce.curves import LABELS, draw_curves, write_figure
from aevb.reproduce.runs import paper_spec, run_all
from aevb.viz import save_figure

LATENTS = {"binarized_mnist": (3, 5, 10, 20, 200), "frey_face": (2, 5, 10, 20)}
TITLES = {"binarized_mnist": "MNIST", "frey_face": "Frey Face"}
ALGORITHMS = ("aevb", "wake-sleep")
FULL_BUDGET = 100_000_000


def run(
    out: Path,
    *,
    budget: int | dict[str, int] | None = None,
    jobs: int = 2,
    data_dir: str | None = None,
    datasets: tuple[str, ...] = ("binarized_mnist", "frey_face"),
) -> dict:
    """Select step sizes, train every curve, write CSV, PNG and a markdown section.

    ``budget``: training examples per curve, for every dataset or per dataset name.
    """
    rows, step_sizes = [], {}
    for dataset in datasets:
        specs = []
        for algorithm in ALGORITHMS:
            spec, scores = paper_spec(
                dataset, algorithm, budget, out / "runs", jobs=jobs, data_dir=data_dir
            )
            step_sizes[(dataset, algorithm)] = (spec.lr, scores)
            specs += [replace(spec, latent_dim=nz) for nz in LATENTS[dataset]]
        for spec, history in run_all(specs, out / "runs", jobs=jobs, data_dir=data_dir).items():
            for r in history:
                rows.append(
                    {
                        "dataset": dataset,
                        "latent_dim": spec.latent_dim,
                        "algorithm": spec.algorithm,
                        "lr": spec.lr,
                        "examples": r["examples"],
                        "train_bound": r["train_bound"],
                        "test_bound": r["test_bound"],
                    }
                )
    return write_figure(out, "figure2", rows, plot, report(rows, step_sizes))


def plot(rows: list[dict], path: Path) -> Path:
    """Panels like the paper's: one per dataset and latent size, log x axis, train (solid)
    and test (dashed) bound of AEVB and wake-sleep."""
    panels = [
        (d, nz)
        for d in LATENTS
        for nz in LATENTS[d]
        if any(r["dataset"] == d and r["latent_dim"] == nz for r in rows)
    ]
    cols = max(len(LATENTS[d]) for d in LATENTS)
    n_rows = len({d for d, _ in panels})
    fig = Figure(figsize=(3.0 * cols, 2.8 * n_rows))
    datasets = list(dict.fromkeys(d for d, _ in panels))
    for d, nz in panels:
        i, j = datasets.index(d), LATENTS[d].index(nz)
        ax = fig.add_subplot(n_rows, cols, i * cols + j + 1)
        panel = [r for r in rows if r["dataset"] == d and r["latent_dim"] == nz]
        draw_curves(ax, panel, ALGORITHMS, "train_bound", "test_bound", zoom_from=4)
        ax.set_title(f"{TITLES[d]}, $N_z = {nz}$", fontsize=9)
        ax.set_xlabel("# Training samples evaluated", fontsize=8)  # the paper's words
        if j == 0:
            ax.set_ylabel(r"$\mathcal{L}$", fontsize=9)
        ax.tick_params(labelsize=7)
        if i == 0 and j == 0:
            ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def final_bounds(rows: list[dict]) -> dict[tuple[str, int, str], dict]:
    """The last evaluated row of every curve."""
    out: dict[tuple[str, int, str], dict] = {}
    for r in rows:
        key = (r["dataset"], r["latent_dim"], r["algorithm"])
        if math.isfinite(r["examples"]) and (
            key not in out or r["examples"] > out[key]["examples"]
        ):
            out[key] = r
    return out


def report(rows: list[dict], step_sizes: dict) -> str:
    """A markdown table of final bounds per dataset, latent size and algorithm."""
    last = final_bounds(rows)
    lines = [
        "| dataset | Nz | AEVB train | AEVB test | WS train | WS test | examples "
        "| AEVB above WS (test) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for d in LATENTS:
        for nz in LATENTS[d]:
            a, w = last.get((d, nz, "aevb")), last.get((d, nz, "wake-sleep"))
            if a is None or w is None:
                continue
            above = "yes" if a["test_bound"] > w["test_bound"] else "**no**"
            lines.append(
                f"| {TITLES[d]} | {nz} | {a['train_bound']:.2f} | {a['test_bound']:.2f} | "
                f"{w['train_bound']:.2f} | {w['test_bound']:.2f} | {int(a['examples']):,} | "
                f"{above} |"
            )
    lines.append("")
    for (d, algorithm), (lr, scores) in step_sizes.items():
        shown = ", ".join(f"{k:g}: {v:.2f}" for k, v in scores.items())
        lines.append(
            f"- step size for {TITLES[d]}, {LABELS[algorithm]}: **{lr:g}** "
            f"(training bound after the probe: {shown})"
        )
    return "\n".join(lines) + "\n"
