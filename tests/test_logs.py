"""Logs a person can read: plain progress lines in log files, one meaning of speed, budgets
met exactly, a finished run that says so, reproduction lines named by their run."""

import io
import json

import numpy as np
import pytest

from aevb import progress
from aevb.cli import main
from aevb.data import Dataset, load
from aevb.progress import Progress
from aevb.run import train
from aevb.training import TrainConfig

from helpers import tiny_vae


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def toy_data(n=300, d=6, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = (rng.random((n, d)) < 0.5).astype(np.float32)
    return Dataset(
        name="toy", train=x[:200], valid=x[200:250], test=x[250:], likelihood="bernoulli"
    )


def test_progress_in_a_log_file_is_a_plain_line_every_interval():
    out, clock = io.StringIO(), FakeClock()
    bar = Progress(1000, desc="train", file=out, interval=30, clock=clock)
    bar.update(100)
    clock.now = 29.0
    bar.update(100)
    assert out.getvalue() == ""  # less than the interval since the start
    clock.now = 30.0
    bar.set_status("bound -3.21")
    bar.update(100)
    assert out.getvalue() == (
        "train: 300/1,000 examples (30%), 30s elapsed, about 1m10s left; bound -3.21\n"
    )
    bar.write("examples 300 | epoch 1.50 | train -3.21 nats")  # a log line restarts the wait
    clock.now = 59.0
    bar.update(100)
    assert out.getvalue().count("\n") == 2
    clock.now = 90.0
    bar.update(600)
    bar.close()
    last = out.getvalue().splitlines()[-1]
    assert last == "train: 1,000/1,000 examples (100%), 1m30s elapsed; bound -3.21"
    assert "\r" not in out.getvalue()


def test_progress_on_a_terminal_is_a_bar_showing_only_the_callers_speed():
    out = Terminal()
    bar = Progress(1000, desc="train", file=out)
    assert bar.mode == "bar"
    bar.set_status("bound -3.21, 1,234 training examples/s")
    bar.update(500)
    bar.close()
    text = out.getvalue()
    assert "\r" in text and "50%" in text and "1,234 training examples/s" in text
    assert text.count("examples/s") == text.count("training examples/s")  # no tqdm rate


def test_quiet_progress_prints_nothing():
    out = Terminal()
    bar = Progress(10, desc="train", file=out, quiet=True, interval=0)
    bar.update(10)
    bar.close()
    assert bar.mode == "off" and out.getvalue() == ""


def test_training_into_a_log_file_writes_plain_lines_and_meets_the_budget_exactly(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(progress, "INTERVAL", 0.0)  # a progress line at every minibatch
    config = TrainConfig(optimizer="adam", lr=0.01, batch_size=32, max_examples=1000, seed=3)
    result = train(tiny_vae(), toy_data(), config, tmp_path / "run")
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    bars = [line for line in lines if line.startswith("train: ")]
    # 1000 = 31 minibatches of 32 and a last one cut to 8: the budget, exactly
    assert bars[-1].startswith("train: 1,000/1,000 examples (100%)")
    assert result.examples == 1000 == result.history[-1]["examples"]
    assert "training examples/s" in bars[-1]  # the status: the same speed as below
    logs = [line for line in lines if line.startswith("examples ")]
    assert len(logs) == len(result.history) and logs[-1].endswith(" training examples/s")
    last = result.history[-1]
    assert result.images_per_second == pytest.approx(last["examples"] / last["train_seconds"])
    speed = float(logs[-1].split("|")[-1].split()[0].replace(",", ""))
    assert speed == round(result.images_per_second)


def cli_run(tmp_path, *extra):
    args = ["train", "--data", "digits", "--out", str(tmp_path / "run"), "--latent-dim", "2"]
    return main([*args, "--hidden", "8", "--quiet", "--no-pictures", "--threads", "1", *extra])


def test_resume_of_a_finished_run_says_so_and_how_to_extend_it(tmp_path, capsys):
    assert cli_run(tmp_path, "--max-examples", "250", "--eval-every", "100") == 0
    trainer_json = tmp_path / "run" / "checkpoint" / "trainer.json"
    before = trainer_json.read_bytes()
    capsys.readouterr()
    assert cli_run(tmp_path, "--resume") == 0
    out = capsys.readouterr().out
    assert "the run is finished: 250 training examples" in out and "budget of 250" in out
    epochs = 250 / len(load("digits").train)
    assert f"--epochs E, E > {epochs:.4g}, or --max-examples N, N > 250" in out
    assert trainer_json.read_bytes() == before  # nothing trained
    assert cli_run(tmp_path, "--resume", "--max-examples", "200") == 0
    assert "the budget given is 200" in capsys.readouterr().out
    assert cli_run(tmp_path, "--resume", "--max-examples", "330") == 0
    state = json.loads(trainer_json.read_text())["state"]
    assert state["examples"] == 330  # extended, to the new budget exactly


def test_evaluate_progress_in_a_log_file_and_quiet(tmp_path, capsys, monkeypatch):
    assert cli_run(tmp_path, "--max-examples", "200") == 0
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    evaluate = ["evaluate", str(tmp_path / "run"), "-k", "5", "--max-examples", "40"]
    capsys.readouterr()
    assert main([*evaluate, "--batch-size", "10"]) == 0
    err = capsys.readouterr().err
    assert "log p(x), k=5: 40/40 examples (100%)" in err and "\r" not in err
    assert main([*evaluate, "--batch-size", "10", "--quiet"]) == 0
    assert "log p(x)" not in capsys.readouterr().err


def test_prefixed_output_names_every_line(capsys):
    from aevb.reproduce.runs import prefixed_output

    with prefixed_output("frey_face-nz2"):
        print("examples 100 | train -1.00 nats", flush=True)
        import sys

        sys.stderr.write("half a ")
        sys.stderr.write("line\nand a last one without newline")
        sys.stderr.write("\nfile.py:1: RuntimeWarning: a notice\n  warn(...)\n")
    captured = capsys.readouterr()
    assert captured.out == "[frey_face-nz2] examples 100 | train -1.00 nats\n"
    err = captured.err.splitlines()
    assert err[0] == "[frey_face-nz2] half a line"
    assert all(line.startswith("[frey_face-nz2] ") for line in err)
    assert err[1:] == [
        "[frey_face-nz2] and a last one without newline",
        "[frey_face-nz2] file.py:1: RuntimeWarning: a notice",
        "[frey_face-nz2]   warn(...)",
    ]


def test_reproduction_runs_prefix_their_lines_with_the_run_name(tmp_path, capsys):
    from aevb.reproduce.runs import RunSpec, run_all

    spec = RunSpec("frey_face", 2, 20, "aevb", 0.02, budget=300, eval_every=100)
    run_all([spec], tmp_path, jobs=1)
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) >= 3  # one line per evaluation
    assert all(line.startswith(f"[{spec.name}] ") for line in err), err


def test_resume_of_an_early_stopped_run_says_so(tmp_path, capsys):
    stop = ["--max-examples", "30000", "--eval-every", "300", "--patience", "1"]
    assert cli_run(tmp_path, *stop, "--lr", "0.5", "--optimizer", "adam") == 0
    state = json.loads((tmp_path / "run" / "checkpoint" / "trainer.json").read_text())["state"]
    assert state["stopped_early"] and state["examples"] < 30000
    capsys.readouterr()
    assert cli_run(tmp_path, "--resume") == 0
    out = capsys.readouterr().out
    assert f"the run stopped early at {state['examples']:,} training examples" in out
    assert f"--max-examples N, N > {state['examples']}" in out
    assert "or --patience P, P > 1" in out
    # more patience trains on within the budget, until that runs out too (or the budget)
    assert cli_run(tmp_path, "--resume", "--patience", "3") == 0
    meta = json.loads((tmp_path / "run" / "checkpoint" / "trainer.json").read_text())
    after = meta["state"]
    assert after["examples"] > state["examples"] and meta["train_config"]["patience"] == 3
    if after["stopped_early"]:
        assert after["evals_since_best"] == 3
    else:
        assert after["examples"] == 30000
