"""Run folders: one writer at a time, resume only on the run's data, config and weights
that agree, and no leftovers of a killed writer."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from aevb import io as aevb_io
from aevb import runlock
from aevb.cli import main
from aevb.config import from_dict
from aevb.data import Dataset, conditioned, data_identity, identity_differences
from aevb.diagnose import posterior_collapse
from aevb.run import resume, train, train_or_resume
from aevb.runfolder import RunFolder
from aevb.training import TrainConfig, TrainingError

from helpers import tiny_vae

# fmt: off
TINY = ["--hidden", "8", "--latent-dim", "2", "--optimizer", "adam", "--lr", "0.01",
        "--batch-size", "32", "--eval-every", "96", "--quiet", "--no-pictures"]
# fmt: on


def binary_npy(path: Path, rows: int, seed: int = 0) -> Path:
    """``rows`` binary rows of 6 values (the default split keeps 80% for training)."""
    rng = np.random.default_rng(seed)
    np.save(path, (rng.random((rows, 6)) < 0.3).astype(np.float32))
    return path


def toy(rows: int = 120, seed: int = 0, valid: bool = True) -> Dataset:
    x = (np.random.default_rng(seed).random((rows + 40, 6)) < 0.3).astype(np.float32)
    return Dataset(
        name=f"toy{rows}-{seed}",
        train=x[:rows],
        valid=x[rows : rows + 20] if valid else None,
        test=x[rows + 20 :],
    )


def config(**kw) -> TrainConfig:
    base = dict(optimizer="adam", lr=0.01, batch_size=32, max_examples=192, eval_every=96)
    return TrainConfig(**{**base, **kw})


def lock_holder(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until its stdin is closed."""
    code = (
        "import sys\nfrom aevb import runlock\n"
        f"with runlock.hold({str(folder)!r}):\n"
        "    print('held', flush=True)\n    sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- one writer per run folder --------------------------------------------------------


def test_a_second_aevb_train_on_the_same_folder_fails_at_once_naming_the_first(tmp_path, capsys):
    data = ["--data", str(binary_npy(tmp_path / "x.npy", 300))]
    out = tmp_path / "run"
    log = tmp_path / "first.log"
    # the first run has a budget it will not finish before it is interrupted below
    with open(log, "w") as stderr:
        first = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aevb",
                "train",
                *data,
                "--out",
                str(out),
                *TINY,
                "--eval-every",
                "960",
                "--max-examples",
                "1000000000",
            ],  # fmt: skip
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stderr=stderr,
            # a shell's background job (a CI runner, say) starts with SIGINT ignored, and
            # Python then keeps it ignored: restore it so that the interruption below works
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint").is_dir():  # the first evaluation is written
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        holder = json.loads((out / runlock.LOCK_FILE).read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        for extra in ([], ["--overwrite"], ["--resume"]):
            capsys.readouterr()
            assert main(["train", *data, "--out", str(out), *TINY, *extra]) == 2
            err = capsys.readouterr().err
            assert "Traceback" not in err
            (line,) = [line for line in err.splitlines() if line.startswith("aevb: error:")]
            assert line.startswith(f"aevb: error: run folder {out} is in use by PID {first.pid} ")
            assert line.endswith("; wait for it or choose another --out")
            assert (out / "checkpoint" / "model.safetensors").is_file()  # not cleared
        assert first.poll() is None  # the first run goes on, undisturbed
    finally:
        first.send_signal(signal.SIGINT)
        try:
            rc = first.wait(timeout=120)
        except subprocess.TimeoutExpired:
            first.kill()  # never leave a training process behind
            first.wait()
            raise
    assert rc == 130, log.read_text()
    assert (out / runlock.LOCK_FILE).read_text() == ""  # released on the way out
    assert main(["train", *data, "--out", str(out), *TINY, "--max-examples", "96",
                 "--overwrite"]) == 0  # fmt: skip
    assert "taking over" not in capsys.readouterr().err


def test_overwrite_and_resume_never_touch_a_folder_another_process_holds(tmp_path):
    out = tmp_path / "run"
    train(tiny_vae(), toy(), config(), out, quiet=True)
    leftover = out / ".checkpoint.new.abcd1234"
    leftover.mkdir()
    holder = lock_holder(out)
    try:
        with pytest.raises(runlock.RunFolderInUse, match=f"in use by PID {holder.pid} "):
            train(tiny_vae(), toy(), config(), out, quiet=True, overwrite=True)
        with pytest.raises(runlock.RunFolderInUse, match=f"in use by PID {holder.pid} "):
            resume(out, toy(), max_examples=288, quiet=True)
        assert (out / "checkpoint").is_dir() and (out / "best").is_dir() and leftover.is_dir()
    finally:
        release(holder)
    resume(out, toy(), max_examples=288, quiet=True)  # free again: works, and tidies up
    assert not leftover.exists()


def test_under_torchrun_every_rank_stops_cleanly_when_the_folder_is_held(tmp_path):
    """Rank 0 alone locks (the ranks never lock each other out: tests/test_distributed.py);
    when it cannot, the other rank learns it and stops with its own one-line message."""
    data = ["--data", str(binary_npy(tmp_path / "x.npy", 300))]
    out = tmp_path / "run"
    holder = lock_holder(out)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                "2",
                "-m",
                "aevb",
                "train",
                *data,
                "--out",
                str(out),
                *TINY,
            ],  # fmt: skip
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        release(holder)
    assert proc.returncode != 0
    # the two ranks write to one stderr at the same time: their lines may interleave
    assert proc.stderr.count("aevb: error:") == 2 and not (out / "checkpoint").exists()
    assert f"aevb: error: run folder {out} is in use (rank 0 names the holder)" in proc.stderr
    assert f"aevb: error: run folder {out} is in use by PID {holder.pid} on host " in proc.stderr


def test_under_torchrun_a_resume_of_a_held_folder_stops_every_rank(tmp_path):
    """``--resume`` too: the other rank learns that rank 0 has no lock (it does not go on
    into training and hang in the first collective)."""
    data = ["--data", str(binary_npy(tmp_path / "x.npy", 300))]
    out = tmp_path / "run"
    assert main(["train", *data, "--out", str(out), "--max-examples", "96", *TINY]) == 0
    holder = lock_holder(out)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
             "2", "-m", "aevb", "train", "--out", str(out), "--resume", "--max-examples", "192",
             "--quiet"],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=240,
        )  # fmt: skip
    finally:
        release(holder)
    assert proc.returncode != 0
    assert proc.stderr.count("aevb: error:") == 2
    assert f"aevb: error: run folder {out} is in use (rank 0 names the holder)" in proc.stderr
    assert f"aevb: error: run folder {out} is in use by PID {holder.pid} on host " in proc.stderr


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_notice(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    pid = dead_pid()
    stale = {"pid": pid, "host": socket.gethostname(), "started": "2020-01-01 00:00:00 UTC"}
    (out / runlock.LOCK_FILE).write_text(json.dumps(stale))
    with pytest.warns(RuntimeWarning, match=f"taking over the lock of PID {pid} on host"):
        train(tiny_vae(), toy(), config(), out, quiet=True)
    assert (out / "checkpoint").is_dir() and (out / runlock.LOCK_FILE).read_text() == ""


def test_the_lock_is_reentrant_in_its_process_and_records_the_holder(tmp_path):
    with runlock.hold(tmp_path) as path, runlock.hold(tmp_path):
        holder = json.loads(path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from aevb import runlock\nrunlock.hold({str(tmp_path)!r}).__enter__()",
            ],  # fmt: skip
            capture_output=True,
            text=True,
        )
        assert other.returncode != 0 and f"in use by PID {os.getpid()}" in other.stderr
    assert path.read_text() == ""


def test_overwrite_removes_the_previous_runs_outputs(tmp_path):
    out = tmp_path / "run"
    train(tiny_vae(), toy(), config(), out, quiet=True)
    assert (out / "best").is_dir()
    # the new run has no validation split, hence no best/: the old one must not remain
    train(tiny_vae(seed=1), toy(valid=False), config(), out, quiet=True, overwrite=True)
    assert not (out / "best").exists()
    history = aevb_io.read_json(out / "checkpoint" / "trainer.json")["state"]["history"]
    assert all("valid_bound" not in row for row in history)
    assert "valid_bound" not in (out / "metrics.csv").read_text()


# ---- resume only on the run's data ----------------------------------------------------


def test_the_run_folder_records_the_data_it_was_trained_on(tmp_path):
    data = toy()
    train(tiny_vae(), data, config(), tmp_path / "run", quiet=True)
    stored = aevb_io.read_json(tmp_path / "run" / "checkpoint" / "trainer.json")
    identity = stored["data_identity"]
    assert identity["name"] == data.name and identity["scaling"] == "none"
    assert identity["splits"]["train"]["shape"] == [120, 6]
    assert set(identity["splits"]) == {"train", "valid", "test"}
    assert identity == data_identity(toy())  # the same arrays, the same identity
    changed = toy()
    changed.train[0, 0] = 1 - changed.train[0, 0]
    assert identity_differences(identity, data_identity(changed)) == [
        "train values differ (same shape 120 x 6)"
    ]


def test_resume_on_other_data_is_refused_and_with_new_data_reshuffles(tmp_path):
    out = tmp_path / "run"
    train(tiny_vae(), toy(120), config(), out, quiet=True)
    with pytest.raises(TrainingError, match=r"not the data the run .* \(train 160 x 6, the run's "):
        resume(out, toy(160, seed=1), max_examples=288, quiet=True)
    with pytest.raises(TrainingError, match=r"valid values differ .* or --new-data to continue"):
        resume(out, toy(120, seed=1), max_examples=288, quiet=True)
    with pytest.warns(RuntimeWarning, match="other data than the run's .* new shuffled order"):
        result = resume(out, toy(160, seed=1), max_examples=480, quiet=True, new_data=True)
    assert result.examples >= 480
    perm = aevb_io.load_tensors(out / "checkpoint" / "trainer.safetensors")["perm"]
    assert sorted(perm.tolist()) == list(range(160))  # an order of the new rows
    stored = aevb_io.read_json(out / "checkpoint" / "trainer.json")["data_identity"]
    assert stored == data_identity(toy(160, seed=1))  # the run now is on the new data
    resume(out, toy(160, seed=1), max_examples=576, quiet=True)  # and resumes on it


def test_resume_of_a_run_without_a_recorded_identity_warns_and_reshuffles_if_needed(tmp_path):
    out = tmp_path / "run"
    train(tiny_vae(), toy(120), config(max_examples=160), out, quiet=True)
    meta_path = out / "checkpoint" / "trainer.json"
    meta = aevb_io.read_json(meta_path)
    del meta["data_identity"]  # as written before identities were recorded
    meta_path.write_text(json.dumps(meta))
    # mid-epoch, a stored permutation of 120 rows cannot index 160 rows: a new order
    with pytest.warns(RuntimeWarning, match="cannot check that toy160-1 is the data"):
        result = resume(out, toy(160, seed=1), max_examples=320, quiet=True)
    assert result.examples >= 320


def test_the_cli_refuses_other_data_on_resume_unless_new_data_is_passed(tmp_path, capsys):
    out = str(tmp_path / "run")
    a, b = binary_npy(tmp_path / "a.npy", 200), binary_npy(tmp_path / "b.npy", 250, seed=1)
    assert main(["train", "--data", str(a), "--out", out, *TINY, "--max-examples", "96"]) == 0
    capsys.readouterr()
    more = ["--resume", "--max-examples", "192", "--quiet", "--no-pictures"]
    assert main(["train", "--data", str(b), "--out", out, *more]) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("aevb: error:")]
    assert line.startswith(f"aevb: error: --data {b}: not the data the run in {out} was trained")
    assert "(train 200 x 6, the run's 160 x 6; valid 25 x 6, the run's 20 x 6;" in line
    assert line.endswith(f"pass the run's data ({a}), or --new-data to continue on this data "
                         "in a new shuffled order")  # fmt: skip
    assert main(["train", "--data", str(b), "--out", out, *more, "--new-data"]) == 0
    assert "new shuffled order" in capsys.readouterr().err
    assert main(["train", "--out", out, *more[1:], "--new-data"]) == 2
    assert "--new-data: only with --resume" in capsys.readouterr().err


# ---- config.json and the weights agree ------------------------------------------------


def test_a_config_json_edited_after_the_weights_is_refused(tmp_path):
    aevb_io.save_model(tiny_vae(activation="tanh", gaussian_std=2.0), tmp_path / "m")
    cfg = tmp_path / "m" / "config.json"
    meta = json.loads(cfg.read_text())
    # formatting is no change, nor is an equal number written otherwise
    same = {**meta, "config": {**meta["config"], "gaussian_std": 2}}
    cfg.write_text(json.dumps(same, indent=4, sort_keys=True))
    assert aevb_io.load_model(tmp_path / "m").config.activation == "tanh"
    meta["config"]["activation"] = "relu"  # same layer sizes: only the hash can tell
    cfg.write_text(json.dumps(meta))
    with pytest.raises(aevb_io.CheckpointError) as info:
        aevb_io.load_model(tmp_path / "m")
    assert str(info.value) == (
        f"{cfg} was changed after the weights were saved (activation 'tanh' -> 'relu'); "
        "expected the config saved with them"
    )


def test_a_run_whose_checkpoint_config_was_edited_does_not_resume(tmp_path):
    out = tmp_path / "run"
    train(tiny_vae(), toy(), config(), out, quiet=True)
    cfg = out / "checkpoint" / "config.json"
    meta = json.loads(cfg.read_text())
    meta["config"]["latent_logvar_range"] = [-6.0, 2.0]
    cfg.write_text(json.dumps(meta))
    with pytest.raises(aevb_io.CheckpointError, match="latent_logvar_range None -> "):
        resume(out, toy(), max_examples=288, quiet=True)


def test_model_folders_saved_before_the_config_hash_still_load(tmp_path):
    model = tiny_vae()
    aevb_io.save_model(model, tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    assert aevb_io.CONFIG_HASH_KEY in aevb_io.read_tensors_metadata(weights)
    save_file(aevb_io.load_tensors(weights), str(weights))  # no metadata, as before
    assert aevb_io.read_tensors_metadata(weights) == {}
    loaded = aevb_io.load_model(tmp_path / "m")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


# ---- leftovers of a killed writer -------------------------------------------------------


def test_the_next_run_removes_what_a_killed_writer_left_and_repairs_a_swap(tmp_path):
    out = tmp_path / "run"
    train(tiny_vae(), toy(), config(), out, quiet=True)
    folders = [out / ".checkpoint.new.k3j_h5g6", out / ".best.new.0a1b2c3d"]
    files = [out / ".metrics.tmp.x1y2z3w4.csv", out / ".samples.tmp.q9w8e7r6.png"]
    for path in folders:
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"half a file")
    for path in files:
        path.write_text("half")
    kept = [out / ".notes.txt", out / "my.tmp.folder"]
    kept[0].write_text("mine")
    kept[1].mkdir()
    best = aevb_io.load_model(out / "best").state_dict()
    # killed between the two renames of a swap: only the aside copy of best/ exists
    (out / "best").rename(out / ".best.old")
    resume(out, toy(), quiet=True)  # the budget is spent: no training, no new best/
    assert not any(p.exists() for p in folders + files)
    assert all(p.exists() for p in kept)
    restored = aevb_io.load_model(out / "best").state_dict()
    assert all(torch.equal(v, restored[k]) for k, v in best.items())
    assert not (out / ".best.old").exists()


def test_resume_of_a_folder_in_use_names_the_holder_before_reading_the_run(tmp_path, capsys):
    """``--resume`` on a run being written is refused as in use, not judged from a
    checkpoint that the writer may be replacing."""
    data = ["--data", str(binary_npy(tmp_path / "x.npy", 300))]
    out = tmp_path / "run"
    assert main(["train", *data, "--out", str(out), "--max-examples", "96", *TINY]) == 0
    capsys.readouterr()
    holder = lock_holder(out)
    try:
        code = main(["train", "--out", str(out), "--resume", "--max-examples", "96", "--quiet"])
    finally:
        release(holder)
    err = capsys.readouterr().err
    assert code == 2 and f"is in use by PID {holder.pid}" in err and "finished" not in err
    assert main(["train", "--out", str(out), "--resume", "--max-examples", "96"]) == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_a_new_run_that_fails_before_writing_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "never"
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((50, 6), 3.0, dtype=np.float32))
    code = main(["train", "--data", str(bad), "--likelihood", "bernoulli", "--out", str(out)])
    assert code == 2 and "aevb: error:" in capsys.readouterr().err
    assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    code = main(["train", "--data", str(bad), "--likelihood", "bernoulli", "--out", str(kept)])
    assert code == 2 and kept.is_dir()  # a folder that was there before stays


def test_a_lock_file_removed_while_waiting_for_it_is_opened_again(tmp_path, monkeypatch):
    """A holder that removes its empty folder on release unlinks the file another writer
    may have opened: that writer must lock the file now in the folder, not the old one."""
    out = tmp_path / "run"
    out.mkdir()
    real_acquire = runlock._acquire
    calls = []

    def acquire_after_removal(fd, folder):
        calls.append(fd)
        if len(calls) == 1:  # the previous holder removes the file this process opened
            (folder / runlock.LOCK_FILE).unlink()
        return real_acquire(fd, folder)

    monkeypatch.setattr(runlock, "_acquire", acquire_after_removal)
    with runlock.hold(out) as path:
        assert len(calls) == 2 and path.is_file()
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_every_split_is_checked_before_training(tmp_path):
    """A NaN in the validation split is refused before any training, naming the split."""
    data = toy()
    data.valid[3, 2] = float("nan")
    with pytest.raises(ValueError, match=r"toy120-0 \(valid split\).*NaN"):
        train(tiny_vae(), data, config(), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---- one RunFolder, one train_or_resume -----------------------------------------------


def test_the_run_folder_names_what_a_run_writes_and_reads_its_record(tmp_path):
    out = tmp_path / "run"
    train(tiny_vae(), toy(), config(), out, quiet=True)
    run = RunFolder(out)
    assert (run.checkpoint, run.best, run.metrics, run.lock) == (
        out / "checkpoint",
        out / "best",
        out / "metrics.csv",
        out / ".lock",
    )
    assert run.has_checkpoint() and run.data_name() == "toy120-0"
    assert [r["examples"] for r in run.history()] == [96.0, 192.0]
    assert run.model_folder() == out / "best" and run.model_config()["latent_dim"] == 2
    for path in (out, out / "checkpoint", out / "best"):  # the run a model comes from
        assert RunFolder.of_model(path) == run
    aevb_io.save_model(tiny_vae(), tmp_path / "m")
    assert RunFolder.of_model(tmp_path / "m") is None  # a model saved outside a run
    shutil.copytree(out / "checkpoint", tmp_path / "moved")  # a checkpoint on its own
    assert RunFolder.of_model(tmp_path / "moved").history() == run.history()
    run.clear()
    assert not run.has_checkpoint() and not run.best.exists() and not run.metrics.exists()


def test_train_or_resume_starts_a_run_once_then_resumes_and_extends_it(tmp_path):
    starts = []

    def start():
        starts.append(1)
        return tiny_vae(), config(max_examples=192)

    first = train_or_resume(tmp_path / "run", toy(), start, quiet=True)
    again = train_or_resume(tmp_path / "run", toy(), start, max_examples=384, quiet=True)
    assert len(starts) == 1 and (first.examples, again.examples) == (192, 384)
    assert again.history[: len(first.history)] == first.history  # the same run, extended
    with pytest.raises(FileExistsError, match="already holds a training run"):
        train_or_resume(tmp_path / "run", toy(), start, if_exists="error")
    fresh = train_or_resume(tmp_path / "run", toy(), start, if_exists="overwrite", quiet=True)
    assert len(starts) == 3 and fresh.examples == 192
    with pytest.raises(aevb_io.CheckpointError, match="no checkpoint/ to resume from"):
        train_or_resume(tmp_path / "none", toy())  # nothing to start: resume only
    with pytest.raises(ValueError, match="if_exists='keep': expected one of"):
        train_or_resume(tmp_path / "run", toy(), start, if_exists="keep")


def test_resuming_a_conditional_run_appends_the_labels_to_data_without_them(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.random((160, 6)) < 0.3).astype(np.float32)
    y = rng.integers(0, 3, 160)
    plain = Dataset(
        name="labelled",
        train=x[:120],
        valid=x[120:140],
        test=x[140:],
        labels={"train": y[:120], "valid": y[120:140], "test": y[140:]},
    )
    data = conditioned(plain, 3)
    assert data.dim == 9 and conditioned(data, 3) is data and conditioned(plain, 0) is plain
    model = tiny_vae(condition_dim=3)
    train(model, data, config(), tmp_path / "run", quiet=True)
    result = resume(tmp_path / "run", plain, max_examples=288, quiet=True)  # without labels
    assert result.examples == 288


def test_the_collapse_warning_reads_the_history_of_the_models_run(tmp_path):
    out = tmp_path / "run"
    train(tiny_vae(), toy(), config(), out, quiet=True)
    model = aevb_io.load_model(out)
    assert posterior_collapse(model, 1, out) is None  # half of 2 dimensions active
    assert "under-trained" in posterior_collapse(model, 0, out / "best")  # 2 evaluations
    aevb_io.save_model(model, tmp_path / "m")
    assert "no training history was found" in posterior_collapse(model, 0, tmp_path / "m")


OLD_RUN = Path(__file__).parent / "fixtures" / "digits-run"  # counts named "samples"


def test_a_run_written_when_examples_were_called_samples_reads_in_todays_names(tmp_path, capsys):
    """tests/fixtures/digits-run stores "samples"/"best_samples" in trainer.json, a "samples"
    column in its history and max_samples in its train_config: every reader sees today's
    names and the same numbers, and the next checkpoint writes only today's names."""
    old = aevb_io.read_json(OLD_RUN / "checkpoint" / "trainer.json")
    assert {"samples", "best_samples"} <= set(old["state"]) and "max_samples" in old["train_config"]
    assert from_dict(TrainConfig, old["train_config"]).max_examples == 300
    assert from_dict(TrainConfig, {"kl_warmup_samples": 7}).kl_warmup_examples == 7
    run = RunFolder(OLD_RUN)
    state = run.meta()["state"]
    assert (state["examples"], state["best_examples"]) == (300, 300) and "samples" not in state
    assert [r["examples"] for r in run.history()] == [300.0]
    out = tmp_path / "run"
    shutil.copytree(OLD_RUN, out)
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["training_examples"] == 300 and info["train_config"]["max_examples"] == 300
    assert main(["train", "--data", "digits", "--out", str(out), "--resume", "--quiet"]) == 0
    assert "the run is finished: 300 training examples" in capsys.readouterr().out
    more = ["--resume", "--max-samples", "400", "--quiet", "--no-pictures"]  # former spelling
    assert main(["train", "--out", str(out), *more]) == 0
    saved = aevb_io.read_json(out / "checkpoint" / "trainer.json")
    assert saved["state"]["examples"] == 400 and "samples" not in saved["state"]
    assert saved["train_config"]["max_examples"] == 400
    assert "max_samples" not in saved["train_config"]
    assert [r["examples"] for r in saved["state"]["history"]] == [300, 400]
    assert all("samples" not in r for r in saved["state"]["history"])
    assert (out / "metrics.csv").read_text().startswith("examples,epoch,")
