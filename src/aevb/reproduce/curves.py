"""Curves of a bound against training examples seen, as the paper's Figures 2 and 3 draw them:
their CSV, their panels (train solid, test dashed, log x axis) and the files of a figure."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.axes import Axes

from aevb.atomic import write_text

LABELS = {"aevb": "AEVB", "wake-sleep": "Wake-Sleep", "mcem": "MCEM"}
COLOURS = {"aevb": "tab:red", "wake-sleep": "tab:blue", "mcem": "tab:green"}


def write_figure(
    out: Path,
    name: str,
    rows: list[dict],
    plot: Callable[[list[dict], Path], Path],
    report: str,
) -> dict[str, Path]:
    """Write ``out/<name>.csv`` (``rows``, columns in their key order), ``out/<name>.png``
    (``plot(rows, path)``) and ``out/<name>.md`` (``report``); return the three paths."""
    paths = {ext: out / f"{name}.{ext}" for ext in ("csv", "png", "md")}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(paths["csv"], buf.getvalue())
    plot(rows, paths["png"])
    write_text(paths["md"], report)
    return paths


def draw_curves(
    ax: Axes,
    rows: Sequence[dict],
    algorithms: Sequence[str],
    train: str,
    test: str,
    *,
    zoom_from: int = 1,
) -> None:
    """One panel: for each algorithm, ``rows``' ``train`` column (solid) and ``test`` column
    (dashed) against ``examples`` on a log axis (rows without a finite count are skipped).

    Like the paper, the y axis shows the upper part of the curves (the first evaluations
    of an untrained model are far below) once the panel has ``zoom_from`` finite values."""
    for algorithm in algorithms:
        pts = sorted(
            (r["examples"], r[train], r[test])
            for r in rows
            if r["algorithm"] == algorithm and math.isfinite(r["examples"])
        )
        if not pts:
            continue
        s, tr, te = zip(*pts, strict=True)
        colour, label = COLOURS[algorithm], LABELS[algorithm]
        ax.plot(s, tr, color=colour, label=f"{label} (train)")
        ax.plot(s, te, color=colour, linestyle="--", label=f"{label} (test)")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    finite = sorted(v for r in rows for v in (r[train], r[test]) if math.isfinite(v))
    if finite and len(finite) >= zoom_from:
        top, low = finite[-1], finite[len(finite) // 5]
        ax.set_ylim(low - 0.1 * (top - low), top + 0.05 * (top - low))
