"""Data-parallel training: 2 CPU processes (gloo, launched by torchrun) against one process."""

import os
import subprocess
import sys

import numpy as np
import torch

from aevb import io as aevb_io
from aevb.cli import main
from aevb.distributed import ProcessInfo, shard_bounds

ARGS = [
    "--hidden",
    "16",
    "--latent-dim",
    "3",
    "--optimizer",
    "adam",
    "--lr",
    "0.01",
    "--batch-size",
    "32",
    "--max-samples",
    "960",
    "--eval-every",
    "320",
    "--seed",
    "7",
    "--quiet",
    "--no-pictures",
]


def test_shards_cover_the_batch_once():
    for batch in (32, 33, 7):
        rows = []
        for rank in range(3):
            start, stop = shard_bounds(batch, ProcessInfo(rank=rank, world=3))
            rows += list(range(start, stop))
        assert rows == list(range(batch))


def test_two_gloo_processes_match_one_process(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.random((240, 12)) < 0.3).astype(np.float32)  # 192 train rows: 6 batches of 32
    np.save(tmp_path / "x.npy", x)
    assert (
        main(["train", "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "one"), *ARGS])
        == 0
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "aevb",
        "train",
        "--data",
        str(tmp_path / "x.npy"),
        "--out",
        str(tmp_path / "two"),
        *ARGS,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("run folder:") == 1  # one process reports
    one = aevb_io.load_model(tmp_path / "one" / "checkpoint").state_dict()
    two = aevb_io.load_model(tmp_path / "two" / "checkpoint").state_dict()
    # same global batches, same noise: equal up to float rounding of the gradient
    # all-reduce (two partial sums instead of one), which Adam carries along for 30 steps
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-4, rtol=1e-4, msg=k)
    h1 = aevb_io.read_json(tmp_path / "one" / "checkpoint" / "trainer.json")["state"]
    h2 = aevb_io.read_json(tmp_path / "two" / "checkpoint" / "trainer.json")["state"]
    assert h1["samples"] == h2["samples"] == 960
    for r1, r2 in zip(h1["history"], h2["history"], strict=True):
        assert abs(r1["train_bound"] - r2["train_bound"]) < 1e-3
    # and the parameters did move: the comparison is not of two untouched models
    assert (
        len(h1["history"]) == 3
        and h1["history"][-1]["train_bound"] > h1["history"][0]["train_bound"]
    )


def test_resume_under_torchrun_continues_the_same_run(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", (rng.random((240, 12)) < 0.3).astype(np.float32))
    data = ["--data", str(tmp_path / "x.npy")]
    assert main(["train", *data, "--out", str(tmp_path / "one"), *ARGS]) == 0
    assert (
        main(
            [
                "train",
                "--out",
                str(tmp_path / "one"),
                "--resume",
                "--max-samples",
                "1280",
                "--quiet",
                "--no-pictures",
            ]
        )
        == 0
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "aevb",
        "train",
    ]
    for extra in (
        [*data, *ARGS],
        ["--resume", "--max-samples", "1280", "--quiet", "--no-pictures"],
    ):
        proc = subprocess.run(
            [*launch, "--out", str(tmp_path / "two"), *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    one = aevb_io.load_model(tmp_path / "one" / "checkpoint").state_dict()
    two = aevb_io.load_model(tmp_path / "two" / "checkpoint").state_dict()
    for k in one:
        torch.testing.assert_close(two[k], one[k], atol=1e-4, rtol=1e-4, msg=k)
