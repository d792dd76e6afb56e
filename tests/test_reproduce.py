"""The reproduction commands run end to end on tiny budgets (the real runs are in docs/)."""

import csv
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aevb.cli import main
from aevb.reproduce import figure2


def test_figure2_on_frey_face_with_a_tiny_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(figure2, "LATENTS", {"frey_face": (2, 5)})
    paths = figure2.run(tmp_path, budget=400, jobs=1, datasets=("frey_face",))
    rows = list(csv.DictReader(open(paths["csv"])))
    curves = {(r["latent_dim"], r["algorithm"]) for r in rows}
    assert curves == {("2", "aevb"), ("2", "wake-sleep"), ("5", "aevb"), ("5", "wake-sleep")}
    assert paths["png"].stat().st_size > 10_000
    table = paths["md"].read_text()
    assert "| Frey Face | 2 |" in table and "step size for Frey Face, AEVB" in table
    # runs resume: a second call with the same budget trains nothing new
    again = figure2.run(tmp_path, budget=400, jobs=1, datasets=("frey_face",))
    assert again["csv"].read_text() == paths["csv"].read_text()


def test_reproduce_figures_4_and_5_from_the_cli(tmp_path, capsys):
    assert (
        main(["reproduce", "figure5", "--budget", "300", "--jobs", "1", "--out", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "figure 4:" in out and "figure 5:" in out
    assert (tmp_path / "figure4.png").is_file() and (tmp_path / "figure5.png").is_file()


def test_figure3_curves_with_a_tiny_budget(tmp_path, monkeypatch):
    from aevb.reproduce import figure3

    monkeypatch.setattr(figure3, "TRAIN_SIZES", (200,))
    monkeypatch.setattr(figure3, "evaluation_points", lambda budget: [budget // 2, budget])
    paths = figure3.run(tmp_path, budget=400, n_eval=5, jobs=1)
    rows = list(csv.DictReader(open(paths["csv"])))
    assert {r["algorithm"] for r in rows} == {"aevb", "wake-sleep", "mcem"}
    assert all(float(r["test_log_marginal"]) < 0 for r in rows)
    assert "| 200 | MCEM |" in paths["md"].read_text()


def test_evaluation_points_are_log_spaced():
    from aevb.reproduce.figure3 import evaluation_points

    assert evaluation_points(1_000_000) == [
        10_000,
        21_544,
        46_416,
        100_000,
        215_443,
        464_159,
        1_000_000,
    ]


def test_every_figure_is_a_cli_choice(capsys):
    import pytest

    for figure in ("figure2", "figure3", "figure4", "figure5", "all"):
        with pytest.raises(SystemExit) as e:
            main(["reproduce", figure, "--help"])
        assert e.value.code == 0


def test_budget_per_dataset_and_its_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:  # checked while the command line is parsed
        main(["reproduce", "figure2", "--budget", "lots", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "--budget: expected an integer >= 1, got 'lots'" in capsys.readouterr().err
    from aevb.reproduce.runs import budget_for

    assert budget_for({"frey_face": 5}, "frey_face", 9) == 5
    assert budget_for({"frey_face": 5}, "binarized_mnist", 9) == 9
    assert budget_for(7, "binarized_mnist", 9) == 7


def test_likelihood_table_trains_selects_scores_and_resumes(tmp_path):
    """A tiny budget of the VAE row end to end: result.json, the table, and a rerun that
    reuses the result instead of training again."""
    from aevb.reproduce import likelihood

    out = tmp_path / "lt"
    args = ["reproduce", "likelihood-table", "--out", str(out), "--rows", "vae", "--epochs",
            "0.004", "--k", "20", "--eval-examples", "30", "--jobs", "1", "--device", "cpu",
            "--doc", str(tmp_path / "doc.md")]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "runs" / "vae-0.004ep" / "result.json").read_text())
    assert result["test_examples"] == 30 and result["k"] == 20 and result["epochs"] == 0.004
    assert math.isfinite(result["nll"]) and result["nll"] > 0 and result["stderr"] > 0
    table = (tmp_path / "doc.md").read_text()
    assert f"{result['nll']:.2f} ± {result['stderr']:.2f}" in table
    assert table.count("not run") == len(likelihood.ROWS) - 1
    assert "--rows vae" in table and "88.71" in table and "83.19" in table
    mtime = (out / "runs" / "vae-0.004ep" / "result.json").stat().st_mtime_ns
    assert main(args) == 0  # same budget: nothing retrained or re-evaluated
    assert (out / "runs" / "vae-0.004ep" / "result.json").stat().st_mtime_ns == mtime
    # a result.json written when training examples were called "samples": reused, same table
    assert result["examples_seen"] > 0 and "(best at " in table
    renamed = {"examples_seen": "samples", "selected_at_examples": "selected_at_samples"}
    old = {renamed.get(k, k): v for k, v in result.items()}
    (out / "runs" / "vae-0.004ep" / "result.json").write_text(json.dumps(old))
    mtime = (out / "runs" / "vae-0.004ep" / "result.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "runs" / "vae-0.004ep" / "result.json").stat().st_mtime_ns == mtime
    assert (tmp_path / "doc.md").read_text() == table
    with pytest.raises(ValueError, match="expected one of"):
        likelihood.run(out, rows=["nope"])
    # the row's recipe changed since the run was made: refused, not reported as the new row
    changed = dataclasses.replace(
        likelihood.ROWS[0], model={**likelihood.ROWS[0].model, "activation": "gated"}
    )
    with pytest.raises(ValueError, match=r"trained with model.activation='tanh'.*'gated'"):
        likelihood.check_row_run(changed, out / "runs" / "vae-0.004ep")
    likelihood.check_row_run(likelihood.ROWS[0], out / "runs" / "vae-0.004ep")  # unchanged


WORKER_SCRIPT = """
import os, sys, time
from aevb.reproduce.runs import worker_pool
if __name__ == "__main__":
    with worker_pool(1) as pool:
        print(pool.submit(os.getpid).result(), flush=True)
        pool.submit(time.sleep, 120)
        time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_reproduction_workers_end_when_the_parent_is_killed(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(WORKER_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        os.kill(worker, 0)  # alive
    finally:
        parent.kill()
        parent.wait()
    for _ in range(100):  # the kernel signals the worker when its parent dies
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the worker outlived its parent")


STOPPED_WORKER_SCRIPT = """
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from aevb.reproduce.runs import prefixed_call, worker_pool
from aevb.training import TrainingInterrupted

def stopped():
    raise TrainingInterrupted(15, 10, Path("run/checkpoint"))

if __name__ == "__main__":
    with worker_pool(1) as pool:
        try:
            pool.submit(prefixed_call, "run", stopped, ()).result()
        except BrokenProcessPool:
            print("the worker ended")
        except TrainingInterrupted:
            print("the worker sent it back and went on")
"""


def test_a_worker_whose_run_a_signal_stopped_ends(tmp_path):
    """A signal stops a worker's run after a checkpoint (TrainingInterrupted): the worker
    ends there (its parent died, or Ctrl-C reached them all) instead of sending it back and
    taking the next run; in the calling process the exception goes on up."""
    from aevb.reproduce.runs import prefixed_call
    from aevb.training import TrainingInterrupted

    script = tmp_path / "stopped.py"
    script.write_text(STOPPED_WORKER_SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.stdout.strip() == "the worker ended", proc.stderr

    def stopped():
        raise TrainingInterrupted(15, 10, Path("run/checkpoint"))

    with pytest.raises(TrainingInterrupted):
        prefixed_call("run", stopped, ())


@pytest.mark.parametrize(
    "extra",
    [["--epochs", "vae=2", "3"], ["--full", "--epochs", "3"], ["--epochs", "vae=x"]],
)
def test_likelihood_table_budget_options_are_checked(extra, tmp_path, capsys):
    try:
        status = main(["reproduce", "likelihood-table", "--out", str(tmp_path), *extra])
    except SystemExit as e:  # values are checked while the command line is parsed
        status = e.code
    assert status == 2
    assert "--epochs" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_selected_checkpoint_is_the_first_best_validation_bound():
    from aevb.reproduce.likelihood import selected_examples

    history = [
        {"examples": 10, "valid_bound": -5.0},
        {"examples": 20, "valid_bound": -3.0},
        {"examples": 30, "valid_bound": -3.0},
        {"examples": 40, "valid_bound": float("nan")},
        {"examples": 50, "valid_bound": -4.0},
        {"examples": 60, "valid_bound": 354.0},  # impossible on binary data: never selected
    ]
    assert selected_examples({"history": history}) == 20
    assert selected_examples({"history": history, "best_examples": 50}) == 50  # recorded
    assert selected_examples({"history": [{"examples": 1, "train_bound": -1.0}]}) is None
