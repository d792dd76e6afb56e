"""Training speed of the molecule VAE with GRU and with LSTM networks.

    AEVB_DATA_DIR=../shared/data python -m benchmarks.molecules_decoders \\
        [--rounds 2] [--max-examples 25600] [--threads 1]

Trains the CPU benchmark's model (``benchmarks.molecules.CPU``: bf16 matrix products) on
100,000 MOSES training molecules for ``--max-examples`` molecules with GRU encoder and
decoder (the default), and with LSTM ones (``--encoder lstm --decoder lstm``), alternating
in ``--rounds`` rounds so that both see the same machine load
(:func:`benchmarks.molecules_bucketing.alternate`). Prints training molecules/s
(optimiser steps only) and the bound on 500 held-out molecules at the end (nats per
molecule), and writes ``benchmarks/results/molecules-decoders.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/anomaly.py

import torch  # noqa: E402

from aevb.atomic import write_text  # noqa: E402
from benchmarks.molecules import RESULTS, machine  # noqa: E402
from benchmarks.molecules_bucketing import alternate  # noqa: E402

VARIANTS = {"gru": [], "lstm": ["--encoder", "lstm", "--decoder", "lstm"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-examples", type=int, default=25_600)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    speeds, bounds = alternate(VARIANTS, args.rounds, args.max_examples, args.threads)
    rows = {
        name: {
            "molecules_per_s": speeds[name],
            "median_molecules_per_s": statistics.median(speeds[name]),
            "valid_bound": bounds[name],
        }
        for name in VARIANTS
    }
    ratio = rows["lstm"]["median_molecules_per_s"] / rows["gru"]["median_molecules_per_s"]
    print("networks | molecules/s (median) | valid bound (last round)")
    for name, row in rows.items():
        print(f"{name:>8} | {row['median_molecules_per_s']:20.0f} | {row['valid_bound'][-1]:.2f}")
    print(f"LSTM / GRU training speed: {ratio:.2f}x")
    record = {"machine": machine(args.threads), "args": vars(args), "variants": rows,
              "speed_ratio_lstm_to_gru": ratio}  # fmt: skip
    write_text(RESULTS / "molecules-decoders.json", json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
