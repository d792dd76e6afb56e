"""The molecule VAE on MOSES, measured as the field measures it, beside the published rows.

    .venv/bin/python -m benchmarks.molecules [--run runs/moses-smiles] [--tokenizer smiles]
        [--max-examples 3750000] [--decay-from 2750112] [--threads 2]   # the CPU budget
    .venv/bin/python -m benchmarks.molecules --networks lstm --max-examples N  # LSTMs
    .venv/bin/python -m benchmarks.molecules --full --device cuda   # the MOSES VAE schedule
    .venv/bin/python -m benchmarks.molecules --evaluate-only          # skip training

1. Train (or resume) the run with ``aevb molecules train`` on the MOSES training split
   (settings: :data:`CPU`, :data:`CPU_LSTM` or :data:`FULL`), printing the exact command
   line.
2. Sample 30,000 molecules from the prior (as MOSES does), timing it.
3. The MOSES metrics against the MOSES test and scaffold-test sets
   (:func:`aevb.molecules.moses_metrics`, references cached after their first use).
4. Reconstruction accuracy of 1,000 random test molecules, an interpolation picture, and
   latent-space optimisation of QED and penalised logP (:mod:`aevb.molecules.design`).

Writes ``benchmarks/results/molecules-<tokenizer>[-lstm].json``, the pictures to docs/figures/,
and prints the table beside the published MOSES rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/anomaly.py

import numpy as np  # noqa: E402
import torch  # noqa: E402

from aevb.machine import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FIGURES = REPO / "docs" / "figures"

CPU = [
    "--valid-size", "5000", "--latent-dim", "64", "--decoder-hidden", "512",
    "--encoder-hidden", "256", "--batch-size", "256", "--optimizer", "adam", "--lr", "1e-3",
    "--clip-grad-norm", "50", "--precision", "bf16", "--kl-warmup", "200000",
    "--eval-every", "250000", "--eval-max-examples", "5000", "--seed", "0",
]  # fmt: skip
"""The CPU run's settings (with ``--max-examples`` and the learning-rate decay): one decoder
layer of 512, Adam with the MOSES VAE's clipping, bf16 matrix products (Intel AMX), the ELBO
(beta 1) with a KL warm-up over the first 200,000 molecules."""
CHECKPOINT_EVERY = ["--checkpoint-every", "50000"]
"""CPU runs, new or resumed: a checkpoint every 50,000 molecules between evaluations (about
3 minutes, 0.3 s to write), so that a killed run loses little."""
CPU_LSTM = [*CPU, "--encoder", "lstm", "--decoder", "lstm", "--decoder-layers", "2"]
"""``--networks lstm``: the CPU run's settings with LSTM networks and a second decoder
layer, the LSTM's speed (docs/molecules.md) spent on depth."""
FULL = [
    "--valid-size", "10000", "--latent-dim", "128", "--decoder-hidden", "512",
    "--decoder-layers", "3", "--encoder-hidden", "256", "--batch-size", "512",
    "--optimizer", "adam", "--lr", "3e-4", "--beta", "0.05", "--kl-warmup", "100ep",
    "--epochs", "100",
    "--clip-grad-norm", "50", "--eval-every", "1000000", "--eval-max-examples", "10000",
    "--seed", "0",
]  # fmt: skip
"""The MOSES VAE's schedule (moses/vae/config.py): z of 128, a 3-layer GRU decoder of 512,
batches of 512, Adam 3e-4, KL weight rising linearly from 0 to 0.05 over 100 epochs."""

PUBLISHED = {
    "CharRNN": {
        "Valid": 0.9748, "Unique@1k": 1.0, "Unique@10k": 0.9994, "FCD/Test": 0.0732,
        "FCD/TestSF": 0.5204, "SNN/Test": 0.6015, "SNN/TestSF": 0.5649, "Frag/Test": 0.9998,
        "Frag/TestSF": 0.9983, "Scaf/Test": 0.9242, "Scaf/TestSF": 0.1101, "IntDiv": 0.8562,
        "IntDiv2": 0.8503, "Filters": 0.9943, "Novelty": 0.8419,
    },
    "VAE": {
        "Valid": 0.9767, "Unique@1k": 1.0, "Unique@10k": 0.9984, "FCD/Test": 0.099,
        "FCD/TestSF": 0.567, "SNN/Test": 0.6257, "SNN/TestSF": 0.5783, "Frag/Test": 0.9994,
        "Frag/TestSF": 0.9984, "Scaf/Test": 0.9386, "Scaf/TestSF": 0.0588, "IntDiv": 0.8558,
        "IntDiv2": 0.8498, "Filters": 0.997, "Novelty": 0.6949,
    },
    "JTN-VAE": {
        "Valid": 1.0, "Unique@1k": 1.0, "Unique@10k": 0.9996, "FCD/Test": 0.3954,
        "FCD/TestSF": 0.9382, "SNN/Test": 0.5477, "SNN/TestSF": 0.5194, "Frag/Test": 0.9965,
        "Frag/TestSF": 0.9947, "Scaf/Test": 0.8964, "Scaf/TestSF": 0.1009, "IntDiv": 0.8551,
        "IntDiv2": 0.8493, "Filters": 0.976, "Novelty": 0.9143,
    },
}  # fmt: skip
"""Means of the MOSES README's results table (molecularsets/moses, master), as published."""


def machine(threads: int) -> str:
    cpu = cpu_model()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {threads} torch threads, {gpu}, torch {torch.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=None, help="run folder (default runs/moses-<tokenizer>)")
    p.add_argument("--tokenizer", choices=("smiles", "selfies"), default="smiles")
    p.add_argument("--max-examples", type=int, default=3_750_000, help="CPU budget")
    p.add_argument(
        "--decay-from", type=int, default=None,
        help="CPU budget: the learning rate is constant until this many molecules, then "
        "decays along a half cosine to 0 at --max-examples (default for GRUs 2,750,112: "
        "the evaluation point where the recorded run, trained at a constant rate until "
        "then, started it; for LSTMs 60%% of the budget)",
    )  # fmt: skip
    p.add_argument(
        "--networks", choices=("gru", "lstm"), default="gru",
        help="CPU budget: GRUs (the recorded run) or LSTMs with a 2-layer decoder "
        "(CPU_LSTM; run folder, results and figures named <tokenizer>-lstm)",
    )  # fmt: skip
    p.add_argument(
        "--train-size", type=int, default=None,
        help="train on this many MOSES molecules drawn at random (SELFIES encoding costs "
        "0.5 ms a molecule, 13 min for all of them)",
    )  # fmt: skip
    p.add_argument("--full", action="store_true", help="the MOSES VAE schedule (a GPU)")
    p.add_argument("--evaluate-only", action="store_true", help="use the run as it is")
    p.add_argument("--samples", type=int, default=30_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None, help="where moses/ is (else $AEVB_DATA_DIR)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.data_dir:
        os.environ["AEVB_DATA_DIR"] = args.data_dir

    from aevb.cli import main as aevb
    from aevb.molecules import load_moses, moses_metrics, moses_references
    from aevb.molecules.design import run_optimization
    from aevb.molecules.draw import draw_grid
    from aevb.molecules.model import (
        interpolate,
        load_molecule_model,
        reconstruction_accuracy,
        sample_smiles,
    )
    from aevb.runfolder import RunFolder

    name = args.tokenizer + ("-lstm" if args.networks == "lstm" else "")
    if args.decay_from is None:
        args.decay_from = 2_750_112 if args.networks == "gru" else int(0.6 * args.max_examples)
    run = Path(args.run or REPO / "runs" / f"moses-{name}")
    record: dict = {"machine": machine(args.threads), "run": str(run), "wall_s": {}}
    t0 = time.perf_counter()
    if not args.evaluate_only:
        decay = ["--lr-schedule", "cosine", "--lr-decay-start", str(args.decay_from)]
        if RunFolder(run).has_checkpoint():
            budget = (
                []
                if args.full
                else ["--max-examples", str(args.max_examples), *decay, *CHECKPOINT_EVERY]
            )
            cmd = ["molecules", "train", "--out", str(run), "--resume", *budget]
        else:
            settings = (
                FULL
                if args.full
                else [
                    *(CPU if args.networks == "gru" else CPU_LSTM),
                    *("--max-examples", str(args.max_examples), *decay),
                    *CHECKPOINT_EVERY,
                ]
            )
            cmd = ["molecules", "train", "moses", "--out", str(run)]
            cmd += ["--tokenizer", args.tokenizer, *settings]
            if args.train_size:
                cmd += ["--train-size", str(args.train_size)]
        cmd += ["--threads", str(args.threads), "--device", args.device, "--quiet"]
        print("aevb " + " ".join(cmd), flush=True)
        if aevb(cmd) != 0:
            raise SystemExit("training failed")
    record["wall_s"]["train_call"] = time.perf_counter() - t0
    history = RunFolder(run).history()
    record["training"] = {
        "examples": history[-1]["examples"],
        "epochs": history[-1]["epoch"],
        "train_seconds": history[-1]["train_seconds"],
        "molecules_per_s": history[-1]["examples"] / history[-1]["train_seconds"],
        "last": history[-1],
        "command": json.loads((run / "molecules.json").read_text()) | {"vocabulary": "..."},
        "train_config": RunFolder(run).meta()["train_config"],
    }
    model = load_molecule_model(run, device=args.device)
    t = time.perf_counter()
    generated = sample_smiles(model, args.samples, seed=0)
    record["wall_s"]["sample"] = time.perf_counter() - t
    record["sampling_molecules_per_s"] = args.samples / record["wall_s"]["sample"]
    from aevb.apps.molecules_cli import write_smiles_csv

    write_smiles_csv(run / f"generated-{args.samples}.csv", generated)  # for re-scoring
    t = time.perf_counter()
    refs = moses_references(quiet=False)
    record["wall_s"]["references"] = time.perf_counter() - t
    t = time.perf_counter()
    table = moses_metrics(generated, refs, quiet=False, device=args.device)
    record["wall_s"]["metrics"] = time.perf_counter() - t
    record["metrics"] = table
    test = load_moses(splits=("test",)).test
    pick = np.random.default_rng(0).permutation(len(test))[:1000]
    rec = reconstruction_accuracy(model, [test[i] for i in pick])
    record["reconstruction"] = {"n": rec.n, "accuracy": rec.accuracy, "valid": rec.valid}
    ends = [test[i] for i in pick[:2]]  # two random test molecules (MOSES has no stereo)
    line = interpolate(model, *ends, steps=8)
    FIGURES.mkdir(parents=True, exist_ok=True)
    draw_grid(line, FIGURES / f"molecules-interpolation-{name}.png",
              legends=[f"t = {i / 7:.2f}" for i in range(8)])  # fmt: skip
    record["interpolation"] = {"ends": ends, "path": line}
    train = load_moses(splits=("train",)).train
    record["design"] = {}
    for prop in ("qed", "plogp"):
        t = time.perf_counter()
        out = RESULTS / f"molecules-design-{name}-{prop}"
        found = run_optimization(model, train, prop, out=out)
        (out / "proposals.csv").unlink()  # large; results.json and top.png are kept
        top = out / "top.png"
        if top.exists():
            top.replace(FIGURES / f"molecules-top-{prop}-{name}.png")
        record["design"][prop] = dataclasses.asdict(found) | {"seconds": time.perf_counter() - t}
    record["wall_s"]["total"] = time.perf_counter() - t0
    path = RESULTS / f"molecules-{name}.json"
    path.write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(f"\n| metric | aevb ({name}) | " + " | ".join(PUBLISHED) + " |")
    print("| --- | ---: |" + " ---: |" * len(PUBLISHED))
    for k, v in table.items():
        pub = " | ".join(f"{PUBLISHED[m].get(k, float('nan')):.4f}" for m in PUBLISHED)
        print(f"| {k} | {v:.4f} | {pub} |")
    print(f"\nreconstruction accuracy {rec.accuracy:.3f}; wrote {path}")


if __name__ == "__main__":
    main()
