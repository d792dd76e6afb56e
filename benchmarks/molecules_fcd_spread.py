"""How much FCD moves between sets of samples of one model: the spread to keep in mind
when two runs' (or two checkpoints') FCD are compared.

    AEVB_DATA_DIR=../shared/data python -m benchmarks.molecules_fcd_spread RUN \\
        [--seeds 0 1 2] [-n 30000] [--threads 1]

Draws ``-n`` molecules from the prior of RUN's model once per seed (seed 0 is the set
``benchmarks.molecules`` scores), and prints Valid, FCD/Test and FCD/TestSF of each set
(against the MOSES test and scaffold-test sets, whose statistics are cached after their
first use) with their mean and standard deviation over the seeds. Writes
``benchmarks/results/molecules-fcd-spread-<run folder name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics as stats
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/anomaly.py

import torch  # noqa: E402

from benchmarks.molecules import RESULTS, machine  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a molecule run folder (uses best/, else checkpoint/)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("-n", type=int, default=30_000, help="molecules per set (MOSES: 30,000)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from aevb.atomic import write_text
    from aevb.molecules import moses_references
    from aevb.molecules.metrics import fcd
    from aevb.molecules.model import load_molecule_model, sample_smiles
    from aevb.molecules.references import statistics

    refs = moses_references(quiet=False)
    model = load_molecule_model(args.run)
    rows = []
    for seed in args.seeds:
        t = time.perf_counter()
        generated = sample_smiles(model, args.n, seed=seed)
        described = statistics(generated, cache=False)  # of the valid ones
        row = {
            "seed": seed,
            "Valid": described.n / len(generated),
            "FCD/Test": fcd(described, refs.test),
            "FCD/TestSF": fcd(described, refs.test_scaffolds),
            "seconds": time.perf_counter() - t,
        }
        rows.append(row)
        print(" | ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in row.items()), flush=True)  # fmt: skip
    summary = {
        k: {"mean": stats.fmean(r[k] for r in rows), "sd": stats.stdev(r[k] for r in rows)}
        for k in ("Valid", "FCD/Test", "FCD/TestSF")
    } if len(rows) > 1 else {}  # fmt: skip
    for k, v in summary.items():
        print(f"{k}: mean {v['mean']:.4f}, standard deviation {v['sd']:.4f} over the seeds")
    record = {"machine": machine(args.threads), "run": args.run, "n": args.n, "sets": rows,
              "over_seeds": summary}  # fmt: skip
    path = RESULTS / f"molecules-fcd-spread-{Path(args.run).name}.json"
    write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
