"""Conditional VAEs: label columns appended to the data, sampling by label, and a conditional
model trained, sampled, evaluated and resumed from the CLI."""

import numpy as np
import pytest
import torch

from aevb import io as aevb_io
from aevb.cli import main
from aevb.data import DataError, Dataset, append_labels, load
from aevb.models import VAE, VAEConfig


def labelled(n=40, d=6, classes=3, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = (rng.random((n, d)) < 0.2 + 0.2 * y[:, None]).astype(np.float32)
    return Dataset("toy", x[:30], x[30:], None, labels={"train": y[:30], "valid": y[30:]})


def test_append_labels_adds_one_hot_columns_and_refuses_unlabelled_data():
    data = append_labels(labelled())
    assert data.condition_dim == 3 and data.train.shape == (30, 9) and data.test is None
    np.testing.assert_array_equal(data.train[:, 6:].argmax(1), labelled().labels["train"])
    assert (data.train[:, 6:].sum(1) == 1).all()
    with pytest.raises(DataError, match="no class labels"):
        append_labels(Dataset("x", np.zeros((4, 2))))
    with pytest.raises(DataError, match=r"expected \[0, 2\)"):
        append_labels(labelled(), classes=2)


def test_append_labels_warns_when_an_unlabelled_split_is_left_out():
    data = labelled()
    data.labels.pop("valid")
    with pytest.warns(UserWarning, match="valid split has no labels"):
        out = append_labels(data)
    assert out.valid is None and out.train.shape == (30, 9)


def test_conditional_sampling_respects_the_label_shape():
    model = VAE(VAEConfig(input_dim=6, latent_dim=2, hidden=(8,), condition_dim=3, init="default"))
    g = torch.Generator().manual_seed(0)
    by_label = model.sample(4, generator=g, condition=torch.tensor([0, 1, 2, 1]))
    assert by_label.shape == (4, 6)
    one_hot = torch.eye(3)[[0, 1, 2, 1]]
    again = model.sample(4, generator=torch.Generator().manual_seed(0), condition=one_hot)
    torch.testing.assert_close(by_label, again)
    assert not torch.allclose(by_label[0], by_label[2])  # the label reaches the decoder
    with pytest.raises(ValueError, match="expected labels"):
        model.sample(4)
    with pytest.raises(ValueError, match=r"expected \(4, 3\) or \(4,\)"):
        model.sample(4, condition=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)"):
        model.sample(2, condition=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="expected 6 \\+ 3 condition columns"):
        model.encode(torch.rand(2, 6))


def test_conditional_vae_trains_and_samples_by_class_from_the_cli(tmp_path):
    out = tmp_path / "cvae"
    args = ["train", "--out", str(out), "--conditional", "--hidden", "32", "--latent-dim",
            "2", "--optimizer", "adam", "--lr", "0.003", "--epochs", "2", "--quiet",
            "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    assert (out / "samples.png").is_file() and (out / "manifold.png").is_file()
    model = aevb_io.load_model(out)
    assert model.config.condition_dim == 10 and model.config.input_dim == 64
    npy = tmp_path / "s.npy"
    assert main(["sample", str(out), "-n", "6", "--label", "3", "7", "--npy", str(npy),
                 "--out", str(tmp_path / "s.png")]) == 0  # fmt: skip
    assert np.load(npy).shape == (6, 64)
    assert main(["evaluate", str(out), "--k", "5"]) == 0
    assert main(["train", "--out", str(out), "--resume", "--epochs", "3", "--quiet",
                 "--no-pictures"]) == 0  # fmt: skip
    state = aevb_io.read_json(out / "checkpoint" / "trainer.json")["state"]
    assert state["examples"] == 3 * len(load("digits").train)
