"""Model cards: every model folder a run saves holds README.md, generated from the run's
record, and ``aevb info`` prints it (rendered on the fly for folders saved without one)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import aevb
from aevb.cli import main
from aevb.data import load_dataset
from aevb.modelcard import CARD_FILE, read_card
from aevb.run import train
from aevb.training import TrainConfig

from helpers import tiny_vae

FIXTURE_RUN = Path(__file__).parent / "fixtures" / "digits-run"


def test_a_run_writes_a_card_into_checkpoint_and_best(tmp_path, capsys):
    data = load_dataset("digits")
    model = tiny_vae(input_dim=data.dim, latent_dim=3, hidden=(16,), image_shape=(8, 8))
    config = TrainConfig(epochs=2, batch_size=50, optimizer="adam", lr=1e-3)
    result = train(model, data, config, tmp_path / "run", quiet=True)
    checkpoint = read_card(tmp_path / "run" / "checkpoint")
    best = read_card(tmp_path / "run" / "best")
    assert checkpoint is not None and best is not None
    meta = json.loads((tmp_path / "run" / "checkpoint" / "trainer.json").read_text())
    sha = meta["data_identity"]["splits"]["train"]["sha256"]
    last = result.history[-1]
    for text in (
        "# Model card: VAE on digits",
        f"aevb {aevb.__version__}",
        f"torch {torch.__version__}",
        "| train split | 1497 x 64, sha256 `" + sha[:16],
        "| input | 64 values (image 8 x 8) |",
        "| latent layers | 3 |",
        "| objective | elbo, estimator B |",
        "adam, step size 0.001, minibatch 50, seed 0",
        f"| trained on | {result.examples:,} examples (2 epochs) |",
        f"| test ELBO | {last['test_bound']:.2f} nats per example |",
        "## Intended use and limits",
        "not calibrated",
    ):
        assert text in checkpoint, text
    assert "| valid ELBO |" in best
    capsys.readouterr()
    assert main(["info", str(tmp_path / "run")]) == 0
    assert capsys.readouterr().out.strip() == best.strip()  # info reads best/ first


def test_info_renders_a_card_for_folders_saved_without_one(tmp_path, capsys):
    assert not (FIXTURE_RUN / "checkpoint" / CARD_FILE).exists()
    assert main(["info", str(FIXTURE_RUN / "checkpoint")]) == 0
    card = capsys.readouterr().out
    assert "| name | `digits` |" in card and "| trained on | 300 examples" in card
    aevb.save(tiny_vae(), tmp_path / "plain")
    assert main(["info", str(tmp_path / "plain")]) == 0
    card = capsys.readouterr().out
    assert "| input | 6 values |" in card and "Not recorded" in card
