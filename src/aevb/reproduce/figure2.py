"""Kingma & Welling (2013), Figure 2: the lower bound against training samples, AEVB
against wake-sleep, for several latent sizes on MNIST (500 hidden units) and Frey Face
(200 hidden units)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import replace
from pathlib import Path

from aevb.atomic import write_text
from aevb.reproduce.runs import RunSpec, budget_for, run_all, select_step_size

LATENTS = {"binarized_mnist": (3, 5, 10, 20, 200), "frey_face": (2, 5, 10, 20)}
HIDDEN = {"binarized_mnist": 500, "frey_face": 200}
TITLES = {"binarized_mnist": "MNIST", "frey_face": "Frey Face"}
ALGORITHMS = ("aevb", "wake-sleep")
LABELS = {"aevb": "AEVB", "wake-sleep": "Wake-Sleep"}
FULL_BUDGET = 100_000_000
DEFAULT_BUDGET = {"binarized_mnist": 1_500_000, "frey_face": 1_000_000}


def run(
    out: Path,
    *,
    budget: int | dict[str, int] | None = None,
    jobs: int = 2,
    data_dir: str | None = None,
    datasets: tuple[str, ...] = ("binarized_mnist", "frey_face"),
) -> dict:
    """Select step sizes, train every curve, write CSV, PNG and a markdown section.

    ``budget``: training samples per curve, for every dataset or per dataset name.
    """
    rows, step_sizes = [], {}
    for dataset in datasets:
        n = budget_for(budget, dataset, DEFAULT_BUDGET[dataset])
        first = 100_000 if dataset == "binarized_mnist" else 20_000
        specs = []
        for algorithm in ALGORITHMS:
            probe = RunSpec(
                dataset,
                20 if dataset == "binarized_mnist" else 10,
                HIDDEN[dataset],
                algorithm,
                lr=0.02,
                budget=n,
                eval_every=first,
            )
            lr, scores = select_step_size(
                probe, out / "runs", probe_samples=min(n, 5 * first), jobs=jobs, data_dir=data_dir
            )
            step_sizes[(dataset, algorithm)] = (lr, scores)
            specs += [replace(probe, latent_dim=nz, lr=lr) for nz in LATENTS[dataset]]
        for spec, history in run_all(specs, out / "runs", jobs=jobs, data_dir=data_dir).items():
            for r in history:
                rows.append(
                    {
                        "dataset": dataset,
                        "latent_dim": spec.latent_dim,
                        "algorithm": spec.algorithm,
                        "lr": spec.lr,
                        "samples": r["samples"],
                        "train_bound": r["train_bound"],
                        "test_bound": r["test_bound"],
                    }
                )
    write_text(out / "figure2.csv", _csv(rows))
    plot(rows, out / "figure2.png")
    write_text(out / "figure2.md", report(rows, step_sizes))
    return {"csv": out / "figure2.csv", "png": out / "figure2.png", "md": out / "figure2.md"}


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def plot(rows: list[dict], path: Path) -> Path:
    """Panels like the paper's: one per dataset and latent size, log x axis, train (solid)
    and test (dashed) bound of AEVB and wake-sleep."""
    from matplotlib.figure import Figure

    from aevb.viz import save_figure

    panels = [
        (d, nz)
        for d in LATENTS
        for nz in LATENTS[d]
        if any(r["dataset"] == d and r["latent_dim"] == nz for r in rows)
    ]
    cols = max(len(LATENTS[d]) for d in LATENTS)
    n_rows = len({d for d, _ in panels})
    fig = Figure(figsize=(3.0 * cols, 2.8 * n_rows))
    colours = {"aevb": "tab:red", "wake-sleep": "tab:blue"}
    datasets = list(dict.fromkeys(d for d, _ in panels))
    for d, nz in panels:
        i, j = datasets.index(d), LATENTS[d].index(nz)
        ax = fig.add_subplot(n_rows, cols, i * cols + j + 1)
        for algorithm in ALGORITHMS:
            pts = sorted(
                (r["samples"], r["train_bound"], r["test_bound"])
                for r in rows
                if r["dataset"] == d
                and r["latent_dim"] == nz
                and r["algorithm"] == algorithm
                and math.isfinite(r["samples"])
            )
            if not pts:
                continue
            s, tr, te = zip(*pts, strict=True)
            ax.plot(s, tr, color=colours[algorithm], label=f"{LABELS[algorithm]} (train)")
            ax.plot(
                s, te, color=colours[algorithm], linestyle="--", label=f"{LABELS[algorithm]} (test)"
            )
        ax.set_xscale("log")
        ax.set_title(f"{TITLES[d]}, $N_z = {nz}$", fontsize=9)
        ax.set_xlabel("# Training samples evaluated", fontsize=8)
        if j == 0:
            ax.set_ylabel(r"$\mathcal{L}$", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        panel = [r for r in rows if r["dataset"] == d and r["latent_dim"] == nz]
        _zoom(ax, [r[k] for r in panel for k in ("train_bound", "test_bound")])

        if i == 0 and j == 0:
            ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def _zoom(ax, values: list[float]) -> None:
    """Like the paper, show the upper part of the curves (the first evaluations of an
    untrained model are far below)."""
    finite = sorted(v for v in values if math.isfinite(v))
    if len(finite) > 3:
        top = finite[-1]
        low = finite[len(finite) // 5]
        ax.set_ylim(low - 0.1 * (top - low), top + 0.05 * (top - low))


def final_bounds(rows: list[dict]) -> dict[tuple[str, int, str], dict]:
    """The last evaluated row of every curve."""
    out: dict[tuple[str, int, str], dict] = {}
    for r in rows:
        key = (r["dataset"], r["latent_dim"], r["algorithm"])
        if math.isfinite(r["samples"]) and (key not in out or r["samples"] > out[key]["samples"]):
            out[key] = r
    return out


def report(rows: list[dict], step_sizes: dict) -> str:
    """A markdown table of final bounds per dataset, latent size and algorithm."""
    last = final_bounds(rows)
    lines = [
        "| dataset | Nz | AEVB train | AEVB test | WS train | WS test | samples "
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
                f"{w['train_bound']:.2f} | {w['test_bound']:.2f} | {int(a['samples']):,} | "
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
