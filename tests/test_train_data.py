"""`aevb train` on the user's own arrays: the dtype rule, the likelihood the data allow, and
the line that says both at the start of every run (fresh and --resume)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aevb.cli import main

TINY = ["--hidden", "8", "--latent-dim", "2", "--max-examples", "200", "--no-pictures"]


def _pixels(path, dtype) -> str:
    """60 random 4x4 'images' of 8-bit values, saved as ``dtype``."""
    rng = np.random.default_rng(0)
    np.save(path, rng.integers(0, 256, size=(60, 4, 4)).astype(dtype))
    return str(path)


def _train(*argv: str) -> int:
    return main(["train", *argv, *TINY, "--quiet"])


def _stored_config(out) -> dict:
    return json.loads((out / "checkpoint" / "config.json").read_text())["config"]


def test_uint8_pixels_are_scaled_with_a_notice_on_fresh_and_resumed_runs(tmp_path, capsys):
    data = _pixels(tmp_path / "px.npy", np.uint8)
    out = tmp_path / "run"
    assert _train("--data", data, "--out", str(out)) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (
        f"aevb: data {data}: 48 x 16 train rows, values in [0, 1], uint8 0..255 divided by "
        "255; likelihood bernoulli"
    )
    assert _stored_config(out)["likelihood"] == "bernoulli"
    trainer = json.loads((out / "checkpoint" / "trainer.json").read_text())
    assert trainer["data_identity"]["scaling"] == "uint8 0..255 divided by 255"
    assert main(["train", "--out", str(out), "--resume", "--max-examples", "400", "--quiet"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == first


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_pixels_not_uint8_are_kept_and_get_a_gaussian_with_an_identity_mean(
    tmp_path, capsys, dtype
):
    data = _pixels(tmp_path / "px.npy", dtype)
    out = tmp_path / "run"
    assert _train("--data", data, "--out", str(out)) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        f"aevb: data {data}: 48 x 16 train rows, values in [0, 255], not rescaled; "
        "likelihood gaussian (mean identity, variance output)"
    )
    assert err[1].startswith("aevb: note: the values are whole numbers in 0..255 but not uint8")
    config = _stored_config(out)
    assert (config["likelihood"], config["gaussian_mean"]) == ("gaussian", "identity")


def test_standardised_data_get_an_identity_mean_and_data_in_0_1_a_sigmoid(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "z.npy", rng.standard_normal((60, 5)))
    assert _train("--data", str(tmp_path / "z.npy"), "--out", str(tmp_path / "z")) == 0
    assert "note:" not in capsys.readouterr().err
    assert _stored_config(tmp_path / "z")["gaussian_mean"] == "identity"
    np.save(tmp_path / "u.npy", rng.uniform(size=(60, 5)))
    argv = ["--data", str(tmp_path / "u.npy"), "--likelihood", "gaussian"]
    assert _train(*argv, "--out", str(tmp_path / "u")) == 0
    assert "likelihood gaussian (mean sigmoid, variance output)" in capsys.readouterr().err
    assert _stored_config(tmp_path / "u")["gaussian_mean"] == "sigmoid"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--gaussian-mean", "sigmoid"],
            "a gaussian likelihood with a sigmoid mean expects values in [0, 1], found values "
            "in [0, 255]; use --gaussian-mean identity",
        ),
        (
            ["--likelihood", "bernoulli"],
            "the bernoulli likelihood expects values in [0, 1], found values in [0, 255]",
        ),
    ],
)
def test_a_likelihood_that_cannot_reach_the_data_is_refused(tmp_path, capsys, flags, message):
    data = _pixels(tmp_path / "px.npy", np.float64)
    assert _train("--data", data, "--out", str(tmp_path / "run"), *flags) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aevb: error: {data}: {message}") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("likelihood", "mean", "message"),
    [
        (
            "bernoulli",
            "sigmoid",
            r"^px \(train split\): the bernoulli likelihood expects values in \[0, 1\]",
        ),
        (
            "gaussian",
            "sigmoid",
            r"^px \(train split\): a gaussian likelihood with a sigmoid mean expects",
        ),
    ],
)
def test_the_python_api_refuses_to_train_on_data_the_likelihood_cannot_reach(
    tmp_path, likelihood, mean, message
):
    from aevb.data import DataError, Dataset
    from aevb.models import VAE, VAEConfig
    from aevb.run import train
    from aevb.training import TrainConfig

    x = np.random.default_rng(0).integers(0, 256, size=(20, 4)).astype(np.float32)
    model = VAE(
        VAEConfig(input_dim=4, latent_dim=2, hidden=(8,), likelihood=likelihood, gaussian_mean=mean)
    )
    with pytest.raises(DataError, match=message):
        train(model, Dataset("px", x), TrainConfig(max_examples=40), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()
