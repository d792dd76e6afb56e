"""The MOSES metrics of two sets with known answers, on the real MOSES files.

    .venv/bin/python -m benchmarks.molecules_metrics [--data-dir ../shared/data]
        [--limit N] [--train-sample 10000] [--device cpu] [--out metrics.json]

Rows: the MOSES test set scored as if generated, against itself (FCD 0, SNN, Frag and Scaf
1 by construction); ``--train-sample`` training molecules drawn at random (seed 0) against
the test sets (the "Train" row of the MOSES results table, which MOSES computes on its own
sample of the training set); and as many training molecules from the start of the file,
which show that the MOSES files are not shuffled (a contiguous slice is not a sample).
``--limit N`` cuts the test and scaffold-test sets to their first N molecules, for a
quick check. The reference statistics go to the aevb cache dir (computed once; a second
run reads them back), so the first run's "references" time is the one-off cost. Prints
the table (Markdown), each stage's wall time, the peak memory and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import fcd
import numpy as np
import rdkit
import torch

from aevb.machine import cpu_model
from aevb.molecules import Filters, References, load_moses, moses_metrics
from aevb.molecules.metrics import METRICS

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"

MOSES_TRAIN_ROW = {
    "Valid": 1.0,
    "Unique@1k": 1.0,
    "Unique@10k": 1.0,
    "FCD/Test": 0.008,
    "FCD/TestSF": 0.4755,
    "SNN/Test": 0.6419,
    "SNN/TestSF": 0.5859,
    "Frag/Test": 1.0,
    "Frag/TestSF": 0.9986,
    "Scaf/Test": 0.9907,
    "Scaf/TestSF": 0.0,
    "IntDiv": 0.8567,
    "IntDiv2": 0.8508,
    "Filters": 1.0,
    "Novelty": 1.0,
}
"""The "Train" row of the MOSES README's results table, as published."""


def machine(device: str) -> str:
    """The machine in one line: CPU, cores, memory, torch threads, library versions."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = cpu_model()
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {device}, RDKit {rdkit.__version__}, "
        f"fcd {fcd.__version__}"
    )


def markdown(rows: dict[str, dict[str, float]]) -> str:
    """The rows as a Markdown table, one column per metric."""
    names = [m for m in METRICS if any(m in row for row in rows.values())]
    lines = [
        "| set | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for label, row in rows.items():
        cells = [f"{row[m]:.4f}" if m in row else "–" for m in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--limit", type=int, default=None, help="first N test molecules only")
    parser.add_argument("--train-sample", type=int, default=10000)
    parser.add_argument("--device", default=None, help="default: cuda when available")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    seconds: dict[str, float] = {}

    def timed(stage: str, fn):
        start = time.perf_counter()
        result = fn()
        seconds[stage] = time.perf_counter() - start
        print(f"{stage}: {seconds[stage]:.1f} s", flush=True)
        return result

    data = timed("load MOSES", lambda: load_moses(args.data_dir, download=False))
    test, scaffolds = data.test[: args.limit], data.test_scaffolds[: args.limit]
    references = timed(
        "references (test, scaffold test, train canonical; cached after the first run)",
        lambda: References.from_smiles(test, scaffolds, data.train, device=device, quiet=False),
    )
    filters = Filters.moses(args.data_dir, download=False)
    kw = {"device": device, "quiet": False, "filters": filters}
    n = args.train_sample
    picked = np.random.default_rng(0).choice(len(data.train), n, replace=False)
    sample = [data.train[i] for i in picked]
    rows = {
        f"MOSES test ({len(test):,}) vs itself": timed(
            "test vs itself", lambda: moses_metrics(test, references, cache=True, **kw)
        ),
        f"MOSES train, {n:,} at random": timed(
            "train sample", lambda: moses_metrics(sample, references, **kw)
        ),
        f"MOSES train, first {n:,} of the file": timed(
            "train slice", lambda: moses_metrics(data.train[:n], references, **kw)
        ),
        "MOSES README, Train row (published)": MOSES_TRAIN_ROW,
    }
    print()
    print(markdown(rows))
    print()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"peak memory: {peak:.1f} GiB; machine: {machine(device)}")
    if args.out is not None:
        payload = {"rows": rows, "seconds": seconds, "peak_gib": peak, "machine": machine(device)}
        args.out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
