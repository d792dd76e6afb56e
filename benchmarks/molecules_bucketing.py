"""Training speed of the molecule VAE with and without minibatches of similar lengths.

    AEVB_DATA_DIR=../shared/data python -m benchmarks.molecules_bucketing \\
        [--rounds 2] [--max-examples 25600] [--threads 1]

Trains the CPU benchmark's model (``benchmarks.molecules.CPU``) on 100,000 MOSES training
molecules for ``--max-examples`` molecules, with ``--bucket-pool 0`` (plain shuffling)
and ``--bucket-pool 50``, alternating in ``--rounds`` rounds so that both see the same
machine load. Prints training molecules/s (optimiser steps only), the mean padded
length of a minibatch and the bound on 500 held-out molecules at the end (nats per
molecule; each round repeats the same run), and writes
``benchmarks/results/molecules-bucketing.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/anomaly.py

import torch  # noqa: E402

from aevb.atomic import write_text  # noqa: E402
from aevb.cli import main as aevb  # noqa: E402
from aevb.runfolder import RunFolder, read_trainer_meta  # noqa: E402
from benchmarks.molecules import CPU, RESULTS, machine  # noqa: E402

POOLS = (0, 50)


def training_lengths(n_train: int = 100_000) -> torch.Tensor:
    """Tokens per row ``(n_train,)`` of the benchmark's training molecules."""
    from aevb.apps.molecules_cli import _dataset
    from aevb.models.sequence import sequence_lengths

    spec = {"data": "moses", "tokenizer": "smiles", "train_size": n_train, "valid_size": 5000,
            "seed": 0, "column": None, "skip_invalid": False}  # fmt: skip
    data, _ = _dataset(spec)
    return sequence_lengths(torch.as_tensor(data.train))


def padded_length(lengths: torch.Tensor, pool: int, batch: int = 256) -> float:
    """Mean padded length of a minibatch (its longest row) over one epoch of the order
    ``pool`` gives to rows of ``lengths`` ``(N,)``."""
    from aevb.training import bucketed_order

    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(lengths), generator=g)
    if pool:
        order = bucketed_order(order, lengths, batch, pool, generator=g)
    full = len(order) // batch * batch
    return float(lengths[order[:full]].view(-1, batch).max(1).values.float().mean())


def alternate(
    variants: dict[str, list[str]], rounds: int, max_examples: int, threads: int
) -> dict[str, dict]:
    """Train the CPU benchmark's model on 100,000 MOSES molecules for ``max_examples``
    molecules once per variant (the extra ``aevb molecules train`` options of each), the
    variants alternating in ``rounds`` rounds so that all see the same machine load.
    Returns each variant's training molecules/s and held-out bound, one per round
    (``molecules_per_s``, ``valid_bound``), and the median speed."""
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    bounds: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, extra in variants.items():
                out = Path(tmp) / f"r{r}-{name}"
                budget = str(max_examples)
                cmd = ["molecules", "train", "--out", str(out), "--train-size", "100000",
                       *CPU, "--max-examples", budget, "--eval-every", budget,
                       "--eval-max-examples", "500", *extra,
                       "--threads", str(threads), "--quiet"]  # fmt: skip
                if aevb(cmd) != 0:
                    raise SystemExit(f"aevb {' '.join(cmd)} failed")
                state = read_trainer_meta(RunFolder(out).checkpoint)["state"]
                speeds[name].append(state["examples"] / state["train_seconds"])
                bounds[name].append(state["history"][-1]["valid_bound"])
                print(f"round {r}, {name}: {speeds[name][-1]:.0f} molecules/s", flush=True)
    return {
        name: {
            "molecules_per_s": speeds[name],
            "median_molecules_per_s": statistics.median(speeds[name]),
            "valid_bound": bounds[name],
        }
        for name in variants
    }


def write_record(filename: str, args: argparse.Namespace, **results: object) -> None:
    """``benchmarks/results/<filename>``: the machine, the benchmark's arguments and its
    ``results``, as JSON."""
    record = {"machine": machine(args.threads), "args": vars(args), **results}
    write_text(RESULTS / filename, json.dumps(record, indent=1) + "\n")


def alternated(
    doc: str, variants: dict[str, list[str]], argv: list[str] | None
) -> tuple[argparse.Namespace, dict[str, dict]]:
    """Parse a benchmark's ``--rounds``, ``--max-examples`` and ``--threads`` (its
    description: the first paragraph of ``doc``) and run :func:`alternate` with them."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-examples", type=int, default=25_600)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    return args, alternate(variants, args.rounds, args.max_examples, args.threads)


def main(argv: list[str] | None = None) -> None:
    variants = {str(pool): ["--bucket-pool", str(pool)] for pool in POOLS}
    args, rows = alternated(__doc__, variants, argv)
    lengths = training_lengths()
    for pool in POOLS:
        rows[str(pool)]["mean_tokens"] = float(lengths.float().mean())
        rows[str(pool)]["mean_padded_length"] = padded_length(lengths, pool)
    ratio = rows["50"]["median_molecules_per_s"] / rows["0"]["median_molecules_per_s"]
    print("bucket pool | molecules/s (median) | tokens a row | padded length | valid bound")
    for pool, row in rows.items():
        print(
            f"{pool:>11} | {row['median_molecules_per_s']:20.0f} | {row['mean_tokens']:12.1f} "
            f"| {row['mean_padded_length']:13.1f} | {row['valid_bound'][-1]:.2f}"
        )
    print(f"speed-up with a pool of 50: {ratio:.2f}x")
    write_record("molecules-bucketing.json", args, pools=rows, speedup=ratio)


if __name__ == "__main__":
    main()
