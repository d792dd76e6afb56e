"""Data-parallel training: 2 CPU processes (gloo, launched by torchrun) against one process."""

import os
import subprocess
import sys

import numpy as np
import torch

from aevb import io as aevb_io
from aevb.cli import main
from aevb.distributed import ProcessInfo, shard_bounds

# fmt: off
ARGS = ["--hidden", "16", "--latent-dim", "3", "--optimizer", "adam", "--lr", "0.01",
        "--batch-size", "32", "--max-examples", "960", "--eval-every", "320", "--seed", "7",
        "--quiet", "--no-pictures"]
RESUME = ["--resume", "--max-examples", "1280", "--quiet", "--no-pictures"]
# fmt: on


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 -m aevb train ARGS``, one thread each."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "aevb", "train", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    # the worker's own message comes first, torchrun's summary last: show both
    assert proc.returncode == 0, proc.stderr[:3000] + "\n...\n" + proc.stderr[-1500:]
    return proc


def binary_data(path, seed: int) -> list[str]:
    """240 rows of 12 pixels; the default 80% split leaves 192 = 6 batches of 32."""
    rng = np.random.default_rng(seed)
    np.save(path, (rng.random((240, 12)) < 0.3).astype(np.float32))
    return ["--data", str(path)]


def assert_same_weights(a, b) -> None:
    # same global batches, same noise: equal up to float rounding of the gradient
    # all-reduce (two partial sums instead of one), which Adam carries along
    one = aevb_io.load_model(a / "checkpoint").state_dict()
    two = aevb_io.load_model(b / "checkpoint").state_dict()
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-4, rtol=1e-4, msg=k)


def test_shards_cover_the_batch_once():
    for batch in (32, 33, 7):
        rows = []
        for rank in range(3):
            start, stop = shard_bounds(batch, ProcessInfo(rank=rank, world=3))
            rows += list(range(start, stop))
        assert rows == list(range(batch))


def test_two_gloo_processes_match_one_process(tmp_path):
    data = binary_data(tmp_path / "x.npy", seed=0)
    assert main(["train", *data, "--out", str(tmp_path / "one"), *ARGS]) == 0
    proc = torchrun(*data, "--out", str(tmp_path / "two"), *ARGS)
    assert proc.stdout.count("run folder:") == 1  # one process reports
    assert_same_weights(tmp_path / "one", tmp_path / "two")
    h1 = aevb_io.read_json(tmp_path / "one" / "checkpoint" / "trainer.json")["state"]
    h2 = aevb_io.read_json(tmp_path / "two" / "checkpoint" / "trainer.json")["state"]
    assert h1["examples"] == h2["examples"] == 960
    for r1, r2 in zip(h1["history"], h2["history"], strict=True):
        assert abs(r1["train_bound"] - r2["train_bound"]) < 1e-3
    # and the parameters did move: the comparison is not of two untouched models
    bounds = [r["train_bound"] for r in h1["history"]]
    assert len(bounds) == 3 and bounds[-1] > bounds[0]


def test_resume_under_torchrun_continues_the_same_run(tmp_path):
    data = binary_data(tmp_path / "x.npy", seed=1)
    assert main(["train", *data, "--out", str(tmp_path / "one"), *ARGS]) == 0
    assert main(["train", "--out", str(tmp_path / "one"), *RESUME]) == 0
    torchrun(*data, "--out", str(tmp_path / "two"), *ARGS)
    torchrun("--out", str(tmp_path / "two"), *RESUME)
    assert_same_weights(tmp_path / "one", tmp_path / "two")
