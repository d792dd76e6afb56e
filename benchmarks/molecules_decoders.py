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

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/anomaly.py

from benchmarks.molecules_bucketing import alternated, write_record  # noqa: E402

VARIANTS = {"gru": [], "lstm": ["--encoder", "lstm", "--decoder", "lstm"]}


def main(argv: list[str] | None = None) -> None:
    args, rows = alternated(__doc__, VARIANTS, argv)
    ratio = rows["lstm"]["median_molecules_per_s"] / rows["gru"]["median_molecules_per_s"]
    print("networks | molecules/s (median) | valid bound (last round)")
    for name, row in rows.items():
        print(f"{name:>8} | {row['median_molecules_per_s']:20.0f} | {row['valid_bound'][-1]:.2f}")
    print(f"LSTM / GRU training speed: {ratio:.2f}x")
    write_record("molecules-decoders.json", args, variants=rows, speed_ratio_lstm_to_gru=ratio)


if __name__ == "__main__":
    main()
