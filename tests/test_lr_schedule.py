"""The learning-rate schedule: its closed forms, the rate each step takes, and what a
resumed run may change."""

import dataclasses
import json
import math
import shutil

import pytest
import torch

from aevb import io as aevb_io
from aevb.cli import main
from aevb.run import resume, train
from aevb.training import TrainConfig, Trainer, lr_factor
from test_training import config, params, toy_data

from helpers import tiny_vae


@pytest.mark.parametrize("final", [0.0, 0.25])
def test_lr_factor_follows_the_closed_forms(final):
    cosine = TrainConfig(lr_schedule="cosine", lr_decay_start=100, lr_final=final)
    linear = TrainConfig(lr_schedule="linear", lr_decay_start=100, lr_final=final)
    total = 500
    for c in (cosine, linear):
        assert lr_factor(c, 0, total) == lr_factor(c, 100, total) == 1.0  # before the decay
        assert lr_factor(c, 300, total) == pytest.approx((1 + final) / 2)  # half way
        assert lr_factor(c, 500, total) == pytest.approx(final)
        assert lr_factor(c, 900, total) == pytest.approx(final)  # past the budget: stays
    # a quarter of the way: cos(pi/4) for the cosine, 3/4 for the line
    assert lr_factor(cosine, 200, total) == pytest.approx(
        final + (1 - final) * (1 + math.cos(math.pi / 4)) / 2
    )
    assert lr_factor(linear, 200, total) == pytest.approx(final + (1 - final) * 0.75)
    assert lr_factor(TrainConfig(), 499, total) == 1.0  # constant


def test_each_step_takes_the_scheduled_rate(tmp_path):
    c = config(lr_schedule="linear", lr_decay_start=320, lr_final=0.2, max_examples=960)
    trainer = Trainer(tiny_vae(), toy_data(), c, tmp_path / "run", quiet=True)
    seen: list[tuple[int, float]] = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        seen.append((trainer.state.examples, trainer.optimizer.param_groups[0]["lr"]))
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    trainer.fit()
    assert len(seen) == trainer.state.step and seen[0][0] == 0 and seen[-1][0] > 900
    for examples, lr in seen:
        expected = 0.01 if examples <= 320 else 0.01 * (1 - 0.8 * (examples - 320) / 640)
        assert lr == pytest.approx(expected, rel=1e-12), examples
    assert seen[-1][1] < 0.0025  # the last step is near the final rate, 0.002
    rows = trainer.state.history  # each evaluation records the rate from there on
    assert [r["lr"] for r in rows] == pytest.approx(
        [
            0.01 * (1 - 0.8 * (r["examples"] - 320) / 640) if r["examples"] > 320 else 0.01
            for r in rows
        ]
    )
    assert rows[-1]["lr"] == pytest.approx(0.002)


def test_a_resumed_run_may_start_decaying_where_it_stopped(tmp_path):
    """Constant for 400 examples (two epochs: no minibatch cut at the end), then resumed
    with a cosine decay from there: the same parameters, bit for bit, as a run that had
    that schedule from the start."""
    data, schedule = toy_data(), {"lr_schedule": "cosine", "lr_decay_start": 400}
    train(tiny_vae(seed=2), data, config(max_examples=800, **schedule), tmp_path / "a", quiet=True)
    train(tiny_vae(seed=2), data, config(max_examples=400), tmp_path / "b", quiet=True)
    resume(tmp_path / "b", data, max_examples=800, changes=schedule, quiet=True)
    a = aevb_io.load_model(tmp_path / "a" / "checkpoint")
    b = aevb_io.load_model(tmp_path / "b" / "checkpoint")
    for k, v in params(a).items():
        assert torch.equal(v, params(b)[k]), k
    stored = aevb_io.read_json(tmp_path / "b" / "checkpoint" / "trainer.json")["train_config"]
    assert stored["lr_schedule"] == "cosine" and stored["lr_decay_start"] == 400


def test_a_schedule_change_that_rewrites_steps_taken_is_refused(tmp_path):
    data = toy_data()
    train(tiny_vae(), data, config(max_examples=640), tmp_path / "r", quiet=True)
    with pytest.raises(ValueError, match=r"640 examples at a constant rate.*decay-start >= 640"):
        resume(
            tmp_path / "r",
            data,
            max_examples=1280,
            changes={"lr_decay_start": 0, "lr_schedule": "linear"},
            quiet=True,
        )
    before = aevb_io.read_json(tmp_path / "r" / "checkpoint" / "trainer.json")
    assert before["state"]["examples"] == 640  # nothing was trained
    decaying = config(max_examples=640, lr_schedule="cosine", lr_decay_start=320)
    train(tiny_vae(), data, decaying, tmp_path / "d", quiet=True)
    with pytest.raises(ValueError, match=r"^--lr-final: the run's rate has decayed since 320"):
        resume(tmp_path / "d", data, max_examples=1280, changes={"lr_final": 0.5}, quiet=True)
    with pytest.raises(ValueError, match=r"\[.lr.\]: a resumed run keeps these"):
        TrainConfig().resumed(0, lr=0.1)


def test_a_decay_not_yet_started_may_be_called_off():
    """Back to a constant rate before the decay starts: its start and end go with it."""
    planned = TrainConfig(max_examples=5000, lr_schedule="cosine", lr_decay_start=1000)
    assert planned.resumed(500, lr_schedule="constant") == dataclasses.replace(
        planned, lr_schedule="constant", lr_decay_start=0
    )
    with pytest.raises(ValueError, match=r"^--lr-schedule: the run's rate has decayed since"):
        planned.resumed(1500, lr_schedule="constant")


def test_extending_a_decaying_run_warns_that_the_rate_jumps(tmp_path):
    data = toy_data()
    c = config(max_examples=640, lr_schedule="cosine", lr_decay_start=0)
    train(tiny_vae(), data, c, tmp_path / "r", quiet=True)
    with pytest.warns(RuntimeWarning, match=r"learning rate goes on at 0\.005, not 0 "):
        resume(tmp_path / "r", data, max_examples=1280, quiet=True)


def test_the_schedule_options_of_train(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--eval-every", "300"]
    argv = ["train", *common, "--max-examples", "600", "--out", str(out), "--quiet"]
    assert (
        main([*argv, "--no-pictures", "--lr-schedule", "cosine", "--lr-decay-start", "0.1ep"]) == 0
    )
    stored = aevb_io.read_json(out / "checkpoint" / "trainer.json")["train_config"]
    meta = aevb_io.read_json(out / "checkpoint" / "trainer.json")
    n_train = meta["data_identity"]["splits"]["train"]["shape"][0]
    assert stored["lr_schedule"] == "cosine" and stored["lr_final"] == 0.0
    assert stored["lr_decay_start"] == round(0.1 * n_train)
    assert "| lr 0 |" in capsys.readouterr().err  # a decaying run logs its rate: 0 at the end
    resumed = ["train", "--out", str(out), "--resume", "--max-examples", "900", "--quiet"]
    assert main([*resumed, "--lr-decay-start", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the data's line
    assert err.startswith("aevb: error: --lr-decay-start: the run's rate has decayed since")
    # left out on --resume, the run's schedule is kept (not reset to the defaults)
    assert main([*resumed, "--no-pictures"]) == 0
    stored = aevb_io.read_json(out / "checkpoint" / "trainer.json")["train_config"]
    assert stored["lr_schedule"] == "cosine" and stored["max_examples"] == 900


def test_decay_settings_without_a_decaying_schedule_are_refused(tmp_path, capsys):
    """--lr-decay-start or --lr-final alone would leave the rate constant: refused, not
    ignored, for a new run and a resumed one (which learns it also when finished)."""
    with pytest.raises(ValueError, match=r"lr_decay_start=300: the rate is constant"):
        TrainConfig(lr_decay_start=300)
    with pytest.raises(ValueError, match=r"lr_final=0.1: the rate is constant"):
        TrainConfig(lr_final=0.1)
    out = str(tmp_path / "run")
    first = ["train", "--data", "digits", "--hidden", "8", "--latent-dim", "2", "--out", out]
    assert main([*first, "--max-examples", "300", "--lr-decay-start", "100", "--quiet"]) == 2
    assert "the rate is constant" in capsys.readouterr().err
    assert main([*first, "--max-examples", "300", "--quiet", "--no-pictures"]) == 0
    capsys.readouterr()
    finished = [*first, "--resume", "--quiet", "--no-pictures"]
    decay = ["--lr-schedule", "cosine", "--lr-decay-start", "5"]
    assert main([*finished, *decay]) == 2  # the run has no budget left, and is refused
    assert "decay from 5 would change steps already taken" in capsys.readouterr().err
    assert main([*finished, "--conditional"]) == 2
    assert "--conditional (the run's model is not conditional)" in capsys.readouterr().err
    card = (tmp_path / "run" / "best" / "README.md").read_text()
    assert "decay" not in card
    decaying = [*first[:-2], "--out", str(tmp_path / "d"), "--max-examples", "300", *decay]
    assert main([*decaying, "--quiet", "--no-pictures"]) == 0
    card = (tmp_path / "d" / "best" / "README.md").read_text()
    assert "step size 0.02 (cosine decay from 5 examples to 0 of it at the end)" in card


def test_a_resumed_run_may_change_how_it_is_watched(tmp_path):
    """Evaluation spacing (like patience, the non-finite policy and compilation) touches
    no step already taken: a resumed run takes the new value from its next evaluation."""
    data = toy_data()
    train(tiny_vae(), data, config(max_examples=640, eval_every=320), tmp_path / "r", quiet=True)
    result = resume(
        tmp_path / "r", data, max_examples=1280, changes={"eval_every": 160}, quiet=True
    )
    after = [r["examples"] for r in result.history if r["examples"] > 640]
    assert len(after) >= 3 and after[-1] == 1280  # every 160 after the next one (at 960+)
    stored = aevb_io.read_json(tmp_path / "r" / "checkpoint" / "trainer.json")["train_config"]
    assert stored["eval_every"] == 160 and stored["lr"] == 0.01


def _as_if_saved_on_cuda(checkpoint, recorded=True):
    """Rewrite a CPU checkpoint's generator state as a CUDA run writes it (16 bytes: seed
    and offset of its Philox generator), recorded as such in trainer.json."""
    path = checkpoint / "trainer.safetensors"
    tensors = aevb_io.load_tensors(path)
    tensors["rng"] = torch.arange(16, dtype=torch.uint8)
    aevb_io.save_tensors(tensors, path)
    meta = json.loads((checkpoint / "trainer.json").read_text())
    if recorded:
        meta["rng_device"] = "cuda"
    else:  # as written before the device was recorded: told by the state's size
        del meta["rng_device"]
    (checkpoint / "trainer.json").write_text(json.dumps(meta))


def test_a_run_may_move_to_another_device_type(tmp_path):
    """A checkpoint written on another device type (a GPU run finished on a CPU) resumes
    with a warning: its random numbers go on from a generator seeded by the stored state,
    the same for every resume of that checkpoint. A run on the device it was saved on
    records its device type and resumes bit for bit (the other tests)."""
    data = toy_data()
    train(tiny_vae(seed=3), data, config(max_examples=400), tmp_path / "a", quiet=True)
    meta = aevb_io.read_json(tmp_path / "a" / "checkpoint" / "trainer.json")
    assert meta["rng_device"] == "cpu"
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    _as_if_saved_on_cuda(tmp_path / "a" / "checkpoint")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    _as_if_saved_on_cuda(tmp_path / "c" / "checkpoint", recorded=False)
    with pytest.warns(RuntimeWarning, match=r"moves from cuda to cpu"):
        resume(tmp_path / "c", data, max_examples=800, quiet=True)
    for run in ("a", "b"):
        with pytest.warns(RuntimeWarning, match=r"moves from cuda to cpu: .* no longer the same"):
            resume(tmp_path / run, data, max_examples=800, changes={"device": "cpu"}, quiet=True)
    a = aevb_io.load_model(tmp_path / "a" / "checkpoint")
    b = aevb_io.load_model(tmp_path / "b" / "checkpoint")
    for k, v in params(a).items():
        assert torch.equal(v, params(b)[k]), k
    assert aevb_io.read_json(tmp_path / "a" / "checkpoint" / "trainer.json")["rng_device"] == "cpu"
